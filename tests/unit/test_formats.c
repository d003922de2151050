/*
 * test_formats.c: the dataset readers and writers and the TSV reader.
 *
 * Every reader on small files this test writes into a temporary directory: round trips through the
 * writers, hand-made headers (npy v1/v2, IDX plain and gzip), and broken files (a later row with
 * another dim, a truncated row, bad magic, unsupported dtype or layout, a header that claims more
 * than the file holds), each checked for its error code and the words of its message. With
 * VECSCAN_DATA_DIR, the real MNIST files are read and cross-checked against each other.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <zlib.h>

#include "dataset.h"
#include "testutil.h"
#include "tsv.h"

static char tmpdir[256];

/* tmpdir/name in a static buffer (one of four, so a few can be live at once). */
static const char *tpath(const char *name)
{
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ & 3];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

/* Writes n bytes to path (gzip-compressed when gz). */
static void put_file(const char *path, const void *data, size_t n, bool gz)
{
    if (gz) {
        gzFile g = gzopen(path, "wb");
        CHECK(g != NULL);
        if (!g)
            return;
        CHECK(n == 0 || gzwrite(g, data, (unsigned)n) == (int)n);
        CHECK(gzclose(g) == Z_OK);
        return;
    }
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(n == 0 || fwrite(data, 1, n, f) == n);
    CHECK(fclose(f) == 0);
}

/* The whole of path in a malloc'd buffer. */
static uint8_t *get_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* Checks that opening path (as fmt) and reading all of it fails with code and a message holding
 * want. Reading matters: some faults only show when the row passes. */
static void expect_fail_as(const char *path, vs_format fmt, vs_err code, const char *want,
                           int line)
{
    vs_status st = {0};
    vs_dataset *ds = NULL;
    vs_err e = vs_dataset_open_as(path, fmt, &ds, &st);
    if (e == VS_OK) {
        float *buf = malloc((size_t)vs_dataset_rows(ds) * vs_dataset_dim(ds) * 4 + 4);
        uint64_t got = 0;
        e = vs_dataset_read_f32(ds, vs_dataset_rows(ds), buf, &got, &st);
        free(buf);
        vs_dataset_close(ds);
    }
    CHECKF(e == code && strstr(st.msg, want), "line %d: %s: got %s \"%s\", want %s with \"%s\"",
           line, path, vs_err_name(e), st.msg, vs_err_name(code), want);
}
#define EXPECT_FAIL(path, code, want) expect_fail_as(path, VS_FORMAT_AUTO, code, want, __LINE__)

/* Random values of elem, rows x dim, as raw bytes. */
static void *random_rows(vs_rng *r, vs_elem elem, uint64_t rows, uint32_t dim)
{
    size_t n = (size_t)rows * dim;
    void *p = malloc(n * vs_elem_size(elem) + 1);
    for (size_t i = 0; i < n; i++) {
        switch (elem) {
        case VS_ELEM_F32: ((float *)p)[i] = (float)vs_rng_gauss(r); break;
        case VS_ELEM_U8: ((uint8_t *)p)[i] = (uint8_t)vs_rng_below(r, 256); break;
        case VS_ELEM_I8: ((int8_t *)p)[i] = (int8_t)((int)vs_rng_below(r, 256) - 128); break;
        case VS_ELEM_I32: ((int32_t *)p)[i] = (int32_t)vs_rng_next(r) >> 8; break;
        }
    }
    return p;
}

/* Value i of raw data of elem as a double. */
static double raw_value(vs_elem elem, const void *p, size_t i)
{
    switch (elem) {
    case VS_ELEM_F32: return ((const float *)p)[i];
    case VS_ELEM_U8: return ((const uint8_t *)p)[i];
    case VS_ELEM_I8: return ((const int8_t *)p)[i];
    case VS_ELEM_I32: return ((const int32_t *)p)[i];
    }
    return 0;
}

/* Writes rows of elem as fmt to name, then reads them back every way there is. */
static void round_trip(vs_rng *r, const char *name, vs_format fmt, vs_elem elem, uint64_t rows,
                       uint32_t dim)
{
    const char *path = tpath(name);
    void *data = random_rows(r, elem, rows, dim);
    vs_status st = {0};
    CHECKF(vs_dataset_write(path, VS_FORMAT_AUTO, elem, data, rows, dim, &st) == VS_OK, "%s: %s",
           name, st.msg);
    vs_dataset *ds = NULL;
    CHECKF(vs_dataset_open(path, &ds, &st) == VS_OK, "%s: %s", name, st.msg);
    if (!ds) {
        free(data);
        return;
    }
    CHECK(vs_dataset_rows(ds) == rows);
    CHECK(vs_dataset_dim(ds) == dim);
    CHECK(vs_dataset_elem(ds) == elem);
    CHECK(vs_dataset_format(ds) == fmt);

    /* floats, in pieces of 7 rows */
    size_t n = (size_t)rows * dim, bad = 0;
    float *f = malloc(n * sizeof *f + 4);
    uint64_t got = 0, total = 0;
    do {
        CHECK(vs_dataset_tell(ds) == total);
        CHECKF(vs_dataset_read_f32(ds, 7, f + total * dim, &got, &st) == VS_OK, "%s", st.msg);
        total += got;
    } while (got > 0);
    CHECK(total == rows);
    for (size_t i = 0; i < n; i++)
        bad += (double)f[i] != (elem == VS_ELEM_I32 ? (double)(float)raw_value(elem, data, i)
                                                     : raw_value(elem, data, i));
    CHECKF(bad == 0, "%s: %zu floats differ", name, bad);

    /* raw, from row 20 after a seek, then the rest */
    uint8_t *raw = malloc(n * vs_elem_size(elem) + 4);
    size_t rowb = (size_t)dim * vs_elem_size(elem);
    CHECK(vs_dataset_seek(ds, 20, &st) == VS_OK);
    CHECK(vs_dataset_read_raw(ds, rows, raw, &got, &st) == VS_OK && got == rows - 20);
    CHECK(memcmp(raw, (uint8_t *)data + 20 * rowb, (rows - 20) * rowb) == 0);
    CHECK(vs_dataset_read_raw(ds, rows, raw, &got, &st) == VS_OK && got == 0);
    CHECK(vs_dataset_seek(ds, rows + 1, &st) == VS_ERR_OUT_OF_RANGE);
    CHECK(vs_dataset_seek(ds, rows, &st) == VS_OK);

    /* int32 where the file holds integers */
    CHECK(vs_dataset_seek(ds, 0, &st) == VS_OK);
    int32_t *iv = malloc(n * sizeof *iv + 4);
    vs_err e = vs_dataset_read_i32(ds, rows, iv, &got, &st);
    if (elem == VS_ELEM_F32) {
        CHECKF(e == VS_ERR_INVALID_ARGUMENT && strstr(st.msg, "float32"), "%s", st.msg);
        CHECK(vs_dataset_tell(ds) == 0);
    } else {
        CHECK(e == VS_OK && got == rows);
        bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += iv[i] != (int32_t)raw_value(elem, data, i);
        CHECKF(bad == 0, "%s: %zu ints differ", name, bad);
    }
    vs_dataset_close(ds);

    /* the whole-file loaders */
    float *lf = NULL;
    int32_t *li = NULL;
    uint64_t lrows = 0;
    uint32_t ldim = 0;
    CHECKF(vs_dataset_load_f32(path, &lf, &lrows, &ldim, &st) == VS_OK, "%s", st.msg);
    CHECK(lrows == rows && ldim == dim && lf && memcmp(lf, f, n * sizeof *f) == 0);
    e = vs_dataset_load_i32(path, &li, &lrows, &ldim, &st);
    CHECK(elem == VS_ELEM_F32 ? (e == VS_ERR_INVALID_ARGUMENT && !li)
                              : (e == VS_OK && memcmp(li, iv, n * sizeof *iv) == 0));
    free(lf);
    free(li);
    free(iv);
    free(raw);
    free(f);
    free(data);
}

/* Every writer's format back through the readers, with awkward sizes. */
static void test_round_trips(void)
{
    vs_rng r;
    vs_rng_seed(&r, 7);
    round_trip(&r, "a.fvecs", VS_FORMAT_FVECS, VS_ELEM_F32, 37, 5);
    round_trip(&r, "a.ivecs", VS_FORMAT_IVECS, VS_ELEM_I32, 37, 1);
    round_trip(&r, "a.bvecs", VS_FORMAT_BVECS, VS_ELEM_U8, 37, 784);
    round_trip(&r, "a.fbin", VS_FORMAT_FBIN, VS_ELEM_F32, 41, 3);
    round_trip(&r, "a.u8bin", VS_FORMAT_U8BIN, VS_ELEM_U8, 41, 129);
    round_trip(&r, "a.i8bin", VS_FORMAT_I8BIN, VS_ELEM_I8, 41, 7);
    round_trip(&r, "a.ibin", VS_FORMAT_IBIN, VS_ELEM_I32, 41, 100);
    round_trip(&r, "f.npy", VS_FORMAT_NPY, VS_ELEM_F32, 23, 16);
    round_trip(&r, "u.npy", VS_FORMAT_NPY, VS_ELEM_U8, 23, 3);
    round_trip(&r, "i.npy", VS_FORMAT_NPY, VS_ELEM_I8, 23, 9);
    round_trip(&r, "n.npy", VS_FORMAT_NPY, VS_ELEM_I32, 23, 2);
    /* more rows than one 1 MiB read chunk holds (7-byte rows: 149,796 per chunk) */
    round_trip(&r, "big.bvecs", VS_FORMAT_BVECS, VS_ELEM_U8, 400000, 3);
    round_trip(&r, "big.i8bin", VS_FORMAT_I8BIN, VS_ELEM_I8, 400000, 3);
    /* rows larger than a chunk */
    round_trip(&r, "wide.fvecs", VS_FORMAT_FVECS, VS_ELEM_F32, 21, 300000);

    /* the writers refuse what a format cannot hold, and leave nothing behind */
    vs_status st = {0};
    float one = 1;
    CHECK(vs_dataset_write(tpath("x.ivecs"), VS_FORMAT_AUTO, VS_ELEM_F32, &one, 1, 1, &st) ==
              VS_ERR_INVALID_ARGUMENT &&
          strstr(st.msg, "int32"));
    CHECK(vs_dataset_write(tpath("x.txt"), VS_FORMAT_AUTO, VS_ELEM_F32, &one, 1, 1, &st) ==
          VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_dataset_write(tpath("x-idx1-ubyte"), VS_FORMAT_AUTO, VS_ELEM_U8, &one, 1, 1, &st) ==
          VS_ERR_UNIMPLEMENTED);
    CHECK(vs_write_fvecs(tpath("no/such/dir.fvecs"), &one, 1, 1, &st) == VS_ERR_IO);
    DIR *d = opendir(tmpdir);
    for (struct dirent *de; d && (de = readdir(d));)
        CHECKF(!strstr(de->d_name, ".tmp."), "left behind: %s", de->d_name);
    if (d)
        closedir(d);

    /* an empty vecs file is zero rows */
    put_file(tpath("empty.fvecs"), "", 0, false);
    float *data = &one;
    uint64_t rows = 1;
    uint32_t dim = 1;
    CHECK(vs_dataset_load_f32(tpath("empty.fvecs"), &data, &rows, &dim, &st) == VS_OK);
    CHECK(data == NULL && rows == 0 && dim == 0);
    CHECK(vs_write_ivecs(tpath("empty.ivecs"), NULL, 0, 4, &st) == VS_OK);
    size_t n;
    free(get_file(tpath("empty.ivecs"), &n));
    CHECK(n == 0);
}

/* vecs files that lie: a later row with another dim, a short last row, a silly first dim. */
static void test_vecs_errors(void)
{
    vs_status st = {0};
    float rows[5][4] = {{0}};
    CHECK(vs_write_fvecs(tpath("ok.fvecs"), &rows[0][0], 5, 4, &st) == VS_OK);
    size_t n;
    uint8_t *b = get_file(tpath("ok.fvecs"), &n);
    CHECK(n == 5 * 20);

    /* row 3 says dim 3 and is 4 bytes short: the length is off, found at open */
    int32_t three = 3;
    memcpy(b + 60, &three, 4);
    put_file(tpath("dim.fvecs"), b, n - 4, false);
    EXPECT_FAIL(tpath("dim.fvecs"), VS_ERR_DATA_LOSS, "dim.fvecs: row 3 at offset 60 says dim 3, expected 4");
    put_file(tpath("dim.fvecs.gz"), b, n - 4, true);
    EXPECT_FAIL(tpath("dim.fvecs.gz"), VS_ERR_DATA_LOSS, "row 3 at offset 60 says dim 3, expected 4");

    /* row 2 says 3 and row 3 says 5: the length adds up, found as the rows are read */
    uint8_t *c = get_file(tpath("ok.fvecs"), &n);
    int32_t five = 5;
    memcpy(c + 40, &three, 4);
    memcpy(c + 56, &five, 4);
    put_file(tpath("dim2.fvecs"), c, n, false);
    EXPECT_FAIL(tpath("dim2.fvecs"), VS_ERR_DATA_LOSS, "row 2 at offset 40 says dim 3, expected 4");
    {
        vs_dataset *ds = NULL;
        float out[5 * 4];
        uint64_t got = 9;
        CHECK(vs_dataset_open(tpath("dim2.fvecs"), &ds, &st) == VS_OK);
        CHECK(ds && vs_dataset_read_f32(ds, 2, out, &got, &st) == VS_OK && got == 2);
        CHECK(ds && vs_dataset_read_f32(ds, 2, out, &got, &st) == VS_ERR_DATA_LOSS && got == 0);
        CHECK(ds && vs_dataset_tell(ds) == 2); /* nothing delivered; the same error again */
        CHECK(ds && vs_dataset_read_f32(ds, 1, out, &got, &st) == VS_ERR_DATA_LOSS &&
              strstr(st.msg, "row 2 "));
        CHECK(ds && vs_dataset_seek(ds, 4, &st) == VS_OK &&
              vs_dataset_read_f32(ds, 9, out, &got, &st) == VS_OK && got == 1);
        vs_dataset_close(ds);
    }
    free(c);

    /* a truncated last row */
    c = get_file(tpath("ok.fvecs"), &n);
    put_file(tpath("trunc.fvecs"), c, n - 3, false);
    EXPECT_FAIL(tpath("trunc.fvecs"), VS_ERR_DATA_LOSS, "truncated: 17 bytes left at offset 80, row 4 needs 20");
    put_file(tpath("trunc2.fvecs"), c, n - 18, false);
    EXPECT_FAIL(tpath("trunc2.fvecs"), VS_ERR_DATA_LOSS, "truncated: 2 bytes left at offset 80, row 4's dim needs 4");
    put_file(tpath("trunc.fvecs.gz"), c, n - 3, true);
    EXPECT_FAIL(tpath("trunc.fvecs.gz"), VS_ERR_DATA_LOSS, "truncated: 17 bytes left at offset 80");
    put_file(tpath("short.ivecs"), c, 3, false);
    EXPECT_FAIL(tpath("short.ivecs"), VS_ERR_DATA_LOSS, "truncated: 3 bytes left at offset 0");

    /* a first dim that cannot be */
    int32_t neg = -7;
    memcpy(c, &neg, 4);
    put_file(tpath("neg.bvecs"), c, n, false);
    EXPECT_FAIL(tpath("neg.bvecs"), VS_ERR_DATA_LOSS, "row 0 at offset 0 says dim -7");
    int32_t huge = INT32_MAX;
    memcpy(c, &huge, 4);
    put_file(tpath("huge.fvecs"), c, n, false);
    EXPECT_FAIL(tpath("huge.fvecs"), VS_ERR_DATA_LOSS, "truncated");
    free(c);
    free(b);
}

/* bin headers that claim more (or less) than the file holds. */
static void test_bin_errors(void)
{
    vs_status st = {0};
    uint8_t b[8 + 100] = {0};
    uint32_t h[2] = {UINT32_MAX, 128};
    memcpy(b, h, 8);
    put_file(tpath("liar.fbin"), b, sizeof b, false);
    EXPECT_FAIL(tpath("liar.fbin"), VS_ERR_DATA_LOSS,
                "liar.fbin: header says 4294967295 rows of dim 128 (float32) but only 100 bytes follow it at offset 8");
    put_file(tpath("liar.u8bin.gz"), b, sizeof b, true);
    EXPECT_FAIL(tpath("liar.u8bin.gz"), VS_ERR_DATA_LOSS, "header says 4294967295 rows");
    h[0] = UINT32_MAX;
    h[1] = UINT32_MAX;
    memcpy(b, h, 8);
    put_file(tpath("liar2.ibin"), b, sizeof b, false);
    EXPECT_FAIL(tpath("liar2.ibin"), VS_ERR_DATA_LOSS, "header says 4294967295 rows of dim 4294967295");
    h[0] = 3;
    h[1] = 8;
    memcpy(b, h, 8);
    put_file(tpath("short.fbin"), b, 8 + 95, false);
    EXPECT_FAIL(tpath("short.fbin"), VS_ERR_DATA_LOSS, "header says 3 rows of dim 8 (float32) but only 95 bytes");
    put_file(tpath("long.i8bin"), b, 8 + 25, false);
    EXPECT_FAIL(tpath("long.i8bin"), VS_ERR_DATA_LOSS, "1 unexpected bytes after the last row at offset 32");
    h[1] = 0;
    memcpy(b, h, 8);
    put_file(tpath("zero.fbin"), b, 8, false);
    EXPECT_FAIL(tpath("zero.fbin"), VS_ERR_DATA_LOSS, "3 rows of dim 0");
    put_file(tpath("tiny.fbin"), b, 5, false);
    EXPECT_FAIL(tpath("tiny.fbin"), VS_ERR_DATA_LOSS, "truncated: 5 bytes left at offset 0, the header (rows, dim) needs 8");

    /* 35,615 rows start with the bytes 1f 8b, gzip's magic: a plain file must stay plain */
    uint32_t nrows = 0x8b1f;
    uint8_t *u = calloc(8 + nrows, 1);
    memcpy(u, &nrows, 4);
    u[4] = 1;
    for (uint32_t i = 0; i < nrows; i++)
        u[8 + i] = (uint8_t)(i * 7);
    put_file(tpath("magic.u8bin"), u, 8 + nrows, false);
    int32_t *li = NULL;
    uint64_t rows = 0;
    uint32_t dim = 0;
    CHECKF(vs_dataset_load_i32(tpath("magic.u8bin"), &li, &rows, &dim, &st) == VS_OK, "%s", st.msg);
    CHECK(rows == nrows && dim == 1 && li && li[1000] == (uint8_t)7000);
    free(li);
    free(u);
}

/* Writes a hand-made npy file: version major, header text, then data bytes. */
static void put_npy(const char *name, int major, const char *header, const void *data, size_t n)
{
    size_t hl = strlen(header), pre = major == 1 ? 10 : 12;
    uint8_t *b = malloc(pre + hl + n + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    b[8] = (uint8_t)hl;
    b[9] = (uint8_t)(hl >> 8);
    if (major != 1) {
        b[10] = 0;
        b[11] = 0;
    }
    memcpy(b + pre, header, hl);
    if (n)
        memcpy(b + pre + hl, data, n);
    put_file(tpath(name), b, pre + hl + n, false);
    free(b);
}

/* npy: v1 and v2 headers, 1-D arrays, and everything this reader refuses. */
static void test_npy(void)
{
    vs_status st = {0};
    float v[12];
    for (int i = 0; i < 12; i++)
        v[i] = (float)i * 0.5f;
    put_npy("v2.npy", 2, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3, 4)}  \n", v,
            sizeof v);
    float *data = NULL;
    uint64_t rows = 0;
    uint32_t dim = 0;
    CHECKF(vs_dataset_load_f32(tpath("v2.npy"), &data, &rows, &dim, &st) == VS_OK, "%s", st.msg);
    CHECK(rows == 3 && dim == 4 && data && data[11] == 5.5f);
    free(data);

    int32_t labels[5] = {3, 1, 4, 1, 5};
    put_npy("labels.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }\n", labels,
            sizeof labels);
    int32_t *li = NULL;
    CHECKF(vs_dataset_load_i32(tpath("labels.npy"), &li, &rows, &dim, &st) == VS_OK, "%s", st.msg);
    CHECK(rows == 5 && dim == 1 && li && li[4] == 5);
    free(li);

    /* one row in Fortran order is the same bytes as in C order */
    put_npy("frow.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 12), }\n", v,
            sizeof v);
    CHECK(vs_dataset_load_f32(tpath("frow.npy"), &data, &rows, &dim, &st) == VS_OK && dim == 12);
    free(data);

    put_npy("fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }\n", v,
            sizeof v);
    EXPECT_FAIL(tpath("fortran.npy"), VS_ERR_INVALID_ARGUMENT, "fortran.npy: fortran_order is True");
    put_npy("f8.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }\n", v,
            sizeof v);
    EXPECT_FAIL(tpath("f8.npy"), VS_ERR_INVALID_ARGUMENT, "dtype '<f8' is not supported");
    put_npy("be.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4), }\n", v,
            sizeof v);
    EXPECT_FAIL(tpath("be.npy"), VS_ERR_INVALID_ARGUMENT, "dtype '>f4' is big-endian");
    put_npy("3d.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 2), }\n", v,
            sizeof v);
    EXPECT_FAIL(tpath("3d.npy"), VS_ERR_INVALID_ARGUMENT, "array has 3 dimensions");
    put_npy("key.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'x': 1}\n",
            v, sizeof v);
    EXPECT_FAIL(tpath("key.npy"), VS_ERR_INVALID_ARGUMENT, "bad npy header at offset 10");
    put_npy("noshape.npy", 1, "{'descr': '<f4', 'fortran_order': False}\n", v, sizeof v);
    EXPECT_FAIL(tpath("noshape.npy"), VS_ERR_INVALID_ARGUMENT, "a key is missing");
    put_npy("trunc.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }\n", v,
            sizeof v - 2);
    EXPECT_FAIL(tpath("trunc.npy"), VS_ERR_DATA_LOSS, "header says 3 rows of dim 4 (float32) but only 46 bytes");
    put_npy("v9.npy", 9, "{}", NULL, 0);
    EXPECT_FAIL(tpath("v9.npy"), VS_ERR_INVALID_ARGUMENT, "version 9.0 is not supported");
    put_file(tpath("magic.npy"), "\x93NUMPX\x01\x00\x02\x00{}", 12, false);
    EXPECT_FAIL(tpath("magic.npy"), VS_ERR_INVALID_ARGUMENT, "magic.npy: bad magic at offset 0");
    put_file(tpath("hlen.npy"), "\x93NUMPY\x01\x00\xff\x00{}", 12, false);
    EXPECT_FAIL(tpath("hlen.npy"), VS_ERR_DATA_LOSS, "truncated: 2 bytes left at offset 10, the header needs 255");
}

/* IDX: images and labels, plain and gzip, and the faults. */
static void test_idx(void)
{
    vs_status st = {0};
    /* three 2x3 images */
    uint8_t img[16 + 18] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 3};
    for (int i = 0; i < 18; i++)
        img[16 + i] = (uint8_t)(i * 13);
    uint8_t lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 9};
    for (int gz = 0; gz < 2; gz++) {
        const char *ip = tpath(gz ? "t-images-idx3-ubyte.gz" : "t-images-idx3-ubyte");
        const char *lp = tpath(gz ? "t-labels-idx1-ubyte.gz" : "t-labels-idx1-ubyte");
        put_file(ip, img, sizeof img, gz);
        put_file(lp, lab, sizeof lab, gz);
        vs_dataset *ds = NULL;
        CHECKF(vs_dataset_open(ip, &ds, &st) == VS_OK, "%s", st.msg);
        if (ds) {
            CHECK(vs_dataset_format(ds) == VS_FORMAT_IDX && vs_dataset_elem(ds) == VS_ELEM_U8);
            CHECK(vs_dataset_rows(ds) == 3 && vs_dataset_dim(ds) == 6);
            float row[6];
            uint64_t got;
            CHECK(vs_dataset_seek(ds, 2, &st) == VS_OK);
            CHECK(vs_dataset_read_f32(ds, 5, row, &got, &st) == VS_OK && got == 1);
            CHECK(row[0] == 12 * 13 && row[5] == (float)(uint8_t)(17 * 13));
            CHECK(vs_dataset_seek(ds, 0, &st) == VS_OK);
            CHECK(vs_dataset_read_f32(ds, 1, row, &got, &st) == VS_OK && got == 1 && row[1] == 13);
            vs_dataset_close(ds);
        }
        int32_t *l = NULL;
        uint64_t rows = 0;
        uint32_t dim = 0;
        CHECKF(vs_dataset_load_i32(lp, &l, &rows, &dim, &st) == VS_OK, "%s", st.msg);
        CHECK(rows == 3 && dim == 1 && l && l[0] == 7 && l[1] == 2 && l[2] == 9);
        free(l);
    }
    /* explicit format on a name that says nothing */
    put_file(tpath("images.raw"), img, sizeof img, false);
    vs_dataset *ds = NULL;
    CHECK(vs_dataset_open(tpath("images.raw"), &ds, &st) == VS_ERR_INVALID_ARGUMENT &&
          strstr(st.msg, "cannot tell the format"));
    CHECK(vs_dataset_open_as(tpath("images.raw"), VS_FORMAT_IDX, &ds, &st) == VS_OK && ds &&
          vs_dataset_rows(ds) == 3);
    vs_dataset_close(ds);

    uint8_t bad[sizeof img];
    memcpy(bad, img, sizeof img);
    bad[1] = 1;
    put_file(tpath("bad-idx3-ubyte"), bad, sizeof bad, false);
    EXPECT_FAIL(tpath("bad-idx3-ubyte"), VS_ERR_INVALID_ARGUMENT, "bad-idx3-ubyte: bad magic 0x00010803 at offset 0");
    memcpy(bad, img, sizeof img);
    bad[2] = 0x0D;
    put_file(tpath("float-idx3-ubyte.gz"), bad, sizeof bad, true);
    EXPECT_FAIL(tpath("float-idx3-ubyte.gz"), VS_ERR_INVALID_ARGUMENT, "IDX type 0x0d (float) at offset 2 is not supported");
    put_file(tpath("lab-idx3-ubyte"), lab, sizeof lab, false);
    EXPECT_FAIL(tpath("lab-idx3-ubyte"), VS_ERR_INVALID_ARGUMENT, "the name says idx3 but the header at offset 3 says 1");
    put_file(tpath("short-idx3-ubyte.gz"), img, sizeof img - 4, true);
    EXPECT_FAIL(tpath("short-idx3-ubyte.gz"), VS_ERR_DATA_LOSS, "header says 3 rows of dim 6 (uint8) but only 14 bytes follow it at offset 16");
    memcpy(bad, img, sizeof img);
    bad[4] = 0x7f; /* 2^31 images */
    put_file(tpath("many-idx3-ubyte"), bad, sizeof bad, false);
    EXPECT_FAIL(tpath("many-idx3-ubyte"), VS_ERR_DATA_LOSS, "header says 2130706435 rows");
    put_file(tpath("hdr-idx3-ubyte"), img, 10, false);
    EXPECT_FAIL(tpath("hdr-idx3-ubyte"), VS_ERR_DATA_LOSS, "truncated: 2 bytes left at offset 8");
    /* a corrupt gzip stream */
    size_t n;
    uint8_t *z = get_file(tpath("t-images-idx3-ubyte.gz"), &n);
    if (z && n > 20) {
        for (size_t i = 12; i < n - 8; i++)
            z[i] ^= 0x5a;
        put_file(tpath("corrupt-idx3-ubyte.gz"), z, n, false);
        EXPECT_FAIL(tpath("corrupt-idx3-ubyte.gz"), VS_ERR_DATA_LOSS, "corrupt-idx3-ubyte.gz: corrupt gzip stream");
    }
    free(z);
}

/* Names, formats and files that are not there. */
static void test_names(void)
{
    vs_status st = {0};
    vs_format f;
    static const struct {
        const char *path;
        vs_format fmt;
    } cases[] = {
        {"a/b/base.fvecs", VS_FORMAT_FVECS}, {"gt.ivecs.gz", VS_FORMAT_IVECS},
        {"x.bvecs", VS_FORMAT_BVECS},        {"deep1b.fbin", VS_FORMAT_FBIN},
        {"sift.u8bin", VS_FORMAT_U8BIN},     {"t.i8bin", VS_FORMAT_I8BIN},
        {"gt.ibin", VS_FORMAT_IBIN},         {"emb.npy.gz", VS_FORMAT_NPY},
        {"t10k-images-idx3-ubyte.gz", VS_FORMAT_IDX}, {"train-labels.idx1-ubyte", VS_FORMAT_IDX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECKF(vs_format_from_path(cases[i].path, &f, &st) == VS_OK && f == cases[i].fmt, "%s",
               cases[i].path);
    CHECK(vs_format_from_path("fvecs", &f, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_format_from_path("x.fvecs.bz2", &f, &st) == VS_ERR_INVALID_ARGUMENT &&
          strstr(st.msg, "x.fvecs.bz2: cannot tell the format"));
    CHECK(vs_format_from_path("dir.fvecs/x", &f, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_format_from_name("u8bin", &f, &st) == VS_OK && f == VS_FORMAT_U8BIN);
    CHECK(strcmp(vs_format_name(VS_FORMAT_IDX), "idx") == 0);
    CHECK(vs_format_from_name("hdf5", &f, &st) == VS_ERR_INVALID_ARGUMENT && strstr(st.msg, "hdf5"));
    vs_dataset *ds = (vs_dataset *)&st;
    CHECK(vs_dataset_open(tpath("missing.fvecs"), &ds, &st) == VS_ERR_NOT_FOUND && !ds &&
          strstr(st.msg, "missing.fvecs"));
    CHECK(vs_dataset_open(tmpdir, &ds, &st) != VS_OK);
    CHECK(mkdir(tpath("dir.fvecs"), 0755) == 0);
    CHECK(vs_dataset_open(tpath("dir.fvecs"), &ds, &st) == VS_ERR_INVALID_ARGUMENT &&
          strstr(st.msg, "not a regular file"));
    vs_dataset_close(NULL);
}

/* Appends text to out (cap bytes), dropping what does not fit. */
static void append(char *out, size_t cap, const char *a, const char *b)
{
    size_t len = strlen(out);
    if (len + 1 < cap)
        snprintf(out + len, cap - len, "%s%s", a, b);
}

/* Reads path as TSV and returns the rows joined as "a|b;c|d;" into out, or the error. */
static vs_err tsv_dump(const char *path, char *out, size_t cap, vs_status *st)
{
    vs_tsv *t = NULL;
    out[0] = '\0';
    vs_err e = vs_tsv_open(path, &t, st);
    if (e != VS_OK)
        return e;
    for (uint32_t i = 0; i < vs_tsv_n_cols(t); i++)
        append(out, cap, i ? "|" : "", vs_tsv_col_name(t, i));
    append(out, cap, ";", "");
    const char *const *cells;
    while ((e = vs_tsv_next(t, &cells, st)) == VS_OK && cells) {
        for (uint32_t i = 0; i < vs_tsv_n_cols(t); i++)
            append(out, cap, i ? "|" : "", cells[i]);
        append(out, cap, ";", "");
    }
    vs_tsv_close(t);
    return e;
}

/* The TSV reader: header, cells, CRLF, blank lines, and the wrong number of cells. */
static void test_tsv(void)
{
    vs_status st = {0};
    char out[512];
    const char *good = "id\tdigit\tink\n0\t7\t166\r\n\n1\t2,3\t\n2\t1\t95";
    put_file(tpath("a.tsv"), good, strlen(good), false);
    CHECKF(tsv_dump(tpath("a.tsv"), out, sizeof out, &st) == VS_OK &&
               strcmp(out, "id|digit|ink;0|7|166;1|2,3|;2|1|95;") == 0,
           "%s / %s", out, st.msg);
    put_file(tpath("a.tsv.gz"), good, strlen(good), true);
    CHECK(tsv_dump(tpath("a.tsv.gz"), out, sizeof out, &st) == VS_OK &&
          strcmp(out, "id|digit|ink;0|7|166;1|2,3|;2|1|95;") == 0);

    const char *fq = "\xEF\xBB\xBFquery\tfilter\r\n0\tdigit IN (1, 2, 3)\r\n";
    put_file(tpath("fq.tsv"), fq, strlen(fq), false);
    vs_tsv *t = NULL;
    CHECK(vs_tsv_open(tpath("fq.tsv"), &t, &st) == VS_OK && t);
    if (t) {
        CHECK(vs_tsv_n_cols(t) == 2 && vs_tsv_col(t, "filter") == 1 && vs_tsv_col(t, "x") == -1);
        CHECK(vs_tsv_col(t, "query") == 0);
        const char *const *cells;
        CHECK(vs_tsv_next(t, &cells, &st) == VS_OK && cells &&
              strcmp(cells[1], "digit IN (1, 2, 3)") == 0 && vs_tsv_line(t) == 2);
        CHECK(vs_tsv_next(t, &cells, &st) == VS_OK && !cells);
        CHECK(vs_tsv_next(t, &cells, &st) == VS_OK && !cells);
        vs_tsv_close(t);
    }

    const char *bad = "a\tb\n1\t2\n\n3\n";
    put_file(tpath("bad.tsv"), bad, strlen(bad), false);
    CHECK(tsv_dump(tpath("bad.tsv"), out, sizeof out, &st) == VS_ERR_INVALID_ARGUMENT &&
          strstr(st.msg, "bad.tsv: line 4 has 1 cells, the header has 2"));
    const char *many = "a\tb\n1\t2\t3\n";
    put_file(tpath("many.tsv"), many, strlen(many), false);
    CHECK(tsv_dump(tpath("many.tsv"), out, sizeof out, &st) == VS_ERR_INVALID_ARGUMENT &&
          strstr(st.msg, "line 2 has 3 cells"));
    put_file(tpath("dup.tsv"), "a\tb\ta\n", 6, false);
    CHECK(tsv_dump(tpath("dup.tsv"), out, sizeof out, &st) == VS_ERR_INVALID_ARGUMENT &&
          strstr(st.msg, "'a' appears twice"));
    put_file(tpath("hole.tsv"), "a\t\tc\n", 5, false);
    CHECK(tsv_dump(tpath("hole.tsv"), out, sizeof out, &st) == VS_ERR_INVALID_ARGUMENT &&
          strstr(st.msg, "column 2 has an empty name"));
    put_file(tpath("empty.tsv"), "\n\n", 2, false);
    CHECK(tsv_dump(tpath("empty.tsv"), out, sizeof out, &st) == VS_ERR_INVALID_ARGUMENT &&
          strstr(st.msg, "empty file"));
    put_file(tpath("nul.tsv"), "a\n1\n2\0x\n", 8, false);
    CHECK(tsv_dump(tpath("nul.tsv"), out, sizeof out, &st) == VS_ERR_INVALID_ARGUMENT &&
          strstr(st.msg, "line 3 holds a NUL byte"));
    CHECK(vs_tsv_open(tpath("none.tsv"), &t, &st) == VS_ERR_NOT_FOUND);

    /* many rows across buffer refills, then one line too long to hold */
    size_t cap = 3u << 20, len = 0;
    char *big = malloc(cap);
    len += (size_t)snprintf(big, cap, "k\tv\n");
    for (int i = 0; i < 50000; i++)
        len += (size_t)snprintf(big + len, cap - len, "%d\t%d\n", i, i * 3);
    put_file(tpath("big.tsv"), big, len, false);
    CHECK(vs_tsv_open(tpath("big.tsv"), &t, &st) == VS_OK && t);
    if (t) {
        const char *const *cells;
        int i = 0, bad_rows = 0;
        while (vs_tsv_next(t, &cells, &st) == VS_OK && cells) {
            bad_rows += atoi(cells[0]) != i || atoi(cells[1]) != 3 * i;
            i++;
        }
        CHECK(i == 50000 && bad_rows == 0);
        vs_tsv_close(t);
    }
    memset(big + len, 'x', VS_TSV_MAX_LINE + 10);
    len += VS_TSV_MAX_LINE + 10;
    big[len++] = '\n';
    put_file(tpath("long.tsv"), big, len, false);
    CHECK(tsv_dump(tpath("long.tsv"), out, sizeof out, &st) == VS_ERR_INVALID_ARGUMENT &&
          strstr(st.msg, "line 50002 is longer than"));
    free(big);
}

/* The real MNIST files: shapes, and the IDX source against the bvecs and TSV derived from it. */
static void test_mnist(const char *dir)
{
    char p[1024];
    vs_status st = {0};
    uint8_t *base = NULL, *query = NULL, *img = NULL;
    uint64_t rows = 0;
    vs_dataset *ds = NULL;

    snprintf(p, sizeof p, "%s/mnist/base.bvecs", dir);
    CHECKF(vs_dataset_open(p, &ds, &st) == VS_OK, "%s", st.msg);
    if (!ds)
        return;
    CHECK(vs_dataset_rows(ds) == 9000 && vs_dataset_dim(ds) == 784);
    base = malloc(9000 * 784);
    CHECK(vs_dataset_read_raw(ds, 9000, base, &rows, &st) == VS_OK && rows == 9000);
    vs_dataset_close(ds);

    snprintf(p, sizeof p, "%s/mnist/query.bvecs", dir);
    CHECK(vs_dataset_open(p, &ds, &st) == VS_OK && ds && vs_dataset_rows(ds) == 1000);
    query = malloc(1000 * 784);
    CHECK(ds && vs_dataset_read_raw(ds, 1000, query, &rows, &st) == VS_OK && rows == 1000);
    vs_dataset_close(ds);

    snprintf(p, sizeof p, "%s/mnist/gt-l2-100.ivecs", dir);
    int32_t *gt = NULL;
    uint32_t dim = 0;
    CHECKF(vs_dataset_load_i32(p, &gt, &rows, &dim, &st) == VS_OK, "%s", st.msg);
    CHECK(rows == 1000 && dim == 100 && gt && gt[0] >= 0 && gt[0] < 9000);
    free(gt);

    /* t10k images 0..8999 are the base, 9000..9999 the queries, read 777 rows at a time */
    snprintf(p, sizeof p, "%s/mnist/t10k-images-idx3-ubyte.gz", dir);
    CHECKF(vs_dataset_open(p, &ds, &st) == VS_OK, "%s", st.msg);
    if (ds) {
        CHECK(vs_dataset_rows(ds) == 10000 && vs_dataset_dim(ds) == 784);
        img = malloc(10000 * 784);
        uint64_t total = 0, got;
        while (vs_dataset_read_raw(ds, 777, img + total * 784, &got, &st) == VS_OK && got)
            total += got;
        CHECK(total == 10000);
        CHECK(memcmp(img, base, 784) == 0); /* first image = row 0 */
        CHECK(memcmp(img, base, 9000 * 784) == 0);
        CHECK(memcmp(img + 9000 * 784, query, 1000 * 784) == 0);
        float row[784];
        CHECK(vs_dataset_seek(ds, 9999, &st) == VS_OK &&
              vs_dataset_read_f32(ds, 5, row, &got, &st) == VS_OK && got == 1);
        bool same = true;
        for (int i = 0; i < 784; i++)
            same &= row[i] == query[999 * 784 + i];
        CHECK(same);
        vs_dataset_close(ds);
    }

    /* labels and ink against base-attrs.tsv */
    snprintf(p, sizeof p, "%s/mnist/t10k-labels-idx1-ubyte.gz", dir);
    int32_t *labels = NULL;
    CHECKF(vs_dataset_load_i32(p, &labels, &rows, &dim, &st) == VS_OK, "%s", st.msg);
    CHECK(rows == 10000 && dim == 1);
    snprintf(p, sizeof p, "%s/mnist/base-attrs.tsv", dir);
    vs_tsv *t = NULL;
    CHECKF(vs_tsv_open(p, &t, &st) == VS_OK, "%s", st.msg);
    if (t && labels) {
        int cid = vs_tsv_col(t, "id"), cdig = vs_tsv_col(t, "digit"), cink = vs_tsv_col(t, "ink");
        CHECK(cid == 0 && cdig == 1 && cink == 2);
        const char *const *c;
        uint64_t n = 0, bad = 0;
        vs_err e;
        while ((e = vs_tsv_next(t, &c, &st)) == VS_OK && c && cid >= 0 && cdig >= 0 && cink >= 0) {
            long id = atol(c[cid]);
            int ink = 0;
            for (int i = 0; id >= 0 && id < 9000 && i < 784; i++)
                ink += base[id * 784 + i] != 0;
            bad += id != (long)n || atoi(c[cdig]) != labels[n] || atoi(c[cink]) != ink;
            n++;
        }
        CHECKF(e == VS_OK, "%s", st.msg);
        CHECK(n == 9000 && bad == 0);
    }
    vs_tsv_close(t);
    free(labels);
    free(img);
    free(query);
    free(base);
}

/* Removes everything under tmpdir (flat), then tmpdir. */
static void cleanup(void)
{
    DIR *d = opendir(tmpdir);
    for (struct dirent *de; d && (de = readdir(d));) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            if (unlink(tpath(de->d_name)) != 0)
                rmdir(tpath(de->d_name));
    }
    if (d)
        closedir(d);
    rmdir(tmpdir);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/vs_formats_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 1;
    }
    test_names();
    test_round_trips();
    test_vecs_errors();
    test_bin_errors();
    test_npy();
    test_idx();
    test_tsv();
    const char *dir = vs_test_data_dir();
    if (dir)
        test_mnist(dir);
    else
        printf("SKIP test_formats: MNIST checks (VECSCAN_DATA_DIR is not set)\n");
    cleanup();
    return vs_test_finish("test_formats");
}
