/* kernels_avx512.c: AVX-512 (F, BW, VL, VNNI, VPOPCNTDQ) kernels (see kernels.h). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vpopcntdq,f16c,fma,popcnt")))

TARGET static inline int32_t load_i32(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Scores of 16 rows for query j from their integer dots: vs_i8_score lane by lane, the same float
 * operations in the same order (2 * dot as dot + dot, exact; the sign flipped as C's minus does).
 * k: the rows' middles, scales and norms. */
TARGET static inline __m512 finish16(__m512i idot, const __m512 k[3], const vs_i8_queries *q, uint32_t j,
                                     bool l2)
{
    __m512 dot = _mm512_add_ps(_mm512_mul_ps(k[0], _mm512_set1_ps(q->sum[j])),
                               _mm512_mul_ps(_mm512_mul_ps(k[1], _mm512_set1_ps(q->scale[j])),
                                             _mm512_cvtepi32_ps(idot)));
    if (!l2)
        return dot;
    __m512 d = _mm512_add_ps(_mm512_sub_ps(_mm512_set1_ps(q->norm2[j]), _mm512_add_ps(dot, dot)), k[2]);
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(d), _mm512_set1_epi32(INT32_MIN)));
}

/* The constants of rows [0, n) (n <= 16) as three vectors, missing rows zero. */
TARGET static inline void block_consts(const int8_t *x, size_t stride, uint32_t n, uint32_t dpad, __m512 k[3])
{
    float a[3][VS_I8_BLOCK];
    vs_i8_block_consts(x, stride, n, dpad, a);
    for (int i = 0; i < 3; i++)
        k[i] = _mm512_loadu_ps(a[i]);
}

/* Two blocks (32 rows) or one against up to 6 queries (q's j0 .. j0 + mq - 1): each 64-byte load of
 * row codes feeds every query's accumulator, each query broadcast feeds both blocks. k[b]: block
 * b's constants; rm[b]: its rows to write. */
TARGET static inline __attribute__((always_inline)) void i8_blocks(const int8_t *xb, uint32_t nb, uint32_t dpad,
                                                                   const vs_i8_queries *q, uint32_t j0,
                                                                   uint32_t mq, const __m512 k[2][3],
                                                                   const __mmask16 rm[2], bool l2, float *out,
                                                                   uint32_t ld)
{
    __m512i acc0[6], acc1[6];
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const size_t bstride = (size_t)dpad * VS_I8_BLOCK;
    const int8_t *qc = q->c + (size_t)j0 * dpad;
    for (uint32_t i = 0; i < mq; i++)
        acc0[i] = acc1[i] = _mm512_setzero_si512();
    for (uint32_t g = 0; g < dpad / 4; g++) {
        __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(xb + g * 64), flip);
        __m512i x1 = nb > 1 ? _mm512_xor_si512(_mm512_loadu_si512(xb + bstride + g * 64), flip) : x0;
        for (uint32_t i = 0; i < mq; i++) {
            __m512i qb = _mm512_set1_epi32(load_i32(qc + (size_t)i * dpad + g * 4));
            acc0[i] = _mm512_dpbusd_epi32(acc0[i], x0, qb);
            if (nb > 1)
                acc1[i] = _mm512_dpbusd_epi32(acc1[i], x1, qb);
        }
    }
    for (uint32_t i = 0; i < mq; i++) {
        __m512i bias = _mm512_set1_epi32(128 * q->csum[j0 + i]);
        float *o = out + (size_t)(j0 + i) * ld;
        _mm512_mask_storeu_ps(o, rm[0], finish16(_mm512_sub_epi32(acc0[i], bias), k[0], q, j0 + i, l2));
        if (nb > 1)
            _mm512_mask_storeu_ps(o + VS_I8_BLOCK, rm[1],
                                  finish16(_mm512_sub_epi32(acc1[i], bias), k[1], q, j0 + i, l2));
    }
}

/* The sum of a's 16 lanes in every lane of the result's low 128 bits. */
TARGET static inline __m128i sum_lanes(__m512i a)
{
    __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    return _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
}

/* Few queries: stream each row once, codes and constants, one 16-lane accumulator per query. Each
 * row's sum is shifted into a vector of 16 rows' dots, which are finished together with the rows'
 * constants (gathered from the rows just read). The last chunk of a row is a masked load, so
 * nothing past dpad is read. */
TARGET static inline __attribute__((always_inline)) void i8_direct(const int8_t *x, size_t stride, uint32_t n,
                                                                   uint32_t dpad, const vs_i8_queries *q,
                                                                   uint32_t m, bool l2, float *out, uint32_t ld)
{
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const uint32_t full = dpad / 64, rest = dpad % 64;
    const __mmask64 tailm = rest ? (((__mmask64)1 << rest) - 1) : 0;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i offs = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)stride));
    for (uint32_t r0 = 0; r0 < n; r0 += VS_I8_BLOCK) {
        uint32_t nr = n - r0 < VS_I8_BLOCK ? n - r0 : VS_I8_BLOCK;
        const int8_t *xb = x + r0 * stride;
        __m512i dots[4];
        for (uint32_t j = 0; j < m; j++)
            dots[j] = _mm512_setzero_si512();
        for (uint32_t r = 0; r < nr; r++) {
            const int8_t *xr = xb + r * stride;
            __m512i acc[4];
            for (uint32_t j = 0; j < m; j++)
                acc[j] = _mm512_setzero_si512();
            for (uint32_t c = 0; c < full; c++) {
                __m512i xv = _mm512_xor_si512(_mm512_loadu_si512(xr + c * 64), flip);
                for (uint32_t j = 0; j < m; j++)
                    acc[j] = _mm512_dpbusd_epi32(acc[j], xv, _mm512_loadu_si512(q->c + (size_t)j * dpad + c * 64));
            }
            if (rest) {
                /* masked-off bytes load as 0 and flip to 128, but the query's are 0 too */
                __m512i xv = _mm512_xor_si512(_mm512_maskz_loadu_epi8(tailm, xr + full * 64), flip);
                for (uint32_t j = 0; j < m; j++)
                    acc[j] = _mm512_dpbusd_epi32(
                        acc[j], xv, _mm512_maskz_loadu_epi8(tailm, q->c + (size_t)j * dpad + full * 64));
            }
            /* row r's dot enters at lane 15; the earlier rows move down one lane */
            for (uint32_t j = 0; j < m; j++)
                dots[j] = _mm512_alignr_epi32(_mm512_castsi128_si512(sum_lanes(acc[j])), dots[j], 1);
        }
        __mmask16 rm = (__mmask16)((1u << nr) - 1);
        /* the constants, from lines just read (a gather: measured faster than copying them out) */
        __m512 k[3];
        const int8_t *kb = xb + dpad;
        k[0] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), rm, offs, kb, 1);
        k[1] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), rm, offs, kb + 4, 1);
        k[2] = l2 ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), rm, offs, kb + 8, 1) : k[1];
        /* a short last group: row r sits at lane 16 - nr + r */
        __m512i back = _mm512_add_epi32(lane, _mm512_set1_epi32((int)(VS_I8_BLOCK - nr)));
        for (uint32_t j = 0; j < m; j++) {
            __m512i dj = nr == VS_I8_BLOCK ? dots[j] : _mm512_permutexvar_epi32(back, dots[j]);
            dj = _mm512_sub_epi32(dj, _mm512_set1_epi32(128 * q->csum[j]));
            _mm512_mask_storeu_ps(out + (size_t)j * ld + r0, rm, finish16(dj, k, q, j, l2));
        }
    }
}

TARGET static void i8_scores(const int8_t *x, size_t stride, uint32_t n, uint32_t dpad, const vs_i8_queries *q,
                             bool l2, float *out, uint32_t ld, int8_t *scratch)
{
    uint32_t m = q->m;
    if (m <= 4) {
        switch (m) {
        case 1: i8_direct(x, stride, n, dpad, q, 1, l2, out, ld); return;
        case 2: i8_direct(x, stride, n, dpad, q, 2, l2, out, ld); return;
        case 3: i8_direct(x, stride, n, dpad, q, 3, l2, out, ld); return;
        default: i8_direct(x, stride, n, dpad, q, 4, l2, out, ld); return;
        }
    }
    const size_t bstride = (size_t)dpad * VS_I8_BLOCK;
    for (uint32_t r0 = 0; r0 < n; r0 += 2 * VS_I8_BLOCK) {
        uint32_t nr = n - r0 < 2 * VS_I8_BLOCK ? n - r0 : 2 * VS_I8_BLOCK;
        uint32_t nb = nr > VS_I8_BLOCK ? 2 : 1, n0 = nr < VS_I8_BLOCK ? nr : VS_I8_BLOCK;
        __m512 k[2][3];
        __mmask16 rm[2] = {(__mmask16)((1u << n0) - 1), (__mmask16)((1u << (nr - n0)) - 1)};
        vs_i8_repack(x + r0 * stride, stride, n0, dpad, scratch);
        block_consts(x + r0 * stride, stride, n0, dpad, k[0]);
        if (nb == 2) {
            vs_i8_repack(x + (r0 + VS_I8_BLOCK) * stride, stride, nr - n0, dpad, scratch + bstride);
            block_consts(x + (r0 + VS_I8_BLOCK) * stride, stride, nr - n0, dpad, k[1]);
        }
        float *o = out + r0;
        for (uint32_t j = 0; j < m;) {
            uint32_t mq = m - j >= 6 ? 6 : m - j >= 2 ? 2 : 1;
            if (nb == 2) {
                if (mq == 6)
                    i8_blocks(scratch, 2, dpad, q, j, 6, k, rm, l2, o, ld);
                else if (mq == 2)
                    i8_blocks(scratch, 2, dpad, q, j, 2, k, rm, l2, o, ld);
                else
                    i8_blocks(scratch, 2, dpad, q, j, 1, k, rm, l2, o, ld);
            } else {
                if (mq == 6)
                    i8_blocks(scratch, 1, dpad, q, j, 6, k, rm, l2, o, ld);
                else if (mq == 2)
                    i8_blocks(scratch, 1, dpad, q, j, 2, k, rm, l2, o, ld);
                else
                    i8_blocks(scratch, 1, dpad, q, j, 1, k, rm, l2, o, ld);
            }
            j += mq;
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
            __m512i acc = _mm512_setzero_si512();
            uint32_t w = 0;
            for (; w + 8 <= words; w += 8)
                acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(
                                                _mm512_loadu_si512(xr + w), _mm512_loadu_si512(qj + w))));
            int64_t diff = _mm512_reduce_add_epi64(acc);
            for (; w < words; w++)
                diff += (int64_t)_mm_popcnt_u64(xr[w] ^ qj[w]);
            out[(size_t)j * ld + r] = (int32_t)diff;
        }
    }
}

/* Dot of d floats with a masked tail. */
TARGET static inline float dot_f32(const float *a, const float *b, uint32_t d)
{
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    uint32_t k = 0;
    for (; k + 32 <= d; k += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k + 16), _mm512_loadu_ps(b + k + 16), acc1);
    }
    for (; k < d; k += 16) {
        __mmask16 mk = d - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (d - k)) - 1);
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, a + k), _mm512_maskz_loadu_ps(mk, b + k), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
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
            __m512 acc = _mm512_setzero_ps();
            for (uint32_t k = 0; k < d; k += 16) {
                __mmask16 mk = d - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (d - k)) - 1);
                __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, xr + k));
                acc = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(mk, qj + k), acc);
            }
            out[(size_t)j * ld + r] = _mm512_reduce_add_ps(acc);
        }
    }
}

TARGET static void f16_to_f32(const uint16_t *in, float *out, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(in + i))));
    for (; i < n; i++)
        out[i] = _cvtsh_ss(in[i]);
}

TARGET static uint32_t above(const float *s, uint32_t n, float thr, uint32_t *idx)
{
    uint32_t c = 0, r = 0;
    __m512 t = _mm512_set1_ps(thr);
    __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; r + 16 <= n; r += 16) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(s + r), t, _CMP_GE_OQ);
        if (m) {
            _mm512_mask_compressstoreu_epi32(idx + c, m, _mm512_add_epi32(lane, _mm512_set1_epi32((int)r)));
            c += (uint32_t)__builtin_popcount(m);
        }
    }
    for (; r < n; r++)
        if (s[r] >= thr)
            idx[c++] = r;
    return c;
}

static const vs_cpu_kernels table = {
    .name = "avx512",
    .i8_scores = i8_scores,
    .b1_tile = b1_tile,
    .f32_tile = f32_tile,
    .f16_tile = f16_tile,
    .f16_to_f32 = f16_to_f32,
    .above = above,
};
const vs_cpu_kernels *const vs_cpu_kernels_avx512 = &table;
#else
#include "kernels.h"
const vs_cpu_kernels *const vs_cpu_kernels_avx512 = NULL;
#endif
