/*
 * index_internal.h: the index core's state, shared by its two halves, index.c (life and writes)
 * and search.c (queries, rerank, INTERLEAVE). Nothing outside index/ includes it.
 */
#ifndef VS_INDEX_INTERNAL_H
#define VS_INDEX_INTERNAL_H

#include "backend.h"
#include "cpu/kernels.h"
#include "idmap.h"
#include "index.h"

struct vs_index {
    uint32_t n_fields;
    vs_field_spec spec[VS_MAX_FIELDS];
    vs_field_layout layout[VS_MAX_FIELDS];
    vs_index_options opt;

    const vs_backend_ops *be;
    void *store;
    const vs_cpu_kernels *host; /* SIMD dot products for rerank, which runs on the host */

    /* Slots. Chunks of chunk_rows slots; ids[c] and rerank[f][c] are allocated once per chunk
     * and never move. The bitmaps are one array each, grown by doubling (N / 8 bytes). */
    uint32_t chunk_shift;
    uint32_t n_chunks, chunks_cap;
    uint64_t **ids;
    float **rerank[VS_MAX_FIELDS]; /* NULL for fields without a rerank copy */
    uint64_t *live;
    uint64_t *has[VS_MAX_FIELDS];
    size_t words_cap;

    uint32_t slot_limit; /* one past the highest slot ever used */
    uint64_t count;      /* live items */
    uint32_t *free_slots;
    size_t n_free, free_cap;
    vs_idmap map;
};

static inline uint32_t vs_ix_chunk_rows(const vs_index *ix) { return 1u << ix->chunk_shift; }

static inline int vs_bit_get(const uint64_t *w, uint32_t s) { return (int)((w[s >> 6] >> (s & 63)) & 1u); }
static inline void vs_bit_set(uint64_t *w, uint32_t s) { w[s >> 6] |= 1ull << (s & 63); }
static inline void vs_bit_clear(uint64_t *w, uint32_t s) { w[s >> 6] &= ~(1ull << (s & 63)); }

/* The exact f32 copy of field f in slot s (normalised for cosine), or NULL without rerank. */
static inline const float *vs_ix_rerank_row(const vs_index *ix, uint32_t f, uint32_t s)
{
    if (!ix->rerank[f])
        return NULL;
    uint32_t mask = vs_ix_chunk_rows(ix) - 1;
    return ix->rerank[f][s >> ix->chunk_shift] + (size_t)(s & mask) * ix->spec[f].dim;
}

/* The view of the bookkeeping a backend scan reads. */
void vs_ix_slot_view(const vs_index *ix, vs_slot_view *v);

#endif
