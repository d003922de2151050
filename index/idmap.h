/*
 * idmap.h: the id -> slot hash map of an index.
 *
 * Open addressing with linear probing over a power-of-two table, at most 70% full; deletion shifts
 * the following entries back instead of leaving tombstones, so lookups never slow down under churn
 * (upserts and deletes of live updates go on forever). Keys are caller-chosen uint64 ids, mixed by
 * the splitmix64 finaliser so sequential ids spread.
 */
#ifndef VS_IDMAP_H
#define VS_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vs_idmap {
    uint64_t *keys;
    uint32_t *vals; /* UINT32_MAX marks an empty bucket */
    size_t cap;     /* buckets, a power of two, or 0 */
    size_t n;
} vs_idmap;

/* Frees the table; the map is empty and reusable afterwards. */
void vs_idmap_free(vs_idmap *m);
/* Slot of id into *slot; false when absent. */
bool vs_idmap_get(const vs_idmap *m, uint64_t id, uint32_t *slot);
/* Sets id -> slot (insert or overwrite); false only when memory runs out. */
bool vs_idmap_put(vs_idmap *m, uint64_t id, uint32_t slot);
/* Removes id; false when it was absent. */
bool vs_idmap_del(vs_idmap *m, uint64_t id);
/* Makes room for n entries without growing later; false when memory runs out. */
bool vs_idmap_reserve(vs_idmap *m, size_t n);

#endif
