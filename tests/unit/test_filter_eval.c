/*
 * test_filter_eval.c: evaluation against a naive per-item evaluation, MNIST filters, and timings.
 *
 * The property test keeps its own plain model of every item (tag sets as bitmasks of a small
 * vocabulary, ints with a presence flag), generates thousands of random expressions as trees,
 * renders them as text (random keyword case, spacing, redundant parentheses), and compares the
 * evaluator's slot set with a direct evaluation of the tree on each live item. Every expression is
 * evaluated five ways (AUTO, and dense and sparse paths forced, each as LIST and as BITMAP), on
 * dense and on sparse data, between rounds of random upserts, patches, deletes and inserts that
 * reuse deleted slots.
 *
 * With VECSCAN_DATA_DIR set, every filter of mnist/filtered-queries.tsv is evaluated against
 * mnist/base-attrs.tsv and its count compared with a naive count; without it that part prints SKIP.
 * The timings at the end print, they assert nothing.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "vs_filter.h"

#if defined(__SANITIZE_ADDRESS__)
#define VS_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VS_TEST_SANITIZED 1
#endif
#endif

/* ===== The model ===== */

#define N_VOCAB 10
static const char *vocab[N_VOCAB] = {"red", "green", "blue", "", "it's", "a\\b", "7", "-3", "x y", "Z"};

enum { F_COLOR = 0, F_PRICE = 1, F_KIND = 2, F_TS = 3 }; /* schema order */
static const char *field_name[4] = {"color", "price", "kind", "ts"};

typedef struct item {
    unsigned tags[2]; /* [0] color, [1] kind: bitmask of vocab; 0 = lacks the field */
    bool has[2];      /* [0] price, [1] ts */
    int64_t v[2];
} item;

typedef struct world {
    uint32_t n;        /* slots the model tracks */
    uint32_t used;     /* slots writes may pick from */
    item *it;
    uint64_t *live;    /* over n + 70000 slots, so n_bits can run past the store */
    uint32_t *free;    /* deleted slots, reused first */
    uint32_t n_free;
    vs_attr_store *s;
    double p_color, p_kind, p_price, p_ts; /* presence probabilities */
    vs_rng r;
} world;

/* Whether slot is live. */
static bool is_live(const world *w, uint32_t slot) { return (w->live[slot >> 6] >> (slot & 63)) & 1; }

/* Sets or clears the live bit of slot. */
static void set_live(world *w, uint32_t slot, bool on)
{
    if (on)
        w->live[slot >> 6] |= 1ull << (slot & 63);
    else
        w->live[slot >> 6] &= ~(1ull << (slot & 63));
}

/* A random value for int field t (0 price: narrow with ties; 1 ts: wide, with extremes). */
static int64_t rand_value(vs_rng *r, int t)
{
    if (t == 0)
        return (int64_t)vs_rng_below(r, 41) - 20;
    switch (vs_rng_below(r, 16)) {
    case 0: return INT64_MIN;
    case 1: return INT64_MAX;
    case 2: return 0;
    case 3: return (int64_t)vs_rng_below(r, 5) * 1000; /* repeated values */
    default: return (int64_t)vs_rng_below(r, 2000001) - 1000000;
    }
}

/* Writes slot's tag field t (0 color, 1 kind) to the store and the model. */
static void put_tags(world *w, uint32_t slot, int t, unsigned mask)
{
    vs_attr_str vals[N_VOCAB];
    size_t n = 0;
    for (int i = 0; i < N_VOCAB; i++)
        if (mask >> i & 1)
            vals[n++] = (vs_attr_str){vocab[i], strlen(vocab[i])};
    vs_status st = {0};
    vs_err e = n ? vs_attr_store_set_tags(w->s, t ? F_KIND : F_COLOR, slot, vals, n, &st)
                 : vs_attr_store_clear(w->s, t ? F_KIND : F_COLOR, slot, &st);
    CHECKF(e == VS_OK, "%s", st.msg);
    w->it[slot].tags[t] = mask;
}

/* Writes slot's int field t (0 price, 1 ts) to the store and the model; has = false clears it. */
static void put_int(world *w, uint32_t slot, int t, bool has, int64_t v)
{
    vs_status st = {0};
    vs_err e = has ? vs_attr_store_set_int(w->s, t ? F_TS : F_PRICE, slot, v, &st)
                   : vs_attr_store_clear(w->s, t ? F_TS : F_PRICE, slot, &st);
    CHECKF(e == VS_OK, "%s", st.msg);
    w->it[slot].has[t] = has;
    w->it[slot].v[t] = has ? v : 0;
}

/* A random color set (1-3 values) or kind (mostly one value). */
static unsigned rand_mask(vs_rng *r, int t)
{
    unsigned m = 1u << vs_rng_below(r, N_VOCAB);
    int extra = t == 0 ? (int)vs_rng_below(r, 3) : vs_rng_below(r, 8) == 0;
    for (int i = 0; i < extra; i++)
        m |= 1u << vs_rng_below(r, N_VOCAB);
    return m;
}

/* Gives slot a whole new random item (an upsert: clear, then set what it has). */
static void upsert(world *w, uint32_t slot)
{
    vs_attr_store_clear_slot(w->s, slot);
    memset(&w->it[slot], 0, sizeof w->it[slot]);
    vs_rng *r = &w->r;
    if (vs_rng_uniform(r) < w->p_color)
        put_tags(w, slot, 0, rand_mask(r, 0));
    if (vs_rng_uniform(r) < w->p_kind)
        put_tags(w, slot, 1, rand_mask(r, 1));
    if (vs_rng_uniform(r) < w->p_price)
        put_int(w, slot, 0, true, rand_value(r, 0));
    if (vs_rng_uniform(r) < w->p_ts)
        put_int(w, slot, 1, true, rand_value(r, 1));
}

/* Changes one random field of slot (a patch), sometimes removing it. */
static void patch(world *w, uint32_t slot)
{
    vs_rng *r = &w->r;
    int f = (int)vs_rng_below(r, 4);
    bool drop = vs_rng_below(r, 4) == 0;
    if (f == 0 || f == 1)
        put_tags(w, slot, f, drop ? 0 : rand_mask(r, f));
    else
        put_int(w, slot, f - 2, !drop, rand_value(r, f - 2));
}

/* One round of random writes: deletes, inserts (reusing deleted slots first), upserts, patches. */
static void mutate(world *w, uint32_t ops)
{
    vs_rng *r = &w->r;
    for (uint32_t k = 0; k < ops; k++) {
        uint32_t slot = w->used ? (uint32_t)vs_rng_below(r, w->used) : 0;
        switch (vs_rng_below(r, 5)) {
        case 0: /* delete */
            if (w->used && is_live(w, slot)) {
                vs_attr_store_clear_slot(w->s, slot);
                memset(&w->it[slot], 0, sizeof w->it[slot]);
                set_live(w, slot, false);
                w->free[w->n_free++] = slot;
            }
            break;
        case 1: /* insert: a deleted slot first, else a slot never used */
            if (w->n_free)
                slot = w->free[--w->n_free];
            else if (is_live(w, slot))
                break;
            upsert(w, slot);
            set_live(w, slot, true);
            break;
        case 2:
            if (w->used && is_live(w, slot))
                upsert(w, slot);
            break;
        default:
            if (w->used && is_live(w, slot))
                patch(w, slot);
            break;
        }
    }
}

/* ===== Random expressions ===== */

typedef enum ekind {
    E_AND, E_OR, E_NOT, E_TAG_EQ, E_TAG_NE, E_TAG_IN, E_TAG_NOTIN, E_EXISTS, E_INT_CMP, E_INT_IN,
    E_INT_NOTIN, E_BETWEEN
} ekind;

typedef struct expr {
    ekind k;
    int field; /* schema number */
    int op;    /* E_INT_CMP: 0 = 1 != 2 < 3 <= 4 > 5 >= */
    int n;     /* values */
    const char *s[5]; /* tag values as strings; NULL: the integer iv[i] (its decimal text) */
    int64_t iv[5];
    struct expr *kid[3];
    int nk;
} expr;

/* A tag literal: mostly a vocab value (numeric ones sometimes written as integers), else a value
 * no item has. */
static void rand_tag_value(vs_rng *r, expr *e, int i)
{
    uint64_t w = vs_rng_below(r, N_VOCAB + 2);
    e->s[i] = NULL;
    if (w == N_VOCAB)
        e->s[i] = "nope";
    else if (w == N_VOCAB + 1)
        e->iv[i] = 12;
    else if (w == 6 && vs_rng_below(r, 2))
        e->iv[i] = 7;
    else if (w == 7 && vs_rng_below(r, 2))
        e->iv[i] = -3;
    else
        e->s[i] = vocab[w];
}

/* An int literal for int field t that often hits stored values. */
static int64_t rand_literal(vs_rng *r, int t)
{
    if (t == 0)
        return (int64_t)vs_rng_below(r, 45) - 22;
    switch (vs_rng_below(r, 10)) {
    case 0: return INT64_MIN;
    case 1: return INT64_MAX;
    case 2: return (int64_t)vs_rng_below(r, 5) * 1000;
    default: return (int64_t)vs_rng_below(r, 2200001) - 1100000;
    }
}

/* A random expression tree of at most depth levels. */
static expr *gen(vs_rng *r, int depth)
{
    expr *e = calloc(1, sizeof *e);
    if (depth > 0 && vs_rng_below(r, 100) < 55) {
        uint64_t c = vs_rng_below(r, 10);
        e->k = c < 4 ? E_AND : c < 8 ? E_OR : E_NOT;
        e->nk = e->k == E_NOT ? 1 : 2 + (int)vs_rng_below(r, 2);
        for (int i = 0; i < e->nk; i++)
            e->kid[i] = gen(r, depth - 1);
        return e;
    }
    e->field = (int)vs_rng_below(r, 4);
    bool tag = e->field == F_COLOR || e->field == F_KIND;
    int t = e->field == F_PRICE ? 0 : 1;
    if (tag) {
        static const ekind kinds[] = {E_TAG_EQ, E_TAG_EQ, E_TAG_NE, E_TAG_IN, E_TAG_NOTIN, E_EXISTS};
        e->k = kinds[vs_rng_below(r, 6)];
        e->n = e->k == E_TAG_IN || e->k == E_TAG_NOTIN ? 1 + (int)vs_rng_below(r, 4) : 1;
        for (int i = 0; i < e->n; i++)
            rand_tag_value(r, e, i);
    } else {
        static const ekind kinds[] = {E_INT_CMP, E_INT_CMP, E_INT_CMP, E_INT_IN,
                                      E_INT_NOTIN, E_BETWEEN, E_EXISTS};
        e->k = kinds[vs_rng_below(r, 7)];
        e->op = (int)vs_rng_below(r, 6);
        e->n = e->k == E_INT_IN || e->k == E_INT_NOTIN ? 1 + (int)vs_rng_below(r, 5)
               : e->k == E_BETWEEN                   ? 2
                                                     : 1;
        for (int i = 0; i < e->n; i++)
            e->iv[i] = rand_literal(r, t);
        if (e->k == E_BETWEEN && vs_rng_below(r, 3) && e->iv[0] > e->iv[1]) {
            int64_t x = e->iv[0];
            e->iv[0] = e->iv[1];
            e->iv[1] = x;
        }
    }
    return e;
}

/* Frees a tree. */
static void free_expr(expr *e)
{
    for (int i = 0; i < e->nk; i++)
        free_expr(e->kid[i]);
    free(e);
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

/* Appends NUL-terminated s to b. */
static void put(sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = 2 * (b->len + n + 1);
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

/* Appends keyword kw in a random case. */
static void put_kw(sbuf *b, vs_rng *r, const char *kw)
{
    char w[16];
    size_t n = strlen(kw);
    int mode = (int)vs_rng_below(r, 4);
    for (size_t i = 0; i <= n; i++) {
        char c = kw[i];
        if (c && (mode == 1 || (mode == 2 && vs_rng_below(r, 2))))
            c = (char)(c - 'A' + 'a');
        w[i] = c;
    }
    put(b, w);
}

/* Appends a space, sometimes two, sometimes a tab. */
static void put_sp(sbuf *b, vs_rng *r)
{
    uint64_t c = vs_rng_below(r, 8);
    put(b, c == 0 ? "  " : c == 1 ? "\t" : " ");
}

/* Appends an integer literal (sometimes with a + sign or leading zeros). */
static void put_int_lit(sbuf *b, vs_rng *r, int64_t v)
{
    char s[32];
    uint64_t c = vs_rng_below(r, 6);
    if (c == 0 && v >= 0)
        snprintf(s, sizeof s, "+%lld", (long long)v);
    else if (c == 1 && v >= 0)
        snprintf(s, sizeof s, "00%lld", (long long)v);
    else
        snprintf(s, sizeof s, "%lld", (long long)v);
    put(b, s);
}

/* Appends value i of leaf e: a quoted, escaped string or an integer. */
static void put_value(sbuf *b, vs_rng *r, const expr *e, int i)
{
    if (e->s[i] == NULL || (e->field != F_COLOR && e->field != F_KIND)) {
        put_int_lit(b, r, e->iv[i]);
        return;
    }
    put(b, "'");
    for (const char *p = e->s[i]; *p; p++) {
        char c[3] = {*p, 0, 0};
        if (*p == '\'' || *p == '\\')
            c[0] = '\\', c[1] = *p;
        put(b, c);
    }
    put(b, "'");
}

/* Appends "(v, v, ...)". */
static void put_list(sbuf *b, vs_rng *r, const expr *e)
{
    put(b, "(");
    for (int i = 0; i < e->n; i++) {
        if (i)
            put(b, vs_rng_below(r, 2) ? ", " : ",");
        put_value(b, r, e, i);
    }
    put(b, ")");
}

static void render(sbuf *b, vs_rng *r, const expr *e);

/* Appends e, in parentheses when it is AND/OR (so the tree's shape survives) or, now and then,
 * when it is not. */
static void render_kid(sbuf *b, vs_rng *r, const expr *e)
{
    bool paren = e->k == E_AND || e->k == E_OR || vs_rng_below(r, 10) == 0;
    if (paren)
        put(b, vs_rng_below(r, 2) ? "(" : "( ");
    render(b, r, e);
    if (paren)
        put(b, vs_rng_below(r, 2) ? ")" : " )");
}

/* Appends e as filter text. */
static void render(sbuf *b, vs_rng *r, const expr *e)
{
    static const char *ops[6] = {"=", "!=", "<", "<=", ">", ">="};
    switch (e->k) {
    case E_AND:
    case E_OR:
        for (int i = 0; i < e->nk; i++) {
            if (i) {
                put_sp(b, r);
                put_kw(b, r, e->k == E_AND ? "AND" : "OR");
                put_sp(b, r);
            }
            render_kid(b, r, e->kid[i]);
        }
        return;
    case E_NOT:
        put_kw(b, r, "NOT");
        put_sp(b, r);
        render_kid(b, r, e->kid[0]);
        return;
    default: break;
    }
    put(b, field_name[e->field]);
    put_sp(b, r);
    switch (e->k) {
    case E_TAG_EQ: put(b, "= "); put_value(b, r, e, 0); break;
    case E_TAG_NE: put(b, "!="); put_value(b, r, e, 0); break;
    case E_INT_CMP: put(b, ops[e->op]); put_sp(b, r); put_value(b, r, e, 0); break;
    case E_TAG_IN:
    case E_INT_IN: put_kw(b, r, "IN"); put_sp(b, r); put_list(b, r, e); break;
    case E_TAG_NOTIN:
    case E_INT_NOTIN:
        put_kw(b, r, "NOT");
        put(b, " ");
        put_kw(b, r, "IN");
        put(b, " ");
        put_list(b, r, e);
        break;
    case E_BETWEEN:
        put_kw(b, r, "BETWEEN");
        put(b, " ");
        put_value(b, r, e, 0);
        put(b, " ");
        put_kw(b, r, "AND");
        put(b, " ");
        put_value(b, r, e, 1);
        break;
    case E_EXISTS: put_kw(b, r, "EXISTS"); break;
    default: break;
    }
}

/* Whether item it's tag field (0 color, 1 kind) holds the value of literal i of e. */
static bool has_value(const item *it, int t, const expr *e, int i)
{
    char dec[32];
    const char *s = e->s[i];
    if (!s) {
        snprintf(dec, sizeof dec, "%lld", (long long)e->iv[i]);
        s = dec;
    }
    for (int w = 0; w < N_VOCAB; w++)
        if ((it->tags[t] >> w & 1) && strcmp(vocab[w], s) == 0)
            return true;
    return false;
}

/* The plain evaluation of e on one item, straight from the language's definition. */
static bool naive(const expr *e, const item *it)
{
    int t = e->field == F_COLOR || e->field == F_PRICE ? 0 : 1;
    bool tag = e->field == F_COLOR || e->field == F_KIND;
    bool present = tag ? it->tags[t] != 0 : it->has[t];
    int64_t v = tag ? 0 : it->v[t];
    bool any = false;
    switch (e->k) {
    case E_AND:
        for (int i = 0; i < e->nk; i++)
            if (!naive(e->kid[i], it))
                return false;
        return true;
    case E_OR:
        for (int i = 0; i < e->nk; i++)
            if (naive(e->kid[i], it))
                return true;
        return false;
    case E_NOT: return !naive(e->kid[0], it);
    case E_TAG_EQ: return has_value(it, t, e, 0);
    case E_TAG_NE: return !has_value(it, t, e, 0);
    case E_TAG_IN:
    case E_TAG_NOTIN:
        for (int i = 0; i < e->n; i++)
            any |= has_value(it, t, e, i);
        return e->k == E_TAG_IN ? any : !any;
    case E_EXISTS: return present;
    case E_INT_CMP:
        switch (e->op) {
        case 0: return present && v == e->iv[0];
        case 1: return !(present && v == e->iv[0]);
        case 2: return present && v < e->iv[0];
        case 3: return present && v <= e->iv[0];
        case 4: return present && v > e->iv[0];
        default: return present && v >= e->iv[0];
        }
    case E_INT_IN:
    case E_INT_NOTIN:
        for (int i = 0; i < e->n; i++)
            any |= present && v == e->iv[i];
        return e->k == E_INT_IN ? any : !any;
    case E_BETWEEN: return present && e->iv[0] <= v && v <= e->iv[1];
    }
    return false;
}

/* ===== Comparing a result with the naive answer ===== */

/* Checks that set is well formed over [0, n_bits) and equals want[0 .. n_bits). */
static bool same_set(const vs_slotset *set, const bool *want, uint64_t n_bits, const char *text,
                     const char *how)
{
    uint64_t want_count = 0, got_count = 0;
    bool ok = true;
    for (uint64_t s = 0; s < n_bits; s++)
        want_count += want[s];
    if (set->kind == VS_SLOTSET_LIST) {
        for (uint64_t i = 0; i < set->count && ok; i++) {
            uint32_t s = set->slots[i];
            ok = s < n_bits && want[s] && (i == 0 || s > set->slots[i - 1]);
            if (!ok)
                fprintf(stderr, "  %s: listed slot %u is wrong\n", how, s);
        }
        got_count = set->count;
    } else if (set->kind == VS_SLOTSET_BITMAP) {
        ok = set->n_bits == n_bits;
        uint64_t nw = (n_bits + 63) / 64;
        for (uint64_t s = 0; s < nw * 64 && ok; s++) {
            bool bit = (set->words[s >> 6] >> (s & 63)) & 1;
            if (bit != (s < n_bits && want[s])) {
                fprintf(stderr, "  %s: bit %llu is %d\n", how, (unsigned long long)s, bit);
                ok = false;
            }
            got_count += bit;
        }
        ok = ok && got_count == set->count;
    } else {
        ok = false;
    }
    ok = ok && got_count == want_count;
    if (!ok)
        fprintf(stderr, "  '%s' %s: count %llu (says %llu), want %llu\n", text, how,
                (unsigned long long)got_count, (unsigned long long)set->count,
                (unsigned long long)want_count);
    return ok;
}

typedef struct tally {
    uint64_t exprs, lists, bitmaps, sparse, passing;
} tally;

/* Evaluates e (as text) five ways on world w for n_bits slots and compares each with naive. */
static void check_expr(world *w, const expr *e, uint64_t n_bits, vs_filter_result *res, bool *want,
                       tally *t)
{
    sbuf b = {0};
    put(&b, "");
    render(&b, &w->r, e);
    vs_filter *f = NULL;
    vs_status st = {0};
    vs_err err = vs_filter_parse(vs_attr_store_schema(w->s), b.p, b.len,
                                 &(vs_filter_limits){.max_len = 1u << 20,
                                                     .max_depth = VS_FILTER_DEPTH_CEILING},
                                 &f, &st);
    CHECKF(err == VS_OK, "'%s': %s", b.p, st.msg);
    if (err) {
        free(b.p);
        return;
    }
    uint64_t count = 0;
    for (uint64_t s = 0; s < n_bits; s++) {
        want[s] = is_live(w, (uint32_t)s) && naive(e, s < w->n ? &w->it[s] : &(item){{0}, {0}, {0}});
        count += want[s];
    }
    static const vs_filter_eval_options ways[5] = {
        {0, VS_FILTER_OUT_AUTO, VS_FILTER_PATH_AUTO},
        {0, VS_FILTER_OUT_LIST, VS_FILTER_PATH_DENSE},
        {0, VS_FILTER_OUT_BITMAP, VS_FILTER_PATH_DENSE},
        {0, VS_FILTER_OUT_LIST, VS_FILTER_PATH_SPARSE},
        {0, VS_FILTER_OUT_BITMAP, VS_FILTER_PATH_SPARSE},
    };
    static const char *names[5] = {"auto", "dense/list", "dense/bitmap", "sparse/list",
                                   "sparse/bitmap"};
    for (int k = 0; k < 5; k++) {
        err = vs_filter_eval(f, w->s, w->live, n_bits, &ways[k], res, &st);
        CHECKF(err == VS_OK, "'%s' %s: %s", b.p, names[k], st.msg);
        if (err)
            continue;
        const vs_slotset *set = vs_filter_result_slotset(res);
        vs_filter_stats fs = vs_filter_result_stats(res);
        CHECKF(same_set(set, want, n_bits, b.p, names[k]), "'%s' %s differs", b.p, names[k]);
        CHECKF(fs.estimate >= count, "'%s': estimate %llu below %llu", b.p,
               (unsigned long long)fs.estimate, (unsigned long long)count);
        if (k == 0) {
            bool list = count <= n_bits / VS_FILTER_LIST_DIVISOR;
            CHECKF((set->kind == VS_SLOTSET_LIST) == list, "'%s': auto chose the wrong kind", b.p);
            t->lists += list;
            t->bitmaps += !list;
            t->sparse += fs.path == VS_FILTER_PATH_SPARSE;
        }
    }
    /* The canonical text means the same. */
    char canon[4096];
    size_t n = vs_filter_format(f, canon, sizeof canon);
    vs_filter *g = NULL;
    if (n < sizeof canon) {
        CHECKF(vs_filter_parse(vs_attr_store_schema(w->s), canon, n,
                               &(vs_filter_limits){.max_len = 1u << 20, .max_depth = 256}, &g,
                               &st) == VS_OK,
               "canonical '%s' of '%s': %s", canon, b.p, st.msg);
        if (g && vs_filter_eval(g, w->s, w->live, n_bits, NULL, res, &st) == VS_OK)
            CHECKF(same_set(vs_filter_result_slotset(res), want, n_bits, canon, "canonical"),
                   "'%s' (from '%s') differs", canon, b.p);
    }
    uint64_t upper = 0;
    CHECK(vs_filter_estimate(f, w->s, n_bits, &upper, &st) == VS_OK && upper >= count);
    vs_filter_destroy(g);
    vs_filter_destroy(f);
    t->exprs++;
    t->passing += count;
    free(b.p);
}

/* A world of n slots, created empty with the four-field schema. */
static void world_init(world *w, uint32_t n, uint32_t bin_min, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    w->n = n;
    w->it = calloc(n, sizeof *w->it);
    w->live = calloc((n + 70000 + 63) / 64, 8);
    w->free = malloc(n * sizeof *w->free);
    vs_rng_seed(&w->r, seed);
    vs_attr_schema *sc = vs_attr_schema_create();
    for (int f = 0; f < 4; f++)
        vs_attr_schema_add(sc, field_name[f], f == F_COLOR || f == F_KIND ? VS_ATTR_TAG : VS_ATTR_INT,
                           NULL);
    vs_status st = {0};
    CHECK(vs_attr_store_create(sc, &(vs_attr_store_options){.bin_min = bin_min}, &w->s, &st) == VS_OK);
    vs_attr_schema_destroy(sc);
}

/* Frees a world. */
static void world_free(world *w)
{
    vs_attr_store_destroy(w->s);
    free(w->it);
    free(w->live);
    free(w->free);
}

/* The property test on one kind of world. */
static void property(const char *name, uint32_t n, uint32_t bin_min, double p_tag, double p_int,
                     uint32_t fill, int rounds, int exprs, uint64_t seed)
{
    world w;
    world_init(&w, n, bin_min, seed);
    w.p_color = p_tag;
    w.p_kind = p_tag / 2;
    w.p_price = p_int;
    w.p_ts = p_int / 2;
    /* Fill: about `fill` slots, spread at random, get items (some of them without attributes). */
    for (uint32_t s = 0; s < n; s++)
        if (vs_rng_below(&w.r, n) < fill) {
            upsert(&w, s);
            set_live(&w, s, true);
        }
    w.used = n;
    vs_filter_result *res = vs_filter_result_create();
    bool *want = malloc((n + 70000) * sizeof *want);
    tally t = {0};
    for (int round = 0; round < rounds; round++) {
        mutate(&w, n / 2);
        vs_status st = {0};
        CHECKF(vs_attr_store_check(w.s, &st) == VS_OK, "%s", st.msg);
        for (int k = 0; k < exprs; k++) {
            /* n_bits: usually the model's slots, sometimes fewer than the store holds, sometimes
             * past it (live slots with no attributes at all). */
            uint64_t n_bits = n;
            uint64_t c = vs_rng_below(&w.r, 10);
            if (c == 0)
                n_bits = vs_rng_below(&w.r, n + 1);
            if (c == 1) {
                n_bits = n + vs_rng_below(&w.r, 70000);
                for (uint64_t s = n; s < n_bits; s += 1 + vs_rng_below(&w.r, 50))
                    set_live(&w, (uint32_t)s, true);
            }
            expr *e = gen(&w.r, 1 + (int)vs_rng_below(&w.r, 4));
            check_expr(&w, e, n_bits, res, want, &t);
            free_expr(e);
            for (uint64_t s = n; s < n + 70000; s++)
                set_live(&w, (uint32_t)s, false);
        }
    }
    printf("property %s: %llu expressions x 5 ways + canonical, %llu lists, %llu bitmaps, %llu "
           "sparse, mean pass %.1f slots\n",
           name, (unsigned long long)t.exprs, (unsigned long long)t.lists,
           (unsigned long long)t.bitmaps, (unsigned long long)t.sparse,
           t.exprs ? (double)t.passing / (double)t.exprs : 0.0);
    free(want);
    vs_filter_result_destroy(res);
    world_free(&w);
}

/* Filters nested far past the default limit (the ceiling a caller may raise it to) evaluate by
 * every path like the naive tree: the evaluator's recursion follows the AST, which the parser
 * bounded. */
static void test_deep(void)
{
    world w;
    world_init(&w, 70000, 8, 99);
    w.p_color = w.p_kind = w.p_price = w.p_ts = 0.7;
    for (uint32_t s = 0; s < w.n; s += 1 + (uint32_t)vs_rng_below(&w.r, 3)) {
        upsert(&w, s);
        set_live(&w, s, true);
    }
    vs_filter_result *res = vs_filter_result_create();
    bool *want = malloc((w.n + 70000) * sizeof *want);
    tally t = {0};
    for (int shape = 0; shape < 3; shape++) {
        expr *e = gen(&w.r, 0);
        for (int level = 0; level < 100; level++) {
            expr *up = calloc(1, sizeof *up);
            int k = shape == 0 ? level % 3 : shape == 1 ? level % 2 : 2;
            up->k = k == 0 ? E_AND : k == 1 ? E_OR : E_NOT;
            up->nk = up->k == E_NOT ? 1 : 2;
            up->kid[0] = e;
            if (up->nk == 2)
                up->kid[1] = gen(&w.r, 0);
            e = up;
        }
        check_expr(&w, e, w.n, res, want, &t);
        free_expr(e);
    }
    CHECK(t.exprs == 3);
    free(want);
    vs_filter_result_destroy(res);
    world_free(&w);
}

/* ===== Hand-written cases ===== */

/* Parses text against store's schema and evaluates with every slot below n_bits live; returns
 * the count (UINT64_MAX on error). */
static uint64_t count_of(const vs_attr_store *s, const char *text, uint64_t n_bits)
{
    vs_filter *f = NULL;
    vs_status st = {0};
    uint64_t c = UINT64_MAX;
    vs_filter_result *r = vs_filter_result_create();
    if (vs_filter_parse(vs_attr_store_schema(s), text, strlen(text), NULL, &f, &st) == VS_OK &&
        vs_filter_eval(f, s, NULL, n_bits, NULL, r, &st) == VS_OK)
        c = vs_filter_result_slotset(r)->count;
    else
        fprintf(stderr, "'%s': %s\n", text, st.msg);
    vs_filter_result_destroy(r);
    vs_filter_destroy(f);
    return c;
}

static void test_cases(void)
{
    world w;
    world_init(&w, 16, 0, 7);
    const char *c3[] = {"red", "blue", "7"};
    /* slot 0: color {red, blue, 7}, price 5; slot 1: kind {x y}, ts -1; slot 2: nothing */
    vs_attr_str v[3];
    for (int i = 0; i < 3; i++)
        v[i] = (vs_attr_str){c3[i], strlen(c3[i])};
    vs_status st = {0};
    CHECK(vs_attr_store_set_tags(w.s, F_COLOR, 0, v, 3, &st) == VS_OK);
    CHECK(vs_attr_store_set_int(w.s, F_PRICE, 0, 5, &st) == VS_OK);
    CHECK(vs_attr_store_set_tags(w.s, F_KIND, 1, &(vs_attr_str){"x y", 3}, 1, &st) == VS_OK);
    CHECK(vs_attr_store_set_int(w.s, F_TS, 1, -1, &st) == VS_OK);
    CHECK(count_of(w.s, "color = 7", 3) == 1);
    CHECK(count_of(w.s, "color = '7'", 3) == 1);
    CHECK(count_of(w.s, "color = 'red' AND color = 'blue'", 3) == 1); /* a set holds both */
    CHECK(count_of(w.s, "color != 'red'", 3) == 2);                  /* true where it lacks color */
    CHECK(count_of(w.s, "color NOT IN ('red', 'green')", 3) == 2);
    CHECK(count_of(w.s, "color IN ('green', 'nope')", 3) == 0);
    CHECK(count_of(w.s, "price != 5", 3) == 2);
    CHECK(count_of(w.s, "price < 6", 3) == 1);
    CHECK(count_of(w.s, "NOT price < 6", 3) == 2);
    CHECK(count_of(w.s, "price BETWEEN 5 AND 5", 3) == 1);
    CHECK(count_of(w.s, "price BETWEEN 6 AND 5", 3) == 0);
    CHECK(count_of(w.s, "ts <= -1 AND kind = 'x y'", 3) == 1);
    CHECK(count_of(w.s, "NOT (color EXISTS OR kind EXISTS)", 3) == 1);
    CHECK(count_of(w.s, "NOT (color EXISTS OR kind EXISTS)", 1000) == 998); /* live past the store */
    CHECK(count_of(w.s, "ts EXISTS", 1) == 0);                               /* n_bits cuts */

    /* A filter parsed against another schema is refused, not misread. */
    vs_attr_schema *other = vs_attr_schema_create();
    vs_attr_schema_add(other, "color", VS_ATTR_TAG, NULL);
    vs_filter *f = NULL;
    CHECK(vs_filter_parse(other, "color = 'red'", 13, NULL, &f, &st) == VS_OK);
    vs_filter_result *r = vs_filter_result_create();
    CHECK(vs_filter_eval(f, w.s, NULL, 3, NULL, r, &st) == VS_ERR_INVALID_ARGUMENT);
    CHECK(vs_filter_eval(f, w.s, NULL, (1ull << 32) + 1, NULL, r, &st) == VS_ERR_INVALID_ARGUMENT);
    vs_filter_destroy(f);
    vs_attr_schema_destroy(other);

    /* One result reused for filters of different shapes and sizes, and after its filter is gone. */
    const char *seq[] = {"color = 'red'", "NOT color = 'red'", "price > 0 OR ts < 0",
                         "((color EXISTS))"};
    uint64_t want[] = {1, 2, 2, 1};
    for (int i = 0; i < 4; i++) {
        CHECK(vs_filter_parse(vs_attr_store_schema(w.s), seq[i], strlen(seq[i]), NULL, &f, &st) == VS_OK);
        CHECK(vs_filter_eval(f, w.s, NULL, 3, NULL, r, &st) == VS_OK);
        CHECK(vs_filter_result_slotset(r)->count == want[i]);
        vs_filter_destroy(f);
    }
    vs_filter_result_destroy(r);
    world_free(&w);
}

/* ===== MNIST ===== */

static void test_mnist(void)
{
    const char *dir = vs_test_data_dir();
    char path[4096];
    FILE *fa = NULL, *fq = NULL;
    if (dir) {
        snprintf(path, sizeof path, "%s/mnist/base-attrs.tsv", dir);
        fa = fopen(path, "r");
        snprintf(path, sizeof path, "%s/mnist/filtered-queries.tsv", dir);
        fq = fopen(path, "r");
    }
    if (!fa || !fq) {
        printf("SKIP mnist filters: no VECSCAN_DATA_DIR with mnist/base-attrs.tsv and "
               "mnist/filtered-queries.tsv\n");
        if (fa)
            fclose(fa);
        if (fq)
            fclose(fq);
        return;
    }
    vs_attr_schema *sc = vs_attr_schema_create();
    vs_attr_schema_add(sc, "digit", VS_ATTR_TAG, NULL);
    vs_attr_schema_add(sc, "ink", VS_ATTR_INT, NULL);
    vs_attr_store *s = NULL;
    vs_status st = {0};
    CHECK(vs_attr_store_create(sc, NULL, &s, &st) == VS_OK);
    vs_attr_schema_destroy(sc);

    /* base-attrs.tsv: header "id digit ink", then one item per line. */
    char line[4096];
    int digit[20000];
    uint32_t n = 0;
    CHECK(fgets(line, sizeof line, fa) && strncmp(line, "id\tdigit\tink", 12) == 0);
    while (fgets(line, sizeof line, fa) && n < 20000) {
        unsigned id;
        char d[64];
        long long ink;
        if (sscanf(line, "%u\t%63[^\t]\t%lld", &id, d, &ink) != 3) {
            CHECKF(0, "bad line in base-attrs.tsv: %s", line);
            break;
        }
        CHECK(id == n);
        digit[n] = atoi(d);
        CHECK(vs_attr_store_set_tags(s, 0, id, &(vs_attr_str){d, strlen(d)}, 1, &st) == VS_OK);
        CHECK(vs_attr_store_set_int(s, 1, id, ink, &st) == VS_OK);
        n++;
    }
    fclose(fa);

    /* filtered-queries.tsv: header "query filter"; filters are "digit IN (a, b, c)". */
    vs_filter_result *r = vs_filter_result_create();
    uint32_t queries = 0, mismatches = 0;
    double pass = 0;
    CHECK(fgets(line, sizeof line, fq) != NULL);
    while (fgets(line, sizeof line, fq)) {
        char *text = strchr(line, '\t');
        if (!text)
            continue;
        text++;
        text[strcspn(text, "\r\n")] = '\0';
        bool in[10] = {false};
        for (const char *p = strchr(text, '('); p && *p && *p != ')'; p++)
            if (*p >= '0' && *p <= '9')
                in[*p - '0'] = true;
        uint64_t naive_count = 0;
        for (uint32_t i = 0; i < n; i++)
            naive_count += digit[i] >= 0 && digit[i] < 10 && in[digit[i]];
        vs_filter *f = NULL;
        if (vs_filter_parse(vs_attr_store_schema(s), text, strlen(text), NULL, &f, &st) != VS_OK ||
            vs_filter_eval(f, s, NULL, n, NULL, r, &st) != VS_OK) {
            CHECKF(0, "'%s': %s", text, st.msg);
        } else if (vs_filter_result_slotset(r)->count != naive_count) {
            mismatches++;
        }
        pass += (double)naive_count / n;
        vs_filter_destroy(f);
        queries++;
    }
    fclose(fq);
    CHECKF(mismatches == 0, "%u of %u mnist filters counted wrong", mismatches, queries);
    CHECK(queries == 1000 && n == 9000);
    printf("mnist: %u filters over %u items, all counts equal the naive count (%u wrong), mean "
           "pass %.1f%%\n",
           queries, n, mismatches, queries ? 100.0 * pass / queries : 0.0);
    vs_filter_result_destroy(r);
    vs_attr_store_destroy(s);
}

/* ===== Timings ===== */

/* Seconds on the monotonic clock. */
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The median of reps timed evaluations of text (microseconds); *count gets the pass count. */
static double time_eval(const vs_attr_store *s, const char *text, const uint64_t *live,
                        uint64_t n, vs_filter_path path, int reps, uint64_t *count,
                        vs_filter_stats *fs, const vs_slotset **set, vs_filter_result *r)
{
    vs_filter *f = NULL;
    vs_status st = {0};
    *count = 0;
    *fs = (vs_filter_stats){0};
    *set = vs_filter_result_slotset(r);
    if (vs_filter_parse(vs_attr_store_schema(s), text, strlen(text), NULL, &f, &st) != VS_OK) {
        CHECKF(0, "'%s': %s", text, st.msg);
        return -1;
    }
    double t[64];
    vs_filter_eval_options o = {0, VS_FILTER_OUT_AUTO, path};
    for (int i = 0; i < reps; i++) {
        double t0 = now();
        CHECK(vs_filter_eval(f, s, live, n, &o, r, &st) == VS_OK);
        t[i] = now() - t0;
    }
    for (int i = 1; i < reps; i++) /* insertion sort: reps is small */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    *count = vs_filter_result_slotset(r)->count;
    *fs = vs_filter_result_stats(r);
    *set = vs_filter_result_slotset(r);
    vs_filter_destroy(f);
    return t[reps / 2] * 1e6;
}

/* A reference for the bins: the slots of v[0 .. n) below bound, ANDed with live, into a bitmap,
 * by scanning every value, or (zones) with block min/max over 1024-slot blocks: a block wholly
 * below the bound is taken whole, one wholly above skipped, the rest scanned. The min/max are
 * computed once, outside the timing. Returns the best of reps in microseconds; *cnt the count. */
static double ref_scan(const int64_t *v, uint32_t n, int64_t bound, const uint64_t *live,
                       bool zones, int reps, uint64_t *cnt)
{
    uint32_t nw = (n + 63) / 64, nz = (n + 1023) / 1024;
    uint64_t *out = calloc(nw, 8);
    int64_t *zmin = malloc(nz * sizeof *zmin), *zmax = malloc(nz * sizeof *zmax);
    for (uint32_t z = 0; z < nz; z++) {
        zmin[z] = INT64_MAX;
        zmax[z] = INT64_MIN;
        for (uint32_t i = z * 1024; i < n && i < (z + 1) * 1024; i++) {
            zmin[z] = v[i] < zmin[z] ? v[i] : zmin[z];
            zmax[z] = v[i] > zmax[z] ? v[i] : zmax[z];
        }
    }
    double best = 1e9;
    for (int rep = 0; rep < reps; rep++) {
        double a = now();
        uint64_t c = 0;
        for (uint32_t w = 0; w < nw; w++) {
            uint32_t z = w / 16;
            uint64_t bits = 0;
            if (zones && zmin[z] >= bound)
                bits = 0;
            else if (zones && zmax[z] < bound)
                bits = ~0ull;
            else
                for (uint32_t k = 0; k < 64 && w * 64 + k < n; k++)
                    bits |= (uint64_t)(v[w * 64 + k] < bound) << k;
            out[w] = bits & live[w];
            c += (uint64_t)__builtin_popcountll(out[w]);
        }
        double d = now() - a;
        best = d < best ? d : best;
        *cnt = c;
    }
    free(out);
    free(zmin);
    free(zmax);
    return best * 1e6;
}

static void timings(void)
{
#ifdef VS_TEST_SANITIZED
    const uint32_t n = 200000;
    const int reps = 3;
#else
    const uint32_t n = 1000000;
    const int reps = 15;
#endif
    vs_attr_schema *sc = vs_attr_schema_create();
    vs_attr_schema_add(sc, "digit", VS_ATTR_TAG, NULL);
    vs_attr_schema_add(sc, "cat", VS_ATTR_TAG, NULL);
    vs_attr_schema_add(sc, "ts", VS_ATTR_INT, NULL);
    vs_attr_schema_add(sc, "seq", VS_ATTR_INT, NULL);
    vs_attr_store *s = NULL;
    vs_status st = {0};
    CHECK(vs_attr_store_create(sc, NULL, &s, &st) == VS_OK);
    vs_attr_schema_destroy(sc);
    vs_rng r;
    vs_rng_seed(&r, 42);
    uint64_t *live = calloc((n + 63) / 64, 8);
    int64_t *ts = malloc(n * sizeof *ts);
    double t0 = now();
    for (uint32_t i = 0; i < n; i++) {
        char d[8], c[16];
        int dl = snprintf(d, sizeof d, "%d", (int)vs_rng_below(&r, 10));
        int cl = snprintf(c, sizeof c, "c%d", (int)vs_rng_below(&r, 1000));
        vs_attr_store_set_tags(s, 0, i, &(vs_attr_str){d, (size_t)dl}, 1, &st);
        vs_attr_store_set_tags(s, 1, i, &(vs_attr_str){c, (size_t)cl}, 1, &st);
        ts[i] = (int64_t)vs_rng_below(&r, 1000000000);
        vs_attr_store_set_int(s, 2, i, ts[i], &st);
        vs_attr_store_set_int(s, 3, i, i, &st);
        if (vs_rng_below(&r, 100))
            live[i >> 6] |= 1ull << (i & 63);
    }
    double build = now() - t0;
    printf("timings: %u slots (99%% live), digit: 10 values, cat: 1000 values, ts: random, seq: "
           "= slot; store built in %.2f s\n", n, build);
    printf("  %-58s %9s %6s %6s %9s %9s %9s\n", "filter", "pass", "kind", "path", "auto us",
           "dense us", "sparse us");
    static const char *filters[] = {
        "digit IN (1, 2, 3)",
        "digit = 7",
        "NOT digit = 3",
        "cat = 'c17'",
        "cat IN ('c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9', 'c10')",
        "cat = 'c17' AND digit IN (1, 2, 3)",
        "ts < 1000000",
        "ts < 10000000",
        "ts < 100000000",
        "ts < 500000000",
        "ts >= 100000000",
        "seq BETWEEN 100000 AND 199999",
        "digit IN (1, 2, 3) AND ts < 100000000",
        "(digit = 1 OR cat IN ('c5', 'c6')) AND NOT ts BETWEEN 0 AND 500000000",
    };
    vs_filter_result *res = vs_filter_result_create();
    for (size_t i = 0; i < sizeof filters / sizeof *filters; i++) {
        uint64_t count, c2, c3;
        vs_filter_stats fs, f2, f3;
        const vs_slotset *set;
        double ta = time_eval(s, filters[i], live, n, VS_FILTER_PATH_AUTO, reps, &count, &fs, &set, res);
        const char *kind = set->kind == VS_SLOTSET_LIST ? "list" : "bitmap";
        const char *path = fs.path == VS_FILTER_PATH_SPARSE ? "sparse" : "dense";
        double td = time_eval(s, filters[i], live, n, VS_FILTER_PATH_DENSE, reps, &c2, &f2, &set, res);
        double tsp = time_eval(s, filters[i], live, n, VS_FILTER_PATH_SPARSE, reps, &c3, &f3, &set, res);
        CHECK(c2 == count && c3 == count);
        char sp[32] = "-";
        if (f3.path == VS_FILTER_PATH_SPARSE)
            snprintf(sp, sizeof sp, "%.1f", tsp);
        printf("  %-58.58s %9llu %6s %6s %9.1f %9.1f %9s\n", filters[i], (unsigned long long)count,
               kind, path, ta, td, sp);
    }

    /* The bins against the two other ways to speed ranges, on the same values: a plain scan
     * and block min/max (zone maps over 1024-slot blocks). */
    int64_t *seq = malloc(n * sizeof *seq);
    for (uint32_t i = 0; i < n; i++)
        seq[i] = i;
    static const int64_t ts_bounds[] = {1000000, 10000000, 100000000, 500000000};
    static const int64_t seq_bounds[] = {10000, 100000};
    for (int b = 0; b < 6; b++) {
        const int64_t *col = b < 4 ? ts : seq;
        int64_t bound = b < 4 ? ts_bounds[b] : seq_bounds[b - 4];
        uint64_t c1, c2;
        double plain = ref_scan(col, n, bound, live, false, reps, &c1);
        double zones = ref_scan(col, n, bound, live, true, reps, &c2);
        CHECK(c1 == c2);
        printf("  reference: %-3s < %-10lld %9llu pass: plain scan %7.1f us, block min/max %7.1f us\n",
               b < 4 ? "ts" : "seq", (long long)bound, (unsigned long long)c1, plain, zones);
    }
    free(seq);
    vs_filter_result_destroy(res);
    free(ts);
    free(live);
    vs_attr_store_destroy(s);
}

int main(void)
{
    test_cases();
    test_deep();
    /* dense data, tiny bins (splits and merges all the time), many rounds */
    property("dense", 3000, 8, 0.9, 0.9, 2500, 6, 400, 11);
    /* sparse presence, few live items spread over three 65536-slot blocks */
    property("sparse", 140000, 0, 0.3, 0.4, 9000, 3, 60, 12);
    /* sparse data but many items, default bins, spread out by deletes and reuse */
    property("wide", 140000, 64, 0.6, 0.6, 100000, 2, 40, 13);
    test_mnist();
    timings();
    return vs_test_finish("test_filter_eval");
}
