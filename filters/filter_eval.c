/*
 * filter_eval.c: a bound filter into a set of allowed slots.
 *
 * Two paths, chosen from the plan's numbers (filter_plan.c) before anything is built:
 *
 * Sparse, when the filter has a small candidate set (cover <= n / VS_FILTER_SPARSE_DIVISOR): build
 * that set from postings (the smallest AND child, the union of OR children), then check each
 * candidate against the whole expression by reading the slot's own cells and values. The cost is
 * the candidates, not n.
 *
 * Dense, otherwise: walk the slots in blocks of 65536 (1024 words, one CRoaring container of each
 * bitmap) and evaluate the expression per block with word-wide AND, OR and NOT, leaves copied out
 * of their bitmaps' containers (attr_block.c). The block buffers of each AST level stay in L2 cache,
 * whatever n is, and the memory is (depth + 1) x 8 KiB. Blocks where live is empty are skipped, and
 * an AND stops at the first child that leaves the block empty (children go most selective first).
 *
 * Both end ANDed with live. The answer is a sorted LIST when at most n / list_divisor slots pass
 * (decided on the exact count, so equal inputs always give the same kind) and a BITMAP otherwise.
 * NOT is a complement of the block, which the final AND with live turns into "complement within
 * live". The AST depth bounds every recursion here, and the parser bounded the depth.
 */
#include "filter_internal.h"

#include <string.h>

/* The sparse path is taken when the candidate set is at most this fraction of the slots. On 1M
 * slots (test_filter_eval's timings) a candidate costs 6-40 ns to gather and check, and the dense
 * path 15-50 us for a simple filter: 986 candidates took 6 us sparse against 24 us dense, ~5000
 * took 18 against 37, ~14000 took 110 against 51. The crossover sits between n/200 and n/100;
 * n/256 keeps the sparse path where it clearly wins. */
#define VS_FILTER_SPARSE_DIVISOR 256

struct vs_filter_result {
    vs_slotset set;
    vs_filter_stats stats;
    uint64_t *words; /* BITMAP answer, and the dense path's output blocks */
    uint64_t cap_words;
    uint32_t *slots; /* LIST answer */
    uint64_t cap_slots;
    uint64_t *temps; /* dense path: one block per AST level */
    uint64_t cap_temps;
    vs_fplan plan;
};

/* ===== Results and buffers ===== */

vs_filter_result *vs_filter_result_create(void) { return calloc(1, sizeof(vs_filter_result)); }

/* Frees r and its buffers. */
void vs_filter_result_destroy(vs_filter_result *r)
{
    if (!r)
        return;
    vs_filter_plan_free(&r->plan);
    free(r->words);
    free(r->slots);
    free(r->temps);
    free(r);
}

/* The last evaluation's allowed slots. */
const vs_slotset *vs_filter_result_slotset(const vs_filter_result *r) { return &r->set; }

/* What the last evaluation did. */
vs_filter_stats vs_filter_result_stats(const vs_filter_result *r) { return r->stats; }

/* Makes *buf hold at least n elements of size elem (contents not kept); false when out of memory. */
static bool vs_eval_reserve(void *buf, uint64_t *cap, uint64_t n, size_t elem)
{
    void *b;
    memcpy(&b, buf, sizeof b);
    if (n <= *cap && b)
        return true;
    if (n > SIZE_MAX / elem)
        return false;
    void *nb = malloc(n ? (size_t)n * elem : elem);
    if (!nb)
        return false;
    free(b);
    memcpy(buf, &nb, sizeof nb);
    *cap = n;
    return true;
}

/* ===== Popcount ===== */

/* The number of set bits in w[0 .. n), portable. */
static uint64_t vs_eval_popcount_plain(const uint64_t *w, uint64_t n)
{
    uint64_t c = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t x = w[i];
        x = x - ((x >> 1) & 0x5555555555555555ull);
        x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
        x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
        c += (x * 0x0101010101010101ull) >> 56;
    }
    return c;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The number of set bits in w[0 .. n), with the POPCNT instruction. */
__attribute__((target("popcnt"))) static uint64_t vs_eval_popcount_hw(const uint64_t *w,
                                                                      uint64_t n)
{
    uint64_t c = 0;
    for (uint64_t i = 0; i < n; i++)
        c += (uint64_t)__builtin_popcountll(w[i]);
    return c;
}
#endif

/* The number of set bits in w[0 .. n), with POPCNT where the CPU has it. */
static uint64_t vs_eval_popcount(const uint64_t *w, uint64_t n)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("popcnt"))
        return vs_eval_popcount_hw(w, n);
#endif
    return vs_eval_popcount_plain(w, n);
}

/* ===== Row evaluation (sparse path) ===== */

/* Whether sorted a[0 .. na) and sorted b[0 .. nb) share a value (a is the slot's few codes). */
static bool vs_eval_meet(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb)
{
    for (uint32_t i = 0; i < na; i++) {
        uint32_t lo = 0, hi = nb;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (b[mid] < a[i])
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < nb && b[lo] == a[i])
            return true;
    }
    return false;
}

/* Whether slot passes node, read from the slot's own cells and values. */
static bool vs_eval_row(const vs_fplan *p, uint32_t node, uint32_t slot)
{
    const vs_fnode *nd = &p->f->nodes[node];
    const vs_fnode_plan *np = &p->np[node];
    switch (nd->kind) {
    case VS_FN_AND:
        for (uint32_t k = 0; k < nd->n; k++)
            if (!vs_eval_row(p, np->order[k], slot))
                return false;
        return true;
    case VS_FN_OR:
        for (uint32_t k = 0; k < nd->n; k++)
            if (vs_eval_row(p, np->order[k], slot))
                return true;
        return false;
    case VS_FN_NOT: return !vs_eval_row(p, p->f->kids[nd->off], slot);
    case VS_FN_TAG: {
        uint32_t n;
        const uint32_t *codes = vs_attr_cell_codes(np->col, slot, &n);
        return n && np->n_codes && vs_eval_meet(codes, n, np->codes, np->n_codes);
    }
    case VS_FN_INT: {
        int64_t v;
        return nd->n && vs_attr_int_at(np->col, slot, &v) &&
               vs_attr_ranges_has(p->f->ranges + nd->off, nd->n, v);
    }
    case VS_FN_EXISTS: {
        if (np->col->type == VS_ATTR_INT) {
            int64_t v;
            return vs_attr_int_at(np->col, slot, &v);
        }
        uint32_t n;
        vs_attr_cell_codes(np->col, slot, &n);
        return n > 0;
    }
    }
    return false;
}

/* A candidate set of the sparse path: ascending slots, owned. */
typedef struct vs_fcover {
    uint32_t *v;
    uint64_t n;
} vs_fcover;

/* The number of slots in source s. */
static uint64_t vs_eval_source_size(const vs_attr_source *s)
{
    return s->bm ? roaring_bitmap_get_cardinality(s->bm) : s->n;
}

/* Copies source s's slots (ascending) to out. */
static void vs_eval_source_copy(const vs_attr_source *s, uint32_t *out)
{
    if (s->bm)
        roaring_bitmap_to_uint32_array(s->bm, out);
    else if (s->n)
        memcpy(out, s->arr, s->n * sizeof *out);
}

/* Sets *out to leaf node's slots: the union of its sources (each an ascending run, merged), or
 * presence minus that union. */
static vs_err vs_eval_cover_leaf(vs_fplan *p, uint32_t node, vs_fcover *out, vs_status *st)
{
    vs_err e = vs_filter_plan_prepare(p, node, st);
    if (e)
        return e;
    const vs_fnode_plan *np = &p->np[node];
    uint64_t total = 0;
    for (uint32_t k = 0; k < np->n_src; k++)
        total += vs_eval_source_size(&p->srcs[np->src + k]);
    uint64_t n_base = np->complement ? vs_eval_source_size(&p->srcs[np->base]) : 0;
    uint32_t *buf = malloc((total + n_base + 1) * sizeof *buf);
    uint32_t *tmp = malloc((total + 1) * sizeof *tmp);
    uint64_t *bounds = malloc((np->n_src + 1) * sizeof *bounds);
    if (!buf || !tmp || !bounds) {
        free(buf);
        free(tmp);
        free(bounds);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory evaluating a filter");
    }
    uint64_t at = 0;
    for (uint32_t k = 0; k < np->n_src; k++) {
        bounds[k] = at;
        vs_eval_source_copy(&p->srcs[np->src + k], buf + at);
        at += vs_eval_source_size(&p->srcs[np->src + k]);
    }
    bounds[np->n_src] = at;
    uint64_t n = vs_attr_merge_runs(buf, tmp, bounds, np->n_src);
    if (np->complement) {
        /* base minus the union: the base goes into tmp's place, the union stays in buf. */
        uint32_t *res = malloc((n_base + 1) * sizeof *res);
        if (!res) {
            free(buf);
            free(tmp);
            free(bounds);
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory evaluating a filter");
        }
        vs_eval_source_copy(&p->srcs[np->base], res);
        uint64_t k = vs_attr_subtract(res, n_base, buf, n);
        free(buf);
        buf = res;
        n = k;
    }
    free(tmp);
    free(bounds);
    out->v = buf;
    out->n = n;
    return VS_OK;
}

/* Sets *out to node's candidate set: a leaf's slots, the smallest child's set for AND, the union
 * for OR. The planner asks only for nodes whose cover is not VS_FILTER_NONE. */
static vs_err vs_eval_cover(vs_fplan *p, uint32_t node, vs_fcover *out, vs_status *st)
{
    const vs_fnode *nd = &p->f->nodes[node];
    out->v = NULL;
    out->n = 0;
    if (nd->kind >= VS_FN_TAG)
        return vs_eval_cover_leaf(p, node, out, st);
    if (nd->kind == VS_FN_AND) {
        uint32_t best = p->f->kids[nd->off];
        for (uint32_t k = 1; k < nd->n; k++)
            if (p->np[p->f->kids[nd->off + k]].cover < p->np[best].cover)
                best = p->f->kids[nd->off + k];
        return vs_eval_cover(p, best, out, st);
    }
    if (nd->kind != VS_FN_OR)
        return vs_status_set(st, VS_ERR_INTERNAL, "a NOT has no candidate set");
    /* OR: every child's set, as runs of one buffer, merged. */
    vs_fcover *kid = calloc(nd->n, sizeof *kid);
    uint64_t *bounds = malloc((nd->n + 1) * sizeof *bounds);
    vs_err e = kid && bounds ? VS_OK : VS_ERR_RESOURCE_EXHAUSTED;
    uint64_t total = 0;
    for (uint32_t k = 0; !e && k < nd->n; k++) {
        e = vs_eval_cover(p, p->f->kids[nd->off + k], &kid[k], st);
        total += kid[k].n;
    }
    uint32_t *buf = NULL, *tmp = NULL;
    if (!e) {
        buf = malloc((total + 1) * sizeof *buf);
        tmp = malloc((total + 1) * sizeof *tmp);
        e = buf && tmp ? VS_OK : VS_ERR_RESOURCE_EXHAUSTED;
    }
    if (!e) {
        uint64_t at = 0;
        for (uint32_t k = 0; k < nd->n; k++) {
            bounds[k] = at;
            if (kid[k].n)
                memcpy(buf + at, kid[k].v, kid[k].n * sizeof *buf);
            at += kid[k].n;
        }
        bounds[nd->n] = at;
        out->n = vs_attr_merge_runs(buf, tmp, bounds, nd->n);
        out->v = buf;
        buf = NULL;
    }
    for (uint32_t k = 0; kid && k < nd->n; k++)
        free(kid[k].v);
    free(kid);
    free(bounds);
    free(buf);
    free(tmp);
    if (e == VS_ERR_RESOURCE_EXHAUSTED)
        return vs_status_set(st, e, "out of memory evaluating a filter");
    return e;
}

/* The sparse path: candidates from postings and bins, each checked; fills r->slots and the
 * count. */
static vs_err vs_eval_sparse(vs_filter_result *r, const uint64_t *live, uint64_t n_bits,
                             vs_status *st)
{
    vs_fplan *p = &r->plan;
    vs_fcover cov;
    vs_err e = vs_eval_cover(p, p->f->root, &cov, st);
    if (e)
        return e;
    r->stats.candidates = cov.n;
    if (!vs_eval_reserve(&r->slots, &r->cap_slots, cov.n, sizeof *r->slots)) {
        free(cov.v);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory evaluating a filter");
    }
    uint64_t k = 0;
    bool exact = p->np[p->f->root].exact; /* the candidates are the answer: no row to check */
    for (uint64_t i = 0; i < cov.n; i++) {
        uint32_t s = cov.v[i];
        if (s >= n_bits)
            break;
        if (live && !((live[s >> 6] >> (s & 63)) & 1))
            continue;
        if (exact || vs_eval_row(p, p->f->root, s))
            r->slots[k++] = s;
    }
    free(cov.v);
    r->stats.count = k;
    return VS_OK;
}

/* ===== Block evaluation (dense path) ===== */

typedef struct vs_feval {
    vs_fplan *p;
    vs_attr_cursor *curs;
    uint64_t *temps; /* level L's scratch block is temps + L * 1024 */
} vs_feval;

/* Makes every leaf under node ready and gives each source a cursor. */
static vs_err vs_eval_prepare_all(vs_fplan *p, uint32_t node, vs_status *st)
{
    const vs_fnode *nd = &p->f->nodes[node];
    if (nd->kind >= VS_FN_TAG)
        return vs_filter_plan_prepare(p, node, st);
    for (uint32_t k = 0; k < nd->n; k++) {
        vs_err e = vs_eval_prepare_all(p, p->f->kids[nd->off + k], st);
        if (e)
            return e;
    }
    return VS_OK;
}

/* dst = block `key` of node; returns false only when dst is all zero. */
static bool vs_eval_block(const vs_feval *ev, uint32_t node, uint32_t key, uint64_t *dst,
                          uint32_t level)
{
    const vs_fplan *p = ev->p;
    const vs_fnode *nd = &p->f->nodes[node];
    const vs_fnode_plan *np = &p->np[node];
    uint64_t *tmp = ev->temps + (uint64_t)level * VS_ATTR_CHUNK_WORDS;
    switch (nd->kind) {
    case VS_FN_NOT:
        vs_eval_block(ev, p->f->kids[nd->off], key, dst, level);
        for (uint32_t i = 0; i < VS_ATTR_CHUNK_WORDS; i++)
            dst[i] = ~dst[i];
        return true;
    case VS_FN_AND: {
        if (!vs_eval_block(ev, np->order[0], key, dst, level))
            return false;
        for (uint32_t k = 1; k < nd->n; k++) {
            uint32_t c = np->order[k];
            const vs_fnode_plan *cp = &p->np[c];
            bool nz;
            if (p->f->nodes[c].kind >= VS_FN_TAG && !cp->complement && cp->n_src <= 1) {
                if (cp->n_src == 0) {
                    memset(dst, 0, VS_ATTR_CHUNK_WORDS * 8);
                    return false;
                }
                nz = vs_attr_block_and(&ev->curs[cp->src], key, dst, tmp);
            } else {
                uint64_t acc = 0;
                if (vs_eval_block(ev, c, key, tmp, level + 1))
                    for (uint32_t i = 0; i < VS_ATTR_CHUNK_WORDS; i++)
                        acc |= (dst[i] &= tmp[i]);
                else
                    memset(dst, 0, VS_ATTR_CHUNK_WORDS * 8);
                nz = acc != 0;
            }
            if (!nz)
                return false;
        }
        return true;
    }
    case VS_FN_OR: {
        bool nz = vs_eval_block(ev, np->order[0], key, dst, level);
        for (uint32_t k = 1; k < nd->n; k++) {
            uint32_t c = np->order[k];
            const vs_fnode_plan *cp = &p->np[c];
            if (p->f->nodes[c].kind >= VS_FN_TAG && !cp->complement) {
                for (uint32_t s = 0; s < cp->n_src; s++)
                    nz |= vs_attr_block_or(&ev->curs[cp->src + s], key, dst);
            } else if (vs_eval_block(ev, c, key, tmp, level + 1)) {
                for (uint32_t i = 0; i < VS_ATTR_CHUNK_WORDS; i++)
                    dst[i] |= tmp[i];
                nz = true;
            }
        }
        return nz;
    }
    default: { /* a leaf: the OR of its sources, or presence minus it */
        if (np->complement) {
            if (!vs_attr_block_load(&ev->curs[np->base], key, dst))
                return false;
            if (np->n_src == 0)
                return true;
            bool any = vs_attr_block_load(&ev->curs[np->src], key, tmp);
            for (uint32_t s = 1; s < np->n_src; s++)
                any |= vs_attr_block_or(&ev->curs[np->src + s], key, tmp);
            if (!any)
                return true;
            uint64_t acc = 0;
            for (uint32_t i = 0; i < VS_ATTR_CHUNK_WORDS; i++)
                acc |= (dst[i] &= ~tmp[i]);
            return acc != 0;
        }
        if (np->n_src == 0) {
            memset(dst, 0, VS_ATTR_CHUNK_WORDS * 8);
            return false;
        }
        bool nz = vs_attr_block_load(&ev->curs[np->src], key, dst);
        for (uint32_t s = 1; s < np->n_src; s++)
            nz |= vs_attr_block_or(&ev->curs[np->src + s], key, dst);
        return nz;
    }
    }
}

/* The dense path: every block through vs_eval_block, ANDed with live; fills r->words and the
 * count. */
static vs_err vs_eval_dense(vs_filter_result *r, const uint64_t *live, uint64_t n_bits,
                            vs_status *st)
{
    vs_fplan *p = &r->plan;
    const vs_filter *f = p->f;
    uint64_t nw = (n_bits + 63) / 64, nblocks = (n_bits + VS_ATTR_CHUNK - 1) / VS_ATTR_CHUNK;
    vs_err e = vs_eval_prepare_all(p, f->root, st);
    if (e)
        return e;
    uint64_t levels = (uint64_t)f->nodes[f->root].depth + 1;
    if (!vs_eval_reserve(&r->words, &r->cap_words, nblocks * VS_ATTR_CHUNK_WORDS, 8) ||
        !vs_eval_reserve(&r->temps, &r->cap_temps, levels * VS_ATTR_CHUNK_WORDS, 8) ||
        !VS_ATTR_GROW(p->curs, p->cap_curs, (uint64_t)p->n_srcs + 1))
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory evaluating a filter");
    for (uint32_t i = 0; i < p->n_srcs; i++)
        vs_attr_cursor_init(&p->curs[i], &p->srcs[i]);
    vs_feval ev = {p, p->curs, r->temps};
    for (uint64_t key = 0; key < nblocks; key++) {
        uint64_t *dst = r->words + key * VS_ATTR_CHUNK_WORDS, base = key * VS_ATTR_CHUNK_WORDS;
        uint64_t lw = nw - base < VS_ATTR_CHUNK_WORDS ? nw - base : VS_ATTR_CHUNK_WORDS;
        if (live) {
            uint64_t any = 0;
            for (uint64_t i = 0; i < lw; i++)
                any |= live[base + i];
            if (!any) {
                memset(dst, 0, VS_ATTR_CHUNK_WORDS * 8);
                continue;
            }
        }
        if (vs_eval_block(&ev, f->root, (uint32_t)key, dst, 0)) {
            if (live)
                for (uint64_t i = 0; i < lw; i++)
                    dst[i] &= live[base + i];
        }
        for (uint64_t i = lw; i < VS_ATTR_CHUNK_WORDS; i++)
            dst[i] = 0;
    }
    if (n_bits & 63)
        r->words[nw - 1] &= ~0ull >> (64 - (n_bits & 63));
    r->stats.count = vs_eval_popcount(r->words, nw);
    return VS_OK;
}

/* ===== The answer ===== */

/* Turns the dense path's words into the sorted list in r->slots. */
static vs_err vs_eval_words_to_list(vs_filter_result *r, uint64_t nw, vs_status *st)
{
    if (!vs_eval_reserve(&r->slots, &r->cap_slots, r->stats.count, sizeof *r->slots))
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory evaluating a filter");
    uint64_t k = 0;
    for (uint64_t i = 0; i < nw; i++)
        for (uint64_t w = r->words[i]; w; w &= w - 1)
            r->slots[k++] = (uint32_t)(i * 64 + (uint64_t)__builtin_ctzll(w));
    return VS_OK;
}

/* Turns the sparse path's list into words over [0, n_bits) in r->words. */
static vs_err vs_eval_list_to_words(vs_filter_result *r, uint64_t nw, vs_status *st)
{
    if (!vs_eval_reserve(&r->words, &r->cap_words, nw, 8))
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory evaluating a filter");
    memset(r->words, 0, nw * 8);
    for (uint64_t k = 0; k < r->stats.count; k++)
        r->words[r->slots[k] >> 6] |= 1ull << (r->slots[k] & 63);
    return VS_OK;
}

/* Binds, picks a path, evaluates, ANDs with live and picks the output kind. */
vs_err vs_filter_eval(const vs_filter *f, const vs_attr_store *store, const uint64_t *live,
                      uint64_t n_bits, const vs_filter_eval_options *opt, vs_filter_result *r,
                      vs_status *st)
{
    r->set = (vs_slotset){VS_SLOTSET_LIST, NULL, 0, r->slots, 0};
    r->stats = (vs_filter_stats){0, 0, 0, VS_FILTER_PATH_DENSE};
    if (n_bits > (1ull << 32))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "%llu slots is past the 2^32 a filter can address",
                             (unsigned long long)n_bits);
    vs_filter_eval_options o = opt ? *opt : (vs_filter_eval_options){0};
    uint64_t divisor = o.list_divisor ? o.list_divisor : VS_FILTER_LIST_DIVISOR;
    vs_fplan *p = &r->plan;
    vs_err e = vs_filter_plan_bind(p, f, store, n_bits, st);
    if (e)
        return e;
    const vs_fnode_plan *root = &p->np[f->root];
    uint64_t nw = (n_bits + 63) / 64;
    r->stats.estimate = root->est;
    vs_filter_path path = o.path;
    /* An exact candidate set costs a copy per candidate (no row to check): the sparse path then
     * wins wherever the answer is a list (1% of 1M slots: ~20 us against ~100 us dense). */
    uint64_t sparse_max = n_bits / (root->exact ? divisor : VS_FILTER_SPARSE_DIVISOR);
    if (path == VS_FILTER_PATH_AUTO)
        path = root->cover != VS_FILTER_NONE && root->cover <= sparse_max ? VS_FILTER_PATH_SPARSE
                                                                          : VS_FILTER_PATH_DENSE;
    if (path == VS_FILTER_PATH_SPARSE && root->cover == VS_FILTER_NONE)
        path = VS_FILTER_PATH_DENSE;
    r->stats.path = path;
    bool as_list;
    if (n_bits == 0 || root->est == 0) {
        /* Nothing can pass: an empty answer without touching a block. */
        as_list = o.output != VS_FILTER_OUT_BITMAP;
        if (as_list ? !vs_eval_reserve(&r->slots, &r->cap_slots, 1, sizeof *r->slots)
                    : !vs_eval_reserve(&r->words, &r->cap_words, nw, 8)) {
            vs_filter_plan_reset(p);
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory evaluating a filter");
        }
        if (!as_list)
            memset(r->words, 0, nw * 8);
    } else {
        e = path == VS_FILTER_PATH_SPARSE ? vs_eval_sparse(r, live, n_bits, st)
                                          : vs_eval_dense(r, live, n_bits, st);
        as_list = o.output == VS_FILTER_OUT_LIST ||
                  (o.output == VS_FILTER_OUT_AUTO && r->stats.count <= n_bits / divisor);
        if (!e && path == VS_FILTER_PATH_DENSE && as_list)
            e = vs_eval_words_to_list(r, nw, st);
        if (!e && path == VS_FILTER_PATH_SPARSE && !as_list)
            e = vs_eval_list_to_words(r, nw, st);
    }
    vs_filter_plan_reset(p);
    if (e)
        return e;
    if (as_list)
        r->set = (vs_slotset){VS_SLOTSET_LIST, NULL, 0, r->slots, r->stats.count};
    else
        r->set = (vs_slotset){VS_SLOTSET_BITMAP, r->words, n_bits, NULL, r->stats.count};
    return VS_OK;
}

/* An upper bound on the passing slots, from posting and bin sizes. */
vs_err vs_filter_estimate(const vs_filter *f, const vs_attr_store *store, uint64_t n_bits,
                          uint64_t *upper, vs_status *st)
{
    vs_fplan p;
    memset(&p, 0, sizeof p);
    vs_err e = vs_filter_plan_bind(&p, f, store, n_bits, st);
    *upper = e ? 0 : p.np[f->root].est;
    vs_filter_plan_free(&p);
    return e;
}
