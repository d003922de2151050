/*
 * test_engine_crash.c: the crash test, with real processes and SIGKILL.
 *
 * Each round the parent starts a child (this binary again, through exec, so the child's RocksDB
 * has its own threads). The child opens the engine, reports the last acknowledged seq, then streams
 * a deterministic sequence of random upserts, patches and deletes (up to 64 in flight) while
 * another thread writes snapshots back to back, and reports every ack (mutation number, seq)
 * through a pipe. The parent SIGKILLs it at a random moment, then reopens the data dir itself and
 * checks:
 *   - the recovered last seq covers every acknowledged mutation (K >= acks), and acks came with
 *     consecutive seqs;
 *   - the recovered state is exactly the state after the first K mutations of the sequence, item
 *     by item (vectors bit for bit, attributes): nothing acknowledged is lost, nothing that was
 *     not committed is there, nothing is half applied;
 *   - searches give the same ids and scores as an index built from scratch from that state.
 * Snapshots are written continuously, so many kills land while one is being written (the parent
 * counts the unfinished temporary files it finds).
 */
#include <fcntl.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "vs_engine.h"

#define DIM 8
#define N_IDS 1500
#define ROUNDS 24

typedef struct mut {
    vs_mutation_op op;
    uint64_t id;
    float vec[DIM];
    int64_t ival;
} mut;

/* Mutation i of round r: deterministic, so the parent can replay what the child sent. */
static void gen_mut(uint32_t round, uint64_t i, mut *m)
{
    vs_rng r;
    vs_rng_seed(&r, ((uint64_t)round << 40) ^ (i * 2654435761u) ^ 0x5eed);
    m->id = vs_rng_below(&r, N_IDS);
    double u = vs_rng_uniform(&r);
    m->op = u < 0.7 ? VS_MUT_UPSERT : u < 0.85 ? VS_MUT_PATCH : VS_MUT_DELETE;
    for (int d = 0; d < DIM; d++)
        m->vec[d] = (float)vs_rng_gauss(&r);
    m->ival = (int64_t)round * 1000000 + (int64_t)i;
}

/* ===== The child ===== */

typedef struct child {
    vs_engine *e;
    int fd;
    atomic_int inflight;
    atomic_int stop;
    pthread_mutex_t mu;
} child;

/* Reports one record to the parent (writes of 16 bytes to a pipe are atomic). */
static void report(int fd, uint64_t a, uint64_t b)
{
    uint64_t rec[2] = {a, b};
    if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec)
        _exit(3);
}

typedef struct ack_ctx {
    child *c;
    uint64_t i;
} ack_ctx;

/* Ack callback: reports (mutation number, seq). */
static void on_ack(void *ctx, const vs_write_ack *ack)
{
    ack_ctx *a = ctx;
    if (ack->code == VS_OK)
        report(a->c->fd, a->i, ack->last_seq);
    atomic_fetch_sub(&a->c->inflight, 1);
    free(a);
}

/* Writes snapshots back to back. */
static void *snapshotter(void *arg)
{
    child *c = arg;
    while (!atomic_load(&c->stop)) {
        vs_status st;
        vs_engine_snapshot(c->e, NULL, &st);
        usleep(1000);
    }
    return NULL;
}

/* The child's main: open, report the base seq, stream mutations until killed. */
static int child_main(const char *dir, uint32_t round, int fd)
{
    vs_engine_options o;
    vs_engine_options_init(&o, dir);
    o.index.n_threads = 1;
    o.snapshot_every = 400;
    child c = {.fd = fd};
    vs_status st;
    if (vs_engine_open(&o, &c.e, &st)) {
        fprintf(stderr, "child: open: %s\n", st.msg);
        return 2;
    }
    report(fd, UINT64_MAX, vs_engine_last_acked_seq(c.e));
    pthread_t th;
    pthread_create(&th, NULL, snapshotter, &c);
    for (uint64_t i = 0;; i++) {
        mut m;
        gen_mut(round, i, &m);
        vs_vector_in vi = {.field = "v", .values = m.vec, .dim = DIM};
        vs_attr_in ai = {.field = "n", .type = VS_ATTR_INT, .int_value = m.ival};
        vs_mutation mu = {.op = m.op, .id = m.id};
        if (m.op == VS_MUT_UPSERT) {
            mu.vectors = &vi;
            mu.n_vectors = 1;
        }
        if (m.op != VS_MUT_DELETE) {
            mu.attrs = &ai;
            mu.n_attrs = 1;
        }
        while (atomic_load(&c.inflight) >= 64)
            usleep(50);
        for (;;) {
            ack_ctx *a = malloc(sizeof *a);
            a->c = &c;
            a->i = i;
            atomic_fetch_add(&c.inflight, 1);
            if (vs_engine_write(c.e, "c", &mu, 1, on_ack, a, &st) == VS_OK)
                break;
            atomic_fetch_sub(&c.inflight, 1);
            free(a);
            if (st.code != VS_ERR_RESOURCE_EXHAUSTED) {
                fprintf(stderr, "child: write: %s\n", st.msg);
                return 2;
            }
            usleep(100);
        }
    }
}

/* ===== The parent ===== */

typedef struct model {
    bool present[N_IDS];
    bool has_vec[N_IDS];
    float vec[N_IDS][DIM];
    int64_t ival[N_IDS];
} model;

/* Applies mutation m to the model, as the engine defines upsert, patch and delete. */
static void model_apply(model *md, const mut *m)
{
    uint64_t id = m->id;
    if (m->op == VS_MUT_DELETE) {
        md->present[id] = false;
        md->has_vec[id] = false;
        return;
    }
    if (m->op == VS_MUT_UPSERT) {
        md->has_vec[id] = true;
        memcpy(md->vec[id], m->vec, sizeof m->vec);
    } else if (!md->present[id]) {
        md->has_vec[id] = false;
    }
    md->present[id] = true;
    md->ival[id] = m->ival;
}

/* Opens the engine in the parent. */
static vs_engine *parent_open(const char *dir)
{
    vs_engine_options o;
    vs_engine_options_init(&o, dir);
    o.index.n_threads = 1;
    o.snapshot_every = UINT64_MAX;
    vs_engine *e = NULL;
    vs_status st;
    vs_err rc = vs_engine_open(&o, &e, &st);
    CHECKF(rc == VS_OK, "reopen: %s", st.msg);
    return e;
}

/* Counts unfinished snapshot files (a kill during a snapshot write). */
static int count_tmp(const char *dir)
{
    char sd[4200];
    snprintf(sd, sizeof sd, "%s/snapshots", dir);
    DIR *d = opendir(sd);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strncmp(de->d_name, ".tmp-", 5) == 0;
    if (d)
        closedir(d);
    return n;
}

/* Checks the engine's state against the model, item by item and by search. */
static void verify(vs_engine *e, const model *md, uint32_t round)
{
    vs_status st;
    uint64_t live = 0;
    uint64_t ids[N_IDS];
    for (uint64_t i = 0; i < N_IDS; i++) {
        ids[i] = i;
        live += md->present[i];
    }
    vs_collection_info info;
    CHECK(vs_engine_describe(e, "c", &info, &st) == VS_OK);
    CHECKF(info.count == live, "round %u: %llu items, the model has %llu", round,
           (unsigned long long)info.count, (unsigned long long)live);
    vs_collection_info_clear(&info);
    vs_get_result *g = NULL;
    CHECK(vs_engine_get(e, "c", ids, N_IDS, true, &g, &st) == VS_OK);
    if (!g)
        return;
    CHECKF(g->n_found == live, "round %u: get found %zu of %llu", round, g->n_found,
           (unsigned long long)live);
    int bad = 0;
    for (size_t k = 0; k < g->n_found && bad < 5; k++) {
        const vs_item_out *it = &g->items[k];
        uint64_t id = it->id;
        bool ok = md->present[id] && it->n_attrs == 1 && it->attrs[0].int_value == md->ival[id] &&
                  it->n_vectors == (md->has_vec[id] ? 1u : 0u) &&
                  (!md->has_vec[id] ||
                   memcmp(it->vectors[0].values, md->vec[id], sizeof md->vec[id]) == 0);
        if (!ok) {
            bad++;
            CHECKF(ok, "round %u: item %llu differs from the model", round,
                   (unsigned long long)id);
        }
    }
    vs_get_result_free(g);

    /* searches against an index built from scratch from the model */
    vs_field_spec fs = {.name = "v", .dim = DIM, .metric = VS_METRIC_IP,
                        .storage = VS_STORAGE_F32};
    vs_index_options io = {.n_threads = 1};
    vs_index *ix;
    CHECK(vs_index_create(&fs, 1, &io, &ix, &st) == VS_OK);
    for (uint64_t i = 0; i < N_IDS; i++)
        if (md->present[i]) {
            vs_item_vectors iv = {.id = i};
            iv.vectors[0] = md->has_vec[i] ? md->vec[i] : NULL;
            CHECK(vs_index_upsert(ix, &iv, 1, NULL, &st) == VS_OK);
        }
    vs_rng r;
    vs_rng_seed(&r, round);
    for (int q = 0; q < 5; q++) {
        float qv[DIM];
        for (int d = 0; d < DIM; d++)
            qv[d] = (float)vs_rng_gauss(&r);
        enum { K = 20 };
        vs_term t = {.field = 0, .n_vectors = 1, .vectors = qv, .weight = 1};
        vs_query qq = {.terms = &t, .n_terms = 1};
        vs_search_params sp = {.k = K};
        vs_hit hits[K];
        uint32_t cnt = 0;
        CHECK(vs_index_search(ix, &qq, 1, &sp, hits, &cnt, &st) == VS_OK);
        vs_search_term_in ti = {.field = "v", .vectors = qv, .n_vectors = 1, .dim = DIM};
        vs_search_request sr = {.collection = "c", .terms = &ti, .n_terms = 1, .k = K};
        vs_search_result *res = NULL;
        CHECK(vs_engine_search_wait(e, &sr, &res, &st) == VS_OK);
        CHECKF(res && res->n_hits == cnt, "round %u: %u hits, rebuilt index %u", round,
               res ? res->n_hits : 0, cnt);
        for (uint32_t h = 0; res && h < cnt && h < res->n_hits; h++)
            CHECKF(res->hits[h].id == hits[h].id &&
                       fabsf(res->hits[h].score - hits[h].score) <= 1e-5f,
                   "round %u query %d hit %u: %llu (%g) vs rebuilt %llu (%g)", round, q, h,
                   (unsigned long long)res->hits[h].id, res->hits[h].score,
                   (unsigned long long)hits[h].id, hits[h].score);
        vs_search_result_free(res);
    }
    vs_index_destroy(ix);
}

/* One round: run a child, kill it, check the recovered state. */
static void run_round(const char *dir, uint32_t round, model *md, int *tmp_rounds,
                      uint64_t *total_acks)
{
    int p[2];
    if (pipe(p) != 0) {
        perror("pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        char rs[16], fs[16];
        snprintf(rs, sizeof rs, "%u", round);
        snprintf(fs, sizeof fs, "%d", p[1]);
        execl("/proc/self/exe", "test_engine_crash", "--child", dir, rs, fs, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    uint64_t rec[2];
    uint64_t base = UINT64_MAX;
    if (read(p[0], rec, sizeof rec) == (ssize_t)sizeof rec && rec[0] == UINT64_MAX)
        base = rec[1];
    CHECKF(base != UINT64_MAX, "round %u: the child did not start", round);
    vs_rng r;
    vs_rng_seed(&r, 1000 + round);
    usleep((useconds_t)(20000 + vs_rng_below(&r, 280000)));
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    uint64_t acks = 0;
    bool in_order = true;
    while (read(p[0], rec, sizeof rec) == (ssize_t)sizeof rec) {
        in_order &= rec[0] == acks && rec[1] == base + 1 + acks;
        acks++;
    }
    close(p[0]);
    CHECKF(in_order, "round %u: acks out of order or seqs not consecutive", round);
    *tmp_rounds += count_tmp(dir) > 0;
    vs_engine *e = parent_open(dir);
    if (!e)
        return;
    uint64_t last = vs_engine_last_acked_seq(e);
    uint64_t k = last - base;
    CHECKF(last >= base && k >= acks, "round %u: recovered seq %llu, but %llu acks after %llu",
           round, (unsigned long long)last, (unsigned long long)acks, (unsigned long long)base);
    for (uint64_t i = 0; i < k; i++) {
        mut m;
        gen_mut(round, i, &m);
        model_apply(md, &m);
    }
    *total_acks += acks;
    verify(e, md, round);
    vs_engine_close(e);
}

/* Runs the rounds (or the child, when called with --child). */
int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], (uint32_t)atoi(argv[3]), atoi(argv[4]));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/vs-crash-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    static model md;
    vs_engine *e = parent_open(dir);
    if (!e)
        return vs_test_finish("test_engine_crash");
    vs_field_spec fs = {.name = "v", .dim = DIM, .metric = VS_METRIC_IP, .storage = VS_STORAGE_F32};
    vs_attr_schema *as = vs_attr_schema_create();
    vs_status st;
    vs_attr_schema_add(as, "n", VS_ATTR_INT, &st);
    CHECK(vs_engine_create_collection(e, "c", &fs, 1, as, NULL, &st) == VS_OK);
    vs_attr_schema_destroy(as);
    vs_engine_close(e);
    int tmp_rounds = 0;
    uint64_t total_acks = 0;
    for (uint32_t round = 0; round < ROUNDS && vs_test_failures == 0; round++)
        run_round(dir, round, &md, &tmp_rounds, &total_acks);
    printf("test_engine_crash: %d rounds, %llu acknowledged mutations, %d kills during a "
           "snapshot write\n", ROUNDS, (unsigned long long)total_acks, tmp_rounds);
    CHECK(tmp_rounds >= 1);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return vs_test_finish("test_engine_crash");
}
