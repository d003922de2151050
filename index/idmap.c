/* idmap.c: the id -> slot hash map (see idmap.h). */
#include "idmap.h"

#include <stdlib.h>

#define EMPTY UINT32_MAX

static size_t bucket_of(uint64_t id, size_t cap)
{
    uint64_t z = id + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (size_t)(z ^ (z >> 31)) & (cap - 1);
}

void vs_idmap_free(vs_idmap *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

bool vs_idmap_get(const vs_idmap *m, uint64_t id, uint32_t *slot)
{
    if (!m->cap)
        return false;
    for (size_t b = bucket_of(id, m->cap);; b = (b + 1) & (m->cap - 1)) {
        if (m->vals[b] == EMPTY)
            return false;
        if (m->keys[b] == id) {
            *slot = m->vals[b];
            return true;
        }
    }
}

/* Inserts into a table known to have room and not to hold id. */
static void insert_fresh(uint64_t *keys, uint32_t *vals, size_t cap, uint64_t id, uint32_t slot)
{
    size_t b = bucket_of(id, cap);
    while (vals[b] != EMPTY)
        b = (b + 1) & (cap - 1);
    keys[b] = id;
    vals[b] = slot;
}

/* Rehashes into a table of new_cap buckets. */
static bool rehash(vs_idmap *m, size_t new_cap)
{
    uint64_t *keys = malloc(new_cap * sizeof *keys);
    uint32_t *vals = malloc(new_cap * sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return false;
    }
    for (size_t i = 0; i < new_cap; i++)
        vals[i] = EMPTY;
    for (size_t i = 0; i < m->cap; i++)
        if (m->vals[i] != EMPTY)
            insert_fresh(keys, vals, new_cap, m->keys[i], m->vals[i]);
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = new_cap;
    return true;
}

bool vs_idmap_reserve(vs_idmap *m, size_t n)
{
    size_t cap = m->cap ? m->cap : 16;
    while (n * 10 > cap * 7)
        cap *= 2;
    return cap == m->cap || rehash(m, cap);
}

bool vs_idmap_put(vs_idmap *m, uint64_t id, uint32_t slot)
{
    if (!vs_idmap_reserve(m, m->n + 1))
        return false;
    size_t b = bucket_of(id, m->cap);
    while (m->vals[b] != EMPTY && m->keys[b] != id)
        b = (b + 1) & (m->cap - 1);
    if (m->vals[b] == EMPTY)
        m->n++;
    m->keys[b] = id;
    m->vals[b] = slot;
    return true;
}

bool vs_idmap_del(vs_idmap *m, uint64_t id)
{
    if (!m->cap)
        return false;
    size_t mask = m->cap - 1, b = bucket_of(id, m->cap);
    while (m->vals[b] != EMPTY && m->keys[b] != id)
        b = (b + 1) & mask;
    if (m->vals[b] == EMPTY)
        return false;
    /* Backward shift: move later members of the probe run into the hole when their home bucket
     * does not lie cyclically in (hole, j]. */
    size_t hole = b;
    for (size_t j = (hole + 1) & mask; m->vals[j] != EMPTY; j = (j + 1) & mask) {
        size_t home = bucket_of(m->keys[j], m->cap);
        int between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!between) {
            m->keys[hole] = m->keys[j];
            m->vals[hole] = m->vals[j];
            hole = j;
        }
    }
    m->vals[hole] = EMPTY;
    m->n--;
    return true;
}
