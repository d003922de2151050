/* kernels_avx2.c: AVX2 + FMA + F16C kernels (see kernels.h for the layouts and the int8 trick). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kernels.h"

#define TARGET __attribute__((target("avx2,fma,f16c,popcnt")))

TARGET static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TARGET static inline int32_t load_i32(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Scores of 8 rows for query j from their integer dots: vs_i8_score lane by lane, the same float
 * operations in the same order (2 * dot as dot + dot, exact; the sign flipped as C's minus does).
 * km, ks, kn: the rows' middles, scales and norms. */
TARGET static inline __m256 finish8(__m256i idot, const float *km, const float *ks, const float *kn,
                                    const vs_i8_queries *q, uint32_t j, bool l2)
{
    __m256 dot = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(km), _mm256_set1_ps(q->sum[j])),
                               _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(ks), _mm256_set1_ps(q->scale[j])),
                                             _mm256_cvtepi32_ps(idot)));
    if (!l2)
        return dot;
    __m256 d = _mm256_add_ps(_mm256_sub_ps(_mm256_set1_ps(q->norm2[j]), _mm256_add_ps(dot, dot)),
                             _mm256_loadu_ps(kn));
    return _mm256_xor_ps(d, _mm256_set1_ps(-0.0f));
}

/* One block of 16 rows (constants k) against queries j0 .. j0 + mq - 1. */
TARGET static inline __attribute__((always_inline)) void i8_block(const int8_t *xb, uint32_t dpad,
                                                                  const vs_i8_queries *q, uint32_t j0,
                                                                  uint32_t mq, float k[3][VS_I8_BLOCK],
                                                                  bool l2, float *out, uint32_t ld)
{
    __m256i lo[4], hi[4];
    const __m256i ones = _mm256_set1_epi16(1);
    const int8_t *qc = q->c + (size_t)j0 * dpad;
    for (uint32_t i = 0; i < mq; i++)
        lo[i] = hi[i] = _mm256_setzero_si256();
    for (uint32_t g = 0; g < dpad / 4; g++) {
        __m256i xl = _mm256_loadu_si256((const __m256i *)(xb + g * 64));
        __m256i xh = _mm256_loadu_si256((const __m256i *)(xb + g * 64 + 32));
        __m256i al = _mm256_abs_epi8(xl), ah = _mm256_abs_epi8(xh);
        for (uint32_t i = 0; i < mq; i++) {
            __m256i qb = _mm256_set1_epi32(load_i32(qc + (size_t)i * dpad + g * 4));
            __m256i pl = _mm256_maddubs_epi16(al, _mm256_sign_epi8(qb, xl));
            __m256i ph = _mm256_maddubs_epi16(ah, _mm256_sign_epi8(qb, xh));
            lo[i] = _mm256_add_epi32(lo[i], _mm256_madd_epi16(pl, ones));
            hi[i] = _mm256_add_epi32(hi[i], _mm256_madd_epi16(ph, ones));
        }
    }
    for (uint32_t i = 0; i < mq; i++) {
        float *o = out + (size_t)i * ld;
        _mm256_storeu_ps(o, finish8(lo[i], k[0], k[1], k[2], q, j0 + i, l2));
        _mm256_storeu_ps(o + 8, finish8(hi[i], k[0] + 8, k[1] + 8, k[2] + 8, q, j0 + i, l2));
    }
}

/* Every query count goes through the repacked block here (AVX2 is the fallback path). The block
 * kernel writes 16 rows; a partial last block is written to a side buffer first. */
TARGET static void i8_scores(const int8_t *x, size_t stride, uint32_t n, uint32_t dpad, const vs_i8_queries *q,
                             bool l2, float *out, uint32_t ld, int8_t *scratch)
{
    uint32_t m = q->m;
    float tail[4 * VS_I8_BLOCK], k[3][VS_I8_BLOCK];
    for (uint32_t r0 = 0; r0 < n; r0 += VS_I8_BLOCK) {
        uint32_t nr = n - r0 < VS_I8_BLOCK ? n - r0 : VS_I8_BLOCK;
        vs_i8_repack(x + r0 * stride, stride, nr, dpad, scratch);
        vs_i8_block_consts(x + r0 * stride, stride, nr, dpad, k);
        for (uint32_t j = 0; j < m; j += 4) {
            uint32_t mq = m - j < 4 ? m - j : 4;
            float *o = nr == VS_I8_BLOCK ? out + (size_t)j * ld + r0 : tail;
            uint32_t old = nr == VS_I8_BLOCK ? ld : VS_I8_BLOCK;
            if (mq == 4)
                i8_block(scratch, dpad, q, j, 4, k, l2, o, old);
            else
                for (uint32_t i = 0; i < mq; i++)
                    i8_block(scratch, dpad, q, j + i, 1, k, l2, o + (size_t)i * old, old);
            if (nr < VS_I8_BLOCK)
                for (uint32_t i = 0; i < mq; i++)
                    memcpy(out + (size_t)(j + i) * ld + r0, tail + (size_t)i * VS_I8_BLOCK, nr * sizeof(float));
        }
    }
}

TARGET static void b1_tile(const uint64_t *x, uint32_t n, uint32_t words, const uint64_t *q,
                           uint32_t m, int32_t *out, uint32_t ld)
{
    for (uint32_t r = 0; r < n; r++) {
        const uint64_t *xr = x + (size_t)r * words;
        for (uint32_t j = 0; j < m; j++) {
            const uint64_t *qj = q + (size_t)j * words;
            int32_t diff = 0;
            for (uint32_t w = 0; w < words; w++)
                diff += (int32_t)_mm_popcnt_u64(xr[w] ^ qj[w]);
            out[(size_t)j * ld + r] = diff;
        }
    }
}

/* Dot of d floats; the tail handled with a mask. */
TARGET static inline float dot_f32(const float *a, const float *b, uint32_t d)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    uint32_t k = 0;
    for (; k + 16 <= d; k += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), acc1);
    }
    float s = hsum256(_mm256_add_ps(acc0, acc1));
    for (; k < d; k++)
        s += a[k] * b[k];
    return s;
}

TARGET static void f32_tile(const float *x, uint32_t n, uint32_t d, const float *q, uint32_t m,
                            float *out, uint32_t ld)
{
    for (uint32_t r = 0; r < n; r++)
        for (uint32_t j = 0; j < m; j++)
            out[(size_t)j * ld + r] = dot_f32(q + (size_t)j * d, x + (size_t)r * d, d);
}

TARGET static void f16_tile(const uint16_t *x, uint32_t n, uint32_t d, const float *q, uint32_t m,
                            float *out, uint32_t ld)
{
    for (uint32_t r = 0; r < n; r++) {
        const uint16_t *xr = x + (size_t)r * d;
        for (uint32_t j = 0; j < m; j++) {
            const float *qj = q + (size_t)j * d;
            __m256 acc = _mm256_setzero_ps();
            uint32_t k = 0;
            for (; k + 8 <= d; k += 8) {
                __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(xr + k)));
                acc = _mm256_fmadd_ps(xv, _mm256_loadu_ps(qj + k), acc);
            }
            float s = hsum256(acc);
            for (; k < d; k++)
                s += qj[k] * _cvtsh_ss(xr[k]);
            out[(size_t)j * ld + r] = s;
        }
    }
}

TARGET static void f16_to_f32(const uint16_t *in, float *out, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
    for (; i < n; i++)
        out[i] = _cvtsh_ss(in[i]);
}

TARGET static uint32_t above(const float *s, uint32_t n, float thr, uint32_t *idx)
{
    uint32_t c = 0, r = 0;
    __m256 t = _mm256_set1_ps(thr);
    for (; r + 8 <= n; r += 8) {
        unsigned bits = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + r), t, _CMP_GE_OQ));
        while (bits) {
            idx[c++] = r + (uint32_t)__builtin_ctz(bits);
            bits &= bits - 1;
        }
    }
    for (; r < n; r++)
        if (s[r] >= thr)
            idx[c++] = r;
    return c;
}

static const vs_cpu_kernels table = {
    .name = "avx2",
    .i8_scores = i8_scores,
    .b1_tile = b1_tile,
    .f32_tile = f32_tile,
    .f16_tile = f16_tile,
    .f16_to_f32 = f16_to_f32,
    .above = above,
};
const vs_cpu_kernels *const vs_cpu_kernels_avx2 = &table;
#else
#include "kernels.h"
const vs_cpu_kernels *const vs_cpu_kernels_avx2 = NULL;
#endif
