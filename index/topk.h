/*
 * topk.h: the k best (score, id) of a stream, for the CPU scan and for merging.
 *
 * A binary heap with the worst kept entry at the root, so the common case, a score below the
 * threshold, costs one comparison. "Better" is higher score, then smaller id (quant.h's
 * vs_better), which makes every result deterministic. The storage is the caller's (k entries), so a
 * scan can keep one heap per query without allocating.
 */
#ifndef VS_TOPK_H
#define VS_TOPK_H

#include <stdint.h>

#include "backend.h"

typedef struct vs_topk {
    vs_cand *e;  /* k entries of storage, the heap in e[0 .. n) */
    uint32_t k;
    uint32_t n;
    float thr;   /* the root's score once full, -inf before: a score below it cannot enter */
} vs_topk;

/* Starts an empty heap over storage e (k entries, owned by the caller). */
void vs_topk_init(vs_topk *t, vs_cand *e, uint32_t k);
/* Offers a candidate whose score is >= t->thr (callers test that first, it is the hot path). */
void vs_topk_offer(vs_topk *t, float score, uint32_t slot, uint64_t id);
/* Sorts the kept entries best first in e[0 .. n); the heap is no longer a heap afterwards. */
void vs_topk_sort(vs_topk *t);
/* Sorts any candidate array best first. */
void vs_cand_sort(vs_cand *c, size_t n);

#endif
