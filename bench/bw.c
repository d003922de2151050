/*
 * bw.c: streaming read bandwidth (see bw.h).
 *
 * The summing loop has an AVX2 version, chosen at run time, and a plain C version beside it; both
 * read every byte exactly once, and the sums are kept so that the compiler cannot drop the loads.
 * Each pass starts its threads afresh (tens of microseconds against tens of milliseconds a pass).
 */
#include "bw.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BW_X86 1
#else
#define BW_X86 0
#endif

/* ===== Summing kernels ===== */

/* Sums n 64-bit words with four independent accumulators (n a multiple of 16). */
static uint64_t sum_words_scalar(const uint64_t *p, size_t n)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i < n; i += 4) {
        a += p[i];
        b += p[i + 1];
        c += p[i + 2];
        d += p[i + 3];
    }
    return a + b + c + d;
}

#if BW_X86
/* The same sum, 128 bytes per step in four 256-bit accumulators; p is 32-byte aligned. */
__attribute__((target("avx2"))) static uint64_t sum_words_avx2(const uint64_t *p, size_t n)
{
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i < n; i += 16) {
        a = _mm256_add_epi64(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_add_epi64(b, _mm256_load_si256((const __m256i *)(p + i + 4)));
        c = _mm256_add_epi64(c, _mm256_load_si256((const __m256i *)(p + i + 8)));
        d = _mm256_add_epi64(d, _mm256_load_si256((const __m256i *)(p + i + 12)));
    }
    a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, a);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#endif

typedef uint64_t (*sum_fn)(const uint64_t *p, size_t n);

struct bw_ctx {
    int threads;
    uint64_t *words;
    size_t n_words;
    sum_fn sum;
    const char *kernel;
    uint64_t checksum;
};

/* ===== Passes ===== */

typedef struct share {
    pthread_t thread;
    const uint64_t *words;
    size_t n_words;
    sum_fn sum;
    uint64_t result;
} share;

static void *share_main(void *arg)
{
    share *s = arg;
    s->result = s->sum(s->words, s->n_words);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bw_ctx *bw_open(int threads, size_t mib)
{
    if (threads < 1 || threads > 256 || mib < 16)
        return NULL;
    bw_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->threads = threads;
    c->n_words = (mib << 20) / sizeof(uint64_t);
    c->words = aligned_alloc(4096, mib << 20);
    if (!c->words) {
        free(c);
        return NULL;
    }
    /* Touch every page (and give the words varied values) before any timing. */
    for (size_t i = 0; i < c->n_words; i++)
        c->words[i] = i * 0x9e3779b97f4a7c15ull;
    c->sum = sum_words_scalar;
    c->kernel = "scalar";
#if BW_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        c->sum = sum_words_avx2;
        c->kernel = "avx2";
    }
#endif
    return c;
}

/* One pass: every thread sums its share (whole 128-byte steps); returns the seconds it took. */
static double one_pass(bw_ctx *c, size_t *bytes)
{
    share sh[256];
    bool started[256] = {false};
    size_t per = (c->n_words / (size_t)c->threads) & ~(size_t)15;
    *bytes = 0;
    for (int t = 0; t < c->threads; t++) {
        sh[t].words = c->words + (size_t)t * per;
        sh[t].n_words = t == c->threads - 1 ? ((c->n_words - (size_t)t * per) & ~(size_t)15) : per;
        sh[t].sum = c->sum;
        *bytes += sh[t].n_words * sizeof(uint64_t);
    }
    double t0 = now_s();
    for (int t = 1; t < c->threads; t++)
        started[t] = pthread_create(&sh[t].thread, NULL, share_main, &sh[t]) == 0;
    share_main(&sh[0]);
    for (int t = 1; t < c->threads; t++) {
        if (started[t])
            pthread_join(sh[t].thread, NULL);
        else
            share_main(&sh[t]); /* no thread: read it here, the pass is only slower */
    }
    double sec = now_s() - t0;
    for (int t = 0; t < c->threads; t++)
        c->checksum += sh[t].result;
    return sec;
}

double bw_measure(bw_ctx *c, int reps, double *median_gbs)
{
    double sec[1000] = {0};
    size_t bytes = 0;
    if (reps < 1)
        reps = 1;
    if (reps > 1000)
        reps = 1000;
    for (int r = 0; r < reps; r++)
        sec[r] = one_pass(c, &bytes);
    qsort(sec, (size_t)reps, sizeof(double), cmp_double);
    if (median_gbs)
        *median_gbs = (double)bytes / sec[reps / 2] / 1e9;
    return (double)bytes / sec[0] / 1e9;
}

const char *bw_kernel(const bw_ctx *c) { return c->kernel; }

void bw_close(bw_ctx *c)
{
    if (!c)
        return;
    free(c->words);
    free(c);
}
