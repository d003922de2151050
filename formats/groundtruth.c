/*
 * groundtruth.c: exact k-nearest neighbours by float64 brute force (vs_exact_knn, recall.h).
 *
 * This is the reference that recall is measured against, so it favours being right over being
 * fast: every score is a plain float64 sum in dimension order (the same arithmetic as
 * vs_exact_score), and ties go to the smaller id. It is still quick enough for the sets it serves
 * (MNIST's 1,000 x 9,000 x 784 in about a second on two cores): queries are taken eight at a time
 * and stored transposed, so one pass over a base row feeds eight independent accumulators that the
 * compiler keeps in vector registers, and the base matrix is read once per eight queries. Threads
 * take blocks of queries from a shared counter; each query's top-k lives in a heap whose root is
 * its worst entry.
 */
#include "recall.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define QB 8 /* queries per block */

/* One candidate. */
typedef struct cand {
    double s;
    int32_t id;
} cand;

/* The shared job. */
typedef struct gt_job {
    const vs_recall_base *base;
    const float *queries;
    uint64_t n_queries;
    uint32_t k;
    const vs_slotset *allowed;
    const double *base_norms; /* cosine only */
    int32_t *ids;
    float *scores;
    atomic_uint_fast64_t next_block;
    atomic_bool failed;
} gt_job;

/* Whether a is better than b: the better score, or the smaller id at equal scores. */
static inline bool better(cand a, cand b, bool lower)
{
    if (a.s != b.s)
        return lower ? a.s < b.s : a.s > b.s;
    return a.id < b.id;
}

/* Restores the heap (root = worst) below position i. */
static void sift_down(cand *h, uint32_t n, uint32_t i, bool lower)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(h[w], h[l], lower))
            w = l;
        if (r < n && better(h[w], h[r], lower))
            w = r;
        if (w == i)
            return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Offers c to the heap h of *n entries (capacity k). */
static inline void offer(cand *h, uint32_t *n, uint32_t k, cand c, bool lower)
{
    if (*n < k) {
        uint32_t i = (*n)++;
        h[i] = c;
        while (i > 0) { /* sift up: a worse child moves toward the root */
            uint32_t p = (i - 1) / 2;
            if (!better(h[p], h[i], lower))
                break;
            cand t = h[p];
            h[p] = h[i];
            h[i] = t;
            i = p;
        }
    } else if (better(c, h[0], lower)) {
        h[0] = c;
        sift_down(h, *n, 0, lower);
    }
}

/* Whether row r is allowed for a query with set s; *cursor walks a LIST as r ascends. */
static inline bool allowed_row(const vs_slotset *s, uint64_t r, uint64_t *cursor)
{
    if (!s || s->kind == VS_SLOTSET_ALL)
        return true;
    if (s->kind == VS_SLOTSET_BITMAP)
        return vs_slotset_bitmap_has(s, r);
    while (*cursor < s->count && s->slots[*cursor] < r)
        (*cursor)++;
    return *cursor < s->count && s->slots[*cursor] == r;
}

/* Scores nb (<= QB) transposed queries qt (dim x QB) against row x into acc. */
static inline void score_block(const double *qt, const float *x, uint32_t dim, bool l2,
                               double acc[QB])
{
    for (int j = 0; j < QB; j++)
        acc[j] = 0;
    if (l2) {
        for (uint32_t d = 0; d < dim; d++) {
            double xd = x[d];
            for (int j = 0; j < QB; j++) {
                double t = qt[(size_t)d * QB + j] - xd;
                acc[j] += t * t;
            }
        }
    } else {
        for (uint32_t d = 0; d < dim; d++) {
            double xd = x[d];
            for (int j = 0; j < QB; j++)
                acc[j] += qt[(size_t)d * QB + j] * xd;
        }
    }
}

/* Runs query block b (queries b*QB ..) with scratch qt (dim x QB) and heaps (QB x k). */
static void run_block(gt_job *job, uint64_t b, double *qt, cand *heaps)
{
    const vs_recall_base *base = job->base;
    uint32_t dim = base->dim, k = job->k;
    bool l2 = base->metric == VS_SCORE_L2, cos = base->metric == VS_SCORE_COSINE;
    uint64_t q0 = b * QB;
    int nb = job->n_queries - q0 < QB ? (int)(job->n_queries - q0) : QB;
    double qnorm[QB] = {0};
    uint32_t n[QB] = {0};
    uint64_t cursor[QB] = {0};
    for (int j = 0; j < QB; j++) {
        const float *q = job->queries + (q0 + (uint64_t)(j < nb ? j : 0)) * dim;
        double nn = 0;
        for (uint32_t d = 0; d < dim; d++) {
            qt[(size_t)d * QB + j] = q[d];
            nn += (double)q[d] * (double)q[d];
        }
        qnorm[j] = sqrt(nn);
    }
    for (uint64_t r = 0; r < base->rows; r++) {
        double acc[QB];
        score_block(qt, base->vectors + r * dim, dim, l2, acc);
        for (int j = 0; j < nb; j++) {
            if (job->allowed && !allowed_row(&job->allowed[q0 + (uint64_t)j], r, &cursor[j]))
                continue;
            double s = acc[j];
            if (cos) {
                double den = qnorm[j] * job->base_norms[r];
                s = den == 0 ? 0 : s / den;
            }
            offer(heaps + (size_t)j * k, &n[j], k, (cand){s, (int32_t)r}, l2);
        }
    }
    for (int j = 0; j < nb; j++) {
        cand *h = heaps + (size_t)j * k;
        uint64_t q = q0 + (uint64_t)j;
        for (uint32_t i = n[j]; i < k; i++) {
            job->ids[q * k + i] = -1;
            if (job->scores)
                job->scores[q * k + i] = NAN;
        }
        for (uint32_t m = n[j]; m > 0; m--) { /* pop the worst into the last free place */
            job->ids[q * k + m - 1] = h[0].id;
            if (job->scores)
                job->scores[q * k + m - 1] = (float)h[0].s;
            h[0] = h[m - 1];
            sift_down(h, m - 1, 0, l2);
        }
    }
}

/* A worker: takes query blocks until none are left. */
static void *worker(void *arg)
{
    gt_job *job = arg;
    double *qt = malloc((size_t)job->base->dim * QB * sizeof *qt);
    cand *heaps = malloc((size_t)job->k * QB * sizeof *heaps);
    uint64_t n_blocks = (job->n_queries + QB - 1) / QB;
    if (!qt || !heaps)
        atomic_store(&job->failed, true);
    while (qt && heaps && !atomic_load(&job->failed)) {
        uint64_t b = atomic_fetch_add(&job->next_block, 1);
        if (b >= n_blocks)
            break;
        run_block(job, b, qt, heaps);
    }
    free(qt);
    free(heaps);
    return NULL;
}

vs_err vs_exact_knn(const vs_recall_base *base, const float *queries, uint64_t n_queries,
                    uint32_t k, const vs_slotset *allowed, uint32_t n_threads, int32_t *ids,
                    float *scores, vs_status *st)
{
    if (!base || !base->vectors || base->dim == 0)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "exact knn: no base vectors");
    if (base->rows >= (1ull << 31))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "exact knn: %llu base rows do not fit int32 ids",
                             (unsigned long long)base->rows);
    if (k == 0 || k > base->rows)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "exact knn: k %u is not in 1 .. %llu",
                             k, (unsigned long long)base->rows);
    if (n_queries == 0)
        return VS_OK;
    gt_job job = {.base = base, .queries = queries, .n_queries = n_queries, .k = k,
                  .allowed = allowed, .ids = ids, .scores = scores};
    atomic_init(&job.next_block, 0);
    atomic_init(&job.failed, false);
    double *norms = NULL;
    if (base->metric == VS_SCORE_COSINE) {
        if (!(norms = malloc(base->rows * sizeof *norms)))
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "exact knn: out of memory");
        for (uint64_t r = 0; r < base->rows; r++) {
            const float *x = base->vectors + r * base->dim;
            double nn = 0;
            for (uint32_t d = 0; d < base->dim; d++)
                nn += (double)x[d] * (double)x[d];
            norms[r] = sqrt(nn);
        }
        job.base_norms = norms;
    }
    if (n_threads == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (uint32_t)c : 1;
    }
    uint64_t n_blocks = (n_queries + QB - 1) / QB;
    if (n_threads > n_blocks)
        n_threads = (uint32_t)n_blocks;
    pthread_t *th = calloc(n_threads, sizeof *th);
    uint32_t started = 0;
    if (th)
        for (; started + 1 < n_threads; started++)
            if (pthread_create(&th[started], NULL, worker, &job) != 0)
                break;
    worker(&job); /* the calling thread works too */
    for (uint32_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
    free(norms);
    if (atomic_load(&job.failed))
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                             "exact knn: out of memory for %u x %u candidates per thread", QB, k);
    return VS_OK;
}
