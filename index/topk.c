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

static int cand_cmp(const void *pa, const void *pb)
{
    const vs_cand *a = pa, *b = pb;
    if (vs_better(a->score, a->id, b->score, b->id))
        return -1;
    if (vs_better(b->score, b->id, a->score, a->id))
        return 1;
    return 0;
}

void vs_cand_sort(vs_cand *c, size_t n) { qsort(c, n, sizeof *c, cand_cmp); }

void vs_topk_sort(vs_topk *t) { vs_cand_sort(t->e, t->n); }
