/*
 * vs_rpc.h: gRPC over HTTP/2 (nghttp2) on a libevent loop, the transport of vecscand.
 *
 * One loop thread owns every socket. A connection is an nghttp2 server session; each HTTP/2
 * stream whose :path names a registered method becomes a call. The transport does the gRPC part:
 * the 5-byte message framing, content-type, grpc-timeout (a call past its deadline is answered
 * DEADLINE_EXCEEDED and flagged cancelled, so the handler can skip its work), grpc-encoding
 * identity only (a compressed message is UNIMPLEMENTED), the bearer token, the message size limit
 * (RESOURCE_EXHAUSTED), grpc-status / grpc-message trailers, and HTTP/2 flow control both ways.
 *
 * Handlers are plain functions that receive decoded protobuf-c messages. A handler replies when it
 * likes, from any thread: vs_rpc_send / vs_rpc_finish / vs_rpc_reply serialize the message on the
 * calling thread and hand the bytes to the loop through a queue and an eventfd, so an executor
 * thread completes a search without touching the socket.
 *
 * Flow control: the daemon sets a per-stream receive window (opt.stream_window) and returns credit
 * to the peer only as it consumes bytes. For a streaming method, a message counts as unfinished
 * from its delivery to the handler until the handler calls vs_rpc_release for it; while a stream
 * has more than opt.max_stream_pending unfinished messages (or more bytes queued for the peer than
 * opt.max_stream_out_bytes), the daemon stops returning credit for that stream, so a client that
 * streams millions of items is held back by HTTP/2 itself and memory stays bounded.
 */
#ifndef VS_RPC_H
#define VS_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "vs_status.h"

struct event_base;
struct bufferevent;
typedef struct vs_metrics vs_metrics;

/* gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
typedef enum vs_grpc_code {
    VS_GRPC_OK = 0,
    VS_GRPC_CANCELLED = 1,
    VS_GRPC_UNKNOWN = 2,
    VS_GRPC_INVALID_ARGUMENT = 3,
    VS_GRPC_DEADLINE_EXCEEDED = 4,
    VS_GRPC_NOT_FOUND = 5,
    VS_GRPC_ALREADY_EXISTS = 6,
    VS_GRPC_PERMISSION_DENIED = 7,
    VS_GRPC_RESOURCE_EXHAUSTED = 8,
    VS_GRPC_FAILED_PRECONDITION = 9,
    VS_GRPC_ABORTED = 10,
    VS_GRPC_OUT_OF_RANGE = 11,
    VS_GRPC_UNIMPLEMENTED = 12,
    VS_GRPC_INTERNAL = 13,
    VS_GRPC_UNAVAILABLE = 14,
    VS_GRPC_DATA_LOSS = 15,
    VS_GRPC_UNAUTHENTICATED = 16
} vs_grpc_code;

#define VS_GRPC_N_CODES 17

/* The upper-case name of code ("NOT_FOUND"); "UNKNOWN" for a value outside 0..16. */
const char *vs_grpc_code_name(int code);
/* The gRPC code for a vecscan error (VS_ERR_IO -> UNAVAILABLE, VS_ERR_DATA_LOSS -> DATA_LOSS, ...). */
vs_grpc_code vs_grpc_from_err(vs_err e);

typedef struct vs_rpc_server vs_rpc_server;
typedef struct vs_rpc_call vs_rpc_call;

typedef enum vs_rpc_kind {
    VS_RPC_UNARY = 0, /* one request, one response */
    VS_RPC_BIDI       /* messages both ways, independently; also serves client/server streaming */
} vs_rpc_kind;

/*
 * One method. `path` is the HTTP/2 :path, "/package.Service/Method". Callbacks run on the loop
 * thread and must not block.
 *
 * Unary: on_request gets the decoded request once the client half-closed; the call owns it (valid
 * until the call is finished). The handler must end the call with vs_rpc_reply or vs_rpc_finish,
 * now or later, from any thread; it may not touch `call` afterwards.
 *
 * Bidi: on_start when the call begins (before any message); on_message for each decoded message
 * (the handler takes ownership of `msg`: free it with protobuf_c_message_free_unpacked) and must
 * call vs_rpc_release once per message when it is done with it; on_half_close when the client
 * ends its side; the handler ends the call with vs_rpc_finish. on_cancel (optional) tells the
 * handler that the stream is gone (reset, deadline, connection lost, shutdown, a bad message): it
 * must still vs_rpc_finish the call (the transport drops what it sends). It may come after the
 * handler's own vs_rpc_finish (then it has nothing to do). A bidi handler owns the call from its
 * start, so on_cancel is required there. State kept with vs_rpc_set_user is freed in on_free,
 * which no callback follows.
 */
typedef struct vs_rpc_method {
    const char *path;
    vs_rpc_kind kind;
    const ProtobufCMessageDescriptor *request;  /* the request message type */
    const ProtobufCMessageDescriptor *response; /* the response message type */
    void (*on_request)(vs_rpc_call *call, const ProtobufCMessage *req, void *ctx);
    void (*on_start)(vs_rpc_call *call, void *ctx);
    void (*on_message)(vs_rpc_call *call, ProtobufCMessage *msg, void *ctx);
    void (*on_half_close)(vs_rpc_call *call, void *ctx);
    void (*on_cancel)(vs_rpc_call *call, void *ctx); /* bidi only; required there */
    /* (optional) The call is gone for good: the handler's finish was processed and the stream
     * closed; no callback follows. Free the call's user pointer here. Loop thread. */
    void (*on_free)(vs_rpc_call *call, void *user, void *ctx);
    void *ctx;
    bool no_auth; /* served without the bearer token (the health service) */
} vs_rpc_method;

typedef struct vs_rpc_options {
    size_t max_message_bytes;      /* a larger message is RESOURCE_EXHAUSTED; 0 = 64 MiB */
    uint32_t max_concurrent_streams; /* per connection; 0 = 256 */
    uint32_t stream_window;        /* per-stream receive window, bytes; 0 = 1 MiB */
    uint32_t connection_window;    /* per-connection receive window, bytes; 0 = 16 MiB */
    uint32_t max_stream_pending;   /* unfinished messages per streaming call; 0 = 1024 */
    size_t max_stream_out_bytes;   /* response bytes queued per call before reading pauses; 0 = 4 MiB */
    uint32_t max_connections;      /* 0 = 4096; more are closed at accept */
    const char *auth_token;        /* NULL or "": no auth; else every call needs it */
    vs_metrics *metrics;           /* NULL: no metrics */
} vs_rpc_options;

/* Creates a server on base (which the caller keeps and runs). The caller keeps opt's strings only
 * for this call (they are copied). *out is the caller's, freed with vs_rpc_server_destroy. */
vs_err vs_rpc_server_create(struct event_base *base, const vs_rpc_options *opt,
                            vs_rpc_server **out, vs_status *st);
/* Adds a method (copied; path too). Before vs_rpc_server_listen. */
vs_err vs_rpc_server_add(vs_rpc_server *s, const vs_rpc_method *m, vs_status *st);
/* Listens on host:port (port 0 picks a free one; *bound_port, when not NULL, says which). */
vs_err vs_rpc_server_listen(vs_rpc_server *s, const char *host, int port, int *bound_port,
                            vs_status *st);
/* Serves one already connected bufferevent (a socketpair, a fuzzer's pair); the server takes it. */
vs_err vs_rpc_server_adopt(vs_rpc_server *s, struct bufferevent *bev, vs_status *st);
/*
 * Starts a graceful shutdown (loop thread): stops accepting, sends GOAWAY, lets calls in flight
 * finish. After grace_ms, calls still running are failed with UNAVAILABLE and connections closed.
 * done(ctx) runs on the loop thread when no connection is left.
 */
void vs_rpc_server_shutdown(vs_rpc_server *s, uint32_t grace_ms, void (*done)(void *ctx), void *ctx);
/* Frees everything; connections still open are closed. Loop thread, loop not running callbacks. */
void vs_rpc_server_destroy(vs_rpc_server *s);
/* Calls in flight now (loop thread). */
size_t vs_rpc_server_active_calls(const vs_rpc_server *s);
size_t vs_rpc_server_connections(const vs_rpc_server *s);

/* ===== Calls: callable from any thread ===== */

/* Serializes msg (of the method's response type) and queues it for the peer. A no-op once the
 * call is finished or cancelled. Returns false when the call is already gone (cancelled). */
bool vs_rpc_send(vs_rpc_call *call, const ProtobufCMessage *msg);
/* Ends the call with code and message (printf format; NULL for none). The call is no longer the
 * handler's. */
void vs_rpc_finish(vs_rpc_call *call, vs_grpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* vs_rpc_send(msg) then vs_rpc_finish(OK). */
void vs_rpc_reply(vs_rpc_call *call, const ProtobufCMessage *msg);
/* Ends the call with the gRPC code for st->code and st->msg. */
void vs_rpc_fail_status(vs_rpc_call *call, const vs_status *st);
/* Streaming: the handler is done with n more received messages (their flow-control credit goes
 * back to the peer). */
void vs_rpc_release(vs_rpc_call *call, uint32_t n);
/* Whether the call was cancelled (peer reset, deadline passed, shutdown); work may be skipped. */
bool vs_rpc_cancelled(const vs_rpc_call *call);
/* The call's deadline on CLOCK_MONOTONIC in ns, or 0 when it has none. */
uint64_t vs_rpc_deadline_ns(const vs_rpc_call *call);
/* The handler's own pointer, kept with the call (NULL at start). */
void vs_rpc_set_user(vs_rpc_call *call, void *user);
void *vs_rpc_user(const vs_rpc_call *call);
/* The method's path, e.g. "/vecscan.v1.VecScan/Search". */
const char *vs_rpc_path(const vs_rpc_call *call);

/* Now on CLOCK_MONOTONIC, ns. */
uint64_t vs_rpc_now_ns(void);

#endif
