/*
 * collection.c: a collection binds a schema (vector fields + attribute fields), an index and an
 * attribute store, sharing slots: the slot the index gives an item (vs_index_upsert's slot_out) is
 * the slot its attributes live at in the attribute store, and a deleted item's slot is cleared in
 * both before the index can hand it out again.
 *
 * Here too: checking a mutation against the schema before anything is written (the caller's
 * thread), merging a patch into an item's stored state (the writer), and applying an item's full
 * state to index and attributes (the executor and recovery). Applying full states, never deltas,
 * makes replay idempotent.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* Checks a collection name: [A-Za-z0-9_-]{1,64}. */
vs_err vs_coll_check_name(const char *name, vs_status *st)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > VS_COLLECTION_NAME_MAX)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "collection name must have 1 to %d characters (got %zu)",
                             VS_COLLECTION_NAME_MAX, n);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                 "collection name '%s': character %zu is not one of "
                                 "[A-Za-z0-9_-]", name, i + 1);
    }
    return VS_OK;
}

/* Builds a collection with an empty index (checking the vector schema) and attribute store. */
vs_err vs_coll_create(uint32_t id, const char *name, const vs_field_spec *fields, uint32_t n_fields,
                      const vs_attr_schema *attrs, uint64_t created_seq,
                      const vs_index_options *iopt, vs_coll **out, vs_status *st)
{
    vs_err rc = vs_coll_check_name(name, st);
    if (rc)
        return rc;
    if (n_fields == 0 || n_fields > VS_MAX_FIELDS)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "collection '%s': %u vector fields; 1 to %d are allowed", name,
                             n_fields, VS_MAX_FIELDS);
    vs_coll *c = calloc(1, sizeof *c);
    if (!c)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    atomic_init(&c->refs, 1);
    c->id = id;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->created_seq = created_seq;
    c->n_fields = n_fields;
    memcpy(c->fields, fields, n_fields * sizeof *fields);
    for (uint32_t f = 0; f < n_fields; f++)
        c->dims[f] = fields[f].dim;
    c->attrs = attrs ? vs_attr_schema_copy(attrs) : vs_attr_schema_create();
    if (!c->attrs) {
        free(c);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    /* Vector and attribute field names share one namespace (patch's `clear` names either). */
    for (uint32_t a = 0; a < vs_attr_schema_count(c->attrs); a++)
        for (uint32_t f = 0; f < n_fields; f++)
            if (strcmp(vs_attr_schema_name(c->attrs, a), fields[f].name) == 0) {
                vs_coll_unref(c);
                return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                     "collection '%s': '%s' names both a vector and an attribute "
                                     "field", name, fields[f].name);
            }
    if ((rc = vs_index_create(fields, n_fields, iopt, &c->index, st)) ||
        (rc = vs_attr_store_create(c->attrs, NULL, &c->astore, st))) {
        vs_coll_unref(c);
        return rc;
    }
    *out = c;
    return VS_OK;
}

/* Builds a collection from its stored meta record. */
vs_err vs_coll_from_meta(const Vsstore__CollectionMeta *m, const vs_index_options *iopt,
                         vs_coll **out, vs_status *st)
{
    vs_field_spec fields[VS_MAX_FIELDS];
    if (m->n_vectors == 0 || m->n_vectors > VS_MAX_FIELDS)
        return vs_status_set(st, VS_ERR_DATA_LOSS, "stored collection %u has %zu vector fields",
                             m->id, m->n_vectors);
    for (size_t f = 0; f < m->n_vectors; f++) {
        const Vsstore__VectorField *v = m->vectors[f];
        memset(&fields[f], 0, sizeof fields[f]);
        snprintf(fields[f].name, sizeof fields[f].name, "%s", v->name);
        fields[f].dim = v->dim;
        fields[f].metric = (vs_metric)v->metric;
        fields[f].storage = (vs_storage)v->storage;
        fields[f].rerank = v->rerank;
    }
    vs_attr_schema *as = vs_attr_schema_create();
    if (!as)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    vs_err rc = VS_OK;
    for (size_t a = 0; a < m->n_attrs && !rc; a++)
        rc = vs_attr_schema_add(as, m->attrs[a]->name, (vs_attr_type)m->attrs[a]->type, st);
    if (!rc)
        rc = vs_coll_create(m->id, m->name, fields, (uint32_t)m->n_vectors, as, m->created_seq,
                            iopt, out, st);
    vs_attr_schema_destroy(as);
    if (rc && rc != VS_ERR_RESOURCE_EXHAUSTED) {
        char msg[VS_STATUS_MSG_LEN];
        snprintf(msg, sizeof msg, "%s", st ? st->msg : "");
        return vs_status_set(st, VS_ERR_DATA_LOSS, "stored collection %u: %s", m->id, msg);
    }
    return rc;
}

/* Fills a CollectionMeta pointing into c, vf/vfp (n_fields) and af/afp (attribute count). */
void vs_coll_to_meta(const vs_coll *c, Vsstore__CollectionMeta *m, Vsstore__VectorField *vf,
                     Vsstore__VectorField **vfp, Vsstore__AttrField *af, Vsstore__AttrField **afp)
{
    vsstore__collection_meta__init(m);
    m->id = c->id;
    m->name = (char *)c->name;
    m->created_seq = c->created_seq;
    for (uint32_t f = 0; f < c->n_fields; f++) {
        vsstore__vector_field__init(&vf[f]);
        vf[f].name = (char *)c->fields[f].name;
        vf[f].dim = c->fields[f].dim;
        vf[f].metric = c->fields[f].metric;
        vf[f].storage = c->fields[f].storage;
        vf[f].rerank = c->fields[f].rerank;
        vfp[f] = &vf[f];
    }
    m->n_vectors = c->n_fields;
    m->vectors = vfp;
    uint32_t na = vs_attr_schema_count(c->attrs);
    for (uint32_t a = 0; a < na; a++) {
        vsstore__attr_field__init(&af[a]);
        af[a].name = (char *)vs_attr_schema_name(c->attrs, a);
        af[a].type = vs_attr_schema_type(c->attrs, a);
        afp[a] = &af[a];
    }
    m->n_attrs = na;
    m->attrs = afp;
}

/* Takes a reference. */
vs_coll *vs_coll_ref(vs_coll *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

/* Drops a reference; the last frees index, attribute store and schema. */
void vs_coll_unref(vs_coll *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    vs_index_destroy(c->index);
    vs_attr_store_destroy(c->astore);
    vs_attr_schema_destroy(c->attrs);
    free(c);
}

/* Number of the vector field called name, or -1. */
int vs_coll_vfield(const vs_coll *c, const char *name)
{
    for (uint32_t f = 0; f < c->n_fields; f++)
        if (strcmp(c->fields[f].name, name) == 0)
            return (int)f;
    return -1;
}

/* Checks one vector against field f: dim, finite values, cosine non-zero. */
static vs_err check_vector(const vs_coll *c, uint32_t f, const vs_vector_in *v, size_t idx,
                           uint64_t id, vs_status *st)
{
    const vs_field_spec *sp = &c->fields[f];
    if (!v->values || v->dim != sp->dim)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "mutation %zu (id %llu), field '%s': dim %u does not match %u", idx,
                             (unsigned long long)id, sp->name, v->values ? v->dim : 0, sp->dim);
    double n2 = 0;
    for (uint32_t d = 0; d < sp->dim; d++) {
        float x = v->values[d];
        if (!isfinite(x))
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                 "mutation %zu (id %llu), field '%s': value %u is %s", idx,
                                 (unsigned long long)id, sp->name, d, isnan(x) ? "NaN" : "infinite");
        n2 += (double)x * x;
    }
    if (sp->metric == VS_METRIC_COSINE && !(n2 > 0))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "mutation %zu (id %llu), field '%s': a zero vector has no cosine", idx,
                             (unsigned long long)id, sp->name);
    return VS_OK;
}

/* Compares two uint64 for qsort. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Checks a mutation and builds its item and clear masks. */
vs_err vs_coll_build_mutation(const vs_coll *c, const vs_mutation *m, size_t idx, vs_eitem **item,
                              uint32_t *vec_clear, uint64_t **attr_clear, uint32_t *n_attr_clear,
                              vs_status *st)
{
    *item = NULL;
    *vec_clear = 0;
    *attr_clear = NULL;
    *n_attr_clear = 0;
    unsigned long long id = (unsigned long long)m->id;
    if (m->op != VS_MUT_UPSERT && m->op != VS_MUT_PATCH && m->op != VS_MUT_DELETE)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "mutation %zu (id %llu): unknown op %d",
                             idx, id, (int)m->op);
    if (m->op == VS_MUT_DELETE) {
        if (m->n_vectors || m->n_attrs || m->n_clear)
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                 "mutation %zu (id %llu): a delete carries no vectors, attributes "
                                 "or clears", idx, id);
        return VS_OK;
    }
    if (m->n_clear && m->op != VS_MUT_PATCH)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "mutation %zu (id %llu): only a patch clears fields", idx, id);
    uint32_t n_attr_fields = vs_attr_schema_count(c->attrs);
    vs_eitem *it = calloc(1, sizeof *it);
    if (!it)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    it->id = m->id;
    vs_err rc = VS_OK;
    for (uint32_t i = 0; i < m->n_vectors; i++) {
        const vs_vector_in *v = &m->vectors[i];
        int f = v->field ? vs_coll_vfield(c, v->field) : -1;
        if (f < 0) {
            rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                               "mutation %zu (id %llu): unknown vector field '%s'", idx, id,
                               v->field ? v->field : "");
            goto fail;
        }
        if (it->vec[f]) {
            rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                               "mutation %zu (id %llu): vector field '%s' given twice", idx, id,
                               v->field);
            goto fail;
        }
        if ((rc = check_vector(c, (uint32_t)f, v, idx, m->id, st)))
            goto fail;
        it->vec[f] = malloc(c->dims[f] * sizeof(float));
        if (!it->vec[f]) {
            rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
            goto fail;
        }
        memcpy(it->vec[f], v->values, c->dims[f] * sizeof(float));
        it->vec_mask |= 1u << f;
    }
    uint64_t *clears = NULL;
    for (uint32_t i = 0; i < m->n_attrs; i++) {
        const vs_attr_in *a = &m->attrs[i];
        int f = a->field ? vs_attr_schema_find(c->attrs, a->field, strlen(a->field)) : -1;
        if (f < 0) {
            rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                               "mutation %zu (id %llu): unknown attribute field '%s'", idx, id,
                               a->field ? a->field : "");
            goto fail;
        }
        vs_attr_type t = vs_attr_schema_type(c->attrs, (uint32_t)f);
        if (a->type != t) {
            rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                               "mutation %zu (id %llu): attribute '%s' is a %s field; got a %s "
                               "value", idx, id, a->field, vs_attr_type_name(t),
                               vs_attr_type_name(a->type));
            goto fail;
        }
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(m->attrs[j].field, a->field) == 0) {
                rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                   "mutation %zu (id %llu): attribute '%s' given twice", idx, id,
                                   a->field);
                goto fail;
            }
        if (t == VS_ATTR_TAG) {
            if (a->n_tags > VS_ATTR_MAX_TAGS) {
                rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                   "mutation %zu (id %llu): attribute '%s' has %u values; at most "
                                   "%d", idx, id, a->field, a->n_tags, VS_ATTR_MAX_TAGS);
                goto fail;
            }
            for (uint32_t k = 0; k < a->n_tags; k++)
                if (a->tags[k].len > VS_ATTR_TAG_MAX_LEN || (a->tags[k].len && !a->tags[k].s)) {
                    rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                       "mutation %zu (id %llu): attribute '%s' value %u is "
                                       "longer than %d bytes", idx, id, a->field, k,
                                       VS_ATTR_TAG_MAX_LEN);
                    goto fail;
                }
            if (a->n_tags == 0) { /* an empty set: the item lacks the field */
                if (m->op == VS_MUT_PATCH) {
                    uint64_t *nc = realloc(clears, (*n_attr_clear + 1) * sizeof *nc);
                    if (!nc) {
                        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
                        goto fail_clears;
                    }
                    clears = nc;
                    clears[(*n_attr_clear)++] = (uint64_t)f;
                }
                continue;
            }
        }
        vs_eattr ea = {.field = (uint32_t)f, .type = t, .ival = a->int_value,
                       .tags = (vs_attr_str *)a->tags, .n_tags = t == VS_ATTR_TAG ? a->n_tags : 0};
        if (!vs_eitem_set_attr(it, &ea)) {
            rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
            goto fail_clears;
        }
    }
    for (uint32_t i = 0; i < m->n_clear; i++) {
        const char *name = m->clear[i] ? m->clear[i] : "";
        int f = vs_coll_vfield(c, name);
        if (f >= 0) {
            if (it->vec[f]) {
                rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                   "mutation %zu (id %llu): field '%s' is both given and cleared",
                                   idx, id, name);
                goto fail_clears;
            }
            *vec_clear |= 1u << f;
            continue;
        }
        int a = vs_attr_schema_find(c->attrs, name, strlen(name));
        if (a < 0) {
            rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                               "mutation %zu (id %llu): cannot clear unknown field '%s'", idx, id,
                               name);
            goto fail_clears;
        }
        for (uint32_t k = 0; k < it->n_attrs; k++)
            if (it->attrs[k].field == (uint32_t)a) {
                rc = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                   "mutation %zu (id %llu): field '%s' is both given and cleared",
                                   idx, id, name);
                goto fail_clears;
            }
        uint64_t *nc = realloc(clears, (*n_attr_clear + 1) * sizeof *nc);
        if (!nc) {
            rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
            goto fail_clears;
        }
        clears = nc;
        clears[(*n_attr_clear)++] = (uint64_t)a;
    }
    (void)n_attr_fields;
    if (clears)
        qsort(clears, *n_attr_clear, sizeof *clears, cmp_u64);
    *attr_clear = clears;
    *item = it;
    return VS_OK;
fail_clears:
    free(clears);
    *n_attr_clear = 0;
fail:
    vs_eitem_free(it);
    return rc;
}

/* Merges a patch into the old state (NULL: the id is new) into a new item. */
vs_eitem *vs_coll_merge_patch(const vs_coll *c, const vs_eitem *old, const vs_eitem *patch,
                              uint32_t vec_clear, const uint64_t *attr_clear,
                              uint32_t n_attr_clear)
{
    vs_eitem *it = old ? vs_eitem_copy(old, c->dims) : calloc(1, sizeof *it);
    if (!it)
        return NULL;
    it->id = patch->id;
    for (uint32_t f = 0; f < c->n_fields; f++) {
        if (patch->vec[f]) {
            if (!it->vec[f] && !(it->vec[f] = malloc(c->dims[f] * sizeof(float)))) {
                vs_eitem_free(it);
                return NULL;
            }
            memcpy(it->vec[f], patch->vec[f], c->dims[f] * sizeof(float));
            it->vec_mask |= 1u << f;
        } else if (vec_clear >> f & 1u) {
            free(it->vec[f]);
            it->vec[f] = NULL;
            it->vec_mask &= ~(1u << f);
        }
    }
    for (uint32_t i = 0; i < n_attr_clear; i++)
        vs_eitem_clear_attr(it, (uint32_t)attr_clear[i]);
    for (uint32_t i = 0; i < patch->n_attrs; i++)
        if (!vs_eitem_set_attr(it, &patch->attrs[i])) {
            vs_eitem_free(it);
            return NULL;
        }
    return it;
}

/* Sets the attribute store's cells of slot from the item's attributes (the slot is clear). */
static vs_err set_attrs(vs_coll *c, uint32_t slot, const vs_eitem *it, vs_status *st)
{
    vs_attr_store_clear_slot(c->astore, slot);
    for (uint32_t i = 0; i < it->n_attrs; i++) {
        const vs_eattr *a = &it->attrs[i];
        vs_err rc = a->type == VS_ATTR_INT
                        ? vs_attr_store_set_int(c->astore, a->field, slot, a->ival, st)
                        : vs_attr_store_set_tags(c->astore, a->field, slot, a->tags, a->n_tags, st);
        if (rc)
            return rc;
    }
    return VS_OK;
}

/* Applies one item's full state. */
vs_err vs_coll_apply_put(vs_coll *c, const vs_eitem *it, vs_status *st)
{
    vs_eitem *const one[1] = {(vs_eitem *)it};
    return vs_coll_apply_puts(c, one, 1, st);
}

/* Applies many items' full states (distinct ids) in one index call. */
vs_err vs_coll_apply_puts(vs_coll *c, vs_eitem *const *items, size_t n, vs_status *st)
{
    enum { STACK = 64 };
    vs_item_vectors sv[STACK] = {{0}};
    uint32_t ss[STACK];
    vs_item_vectors *iv = n <= STACK ? sv : malloc(n * sizeof *iv);
    uint32_t *slots = n <= STACK ? ss : malloc(n * sizeof *slots);
    vs_err rc = VS_OK;
    if (!iv || !slots) {
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory applying items");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        memset(&iv[i], 0, sizeof iv[i]);
        iv[i].id = items[i]->id;
        for (uint32_t f = 0; f < c->n_fields; f++)
            iv[i].vectors[f] = items[i]->vec[f];
    }
    if ((rc = vs_index_upsert(c->index, iv, n, slots, st)))
        goto done;
    for (size_t i = 0; i < n && !rc; i++)
        rc = set_attrs(c, slots[i], items[i], st);
done:
    if (iv != sv)
        free(iv);
    if (slots != ss)
        free(slots);
    return rc;
}

/* Deletes id from index and attributes. */
vs_err vs_coll_apply_del(vs_coll *c, uint64_t id, vs_status *st)
{
    uint32_t slot;
    if (!vs_index_lookup(c->index, id, &slot))
        return VS_OK;
    vs_attr_store_clear_slot(c->astore, slot);
    return vs_index_delete(c->index, &id, 1, NULL, st);
}

/* Publishes count, field bytes and device memory for describe, which runs on other threads. */
void vs_coll_publish_stats(vs_coll *c)
{
    uint64_t dev_bytes;
    atomic_store_explicit(&c->stat_count, vs_index_count(c->index), memory_order_relaxed);
    for (uint32_t f = 0; f < c->n_fields; f++)
        atomic_store_explicit(&c->stat_bytes[f], vs_index_field_bytes(c->index, f),
                              memory_order_relaxed);
    atomic_store_explicit(&c->stat_device_bytes,
                          vs_index_device_bytes(c->index, &dev_bytes) ? dev_bytes : 0,
                          memory_order_relaxed);
}
