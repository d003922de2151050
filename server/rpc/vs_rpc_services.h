/*
 * vs_rpc_services.h: services the transport serves by itself: the standard gRPC health service
 * and a small test service (rpc_test.proto) used to test the transport without the engine.
 */
#ifndef VS_RPC_SERVICES_H
#define VS_RPC_SERVICES_H

#include <stdatomic.h>

#include "vs_rpc.h"

/* grpc.health.v1.Health/Check, served without the bearer token. *ready (the caller's, read on
 * every call) says SERVING; "" and "vecscan.v1.VecScan" are known services. */
vs_err vs_rpc_add_health(vs_rpc_server *s, const atomic_bool *ready, vs_status *st);

/* vecscan.rpctest.RpcTest (Echo, EchoStream) with its own worker thread. *out is the caller's,
 * freed with vs_rpc_test_service_destroy after the server is shut down. */
typedef struct vs_rpc_test_service vs_rpc_test_service;
vs_err vs_rpc_add_test_service(vs_rpc_server *s, vs_rpc_test_service **out, vs_status *st);
void vs_rpc_test_service_destroy(vs_rpc_test_service *t);

#endif
