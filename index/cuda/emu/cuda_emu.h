/*
 * cuda_emu.h: a CPU stand-in for the CUDA device, so that the CUDA backend's kernels and host code
 * run (slowly) where there is no GPU, as in CI: tests/unit/cuda.cmake compiles the backend's .cu
 * files as C++ with VS_CUDA_EMU against this header, links cuda_backend.c against emu_runtime.cpp
 * instead of the CUDA runtime and cuBLAS, and runs tests/gpu/test_gpu_backend.c (and the
 * conformance suite) on it.
 *
 * What is emulated faithfully: the thread hierarchy (each thread of a block is a fiber), warp
 * collectives (__shfl_sync, __shfl_xor_sync, __ballot_sync, __syncwarp: all 32 lanes must arrive,
 * and a lane that has exited is reported as the bug it would be), __syncthreads, shared memory per
 * block, uninitialised device memory (filled with a pattern), out-of-memory at a set capacity, and
 * cuBLAS GemmEx for the types the backend uses (with the option to refuse a type, to test the
 * fallback). What is not: blocks run one after another (no inter-block races), streams are
 * synchronous, CUB is replaced by std::stable_sort, and nothing about speed carries over.
 */
#ifndef VS_CUDA_EMU_H
#define VS_CUDA_EMU_H

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <vector_functions.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <numeric>
#include <type_traits>
#include <vector>

#include "quant.h"

#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __launch_bounds__
#undef __shared__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

/* ===== The thread hierarchy (emu_runtime.cpp) ===== */

const dim3 &vs_emu_thread_idx();
const dim3 &vs_emu_block_idx();
const dim3 &vs_emu_block_dim();
const dim3 &vs_emu_grid_dim();
unsigned vs_emu_lane();
uint64_t vs_emu_exchange(unsigned mask, uint64_t mine, int src_lane);
unsigned vs_emu_ballot(unsigned mask, int pred);
void vs_emu_syncwarp(unsigned mask);
void vs_emu_syncthreads();
void vs_emu_launch(dim3 grid, dim3 block, const std::function<void()> &body);

#define threadIdx (vs_emu_thread_idx())
#define blockIdx (vs_emu_block_idx())
#define blockDim (vs_emu_block_dim())
#define gridDim (vs_emu_grid_dim())

#define VS_LAUNCH(k, grid, block, s, ...)                                                      \
    ((void)(s), vs_emu_launch(dim3(grid), dim3(block), [&]() { k(__VA_ARGS__); }))

/* ===== Device intrinsics ===== */

template <class T> inline T __shfl_sync(unsigned mask, T v, int src)
{
    static_assert(sizeof(T) <= 8, "shuffle of a value wider than 8 bytes");
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof v);
    b = vs_emu_exchange(mask, b, src & 31);
    T r;
    std::memcpy(&r, &b, sizeof r);
    return r;
}

template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int m)
{
    return __shfl_sync(mask, v, (int)(vs_emu_lane() ^ (unsigned)m));
}

inline unsigned __ballot_sync(unsigned mask, int pred) { return vs_emu_ballot(mask, pred); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { vs_emu_syncwarp(mask); }
inline void __syncthreads() { vs_emu_syncthreads(); }

template <class T> inline T __ldg(const T *p) { return *p; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }

inline int __dp4a(int a, int b, int c)
{
    for (int i = 0; i < 4; i++)
        c += (int)(int8_t)(uint8_t)((unsigned)a >> (8 * i)) *
             (int)(int8_t)(uint8_t)((unsigned)b >> (8 * i));
    return c;
}

inline float __uint_as_float(unsigned u)
{
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline unsigned __float_as_uint(float f)
{
    unsigned u;
    std::memcpy(&u, &f, 4);
    return u;
}

inline unsigned atomicAdd(unsigned *p, unsigned v)
{
    unsigned o = *p;
    *p = o + v;
    return o;
}

inline unsigned long long atomicOr(unsigned long long *p, unsigned long long v)
{
    unsigned long long o = *p;
    *p = o | v;
    return o;
}

template <class T> inline T min(T a, T b) { return a < b ? a : b; }

/* f16 types and conversions: cuda_fp16.h's host versions (included above) */

template <class K>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, K, int, size_t)
{
    *n = 2;
    return cudaSuccess;
}

/* ===== WMMA (mma.h), as the MMA scan kernel uses it =====
 * A fragment's element-to-lane layout is the hardware's secret, and kernels that only load, multiply
 * and store fragments never see it, so here every lane's fragment holds the whole matrix: loads and
 * stores are exact, and mma_sync computes the product once per warp (lane 0, into a scratch the
 * warp shares) and hands it to all lanes. Each call is warp-collective, as on the device: all 32
 * lanes must arrive (checked). */
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment;

template <int M, int N, int K, class T, class L> struct fragment<matrix_a, M, N, K, T, L> {
    T x[M * K]; /* [m][k] */
};
template <int M, int N, int K, class T, class L> struct fragment<matrix_b, M, N, K, T, L> {
    T x[K * N]; /* [k][n] */
};
template <int M, int N, int K, class T> struct fragment<accumulator, M, N, K, T, void> {
    T x[M * N]; /* [m][n] */
};

template <int M, int N, int K, class T>
inline void fill_fragment(fragment<accumulator, M, N, K, T> &f, T v)
{
    vs_emu_syncwarp(0xffffffffu);
    for (int i = 0; i < M * N; i++)
        f.x[i] = v;
}

template <int M, int N, int K, class T, class L>
inline void load_matrix_sync(fragment<matrix_a, M, N, K, T, L> &f, const T *p, unsigned ldm)
{
    vs_emu_syncwarp(0xffffffffu);
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++)
            f.x[m * K + k] = std::is_same<L, row_major>::value ? p[(size_t)m * ldm + k]
                                                               : p[(size_t)k * ldm + m];
}

template <int M, int N, int K, class T, class L>
inline void load_matrix_sync(fragment<matrix_b, M, N, K, T, L> &f, const T *p, unsigned ldm)
{
    vs_emu_syncwarp(0xffffffffu);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++)
            f.x[k * N + n] = std::is_same<L, row_major>::value ? p[(size_t)k * ldm + n]
                                                               : p[(size_t)n * ldm + k];
}

template <int M, int N, int K, class T>
inline void store_matrix_sync(T *p, const fragment<accumulator, M, N, K, T> &f, unsigned ldm,
                              layout_t layout)
{
    vs_emu_syncwarp(0xffffffffu);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++)
            p[layout == mem_row_major ? (size_t)m * ldm + n : (size_t)n * ldm + m] = f.x[m * N + n];
    vs_emu_syncwarp(0xffffffffu);
}

/* The warp's scratch for one product (blocks run one at a time, so one per warp of a block). */
int32_t *vs_emu_mma_scratch(size_t elems);

template <int M, int N, int K, class TA, class LA, class TB, class LB, class TC>
inline void mma_sync(fragment<accumulator, M, N, K, TC> &d, const fragment<matrix_a, M, N, K, TA, LA> &a,
                     const fragment<matrix_b, M, N, K, TB, LB> &b,
                     const fragment<accumulator, M, N, K, TC> &c)
{
    static_assert(sizeof(TC) == 4, "32-bit accumulators only");
    TC *out = reinterpret_cast<TC *>(vs_emu_mma_scratch((size_t)M * N));
    vs_emu_syncwarp(0xffffffffu);
    if (vs_emu_lane() == 0)
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                TC acc = c.x[m * N + n];
                for (int k = 0; k < K; k++)
                    acc += (TC)a.x[m * K + k] * (TC)b.x[k * N + n];
                out[m * N + n] = acc;
            }
    vs_emu_syncwarp(0xffffffffu);
    for (int i = 0; i < M * N; i++)
        d.x[i] = out[i];
    vs_emu_syncwarp(0xffffffffu);
}
} // namespace wmma
} // namespace nvcuda

/* ===== CUB's stable segmented sort, on the host ===== */

template <class K>
inline void vs_emu_segsort(const K *kin, K *kout, const uint32_t *vin, uint32_t *vout,
                           const uint32_t *beg, const uint32_t *end, uint32_t nseg, bool desc)
{
    std::vector<uint32_t> idx;
    for (uint32_t p = 0; p < nseg; p++) {
        const uint32_t b = beg[p], e = end[p];
        if (e <= b)
            continue;
        idx.resize(e - b);
        std::iota(idx.begin(), idx.end(), 0u);
        std::stable_sort(idx.begin(), idx.end(), [&](uint32_t i, uint32_t j) {
            return desc ? kin[b + i] > kin[b + j] : kin[b + i] < kin[b + j];
        });
        std::vector<K> ks(e - b);
        std::vector<uint32_t> vs(e - b);
        for (uint32_t t = 0; t < e - b; t++) {
            ks[t] = kin[b + idx[t]];
            vs[t] = vin[b + idx[t]];
        }
        std::copy(ks.begin(), ks.end(), kout + b);
        std::copy(vs.begin(), vs.end(), vout + b);
    }
}

#endif
