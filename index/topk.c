/* topk.c: the bounded best-k heap (see topk.h). */
#include "topk.h"

#include <math.h>
#include <stdlib.h>

#include "quant.h"

void vs_topk_init(vs_topk *t, vs_cand *e, uint32_t k)
{
    t->e = e;
    t->k = k;
    t->n = 0;
    t->thr = -INFINITY;
}

/* Whether heap entry a is worse than b (the root is the worst). */
static inline int worse(const vs_cand *a, const vs_cand *b)
{
    return vs_better(b->score, b->id, a->score, a->id);
}

static void sift_down(vs_cand *e, uint32_t n, uint32_t i)
{
    vs_cand x = e[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && worse(&e[c + 1], &e[c]))
            c++;
        if (!worse(&e[c], &x))
            break;
        e[i] = e[c];
        i = c;
    }
    e[i] = x;
}

void vs_topk_offer(vs_topk *t, float score, uint32_t slot, uint64_t id)
{
    vs_cand c = {score, slot, id};
    if (t->n < t->k) {
        uint32_t i = t->n++;
        while (i > 0) { /* sift up */
            uint32_t p = (i - 1) / 2;
            if (!worse(&c, &t->e[p]))
                break;
            t->e[i] = t->e[p];
            i = p;
        }
        t->e[i] = c;
        if (t->n == t->k)
            t->thr = t->e[0].score;
        return;
    }
    if (!vs_better(score, id, t->e[0].score, t->e[0].id))
        return;
    t->e[0] = c;
    sift_down(t->e, t->n, 0);
    t->thr = t->e[0].score;
}

static inline void swap(vs_cand *a, vs_cand *b)
{
    vs_cand t = *a;
    *a = *b;
    *b = t;
}

/* Quicksort with the comparison inlined (qsort's indirect calls cost more than the sorting), the
 * median of three as pivot, insertion sort below 16 entries, and recursion only into the smaller
 * side so the stack stays O(log n). Entries are distinct in (score, id), so there are no equal keys. */
void vs_cand_sort(vs_cand *c, size_t n)
{
    while (n > 16) {
        size_t mid = n / 2;
        if (vs_better(c[mid].score, c[mid].id, c[0].score, c[0].id))
            swap(&c[mid], &c[0]);
        if (vs_better(c[n - 1].score, c[n - 1].id, c[0].score, c[0].id))
            swap(&c[n - 1], &c[0]);
        if (vs_better(c[n - 1].score, c[n - 1].id, c[mid].score, c[mid].id))
            swap(&c[n - 1], &c[mid]);
        vs_cand pivot = c[mid]; /* c[0] >= pivot >= c[n-1] in rank order */
        size_t i = 0, j = n - 1;
        for (;;) {
            while (vs_better(c[i].score, c[i].id, pivot.score, pivot.id))
                i++;
            while (vs_better(pivot.score, pivot.id, c[j].score, c[j].id))
                j--;
            if (i >= j)
                break;
            swap(&c[i], &c[j]);
            i++;
            j--;
        }
        size_t left = j + 1; /* c[0 .. j] rank before c[j+1 .. n) */
        if (left < n - left) {
            vs_cand_sort(c, left);
            c += left;
            n -= left;
        } else {
            vs_cand_sort(c + left, n - left);
            n = left;
        }
    }
    for (size_t i = 1; i < n; i++) {
        vs_cand x = c[i];
        size_t j = i;
        for (; j > 0 && vs_better(x.score, x.id, c[j - 1].score, c[j - 1].id); j--)
            c[j] = c[j - 1];
        c[j] = x;
    }
}

void vs_topk_sort(vs_topk *t) { vs_cand_sort(t->e, t->n); }
