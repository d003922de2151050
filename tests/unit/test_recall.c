/*
 * test_recall.c: exact ground truth and recall (formats/recall.h).
 *
 * vs_exact_knn against a naive reference written here (score every row, sort everything) on
 * random data built to tie often, for every metric, several k and thread counts and restricted
 * candidate sets; recall on hand-made cases whose answer is known (boundary ties, duplicates,
 * holes, better-than-boundary misses). With VECSCAN_DATA_DIR, on MNIST: exact ground truth
 * computed here scores tie-aware recall 1.0 at 10 and 100 against the shipped files for L2, cosine
 * and filtered L2, and a deliberately wrong result list does not.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "recall.h"
#include "testutil.h"
#include "tsv.h"

typedef struct ref_cand {
    double s;
    int32_t id;
    bool lower;
} ref_cand;

/* Reference order: better score first, then smaller id. */
static int ref_cmp(const void *pa, const void *pb)
{
    const ref_cand *a = pa, *b = pb;
    if (a->s != b->s)
        return (a->lower ? a->s < b->s : a->s > b->s) ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* The reference score, written out independently of vs_exact_score. */
static double ref_score(const float *q, const float *x, uint32_t dim, vs_score_metric m)
{
    double dot = 0, nq = 0, nx = 0, l2 = 0;
    for (uint32_t i = 0; i < dim; i++) {
        dot += (double)q[i] * x[i];
        nq += (double)q[i] * q[i];
        nx += (double)x[i] * x[i];
        l2 += ((double)q[i] - x[i]) * ((double)q[i] - x[i]);
    }
    if (m == VS_SCORE_L2)
        return l2;
    if (m == VS_SCORE_IP)
        return dot;
    return nq == 0 || nx == 0 ? 0 : dot / (sqrt(nq) * sqrt(nx));
}

/* vs_exact_knn against the naive reference on small-integer data (many ties). */
static void check_knn(vs_rng *r, uint64_t rows, uint32_t dim, uint64_t nq, uint32_t k,
                      vs_score_metric m, uint32_t threads, bool filtered)
{
    float *base = malloc(rows * dim * sizeof *base), *qs = malloc(nq * dim * sizeof *qs);
    for (uint64_t i = 0; i < rows * dim; i++)
        base[i] = (float)vs_rng_below(r, 3);
    for (uint64_t i = 0; i < nq * dim; i++)
        qs[i] = (float)vs_rng_below(r, 3);
    memset(base + 3 * dim, 0, dim * sizeof *base); /* a zero row for cosine */
    /* candidate sets: even queries a bitmap of rows not divisible by 3, odd ones a short list */
    vs_slotset *sets = calloc(nq, sizeof *sets);
    uint64_t *words = calloc((rows + 63) / 64, 8);
    uint32_t list[3] = {1, 4, 5};
    for (uint64_t i = 0; i < rows; i++)
        if (i % 3)
            words[i / 64] |= 1ull << (i % 64);
    for (uint64_t q = 0; q < nq; q++) {
        if (q % 2 == 0)
            sets[q] = (vs_slotset){.kind = VS_SLOTSET_BITMAP, .words = words, .n_bits = rows};
        else
            sets[q] = (vs_slotset){.kind = VS_SLOTSET_LIST, .slots = list, .count = 3};
    }
    vs_recall_base b = {base, rows, dim, m};
    int32_t *ids = malloc(nq * k * sizeof *ids);
    float *sc = malloc(nq * k * sizeof *sc);
    vs_status st = {0};
    CHECKF(vs_exact_knn(&b, qs, nq, k, filtered ? sets : NULL, threads, ids, sc, &st) == VS_OK,
           "%s", st.msg);
    ref_cand *all = malloc(rows * sizeof *all);
    uint64_t bad = 0;
    for (uint64_t q = 0; q < nq; q++) {
        uint64_t n = 0;
        for (uint64_t i = 0; i < rows; i++) {
            bool ok = !filtered || (q % 2 == 0 ? i % 3 != 0 : (i == 1 || i == 4 || i == 5));
            if (ok)
                all[n++] = (ref_cand){ref_score(qs + q * dim, base + i * dim, dim, m),
                                      (int32_t)i, m == VS_SCORE_L2};
        }
        qsort(all, n, sizeof *all, ref_cmp);
        for (uint32_t j = 0; j < k; j++) {
            int32_t want = j < n ? all[j].id : -1;
            bad += ids[q * k + j] != want;
            if (j < n)
                bad += sc[q * k + j] != (float)all[j].s;
            else
                bad += !isnan(sc[q * k + j]);
        }
    }
    CHECKF(bad == 0, "exact knn rows %llu dim %u nq %llu k %u metric %d threads %u filtered %d: "
                     "%llu wrong",
           (unsigned long long)rows, dim, (unsigned long long)nq, k, (int)m, threads, filtered,
           (unsigned long long)bad);
    free(all);
    free(sc);
    free(ids);
    free(words);
    free(sets);
    free(qs);
    free(base);
}

/* Exact ground truth on awkward sizes, and its argument checks. */
static void test_exact_knn(void)
{
    vs_rng r;
    vs_rng_seed(&r, 11);
    for (int m = 0; m < 3; m++) {
        check_knn(&r, 100, 1, 13, 1, (vs_score_metric)m, 2, false);
        check_knn(&r, 257, 7, 21, 10, (vs_score_metric)m, 3, false);
        check_knn(&r, 300, 129, 9, 300, (vs_score_metric)m, 1, false);
        check_knn(&r, 200, 5, 17, 10, (vs_score_metric)m, 0, true);
    }
    float x[4] = {1, 2, 3, 4};
    vs_recall_base b = {x, 2, 2, VS_SCORE_L2};
    int32_t ids[4];
    vs_status st = {0};
    CHECK(vs_exact_knn(&b, x, 1, 3, NULL, 1, ids, NULL, &st) == VS_ERR_INVALID_ARGUMENT &&
          strstr(st.msg, "k 3"));
    CHECK(vs_exact_knn(&b, x, 1, 0, NULL, 1, ids, NULL, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_exact_knn(&b, x, 2, 2, NULL, 1, ids, NULL, &st) == VS_OK);
    CHECK(ids[0] == 0 && ids[1] == 1 && ids[2] == 1 && ids[3] == 0);
    CHECK(vs_exact_knn(&b, x, 0, 2, NULL, 1, ids, NULL, &st) == VS_OK);

    /* the scores: hand-computed */
    float a[3] = {1, 2, 2}, c[3] = {2, 0, 1};
    CHECK(vs_exact_score(a, c, 3, VS_SCORE_IP) == 4.0);
    CHECK(vs_exact_score(a, c, 3, VS_SCORE_L2) == 6.0);
    CHECK(fabs(vs_exact_score(a, c, 3, VS_SCORE_COSINE) - 4.0 / (3.0 * sqrt(5.0))) < 1e-15);
    float z[3] = {0, 0, 0};
    CHECK(vs_exact_score(a, z, 3, VS_SCORE_COSINE) == 0.0);
}

/* Recall on cases with known answers. */
static void test_recall_cases(void)
{
    /* base: 1-D points; query 0; L2 scores are x^2 */
    float base[8] = {0, 1, -1, 2, 2, -2, 3, 10};
    float q = 0;
    vs_recall_base b = {base, 8, 1, VS_SCORE_L2};
    int32_t gt[6] = {0, 1, 2, 3, 4, 5}; /* scores 0 1 1 4 4 4 */
    float gs[6] = {0, 1, 1, 4, 4, 4};
    vs_status st = {0};
    double rc;
    uint64_t perfect[4] = {0, 1, 2, 3};
    CHECK(vs_recall_query(perfect, 4, gt, gs, 6, 4, &b, &q, &rc, &st) == VS_OK && rc == 1.0);
    /* id 5 (score 4) instead of 3 (score 4): a boundary tie, a hit when tie-aware */
    uint64_t tie[4] = {0, 2, 1, 5};
    CHECK(vs_recall_query(tie, 4, gt, gs, 6, 4, &b, &q, &rc, &st) == VS_OK && rc == 1.0);
    CHECK(vs_recall_query(tie, 4, gt, NULL, 6, 4, &b, &q, &rc, &st) == VS_OK && rc == 0.75);
    /* id 6 (score 9) is no tie; a duplicate counts once; a hole counts nothing */
    uint64_t worse[4] = {0, 1, 6, 1};
    CHECK(vs_recall_query(worse, 4, gt, gs, 6, 4, &b, &q, &rc, &st) == VS_OK && rc == 0.5);
    uint64_t holes[4] = {0, VS_RECALL_NO_ID, 1, VS_RECALL_NO_ID};
    CHECK(vs_recall_query(holes, 4, gt, gs, 6, 4, &b, &q, &rc, &st) == VS_OK && rc == 0.5);
    /* fewer ids returned than k, and ids past k ignored */
    CHECK(vs_recall_query(perfect, 2, gt, gs, 6, 4, &b, &q, &rc, &st) == VS_OK && rc == 0.5);
    CHECK(vs_recall_query(perfect, 4, gt, gs, 6, 2, &b, &q, &rc, &st) == VS_OK && rc == 1.0);
    /* k = 2: s_k = 1, so id 2 and id 1 both tie; id 3 (score 4) is a miss */
    uint64_t k2[2] = {0, 2};
    CHECK(vs_recall_query(k2, 2, gt, gs, 6, 2, &b, &q, &rc, &st) == VS_OK && rc == 1.0);
    uint64_t k2b[2] = {3, 0};
    CHECK(vs_recall_query(k2b, 2, gt, gs, 6, 2, &b, &q, &rc, &st) == VS_OK && rc == 0.5);
    /* an id past the base is a miss, not a crash */
    uint64_t far[2] = {0, 1000};
    CHECK(vs_recall_query(far, 2, gt, gs, 6, 2, &b, &q, &rc, &st) == VS_OK && rc == 0.5);
    /* relative tolerance: 4 * (1 + 2e-6) ties 4, 4 * (1 + 2e-5) does not */
    float base2[2] = {2.0f * (float)sqrt(1 + 2e-6), 2.0f * (float)sqrt(1 + 2e-5)};
    vs_recall_base b2 = {base2, 2, 1, VS_SCORE_L2};
    int32_t gt2[1] = {7};
    float gs2[1] = {4};
    uint64_t r0[1] = {0}, r1[1] = {1};
    CHECK(vs_recall_query(r0, 1, gt2, gs2, 1, 1, &b2, &q, &rc, &st) == VS_OK && rc == 1.0);
    CHECK(vs_recall_query(r1, 1, gt2, gs2, 1, 1, &b2, &q, &rc, &st) == VS_OK && rc == 0.0);
    /* ground truth with holes (a filter passed 2 items): the denominator is 2 */
    int32_t gt3[4] = {4, 1, -1, -1};
    float gs3[4] = {4, 1, NAN, NAN};
    uint64_t r3[4] = {1, 4, 6, 7};
    CHECK(vs_recall_query(r3, 4, gt3, gs3, 4, 4, &b, &q, &rc, &st) == VS_OK && rc == 1.0);
    /* bad k, missing base */
    CHECK(vs_recall_query(perfect, 4, gt, gs, 6, 7, &b, &q, &rc, &st) == VS_ERR_INVALID_ARGUMENT &&
          strstr(st.msg, "recall@7"));
    CHECK(vs_recall_query(perfect, 4, gt, gs, 6, 0, &b, &q, &rc, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_recall_query(perfect, 4, gt, gs, 6, 4, NULL, &q, &rc, &st) ==
          VS_ERR_INVALID_ARGUMENT);

    /* a big k (past the stack buffer) */
    enum { K = 3000 };
    uint64_t *ids = malloc(K * sizeof *ids);
    int32_t *g = malloc(K * sizeof *g);
    for (int i = 0; i < K; i++) {
        ids[i] = (uint64_t)(K - 1 - i);
        g[i] = i;
    }
    ids[17] = 5000;
    CHECK(vs_recall_query(ids, K, g, NULL, K, K, NULL, NULL, &rc, &st) == VS_OK &&
          fabs(rc - (double)(K - 1) / K) < 1e-12);
    free(g);
    free(ids);

    /* the mean over queries, and per query */
    uint64_t two[8] = {0, 1, 2, 3, 0, 1, 6, 7};
    int32_t gtt[12] = {0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5};
    float gst[12] = {0, 1, 1, 4, 4, 4, 0, 1, 1, 4, 4, 4};
    float qq[2] = {0, 0};
    double mean, per[2];
    CHECK(vs_recall_mean(two, 4, gtt, gst, 6, 2, 4, &b, qq, &mean, per, &st) == VS_OK &&
          mean == 0.75 && per[0] == 1.0 && per[1] == 0.5);
}

/* Query q's allowed rows for "digit IN (a, b, ...)" as a bitmap. */
static bool filter_bitmap(const char *filter, const int *digit, uint64_t rows, uint64_t *words)
{
    bool want[10] = {false};
    const char *p = strchr(filter, '(');
    if (strncmp(filter, "digit IN (", 10) != 0 || !p)
        return false;
    for (p++; *p && *p != ')'; p++)
        if (*p >= '0' && *p <= '9')
            want[*p - '0'] = true;
    memset(words, 0, (rows + 63) / 64 * 8);
    for (uint64_t i = 0; i < rows; i++)
        if (digit[i] >= 0 && digit[i] <= 9 && want[digit[i]])
            words[i / 64] |= 1ull << (i % 64);
    return true;
}

/* Loads dir/mnist/name as int32 or float; NULL on failure (checked). */
static void *load_mnist(const char *dir, const char *name, bool f32, uint64_t rows, uint32_t dim)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/mnist/%s", dir, name);
    void *data = NULL;
    uint64_t r = 0;
    uint32_t d = 0;
    vs_status st = {0};
    vs_err e = f32 ? vs_dataset_load_f32(p, (float **)&data, &r, &d, &st)
                   : vs_dataset_load_i32(p, (int32_t **)&data, &r, &d, &st);
    CHECKF(e == VS_OK && r == rows && d == dim, "%s: %s", name, st.msg);
    if (e != VS_OK || r != rows || d != dim) {
        free(data);
        return NULL;
    }
    return data;
}

/* Tie-aware recall@10 and @100 of ids (nq x 100, int32) against a shipped ground truth. */
static void check_against(const char *what, int nq, const int32_t *ours, const int32_t *gt,
                          const float *gs, const vs_recall_base *b, const float *qs, double want,
                          bool at_least)
{
    uint64_t *ids = malloc((size_t)nq * 100 * sizeof *ids);
    for (int i = 0; i < nq * 100; i++)
        ids[i] = ours[i] < 0 ? VS_RECALL_NO_ID : (uint64_t)ours[i];
    vs_status st = {0};
    for (uint32_t k = 10; k <= 100; k *= 10) {
        double mean = -1;
        CHECKF(vs_recall_mean(ids, 100, gt, gs, 100, (uint64_t)nq, k, b, qs, &mean, NULL, &st) == VS_OK,
               "%s", st.msg);
        printf("%s: tie-aware recall@%u = %.4f (%d queries)\n", what, k, mean, nq);
        if (at_least)
            CHECKF(mean == want, "%s recall@%u = %.6f, want %.6f", what, k, mean, want);
        else
            CHECKF(mean < want, "%s recall@%u = %.6f, want below %.6f", what, k, mean, want);
    }
    free(ids);
}

/* MNIST: our exact ground truth against the shipped one, plain, cosine and filtered. Under
 * VECSCAN_QUICK (the sanitizer pass) on the first 100 queries only. */
static void test_mnist(const char *dir)
{
    const int nq = getenv("VECSCAN_QUICK") ? 100 : 1000;
    float *base = load_mnist(dir, "base.bvecs", true, 9000, 784);
    float *qs = load_mnist(dir, "query.bvecs", true, 1000, 784);
    int32_t *gt_l2 = load_mnist(dir, "gt-l2-100.ivecs", false, 1000, 100);
    float *gs_l2 = load_mnist(dir, "gt-l2-100.scores.fvecs", true, 1000, 100);
    int32_t *gt_cos = load_mnist(dir, "gt-cos-100.ivecs", false, 1000, 100);
    float *gs_cos = load_mnist(dir, "gt-cos-100.scores.fvecs", true, 1000, 100);
    int32_t *gt_fl2 = load_mnist(dir, "gt-l2-filtered-100.ivecs", false, 1000, 100);
    float *gs_fl2 = load_mnist(dir, "gt-l2-filtered-100.scores.fvecs", true, 1000, 100);
    int32_t *ours = malloc(1000 * 100 * sizeof *ours), *wrong = malloc(1000 * 100 * sizeof *wrong);
    int32_t *ours_l2 = malloc(1000 * 100 * sizeof *ours_l2);
    float *sc = malloc(1000 * 100 * sizeof *sc);
    vs_status st = {0};
    if (!base || !qs || !gt_l2 || !gs_l2 || !gt_cos || !gs_cos || !gt_fl2 || !gs_fl2)
        goto out;

    for (int m = 0; m < 2; m++) {
        vs_recall_base b = {base, 9000, 784, m == 0 ? VS_SCORE_L2 : VS_SCORE_COSINE};
        const int32_t *gt = m == 0 ? gt_l2 : gt_cos;
        const float *gs = m == 0 ? gs_l2 : gs_cos;
        const char *name = m == 0 ? "mnist l2" : "mnist cosine";
        CHECKF(vs_exact_knn(&b, qs, (uint64_t)nq, 100, NULL, 2, ours, sc, &st) == VS_OK, "%s", st.msg);
        /* the scores agree with the shipped ones rank for rank */
        uint64_t off = 0;
        for (int i = 0; i < nq * 100; i++)
            off += fabs((double)sc[i] - gs[i]) > 1e-6 * fabs((double)gs[i]);
        CHECKF(off == 0, "%s: %llu scores differ from the shipped ones", name,
               (unsigned long long)off);
        check_against(name, nq, ours, gt, gs, &b, qs, 1.0, true);
        if (m == 0)
            memcpy(ours_l2, ours, (size_t)nq * 100 * sizeof *ours);
        /* wrong lists: query q+1's answer, and the right answer missing its best id */
        for (int q = 0; q < nq; q++)
            memcpy(wrong + q * 100, ours + ((q + 1) % nq) * 100, 100 * sizeof *wrong);
        check_against("shifted queries", nq, wrong, gt, gs, &b, qs, 0.5, false);
        for (int q = 0; q < nq; q++) {
            memcpy(wrong + q * 100, ours + q * 100 + 1, 99 * sizeof *wrong);
            wrong[q * 100 + 99] = ours[q * 100 + 99] == 8999 ? 8998 : 8999;
        }
        check_against("best id dropped", nq, wrong, gt, gs, &b, qs, 1.0, false);
    }

    /* filtered L2: candidate sets from filtered-queries.tsv and the digits of base-attrs.tsv */
    int *digit = malloc(9000 * sizeof *digit);
    uint64_t *words = calloc(1000 * ((9000 + 63) / 64), 8);
    vs_slotset *sets = calloc(1000, sizeof *sets);
    char p[1024];
    vs_tsv *t = NULL;
    const char *const *c;
    int n = 0;
    snprintf(p, sizeof p, "%s/mnist/base-attrs.tsv", dir);
    CHECKF(vs_tsv_open(p, &t, &st) == VS_OK, "%s", st.msg);
    while (t && n < 9000 && vs_tsv_next(t, &c, &st) == VS_OK && c)
        digit[n++] = atoi(c[1]);
    vs_tsv_close(t);
    CHECK(n == 9000);
    snprintf(p, sizeof p, "%s/mnist/filtered-queries.tsv", dir);
    CHECKF(vs_tsv_open(p, &t, &st) == VS_OK, "%s", st.msg);
    int nf = 0;
    while (t && vs_tsv_next(t, &c, &st) == VS_OK && c) {
        int q = atoi(c[vs_tsv_col(t, "query")]);
        uint64_t *w = words + (size_t)q * ((9000 + 63) / 64);
        if (q >= 0 && q < 1000 && filter_bitmap(c[vs_tsv_col(t, "filter")], digit, 9000, w)) {
            sets[q] = (vs_slotset){.kind = VS_SLOTSET_BITMAP, .words = w, .n_bits = 9000};
            nf++;
        }
    }
    vs_tsv_close(t);
    CHECK(nf == 1000);
    if (nf == 1000) {
        vs_recall_base b = {base, 9000, 784, VS_SCORE_L2};
        CHECKF(vs_exact_knn(&b, qs, (uint64_t)nq, 100, sets, 2, ours, NULL, &st) == VS_OK, "%s", st.msg);
        check_against("mnist filtered l2", nq, ours, gt_fl2, gs_fl2, &b, qs, 1.0, true);
        /* the unfiltered answer holds better items that the filter excludes: misses */
        check_against("filter ignored", nq, ours_l2, gt_fl2, gs_fl2, &b, qs, 0.5, false);
    }
    free(sets);
    free(words);
    free(digit);
out:
    free(sc);
    free(ours_l2);
    free(wrong);
    free(ours);
    free(gs_fl2);
    free(gt_fl2);
    free(gs_cos);
    free(gt_cos);
    free(gs_l2);
    free(gt_l2);
    free(qs);
    free(base);
}

int main(void)
{
    test_exact_knn();
    test_recall_cases();
    const char *dir = vs_test_data_dir();
    if (dir)
        test_mnist(dir);
    else
        printf("SKIP test_recall: MNIST checks (VECSCAN_DATA_DIR is not set)\n");
    return vs_test_finish("test_recall");
}
