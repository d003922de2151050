/*
 * tsv.c: the TSV reader (see tsv.h).
 *
 * Lines come from a buffer refilled from the byte source (plain or .gz, see source.c); a line is
 * split in place, its tabs turned into NULs, so a row costs no allocation. The buffer starts at
 * 64 KiB and grows only for a longer line, up to VS_TSV_MAX_LINE.
 */
#include "tsv.h"

#include <stdlib.h>
#include <string.h>

#include "dataset_impl.h"

#define TSV_FIRST_BUFFER (64u << 10)

struct vs_tsv {
    vs_src src;
    char *buf;         /* bytes read and not yet consumed: buf[beg .. end) */
    size_t cap, beg, end;
    bool eof;          /* the source is spent */
    uint64_t line;     /* number of the line returned last */
    uint32_t n_cols;
    char **names;      /* n_cols column names */
    const char **cells;/* n_cols cell pointers into buf, for the current row */
};

/* Finds the next line: *line (NUL-terminated, "\r\n" or "\n" dropped) or NULL at the end. */
static vs_err next_line(vs_tsv *t, char **line, size_t *len, vs_status *st)
{
    *line = NULL;
    for (;;) {
        char *nl = memchr(t->buf + t->beg, '\n', t->end - t->beg);
        if (nl || (t->eof && t->end > t->beg)) {
            char *p = t->buf + t->beg;
            size_t n = nl ? (size_t)(nl - p) : t->end - t->beg;
            t->beg += nl ? n + 1 : n;
            t->line++;
            if (n > VS_TSV_MAX_LINE)
                break;
            if (n > 0 && p[n - 1] == '\r')
                n--;
            p[n] = '\0'; /* the '\n', the '\r', or the spare byte kept after end */
            *line = p;
            *len = n;
            return VS_OK;
        }
        if (t->eof)
            return VS_OK;
        if (t->end - t->beg > VS_TSV_MAX_LINE) {
            t->line++;
            break;
        }
        memmove(t->buf, t->buf + t->beg, t->end - t->beg);
        t->end -= t->beg;
        t->beg = 0;
        if (t->cap - 1 - t->end < t->cap / 4) { /* keep a spare byte for the final NUL */
            size_t cap = t->cap * 2;
            char *b = realloc(t->buf, cap);
            if (!b)
                return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "%s: out of memory at line %llu",
                                     t->src.name, (unsigned long long)t->line + 1);
            t->buf = b;
            t->cap = cap;
        }
        size_t got;
        vs_err e = vs_src_read(&t->src, t->buf + t->end, t->cap - 1 - t->end, &got, st);
        if (e != VS_OK)
            return e;
        t->end += got;
        t->eof = got == 0;
    }
    return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "%s: line %llu is longer than %u bytes",
                         t->src.name, (unsigned long long)t->line, VS_TSV_MAX_LINE);
}

/* Splits line at tabs into at most max cells; returns how many there are (may exceed max). */
static uint32_t split(char *line, const char **cells, uint32_t max)
{
    uint32_t n = 0;
    for (char *p = line;; p++) {
        if (n < max)
            cells[n] = p;
        n++;
        p = strchr(p, '\t');
        if (!p)
            return n;
        *p = '\0';
    }
}

/* Reads the next non-blank line, checking it for NUL bytes. */
static vs_err next_nonblank(vs_tsv *t, char **line, size_t *len, vs_status *st)
{
    do {
        vs_err e = next_line(t, line, len, st);
        if (e != VS_OK || !*line)
            return e;
    } while (*len == 0);
    if (memchr(*line, '\0', *len))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "%s: line %llu holds a NUL byte",
                             t->src.name, (unsigned long long)t->line);
    return VS_OK;
}

/* Reads the header row into t->names. */
static vs_err read_header(vs_tsv *t, vs_status *st)
{
    char *line;
    size_t len;
    vs_err e = next_nonblank(t, &line, &len, st);
    if (e != VS_OK)
        return e;
    if (!line)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "%s: empty file: expected a header row",
                             t->src.name);
    if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
        line += 3;
    uint32_t n = 1;
    for (const char *p = line; (p = strchr(p, '\t')); p++)
        n++;
    t->names = calloc(n, sizeof *t->names);
    t->cells = calloc(n, sizeof *t->cells);
    if (!t->names || !t->cells)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "%s: out of memory", t->src.name);
    split(line, t->cells, n);
    t->n_cols = n;
    for (uint32_t i = 0; i < n; i++) {
        if (!t->cells[i][0])
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                 "%s: line %llu: column %u has an empty name", t->src.name,
                                 (unsigned long long)t->line, i + 1);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(t->cells[i], t->names[j]) == 0)
                return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                     "%s: line %llu: column name '%s' appears twice", t->src.name,
                                     (unsigned long long)t->line, t->cells[i]);
        if (!(t->names[i] = strdup(t->cells[i])))
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "%s: out of memory", t->src.name);
    }
    return VS_OK;
}

vs_err vs_tsv_open(const char *path, vs_tsv **out, vs_status *st)
{
    *out = NULL;
    vs_tsv *t = calloc(1, sizeof *t);
    if (!t || !(t->buf = malloc(TSV_FIRST_BUFFER))) {
        free(t);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    t->cap = TSV_FIRST_BUFFER;
    vs_err e = vs_src_open(&t->src, path, st);
    if (e == VS_OK)
        e = read_header(t, st);
    if (e != VS_OK) {
        vs_tsv_close(t);
        return e;
    }
    *out = t;
    return VS_OK;
}

void vs_tsv_close(vs_tsv *t)
{
    if (!t)
        return;
    vs_src_close(&t->src);
    if (t->names)
        for (uint32_t i = 0; i < t->n_cols; i++)
            free(t->names[i]);
    free(t->names);
    free(t->cells);
    free(t->buf);
    free(t);
}

uint32_t vs_tsv_n_cols(const vs_tsv *t) { return t->n_cols; }
const char *vs_tsv_col_name(const vs_tsv *t, uint32_t i) { return t->names[i]; }
uint64_t vs_tsv_line(const vs_tsv *t) { return t->line; }

int vs_tsv_col(const vs_tsv *t, const char *name)
{
    for (uint32_t i = 0; i < t->n_cols; i++)
        if (strcmp(t->names[i], name) == 0)
            return (int)i;
    return -1;
}

vs_err vs_tsv_next(vs_tsv *t, const char *const **cells, vs_status *st)
{
    *cells = NULL;
    char *line;
    size_t len;
    vs_err e = next_nonblank(t, &line, &len, st);
    if (e != VS_OK || !line)
        return e;
    uint32_t n = split(line, t->cells, t->n_cols);
    if (n != t->n_cols)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%s: line %llu has %u cells, the header has %u", t->src.name,
                             (unsigned long long)t->line, n, t->n_cols);
    *cells = t->cells;
    return VS_OK;
}
