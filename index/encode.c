/* encode.c: f32 rows and queries to storage encodings (see encode.h, quant.h). */
#include "encode.h"

#include <math.h>
#include <string.h>

#include "quant.h"

void vs_field_layout_init(vs_field_layout *l, const vs_field_spec *spec)
{
    memset(l, 0, sizeof *l);
    l->dim = spec->dim;
    l->metric = spec->metric;
    l->storage = spec->storage;
    switch (spec->storage) {
    case VS_STORAGE_F32: l->code_bytes = spec->dim * 4; break;
    case VS_STORAGE_F16: l->code_bytes = spec->dim * 2; break;
    case VS_STORAGE_I8: l->code_bytes = spec->dim; break;
    case VS_STORAGE_B1:
        l->b1_words = vs_b1_bits(spec->dim) / 64;
        l->code_bytes = l->b1_words * 8;
        break;
    }
}

bool vs_all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return false;
    return true;
}

double vs_norm2(const float *x, uint32_t dim)
{
    double s = 0;
    for (uint32_t i = 0; i < dim; i++)
        s += (double)x[i] * x[i];
    return s;
}

bool vs_normalize(const float *x, uint32_t dim, float *out)
{
    double n = sqrt(vs_norm2(x, dim));
    if (!(n > 0))
        return false;
    for (uint32_t i = 0; i < dim; i++)
        out[i] = (float)(x[i] / n);
    return true;
}

/* In-place normalised Walsh-Hadamard transform of x[0..n), n a power of two. */
static void fwht(float *x, uint32_t n)
{
    for (uint32_t h = 1; h < n; h <<= 1)
        for (uint32_t i = 0; i < n; i += h << 1)
            for (uint32_t j = i; j < i + h; j++) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
    float s = 1.0f / sqrtf((float)n);
    for (uint32_t i = 0; i < n; i++)
        x[i] *= s;
}

void vs_b1_encode(uint32_t dim, const float *x, uint64_t *bits, float *work)
{
    uint32_t n = vs_b1_rot_len(dim), nbits = vs_b1_bits(dim);
    memcpy(work, x, dim * sizeof *work);
    memset(work + dim, 0, (n - dim) * sizeof *work);
    for (uint32_t r = 0; r < 3; r++) {
        for (uint32_t i = 0; i < n; i++)
            work[i] *= vs_b1_sign(VS_B1_SEED, r, i);
        fwht(work, n);
    }
    memset(bits, 0, nbits / 8);
    for (uint32_t i = 0; i < nbits; i++)
        if (work[i] > 0.0f)
            bits[i >> 6] |= 1ull << (i & 63);
}

/* f16 keeps the row as given, scaled by a power of two (exact) so its largest value lies in
 * [1024, 2048): no overflow, no subnormals, and integer data such as pixels stays exact, which
 * normalising first would lose. The per-row scale undoes the power of two, and for cosine also
 * divides by the norm, so q . (scale * h) is the score. */
static void encode_f16(const float *x, uint32_t d, double norm, uint16_t *h, float *scale)
{
    float amax = 0.0f;
    for (uint32_t i = 0; i < d; i++)
        amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    int ex = 0;
    if (amax > 0.0f)
        frexpf(amax, &ex);
    float up = ldexpf(1.0f, 11 - ex);
    for (uint32_t i = 0; i < d; i++)
        h[i] = vs_f32_to_f16(x[i] * up);
    *scale = (float)(ldexp(1.0, ex - 11) / norm);
}

void vs_encode_row(const vs_field_layout *l, const float *raw, void *codes, vs_row_consts *consts,
                   float *work)
{
    uint32_t d = l->dim;
    const float *x = raw;
    bool cosine = l->metric == VS_METRIC_COSINE;
    if (cosine && l->storage != VS_STORAGE_F16) {
        float *n = work + vs_b1_rot_len(d);
        vs_normalize(raw, d, n);
        x = n;
    }
    consts->middle = consts->scale = 0.0f;
    consts->norm2 = cosine ? 1.0f : (float)vs_norm2(raw, d);
    switch (l->storage) {
    case VS_STORAGE_F32: memcpy(codes, x, d * sizeof(float)); break;
    case VS_STORAGE_F16:
        encode_f16(raw, d, cosine ? sqrt(vs_norm2(raw, d)) : 1.0, codes, &consts->scale);
        break;
    case VS_STORAGE_I8: {
        float mn = x[0], mx = x[0];
        for (uint32_t i = 1; i < d; i++) {
            mn = x[i] < mn ? x[i] : mn;
            mx = x[i] > mx ? x[i] : mx;
        }
        vs_i8_row_params(mn, mx, &consts->middle, &consts->scale);
        int8_t *c = codes;
        for (uint32_t i = 0; i < d; i++)
            c[i] = vs_i8_encode(x[i], consts->middle, consts->scale);
        break;
    }
    case VS_STORAGE_B1: vs_b1_encode(d, x, codes, work); break;
    }
}

void vs_decode_row(const vs_field_layout *l, const void *codes, const vs_row_consts *consts,
                   float *out)
{
    uint32_t d = l->dim;
    switch (l->storage) {
    case VS_STORAGE_F32: memcpy(out, codes, d * sizeof(float)); break;
    case VS_STORAGE_F16:
        for (uint32_t i = 0; i < d; i++)
            out[i] = consts->scale * vs_f16_to_f32(((const uint16_t *)codes)[i]);
        break;
    case VS_STORAGE_I8:
        for (uint32_t i = 0; i < d; i++)
            out[i] = consts->middle + consts->scale * ((const int8_t *)codes)[i];
        break;
    case VS_STORAGE_B1: memset(out, 0, d * sizeof(float)); break;
    }
}

void vs_i8_encode_query(const float *q, uint32_t dim, int8_t *codes, float *scale, float *sum,
                        int32_t *csum)
{
    float amax = 0.0f;
    double s = 0;
    for (uint32_t i = 0; i < dim; i++) {
        float a = fabsf(q[i]);
        amax = a > amax ? a : amax;
        s += q[i];
    }
    *scale = vs_i8_query_scale(amax);
    *sum = (float)s;
    int32_t cs = 0;
    for (uint32_t i = 0; i < dim; i++) {
        codes[i] = vs_i8_query_code(q[i], *scale);
        cs += codes[i];
    }
    *csum = cs;
}
