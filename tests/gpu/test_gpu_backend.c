/*
 * test_gpu_backend.c: the CUDA backend through its table of functions, against a float64
 * reference computed here from the same encoded rows, on awkward sizes: d = 1, 7, 129; N not a
 * multiple of any tile or chunk; k from 1 to 10,000; batches taking the fused path and the tile
 * path; filters as dense bitmaps and as gathered lists; SUM and MAX over two fields with items
 * lacking one; upsert/delete churn with slot reuse and growth; out of device memory.
 * When built beside the CPU backend (VS_GPU_TEST_CPU), the same scans run there too and the two
 * must agree.
 *
 * It plays the index core's part itself (slot view, encodings), so it runs before the core lands.
 * Without a CUDA device it prints SKIP and exits 77.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend.h"
#include "cuda_bench.h"
#include "cuda_kernels.h"
#include "quant.h"
#include "testutil.h"

#define VIEW_SHIFT 9 /* the "core's" chunks: 512 slots, unlike the backend's */

/* ===== A tiny core: slot view, encoded rows, reference scores ===== */

typedef struct fx {
    const vs_backend_ops *ops;
    void *store;
    uint32_t n_fields;
    vs_field_layout lay[VS_MAX_FIELDS];
    uint32_t cap;                   /* slots with host room */
    uint32_t reserved;
    vs_slot_view view;
    uint64_t *live, *has[VS_MAX_FIELDS];
    uint64_t **idc;                 /* id chunks */
    uint8_t *codes[VS_MAX_FIELDS];  /* cap x code_bytes */
    vs_row_consts *consts[VS_MAX_FIELDS];
    uint32_t *free_slots;
    uint32_t n_free;
} fx;

static uint32_t code_bytes(vs_storage s, uint32_t dim)
{
    switch (s) {
    case VS_STORAGE_F32: return dim * 4;
    case VS_STORAGE_F16: return dim * 2;
    case VS_STORAGE_I8: return dim;
    case VS_STORAGE_B1: return vs_b1_bits(dim) / 8;
    }
    return 0;
}

static vs_field_layout mk_layout(uint32_t dim, vs_metric m, vs_storage s)
{
    vs_field_layout l = {dim, m, s, code_bytes(s, dim), s == VS_STORAGE_B1 ? vs_b1_bits(dim) / 64 : 0};
    return l;
}

static int fx_init(fx *x, const vs_backend_ops *ops, const vs_field_layout *lay, uint32_t n_fields,
                   uint32_t cap, uint32_t chunk_rows)
{
    vs_index_options opt = {VS_DEVICE_CUDA, 0, chunk_rows, 2};
    vs_status st;
    memset(x, 0, sizeof *x);
    x->ops = ops;
    x->n_fields = n_fields;
    x->cap = (cap + (1u << VIEW_SHIFT) - 1) & ~((1u << VIEW_SHIFT) - 1);
    memcpy(x->lay, lay, n_fields * sizeof *lay);
    if (ops->create(lay, n_fields, &opt, &x->store, &st) != VS_OK) {
        fprintf(stderr, "create: %s\n", st.msg);
        return 0;
    }
    x->live = calloc(x->cap / 64 + 1, 8);
    for (uint32_t f = 0; f < n_fields; f++) {
        x->has[f] = calloc(x->cap / 64 + 1, 8);
        x->codes[f] = calloc(x->cap, lay[f].code_bytes);
        x->consts[f] = calloc(x->cap, sizeof(vs_row_consts));
        x->view.has[f] = x->has[f];
    }
    x->idc = calloc(x->cap >> VIEW_SHIFT, sizeof *x->idc);
    for (uint32_t c = 0; c < x->cap >> VIEW_SHIFT; c++)
        x->idc[c] = calloc(1u << VIEW_SHIFT, 8);
    x->free_slots = malloc(x->cap * 4);
    x->view.chunk_shift = VIEW_SHIFT;
    x->view.live = x->live;
    x->view.ids = x->idc;
    return 1;
}

static void fx_free(fx *x)
{
    if (x->store)
        x->ops->destroy(x->store);
    free(x->live);
    for (uint32_t f = 0; f < x->n_fields; f++) {
        free(x->has[f]);
        free(x->codes[f]);
        free(x->consts[f]);
    }
    for (uint32_t c = 0; c < x->cap >> VIEW_SHIFT; c++)
        free(x->idc[c]);
    free(x->idc);
    free(x->free_slots);
}

static int getbit(const uint64_t *w, uint32_t s) { return (int)((w[s / 64] >> (s % 64)) & 1u); }
static void setbit(uint64_t *w, uint32_t s, int v)
{
    if (v)
        w[s / 64] |= 1ull << (s % 64);
    else
        w[s / 64] &= ~(1ull << (s % 64));
}

/* Encodes a random vector of field f into slot s (what the core's quant.c would produce). */
static void encode_random(fx *x, uint32_t f, uint32_t s, vs_rng *r, int ties)
{
    const vs_field_layout *l = &x->lay[f];
    float v[VS_MAX_DIM], raw[VS_MAX_DIM];
    double n2 = 0;
    for (uint32_t i = 0; i < l->dim; i++) {
        v[i] = raw[i] = ties ? (float)((int)vs_rng_below(r, 3) - 1) : (float)vs_rng_gauss(r);
        n2 += (double)v[i] * v[i];
    }
    const double norm = sqrt(n2);
    if (l->metric == VS_METRIC_COSINE && n2 > 0) {
        for (uint32_t i = 0; i < l->dim; i++)
            v[i] = (float)(v[i] / sqrt(n2));
        n2 = 1.0;
    }
    uint8_t *c = x->codes[f] + (size_t)s * l->code_bytes;
    vs_row_consts *k = &x->consts[f][s];
    memset(k, 0, sizeof *k);
    k->norm2 = (float)n2;
    switch (l->storage) {
    case VS_STORAGE_F32:
        memcpy(c, v, l->dim * 4);
        break;
    case VS_STORAGE_F16: { /* as encode.c: the row as given times a power of two, the row's scale
                              undoing it (and dividing by |x| for cosine) */
        float amax = 0;
        int ex = 0;
        for (uint32_t i = 0; i < l->dim; i++)
            amax = fabsf(raw[i]) > amax ? fabsf(raw[i]) : amax;
        if (amax > 0)
            frexpf(amax, &ex);
        float up = ldexpf(1.0f, 11 - ex);
        for (uint32_t i = 0; i < l->dim; i++) {
            uint16_t h = vs_f32_to_f16(raw[i] * up);
            memcpy(c + 2 * i, &h, 2);
        }
        k->scale = (float)(ldexp(1.0, ex - 11) /
                           (l->metric == VS_METRIC_COSINE && norm > 0 ? norm : 1.0));
        break;
    }
    case VS_STORAGE_I8: {
        float mn = v[0], mx = v[0];
        for (uint32_t i = 1; i < l->dim; i++) {
            mn = v[i] < mn ? v[i] : mn;
            mx = v[i] > mx ? v[i] : mx;
        }
        vs_i8_row_params(mn, mx, &k->middle, &k->scale);
        for (uint32_t i = 0; i < l->dim; i++)
            c[i] = (uint8_t)vs_i8_encode(v[i], k->middle, k->scale);
        break;
    }
    case VS_STORAGE_B1:
        for (uint32_t i = 0; i < l->code_bytes; i++)
            c[i] = (uint8_t)vs_rng_next(r);
        if (l->dim % 64) { /* bits past dim are zero, as after the rotation's truncation */
            uint32_t bits = vs_b1_bits(l->dim);
            for (uint32_t b = l->dim; b < bits; b++)
                c[b / 8] &= (uint8_t)~(1u << (b % 8));
        }
        break;
    }
}

/* Puts item id in slot s with the fields of mask (random vectors). Writes and tells the backend. */
static int fx_put(fx *x, uint32_t s, uint64_t id, uint32_t mask, vs_rng *r, int ties)
{
    vs_status st;
    if (s >= x->reserved) {
        uint32_t want = s + 1 + (s + 1) / 2;
        if (want > x->cap)
            want = x->cap;
        if (x->ops->reserve(x->store, want, &st) != VS_OK) {
            fprintf(stderr, "reserve: %s\n", st.msg);
            return 0;
        }
        x->reserved = want;
    }
    for (uint32_t f = 0; f < x->n_fields; f++) {
        int on = (mask >> f) & 1u;
        setbit(x->has[f], s, on);
        if (!on)
            continue;
        encode_random(x, f, s, r, ties);
        if (x->ops->write_rows(x->store, f, &s, 1, x->codes[f] + (size_t)s * x->lay[f].code_bytes,
                               &x->consts[f][s], &st) != VS_OK) {
            fprintf(stderr, "write_rows: %s\n", st.msg);
            return 0;
        }
    }
    setbit(x->live, s, 1);
    x->idc[s >> VIEW_SHIFT][s & ((1u << VIEW_SHIFT) - 1)] = id;
    if (s >= x->view.slot_limit)
        x->view.slot_limit = s + 1;
    if (x->ops->slots_changed)
        x->ops->slots_changed(x->store, &s, 1);
    return 1;
}

/* Bulk: slots [0, n) with ids 1000 + 7 s, every field (or fields by mask_of(s)). */
static int fx_fill(fx *x, uint32_t n, vs_rng *r, int ties, int some_missing)
{
    vs_status st;
    if (x->ops->reserve(x->store, n, &st) != VS_OK) {
        fprintf(stderr, "reserve: %s\n", st.msg);
        return 0;
    }
    x->reserved = n > x->reserved ? n : x->reserved;
    uint32_t *slots = malloc(n * 4);
    for (uint32_t s = 0; s < n; s++)
        slots[s] = s;
    for (uint32_t f = 0; f < x->n_fields; f++) {
        for (uint32_t s = 0; s < n; s++) {
            int on = !some_missing || x->n_fields == 1 || ((s * 2654435761u) >> 29) % 3 != (uint32_t)f;
            setbit(x->has[f], s, on);
            encode_random(x, f, s, r, ties);
        }
        if (x->ops->write_rows(x->store, f, slots, n, x->codes[f], x->consts[f], &st) != VS_OK) {
            fprintf(stderr, "write_rows: %s\n", st.msg);
            free(slots);
            return 0;
        }
    }
    for (uint32_t s = 0; s < n; s++) {
        setbit(x->live, s, 1);
        x->idc[s >> VIEW_SHIFT][s & ((1u << VIEW_SHIFT) - 1)] = 1000 + 7 * (uint64_t)(n - s);
    }
    x->view.slot_limit = n > x->view.slot_limit ? n : x->view.slot_limit;
    if (x->ops->slots_changed)
        x->ops->slots_changed(x->store, slots, n);
    free(slots);
    return 1;
}

static uint64_t fx_id(const fx *x, uint32_t s) { return x->idc[s >> VIEW_SHIFT][s & ((1u << VIEW_SHIFT) - 1)]; }

/* ===== Queries ===== */

#define QSET_MAX 320 /* queries a qset holds */

typedef struct qset {
    vs_scan_batch b;
    vs_scan_query q[QSET_MAX];
    vs_scan_term t[QSET_MAX][4];
    float *f[VS_MAX_FIELDS];
    int8_t *c[VS_MAX_FIELDS];
    float *scale[VS_MAX_FIELDS], *sum[VS_MAX_FIELDS], *norm2[VS_MAX_FIELDS];
    int32_t *csum[VS_MAX_FIELDS];
    uint64_t *bits[VS_MAX_FIELDS];
} qset;

/* nv query vectors for field f, prepared as the core prepares them. */
static void qs_vectors(qset *q, const fx *x, uint32_t f, uint32_t nv, vs_rng *r)
{
    const vs_field_layout *l = &x->lay[f];
    vs_field_queries *fq = &q->b.fq[f];
    q->f[f] = malloc((size_t)nv * l->dim * 4);
    q->c[f] = malloc((size_t)nv * l->dim);
    q->scale[f] = malloc(nv * 4);
    q->sum[f] = malloc(nv * 4);
    q->csum[f] = malloc(nv * 4);
    q->norm2[f] = malloc(nv * 4);
    q->bits[f] = malloc((size_t)nv * (l->b1_words ? l->b1_words : 1) * 8);
    for (uint32_t j = 0; j < nv; j++) {
        float *v = q->f[f] + (size_t)j * l->dim, amax = 0;
        double n2 = 0, sm = 0;
        for (uint32_t i = 0; i < l->dim; i++) {
            v[i] = (float)vs_rng_gauss(r);
            n2 += (double)v[i] * v[i];
        }
        if (l->metric == VS_METRIC_COSINE) {
            for (uint32_t i = 0; i < l->dim; i++)
                v[i] = (float)(v[i] / sqrt(n2));
            n2 = 1.0;
        }
        int32_t cs = 0;
        for (uint32_t i = 0; i < l->dim; i++) {
            amax = fabsf(v[i]) > amax ? fabsf(v[i]) : amax;
            sm += v[i];
        }
        q->scale[f][j] = vs_i8_query_scale(amax);
        for (uint32_t i = 0; i < l->dim; i++) {
            q->c[f][(size_t)j * l->dim + i] = vs_i8_query_code(v[i], q->scale[f][j]);
            cs += q->c[f][(size_t)j * l->dim + i];
        }
        q->sum[f][j] = (float)sm;
        q->csum[f][j] = cs;
        q->norm2[f][j] = (float)n2;
        for (uint32_t w = 0; w < l->b1_words; w++)
            q->bits[f][(size_t)j * l->b1_words + w] = vs_rng_next(r);
        if (l->storage == VS_STORAGE_B1 && l->dim % 64)
            q->bits[f][(size_t)j * l->b1_words + l->b1_words - 1] &= (1ull << (l->dim % 64)) - 1;
    }
    fq->n = nv;
    fq->f = q->f[f];
    fq->c = q->c[f];
    fq->scale = q->scale[f];
    fq->sum = q->sum[f];
    fq->csum = q->csum[f];
    fq->bits = q->bits[f];
    fq->norm2 = q->norm2[f];
}

static void qs_free(qset *q)
{
    for (int f = 0; f < VS_MAX_FIELDS; f++) {
        free(q->f[f]);
        free(q->c[f]);
        free(q->scale[f]);
        free(q->sum[f]);
        free(q->csum[f]);
        free(q->norm2[f]);
        free(q->bits[f]);
    }
}

/* ===== Reference ===== */

/* Score of slot s on query vector j of field f, and a bound on the float error a correct backend
 * may add (float summation in another order). */
static double ref_vec(const fx *x, const vs_scan_batch *b, uint32_t f, uint32_t j, uint32_t s,
                      double *err)
{
    const vs_field_layout *l = &x->lay[f];
    const vs_field_queries *fq = &b->fq[f];
    const uint8_t *c = x->codes[f] + (size_t)s * l->code_bytes;
    const vs_row_consts *k = &x->consts[f][s];
    double dot = 0, mag = 0;
    *err = 0;
    switch (l->storage) {
    case VS_STORAGE_F32:
    case VS_STORAGE_F16:
        for (uint32_t i = 0; i < l->dim; i++) {
            double xv;
            if (l->storage == VS_STORAGE_F32) {
                float t;
                memcpy(&t, c + 4 * i, 4);
                xv = t;
            } else {
                uint16_t h;
                memcpy(&h, c + 2 * i, 2);
                xv = (double)k->scale * vs_f16_to_f32(h);
            }
            dot += (double)fq->f[(size_t)j * l->dim + i] * xv;
            mag += fabs((double)fq->f[(size_t)j * l->dim + i] * xv);
        }
        *err = mag * 4e-6 + 1e-6; /* f16 too: the tile path splits the query (cuda_kern.h) */
        break;
    case VS_STORAGE_I8: {
        int64_t id = 0;
        for (uint32_t i = 0; i < l->dim; i++)
            id += (int64_t)fq->c[(size_t)j * l->dim + i] * (int8_t)c[i];
        double a = (double)k->middle * fq->sum[j], bb = (double)k->scale * fq->scale[j] * (double)id;
        dot = a + bb;
        *err = (fabs(a) + fabs(bb)) * 2e-6 + 1e-6;
        break;
    }
    case VS_STORAGE_B1: {
        uint32_t diff = 0;
        for (uint32_t w = 0; w < l->b1_words; w++) {
            uint64_t xv;
            memcpy(&xv, c + 8 * w, 8);
            diff += (uint32_t)__builtin_popcountll(xv ^ fq->bits[(size_t)j * l->b1_words + w]);
        }
        *err = 0;
        return (double)vs_b1_bits(l->dim) - diff;
    }
    }
    if (l->metric == VS_METRIC_L2) {
        *err += (fq->norm2[j] + k->norm2) * 2e-6;
        return -((double)fq->norm2[j] - 2.0 * dot + k->norm2);
    }
    return dot;
}

/* The query's score on slot s; 0 when the slot is not eligible. */
static int ref_score(const fx *x, const vs_scan_batch *b, const vs_scan_query *q, uint32_t s,
                     double *score, double *err)
{
    double num = 0, den = 0, mx = -INFINITY, emax = 0;
    int any = 0;
    if (!getbit(x->live, s) || !vs_slotset_bitmap_has(q->allowed && q->allowed->kind != VS_SLOTSET_LIST ? q->allowed : NULL, s))
        return 0;
    if (q->allowed && q->allowed->kind == VS_SLOTSET_LIST) {
        uint64_t lo = 0, hi = q->allowed->count;
        while (lo < hi) {
            uint64_t mid = (lo + hi) / 2;
            if (q->allowed->slots[mid] < s)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == q->allowed->count || q->allowed->slots[lo] != s)
            return 0;
    }
    for (uint32_t t = 0; t < q->n_terms; t++) {
        const vs_scan_term *tm = &q->terms[t];
        if (!getbit(x->has[tm->field], s))
            continue;
        double best = -INFINITY, be = 0;
        for (uint32_t v = 0; v < tm->n_vecs; v++) {
            double e, sc = ref_vec(x, b, tm->field, tm->first + v, s, &e);
            if (sc > best)
                best = sc;
            if (e > be)
                be = e;
        }
        any = 1;
        emax = fmax(emax, be * tm->weight);
        if (q->combine == VS_COMBINE_SUM) {
            num += tm->weight * best;
            den += tm->weight;
        } else if (tm->weight * best > mx) {
            mx = tm->weight * best;
        }
    }
    if (!any)
        return 0;
    *score = q->combine == VS_COMBINE_SUM ? num / den : mx;
    *err = (q->combine == VS_COMBINE_SUM ? emax / den * q->n_terms : emax) + 1e-5 * (1 + fabs(*score));
    return 1;
}

typedef struct rc {
    double s, e;
    uint32_t slot;
    uint64_t id;
} rc;

static int rc_cmp(const void *a, const void *b)
{
    const rc *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Checks one query's results against the reference. Returns failures. */
static int check_query(const fx *x, const vs_scan_batch *b, uint32_t qi, const vs_cand *got,
                       uint32_t n, const char *what)
{
    const vs_scan_query *q = &b->queries[qi];
    uint32_t limit = x->view.slot_limit, e = 0, fails = 0;
    rc *all = malloc((limit ? limit : 1) * sizeof *all);
    double *ref = malloc((limit ? limit : 1) * sizeof *ref), *err = malloc((limit ? limit : 1) * sizeof *err);
    uint8_t *ok = calloc(limit ? limit : 1, 1), *seen = calloc(limit ? limit : 1, 1);
    double emax = 0;
    for (uint32_t s = 0; s < limit; s++) {
        if (!ref_score(x, b, q, s, &ref[s], &err[s]))
            continue;
        ok[s] = 1;
        all[e++] = (rc){ref[s], err[s], s, fx_id(x, s)};
        emax = fmax(emax, err[s]);
    }
    qsort(all, e, sizeof *all, rc_cmp);
    uint32_t want = e < q->k ? e : q->k;
    if (n != want) {
        fprintf(stderr, "%s q%u: %u results, want %u\n", what, qi, n, want);
        fails++;
        goto out;
    }
    double kth = want ? all[want - 1].s : 0;
    for (uint32_t i = 0; i < n && fails < 5; i++) {
        const vs_cand *g = &got[i];
        if (g->slot >= limit || !ok[g->slot] || seen[g->slot] || g->id != fx_id(x, g->slot)) {
            fprintf(stderr, "%s q%u rank %u: slot %u id %llu not eligible, repeated or wrong id\n",
                    what, qi, i, g->slot, (unsigned long long)g->id);
            fails++;
            continue;
        }
        seen[g->slot] = 1;
        if (fabs(g->score - ref[g->slot]) > err[g->slot] + 1e-6 * fabs(ref[g->slot])) {
            fprintf(stderr, "%s q%u rank %u: slot %u score %.9g, reference %.9g (tolerance %.3g)\n",
                    what, qi, i, g->slot, g->score, ref[g->slot], err[g->slot]);
            fails++;
        }
        if (i && (got[i - 1].score < g->score ||
                  (got[i - 1].score == g->score && got[i - 1].id >= g->id))) {
            fprintf(stderr, "%s q%u rank %u: out of order\n", what, qi, i);
            fails++;
        }
        if (ref[g->slot] < kth - 2 * emax - 1e-9) {
            fprintf(stderr, "%s q%u rank %u: slot %u (%.9g) is below the k-th best %.9g\n", what,
                    qi, i, g->slot, ref[g->slot], kth);
            fails++;
        }
    }
    for (uint32_t i = 0; i < want && fails < 5; i++)
        if (all[i].s > kth + 2 * emax + 1e-9 && !seen[all[i].slot]) {
            fprintf(stderr, "%s q%u: slot %u (%.9g, rank %u) is missing\n", what, qi, all[i].slot,
                    all[i].s, i);
            fails++;
        }
    if (emax == 0) /* exact scores (b1): the very same list, ties by id */
        for (uint32_t i = 0; i < want && fails < 5; i++)
            if (got[i].slot != all[i].slot) {
                fprintf(stderr, "%s q%u rank %u: slot %u, want %u\n", what, qi, i, got[i].slot,
                        all[i].slot);
                fails++;
            }
out:
    free(all);
    free(ref);
    free(err);
    free(ok);
    free(seen);
    return (int)fails;
}

/* Runs the batch on x's backend and checks every query; returns failures. */
static int scan_check(fx *x, const vs_scan_batch *b, const char *what, vs_cand **keep,
                      uint32_t **keep_n)
{
    uint32_t kmax = 1, fails = 0;
    for (uint32_t q = 0; q < b->n_queries; q++)
        kmax = b->queries[q].k > kmax ? b->queries[q].k : kmax;
    size_t stride = kmax + 3; /* wider than k on purpose */
    vs_cand *out = malloc(b->n_queries * stride * sizeof *out);
    uint32_t *cnt = malloc(b->n_queries * 4);
    vs_status st;
    memset(out, 0xa5, b->n_queries * stride * sizeof *out); /* poison */
    for (uint32_t q = 0; q < b->n_queries; q++)
        cnt[q] = 0xdeadbeef;
    vs_err e = x->ops->scan(x->store, &x->view, b, out, stride, cnt, &st);
    if (e != VS_OK) {
        fprintf(stderr, "%s: scan failed: %s\n", what, st.msg);
        free(out);
        free(cnt);
        return 1;
    }
    for (uint32_t q = 0; q < b->n_queries && fails < 10; q++)
        fails += (uint32_t)check_query(x, b, q, out + q * stride, cnt[q], what);
    if (keep) {
        *keep = out;
        *keep_n = cnt;
    } else {
        free(out);
        free(cnt);
    }
    if (fails)
        fprintf(stderr, "%s: %u failure(s)\n", what, fails);
    return (int)fails;
}

/* ===== Cases ===== */

static const vs_backend_ops *cpu_ops(void)
{
#ifdef VS_GPU_TEST_CPU
    return &vs_cpu_backend;
#else
    return NULL;
#endif
}

static const char *sname(vs_storage s)
{
    static const char *n[] = {"f32", "f16", "i8", "b1"};
    return n[s];
}

/* The CPU backend's results against the GPU's: the same ids in the same order, except where two
 * neighbours' scores are within tol (float summation order differs). */
static int compare_backends(const vs_cand *g, const uint32_t *gn, const vs_cand *c,
                            const uint32_t *cn, uint32_t nq, size_t stride, double tol,
                            const char *what)
{
    int fails = 0;
    for (uint32_t q = 0; q < nq && fails < 5; q++) {
        if (gn[q] != cn[q]) {
            fprintf(stderr, "%s q%u: gpu %u results, cpu %u\n", what, q, gn[q], cn[q]);
            fails++;
            continue;
        }
        for (uint32_t i = 0; i < gn[q]; i++) {
            const vs_cand *a = &g[q * stride + i], *b = &c[q * stride + i];
            if (fabs(a->score - b->score) > tol * (1 + fabs(b->score))) {
                fprintf(stderr, "%s q%u rank %u: gpu %.9g cpu %.9g\n", what, q, i, a->score,
                        b->score);
                fails++;
                break;
            }
            if (a->id != b->id) {
                double gap = 1e300;
                if (i > 0)
                    gap = fmin(gap, fabs(b->score - c[q * stride + i - 1].score));
                if (i + 1 < cn[q])
                    gap = fmin(gap, fabs(b->score - c[q * stride + i + 1].score));
                if (gap > tol * (1 + fabs(b->score))) {
                    fprintf(stderr, "%s q%u rank %u: gpu id %llu cpu id %llu, no near tie\n",
                            what, q, i, (unsigned long long)a->id, (unsigned long long)b->id);
                    fails++;
                    break;
                }
            }
        }
    }
    return fails;
}

typedef struct spec {
    uint32_t force_cap; /* candidate slots per query, 0 = the plan's: forces overflow rounds */
    uint32_t n_fields;
    vs_field_layout lay[2];
    uint32_t n, chunk_rows;
    uint32_t nq, vecs, k;
    int ties, some_missing, two_terms;
    vs_combine combine;
    int filter; /* 0 none, 1 bitmap 30%, 2 list 1% shared, 3 list 40% (taken densely), 4 mixed */
    int mma;    /* 1: the batch must take the MMA scan; its results must then equal the tile
                   path's (cuBLAS or the dot kernel): exactly for i8 (integer dots), within
                   1e-5 for f16, as between backends (the sums run in another order) */
} spec;

/* Builds queries for spec over fixture x. */
static void build_queries(qset *q, const fx *x, const spec *sp, vs_rng *r, vs_slotset *sets,
                          uint64_t **bm, uint32_t **lists)
{
    memset(q, 0, sizeof *q);
    if (sp->nq > QSET_MAX) {
        fprintf(stderr, "a spec of %u queries: a qset holds %u\n", sp->nq, QSET_MAX);
        abort();
    }
    for (uint32_t f = 0; f < sp->n_fields; f++)
        qs_vectors(q, x, f, sp->nq * sp->vecs, r);
    const uint32_t lim = x->view.slot_limit, words = lim / 64 + 1;
    bm[0] = calloc(words, 8);
    bm[1] = calloc(words, 8);
    lists[0] = malloc((lim + 1) * 4);
    lists[1] = malloc((lim + 1) * 4);
    uint32_t n0 = 0, n1 = 0, c0 = 0, c1 = 0;
    for (uint32_t s = 0; s < lim; s++) {
        if (vs_rng_uniform(r) < 0.3) {
            bm[0][s / 64] |= 1ull << (s % 64);
            c0++;
        }
        if (vs_rng_uniform(r) < 0.6) {
            bm[1][s / 64] |= 1ull << (s % 64);
            c1++;
        }
        if (vs_rng_uniform(r) < 0.01)
            lists[0][n0++] = s;
        if (vs_rng_uniform(r) < 0.4)
            lists[1][n1++] = s;
    }
    sets[0] = (vs_slotset){VS_SLOTSET_BITMAP, bm[0], lim, NULL, c0};
    sets[1] = (vs_slotset){VS_SLOTSET_BITMAP, bm[1], lim - lim / 3, NULL, c1}; /* short bitmap */
    sets[2] = (vs_slotset){VS_SLOTSET_LIST, NULL, 0, lists[0], n0};
    sets[3] = (vs_slotset){VS_SLOTSET_LIST, NULL, 0, lists[1], n1};
    sets[4] = (vs_slotset){VS_SLOTSET_LIST, NULL, 0, lists[0], 0}; /* empty */
    for (uint32_t i = 0; i < sp->nq; i++) {
        vs_scan_query *sq = &q->q[i];
        uint32_t nt = sp->two_terms ? 2 : 1;
        for (uint32_t t = 0; t < nt; t++)
            q->t[i][t] = (vs_scan_term){sp->n_fields > 1 ? t : 0, i * sp->vecs, sp->vecs,
                                         t ? 0.3f : 0.7f};
        if (sp->two_terms && sp->n_fields == 1) /* two terms on one field: other vectors */
            q->t[i][1].first = ((i + 1) % sp->nq) * sp->vecs;
        sq->terms = q->t[i];
        sq->n_terms = nt;
        sq->combine = sp->combine;
        sq->k = i % 3 == 1 && sp->k > 1 ? sp->k / 2 : sp->k;
        switch (sp->filter) {
        case 1: sq->allowed = &sets[i % 2]; break;
        case 2: sq->allowed = &sets[2]; break;
        case 3: sq->allowed = &sets[3]; break;
        case 4: sq->allowed = i % 5 == 4 ? NULL : &sets[i % 5]; break;
        default: sq->allowed = NULL; break;
        }
    }
    q->b.n_queries = sp->nq;
    q->b.queries = q->q;
}

/* One spec on the GPU (and the CPU backend when linked): results against the reference. */
static void run_spec(const spec *sp, uint64_t seed, const char *what)
{
    fx g, c;
    qset q;
    vs_rng r;
    vs_slotset sets[5];
    uint64_t *bm[2] = {0};
    uint32_t *lists[2] = {0};
    vs_cand *go = NULL, *co = NULL;
    uint32_t *gn = NULL, *cn = NULL;
    if (!fx_init(&g, &vs_cuda_backend, sp->lay, sp->n_fields, sp->n, sp->chunk_rows)) {
        CHECKF(0, "%s: create failed", what);
        return;
    }
    vs_rng_seed(&r, seed);
    CHECK(fx_fill(&g, sp->n, &r, sp->ties, sp->some_missing));
    build_queries(&q, &g, sp, &r, sets, bm, lists);
    vs_cuda_set_test_capacity(g.store, sp->force_cap);
    int fails = scan_check(&g, &q.b, what, &go, &gn);
    CHECKF(fails == 0, "%s", what);
    /* a correct result can still hide a slow one: a sampled threshold that was too high or a
     * buffer that overflowed costs a second pass, which random data should never need */
    vs_cu_select_stats ss;
    vs_cuda_last_stats(g.store, &ss);
    if (sp->mma && go) {
        vs_cand *to = NULL;
        uint32_t *tn = NULL;
        CHECKF(vs_cuda_last_mma_groups(g.store) > 0, "%s: the MMA scan did not run", what);
        vs_cuda_set_mma(g.store, 0);
        char w2[160];
        snprintf(w2, sizeof w2, "%s [tiles]", what);
        CHECK(scan_check(&g, &q.b, w2, &to, &tn) == 0);
        CHECKF(vs_cuda_last_mma_groups(g.store) == 0, "%s: the MMA scan ran when off", what);
        vs_cuda_set_mma(g.store, 1);
        uint32_t kmax = 1;
        for (uint32_t i = 0; i < q.b.n_queries; i++)
            kmax = q.q[i].k > kmax ? q.q[i].k : kmax;
        if (to && sp->lay[0].storage != VS_STORAGE_I8)
            CHECK(compare_backends(go, gn, to, tn, q.b.n_queries, kmax + 3, 1e-5, w2) == 0);
        for (uint32_t i = 0; to && sp->lay[0].storage == VS_STORAGE_I8 && i < q.b.n_queries; i++) {
            const vs_cand *x1 = go + (size_t)i * (kmax + 3), *x2 = to + (size_t)i * (kmax + 3);
            int same = gn[i] == tn[i];
            for (uint32_t j = 0; same && j < gn[i]; j++)
                same = x1[j].slot == x2[j].slot && x1[j].id == x2[j].id &&
                       memcmp(&x1[j].score, &x2[j].score, sizeof x1[j].score) == 0;
            CHECKF(same, "%s: query %u differs between the MMA scan and tiles", what, i);
        }
        free(to);
        free(tn);
    }
    if (sp->force_cap)
        CHECKF(ss.overflows > 0, "%s: the forced capacity did not overflow", what);
    else
        CHECKF(ss.overflows == 0 && ss.underflows == 0, "%s: %u overflow and %u underflow rescans",
               what, ss.overflows, ss.underflows);
    const vs_backend_ops *cops = cpu_ops();
    if (cops && fx_init(&c, cops, sp->lay, sp->n_fields, sp->n, sp->chunk_rows)) {
        vs_rng r2;
        vs_rng_seed(&r2, seed);
        CHECK(fx_fill(&c, sp->n, &r2, sp->ties, sp->some_missing));
        char w2[160];
        snprintf(w2, sizeof w2, "%s [cpu]", what);
        CHECK(scan_check(&c, &q.b, w2, &co, &cn) == 0);
        uint32_t kmax = 1;
        for (uint32_t i = 0; i < q.b.n_queries; i++)
            kmax = q.q[i].k > kmax ? q.q[i].k : kmax;
        double tol = sp->lay[0].storage == VS_STORAGE_I8 ? 1e-4 : 1e-5;
        if (go && co)
            CHECK(compare_backends(go, gn, co, cn, q.b.n_queries, kmax + 3, tol, what) == 0);
        fx_free(&c);
    }
    free(go);
    free(gn);
    free(co);
    free(cn);
    qs_free(&q);
    free(bm[0]);
    free(bm[1]);
    free(lists[0]);
    free(lists[1]);
    fx_free(&g);
}

static spec one_field(vs_storage s, vs_metric m, uint32_t dim, uint32_t n, uint32_t nq,
                      uint32_t vecs, uint32_t k)
{
    spec sp;
    memset(&sp, 0, sizeof sp);
    sp.n_fields = 1;
    sp.lay[0] = mk_layout(dim, m, s);
    sp.n = n;
    sp.chunk_rows = 1024;
    sp.nq = nq;
    sp.vecs = vecs;
    sp.k = k;
    sp.combine = VS_COMBINE_SUM;
    return sp;
}

static void cases_shapes(void)
{
    static const uint32_t dims[] = {1, 7, 129};
    char what[160];
    uint64_t seed = 1;
    for (int s = 0; s < 4; s++)
        for (size_t d = 0; d < 3; d++)
            for (int m = 0; m < 3; m += 2) { /* ip and l2 (cosine is ip on normalised rows) */
                /* fused path (batch 3), tile path (batch 40) */
                uint32_t nqs[] = {1, 3, 40};
                for (int b = 0; b < 3; b++) {
                    spec sp = one_field((vs_storage)s, (vs_metric)m, dims[d], 3001, nqs[b], 1, 10);
                    snprintf(what, sizeof what, "%s %s d=%u n=3001 nq=%u", sname((vs_storage)s),
                             m ? "l2" : "ip", dims[d], nqs[b]);
                    run_spec(&sp, seed++, what);
                }
            }
    /* cosine, multi-vector terms, MAX, heavy ties */
    for (int s = 0; s < 4; s++) {
        spec sp = one_field((vs_storage)s, VS_METRIC_COSINE, 33, 5000, 4, 3, 25);
        sp.combine = VS_COMBINE_MAX;
        sp.two_terms = 1;
        snprintf(what, sizeof what, "%s cosine 3 vectors x 2 terms MAX", sname((vs_storage)s));
        run_spec(&sp, seed++, what);
        sp = one_field((vs_storage)s, VS_METRIC_IP, 16, 4000, 2, 1, 100);
        sp.ties = 1;
        snprintf(what, sizeof what, "%s ties", sname((vs_storage)s));
        run_spec(&sp, seed++, what);
    }
}

static void cases_k(void)
{
    char what[160];
    uint64_t seed = 100;
    /* k up to 10,000, below and above the sampling threshold, fused and tile path */
    uint32_t ns[] = {12000, 70001};
    uint32_t ks[] = {1, 1000, 10000};
    for (int s = 0; s < 4; s++)
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 3; b++) {
                spec sp = one_field((vs_storage)s, VS_METRIC_IP, 24, ns[a], 2, 1, ks[b]);
                snprintf(what, sizeof what, "%s n=%u k=%u", sname((vs_storage)s), ns[a], ks[b]);
                run_spec(&sp, seed++, what);
            }
    spec sp = one_field(VS_STORAGE_I8, VS_METRIC_IP, 64, 200003, 3, 1, 10);
    run_spec(&sp, seed++, "i8 n=200003 k=10 (sampled threshold)");
    sp = one_field(VS_STORAGE_F16, VS_METRIC_L2, 64, 200003, 36, 1, 100);
    run_spec(&sp, seed++, "f16 l2 n=200003 nq=36 k=100 (tile, sampled)");
    sp = one_field(VS_STORAGE_F32, VS_METRIC_IP, 8, 50000, 1, 1, 60000);
    sp.k = 10000;
    run_spec(&sp, seed++, "f32 k=10000 > eligible with filter");
}

/* Buffers forced small: the overflow rounds (k-th best of the buffer as the next threshold, then
 * a full-capacity round) on the device, ties included. */
static void cases_overflow(void)
{
    char what[160];
    uint64_t seed = 500;
    for (int s = 0; s < 4; s++)
        for (int t = 0; t < 2; t++) {
            spec sp = one_field((vs_storage)s, VS_METRIC_IP, 9, 40001, t ? 33 : 3, 1, 30);
            sp.ties = t;
            sp.force_cap = 31;
            snprintf(what, sizeof what, "%s forced overflow nq=%u%s", sname((vs_storage)s), sp.nq,
                     t ? " ties" : "");
            run_spec(&sp, seed++, what);
        }
}

static void cases_filters(void)
{
    char what[160];
    uint64_t seed = 200;
    for (int s = 0; s < 4; s++)
        for (int f = 1; f <= 4; f++)
            for (int b = 0; b < 2; b++) {
                uint32_t nq = b ? 37 : 5;
                spec sp = one_field((vs_storage)s, VS_METRIC_IP, 40, 60001, nq, 1, 50);
                sp.filter = f;
                snprintf(what, sizeof what, "%s filter %d nq=%u", sname((vs_storage)s), f, nq);
                run_spec(&sp, seed++, what);
            }
}

/* The MMA scan (one-vector queries over i8 or f16, batches past the fused kernel's 32): odd dims, row
 * counts that are not multiples of its 128-row tiles, query counts that leave a partial 128-query
 * chunk, every metric, filters dense and gathered, k to 10,000, sampled thresholds, ties and
 * forced overflows, MAX with a weight (deleted rows and rows lacking the field: case_churn); equal
 * to the reference, the CPU backend and the tile path. */
static void cases_mma(void)
{
    static const uint32_t dims[] = {1, 7, 129};
    char what[160];
    uint64_t seed = 700;
    for (int st = 1; st <= 2; st++) /* f16, i8 */
        for (size_t d = 0; d < 3; d++)
            for (int m = 0; m < 3; m++) {
                spec sp = one_field((vs_storage)st, (vs_metric)m, dims[d], 3001,
                                    m == 1 ? 130 : 40, 1, 10);
                sp.mma = 1;
                snprintf(what, sizeof what, "mma %s %s d=%u n=3001 nq=%u", sname((vs_storage)st),
                         m == 0 ? "ip" : m == 1 ? "cosine" : "l2", dims[d], sp.nq);
                run_spec(&sp, seed++, what);
            }
    spec sf = one_field(VS_STORAGE_F16, VS_METRIC_IP, 40, 20011, 60, 1, 50);
    sf.filter = 4;
    sf.mma = 1;
    run_spec(&sf, seed++, "mma f16 mixed filters");
    for (int f = 1; f <= 4; f++) {
        /* mixed filters split the batch in groups by their rows: 60 leaves 48 in the dense one */
        spec sp = one_field(VS_STORAGE_I8, VS_METRIC_IP, 40, 20011, f == 4 ? 60 : 37, 1, 50);
        sp.filter = f;
        sp.mma = 1;
        snprintf(what, sizeof what, "mma i8 filter %d", f);
        run_spec(&sp, seed++, what);
    }
    uint32_t ks[] = {1000, 10000};
    for (int i = 0; i < 2; i++) {
        spec sp = one_field(VS_STORAGE_I8, VS_METRIC_IP, 24, 70001, 33, 1, ks[i]);
        sp.mma = 1;
        snprintf(what, sizeof what, "mma i8 n=70001 k=%u (sampled)", ks[i]);
        run_spec(&sp, seed++, what);
    }
    spec sp = one_field(VS_STORAGE_I8, VS_METRIC_IP, 9, 40001, 33, 1, 30);
    sp.ties = 1;
    sp.force_cap = 31;
    sp.mma = 1;
    run_spec(&sp, seed++, "mma i8 ties, forced overflow");
    sp = one_field(VS_STORAGE_I8, VS_METRIC_L2, 16, 5001, 50, 1, 20);
    sp.combine = VS_COMBINE_MAX;
    sp.mma = 1;
    run_spec(&sp, seed++, "mma i8 MAX with a weight");
}

static void cases_multi(void)
{
    char what[160];
    uint64_t seed = 300;
    static const vs_storage pairs[][2] = {{VS_STORAGE_F16, VS_STORAGE_I8},
                                          {VS_STORAGE_F32, VS_STORAGE_B1},
                                          {VS_STORAGE_I8, VS_STORAGE_I8}};
    for (int p = 0; p < 3; p++)
        for (int c = 0; c < 2; c++)
            for (int f = 0; f < 3; f += 2) {
                spec sp;
                memset(&sp, 0, sizeof sp);
                sp.n_fields = 2;
                sp.lay[0] = mk_layout(7, VS_METRIC_IP, pairs[p][0]);
                sp.lay[1] = mk_layout(129, VS_METRIC_L2, pairs[p][1]);
                sp.n = 9000;
                sp.chunk_rows = 512;
                sp.nq = 6;
                sp.vecs = 2;
                sp.k = 20;
                sp.two_terms = 1;
                sp.some_missing = 1;
                sp.combine = c ? VS_COMBINE_MAX : VS_COMBINE_SUM;
                sp.filter = f;
                snprintf(what, sizeof what, "two fields %s+%s %s filter %d", sname(pairs[p][0]),
                         sname(pairs[p][1]), c ? "MAX" : "SUM", f);
                run_spec(&sp, seed++, what);
            }
}

/* Interleaved upserts, deletes and searches, slots reused, growth past the first reservation. */
static void case_churn(vs_storage st_, uint64_t seed)
{
    fx x;
    vs_rng r;
    vs_field_layout lay[2] = {mk_layout(19, VS_METRIC_IP, st_), mk_layout(5, VS_METRIC_L2, VS_STORAGE_F32)};
    char what[96];
    if (!fx_init(&x, &vs_cuda_backend, lay, 2, 6000, 64)) {
        CHECK(0);
        return;
    }
    vs_rng_seed(&r, seed);
    uint64_t next_id = 1;
    uint32_t *slot_of_rank = malloc(6000 * 4), n_live = 0;
    for (int op = 0; op < 3000; op++) {
        double u = vs_rng_uniform(&r);
        if (u < 0.55 || n_live < 10) { /* upsert a new item: reuse a free slot when there is one */
            uint32_t s = x.n_free ? x.free_slots[--x.n_free] : x.view.slot_limit;
            if (s >= 6000)
                continue;
            uint32_t mask = 1u + (uint32_t)vs_rng_below(&r, 3); /* field 0, 1 or both */
            CHECK(fx_put(&x, s, next_id++ * 13, mask, &r, 0));
            slot_of_rank[n_live++] = s;
        } else if (u < 0.85) { /* delete */
            uint32_t i = (uint32_t)vs_rng_below(&r, n_live), s = slot_of_rank[i];
            setbit(x.live, s, 0);
            setbit(x.has[0], s, 0);
            setbit(x.has[1], s, 0);
            slot_of_rank[i] = slot_of_rank[--n_live];
            x.free_slots[x.n_free++] = s;
            x.ops->slots_changed(x.store, &s, 1);
        } else { /* replace an item's vectors in place (same id) */
            uint32_t s = slot_of_rank[vs_rng_below(&r, n_live)];
            CHECK(fx_put(&x, s, fx_id(&x, s), 3, &r, 0));
        }
        if (op % 250 == 249) {
            qset q;
            spec sp;
            vs_slotset sets[5];
            uint64_t *bm[2];
            uint32_t *lists[2];
            memset(&sp, 0, sizeof sp);
            sp.n_fields = 2;
            sp.nq = op % 500 == 249 ? 40 : 4; /* now and then a batch for the tile path (and
                                                  the MMA scan on i8 when one field is read) */
            sp.vecs = 1;
            sp.k = op % 500 == 499 ? 1000 : 10;
            sp.two_terms = 1;
            sp.combine = VS_COMBINE_SUM;
            sp.filter = op % 1000 == 999 ? 4 : 0;
            build_queries(&q, &x, &sp, &r, sets, bm, lists);
            snprintf(what, sizeof what, "churn %s op %d", sname(st_), op);
            CHECK(scan_check(&x, &q.b, what, NULL, NULL) == 0);
            /* and one field alone (the fused path, or the MMA scan) */
            for (uint32_t i = 0; i < q.b.n_queries; i++)
                q.q[i].n_terms = 1;
            CHECK(scan_check(&x, &q.b, what, NULL, NULL) == 0);
            qs_free(&q);
            free(bm[0]);
            free(bm[1]);
            free(lists[0]);
            free(lists[1]);
        }
    }
    free(slot_of_rank);
    fx_free(&x);
}

/* ===== The selection kernels alone, against a host sort ===== */

/* Device memory of bytes, holding h's bytes when h is not NULL. */
static void *dev_copy(const void *h, size_t bytes)
{
    void *d = NULL;
    if (cudaMalloc(&d, bytes ? bytes : 16) != cudaSuccess)
        return NULL;
    if (h && bytes)
        cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice);
    return d;
}

static const uint64_t *sel_ids;
static int sel_cmp(const void *a, const void *b)
{
    const vs_cu_cand_dev *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return sel_ids[x->slot] < sel_ids[y->slot] ? -1 : sel_ids[x->slot] > sel_ids[y->slot];
}

/* Buffers of candidates with heavy ties: the j-th best without sorting (kth), the bitonic block
 * sort, CUB's sorts and set_thr must all agree with qsort. */
static void case_select_kernels(uint64_t seed)
{
    enum { NB = 6, CAP = 3000, SLOTS = 4096 };
    vs_rng r;
    vs_rng_seed(&r, seed);
    vs_cu_cand_dev *cand = malloc((size_t)NB * CAP * sizeof *cand);
    uint64_t *ids = malloc(SLOTS * 8);
    uint32_t cnt[NB], act[NB], rank[NB], order[SLOTS];
    uint8_t mode[NB];
    for (uint32_t i = 0; i < SLOTS; i++) {
        ids[i] = vs_rng_next(&r);
        order[i] = i;
    }
    for (uint32_t p = 0; p < NB; p++) {
        /* 0 and 1 candidates, small buffers (the block sort's), and one past its capacity */
        cnt[p] = p == 0 ? 0 : p == 1 ? 1 : p == NB - 1 ? 5000 : 1 + (uint32_t)vs_rng_below(&r, 2047);
        uint32_t held = cnt[p] < CAP ? cnt[p] : CAP;
        for (uint32_t i = SLOTS; i > 1; i--) { /* distinct slots per buffer */
            uint32_t j = (uint32_t)vs_rng_below(&r, i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
        for (uint32_t i = 0; i < held; i++)
            cand[(size_t)p * CAP + i] = (vs_cu_cand_dev){(float)vs_rng_below(&r, 9) - 4.0f, order[i]};
        act[p] = NB - 1 - p;
        mode[p] = p == 3 ? VS_CU_THR_KEEP : p == 4 ? VS_CU_THR_NEG_INF : VS_CU_THR_RANK;
        rank[p] = held ? 1 + (uint32_t)vs_rng_below(&r, held < 200 ? held : 200) : 1;
    }
    rank[2] = 100000; /* past what is held: no threshold */
    uint64_t *d_ids = dev_copy(ids, SLOTS * 8);
    uint64_t *d_chunks = dev_copy(&d_ids, sizeof d_ids);
    vs_cu_cand_dev *d_cand = dev_copy(cand, (size_t)NB * CAP * sizeof *cand);
    uint32_t *d_cnt = dev_copy(cnt, sizeof cnt), *d_act = dev_copy(act, sizeof act),
             *d_rank = dev_copy(rank, sizeof rank);
    uint8_t *d_mode = dev_copy(mode, sizeof mode);
    vs_cu_thr_dev init[NB], ta[NB], tb[NB];
    for (uint32_t q = 0; q < NB; q++)
        init[q] = (vs_cu_thr_dev){12345.0f, 0, 77};
    vs_cu_thr_dev *d_thr = dev_copy(init, sizeof init);
    vs_cu_common c;
    memset(&c, 0, sizeof c);
    c.id_chunks = (uint64_t *const *)d_chunks;
    c.chunk_shift = 12;
    c.cand = d_cand;
    c.cap = CAP;
    c.cnt = d_cnt;
    vs_cu_sortbuf sb, ss;
    memset(&sb, 0, sizeof sb);
    size_t items = (size_t)NB * CAP, tbytes = 0;
    CHECK(vs_cu_sort_temp_bytes(items, NB, &tbytes) == cudaSuccess);
    sb.key_id = dev_copy(NULL, items * 8);
    sb.key_id_out = dev_copy(NULL, items * 8);
    sb.key_s = dev_copy(NULL, items * 4);
    sb.key_s_out = dev_copy(NULL, items * 4);
    sb.v0 = dev_copy(NULL, items * 4);
    sb.v1 = dev_copy(NULL, items * 4);
    sb.v2 = dev_copy(NULL, items * 4);
    sb.beg = dev_copy(NULL, NB * 4);
    sb.end = dev_copy(NULL, NB * 4);
    sb.temp = dev_copy(NULL, tbytes);
    sb.temp_bytes = tbytes;
    ss = sb;
    ss.v2 = dev_copy(NULL, items * 4);
    CHECK(vs_cu_launch_kth(&c, NB, d_act, d_mode, d_rank, d_thr, 0) == cudaSuccess);
    cudaMemcpy(ta, d_thr, sizeof ta, cudaMemcpyDeviceToHost);
    cudaMemcpy(d_thr, init, sizeof init, cudaMemcpyHostToDevice);
    CHECK(vs_cu_sort(&c, NB, &sb, 0) == cudaSuccess);
    CHECK(vs_cu_launch_set_thr(&c, &sb, NB, d_act, d_mode, d_rank, d_thr, 0) == cudaSuccess);
    cudaMemcpy(tb, d_thr, sizeof tb, cudaMemcpyDeviceToHost);
    /* the block sort takes buffers of at most VS_CU_SMALL_SORT: all but the last */
    CHECK(vs_cu_small_sort(&c, NB - 1, &ss, 0) == cudaSuccess);
    uint32_t *v2 = malloc(items * 4), *v2s = malloc(items * 4), *v2k[4];
    cudaMemcpy(v2, sb.v2, items * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(v2s, ss.v2, items * 4, cudaMemcpyDeviceToHost);
    /* the top-k block sort, every buffer (the last past VS_CU_SMALL_SORT) */
    static const uint32_t topk[4] = {1, 10, 1000, VS_CU_TOPK_SORT_MAX};
    for (int t = 0; t < 4; t++) {
        CHECK(vs_cu_topk_sort(&c, NB, topk[t], &ss, 0) == cudaSuccess);
        v2k[t] = malloc(items * 4);
        cudaMemcpy(v2k[t], ss.v2, items * 4, cudaMemcpyDeviceToHost);
    }
    CHECK(vs_cu_topk_sort(&c, NB, VS_CU_TOPK_SORT_MAX + 1, &ss, 0) == cudaErrorInvalidValue);
    (void)cudaGetLastError();
    CHECK(cudaGetLastError() == cudaSuccess);
    sel_ids = ids;
    for (uint32_t p = 0; p < NB; p++) {
        uint32_t held = cnt[p] < CAP ? cnt[p] : CAP, q = act[p];
        vs_cu_cand_dev *b = cand + (size_t)p * CAP, *sorted = malloc((held ? held : 1) * sizeof *b);
        memcpy(sorted, b, held * sizeof *b);
        qsort(sorted, held, sizeof *b, sel_cmp);
        for (uint32_t i = 0; i < held; i++) {
            CHECKF(cand[v2[(size_t)p * CAP + i]].slot == sorted[i].slot, "cub sort buffer %u rank %u", p, i);
            if (p < NB - 1)
                CHECKF(cand[v2s[(size_t)p * CAP + i]].slot == sorted[i].slot,
                       "small sort buffer %u rank %u", p, i);
            for (int t = 0; t < 4; t++)
                if (i < topk[t])
                    CHECKF(cand[v2k[t][(size_t)p * CAP + i]].slot == sorted[i].slot,
                           "top-%u sort buffer %u rank %u", topk[t], p, i);
        }
        vs_cu_thr_dev want = init[q];
        if (mode[p] == VS_CU_THR_NEG_INF || (mode[p] == VS_CU_THR_RANK && rank[p] > held))
            want = (vs_cu_thr_dev){-INFINITY, 0, UINT64_MAX};
        else if (mode[p] == VS_CU_THR_RANK)
            want = (vs_cu_thr_dev){sorted[rank[p] - 1].s, 0, ids[sorted[rank[p] - 1].slot]};
        CHECKF(ta[q].s == want.s && ta[q].id == want.id, "kth buffer %u: %g/%llu, want %g/%llu", p,
               ta[q].s, (unsigned long long)ta[q].id, want.s, (unsigned long long)want.id);
        CHECKF(tb[q].s == want.s && tb[q].id == want.id, "set_thr buffer %u", p);
        free(sorted);
    }
    void *bufs[] = {d_ids, d_chunks, d_cand, d_cnt, d_act, d_rank, d_mode, d_thr, sb.key_id,
                    sb.key_id_out, sb.key_s, sb.key_s_out, sb.v0, sb.v1, sb.v2, sb.beg, sb.end,
                    sb.temp, ss.v2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        cudaFree(bufs[i]);
    free(cand);
    free(ids);
    free(v2);
    free(v2s);
    for (int t = 0; t < 4; t++)
        free(v2k[t]);
}

static void case_empty(void)
{
    fx x;
    qset q;
    vs_rng r;
    vs_field_layout l = mk_layout(8, VS_METRIC_IP, VS_STORAGE_I8);
    vs_cand out[4];
    uint32_t cnt = 7;
    vs_status st;
    vs_rng_seed(&r, 5);
    if (!fx_init(&x, &vs_cuda_backend, &l, 1, 64, 0)) {
        CHECK(0);
        return;
    }
    memset(&q, 0, sizeof q);
    qs_vectors(&q, &x, 0, 1, &r);
    q.t[0][0] = (vs_scan_term){0, 0, 1, 1.0f};
    q.q[0] = (vs_scan_query){q.t[0], 1, VS_COMBINE_SUM, NULL, 4};
    q.b.n_queries = 1;
    q.b.queries = q.q;
    CHECK(x.ops->reserve(x.store, 0, &st) == VS_OK);
    CHECK(x.ops->scan(x.store, &x.view, &q.b, out, 4, &cnt, &st) == VS_OK && cnt == 0);
    qs_free(&q);
    fx_free(&x);
}

/* Asking for more than the device holds is RESOURCE_EXHAUSTED with the sizes, and the store
 * stays usable. */
static void case_oom(void)
{
    vs_field_layout l = mk_layout(4096, VS_METRIC_IP, VS_STORAGE_F32);
    vs_index_options opt = {VS_DEVICE_CUDA, 0, 0, 0};
    void *store = NULL;
    vs_status st;
    if (getenv("VS_GPU_TEST_SKIP_OOM"))
        return;
    CHECK(vs_cuda_backend.create(&l, 1, &opt, &store, &st) == VS_OK);
    if (!store)
        return;
    vs_err e = vs_cuda_backend.reserve(store, 4000000000u, &st);
    CHECKF(e == VS_ERR_RESOURCE_EXHAUSTED, "reserve of 64 TB: %d %s", (int)e, st.msg);
    CHECKF(strstr(st.msg, "out of device memory") && strstr(st.msg, "bytes"), "%s", st.msg);
    fprintf(stderr, "out of memory, as expected: %s\n", st.msg);
    vs_cuda_backend.destroy(store);
}

/* Device memory as /metrics reports it: what a store holds grows with its rows, and the device's
 * free memory falls by as much. */
static void case_device_memory(void)
{
    vs_field_layout l[2] = {mk_layout(129, VS_METRIC_L2, VS_STORAGE_I8),
                            mk_layout(7, VS_METRIC_IP, VS_STORAGE_F32)};
    vs_index_options opt = {VS_DEVICE_CUDA, 0, 1024, 0};
    void *store = NULL;
    vs_status st;
    uint64_t fr = 0, tot = 0, held_a, held_b, free_a = 0, free_b = 0;
    CHECK(vs_cuda_memory_info(0, &fr, &tot) && tot > 0 && fr <= tot);
    CHECK(vs_cuda_backend.device_bytes != NULL);
    CHECK(vs_cuda_backend.create(l, 2, &opt, &store, &st) == VS_OK);
    if (!store)
        return;
    CHECK(vs_cuda_backend.reserve(store, 1000, &st) == VS_OK);
    held_a = vs_cuda_backend.device_bytes(store);
    CHECK(vs_cuda_memory_info(0, &free_a, &fr) && fr == tot);
    const uint64_t stride = 144 + 16 + 32; /* i8 d=129: 144 code bytes + constants; f32 d=7: 32 */
    CHECKF(free_a <= tot && held_a <= tot, "held %llu free %llu total %llu",
           (unsigned long long)held_a, (unsigned long long)free_a, (unsigned long long)tot);
    CHECKF(held_a >= 1024 * stride, "held %llu for one chunk", (unsigned long long)held_a);
    CHECK(vs_cuda_backend.reserve(store, 100000, &st) == VS_OK); /* 97 more chunks of 1024 */
    held_b = vs_cuda_backend.device_bytes(store);
    CHECK(vs_cuda_memory_info(0, &free_b, &fr));
    const uint64_t grown = 97ull * 1024 * (stride + 8);         /* rows and ids */
    CHECKF(held_b >= held_a + grown, "held %llu -> %llu, grown by %llu", (unsigned long long)held_a,
           (unsigned long long)held_b, (unsigned long long)grown);
    CHECKF(free_b + grown * 9 / 10 <= free_a, "free %llu -> %llu after %llu more bytes",
           (unsigned long long)free_a, (unsigned long long)free_b, (unsigned long long)grown);
    vs_cuda_backend.destroy(store);
}

int main(void)
{
    char why[160];
#ifdef VS_GPU_TEST_FULL_GATE /* the whole suite on the CPU emulator takes minutes: on request */
    if (!getenv("VECSCAN_EMU_FULL"))
        return vs_test_skip("test_cuda_emu_full",
                            "set VECSCAN_EMU_FULL=1 to run the whole GPU suite on the emulator");
#endif
    if (vs_cuda_device_count(why, sizeof why) == 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "no CUDA device (%s)", why);
        return vs_test_skip("test_gpu_backend", msg);
    }
    vs_cuda_device_name(0, why, sizeof why);
    fprintf(stderr, "test_gpu_backend on %s%s\n", why,
            cpu_ops() ? ", compared with the CPU backend" : "");
    case_empty();
    case_device_memory();
    case_select_kernels(77);
    if (getenv("VS_GPU_TEST_QUICK")) { /* a short run, for compute-sanitizer */
        spec sp = one_field(VS_STORAGE_I8, VS_METRIC_IP, 129, 3001, 3, 1, 10);
        run_spec(&sp, 1, "quick i8 fused");
        sp = one_field(VS_STORAGE_F16, VS_METRIC_L2, 7, 3001, 40, 1, 10);
        run_spec(&sp, 2, "quick f16 tile");
        sp = one_field(VS_STORAGE_B1, VS_METRIC_IP, 100, 40001, 5, 1, 100);
        sp.filter = 4;
        run_spec(&sp, 3, "quick b1 filters, sampled");
        sp = one_field(VS_STORAGE_I8, VS_METRIC_IP, 9, 40001, 3, 1, 30);
        sp.ties = 1;
        sp.force_cap = 31;
        run_spec(&sp, 4, "quick i8 ties, forced overflow");
        case_churn(VS_STORAGE_F32, 4);
        sp = one_field(VS_STORAGE_I8, VS_METRIC_L2, 129, 3001, 130, 1, 10);
        sp.filter = 4;
        sp.mma = 1;
        run_spec(&sp, 5, "quick i8 MMA scan, mixed filters");
        sp = one_field(VS_STORAGE_F16, VS_METRIC_IP, 7, 3001, 40, 1, 10);
        sp.mma = 1;
        run_spec(&sp, 8, "quick f16 MMA scan, d=7 (a half k step)");
        sp = one_field(VS_STORAGE_I8, VS_METRIC_IP, 9, 6001, 33, 1, 30);
        sp.ties = 1;
        sp.force_cap = 31;
        sp.mma = 1;
        run_spec(&sp, 6, "quick i8 MMA scan, ties, forced overflow");
        sp = one_field(VS_STORAGE_F32, VS_METRIC_IP, 24, 12000, 2, 1, 1000);
        run_spec(&sp, 7, "quick f32 k=1000 of 12000 buffered (the top-k block sort)");
        return vs_test_finish("test_gpu_backend");
    }
    cases_mma();
    cases_shapes();
    cases_k();
    cases_filters();
    cases_overflow();
    cases_multi();
    for (int s = 0; s < 4; s++)
        case_churn((vs_storage)s, 400 + (uint64_t)s);
    case_oom();
    return vs_test_finish("test_gpu_backend");
}
