/*
 * cmd_eval.c: `vecscan eval`, recall@k, QPS and latency of a collection against ground truth.
 *
 * The queries go to the daemon as Search calls (or SearchBatch calls of --batch queries), with
 * --concurrency calls in flight over a few connections (cli_run). Recall is computed by
 * formats/recall.h: tie-aware when --gt-scores and --base are given, exactly as the shared MNIST
 * README defines it (a hit is an id in the ground truth's first k, or a boundary tie whose
 * float64 score, recomputed from the base file, is within a relative 1e-5 of the k-th ground-truth
 * score); plain otherwise. The metric is the collection field's (DescribeCollection).
 *
 * --exact computes the ground truth here instead (vs_exact_knn: float64, every core) from --base,
 * and --write-gt PREFIX saves it as PREFIX.ivecs + PREFIX.scores.fvecs for later runs. The ids of
 * the collection must be the base file's row numbers (load without --id-offset).
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dataset.h"
#include "recall.h"
#include "tsv.h"

#define NOPTS(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MAX_KS 16

typedef struct eval_state {
    uint64_t *ids;   /* nq x kmax, VS_RECALL_NO_ID for holes */
    uint32_t kmax;
    uint32_t batch;  /* queries per request */
    uint64_t nq;
    bool is_batch;
    _Atomic int failed;
    char error[VSC_MSG_LEN + 32];
} eval_state;

/* Stores the hits of one search result for query q. */
static void store_hits(eval_state *es, uint64_t q, const Vecscan__V1__SearchResult *res)
{
    uint64_t *row = es->ids + q * es->kmax;
    for (uint32_t h = 0; h < es->kmax; h++)
        row[h] = res && h < res->n_hits ? res->hits[h]->id : VS_RECALL_NO_ID;
}

static bool on_eval_done(void *user, size_t i, const vsc_status *st, const uint8_t *raw, size_t len)
{
    eval_state *es = user;
    if (st->code != VSC_OK) {
        int expect = 0;
        if (atomic_compare_exchange_strong(&es->failed, &expect, 1))
            snprintf(es->error, sizeof es->error, "%s: %s", vsc_code_name(st->code), st->message);
        return false;
    }
    uint64_t q0 = (uint64_t)i * es->batch;
    if (!es->is_batch) {
        Vecscan__V1__SearchResponse *r = vecscan__v1__search_response__unpack(NULL, len, raw);
        if (r) store_hits(es, q0, r->result);
        vsc_free(r);
        return r != NULL;
    }
    Vecscan__V1__SearchBatchResponse *r = vecscan__v1__search_batch_response__unpack(NULL, len, raw);
    if (!r) return false;
    for (size_t k = 0; k < r->n_results && q0 + k < es->nq; k++) store_hits(es, q0 + k, r->results[k]);
    vsc_free(r);
    return true;
}

/* Reads the TSV `query<TAB>filter` into filters[q - a] for query rows a <= q < b. 0 or exit code. */
static int read_filters(const cli_cmd *cmd, const char *path, uint64_t a, uint64_t b, char **filters)
{
    vs_tsv *t;
    vs_status st;
    if (vs_tsv_open(path, &t, &st) != VS_OK) return cli_fail(cmd->name, CLI_EXIT_FAIL, "%s", st.msg);
    int qc = vs_tsv_col(t, "query"), fc = vs_tsv_col(t, "filter");
    int rc = 0;
    if (qc < 0 || fc < 0) rc = cli_fail(cmd->name, CLI_EXIT_FAIL, "%s: want columns 'query' and 'filter'", path);
    while (rc == 0) {
        const char *const *cells;
        if (vs_tsv_next(t, &cells, &st) != VS_OK) {
            rc = cli_fail(cmd->name, CLI_EXIT_FAIL, "%s", st.msg);
            break;
        }
        if (!cells) break;
        int64_t q;
        if (cli_parse_i64(cells[qc], &q) != 0 || q < 0) {
            rc = cli_fail(cmd->name, CLI_EXIT_FAIL, "%s line %" PRIu64 ": query '%s' is not a row number", path,
                          vs_tsv_line(t), cells[qc]);
            break;
        }
        if ((uint64_t)q < a || (uint64_t)q >= b) continue;
        free(filters[q - (int64_t)a]);
        if (!(filters[q - (int64_t)a] = strdup(cells[fc]))) rc = cli_fail(cmd->name, CLI_EXIT_FAIL, "out of memory");
    }
    vs_tsv_close(t);
    return rc;
}

int cmd_eval(int argc, char **argv, const cli_common *pre)
{
    const char *coll = NULL, *queries = NULL, *gt_path = NULL, *gts_path = NULL, *base_path = NULL,
               *filters_path = NULL, *filter = NULL, *field_name = NULL, *combine_s = NULL, *rows_s = NULL,
               *write_gt = NULL, *metric_s = NULL;
    cli_strlist ks_s = {0};
    uint64_t concurrency = 4, batch = 1, rerank = 0, connections = 0, threads = 0;
    bool json = false, exact = false;
    cli_opt opts[] = {
        {"collection", CLI_STR, &coll, "NAME", "the collection (its ids must be the base file's rows)"},
        {"queries", CLI_STR, &queries, "FILE", "query vectors (a dataset file; row i is query i)"},
        {"rows", CLI_STR, &rows_s, "A:B", "only queries A..B-1"},
        {"gt", CLI_STR, &gt_path, "FILE", "ground truth ids (ivecs/ibin: row i holds query i's best ids, best first)"},
        {"gt-scores", CLI_STR, &gts_path, "FILE",
         "the ground truth's exact scores (fvecs; squared L2 or similarity): with --base, tie-aware recall"},
        {"base", CLI_STR, &base_path, "FILE", "the base vectors (row = id), for tie-aware recall and --exact"},
        {"exact", CLI_FLAG, &exact, NULL, "compute exact ground truth from --base here (float64, every core)"},
        {"write-gt", CLI_STR, &write_gt, "PREFIX", "with --exact: write PREFIX.ivecs and PREFIX.scores.fvecs"},
        {"metric", CLI_STR, &metric_s, "M", "with --exact --write-gt and no --collection: ip, cosine or l2"},
        {"threads", CLI_U64, &threads, "N", "threads of --exact (default: every core)"},
        {"k", CLI_STRLIST, &ks_s, "K", "recall@K (repeat, or 10,100; default 10, and 100 when the ground truth has it)"},
        {"filters", CLI_STR, &filters_path, "FILE.tsv", "per-query filters: a TSV with columns query and filter"},
        {"filter", CLI_STR, &filter, "EXPR", "one filter for every query"},
        {"field", CLI_STR, &field_name, "NAME", "the vector field (default: the collection's only one)"},
        {"combine", CLI_STR, &combine_s, "MODE", "sum, max or interleave"},
        {"rerank", CLI_U64, &rerank, "R", "rerank factor (k x R candidates rescored exactly)"},
        {"concurrency", CLI_U64, &concurrency, "C", "calls in flight (default 4)"},
        {"connections", CLI_U64, &connections, "N", "connections, one thread each (default: min(C, 2))"},
        {"batch", CLI_U64, &batch, "B", "queries per call: 1 = Search, more = SearchBatch (default 1)"},
        {"json", CLI_FLAG, &json, NULL, "print one JSON object: recall (by k), qps, p50_ms, p95_ms, p99_ms, queries"},
    };
    cli_cmd cmd = {"eval",
                   "--collection NAME --queries FILE --gt FILE [--gt-scores FILE --base FILE] [--k K ...]\n"
                   "       [--filters FILE.tsv] [--concurrency C] [--batch B] [--json] [search options]\n"
                   "       vecscan eval --exact --base FILE --queries FILE ... [--write-gt PREFIX]",
                   "Runs every query through the daemon and prints recall@k for each k (tie-aware with\n"
                   "--gt-scores and --base), QPS, and the latency percentiles of the calls.",
                   opts, NOPTS(opts), {0}};
    int rc = cli_start(&cmd, argc, argv, pre);
    if (rc == 0) rc = cli_require(&cmd, queries, "queries");
    if (rc == 0 && !coll && !(exact && write_gt))
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--collection is required (see vecscan eval --help)");
    if (rc == 0 && !exact && !gt_path) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "give --gt FILE, or --exact --base FILE");
    if (rc == 0 && exact && gt_path) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--exact and --gt exclude each other");
    if (rc == 0 && exact && !base_path) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--exact needs --base FILE");
    if (rc == 0 && write_gt && !exact) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--write-gt goes with --exact");
    if (rc == 0 && exact && (filters_path || filter))
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE,
                      "--exact cannot apply filters (the client has no filter engine); give filtered ground truth with --gt");
    if (rc == 0 && !exact && (gts_path != NULL) != (base_path != NULL))
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "tie-aware recall needs both --gt-scores and --base");
    if (rc == 0 && filters_path && filter) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "give --filters or --filter, not both");
    if (rc == 0 && (concurrency < 1 || concurrency > 4096)) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--concurrency must be 1..4096");
    if (rc == 0 && (batch < 1 || batch > 1024)) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--batch must be 1..1024");
    uint32_t ks[MAX_KS];
    int nks = 0;
    if (rc == 0 && cli_parse_ks(&ks_s, ks, MAX_KS, &nks) != 0)
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--k wants integers in 1..10000 (at most %d)", MAX_KS);
    uint64_t ra = 0, rb = UINT64_MAX;
    if (rc == 0 && rows_s && cli_parse_range(rows_s, &ra, &rb) != 0)
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--rows wants A:B with A < B, got '%s'", rows_s);
    Vecscan__V1__Combine combine = VECSCAN__V1__COMBINE__COMBINE_SUM;
    if (rc == 0 && combine_s && cli_parse_combine(combine_s, &combine) != 0)
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--combine wants sum, max or interleave, got '%s'", combine_s);

    vsc_conn *c = NULL;
    Vecscan__V1__DescribeCollectionResponse *d = NULL;
    const Vecscan__V1__VectorField *f = NULL;
    vs_score_metric metric = VS_SCORE_IP;
    float *qv = NULL, *gts = NULL, *base = NULL;
    int32_t *gt = NULL;
    uint64_t nq = 0, gt_rows = 0, base_rows = 0;
    uint32_t qdim = 0, gt_dim = 0, base_dim = 0;
    char **filters = NULL;
    uint8_t **reqs = NULL;
    size_t *req_len = NULL, n_reqs = 0;
    eval_state es = {0};
    vs_status vst;
    if (rc == 0 && coll) {
        rc = cli_connect(&cmd, &c);
        if (rc == 0) rc = cli_describe(&cmd, c, coll, &d);
        if (rc == 0 && !(f = cli_pick_field(&cmd, d->info->schema, field_name))) rc = CLI_EXIT_USAGE;
        if (rc == 0) metric = (vs_score_metric)f->metric;
    } else if (rc == 0) {
        if (!metric_s || (strcmp(metric_s, "ip") && strcmp(metric_s, "cosine") && strcmp(metric_s, "l2")))
            rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "without --collection, --metric ip|cosine|l2 is required");
        else
            metric = !strcmp(metric_s, "ip") ? VS_SCORE_IP : !strcmp(metric_s, "cosine") ? VS_SCORE_COSINE : VS_SCORE_L2;
    }
    if (rc == 0) rc = cli_load_rows(cmd.name, queries, ra, rb, &qv, &nq, &qdim);
    if (rc == 0 && f && qdim != f->dim)
        rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s has dim %u but field '%s' of collection '%s' has dim %u", queries, qdim,
                      f->name, coll, f->dim);
    if (rc == 0 && rb == UINT64_MAX) rb = ra + nq;
    if (rc == 0 && base_path) {
        if (vs_dataset_load_f32(base_path, &base, &base_rows, &base_dim, &vst) != VS_OK)
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s", vst.msg);
        else if (base_dim != qdim)
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s has dim %u but the queries have dim %u", base_path, base_dim, qdim);
    }
    /* ground truth: read, or computed */
    if (rc == 0 && exact) {
        if (nks == 0) ks[nks++] = 10;
        gt_dim = ks[nks - 1];
        if (gt_dim > base_rows) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "k %u is more than the %" PRIu64 " base rows", gt_dim, base_rows);
        gt = rc ? NULL : malloc(nq * gt_dim * sizeof *gt);
        gts = rc ? NULL : malloc(nq * gt_dim * sizeof *gts);
        if (rc == 0 && (!gt || !gts)) rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "out of memory");
        if (rc == 0) {
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            uint32_t nt = threads ? (uint32_t)threads : (uint32_t)(cores > 0 ? cores : 1);
            vs_recall_base b = {.vectors = base, .rows = base_rows, .dim = base_dim, .metric = metric};
            double t0 = cli_now();
            fprintf(stderr, "eval: exact ground truth of %" PRIu64 " queries over %" PRIu64 " rows (k %u, %u threads)\n",
                    nq, base_rows, gt_dim, nt);
            if (vs_exact_knn(&b, qv, nq, gt_dim, NULL, nt, gt, gts, &vst) != VS_OK)
                rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s", vst.msg);
            else
                fprintf(stderr, "eval: ground truth in %.2f s\n", cli_now() - t0);
        }
        gt_rows = nq;
        if (rc == 0 && write_gt) {
            char p1[4096], p2[4096];
            snprintf(p1, sizeof p1, "%s.ivecs", write_gt);
            snprintf(p2, sizeof p2, "%s.scores.fvecs", write_gt);
            if (vs_write_ivecs(p1, gt, nq, gt_dim, &vst) != VS_OK || vs_write_fvecs(p2, gts, nq, gt_dim, &vst) != VS_OK)
                rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s", vst.msg);
            else
                fprintf(stderr, "eval: wrote %s and %s\n", p1, p2);
        }
        ra = 0; /* the computed ground truth's rows are the loaded queries */
    } else if (rc == 0) {
        if (vs_dataset_load_i32(gt_path, &gt, &gt_rows, &gt_dim, &vst) != VS_OK)
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s", vst.msg);
        else if (gt_rows < rb)
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s has %" PRIu64 " rows but the queries go to row %" PRIu64, gt_path, gt_rows, rb);
        if (rc == 0 && gts_path) {
            uint64_t sr;
            uint32_t sd;
            if (vs_dataset_load_f32(gts_path, &gts, &sr, &sd, &vst) != VS_OK)
                rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s", vst.msg);
            else if (sr != gt_rows || sd != gt_dim)
                rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s is %" PRIu64 " x %u but %s is %" PRIu64 " x %u", gts_path, sr, sd,
                              gt_path, gt_rows, gt_dim);
        }
        if (rc == 0 && nks == 0) {
            ks[nks++] = 10 <= gt_dim ? 10 : gt_dim;
            if (gt_dim >= 100) ks[nks++] = 100;
        }
        if (rc == 0 && ks[nks - 1] > gt_dim)
            rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "k %u is more than the ground truth's %u ids per query", ks[nks - 1], gt_dim);
    }
    if (rc == 0 && !coll) { /* --exact --write-gt alone */
        printf("wrote exact ground truth of %" PRIu64 " queries (k %u) to %s.ivecs and %s.scores.fvecs\n", nq, gt_dim,
               write_gt, write_gt);
        goto out;
    }
    /* per-query filters */
    if (rc == 0 && filters_path) {
        filters = calloc(nq, sizeof *filters);
        if (!filters) rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "out of memory");
        else rc = read_filters(&cmd, filters_path, ra, ra + nq, filters);
    }
    /* pack the requests */
    es.kmax = ks[nks > 0 ? nks - 1 : 0];
    es.batch = (uint32_t)batch;
    es.nq = nq;
    es.is_batch = batch > 1;
    if (rc == 0) {
        n_reqs = (nq + batch - 1) / batch;
        reqs = calloc(n_reqs, sizeof *reqs);
        req_len = calloc(n_reqs, sizeof *req_len);
        es.ids = malloc(nq * es.kmax * sizeof *es.ids);
        if (!reqs || !req_len || !es.ids) rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "out of memory");
    }
    cli_qopts qo = {.collection = coll, .field = f ? f->name : NULL, .k = es.kmax, .filter = filter,
                    .combine = combine, .rerank = (uint32_t)rerank};
    for (size_t i = 0; rc == 0 && i < n_reqs; i++) {
        uint64_t q0 = i * batch;
        uint32_t n = (uint32_t)(nq - q0 < batch ? nq - q0 : batch);
        if (cli_pack_queries(&qo, qv + q0 * qdim, n, qdim, filters ? (const char *const *)filters + q0 : NULL, batch > 1,
                             &reqs[i], &req_len[i]) != 0)
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "out of memory");
    }
    for (uint64_t i = 0; rc == 0 && i < nq * es.kmax; i++) es.ids[i] = VS_RECALL_NO_ID;
    /* run */
    cli_runner run = {.cmd = &cmd,
                      .connections = connections ? (int)connections : (concurrency < 2 ? 1 : 2),
                      .concurrency = (int)concurrency,
                      .path = batch > 1 ? "/vecscan.v1.VecScan/SearchBatch" : "/vecscan.v1.VecScan/Search",
                      .reqs = reqs,
                      .req_len = req_len,
                      .n_reqs = n_reqs,
                      .on_done = on_eval_done,
                      .user = &es};
    if (rc == 0) {
        vsc_close(c); /* the runner opens its own */
        c = NULL;
        fprintf(stderr, "eval: %" PRIu64 " queries, k %u, %s, concurrency %" PRIu64 "\n", nq, es.kmax,
                batch > 1 ? "SearchBatch" : "Search", concurrency);
        rc = cli_run(&run);
        if (rc == 0 && es.failed) rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s", es.error);
    }
    /* recall */
    double recall[MAX_KS];
    if (rc == 0) {
        vs_recall_base b = {.vectors = base, .rows = base_rows, .dim = base_dim, .metric = metric};
        for (int i = 0; i < nks && rc == 0; i++)
            if (vs_recall_mean(es.ids, es.kmax, gt + ra * gt_dim, gts ? gts + ra * gt_dim : NULL, gt_dim, nq, ks[i],
                               base ? &b : NULL, qv, &recall[i], NULL, &vst) != VS_OK)
                rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s", vst.msg);
    }
    if (rc == 0) {
        double qps = run.elapsed_s > 0 ? (double)nq / run.elapsed_s : 0;
        double p50 = cli_lat_pct(&run.lat, 50), p95 = cli_lat_pct(&run.lat, 95), p99 = cli_lat_pct(&run.lat, 99);
        if (json) {
            cli_json j;
            cli_json_init(&j, stdout);
            cli_json_begin_object(&j);
            cli_json_key(&j, "recall");
            cli_json_begin_object(&j);
            for (int i = 0; i < nks; i++) {
                char kb[16];
                snprintf(kb, sizeof kb, "%u", ks[i]);
                cli_json_kv_double(&j, kb, recall[i]);
            }
            cli_json_end_object(&j);
            cli_json_kv_double(&j, "qps", qps);
            cli_json_kv_double(&j, "p50_ms", p50);
            cli_json_kv_double(&j, "p95_ms", p95);
            cli_json_kv_double(&j, "p99_ms", p99);
            cli_json_kv_u64(&j, "queries", nq);
            cli_json_end_object(&j);
        } else {
            printf("collection  %s (%s, %s, %s%s)\n", coll, f->name, cli_metric_name(f->metric),
                   cli_storage_name(f->storage), f->rerank ? " + rerank" : "");
            printf("queries     %" PRIu64 "%s\n", nq, filters || filter ? " (filtered)" : "");
            for (int i = 0; i < nks; i++) {
                char kb[32];
                snprintf(kb, sizeof kb, "recall@%u", ks[i]);
                printf("%-11s %.4f%s\n", kb, recall[i], gts && base ? "" : " (plain)");
            }
            printf("qps         %.1f\n", qps);
            printf("p50_ms      %.3f\np95_ms      %.3f\np99_ms      %.3f\n", p50, p95, p99);
        }
    }
    cli_lat_free(&run.lat);
out:
    for (size_t i = 0; reqs && i < n_reqs; i++) free(reqs[i]);
    free(reqs);
    free(req_len);
    for (uint64_t i = 0; filters && i < nq; i++) free(filters[i]);
    free(filters);
    free(es.ids);
    free(qv);
    free(gt);
    free(gts);
    free(base);
    vsc_free(d);
    vsc_close(c);
    cli_free_opts(&cmd);
    return rc == CLI_DONE ? 0 : rc;
}
