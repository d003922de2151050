/*
 * vecs.c: the texmex formats .fvecs, .ivecs and .bvecs (per row: int32 dim, then dim values).
 *
 * The dim comes from the first row and the row count from the file's length. When the length is
 * not a whole number of rows, the file is walked row by row at open to say why (a row with another
 * dim, or a truncated last row) instead of failing somewhere in the middle of a bulk load. A file
 * whose length happens to work out despite an odd row is caught as that row is read (dataset.c).
 */
#include "dataset_impl.h"

#include <string.h>

/* The element type of a vecs format. */
static vs_elem vecs_elem(vs_format f)
{
    return f == VS_FORMAT_FVECS ? VS_ELEM_F32 : f == VS_FORMAT_IVECS ? VS_ELEM_I32 : VS_ELEM_U8;
}

vs_err vs_vecs_open(vs_dataset *ds, vs_status *st)
{
    vs_src *s = &ds->src;
    ds->elem = vecs_elem(ds->fmt);
    ds->prefix = 4;
    ds->data_off = 0;
    if (s->length == 0) { /* an empty file: no rows, and no dim to tell */
        ds->rows = 0;
        ds->dim = 0;
        return VS_OK;
    }
    int32_t d;
    vs_err e = vs_src_read_exact(s, &d, 4, "row 0's dim", st);
    if (e != VS_OK)
        return e;
    if (d <= 0)
        return vs_status_set(st, VS_ERR_DATA_LOSS,
                             "%s: row 0 at offset 0 says dim %d: not a %s file", s->name, d,
                             vs_format_name(ds->fmt));
    ds->dim = (uint32_t)d;
    uint64_t rowbytes = 4 + (uint64_t)ds->dim * vs_elem_size(ds->elem);
    if (s->length % rowbytes != 0)
        return vs_vecs_diagnose(ds, st);
    ds->rows = s->length / rowbytes;
    return VS_OK;
}

vs_err vs_vecs_diagnose(vs_dataset *ds, vs_status *st)
{
    vs_src *s = &ds->src;
    uint64_t rowbytes = 4 + (uint64_t)ds->dim * vs_elem_size(ds->elem);
    vs_err e = vs_src_seek(s, 0, st);
    for (uint64_t row = 0; e == VS_OK && s->off < s->length; row++) {
        uint64_t at = s->off, left = s->length - at;
        int32_t d;
        if (left < 4)
            return vs_status_set(st, VS_ERR_DATA_LOSS,
                                 "%s: truncated: %llu bytes left at offset %llu, row %llu's dim "
                                 "needs 4",
                                 s->name, (unsigned long long)left, (unsigned long long)at,
                                 (unsigned long long)row);
        e = vs_src_read_exact(s, &d, 4, "a row's dim", st);
        if (e != VS_OK)
            return e;
        if (d != (int32_t)ds->dim)
            return vs_status_set(st, VS_ERR_DATA_LOSS,
                                 "%s: row %llu at offset %llu says dim %d, expected %u", s->name,
                                 (unsigned long long)row, (unsigned long long)at, d, ds->dim);
        if (left < rowbytes)
            return vs_status_set(st, VS_ERR_DATA_LOSS,
                                 "%s: truncated: %llu bytes left at offset %llu, row %llu needs "
                                 "%llu",
                                 s->name, (unsigned long long)left, (unsigned long long)at,
                                 (unsigned long long)row, (unsigned long long)rowbytes);
        e = vs_src_skip(s, rowbytes - 4, "a row", st);
    }
    if (e != VS_OK)
        return e;
    return vs_status_set(st, VS_ERR_DATA_LOSS,
                         "%s: length %llu is not a whole number of rows of dim %u", s->name,
                         (unsigned long long)s->length, ds->dim);
}
