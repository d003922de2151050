/*
 * item.c: the engine's item (vectors as given, attributes sorted by field) and its storage
 * encoding, the protobuf-c Item of storage.proto.
 *
 * Packing points the protobuf message at the item's own arrays (no copy) and packs once; the
 * writer puts the same bytes in `items` and inside the log record. Unpacking checks the message
 * against the schema (field numbers, dims, attribute types), so a corrupt record is DATA_LOSS and
 * never reaches the index.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* Frees one attribute's tag array (values live in the same block). */
static void attr_free(vs_eattr *a)
{
    free(a->tags);
    a->tags = NULL;
    a->n_tags = 0;
}

/* Frees it and everything it owns. */
void vs_eitem_free(vs_eitem *it)
{
    if (!it)
        return;
    for (int f = 0; f < VS_MAX_FIELDS; f++)
        free(it->vec[f]);
    for (uint32_t i = 0; i < it->n_attrs; i++)
        attr_free(&it->attrs[i]);
    free(it->attrs);
    free(it);
}

/* Copies a's tags into one block (array then bytes) owned by dst. */
static bool attr_copy(vs_eattr *dst, const vs_eattr *a)
{
    *dst = *a;
    dst->tags = NULL;
    if (a->type != VS_ATTR_TAG || a->n_tags == 0) {
        dst->n_tags = 0;
        return true;
    }
    size_t bytes = a->n_tags * sizeof(vs_attr_str);
    for (uint32_t t = 0; t < a->n_tags; t++)
        bytes += a->tags[t].len;
    char *blk = malloc(bytes ? bytes : 1);
    if (!blk)
        return false;
    vs_attr_str *arr = (vs_attr_str *)blk;
    char *p = blk + a->n_tags * sizeof(vs_attr_str);
    for (uint32_t t = 0; t < a->n_tags; t++) {
        if (a->tags[t].len)
            memcpy(p, a->tags[t].s, a->tags[t].len);
        arr[t].s = p;
        arr[t].len = a->tags[t].len;
        p += a->tags[t].len;
    }
    dst->tags = arr;
    return true;
}

/* Deep copy; dims gives each field's length. */
vs_eitem *vs_eitem_copy(const vs_eitem *it, const uint32_t *dims)
{
    vs_eitem *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->id = it->id;
    c->vec_mask = it->vec_mask;
    for (int f = 0; f < VS_MAX_FIELDS; f++) {
        if (!it->vec[f])
            continue;
        c->vec[f] = malloc(dims[f] * sizeof(float));
        if (!c->vec[f])
            goto oom;
        memcpy(c->vec[f], it->vec[f], dims[f] * sizeof(float));
    }
    if (it->n_attrs) {
        c->attrs = calloc(it->n_attrs, sizeof *c->attrs);
        if (!c->attrs)
            goto oom;
        for (uint32_t i = 0; i < it->n_attrs; i++) {
            if (!attr_copy(&c->attrs[i], &it->attrs[i]))
                goto oom;
            c->n_attrs = i + 1;
        }
    }
    return c;
oom:
    vs_eitem_free(c);
    return NULL;
}

/* Sets attribute a (copied), replacing the one of the same field, keeping fields sorted. */
bool vs_eitem_set_attr(vs_eitem *it, const vs_eattr *a)
{
    uint32_t i = 0;
    while (i < it->n_attrs && it->attrs[i].field < a->field)
        i++;
    vs_eattr tmp;
    if (!attr_copy(&tmp, a))
        return false;
    if (i < it->n_attrs && it->attrs[i].field == a->field) {
        attr_free(&it->attrs[i]);
        it->attrs[i] = tmp;
        return true;
    }
    vs_eattr *na = realloc(it->attrs, (it->n_attrs + 1) * sizeof *na);
    if (!na) {
        attr_free(&tmp);
        return false;
    }
    memmove(na + i + 1, na + i, (it->n_attrs - i) * sizeof *na);
    na[i] = tmp;
    it->attrs = na;
    it->n_attrs++;
    return true;
}

/* Removes the attribute of field f when the item has it. */
void vs_eitem_clear_attr(vs_eitem *it, uint32_t f)
{
    for (uint32_t i = 0; i < it->n_attrs; i++) {
        if (it->attrs[i].field != f)
            continue;
        attr_free(&it->attrs[i]);
        memmove(it->attrs + i, it->attrs + i + 1, (it->n_attrs - i - 1) * sizeof *it->attrs);
        it->n_attrs--;
        return;
    }
}

/* Packs the item as a storage Item. */
vs_err vs_eitem_pack(const vs_eitem *it, const uint32_t *dims, uint32_t n_fields, uint8_t **buf,
                     size_t *len, vs_status *st)
{
    Vsstore__Item msg = VSSTORE__ITEM__INIT;
    Vsstore__Vector vecs[VS_MAX_FIELDS];
    Vsstore__Vector *vp[VS_MAX_FIELDS];
    msg.id = it->id;
    for (uint32_t f = 0; f < n_fields; f++) {
        if (!it->vec[f])
            continue;
        Vsstore__Vector *v = &vecs[msg.n_vectors];
        vsstore__vector__init(v);
        v->field = f;
        v->n_values = dims[f];
        v->values = it->vec[f];
        vp[msg.n_vectors++] = v;
    }
    msg.vectors = vp;
    Vsstore__Attr *attrs = NULL, **ap = NULL;
    ProtobufCBinaryData *tagbuf = NULL;
    size_t n_tags = 0;
    for (uint32_t i = 0; i < it->n_attrs; i++)
        n_tags += it->attrs[i].n_tags;
    if (it->n_attrs) {
        attrs = calloc(it->n_attrs, sizeof *attrs);
        ap = calloc(it->n_attrs, sizeof *ap);
        tagbuf = calloc(n_tags ? n_tags : 1, sizeof *tagbuf);
        if (!attrs || !ap || !tagbuf) {
            free(attrs);
            free(ap);
            free(tagbuf);
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        }
        size_t t0 = 0;
        for (uint32_t i = 0; i < it->n_attrs; i++) {
            const vs_eattr *a = &it->attrs[i];
            vsstore__attr__init(&attrs[i]);
            attrs[i].field = a->field;
            if (a->type == VS_ATTR_INT) {
                attrs[i].int_value = a->ival;
            } else {
                attrs[i].n_tags = a->n_tags;
                attrs[i].tags = tagbuf + t0;
                for (uint32_t t = 0; t < a->n_tags; t++) {
                    tagbuf[t0 + t].data = (uint8_t *)a->tags[t].s;
                    tagbuf[t0 + t].len = a->tags[t].len;
                }
                t0 += a->n_tags;
            }
            ap[i] = &attrs[i];
        }
        msg.n_attrs = it->n_attrs;
        msg.attrs = ap;
    }
    size_t sz = vsstore__item__get_packed_size(&msg);
    uint8_t *out = malloc(sz ? sz : 1);
    if (!out) {
        free(attrs);
        free(ap);
        free(tagbuf);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    vsstore__item__pack(&msg, out);
    free(attrs);
    free(ap);
    free(tagbuf);
    *buf = out;
    *len = sz;
    return VS_OK;
}

/* Unpacks a storage Item and checks it against the schema. */
vs_err vs_eitem_unpack(const uint8_t *buf, size_t len, const uint32_t *dims, uint32_t n_fields,
                       const vs_attr_schema *schema, vs_eitem **out, vs_status *st)
{
    Vsstore__Item *m = vsstore__item__unpack(NULL, len, buf);
    if (!m)
        return vs_status_set(st, VS_ERR_DATA_LOSS, "stored item does not decode (%zu bytes)", len);
    vs_err rc = VS_OK;
    vs_eitem *it = calloc(1, sizeof *it);
    if (!it) {
        rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    it->id = m->id;
    for (size_t i = 0; i < m->n_vectors; i++) {
        const Vsstore__Vector *v = m->vectors[i];
        if (v->field >= n_fields || v->n_values != dims[v->field] || it->vec[v->field]) {
            rc = vs_status_set(st, VS_ERR_DATA_LOSS,
                               "stored item %llu: vector field %u with %zu values does not fit "
                               "the schema", (unsigned long long)m->id, v->field, v->n_values);
            goto done;
        }
        it->vec[v->field] = malloc(v->n_values * sizeof(float));
        if (!it->vec[v->field]) {
            rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
        memcpy(it->vec[v->field], v->values, v->n_values * sizeof(float));
        it->vec_mask |= 1u << v->field;
    }
    if (m->n_attrs) {
        it->attrs = calloc(m->n_attrs, sizeof *it->attrs);
        if (!it->attrs) {
            rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
    }
    uint32_t n_attr_fields = schema ? vs_attr_schema_count(schema) : 0;
    for (size_t i = 0; i < m->n_attrs; i++) {
        const Vsstore__Attr *a = m->attrs[i];
        if (a->field >= n_attr_fields || (i > 0 && a->field <= m->attrs[i - 1]->field)) {
            rc = vs_status_set(st, VS_ERR_DATA_LOSS,
                               "stored item %llu: attribute field %u does not fit the schema",
                               (unsigned long long)m->id, a->field);
            goto done;
        }
        vs_eattr src = {.field = a->field, .type = vs_attr_schema_type(schema, a->field),
                        .ival = a->int_value};
        vs_attr_str small[16];
        vs_attr_str *tags = small;
        if (src.type == VS_ATTR_TAG) {
            if (a->n_tags > 16 && !(tags = malloc(a->n_tags * sizeof *tags))) {
                rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
                goto done;
            }
            for (size_t t = 0; t < a->n_tags; t++) {
                tags[t].s = (const char *)a->tags[t].data;
                tags[t].len = a->tags[t].len;
            }
            src.tags = tags;
            src.n_tags = (uint32_t)a->n_tags;
        }
        bool ok = attr_copy(&it->attrs[i], &src);
        if (tags != small)
            free(tags);
        if (!ok) {
            rc = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
        it->n_attrs = (uint32_t)i + 1;
    }
done:
    vsstore__item__free_unpacked(m, NULL);
    if (rc) {
        vs_eitem_free(it);
        return rc;
    }
    *out = it;
    return VS_OK;
}
