/*
 * fuzz_grpc.c: libFuzzer target for the daemon's network input path: arbitrary bytes after the
 * HTTP/2 client preface go into a real vs_rpc server (nghttp2 session, gRPC framing, message
 * decoding, handlers) through a bufferevent pair, and the loop runs until it settles. The same
 * bytes also go through the gRPC message reader in pieces whose sizes they choose.
 *
 * The methods are trivial echo handlers answering on the loop thread (no worker threads, no
 * sleeps), so every input runs to completion; what is fuzzed is the transport.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "grpc_wire.h"
#include "health.pb-c.h"
#include "rpc_test.pb-c.h"
#include "vs_dlog.h"
#include "vs_rpc.h"

static void echo(vs_rpc_call *call, const ProtobufCMessage *m, void *ctx)
{
    const Vecscan__Rpctest__EchoRequest *q = (const void *)m;
    if (q->code) {
        vs_rpc_finish(call, (vs_grpc_code)(q->code & 15), "%s", q->message);
        return;
    }
    Vecscan__Rpctest__EchoResponse r = VECSCAN__RPCTEST__ECHO_RESPONSE__INIT;
    r.payload = q->payload;
    vs_rpc_reply(call, &r.base);
}

static void s_msg(vs_rpc_call *call, ProtobufCMessage *m, void *ctx)
{
    Vecscan__Rpctest__EchoResponse r = VECSCAN__RPCTEST__ECHO_RESPONSE__INIT;
    r.payload = ((Vecscan__Rpctest__EchoRequest *)m)->payload;
    vs_rpc_send(call, &r.base);
    protobuf_c_message_free_unpacked(m, NULL);
    vs_rpc_release(call, 1);
}

/* Ends the call once: on half-close, or on cancel if it comes first. */
static void s_start(vs_rpc_call *call, void *ctx) { vs_rpc_set_user(call, NULL); }
static void s_end(vs_rpc_call *call, void *ctx)
{
    if (vs_rpc_user(call)) return;
    vs_rpc_set_user(call, (void *)1);
    vs_rpc_finish(call, VS_GRPC_OK, NULL);
}

static void fuzz_reader(const uint8_t *data, size_t size)
{
    vs_grpc_reader rd;
    vs_grpc_reader_init(&rd, 1 << 16);
    size_t off = 0;
    while (off < size) {
        size_t chunk = 1 + data[off] % 64;
        if (chunk > size - off) chunk = size - off;
        const uint8_t *p = data + off;
        size_t left = chunk;
        while (left) {
            size_t used;
            uint8_t *msg;
            size_t mlen;
            vs_grpc_read_result r = vs_grpc_reader_feed(&rd, p, left, &used, &msg, &mlen);
            free(msg);
            if (r != VS_GRPC_READ_MESSAGE && r != VS_GRPC_READ_MORE) goto done;
            p += used;
            left -= used;
            if (r == VS_GRPC_READ_MORE) break;
        }
        off += chunk;
    }
done:
    vs_grpc_reader_free(&rd);
    uint64_t ns;
    vs_grpc_parse_timeout((const char *)data, size < 12 ? size : 12, &ns);
}

/* Appends one HTTP/2 frame header to out. */
static size_t frame_hdr(uint8_t *out, size_t len, uint8_t type, uint8_t flags, uint32_t id)
{
    out[0] = (uint8_t)(len >> 16);
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)len;
    out[3] = type;
    out[4] = flags;
    out[5] = (uint8_t)(id >> 24);
    out[6] = (uint8_t)(id >> 16);
    out[7] = (uint8_t)(id >> 8);
    out[8] = (uint8_t)id;
    return 9;
}

/* HPACK literal header field without indexing, no Huffman (names and values < 127 bytes). */
static size_t hpack_lit(uint8_t *out, const char *n, const char *v)
{
    size_t nl = strlen(n), vl = strlen(v), o = 0;
    out[o++] = 0;
    out[o++] = (uint8_t)nl;
    memcpy(out + o, n, nl);
    o += nl;
    out[o++] = (uint8_t)vl;
    memcpy(out + o, v, vl);
    return o + vl;
}

/*
 * Modes, by the first byte: 0: the bytes are raw HTTP/2 frames. 1, 2: a valid request HEADERS
 * frame for the unary (1) or streaming (2) method on stream 1, then the bytes as the payload of
 * DATA frames whose sizes the bytes choose, so that the gRPC framing and decoding get the input.
 */
static uint8_t *build_input(const uint8_t *data, size_t size, size_t *out_len)
{
    int mode = size ? data[0] % 3 : 0;
    uint8_t *out = malloc(size * 5 + 512); /* a 1-byte chunk: 2 bytes in, 10 out */
    size_t o = 0;
    if (!out) abort();
    if (mode == 0 || size < 2) {
        memcpy(out, data, size);
        *out_len = size;
        return out;
    }
    uint8_t hb[256];
    size_t hl = 0;
    hl += hpack_lit(hb + hl, ":method", "POST");
    hl += hpack_lit(hb + hl, ":scheme", "http");
    hl += hpack_lit(hb + hl, ":path", mode == 1 ? "/t.T/E" : "/t.T/S");
    hl += hpack_lit(hb + hl, ":authority", "x");
    hl += hpack_lit(hb + hl, "content-type", "application/grpc");
    if (data[1] & 2) hl += hpack_lit(hb + hl, "grpc-timeout", "1m");
    if (data[1] & 4) hl += hpack_lit(hb + hl, "authorization", "Bearer tok");
    o += frame_hdr(out + o, hl, 1 /* HEADERS */, 4 /* END_HEADERS */, 1);
    memcpy(out + o, hb, hl);
    o += hl;
    size_t off = 2;
    while (off < size) {
        size_t chunk = 1 + data[off] % 200;
        off++;
        if (chunk > size - off) chunk = size - off;
        bool last = off + chunk >= size;
        o += frame_hdr(out + o, chunk, 0 /* DATA */, last && (data[1] & 1) ? 1 : 0, 1);
        memcpy(out + o, data + off, chunk);
        o += chunk;
        off += chunk;
    }
    *out_len = o;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    vs_dlog_set_level(VS_DLOG_ERROR);
    fuzz_reader(data, size);

    struct event_base *base = event_base_new();
    vs_rpc_server *s;
    vs_status st;
    vs_rpc_options o = {.max_message_bytes = 1 << 16, .max_stream_pending = 4, .max_stream_out_bytes = 4096,
                        .auth_token = (size > 1 && data[1] & 8) ? "tok" : NULL};
    if (vs_rpc_server_create(base, &o, &s, &st) != VS_OK) abort();
    vs_rpc_method m1 = {.path = "/t.T/E", .kind = VS_RPC_UNARY,
                        .request = &vecscan__rpctest__echo_request__descriptor,
                        .response = &vecscan__rpctest__echo_response__descriptor, .on_request = echo};
    vs_rpc_method m2 = {.path = "/t.T/S", .kind = VS_RPC_BIDI,
                        .request = &vecscan__rpctest__echo_request__descriptor,
                        .response = &vecscan__rpctest__echo_response__descriptor, .on_start = s_start,
                        .on_message = s_msg, .on_half_close = s_end, .on_cancel = s_end};
    vs_rpc_server_add(s, &m1, &st);
    vs_rpc_server_add(s, &m2, &st);
    struct bufferevent *pair[2];
    if (bufferevent_pair_new(base, 0, pair) != 0) abort();
    vs_rpc_server_adopt(s, pair[0], &st);
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    bufferevent_write(pair[1], preface, sizeof preface - 1);
    size_t in_len;
    uint8_t *in = build_input(data, size, &in_len);
    bufferevent_write(pair[1], in, in_len);
    free(in);
    for (int i = 0; i < 16; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        evbuffer_drain(bufferevent_get_input(pair[1]), evbuffer_get_length(bufferevent_get_input(pair[1])));
    }
    bufferevent_free(pair[1]);
    for (int i = 0; i < 4; i++) event_base_loop(base, EVLOOP_NONBLOCK);
    vs_rpc_server_destroy(s);
    event_base_free(base);
    return 0;
}
