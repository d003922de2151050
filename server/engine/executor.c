/*
 * executor.c: the executor thread, the only thread that touches indexes and attribute stores.
 *
 * One executor per engine, that is per device: the engine's collections share one device and a
 * device runs one batch at a time anyway, so one thread that alternates "apply what was
 * committed" and "run a batch" keeps every row free of races without a lock on the scan path, and
 * the CPU backend spreads each search over its own worker threads inside the call.
 *
 * The loop:
 *   1. wait until there are committed mutations to apply, or a batch is ready (as many searches
 *      queued as the last batch answered, or max_batch, or the oldest has waited max_wait_us), or
 *      a parked search's deadline is due;
 *   2. apply every committed mutation in seq order (runs of puts to one collection in one index
 *      call) and publish applied_seq;
 *   3. searches past their deadline are answered DEADLINE_EXCEEDED unscored; those whose min_seq
 *      is above applied_seq are parked until it is reached or their wait runs out;
 *   4. the rest are grouped by (collection, k, rerank_factor) and each group is one
 *      vs_index_search call; filters are evaluated first into allowed-slot sets; every answer
 *      carries the applied_seq the batch saw.
 * Applies always come before the batch that follows them, so a search submitted after an ack
 * with min_seq = its seq waits at most one loop.
 *
 * When a batch is ready. Callers mostly run a closed loop: each answer brings the next search back.
 * So once as many searches are queued as the last batch answered, the wave is in and waiting longer
 * only idles the executor (and, with one caller, adds max_wait_us to every call); the batch starts
 * then. max_wait_us still bounds the wait when fewer come back, and the target follows: it is the
 * size of the batch just run. While a batch runs, everything that arrives joins the next one (up to
 * max_batch), so batches still grow with the load.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_internal.h"
#include "vs_filter.h"

/* Frees an apply record. */
void vs_apply_free(vs_apply *a)
{
    if (!a)
        return;
    vs_eitem_free(a->item);
    vs_coll_unref(a->coll);
    free(a);
}

/* Frees a search request. */
void vs_sreq_free(vs_sreq *r)
{
    if (!r)
        return;
    vs_filter_destroy(r->filter);
    free(r->vecbuf);
    vs_coll_unref(r->coll);
    free(r);
}

/* Applies one record to its collection; a failure is logged (the store has the truth, and the
 * next recovery rebuilds from it). */
void vs_apply_one(vs_engine *e, vs_apply *a)
{
    vs_status st;
    vs_status_clear(&st);
    vs_err rc = VS_OK;
    if (a->kind == VS_APPLY_PUT && !a->coll->dropped)
        rc = vs_coll_apply_put(a->coll, a->item, &st);
    else if (a->kind == VS_APPLY_DEL && !a->coll->dropped)
        rc = vs_coll_apply_del(a->coll, a->id, &st);
    else if (a->kind == VS_APPLY_DROP)
        a->coll->dropped = true;
    if (rc)
        vs_elog(e->opt.log, e->opt.log_ctx, VS_LOG_ERROR,
                "apply of seq %llu to collection '%s' failed: %s", (unsigned long long)a->seq,
                a->coll->name, st.msg);
}

/* Applies a list of records in order, batching runs of puts to one collection with distinct
 * ids; frees them; returns the last seq. */
static uint64_t apply_list(vs_engine *e, vs_apply *a)
{
    enum { RUN = 256 };
    vs_eitem *run[RUN];
    uint64_t last = 0;
    while (a) {
        if (a->kind == VS_APPLY_PUT && !a->coll->dropped) {
            vs_coll *c = a->coll;
            size_t n = 0;
            vs_apply *b = a;
            while (b && n < RUN && b->kind == VS_APPLY_PUT && b->coll == c) {
                bool dup = false;
                for (size_t i = 0; i < n && !dup; i++)
                    dup = run[i]->id == b->item->id;
                if (dup)
                    break;
                run[n++] = b->item;
                b = b->next;
            }
            vs_status st;
            if (vs_coll_apply_puts(c, run, n, &st))
                vs_elog(e->opt.log, e->opt.log_ctx, VS_LOG_ERROR,
                        "apply of seqs %llu.. to collection '%s' failed: %s",
                        (unsigned long long)a->seq, c->name, st.msg);
            vs_coll *touched = c;
            while (a != b) {
                vs_apply *nx = a->next;
                last = a->seq;
                vs_apply_free(a);
                a = nx;
            }
            vs_coll_publish_stats(touched);
            atomic_fetch_add(&e->st_applied, n);
            continue;
        }
        vs_apply_one(e, a);
        if (!a->coll->dropped)
            vs_coll_publish_stats(a->coll);
        atomic_fetch_add(&e->st_applied, 1);
        last = a->seq;
        vs_apply *nx = a->next;
        vs_apply_free(a);
        a = nx;
    }
    return last;
}

/* Queues committed mutations for the executor (the writer, in seq order). */
void vs_executor_push_applies(vs_engine *e, vs_apply *head, vs_apply *tail)
{
    pthread_mutex_lock(&e->x_mu);
    if (e->a_tail)
        e->a_tail->next = head;
    else
        e->a_head = head;
    e->a_tail = tail;
    pthread_cond_signal(&e->x_cv);
    pthread_mutex_unlock(&e->x_mu);
}

/* Queues a checked search; RESOURCE_EXHAUSTED when the queue is full. */
vs_err vs_executor_submit(vs_engine *e, vs_sreq *r, vs_status *st)
{
    vs_err rc = VS_OK;
    pthread_mutex_lock(&e->x_mu);
    size_t busy = e->s_queued + atomic_load(&e->st_parked);
    if (e->x_stop)
        rc = vs_status_set(st, VS_ERR_UNAVAILABLE, "the engine is closing");
    else if (busy >= e->opt.search_queue_cap)
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                           "search queue full (%zu searches waiting); retry later", busy);
    if (!rc) {
        r->next = NULL;
        bool first = !e->s_head;
        if (e->s_tail)
            e->s_tail->next = r;
        else
            e->s_head = r;
        e->s_tail = r;
        e->s_queued++;
        /* Wake the executor only when its wait changes: a first search arms the max_wait_us
         * timer; the expected wave, a full batch or no wait at all ends it. The searches in
         * between join the batch without a wake-up each (a futex wake and two context switches
         * per call). */
        if (first || e->s_queued == e->x_fire || e->s_queued == e->opt.max_batch ||
            e->opt.max_wait_us == 0)
            pthread_cond_signal(&e->x_cv);
    }
    pthread_mutex_unlock(&e->x_mu);
    return rc;
}

/* Answers r with an error and frees it. */
static void answer_error(vs_sreq *r, vs_err code, uint64_t applied, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void answer_error(vs_sreq *r, vs_err code, uint64_t applied, const char *fmt, ...)
{
    vs_result_box *b = vs_result_new();
    if (b) {
        b->r.code = code;
        b->r.applied_seq = applied;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->r.msg, sizeof b->r.msg, fmt, ap);
        va_end(ap);
    }
    r->cb(r->ctx, b ? &b->r : NULL);
    vs_sreq_free(r);
}

/* Reads slot's attributes from c's store into arena memory. */
uint32_t vs_coll_read_attrs(vs_coll *c, uint32_t slot, vs_arena *a, vs_attr_out **out)
{
    uint32_t na = vs_attr_schema_count(c->attrs);
    *out = NULL;
    if (!na)
        return 0;
    vs_attr_out *arr = vs_arena_alloc(a, na * sizeof *arr);
    if (!arr)
        return 0;
    uint32_t n = 0;
    uint64_t codes[64];
    for (uint32_t f = 0; f < na; f++) {
        vs_attr_type t = vs_attr_schema_type(c->attrs, f);
        const char *name = vs_attr_schema_name(c->attrs, f);
        if (t == VS_ATTR_INT) {
            int64_t v;
            if (!vs_attr_store_get_int(c->astore, f, slot, &v))
                continue;
            arr[n] = (vs_attr_out){.field = vs_arena_strdup(a, name, strlen(name)),
                                   .type = VS_ATTR_INT, .int_value = v};
            n++;
            continue;
        }
        size_t cnt = vs_attr_store_get_tags(c->astore, f, slot, codes, 64);
        if (!cnt)
            continue;
        uint64_t *cs = codes;
        if (cnt > 64) {
            cs = vs_arena_alloc(a, cnt * sizeof *cs);
            if (!cs)
                continue;
            vs_attr_store_get_tags(c->astore, f, slot, cs, cnt);
        }
        vs_attr_str *tags = vs_arena_alloc(a, cnt * sizeof *tags);
        if (!tags)
            continue;
        const vs_attr_dict *d = vs_attr_store_dict(c->astore, f);
        for (size_t i = 0; i < cnt; i++) {
            size_t len = 0;
            const char *s = vs_attr_dict_value(d, cs[i], &len);
            tags[i].s = vs_arena_strdup(a, s ? s : "", s ? len : 0);
            tags[i].len = s ? len : 0;
        }
        arr[n] = (vs_attr_out){.field = vs_arena_strdup(a, name, strlen(name)),
                               .type = VS_ATTR_TAG, .tags = tags, .n_tags = (uint32_t)cnt};
        n++;
    }
    *out = arr;
    return n;
}

/* The executor's scratch for one batch. */
typedef struct xscratch {
    uint32_t cap;
    vs_filter_result **fres;
    vs_query *queries;
    vs_sreq **group;
    vs_hit *hits;
    size_t hits_cap;
    uint32_t *counts;
} xscratch;

/* Runs one group of searches with the same collection, k and rerank factor. */
static void run_group(vs_engine *e, xscratch *x, vs_sreq **reqs, uint32_t n, uint64_t applied)
{
    vs_coll *c = reqs[0]->coll;
    uint32_t k = reqs[0]->k;
    if (c->dropped) {
        for (uint32_t i = 0; i < n; i++)
            answer_error(reqs[i], VS_ERR_NOT_FOUND, applied, "collection '%s' was dropped",
                         c->name);
        return;
    }
    uint32_t m = 0;
    const uint64_t *live = vs_index_live_words(c->index);
    uint32_t limit = vs_index_slot_limit(c->index);
    for (uint32_t i = 0; i < n; i++) {
        vs_sreq *r = reqs[i];
        vs_query *q = &x->queries[m];
        q->terms = r->terms;
        q->n_terms = r->n_terms;
        q->combine = r->combine;
        q->allowed = NULL;
        if (r->filter) {
            vs_status st;
            if (vs_filter_eval(r->filter, c->astore, live, limit, NULL, x->fres[m], &st)) {
                answer_error(r, st.code, applied, "%s", st.msg);
                continue;
            }
            q->allowed = vs_filter_result_slotset(x->fres[m]);
        }
        reqs[m++] = r;
    }
    if (!m)
        return;
    size_t need = (size_t)m * k;
    if (need > x->hits_cap) {
        vs_hit *nh = realloc(x->hits, need * sizeof *nh);
        if (!nh) {
            for (uint32_t i = 0; i < m; i++)
                answer_error(reqs[i], VS_ERR_RESOURCE_EXHAUSTED, applied,
                             "out of memory for %u x %u results", m, k);
            return;
        }
        x->hits = nh;
        x->hits_cap = need;
    }
    vs_search_params sp = {.k = k, .rerank_factor = reqs[0]->rerank_factor};
    vs_status st;
    vs_status_clear(&st);
    vs_err rc = vs_index_search(c->index, x->queries, m, &sp, x->hits, x->counts, &st);
    atomic_fetch_add(&e->st_batched, m);
    for (uint32_t i = 0; i < m; i++) {
        vs_sreq *r = reqs[i];
        if (rc) {
            answer_error(r, rc, applied, "%s", st.msg);
            continue;
        }
        vs_result_box *b = vs_result_new();
        if (!b) {
            r->cb(r->ctx, NULL);
            vs_sreq_free(r);
            continue;
        }
        b->r.code = VS_OK;
        b->r.applied_seq = applied;
        uint32_t cnt = x->counts[i];
        b->r.hits = cnt ? vs_arena_alloc(&b->arena, cnt * sizeof *b->r.hits) : NULL;
        if (cnt && !b->r.hits) {
            b->r.code = VS_ERR_RESOURCE_EXHAUSTED;
            snprintf(b->r.msg, sizeof b->r.msg, "out of memory for results");
            cnt = 0;
        }
        for (uint32_t h = 0; h < cnt; h++) {
            const vs_hit *hit = &x->hits[(size_t)i * k + h];
            vs_search_hit *o = &b->r.hits[h];
            o->id = hit->id;
            o->score = hit->score;
            uint32_t slot;
            if (r->with_attrs && vs_index_lookup(c->index, hit->id, &slot)) {
                vs_attr_out *attrs;
                o->n_attrs = vs_coll_read_attrs(c, slot, &b->arena, &attrs);
                o->attrs = attrs;
            }
        }
        b->r.n_hits = cnt;
        r->cb(r->ctx, &b->r);
        vs_sreq_free(r);
    }
}

/* Orders searches by collection, k and rerank factor, so groups are runs. */
static int cmp_sreq(const void *pa, const void *pb)
{
    const vs_sreq *a = *(vs_sreq *const *)pa, *b = *(vs_sreq *const *)pb;
    if (a->coll != b->coll)
        return (uintptr_t)a->coll < (uintptr_t)b->coll ? -1 : 1;
    if (a->k != b->k)
        return a->k < b->k ? -1 : 1;
    if (a->rerank_factor != b->rerank_factor)
        return a->rerank_factor < b->rerank_factor ? -1 : 1;
    return a->enq_ns < b->enq_ns ? -1 : a->enq_ns > b->enq_ns;
}

/* Runs the ready searches (n <= cap) in groups. */
static void run_batch(vs_engine *e, xscratch *x, vs_sreq **ready, uint32_t n, uint64_t applied)
{
    qsort(ready, n, sizeof *ready, cmp_sreq);
    atomic_fetch_add(&e->st_batches, 1);
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i + 1;
        while (j < n && ready[j]->coll == ready[i]->coll && ready[j]->k == ready[i]->k &&
               ready[j]->rerank_factor == ready[i]->rerank_factor)
            j++;
        run_group(e, x, ready + i, j - i, applied);
        i = j;
    }
}

/* Adds ns to now as an absolute CLOCK_MONOTONIC timespec. */
static struct timespec abs_mono(uint64_t at_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(at_ns / 1000000000ull),
                          .tv_nsec = (long)(at_ns % 1000000000ull)};
    return ts;
}

/* The executor thread. */
static void *executor_main(void *arg)
{
    vs_engine *e = arg;
    xscratch x;
    memset(&x, 0, sizeof x);
    x.cap = e->opt.max_batch;
    x.fres = calloc(x.cap, sizeof *x.fres);
    x.queries = calloc(x.cap, sizeof *x.queries);
    x.counts = calloc(x.cap, sizeof *x.counts);
    vs_sreq **ready = calloc(x.cap, sizeof *ready);
    for (uint32_t i = 0; x.fres && i < x.cap; i++)
        x.fres[i] = vs_filter_result_create();
    vs_sreq *parked = NULL;
    uint64_t max_wait_ns = (uint64_t)e->opt.max_wait_us * 1000ull;
    uint32_t fire_n = x.cap; /* the size of the last batch: the wave expected back */
    for (;;) {
        pthread_mutex_lock(&e->x_mu);
        e->x_fire = fire_n;
        bool quit = false;
        for (;;) {
            uint64_t now = vs_now_ns();
            if (e->a_head)
                break;
            if (e->s_head && (e->s_queued >= fire_n || e->x_stop ||
                              now >= e->s_head->enq_ns + max_wait_ns))
                break;
            uint64_t wake = UINT64_MAX;
            if (e->s_head)
                wake = e->s_head->enq_ns + max_wait_ns;
            for (vs_sreq *p = parked; p; p = p->next) {
                uint64_t d = p->seq_deadline_ns;
                if (p->deadline_ns && p->deadline_ns < d)
                    d = p->deadline_ns;
                if (d < wake)
                    wake = d;
            }
            if (wake <= now)
                break;
            if (e->x_stop && !e->s_head && !parked) {
                quit = true;
                break;
            }
            if (wake == UINT64_MAX) {
                pthread_cond_wait(&e->x_cv, &e->x_mu);
            } else {
                struct timespec ts = abs_mono(wake);
                pthread_cond_timedwait(&e->x_cv, &e->x_mu, &ts);
            }
        }
        if (quit) {
            pthread_mutex_unlock(&e->x_mu);
            break;
        }
        vs_apply *applies = e->a_head;
        e->a_head = e->a_tail = NULL;
        uint32_t n_taken = 0;
        vs_sreq *taken = NULL;
        uint64_t now = vs_now_ns();
        if (e->s_head && (e->s_queued >= fire_n || e->x_stop ||
                          now >= e->s_head->enq_ns + max_wait_ns)) {
            taken = e->s_head;
            vs_sreq *t = taken;
            n_taken = 1;
            while (t->next && n_taken < x.cap) {
                t = t->next;
                n_taken++;
            }
            e->s_head = t->next;
            if (!e->s_head)
                e->s_tail = NULL;
            t->next = NULL;
            e->s_queued -= n_taken;
        }
        bool stopping = e->x_stop;
        pthread_mutex_unlock(&e->x_mu);

        if (applies) {
            uint64_t last = apply_list(e, applies);
            atomic_store_explicit(&e->applied_seq, last, memory_order_release);
        }
        uint64_t applied = atomic_load_explicit(&e->applied_seq, memory_order_acquire);
        now = vs_now_ns();
        uint32_t n_ready = 0;
        /* parked searches first: they are older */
        vs_sreq **pp = &parked;
        while (*pp) {
            vs_sreq *p = *pp;
            bool expired = (p->deadline_ns && now >= p->deadline_ns) ||
                           (p->min_seq > applied && (now >= p->seq_deadline_ns || stopping));
            if (p->min_seq <= applied && !expired && n_ready < x.cap) {
                *pp = p->next;
                atomic_fetch_sub(&e->st_parked, 1);
                ready[n_ready++] = p;
            } else if (expired) {
                *pp = p->next;
                atomic_fetch_sub(&e->st_parked, 1);
                answer_error(p, VS_ENGINE_ERR_DEADLINE, applied,
                             "deadline exceeded: min_seq %llu was not applied in time (applied_seq %llu)",
                             (unsigned long long)p->min_seq, (unsigned long long)applied);
            } else {
                pp = &p->next;
            }
        }
        while (taken) {
            vs_sreq *r = taken;
            taken = r->next;
            r->next = NULL;
            if (r->deadline_ns && now >= r->deadline_ns) {
                answer_error(r, VS_ENGINE_ERR_DEADLINE, applied,
                             "deadline exceeded before the search ran");
            } else if (r->min_seq > applied || n_ready >= x.cap) {
                r->next = parked;
                parked = r;
                atomic_fetch_add(&e->st_parked, 1);
            } else {
                ready[n_ready++] = r;
            }
        }
        if (n_ready && x.fres && ready)
            run_batch(e, &x, ready, n_ready, applied);
        if (n_ready)
            fire_n = n_ready;
    }
    while (parked) {
        vs_sreq *p = parked;
        parked = p->next;
        answer_error(p, VS_ERR_UNAVAILABLE, atomic_load(&e->applied_seq), "the engine closed");
    }
    for (uint32_t i = 0; x.fres && i < x.cap; i++)
        vs_filter_result_destroy(x.fres[i]);
    free(x.fres);
    free(x.queries);
    free(x.counts);
    free(x.hits);
    free(ready);
    return NULL;
}

/* Starts the executor thread. */
vs_err vs_executor_start(vs_engine *e, vs_status *st)
{
    if (pthread_create(&e->x_thread, NULL, executor_main, e) != 0)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cannot start the executor thread");
    e->x_started = true;
    return VS_OK;
}

/* Answers what is queued, applies what was committed, stops the thread. */
void vs_executor_stop(vs_engine *e)
{
    if (!e->x_started)
        return;
    pthread_mutex_lock(&e->x_mu);
    e->x_stop = true;
    pthread_cond_signal(&e->x_cv);
    pthread_mutex_unlock(&e->x_mu);
    pthread_join(e->x_thread, NULL);
    e->x_started = false;
    /* applies that came after the last loop (none once the writer has stopped first) */
    if (e->a_head) {
        uint64_t last = apply_list(e, e->a_head);
        atomic_store(&e->applied_seq, last);
        e->a_head = e->a_tail = NULL;
    }
}
