/*
 * attr_store.c: the column store by slot (see vs_attr_store.h).
 *
 * A tag column keeps, per slot, a cell with the slot's codes (one inline, more in a pool of small
 * arrays) and, per code, a posting bitmap. Writes change the cell and the postings together: the
 * new codes are merged against the old ones so only the difference touches postings. An int
 * column keeps the value and a presence bit per slot in chunks, and the range bins (attr_bins.c).
 *
 * Everything a write may need to allocate is allocated before anything changes, so a failed write
 * leaves the slot as it was (a tag value it interned stays in the dictionary, which is harmless).
 * CRoaring 0.2.66 cannot report a failed allocation inside roaring_bitmap_add; that one gap
 * remains.
 */
#include "attr_internal.h"

#include <string.h>

/* ===== Validation ===== */

/* Checks that field exists with type want and that slot is in range. */
static vs_err vs_store_check_args(const vs_attr_store *s, uint32_t field, vs_attr_type want,
                                  uint32_t slot, vs_status *st)
{
    if (field >= s->n_cols)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "attribute field %u does not exist (the schema has %u)", field,
                             s->n_cols);
    if (want && s->cols[field].type != want)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "attribute '%s' is %s field, not %s",
                             vs_attr_schema_name(s->schema, field),
                             want == VS_ATTR_TAG ? "an int" : "a tag",
                             want == VS_ATTR_TAG ? "a tag field" : "an int field");
    if (slot > VS_ATTR_MAX_SLOT)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "slot %u is past the limit %u", slot,
                             VS_ATTR_MAX_SLOT);
    return VS_OK;
}

/* ===== Create and destroy ===== */

/* Frees what column c holds. */
static void vs_store_col_free(vs_attr_col *c)
{
    vs_attr_bm_free(c->present);
    for (uint32_t i = 0; i < c->n_chunks; i++) {
        if (c->cells)
            free(c->cells[i]);
        if (c->vals)
            free(c->vals[i]);
        if (c->bits)
            free(c->bits[i]);
    }
    free(c->cells);
    free(c->vals);
    free(c->bits);
    for (uint32_t i = 0; i < c->post_cap; i++)
        if (c->post[i])
            vs_attr_bm_free(c->post[i]);
    free(c->post);
    for (uint32_t i = 0; i < c->n_multi; i++)
        free(c->multi[i]);
    free(c->multi);
    free(c->free_multi);
    vs_attr_dict_destroy(c->dict);
    vs_attr_bins_free(c);
}

/* Creates an empty store with its own copy of the schema. */
vs_err vs_attr_store_create(const vs_attr_schema *schema, const vs_attr_store_options *opt,
                            vs_attr_store **out, vs_status *st)
{
    *out = NULL;
    vs_attr_store *s = calloc(1, sizeof *s);
    if (!s)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory creating attributes");
    s->schema = vs_attr_schema_copy(schema);
    s->n_cols = s->schema ? vs_attr_schema_count(s->schema) : 0;
    s->bin_min = opt && opt->bin_min ? opt->bin_min : 4096;
    s->cols = calloc(s->n_cols ? s->n_cols : 1, sizeof *s->cols);
    bool ok = s->schema && s->cols;
    for (uint32_t i = 0; ok && i < s->n_cols; i++) {
        vs_attr_col *c = &s->cols[i];
        c->type = vs_attr_schema_type(s->schema, i);
        c->present = roaring_bitmap_create();
        ok = c->present != NULL;
        if (ok && c->type == VS_ATTR_TAG)
            ok = (c->dict = vs_attr_dict_create()) != NULL;
        else if (ok)
            ok = vs_attr_bins_init(c);
    }
    if (!ok) {
        vs_attr_store_destroy(s);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory creating attributes");
    }
    *out = s;
    return VS_OK;
}

/* Frees s and every column. */
void vs_attr_store_destroy(vs_attr_store *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; s->cols && i < s->n_cols; i++)
        vs_store_col_free(&s->cols[i]);
    free(s->cols);
    vs_attr_schema_destroy(s->schema);
    free(s);
}

/* The store's own schema. */
const vs_attr_schema *vs_attr_store_schema(const vs_attr_store *s) { return s->schema; }

/* ===== Chunks ===== */

/* Grows a chunk table (an array of n_old pointers) to n_new, the new entries NULL. */
static bool vs_store_grow_table(void *table, uint32_t n_old, uint32_t n_new)
{
    void **t = realloc(*(void ***)table, n_new * sizeof *t);
    if (!t)
        return false;
    memset(t + n_old, 0, (n_new - n_old) * sizeof *t);
    *(void ***)table = t;
    return true;
}

/* Makes sure the chunk holding slot exists in column c; false when out of memory. */
static bool vs_store_ensure_chunk(vs_attr_col *c, uint32_t slot)
{
    uint32_t ch = slot >> VS_ATTR_CHUNK_SHIFT;
    if (ch >= c->n_chunks) {
        uint32_t n = c->n_chunks ? c->n_chunks : 1;
        while (n <= ch)
            n *= 2;
        bool ok = c->type == VS_ATTR_TAG
                      ? vs_store_grow_table(&c->cells, c->n_chunks, n)
                      : vs_store_grow_table(&c->vals, c->n_chunks, n) &&
                            vs_store_grow_table(&c->bits, c->n_chunks, n);
        if (!ok) {
            /* vals may have grown without bits: keep n_chunks at the old length, which both
             * tables still hold, so nothing dangles. */
            return false;
        }
        c->n_chunks = n;
    }
    if (c->type == VS_ATTR_TAG) {
        if (!c->cells[ch] && !(c->cells[ch] = calloc(VS_ATTR_CHUNK, sizeof(vs_attr_cell))))
            return false;
    } else {
        if (!c->vals[ch] && !(c->vals[ch] = calloc(VS_ATTR_CHUNK, sizeof(int64_t))))
            return false;
        if (!c->bits[ch] && !(c->bits[ch] = calloc(VS_ATTR_CHUNK_WORDS, sizeof(uint64_t))))
            return false;
    }
    return true;
}

/* ===== Tag columns ===== */

/* Ascending order of uint32 codes, for qsort. */
static int vs_store_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Sorts codes[0 .. n) and drops duplicates; returns the new count. */
static uint32_t vs_store_sort_unique(uint32_t *codes, uint32_t n)
{
    if (n < 2)
        return n;
    qsort(codes, n, sizeof *codes, vs_store_cmp_u32);
    uint32_t k = 1;
    for (uint32_t i = 1; i < n; i++)
        if (codes[i] != codes[k - 1])
            codes[k++] = codes[i];
    return k;
}

/* Removes slot from the posting of code, freeing the posting when it empties. */
static void vs_store_post_remove(vs_attr_col *c, uint32_t code, uint32_t slot)
{
    roaring_bitmap_t *p = c->post[code];
    roaring_bitmap_remove(p, slot);
    if (roaring_bitmap_is_empty(p)) {
        vs_attr_bm_free(p);
        c->post[code] = NULL;
    }
}

/* Gives slot exactly the codes new[0 .. n) (ascending, unique) in tag column c. */
static vs_err vs_store_tag_assign(vs_attr_store *s, vs_attr_col *c, uint32_t slot,
                                  const uint32_t *codes, uint32_t n, vs_status *st)
{
    uint32_t n_old;
    const uint32_t *old = vs_attr_cell_codes(c, slot, &n_old);
    if (n == 0 && n_old == 0)
        return VS_OK;

    /* Allocate first: the chunk, posting slots and bitmaps for the new codes, a pool array. */
    if (n && !vs_store_ensure_chunk(c, slot))
        goto oom;
    if (n) {
        uint32_t need = codes[n - 1] + 1;
        if (need > c->post_cap) {
            uint32_t cap = c->post_cap;
            if (!VS_ATTR_GROW(c->post, cap, need))
                goto oom;
            memset(c->post + c->post_cap, 0, (cap - c->post_cap) * sizeof *c->post);
            c->post_cap = cap;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        if (!c->post[codes[i]] && !(c->post[codes[i]] = roaring_bitmap_create()))
            goto oom;
    uint32_t *arr = NULL, pool = 0;
    if (n > 1) {
        arr = malloc(n * sizeof *arr);
        if (!arr)
            goto oom;
        if (c->n_free_multi) {
            pool = c->free_multi[--c->n_free_multi];
        } else {
            /* The free list can hold every pool entry, so releasing one never allocates. */
            if (!VS_ATTR_GROW(c->multi, c->cap_multi, c->n_multi + 1) ||
                !VS_ATTR_GROW(c->free_multi, c->cap_free_multi, c->n_multi + 1)) {
                free(arr);
                goto oom;
            }
            pool = c->n_multi++;
        }
        memcpy(arr, codes, n * sizeof *arr);
        c->multi[pool] = arr;
    }

    /* Postings: walk old and new together, touching only the difference. */
    uint32_t i = 0, j = 0;
    while (i < n_old || j < n) {
        if (j == n || (i < n_old && old[i] < codes[j])) {
            vs_store_post_remove(c, old[i++], slot);
        } else if (i == n_old || codes[j] < old[i]) {
            roaring_bitmap_add(c->post[codes[j++]], slot);
        } else {
            i++;
            j++;
        }
    }
    /* Empty postings created above for codes the slot already had are impossible (they existed),
     * but a failed run may have left empty ones; they are harmless and freed on the next remove. */

    vs_attr_cell *cell = &c->cells[slot >> VS_ATTR_CHUNK_SHIFT][slot & (VS_ATTR_CHUNK - 1)];
    if (cell->n > 1) {
        free(c->multi[cell->v]);
        c->multi[cell->v] = NULL;
        c->free_multi[c->n_free_multi++] = cell->v;
    }
    if (n_old == 0 && n > 0) {
        roaring_bitmap_add(c->present, slot);
        c->n_present++;
    } else if (n_old > 0 && n == 0) {
        roaring_bitmap_remove(c->present, slot);
        c->n_present--;
    }
    cell->n = n;
    cell->v = n == 1 ? codes[0] : n > 1 ? pool : 0;
    if (n && slot >= s->slot_limit)
        s->slot_limit = (uint64_t)slot + 1;
    return VS_OK;
oom:
    return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory setting attribute '%s'",
                         vs_attr_schema_name(s->schema, (uint32_t)(c - s->cols)));
}

/* Sets a slot's tag field to a set of values, interning them. */
vs_err vs_attr_store_set_tags(vs_attr_store *s, uint32_t field, uint32_t slot,
                              const vs_attr_str *vals, size_t n, vs_status *st)
{
    vs_err e = vs_store_check_args(s, field, VS_ATTR_TAG, slot, st);
    if (e)
        return e;
    if (n > VS_ATTR_MAX_TAGS)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "attribute '%s': %zu values; the limit is %d per item",
                             vs_attr_schema_name(s->schema, field), n, VS_ATTR_MAX_TAGS);
    vs_attr_col *c = &s->cols[field];
    uint32_t codes[VS_ATTR_MAX_TAGS];
    for (size_t i = 0; i < n; i++) {
        if (vals[i].len > VS_ATTR_TAG_MAX_LEN)
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                 "attribute '%s': a value of %zu bytes; the limit is %d",
                                 vs_attr_schema_name(s->schema, field), vals[i].len,
                                 VS_ATTR_TAG_MAX_LEN);
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t code;
        if ((e = vs_attr_dict_intern(c->dict, vals[i].s, vals[i].len, &code, st)))
            return e;
        codes[i] = (uint32_t)code;
    }
    uint32_t k = vs_store_sort_unique(codes, (uint32_t)n);
    return vs_store_tag_assign(s, c, slot, codes, k, st);
}

/* Sets a slot's tag field to a set of known codes. */
vs_err vs_attr_store_set_tag_codes(vs_attr_store *s, uint32_t field, uint32_t slot,
                                   const uint64_t *codes, size_t n, vs_status *st)
{
    vs_err e = vs_store_check_args(s, field, VS_ATTR_TAG, slot, st);
    if (e)
        return e;
    if (n > VS_ATTR_MAX_TAGS)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "attribute '%s': %zu values; the limit is %d per item",
                             vs_attr_schema_name(s->schema, field), n, VS_ATTR_MAX_TAGS);
    vs_attr_col *c = &s->cols[field];
    uint32_t tmp[VS_ATTR_MAX_TAGS];
    for (size_t i = 0; i < n; i++) {
        if (codes[i] >= vs_attr_dict_count(c->dict))
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                 "attribute '%s': code %llu is not in the dictionary",
                                 vs_attr_schema_name(s->schema, field),
                                 (unsigned long long)codes[i]);
        tmp[i] = (uint32_t)codes[i];
    }
    uint32_t k = vs_store_sort_unique(tmp, (uint32_t)n);
    return vs_store_tag_assign(s, c, slot, tmp, k, st);
}

/* ===== Int columns ===== */

vs_err vs_attr_store_set_int(vs_attr_store *s, uint32_t field, uint32_t slot, int64_t v,
                             vs_status *st)
{
    vs_err e = vs_store_check_args(s, field, VS_ATTR_INT, slot, st);
    if (e)
        return e;
    vs_attr_col *c = &s->cols[field];
    if (!vs_store_ensure_chunk(c, slot))
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                             "out of memory setting attribute '%s'",
                             vs_attr_schema_name(s->schema, field));
    uint32_t ch = slot >> VS_ATTR_CHUNK_SHIFT, i = slot & (VS_ATTR_CHUNK - 1);
    int64_t old;
    if (vs_attr_int_at(c, slot, &old)) {
        if (old == v)
            return VS_OK;
        vs_attr_bins_remove(c, slot, old);
    } else {
        c->bits[ch][i >> 6] |= 1ull << (i & 63);
        roaring_bitmap_add(c->present, slot);
        c->n_present++;
    }
    c->vals[ch][i] = v;
    vs_attr_bins_add(s, c, slot, v);
    if (slot >= s->slot_limit)
        s->slot_limit = (uint64_t)slot + 1;
    return VS_OK;
}

/* Removes int column c's value from slot, if it has one. */
static void vs_store_int_clear(vs_attr_col *c, uint32_t slot)
{
    int64_t old;
    if (!vs_attr_int_at(c, slot, &old))
        return;
    uint32_t ch = slot >> VS_ATTR_CHUNK_SHIFT, i = slot & (VS_ATTR_CHUNK - 1);
    vs_attr_bins_remove(c, slot, old);
    c->bits[ch][i >> 6] &= ~(1ull << (i & 63));
    roaring_bitmap_remove(c->present, slot);
    c->n_present--;
}

/* ===== Clearing ===== */

vs_err vs_attr_store_clear(vs_attr_store *s, uint32_t field, uint32_t slot, vs_status *st)
{
    vs_err e = vs_store_check_args(s, field, 0, slot, st);
    if (e)
        return e;
    vs_attr_col *c = &s->cols[field];
    if (c->type == VS_ATTR_TAG)
        return vs_store_tag_assign(s, c, slot, NULL, 0, st);
    vs_store_int_clear(c, slot);
    return VS_OK;
}

/* Removes every field from a slot. */
void vs_attr_store_clear_slot(vs_attr_store *s, uint32_t slot)
{
    for (uint32_t f = 0; f < s->n_cols; f++) {
        vs_attr_col *c = &s->cols[f];
        if (c->type == VS_ATTR_TAG)
            (void)vs_store_tag_assign(s, c, slot, NULL, 0, NULL); /* clearing allocates nothing */
        else
            vs_store_int_clear(c, slot);
    }
}

/* ===== Reading ===== */

bool vs_attr_store_get_int(const vs_attr_store *s, uint32_t field, uint32_t slot, int64_t *v)
{
    if (field >= s->n_cols || s->cols[field].type != VS_ATTR_INT)
        return false;
    return vs_attr_int_at(&s->cols[field], slot, v);
}

/* Copies a slot's codes for a tag field; returns how many it holds. */
size_t vs_attr_store_get_tags(const vs_attr_store *s, uint32_t field, uint32_t slot,
                              uint64_t *codes, size_t cap)
{
    if (field >= s->n_cols || s->cols[field].type != VS_ATTR_TAG)
        return 0;
    uint32_t n;
    const uint32_t *c = vs_attr_cell_codes(&s->cols[field], slot, &n);
    for (uint32_t i = 0; i < n && i < cap; i++)
        codes[i] = c[i];
    return n;
}

/* A tag field's dictionary. */
const vs_attr_dict *vs_attr_store_dict(const vs_attr_store *s, uint32_t field)
{
    return field < s->n_cols ? s->cols[field].dict : NULL;
}

/* Adds a value to a tag field's dictionary. */
vs_err vs_attr_store_intern(vs_attr_store *s, uint32_t field, const char *v, size_t len,
                            uint64_t *code, vs_status *st)
{
    vs_err e = vs_store_check_args(s, field, VS_ATTR_TAG, 0, st);
    if (e)
        return e;
    return vs_attr_dict_intern(s->cols[field].dict, v, len, code, st);
}

/* How many slots have a field. */
uint64_t vs_attr_store_count(const vs_attr_store *s, uint32_t field)
{
    return field < s->n_cols ? s->cols[field].n_present : 0;
}

/* One past the highest slot ever set. */
uint64_t vs_attr_store_slot_limit(const vs_attr_store *s) { return s->slot_limit; }

/* ===== Invariants ===== */

/* Whether slot lies in a chunk that column c has allocated (other slots hold nothing). */
static bool vs_store_chunk_exists(const vs_attr_col *c, uint64_t slot)
{
    uint64_t ch = slot >> VS_ATTR_CHUNK_SHIFT;
    if (ch >= c->n_chunks)
        return false;
    return c->type == VS_ATTR_TAG ? c->cells[ch] != NULL : c->bits[ch] != NULL;
}

/* Checks tag column c (field number f): cells sorted and known, postings and presence match. */
static vs_err vs_store_check_tag(const vs_attr_store *s, const vs_attr_col *c, uint32_t f,
                                 vs_status *st)
{
    const char *name = vs_attr_schema_name(s->schema, f);
    uint64_t n_cells = 0, n_codes = 0;
    for (uint64_t slot = 0; slot < s->slot_limit; slot++) {
        if (!vs_store_chunk_exists(c, slot)) {
            slot |= VS_ATTR_CHUNK - 1; /* skip the chunk */
            continue;
        }
        uint32_t n;
        const uint32_t *codes = vs_attr_cell_codes(c, (uint32_t)slot, &n);
        if (n > 0)
            n_cells++;
        n_codes += n;
        if ((n > 0) != roaring_bitmap_contains(c->present, (uint32_t)slot))
            return vs_status_set(st, VS_ERR_INTERNAL, "'%s' slot %llu: presence is wrong", name,
                                 (unsigned long long)slot);
        for (uint32_t i = 0; i < n; i++) {
            if (i && codes[i] <= codes[i - 1])
                return vs_status_set(st, VS_ERR_INTERNAL, "'%s' slot %llu: codes not ascending",
                                     name, (unsigned long long)slot);
            if (codes[i] >= vs_attr_dict_count(c->dict) || codes[i] >= c->post_cap ||
                !c->post[codes[i]] || !roaring_bitmap_contains(c->post[codes[i]], (uint32_t)slot))
                return vs_status_set(st, VS_ERR_INTERNAL,
                                     "'%s' slot %llu: code %u is missing from its posting", name,
                                     (unsigned long long)slot, codes[i]);
        }
    }
    uint64_t n_post = 0;
    for (uint32_t code = 0; code < c->post_cap; code++)
        if (c->post[code])
            n_post += roaring_bitmap_get_cardinality(c->post[code]);
    if (n_post != n_codes)
        return vs_status_set(st, VS_ERR_INTERNAL, "'%s': postings hold %llu entries, cells %llu",
                             name, (unsigned long long)n_post, (unsigned long long)n_codes);
    if (n_cells != c->n_present || roaring_bitmap_get_cardinality(c->present) != c->n_present)
        return vs_status_set(st, VS_ERR_INTERNAL, "'%s': presence count is wrong", name);
    return VS_OK;
}

/* Checks int column c (field number f): presence bits, the presence bitmap, and the bins. */
static vs_err vs_store_check_int(const vs_attr_store *s, const vs_attr_col *c, uint32_t f,
                                 vs_status *st)
{
    const char *name = vs_attr_schema_name(s->schema, f);
    uint64_t n = 0;
    for (uint64_t slot = 0; slot < s->slot_limit; slot++) {
        if (!vs_store_chunk_exists(c, slot)) {
            slot |= VS_ATTR_CHUNK - 1;
            continue;
        }
        int64_t v;
        bool has = vs_attr_int_at(c, (uint32_t)slot, &v);
        n += has;
        if (has != roaring_bitmap_contains(c->present, (uint32_t)slot))
            return vs_status_set(st, VS_ERR_INTERNAL, "'%s' slot %llu: presence is wrong", name,
                                 (unsigned long long)slot);
    }
    if (n != c->n_present || roaring_bitmap_get_cardinality(c->present) != c->n_present)
        return vs_status_set(st, VS_ERR_INTERNAL, "'%s': presence count is wrong", name);
    return vs_attr_bins_check(c, f, st) ? VS_OK : st ? st->code : VS_ERR_INTERNAL;
}

/* Checks every column's invariants (tests). */
vs_err vs_attr_store_check(const vs_attr_store *s, vs_status *st)
{
    for (uint32_t f = 0; f < s->n_cols; f++) {
        const vs_attr_col *c = &s->cols[f];
        vs_err e = c->type == VS_ATTR_TAG ? vs_store_check_tag(s, c, f, st)
                                          : vs_store_check_int(s, c, f, st);
        if (e)
            return e;
    }
    return VS_OK;
}
