/*
 * store.c: the durable store: the data directory's lock, RocksDB and its column families, keys,
 * the format version and the meta records.
 *
 * Column families: `meta` ("format" -> u32 version, "last_seq" -> big-endian u64 of the last
 * committed seq, "next_coll_id" -> big-endian u64, "coll/" + big-endian u32 id -> CollectionMeta),
 * `items` (big-endian collection id + big-endian item id -> Item) and `log` (big-endian seq ->
 * LogRecord). Big-endian keys sort in numeric order, so the log iterates by seq and a collection's
 * items are one key range (a drop is one DeleteRange).
 *
 * Vectors hardly compress, so items and log are stored uncompressed; the log is trimmed behind
 * snapshots with DeleteRange.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_internal.h"

static const char *const cf_names[VS_CF_COUNT] = {"default", "meta", "items", "log"};

/* Writes v big-endian into p[0..8). */
void vs_store_put_be64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (char)(v & 0xff);
        v >>= 8;
    }
}

/* Reads a big-endian u64 from p[0..8). */
uint64_t vs_store_be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (uint8_t)p[i];
    return v;
}

/* Key of an item: collection id then item id, both big-endian. */
void vs_store_item_key(uint32_t coll, uint64_t id, char key[12])
{
    key[0] = (char)(coll >> 24);
    key[1] = (char)(coll >> 16);
    key[2] = (char)(coll >> 8);
    key[3] = (char)coll;
    vs_store_put_be64(key + 4, id);
}

/* Key of a log record: the seq, big-endian. */
void vs_store_seq_key(uint64_t seq, char key[8])
{
    vs_store_put_be64(key, seq);
}

/* Meta key of a collection: "coll/" and the big-endian id. */
void vs_store_coll_key(uint32_t id, char key[9])
{
    memcpy(key, "coll/", 5);
    key[5] = (char)(id >> 24);
    key[6] = (char)(id >> 16);
    key[7] = (char)(id >> 8);
    key[8] = (char)id;
}

/* Maps a RocksDB error to a status (ENOSPC is "disk full", UNAVAILABLE) and frees err. */
vs_err vs_store_error(vs_status *st, vs_err code, const char *what, char *err)
{
    const char *m = err ? err : "unknown error";
    vs_err rc;
    if (strstr(m, "No space left") || strstr(m, "NoSpace") || strstr(m, "no space"))
        rc = vs_status_set(st, VS_ERR_UNAVAILABLE, "disk full: %s: %s", what, m);
    else
        rc = vs_status_set(st, code, "%s: %s", what, m);
    rocksdb_free(err);
    return rc;
}

/* mkdir -p for one level, fine when it exists. */
static vs_err make_dir(const char *path, vs_status *st)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return vs_status_set(st, VS_ERR_IO, "cannot create directory '%s': %s", path,
                             strerror(errno));
    return VS_OK;
}

/* Reads meta key k into a malloc'd value; *val NULL when absent. */
static vs_err meta_get(vs_store *s, const rocksdb_snapshot_t *snap, const char *k, size_t klen,
                       char **val, size_t *vlen, vs_status *st)
{
    char *err = NULL;
    rocksdb_readoptions_t *ro = s->ro;
    rocksdb_readoptions_t *own = NULL;
    if (snap) {
        own = rocksdb_readoptions_create();
        rocksdb_readoptions_set_snapshot(own, snap);
        ro = own;
    }
    *val = rocksdb_get_cf(s->db, ro, s->cf[VS_CF_META], k, klen, vlen, &err);
    if (own)
        rocksdb_readoptions_destroy(own);
    if (err)
        return vs_store_error(st, VS_ERR_IO, "reading meta", err);
    return VS_OK;
}

/* Reads meta "last_seq" at snap (NULL = now); 0 when absent. */
vs_err vs_store_read_last_seq(vs_store *s, const rocksdb_snapshot_t *snap, uint64_t *seq,
                              vs_status *st)
{
    char *v;
    size_t vl;
    vs_err rc = meta_get(s, snap, "last_seq", 8, &v, &vl, st);
    if (rc)
        return rc;
    *seq = 0;
    if (v) {
        if (vl != 8) {
            rocksdb_free(v);
            return vs_status_set(st, VS_ERR_DATA_LOSS, "meta 'last_seq' has %zu bytes, not 8", vl);
        }
        *seq = vs_store_be64(v);
        rocksdb_free(v);
    }
    return VS_OK;
}

/* Reads every "coll/" record in meta at snap (NULL = now). */
vs_err vs_store_read_collections(vs_store *s, const rocksdb_snapshot_t *snap,
                                 Vsstore__CollectionMeta ***out, size_t *n, vs_status *st)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    if (snap)
        rocksdb_readoptions_set_snapshot(ro, snap);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[VS_CF_META]);
    Vsstore__CollectionMeta **arr = NULL;
    size_t cnt = 0, cap = 0;
    vs_err rc = VS_OK;
    for (rocksdb_iter_seek(it, "coll/", 5); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl != 9 || memcmp(k, "coll/", 5) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vl);
        Vsstore__CollectionMeta *m =
            vsstore__collection_meta__unpack(NULL, vl, (const uint8_t *)v);
        if (!m) {
            rc = vs_status_set(st, VS_ERR_DATA_LOSS, "meta record of collection %u does not decode",
                               (unsigned)((uint8_t)k[5] << 24 | (uint8_t)k[6] << 16 |
                                          (uint8_t)k[7] << 8 | (uint8_t)k[8]));
            break;
        }
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            void *na = realloc(arr, cap * sizeof *arr);
            if (!na) {
                vsstore__collection_meta__free_unpacked(m, NULL);
                rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
                break;
            }
            arr = na;
        }
        arr[cnt++] = m;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (!rc && err)
        rc = vs_store_error(st, VS_ERR_IO, "reading collections", err);
    else
        rocksdb_free(err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (rc) {
        for (size_t i = 0; i < cnt; i++)
            vsstore__collection_meta__free_unpacked(arr[i], NULL);
        free(arr);
        return rc;
    }
    *out = arr;
    *n = cnt;
    return VS_OK;
}

/* Takes <dir>/vecscan.lock with flock; FAILED_PRECONDITION when another process has it. */
static vs_err take_lock(vs_store *s, vs_status *st)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/vecscan.lock", s->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return vs_status_set(st, VS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = {0};
        ssize_t r = pread(fd, pid, sizeof pid - 1, 0);
        if (r > 0 && pid[r - 1] == '\n')
            pid[r - 1] = 0;
        close(fd);
        return vs_status_set(st, VS_ERR_FAILED_PRECONDITION,
                             "data dir '%s' is held by another process (pid %s); stop it first",
                             s->dir, r > 0 ? pid : "?");
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* the pid is only informative */
    }
    s->lock_fd = fd;
    return VS_OK;
}

/* Reads or writes the format version: a new store gets the current one, an unknown one is
 * refused. */
static vs_err check_format(vs_store *s, vs_status *st)
{
    char *v;
    size_t vl;
    vs_err rc = meta_get(s, NULL, "format", 6, &v, &vl, st);
    if (rc)
        return rc;
    if (!v) {
        /* A store without a version must be empty: nothing else is ever written before it. */
        char *err = NULL;
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[VS_CF_ITEMS]);
        rocksdb_iter_seek_to_first(it);
        bool has_items = rocksdb_iter_valid(it);
        rocksdb_iter_destroy(it);
        it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[VS_CF_META]);
        rocksdb_iter_seek_to_first(it);
        bool has_meta = rocksdb_iter_valid(it);
        rocksdb_iter_destroy(it);
        if (has_items || has_meta)
            return vs_status_set(st, VS_ERR_FAILED_PRECONDITION,
                                 "store in '%s' has data but no format version; it was not "
                                 "written by vecscan", s->db_dir);
        char ver[4] = {0, 0, 0, (char)VS_STORE_FORMAT_VERSION};
        rocksdb_put_cf(s->db, s->wo_sync, s->cf[VS_CF_META], "format", 6, ver, 4, &err);
        if (err)
            return vs_store_error(st, VS_ERR_IO, "writing the format version", err);
        return VS_OK;
    }
    uint32_t ver = 0;
    if (vl == 4)
        ver = (uint32_t)(uint8_t)v[0] << 24 | (uint32_t)(uint8_t)v[1] << 16 |
              (uint32_t)(uint8_t)v[2] << 8 | (uint8_t)v[3];
    rocksdb_free(v);
    if (vl != 4 || ver != VS_STORE_FORMAT_VERSION)
        return vs_status_set(st, VS_ERR_FAILED_PRECONDITION,
                             "store in '%s' has format version %u; this build reads version %u "
                             "only (use the vecscan release that wrote it)",
                             s->db_dir, (unsigned)ver, VS_STORE_FORMAT_VERSION);
    return VS_OK;
}

/* Opens the store: lock, RocksDB with its column families, format version, counters. */
vs_err vs_store_open(const char *dir, vs_log_fn log, void *log_ctx, vs_store **out, vs_status *st)
{
    vs_store *s = calloc(1, sizeof *s);
    if (!s)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    s->lock_fd = -1;
    s->log = log;
    s->log_ctx = log_ctx;
    size_t dl = strlen(dir);
    s->dir = strdup(dir);
    s->db_dir = malloc(dl + 8);
    s->snap_dir = malloc(dl + 16);
    vs_err rc;
    if (!s->dir || !s->db_dir || !s->snap_dir) {
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    sprintf(s->db_dir, "%s/db", dir);
    sprintf(s->snap_dir, "%s/snapshots", dir);
    if ((rc = make_dir(dir, st)) || (rc = make_dir(s->snap_dir, st)) || (rc = take_lock(s, st)))
        goto fail;

    {
        /* Recovered WAL stays in memtables instead of being written out as L0 files during open
         * (a faster restart); the C API of 7.8 has no setter for it. */
        rocksdb_options_t *base = rocksdb_options_create();
        char *oerr = NULL;
        s->opts = rocksdb_options_create();
        rocksdb_get_options_from_string(base, "avoid_flush_during_recovery=true", s->opts, &oerr);
        if (oerr) {
            vs_elog(log, log_ctx, VS_LOG_WARN, "store: %s", oerr);
            rocksdb_free(oerr);
        }
        rocksdb_options_destroy(base);
    }
    rocksdb_options_set_create_if_missing(s->opts, 1);
    rocksdb_options_set_create_missing_column_families(s->opts, 1);
    rocksdb_options_set_max_background_jobs(s->opts, 2);
    rocksdb_options_set_max_total_wal_size(s->opts, 256u << 20);
    /* FATAL only: RocksDB's own LOG file lives on the same disk, and after a failed append to it
     * (disk full) the Debian build's assertions abort on the next one; our errors come back
     * through the write path anyway. */
    rocksdb_options_set_info_log_level(s->opts, 4 /* FATAL */);
    rocksdb_options_set_keep_log_file_num(s->opts, 2);
    const char *names[VS_CF_COUNT];
    const rocksdb_options_t *cfo[VS_CF_COUNT];
    for (int i = 0; i < VS_CF_COUNT; i++) {
        s->cf_opts[i] = rocksdb_options_create();
        rocksdb_options_set_compression(s->cf_opts[i], rocksdb_no_compression);
        rocksdb_options_set_write_buffer_size(s->cf_opts[i],
                                              i == VS_CF_ITEMS || i == VS_CF_LOG ? 64u << 20
                                                                                 : 4u << 20);
        names[i] = cf_names[i];
        cfo[i] = s->cf_opts[i];
    }
    char *err = NULL;
    s->db = rocksdb_open_column_families(s->opts, s->db_dir, VS_CF_COUNT, names, cfo, s->cf, &err);
    if (err) {
        rc = vs_store_error(st, VS_ERR_IO, "opening RocksDB", err);
        s->db = NULL;
        goto fail;
    }
    s->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wo_sync, 1);
    s->wo_nosync = rocksdb_writeoptions_create();
    s->wo_nowal = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(s->wo_nowal, 1);
    s->ro = rocksdb_readoptions_create();
    if ((rc = check_format(s, st)) || (rc = vs_store_read_last_seq(s, NULL, &s->last_seq, st)))
        goto fail;
    char *v;
    size_t vl;
    if ((rc = meta_get(s, NULL, "next_coll_id", 12, &v, &vl, st)))
        goto fail;
    s->next_coll_id = 1;
    if (v) {
        if (vl == 8)
            s->next_coll_id = (uint32_t)vs_store_be64(v);
        rocksdb_free(v);
    }
    *out = s;
    return VS_OK;
fail:
    vs_store_close(s);
    return rc;
}

/* Closes RocksDB (flushing the WAL to disk) and releases the lock. */
void vs_store_close(vs_store *s)
{
    if (!s)
        return;
    if (s->db) {
        char *err = NULL;
        if (!atomic_load(&s->write_failed)) {
            /* a clean close flushes the memtables, so the next open has no WAL to replay */
            rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
            rocksdb_flushoptions_set_wait(fo, 1);
            for (int i = VS_CF_META; i < VS_CF_COUNT && !err; i++)
                rocksdb_flush_cf(s->db, fo, s->cf[i], &err);
            rocksdb_flushoptions_destroy(fo);
            rocksdb_free(err);
            err = NULL;
            rocksdb_flush_wal(s->db, 1, &err);
        }
        rocksdb_free(err);
        for (int i = 0; i < VS_CF_COUNT; i++)
            if (s->cf[i])
                rocksdb_column_family_handle_destroy(s->cf[i]);
        rocksdb_close(s->db);
    }
    for (int i = 0; i < VS_CF_COUNT; i++)
        if (s->cf_opts[i])
            rocksdb_options_destroy(s->cf_opts[i]);
    if (s->opts)
        rocksdb_options_destroy(s->opts);
    if (s->wo_sync)
        rocksdb_writeoptions_destroy(s->wo_sync);
    if (s->wo_nosync)
        rocksdb_writeoptions_destroy(s->wo_nosync);
    if (s->wo_nowal)
        rocksdb_writeoptions_destroy(s->wo_nowal);
    if (s->ro)
        rocksdb_readoptions_destroy(s->ro);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    free(s->dir);
    free(s->db_dir);
    free(s->snap_dir);
    free(s);
}
