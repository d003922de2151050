/*
 * vs_filter.h: the filter language, parsed once and evaluated into a set of allowed slots.
 *
 *   expr   := or ;  or := and ('OR' and)* ;  and := unary ('AND' unary)* ;  unary := 'NOT' unary | atom
 *   atom   := '(' expr ')' | name op value | name ['NOT'] 'IN' '(' value (',' value)* ')'
 *           | name 'BETWEEN' int 'AND' int | name 'EXISTS'
 *   op     := '=' | '!=' | '<' | '<=' | '>' | '>='       value := int | 'quoted string'
 *
 * Keywords are case-insensitive, field names are not. Integers are decimal with an optional sign
 * and fit int64; strings are single-quoted, with \' and \\ as the only escapes. On a tag field
 * `name = v` means the item's set holds v and an integer stands for its decimal text; only = != IN
 * NOT IN EXISTS apply. On an int field every operator applies and values must be integers.
 * Two-valued logic: = < <= > >= IN BETWEEN are false on an item that lacks the field, != is NOT =
 * and NOT IN is NOT (IN), so both are true there; EXISTS tests presence. BETWEEN is inclusive
 * (and empty when the low end is above the high end).
 *
 * Errors are INVALID_ARGUMENT with a message that names the problem and its 1-based byte column:
 * "unknown field 'dgit' at column 1", "'ink' is an int field; IN needs integers at column 9",
 * "expected ')' at column 23". Text longer than the length limit or nested deeper than the depth
 * limit (parentheses and NOTs) is an error too, never a deep recursion.
 *
 * Use: parse with vs_filter_parse against the store's schema (vs_attr_store_schema), keep the
 * vs_filter as long as it is useful (it holds no slot data and can be evaluated again after writes,
 * from several threads at once, each with its own result), and for each search call
 * vs_filter_eval(filter, store, live, n, ...) into a vs_filter_result, then hand
 * vs_filter_result_slotset(result) to the index. The result is always ANDed with live.
 */
#ifndef VS_FILTER_H
#define VS_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "vs_attr_schema.h"
#include "vs_attr_store.h"
#include "vs_slotset.h"
#include "vs_status.h"

#define VS_FILTER_MAX_LEN 16384       /* default text limit, bytes */
#define VS_FILTER_MAX_DEPTH 64        /* default nesting limit */
#define VS_FILTER_DEPTH_CEILING 256   /* the most a caller may raise the nesting limit to */
/* Default output: a LIST when at most 1/32 of the slots pass, else a BITMAP. At 1/32 a list (4
 * bytes a slot) is as large as the bitmap (1 bit a slot), so a list never costs more memory, cache
 * or PCIe transfer than the bitmap would. And on this project's CPU a sorted gather of 128-byte
 * int8 rows cost 0.02x and 0.06x of a full scan at 1% and 3% pass, but 0.36x at 6.25% and 0.66x at
 * 10%: past ~3% gathering stops tracking the pass fraction. An index that still prefers to gather
 * up to some fraction can ask for it with list_divisor. */
#define VS_FILTER_LIST_DIVISOR 32

typedef struct vs_filter vs_filter;
typedef struct vs_filter_result vs_filter_result;

typedef struct vs_filter_limits {
    size_t max_len;     /* 0 = VS_FILTER_MAX_LEN */
    uint32_t max_depth; /* 0 = VS_FILTER_MAX_DEPTH; at most VS_FILTER_DEPTH_CEILING */
} vs_filter_limits;

/* Parses text[0 .. len) against schema. lim may be NULL (the defaults). On success *out is the
 * caller's, to free with vs_filter_destroy; it keeps a copy of the schema, not the pointer. */
vs_err vs_filter_parse(const vs_attr_schema *schema, const char *text, size_t len,
                       const vs_filter_limits *lim, vs_filter **out, vs_status *st);

/* Frees f (NULL is fine). */
void vs_filter_destroy(vs_filter *f);

/* Writes f as canonical filter text (which parses back to the same filter) into buf, at most
 * cap - 1 bytes and a NUL when cap > 0; returns the full length, as snprintf does. */
size_t vs_filter_format(const vs_filter *f, char *buf, size_t cap);

/* How the evaluator works; tests and benchmarks force one, the engine leaves AUTO. */
typedef enum vs_filter_path {
    VS_FILTER_PATH_AUTO = 0,
    VS_FILTER_PATH_DENSE,  /* every 65536-slot block through bitmap algebra on words */
    VS_FILTER_PATH_SPARSE  /* the smallest candidate set from postings, each candidate checked */
} vs_filter_path;

/* What the result holds. */
typedef enum vs_filter_output {
    VS_FILTER_OUT_AUTO = 0, /* a LIST when count <= n / list_divisor, else a BITMAP */
    VS_FILTER_OUT_LIST,
    VS_FILTER_OUT_BITMAP
} vs_filter_output;

typedef struct vs_filter_eval_options {
    uint32_t list_divisor;   /* 0 = VS_FILTER_LIST_DIVISOR */
    vs_filter_output output;
    vs_filter_path path;     /* SPARSE falls back to DENSE when the filter has no candidate set */
} vs_filter_eval_options;

/* What an evaluation did, for tests, benchmarks and metrics. */
typedef struct vs_filter_stats {
    uint64_t estimate;   /* upper bound on passing slots, from posting and bin sizes */
    uint64_t candidates; /* SPARSE: the candidate set's size */
    uint64_t count;      /* slots that passed */
    vs_filter_path path; /* the path taken */
} vs_filter_stats;

/* Creates an empty result to evaluate into (and reuse: its buffers are kept between calls). NULL
 * when out of memory. Free it with vs_filter_result_destroy. */
vs_filter_result *vs_filter_result_create(void);

/* Frees r (NULL is fine). */
void vs_filter_result_destroy(vs_filter_result *r);

/* Evaluates f against store for the slots [0, n_bits) and ANDs it with live (bit s of
 * live[s / 64]; NULL means every slot below n_bits is live; n_bits <= 2^32). opt may be NULL.
 * The answer replaces what r held. INVALID_ARGUMENT when f was parsed against another schema,
 * RESOURCE_EXHAUSTED when out of memory. The store must not change during the call. */
vs_err vs_filter_eval(const vs_filter *f, const vs_attr_store *store, const uint64_t *live,
                      uint64_t n_bits, const vs_filter_eval_options *opt, vs_filter_result *r,
                      vs_status *st);

/* The allowed slots of the last evaluation into r: a BITMAP over [0, n_bits) or a strictly
 * ascending LIST, with count set. Owned by r, valid until r is evaluated into again or destroyed. */
const vs_slotset *vs_filter_result_slotset(const vs_filter_result *r);

/* What the last evaluation into r did. */
vs_filter_stats vs_filter_result_stats(const vs_filter_result *r);

/* An upper bound on the slots in [0, n_bits) that pass f in store, from posting and bin sizes,
 * without evaluating it (and without live). */
vs_err vs_filter_estimate(const vs_filter *f, const vs_attr_store *store, uint64_t n_bits,
                          uint64_t *upper, vs_status *st);

#endif
