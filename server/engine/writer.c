/*
 * writer.c: the writer thread, the one place where seqs are given and the store is written.
 *
 * Producers (any thread) queue requests: a group of checked mutations of one collection, or the
 * creation or drop of a collection. The queue is bounded in mutations; a request that does not fit
 * is refused at once (RESOURCE_EXHAUSTED), nothing waits for room.
 *
 * The writer takes everything queued (up to GROUP_MAX mutations), gives each mutation the next
 * seq, and builds one RocksDB WriteBatch: per mutation the item's new full state in `items` (or its
 * deletion) and a log record under the seq in `log`, then meta "last_seq". A patch needs the
 * item's current state and a delete needs to know whether the id exists: both look first in the
 * group's own overlay (earlier mutations of the same group, not yet in RocksDB) and then in
 * RocksDB. One write, with sync under `sync always` (one fsync shared by the whole group: group
 * commit), then, in seq order: the executor gets the applies, last_acked moves, and every request is
 * acknowledged. The executor gets them before the acks so that a search with min_seq = an ack's seq
 * always finds its mutation queued or applied.
 *
 * Under `sync interval:MS` the write is not synced; a second thread calls FlushWAL(sync) every MS
 * while there is something new.
 *
 * Failures. A failed write stops the writer for good (until the engine is reopened): the group's
 * requests and every later one fail with UNAVAILABLE naming the reason ("disk full" for ENOSPC);
 * a failed fsync (FlushWAL, or a sync write whose error names a sync) makes the engine read-only
 * (FAILED_PRECONDITION). Retrying an fsync after a failure would be a lie: the kernel may have
 * dropped the dirty pages already. A WriteBatch is atomic, so a failed group leaves nothing half
 * applied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine_internal.h"

#define GROUP_MAX 16384 /* mutations in one WriteBatch at most */

/* Frees a request with the items it still owns. */
void vs_wreq_free(vs_wreq *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        if (r->items)
            vs_eitem_free(r->items[i]);
        if (r->attr_clear)
            free(r->attr_clear[i]);
    }
    free(r->ops);
    free(r->ids);
    free(r->items);
    free(r->vec_clear);
    free(r->attr_clear);
    free(r->n_attr_clear);
    free(r->existed);
    vs_coll_unref(r->coll);
    free(r);
}

/* The error new writes get, from the writer's state. */
vs_err vs_writer_check(vs_engine *e, vs_status *st)
{
    int s = atomic_load_explicit(&e->wstate, memory_order_acquire);
    if (s == VS_WSTATE_OK)
        return VS_OK;
    return vs_status_set(st, e->werr_code, "%s", e->werr);
}

/* Stops the writer for good with code and reason (the first failure wins). */
static void writer_fail(vs_engine *e, vs_wstate state, vs_err code, const char *msg)
{
    atomic_store(&e->store->write_failed, 1);
    pthread_mutex_lock(&e->w_mu);
    if (atomic_load(&e->wstate) == VS_WSTATE_OK) {
        size_t l = strnlen(msg, sizeof e->werr - 1); /* long reasons are cut, not refused */
        memcpy(e->werr, msg, l);
        e->werr[l] = 0;
        e->werr_code = code;
        atomic_store_explicit(&e->wstate, state, memory_order_release);
        vs_elog(e->opt.log, e->opt.log_ctx, VS_LOG_ERROR, "writer: %s", msg);
    }
    pthread_mutex_unlock(&e->w_mu);
}

/* Queues a request; RESOURCE_EXHAUSTED when it does not fit. */
vs_err vs_writer_submit(vs_engine *e, vs_wreq *r, vs_status *st)
{
    pthread_mutex_lock(&e->w_mu);
    vs_err rc = VS_OK;
    size_t cap = e->opt.write_queue_cap;
    if (e->w_stop)
        rc = vs_status_set(st, VS_ERR_UNAVAILABLE, "the engine is closing");
    else if ((rc = vs_writer_check(e, st)))
        ;
    else if (r->n > cap)
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                           "a write of %zu mutations is larger than the write queue (%zu)", r->n,
                           cap);
    else if (e->w_queued + r->n > cap)
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                           "write queue full (%zu of %zu mutations queued); retry later",
                           e->w_queued, cap);
    if (!rc) {
        r->next = NULL;
        if (e->w_tail)
            e->w_tail->next = r;
        else
            e->w_head = r;
        e->w_tail = r;
        e->w_queued += r->n;
        pthread_cond_signal(&e->w_cv);
    }
    pthread_mutex_unlock(&e->w_mu);
    return rc;
}

/* ===== The group overlay: items written earlier in the same group ===== */

typedef struct overlay {
    uint64_t *ids;
    uint32_t *colls;
    vs_eitem **state; /* NULL = deleted */
    bool *used;
    uint32_t *touched;
    size_t n_touched, mask;
} overlay;

/* Allocates a table for GROUP_MAX entries. */
static bool overlay_init(overlay *o)
{
    size_t cap = 4 * GROUP_MAX;
    o->mask = cap - 1;
    o->ids = malloc(cap * sizeof *o->ids);
    o->colls = malloc(cap * sizeof *o->colls);
    o->state = malloc(cap * sizeof *o->state);
    o->used = calloc(cap, sizeof *o->used);
    o->touched = malloc(cap * sizeof *o->touched);
    o->n_touched = 0;
    return o->ids && o->colls && o->state && o->used && o->touched;
}

/* Frees the table. */
static void overlay_free(overlay *o)
{
    free(o->ids);
    free(o->colls);
    free(o->state);
    free(o->used);
    free(o->touched);
}

/* Empties the table (only the touched entries). */
static void overlay_reset(overlay *o)
{
    for (size_t i = 0; i < o->n_touched; i++)
        o->used[o->touched[i]] = false;
    o->n_touched = 0;
}

/* The bucket of (coll, id): where it is or where it would go. */
static size_t overlay_slot(const overlay *o, uint32_t coll, uint64_t id)
{
    uint64_t h = (id ^ ((uint64_t)coll << 40)) * 0x9E3779B97F4A7C15ull;
    size_t b = (size_t)(h >> 20) & o->mask;
    while (o->used[b] && !(o->ids[b] == id && o->colls[b] == coll))
        b = (b + 1) & o->mask;
    return b;
}

/* Looks up (coll, id): true when the group touched it; *state is NULL when it was deleted. */
static bool overlay_get(const overlay *o, uint32_t coll, uint64_t id, vs_eitem **state)
{
    size_t b = overlay_slot(o, coll, id);
    if (!o->used[b])
        return false;
    *state = o->state[b];
    return true;
}

/* Records the state of (coll, id) in this group (borrowed pointer). */
static void overlay_put(overlay *o, uint32_t coll, uint64_t id, vs_eitem *state)
{
    size_t b = overlay_slot(o, coll, id);
    if (!o->used[b]) {
        o->used[b] = true;
        o->ids[b] = id;
        o->colls[b] = coll;
        o->touched[o->n_touched++] = (uint32_t)b;
    }
    o->state[b] = state;
}

/* ===== Building the batch ===== */

typedef struct group {
    vs_engine *e;
    rocksdb_writebatch_t *wb;
    overlay ov;
    uint64_t seq;                /* the next seq to give */
    vs_apply *a_head, *a_tail;   /* applies of this group, in seq order */
    uint8_t *logbuf;
    size_t logcap;
    char created[64][VS_COLLECTION_NAME_MAX + 1]; /* names created in this group */
    size_t n_created;
    vs_coll *dropped[64];        /* collections dropped in this group */
    size_t n_dropped;
} group;

/* Appends an apply record to the group's list. */
static vs_err add_apply(group *g, vs_apply_kind kind, uint64_t seq, vs_coll *c, uint64_t id,
                        vs_eitem *item, vs_status *st)
{
    vs_apply *a = calloc(1, sizeof *a);
    if (!a)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    a->seq = seq;
    a->kind = kind;
    a->coll = vs_coll_ref(c);
    a->id = id;
    a->item = item;
    if (g->a_tail)
        g->a_tail->next = a;
    else
        g->a_head = a;
    g->a_tail = a;
    return VS_OK;
}

/* Packs a log record and puts it under its seq. */
static vs_err put_log(group *g, const Vsstore__LogRecord *rec, vs_status *st)
{
    size_t sz = vsstore__log_record__get_packed_size(rec);
    if (sz > g->logcap) {
        uint8_t *nb = realloc(g->logbuf, sz);
        if (!nb)
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        g->logbuf = nb;
        g->logcap = sz;
    }
    vsstore__log_record__pack(rec, g->logbuf);
    char key[8];
    vs_store_seq_key(rec->seq, key);
    rocksdb_writebatch_put_cf(g->wb, g->e->store->cf[VS_CF_LOG], key, 8, (const char *)g->logbuf,
                              sz);
    return VS_OK;
}

/* The current state of (coll, id): the overlay, else RocksDB. *out NULL when absent. */
static vs_err current_state(group *g, vs_coll *c, uint64_t id, bool want_item, vs_eitem **out,
                            bool *exists, vs_status *st)
{
    vs_eitem *ov;
    *out = NULL;
    if (overlay_get(&g->ov, c->id, id, &ov)) {
        *exists = ov != NULL;
        if (ov && want_item && !(*out = vs_eitem_copy(ov, c->dims)))
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        return VS_OK;
    }
    char key[12];
    vs_store_item_key(c->id, id, key);
    char *err = NULL;
    vs_store *s = g->e->store;
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(s->db, s->ro, s->cf[VS_CF_ITEMS], key, 12,
                                                        &err);
    if (err)
        return vs_store_error(st, VS_ERR_IO, "reading an item", err);
    *exists = ps != NULL;
    vs_err rc = VS_OK;
    if (ps && want_item) {
        size_t vl;
        const char *v = rocksdb_pinnableslice_value(ps, &vl);
        rc = vs_eitem_unpack((const uint8_t *)v, vl, c->dims, c->n_fields, c->attrs, out, st);
    }
    if (ps)
        rocksdb_pinnableslice_destroy(ps);
    return rc;
}

/* Adds one request's mutations to the batch. On error nothing of it is in the batch... except
 * what was already put, so an error here fails the whole group (only out of memory or a read
 * error get here). */
static vs_err add_mutations(group *g, vs_wreq *r, vs_status *st)
{
    vs_coll *c = r->coll;
    vs_store *s = g->e->store;
    for (size_t i = 0; i < g->n_dropped; i++)
        if (g->dropped[i] == c)
            return vs_status_set(st, VS_ERR_NOT_FOUND, "collection '%s' was dropped", c->name);
    vs_coll *cur = vs_engine_find_id(g->e, c->id);
    vs_coll_unref(cur);
    if (cur != c)
        return vs_status_set(st, VS_ERR_NOT_FOUND, "collection '%s' was dropped", c->name);
    if (!r->existed && !(r->existed = calloc(r->n ? r->n : 1, sizeof *r->existed)))
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < r->n; i++) {
        uint64_t seq = g->seq++;
        uint64_t id = r->ids[i];
        char key[12];
        vs_store_item_key(c->id, id, key);
        Vsstore__LogRecord rec = VSSTORE__LOG_RECORD__INIT;
        rec.seq = seq;
        rec.collection_id = c->id;
        rec.id = id;
        vs_err rc;
        if (r->ops[i] == VS_MUT_DELETE) {
            vs_eitem *none;
            bool exists;
            if ((rc = current_state(g, c, id, false, &none, &exists, st)))
                return rc;
            r->existed[i] = exists;
            rocksdb_writebatch_delete_cf(g->wb, s->cf[VS_CF_ITEMS], key, 12);
            rec.kind = VSSTORE__LOG_RECORD__KIND__DEL;
            if ((rc = put_log(g, &rec, st)) ||
                (rc = add_apply(g, VS_APPLY_DEL, seq, c, id, NULL, st)))
                return rc;
            overlay_put(&g->ov, c->id, id, NULL);
            continue;
        }
        vs_eitem *state;
        if (r->ops[i] == VS_MUT_PATCH) {
            vs_eitem *old;
            bool exists;
            if ((rc = current_state(g, c, id, true, &old, &exists, st)))
                return rc;
            r->existed[i] = exists;
            state = vs_coll_merge_patch(c, old, r->items[i], r->vec_clear[i],
                                        r->attr_clear ? r->attr_clear[i] : NULL,
                                        r->n_attr_clear ? r->n_attr_clear[i] : 0);
            vs_eitem_free(old);
            if (!state)
                return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        } else {
            state = r->items[i]; /* the request gives its item to the apply record */
            r->items[i] = NULL;
        }
        uint8_t *buf;
        size_t len;
        if ((rc = vs_eitem_pack(state, c->dims, c->n_fields, &buf, &len, st))) {
            vs_eitem_free(state);
            return rc;
        }
        rocksdb_writebatch_put_cf(g->wb, s->cf[VS_CF_ITEMS], key, 12, (const char *)buf, len);
        rec.kind = VSSTORE__LOG_RECORD__KIND__PUT;
        rec.item.data = buf;
        rec.item.len = len;
        rc = put_log(g, &rec, st);
        free(buf);
        if (rc || (rc = add_apply(g, VS_APPLY_PUT, seq, c, id, state, st))) {
            vs_eitem_free(state);
            return rc;
        }
        overlay_put(&g->ov, c->id, id, state);
    }
    return VS_OK;
}

/* Adds a collection's creation: gives it its id and seq, puts its meta and log record. */
static vs_err add_create(group *g, vs_wreq *r, vs_status *st)
{
    vs_engine *e = g->e;
    vs_coll *c = r->coll;
    vs_coll *other = vs_engine_find(e, c->name);
    vs_coll_unref(other);
    bool taken = other != NULL;
    for (size_t i = 0; i < g->n_created; i++)
        taken |= strcmp(g->created[i], c->name) == 0;
    for (size_t i = 0; i < g->n_dropped && taken && other; i++)
        if (g->dropped[i] == other)
            taken = false;
    if (taken)
        return vs_status_set(st, VS_ERR_ALREADY_EXISTS, "collection '%s' already exists", c->name);
    if (g->n_created == 64)
        return vs_status_set(st, VS_ERR_UNAVAILABLE, "too many creations at once; retry");
    c->id = e->next_coll_id++;
    c->created_seq = g->seq++;
    snprintf(g->created[g->n_created++], sizeof g->created[0], "%s", c->name);
    Vsstore__CollectionMeta m;
    Vsstore__VectorField vf[VS_MAX_FIELDS], *vfp[VS_MAX_FIELDS];
    uint32_t na = vs_attr_schema_count(c->attrs);
    Vsstore__AttrField *af = calloc(na ? na : 1, sizeof *af);
    Vsstore__AttrField **afp = calloc(na ? na : 1, sizeof *afp);
    if (!af || !afp) {
        free(af);
        free(afp);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    vs_coll_to_meta(c, &m, vf, vfp, af, afp);
    size_t sz = vsstore__collection_meta__get_packed_size(&m);
    uint8_t *buf = malloc(sz ? sz : 1);
    vs_err rc = VS_OK;
    if (!buf) {
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    } else {
        vsstore__collection_meta__pack(&m, buf);
        char key[9];
        vs_store_coll_key(c->id, key);
        rocksdb_writebatch_put_cf(g->wb, e->store->cf[VS_CF_META], key, 9, (const char *)buf, sz);
        char nid[8];
        vs_store_put_be64(nid, e->next_coll_id);
        rocksdb_writebatch_put_cf(g->wb, e->store->cf[VS_CF_META], "next_coll_id", 12, nid, 8);
        Vsstore__LogRecord rec = VSSTORE__LOG_RECORD__INIT;
        rec.seq = c->created_seq;
        rec.kind = VSSTORE__LOG_RECORD__KIND__CREATE;
        rec.collection_id = c->id;
        rec.collection = &m;
        if (!(rc = put_log(g, &rec, st)))
            rc = add_apply(g, VS_APPLY_CREATE, c->created_seq, c, 0, NULL, st);
    }
    free(buf);
    free(af);
    free(afp);
    return rc;
}

/* Adds a collection's drop: its meta, its items (one range) and a log record. */
static vs_err add_drop(group *g, vs_wreq *r, vs_status *st)
{
    vs_engine *e = g->e;
    vs_coll *c = r->coll;
    vs_coll *cur = vs_engine_find_id(e, c->id);
    vs_coll_unref(cur);
    bool gone = cur != c;
    for (size_t i = 0; i < g->n_dropped; i++)
        gone |= g->dropped[i] == c;
    if (gone)
        return vs_status_set(st, VS_ERR_NOT_FOUND, "collection '%s' does not exist", c->name);
    if (g->n_dropped == 64)
        return vs_status_set(st, VS_ERR_UNAVAILABLE, "too many drops at once; retry");
    g->dropped[g->n_dropped++] = c;
    uint64_t seq = g->seq++;
    char k0[12], k1[12];
    vs_store_item_key(c->id, 0, k0);
    vs_store_item_key(c->id + 1, 0, k1);
    rocksdb_writebatch_delete_range_cf(g->wb, e->store->cf[VS_CF_ITEMS], k0, 12, k1, 12);
    char key[9];
    vs_store_coll_key(c->id, key);
    rocksdb_writebatch_delete_cf(g->wb, e->store->cf[VS_CF_META], key, 9);
    Vsstore__LogRecord rec = VSSTORE__LOG_RECORD__INIT;
    rec.seq = seq;
    rec.kind = VSSTORE__LOG_RECORD__KIND__DROP;
    rec.collection_id = c->id;
    vs_err rc = put_log(g, &rec, st);
    if (!rc)
        rc = add_apply(g, VS_APPLY_DROP, seq, c, 0, NULL, st);
    return rc;
}

/* Answers a request with an error. */
static void fail_req(vs_wreq *r, vs_err code, const char *msg)
{
    vs_write_ack ack = {.code = code, .msg = msg, .n = r->n};
    if (r->cb)
        r->cb(r->ctx, &ack);
}

/* Frees a list of apply records. */
static void free_applies(vs_apply *a)
{
    while (a) {
        vs_apply *n = a->next;
        vs_apply_free(a);
        a = n;
    }
}

/* Writes one group: builds the batch, writes it, hands applies over, acknowledges. */
static void commit_group(vs_engine *e, group *g, vs_wreq *reqs)
{
    vs_status st;
    vs_status_clear(&st);
    if (vs_writer_check(e, &st)) {
        for (vs_wreq *r = reqs, *n; r; r = n) {
            n = r->next;
            fail_req(r, st.code, st.msg);
            vs_wreq_free(r);
        }
        return;
    }
    g->wb = rocksdb_writebatch_create();
    g->seq = e->next_seq;
    g->a_head = g->a_tail = NULL;
    g->n_created = g->n_dropped = 0;
    overlay_reset(&g->ov);
    /* Per request: ok (in the batch) or failed on its own (not in the batch). */
    vs_err fatal = VS_OK;
    size_t n_muts = 0;
    for (vs_wreq *r = reqs; r && !fatal; r = r->next) {
        vs_status rs;
        vs_status_clear(&rs);
        vs_err rc;
        uint64_t seq0 = g->seq;
        if (r->kind == VS_WREQ_MUTATE)
            rc = add_mutations(g, r, &rs);
        else if (r->kind == VS_WREQ_CREATE)
            rc = add_create(g, r, &rs);
        else
            rc = add_drop(g, r, &rs);
        if (rc == VS_ERR_NOT_FOUND || rc == VS_ERR_ALREADY_EXISTS ||
            (rc == VS_ERR_UNAVAILABLE && g->seq == seq0)) {
            /* refused before anything of it went into the batch */
            fail_req(r, rc, rs.msg);
            r->cb = NULL;
            continue;
        }
        if (rc) {
            fatal = rc;
            st = rs;
            break;
        }
        r->first_seq = seq0;
        r->last_seq = g->seq - 1;
        n_muts += r->kind == VS_WREQ_MUTATE ? r->n : 1;
    }
    char *err = NULL;
    uint64_t last = g->seq - 1;
    if (!fatal && g->seq != e->next_seq) {
        char v[8];
        vs_store_put_be64(v, last);
        rocksdb_writebatch_put_cf(g->wb, e->store->cf[VS_CF_META], "last_seq", 8, v, 8);
        bool sync = e->opt.sync == VS_SYNC_ALWAYS;
        uint64_t t0 = vs_now_ns();
        rocksdb_write(e->store->db, sync ? e->store->wo_sync : e->store->wo_nosync, g->wb, &err);
        uint64_t dt = vs_now_ns() - t0;
        if (err) {
            vs_status ws;
            vs_store_error(&ws, VS_ERR_UNAVAILABLE, "writing to the store", err);
            err = NULL;
            bool sync_failed = !strstr(ws.msg, "disk full") && strcasestr(ws.msg, "sync");
            char msg[VS_STATUS_MSG_LEN + 256];
            if (sync_failed) {
                snprintf(msg, sizeof msg,
                         "read-only after a failed fsync (%s); nothing more is acknowledged until "
                         "the engine is restarted", ws.msg);
                writer_fail(e, VS_WSTATE_READ_ONLY, VS_ERR_FAILED_PRECONDITION, msg);
            } else {
                snprintf(msg, sizeof msg,
                         "writes stopped: %s; acknowledged data is kept; free the disk and "
                         "restart the engine", ws.msg);
                writer_fail(e, VS_WSTATE_STOPPED, VS_ERR_UNAVAILABLE, msg);
            }
            fatal = VS_ERR_UNAVAILABLE;
            vs_writer_check(e, &st);
        } else {
            atomic_fetch_add(&e->st_commits, 1);
            atomic_fetch_add(&e->st_committed, n_muts);
            if (sync) {
                atomic_fetch_add(&e->st_fsyncs, 1);
                atomic_fetch_add(&e->st_fsync_ns_sum, dt);
                uint64_t mx = atomic_load(&e->st_fsync_ns_max);
                while (dt > mx && !atomic_compare_exchange_weak(&e->st_fsync_ns_max, &mx, dt))
                    ;
            }
        }
    }
    rocksdb_writebatch_destroy(g->wb);
    g->wb = NULL;
    if (fatal) {
        free_applies(g->a_head);
        for (vs_wreq *r = reqs, *n; r; r = n) {
            n = r->next;
            if (r->cb)
                fail_req(r, st.code ? st.code : fatal, st.msg);
            vs_wreq_free(r);
        }
        return;
    }
    /* Committed: the catalog first (new writes may name a created collection as soon as its ack
     * is out), then the applies, then last_acked, then the acks. */
    for (vs_wreq *r = reqs; r; r = r->next) {
        if (!r->cb)
            continue;
        if (r->kind == VS_WREQ_CREATE) {
            vs_status cs;
            if (vs_engine_catalog_add(e, vs_coll_ref(r->coll), &cs))
                vs_elog(e->opt.log, e->opt.log_ctx, VS_LOG_ERROR, "catalog: %s", cs.msg);
        } else if (r->kind == VS_WREQ_DROP) {
            vs_engine_catalog_remove(e, r->coll);
        }
    }
    e->next_seq = g->seq;
    if (g->a_head)
        vs_executor_push_applies(e, g->a_head, g->a_tail);
    atomic_store_explicit(&e->last_acked, last, memory_order_release);
    atomic_fetch_add(&e->log_since_snapshot, n_muts);
    for (vs_wreq *r = reqs, *n; r; r = n) {
        n = r->next;
        if (r->cb) {
            vs_write_ack ack = {.code = VS_OK, .msg = "", .first_seq = r->first_seq,
                                .last_seq = r->last_seq, .n = r->n, .existed = r->existed};
            r->cb(r->ctx, &ack);
        }
        vs_wreq_free(r);
    }
}

/* The writer thread: takes queued requests in groups and commits them. */
static void *writer_main(void *arg)
{
    vs_engine *e = arg;
    group g;
    memset(&g, 0, sizeof g);
    g.e = e;
    if (!overlay_init(&g.ov)) {
        writer_fail(e, VS_WSTATE_STOPPED, VS_ERR_UNAVAILABLE, "writes stopped: out of memory");
    }
    for (;;) {
        pthread_mutex_lock(&e->w_mu);
        while (!e->w_head && !e->w_stop)
            pthread_cond_wait(&e->w_cv, &e->w_mu);
        if (!e->w_head && e->w_stop) {
            pthread_mutex_unlock(&e->w_mu);
            break;
        }
        vs_wreq *head = e->w_head, *tail = head;
        size_t n = tail->n;
        while (tail->next && n + tail->next->n <= GROUP_MAX) {
            tail = tail->next;
            n += tail->n;
        }
        e->w_head = tail->next;
        if (!e->w_head)
            e->w_tail = NULL;
        tail->next = NULL;
        e->w_queued -= n;
        pthread_mutex_unlock(&e->w_mu);
        commit_group(e, &g, head);
    }
    overlay_free(&g.ov);
    free(g.logbuf);
    return NULL;
}

/* The interval syncer: FlushWAL(sync) every interval while there is something new. */
static void *syncer_main(void *arg)
{
    vs_engine *e = arg;
    uint64_t synced = atomic_load(&e->last_acked);
    pthread_mutex_lock(&e->sync_mu);
    while (!e->sync_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)e->opt.sync_interval_ms * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&e->sync_cv, &e->sync_mu, &ts);
        uint64_t acked = atomic_load(&e->last_acked);
        if (acked == synced || atomic_load(&e->wstate) != VS_WSTATE_OK)
            continue;
        pthread_mutex_unlock(&e->sync_mu);
        char *err = NULL;
        uint64_t t0 = vs_now_ns();
        rocksdb_flush_wal(e->store->db, 1, &err);
        uint64_t dt = vs_now_ns() - t0;
        if (err) {
            vs_status ws;
            vs_store_error(&ws, VS_ERR_IO, "fsync of the log", err);
            char msg[VS_STATUS_MSG_LEN + 256];
            snprintf(msg, sizeof msg,
                     "read-only after a failed fsync (%s); nothing more is acknowledged until the "
                     "engine is restarted", ws.msg);
            writer_fail(e, VS_WSTATE_READ_ONLY, VS_ERR_FAILED_PRECONDITION, msg);
        } else {
            synced = acked;
            atomic_fetch_add(&e->st_fsyncs, 1);
            atomic_fetch_add(&e->st_fsync_ns_sum, dt);
            uint64_t mx = atomic_load(&e->st_fsync_ns_max);
            while (dt > mx && !atomic_compare_exchange_weak(&e->st_fsync_ns_max, &mx, dt))
                ;
        }
        pthread_mutex_lock(&e->sync_mu);
    }
    pthread_mutex_unlock(&e->sync_mu);
    return NULL;
}

/* Starts the writer (and, under sync interval, the syncer). */
vs_err vs_writer_start(vs_engine *e, vs_status *st)
{
    if (pthread_create(&e->w_thread, NULL, writer_main, e) != 0)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cannot start the writer thread");
    e->w_started = true;
    if (e->opt.sync == VS_SYNC_INTERVAL) {
        if (pthread_create(&e->sync_thread, NULL, syncer_main, e) != 0)
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cannot start the sync thread");
        e->sync_started = true;
    }
    return VS_OK;
}

/* Lets the writer commit what is queued, then stops both threads. */
void vs_writer_stop(vs_engine *e)
{
    if (e->w_started) {
        pthread_mutex_lock(&e->w_mu);
        e->w_stop = true;
        pthread_cond_signal(&e->w_cv);
        pthread_mutex_unlock(&e->w_mu);
        pthread_join(e->w_thread, NULL);
        e->w_started = false;
    }
    if (e->sync_started) {
        pthread_mutex_lock(&e->sync_mu);
        e->sync_stop = true;
        pthread_cond_signal(&e->sync_cv);
        pthread_mutex_unlock(&e->sync_mu);
        pthread_join(e->sync_thread, NULL);
        e->sync_started = false;
    }
}
