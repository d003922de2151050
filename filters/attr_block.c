/*
 * attr_block.c: CRoaring bitmaps to blocks of 1024 words (65536 slots), for the dense evaluator.
 *
 * A CRoaring bitmap is a sorted array of containers, one per 65536 values: a bitset (1024 words),
 * an array of up to 4096 sorted 16-bit values, or a list of runs. A block of the evaluator spans
 * exactly one container, so turning a posting into words is a memcpy, a scatter of a few thousand
 * bits or a few range fills; going through CRoaring's value iterator instead costs a few
 * nanoseconds per value (a 300k-slot posting: ~1 ms against ~20 us; see test_filter_eval).
 *
 * CRoaring 0.2.x publishes its container layout in its installed headers (roaring_array.h,
 * the containers/ headers) and the fast path reads it. Later releases hide it, so the fast path is compiled
 * only for 0.2.x; any other version, or -DVS_ROARING_PORTABLE, uses the iterator, which is slow but
 * correct, and the tests run the same either way.
 */
#include "attr_internal.h"

#include <string.h>

#ifndef VS_ROARING_PORTABLE

/* ===== Fast path: CRoaring 0.2.x containers ===== */

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

void vs_attr_cursor_init(vs_attr_cursor *c, const roaring_bitmap_t *bm)
{
    c->bm = bm;
    c->ci = 0;
}

/* The container of block key (unwrapped from a shared one) with its type in *tc, or NULL. */
static const void *vs_block_find(vs_attr_cursor *c, uint32_t key, uint8_t *tc)
{
    if (!c->bm)
        return NULL;
    const roaring_array_t *ra = &c->bm->high_low_container;
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

bool vs_attr_block_load(vs_attr_cursor *c, uint32_t key, uint64_t *dst)
{
    uint8_t tc = 0;
    const void *ct = vs_block_find(c, key, &tc);
    if (ct && tc == BITSET_CONTAINER_TYPE_CODE) {
        memcpy(dst, ((const bitset_container_t *)ct)->array, VS_ATTR_CHUNK_WORDS * 8);
        return true;
    }
    memset(dst, 0, VS_ATTR_CHUNK_WORDS * 8);
    return ct ? vs_block_or_container(ct, tc, dst) : false;
}

bool vs_attr_block_or(vs_attr_cursor *c, uint32_t key, uint64_t *dst)
{
    uint8_t tc = 0;
    const void *ct = vs_block_find(c, key, &tc);
    return ct ? vs_block_or_container(ct, tc, dst) : false;
}

bool vs_attr_block_and(vs_attr_cursor *c, uint32_t key, uint64_t *dst, uint64_t *tmp)
{
    uint8_t tc = 0;
    const void *ct = vs_block_find(c, key, &tc);
    if (!ct) {
        memset(dst, 0, VS_ATTR_CHUNK_WORDS * 8);
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
        memset(tmp, 0, VS_ATTR_CHUNK_WORDS * 8);
        uint64_t any = 0;
        for (int32_t i = 0; i < a->cardinality; i++) {
            uint16_t v = a->array[i];
            uint64_t bit = dst[v >> 6] & (1ull << (v & 63));
            tmp[v >> 6] |= bit;
            any |= bit;
        }
        memcpy(dst, tmp, VS_ATTR_CHUNK_WORDS * 8);
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
    memset(dst, 0, VS_ATTR_CHUNK_WORDS * 8);
    return false;
}

#else

/* ===== Portable path: CRoaring's value iterator ===== */

void vs_attr_cursor_init(vs_attr_cursor *c, const roaring_bitmap_t *bm)
{
    c->bm = bm;
    c->ci = 0;
    if (bm)
        roaring_init_iterator(bm, &c->it);
}

bool vs_attr_block_or(vs_attr_cursor *c, uint32_t key, uint64_t *dst)
{
    if (!c->bm)
        return false;
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

bool vs_attr_block_load(vs_attr_cursor *c, uint32_t key, uint64_t *dst)
{
    memset(dst, 0, VS_ATTR_CHUNK_WORDS * 8);
    return vs_attr_block_or(c, key, dst);
}

bool vs_attr_block_and(vs_attr_cursor *c, uint32_t key, uint64_t *dst, uint64_t *tmp)
{
    vs_attr_block_load(c, key, tmp);
    uint64_t acc = 0;
    for (uint32_t i = 0; i < VS_ATTR_CHUNK_WORDS; i++)
        acc |= (dst[i] &= tmp[i]);
    return acc != 0;
}

#endif
