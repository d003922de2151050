/*
 * cuda_select.cu: ordering the candidate buffers and reading results out of them (see
 * cuda_plan.h for the selection scheme, cuda_kernels.h for the interface).
 *
 * A buffer holds (score, slot) pairs in arrival order. The final order is score descending, then id
 * ascending. Two stable segmented sorts give it without a 96-bit key: first by id (64-bit keys),
 * then, stably, by score (float keys, descending; scores are canonical, so the float radix order
 * agrees with vs_better). Both sort candidate indices as values, so the candidates never move; the
 * order is v2. Segments are the buffers' filled prefixes, [p * cap, p * cap + min(cnt, cap)).
 */
#ifndef VS_CUDA_EMU
#include <cub/device/device_segmented_sort.cuh>
#endif

#include "cuda_plan.h"
#include "cuda_scan.cuh"

namespace vs_cu {

__device__ __forceinline__ uint32_t held(const vs_cu_common &c, uint32_t p)
{
    const uint32_t n = c.cnt[p];
    return n < c.cap ? n : c.cap;
}

/* Keys and values for the first sort, and the segment bounds. grid: (x, n_act). */
__global__ void sort_prep_kernel(const vs_cu_common c, vs_cu_sortbuf b)
{
    const uint32_t p = blockIdx.y, n = held(c, p);
    const size_t base = (size_t)p * c.cap;
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        b.beg[p] = (uint32_t)base;
        b.end[p] = (uint32_t)(base + n);
    }
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        b.key_id[base + i] = slot_id(c, c.cand[base + i].slot);
        b.v0[base + i] = (uint32_t)(base + i);
    }
}

/* Score keys in the id order, for the second sort. */
__global__ void sort_scores_kernel(const vs_cu_common c, vs_cu_sortbuf b)
{
    const uint32_t p = blockIdx.y, n = held(c, p);
    const size_t base = (size_t)p * c.cap;
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        b.key_s[base + i] = c.cand[b.v1[base + i]].s;
}

__global__ void set_thr_kernel(const vs_cu_common c, const uint32_t *v2, uint32_t n_act,
                               const uint32_t *act, const uint8_t *mode, const uint32_t *rank,
                               vs_cu_thr_dev *thr)
{
    const uint32_t p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= n_act)
        return;
    vs_cu_thr_dev t;
    t.s = -INFINITY;
    t.pad = 0;
    t.id = ~0ull;
    if (mode[p] == VS_CU_THR_KEEP)
        return;
    if (mode[p] == VS_CU_THR_RANK) {
        const uint32_t r = rank[p];
        if (r >= 1 && r <= held(c, p)) {
            const vs_cu_cand_dev e = c.cand[v2[(size_t)p * c.cap + r - 1]];
            t.s = e.s;
            t.id = slot_id(c, e.slot);
        }
    }
    thr[act[p]] = t;
}

__global__ void emit_kernel(const vs_cu_common c, const uint32_t *v2, const uint32_t *emit_k,
                            const uint32_t *dst, vs_cand *out, uint32_t out_stride,
                            uint32_t *out_n)
{
    const uint32_t p = blockIdx.y, k = emit_k[p];
    if (k == 0)
        return;
    const uint32_t h = held(c, p), n = k < h ? k : h;
    const size_t base = (size_t)p * c.cap;
    vs_cand *o = out + (size_t)dst[p] * out_stride;
    if (blockIdx.x == 0 && threadIdx.x == 0)
        out_n[dst[p]] = n;
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const vs_cu_cand_dev e = c.cand[v2[base + i]];
        vs_cand r;
        r.score = e.s;
        r.slot = e.slot;
        r.id = slot_id(c, e.slot);
        o[i] = r;
    }
}

/* (sa, ia) ranks before (sb, ib); an entry with slot VS_CU_NONE (padding) ranks last. */
__device__ __forceinline__ bool before(float sa, uint64_t ia, uint32_t xa, float sb, uint64_t ib,
                                       uint32_t xb)
{
    if (xa == VS_CU_NONE || xb == VS_CU_NONE)
        return xb == VS_CU_NONE && xa != VS_CU_NONE;
    return vs_better(sa, ia, sb, ib) != 0;
}

/* One block per buffer: the rank-th best candidate, by rank passes that each find the best
 * candidate ranked after the previous pass's (no sort, no marks). */
__global__ void __launch_bounds__(256) kth_kernel(const vs_cu_common c, const uint32_t *act,
                                                  const uint8_t *mode, const uint32_t *rank,
                                                  vs_cu_thr_dev *thr)
{
    __shared__ float s_s[8];
    __shared__ uint64_t s_id[8];
    __shared__ uint32_t s_x[8];
    const uint32_t p = blockIdx.x, lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    if (mode[p] == VS_CU_THR_KEEP)
        return; /* the whole block */
    const uint32_t n = held(c, p), want = mode[p] == VS_CU_THR_RANK ? rank[p] : 0u;
    vs_cu_thr_dev t;
    t.s = -INFINITY;
    t.pad = 0;
    t.id = ~0ull;
    if (want >= 1 && want <= n) {
        const vs_cu_cand_dev *buf = c.cand + (size_t)p * c.cap;
        float ps = 0.0f;
        uint64_t pid = 0;
        uint32_t px = VS_CU_NONE; /* no previous yet: every candidate qualifies */
        for (uint32_t r = 0; r < want; r++) {
            float bs = 0.0f;
            uint64_t bid = 0;
            uint32_t bx = VS_CU_NONE;
            for (uint32_t i = threadIdx.x; i < n; i += blockDim.x) {
                const vs_cu_cand_dev e = buf[i];
                const uint64_t id = slot_id(c, e.slot);
                if (px != VS_CU_NONE && !vs_better(ps, pid, e.s, id))
                    continue; /* not ranked after the previous one */
                if (before(e.s, id, i, bs, bid, bx)) {
                    bs = e.s;
                    bid = id;
                    bx = i;
                }
            }
            for (int o = 16; o > 0; o >>= 1) { /* warp, then block */
                const float os = __shfl_xor_sync(kFull, bs, o);
                const uint64_t oid = __shfl_xor_sync(kFull, bid, o);
                const uint32_t ox = __shfl_xor_sync(kFull, bx, o);
                if (before(os, oid, ox, bs, bid, bx)) {
                    bs = os;
                    bid = oid;
                    bx = ox;
                }
            }
            if (lane == 0) {
                s_s[warp] = bs;
                s_id[warp] = bid;
                s_x[warp] = bx;
            }
            __syncthreads();
            bs = s_s[0];
            bid = s_id[0];
            bx = s_x[0];
            for (uint32_t w = 1; w < blockDim.x / 32u; w++)
                if (before(s_s[w], s_id[w], s_x[w], bs, bid, bx)) {
                    bs = s_s[w];
                    bid = s_id[w];
                    bx = s_x[w];
                }
            __syncthreads(); /* s_* are rewritten next pass */
            ps = bs;
            pid = bid;
            px = bx;
        }
        t.s = ps;
        t.id = pid;
    }
    if (threadIdx.x == 0)
        thr[act[p]] = t;
}

/* One block per buffer of at most VS_CU_SMALL_SORT candidates: bitonic sort of (score, id, index)
 * in shared memory, padded to a power of two with entries that rank last. */
/* Sorts s_s/s_id/s_x[0 .. N) best first (N a power of two, at most VS_CU_SMALL_SORT): a bitonic
 * network, the whole block taking part. */
__device__ void block_bitonic(float *s_s, uint64_t *s_id, uint32_t *s_x, uint32_t N)
{
    for (uint32_t k = 2; k <= N; k <<= 1)
        for (uint32_t j = k >> 1; j > 0; j >>= 1) {
            for (uint32_t i = threadIdx.x; i < N; i += blockDim.x) {
                const uint32_t o = i ^ j;
                if (o <= i)
                    continue;
                const bool first = (i & k) == 0; /* this run puts the best first */
                const bool swap = first ? before(s_s[o], s_id[o], s_x[o], s_s[i], s_id[i], s_x[i])
                                        : before(s_s[i], s_id[i], s_x[i], s_s[o], s_id[o], s_x[o]);
                if (swap) {
                    const float ts = s_s[i];
                    const uint64_t ti = s_id[i];
                    const uint32_t tx = s_x[i];
                    s_s[i] = s_s[o];
                    s_id[i] = s_id[o];
                    s_x[i] = s_x[o];
                    s_s[o] = ts;
                    s_id[o] = ti;
                    s_x[o] = tx;
                }
            }
            __syncthreads();
        }
}

/* Loads candidates [from, from + count) of buffer p (those below n; padding past it) into the
 * shared arrays at dst. */
__device__ void load_cands(const vs_cu_common &c, size_t base, uint32_t n, uint32_t from,
                           uint32_t count, float *s_s, uint64_t *s_id, uint32_t *s_x)
{
    for (uint32_t i = threadIdx.x; i < count; i += blockDim.x) {
        const uint32_t at = from + i;
        if (at < n) {
            const vs_cu_cand_dev e = c.cand[base + at];
            s_s[i] = e.s;
            s_id[i] = slot_id(c, e.slot);
            s_x[i] = (uint32_t)(base + at);
        } else {
            s_s[i] = 0.0f;
            s_id[i] = 0;
            s_x[i] = VS_CU_NONE;
        }
    }
}

__global__ void __launch_bounds__(256) small_sort_kernel(const vs_cu_common c, uint32_t *v2)
{
    __shared__ float s_s[VS_CU_SMALL_SORT];
    __shared__ uint64_t s_id[VS_CU_SMALL_SORT];
    __shared__ uint32_t s_x[VS_CU_SMALL_SORT];
    const uint32_t p = blockIdx.x, n = held(c, p);
    const size_t base = (size_t)p * c.cap;
    if (n > VS_CU_SMALL_SORT)
        return; /* the caller's mistake (it checks): never past shared memory */
    uint32_t N = 2;
    while (N < n)
        N <<= 1;
    load_cands(c, base, n, 0, N, s_s, s_id, s_x);
    __syncthreads();
    block_bitonic(s_s, s_id, s_x, N);
    for (uint32_t i = threadIdx.x; i < n; i += blockDim.x)
        v2[base + i] = s_x[i];
}

/* One block per buffer, for buffers past VS_CU_SMALL_SORT when only the first k matter: the best
 * K (k rounded up to a power of two) stay at the front of shared memory, and each round fills the
 * rest with the next candidates and sorts all of it again, so a buffer of n costs about
 * n / (VS_CU_SMALL_SORT - K) block sorts instead of a device-wide segmented sort. */
__global__ void __launch_bounds__(256) topk_sort_kernel(const vs_cu_common c, uint32_t k,
                                                        uint32_t *v2)
{
    __shared__ float s_s[VS_CU_SMALL_SORT];
    __shared__ uint64_t s_id[VS_CU_SMALL_SORT];
    __shared__ uint32_t s_x[VS_CU_SMALL_SORT];
    const uint32_t p = blockIdx.x, n = held(c, p);
    const size_t base = (size_t)p * c.cap;
    uint32_t K = 1;
    while (K < k)
        K <<= 1;
    if (K > VS_CU_TOPK_SORT_MAX)
        return; /* the caller's mistake (it checks) */
    load_cands(c, base, n, 0, VS_CU_SMALL_SORT, s_s, s_id, s_x);
    __syncthreads();
    block_bitonic(s_s, s_id, s_x, VS_CU_SMALL_SORT);
    for (uint32_t next = VS_CU_SMALL_SORT; next < n; next += VS_CU_SMALL_SORT - K) {
        load_cands(c, base, n, next, VS_CU_SMALL_SORT - K, s_s + K, s_id + K, s_x + K);
        __syncthreads();
        block_bitonic(s_s, s_id, s_x, VS_CU_SMALL_SORT);
    }
    for (uint32_t i = threadIdx.x; i < k && i < n; i += blockDim.x)
        v2[base + i] = s_x[i];
}

static dim3 per_buffer_grid(uint32_t cap, uint32_t n_act)
{
    uint32_t x = (cap + 1023) / 1024;
    if (x > 64)
        x = 64;
    if (x == 0)
        x = 1;
    return dim3(x, n_act);
}

} // namespace vs_cu

extern "C" cudaError_t vs_cu_sort_temp_bytes(uint64_t n_items, uint32_t n_seg, size_t *bytes)
{
#ifdef VS_CUDA_EMU
    (void)n_items;
    (void)n_seg;
    *bytes = 16;
    return cudaSuccess;
#else
    size_t a = 0, b = 0;
    cudaError_t e = cub::DeviceSegmentedSort::StableSortPairs(
        nullptr, a, (const uint64_t *)nullptr, (uint64_t *)nullptr, (const uint32_t *)nullptr,
        (uint32_t *)nullptr, (int64_t)n_items, (int64_t)n_seg, (const uint32_t *)nullptr,
        (const uint32_t *)nullptr, (cudaStream_t)0);
    if (e != cudaSuccess)
        return e;
    e = cub::DeviceSegmentedSort::StableSortPairsDescending(
        nullptr, b, (const float *)nullptr, (float *)nullptr, (const uint32_t *)nullptr,
        (uint32_t *)nullptr, (int64_t)n_items, (int64_t)n_seg, (const uint32_t *)nullptr,
        (const uint32_t *)nullptr, (cudaStream_t)0);
    *bytes = a > b ? a : b;
    return e;
#endif
}

extern "C" cudaError_t vs_cu_sort(const vs_cu_common *c, uint32_t n_act, vs_cu_sortbuf *b,
                                  cudaStream_t s)
{
    if (n_act == 0)
        return cudaSuccess;
    if (n_act > 65535u)
        return cudaErrorInvalidValue;
    const int64_t items = (int64_t)n_act * c->cap;
    const dim3 grid = vs_cu::per_buffer_grid(c->cap, n_act);
    VS_LAUNCH(vs_cu::sort_prep_kernel, grid, 256, s, *c, *b);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
#ifdef VS_CUDA_EMU
    vs_emu_segsort(b->key_id, b->key_id_out, b->v0, b->v1, b->beg, b->end, n_act, false);
    VS_LAUNCH(vs_cu::sort_scores_kernel, grid, 256, s, *c, *b);
    if ((e = cudaGetLastError()) != cudaSuccess)
        return e;
    vs_emu_segsort(b->key_s, b->key_s_out, b->v1, b->v2, b->beg, b->end, n_act, true);
    (void)items;
    return cudaSuccess;
#else
    size_t tb = b->temp_bytes;
    e = cub::DeviceSegmentedSort::StableSortPairs(b->temp, tb, (const uint64_t *)b->key_id,
                                                  b->key_id_out, (const uint32_t *)b->v0, b->v1,
                                                  items, (int64_t)n_act, (const uint32_t *)b->beg,
                                                  (const uint32_t *)b->end, s);
    if (e != cudaSuccess)
        return e;
    VS_LAUNCH(vs_cu::sort_scores_kernel, grid, 256, s, *c, *b);
    if ((e = cudaGetLastError()) != cudaSuccess)
        return e;
    tb = b->temp_bytes;
    return cub::DeviceSegmentedSort::StableSortPairsDescending(
        b->temp, tb, (const float *)b->key_s, b->key_s_out, (const uint32_t *)b->v1, b->v2, items,
        (int64_t)n_act, (const uint32_t *)b->beg, (const uint32_t *)b->end, s);
#endif
}

extern "C" cudaError_t vs_cu_launch_set_thr(const vs_cu_common *c, const vs_cu_sortbuf *b,
                                            uint32_t n_act, const uint32_t *act,
                                            const uint8_t *mode, const uint32_t *rank,
                                            vs_cu_thr_dev *thr, cudaStream_t s)
{
    if (n_act == 0)
        return cudaSuccess;
    VS_LAUNCH(vs_cu::set_thr_kernel, (n_act + 255) / 256, 256, s, *c, b->v2, n_act, act, mode,
              rank, thr);
    return cudaGetLastError();
}

extern "C" cudaError_t vs_cu_launch_kth(const vs_cu_common *c, uint32_t n_act,
                                        const uint32_t *act, const uint8_t *mode,
                                        const uint32_t *rank, vs_cu_thr_dev *thr, cudaStream_t s)
{
    if (n_act == 0)
        return cudaSuccess;
    VS_LAUNCH(vs_cu::kth_kernel, n_act, 256, s, *c, act, mode, rank, thr);
    return cudaGetLastError();
}

extern "C" cudaError_t vs_cu_topk_sort(const vs_cu_common *c, uint32_t n_act, uint32_t k,
                                       vs_cu_sortbuf *b, cudaStream_t s)
{
    if (n_act == 0 || k == 0)
        return cudaSuccess;
    if (k > VS_CU_TOPK_SORT_MAX)
        return cudaErrorInvalidValue;
    VS_LAUNCH(vs_cu::topk_sort_kernel, n_act, 256, s, *c, k, b->v2);
    return cudaGetLastError();
}

extern "C" cudaError_t vs_cu_small_sort(const vs_cu_common *c, uint32_t n_act, vs_cu_sortbuf *b,
                                        cudaStream_t s)
{
    if (n_act == 0)
        return cudaSuccess;
    VS_LAUNCH(vs_cu::small_sort_kernel, n_act, 256, s, *c, b->v2);
    return cudaGetLastError();
}

extern "C" cudaError_t vs_cu_launch_emit(const vs_cu_common *c, const vs_cu_sortbuf *b,
                                         uint32_t n_act, const uint32_t *emit_k,
                                         const uint32_t *dst, vs_cand *out, uint32_t out_stride,
                                         uint32_t *out_n, cudaStream_t s)
{
    if (n_act == 0)
        return cudaSuccess;
    if (n_act > 65535u)
        return cudaErrorInvalidValue;
    const dim3 grid = vs_cu::per_buffer_grid(c->cap, n_act);
    VS_LAUNCH(vs_cu::emit_kernel, grid, 256, s, *c, b->v2, emit_k, dst, out, out_stride, out_n);
    return cudaGetLastError();
}
