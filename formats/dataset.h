/*
 * dataset.h: reading and writing the vector dataset files of this field.
 *
 * Formats (all little-endian, row-major, one row per item, row i is item i):
 *   .fvecs .ivecs .bvecs     texmex: per row an int32 dim, then dim float32 / int32 / uint8
 *   .fbin .u8bin .i8bin .ibin big-ann-benchmarks: uint32 rows, uint32 dim, then rows x dim
 *                             float32 / uint8 / int8 / int32
 *   .npy                     NumPy v1/v2/v3, a 1-D (rows) or 2-D (rows, dim) C-order array of
 *                             '<f4', '|u1', '|i1' or '<i4'
 *   -idx3-ubyte -idx1-ubyte  MNIST IDX (big-endian header, ubyte or sbyte data): item n of an
 *                             (n, 28, 28) file is one row of 784 values; a label file has dim 1
 * Any of them may be gzip-compressed when the name ends in ".gz" (read through zlib).
 *
 * A vs_dataset streams rows in the order they are stored, with memory bounded by one read chunk
 * (about 1 MiB, or one row when rows are larger), so a 100M-row file can be bulk loaded in
 * pieces. vs_dataset_open checks the file's length against what its header claims before anything
 * is allocated from a header field, and the vecs formats check every row's dim as it is read.
 * Every error names the file and the byte offset (in the uncompressed stream for .gz files):
 * truncated or inconsistent files give VS_ERR_DATA_LOSS; a file that is not what its name says,
 * or a dtype or layout this reader does not take, gives VS_ERR_INVALID_ARGUMENT.
 *
 * A .gz file is decompressed once at open to learn its length, and seeking in it decompresses
 * from the start: fine for MNIST-sized files, slow for huge ones.
 */
#ifndef VS_DATASET_H
#define VS_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "vs_status.h"

/* The element type a file stores. */
typedef enum vs_elem { VS_ELEM_F32 = 0, VS_ELEM_U8, VS_ELEM_I8, VS_ELEM_I32 } vs_elem;

/* The file formats; VS_FORMAT_AUTO means "tell from the file name". */
typedef enum vs_format {
    VS_FORMAT_AUTO = 0,
    VS_FORMAT_FVECS,
    VS_FORMAT_IVECS,
    VS_FORMAT_BVECS,
    VS_FORMAT_FBIN,
    VS_FORMAT_U8BIN,
    VS_FORMAT_I8BIN,
    VS_FORMAT_IBIN,
    VS_FORMAT_NPY,
    VS_FORMAT_IDX
} vs_format;

typedef struct vs_dataset vs_dataset;

/* Bytes of one element of type e (1 or 4). */
uint32_t vs_elem_size(vs_elem e);
/* A short name for e: "float32", "uint8", "int8", "int32". */
const char *vs_elem_name(vs_elem e);
/* A short name for f: "fvecs", "npy", "idx", ... ("auto" for VS_FORMAT_AUTO). */
const char *vs_format_name(vs_format f);
/* The format named by name ("fvecs", "u8bin", "npy", "idx", ...); INVALID_ARGUMENT when unknown. */
vs_err vs_format_from_name(const char *name, vs_format *out, vs_status *st);
/* The format that path's name says (".fvecs", "-idx3-ubyte", with an optional ".gz");
 * INVALID_ARGUMENT listing the known endings when it says none. */
vs_err vs_format_from_path(const char *path, vs_format *out, vs_status *st);

/* Opens path, choosing the format from its name, and reads its header: rows, dim and element
 * type are known on return. *out is the caller's, to free with vs_dataset_close. */
vs_err vs_dataset_open(const char *path, vs_dataset **out, vs_status *st);
/* Opens path as format fmt (VS_FORMAT_AUTO: from the name, as vs_dataset_open). Compression is
 * still told by a ".gz" ending. */
vs_err vs_dataset_open_as(const char *path, vs_format fmt, vs_dataset **out, vs_status *st);
/* Closes ds and frees it; NULL is ignored. */
void vs_dataset_close(vs_dataset *ds);

/* Rows in the file. */
uint64_t vs_dataset_rows(const vs_dataset *ds);
/* Values per row (0 only for an empty vecs file). */
uint32_t vs_dataset_dim(const vs_dataset *ds);
/* The element type stored in the file. */
vs_elem vs_dataset_elem(const vs_dataset *ds);
/* The format the file was opened as. */
vs_format vs_dataset_format(const vs_dataset *ds);
/* The row the next read starts at. */
uint64_t vs_dataset_tell(const vs_dataset *ds);

/* Reads the next rows, at most max_rows, into out (room for max_rows x dim floats), converting
 * from the file's type. *n_read is the rows read: 0 at the end of the file. After an error the
 * position is the first row not delivered, and reading again repeats the error. */
vs_err vs_dataset_read_f32(vs_dataset *ds, uint64_t max_rows, float *out, uint64_t *n_read,
                           vs_status *st);
/* As vs_dataset_read_f32 into int32 (for ivecs, ibin, labels and byte data); INVALID_ARGUMENT on
 * a float32 file. */
vs_err vs_dataset_read_i32(vs_dataset *ds, uint64_t max_rows, int32_t *out, uint64_t *n_read,
                           vs_status *st);
/* As vs_dataset_read_f32 but the values stay as stored: out has room for max_rows x dim elements
 * of vs_elem_size(vs_dataset_elem(ds)) bytes. */
vs_err vs_dataset_read_raw(vs_dataset *ds, uint64_t max_rows, void *out, uint64_t *n_read,
                           vs_status *st);
/* Moves to row (0 .. rows; rows is the end). OUT_OF_RANGE past the end. */
vs_err vs_dataset_seek(vs_dataset *ds, uint64_t row, vs_status *st);

/* Reads all of path (format from its name) as floats: *data (rows x dim, row-major) is the
 * caller's, to free(); NULL for an empty file. */
vs_err vs_dataset_load_f32(const char *path, float **data, uint64_t *rows, uint32_t *dim,
                           vs_status *st);
/* As vs_dataset_load_f32 into int32 (ground truth ivecs/ibin, IDX labels); INVALID_ARGUMENT on
 * float32 files. */
vs_err vs_dataset_load_i32(const char *path, int32_t **data, uint64_t *rows, uint32_t *dim,
                           vs_status *st);

/* Writes rows x dim elements of type elem from data to path as format fmt (VS_FORMAT_AUTO: from
 * the name; not IDX, not .gz). fvecs takes f32, ivecs i32, bvecs u8; fbin f32, u8bin u8, i8bin
 * i8, ibin i32; npy any. The file is written beside path and renamed over it when complete, so a
 * failed write leaves no partial file. */
vs_err vs_dataset_write(const char *path, vs_format fmt, vs_elem elem, const void *data,
                        uint64_t rows, uint32_t dim, vs_status *st);
/* vs_dataset_write of float32 rows as .fvecs (e.g. ground-truth scores). */
vs_err vs_write_fvecs(const char *path, const float *data, uint64_t rows, uint32_t dim,
                      vs_status *st);
/* vs_dataset_write of int32 rows as .ivecs (e.g. ground-truth ids). */
vs_err vs_write_ivecs(const char *path, const int32_t *data, uint64_t rows, uint32_t dim,
                      vs_status *st);
/* vs_dataset_write of float32 rows as .fbin. */
vs_err vs_write_fbin(const char *path, const float *data, uint64_t rows, uint32_t dim,
                     vs_status *st);

#endif
