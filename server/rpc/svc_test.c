/*
 * svc_test.c: vecscan.rpctest.RpcTest, a service for testing the transport alone.
 *
 * Echo answers at once on the loop thread, or (delay_ms > 0) from the worker thread after the
 * delay: the path an engine executor takes. EchoStream hands every message to the worker, which
 * answers `repeat` times and only then releases the message, so a slow worker back-pressures a
 * fast client through HTTP/2 flow control. The worker runs jobs in order.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "rpc_test.pb-c.h"
#include "vs_rpc_services.h"

typedef struct job {
    struct job *next;
    vs_rpc_call *call;
    Vecscan__Rpctest__EchoRequest *req; /* NULL: finish the call */
    bool unary;
    struct stream_state *ss;
} job;

/* Per streaming call; freed in on_free, when no callback can come any more. */
typedef struct stream_state {
    uint64_t n;           /* requests seen (worker) */
    bool finish_queued;   /* loop thread */
} stream_state;

struct vs_rpc_test_service {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, **tail;
    bool stop;
};

static void push(vs_rpc_test_service *t, job *j)
{
    pthread_mutex_lock(&t->mu);
    *t->tail = j;
    t->tail = &j->next;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void reply_echo(vs_rpc_call *call, const Vecscan__Rpctest__EchoRequest *req)
{
    if (req->code) {
        vs_rpc_finish(call, (vs_grpc_code)req->code, "%s", req->message ? req->message : "");
        return;
    }
    Vecscan__Rpctest__EchoResponse resp = VECSCAN__RPCTEST__ECHO_RESPONSE__INIT;
    resp.payload = req->payload;
    vs_rpc_reply(call, &resp.base);
}

static void *worker(void *arg)
{
    vs_rpc_test_service *t = arg;
    for (;;) {
        pthread_mutex_lock(&t->mu);
        while (!t->head && !t->stop) pthread_cond_wait(&t->cv, &t->mu);
        job *j = t->head;
        if (!j) {
            pthread_mutex_unlock(&t->mu);
            return NULL;
        }
        t->head = j->next;
        if (!t->head) t->tail = &t->head;
        pthread_mutex_unlock(&t->mu);
        if (j->unary) {
            const Vecscan__Rpctest__EchoRequest *req = j->req;
            sleep_ms(req->delay_ms);
            /* A cancelled call (deadline passed) is not worked on, as the engine will do. */
            if (vs_rpc_cancelled(j->call)) vs_rpc_finish(j->call, VS_GRPC_CANCELLED, NULL);
            else reply_echo(j->call, req);
        } else if (j->req) {
            Vecscan__Rpctest__EchoRequest *req = j->req;
            if (req->delay_ms) sleep_ms(req->delay_ms);
            j->ss->n++;
            uint32_t rep = req->repeat ? req->repeat : 1;
            Vecscan__Rpctest__EchoResponse resp = VECSCAN__RPCTEST__ECHO_RESPONSE__INIT;
            resp.payload = req->payload;
            resp.n = j->ss->n;
            for (uint32_t i = 0; i < rep && !req->code; i++) vs_rpc_send(j->call, &resp.base);
            vs_rpc_release(j->call, 1);
            protobuf_c_message_free_unpacked(&req->base, NULL);
        } else {
            vs_rpc_finish(j->call, VS_GRPC_OK, NULL);
        }
        free(j);
    }
}

static void echo(vs_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    const Vecscan__Rpctest__EchoRequest *req = (const Vecscan__Rpctest__EchoRequest *)msg;
    if (req->delay_ms == 0) {
        reply_echo(call, req);
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (!j) {
        vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    j->call = call;
    j->req = (Vecscan__Rpctest__EchoRequest *)req; /* owned by the call, valid until finish */
    j->unary = true;
    push(ctx, j);
}

static void stream_start(vs_rpc_call *call, void *ctx)
{
    vs_rpc_set_user(call, calloc(1, sizeof(stream_state)));
}

static void stream_msg(vs_rpc_call *call, ProtobufCMessage *msg, void *ctx)
{
    stream_state *ss = vs_rpc_user(call);
    Vecscan__Rpctest__EchoRequest *req = (Vecscan__Rpctest__EchoRequest *)msg;
    job *j = calloc(1, sizeof *j);
    if (!ss || !j || ss->finish_queued) {
        free(j);
        protobuf_c_message_free_unpacked(msg, NULL);
        vs_rpc_release(call, 1);
        return;
    }
    if (req->code && !ss->finish_queued) {
        /* A status request ends the stream with it, after the messages before it. */
        j->call = call;
        j->req = req;
        j->ss = ss;
        push(ctx, j);
        job *f = calloc(1, sizeof *f);
        if (!f) return;
        ss->finish_queued = true;
        f->call = call;
        f->ss = ss;
        push(ctx, f);
        return;
    }
    j->call = call;
    j->req = req;
    j->ss = ss;
    push(ctx, j);
}

static void stream_free_state(vs_rpc_call *call, void *user, void *ctx) { free(user); }

static void stream_end(vs_rpc_call *call, void *ctx)
{
    stream_state *ss = vs_rpc_user(call);
    if (ss && ss->finish_queued) return;
    job *f = calloc(1, sizeof *f);
    if (!f) {
        vs_rpc_finish(call, VS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        if (ss) ss->finish_queued = true;
        return;
    }
    if (ss) ss->finish_queued = true;
    f->call = call;
    f->ss = ss;
    push(ctx, f);
}

vs_err vs_rpc_add_test_service(vs_rpc_server *s, vs_rpc_test_service **out, vs_status *st)
{
    vs_rpc_test_service *t = calloc(1, sizeof *t);
    if (!t) return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->tail = &t->head;
    if (pthread_create(&t->th, NULL, worker, t) != 0) {
        free(t);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cannot start the test worker");
    }
    vs_rpc_method echo_m = {
        .path = "/vecscan.rpctest.RpcTest/Echo",
        .kind = VS_RPC_UNARY,
        .request = &vecscan__rpctest__echo_request__descriptor,
        .response = &vecscan__rpctest__echo_response__descriptor,
        .on_request = echo,
        .ctx = t,
    };
    vs_rpc_method stream_m = {
        .path = "/vecscan.rpctest.RpcTest/EchoStream",
        .kind = VS_RPC_BIDI,
        .request = &vecscan__rpctest__echo_request__descriptor,
        .response = &vecscan__rpctest__echo_response__descriptor,
        .on_start = stream_start,
        .on_message = stream_msg,
        .on_half_close = stream_end,
        .on_cancel = stream_end,
        .on_free = stream_free_state,
        .ctx = t,
    };
    vs_err e = vs_rpc_server_add(s, &echo_m, st);
    if (e == VS_OK) e = vs_rpc_server_add(s, &stream_m, st);
    *out = t;
    return e;
}

void vs_rpc_test_service_destroy(vs_rpc_test_service *t)
{
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->th, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}
