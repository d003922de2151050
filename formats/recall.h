/*
 * recall.h: recall of search results against ground truth, and exact ground truth by brute force.
 *
 * Scores follow the convention of the ground-truth files this project reads (texmex-style
 * *.scores.fvecs beside gt-*.ivecs): squared L2 distance (lower is better), cosine similarity
 * and inner product (higher is better).
 *
 * Tie-aware recall@k (the rule of the shared MNIST set's README): among the first k returned ids,
 * each distinct id counts once, and it is a hit when it is among the ground truth's first k ids,
 * or when its exact score, recomputed in float64 from the base vectors, ties the k-th ground-truth
 * score s_k within |s - s_k| <= 1e-5 * |s_k| (another id of equal score at the boundary).
 * Recall@k = hits / k. Without ground-truth scores it is plain recall: hits are only ids in the
 * ground truth's first k. On data with many exact ties (MNIST's integer pixels) plain recall
 * under-counts a correct search; tie-aware recall does not.
 */
#ifndef VS_RECALL_H
#define VS_RECALL_H

#include <stdint.h>

#include "vs_slotset.h"
#include "vs_status.h"

/* The metric of a score; the values match vs_metric in index/index.h, so one casts to the other. */
typedef enum vs_score_metric {
    VS_SCORE_IP = 0, /* inner product, higher is better */
    VS_SCORE_COSINE, /* cosine similarity, higher is better; a zero vector scores 0 */
    VS_SCORE_L2      /* squared L2 distance, lower is better */
} vs_score_metric;

/* The relative tolerance of a boundary tie. */
#define VS_RECALL_TIE_RTOL 1e-5
/* A returned-id slot that holds no result (fewer than k came back). */
#define VS_RECALL_NO_ID UINT64_MAX

/* The base vectors that tie-aware recall recomputes scores from: row i is item id i. */
typedef struct vs_recall_base {
    const float *vectors; /* rows x dim, row-major */
    uint64_t rows;
    uint32_t dim;
    vs_score_metric metric;
} vs_recall_base;

/* The exact score of a and b (dim floats) under metric, in float64. */
double vs_exact_score(const float *a, const float *b, uint32_t dim, vs_score_metric metric);

/* Recall@k of one query. ids[0 .. n_ids) are the returned ids, best first (only the first k
 * count; VS_RECALL_NO_ID entries are holes); gt_ids[0 .. gt_n) the ground truth, best first (a
 * negative id is a hole). Tie-aware when gt_scores (gt_n scores), base and query (base->dim
 * floats) are all given, plain when gt_scores is NULL. k must be 1 .. gt_n: INVALID_ARGUMENT
 * otherwise. A returned id past the base's rows is a miss. When the ground truth has fewer than k
 * ids (holes: a filter passed fewer than k items), the denominator is the ids it has, not k. */
vs_err vs_recall_query(const uint64_t *ids, uint32_t n_ids, const int32_t *gt_ids,
                       const float *gt_scores, uint32_t gt_n, uint32_t k,
                       const vs_recall_base *base, const float *query, double *recall,
                       vs_status *st);

/* Mean recall@k over n_queries: query q's ids are ids[q * ids_stride ..] (ids_stride of them),
 * its ground truth gt_ids[q * gt_stride ..] and gt_scores[q * gt_stride ..] (NULL: plain recall),
 * its vector queries[q * base->dim ..]. per_query (n_queries values) may be NULL. */
vs_err vs_recall_mean(const uint64_t *ids, uint32_t ids_stride, const int32_t *gt_ids,
                      const float *gt_scores, uint32_t gt_stride, uint64_t n_queries, uint32_t k,
                      const vs_recall_base *base, const float *queries, double *mean,
                      double *per_query, vs_status *st);

/* Exact ground truth: for each of n_queries queries (base->dim floats each), the k best of the
 * base's rows under base->metric, computed in float64, best first, ties to the smaller id. Writes
 * ids[q * k + j] and, when scores is not NULL, scores[q * k + j] (the float64 score rounded to
 * float, in the convention above). allowed is NULL (every row is a candidate) or n_queries slot
 * sets, allowed[q] restricting query q's candidates (a filter's slots, slot = row); when fewer than
 * k rows are allowed the rest of that query's list is id -1 with a NaN score. Splits the queries
 * over n_threads pthreads (0: every online core). k must be 1 .. rows, rows below 2^31. */
vs_err vs_exact_knn(const vs_recall_base *base, const float *queries, uint64_t n_queries,
                    uint32_t k, const vs_slotset *allowed, uint32_t n_threads, int32_t *ids,
                    float *scores, vs_status *st);

#endif
