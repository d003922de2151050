/* kernels_avx512.c: AVX-512 (F, BW, VL, VNNI, VPOPCNTDQ) kernels (see kernels.h). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#include "kernels.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vpopcntdq,f16c,fma,popcnt")))

TARGET static inline int32_t load_i32(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Two blocks (32 rows) or one against up to 6 queries: each 64-byte load of row codes feeds every
 * query's accumulator, each query broadcast feeds both blocks. */
TARGET static inline __attribute__((always_inline)) void i8_blocks(const int8_t *xb, uint32_t nb,
                                                                   uint32_t dpad, const int8_t *q,
                                                                   const int32_t *qcsum, uint32_t mq,
                                                                   int32_t *out, uint32_t ld)
{
    __m512i acc0[6], acc1[6];
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const size_t bstride = (size_t)dpad * VS_I8_BLOCK;
    for (uint32_t i = 0; i < mq; i++)
        acc0[i] = acc1[i] = _mm512_setzero_si512();
    for (uint32_t g = 0; g < dpad / 4; g++) {
        __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(xb + g * 64), flip);
        __m512i x1 = nb > 1 ? _mm512_xor_si512(_mm512_loadu_si512(xb + bstride + g * 64), flip) : x0;
        for (uint32_t i = 0; i < mq; i++) {
            __m512i qb = _mm512_set1_epi32(load_i32(q + (size_t)i * dpad + g * 4));
            acc0[i] = _mm512_dpbusd_epi32(acc0[i], x0, qb);
            if (nb > 1)
                acc1[i] = _mm512_dpbusd_epi32(acc1[i], x1, qb);
        }
    }
    for (uint32_t i = 0; i < mq; i++) {
        __m512i bias = _mm512_set1_epi32(128 * qcsum[i]);
        _mm512_storeu_si512(out + (size_t)i * ld, _mm512_sub_epi32(acc0[i], bias));
        if (nb > 1)
            _mm512_storeu_si512(out + (size_t)i * ld + VS_I8_BLOCK, _mm512_sub_epi32(acc1[i], bias));
    }
}

/* Few queries: stream each row once, one 16-lane accumulator per query, reduced per row. The last
 * chunk of a row is a masked load, so nothing past dpad is read. */
TARGET static inline __attribute__((always_inline)) void i8_direct(const int8_t *x, size_t stride, uint32_t n,
                                                                   uint32_t dpad, const int8_t *q,
                                                                   const int32_t *qcsum, uint32_t m,
                                                                   int32_t *out, uint32_t ld)
{
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const uint32_t full = dpad / 64, rest = dpad % 64;
    const __mmask64 tailm = rest ? (((__mmask64)1 << rest) - 1) : 0;
    for (uint32_t r = 0; r < n; r++) {
        const int8_t *xr = x + r * stride;
        __m512i acc[4];
        for (uint32_t j = 0; j < m; j++)
            acc[j] = _mm512_setzero_si512();
        for (uint32_t c = 0; c < full; c++) {
            __m512i xv = _mm512_xor_si512(_mm512_loadu_si512(xr + c * 64), flip);
            for (uint32_t j = 0; j < m; j++)
                acc[j] = _mm512_dpbusd_epi32(acc[j], xv, _mm512_loadu_si512(q + (size_t)j * dpad + c * 64));
        }
        if (rest) {
            /* masked-off bytes load as 0 and flip to 128, but the query's are 0 too */
            __m512i xv = _mm512_xor_si512(_mm512_maskz_loadu_epi8(tailm, xr + full * 64), flip);
            for (uint32_t j = 0; j < m; j++)
                acc[j] = _mm512_dpbusd_epi32(acc[j], xv,
                                             _mm512_maskz_loadu_epi8(tailm, q + (size_t)j * dpad + full * 64));
        }
        for (uint32_t j = 0; j < m; j++)
            out[(size_t)j * ld + r] = _mm512_reduce_add_epi32(acc[j]) - 128 * qcsum[j];
    }
}

TARGET static void i8_rows(const int8_t *x, size_t stride, uint32_t n, uint32_t dpad, const int8_t *q,
                           const int32_t *qcsum, uint32_t m, int32_t *out, uint32_t ld, int8_t *scratch)
{
    if (m <= 4) {
        switch (m) {
        case 1: i8_direct(x, stride, n, dpad, q, qcsum, 1, out, ld); return;
        case 2: i8_direct(x, stride, n, dpad, q, qcsum, 2, out, ld); return;
        case 3: i8_direct(x, stride, n, dpad, q, qcsum, 3, out, ld); return;
        default: i8_direct(x, stride, n, dpad, q, qcsum, 4, out, ld); return;
        }
    }
    int32_t tail[6 * 2 * VS_I8_BLOCK];
    const size_t bstride = (size_t)dpad * VS_I8_BLOCK;
    for (uint32_t r0 = 0; r0 < n; r0 += 2 * VS_I8_BLOCK) {
        uint32_t nr = n - r0 < 2 * VS_I8_BLOCK ? n - r0 : 2 * VS_I8_BLOCK;
        uint32_t nb = nr > VS_I8_BLOCK ? 2 : 1;
        vs_i8_repack(x + r0 * stride, stride, nr < VS_I8_BLOCK ? nr : VS_I8_BLOCK, dpad, scratch);
        if (nb == 2)
            vs_i8_repack(x + (r0 + VS_I8_BLOCK) * stride, stride, nr - VS_I8_BLOCK, dpad, scratch + bstride);
        bool whole = nr == nb * VS_I8_BLOCK;
        for (uint32_t j = 0; j < m;) {
            uint32_t mq = m - j >= 6 ? 6 : m - j >= 2 ? 2 : 1;
            int32_t *o = whole ? out + (size_t)j * ld + r0 : tail;
            uint32_t old = whole ? ld : 2 * VS_I8_BLOCK;
            const int8_t *qj = q + (size_t)j * dpad;
            if (nb == 2) {
                if (mq == 6)
                    i8_blocks(scratch, 2, dpad, qj, qcsum + j, 6, o, old);
                else if (mq == 2)
                    i8_blocks(scratch, 2, dpad, qj, qcsum + j, 2, o, old);
                else
                    i8_blocks(scratch, 2, dpad, qj, qcsum + j, 1, o, old);
            } else {
                if (mq == 6)
                    i8_blocks(scratch, 1, dpad, qj, qcsum + j, 6, o, old);
                else if (mq == 2)
                    i8_blocks(scratch, 1, dpad, qj, qcsum + j, 2, o, old);
                else
                    i8_blocks(scratch, 1, dpad, qj, qcsum + j, 1, o, old);
            }
            if (!whole)
                for (uint32_t i = 0; i < mq; i++)
                    memcpy(out + (size_t)(j + i) * ld + r0, tail + (size_t)i * old, nr * sizeof(int32_t));
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
    .i8_rows = i8_rows,
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
