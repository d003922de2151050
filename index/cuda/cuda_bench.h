/*
 * cuda_bench.h: hooks of the CUDA backend for its tests and benchmarks (tests/gpu, bench/gpu_*),
 * never used by the index core.
 */
#ifndef VS_CUDA_BENCH_H
#define VS_CUDA_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "cuda_plan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CUDA devices present; 0 when there are none or no usable driver (why, when not NULL, gets the
 * runtime's message). */
int vs_cuda_device_count(char *why, size_t why_len);

/* The name of device ordinal into buf. */
void vs_cuda_device_name(int ordinal, char *buf, size_t len);

/* Fills rows [0, n_rows) of field f of a CUDA store with random codes and constants generated on
 * the device (no host data, no bus), and marks the slot view for a full mirror at the next scan.
 * The caller's slot view must then say which of those slots are live. */
vs_err vs_cuda_fill_random(void *store, uint32_t field, uint32_t n_rows, uint64_t seed,
                           vs_status *st);

/* Tests: caps the candidate buffers at cap slots per query (0 = the plan's), so that the overflow
 * path runs on small data. */
void vs_cuda_set_test_capacity(void *store, uint32_t cap);

/* Tests and the bench: on (the default) lets groups of one-vector queries over an i8 field that
 * take the tile path run the MMA scan instead; off keeps them on cuBLAS tiles. */
void vs_cuda_set_mma(void *store, int on);

/* Groups of the store's last scan that ran the MMA scan. */
uint32_t vs_cuda_last_mma_groups(void *store);

/* Selection statistics of the store's last scan, summed over its groups. */
void vs_cuda_last_stats(void *store, vs_cu_select_stats *out);

/* Device-to-device copy bandwidth of ordinal, in bytes read plus written per second, over a copy
 * of bytes (median of reps). */
vs_err vs_cuda_copy_bandwidth(int ordinal, size_t bytes, int reps, double *bytes_per_s,
                              vs_status *st);

#ifdef __cplusplus
}
#endif

#endif
