/*
 * backend.h: what a compute backend (index/cpu/, index/cuda/) provides to the index core.
 *
 * The split, as in ggml: the core (index/index.c) owns everything that is bookkeeping and stays in
 * host memory: the id -> slot map, slot -> id, the live bitmap, which fields each slot has, the
 * exact f32 rerank copies, quantization of rows and queries, rerank, INTERLEAVE merging. A backend
 * owns the encoded rows of each field (where they live: RAM or device memory) and the scan: score a
 * batch of prepared queries against every allowed live slot and keep each query's best k.
 *
 * The core never includes a backend's headers beyond this one, and a backend never calls back into
 * the core: everything a scan needs arrives in the vs_scan_batch and the vs_slot_view.
 */
#ifndef VS_BACKEND_H
#define VS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "index.h"

/* ===== Row encodings (produced by index/quant.c) =====
 * f32: dim floats.
 * f16: dim IEEE halves h with x ~= scale * h: the row as given times a power of two (exact), and
 *      scale undoes it (and divides by |x| for cosine, so q.(scale * h) is the cosine).
 * i8:  dim int8 codes c, x ~= middle + scale * c (c in [-128, 127]).
 * b1:  b1_bits(dim) / 64 uint64 words, bit j = sign of rotated coordinate j.
 * cosine rows are normalised (f16: through its scale); norm2 is |x|^2 (1 for cosine), used by l2. */
typedef struct vs_row_consts {
    float middle; /* i8 only */
    float scale;  /* i8 and f16 */
    float norm2;  /* |x|^2, exact, before quantization */
} vs_row_consts;

/* Shape of one field as the backend stores it. */
typedef struct vs_field_layout {
    uint32_t dim;
    vs_metric metric;
    vs_storage storage;
    uint32_t code_bytes; /* bytes of one encoded row */
    uint32_t b1_words;   /* b1 only: uint64 words per row */
} vs_field_layout;

/* ===== The host bookkeeping a scan reads (owned by the core, read-only for the backend) ===== */
typedef struct vs_slot_view {
    uint32_t slot_limit;            /* slots [0, slot_limit) may be live */
    uint32_t chunk_shift;           /* log2(rows per chunk) */
    const uint64_t *live;           /* bit s = slot s is live */
    const uint64_t *has[VS_MAX_FIELDS]; /* bit s = slot s has field f */
    uint64_t *const *ids;           /* ids[s >> chunk_shift][s & mask] = id in slot s */
} vs_slot_view;

static inline uint64_t vs_slot_view_id(const vs_slot_view *v, uint32_t s)
{
    return v->ids[s >> v->chunk_shift][s & ((1u << v->chunk_shift) - 1)];
}

/* ===== A prepared batch ===== */

/* Query vectors of one field, prepared for its storage: n rows. */
typedef struct vs_field_queries {
    uint32_t n;
    const float *f;       /* n x dim: the query as f32 (normalised for cosine); every storage */
    const int8_t *c;      /* i8: n x dim codes, q ~= scale * c */
    const float *scale;   /* i8: n */
    const float *sum;     /* i8: n, sum of the f32 values (pairs with the rows' middle) */
    const int32_t *csum;  /* i8: n, sum of the codes */
    const uint64_t *bits; /* b1: n x b1_words */
    const float *norm2;   /* n, |q|^2 (l2) */
} vs_field_queries;

typedef struct vs_scan_term {
    uint32_t field;
    uint32_t first;  /* first query vector in batch->fq[field] */
    uint32_t n_vecs; /* the term's score is the max over these */
    float weight;
} vs_scan_term;

/* One query as the backend sees it: SUM or MAX (the core splits INTERLEAVE into one query per
 * term), k candidates wanted. */
typedef struct vs_scan_query {
    const vs_scan_term *terms;
    uint32_t n_terms;
    vs_combine combine;        /* VS_COMBINE_SUM or VS_COMBINE_MAX */
    const vs_slotset *allowed; /* NULL = every live slot */
    uint32_t k;
} vs_scan_query;

typedef struct vs_scan_batch {
    uint32_t n_queries;
    const vs_scan_query *queries;
    vs_field_queries fq[VS_MAX_FIELDS];
} vs_scan_batch;

/* A candidate: best first per query, ties broken by smaller id. */
typedef struct vs_cand {
    float score;
    uint32_t slot;
    uint64_t id;
} vs_cand;

/* ===== The table of functions ===== */
typedef struct vs_backend_ops {
    const char *name;

    /* Creates storage for a collection of n_fields fields; *store is the backend's. */
    vs_err (*create)(const vs_field_layout *fields, uint32_t n_fields, const vs_index_options *opt,
                     void **store, vs_status *st);
    void (*destroy)(void *store);

    /* Makes room for slots [0, n_slots): grows by whole chunks, never moves rows. */
    vs_err (*reserve)(void *store, uint32_t n_slots, vs_status *st);

    /* Writes n encoded rows of field f to slots[i]: codes is n x code_bytes, consts n entries. */
    vs_err (*write_rows)(void *store, uint32_t field, const uint32_t *slots, size_t n,
                         const void *codes, const vs_row_consts *consts, vs_status *st);

    /* (optional) Told after every write which slots changed in the slot view (live, has, id), so a
     * device backend can mirror them before its next scan. */
    void (*slots_changed)(void *store, const uint32_t *slots, size_t n);

    /* Scans: out has n_queries x max k entries (query q at out + q * stride), counts[q] filled. */
    vs_err (*scan)(void *store, const vs_slot_view *view, const vs_scan_batch *batch, vs_cand *out,
                   size_t stride, uint32_t *counts, vs_status *st);

    /* Decodes field f of slot s into dim floats (as stored: normalised for cosine). */
    void (*read_row)(void *store, uint32_t field, uint32_t slot, float *out);

    /* Bytes allocated for field f (codes and per-row constants, whole chunks). */
    size_t (*field_bytes)(void *store, uint32_t field);

    /* (optional, device backends) Bytes the store holds on its device; no runtime call. */
    uint64_t (*device_bytes)(void *store);
} vs_backend_ops;

extern const vs_backend_ops vs_cpu_backend;
#ifdef VS_HAVE_CUDA
extern const vs_backend_ops vs_cuda_backend;
/* Free and total bytes of device ordinal; false when the runtime cannot say. */
bool vs_cuda_memory_info(int ordinal, uint64_t *free_bytes, uint64_t *total_bytes);
#endif

#endif
