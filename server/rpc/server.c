/*
 * server.c: gRPC over HTTP/2 on a libevent loop (see vs_rpc.h for the model).
 *
 * Who owns what. The loop thread owns connections (conn), HTTP/2 streams (stream) and the nghttp2
 * sessions. A call (vs_rpc_call) is shared with the handler, which may live on another thread: it
 * holds two references, the stream's and the handler's. The handler's reference goes away when its
 * vs_rpc_finish is processed on the loop; the stream's when the stream closes. Everything a handler
 * does (send, finish, release) becomes a completion record on a mutex-guarded queue, and the loop
 * drains the queue when an eventfd says there is something in it, so no socket or nghttp2 state is
 * ever touched off the loop thread, and completions of one call keep their order.
 *
 * Flow control. nghttp2 runs with automatic WINDOW_UPDATE off: the daemon returns window credit
 * with nghttp2_session_consume only for bytes it is done with. Unary requests are consumed as they
 * arrive (the message size limit bounds them). A streaming call stops being credited while its
 * handler has more than max_stream_pending messages unfinished or more than max_stream_out_bytes
 * of responses wait for the peer; the held bytes are credited when it drains. The peer can then
 * send at most one stream window past that point.
 *
 * Errors found by the transport (a frame past the size limit, a compressed message, a request
 * that does not parse, a deadline) end the stream with trailers; if the peer is still sending, a
 * RST_STREAM(NO_ERROR) follows the trailers (sent after them: nghttp2 sends RST_STREAM ahead of
 * queued HEADERS, so it is submitted from the on_frame_send callback of the trailers).
 */
#include "vs_rpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <nghttp2/nghttp2.h>

#include "grpc_wire.h"
#include "vs_dlog.h"
#include "vs_metrics.h"

#define OUT_HIGH_WATER (1u << 20) /* socket output buffered before nghttp2 is told to wait */
#define GRPC_MSG_MAX 1024         /* grpc-message bytes after percent-encoding */

typedef struct conn conn;
typedef struct stream stream;

typedef struct method_entry {
    vs_rpc_method m;
    char *path;
    const char *label; /* path without the leading '/' */
} method_entry;

struct vs_rpc_call {
    vs_rpc_server *srv;
    const method_entry *me;
    stream *st;             /* loop thread only; NULL once the stream is gone */
    int refs;               /* loop thread only */
    atomic_bool cancelled;  /* the stream is gone or was ended by the transport */
    atomic_bool send_failed; /* a vs_rpc_send ran out of memory: the call cannot end OK */
    bool cancel_notified;   /* on_cancel ran (loop thread) */
    uint64_t deadline_ns;
    uint64_t start_ns;
    void *user;
    ProtobufCMessage *req;  /* unary: the decoded request */
};

/* C_REPLY is a unary call's whole answer, C_SEND then C_FINISH(OK) in one record: one allocation
 * and one trip through the queue per call, and the message and the trailers leave in one pass. */
enum { C_SEND, C_FINISH, C_RELEASE, C_REPLY };

typedef struct completion {
    struct completion *next;
    vs_rpc_call *call;
    int kind;
    size_t len;      /* C_SEND, C_REPLY: bytes in data */
    int code;        /* C_FINISH */
    char *msg;       /* C_FINISH: plain text, or NULL */
    uint32_t n;      /* C_RELEASE */
    uint8_t data[];  /* C_SEND, C_REPLY: the framed message */
} completion;

struct stream {
    conn *c;
    int32_t id;
    stream *prev, *next;
    /* request headers */
    char *path;
    bool post, grpc_ct, auth_ok, has_timeout, bad_encoding;
    uint64_t timeout_ns;
    /* state */
    const method_entry *me;
    vs_rpc_call *call;
    vs_grpc_reader rd;
    uint32_t n_msgs;
    uint8_t *unary;     /* unary: the raw request */
    size_t unary_len;
    bool started;       /* headers checked, call created or stream answered */
    bool remote_closed; /* the peer sent END_STREAM */
    bool local_done;    /* our trailers are queued */
    bool resp_submitted;
    int code;
    char *msg;
    struct evbuffer *out;
    size_t held;        /* received bytes not credited back yet */
    uint32_t pending;   /* streaming: messages delivered and not released */
    struct event *deadline_ev;
};

struct conn {
    vs_rpc_server *srv;
    struct bufferevent *bev;
    nghttp2_session *h2;
    conn *prev, *next;
    stream *streams;
    char peer[64];
    bool dead;
    bool greeted; /* a whole client preface arrived (the handshake timeout is off) */
    bool dirty;   /* on the server's to-flush list */
    conn *next_dirty;
    size_t received;
};

struct vs_rpc_server {
    struct event_base *base;
    vs_rpc_options opt;
    char *auth;      /* "Bearer <token>" or NULL */
    size_t auth_len;
    method_entry *methods;
    size_t n_methods;
    struct evconnlistener *lst;
    conn *conns;
    size_t n_conns;
    size_t active_calls;
    /* completion queue */
    pthread_mutex_t qmu;
    completion *qhead, **qtail;
    bool qsignalled;
    int efd;
    struct event *qev;
    conn *dirty; /* connections with frames to send once the queue is drained (loop thread) */
    /* shutdown */
    bool shutting_down;
    struct event *grace_ev;
    void (*done)(void *);
    void *done_ctx;
    int grace_phase;
    /* metrics */
    vs_metrics_fam *m_requests, *m_latency, *m_msgs_in, *m_msgs_out;
    vs_metrics_cell *m_conns, *m_active;
};

static void conn_flush(conn *c);
static void conn_free(conn *c);
static void stream_finish(stream *st, int code, const char *msg_plain);
static void call_unref(vs_rpc_call *call);
static void stream_submit(stream *st);

uint64_t vs_rpc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ===== Codes ===== */

const char *vs_grpc_code_name(int code)
{
    static const char *names[VS_GRPC_N_CODES] = {
        "OK",        "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
        "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",   "UNIMPLEMENTED",      "INTERNAL",
        "UNAVAILABLE", "DATA_LOSS",       "UNAUTHENTICATED"};
    return code >= 0 && code < VS_GRPC_N_CODES ? names[code] : "UNKNOWN";
}

vs_grpc_code vs_grpc_from_err(vs_err e)
{
    switch (e) {
    case VS_OK: return VS_GRPC_OK;
    case VS_ERR_INVALID_ARGUMENT: return VS_GRPC_INVALID_ARGUMENT;
    case VS_ERR_NOT_FOUND: return VS_GRPC_NOT_FOUND;
    case VS_ERR_ALREADY_EXISTS: return VS_GRPC_ALREADY_EXISTS;
    case VS_ERR_OUT_OF_RANGE: return VS_GRPC_OUT_OF_RANGE;
    case VS_ERR_RESOURCE_EXHAUSTED: return VS_GRPC_RESOURCE_EXHAUSTED;
    case VS_ERR_FAILED_PRECONDITION: return VS_GRPC_FAILED_PRECONDITION;
    case VS_ERR_UNAVAILABLE: return VS_GRPC_UNAVAILABLE;
    case VS_ERR_DATA_LOSS: return VS_GRPC_DATA_LOSS;
    case VS_ERR_IO: return VS_GRPC_UNAVAILABLE;
    case VS_ERR_UNIMPLEMENTED: return VS_GRPC_UNIMPLEMENTED;
    case VS_ERR_DEADLINE_EXCEEDED: return VS_GRPC_DEADLINE_EXCEEDED;
    case VS_ERR_INTERNAL: return VS_GRPC_INTERNAL;
    }
    return VS_GRPC_INTERNAL;
}

/* ===== Completion queue (any thread -> loop) ===== */

static void enqueue(vs_rpc_server *s, completion *cp)
{
    bool signal = false;
    pthread_mutex_lock(&s->qmu);
    *s->qtail = cp;
    s->qtail = &cp->next;
    if (!s->qsignalled) {
        s->qsignalled = true;
        signal = true;
    }
    pthread_mutex_unlock(&s->qmu);
    if (signal) {
        uint64_t one = 1;
        ssize_t w = write(s->efd, &one, sizeof one);
        (void)w;
    }
}

static bool stream_paused(const stream *st)
{
    const vs_rpc_options *o = &st->c->srv->opt;
    return st->me && st->me->m.kind == VS_RPC_BIDI && !st->local_done &&
           (st->pending > o->max_stream_pending || evbuffer_get_length(st->out) > o->max_stream_out_bytes);
}

/* Credits held bytes back to the peer once the stream is no longer paused. */
static void stream_maybe_credit(stream *st)
{
    if (st->held && !stream_paused(st)) {
        nghttp2_session_consume(st->c->h2, st->id, st->held);
        st->held = 0;
    }
}

/* Puts c on the list of connections flushed when the queue is drained. */
static void conn_mark_dirty(conn *c)
{
    if (c->dirty) return;
    c->dirty = true;
    c->next_dirty = c->srv->dirty;
    c->srv->dirty = c;
}

static void process(completion *cp)
{
    vs_rpc_call *call = cp->call;
    stream *st = call->st;
    switch (cp->kind) {
    case C_SEND:
    case C_REPLY:
        if (st && !st->local_done) {
            evbuffer_add(st->out, cp->data, cp->len);
            vs_metrics_add(vs_metrics_child(call->srv->m_msgs_out, call->me->label), 1);
            if (cp->kind == C_REPLY) stream_finish(st, VS_GRPC_OK, NULL); /* submits the response too */
            else stream_submit(st); /* headers go out with the first message */
        }
        break;
    case C_FINISH:
        if (st && !st->local_done) {
            if (cp->code == VS_GRPC_OK && atomic_load(&call->send_failed))
                stream_finish(st, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory for a response");
            else
                stream_finish(st, cp->code, cp->msg);
        }
        break;
    case C_RELEASE:
        if (st) {
            st->pending = cp->n > st->pending ? 0 : st->pending - cp->n;
            stream_maybe_credit(st);
        }
        break;
    }
    if (st) conn_mark_dirty(st->c);
    if (cp->kind == C_FINISH || cp->kind == C_REPLY) call_unref(call);
    free(cp->msg);
    free(cp);
}

static void queue_cb(evutil_socket_t fd, short what, void *arg)
{
    vs_rpc_server *s = arg;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
    (void)what;
    pthread_mutex_lock(&s->qmu);
    completion *list = s->qhead;
    s->qhead = NULL;
    s->qtail = &s->qhead;
    s->qsignalled = false;
    pthread_mutex_unlock(&s->qmu);
    while (list) {
        completion *n = list->next;
        process(list);
        list = n;
    }
    /* One send pass per connection for everything drained: the answers of a whole executor batch
     * leave in as few writes as the socket takes. */
    while (s->dirty) {
        conn *c = s->dirty;
        s->dirty = c->next_dirty;
        c->dirty = false;
        conn_flush(c); /* may free c */
    }
}

/* ===== Calls (any thread) ===== */

static void call_unref(vs_rpc_call *call)
{
    if (--call->refs > 0) return;
    if (call->me->m.on_free) call->me->m.on_free(call, call->user, call->me->m.ctx);
    if (call->req) protobuf_c_message_free_unpacked(call->req, NULL);
    free(call);
}

/* A C_SEND or C_REPLY record holding msg framed (NULL when out of memory). */
static completion *framed(vs_rpc_call *call, int kind, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    completion *cp = malloc(sizeof *cp + n + 5);
    if (!cp) return NULL;
    *cp = (completion){.call = call, .kind = kind, .len = n + 5};
    uint8_t *buf = cp->data;
    buf[0] = 0;
    buf[1] = (uint8_t)(n >> 24);
    buf[2] = (uint8_t)(n >> 16);
    buf[3] = (uint8_t)(n >> 8);
    buf[4] = (uint8_t)n;
    protobuf_c_message_pack(msg, buf + 5);
    return cp;
}

bool vs_rpc_send(vs_rpc_call *call, const ProtobufCMessage *msg)
{
    if (atomic_load(&call->cancelled)) return false;
    completion *cp = framed(call, C_SEND, msg);
    if (!cp) {
        atomic_store(&call->send_failed, true); /* the handler's finish turns into an error */
        return false;
    }
    enqueue(call->srv, cp);
    return true;
}

static void finish_msg(vs_rpc_call *call, vs_grpc_code code, char *msg)
{
    completion *cp = calloc(1, sizeof *cp);
    if (!cp) {
        /* Out of memory with a call to end: the stream's own close will still release it. The
         * handler's reference leaks with its call, which is what the handler would have freed. */
        free(msg);
        VS_LOGE("rpc", "out of memory finishing a call");
        return;
    }
    cp->call = call;
    cp->kind = C_FINISH;
    cp->code = code;
    cp->msg = msg;
    enqueue(call->srv, cp);
}

void vs_rpc_finish(vs_rpc_call *call, vs_grpc_code code, const char *fmt, ...)
{
    char *msg = NULL;
    if (fmt && *fmt) {
        char plain[GRPC_MSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(plain, sizeof plain, fmt, ap);
        va_end(ap);
        msg = strdup(plain);
    }
    finish_msg(call, code, msg);
}

void vs_rpc_reply(vs_rpc_call *call, const ProtobufCMessage *msg)
{
    completion *cp = NULL;
    if (!atomic_load(&call->cancelled) && !atomic_load(&call->send_failed))
        cp = framed(call, C_REPLY, msg);
    if (cp) {
        enqueue(call->srv, cp);
        return;
    }
    /* Cancelled (the transport drops it anyway) or out of memory: the two steps, as before. */
    vs_rpc_send(call, msg);
    vs_rpc_finish(call, VS_GRPC_OK, NULL);
}

void vs_rpc_fail_status(vs_rpc_call *call, const vs_status *st)
{
    vs_err e = st ? st->code : VS_ERR_INTERNAL;
    vs_rpc_finish(call, vs_grpc_from_err(e == VS_OK ? VS_ERR_INTERNAL : e), "%s",
                  st && st->msg[0] ? st->msg : vs_err_name(e));
}

void vs_rpc_release(vs_rpc_call *call, uint32_t n)
{
    completion *cp = calloc(1, sizeof *cp);
    if (!cp) return;
    cp->call = call;
    cp->kind = C_RELEASE;
    cp->n = n;
    enqueue(call->srv, cp);
}

bool vs_rpc_cancelled(const vs_rpc_call *call) { return atomic_load(&call->cancelled); }
uint64_t vs_rpc_deadline_ns(const vs_rpc_call *call) { return call->deadline_ns; }
void vs_rpc_set_user(vs_rpc_call *call, void *user) { call->user = user; }
void *vs_rpc_user(const vs_rpc_call *call) { return call->user; }
const char *vs_rpc_path(const vs_rpc_call *call) { return call->me->path; }

/* ===== Streams (loop thread) ===== */

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME}

static ssize_t data_read_cb(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    stream *st = src->ptr;
    int n = evbuffer_remove(st->out, buf, len);
    if (n < 0) n = 0;
    if (evbuffer_get_length(st->out) == 0) {
        if (st->local_done) {
            char code[16];
            snprintf(code, sizeof code, "%d", st->code);
            nghttp2_nv tr[2] = {NV("grpc-status", code), NV("grpc-message", st->msg ? st->msg : "")};
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            if (nghttp2_submit_trailer(h2, id, tr, st->msg ? 2 : 1) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        } else if (n == 0) {
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    stream_maybe_credit(st);
    return n;
}

/* Submits the response headers (with a data source) once, or resumes the data source. */
static void stream_submit(stream *st)
{
    if (st->resp_submitted) {
        nghttp2_session_resume_data(st->c->h2, st->id);
        return;
    }
    st->resp_submitted = true;
    nghttp2_nv hd[3] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                        NV("grpc-accept-encoding", "identity")};
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = data_read_cb};
    nghttp2_submit_response(st->c->h2, st->id, hd, 3, &dp);
}

/* Ends the stream with grpc-status code (msg: already percent-encoded, or NULL; taken). */
static void stream_end(stream *st, int code, char *msg)
{
    vs_rpc_server *s = st->c->srv;
    st->local_done = true;
    st->code = code;
    st->msg = msg;
    if (st->deadline_ev) event_del(st->deadline_ev);
    if (st->call) {
        vs_rpc_call *call = st->call;
        double secs = (double)(vs_rpc_now_ns() - call->start_ns) / 1e9;
        const char *cname = vs_grpc_code_name(code);
        vs_metrics_add(vs_metrics_child(s->m_requests, call->me->label, cname), 1);
        vs_metrics_observe(vs_metrics_child(s->m_latency, call->me->label, cname), secs);
        s->active_calls--;
        vs_metrics_set(s->m_active, (double)s->active_calls);
        if (code != VS_GRPC_OK)
            VS_LOGD("rpc", "%s %s -> %s %s", st->c->peer, call->me->label, cname, msg ? msg : "");
    } else {
        vs_metrics_add(vs_metrics_child(s->m_requests, "unknown", vs_grpc_code_name(code)), 1);
    }
    if (!st->resp_submitted && evbuffer_get_length(st->out) == 0) {
        /* Trailers-only response: one HEADERS frame with END_STREAM. */
        char cs[16];
        snprintf(cs, sizeof cs, "%d", code);
        nghttp2_nv hd[4] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                            NV("grpc-status", cs), NV("grpc-message", msg ? msg : "")};
        st->resp_submitted = true;
        nghttp2_submit_response(st->c->h2, st->id, hd, msg ? 4 : 3, NULL);
    } else {
        stream_submit(st);
    }
    /* A paused streaming call has bytes held: credit them, the call reads no more. */
    if (st->held) {
        nghttp2_session_consume(st->c->h2, st->id, st->held);
        st->held = 0;
    }
}

static void stream_finish(stream *st, int code, const char *msg_plain)
{
    char *enc = NULL;
    if (msg_plain && *msg_plain) {
        enc = malloc(GRPC_MSG_MAX);
        if (enc) vs_grpc_percent_encode(msg_plain, enc, GRPC_MSG_MAX);
    }
    stream_end(st, code, enc);
}

/* The transport ends a call itself (bad frame, deadline, shutdown): the stream is answered now,
 * and the handler, still owning its reference, is told through `cancelled` (and on_cancel). */
static void stream_fail(stream *st, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void stream_fail(stream *st, int code, const char *fmt, ...)
{
    if (st->local_done) return;
    char plain[GRPC_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(plain, sizeof plain, fmt, ap);
    va_end(ap);
    stream_finish(st, code, plain);
    vs_rpc_call *call = st->call;
    if (call) {
        atomic_store(&call->cancelled, true);
        if (call->me->m.kind == VS_RPC_BIDI && !call->cancel_notified && call->me->m.on_cancel) {
            call->cancel_notified = true;
            call->me->m.on_cancel(call, call->me->m.ctx);
        }
    }
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    stream *st = arg;
    (void)fd;
    (void)what;
    stream_fail(st, VS_GRPC_DEADLINE_EXCEEDED, "deadline exceeded (grpc-timeout %.3f s)",
                (double)st->timeout_ns / 1e9);
    conn_flush(st->c);
}

static const method_entry *find_method(vs_rpc_server *s, const char *path)
{
    for (size_t i = 0; i < s->n_methods; i++)
        if (strcmp(s->methods[i].path, path) == 0) return &s->methods[i];
    return NULL;
}

/* The request headers are complete: check them and start the call, or answer at once. */
static void stream_start(stream *st)
{
    vs_rpc_server *s = st->c->srv;
    st->started = true;
    if (!st->post || !st->grpc_ct) {
        /* Not gRPC: plain HTTP answer, as the gRPC spec asks for a bad content-type. */
        nghttp2_nv hd[1] = {NV(":status", st->post ? "415" : "405")};
        st->local_done = true;
        st->resp_submitted = true;
        nghttp2_submit_response(st->c->h2, st->id, hd, 1, NULL);
        return;
    }
    st->me = st->path ? find_method(s, st->path) : NULL;
    if (!st->me) {
        stream_fail(st, VS_GRPC_UNIMPLEMENTED, "unknown method %s", st->path ? st->path : "(none)");
        return;
    }
    if (s->auth && !st->me->m.no_auth && !st->auth_ok) {
        stream_fail(st, VS_GRPC_UNAUTHENTICATED,
                    "this daemon needs 'authorization: Bearer <token>' (the token of --auth-token-file)");
        return;
    }
    if (s->shutting_down) {
        stream_fail(st, VS_GRPC_UNAVAILABLE, "the daemon is shutting down");
        return;
    }
    if (st->bad_encoding) {
        stream_fail(st, VS_GRPC_UNIMPLEMENTED, "grpc-encoding other than identity is not supported");
        return;
    }
    vs_rpc_call *call = calloc(1, sizeof *call);
    if (!call) {
        stream_fail(st, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    call->srv = s;
    call->me = st->me;
    call->st = st;
    /* The stream's reference; a bidi handler owns one from now on (it hears on_cancel if the
     * transport ends the call), a unary handler from on_request. */
    call->refs = st->me->m.kind == VS_RPC_BIDI ? 2 : 1;
    call->start_ns = vs_rpc_now_ns();
    st->call = call;
    s->active_calls++;
    vs_metrics_set(s->m_active, (double)s->active_calls);
    if (st->has_timeout) {
        call->deadline_ns = call->start_ns + st->timeout_ns;
        st->deadline_ev = evtimer_new(s->base, deadline_cb, st);
        if (st->deadline_ev) {
            uint64_t ns = st->timeout_ns;
            if (ns > 100ull * 365 * 86400 * 1000000000ull) ns = 100ull * 365 * 86400 * 1000000000ull;
            struct timeval tv = {.tv_sec = (time_t)(ns / 1000000000ull),
                                 .tv_usec = (suseconds_t)(ns % 1000000000ull / 1000)};
            evtimer_add(st->deadline_ev, &tv);
        }
    }
    if (st->me->m.kind == VS_RPC_BIDI && st->me->m.on_start) st->me->m.on_start(call, st->me->m.ctx);
}

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n)
{
    return protobuf_c_message_unpack(d, NULL, n, p);
}

/* A complete message arrived on st. */
static void stream_message(stream *st, uint8_t *msg, size_t len)
{
    vs_rpc_call *call = st->call;
    st->n_msgs++;
    vs_metrics_add(vs_metrics_child(st->c->srv->m_msgs_in, st->me->label), 1);
    if (st->me->m.kind == VS_RPC_UNARY) {
        if (st->n_msgs > 1) {
            free(msg);
            stream_fail(st, VS_GRPC_INVALID_ARGUMENT, "%s takes one request message, got more",
                        st->me->label);
            return;
        }
        st->unary = msg;
        st->unary_len = len;
        return;
    }
    ProtobufCMessage *m = unpack(st->me->m.request, msg, len);
    free(msg);
    if (!m) {
        stream_fail(st, VS_GRPC_INVALID_ARGUMENT, "message %u (%zu bytes) does not parse as %s",
                    st->n_msgs, len, st->me->m.request->name);
        return;
    }
    st->pending++;
    st->me->m.on_message(call, m, st->me->m.ctx);
}

/* The peer ended its side. */
static void stream_remote_end(stream *st)
{
    st->remote_closed = true;
    if (st->local_done || !st->call) return;
    if (!vs_grpc_reader_idle(&st->rd)) {
        stream_fail(st, VS_GRPC_INVALID_ARGUMENT,
                    "the request ended inside a message (%zu bytes of a frame received)",
                    vs_grpc_reader_partial(&st->rd));
        return;
    }
    vs_rpc_call *call = st->call;
    if (st->me->m.kind == VS_RPC_BIDI) {
        if (st->me->m.on_half_close) st->me->m.on_half_close(call, st->me->m.ctx);
        return;
    }
    if (st->n_msgs != 1) {
        stream_fail(st, VS_GRPC_INVALID_ARGUMENT, "%s takes one request message, got none",
                    st->me->label);
        return;
    }
    ProtobufCMessage *m = unpack(st->me->m.request, st->unary, st->unary_len);
    free(st->unary);
    st->unary = NULL;
    if (!m) {
        stream_fail(st, VS_GRPC_INVALID_ARGUMENT, "the request (%zu bytes) does not parse as %s",
                    st->unary_len, st->me->m.request->name);
        return;
    }
    call->req = m;
    call->refs++; /* the handler's, until its vs_rpc_finish is processed */
    st->me->m.on_request(call, m, st->me->m.ctx);
}

static void stream_free(stream *st)
{
    conn *c = st->c;
    if (st->prev) st->prev->next = st->next;
    else c->streams = st->next;
    if (st->next) st->next->prev = st->prev;
    vs_rpc_call *call = st->call;
    if (call) {
        if (!st->local_done) {
            /* The stream went away under a running call (reset, connection lost). */
            c->srv->active_calls--;
            vs_metrics_set(c->srv->m_active, (double)c->srv->active_calls);
            vs_metrics_add(vs_metrics_child(c->srv->m_requests, call->me->label, "CANCELLED"), 1);
        }
        atomic_store(&call->cancelled, true);
        call->st = NULL;
        if (call->me->m.kind == VS_RPC_BIDI && !call->cancel_notified && call->me->m.on_cancel) {
            call->cancel_notified = true;
            call->me->m.on_cancel(call, call->me->m.ctx);
        }
        call_unref(call);
    }
    if (st->deadline_ev) event_free(st->deadline_ev);
    vs_grpc_reader_free(&st->rd);
    evbuffer_free(st->out);
    free(st->unary);
    free(st->path);
    free(st->msg);
    free(st);
}

/* ===== nghttp2 callbacks ===== */

static ssize_t send_cb(nghttp2_session *h2, const uint8_t *data, size_t len, int flags, void *ud)
{
    conn *c = ud;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) >= OUT_HIGH_WATER) return NGHTTP2_ERR_WOULDBLOCK;
    if (evbuffer_add(out, data, len) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

static int begin_headers_cb(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    conn *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    stream *st = calloc(1, sizeof *st);
    if (!st) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->out = evbuffer_new();
    if (!st->out) {
        free(st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    st->c = c;
    st->id = f->hd.stream_id;
    vs_grpc_reader_init(&st->rd, c->srv->opt.max_message_bytes);
    st->next = c->streams;
    if (c->streams) c->streams->prev = st;
    c->streams = st;
    nghttp2_session_set_stream_user_data(h2, st->id, st);
    return 0;
}

static bool hdr_is(const uint8_t *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(p, lit, l) == 0;
}

static int header_cb(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    conn *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    stream *st = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (!st) return 0;
    if (hdr_is(name, nlen, ":path")) {
        free(st->path);
        st->path = strndup((const char *)value, vlen);
    } else if (hdr_is(name, nlen, ":method")) {
        st->post = hdr_is(value, vlen, "POST");
    } else if (hdr_is(name, nlen, "content-type")) {
        /* application/grpc, application/grpc+proto, application/grpc;charset=... */
        st->grpc_ct = vlen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                      (vlen == 16 || value[16] == '+' || value[16] == ';');
    } else if (hdr_is(name, nlen, "grpc-timeout")) {
        st->has_timeout = vs_grpc_parse_timeout((const char *)value, vlen, &st->timeout_ns);
    } else if (hdr_is(name, nlen, "grpc-encoding")) {
        st->bad_encoding = !hdr_is(value, vlen, "identity");
    } else if (hdr_is(name, nlen, "authorization")) {
        st->auth_ok = c->srv->auth && vs_ct_equal(value, vlen, c->srv->auth, c->srv->auth_len);
    }
    return 0;
}

static int frame_recv_cb(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) return 0;
    stream *st = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (!st) return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST && !st->started)
        stream_start(st);
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) stream_remote_end(st);
    return 0;
}

static int data_chunk_cb(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    stream *st = nghttp2_session_get_stream_user_data(h2, id);
    if (!st || st->local_done || !st->call) {
        if (nghttp2_session_consume(h2, id, len) != 0) nghttp2_session_consume_connection(h2, len);
        return 0;
    }
    size_t off = 0;
    while (off < len && !st->local_done) {
        size_t used = 0;
        uint8_t *msg;
        size_t mlen;
        vs_grpc_read_result r = vs_grpc_reader_feed(&st->rd, data + off, len - off, &used, &msg, &mlen);
        off += used;
        if (r == VS_GRPC_READ_MORE) break;
        if (r == VS_GRPC_READ_MESSAGE) {
            stream_message(st, msg, mlen);
            continue;
        }
        if (r == VS_GRPC_READ_TOO_LARGE) {
            uint32_t n = (uint32_t)st->rd.hdr[1] << 24 | (uint32_t)st->rd.hdr[2] << 16 |
                         (uint32_t)st->rd.hdr[3] << 8 | st->rd.hdr[4];
            stream_fail(st, VS_GRPC_RESOURCE_EXHAUSTED,
                        "message of %u bytes is larger than the limit of %zu (--max-message-bytes)",
                        n, st->c->srv->opt.max_message_bytes);
        } else if (r == VS_GRPC_READ_COMPRESSED) {
            stream_fail(st, VS_GRPC_UNIMPLEMENTED,
                        "compressed messages are not supported (grpc-encoding identity only)");
        } else if (r == VS_GRPC_READ_BAD_FLAG) {
            stream_fail(st, VS_GRPC_INVALID_ARGUMENT, "bad gRPC frame flag byte 0x%02x", st->rd.hdr[0]);
        } else {
            stream_fail(st, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory reading a message");
        }
    }
    if (stream_paused(st)) st->held += len;
    else nghttp2_session_consume(h2, id, len);
    return 0;
}

static int frame_send_cb(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type != NGHTTP2_HEADERS || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    stream *st = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    /* We answered before the peer finished sending: tell it to stop, after the trailers. */
    if (st && !st->remote_closed) nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int stream_close_cb(nghttp2_session *h2, int32_t id, uint32_t err, void *ud)
{
    stream *st = nghttp2_session_get_stream_user_data(h2, id);
    if (st) {
        nghttp2_session_set_stream_user_data(h2, id, NULL);
        stream_free(st);
    }
    return 0;
}

/* ===== Connections ===== */

static void conn_free(conn *c)
{
    vs_rpc_server *s = c->srv;
    if (c->dirty) {
        conn **pp = &s->dirty;
        while (*pp != c) pp = &(*pp)->next_dirty;
        *pp = c->next_dirty;
    }
    while (c->streams) stream_free(c->streams);
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->n_conns--;
    vs_metrics_set(s->m_conns, (double)s->n_conns);
    nghttp2_session_del(c->h2);
    bufferevent_free(c->bev);
    VS_LOGD("rpc", "connection from %s closed", c->peer);
    free(c);
    if (s->shutting_down && s->n_conns == 0 && s->done) {
        void (*done)(void *) = s->done;
        s->done = NULL;
        if (s->grace_ev) event_del(s->grace_ev);
        done(s->done_ctx);
    }
}

/* Runs nghttp2's send loop and closes the connection when both sides are done. */
static void conn_flush(conn *c)
{
    if (c->dead) return;
    int rv = nghttp2_session_send(c->h2);
    if (rv != 0) {
        VS_LOGW("rpc", "connection from %s: %s", c->peer, nghttp2_strerror(rv));
        conn_free(c);
        return;
    }
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_free(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    unsigned char *p = evbuffer_pullup(in, -1);
    ssize_t rv = nghttp2_session_mem_recv(c->h2, p, n);
    if (rv < 0) {
        VS_LOGD("rpc", "connection from %s: bad HTTP/2 input: %s", c->peer, nghttp2_strerror((int)rv));
        /* nghttp2 queued a GOAWAY where it could; send it and close. */
        nghttp2_session_send(c->h2);
        c->dead = true;
        bufferevent_disable(bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) conn_free(c);
        return;
    }
    evbuffer_drain(in, (size_t)rv);
    c->received += (size_t)rv;
    if (!c->greeted && c->received >= 24) {
        /* Past the preface: an idle HTTP/2 connection may stay as long as the client likes. */
        c->greeted = true;
        bufferevent_set_timeouts(bev, NULL, NULL);
    }
    conn_flush(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    if (c->dead) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) conn_free(c);
        return;
    }
    conn_flush(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT) VS_LOGD("rpc", "connection from %s: no HTTP/2 preface within 10 s", c->peer);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) conn_free(c);
}

vs_err vs_rpc_server_adopt(vs_rpc_server *s, struct bufferevent *bev, vs_status *st)
{
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        bufferevent_free(bev);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory for a connection");
    }
    c->srv = s;
    c->bev = bev;
    snprintf(c->peer, sizeof c->peer, "peer");
    evutil_socket_t fd = bufferevent_getfd(bev);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        char host[48], port[8];
        if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, port, sizeof port,
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0)
            snprintf(c->peer, sizeof c->peer, "%s:%s", host, port);
    }
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, frame_recv_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, data_chunk_cb);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, frame_send_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, stream_close_cb);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    int rv = nghttp2_session_server_new2(&c->h2, cb, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) {
        bufferevent_free(bev);
        free(c);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "nghttp2: %s", nghttp2_strerror(rv));
    }
    nghttp2_settings_entry set[3] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->opt.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, s->opt.stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 65536},
    };
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, set, 3);
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, (int32_t)s->opt.connection_window);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    vs_metrics_set(s->m_conns, (double)s->n_conns);
    bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
    /* A peer that connects and never speaks HTTP/2 is dropped after 10 s. */
    struct timeval hs = {10, 0};
    bufferevent_set_timeouts(bev, &hs, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    VS_LOGD("rpc", "connection from %s", c->peer);
    if (s->shutting_down) nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
    conn_flush(c);
    return VS_OK;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    vs_rpc_server *s = arg;
    if (s->shutting_down || s->n_conns >= s->opt.max_connections) {
        VS_LOGW("rpc", "connection refused: %s", s->shutting_down ? "shutting down" : "too many connections");
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct bufferevent *bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    vs_status st;
    if (vs_rpc_server_adopt(s, bev, &st) != VS_OK) VS_LOGW("rpc", "connection dropped: %s", st.msg);
}

/* ===== Server ===== */

vs_err vs_rpc_server_create(struct event_base *base, const vs_rpc_options *opt, vs_rpc_server **out,
                            vs_status *st)
{
    vs_rpc_server *s = calloc(1, sizeof *s);
    if (!s) return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    s->base = base;
    if (opt) s->opt = *opt;
    vs_rpc_options *o = &s->opt;
    if (!o->max_message_bytes) o->max_message_bytes = 64u << 20;
    if (!o->max_concurrent_streams) o->max_concurrent_streams = 256;
    if (!o->stream_window) o->stream_window = 1u << 20;
    if (!o->connection_window) o->connection_window = 16u << 20;
    if (o->stream_window > 0x7fffffff) o->stream_window = 0x7fffffff;
    if (o->connection_window > 0x7fffffff) o->connection_window = 0x7fffffff;
    if (!o->max_stream_pending) o->max_stream_pending = 1024;
    if (!o->max_stream_out_bytes) o->max_stream_out_bytes = 4u << 20;
    if (!o->max_connections) o->max_connections = 4096;
    o->auth_token = NULL;
    if (opt && opt->auth_token && *opt->auth_token) {
        size_t n = strlen(opt->auth_token);
        s->auth = malloc(n + 8);
        if (!s->auth) {
            free(s);
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        }
        memcpy(s->auth, "Bearer ", 7);
        memcpy(s->auth + 7, opt->auth_token, n + 1);
        s->auth_len = n + 7;
    }
    pthread_mutex_init(&s->qmu, NULL);
    s->qtail = &s->qhead;
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0 || !(s->qev = event_new(base, s->efd, EV_READ | EV_PERSIST, queue_cb, s)) ||
        event_add(s->qev, NULL) != 0) {
        int e = errno;
        if (s->efd >= 0) close(s->efd);
        if (s->qev) event_free(s->qev);
        pthread_mutex_destroy(&s->qmu);
        free(s->auth);
        free(s);
        return vs_status_set(st, VS_ERR_IO, "eventfd: %s", strerror(e));
    }
    vs_metrics *m = o->metrics;
    s->m_requests = vs_metrics_family(m, "vecscan_rpc_requests_total", "gRPC calls ended, by method and status code",
                                      VS_METRICS_COUNTER, "method,code", NULL, 0);
    s->m_latency = vs_metrics_family(m, "vecscan_rpc_latency_seconds", "gRPC call latency from headers to status",
                                     VS_METRICS_HISTOGRAM, "method,code", NULL, 0);
    s->m_msgs_in = vs_metrics_family(m, "vecscan_rpc_messages_received_total", "gRPC messages received",
                                     VS_METRICS_COUNTER, "method", NULL, 0);
    s->m_msgs_out = vs_metrics_family(m, "vecscan_rpc_messages_sent_total", "gRPC messages sent",
                                      VS_METRICS_COUNTER, "method", NULL, 0);
    s->m_conns = vs_metrics_child(vs_metrics_family(m, "vecscan_rpc_connections", "Open HTTP/2 connections",
                                                   VS_METRICS_GAUGE, "", NULL, 0));
    s->m_active = vs_metrics_child(vs_metrics_family(m, "vecscan_rpc_active_calls", "gRPC calls in flight",
                                                    VS_METRICS_GAUGE, "", NULL, 0));
    vs_metrics_set(s->m_conns, 0);
    vs_metrics_set(s->m_active, 0);
    *out = s;
    return VS_OK;
}

vs_err vs_rpc_server_add(vs_rpc_server *s, const vs_rpc_method *m, vs_status *st)
{
    if (!m->path || m->path[0] != '/' || !m->request || !m->response ||
        (m->kind == VS_RPC_UNARY && !m->on_request) ||
        (m->kind == VS_RPC_BIDI && (!m->on_message || !m->on_cancel)))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "method %s: incomplete", m->path ? m->path : "?");
    if (find_method(s, m->path))
        return vs_status_set(st, VS_ERR_ALREADY_EXISTS, "method %s registered twice", m->path);
    /* Entries are referenced by calls: the table is sized once, generously. */
    if (!s->methods) {
        s->methods = calloc(64, sizeof *s->methods);
        if (!s->methods) return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    if (s->n_methods == 64) return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "too many methods");
    method_entry *e = &s->methods[s->n_methods];
    e->m = *m;
    e->path = strdup(m->path);
    if (!e->path) return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    e->m.path = e->path;
    e->label = e->path + 1;
    s->n_methods++;
    return VS_OK;
}

vs_err vs_rpc_server_listen(vs_rpc_server *s, const char *host, int port, int *bound_port, vs_status *st)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rv = getaddrinfo(host, ps, &hints, &res);
    if (rv != 0) return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "bind address %s: %s", host, gai_strerror(rv));
    s->lst = evconnlistener_new_bind(s->base, accept_cb, s,
                                     LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
                                     res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (!s->lst) return vs_status_set(st, VS_ERR_IO, "cannot listen on %s:%d: %s", host, port, strerror(errno));
    if (bound_port) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        getsockname(evconnlistener_get_fd(s->lst), (struct sockaddr *)&ss, &sl);
        *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                               : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    return VS_OK;
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    vs_rpc_server *s = arg;
    (void)fd;
    (void)what;
    if (s->grace_phase == 0) {
        /* Grace is over: fail what still runs, give the trailers a moment to leave. */
        s->grace_phase = 1;
        size_t failed = 0;
        for (conn *c = s->conns; c; c = c->next) {
            for (stream *st = c->streams; st; st = st->next) {
                if (!st->local_done && st->started) {
                    stream_fail(st, VS_GRPC_UNAVAILABLE, "the daemon is shutting down");
                    failed++;
                }
            }
        }
        if (failed) VS_LOGW("rpc", "shutdown: %zu calls still running were failed with UNAVAILABLE", failed);
        for (conn *c = s->conns, *n; c; c = n) {
            n = c->next;
            conn_flush(c);
        }
        struct timeval tv = {0, 200000};
        if (s->n_conns) evtimer_add(s->grace_ev, &tv);
        return;
    }
    while (s->conns) conn_free(s->conns);
}

void vs_rpc_server_shutdown(vs_rpc_server *s, uint32_t grace_ms, void (*done)(void *ctx), void *ctx)
{
    if (s->shutting_down) return;
    s->shutting_down = true;
    s->done = done;
    s->done_ctx = ctx;
    if (s->lst) evconnlistener_disable(s->lst);
    for (conn *c = s->conns, *n; c; c = n) {
        n = c->next;
        nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                              NGHTTP2_NO_ERROR, NULL, 0);
        conn_flush(c);
    }
    if (s->n_conns == 0) {
        s->done = NULL;
        if (done) done(ctx);
        return;
    }
    s->grace_ev = evtimer_new(s->base, grace_cb, s);
    struct timeval tv = {.tv_sec = grace_ms / 1000, .tv_usec = (grace_ms % 1000) * 1000};
    if (s->grace_ev) evtimer_add(s->grace_ev, &tv);
}

void vs_rpc_server_destroy(vs_rpc_server *s)
{
    if (!s) return;
    if (s->lst) evconnlistener_free(s->lst);
    s->done = NULL;
    while (s->conns) conn_free(s->conns);
    /* Completions still queued (handlers that finished late): release their calls. */
    queue_cb(s->efd, EV_READ, s);
    if (s->grace_ev) event_free(s->grace_ev);
    event_free(s->qev);
    close(s->efd);
    pthread_mutex_destroy(&s->qmu);
    for (size_t i = 0; i < s->n_methods; i++) free(s->methods[i].path);
    free(s->methods);
    free(s->auth);
    free(s);
}

size_t vs_rpc_server_active_calls(const vs_rpc_server *s) { return s->active_calls; }
size_t vs_rpc_server_connections(const vs_rpc_server *s) { return s->n_conns; }
