/*
 * kernels.h: the CPU backend's inner loops, one table per instruction set, chosen at run time.
 *
 * Every kernel scores m query vectors against a tile of rows and writes out[j * ld + r] for query
 * j and row r. The scalar table is the reference; the AVX2 and AVX-512 tables must give the same
 * integers (i8, b1) and the same floats up to summation order (f32, f16).
 *
 * i8 rows are row-major, dpad codes each (the dimension rounded up to 4, the padding codes 0) at a
 * fixed stride, so a gather of a few rows reads just those rows' bytes. A query is dpad int8 codes.
 * For one to four queries the kernel streams each row once and reduces one 16-lane sum per (row,
 * query); for more, it repacks 16 rows at a time into a block where group g (codes 4g .. 4g+3 of
 * each row) is 64 contiguous bytes, so one load feeds sixteen rows and each query's codes are
 * broadcast: the repack is paid once for all queries. With AVX-512 VNNI, vpdpbusd multiplies
 * unsigned by signed bytes, so the row codes are flipped to unsigned (c + 128) on load and
 * 128 * sum(qc) is taken off at the end; with AVX2, vpmaddubsw gets |c| (unsigned, at most 128) and
 * qc with c's sign, so the int16 pair sums stay within 2 * 128 * 127 = 32512 and never saturate.
 */
#ifndef VS_CPU_KERNELS_H
#define VS_CPU_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VS_I8_BLOCK 16
#define VS_I8_SCRATCH(dpad) ((size_t)2 * VS_I8_BLOCK * (dpad))

typedef struct vs_cpu_kernels {
    const char *name;
    /* i8: n rows at x + r * stride; q is m x dpad codes; qcsum[j] = sum of query j's codes;
     * scratch holds VS_I8_SCRATCH(dpad) bytes (the repacked block). */
    void (*i8_rows)(const int8_t *x, size_t stride, uint32_t n, uint32_t dpad, const int8_t *q,
                    const int32_t *qcsum, uint32_t m, int32_t *out, uint32_t ld, int8_t *scratch);
    /* b1: n rows of words uint64 each; out = number of differing bits. */
    void (*b1_tile)(const uint64_t *x, uint32_t n, uint32_t words, const uint64_t *q, uint32_t m,
                    int32_t *out, uint32_t ld);
    /* f32: n rows of d floats; out = dot products (for small m; large m goes to sgemm). */
    void (*f32_tile)(const float *x, uint32_t n, uint32_t d, const float *q, uint32_t m, float *out,
                     uint32_t ld);
    /* f16: as f32 with rows of d halves. */
    void (*f16_tile)(const uint16_t *x, uint32_t n, uint32_t d, const float *q, uint32_t m,
                     float *out, uint32_t ld);
    /* halves to floats. */
    void (*f16_to_f32)(const uint16_t *in, float *out, size_t n);
    /* Writes the positions r < n with s[r] >= thr to idx, in order; returns how many. */
    uint32_t (*above)(const float *s, uint32_t n, float thr, uint32_t *idx);
} vs_cpu_kernels;

extern const vs_cpu_kernels vs_cpu_kernels_scalar;
/* NULL where the compiler cannot build them. */
extern const vs_cpu_kernels *const vs_cpu_kernels_avx2;
extern const vs_cpu_kernels *const vs_cpu_kernels_avx512;

/* Whether the processor converts halves (F16C): asked of cpuid, since clang's
 * __builtin_cpu_supports does not know the name. */
bool vs_cpu_has_f16c(void);

/* The best table this processor runs; VECSCAN_KERNELS=scalar|avx2|avx512 in the environment
 * forces one (for tests and benchmarks). */
const vs_cpu_kernels *vs_cpu_kernels_best(void);

/* Repacks rows [0, n) (n <= 16; missing rows become zeros) of a row-major tile into the block
 * layout described above. */
static inline void vs_i8_repack(const int8_t *x, size_t stride, uint32_t n, uint32_t dpad, int8_t *blk)
{
    for (uint32_t g = 0; g < dpad / 4; g++)
        for (uint32_t r = 0; r < VS_I8_BLOCK; r++) {
            int8_t *dst = blk + (size_t)g * 64 + r * 4;
            if (r < n)
                memcpy(dst, x + r * stride + (size_t)g * 4, 4);
            else
                memset(dst, 0, 4);
        }
}

#endif
