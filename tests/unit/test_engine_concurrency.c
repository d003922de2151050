/*
 * test_engine_concurrency.c: writer threads and searcher threads on one engine at once.
 *
 * Four producers stream upserts and deletes (asynchronously, many in flight) into two collections
 * while three searchers run filtered and unfiltered searches, some with min_seq = the newest ack
 * they know of (read-your-writes across threads), and one thread drops and re-creates a third
 * collection. Checks: every accepted write is acknowledged exactly once, every search answers, a
 * search with min_seq sees applied_seq >= min_seq, and at the end every collection holds what the
 * acks say. Meant to be run under ThreadSanitizer too (build with -fsanitize=thread).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "vs_engine.h"

#define DIM 12
#define PER_PRODUCER 3000
#define PRODUCERS 4
#define SEARCHERS 3

static vs_engine *g_e;
static atomic_uint_fast64_t g_acked_muts, g_newest_ack, g_searches, g_stop;

typedef struct pctx {
    atomic_int inflight;
    atomic_uint_fast64_t acks;
} pctx;

/* Ack callback of the producers. */
static void on_ack(void *ctx, const vs_write_ack *ack)
{
    pctx *p = ctx;
    CHECK(ack->code == VS_OK);
    atomic_fetch_add(&g_acked_muts, ack->n);
    uint64_t cur = atomic_load(&g_newest_ack);
    while (ack->last_seq > cur && !atomic_compare_exchange_weak(&g_newest_ack, &cur, ack->last_seq))
        ;
    atomic_fetch_add(&p->acks, 1);
    atomic_fetch_sub(&p->inflight, 1);
}

/* A producer: writes groups of 4 upserts (ids of its own range) and some deletes. */
static void *producer(void *arg)
{
    int me = (int)(intptr_t)arg;
    pctx p;
    atomic_init(&p.inflight, 0);
    atomic_init(&p.acks, 0);
    vs_rng r;
    vs_rng_seed(&r, 77 + (uint64_t)me);
    const char *coll = me % 2 ? "a" : "b";
    uint64_t sent = 0;
    for (uint64_t i = 0; i < PER_PRODUCER; i += 4) {
        float v[4][DIM];
        vs_vector_in vi[4];
        vs_attr_in ai[4];
        vs_mutation m[4];
        for (int j = 0; j < 4; j++) {
            for (int d = 0; d < DIM; d++)
                v[j][d] = (float)vs_rng_gauss(&r);
            vi[j] = (vs_vector_in){.field = "v", .values = v[j], .dim = DIM};
            ai[j] = (vs_attr_in){.field = "k", .type = VS_ATTR_INT, .int_value = (int64_t)(i % 10)};
            uint64_t id = (uint64_t)me * 1000000 + i + (uint64_t)j;
            m[j] = (vs_mutation){.op = VS_MUT_UPSERT, .id = id, .vectors = &vi[j], .n_vectors = 1,
                                 .attrs = &ai[j], .n_attrs = 1};
            if (i % 40 == 36 && j == 0)
                m[j] = (vs_mutation){.op = VS_MUT_DELETE, .id = id - 36};
        }
        while (atomic_load(&p.inflight) >= 32)
            usleep(20);
        vs_status st;
        atomic_fetch_add(&p.inflight, 1);
        while (vs_engine_write(g_e, coll, m, 4, on_ack, &p, &st) != VS_OK) {
            CHECKF(st.code == VS_ERR_RESOURCE_EXHAUSTED, "%s", st.msg);
            usleep(100);
        }
        sent++;
    }
    while (atomic_load(&p.inflight) > 0)
        usleep(100);
    CHECK(atomic_load(&p.acks) == sent);
    return NULL;
}

/* A searcher: filtered and plain searches, half with min_seq. */
static void *searcher(void *arg)
{
    vs_rng r;
    vs_rng_seed(&r, 999 + (uint64_t)(intptr_t)arg);
    while (!atomic_load(&g_stop)) {
        float q[DIM];
        for (int d = 0; d < DIM; d++)
            q[d] = (float)vs_rng_gauss(&r);
        vs_search_term_in t = {.field = "v", .vectors = q, .n_vectors = 1, .dim = DIM};
        uint64_t min_seq = vs_rng_below(&r, 2) ? atomic_load(&g_newest_ack) : 0;
        vs_search_request sr = {.collection = vs_rng_below(&r, 2) ? "a" : "b", .terms = &t,
                                .n_terms = 1, .k = 10, .min_seq = min_seq,
                                .filter = vs_rng_below(&r, 2) ? "k IN (1, 2, 3)" : NULL,
                                .with_attributes = true};
        vs_search_result *res = NULL;
        vs_status st;
        vs_err rc = vs_engine_search_wait(g_e, &sr, &res, &st);
        CHECKF(rc == VS_OK || rc == VS_ERR_RESOURCE_EXHAUSTED, "%s", st.msg);
        if (res) {
            CHECK(res->applied_seq >= min_seq);
            for (uint32_t h = 0; h < res->n_hits && sr.filter; h++)
                CHECK(res->hits[h].n_attrs == 1 && res->hits[h].attrs[0].int_value >= 1 &&
                      res->hits[h].attrs[0].int_value <= 3);
        }
        vs_search_result_free(res);
        atomic_fetch_add(&g_searches, 1);
    }
    return NULL;
}

/* Drops and re-creates collection "c" over and over, with a write and a search each time. */
static void *churner(void *arg)
{
    (void)arg;
    vs_field_spec fs = {.name = "v", .dim = DIM, .metric = VS_METRIC_L2, .storage = VS_STORAGE_I8};
    float v[DIM] = {1};
    while (!atomic_load(&g_stop)) {
        vs_status st;
        CHECK(vs_engine_create_collection(g_e, "c", &fs, 1, NULL, NULL, &st) == VS_OK);
        vs_vector_in vi = {.field = "v", .values = v, .dim = DIM};
        vs_mutation m = {.op = VS_MUT_UPSERT, .id = 1, .vectors = &vi, .n_vectors = 1};
        uint64_t seq = 0;
        vs_err rc;
        while ((rc = vs_engine_write_wait(g_e, "c", &m, 1, &seq, NULL, &st)) ==
               VS_ERR_RESOURCE_EXHAUSTED)
            usleep(100);
        CHECKF(rc == VS_OK, "%s", st.msg);
        vs_search_term_in t = {.field = "v", .vectors = v, .n_vectors = 1, .dim = DIM};
        vs_search_request sr = {.collection = "c", .terms = &t, .n_terms = 1, .k = 3,
                                .min_seq = seq};
        vs_search_result *res = NULL;
        CHECK(vs_engine_search_wait(g_e, &sr, &res, &st) == VS_OK);
        CHECK(res && res->n_hits == 1);
        vs_search_result_free(res);
        CHECK(vs_engine_drop_collection(g_e, "c", NULL, &st) == VS_OK);
        usleep(2000);
    }
    return NULL;
}

/* Runs the threads and checks the end state. */
int main(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/vs-conc-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    vs_engine_options o;
    vs_engine_options_init(&o, dir);
    o.index.n_threads = 1;
    o.max_wait_us = 200;
    o.max_batch = 16;
    o.snapshot_every = 5000;
    o.write_queue_cap = 256;
    vs_status st;
    if (vs_engine_open(&o, &g_e, &st) != VS_OK) {
        fprintf(stderr, "open: %s\n", st.msg);
        return 1;
    }
    vs_field_spec fs = {.name = "v", .dim = DIM, .metric = VS_METRIC_COSINE,
                        .storage = VS_STORAGE_F16};
    vs_attr_schema *as = vs_attr_schema_create();
    vs_attr_schema_add(as, "k", VS_ATTR_INT, &st);
    CHECK(vs_engine_create_collection(g_e, "a", &fs, 1, as, NULL, &st) == VS_OK);
    CHECK(vs_engine_create_collection(g_e, "b", &fs, 1, as, NULL, &st) == VS_OK);
    vs_attr_schema_destroy(as);
    pthread_t pt[PRODUCERS], stt[SEARCHERS], ct;
    for (int i = 0; i < PRODUCERS; i++)
        pthread_create(&pt[i], NULL, producer, (void *)(intptr_t)i);
    for (int i = 0; i < SEARCHERS; i++)
        pthread_create(&stt[i], NULL, searcher, (void *)(intptr_t)i);
    pthread_create(&ct, NULL, churner, NULL);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < SEARCHERS; i++)
        pthread_join(stt[i], NULL);
    pthread_join(ct, NULL);
    /* each producer: one group in 10 carries a delete in place of an upsert, of an id it wrote */
    uint64_t want = PRODUCERS / 2 * (PER_PRODUCER - 2 * (PER_PRODUCER / 40));
    vs_collection_info info;
    uint64_t seq = vs_engine_last_acked_seq(g_e);
    float q[DIM] = {1};
    vs_search_term_in t = {.field = "v", .vectors = q, .n_vectors = 1, .dim = DIM};
    vs_search_request sr = {.collection = "a", .terms = &t, .n_terms = 1, .k = 1, .min_seq = seq};
    vs_search_result *res = NULL;
    CHECK(vs_engine_search_wait(g_e, &sr, &res, &st) == VS_OK);
    vs_search_result_free(res);
    CHECK(vs_engine_describe(g_e, "a", &info, &st) == VS_OK);
    CHECKF(info.count == want, "a: %llu items, want %llu", (unsigned long long)info.count,
           (unsigned long long)want);
    vs_collection_info_clear(&info);
    CHECK(vs_engine_describe(g_e, "b", &info, &st) == VS_OK && info.count == want);
    vs_collection_info_clear(&info);
    vs_engine_stats es;
    vs_engine_stats_get(g_e, &es);
    printf("test_engine_concurrency: %llu mutations in %llu commits, %llu searches in %llu "
           "batches\n", (unsigned long long)es.committed_mutations,
           (unsigned long long)es.commits, (unsigned long long)es.batched_searches,
           (unsigned long long)es.batches);
    vs_engine_close(g_e);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return vs_test_finish("test_engine_concurrency");
}
