/*
 * index_bench.c: vecscan's side of bench/index-vs-faiss.sh.
 *
 * Loads a base set and a query set (.fbin: int32 rows, int32 dim, then rows x dim float32; the
 * script writes both once, and FAISS's side reads the very same files), then for each storage it
 * is asked for builds a one-field inner-product index, times searches for every (k, batch) pair and
 * writes what it measured as JSON lines, one object per measurement, for the script's report:
 *
 *   {"engine":"vecscan","index":"i8","kind":"build","rows":..,"seconds":..,"field_bytes":..}
 *   {"engine":"vecscan","index":"i8","kind":"search","k":10,"batch":1000,"queries":..,
 *    "seconds":..,"qps":..,"p50_ms":..,"mean_ms":..,"p99_ms":..}
 *
 * For recall it also writes, per storage, the ids of one search of every query with k = 10
 * (int64 little-endian, queries x 10, -1 where fewer came back) as <ids-dir>/vecscan_<index>.ids.
 *
 * Timing. A batch of B > 1 queries is timed whole, after one untimed warm-up batch, and repeated
 * (cycling through the query set) until --min-time seconds have passed and at least --min-reps
 * batches ran; QPS is queries over the time. Batch 1 times --single queries one by one and reports
 * their median, mean and 99th percentile; its QPS is queries over their total time.
 *
 * Big mode (--big-rows N): loads N rows of a seeded Gaussian generated here chunk by chunk, so the
 * process never holds an f32 copy of the set, records the load time and the resident memory
 * before and after (/proc/self/status), computes the exact top-10 of the first --big-truth queries
 * with OpenBLAS sgemm on the same chunks as they pass, then times batches of 1, 16 and 1000 and
 * reports recall@10 against that exact f32 answer:
 *
 *   {"engine":"vecscan","index":"i8","kind":"big","rows":..,"load_seconds":..,"rss_before":..,
 *    "rss_after":..,"hwm":..,"field_bytes":..,"recall10":..,"truth_queries":..}
 *   and "search" objects as above with "big":true.
 *
 * An index spec is a storage name, optionally with ":rrN" for a rerank copy and rerank_factor N
 * (b1 always reranks: "b1" alone means "b1:rr10").
 */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "bw.h"
#include "index.h"

#define MAX_SPECS 16
#define MAX_LIST 8
#define RECALL_K 10
#define UPSERT_BATCH 4096
#define BIG_CHUNK_ROWS 65536

/* ===== Small helpers ===== */

/* Resident memory fields of /proc/self/status ("VmRSS", "VmHWM") in bytes, or 0 when absent. */
static uint64_t proc_status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    uint64_t kb = 0;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kb = strtoull(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb * 1024;
}

/* Parses "a,b,c" into up to MAX_LIST positive integers. */
static int parse_list(const char *s, uint32_t *out)
{
    int n = 0;
    char *end;
    while (*s) {
        if (n == MAX_LIST)
            die("too many values in list '%s'", s);
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v == 0 || v > 1000000)
            die("bad number in list near '%s'", s);
        out[n++] = (uint32_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            die("bad list near '%s'", end);
    }
    return n;
}

/* ===== Data ===== */

/* Fills one row with standard normal values (Marsaglia's polar method) from a stream seeded by
 * (seed, row), so the data does not depend on how rows are split among threads. */
static void gaussian_row(float *out, uint32_t dim, uint64_t seed, uint64_t row)
{
    uint64_t s = seed ^ (row * 0xd1342543de82ef95ull);
    splitmix64(&s);
    for (uint32_t i = 0; i < dim; i += 2) {
        double u, v, r2;
        do {
            u = (double)(splitmix64(&s) >> 11) * 0x1.0p-52 - 1.0;
            v = (double)(splitmix64(&s) >> 11) * 0x1.0p-52 - 1.0;
            r2 = u * u + v * v;
        } while (r2 >= 1.0 || r2 == 0.0);
        double m = sqrt(-2.0 * log(r2) / r2);
        out[i] = (float)(u * m);
        if (i + 1 < dim)
            out[i + 1] = (float)(v * m);
    }
}

typedef struct gen_job {
    pthread_t thread;
    float *out;
    uint32_t dim;
    uint64_t seed, first_row, n_rows;
} gen_job;

static void *gen_main(void *arg)
{
    gen_job *j = arg;
    for (uint64_t r = 0; r < j->n_rows; r++)
        gaussian_row(j->out + r * j->dim, j->dim, j->seed, j->first_row + r);
    return NULL;
}

/* Generates rows [first, first + n) on n_threads threads. */
static void gaussian_rows(float *out, uint32_t dim, uint64_t seed, uint64_t first, uint64_t n,
                          uint32_t n_threads)
{
    gen_job jobs[64];
    if (n_threads > 64)
        n_threads = 64;
    if (n_threads == 0)
        n_threads = 1;
    uint64_t per = (n + n_threads - 1) / n_threads;
    for (uint32_t t = 0; t < n_threads; t++) {
        uint64_t lo = t * per < n ? t * per : n, hi = lo + per < n ? lo + per : n;
        jobs[t] = (gen_job){.out = out + lo * dim, .dim = dim, .seed = seed,
                            .first_row = first + lo, .n_rows = hi - lo};
        if (pthread_create(&jobs[t].thread, NULL, gen_main, &jobs[t]) != 0)
            die("cannot start a generator thread");
    }
    for (uint32_t t = 0; t < n_threads; t++)
        pthread_join(jobs[t].thread, NULL);
}

/* ===== Index specs ===== */

typedef struct spec {
    char name[32];     /* "i8", "b1+rerank10" */
    vs_storage storage;
    bool rerank;
    uint32_t rerank_factor;
} spec;

/* Parses "storage[:rrN]". */
static spec parse_spec(const char *s)
{
    spec sp = {0};
    char storage[16];
    const char *colon = strchr(s, ':');
    size_t len = colon ? (size_t)(colon - s) : strlen(s);
    if (len == 0 || len >= sizeof storage)
        die("bad index spec '%s' (want storage[:rrN], e.g. i8 or b1:rr10)", s);
    memcpy(storage, s, len);
    storage[len] = '\0';
    if (!vs_storage_parse(storage, &sp.storage))
        die("unknown storage '%s' in index spec '%s'", storage, s);
    if (colon) {
        char *end;
        if (strncmp(colon + 1, "rr", 2) != 0)
            die("bad index spec '%s' (want storage[:rrN])", s);
        unsigned long f = strtoul(colon + 3, &end, 10);
        if (end == colon + 3 || *end || f < 1 || f > 1000)
            die("bad rerank factor in index spec '%s'", s);
        sp.rerank = true;
        sp.rerank_factor = (uint32_t)f;
    } else if (sp.storage == VS_STORAGE_B1) {
        sp.rerank = true;
        sp.rerank_factor = 10;
    }
    if (sp.rerank)
        snprintf(sp.name, sizeof sp.name, "%s+rerank%u", storage, sp.rerank_factor);
    else
        snprintf(sp.name, sizeof sp.name, "%s", storage);
    return sp;
}

/* Creates a one-field inner-product index of storage sp over dim. */
static vs_index *make_index(const spec *sp, uint32_t dim, uint32_t n_threads)
{
    vs_field_spec f;
    memset(&f, 0, sizeof f);
    snprintf(f.name, sizeof f.name, "v");
    f.dim = dim;
    f.metric = VS_METRIC_IP;
    f.storage = sp->storage;
    f.rerank = sp->rerank;
    vs_index_options opt;
    memset(&opt, 0, sizeof opt);
    opt.device = VS_DEVICE_CPU;
    opt.n_threads = n_threads;
    vs_index *ix = NULL;
    vs_status st;
    if (vs_index_create(&f, 1, &opt, &ix, &st) != VS_OK)
        die("vs_index_create(%s): %s", sp->name, st.msg);
    return ix;
}

/* Upserts rows [0, n) of x with ids first_id + row. */
static void upsert_rows(vs_index *ix, const float *x, uint32_t dim, uint64_t n, uint64_t first_id)
{
    static vs_item_vectors items[UPSERT_BATCH];
    vs_status st;
    for (uint64_t lo = 0; lo < n; lo += UPSERT_BATCH) {
        size_t m = n - lo < UPSERT_BATCH ? (size_t)(n - lo) : UPSERT_BATCH;
        for (size_t i = 0; i < m; i++) {
            memset(&items[i], 0, sizeof items[i]);
            items[i].id = first_id + lo + i;
            items[i].vectors[0] = x + (lo + i) * dim;
        }
        if (vs_index_upsert(ix, items, m, NULL, &st) != VS_OK)
            die("vs_index_upsert: %s", st.msg);
    }
}

/* ===== Searching and timing ===== */

typedef struct query_set {
    uint32_t n, dim;
    vs_term *terms;
    vs_query *queries;
} query_set;

/* One single-vector term per query, all on field 0. */
static query_set make_queries(const float *q, uint32_t n, uint32_t dim)
{
    query_set s = {.n = n, .dim = dim};
    s.terms = xmalloc(n * sizeof(vs_term));
    s.queries = xmalloc(n * sizeof(vs_query));
    for (uint32_t i = 0; i < n; i++) {
        s.terms[i] = (vs_term){.field = 0, .n_vectors = 1, .vectors = q + (size_t)i * dim,
                               .weight = 1.0f};
        s.queries[i] = (vs_query){.terms = &s.terms[i], .n_terms = 1,
                                  .combine = VS_COMBINE_SUM, .allowed = NULL};
    }
    return s;
}

typedef struct searcher {
    vs_index *ix;
    const spec *sp;
    const query_set *qs;
    vs_hit *hits;     /* qs->n x max k */
    uint32_t *counts; /* qs->n */
} searcher;

/* Runs queries [first, first + n) with k; returns the seconds it took. */
static double run_search(const searcher *s, uint32_t first, uint32_t n, uint32_t k)
{
    vs_search_params p = {.k = k, .rerank_factor = s->sp->rerank ? s->sp->rerank_factor : 1};
    vs_status st;
    double t0 = now_s();
    if (vs_index_search(s->ix, s->qs->queries + first, n, &p, s->hits, s->counts, &st) != VS_OK)
        die("vs_index_search(%s, k=%u, batch=%u): %s", s->sp->name, k, n, st.msg);
    return now_s() - t0;
}

typedef struct timing {
    uint64_t queries;
    double seconds, qps, p50_ms, mean_ms, p99_ms;
    double bw_gbs; /* read bandwidth measured around this timing, or 0 */
} timing;

/* Times batch-1 searches of n_single queries (cycling through the set) after a short warm-up. */
static timing time_single(const searcher *s, uint32_t k, uint32_t n_single)
{
    for (uint32_t i = 0; i < 3; i++)
        run_search(s, i % s->qs->n, 1, k);
    double *ms = xmalloc(n_single * sizeof(double));
    timing t = {.queries = n_single};
    for (uint32_t i = 0; i < n_single; i++) {
        double sec = run_search(s, i % s->qs->n, 1, k);
        ms[i] = 1e3 * sec;
        t.seconds += sec;
    }
    qsort(ms, n_single, sizeof(double), cmp_double);
    t.p50_ms = ms[n_single / 2];
    t.p99_ms = ms[(size_t)ceil((n_single - 1) * 0.99)];
    t.mean_ms = 1e3 * t.seconds / n_single;
    t.qps = (double)n_single / t.seconds;
    free(ms);
    return t;
}

/* Batch-1 timing between two bandwidth measurements (when bw is not NULL): the better of them is
 * the bandwidth of the moment, for this timing's read floor. */
static timing time_single_bw(const searcher *s, uint32_t k, uint32_t n_single, bw_ctx *bw)
{
    double before = bw ? bw_measure(bw, 5, NULL) : 0;
    timing t = time_single(s, k, n_single);
    double after = bw ? bw_measure(bw, 5, NULL) : 0;
    t.bw_gbs = before > after ? before : after;
    return t;
}

/* Times whole batches of b queries, cycling through the set, until min_time has passed and at
 * least min_reps batches ran; warm_up runs one untimed batch first. */
static timing time_batches(const searcher *s, uint32_t k, uint32_t b, double min_time,
                           uint32_t min_reps, bool warm_up)
{
    uint32_t n_batches = s->qs->n / b;
    if (n_batches == 0)
        die("batch %u is larger than the %u queries", b, s->qs->n);
    if (warm_up)
        run_search(s, 0, b, k);
    double *ms = xmalloc(sizeof(double) * 100000);
    timing t = {0};
    uint32_t reps = 0;
    while ((reps < min_reps || t.seconds < min_time) && reps < 100000) {
        double sec = run_search(s, (reps % n_batches) * b, b, k);
        ms[reps++] = 1e3 * sec;
        t.seconds += sec;
    }
    qsort(ms, reps, sizeof(double), cmp_double);
    t.queries = (uint64_t)reps * b;
    t.p50_ms = ms[reps / 2];
    t.p99_ms = ms[(size_t)ceil((reps - 1) * 0.99)];
    t.mean_ms = 1e3 * t.seconds / reps;
    t.qps = (double)t.queries / t.seconds;
    free(ms);
    return t;
}

static void emit_search(FILE *out, const spec *sp, uint32_t k, uint32_t b, const timing *t,
                        bool big)
{
    fprintf(out,
            "{\"engine\":\"vecscan\",\"index\":\"%s\",\"kind\":\"search\",\"k\":%u,\"batch\":%u,"
            "\"queries\":%llu,\"seconds\":%.6f,\"qps\":%.3f,\"p50_ms\":%.4f,\"mean_ms\":%.4f,"
            "\"p99_ms\":%.4f,\"bw_gbs\":%.3f,\"big\":%s}\n",
            sp->name, k, b, (unsigned long long)t->queries, t->seconds, t->qps, t->p50_ms,
            t->mean_ms, t->p99_ms, t->bw_gbs, big ? "true" : "false");
    fflush(out);
    fprintf(stderr, "  %-14s k=%-4u batch=%-5u %10.1f QPS  (p50 %.3f ms/batch, %llu queries)\n",
            sp->name, k, b, t->qps, t->p50_ms, (unsigned long long)t->queries);
}

/* Writes the k = RECALL_K ids of one search of every query, for the report's recall. */
static void write_recall_ids(const searcher *s, const char *ids_dir)
{
    run_search(s, 0, s->qs->n, RECALL_K);
    char path[4096];
    snprintf(path, sizeof path, "%s/vecscan_%s.ids", ids_dir, s->sp->name);
    FILE *f = fopen(path, "wb");
    if (!f)
        die("cannot write '%s'", path);
    for (uint32_t q = 0; q < s->qs->n; q++) {
        int64_t ids[RECALL_K];
        for (uint32_t j = 0; j < RECALL_K; j++)
            ids[j] = j < s->counts[q] ? (int64_t)s->hits[(size_t)q * RECALL_K + j].id : -1;
        if (fwrite(ids, sizeof ids, 1, f) != 1)
            die("cannot write '%s'", path);
    }
    fclose(f);
}

/* ===== Big mode ===== */

typedef struct topk {
    float s[RECALL_K];
    uint64_t id[RECALL_K];
} topk;

/* Inserts (score, id) into a best-first list of RECALL_K. */
static void topk_push(topk *t, float score, uint64_t id)
{
    if (!(score > t->s[RECALL_K - 1]))
        return;
    int j = RECALL_K - 1;
    while (j > 0 && score > t->s[j - 1]) {
        t->s[j] = t->s[j - 1];
        t->id[j] = t->id[j - 1];
        j--;
    }
    t->s[j] = score;
    t->id[j] = id;
}

static void run_big(FILE *out, const spec *sp, uint64_t rows, const float *q, uint32_t nq,
                     uint32_t dim, uint32_t n_threads, uint32_t n_truth, uint32_t n_single,
                     double min_time, uint64_t seed, uint32_t bw_mib)
{
    if (n_truth > nq)
        n_truth = nq;
    fprintf(stderr, "index_bench: big: %llu x %u %s, generated here (seed %llu)\n",
            (unsigned long long)rows, dim, sp->name, (unsigned long long)seed);
    uint64_t rss_before = proc_status_bytes("VmRSS");
    vs_index *ix = make_index(sp, dim, n_threads);
    float *chunk = xmalloc((size_t)BIG_CHUNK_ROWS * dim * sizeof(float));
    float *scores = xmalloc((size_t)n_truth * BIG_CHUNK_ROWS * sizeof(float));
    topk *truth = xmalloc(n_truth * sizeof(topk));
    for (uint32_t i = 0; i < n_truth; i++)
        for (int j = 0; j < RECALL_K; j++) {
            truth[i].s[j] = -INFINITY;
            truth[i].id[j] = UINT64_MAX;
        }
    double gen_s = 0, truth_s = 0, load_s = 0;
    for (uint64_t lo = 0; lo < rows; lo += BIG_CHUNK_ROWS) {
        uint64_t m = rows - lo < BIG_CHUNK_ROWS ? rows - lo : BIG_CHUNK_ROWS;
        double t0 = now_s();
        gaussian_rows(chunk, dim, seed, lo, m, n_threads);
        double t1 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_truth, (int)m, (int)dim, 1.0f,
                    q, (int)dim, chunk, (int)dim, 0.0f, scores, (int)m);
        for (uint32_t i = 0; i < n_truth; i++)
            for (uint64_t r = 0; r < m; r++)
                topk_push(&truth[i], scores[(size_t)i * m + r], lo + r);
        double t2 = now_s();
        upsert_rows(ix, chunk, dim, m, lo);
        double t3 = now_s();
        gen_s += t1 - t0;
        truth_s += t2 - t1;
        load_s += t3 - t2;
        if ((lo / BIG_CHUNK_ROWS) % 16 == 15)
            fprintf(stderr, "  loaded %llu rows\n", (unsigned long long)(lo + m));
    }
    free(scores);
    free(chunk);
    uint64_t rss_after = proc_status_bytes("VmRSS"), hwm = proc_status_bytes("VmHWM");
    size_t field_bytes = vs_index_field_bytes(ix, 0);
    fprintf(stderr,
            "  generated in %.1f s, exact top-10 in %.1f s, upserted in %.1f s (%.0f rows/s); "
            "RSS %.1f -> %.1f MiB, field %.1f MiB\n",
            gen_s, truth_s, load_s, (double)rows / load_s, rss_before / 1048576.0,
            rss_after / 1048576.0, field_bytes / 1048576.0);

    query_set qs = make_queries(q, nq, dim);
    searcher s = {.ix = ix, .sp = sp, .qs = &qs,
                  .hits = xmalloc((size_t)nq * RECALL_K * sizeof(vs_hit)),
                  .counts = xmalloc(nq * sizeof(uint32_t))};
    run_search(&s, 0, n_truth, RECALL_K);
    uint64_t found = 0;
    for (uint32_t i = 0; i < n_truth; i++)
        for (uint32_t j = 0; j < s.counts[i]; j++)
            for (int t = 0; t < RECALL_K; t++)
                if (s.hits[(size_t)i * RECALL_K + j].id == truth[i].id[t]) {
                    found++;
                    break;
                }
    double recall = (double)found / ((double)n_truth * RECALL_K);
    fprintf(stderr, "  recall@10 %.4f on %u queries against exact f32\n", recall, n_truth);
    fprintf(out,
            "{\"engine\":\"vecscan\",\"index\":\"%s\",\"kind\":\"big\",\"rows\":%llu,\"dim\":%u,"
            "\"load_seconds\":%.3f,\"gen_seconds\":%.3f,\"rss_before\":%llu,\"rss_after\":%llu,"
            "\"hwm\":%llu,\"field_bytes\":%zu,\"recall10\":%.5f,\"truth_queries\":%u}\n",
            sp->name, (unsigned long long)rows, dim, load_s, gen_s,
            (unsigned long long)rss_before, (unsigned long long)rss_after,
            (unsigned long long)hwm, field_bytes, recall, n_truth);
    bw_ctx *bw = bw_mib ? bw_open((int)n_threads, bw_mib) : NULL;
    timing t = time_single_bw(&s, RECALL_K, n_single, bw);
    bw_close(bw);
    emit_search(out, sp, RECALL_K, 1, &t, true);
    if (nq >= 16) {
        t = time_batches(&s, RECALL_K, 16, min_time, 2, false);
        emit_search(out, sp, RECALL_K, 16, &t, true);
    }
    if (nq >= 1000) {
        t = time_batches(&s, RECALL_K, 1000, 0.0, 1, false);
        emit_search(out, sp, RECALL_K, 1000, &t, true);
    }
    free(s.hits);
    free(s.counts);
    free(qs.terms);
    free(qs.queries);
    free(truth);
    vs_index_destroy(ix);
}

/* ===== main ===== */

static int usage(void)
{
    fprintf(stderr,
            "usage: index_bench --data BASE.fbin --queries Q.fbin --out RESULTS.jsonl "
            "--ids-dir DIR [options]\n"
            "  --indexes LIST     index specs, storage[:rrN] (default f32,f16,i8,b1:rr10)\n"
            "  --threads T        vs_index_options.n_threads (default 2)\n"
            "  --ks LIST          k values (default 10,100)\n"
            "  --batches LIST     batch sizes (default 1,16,1000)\n"
            "  --single N         batch-1 queries timed one by one (default 200)\n"
            "  --min-time S       seconds each batch > 1 measurement runs at least (default 1)\n"
            "  --min-reps R       and batches it times at least (default 2)\n"
            "  --bw-mib M         measure the read bandwidth (M MiB buffer, best of 5 passes)\n"
            "                     right before and after each k = 10 batch-1 timing (default 0: no)\n"
            "  --big-rows N       also load N generated rows into --big-index (default 0: no)\n"
            "  --big-index SPEC   (default i8)\n"
            "  --big-truth Q      queries checked against exact f32 in big mode (default 100)\n"
            "  --big-single N     batch-1 queries timed in big mode (default 50)\n"
            "  --seed S           seed of the big mode's generator (default 7)\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *data = NULL, *queries = NULL, *out_path = NULL, *ids_dir = NULL;
    const char *indexes = "f32,f16,i8,b1:rr10", *big_index = "i8";
    uint32_t threads = 2, n_single = 200, big_truth = 100, big_single = 50;
    uint32_t ks[MAX_LIST] = {10, 100}, batches[MAX_LIST] = {1, 16, 1000};
    int n_ks = 2, n_batches = 3;
    double min_time = 1.0;
    uint32_t min_reps = 2, bw_mib = 0;
    uint64_t big_rows = 0, seed = 7;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "--data") == 0)
            data = v;
        else if (strcmp(a, "--queries") == 0)
            queries = v;
        else if (strcmp(a, "--out") == 0)
            out_path = v;
        else if (strcmp(a, "--ids-dir") == 0)
            ids_dir = v;
        else if (strcmp(a, "--indexes") == 0)
            indexes = v;
        else if (strcmp(a, "--threads") == 0)
            threads = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--ks") == 0)
            n_ks = parse_list(v, ks);
        else if (strcmp(a, "--batches") == 0)
            n_batches = parse_list(v, batches);
        else if (strcmp(a, "--single") == 0)
            n_single = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--min-time") == 0)
            min_time = strtod(v, NULL);
        else if (strcmp(a, "--min-reps") == 0)
            min_reps = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--bw-mib") == 0)
            bw_mib = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--big-rows") == 0)
            big_rows = strtoull(v, NULL, 10);
        else if (strcmp(a, "--big-index") == 0)
            big_index = v;
        else if (strcmp(a, "--big-truth") == 0)
            big_truth = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--big-single") == 0)
            big_single = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--seed") == 0)
            seed = strtoull(v, NULL, 10);
        else
            return usage();
    }
    if (!data || !queries || !out_path || !ids_dir || threads == 0 || n_single == 0 ||
        big_single == 0 || big_truth == 0 || min_reps == 0 || !(min_time >= 0))
        return usage();

    spec specs[MAX_SPECS];
    int n_specs = 0;
    {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", indexes);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            if (n_specs == MAX_SPECS)
                die("more than %d index specs", MAX_SPECS);
            specs[n_specs++] = parse_spec(tok);
        }
    }
    uint32_t max_k = RECALL_K;
    for (int i = 0; i < n_ks; i++)
        max_k = ks[i] > max_k ? ks[i] : max_k;

    uint32_t rows, dim, nq, qdim;
    float *x = read_fbin(data, &rows, &dim);
    float *q = read_fbin(queries, &nq, &qdim);
    if (qdim != dim)
        die("queries have dim %u, the base %u", qdim, dim);
    FILE *out = fopen(out_path, "a");
    if (!out)
        die("cannot write '%s'", out_path);
    fprintf(stderr, "index_bench: %u x %u base, %u queries, %u threads; OpenBLAS %s (%s)\n", rows,
            dim, nq, threads, openblas_get_corename(), openblas_get_config());
    fprintf(out, "{\"engine\":\"vecscan\",\"kind\":\"meta\",\"openblas_core\":\"%s\"}\n",
            openblas_get_corename());

    bw_ctx *bw = NULL;
    if (bw_mib && n_specs > 0 && !(bw = bw_open((int)threads, bw_mib)))
        die("cannot allocate the %u MiB bandwidth buffer; try a smaller --bw-mib", bw_mib);
    query_set qs = make_queries(q, nq, dim);
    searcher s = {.qs = &qs, .hits = xmalloc((size_t)nq * max_k * sizeof(vs_hit)),
                  .counts = xmalloc(nq * sizeof(uint32_t))};
    for (int i = 0; i < n_specs; i++) {
        s.sp = &specs[i];
        s.ix = make_index(&specs[i], dim, threads);
        double t0 = now_s();
        upsert_rows(s.ix, x, dim, rows, 0);
        double build_s = now_s() - t0;
        size_t fb = vs_index_field_bytes(s.ix, 0);
        fprintf(stderr, "index_bench: %s: built in %.2f s, %.1f bytes/row (%s backend)\n",
                specs[i].name, build_s, (double)fb / rows, vs_index_backend_name(s.ix));
        fprintf(out,
                "{\"engine\":\"vecscan\",\"index\":\"%s\",\"kind\":\"build\",\"rows\":%u,"
                "\"seconds\":%.4f,\"field_bytes\":%zu}\n",
                specs[i].name, rows, build_s, fb);
        write_recall_ids(&s, ids_dir);
        for (int a = 0; a < n_ks; a++)
            for (int b = 0; b < n_batches; b++) {
                /* The recall search above was this very batch: it warmed it up. */
                bool warm = !(ks[a] == RECALL_K && batches[b] == nq);
                timing t = batches[b] == 1
                               ? time_single_bw(&s, ks[a], n_single, ks[a] == RECALL_K ? bw : NULL)
                               : time_batches(&s, ks[a], batches[b], min_time, min_reps, warm);
                emit_search(out, &specs[i], ks[a], batches[b], &t, false);
            }
        vs_index_destroy(s.ix);
    }
    free(s.hits);
    free(s.counts);
    free(qs.terms);
    free(qs.queries);
    free(x);
    bw_close(bw); /* before the big load, so that its resident memory is the index's alone */
    if (big_rows) {
        spec bsp = parse_spec(big_index);
        run_big(out, &bsp, big_rows, q, nq, dim, threads, big_truth, big_single, min_time, seed,
                bw_mib);
    }
    free(q);
    fclose(out);
    return 0;
}
