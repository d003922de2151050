/* example.c: libvecscan-client in a few lines (the README's example). Creates a collection, upserts
 * two items, searches, prints the hits. Usage: vecscan-client-example [HOST:PORT] */
#include <stdio.h>

#include "vecscan_client.h"

int main(int argc, char **argv)
{
    vsc_conn *c;
    vsc_status st;
    if (vsc_connect(argc > 1 ? argv[1] : "127.0.0.1:7070", NULL, &c, &st) != VSC_OK) {
        fprintf(stderr, "%s\n", st.message);
        return 1;
    }
    vsc_set_timeout(c, 5.0); /* every call: a 5 s deadline */

    /* a collection with one 3-dim cosine field */
    Vecscan__V1__VectorField field = VECSCAN__V1__VECTOR_FIELD__INIT, *fields[] = {&field};
    field.name = "emb";
    field.dim = 3;
    field.metric = VECSCAN__V1__METRIC__METRIC_COSINE;
    Vecscan__V1__Schema schema = VECSCAN__V1__SCHEMA__INIT;
    schema.n_vectors = 1;
    schema.vectors = fields;
    Vecscan__V1__CreateCollectionRequest create = VECSCAN__V1__CREATE_COLLECTION_REQUEST__INIT;
    create.name = "example";
    create.schema = &schema;
    Vecscan__V1__CreateCollectionResponse *created;
    if (vsc_create_collection(c, &create, &created, &st) == VSC_OK) vsc_free(created);
    else if (st.code != VSC_ALREADY_EXISTS) goto fail;

    /* two items */
    float a[3] = {1, 0, 0}, b[3] = {0, 1, 0};
    Vecscan__V1__Vector va = VECSCAN__V1__VECTOR__INIT, vb = VECSCAN__V1__VECTOR__INIT;
    Vecscan__V1__Vector *pa[] = {&va}, *pb[] = {&vb};
    va.field = vb.field = "emb";
    va.n_values = vb.n_values = 3;
    va.values = a;
    vb.values = b;
    Vecscan__V1__Item ia = VECSCAN__V1__ITEM__INIT, ib = VECSCAN__V1__ITEM__INIT, *items[] = {&ia, &ib};
    ia.id = 1, ia.n_vectors = 1, ia.vectors = pa;
    ib.id = 2, ib.n_vectors = 1, ib.vectors = pb;
    Vecscan__V1__UpsertRequest up = VECSCAN__V1__UPSERT_REQUEST__INIT;
    up.collection = "example";
    up.n_items = 2;
    up.items = items;
    Vecscan__V1__UpsertResponse *ack;
    if (vsc_upsert(c, &up, &ack, &st) != VSC_OK) goto fail;
    printf("upserted, seq %llu\n", (unsigned long long)ack->seq);

    /* search, reading our own writes (min_seq = the ack's seq) */
    float q[3] = {0.9f, 0.1f, 0};
    Vecscan__V1__Vector vq = VECSCAN__V1__VECTOR__INIT, *pq[] = {&vq};
    vq.n_values = 3;
    vq.values = q;
    Vecscan__V1__Term term = VECSCAN__V1__TERM__INIT, *terms[] = {&term};
    term.field = "emb";
    term.n_vectors = 1;
    term.vectors = pq;
    Vecscan__V1__Query query = VECSCAN__V1__QUERY__INIT;
    query.n_terms = 1;
    query.terms = terms;
    query.k = 2;
    Vecscan__V1__SearchRequest sr = VECSCAN__V1__SEARCH_REQUEST__INIT;
    sr.collection = "example";
    sr.query = &query;
    sr.min_seq = ack->seq;
    vsc_free(ack);
    Vecscan__V1__SearchResponse *res;
    if (vsc_search(c, &sr, &res, &st) != VSC_OK) goto fail;
    for (size_t i = 0; i < res->result->n_hits; i++)
        printf("id %llu score %.4f\n", (unsigned long long)res->result->hits[i]->id, res->result->hits[i]->score);
    vsc_free(res);
    vsc_close(c);
    return 0;
fail:
    fprintf(stderr, "%s: %s\n", vsc_code_name(st.code), st.message); /* e.g. UNAVAILABLE: cannot connect ... */
    vsc_close(c);
    return 1;
}
