/*
 * kernels.h: the CPU backend's inner loops, one table per instruction set, chosen at run time.
 *
 * Every kernel scores m query vectors against a tile of rows and writes out[j * ld + r] for query
 * j and row r. The scalar table is the reference; the AVX2 and AVX-512 tables must give the same
 * integers (i8, b1) and the same floats up to summation order (f32, f16).
 *
 * i8 rows are stored in blocks of 16 rows, laid out so one 64-byte load feeds sixteen rows at
 * once: inside a block, group g (codes 4g .. 4g+3 of every row) is 64 contiguous bytes, row r's
 * four codes at bytes 4r .. 4r+3. dpad is the dimension rounded up to 4 (the padding codes are 0).
 * A query is dpad int8 codes (zero padded). The integer dot sum(qc * c) then comes out for 16 rows
 * in one register: with AVX-512 VNNI, vpdpbusd multiplies unsigned by signed bytes, so the row codes
 * are flipped to unsigned (c + 128) on load and 128 * sum(qc) is taken off at the end; with AVX2,
 * vpmaddubsw gets |c| (unsigned, at most 128) and qc with c's sign, so the int16 pair sums stay
 * within 2 * 128 * 127 = 32512 and never saturate.
 */
#ifndef VS_CPU_KERNELS_H
#define VS_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define VS_I8_BLOCK 16

typedef struct vs_cpu_kernels {
    const char *name;
    /* i8: nblocks blocks of 16 rows; q is m x dpad codes; qcsum[j] = sum of query j's codes. */
    void (*i8_tile)(const int8_t *x, uint32_t nblocks, uint32_t dpad, const int8_t *q,
                    const int32_t *qcsum, uint32_t m, int32_t *out, uint32_t ld);
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

/* The best table this processor runs; VECSCAN_KERNELS=scalar|avx2|avx512 in the environment
 * forces one (for tests and benchmarks). */
const vs_cpu_kernels *vs_cpu_kernels_best(void);

/* Byte offset of code k of row r inside an i8 block region (r counted from the region start). */
static inline size_t vs_i8_code_offset(uint32_t r, uint32_t k, uint32_t dpad)
{
    return (size_t)(r / VS_I8_BLOCK) * dpad * VS_I8_BLOCK + (size_t)(k / 4) * 64 + (r % VS_I8_BLOCK) * 4 +
           (k % 4);
}

#endif
