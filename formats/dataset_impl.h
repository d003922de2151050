/*
 * dataset_impl.h: what the dataset readers share inside formats/ (not installed, not for callers).
 *
 * Every format is, after its header, the same thing: rows of rowbytes bytes from data_off on,
 * each row being an optional 4-byte dim prefix (the vecs formats) followed by dim values. So a
 * format's file only parses its header into a vs_dataset; dataset.c does the rest (length checks,
 * reading, conversion, seeking) once for all of them.
 *
 * A vs_src is the byte stream underneath: a plain FILE, or a gzFile when the name ends in ".gz".
 * Plain files are never handed to zlib, whose "transparent" mode would take any file that happens
 * to start with the bytes 1f 8b (an fbin of 35,615 rows does) for a gzip stream.
 */
#ifndef VS_DATASET_IMPL_H
#define VS_DATASET_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

#include "dataset.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "formats/ reads little-endian files by memcpy: port the readers before using a big-endian host"
#endif

/* ===== Byte source ===== */

typedef struct vs_src {
    FILE *f;         /* plain file, or NULL */
    gzFile gz;       /* .gz file, or NULL */
    uint64_t off;    /* bytes consumed from the (uncompressed) stream */
    uint64_t length; /* the stream's length in bytes, known after open */
    char name[96];   /* the file's base name, for messages */
} vs_src;

/* Opens path (gzip when it ends in ".gz") and learns its length (for .gz by decompressing it
 * once). NOT_FOUND / IO when it cannot be opened. */
vs_err vs_src_open(vs_src *s, const char *path, vs_status *st);
/* Closes s; safe on a zeroed or already closed source. */
void vs_src_close(vs_src *s);
/* Reads up to n bytes into buf; *got is what arrived (< n only at the end). IO on a read error. */
vs_err vs_src_read(vs_src *s, void *buf, size_t n, size_t *got, vs_status *st);
/* Reads exactly n bytes of what (e.g. "the header") or fails with DATA_LOSS naming the offset. */
vs_err vs_src_read_exact(vs_src *s, void *buf, size_t n, const char *what, vs_status *st);
/* Moves to byte offset off (<= length). */
vs_err vs_src_seek(vs_src *s, uint64_t off, vs_status *st);
/* Skips n bytes forward; DATA_LOSS naming what when fewer are left. */
vs_err vs_src_skip(vs_src *s, uint64_t n, const char *what, vs_status *st);
/* The base name of path (after the last '/'). */
const char *vs_base_name(const char *path);

/* ===== Dataset ===== */

struct vs_dataset {
    vs_src src;
    vs_format fmt;
    vs_elem elem;
    uint32_t esize;     /* bytes per value */
    uint32_t dim;       /* values per row */
    uint32_t prefix;    /* 4 when each row starts with its int32 dim (vecs), else 0 */
    int idx_ndims;      /* IDX only: the dimension count the name promises (idx3 -> 3), 0 = any */
    uint64_t rows;      /* rows in the file */
    uint64_t data_off;  /* byte offset of row 0 */
    uint64_t rowbytes;  /* prefix + dim * esize */
    uint64_t next_row;  /* the row the next read starts at */
    bool resync;        /* the stream is not at data_off + next_row * rowbytes (after an error) */
    uint8_t *chunk;     /* read buffer for rows that need a prefix check or conversion */
    size_t chunk_rows;  /* rows the chunk holds */
};

/* Multiplies a * b into *out; false on overflow of uint64. */
static inline bool vs_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Each reads its format's header from ds->src (at offset 0, length known) and sets elem, esize,
 * dim, prefix, rows, data_off; dataset.c then checks the length and sets rowbytes. */
vs_err vs_vecs_open(vs_dataset *ds, vs_status *st);
vs_err vs_bin_open(vs_dataset *ds, vs_status *st);
vs_err vs_npy_open(vs_dataset *ds, vs_status *st);
vs_err vs_idx_open(vs_dataset *ds, vs_status *st);

/* For a vecs file whose length is not a whole number of rows: walks the row prefixes from the
 * start and returns the DATA_LOSS that explains it (a row with another dim, a truncated row). */
vs_err vs_vecs_diagnose(vs_dataset *ds, vs_status *st);

#endif
