/*
 * recovery.c: from the store on disk to collections in memory, before the engine's threads start.
 *
 *   1. RocksDB has replayed its own WAL on open: `meta`, `items` and `log` hold every committed
 *      WriteBatch, and meta "last_seq" is the last committed seq.
 *   2. The newest snapshot that passes every check is loaded (a bad one is logged and skipped),
 *      and the log records after its seq are replayed on top, each one an item's full state or a
 *      delete, create or drop. The log must run without a gap from the snapshot's seq to last_seq,
 *      and the collections at the end must be those of `meta`; otherwise that snapshot is dropped
 *      too.
 *   3. Without a usable snapshot (none yet, all bad, or an IMPORT record in the log, which replay
 *      cannot redo), every collection is rebuilt from `items`, which always holds the full state.
 * Either way the result equals what `items` holds at last_seq: `items` and `log` are written by the
 * same WriteBatches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

#define REBUILD_BLOCK 4096

typedef struct colls {
    vs_coll **v;
    size_t n;
} colls;

/* The collection with store id id in cs, or NULL. */
static vs_coll *colls_find(colls *cs, uint32_t id)
{
    for (size_t i = 0; i < cs->n; i++)
        if (cs->v[i]->id == id)
            return cs->v[i];
    return NULL;
}

/* Drops every reference in cs. */
static void colls_free(colls *cs)
{
    for (size_t i = 0; i < cs->n; i++)
        vs_coll_unref(cs->v[i]);
    free(cs->v);
    cs->v = NULL;
    cs->n = 0;
}

/* Replays log records after seq up to last onto cs. */
static vs_err replay_log(vs_engine *e, colls *cs, uint64_t seq, uint64_t last, uint64_t *replayed,
                         vs_status *st)
{
    vs_store *s = e->store;
    char k[8];
    vs_store_seq_key(seq + 1, k);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[VS_CF_LOG]);
    uint64_t want = seq + 1;
    vs_err rc = VS_OK;
    *replayed = 0;
    for (rocksdb_iter_seek(it, k, 8); rocksdb_iter_valid(it) && want <= last && !rc;
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *key = rocksdb_iter_key(it, &kl);
        if (kl != 8 || vs_store_be64(key) != want) {
            rc = vs_status_set(st, VS_ERR_DATA_LOSS, "the log has a gap at seq %llu",
                               (unsigned long long)want);
            break;
        }
        const char *v = rocksdb_iter_value(it, &vl);
        Vsstore__LogRecord *r = vsstore__log_record__unpack(NULL, vl, (const uint8_t *)v);
        if (!r || r->seq != want) {
            if (r)
                vsstore__log_record__free_unpacked(r, NULL);
            rc = vs_status_set(st, VS_ERR_DATA_LOSS, "log record %llu does not decode",
                               (unsigned long long)want);
            break;
        }
        vs_coll *c = colls_find(cs, r->collection_id);
        switch (r->kind) {
        case VSSTORE__LOG_RECORD__KIND__PUT: {
            vs_eitem *item;
            if (!c)
                rc = vs_status_set(st, VS_ERR_DATA_LOSS, "log record %llu: unknown collection %u",
                                   (unsigned long long)want, r->collection_id);
            else if (!(rc = vs_eitem_unpack(r->item.data, r->item.len, c->dims, c->n_fields,
                                            c->attrs, &item, st))) {
                rc = vs_coll_apply_put(c, item, st);
                vs_eitem_free(item);
            }
            break;
        }
        case VSSTORE__LOG_RECORD__KIND__DEL:
            if (!c)
                rc = vs_status_set(st, VS_ERR_DATA_LOSS, "log record %llu: unknown collection %u",
                                   (unsigned long long)want, r->collection_id);
            else
                rc = vs_coll_apply_del(c, r->id, st);
            break;
        case VSSTORE__LOG_RECORD__KIND__CREATE: {
            vs_coll *nc;
            if (c || !r->collection)
                rc = vs_status_set(st, VS_ERR_DATA_LOSS, "log record %llu: bad create",
                                   (unsigned long long)want);
            else if (!(rc = vs_coll_from_meta(r->collection, &e->opt.index, &nc, st))) {
                vs_coll **nv = realloc(cs->v, (cs->n + 1) * sizeof *nv);
                if (!nv) {
                    vs_coll_unref(nc);
                    rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
                } else {
                    cs->v = nv;
                    cs->v[cs->n++] = nc;
                }
            }
            break;
        }
        case VSSTORE__LOG_RECORD__KIND__DROP:
            for (size_t i = 0; i < cs->n; i++)
                if (cs->v[i] == c) {
                    vs_coll_unref(c);
                    cs->v[i] = cs->v[--cs->n];
                    break;
                }
            break;
        case VSSTORE__LOG_RECORD__KIND__IMPORT:
            rc = vs_status_set(st, VS_ERR_UNIMPLEMENTED,
                               "seq %llu is a bulk import, which the log cannot replay",
                               (unsigned long long)want);
            break;
        default:
            rc = vs_status_set(st, VS_ERR_DATA_LOSS, "log record %llu: unknown kind %d",
                               (unsigned long long)want, (int)r->kind);
        }
        vsstore__log_record__free_unpacked(r, NULL);
        if (!rc) {
            want++;
            (*replayed)++;
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        if (!rc)
            return vs_store_error(st, VS_ERR_IO, "reading the log", err);
        rocksdb_free(err);
    }
    if (!rc && want <= last)
        rc = vs_status_set(st, VS_ERR_DATA_LOSS, "the log ends at seq %llu, before %llu",
                           (unsigned long long)(want - 1), (unsigned long long)last);
    return rc;
}

/* Whether cs holds exactly the collections of metas (ids and names). */
static bool same_catalog(const colls *cs, Vsstore__CollectionMeta **metas, size_t n)
{
    if (cs->n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < cs->n && !found; j++)
            found = cs->v[j]->id == metas[i]->id && strcmp(cs->v[j]->name, metas[i]->name) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* Rebuilds every collection of metas from `items`. */
static vs_err rebuild_from_items(vs_engine *e, Vsstore__CollectionMeta **metas, size_t n,
                                 colls *cs, uint64_t *rows, vs_status *st)
{
    vs_store *s = e->store;
    vs_err rc = VS_OK;
    *rows = 0;
    cs->v = calloc(n ? n : 1, sizeof *cs->v);
    if (!cs->v)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < n && !rc; i++)
        if (!(rc = vs_coll_from_meta(metas[i], &e->opt.index, &cs->v[cs->n], st)))
            cs->n++;
    if (rc)
        return rc;
    vs_eitem **block = malloc(REBUILD_BLOCK * sizeof *block);
    if (!block)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    size_t nb = 0;
    vs_coll *bc = NULL;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_fill_cache(ro, 0);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[VS_CF_ITEMS]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it) && !rc; rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (kl != 12)
            continue;
        uint32_t cid = (uint32_t)(uint8_t)k[0] << 24 | (uint32_t)(uint8_t)k[1] << 16 |
                       (uint32_t)(uint8_t)k[2] << 8 | (uint8_t)k[3];
        vs_coll *c = colls_find(cs, cid);
        if (!c) {
            vs_elog(e->opt.log, e->opt.log_ctx, VS_LOG_WARN,
                    "recovery: items of unknown collection %u are ignored", cid);
            continue;
        }
        if (bc && (bc != c || nb == REBUILD_BLOCK)) {
            rc = vs_coll_apply_puts(bc, block, nb, st);
            for (size_t i = 0; i < nb; i++)
                vs_eitem_free(block[i]);
            nb = 0;
            if (rc)
                break;
        }
        bc = c;
        if ((rc = vs_eitem_unpack((const uint8_t *)v, vl, c->dims, c->n_fields, c->attrs,
                                  &block[nb], st)))
            break;
        nb++;
        (*rows)++;
    }
    if (!rc && nb)
        rc = vs_coll_apply_puts(bc, block, nb, st);
    for (size_t i = 0; i < nb; i++)
        vs_eitem_free(block[i]);
    free(block);
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (err) {
        if (!rc)
            return vs_store_error(st, VS_ERR_IO, "reading items", err);
        rocksdb_free(err);
    }
    return rc;
}

/* Recovers the engine's collections from the store. */
vs_err vs_recover(vs_engine *e, vs_status *st)
{
    vs_store *s = e->store;
    uint64_t last = s->last_seq;
    uint64_t t0 = vs_now_ns();
    Vsstore__CollectionMeta **metas = NULL;
    size_t n_metas = 0;
    vs_err rc = vs_store_read_collections(s, NULL, &metas, &n_metas, st);
    if (rc)
        return rc;
    char **paths = NULL;
    uint64_t *seqs = NULL;
    size_t n_snaps = 0;
    colls cs = {0};
    bool done = false;
    uint64_t base_seq = 0;
    if ((rc = vs_snapshot_list(s, &paths, &seqs, &n_snaps, st)))
        goto out;
    for (size_t i = 0; i < n_snaps && !done; i++) {
        vs_status ls;
        vs_status_clear(&ls);
        if (seqs[i] > last) {
            vs_elog(e->opt.log, e->opt.log_ctx, VS_LOG_WARN,
                    "recovery: skipping snapshot %s: its seq %llu is past the store's last seq "
                    "%llu", paths[i], (unsigned long long)seqs[i], (unsigned long long)last);
            continue;
        }
        vs_snapshot_loaded l;
        if (vs_snapshot_load(paths[i], &e->opt.index, &l, &ls)) {
            vs_elog(e->opt.log, e->opt.log_ctx, VS_LOG_WARN, "recovery: skipping snapshot %s: %s",
                    paths[i], ls.msg);
            continue;
        }
        if (l.seq != seqs[i]) {
            vs_elog(e->opt.log, e->opt.log_ctx, VS_LOG_WARN,
                    "recovery: skipping snapshot %s: it says seq %llu", paths[i],
                    (unsigned long long)l.seq);
            vs_snapshot_loaded_free(&l);
            continue;
        }
        cs.v = l.colls;
        cs.n = l.n_colls;
        uint64_t replayed = 0;
        if ((rc = replay_log(e, &cs, l.seq, last, &replayed, &ls)) ||
            !same_catalog(&cs, metas, n_metas)) {
            vs_elog(e->opt.log, e->opt.log_ctx, VS_LOG_WARN,
                    "recovery: cannot use snapshot %s: %s", paths[i],
                    rc ? ls.msg : "its collections and the log do not give those of the store");
            colls_free(&cs);
            rc = VS_OK;
            continue;
        }
        vs_elog(e->opt.log, e->opt.log_ctx, VS_LOG_INFO,
                "recovery: snapshot %s (seq %llu) + %llu log records", paths[i],
                (unsigned long long)l.seq, (unsigned long long)replayed);
        base_seq = l.seq;
        done = true;
    }
    if (!done) {
        uint64_t rows;
        if ((rc = rebuild_from_items(e, metas, n_metas, &cs, &rows, st))) {
            colls_free(&cs);
            goto out;
        }
        vs_elog(e->opt.log, e->opt.log_ctx, VS_LOG_INFO,
                "recovery: rebuilt %zu collections from %llu items", cs.n,
                (unsigned long long)rows);
    }
    for (size_t i = 0; i < cs.n; i++) {
        vs_coll_publish_stats(cs.v[i]);
        if ((rc = vs_engine_catalog_add(e, cs.v[i], st))) {
            for (size_t j = i + 1; j < cs.n; j++)
                vs_coll_unref(cs.v[j]);
            break;
        }
    }
    free(cs.v);
    e->next_seq = last + 1;
    e->next_coll_id = s->next_coll_id;
    atomic_store(&e->last_acked, last);
    atomic_store(&e->applied_seq, last);
    atomic_store(&e->log_since_snapshot, last - base_seq);
    vs_elog(e->opt.log, e->opt.log_ctx, VS_LOG_INFO, "recovery: ready at seq %llu in %.3f s",
            (unsigned long long)last, (double)(vs_now_ns() - t0) / 1e9);
out:
    for (size_t i = 0; i < n_snaps; i++)
        free(paths[i]);
    free(paths);
    free(seqs);
    for (size_t i = 0; i < n_metas; i++)
        vsstore__collection_meta__free_unpacked(metas[i], NULL);
    free(metas);
    return rc;
}
