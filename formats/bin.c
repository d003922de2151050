/*
 * bin.c: the big-ann-benchmarks formats .fbin, .u8bin, .i8bin and .ibin: a header of uint32 rows
 * and uint32 dim, then rows x dim values. dataset.c checks that the file holds exactly that many
 * bytes, so a header claiming 2^32 rows over a small file fails at open.
 */
#include "dataset_impl.h"

/* The element type of a bin format. */
static vs_elem bin_elem(vs_format f)
{
    switch (f) {
    case VS_FORMAT_U8BIN: return VS_ELEM_U8;
    case VS_FORMAT_I8BIN: return VS_ELEM_I8;
    case VS_FORMAT_IBIN: return VS_ELEM_I32;
    default: return VS_ELEM_F32;
    }
}

vs_err vs_bin_open(vs_dataset *ds, vs_status *st)
{
    vs_src *s = &ds->src;
    uint32_t h[2];
    vs_err e = vs_src_read_exact(s, h, sizeof h, "the header (rows, dim)", st);
    if (e != VS_OK)
        return e;
    ds->elem = bin_elem(ds->fmt);
    ds->prefix = 0;
    ds->data_off = sizeof h;
    ds->rows = h[0];
    ds->dim = h[1];
    if (ds->dim == 0 && ds->rows > 0)
        return vs_status_set(st, VS_ERR_DATA_LOSS, "%s: header says %u rows of dim 0", s->name,
                             h[0]);
    return VS_OK;
}
