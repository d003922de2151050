/*
 * vs_slotset.h: a set of allowed slots, the one type where filters/ and index/ meet.
 *
 * The filter evaluator produces it; a search reads it. It is either every slot, a dense bitmap
 * (bit s of words[s / 64] says whether slot s is allowed) or a sorted list of slots. The planner
 * picks the list when few slots pass, so the scan can gather just those rows, and the bitmap
 * otherwise, so the scan masks them in its epilogue. The producer owns the memory; a search only
 * reads it during the call.
 */
#ifndef VS_SLOTSET_H
#define VS_SLOTSET_H

#include <stdbool.h>
#include <stdint.h>

typedef enum vs_slotset_kind {
    VS_SLOTSET_ALL = 0, /* no restriction (live slots only, as always) */
    VS_SLOTSET_BITMAP,  /* words[0 .. (n_bits + 63) / 64): slots >= n_bits are not allowed */
    VS_SLOTSET_LIST     /* slots[0 .. count): strictly ascending */
} vs_slotset_kind;

typedef struct vs_slotset {
    vs_slotset_kind kind;
    const uint64_t *words; /* BITMAP only */
    uint64_t n_bits;       /* BITMAP only */
    const uint32_t *slots; /* LIST only */
    uint64_t count;        /* allowed slots: the bitmap's popcount or the list's length */
} vs_slotset;

/* Whether slot s is allowed by a BITMAP or ALL set (a LIST is scanned, not probed). */
static inline bool vs_slotset_bitmap_has(const vs_slotset *set, uint64_t s)
{
    if (!set || set->kind == VS_SLOTSET_ALL)
        return true;
    return s < set->n_bits && ((set->words[s >> 6] >> (s & 63)) & 1u);
}

#endif
