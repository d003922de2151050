/* kernels_scalar.c: the plain C kernels, the reference for the SIMD ones (see kernels.h). */
#include <stdbool.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <string.h>

#include "../quant.h"
#include "kernels.h"

static void i8_scores(const int8_t *x, size_t stride, uint32_t n, uint32_t dpad, const vs_i8_queries *q,
                      bool l2, float *out, uint32_t ld, int8_t *scratch)
{
    (void)scratch;
    for (uint32_t r = 0; r < n; r++) {
        const int8_t *xr = x + r * stride;
        float k3[3];
        vs_i8_row_consts(x, stride, r, dpad, k3);
        for (uint32_t j = 0; j < q->m; j++) {
            const int8_t *qj = q->c + (size_t)j * dpad;
            int32_t acc = 0;
            for (uint32_t k = 0; k < dpad; k++)
                acc += (int32_t)qj[k] * xr[k];
            out[(size_t)j * ld + r] = vs_i8_score(acc, k3, q, j, l2);
        }
    }
}

static void b1_tile(const uint64_t *x, uint32_t n, uint32_t words, const uint64_t *q, uint32_t m,
                    int32_t *out, uint32_t ld)
{
    for (uint32_t r = 0; r < n; r++)
        for (uint32_t j = 0; j < m; j++) {
            int32_t diff = 0;
            for (uint32_t w = 0; w < words; w++)
                diff += __builtin_popcountll(x[(size_t)r * words + w] ^ q[(size_t)j * words + w]);
            out[(size_t)j * ld + r] = diff;
        }
}

static void f32_tile(const float *x, uint32_t n, uint32_t d, const float *q, uint32_t m, float *out,
                     uint32_t ld)
{
    for (uint32_t r = 0; r < n; r++)
        for (uint32_t j = 0; j < m; j++) {
            float acc = 0;
            for (uint32_t k = 0; k < d; k++)
                acc += q[(size_t)j * d + k] * x[(size_t)r * d + k];
            out[(size_t)j * ld + r] = acc;
        }
}

static void f16_tile(const uint16_t *x, uint32_t n, uint32_t d, const float *q, uint32_t m,
                     float *out, uint32_t ld)
{
    for (uint32_t r = 0; r < n; r++)
        for (uint32_t j = 0; j < m; j++) {
            float acc = 0;
            for (uint32_t k = 0; k < d; k++)
                acc += q[(size_t)j * d + k] * vs_f16_to_f32(x[(size_t)r * d + k]);
            out[(size_t)j * ld + r] = acc;
        }
}

static void f16_to_f32(const uint16_t *in, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = vs_f16_to_f32(in[i]);
}

static uint32_t above(const float *s, uint32_t n, float thr, uint32_t *idx)
{
    uint32_t c = 0;
    for (uint32_t r = 0; r < n; r++)
        if (s[r] >= thr)
            idx[c++] = r;
    return c;
}

const vs_cpu_kernels vs_cpu_kernels_scalar = {
    .name = "scalar",
    .i8_scores = i8_scores,
    .b1_tile = b1_tile,
    .f32_tile = f32_tile,
    .f16_tile = f16_tile,
    .f16_to_f32 = f16_to_f32,
    .above = above,
};

bool vs_cpu_has_f16c(void)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
#else
    return false;
#endif
}

const vs_cpu_kernels *vs_cpu_kernels_best(void)
{
    const char *force = getenv("VECSCAN_KERNELS");
    if (force && strcmp(force, "scalar") == 0)
        return &vs_cpu_kernels_scalar;
#if defined(__x86_64__)
    __builtin_cpu_init();
    bool avx512 = vs_cpu_kernels_avx512 && __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vpopcntdq");
    bool avx2 = vs_cpu_kernels_avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                vs_cpu_has_f16c() && __builtin_cpu_supports("popcnt");
    if (force && strcmp(force, "avx2") == 0)
        return avx2 ? vs_cpu_kernels_avx2 : &vs_cpu_kernels_scalar;
    if (avx512)
        return vs_cpu_kernels_avx512;
    if (avx2)
        return vs_cpu_kernels_avx2;
#endif
    return &vs_cpu_kernels_scalar;
}
