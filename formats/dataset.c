/*
 * dataset.c: opening a dataset file of any format, and streaming its rows.
 *
 * The format files (vecs.c, bin.c, npy.c, idx.c) only parse headers. Everything after the header
 * is handled here the same way for all of them: the file's length must be exactly the header's
 * promise (checked before any read or allocation sized by a header field), rows are read in
 * chunks of about 1 MiB, the vecs formats' per-row dim prefixes are checked as they pass, and
 * values are converted to what the caller asked for.
 */
#include "dataset_impl.h"

#include <stdlib.h>
#include <string.h>

#define VS_CHUNK_BYTES (1u << 20)

/* What a read delivers: the file's own elements, floats or int32. */
typedef enum out_kind { OUT_RAW, OUT_F32, OUT_I32 } out_kind;

static const struct {
    const char *name;
    vs_format fmt;
} format_names[] = {
    {"fvecs", VS_FORMAT_FVECS}, {"ivecs", VS_FORMAT_IVECS}, {"bvecs", VS_FORMAT_BVECS},
    {"fbin", VS_FORMAT_FBIN},   {"u8bin", VS_FORMAT_U8BIN}, {"i8bin", VS_FORMAT_I8BIN},
    {"ibin", VS_FORMAT_IBIN},   {"npy", VS_FORMAT_NPY},     {"idx", VS_FORMAT_IDX},
};

#define N_FORMAT_NAMES (sizeof format_names / sizeof format_names[0])

uint32_t vs_elem_size(vs_elem e) { return (e == VS_ELEM_F32 || e == VS_ELEM_I32) ? 4 : 1; }

const char *vs_elem_name(vs_elem e)
{
    switch (e) {
    case VS_ELEM_F32: return "float32";
    case VS_ELEM_U8: return "uint8";
    case VS_ELEM_I8: return "int8";
    case VS_ELEM_I32: return "int32";
    }
    return "unknown";
}

const char *vs_format_name(vs_format f)
{
    for (size_t i = 0; i < N_FORMAT_NAMES; i++)
        if (format_names[i].fmt == f)
            return format_names[i].name;
    return "auto";
}

vs_err vs_format_from_name(const char *name, vs_format *out, vs_status *st)
{
    for (size_t i = 0; i < N_FORMAT_NAMES; i++)
        if (strcmp(format_names[i].name, name) == 0) {
            *out = format_names[i].fmt;
            return VS_OK;
        }
    return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                         "unknown format '%s': expected fvecs, ivecs, bvecs, fbin, u8bin, i8bin, "
                         "ibin, npy or idx",
                         name);
}

/* Whether the n bytes at s end with suffix. */
static bool has_suffix(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* The format path's name says, and for IDX the dimension count ("idx3" -> 3); false if none. */
static bool detect(const char *path, vs_format *fmt, int *idx_ndims)
{
    static const struct {
        const char *suffix;
        vs_format fmt;
    } endings[] = {
        {".fvecs", VS_FORMAT_FVECS}, {".ivecs", VS_FORMAT_IVECS}, {".bvecs", VS_FORMAT_BVECS},
        {".fbin", VS_FORMAT_FBIN},   {".u8bin", VS_FORMAT_U8BIN}, {".i8bin", VS_FORMAT_I8BIN},
        {".ibin", VS_FORMAT_IBIN},   {".npy", VS_FORMAT_NPY},
    };
    const char *base = vs_base_name(path);
    size_t n = strlen(base);
    if (has_suffix(base, n, ".gz"))
        n -= 3;
    *idx_ndims = 0;
    for (size_t i = 0; i < sizeof endings / sizeof endings[0]; i++)
        if (has_suffix(base, n, endings[i].suffix)) {
            *fmt = endings[i].fmt;
            return true;
        }
    /* "t10k-images-idx3-ubyte": idx, a digit, "-ubyte" */
    if (n >= 10 && has_suffix(base, n, "-ubyte") && memcmp(base + n - 10, "idx", 3) == 0 &&
        base[n - 7] >= '1' && base[n - 7] <= '9') {
        *fmt = VS_FORMAT_IDX;
        *idx_ndims = base[n - 7] - '0';
        return true;
    }
    return false;
}

/* The error for a path whose name says no format. */
static vs_err unknown_format(const char *path, vs_status *st)
{
    return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                         "%s: cannot tell the format from the name: expected .fvecs, .ivecs, "
                         ".bvecs, .fbin, .u8bin, .i8bin, .ibin, .npy, -idx3-ubyte or -idx1-ubyte "
                         "(optionally .gz)",
                         vs_base_name(path));
}

vs_err vs_format_from_path(const char *path, vs_format *out, vs_status *st)
{
    int ndims;
    return detect(path, out, &ndims) ? VS_OK : unknown_format(path, st);
}

/* Checks that the file holds exactly rows x rowbytes after data_off, as the header claims. */
static vs_err check_length(vs_dataset *ds, vs_status *st)
{
    const vs_src *s = &ds->src;
    uint64_t total;
    if (!vs_mul_u64(ds->rows, ds->rowbytes, &total) || total > s->length - ds->data_off)
        return vs_status_set(st, VS_ERR_DATA_LOSS,
                             "%s: header says %llu rows of dim %u (%s) but only %llu bytes "
                             "follow it at offset %llu",
                             s->name, (unsigned long long)ds->rows, ds->dim,
                             vs_elem_name(ds->elem),
                             (unsigned long long)(s->length - ds->data_off),
                             (unsigned long long)ds->data_off);
    if (total < s->length - ds->data_off)
        return vs_status_set(st, VS_ERR_DATA_LOSS,
                             "%s: %llu unexpected bytes after the last row at offset %llu (header "
                             "says %llu rows of dim %u)",
                             s->name, (unsigned long long)(s->length - ds->data_off - total),
                             (unsigned long long)(ds->data_off + total),
                             (unsigned long long)ds->rows, ds->dim);
    return VS_OK;
}

vs_err vs_dataset_open_as(const char *path, vs_format fmt, vs_dataset **out, vs_status *st)
{
    *out = NULL;
    int idx_ndims = 0;
    vs_format named;
    bool said = detect(path, &named, &idx_ndims);
    if (fmt == VS_FORMAT_AUTO && !said)
        return unknown_format(path, st);
    if (fmt == VS_FORMAT_AUTO)
        fmt = named;
    if (fmt != VS_FORMAT_IDX)
        idx_ndims = 0;
    vs_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    ds->fmt = fmt;
    ds->idx_ndims = idx_ndims;
    vs_err e = vs_src_open(&ds->src, path, st);
    if (e == VS_OK) {
        switch (fmt) {
        case VS_FORMAT_FVECS:
        case VS_FORMAT_IVECS:
        case VS_FORMAT_BVECS: e = vs_vecs_open(ds, st); break;
        case VS_FORMAT_FBIN:
        case VS_FORMAT_U8BIN:
        case VS_FORMAT_I8BIN:
        case VS_FORMAT_IBIN: e = vs_bin_open(ds, st); break;
        case VS_FORMAT_NPY: e = vs_npy_open(ds, st); break;
        case VS_FORMAT_IDX: e = vs_idx_open(ds, st); break;
        default: e = vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "unknown format %d", (int)fmt);
        }
    }
    if (e == VS_OK) {
        ds->esize = vs_elem_size(ds->elem);
        if (!vs_mul_u64(ds->dim, ds->esize, &ds->rowbytes) || ds->data_off > ds->src.length)
            e = vs_status_set(st, VS_ERR_INTERNAL, "%s: bad header bookkeeping", ds->src.name);
        ds->rowbytes += ds->prefix;
    }
    if (e == VS_OK)
        e = check_length(ds, st);
    if (e == VS_OK)
        e = vs_src_seek(&ds->src, ds->data_off, st);
    if (e != VS_OK) {
        vs_dataset_close(ds);
        return e;
    }
    *out = ds;
    return VS_OK;
}

vs_err vs_dataset_open(const char *path, vs_dataset **out, vs_status *st)
{
    return vs_dataset_open_as(path, VS_FORMAT_AUTO, out, st);
}

void vs_dataset_close(vs_dataset *ds)
{
    if (!ds)
        return;
    vs_src_close(&ds->src);
    free(ds->chunk);
    free(ds);
}

uint64_t vs_dataset_rows(const vs_dataset *ds) { return ds->rows; }
uint32_t vs_dataset_dim(const vs_dataset *ds) { return ds->dim; }
vs_elem vs_dataset_elem(const vs_dataset *ds) { return ds->elem; }
vs_format vs_dataset_format(const vs_dataset *ds) { return ds->fmt; }
uint64_t vs_dataset_tell(const vs_dataset *ds) { return ds->next_row; }

/* Converts n values of type elem at src into out of kind k (not OUT_I32 from float32). */
static void convert(vs_elem elem, const uint8_t *src, size_t n, out_kind k, void *out)
{
    if (k == OUT_RAW || (k == OUT_F32 && elem == VS_ELEM_F32) ||
        (k == OUT_I32 && elem == VS_ELEM_I32)) {
        memcpy(out, src, n * vs_elem_size(elem));
        return;
    }
    if (k == OUT_F32) {
        float *o = out;
        switch (elem) {
        case VS_ELEM_U8:
            for (size_t i = 0; i < n; i++)
                o[i] = (float)src[i];
            break;
        case VS_ELEM_I8:
            for (size_t i = 0; i < n; i++)
                o[i] = (float)(int8_t)src[i];
            break;
        case VS_ELEM_I32:
            for (size_t i = 0; i < n; i++) {
                int32_t v;
                memcpy(&v, src + 4 * i, 4);
                o[i] = (float)v;
            }
            break;
        case VS_ELEM_F32: break;
        }
        return;
    }
    int32_t *o = out;
    if (elem == VS_ELEM_U8)
        for (size_t i = 0; i < n; i++)
            o[i] = src[i];
    else if (elem == VS_ELEM_I8)
        for (size_t i = 0; i < n; i++)
            o[i] = (int8_t)src[i];
}

/* Reads up to max_rows rows into out as kind k; on error nothing is delivered. */
static vs_err read_rows(vs_dataset *ds, uint64_t max_rows, void *out, out_kind k,
                        uint64_t *n_read, vs_status *st)
{
    *n_read = 0;
    if (k == OUT_I32 && ds->elem == VS_ELEM_F32)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%s holds float32 values: read them as floats, not int32",
                             ds->src.name);
    uint64_t n = ds->rows - ds->next_row;
    if (max_rows < n)
        n = max_rows;
    if (n == 0)
        return VS_OK;
    uint64_t row_bytes_out = (uint64_t)ds->dim * (k == OUT_RAW ? ds->esize : 4);
    uint64_t need;
    if (!vs_mul_u64(n, row_bytes_out, &need) || need > SIZE_MAX)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "%s: %llu rows do not fit in memory",
                             ds->src.name, (unsigned long long)n);
    vs_err e = VS_OK;
    if (ds->resync) {
        e = vs_src_seek(&ds->src, ds->data_off + ds->next_row * ds->rowbytes, st);
        if (e != VS_OK)
            return e;
        ds->resync = false;
    }
    bool direct = ds->prefix == 0 && (k == OUT_RAW || (k == OUT_F32 && ds->elem == VS_ELEM_F32) ||
                                      (k == OUT_I32 && ds->elem == VS_ELEM_I32));
    if (direct) {
        char what[48];
        snprintf(what, sizeof what, "rows %llu..%llu", (unsigned long long)ds->next_row,
                 (unsigned long long)(ds->next_row + n - 1));
        e = vs_src_read_exact(&ds->src, out, (size_t)need, what, st);
    } else {
        if (!ds->chunk) {
            ds->chunk_rows = ds->rowbytes >= VS_CHUNK_BYTES ? 1 : VS_CHUNK_BYTES / ds->rowbytes;
            if (ds->rowbytes > SIZE_MAX / ds->chunk_rows ||
                !(ds->chunk = malloc((size_t)(ds->chunk_rows * ds->rowbytes))))
                return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                                     "%s: out of memory for a read buffer of %llu bytes",
                                     ds->src.name, (unsigned long long)ds->rowbytes);
        }
        uint8_t *o = out;
        for (uint64_t done = 0; done < n && e == VS_OK;) {
            uint64_t m = n - done < ds->chunk_rows ? n - done : ds->chunk_rows;
            uint64_t row0 = ds->next_row + done, at = ds->src.off;
            char what[48];
            snprintf(what, sizeof what, "rows %llu..%llu", (unsigned long long)row0,
                     (unsigned long long)(row0 + m - 1));
            e = vs_src_read_exact(&ds->src, ds->chunk, (size_t)(m * ds->rowbytes), what, st);
            for (uint64_t r = 0; r < m && e == VS_OK; r++) {
                const uint8_t *p = ds->chunk + r * ds->rowbytes;
                if (ds->prefix) {
                    int32_t d;
                    memcpy(&d, p, 4);
                    if (d != (int32_t)ds->dim) {
                        e = vs_status_set(st, VS_ERR_DATA_LOSS,
                                          "%s: row %llu at offset %llu says dim %d, expected %u",
                                          ds->src.name, (unsigned long long)(row0 + r),
                                          (unsigned long long)(at + r * ds->rowbytes), d,
                                          ds->dim);
                        break;
                    }
                }
                convert(ds->elem, p + ds->prefix, ds->dim, k, o + (done + r) * row_bytes_out);
            }
            done += m;
        }
    }
    if (e != VS_OK) {
        ds->resync = true;
        return e;
    }
    ds->next_row += n;
    *n_read = n;
    return VS_OK;
}

vs_err vs_dataset_read_f32(vs_dataset *ds, uint64_t max_rows, float *out, uint64_t *n_read,
                           vs_status *st)
{
    return read_rows(ds, max_rows, out, OUT_F32, n_read, st);
}

vs_err vs_dataset_read_i32(vs_dataset *ds, uint64_t max_rows, int32_t *out, uint64_t *n_read,
                           vs_status *st)
{
    return read_rows(ds, max_rows, out, OUT_I32, n_read, st);
}

vs_err vs_dataset_read_raw(vs_dataset *ds, uint64_t max_rows, void *out, uint64_t *n_read,
                           vs_status *st)
{
    return read_rows(ds, max_rows, out, OUT_RAW, n_read, st);
}

vs_err vs_dataset_seek(vs_dataset *ds, uint64_t row, vs_status *st)
{
    if (row > ds->rows)
        return vs_status_set(st, VS_ERR_OUT_OF_RANGE, "%s: row %llu is past the end (%llu rows)",
                             ds->src.name, (unsigned long long)row,
                             (unsigned long long)ds->rows);
    ds->next_row = row;
    ds->resync = true;
    return VS_OK;
}

/* Reads all of path as kind k (4-byte values) into a new array. */
static vs_err load(const char *path, out_kind k, void **data, uint64_t *rows, uint32_t *dim,
                   vs_status *st)
{
    *data = NULL;
    *rows = 0;
    *dim = 0;
    vs_dataset *ds;
    vs_err e = vs_dataset_open(path, &ds, st);
    if (e != VS_OK)
        return e;
    uint64_t bytes = 0;
    void *buf = NULL;
    if (k == OUT_I32 && ds->elem == VS_ELEM_F32)
        e = vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                          "%s holds float32 values: load them as floats, not int32", ds->src.name);
    else if (!vs_mul_u64(ds->rows, (uint64_t)ds->dim * 4, &bytes) || bytes > SIZE_MAX)
        e = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "%s: %llu rows of dim %u do not fit in memory",
                          ds->src.name, (unsigned long long)ds->rows, ds->dim);
    else if (bytes > 0 && !(buf = malloc((size_t)bytes)))
        e = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                          "%s: out of memory for %llu rows of dim %u (%llu bytes)", ds->src.name,
                          (unsigned long long)ds->rows, ds->dim, (unsigned long long)bytes);
    uint64_t got = 0;
    if (e == VS_OK && bytes > 0)
        e = read_rows(ds, ds->rows, buf, k, &got, st);
    if (e == VS_OK) {
        *data = buf;
        *rows = ds->rows;
        *dim = ds->dim;
    } else {
        free(buf);
    }
    vs_dataset_close(ds);
    return e;
}

vs_err vs_dataset_load_f32(const char *path, float **data, uint64_t *rows, uint32_t *dim,
                           vs_status *st)
{
    void *p;
    vs_err e = load(path, OUT_F32, &p, rows, dim, st);
    *data = p;
    return e;
}

vs_err vs_dataset_load_i32(const char *path, int32_t **data, uint64_t *rows, uint32_t *dim,
                           vs_status *st)
{
    void *p;
    vs_err e = load(path, OUT_I32, &p, rows, dim, st);
    *data = p;
    return e;
}
