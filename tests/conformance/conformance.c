/*
 * conformance.c: the backend conformance suite (see conformance.h).
 *
 * The reference keeps every item's f32 vectors and scores in double precision, straight from the
 * definitions of DESIGN.md section 3: a term scores the max over its vectors; SUM divides by the
 * weights of the terms the item has; MAX takes the best weighted term; INTERLEAVE merges per-term
 * lists by weight. Two flavours of the per-field score:
 *   exact:  the true vectors (normalised for cosine): what f32 storage and any rerank must return;
 *   stored: what the quantized tier estimates (f16 halves, the i8 middle/scale formula with the
 *           quantized query, b1 matching bits), computed here in plain double arithmetic from the
 *           same encodings, so the backend's kernels, tiling, masks and top-k are checked tightly.
 * Results are compared rank by rank: the same count, each score within a tolerance of the
 * reference's score at that rank, every id a legitimate member of the reference top-k (up to ties
 * within the tolerance), no id twice.
 */
#include "conformance.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "quant.h"
#include "testutil.h"

/* ===== The reference model ===== */

typedef struct ref_field {
    float *x;           /* f32 as given (NULL = absent) */
    uint8_t *codes;     /* encoded (of the normalised vector for cosine) */
    vs_row_consts cst;
} ref_field;

typedef struct ref_item {
    uint64_t id;
    bool live;
    ref_field f[VS_MAX_FIELDS];
} ref_item;

typedef struct ref_model {
    uint32_t n_fields;
    vs_field_spec spec[VS_MAX_FIELDS];
    vs_field_layout lay[VS_MAX_FIELDS];
    ref_item *items;
    size_t n, cap;
} ref_model;

typedef struct scored {
    double s;
    uint64_t id;
} scored;

static void ref_init(ref_model *m, const vs_field_spec *spec, uint32_t nf)
{
    memset(m, 0, sizeof *m);
    m->n_fields = nf;
    memcpy(m->spec, spec, nf * sizeof *spec);
    for (uint32_t f = 0; f < nf; f++)
        vs_field_layout_init(&m->lay[f], &spec[f]);
}

static void ref_field_clear(ref_field *rf)
{
    free(rf->x);
    free(rf->codes);
    memset(rf, 0, sizeof *rf);
}

static void ref_free(ref_model *m)
{
    for (size_t i = 0; i < m->n; i++)
        for (uint32_t f = 0; f < m->n_fields; f++)
            ref_field_clear(&m->items[i].f[f]);
    free(m->items);
}

static ref_item *ref_find(ref_model *m, uint64_t id)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->items[i].live && m->items[i].id == id)
            return &m->items[i];
    return NULL;
}

static void ref_set_field(ref_model *m, ref_item *it, uint32_t f, const float *x)
{
    ref_field *rf = &it->f[f];
    ref_field_clear(rf);
    uint32_t d = m->spec[f].dim;
    rf->x = malloc(d * sizeof(float));
    memcpy(rf->x, x, d * sizeof(float));
    float *work = malloc(vs_encode_work_floats(d) * sizeof(float));
    rf->codes = malloc(m->lay[f].code_bytes);
    vs_encode_row(&m->lay[f], x, rf->codes, &rf->cst, work);
    free(work);
}

/* Upsert (patch = false) or patch one item in the model. */
static void ref_write(ref_model *m, const vs_item_vectors *iv, uint32_t clear_mask, bool patch)
{
    ref_item *it = ref_find(m, iv->id);
    if (!it) {
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 256;
            m->items = realloc(m->items, m->cap * sizeof *m->items);
        }
        it = &m->items[m->n++];
        memset(it, 0, sizeof *it);
        it->id = iv->id;
        it->live = true;
    }
    for (uint32_t f = 0; f < m->n_fields; f++) {
        if (iv->vectors[f])
            ref_set_field(m, it, f, iv->vectors[f]);
        else if (!patch || (clear_mask >> f & 1u))
            ref_field_clear(&it->f[f]);
    }
}

static void ref_delete(ref_model *m, uint64_t id)
{
    ref_item *it = ref_find(m, id);
    if (!it)
        return;
    for (uint32_t f = 0; f < m->n_fields; f++)
        ref_field_clear(&it->f[f]);
    it->live = false;
}

/* ===== Reference scoring ===== */

/* q prepared once per term vector: normalised copy, i8 codes, b1 bits. */
typedef struct ref_qvec {
    float *qn;
    int8_t *qc;
    float qscale, qsum;
    int32_t qcsum;
    uint64_t *bits;
} ref_qvec;

static void qvec_prepare(const ref_model *m, uint32_t f, const float *q, ref_qvec *out)
{
    uint32_t d = m->spec[f].dim;
    out->qn = malloc(d * sizeof(float));
    if (m->spec[f].metric == VS_METRIC_COSINE)
        vs_normalize(q, d, out->qn);
    else
        memcpy(out->qn, q, d * sizeof(float));
    out->qc = malloc(d);
    vs_i8_encode_query(out->qn, d, out->qc, &out->qscale, &out->qsum, &out->qcsum);
    out->bits = calloc(m->lay[f].b1_words + 1, sizeof(uint64_t));
    float *work = malloc(vs_b1_rot_len(d) * sizeof(float));
    if (m->spec[f].storage == VS_STORAGE_B1)
        vs_b1_encode(d, out->qn, out->bits, work);
    free(work);
}

static void qvec_free(ref_qvec *q)
{
    free(q->qn);
    free(q->qc);
    free(q->bits);
}

/* Exact score of one vector pair, double precision, from the true values. */
static double exact_pair(const ref_model *m, uint32_t f, const ref_qvec *q, const float *x)
{
    uint32_t d = m->spec[f].dim;
    double xn = 1.0;
    if (m->spec[f].metric == VS_METRIC_COSINE)
        xn = sqrt(vs_norm2(x, d));
    double s = 0;
    for (uint32_t i = 0; i < d; i++) {
        double xv = x[i] / xn;
        if (m->spec[f].metric == VS_METRIC_L2)
            s -= (q->qn[i] - xv) * (q->qn[i] - xv);
        else
            s += q->qn[i] * xv;
    }
    return s;
}

/* Stored-tier estimate of one pair, as the quantized scan defines it. */
static double stored_pair(const ref_model *m, uint32_t f, const ref_qvec *q, const ref_field *rf)
{
    uint32_t d = m->spec[f].dim;
    bool l2 = m->spec[f].metric == VS_METRIC_L2;
    double dot = 0, qn2 = vs_norm2(q->qn, d);
    switch (m->spec[f].storage) {
    case VS_STORAGE_F32:
        for (uint32_t i = 0; i < d; i++)
            dot += (double)q->qn[i] * ((const float *)rf->codes)[i];
        break;
    case VS_STORAGE_F16:
        for (uint32_t i = 0; i < d; i++)
            dot += (double)q->qn[i] * vs_f16_to_f32(((const uint16_t *)rf->codes)[i]);
        dot *= rf->cst.scale;
        break;
    case VS_STORAGE_I8: {
        int64_t idot = 0;
        for (uint32_t i = 0; i < d; i++)
            idot += (int64_t)q->qc[i] * ((const int8_t *)rf->codes)[i];
        dot = (double)rf->cst.middle * q->qsum + (double)rf->cst.scale * q->qscale * (double)idot;
        break;
    }
    case VS_STORAGE_B1: {
        uint32_t words = m->lay[f].b1_words, diff = 0;
        for (uint32_t w = 0; w < words; w++)
            diff += (uint32_t)__builtin_popcountll(((const uint64_t *)rf->codes)[w] ^ q->bits[w]);
        return (double)(words * 64 - diff);
    }
    }
    return l2 ? -(qn2 - 2 * dot + rf->cst.norm2) : dot;
}

typedef struct ref_query {
    const vs_query *q;
    ref_qvec *qv[VS_MAX_TERMS]; /* per term, n_vectors */
} ref_query;

/* Combined score of item it for terms [t0, t1) of query rq; false when it has none of them. */
static bool ref_combined(const ref_model *m, const ref_query *rq, uint32_t t0, uint32_t t1, bool single,
                         const ref_item *it, bool exact, double *out)
{
    double num = 0, den = 0, best = -INFINITY;
    bool any = false;
    for (uint32_t t = t0; t < t1; t++) {
        const vs_term *term = &rq->q->terms[t];
        const ref_field *rf = &it->f[term->field];
        if (!rf->x)
            continue;
        double ts = -INFINITY;
        for (uint32_t v = 0; v < term->n_vectors; v++) {
            double s = exact ? exact_pair(m, term->field, &rq->qv[t][v], rf->x)
                             : stored_pair(m, term->field, &rq->qv[t][v], rf);
            ts = s > ts ? s : ts;
        }
        double w = single ? 1.0 : term->weight;
        num += w * ts;
        den += w;
        best = w * ts > best ? w * ts : best;
        any = true;
    }
    if (any)
        *out = (!single && rq->q->combine == VS_COMBINE_MAX) ? best : num / den;
    return any;
}

static int scored_cmp(const void *pa, const void *pb)
{
    const scored *a = pa, *b = pb;
    if (a->s != b->s)
        return a->s > b->s ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Allowed-set membership for the reference (plain, no index help). */
static bool ref_allowed(const vs_index *ix, const vs_slotset *a, uint64_t id)
{
    if (!a || a->kind == VS_SLOTSET_ALL)
        return true;
    uint32_t s;
    if (!vs_index_lookup(ix, id, &s))
        return false;
    if (a->kind == VS_SLOTSET_BITMAP)
        return s < a->n_bits && (a->words[s / 64] >> (s % 64) & 1u);
    for (uint64_t i = 0; i < a->count; i++)
        if (a->slots[i] == s)
            return true;
    return false;
}

/* The reference's final ranking for terms [t0, t1) (one list; INTERLEAVE calls it per term). */
static size_t ref_rank(const ref_model *m, const vs_index *ix, const ref_query *rq, uint32_t t0,
                       uint32_t t1, bool single, uint32_t k, uint32_t rf, scored *out)
{
    size_t n = 0;
    bool rerank_copy = false, b1 = false;
    for (uint32_t t = t0; t < t1; t++) {
        rerank_copy |= m->spec[rq->q->terms[t].field].rerank;
        b1 |= m->spec[rq->q->terms[t].field].storage == VS_STORAGE_B1;
    }
    /* the library decides the candidate count over the whole query, INTERLEAVE terms together */
    bool q_copy = false, q_b1 = false;
    for (uint32_t t = 0; t < rq->q->n_terms; t++) {
        q_copy |= m->spec[rq->q->terms[t].field].rerank;
        q_b1 |= m->spec[rq->q->terms[t].field].storage == VS_STORAGE_B1;
    }
    uint32_t rfe = rf ? rf : (q_b1 ? 10 : 1);
    bool rerank = q_copy && (rfe > 1 || q_b1);
    (void)rerank_copy;
    (void)b1;
    size_t live = 0;
    for (size_t i = 0; i < m->n; i++)
        live += m->items[i].live;
    for (size_t i = 0; i < m->n; i++) {
        const ref_item *it = &m->items[i];
        double s;
        if (!it->live || !ref_allowed(ix, rq->q->allowed, it->id))
            continue;
        if (ref_combined(m, rq, t0, t1, single, it, false, &s))
            out[n++] = (scored){s, it->id};
    }
    qsort(out, n, sizeof *out, scored_cmp);
    if (rerank) {
        uint64_t kc = (uint64_t)k * rfe;
        if (kc > live)
            kc = live > k ? live : k;
        if (n > kc)
            n = kc;
        for (size_t i = 0; i < n; i++) {
            const ref_item *it = ref_find((ref_model *)m, out[i].id);
            ref_combined(m, rq, t0, t1, single, it, true, &out[i].s);
        }
        qsort(out, n, sizeof *out, scored_cmp);
    }
    return n;
}

/* ===== Comparison ===== */

typedef struct tol {
    double abs, rel;
} tol;

/* Checks hits[0..count) against the reference ranking ref[0..nref) for top k. */
static void compare(const char *what, const vs_hit *hits, uint32_t count, const scored *ref, size_t nref,
                    uint32_t k, tol t)
{
    uint32_t want = (uint32_t)(nref < k ? nref : k);
    CHECKF(count == want, "%s: %u results, expected %u", what, count, want);
    if (count != want || want == 0)
        return;
    double kth = ref[want - 1].s;
    int bad = 0;
    for (uint32_t i = 0; i < count && bad < 3; i++) {
        double tl = t.abs + t.rel * fabs(ref[i].s);
        if (fabs(hits[i].score - ref[i].s) > tl) {
            CHECKF(0, "%s: rank %u score %.7g, reference %.7g (id %llu vs %llu)", what, i, hits[i].score,
                   ref[i].s, (unsigned long long)hits[i].id, (unsigned long long)ref[i].id);
            bad++;
        }
        const scored *own = NULL;
        for (size_t j = 0; j < nref && !own; j++)
            if (ref[j].id == hits[i].id)
                own = &ref[j];
        if (!own || own->s < kth - (t.abs + t.rel * fabs(kth))) {
            CHECKF(0, "%s: rank %u id %llu is not in the reference top %u", what, i,
                   (unsigned long long)hits[i].id, want);
            bad++;
        }
        for (uint32_t j = 0; j < i; j++)
            if (hits[j].id == hits[i].id) {
                CHECKF(0, "%s: id %llu returned twice", what, (unsigned long long)hits[i].id);
                bad++;
            }
    }
}

/* Runs query q on the index and the reference and compares. */
static void check_query(const ref_model *m, vs_index *ix, const vs_query *q, uint32_t k, uint32_t rf,
                        tol t, const char *what)
{
    vs_hit *hits = malloc((size_t)k * sizeof *hits);
    uint32_t count = 0;
    vs_status st;
    vs_search_params p = {.k = k, .rerank_factor = rf};
    vs_err e = vs_index_search(ix, q, 1, &p, hits, &count, &st);
    CHECKF(e == VS_OK, "%s: search failed: %s", what, st.msg);
    ref_query rq = {.q = q};
    for (uint32_t ti = 0; ti < q->n_terms; ti++) {
        rq.qv[ti] = calloc(q->terms[ti].n_vectors, sizeof(ref_qvec));
        for (uint32_t v = 0; v < q->terms[ti].n_vectors; v++)
            qvec_prepare(m, q->terms[ti].field,
                         q->terms[ti].vectors + (size_t)v * m->spec[q->terms[ti].field].dim, &rq.qv[ti][v]);
    }
    scored *ref = malloc((m->n + 1) * sizeof *ref);
    if (e == VS_OK && q->combine != VS_COMBINE_INTERLEAVE) {
        size_t nref = ref_rank(m, ix, &rq, 0, q->n_terms, false, k, rf, ref);
        compare(what, hits, count, ref, nref, k, t);
    } else if (e == VS_OK) {
        /* INTERLEAVE: per-term reference lists, merged as DESIGN.md says; the merge is exact given
         * the lists, so compare ids at each rank where the lists have no near-ties. */
        scored *lists[VS_MAX_TERMS];
        size_t lens[VS_MAX_TERMS], pos[VS_MAX_TERMS] = {0};
        uint32_t order[VS_MAX_TERMS];
        for (uint32_t ti = 0; ti < q->n_terms; ti++) {
            lists[ti] = malloc((m->n + 1) * sizeof(scored));
            lens[ti] = ref_rank(m, ix, &rq, ti, ti + 1, true, k, rf, lists[ti]);
            if (lens[ti] > k)
                lens[ti] = k;
            order[ti] = ti;
        }
        for (uint32_t i = 1; i < q->n_terms; i++)
            for (uint32_t j = i; j > 0 && q->terms[order[j]].weight > q->terms[order[j - 1]].weight; j--) {
                uint32_t x = order[j];
                order[j] = order[j - 1];
                order[j - 1] = x;
            }
        size_t n = 0;
        bool progress = true;
        while (n < k && progress) {
            progress = false;
            for (uint32_t oi = 0; oi < q->n_terms && n < k; oi++) {
                uint32_t ti = order[oi];
                while (pos[ti] < lens[ti]) {
                    scored c = lists[ti][pos[ti]++];
                    bool taken = false;
                    for (size_t j = 0; j < n; j++)
                        taken |= ref[j].id == c.id;
                    if (!taken) {
                        ref[n++] = (scored){c.s * q->terms[ti].weight, c.id};
                        progress = true;
                        break;
                    }
                }
            }
        }
        CHECKF(count == n, "%s: %u results, reference %zu", what, count, n);
        for (uint32_t i = 0; i < count && i < n; i++)
            CHECKF(fabs(hits[i].score - ref[i].s) <= t.abs + t.rel * fabs(ref[i].s),
                   "%s: rank %u score %.7g, reference %.7g", what, i, hits[i].score, ref[i].s);
        for (uint32_t ti = 0; ti < q->n_terms; ti++)
            free(lists[ti]);
    }
    for (uint32_t ti = 0; ti < q->n_terms; ti++) {
        for (uint32_t v = 0; v < q->terms[ti].n_vectors; v++)
            qvec_free(&rq.qv[ti][v]);
        free(rq.qv[ti]);
    }
    free(ref);
    free(hits);
}

/* Runs queries q[0 .. nq) as one batch and compares each with the reference (SUM or MAX). */
static void check_batch(const ref_model *m, vs_index *ix, const vs_query *q, uint32_t nq, uint32_t k, tol t,
                        const char *what)
{
    vs_hit *hits = malloc((size_t)nq * k * sizeof *hits);
    uint32_t *counts = calloc(nq, sizeof *counts);
    scored *ref = malloc((m->n + 1) * sizeof *ref);
    vs_status st;
    vs_search_params p = {.k = k};
    vs_err e = vs_index_search(ix, q, nq, &p, hits, counts, &st);
    CHECKF(e == VS_OK, "%s: search failed: %s", what, st.msg);
    for (uint32_t i = 0; i < nq && e == VS_OK; i++) {
        ref_query rq = {.q = &q[i]};
        for (uint32_t ti = 0; ti < q[i].n_terms; ti++) {
            rq.qv[ti] = calloc(q[i].terms[ti].n_vectors, sizeof(ref_qvec));
            for (uint32_t v = 0; v < q[i].terms[ti].n_vectors; v++)
                qvec_prepare(m, q[i].terms[ti].field,
                             q[i].terms[ti].vectors + (size_t)v * m->spec[q[i].terms[ti].field].dim,
                             &rq.qv[ti][v]);
        }
        char w[200];
        snprintf(w, sizeof w, "%s, query %u", what, i);
        size_t nref = ref_rank(m, ix, &rq, 0, q[i].n_terms, false, k, 0, ref);
        compare(w, hits + (size_t)i * k, counts[i], ref, nref, k, t);
        for (uint32_t ti = 0; ti < q[i].n_terms; ti++) {
            for (uint32_t v = 0; v < q[i].terms[ti].n_vectors; v++)
                qvec_free(&rq.qv[ti][v]);
            free(rq.qv[ti]);
        }
    }
    free(ref);
    free(counts);
    free(hits);
}

/* ===== Data ===== */

static void gauss_fill(vs_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)vs_rng_gauss(r);
}

/* Score tolerance for a field: float accumulation over dim products, f16/i8 query rounding. */
static tol field_tol(const vs_field_spec *sp, bool reranked)
{
    double d = sp->dim;
    tol t = {1e-5 * (d + 8), 2e-5};
    if (reranked)
        return (tol){1e-4, 1e-5};
    if (sp->storage == VS_STORAGE_B1)
        return (tol){0, 0}; /* bit counts are integers */
    (void)d;
    return t;
}

/* ===== Cases ===== */

/* One field, every storage x metric, awkward dims and counts, k small to above N, filters. */
static void case_single_field(vs_device dev, vs_rng *r, int quick)
{
    static const uint32_t dims[] = {1, 7, 129, 784};
    static const uint32_t ns[] = {1500, 401};
    for (int si = 0; si < 4; si++)
        for (int mi = 0; mi < 3; mi++)
            for (int di = 0; di < 4; di++) {
                if (quick && dims[di] == 784)
                    continue;
                vs_field_spec sp = {.dim = dims[di], .metric = (vs_metric)mi, .storage = (vs_storage)si};
                strcpy(sp.name, "v");
                sp.rerank = sp.storage == VS_STORAGE_B1 || (sp.storage == VS_STORAGE_I8 && di % 2);
                uint32_t n = ns[(si + mi + di) % 2];
                vs_index_options o = {.device = dev, .chunk_rows = 512, .n_threads = 2};
                vs_index *ix;
                vs_status st;
                if (vs_index_create(&sp, 1, &o, &ix, &st) != VS_OK) {
                    CHECKF(0, "create: %s", st.msg);
                    continue;
                }
                ref_model m;
                ref_init(&m, &sp, 1);
                float *x = malloc((size_t)n * sp.dim * sizeof(float));
                gauss_fill(r, x, (size_t)n * sp.dim);
                vs_item_vectors *items = calloc(n, sizeof *items);
                for (uint32_t i = 0; i < n; i++) {
                    items[i].id = 1000 + 7 * (uint64_t)i; /* not equal to slots */
                    items[i].vectors[0] = x + (size_t)i * sp.dim;
                    ref_write(&m, &items[i], 0, false);
                }
                CHECK(vs_index_upsert(ix, items, n, NULL, &st) == VS_OK);
                CHECK(vs_index_count(ix) == n);
                /* a bitmap filter passing ~30%, and a list of ~2% */
                uint32_t lim = vs_index_slot_limit(ix);
                uint64_t *words = calloc((lim + 63) / 64 + 1, 8);
                uint32_t *list = malloc(lim * sizeof *list);
                uint64_t nbits = 0, nlist = 0;
                for (uint32_t s = 0; s < lim; s++) {
                    if (vs_rng_uniform(r) < 0.3) {
                        words[s / 64] |= 1ull << (s % 64);
                        nbits++;
                    }
                    if (vs_rng_uniform(r) < 0.02)
                        list[nlist++] = s;
                }
                vs_slotset bm = {.kind = VS_SLOTSET_BITMAP, .words = words, .n_bits = lim, .count = nbits};
                vs_slotset ls = {.kind = VS_SLOTSET_LIST, .slots = list, .count = nlist};
                const vs_slotset *filters[] = {NULL, &bm, &ls};
                static const uint32_t ks[] = {1, 10, 1000, 0};
                float *qv = malloc(sp.dim * sizeof(float));
                for (int ki = 0; ki < 4; ki++)
                    for (int fi = 0; fi < 3; fi++) {
                        uint32_t k = ks[ki] ? ks[ki] : n + 5;
                        gauss_fill(r, qv, sp.dim);
                        vs_term term = {.field = 0, .n_vectors = 1, .vectors = qv, .weight = 1};
                        vs_query q = {.terms = &term, .n_terms = 1, .combine = VS_COMBINE_SUM,
                                      .allowed = filters[fi]};
                        uint32_t rf = sp.rerank && sp.storage == VS_STORAGE_I8 ? 4 : 0;
                        bool reranked = sp.storage == VS_STORAGE_B1 || rf > 1;
                        char what[160];
                        snprintf(what, sizeof what, "%s %s d=%u n=%u k=%u filter=%d on %s",
                                 vs_storage_name(sp.storage), vs_metric_name(sp.metric), sp.dim, n, k, fi,
                                 vs_index_backend_name(ix));
                        check_query(&m, ix, &q, k, rf, field_tol(&sp, reranked), what);
                    }
                free(qv);
                free(words);
                free(list);
                free(items);
                free(x);
                ref_free(&m);
                vs_index_destroy(ix);
            }
}

/* Batches that mix filters the way a server sees them: unfiltered queries, each query its own
 * sparse list or bitmap, queries sharing a dense or a sparse bitmap, and a batch of only own
 * filters. A backend may route each differently (the CPU one folds, gathers, or scores a query
 * only on its allowed rows of each tile); every route must give the reference answer. */
static void case_batch_filters(vs_device dev, vs_rng *r)
{
    static const vs_field_spec specs[] = {
        {.name = "v", .dim = 129, .metric = VS_METRIC_IP, .storage = VS_STORAGE_I8},
        {.name = "v", .dim = 7, .metric = VS_METRIC_COSINE, .storage = VS_STORAGE_F32},
    };
    enum { NQ = 64, N_OWN = 48, N_SETS = N_OWN + 2 };
    for (int si = 0; si < 2; si++) {
        const vs_field_spec *sp = &specs[si];
        uint32_t n = 1500;
        vs_index_options o = {.device = dev, .chunk_rows = 512, .n_threads = 2};
        vs_index *ix;
        vs_status st;
        if (vs_index_create(sp, 1, &o, &ix, &st) != VS_OK) {
            CHECKF(0, "create: %s", st.msg);
            continue;
        }
        ref_model m;
        ref_init(&m, sp, 1);
        float *x = malloc((size_t)n * sp->dim * sizeof(float));
        gauss_fill(r, x, (size_t)n * sp->dim);
        vs_item_vectors *items = calloc(n, sizeof *items);
        for (uint32_t i = 0; i < n; i++) {
            items[i].id = 5 + 3 * (uint64_t)i;
            items[i].vectors[0] = x + (size_t)i * sp->dim;
            ref_write(&m, &items[i], 0, false);
        }
        CHECK(vs_index_upsert(ix, items, n, NULL, &st) == VS_OK);
        uint32_t lim = vs_index_slot_limit(ix), words_per = (lim + 63) / 64;
        /* sets 0..23: own lists of ~2%; 24..47: own bitmaps of ~2%; 48: a shared bitmap of ~30%;
         * 49: a shared bitmap of ~2% */
        vs_slotset sets[N_SETS];
        uint64_t *words = calloc((size_t)N_SETS * words_per, 8);
        uint32_t *lists = malloc((size_t)24 * lim * sizeof *lists);
        for (int k = 0; k < N_SETS; k++) {
            double pass = k == N_OWN ? 0.3 : 0.02;
            uint64_t *w = words + (size_t)k * words_per;
            uint32_t *l = lists + (size_t)(k < 24 ? k : 0) * lim;
            uint64_t c = 0;
            for (uint32_t s2 = 0; s2 < lim; s2++) {
                if (vs_rng_uniform(r) >= pass)
                    continue;
                if (k < 24)
                    l[c] = s2;
                else
                    w[s2 / 64] |= 1ull << (s2 % 64);
                c++;
            }
            sets[k] = k < 24 ? (vs_slotset){.kind = VS_SLOTSET_LIST, .slots = l, .count = c}
                             : (vs_slotset){.kind = VS_SLOTSET_BITMAP, .words = w, .n_bits = lim, .count = c};
        }
        float *qv = malloc((size_t)NQ * sp->dim * sizeof(float));
        gauss_fill(r, qv, (size_t)NQ * sp->dim);
        vs_term terms[NQ];
        vs_query q[NQ];
        for (int mix = 0; mix < 2; mix++) {
            uint32_t nq = mix == 0 ? NQ : N_OWN;
            for (uint32_t i = 0; i < nq; i++) {
                const vs_slotset *a;
                if (mix == 1)
                    a = &sets[i]; /* every query its own filter, nothing else */
                else
                    a = i < 16 ? NULL : i < 48 ? &sets[i - 16] : i < 56 ? &sets[N_OWN] : &sets[N_OWN + 1];
                terms[i] = (vs_term){.field = 0, .n_vectors = 1, .vectors = qv + (size_t)i * sp->dim, .weight = 1};
                q[i] = (vs_query){.terms = &terms[i], .n_terms = 1, .combine = VS_COMBINE_SUM, .allowed = a};
            }
            for (uint32_t k = 1; k <= 100; k *= 10) {
                char what[160];
                snprintf(what, sizeof what, "batch filters %s %s mix %d k=%u on %s", vs_storage_name(sp->storage),
                         vs_metric_name(sp->metric), mix, k, vs_index_backend_name(ix));
                check_batch(&m, ix, q, nq, k, field_tol(sp, false), what);
            }
        }
        /* a batch larger than any backend's query block (the CPU's passes, the GPU's 1024-query
         * groups and 128-query MMA chunks), with a shared dense filter on every fifth query */
        enum { NBIG = 1100 };
        float *qbig = malloc((size_t)NBIG * sp->dim * sizeof(float));
        vs_term *tbig = malloc(NBIG * sizeof *tbig);
        vs_query *qb = malloc(NBIG * sizeof *qb);
        gauss_fill(r, qbig, (size_t)NBIG * sp->dim);
        for (uint32_t i = 0; i < NBIG; i++) {
            tbig[i] = (vs_term){.field = 0, .n_vectors = 1, .vectors = qbig + (size_t)i * sp->dim, .weight = 1};
            qb[i] = (vs_query){.terms = &tbig[i], .n_terms = 1, .combine = VS_COMBINE_SUM,
                               .allowed = i % 5 == 4 ? &sets[N_OWN] : NULL};
        }
        char what[160];
        snprintf(what, sizeof what, "batch of %u %s %s k=10 on %s", NBIG, vs_storage_name(sp->storage),
                 vs_metric_name(sp->metric), vs_index_backend_name(ix));
        check_batch(&m, ix, qb, NBIG, 10, field_tol(sp, false), what);
        free(qbig);
        free(tbig);
        free(qb);
        free(qv);
        free(words);
        free(lists);
        free(items);
        free(x);
        ref_free(&m);
        vs_index_destroy(ix);
    }
}

/* Several fields of different storages, items missing fields, multi-vector terms, every combine. */
static void case_multi_field(vs_device dev, vs_rng *r)
{
    vs_field_spec sp[3] = {
        {.name = "a", .dim = 7, .metric = VS_METRIC_COSINE, .storage = VS_STORAGE_F32},
        {.name = "b", .dim = 33, .metric = VS_METRIC_IP, .storage = VS_STORAGE_I8},
        {.name = "c", .dim = 5, .metric = VS_METRIC_L2, .storage = VS_STORAGE_F16},
    };
    vs_index_options o = {.device = dev, .chunk_rows = 64, .n_threads = 2};
    vs_index *ix;
    vs_status st;
    if (vs_index_create(sp, 3, &o, &ix, &st) != VS_OK) {
        CHECKF(0, "create: %s", st.msg);
        return;
    }
    ref_model m;
    ref_init(&m, sp, 3);
    uint32_t n = 2333;
    float *x[3];
    vs_item_vectors *items = calloc(n, sizeof *items);
    for (int f = 0; f < 3; f++) {
        x[f] = malloc((size_t)n * sp[f].dim * sizeof(float));
        gauss_fill(r, x[f], (size_t)n * sp[f].dim);
    }
    for (uint32_t i = 0; i < n; i++) {
        items[i].id = vs_rng_next(r) >> 1;
        for (int f = 0; f < 3; f++)
            if (vs_rng_uniform(r) < 0.7)
                items[i].vectors[f] = x[f] + (size_t)i * sp[f].dim;
        ref_write(&m, &items[i], 0, false);
    }
    CHECK(vs_index_upsert(ix, items, n, NULL, &st) == VS_OK);
    for (int rep = 0; rep < 24; rep++) {
        vs_term terms[3];
        float qbuf[3][3 * 33];
        uint32_t nt = 1 + (uint32_t)vs_rng_below(r, 3);
        for (uint32_t t = 0; t < nt; t++) {
            uint32_t f = (t + (uint32_t)rep) % 3, nv = 1 + (uint32_t)vs_rng_below(r, 3);
            gauss_fill(r, qbuf[t], nv * sp[f].dim);
            terms[t] = (vs_term){.field = f, .n_vectors = nv, .vectors = qbuf[t],
                                 .weight = (float)(0.1 + 2 * vs_rng_uniform(r))};
        }
        vs_query q = {.terms = terms, .n_terms = nt, .combine = (vs_combine)(rep % 3)};
        uint32_t k = rep % 4 == 3 ? 500 : 10;
        char what[128];
        snprintf(what, sizeof what, "multi-field %s terms=%u k=%u on %s", vs_combine_name(q.combine), nt, k,
                 vs_index_backend_name(ix));
        check_query(&m, ix, &q, k, 0, (tol){5e-4, 5e-5}, what);
    }
    /* a batch of mixed queries gives what each gives alone */
    vs_term t0 = {.field = 0, .n_vectors = 1, .vectors = x[0], .weight = 1};
    vs_term t1 = {.field = 1, .n_vectors = 1, .vectors = x[1] + 33, .weight = 1};
    vs_query qs[3] = {{.terms = &t0, .n_terms = 1}, {.terms = &t1, .n_terms = 1}, {.terms = &t0, .n_terms = 1}};
    vs_hit batch_hits[3 * 20], one[20];
    uint32_t bc[3], oc;
    vs_search_params p = {.k = 20};
    CHECK(vs_index_search(ix, qs, 3, &p, batch_hits, bc, &st) == VS_OK);
    for (int i = 0; i < 3; i++) {
        CHECK(vs_index_search(ix, &qs[i], 1, &p, one, &oc, &st) == VS_OK);
        CHECK(oc == bc[i]);
        for (uint32_t j = 0; j < oc && j < bc[i]; j++)
            CHECKF(one[j].id == batch_hits[i * 20 + j].id && one[j].score == batch_hits[i * 20 + j].score,
                   "batched query %d rank %u differs from the same query alone", i, j);
    }
    for (int f = 0; f < 3; f++)
        free(x[f]);
    free(items);
    ref_free(&m);
    vs_index_destroy(ix);
}

/* Upserts, patches and deletes interleaved with searches, with slot reuse and growth. */
static void case_churn(vs_device dev, vs_rng *r, int quick)
{
    vs_field_spec sp[2] = {
        {.name = "e", .dim = 12, .metric = VS_METRIC_IP, .storage = VS_STORAGE_I8, .rerank = true},
        {.name = "g", .dim = 9, .metric = VS_METRIC_L2, .storage = VS_STORAGE_F32},
    };
    vs_index_options o = {.device = dev, .chunk_rows = 64, .n_threads = 2};
    vs_index *ix;
    vs_status st;
    if (vs_index_create(sp, 2, &o, &ix, &st) != VS_OK) {
        CHECKF(0, "create: %s", st.msg);
        return;
    }
    ref_model m;
    ref_init(&m, sp, 2);
    uint32_t id_space = 600, rounds = quick ? 10 : 30, max_live = 0, live = 0;
    float va[12], vb[9];
    for (uint32_t round = 0; round < rounds; round++) {
        for (int op = 0; op < 200; op++) {
            uint64_t id = vs_rng_below(r, id_space);
            double u = vs_rng_uniform(r);
            gauss_fill(r, va, 12);
            gauss_fill(r, vb, 9);
            vs_item_vectors iv = {.id = id};
            if (u < 0.5) {
                iv.vectors[0] = vs_rng_uniform(r) < 0.8 ? va : NULL;
                iv.vectors[1] = vs_rng_uniform(r) < 0.8 ? vb : NULL;
                CHECK(vs_index_upsert(ix, &iv, 1, NULL, &st) == VS_OK);
                live += ref_find(&m, id) == NULL;
                ref_write(&m, &iv, 0, false);
            } else if (u < 0.7) {
                uint32_t clear = vs_rng_uniform(r) < 0.2 ? 2u : 0u;
                iv.vectors[0] = vs_rng_uniform(r) < 0.5 ? va : NULL;
                CHECK(vs_index_patch(ix, &iv, &clear, 1, NULL, &st) == VS_OK);
                live += ref_find(&m, id) == NULL;
                ref_write(&m, &iv, clear, true);
            } else {
                bool existed;
                CHECK(vs_index_delete(ix, &id, 1, &existed, &st) == VS_OK);
                CHECK(existed == (ref_find(&m, id) != NULL));
                live -= existed;
                ref_delete(&m, id);
            }
            max_live = live > max_live ? live : max_live;
        }
        CHECKF(vs_index_count(ix) == live, "round %u: count %llu, model %u", round,
               (unsigned long long)vs_index_count(ix), live);
        CHECKF(vs_index_slot_limit(ix) <= max_live, "round %u: slot_limit %u above the most items ever live (%u): slots are not reused",
               round, vs_index_slot_limit(ix), max_live);
        for (int qi = 0; qi < 4; qi++) {
            gauss_fill(r, va, 12);
            gauss_fill(r, vb, 9);
            vs_term terms[2] = {{.field = 0, .n_vectors = 1, .vectors = va, .weight = 1},
                                {.field = 1, .n_vectors = 1, .vectors = vb, .weight = 0.5f}};
            vs_query q = {.terms = qi % 2 ? terms : terms + 1, .n_terms = qi % 2 ? 2 : 1,
                          .combine = qi < 2 ? VS_COMBINE_SUM : VS_COMBINE_MAX};
            char what[96];
            snprintf(what, sizeof what, "churn round %u query %d on %s", round, qi, vs_index_backend_name(ix));
            check_query(&m, ix, &q, qi == 3 ? 700 : 10, 0, (tol){2e-4, 5e-5}, what);
        }
    }
    ref_free(&m);
    vs_index_destroy(ix);
}

/* Bad input is refused with INVALID_ARGUMENT and changes nothing. */
static void case_validation(vs_device dev)
{
    vs_field_spec sp = {.name = "v", .dim = 4, .metric = VS_METRIC_COSINE, .storage = VS_STORAGE_F32};
    vs_index_options o = {.device = dev, .n_threads = 1};
    vs_index *ix;
    vs_status st;
    vs_field_spec b1 = sp;
    b1.storage = VS_STORAGE_B1;
    CHECK(vs_index_create(&b1, 1, &o, &ix, &st) == VS_ERR_INVALID_ARGUMENT);
    vs_field_spec big = sp;
    big.dim = VS_MAX_DIM + 1;
    CHECK(vs_index_create(&big, 1, &o, &ix, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(st.msg, "dim") != NULL);
    if (vs_index_create(&sp, 1, &o, &ix, &st) != VS_OK) {
        CHECKF(0, "create: %s", st.msg);
        return;
    }
    float ok[4] = {1, 2, 3, 4}, nan[4] = {1, NAN, 0, 0}, zero[4] = {0};
    vs_item_vectors items[2] = {{.id = 1, .vectors = {ok}}, {.id = 2, .vectors = {nan}}};
    CHECK(vs_index_upsert(ix, items, 2, NULL, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(st.msg, "item 2") != NULL);
    CHECK(vs_index_count(ix) == 0); /* the valid first item was not written either */
    items[1].vectors[0] = zero;
    CHECK(vs_index_upsert(ix, items, 2, NULL, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_index_upsert(ix, items, 1, NULL, &st) == VS_OK);
    vs_hit h[4];
    uint32_t c;
    vs_term t = {.field = 0, .n_vectors = 1, .vectors = ok, .weight = 1};
    vs_query q = {.terms = &t, .n_terms = 1};
    vs_search_params p = {.k = 0};
    CHECK(vs_index_search(ix, &q, 1, &p, h, &c, &st) == VS_ERR_INVALID_ARGUMENT);
    p.k = VS_MAX_K + 1;
    CHECK(vs_index_search(ix, &q, 1, &p, h, &c, &st) == VS_ERR_INVALID_ARGUMENT);
    p.k = 4;
    t.vectors = zero;
    CHECK(vs_index_search(ix, &q, 1, &p, h, &c, &st) == VS_ERR_INVALID_ARGUMENT);
    t.vectors = ok;
    t.weight = 0;
    CHECK(vs_index_search(ix, &q, 1, &p, h, &c, &st) == VS_ERR_INVALID_ARGUMENT);
    t.weight = 1;
    t.field = 1;
    CHECK(vs_index_search(ix, &q, 1, &p, h, &c, &st) == VS_ERR_INVALID_ARGUMENT);
    t.field = 0;
    uint32_t bad_list[2] = {0, 5};
    vs_slotset bad = {.kind = VS_SLOTSET_LIST, .slots = bad_list, .count = 2};
    q.allowed = &bad; /* slot 5 does not exist */
    CHECK(vs_index_search(ix, &q, 1, &p, h, &c, &st) == VS_ERR_INVALID_ARGUMENT);
    q.allowed = NULL;
    CHECK(vs_index_search(ix, &q, 1, &p, h, &c, &st) == VS_OK && c == 1 && h[0].id == 1);
    CHECK(fabsf(h[0].score - 1.0f) < 1e-5f); /* cosine of a vector with itself */
    bool existed = true;
    uint64_t absent = 99;
    CHECK(vs_index_delete(ix, &absent, 1, &existed, &st) == VS_OK && !existed);
    vs_index_destroy(ix);
}

int vs_conformance_run(vs_device dev, uint64_t seed, int quick)
{
    int before = vs_test_failures;
    vs_rng r;
    vs_rng_seed(&r, seed);
    case_validation(dev);
    case_single_field(dev, &r, quick);
    case_multi_field(dev, &r);
    case_batch_filters(dev, &r);
    case_churn(dev, &r, quick);
    return vs_test_failures - before;
}
