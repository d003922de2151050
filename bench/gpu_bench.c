/*
 * gpu_bench.c: the CUDA backend at LiNR's size (15.5M x 128, f16 and i8, generated on the device),
 * batches 1 to 1024, k = 10 to 10,000, filters passing 1%, 10% and 100%, timed as the caller sees
 * it (wall clock around the backend's scan, which returns with the results in host memory), against
 * the read floor: the bytes a scan must read (codes plus per-row constants) over the measured
 * device-to-device copy bandwidth.
 *
 * Prints a table, then one line "SUMMARY {json}" that bench/gpu.sh combines with the PyTorch anchor.
 * Usage: vs_gpu_bench [--rows N] [--quick]. Exits 77 when there is no CUDA device.
 *
 * ===== The two numbers, and what to expect (written before any run on a GPU) =====
 * 15.5M rows, H200, copy bandwidth ~4.3 TB/s (read + write, KINDS.md):
 *   i8  batch 1: floor 15.5M x 140 B = 2.17 GB -> 0.50 ms. The fused kernel reads 144 B a row (the
 *       16-byte constant slot), ~0.52 ms, plus fixed costs (sampled threshold ~15 us, one-block
 *       select ~10 us, 3 waits ~30 us): predicted 0.58-0.65 ms, 1.15-1.3x the floor.
 *   f16 batch 1: floor 15.5M x 260 B = 4.0 GB -> 0.94 ms; reads 272 B a row: predicted ~1.05 ms.
 *   batch 16 (fused, 16 query vectors from registers): i8 dp4a ~8 cycles a row over 132 SMs
 *       (~0.47 ms) under the memory time: ~0.6-0.7 ms; f16 FMA ~16 cycles a row: ~1.0-1.2 ms.
 *   batch 256 / 1024 on the tile path (cuBLAS then the combine kernel, ~4096 rows a tile at
 *       1024 so the scores stay in L2): GEMM ~4-6 ms at 1024, combine ~4 us a tile, but ~7,600
 *       launches whose host cost (~4 us each) dominates: predicted 25-40 ms at 1024. PyTorch fp16
 *       matmul (~6 ms) + writing 32 GB of scores + topk over them: ~30-50 ms. So ~1-1.5x.
 *   batch 256 / 1024 on the MMA scan (one launch, WMMA products, scores never leave the SM):
 *       15.9 G (row, query) scores at ~10 instructions each over 132 SMs x 128 lanes x 1.8 GHz
 *       ~5 ms, the products ~2-4 ms for i8 under mma.sync (twice the f16 ones: hi and lo halves,
 *       ~8 TFLOP at ~400-600 TFLOP/s, ~15-20 ms), rows reread from L2 by the 8 query chunks
 *       (~17 GB i8, ~33 GB f16) ~2-4 ms, overlapping: predicted 6-12 ms i8 (3-5x PyTorch) and
 *       15-25 ms f16 (1.5-2.5x) at 1024. Both also run on the tile path ("tiles" rows).
 *   1% list filter, batch 1: 155K gathered rows (22 MB, random 144-byte rows) ~10-15 us plus the
 *       fixed costs: ~0.06-0.08 ms, 0.1-0.13x the unfiltered query.
 *   k = 10,000: ~24k candidates per query above the sampled threshold, sorted by CUB (past 2,048):
 *       +0.1-0.2 ms at batch 1.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "cuda_bench.h"
#include "quant.h"

#define DIM 128
#define MAXB 1024

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double unif(void) { return (double)(rnd() >> 11) * 0x1.0p-53; }
static double gauss(void)
{
    double u = unif(), v = unif();
    return sqrt(-2.0 * log(u < 1e-300 ? 1e-300 : u)) * cos(6.283185307179586 * v);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct ctx {
    void *store;
    vs_slot_view view;
    vs_field_queries fq[2];
    vs_scan_term terms[MAXB];
    vs_scan_query q[MAXB];
    vs_cand *out;
    uint32_t *counts;
} ctx;

/* Median wall time of reps scans of batch b on field f with k and allowed set a. */
static double time_scan(ctx *c, uint32_t f, uint32_t b, uint32_t k, const vs_slotset *a, int reps,
                        uint64_t expect, int *bad, vs_cu_select_stats *stats)
{
    vs_scan_batch batch;
    vs_status st;
    double t[32];
    memset(&batch, 0, sizeof batch);
    for (uint32_t i = 0; i < b; i++) {
        c->terms[i] = (vs_scan_term){f, i, 1, 1.0f};
        c->q[i] = (vs_scan_query){&c->terms[i], 1, VS_COMBINE_SUM, a, k};
    }
    batch.n_queries = b;
    batch.queries = c->q;
    batch.fq[f] = c->fq[f];
    if (reps > 32)
        reps = 32;
    for (int r = -1; r < reps; r++) { /* one warm-up */
        double t0 = now_ms();
        if (vs_cuda_backend.scan(c->store, &c->view, &batch, c->out, k, c->counts, &st) != VS_OK) {
            fprintf(stderr, "scan failed: %s\n", st.msg);
            *bad = 1;
            return NAN;
        }
        if (r >= 0)
            t[r] = now_ms() - t0;
    }
    vs_cuda_last_stats(c->store, stats);
    /* sanity: k results (or all that pass), best first */
    for (uint32_t i = 0; i < b; i++) {
        uint64_t want = expect < k ? expect : k;
        if (c->counts[i] != want) {
            fprintf(stderr, "query %u: %u results, want %llu\n", i, c->counts[i],
                    (unsigned long long)want);
            *bad = 1;
        }
        for (uint32_t j = 1; j < c->counts[i]; j++) {
            const vs_cand *p = &c->out[(size_t)i * k + j - 1], *n = p + 1;
            if (p->score < n->score || (p->score == n->score && p->id >= n->id)) {
                fprintf(stderr, "query %u: results out of order at %u\n", i, j);
                *bad = 1;
                break;
            }
        }
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    return t[reps / 2];
}

int main(int argc, char **argv)
{
    uint32_t rows = 15500000;
    int quick = 0;
    char why[200], name[128];
    vs_status st;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else {
            fprintf(stderr, "usage: %s [--rows N] [--quick]\n", argv[0]);
            return 2;
        }
    }
    if (vs_cuda_device_count(why, sizeof why) == 0) {
        printf("SKIP vs_gpu_bench: no CUDA device (%s)\n", why);
        return 77;
    }
    vs_cuda_device_name(0, name, sizeof name);

    /* the floor: device-to-device copy bandwidth, bytes read plus written */
    double bw = 0;
    if (vs_cuda_copy_bandwidth(0, (size_t)2 << 30, 9, &bw, &st) != VS_OK) {
        fprintf(stderr, "copy bandwidth: %s\n", st.msg);
        return 1;
    }
    printf("device %s, copy bandwidth %.0f GB/s (read + write)\n", name, bw / 1e9);

    /* the index: field 0 f16, field 1 i8, both d = 128 ip, every row live */
    vs_field_layout lay[2] = {{DIM, VS_METRIC_IP, VS_STORAGE_F16, DIM * 2, 0},
                              {DIM, VS_METRIC_IP, VS_STORAGE_I8, DIM, 0}};
    vs_index_options opt = {VS_DEVICE_CUDA, 0, 65536, 0};
    ctx c;
    memset(&c, 0, sizeof c);
    double t0 = now_ms();
    if (vs_cuda_backend.create(lay, 2, &opt, &c.store, &st) != VS_OK ||
        vs_cuda_backend.reserve(c.store, rows, &st) != VS_OK ||
        vs_cuda_fill_random(c.store, 0, rows, 1, &st) != VS_OK ||
        vs_cuda_fill_random(c.store, 1, rows, 2, &st) != VS_OK) {
        fprintf(stderr, "setup: %s\n", st.msg);
        return 1;
    }
    const uint32_t shift = 16, words = (rows + 63) / 64, n_chunks = (rows >> shift) + 1;
    uint64_t *live = malloc((size_t)words * 8);
    memset(live, 0xff, (size_t)words * 8);
    if (rows % 64)
        live[words - 1] = (1ull << (rows % 64)) - 1;
    uint64_t **ids = malloc(n_chunks * sizeof *ids);
    for (uint32_t ch = 0; ch < n_chunks; ch++) {
        ids[ch] = malloc((size_t)8 << shift);
        for (uint32_t i = 0; i < (1u << shift); i++)
            ids[ch][i] = ((uint64_t)ch << shift | i) * 2654435761ull + 1; /* distinct, unordered */
    }
    c.view.slot_limit = rows;
    c.view.chunk_shift = shift;
    c.view.live = live;
    c.view.has[0] = live;
    c.view.has[1] = live;
    c.view.ids = ids;
    printf("index: %u rows x %u, f16 and i8, generated on the device in %.0f ms\n", rows, DIM,
           now_ms() - t0);

    /* queries: MAXB random vectors, as the core prepares them */
    float *qf = malloc((size_t)MAXB * DIM * 4), *qs = malloc(MAXB * 4), *qsum = malloc(MAXB * 4),
          *qn = malloc(MAXB * 4);
    int8_t *qc = malloc((size_t)MAXB * DIM);
    int32_t *qcs = malloc(MAXB * 4);
    for (uint32_t j = 0; j < MAXB; j++) {
        float amax = 0;
        double sm = 0, n2 = 0;
        for (uint32_t i = 0; i < DIM; i++) {
            float v = (float)gauss();
            qf[j * DIM + i] = v;
            amax = fabsf(v) > amax ? fabsf(v) : amax;
            sm += v;
            n2 += (double)v * v;
        }
        qs[j] = vs_i8_query_scale(amax);
        qcs[j] = 0;
        for (uint32_t i = 0; i < DIM; i++) {
            qc[j * DIM + i] = vs_i8_query_code(qf[j * DIM + i], qs[j]);
            qcs[j] += qc[j * DIM + i];
        }
        qsum[j] = (float)sm;
        qn[j] = (float)n2;
    }
    for (int f = 0; f < 2; f++)
        c.fq[f] = (vs_field_queries){MAXB, qf, qc, qs, qsum, qcs, NULL, qn};
    c.out = malloc((size_t)MAXB * 10000 * sizeof *c.out);
    c.counts = malloc(MAXB * 4);

    /* filters: sorted slot lists (the planner's choice when few pass) and bitmaps */
    uint32_t *l1 = malloc((size_t)rows / 50 * 4 + 64), *l10 = malloc((size_t)rows / 5 * 4 + 64);
    uint64_t *b1 = calloc(words, 8), *b10 = calloc(words, 8);
    uint64_t n1 = 0, n10 = 0;
    for (uint32_t s = 0; s < rows; s++) {
        double u = unif();
        if (u < 0.01) {
            l1[n1++] = s;
            b1[s / 64] |= 1ull << (s % 64);
        }
        if (u < 0.10) {
            l10[n10++] = s;
            b10[s / 64] |= 1ull << (s % 64);
        }
    }
    vs_slotset list1 = {VS_SLOTSET_LIST, NULL, 0, l1, n1}, list10 = {VS_SLOTSET_LIST, NULL, 0, l10, n10};
    vs_slotset bm1 = {VS_SLOTSET_BITMAP, b1, rows, NULL, n1}, bm10 = {VS_SLOTSET_BITMAP, b10, rows, NULL, n10};

    struct cfg {
        uint32_t f, b, k;
        const vs_slotset *a;
        const char *filter;
        double pass;
        int tiles; /* the tile path instead of the MMA scan */
    } cfgs[64];
    int nc = 0;
    for (uint32_t f = 0; f < 2; f++) {
        cfgs[nc++] = (struct cfg){f, 1, 10, NULL, "100%", 1.0, 0};
        cfgs[nc++] = (struct cfg){f, 1, 1000, NULL, "100%", 1.0, 0};
        cfgs[nc++] = (struct cfg){f, 1, 10000, NULL, "100%", 1.0, 0};
        cfgs[nc++] = (struct cfg){f, 1, 10, &list1, "1% list", 0.01, 0};
        cfgs[nc++] = (struct cfg){f, 1, 10, &list10, "10% list", 0.10, 0};
        cfgs[nc++] = (struct cfg){f, 1, 10, &bm1, "1% bitmap", 0.01, 0};
        cfgs[nc++] = (struct cfg){f, 1, 10, &bm10, "10% bitmap", 0.10, 0};
        cfgs[nc++] = (struct cfg){f, 16, 10, NULL, "100%", 1.0, 0};
        cfgs[nc++] = (struct cfg){f, 16, 1000, NULL, "100%", 1.0, 0};
        cfgs[nc++] = (struct cfg){f, 16, 10, &list1, "1% list", 0.01, 0};
        cfgs[nc++] = (struct cfg){f, 256, 10, NULL, "100%", 1.0, 0};
        if (!quick)
            cfgs[nc++] = (struct cfg){f, 256, 1000, NULL, "100%", 1.0, 0};
        cfgs[nc++] = (struct cfg){f, 1024, 10, NULL, "100%", 1.0, 0};
        if (!quick)
            cfgs[nc++] = (struct cfg){f, 1024, 10000, NULL, "100%", 1.0, 0};
    }
    for (uint32_t f = 0; f < 2; f++) /* the same batches on the tile path */
        cfgs[nc++] = (struct cfg){f, 1024, 10, NULL, "100%", 1.0, 1};
    /* the read floor's bytes a row: f16 codes + its scale; i8 codes + middle, scale, norm2 */
    const double row_bytes[2] = {DIM * 2.0 + 4.0, DIM + 12.0};
    const char *sn[2] = {"f16", "i8"};
    double res[2][4][3] = {{{0}}}; /* [field][batch 1,16,256,1024][k 10 / filtered 1% list /
                                      k 10 on tiles] */
    int bad = 0;
    printf("\n%-4s %6s %6s %-11s %-5s %10s %10s %8s %s\n", "stor", "batch", "k", "filter", "path",
           "ms", "floor ms", "x floor", "rescans");
    for (int i = 0; i < nc; i++) {
        const struct cfg *g = &cfgs[i];
        vs_cu_select_stats ss;
        int reps = g->b <= 16 ? 15 : 3;
        uint64_t expect = g->a ? g->a->count : rows;
        vs_cuda_set_mma(c.store, !g->tiles);
        double ms = time_scan(&c, g->f, g->b, g->k, g->a, reps, expect, &bad, &ss);
        const char *path = g->b <= 32 ? "fused" : vs_cuda_last_mma_groups(c.store) ? "mma" : "tiles";
        double floor_ms = (double)rows * g->pass * row_bytes[g->f] / bw * 1e3;
        printf("%-4s %6u %6u %-11s %-5s %10.3f %10.3f %8.2f %u/%u\n", sn[g->f], g->b, g->k,
               g->filter, path, ms, floor_ms, ms / floor_ms, ss.overflows + ss.underflows, ss.scans);
        fflush(stdout);
        int bi = g->b == 1 ? 0 : g->b == 16 ? 1 : g->b == 256 ? 2 : 3;
        if (g->tiles) {
            res[g->f][bi][2] = ms;
            continue;
        }
        if (g->k == 10 && !g->a)
            res[g->f][bi][0] = ms;
        if (g->k == 10 && g->a == &list1)
            res[g->f][bi][1] = ms;
    }
    double floor_i8 = (double)rows * row_bytes[1] / bw * 1e3;
    printf("\nSUMMARY {\"device\": \"%s\", \"rows\": %u, \"copy_gbps\": %.1f, "
           "\"i8_b1_ms\": %.4f, \"i8_floor_ms\": %.4f, \"f16_b1_ms\": %.4f, "
           "\"f16_floor_ms\": %.4f, \"i8_b1024_ms\": %.3f, \"i8_b1024_tiles_ms\": %.3f, "
           "\"f16_b1024_ms\": %.3f, \"f16_b1024_tiles_ms\": %.3f, "
           "\"i8_b1_list1_ms\": %.4f, \"f16_b1_list1_ms\": %.4f, \"ok\": %s}\n",
           name, rows, bw / 1e9, res[1][0][0], floor_i8, res[0][0][0],
           (double)rows * row_bytes[0] / bw * 1e3, res[1][3][0], res[1][3][2], res[0][3][0], res[0][3][2], res[1][0][1],
           res[0][0][1], bad ? "false" : "true");
    vs_cuda_backend.destroy(c.store);
    return bad ? 1 : 0;
}
