/*
 * cuda_scan.cu: the tile path's kernels (combine, gather_rows) and the storage dispatch of the
 * fused scan (see cuda_kernels.h and cuda_scan.cuh).
 *
 * ===== The combine kernel =====
 * On the tile path, cuBLAS (or the fused kernel in dot mode) has written the raw dots of R rows
 * against every query vector of each field to tile[field][qv * ld + r], sized to stay in L2. One
 * thread per row, taking 8 queries in turn (blockIdx.y picks the 8): the row's slot, live bit and
 * fields are read once for its queries, a warp shares each query, its terms and its threshold
 * (broadcast loads), reads 32 consecutive rows of each dot column (coalesced), and appends passing
 * rows with one atomic per warp. An item lacking a field skips that field's terms (SUM
 * renormalises over present terms); an item with none is never appended.
 */
#include "cuda_scan.cuh"

extern "C" cudaError_t vs_cu_launch_small_f32(const vs_cu_small_args *, int, int, cudaStream_t);
extern "C" cudaError_t vs_cu_launch_small_f16(const vs_cu_small_args *, int, int, cudaStream_t);
extern "C" cudaError_t vs_cu_launch_small_i8(const vs_cu_small_args *, int, int, cudaStream_t);
extern "C" cudaError_t vs_cu_launch_small_b1(const vs_cu_small_args *, int, int, cudaStream_t);

extern "C" cudaError_t vs_cu_launch_small(const vs_cu_small_args *a, int dots, int sm_count,
                                          cudaStream_t s)
{
    switch (a->f.storage) {
    case VS_STORAGE_F32: return vs_cu_launch_small_f32(a, dots, sm_count, s);
    case VS_STORAGE_F16: return vs_cu_launch_small_f16(a, dots, sm_count, s);
    case VS_STORAGE_I8: return vs_cu_launch_small_i8(a, dots, sm_count, s);
    case VS_STORAGE_B1: return vs_cu_launch_small_b1(a, dots, sm_count, s);
    }
    return cudaErrorInvalidValue;
}

namespace vs_cu {

constexpr uint32_t kCombineQueries = 8; /* queries one thread takes for its row */

__global__ void __launch_bounds__(kThreads) combine_kernel(const vs_cu_combine_args a)
{
    const uint32_t r = blockIdx.x * kThreads + threadIdx.x, lane = threadIdx.x & 31u;
    const uint32_t n = a.rows.end - a.rows.begin;
    const uint32_t shift = a.c.chunk_shift, mask = (1u << shift) - 1u;
    const uint32_t q0 = blockIdx.y * kCombineQueries, q1 = min(q0 + kCombineQueries, a.c.nq);
    /* the row, once for its queries: slot, live, which of the group's fields it has */
    uint32_t slot = 0, present = 0;
    bool live = false;
    if (r < n) {
        slot = a.rows.list ? __ldg(a.rows.list + a.rows.begin + r) : a.rows.begin + r;
        live = slot < a.c.slot_limit && bit(a.c.live, slot);
        if (live)
            for (uint32_t fs = 0; fs < a.n_fields; fs++)
                present |= (uint32_t)bit(a.f[fs].has, slot) << fs;
    }
    for (uint32_t q = q0; q < q1; q++) { /* the same query across the block */
        const vs_cu_query_dev qd = a.c.queries[q];
        if (qd.pos == VS_CU_NONE)
            continue;
        bool pass = false;
        float score = 0.0f;
        if (present && allowed(qd, slot)) {
            vs_cu_comb cb;
            vs_cu_comb_init(&cb);
            for (uint32_t t = 0; t < qd.n_terms; t++) {
                const vs_cu_term_dev tm = a.c.terms[qd.term_first + t];
                if (!((present >> tm.fslot) & 1u))
                    continue; /* the item lacks this field: SUM renormalises over the others */
                const vs_cu_fdev &f = a.f[tm.fslot];
                vs_cu_rowc rc = {0.0f, 0.0f, 0.0f, 0.0f};
                if (f.has_consts) { /* from L1 after the row's first query */
                    const uint4 cw =
                        ld16(f.chunks[slot >> shift] + (size_t)(slot & mask) * f.stride + f.code_pad);
                    rc.middle = __uint_as_float(cw.x);
                    rc.scale = __uint_as_float(cw.y);
                    rc.norm2 = __uint_as_float(cw.z);
                }
                const uint32_t *tile = static_cast<const uint32_t *>(a.tile[tm.fslot]);
                const vs_cu_qvc *qvc = a.qvc[tm.fslot];
                const uint32_t split = a.split[tm.fslot];
                float best = -INFINITY;
                for (uint32_t v = 0; v < tm.qv_count; v++) {
                    const uint32_t j = tm.qv_first + v;
                    const uint32_t raw = tile[(size_t)j * a.ld + r];
                    float rf = __uint_as_float(raw);
                    if (split) /* f16 from cuBLAS: hi and lo columns of the scaled query */
                        rf = (rf + __uint_as_float(tile[(size_t)(j + split) * a.ld + r])) *
                             qvc[j].gscale;
                    best = fmaxf(best, vs_cu_vec_score(f.storage, (int)f.is_l2, f.bits, rf,
                                                       (int32_t)raw, rc, qvc[j]));
                }
                vs_cu_comb_add(&cb, qd.combine, tm.weight, best);
            }
            if (cb.any) {
                score = vs_cu_canon(vs_cu_comb_final(&cb, qd.combine));
                const vs_cu_thr_dev th = a.c.thr[q];
                pass = vs_cu_passes(score, score == th.s ? slot_id(a.c, slot) : 0u, th.s, th.id);
            }
        }
        append(a.c, pass, kFull, qd.pos, score, slot, lane);
    }
}

__global__ void gather_rows_kernel(const vs_cu_fdev f, uint32_t shift, const uint32_t *list,
                                   uint32_t n, uint8_t *dst)
{
    const uint32_t units = f.stride / 16u, mask = (1u << shift) - 1u;
    const size_t total = (size_t)n * units;
    for (size_t u = blockIdx.x * (size_t)blockDim.x + threadIdx.x; u < total;
         u += (size_t)gridDim.x * blockDim.x) {
        const uint32_t i = (uint32_t)(u / units), w = (uint32_t)(u % units);
        const uint32_t slot = __ldg(list + i);
        const uint8_t *src = f.chunks[slot >> shift] + (size_t)(slot & mask) * f.stride + w * 16u;
        *reinterpret_cast<uint4 *>(dst + (size_t)i * f.stride + w * 16u) = ld16(src);
    }
}

} // namespace vs_cu

extern "C" cudaError_t vs_cu_launch_combine(const vs_cu_combine_args *a, cudaStream_t s)
{
    const uint32_t n = a->rows.end - a->rows.begin;
    if (n == 0 || a->c.nq == 0)
        return cudaSuccess;
    const uint32_t qb = (a->c.nq + vs_cu::kCombineQueries - 1) / vs_cu::kCombineQueries;
    if (qb > 65535u)
        return cudaErrorInvalidValue;
    dim3 grid((n + vs_cu::kThreads - 1) / vs_cu::kThreads, qb);
    VS_LAUNCH(vs_cu::combine_kernel, grid, vs_cu::kThreads, s, *a);
    return cudaGetLastError();
}

extern "C" cudaError_t vs_cu_launch_gather_rows(const vs_cu_fdev *f, uint32_t chunk_shift,
                                                const uint32_t *list, uint32_t n, uint8_t *dst,
                                                cudaStream_t s)
{
    if (n == 0)
        return cudaSuccess;
    const size_t units = (size_t)n * (f->stride / 16u);
    size_t blocks = (units + 255) / 256;
    if (blocks > 65536)
        blocks = 65536;
    VS_LAUNCH(vs_cu::gather_rows_kernel, (unsigned)blocks, 256, s, *f, chunk_shift, list, n, dst);
    return cudaGetLastError();
}
