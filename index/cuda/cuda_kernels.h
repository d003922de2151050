/*
 * cuda_kernels.h: the CUDA backend's device code as the C side sees it: plain structs passed to
 * kernels by value, and one launch function per kernel (defined in the .cu files, C linkage). Every
 * launch function enqueues on the given stream and returns the launch's error; none synchronizes.
 *
 * Kernels:
 *   scan_small   the fused pass for 1..32 query vectors of one field: streams each row once in
 *                16-byte slices (4 lanes a row), scores every query vector from registers (FMA for
 *                f32/f16, dp4a for i8, popc for b1), reduces across the 4 lanes, combines terms,
 *                masks (live, field present, allowed) and appends rows at or above each query's
 *                (score, id) threshold to its candidate buffer. In dot mode it instead writes the
 *                raw dots of a tile for the combine kernel (b1 on the tile path, or when cuBLAS
 *                refuses a shape).
 *   scan_mma     large batches of one-vector queries on an i8 or f16 field: tensor-core products
 *                (WMMA) of 128 rows x 128 queries at a time, each product turned into a score,
 *                tested against the query's threshold and appended in the same kernel, so raw
 *                dots never leave the SM (the tile path writes and rereads them through L2).
 *   combine      the tile path's epilogue: raw dots of every field of a tile (cuBLAS output, in
 *                L2) -> scores, terms, SUM/MAX over present fields, masks, threshold, append.
 *   gather_rows  copies listed rows into a contiguous tile for cuBLAS (gather path).
 *   sort         orders each candidate buffer by (score desc, id asc): two stable segmented radix
 *                sorts (CUB), first by id, then by score; a bitonic sort in one block per buffer
 *                when buffers are small, or when only the first k <= 1024 are needed (top-k sort).
 *   set_thr, emit, scatter_rows, scatter_words, list_to_bitmap, fill_random: bookkeeping.
 */
#ifndef VS_CUDA_KERNELS_H
#define VS_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "cuda_kern.h"
#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VS_CU_NONE 0xffffffffu

/* One field as a kernel reads it. */
typedef struct vs_cu_fdev {
    uint8_t *const *chunks; /* device array: chunk base pointers */
    const uint64_t *has;    /* device presence bitmap */
    uint32_t stride;        /* bytes a row */
    uint32_t vecs;          /* 16-byte code slices a row */
    uint32_t code_pad;      /* byte offset of the constant slot */
    uint32_t has_consts;
    uint32_t storage;       /* vs_storage */
    uint32_t is_l2;
    uint32_t bits;          /* b1 */
    uint32_t qslice;        /* bytes of one query slice (fused kernel) */
} vs_cu_fdev;

typedef struct vs_cu_term_dev {
    uint32_t fslot;    /* the group's field number (0 on the fused path) */
    uint32_t qv_first; /* compacted query vectors of that field */
    uint32_t qv_count;
    float weight;
} vs_cu_term_dev;

typedef struct vs_cu_query_dev {
    uint32_t term_first, n_terms;
    uint32_t combine;        /* 0 SUM, 1 MAX */
    uint32_t pos;            /* candidate buffer number this round, VS_CU_NONE when idle */
    const uint64_t *allowed; /* device bitmap, NULL = every slot (the list is the filter on the
                                gather path) */
    uint64_t allowed_bits;
} vs_cu_query_dev;

typedef struct vs_cu_thr_dev {
    float s;
    uint32_t pad;
    uint64_t id;
} vs_cu_thr_dev;

typedef struct vs_cu_cand_dev {
    float s;
    uint32_t slot;
} vs_cu_cand_dev;

/* What a select pass shares: the slot view mirror, the queries, their thresholds and buffers. */
typedef struct vs_cu_common {
    const uint64_t *live;
    uint64_t *const *id_chunks; /* device array of device pointers */
    uint32_t slot_limit;
    uint32_t chunk_shift;
    const vs_cu_query_dev *queries;
    uint32_t nq;
    const vs_cu_term_dev *terms;
    uint32_t n_terms;
    const vs_cu_thr_dev *thr; /* per query */
    vs_cu_cand_dev *cand;     /* buffer p at cand + p * cap */
    uint32_t cap;
    uint32_t *cnt;            /* per buffer */
} vs_cu_common;

/* Rows a launch covers: slots [begin, end), or list[begin .. end). */
typedef struct vs_cu_rows {
    const uint32_t *list;
    uint32_t begin, end;
} vs_cu_rows;

typedef struct vs_cu_small_args {
    vs_cu_common c;
    vs_cu_fdev f;
    vs_cu_rows rows;
    const uint8_t *qdata;   /* nv x vecs x qslice bytes */
    const vs_cu_qvc *qvc;   /* nv */
    uint32_t nv;
    uint32_t filter_all;    /* every query has a bitmap: skip rows none allows */
    /* dot mode */
    void *out;              /* 32-bit raw dots: out[qv * ld + (row - rows.begin)] */
    uint32_t ld;
} vs_cu_small_args;

typedef struct vs_cu_combine_args {
    vs_cu_common c;
    vs_cu_fdev f[VS_MAX_FIELDS];
    const vs_cu_qvc *qvc[VS_MAX_FIELDS];
    const void *tile[VS_MAX_FIELDS]; /* raw dots of field slot fs: tile[fs][qv * ld + r] */
    uint32_t split[VS_MAX_FIELDS];   /* f16 from cuBLAS: nv, the lo columns' offset (the dot is
                                        (hi + lo) * gscale); 0 = the tile holds the dots */
    uint32_t ld;
    uint32_t n_fields;
    vs_cu_rows rows;                 /* the tile's rows */
} vs_cu_combine_args;

/* Fused pass (dots == 0) or raw dots of a tile (dots != 0; nv may exceed 32: blocks take 32 query
 * vectors each). sm_count sizes the grid. */
cudaError_t vs_cu_launch_small(const vs_cu_small_args *a, int dots, int sm_count, cudaStream_t s);

cudaError_t vs_cu_launch_combine(const vs_cu_combine_args *a, cudaStream_t s);

/* The MMA scan: every query of c has exactly one term with one vector of field f (i8 or f16):
 * query q scores vector v = c.terms[c.queries[q].term_first].qv_first with constants qvc[v]. Its
 * codes are at qdata + v * code_pad (i8: the codes; f16: the hi halves of cuda_kern.h's split,
 * zero-padded), and for f16 the lo halves at qlo + v * code_pad. */
typedef struct vs_cu_mma_args {
    vs_cu_common c;
    vs_cu_fdev f;
    vs_cu_rows rows;
    const uint8_t *qdata;
    const uint8_t *qlo; /* f16 only */
    const vs_cu_qvc *qvc;
} vs_cu_mma_args;

/* Rows and queries one block of the MMA scan takes. */
#define VS_CU_MMA_ROWS 128u
#define VS_CU_MMA_QUERIES 128u

cudaError_t vs_cu_launch_mma(const vs_cu_mma_args *a, cudaStream_t s);

/* Copies rows list[begin .. begin + n) of field f into dst (n x stride bytes). */
cudaError_t vs_cu_launch_gather_rows(const vs_cu_fdev *f, uint32_t chunk_shift,
                                     const uint32_t *list, uint32_t n, uint8_t *dst,
                                     cudaStream_t s);

/* ===== Selection ===== */

typedef struct vs_cu_sortbuf {
    uint64_t *key_id, *key_id_out;
    float *key_s, *key_s_out;
    uint32_t *v0, *v1, *v2; /* v2: the sorted order */
    uint32_t *beg, *end;    /* per buffer */
    void *temp;
    size_t temp_bytes;
} vs_cu_sortbuf;

/* Temporary bytes the two segmented sorts need for n_items over n_seg buffers. */
cudaError_t vs_cu_sort_temp_bytes(uint64_t n_items, uint32_t n_seg, size_t *bytes);

/* Sorts buffers 0 .. n_act-1 (their first min(cnt, cap) candidates): afterwards candidate i of
 * buffer p in order is cand[b->v2[p * cap + i]]. */
cudaError_t vs_cu_sort(const vs_cu_common *c, uint32_t n_act, vs_cu_sortbuf *b, cudaStream_t s);

/* Per buffer p (query act[p]): mode/rank as in vs_cu_select_ops.set_thr. act, mode, rank are
 * device arrays of n_act. thr is written for the queries. */
cudaError_t vs_cu_launch_set_thr(const vs_cu_common *c, const vs_cu_sortbuf *b, uint32_t n_act,
                                 const uint32_t *act, const uint8_t *mode, const uint32_t *rank,
                                 vs_cu_thr_dev *thr, cudaStream_t s);

/* Without sorting: per buffer p, mode/rank as set_thr, found by rank[p] passes of a block-wide
 * "best candidate ranked after the previous one" over the buffer (ranks up to VS_CU_KTH_MAX). */
#define VS_CU_KTH_MAX 256u
cudaError_t vs_cu_launch_kth(const vs_cu_common *c, uint32_t n_act, const uint32_t *act,
                             const uint8_t *mode, const uint32_t *rank, vs_cu_thr_dev *thr,
                             cudaStream_t s);

/* The sort's result (b->v2) for buffers holding at most VS_CU_SMALL_SORT candidates each: one
 * block per buffer, a bitonic sort in shared memory, one launch instead of CUB's several. */
#define VS_CU_SMALL_SORT 2048u
cudaError_t vs_cu_small_sort(const vs_cu_common *c, uint32_t n_act, vs_cu_sortbuf *b,
                             cudaStream_t s);

/* Only the first min(k, held) of the sort's result (b->v2), for buffers of any size and k up to
 * VS_CU_TOPK_SORT_MAX: one block per buffer keeps the best k in shared memory while the rest of
 * the buffer streams past. */
#define VS_CU_TOPK_SORT_MAX 1024u
cudaError_t vs_cu_topk_sort(const vs_cu_common *c, uint32_t n_act, uint32_t k, vs_cu_sortbuf *b,
                            cudaStream_t s);

/* For buffers p with emit_k[p] > 0: out[dst[p] * out_stride + i] for i < min(emit_k, held), and
 * out_n[dst[p]] = that count. */
cudaError_t vs_cu_launch_emit(const vs_cu_common *c, const vs_cu_sortbuf *b, uint32_t n_act,
                              const uint32_t *emit_k, const uint32_t *dst, vs_cand *out,
                              uint32_t out_stride, uint32_t *out_n, cudaStream_t s);

/* ===== Bookkeeping ===== */

/* Writes n packed rows (src: n x stride bytes) of a field to their slots. */
cudaError_t vs_cu_launch_scatter_rows(uint8_t *const *chunks, uint32_t chunk_shift,
                                      uint32_t stride, const uint8_t *src, const uint32_t *slots,
                                      uint32_t n, cudaStream_t s);

/* Mirror update: for i < n_words: live[widx[i]] = lw[i], and has[f][widx[i]] = hw[f * n_words + i]
 * for f < n_fields; for i < n_ids: id_chunks[slot >> shift][slot & mask] = ids[i]. */
typedef struct vs_cu_mirror_args {
    uint64_t *live;
    uint64_t *has[VS_MAX_FIELDS];
    uint32_t n_fields;
    const uint32_t *widx;
    const uint64_t *lw, *hw;
    uint32_t n_words;
    uint64_t *const *id_chunks;
    uint32_t chunk_shift;
    const uint32_t *slots;
    const uint64_t *ids;
    uint32_t n_ids;
} vs_cu_mirror_args;
cudaError_t vs_cu_launch_mirror(const vs_cu_mirror_args *a, cudaStream_t s);

/* Sets the bits of list[0 .. n) in bm (which the caller has zeroed). */
cudaError_t vs_cu_launch_list_to_bitmap(const uint32_t *list, uint32_t n, uint64_t *bm,
                                        cudaStream_t s);

/* Bench: fills rows [0, n) of a field with random codes (and constants), from seed. */
cudaError_t vs_cu_launch_fill_random(const vs_cu_fdev *f, uint32_t chunk_shift, uint32_t n,
                                     uint32_t code_bytes, uint64_t seed, cudaStream_t s);

#ifdef __cplusplus
}
#endif

#endif
