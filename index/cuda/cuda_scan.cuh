/*
 * cuda_scan.cuh: the fused small-batch scan (see cuda_kernels.h), a template over the storage
 * (ST: 0 f32, 1 f16, 2 i8, 3 b1, as vs_storage) and the compiled query-vector count NQV (1..32).
 * Each cuda_scan_<storage>.cu instantiates one storage, so the four compile in parallel.
 *
 * ===== How a warp walks the rows =====
 * A block has 8 warps; a warp takes 8 rows at a time (a "group"), 4 lanes per row. Lane `sub` of a
 * row loads the row's 16-byte slices sub, sub + 4, sub + 8, ... (up to four loads in flight before
 * the first use), so the 4 lanes of a row read 64 contiguous bytes per load instruction and the
 * warp reads 8 rows' worth: every 32-byte sector fetched is used whole. Each lane keeps one
 * accumulator per query vector (NQV registers) and takes the query slices from global memory,
 * where the whole block reads the same few kilobytes (L1 hits, broadcast within the warp).
 *
 * The 4 partial sums of a row are then combined with a reduce-scatter over the 4 lanes (NQV / 2 +
 * NQV / 4 shuffles instead of 2 NQV for a butterfly): afterwards lane sub holds the full dots of
 * query vectors [base(sub), base(sub) + NQV / 4) and turns them into scores (row constants from the
 * row's 16-byte constant slot, which sits beside the codes, in the same lines). The scores go to a
 * per-warp shared-memory tile [row][qv], and the warp's 32 lanes then take (row, query) pairs:
 * combine the query's terms (max over each term's vectors, SUM or MAX over terms), check the
 * query's allowed bitmap, compare with the query's (score, id) threshold, and append passing pairs
 * to the query's candidate buffer with one atomic per 8 lanes (the 8 rows of one query).
 *
 * Rows that are not live, lack the field, or (when every query has a bitmap) are allowed by no
 * query are never loaded: deleted rows and sparse bitmaps cost no bandwidth.
 */
#ifndef VS_CUDA_SCAN_CUH
#define VS_CUDA_SCAN_CUH

#ifdef VS_CUDA_EMU /* the CPU emulation of tests/unit/cuda.cmake (emu/cuda_emu.h) */
#include "emu/cuda_emu.h"
#else
#include <cuda_fp16.h>
#include <cuda_runtime.h>
/* Launches kernel k (a name or a function pointer) on stream s. */
#define VS_LAUNCH(k, grid, block, s, ...) k<<<(grid), (block), 0, (s)>>>(__VA_ARGS__)
#endif

#include "cuda_kernels.h"

namespace vs_cu {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kLanes = 4;     /* lanes a row */
constexpr int kGroupRows = 8; /* rows a warp takes at a time */
constexpr unsigned kFull = 0xffffffffu;

/* ===== Small device helpers ===== */

__device__ __forceinline__ uint4 ld16(const uint8_t *p)
{
    return __ldg(reinterpret_cast<const uint4 *>(p));
}

__device__ __forceinline__ bool bit(const uint64_t *w, uint32_t s)
{
    return (__ldg(reinterpret_cast<const unsigned long long *>(w) + (s >> 6)) >> (s & 63u)) & 1ull;
}

__device__ __forceinline__ uint64_t slot_id(const vs_cu_common &c, uint32_t slot)
{
    const uint32_t mask = (1u << c.chunk_shift) - 1u;
    return c.id_chunks[slot >> c.chunk_shift][slot & mask];
}

__device__ __forceinline__ bool allowed(const vs_cu_query_dev &q, uint32_t slot)
{
    return !q.allowed || (slot < q.allowed_bits && bit(q.allowed, slot));
}

/* Appends (score, slot) for the lanes with pass; seg is the mask of lanes sharing one buffer
 * (lanes in one segment must agree on pos). Every lane of the warp calls it. */
__device__ __forceinline__ void append(const vs_cu_common &c, bool pass, unsigned seg, uint32_t pos,
                                       float score, uint32_t slot, uint32_t lane)
{
    const unsigned mine = __ballot_sync(kFull, pass) & seg;
    const uint32_t leader = mine ? (uint32_t)(__ffs(mine) - 1) : lane;
    uint32_t base = 0;
    if (pass && lane == leader)
        base = atomicAdd(c.cnt + pos, (uint32_t)__popc(mine));
    base = __shfl_sync(kFull, base, (int)leader);
    if (pass) {
        const uint32_t at = base + (uint32_t)__popc(mine & ((1u << lane) - 1u));
        if (at < c.cap) {
            vs_cu_cand_dev e;
            e.s = score;
            e.slot = slot;
            c.cand[(size_t)pos * c.cap + at] = e;
        }
    }
}

/* ===== One 16-byte slice against one query slice, per storage ===== */

template <int ST> struct Slice;

template <> struct Slice<0> { /* f32: 4 floats, query 4 floats */
    typedef float Acc;
    struct Prep { float v[4]; };
    static __device__ __forceinline__ Prep prep(uint4 x)
    {
        Prep p = {{__uint_as_float(x.x), __uint_as_float(x.y), __uint_as_float(x.z),
                   __uint_as_float(x.w)}};
        return p;
    }
    static __device__ __forceinline__ void dot(float &acc, const Prep &p, const uint8_t *q)
    {
        const float4 b = __ldg(reinterpret_cast<const float4 *>(q));
        acc = fmaf(p.v[0], b.x, acc);
        acc = fmaf(p.v[1], b.y, acc);
        acc = fmaf(p.v[2], b.z, acc);
        acc = fmaf(p.v[3], b.w, acc);
    }
};

template <> struct Slice<1> { /* f16: 8 halves, converted once; query 8 floats (32 bytes) */
    typedef float Acc;
    struct Prep { float v[8]; };
    static __device__ __forceinline__ float2 h2(uint32_t u)
    {
        __half2_raw r;
        r.x = (unsigned short)(u & 0xffffu);
        r.y = (unsigned short)(u >> 16);
        return __half22float2(__half2(r));
    }
    static __device__ __forceinline__ Prep prep(uint4 x)
    {
        const float2 a = h2(x.x), b = h2(x.y), c = h2(x.z), d = h2(x.w);
        Prep p = {{a.x, a.y, b.x, b.y, c.x, c.y, d.x, d.y}};
        return p;
    }
    static __device__ __forceinline__ void dot(float &acc, const Prep &p, const uint8_t *q)
    {
        const float4 b0 = __ldg(reinterpret_cast<const float4 *>(q));
        const float4 b1 = __ldg(reinterpret_cast<const float4 *>(q) + 1);
        acc = fmaf(p.v[0], b0.x, acc);
        acc = fmaf(p.v[1], b0.y, acc);
        acc = fmaf(p.v[2], b0.z, acc);
        acc = fmaf(p.v[3], b0.w, acc);
        acc = fmaf(p.v[4], b1.x, acc);
        acc = fmaf(p.v[5], b1.y, acc);
        acc = fmaf(p.v[6], b1.z, acc);
        acc = fmaf(p.v[7], b1.w, acc);
    }
};

template <> struct Slice<2> { /* i8: 16 codes, query 16 codes, dp4a into int32 */
    typedef int Acc;
    struct Prep { int v[4]; };
    static __device__ __forceinline__ Prep prep(uint4 x)
    {
        Prep p = {{(int)x.x, (int)x.y, (int)x.z, (int)x.w}};
        return p;
    }
    static __device__ __forceinline__ void dot(int &acc, const Prep &p, const uint8_t *q)
    {
        const int4 b = __ldg(reinterpret_cast<const int4 *>(q));
        acc = __dp4a(p.v[0], b.x, acc);
        acc = __dp4a(p.v[1], b.y, acc);
        acc = __dp4a(p.v[2], b.z, acc);
        acc = __dp4a(p.v[3], b.w, acc);
    }
};

template <> struct Slice<3> { /* b1: 128 bits, query 128 bits: differing bits */
    typedef int Acc;
    struct Prep { unsigned v[4]; };
    static __device__ __forceinline__ Prep prep(uint4 x)
    {
        Prep p = {{x.x, x.y, x.z, x.w}};
        return p;
    }
    static __device__ __forceinline__ void dot(int &acc, const Prep &p, const uint8_t *q)
    {
        const uint4 b = __ldg(reinterpret_cast<const uint4 *>(q));
        acc += __popc(p.v[0] ^ b.x) + __popc(p.v[1] ^ b.y) + __popc(p.v[2] ^ b.z) +
               __popc(p.v[3] ^ b.w);
    }
};

__device__ __forceinline__ float raw_f(float v) { return v; }
__device__ __forceinline__ float raw_f(int) { return 0.0f; }
__device__ __forceinline__ int32_t raw_i(float) { return 0; }
__device__ __forceinline__ int32_t raw_i(int v) { return v; }
__device__ __forceinline__ uint32_t raw_bits(float v) { return __float_as_uint(v); }
__device__ __forceinline__ uint32_t raw_bits(int v) { return (uint32_t)v; }

/* ===== The kernel ===== */

template <int ST, int NQV, bool DOTS>
__global__ void __launch_bounds__(kThreads) scan_small(const vs_cu_small_args a)
{
    typedef typename Slice<ST>::Acc T;
    constexpr int kOwn = NQV >= 4 ? NQV / 4 : NQV; /* query vectors a lane owns after reducing */
    __shared__ float s_sc[DOTS ? 1 : kWarps][kGroupRows][NQV + 1]; /* +1: no bank conflicts */
    __shared__ vs_cu_query_dev s_q[DOTS ? 1 : 32];
    __shared__ vs_cu_thr_dev s_thr[DOTS ? 1 : 32];
    __shared__ vs_cu_term_dev s_t[DOTS ? 1 : 32 * VS_MAX_TERMS];
    __shared__ vs_cu_qvc s_qvc[DOTS ? 1 : NQV];

    const uint32_t qv0 = DOTS ? blockIdx.y * (uint32_t)NQV : 0u;
    const uint32_t nv = DOTS ? min(a.nv - qv0, (uint32_t)NQV) : a.nv;
    const uint32_t qv_bytes = a.f.vecs * a.f.qslice;
    const uint8_t *qdata = a.qdata + (size_t)qv0 * qv_bytes;

    if (!DOTS) {
        for (uint32_t i = threadIdx.x; i < a.c.nq; i += kThreads) {
            s_q[i] = a.c.queries[i];
            s_thr[i] = a.c.thr[i];
        }
        for (uint32_t i = threadIdx.x; i < a.c.n_terms; i += kThreads)
            s_t[i] = a.c.terms[i];
        for (uint32_t i = threadIdx.x; i < nv; i += kThreads)
            s_qvc[i] = a.qvc[i];
        __syncthreads();
    }

    const uint32_t lane = threadIdx.x & 31u, warp = threadIdx.x >> 5, sub = lane & 3u,
                   rl = lane >> 2;
    const uint32_t shift = a.c.chunk_shift, mask = (1u << shift) - 1u;
    const uint32_t n_rows = a.rows.end - a.rows.begin;
    const uint32_t n_groups = (n_rows + kGroupRows - 1) / kGroupRows;
    const uint32_t vecs = a.f.vecs;

    for (uint32_t g = blockIdx.x * kWarps + warp; g < n_groups; g += gridDim.x * kWarps) {
        const uint32_t idx = a.rows.begin + g * kGroupRows + rl;
        bool elig = idx < a.rows.end;
        uint32_t slot = 0;
        if (elig) {
            slot = a.rows.list ? __ldg(a.rows.list + idx) : idx;
            elig = slot < a.c.slot_limit && bit(a.c.live, slot) && bit(a.f.has, slot);
        }
        if (!DOTS && elig && a.filter_all) { /* allowed by no query: skip the row */
            bool any = false;
            for (uint32_t i = 0; i < a.c.nq && !any; i++)
                any = s_q[i].pos != VS_CU_NONE && allowed(s_q[i], slot);
            elig = any;
        }

        /* ---- dots: this lane's slices of the row against every query vector ---- */
        T acc[NQV];
#pragma unroll
        for (int j = 0; j < NQV; j++)
            acc[j] = 0;
        const uint8_t *row = nullptr;
        if (elig) {
            row = a.f.chunks[slot >> shift] + (size_t)(slot & mask) * a.f.stride;
            for (uint32_t v0 = sub; v0 < vecs; v0 += 4 * kLanes) {
                uint4 x[4];
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    const uint32_t v = v0 + (uint32_t)u * kLanes;
                    x[u] = v < vecs ? ld16(row + (size_t)v * 16u) : make_uint4(0, 0, 0, 0);
                }
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    const uint32_t v = v0 + (uint32_t)u * kLanes;
                    if (v < vecs) {
                        const typename Slice<ST>::Prep p = Slice<ST>::prep(x[u]);
                        const uint8_t *qs = qdata + (size_t)v * a.f.qslice;
#pragma unroll
                        for (int j = 0; j < NQV; j++)
                            if ((uint32_t)j < nv)
                                Slice<ST>::dot(acc[j], p, qs + (size_t)j * qv_bytes);
                    }
                }
            }
        }

        /* ---- reduce over the row's 4 lanes ---- */
        if constexpr (NQV >= 4) { /* reduce-scatter: halves over lane bit 1, quarters over bit 0 */
            const bool hi = (sub & 2u) != 0;
#pragma unroll
            for (int i = 0; i < NQV / 2; i++) {
                const T send = hi ? acc[i] : acc[i + NQV / 2];
                const T keep = hi ? acc[i + NQV / 2] : acc[i];
                acc[i] = keep + __shfl_xor_sync(kFull, send, 2);
            }
            const bool lo = (sub & 1u) != 0;
#pragma unroll
            for (int i = 0; i < NQV / 4; i++) {
                const T send = lo ? acc[i] : acc[i + NQV / 4];
                const T keep = lo ? acc[i + NQV / 4] : acc[i];
                acc[i] = keep + __shfl_xor_sync(kFull, send, 1);
            }
        } else { /* butterfly: every lane gets every sum, lane 0 of the row owns them */
#pragma unroll
            for (int i = 0; i < NQV; i++) {
                acc[i] += __shfl_xor_sync(kFull, acc[i], 1);
                acc[i] += __shfl_xor_sync(kFull, acc[i], 2);
            }
        }
        const uint32_t base =
            NQV >= 4 ? ((sub & 2u) ? (uint32_t)NQV / 2 : 0u) + ((sub & 1u) ? (uint32_t)NQV / 4 : 0u)
                     : 0u;
        const bool owner = NQV >= 4 || sub == 0;

        if constexpr (DOTS) {
            if (owner && idx < a.rows.end) {
                uint32_t *out = static_cast<uint32_t *>(a.out);
#pragma unroll
                for (int i = 0; i < kOwn; i++)
                    if (base + i < nv)
                        out[(size_t)(qv0 + base + i) * a.ld + (idx - a.rows.begin)] =
                            raw_bits(acc[i]);
            }
            continue;
        } else {
            /* ---- scores of the owned query vectors, into the warp's tile ---- */
            vs_cu_rowc rc = {0.0f, 0.0f, 0.0f, 0.0f};
            if (elig && a.f.has_consts) {
                const uint4 cw = ld16(row + a.f.code_pad);
                rc.middle = __uint_as_float(cw.x);
                rc.scale = __uint_as_float(cw.y);
                rc.norm2 = __uint_as_float(cw.z);
            }
            if (owner) {
#pragma unroll
                for (int i = 0; i < kOwn; i++) {
                    const uint32_t j = base + (uint32_t)i;
                    if (j < nv)
                        s_sc[warp][rl][j] =
                            vs_cu_vec_score((uint32_t)ST, (int)a.f.is_l2, a.f.bits,
                                            raw_f(acc[i]), raw_i(acc[i]), rc, s_qvc[j]);
                }
            }
            __syncwarp();

            /* ---- (row, query) pairs: combine, filter, threshold, append ---- */
            const uint32_t npairs = (uint32_t)kGroupRows * a.c.nq;
            for (uint32_t p0 = 0; p0 < npairs; p0 += 32) {
                const uint32_t p = p0 + lane, r = p & 7u, qi = p >> 3;
                const uint32_t r_slot = __shfl_sync(kFull, slot, (int)(r * kLanes));
                const int r_elig = __shfl_sync(kFull, (int)elig, (int)(r * kLanes));
                bool pass = false;
                float score = 0.0f;
                uint32_t pos = 0;
                if (p < npairs && r_elig) {
                    const vs_cu_query_dev &q = s_q[qi];
                    pos = q.pos;
                    if (pos != VS_CU_NONE && allowed(q, r_slot)) {
                        vs_cu_comb cb;
                        vs_cu_comb_init(&cb);
                        for (uint32_t t = 0; t < q.n_terms; t++) {
                            const vs_cu_term_dev tm = s_t[q.term_first + t];
                            float best = -INFINITY;
                            for (uint32_t v = 0; v < tm.qv_count; v++)
                                best = fmaxf(best, s_sc[warp][r][tm.qv_first + v]);
                            vs_cu_comb_add(&cb, q.combine, tm.weight, best);
                        }
                        score = vs_cu_canon(vs_cu_comb_final(&cb, q.combine));
                        const vs_cu_thr_dev th = s_thr[qi];
                        /* the id is read only on a tie with the threshold */
                        pass = vs_cu_passes(score, score == th.s ? slot_id(a.c, r_slot) : 0u,
                                            th.s, th.id);
                    }
                }
                append(a.c, pass, 0xffu << (lane & 24u), pos, score, r_slot, lane);
            }
            __syncwarp();
        }
    }
}

/* Blocks a launch of kernel k may keep resident: sm_count x its occupancy. */
template <typename K> static int resident_blocks(K k, int sm_count)
{
    int occ = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k, kThreads, 0) != cudaSuccess ||
        occ < 1)
        occ = 1;
    return occ * (sm_count > 0 ? sm_count : 1);
}

template <int ST, int NQV, bool DOTS>
static cudaError_t launch_nqv(const vs_cu_small_args &a, int sm_count, cudaStream_t s)
{
    static int cap = 0; /* resident blocks, once per instantiation */
    const uint32_t n_rows = a.rows.end - a.rows.begin;
    const uint32_t groups = (n_rows + kGroupRows - 1) / kGroupRows;
    uint32_t blocks = (groups + kWarps - 1) / kWarps;
    if (blocks == 0 || a.nv == 0)
        return cudaSuccess;
    if (!cap)
        cap = resident_blocks(scan_small<ST, NQV, DOTS>, sm_count);
    if (blocks > (uint32_t)cap)
        blocks = (uint32_t)cap;
    const dim3 grid(blocks, DOTS ? (a.nv + NQV - 1) / NQV : 1u);
    auto k = scan_small<ST, NQV, DOTS>;
    VS_LAUNCH(k, grid, kThreads, s, a);
    return cudaGetLastError();
}

/* Dispatch on the compiled query-vector count. Dot mode always takes 32 per block. */
template <int ST>
static cudaError_t launch_small(const vs_cu_small_args &a, int dots, int sm_count, cudaStream_t s)
{
    if (dots)
        return launch_nqv<ST, 32, true>(a, sm_count, s);
    if (a.nv <= 1)
        return launch_nqv<ST, 1, false>(a, sm_count, s);
    if (a.nv <= 2)
        return launch_nqv<ST, 2, false>(a, sm_count, s);
    if (a.nv <= 4)
        return launch_nqv<ST, 4, false>(a, sm_count, s);
    if (a.nv <= 8)
        return launch_nqv<ST, 8, false>(a, sm_count, s);
    if (a.nv <= 16)
        return launch_nqv<ST, 16, false>(a, sm_count, s);
    if (a.nv <= 32)
        return launch_nqv<ST, 32, false>(a, sm_count, s);
    return cudaErrorInvalidValue;
}

} // namespace vs_cu

#endif
