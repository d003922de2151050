/*
 * common.c: option parsing, the one-line error, list parsers, the JSON writer, latency
 * percentiles and progress reporting of the `vecscan` CLI.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* ===== Options ===== */

/* Matches word against "--name" or "--name=value"; *inline_val is the value after '='. */
static bool opt_match(const char *word, const char *name, const char **inline_val)
{
    size_t n = strlen(name);
    if (strncmp(word, "--", 2) != 0 || strncmp(word + 2, name, n) != 0) return false;
    if (word[2 + n] == 0) {
        *inline_val = NULL;
        return true;
    }
    if (word[2 + n] == '=') {
        *inline_val = word + 3 + n;
        return true;
    }
    return false;
}

/* Takes a common option at argv[*i]; 1 when taken, 0 when not a common option, -1 on error. */
static int take_common(cli_common *c, const char *cmd, int argc, char **argv, int *i)
{
    const char *names[] = {"addr", "token-file", "timeout", "help"};
    for (int k = 0; k < 4; k++) {
        const char *val;
        if (!opt_match(argv[*i], names[k], &val)) continue;
        if (k == 3) {
            if (val) return cli_fail(cmd, -1, "--help takes no value");
            c->help = true;
            return 1;
        }
        if (!val) {
            if (*i + 1 >= argc) return cli_fail(cmd, -1, "--%s needs a value", names[k]);
            val = argv[++*i];
        }
        if (k == 0) {
            c->addr = val;
        } else if (k == 1) {
            c->token_file = val;
        } else {
            char *end;
            errno = 0;
            double t = strtod(val, &end);
            if (errno || end == val || *end || !(t >= 0) || t > 1e7)
                return cli_fail(cmd, -1, "--timeout wants seconds >= 0, got '%s'", val);
            c->timeout_s = t;
        }
        return 1;
    }
    if (strcmp(argv[*i], "-h") == 0) {
        c->help = true;
        return 1;
    }
    return 0;
}

int cli_parse_common_prefix(cli_common *c, int argc, char **argv, int *used)
{
    int i = 0;
    for (; i < argc && argv[i][0] == '-'; i++) {
        int r = take_common(c, "", argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r == 0) {
            cli_fail("", 0, "unknown option %s before the command (see vecscan --help)", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    *used = i;
    return 0;
}

int cli_parse(cli_cmd *cmd, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) /* --help wins over everything else on the line */
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cmd->common.help = true;
            return 0;
        }
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        int r = take_common(&cmd->common, cmd->name, argc, argv, &i);
        if (r < 0) return CLI_EXIT_USAGE;
        if (r > 0) continue;
        const cli_opt *o = NULL;
        const char *val = NULL;
        for (int k = 0; k < cmd->n_opts && !o; k++)
            if (opt_match(w, cmd->opts[k].name, &val)) o = &cmd->opts[k];
        if (!o) {
            if (strncmp(w, "-", 1) == 0)
                cli_fail(cmd->name, 0, "unknown option %s (see vecscan %s --help)", w, cmd->name);
            else
                cli_fail(cmd->name, 0, "unexpected argument '%s' (see vecscan %s --help)", w, cmd->name);
            return CLI_EXIT_USAGE;
        }
        if (o->type == CLI_FLAG) {
            if (val) {
                cli_fail(cmd->name, 0, "--%s takes no value", o->name);
                return CLI_EXIT_USAGE;
            }
            *(bool *)o->dst = true;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) {
                cli_fail(cmd->name, 0, "--%s needs a value (%s)", o->name, o->metavar);
                return CLI_EXIT_USAGE;
            }
            val = argv[++i];
        }
        char *end;
        switch (o->type) {
        case CLI_STR: *(const char **)o->dst = val; break;
        case CLI_U64: {
            errno = 0;
            unsigned long long v = strtoull(val, &end, 10);
            if (errno || end == val || *end || val[0] == '-') {
                cli_fail(cmd->name, 0, "--%s wants a non-negative integer, got '%s'", o->name, val);
                return CLI_EXIT_USAGE;
            }
            *(uint64_t *)o->dst = v;
            break;
        }
        case CLI_DOUBLE: {
            errno = 0;
            double v = strtod(val, &end);
            if (errno || end == val || *end || !isfinite(v)) {
                cli_fail(cmd->name, 0, "--%s wants a number, got '%s'", o->name, val);
                return CLI_EXIT_USAGE;
            }
            *(double *)o->dst = v;
            break;
        }
        case CLI_STRLIST: {
            cli_strlist *l = o->dst;
            const char **v = realloc(l->v, (size_t)(l->n + 1) * sizeof *v);
            if (!v) {
                cli_fail(cmd->name, 0, "out of memory");
                return CLI_EXIT_FAIL;
            }
            v[l->n++] = val;
            l->v = v;
            break;
        }
        case CLI_FLAG: break;
        }
    }
    return 0;
}

int cli_start(cli_cmd *cmd, int argc, char **argv, const cli_common *pre)
{
    if (pre) cmd->common = *pre;
    int rc = cli_parse(cmd, argc, argv);
    if (rc != 0) return rc;
    if (cmd->common.help) {
        cli_help(cmd, stdout);
        return CLI_DONE;
    }
    return 0;
}

int cli_require(const cli_cmd *cmd, const void *value, const char *name)
{
    if (value) return 0;
    return cli_fail(cmd->name, CLI_EXIT_USAGE, "--%s is required (see vecscan %s --help)", name, cmd->name);
}

void cli_free_opts(cli_cmd *cmd)
{
    for (int k = 0; k < cmd->n_opts; k++) {
        if (cmd->opts[k].type != CLI_STRLIST) continue;
        cli_strlist *l = cmd->opts[k].dst;
        free(l->v);
        l->v = NULL;
        l->n = 0;
    }
}

void cli_help(const cli_cmd *cmd, FILE *f)
{
    fprintf(f, "usage: vecscan %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->usage, cmd->summary);
    for (int k = 0; k < cmd->n_opts; k++) {
        char left[64];
        const cli_opt *o = &cmd->opts[k];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        fprintf(f, "  %-26s %s\n", left, o->help);
    }
    fprintf(f, "\ncommon options (before or after the command):\n"
               "  %-26s %s\n  %-26s %s\n  %-26s %s\n  %-26s %s\n",
            "--addr HOST:PORT", "the daemon (default 127.0.0.1:7070)", "--token-file F",
            "file holding the bearer token of vecscand --auth-token-file", "--timeout S",
            "deadline of each call in seconds (default: none)", "--help", "this text");
}

int cli_fail(const char *cmd, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    if (cmd && cmd[0]) fprintf(stderr, "vecscan %s: %s\n", cmd, msg);
    else fprintf(stderr, "vecscan: %s\n", msg);
    return code;
}

/* ===== List parsers ===== */

int cli_parse_ids(const char *s, uint64_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    uint64_t *v = malloc(cap * sizeof *v);
    if (!v) return -1;
    const char *p = s;
    size_t k = 0;
    for (;;) {
        while (*p == ' ') p++;
        if (!isdigit((unsigned char)*p)) break;
        char *end;
        errno = 0;
        unsigned long long x = strtoull(p, &end, 10);
        if (errno) break;
        v[k++] = x;
        p = end;
        while (*p == ' ') p++;
        if (*p == 0) {
            *ids = v;
            *n = k;
            return 0;
        }
        if (*p != ',') break;
        p++;
    }
    free(v);
    return -1;
}

int cli_parse_floats(const char *s, float **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    float *v = malloc(cap * sizeof *v);
    if (!v) return -1;
    const char *p = s;
    size_t k = 0;
    for (;;) {
        char *end;
        errno = 0;
        float x = strtof(p, &end);
        if (end == p || errno || !isfinite(x)) break;
        v[k++] = x;
        p = end;
        while (*p == ' ') p++;
        if (*p == 0) {
            *out = v;
            *n = k;
            return 0;
        }
        if (*p != ',') break;
        p++;
    }
    free(v);
    return -1;
}

int cli_parse_range(const char *s, uint64_t *a, uint64_t *b)
{
    const char *colon = strchr(s, ':');
    if (!colon) return -1;
    *a = 0;
    *b = UINT64_MAX;
    char *end;
    if (colon != s) {
        if (!isdigit((unsigned char)s[0])) return -1;
        *a = strtoull(s, &end, 10);
        if (end != colon) return -1;
    }
    if (colon[1]) {
        if (!isdigit((unsigned char)colon[1])) return -1;
        *b = strtoull(colon + 1, &end, 10);
        if (*end) return -1;
    }
    return *a < *b ? 0 : -1;
}

int cli_parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int cli_parse_ks(const cli_strlist *list, uint32_t *ks, int cap, int *n)
{
    int k = 0;
    for (int i = 0; i < list->n; i++) {
        uint64_t *v;
        size_t nv;
        if (cli_parse_ids(list->v[i], &v, &nv) != 0) return -1;
        for (size_t j = 0; j < nv; j++) {
            if (v[j] < 1 || v[j] > 10000 || k >= cap) {
                free(v);
                return -1;
            }
            ks[k++] = (uint32_t)v[j];
        }
        free(v);
    }
    qsort(ks, (size_t)k, sizeof *ks, cmp_u32);
    int u = 0;
    for (int i = 0; i < k; i++)
        if (u == 0 || ks[u - 1] != ks[i]) ks[u++] = ks[i];
    *n = u;
    return 0;
}

/* ===== JSON ===== */

void cli_json_init(cli_json *j, FILE *f)
{
    memset(j, 0, sizeof *j);
    j->f = f;
    j->first[0] = true;
}

/* Writes the comma before a value, unless it follows a key. */
static void json_sep(cli_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (!j->first[j->depth]) fputc(',', j->f);
    if (j->depth > 0 && !j->first[j->depth]) fputc(' ', j->f);
    j->first[j->depth] = false;
}

static void json_open(cli_json *j, char c)
{
    json_sep(j);
    fputc(c, j->f);
    if (j->depth < 31) j->depth++;
    j->first[j->depth] = true;
}

void cli_json_begin_object(cli_json *j) { json_open(j, '{'); }
void cli_json_begin_array(cli_json *j) { json_open(j, '['); }

void cli_json_end_object(cli_json *j)
{
    fputc('}', j->f);
    if (j->depth > 0) j->depth--;
    if (j->depth == 0) fputc('\n', j->f);
}

void cli_json_end_array(cli_json *j)
{
    fputc(']', j->f);
    if (j->depth > 0) j->depth--;
}

static void json_raw_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

void cli_json_key(cli_json *j, const char *key)
{
    json_sep(j);
    json_raw_string(j->f, key);
    fputs(": ", j->f);
    j->after_key = true;
}

void cli_json_string(cli_json *j, const char *s)
{
    json_sep(j);
    json_raw_string(j->f, s ? s : "");
}

void cli_fmt_double(char *buf, size_t cap, double v)
{
    if (!isfinite(v)) {
        snprintf(buf, cap, "null");
        return;
    }
    /* six significant digits, but never fewer than the integer part needs */
    double a = fabs(v);
    int prec = 6;
    if (a >= 1e6 && a < 1e15) prec = (int)floor(log10(a)) + 2;
    snprintf(buf, cap, "%.*g", prec, v);
    if (!strpbrk(buf, ".eEn")) {
        size_t n = strlen(buf);
        if (n + 2 < cap) memcpy(buf + n, ".0", 3);
    }
}

void cli_json_double(cli_json *j, double v)
{
    char b[64];
    cli_fmt_double(b, sizeof b, v);
    json_sep(j);
    fputs(b, j->f);
}

void cli_json_u64(cli_json *j, uint64_t v)
{
    json_sep(j);
    fprintf(j->f, "%" PRIu64, v);
}

void cli_json_i64(cli_json *j, int64_t v)
{
    json_sep(j);
    fprintf(j->f, "%" PRId64, v);
}

void cli_json_bool(cli_json *j, bool v)
{
    json_sep(j);
    fputs(v ? "true" : "false", j->f);
}

void cli_json_kv_string(cli_json *j, const char *key, const char *s)
{
    cli_json_key(j, key);
    cli_json_string(j, s);
}

void cli_json_kv_double(cli_json *j, const char *key, double v)
{
    cli_json_key(j, key);
    cli_json_double(j, v);
}

void cli_json_kv_u64(cli_json *j, const char *key, uint64_t v)
{
    cli_json_key(j, key);
    cli_json_u64(j, v);
}

void cli_json_kv_i64(cli_json *j, const char *key, int64_t v)
{
    cli_json_key(j, key);
    cli_json_i64(j, v);
}

void cli_json_kv_bool(cli_json *j, const char *key, bool v)
{
    cli_json_key(j, key);
    cli_json_bool(j, v);
}

/* ===== Latency ===== */

int cli_lat_add(cli_lat *l, double ms)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        double *p = realloc(l->ms, cap * sizeof *p);
        if (!p) return -1;
        l->ms = p;
        l->cap = cap;
    }
    l->ms[l->n++] = ms;
    return 0;
}

int cli_lat_merge(cli_lat *dst, const cli_lat *src)
{
    for (size_t i = 0; i < src->n; i++)
        if (cli_lat_add(dst, src->ms[i]) != 0) return -1;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cli_lat_pct(cli_lat *l, double p)
{
    if (l->n == 0) return 0;
    qsort(l->ms, l->n, sizeof *l->ms, cmp_double);
    /* nearest rank: the smallest value with at least p% of the sample at or below it */
    double r = ceil(p / 100.0 * (double)l->n);
    size_t i = r < 1 ? 0 : (size_t)r - 1;
    if (i >= l->n) i = l->n - 1;
    return l->ms[i];
}

void cli_lat_free(cli_lat *l)
{
    free(l->ms);
    memset(l, 0, sizeof *l);
}

/* ===== Progress ===== */

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, const char *what, uint64_t total, FILE *f)
{
    memset(p, 0, sizeof *p);
    p->what = what;
    p->total = total;
    p->f = f;
    p->tty = isatty(fileno(f)) != 0;
    p->start = p->last_print = cli_now();
}

/* "1:05" or "1:02:03" */
static void fmt_hms(char *b, size_t cap, double s)
{
    if (!(s >= 0) || s > 359999) {
        snprintf(b, cap, "--:--");
        return;
    }
    unsigned t = (unsigned)(s + 0.5);
    if (t >= 3600) snprintf(b, cap, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
    else snprintf(b, cap, "%u:%02u", t / 60, t % 60);
}

void cli_progress_format(char *buf, size_t cap, const char *what, uint64_t done, uint64_t total,
                         double elapsed_s, int bar_width)
{
    double rate = elapsed_s > 0 ? (double)done / elapsed_s : 0;
    char eta[32] = "--:--";
    if (total && rate > 0 && done <= total) fmt_hms(eta, sizeof eta, (double)(total - done) / rate);
    char bar[128] = "";
    if (bar_width > 0 && total) {
        if (bar_width > 100) bar_width = 100;
        int fill = (int)((double)done / (double)total * bar_width);
        if (fill > bar_width) fill = bar_width;
        bar[0] = '[';
        for (int i = 0; i < bar_width; i++) bar[1 + i] = i < fill ? '#' : '.';
        bar[1 + bar_width] = ']';
        bar[2 + bar_width] = ' ';
        bar[3 + bar_width] = 0;
    }
    if (total)
        snprintf(buf, cap, "%s %s%" PRIu64 "/%" PRIu64 " rows (%.0f%%) %.0f rows/s ETA %s", what, bar,
                 done, total, 100.0 * (double)done / (double)total, rate, eta);
    else
        snprintf(buf, cap, "%s %" PRIu64 " rows %.0f rows/s", what, done, rate);
}

void cli_progress_update(cli_progress *p, uint64_t done, bool force)
{
    double t = cli_now();
    double every = p->tty ? 0.2 : 2.0;
    if (!force && t - p->last_print < every) return;
    p->last_print = t;
    char line[256];
    cli_progress_format(line, sizeof line, p->what, done, p->total, t - p->start, p->tty ? 30 : 0);
    if (p->tty) fprintf(p->f, "\r%s\033[K", line);
    else fprintf(p->f, "%s\n", line);
    fflush(p->f);
    p->printed = true;
}

void cli_progress_end(cli_progress *p, uint64_t done)
{
    cli_progress_update(p, done, true);
    if (p->tty) fputc('\n', p->f);
    fflush(p->f);
}
