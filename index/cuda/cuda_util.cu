/*
 * cuda_util.cu: bookkeeping kernels (see cuda_kernels.h): writing uploaded rows to their slots,
 * mirroring the slot view's changed words and ids, turning a slot list into a bitmap, and filling a
 * field with random rows for the benchmark.
 */
#include "cuda_scan.cuh"

namespace vs_cu {

static unsigned grid_for(size_t n, unsigned block)
{
    size_t g = (n + block - 1) / block;
    if (g > 65536)
        g = 65536;
    return g ? (unsigned)g : 1u;
}

__global__ void scatter_rows_kernel(uint8_t *const *chunks, uint32_t shift, uint32_t stride,
                                    const uint8_t *src, const uint32_t *slots, uint32_t n)
{
    const uint32_t units = stride / 16u, mask = (1u << shift) - 1u;
    const size_t total = (size_t)n * units;
    for (size_t u = blockIdx.x * (size_t)blockDim.x + threadIdx.x; u < total;
         u += (size_t)gridDim.x * blockDim.x) {
        const uint32_t i = (uint32_t)(u / units), w = (uint32_t)(u % units), slot = slots[i];
        uint8_t *dst = chunks[slot >> shift] + (size_t)(slot & mask) * stride + w * 16u;
        *reinterpret_cast<uint4 *>(dst) =
            *reinterpret_cast<const uint4 *>(src + (size_t)i * stride + w * 16u);
    }
}

__global__ void mirror_kernel(const vs_cu_mirror_args a)
{
    const uint32_t n = a.n_words > a.n_ids ? a.n_words : a.n_ids;
    const uint32_t mask = (1u << a.chunk_shift) - 1u;
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        if (i < a.n_words) {
            const uint32_t w = a.widx[i];
            a.live[w] = a.lw[i];
            for (uint32_t f = 0; f < a.n_fields; f++)
                a.has[f][w] = a.hw[(size_t)f * a.n_words + i];
        }
        if (i < a.n_ids) {
            const uint32_t s = a.slots[i];
            a.id_chunks[s >> a.chunk_shift][s & mask] = a.ids[i];
        }
    }
}

__global__ void list_to_bitmap_kernel(const uint32_t *list, uint32_t n, uint64_t *bm)
{
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const uint32_t s = list[i];
        atomicOr(reinterpret_cast<unsigned long long *>(bm) + (s >> 6), 1ull << (s & 63u));
    }
}

__device__ __forceinline__ uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1) from 24 random bits. */
__device__ __forceinline__ float unit(uint32_t r)
{
    return (float)(r >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

/* One thread per 4-byte word of a row's codes (the zero padding stays), plus the constants. */
__global__ void fill_kernel(const vs_cu_fdev f, uint32_t shift, uint32_t n, uint32_t code_bytes,
                            uint64_t seed)
{
    const uint32_t words = code_bytes / 4u, per = words + 1u, mask = (1u << shift) - 1u;
    const size_t total = (size_t)n * per;
    for (size_t u = blockIdx.x * (size_t)blockDim.x + threadIdx.x; u < total;
         u += (size_t)gridDim.x * blockDim.x) {
        const uint32_t row = (uint32_t)(u / per), w = (uint32_t)(u % per);
        uint8_t *p = f.chunks[row >> shift] + (size_t)(row & mask) * f.stride;
        const uint64_t r = mix(seed ^ ((uint64_t)row << 20) ^ w);
        if (w < words) {
            uint32_t v;
            if (f.storage == VS_STORAGE_F32) {
                v = __float_as_uint(unit((uint32_t)r));
            } else if (f.storage == VS_STORAGE_F16) {
                const __half a = __float2half_rn(unit((uint32_t)r));
                const __half b = __float2half_rn(unit((uint32_t)(r >> 32)));
                v = (uint32_t)__half_as_ushort(a) | ((uint32_t)__half_as_ushort(b) << 16);
            } else {
                v = (uint32_t)r;
            }
            reinterpret_cast<uint32_t *>(p)[w] = v;
        } else {
            for (uint32_t b = words * 4u; b < code_bytes; b++) /* a tail of 1..3 bytes */
                p[b] = (uint8_t)(r >> (8u * (b & 3u)));
            if (f.has_consts) {
                float4 c;
                c.x = 0.05f * unit((uint32_t)r);                     /* middle */
                c.y = (0.5f + 0.5f * unit((uint32_t)(r >> 32))) / 64.0f; /* scale */
                c.z = 1.0f + unit((uint32_t)(r >> 16));               /* norm2 */
                c.w = 0.0f;
                *reinterpret_cast<float4 *>(p + f.code_pad) = c;
            }
        }
    }
}

} // namespace vs_cu

extern "C" cudaError_t vs_cu_launch_scatter_rows(uint8_t *const *chunks, uint32_t chunk_shift,
                                                 uint32_t stride, const uint8_t *src,
                                                 const uint32_t *slots, uint32_t n,
                                                 cudaStream_t s)
{
    if (n == 0)
        return cudaSuccess;
    VS_LAUNCH(vs_cu::scatter_rows_kernel, vs_cu::grid_for((size_t)n * (stride / 16u), 256), 256, s,
              chunks, chunk_shift, stride, src, slots, n);
    return cudaGetLastError();
}

extern "C" cudaError_t vs_cu_launch_mirror(const vs_cu_mirror_args *a, cudaStream_t s)
{
    const uint32_t n = a->n_words > a->n_ids ? a->n_words : a->n_ids;
    if (n == 0)
        return cudaSuccess;
    VS_LAUNCH(vs_cu::mirror_kernel, vs_cu::grid_for(n, 256), 256, s, *a);
    return cudaGetLastError();
}

extern "C" cudaError_t vs_cu_launch_list_to_bitmap(const uint32_t *list, uint32_t n, uint64_t *bm,
                                                   cudaStream_t s)
{
    if (n == 0)
        return cudaSuccess;
    VS_LAUNCH(vs_cu::list_to_bitmap_kernel, vs_cu::grid_for(n, 256), 256, s, list, n, bm);
    return cudaGetLastError();
}

extern "C" cudaError_t vs_cu_launch_fill_random(const vs_cu_fdev *f, uint32_t chunk_shift,
                                                uint32_t n, uint32_t code_bytes, uint64_t seed,
                                                cudaStream_t s)
{
    if (n == 0)
        return cudaSuccess;
    const size_t total = (size_t)n * (code_bytes / 4u + 1u);
    VS_LAUNCH(vs_cu::fill_kernel, vs_cu::grid_for(total, 256), 256, s, *f, chunk_shift, n,
              code_bytes, seed);
    return cudaGetLastError();
}
