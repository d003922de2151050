/*
 * bw.h: the machine's streaming read bandwidth, measured in process (read_bw.c, index_bench.c).
 *
 * DESIGN.md section 6: the read floor of a scan is the bytes it must read over the bandwidth of a
 * plain streaming read. bw_measure is that read and nothing cleverer: T threads each sum their
 * contiguous share of one buffer far larger than the last-level cache, and the best of R passes
 * counts. This machine's bandwidth drifts with what else its host runs, so index_bench measures it
 * right around the batch-1 timings it compares with the floor.
 */
#ifndef VS_BENCH_BW_H
#define VS_BENCH_BW_H

#include <stddef.h>

typedef struct bw_ctx bw_ctx;

/* Allocates a buffer of mib MiB and writes every page of it; NULL when out of memory. The caller
 * frees it with bw_close. */
bw_ctx *bw_open(int threads, size_t mib);
/* Best GB/s (1e9 bytes) of reps passes; *median_gbs (when not NULL) gets the median pass. */
double bw_measure(bw_ctx *c, int reps, double *median_gbs);
/* "avx2" or "scalar": the summing loop in use. */
const char *bw_kernel(const bw_ctx *c);
void bw_close(bw_ctx *c);

#endif
