/*
 * vs_engine.h: the engine, vecscan's database in one process: named collections (an index, an
 * attribute store and a schema each), a durable store with a write-ahead log (RocksDB), one writer
 * thread that group-commits mutations, one executor thread that batches searches and applies
 * acknowledged mutations between two batches, background snapshots, recovery and bulk import.
 *
 * Threads. Any number of caller threads may call any function here at once, except
 * vs_engine_close (once, after every other call has returned). Writes and searches are
 * asynchronous: vs_engine_write and vs_engine_search check their input in the caller's thread,
 * copy it, queue it and return at once; the answer comes later, exactly once, through the
 * callback, unless the call itself returned an error (then the callback is never called).
 *   - write callbacks run on the writer thread, search callbacks on the executor thread: they
 *     must be quick and must not block (hand the answer to your own loop); they may call
 *     vs_engine_write / vs_engine_search, which never block either.
 *   - a full queue is VS_ERR_RESOURCE_EXHAUSTED at once; nothing waits for room.
 *   - the *_wait variants block the calling thread until the answer (tests, CLI, import, admin).
 *
 * Sequence numbers. Every committed mutation (and every create or drop of a collection) gets the
 * next seq, from 1. A write's ack carries its seqs; acknowledged means durable under the sync
 * policy (always: fsynced; interval: written, fsynced within the interval). applied_seq is the
 * highest seq the executor has applied to indexes and attributes; every search result carries the
 * applied_seq it saw, and a search with min_seq runs only once applied_seq >= min_seq.
 *
 * Failures of the disk. A failed write (ENOSPC, EIO) stops acknowledgements: that write and every
 * later one fail with VS_ERR_UNAVAILABLE naming the reason ("disk full"); a failed fsync makes the
 * engine read-only (VS_ERR_FAILED_PRECONDITION) until it is reopened. Searches go on either way,
 * and what was acknowledged stays.
 *
 * Data directory: <dir>/db (RocksDB: column families meta, items, log), <dir>/snapshots
 * (snap-<seq>.vss), <dir>/vecscan.lock (held by the one process that has the directory open).
 */
#ifndef VS_ENGINE_H
#define VS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "vs_attr_schema.h"
#include "vs_attr_store.h"
#include "vs_status.h"

#define VS_COLLECTION_NAME_MAX 64

/* The code of a search answered unscored because its deadline (or its min_seq wait) ran out; the
 * message starts with "deadline exceeded". */
#define VS_ENGINE_ERR_DEADLINE VS_ERR_DEADLINE_EXCEEDED

typedef struct vs_engine vs_engine;

/* ===== Opening and closing ===== */

typedef enum vs_sync_mode {
    VS_SYNC_ALWAYS = 0, /* fsync before every acknowledgement (group commit shares one fsync) */
    VS_SYNC_INTERVAL    /* acknowledge after the write; fsync every sync_interval_ms */
} vs_sync_mode;

/* Log levels of the log callback. */
typedef enum vs_log_level { VS_LOG_ERROR = 0, VS_LOG_WARN, VS_LOG_INFO, VS_LOG_DEBUG } vs_log_level;

/* Receives one line per event (no newline); may be called from any engine thread. */
typedef void (*vs_log_fn)(void *ctx, vs_log_level level, const char *line);

typedef struct vs_engine_options {
    const char *data_dir;        /* created when missing */
    vs_sync_mode sync;
    uint32_t sync_interval_ms;   /* VS_SYNC_INTERVAL: 0 = 100 */
    uint32_t write_queue_cap;    /* mutations queued for the writer; 0 = 65536 */
    uint32_t search_queue_cap;   /* searches queued for the executor; 0 = 4096 */
    uint32_t max_batch;          /* searches per executor batch; 0 = 64 */
    uint32_t max_wait_us;        /* how long a batch waits to fill after its first search; 0 = none */
    uint32_t max_seq_wait_ms;    /* longest wait for min_seq without a deadline; 0 = 5000 */
    uint64_t snapshot_every;     /* write a snapshot after this many log records; 0 = 1,000,000;
                                    UINT64_MAX = only when asked (vs_engine_snapshot) */
    vs_index_options index;      /* device and search threads of every collection's index */
    vs_log_fn log;               /* NULL = lines to stderr at INFO and above */
    void *log_ctx;
} vs_engine_options;

/* Sets o to the defaults (sync always, the zeros above) for data_dir (kept, not copied). */
void vs_engine_options_init(vs_engine_options *o, const char *data_dir);

/* Opens (creating when needed) the engine on opt->data_dir and recovers: RocksDB replays its own
 * WAL, the newest valid snapshot is loaded and the log after it replayed (or, without one, every
 * item is read back from `items`), then the writer, executor and snapshot threads start. Returns
 * when the engine is ready; a server answers UNAVAILABLE while this runs (call it on a thread of
 * its own). FAILED_PRECONDITION when another process holds the directory or its format version is
 * unknown. *out is the caller's, to free with vs_engine_close. */
vs_err vs_engine_open(const vs_engine_options *opt, vs_engine **out, vs_status *st);

/* Stops taking work, lets the writer commit and acknowledge what is queued, answers every queued
 * search, stops the threads, fsyncs and closes the store. NULL is fine. */
void vs_engine_close(vs_engine *e);

/* ===== Collections ===== */

/* Creates a collection: name [A-Za-z0-9_-]{1,64}, 1..8 vector fields, attribute fields from attrs
 * (may be NULL: none; copied). Blocks until the creation is durable; *seq (may be NULL) gets its
 * seq. ALREADY_EXISTS when the name is taken, INVALID_ARGUMENT for a bad schema. */
vs_err vs_engine_create_collection(vs_engine *e, const char *name, const vs_field_spec *fields,
                                   uint32_t n_fields, const vs_attr_schema *attrs, uint64_t *seq,
                                   vs_status *st);

/* Drops a collection and its items; blocks until durable. NOT_FOUND when there is none. */
vs_err vs_engine_drop_collection(vs_engine *e, const char *name, uint64_t *seq, vs_status *st);

/* What describe returns. attrs is the caller's (free with vs_collection_info_clear). */
typedef struct vs_collection_info {
    char name[VS_COLLECTION_NAME_MAX + 1];
    uint32_t id;                          /* the numeric id inside the store */
    uint64_t created_seq;
    vs_field_spec fields[VS_MAX_FIELDS];
    uint32_t n_fields;
    vs_attr_schema *attrs;
    uint64_t count;                       /* live items as of the last apply */
    uint64_t field_bytes[VS_MAX_FIELDS];  /* memory per vector field (vs_index_field_bytes) */
    uint64_t device_bytes;                /* GPU memory its index holds (0 on the CPU backend) */
} vs_collection_info;

/* Fills *out with the collection's schema and sizes. NOT_FOUND when there is none. */
vs_err vs_engine_describe(vs_engine *e, const char *name, vs_collection_info *out, vs_status *st);

/* Frees what describe put in info. */
void vs_collection_info_clear(vs_collection_info *info);

/* The names of every collection, sorted: *names (an array of *n strings) is the caller's, to free
 * with vs_engine_names_free. */
vs_err vs_engine_list(vs_engine *e, char ***names, size_t *n, vs_status *st);

/* Frees what vs_engine_list returned. */
void vs_engine_names_free(char **names, size_t n);

/* ===== Writes ===== */

typedef enum vs_mutation_op {
    VS_MUT_UPSERT = 0, /* the item becomes exactly what is given */
    VS_MUT_PATCH,      /* the given fields replace the item's, `clear` removes some, the rest stay
                          (an absent id is created, as an upsert would) */
    VS_MUT_DELETE      /* removes the item; an absent id succeeds and says so (existed = false) */
} vs_mutation_op;

/* One vector of a mutation: the field's name and dim values (as given: a cosine field is
 * normalised by the index, the store keeps the values given). */
typedef struct vs_vector_in {
    const char *field;
    const float *values;
    uint32_t dim;
} vs_vector_in;

/* One attribute of a mutation; type must be the field's type. An empty tag set (n_tags = 0)
 * means the item lacks the field. */
typedef struct vs_attr_in {
    const char *field;
    vs_attr_type type;
    int64_t int_value;        /* VS_ATTR_INT */
    const vs_attr_str *tags;  /* VS_ATTR_TAG: n_tags values */
    uint32_t n_tags;
} vs_attr_in;

typedef struct vs_mutation {
    vs_mutation_op op;
    uint64_t id;
    const vs_vector_in *vectors;  /* UPSERT, PATCH */
    uint32_t n_vectors;
    const vs_attr_in *attrs;      /* UPSERT, PATCH */
    uint32_t n_attrs;
    const char *const *clear;     /* PATCH: names of vector or attribute fields to remove */
    uint32_t n_clear;
} vs_mutation;

/* The answer to one vs_engine_write call. Valid only during the callback. */
typedef struct vs_write_ack {
    vs_err code;          /* VS_OK: durable under the sync policy */
    const char *msg;      /* "" on success, else the reason */
    uint64_t first_seq;   /* mutation i got seq first_seq + i; 0 on error */
    uint64_t last_seq;
    size_t n;
    const bool *existed;  /* per mutation: whether the id existed before it (NULL on error) */
} vs_write_ack;

/* Called once per accepted write, on the writer thread. */
typedef void (*vs_write_cb)(void *ctx, const vs_write_ack *ack);

/* Checks mutations m[0 .. n) against the collection's schema (dims, finite values, cosine zero
 * vectors, known fields, attribute types, duplicate fields) and queues them as one atomic group:
 * they commit together in one WriteBatch with consecutive seqs, or not at all. The caller keeps m
 * (everything is copied before return). VS_OK: cb will be called once. Otherwise cb is never
 * called: INVALID_ARGUMENT naming the bad mutation and part (nothing is written), NOT_FOUND,
 * RESOURCE_EXHAUSTED (queue full), UNAVAILABLE (writes stopped: disk full or an I/O error),
 * FAILED_PRECONDITION (read-only after a failed fsync). */
vs_err vs_engine_write(vs_engine *e, const char *collection, const vs_mutation *m, size_t n,
                       vs_write_cb cb, void *ctx, vs_status *st);

/* vs_engine_write, then waits for the ack: *last_seq (may be NULL) gets the last seq, existed
 * (may be NULL, else n entries) whether each id existed before. */
vs_err vs_engine_write_wait(vs_engine *e, const char *collection, const vs_mutation *m, size_t n,
                            uint64_t *last_seq, bool *existed, vs_status *st);

/* ===== Reads ===== */

/* One attribute of a result item; names and values live as long as the result. */
typedef struct vs_attr_out {
    const char *field;
    vs_attr_type type;
    int64_t int_value;
    const vs_attr_str *tags;
    uint32_t n_tags;
} vs_attr_out;

typedef struct vs_vector_out {
    const char *field;
    uint32_t dim;
    const float *values;  /* as given */
} vs_vector_out;

/* One search term: a vector field by name, 1..16 query vectors (n_vectors x dim floats), weight
 * (0 = 1; otherwise finite and > 0). */
typedef struct vs_search_term_in {
    const char *field;
    const float *vectors; /* n_vectors x dim floats */
    uint32_t n_vectors;
    uint32_t dim;         /* values per vector: must equal the field's dim (checked before reading) */
    float weight;
} vs_search_term_in;

typedef struct vs_search_request {
    const char *collection;
    const vs_search_term_in *terms; /* 1..8 */
    uint32_t n_terms;
    vs_combine combine;
    uint32_t k;                     /* 1..10000 */
    uint32_t rerank_factor;         /* 0 = the index's default */
    const char *filter;             /* NULL or "" = every item; else filter_len bytes (or a C
                                       string when filter_len is 0) */
    size_t filter_len;
    uint64_t min_seq;               /* 0 = none; above the last acked seq = OUT_OF_RANGE */
    uint64_t deadline_ns;           /* CLOCK_MONOTONIC; 0 = none (the min_seq wait is still bounded
                                       by max_seq_wait_ms); a request past it is not scored */
    bool with_attributes;
} vs_search_request;

typedef struct vs_search_hit {
    uint64_t id;
    float score;
    uint32_t n_attrs;            /* with_attributes: the attributes the item has */
    const vs_attr_out *attrs;
} vs_search_hit;

/* A search's answer; the callee owns it and frees it with vs_search_result_free. */
typedef struct vs_search_result {
    vs_err code;                  /* OK, VS_ENGINE_ERR_DEADLINE, NOT_FOUND (dropped meanwhile), ... */
    char msg[VS_STATUS_MSG_LEN];
    uint64_t applied_seq;         /* the applied_seq the search saw */
    uint32_t n_hits;
    vs_search_hit *hits;          /* best first */
} vs_search_result;

/* Frees r (NULL is fine). */
void vs_search_result_free(vs_search_result *r);

/* Called once per accepted search, on the executor thread; res is the callee's. */
typedef void (*vs_search_cb)(void *ctx, vs_search_result *res);

/* Checks req (collection, fields, dims, finite values, weights, k, the filter's syntax and fields,
 * min_seq) and queues it. The caller keeps req. VS_OK: cb will be called once. Otherwise cb is never
 * called: INVALID_ARGUMENT, NOT_FOUND, OUT_OF_RANGE (min_seq above the last acked seq),
 * RESOURCE_EXHAUSTED (queue full), VS_ENGINE_ERR_DEADLINE (already past). */
vs_err vs_engine_search(vs_engine *e, const vs_search_request *req, vs_search_cb cb, void *ctx,
                        vs_status *st);

/* vs_engine_search, then waits: *out is the caller's (vs_search_result_free); its code may still be
 * an error (VS_ENGINE_ERR_DEADLINE), which is returned too. */
vs_err vs_engine_search_wait(vs_engine *e, const vs_search_request *req, vs_search_result **out,
                             vs_status *st);

/* One item read back by vs_engine_get. */
typedef struct vs_item_out {
    uint64_t id;
    uint32_t n_vectors;
    const vs_vector_out *vectors;
    uint32_t n_attrs;
    const vs_attr_out *attrs;
} vs_item_out;

/* The answer of vs_engine_get; free with vs_get_result_free. */
typedef struct vs_get_result {
    size_t n_found;
    vs_item_out *items;      /* in the order asked, those found */
    size_t n_missing;
    uint64_t *missing;       /* ids not found, in the order asked */
} vs_get_result;

/* Reads items from the durable store as they were given (not normalised or quantized), in the
 * calling thread. with_vectors false leaves vectors out. *out is the caller's. */
vs_err vs_engine_get(vs_engine *e, const char *collection, const uint64_t *ids, size_t n,
                     bool with_vectors, vs_get_result **out, vs_status *st);

/* Frees r (NULL is fine). */
void vs_get_result_free(vs_get_result *r);

/* ===== State ===== */

typedef struct vs_engine_stats {
    uint64_t last_acked_seq;
    uint64_t applied_seq;
    uint32_t write_queue_depth, write_queue_cap;   /* mutations */
    uint32_t search_queue_depth, search_queue_cap; /* searches, parked ones included */
    uint64_t commits;             /* WriteBatches written */
    uint64_t committed_mutations; /* mutations in them: / commits = the group-commit size */
    uint64_t fsyncs;
    double fsync_seconds_sum, fsync_seconds_max;
    uint64_t batches, batched_searches; /* executor batches and the searches in them */
    uint64_t applied_mutations;
    uint64_t snapshots_written, last_snapshot_seq;
    uint32_t collections;
    bool writes_stopped;          /* disk full / I/O error, or read-only */
    bool read_only;               /* after a failed fsync */
    char write_error[VS_STATUS_MSG_LEN];
    int device_ordinal;           /* the GPU collections live on (cuda:N), -1 on the CPU */
    uint64_t device_free, device_total; /* its memory, as the driver reports it */
} vs_engine_stats;

/* Fills *out; cheap, any thread. */
void vs_engine_stats_get(vs_engine *e, vs_engine_stats *out);

/* The highest acknowledged seq. */
uint64_t vs_engine_last_acked_seq(vs_engine *e);

/* The highest seq applied to indexes and attributes. */
uint64_t vs_engine_applied_seq(vs_engine *e);

/* Writes a snapshot of the current durable state now and waits for it; *seq (may be NULL) gets
 * the seq it reflects. */
vs_err vs_engine_snapshot(vs_engine *e, uint64_t *seq, vs_status *st);

/* ===== Bulk import ===== */

/* Progress of an import: rows done of rows in total. Called from the importing thread. */
typedef void (*vs_import_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct vs_import_options {
    const char *data_dir;          /* no process may hold it open (vecscan.lock) */
    const char *collection;        /* created with the schema below when absent; else the schema
                                      below must match it (or n_fields = 0: take it as it is) */
    const vs_field_spec *fields;
    uint32_t n_fields;
    const vs_attr_schema *attrs;   /* NULL = none */
    const char *const *vector_files; /* n_fields paths (fvecs, bvecs, fbin, u8bin, i8bin, npy, ...;
                                        formats/dataset.h), row i = item i; NULL = field absent */
    const char *attrs_tsv;         /* NULL = none; columns: optional "id", then attribute fields
                                      by name; an empty cell = absent; tag cells comma-separated */
    uint64_t first_id;             /* ids are first_id + row when the TSV has no id column */
    uint32_t chunk_rows;           /* rows per chunk (memory bound); 0 = 8192 */
    vs_import_progress_fn progress;
    void *progress_ctx;
    vs_log_fn log;                 /* NULL = stderr */
    void *log_ctx;
} vs_import_options;

/* What an import did. */
typedef struct vs_import_stats {
    uint64_t rows;
    uint64_t snapshot_seq;
    double seconds;
} vs_import_stats;

/* Writes every row of the dataset files (and the TSV's attributes) as items of the collection and
 * then a snapshot, so the next vs_engine_open loads them from it. Memory is bounded by chunk_rows.
 * Each row is checked as a mutation would be; a bad row stops the import with its row number. An
 * import that stops half-way leaves the rows it wrote; the next open rebuilds from `items`. */
vs_err vs_engine_import(const vs_import_options *opt, vs_import_stats *stats, vs_status *st);

#endif
