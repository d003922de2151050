/*
 * npy.c: NumPy .npy files (format versions 1, 2 and 3).
 *
 * The file is the magic "\x93NUMPY", a version, the header's length (uint16 in v1, uint32 in
 * v2/v3), then the header: a Python dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (1000, 128), }
 * and the array's bytes. This parser takes exactly that dict (the three keys, string, bool and
 * tuple-of-int values), not Python in general. A 2-D shape (rows, dim) is rows of dim values; a
 * 1-D shape (n,) is n rows of one value. Little-endian float32, uint8, int8 and int32 in C order
 * are read; anything else is refused with a message that says what to save instead.
 */
#include "dataset_impl.h"

#include <stdlib.h>
#include <string.h>

#define NPY_MAX_HEADER (1u << 20)
#define NPY_MAX_NDIM 8

/* A cursor over the header text. */
typedef struct npy_cur {
    const char *p, *end;
} npy_cur;

/* The parsed header. */
typedef struct npy_header {
    char descr[16];
    int fortran; /* -1 until seen */
    int ndim;    /* -1 until seen */
    uint64_t shape[NPY_MAX_NDIM];
} npy_header;

/* Skips spaces (and the header's closing newline). */
static void skip_ws(npy_cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Consumes ch (after spaces); false if it is not next. */
static bool eat(npy_cur *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* Parses a quoted string ('...' or "...", no escapes) into out; false if malformed or too long. */
static bool parse_string(npy_cur *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return false;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap)
            return false;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return false;
    c->p++;
    out[n] = '\0';
    return true;
}

/* Parses True or False. */
static bool parse_bool(npy_cur *c, int *out)
{
    skip_ws(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        c->p += 4;
        *out = 1;
        return true;
    }
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        *out = 0;
        return true;
    }
    return false;
}

/* Parses a tuple of non-negative integers: (), (n,), (a, b), with an optional trailing comma. */
static bool parse_shape(npy_cur *c, npy_header *h)
{
    if (!eat(c, '('))
        return false;
    h->ndim = 0;
    for (;;) {
        if (eat(c, ')'))
            return true;
        skip_ws(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9' || h->ndim == NPY_MAX_NDIM)
            return false;
        uint64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (UINT64_MAX - 9) / 10)
                return false;
            v = v * 10 + (uint64_t)(*c->p++ - '0');
        }
        if (c->p < c->end && *c->p == 'L') /* Python 2 long suffix */
            c->p++;
        h->shape[h->ndim++] = v;
        if (!eat(c, ',')) {
            return eat(c, ')');
        }
    }
}

/* Parses the dict; false (with *why set) when it is not the dict numpy writes. */
static bool parse_dict(npy_cur *c, npy_header *h, const char **why)
{
    h->descr[0] = '\0';
    h->fortran = -1;
    h->ndim = -1;
    *why = "expected '{'";
    if (!eat(c, '{'))
        return false;
    for (;;) {
        char key[32];
        if (eat(c, '}'))
            break;
        *why = "expected a quoted key";
        if (!parse_string(c, key, sizeof key))
            return false;
        *why = "expected ':' after a key";
        if (!eat(c, ':'))
            return false;
        if (strcmp(key, "descr") == 0) {
            *why = "'descr' must be a type string such as '<f4'";
            if (!parse_string(c, h->descr, sizeof h->descr))
                return false;
        } else if (strcmp(key, "fortran_order") == 0) {
            *why = "'fortran_order' must be True or False";
            if (!parse_bool(c, &h->fortran))
                return false;
        } else if (strcmp(key, "shape") == 0) {
            *why = "'shape' must be a tuple of integers";
            if (!parse_shape(c, h))
                return false;
        } else {
            *why = "unexpected key (only 'descr', 'fortran_order', 'shape')";
            return false;
        }
        if (!eat(c, ',')) {
            *why = "expected ',' or '}'";
            if (!eat(c, '}'))
                return false;
            break;
        }
    }
    skip_ws(c);
    *why = "text after the closing '}'";
    if (c->p != c->end)
        return false;
    *why = "a key is missing (needs 'descr', 'fortran_order' and 'shape')";
    return h->descr[0] && h->fortran >= 0 && h->ndim >= 0;
}

/* Maps a descr such as '<f4' to an element type; INVALID_ARGUMENT naming what to use instead. */
static vs_err descr_elem(const vs_src *s, const char *d, vs_elem *out, vs_status *st)
{
    char order = d[0];
    bool ordered = order == '<' || order == '>' || order == '|' || order == '=';
    const char *t = ordered ? d + 1 : d;
    if (strcmp(t, "u1") == 0 || strcmp(t, "i1") == 0) {
        *out = t[0] == 'u' ? VS_ELEM_U8 : VS_ELEM_I8;
        return VS_OK;
    }
    if ((strcmp(t, "f4") == 0 || strcmp(t, "i4") == 0) && order == '>')
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%s: dtype '%s' is big-endian: save it little-endian ('<%s')",
                             s->name, d, t);
    if ((strcmp(t, "f4") == 0 || strcmp(t, "i4") == 0) && order != '|') {
        *out = t[0] == 'f' ? VS_ELEM_F32 : VS_ELEM_I32;
        return VS_OK;
    }
    return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                         "%s: dtype '%s' is not supported: save float32 '<f4', uint8 '|u1', int8 "
                         "'|i1' or int32 '<i4'",
                         s->name, d);
}

/* Checks the parsed header and fills ds from it. */
static vs_err apply_header(vs_dataset *ds, const npy_header *h, vs_status *st)
{
    const vs_src *s = &ds->src;
    vs_err e = descr_elem(s, h->descr, &ds->elem, st);
    if (e != VS_OK)
        return e;
    if (h->ndim != 1 && h->ndim != 2)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%s: array has %d dimensions: expected a 2-D (rows, dim) or 1-D "
                             "(rows,) array",
                             s->name, h->ndim);
    uint64_t rows = h->shape[0], dim = h->ndim == 2 ? h->shape[1] : 1;
    if (h->fortran && rows > 1 && dim > 1)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%s: fortran_order is True: save a C-order array "
                             "(numpy.ascontiguousarray)",
                             s->name);
    if (dim > UINT32_MAX || (dim == 0 && rows > 0))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%s: shape (%llu, %llu) is not rows of 1 .. 2^32-1 values", s->name,
                             (unsigned long long)rows, (unsigned long long)dim);
    ds->rows = rows;
    ds->dim = (uint32_t)dim;
    return VS_OK;
}

vs_err vs_npy_open(vs_dataset *ds, vs_status *st)
{
    vs_src *s = &ds->src;
    uint8_t pre[12];
    vs_err e = vs_src_read_exact(s, pre, 8, "the npy magic and version", st);
    if (e != VS_OK)
        return e;
    if (memcmp(pre, "\x93NUMPY", 6) != 0)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%s: bad magic at offset 0: not a .npy file (expected \\x93NUMPY)",
                             s->name);
    uint8_t major = pre[6], minor = pre[7];
    if (major < 1 || major > 3)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%s: npy format version %u.%u is not supported (1, 2 or 3)", s->name,
                             major, minor);
    size_t lenbytes = major == 1 ? 2 : 4;
    e = vs_src_read_exact(s, pre + 8, lenbytes, "the npy header length", st);
    if (e != VS_OK)
        return e;
    uint32_t hlen = major == 1 ? (uint32_t)pre[8] | (uint32_t)pre[9] << 8
                               : (uint32_t)pre[8] | (uint32_t)pre[9] << 8 |
                                     (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
    uint64_t off = 8 + lenbytes;
    if (hlen > s->length - off)
        return vs_status_set(st, VS_ERR_DATA_LOSS,
                             "%s: truncated: %llu bytes left at offset %llu, the header needs %u",
                             s->name, (unsigned long long)(s->length - off),
                             (unsigned long long)off, hlen);
    if (hlen > NPY_MAX_HEADER)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%s: npy header of %u bytes at offset %llu is longer than %u", s->name,
                             hlen, (unsigned long long)off, NPY_MAX_HEADER);
    char *text = malloc(hlen + 1);
    if (!text)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "%s: out of memory", s->name);
    e = vs_src_read_exact(s, text, hlen, "the npy header", st);
    if (e == VS_OK) {
        text[hlen] = '\0';
        npy_cur c = {text, text + hlen};
        npy_header h;
        const char *why;
        if (!parse_dict(&c, &h, &why))
            e = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                              "%s: bad npy header at offset %llu, byte %ld: %s", s->name,
                              (unsigned long long)off, (long)(c.p - text), why);
        else
            e = apply_header(ds, &h, st);
    }
    free(text);
    ds->prefix = 0;
    ds->data_off = off + hlen;
    return e;
}
