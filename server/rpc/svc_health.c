/*
 * svc_health.c: grpc.health.v1.Health/Check (see vs_rpc_services.h).
 */
#include <string.h>

#include "health.pb-c.h"
#include "vs_rpc_services.h"

static void check(vs_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    const Grpc__Health__V1__HealthCheckRequest *req = (const Grpc__Health__V1__HealthCheckRequest *)msg;
    const atomic_bool *ready = ctx;
    const char *svc = req->service ? req->service : "";
    if (*svc && strcmp(svc, "vecscan.v1.VecScan") != 0) {
        vs_rpc_finish(call, VS_GRPC_NOT_FOUND, "unknown service '%s'", svc);
        return;
    }
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = atomic_load(ready) ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                                     : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    vs_rpc_reply(call, &resp.base);
}

vs_err vs_rpc_add_health(vs_rpc_server *s, const atomic_bool *ready, vs_status *st)
{
    vs_rpc_method m = {
        .path = "/grpc.health.v1.Health/Check",
        .kind = VS_RPC_UNARY,
        .request = &grpc__health__v1__health_check_request__descriptor,
        .response = &grpc__health__v1__health_check_response__descriptor,
        .on_request = check,
        .ctx = (void *)ready,
        .no_auth = true,
    };
    return vs_rpc_server_add(s, &m, st);
}
