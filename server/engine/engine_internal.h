/*
 * engine_internal.h: what the engine's files share: the store, the internal item, collections,
 * the writer's requests, the executor's apply records, and the engine itself.
 *
 * Who touches what:
 *   - the catalog (engine->colls) is guarded by cat_mu; a collection's schema is immutable and may
 *     be read by any thread holding a reference;
 *   - a collection's index and attribute store are touched only by the executor thread (and by
 *     recovery before the threads start, and by nobody after the collection is freed);
 *   - the writer thread alone assigns seqs and writes items and log records; the snapshot thread
 *     reads RocksDB through a RocksDB snapshot and trims the log.
 */
#ifndef VS_ENGINE_INTERNAL_H
#define VS_ENGINE_INTERNAL_H

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>

#include "storage.pb-c.h"
#include "vs_engine.h"

#define VS_STORE_FORMAT_VERSION 1u
#define VS_SNAPSHOT_FORMAT_VERSION 1u

/* ===== Logging (engine.c) ===== */

/* Formats one line and hands it to fn (stderr when NULL, INFO and above). */
void vs_elog(vs_log_fn fn, void *ctx, vs_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t vs_now_ns(void);

/* ===== The store (store.c) ===== */

enum { VS_CF_DEFAULT = 0, VS_CF_META, VS_CF_ITEMS, VS_CF_LOG, VS_CF_COUNT };

typedef struct vs_store {
    char *dir, *db_dir, *snap_dir;
    int lock_fd;
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_options_t *cf_opts[VS_CF_COUNT];
    rocksdb_column_family_handle_t *cf[VS_CF_COUNT];
    rocksdb_writeoptions_t *wo_sync, *wo_nosync, *wo_nowal;
    rocksdb_readoptions_t *ro;
    vs_log_fn log;
    void *log_ctx;
    _Atomic int write_failed; /* a write or sync failed: RocksDB takes no more writes (not even
                                 a FlushWAL, which its assertions refuse) */
    uint64_t last_seq;     /* meta "last_seq" when opened */
    uint32_t next_coll_id; /* meta "next_coll_id" when opened */
} vs_store;

/* Takes the directory's lock, opens (or creates) RocksDB with its column families and checks the
 * format version. *out is the caller's (vs_store_close). */
vs_err vs_store_open(const char *dir, vs_log_fn log, void *log_ctx, vs_store **out, vs_status *st);
/* Closes RocksDB and releases the lock; NULL is fine. */
void vs_store_close(vs_store *s);
/* Big-endian key helpers. */
void vs_store_item_key(uint32_t coll, uint64_t id, char key[12]);
void vs_store_seq_key(uint64_t seq, char key[8]);
uint64_t vs_store_be64(const char *p);
void vs_store_put_be64(char *p, uint64_t v);
/* The meta key of collection id ("coll/" + 4 big-endian bytes). */
void vs_store_coll_key(uint32_t id, char key[9]);
/* Turns a RocksDB error string into a status: ENOSPC -> UNAVAILABLE "disk full", else the given
 * code; frees err. */
vs_err vs_store_error(vs_status *st, vs_err code, const char *what, char *err);
/* Reads every collection in meta into CollectionMeta messages (caller frees each with
 * vsstore__collection_meta__free_unpacked, and the array with free). */
vs_err vs_store_read_collections(vs_store *s, const rocksdb_snapshot_t *snap,
                                 Vsstore__CollectionMeta ***out, size_t *n, vs_status *st);
/* Reads meta "last_seq" at snap (NULL = now). */
vs_err vs_store_read_last_seq(vs_store *s, const rocksdb_snapshot_t *snap, uint64_t *seq,
                              vs_status *st);

/* ===== Items (item.c) ===== */

/* One attribute value of an item. tags point into memory the item owns. */
typedef struct vs_eattr {
    uint32_t field;
    vs_attr_type type;
    int64_t ival;
    uint32_t n_tags;
    vs_attr_str *tags;
} vs_eattr;

/* An item as the engine holds it between the caller and the index: owned vectors (as given) and
 * attributes sorted by field. Freed with vs_eitem_free. */
typedef struct vs_eitem {
    uint64_t id;
    uint32_t vec_mask;
    float *vec[VS_MAX_FIELDS];
    uint32_t n_attrs;
    vs_eattr *attrs;
} vs_eitem;

/* Frees it (NULL is fine). */
void vs_eitem_free(vs_eitem *it);
/* A deep copy, or NULL when out of memory. */
vs_eitem *vs_eitem_copy(const vs_eitem *it, const uint32_t *dims);
/* Sets attribute a (copied) in it, replacing one of the same field. false when out of memory. */
bool vs_eitem_set_attr(vs_eitem *it, const vs_eattr *a);
/* Removes the attribute of field f, if any. */
void vs_eitem_clear_attr(vs_eitem *it, uint32_t f);
/* Packs it as a storage Item; *buf (malloc) and *len are the caller's. dims: per field. */
vs_err vs_eitem_pack(const vs_eitem *it, const uint32_t *dims, uint32_t n_fields, uint8_t **buf,
                     size_t *len, vs_status *st);
/* Unpacks a storage Item, checking it against the schema; *out is the caller's. DATA_LOSS when the
 * bytes do not decode or do not fit the schema. */
vs_err vs_eitem_unpack(const uint8_t *buf, size_t len, const uint32_t *dims, uint32_t n_fields,
                       const vs_attr_schema *attrs, vs_eitem **out, vs_status *st);

/* ===== Collections (collection.c) ===== */

typedef struct vs_coll {
    atomic_int refs;
    uint32_t id;
    char name[VS_COLLECTION_NAME_MAX + 1];
    uint64_t created_seq;
    vs_field_spec fields[VS_MAX_FIELDS];
    uint32_t n_fields;
    uint32_t dims[VS_MAX_FIELDS];
    vs_attr_schema *attrs;      /* immutable */
    vs_index *index;            /* executor only */
    vs_attr_store *astore;      /* executor only */
    bool dropped;               /* executor only: its DROP has been applied */
    _Atomic uint64_t stat_count;
    _Atomic uint64_t stat_bytes[VS_MAX_FIELDS];
    _Atomic uint64_t stat_device_bytes; /* GPU memory the index holds */
} vs_coll;

/* Checks name against [A-Za-z0-9_-]{1,64}. */
vs_err vs_coll_check_name(const char *name, vs_status *st);
/* Builds a collection (refs = 1) with an empty index and attribute store. */
vs_err vs_coll_create(uint32_t id, const char *name, const vs_field_spec *fields, uint32_t n_fields,
                      const vs_attr_schema *attrs, uint64_t created_seq,
                      const vs_index_options *iopt, vs_coll **out, vs_status *st);
/* Builds a collection from its stored meta. */
vs_err vs_coll_from_meta(const Vsstore__CollectionMeta *m, const vs_index_options *iopt,
                         vs_coll **out, vs_status *st);
/* Fills a CollectionMeta whose strings and arrays point into c (and into *vf / *af, arrays the
 * caller provides: n_fields and the attribute count). */
void vs_coll_to_meta(const vs_coll *c, Vsstore__CollectionMeta *m, Vsstore__VectorField *vf,
                     Vsstore__VectorField **vfp, Vsstore__AttrField *af, Vsstore__AttrField **afp);
/* Takes a reference. */
vs_coll *vs_coll_ref(vs_coll *c);
/* Drops a reference; the last frees the collection. NULL is fine. */
void vs_coll_unref(vs_coll *c);
/* Field number of a vector field by name, or -1. */
int vs_coll_vfield(const vs_coll *c, const char *name);
/* Checks a mutation against the schema and builds the item it gives (upsert: the new state;
 * patch: the given fields) with the clear masks. *item is the caller's (NULL for delete). */
vs_err vs_coll_build_mutation(const vs_coll *c, const vs_mutation *m, size_t idx, vs_eitem **item,
                              uint32_t *vec_clear, uint64_t **attr_clear, uint32_t *n_attr_clear,
                              vs_status *st);
/* Merges a patch into the old state (may be NULL): a new item, or NULL when out of memory. */
vs_eitem *vs_coll_merge_patch(const vs_coll *c, const vs_eitem *old, const vs_eitem *patch,
                              uint32_t vec_clear, const uint64_t *attr_clear,
                              uint32_t n_attr_clear);
/* Applies an item's full state to the index and attribute store (executor, recovery). */
vs_err vs_coll_apply_put(vs_coll *c, const vs_eitem *it, vs_status *st);
/* Applies many items' full states at once (recovery, snapshot load): ids must be distinct. */
vs_err vs_coll_apply_puts(vs_coll *c, vs_eitem *const *items, size_t n, vs_status *st);
/* Deletes id from the index and clears its attributes (executor, recovery). */
vs_err vs_coll_apply_del(vs_coll *c, uint64_t id, vs_status *st);
/* Publishes count and field bytes for describe (executor). */
void vs_coll_publish_stats(vs_coll *c);

/* ===== Write requests (writer.c) ===== */

typedef enum vs_wreq_kind { VS_WREQ_MUTATE = 0, VS_WREQ_CREATE, VS_WREQ_DROP } vs_wreq_kind;

typedef struct vs_wreq {
    struct vs_wreq *next;
    vs_wreq_kind kind;
    vs_coll *coll;          /* a reference: MUTATE, DROP; CREATE: the new collection (id unset) */
    size_t n;
    uint8_t *ops;           /* vs_mutation_op per mutation */
    uint64_t *ids;
    vs_eitem **items;       /* upsert: the new state; patch: the given fields; delete: NULL */
    uint32_t *vec_clear;    /* patch */
    uint64_t **attr_clear;  /* patch: sorted attribute fields to remove (NULL = none) */
    uint32_t *n_attr_clear;
    bool *existed;
    uint64_t first_seq, last_seq; /* given by the writer */
    vs_write_cb cb;
    void *ctx;
} vs_wreq;

/* Frees a request and what it holds (items still owned by it). */
void vs_wreq_free(vs_wreq *r);

/* ===== Apply records (executor.c) ===== */

typedef enum vs_apply_kind { VS_APPLY_PUT = 1, VS_APPLY_DEL, VS_APPLY_CREATE, VS_APPLY_DROP } vs_apply_kind;

typedef struct vs_apply {
    struct vs_apply *next;
    uint64_t seq;
    vs_apply_kind kind;
    vs_coll *coll;          /* a reference */
    uint64_t id;            /* DEL */
    vs_eitem *item;         /* PUT: owned */
} vs_apply;

/* ===== Search requests (executor.c) ===== */

typedef struct vs_sreq {
    struct vs_sreq *next;
    vs_coll *coll;                    /* a reference */
    vs_term terms[VS_MAX_TERMS];
    uint32_t n_terms;
    float *vecbuf;                    /* the terms' vectors, owned */
    vs_combine combine;
    uint32_t k, rerank_factor;
    struct vs_filter *filter;         /* owned; NULL = none */
    uint64_t min_seq;
    uint64_t deadline_ns;             /* 0 = none */
    uint64_t seq_deadline_ns;         /* bound of the min_seq wait */
    bool with_attrs;
    uint64_t enq_ns;
    vs_search_cb cb;
    void *ctx;
} vs_sreq;

/* ===== Result memory (engine.c) ===== */

/* A bump allocator whose blocks are freed together. */
typedef struct vs_arena {
    struct vs_arena_blk *head;
} vs_arena;

/* n bytes, 16-aligned, zeroed; NULL when out of memory. */
void *vs_arena_alloc(vs_arena *a, size_t n);
/* A copy of s[0 .. len) with a NUL after it. */
char *vs_arena_strdup(vs_arena *a, const char *s, size_t len);
/* Frees every block. */
void vs_arena_free(vs_arena *a);

/* A search result with its memory. */
typedef struct vs_result_box {
    vs_search_result r; /* first: the public pointer is the box */
    vs_arena arena;
} vs_result_box;

/* A new, empty result (NULL when out of memory). */
vs_result_box *vs_result_new(void);
/* Fills out[0 .. n) with the attributes of slot in c (names copied into a). Returns the count. */
uint32_t vs_coll_read_attrs(vs_coll *c, uint32_t slot, vs_arena *a, vs_attr_out **out);

/* ===== The engine (engine.c) ===== */

typedef enum vs_wstate { VS_WSTATE_OK = 0, VS_WSTATE_STOPPED, VS_WSTATE_READ_ONLY } vs_wstate;

struct vs_engine {
    vs_engine_options opt;
    char *data_dir;
    vs_store *store;

    /* the catalog */
    pthread_mutex_t cat_mu;
    vs_coll **colls;
    size_t n_colls, cap_colls;
    uint32_t next_coll_id;       /* writer (and recovery) only */

    /* the writer */
    pthread_mutex_t w_mu;
    pthread_cond_t w_cv;         /* the writer waits for requests */
    vs_wreq *w_head, *w_tail;
    size_t w_queued;             /* mutations queued */
    bool w_stop;
    pthread_t w_thread;
    bool w_started;
    uint64_t next_seq;           /* writer only */
    _Atomic uint64_t last_acked;
    _Atomic int wstate;          /* vs_wstate */
    char werr[VS_STATUS_MSG_LEN];/* written before wstate leaves OK */
    vs_err werr_code;
    _Atomic uint64_t st_commits, st_committed, st_fsyncs, st_fsync_ns_sum, st_fsync_ns_max;
    _Atomic uint64_t log_since_snapshot;

    /* the interval syncer */
    pthread_t sync_thread;
    bool sync_started;
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    bool sync_stop;

    /* the executor */
    pthread_mutex_t x_mu;
    pthread_cond_t x_cv;
    vs_apply *a_head, *a_tail;
    vs_sreq *s_head, *s_tail;
    size_t s_queued;
    size_t x_fire; /* a batch starts once this many searches are queued (0 = max_batch) */
    bool x_stop;
    pthread_t x_thread;
    bool x_started;
    _Atomic uint64_t applied_seq;
    _Atomic uint64_t st_batches, st_batched, st_applied;
    _Atomic uint32_t st_parked;

    /* snapshots */
    pthread_mutex_t sn_mu;
    pthread_cond_t sn_cv;
    bool sn_stop;
    uint64_t sn_requested, sn_done; /* generations */
    vs_err sn_last_err;
    char sn_last_msg[VS_STATUS_MSG_LEN];
    pthread_t sn_thread;
    bool sn_started;
    _Atomic uint64_t st_snapshots, st_snapshot_seq;
    pthread_mutex_t sn_write_mu;  /* one snapshot write at a time */
};

/* Catalog: a reference to the collection named name, or NULL. */
vs_coll *vs_engine_find(vs_engine *e, const char *name);
/* Catalog: a reference to the collection with store id, or NULL. */
vs_coll *vs_engine_find_id(vs_engine *e, uint32_t id);
/* Catalog: adds c (takes the caller's reference). */
vs_err vs_engine_catalog_add(vs_engine *e, vs_coll *c, vs_status *st);
/* Catalog: removes c (drops the catalog's reference). */
void vs_engine_catalog_remove(vs_engine *e, vs_coll *c);

/* Writer (writer.c): starts / stops its threads; queues a request. */
vs_err vs_writer_start(vs_engine *e, vs_status *st);
void vs_writer_stop(vs_engine *e);
vs_err vs_writer_submit(vs_engine *e, vs_wreq *r, vs_status *st);
/* The error a new write gets when writes are stopped, or VS_OK. */
vs_err vs_writer_check(vs_engine *e, vs_status *st);

/* Executor (executor.c). */
vs_err vs_executor_start(vs_engine *e, vs_status *st);
void vs_executor_stop(vs_engine *e);
/* Queues committed mutations (in seq order) for applying; takes the list. */
void vs_executor_push_applies(vs_engine *e, vs_apply *head, vs_apply *tail);
vs_err vs_executor_submit(vs_engine *e, vs_sreq *r, vs_status *st);
/* Frees a search request. */
void vs_sreq_free(vs_sreq *r);
/* Applies one record to its collection (executor, recovery); logs failures. */
void vs_apply_one(vs_engine *e, vs_apply *a);
/* Frees an apply record. */
void vs_apply_free(vs_apply *a);

/* Snapshots (snapshot.c). */
vs_err vs_snapshot_start(vs_engine *e, vs_status *st);
void vs_snapshot_stop(vs_engine *e);
/* Asks the snapshot thread for a snapshot (wait: block until written). */
vs_err vs_snapshot_request(vs_engine *e, bool wait, uint64_t *seq, vs_status *st);
/* Writes a snapshot of the store's current durable state (any thread, memory bounded by one
 * block); trims the log behind the previous snapshot and deletes older files. */
vs_err vs_snapshot_write(vs_store *s, uint64_t *seq_out, vs_status *st);

/* A loaded snapshot: collections (references) with their indexes filled, and its seq. */
typedef struct vs_snapshot_loaded {
    uint64_t seq;
    vs_coll **colls;
    size_t n_colls;
} vs_snapshot_loaded;

/* Lists snapshot files newest first: *paths (malloc'd strings) and *seqs are the caller's. */
vs_err vs_snapshot_list(vs_store *s, char ***paths, uint64_t **seqs, size_t *n, vs_status *st);
/* Loads one snapshot file, checking every section; on error nothing is kept. */
vs_err vs_snapshot_load(const char *path, const vs_index_options *iopt, vs_snapshot_loaded *out,
                        vs_status *st);
/* Frees what a load returned. */
void vs_snapshot_loaded_free(vs_snapshot_loaded *l);

/* Recovery (recovery.c): fills the catalog and indexes from snapshot + log or items. */
vs_err vs_recover(vs_engine *e, vs_status *st);

/* CRC32C (snapshot.c). */
uint32_t vs_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
