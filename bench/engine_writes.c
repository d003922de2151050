/*
 * engine_writes.c: the engine's write path, in process (bench/engine-writes.sh runs it).
 *
 *   upserts_per_s_sync      64 producer threads, each keeping up to 64 single-item upserts in
 *                           flight, `sync always`, into a fresh data dir
 *   upserts_per_s_interval  the same with `sync interval:100`
 *   visible_p99_ms          p99 time from a write's ack to the first search (without min_seq)
 *                           that returns it, while writes stream in
 *   search_p99_under_writes p99 of batch-16 searches on --rows rows while --write-rate upserts/s
 *                           stream in, over their p99 with no writes
 *   restart_s               reopen and be ready from a snapshot (and, printed too, from items alone)
 * 128-dim vectors, i8 storage, l2. Prints a table and, last, the RESULT line.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vs_engine.h"

#define DIM 128
#define POOL 4096

static float g_pool[POOL][DIM];

/* Monotonic seconds. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64* */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* A gaussian-ish value from the generator. */
static float rnd_f(uint64_t *s)
{
    double u = 0;
    for (int i = 0; i < 4; i++)
        u += (double)(rnd(s) >> 11) / 9007199254740992.0;
    return (float)(u - 2.0);
}

/* Sorts doubles for percentiles. */
static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (upper rank) of n sorted values. */
static double pct(double *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_d);
    size_t i = (size_t)ceil(p * (double)n) - 1;
    return v[i < n ? i : n - 1];
}

/* Quiet logs. */
static void quiet(void *ctx, vs_log_level l, const char *line)
{
    (void)ctx;
    if (l <= VS_LOG_WARN)
        fprintf(stderr, "engine: %s\n", line);
}

/* Opens an engine on dir with sync mode and creates collection "c" when asked. */
static vs_engine *open_engine(const char *dir, vs_sync_mode sync, bool create)
{
    vs_engine_options o;
    vs_engine_options_init(&o, dir);
    o.sync = sync;
    o.sync_interval_ms = 100;
    o.write_queue_cap = 1 << 17;
    o.max_batch = 64;
    o.max_wait_us = 100;
    o.snapshot_every = UINT64_MAX;
    o.log = quiet;
    vs_engine *e;
    vs_status st;
    if (vs_engine_open(&o, &e, &st)) {
        fprintf(stderr, "engine_writes: open %s: %s\n", dir, st.msg);
        exit(1);
    }
    if (create) {
        vs_field_spec f = {.name = "v", .dim = DIM, .metric = VS_METRIC_L2,
                           .storage = VS_STORAGE_I8};
        if (vs_engine_create_collection(e, "c", &f, 1, NULL, NULL, &st)) {
            fprintf(stderr, "engine_writes: create: %s\n", st.msg);
            exit(1);
        }
    }
    return e;
}

/* ===== Producers ===== */

typedef struct producer {
    vs_engine *e;
    uint64_t id0, n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight;
    uint64_t errors;
} producer;

/* Ack: one fewer in flight. */
static void on_ack(void *ctx, const vs_write_ack *ack)
{
    producer *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->inflight--;
    if (ack->code)
        p->errors++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Upserts ids id0 .. id0+n-1 keeping up to 64 in flight. */
static void *produce(void *arg)
{
    producer *p = arg;
    for (uint64_t i = 0; i < p->n; i++) {
        uint64_t id = p->id0 + i;
        vs_vector_in vi = {.field = "v", .values = g_pool[id % POOL], .dim = DIM};
        vs_mutation m = {.op = VS_MUT_UPSERT, .id = id, .vectors = &vi, .n_vectors = 1};
        pthread_mutex_lock(&p->mu);
        while (p->inflight >= 64)
            pthread_cond_wait(&p->cv, &p->mu);
        p->inflight++;
        pthread_mutex_unlock(&p->mu);
        vs_status st;
        while (vs_engine_write(p->e, "c", &m, 1, on_ack, p, &st) != VS_OK) {
            if (st.code != VS_ERR_RESOURCE_EXHAUSTED) {
                fprintf(stderr, "engine_writes: %s\n", st.msg);
                exit(1);
            }
            usleep(100);
        }
    }
    pthread_mutex_lock(&p->mu);
    while (p->inflight > 0)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* n upserts from 64 producers; returns upserts/s. */
static double run_producers(vs_engine *e, uint64_t id0, uint64_t n)
{
    enum { P = 64 };
    producer ps[P];
    pthread_t th[P];
    double t0 = now_s();
    for (int i = 0; i < P; i++) {
        ps[i] = (producer){.e = e, .id0 = id0 + (uint64_t)i * (n / P), .n = n / P};
        pthread_mutex_init(&ps[i].mu, NULL);
        pthread_cond_init(&ps[i].cv, NULL);
        pthread_create(&th[i], NULL, produce, &ps[i]);
    }
    uint64_t errors = 0;
    for (int i = 0; i < P; i++) {
        pthread_join(th[i], NULL);
        errors += ps[i].errors;
    }
    double dt = now_s() - t0;
    if (errors)
        fprintf(stderr, "engine_writes: %llu write errors\n", (unsigned long long)errors);
    return (double)(n / P * P) / dt;
}

/* ===== A paced writer for the search and visibility runs ===== */

typedef struct paced {
    vs_engine *e;
    double rate;
    uint64_t id0;
    atomic_int stop;
    atomic_int inflight;
} paced;

/* Ack of the paced writer. */
static void paced_ack(void *ctx, const vs_write_ack *ack)
{
    (void)ack;
    atomic_fetch_sub(&((paced *)ctx)->inflight, 1);
}

/* Upserts at rate/s (groups every millisecond) until stopped. */
static void *paced_main(void *arg)
{
    paced *p = arg;
    double t0 = now_s();
    uint64_t sent = 0;
    while (!atomic_load(&p->stop)) {
        double due = (now_s() - t0) * p->rate;
        while ((double)sent < due && !atomic_load(&p->stop)) {
            uint64_t id = p->id0 + sent;
            vs_vector_in vi = {.field = "v", .values = g_pool[id % POOL], .dim = DIM};
            vs_mutation m = {.op = VS_MUT_UPSERT, .id = id % 50000, .vectors = &vi,
                             .n_vectors = 1};
            vs_status st;
            atomic_fetch_add(&p->inflight, 1);
            if (vs_engine_write(p->e, "c", &m, 1, paced_ack, p, &st) != VS_OK)
                atomic_fetch_sub(&p->inflight, 1);
            sent++;
        }
        usleep(1000);
    }
    while (atomic_load(&p->inflight) > 0)
        usleep(1000);
    return NULL;
}

/* ===== Searches ===== */

typedef struct batch_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int left;
} batch_wait;

/* Search callback: one fewer outstanding. */
static void on_result(void *ctx, vs_search_result *r)
{
    batch_wait *b = ctx;
    vs_search_result_free(r);
    pthread_mutex_lock(&b->mu);
    b->left--;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Runs n batches of 16 searches; fills lat (seconds per batch). */
static void run_batches(vs_engine *e, int n, double *lat, uint64_t seed)
{
    batch_wait b;
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    float q[16][DIM];
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 16; j++)
            for (int d = 0; d < DIM; d++)
                q[j][d] = rnd_f(&seed);
        b.left = 16;
        double t0 = now_s();
        for (int j = 0; j < 16; j++) {
            vs_search_term_in t = {.field = "v", .vectors = q[j], .n_vectors = 1, .dim = DIM};
            vs_search_request r = {.collection = "c", .terms = &t, .n_terms = 1, .k = 10};
            vs_status st;
            if (vs_engine_search(e, &r, on_result, &b, &st)) {
                fprintf(stderr, "engine_writes: search: %s\n", st.msg);
                exit(1);
            }
        }
        pthread_mutex_lock(&b.mu);
        while (b.left > 0)
            pthread_cond_wait(&b.cv, &b.mu);
        pthread_mutex_unlock(&b.mu);
        lat[i] = now_s() - t0;
    }
}

typedef struct ack_time {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    double t;
} ack_time;

/* Records when a marker write was acknowledged. */
static void marker_ack(void *ctx, const vs_write_ack *ack)
{
    (void)ack;
    ack_time *a = ctx;
    pthread_mutex_lock(&a->mu);
    a->t = now_s();
    a->done = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* Time from a marker's ack to the first search (no min_seq) that returns it, n samples. */
static void run_visibility(vs_engine *e, int n, double *lat)
{
    uint64_t seed = 4242;
    for (int i = 0; i < n; i++) {
        float v[DIM];
        for (int d = 0; d < DIM; d++)
            v[d] = rnd_f(&seed) * 3;
        uint64_t id = 900000000ull + (uint64_t)i;
        vs_vector_in vi = {.field = "v", .values = v, .dim = DIM};
        vs_mutation m = {.op = VS_MUT_UPSERT, .id = id, .vectors = &vi, .n_vectors = 1};
        ack_time a = {.done = false};
        pthread_mutex_init(&a.mu, NULL);
        pthread_cond_init(&a.cv, NULL);
        vs_status st;
        if (vs_engine_write(e, "c", &m, 1, marker_ack, &a, &st)) {
            fprintf(stderr, "engine_writes: marker: %s\n", st.msg);
            exit(1);
        }
        pthread_mutex_lock(&a.mu);
        while (!a.done)
            pthread_cond_wait(&a.cv, &a.mu);
        pthread_mutex_unlock(&a.mu);
        for (;;) {
            vs_search_term_in t = {.field = "v", .vectors = v, .n_vectors = 1, .dim = DIM};
            vs_search_request r = {.collection = "c", .terms = &t, .n_terms = 1, .k = 1};
            vs_search_result *res = NULL;
            vs_engine_search_wait(e, &r, &res, &st);
            bool found = res && res->n_hits && res->hits[0].id == id;
            vs_search_result_free(res);
            if (found)
                break;
        }
        lat[i] = now_s() - a.t;
        usleep(2000);
    }
}

/* Loads rows upserts in interval mode (fast) and waits until they are applied. */
static void load_rows(vs_engine *e, uint64_t rows)
{
    run_producers(e, 0, rows);
    vs_engine_snapshot(e, NULL, NULL);
}

/* Runs everything and prints the RESULT line. */
int main(int argc, char **argv)
{
    const char *dir = NULL;
    uint64_t upserts = 400000, rows = 1000000;
    int batches = 200;
    double write_rate = 10000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--upserts") && i + 1 < argc)
            upserts = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--batches") && i + 1 < argc)
            batches = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--write-rate") && i + 1 < argc)
            write_rate = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: engine_writes --dir DIR [--upserts N] [--rows N] "
                            "[--batches N] [--write-rate R]\n");
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "engine_writes: --dir is required\n");
        return 2;
    }
    uint64_t seed = 12345;
    for (int i = 0; i < POOL; i++)
        for (int d = 0; d < DIM; d++)
            g_pool[i][d] = rnd_f(&seed);
    char d1[4096], d2[4096], d3[4096];
    snprintf(d1, sizeof d1, "%s/sync", dir);
    snprintf(d2, sizeof d2, "%s/interval", dir);
    snprintf(d3, sizeof d3, "%s/search", dir);

    vs_engine *e = open_engine(d1, VS_SYNC_ALWAYS, true);
    double ups_sync = run_producers(e, 0, upserts);
    vs_engine_stats es;
    vs_engine_stats_get(e, &es);
    double group = es.commits ? (double)es.committed_mutations / (double)es.commits : 0;
    double fsync_ms = es.fsyncs ? es.fsync_seconds_sum / (double)es.fsyncs * 1e3 : 0;
    vs_engine_close(e);
    fprintf(stderr, "sync always:     %.0f upserts/s (%.0f per group commit, %.2f ms per write+fsync)\n",
            ups_sync, group, fsync_ms);

    e = open_engine(d2, VS_SYNC_INTERVAL, true);
    double ups_int = run_producers(e, 0, upserts);
    vs_engine_close(e);
    fprintf(stderr, "sync interval:   %.0f upserts/s\n", ups_int);

    e = open_engine(d3, VS_SYNC_INTERVAL, true);
    double t0 = now_s();
    load_rows(e, rows);
    fprintf(stderr, "loaded %llu rows in %.1f s\n", (unsigned long long)rows, now_s() - t0);
    double *lat = malloc((size_t)batches * sizeof *lat);
    run_batches(e, 10, lat, 1); /* warm up */
    run_batches(e, batches, lat, 2);
    double p99_idle = pct(lat, (size_t)batches, 0.99);
    paced pw = {.e = e, .rate = write_rate, .id0 = 0};
    pthread_t pt;
    pthread_create(&pt, NULL, paced_main, &pw);
    run_batches(e, batches, lat, 3);
    double p99_busy = pct(lat, (size_t)batches, 0.99);
    int nvis = 200;
    double *vis = malloc((size_t)nvis * sizeof *vis);
    run_visibility(e, nvis, vis);
    double vis_p99 = pct(vis, (size_t)nvis, 0.99) * 1e3;
    atomic_store(&pw.stop, 1);
    pthread_join(pt, NULL);
    fprintf(stderr, "batch-16 search p99: %.2f ms idle, %.2f ms under %.0f upserts/s (x%.2f)\n",
            p99_idle * 1e3, p99_busy * 1e3, write_rate, p99_busy / p99_idle);
    fprintf(stderr, "visibility p99: %.2f ms (median %.2f ms)\n", vis_p99,
            pct(vis, (size_t)nvis, 0.5) * 1e3);
    vs_status st;
    vs_engine_snapshot(e, NULL, &st);
    vs_engine_close(e);

    t0 = now_s();
    e = open_engine(d3, VS_SYNC_INTERVAL, false);
    double restart = now_s() - t0;
    vs_engine_close(e);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -f '%s'/snapshots/snap-*.vss", d3);
    if (system(cmd) != 0)
        fprintf(stderr, "engine_writes: cannot remove snapshots\n");
    t0 = now_s();
    e = open_engine(d3, VS_SYNC_INTERVAL, false);
    double restart_items = now_s() - t0;
    vs_engine_close(e);
    fprintf(stderr, "restart with %llu rows: %.2f s from a snapshot, %.2f s from items alone\n",
            (unsigned long long)rows, restart, restart_items);

    printf("| metric | value |\n|---|---|\n");
    printf("| upserts/s, sync always (64 producers x 64 in flight) | %.0f |\n", ups_sync);
    printf("| group commit size / write+fsync ms | %.0f / %.2f |\n", group, fsync_ms);
    printf("| upserts/s, sync interval:100 | %.0f |\n", ups_int);
    printf("| visible p99 ms (ack -> first search that returns it) | %.2f |\n", vis_p99);
    printf("| batch-16 search p99 ms on %llu rows, idle / under %.0f upserts/s | %.2f / %.2f |\n",
           (unsigned long long)rows, write_rate, p99_idle * 1e3, p99_busy * 1e3);
    printf("| restart s from snapshot / from items (%llu rows) | %.2f / %.2f |\n",
           (unsigned long long)rows, restart, restart_items);
    printf("RESULT upserts_per_s_sync=%.0f upserts_per_s_interval=%.0f visible_p99_ms=%.2f "
           "search_p99_under_writes=%.2f restart_s=%.2f\n",
           ups_sync, ups_int, vis_p99, p99_busy / p99_idle, restart);
    free(lat);
    free(vis);
    return 0;
}
