/*
 * recall.c: plain and tie-aware recall@k (see recall.h for the rule).
 *
 * Per query: the returned ids (first k) are sorted and deduplicated so a repeated id counts once,
 * the ground truth's first k are sorted for binary search, and only an id missing from the ground
 * truth costs a float64 score recomputation from the base vectors, so evaluating k = 10,000 stays
 * O(k log k) plus the few recomputations.
 */
#include "recall.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

double vs_exact_score(const float *a, const float *b, uint32_t dim, vs_score_metric metric)
{
    double s = 0;
    if (metric == VS_SCORE_L2) {
        for (uint32_t i = 0; i < dim; i++) {
            double t = (double)a[i] - (double)b[i];
            s += t * t;
        }
        return s;
    }
    double na = 0, nb = 0;
    for (uint32_t i = 0; i < dim; i++) {
        s += (double)a[i] * (double)b[i];
        na += (double)a[i] * (double)a[i];
        nb += (double)b[i] * (double)b[i];
    }
    if (metric == VS_SCORE_IP)
        return s;
    if (na == 0 || nb == 0)
        return 0;
    return s / (sqrt(na) * sqrt(nb));
}

/* qsort order of uint64. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Whether the sorted set[0 .. n) holds v. */
static bool sorted_has(const uint64_t *set, size_t n, uint64_t v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && set[lo] == v;
}

vs_err vs_recall_query(const uint64_t *ids, uint32_t n_ids, const int32_t *gt_ids,
                       const float *gt_scores, uint32_t gt_n, uint32_t k,
                       const vs_recall_base *base, const float *query, double *recall,
                       vs_status *st)
{
    *recall = 0;
    if (k == 0 || k > gt_n)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "recall@%u: k must be 1 .. %u (the ground truth's ids per query)", k,
                             gt_n);
    if (gt_scores && (!base || !base->vectors || !query))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "tie-aware recall needs the base vectors and the query beside the "
                             "ground-truth scores");
    uint64_t stack[512], *got = stack;
    if (2 * (size_t)k > sizeof stack / sizeof stack[0] && !(got = malloc(2 * (size_t)k * 8)))
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "recall@%u: out of memory", k);
    uint64_t *truth = got + k;
    size_t n_got = 0, n_truth = 0;
    for (uint32_t i = 0; i < k && i < n_ids; i++)
        if (ids[i] != VS_RECALL_NO_ID)
            got[n_got++] = ids[i];
    for (uint32_t i = 0; i < k; i++)
        if (gt_ids[i] >= 0)
            truth[n_truth++] = (uint64_t)gt_ids[i];
    qsort(got, n_got, sizeof *got, cmp_u64);
    qsort(truth, n_truth, sizeof *truth, cmp_u64);
    /* s_k exists only when the ground truth fills its first k: otherwise there is no boundary. */
    double s_k = gt_scores && n_truth == k ? (double)gt_scores[k - 1] : NAN;
    size_t hits = 0;
    for (size_t i = 0; i < n_got; i++) {
        if (i > 0 && got[i] == got[i - 1])
            continue;
        if (sorted_has(truth, n_truth, got[i])) {
            hits++;
        } else if (isfinite(s_k) && got[i] < base->rows) {
            double s = vs_exact_score(query, base->vectors + got[i] * base->dim, base->dim,
                                      base->metric);
            if (fabs(s - s_k) <= VS_RECALL_TIE_RTOL * fabs(s_k))
                hits++;
        }
    }
    *recall = n_truth ? (double)hits / (double)n_truth : 1.0;
    if (got != stack)
        free(got);
    return VS_OK;
}

vs_err vs_recall_mean(const uint64_t *ids, uint32_t ids_stride, const int32_t *gt_ids,
                      const float *gt_scores, uint32_t gt_stride, uint64_t n_queries, uint32_t k,
                      const vs_recall_base *base, const float *queries, double *mean,
                      double *per_query, vs_status *st)
{
    *mean = 0;
    if (gt_scores && (!base || !queries))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "tie-aware recall needs the base vectors and the queries beside the "
                             "ground-truth scores");
    double sum = 0;
    for (uint64_t q = 0; q < n_queries; q++) {
        double r;
        vs_err e = vs_recall_query(ids + q * ids_stride, ids_stride, gt_ids + q * gt_stride,
                                   gt_scores ? gt_scores + q * gt_stride : NULL, gt_stride, k,
                                   base, queries ? queries + q * (base ? base->dim : 0) : NULL, &r,
                                   st);
        if (e != VS_OK)
            return e;
        if (per_query)
            per_query[q] = r;
        sum += r;
    }
    *mean = n_queries ? sum / (double)n_queries : 0;
    return VS_OK;
}
