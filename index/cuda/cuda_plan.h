/*
 * cuda_plan.h: the CUDA backend's decisions, made on the host in plain C so that CI (no GPU) tests
 * them: how a field's rows are laid out in device memory, which kernel a group of queries takes,
 * how many rows a cuBLAS tile holds, how the exact top-k is found with a sampled threshold, and the
 * driver that runs that selection over a table of operations (the device implements them in
 * cuda_backend.c; tests/unit/test_cuda_host.c implements them on the CPU and checks the driver
 * against a full sort, ties and overflows included).
 *
 * ===== Selection: a sampled (score, id) threshold, then candidates above it =====
 * k goes to 10,000, far past what a block can keep in registers, so the scan does not keep per-block
 * top-k lists. Instead each query gets a threshold t, a (score, id) pair, such that at least k rows
 * rank at or above it and not many more; the scan appends every row at or above t to the query's
 * candidate buffer (capacity C, a counter that keeps counting past C), and a segmented sort of the
 * buffers by (score desc, id asc) gives the result. t comes from a sample of S rows spread evenly
 * over the rows to scan (one per stratum, jittered): if j-th best of the sample is taken, the number
 * m of true top-k rows in the sample is about Poisson(mu = k S / n), and t is safe (at or below the
 * k-th best) unless m >= j; with j = ceil(mu + 4 sqrt(mu) + 1) that is rare (~1e-4), and the rows
 * above t number about j n / S, which sizes C. Because t is a (score, id) pair in the total order of
 * the final ranking, ties (b1 scores are small integers) do not flood the buffer.
 *
 * Two things can still go wrong, and both are caught, never guessed at:
 *  - overflow: more than C rows passed. The buffer then holds C >= k real candidates, so its k-th
 *    best is a valid threshold; the query is scanned again with it (it strictly rises each time).
 *  - underflow: fewer than k rows passed a finite t (the sample was unlucky, or a filter leaves
 *    fewer than k rows). The query is scanned again with no threshold.
 * After three rounds a query still unresolved is scanned with C = n, which cannot overflow.
 */
#ifndef VS_CUDA_PLAN_H
#define VS_CUDA_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ===== Row layout ===== */

/* Query vectors one fused-kernel launch scores from registers, at most. */
#define VS_CU_SMALL_MAX_QV 32u
/* Lanes that share one row in the fused kernel (each loads 16-byte slices of it). */
#define VS_CU_LANES_PER_ROW 4u

/* How one field's rows sit in device memory. A row is its codes, zero-padded to a multiple of 16
 * bytes (so every lane loads 16-byte aligned slices, and a GEMM's k may cover the padding), then,
 * when the storage or metric needs per-row constants (i8: middle and scale; f16: its scale; f32
 * under l2: norm2), one 16-byte slot {middle, scale, norm2, 0}.
 * Constants beside the codes cost no extra bytes on the dense path and save a sector per row on the
 * gather path. Rows are stride bytes apart inside a chunk. */
typedef struct vs_cu_layout {
    uint32_t code_bytes; /* as the core encodes them */
    uint32_t code_pad;   /* code_bytes rounded up to 16 */
    uint32_t has_consts; /* 1: a constant slot follows the codes, at byte code_pad */
    uint32_t stride;     /* code_pad (+ 16) */
    uint32_t vecs;       /* 16-byte slices of the codes: code_pad / 16 */
    uint32_t gemm_k;     /* GEMM k in elements (f32, f16, i8): code_pad / element size; 0 for b1 */
    uint32_t bits;       /* b1: vs_b1_bits(dim) */
    uint32_t qslice;     /* bytes of one query slice in the fused kernel: 32 for f16 (8 floats),
                            else 16 */
} vs_cu_layout;

/* Fills out for field f; INVALID_ARGUMENT when the layout is inconsistent (code_bytes not what the
 * storage and dim imply). */
vs_err vs_cu_layout_make(const vs_field_layout *f, vs_cu_layout *out, vs_status *st);

/* Device rows per chunk: the core's chunk_rows (0 = 65536), lowered so that one chunk of the widest
 * field stays within 64 MiB (a small collection of wide rows should not take a gigabyte), at least
 * 64. A power of two. */
uint32_t vs_cu_chunk_rows(uint32_t core_chunk_rows, uint32_t max_stride);

/* ===== Kernel choice ===== */

typedef enum vs_cu_path {
    VS_CU_PATH_SMALL = 0, /* one fused pass: one field, <= VS_CU_SMALL_MAX_QV query vectors and
                             queries */
    VS_CU_PATH_TILE       /* larger groups: the MMA scan when every query is one vector of one
                             i8 or f16 field, else tiles: cuBLAS (or the fused kernel's dot mode)
                             then a combine kernel (cuda_backend.c decides) */
} vs_cu_path;

/* nv distinct query vectors over n_fields fields for nq queries (queries may share vectors). */
vs_cu_path vs_cu_choose_path(uint32_t n_fields, uint32_t nv, uint32_t nq);

/* The fused kernel's compiled query-vector count for nv vectors: 1, 2, 4, 8, 16 or 32. */
uint32_t vs_cu_nqv_bucket(uint32_t nv);

/* Rows per tile on the tile path: a power of two such that the tile's raw scores (nv_total x 4
 * bytes per row) take about half of the L2 cache, so the combine kernel reads them from L2, never
 * HBM; between 256 and 65536, and never past chunk_rows (tiles do not cross chunks). */
uint32_t vs_cu_tile_rows(uint64_t nv_total, uint64_t l2_bytes, uint32_t chunk_rows);

/* ===== Threshold plan ===== */

typedef struct vs_cu_thr_plan {
    uint32_t sample;   /* rows to sample first; 0 = no sampling (every row goes to the buffer) */
    uint32_t capacity; /* candidate slots per query in the main scan */
} vs_cu_thr_plan;

/* Plan for nq queries of k <= kmax over n_scan rows. */
vs_cu_thr_plan vs_cu_plan_threshold(uint64_t n_scan, uint32_t kmax, uint32_t nq);

/* Rank j (1-based) of the sampled candidate that becomes the threshold for k. */
uint32_t vs_cu_sample_rank(uint32_t k, uint32_t sample, uint64_t n_scan);

/* S positions in [0, n), strictly ascending, one in each of S equal strata, jittered by seed. */
void vs_cu_sample_positions(uint64_t n, uint32_t s, uint64_t seed, uint32_t *out);

/* ===== Groups: queries scanned together over the same rows ===== */

typedef struct vs_cu_group {
    uint32_t first, n;                /* its queries: order[first .. first + n) */
    uint32_t list;                    /* 1: gather over slots[0 .. count) */
    const uint32_t *slots;
    uint64_t count;
    uint32_t n_fields;                /* fields read, ascending */
    uint32_t fields[VS_MAX_FIELDS];
    uint32_t nv[VS_MAX_FIELDS];       /* distinct query vectors per field */
    uint32_t nv_total;
    vs_cu_path path;
} vs_cu_group;

/* Splits a batch into groups: every query whose allowed set is ALL or a BITMAP (or a LIST larger
 * than a quarter of the slots, which then goes as a bitmap: as_bitmap[q] = 1) is scanned densely,
 * the others by their list, one group per distinct list; within that, queries that read one field
 * form one group per field and multi-field queries one group. Groups larger than max_queries are
 * split. order (n_queries entries), as_bitmap (n_queries) and groups (n_queries entries at most)
 * are the caller's. RESOURCE_EXHAUSTED when scratch memory runs out. */
vs_err vs_cu_plan_groups(const vs_scan_batch *b, uint32_t slot_limit, uint32_t max_queries,
                         uint32_t *order, uint8_t *as_bitmap, vs_cu_group *groups,
                         uint32_t *n_groups, vs_status *st);

/* Query vectors of field f that the group's queries use, compacted: map[i] is the compact index of
 * vector i of batch->fq[f] (UINT32_MAX when unused; map has batch->fq[f].n entries), src (when not
 * NULL) lists the used vectors in order. Returns their count. Each term's vectors stay contiguous. */
uint32_t vs_cu_group_qv_map(const vs_scan_batch *b, const uint32_t *order, const vs_cu_group *g,
                            uint32_t f, uint32_t *map, uint32_t *src);

/* ===== The selection driver ===== */

enum { VS_CU_THR_KEEP = 0, VS_CU_THR_NEG_INF = 1, VS_CU_THR_RANK = 2 };

/* What the driver asks of a device. act lists the queries (indices into the group) taking part, in
 * buffer order: query act[i] owns candidate slots [i * cap, (i + 1) * cap). */
typedef struct vs_cu_select_ops {
    void *ctx;
    /* Scans (sample != 0: only the sample rows, with no threshold) appending candidates at or above
     * each query's threshold. For the main scan, fills cnt[i] (rows that passed, possibly > cap)
     * and finite[i] (whether the threshold was finite). */
    vs_err (*scan)(void *ctx, int sample, const uint32_t *act, uint32_t n_act, uint32_t cap,
                   uint32_t *cnt, uint8_t *finite, vs_status *st);
    /* Sorts each buffer's first min(cnt, cap) candidates best first. */
    vs_err (*sort)(void *ctx, const uint32_t *act, uint32_t n_act, uint32_t cap, vs_status *st);
    /* Sets thresholds: mode[i] KEEP, NEG_INF, or RANK: the rank[i]-th sorted candidate (NEG_INF
     * when the buffer holds fewer). */
    vs_err (*set_thr)(void *ctx, const uint32_t *act, uint32_t n_act, uint32_t cap,
                      const uint8_t *mode, const uint32_t *rank, vs_status *st);
    /* Emits, for each i with which[i], the first min(k, held) sorted candidates as the result. */
    vs_err (*emit)(void *ctx, const uint32_t *act, uint32_t n_act, uint32_t cap,
                   const uint8_t *which, vs_status *st);
} vs_cu_select_ops;

typedef struct vs_cu_select_stats {
    uint32_t scans;       /* main scans run (1 when nothing went wrong) */
    uint32_t overflows;   /* query rescans after an overflow */
    uint32_t underflows;  /* query rescans after an underflow */
    uint32_t exhaustive;  /* query scans with capacity n */
} vs_cu_select_stats;

/* Runs the selection for nq queries (k[q] each) over n_scan rows; max_entries bounds n_act x cap
 * per call (queries are taken in slices when needed). stats may be NULL. */
vs_err vs_cu_select_run(const vs_cu_select_ops *ops, uint32_t nq, const uint32_t *k,
                        uint64_t n_scan, vs_cu_thr_plan plan, uint64_t max_entries,
                        vs_cu_select_stats *stats, vs_status *st);

#ifdef __cplusplus
}
#endif

#endif
