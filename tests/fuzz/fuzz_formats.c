/*
 * fuzz_formats.c: libFuzzer target for the dataset readers and the TSV reader (formats/).
 *
 * Input: byte 0 picks the format (low nibble) and the compression (bits 4-5: plain; the rest
 * gzip-compressed here, so the reader sees a valid stream of fuzzed content; or the raw rest named
 * ".gz", a corrupt stream), byte 1 picks the read pattern, the rest is the file. The file is
 * written under a temporary directory with the format's ending, opened, and read every way the API
 * offers. The readers must never crash, read out of bounds, or allocate from a header's claims:
 * libFuzzer's -malloc_limit_mb (default: the RSS limit, 2 GB) catches a malloc sized by a header
 * that claims 2^32 rows. An opened dataset must also never promise more values than the file has.
 *
 *   clang -fsanitize=fuzzer,address,undefined ... ; ./fuzz_formats -max_len=65536 corpus/
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "dataset.h"
#include "tsv.h"

static char dir[256];

static const char *const endings[] = {
    ".fvecs", ".ivecs", ".bvecs", ".fbin", ".u8bin", ".i8bin", ".ibin",
    ".npy",   "-idx3-ubyte", "-idx1-ubyte", ".tsv",
};
#define N_ENDINGS (sizeof endings / sizeof endings[0])

/* Removes the temporary directory at exit. */
static void cleanup(void)
{
    char p[512];
    for (size_t i = 0; i < N_ENDINGS; i++) {
        snprintf(p, sizeof p, "%s/in%s", dir, endings[i]);
        unlink(p);
        snprintf(p, sizeof p, "%s/in%s.gz", dir, endings[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* Creates the temporary directory once. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vs_fuzz_formats_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    return 0;
}

/* Writes data to path, gzip-compressed when gz; false if that failed. */
static int put(const char *path, const uint8_t *data, size_t n, int gz)
{
    if (gz) {
        gzFile g = gzopen(path, "wb1");
        if (!g)
            return 0;
        int ok = n == 0 || gzwrite(g, data, (unsigned)n) == (int)n;
        return gzclose(g) == Z_OK && ok;
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int ok = n == 0 || fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Reads the dataset at path in the pattern sel picks; traps on a broken promise. */
static void read_dataset(const char *path, uint8_t sel, size_t content_len)
{
    vs_status st;
    vs_dataset *ds = NULL;
    if (vs_dataset_open(path, &ds, &st) != VS_OK) {
        if (ds || !memchr(st.msg, '\0', sizeof st.msg))
            __builtin_trap();
        return;
    }
    uint64_t rows = vs_dataset_rows(ds);
    uint32_t dim = vs_dataset_dim(ds), es = vs_elem_size(vs_dataset_elem(ds));
    /* the open checked the length: the values promised fit in what was written */
    if (content_len != SIZE_MAX && dim != 0 && rows > content_len / ((uint64_t)dim * es))
        __builtin_trap();
    uint64_t chunk = 1 + (sel & 7), got = 0, total = 0;
    if (chunk > rows) /* a header may say "0 rows of dim 2^32-1": size the buffer by real rows */
        chunk = rows ? rows : 1;
    void *buf = malloc(rows ? (size_t)(chunk * dim * 4) : 4);
    if (sel & 0x10)
        vs_dataset_seek(ds, rows / 2, &st);
    vs_dataset_seek(ds, rows + 1 + sel, &st); /* must fail and change nothing */
    for (int i = 0; i < 4 * 1024 * 1024; i++) {
        vs_err e;
        if (sel & 0x20)
            e = vs_dataset_read_i32(ds, chunk, buf, &got, &st);
        else if (sel & 0x40)
            e = vs_dataset_read_raw(ds, chunk, buf, &got, &st);
        else
            e = vs_dataset_read_f32(ds, chunk, buf, &got, &st);
        if (e != VS_OK || got == 0)
            break;
        total += got;
    }
    if (total > rows)
        __builtin_trap();
    free(buf);
    vs_dataset_close(ds);
    if (sel & 0x80) { /* the whole-file loader, bounded by the same checks */
        float *data = NULL;
        uint32_t d;
        if (vs_dataset_load_f32(path, &data, &rows, &d, &st) == VS_OK && rows && d && !data)
            __builtin_trap();
        free(data);
    }
}

/* Reads path as TSV to the end. */
static void read_tsv(const char *path)
{
    vs_status st;
    vs_tsv *t = NULL;
    if (vs_tsv_open(path, &t, &st) != VS_OK)
        return;
    uint32_t n = vs_tsv_n_cols(t);
    if (n == 0 || vs_tsv_col(t, vs_tsv_col_name(t, n - 1)) != (int)(n - 1))
        __builtin_trap();
    const char *const *cells;
    size_t sum = 0;
    while (vs_tsv_next(t, &cells, &st) == VS_OK && cells)
        for (uint32_t i = 0; i < n; i++)
            sum += strlen(cells[i]);
    (void)sum;
    vs_tsv_close(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t which = (size_t)(data[0] & 15) % N_ENDINGS;
    int gz = (data[0] >> 4) & 3;
    char path[512];
    snprintf(path, sizeof path, "%s/in%s%s", dir, endings[which], gz ? ".gz" : "");
    if (!put(path, data + 2, size - 2, gz == 1))
        return 0;
    if (which == N_ENDINGS - 1)
        read_tsv(path);
    else
        read_dataset(path, data[1], gz >= 2 ? SIZE_MAX : size - 2); /* a raw .gz may inflate */
    unlink(path);
    return 0;
}
