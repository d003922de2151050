/*
 * vs_attr_schema.h: the attribute fields of a collection, each a name and a type.
 *
 * A `tag` field holds a set of string values per item (stored as codes through the field's
 * dictionary); an `int` field holds one int64 per item. Any item may lack any field. The schema is
 * fixed once the collection is created: fields are only added while it is being built, and a field's
 * number (its position, from 0) is how the store and parsed filters refer to it.
 *
 * Field names match [A-Za-z_][A-Za-z0-9_]{0,63}, are case-sensitive, and may not be a keyword of
 * the filter language (AND, OR, NOT, IN, BETWEEN, EXISTS, in any case), so every field can be named
 * in a filter.
 */
#ifndef VS_ATTR_SCHEMA_H
#define VS_ATTR_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "vs_status.h"

#define VS_ATTR_MAX_FIELDS 256
#define VS_ATTR_NAME_MAX 64

typedef enum vs_attr_type {
    VS_ATTR_TAG = 1, /* a set of strings */
    VS_ATTR_INT = 2  /* one int64 */
} vs_attr_type;

typedef struct vs_attr_schema vs_attr_schema;

/* Creates an empty schema, or NULL when out of memory. Free it with vs_attr_schema_destroy. */
vs_attr_schema *vs_attr_schema_create(void);

/* Frees s (NULL is fine). */
void vs_attr_schema_destroy(vs_attr_schema *s);

/* Returns a copy of s that the caller frees, or NULL when out of memory. */
vs_attr_schema *vs_attr_schema_copy(const vs_attr_schema *s);

/* Appends a field; its number is the count before the call. The name is copied. Fails with
 * INVALID_ARGUMENT for a bad or duplicate name or type, RESOURCE_EXHAUSTED past the field limit. */
vs_err vs_attr_schema_add(vs_attr_schema *s, const char *name, vs_attr_type type, vs_status *st);

/* The number of fields. */
uint32_t vs_attr_schema_count(const vs_attr_schema *s);

/* The name of field i (NUL-terminated, owned by s), or NULL when i is out of range. */
const char *vs_attr_schema_name(const vs_attr_schema *s, uint32_t i);

/* The type of field i, or 0 when i is out of range. */
vs_attr_type vs_attr_schema_type(const vs_attr_schema *s, uint32_t i);

/* The number of the field named name[0 .. len), or -1 when there is none (exact, case-sensitive). */
int vs_attr_schema_find(const vs_attr_schema *s, const char *name, size_t len);

/* "tag" or "int" ("?" for anything else). */
const char *vs_attr_type_name(vs_attr_type t);

#endif
