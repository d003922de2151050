/*
 * idx.c: the MNIST IDX format (t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, often .gz).
 *
 * The header is big-endian: two zero bytes, a type byte (0x08 ubyte, 0x09 sbyte, 0x0B short,
 * 0x0C int, 0x0D float, 0x0E double), the number of dimensions, then one uint32 per dimension.
 * Item n of an (N, 28, 28) image file becomes row n of 784 values; a label file (N) has dim 1.
 * Only the byte types are read: MNIST and its relatives use nothing else.
 */
#include "dataset_impl.h"

/* A big-endian uint32 at p. */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The name of IDX type byte t, for messages. */
static const char *idx_type_name(uint8_t t)
{
    switch (t) {
    case 0x08: return "ubyte";
    case 0x09: return "sbyte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
    }
}

vs_err vs_idx_open(vs_dataset *ds, vs_status *st)
{
    vs_src *s = &ds->src;
    uint8_t m[4];
    vs_err e = vs_src_read_exact(s, m, 4, "the IDX magic", st);
    if (e != VS_OK)
        return e;
    if (m[0] != 0 || m[1] != 0 || m[3] == 0)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%s: bad magic 0x%02x%02x%02x%02x at offset 0: not an IDX file "
                             "(expected 0x0000TTNN)",
                             s->name, m[0], m[1], m[2], m[3]);
    if (m[2] != 0x08 && m[2] != 0x09)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%s: IDX type 0x%02x (%s) at offset 2 is not supported: only ubyte "
                             "(0x08) and sbyte (0x09)",
                             s->name, m[2], idx_type_name(m[2]));
    int ndims = m[3];
    if (ds->idx_ndims && ndims != ds->idx_ndims)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%s: the name says idx%d but the header at offset 3 says %d "
                             "dimensions",
                             s->name, ds->idx_ndims, ndims);
    ds->elem = m[2] == 0x08 ? VS_ELEM_U8 : VS_ELEM_I8;
    uint64_t dim = 1;
    for (int i = 0; i < ndims; i++) {
        uint8_t b[4];
        e = vs_src_read_exact(s, b, 4, "an IDX dimension", st);
        if (e != VS_OK)
            return e;
        if (i == 0)
            ds->rows = be32(b);
        else if (!vs_mul_u64(dim, be32(b), &dim) || dim > UINT32_MAX)
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                 "%s: IDX item size at offset %d exceeds 2^32-1 values", s->name,
                                 4 + 4 * i);
    }
    if (dim == 0 && ds->rows > 0)
        return vs_status_set(st, VS_ERR_DATA_LOSS, "%s: IDX header says items of 0 values",
                             s->name);
    ds->dim = (uint32_t)dim;
    ds->prefix = 0;
    ds->data_off = 4 + 4 * (uint64_t)ndims;
    return VS_OK;
}
