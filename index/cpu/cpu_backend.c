/*
 * cpu_backend.c: the CPU backend: rows in RAM, scanned in tiles against the whole query batch.
 *
 * Storage. Each field keeps its encoded rows in chunks of chunk_rows rows, allocated when the index
 * grows and never moved (large allocations are mapped lazily by the C library, so an unused tail of
 * the last chunk costs address space, not memory). Rows are row-major. An i8 row is its codes
 * (padded to a multiple of 4) followed by its three constants (middle, scale, norm2): d + 12 bytes
 * read together, so a scan reads exactly the read floor's bytes and a gather of one row touches only
 * that row's cache lines. The other storages keep their constants in three arrays per chunk.
 *
 * Scan. The batch is cut into passes: a pass is a set of queries whose vectors, per field, fit a
 * query block (QBLOCK vectors), over one row source: every slot (queries without a filter or with a
 * bitmap), or the slots of one sorted list (queries that share a gather list). The pass's row
 * source is split between threads; each thread walks tiles of TILE rows: for each field it scores
 * all of the pass's vectors of that field against the tile (sgemm for f32/f16 when the block is
 * large, the kernels for i8, b1 and small blocks), turns raw dots into metric scores, and then for
 * each query combines terms and offers the rows that beat the query's threshold to its heap. Scores
 * never leave the tile buffer (QBLOCK x TILE floats, in L2), so there is no B x N matrix. Threads
 * keep their own heaps; the pass ends by merging them into the caller's candidates.
 *
 * Gather. A list source copies the listed rows of a tile into a scratch tile of the same layout and
 * runs the same kernels, so a filter that passes 1% of items reads about 1% of the rows; the rows a
 * few ahead are prefetched, since each is a random read.
 *
 * Routes. Which filtered queries fold into the dense pass (bitmap checked in the epilogue), are
 * scored there only on their own allowed rows (sparse), or gather (a bitmap turned into a list
 * here) is decided per batch from a cost model in bytes read, sequential against random, and
 * scoring work: see "Scan: planning".
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef VS_HAVE_BLAS
#include <cblas.h>
#endif

#include "../backend.h"
#include "../quant.h"
#include "../topk.h"
#include "kernels.h"

#define TILE 256      /* rows per tile: a multiple of 64 (bitmap words) and 16 (i8 blocks) */
#define QBLOCK 512    /* query vectors per field per pass: 512 x TILE floats = 512 KiB of scores */
#define SMALL_M 8     /* up to this many vectors, f32/f16 use the streaming kernels, not sgemm */
/* Below this many bytes of rows a pass runs on the calling thread alone: starting threads would
 * cost more than they save. */
#define MIN_BYTES_PER_THREAD (1u << 20)
/* Sparse queries (see "Scan: planning") are scored per span of this many rows, not per tile: at 1%
 * passing a tile holds 2-3 of a query's rows, too few to pay for the calls, and a span of 4096 i8
 * rows (d = 128: 560 KB) still sits in L2 while the batch's sparse queries pick their rows out of it. */
#define SPARSE_SPAN (16 * TILE)
/* The planner's costs, in units of one row read sequentially (see "Scan: planning"). */
/* A listed row, read at random, in sequential rows: a 10% list of 1M i8 rows took 2.2 ms to
 * gather with prefetching against 5.7 ms for the whole scan (3.8), a 20% list 3.3, a 50% list 2.6
 * (denser lists read more neighbouring lines). So one query gathers below about 25% passing. */
#define COST_GATHER_ROW 4.0
/* Scoring one (row, query) pair in the blocked kernels: a batch of 256 unfiltered queries took
 * 115 ms against 5.7 ms for one, 20 units per row for 256 queries. */
#define COST_PAIR 0.08
/* Scoring one allowed (row, query) pair of a sparse query: the row copied out of the cached span
 * and scored alone (one horizontal sum per row, constants unpacked, the threshold scan): 256
 * queries with their own 10% filters took 350 ms for 25.6M pairs, 2.4 units a pair, 30 times a
 * blocked pair. So a batch's own filters go sparse below about 3% passing and fold above. */
#define COST_SPARSE_PAIR 2.4

typedef struct cpu_field {
    vs_field_layout l;
    uint32_t row_bytes; /* bytes per row in the chunk layout (i8: codes and constants) */
    uint32_t dpad;      /* i8: dim rounded up to 4 */
    uint8_t **codes;    /* per chunk */
    float **consts;     /* per chunk: middle[rows], then scale[rows], then norm2[rows]; NULL for i8 */
} cpu_field;

typedef struct cpu_store {
    uint32_t n_fields;
    cpu_field f[VS_MAX_FIELDS];
    uint32_t chunk_shift;
    uint32_t n_chunks, chunks_cap;
    uint32_t n_threads;
    const vs_cpu_kernels *k;
} cpu_store;

static inline uint32_t chunk_rows(const cpu_store *s) { return 1u << s->chunk_shift; }

/* ===== Storage ===== */

static vs_err cpu_create(const vs_field_layout *fields, uint32_t n_fields, const vs_index_options *opt,
                         void **out, vs_status *st)
{
    cpu_store *s = calloc(1, sizeof *s);
    if (!s)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    s->n_fields = n_fields;
    while ((1u << s->chunk_shift) < opt->chunk_rows)
        s->chunk_shift++;
    for (uint32_t f = 0; f < n_fields; f++) {
        cpu_field *cf = &s->f[f];
        cf->l = fields[f];
        cf->dpad = (fields[f].dim + 3) & ~3u;
        cf->row_bytes = fields[f].storage == VS_STORAGE_I8 ? cf->dpad + 3 * sizeof(float) : fields[f].code_bytes;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    s->n_threads = opt->n_threads ? opt->n_threads : (uint32_t)(cores > 0 ? cores : 1);
    if (s->n_threads > 256)
        s->n_threads = 256;
    s->k = vs_cpu_kernels_best();
#ifdef VS_HAVE_BLAS
    /* The backend runs its own threads; each sgemm call must stay on the thread that makes it. */
    openblas_set_num_threads(1);
#endif
    *out = s;
    return VS_OK;
}

static void cpu_destroy(void *store)
{
    cpu_store *s = store;
    if (!s)
        return;
    for (uint32_t f = 0; f < s->n_fields; f++) {
        for (uint32_t c = 0; c < s->n_chunks; c++) {
            free(s->f[f].codes[c]);
            free(s->f[f].consts[c]);
        }
        free(s->f[f].codes);
        free(s->f[f].consts);
    }
    free(s);
}

/* A zeroed block of n bytes. calloc maps large blocks straight from the kernel, whose pages are
 * zero already and become resident only when a row is written: the unused tail of the last chunk
 * costs no memory. (The kernels use unaligned loads, so no alignment is asked for.) */
static void *alloc_zeroed(size_t n) { return calloc(1, n); }

static vs_err cpu_reserve(void *store, uint32_t n_slots, vs_status *st)
{
    cpu_store *s = store;
    uint32_t rows = chunk_rows(s);
    while ((uint64_t)s->n_chunks * rows < n_slots) {
        if (s->n_chunks == s->chunks_cap) {
            uint32_t cap = s->chunks_cap ? s->chunks_cap * 2 : 4;
            for (uint32_t f = 0; f < s->n_fields; f++) {
                uint8_t **c = realloc(s->f[f].codes, cap * sizeof *c);
                if (c)
                    s->f[f].codes = c;
                float **k = realloc(s->f[f].consts, cap * sizeof *k);
                if (k)
                    s->f[f].consts = k;
                if (!c || !k)
                    return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory growing chunks");
            }
            s->chunks_cap = cap;
        }
        uint32_t c = s->n_chunks;
        for (uint32_t f = 0; f < s->n_fields; f++) {
            cpu_field *cf = &s->f[f];
            cf->codes[c] = alloc_zeroed((size_t)rows * cf->row_bytes);
            bool inline_consts = cf->l.storage == VS_STORAGE_I8;
            cf->consts[c] = inline_consts ? NULL : alloc_zeroed((size_t)rows * 3 * sizeof(float));
            if (!cf->codes[c] || (!inline_consts && !cf->consts[c])) {
                for (uint32_t g = 0; g <= f; g++) {
                    free(s->f[g].codes[c]);
                    free(s->f[g].consts[c]);
                }
                return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                                     "out of memory: %zu bytes for rows %u..%u of field %u",
                                     (size_t)rows * cf->row_bytes, c * rows, (c + 1) * rows - 1, f);
            }
        }
        s->n_chunks++;
    }
    return VS_OK;
}

static vs_err cpu_write_rows(void *store, uint32_t field, const uint32_t *slots, size_t n,
                             const void *codes, const vs_row_consts *consts, vs_status *st)
{
    cpu_store *s = store;
    cpu_field *cf = &s->f[field];
    uint32_t rows = chunk_rows(s), mask = rows - 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t slot = slots[i], c = slot >> s->chunk_shift, r = slot & mask;
        if (c >= s->n_chunks)
            return vs_status_set(st, VS_ERR_INTERNAL, "slot %u written before it was reserved", slot);
        const uint8_t *src = (const uint8_t *)codes + i * cf->l.code_bytes;
        uint8_t *dst = cf->codes[c] + (size_t)r * cf->row_bytes;
        memcpy(dst, src, cf->l.code_bytes);
        if (cf->l.storage == VS_STORAGE_I8) {
            float k3[3] = {consts[i].middle, consts[i].scale, consts[i].norm2};
            memset(dst + cf->l.dim, 0, cf->dpad - cf->l.dim);
            memcpy(dst + cf->dpad, k3, sizeof k3);
            continue;
        }
        cf->consts[c][r] = consts[i].middle;
        cf->consts[c][rows + r] = consts[i].scale;
        cf->consts[c][2 * (size_t)rows + r] = consts[i].norm2;
    }
    return VS_OK;
}

static void cpu_read_row(void *store, uint32_t field, uint32_t slot, float *out)
{
    cpu_store *s = store;
    const cpu_field *cf = &s->f[field];
    uint32_t c = slot >> s->chunk_shift, r = slot & (chunk_rows(s) - 1);
    const uint8_t *buf = cf->codes[c] + (size_t)r * cf->row_bytes;
    /* decode with the same arithmetic as encode.c's vs_decode_row */
    switch (cf->l.storage) {
    case VS_STORAGE_F32: memcpy(out, buf, cf->l.dim * sizeof(float)); break;
    case VS_STORAGE_F16:
        s->k->f16_to_f32((const uint16_t *)buf, out, cf->l.dim);
        for (uint32_t k = 0; k < cf->l.dim; k++)
            out[k] *= cf->consts[c][chunk_rows(s) + r];
        break;
    case VS_STORAGE_I8: {
        float k3[3];
        memcpy(k3, buf + cf->dpad, sizeof k3);
        for (uint32_t k = 0; k < cf->l.dim; k++)
            out[k] = k3[0] + k3[1] * ((const int8_t *)buf)[k];
        break;
    }
    case VS_STORAGE_B1: memset(out, 0, cf->l.dim * sizeof(float)); break;
    }
}

static size_t cpu_field_bytes(void *store, uint32_t field)
{
    cpu_store *s = store;
    const cpu_field *cf = &s->f[field];
    size_t per_row = cf->row_bytes + (cf->l.storage == VS_STORAGE_I8 ? 0 : 3 * sizeof(float));
    return (size_t)s->n_chunks * chunk_rows(s) * per_row;
}

/* ===== Scan: passes ===== */

/* The query vectors of one field in a pass, gathered contiguous for the kernels. */
typedef struct pass_field {
    uint32_t m;        /* vectors */
    uint32_t m_dense;  /* the first m_dense belong to queries scored on every row of a tile */
    float *f;          /* m x dim */
    int8_t *c;         /* i8: m x dpad, zero padded */
    int32_t *csum;     /* i8 */
    float *scale, *sum, *norm2;
    uint64_t *bits;    /* b1: m x words */
} pass_field;

/* A term of a pass query, with its vectors renumbered inside the pass. */
typedef struct pass_term {
    uint32_t field, first, n_vecs;
    float weight;
} pass_term;

typedef struct pass_query {
    uint32_t q; /* index in the batch */
    uint32_t n_terms;
    pass_term terms[VS_MAX_TERMS];
    vs_combine combine;
    const vs_slotset *allowed; /* bitmap or NULL in a dense pass; the list itself in a gather pass */
    bool sparse;               /* dense pass: scored only on its allowed rows (see "Planning") */
    uint32_t k;
} pass_query;

typedef struct pass {
    const cpu_store *s;
    const vs_slot_view *view;
    uint32_t n_queries;
    pass_query *queries;
    pass_field pf[VS_MAX_FIELDS];
    bool field_used[VS_MAX_FIELDS];
    const uint32_t *list; /* gather pass: the sorted slots, else NULL */
    uint64_t list_len;
    uint32_t kmax;
    bool any_sparse;
} pass;

/* One thread's share of a pass. */
typedef struct worker {
    const pass *p;
    uint64_t begin, end; /* slots [begin, end) of a dense pass, or list positions of a gather pass */
    vs_topk *heaps;      /* one per pass query */
    vs_cand *heap_mem;
    uint64_t *cursor;    /* per pass query: a sparse query's next position in its list */
    vs_err err;
} worker;

/* Scratch for one tile, owned by a worker thread. */
typedef struct tile_scratch {
    float *scores[VS_MAX_FIELDS]; /* m x TILE metric scores per field */
    int32_t *iscores;             /* m x TILE integer dots (b1) */
    float *xf;                    /* TILE x dim: f16 rows as f32 for sgemm */
    uint8_t *gathered[VS_MAX_FIELDS];
    float *gconsts[VS_MAX_FIELDS];        /* 3 x TILE: middle, scale, norm2 of gathered rows */
    uint32_t *cand;                       /* TILE: rows above a query's threshold */
    uint32_t *sslots;                     /* SPARSE_SPAN: a sparse query's allowed slots in a span */
    int8_t *i8scratch;                    /* the i8 kernel's repacked block */
    float *combined;              /* TILE */
    uint8_t *present;             /* TILE */
} tile_scratch;

static void scratch_free(tile_scratch *t, uint32_t n_fields)
{
    for (uint32_t f = 0; f < n_fields; f++) {
        free(t->scores[f]);
        free(t->gathered[f]);
        free(t->gconsts[f]);
    }
    free(t->iscores);
    free(t->cand);
    free(t->sslots);
    free(t->i8scratch);
    free(t->xf);
    free(t->combined);
    free(t->present);
}

/* Allocates what this pass's fields and routes use, and only that: the scratch is allocated per
 * worker per search, and a batch-1 scan of a small index pays for every allocation (one of 128 KiB
 * or more is a fresh mapping, faulted in page by page). */
static bool scratch_alloc(tile_scratch *t, const pass *p)
{
    memset(t, 0, sizeof *t);
    uint32_t max_ib = 0, max_f16 = 0, max_dpad = 0;
    for (uint32_t f = 0; f < p->s->n_fields; f++) {
        if (!p->field_used[f])
            continue;
        const cpu_field *cf = &p->s->f[f];
        uint32_t m = p->pf[f].m, dim = cf->l.dim;
        if (cf->l.storage == VS_STORAGE_B1 && m > max_ib)
            max_ib = m;
        if (cf->l.storage == VS_STORAGE_F16 && m > SMALL_M && dim > max_f16)
            max_f16 = dim;
        if (cf->l.storage == VS_STORAGE_I8 && cf->dpad > max_dpad)
            max_dpad = cf->dpad;
        t->scores[f] = malloc((size_t)m * TILE * sizeof(float));
        if (!t->scores[f])
            return false;
        if (p->list || p->any_sparse) {
            t->gathered[f] = aligned_alloc(64, (size_t)TILE * cf->row_bytes + 64);
            t->gconsts[f] = malloc(3 * TILE * sizeof(float));
            if (!t->gathered[f] || !t->gconsts[f])
                return false;
        }
    }
    bool ok = true;
    if (max_ib)
        ok &= (t->iscores = malloc((size_t)max_ib * TILE * sizeof(int32_t))) != NULL;
    if (max_f16)
        ok &= (t->xf = malloc((size_t)TILE * max_f16 * sizeof(float))) != NULL;
    if (max_dpad)
        ok &= (t->i8scratch = malloc(VS_I8_SCRATCH(max_dpad))) != NULL;
    if (p->any_sparse)
        ok &= (t->sslots = malloc(SPARSE_SPAN * sizeof(uint32_t))) != NULL;
    t->combined = malloc(TILE * sizeof(float));
    t->present = malloc(TILE);
    t->cand = malloc(TILE * sizeof(uint32_t));
    return ok && t->combined && t->present && t->cand;
}

/* sgemm: out (m x n, leading dim ld) = Q (m x d) . X (n x d)^T. */
static void sgemm_qxt(const float *q, uint32_t m, const float *x, uint32_t n, uint32_t d, float *out,
                      uint32_t ld)
{
#ifdef VS_HAVE_BLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)d, 1.0f, q, (int)d, x,
                (int)d, 0.0f, out, (int)ld);
#else
    vs_cpu_kernels_best()->f32_tile(x, n, d, q, m, out, ld);
#endif
}

/* Vectors [first, first + m) of a pass field, as a pass field of their own (pointers into pf). */
static pass_field field_view(const pass_field *pf, const cpu_field *cf, uint32_t first, uint32_t m)
{
    pass_field v = {.m = m, .f = pf->f + (size_t)first * cf->l.dim, .norm2 = pf->norm2 + first};
    if (pf->c) {
        v.c = pf->c + (size_t)first * cf->dpad;
        v.csum = pf->csum + first;
        v.scale = pf->scale + first;
        v.sum = pf->sum + first;
    }
    if (pf->bits)
        v.bits = pf->bits + (size_t)first * cf->l.b1_words;
    return v;
}

/* Scores the vectors of pf (field f) against n rows: codes in chunk layout (a chunk's rows or a
 * gathered tile); the rows' scale and norm2 are arrays alongside (NULL for i8, whose rows carry
 * their constants). Leaves metric scores in out, pf->m x TILE. */
static void score_field(const pass *p, uint32_t f, const pass_field *pf, float *out, const uint8_t *codes,
                        const float *scale, const float *norm2, uint32_t n, tile_scratch *t)
{
    const cpu_field *cf = &p->s->f[f];
    const vs_cpu_kernels *k = p->s->k;
    uint32_t d = cf->l.dim, m = pf->m;
    bool l2 = cf->l.metric == VS_METRIC_L2;
    switch (cf->l.storage) {
    case VS_STORAGE_F32:
        if (m <= SMALL_M)
            k->f32_tile((const float *)codes, n, d, pf->f, m, out, TILE);
        else
            sgemm_qxt(pf->f, m, (const float *)codes, n, d, out, TILE);
        break;
    case VS_STORAGE_F16:
        if (m <= SMALL_M) {
            k->f16_tile((const uint16_t *)codes, n, d, pf->f, m, out, TILE);
        } else {
            k->f16_to_f32((const uint16_t *)codes, t->xf, (size_t)n * d);
            sgemm_qxt(pf->f, m, t->xf, n, d, out, TILE);
        }
        for (uint32_t j = 0; j < m; j++)
            for (uint32_t r = 0; r < n; r++)
                out[(size_t)j * TILE + r] *= scale[r];
        break;
    case VS_STORAGE_I8: {
        /* the rows carry their constants: the kernel reads each row once and writes its scores */
        vs_i8_queries q = {.c = pf->c, .csum = pf->csum, .scale = pf->scale, .sum = pf->sum,
                           .norm2 = pf->norm2, .m = m};
        k->i8_scores((const int8_t *)codes, cf->row_bytes, n, cf->dpad, &q, l2, out, TILE, t->i8scratch);
        return;
    }
    case VS_STORAGE_B1: {
        uint32_t bits = cf->l.b1_words * 64;
        k->b1_tile((const uint64_t *)codes, n, cf->l.b1_words, pf->bits, m, t->iscores, TILE);
        for (uint32_t j = 0; j < m; j++)
            for (uint32_t r = 0; r < n; r++)
                out[(size_t)j * TILE + r] = vs_b1_score(bits, (uint32_t)t->iscores[(size_t)j * TILE + r]);
        return;
    }
    }
    if (l2)
        for (uint32_t j = 0; j < m; j++)
            for (uint32_t r = 0; r < n; r++)
                out[(size_t)j * TILE + r] =
                    vs_score_from_dot(1, out[(size_t)j * TILE + r], pf->norm2[j], norm2[r]);
}

/* Slot of tile row r: base + r in a dense tile, slots[r] in a gathered one. */
static inline uint32_t tile_slot(uint32_t base, const uint32_t *slots, uint32_t r)
{
    return slots ? slots[r] : base + r;
}

static inline bool has_bit(const uint64_t *w, uint32_t s) { return (w[s >> 6] >> (s & 63)) & 1u; }

/* Offers tile rows to one query's heap: combines its terms, checks presence and the filter. */
static void offer_tile(const pass *p, const pass_query *pq, uint32_t base, const uint32_t *slots,
                       uint32_t n, tile_scratch *t, vs_topk *h)
{
    const vs_slot_view *v = p->view;
    const vs_slotset *allowed = slots ? NULL : pq->allowed; /* a gathered tile is the list */
    /* plain KNN, the hot path: one vector, and a score that is the term's own (SUM divides the
     * weight back out; MAX keeps it, so it takes the general path unless the weight is 1) */
    if (pq->n_terms == 1 && pq->terms[0].n_vecs == 1 &&
        (pq->combine == VS_COMBINE_SUM || pq->terms[0].weight == 1.0f)) {
        const pass_term *pt = &pq->terms[0];
        const float *sc = t->scores[pt->field] + (size_t)pt->first * TILE;
        const uint64_t *has = v->has[pt->field];
        /* the SIMD pass finds the few rows at or above the threshold; the threshold only rises
         * while they are offered, so a row it listed may no longer enter (the heap checks) */
        uint32_t nc = p->s->k->above(sc, n, h->thr, t->cand);
        for (uint32_t i = 0; i < nc; i++) {
            uint32_t r = t->cand[i];
            if (sc[r] < h->thr)
                continue;
            uint32_t s = tile_slot(base, slots, r);
            if (!has_bit(has, s) || (allowed && !vs_slotset_bitmap_has(allowed, s)))
                continue;
            vs_topk_offer(h, sc[r], s, vs_slot_view_id(v, s));
        }
        return;
    }
    float *comb = t->combined;
    for (uint32_t r = 0; r < n; r++) {
        uint32_t s = tile_slot(base, slots, r);
        float num = 0, den = 0, best = -INFINITY;
        bool any = false;
        for (uint32_t ti = 0; ti < pq->n_terms; ti++) {
            const pass_term *pt = &pq->terms[ti];
            if (!has_bit(v->has[pt->field], s))
                continue;
            const float *sc = t->scores[pt->field] + (size_t)pt->first * TILE + r;
            float ts = sc[0];
            for (uint32_t j = 1; j < pt->n_vecs; j++)
                ts = sc[(size_t)j * TILE] > ts ? sc[(size_t)j * TILE] : ts;
            num += pt->weight * ts;
            den += pt->weight;
            best = pt->weight * ts > best ? pt->weight * ts : best;
            any = true;
        }
        t->present[r] = any;
        comb[r] = pq->combine == VS_COMBINE_MAX ? best : (any ? num / den : 0.0f);
    }
    for (uint32_t r = 0; r < n; r++) {
        if (!t->present[r] || comb[r] < h->thr)
            continue;
        uint32_t s = tile_slot(base, slots, r);
        if (allowed && !vs_slotset_bitmap_has(allowed, s))
            continue;
        vs_topk_offer(h, comb[r], s, vs_slot_view_id(v, s));
    }
}

/* Whether any live slot in [base, base + n) has a field used by the pass (skips empty tiles). */
static bool tile_has_rows(const pass *p, uint32_t base, uint32_t n)
{
    for (uint32_t w = base >> 6; w < (base + n + 63) >> 6; w++)
        if (p->view->live[w])
            return true;
    return false;
}

/* How many listed rows ahead of the copy the gather asks the memory system for. A listed row is a
 * random access: without a hint the core waits a DRAM latency (~100 ns) per row with only a few
 * misses in flight, and 10% of 1M i8 rows (d = 128) took 3.1 ms sorted, against 6 ms for the whole
 * sequential scan. Asking 16 rows (about 50 lines) ahead keeps enough misses in flight to turn the
 * latency bound into a bandwidth bound. */
#define GATHER_PREFETCH 16

/* Asks for the cache lines of one row of field f at slot (every line it spans). */
static inline void prefetch_row(const cpu_store *s, const cpu_field *cf, uint32_t slot)
{
    const uint8_t *row = cf->codes[slot >> s->chunk_shift] + (size_t)(slot & (chunk_rows(s) - 1)) * cf->row_bytes;
    for (uint32_t b = 0; b < cf->row_bytes; b += 64)
        __builtin_prefetch(row + b);
    __builtin_prefetch(row + cf->row_bytes - 1);
}

/* Copies the rows of field f at slots[0 .. n) into the gather scratch; slots[n .. avail) are the
 * next rows to come, prefetched while these are copied. */
static void gather_rows(const pass *p, uint32_t f, const uint32_t *slots, uint32_t n, uint64_t avail,
                        tile_scratch *t)
{
    const cpu_store *s = p->s;
    const cpu_field *cf = &s->f[f];
    uint32_t mask = chunk_rows(s) - 1;
    for (uint32_t r = 0; r < n; r++) {
        if (r + GATHER_PREFETCH < avail)
            prefetch_row(s, cf, slots[r + GATHER_PREFETCH]);
        uint32_t slot = slots[r], c = slot >> s->chunk_shift, rr = slot & mask;
        memcpy(t->gathered[f] + (size_t)r * cf->row_bytes, cf->codes[c] + (size_t)rr * cf->row_bytes,
               cf->row_bytes);
        if (cf->consts[c]) { /* i8 carries its constants in the row */
            t->gconsts[f][r] = cf->consts[c][rr];
            t->gconsts[f][TILE + r] = cf->consts[c][chunk_rows(s) + rr];
            t->gconsts[f][2 * TILE + r] = cf->consts[c][2 * (size_t)chunk_rows(s) + rr];
        }
    }
}

/* Scores vectors [first, first + m) of field f against the gathered scratch's n rows. */
static void score_gathered(const pass *p, uint32_t f, uint32_t first, uint32_t m, uint32_t n, tile_scratch *t)
{
    pass_field v = field_view(&p->pf[f], &p->s->f[f], first, m);
    score_field(p, f, &v, t->scores[f] + (size_t)first * TILE, t->gathered[f], t->gconsts[f] + TILE,
                t->gconsts[f] + 2 * TILE, n, t);
}

/* First position in the sorted list a[0 .. n) whose slot is >= s. */
static uint64_t lower_bound(const uint32_t *a, uint64_t n, uint32_t s)
{
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A sparse query's allowed slots in [base, base + n) into out; returns how many. A list is walked
 * with the worker's cursor (tiles come in ascending order), a bitmap read word by word. */
static uint32_t tile_allowed(const vs_slotset *a, uint64_t *cursor, uint32_t base, uint32_t n, uint32_t *out)
{
    uint32_t k = 0;
    uint64_t end = (uint64_t)base + n;
    if (a->kind == VS_SLOTSET_LIST) {
        uint64_t c = *cursor == UINT64_MAX ? lower_bound(a->slots, a->count, base) : *cursor;
        while (c < a->count && a->slots[c] < base) /* past a tile skipped as empty */
            c++;
        while (c < a->count && a->slots[c] < end)
            out[k++] = a->slots[c++];
        *cursor = c;
        return k;
    }
    if (end > a->n_bits)
        end = a->n_bits;
    for (uint64_t w = base >> 6; w * 64 < end; w++) {
        uint64_t bits = a->words[w];
        if (w * 64 < base)
            bits &= ~0ull << (base - w * 64);
        if (end - w * 64 < 64)
            bits &= (1ull << (end - w * 64)) - 1;
        for (; bits; bits &= bits - 1)
            out[k++] = (uint32_t)(w * 64 + (uint64_t)__builtin_ctzll(bits));
    }
    return k;
}

/* Scores a sparse query on its allowed rows of the span [base, base + n) (n <= SPARSE_SPAN) and
 * offers them, a tile of rows at a time: the rows were just streamed by the pass, or will be read
 * once and then found in cache by the batch's other sparse queries. */
static void sparse_span(const pass *p, const pass_query *pq, uint64_t *cursor, uint32_t base, uint32_t n,
                        tile_scratch *t, vs_topk *h)
{
    uint32_t k = tile_allowed(pq->allowed, cursor, base, n, t->sslots);
    const pass_term *pt = &pq->terms[0]; /* sparse queries have one term (see "Scan: planning") */
    for (uint32_t i = 0; i < k; i += TILE) {
        uint32_t m = k - i < TILE ? k - i : TILE;
        gather_rows(p, pt->field, t->sslots + i, m, k - i, t);
        score_gathered(p, pt->field, pt->first, pt->n_vecs, m, t);
        offer_tile(p, pq, 0, t->sslots + i, m, t, h);
    }
}

static void *worker_run(void *arg)
{
    worker *w = arg;
    const pass *p = w->p;
    const cpu_store *s = p->s;
    tile_scratch t;
    if (!scratch_alloc(&t, p)) {
        scratch_free(&t, s->n_fields);
        w->err = VS_ERR_RESOURCE_EXHAUSTED;
        return NULL;
    }
    uint32_t mask = chunk_rows(s) - 1;
    uint64_t span = w->begin; /* sparse queries: the rows from here to pos are still to score */
    for (uint64_t pos = w->begin; pos < w->end;) {
        uint32_t n, base = 0;
        const uint32_t *slots = NULL;
        if (p->list) {
            n = (uint32_t)(w->end - pos < TILE ? w->end - pos : TILE);
            slots = p->list + pos;
            for (uint32_t f = 0; f < s->n_fields; f++)
                if (p->field_used[f]) {
                    gather_rows(p, f, slots, n, w->end - pos, &t);
                    score_gathered(p, f, 0, p->pf[f].m, n, &t);
                }
        } else {
            base = (uint32_t)pos;
            uint32_t in_chunk = chunk_rows(s) - (base & mask);
            n = TILE < in_chunk ? TILE : in_chunk;
            if (pos + n > w->end)
                n = (uint32_t)(w->end - pos);
            if (!tile_has_rows(p, base, n))
                goto next;
            uint32_t c = base >> s->chunk_shift, r0 = base & mask;
            for (uint32_t f = 0; f < s->n_fields; f++) {
                if (!p->field_used[f] || !p->pf[f].m_dense)
                    continue;
                const cpu_field *cf = &s->f[f];
                const float *k = cf->consts[c];
                size_t rows = chunk_rows(s);
                pass_field v = field_view(&p->pf[f], cf, 0, p->pf[f].m_dense);
                score_field(p, f, &v, t.scores[f], cf->codes[c] + (size_t)r0 * cf->row_bytes,
                            k ? k + rows + r0 : NULL, k ? k + 2 * rows + r0 : NULL, n, &t);
            }
        }
        for (uint32_t qi = 0; qi < p->n_queries; qi++)
            if (!p->queries[qi].sparse)
                offer_tile(p, &p->queries[qi], base, slots, n, &t, &w->heaps[qi]);
    next:
        pos += n;
        if (p->any_sparse && (pos - span + TILE > SPARSE_SPAN || pos >= w->end)) {
            for (uint32_t qi = 0; qi < p->n_queries; qi++)
                if (p->queries[qi].sparse)
                    sparse_span(p, &p->queries[qi], &w->cursor[qi], (uint32_t)span, (uint32_t)(pos - span), &t,
                                &w->heaps[qi]);
            span = pos;
        }
    }
    scratch_free(&t, s->n_fields);
    return NULL;
}

static void pass_free(pass *p)
{
    for (uint32_t f = 0; f < VS_MAX_FIELDS; f++) {
        pass_field *pf = &p->pf[f];
        free(pf->f);
        free(pf->c);
        free(pf->csum);
        free(pf->scale);
        free(pf->sum);
        free(pf->norm2);
        free(pf->bits);
    }
    free(p->queries);
}

/* Gathers the vectors of the pass's queries into contiguous per-field arrays: those of queries
 * scored on every row first (m_dense of them), then those of sparse queries (sparse[q] for batch
 * query q; NULL: none). */
static bool pass_prepare(pass *p, const vs_scan_batch *b, const uint32_t *qidx, uint32_t nq,
                         const bool *sparse)
{
    const cpu_store *s = p->s;
    uint32_t need[VS_MAX_FIELDS] = {0};
    p->queries = calloc(nq, sizeof *p->queries);
    if (!p->queries)
        return false;
    p->n_queries = nq;
    for (uint32_t i = 0; i < nq; i++)
        for (uint32_t t = 0; t < b->queries[qidx[i]].n_terms; t++)
            need[b->queries[qidx[i]].terms[t].field] += b->queries[qidx[i]].terms[t].n_vecs;
    for (uint32_t f = 0; f < s->n_fields; f++) {
        if (!need[f])
            continue;
        const cpu_field *cf = &s->f[f];
        pass_field *pf = &p->pf[f];
        p->field_used[f] = true;
        pf->f = malloc((size_t)need[f] * cf->l.dim * sizeof(float));
        pf->norm2 = malloc(need[f] * sizeof(float));
        if (!pf->f || !pf->norm2)
            return false;
        if (cf->l.storage == VS_STORAGE_I8) {
            pf->c = calloc((size_t)need[f] * cf->dpad, 1);
            pf->csum = malloc(need[f] * sizeof(int32_t));
            pf->scale = malloc(need[f] * sizeof(float));
            pf->sum = malloc(need[f] * sizeof(float));
            if (!pf->c || !pf->csum || !pf->scale || !pf->sum)
                return false;
        }
        if (cf->l.storage == VS_STORAGE_B1) {
            pf->bits = malloc((size_t)need[f] * cf->l.b1_words * sizeof(uint64_t));
            if (!pf->bits)
                return false;
        }
    }
    for (uint32_t i = 0; i < 2 * nq; i++) {
        if (i == nq) /* the dense queries' vectors are in */
            for (uint32_t f = 0; f < s->n_fields; f++)
                p->pf[f].m_dense = p->pf[f].m;
        bool sp = sparse && sparse[qidx[i % nq]];
        if (sp != (i >= nq))
            continue;
        const vs_scan_query *sq = &b->queries[qidx[i % nq]];
        pass_query *pq = &p->queries[i % nq];
        pq->q = qidx[i % nq];
        pq->sparse = sp;
        p->any_sparse |= sp;
        pq->n_terms = sq->n_terms;
        pq->combine = sq->combine;
        pq->allowed = sq->allowed;
        pq->k = sq->k;
        p->kmax = sq->k > p->kmax ? sq->k : p->kmax;
        for (uint32_t t = 0; t < sq->n_terms; t++) {
            const vs_scan_term *st = &sq->terms[t];
            const cpu_field *cf = &s->f[st->field];
            const vs_field_queries *fq = &b->fq[st->field];
            pass_field *pf = &p->pf[st->field];
            uint32_t d = cf->l.dim;
            pq->terms[t] = (pass_term){st->field, pf->m, st->n_vecs, st->weight};
            for (uint32_t v = 0; v < st->n_vecs; v++) {
                uint32_t src = st->first + v, dst = pf->m++;
                memcpy(pf->f + (size_t)dst * d, fq->f + (size_t)src * d, d * sizeof(float));
                pf->norm2[dst] = fq->norm2[src];
                if (pf->c) {
                    memcpy(pf->c + (size_t)dst * cf->dpad, fq->c + (size_t)src * d, d);
                    pf->csum[dst] = fq->csum[src];
                    pf->scale[dst] = fq->scale[src];
                    pf->sum[dst] = fq->sum[src];
                }
                if (pf->bits)
                    memcpy(pf->bits + (size_t)dst * cf->l.b1_words, fq->bits + (size_t)src * cf->l.b1_words,
                           cf->l.b1_words * sizeof(uint64_t));
            }
        }
    }
    return true;
}

/* Bytes of rows one slot costs to scan in this pass (to size the thread split). */
static uint64_t pass_row_bytes(const pass *p)
{
    uint64_t b = 0;
    for (uint32_t f = 0; f < p->s->n_fields; f++)
        if (p->field_used[f])
            b += p->s->f[f].row_bytes + (p->s->f[f].l.storage == VS_STORAGE_I8 ? 0 : 3 * sizeof(float));
    return b ? b : 1;
}

/* Runs a prepared pass over its row source and merges the threads' heaps into out. */
static vs_err pass_run(pass *p, vs_cand *out, size_t stride, uint32_t *counts, vs_status *st)
{
    const cpu_store *s = p->s;
    uint64_t total = p->list ? p->list_len : p->view->slot_limit;
    /* a listed row is a random read: it costs COST_GATHER_ROW sequential rows of time, so a gather
     * is worth a second thread at a quarter of the bytes a sequential pass needs */
    uint64_t bytes = total * pass_row_bytes(p) * (p->list ? (uint64_t)COST_GATHER_ROW : 1);
    uint32_t nt = s->n_threads;
    if (bytes / MIN_BYTES_PER_THREAD < nt)
        nt = (uint32_t)(bytes / MIN_BYTES_PER_THREAD) > 0 ? (uint32_t)(bytes / MIN_BYTES_PER_THREAD) : 1;
    worker *w = calloc(nt, sizeof *w);
    pthread_t *tid = calloc(nt, sizeof *tid);
    bool ok = w && tid;
    for (uint32_t i = 0; i < nt && ok; i++) {
        w[i].p = p;
        w[i].heaps = calloc(p->n_queries, sizeof(vs_topk));
        w[i].heap_mem = malloc((size_t)p->n_queries * p->kmax * sizeof(vs_cand));
        w[i].cursor = malloc(p->n_queries * sizeof(uint64_t));
        ok = w[i].heaps && w[i].heap_mem && w[i].cursor;
        for (uint32_t q = 0; ok && q < p->n_queries; q++)
            w[i].cursor[q] = UINT64_MAX; /* found by binary search at the worker's first tile */
        for (uint32_t q = 0; ok && q < p->n_queries; q++)
            vs_topk_init(&w[i].heaps[q], w[i].heap_mem + (size_t)q * p->kmax, p->queries[q].k);
        /* split on TILE boundaries so dense tiles stay aligned to bitmap words and i8 blocks */
        uint64_t tiles = (total + TILE - 1) / TILE;
        w[i].begin = tiles * i / nt * TILE;
        w[i].end = tiles * (i + 1) / nt * TILE;
        if (w[i].end > total)
            w[i].end = total;
        if (w[i].begin > total)
            w[i].begin = total;
    }
    vs_err e = VS_OK;
    if (!ok) {
        e = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory for %u heaps of %u candidates",
                          p->n_queries, p->kmax);
        goto done;
    }
    uint32_t started = 0;
    for (uint32_t i = 1; i < nt; i++, started++)
        if (pthread_create(&tid[i], NULL, worker_run, &w[i]) != 0)
            break;
    worker_run(&w[0]);
    for (uint32_t i = 1; i <= started; i++)
        pthread_join(tid[i], NULL);
    for (uint32_t i = started + 1; i < nt; i++) /* threads that could not start: run them here */
        worker_run(&w[i]);
    for (uint32_t i = 0; i < nt; i++)
        if (w[i].err)
            e = vs_status_set(st, w[i].err, "out of memory for scan scratch");
    if (e)
        goto done;
    /* merge: thread 0's heap takes the others' entries, then sorts */
    for (uint32_t q = 0; q < p->n_queries; q++) {
        vs_topk *h = &w[0].heaps[q];
        for (uint32_t i = 1; i < nt; i++)
            for (uint32_t j = 0; j < w[i].heaps[q].n; j++) {
                const vs_cand *c = &w[i].heaps[q].e[j];
                if (c->score >= h->thr)
                    vs_topk_offer(h, c->score, c->slot, c->id);
            }
        vs_topk_sort(h);
        uint32_t bq = p->queries[q].q;
        memcpy(out + (size_t)bq * stride, h->e, h->n * sizeof(vs_cand));
        counts[bq] = h->n;
    }
done:
    for (uint32_t i = 0; w && i < nt; i++) {
        free(w[i].heaps);
        free(w[i].heap_mem);
        free(w[i].cursor);
    }
    free(w);
    free(tid);
    return e;
}

/* Vectors per field a query brings to a pass. */
static void query_need(const vs_scan_query *q, uint32_t *need)
{
    for (uint32_t t = 0; t < q->n_terms; t++)
        need[q->terms[t].field] += q->terms[t].n_vecs;
}

/* Runs the queries qidx[0..nq) over one row source, in passes of at most QBLOCK vectors per field. */
static vs_err run_group(const cpu_store *s, const vs_slot_view *view, const vs_scan_batch *b,
                        const uint32_t *qidx, uint32_t nq, const vs_slotset *list, const bool *sparse,
                        vs_cand *out, size_t stride, uint32_t *counts, vs_status *st)
{
    uint32_t i = 0;
    while (i < nq) {
        uint32_t need[VS_MAX_FIELDS] = {0}, j = i;
        for (; j < nq; j++) {
            uint32_t add[VS_MAX_FIELDS] = {0};
            query_need(&b->queries[qidx[j]], add);
            bool fits = true;
            for (uint32_t f = 0; f < VS_MAX_FIELDS; f++)
                fits &= j == i || need[f] + add[f] <= QBLOCK;
            if (!fits)
                break;
            for (uint32_t f = 0; f < VS_MAX_FIELDS; f++)
                need[f] += add[f];
        }
        pass p = {.s = s, .view = view};
        if (list) {
            p.list = list->slots;
            p.list_len = list->count;
        }
        vs_err e = VS_OK;
        if (!pass_prepare(&p, b, qidx + i, j - i, sparse))
            e = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory preparing a scan pass");
        else
            e = pass_run(&p, out, stride, counts, st);
        pass_free(&p);
        if (e)
            return e;
        i = j;
    }
    return VS_OK;
}

/* ===== Scan: planning =====
 *
 * A query with an allowed set takes one of three routes, and queries that share one set (the same
 * pointer) take it together:
 *
 *   fold    a query of the dense pass, scored on every row, its bitmap checked in the epilogue
 *           (a BITMAP only: a list cannot be probed)
 *   sparse  a query of the dense pass scored only on its allowed rows of each tile, gathered from
 *           the tile as the pass streams it (one-term queries)
 *   gather  a pass of its own over the listed rows (a BITMAP is turned into a list here)
 *
 * The choice minimises a cost in units of one row read sequentially (its bytes over the streaming
 * bandwidth): N rows, a set of L rows shared by m queries:
 *
 *   dense pass  N x max(1, compute per row): reading and scoring overlap, so a pass is bound by
 *               whichever is larger. Each unfiltered or folded query adds COST_PAIR per row, a
 *               sparse one (L / N) x COST_SPARSE_PAIR.
 *   gather      L x (COST_GATHER_ROW + m x COST_PAIR): a listed row is a random read, and its
 *               scores cost what they cost in a dense pass.
 *
 * Three plans are priced and the cheapest runs: every set gathered; every set in the dense pass
 * (fold or sparse, whichever is cheaper); and each set on its own, gathered when that beats its
 * share of a dense pass that runs anyway. (Measured on the development machine, 1M x 128 i8 rows,
 * 2 threads, with bench/filter-vs-faiss.sh: see the constants at the top.)
 */

typedef enum scan_route { ROUTE_DENSE = 0, ROUTE_FOLD, ROUTE_SPARSE, ROUTE_GATHER } scan_route;

/* Queries that share one allowed set (NULL: unfiltered, always dense). */
typedef struct scan_group {
    const vs_slotset *set;
    uint32_t first, n;     /* its queries: order[first .. first + n) */
    double gather, fold, sparse; /* gather: cost; fold, sparse: compute units per row (HUGE_VAL: no) */
    scan_route route;
} scan_group;

/* Ascending allowed-set pointer, then batch position: for qsort. */
static _Thread_local const vs_scan_batch *sorting_batch;
static int cmp_by_set(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    uintptr_t px = (uintptr_t)sorting_batch->queries[x].allowed, py = (uintptr_t)sorting_batch->queries[y].allowed;
    return px != py ? (px < py ? -1 : 1) : (x > y) - (x < y);
}

/* Prices one group's routes (see the model above). */
static void price_group(scan_group *g, const vs_scan_batch *b, const uint32_t *order, double n_rows)
{
    double L = (double)g->set->count, m = g->n;
    bool one_term = true;
    for (uint32_t i = 0; i < g->n; i++)
        one_term &= b->queries[order[g->first + i]].n_terms == 1;
    g->gather = L * (COST_GATHER_ROW + m * COST_PAIR);
    g->fold = g->set->kind == VS_SLOTSET_BITMAP ? m * COST_PAIR : HUGE_VAL;
    g->sparse = one_term && n_rows > 0 ? L / n_rows * m * COST_SPARSE_PAIR : HUGE_VAL;
}

/* The cost of the routes in g[0 .. n) with base_units of unfiltered compute per row. */
static double plan_cost(const scan_group *g, uint32_t n, double base_units, bool base, double n_rows)
{
    double units = base_units, cost = 0;
    bool dense = base;
    for (uint32_t i = 0; i < n; i++) {
        if (g[i].route == ROUTE_GATHER) {
            cost += g[i].gather;
        } else {
            units += g[i].route == ROUTE_FOLD ? g[i].fold : g[i].sparse;
            dense = true;
        }
    }
    return cost + (dense ? n_rows * (units > 1 ? units : 1) : 0);
}

/* Group g's route under plan 0 (gather every set), 1 (every set in the dense pass) or 2 (each set
 * gathered when that beats its share of a dense pass that runs anyway). */
static scan_route plan_route(const scan_group *g, int plan, double n_rows)
{
    double in_dense = g->fold < g->sparse ? g->fold : g->sparse;
    if (plan == 0 || in_dense == HUGE_VAL || (plan == 2 && g->gather < n_rows * in_dense))
        return ROUTE_GATHER;
    return g->fold < g->sparse ? ROUTE_FOLD : ROUTE_SPARSE;
}

/* Routes every filtered group by the cheapest of the three plans. */
static void plan_routes(scan_group *g, uint32_t n, double base_units, bool base, double n_rows)
{
    int pick = 0;
    double best = HUGE_VAL;
    for (int plan = 0; plan < 3; plan++) {
        for (uint32_t i = 0; i < n; i++)
            g[i].route = plan_route(&g[i], plan, n_rows);
        double c = plan_cost(g, n, base_units, base, n_rows);
        if (c < best) {
            best = c;
            pick = plan;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        g[i].route = plan_route(&g[i], pick, n_rows);
}

/* A BITMAP's slots as a LIST in *mem (the caller frees it); false when out of memory. */
static bool bitmap_to_list(const vs_slotset *a, uint32_t **mem, vs_slotset *list)
{
    uint64_t cap = a->count, k = 0;
    *mem = malloc((cap ? cap : 1) * sizeof **mem);
    if (!*mem)
        return false;
    for (uint64_t w = 0; w < (a->n_bits + 63) / 64 && k < cap; w++)
        for (uint64_t bits = a->words[w]; bits && k < cap; bits &= bits - 1) {
            uint64_t slot = w * 64 + (uint64_t)__builtin_ctzll(bits);
            if (slot < a->n_bits)
                (*mem)[k++] = (uint32_t)slot;
        }
    *list = (vs_slotset){.kind = VS_SLOTSET_LIST, .slots = *mem, .count = k};
    return true;
}

/* Plans the batch's routes, runs the dense pass (unfiltered, folded and sparse queries together),
 * then one gather pass per gathered set. */
static vs_err cpu_scan(void *store, const vs_slot_view *view, const vs_scan_batch *b, vs_cand *out,
                       size_t stride, uint32_t *counts, vs_status *st)
{
    const cpu_store *s = store;
    uint32_t nq = b->n_queries;
    uint32_t *order = malloc((nq ? nq : 1) * sizeof *order), *dense = malloc((nq ? nq : 1) * sizeof *dense);
    bool *sparse = calloc(nq ? nq : 1, sizeof *sparse);
    scan_group *g = malloc((nq ? nq : 1) * sizeof *g);
    vs_err e = VS_OK;
    if (!order || !dense || !sparse || !g) {
        e = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory scanning");
        goto done;
    }
    /* groups: runs of one allowed set, after the unfiltered queries */
    for (uint32_t q = 0; q < nq; q++)
        order[q] = q;
    sorting_batch = b;
    qsort(order, nq, sizeof *order, cmp_by_set);
    double n_rows = (double)view->slot_limit;
    uint32_t n_groups = 0, n_dense = 0;
    for (uint32_t i = 0; i < nq;) {
        const vs_slotset *a = b->queries[order[i]].allowed;
        uint32_t j = i;
        while (j < nq && b->queries[order[j]].allowed == a)
            j++;
        if (!a || a->kind == VS_SLOTSET_ALL) {
            for (; i < j; i++)
                dense[n_dense++] = order[i];
            continue;
        }
        g[n_groups] = (scan_group){.set = a, .first = i, .n = j - i};
        price_group(&g[n_groups++], b, order, n_rows);
        i = j;
    }
    plan_routes(g, n_groups, n_dense * COST_PAIR, n_dense > 0, n_rows);
    for (uint32_t gi = 0; gi < n_groups; gi++) {
        if (g[gi].route == ROUTE_GATHER)
            continue;
        for (uint32_t i = 0; i < g[gi].n; i++) {
            uint32_t q = order[g[gi].first + i];
            dense[n_dense++] = q;
            sparse[q] = g[gi].route == ROUTE_SPARSE;
        }
    }
    if (n_dense)
        e = run_group(s, view, b, dense, n_dense, NULL, sparse, out, stride, counts, st);
    for (uint32_t gi = 0; gi < n_groups && !e; gi++) {
        if (g[gi].route != ROUTE_GATHER)
            continue;
        vs_slotset list = *g[gi].set;
        uint32_t *mem = NULL;
        if (list.kind == VS_SLOTSET_BITMAP && !bitmap_to_list(g[gi].set, &mem, &list)) {
            e = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "out of memory listing %llu allowed slots",
                              (unsigned long long)g[gi].set->count);
            break;
        }
        e = run_group(s, view, b, order + g[gi].first, g[gi].n, &list, NULL, out, stride, counts, st);
        free(mem);
    }
done:
    free(order);
    free(dense);
    free(sparse);
    free(g);
    return e;
}

const vs_backend_ops vs_cpu_backend = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .reserve = cpu_reserve,
    .write_rows = cpu_write_rows,
    .slots_changed = NULL,
    .scan = cpu_scan,
    .read_row = cpu_read_row,
    .field_bytes = cpu_field_bytes,
};
