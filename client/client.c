/*
 * client.c: the gRPC transport of libvecscan-client, an nghttp2 client session on a TCP socket.
 *
 * There is no event library: a connection is a non-blocking socket, an nghttp2 client session fed
 * with nghttp2_session_mem_recv / mem_send, and a pump (pump() below) that does one poll() round:
 * write what nghttp2 has to say, wait for the socket or the nearest deadline, read what arrived,
 * expire deadlines, then run completion callbacks. Every blocking call is a loop over the pump, so
 * a blocking caller and an asynchronous one share one code path.
 *
 * A call is one HTTP/2 stream. Its request bytes (gRPC frames: a flag byte, a 4-byte big-endian
 * length, the protobuf) sit in a send queue that nghttp2 pulls through a data provider as its flow
 * control windows allow; an empty queue defers the provider until more is queued (streams). Reply
 * bytes are cut into frames as they arrive; a unary call keeps its one message, a stream decodes
 * each into its receive queue. The status comes from the trailers (or a trailers-only reply);
 * a call that ends without one gets a status that says what happened instead.
 *
 * Lifetime. A call object lives until nghttp2 has closed its stream *and* its owner let go: for a
 * unary call the owner is the library (it lets go once the callback ran), for a stream it is the
 * vsc_stream handle. A deadline or a cancel resets the stream at once and completes the call,
 * but the object waits for the close so nghttp2 never holds a dangling pointer.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "vecscan_client.h"

#define DEFAULT_PORT "7070"
#define DEFAULT_MAX_MESSAGE (64u << 20)
#define DEFAULT_SEND_BUFFER (4u << 20)
#define STREAM_WINDOW (16u << 20)
#define CONN_WINDOW (64u << 20)
#define READ_CHUNK (64u << 10)

/* ===== Small helpers ===== */

static const char *const code_names[VSC_N_CODES] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

const char *vsc_code_name(int code)
{
    return code >= 0 && code < VSC_N_CODES ? code_names[code] : "UNKNOWN";
}

/* Sets st (when not NULL) to code and the formatted message; returns code. */
__attribute__((format(printf, 3, 4))) static int set_st(vsc_status *st, int code, const char *fmt, ...)
{
    if (!st) return code;
    st->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->message, sizeof st->message, fmt, ap);
    va_end(ap);
    return code;
}

static void clear_st(vsc_status *st)
{
    if (st) {
        st->code = VSC_OK;
        st->message[0] = 0;
    }
}

/* Seconds on the monotonic clock. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A growable byte buffer; bytes [off, len) are pending. */
typedef struct buf {
    uint8_t *p;
    size_t off, len, cap;
} buf;

static int buf_reserve(buf *b, size_t more)
{
    if (b->off > 0 && b->off == b->len) b->off = b->len = 0;
    if (b->len + more <= b->cap) return 0;
    if (b->off > 0 && b->off >= b->cap / 2) { /* compact before growing */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + more <= b->cap) return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static size_t buf_pending(const buf *b)
{
    return b->len - b->off;
}

static void buf_free(buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ===== Types ===== */

struct vsc_call {
    vsc_conn *c;
    int32_t id;                            /* HTTP/2 stream id; 0 before submit */
    const ProtobufCMessageDescriptor *desc;
    bool is_stream;
    /* sending */
    buf tx;
    bool tx_eof;   /* no more data after tx drains */
    bool deferred; /* the data provider is waiting for data */
    /* receiving */
    buf rx;
    uint8_t *resp; /* unary: the payload of the one message */
    size_t resp_len;
    bool have_resp;
    ProtobufCMessage **q; /* stream: decoded messages not yet taken */
    size_t q_head, q_len, q_cap;
    /* status */
    int http_status;
    int grpc_status; /* -1 until the trailers say */
    char grpc_message[VSC_MSG_LEN];
    int local_code; /* set when the client ends the call itself */
    char local_msg[VSC_MSG_LEN];
    double deadline; /* monotonic seconds; 0: none */
    bool closed;     /* nghttp2 closed the stream, or it never opened */
    bool completed;  /* the final status is known and reported */
    bool released;   /* the owner let go */
    vsc_status final;
    vsc_unary_cb cb;
    void *user;
    vsc_call *prev, *next; /* all live calls of the connection */
    vsc_call *done_next;   /* completions waiting for their callbacks */
};

struct vsc_stream {
    vsc_call *call;
};

struct vsc_conn {
    int fd;
    nghttp2_session *h2;
    char authority[300];
    char addr[300];
    char *auth_header; /* "Bearer <token>" or NULL */
    double timeout_s;
    size_t max_message;
    size_t send_buffer;
    buf out;      /* bytes from nghttp2 not yet written */
    bool broken;  /* the socket or session failed */
    char broken_msg[VSC_MSG_LEN];
    vsc_call *calls;
    size_t n_calls;
    vsc_call *done_head, *done_tail;
    uint64_t completions; /* how many calls completed so far */
};

/* ===== Calls: completion and freeing ===== */

static void call_unlink_free(vsc_call *call)
{
    vsc_conn *c = call->c;
    if (call->prev) call->prev->next = call->next;
    else c->calls = call->next;
    if (call->next) call->next->prev = call->prev;
    c->n_calls--;
    buf_free(&call->tx);
    buf_free(&call->rx);
    free(call->resp);
    for (size_t i = 0; i < call->q_len; i++)
        protobuf_c_message_free_unpacked(call->q[(call->q_head + i) % call->q_cap], NULL);
    free(call->q);
    free(call);
}

/* Frees call when nghttp2 and its owner are both done with it. */
static void call_maybe_free(vsc_call *call)
{
    if (call->closed && call->released) call_unlink_free(call);
}

/* Records the final status of call and queues its callback (unary) for the pump. */
static void call_complete(vsc_call *call, int code, const char *msg)
{
    if (call->completed) return;
    call->completed = true;
    call->final.code = code;
    snprintf(call->final.message, sizeof call->final.message, "%s", msg ? msg : "");
    vsc_conn *c = call->c;
    c->completions++;
    if (call->is_stream) return; /* the handle reads the status */
    call->done_next = NULL;
    if (c->done_tail) c->done_tail->done_next = call;
    else c->done_head = call;
    c->done_tail = call;
}

/* Ends call from the client's side (deadline, bad reply, cancel): resets its stream. */
static void call_abort(vsc_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void call_abort(vsc_call *call, int code, const char *fmt, ...)
{
    if (call->local_code || call->completed) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->local_msg, sizeof call->local_msg, fmt, ap);
    va_end(ap);
    call->local_code = code;
    if (call->id > 0 && !call->closed && !call->c->broken)
        nghttp2_submit_rst_stream(call->c->h2, NGHTTP2_FLAG_NONE, call->id, NGHTTP2_CANCEL);
    call_complete(call, code, call->local_msg);
}

/* The gRPC code for an HTTP status other than 200 (gRPC's "HTTP to gRPC status code mapping"). */
static int code_from_http(int http)
{
    switch (http) {
    case 400: return VSC_INTERNAL;
    case 401: return VSC_UNAUTHENTICATED;
    case 403: return VSC_PERMISSION_DENIED;
    case 404: return VSC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504: return VSC_UNAVAILABLE;
    default: return VSC_UNKNOWN;
    }
}

/* The final status of a call whose stream closed with HTTP/2 error code h2err. */
static void call_closed_status(vsc_call *call, uint32_t h2err)
{
    vsc_conn *c = call->c;
    char msg[VSC_MSG_LEN];
    if (call->grpc_status >= 0) {
        int code = call->grpc_status;
        if (code == VSC_OK && !call->is_stream && !call->have_resp) {
            call_complete(call, VSC_INTERNAL, "the daemon ended a unary call with OK but no message");
            return;
        }
        if (code == VSC_OK && buf_pending(&call->rx) > 0) {
            call_complete(call, VSC_INTERNAL, "the reply ended inside a gRPC message");
            return;
        }
        call_complete(call, code, call->grpc_message);
        return;
    }
    if (call->http_status != 0 && call->http_status != 200) {
        snprintf(msg, sizeof msg, "%s: HTTP status %d from the daemon (not a gRPC reply)", c->addr,
                 call->http_status);
        call_complete(call, code_from_http(call->http_status), msg);
        return;
    }
    if (h2err == NGHTTP2_REFUSED_STREAM) {
        snprintf(msg, sizeof msg, "%s: the daemon refused the call (shutting down?)", c->addr);
        call_complete(call, VSC_UNAVAILABLE, msg);
    } else if (h2err == NGHTTP2_CANCEL) {
        call_complete(call, VSC_CANCELLED, "the daemon cancelled the call");
    } else if (h2err != NGHTTP2_NO_ERROR) {
        snprintf(msg, sizeof msg, "the daemon reset the call (HTTP/2 error %s)",
                 nghttp2_http2_strerror(h2err));
        call_complete(call, h2err == NGHTTP2_ENHANCE_YOUR_CALM ? VSC_RESOURCE_EXHAUSTED : VSC_INTERNAL,
                      msg);
    } else {
        call_complete(call, VSC_INTERNAL, "the reply ended without a grpc-status");
    }
}

/* Marks the connection broken and ends every call on it with UNAVAILABLE. */
static void conn_fail(vsc_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_fail(vsc_conn *c, const char *fmt, ...)
{
    if (!c->broken) {
        c->broken = true;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->broken_msg, sizeof c->broken_msg, fmt, ap);
        va_end(ap);
    }
    for (vsc_call *call = c->calls; call; call = call->next) {
        call_complete(call, VSC_UNAVAILABLE, c->broken_msg);
        call->closed = true;
    }
}

/* Runs the callbacks of completed unary calls and frees what can go. */
static void run_completions(vsc_conn *c)
{
    while (c->done_head) {
        vsc_call *call = c->done_head;
        c->done_head = call->done_next;
        if (!c->done_head) c->done_tail = NULL;
        ProtobufCMessage *msg = NULL;
        vsc_status st = call->final;
        if (st.code == VSC_OK && call->desc) {
            msg = protobuf_c_message_unpack(call->desc, NULL, call->resp_len, call->resp);
            if (!msg) set_st(&st, VSC_INTERNAL, "the reply does not parse as %s", call->desc->name);
        }
        call->released = true;
        if (call->cb)
            call->cb(call->user, &st, msg, st.code == VSC_OK && !call->desc ? call->resp : NULL,
                     st.code == VSC_OK && !call->desc ? call->resp_len : 0);
        else if (msg)
            protobuf_c_message_free_unpacked(msg, NULL);
        call_maybe_free(call);
    }
}

/* ===== nghttp2 callbacks ===== */

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    vsc_call *call = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (!call) return 0;
    char v[VSC_MSG_LEN];
    size_t n = valuelen < sizeof v - 1 ? valuelen : sizeof v - 1;
    memcpy(v, value, n);
    v[n] = 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        call->http_status = atoi(v);
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        call->grpc_status = atoi(v);
        if (call->grpc_status < 0 || call->grpc_status >= VSC_N_CODES) call->grpc_status = VSC_UNKNOWN;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        /* percent-decoded, as the gRPC spec encodes it */
        size_t o = 0;
        for (size_t i = 0; i < n && o < sizeof call->grpc_message - 1; i++) {
            if (v[i] == '%' && i + 2 < n) {
                char hex[3] = {v[i + 1], v[i + 2], 0};
                char *end;
                long x = strtol(hex, &end, 16);
                if (end == hex + 2) {
                    call->grpc_message[o++] = (char)x;
                    i += 2;
                    continue;
                }
            }
            call->grpc_message[o++] = v[i];
        }
        call->grpc_message[o] = 0;
    } else if (namelen == 13 && memcmp(name, "grpc-encoding", 13) == 0) {
        if (strcmp(v, "identity") != 0)
            call_abort(call, VSC_UNIMPLEMENTED, "the daemon replied with grpc-encoding %s", v);
    }
    return 0;
}

/* Takes every complete gRPC message out of call->rx. */
static void call_parse_frames(vsc_call *call)
{
    vsc_conn *c = call->c;
    while (!call->local_code && buf_pending(&call->rx) >= 5) {
        const uint8_t *h = call->rx.p + call->rx.off;
        size_t len = ((size_t)h[1] << 24) | ((size_t)h[2] << 16) | ((size_t)h[3] << 8) | h[4];
        if (h[0] & 1) {
            call_abort(call, VSC_UNIMPLEMENTED, "the daemon sent a compressed message");
            return;
        }
        if (len > c->max_message) {
            call_abort(call, VSC_RESOURCE_EXHAUSTED,
                       "a reply of %zu bytes is past this client's limit of %zu", len, c->max_message);
            return;
        }
        if (buf_pending(&call->rx) < 5 + len) return;
        const uint8_t *payload = h + 5;
        if (!call->is_stream) {
            if (call->have_resp) {
                call_abort(call, VSC_INTERNAL, "the daemon sent two messages on a unary call");
                return;
            }
            call->resp = malloc(len ? len : 1);
            if (!call->resp) {
                call_abort(call, VSC_RESOURCE_EXHAUSTED, "out of memory for a %zu-byte reply", len);
                return;
            }
            memcpy(call->resp, payload, len);
            call->resp_len = len;
            call->have_resp = true;
        } else {
            ProtobufCMessage *m = protobuf_c_message_unpack(call->desc, NULL, len, payload);
            if (!m) {
                call_abort(call, VSC_INTERNAL, "a streamed reply does not parse as %s", call->desc->name);
                return;
            }
            if (call->q_len == call->q_cap) {
                size_t cap = call->q_cap ? call->q_cap * 2 : 64;
                ProtobufCMessage **q = malloc(cap * sizeof *q);
                if (!q) {
                    protobuf_c_message_free_unpacked(m, NULL);
                    call_abort(call, VSC_RESOURCE_EXHAUSTED, "out of memory for streamed replies");
                    return;
                }
                for (size_t i = 0; i < call->q_len; i++) q[i] = call->q[(call->q_head + i) % call->q_cap];
                free(call->q);
                call->q = q;
                call->q_head = 0;
                call->q_cap = cap;
            }
            call->q[(call->q_head + call->q_len) % call->q_cap] = m;
            call->q_len++;
        }
        call->rx.off += 5 + len;
    }
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    vsc_call *call = nghttp2_session_get_stream_user_data(s, id);
    if (!call || call->local_code || call->completed) return 0;
    if (buf_reserve(&call->rx, len) != 0) {
        call_abort(call, VSC_RESOURCE_EXHAUSTED, "out of memory for a reply");
        return 0;
    }
    memcpy(call->rx.p + call->rx.len, data, len);
    call->rx.len += len;
    call_parse_frames(call);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud)
{
    (void)ud;
    vsc_call *call = nghttp2_session_get_stream_user_data(s, id);
    if (!call) return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    call->closed = true;
    if (!call->completed) call_closed_status(call, error_code);
    call_maybe_free(call); /* a unary call goes after its callback, in run_completions */
    return 0;
}

/* The request body of a call: the bytes queued in call->tx. */
static ssize_t data_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    vsc_call *call = src->ptr;
    size_t avail = buf_pending(&call->tx);
    if (avail == 0) {
        if (call->tx_eof || call->completed) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        call->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = avail < len ? avail : len;
    memcpy(out, call->tx.p + call->tx.off, n);
    call->tx.off += n;
    if (call->tx.off == call->tx.len) {
        call->tx.off = call->tx.len = 0;
        if (call->tx_eof) *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

/* ===== Socket I/O ===== */

/* Writes what nghttp2 has to send, as far as the socket takes it. */
static void conn_flush(vsc_conn *c)
{
    while (!c->broken) {
        if (buf_pending(&c->out) == 0) {
            c->out.off = c->out.len = 0;
            /* gather nghttp2's output into one write */
            while (c->out.len < (256u << 10)) {
                const uint8_t *data;
                ssize_t n = nghttp2_session_mem_send(c->h2, &data);
                if (n < 0) {
                    conn_fail(c, "%s: HTTP/2 error: %s", c->addr, nghttp2_strerror((int)n));
                    return;
                }
                if (n == 0) break;
                if (buf_reserve(&c->out, (size_t)n) != 0) {
                    conn_fail(c, "%s: out of memory", c->addr);
                    return;
                }
                memcpy(c->out.p + c->out.len, data, (size_t)n);
                c->out.len += (size_t)n;
            }
            if (buf_pending(&c->out) == 0) return;
        }
        ssize_t w = send(c->fd, c->out.p + c->out.off, buf_pending(&c->out), MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            conn_fail(c, "%s: connection lost: %s", c->addr, strerror(errno));
            return;
        }
        c->out.off += (size_t)w;
    }
}

/* Reads what the socket has and feeds it to nghttp2. */
static void conn_read(vsc_conn *c)
{
    uint8_t b[READ_CHUNK];
    for (int rounds = 0; rounds < 64 && !c->broken; rounds++) {
        ssize_t n = recv(c->fd, b, sizeof b, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            conn_fail(c, "%s: connection lost: %s", c->addr, strerror(errno));
            return;
        }
        if (n == 0) {
            conn_fail(c, "%s: the daemon closed the connection", c->addr);
            return;
        }
        ssize_t r = nghttp2_session_mem_recv(c->h2, b, (size_t)n);
        if (r < 0) {
            conn_fail(c, "%s: HTTP/2 error from the daemon: %s", c->addr, nghttp2_strerror((int)r));
            return;
        }
        if ((size_t)n < sizeof b) return;
    }
}

/* Ends the calls whose deadline has passed; returns ms to the nearest remaining deadline (-1: none). */
static int conn_expire(vsc_conn *c)
{
    double t = now_s(), next = 0;
    for (vsc_call *call = c->calls; call; call = call->next) {
        if (!call->deadline || call->completed) continue;
        if (call->deadline <= t)
            call_abort(call, VSC_DEADLINE_EXCEEDED, "deadline exceeded (no reply within the timeout)");
        else if (!next || call->deadline < next)
            next = call->deadline;
    }
    if (!next) return -1;
    double ms = (next - t) * 1e3 + 1;
    return ms > 1e9 ? 1000000000 : (int)ms;
}

/* One round: write, wait at most timeout_ms (-1: no limit but the deadlines) for the socket,
 * read, expire deadlines, run callbacks. */
static void pump(vsc_conn *c, int timeout_ms)
{
    if (!c->broken) {
        conn_flush(c);
        int dl = conn_expire(c);
        if (dl >= 0 && (timeout_ms < 0 || dl < timeout_ms)) timeout_ms = dl;
        if (!c->broken && !c->done_head) {
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            if (buf_pending(&c->out) > 0 || nghttp2_session_want_write(c->h2)) p.events |= POLLOUT;
            int r = poll(&p, 1, timeout_ms);
            if (r < 0 && errno != EINTR) conn_fail(c, "%s: poll: %s", c->addr, strerror(errno));
            if (r > 0) {
                if (p.revents & (POLLIN | POLLERR | POLLHUP)) conn_read(c);
                if (!c->broken) conn_flush(c);
            }
        }
        if (!c->broken) {
            conn_expire(c);
            conn_flush(c);
        }
        if (!c->broken && !nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
            conn_fail(c, "%s: the daemon ended the HTTP/2 session", c->addr);
    }
    run_completions(c);
}

int vsc_conn_run(vsc_conn *c, int timeout_ms, vsc_status *st)
{
    pump(c, timeout_ms);
    if (c->broken) return set_st(st, VSC_UNAVAILABLE, "%s", c->broken_msg);
    clear_st(st);
    return VSC_OK;
}

size_t vsc_conn_in_flight(const vsc_conn *c)
{
    return c->n_calls;
}

bool vsc_conn_ok(const vsc_conn *c)
{
    return c && !c->broken;
}

/* ===== Connecting ===== */

/* Splits addr into host and port ("host:port", "[v6]:port", "host"). */
static int split_addr(const char *addr, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || (size_t)(end - addr - 1) >= hcap) return -1;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = 0;
        if (end[1] == 0) {
            snprintf(port, pcap, DEFAULT_PORT);
            return 0;
        }
        if (end[1] != ':') return -1;
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        size_t hl = colon ? (size_t)(colon - addr) : strlen(addr);
        if (hl >= hcap || (colon && strchr(addr, ':') != colon)) return -1;
        memcpy(host, addr, hl);
        host[hl] = 0;
        if (!colon) {
            snprintf(port, pcap, DEFAULT_PORT);
            return 0;
        }
    }
    const char *p = colon + 1;
    if (!*p || strlen(p) >= pcap) return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return -1;
    long v = strtol(p, NULL, 10);
    if (v < 1 || v > 65535) return -1;
    snprintf(port, pcap, "%s", p);
    return 0;
}

/* A non-blocking TCP connection to host:port, waiting at most timeout_s to connect. */
static int tcp_connect(const char *addr, const char *host, const char *port, double timeout_s,
                       int *fd_out, vsc_status *st)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(host[0] ? host : "127.0.0.1", port, &hints, &res);
    if (gai != 0)
        return set_st(st, VSC_UNAVAILABLE, "cannot resolve %s: %s", addr, gai_strerror(gai));
    int err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int pr;
            do pr = poll(&p, 1, (int)(timeout_s * 1e3));
            while (pr < 0 && errno == EINTR);
            if (pr == 0) {
                err = ETIMEDOUT;
                close(fd);
                continue;
            }
            socklen_t sl = sizeof err;
            err = 0;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
            r = err ? -1 : 0;
        } else if (r != 0) {
            err = errno;
        }
        if (r == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            freeaddrinfo(res);
            *fd_out = fd;
            return VSC_OK;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return set_st(st, VSC_UNAVAILABLE, "cannot connect to %s: %s (is vecscand running?)", addr,
                  strerror(err ? err : ECONNREFUSED));
}

int vsc_connect(const char *addr, const char *token, vsc_conn **out, vsc_status *st)
{
    vsc_options o = {.token = token};
    return vsc_connect_opts(addr, &o, out, st);
}

int vsc_connect_opts(const char *addr, const vsc_options *opt, vsc_conn **out, vsc_status *st)
{
    vsc_options o = opt ? *opt : (vsc_options){0};
    *out = NULL;
    char host[256], port[16];
    if (!addr || split_addr(addr, host, sizeof host, port, sizeof port) != 0)
        return set_st(st, VSC_INVALID_ARGUMENT, "bad address '%s' (want HOST:PORT)", addr ? addr : "");
    vsc_conn *c = calloc(1, sizeof *c);
    if (!c) return set_st(st, VSC_RESOURCE_EXHAUSTED, "out of memory");
    c->fd = -1;
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    if (strchr(host, ':')) snprintf(c->authority, sizeof c->authority, "[%s]:%s", host, port);
    else snprintf(c->authority, sizeof c->authority, "%s:%s", host, port);
    c->timeout_s = o.timeout_s > 0 ? o.timeout_s : 0;
    c->max_message = o.max_message_bytes ? o.max_message_bytes : DEFAULT_MAX_MESSAGE;
    c->send_buffer = o.stream_send_buffer ? o.stream_send_buffer : DEFAULT_SEND_BUFFER;
    if (o.token && o.token[0]) {
        size_t n = strlen(o.token) + 8;
        c->auth_header = malloc(n);
        if (!c->auth_header) {
            free(c);
            return set_st(st, VSC_RESOURCE_EXHAUSTED, "out of memory");
        }
        snprintf(c->auth_header, n, "Bearer %s", o.token);
    }
    int rc = tcp_connect(addr, host, port, o.connect_timeout_s > 0 ? o.connect_timeout_s : 5.0, &c->fd, st);
    if (rc != VSC_OK) {
        vsc_close(c);
        return rc;
    }
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        vsc_close(c);
        return set_st(st, VSC_RESOURCE_EXHAUSTED, "out of memory");
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    rc = nghttp2_session_client_new(&c->h2, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0) {
        c->h2 = NULL;
        vsc_close(c);
        return set_st(st, VSC_RESOURCE_EXHAUSTED, "out of memory");
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 65536},
    };
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    conn_flush(c);
    if (c->broken) {
        rc = set_st(st, VSC_UNAVAILABLE, "%s", c->broken_msg);
        vsc_close(c);
        return rc;
    }
    clear_st(st);
    *out = c;
    return VSC_OK;
}

void vsc_close(vsc_conn *c)
{
    if (!c) return;
    if (c->h2 && !c->broken) { /* a polite GOAWAY while every call object is still valid */
        nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
        conn_flush(c);
    }
    for (vsc_call *call = c->calls; call; call = call->next) {
        call_complete(call, VSC_CANCELLED, "the connection was closed");
        call->closed = true;
    }
    run_completions(c);
    while (c->calls) call_unlink_free(c->calls); /* streams not finished by their owners */
    if (c->h2) nghttp2_session_del(c->h2); /* runs no callbacks */
    if (c->fd >= 0) close(c->fd);
    buf_free(&c->out);
    free(c->auth_header);
    free(c);
}

void vsc_set_timeout(vsc_conn *c, double timeout_s)
{
    c->timeout_s = timeout_s > 0 ? timeout_s : 0;
}

void vsc_free(void *msg)
{
    if (msg) protobuf_c_message_free_unpacked(msg, NULL);
}

/* ===== Starting calls ===== */

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME     \
    }

/* Submits a new HTTP/2 stream for call with method path. */
static int call_submit(vsc_conn *c, vsc_call *call, const char *path, double timeout_s, vsc_status *st)
{
    if (timeout_s < 0) timeout_s = c->timeout_s;
    char tmo[32] = "";
    if (timeout_s > 0) {
        double ms = timeout_s * 1e3;
        if (ms < 1) ms = 1;
        if (ms < 99999999) snprintf(tmo, sizeof tmo, "%lldm", (long long)(ms + 0.5));
        else snprintf(tmo, sizeof tmo, "%lldS", (long long)(timeout_s < 99999999 ? timeout_s : 99999999));
        call->deadline = now_s() + timeout_s;
    }
    nghttp2_nv hd[9] = {
        NV(":method", "POST"),
        NV(":scheme", "http"),
        NV(":path", path),
        NV(":authority", c->authority),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
        NV("user-agent", "vecscan-client/0.1"),
    };
    size_t n = 7;
    if (tmo[0]) hd[n++] = (nghttp2_nv)NV("grpc-timeout", tmo);
    if (c->auth_header) hd[n++] = (nghttp2_nv)NV("authorization", c->auth_header);
    nghttp2_data_provider dp = {.source.ptr = call, .read_callback = data_read};
    int32_t id = nghttp2_submit_request(c->h2, NULL, hd, n, &dp, call);
    if (id < 0) {
        if (id == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED || id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE)
            return set_st(st, VSC_UNAVAILABLE, "%s: the connection takes no new calls (%s)", c->addr,
                          nghttp2_strerror(id));
        return set_st(st, VSC_INTERNAL, "cannot start a call: %s", nghttp2_strerror(id));
    }
    call->id = id;
    return VSC_OK;
}

/* A new call object linked into c. */
static vsc_call *call_new(vsc_conn *c)
{
    vsc_call *call = calloc(1, sizeof *call);
    if (!call) return NULL;
    call->c = c;
    call->grpc_status = -1;
    call->next = c->calls;
    if (c->calls) c->calls->prev = call;
    c->calls = call;
    c->n_calls++;
    return call;
}

/* Appends one gRPC frame holding msg (or raw bytes) to call->tx. */
static int call_queue(vsc_call *call, const ProtobufCMessage *msg, const uint8_t *raw, size_t raw_len,
                      vsc_status *st)
{
    size_t len = msg ? protobuf_c_message_get_packed_size(msg) : raw_len;
    if (len > 0xffffffffu) return set_st(st, VSC_RESOURCE_EXHAUSTED, "a request of %zu bytes is too big", len);
    if (buf_reserve(&call->tx, 5 + len) != 0)
        return set_st(st, VSC_RESOURCE_EXHAUSTED, "out of memory for a %zu-byte request", len);
    uint8_t *p = call->tx.p + call->tx.len;
    p[0] = 0;
    p[1] = (uint8_t)(len >> 24);
    p[2] = (uint8_t)(len >> 16);
    p[3] = (uint8_t)(len >> 8);
    p[4] = (uint8_t)len;
    if (msg) protobuf_c_message_pack(msg, p + 5);
    else if (len) memcpy(p + 5, raw, len);
    call->tx.len += 5 + len;
    return VSC_OK;
}

static int unary_start(vsc_conn *c, const char *path, const ProtobufCMessage *req, const uint8_t *raw,
                       size_t raw_len, const ProtobufCMessageDescriptor *resp_desc, double timeout_s,
                       vsc_unary_cb cb, void *user, vsc_status *st)
{
    if (c->broken) return set_st(st, VSC_UNAVAILABLE, "%s", c->broken_msg);
    vsc_call *call = call_new(c);
    if (!call) return set_st(st, VSC_RESOURCE_EXHAUSTED, "out of memory");
    call->desc = resp_desc;
    call->cb = cb;
    call->user = user;
    call->tx_eof = true;
    int rc = call_queue(call, req, raw, raw_len, st);
    if (rc == VSC_OK) rc = call_submit(c, call, path, timeout_s, st);
    if (rc != VSC_OK) {
        call_unlink_free(call);
        return rc;
    }
    clear_st(st);
    return VSC_OK;
}

int vsc_unary_start(vsc_conn *c, const char *path, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, double timeout_s, vsc_unary_cb cb,
                    void *user, vsc_status *st)
{
    return unary_start(c, path, req, NULL, 0, resp_desc, timeout_s, cb, user, st);
}

int vsc_unary_start_raw(vsc_conn *c, const char *path, const uint8_t *req, size_t req_len,
                        const ProtobufCMessageDescriptor *resp_desc, double timeout_s,
                        vsc_unary_cb cb, void *user, vsc_status *st)
{
    return unary_start(c, path, NULL, req, req_len, resp_desc, timeout_s, cb, user, st);
}

/* What a blocking unary call waits for. */
typedef struct sync_wait {
    bool done;
    vsc_status st;
    ProtobufCMessage *resp;
} sync_wait;

static void sync_cb(void *user, const vsc_status *st, ProtobufCMessage *resp, const uint8_t *raw,
                    size_t raw_len)
{
    (void)raw;
    (void)raw_len;
    sync_wait *w = user;
    w->done = true;
    w->st = *st;
    w->resp = resp;
}

int vsc_unary(vsc_conn *c, const char *path, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp, vsc_status *st)
{
    *resp = NULL;
    sync_wait w = {0};
    int rc = vsc_unary_start(c, path, req, resp_desc, -1, sync_cb, &w, st);
    if (rc != VSC_OK) return rc;
    while (!w.done) pump(c, -1);
    if (st) *st = w.st;
    *resp = w.resp;
    return w.st.code;
}

/* ===== Streams ===== */

int vsc_stream_open(vsc_conn *c, const char *path, const ProtobufCMessageDescriptor *resp_desc,
                    double timeout_s, vsc_stream **out, vsc_status *st)
{
    *out = NULL;
    if (c->broken) return set_st(st, VSC_UNAVAILABLE, "%s", c->broken_msg);
    vsc_stream *s = calloc(1, sizeof *s);
    vsc_call *call = s ? call_new(c) : NULL;
    if (!call) {
        free(s);
        return set_st(st, VSC_RESOURCE_EXHAUSTED, "out of memory");
    }
    call->is_stream = true;
    call->desc = resp_desc;
    int rc = call_submit(c, call, path, timeout_s, st);
    if (rc != VSC_OK) {
        call_unlink_free(call);
        free(s);
        return rc;
    }
    s->call = call;
    *out = s;
    clear_st(st);
    return VSC_OK;
}

/* Wakes nghttp2's data provider of call when it waits for data. */
static void call_resume(vsc_call *call)
{
    if (call->deferred && !call->closed && !call->c->broken) {
        call->deferred = false;
        nghttp2_session_resume_data(call->c->h2, call->id);
    }
}

/* The status a stream that can take no more messages reports. */
static int stream_ended_status(vsc_stream *s, vsc_status *st)
{
    vsc_call *call = s->call;
    if (call->completed && call->final.code != VSC_OK) {
        if (st) *st = call->final;
        return call->final.code;
    }
    return set_st(st, VSC_FAILED_PRECONDITION, "the stream has ended");
}

int vsc_stream_send(vsc_stream *s, const ProtobufCMessage *msg, vsc_status *st)
{
    vsc_call *call = s->call;
    vsc_conn *c = call->c;
    if (call->completed || call->closed || call->tx_eof) return stream_ended_status(s, st);
    int rc = call_queue(call, msg, NULL, 0, st);
    if (rc != VSC_OK) return rc;
    call_resume(call);
    /* back-pressure: while too much is unsent, let the connection drain */
    while (buf_pending(&call->tx) > c->send_buffer && !call->completed && !call->closed) pump(c, -1);
    if (call->completed && call->final.code != VSC_OK) return stream_ended_status(s, st);
    /* small messages gather into larger writes; the next pump sends the rest */
    if (buf_pending(&call->tx) >= (64u << 10)) conn_flush(c);
    clear_st(st);
    return VSC_OK;
}

int vsc_stream_close_send(vsc_stream *s, vsc_status *st)
{
    vsc_call *call = s->call;
    if (!call->tx_eof) {
        call->tx_eof = true;
        call_resume(call);
        if (!call->c->broken) conn_flush(call->c);
    }
    clear_st(st);
    return VSC_OK;
}

int vsc_stream_recv(vsc_stream *s, ProtobufCMessage **msg, int timeout_ms, vsc_status *st)
{
    vsc_call *call = s->call;
    *msg = NULL;
    double end = timeout_ms > 0 ? now_s() + timeout_ms * 1e-3 : 0;
    bool first = true;
    for (;;) {
        if (call->q_len > 0) {
            *msg = call->q[call->q_head];
            call->q_head = (call->q_head + 1) % call->q_cap;
            call->q_len--;
            clear_st(st);
            return VSC_OK;
        }
        if (call->completed || call->closed) {
            if (call->final.code != VSC_OK && call->final.code != VSC_CANCELLED) {
                if (st) *st = call->final;
                if (call->c->broken) return call->final.code;
            }
            clear_st(st);
            return VSC_OK;
        }
        int wait;
        if (timeout_ms < 0) wait = -1;
        else if (timeout_ms == 0) wait = 0;
        else {
            double left = end - now_s();
            wait = left > 0 ? (int)(left * 1e3) + 1 : 0;
        }
        if (wait == 0 && !first) {
            clear_st(st);
            return VSC_OK;
        }
        first = false;
        pump(call->c, wait);
    }
}

bool vsc_stream_done(const vsc_stream *s)
{
    return (s->call->completed || s->call->closed) && s->call->q_len == 0;
}

size_t vsc_stream_unsent(const vsc_stream *s)
{
    return buf_pending(&s->call->tx);
}

int vsc_stream_finish(vsc_stream *s, vsc_status *st)
{
    vsc_call *call = s->call;
    vsc_stream_close_send(s, NULL);
    while (!call->closed && !call->completed) {
        pump(call->c, -1);
        /* discard what the caller did not take, so memory stays bounded while we wait */
        while (call->q_len > 0) {
            protobuf_c_message_free_unpacked(call->q[call->q_head], NULL);
            call->q_head = (call->q_head + 1) % call->q_cap;
            call->q_len--;
        }
    }
    vsc_status fin = call->final;
    if (st) *st = fin;
    call->released = true;
    call_maybe_free(call);
    free(s);
    return fin.code;
}

void vsc_stream_cancel(vsc_stream *s)
{
    vsc_call *call = s->call;
    if (!call->completed) call_abort(call, VSC_CANCELLED, "cancelled by the client");
    if (!call->c->broken) conn_flush(call->c);
    call->released = true;
    call_maybe_free(call);
    free(s);
}
