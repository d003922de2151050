/*
 * filter_bench.c: vecscan's side of bench/filter-vs-faiss.sh: what a filter costs a search.
 *
 * Loads a base set and a query set (.fbin: int32 rows, int32 dim, then rows x dim float32; the
 * script writes both once and FAISS's side reads the very same files) into a one-field
 * inner-product index, gives every item tags of a tag field `t` whose values are seeded hashes of
 * the row (so the items of one value are scattered over all the slots, never an id range; see
 * "Attributes and filters" below), and measures filters `t = '<value>'` that pass a fraction p of
 * the items: one posting each, as a category or locale filter would be.
 *
 * For each p it times three shapes, each against the unfiltered search of the same batch size:
 *
 *   b1         single queries, each with its own random filter of pass p
 *   shared256  batches of 256 queries sharing one filter (the one FAISS's side also gets)
 *   own256     batches of 256 queries where every query has its own random filter (LiNR's case)
 *
 * The filtered time of a search includes parsing and evaluating its filters (vs_filter_parse,
 * vs_filter_eval against the attribute store and the index's live bitmap): what a server pays per
 * request. Filtered and unfiltered searches alternate, rep by rep, on the same query vectors, so
 * a burst of other work on the machine slows both sides of a ratio alike; a ratio is the median
 * filtered time over the median unfiltered time of its own loop.
 *
 * Output: one JSON line per cell to --out, for the script's report:
 *
 *   {"engine":"vecscan","storage":"i8","kind":"cell","pass":0.1,"shape":"shared256",
 *    "reps":..,"p50_ms":..,"base_p50_ms":..,"mean_ms":..,"base_mean_ms":..,"eval_p50_ms":..,
 *    "ratio":..,"qps":..,"count":..,"lists":..}
 *
 * (count: mean passing items per filter; lists: the fraction of filters that came out as a LIST.)
 * Into --ids-dir it writes, per p, the ids the shared filter passes (shared_p<p>.ids, int64) for
 * FAISS's selector, and per storage the k = 10 ids of the first 256 queries under it
 * (vecscan_<storage>_p<p>.ids, int64, -1 where fewer came back) to compare with FAISS's. Every
 * filtered answer is checked on the way: each hit passes its filter, and counts = min(k, passing).
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "index.h"
#include "vs_filter.h"

#define K 10
#define BATCH 256
#define MAX_PASSES 8
#define POOL 256 /* random filters per pass fraction: a batch's own filters, or batch-1 filters */
#define UPSERT_BATCH 4096

/* ===== Small helpers ===== */

/* The median of v[0 .. n) (sorts v). */
static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n ? (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2])) : 0.0;
}

/* ===== Attributes and filters ===== */

/* Tag values. Pass fraction p (level l of the run's passes) has B = round(1 / p) buckets, and F
 * independent families of them: every item holds, per level and family, the tag "l<l>f<f>v<v>"
 * with v its bucket in that family, a seeded hash of the row, so one value's items are scattered
 * over the whole slot range. A filter `t = 'l<l>f<f>v<v>'` passes about p of the items (one
 * posting, as a category or locale filter would), and the families give batches of per-query
 * filters F x B different sets to draw from. */
#define MAX_FAMILIES 8

typedef struct level {
    double pass;
    uint32_t buckets, families;
} level;

static level make_level(double pass)
{
    level l = {.pass = pass, .buckets = (uint32_t)llround(1.0 / pass)};
    if (l.buckets < 1)
        l.buckets = 1;
    l.families = (BATCH + l.buckets - 1) / l.buckets;
    l.families = l.families < 1 ? 1 : l.families > MAX_FAMILIES ? MAX_FAMILIES : l.families;
    return l;
}

/* The bucket of row r in family f of level li. */
static uint32_t bucket_of(uint64_t seed, uint32_t li, uint32_t f, uint64_t r, uint32_t buckets)
{
    uint64_t s = seed ^ ((uint64_t)(li * MAX_FAMILIES + f + 1) << 40) ^ (r * 0xd1342543de82ef95ull);
    return (uint32_t)(splitmix64(&s) % buckets);
}

/* A filter: one tag of one level. */
typedef struct filt {
    char text[48];
    uint32_t li, family, value, buckets;
} filt;

/* A random filter of level li (family 0 when shared). */
static filt make_filter(uint64_t *rng, uint32_t li, const level *l, bool shared)
{
    filt f = {.li = li, .buckets = l->buckets};
    f.family = shared ? 0 : (uint32_t)(splitmix64(rng) % l->families);
    f.value = (uint32_t)(splitmix64(rng) % l->buckets);
    snprintf(f.text, sizeof f.text, "t = 'l%uf%uv%u'", li, f.family, f.value);
    return f;
}

/* Everything a search needs from one parsed-and-evaluated filter. */
typedef struct evaluated {
    vs_filter *f;
    vs_filter_result *r;
} evaluated;

typedef struct bench {
    vs_index *ix;
    vs_attr_store *store;
    vs_filter_eval_options eopt;
    uint32_t rows, dim, nq, n_levels;
    level levels[MAX_PASSES];
    uint64_t seed;
    const float *q;
    vs_term *terms;     /* one per query vector */
    vs_query *queries;  /* BATCH */
    vs_hit *hits;       /* BATCH x K */
    uint32_t counts[BATCH];
} bench;

/* Parses and evaluates text into e (whose result buffers are reused); the slot set is e's. */
static const vs_slotset *eval_filter(bench *b, evaluated *e, const char *text)
{
    vs_status st;
    vs_filter_destroy(e->f);
    e->f = NULL;
    if (vs_filter_parse(vs_attr_store_schema(b->store), text, strlen(text), NULL, &e->f, &st) != VS_OK)
        die("vs_filter_parse: %s", st.msg);
    if (vs_filter_eval(e->f, b->store, vs_index_live_words(b->ix), vs_index_slot_limit(b->ix), &b->eopt,
                       e->r, &st) != VS_OK)
        die("vs_filter_eval: %s", st.msg);
    return vs_filter_result_slotset(e->r);
}

/* ===== Searching ===== */

/* Points batch entry i at query vector qv with allowed set a. */
static void set_query(bench *b, uint32_t i, uint32_t qv, const vs_slotset *a)
{
    b->terms[i] = (vs_term){.field = 0, .n_vectors = 1, .vectors = b->q + (size_t)(qv % b->nq) * b->dim,
                            .weight = 1.0f};
    b->queries[i] = (vs_query){.terms = &b->terms[i], .n_terms = 1, .combine = VS_COMBINE_SUM, .allowed = a};
}

static void search(bench *b, uint32_t n)
{
    vs_search_params p = {.k = K, .rerank_factor = 1};
    vs_status st;
    if (vs_index_search(b->ix, b->queries, n, &p, b->hits, b->counts, &st) != VS_OK)
        die("vs_index_search (batch %u): %s", n, st.msg);
}

/* Checks that query i's hits all pass filt and that it got min(K, passing) of them. */
static void check_hits(const bench *b, uint32_t i, const filt *f, uint64_t passing)
{
    uint64_t want = passing < K ? passing : K;
    if (b->counts[i] != want)
        die("query %u under '%.60s': %u hits, want min(k, %llu passing) = %llu", i, f->text, b->counts[i],
            (unsigned long long)passing, (unsigned long long)want);
    for (uint32_t j = 0; j < b->counts[i]; j++) {
        uint64_t id = b->hits[(size_t)i * K + j].id;
        if (bucket_of(b->seed, f->li, f->family, id, f->buckets) != f->value)
            die("query %u under '%.60s': hit id %llu does not pass", i, f->text, (unsigned long long)id);
    }
}

/* ===== Cells ===== */

typedef struct cell {
    double p50_ms, base_p50_ms, mean_ms, base_mean_ms, eval_p50_ms, count, lists;
    uint32_t reps;
} cell;

typedef enum shape { SHAPE_B1 = 0, SHAPE_SHARED, SHAPE_OWN } shape;
static const char *shape_name[] = {"b1", "shared256", "own256"};

typedef struct timing_opts {
    double min_time;
    uint32_t min_reps, single;
} timing_opts;

/* Times one shape at one pass fraction, alternating an unfiltered and a filtered search of the same
 * query vectors: single queries (single of them) or batches of BATCH (until min_time and min_reps).
 * shared is the shared filter, pool the random ones. */
static cell time_cell(bench *b, shape sh, const filt *shared, const filt *pool, evaluated *ev,
                      const timing_opts *o)
{
    uint32_t n = sh == SHAPE_B1 ? 1 : BATCH;
    uint32_t max_reps = sh == SHAPE_B1 ? o->single : 100000;
    double *ft = xmalloc(max_reps * sizeof(double)), *bt = xmalloc(max_reps * sizeof(double));
    double *et = xmalloc(max_reps * sizeof(double));
    double total = 0, ftotal = 0, btotal = 0, count = 0, lists = 0, evals = 0;
    uint32_t reps = 0, pool_at = 0, warm = sh == SHAPE_B1 ? 3 : 1;
    for (uint32_t it = 0;; it++) {
        bool timed = it >= warm;
        if (timed && (sh == SHAPE_B1 ? reps >= o->single : reps >= o->min_reps && total >= o->min_time))
            break;
        if (reps == max_reps)
            break;
        uint32_t first = (it * n) % b->nq;
        /* unfiltered */
        for (uint32_t i = 0; i < n; i++)
            set_query(b, i, first + i, NULL);
        double t0 = now_s();
        search(b, n);
        double t1 = now_s();
        /* filtered: filters parsed and evaluated inside the timed span */
        const filt *used[BATCH];
        double t2 = now_s();
        for (uint32_t i = 0; i < n; i++) {
            const vs_slotset *a;
            if (sh == SHAPE_SHARED) {
                a = i == 0 ? eval_filter(b, &ev[0], shared->text) : b->queries[0].allowed;
                used[i] = shared;
            } else {
                used[i] = &pool[pool_at % POOL];
                a = eval_filter(b, &ev[i], used[i]->text);
                pool_at++;
            }
            set_query(b, i, first + i, a);
        }
        double t3 = now_s();
        search(b, n);
        double t4 = now_s();
        for (uint32_t i = 0; i < n; i++) {
            const vs_slotset *a = b->queries[i].allowed;
            check_hits(b, i, used[i], a->count);
            if (sh != SHAPE_SHARED || i == 0) {
                count += (double)a->count;
                lists += a->kind == VS_SLOTSET_LIST;
                evals++;
            }
        }
        if (!timed)
            continue;
        bt[reps] = 1e3 * (t1 - t0);
        ft[reps] = 1e3 * (t4 - t2);
        et[reps] = 1e3 * (t3 - t2);
        btotal += t1 - t0;
        ftotal += t4 - t2;
        total += (t1 - t0) + (t4 - t2);
        reps++;
    }
    cell c = {.reps = reps, .mean_ms = 1e3 * ftotal / reps, .base_mean_ms = 1e3 * btotal / reps,
              .count = count / evals, .lists = lists / evals};
    c.p50_ms = median(ft, reps);
    c.base_p50_ms = median(bt, reps);
    c.eval_p50_ms = median(et, reps);
    free(ft);
    free(bt);
    free(et);
    return c;
}

/* Writes ids (int64) to dir/name. */
static void write_ids(const char *dir, const char *name, const int64_t *ids, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(ids, sizeof *ids, n, f) != n || fclose(f) != 0)
        die("cannot write '%s'", path);
}

/* The shared filter's passing ids, for FAISS's selector. */
static void write_shared_ids(bench *b, evaluated *ev, const filt *shared, double pass, const char *dir)
{
    vs_filter_eval_options o = b->eopt;
    o.output = VS_FILTER_OUT_LIST;
    vs_filter_eval_options keep = b->eopt;
    b->eopt = o;
    const vs_slotset *a = eval_filter(b, ev, shared->text);
    b->eopt = keep;
    int64_t *ids = xmalloc((a->count ? a->count : 1) * sizeof *ids);
    for (uint64_t i = 0; i < a->count; i++) {
        uint64_t id;
        if (!vs_index_slot_id(b->ix, a->slots[i], &id))
            die("slot %u passed a filter but holds no item", a->slots[i]);
        ids[i] = (int64_t)id;
    }
    char name[64];
    snprintf(name, sizeof name, "shared_p%g.ids", pass);
    write_ids(dir, name, ids, a->count);
    free(ids);
}

/* The k = K ids of the first BATCH queries under the shared filter, to compare with FAISS's. */
static void write_answer_ids(bench *b, evaluated *ev, const filt *shared, double pass, const char *storage,
                             const char *dir)
{
    const vs_slotset *a = eval_filter(b, ev, shared->text);
    for (uint32_t i = 0; i < BATCH; i++)
        set_query(b, i, i, a);
    search(b, BATCH);
    int64_t *ids = xmalloc((size_t)BATCH * K * sizeof *ids);
    for (uint32_t i = 0; i < BATCH; i++) {
        check_hits(b, i, shared, a->count);
        for (uint32_t j = 0; j < K; j++)
            ids[(size_t)i * K + j] = j < b->counts[i] ? (int64_t)b->hits[(size_t)i * K + j].id : -1;
    }
    char name[96];
    snprintf(name, sizeof name, "vecscan_%s_p%g.ids", storage, pass);
    write_ids(dir, name, ids, (size_t)BATCH * K);
    free(ids);
}

/* ===== Setup ===== */

static vs_index *make_index(vs_storage storage, uint32_t dim, uint32_t threads)
{
    vs_field_spec f;
    memset(&f, 0, sizeof f);
    snprintf(f.name, sizeof f.name, "v");
    f.dim = dim;
    f.metric = VS_METRIC_IP;
    f.storage = storage;
    vs_index_options opt;
    memset(&opt, 0, sizeof opt);
    opt.n_threads = threads;
    vs_index *ix = NULL;
    vs_status st;
    if (vs_index_create(&f, 1, &opt, &ix, &st) != VS_OK)
        die("vs_index_create(%s): %s", vs_storage_name(storage), st.msg);
    return ix;
}

/* Upserts rows [0, n) of x with id = row. */
static void load_rows(vs_index *ix, const float *x, uint32_t dim, uint32_t n)
{
    static vs_item_vectors items[UPSERT_BATCH];
    vs_status st;
    for (uint32_t lo = 0; lo < n; lo += UPSERT_BATCH) {
        uint32_t m = n - lo < UPSERT_BATCH ? n - lo : UPSERT_BATCH;
        for (uint32_t i = 0; i < m; i++) {
            memset(&items[i], 0, sizeof items[i]);
            items[i].id = lo + i;
            items[i].vectors[0] = x + (size_t)(lo + i) * dim;
        }
        if (vs_index_upsert(ix, items, m, NULL, &st) != VS_OK)
            die("vs_index_upsert: %s", st.msg);
    }
}

/* The attribute store: field `t`, every level's and family's tag per slot (slot = row = id: the
 * index was filled in order into an empty index). */
static vs_attr_store *make_store(const bench *b)
{
    vs_status st;
    vs_attr_schema *schema = vs_attr_schema_create();
    vs_attr_store *s = NULL;
    if (!schema || vs_attr_schema_add(schema, "t", VS_ATTR_TAG, &st) != VS_OK ||
        vs_attr_store_create(schema, NULL, &s, &st) != VS_OK)
        die("attribute store: %s", schema ? st.msg : "out of memory");
    vs_attr_schema_destroy(schema);
    char text[MAX_PASSES * MAX_FAMILIES][32];
    vs_attr_str tags[MAX_PASSES * MAX_FAMILIES];
    for (uint32_t r = 0; r < b->rows; r++) {
        uint32_t slot, n = 0;
        if (!vs_index_lookup(b->ix, r, &slot))
            die("id %u missing after the load", r);
        for (uint32_t li = 0; li < b->n_levels; li++)
            for (uint32_t f = 0; f < b->levels[li].families; f++, n++) {
                int len = snprintf(text[n], sizeof text[n], "l%uf%uv%u", li, f,
                                   bucket_of(b->seed, li, f, r, b->levels[li].buckets));
                tags[n] = (vs_attr_str){text[n], (size_t)len};
            }
        if (vs_attr_store_set_tags(s, 0, slot, tags, n, &st) != VS_OK)
            die("vs_attr_store_set_tags: %s", st.msg);
    }
    return s;
}

static void emit_cell(FILE *out, const char *storage, double pass, shape sh, const cell *c)
{
    double ratio = c->p50_ms / c->base_p50_ms;
    double qps = (sh == SHAPE_B1 ? 1.0 : BATCH) / (c->mean_ms / 1e3);
    fprintf(out,
            "{\"engine\":\"vecscan\",\"storage\":\"%s\",\"kind\":\"cell\",\"pass\":%g,\"shape\":\"%s\","
            "\"reps\":%u,\"p50_ms\":%.4f,\"base_p50_ms\":%.4f,\"mean_ms\":%.4f,\"base_mean_ms\":%.4f,"
            "\"eval_p50_ms\":%.4f,\"ratio\":%.4f,\"qps\":%.3f,\"count\":%.1f,\"lists\":%.3f}\n",
            storage, pass, shape_name[sh], c->reps, c->p50_ms, c->base_p50_ms, c->mean_ms, c->base_mean_ms,
            c->eval_p50_ms, ratio, qps, c->count, c->lists);
    fflush(out);
    fprintf(stderr,
            "  %-4s pass %-6g %-9s ratio %.3f  (filtered p50 %.3f ms incl. eval %.3f ms; unfiltered "
            "%.3f ms; %u reps, %.0f pass, %.0f%% lists)\n",
            storage, pass, shape_name[sh], ratio, c->p50_ms, c->eval_p50_ms, c->base_p50_ms, c->reps, c->count,
            100 * c->lists);
}

/* ===== main ===== */

static int usage(void)
{
    fprintf(stderr,
            "usage: filter_bench --data BASE.fbin --queries Q.fbin --out CELLS.jsonl --ids-dir DIR [options]\n"
            "  --storages LIST    storages timed in every shape (default i8)\n"
            "  --compare LIST     storages timed only in shared256, for the FAISS row (default f32;\n"
            "                     'none' for none)\n"
            "  --passes LIST      pass fractions (default 0.001,0.01,0.1,0.5)\n"
            "  --shapes LIST      b1,shared256,own256 (default all three)\n"
            "  --threads T        vs_index_options.n_threads (default 2)\n"
            "  --single N         batch-1 queries timed per cell (default 200)\n"
            "  --min-time S       seconds a batch cell runs at least, both sides together (default 1)\n"
            "  --min-reps R       and batches it times at least (default 3)\n"
            "  --list-divisor D   vs_filter_eval_options.list_divisor (default 0: the library's)\n"
            "  --output KIND      auto, list or bitmap: force the filter's output kind (default auto)\n"
            "  --seed S           seed of the buckets and the filters (default 11)\n");
    return 2;
}

/* Whether name is in the comma-separated list. */
static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

/* Runs every cell of one storage: every shape when full, else only shared256. The first storage
 * also writes the shared filters' ids for FAISS. */
static void run_storage(bench *b, vs_storage storage, bool full, const double *passes, int n_passes,
                        const char *shapes, const float *x, uint32_t threads, const timing_opts *o,
                        const char *ids_dir, FILE *out, bool write_shared)
{
    const char *sname = vs_storage_name(storage);
    double t0 = now_s();
    b->ix = make_index(storage, b->dim, threads);
    load_rows(b->ix, x, b->dim, b->rows);
    double t1 = now_s();
    b->store = make_store(b);
    fprintf(stderr, "filter_bench: %s: loaded in %.1f s, attributes in %.1f s\n", sname, t1 - t0,
            now_s() - t1);
    evaluated *ev = xmalloc(BATCH * sizeof *ev);
    for (uint32_t i = 0; i < BATCH; i++) {
        ev[i].f = NULL;
        ev[i].r = vs_filter_result_create();
        if (!ev[i].r)
            die("out of memory");
    }
    for (int pi = 0; pi < n_passes; pi++) {
        /* the same seed per pass fraction in every storage: the same filters */
        uint64_t rng = b->seed * 1000003u + (uint64_t)pi;
        filt shared = make_filter(&rng, (uint32_t)pi, &b->levels[pi], true);
        filt *pool = xmalloc(POOL * sizeof *pool);
        for (uint32_t i = 0; i < POOL; i++)
            pool[i] = make_filter(&rng, (uint32_t)pi, &b->levels[pi], false);
        if (write_shared)
            write_shared_ids(b, &ev[0], &shared, passes[pi], ids_dir);
        write_answer_ids(b, &ev[0], &shared, passes[pi], sname, ids_dir);
        for (int sh = 0; sh < 3; sh++) {
            if (!in_list(shapes, shape_name[sh]) || (!full && sh != SHAPE_SHARED))
                continue;
            cell c = time_cell(b, (shape)sh, &shared, pool, ev, o);
            emit_cell(out, sname, passes[pi], (shape)sh, &c);
        }
        free(pool);
    }
    for (uint32_t i = 0; i < BATCH; i++) {
        vs_filter_destroy(ev[i].f);
        vs_filter_result_destroy(ev[i].r);
    }
    free(ev);
    vs_attr_store_destroy(b->store);
    vs_index_destroy(b->ix);
    b->store = NULL;
    b->ix = NULL;
}

int main(int argc, char **argv)
{
    const char *data = NULL, *queries = NULL, *out_path = NULL, *ids_dir = NULL;
    const char *storages = "i8", *compare = "f32", *passes_s = "0.001,0.01,0.1,0.5";
    const char *shapes = "b1,shared256,own256", *output = "auto";
    uint32_t threads = 2;
    timing_opts o = {.min_time = 1.0, .min_reps = 3, .single = 200};
    bench b;
    memset(&b, 0, sizeof b);
    b.seed = 11;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (strcmp(a, "--data") == 0)
            data = v;
        else if (strcmp(a, "--queries") == 0)
            queries = v;
        else if (strcmp(a, "--out") == 0)
            out_path = v;
        else if (strcmp(a, "--ids-dir") == 0)
            ids_dir = v;
        else if (strcmp(a, "--storages") == 0)
            storages = v;
        else if (strcmp(a, "--compare") == 0)
            compare = v;
        else if (strcmp(a, "--passes") == 0)
            passes_s = v;
        else if (strcmp(a, "--shapes") == 0)
            shapes = v;
        else if (strcmp(a, "--threads") == 0)
            threads = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--single") == 0)
            o.single = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--min-time") == 0)
            o.min_time = strtod(v, NULL);
        else if (strcmp(a, "--min-reps") == 0)
            o.min_reps = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--list-divisor") == 0)
            b.eopt.list_divisor = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--output") == 0)
            output = v;
        else if (strcmp(a, "--seed") == 0)
            b.seed = strtoull(v, NULL, 10);
        else
            return usage();
    }
    if (!data || !queries || !out_path || !ids_dir || threads == 0 || o.single == 0 || o.min_reps == 0 ||
        !(o.min_time >= 0))
        return usage();
    if (strcmp(output, "list") == 0)
        b.eopt.output = VS_FILTER_OUT_LIST;
    else if (strcmp(output, "bitmap") == 0)
        b.eopt.output = VS_FILTER_OUT_BITMAP;
    else if (strcmp(output, "auto") != 0)
        return usage();

    double passes[MAX_PASSES];
    int n_passes = 0;
    for (const char *p = passes_s; *p;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v > 0 && v <= 1) || n_passes == MAX_PASSES)
            die("bad --passes '%s' (fractions in (0, 1], at most %d)", passes_s, MAX_PASSES);
        passes[n_passes++] = v;
        p = *end == ',' ? end + 1 : end;
    }

    float *x = read_fbin(data, &b.rows, &b.dim);
    uint32_t qdim;
    float *q = read_fbin(queries, &b.nq, &qdim);
    if (qdim != b.dim)
        die("queries have dim %u, the base %u", qdim, b.dim);
    if (b.nq < BATCH)
        die("%u queries: a batch needs %u", b.nq, BATCH);
    b.q = q;
    b.n_levels = (uint32_t)n_passes;
    for (int i = 0; i < n_passes; i++)
        b.levels[i] = make_level(passes[i]);
    b.terms = xmalloc(BATCH * sizeof *b.terms);
    b.queries = xmalloc(BATCH * sizeof *b.queries);
    b.hits = xmalloc((size_t)BATCH * K * sizeof *b.hits);
    FILE *out = fopen(out_path, "a");
    if (!out)
        die("cannot write '%s'", out_path);
    fprintf(stderr, "filter_bench: %u x %u base, %u queries, %u threads\n", b.rows, b.dim, b.nq, threads);
    bool first = true;
    for (int pass_no = 0; pass_no < 2; pass_no++) {
        const char *list = pass_no == 0 ? storages : compare;
        if (strcmp(list, "none") == 0)
            continue;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", list);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            vs_storage sto;
            if (!vs_storage_parse(tok, &sto) || sto == VS_STORAGE_B1)
                die("storage '%s': f32, f16 or i8", tok);
            run_storage(&b, sto, pass_no == 0, passes, n_passes, shapes, x, threads, &o, ids_dir, out, first);
            first = false;
        }
    }
    free(b.terms);
    free(b.queries);
    free(b.hits);
    fclose(out);
    free(x);
    free(q);
    return 0;
}
