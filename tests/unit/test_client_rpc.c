/*
 * test_client_rpc.c: libvecscan-client against a real vecscand on loopback (the binary named by
 * $VECSCAND, started with --port 0 so the kernel picks a free port, read back from its log).
 *
 * Transport: the health service; the daemon's test service (started with --enable-test-service)
 * for echo, status codes and percent-encoded messages, deadlines (a reply that comes too late is
 * DEADLINE_EXCEEDED at the deadline, not at the reply), many calls in flight on one connection,
 * a stream that outruns a slow server (the client's send queue stays bounded: back-pressure), a
 * bearer token, a daemon that is down and one that dies mid-call. API: every VecScan method once
 * on a small synthetic collection, and StreamUpdates with in-order acks, a failing mutation in
 * the middle and read-your-writes through min_seq.
 */
#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rpc_test.pb-c.h"
#include "testutil.h"
#include "vecscan_client.h"

/* ===== A daemon on loopback ===== */

typedef struct daemon_proc {
    pid_t pid;
    int port;
    char dir[256];
    FILE *log;
    pthread_t drain;
    bool draining;
} daemon_proc;

/* Reads the daemon's log after start so that a full pipe never blocks it. */
static void *drain_log(void *arg)
{
    daemon_proc *d = arg;
    char line[1024];
    while (fgets(line, sizeof line, d->log))
        if (getenv("VS_TEST_VERBOSE")) fprintf(stderr, "  daemon| %s", line);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Starts vecscand with extra flags; 0 or -1. Waits until it says ready. */
static int daemon_start(daemon_proc *d, const char *bin, const char *const *extra)
{
    const char *tmp = getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp";
    snprintf(d->dir, sizeof d->dir, "%s/vs-client-test-XXXXXX", tmp);
    if (!mkdtemp(d->dir)) return -1;
    int pfd[2];
    if (pipe(pfd) != 0) return -1;
    d->pid = fork();
    if (d->pid == 0) {
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        char data[300];
        snprintf(data, sizeof data, "%s/data", d->dir);
        const char *argv[32] = {bin, "--data-dir", data, "--port", "0", "--admin-port", "0", "--sync", "interval:50"};
        int n = 9;
        for (int i = 0; extra && extra[i] && n < 30; i++) argv[n++] = extra[i];
        argv[n] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    d->log = fdopen(pfd[0], "r");
    char line[1024];
    d->port = 0;
    while (fgets(line, sizeof line, d->log)) {
        if (getenv("VS_TEST_VERBOSE")) fprintf(stderr, "  daemon| %s", line);
        const char *p = strstr(line, "grpc port ");
        if (p) d->port = atoi(p + 10);
        if (strstr(line, "main: ready") || strstr(line, "ERROR")) break;
    }
    d->draining = pthread_create(&d->drain, NULL, drain_log, d) == 0;
    return d->port > 0 ? 0 : -1;
}

/* SIGTERM (or SIGKILL) and reap; returns the exit status (or -signal). */
static int daemon_stop(daemon_proc *d, int sig)
{
    if (d->pid <= 0) return 0;
    kill(d->pid, sig);
    int status = 0;
    waitpid(d->pid, &status, 0);
    d->pid = 0;
    if (d->draining) pthread_join(d->drain, NULL);
    d->draining = false;
    if (d->log) fclose(d->log);
    d->log = NULL;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", d->dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", d->dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

static void addr_of(const daemon_proc *d, char *buf, size_t cap)
{
    snprintf(buf, cap, "127.0.0.1:%d", d->port);
}

/* ===== Transport ===== */

#define ECHO "/vecscan.rpctest.RpcTest/Echo"

static void test_health(vsc_conn *c)
{
    Grpc__Health__V1__HealthCheckResponse *h;
    vsc_status st;
    CHECKF(vsc_health_check(c, "", &h, &st) == VSC_OK, "%s", st.message);
    CHECK(h && h->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    vsc_free(h);
    CHECK(vsc_health_check(c, "no.such.Service", &h, &st) == VSC_NOT_FOUND);
    CHECK(h == NULL);
}

static void test_echo(vsc_conn *c)
{
    Vecscan__Rpctest__EchoRequest req = VECSCAN__RPCTEST__ECHO_REQUEST__INIT;
    uint8_t payload[3000];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 7);
    req.payload.data = payload;
    req.payload.len = sizeof payload;
    ProtobufCMessage *m;
    vsc_status st;
    CHECKF(vsc_unary(c, ECHO, &req.base, &vecscan__rpctest__echo_response__descriptor, &m, &st) == VSC_OK, "%s",
           st.message);
    Vecscan__Rpctest__EchoResponse *r = (Vecscan__Rpctest__EchoResponse *)m;
    CHECK(r && r->payload.len == sizeof payload && memcmp(r->payload.data, payload, sizeof payload) == 0);
    vsc_free(m);

    /* a status with a message that needs percent-encoding */
    req.code = VSC_FAILED_PRECONDITION;
    req.message = "100% not ready: caf\xc3\xa9";
    CHECK(vsc_unary(c, ECHO, &req.base, &vecscan__rpctest__echo_response__descriptor, &m, &st) == VSC_FAILED_PRECONDITION);
    CHECK(m == NULL);
    CHECKF(strcmp(st.message, "100% not ready: caf\xc3\xa9") == 0, "message '%s'", st.message);
}

static void test_deadline(vsc_conn *c)
{
    Vecscan__Rpctest__EchoRequest req = VECSCAN__RPCTEST__ECHO_REQUEST__INIT;
    req.delay_ms = 800;
    vsc_set_timeout(c, 0.15);
    ProtobufCMessage *m;
    vsc_status st;
    double t0 = now();
    int rc = vsc_unary(c, ECHO, &req.base, &vecscan__rpctest__echo_response__descriptor, &m, &st);
    double el = now() - t0;
    CHECKF(rc == VSC_DEADLINE_EXCEEDED, "rc %d %s", rc, st.message);
    CHECKF(el < 0.6, "the deadline took %.3f s", el);
    vsc_set_timeout(c, 0);
    /* the connection still works after the reset */
    req.delay_ms = 0;
    CHECK(vsc_unary(c, ECHO, &req.base, &vecscan__rpctest__echo_response__descriptor, &m, &st) == VSC_OK);
    vsc_free(m);
}

typedef struct async_count {
    int ok, other;
    uint64_t seen_mask[4];
} async_count;

static void on_echo(void *user, const vsc_status *st, ProtobufCMessage *resp, const uint8_t *raw, size_t len)
{
    async_count *a = user;
    if (st->code == VSC_OK && resp) {
        Vecscan__Rpctest__EchoResponse *r = (Vecscan__Rpctest__EchoResponse *)resp;
        if (r->payload.len == 1 && r->payload.data[0] < 200) {
            a->seen_mask[r->payload.data[0] / 64] |= 1ull << (r->payload.data[0] % 64);
            a->ok++;
        }
    } else {
        a->other++;
    }
    vsc_free(resp);
}

static void test_async(vsc_conn *c)
{
    async_count a = {0};
    vsc_status st;
    for (int i = 0; i < 200; i++) {
        uint8_t b = (uint8_t)i;
        Vecscan__Rpctest__EchoRequest req = VECSCAN__RPCTEST__ECHO_REQUEST__INIT;
        req.payload.data = &b;
        req.payload.len = 1;
        req.delay_ms = i % 3 == 0 ? 5 : 0; /* some from the worker thread, out of order */
        CHECK(vsc_unary_start(c, ECHO, &req.base, &vecscan__rpctest__echo_response__descriptor, -1, on_echo, &a, &st) ==
              VSC_OK);
    }
    CHECK(vsc_conn_in_flight(c) == 200);
    double end = now() + 10;
    while (a.ok + a.other < 200 && now() < end) CHECK(vsc_conn_run(c, 100, &st) == VSC_OK);
    CHECKF(a.ok == 200, "%d ok, %d other", a.ok, a.other);
    int bits = 0;
    for (int i = 0; i < 4; i++) bits += __builtin_popcountll(a.seen_mask[i]);
    CHECK(bits == 200);
    CHECK(vsc_conn_in_flight(c) == 0);
}

static void test_stream_backpressure(const char *addr)
{
    /* a small send queue: a slow server must hold the client back */
    vsc_options o = {.stream_send_buffer = 64 << 10};
    vsc_conn *c;
    vsc_status st;
    CHECK(vsc_connect_opts(addr, &o, &c, &st) == VSC_OK);
    vsc_stream *s;
    CHECK(vsc_stream_open(c, "/vecscan.rpctest.RpcTest/EchoStream", &vecscan__rpctest__echo_response__descriptor, 0, &s,
                          &st) == VSC_OK);
    static uint8_t payload[8192];
    Vecscan__Rpctest__EchoRequest req = VECSCAN__RPCTEST__ECHO_REQUEST__INIT;
    req.payload.data = payload;
    req.payload.len = sizeof payload;
    size_t max_unsent = 0;
    uint64_t got = 0, last_n = 0;
    bool order_ok = true;
    const int N = 3000; /* 24 MB through a 1 MiB server window */
    for (int i = 0; i < N; i++) {
        if (i == 10) req.delay_ms = 0;
        CHECK(vsc_stream_send(s, &req.base, &st) == VSC_OK);
        size_t u = vsc_stream_unsent(s);
        if (u > max_unsent) max_unsent = u;
        ProtobufCMessage *m;
        while (vsc_stream_recv(s, &m, 0, &st) == VSC_OK && m) {
            Vecscan__Rpctest__EchoResponse *r = (Vecscan__Rpctest__EchoResponse *)m;
            if (r->n != last_n + 1) order_ok = false;
            last_n = r->n;
            got++;
            vsc_free(m);
        }
    }
    CHECKF(max_unsent <= (64u << 10) + sizeof payload + 16, "unsent reached %zu", max_unsent);
    CHECK(vsc_stream_close_send(s, &st) == VSC_OK);
    ProtobufCMessage *m;
    double end = now() + 30;
    while (!vsc_stream_done(s) && now() < end) {
        CHECK(vsc_stream_recv(s, &m, 1000, &st) == VSC_OK);
        if (m) {
            Vecscan__Rpctest__EchoResponse *r = (Vecscan__Rpctest__EchoResponse *)m;
            if (r->n != last_n + 1) order_ok = false;
            last_n = r->n;
            got++;
            vsc_free(m);
        }
    }
    CHECKF(got == (uint64_t)N, "got %llu of %d", (unsigned long long)got, N);
    CHECK(order_ok);
    CHECKF(vsc_stream_finish(s, &st) == VSC_OK, "%s", st.message);
    vsc_close(c);
}

static void test_down(void)
{
    vsc_conn *c;
    vsc_status st;
    /* a port nobody listens on: bind one, close it */
    CHECK(vsc_connect("127.0.0.1:1", NULL, &c, &st) == VSC_UNAVAILABLE);
    CHECK(strstr(st.message, "127.0.0.1:1") != NULL);
    CHECK(vsc_connect("127.0.0.1:notaport", NULL, &c, &st) == VSC_INVALID_ARGUMENT);
    CHECK(vsc_connect("127.0.0.1:70000", NULL, &c, &st) == VSC_INVALID_ARGUMENT);
}

static void test_auth(const char *bin)
{
    char tf[300];
    snprintf(tf, sizeof tf, "%s/vs-client-token-XXXXXX",
             getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp");
    int fd = mkstemp(tf);
    CHECK(fd >= 0);
    CHECK(write(fd, "s3cret-token\n", 13) == 13);
    close(fd);
    const char *extra[] = {"--auth-token-file", tf, NULL};
    daemon_proc d = {0};
    if (daemon_start(&d, bin, extra) != 0) {
        CHECK(!"the daemon with a token did not start");
        unlink(tf);
        return;
    }
    char addr[64];
    addr_of(&d, addr, sizeof addr);
    vsc_conn *c;
    vsc_status st;
    Vecscan__V1__ListCollectionsRequest req = VECSCAN__V1__LIST_COLLECTIONS_REQUEST__INIT;
    Vecscan__V1__ListCollectionsResponse *r;
    CHECK(vsc_connect(addr, NULL, &c, &st) == VSC_OK);
    CHECK(vsc_list_collections(c, &req, &r, &st) == VSC_UNAUTHENTICATED);
    vsc_close(c);
    CHECK(vsc_connect(addr, "wrong", &c, &st) == VSC_OK);
    CHECK(vsc_list_collections(c, &req, &r, &st) == VSC_UNAUTHENTICATED);
    vsc_close(c);
    CHECK(vsc_connect(addr, "s3cret-token", &c, &st) == VSC_OK);
    CHECKF(vsc_list_collections(c, &req, &r, &st) == VSC_OK, "%s", st.message);
    vsc_free(r);
    vsc_close(c);
    CHECK(daemon_stop(&d, SIGTERM) == 0);
    unlink(tf);
}

static void test_daemon_dies(const char *bin)
{
    const char *extra[] = {"--enable-test-service", NULL};
    daemon_proc d = {0};
    if (daemon_start(&d, bin, extra) != 0) {
        CHECK(!"daemon did not start");
        return;
    }
    char addr[64];
    addr_of(&d, addr, sizeof addr);
    vsc_conn *c;
    vsc_status st;
    CHECK(vsc_connect(addr, NULL, &c, &st) == VSC_OK);
    async_count a = {0};
    Vecscan__Rpctest__EchoRequest req = VECSCAN__RPCTEST__ECHO_REQUEST__INIT;
    req.delay_ms = 5000;
    for (int i = 0; i < 5; i++)
        CHECK(vsc_unary_start(c, ECHO, &req.base, &vecscan__rpctest__echo_response__descriptor, -1, on_echo, &a, &st) ==
              VSC_OK);
    CHECK(vsc_conn_run(c, 50, &st) == VSC_OK);
    kill(d.pid, SIGKILL);
    double end = now() + 10;
    int rc = VSC_OK;
    while (a.other < 5 && now() < end) rc = vsc_conn_run(c, 100, &st);
    CHECK(a.other == 5);
    CHECK(rc == VSC_UNAVAILABLE);
    CHECK(!vsc_conn_ok(c));
    Vecscan__V1__ListCollectionsRequest lr = VECSCAN__V1__LIST_COLLECTIONS_REQUEST__INIT;
    Vecscan__V1__ListCollectionsResponse *lresp;
    CHECK(vsc_list_collections(c, &lr, &lresp, &st) == VSC_UNAVAILABLE);
    vsc_close(c);
    daemon_stop(&d, SIGKILL);
}

/* ===== The VecScan API ===== */

#define DIM 8

static void fill_vec(float *v, uint64_t id)
{
    for (int i = 0; i < DIM; i++) v[i] = (float)sin((double)(id * 31 + (uint64_t)i) * 0.37);
}

static void test_api(vsc_conn *c)
{
    vsc_status st;
    /* create */
    Vecscan__V1__VectorField f = VECSCAN__V1__VECTOR_FIELD__INIT, *fp[] = {&f};
    f.name = "emb";
    f.dim = DIM;
    f.metric = VECSCAN__V1__METRIC__METRIC_L2;
    Vecscan__V1__AttributeField a1 = VECSCAN__V1__ATTRIBUTE_FIELD__INIT, *ap[] = {&a1};
    a1.name = "color";
    Vecscan__V1__Schema schema = VECSCAN__V1__SCHEMA__INIT;
    schema.n_vectors = 1;
    schema.vectors = fp;
    schema.n_attributes = 1;
    schema.attributes = ap;
    Vecscan__V1__CreateCollectionRequest cr = VECSCAN__V1__CREATE_COLLECTION_REQUEST__INIT;
    cr.name = "t";
    cr.schema = &schema;
    Vecscan__V1__CreateCollectionResponse *crr;
    CHECKF(vsc_create_collection(c, &cr, &crr, &st) == VSC_OK, "%s", st.message);
    vsc_free(crr);
    CHECK(vsc_create_collection(c, &cr, &crr, &st) == VSC_ALREADY_EXISTS);

    /* StreamUpdates: 2000 upserts, one bad in the middle */
    vsc_stream *s;
    CHECK(vsc_updates_open(c, &s, &st) == VSC_OK);
    float v[DIM], bad[DIM + 1] = {0};
    Vecscan__V1__Vector vec = VECSCAN__V1__VECTOR__INIT, *vp[] = {&vec};
    vec.field = "emb";
    vec.values = v;
    vec.n_values = DIM;
    char *red[] = {"red"}, *blue[] = {"blue"};
    Vecscan__V1__Tags tags = VECSCAN__V1__TAGS__INIT;
    tags.n_values = 1;
    Vecscan__V1__Attribute at = VECSCAN__V1__ATTRIBUTE__INIT, *atp[] = {&at};
    at.name = "color";
    at.value_case = VECSCAN__V1__ATTRIBUTE__VALUE_TAGS;
    at.tags = &tags;
    Vecscan__V1__Item item = VECSCAN__V1__ITEM__INIT;
    item.n_vectors = 1;
    item.vectors = vp;
    item.n_attributes = 1;
    item.attributes = atp;
    Vecscan__V1__Mutation mu = VECSCAN__V1__MUTATION__INIT;
    mu.collection = "t";
    mu.item = &item;
    const uint64_t N = 2000;
    for (uint64_t id = 0; id < N; id++) {
        fill_vec(v, id);
        item.id = id;
        tags.values = id % 2 ? red : blue;
        mu.tag = id;
        if (id == 777) {
            vec.values = bad;
            vec.n_values = DIM + 1;
        }
        CHECK(vsc_stream_send(s, &mu.base, &st) == VSC_OK);
        vec.values = v;
        vec.n_values = DIM;
    }
    CHECK(vsc_stream_close_send(s, &st) == VSC_OK);
    uint64_t acks = 0, last_seq = 0, failed = 0;
    bool in_order = true, seq_up = true;
    ProtobufCMessage *m;
    double end = now() + 30;
    while (!vsc_stream_done(s) && now() < end) {
        CHECK(vsc_stream_recv(s, &m, 1000, &st) == VSC_OK);
        if (!m) continue;
        Vecscan__V1__MutationAck *ack = (Vecscan__V1__MutationAck *)m;
        if (ack->tag != acks) in_order = false;
        if (ack->code != 0) {
            failed++;
            CHECK(ack->tag == 777 && ack->code == VSC_INVALID_ARGUMENT && ack->seq == 0);
        } else {
            if (ack->seq <= last_seq) seq_up = false;
            last_seq = ack->seq;
        }
        acks++;
        vsc_free(m);
    }
    CHECKF(acks == N, "%llu acks", (unsigned long long)acks);
    CHECK(failed == 1);
    CHECK(in_order && seq_up);
    CHECK(vsc_stream_finish(s, &st) == VSC_OK);

    /* read-your-writes: a search with min_seq sees every acked row */
    fill_vec(v, 1234);
    Vecscan__V1__Term term = VECSCAN__V1__TERM__INIT, *tp[] = {&term};
    term.field = "emb";
    term.n_vectors = 1;
    term.vectors = vp;
    Vecscan__V1__Query q = VECSCAN__V1__QUERY__INIT;
    q.n_terms = 1;
    q.terms = tp;
    q.k = 5;
    q.with_attributes = true;
    Vecscan__V1__SearchRequest sr = VECSCAN__V1__SEARCH_REQUEST__INIT;
    sr.collection = "t";
    sr.query = &q;
    sr.min_seq = last_seq;
    Vecscan__V1__SearchResponse *res;
    CHECKF(vsc_search(c, &sr, &res, &st) == VSC_OK, "%s", st.message);
    if (res) {
        CHECK(res->applied_seq >= last_seq);
        CHECK(res->result && res->result->n_hits == 5 && res->result->hits[0]->id == 1234);
        CHECK(res->result->hits[0]->score > -1e-4f);
        CHECK(res->result->hits[0]->n_attributes == 1);
    }
    vsc_free(res);
    /* filtered */
    q.filter = "color = 'blue'";
    CHECK(vsc_search(c, &sr, &res, &st) == VSC_OK);
    if (res && res->result) {
        bool all_even = res->result->n_hits == 5;
        for (size_t i = 0; i < res->result->n_hits; i++) all_even &= res->result->hits[i]->id % 2 == 0;
        CHECK(all_even);
    }
    vsc_free(res);
    q.filter = "color = ";
    CHECK(vsc_search(c, &sr, &res, &st) == VSC_INVALID_ARGUMENT);
    q.filter = "";
    /* min_seq past the last ack */
    sr.min_seq = last_seq + 1000;
    CHECK(vsc_search(c, &sr, &res, &st) == VSC_OUT_OF_RANGE);
    sr.min_seq = 0;
    /* SearchBatch */
    Vecscan__V1__Query *qs[] = {&q, &q, &q};
    Vecscan__V1__SearchBatchRequest br = VECSCAN__V1__SEARCH_BATCH_REQUEST__INIT;
    br.collection = "t";
    br.n_queries = 3;
    br.queries = qs;
    Vecscan__V1__SearchBatchResponse *bres;
    CHECK(vsc_search_batch(c, &br, &bres, &st) == VSC_OK);
    CHECK(bres && bres->n_results == 3);
    vsc_free(bres);
    /* wrong dim, unknown collection */
    vec.n_values = DIM - 1;
    CHECK(vsc_search(c, &sr, &res, &st) == VSC_INVALID_ARGUMENT);
    vec.n_values = DIM;
    sr.collection = "nope";
    CHECK(vsc_search(c, &sr, &res, &st) == VSC_NOT_FOUND);
    CHECK(strstr(st.message, "nope") != NULL);
    sr.collection = "t";
    CHECK(vsc_search_vector(c, "t", "emb", v, DIM, 3, NULL, &res, &st) == VSC_OK);
    CHECK(res && res->result && res->result->n_hits == 3);
    vsc_free(res);

    /* Upsert (unary), Get, Delete */
    Vecscan__V1__Item *items[] = {&item};
    item.id = 5000;
    fill_vec(v, 5000);
    Vecscan__V1__UpsertRequest ur = VECSCAN__V1__UPSERT_REQUEST__INIT;
    ur.collection = "t";
    ur.n_items = 1;
    ur.items = items;
    Vecscan__V1__UpsertResponse *uresp;
    CHECK(vsc_upsert(c, &ur, &uresp, &st) == VSC_OK);
    uint64_t useq = uresp ? uresp->seq : 0;
    CHECK(useq > last_seq);
    vsc_free(uresp);
    uint64_t ids[] = {5000, 777, 3};
    Vecscan__V1__GetRequest gr = VECSCAN__V1__GET_REQUEST__INIT;
    gr.collection = "t";
    gr.ids = ids;
    gr.n_ids = 3;
    gr.with_vectors = true;
    gr.min_seq = useq;
    Vecscan__V1__GetResponse *gresp;
    CHECK(vsc_get(c, &gr, &gresp, &st) == VSC_OK);
    if (gresp) {
        CHECK(gresp->n_items == 2 && gresp->n_missing == 1 && gresp->missing[0] == 777);
        CHECK(gresp->n_items > 0 && gresp->items[0]->id == 5000 && gresp->items[0]->n_vectors == 1 &&
              gresp->items[0]->vectors[0]->n_values == DIM && gresp->items[0]->vectors[0]->values[3] == v[3]);
    }
    vsc_free(gresp);
    Vecscan__V1__DeleteRequest dr = VECSCAN__V1__DELETE_REQUEST__INIT;
    dr.collection = "t";
    dr.ids = ids;
    dr.n_ids = 2;
    Vecscan__V1__DeleteResponse *dresp;
    CHECK(vsc_delete(c, &dr, &dresp, &st) == VSC_OK);
    CHECK(dresp && dresp->n_missing == 1 && dresp->missing[0] == 777);
    vsc_free(dresp);

    /* Describe, Stats, List, Snapshot, Drop */
    Vecscan__V1__DescribeCollectionRequest dcr = VECSCAN__V1__DESCRIBE_COLLECTION_REQUEST__INIT;
    dcr.name = "t";
    Vecscan__V1__DescribeCollectionResponse *dc;
    CHECK(vsc_describe_collection(c, &dcr, &dc, &st) == VSC_OK);
    CHECK(dc && dc->info && dc->info->schema && dc->info->schema->n_vectors == 1 &&
          dc->info->schema->vectors[0]->dim == DIM && dc->info->schema->vectors[0]->metric == VECSCAN__V1__METRIC__METRIC_L2);
    vsc_free(dc);
    Vecscan__V1__StatsRequest str = VECSCAN__V1__STATS_REQUEST__INIT;
    Vecscan__V1__StatsResponse *sresp;
    CHECK(vsc_stats(c, &str, &sresp, &st) == VSC_OK);
    CHECK(sresp && sresp->n_collections == 1 && sresp->last_acked_seq >= useq);
    vsc_free(sresp);
    Vecscan__V1__SnapshotRequest snr = VECSCAN__V1__SNAPSHOT_REQUEST__INIT;
    snr.wait = true;
    Vecscan__V1__SnapshotResponse *snresp;
    CHECKF(vsc_snapshot(c, &snr, &snresp, &st) == VSC_OK, "%s", st.message);
    vsc_free(snresp);
    Vecscan__V1__ListCollectionsRequest lr = VECSCAN__V1__LIST_COLLECTIONS_REQUEST__INIT;
    Vecscan__V1__ListCollectionsResponse *lresp;
    CHECK(vsc_list_collections(c, &lr, &lresp, &st) == VSC_OK);
    CHECK(lresp && lresp->n_names == 1 && strcmp(lresp->names[0], "t") == 0);
    vsc_free(lresp);
    Vecscan__V1__DropCollectionRequest drr = VECSCAN__V1__DROP_COLLECTION_REQUEST__INIT;
    drr.name = "t";
    Vecscan__V1__DropCollectionResponse *drresp;
    CHECK(vsc_drop_collection(c, &drr, &drresp, &st) == VSC_OK);
    vsc_free(drresp);
    CHECK(vsc_describe_collection(c, &dcr, &dc, &st) == VSC_NOT_FOUND);
}

int main(void)
{
    const char *bin = getenv("VECSCAND");
    if (!bin || access(bin, X_OK) != 0) return vs_test_skip("test_client_rpc", "VECSCAND does not name the vecscand binary");
    signal(SIGPIPE, SIG_IGN);
    test_down();
    const char *extra[] = {"--enable-test-service", NULL};
    daemon_proc d = {0};
    if (daemon_start(&d, bin, extra) != 0) {
        fprintf(stderr, "vecscand did not start\n");
        return 1;
    }
    char addr[64];
    addr_of(&d, addr, sizeof addr);
    vsc_conn *c;
    vsc_status st;
    CHECK(vsc_connect(addr, NULL, &c, &st) == VSC_OK);
    test_health(c);
    test_echo(c);
    test_deadline(c);
    test_async(c);
    test_stream_backpressure(addr);
    test_api(c);
    vsc_close(c);
    CHECK(daemon_stop(&d, SIGTERM) == 0);
    test_auth(bin);
    test_daemon_dies(bin);
    return vs_test_finish("test_client_rpc");
}
