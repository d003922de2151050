/*
 * search.c: a batch of queries from the caller's terms to the final hits.
 *
 * 1. Check everything (k, terms, weights, finite values, zero cosine queries) before any work.
 * 2. Split each INTERLEAVE query into one scan query per term: the backend only knows SUM and MAX.
 * 3. Prepare every query vector once per field for its storage (normalise for cosine, i8 codes,
 *    b1 bits), grouped by field and in query order, so the backend scores all vectors of a field
 *    against a tile of rows in one pass.
 * 4. The backend scans and returns k x rerank_factor candidates per scan query.
 * 5. Rerank: rescore the candidates exactly from the f32 copies (double precision), keep k.
 * 6. INTERLEAVE: merge the per-term lists, highest weight first, skipping ids already taken.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "index_internal.h"
#include "quant.h"
#include "topk.h"

/* Candidates a batch may ask of the backend in all (x 16 bytes per scan thread). */
#define MAX_BATCH_CANDIDATES (16u << 20)

/* The prepared query vectors of one field, with the storage they own. */
typedef struct field_prep {
    uint32_t n, cap;
    float *f;
    int8_t *c;
    float *scale, *sum, *norm2;
    int32_t *csum;
    uint64_t *bits;
} field_prep;

static void prep_free(field_prep *p)
{
    free(p->f);
    free(p->c);
    free(p->scale);
    free(p->sum);
    free(p->norm2);
    free(p->csum);
    free(p->bits);
}

static vs_err check_query(const vs_index *ix, const vs_query *q, size_t qi, vs_status *st)
{
    if (q->n_terms < 1 || q->n_terms > VS_MAX_TERMS)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "query %zu: %u terms, expected 1..%d", qi,
                             q->n_terms, VS_MAX_TERMS);
    if ((unsigned)q->combine > VS_COMBINE_INTERLEAVE)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "query %zu: unknown combine mode", qi);
    const vs_slotset *a = q->allowed;
    if (a && a->kind != VS_SLOTSET_ALL && a->kind != VS_SLOTSET_BITMAP && a->kind != VS_SLOTSET_LIST)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "query %zu: unknown allowed-set kind", qi);
    if (a && a->kind == VS_SLOTSET_LIST) /* the gather reads the listed rows: they must exist */
        for (uint64_t i = 0; i < a->count; i++)
            if (a->slots[i] >= ix->slot_limit || (i && a->slots[i] <= a->slots[i - 1]))
                return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                     "query %zu: allowed slot list is not strictly ascending below %u at %llu",
                                     qi, ix->slot_limit, (unsigned long long)i);
    for (uint32_t t = 0; t < q->n_terms; t++) {
        const vs_term *term = &q->terms[t];
        if (term->field >= ix->n_fields)
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "query %zu, term %u: no field %u", qi, t,
                                 term->field);
        const vs_field_spec *sp = &ix->spec[term->field];
        if (term->n_vectors < 1 || term->n_vectors > VS_MAX_TERM_VECTORS)
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                 "query %zu, term %u: %u vectors, expected 1..%d", qi, t,
                                 term->n_vectors, VS_MAX_TERM_VECTORS);
        if (!isfinite(term->weight) || !(term->weight > 0))
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                 "query %zu, term %u: weight must be finite and > 0", qi, t);
        for (uint32_t v = 0; v < term->n_vectors; v++) {
            const float *x = term->vectors + (size_t)v * sp->dim;
            if (!vs_all_finite(x, sp->dim))
                return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                     "query %zu, field '%s': NaN or infinite value", qi, sp->name);
            if (sp->metric == VS_METRIC_COSINE && !(vs_norm2(x, sp->dim) > 0))
                return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                     "query %zu, field '%s': a zero vector has no cosine", qi, sp->name);
        }
    }
    return VS_OK;
}

/* Allocates room for n vectors of layout l. */
static bool prep_alloc(field_prep *p, const vs_field_layout *l, uint32_t n)
{
    memset(p, 0, sizeof *p);
    if (!n)
        return true;
    p->cap = n;
    p->f = malloc((size_t)n * l->dim * sizeof(float));
    p->norm2 = malloc(n * sizeof(float));
    if (!p->f || !p->norm2)
        return false;
    if (l->storage == VS_STORAGE_I8) {
        p->c = malloc((size_t)n * l->dim);
        p->scale = malloc(n * sizeof(float));
        p->sum = malloc(n * sizeof(float));
        p->csum = malloc(n * sizeof(int32_t));
        if (!p->c || !p->scale || !p->sum || !p->csum)
            return false;
    }
    if (l->storage == VS_STORAGE_B1) {
        p->bits = malloc((size_t)n * l->b1_words * sizeof(uint64_t));
        if (!p->bits)
            return false;
    }
    return true;
}

/* Appends one query vector to its field's preparation; returns its index. */
static uint32_t prep_add(field_prep *p, const vs_field_layout *l, const float *x, float *work)
{
    uint32_t i = p->n++, d = l->dim;
    float *f = p->f + (size_t)i * d;
    if (l->metric == VS_METRIC_COSINE)
        vs_normalize(x, d, f);
    else
        memcpy(f, x, d * sizeof(float));
    p->norm2[i] = (float)vs_norm2(f, d);
    if (l->storage == VS_STORAGE_I8)
        vs_i8_encode_query(f, d, p->c + (size_t)i * d, &p->scale[i], &p->sum[i], &p->csum[i]);
    if (l->storage == VS_STORAGE_B1)
        vs_b1_encode(d, f, p->bits + (size_t)i * l->b1_words, work);
    return i;
}

/* The exact score of one term on slot s from the f32 copy: max over its prepared vectors. The
 * dot products run on the host's SIMD kernels in f32 (as f32 storage scores); l2 combines them in
 * double: -(|q|^2 - 2 q.x + |x|^2). */
static double exact_term(const vs_index *ix, const field_prep *p, const vs_scan_term *t, uint32_t s,
                         float *row)
{
    uint32_t f = t->field, d = ix->spec[f].dim;
    const float *x = vs_ix_rerank_row(ix, f, s);
    if (!x) {
        ix->be->read_row(ix->store, f, s, row);
        x = row;
    }
    float dots[VS_MAX_TERM_VECTORS], x2 = 0;
    bool l2 = ix->spec[f].metric == VS_METRIC_L2;
    ix->host->f32_tile(x, 1, d, p->f + (size_t)t->first * d, t->n_vecs, dots, 1);
    if (l2)
        ix->host->f32_tile(x, 1, d, x, 1, &x2, 1);
    double best = -INFINITY;
    for (uint32_t v = 0; v < t->n_vecs; v++) {
        double sc = l2 ? -((double)p->norm2[t->first + v] - 2.0 * dots[v] + x2) : dots[v];
        best = sc > best ? sc : best;
    }
    return best;
}

/* Rescores candidates c[0..n) of scan query sq exactly and sorts them best first. */
static void rerank(const vs_index *ix, const field_prep *prep, const vs_scan_query *sq, vs_cand *c,
                   uint32_t n, float *row)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t s = c[i].slot;
        double num = 0, den = 0, best = -INFINITY;
        for (uint32_t t = 0; t < sq->n_terms; t++) {
            const vs_scan_term *term = &sq->terms[t];
            if (!vs_bit_get(ix->has[term->field], s))
                continue;
            double ts = exact_term(ix, &prep[term->field], term, s, row);
            num += term->weight * ts;
            den += term->weight;
            best = term->weight * ts > best ? term->weight * ts : best;
        }
        c[i].score = (float)(sq->combine == VS_COMBINE_MAX ? best : num / den);
    }
    vs_cand_sort(c, n);
}

/* Whether any term of sq reads a field kept with a rerank copy, and whether one is b1. */
static void rerank_fields(const vs_index *ix, const vs_query *q, bool *has_copy, bool *has_b1)
{
    for (uint32_t t = 0; t < q->n_terms; t++) {
        const vs_field_spec *sp = &ix->spec[q->terms[t].field];
        *has_copy |= sp->rerank;
        *has_b1 |= sp->storage == VS_STORAGE_B1;
    }
}

/* Merges the per-term lists of an INTERLEAVE query into hits (see DESIGN.md section 3). */
static uint32_t interleave(const vs_query *q, vs_cand *const *lists, const uint32_t *lens, uint32_t k,
                           vs_hit *hits)
{
    uint32_t order[VS_MAX_TERMS], pos[VS_MAX_TERMS] = {0}, nt = q->n_terms, n = 0;
    for (uint32_t t = 0; t < nt; t++)
        order[t] = t;
    for (uint32_t i = 1; i < nt; i++) /* stable: highest weight first, then term order */
        for (uint32_t j = i; j > 0 && q->terms[order[j]].weight > q->terms[order[j - 1]].weight; j--) {
            uint32_t tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    bool progress = true;
    while (n < k && progress) {
        progress = false;
        for (uint32_t oi = 0; oi < nt && n < k; oi++) {
            uint32_t t = order[oi];
            while (pos[t] < lens[t]) {
                const vs_cand *c = &lists[t][pos[t]++];
                bool taken = false;
                for (uint32_t j = 0; j < n && !taken; j++)
                    taken = hits[j].id == c->id;
                if (!taken) {
                    hits[n].id = c->id;
                    hits[n].score = c->score * q->terms[t].weight;
                    n++;
                    progress = true;
                    break;
                }
            }
        }
    }
    return n;
}

vs_err vs_index_search(vs_index *ix, const vs_query *queries, size_t n_queries,
                       const vs_search_params *params, vs_hit *hits, uint32_t *counts, vs_status *st)
{
    uint32_t k = params ? params->k : 0;
    if (k < 1 || k > VS_MAX_K)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "k = %u is outside 1..%d", k, VS_MAX_K);
    if (n_queries == 0)
        return VS_OK;
    size_t n_scan = 0;
    uint32_t n_vec[VS_MAX_FIELDS] = {0};
    for (size_t q = 0; q < n_queries; q++) {
        vs_err e = check_query(ix, &queries[q], q, st);
        if (e)
            return e;
        n_scan += queries[q].combine == VS_COMBINE_INTERLEAVE ? queries[q].n_terms : 1;
        for (uint32_t t = 0; t < queries[q].n_terms; t++)
            n_vec[queries[q].terms[t].field] += queries[q].terms[t].n_vectors;
    }

    /* Candidates per scan query: k, or k x rerank factor where rerank applies. */
    uint32_t kc = k;
    bool any_rerank = false;
    for (size_t q = 0; q < n_queries; q++) {
        bool copy = false, b1 = false;
        rerank_fields(ix, &queries[q], &copy, &b1);
        uint32_t rf = params->rerank_factor ? params->rerank_factor : (b1 ? 10 : 1);
        if (copy && (rf > 1 || b1)) {
            any_rerank = true;
            uint64_t want = (uint64_t)k * rf;
            if (want > ix->count)
                want = ix->count > k ? ix->count : k;
            if (want > kc)
                kc = (uint32_t)(want < UINT32_MAX ? want : UINT32_MAX);
        }
    }
    if ((uint64_t)kc * n_scan > MAX_BATCH_CANDIDATES)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                             "batch asks for %llu candidates (queries x k x rerank factor); the limit is %u",
                             (unsigned long long)kc * n_scan, MAX_BATCH_CANDIDATES);

    vs_err e = VS_OK;
    field_prep prep[VS_MAX_FIELDS];
    memset(prep, 0, sizeof prep);
    vs_scan_query *sq = calloc(n_scan, sizeof *sq);
    vs_scan_term *terms = calloc(n_scan * VS_MAX_TERMS, sizeof *terms);
    vs_cand *cand = malloc((size_t)kc * n_scan * sizeof *cand);
    uint32_t *ccount = calloc(n_scan, sizeof *ccount);
    uint32_t max_dim = 1;
    for (uint32_t f = 0; f < ix->n_fields; f++)
        max_dim = ix->spec[f].dim > max_dim ? ix->spec[f].dim : max_dim;
    float *work = malloc((vs_b1_rot_len(max_dim) + max_dim) * sizeof(float));
    bool ok = sq && terms && cand && ccount && work;
    for (uint32_t f = 0; f < ix->n_fields && ok; f++)
        ok = prep_alloc(&prep[f], &ix->layout[f], n_vec[f]);
    if (!ok) {
        e = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory preparing %zu queries", n_queries);
        goto done;
    }

    /* Scan queries, in caller order (an INTERLEAVE query gives one per term). */
    size_t si = 0;
    for (size_t q = 0; q < n_queries; q++) {
        const vs_query *uq = &queries[q];
        bool split = uq->combine == VS_COMBINE_INTERLEAVE;
        for (uint32_t t = 0; t < uq->n_terms; t++) {
            const vs_term *ut = &uq->terms[t];
            const vs_field_layout *l = &ix->layout[ut->field];
            vs_scan_query *s = &sq[si];
            vs_scan_term *st_term = &terms[si * VS_MAX_TERMS + s->n_terms];
            if (s->n_terms == 0) {
                s->terms = st_term;
                s->combine = split ? VS_COMBINE_SUM : uq->combine;
                s->allowed = uq->allowed;
                s->k = kc;
            }
            st_term->field = ut->field;
            st_term->weight = split ? 1.0f : ut->weight;
            st_term->n_vecs = ut->n_vectors;
            for (uint32_t v = 0; v < ut->n_vectors; v++) {
                uint32_t idx = prep_add(&prep[ut->field], l, ut->vectors + (size_t)v * l->dim, work);
                if (v == 0)
                    st_term->first = idx;
            }
            s->n_terms++;
            if (split)
                si++;
        }
        if (!split)
            si++;
    }

    vs_scan_batch batch = {.n_queries = (uint32_t)n_scan, .queries = sq};
    for (uint32_t f = 0; f < ix->n_fields; f++) {
        vs_field_queries *fq = &batch.fq[f];
        fq->n = prep[f].n;
        fq->f = prep[f].f;
        fq->c = prep[f].c;
        fq->scale = prep[f].scale;
        fq->sum = prep[f].sum;
        fq->csum = prep[f].csum;
        fq->bits = prep[f].bits;
        fq->norm2 = prep[f].norm2;
    }
    vs_slot_view view;
    vs_ix_slot_view(ix, &view);
    e = ix->be->scan(ix->store, &view, &batch, cand, kc, ccount, st);
    if (e)
        goto done;

    if (any_rerank)
        for (size_t s = 0; s < n_scan; s++)
            rerank(ix, prep, &sq[s], cand + s * kc, ccount[s], work + vs_b1_rot_len(max_dim));

    si = 0;
    for (size_t q = 0; q < n_queries; q++) {
        vs_hit *out = hits + q * k;
        if (queries[q].combine == VS_COMBINE_INTERLEAVE) {
            vs_cand *lists[VS_MAX_TERMS];
            uint32_t lens[VS_MAX_TERMS];
            for (uint32_t t = 0; t < queries[q].n_terms; t++) {
                lists[t] = cand + (si + t) * kc;
                lens[t] = ccount[si + t] < k ? ccount[si + t] : k;
            }
            counts[q] = interleave(&queries[q], lists, lens, k, out);
            si += queries[q].n_terms;
        } else {
            uint32_t n = ccount[si] < k ? ccount[si] : k;
            for (uint32_t i = 0; i < n; i++) {
                out[i].id = cand[si * kc + i].id;
                out[i].score = cand[si * kc + i].score;
            }
            counts[q] = n;
            si++;
        }
    }

done:
    for (uint32_t f = 0; f < ix->n_fields; f++)
        prep_free(&prep[f]);
    free(sq);
    free(terms);
    free(cand);
    free(ccount);
    free(work);
    return e;
}
