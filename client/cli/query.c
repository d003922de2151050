/*
 * query.c: building Search requests, and the runner that keeps many calls in flight over several
 * connections (eval, loadtest).
 *
 * The runner gives each connection its own thread, and each thread keeps its share of the
 * concurrency in flight with vsc_unary_start_raw on that connection; completions come back in the
 * thread's vsc_conn_run. Requests are packed up front, so the measured time is the RPC's, not the
 * client's protobuf work.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_fill_query(Vecscan__V1__Query *q, Vecscan__V1__Term *term, Vecscan__V1__Term **termp,
                    Vecscan__V1__Vector *vec, Vecscan__V1__Vector **vecp, const cli_qopts *o,
                    const float *v, uint32_t dim, const char *filter)
{
    vecscan__v1__vector__init(vec);
    vec->n_values = dim;
    vec->values = (float *)v;
    *vecp = vec;
    vecscan__v1__term__init(term);
    term->field = (char *)(o->field ? o->field : "");
    term->n_vectors = 1;
    term->vectors = vecp;
    *termp = term;
    vecscan__v1__query__init(q);
    q->n_terms = 1;
    q->terms = termp;
    q->combine = o->combine;
    q->filter = (char *)(filter ? filter : o->filter ? o->filter : "");
    q->k = o->k;
    q->rerank_factor = o->rerank;
    q->with_attributes = o->with_attributes;
}

int cli_pack_queries(const cli_qopts *o, const float *vs, uint32_t n, uint32_t dim,
                     const char *const *filters, bool batch, uint8_t **out, size_t *len)
{
    *out = NULL;
    Vecscan__V1__Query *q = calloc(n, sizeof *q), **qp = calloc(n, sizeof *qp);
    Vecscan__V1__Term *t = calloc(n, sizeof *t), **tp = calloc(n, sizeof *tp);
    Vecscan__V1__Vector *v = calloc(n, sizeof *v), **vp = calloc(n, sizeof *vp);
    int rc = -1;
    if (!q || !qp || !t || !tp || !v || !vp) goto out;
    for (uint32_t i = 0; i < n; i++) {
        cli_fill_query(&q[i], &t[i], &tp[i], &v[i], &vp[i], o, vs + (size_t)i * dim, dim,
                       filters ? filters[i] : NULL);
        qp[i] = &q[i];
    }
    ProtobufCMessage *m;
    Vecscan__V1__SearchRequest sr = VECSCAN__V1__SEARCH_REQUEST__INIT;
    Vecscan__V1__SearchBatchRequest br = VECSCAN__V1__SEARCH_BATCH_REQUEST__INIT;
    if (n == 1 && !batch) {
        sr.collection = (char *)o->collection;
        sr.query = &q[0];
        sr.min_seq = o->min_seq;
        m = &sr.base;
    } else {
        br.collection = (char *)o->collection;
        br.n_queries = n;
        br.queries = qp;
        br.min_seq = o->min_seq;
        m = &br.base;
    }
    *len = protobuf_c_message_get_packed_size(m);
    *out = malloc(*len ? *len : 1);
    if (!*out) goto out;
    protobuf_c_message_pack(m, *out);
    rc = 0;
out:
    free(q);
    free(qp);
    free(t);
    free(tp);
    free(v);
    free(vp);
    return rc;
}

/* ===== The runner ===== */

typedef struct worker {
    cli_runner *r;
    vsc_conn *c;
    int per; /* calls this worker keeps in flight */
    int in_flight;
    cli_lat lat;
    uint64_t codes[VSC_N_CODES];
    uint64_t calls;
    char error[VSC_MSG_LEN];
    pthread_t th;
} worker;

typedef struct shared {
    atomic_size_t next;
    atomic_bool stop;
    double end; /* cycle mode: when to stop starting calls */
} shared;

static shared g_sh; /* one runner at a time */

typedef struct call_ctx {
    worker *w;
    size_t i;
    double t0;
} call_ctx;

static void on_call(void *user, const vsc_status *st, ProtobufCMessage *resp, const uint8_t *raw, size_t len)
{
    (void)resp;
    call_ctx *cc = user;
    worker *w = cc->w;
    double ms = (cli_now() - cc->t0) * 1e3;
    w->in_flight--;
    w->calls++;
    w->codes[st->code >= 0 && st->code < VSC_N_CODES ? st->code : VSC_UNKNOWN]++;
    cli_lat_add(&w->lat, ms);
    if (w->r->on_done && !w->r->on_done(w->r->user, cc->i, st, raw, len)) atomic_store(&g_sh.stop, true);
    free(cc);
}

/* The next request index, or SIZE_MAX when there is no more work. */
static size_t take_next(cli_runner *r)
{
    if (atomic_load(&g_sh.stop)) return SIZE_MAX;
    if (r->cycle) {
        if (cli_now() >= g_sh.end) return SIZE_MAX;
        return atomic_fetch_add(&g_sh.next, 1) % r->n_reqs;
    }
    size_t i = atomic_fetch_add(&g_sh.next, 1);
    return i < r->n_reqs ? i : SIZE_MAX;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    cli_runner *r = w->r;
    bool more = true;
    vsc_status st;
    while (more || w->in_flight > 0) {
        while (more && w->in_flight < w->per) {
            size_t i = take_next(r);
            if (i == SIZE_MAX) {
                more = false;
                break;
            }
            call_ctx *cc = malloc(sizeof *cc);
            if (!cc) {
                snprintf(w->error, sizeof w->error, "out of memory");
                atomic_store(&g_sh.stop, true);
                more = false;
                break;
            }
            *cc = (call_ctx){.w = w, .i = i, .t0 = cli_now()};
            if (vsc_unary_start_raw(w->c, r->path, r->reqs[i], r->req_len[i], NULL, -1, on_call, cc, &st) != VSC_OK) {
                free(cc);
                snprintf(w->error, sizeof w->error, "%s", st.message);
                atomic_store(&g_sh.stop, true);
                more = false;
                break;
            }
            w->in_flight++;
        }
        if (w->in_flight == 0) continue;
        if (vsc_conn_run(w->c, 100, &st) != VSC_OK) {
            if (!w->error[0]) snprintf(w->error, sizeof w->error, "%s", st.message);
            atomic_store(&g_sh.stop, true);
            more = false;
            /* the broken connection completed every call: in_flight is 0 now */
        }
    }
    return NULL;
}

int cli_run(cli_runner *r)
{
    int nw = r->connections < 1 ? 1 : r->connections;
    if (r->concurrency < nw) r->concurrency = nw;
    worker *ws = calloc((size_t)nw, sizeof *ws);
    if (!ws) return cli_fail(r->cmd->name, CLI_EXIT_FAIL, "out of memory");
    atomic_init(&g_sh.next, 0);
    atomic_init(&g_sh.stop, false);
    int rc = 0;
    for (int i = 0; i < nw && rc == 0; i++) {
        ws[i].r = r;
        ws[i].per = r->concurrency / nw + (i < r->concurrency % nw ? 1 : 0);
        rc = cli_connect(r->cmd, &ws[i].c);
    }
    double t0 = cli_now();
    g_sh.end = t0 + r->duration_s;
    int started = 0;
    for (int i = 0; i < nw && rc == 0; i++, started++)
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
            atomic_store(&g_sh.stop, true);
            rc = cli_fail(r->cmd->name, CLI_EXIT_FAIL, "cannot start a thread");
        }
    for (int i = 0; i < started; i++) pthread_join(ws[i].th, NULL);
    r->elapsed_s = cli_now() - t0;
    for (int i = 0; i < nw; i++) {
        if (i < started) {
            cli_lat_merge(&r->lat, &ws[i].lat);
            for (int k = 0; k < VSC_N_CODES; k++) r->codes[k] += ws[i].codes[k];
            r->calls += ws[i].calls;
            if (ws[i].error[0] && !r->error[0]) snprintf(r->error, sizeof r->error, "%s", ws[i].error);
        }
        cli_lat_free(&ws[i].lat);
        vsc_close(ws[i].c);
    }
    free(ws);
    if (rc == 0 && r->error[0]) rc = cli_fail(r->cmd->name, CLI_EXIT_FAIL, "%s", r->error);
    return rc;
}
