/*
 * test_engine.c: the engine end to end on a real RocksDB in a temporary directory: collections,
 * upsert / patch / delete semantics, checks before anything is written, visibility (min_seq),
 * filters and attributes in results, get, restart from snapshot + log and from items alone,
 * corrupt snapshots, an unknown format version, queue limits, drop and re-create, bulk import.
 */
#include <math.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "testutil.h"
#include "vs_engine.h"

#define DIM 16

static char g_log[16384];

/* Keeps warnings and errors (and everything about snapshots) for the checks. */
static void test_log(void *ctx, vs_log_level level, const char *line)
{
    (void)ctx;
    if (level <= VS_LOG_WARN || strstr(line, "snapshot") || strstr(line, "recovery"))
        snprintf(g_log + strlen(g_log), sizeof g_log - strlen(g_log), "%s\n", line);
}

/* A fresh temporary directory. */
static void make_tmp(char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/vs-engine-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

/* rm -rf dir. */
static void remove_tree(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

/* Opens an engine with small, test-friendly settings. */
static vs_engine *open_engine(const char *dir, uint64_t snapshot_every)
{
    vs_engine_options o;
    vs_engine_options_init(&o, dir);
    o.index.n_threads = 1;
    o.snapshot_every = snapshot_every;
    o.log = test_log;
    vs_engine *e = NULL;
    vs_status st;
    vs_err rc = vs_engine_open(&o, &e, &st);
    CHECKF(rc == VS_OK, "open: %s", st.msg);
    return e;
}

/* The deterministic vector of (id, version). */
static void vec_of(uint64_t id, uint32_t version, float *v)
{
    vs_rng r;
    vs_rng_seed(&r, id * 7919 + version);
    for (int d = 0; d < DIM; d++)
        v[d] = (float)vs_rng_gauss(&r);
}

/* Creates collection "docs": one cosine f32 field "emb", attributes tag "color" and int "year". */
static void create_docs(vs_engine *e, const char *name)
{
    vs_field_spec f = {.name = "emb", .dim = DIM, .metric = VS_METRIC_COSINE,
                       .storage = VS_STORAGE_F32};
    vs_attr_schema *as = vs_attr_schema_create();
    vs_status st;
    CHECK(vs_attr_schema_add(as, "color", VS_ATTR_TAG, &st) == VS_OK);
    CHECK(vs_attr_schema_add(as, "year", VS_ATTR_INT, &st) == VS_OK);
    uint64_t seq = 0;
    vs_err rc = vs_engine_create_collection(e, name, &f, 1, as, &seq, &st);
    CHECKF(rc == VS_OK, "create: %s", st.msg);
    CHECK(seq > 0);
    vs_attr_schema_destroy(as);
}

/* Upserts id with vector version ver, color and year; returns the ack seq. */
static uint64_t upsert(vs_engine *e, const char *coll, uint64_t id, uint32_t ver,
                       const char *color, int64_t year)
{
    float v[DIM];
    vec_of(id, ver, v);
    vs_vector_in vi = {.field = "emb", .values = v, .dim = DIM};
    vs_attr_str tag = {color, strlen(color)};
    vs_attr_in ai[2] = {{.field = "color", .type = VS_ATTR_TAG, .tags = &tag, .n_tags = 1},
                        {.field = "year", .type = VS_ATTR_INT, .int_value = year}};
    vs_mutation m = {.op = VS_MUT_UPSERT, .id = id, .vectors = &vi, .n_vectors = 1, .attrs = ai,
                     .n_attrs = 2};
    uint64_t seq = 0;
    vs_status st;
    vs_err rc = vs_engine_write_wait(e, coll, &m, 1, &seq, NULL, &st);
    CHECKF(rc == VS_OK, "upsert %llu: %s", (unsigned long long)id, st.msg);
    return seq;
}

/* Searches for the vector of (id, ver), top k, with a filter and min_seq. */
static vs_search_result *search(vs_engine *e, const char *coll, uint64_t id, uint32_t ver,
                                uint32_t k, const char *filter, uint64_t min_seq, bool attrs)
{
    float q[DIM];
    vec_of(id, ver, q);
    vs_search_term_in t = {.field = "emb", .vectors = q, .n_vectors = 1, .dim = DIM};
    vs_search_request r = {.collection = coll, .terms = &t, .n_terms = 1, .k = k,
                           .filter = filter, .min_seq = min_seq, .with_attributes = attrs};
    vs_search_result *res = NULL;
    vs_status st;
    vs_err rc = vs_engine_search_wait(e, &r, &res, &st);
    CHECKF(rc == VS_OK, "search: %s", st.msg);
    return res;
}

/* Whether a result holds id. */
static bool has_id(const vs_search_result *r, uint64_t id)
{
    for (uint32_t i = 0; r && i < r->n_hits; i++)
        if (r->hits[i].id == id)
            return true;
    return false;
}

/* Collections, mutations, checks, visibility, filters, get. */
static void test_basics(void)
{
    char dir[4096];
    make_tmp(dir, sizeof dir);
    vs_engine *e = open_engine(dir, UINT64_MAX);
    if (!e)
        return;
    vs_status st;
    create_docs(e, "docs");
    vs_field_spec f = {.name = "emb", .dim = DIM};
    CHECK(vs_engine_create_collection(e, "docs", &f, 1, NULL, NULL, &st) ==
          VS_ERR_ALREADY_EXISTS);
    { /* a query whose dim disagrees with the field is refused before its buffer is read */
        float q[DIM - 1] = {1};
        vs_search_term_in t = {.field = "emb", .vectors = q, .n_vectors = 1, .dim = DIM - 1};
        vs_search_request r = {.collection = "docs", .terms = &t, .n_terms = 1, .k = 1};
        vs_search_result *res = NULL;
        CHECK(vs_engine_search_wait(e, &r, &res, &st) == VS_ERR_INVALID_ARGUMENT);
        CHECK(strstr(st.msg, "dim") != NULL);
        vs_search_result_free(res);
    }
    CHECK(vs_engine_create_collection(e, "bad name", &f, 1, NULL, NULL, &st) ==
          VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_engine_create_collection(e, "x", &f, 0, NULL, NULL, &st) == VS_ERR_INVALID_ARGUMENT);

    /* visibility: every upsert is found by a search with min_seq = its ack */
    for (uint64_t id = 1; id <= 200; id++) {
        uint64_t seq = upsert(e, "docs", id, 0, id % 2 ? "red" : "blue", 2000 + (int64_t)id);
        vs_search_result *r = search(e, "docs", id, 0, 1, NULL, seq, false);
        CHECKF(r && r->n_hits == 1 && r->hits[0].id == id && r->applied_seq >= seq,
               "id %llu not visible at seq %llu", (unsigned long long)id,
               (unsigned long long)seq);
        vs_search_result_free(r);
    }
    vs_collection_info info;
    CHECK(vs_engine_describe(e, "docs", &info, &st) == VS_OK);
    CHECK(info.count == 200 && info.n_fields == 1 && vs_attr_schema_count(info.attrs) == 2);
    CHECK(info.field_bytes[0] > 0 && info.device_bytes == 0); /* the CPU backend: no GPU memory */
    vs_collection_info_clear(&info);
    vs_engine_stats es;
    vs_engine_stats_get(e, &es);
    CHECK(es.device_ordinal == -1 && es.device_total == 0);

    /* filters and attributes in results */
    uint64_t last = vs_engine_last_acked_seq(e);
    vs_search_result *r = search(e, "docs", 7, 0, 10, "color = 'blue' AND year >= 2100", last,
                                 true);
    CHECK(r && r->n_hits == 10);
    for (uint32_t i = 0; r && i < r->n_hits; i++) {
        CHECK(r->hits[i].id % 2 == 0 && r->hits[i].id >= 100);
        CHECK(r->hits[i].n_attrs == 2);
        for (uint32_t a = 0; a < r->hits[i].n_attrs; a++) {
            const vs_attr_out *ao = &r->hits[i].attrs[a];
            if (strcmp(ao->field, "year") == 0)
                CHECK(ao->int_value == 2000 + (int64_t)r->hits[i].id);
            else
                CHECK(ao->n_tags == 1 && ao->tags[0].len == 4 && !memcmp(ao->tags[0].s, "blue", 4));
        }
    }
    vs_search_result_free(r);

    /* OUT_OF_RANGE above the last ack; a bad filter; an unknown collection */
    float q[DIM];
    vec_of(1, 0, q);
    vs_search_term_in t = {.field = "emb", .vectors = q, .n_vectors = 1, .dim = DIM};
    vs_search_request sr = {.collection = "docs", .terms = &t, .n_terms = 1, .k = 5,
                            .min_seq = last + 5};
    CHECK(vs_engine_search(e, &sr, NULL, NULL, &st) == VS_ERR_OUT_OF_RANGE);
    sr.min_seq = 0;
    sr.filter = "colour = 'red'";
    CHECK(vs_engine_search(e, &sr, NULL, NULL, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECKF(strstr(st.msg, "colour") != NULL, "%s", st.msg);
    sr.filter = NULL;
    sr.collection = "nope";
    CHECK(vs_engine_search(e, &sr, NULL, NULL, &st) == VS_ERR_NOT_FOUND);

    /* checks before anything is written */
    float v[DIM];
    vec_of(1, 1, v);
    vs_vector_in vi = {.field = "emb", .values = v, .dim = DIM - 1};
    vs_mutation m = {.op = VS_MUT_UPSERT, .id = 999, .vectors = &vi, .n_vectors = 1};
    CHECK(vs_engine_write_wait(e, "docs", &m, 1, NULL, NULL, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECKF(strstr(st.msg, "dim 15") != NULL, "%s", st.msg);
    vi.dim = DIM;
    v[3] = NAN;
    CHECK(vs_engine_write_wait(e, "docs", &m, 1, NULL, NULL, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECKF(strstr(st.msg, "NaN") != NULL, "%s", st.msg);
    memset(v, 0, sizeof v);
    CHECK(vs_engine_write_wait(e, "docs", &m, 1, NULL, NULL, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECKF(strstr(st.msg, "cosine") != NULL, "%s", st.msg);
    vec_of(1, 1, v);
    vi.field = "img";
    CHECK(vs_engine_write_wait(e, "docs", &m, 1, NULL, NULL, &st) == VS_ERR_INVALID_ARGUMENT);
    vi.field = "emb";
    vs_attr_in bad = {.field = "year", .type = VS_ATTR_TAG};
    m.attrs = &bad;
    m.n_attrs = 1;
    CHECK(vs_engine_write_wait(e, "docs", &m, 1, NULL, NULL, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECKF(strstr(st.msg, "int field") != NULL, "%s", st.msg);
    /* a group with one bad mutation writes none of them */
    vs_mutation two[2] = {{.op = VS_MUT_UPSERT, .id = 998, .vectors = &vi, .n_vectors = 1}, m};
    CHECK(vs_engine_write_wait(e, "docs", two, 2, NULL, NULL, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECKF(strstr(st.msg, "mutation 1") != NULL, "%s", st.msg);
    CHECK(vs_engine_last_acked_seq(e) == last);

    /* patch: attributes only, vectors stay; clear a field */
    vs_attr_in year = {.field = "year", .type = VS_ATTR_INT, .int_value = 1};
    vs_mutation p = {.op = VS_MUT_PATCH, .id = 5, .attrs = &year, .n_attrs = 1};
    bool existed = false;
    CHECK(vs_engine_write_wait(e, "docs", &p, 1, NULL, &existed, &st) == VS_OK);
    CHECK(existed);
    const char *clear[1] = {"color"};
    vs_mutation p2 = {.op = VS_MUT_PATCH, .id = 5, .clear = clear, .n_clear = 1};
    uint64_t pseq = 0;
    CHECK(vs_engine_write_wait(e, "docs", &p2, 1, &pseq, NULL, &st) == VS_OK);
    r = search(e, "docs", 5, 0, 1, "year = 1", pseq, true);
    CHECK(r && r->n_hits == 1 && r->hits[0].id == 5 && r->hits[0].n_attrs == 1);
    vs_search_result_free(r);
    vs_get_result *g = NULL;
    uint64_t ids[3] = {5, 12345, 6};
    CHECK(vs_engine_get(e, "docs", ids, 3, true, &g, &st) == VS_OK);
    CHECK(g && g->n_found == 2 && g->n_missing == 1 && g->missing[0] == 12345);
    if (g && g->n_found == 2) {
        float want[DIM];
        vec_of(5, 0, want);
        CHECK(g->items[0].id == 5 && g->items[0].n_vectors == 1 &&
              memcmp(g->items[0].vectors[0].values, want, sizeof want) == 0);
        CHECK(g->items[0].n_attrs == 1 && g->items[0].attrs[0].int_value == 1);
        CHECK(g->items[1].id == 6 && g->items[1].n_attrs == 2);
    }
    vs_get_result_free(g);

    /* delete: present and absent */
    vs_mutation d[2] = {{.op = VS_MUT_DELETE, .id = 6}, {.op = VS_MUT_DELETE, .id = 424242}};
    bool ex[2] = {false, true};
    uint64_t dseq = 0;
    CHECK(vs_engine_write_wait(e, "docs", d, 2, &dseq, ex, &st) == VS_OK);
    CHECK(ex[0] && !ex[1]);
    r = search(e, "docs", 6, 0, 5, NULL, dseq, false);
    CHECK(r && !has_id(r, 6));
    vs_search_result_free(r);

    /* drop and re-create: the new collection is empty */
    CHECK(vs_engine_drop_collection(e, "docs", NULL, &st) == VS_OK);
    CHECK(vs_engine_drop_collection(e, "docs", NULL, &st) == VS_ERR_NOT_FOUND);
    create_docs(e, "docs");
    upsert(e, "docs", 1, 0, "red", 1);
    char **names;
    size_t n_names;
    CHECK(vs_engine_list(e, &names, &n_names, &st) == VS_OK && n_names == 1);
    vs_engine_names_free(names, n_names);
    r = search(e, "docs", 2, 0, 10, NULL, vs_engine_last_acked_seq(e), false);
    CHECK(r && r->n_hits == 1 && r->hits[0].id == 1);
    vs_search_result_free(r);
    vs_engine_close(e);

    /* reopen (no snapshot: rebuilt from items) */
    e = open_engine(dir, UINT64_MAX);
    if (e) {
        CHECK(vs_engine_describe(e, "docs", &info, &st) == VS_OK && info.count == 1);
        vs_collection_info_clear(&info);
        vs_engine_close(e);
    }
    remove_tree(dir);
}

/* The ids of the top k for a few queries, to compare engines. */
static void fingerprint(vs_engine *e, uint64_t *out, uint32_t k)
{
    for (int qi = 0; qi < 4; qi++) {
        vs_search_result *r = search(e, "docs", 1000 + (uint64_t)qi, 9, k, NULL, 0, false);
        for (uint32_t i = 0; i < k; i++)
            out[qi * k + i] = r && i < r->n_hits ? r->hits[i].id : UINT64_MAX;
        vs_search_result_free(r);
    }
}

/* Restart from snapshot + log, from items, and with corrupt snapshots. */
static void test_restart_and_corruption(void)
{
    char dir[4096];
    make_tmp(dir, sizeof dir);
    vs_engine *e = open_engine(dir, UINT64_MAX);
    if (!e)
        return;
    vs_status st;
    create_docs(e, "docs");
    for (uint64_t id = 1; id <= 300; id++)
        upsert(e, "docs", id, 0, id % 3 ? "red" : "blue", (int64_t)id);
    uint64_t s1 = 0;
    CHECK(vs_engine_snapshot(e, &s1, &st) == VS_OK);
    for (uint64_t id = 200; id <= 400; id++)
        upsert(e, "docs", id, 1, "green", (int64_t)id);
    uint64_t s2 = 0;
    CHECK(vs_engine_snapshot(e, &s2, &st) == VS_OK && s2 > s1);
    for (uint64_t id = 1; id <= 50; id++) {
        vs_mutation d = {.op = VS_MUT_DELETE, .id = id * 3};
        CHECK(vs_engine_write_wait(e, "docs", &d, 1, NULL, NULL, &st) == VS_OK);
    }
    uint64_t last = vs_engine_last_acked_seq(e);
    uint64_t want[40];
    fingerprint(e, want, 10);
    vs_engine_close(e);

    /* snapshot s2 + log */
    g_log[0] = 0;
    e = open_engine(dir, UINT64_MAX);
    if (!e)
        return;
    uint64_t got[40];
    fingerprint(e, got, 10);
    CHECK(memcmp(want, got, sizeof want) == 0);
    CHECK(vs_engine_last_acked_seq(e) == last);
    vs_collection_info info;
    CHECK(vs_engine_describe(e, "docs", &info, &st) == VS_OK && info.count == 350);
    vs_collection_info_clear(&info);
    vs_engine_close(e);
    CHECKF(strstr(g_log, "skipping") == NULL && strstr(g_log, "+ 50 log records"), "%s", g_log);

    /* bit-flip the newest snapshot: skipped with a reason, the older one + log used */
    char path[4400];
    snprintf(path, sizeof path, "%s/snapshots/snap-%020llu.vss", dir, (unsigned long long)s2);
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 5000, SEEK_SET);
        int c = fgetc(f);
        fseek(f, 5000, SEEK_SET);
        fputc(c ^ 0x10, f);
        fclose(f);
    }
    g_log[0] = 0;
    e = open_engine(dir, UINT64_MAX);
    if (!e)
        return;
    fingerprint(e, got, 10);
    CHECK(memcmp(want, got, sizeof want) == 0);
    CHECK(vs_engine_describe(e, "docs", &info, &st) == VS_OK && info.count == 350);
    vs_collection_info_clear(&info);
    vs_engine_close(e);
    CHECKF(strstr(g_log, "skipping snapshot") && strstr(g_log, "checksum mismatch"), "%s", g_log);

    /* truncate both: rebuilt from items */
    char path1[4400];
    snprintf(path1, sizeof path1, "%s/snapshots/snap-%020llu.vss", dir, (unsigned long long)s1);
    struct stat sb;
    CHECK(stat(path1, &sb) == 0 && truncate(path1, sb.st_size / 2) == 0);
    CHECK(truncate(path, 20) == 0);
    g_log[0] = 0;
    e = open_engine(dir, UINT64_MAX);
    if (!e)
        return;
    fingerprint(e, got, 10);
    CHECK(memcmp(want, got, sizeof want) == 0);
    CHECK(vs_engine_describe(e, "docs", &info, &st) == VS_OK && info.count == 350);
    vs_collection_info_clear(&info);
    vs_engine_close(e);
    CHECKF(strstr(g_log, "partial") && strstr(g_log, "rebuilt"), "%s", g_log);
    remove_tree(dir);
}

/* An unknown store format version is refused with a message. */
static void test_format_version(void)
{
    char dir[4096];
    make_tmp(dir, sizeof dir);
    vs_engine *e = open_engine(dir, UINT64_MAX);
    if (!e)
        return;
    vs_engine_close(e);
    /* rewrite meta "format" with RocksDB directly */
    char db[4200];
    snprintf(db, sizeof db, "%s/db", dir);
    rocksdb_options_t *o = rocksdb_options_create();
    const char *names[4] = {"default", "meta", "items", "log"};
    const rocksdb_options_t *cfo[4] = {o, o, o, o};
    rocksdb_column_family_handle_t *cf[4];
    char *err = NULL;
    rocksdb_t *rdb = rocksdb_open_column_families(o, db, 4, names, cfo, cf, &err);
    CHECKF(!err, "%s", err);
    if (!err) {
        rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
        char ver[4] = {0, 0, 0, 99};
        rocksdb_put_cf(rdb, wo, cf[1], "format", 6, ver, 4, &err);
        CHECK(!err);
        rocksdb_writeoptions_destroy(wo);
        for (int i = 0; i < 4; i++)
            rocksdb_column_family_handle_destroy(cf[i]);
        rocksdb_close(rdb);
    }
    rocksdb_options_destroy(o);
    vs_engine_options eo;
    vs_engine_options_init(&eo, dir);
    eo.log = test_log;
    vs_status st;
    CHECK(vs_engine_open(&eo, &e, &st) == VS_ERR_FAILED_PRECONDITION);
    CHECKF(strstr(st.msg, "format version 99"), "%s", st.msg);
    remove_tree(dir);
}

/* The lock: a second open of the same dir is refused; queue limits answer at once. */
static void test_lock_and_limits(void)
{
    char dir[4096];
    make_tmp(dir, sizeof dir);
    vs_engine_options o;
    vs_engine_options_init(&o, dir);
    o.write_queue_cap = 4;
    o.index.n_threads = 1;
    o.log = test_log;
    vs_engine *e = NULL, *e2 = NULL;
    vs_status st;
    CHECK(vs_engine_open(&o, &e, &st) == VS_OK);
    if (!e)
        return;
    CHECK(vs_engine_open(&o, &e2, &st) == VS_ERR_FAILED_PRECONDITION);
    CHECKF(strstr(st.msg, "held by another process"), "%s", st.msg);
    create_docs(e, "docs");
    vs_mutation d[5];
    for (int i = 0; i < 5; i++)
        d[i] = (vs_mutation){.op = VS_MUT_DELETE, .id = (uint64_t)i};
    CHECK(vs_engine_write_wait(e, "docs", d, 5, NULL, NULL, &st) == VS_ERR_RESOURCE_EXHAUSTED);
    CHECK(vs_engine_write_wait(e, "docs", d, 4, NULL, NULL, &st) == VS_OK);
    vs_engine_close(e);
    remove_tree(dir);
}

/* Progress of the import test. */
static void progress(void *ctx, uint64_t done, uint64_t total)
{
    uint64_t *last = ctx;
    CHECK(done > *last && done <= total);
    *last = done;
}

/* Bulk import from an fvecs file and a TSV, then open from the snapshot it wrote. */
static void test_import(void)
{
    char dir[4096];
    make_tmp(dir, sizeof dir);
    enum { ROWS = 5000 };
    float *data = malloc(ROWS * DIM * sizeof(float));
    for (uint64_t i = 0; i < ROWS; i++)
        vec_of(i, 0, data + i * DIM);
    char fv[4200], tsv[4200], dd[4200];
    snprintf(fv, sizeof fv, "%s/base.fvecs", dir);
    snprintf(tsv, sizeof tsv, "%s/attrs.tsv", dir);
    snprintf(dd, sizeof dd, "%s/data", dir);
    vs_status st;
    CHECK(vs_write_fvecs(fv, data, ROWS, DIM, &st) == VS_OK);
    FILE *f = fopen(tsv, "w");
    fprintf(f, "id\tcolor\tyear\n");
    for (uint64_t i = 0; i < ROWS; i++)
        fprintf(f, "%llu\t%s\t%s\n", (unsigned long long)(i + 100),
                i % 2 ? "red,big" : "blue", i % 5 ? "" : "2024");
    fclose(f);
    vs_field_spec fs = {.name = "emb", .dim = DIM, .metric = VS_METRIC_COSINE,
                        .storage = VS_STORAGE_I8, .rerank = true};
    vs_attr_schema *as = vs_attr_schema_create();
    vs_attr_schema_add(as, "color", VS_ATTR_TAG, &st);
    vs_attr_schema_add(as, "year", VS_ATTR_INT, &st);
    const char *files[1] = {fv};
    uint64_t last_progress = 0;
    vs_import_options io = {.data_dir = dd, .collection = "docs", .fields = &fs, .n_fields = 1,
                            .attrs = as, .vector_files = files, .attrs_tsv = tsv,
                            .chunk_rows = 1000, .progress = progress,
                            .progress_ctx = &last_progress, .log = test_log};
    vs_import_stats is;
    vs_err rc = vs_engine_import(&io, &is, &st);
    CHECKF(rc == VS_OK, "import: %s", st.msg);
    CHECK(is.rows == ROWS && last_progress == ROWS);
    g_log[0] = 0;
    vs_engine *e = open_engine(dd, UINT64_MAX);
    if (e) {
        /* a running engine holds the dir: import is refused */
        CHECK(vs_engine_import(&io, NULL, &st) == VS_ERR_FAILED_PRECONDITION);
        vs_collection_info info;
        CHECK(vs_engine_describe(e, "docs", &info, &st) == VS_OK && info.count == ROWS);
        vs_collection_info_clear(&info);
        vs_search_result *r = search(e, "docs", 42, 0, 5, "color = 'red' AND year = 2024", 0,
                                     true);
        /* row i has id i + 100; rows with i odd and i % 5 == 0 pass */
        CHECK(r && r->n_hits == 5);
        for (uint32_t i = 0; r && i < r->n_hits; i++) {
            uint64_t row = r->hits[i].id - 100;
            CHECK(row % 2 == 1 && row % 5 == 0 && r->hits[i].n_attrs == 2);
        }
        vs_search_result_free(r);
        r = search(e, "docs", 42, 0, 1, NULL, 0, false);
        CHECK(r && r->n_hits == 1 && r->hits[0].id == 142);
        vs_search_result_free(r);
        vs_engine_close(e);
        CHECKF(strstr(g_log, "rebuilt") == NULL, "opened without the snapshot: %s", g_log);
    }
    vs_attr_schema_destroy(as);
    free(data);
    remove_tree(dir);
}

/* Runs every test. */
int main(void)
{
    test_basics();
    test_restart_and_corruption();
    test_format_version();
    test_lock_and_limits();
    test_import();
    return vs_test_finish("test_engine");
}
