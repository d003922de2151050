/*
 * cuda_kern.h: the per-element arithmetic of the CUDA backend's kernels, as __host__ __device__
 * functions (VS_HD, from quant.h) so that tests/unit/test_cuda_host.c runs on the CPU the very code
 * the GPU runs.
 *
 * A kernel produces, for one row and one query vector, a raw value: a float dot product (f32, f16),
 * an int32 code dot (i8) or an int32 count of differing bits (b1). vs_cu_vec_score turns it into the
 * vector's score (metric applied); a term's score is the max over its vectors; the terms combine
 * (SUM or MAX) into the query's score; vs_cu_canon makes the score a value the sort orders the same
 * way vs_better does (no NaN, no negative zero); vs_cu_passes tests it against the query's running
 * threshold, a (score, id) pair, so that ties at the threshold are decided by id exactly as the
 * final order decides them.
 */
#ifndef VS_CUDA_KERN_H
#define VS_CUDA_KERN_H

#include <stdint.h>

#include "quant.h"

/* Per-row constants as kept in a row's 16-byte constant slot (see cuda_plan.h). */
typedef struct vs_cu_rowc {
    float middle; /* i8 */
    float scale;  /* i8, f16 */
    float norm2;  /* l2 */
    float pad;
} vs_cu_rowc;

/* Per-query-vector constants. */
typedef struct vs_cu_qvc {
    float scale;  /* i8: q ~= scale * codes */
    float sum;    /* i8: sum of the f32 values */
    float norm2;  /* |q|^2 (l2) */
    float gscale; /* f16 on cuBLAS: undoes the power of two the split query was scaled by */
} vs_cu_qvc;

/* Score of one row against one query vector from the kernel's raw value. storage is a vs_storage,
 * is_l2 whether the field's metric is l2, bits the b1 row length in bits. */
VS_HD float vs_cu_vec_score(uint32_t storage, int is_l2, uint32_t bits, float raw_f, int32_t raw_i,
                            vs_cu_rowc rc, vs_cu_qvc qc)
{
    float dot;
    if (storage == 3u) /* VS_STORAGE_B1: matching bits, whatever the metric */
        return vs_b1_score(bits, (uint32_t)raw_i);
    if (storage == 2u) /* VS_STORAGE_I8 */
        dot = vs_i8_dot(raw_i, rc.middle, rc.scale, qc.sum, qc.scale);
    else if (storage == 1u) /* VS_STORAGE_F16: x = scale * h, the dot ran on h */
        dot = rc.scale * raw_f;
    else
        dot = raw_f;
    return vs_score_from_dot(is_l2, dot, qc.norm2, rc.norm2);
}

/* ===== f16 queries for tensor cores =====
 * cuBLAS's f16 GEMM takes the query in f16 too, which would cost ~1e-3 of relative accuracy that
 * the fused kernel (f32 queries) and the CPU backend do not lose. So the query goes in as two f16
 * columns, hi = f16(q s) and lo = f16(q s - hi), s a power of two putting max |q s| in [1024,
 * 2048) (no overflow, no subnormals for the large coordinates): products of halves are exact in the
 * f32 accumulator, and (dot(h, hi) + dot(h, lo)) / s carries about 2^-22 of relative error. */

/* The power of two s for a query whose largest magnitude is amax. */
VS_HD float vs_cu_f16_split_scale(float amax)
{
    int ex = 0;
    if (!(amax > 0.0f))
        return 1.0f;
    (void)frexpf(amax, &ex);
    return ldexpf(1.0f, 11 - ex);
}

/* hi and lo halves of q * s. */
VS_HD void vs_cu_f16_split(float q, float s, uint16_t *hi, uint16_t *lo)
{
    float x = q * s;
    *hi = vs_f32_to_f16(x);
    *lo = vs_f32_to_f16(x - vs_f16_to_f32(*hi));
}

/* ===== Combining terms ===== */

typedef struct vs_cu_comb {
    float num;   /* SUM: sum of weight * term score */
    float den;   /* SUM: sum of weights of present terms */
    float first; /* SUM: the first present term's score */
    float mx;    /* MAX: best weight * term score */
    int any;     /* present terms (capped at 2: one or more than one is what matters) */
} vs_cu_comb;

VS_HD void vs_cu_comb_init(vs_cu_comb *c)
{
    c->num = 0.0f;
    c->den = 0.0f;
    c->first = 0.0f;
    c->mx = -INFINITY;
    c->any = 0;
}

/* Adds a present term: weight w, term score s (the max over its vectors). combine: 0 SUM, 1 MAX. */
VS_HD void vs_cu_comb_add(vs_cu_comb *c, uint32_t combine, float w, float s)
{
    if (combine == 0u) {
        if (!c->any)
            c->first = s;
        c->num += w * s;
        c->den += w;
    } else {
        float v = w * s;
        if (!c->any || v > c->mx)
            c->mx = v;
    }
    c->any = c->any ? 2 : 1;
}

/* The query's score; only meaningful when c->any. A SUM over one present term is that term's
 * score exactly ((w s) / w could differ from s in its last bit), so one-term queries score the
 * same whichever kernel runs them. */
VS_HD float vs_cu_comb_final(const vs_cu_comb *c, uint32_t combine)
{
    if (combine != 0u)
        return c->mx;
    return c->any == 1 ? c->first : c->num / c->den;
}

/* A query of one term: its combined score from the term's score s, as vs_cu_comb_* gives it
 * (SUM: s; MAX: w s), without their bookkeeping. */
VS_HD float vs_cu_single_term(uint32_t combine, float w, float s)
{
    return combine == 0u ? s : w * s;
}

/* ===== Ordering ===== */

/* The score as ordered: NaN (never expected, but an overflowing l2 can make one) becomes -inf and
 * -0 becomes +0, so that "a > b or (a == b and smaller id)" and the radix sort of the float agree. */
VS_HD float vs_cu_canon(float s)
{
    if (s != s)
        return -INFINITY;
    return s + 0.0f;
}

/* Whether (s, id) ranks at or above the threshold (ts, tid): the threshold is a candidate that the
 * query's k-th best is known to reach, so everything at or above it must be kept. */
VS_HD int vs_cu_passes(float s, uint64_t id, float ts, uint64_t tid)
{
    return s > ts || (s == ts && id <= tid);
}

/* A monotone 32-bit key of a canonical score: key(a) > key(b) exactly when a > b. */
VS_HD uint32_t vs_cu_score_key(float s)
{
    union { float f; uint32_t u; } v;
    v.f = s;
    return (v.u & 0x80000000u) ? ~v.u : (v.u | 0x80000000u);
}

#endif
