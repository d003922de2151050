/*
 * engine.c: the engine's public face: opening (store, recovery, threads) and closing, the
 * catalog of collections, turning callers' writes and searches into checked, owned requests for
 * the writer and the executor, blocking wrappers, reads from the store (get), and state.
 *
 * Everything a caller passes is checked and copied in the caller's thread before vs_engine_write
 * or vs_engine_search returns, so a bad request never reaches a queue and the caller's memory is
 * its own again at once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_internal.h"
#include "vs_filter.h"

/* ===== Logging and time ===== */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Formats one line and hands it to fn, or prints it to stderr (INFO and above). */
void vs_elog(vs_log_fn fn, void *ctx, vs_log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (fn)
        fn(ctx, level, line);
    else if (level <= VS_LOG_INFO)
        fprintf(stderr, "vecscan engine %s: %s\n", level_names[level], line);
}

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t vs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ===== Result memory ===== */

struct vs_arena_blk {
    struct vs_arena_blk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

/* n bytes, 16-aligned and zeroed, from the arena. */
void *vs_arena_alloc(vs_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct vs_arena_blk *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 8192 ? n : 8192;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

/* A NUL-terminated copy of s[0 .. len) in the arena ("" when out of memory). */
char *vs_arena_strdup(vs_arena *a, const char *s, size_t len)
{
    char *p = vs_arena_alloc(a, len + 1);
    if (!p)
        return (char *)"";
    if (len)
        memcpy(p, s, len);
    p[len] = 0;
    return p;
}

/* Frees every block of the arena. */
void vs_arena_free(vs_arena *a)
{
    struct vs_arena_blk *b = a->head;
    while (b) {
        struct vs_arena_blk *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
}

/* A new, empty search result. */
vs_result_box *vs_result_new(void)
{
    return calloc(1, sizeof(vs_result_box));
}

/* Frees a search result. */
void vs_search_result_free(vs_search_result *r)
{
    if (!r)
        return;
    vs_result_box *b = (vs_result_box *)r;
    vs_arena_free(&b->arena);
    free(b);
}

/* A get result with its memory. */
typedef struct get_box {
    vs_get_result r;
    vs_arena arena;
} get_box;

/* Frees a get result. */
void vs_get_result_free(vs_get_result *r)
{
    if (!r)
        return;
    get_box *b = (get_box *)r;
    vs_arena_free(&b->arena);
    free(b);
}

/* ===== The catalog ===== */

/* A reference to the collection named name, or NULL. */
vs_coll *vs_engine_find(vs_engine *e, const char *name)
{
    vs_coll *c = NULL;
    pthread_mutex_lock(&e->cat_mu);
    for (size_t i = 0; i < e->n_colls && !c; i++)
        if (strcmp(e->colls[i]->name, name) == 0)
            c = vs_coll_ref(e->colls[i]);
    pthread_mutex_unlock(&e->cat_mu);
    return c;
}

/* A reference to the collection with store id id, or NULL. */
vs_coll *vs_engine_find_id(vs_engine *e, uint32_t id)
{
    vs_coll *c = NULL;
    pthread_mutex_lock(&e->cat_mu);
    for (size_t i = 0; i < e->n_colls && !c; i++)
        if (e->colls[i]->id == id)
            c = vs_coll_ref(e->colls[i]);
    pthread_mutex_unlock(&e->cat_mu);
    return c;
}

/* Adds c to the catalog, which takes the caller's reference. */
vs_err vs_engine_catalog_add(vs_engine *e, vs_coll *c, vs_status *st)
{
    pthread_mutex_lock(&e->cat_mu);
    if (e->n_colls == e->cap_colls) {
        size_t cap = e->cap_colls ? e->cap_colls * 2 : 8;
        vs_coll **nc = realloc(e->colls, cap * sizeof *nc);
        if (!nc) {
            pthread_mutex_unlock(&e->cat_mu);
            vs_coll_unref(c);
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        }
        e->colls = nc;
        e->cap_colls = cap;
    }
    e->colls[e->n_colls++] = c;
    pthread_mutex_unlock(&e->cat_mu);
    return VS_OK;
}

/* Removes c from the catalog and drops the catalog's reference. */
void vs_engine_catalog_remove(vs_engine *e, vs_coll *c)
{
    vs_coll *found = NULL;
    pthread_mutex_lock(&e->cat_mu);
    for (size_t i = 0; i < e->n_colls; i++)
        if (e->colls[i] == c) {
            found = c;
            e->colls[i] = e->colls[--e->n_colls];
            break;
        }
    pthread_mutex_unlock(&e->cat_mu);
    vs_coll_unref(found);
}

/* ===== Opening and closing ===== */

/* Fills the defaults. */
void vs_engine_options_init(vs_engine_options *o, const char *data_dir)
{
    memset(o, 0, sizeof *o);
    o->data_dir = data_dir;
    o->sync = VS_SYNC_ALWAYS;
}

/* Initialises a condition variable on CLOCK_MONOTONIC. */
static void cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

/* Opens, recovers and starts the engine. */
vs_err vs_engine_open(const vs_engine_options *opt, vs_engine **out, vs_status *st)
{
    if (!opt || !opt->data_dir || !*opt->data_dir)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "no data dir given");
    vs_engine *e = calloc(1, sizeof *e);
    if (!e)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    e->opt = *opt;
    e->data_dir = strdup(opt->data_dir);
    e->opt.data_dir = e->data_dir;
    if (!e->opt.sync_interval_ms)
        e->opt.sync_interval_ms = 100;
    if (!e->opt.write_queue_cap)
        e->opt.write_queue_cap = 65536;
    if (!e->opt.search_queue_cap)
        e->opt.search_queue_cap = 4096;
    if (!e->opt.max_batch)
        e->opt.max_batch = 64;
    if (!e->opt.max_seq_wait_ms)
        e->opt.max_seq_wait_ms = 5000;
    if (!e->opt.snapshot_every)
        e->opt.snapshot_every = 1000000;
    pthread_mutex_init(&e->cat_mu, NULL);
    pthread_mutex_init(&e->w_mu, NULL);
    pthread_cond_init(&e->w_cv, NULL);
    pthread_mutex_init(&e->sync_mu, NULL);
    pthread_cond_init(&e->sync_cv, NULL);
    pthread_mutex_init(&e->x_mu, NULL);
    cond_init_mono(&e->x_cv);
    pthread_mutex_init(&e->sn_mu, NULL);
    cond_init_mono(&e->sn_cv);
    pthread_mutex_init(&e->sn_write_mu, NULL);
    vs_err rc;
    if (!e->data_dir) {
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if ((rc = vs_store_open(e->data_dir, e->opt.log, e->opt.log_ctx, &e->store, st)) ||
        (rc = vs_recover(e, st)) || (rc = vs_executor_start(e, st)) ||
        (rc = vs_writer_start(e, st)) || (rc = vs_snapshot_start(e, st)))
        goto fail;
    *out = e;
    return VS_OK;
fail:
    vs_engine_close(e);
    return rc;
}

/* Stops the threads (writer first, so every ack's apply reaches the executor), closes the store. */
void vs_engine_close(vs_engine *e)
{
    if (!e)
        return;
    vs_snapshot_stop(e);
    vs_writer_stop(e);
    vs_executor_stop(e);
    vs_store_close(e->store);
    for (size_t i = 0; i < e->n_colls; i++)
        vs_coll_unref(e->colls[i]);
    free(e->colls);
    pthread_mutex_destroy(&e->cat_mu);
    pthread_mutex_destroy(&e->w_mu);
    pthread_cond_destroy(&e->w_cv);
    pthread_mutex_destroy(&e->sync_mu);
    pthread_cond_destroy(&e->sync_cv);
    pthread_mutex_destroy(&e->x_mu);
    pthread_cond_destroy(&e->x_cv);
    pthread_mutex_destroy(&e->sn_mu);
    pthread_cond_destroy(&e->sn_cv);
    pthread_mutex_destroy(&e->sn_write_mu);
    free(e->data_dir);
    free(e);
}

/* ===== Waiting for an answer ===== */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    vs_err code;
    char msg[VS_STATUS_MSG_LEN];
    uint64_t last_seq;
    bool *existed;
    size_t n;
    vs_search_result *res;
} waiter;

/* Sets up a waiter. */
static void waiter_init(waiter *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

/* Blocks until the waiter is done, then frees its lock. */
static void waiter_wait(waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

/* Write callback of the waiting calls. */
static void waiter_write_cb(void *ctx, const vs_write_ack *ack)
{
    waiter *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->code = ack->code;
    snprintf(w->msg, sizeof w->msg, "%s", ack->msg ? ack->msg : "");
    w->last_seq = ack->last_seq;
    if (w->existed && ack->existed)
        memcpy(w->existed, ack->existed, w->n * sizeof *w->existed);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Search callback of the waiting call. */
static void waiter_search_cb(void *ctx, vs_search_result *res)
{
    waiter *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->res = res;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Queues a request and waits for its ack. */
static vs_err submit_wait(vs_engine *e, vs_wreq *r, uint64_t *seq, bool *existed, vs_status *st)
{
    waiter w;
    waiter_init(&w);
    w.existed = existed;
    w.n = r->n;
    r->cb = waiter_write_cb;
    r->ctx = &w;
    vs_err rc = vs_writer_submit(e, r, st);
    if (rc) {
        vs_wreq_free(r);
        pthread_mutex_destroy(&w.mu);
        pthread_cond_destroy(&w.cv);
        return rc;
    }
    waiter_wait(&w);
    if (w.code)
        return vs_status_set(st, w.code, "%s", w.msg);
    if (seq)
        *seq = w.last_seq;
    return VS_OK;
}

/* ===== Collections ===== */

/* Creates a collection through the writer and waits until it is durable. */
vs_err vs_engine_create_collection(vs_engine *e, const char *name, const vs_field_spec *fields,
                                   uint32_t n_fields, const vs_attr_schema *attrs, uint64_t *seq,
                                   vs_status *st)
{
    vs_coll *c;
    vs_err rc = vs_coll_create(0, name, fields, n_fields, attrs, 0, &e->opt.index, &c, st);
    if (rc)
        return rc;
    vs_coll *other = vs_engine_find(e, name);
    if (other) {
        vs_coll_unref(other);
        vs_coll_unref(c);
        return vs_status_set(st, VS_ERR_ALREADY_EXISTS, "collection '%s' already exists", name);
    }
    vs_wreq *r = calloc(1, sizeof *r);
    if (!r) {
        vs_coll_unref(c);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    r->kind = VS_WREQ_CREATE;
    r->coll = c;
    return submit_wait(e, r, seq, NULL, st);
}

/* Drops a collection through the writer and waits until it is durable. */
vs_err vs_engine_drop_collection(vs_engine *e, const char *name, uint64_t *seq, vs_status *st)
{
    vs_coll *c = name ? vs_engine_find(e, name) : NULL;
    if (!c)
        return vs_status_set(st, VS_ERR_NOT_FOUND, "collection '%s' does not exist",
                             name ? name : "");
    vs_wreq *r = calloc(1, sizeof *r);
    if (!r) {
        vs_coll_unref(c);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    r->kind = VS_WREQ_DROP;
    r->coll = c;
    return submit_wait(e, r, seq, NULL, st);
}

/* Describes a collection. */
vs_err vs_engine_describe(vs_engine *e, const char *name, vs_collection_info *out, vs_status *st)
{
    memset(out, 0, sizeof *out);
    vs_coll *c = name ? vs_engine_find(e, name) : NULL;
    if (!c)
        return vs_status_set(st, VS_ERR_NOT_FOUND, "collection '%s' does not exist",
                             name ? name : "");
    snprintf(out->name, sizeof out->name, "%s", c->name);
    out->id = c->id;
    out->created_seq = c->created_seq;
    out->n_fields = c->n_fields;
    memcpy(out->fields, c->fields, sizeof out->fields);
    out->attrs = vs_attr_schema_copy(c->attrs);
    out->count = atomic_load_explicit(&c->stat_count, memory_order_relaxed);
    for (uint32_t f = 0; f < c->n_fields; f++)
        out->field_bytes[f] = atomic_load_explicit(&c->stat_bytes[f], memory_order_relaxed);
    out->device_bytes = atomic_load_explicit(&c->stat_device_bytes, memory_order_relaxed);
    vs_coll_unref(c);
    if (!out->attrs)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    return VS_OK;
}

/* Frees what describe allocated. */
void vs_collection_info_clear(vs_collection_info *info)
{
    vs_attr_schema_destroy(info->attrs);
    info->attrs = NULL;
}

/* Compares two names for qsort. */
static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists collection names, sorted. */
vs_err vs_engine_list(vs_engine *e, char ***names, size_t *n, vs_status *st)
{
    pthread_mutex_lock(&e->cat_mu);
    size_t cnt = e->n_colls;
    char **v = calloc(cnt ? cnt : 1, sizeof *v);
    bool oom = !v;
    for (size_t i = 0; v && i < cnt; i++)
        oom |= !(v[i] = strdup(e->colls[i]->name));
    pthread_mutex_unlock(&e->cat_mu);
    if (oom) {
        vs_engine_names_free(v, cnt);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    qsort(v, cnt, sizeof *v, cmp_name);
    *names = v;
    *n = cnt;
    return VS_OK;
}

/* Frees a list of names. */
void vs_engine_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

/* ===== Writes ===== */

/* Checks and copies mutations into a writer request. */
static vs_err build_wreq(vs_engine *e, const char *collection, const vs_mutation *m, size_t n,
                         vs_wreq **out, vs_status *st)
{
    vs_err rc = vs_writer_check(e, st);
    if (rc)
        return rc;
    if (!m && n)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "no mutations given");
    vs_coll *c = collection ? vs_engine_find(e, collection) : NULL;
    if (!c)
        return vs_status_set(st, VS_ERR_NOT_FOUND, "collection '%s' does not exist",
                             collection ? collection : "");
    vs_wreq *r = calloc(1, sizeof *r);
    if (!r) {
        vs_coll_unref(c);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    r->kind = VS_WREQ_MUTATE;
    r->coll = c;
    size_t cnt = n ? n : 1;
    r->ops = calloc(cnt, 1);
    r->ids = calloc(cnt, sizeof *r->ids);
    r->items = calloc(cnt, sizeof *r->items);
    r->vec_clear = calloc(cnt, sizeof *r->vec_clear);
    r->attr_clear = calloc(cnt, sizeof *r->attr_clear);
    r->n_attr_clear = calloc(cnt, sizeof *r->n_attr_clear);
    r->existed = calloc(cnt, sizeof *r->existed);
    if (!r->ops || !r->ids || !r->items || !r->vec_clear || !r->attr_clear || !r->n_attr_clear ||
        !r->existed) {
        vs_wreq_free(r);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        r->n = i; /* so a failure frees only what was built */
        if ((rc = vs_coll_build_mutation(c, &m[i], i, &r->items[i], &r->vec_clear[i],
                                         &r->attr_clear[i], &r->n_attr_clear[i], st))) {
            r->n = i + 1;
            vs_wreq_free(r);
            return rc;
        }
        r->ops[i] = (uint8_t)m[i].op;
        r->ids[i] = m[i].id;
    }
    r->n = n;
    *out = r;
    return VS_OK;
}

/* Checks, copies and queues a group of mutations. */
vs_err vs_engine_write(vs_engine *e, const char *collection, const vs_mutation *m, size_t n,
                       vs_write_cb cb, void *ctx, vs_status *st)
{
    vs_wreq *r = NULL;
    vs_err rc = build_wreq(e, collection, m, n, &r, st);
    if (rc)
        return rc;
    r->cb = cb;
    r->ctx = ctx;
    if ((rc = vs_writer_submit(e, r, st)))
        vs_wreq_free(r);
    return rc;
}

/* vs_engine_write, waiting for the ack. */
vs_err vs_engine_write_wait(vs_engine *e, const char *collection, const vs_mutation *m, size_t n,
                            uint64_t *last_seq, bool *existed, vs_status *st)
{
    vs_wreq *r = NULL;
    vs_err rc = build_wreq(e, collection, m, n, &r, st);
    if (rc)
        return rc;
    return submit_wait(e, r, last_seq, existed, st);
}

/* ===== Searches ===== */

/* Checks and copies a search request. */
static vs_err build_sreq(vs_engine *e, const vs_search_request *q, vs_sreq **out, vs_status *st)
{
    if (!q)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "no search request");
    if (q->n_terms == 0 || q->n_terms > VS_MAX_TERMS || !q->terms)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "a search has 1 to %d terms (got %u)",
                             VS_MAX_TERMS, q->n_terms);
    if (q->k == 0 || q->k > VS_MAX_K)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "k must be 1 to %d (got %u)", VS_MAX_K,
                             q->k);
    if (q->combine != VS_COMBINE_SUM && q->combine != VS_COMBINE_MAX &&
        q->combine != VS_COMBINE_INTERLEAVE)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "unknown combine mode %d",
                             (int)q->combine);
    if (q->rerank_factor > 1000)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "rerank_factor %u is above 1000",
                             q->rerank_factor);
    uint64_t now = vs_now_ns();
    if (q->deadline_ns && q->deadline_ns <= now)
        return vs_status_set(st, VS_ENGINE_ERR_DEADLINE, "deadline exceeded before the search "
                                                         "was queued");
    uint64_t acked = atomic_load_explicit(&e->last_acked, memory_order_acquire);
    if (q->min_seq > acked)
        return vs_status_set(st, VS_ERR_OUT_OF_RANGE,
                             "min_seq %llu is above the last acknowledged seq %llu",
                             (unsigned long long)q->min_seq, (unsigned long long)acked);
    vs_coll *c = q->collection ? vs_engine_find(e, q->collection) : NULL;
    if (!c)
        return vs_status_set(st, VS_ERR_NOT_FOUND, "collection '%s' does not exist",
                             q->collection ? q->collection : "");
    vs_err rc = VS_OK;
    vs_sreq *r = calloc(1, sizeof *r);
    if (!r) {
        vs_coll_unref(c);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    r->coll = c;
    size_t floats = 0;
    for (uint32_t t = 0; t < q->n_terms; t++) {
        const vs_search_term_in *ti = &q->terms[t];
        int f = ti->field ? vs_coll_vfield(c, ti->field) : -1;
        if (f < 0) {
            rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "term %u: unknown vector field '%s'",
                               t, ti->field ? ti->field : "");
            goto fail;
        }
        if (ti->n_vectors == 0 || ti->n_vectors > VS_MAX_TERM_VECTORS || !ti->vectors) {
            rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                               "term %u ('%s'): 1 to %d vectors (got %u)", t, ti->field,
                               VS_MAX_TERM_VECTORS, ti->n_vectors);
            goto fail;
        }
        float w = ti->weight == 0 ? 1.0f : ti->weight;
        if (!(w > 0) || w > 3.4e38f) {
            rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                               "term %u ('%s'): weight must be finite and > 0", t, ti->field);
            goto fail;
        }
        uint32_t dim = c->dims[f];
        if (ti->dim != dim) { /* the caller's buffer holds n_vectors x ti->dim floats: never read past it */
            rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "term %u ('%s'): field has dim %u, the query vector %u",
                               t, ti->field, dim, ti->dim);
            goto fail;
        }
        for (uint32_t v = 0; v < ti->n_vectors; v++) {
            const float *x = ti->vectors + (size_t)v * dim;
            double n2 = 0;
            for (uint32_t d = 0; d < dim; d++) {
                if (!(x[d] - x[d] == 0)) {
                    rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                       "term %u ('%s'), vector %u: value %u is NaN or infinite",
                                       t, ti->field, v, d);
                    goto fail;
                }
                n2 += (double)x[d] * x[d];
            }
            if (c->fields[f].metric == VS_METRIC_COSINE && !(n2 > 0)) {
                rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                   "term %u ('%s'), vector %u: a zero query vector has no cosine",
                                   t, ti->field, v);
                goto fail;
            }
        }
        r->terms[t].field = (uint32_t)f;
        r->terms[t].n_vectors = ti->n_vectors;
        r->terms[t].weight = w;
        floats += (size_t)ti->n_vectors * dim;
    }
    r->vecbuf = malloc(floats * sizeof(float));
    if (!r->vecbuf) {
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    size_t off = 0;
    for (uint32_t t = 0; t < q->n_terms; t++) {
        size_t cnt = (size_t)q->terms[t].n_vectors * c->dims[r->terms[t].field];
        memcpy(r->vecbuf + off, q->terms[t].vectors, cnt * sizeof(float));
        r->terms[t].vectors = r->vecbuf + off;
        off += cnt;
    }
    r->n_terms = q->n_terms;
    if (q->filter && (q->filter_len || q->filter[0])) {
        size_t len = q->filter_len ? q->filter_len : strlen(q->filter);
        if ((rc = vs_filter_parse(c->attrs, q->filter, len, NULL, &r->filter, st)))
            goto fail;
    }
    r->combine = q->combine;
    r->k = q->k;
    r->rerank_factor = q->rerank_factor;
    r->min_seq = q->min_seq;
    r->deadline_ns = q->deadline_ns;
    r->seq_deadline_ns = now + (uint64_t)e->opt.max_seq_wait_ms * 1000000ull;
    if (q->deadline_ns && q->deadline_ns < r->seq_deadline_ns)
        r->seq_deadline_ns = q->deadline_ns;
    r->with_attrs = q->with_attributes;
    r->enq_ns = now;
    *out = r;
    return VS_OK;
fail:
    vs_sreq_free(r);
    return rc;
}

/* Checks, copies and queues a search. */
vs_err vs_engine_search(vs_engine *e, const vs_search_request *req, vs_search_cb cb, void *ctx,
                        vs_status *st)
{
    vs_sreq *r = NULL;
    vs_err rc = build_sreq(e, req, &r, st);
    if (rc)
        return rc;
    r->cb = cb;
    r->ctx = ctx;
    if ((rc = vs_executor_submit(e, r, st)))
        vs_sreq_free(r);
    return rc;
}

/* vs_engine_search, waiting for the answer. */
vs_err vs_engine_search_wait(vs_engine *e, const vs_search_request *req, vs_search_result **out,
                             vs_status *st)
{
    waiter w;
    waiter_init(&w);
    vs_err rc = vs_engine_search(e, req, waiter_search_cb, &w, st);
    if (rc) {
        pthread_mutex_destroy(&w.mu);
        pthread_cond_destroy(&w.cv);
        *out = NULL;
        return rc;
    }
    waiter_wait(&w);
    *out = w.res;
    if (!w.res)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory for the result");
    if (w.res->code)
        return vs_status_set(st, w.res->code, "%s", w.res->msg);
    return VS_OK;
}

/* ===== Get ===== */

/* Reads items from the store as they were given. */
vs_err vs_engine_get(vs_engine *e, const char *collection, const uint64_t *ids, size_t n,
                     bool with_vectors, vs_get_result **out, vs_status *st)
{
    *out = NULL;
    vs_coll *c = collection ? vs_engine_find(e, collection) : NULL;
    if (!c)
        return vs_status_set(st, VS_ERR_NOT_FOUND, "collection '%s' does not exist",
                             collection ? collection : "");
    get_box *b = calloc(1, sizeof *b);
    vs_err rc = VS_OK;
    if (!b) {
        vs_coll_unref(c);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    b->r.items = vs_arena_alloc(&b->arena, (n ? n : 1) * sizeof *b->r.items);
    b->r.missing = vs_arena_alloc(&b->arena, (n ? n : 1) * sizeof *b->r.missing);
    if (!b->r.items || !b->r.missing) {
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    vs_store *s = e->store;
    for (size_t i = 0; i < n && !rc; i++) {
        char key[12];
        vs_store_item_key(c->id, ids[i], key);
        char *err = NULL;
        rocksdb_pinnableslice_t *ps =
            rocksdb_get_pinned_cf(s->db, s->ro, s->cf[VS_CF_ITEMS], key, 12, &err);
        if (err) {
            rc = vs_store_error(st, VS_ERR_IO, "reading an item", err);
            break;
        }
        if (!ps) {
            b->r.missing[b->r.n_missing++] = ids[i];
            continue;
        }
        size_t vl;
        const char *v = rocksdb_pinnableslice_value(ps, &vl);
        vs_eitem *it;
        rc = vs_eitem_unpack((const uint8_t *)v, vl, c->dims, c->n_fields, c->attrs, &it, st);
        rocksdb_pinnableslice_destroy(ps);
        if (rc)
            break;
        vs_item_out *o = &b->r.items[b->r.n_found++];
        o->id = it->id;
        if (with_vectors && it->vec_mask) {
            vs_vector_out *vo = vs_arena_alloc(&b->arena, VS_MAX_FIELDS * sizeof *vo);
            for (uint32_t f = 0; vo && f < c->n_fields; f++) {
                if (!it->vec[f])
                    continue;
                float *vals = vs_arena_alloc(&b->arena, c->dims[f] * sizeof(float));
                if (!vals)
                    break;
                memcpy(vals, it->vec[f], c->dims[f] * sizeof(float));
                vo[o->n_vectors++] = (vs_vector_out){.field = vs_arena_strdup(
                                                         &b->arena, c->fields[f].name,
                                                         strlen(c->fields[f].name)),
                                                     .dim = c->dims[f], .values = vals};
            }
            o->vectors = vo;
        }
        if (it->n_attrs) {
            vs_attr_out *ao = vs_arena_alloc(&b->arena, it->n_attrs * sizeof *ao);
            for (uint32_t k = 0; ao && k < it->n_attrs; k++) {
                const vs_eattr *a = &it->attrs[k];
                const char *name = vs_attr_schema_name(c->attrs, a->field);
                ao[k] = (vs_attr_out){.field = vs_arena_strdup(&b->arena, name, strlen(name)),
                                      .type = a->type, .int_value = a->ival,
                                      .n_tags = a->n_tags};
                if (a->n_tags) {
                    vs_attr_str *tags = vs_arena_alloc(&b->arena, a->n_tags * sizeof *tags);
                    for (uint32_t t = 0; tags && t < a->n_tags; t++) {
                        tags[t].s = vs_arena_strdup(&b->arena, a->tags[t].s, a->tags[t].len);
                        tags[t].len = a->tags[t].len;
                    }
                    ao[k].tags = tags;
                    if (!tags)
                        ao[k].n_tags = 0;
                }
            }
            o->attrs = ao;
            o->n_attrs = ao ? it->n_attrs : 0;
        }
        vs_eitem_free(it);
    }
out:
    vs_coll_unref(c);
    if (rc) {
        vs_get_result_free(&b->r);
        return rc;
    }
    *out = &b->r;
    return VS_OK;
}

/* ===== State ===== */

/* Fills the engine's counters. */
void vs_engine_stats_get(vs_engine *e, vs_engine_stats *o)
{
    memset(o, 0, sizeof *o);
    o->last_acked_seq = atomic_load(&e->last_acked);
    o->applied_seq = atomic_load(&e->applied_seq);
    pthread_mutex_lock(&e->w_mu);
    o->write_queue_depth = (uint32_t)e->w_queued;
    pthread_mutex_unlock(&e->w_mu);
    o->write_queue_cap = e->opt.write_queue_cap;
    pthread_mutex_lock(&e->x_mu);
    o->search_queue_depth = (uint32_t)e->s_queued + atomic_load(&e->st_parked);
    pthread_mutex_unlock(&e->x_mu);
    o->search_queue_cap = e->opt.search_queue_cap;
    o->commits = atomic_load(&e->st_commits);
    o->committed_mutations = atomic_load(&e->st_committed);
    o->fsyncs = atomic_load(&e->st_fsyncs);
    o->fsync_seconds_sum = (double)atomic_load(&e->st_fsync_ns_sum) / 1e9;
    o->fsync_seconds_max = (double)atomic_load(&e->st_fsync_ns_max) / 1e9;
    o->batches = atomic_load(&e->st_batches);
    o->batched_searches = atomic_load(&e->st_batched);
    o->applied_mutations = atomic_load(&e->st_applied);
    o->snapshots_written = atomic_load(&e->st_snapshots);
    o->last_snapshot_seq = atomic_load(&e->st_snapshot_seq);
    pthread_mutex_lock(&e->cat_mu);
    o->collections = (uint32_t)e->n_colls;
    pthread_mutex_unlock(&e->cat_mu);
    int ws = atomic_load_explicit(&e->wstate, memory_order_acquire);
    o->writes_stopped = ws != VS_WSTATE_OK;
    o->read_only = ws == VS_WSTATE_READ_ONLY;
    if (o->writes_stopped)
        snprintf(o->write_error, sizeof o->write_error, "%s", e->werr);
    o->device_ordinal = -1;
    if (e->opt.index.device != VS_DEVICE_CPU &&
        vs_device_memory_info(e->opt.index.device, e->opt.index.device_ordinal, &o->device_free,
                              &o->device_total))
        o->device_ordinal = e->opt.index.device_ordinal;
}

/* The highest acknowledged seq. */
uint64_t vs_engine_last_acked_seq(vs_engine *e)
{
    return atomic_load_explicit(&e->last_acked, memory_order_acquire);
}

/* The highest applied seq. */
uint64_t vs_engine_applied_seq(vs_engine *e)
{
    return atomic_load_explicit(&e->applied_seq, memory_order_acquire);
}

/* Writes a snapshot now. */
vs_err vs_engine_snapshot(vs_engine *e, uint64_t *seq, vs_status *st)
{
    return vs_snapshot_request(e, true, seq, st);
}
