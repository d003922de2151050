/*
 * test_rpc.c: the gRPC transport (server/rpc) against a real HTTP/2 peer: an nghttp2 client in
 * this process, talking over loopback TCP to servers whose loop runs on its own thread. It sends
 * what stock clients never do: truncated frames, oversized length prefixes, compressed flags,
 * bytes that do not parse, resets in the middle of a message, garbage instead of HTTP/2, and a
 * stream that outruns its handler (flow control must hold it back). After each, the server must
 * answer the right status (or close the stream) and keep serving.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <nghttp2/nghttp2.h>

#include "grpc_wire.h"
#include "health.pb-c.h"
#include "rpc_test.pb-c.h"
#include "testutil.h"
#include "vs_metrics.h"
#include "vs_rpc.h"
#include "vs_rpc_services.h"

/* ===== Servers on a loop thread ===== */

typedef struct srv {
    vs_rpc_server *rpc;
    vs_rpc_test_service *test;
    int port;
} srv;

static struct event_base *g_base;
static atomic_bool g_ready = true;
static vs_metrics *g_metrics;

static void srv_start(srv *s, const vs_rpc_options *o)
{
    vs_status st;
    CHECK(vs_rpc_server_create(g_base, o, &s->rpc, &st) == VS_OK);
    CHECK(vs_rpc_add_health(s->rpc, &g_ready, &st) == VS_OK);
    CHECK(vs_rpc_add_test_service(s->rpc, &s->test, &st) == VS_OK);
    CHECK(vs_rpc_server_listen(s->rpc, "127.0.0.1", 0, &s->port, &st) == VS_OK);
}

static void *loop_main(void *arg)
{
    (void)arg;
    event_base_dispatch(g_base);
    return NULL;
}

static uint64_t now_ms(void) { return vs_rpc_now_ns() / 1000000; }

/* ===== A small HTTP/2 client ===== */

typedef struct body {
    const uint8_t *p;
    size_t len, off;
    bool eof;      /* END_STREAM after the bytes */
    size_t sent;   /* bytes taken by nghttp2 so far */
} body;

typedef struct resp {
    int32_t id;
    int http;
    int grpc;      /* -1: none yet */
    char msg[512];
    uint8_t data[1 << 16];
    size_t len;
    size_t total;  /* all data bytes, even past data[] */
    bool closed;
    uint32_t rst;
    body b;
} resp;

typedef struct client {
    int fd;
    nghttp2_session *h2;
    resp *r[8];
    int n;
    bool eof;
    bool read_paused;
} client;

static ssize_t c_send(nghttp2_session *h2, const uint8_t *d, size_t n, int fl, void *ud)
{
    client *c = ud;
    ssize_t w = send(c->fd, d, n, MSG_NOSIGNAL);
    if (w < 0) return errno == EAGAIN ? NGHTTP2_ERR_WOULDBLOCK : NGHTTP2_ERR_CALLBACK_FAILURE;
    return w;
}

static resp *find(client *c, int32_t id)
{
    for (int i = 0; i < c->n; i++)
        if (c->r[i]->id == id) return c->r[i];
    return NULL;
}

static int c_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                    const uint8_t *val, size_t vl, uint8_t fl, void *ud)
{
    resp *r = find(ud, f->hd.stream_id);
    if (!r) return 0;
    if (nl == 7 && !memcmp(name, ":status", 7)) r->http = atoi((const char *)val);
    if (nl == 11 && !memcmp(name, "grpc-status", 11)) r->grpc = atoi((const char *)val);
    if (nl == 12 && !memcmp(name, "grpc-message", 12))
        snprintf(r->msg, sizeof r->msg, "%.*s", (int)vl, (const char *)val);
    return 0;
}

static int c_data(nghttp2_session *h2, uint8_t fl, int32_t id, const uint8_t *d, size_t n, void *ud)
{
    resp *r = find(ud, id);
    if (!r) return 0;
    size_t take = n < sizeof r->data - r->len ? n : sizeof r->data - r->len;
    memcpy(r->data + r->len, d, take);
    r->len += take;
    r->total += n;
    return 0;
}

static int c_close(nghttp2_session *h2, int32_t id, uint32_t err, void *ud)
{
    resp *r = find(ud, id);
    if (r) {
        r->closed = true;
        r->rst = err;
    }
    return 0;
}

static ssize_t c_body(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
                      nghttp2_data_source *src, void *ud)
{
    body *b = src->ptr;
    size_t n = b->len - b->off < len ? b->len - b->off : len;
    memcpy(buf, b->p + b->off, n);
    b->off += n;
    b->sent += n;
    if (b->off == b->len) {
        if (b->eof) *fl |= NGHTTP2_DATA_FLAG_EOF;
        else if (n == 0) return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static client *c_connect(int port, uint32_t window)
{
    client *c = calloc(1, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(connect(c->fd, (struct sockaddr *)&a, sizeof a) == 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, c_send);
    nghttp2_session_callbacks_set_on_header_callback(cb, c_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_close);
    nghttp2_session_client_new(&c->h2, cb, c);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry set[1] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window ? window : 1u << 20}};
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, set, 1);
    return c;
}

static void c_free(client *c)
{
    nghttp2_session_del(c->h2);
    close(c->fd);
    for (int i = 0; i < c->n; i++) free(c->r[i]);
    free(c);
}

/* Runs the session until done(r) or ms pass. */
static bool c_pump(client *c, resp *r, bool (*done)(resp *r, client *c), int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    while (now_ms() < end) {
        if (nghttp2_session_send(c->h2) != 0) return false;
        if (done && done(r, c)) return true;
        if (c->eof) return false;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (nghttp2_session_want_write(c->h2)) p.events |= POLLOUT;
        if (c->read_paused) p.events &= (short)~POLLIN;
        poll(&p, 1, 5);
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            uint8_t buf[65536];
            ssize_t n = recv(c->fd, buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                c->eof = true;
                return done ? done(r, c) : false;
            }
            if (n > 0 && nghttp2_session_mem_recv(c->h2, buf, (size_t)n) < 0) return false;
        }
    }
    return done ? done(r, c) : false;
}

static bool is_closed(resp *r, client *c) { return r->closed; }

/* Starts a call: path, the body bytes (eof: end the stream after them), an optional timeout. */
static resp *c_call(client *c, const char *path, const uint8_t *p, size_t n, bool eof,
                    const char *timeout, const char *auth, const char *ctype)
{
    resp *r = calloc(1, sizeof *r);
    r->grpc = -1;
    r->b = (body){.p = p, .len = n, .eof = eof};
    nghttp2_nv hd[8];
    int k = 0;
#define H(nm, v) hd[k++] = (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(v), strlen(nm), strlen(v), 0}
    H(":method", "POST");
    H(":scheme", "http");
    H(":path", path);
    H(":authority", "localhost");
    H("content-type", ctype ? ctype : "application/grpc");
    H("te", "trailers");
    if (timeout) H("grpc-timeout", timeout);
    if (auth) H("authorization", auth);
#undef H
    nghttp2_data_provider dp = {.source.ptr = &r->b, .read_callback = c_body};
    r->id = nghttp2_submit_request(c->h2, NULL, hd, (size_t)k, &dp, NULL);
    CHECK(r->id > 0);
    c->r[c->n++] = r;
    return r;
}

/* A framed EchoRequest in buf; returns its length. */
static size_t frame_echo(uint8_t *buf, const char *payload, uint32_t delay_ms, uint32_t repeat)
{
    Vecscan__Rpctest__EchoRequest q = VECSCAN__RPCTEST__ECHO_REQUEST__INIT;
    q.payload.data = (uint8_t *)payload;
    q.payload.len = strlen(payload);
    q.delay_ms = delay_ms;
    q.repeat = repeat;
    size_t n = vecscan__rpctest__echo_request__pack(&q, buf + 5);
    buf[0] = 0;
    buf[1] = (uint8_t)(n >> 24);
    buf[2] = (uint8_t)(n >> 16);
    buf[3] = (uint8_t)(n >> 8);
    buf[4] = (uint8_t)n;
    return n + 5;
}

/* The one Echo reply in r, decoded; NULL if it is not exactly one message. */
static Vecscan__Rpctest__EchoResponse *echo_reply(resp *r)
{
    if (r->len < 5) return NULL;
    size_t n = (size_t)r->data[1] << 24 | (size_t)r->data[2] << 16 | (size_t)r->data[3] << 8 | r->data[4];
    if (n + 5 != r->len) return NULL;
    return vecscan__rpctest__echo_response__unpack(NULL, n, r->data + 5);
}

#define ECHO "/vecscan.rpctest.RpcTest/Echo"
#define ECHO_STREAM "/vecscan.rpctest.RpcTest/EchoStream"

/* A plain echo works on c (the server still serves). */
static void check_echo_ok(client *c, const char *what)
{
    static uint8_t buf[256];
    size_t n = frame_echo(buf, "still here", 0, 0);
    resp *r = c_call(c, ECHO, buf, n, true, NULL, NULL, NULL);
    CHECKF(c_pump(c, r, is_closed, 3000), "%s: no answer", what);
    CHECKF(r->grpc == 0, "%s: grpc-status %d (%s)", what, r->grpc, r->msg);
    Vecscan__Rpctest__EchoResponse *e = echo_reply(r);
    CHECKF(e && e->payload.len == 10 && !memcmp(e->payload.data, "still here", 10), "%s: bad echo", what);
    if (e) vecscan__rpctest__echo_response__free_unpacked(e, NULL);
}

static void expect_status(int port, const char *what, const char *path, const uint8_t *p, size_t n,
                          bool eof, int code)
{
    client *c = c_connect(port, 0);
    resp *r = c_call(c, path, p, n, eof, NULL, NULL, NULL);
    CHECKF(c_pump(c, r, is_closed, 3000), "%s: stream not closed", what);
    CHECKF(r->grpc == code, "%s: grpc-status %d (%s), want %d", what, r->grpc, r->msg, code);
    check_echo_ok(c, what);
    c_free(c);
}

/* ===== Cases ===== */

static void test_basic(int port)
{
    client *c = c_connect(port, 0);
    check_echo_ok(c, "echo");
    /* From the worker thread, after a delay. */
    uint8_t buf[256];
    size_t n = frame_echo(buf, "late", 30, 0);
    resp *r = c_call(c, ECHO, buf, n, true, NULL, NULL, NULL);
    CHECK(c_pump(c, r, is_closed, 3000) && r->grpc == 0);
    /* Health needs no token and says SERVING. */
    uint8_t hb[5] = {0, 0, 0, 0, 0};
    r = c_call(c, "/grpc.health.v1.Health/Check", hb, 5, true, NULL, NULL, NULL);
    CHECK(c_pump(c, r, is_closed, 3000) && r->grpc == 0 && r->len == 7 && r->data[5] == 8 && r->data[6] == 1);
    /* A deadline shorter than the work: DEADLINE_EXCEEDED, on time. */
    n = frame_echo(buf, "slow", 400, 0);
    uint64_t t0 = now_ms();
    r = c_call(c, ECHO, buf, n, true, "50m", NULL, NULL);
    CHECK(c_pump(c, r, is_closed, 3000));
    CHECKF(r->grpc == VS_GRPC_DEADLINE_EXCEEDED, "deadline: got %d (%s)", r->grpc, r->msg);
    CHECKF(now_ms() - t0 < 300, "deadline answered after %llu ms", (unsigned long long)(now_ms() - t0));
    /* Not gRPC. */
    r = c_call(c, ECHO, buf, n, true, NULL, NULL, "application/json");
    CHECK(c_pump(c, r, is_closed, 3000) && r->http == 415);
    c_free(c);
}

static void test_malformed(int port)
{
    uint8_t buf[256];
    size_t n = frame_echo(buf, "x", 0, 0);
    expect_status(port, "unknown method", "/vecscan.rpctest.RpcTest/Nope", buf, n, true, VS_GRPC_UNIMPLEMENTED);
    static const uint8_t junk[] = {0, 0, 0, 0, 3, 0xff, 0xff, 0xff};
    expect_status(port, "unparsable protobuf", ECHO, junk, sizeof junk, true, VS_GRPC_INVALID_ARGUMENT);
    static const uint8_t huge[] = {0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3};
    expect_status(port, "oversized prefix", ECHO, huge, sizeof huge, false, VS_GRPC_RESOURCE_EXHAUSTED);
    static const uint8_t trunc[] = {0, 0, 0, 0, 100, 10, 3, 'a', 'b', 'c'};
    expect_status(port, "truncated frame", ECHO, trunc, sizeof trunc, true, VS_GRPC_INVALID_ARGUMENT);
    uint8_t comp[256];
    memcpy(comp, buf, n);
    comp[0] = 1;
    expect_status(port, "compressed flag", ECHO, comp, n, true, VS_GRPC_UNIMPLEMENTED);
    uint8_t two[512];
    memcpy(two, buf, n);
    memcpy(two + n, buf, n);
    expect_status(port, "two unary messages", ECHO, two, 2 * n, true, VS_GRPC_INVALID_ARGUMENT);
    expect_status(port, "no message", ECHO, buf, 0, true, VS_GRPC_INVALID_ARGUMENT);
    comp[0] = 7;
    expect_status(port, "bad flag", ECHO, comp, n, true, VS_GRPC_INVALID_ARGUMENT);

    /* A reset in the middle of a message, on unary and streaming calls; the connection serves on. */
    client *c = c_connect(port, 0);
    resp *r = c_call(c, ECHO, trunc, sizeof trunc, false, NULL, NULL, NULL);
    resp *s = c_call(c, ECHO_STREAM, trunc, sizeof trunc, false, NULL, NULL, NULL);
    c_pump(c, NULL, NULL, 100);
    nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, r->id, NGHTTP2_CANCEL);
    nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    c_pump(c, NULL, NULL, 100);
    check_echo_ok(c, "after reset");
    c_free(c);

    /* Garbage instead of HTTP/2: the server closes that connection and serves the next. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    static const char garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\x01\x02\x03garbage garbage";
    CHECK(send(fd, garbage, sizeof garbage, MSG_NOSIGNAL) > 0);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char sink[4096];
    ssize_t got;
    while ((got = recv(fd, sink, sizeof sink, 0)) > 0) {
    }
    CHECKF(got == 0, "garbage: connection not closed by the server");
    close(fd);
    /* A valid preface followed by a garbage frame. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    static const char pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                              "\x00\x00\x08\x07\x00\x00\x00\x00\x01\xde\xad\xbe\xef\x12\x34\x56\x78";
    CHECK(send(fd, pre, sizeof pre - 1, MSG_NOSIGNAL) > 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while ((got = recv(fd, sink, sizeof sink, 0)) > 0) {
    }
    CHECKF(got == 0, "bad frame: connection not closed by the server");
    close(fd);
    c = c_connect(port, 0);
    check_echo_ok(c, "after garbage");
    c_free(c);
}

static void test_auth(int port)
{
    uint8_t buf[256];
    size_t n = frame_echo(buf, "x", 0, 0);
    client *c = c_connect(port, 0);
    resp *r = c_call(c, ECHO, buf, n, true, NULL, NULL, NULL);
    CHECK(c_pump(c, r, is_closed, 3000) && r->grpc == VS_GRPC_UNAUTHENTICATED);
    r = c_call(c, ECHO, buf, n, true, NULL, "Bearer wrong-token", NULL);
    CHECK(c_pump(c, r, is_closed, 3000) && r->grpc == VS_GRPC_UNAUTHENTICATED);
    r = c_call(c, ECHO, buf, n, true, NULL, "Bearer s3cret-token", NULL);
    CHECK(c_pump(c, r, is_closed, 3000) && r->grpc == 0);
    uint8_t hb[5] = {0, 0, 0, 0, 0};
    r = c_call(c, "/grpc.health.v1.Health/Check", hb, 5, true, NULL, NULL, NULL);
    CHECK(c_pump(c, r, is_closed, 3000) && r->grpc == 0);
    c_free(c);
}

/* A client streaming far faster than the handler: HTTP/2 flow control must hold it back. */
static void test_flow_control(int port)
{
    const size_t msg = 1024, count = 20000; /* 20 MB offered */
    uint8_t *big = malloc(msg * count);
    char payload[1024];
    memset(payload, 'p', sizeof payload);
    payload[msg - 5 - 8] = 0;
    size_t off = 0;
    for (size_t i = 0; i < count; i++) off += frame_echo(big + off, payload, 2, 0);
    client *c = c_connect(port, 0);
    resp *r = c_call(c, ECHO_STREAM, big, off, true, NULL, NULL, NULL);
    c_pump(c, NULL, NULL, 1000);
    /* In 1 s the handler works through ~500 messages; with 32 pending and a 64 KiB window the
     * client cannot have sent more than a few hundred KB. */
    CHECKF(r->b.sent < (2u << 20), "flow control: the client sent %zu bytes in 1 s", r->b.sent);
    CHECKF(r->b.sent > 0, "flow control: nothing sent");
    fprintf(stderr, "flow control: %zu of %zu bytes sent in 1 s, %zu bytes of replies\n", r->b.sent, off, r->total);
    nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, r->id, NGHTTP2_CANCEL);
    c_pump(c, NULL, NULL, 50);
    check_echo_ok(c, "after flow control");

    /* Fast handler, many messages: every one echoed, in order, and the stream ends OK. */
    off = 0;
    for (size_t i = 0; i < 3000; i++) off += frame_echo(big + off, "m", 0, 0);
    r = c_call(c, ECHO_STREAM, big, off, true, NULL, NULL, NULL);
    CHECK(c_pump(c, r, is_closed, 10000));
    CHECKF(r->grpc == 0, "stream: status %d (%s)", r->grpc, r->msg);
    /* Each reply: 5-byte prefix, payload "m" (3 bytes), n = 1..3000 (2 or 3 bytes). */
    CHECKF(r->total == 3000 * 9 + 127 * 1 + 2873 * 2, "stream: %zu reply bytes", r->total);
    c_free(c);
    free(big);
}

/* Shutdown lets a call in flight finish, then refuses new ones. */
static atomic_int g_shutdown_done;
static void on_shutdown_done(void *arg) { atomic_store(&g_shutdown_done, 1); }
static void do_shutdown(evutil_socket_t fd, short w, void *arg)
{
    vs_rpc_server_shutdown(arg, 2000, on_shutdown_done, NULL);
}

static void test_shutdown(srv *s)
{
    uint8_t buf[256];
    size_t n = frame_echo(buf, "in flight", 200, 0);
    client *c = c_connect(s->port, 0);
    resp *r = c_call(c, ECHO, buf, n, true, NULL, NULL, NULL);
    c_pump(c, NULL, NULL, 50);
    struct timeval tv0 = {0, 0};
    event_base_once(g_base, -1, EV_TIMEOUT, do_shutdown, s->rpc, &tv0);
    CHECK(c_pump(c, r, is_closed, 3000));
    CHECKF(r->grpc == 0, "shutdown: call in flight got %d (%s)", r->grpc, r->msg);
    c_pump(c, NULL, NULL, 300);
    CHECKF(c->eof, "shutdown: connection not closed");
    uint64_t end = now_ms() + 3000;
    while (!atomic_load(&g_shutdown_done) && now_ms() < end) c_pump(c, NULL, NULL, 10);
    CHECK(atomic_load(&g_shutdown_done));
    c_free(c);
}

static void test_wire(void)
{
    uint64_t ns;
    CHECK(vs_grpc_parse_timeout("100m", 4, &ns) && ns == 100000000ull);
    CHECK(vs_grpc_parse_timeout("5S", 2, &ns) && ns == 5000000000ull);
    CHECK(vs_grpc_parse_timeout("99999999H", 9, &ns));
    CHECK(!vs_grpc_parse_timeout("100", 3, &ns));
    CHECK(!vs_grpc_parse_timeout("123456789S", 10, &ns));
    CHECK(!vs_grpc_parse_timeout("1x", 2, &ns));
    char out[64];
    vs_grpc_percent_encode("a%b\n\xc3\xbc", out, sizeof out);
    CHECK(strcmp(out, "a%25b%0A%C3%BC") == 0);
    vs_grpc_percent_encode("abcdef", out, 4);
    CHECK(strcmp(out, "abc") == 0);
    CHECK(vs_ct_equal("abc", 3, "abc", 3));
    CHECK(!vs_ct_equal("abd", 3, "abc", 3));
    CHECK(!vs_ct_equal("ab", 2, "abc", 3));
    CHECK(!vs_ct_equal("abcd", 4, "abc", 3));
    /* The reader, byte by byte, across two messages. */
    vs_grpc_reader rd;
    vs_grpc_reader_init(&rd, 100);
    static const uint8_t two[] = {0, 0, 0, 0, 2, 'h', 'i', 0, 0, 0, 0, 0};
    int got = 0;
    for (size_t i = 0; i < sizeof two; i++) {
        size_t used;
        uint8_t *m;
        size_t ml;
        vs_grpc_read_result res = vs_grpc_reader_feed(&rd, two + i, 1, &used, &m, &ml);
        CHECK(used == 1);
        if (res == VS_GRPC_READ_MESSAGE) {
            got++;
            CHECK(got == 1 ? ml == 2 && !memcmp(m, "hi", 2) : ml == 0);
            free(m);
        }
    }
    CHECK(got == 2 && vs_grpc_reader_idle(&rd));
    static const uint8_t big[] = {0, 0, 0, 0, 101};
    size_t used;
    uint8_t *m;
    size_t ml;
    CHECK(vs_grpc_reader_feed(&rd, big, 5, &used, &m, &ml) == VS_GRPC_READ_TOO_LARGE);
    vs_grpc_reader_free(&rd);
    /* Metrics render. */
    vs_metrics *mx = vs_metrics_create();
    vs_metrics_fam *f = vs_metrics_family(mx, "t_total", "help", VS_METRICS_COUNTER, "a,b", NULL, 0);
    vs_metrics_add(vs_metrics_child(f, "x\"y", "z"), 2);
    vs_metrics_fam *h = vs_metrics_family(mx, "t_seconds", "h", VS_METRICS_HISTOGRAM, "", NULL, 0);
    vs_metrics_observe(vs_metrics_child(h), 0.003);
    size_t len;
    char *txt = vs_metrics_render(mx, &len);
    CHECK(txt && strstr(txt, "t_total{a=\"x\\\"y\",b=\"z\"} 2\n"));
    CHECK(txt && strstr(txt, "t_seconds_bucket{le=\"0.005\"} 1\n") && strstr(txt, "t_seconds_count 1\n"));
    free(txt);
    vs_metrics_destroy(mx);
}

int main(void)
{
    test_wire();
    evthread_use_pthreads();
    g_base = event_base_new();
    g_metrics = vs_metrics_create();
    srv plain = {0}, auth = {0}, tight = {0};
    srv_start(&plain, &(vs_rpc_options){.max_message_bytes = 1 << 20, .metrics = g_metrics});
    srv_start(&auth, &(vs_rpc_options){.auth_token = "s3cret-token"});
    srv_start(&tight, &(vs_rpc_options){.stream_window = 65536, .connection_window = 1 << 20,
                                        .max_stream_pending = 32, .max_stream_out_bytes = 65536});
    pthread_t th;
    pthread_create(&th, NULL, loop_main, NULL);
    test_basic(plain.port);
    test_malformed(plain.port);
    test_auth(auth.port);
    test_flow_control(tight.port);
    test_shutdown(&plain);
    event_base_loopbreak(g_base);
    pthread_join(th, NULL);
    size_t len;
    char *txt = vs_metrics_render(g_metrics, &len);
    CHECK(txt && strstr(txt, "vecscan_rpc_requests_total{method=\"vecscan.rpctest.RpcTest/Echo\",code=\"OK\"}"));
    CHECK(txt && strstr(txt, "code=\"RESOURCE_EXHAUSTED\""));
    free(txt);
    srv *all[] = {&plain, &auth, &tight};
    for (int i = 0; i < 3; i++) {
        vs_rpc_test_service_destroy(all[i]->test);
        vs_rpc_server_destroy(all[i]->rpc);
    }
    event_base_free(g_base);
    vs_metrics_destroy(g_metrics);
    return vs_test_finish("test_rpc");
}
