/*
 * quant.h: the arithmetic that decides results, shared by the core, the CPU backend and the CUDA
 * kernels (every function here is __host__ __device__ under nvcc), so that CI can test on the CPU
 * the very code the GPU runs.
 *
 * Scores. Every score is "higher is better": ip and cosine give the similarity (cosine vectors are
 * normalised before they are stored and at query time, so both are a dot product), l2 gives the
 * negated squared distance -(|q|^2 - 2 q.x + |x|^2). Ties go to the smaller id.
 *
 * i8 (LiRank's middle-max per row). A row x of dim d is stored as d int8 codes c and two floats:
 * scale = (max - min) / 255 and middle = min + 128 * scale, so that x ~= middle + scale * c with c in
 * [-128, 127] covering [min, max] exactly: data already on a grid of 256 levels (pixels) is stored
 * without loss. Then q.x = middle * sum(q) + scale * (q.c). The query is quantized too, symmetric,
 * q ~= qscale * qc with qc in [-127, 127], so q.c ~= qscale * (qc.c) runs on int8 dot instructions
 * with int32 accumulation (d <= 4096: |qc.c| <= 4096 * 127 * 128 < 2^31, no overflow).
 *
 * f16: IEEE half, converted here by bit manipulation (round to nearest even) so host and device
 * agree bit for bit; the CPU backend uses F16C when the processor has it, which rounds the same.
 *
 * b1: the vector is rotated by a seeded random orthogonal transform, three rounds of random sign
 * flips each followed by a normalised Walsh-Hadamard transform over the dimension padded to a power
 * of two, and the first b1_bits(dim) coordinates keep their sign (Sign-OPORP in LiNR's terms). The
 * score is the number of matching bits, an estimate of the angle; b1 always reranks.
 */
#ifndef VS_QUANT_H
#define VS_QUANT_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define VS_HD __host__ __device__ __forceinline__
#else
#define VS_HD static inline
#endif

/* ===== Ordering ===== */

/* Whether (sa, ia) ranks before (sb, ib): higher score, then smaller id. */
VS_HD int vs_better(float sa, uint64_t ia, float sb, uint64_t ib)
{
    return sa > sb || (sa == sb && ia < ib);
}

/* ===== Metric ===== */

/* Final score from a dot product: metric 2 (l2) turns it into the negated squared distance. */
VS_HD float vs_score_from_dot(int metric_is_l2, float dot, float qnorm2, float xnorm2)
{
    return metric_is_l2 ? -(qnorm2 - 2.0f * dot + xnorm2) : dot;
}

/* ===== i8 ===== */

/* Per-row scale and middle from the row's min and max. */
VS_HD void vs_i8_row_params(float mn, float mx, float *middle, float *scale)
{
    float s = (mx - mn) / 255.0f;
    if (!(s > 0.0f)) { /* constant row: every code 0, x = middle */
        *scale = 0.0f;
        *middle = mn;
        return;
    }
    *scale = s;
    *middle = mn + 128.0f * s;
}

/* Code of value x in a row with (middle, scale). */
VS_HD int8_t vs_i8_encode(float x, float middle, float scale)
{
    if (scale == 0.0f)
        return 0;
    float c = rintf((x - middle) / scale);
    if (c < -128.0f)
        c = -128.0f;
    if (c > 127.0f)
        c = 127.0f;
    return (int8_t)c;
}

/* Query quantization: qscale from the largest magnitude, codes in [-127, 127]. */
VS_HD float vs_i8_query_scale(float absmax) { return absmax > 0.0f ? absmax / 127.0f : 0.0f; }

VS_HD int8_t vs_i8_query_code(float q, float qscale)
{
    if (qscale == 0.0f)
        return 0;
    float c = rintf(q / qscale);
    if (c < -127.0f)
        c = -127.0f;
    if (c > 127.0f)
        c = 127.0f;
    return (int8_t)c;
}

/* Estimated q.x from the integer dot qc.c: middle * sum(q) + scale * qscale * (qc.c). */
VS_HD float vs_i8_dot(int32_t idot, float middle, float scale, float qsum, float qscale)
{
    return middle * qsum + scale * qscale * (float)idot;
}

/* ===== b1 ===== */

/* Bits kept per row: the dimension rounded up to 64. */
VS_HD uint32_t vs_b1_bits(uint32_t dim) { return (dim + 63u) & ~63u; }

/* Length the rotation works on: a power of two >= b1_bits(dim). */
VS_HD uint32_t vs_b1_rot_len(uint32_t dim)
{
    uint32_t n = 64, bits = vs_b1_bits(dim);
    while (n < bits)
        n <<= 1;
    return n;
}

/* The seeded random sign (+1 or -1) of coordinate i in rotation round r. */
VS_HD float vs_b1_sign(uint64_t seed, uint32_t round, uint32_t i)
{
    uint64_t z = seed ^ ((uint64_t)round << 32 | i);
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (z & 1u) ? -1.0f : 1.0f;
}

/* Score of a b1 pair from the count of differing bits. */
VS_HD float vs_b1_score(uint32_t bits, uint32_t differing) { return (float)(bits - differing); }

/* ===== f16 ===== */

/* IEEE half to float. */
VS_HD float vs_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ffu;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    union { uint32_t u; float f; } v;
    v.u = bits;
    return v.f;
}

/* Float to IEEE half, round to nearest even; overflow gives infinity. */
VS_HD uint16_t vs_f32_to_f16(float f)
{
    union { float f; uint32_t u; } v;
    v.f = f;
    uint32_t x = v.u, sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (absx < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        if (absx < 0x33000000u)
            return (uint16_t)sign;
        uint32_t e = absx >> 23, m = (absx & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14 .. 24 */
        uint32_t half = m >> shift, rem = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((absx >> 13) - ((127u - 15u) << 10)), rem = absx & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1u)))
        half++;
    return (uint16_t)(sign | half);
}

#endif
