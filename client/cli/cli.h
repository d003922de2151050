/*
 * cli.h: the pieces of the `vecscan` CLI that its commands share and tests reach: option parsing,
 * the JSON writer, latency statistics, progress reporting, and helpers that talk to the daemon.
 *
 * Conventions (DESIGN.md section 10): results go to stdout, progress and logs to stderr; with
 * --json stdout holds exactly one JSON object. A command returns its exit code: 0 on success,
 * 1 when the work failed (the daemon said no, a file is bad), 2 for a usage error. On failure it
 * has printed exactly one line on stderr, "vecscan CMD: what went wrong".
 */
#ifndef VSC_CLI_H
#define VSC_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vecscan_client.h"

#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* ===== Options ===== */

typedef enum cli_opt_type {
    CLI_FLAG,    /* bool, no value */
    CLI_STR,     /* const char * */
    CLI_U64,     /* uint64_t */
    CLI_DOUBLE,  /* double */
    CLI_STRLIST, /* cli_strlist: repeatable */
} cli_opt_type;

typedef struct cli_strlist {
    const char **v;
    int n;
} cli_strlist;

typedef struct cli_opt {
    const char *name; /* without the leading "--" */
    cli_opt_type type;
    void *dst;
    const char *metavar; /* NULL for flags */
    const char *help;
} cli_opt;

/* The options every command takes. */
typedef struct cli_common {
    const char *addr;       /* --addr, default 127.0.0.1:7070 */
    const char *token_file; /* --token-file */
    double timeout_s;       /* --timeout (seconds; 0: none) */
    bool help;
} cli_common;

/* A command's context: its name, the common options, its option table. */
typedef struct cli_cmd {
    const char *name;
    const char *usage;   /* one line after "vecscan NAME " */
    const char *summary; /* a paragraph for --help */
    const cli_opt *opts;
    int n_opts;
    cli_common common;
} cli_cmd;

/* Parses argv[0..argc) (the words after the command's name; common options may also have been
 * taken before it) into cmd->opts and cmd->common. Returns 0, or CLI_EXIT_USAGE after printing
 * one line. cmd->common.help is set when --help was asked for. */
int cli_parse(cli_cmd *cmd, int argc, char **argv);
/* Takes the common options from the words before the command into c; *used is how many words
 * were consumed. Returns 0 or CLI_EXIT_USAGE. */
int cli_parse_common_prefix(cli_common *c, int argc, char **argv, int *used);
/* cli_parse, then --help: returns 0 to go on, CLI_DONE when help was printed (exit 0), or an
 * exit code. */
#define CLI_DONE (-1)
int cli_start(cli_cmd *cmd, int argc, char **argv, const cli_common *pre);
/* Fails with a usage error unless value is set: "--NAME is required". */
int cli_require(const cli_cmd *cmd, const void *value, const char *name);
/* Prints the --help text of cmd to f. */
void cli_help(const cli_cmd *cmd, FILE *f);
/* Frees the lists cli_parse allocated. */
void cli_free_opts(cli_cmd *cmd);

/* Prints "vecscan CMD: message" as one line on stderr (newlines in the message become spaces);
 * returns code. */
int cli_fail(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses "1,2,3" into *ids (malloc'd, caller frees). 0 or -1 (bad list). */
int cli_parse_ids(const char *s, uint64_t **ids, size_t *n);
/* Parses "0.5,1,-2" into *v (malloc'd). 0 or -1. */
int cli_parse_floats(const char *s, float **v, size_t *n);
/* Parses "A:B" (either side may be empty: 0 / the end) into [*a, *b). 0 or -1. */
int cli_parse_range(const char *s, uint64_t *a, uint64_t *b);
/* Parses a whole string as int64. 0 or -1. */
int cli_parse_i64(const char *s, int64_t *out);
/* Parses k lists: each of list's strings may hold comma-separated values; sorted, unique.
 * 0 or -1. */
int cli_parse_ks(const cli_strlist *list, uint32_t *ks, int cap, int *n);

/* ===== JSON ===== */

/* A streaming JSON writer; it keeps the commas right. Nesting up to 32 levels. */
typedef struct cli_json {
    FILE *f;
    int depth;
    bool first[32];
    bool after_key;
} cli_json;

void cli_json_init(cli_json *j, FILE *f);
void cli_json_begin_object(cli_json *j);
void cli_json_end_object(cli_json *j);
void cli_json_begin_array(cli_json *j);
void cli_json_end_array(cli_json *j);
void cli_json_key(cli_json *j, const char *key);
void cli_json_string(cli_json *j, const char *s);
/* A finite double in the shortest form that keeps ~6 significant digits ("1.0", "0.9987");
 * NaN and infinities become null. */
void cli_json_double(cli_json *j, double v);
void cli_json_u64(cli_json *j, uint64_t v);
void cli_json_i64(cli_json *j, int64_t v);
void cli_json_bool(cli_json *j, bool v);
/* A key and its value in one call. */
void cli_json_kv_string(cli_json *j, const char *key, const char *s);
void cli_json_kv_double(cli_json *j, const char *key, double v);
void cli_json_kv_u64(cli_json *j, const char *key, uint64_t v);
void cli_json_kv_i64(cli_json *j, const char *key, int64_t v);
void cli_json_kv_bool(cli_json *j, const char *key, bool v);
/* Formats v as cli_json_double would, into buf. */
void cli_fmt_double(char *buf, size_t cap, double v);

/* ===== Latency statistics ===== */

typedef struct cli_lat {
    double *ms;
    size_t n, cap;
} cli_lat;

/* Adds one latency (milliseconds). 0 or -1 (out of memory). */
int cli_lat_add(cli_lat *l, double ms);
/* Appends every latency of src to dst. 0 or -1. */
int cli_lat_merge(cli_lat *dst, const cli_lat *src);
/* The p-th percentile (0..100) by nearest rank (upper rank on small samples); sorts l. 0 when
 * empty. */
double cli_lat_pct(cli_lat *l, double p);
void cli_lat_free(cli_lat *l);

/* ===== Progress ===== */

typedef struct cli_progress {
    const char *what; /* "load" */
    uint64_t total;   /* 0: unknown */
    double start, last_print;
    bool tty;
    bool printed;
    FILE *f;
} cli_progress;

/* Starts progress reporting on f (stderr): a bar when f is a terminal, plain lines otherwise. */
void cli_progress_start(cli_progress *p, const char *what, uint64_t total, FILE *f);
/* Reports done units; prints at most ~5 times a second on a terminal, every 2 s otherwise, and
 * always when force. */
void cli_progress_update(cli_progress *p, uint64_t done, bool force);
/* Ends the bar (a newline on a terminal). */
void cli_progress_end(cli_progress *p, uint64_t done);
/* Formats one progress line into buf: "load 4500/9000 rows (50%) 12000 rows/s ETA 0:04" (bar
 * when bar_width > 0). */
void cli_progress_format(char *buf, size_t cap, const char *what, uint64_t done, uint64_t total,
                         double elapsed_s, int bar_width);

/* ===== Talking to the daemon ===== */

/* Seconds on the monotonic clock. */
double cli_now(void);
/* Connects with cmd's common options (token file read here). Returns 0 or CLI_EXIT_FAIL after
 * printing the one-line error. */
int cli_connect(const cli_cmd *cmd, vsc_conn **out);
/* As cli_connect with a stream send buffer of buf bytes (0: default). */
int cli_connect_opts(const cli_cmd *cmd, size_t send_buffer, vsc_conn **out);
/* DescribeCollection of name: *info is the response (caller frees with vsc_free). 0 or
 * CLI_EXIT_FAIL after printing. */
int cli_describe(const cli_cmd *cmd, vsc_conn *c, const char *name,
                 Vecscan__V1__DescribeCollectionResponse **info);
/* The vector field called name in schema, or, when name is NULL, its only field; NULL after
 * printing the error. */
const Vecscan__V1__VectorField *cli_pick_field(const cli_cmd *cmd, const Vecscan__V1__Schema *schema,
                                               const char *name);
/* Loads rows [a, b) of a dataset file as floats; b = UINT64_MAX: to the end. *rows, *dim set;
 * *data the caller's. 0 or CLI_EXIT_FAIL after printing. */
int cli_load_rows(const char *cmd, const char *path, uint64_t a, uint64_t b, float **data,
                  uint64_t *rows, uint32_t *dim);
/* Parses "sum", "max", "interleave". 0 or -1. */
int cli_parse_combine(const char *s, Vecscan__V1__Combine *out);
/* Metric and storage names ("cosine", "i8"). */
const char *cli_metric_name(int m);
const char *cli_storage_name(int s);

/* ===== Queries and the concurrent runner (eval, loadtest) ===== */

/* What every query of a command shares. */
typedef struct cli_qopts {
    const char *collection;
    const char *field;
    uint32_t k;
    const char *filter; /* NULL or "": none */
    Vecscan__V1__Combine combine;
    uint32_t rerank;
    bool with_attributes;
    uint64_t min_seq;
} cli_qopts;

/* Fills q (and its term and vector, which the caller provides) for one query vector; filter
 * overrides o->filter when not NULL. */
void cli_fill_query(Vecscan__V1__Query *q, Vecscan__V1__Term *term, Vecscan__V1__Term **termp,
                    Vecscan__V1__Vector *vec, Vecscan__V1__Vector **vecp, const cli_qopts *o,
                    const float *v, uint32_t dim, const char *filter);
/* Packs a SearchRequest (n == 1) or a SearchBatchRequest (n > 1, or batch) of the n queries
 * vs[0 .. n x dim), with per-query filters (NULL: o->filter). *out is malloc'd. 0 or -1. */
int cli_pack_queries(const cli_qopts *o, const float *vs, uint32_t n, uint32_t dim,
                     const char *const *filters, bool batch, uint8_t **out, size_t *len);

/* Runs requests over connections, keeping `concurrency` calls in flight in total. */
typedef struct cli_runner {
    const cli_cmd *cmd;
    int connections;  /* threads, each with its own connection */
    int concurrency;  /* calls in flight over all connections */
    const char *path; /* the method */
    uint8_t *const *reqs;
    const size_t *req_len;
    size_t n_reqs;
    bool cycle;        /* start over at the end until duration_s (loadtest) */
    double duration_s; /* 0: run each request once */
    /* called on a worker thread when request i completes; raw is the response's bytes (OK only);
     * returns false to stop the run */
    bool (*on_done)(void *user, size_t i, const vsc_status *st, const uint8_t *raw, size_t len);
    void *user;
    /* results */
    cli_lat lat;                 /* per call, ms */
    uint64_t codes[VSC_N_CODES]; /* calls per final status code */
    uint64_t calls;
    double elapsed_s;
    char error[VSC_MSG_LEN]; /* a connection that failed, or "" */
} cli_runner;

/* Runs r; 0 or CLI_EXIT_FAIL (after printing) when a connection could not be made or broke. */
int cli_run(cli_runner *r);

/* ===== Commands ===== */

int cmd_create(int argc, char **argv, const cli_common *pre);
int cmd_drop(int argc, char **argv, const cli_common *pre);
int cmd_describe(int argc, char **argv, const cli_common *pre);
int cmd_list(int argc, char **argv, const cli_common *pre);
int cmd_stats(int argc, char **argv, const cli_common *pre);
int cmd_get(int argc, char **argv, const cli_common *pre);
int cmd_delete(int argc, char **argv, const cli_common *pre);
int cmd_load(int argc, char **argv, const cli_common *pre);
int cmd_search(int argc, char **argv, const cli_common *pre);
int cmd_eval(int argc, char **argv, const cli_common *pre);
int cmd_loadtest(int argc, char **argv, const cli_common *pre);

/* Runs the CLI (main's body), for tests too. */
int cli_main(int argc, char **argv);

#endif
