/*
 * test_cuda_host.c: the CUDA backend's host-side logic, on the CPU (CI has no GPU).
 *
 * - row layouts, chunk sizes, kernel choice, tile sizes;
 * - the per-element arithmetic the kernels run (cuda_kern.h) against float64;
 * - the query grouping and query-vector compaction;
 * - the selection driver (sampled threshold, candidate buffers, overflow and underflow rescans),
 *   run over a CPU implementation of its operations that appends candidates in a shuffled order,
 *   as the GPU's atomics do, and compared with a full sort: random scores, heavy ties, sorted
 *   (adversarial) rows, filtered rows, k from 1 to 10,000, capacities forced small.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_kern.h"
#include "cuda_plan.h"
#include "testutil.h"

/* ===== Layout and plans ===== */

static vs_field_layout field(uint32_t dim, vs_metric m, vs_storage s)
{
    vs_field_layout f = {dim, m, s, 0, 0};
    switch (s) {
    case VS_STORAGE_F32: f.code_bytes = dim * 4; break;
    case VS_STORAGE_F16: f.code_bytes = dim * 2; break;
    case VS_STORAGE_I8: f.code_bytes = dim; break;
    case VS_STORAGE_B1:
        f.b1_words = vs_b1_bits(dim) / 64;
        f.code_bytes = f.b1_words * 8;
        break;
    }
    return f;
}

static void test_layout(void)
{
    static const uint32_t dims[] = {1, 7, 64, 128, 129, 784, 4096};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        for (int s = 0; s < 4; s++) {
            for (int m = 0; m < 3; m++) {
                vs_field_layout f = field(dims[i], (vs_metric)m, (vs_storage)s);
                vs_cu_layout l;
                vs_status st;
                CHECK(vs_cu_layout_make(&f, &l, &st) == VS_OK);
                CHECK(l.code_pad % 16 == 0 && l.code_pad >= f.code_bytes && l.code_pad < f.code_bytes + 16);
                CHECK(l.stride % 16 == 0);
                CHECK(l.vecs * 16 == l.code_pad);
                int want_consts = s == VS_STORAGE_I8 || s == VS_STORAGE_F16 ||
                                  (s == VS_STORAGE_F32 && m == VS_METRIC_L2);
                CHECK(l.has_consts == (uint32_t)want_consts);
                CHECK(l.stride == l.code_pad + (want_consts ? 16u : 0u));
                if (s == VS_STORAGE_F32)
                    CHECK(l.gemm_k * 4 == l.code_pad);
                if (s == VS_STORAGE_F16)
                    CHECK(l.gemm_k * 2 == l.code_pad && l.qslice == 32);
                if (s == VS_STORAGE_I8)
                    CHECK(l.gemm_k == l.code_pad);
                if (s == VS_STORAGE_B1)
                    CHECK(l.gemm_k == 0 && l.bits == vs_b1_bits(dims[i]) && l.qslice == 16);
            }
        }
    }
    /* the LiNR shape: i8 d=128 takes 144 bytes a row (128 codes + one 16-byte constant slot) */
    vs_field_layout f = field(128, VS_METRIC_IP, VS_STORAGE_I8);
    vs_cu_layout l;
    CHECK(vs_cu_layout_make(&f, &l, NULL) == VS_OK && l.stride == 144);
    f = field(128, VS_METRIC_IP, VS_STORAGE_F16); /* 256 bytes of halves + the row's scale */
    CHECK(vs_cu_layout_make(&f, &l, NULL) == VS_OK && l.stride == 272);
    f = field(128, VS_METRIC_IP, VS_STORAGE_F32);
    CHECK(vs_cu_layout_make(&f, &l, NULL) == VS_OK && l.stride == 512 && !l.has_consts);
    /* inconsistent input is refused with a message */
    vs_status st;
    f = field(10, VS_METRIC_IP, VS_STORAGE_F32);
    f.code_bytes = 39;
    CHECK(vs_cu_layout_make(&f, &l, &st) == VS_ERR_INVALID_ARGUMENT && strstr(st.msg, "39"));
    f = field(100, VS_METRIC_IP, VS_STORAGE_B1);
    f.b1_words = 1;
    CHECK(vs_cu_layout_make(&f, &l, &st) == VS_ERR_INVALID_ARGUMENT);
    f = field(0, VS_METRIC_IP, VS_STORAGE_I8);
    CHECK(vs_cu_layout_make(&f, &l, &st) == VS_ERR_INVALID_ARGUMENT);
}

static void test_plans(void)
{
    CHECK(vs_cu_chunk_rows(0, 144) == 65536);
    CHECK(vs_cu_chunk_rows(1024, 144) == 1024);
    CHECK(vs_cu_chunk_rows(1000, 144) == 512);
    CHECK(vs_cu_chunk_rows(65536, 16384) == 4096); /* f32 d=4096: 64 MiB chunks */
    CHECK(vs_cu_chunk_rows(16, 16) == 64);

    CHECK(vs_cu_choose_path(1, 1, 1) == VS_CU_PATH_SMALL);
    CHECK(vs_cu_choose_path(1, 32, 32) == VS_CU_PATH_SMALL);
    CHECK(vs_cu_choose_path(1, 33, 1) == VS_CU_PATH_TILE);
    CHECK(vs_cu_choose_path(2, 2, 2) == VS_CU_PATH_TILE);
    CHECK(vs_cu_choose_path(1, 1, 33) == VS_CU_PATH_TILE); /* 33 queries sharing one vector */
    CHECK(vs_cu_nqv_bucket(1) == 1 && vs_cu_nqv_bucket(2) == 2 && vs_cu_nqv_bucket(3) == 4);
    CHECK(vs_cu_nqv_bucket(9) == 16 && vs_cu_nqv_bucket(32) == 32);

    uint64_t l2 = 60ull << 20;
    uint32_t r = vs_cu_tile_rows(1024, l2, 65536);
    CHECK(r >= 256 && (r & (r - 1)) == 0 && (uint64_t)r * 1024 * 4 <= l2 / 2);
    CHECK((uint64_t)r * 2 * 1024 * 4 > l2 / 2); /* the largest such power of two */
    CHECK(vs_cu_tile_rows(1, l2, 65536) == 65536);
    CHECK(vs_cu_tile_rows(1, l2, 4096) == 4096);
    CHECK(vs_cu_tile_rows(1 << 20, l2, 65536) == 256);

    /* threshold plans: capacity >= k, sampling only when it pays */
    static const uint64_t ns[] = {1, 7, 1000, 20000, 100000, 1000000, 15500000};
    static const uint32_t ks[] = {1, 10, 1000, 10000};
    static const uint32_t nqs[] = {1, 16, 256, 1024};
    for (size_t a = 0; a < 7; a++)
        for (size_t b = 0; b < 4; b++)
            for (size_t c = 0; c < 4; c++) {
                vs_cu_thr_plan p = vs_cu_plan_threshold(ns[a], ks[b], nqs[c]);
                CHECK(p.capacity >= 1);
                if (p.sample) {
                    CHECK(p.sample < ns[a] && p.capacity < ns[a]);
                    CHECK(p.capacity >= 2 * ks[b]);
                    uint32_t j = vs_cu_sample_rank(ks[b], p.sample, ns[a]);
                    CHECK(j >= 1 && j <= p.sample);
                    /* capacity covers the count above the threshold, j n / S on average, with
                     * three standard deviations (sqrt(j) n / S) of room */
                    CHECK((double)p.capacity >= (j + 3.0 * sqrt(j)) * (double)ns[a] / p.sample);
                } else {
                    CHECK(p.capacity == ns[a]);
                }
            }
    vs_cu_thr_plan p = vs_cu_plan_threshold(15500000, 10, 1);
    CHECK(p.sample == 16384 && p.capacity < 20000);
    p = vs_cu_plan_threshold(15500000, 10000, 1);
    CHECK(p.sample == 16384 && p.capacity < 60000);
    CHECK(vs_cu_sample_rank(10, 16384, 15500000) == 2);
    CHECK(vs_cu_sample_rank(1000, 16384, 1000) == 16384 || vs_cu_sample_rank(1000, 16384, 1000) > 1000);

    /* sample positions: ascending, one per stratum, deterministic */
    uint32_t pos[1000], pos2[1000];
    vs_cu_sample_positions(123457, 1000, 7, pos);
    vs_cu_sample_positions(123457, 1000, 7, pos2);
    CHECK(memcmp(pos, pos2, sizeof pos) == 0);
    for (uint32_t i = 0; i < 1000; i++) {
        uint64_t lo = (uint64_t)i * 123457 / 1000, hi = (uint64_t)(i + 1) * 123457 / 1000;
        CHECK(pos[i] >= lo && pos[i] < hi);
        if (i)
            CHECK(pos[i] > pos[i - 1]);
    }
    vs_cu_sample_positions(1000, 1000, 9, pos);
    for (uint32_t i = 0; i < 1000; i++)
        CHECK(pos[i] == i);
    vs_cu_sample_positions(4294967295u, 1000, 3, pos);
    for (uint32_t i = 1; i < 1000; i++)
        CHECK(pos[i] > pos[i - 1]);
}

/* ===== Arithmetic ===== */

static void test_arith(void)
{
    vs_rng r;
    vs_rng_seed(&r, 11);
    for (int it = 0; it < 2000; it++) {
        vs_cu_rowc rc = {(float)vs_rng_gauss(&r), (float)vs_rng_uniform(&r) * 0.01f,
                         (float)vs_rng_uniform(&r) * 10.0f, 0.0f};
        vs_cu_qvc qc = {(float)vs_rng_uniform(&r) * 0.01f, (float)vs_rng_gauss(&r) * 5.0f,
                        (float)vs_rng_uniform(&r) * 10.0f, 0.0f};
        int32_t idot = (int32_t)vs_rng_below(&r, 2000000) - 1000000;
        float fdot = (float)vs_rng_gauss(&r);
        for (int l2 = 0; l2 < 2; l2++) {
            double dot = (double)rc.middle * qc.sum + (double)rc.scale * qc.scale * idot;
            double want = l2 ? -((double)qc.norm2 - 2.0 * dot + rc.norm2) : dot;
            float got = vs_cu_vec_score(VS_STORAGE_I8, l2, 0, 0.0f, idot, rc, qc);
            CHECKF(fabs(got - want) <= 1e-4 * (1.0 + fabs(want)), "i8 %g vs %g", got, want);
            dot = (double)rc.scale * fdot; /* f16: x = scale * h */
            want = l2 ? -((double)qc.norm2 - 2.0 * dot + rc.norm2) : dot;
            got = vs_cu_vec_score(VS_STORAGE_F16, l2, 0, fdot, 0, rc, qc);
            CHECKF(fabs(got - want) <= 1e-5 * (1.0 + fabs(want)), "f16 %g vs %g", got, want);
            want = l2 ? -((double)qc.norm2 - 2.0 * fdot + rc.norm2) : fdot;
            got = vs_cu_vec_score(VS_STORAGE_F32, l2, 0, fdot, 0, rc, qc);
            CHECK(fabs(got - want) <= 1e-5 * (1.0 + fabs(want)));
            /* b1 ignores the metric: bits minus differing */
            got = vs_cu_vec_score(VS_STORAGE_B1, l2, 192, 0.0f, 17, rc, qc);
            CHECK(got == 175.0f);
        }
    }
    /* f16 queries split in hi and lo halves for cuBLAS: f32-level dots against f16 rows */
    for (int it = 0; it < 200; it++) {
        enum { D = 128 };
        float q[D], amax = 0, mul = (float)pow(10.0, (double)vs_rng_below(&r, 9) - 4.0);
        uint16_t h[D], hi[D], lo[D];
        for (int i = 0; i < D; i++) {
            q[i] = (float)vs_rng_gauss(&r) * mul;
            amax = fabsf(q[i]) > amax ? fabsf(q[i]) : amax;
            h[i] = vs_f32_to_f16((float)(vs_rng_uniform(&r) * 4096.0 - 2048.0));
        }
        float sc = vs_cu_f16_split_scale(amax);
        CHECK(amax * sc >= 1024.0f && amax * sc < 2048.0f);
        double exact = 0, mag = 0;
        float acc = 0;
        for (int i = 0; i < D; i++) {
            vs_cu_f16_split(q[i], sc, &hi[i], &lo[i]);
            exact += (double)vs_f16_to_f32(h[i]) * q[i];
            mag += fabs((double)vs_f16_to_f32(h[i]) * q[i]);
        }
        for (int i = 0; i < D; i++) /* hi column, then lo column, summed as the combine kernel */
            acc = fmaf(vs_f16_to_f32(h[i]), vs_f16_to_f32(hi[i]), acc);
        float acc2 = 0;
        for (int i = 0; i < D; i++)
            acc2 = fmaf(vs_f16_to_f32(h[i]), vs_f16_to_f32(lo[i]), acc2);
        double got = (double)((acc + acc2) * (1.0f / sc));
        CHECKF(fabs(got - exact) <= 2e-6 * mag, "split dot %g vs %g (magnitude %g)", got, exact, mag);
    }
    CHECK(vs_cu_f16_split_scale(0.0f) == 1.0f);

    /* combining terms */
    vs_cu_comb c;
    vs_cu_comb_init(&c);
    CHECK(!c.any);
    vs_cu_comb_add(&c, 0, 2.0f, 0.5f);
    vs_cu_comb_add(&c, 0, 1.0f, -1.0f);
    CHECK(c.any && fabsf(vs_cu_comb_final(&c, 0) - 0.0f) < 1e-7f);
    vs_cu_comb_init(&c);
    vs_cu_comb_add(&c, 0, 3.0f, 0.25f); /* one present term: its score, whatever its weight */
    CHECK(fabsf(vs_cu_comb_final(&c, 0) - 0.25f) < 1e-7f);
    vs_cu_comb_init(&c);
    vs_cu_comb_add(&c, 1, 2.0f, -3.0f);
    vs_cu_comb_add(&c, 1, 0.5f, -1.0f);
    CHECK(vs_cu_comb_final(&c, 1) == -0.5f);
    vs_cu_comb_init(&c);
    vs_cu_comb_add(&c, 1, 1.0f, -INFINITY);
    CHECK(vs_cu_comb_final(&c, 1) == -INFINITY && c.any);

    /* ordering: canon, passes, keys */
    CHECK(vs_cu_canon(NAN) == -INFINITY);
    float z = vs_cu_canon(-0.0f);
    CHECK(z == 0.0f && !signbit(z));
    CHECK(vs_cu_passes(1.0f, 5, 1.0f, 5) && vs_cu_passes(1.0f, 4, 1.0f, 5));
    CHECK(!vs_cu_passes(1.0f, 6, 1.0f, 5) && vs_cu_passes(1.5f, 99, 1.0f, 5));
    CHECK(!vs_cu_passes(0.5f, 0, 1.0f, 5));
    CHECK(vs_cu_passes(-INFINITY, 123, -INFINITY, UINT64_MAX));
    float vals[64];
    int nv = 0;
    vals[nv++] = -INFINITY;
    vals[nv++] = INFINITY;
    vals[nv++] = 0.0f;
    vals[nv++] = 1e-40f;
    vals[nv++] = -1e-40f;
    while (nv < 64)
        vals[nv++] = (float)(vs_rng_gauss(&r) * pow(10.0, (double)vs_rng_below(&r, 20) - 10.0));
    for (int i = 0; i < nv; i++)
        for (int j = 0; j < nv; j++) {
            float a = vs_cu_canon(vals[i]), b = vs_cu_canon(vals[j]);
            CHECK((vs_cu_score_key(a) > vs_cu_score_key(b)) == (a > b));
            CHECK((vs_cu_score_key(a) == vs_cu_score_key(b)) == (a == b));
        }
}

/* One-term queries: the MMA kernel's shortcut agrees with the combine functions, bit for bit. */
static void test_single_term(void)
{
    vs_rng r;
    vs_rng_seed(&r, 12);
    static const float odd[] = {0.0f, -0.0f, 1e-40f, -1e-40f, 3e38f, -3e38f, INFINITY, -INFINITY};
    for (int it = 0; it < 100000; it++) {
        const uint32_t comb = (uint32_t)vs_rng_below(&r, 2);
        float w = (float)(vs_rng_uniform(&r) * pow(10.0, (double)vs_rng_below(&r, 12) - 6.0));
        float s = (float)(vs_rng_gauss(&r) * pow(10.0, (double)vs_rng_below(&r, 16) - 8.0));
        if (it % 8 == 0)
            w = odd[vs_rng_below(&r, 8)];
        if (it % 8 == 1)
            s = odd[vs_rng_below(&r, 8)];
        vs_cu_comb c;
        vs_cu_comb_init(&c);
        vs_cu_comb_add(&c, comb, w, s);
        const float a = vs_cu_canon(vs_cu_comb_final(&c, comb));
        const float b = vs_cu_canon(vs_cu_single_term(comb, w, s));
        CHECKF(vs_cu_score_key(a) == vs_cu_score_key(b), "comb %u w %g s %g: %g vs %g", comb, w,
               s, a, b);
        if (comb == 0 && !(s != s))
            CHECK(vs_cu_score_key(b) == vs_cu_score_key(vs_cu_canon(s)));
    }
    vs_cu_comb c; /* two terms: the weighted mean */
    vs_cu_comb_init(&c);
    vs_cu_comb_add(&c, 0, 1.0f, 1.0f);
    vs_cu_comb_add(&c, 0, 3.0f, 2.0f);
    CHECK(vs_cu_comb_final(&c, 0) == 1.75f);
}

/* ===== Groups ===== */

static void test_groups(void)
{
    enum { NQ = 9 };
    vs_scan_term terms[NQ][2];
    vs_scan_query qs[NQ];
    uint32_t list_a[] = {1, 5, 9}, list_big[600];
    uint64_t words[16] = {0};
    vs_slotset all = {VS_SLOTSET_ALL, NULL, 0, NULL, 0};
    vs_slotset bm = {VS_SLOTSET_BITMAP, words, 1000, NULL, 0};
    vs_slotset la = {VS_SLOTSET_LIST, NULL, 0, list_a, 3};
    vs_slotset la2 = {VS_SLOTSET_LIST, NULL, 0, list_a, 3};
    vs_slotset lb = {VS_SLOTSET_LIST, NULL, 0, list_big, 600};
    for (uint32_t i = 0; i < 600; i++)
        list_big[i] = i;
    memset(terms, 0, sizeof terms);
    memset(qs, 0, sizeof qs);
    /* field 0 vectors: one per query for queries 0..8 (vector q), field 1: vectors 0..3 */
    for (uint32_t q = 0; q < NQ; q++) {
        terms[q][0] = (vs_scan_term){0, q, 1, 1.0f};
        qs[q] = (vs_scan_query){terms[q], 1, VS_COMBINE_SUM, NULL, 10};
    }
    qs[1].allowed = &bm;
    qs[2].allowed = &la;
    qs[3].allowed = &la2; /* same list, other set: one group */
    qs[4].allowed = &lb;  /* larger than a quarter of 1000 slots: as a bitmap */
    qs[5].allowed = &all;
    terms[6][0] = (vs_scan_term){1, 0, 4, 1.0f}; /* field 1 only */
    terms[7][1] = (vs_scan_term){1, 2, 2, 0.5f}; /* fields 0 and 1 */
    qs[7].n_terms = 2;
    terms[8][0] = (vs_scan_term){0, 6, 3, 1.0f}; /* overlaps query 6's and 7's vectors of field 0 */

    vs_scan_batch b;
    memset(&b, 0, sizeof b);
    b.n_queries = NQ;
    b.queries = qs;
    b.fq[0].n = 9;
    b.fq[1].n = 4;
    uint32_t order[NQ];
    uint8_t as_bm[NQ];
    vs_cu_group g[NQ];
    uint32_t ng = 0;
    CHECK(vs_cu_plan_groups(&b, 1000, 100, order, as_bm, g, &ng, NULL) == VS_OK);
    /* dense f0 {0,1,4,5,8}, list_a f0 {2,3}, dense f1 {6}, dense multi {7} */
    CHECK(ng == 4);
    CHECK(as_bm[4] == 1 && as_bm[2] == 0 && as_bm[0] == 0);
    int seen[NQ] = {0};
    for (uint32_t i = 0; i < ng; i++)
        for (uint32_t j = 0; j < g[i].n; j++)
            seen[order[g[i].first + j]]++;
    for (uint32_t q = 0; q < NQ; q++)
        CHECK(seen[q] == 1);
    CHECK(g[0].n == 5 && !g[0].list && g[0].n_fields == 1 && g[0].fields[0] == 0);
    CHECK(order[0] == 0 && order[1] == 1 && order[2] == 4 && order[3] == 5 && order[4] == 8);
    CHECK(g[0].nv[0] == 7 && g[0].path == VS_CU_PATH_SMALL); /* vectors 0,1,4,5,6,7,8 */
    CHECK(g[1].n == 2 && g[1].list && g[1].slots == list_a && g[1].count == 3);
    CHECK(g[1].nv_total == 2 && g[1].path == VS_CU_PATH_SMALL);
    CHECK(g[2].n == 1 && g[2].n_fields == 1 && g[2].fields[0] == 1 && g[2].nv[0] == 4);
    CHECK(g[3].n == 1 && g[3].n_fields == 2 && g[3].path == VS_CU_PATH_TILE);
    CHECK(g[3].nv[0] == 1 && g[3].nv[1] == 2);

    /* compaction keeps each term's vectors contiguous */
    uint32_t map[9], src[9];
    uint32_t n = vs_cu_group_qv_map(&b, order, &g[0], 0, map, src);
    CHECK(n == 7);
    CHECK(map[2] == UINT32_MAX && map[3] == UINT32_MAX);
    CHECK(map[6] + 1 == map[7] && map[7] + 1 == map[8]);
    for (uint32_t i = 0; i < n; i++)
        CHECK(map[src[i]] == i);

    /* max_queries splits a group */
    CHECK(vs_cu_plan_groups(&b, 1000, 2, order, as_bm, g, &ng, NULL) == VS_OK);
    uint32_t dense_f0 = 0;
    for (uint32_t i = 0; i < ng; i++) {
        CHECK(g[i].n <= 2);
        if (!g[i].list && g[i].n_fields == 1 && g[i].fields[0] == 0)
            dense_f0 += g[i].n;
    }
    CHECK(dense_f0 == 5);
    /* 40 one-vector queries on one field: one tile group */
    vs_scan_term t40[40];
    vs_scan_query q40[40];
    for (uint32_t q = 0; q < 40; q++) {
        t40[q] = (vs_scan_term){2, q, 1, 1.0f};
        q40[q] = (vs_scan_query){&t40[q], 1, VS_COMBINE_MAX, NULL, 5};
    }
    memset(&b, 0, sizeof b);
    b.n_queries = 40;
    b.queries = q40;
    b.fq[2].n = 40;
    uint32_t order40[40];
    uint8_t bm40[40];
    vs_cu_group g40[40];
    CHECK(vs_cu_plan_groups(&b, 100, 1024, order40, bm40, g40, &ng, NULL) == VS_OK);
    CHECK(ng == 1 && g40[0].nv_total == 40 && g40[0].path == VS_CU_PATH_TILE);
}

/* ===== The selection driver on a CPU ===== */

typedef struct cand {
    float s;
    uint32_t row;
} cand;

typedef struct sim {
    uint32_t n, nq;
    const float *score;   /* nq x n; NaN = row not eligible for that query */
    const uint64_t *ids;  /* n */
    const uint32_t *k;
    uint32_t *sample;     /* rows sampled */
    uint32_t n_sample;
    int sabotage;         /* sample only the best rows: thresholds too high */
    float *thr_s;
    uint64_t *thr_id;
    cand *buf;
    size_t buf_cap;
    uint32_t *cnt;        /* per position */
    cand *res;            /* nq x kmax */
    uint32_t kmax;
    uint32_t *res_n;
    vs_rng rng;
    uint32_t *perm;
    uint64_t max_seen;    /* largest n_act x cap asked */
} sim;

static const uint64_t *cmp_ids;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    uint64_t ix = cmp_ids[x->row], iy = cmp_ids[y->row];
    return ix < iy ? -1 : ix > iy;
}

static vs_err sim_scan(void *ctx, int sample, const uint32_t *act, uint32_t n_act, uint32_t cap,
                       uint32_t *cnt, uint8_t *finite, vs_status *st)
{
    sim *m = ctx;
    uint32_t nrows = sample ? m->n_sample : m->n;
    if ((uint64_t)n_act * cap > m->max_seen)
        m->max_seen = (uint64_t)n_act * cap;
    if ((uint64_t)n_act * cap > m->buf_cap) {
        free(m->buf);
        m->buf_cap = (size_t)n_act * cap;
        m->buf = malloc(m->buf_cap * sizeof *m->buf);
        if (!m->buf)
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "sim buffer");
    }
    for (uint32_t i = 0; i < n_act; i++) {
        uint32_t q = act[i], c = 0;
        /* arrival order: a fresh shuffle, as atomics give no order */
        for (uint32_t j = 0; j < nrows; j++)
            m->perm[j] = sample ? m->sample[j] : j;
        for (uint32_t j = nrows; j > 1; j--) {
            uint32_t x = (uint32_t)vs_rng_below(&m->rng, j), t = m->perm[j - 1];
            m->perm[j - 1] = m->perm[x];
            m->perm[x] = t;
        }
        for (uint32_t j = 0; j < nrows; j++) {
            uint32_t row = m->perm[j];
            float s = m->score[(size_t)q * m->n + row];
            if (s != s)
                continue; /* not eligible */
            s = vs_cu_canon(s);
            if (!sample && !vs_cu_passes(s, m->ids[row], m->thr_s[q], m->thr_id[q]))
                continue;
            if (c < cap)
                m->buf[(size_t)i * cap + c] = (cand){s, row};
            c++;
        }
        m->cnt[i] = c;
        if (!sample) {
            cnt[i] = c;
            finite[i] = !(m->thr_s[q] == -INFINITY && m->thr_id[q] == UINT64_MAX);
        }
    }
    return VS_OK;
}

static vs_err sim_sort(void *ctx, const uint32_t *act, uint32_t n_act, uint32_t cap, vs_status *st)
{
    sim *m = ctx;
    (void)act;
    (void)st;
    cmp_ids = m->ids;
    for (uint32_t i = 0; i < n_act; i++) {
        uint32_t held = m->cnt[i] < cap ? m->cnt[i] : cap;
        qsort(m->buf + (size_t)i * cap, held, sizeof(cand), cand_cmp);
    }
    return VS_OK;
}

static vs_err sim_set_thr(void *ctx, const uint32_t *act, uint32_t n_act, uint32_t cap,
                          const uint8_t *mode, const uint32_t *rank, vs_status *st)
{
    sim *m = ctx;
    (void)st;
    for (uint32_t i = 0; i < n_act; i++) {
        uint32_t q = act[i], held = m->cnt[i] < cap ? m->cnt[i] : cap;
        if (mode[i] == VS_CU_THR_NEG_INF || (mode[i] == VS_CU_THR_RANK && rank[i] > held)) {
            m->thr_s[q] = -INFINITY;
            m->thr_id[q] = UINT64_MAX;
        } else if (mode[i] == VS_CU_THR_RANK) {
            cand c = m->buf[(size_t)i * cap + rank[i] - 1];
            m->thr_s[q] = c.s;
            m->thr_id[q] = m->ids[c.row];
        }
    }
    return VS_OK;
}

static vs_err sim_emit(void *ctx, const uint32_t *act, uint32_t n_act, uint32_t cap,
                       const uint8_t *which, vs_status *st)
{
    sim *m = ctx;
    (void)st;
    for (uint32_t i = 0; i < n_act; i++) {
        if (!which[i])
            continue;
        uint32_t q = act[i], held = m->cnt[i] < cap ? m->cnt[i] : cap;
        uint32_t n = held < m->k[q] ? held : m->k[q];
        memcpy(m->res + (size_t)q * m->kmax, m->buf + (size_t)i * cap, n * sizeof(cand));
        m->res_n[q] = n;
    }
    return VS_OK;
}

enum { DATA_GAUSS, DATA_TIES, DATA_SORTED, DATA_EQUAL };

/* One driver run against the reference; returns the stats. */
static vs_cu_select_stats run_select(uint32_t n, uint32_t nq, uint32_t kk, int data, double pass,
                                     int force_cap, int sabotage, uint64_t max_entries,
                                     uint64_t seed)
{
    vs_rng r;
    vs_rng_seed(&r, seed);
    float *score = malloc((size_t)nq * n * sizeof *score);
    uint64_t *ids = malloc(n * sizeof *ids);
    uint32_t *k = malloc(nq * sizeof *k);
    sim m;
    memset(&m, 0, sizeof m);
    for (uint32_t i = 0; i < n; i++) /* distinct ids, unrelated to rows */
        ids[i] = (vs_rng_next(&r) & ~0xfffffull) | i;
    for (uint32_t q = 0; q < nq; q++) {
        k[q] = q % 3 == 2 ? (kk > 1 ? kk / 2 : 1) : kk;
        for (uint32_t i = 0; i < n; i++) {
            float s;
            switch (data) {
            case DATA_TIES: s = (float)vs_rng_below(&r, 8); break;
            case DATA_SORTED: s = (float)i * 0.001f; break;
            case DATA_EQUAL: s = 1.0f; break;
            default: s = (float)vs_rng_gauss(&r); break;
            }
            if (vs_rng_uniform(&r) >= pass)
                s = NAN;
            score[(size_t)q * n + i] = s;
        }
    }
    m.n = n;
    m.nq = nq;
    m.score = score;
    m.ids = ids;
    m.k = k;
    m.kmax = kk;
    m.thr_s = malloc(nq * sizeof *m.thr_s);
    m.thr_id = malloc(nq * sizeof *m.thr_id);
    m.cnt = malloc(nq * sizeof *m.cnt);
    m.res = malloc((size_t)nq * kk * sizeof *m.res);
    m.res_n = calloc(nq, sizeof *m.res_n);
    m.perm = malloc((n ? n : 1) * sizeof *m.perm);
    vs_rng_seed(&m.rng, seed + 1);
    for (uint32_t q = 0; q < nq; q++) {
        m.thr_s[q] = -INFINITY;
        m.thr_id[q] = UINT64_MAX;
        m.res_n[q] = UINT32_MAX;
    }
    vs_cu_thr_plan plan = vs_cu_plan_threshold(n, kk, nq);
    if (force_cap && plan.capacity > (uint32_t)force_cap)
        plan.capacity = (uint32_t)force_cap;
    if (plan.sample) {
        m.n_sample = plan.sample;
        m.sample = malloc(plan.sample * sizeof *m.sample);
        if (sabotage) /* the last rows: for DATA_SORTED, the very best */
            for (uint32_t i = 0; i < plan.sample; i++)
                m.sample[i] = n - plan.sample + i;
        else
            vs_cu_sample_positions(n, plan.sample, seed, m.sample);
    }
    vs_cu_select_ops ops = {&m, sim_scan, sim_sort, sim_set_thr, sim_emit};
    vs_cu_select_stats stats;
    vs_status st;
    vs_err err = vs_cu_select_run(&ops, nq, k, n, plan, max_entries, &stats, &st);
    CHECKF(err == VS_OK, "select: %s", st.msg);
    CHECK(m.max_seen <= (max_entries > (uint64_t)n ? max_entries : (uint64_t)n) ||
          m.max_seen <= max_entries);

    /* the reference: every eligible row, sorted */
    cand *all = malloc((n ? n : 1) * sizeof *all);
    cmp_ids = ids;
    for (uint32_t q = 0; q < nq; q++) {
        uint32_t e = 0;
        for (uint32_t i = 0; i < n; i++) {
            float s = score[(size_t)q * n + i];
            if (s == s)
                all[e++] = (cand){vs_cu_canon(s), i};
        }
        qsort(all, e, sizeof *all, cand_cmp);
        uint32_t want = e < k[q] ? e : k[q];
        CHECKF(m.res_n[q] == want, "n=%u q=%u k=%u data=%d: %u results, want %u", n, q, k[q],
               data, m.res_n[q], want);
        if (m.res_n[q] != want)
            continue;
        for (uint32_t i = 0; i < want; i++) {
            cand g = m.res[(size_t)q * kk + i];
            if (g.row != all[i].row || g.s != all[i].s) {
                CHECKF(0, "n=%u q=%u k=%u data=%d: rank %u is row %u, want %u", n, q, k[q], data,
                       i, g.row, all[i].row);
                break;
            }
        }
    }
    free(all);
    free(score);
    free(ids);
    free(k);
    free(m.thr_s);
    free(m.thr_id);
    free(m.cnt);
    free(m.res);
    free(m.res_n);
    free(m.perm);
    free(m.sample);
    free(m.buf);
    return stats;
}

static void test_select(void)
{
    vs_cu_select_stats s;
    uint64_t big = 1ull << 40;
    /* tiny and awkward sizes, no sampling */
    static const uint32_t ns[] = {1, 7, 129, 1000};
    static const uint32_t ks[] = {1, 10, 1000};
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 3; b++)
            for (int d = 0; d < 4; d++)
                run_select(ns[a], 3, ks[b], d, 0.8, 0, 0, big, 100 + a * 10 + b);
    /* sampled thresholds: one scan, nothing rescanned */
    s = run_select(200000, 2, 10, DATA_GAUSS, 1.0, 0, 0, big, 1);
    CHECK(s.scans == 1 && s.overflows == 0 && s.underflows == 0);
    s = run_select(200000, 2, 1000, DATA_GAUSS, 1.0, 0, 0, big, 2);
    CHECK(s.scans == 1 && s.overflows == 0 && s.underflows == 0);
    /* heavy ties: the (score, id) threshold keeps the buffer small */
    s = run_select(200000, 2, 100, DATA_TIES, 1.0, 0, 0, big, 3);
    CHECK(s.overflows == 0 && s.underflows == 0);
    s = run_select(100000, 1, 10, DATA_EQUAL, 1.0, 0, 0, big, 4);
    CHECK(s.overflows == 0 && s.underflows == 0);
    /* rows sorted by score, a filter passing 10%, a filter passing almost nothing */
    s = run_select(200000, 2, 50, DATA_SORTED, 1.0, 0, 0, big, 5);
    CHECK(s.overflows == 0 && s.underflows == 0);
    run_select(200000, 3, 100, DATA_GAUSS, 0.1, 0, 0, big, 6);
    run_select(200000, 3, 100, DATA_GAUSS, 0.0002, 0, 0, big, 7); /* ~40 rows pass, k = 100 */
    /* k = 10,000 */
    s = run_select(300000, 1, 10000, DATA_GAUSS, 1.0, 0, 0, big, 8);
    CHECK(s.scans == 1);
    /* forced overflow: a capacity just above k */
    s = run_select(100000, 3, 100, DATA_GAUSS, 1.0, 101, 0, big, 9);
    CHECK(s.overflows > 0);
    s = run_select(100000, 2, 100, DATA_TIES, 1.0, 150, 0, big, 10);
    CHECK(s.overflows > 0);
    /* overflow on sorted rows: thresholds rise slowly, the exhaustive round settles it */
    s = run_select(100000, 1, 10, DATA_SORTED, 1.0, 20, 0, big, 11);
    CHECK(s.overflows > 0);
    /* forced underflow: a sample of the best rows sets thresholds too high */
    s = run_select(100000, 2, 100, DATA_SORTED, 1.0, 0, 1, big, 12);
    CHECK(s.underflows > 0);
    /* a memory bound that forces slices of queries */
    s = run_select(50000, 7, 10, DATA_GAUSS, 1.0, 0, 0, 3000, 13);
    CHECK(s.scans > 1);
}

int main(void)
{
    test_layout();
    test_plans();
    test_arith();
    test_single_term();
    test_groups();
    test_select();
    return vs_test_finish("test_cuda_host");
}
