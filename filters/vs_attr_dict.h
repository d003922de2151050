/*
 * vs_attr_dict.h: a tag field's dictionary, between tag values (byte strings) and codes.
 *
 * Codes are given in order of first appearance: 0, 1, 2, ... A code is never freed or reused, even
 * when no item holds the value any more, so a code stays valid for the life of the dictionary.
 * Values are byte strings of 0 .. VS_ATTR_TAG_MAX_LEN bytes (any bytes, NUL included).
 *
 * Export and import for snapshots: iterate codes 0 .. count-1 with vs_attr_dict_value; to rebuild,
 * intern the same values in the same order into an empty dictionary and each gets its old code back
 * (vs_attr_dict_intern reports the code so the loader can check).
 */
#ifndef VS_ATTR_DICT_H
#define VS_ATTR_DICT_H

#include <stddef.h>
#include <stdint.h>

#include "vs_status.h"

#define VS_ATTR_TAG_MAX_LEN 4096
#define VS_ATTR_NO_CODE UINT64_MAX
#define VS_ATTR_DICT_MAX_CODES (1u << 30)

typedef struct vs_attr_dict vs_attr_dict;

/* Creates an empty dictionary, or NULL when out of memory. Free it with vs_attr_dict_destroy. */
vs_attr_dict *vs_attr_dict_create(void);

/* Frees d (NULL is fine). */
void vs_attr_dict_destroy(vs_attr_dict *d);

/* The code of value s[0 .. len), or VS_ATTR_NO_CODE when the dictionary does not hold it. */
uint64_t vs_attr_dict_find(const vs_attr_dict *d, const char *s, size_t len);

/* Sets *code to the code of s[0 .. len), adding the value (copied) with the next code when it is
 * new. INVALID_ARGUMENT when the value is longer than VS_ATTR_TAG_MAX_LEN, RESOURCE_EXHAUSTED when
 * out of memory or codes. */
vs_err vs_attr_dict_intern(vs_attr_dict *d, const char *s, size_t len, uint64_t *code,
                           vs_status *st);

/* The number of codes given so far; codes are 0 .. count-1. */
uint64_t vs_attr_dict_count(const vs_attr_dict *d);

/* The value of code (owned by d, valid until d is destroyed; not NUL-terminated) with its length
 * in *len, or NULL when the code was never given. */
const char *vs_attr_dict_value(const vs_attr_dict *d, uint64_t code, size_t *len);

#endif
