/*
 * cmd_loadtest.c: `vecscan loadtest`, a gRPC load generator in the spirit of ghz: Search calls
 * over N connections with C calls in flight for S seconds, cycling through a query file. Reports
 * calls per second, latency percentiles and the count of each gRPC status code (which h2load
 * cannot see).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define NOPTS(a) ((int)(sizeof(a) / sizeof((a)[0])))

int cmd_loadtest(int argc, char **argv, const cli_common *pre)
{
    const char *coll = NULL, *queries = NULL, *filter = NULL, *field_name = NULL, *rows_s = NULL;
    uint64_t k = 10, connections = 1, concurrency = 16, rerank = 0, batch = 1;
    double duration = 10;
    bool json = false;
    cli_opt opts[] = {
        {"collection", CLI_STR, &coll, "NAME", "the collection"},
        {"queries", CLI_STR, &queries, "FILE", "query vectors (a dataset file), used in turn"},
        {"rows", CLI_STR, &rows_s, "A:B", "only rows A..B-1 of --queries"},
        {"field", CLI_STR, &field_name, "NAME", "the vector field (default: the collection's only one)"},
        {"k", CLI_U64, &k, "K", "results per query (default 10)"},
        {"filter", CLI_STR, &filter, "EXPR", "a filter on every query"},
        {"rerank", CLI_U64, &rerank, "R", "rerank factor"},
        {"batch", CLI_U64, &batch, "B", "queries per call: 1 = Search (default), more = SearchBatch"},
        {"connections", CLI_U64, &connections, "N", "connections, one thread each (default 1)"},
        {"concurrency", CLI_U64, &concurrency, "C", "calls in flight over all connections (default 16)"},
        {"duration", CLI_DOUBLE, &duration, "S", "seconds to run (default 10)"},
        {"json", CLI_FLAG, &json, NULL,
         "print one JSON object: requests, qps, p50_ms, p95_ms, p99_ms, max_ms, codes, ..."},
    };
    cli_cmd cmd = {"loadtest",
                   "--collection NAME --queries FILE [--k K] [--filter EXPR] [--connections N] [--concurrency C]\n"
                   "       [--duration S] [--json]",
                   "Drives Search calls for a while and reports calls/s, latency p50/p95/p99/max and the\n"
                   "count of each gRPC status code.",
                   opts, NOPTS(opts), {0}};
    int rc = cli_start(&cmd, argc, argv, pre);
    if (rc == 0) rc = cli_require(&cmd, coll, "collection");
    if (rc == 0) rc = cli_require(&cmd, queries, "queries");
    if (rc == 0 && (connections < 1 || connections > 256)) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--connections must be 1..256");
    if (rc == 0 && (concurrency < 1 || concurrency > 65536)) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--concurrency must be 1..65536");
    if (rc == 0 && !(duration > 0)) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--duration must be > 0");
    if (rc == 0 && (batch < 1 || batch > 1024)) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--batch must be 1..1024");
    if (rc == 0 && (k < 1 || k > 10000)) rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--k must be 1..10000");
    uint64_t ra = 0, rb = UINT64_MAX;
    if (rc == 0 && rows_s && cli_parse_range(rows_s, &ra, &rb) != 0)
        rc = cli_fail(cmd.name, CLI_EXIT_USAGE, "--rows wants A:B with A < B, got '%s'", rows_s);

    vsc_conn *c = NULL;
    Vecscan__V1__DescribeCollectionResponse *d = NULL;
    const Vecscan__V1__VectorField *f = NULL;
    float *qv = NULL;
    uint64_t nq = 0;
    uint32_t qdim = 0;
    uint8_t **reqs = NULL;
    size_t *req_len = NULL, n_reqs = 0;
    if (rc == 0) rc = cli_connect(&cmd, &c);
    if (rc == 0) rc = cli_describe(&cmd, c, coll, &d);
    if (rc == 0 && !(f = cli_pick_field(&cmd, d->info->schema, field_name))) rc = CLI_EXIT_USAGE;
    if (rc == 0) rc = cli_load_rows(cmd.name, queries, ra, rb, &qv, &nq, &qdim);
    if (rc == 0 && qdim != f->dim)
        rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s has dim %u but field '%s' of collection '%s' has dim %u", queries, qdim,
                      f->name, coll, f->dim);
    if (rc == 0 && nq < batch) batch = nq;
    if (rc == 0) {
        n_reqs = nq / batch;
        reqs = calloc(n_reqs, sizeof *reqs);
        req_len = calloc(n_reqs, sizeof *req_len);
        if (!reqs || !req_len) rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "out of memory");
    }
    cli_qopts qo = {.collection = coll, .field = f ? f->name : NULL, .k = (uint32_t)k, .filter = filter,
                    .rerank = (uint32_t)rerank};
    for (size_t i = 0; rc == 0 && i < n_reqs; i++)
        if (cli_pack_queries(&qo, qv + i * batch * qdim, (uint32_t)batch, qdim, NULL, batch > 1, &reqs[i], &req_len[i]) != 0)
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "out of memory");
    /* one call first: a bad filter or collection fails here with its message, not as a count */
    if (rc == 0 && batch == 1) {
        Vecscan__V1__SearchResponse *r;
        vsc_status st;
        if (vsc_search_vector(c, coll, f->name, qv, qdim, (uint32_t)k, filter, &r, &st) != VSC_OK)
            rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "%s: %s", vsc_code_name(st.code), st.message);
        vsc_free(r);
    }
    vsc_close(c);
    c = NULL;
    cli_runner run = {.cmd = &cmd,
                      .connections = (int)connections,
                      .concurrency = (int)concurrency,
                      .path = batch > 1 ? "/vecscan.v1.VecScan/SearchBatch" : "/vecscan.v1.VecScan/Search",
                      .reqs = reqs,
                      .req_len = req_len,
                      .n_reqs = n_reqs,
                      .cycle = true,
                      .duration_s = duration};
    if (rc == 0) {
        fprintf(stderr, "loadtest: %s, %" PRIu64 " connections, %" PRIu64 " in flight, %.1f s\n", coll, connections,
                concurrency, duration);
        rc = cli_run(&run);
    }
    if (rc == 0) {
        double qps = run.elapsed_s > 0 ? (double)run.calls / run.elapsed_s : 0;
        double p50 = cli_lat_pct(&run.lat, 50), p95 = cli_lat_pct(&run.lat, 95), p99 = cli_lat_pct(&run.lat, 99),
               mx = cli_lat_pct(&run.lat, 100);
        if (json) {
            cli_json j;
            cli_json_init(&j, stdout);
            cli_json_begin_object(&j);
            cli_json_kv_u64(&j, "requests", run.calls);
            cli_json_kv_u64(&j, "ok", run.codes[VSC_OK]);
            cli_json_kv_double(&j, "duration_s", run.elapsed_s);
            cli_json_kv_double(&j, "qps", qps);
            cli_json_kv_double(&j, "queries_per_s", qps * (double)batch);
            cli_json_kv_double(&j, "p50_ms", p50);
            cli_json_kv_double(&j, "p95_ms", p95);
            cli_json_kv_double(&j, "p99_ms", p99);
            cli_json_kv_double(&j, "max_ms", mx);
            cli_json_key(&j, "codes");
            cli_json_begin_object(&j);
            for (int i = 0; i < VSC_N_CODES; i++)
                if (run.codes[i]) {
                    cli_json_key(&j, vsc_code_name(i));
                    cli_json_u64(&j, run.codes[i]);
                }
            cli_json_end_object(&j);
            cli_json_kv_u64(&j, "connections", connections);
            cli_json_kv_u64(&j, "concurrency", concurrency);
            cli_json_end_object(&j);
        } else {
            printf("requests    %" PRIu64 " in %.2f s\n", run.calls, run.elapsed_s);
            printf("rpcs_per_s  %.1f\n", qps);
            if (batch > 1) printf("queries/s   %.1f\n", qps * (double)batch);
            printf("p50_ms      %.3f\np95_ms      %.3f\np99_ms      %.3f\nmax_ms      %.3f\n", p50, p95, p99, mx);
            for (int i = 0; i < VSC_N_CODES; i++)
                if (run.codes[i]) printf("code        %-20s %" PRIu64 "\n", vsc_code_name(i), run.codes[i]);
        }
        if (run.codes[VSC_OK] == 0) rc = cli_fail(cmd.name, CLI_EXIT_FAIL, "no call succeeded");
    }
    cli_lat_free(&run.lat);
    for (size_t i = 0; reqs && i < n_reqs; i++) free(reqs[i]);
    free(reqs);
    free(req_len);
    free(qv);
    vsc_free(d);
    vsc_close(c);
    cli_free_opts(&cmd);
    return rc == CLI_DONE ? 0 : rc;
}
