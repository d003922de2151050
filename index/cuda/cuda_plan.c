/* cuda_plan.c: the CUDA backend's host-side decisions (see cuda_plan.h). Plain C, no CUDA. */
#include "cuda_plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

/* ===== Row layout ===== */

static const char *storage_name(vs_storage s)
{
    switch (s) {
    case VS_STORAGE_F32: return "f32";
    case VS_STORAGE_F16: return "f16";
    case VS_STORAGE_I8: return "i8";
    case VS_STORAGE_B1: return "b1";
    }
    return "?";
}

vs_err vs_cu_layout_make(const vs_field_layout *f, vs_cu_layout *out, vs_status *st)
{
    uint32_t want, elem;
    memset(out, 0, sizeof *out);
    if (f->dim < 1 || f->dim > VS_MAX_DIM)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "cuda: dim %u is outside 1..%u", f->dim,
                             VS_MAX_DIM);
    switch (f->storage) {
    case VS_STORAGE_F32: want = f->dim * 4u; elem = 4; break;
    case VS_STORAGE_F16: want = f->dim * 2u; elem = 2; break;
    case VS_STORAGE_I8: want = f->dim; elem = 1; break;
    case VS_STORAGE_B1:
        want = vs_b1_bits(f->dim) / 8u;
        elem = 0;
        if (f->b1_words * 8u != want)
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                 "cuda: b1 field of dim %u has %u words, expected %u", f->dim,
                                 f->b1_words, want / 8u);
        out->bits = vs_b1_bits(f->dim);
        break;
    default:
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "cuda: unknown storage %d",
                             (int)f->storage);
    }
    if (f->code_bytes != want)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "cuda: %s field of dim %u has %u code bytes, expected %u",
                             storage_name(f->storage), f->dim, f->code_bytes, want);
    out->code_bytes = want;
    out->code_pad = (want + 15u) & ~15u;
    /* i8: middle and scale; f16: its power-of-two scale; f32: norm2 for l2; b1: nothing */
    out->has_consts = f->storage == VS_STORAGE_I8 || f->storage == VS_STORAGE_F16 ||
                      (f->storage == VS_STORAGE_F32 && f->metric == VS_METRIC_L2);
    out->stride = out->code_pad + (out->has_consts ? 16u : 0u);
    out->vecs = out->code_pad / 16u;
    out->gemm_k = elem ? out->code_pad / elem : 0u;
    out->qslice = f->storage == VS_STORAGE_F16 ? 32u : 16u;
    return VS_OK;
}

uint32_t vs_cu_chunk_rows(uint32_t core_chunk_rows, uint32_t max_stride)
{
    uint32_t rows = core_chunk_rows ? core_chunk_rows : 65536u;
    uint32_t p = 1;
    while (p < rows && p < (1u << 30)) /* round a non-power of two down, defensively */
        p <<= 1;
    if (p > rows)
        p >>= 1;
    rows = p;
    if (max_stride == 0)
        max_stride = 16;
    while (rows > 64u && (uint64_t)rows * max_stride > (64ull << 20))
        rows >>= 1;
    if (rows < 64u)
        rows = 64u;
    return rows;
}

/* ===== Kernel choice ===== */

vs_cu_path vs_cu_choose_path(uint32_t n_fields, uint32_t nv, uint32_t nq)
{
    return (n_fields == 1 && nv >= 1 && nv <= VS_CU_SMALL_MAX_QV && nq <= VS_CU_SMALL_MAX_QV)
               ? VS_CU_PATH_SMALL
               : VS_CU_PATH_TILE;
}

uint32_t vs_cu_nqv_bucket(uint32_t nv)
{
    uint32_t b = 1;
    while (b < nv && b < VS_CU_SMALL_MAX_QV)
        b <<= 1;
    return b;
}

uint32_t vs_cu_tile_rows(uint64_t nv_total, uint64_t l2_bytes, uint32_t chunk_rows)
{
    uint64_t target, r = 256;
    if (nv_total == 0)
        nv_total = 1;
    if (l2_bytes == 0)
        l2_bytes = 4ull << 20;
    target = (l2_bytes / 2) / (nv_total * 4u);
    while (r * 2 <= target && r < 65536)
        r *= 2;
    if (chunk_rows && r > chunk_rows)
        r = chunk_rows;
    return (uint32_t)r;
}

/* ===== Threshold plan ===== */

uint32_t vs_cu_sample_rank(uint32_t k, uint32_t sample, uint64_t n_scan)
{
    double mu, j;
    if (n_scan == 0 || sample == 0)
        return 1;
    mu = (double)k * (double)sample / (double)n_scan;
    j = ceil(mu + 4.0 * sqrt(mu) + 1.0);
    if (j < 1.0)
        j = 1.0;
    if (j > (double)sample)
        j = (double)sample;
    return (uint32_t)j;
}

vs_cu_thr_plan vs_cu_plan_threshold(uint64_t n_scan, uint32_t kmax, uint32_t nq)
{
    vs_cu_thr_plan p = {0, 0};
    uint64_t s0, cap;
    uint32_t j;
    double per;
    if (nq == 0)
        nq = 1;
    if (kmax == 0)
        kmax = 1;
    s0 = 4194304u / nq;
    if (s0 < 4096)
        s0 = 4096;
    if (s0 > 16384)
        s0 = 16384;
    p.capacity = (uint32_t)(n_scan ? (n_scan < UINT32_MAX ? n_scan : UINT32_MAX) : 1);
    if (n_scan <= 2 * s0)
        return p; /* small: every row goes to the buffer */
    j = vs_cu_sample_rank(kmax, (uint32_t)s0, n_scan);
    per = (double)n_scan / (double)s0; /* rows per sampled row */
    cap = (uint64_t)ceil(((double)j + 3.0 * sqrt((double)j) + 2.0) * per);
    if (cap < 2ull * kmax)
        cap = 2ull * kmax;
    if (cap < 1024)
        cap = 1024;
    if (cap * 2 >= n_scan)
        return p; /* the buffer would hold half the rows anyway: no sampling */
    p.sample = (uint32_t)s0;
    p.capacity = (uint32_t)cap;
    return p;
}

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void vs_cu_sample_positions(uint64_t n, uint32_t s, uint64_t seed, uint32_t *out)
{
    /* n < 2^32 (slots are uint32), so i * n fits 64 bits */
    for (uint32_t i = 0; i < s; i++) {
        uint64_t lo = (uint64_t)i * n / s, hi = (uint64_t)(i + 1) * n / s;
        out[i] = (uint32_t)(lo + (hi > lo ? mix64(seed ^ ((uint64_t)i << 1)) % (hi - lo) : 0));
    }
}

/* ===== Groups ===== */

/* Fields a query reads, as a bitmask. */
static uint32_t query_fields(const vs_scan_query *q)
{
    uint32_t m = 0;
    for (uint32_t t = 0; t < q->n_terms; t++)
        m |= 1u << q->terms[t].field;
    return m;
}

typedef struct group_key {
    uint32_t list;
    const uint32_t *slots;
    uint64_t count;
    uint32_t fmask; /* the field for a one-field group, 0 for multi-field */
} group_key;

uint32_t vs_cu_group_qv_map(const vs_scan_batch *b, const uint32_t *order, const vs_cu_group *g,
                            uint32_t f, uint32_t *map, uint32_t *src)
{
    uint32_t n = b->fq[f].n, c = 0;
    for (uint32_t i = 0; i < n; i++)
        map[i] = UINT32_MAX;
    for (uint32_t i = 0; i < g->n; i++) {
        const vs_scan_query *q = &b->queries[order[g->first + i]];
        for (uint32_t t = 0; t < q->n_terms; t++) {
            const vs_scan_term *tm = &q->terms[t];
            if (tm->field != f)
                continue;
            for (uint32_t v = 0; v < tm->n_vecs && tm->first + v < n; v++)
                map[tm->first + v] = 0;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (map[i] == UINT32_MAX)
            continue;
        map[i] = c;
        if (src)
            src[c] = i;
        c++;
    }
    return c;
}

vs_err vs_cu_plan_groups(const vs_scan_batch *b, uint32_t slot_limit, uint32_t max_queries,
                         uint32_t *order, uint8_t *as_bitmap, vs_cu_group *groups,
                         uint32_t *n_groups, vs_status *st)
{
    uint32_t nq = b->n_queries, ng = 0, maxv = 0;
    uint32_t *gid = NULL, *fill = NULL, *map = NULL;
    group_key *keys = NULL;
    vs_err err = VS_OK;
    *n_groups = 0;
    if (nq == 0)
        return VS_OK;
    if (max_queries == 0)
        max_queries = 1;
    gid = malloc(nq * sizeof *gid);
    keys = malloc(nq * sizeof *keys);
    fill = calloc(nq, sizeof *fill);
    for (uint32_t f = 0; f < VS_MAX_FIELDS; f++)
        if (b->fq[f].n > maxv)
            maxv = b->fq[f].n;
    map = malloc((maxv ? maxv : 1) * sizeof *map);
    if (!gid || !keys || !fill || !map) {
        err = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cuda: out of host memory planning %u queries", nq);
        goto out;
    }
    /* one key per query; a group takes queries of its key until it holds max_queries */
    for (uint32_t q = 0; q < nq; q++) {
        const vs_scan_query *sq = &b->queries[q];
        const vs_slotset *a = sq->allowed;
        uint32_t fm = query_fields(sq), g;
        group_key k = {0, NULL, 0, (fm & (fm - 1)) ? 0 : fm};
        as_bitmap[q] = 0;
        if (a && a->kind == VS_SLOTSET_LIST) {
            if (a->count > slot_limit / 4u) {
                as_bitmap[q] = 1;
            } else {
                k.list = 1;
                k.slots = a->slots;
                k.count = a->count;
            }
        }
        for (g = 0; g < ng; g++)
            if (fill[g] < max_queries && keys[g].list == k.list && keys[g].slots == k.slots &&
                keys[g].count == k.count && keys[g].fmask == k.fmask)
                break;
        if (g == ng) {
            keys[ng] = k;
            memset(&groups[ng], 0, sizeof groups[ng]);
            groups[ng].list = k.list;
            groups[ng].slots = k.slots;
            groups[ng].count = k.count;
            ng++;
        }
        gid[q] = g;
        fill[g]++;
        groups[g].n_fields |= fm; /* the field mask, for now */
    }
    /* queries in order, grouped */
    for (uint32_t g = 0, pos = 0; g < ng; g++) {
        groups[g].first = pos;
        groups[g].n = 0;
        pos += fill[g];
    }
    for (uint32_t q = 0; q < nq; q++) {
        vs_cu_group *g = &groups[gid[q]];
        order[g->first + g->n++] = q;
    }
    for (uint32_t g = 0; g < ng; g++) {
        vs_cu_group *gr = &groups[g];
        uint32_t fm = gr->n_fields;
        gr->n_fields = 0;
        gr->nv_total = 0;
        for (uint32_t f = 0; f < VS_MAX_FIELDS; f++) {
            if (!(fm & (1u << f)))
                continue;
            gr->fields[gr->n_fields] = f;
            gr->nv[gr->n_fields] = vs_cu_group_qv_map(b, order, gr, f, map, NULL);
            gr->nv_total += gr->nv[gr->n_fields];
            gr->n_fields++;
        }
        gr->path = vs_cu_choose_path(gr->n_fields, gr->nv_total, gr->n);
    }
    *n_groups = ng;
out:
    free(gid);
    free(keys);
    free(fill);
    free(map);
    return err;
}

/* ===== The selection driver ===== */

/* One round for act[0 .. n): scan, sort, emit the settled, set the thresholds of the others and
 * append them to next. */
static vs_err select_round(const vs_cu_select_ops *ops, const uint32_t *act, uint32_t n,
                           uint32_t cap, const uint32_t *k, uint32_t *cnt, uint8_t *finite,
                           uint8_t *mode, uint32_t *rank, uint8_t *which, uint32_t *next,
                           uint32_t *n_next, vs_cu_select_stats *stats, vs_status *st)
{
    vs_err err = ops->scan(ops->ctx, 0, act, n, cap, cnt, finite, st);
    if (err)
        return err;
    if ((err = ops->sort(ops->ctx, act, n, cap, st)))
        return err;
    int again = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t q = act[i];
        mode[i] = VS_CU_THR_KEEP;
        rank[i] = 0;
        which[i] = 0;
        if (cnt[i] > cap) { /* the buffer holds cap >= k real candidates: its k-th is safe */
            mode[i] = VS_CU_THR_RANK;
            rank[i] = k[q];
            stats->overflows++;
        } else if (cnt[i] < k[q] && finite[i]) { /* the threshold was too high */
            mode[i] = VS_CU_THR_NEG_INF;
            stats->underflows++;
        } else {
            which[i] = 1;
            continue;
        }
        next[(*n_next)++] = q;
        again = 1;
    }
    if ((err = ops->emit(ops->ctx, act, n, cap, which, st)))
        return err;
    if (again && (err = ops->set_thr(ops->ctx, act, n, cap, mode, rank, st)))
        return err;
    return VS_OK;
}

vs_err vs_cu_select_run(const vs_cu_select_ops *ops, uint32_t nq, const uint32_t *k,
                        uint64_t n_scan, vs_cu_thr_plan plan, uint64_t max_entries,
                        vs_cu_select_stats *stats, vs_status *st)
{
    vs_cu_select_stats local;
    uint32_t *act = NULL, *next = NULL, *cnt = NULL, *rank = NULL, n_act = nq, kmax = 1;
    uint8_t *finite = NULL, *mode = NULL, *which = NULL;
    uint64_t cap;
    vs_err err = VS_OK;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    if (nq == 0)
        return VS_OK;
    act = malloc(nq * sizeof *act);
    next = malloc(nq * sizeof *next);
    cnt = malloc(nq * sizeof *cnt);
    rank = malloc(nq * sizeof *rank);
    finite = malloc(nq);
    mode = malloc(nq);
    which = malloc(nq);
    if (!act || !next || !cnt || !rank || !finite || !mode || !which) {
        err = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cuda: out of host memory selecting %u queries", nq);
        goto out;
    }
    for (uint32_t q = 0; q < nq; q++) {
        act[q] = q;
        if (k[q] > kmax)
            kmax = k[q];
    }
    if (max_entries == 0)
        max_entries = 1;

    /* thresholds: from the sample, or none */
    if (plan.sample) {
        uint64_t per = max_entries / plan.sample;
        if (per == 0)
            per = 1;
        if (per > nq)
            per = nq;
        for (uint32_t s = 0; s < nq; s += (uint32_t)per) {
            uint32_t n = nq - s < per ? nq - s : (uint32_t)per;
            if ((err = ops->scan(ops->ctx, 1, act + s, n, plan.sample, NULL, NULL, st)))
                goto out;
            if ((err = ops->sort(ops->ctx, act + s, n, plan.sample, st)))
                goto out;
            for (uint32_t i = 0; i < n; i++) {
                mode[i] = VS_CU_THR_RANK;
                rank[i] = vs_cu_sample_rank(k[act[s + i]], plan.sample, n_scan);
            }
            if ((err = ops->set_thr(ops->ctx, act + s, n, plan.sample, mode, rank, st)))
                goto out;
        }
    } else {
        for (uint32_t i = 0; i < nq; i++) {
            mode[i] = VS_CU_THR_NEG_INF;
            rank[i] = 0;
        }
        if ((err = ops->set_thr(ops->ctx, act, nq, 1, mode, rank, st)))
            goto out;
    }

    cap = plan.capacity ? plan.capacity : 1;
    if (cap < kmax && cap < n_scan)
        cap = kmax < n_scan ? kmax : n_scan; /* the overflow rule needs cap >= k */
    for (uint32_t round = 0; n_act > 0; round++) {
        uint32_t n_next = 0;
        if (round >= 3 || cap >= n_scan) { /* cannot overflow any more */
            if (round >= 3 && cap < n_scan)
                stats->exhaustive += n_act;
            cap = n_scan ? n_scan : 1;
        }
        if (round >= 8) {
            err = vs_status_set(st, VS_ERR_INTERNAL, "cuda: selection did not settle after %u rounds", round);
            goto out;
        }
        uint64_t per = max_entries / cap;
        if (per == 0)
            per = 1;
        if (per > n_act)
            per = n_act;
        for (uint32_t s = 0; s < n_act; s += (uint32_t)per) {
            uint32_t n = n_act - s < per ? n_act - s : (uint32_t)per;
            stats->scans++;
            err = select_round(ops, act + s, n, (uint32_t)cap, k, cnt, finite, mode, rank, which,
                               next, &n_next, stats, st);
            if (err)
                goto out;
        }
        memcpy(act, next, n_next * sizeof *act);
        n_act = n_next;
    }
out:
    free(act);
    free(next);
    free(cnt);
    free(rank);
    free(finite);
    free(mode);
    free(which);
    return err;
}
