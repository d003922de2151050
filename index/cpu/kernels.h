/*
 * kernels.h: the CPU backend's inner loops, one table per instruction set, chosen at run time.
 *
 * Every kernel scores m query vectors against a tile of rows and writes out[j * ld + r] for query
 * j and row r. The scalar table is the reference; the AVX2 and AVX-512 tables must give the same
 * integers (b1), the same i8 scores bit for bit, and the same floats up to summation order (f32,
 * f16).
 *
 * i8 rows are row-major at a fixed stride: dpad codes (the dimension rounded up to 4, the padding
 * codes 0) followed by the row's three float constants, middle, scale and norm2 (quant.h), so a scan
 * reads each row's cache lines once and a gather of a few rows reads just those rows' bytes. The
 * i8 kernel writes finished scores: the integer dot of each (row, query) pair is turned into the
 * metric's score with the row's constants as the row goes by (vs_i8_score: the same float
 * operations in the same order in every table, so the tables agree bit for bit), with no second
 * pass over the tile. A query is dpad int8 codes.
 *
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

#include "../quant.h"

#define VS_I8_BLOCK 16
#define VS_I8_SCRATCH(dpad) ((size_t)2 * VS_I8_BLOCK * (dpad))

/* The query side of an i8 scan: m vectors quantized by quant.h (vs_i8_query_code). */
typedef struct vs_i8_queries {
    const int8_t *c;     /* m x dpad codes, zero padded */
    const int32_t *csum; /* sum of each vector's codes */
    const float *scale;  /* qscale */
    const float *sum;    /* sum of the vector's values */
    const float *norm2;  /* |q|^2 (read for l2 only) */
    uint32_t m;
} vs_i8_queries;

typedef struct vs_cpu_kernels {
    const char *name;
    /* i8: n rows at x + r * stride (codes, then middle, scale, norm2); out = metric scores
     * (vs_i8_score); scratch holds VS_I8_SCRATCH(dpad) bytes (the repacked block). */
    void (*i8_scores)(const int8_t *x, size_t stride, uint32_t n, uint32_t dpad, const vs_i8_queries *q,
                      bool l2, float *out, uint32_t ld, int8_t *scratch);
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

/* Row r's constants: middle, scale and norm2, stored after its dpad codes. */
static inline void vs_i8_row_consts(const int8_t *x, size_t stride, uint32_t r, uint32_t dpad, float k3[3])
{
    memcpy(k3, x + r * stride + dpad, 3 * sizeof(float));
}

/* The metric score of query j against a row with constants k3, from their integer dot: quant.h's
 * arithmetic, in the order every SIMD table repeats lane by lane. */
static inline float vs_i8_score(int32_t idot, const float k3[3], const vs_i8_queries *q, uint32_t j, bool l2)
{
    float dot = vs_i8_dot(idot, k3[0], k3[1], q->sum[j], q->scale[j]);
    return l2 ? vs_score_from_dot(1, dot, q->norm2[j], k3[2]) : dot;
}

/* The constants of rows [0, n) (n <= 16) as three arrays: k[0] middles, k[1] scales, k[2] norms;
 * missing rows get zeros. */
static inline void vs_i8_block_consts(const int8_t *x, size_t stride, uint32_t n, uint32_t dpad,
                                      float k[3][VS_I8_BLOCK])
{
    for (uint32_t r = 0; r < VS_I8_BLOCK; r++) {
        float k3[3] = {0, 0, 0};
        if (r < n)
            vs_i8_row_consts(x, stride, r, dpad, k3);
        k[0][r] = k3[0];
        k[1][r] = k3[1];
        k[2][r] = k3[2];
    }
}

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
