/*
 * emu_runtime.cpp: the CUDA runtime and cuBLAS calls the backend makes, and the fiber scheduler
 * that runs kernels, for the CPU emulation (see cuda_emu.h). The API functions keep the exact
 * signatures of cuda_runtime_api.h and cublas_api.h, so cuda_backend.c links against this file
 * unchanged.
 *
 * Environment: VS_CUDA_EMU_MEM (device bytes, default 3 GiB), VS_CUDA_EMU_L2 (bytes, default
 * 1 MiB: small, so tiles are small and many), VS_CUDA_EMU_REFUSE_GEMM (f32, f16, i8 or all: cuBLAS
 * answers NOT_SUPPORTED for those), VS_CUDA_EMU_NO_DEVICE (no device at all).
 */
#include <cublas_v2.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>

#include "cuda_emu.h"

/* ===== Fibers ===== */

namespace {

enum { READY, WAIT_WARP, WAIT_BLOCK, DONE };

struct Fiber {
    ucontext_t ctx;
    dim3 tid;
    int state;
};

struct Emu {
    dim3 grid, block, bidx;
    std::vector<Fiber> f;
    std::vector<char *> stacks;
    std::vector<uint64_t> deposit;
    std::vector<unsigned> mask;
    ucontext_t sched;
    int cur = -1;
    const std::function<void()> *body = nullptr;
    bool in_kernel = false;
    ~Emu()
    {
        for (char *p : stacks)
            std::free(p);
    }
};

Emu E;
const size_t kStack = 256u << 10;

[[noreturn]] void die(const char *what)
{
    std::fprintf(stderr, "cuda emulator: %s (block %u,%u thread %d)\n", what, E.bidx.x, E.bidx.y,
                 E.cur);
    std::abort();
}

void fiber_entry()
{
    (*E.body)();
    E.f[E.cur].state = DONE;
    swapcontext(&E.f[E.cur].ctx, &E.sched);
}

void wait(int st)
{
    if (!E.in_kernel)
        die("a device collective outside a kernel");
    Fiber &fb = E.f[E.cur];
    fb.state = st;
    swapcontext(&fb.ctx, &E.sched);
}

void run_block(int n)
{
    for (int i = 0; i < n; i++) {
        Fiber &fb = E.f[i];
        fb.tid = dim3(i % E.block.x, (i / E.block.x) % E.block.y, i / (E.block.x * E.block.y));
        fb.state = READY;
        getcontext(&fb.ctx);
        fb.ctx.uc_stack.ss_sp = E.stacks[i];
        fb.ctx.uc_stack.ss_size = kStack;
        fb.ctx.uc_link = &E.sched;
        makecontext(&fb.ctx, fiber_entry, 0);
    }
    for (;;) {
        bool ran = false;
        for (int i = 0; i < n; i++) {
            if (E.f[i].state != READY)
                continue;
            E.cur = i;
            ran = true;
            swapcontext(&E.sched, &E.f[i].ctx);
        }
        E.cur = -1;
        /* release barriers: a warp when every lane waits at a warp collective, the block when
         * every live thread waits at __syncthreads */
        bool released = false, all_done = true, all_block = true;
        for (int w = 0; w < n; w += 32) {
            int waiting = 0, done = 0, other = 0, lanes = std::min(32, n - w);
            for (int i = w; i < w + lanes; i++) {
                int s = E.f[i].state;
                waiting += s == WAIT_WARP;
                done += s == DONE;
                other += s == WAIT_BLOCK || s == READY;
            }
            if (waiting && done)
                die("a warp collective with lanes that have exited");
            if (waiting == lanes) {
                for (int i = w; i < w + lanes; i++)
                    E.f[i].state = READY;
                released = true;
            }
            (void)other;
        }
        for (int i = 0; i < n; i++) {
            all_done = all_done && E.f[i].state == DONE;
            all_block = all_block && (E.f[i].state == WAIT_BLOCK || E.f[i].state == DONE);
        }
        if (all_done)
            return;
        if (all_block) {
            for (int i = 0; i < n; i++)
                if (E.f[i].state == WAIT_BLOCK)
                    E.f[i].state = READY;
            released = true;
        }
        if (!ran && !released)
            die("deadlock: threads wait at different barriers");
    }
}

} // namespace

const dim3 &vs_emu_thread_idx() { return E.f[E.cur].tid; }
const dim3 &vs_emu_block_idx() { return E.bidx; }
const dim3 &vs_emu_block_dim() { return E.block; }
const dim3 &vs_emu_grid_dim() { return E.grid; }
unsigned vs_emu_lane() { return (unsigned)E.cur & 31u; }

uint64_t vs_emu_exchange(unsigned mask, uint64_t mine, int src)
{
    if (mask != 0xffffffffu)
        die("partial-warp shuffle (the backend uses full warps only)");
    const int me = E.cur, base = me & ~31;
    E.deposit[me] = mine;
    wait(WAIT_WARP); /* every lane has deposited */
    uint64_t r = E.deposit[base + src];
    wait(WAIT_WARP); /* every lane has read */
    return r;
}

unsigned vs_emu_ballot(unsigned mask, int pred)
{
    if (mask != 0xffffffffu)
        die("partial-warp ballot");
    const int me = E.cur, base = me & ~31;
    E.deposit[me] = pred != 0;
    wait(WAIT_WARP);
    unsigned b = 0;
    for (int i = 0; i < 32; i++)
        b |= (E.deposit[base + i] ? 1u : 0u) << i;
    wait(WAIT_WARP);
    return b;
}

void vs_emu_syncwarp(unsigned mask)
{
    if (mask != 0xffffffffu)
        die("partial-warp __syncwarp");
    wait(WAIT_WARP);
}

void vs_emu_syncthreads() { wait(WAIT_BLOCK); }

int32_t *nvcuda::wmma::vs_emu_mma_scratch(size_t elems)
{
    static std::vector<int32_t> scratch; /* 32 warps at most, blocks one at a time */
    if (!E.in_kernel)
        die("a warp-level matrix operation outside a kernel");
    if (scratch.size() < 32 * elems)
        scratch.resize(32 * elems);
    return scratch.data() + (size_t)(E.cur >> 5) * elems;
}

void vs_emu_launch(dim3 grid, dim3 block, const std::function<void()> &body)
{
    const int n = (int)(block.x * block.y * block.z);
    if (E.in_kernel)
        die("a launch from inside a kernel");
    if (n <= 0 || n > 1024 || n % 32)
        die("block size must be a multiple of 32, at most 1024");
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535)
        die("bad grid");
    while ((int)E.stacks.size() < n)
        E.stacks.push_back(static_cast<char *>(std::malloc(kStack)));
    if ((int)E.f.size() < n) {
        E.f.resize(n);
        E.deposit.resize(n);
    }
    E.grid = grid;
    E.block = block;
    E.body = &body;
    E.in_kernel = true;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                E.bidx = dim3(x, y, z);
                run_block(n);
            }
    E.in_kernel = false;
}

/* ===== Runtime API ===== */

namespace {
cudaError_t last = cudaSuccess;
std::map<void *, size_t> allocs;
size_t used = 0;

size_t env_size(const char *name, size_t dflt)
{
    const char *v = std::getenv(name);
    return v && *v ? (size_t)std::strtoull(v, nullptr, 10) : dflt;
}

size_t capacity() { return env_size("VS_CUDA_EMU_MEM", (size_t)3 << 30); }

cudaError_t fail(cudaError_t e)
{
    last = e;
    return e;
}

struct Event {
    double ms;
};

double now_ms()
{
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}
} // namespace

extern "C" {

cudaError_t cudaGetDeviceCount(int *n)
{
    if (std::getenv("VS_CUDA_EMU_NO_DEVICE")) {
        *n = 0;
        return fail(cudaErrorNoDevice);
    }
    *n = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }

cudaError_t cudaGetDevice(int *d)
{
    *d = 0;
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last;
    last = cudaSuccess;
    return e;
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected (emulator)";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    default: return "emulated CUDA error";
    }
}

cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int)
{
    *v = 0;
    if (a == cudaDevAttrMultiProcessorCount)
        *v = 4;
    else if (a == cudaDevAttrL2CacheSize)
        *v = (int)env_size("VS_CUDA_EMU_L2", 1u << 20);
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int)
{
    std::memset(p, 0, sizeof *p);
    std::snprintf(p->name, sizeof p->name, "vecscan CUDA emulator (CPU)");
    p->multiProcessorCount = 4;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    *p = nullptr;
    if (used + bytes > capacity())
        return fail(cudaErrorMemoryAllocation);
    void *q = std::aligned_alloc(256, (bytes + 255) & ~(size_t)255);
    if (!q)
        return fail(cudaErrorMemoryAllocation);
    std::memset(q, 0xcd, bytes); /* device memory starts with no particular value */
    allocs[q] = bytes;
    used += bytes;
    *p = q;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
    if (!p)
        return cudaSuccess;
    auto it = allocs.find(p);
    if (it == allocs.end()) {
        std::fprintf(stderr, "cuda emulator: cudaFree of %p, not allocated\n", p);
        std::abort();
    }
    used -= it->second;
    allocs.erase(it);
    std::free(p);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *fr, size_t *tot)
{
    *tot = capacity();
    *fr = *tot - used;
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int)
{
    *p = std::malloc(bytes);
    return *p ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void *p)
{
    std::free(p);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int v, size_t n)
{
    std::memset(p, v, n);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t)
{
    std::memset(p, v, n);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *d, const void *s, size_t n, enum cudaMemcpyKind)
{
    std::memmove(d, s, n);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind, cudaStream_t)
{
    std::memmove(d, s, n);
    return cudaSuccess;
}

cudaError_t cudaMemcpy2DAsync(void *d, size_t dp, const void *s, size_t sp, size_t w, size_t h,
                              enum cudaMemcpyKind, cudaStream_t)
{
    if (w > dp || w > sp)
        return fail(cudaErrorInvalidValue);
    for (size_t r = 0; r < h; r++)
        std::memmove(static_cast<char *>(d) + r * dp, static_cast<const char *>(s) + r * sp, w);
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int)
{
    static int token;
    *s = reinterpret_cast<cudaStream_t>(&token);
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaEventCreate(cudaEvent_t *e)
{
    *e = reinterpret_cast<cudaEvent_t>(new Event{0});
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t)
{
    reinterpret_cast<Event *>(e)->ms = now_ms();
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
    *ms = (float)(reinterpret_cast<Event *>(b)->ms - reinterpret_cast<Event *>(a)->ms);
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    delete reinterpret_cast<Event *>(e);
    return cudaSuccess;
}

/* ===== cuBLAS ===== */

cublasStatus_t cublasCreate_v2(cublasHandle_t *h)
{
    static int token;
    *h = reinterpret_cast<cublasHandle_t>(&token);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream_v2(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }

static bool refused(const char *type)
{
    const char *r = std::getenv("VS_CUDA_EMU_REFUSE_GEMM");
    return r && (std::string(r) == "all" || std::string(r) == type);
}

/* C (m x n, column-major) = op(A) op(B) for the layouts the backend uses: op(A) = A^T (A is k x m
 * column-major, lda >= k), op(B) = B (k x n, ldb >= k); f32, f16 (f32 out) and i8 (i32 out). */
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType at,
                            int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
                            void *C, cudaDataType ct, int ldc, cublasComputeType_t cmp,
                            cublasGemmAlgo_t)
{
    if (ta != CUBLAS_OP_T || tb != CUBLAS_OP_N || m < 0 || n < 0 || k < 0 || lda < k || ldb < k ||
        ldc < m || at != bt)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (at == CUDA_R_8I) {
        if (refused("i8"))
            return CUBLAS_STATUS_NOT_SUPPORTED;
        if (ct != CUDA_R_32I || cmp != CUBLAS_COMPUTE_32I || lda % 4 || ldb % 4)
            return CUBLAS_STATUS_NOT_SUPPORTED;
        const int32_t al = *static_cast<const int32_t *>(alpha), be = *static_cast<const int32_t *>(beta);
        const int8_t *a = static_cast<const int8_t *>(A), *b = static_cast<const int8_t *>(B);
        int32_t *c = static_cast<int32_t *>(C);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                int32_t s = 0;
                for (int p = 0; p < k; p++)
                    s += (int32_t)a[(size_t)i * lda + p] * b[(size_t)j * ldb + p];
                c[(size_t)j * ldc + i] = al * s + (be ? be * c[(size_t)j * ldc + i] : 0);
            }
        return CUBLAS_STATUS_SUCCESS;
    }
    if (at != CUDA_R_32F && at != CUDA_R_16F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (refused(at == CUDA_R_32F ? "f32" : "f16"))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (ct != CUDA_R_32F || (cmp != CUBLAS_COMPUTE_32F && cmp != CUBLAS_COMPUTE_32F_PEDANTIC))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const float al = *static_cast<const float *>(alpha), be = *static_cast<const float *>(beta);
    float *c = static_cast<float *>(C);
    auto get = [&](const void *base, size_t i) -> float {
        if (at == CUDA_R_32F)
            return static_cast<const float *>(base)[i];
        return vs_f16_to_f32(static_cast<const uint16_t *>(base)[i]);
    };
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float s = 0;
            for (int p = 0; p < k; p++)
                s = std::fmaf(get(A, (size_t)i * lda + p), get(B, (size_t)j * ldb + p), s);
            c[(size_t)j * ldc + i] = al * s + (be != 0.0f ? be * c[(size_t)j * ldc + i] : 0.0f);
        }
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
