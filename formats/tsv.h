/*
 * tsv.h: reading tab-separated files with a header row, such as base-attrs.tsv (`id digit ink`)
 * and filtered-queries.tsv (`query filter`).
 *
 * The first line names the columns; every later line is one row with exactly that many cells.
 * Cells are split at tabs and nothing else: no quoting, no escapes (a filter such as
 * `digit IN (1, 2)` is one cell). A trailing "\r" (CRLF files) and a UTF-8 byte-order mark are
 * dropped, blank lines are skipped. Rows stream with memory bounded by the longest line
 * (VS_TSV_MAX_LINE). A name ending in ".gz" is read through zlib. Errors name the file and line.
 */
#ifndef VS_TSV_H
#define VS_TSV_H

#include <stdint.h>

#include "vs_status.h"

#define VS_TSV_MAX_LINE (1u << 20)

typedef struct vs_tsv vs_tsv;

/* Opens path and reads its header row. Duplicate or empty column names are INVALID_ARGUMENT.
 * *out is the caller's, to free with vs_tsv_close. */
vs_err vs_tsv_open(const char *path, vs_tsv **out, vs_status *st);
/* Closes t and frees it; NULL is ignored. */
void vs_tsv_close(vs_tsv *t);

/* Columns in the header. */
uint32_t vs_tsv_n_cols(const vs_tsv *t);
/* The name of column i (< vs_tsv_n_cols), owned by t. */
const char *vs_tsv_col_name(const vs_tsv *t, uint32_t i);
/* The number of the column called name, or -1. */
int vs_tsv_col(const vs_tsv *t, const char *name);

/* Reads the next row: *cells points at vs_tsv_n_cols strings, owned by t and valid until the next
 * call; *cells is NULL at the end of the file. A row with another number of cells, a NUL byte or
 * a line over VS_TSV_MAX_LINE bytes is INVALID_ARGUMENT naming the line. */
vs_err vs_tsv_next(vs_tsv *t, const char *const **cells, vs_status *st);
/* The line number (1 = the header) of the row vs_tsv_next returned last. */
uint64_t vs_tsv_line(const vs_tsv *t);

#endif
