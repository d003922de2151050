/*
 * index.h: libvecscan's index, the public face of index/.
 *
 * An index holds items (a caller-chosen uint64 id each) with up to 8 vector fields, each stored
 * quantized (f32, f16, i8, b1) and optionally with an exact f32 copy for reranking. Every search
 * scores every live item (no approximate graph), restricted to an allowed-slot set when the caller
 * has one, and returns the k best per query: higher score is better, ties go to the smaller id.
 *
 * Inside, items live in slots (dense row numbers) held in fixed-size chunks that are added as the
 * index grows and never moved; deleted slots are reused. The index knows nothing of files, the
 * network or threads outside a search call: the engine above it decides when writes and searches
 * run, and never runs them at the same time on one index.
 */
#ifndef VS_INDEX_H
#define VS_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vs_slotset.h"
#include "vs_status.h"

#define VS_MAX_FIELDS 8
#define VS_MAX_DIM 4096
#define VS_MAX_K 10000
#define VS_MAX_TERMS 8
#define VS_MAX_TERM_VECTORS 16
#define VS_FIELD_NAME_MAX 64

typedef enum vs_metric { VS_METRIC_IP = 0, VS_METRIC_COSINE, VS_METRIC_L2 } vs_metric;
typedef enum vs_storage { VS_STORAGE_F32 = 0, VS_STORAGE_F16, VS_STORAGE_I8, VS_STORAGE_B1 } vs_storage;
typedef enum vs_combine { VS_COMBINE_SUM = 0, VS_COMBINE_MAX, VS_COMBINE_INTERLEAVE } vs_combine;
typedef enum vs_device { VS_DEVICE_CPU = 0, VS_DEVICE_CUDA } vs_device;

typedef struct vs_field_spec {
    char name[VS_FIELD_NAME_MAX + 1]; /* [A-Za-z0-9_-]{1,64} */
    uint32_t dim;                     /* 1 .. VS_MAX_DIM */
    vs_metric metric;
    vs_storage storage;
    bool rerank; /* keep an f32 copy in host memory to rescore candidates exactly; required by b1 */
} vs_field_spec;

typedef struct vs_index_options {
    vs_device device;     /* VS_DEVICE_CPU unless a CUDA build asks for a GPU */
    int device_ordinal;   /* cuda:N */
    uint32_t chunk_rows;  /* rows per chunk, a power of two; 0 = 65536 */
    uint32_t n_threads;   /* CPU search threads; 0 = every online core */
} vs_index_options;

typedef struct vs_index vs_index;

/* Creates an empty index with n_fields fields. The caller keeps fields; *out is the caller's, to
 * free with vs_index_destroy. */
vs_err vs_index_create(const vs_field_spec *fields, uint32_t n_fields, const vs_index_options *opt,
                       vs_index **out, vs_status *st);
void vs_index_destroy(vs_index *ix);

uint32_t vs_index_n_fields(const vs_index *ix);
const vs_field_spec *vs_index_field(const vs_index *ix, uint32_t field);
/* Field number of name, or -1. */
int vs_index_field_by_name(const vs_index *ix, const char *name);
/* Live items. */
uint64_t vs_index_count(const vs_index *ix);
/* One past the highest slot ever used: the size an allowed-slot bitmap must cover. */
uint32_t vs_index_slot_limit(const vs_index *ix);
/* Bytes field f takes for the slots in use: encoded rows, per-row constants and the rerank copy.
 * (Chunks are allocated whole, but their untouched tails cost address space, not memory.) */
size_t vs_index_field_bytes(const vs_index *ix, uint32_t field);
/* The backend's name: "cpu" or "cuda". */
const char *vs_index_backend_name(const vs_index *ix);

/* Bytes the index holds on its device (rows, ids, bitmaps, scan buffers) into *held; false (and
 * 0) on the CPU backend. Cheap: no call into the device runtime. */
bool vs_index_device_bytes(const vs_index *ix, uint64_t *held);

/* The free and total memory of device ordinal of kind d, as its driver reports them; false when d
 * is not a device this build has (or the driver cannot say). */
bool vs_device_memory_info(vs_device d, int ordinal, uint64_t *free_bytes, uint64_t *total_bytes);

/* ===== Writes ===== */

/* One item's vectors: vectors[f] is the f32 vector of field f (dim floats) or NULL when the item
 * does not have (upsert) or does not change (patch) that field. */
typedef struct vs_item_vectors {
    uint64_t id;
    const float *vectors[VS_MAX_FIELDS];
} vs_item_vectors;

/* Upsert: each item becomes exactly what is given (fields left NULL are absent). Values are
 * checked first (finite; a cosine vector must not be zero); on error nothing is changed. slot_out,
 * when not NULL, receives each item's slot. */
vs_err vs_index_upsert(vs_index *ix, const vs_item_vectors *items, size_t n, uint32_t *slot_out,
                       vs_status *st);
/* Patch: the given fields replace those of existing items, the rest stay. An id that does not
 * exist is created, as an upsert would. clear_mask bit f removes field f from the item. */
vs_err vs_index_patch(vs_index *ix, const vs_item_vectors *items, const uint32_t *clear_mask,
                      size_t n, uint32_t *slot_out, vs_status *st);
/* Deletes ids; existed (when not NULL) says for each whether it was there. Never fails on an absent
 * id. */
vs_err vs_index_delete(vs_index *ix, const uint64_t *ids, size_t n, bool *existed, vs_status *st);

/* Slot of id, or false when absent. */
bool vs_index_lookup(const vs_index *ix, uint64_t id, uint32_t *slot);
/* Id in slot s, or false when s is free. */
bool vs_index_slot_id(const vs_index *ix, uint32_t s, uint64_t *id);
/* Whether item has field f; the f32 values as the index keeps them (the rerank copy when there is
 * one, else the decoded storage) go into out (dim floats) when not NULL. */
bool vs_index_get_vector(const vs_index *ix, uint64_t id, uint32_t f, float *out);
/* The live bitmap's words (bit s = slot s holds an item), covering vs_index_slot_limit() bits. The
 * pointer is valid until the next write. */
const uint64_t *vs_index_live_words(const vs_index *ix);

/* ===== Search ===== */

typedef struct vs_term {
    uint32_t field;
    uint32_t n_vectors;    /* 1 .. VS_MAX_TERM_VECTORS; the term's score is the max over them */
    const float *vectors;  /* n_vectors x dim floats */
    float weight;          /* finite, > 0 */
} vs_term;

typedef struct vs_query {
    const vs_term *terms;
    uint32_t n_terms;      /* 1 .. VS_MAX_TERMS */
    vs_combine combine;
    const vs_slotset *allowed; /* NULL = every live item */
} vs_query;

typedef struct vs_search_params {
    uint32_t k;             /* 1 .. VS_MAX_K */
    uint32_t rerank_factor; /* candidates = k x factor, rescored exactly from the rerank copy;
                               0 = the default: 1 (no rerank), or 10 when a queried field is b1 */
} vs_search_params;

typedef struct vs_hit {
    uint64_t id;
    float score;
} vs_hit;

/* Scores a batch of queries. hits has n_queries x k entries: query q's results are
 * hits[q * k .. q * k + counts[q]), best first; counts[q] = min(k, items that pass). */
vs_err vs_index_search(vs_index *ix, const vs_query *queries, size_t n_queries,
                       const vs_search_params *params, vs_hit *hits, uint32_t *counts,
                       vs_status *st);

/* ===== Names ===== */
const char *vs_metric_name(vs_metric m);
const char *vs_storage_name(vs_storage s);
const char *vs_combine_name(vs_combine c);
bool vs_metric_parse(const char *s, vs_metric *out);
bool vs_storage_parse(const char *s, vs_storage *out);
bool vs_combine_parse(const char *s, vs_combine *out);

#endif
