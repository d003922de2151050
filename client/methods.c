/*
 * methods.c: the VecScan service's methods (and the health check) as typed blocking calls over
 * vsc_unary, plus the StreamUpdates stream.
 */
#include <string.h>

#include "vecscan_client.h"

#define VS_SVC "/vecscan.v1.VecScan/"

/* One typed wrapper: name, method, request type, response type, response descriptor. */
#define VSC_METHOD(fn, method, Req, Resp, desc)                                                    \
    int fn(vsc_conn *c, const Req *req, Resp **resp, vsc_status *st)                               \
    {                                                                                              \
        ProtobufCMessage *m = NULL;                                                                \
        int rc = vsc_unary(c, VS_SVC method, &req->base, &desc, &m, st);                           \
        *resp = (Resp *)m;                                                                         \
        return rc;                                                                                 \
    }

VSC_METHOD(vsc_create_collection, "CreateCollection", Vecscan__V1__CreateCollectionRequest,
           Vecscan__V1__CreateCollectionResponse, vecscan__v1__create_collection_response__descriptor)
VSC_METHOD(vsc_drop_collection, "DropCollection", Vecscan__V1__DropCollectionRequest,
           Vecscan__V1__DropCollectionResponse, vecscan__v1__drop_collection_response__descriptor)
VSC_METHOD(vsc_list_collections, "ListCollections", Vecscan__V1__ListCollectionsRequest,
           Vecscan__V1__ListCollectionsResponse, vecscan__v1__list_collections_response__descriptor)
VSC_METHOD(vsc_describe_collection, "DescribeCollection", Vecscan__V1__DescribeCollectionRequest,
           Vecscan__V1__DescribeCollectionResponse,
           vecscan__v1__describe_collection_response__descriptor)
VSC_METHOD(vsc_upsert, "Upsert", Vecscan__V1__UpsertRequest, Vecscan__V1__UpsertResponse,
           vecscan__v1__upsert_response__descriptor)
VSC_METHOD(vsc_delete, "Delete", Vecscan__V1__DeleteRequest, Vecscan__V1__DeleteResponse,
           vecscan__v1__delete_response__descriptor)
VSC_METHOD(vsc_get, "Get", Vecscan__V1__GetRequest, Vecscan__V1__GetResponse,
           vecscan__v1__get_response__descriptor)
VSC_METHOD(vsc_search, "Search", Vecscan__V1__SearchRequest, Vecscan__V1__SearchResponse,
           vecscan__v1__search_response__descriptor)
VSC_METHOD(vsc_search_batch, "SearchBatch", Vecscan__V1__SearchBatchRequest,
           Vecscan__V1__SearchBatchResponse, vecscan__v1__search_batch_response__descriptor)
VSC_METHOD(vsc_stats, "Stats", Vecscan__V1__StatsRequest, Vecscan__V1__StatsResponse,
           vecscan__v1__stats_response__descriptor)
VSC_METHOD(vsc_snapshot, "Snapshot", Vecscan__V1__SnapshotRequest, Vecscan__V1__SnapshotResponse,
           vecscan__v1__snapshot_response__descriptor)

int vsc_health_check(vsc_conn *c, const char *service, Grpc__Health__V1__HealthCheckResponse **resp,
                     vsc_status *st)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)(service ? service : "");
    ProtobufCMessage *m = NULL;
    int rc = vsc_unary(c, "/grpc.health.v1.Health/Check", &req.base,
                       &grpc__health__v1__health_check_response__descriptor, &m, st);
    *resp = (Grpc__Health__V1__HealthCheckResponse *)m;
    return rc;
}

int vsc_search_vector(vsc_conn *c, const char *collection, const char *field, const float *v,
                      uint32_t dim, uint32_t k, const char *filter,
                      Vecscan__V1__SearchResponse **resp, vsc_status *st)
{
    Vecscan__V1__Vector vec = VECSCAN__V1__VECTOR__INIT;
    vec.n_values = dim;
    vec.values = (float *)v;
    Vecscan__V1__Vector *vecs[1] = {&vec};
    Vecscan__V1__Term term = VECSCAN__V1__TERM__INIT;
    term.field = (char *)(field ? field : "");
    term.n_vectors = 1;
    term.vectors = vecs;
    Vecscan__V1__Term *terms[1] = {&term};
    Vecscan__V1__Query q = VECSCAN__V1__QUERY__INIT;
    q.n_terms = 1;
    q.terms = terms;
    q.k = k;
    q.filter = (char *)(filter ? filter : "");
    Vecscan__V1__SearchRequest req = VECSCAN__V1__SEARCH_REQUEST__INIT;
    req.collection = (char *)collection;
    req.query = &q;
    return vsc_search(c, &req, resp, st);
}

int vsc_updates_open(vsc_conn *c, vsc_stream **out, vsc_status *st)
{
    return vsc_stream_open(c, VS_SVC "StreamUpdates", &vecscan__v1__mutation_ack__descriptor, -1, out,
                           st);
}
