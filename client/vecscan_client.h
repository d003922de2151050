/*
 * vecscan_client.h: libvecscan-client, a C client of vecscand's gRPC API (proto/vecscan.proto).
 *
 * The library speaks gRPC itself, over HTTP/2 by nghttp2 on a plain TCP socket: `application/grpc`,
 * 5-byte length-prefixed protobuf-c messages, `grpc-status` / `grpc-message` trailers, deadlines
 * sent as `grpc-timeout` and enforced on the client side too, and an optional bearer token.
 *
 * Model:
 *   - A vsc_conn is one HTTP/2 connection. It is not thread-safe: one thread uses it at a time.
 *     For concurrency, open several (one per thread), or keep many calls in flight on one
 *     connection with the asynchronous calls below; HTTP/2 multiplexes them.
 *   - Every call ends in a vsc_status: a gRPC status code (VSC_OK = 0) and a message. Failures of
 *     the transport are given gRPC's meaning: a refused or dropped connection is UNAVAILABLE, a
 *     passed deadline DEADLINE_EXCEEDED, a reply that is not gRPC INTERNAL.
 *   - Blocking calls (vsc_search, vsc_upsert, ...) run the connection's small event loop (poll on
 *     the socket) until their reply is complete. Asynchronous calls (vsc_unary_start) return at
 *     once; vsc_conn_run drives the socket and invokes their callbacks.
 *   - Streaming updates (vsc_updates_open): mutations are queued and written as HTTP/2 flow control
 *     allows; vsc_stream_send blocks while more than the send-queue bound is unsent, so a fast
 *     producer is held back by the daemon's own window (back-pressure), and memory stays bounded.
 *     Acks arrive in order, one per mutation, with its seq.
 *
 * Ownership: requests are the caller's and are only read. Every response returned through an
 * out-pointer belongs to the caller, who frees it with vsc_free (or the generated *__free_unpacked
 * with a NULL allocator).
 *
 * Example (blocking search):
 *
 *     vsc_conn *c;
 *     vsc_status st;
 *     if (vsc_connect("127.0.0.1:7070", NULL, &c, &st) != VSC_OK) { puts(st.message); return 1; }
 *     float v[4] = {1, 0, 0, 0};
 *     Vecscan__V1__SearchResponse *r;
 *     if (vsc_search_vector(c, "docs", "emb", v, 4, 10, NULL, &r, &st) == VSC_OK) {
 *         for (size_t i = 0; i < r->result->n_hits; i++)
 *             printf("%llu\n", (unsigned long long)r->result->hits[i]->id);
 *         vsc_free(r);
 *     }
 *     vsc_close(c);
 */
#ifndef VECSCAN_CLIENT_H
#define VECSCAN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "health.pb-c.h"
#include "vecscan.pb-c.h"

/* gRPC status codes (the numbers of the gRPC spec). */
typedef enum vsc_code {
    VSC_OK = 0,
    VSC_CANCELLED = 1,
    VSC_UNKNOWN = 2,
    VSC_INVALID_ARGUMENT = 3,
    VSC_DEADLINE_EXCEEDED = 4,
    VSC_NOT_FOUND = 5,
    VSC_ALREADY_EXISTS = 6,
    VSC_PERMISSION_DENIED = 7,
    VSC_RESOURCE_EXHAUSTED = 8,
    VSC_FAILED_PRECONDITION = 9,
    VSC_ABORTED = 10,
    VSC_OUT_OF_RANGE = 11,
    VSC_UNIMPLEMENTED = 12,
    VSC_INTERNAL = 13,
    VSC_UNAVAILABLE = 14,
    VSC_DATA_LOSS = 15,
    VSC_UNAUTHENTICATED = 16
} vsc_code;

#define VSC_N_CODES 17
#define VSC_MSG_LEN 512

/* The outcome of a call: a gRPC code and the daemon's (or the transport's) message. */
typedef struct vsc_status {
    int code;
    char message[VSC_MSG_LEN];
} vsc_status;

/* The upper-case name of a gRPC code ("NOT_FOUND"); "UNKNOWN" outside 0..16. */
const char *vsc_code_name(int code);

typedef struct vsc_conn vsc_conn;
typedef struct vsc_call vsc_call;
typedef struct vsc_stream vsc_stream;

/* Connection options; zero means the default. */
typedef struct vsc_options {
    const char *token;          /* bearer token sent with every call; NULL: none */
    double timeout_s;           /* default deadline of each call; 0: none */
    double connect_timeout_s;   /* TCP connect timeout; 0: 5 s */
    size_t max_message_bytes;   /* largest response message accepted; 0: 64 MiB */
    size_t stream_send_buffer;  /* bytes a stream may queue unsent before send blocks; 0: 4 MiB */
} vsc_options;

/* Connects to addr ("host:port", "[v6]:port", or "host" for port 7070) and starts HTTP/2. *out is
 * the caller's, to free with vsc_close. A refused connection is UNAVAILABLE naming addr. */
int vsc_connect(const char *addr, const char *token, vsc_conn **out, vsc_status *st);
/* As vsc_connect with options (opt may be NULL). */
int vsc_connect_opts(const char *addr, const vsc_options *opt, vsc_conn **out, vsc_status *st);
/* Closes c: calls still in flight end CANCELLED (their callbacks run). Finish or cancel every
 * stream first: a vsc_stream handle does not outlive its connection. NULL is ignored. */
void vsc_close(vsc_conn *c);
/* Sets the default deadline of later calls on c (seconds; 0: none). */
void vsc_set_timeout(vsc_conn *c, double timeout_s);
/* True while the connection is usable (not closed by the peer or broken). */
bool vsc_conn_ok(const vsc_conn *c);

/* Frees a response (any protobuf-c message the library returned); NULL is ignored. */
void vsc_free(void *msg);

/* ===== Generic calls ===== */

/* Completion of an asynchronous unary call. st is the outcome; on VSC_OK resp is the decoded
 * response, which the callback owns (vsc_free); otherwise resp is NULL. raw/raw_len is the
 * response's undecoded bytes (valid during the callback) when the call was started with a NULL
 * descriptor, in which case resp is NULL. */
typedef void (*vsc_unary_cb)(void *user, const vsc_status *st, ProtobufCMessage *resp,
                             const uint8_t *raw, size_t raw_len);

/* Starts a unary call of method `path` ("/vecscan.v1.VecScan/Search") with request req, to be
 * decoded as resp_desc (NULL: deliver raw bytes). timeout_s < 0: the connection's default; 0:
 * none. Returns VSC_OK when the call is started (cb runs later, from vsc_conn_run or vsc_close);
 * an error when it could not be (cb never runs). */
int vsc_unary_start(vsc_conn *c, const char *path, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, double timeout_s, vsc_unary_cb cb,
                    void *user, vsc_status *st);
/* As vsc_unary_start with an already packed request (req_len bytes, not framed). */
int vsc_unary_start_raw(vsc_conn *c, const char *path, const uint8_t *req, size_t req_len,
                        const ProtobufCMessageDescriptor *resp_desc, double timeout_s,
                        vsc_unary_cb cb, void *user, vsc_status *st);
/* One round of c's event loop: writes what is queued, waits at most timeout_ms for the socket
 * (0: no wait; -1: no limit but the calls' deadlines), reads, expires deadlines and runs the
 * callbacks of completed calls. Call it in a loop while calls are in flight. Returns VSC_OK, or
 * UNAVAILABLE when the connection broke (every call in flight has then completed with that
 * status). */
int vsc_conn_run(vsc_conn *c, int timeout_ms, vsc_status *st);
/* Calls in flight on c (unary calls and open streams). */
size_t vsc_conn_in_flight(const vsc_conn *c);

/* A blocking unary call: *resp (caller's, vsc_free) on VSC_OK. */
int vsc_unary(vsc_conn *c, const char *path, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp, vsc_status *st);

/* ===== VecScan methods (blocking; deadline: the connection's default) ===== */

int vsc_create_collection(vsc_conn *c, const Vecscan__V1__CreateCollectionRequest *req,
                          Vecscan__V1__CreateCollectionResponse **resp, vsc_status *st);
int vsc_drop_collection(vsc_conn *c, const Vecscan__V1__DropCollectionRequest *req,
                        Vecscan__V1__DropCollectionResponse **resp, vsc_status *st);
int vsc_list_collections(vsc_conn *c, const Vecscan__V1__ListCollectionsRequest *req,
                         Vecscan__V1__ListCollectionsResponse **resp, vsc_status *st);
int vsc_describe_collection(vsc_conn *c, const Vecscan__V1__DescribeCollectionRequest *req,
                            Vecscan__V1__DescribeCollectionResponse **resp, vsc_status *st);
int vsc_upsert(vsc_conn *c, const Vecscan__V1__UpsertRequest *req,
               Vecscan__V1__UpsertResponse **resp, vsc_status *st);
int vsc_delete(vsc_conn *c, const Vecscan__V1__DeleteRequest *req,
               Vecscan__V1__DeleteResponse **resp, vsc_status *st);
int vsc_get(vsc_conn *c, const Vecscan__V1__GetRequest *req, Vecscan__V1__GetResponse **resp,
            vsc_status *st);
int vsc_search(vsc_conn *c, const Vecscan__V1__SearchRequest *req,
               Vecscan__V1__SearchResponse **resp, vsc_status *st);
int vsc_search_batch(vsc_conn *c, const Vecscan__V1__SearchBatchRequest *req,
                     Vecscan__V1__SearchBatchResponse **resp, vsc_status *st);
int vsc_stats(vsc_conn *c, const Vecscan__V1__StatsRequest *req,
              Vecscan__V1__StatsResponse **resp, vsc_status *st);
int vsc_snapshot(vsc_conn *c, const Vecscan__V1__SnapshotRequest *req,
                 Vecscan__V1__SnapshotResponse **resp, vsc_status *st);
/* grpc.health.v1.Health/Check of service ("" : the daemon as a whole). */
int vsc_health_check(vsc_conn *c, const char *service, Grpc__Health__V1__HealthCheckResponse **resp,
                     vsc_status *st);

/* Plain KNN: one vector on one field, k best (0: 10), an optional filter (NULL: none). */
int vsc_search_vector(vsc_conn *c, const char *collection, const char *field, const float *v,
                      uint32_t dim, uint32_t k, const char *filter,
                      Vecscan__V1__SearchResponse **resp, vsc_status *st);

/* ===== Streams ===== */

/* Opens a bidirectional stream of method path; incoming messages decode as resp_desc. timeout_s
 * as in vsc_unary_start (a deadline covers the whole stream). *out is the caller's, to end with
 * vsc_stream_finish. */
int vsc_stream_open(vsc_conn *c, const char *path, const ProtobufCMessageDescriptor *resp_desc,
                    double timeout_s, vsc_stream **out, vsc_status *st);
/* Opens StreamUpdates (mutations in, MutationAck out). */
int vsc_updates_open(vsc_conn *c, vsc_stream **out, vsc_status *st);
/* Queues msg on s. Blocks (driving the connection) while more than the send-queue bound is
 * unsent: that is HTTP/2 back-pressure reaching the caller. Fails when the stream has ended. */
int vsc_stream_send(vsc_stream *s, const ProtobufCMessage *msg, vsc_status *st);
/* Half-closes s: no more messages will be sent. */
int vsc_stream_close_send(vsc_stream *s, vsc_status *st);
/* Takes the next received message into *msg (caller's, vsc_free). Waits at most timeout_ms
 * (0: no wait; -1: until one arrives or the stream ends). Returns VSC_OK with *msg set, VSC_OK with
 * *msg NULL when none arrived in time, or when the stream has ended and every message was taken
 * (then vsc_stream_done is true), or an error when the connection broke. */
int vsc_stream_recv(vsc_stream *s, ProtobufCMessage **msg, int timeout_ms, vsc_status *st);
/* True once the daemon ended the stream (its status is known) and every message was taken. */
bool vsc_stream_done(const vsc_stream *s);
/* Bytes queued on s and not yet written to the socket. */
size_t vsc_stream_unsent(const vsc_stream *s);
/* Half-closes s if needed, waits for the daemon to end it (discarding messages not taken) and
 * reports its final status; frees s. Returns that status's code. */
int vsc_stream_finish(vsc_stream *s, vsc_status *st);
/* Resets s (RST_STREAM CANCEL) and frees it. */
void vsc_stream_cancel(vsc_stream *s);

#endif
