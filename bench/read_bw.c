/*
 * read_bw.c: the machine's streaming read bandwidth, the denominator of every CPU read floor.
 *
 * DESIGN.md section 6: the read floor of a scan is the bytes it must read (codes plus per-row
 * constants) over the bandwidth of a plain streaming read. This program measures that read and
 * nothing cleverer: T threads each sum their contiguous share of one buffer far larger than the
 * last-level cache (1 GiB by default against this machine's 32 MiB L3), and the best of R passes
 * counts. The buffer is written once before timing so that page faults stay out of the passes, and
 * the sum is printed so that the compiler cannot drop the loads.
 *
 * The summing loop has an AVX2 version, chosen at run time, and a plain C version beside it: on a
 * processor without AVX2 the plain one runs, and both read every byte exactly once.
 *
 * usage: read_bw [--threads T] [--mib M] [--reps R]
 * prints one line: read_bw_gbs=<best GB/s> threads=T mib=M reps=R best_ms=<ms> median_gbs=<GB/s>
 * (GB = 1e9 bytes), and the checksum on stderr.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RB_X86 1
#else
#define RB_X86 0
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

#if RB_X86
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

/* ===== Threads ===== */

typedef struct worker {
    pthread_t thread;
    const uint64_t *words;
    size_t n_words;
    int reps;
    sum_fn sum;
    pthread_barrier_t *start, *done;
    uint64_t checksum;
} worker;

/* Each pass: wait for the start, sum this worker's share, report at the end barrier. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int r = 0; r < w->reps; r++) {
        pthread_barrier_wait(w->start);
        w->checksum += w->sum(w->words, w->n_words);
        pthread_barrier_wait(w->done);
    }
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

static int usage(void)
{
    fprintf(stderr, "usage: read_bw [--threads T] [--mib M] [--reps R]\n"
                    "  T: reading threads (default 2); M: buffer size in MiB (default 1024, at least"
                    " 16); R: passes, the best counts (default 7)\n");
    return 2;
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 7;
    long mib = 1024;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--mib") == 0)
            mib = atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[++i]);
        else
            return usage();
    }
    if (threads < 1 || threads > 256 || mib < 16 || mib > (1L << 20) || reps < 1 || reps > 1000)
        return usage();

    size_t bytes = (size_t)mib << 20;
    size_t n_words = bytes / sizeof(uint64_t);
    uint64_t *buf = aligned_alloc(4096, bytes);
    if (!buf) {
        fprintf(stderr, "read_bw: cannot allocate %ld MiB; try a smaller --mib\n", mib);
        return 1;
    }
    /* Touch every page (and give the words varied values) before timing. */
    for (size_t i = 0; i < n_words; i++)
        buf[i] = i * 0x9e3779b97f4a7c15ull;

    sum_fn sum = sum_words_scalar;
    const char *kernel = "scalar";
#if RB_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        sum = sum_words_avx2;
        kernel = "avx2";
    }
#endif

    pthread_barrier_t start, done;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&done, NULL, (unsigned)threads + 1);
    worker *w = calloc((size_t)threads, sizeof(*w));
    double *ms = calloc((size_t)reps, sizeof(*ms));
    if (!w || !ms) {
        fprintf(stderr, "read_bw: out of memory\n");
        return 1;
    }
    /* Shares are whole 128-byte steps; the last thread takes the remainder. */
    size_t per = (n_words / (size_t)threads) & ~(size_t)15;
    for (int t = 0; t < threads; t++) {
        w[t].words = buf + (size_t)t * per;
        w[t].n_words = t == threads - 1 ? ((n_words - (size_t)t * per) & ~(size_t)15) : per;
        w[t].reps = reps;
        w[t].sum = sum;
        w[t].start = &start;
        w[t].done = &done;
        if (pthread_create(&w[t].thread, NULL, worker_main, &w[t]) != 0) {
            fprintf(stderr, "read_bw: cannot start thread %d\n", t);
            return 1;
        }
    }
    size_t read_bytes = 0;
    for (int t = 0; t < threads; t++)
        read_bytes += w[t].n_words * sizeof(uint64_t);

    for (int r = 0; r < reps; r++) {
        pthread_barrier_wait(&start);
        double t0 = now_s();
        pthread_barrier_wait(&done);
        ms[r] = 1e3 * (now_s() - t0);
    }
    uint64_t checksum = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(w[t].thread, NULL);
        checksum += w[t].checksum;
    }
    qsort(ms, (size_t)reps, sizeof(*ms), cmp_double);
    double best_gbs = (double)read_bytes / (ms[0] * 1e-3) / 1e9;
    double median_gbs = (double)read_bytes / (ms[reps / 2] * 1e-3) / 1e9;
    printf("read_bw_gbs=%.2f threads=%d mib=%ld reps=%d best_ms=%.3f median_gbs=%.2f kernel=%s\n",
           best_gbs, threads, mib, reps, ms[0], median_gbs, kernel);
    fprintf(stderr, "read_bw: checksum %016llx\n", (unsigned long long)checksum);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&done);
    free(ms);
    free(w);
    free(buf);
    return 0;
}
