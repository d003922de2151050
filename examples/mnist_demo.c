/*
 * mnist_demo.c: vecscan-demo, the in-process main job until the daemon lands: build an index from
 * the MNIST set, search its 1,000 queries, print tie-aware recall@10 and @100 and the speed for each
 * storage tier. Where the dataset is absent it generates a synthetic set and computes its exact
 * ground truth itself, so the demo runs anywhere.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataset.h"
#include "index.h"
#include "recall.h"

typedef struct dataset {
    float *base, *queries, *gt_scores;
    int32_t *gt;
    uint64_t n_base, n_queries;
    uint32_t dim, gt_k;
    const char *name;
} dataset;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: vecscan-demo [--data-dir DIR] [--metric cosine|l2] [--threads N] [--synthetic]\n"
            "\n"
            "Builds a vecscan index in this process from the MNIST set in DIR/mnist (DIR defaults to\n"
            "$VECSCAN_DATA_DIR), searches its 1,000 queries with each storage tier and prints tie-aware\n"
            "recall@10 and @100 against the exact ground truth, and queries per second. Without the\n"
            "dataset (or with --synthetic) it generates 20,000 x 784 clustered vectors and computes the\n"
            "exact ground truth first.\n");
}

/* Loads path into *data as floats, or says why not. */
static int load(const char *dir, const char *file, float **data, uint64_t *rows, uint32_t *dim)
{
    char path[4096];
    vs_status st;
    snprintf(path, sizeof path, "%s/mnist/%s", dir, file);
    if (vs_dataset_load_f32(path, data, rows, dim, &st) != VS_OK) {
        fprintf(stderr, "vecscan-demo: %s\n", st.msg);
        return -1;
    }
    return 0;
}

static int load_mnist(const char *dir, const char *metric, dataset *d)
{
    char gtf[64], gts[64];
    uint64_t rows;
    uint32_t dim;
    snprintf(gtf, sizeof gtf, "gt-%s-100.ivecs", metric);
    snprintf(gts, sizeof gts, "gt-%s-100.scores.fvecs", metric);
    char path[4096];
    vs_status st;
    if (load(dir, "base.bvecs", &d->base, &d->n_base, &d->dim) || load(dir, "query.bvecs", &d->queries, &d->n_queries, &dim) ||
        load(dir, gts, &d->gt_scores, &rows, &d->gt_k))
        return -1;
    snprintf(path, sizeof path, "%s/mnist/%s", dir, gtf);
    if (vs_dataset_load_i32(path, &d->gt, &rows, &dim, &st) != VS_OK) {
        fprintf(stderr, "vecscan-demo: %s\n", st.msg);
        return -1;
    }
    d->name = "MNIST (real, 9,000 x 784 uint8)";
    return 0;
}

/* 20,000 x 784 vectors around 50 random centres, plus exact ground truth. */
static int make_synthetic(vs_score_metric metric, dataset *d)
{
    d->dim = 784;
    d->n_base = 20000;
    d->n_queries = 1000;
    d->gt_k = 100;
    d->name = "synthetic (20,000 x 784 clustered)";
    d->base = malloc(d->n_base * d->dim * sizeof(float));
    d->queries = malloc(d->n_queries * d->dim * sizeof(float));
    float *centres = malloc(50 * d->dim * sizeof(float));
    d->gt = malloc(d->n_queries * d->gt_k * sizeof(int32_t));
    d->gt_scores = malloc(d->n_queries * d->gt_k * sizeof(float));
    if (!d->base || !d->queries || !centres || !d->gt || !d->gt_scores)
        return -1;
    uint64_t s = 12345;
    for (size_t i = 0; i < 50 * (size_t)d->dim; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        centres[i] = (float)((s >> 40) % 256);
    }
    for (uint64_t i = 0; i < d->n_base + d->n_queries; i++) {
        float *row = i < d->n_base ? d->base + i * d->dim : d->queries + (i - d->n_base) * d->dim;
        const float *c = centres + (i % 50) * d->dim;
        for (uint32_t j = 0; j < d->dim; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            float v = c[j] + (float)((int)((s >> 40) % 81) - 40);
            row[j] = v < 0 ? 0 : v > 255 ? 255 : v;
        }
    }
    free(centres);
    fprintf(stderr, "vecscan-demo: computing exact ground truth for the synthetic set...\n");
    vs_recall_base rb = {d->base, d->n_base, d->dim, metric};
    vs_status st;
    if (vs_exact_knn(&rb, d->queries, d->n_queries, d->gt_k, NULL, 0, d->gt, d->gt_scores, &st) != VS_OK) {
        fprintf(stderr, "vecscan-demo: %s\n", st.msg);
        return -1;
    }
    return 0;
}

/* Builds one index, searches every query, prints one row of the table. */
static int run_tier(const dataset *d, vs_metric metric, vs_storage storage, uint32_t rerank, uint32_t threads)
{
    vs_field_spec sp = {.name = "img", .dim = d->dim, .metric = metric, .storage = storage,
                        .rerank = rerank > 1 || storage == VS_STORAGE_B1};
    vs_index_options o = {.n_threads = threads};
    vs_index *ix;
    vs_status st;
    if (vs_index_create(&sp, 1, &o, &ix, &st) != VS_OK) {
        fprintf(stderr, "vecscan-demo: %s\n", st.msg);
        return -1;
    }
    vs_item_vectors *items = calloc(d->n_base, sizeof *items);
    for (uint64_t i = 0; i < d->n_base; i++) {
        items[i].id = i;
        items[i].vectors[0] = d->base + i * d->dim;
    }
    double t0 = now_s();
    vs_err e = vs_index_upsert(ix, items, d->n_base, NULL, &st);
    double t_load = now_s() - t0;
    free(items);
    const uint32_t k = 100, batch = 100;
    vs_hit *hits = malloc(d->n_queries * k * sizeof *hits);
    uint32_t *counts = malloc(d->n_queries * sizeof *counts);
    uint64_t *ids = malloc(d->n_queries * k * sizeof *ids);
    vs_term *terms = calloc(batch, sizeof *terms);
    vs_query *qs = calloc(batch, sizeof *qs);
    vs_search_params p = {.k = k, .rerank_factor = rerank};
    t0 = now_s();
    for (uint64_t q0 = 0; q0 < d->n_queries && !e; q0 += batch) {
        uint32_t nb = (uint32_t)(d->n_queries - q0 < batch ? d->n_queries - q0 : batch);
        for (uint32_t i = 0; i < nb; i++) {
            terms[i] = (vs_term){.field = 0, .n_vectors = 1, .vectors = d->queries + (q0 + i) * d->dim, .weight = 1};
            qs[i] = (vs_query){.terms = &terms[i], .n_terms = 1};
        }
        e = vs_index_search(ix, qs, nb, &p, hits + q0 * k, counts + q0, &st);
    }
    double t_search = now_s() - t0;
    if (e) {
        fprintf(stderr, "vecscan-demo: %s\n", st.msg);
        return -1;
    }
    for (uint64_t i = 0; i < d->n_queries * k; i++)
        ids[i] = i % k < counts[i / k] ? hits[i].id : VS_RECALL_NO_ID;
    vs_recall_base rb = {d->base, d->n_base, d->dim, (vs_score_metric)metric};
    double r10, r100;
    if (vs_recall_mean(ids, k, d->gt, d->gt_scores, d->gt_k, d->n_queries, 10, &rb, d->queries, &r10, NULL, &st) ||
        vs_recall_mean(ids, k, d->gt, d->gt_scores, d->gt_k, d->n_queries, 100, &rb, d->queries, &r100, NULL, &st)) {
        fprintf(stderr, "vecscan-demo: %s\n", st.msg);
        return -1;
    }
    char tier[32];
    snprintf(tier, sizeof tier, "%s%s", vs_storage_name(storage), rerank > 1 ? " + rerank" : "");
    printf("%-14s %8u %10.4f %11.4f %9.0f %10.2f %9.1f\n", tier, rerank > 1 ? rerank : 1, r10, r100,
           d->n_queries / t_search, t_load, vs_index_field_bytes(ix, 0) / 1e6);
    free(hits), free(counts), free(ids), free(terms), free(qs);
    vs_index_destroy(ix);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = getenv("VECSCAN_DATA_DIR"), *metric_name = "cosine";
    uint32_t threads = 0;
    int synthetic = 0;
    static const struct option longopts[] = {{"data-dir", required_argument, 0, 'd'},
                                             {"metric", required_argument, 0, 'm'},
                                             {"threads", required_argument, 0, 't'},
                                             {"synthetic", no_argument, 0, 's'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "d:m:t:sh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'm': metric_name = optarg; break;
        case 't': threads = (uint32_t)atoi(optarg); break;
        case 's': synthetic = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    vs_metric metric;
    if (!vs_metric_parse(metric_name, &metric) || metric == VS_METRIC_IP) {
        fprintf(stderr, "vecscan-demo: --metric must be cosine or l2, not '%s'\n", metric_name);
        return 2;
    }
    dataset d = {0};
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/mnist/base.bvecs", dir ? dir : ".");
    FILE *f = dir && !synthetic ? fopen(probe, "rb") : NULL;
    if (f) {
        fclose(f);
        if (load_mnist(dir, metric == VS_METRIC_L2 ? "l2" : "cos", &d))
            return 1;
    } else {
        if (!synthetic)
            fprintf(stderr, "vecscan-demo: no MNIST set under %s; using a synthetic set\n",
                    dir ? dir : "$VECSCAN_DATA_DIR (unset)");
        if (make_synthetic((vs_score_metric)metric, &d))
            return 1;
    }
    printf("dataset: %s, %llu queries, metric %s, tie-aware recall against exact float64 ground truth\n",
           d.name, (unsigned long long)d.n_queries, vs_metric_name(metric));
    printf("%-14s %8s %10s %11s %9s %10s %9s\n", "storage", "rerank", "recall@10", "recall@100", "QPS",
           "load s", "MB");
    static const struct { vs_storage s; uint32_t rerank; } tiers[] = {
        {VS_STORAGE_F32, 0}, {VS_STORAGE_F16, 0}, {VS_STORAGE_I8, 0}, {VS_STORAGE_I8, 4}, {VS_STORAGE_B1, 20}};
    for (size_t i = 0; i < sizeof tiers / sizeof tiers[0]; i++)
        if (run_tier(&d, metric, tiers[i].s, tiers[i].rerank, threads))
            return 1;
    free(d.base), free(d.queries), free(d.gt), free(d.gt_scores);
    return 0;
}
