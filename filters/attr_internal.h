/*
 * attr_internal.h: the store's inside, shared by the attr_* files and the filter evaluator.
 * Not installed; nothing outside filters/ includes it.
 */
#ifndef VS_ATTR_INTERNAL_H
#define VS_ATTR_INTERNAL_H

#include <roaring/roaring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "vs_attr_store.h"

/* The evaluator reads CRoaring 0.2.x's container layout directly (attr_block.c). CRoaring's version
 * numbers are enum constants, invisible to the preprocessor, so the test is whether roaring.h
 * still exposes the container type codes (later releases hide them); attr_block.c then asserts
 * the version at compile time. Otherwise, or with -DVS_ROARING_PORTABLE, the public iterator. */
#if !defined(VS_ROARING_PORTABLE) &&                                                              \
    !(defined(BITSET_CONTAINER_TYPE_CODE) && defined(SHARED_CONTAINER_TYPE_CODE))
#define VS_ROARING_PORTABLE 1
#endif

/* ===== Chunks and blocks =====
 * Per-slot arrays are chunks of 65536 slots, the same span as one CRoaring container, so one
 * "block" of the evaluator (1024 words of 64 bits) lines up with one container of each bitmap. */
#define VS_ATTR_CHUNK_SHIFT 16
#define VS_ATTR_CHUNK (1u << VS_ATTR_CHUNK_SHIFT)
#define VS_ATTR_CHUNK_WORDS (VS_ATTR_CHUNK / 64)

/* A slot's tags: n = 0 none; n = 1 the code is v; n > 1 v indexes the store's multi-value pool,
 * whose array holds the n codes in ascending order. Codes fit 32 bits (VS_ATTR_DICT_MAX_CODES). */
typedef struct vs_attr_cell {
    uint32_t n;
    uint32_t v;
} vs_attr_cell;

/* A bin of the int range index: the present slots whose value is in [lo, next bin's lo). */
typedef struct vs_attr_bin {
    int64_t lo;
    int64_t vmin, vmax; /* bounds on the values inside (exact after a split, loose after removals;
                           vmin > vmax when the bin is empty) */
    uint64_t n;         /* slots in the bin */
    uint64_t retry_at;  /* do not try to split again before the bin holds this many */
    roaring_bitmap_t *slots;
} vs_attr_bin;

/* One inclusive range of int64 values. */
typedef struct vs_attr_range {
    int64_t lo, hi;
} vs_attr_range;

typedef struct vs_attr_col {
    vs_attr_type type;
    roaring_bitmap_t *present; /* slots that have the field */
    uint64_t n_present;
    uint32_t n_chunks;         /* length of the chunk tables below */
    /* tag */
    vs_attr_dict *dict;
    roaring_bitmap_t **post; /* by code, NULL while no slot holds the value */
    uint32_t post_cap;
    vs_attr_cell **cells;    /* by chunk, NULL until a slot of it is set */
    uint32_t **multi;        /* multi-value pool */
    uint32_t n_multi, cap_multi;
    uint32_t *free_multi; /* free pool entries */
    uint32_t n_free_multi, cap_free_multi;
    /* int */
    int64_t **vals;   /* by chunk */
    uint64_t **bits;  /* by chunk: presence, one bit per slot */
    vs_attr_bin *bins; /* ascending lo; bins[0].lo = INT64_MIN */
    uint32_t n_bins, cap_bins;
} vs_attr_col;

struct vs_attr_store {
    vs_attr_schema *schema;
    vs_attr_col *cols;
    uint32_t n_cols;
    uint64_t slot_limit;
    uint32_t bin_min;
};

/* Returns p grown (by doubling) to hold at least need elements of size elem, updating *cap; when
 * p already holds need, p itself; when out of memory, p unchanged with *cap unchanged. */
static inline void *vs_attr_grow_ptr(void *p, uint32_t *cap, uint64_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    uint64_t c = *cap ? *cap : 8;
    while (c < need)
        c *= 2;
    if (c > UINT32_MAX)
        c = UINT32_MAX;
    if (c < need)
        return p;
    void *q = realloc(p, (size_t)c * elem);
    if (!q)
        return p;
    *cap = (uint32_t)c;
    return q;
}

/* Grows array arr (capacity cap, a uint32_t lvalue) to hold need elements; true on success, false
 * when out of memory (arr and cap unchanged). need is evaluated twice. */
#define VS_ATTR_GROW(arr, cap, need)                                                              \
    ((arr) = vs_attr_grow_ptr((arr), &(cap), (need), sizeof *(arr)), (uint64_t)(need) <= (cap))

/* Frees bitmap b; NULL is fine (CRoaring 0.2.66's roaring_bitmap_free crashes on NULL). */
static inline void vs_attr_bm_free(roaring_bitmap_t *b)
{
    if (b)
        roaring_bitmap_free(b);
}

/* The codes of slot's cell in column c (ascending); *n gets their number. */
static inline const uint32_t *vs_attr_cell_codes(const vs_attr_col *c, uint32_t slot, uint32_t *n)
{
    uint32_t ch = slot >> VS_ATTR_CHUNK_SHIFT;
    if (ch >= c->n_chunks || !c->cells[ch]) {
        *n = 0;
        return NULL;
    }
    const vs_attr_cell *cell = &c->cells[ch][slot & (VS_ATTR_CHUNK - 1)];
    *n = cell->n;
    if (cell->n == 1)
        return &cell->v;
    return cell->n ? c->multi[cell->v] : NULL;
}

/* Whether slot has int column c, and its value in *v. */
static inline bool vs_attr_int_at(const vs_attr_col *c, uint32_t slot, int64_t *v)
{
    uint32_t ch = slot >> VS_ATTR_CHUNK_SHIFT, i = slot & (VS_ATTR_CHUNK - 1);
    if (ch >= c->n_chunks || !c->bits[ch] || !((c->bits[ch][i >> 6] >> (i & 63)) & 1))
        return false;
    *v = c->vals[ch][i];
    return true;
}

/* Whether v lies in one of the sorted, disjoint ranges r[0 .. n). */
static inline bool vs_attr_ranges_has(const vs_attr_range *r, uint32_t n, int64_t v)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r[mid].hi < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && r[lo].lo <= v;
}

/* ===== The int range index (attr_bins.c) ===== */

/* Gives column c its first bin, covering every value; false when out of memory. */
bool vs_attr_bins_init(vs_attr_col *c);

/* Frees c's bins. */
void vs_attr_bins_free(vs_attr_col *c);

/* Puts slot (whose value v is already in the column) into its bin, splitting the bin when it has
 * grown past the limit (a split that runs out of memory is simply tried again later). */
void vs_attr_bins_add(vs_attr_store *s, vs_attr_col *c, uint32_t slot, int64_t v);

/* Takes slot (whose value was v) out of its bin. */
void vs_attr_bins_remove(vs_attr_col *c, uint32_t slot, int64_t v);

/* An upper bound on how many slots hold a value in the ranges r[0 .. n) (sorted, disjoint, not
 * adjacent): the sizes of the bins the ranges touch. */
uint64_t vs_attr_bins_estimate(const vs_attr_col *c, const vs_attr_range *r, uint32_t n);

/* The slots of an int column whose value lies in some ranges, as the bins give them: whole bins
 * plus the slots of the cut bins that pass, or, when more than half the column passes, the
 * complement (present minus the whole bins outside and the failing slots of the cut bins). The
 * bins stay the column's; the edge array is the select's own. */
typedef struct vs_attr_select {
    const roaring_bitmap_t **bins;
    uint32_t n_bins, cap_bins;
    uint32_t *edge; /* ascending */
    uint32_t n_edge, cap_edge;
    bool complement;
} vs_attr_select;

/* Fills sel (reusing its buffers) for the ranges r[0 .. n); false when out of memory. */
bool vs_attr_bins_select(const vs_attr_col *c, const vs_attr_range *r, uint32_t n,
                         vs_attr_select *sel);

/* Frees sel's buffers. */
void vs_attr_select_free(vs_attr_select *sel);

/* Checks the bins of c against its values; false with a message in st when they disagree. */
bool vs_attr_bins_check(const vs_attr_col *c, uint32_t field, vs_status *st);

/* ===== Slot sets: bitmaps and sorted arrays into word blocks (attr_block.c) ===== */

/* A set of slots: a CRoaring bitmap, or an ascending array (arr[0 .. n)); neither is the empty
 * set. The source does not own either. */
typedef struct vs_attr_source {
    const roaring_bitmap_t *bm;
    const uint32_t *arr;
    uint64_t n;
} vs_attr_source;

/* A cursor walking one source's 65536-slot blocks in ascending order. */
typedef struct vs_attr_cursor {
    vs_attr_source src;
    int32_t ci;   /* bitmap: the next container to look at */
    uint64_t pos; /* array: the next element */
#ifdef VS_ROARING_PORTABLE
    roaring_uint32_iterator_t it;
#endif
} vs_attr_cursor;

/* Points cursor c at the first block of src. */
void vs_attr_cursor_init(vs_attr_cursor *c, const vs_attr_source *src);

/* dst[0 .. 1024) = block `key` of the cursor's set. Keys must not go down between calls.
 * Returns false when the block is empty. */
bool vs_attr_block_load(vs_attr_cursor *c, uint32_t key, uint64_t *dst);

/* dst |= block `key`; returns whether the block had any slot. */
bool vs_attr_block_or(vs_attr_cursor *c, uint32_t key, uint64_t *dst);

/* dst &= block `key`, using tmp (1024 words) as scratch; returns whether dst has any bit left. */
bool vs_attr_block_and(vs_attr_cursor *c, uint32_t key, uint64_t *dst, uint64_t *tmp);

/* Merges the ascending runs buf[bounds[i] .. bounds[i+1]) for i < n_runs into one ascending
 * array without duplicates, at the front of buf; tmp has room for bounds[n_runs] elements and
 * bounds is overwritten. Returns the length. */
uint64_t vs_attr_merge_runs(uint32_t *buf, uint32_t *tmp, uint64_t *bounds, uint32_t n_runs);

/* Removes from the ascending array a[0 .. na) the values of the ascending array b[0 .. nb);
 * returns the new length. */
uint64_t vs_attr_subtract(uint32_t *a, uint64_t na, const uint32_t *b, uint64_t nb);

#endif
