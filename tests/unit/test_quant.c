/*
 * test_quant.c: the arithmetic every backend shares (quant.h, encode.c) and the core's small
 * structures (id map, top-k), each against a plain reference.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu/kernels.h"
#include "encode.h"
#include "idmap.h"
#include "quant.h"
#include "testutil.h"
#include "topk.h"

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f)
{
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
#endif

/* f16 conversion: every half round-trips, and random floats round like F16C does. */
static void test_f16(vs_rng *r)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = vs_f16_to_f32((uint16_t)h);
        if (isnan(f))
            continue;
        CHECKF(vs_f32_to_f16(f) == h, "half 0x%04x -> %g -> 0x%04x", h, f, vs_f32_to_f16(f));
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (vs_cpu_has_f16c()) {
        for (int i = 0; i < 1000000; i++) {
            union { uint32_t u; float f; } v;
            v.u = (uint32_t)vs_rng_next(r);
            if (isnan(v.f))
                continue;
            CHECKF(vs_f32_to_f16(v.f) == hw_f32_to_f16(v.f), "%a: 0x%04x, F16C 0x%04x", v.f,
                   vs_f32_to_f16(v.f), hw_f32_to_f16(v.f));
        }
        for (uint32_t h = 0; h < 65536; h++) {
            float a = vs_f16_to_f32((uint16_t)h), b = hw_f16_to_f32((uint16_t)h);
            CHECK((isnan(a) && isnan(b)) || a == b);
        }
    } else {
        printf("SKIP F16C comparison: no F16C here\n");
    }
#endif
}

/* i8: codes cover [min, max]; data on a 256-level grid is stored exactly; error <= scale / 2. */
static void test_i8(vs_rng *r)
{
    vs_field_spec sp = {.name = "x", .dim = 129, .metric = VS_METRIC_IP, .storage = VS_STORAGE_I8};
    vs_field_layout l;
    vs_field_layout_init(&l, &sp);
    float x[129], back[129];
    int8_t c[129];
    vs_row_consts k;
    float work[512];
    for (int rep = 0; rep < 200; rep++) {
        for (int i = 0; i < 129; i++)
            x[i] = (float)(vs_rng_gauss(r) * (1 + rep));
        vs_encode_row(&l, x, c, &k, work);
        vs_decode_row(&l, c, &k, back);
        for (int i = 0; i < 129; i++)
            CHECKF(fabsf(back[i] - x[i]) <= k.scale * 0.5001f + 1e-6f, "i8 error %g > scale/2 %g",
                   fabsf(back[i] - x[i]), k.scale / 2);
    }
    for (int i = 0; i < 129; i++) /* pixels: integers 0..255 with both ends present */
        x[i] = (float)(i == 0 ? 0 : i == 1 ? 255 : vs_rng_below(r, 256));
    vs_encode_row(&l, x, c, &k, work);
    vs_decode_row(&l, c, &k, back);
    for (int i = 0; i < 129; i++)
        CHECKF(fabsf(back[i] - x[i]) < 1e-3f, "pixel %g came back %g", x[i], back[i]);
    float q[129];
    int8_t qc[129];
    float qs, qsum;
    int32_t csum;
    for (int i = 0; i < 129; i++)
        q[i] = (float)vs_rng_gauss(r);
    vs_i8_encode_query(q, 129, qc, &qs, &qsum, &csum);
    int32_t idot = 0, cs = 0, maxc = 0;
    double exact = 0, bound = 0;
    for (int i = 0; i < 129; i++) {
        bound += fabs(back[i]) * qs * 0.5; /* each query code is off by at most half a step */
        idot += qc[i] * c[i];
        cs += qc[i];
        maxc = abs(qc[i]) > maxc ? abs(qc[i]) : maxc;
        exact += (double)q[i] * back[i];
    }
    CHECK(cs == csum && maxc == 127);
    float est = vs_i8_dot(idot, k.middle, k.scale, qsum, qs);
    CHECKF(fabs(est - exact) <= bound * 1.001 + 1e-3, "i8 dot %g vs %g: off by more than %g", est, exact, bound);
    float flat[5] = {3, 3, 3, 3, 3};
    vs_field_spec s5 = {.name = "x", .dim = 5, .storage = VS_STORAGE_I8};
    vs_field_layout l5;
    vs_field_layout_init(&l5, &s5);
    vs_encode_row(&l5, flat, c, &k, work);
    vs_decode_row(&l5, c, &k, back);
    CHECK(k.scale == 0 && back[4] == 3);
}

/* f16 rows: integer data (pixels) is stored exactly, huge and tiny rows neither overflow nor
 * vanish, and cosine rows decode normalised. */
static void test_f16_rows(vs_rng *r)
{
    float x[50], back[50], work[256];
    uint16_t h[50];
    vs_row_consts k;
    vs_field_spec sp = {.name = "x", .dim = 50, .metric = VS_METRIC_L2, .storage = VS_STORAGE_F16};
    vs_field_layout l;
    vs_field_layout_init(&l, &sp);
    for (int i = 0; i < 50; i++)
        x[i] = (float)vs_rng_below(r, 256);
    vs_encode_row(&l, x, h, &k, work);
    vs_decode_row(&l, h, &k, back);
    for (int i = 0; i < 50; i++)
        CHECKF(back[i] == x[i], "pixel %g stored as %g", x[i], back[i]);
    for (int i = 0; i < 50; i++)
        x[i] = (float)(vs_rng_gauss(r) * 1e9); /* beyond f16's 65504 */
    vs_encode_row(&l, x, h, &k, work);
    vs_decode_row(&l, h, &k, back);
    for (int i = 0; i < 50; i++)
        CHECKF(fabsf(back[i] - x[i]) <= 1e-3f * fabsf(x[i]) + 1e-3f * 1e9f / 1024, "huge %g came back %g", x[i], back[i]);
    sp.metric = VS_METRIC_COSINE;
    vs_field_layout_init(&l, &sp);
    for (int i = 0; i < 50; i++)
        x[i] = (float)(vs_rng_gauss(r) * 1e-20); /* below f16's smallest subnormal */
    vs_encode_row(&l, x, h, &k, work);
    vs_decode_row(&l, h, &k, back);
    double n2 = vs_norm2(back, 50);
    CHECKF(fabs(n2 - 1.0) < 2e-3, "tiny cosine row decodes to |x|^2 = %g, not 1", n2);
}

/* b1: the rotation keeps norms (it is orthogonal), and close vectors share more bits. */
static void test_b1(vs_rng *r)
{
    uint32_t d = 100, n = vs_b1_rot_len(d);
    CHECK(vs_b1_bits(d) == 128 && n == 128 && vs_b1_bits(1) == 64 && vs_b1_bits(64) == 64);
    float x[100], y[100], z[100], *work = malloc(n * sizeof(float));
    for (int i = 0; i < 100; i++) {
        x[i] = (float)vs_rng_gauss(r);
        y[i] = x[i] + 0.1f * (float)vs_rng_gauss(r);
        z[i] = (float)vs_rng_gauss(r);
    }
    uint64_t bx[2], by[2], bz[2];
    vs_b1_encode(d, x, bx, work);
    double rot2 = 0;
    for (uint32_t i = 0; i < n; i++)
        rot2 += (double)work[i] * work[i];
    CHECKF(fabs(rot2 - vs_norm2(x, d)) < 1e-3 * vs_norm2(x, d), "rotation changed |x|^2: %g vs %g", rot2,
           vs_norm2(x, d));
    vs_b1_encode(d, y, by, work);
    vs_b1_encode(d, z, bz, work);
    int near = __builtin_popcountll(bx[0] ^ by[0]) + __builtin_popcountll(bx[1] ^ by[1]);
    int far = __builtin_popcountll(bx[0] ^ bz[0]) + __builtin_popcountll(bx[1] ^ bz[1]);
    CHECKF(near < far, "near pair differs in %d bits, far pair in %d", near, far);
    free(work);
}

/* The id map against a plain array under heavy churn (backward-shift deletion). */
static void test_idmap(vs_rng *r)
{
    enum { SPACE = 5000 };
    int32_t *model = malloc(SPACE * sizeof *model);
    for (int i = 0; i < SPACE; i++)
        model[i] = -1;
    vs_idmap m = {0};
    for (int op = 0; op < 200000; op++) {
        uint64_t key = vs_rng_below(r, SPACE);
        uint64_t id = key * 0x10000 + 3; /* spaced keys collide in the low bits */
        if (vs_rng_below(r, 3)) {
            uint32_t v = (uint32_t)vs_rng_below(r, 1u << 30);
            CHECK(vs_idmap_put(&m, id, v));
            model[key] = (int32_t)v;
        } else {
            CHECK(vs_idmap_del(&m, id) == (model[key] >= 0));
            model[key] = -1;
        }
    }
    size_t n = 0;
    for (int i = 0; i < SPACE; i++) {
        uint32_t v;
        bool got = vs_idmap_get(&m, (uint64_t)i * 0x10000 + 3, &v);
        CHECK(got == (model[i] >= 0));
        if (got)
            CHECK(v == (uint32_t)model[i]);
        n += model[i] >= 0;
    }
    CHECK(m.n == n);
    vs_idmap_free(&m);
    free(model);
}

static int cmp_cand(const void *a, const void *b)
{
    const vs_cand *x = a, *y = b;
    return vs_better(x->score, x->id, y->score, y->id) ? -1 : vs_better(y->score, y->id, x->score, x->id);
}

/* Top-k equals a full sort's first k, with many tied scores. */
static void test_topk(vs_rng *r)
{
    for (uint32_t k = 1; k <= 300; k = k * 3 + 1) {
        uint32_t n = 2000;
        vs_cand *all = malloc(n * sizeof *all), *e = malloc(k * sizeof *e);
        vs_topk t;
        vs_topk_init(&t, e, k);
        for (uint32_t i = 0; i < n; i++) {
            all[i] = (vs_cand){(float)vs_rng_below(r, 50), i, vs_rng_next(r) % 100000};
            if (all[i].score >= t.thr)
                vs_topk_offer(&t, all[i].score, all[i].slot, all[i].id);
        }
        qsort(all, n, sizeof *all, cmp_cand);
        vs_topk_sort(&t);
        CHECK(t.n == k);
        for (uint32_t i = 0; i < k; i++)
            CHECKF(t.e[i].score == all[i].score && t.e[i].id == all[i].id, "k=%u rank %u", k, i);
        free(all);
        free(e);
    }
}

int main(void)
{
    vs_rng r;
    vs_rng_seed(&r, 11);
    test_f16(&r);
    test_i8(&r);
    test_f16_rows(&r);
    test_b1(&r);
    test_idmap(&r);
    test_topk(&r);
    return vs_test_finish("test_quant");
}
