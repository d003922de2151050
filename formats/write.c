/*
 * write.c: writing dataset files (vecs, bin and npy), e.g. ground truth computed by
 * vs_exact_knn for a dataset that ships none.
 *
 * A file is written under a temporary name beside its destination and renamed over it only when
 * every byte is out, so a reader never sees half a file and a failure leaves nothing behind.
 */
#include "dataset_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The element type a vecs or bin format stores; npy (any) and others give false. */
static bool format_elem(vs_format f, vs_elem *e)
{
    switch (f) {
    case VS_FORMAT_FVECS:
    case VS_FORMAT_FBIN: *e = VS_ELEM_F32; return true;
    case VS_FORMAT_IVECS:
    case VS_FORMAT_IBIN: *e = VS_ELEM_I32; return true;
    case VS_FORMAT_BVECS:
    case VS_FORMAT_U8BIN: *e = VS_ELEM_U8; return true;
    case VS_FORMAT_I8BIN: *e = VS_ELEM_I8; return true;
    default: return false;
    }
}

/* The npy descr of e. */
static const char *npy_descr(vs_elem e)
{
    switch (e) {
    case VS_ELEM_F32: return "<f4";
    case VS_ELEM_U8: return "|u1";
    case VS_ELEM_I8: return "|i1";
    case VS_ELEM_I32: return "<i4";
    }
    return "?";
}

/* Writes the npy preamble and header for rows x dim of elem, padded to a 64-byte boundary. */
static bool write_npy_header(FILE *f, vs_elem elem, uint64_t rows, uint32_t dim)
{
    char dict[160];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%llu, %u), }",
                     npy_descr(elem), (unsigned long long)rows, dim);
    size_t hlen = (size_t)n + 1; /* + '\n' */
    hlen += (64 - (10 + hlen) % 64) % 64;
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)hlen, (uint8_t)(hlen >> 8)};
    if (fwrite(pre, 1, sizeof pre, f) != sizeof pre || fwrite(dict, 1, (size_t)n, f) != (size_t)n)
        return false;
    for (size_t i = (size_t)n; i + 1 < hlen; i++)
        if (fputc(' ', f) == EOF)
            return false;
    return fputc('\n', f) != EOF;
}

/* Writes header and rows to f; false on a write error (errno set). */
static bool write_body(FILE *f, vs_format fmt, vs_elem elem, const uint8_t *data, uint64_t rows,
                       uint32_t dim)
{
    size_t rowbytes = (size_t)dim * vs_elem_size(elem);
    bool vecs = fmt == VS_FORMAT_FVECS || fmt == VS_FORMAT_IVECS || fmt == VS_FORMAT_BVECS;
    if (fmt == VS_FORMAT_NPY) {
        if (!write_npy_header(f, elem, rows, dim))
            return false;
    } else if (!vecs) {
        uint32_t h[2] = {(uint32_t)rows, dim};
        if (fwrite(h, sizeof h, 1, f) != 1)
            return false;
    }
    if (!vecs)
        return rows == 0 || rowbytes == 0 || fwrite(data, rowbytes, (size_t)rows, f) == rows;
    int32_t d = (int32_t)dim;
    for (uint64_t r = 0; r < rows; r++)
        if (fwrite(&d, 4, 1, f) != 1 || fwrite(data + r * rowbytes, 1, rowbytes, f) != rowbytes)
            return false;
    return true;
}

/* Checks that fmt can hold rows x dim of elem. */
static vs_err check_shape(const char *path, vs_format fmt, vs_elem elem, uint64_t rows,
                          uint32_t dim, vs_status *st)
{
    const char *name = vs_base_name(path);
    vs_elem want;
    if (fmt == VS_FORMAT_IDX || fmt == VS_FORMAT_AUTO)
        return vs_status_set(st, VS_ERR_UNIMPLEMENTED, "%s: writing %s files is not supported",
                             name, vs_format_name(fmt));
    if (format_elem(fmt, &want) && want != elem)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "%s: %s holds %s values, not %s", name,
                             vs_format_name(fmt), vs_elem_name(want), vs_elem_name(elem));
    if (dim == 0 && rows > 0)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "%s: rows of dim 0", name);
    if (dim > INT32_MAX)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "%s: dim %u is over 2^31-1", name, dim);
    if (rows > UINT32_MAX && fmt >= VS_FORMAT_FBIN && fmt <= VS_FORMAT_IBIN)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%s: %llu rows do not fit a bin header (at most 2^32-1)", name,
                             (unsigned long long)rows);
    uint64_t bytes;
    if (!vs_mul_u64(rows, (uint64_t)dim * vs_elem_size(elem), &bytes) || bytes > SIZE_MAX)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "%s: %llu rows of dim %u are too many",
                             name, (unsigned long long)rows, dim);
    return VS_OK;
}

vs_err vs_dataset_write(const char *path, vs_format fmt, vs_elem elem, const void *data,
                        uint64_t rows, uint32_t dim, vs_status *st)
{
    size_t n = strlen(path);
    if (n >= 3 && strcmp(path + n - 3, ".gz") == 0)
        return vs_status_set(st, VS_ERR_UNIMPLEMENTED, "%s: writing .gz files is not supported",
                             vs_base_name(path));
    if (fmt == VS_FORMAT_AUTO) {
        vs_err e = vs_format_from_path(path, &fmt, st);
        if (e != VS_OK)
            return e;
    }
    vs_err e = check_shape(path, fmt, elem, rows, dim, st);
    if (e != VS_OK)
        return e;
    char *tmp = malloc(n + 16);
    if (!tmp)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        e = vs_status_set(st, VS_ERR_IO, "%s: cannot create a file beside it: %s", path,
                          strerror(errno));
        free(tmp);
        return e;
    }
    (void)fchmod(fd, 0644); /* mkstemp's 0600 would hide a dataset from other users */
    FILE *f = fdopen(fd, "wb");
    bool ok = f && write_body(f, fmt, elem, data, rows, dim);
    int err = errno;
    if (f) {
        if (fclose(f) != 0 && ok) {
            ok = false;
            err = errno;
        }
    } else {
        close(fd);
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        unlink(tmp);
        e = vs_status_set(st, VS_ERR_IO, "%s: write failed: %s", path, strerror(err ? err : EIO));
    }
    free(tmp);
    return e;
}

vs_err vs_write_fvecs(const char *path, const float *data, uint64_t rows, uint32_t dim,
                      vs_status *st)
{
    return vs_dataset_write(path, VS_FORMAT_FVECS, VS_ELEM_F32, data, rows, dim, st);
}

vs_err vs_write_ivecs(const char *path, const int32_t *data, uint64_t rows, uint32_t dim,
                      vs_status *st)
{
    return vs_dataset_write(path, VS_FORMAT_IVECS, VS_ELEM_I32, data, rows, dim, st);
}

vs_err vs_write_fbin(const char *path, const float *data, uint64_t rows, uint32_t dim,
                     vs_status *st)
{
    return vs_dataset_write(path, VS_FORMAT_FBIN, VS_ELEM_F32, data, rows, dim, st);
}
