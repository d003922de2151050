/*
 * index.c: an index's life (create, destroy, growth) and its writes (upsert, patch, delete).
 *
 * Writes are checked whole before anything changes, so a rejected batch leaves no trace. Each
 * accepted item takes its old slot (an update) or a free one (most recently freed first) or a new
 * one at slot_limit; its vectors are encoded per field (quantized for the backend, an exact f32
 * copy kept on the host for rerank) and written to the backend in one call per field, so a device
 * backend gets few large copies rather than many small ones.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "index_internal.h"
#include "quant.h"

/* Items encoded and written per backend call. */
#define WRITE_BATCH 1024

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > VS_FIELD_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Checks a schema: names, dims, enums, b1 needs rerank, no duplicates. */
static vs_err check_fields(const vs_field_spec *fields, uint32_t n, vs_status *st)
{
    if (n < 1 || n > VS_MAX_FIELDS)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "a collection has 1 to %d vector fields, not %u",
                             VS_MAX_FIELDS, n);
    for (uint32_t f = 0; f < n; f++) {
        const vs_field_spec *s = &fields[f];
        if (memchr(s->name, '\0', sizeof s->name) == NULL || !valid_name(s->name))
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                 "field %u: name must match [A-Za-z0-9_-]{1,64}", f);
        if (s->dim < 1 || s->dim > VS_MAX_DIM)
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "field '%s': dim %u is outside 1..%d",
                                 s->name, s->dim, VS_MAX_DIM);
        if ((unsigned)s->metric > VS_METRIC_L2 || (unsigned)s->storage > VS_STORAGE_B1)
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "field '%s': unknown metric or storage",
                                 s->name);
        if (s->storage == VS_STORAGE_B1 && !s->rerank)
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                 "field '%s': b1 storage needs rerank (its bit scores only pick candidates)",
                                 s->name);
        for (uint32_t g = 0; g < f; g++)
            if (strcmp(fields[g].name, s->name) == 0)
                return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "field '%s' is named twice", s->name);
    }
    return VS_OK;
}

static const vs_backend_ops *backend_for(vs_device d)
{
#ifdef VS_HAVE_CUDA
    if (d == VS_DEVICE_CUDA)
        return &vs_cuda_backend;
#endif
    return d == VS_DEVICE_CPU ? &vs_cpu_backend : NULL;
}

vs_err vs_index_create(const vs_field_spec *fields, uint32_t n_fields, const vs_index_options *opt,
                       vs_index **out, vs_status *st)
{
    *out = NULL;
    vs_err e = check_fields(fields, n_fields, st);
    if (e)
        return e;
    vs_index_options o = {0};
    if (opt)
        o = *opt;
    if (!o.chunk_rows)
        o.chunk_rows = 65536;
    if (o.chunk_rows < 64 || (o.chunk_rows & (o.chunk_rows - 1)))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "chunk_rows %u must be a power of two >= 64", o.chunk_rows);
    const vs_backend_ops *be = backend_for(o.device);
    if (!be)
        return vs_status_set(st, VS_ERR_UNIMPLEMENTED,
                             "this build has no CUDA backend (nvcc was not found when it was built)");
    vs_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory creating an index");
    ix->n_fields = n_fields;
    memcpy(ix->spec, fields, n_fields * sizeof *fields);
    for (uint32_t f = 0; f < n_fields; f++)
        vs_field_layout_init(&ix->layout[f], &fields[f]);
    ix->opt = o;
    ix->be = be;
    ix->host = vs_cpu_kernels_best();
    while ((1u << ix->chunk_shift) < o.chunk_rows)
        ix->chunk_shift++;
    e = be->create(ix->layout, n_fields, &o, &ix->store, st);
    if (e) {
        free(ix);
        return e;
    }
    *out = ix;
    return VS_OK;
}

void vs_index_destroy(vs_index *ix)
{
    if (!ix)
        return;
    ix->be->destroy(ix->store);
    for (uint32_t c = 0; c < ix->n_chunks; c++) {
        free(ix->ids[c]);
        for (uint32_t f = 0; f < ix->n_fields; f++)
            if (ix->rerank[f])
                free(ix->rerank[f][c]);
    }
    for (uint32_t f = 0; f < ix->n_fields; f++) {
        free(ix->rerank[f]);
        free(ix->has[f]);
    }
    free(ix->ids);
    free(ix->live);
    free(ix->free_slots);
    vs_idmap_free(&ix->map);
    free(ix);
}

uint32_t vs_index_n_fields(const vs_index *ix) { return ix->n_fields; }
const vs_field_spec *vs_index_field(const vs_index *ix, uint32_t f)
{
    return f < ix->n_fields ? &ix->spec[f] : NULL;
}
int vs_index_field_by_name(const vs_index *ix, const char *name)
{
    for (uint32_t f = 0; f < ix->n_fields; f++)
        if (strcmp(ix->spec[f].name, name) == 0)
            return (int)f;
    return -1;
}
uint64_t vs_index_count(const vs_index *ix) { return ix->count; }
uint32_t vs_index_slot_limit(const vs_index *ix) { return ix->slot_limit; }
const char *vs_index_backend_name(const vs_index *ix) { return ix->be->name; }
const uint64_t *vs_index_live_words(const vs_index *ix) { return ix->live; }

bool vs_index_device_bytes(const vs_index *ix, uint64_t *held)
{
    *held = ix->be->device_bytes ? ix->be->device_bytes(ix->store) : 0;
    return ix->be->device_bytes != NULL;
}

bool vs_device_memory_info(vs_device d, int ordinal, uint64_t *free_bytes, uint64_t *total_bytes)
{
    *free_bytes = *total_bytes = 0;
#ifdef VS_HAVE_CUDA
    if (d == VS_DEVICE_CUDA)
        return vs_cuda_memory_info(ordinal, free_bytes, total_bytes);
#else
    (void)ordinal;
#endif
    (void)d;
    return false;
}

size_t vs_index_field_bytes(const vs_index *ix, uint32_t f)
{
    if (f >= ix->n_fields)
        return 0;
    size_t row = ix->layout[f].code_bytes + sizeof(vs_row_consts);
    if (ix->rerank[f])
        row += ix->spec[f].dim * sizeof(float);
    return (size_t)ix->slot_limit * row;
}

void vs_ix_slot_view(const vs_index *ix, vs_slot_view *v)
{
    memset(v, 0, sizeof *v);
    v->slot_limit = ix->slot_limit;
    v->chunk_shift = ix->chunk_shift;
    v->live = ix->live;
    for (uint32_t f = 0; f < ix->n_fields; f++)
        v->has[f] = ix->has[f];
    v->ids = ix->ids;
}

/* ===== Growth ===== */

/* Grows every bitmap to cover n_slots bits (zero-filled). */
static bool grow_words(vs_index *ix, size_t n_slots)
{
    size_t need = (n_slots + 63) / 64;
    if (need <= ix->words_cap)
        return true;
    size_t cap = ix->words_cap ? ix->words_cap : 16;
    while (cap < need)
        cap *= 2;
    uint64_t **arrays[VS_MAX_FIELDS + 1];
    uint32_t na = 0;
    arrays[na++] = &ix->live;
    for (uint32_t f = 0; f < ix->n_fields; f++)
        arrays[na++] = &ix->has[f];
    for (uint32_t i = 0; i < na; i++) {
        uint64_t *w = realloc(*arrays[i], cap * sizeof *w);
        if (!w)
            return false;
        memset(w + ix->words_cap, 0, (cap - ix->words_cap) * sizeof *w);
        *arrays[i] = w;
    }
    ix->words_cap = cap;
    return true;
}

/* Adds chunks until slot s exists. */
static vs_err ensure_slot(vs_index *ix, uint32_t s, vs_status *st)
{
    uint32_t rows = vs_ix_chunk_rows(ix);
    while (s >= ix->n_chunks * rows) {
        if (ix->n_chunks == ix->chunks_cap) {
            uint32_t cap = ix->chunks_cap ? ix->chunks_cap * 2 : 4;
            uint64_t **ids = realloc(ix->ids, cap * sizeof *ids);
            if (!ids)
                goto oom;
            ix->ids = ids;
            for (uint32_t f = 0; f < ix->n_fields; f++) {
                if (!ix->spec[f].rerank)
                    continue;
                float **r = realloc(ix->rerank[f], cap * sizeof *r);
                if (!r)
                    goto oom;
                ix->rerank[f] = r;
            }
            ix->chunks_cap = cap;
        }
        uint32_t c = ix->n_chunks;
        ix->ids[c] = calloc(rows, sizeof(uint64_t));
        if (!ix->ids[c])
            goto oom;
        for (uint32_t f = 0; f < ix->n_fields; f++) {
            if (!ix->spec[f].rerank)
                continue;
            ix->rerank[f][c] = malloc((size_t)rows * ix->spec[f].dim * sizeof(float));
            if (!ix->rerank[f][c]) {
                for (uint32_t g = 0; g < f; g++)
                    if (ix->spec[g].rerank)
                        free(ix->rerank[g][c]);
                free(ix->ids[c]);
                goto oom;
            }
        }
        if (!grow_words(ix, (size_t)(c + 1) * rows))
            goto oom;
        vs_err e = ix->be->reserve(ix->store, (c + 1) * rows, st);
        if (e) {
            for (uint32_t f = 0; f < ix->n_fields; f++)
                if (ix->spec[f].rerank)
                    free(ix->rerank[f][c]);
            free(ix->ids[c]);
            return e;
        }
        ix->n_chunks++;
    }
    return VS_OK;
oom:
    return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory growing the index past %u rows",
                         ix->n_chunks * rows);
}

/* ===== Writes ===== */

/* Checks one vector of field f: finite, and not zero for cosine. */
static vs_err check_vector(const vs_index *ix, uint32_t f, const float *v, uint64_t id, vs_status *st)
{
    uint32_t d = ix->spec[f].dim;
    if (!vs_all_finite(v, d))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "item %llu, field '%s': NaN or infinite value", (unsigned long long)id,
                             ix->spec[f].name);
    if (ix->spec[f].metric == VS_METRIC_COSINE && !(vs_norm2(v, d) > 0))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "item %llu, field '%s': a zero vector has no cosine",
                             (unsigned long long)id, ix->spec[f].name);
    return VS_OK;
}

/* Takes the slot for id: its own, a freed one, or a new one. *fresh says it was not live. */
static vs_err take_slot(vs_index *ix, uint64_t id, uint32_t *slot, bool *fresh, vs_status *st)
{
    if (vs_idmap_get(&ix->map, id, slot)) {
        *fresh = false;
        return VS_OK;
    }
    uint32_t s;
    if (ix->n_free) {
        s = ix->free_slots[--ix->n_free];
    } else {
        if (ix->slot_limit == UINT32_MAX)
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "an index holds at most 2^32-1 items");
        s = ix->slot_limit;
        vs_err e = ensure_slot(ix, s, st);
        if (e)
            return e;
        ix->slot_limit++;
    }
    if (!vs_idmap_put(&ix->map, id, s)) {
        if (s == ix->slot_limit - 1 && !ix->n_free)
            ix->slot_limit--;
        else
            ix->free_slots[ix->n_free++] = s;
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory in the id map");
    }
    ix->ids[s >> ix->chunk_shift][s & (vs_ix_chunk_rows(ix) - 1)] = id;
    vs_bit_set(ix->live, s);
    for (uint32_t f = 0; f < ix->n_fields; f++)
        vs_bit_clear(ix->has[f], s);
    ix->count++;
    *slot = s;
    *fresh = true;
    return VS_OK;
}

/* Per-field scratch for encoding a batch of rows. */
typedef struct write_scratch {
    uint8_t *codes;
    vs_row_consts *consts;
    uint32_t *slots;
    float *work; /* vs_encode_row's scratch */
} write_scratch;

static void scratch_free(write_scratch *w)
{
    free(w->codes);
    free(w->consts);
    free(w->slots);
    free(w->work);
}

static bool scratch_alloc(write_scratch *w, const vs_field_layout *l)
{
    memset(w, 0, sizeof *w);
    w->codes = malloc((size_t)WRITE_BATCH * l->code_bytes);
    w->consts = malloc(WRITE_BATCH * sizeof *w->consts);
    w->slots = malloc(WRITE_BATCH * sizeof *w->slots);
    w->work = malloc(vs_encode_work_floats(l->dim) * sizeof(float));
    if (!w->codes || !w->consts || !w->slots || !w->work) {
        scratch_free(w);
        return false;
    }
    return true;
}

/* The common body of upsert (replace = true) and patch. */
static vs_err write_items(vs_index *ix, const vs_item_vectors *items, const uint32_t *clear_mask,
                          size_t n, bool replace, uint32_t *slot_out, vs_status *st)
{
    for (size_t i = 0; i < n; i++) /* check everything before changing anything */
        for (uint32_t f = 0; f < ix->n_fields; f++)
            if (items[i].vectors[f]) {
                vs_err e = check_vector(ix, f, items[i].vectors[f], items[i].id, st);
                if (e)
                    return e;
            }
    for (uint32_t f = ix->n_fields; f < VS_MAX_FIELDS; f++)
        for (size_t i = 0; i < n; i++)
            if (items[i].vectors[f])
                return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                     "item %llu has a vector for field %u; the index has %u fields",
                                     (unsigned long long)items[i].id, f, ix->n_fields);
    /* Room first (the only step that can run out of memory), so the writes below cannot fail
     * half way. */
    size_t fresh_needed = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t s;
        if (!vs_idmap_get(&ix->map, items[i].id, &s))
            fresh_needed++;
    }
    if (!vs_idmap_reserve(&ix->map, ix->map.n + fresh_needed))
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory in the id map");
    if (fresh_needed > ix->n_free) {
        uint64_t last = (uint64_t)ix->slot_limit + (fresh_needed - ix->n_free) - 1;
        if (last >= UINT32_MAX)
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "an index holds at most 2^32-1 items");
        vs_err e = ensure_slot(ix, (uint32_t)last, st);
        if (e)
            return e;
    }
    write_scratch ws[VS_MAX_FIELDS];
    uint32_t f_ok = 0;
    for (; f_ok < ix->n_fields; f_ok++)
        if (!scratch_alloc(&ws[f_ok], &ix->layout[f_ok]))
            break;
    vs_err e = VS_OK;
    if (f_ok < ix->n_fields) {
        e = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory encoding rows");
        goto done;
    }
    uint32_t *changed = malloc(WRITE_BATCH * sizeof *changed);
    if (!changed) {
        e = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory encoding rows");
        goto done;
    }
    for (size_t b0 = 0; b0 < n && !e; b0 += WRITE_BATCH) {
        size_t b1 = b0 + WRITE_BATCH < n ? b0 + WRITE_BATCH : n;
        uint32_t nf[VS_MAX_FIELDS] = {0};
        size_t n_changed = 0;
        for (size_t i = b0; i < b1 && !e; i++) {
            uint32_t s;
            bool fresh;
            e = take_slot(ix, items[i].id, &s, &fresh, st);
            if (e)
                break;
            if (slot_out)
                slot_out[i] = s;
            changed[n_changed++] = s;
            for (uint32_t f = 0; f < ix->n_fields; f++) {
                const float *v = items[i].vectors[f];
                if (!v) {
                    bool drop = replace || (clear_mask && (clear_mask[i] >> f & 1u));
                    if (drop)
                        vs_bit_clear(ix->has[f], s);
                    continue;
                }
                const vs_field_spec *sp = &ix->spec[f];
                write_scratch *w = &ws[f];
                vs_encode_row(&ix->layout[f], v, w->codes + (size_t)nf[f] * ix->layout[f].code_bytes,
                              &w->consts[nf[f]], w->work);
                float *r = (float *)vs_ix_rerank_row(ix, f, s);
                if (r && sp->metric == VS_METRIC_COSINE)
                    vs_normalize(v, sp->dim, r);
                else if (r)
                    memcpy(r, v, sp->dim * sizeof(float));
                w->slots[nf[f]++] = s;
                vs_bit_set(ix->has[f], s);
            }
        }
        for (uint32_t f = 0; f < ix->n_fields && !e; f++)
            if (nf[f])
                e = ix->be->write_rows(ix->store, f, ws[f].slots, nf[f], ws[f].codes, ws[f].consts, st);
        if (ix->be->slots_changed && n_changed)
            ix->be->slots_changed(ix->store, changed, n_changed);
    }
    free(changed);
done:
    for (uint32_t f = 0; f < f_ok; f++)
        scratch_free(&ws[f]);
    return e;
}

vs_err vs_index_upsert(vs_index *ix, const vs_item_vectors *items, size_t n, uint32_t *slot_out,
                       vs_status *st)
{
    return write_items(ix, items, NULL, n, true, slot_out, st);
}

vs_err vs_index_patch(vs_index *ix, const vs_item_vectors *items, const uint32_t *clear_mask,
                      size_t n, uint32_t *slot_out, vs_status *st)
{
    return write_items(ix, items, clear_mask, n, false, slot_out, st);
}

vs_err vs_index_delete(vs_index *ix, const uint64_t *ids, size_t n, bool *existed, vs_status *st)
{
    if (ix->n_free + n > ix->free_cap) {
        size_t cap = ix->free_cap ? ix->free_cap : 64;
        while (cap < ix->n_free + n)
            cap *= 2;
        uint32_t *fs = realloc(ix->free_slots, cap * sizeof *fs);
        if (!fs)
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory deleting items");
        ix->free_slots = fs;
        ix->free_cap = cap;
    }
    uint32_t *changed = malloc((n ? n : 1) * sizeof *changed);
    if (!changed)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory deleting items");
    size_t n_changed = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t s;
        bool was = vs_idmap_get(&ix->map, ids[i], &s);
        if (existed)
            existed[i] = was;
        if (!was)
            continue;
        vs_idmap_del(&ix->map, ids[i]);
        vs_bit_clear(ix->live, s);
        for (uint32_t f = 0; f < ix->n_fields; f++)
            vs_bit_clear(ix->has[f], s);
        ix->free_slots[ix->n_free++] = s;
        ix->count--;
        changed[n_changed++] = s;
    }
    if (ix->be->slots_changed && n_changed)
        ix->be->slots_changed(ix->store, changed, n_changed);
    free(changed);
    return VS_OK;
}

bool vs_index_lookup(const vs_index *ix, uint64_t id, uint32_t *slot)
{
    return vs_idmap_get(&ix->map, id, slot);
}

bool vs_index_slot_id(const vs_index *ix, uint32_t s, uint64_t *id)
{
    if (s >= ix->slot_limit || !vs_bit_get(ix->live, s))
        return false;
    *id = ix->ids[s >> ix->chunk_shift][s & (vs_ix_chunk_rows(ix) - 1)];
    return true;
}

bool vs_index_get_vector(const vs_index *ix, uint64_t id, uint32_t f, float *out)
{
    uint32_t s;
    if (f >= ix->n_fields || !vs_idmap_get(&ix->map, id, &s) || !vs_bit_get(ix->has[f], s))
        return false;
    if (out) {
        const float *r = vs_ix_rerank_row(ix, f, s);
        if (r)
            memcpy(out, r, ix->spec[f].dim * sizeof(float));
        else
            ix->be->read_row(ix->store, f, s, out);
    }
    return true;
}
