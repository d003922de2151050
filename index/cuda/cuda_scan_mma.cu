/*
 * cuda_scan_mma.cu: the MMA scan (see cuda_kernels.h): large batches of one-vector queries against
 * an i8 or f16 field on the tensor cores, scored, thresholded and appended in one kernel.
 *
 * ===== Why =====
 * A batch of 1024 queries over 15.5M rows is 2 x 15.5M x 1024 x 128 = 4 T integer operations
 * (about 2 ms of int8 tensor-core time on an H100-class card) but 15.9 G (row, query) scores. The
 * tile path writes those scores as int32 through L2 (64 GB) and reads them back in a second kernel,
 * two launches per 4096-row tile (7,600 launches); here the products stay in registers and shared
 * memory and the whole scan is one launch. What remains is the per-score epilogue (a convert, two
 * multiply-adds and a compare for nearly every pair), which is the floor of this kernel.
 *
 * ===== How a block works =====
 * A block takes 128 rows (slots, or entries of the group's list) and 128 queries; the grid is
 * (row tiles x query chunks), query chunk fastest, so the chunks of one row tile run side by side
 * and read its rows from HBM once (the others hit L2). Its 8 warps sit 4 along the rows and 2
 * along the queries: each computes 32 rows x 64 queries as 2 x 4 WMMA fragments of 16 x 16 x 16:
 * int8 with int32 accumulators, or f16 with f32 accumulators, where each query goes in as the two
 * f16 halves of cuda_kern.h (hi, then lo, into the same accumulator, so the dot keeps f32
 * accuracy). k advances 64 bytes at a time: the block stages those bytes of its rows and of its
 * queries' vectors in shared memory as [k step][row][16 elements], so every fragment load reads
 * 256 or 512 contiguous, aligned bytes (ineligible rows, idle queries and the padding past a row's
 * codes stage zeros). Afterwards
 * each warp stores one fragment at a time to its 1 KiB of shared memory; lane l takes query column
 * l % 16 and rows l / 16, l / 16 + 2, ...: the score from the row's constants (read once per block
 * with its slot and eligibility) and the query's, the one-term combination, the (score, id)
 * threshold, the allowed bitmap only for rows that pass, and an append shared by the two lanes of
 * each query.
 */
#include "cuda_scan.cuh"

#ifndef VS_CUDA_EMU
#include <mma.h>
#endif

namespace vs_cu {

namespace wmma = nvcuda::wmma;

constexpr uint32_t kMmaRows = VS_CU_MMA_ROWS, kMmaQueries = VS_CU_MMA_QUERIES;
constexpr uint32_t kStageBytes = 64; /* bytes of each row and query staged at a time */
constexpr uint32_t kWarpRows = 32;   /* a warp's rows and queries */
constexpr uint32_t kWarpQueries = 64;
constexpr int kFragR = (int)(kWarpRows / 16), kFragQ = (int)(kWarpQueries / 16);
static_assert(kWarps == (kMmaRows / kWarpRows) * (kMmaQueries / kWarpQueries),
              "the warps tile the block");
static_assert(kThreads == kMmaRows + kMmaQueries, "one thread per row and per query at setup");

/* The element types per storage (ST as vs_storage): 2 i8, 1 f16 (two query halves). */
template <int ST> struct Mma;
template <> struct Mma<2> {
    typedef signed char E;
    typedef int Acc;
    static constexpr int kHalves = 1;
};
template <> struct Mma<1> {
    typedef half E;
    typedef float Acc;
    static constexpr int kHalves = 2;
};

template <int ST> __global__ void __launch_bounds__(kThreads) scan_mma(const vs_cu_mma_args a)
{
    typedef typename Mma<ST>::E E;
    typedef typename Mma<ST>::Acc Acc;
    constexpr int kHalves = Mma<ST>::kHalves;
    constexpr uint32_t kKStep = 16 * (uint32_t)sizeof(E); /* bytes of k one product covers */
    constexpr uint32_t kKSteps = kStageBytes / kKStep;
    constexpr uint32_t kUnits = kKStep / 16;              /* 16-byte loads a step of a row */
    __shared__ __align__(256) uint8_t s_a[kKSteps][kMmaRows][kKStep];
    __shared__ __align__(256) uint8_t s_b[kHalves][kKSteps][kMmaQueries][kKStep];
    __shared__ __align__(256) Acc s_acc[kWarps][16][16];
    __shared__ const uint8_t *s_row[kMmaRows]; /* NULL: not eligible */
    __shared__ uint32_t s_slot[kMmaRows];
    __shared__ vs_cu_rowc s_rc[kMmaRows];
    __shared__ const uint8_t *s_qv[kHalves][kMmaQueries]; /* the query's vector, NULL: idle */
    __shared__ vs_cu_query_dev s_q[kMmaQueries];
    __shared__ vs_cu_thr_dev s_thr[kMmaQueries];
    __shared__ vs_cu_qvc s_qvc[kMmaQueries];
    __shared__ float s_w[kMmaQueries];
    __shared__ int s_any_row, s_any_query;

    const uint32_t nqc = (a.c.nq + kMmaQueries - 1) / kMmaQueries;
    const uint32_t q0 = (blockIdx.x % nqc) * kMmaQueries;
    const uint32_t r0 = a.rows.begin + (blockIdx.x / nqc) * kMmaRows;
    const uint32_t tid = threadIdx.x, lane = tid & 31u, warp = tid >> 5;
    const uint32_t shift = a.c.chunk_shift, mask = (1u << shift) - 1u;

    /* ---- setup: threads 0..127 a row each, 128..255 a query each ---- */
    if (tid == 0) {
        s_any_row = 0;
        s_any_query = 0;
    }
    __syncthreads();
    if (tid < kMmaRows) {
        const uint8_t *row = nullptr;
        uint32_t slot = 0;
        vs_cu_rowc rc = {0.0f, 0.0f, 0.0f, 0.0f};
        if (tid < a.rows.end - r0) {
            slot = a.rows.list ? __ldg(a.rows.list + r0 + tid) : r0 + tid;
            if (slot < a.c.slot_limit && bit(a.c.live, slot) && bit(a.f.has, slot)) {
                row = a.f.chunks[slot >> shift] + (size_t)(slot & mask) * a.f.stride;
                const uint4 cw = ld16(row + a.f.code_pad);
                rc.middle = __uint_as_float(cw.x);
                rc.scale = __uint_as_float(cw.y);
                rc.norm2 = __uint_as_float(cw.z);
                s_any_row = 1;
            }
        }
        s_row[tid] = row;
        s_slot[tid] = slot;
        s_rc[tid] = rc;
    } else {
        const uint32_t j = tid - kMmaRows, q = q0 + j;
        const uint8_t *qv = nullptr, *ql = nullptr;
        vs_cu_query_dev qd = {0u, 0u, 0u, VS_CU_NONE, nullptr, 0u};
        vs_cu_thr_dev th = {INFINITY, 0u, 0u};
        vs_cu_qvc qc = {0.0f, 0.0f, 0.0f, 0.0f};
        float w = 0.0f;
        if (q < a.c.nq) {
            qd = a.c.queries[q];
            if (qd.pos != VS_CU_NONE) {
                const vs_cu_term_dev tm = a.c.terms[qd.term_first];
                qv = a.qdata + (size_t)tm.qv_first * a.f.code_pad;
                if (kHalves > 1)
                    ql = a.qlo + (size_t)tm.qv_first * a.f.code_pad;
                qc = a.qvc[tm.qv_first];
                w = tm.weight;
                th = a.c.thr[q];
                s_any_query = 1;
            }
        }
        s_qv[0][j] = qv;
        if (kHalves > 1)
            s_qv[kHalves - 1][j] = ql;
        s_q[j] = qd;
        s_thr[j] = th;
        s_qvc[j] = qc;
        s_w[j] = w;
    }
    __syncthreads();
    if (!s_any_row || !s_any_query)
        return; /* the whole block: nothing to score */

    /* ---- products: rows x query vectors, k 64 bytes at a time ---- */
    const uint32_t wr = warp & 3u, wq = warp >> 2;
    wmma::fragment<wmma::accumulator, 16, 16, 16, Acc> acc[kFragR][kFragQ];
#pragma unroll
    for (int i = 0; i < kFragR; i++)
#pragma unroll
        for (int j = 0; j < kFragQ; j++)
            wmma::fill_fragment(acc[i][j], (Acc)0);
    const uint32_t kbytes = a.f.code_pad; /* codes: a multiple of 16 bytes, zero-padded */
    for (uint32_t k0 = 0; k0 < kbytes; k0 += kStageBytes) {
        const uint32_t units = min((kbytes - k0) / 16u, kStageBytes / 16u);
        const uint32_t steps = (units + kUnits - 1) / kUnits; /* a last f16 step may be half */
        const uint32_t per = steps * kUnits;
        /* consecutive threads read consecutive 16 bytes of one row: whole sectors. Units past the
         * codes (the constant slot of a row, the next query) stage as zeros. */
        for (uint32_t u = tid; u < kMmaRows * per; u += kThreads) {
            const uint32_t r = u / per, w = u % per;
            const uint8_t *row = s_row[r];
            *reinterpret_cast<uint4 *>(&s_a[w / kUnits][r][(w % kUnits) * 16u]) =
                row && w < units ? ld16(row + k0 + w * 16u) : make_uint4(0u, 0u, 0u, 0u);
        }
        for (uint32_t u = tid; u < kHalves * kMmaQueries * per; u += kThreads) {
            const uint32_t h = u / (kMmaQueries * per), v = u % (kMmaQueries * per);
            const uint32_t r = v / per, w = v % per;
            const uint8_t *qv = s_qv[h][r];
            *reinterpret_cast<uint4 *>(&s_b[h][w / kUnits][r][(w % kUnits) * 16u]) =
                qv && w < units ? ld16(qv + k0 + w * 16u) : make_uint4(0u, 0u, 0u, 0u);
        }
        __syncthreads();
        for (uint32_t st = 0; st < steps; st++) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, E, wmma::row_major> fa[kFragR];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, E, wmma::col_major> fb[kFragQ];
#pragma unroll
            for (int i = 0; i < kFragR; i++)
                wmma::load_matrix_sync(
                    fa[i],
                    reinterpret_cast<const E *>(&s_a[st][wr * kWarpRows + 16u * (uint32_t)i][0]),
                    16);
#pragma unroll
            for (int h = 0; h < kHalves; h++) { /* f16: hi, then lo, into the same sums */
#pragma unroll
                for (int j = 0; j < kFragQ; j++)
                    wmma::load_matrix_sync(
                        fb[j],
                        reinterpret_cast<const E *>(
                            &s_b[h][st][wq * kWarpQueries + 16u * (uint32_t)j][0]),
                        16);
#pragma unroll
                for (int i = 0; i < kFragR; i++)
#pragma unroll
                    for (int j = 0; j < kFragQ; j++)
                        wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
            }
        }
        __syncthreads();
    }

    /* ---- epilogue: one fragment at a time through the warp's 1 KiB ---- */
    const uint32_t col = lane & 15u, half = lane >> 4;
    const int is_l2 = (int)a.f.is_l2;
#pragma unroll
    for (int j = 0; j < kFragQ; j++) {
        const uint32_t qi = wq * kWarpQueries + 16u * (uint32_t)j + col;
        const vs_cu_query_dev qd = s_q[qi];
        const vs_cu_thr_dev th = s_thr[qi];
        const vs_cu_qvc qc = s_qvc[qi];
        const float w = s_w[qi];
        const bool active = s_qv[0][qi] != nullptr;
#pragma unroll
        for (int i = 0; i < kFragR; i++) {
            wmma::store_matrix_sync(&s_acc[warp][0][0], acc[i][j], 16, wmma::mem_row_major);
            __syncwarp();
            for (uint32_t t = 0; t < 8u; t++) {
                const uint32_t rr = half + 2u * t, R = wr * kWarpRows + 16u * (uint32_t)i + rr;
                const uint32_t slot = s_slot[R];
                bool pass = false;
                float score = 0.0f;
                if (active && s_row[R]) {
                    const Acc raw = s_acc[warp][rr][col];
                    /* f16: the halves were scaled by 1 / gscale (cuda_kern.h) */
                    const float v = vs_cu_single_term(
                        qd.combine, w,
                        ST == 2 ? vs_cu_vec_score(2u, is_l2, 0u, 0.0f, (int32_t)raw, s_rc[R], qc)
                                : vs_cu_vec_score(1u, is_l2, 0u, (float)raw * qc.gscale, 0,
                                                  s_rc[R], qc));
                    if (!(v < th.s)) { /* rare: at or above the threshold (or NaN) */
                        score = vs_cu_canon(v);
                        pass = allowed(qd, slot) &&
                               vs_cu_passes(score, score == th.s ? slot_id(a.c, slot) : 0u, th.s,
                                            th.id);
                    }
                }
                if (__ballot_sync(kFull, pass)) /* the same for every lane */
                    append(a.c, pass, 0x00010001u << col, qd.pos, score, slot, lane);
            }
            __syncwarp();
        }
    }
}

} // namespace vs_cu

extern "C" cudaError_t vs_cu_launch_mma(const vs_cu_mma_args *a, cudaStream_t s)
{
    const uint32_t n = a->rows.end - a->rows.begin;
    if (n == 0 || a->c.nq == 0)
        return cudaSuccess;
    const uint64_t blocks = (uint64_t)((n + vs_cu::kMmaRows - 1) / vs_cu::kMmaRows) *
                            ((a->c.nq + vs_cu::kMmaQueries - 1) / vs_cu::kMmaQueries);
    if (blocks > 0x7fffffffull || a->f.code_pad % 16u)
        return cudaErrorInvalidValue;
    if (a->f.storage == VS_STORAGE_I8) {
        VS_LAUNCH(vs_cu::scan_mma<2>, (unsigned)blocks, vs_cu::kThreads, s, *a);
    } else if (a->f.storage == VS_STORAGE_F16 && a->qlo) {
        VS_LAUNCH(vs_cu::scan_mma<1>, (unsigned)blocks, vs_cu::kThreads, s, *a);
    } else {
        return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
