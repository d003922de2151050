/*
 * source.c: the byte stream under every dataset reader, a plain file or a gzip file.
 *
 * Both kinds learn their length at open: a plain file from fstat, a .gz file by decompressing it
 * once into a small scratch buffer. Knowing the length up front is what lets the readers check a
 * header's claims ("4294967295 rows") before allocating anything from them, and name the exact
 * offset where a file falls short.
 */
#include "dataset_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define VS_SRC_GZ_BUFFER (128u << 10)
#define VS_SRC_SCRATCH (64u << 10)

/* Whether path ends in ".gz". */
static bool ends_gz(const char *path)
{
    size_t n = strlen(path);
    return n >= 3 && strcmp(path + n - 3, ".gz") == 0;
}

const char *vs_base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Maps a failed open's errno to a status. */
static vs_err open_error(const char *path, int err, vs_status *st)
{
    if (err == ENOENT)
        return vs_status_set(st, VS_ERR_NOT_FOUND, "%s: no such file", path);
    return vs_status_set(st, VS_ERR_IO, "%s: cannot open: %s", path, strerror(err ? err : EIO));
}

/* One gzread of at most n bytes (n fits an int); maps zlib's errors to statuses. */
static vs_err gz_read_some(vs_src *s, void *buf, size_t n, size_t *got, vs_status *st)
{
    int r = gzread(s->gz, buf, (unsigned)n);
    if (r < 0) {
        int zerr = 0;
        const char *msg = gzerror(s->gz, &zerr);
        if (zerr == Z_ERRNO)
            return vs_status_set(st, VS_ERR_IO, "%s: read failed at offset %llu: %s", s->name,
                                 (unsigned long long)s->off, strerror(errno));
        return vs_status_set(st, VS_ERR_DATA_LOSS, "%s: corrupt gzip stream near offset %llu: %s",
                             s->name, (unsigned long long)s->off, msg ? msg : "unknown error");
    }
    *got = (size_t)r;
    return VS_OK;
}

/* Decompresses the whole .gz stream once to count its bytes, then rewinds. */
static vs_err gz_measure(vs_src *s, vs_status *st)
{
    uint8_t *scratch = malloc(VS_SRC_SCRATCH);
    if (!scratch)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "%s: out of memory", s->name);
    vs_err e = VS_OK;
    for (;;) {
        size_t got = 0;
        e = gz_read_some(s, scratch, VS_SRC_SCRATCH, &got, st);
        if (e != VS_OK || got == 0)
            break;
        s->off += got;
    }
    free(scratch);
    if (e != VS_OK)
        return e;
    s->length = s->off;
    s->off = 0;
    if (gzrewind(s->gz) != 0)
        return vs_status_set(st, VS_ERR_IO, "%s: cannot rewind the gzip stream", s->name);
    return VS_OK;
}

vs_err vs_src_open(vs_src *s, const char *path, vs_status *st)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", vs_base_name(path));
    struct stat sb;
    if (stat(path, &sb) != 0)
        return open_error(path, errno, st);
    if (!S_ISREG(sb.st_mode))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "%s: not a regular file", path);
    if (ends_gz(path)) {
        s->gz = gzopen(path, "rb");
        if (!s->gz)
            return open_error(path, errno, st);
        gzbuffer(s->gz, VS_SRC_GZ_BUFFER);
        vs_err e = gz_measure(s, st);
        if (e != VS_OK)
            vs_src_close(s);
        return e;
    }
    s->f = fopen(path, "rb");
    if (!s->f)
        return open_error(path, errno, st);
    if (fstat(fileno(s->f), &sb) != 0) {
        int err = errno;
        vs_src_close(s);
        return open_error(path, err, st);
    }
    s->length = (uint64_t)sb.st_size;
    return VS_OK;
}

void vs_src_close(vs_src *s)
{
    if (s->f)
        fclose(s->f);
    if (s->gz)
        gzclose(s->gz);
    s->f = NULL;
    s->gz = NULL;
}

vs_err vs_src_read(vs_src *s, void *buf, size_t n, size_t *got, vs_status *st)
{
    size_t total = 0;
    *got = 0;
    if (s->f) {
        total = fread(buf, 1, n, s->f);
        if (total < n && ferror(s->f))
            return vs_status_set(st, VS_ERR_IO, "%s: read failed at offset %llu: %s", s->name,
                                 (unsigned long long)(s->off + total), strerror(errno));
    } else {
        while (total < n) {
            size_t want = n - total, part = 0;
            if (want > (size_t)INT_MAX / 2 + 1)
                want = (size_t)INT_MAX / 2 + 1;
            vs_err e = gz_read_some(s, (uint8_t *)buf + total, want, &part, st);
            if (e != VS_OK)
                return e;
            if (part == 0)
                break;
            total += part;
        }
    }
    s->off += total;
    *got = total;
    return VS_OK;
}

vs_err vs_src_read_exact(vs_src *s, void *buf, size_t n, const char *what, vs_status *st)
{
    uint64_t at = s->off;
    size_t got = 0;
    vs_err e = vs_src_read(s, buf, n, &got, st);
    if (e != VS_OK)
        return e;
    if (got < n)
        return vs_status_set(st, VS_ERR_DATA_LOSS,
                             "%s: truncated: %zu bytes left at offset %llu, %s needs %zu", s->name,
                             got, (unsigned long long)at, what, n);
    return VS_OK;
}

vs_err vs_src_seek(vs_src *s, uint64_t off, vs_status *st)
{
    if (off > s->length || off > (uint64_t)INT64_MAX)
        return vs_status_set(st, VS_ERR_OUT_OF_RANGE, "%s: offset %llu is past the end (%llu)",
                             s->name, (unsigned long long)off, (unsigned long long)s->length);
    int bad;
    if (s->f)
        bad = fseeko(s->f, (off_t)off, SEEK_SET) != 0;
    else
        bad = gzseek(s->gz, (z_off_t)off, SEEK_SET) < 0;
    if (bad)
        return vs_status_set(st, VS_ERR_IO, "%s: cannot seek to offset %llu", s->name,
                             (unsigned long long)off);
    s->off = off;
    return VS_OK;
}

vs_err vs_src_skip(vs_src *s, uint64_t n, const char *what, vs_status *st)
{
    if (n > s->length - s->off)
        return vs_status_set(st, VS_ERR_DATA_LOSS,
                             "%s: truncated: %llu bytes left at offset %llu, %s needs %llu",
                             s->name, (unsigned long long)(s->length - s->off),
                             (unsigned long long)s->off, what, (unsigned long long)n);
    if (s->gz || n > VS_SRC_SCRATCH)
        return vs_src_seek(s, s->off + n, st);
    /* A short hop in a plain file: reading keeps stdio's buffer, a seek would drop it. */
    uint8_t scratch[4096];
    while (n > 0) {
        size_t part = n < sizeof scratch ? (size_t)n : sizeof scratch;
        vs_err e = vs_src_read_exact(s, scratch, part, what, st);
        if (e != VS_OK)
            return e;
        n -= part;
    }
    return VS_OK;
}
