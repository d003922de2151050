/*
 * test_filtered_mnist.c: true pre-filtering on the real MNIST set. Each of the 1,000 queries has
 * its own filter (`digit IN (a, b, c)`, about 30% pass); the filter is parsed and evaluated into an
 * allowed-slot set, and the search returns the k best among the items that pass. Against the exact
 * filtered ground truth (tie-aware): f32 recall@10 and @100 equal 1.0 for cosine and l2; i8 (no
 * rerank) recall@10 >= 0.98. The same filters forced to gather lists must give the same results as
 * bitmaps. Prints SKIP without VECSCAN_DATA_DIR.
 */
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "index.h"
#include "recall.h"
#include "testutil.h"
#include "tsv.h"
#include "vs_filter.h"

typedef struct data {
    float *base, *queries;
    uint64_t n, nq;
    uint32_t dim;
    vs_attr_store *attrs;
    char **filters; /* per query */
} data;

static float *load_f32(const char *dir, const char *file, uint64_t *rows, uint32_t *dim)
{
    char path[4096];
    float *d = NULL;
    vs_status st;
    snprintf(path, sizeof path, "%s/mnist/%s", dir, file);
    if (vs_dataset_load_f32(path, &d, rows, dim, &st) != VS_OK)
        CHECKF(0, "%s", st.msg);
    return d;
}

/* Reads base-attrs.tsv (id digit ink) into an attribute store, slot = id (inserted in id order). */
static vs_attr_store *load_attrs(const char *dir)
{
    char path[4096];
    vs_status st;
    vs_attr_schema *schema = vs_attr_schema_create();
    vs_attr_store *s = NULL;
    vs_tsv *t = NULL;
    CHECK(vs_attr_schema_add(schema, "digit", VS_ATTR_TAG, &st) == VS_OK);
    CHECK(vs_attr_schema_add(schema, "ink", VS_ATTR_INT, &st) == VS_OK);
    CHECK(vs_attr_store_create(schema, NULL, &s, &st) == VS_OK);
    vs_attr_schema_destroy(schema);
    snprintf(path, sizeof path, "%s/mnist/base-attrs.tsv", dir);
    if (vs_tsv_open(path, &t, &st) != VS_OK) {
        CHECKF(0, "%s", st.msg);
        return s;
    }
    int ci = vs_tsv_col(t, "id"), cd = vs_tsv_col(t, "digit"), ck = vs_tsv_col(t, "ink");
    CHECK(ci >= 0 && cd >= 0 && ck >= 0);
    const char *const *cells;
    while (vs_tsv_next(t, &cells, &st) == VS_OK && cells) {
        uint32_t slot = (uint32_t)strtoul(cells[ci], NULL, 10);
        vs_attr_str tag = {cells[cd], strlen(cells[cd])};
        CHECK(vs_attr_store_set_tags(s, 0, slot, &tag, 1, &st) == VS_OK);
        CHECK(vs_attr_store_set_int(s, 1, slot, strtoll(cells[ck], NULL, 10), &st) == VS_OK);
    }
    vs_tsv_close(t);
    return s;
}

static char **load_filters(const char *dir, uint64_t nq)
{
    char path[4096];
    vs_status st;
    vs_tsv *t = NULL;
    char **f = calloc(nq, sizeof *f);
    snprintf(path, sizeof path, "%s/mnist/filtered-queries.tsv", dir);
    if (vs_tsv_open(path, &t, &st) != VS_OK) {
        CHECKF(0, "%s", st.msg);
        return f;
    }
    int cq = vs_tsv_col(t, "query"), cf = vs_tsv_col(t, "filter");
    const char *const *cells;
    while (vs_tsv_next(t, &cells, &st) == VS_OK && cells) {
        uint64_t q = strtoull(cells[cq], NULL, 10);
        if (q < nq)
            f[q] = strdup(cells[cf]);
    }
    vs_tsv_close(t);
    return f;
}

/* Searches every query under its filter; ids (nq x k) for recall. */
static void search_filtered(const data *d, vs_index *ix, uint32_t k, vs_filter_output out_kind, uint64_t *ids)
{
    vs_status st;
    vs_hit *hits = malloc((size_t)k * sizeof *hits);
    vs_filter_result *res = vs_filter_result_create();
    for (uint64_t q = 0; q < d->nq; q++) {
        vs_filter *f = NULL;
        CHECKF(vs_filter_parse(vs_attr_store_schema(d->attrs), d->filters[q], strlen(d->filters[q]), NULL, &f,
                               &st) == VS_OK,
               "query %llu filter '%s': %s", (unsigned long long)q, d->filters[q], st.msg);
        vs_filter_eval_options eo = {.output = out_kind};
        CHECK(vs_filter_eval(f, d->attrs, vs_index_live_words(ix), vs_index_slot_limit(ix), &eo, res, &st) == VS_OK);
        vs_term term = {.field = 0, .n_vectors = 1, .vectors = d->queries + q * d->dim, .weight = 1};
        vs_query query = {.terms = &term, .n_terms = 1, .allowed = vs_filter_result_slotset(res)};
        vs_search_params p = {.k = k};
        uint32_t count = 0;
        CHECK(vs_index_search(ix, &query, 1, &p, hits, &count, &st) == VS_OK);
        CHECKF(count == k, "query %llu: %u results under its filter, expected %u", (unsigned long long)q, count, k);
        for (uint32_t i = 0; i < k; i++)
            ids[q * k + i] = i < count ? hits[i].id : VS_RECALL_NO_ID;
        vs_filter_destroy(f);
    }
    vs_filter_result_destroy(res);
    free(hits);
}

static double recall(const char *dir, const data *d, const uint64_t *ids, uint32_t k, uint32_t at, vs_metric m)
{
    char path[4096];
    const char *mname = m == VS_METRIC_L2 ? "l2" : "cos";
    vs_status st;
    int32_t *gt = NULL;
    float *gts = NULL;
    uint64_t rows;
    uint32_t gk, sk;
    snprintf(path, sizeof path, "%s/mnist/gt-%s-filtered-100.ivecs", dir, mname);
    CHECK(vs_dataset_load_i32(path, &gt, &rows, &gk, &st) == VS_OK);
    snprintf(path, sizeof path, "%s/mnist/gt-%s-filtered-100.scores.fvecs", dir, mname);
    CHECK(vs_dataset_load_f32(path, &gts, &rows, &sk, &st) == VS_OK);
    vs_recall_base rb = {d->base, d->n, d->dim, (vs_score_metric)m};
    double r = 0;
    CHECK(vs_recall_mean(ids, k, gt, gts, gk, d->nq, at, &rb, d->queries, &r, NULL, &st) == VS_OK);
    free(gt);
    free(gts);
    return r;
}

static void run(const char *dir, const data *d, vs_metric metric, vs_storage storage)
{
    vs_field_spec sp = {.name = "img", .dim = d->dim, .metric = metric, .storage = storage};
    vs_index_options o = {.n_threads = 2};
    vs_index *ix;
    vs_status st;
    CHECK(vs_index_create(&sp, 1, &o, &ix, &st) == VS_OK);
    vs_item_vectors *items = calloc(d->n, sizeof *items);
    for (uint64_t i = 0; i < d->n; i++) {
        items[i].id = i;
        items[i].vectors[0] = d->base + i * d->dim;
    }
    uint32_t *slots = malloc(d->n * sizeof *slots);
    CHECK(vs_index_upsert(ix, items, d->n, slots, &st) == VS_OK);
    for (uint64_t i = 0; i < d->n; i++)
        CHECK(slots[i] == i); /* the attribute store was filled with slot = id */
    const uint32_t k = 100;
    uint64_t *ids = malloc(d->nq * k * sizeof *ids), *ids_list = malloc(d->nq * k * sizeof *ids);
    search_filtered(d, ix, k, VS_FILTER_OUT_AUTO, ids);
    search_filtered(d, ix, k, VS_FILTER_OUT_LIST, ids_list);
    CHECKF(memcmp(ids, ids_list, d->nq * k * sizeof *ids) == 0, "%s %s: gather lists and bitmaps disagree",
           vs_storage_name(storage), vs_metric_name(metric));
    double r10 = recall(dir, d, ids, k, 10, metric), r100 = recall(dir, d, ids, k, 100, metric);
    printf("MNIST filtered %s %s: recall@10 %.4f recall@100 %.4f\n", vs_metric_name(metric), vs_storage_name(storage),
           r10, r100);
    if (storage == VS_STORAGE_F32) {
        CHECKF(r10 == 1.0 && r100 == 1.0, "f32 filtered recall must be exact: %.4f %.4f", r10, r100);
    } else {
        CHECKF(r10 >= 0.98, "%s filtered recall@10 %.4f < 0.98", vs_storage_name(storage), r10);
    }
    free(ids), free(ids_list), free(items), free(slots);
    vs_index_destroy(ix);
}

int main(void)
{
    const char *dir = vs_test_data_dir();
    if (!dir)
        return vs_test_skip("test_filtered_mnist", "VECSCAN_DATA_DIR is not set: no MNIST set");
    data d = {0};
    uint32_t qdim;
    d.base = load_f32(dir, "base.bvecs", &d.n, &d.dim);
    d.queries = load_f32(dir, "query.bvecs", &d.nq, &qdim);
    if (!d.base || !d.queries)
        return vs_test_finish("test_filtered_mnist");
    if (getenv("VECSCAN_QUICK") && d.nq > 200) { /* sanitizer builds: the first 200 queries */
        printf("VECSCAN_QUICK: checking the first 200 of %llu queries\n", (unsigned long long)d.nq);
        d.nq = 200;
    }
    d.attrs = load_attrs(dir);
    d.filters = load_filters(dir, d.nq);
    for (uint64_t q = 0; q < d.nq; q++)
        if (!d.filters[q]) {
            CHECKF(0, "query %llu has no filter", (unsigned long long)q);
            return vs_test_finish("test_filtered_mnist");
        }
    run(dir, &d, VS_METRIC_COSINE, VS_STORAGE_F32);
    run(dir, &d, VS_METRIC_L2, VS_STORAGE_F32);
    run(dir, &d, VS_METRIC_COSINE, VS_STORAGE_I8);
    for (uint64_t q = 0; q < d.nq; q++)
        free(d.filters[q]);
    free(d.filters), free(d.base), free(d.queries);
    vs_attr_store_destroy(d.attrs);
    return vs_test_finish("test_filtered_mnist");
}
