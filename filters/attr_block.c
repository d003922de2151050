/*
 * attr_block.c: slot sets (CRoaring bitmaps, sorted arrays) into blocks of 1024 words (65536
 * slots) for the dense evaluator, and the two sorted-array operations the sparse evaluator needs.
 *
 * A CRoaring bitmap is a sorted array of containers, one per 65536 values: a bitset (1024 words),
 * an array of up to 4096 sorted 16-bit values, or a list of runs. A block of the evaluator spans
 * exactly one container, so turning a posting into words is a memcpy, a scatter of a few thousand
 * bits or a few range fills. Going through CRoaring's value iterator instead costs several
 * nanoseconds per value: `digit IN (1, 2, 3)` over 1M slots took 1.6 ms that way and takes ~25 us
 * from the containers (test_filter_eval prints the timings).
 *
 * CRoaring 0.2.x publishes its container layout in its installed headers (roaring_array.h, the
 * containers/ headers) and the fast path reads it. Later releases hide it, so the fast path is
 * compiled only when those headers are there, and then asserts the version; otherwise, or with
 * -DVS_ROARING_PORTABLE, the iterator is used: slow but correct, and the tests pass either way.
 *
 * Sorted arrays are the edge slots of int ranges (attr_bins.c) and the sparse path's candidates.
 */
#include "attr_internal.h"

#include <string.h>

#define VS_BLOCK_BYTES (VS_ATTR_CHUNK_WORDS * sizeof(uint64_t))

/* ===== Sorted arrays ===== */

/* dst |= the values of the array cursor c in block key; returns whether there were any. */
static bool vs_block_arr_or(vs_attr_cursor *c, uint32_t key, uint64_t *dst)
{
    const uint32_t *a = c->src.arr;
    uint64_t n = c->src.n, p = c->pos, start = (uint64_t)key << 16, end = start + VS_ATTR_CHUNK;
    while (p < n && a[p] < start)
        p++;
    uint64_t first = p;
    for (; p < n && a[p] < end; p++) {
        uint32_t v = a[p] & 0xffffu;
        dst[v >> 6] |= 1ull << (v & 63);
    }
    c->pos = p;
    return p > first;
}

/* Merges ascending runs of buf into one ascending array without duplicates. */
uint64_t vs_attr_merge_runs(uint32_t *buf, uint32_t *tmp, uint64_t *b, uint32_t n_runs)
{
    if (n_runs == 0)
        return 0;
    /* Bottom-up: merge neighbouring runs pairwise until one is left, rewriting the bounds as
     * runs combine. Duplicates are dropped as runs meet; within a run there are none. */
    uint32_t *src = buf, *dst = tmp;
    while (n_runs > 1) {
        uint32_t out_runs = 0;
        uint64_t o = 0;
        for (uint32_t r = 0; r < n_runs; r += 2) {
            uint64_t i = b[r], ie = b[r + 1], j = ie, je = r + 1 < n_runs ? b[r + 2] : ie;
            uint64_t start = o;
            while (i < ie || j < je) {
                uint32_t v;
                if (j == je || (i < ie && src[i] < src[j]))
                    v = src[i++];
                else if (i == ie || src[j] < src[i])
                    v = src[j++];
                else
                    v = src[i++], j++;
                if (o == start || dst[o - 1] != v)
                    dst[o++] = v;
            }
            b[out_runs++] = start;
        }
        b[out_runs] = o;
        n_runs = out_runs;
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    uint64_t len = b[1] - b[0];
    if (src != buf || b[0] != 0)
        memmove(buf, src + b[0], len * sizeof *buf);
    return len;
}

/* Removes from ascending a the values of ascending b. */
uint64_t vs_attr_subtract(uint32_t *a, uint64_t na, const uint32_t *b, uint64_t nb)
{
    uint64_t k = 0, j = 0;
    for (uint64_t i = 0; i < na; i++) {
        while (j < nb && b[j] < a[i])
            j++;
        if (j == nb || b[j] != a[i])
            a[k++] = a[i];
    }
    return k;
}

#ifndef VS_ROARING_PORTABLE

/* ===== Bitmaps, fast path: CRoaring 0.2.x containers ===== */

_Static_assert(ROARING_VERSION_MAJOR == 0 && ROARING_VERSION_MINOR == 2,
               "attr_block.c reads CRoaring 0.2.x containers; build with -DVS_ROARING_PORTABLE");

/* Sets bits [a, b] (inclusive, both < 65536) of w. */
static void vs_block_set_range(uint64_t *w, uint32_t a, uint32_t b)
{
    uint32_t wa = a >> 6, wb = b >> 6;
    uint64_t ma = ~0ull << (a & 63), mb = ~0ull >> (63 - (b & 63));
    if (wa == wb) {
        w[wa] |= ma & mb;
        return;
    }
    w[wa] |= ma;
    for (uint32_t i = wa + 1; i < wb; i++)
        w[i] = ~0ull;
    w[wb] |= mb;
}

/* Clears bits [a, b] (inclusive, both < 65536) of w. */
static void vs_block_clear_range(uint64_t *w, uint32_t a, uint32_t b)
{
    uint32_t wa = a >> 6, wb = b >> 6;
    uint64_t ma = ~0ull << (a & 63), mb = ~0ull >> (63 - (b & 63));
    if (wa == wb) {
        w[wa] &= ~(ma & mb);
        return;
    }
    w[wa] &= ~ma;
    for (uint32_t i = wa + 1; i < wb; i++)
        w[i] = 0;
    w[wb] &= ~mb;
}

/* Whether any of w[0 .. 1024) is set. */
static bool vs_block_any(const uint64_t *w)
{
    uint64_t acc = 0;
    for (uint32_t i = 0; i < VS_ATTR_CHUNK_WORDS; i++)
        acc |= w[i];
    return acc != 0;
}

/* Starts the bitmap part of cursor c. */
static void vs_block_bm_init(vs_attr_cursor *c) { c->ci = 0; }

/* The container of block key (unwrapped from a shared one) with its type in *tc, or NULL. */
static const void *vs_block_find(vs_attr_cursor *c, uint32_t key, uint8_t *tc)
{
    const roaring_array_t *ra = &c->src.bm->high_low_container;
    while (c->ci < ra->size && ra->keys[c->ci] < key)
        c->ci++;
    if (c->ci >= ra->size || ra->keys[c->ci] != key)
        return NULL;
    const void *ct = ra->containers[c->ci];
    *tc = ra->typecodes[c->ci];
    if (*tc == SHARED_CONTAINER_TYPE_CODE) {
        const shared_container_t *sh = ct;
        *tc = sh->typecode;
        ct = sh->container;
    }
    return ct;
}

/* dst |= container ct of type tc; returns whether it held any value. */
static bool vs_block_or_container(const void *ct, uint8_t tc, uint64_t *dst)
{
    switch (tc) {
    case BITSET_CONTAINER_TYPE_CODE: {
        const uint64_t *w = ((const bitset_container_t *)ct)->array;
        for (uint32_t i = 0; i < VS_ATTR_CHUNK_WORDS; i++)
            dst[i] |= w[i];
        return true;
    }
    case ARRAY_CONTAINER_TYPE_CODE: {
        const array_container_t *a = ct;
        for (int32_t i = 0; i < a->cardinality; i++)
            dst[a->array[i] >> 6] |= 1ull << (a->array[i] & 63);
        return a->cardinality > 0;
    }
    case RUN_CONTAINER_TYPE_CODE: {
        const run_container_t *r = ct;
        for (int32_t i = 0; i < r->n_runs; i++)
            vs_block_set_range(dst, r->runs[i].value,
                               (uint32_t)r->runs[i].value + r->runs[i].length);
        return r->n_runs > 0;
    }
    }
    return false;
}

/* dst = block key of bitmap cursor c; returns whether it is non-empty. */
static bool vs_block_bm_load(vs_attr_cursor *c, uint32_t key, uint64_t *dst)
{
    uint8_t tc = 0;
    const void *ct = vs_block_find(c, key, &tc);
    if (ct && tc == BITSET_CONTAINER_TYPE_CODE) {
        memcpy(dst, ((const bitset_container_t *)ct)->array, VS_BLOCK_BYTES);
        return true;
    }
    memset(dst, 0, VS_BLOCK_BYTES);
    return ct ? vs_block_or_container(ct, tc, dst) : false;
}

/* dst |= block key of bitmap cursor c. */
static bool vs_block_bm_or(vs_attr_cursor *c, uint32_t key, uint64_t *dst)
{
    uint8_t tc = 0;
    const void *ct = vs_block_find(c, key, &tc);
    return ct ? vs_block_or_container(ct, tc, dst) : false;
}

/* dst &= block key of bitmap cursor c. */
static bool vs_block_bm_and(vs_attr_cursor *c, uint32_t key, uint64_t *dst, uint64_t *tmp)
{
    uint8_t tc = 0;
    const void *ct = vs_block_find(c, key, &tc);
    if (!ct) {
        memset(dst, 0, VS_BLOCK_BYTES);
        return false;
    }
    switch (tc) {
    case BITSET_CONTAINER_TYPE_CODE: {
        const uint64_t *w = ((const bitset_container_t *)ct)->array;
        uint64_t acc = 0;
        for (uint32_t i = 0; i < VS_ATTR_CHUNK_WORDS; i++)
            acc |= (dst[i] &= w[i]);
        return acc != 0;
    }
    case ARRAY_CONTAINER_TYPE_CODE: {
        /* Keep only the array's values that dst has: gather them into tmp, then copy back. */
        const array_container_t *a = ct;
        memset(tmp, 0, VS_BLOCK_BYTES);
        uint64_t any = 0;
        for (int32_t i = 0; i < a->cardinality; i++) {
            uint16_t v = a->array[i];
            uint64_t bit = dst[v >> 6] & (1ull << (v & 63));
            tmp[v >> 6] |= bit;
            any |= bit;
        }
        memcpy(dst, tmp, VS_BLOCK_BYTES);
        return any != 0;
    }
    case RUN_CONTAINER_TYPE_CODE: {
        /* Clear the gaps between runs. */
        const run_container_t *r = ct;
        uint32_t next = 0;
        for (int32_t i = 0; i < r->n_runs; i++) {
            uint32_t a = r->runs[i].value, b = a + r->runs[i].length;
            if (a > next)
                vs_block_clear_range(dst, next, a - 1);
            next = b + 1;
        }
        if (next < VS_ATTR_CHUNK)
            vs_block_clear_range(dst, next, VS_ATTR_CHUNK - 1);
        return vs_block_any(dst);
    }
    }
    memset(dst, 0, VS_BLOCK_BYTES);
    return false;
}

#else

/* ===== Bitmaps, portable path: CRoaring's value iterator ===== */

/* Starts the bitmap part of cursor c. */
static void vs_block_bm_init(vs_attr_cursor *c) { roaring_init_iterator(c->src.bm, &c->it); }

/* dst |= block key of bitmap cursor c. */
static bool vs_block_bm_or(vs_attr_cursor *c, uint32_t key, uint64_t *dst)
{
    uint64_t start = (uint64_t)key << 16, end = start + VS_ATTR_CHUNK;
    if (c->it.has_value && c->it.current_value < start)
        roaring_move_uint32_iterator_equalorlarger(&c->it, (uint32_t)start);
    bool any = false;
    while (c->it.has_value && c->it.current_value < end) {
        uint32_t v = c->it.current_value & 0xffffu;
        dst[v >> 6] |= 1ull << (v & 63);
        any = true;
        roaring_advance_uint32_iterator(&c->it);
    }
    return any;
}

/* dst = block key of bitmap cursor c. */
static bool vs_block_bm_load(vs_attr_cursor *c, uint32_t key, uint64_t *dst)
{
    memset(dst, 0, VS_BLOCK_BYTES);
    return vs_block_bm_or(c, key, dst);
}

/* dst &= block key of bitmap cursor c. */
static bool vs_block_bm_and(vs_attr_cursor *c, uint32_t key, uint64_t *dst, uint64_t *tmp)
{
    vs_block_bm_load(c, key, tmp);
    uint64_t acc = 0;
    for (uint32_t i = 0; i < VS_ATTR_CHUNK_WORDS; i++)
        acc |= (dst[i] &= tmp[i]);
    return acc != 0;
}

#endif

/* ===== Any source ===== */

void vs_attr_cursor_init(vs_attr_cursor *c, const vs_attr_source *src)
{
    memset(c, 0, sizeof *c);
    c->src = *src;
    if (c->src.bm)
        vs_block_bm_init(c);
}

/* dst = block key of the cursor's set. */
bool vs_attr_block_load(vs_attr_cursor *c, uint32_t key, uint64_t *dst)
{
    if (c->src.bm)
        return vs_block_bm_load(c, key, dst);
    memset(dst, 0, VS_BLOCK_BYTES);
    return c->src.arr ? vs_block_arr_or(c, key, dst) : false;
}

/* dst |= block key of the cursor's set. */
bool vs_attr_block_or(vs_attr_cursor *c, uint32_t key, uint64_t *dst)
{
    if (c->src.bm)
        return vs_block_bm_or(c, key, dst);
    return c->src.arr ? vs_block_arr_or(c, key, dst) : false;
}

/* dst &= block key of the cursor's set. */
bool vs_attr_block_and(vs_attr_cursor *c, uint32_t key, uint64_t *dst, uint64_t *tmp)
{
    if (c->src.bm)
        return vs_block_bm_and(c, key, dst, tmp);
    vs_attr_block_load(c, key, tmp);
    uint64_t acc = 0;
    for (uint32_t i = 0; i < VS_ATTR_CHUNK_WORDS; i++)
        acc |= (dst[i] &= tmp[i]);
    return acc != 0;
}
