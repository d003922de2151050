/*
 * vs_attr_store.h: a collection's attribute values, by slot.
 *
 * Slots are the index's dense row numbers (uint32). The engine tells the store what each slot holds
 * as items come and go, always between searches (the store is not locked; reads during a write are
 * the caller's bug):
 *
 *   upsert of item at slot s:  vs_attr_store_clear_slot(s), then one set_* per attribute given
 *   patch:                     one set_* (or vs_attr_store_clear for a removed attribute) per field
 *   delete:                    vs_attr_store_clear_slot(s); the slot may be reused later
 *
 * Per tag field the store keeps a dictionary (vs_attr_dict.h), a CRoaring posting bitmap per value
 * and each slot's own codes, so that replacing or clearing a slot's tags removes it from the old
 * postings. Per int field it keeps the values and a presence bit per slot, and a range index: the
 * slots sorted into bins of neighbouring values (one bitmap each), which split as they grow, so a
 * range filter ORs the bins inside the range and checks only the values of the two bins at its ends.
 * Every field also keeps a bitmap of the slots that have it (for EXISTS and for estimates).
 *
 * Per-slot arrays grow in chunks of 65536 slots that are never moved.
 */
#ifndef VS_ATTR_STORE_H
#define VS_ATTR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vs_attr_dict.h"
#include "vs_attr_schema.h"
#include "vs_status.h"

#define VS_ATTR_MAX_TAGS 1024      /* values per item per tag field */
#define VS_ATTR_MAX_SLOT 0xfffffffeu /* the largest slot number */

typedef struct vs_attr_store vs_attr_store;

/* One tag value: bytes, not NUL-terminated. */
typedef struct vs_attr_str {
    const char *s;
    size_t len;
} vs_attr_str;

typedef struct vs_attr_store_options {
    /* The int range index splits a bin once it holds more than max(bin_min, present / 256)
     * slots. 0 = 4096. Tests set it small to exercise splits. */
    uint32_t bin_min;
} vs_attr_store_options;

/* Creates an empty store for schema (copied; the caller keeps its own). opt may be NULL. *out is
 * the caller's, to free with vs_attr_store_destroy. */
vs_err vs_attr_store_create(const vs_attr_schema *schema, const vs_attr_store_options *opt,
                            vs_attr_store **out, vs_status *st);

/* Frees s and everything it holds (NULL is fine). */
void vs_attr_store_destroy(vs_attr_store *s);

/* The store's own copy of the schema, valid while s lives; parse filters against it. */
const vs_attr_schema *vs_attr_store_schema(const vs_attr_store *s);

/* Sets tag field `field` of slot to the set of values vals[0 .. n) (duplicates collapse; n = 0
 * clears the field). The values are copied into the dictionary. On error nothing changes. */
vs_err vs_attr_store_set_tags(vs_attr_store *s, uint32_t field, uint32_t slot,
                              const vs_attr_str *vals, size_t n, vs_status *st);

/* As vs_attr_store_set_tags, with codes the field's dictionary already holds (snapshot loading). */
vs_err vs_attr_store_set_tag_codes(vs_attr_store *s, uint32_t field, uint32_t slot,
                                   const uint64_t *codes, size_t n, vs_status *st);

/* Sets int field `field` of slot to v. */
vs_err vs_attr_store_set_int(vs_attr_store *s, uint32_t field, uint32_t slot, int64_t v,
                             vs_status *st);

/* Removes field `field` from slot (the item now lacks it); a slot without it is fine. */
vs_err vs_attr_store_clear(vs_attr_store *s, uint32_t field, uint32_t slot, vs_status *st);

/* Removes every field from slot (delete, or the start of an upsert). */
void vs_attr_store_clear_slot(vs_attr_store *s, uint32_t slot);

/* Whether slot has int field `field`; when it has, *v gets the value. */
bool vs_attr_store_get_int(const vs_attr_store *s, uint32_t field, uint32_t slot, int64_t *v);

/* Copies up to cap of slot's codes for tag field `field` into codes (ascending) and returns how
 * many it holds (0 when it lacks the field). Their values come from vs_attr_store_dict. */
size_t vs_attr_store_get_tags(const vs_attr_store *s, uint32_t field, uint32_t slot,
                              uint64_t *codes, size_t cap);

/* The dictionary of tag field `field` (owned by s), or NULL for an int field or a bad number. */
const vs_attr_dict *vs_attr_store_dict(const vs_attr_store *s, uint32_t field);

/* Adds a value to tag field `field`'s dictionary without giving it to any slot, and reports its
 * code (snapshot loading: intern the exported values in code order). */
vs_err vs_attr_store_intern(vs_attr_store *s, uint32_t field, const char *v, size_t len,
                            uint64_t *code, vs_status *st);

/* How many slots have field `field`. */
uint64_t vs_attr_store_count(const vs_attr_store *s, uint32_t field);

/* One past the highest slot ever set (0 for a new store). */
uint64_t vs_attr_store_slot_limit(const vs_attr_store *s);

/* Checks the store's internal invariants (postings against cells, bins against values, presence);
 * INTERNAL with the first broken one. Slow: for tests. */
vs_err vs_attr_store_check(const vs_attr_store *s, vs_status *st);

#endif
