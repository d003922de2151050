/*
 * attr_dict.c: a tag field's dictionary (see vs_attr_dict.h).
 *
 * Values live in an arena of blocks that are never moved, so a pointer handed out by
 * vs_attr_dict_value stays good while more values are added. Lookup is an open-addressing hash table
 * of codes (linear probing, at most half full) keyed by a seeded hash of the bytes; the seed comes
 * from the table's address so that a client cannot aim many values at one bucket across restarts.
 */
#include "vs_attr_dict.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define VS_DICT_BLOCK (64u * 1024u)

typedef struct vs_dict_block {
    struct vs_dict_block *next;
    size_t used, cap;
    char data[];
} vs_dict_block;

struct vs_attr_dict {
    const char **ptr; /* by code */
    uint32_t *len;    /* by code */
    uint32_t *hash;   /* by code */
    uint32_t n, cap;
    uint32_t *table; /* code + 1, 0 = empty */
    uint32_t mask;
    uint64_t seed;
    vs_dict_block *blocks; /* newest first */
};

/* Creates an empty dictionary. */
vs_attr_dict *vs_attr_dict_create(void)
{
    vs_attr_dict *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)d;
    return d;
}

/* Frees d and its values. */
void vs_attr_dict_destroy(vs_attr_dict *d)
{
    if (!d)
        return;
    for (vs_dict_block *b = d->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(d->ptr);
    free(d->len);
    free(d->hash);
    free(d->table);
    free(d);
}

/* A 32-bit hash of s[0 .. len) under seed: FNV-1a over the bytes, then a 64-bit finalizer. */
static uint32_t vs_dict_hash(uint64_t seed, const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    h ^= len;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (uint32_t)h;
}

/* The table position holding s, or the empty position where it would go. */
static uint32_t vs_dict_probe(const vs_attr_dict *d, const char *s, size_t len, uint32_t h)
{
    uint32_t i = h & d->mask;
    for (;;) {
        uint32_t e = d->table[i];
        if (e == 0)
            return i;
        uint32_t c = e - 1;
        if (d->hash[c] == h && d->len[c] == len && (len == 0 || memcmp(d->ptr[c], s, len) == 0))
            return i;
        i = (i + 1) & d->mask;
    }
}

/* The code of a value, or VS_ATTR_NO_CODE. */
uint64_t vs_attr_dict_find(const vs_attr_dict *d, const char *s, size_t len)
{
    if (!d->table || len > VS_ATTR_TAG_MAX_LEN)
        return VS_ATTR_NO_CODE;
    uint32_t e = d->table[vs_dict_probe(d, s, len, vs_dict_hash(d->seed, s, len))];
    return e ? (uint64_t)(e - 1) : VS_ATTR_NO_CODE;
}

/* Doubles the hash table (or makes the first one) and reinserts every code. */
static bool vs_dict_grow_table(vs_attr_dict *d)
{
    uint32_t size = d->table ? 2 * (d->mask + 1) : 64;
    uint32_t *t = calloc(size, sizeof *t);
    if (!t)
        return false;
    free(d->table);
    d->table = t;
    d->mask = size - 1;
    for (uint32_t c = 0; c < d->n; c++) {
        uint32_t i = d->hash[c] & d->mask;
        while (t[i])
            i = (i + 1) & d->mask;
        t[i] = c + 1;
    }
    return true;
}

/* Copies s[0 .. len) into the arena; returns the copy or NULL when out of memory. */
static const char *vs_dict_store(vs_attr_dict *d, const char *s, size_t len)
{
    vs_dict_block *b = d->blocks;
    if (!b || b->cap - b->used < len) {
        size_t cap = len > VS_DICT_BLOCK ? len : VS_DICT_BLOCK;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = d->blocks;
        d->blocks = b;
    }
    char *p = b->data + b->used;
    if (len)
        memcpy(p, s, len);
    b->used += len;
    return p;
}

/* The code of a value, adding it with the next code when new. */
vs_err vs_attr_dict_intern(vs_attr_dict *d, const char *s, size_t len, uint64_t *code,
                           vs_status *st)
{
    if (len > VS_ATTR_TAG_MAX_LEN)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "tag value of %zu bytes; the limit is %d", len, VS_ATTR_TAG_MAX_LEN);
    if ((uint64_t)(d->n + 1) * 2 > (uint64_t)(d->table ? d->mask + 1 : 0) && !vs_dict_grow_table(d))
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory in a tag dictionary");
    uint32_t h = vs_dict_hash(d->seed, s, len);
    uint32_t i = vs_dict_probe(d, s, len, h);
    if (d->table[i]) {
        *code = d->table[i] - 1;
        return VS_OK;
    }
    if (d->n >= VS_ATTR_DICT_MAX_CODES)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                             "a tag field holds at most %u distinct values", VS_ATTR_DICT_MAX_CODES);
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? 2 * d->cap : 16;
        const char **p = realloc(d->ptr, cap * sizeof *p);
        if (p)
            d->ptr = p;
        uint32_t *l = realloc(d->len, cap * sizeof *l);
        if (l)
            d->len = l;
        uint32_t *hh = realloc(d->hash, cap * sizeof *hh);
        if (hh)
            d->hash = hh;
        if (!p || !l || !hh)
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory in a tag dictionary");
        d->cap = cap;
    }
    const char *copy = vs_dict_store(d, s, len);
    if (!copy)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory in a tag dictionary");
    d->ptr[d->n] = copy;
    d->len[d->n] = (uint32_t)len;
    d->hash[d->n] = h;
    d->table[i] = d->n + 1;
    *code = d->n++;
    return VS_OK;
}

/* The number of codes given so far. */
uint64_t vs_attr_dict_count(const vs_attr_dict *d) { return d->n; }

/* The value of a code (owned by d), or NULL. */
const char *vs_attr_dict_value(const vs_attr_dict *d, uint64_t code, size_t *len)
{
    if (code >= d->n)
        return NULL;
    if (len)
        *len = d->len[code];
    return d->ptr[code];
}
