/*
 * vs_api.h: vecscan.v1.VecScan on the transport: every method of proto/vecscan.proto decoded,
 * checked against the limits of DESIGN.md section 9, and handed to the engine (vs_engine.h).
 *
 * Searches and writes are asynchronous in the engine: their callbacks (executor and writer
 * threads) build the response and hand it to the loop with vs_rpc_reply. Calls that block in the
 * engine (create, drop, get, describe, list, stats, snapshot) run on a small pool of API worker
 * threads, never on the loop. Until vs_api_set_engine gives it an engine (recovery is running),
 * every method answers UNAVAILABLE.
 */
#ifndef VS_API_H
#define VS_API_H

#include <stdint.h>

#include "vs_rpc.h"

typedef struct vs_engine vs_engine;
typedef struct vs_metrics vs_metrics;

typedef struct vs_api_limits {
    uint32_t max_k;              /* 0 = 10,000 */
    uint32_t max_batch_queries;  /* queries per SearchBatch; 0 = 1,024 */
    uint64_t max_batch_results;  /* sum of k over a SearchBatch; 0 = 1,048,576 */
    uint32_t max_terms;          /* 0 = 8 */
    uint32_t max_term_vectors;   /* 0 = 16 */
    uint32_t max_dim;            /* 0 = 4,096 */
    uint32_t max_filter_bytes;   /* 0 = 16 KiB */
    uint32_t max_filter_depth;   /* parentheses and NOTs; 0 = 64 */
    uint32_t workers;            /* API worker threads; 0 = 2 */
    uint32_t worker_queue;       /* blocking calls queued; 0 = 1,024 */
    const char *device;          /* reported by Stats */
} vs_api_limits;

typedef struct vs_api vs_api;

/* Registers the VecScan methods on s and starts the workers. metrics (may be NULL) gets a
 * collector for the engine's gauges. *out is the caller's. */
vs_err vs_api_create(vs_rpc_server *s, const vs_api_limits *lim, vs_metrics *metrics, vs_api **out,
                     vs_status *st);
/* Serves e from now on (any thread); the caller keeps e and closes it after vs_api_stop. */
void vs_api_set_engine(vs_api *a, vs_engine *e);
/* Stops and joins the workers (calls they have not started are failed UNAVAILABLE). */
void vs_api_stop(vs_api *a);
void vs_api_destroy(vs_api *a);

/* The gRPC code of an engine error (a deadline reported as UNAVAILABLE "deadline exceeded..."
 * becomes DEADLINE_EXCEEDED). */
vs_grpc_code vs_api_code(vs_err e, const char *msg);

#endif
