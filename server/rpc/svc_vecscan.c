/*
 * svc_vecscan.c: vecscan.v1.VecScan, the public API, on the engine (see vs_api.h).
 *
 * Each handler decodes and checks its request against the limits first (nothing reaches the
 * engine past a limit), converts it to the engine's types without copying the vectors (the
 * engine copies what it keeps before vs_engine_write / vs_engine_search return), and replies from
 * wherever the answer comes: the loop thread for errors found here, the writer thread for write
 * acks, the executor thread for search results, an API worker for the calls that block.
 *
 * Responses are built from stack and arena memory and serialized by vs_rpc_reply before the
 * arena is freed; nothing here keeps a pointer into a response.
 */
#include "vs_api.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vecscan.pb-c.h"
#include "vs_dlog.h"
#include "vs_engine.h"
#include "vs_metrics.h"

/* ===== Arena: response building ===== */

typedef struct ablock {
    struct ablock *next;
    size_t used, cap;
    max_align_t data[];
} ablock;

typedef struct arena {
    ablock *head;
    bool oom;
} arena;

/* Zeroed memory that lives until afree; NULL (and a->oom) when out of memory. */
static void *amalloc(arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!a->head || a->head->cap - a->head->used < n) {
        /* A small first block: most calls (a Search and its answer) fit in it, and a 64 KiB block
         * malloc'd and freed per call costs more than the call's protobuf work (each free of it
         * consolidates the allocator's fast bins). */
        size_t cap = a->head ? 65536 : 4096;
        if (n > cap) cap = n;
        ablock *b = malloc(sizeof *b + cap);
        if (!b) {
            a->oom = true;
            return NULL;
        }
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

static char *astrndup(arena *a, const char *s, size_t n)
{
    char *p = amalloc(a, n + 1);
    if (p) memcpy(p, s, n);
    return p;
}

static void afree(arena *a)
{
    while (a->head) {
        ablock *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

/* ===== The API object and its workers ===== */

typedef void (*job_fn)(vs_api *a, vs_engine *e, vs_rpc_call *call, const ProtobufCMessage *req);

typedef struct job {
    struct job *next;
    job_fn fn;
    vs_rpc_call *call;
    const ProtobufCMessage *req;
} job;

struct vs_api {
    vs_api_limits lim;
    char device[32];
    _Atomic(vs_engine *) engine;
    uint64_t start_ns;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, **tail;
    uint32_t queued;
    bool stop;
    pthread_t *th;
    uint32_t n_th;
    vs_metrics *metrics;
};

vs_grpc_code vs_api_code(vs_err e, const char *msg)
{
    if (e == VS_ENGINE_ERR_DEADLINE && msg && strncmp(msg, "deadline exceeded", 17) == 0)
        return VS_GRPC_DEADLINE_EXCEEDED;
    return vs_grpc_from_err(e);
}

static void fail_st(vs_rpc_call *call, const vs_status *st)
{
    vs_rpc_finish(call, vs_api_code(st->code, st->msg), "%s", st->msg[0] ? st->msg : vs_err_name(st->code));
}

static vs_engine *engine_or_fail(vs_api *a, vs_rpc_call *call)
{
    vs_engine *e = atomic_load(&a->engine);
    if (!e) vs_rpc_finish(call, VS_GRPC_UNAVAILABLE, "the daemon is recovering its data; try again shortly");
    return e;
}

static void *worker_main(void *arg)
{
    vs_api *a = arg;
    for (;;) {
        pthread_mutex_lock(&a->mu);
        while (!a->head && !a->stop) pthread_cond_wait(&a->cv, &a->mu);
        job *j = a->head;
        if (!j) {
            pthread_mutex_unlock(&a->mu);
            return NULL;
        }
        a->head = j->next;
        if (!a->head) a->tail = &a->head;
        a->queued--;
        bool stopping = a->stop;
        pthread_mutex_unlock(&a->mu);
        vs_engine *e = atomic_load(&a->engine);
        if (stopping) vs_rpc_finish(j->call, VS_GRPC_UNAVAILABLE, "the daemon is shutting down");
        else if (vs_rpc_cancelled(j->call)) vs_rpc_finish(j->call, VS_GRPC_CANCELLED, NULL);
        else if (!e) vs_rpc_finish(j->call, VS_GRPC_UNAVAILABLE, "the daemon is recovering its data");
        else j->fn(a, e, j->call, j->req);
        free(j);
    }
}

/* Runs fn on a worker; the queue is bounded (RESOURCE_EXHAUSTED when full). */
static void run_blocking(vs_api *a, job_fn fn, vs_rpc_call *call, const ProtobufCMessage *req)
{
    job *j = malloc(sizeof *j);
    if (!j) {
        vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    *j = (job){.fn = fn, .call = call, .req = req};
    pthread_mutex_lock(&a->mu);
    if (a->stop || a->queued >= a->lim.worker_queue) {
        bool stop = a->stop;
        pthread_mutex_unlock(&a->mu);
        free(j);
        if (stop) vs_rpc_finish(call, VS_GRPC_UNAVAILABLE, "the daemon is shutting down");
        else vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "%u calls are queued already; try again later",
                           a->lim.worker_queue);
        return;
    }
    *a->tail = j;
    a->tail = &j->next;
    a->queued++;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* ===== Conversions ===== */

static bool collection_ok(vs_rpc_call *call, const char *name)
{
    if (!name || !*name) {
        vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "collection: a name is required");
        return false;
    }
    return true;
}

/* Engine attribute value -> Attribute message (arena). */
static Vecscan__V1__Attribute *attr_out(arena *ar, const vs_attr_out *in)
{
    Vecscan__V1__Attribute *o = amalloc(ar, sizeof *o);
    if (!o) return NULL;
    vecscan__v1__attribute__init(o);
    o->name = (char *)in->field;
    if (in->type == VS_ATTR_INT) {
        o->value_case = VECSCAN__V1__ATTRIBUTE__VALUE_INT_VALUE;
        o->int_value = in->int_value;
        return o;
    }
    Vecscan__V1__Tags *t = amalloc(ar, sizeof *t);
    char **vals = amalloc(ar, (in->n_tags ? in->n_tags : 1) * sizeof *vals);
    if (!t || !vals) return NULL;
    vecscan__v1__tags__init(t);
    for (uint32_t i = 0; i < in->n_tags; i++) {
        vals[i] = astrndup(ar, in->tags[i].s, in->tags[i].len);
        if (!vals[i]) return NULL;
    }
    t->n_values = in->n_tags;
    t->values = vals;
    o->value_case = VECSCAN__V1__ATTRIBUTE__VALUE_TAGS;
    o->tags = t;
    return o;
}

static Vecscan__V1__Attribute **attrs_out(arena *ar, const vs_attr_out *in, uint32_t n)
{
    Vecscan__V1__Attribute **v = amalloc(ar, (n ? n : 1) * sizeof *v);
    if (!v) return NULL;
    for (uint32_t i = 0; i < n; i++)
        if (!(v[i] = attr_out(ar, &in[i]))) return NULL;
    return v;
}

/* The items of a write request -> engine mutations (arena; vectors and strings borrowed from the
 * request). Returns false after finishing the call with the reason. */
static bool to_mutations(vs_api *a, vs_rpc_call *call, arena *ar, Vecscan__V1__Item *const *items,
                         size_t n, vs_mutation_op op, char **clear, size_t n_clear, vs_mutation *m)
{
    for (size_t i = 0; i < n; i++) {
        const Vecscan__V1__Item *it = items[i];
        if (!it) {
            vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "mutation %zu: item is required", i);
            return false;
        }
        m[i] = (vs_mutation){.op = op, .id = it->id};
        if (op == VS_MUT_DELETE) continue;
        vs_vector_in *v = amalloc(ar, (it->n_vectors ? it->n_vectors : 1) * sizeof *v);
        vs_attr_in *at = amalloc(ar, (it->n_attributes ? it->n_attributes : 1) * sizeof *at);
        if (!v || !at) {
            vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return false;
        }
        for (size_t k = 0; k < it->n_vectors; k++) {
            const Vecscan__V1__Vector *x = it->vectors[k];
            if (x->n_values > a->lim.max_dim) {
                vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT,
                              "item %llu: vector '%s' has %zu values, above --max-dim %u",
                              (unsigned long long)it->id, x->field, x->n_values, a->lim.max_dim);
                return false;
            }
            v[k] = (vs_vector_in){.field = x->field, .values = x->values, .dim = (uint32_t)x->n_values};
        }
        for (size_t k = 0; k < it->n_attributes; k++) {
            const Vecscan__V1__Attribute *x = it->attributes[k];
            at[k].field = x->name;
            if (x->value_case == VECSCAN__V1__ATTRIBUTE__VALUE_INT_VALUE) {
                at[k].type = VS_ATTR_INT;
                at[k].int_value = x->int_value;
            } else if (x->value_case == VECSCAN__V1__ATTRIBUTE__VALUE_TAGS) {
                at[k].type = VS_ATTR_TAG;
                size_t nt = x->tags->n_values;
                vs_attr_str *t = amalloc(ar, (nt ? nt : 1) * sizeof *t);
                if (!t) {
                    vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
                    return false;
                }
                for (size_t q = 0; q < nt; q++) t[q] = (vs_attr_str){x->tags->values[q], strlen(x->tags->values[q])};
                at[k].tags = t;
                at[k].n_tags = (uint32_t)nt;
            } else {
                vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT,
                              "item %llu: attribute '%s' has neither tags nor int_value",
                              (unsigned long long)it->id, x->name);
                return false;
            }
        }
        m[i].vectors = v;
        m[i].n_vectors = (uint32_t)it->n_vectors;
        m[i].attrs = at;
        m[i].n_attrs = (uint32_t)it->n_attributes;
        if (op == VS_MUT_PATCH) {
            m[i].clear = (const char *const *)clear;
            m[i].n_clear = (uint32_t)n_clear;
        }
    }
    return true;
}

/* Nesting of a filter: parentheses and NOTs (outside quoted strings). */
static uint32_t filter_depth(const char *f)
{
    uint32_t d = 0, max = 0, nots = 0;
    bool q = false;
    for (const char *p = f; *p; p++) {
        if (q) {
            if (*p == '\\' && p[1]) p++;
            else if (*p == '\'') q = false;
            continue;
        }
        if (*p == '\'') q = true;
        else if (*p == '(') d++;
        else if (*p == ')' && d) d--;
        else if ((p == f || p[-1] == ' ' || p[-1] == '(') && strncmp(p, "NOT", 3) == 0 &&
                 (p[3] == ' ' || p[3] == '(')) nots++;
        if (d + nots > max) max = d + nots;
    }
    return max;
}

/* Query -> engine request (arena for the packed query vectors). Returns false after finishing the
 * call. `what` names the query in messages ("query" or "query 3"). */
/*
 * Turns a wire query into an engine request. Each term carries its dim, and the engine checks it
 * against the field before reading the vectors, so no schema lookup is needed here.
 */
static bool to_search(vs_api *a, vs_rpc_call *call, arena *ar, const char *collection,
                      const Vecscan__V1__Query *q, uint64_t min_seq, const char *what, vs_search_request *r)
{
    const vs_api_limits *L = &a->lim;
    if (!q) {
        vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "%s is required", what);
        return false;
    }
    if (q->n_terms == 0 || q->n_terms > L->max_terms) {
        vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "%s: %zu terms; 1 to %u (--max-terms) are allowed",
                      what, q->n_terms, L->max_terms);
        return false;
    }
    uint32_t k = q->k ? q->k : 10;
    if (k > L->max_k) {
        vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "%s: k %u is above the limit %u (--max-k)", what, k, L->max_k);
        return false;
    }
    if ((int)q->combine < 0 || q->combine > VECSCAN__V1__COMBINE__COMBINE_INTERLEAVE) {
        vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "%s: unknown combine %d", what, (int)q->combine);
        return false;
    }
    const char *filter = q->filter ? q->filter : "";
    size_t flen = strlen(filter);
    if (flen > L->max_filter_bytes) {
        vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "%s: filter of %zu bytes is above the limit %u (--max-filter-bytes)",
                      what, flen, L->max_filter_bytes);
        return false;
    }
    uint32_t depth = filter_depth(filter);
    if (depth > L->max_filter_depth) {
        vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "%s: filter nests %u deep, above the limit %u (--max-filter-depth)",
                      what, depth, L->max_filter_depth);
        return false;
    }
    vs_search_term_in *terms = amalloc(ar, q->n_terms * sizeof *terms);
    if (!terms) goto oom;
    for (size_t t = 0; t < q->n_terms; t++) {
        const Vecscan__V1__Term *tm = q->terms[t];
        if (tm->n_vectors == 0 || tm->n_vectors > L->max_term_vectors) {
            vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "%s: term %zu ('%s') has %zu vectors; 1 to %u (--max-term-vectors) are allowed",
                          what, t, tm->field, tm->n_vectors, L->max_term_vectors);
            return false;
        }
        size_t dim = tm->vectors[0]->n_values;
        if (dim == 0 || dim > L->max_dim) {
            vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "%s: term %zu ('%s'): dim %zu; 1 to %u (--max-dim) are allowed",
                          what, t, tm->field, dim, L->max_dim);
            return false;
        }
        if (!(tm->weight >= 0) || isinf(tm->weight)) {
            vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "%s: term %zu ('%s'): weight %g; finite and > 0 (0 = 1)",
                          what, t, tm->field, (double)tm->weight);
            return false;
        }
        float *buf;
        if (tm->n_vectors == 1) {
            buf = tm->vectors[0]->values;
        } else {
            buf = amalloc(ar, tm->n_vectors * dim * sizeof *buf);
            if (!buf) goto oom;
            for (size_t v = 0; v < tm->n_vectors; v++) {
                if (tm->vectors[v]->n_values != dim) {
                    vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "%s: term %zu ('%s'): vector %zu has %zu values, vector 0 has %zu",
                                  what, t, tm->field, v, tm->vectors[v]->n_values, dim);
                    return false;
                }
                memcpy(buf + v * dim, tm->vectors[v]->values, dim * sizeof *buf);
            }
        }
        terms[t] = (vs_search_term_in){.field = tm->field, .vectors = buf, .n_vectors = (uint32_t)tm->n_vectors,
                                       .dim = (uint32_t)dim, .weight = tm->weight};
    }
    *r = (vs_search_request){
        .collection = collection,
        .terms = terms,
        .n_terms = (uint32_t)q->n_terms,
        .combine = (vs_combine)q->combine,
        .k = k,
        .rerank_factor = q->rerank_factor,
        .filter = flen ? filter : NULL,
        .filter_len = flen,
        .min_seq = min_seq,
        .deadline_ns = vs_rpc_deadline_ns(call),
        .with_attributes = q->with_attributes,
    };
    return true;
oom:
    vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return false;
}

/* Engine hits -> SearchResult (arena). */
static Vecscan__V1__SearchResult *result_out(arena *ar, const vs_search_result *res)
{
    Vecscan__V1__SearchResult *o = amalloc(ar, sizeof *o);
    Vecscan__V1__Hit *hits = amalloc(ar, (res->n_hits ? res->n_hits : 1) * sizeof *hits);
    Vecscan__V1__Hit **ptrs = amalloc(ar, (res->n_hits ? res->n_hits : 1) * sizeof *ptrs);
    if (!o || !hits || !ptrs) return NULL;
    vecscan__v1__search_result__init(o);
    for (uint32_t i = 0; i < res->n_hits; i++) {
        vecscan__v1__hit__init(&hits[i]);
        hits[i].id = res->hits[i].id;
        hits[i].score = res->hits[i].score;
        if (res->hits[i].n_attrs) {
            hits[i].attributes = attrs_out(ar, res->hits[i].attrs, res->hits[i].n_attrs);
            if (!hits[i].attributes) return NULL;
            hits[i].n_attributes = res->hits[i].n_attrs;
        }
        ptrs[i] = &hits[i];
    }
    o->n_hits = res->n_hits;
    o->hits = ptrs;
    return o;
}

/* ===== Collections ===== */

static void do_create(vs_api *a, vs_engine *e, vs_rpc_call *call, const ProtobufCMessage *m)
{
    const Vecscan__V1__CreateCollectionRequest *r = (const void *)m;
    if (!collection_ok(call, r->name)) return;
    const Vecscan__V1__Schema *sc = r->schema;
    if (!sc || sc->n_vectors == 0 || sc->n_vectors > VS_MAX_FIELDS) {
        vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "schema: %zu vector fields; 1 to %d are allowed",
                      sc ? sc->n_vectors : 0, VS_MAX_FIELDS);
        return;
    }
    vs_field_spec f[VS_MAX_FIELDS];
    memset(f, 0, sizeof f);
    for (size_t i = 0; i < sc->n_vectors; i++) {
        const Vecscan__V1__VectorField *v = sc->vectors[i];
        if (strlen(v->name) > VS_FIELD_NAME_MAX || !*v->name) {
            vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "schema: vector field %zu: name must be 1 to %d characters",
                          i, VS_FIELD_NAME_MAX);
            return;
        }
        if (v->dim == 0 || v->dim > a->lim.max_dim) {
            vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "schema: vector field '%s': dim %u; 1 to %u (--max-dim) are allowed",
                          v->name, v->dim, a->lim.max_dim);
            return;
        }
        if ((unsigned)v->metric > VECSCAN__V1__METRIC__METRIC_L2 || (unsigned)v->storage > VECSCAN__V1__STORAGE__STORAGE_B1) {
            vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "schema: vector field '%s': unknown metric %d or storage %d",
                          v->name, (int)v->metric, (int)v->storage);
            return;
        }
        snprintf(f[i].name, sizeof f[i].name, "%s", v->name);
        f[i].dim = v->dim;
        f[i].metric = (vs_metric)v->metric;   /* the enums share their order */
        f[i].storage = (vs_storage)v->storage;
        f[i].rerank = v->rerank;
    }
    vs_status st;
    vs_attr_schema *as = vs_attr_schema_create();
    if (!as) {
        vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < sc->n_attributes; i++) {
        const Vecscan__V1__AttributeField *at = sc->attributes[i];
        if ((unsigned)at->type > VECSCAN__V1__ATTRIBUTE_TYPE__ATTRIBUTE_INT) {
            vs_attr_schema_destroy(as);
            vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "schema: attribute '%s': unknown type %d", at->name, (int)at->type);
            return;
        }
        vs_attr_type t = at->type == VECSCAN__V1__ATTRIBUTE_TYPE__ATTRIBUTE_INT ? VS_ATTR_INT : VS_ATTR_TAG;
        if (vs_attr_schema_add(as, at->name, t, &st) != VS_OK) {
            vs_attr_schema_destroy(as);
            fail_st(call, &st);
            return;
        }
    }
    uint64_t seq = 0;
    vs_err err = vs_engine_create_collection(e, r->name, f, (uint32_t)sc->n_vectors, as, &seq, &st);
    vs_attr_schema_destroy(as);
    if (err != VS_OK) {
        fail_st(call, &st);
        return;
    }
    VS_LOGI("api", "collection '%s' created (seq %llu)", r->name, (unsigned long long)seq);
    Vecscan__V1__CreateCollectionResponse resp = VECSCAN__V1__CREATE_COLLECTION_RESPONSE__INIT;
    resp.seq = seq;
    vs_rpc_reply(call, &resp.base);
}

static void do_drop(vs_api *a, vs_engine *e, vs_rpc_call *call, const ProtobufCMessage *m)
{
    const Vecscan__V1__DropCollectionRequest *r = (const void *)m;
    if (!collection_ok(call, r->name)) return;
    vs_status st;
    uint64_t seq = 0;
    if (vs_engine_drop_collection(e, r->name, &seq, &st) != VS_OK) {
        fail_st(call, &st);
        return;
    }
    VS_LOGI("api", "collection '%s' dropped (seq %llu)", r->name, (unsigned long long)seq);
    Vecscan__V1__DropCollectionResponse resp = VECSCAN__V1__DROP_COLLECTION_RESPONSE__INIT;
    resp.seq = seq;
    vs_rpc_reply(call, &resp.base);
}

static void do_list(vs_api *a, vs_engine *e, vs_rpc_call *call, const ProtobufCMessage *m)
{
    char **names;
    size_t n;
    vs_status st;
    if (vs_engine_list(e, &names, &n, &st) != VS_OK) {
        fail_st(call, &st);
        return;
    }
    Vecscan__V1__ListCollectionsResponse resp = VECSCAN__V1__LIST_COLLECTIONS_RESPONSE__INIT;
    resp.n_names = n;
    resp.names = names;
    vs_rpc_reply(call, &resp.base);
    vs_engine_names_free(names, n);
}

/* Describe -> CollectionInfo (arena); NULL after finishing the call. */
static Vecscan__V1__CollectionInfo *info_out(vs_engine *e, vs_rpc_call *call, arena *ar, const char *name)
{
    vs_collection_info ci;
    vs_status st;
    memset(&ci, 0, sizeof ci);
    if (vs_engine_describe(e, name, &ci, &st) != VS_OK) {
        fail_st(call, &st);
        return NULL;
    }
    Vecscan__V1__CollectionInfo *o = amalloc(ar, sizeof *o);
    Vecscan__V1__Schema *sc = amalloc(ar, sizeof *sc);
    uint32_t na = ci.attrs ? vs_attr_schema_count(ci.attrs) : 0;
    Vecscan__V1__VectorField **vf = amalloc(ar, VS_MAX_FIELDS * sizeof *vf);
    Vecscan__V1__FieldStats **fs = amalloc(ar, VS_MAX_FIELDS * sizeof *fs);
    Vecscan__V1__AttributeField **af = amalloc(ar, (na ? na : 1) * sizeof *af);
    if (!o || !sc || !vf || !fs || !af) goto oom;
    vecscan__v1__collection_info__init(o);
    vecscan__v1__schema__init(sc);
    o->name = astrndup(ar, ci.name, strlen(ci.name));
    if (!o->name) goto oom;
    for (uint32_t i = 0; i < ci.n_fields; i++) {
        vf[i] = amalloc(ar, sizeof **vf);
        fs[i] = amalloc(ar, sizeof **fs);
        if (!vf[i] || !fs[i]) goto oom;
        vecscan__v1__vector_field__init(vf[i]);
        vecscan__v1__field_stats__init(fs[i]);
        vf[i]->name = fs[i]->name = astrndup(ar, ci.fields[i].name, strlen(ci.fields[i].name));
        if (!vf[i]->name) goto oom;
        vf[i]->dim = ci.fields[i].dim;
        vf[i]->metric = (Vecscan__V1__Metric)ci.fields[i].metric;
        vf[i]->storage = (Vecscan__V1__Storage)ci.fields[i].storage;
        vf[i]->rerank = ci.fields[i].rerank;
        fs[i]->bytes = ci.field_bytes[i];
        fs[i]->rows = ci.count;
        o->bytes += ci.field_bytes[i];
    }
    for (uint32_t i = 0; i < na; i++) {
        af[i] = amalloc(ar, sizeof **af);
        if (!af[i]) goto oom;
        vecscan__v1__attribute_field__init(af[i]);
        const char *an = vs_attr_schema_name(ci.attrs, i);
        af[i]->name = astrndup(ar, an, strlen(an));
        if (!af[i]->name) goto oom;
        af[i]->type = vs_attr_schema_type(ci.attrs, i) == VS_ATTR_INT ? VECSCAN__V1__ATTRIBUTE_TYPE__ATTRIBUTE_INT
                                                                      : VECSCAN__V1__ATTRIBUTE_TYPE__ATTRIBUTE_TAG;
    }
    sc->n_vectors = ci.n_fields;
    sc->vectors = vf;
    sc->n_attributes = na;
    sc->attributes = af;
    o->schema = sc;
    o->rows = ci.count;
    o->n_fields = ci.n_fields;
    o->fields = fs;
    o->applied_seq = vs_engine_applied_seq(e);
    vs_collection_info_clear(&ci);
    return o;
oom:
    vs_collection_info_clear(&ci);
    vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return NULL;
}

static void do_describe(vs_api *a, vs_engine *e, vs_rpc_call *call, const ProtobufCMessage *m)
{
    const Vecscan__V1__DescribeCollectionRequest *r = (const void *)m;
    if (!collection_ok(call, r->name)) return;
    arena ar = {0};
    Vecscan__V1__CollectionInfo *info = info_out(e, call, &ar, r->name);
    if (info) {
        Vecscan__V1__DescribeCollectionResponse resp = VECSCAN__V1__DESCRIBE_COLLECTION_RESPONSE__INIT;
        resp.info = info;
        vs_rpc_reply(call, &resp.base);
    }
    afree(&ar);
}

static void do_stats(vs_api *a, vs_engine *e, vs_rpc_call *call, const ProtobufCMessage *m)
{
    const Vecscan__V1__StatsRequest *r = (const void *)m;
    arena ar = {0};
    char **names = NULL;
    size_t n = 0;
    vs_status st;
    if (r->collection && *r->collection) {
        names = malloc(sizeof *names);
        if (names) names[0] = strdup(r->collection);
        if (!names || !names[0]) {
            free(names);
            vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        n = 1;
    } else if (vs_engine_list(e, &names, &n, &st) != VS_OK) {
        fail_st(call, &st);
        return;
    }
    Vecscan__V1__StatsResponse resp = VECSCAN__V1__STATS_RESPONSE__INIT;
    resp.collections = amalloc(&ar, (n ? n : 1) * sizeof *resp.collections);
    bool ok = resp.collections != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        Vecscan__V1__CollectionInfo *ci = info_out(e, call, &ar, names[i]);
        if (!ci) {
            if (n == 1 && r->collection && *r->collection) {
                ok = false; /* the call is finished (NOT_FOUND) */
                break;
            }
            continue; /* dropped meanwhile: skip it. */
        }
        resp.collections[resp.n_collections++] = ci;
    }
    if (!resp.collections) vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    if (ok) {
        vs_engine_stats es;
        vs_engine_stats_get(e, &es);
        resp.applied_seq = es.applied_seq;
        resp.last_acked_seq = es.last_acked_seq;
        resp.device = a->device;
        resp.read_only = es.read_only;
        resp.uptime_s = (vs_rpc_now_ns() - a->start_ns) / 1000000000ull;
        vs_rpc_reply(call, &resp.base);
    }
    vs_engine_names_free(names, n);
    afree(&ar);
}

static void do_snapshot(vs_api *a, vs_engine *e, vs_rpc_call *call, const ProtobufCMessage *m)
{
    vs_status st;
    uint64_t seq = 0;
    if (vs_engine_snapshot(e, &seq, &st) != VS_OK) {
        fail_st(call, &st);
        return;
    }
    Vecscan__V1__SnapshotResponse resp = VECSCAN__V1__SNAPSHOT_RESPONSE__INIT;
    resp.seq = seq;
    vs_rpc_reply(call, &resp.base);
}

/* ===== Reads ===== */

static void do_get(vs_api *a, vs_engine *e, vs_rpc_call *call, const ProtobufCMessage *m)
{
    const Vecscan__V1__GetRequest *r = (const void *)m;
    if (!collection_ok(call, r->collection)) return;
    uint64_t seen = vs_engine_last_acked_seq(e);
    if (r->min_seq > seen) {
        vs_rpc_finish(call, VS_GRPC_OUT_OF_RANGE, "min_seq %llu is above the last acknowledged seq %llu",
                      (unsigned long long)r->min_seq, (unsigned long long)seen);
        return;
    }
    vs_get_result *g = NULL;
    vs_status st;
    if (vs_engine_get(e, r->collection, r->ids, r->n_ids, r->with_vectors, &g, &st) != VS_OK) {
        fail_st(call, &st);
        return;
    }
    arena ar = {0};
    Vecscan__V1__GetResponse resp = VECSCAN__V1__GET_RESPONSE__INIT;
    resp.items = amalloc(&ar, (g->n_found ? g->n_found : 1) * sizeof *resp.items);
    for (size_t i = 0; resp.items && i < g->n_found; i++) {
        const vs_item_out *in = &g->items[i];
        Vecscan__V1__Item *it = amalloc(&ar, sizeof *it);
        Vecscan__V1__Vector **vv = amalloc(&ar, (in->n_vectors ? in->n_vectors : 1) * sizeof *vv);
        if (!it || !vv) break;
        vecscan__v1__item__init(it);
        it->id = in->id;
        for (uint32_t k = 0; k < in->n_vectors; k++) {
            vv[k] = amalloc(&ar, sizeof **vv);
            if (!vv[k]) break;
            vecscan__v1__vector__init(vv[k]);
            vv[k]->field = (char *)in->vectors[k].field;
            vv[k]->n_values = in->vectors[k].dim;
            vv[k]->values = (float *)in->vectors[k].values;
        }
        it->n_vectors = in->n_vectors;
        it->vectors = vv;
        if (in->n_attrs) {
            it->attributes = attrs_out(&ar, in->attrs, in->n_attrs);
            if (!it->attributes) break;
            it->n_attributes = in->n_attrs;
        }
        resp.items[resp.n_items++] = it;
    }
    if (ar.oom || !resp.items) {
        vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    } else {
        resp.n_missing = g->n_missing;
        resp.missing = g->missing;
        resp.applied_seq = seen;
        vs_rpc_reply(call, &resp.base);
    }
    afree(&ar);
    vs_get_result_free(g);
}

typedef struct batch_ctx {
    vs_rpc_call *call;
    size_t n;
    atomic_size_t remaining;
    vs_search_result **res;
} batch_ctx;

static void search_done(void *ctx, vs_search_result *res)
{
    vs_rpc_call *call = ctx;
    if (res->code != VS_OK) {
        vs_rpc_finish(call, vs_api_code(res->code, res->msg), "%s", res->msg);
        vs_search_result_free(res);
        return;
    }
    arena ar = {0};
    Vecscan__V1__SearchResponse resp = VECSCAN__V1__SEARCH_RESPONSE__INIT;
    resp.result = result_out(&ar, res);
    resp.applied_seq = res->applied_seq;
    if (resp.result) vs_rpc_reply(call, &resp.base);
    else vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory building the response");
    afree(&ar);
    vs_search_result_free(res);
}

static void on_search(vs_rpc_call *call, const ProtobufCMessage *m, void *ctx)
{
    vs_api *a = ctx;
    const Vecscan__V1__SearchRequest *r = (const void *)m;
    vs_engine *e = engine_or_fail(a, call);
    if (!e || !collection_ok(call, r->collection)) return;
    arena ar = {0};
    vs_search_request q;
    vs_status st;
    if (to_search(a, call, &ar, r->collection, r->query, r->min_seq, "query", &q)) {
        if (vs_engine_search(e, &q, search_done, call, &st) != VS_OK) fail_st(call, &st);
    }
    afree(&ar);
}

static void batch_finish(batch_ctx *b)
{
    vs_rpc_call *call = b->call;
    for (size_t i = 0; i < b->n; i++) {
        if (b->res[i] && b->res[i]->code != VS_OK) {
            vs_rpc_finish(call, vs_api_code(b->res[i]->code, b->res[i]->msg), "query %zu: %s", i, b->res[i]->msg);
            goto out;
        }
    }
    arena ar = {0};
    Vecscan__V1__SearchBatchResponse resp = VECSCAN__V1__SEARCH_BATCH_RESPONSE__INIT;
    resp.results = amalloc(&ar, b->n * sizeof *resp.results);
    uint64_t seen = 0;
    for (size_t i = 0; resp.results && i < b->n; i++) {
        resp.results[i] = result_out(&ar, b->res[i]);
        if (!resp.results[i]) break;
        /* The batch saw at least the smallest applied_seq of its queries. */
        if (i == 0 || b->res[i]->applied_seq < seen) seen = b->res[i]->applied_seq;
    }
    resp.n_results = b->n;
    resp.applied_seq = seen;
    if (ar.oom || !resp.results) vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory building the response");
    else vs_rpc_reply(call, &resp.base);
    afree(&ar);
out:
    for (size_t i = 0; i < b->n; i++) vs_search_result_free(b->res[i]);
    free(b->res);
    free(b);
}

typedef struct batch_slot {
    batch_ctx *b;
    size_t i;
} batch_slot;

static void batch_done(void *ctx, vs_search_result *res)
{
    batch_slot *s = ctx;
    batch_ctx *b = s->b;
    b->res[s->i] = res;
    free(s);
    if (atomic_fetch_sub(&b->remaining, 1) == 1) batch_finish(b);
}

static void on_search_batch(vs_rpc_call *call, const ProtobufCMessage *m, void *ctx)
{
    vs_api *a = ctx;
    const Vecscan__V1__SearchBatchRequest *r = (const void *)m;
    vs_engine *e = engine_or_fail(a, call);
    if (!e || !collection_ok(call, r->collection)) return;
    if (r->n_queries == 0) {
        vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "SearchBatch: no queries");
        return;
    }
    if (r->n_queries > a->lim.max_batch_queries) {
        vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "SearchBatch: %zu queries, above the limit %u (--max-batch-queries)",
                      r->n_queries, a->lim.max_batch_queries);
        return;
    }
    uint64_t total_k = 0;
    for (size_t i = 0; i < r->n_queries; i++) total_k += r->queries[i]->k ? r->queries[i]->k : 10;
    if (total_k > a->lim.max_batch_results) {
        vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "SearchBatch: %llu results asked (sum of k), above the limit %llu (--max-batch-results)",
                      (unsigned long long)total_k, (unsigned long long)a->lim.max_batch_results);
        return;
    }
    arena ar = {0};
    vs_search_request *qs = amalloc(&ar, r->n_queries * sizeof *qs);
    if (!qs) {
        vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < r->n_queries; i++) {
        char what[32];
        snprintf(what, sizeof what, "query %zu", i);
        if (!to_search(a, call, &ar, r->collection, r->queries[i], r->min_seq, what, &qs[i])) {
            afree(&ar);
            return;
        }
    }
    batch_ctx *b = calloc(1, sizeof *b);
    if (b) b->res = calloc(r->n_queries, sizeof *b->res);
    if (!b || !b->res) {
        if (b) free(b);
        afree(&ar);
        vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    b->call = call;
    b->n = r->n_queries;
    /* One extra count held by this function, so that the batch cannot finish while queries are
     * still being queued. */
    atomic_init(&b->remaining, r->n_queries + 1);
    size_t i;
    for (i = 0; i < r->n_queries; i++) {
        vs_status st;
        batch_slot *s = malloc(sizeof *s);
        vs_err err = VS_ERR_RESOURCE_EXHAUSTED;
        if (s) {
            *s = (batch_slot){b, i};
            err = vs_engine_search(e, &qs[i], batch_done, s, &st);
        } else {
            vs_status_set(&st, err, "out of memory");
        }
        if (err != VS_OK) {
            free(s);
            /* This query and the ones after it will never call back: answer them as failed. */
            for (size_t k = i; k < r->n_queries; k++) {
                vs_search_result *fr = calloc(1, sizeof *fr);
                if (fr) {
                    fr->code = k == i ? st.code : VS_ERR_UNAVAILABLE;
                    snprintf(fr->msg, sizeof fr->msg, "%s", k == i ? st.msg : "not run");
                }
                b->res[k] = fr;
                if (!fr) {
                    /* Out of memory: a NULL result reads as an internal failure. */
                }
            }
            atomic_fetch_sub(&b->remaining, r->n_queries - i);
            break;
        }
    }
    afree(&ar);
    if (atomic_fetch_sub(&b->remaining, 1) == 1) batch_finish(b);
}

/* ===== Writes ===== */

typedef struct write_ctx {
    vs_rpc_call *call;
    const uint64_t *ids; /* Delete: the request's ids (the call keeps the request alive) */
    bool del;
} write_ctx;

static void write_done(void *ctx, const vs_write_ack *ack)
{
    write_ctx *w = ctx;
    vs_rpc_call *call = w->call;
    if (ack->code != VS_OK) {
        vs_rpc_finish(call, vs_api_code(ack->code, ack->msg), "%s", ack->msg);
    } else if (!w->del) {
        Vecscan__V1__UpsertResponse resp = VECSCAN__V1__UPSERT_RESPONSE__INIT;
        resp.seq = ack->last_seq;
        vs_rpc_reply(call, &resp.base);
    } else {
        Vecscan__V1__DeleteResponse resp = VECSCAN__V1__DELETE_RESPONSE__INIT;
        uint64_t *missing = malloc((ack->n ? ack->n : 1) * sizeof *missing);
        if (!missing) {
            vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        } else {
            for (size_t i = 0; i < ack->n; i++)
                if (ack->existed && !ack->existed[i]) missing[resp.n_missing++] = w->ids[i];
            resp.missing = missing;
            resp.seq = ack->last_seq;
            vs_rpc_reply(call, &resp.base);
            free(missing);
        }
    }
    free(w);
}

static void on_upsert(vs_rpc_call *call, const ProtobufCMessage *m, void *ctx)
{
    vs_api *a = ctx;
    const Vecscan__V1__UpsertRequest *r = (const void *)m;
    vs_engine *e = engine_or_fail(a, call);
    if (!e || !collection_ok(call, r->collection)) return;
    if (r->n_items == 0) {
        vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "Upsert: no items");
        return;
    }
    arena ar = {0};
    vs_mutation *mu = amalloc(&ar, r->n_items * sizeof *mu);
    write_ctx *w = malloc(sizeof *w);
    if (!mu || !w) {
        free(w);
        afree(&ar);
        vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    *w = (write_ctx){.call = call};
    if (to_mutations(a, call, &ar, r->items, r->n_items, r->patch ? VS_MUT_PATCH : VS_MUT_UPSERT, NULL, 0, mu)) {
        vs_status st;
        if (vs_engine_write(e, r->collection, mu, r->n_items, write_done, w, &st) == VS_OK) w = NULL;
        else fail_st(call, &st);
    }
    free(w);
    afree(&ar);
}

static void on_delete(vs_rpc_call *call, const ProtobufCMessage *m, void *ctx)
{
    vs_api *a = ctx;
    const Vecscan__V1__DeleteRequest *r = (const void *)m;
    vs_engine *e = engine_or_fail(a, call);
    if (!e || !collection_ok(call, r->collection)) return;
    if (r->n_ids == 0) {
        vs_rpc_finish(call, VS_GRPC_INVALID_ARGUMENT, "Delete: no ids");
        return;
    }
    vs_mutation *mu = calloc(r->n_ids, sizeof *mu);
    write_ctx *w = malloc(sizeof *w);
    if (!mu || !w) {
        free(mu);
        free(w);
        vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < r->n_ids; i++) mu[i] = (vs_mutation){.op = VS_MUT_DELETE, .id = r->ids[i]};
    *w = (write_ctx){.call = call, .ids = r->ids, .del = true};
    vs_status st;
    if (vs_engine_write(e, r->collection, mu, r->n_ids, write_done, w, &st) != VS_OK) {
        free(w);
        fail_st(call, &st);
    }
    free(mu);
}

/* ===== StreamUpdates ===== */

/*
 * One ack per mutation, in the order received. Acks come back from the writer thread, errors
 * found at once from the loop thread: each mutation takes a slot in a FIFO, and whoever fills the
 * slot at the head sends every filled slot from there, under the stream's lock. The call ends
 * when the client has half-closed (or the stream is gone) and no slot is left.
 */
typedef struct ack_slot {
    struct ack_slot *next;
    bool filled;
    bool del; /* OP_DELETE: the ack says whether the id was absent */
    uint64_t seq, tag;
    int32_t code;
    bool absent;
    char msg[VS_STATUS_MSG_LEN];
} ack_slot;

typedef struct upd_stream {
    pthread_mutex_t mu;
    ack_slot *head, **tail;
    bool half_closed, cancelled, finished;
    vs_rpc_call *call;
    vs_api *api;
} upd_stream;

typedef struct upd_pending {
    upd_stream *s;
    ack_slot *slot;
} upd_pending;

/* Sends the acks ready at the head; finishes when everything is answered. Under s->mu. */
static void upd_flush(upd_stream *s)
{
    uint32_t released = 0;
    while (s->head && s->head->filled) {
        ack_slot *a = s->head;
        if (!s->cancelled) {
            Vecscan__V1__MutationAck ack = VECSCAN__V1__MUTATION_ACK__INIT;
            ack.seq = a->seq;
            ack.tag = a->tag;
            ack.code = a->code;
            ack.message = a->msg;
            ack.absent = a->absent;
            vs_rpc_send(s->call, &ack.base);
        }
        released++;
        s->head = a->next;
        if (!s->head) s->tail = &s->head;
        free(a);
    }
    if (released) vs_rpc_release(s->call, released);
    if (!s->head && (s->half_closed || s->cancelled) && !s->finished) {
        s->finished = true;
        vs_rpc_finish(s->call, VS_GRPC_OK, NULL);
    }
}

static void upd_done(void *ctx, const vs_write_ack *ack)
{
    upd_pending *p = ctx;
    upd_stream *s = p->s;
    pthread_mutex_lock(&s->mu);
    ack_slot *a = p->slot;
    a->filled = true;
    a->code = ack->code == VS_OK ? 0 : (int32_t)vs_api_code(ack->code, ack->msg);
    a->seq = ack->code == VS_OK ? ack->first_seq : 0;
    a->absent = a->del && ack->code == VS_OK && ack->existed && !ack->existed[0];
    if (ack->code != VS_OK) snprintf(a->msg, sizeof a->msg, "%s", ack->msg);
    upd_flush(s);
    pthread_mutex_unlock(&s->mu);
    free(p);
}

static void upd_start(vs_rpc_call *call, void *ctx)
{
    upd_stream *s = calloc(1, sizeof *s);
    if (s) {
        pthread_mutex_init(&s->mu, NULL);
        s->tail = &s->head;
        s->call = call;
        s->api = ctx;
    }
    vs_rpc_set_user(call, s);
}

static void upd_message(vs_rpc_call *call, ProtobufCMessage *m, void *ctx)
{
    vs_api *a = ctx;
    upd_stream *s = vs_rpc_user(call);
    Vecscan__V1__Mutation *mut = (Vecscan__V1__Mutation *)m;
    ack_slot *slot = calloc(1, sizeof *slot);
    if (!s || !slot) {
        free(slot);
        protobuf_c_message_free_unpacked(m, NULL);
        if (s) {
            pthread_mutex_lock(&s->mu);
            if (!s->finished) {
                s->finished = true;
                vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            }
            pthread_mutex_unlock(&s->mu);
        } else {
            vs_rpc_release(call, 1);
        }
        return;
    }
    slot->tag = mut->tag;
    slot->del = mut->op == VECSCAN__V1__OP__OP_DELETE;
    pthread_mutex_lock(&s->mu);
    *s->tail = slot;
    s->tail = &slot->next;
    pthread_mutex_unlock(&s->mu);

    /* Everything below fills the slot at once on error, or hands it to the writer. */
    vs_status st;
    vs_status_clear(&st);
    vs_engine *e = atomic_load(&a->engine);
    arena ar = {0};
    vs_mutation mu;
    vs_mutation_op op = mut->op == VECSCAN__V1__OP__OP_PATCH    ? VS_MUT_PATCH
                        : mut->op == VECSCAN__V1__OP__OP_DELETE ? VS_MUT_DELETE
                                                                : VS_MUT_UPSERT;
    if (!e) {
        vs_status_set(&st, VS_ERR_UNAVAILABLE, "the daemon is recovering its data");
    } else if (!mut->collection || !*mut->collection) {
        vs_status_set(&st, VS_ERR_INVALID_ARGUMENT, "collection: a name is required");
    } else if ((unsigned)mut->op > VECSCAN__V1__OP__OP_DELETE) {
        vs_status_set(&st, VS_ERR_INVALID_ARGUMENT, "unknown op %d", (int)mut->op);
    } else if (!mut->item) {
        vs_status_set(&st, VS_ERR_INVALID_ARGUMENT, "item is required");
    } else {
        /* to_mutations reports through a call; use a local check instead for per-mutation acks. */
        Vecscan__V1__Item *items[1] = {mut->item};
        mu = (vs_mutation){.op = op, .id = mut->item->id};
        if (op != VS_MUT_DELETE) {
            size_t nv = mut->item->n_vectors, na = mut->item->n_attributes;
            vs_vector_in *v = amalloc(&ar, (nv ? nv : 1) * sizeof *v);
            vs_attr_in *at = amalloc(&ar, (na ? na : 1) * sizeof *at);
            if (!v || !at) vs_status_set(&st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
            for (size_t k = 0; st.code == VS_OK && k < nv; k++) {
                const Vecscan__V1__Vector *x = items[0]->vectors[k];
                if (x->n_values > a->lim.max_dim)
                    vs_status_set(&st, VS_ERR_INVALID_ARGUMENT, "vector '%s' has %zu values, above --max-dim %u",
                                  x->field, x->n_values, a->lim.max_dim);
                v[k] = (vs_vector_in){.field = x->field, .values = x->values, .dim = (uint32_t)x->n_values};
            }
            for (size_t k = 0; st.code == VS_OK && k < na; k++) {
                const Vecscan__V1__Attribute *x = items[0]->attributes[k];
                at[k].field = x->name;
                if (x->value_case == VECSCAN__V1__ATTRIBUTE__VALUE_INT_VALUE) {
                    at[k].type = VS_ATTR_INT;
                    at[k].int_value = x->int_value;
                } else if (x->value_case == VECSCAN__V1__ATTRIBUTE__VALUE_TAGS) {
                    size_t nt = x->tags->n_values;
                    vs_attr_str *t = amalloc(&ar, (nt ? nt : 1) * sizeof *t);
                    if (!t) {
                        vs_status_set(&st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
                        break;
                    }
                    for (size_t q = 0; q < nt; q++) t[q] = (vs_attr_str){x->tags->values[q], strlen(x->tags->values[q])};
                    at[k].type = VS_ATTR_TAG;
                    at[k].tags = t;
                    at[k].n_tags = (uint32_t)nt;
                } else {
                    vs_status_set(&st, VS_ERR_INVALID_ARGUMENT, "attribute '%s' has neither tags nor int_value", x->name);
                }
            }
            mu.vectors = v;
            mu.n_vectors = (uint32_t)nv;
            mu.attrs = at;
            mu.n_attrs = (uint32_t)na;
            if (op == VS_MUT_PATCH) {
                mu.clear = (const char *const *)mut->clear;
                mu.n_clear = (uint32_t)mut->n_clear;
            }
        }
        if (st.code == VS_OK) {
            upd_pending *p = malloc(sizeof *p);
            if (!p) {
                vs_status_set(&st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
            } else {
                *p = (upd_pending){s, slot};
                if (vs_engine_write(e, mut->collection, &mu, 1, upd_done, p, &st) != VS_OK) free(p);
            }
        }
    }
    afree(&ar);
    protobuf_c_message_free_unpacked(m, NULL);
    if (st.code != VS_OK) {
        pthread_mutex_lock(&s->mu);
        slot->filled = true;
        slot->code = (int32_t)vs_api_code(st.code, st.msg);
        snprintf(slot->msg, sizeof slot->msg, "%s", st.msg);
        upd_flush(s);
        pthread_mutex_unlock(&s->mu);
    }
}

static void upd_half_close(vs_rpc_call *call, void *ctx)
{
    upd_stream *s = vs_rpc_user(call);
    if (!s) {
        vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->half_closed = true;
    upd_flush(s);
    pthread_mutex_unlock(&s->mu);
}

static void upd_cancel(vs_rpc_call *call, void *ctx)
{
    upd_stream *s = vs_rpc_user(call);
    if (!s) {
        vs_rpc_finish(call, VS_GRPC_CANCELLED, NULL);
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->cancelled = true;
    upd_flush(s);
    pthread_mutex_unlock(&s->mu);
}

static void upd_free(vs_rpc_call *call, void *user, void *ctx)
{
    upd_stream *s = user;
    if (!s) return;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ===== Metrics ===== */

static void collect(vs_metrics *m, void *ctx)
{
    vs_api *a = ctx;
    vs_engine *e = atomic_load(&a->engine);
    if (!e) return;
    vs_engine_stats s;
    vs_engine_stats_get(e, &s);
#define G(name, help, v) vs_metrics_set(vs_metrics_child(vs_metrics_family(m, name, help, VS_METRICS_GAUGE, "", NULL, 0)), (double)(v))
#define C(name, help, v) vs_metrics_set(vs_metrics_child(vs_metrics_family(m, name, help, VS_METRICS_COUNTER, "", NULL, 0)), (double)(v))
    G("vecscan_applied_seq", "Highest seq applied to indexes (visible to searches)", s.applied_seq);
    G("vecscan_last_acked_seq", "Highest seq acknowledged to a writer", s.last_acked_seq);
    G("vecscan_write_queue_depth", "Mutations queued for the writer", s.write_queue_depth);
    G("vecscan_write_queue_capacity", "Capacity of the writer queue", s.write_queue_cap);
    G("vecscan_search_queue_depth", "Searches queued for the executor", s.search_queue_depth);
    G("vecscan_search_queue_capacity", "Capacity of the search queue", s.search_queue_cap);
    C("vecscan_wal_commits_total", "RocksDB WriteBatches written (group commits)", s.commits);
    C("vecscan_wal_committed_mutations_total", "Mutations in those commits (/ commits = group-commit size)", s.committed_mutations);
    C("vecscan_wal_fsyncs_total", "fsyncs of the write-ahead log", s.fsyncs);
    C("vecscan_wal_fsync_seconds_total", "Time spent in those fsyncs", s.fsync_seconds_sum);
    G("vecscan_wal_fsync_seconds_max", "Slowest fsync so far", s.fsync_seconds_max);
    C("vecscan_executor_batches_total", "Search batches run by the executor", s.batches);
    C("vecscan_executor_batched_searches_total", "Searches in those batches (/ batches = batch size)", s.batched_searches);
    C("vecscan_applied_mutations_total", "Mutations applied to indexes", s.applied_mutations);
    C("vecscan_snapshots_total", "Snapshots written", s.snapshots_written);
    G("vecscan_last_snapshot_seq", "Seq of the newest snapshot", s.last_snapshot_seq);
    G("vecscan_collections", "Collections", s.collections);
    G("vecscan_writes_stopped", "1 while writes are refused (disk full, I/O error, read-only)", s.writes_stopped);
    G("vecscan_read_only", "1 after a failed fsync, until restart", s.read_only);
#undef G
#undef C
    if (s.device_ordinal >= 0) { /* the GPU the collections live on */
        char dev[24];
        snprintf(dev, sizeof dev, "cuda:%d", s.device_ordinal);
        vs_metrics_set(vs_metrics_child(vs_metrics_family(m, "vecscan_device_memory_free_bytes", "Free memory of the GPU, as its driver reports it", VS_METRICS_GAUGE, "device", NULL, 0), dev), (double)s.device_free);
        vs_metrics_set(vs_metrics_child(vs_metrics_family(m, "vecscan_device_memory_total_bytes", "Memory of the GPU", VS_METRICS_GAUGE, "device", NULL, 0), dev), (double)s.device_total);
    }
    char **names;
    size_t n;
    vs_status st;
    if (vs_engine_list(e, &names, &n, &st) != VS_OK) return;
    vs_metrics_fam *rows = vs_metrics_family(m, "vecscan_collection_rows", "Live items per collection", VS_METRICS_GAUGE, "collection", NULL, 0);
    vs_metrics_fam *bytes = vs_metrics_family(m, "vecscan_field_bytes", "Memory per vector field", VS_METRICS_GAUGE, "collection,field", NULL, 0);
    vs_metrics_fam *dbytes = s.device_ordinal >= 0 ? vs_metrics_family(m, "vecscan_collection_device_bytes", "GPU memory per collection: rows, ids, bitmaps and scan buffers", VS_METRICS_GAUGE, "collection", NULL, 0) : NULL;
    for (size_t i = 0; i < n; i++) {
        vs_collection_info ci;
        memset(&ci, 0, sizeof ci);
        if (vs_engine_describe(e, names[i], &ci, &st) != VS_OK) continue;
        vs_metrics_set(vs_metrics_child(rows, names[i]), (double)ci.count);
        for (uint32_t f = 0; f < ci.n_fields; f++)
            vs_metrics_set(vs_metrics_child(bytes, names[i], ci.fields[f].name), (double)ci.field_bytes[f]);
        if (dbytes)
            vs_metrics_set(vs_metrics_child(dbytes, names[i]), (double)ci.device_bytes);
        vs_collection_info_clear(&ci);
    }
    vs_engine_names_free(names, n);
}

/* ===== Registration ===== */

#define BLOCKING(fn)                                                                  \
    static void on_##fn(vs_rpc_call *call, const ProtobufCMessage *m, void *ctx)      \
    {                                                                                 \
        vs_api *a = ctx;                                                              \
        if (!engine_or_fail(a, call)) return;                                         \
        run_blocking(a, do_##fn, call, m);                                            \
    }
BLOCKING(create)
BLOCKING(drop)
BLOCKING(list)
BLOCKING(describe)
BLOCKING(stats)
BLOCKING(snapshot)
BLOCKING(get)

vs_err vs_api_create(vs_rpc_server *s, const vs_api_limits *lim, vs_metrics *metrics, vs_api **out, vs_status *st)
{
    vs_api *a = calloc(1, sizeof *a);
    if (!a) return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    if (lim) a->lim = *lim;
    vs_api_limits *L = &a->lim;
    if (!L->max_k) L->max_k = VS_MAX_K;
    if (!L->max_batch_queries) L->max_batch_queries = 1024;
    if (!L->max_batch_results) L->max_batch_results = 1u << 20;
    if (!L->max_terms || L->max_terms > VS_MAX_TERMS) L->max_terms = VS_MAX_TERMS;
    if (!L->max_term_vectors || L->max_term_vectors > VS_MAX_TERM_VECTORS) L->max_term_vectors = VS_MAX_TERM_VECTORS;
    if (!L->max_dim || L->max_dim > VS_MAX_DIM) L->max_dim = VS_MAX_DIM;
    if (!L->max_filter_bytes) L->max_filter_bytes = 16384;
    if (!L->max_filter_depth) L->max_filter_depth = 64;
    if (!L->workers) L->workers = 2;
    if (!L->worker_queue) L->worker_queue = 1024;
    snprintf(a->device, sizeof a->device, "%s", lim && lim->device ? lim->device : "cpu");
    L->device = a->device;
    atomic_init(&a->engine, NULL);
    a->start_ns = vs_rpc_now_ns();
    a->metrics = metrics;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->tail = &a->head;
    a->th = calloc(L->workers, sizeof *a->th);
    if (!a->th) {
        free(a);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (; a->n_th < L->workers; a->n_th++) {
        if (pthread_create(&a->th[a->n_th], NULL, worker_main, a) != 0) {
            vs_api_stop(a);
            vs_api_destroy(a);
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cannot start API worker threads");
        }
    }
#define P "/vecscan.v1.VecScan/"
#define UNARY(name, fn, req, resp)                                                                  \
    {.path = P name, .kind = VS_RPC_UNARY, .request = &vecscan__v1__##req##__descriptor,            \
     .response = &vecscan__v1__##resp##__descriptor, .on_request = fn, .ctx = a}
    const vs_rpc_method methods[] = {
        UNARY("CreateCollection", on_create, create_collection_request, create_collection_response),
        UNARY("DropCollection", on_drop, drop_collection_request, drop_collection_response),
        UNARY("ListCollections", on_list, list_collections_request, list_collections_response),
        UNARY("DescribeCollection", on_describe, describe_collection_request, describe_collection_response),
        UNARY("Upsert", on_upsert, upsert_request, upsert_response),
        UNARY("Delete", on_delete, delete_request, delete_response),
        UNARY("Get", on_get, get_request, get_response),
        UNARY("Search", on_search, search_request, search_response),
        UNARY("SearchBatch", on_search_batch, search_batch_request, search_batch_response),
        UNARY("Stats", on_stats, stats_request, stats_response),
        UNARY("Snapshot", on_snapshot, snapshot_request, snapshot_response),
        {.path = P "StreamUpdates", .kind = VS_RPC_BIDI, .request = &vecscan__v1__mutation__descriptor,
         .response = &vecscan__v1__mutation_ack__descriptor, .on_start = upd_start, .on_message = upd_message,
         .on_half_close = upd_half_close, .on_cancel = upd_cancel, .on_free = upd_free, .ctx = a},
    };
#undef UNARY
#undef P
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        vs_err err = vs_rpc_server_add(s, &methods[i], st);
        if (err != VS_OK) {
            vs_api_stop(a);
            vs_api_destroy(a);
            return err;
        }
    }
    if (metrics) vs_metrics_add_collector(metrics, collect, a);
    *out = a;
    return VS_OK;
}

void vs_api_set_engine(vs_api *a, vs_engine *e) { atomic_store(&a->engine, e); }

void vs_api_stop(vs_api *a)
{
    if (!a) return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    for (uint32_t i = 0; i < a->n_th; i++) pthread_join(a->th[i], NULL);
    a->n_th = 0;
}

void vs_api_destroy(vs_api *a)
{
    if (!a) return;
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a->th);
    free(a);
}
