/*
 * cuda_backend.c: vs_cuda_backend, the index's rows in GPU memory and the exhaustive scan there.
 *
 * What this file does, in the order a collection lives:
 *
 * Storage. Each field's rows live in device chunks of chunk_rows rows (cudaMalloc, never managed
 * memory), added as reserve() asks and never moved or copied, so growth never needs twice the
 * memory. A row is its codes padded to 16 bytes, then, where needed, a 16-byte constant slot
 * {middle, scale, norm2} (cuda_plan.h). A device array of chunk pointers lets a kernel reach any
 * slot. Alongside: the ids of the slots (chunked the same way) and bitmaps for live and for each
 * field's presence (contiguous, grown geometrically with a copy: they are N / 8 bytes).
 *
 * Writes. write_rows packs rows into pinned host memory, copies them in one transfer and scatters
 * them to their slots with one kernel. slots_changed only records the slots; the next scan mirrors
 * the changed bitmap words and ids from the core's slot view in one batched transfer (or copies the
 * whole view when most of it changed). Searches and writes never overlap (the engine's rule), so a
 * scan always sees the writes before it.
 *
 * Scan. A batch is split into groups (cuda_plan.c): queries over the same rows (every slot, or one
 * slot list) and the same fields. For each group, the selection driver (vs_cu_select_run) asks for
 * scans, sorts, thresholds and results; this file implements those operations on the device:
 *  - small groups (one field, <= 32 query vectors) run the fused kernel: one pass over the rows;
 *  - larger groups of one-vector queries over an i8 or f16 field run the MMA scan: tensor-core
 *    products with the scoring, threshold and append in the same kernel, one launch;
 *  - other larger ones run tiles: per field a cuBLAS GEMM (f32 via sgemm, f16 with f32 accumulation,
 *    i8 x i8 -> i32) writes raw dots of a tile sized for L2, then the combine kernel applies the
 *    scales, metric, terms, masks and threshold; b1 (and any shape cuBLAS refuses) uses the fused
 *    kernel's dot mode instead of a GEMM;
 *  - candidates are sorted per query with CUB, and the first k of each go to the results.
 * Every kernel runs on the store's own stream; the host waits only to read the candidate counts
 * after a main scan and the results at the end.
 *
 * Errors. Out of device memory is RESOURCE_EXHAUSTED naming what was being allocated, the bytes
 * asked and the bytes free; any other CUDA failure is INTERNAL with the runtime's message.
 */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cuda_bench.h"
#include "cuda_kernels.h"
#include "cuda_plan.h"
#include "quant.h"

#define RING_BYTES (8u << 20)   /* pinned ring for small uploads */
#define STAGE_BYTES (16u << 20) /* pinned staging for rows and mirror updates */
#define MAX_GROUP_QUERIES 1024u

/* ===== Errors and device memory ===== */

static vs_err cu_err(vs_status *st, cudaError_t e, const char *what)
{
    if (e == cudaErrorMemoryAllocation) {
        size_t fr = 0, tot = 0;
        (void)cudaGetLastError();
        cudaMemGetInfo(&fr, &tot);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                             "cuda: out of device memory in %s (%zu of %zu bytes free)", what, fr,
                             tot);
    }
    return vs_status_set(st, VS_ERR_INTERNAL, "cuda: %s: %s", what, cudaGetErrorString(e));
}

#define CU_TRY(call, what)                                                                      \
    do {                                                                                        \
        cudaError_t e_ = (call);                                                                \
        if (e_ != cudaSuccess)                                                                  \
            return cu_err(st, e_, what);                                                        \
    } while (0)

#define TRY(call)                                                                               \
    do {                                                                                        \
        vs_err r_ = (call);                                                                     \
        if (r_ != VS_OK)                                                                        \
            return r_;                                                                          \
    } while (0)

/* cudaMalloc of bytes for what; out of memory names the bytes asked and the bytes free. */
static vs_err cu_alloc(void **p, size_t bytes, const char *what, vs_status *st)
{
    size_t fr = 0, tot = 0;
    cudaError_t e;
    *p = NULL;
    if (bytes == 0)
        bytes = 16;
    e = cudaMalloc(p, bytes);
    if (e == cudaSuccess)
        return VS_OK;
    *p = NULL;
    (void)cudaGetLastError();
    cudaMemGetInfo(&fr, &tot);
    if (e == cudaErrorMemoryAllocation)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                             "cuda: out of device memory: %s needs %zu bytes, %zu of %zu bytes free",
                             what, bytes, fr, tot);
    return vs_status_set(st, VS_ERR_INTERNAL, "cuda: cudaMalloc of %zu bytes for %s: %s", bytes,
                         what, cudaGetErrorString(e));
}

/* A grow-only device buffer. */
typedef struct cu_buf {
    void *p;
    size_t cap;
} cu_buf;

static vs_err buf_need(cu_buf *b, size_t bytes, const char *what, vs_status *st)
{
    size_t want;
    if (b->p && b->cap >= bytes)
        return VS_OK;
    cudaFree(b->p); /* synchronizes: nothing queued still reads it */
    b->p = NULL;
    b->cap = 0;
    want = bytes + bytes / 4 + 256;
    if (cu_alloc(&b->p, want, what, NULL) != VS_OK) {
        want = bytes ? bytes : 16;
        TRY(cu_alloc(&b->p, want, what, st));
    }
    b->cap = want;
    return VS_OK;
}

/* Frees a scratch buffer. */
static void buf_free(cu_buf *b)
{
    cudaFree(b->p);
    b->p = NULL;
    b->cap = 0;
}

/* ===== The store ===== */

typedef struct cu_field {
    vs_field_layout lay;
    vs_cu_layout cl;
    uint8_t **h_chunks; /* host copy of the device chunk pointers */
    cu_buf d_chunks;    /* device array of them */
    uint64_t *d_has;    /* presence bitmap, words_cap words */
    int gemm_bad;       /* cuBLAS refused this field's shape: dot kernel instead */
} cu_field;

typedef struct cu_store {
    int dev, sm_count;
    size_t l2_bytes;
    cudaStream_t stream;
    cublasHandle_t blas;
    int blas_state; /* 0 not yet, 1 ready, -1 unavailable */
    uint32_t n_fields;
    cu_field f[VS_MAX_FIELDS];
    uint32_t chunk_rows, chunk_shift, max_stride;
    uint32_t n_chunks, ptr_cap; /* chunks allocated; entries of the host pointer arrays */
    uint64_t **h_id_chunks;
    cu_buf d_id_chunks;
    uint64_t *d_live;
    size_t words_cap;
    /* mirror of the slot view */
    uint32_t *dirty;
    size_t n_dirty, dirty_cap;
    int full_sync;
    /* pinned host memory */
    uint8_t *h_ring;
    size_t ring_head;
    uint8_t *h_stage;
    uint8_t *h_back; /* pinned: small read-backs, several per synchronisation */
    size_t back_cap;
    /* device scratch */
    cu_buf stage, blob, round, thr, list, bitmaps, cand, cnt, tile, gather, out, out_n;
    cu_buf key_id, key_id_out, key_s, key_s_out, v0, v1, v2, beg, end, temp;
    vs_cu_select_stats last;
    uint32_t test_cap; /* vs_cuda_set_test_capacity */
    int mma_off;       /* vs_cuda_set_mma(store, 0) */
    uint32_t last_mma; /* groups of the last scan that ran the MMA scan */
} cu_store;

/* Copies bytes from host src to device dst on the stream, through the pinned ring when it fits (no
 * wait), else directly. src may be reused as soon as this returns. */
static vs_err upload(cu_store *s, void *dst, const void *src, size_t bytes, vs_status *st)
{
    if (bytes == 0)
        return VS_OK;
    if (s->h_ring && bytes <= RING_BYTES / 2) {
        size_t at = (s->ring_head + 255) & ~(size_t)255;
        if (at + bytes > RING_BYTES) { /* wrap: everything copied from the ring is done */
            CU_TRY(cudaStreamSynchronize(s->stream), "upload");
            at = 0;
        }
        memcpy(s->h_ring + at, src, bytes);
        CU_TRY(cudaMemcpyAsync(dst, s->h_ring + at, bytes, cudaMemcpyHostToDevice, s->stream),
               "upload");
        s->ring_head = at + bytes;
        return VS_OK;
    }
    CU_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s->stream), "upload");
    return VS_OK;
}

/* Pinned host memory of at least bytes for read-backs (contents not kept). */
static vs_err back_need(cu_store *s, size_t bytes, vs_status *st)
{
    if (s->h_back && s->back_cap >= bytes)
        return VS_OK;
    CU_TRY(cudaStreamSynchronize(s->stream), "read-back");
    if (s->h_back)
        cudaFreeHost(s->h_back);
    s->h_back = NULL;
    s->back_cap = 0;
    size_t want = bytes < 65536 ? 65536 : bytes + bytes / 2;
    if (cudaHostAlloc((void **)&s->h_back, want, cudaHostAllocDefault) != cudaSuccess) {
        (void)cudaGetLastError();
        s->h_back = NULL;
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                             "cuda: cannot pin %zu bytes of host memory for results", want);
    }
    s->back_cap = want;
    return VS_OK;
}

/* Makes the store's device current for this thread. */
static vs_err use_device(const cu_store *s, vs_status *st)
{
    CU_TRY(cudaSetDevice(s->dev), "cudaSetDevice");
    return VS_OK;
}

int vs_cuda_device_count(char *why, size_t why_len)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        if (why && why_len)
            snprintf(why, why_len, "%s", cudaGetErrorString(e));
        return 0;
    }
    if (n == 0 && why && why_len)
        snprintf(why, why_len, "no CUDA device");
    return n;
}

void vs_cuda_device_name(int ordinal, char *buf, size_t len)
{
    struct cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, ordinal) == cudaSuccess)
        snprintf(buf, len, "%s", p.name);
    else
        snprintf(buf, len, "cuda:%d", ordinal);
}

/* Frees everything the store holds, on the device and on the host. */
static void cu_destroy(void *store)
{
    cu_store *s = store;
    if (!s)
        return;
    cudaSetDevice(s->dev);
    if (s->stream)
        cudaStreamSynchronize(s->stream);
    for (uint32_t f = 0; f < s->n_fields; f++) {
        for (uint32_t c = 0; c < s->n_chunks; c++)
            cudaFree(s->f[f].h_chunks[c]);
        free(s->f[f].h_chunks);
        buf_free(&s->f[f].d_chunks);
        cudaFree(s->f[f].d_has);
    }
    for (uint32_t c = 0; c < s->n_chunks; c++)
        cudaFree(s->h_id_chunks[c]);
    free(s->h_id_chunks);
    buf_free(&s->d_id_chunks);
    cudaFree(s->d_live);
    cu_buf *bufs[] = {&s->stage, &s->blob, &s->round, &s->thr, &s->list, &s->bitmaps, &s->cand,
                      &s->cnt, &s->tile, &s->gather, &s->out, &s->out_n, &s->key_id,
                      &s->key_id_out, &s->key_s, &s->key_s_out, &s->v0, &s->v1, &s->v2,
                      &s->beg, &s->end, &s->temp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        buf_free(bufs[i]);
    if (s->h_ring)
        cudaFreeHost(s->h_ring);
    if (s->h_stage)
        cudaFreeHost(s->h_stage);
    if (s->h_back)
        cudaFreeHost(s->h_back);
    if (s->blas_state == 1)
        cublasDestroy(s->blas);
    if (s->stream)
        cudaStreamDestroy(s->stream);
    free(s->dirty);
    free(s);
}

/* Creates an empty store on device opt->device_ordinal: layouts, stream, pinned staging. */
static vs_err cu_create(const vs_field_layout *fields, uint32_t n_fields,
                        const vs_index_options *opt, void **store, vs_status *st)
{
    char why[160];
    int n_dev = vs_cuda_device_count(why, sizeof why), ord = opt ? opt->device_ordinal : 0, v = 0;
    cu_store *s;
    vs_err err;
    *store = NULL;
    if (n_dev == 0)
        return vs_status_set(st, VS_ERR_UNAVAILABLE, "cuda: no usable CUDA device (%s)", why);
    if (ord < 0 || ord >= n_dev)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                             "cuda: device cuda:%d does not exist (%d device(s))", ord, n_dev);
    if (n_fields < 1 || n_fields > VS_MAX_FIELDS)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "cuda: %u fields (1..%u)", n_fields,
                             VS_MAX_FIELDS);
    s = calloc(1, sizeof *s);
    if (!s)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cuda: out of host memory");
    s->dev = ord;
    s->n_fields = n_fields;
    for (uint32_t f = 0; f < n_fields; f++) {
        s->f[f].lay = fields[f];
        if ((err = vs_cu_layout_make(&fields[f], &s->f[f].cl, st)) != VS_OK) {
            free(s);
            return err;
        }
        if (s->f[f].cl.stride > s->max_stride)
            s->max_stride = s->f[f].cl.stride;
    }
    s->chunk_rows = vs_cu_chunk_rows(opt ? opt->chunk_rows : 0, s->max_stride);
    while ((1u << s->chunk_shift) < s->chunk_rows)
        s->chunk_shift++;
    if ((err = use_device(s, st)) != VS_OK) {
        free(s);
        return err;
    }
    cudaDeviceGetAttribute(&s->sm_count, cudaDevAttrMultiProcessorCount, ord);
    cudaDeviceGetAttribute(&v, cudaDevAttrL2CacheSize, ord);
    s->l2_bytes = v > 0 ? (size_t)v : (4u << 20);
    if (cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking) != cudaSuccess) {
        (void)cudaGetLastError();
        free(s);
        return vs_status_set(st, VS_ERR_INTERNAL, "cuda: cannot create a stream on cuda:%d", ord);
    }
    if (cudaHostAlloc((void **)&s->h_ring, RING_BYTES, cudaHostAllocDefault) != cudaSuccess) {
        (void)cudaGetLastError();
        s->h_ring = NULL; /* uploads go direct */
    }
    if (cudaHostAlloc((void **)&s->h_stage, STAGE_BYTES, cudaHostAllocDefault) != cudaSuccess) {
        (void)cudaGetLastError();
        cu_destroy(s);
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED,
                             "cuda: cannot pin %u bytes of host memory for staging", STAGE_BYTES);
    }
    s->full_sync = 1;
    *store = s;
    return VS_OK;
}

/* ===== Growth ===== */

/* Room for one more chunk pointer in every host array. */
static vs_err grow_ptr_arrays(cu_store *s, vs_status *st)
{
    uint32_t cap;
    if (s->n_chunks < s->ptr_cap)
        return VS_OK;
    cap = s->ptr_cap ? s->ptr_cap * 2 : 16;
    for (uint32_t f = 0; f < s->n_fields; f++) {
        uint8_t **p = realloc(s->f[f].h_chunks, cap * sizeof *p);
        if (!p)
            return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cuda: out of host memory");
        s->f[f].h_chunks = p;
    }
    uint64_t **q = realloc(s->h_id_chunks, cap * sizeof *q);
    if (!q)
        return vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cuda: out of host memory");
    s->h_id_chunks = q;
    s->ptr_cap = cap;
    return VS_OK;
}

/* Bitmaps covering words words: new ones, zeroed, old contents copied. */
static vs_err grow_bitmaps(cu_store *s, size_t words, vs_status *st)
{
    size_t cap = s->words_cap ? s->words_cap : 1024;
    uint64_t *nl = NULL, *nh[VS_MAX_FIELDS] = {0};
    vs_err err;
    if (words <= s->words_cap)
        return VS_OK;
    while (cap < words)
        cap *= 2;
    if ((err = cu_alloc((void **)&nl, cap * 8, "the live bitmap", st)) != VS_OK)
        return err;
    for (uint32_t f = 0; f < s->n_fields; f++) {
        if ((err = cu_alloc((void **)&nh[f], cap * 8, "a field presence bitmap", st)) != VS_OK) {
            cudaFree(nl);
            for (uint32_t g = 0; g < f; g++)
                cudaFree(nh[g]);
            return err;
        }
    }
    CU_TRY(cudaMemsetAsync(nl, 0, cap * 8, s->stream), "bitmap growth");
    if (s->words_cap)
        CU_TRY(cudaMemcpyAsync(nl, s->d_live, s->words_cap * 8, cudaMemcpyDeviceToDevice,
                               s->stream), "bitmap growth");
    for (uint32_t f = 0; f < s->n_fields; f++) {
        CU_TRY(cudaMemsetAsync(nh[f], 0, cap * 8, s->stream), "bitmap growth");
        if (s->words_cap)
            CU_TRY(cudaMemcpyAsync(nh[f], s->f[f].d_has, s->words_cap * 8,
                                   cudaMemcpyDeviceToDevice, s->stream), "bitmap growth");
    }
    CU_TRY(cudaStreamSynchronize(s->stream), "bitmap growth");
    cudaFree(s->d_live);
    s->d_live = nl;
    for (uint32_t f = 0; f < s->n_fields; f++) {
        cudaFree(s->f[f].d_has);
        s->f[f].d_has = nh[f];
    }
    s->words_cap = cap;
    return VS_OK;
}

/* Adds chunks (rows, ids) until n_slots fit; bitmaps and pointer tables follow. What fitted is
 * kept when the device runs out. */
static vs_err cu_reserve(void *store, uint32_t n_slots, vs_status *st)
{
    cu_store *s = store;
    uint64_t need = ((uint64_t)n_slots + s->chunk_rows - 1) >> s->chunk_shift;
    uint32_t before = s->n_chunks;
    vs_err err = VS_OK;
    TRY(use_device(s, st));
    while (s->n_chunks < need) {
        uint8_t *rows[VS_MAX_FIELDS] = {0};
        uint64_t *ids = NULL;
        uint32_t f;
        char what[96];
        if ((err = grow_ptr_arrays(s, st)) != VS_OK)
            break;
        for (f = 0; f < s->n_fields; f++) {
            size_t bytes = (size_t)s->chunk_rows * s->f[f].cl.stride;
            snprintf(what, sizeof what, "chunk %u of field %u (%u rows)", s->n_chunks, f,
                     s->chunk_rows);
            if ((err = cu_alloc((void **)&rows[f], bytes, what, st)) != VS_OK)
                break;
            if (cudaMemsetAsync(rows[f], 0, bytes, s->stream) != cudaSuccess) {
                err = cu_err(st, cudaGetLastError(), "zeroing a chunk");
                f++;
                break;
            }
        }
        if (!err)
            err = cu_alloc((void **)&ids, (size_t)s->chunk_rows * 8, "a chunk of slot ids", st);
        if (err) {
            for (uint32_t g = 0; g < s->n_fields; g++)
                cudaFree(rows[g]);
            break;
        }
        for (f = 0; f < s->n_fields; f++)
            s->f[f].h_chunks[s->n_chunks] = rows[f];
        s->h_id_chunks[s->n_chunks] = ids;
        s->n_chunks++;
    }
    if (s->n_chunks != before) { /* the device pointer arrays and bitmaps follow what fitted */
        vs_status tmp, *st2 = err ? &tmp : st; /* keep the first error's message */
        vs_err e2 = VS_OK;
        for (uint32_t f = 0; f < s->n_fields && !e2; f++) {
            e2 = buf_need(&s->f[f].d_chunks, s->ptr_cap * sizeof(void *), "chunk pointers", st2);
            if (!e2)
                e2 = upload(s, s->f[f].d_chunks.p, s->f[f].h_chunks, s->n_chunks * sizeof(void *),
                            st2);
        }
        if (!e2)
            e2 = buf_need(&s->d_id_chunks, s->ptr_cap * sizeof(void *), "id chunk pointers", st2);
        if (!e2)
            e2 = upload(s, s->d_id_chunks.p, s->h_id_chunks, s->n_chunks * sizeof(void *), st2);
        if (!e2)
            e2 = grow_bitmaps(s, ((size_t)s->n_chunks << s->chunk_shift) / 64, st2);
        if (!err)
            err = e2;
    }
    if (!err && cudaStreamSynchronize(s->stream) != cudaSuccess)
        err = cu_err(st, cudaGetLastError(), "reserve");
    return err;
}

/* ===== Writes ===== */

static vs_err cu_write_rows(void *store, uint32_t field, const uint32_t *slots, size_t n,
                            const void *codes, const vs_row_consts *consts, vs_status *st)
{
    cu_store *s = store;
    const cu_field *f = &s->f[field];
    const vs_cu_layout *l = &f->cl;
    const uint32_t limit = s->n_chunks << s->chunk_shift;
    const size_t per = (STAGE_BYTES - 64) / (l->stride + 4u);
    TRY(use_device(s, st));
    for (size_t i = 0; i < n; i++)
        if (slots[i] >= limit)
            return vs_status_set(st, VS_ERR_INTERNAL,
                                 "cuda: write to slot %u, only %u reserved", slots[i], limit);
    TRY(buf_need(&s->stage, STAGE_BYTES, "the upload stage", st));
    for (size_t done = 0; done < n;) {
        size_t m = n - done < per ? n - done : per;
        uint8_t *h = s->h_stage;
        size_t rows_bytes = m * l->stride, slots_off = (rows_bytes + 15) & ~(size_t)15;
        memset(h, 0, rows_bytes);
        for (size_t i = 0; i < m; i++) {
            uint8_t *row = h + i * l->stride;
            memcpy(row, (const uint8_t *)codes + (done + i) * l->code_bytes, l->code_bytes);
            if (l->has_consts && consts) {
                float c[4] = {consts[done + i].middle, consts[done + i].scale,
                              consts[done + i].norm2, 0.0f};
                if (f->lay.storage != VS_STORAGE_I8)
                    c[0] = 0.0f;
                if (f->lay.storage == VS_STORAGE_F32)
                    c[1] = 0.0f;
                memcpy(row + l->code_pad, c, sizeof c);
            }
        }
        memcpy(h + slots_off, slots + done, m * 4);
        CU_TRY(cudaMemcpyAsync(s->stage.p, h, slots_off + m * 4, cudaMemcpyHostToDevice,
                               s->stream), "write_rows upload");
        CU_TRY(vs_cu_launch_scatter_rows((uint8_t *const *)f->d_chunks.p, s->chunk_shift,
                                         l->stride, s->stage.p,
                                         (const uint32_t *)((uint8_t *)s->stage.p + slots_off),
                                         (uint32_t)m, s->stream), "write_rows scatter");
        CU_TRY(cudaStreamSynchronize(s->stream), "write_rows"); /* the stage is reused */
        done += m;
    }
    return VS_OK;
}

/* Records changed slots for the next scan's mirror (or the whole view past a million). */
static void cu_slots_changed(void *store, const uint32_t *slots, size_t n)
{
    cu_store *s = store;
    if (s->full_sync)
        return;
    if (s->n_dirty + n > (1u << 20)) { /* past a million: copy the whole view instead */
        s->full_sync = 1;
        s->n_dirty = 0;
        return;
    }
    if (s->n_dirty + n > s->dirty_cap) {
        size_t cap = s->dirty_cap ? s->dirty_cap : 1024;
        while (cap < s->n_dirty + n)
            cap *= 2;
        uint32_t *d = realloc(s->dirty, cap * sizeof *d);
        if (!d) {
            s->full_sync = 1;
            s->n_dirty = 0;
            return;
        }
        s->dirty = d;
        s->dirty_cap = cap;
    }
    memcpy(s->dirty + s->n_dirty, slots, n * sizeof *slots);
    s->n_dirty += n;
}

/* qsort order of uint32. */
static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Brings the device's live and presence bitmaps and ids up to the core's slot view. */
static vs_err mirror_sync(cu_store *s, const vs_slot_view *v, vs_status *st)
{
    const uint32_t limit = v->slot_limit, words = (limit + 63) / 64;
    const uint32_t vmask = (1u << v->chunk_shift) - 1u, mask = s->chunk_rows - 1u;
    if (limit > (s->n_chunks << s->chunk_shift))
        return vs_status_set(st, VS_ERR_INTERNAL,
                             "cuda: the slot view covers %u slots, only %u reserved", limit,
                             s->n_chunks << s->chunk_shift);
    if (s->full_sync || s->n_dirty > limit / 16u + 1024u) {
        CU_TRY(cudaMemcpyAsync(s->d_live, v->live, (size_t)words * 8, cudaMemcpyHostToDevice,
                               s->stream), "mirror");
        for (uint32_t f = 0; f < s->n_fields; f++)
            CU_TRY(cudaMemcpyAsync(s->f[f].d_has, v->has[f], (size_t)words * 8,
                                   cudaMemcpyHostToDevice, s->stream), "mirror");
        for (uint32_t a = 0; a < limit;) { /* ids: runs inside one chunk of each side */
            uint32_t run = limit - a, r1 = (vmask - (a & vmask)) + 1u, r2 = (mask - (a & mask)) + 1u;
            if (run > r1)
                run = r1;
            if (run > r2)
                run = r2;
            CU_TRY(cudaMemcpyAsync(s->h_id_chunks[a >> s->chunk_shift] + (a & mask),
                                   v->ids[a >> v->chunk_shift] + (a & vmask), (size_t)run * 8,
                                   cudaMemcpyHostToDevice, s->stream), "mirror");
            a += run;
        }
        s->full_sync = 0;
        s->n_dirty = 0;
        return VS_OK;
    }
    if (s->n_dirty == 0)
        return VS_OK;
    /* changed slots, their words: one packed transfer, one kernel */
    qsort(s->dirty, s->n_dirty, sizeof *s->dirty, cmp_u32);
    size_t ns = 0, nw = 0;
    for (size_t i = 0; i < s->n_dirty; i++)
        if (s->dirty[i] < limit && (ns == 0 || s->dirty[i] != s->dirty[ns - 1]))
            s->dirty[ns++] = s->dirty[i];
    for (size_t i = 0, prev = SIZE_MAX; i < ns; i++)
        if (s->dirty[i] / 64 != prev) { /* counted only: the words are written below */
            prev = s->dirty[i] / 64;
            nw++;
        }
    size_t o_lw = ((nw * 4 + 15) & ~(size_t)15), o_hw = o_lw + nw * 8,
           o_sl = o_hw + (size_t)s->n_fields * nw * 8, o_id = o_sl + ((ns * 4 + 15) & ~(size_t)15),
           total = o_id + ns * 8;
    if (total > STAGE_BYTES) { /* too many for one stage: copy everything */
        s->full_sync = 1;
        return mirror_sync(s, v, st);
    }
    uint8_t *h = s->h_stage;
    uint32_t *widx = (uint32_t *)h, *sl = (uint32_t *)(h + o_sl);
    uint64_t *lw = (uint64_t *)(h + o_lw), *hw = (uint64_t *)(h + o_hw), *ids = (uint64_t *)(h + o_id);
    size_t w = 0;
    for (size_t i = 0; i < ns; i++) {
        uint32_t slot = s->dirty[i], wi = slot / 64;
        if (w == 0 || widx[w - 1] != wi) {
            widx[w] = wi;
            lw[w] = v->live[wi];
            w++;
        }
        sl[i] = slot;
        ids[i] = vs_slot_view_id(v, slot);
    }
    for (uint32_t f = 0; f < s->n_fields; f++)
        for (size_t i = 0; i < nw; i++)
            hw[f * nw + i] = v->has[f][widx[i]];
    TRY(buf_need(&s->stage, STAGE_BYTES, "the upload stage", st));
    CU_TRY(cudaMemcpyAsync(s->stage.p, h, total, cudaMemcpyHostToDevice, s->stream), "mirror");
    vs_cu_mirror_args a;
    memset(&a, 0, sizeof a);
    uint8_t *d = s->stage.p;
    a.live = s->d_live;
    for (uint32_t f = 0; f < s->n_fields; f++)
        a.has[f] = s->f[f].d_has;
    a.n_fields = s->n_fields;
    a.widx = (const uint32_t *)d;
    a.lw = (const uint64_t *)(d + o_lw);
    a.hw = (const uint64_t *)(d + o_hw);
    a.n_words = (uint32_t)nw;
    a.id_chunks = (uint64_t *const *)s->d_id_chunks.p;
    a.chunk_shift = s->chunk_shift;
    a.slots = (const uint32_t *)(d + o_sl);
    a.ids = (const uint64_t *)(d + o_id);
    a.n_ids = (uint32_t)ns;
    CU_TRY(vs_cu_launch_mirror(&a, s->stream), "mirror");
    CU_TRY(cudaStreamSynchronize(s->stream), "mirror"); /* the stage is reused */
    s->n_dirty = 0;
    return VS_OK;
}

/* ===== One group of queries: the device side of the selection driver ===== */

typedef struct cu_group {
    cu_store *s;
    const vs_scan_batch *b;
    const vs_cu_group *g;
    const uint32_t *order; /* batch query of group query i: order[g->first + i] */
    uint32_t nq, kmax_out;
    uint32_t *k;              /* per group query */
    vs_cu_query_dev *hq;      /* host descriptors; pos changes per round */
    uint8_t *hround;          /* host side of the per-round uploads */
    vs_cu_common c;
    vs_cu_thr_dev *d_thr, *d_thr_neutral;
    uint32_t nf;
    vs_cu_fdev fd[VS_MAX_FIELDS];
    uint32_t field_of[VS_MAX_FIELDS], nv[VS_MAX_FIELDS];
    const uint8_t *d_qdata[VS_MAX_FIELDS];
    const uint16_t *d_qhalf[VS_MAX_FIELDS];
    const vs_cu_qvc *d_qvc[VS_MAX_FIELDS];
    vs_cu_rows rows, sample_rows;
    uint64_t n_scan;
    uint32_t filter_all, tile_rows;
    int mma; /* the MMA scan instead of tiles */
    size_t tile_off[VS_MAX_FIELDS];
    /* sorting is deferred until a result needs it: a sampled threshold needs none */
    int sort_pending;
    uint32_t sort_n, sort_cap;
    uint32_t sorted_upto; /* leading positions of each buffer in order (UINT32_MAX: all) */
    uint32_t max_held; /* largest min(cnt, cap) of the last main scan; UINT32_MAX unknown */
} cu_group;

/* Per-round arrays, uploaded together: descriptors, then act, mode, rank, emit_k, dst. */
typedef struct round_ptrs {
    vs_cu_query_dev *queries;
    uint32_t *act, *rank, *emit_k, *dst;
    uint8_t *mode;
} round_ptrs;

/* Bytes of the per-round arrays for nq queries. */
static size_t round_bytes(uint32_t nq)
{
    return (size_t)nq * sizeof(vs_cu_query_dev) + (size_t)nq * (4 * 4 + 1) + 256;
}

/* Where each per-round array sits from base. */
static void round_layout(uint8_t *base, uint32_t nq, round_ptrs *p)
{
    size_t o = 0;
    p->queries = (vs_cu_query_dev *)base;
    o += (size_t)nq * sizeof(vs_cu_query_dev);
    p->act = (uint32_t *)(base + o);
    o += (size_t)nq * 4;
    p->rank = (uint32_t *)(base + o);
    o += (size_t)nq * 4;
    p->emit_k = (uint32_t *)(base + o);
    o += (size_t)nq * 4;
    p->dst = (uint32_t *)(base + o);
    o += (size_t)nq * 4;
    p->mode = base + o;
}

/* Copies the host side of the per-round arrays to the device; dev gets their device addresses. */
static vs_err round_upload(cu_group *G, round_ptrs *dev, vs_status *st)
{
    TRY(upload(G->s, G->s->round.p, G->hround, round_bytes(G->nq), st));
    round_layout(G->s->round.p, G->nq, dev);
    return VS_OK;
}

/* Positions: query act[i] owns buffer i, every other query idles. */
static void set_positions(cu_group *G, const uint32_t *act, uint32_t n_act)
{
    round_ptrs h;
    round_layout(G->hround, G->nq, &h);
    for (uint32_t q = 0; q < G->nq; q++)
        G->hq[q].pos = VS_CU_NONE;
    for (uint32_t i = 0; i < n_act; i++)
        G->hq[act[i]].pos = i;
    memcpy(h.queries, G->hq, G->nq * sizeof *G->hq);
    memcpy(h.act, act, n_act * 4);
}

/* Creates the cuBLAS handle on first use (none: the dot kernel serves every tile). */
static vs_err ensure_blas(cu_store *s)
{
    if (s->blas_state == 0) {
        if (cublasCreate(&s->blas) == CUBLAS_STATUS_SUCCESS &&
            cublasSetStream(s->blas, s->stream) == CUBLAS_STATUS_SUCCESS) {
            s->blas_state = 1;
        } else {
            s->blas_state = -1; /* the dot kernel serves every tile */
            (void)cudaGetLastError();
        }
    }
    return VS_OK;
}

/* Raw dots of rows [t0, t1) of the group's rows against field slot fs's query vectors; *split
 * says whether they came from the f16 GEMM as hi and lo columns (nv apart). */
static vs_err tile_dots(cu_group *G, uint32_t fs, const vs_cu_rows *tr, uint32_t *split,
                        vs_status *st)
{
    cu_store *s = G->s;
    cu_field *F = &s->f[G->field_of[fs]];
    const vs_cu_layout *l = &F->cl;
    const uint32_t m = tr->end - tr->begin, R = G->tile_rows;
    void *out = (uint8_t *)s->tile.p + G->tile_off[fs];
    *split = 0;
    if (F->lay.storage != VS_STORAGE_B1 && !F->gemm_bad && s->blas_state == 1) {
        const void *A;
        cublasStatus_t bs;
        if (tr->list) {
            CU_TRY(vs_cu_launch_gather_rows(&G->fd[fs], s->chunk_shift, tr->list + tr->begin, m,
                                            s->gather.p, s->stream), "gather rows");
            A = s->gather.p;
        } else {
            A = F->h_chunks[tr->begin >> s->chunk_shift] +
                (size_t)(tr->begin & (s->chunk_rows - 1u)) * l->stride;
        }
        const int k = (int)l->gemm_k, n = (int)G->nv[fs];
        if (F->lay.storage == VS_STORAGE_I8) {
            const int32_t one = 1, zero = 0;
            bs = cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, n, k, &one, A,
                              CUDA_R_8I, (int)l->stride, G->d_qdata[fs], CUDA_R_8I, k, &zero, out,
                              CUDA_R_32I, (int)R, CUBLAS_COMPUTE_32I, CUBLAS_GEMM_DEFAULT);
        } else if (F->lay.storage == VS_STORAGE_F16) {
            const float one = 1.0f, zero = 0.0f;
            bs = cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, 2 * n, k, &one, A,
                              CUDA_R_16F, (int)(l->stride / 2), G->d_qhalf[fs], CUDA_R_16F, k,
                              &zero, out, CUDA_R_32F, (int)R, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT);
            *split = (uint32_t)n;
        } else {
            const float one = 1.0f, zero = 0.0f;
            bs = cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)m, n, k, &one, A,
                              CUDA_R_32F, (int)(l->stride / 4), G->d_qdata[fs], CUDA_R_32F, k,
                              &zero, out, CUDA_R_32F, (int)R, CUBLAS_COMPUTE_32F_PEDANTIC,
                              CUBLAS_GEMM_DEFAULT);
        }
        if (bs == CUBLAS_STATUS_SUCCESS)
            return VS_OK;
        *split = 0;
        if (m == R) /* a whole tile refused: the dot kernel for this field from now on */
            F->gemm_bad = 1;
        (void)cudaGetLastError();
    }
    vs_cu_small_args a;
    memset(&a, 0, sizeof a);
    a.c = G->c;
    a.f = G->fd[fs];
    a.rows = *tr;
    a.qdata = G->d_qdata[fs];
    a.qvc = G->d_qvc[fs];
    a.nv = G->nv[fs];
    a.out = out;
    a.ld = R;
    CU_TRY(vs_cu_launch_small(&a, 1, s->sm_count, s->stream), "dot kernel");
    return VS_OK;
}

/* The tile path over rows: per tile, each field's dots (cuBLAS or the dot kernel), then combine. */
static vs_err run_tiles(cu_group *G, const vs_cu_rows *rows, vs_status *st)
{
    cu_store *s = G->s;
    const uint32_t R = G->tile_rows;
    vs_cu_combine_args ca;
    memset(&ca, 0, sizeof ca);
    ca.c = G->c;
    for (uint32_t fs = 0; fs < G->nf; fs++) {
        ca.f[fs] = G->fd[fs];
        ca.qvc[fs] = G->d_qvc[fs];
        ca.tile[fs] = (uint8_t *)s->tile.p + G->tile_off[fs];
    }
    ca.ld = R;
    ca.n_fields = G->nf;
    for (uint32_t t0 = rows->begin; t0 < rows->end;) {
        /* dense tiles start at multiples of R, so they never cross a chunk */
        uint32_t t1 = rows->list ? t0 + R : (t0 / R + 1) * R;
        if (t1 > rows->end || t1 < t0)
            t1 = rows->end;
        vs_cu_rows tr = {rows->list, t0, t1};
        for (uint32_t fs = 0; fs < G->nf; fs++)
            TRY(tile_dots(G, fs, &tr, &ca.split[fs], st));
        ca.rows = tr;
        CU_TRY(vs_cu_launch_combine(&ca, s->stream), "combine kernel");
        t0 = t1;
    }
    return VS_OK;
}

/* vs_cu_select_ops.scan on the device: the fused kernel or the tile path over the group's rows
 * (or its sample), then, for a main scan, the counts and whether thresholds were set. */
static vs_err op_scan(void *ctx, int sample, const uint32_t *act, uint32_t n_act, uint32_t cap,
                      uint32_t *cnt, uint8_t *finite, vs_status *st)
{
    cu_group *G = ctx;
    cu_store *s = G->s;
    round_ptrs d;
    TRY(buf_need(&s->cand, (size_t)n_act * cap * sizeof(vs_cu_cand_dev), "candidate buffers", st));
    TRY(buf_need(&s->cnt, (size_t)n_act * 4, "candidate counts", st));
    set_positions(G, act, n_act);
    TRY(round_upload(G, &d, st));
    CU_TRY(cudaMemsetAsync(s->cnt.p, 0, (size_t)n_act * 4, s->stream), "scan");
    G->sort_pending = 0;
    G->sorted_upto = 0;
    G->max_held = UINT32_MAX;
    G->c.queries = d.queries;
    G->c.thr = sample ? G->d_thr_neutral : G->d_thr;
    G->c.cand = s->cand.p;
    G->c.cnt = s->cnt.p;
    G->c.cap = cap;
    const vs_cu_rows *rows = sample ? &G->sample_rows : &G->rows;
    if (G->g->path == VS_CU_PATH_SMALL) {
        vs_cu_small_args a;
        memset(&a, 0, sizeof a);
        a.c = G->c;
        a.f = G->fd[0];
        a.rows = *rows;
        a.qdata = G->d_qdata[0];
        a.qvc = G->d_qvc[0];
        a.nv = G->nv[0];
        a.filter_all = G->filter_all;
        CU_TRY(vs_cu_launch_small(&a, 0, s->sm_count, s->stream), "scan kernel");
    } else if (G->mma) {
        vs_cu_mma_args a;
        memset(&a, 0, sizeof a);
        a.c = G->c;
        a.f = G->fd[0];
        a.rows = *rows;
        a.qvc = G->d_qvc[0];
        if (G->fd[0].storage == VS_STORAGE_F16) { /* hi halves, then lo halves, nv apart */
            a.qdata = (const uint8_t *)G->d_qhalf[0];
            a.qlo = a.qdata + (size_t)G->nv[0] * G->fd[0].code_pad;
        } else {
            a.qdata = G->d_qdata[0];
        }
        CU_TRY(vs_cu_launch_mma(&a, s->stream), "MMA scan kernel");
    } else {
        TRY(run_tiles(G, rows, st));
    }
    if (sample)
        return VS_OK;
    /* the host decides the next round from the counts and whether thresholds were set: both
     * come back with one wait */
    const size_t cb = ((size_t)n_act * 4 + 15) & ~(size_t)15;
    TRY(back_need(s, cb + G->nq * sizeof(vs_cu_thr_dev), st));
    const vs_cu_thr_dev *thr = (const vs_cu_thr_dev *)(s->h_back + cb);
    CU_TRY(cudaMemcpyAsync(s->h_back, s->cnt.p, (size_t)n_act * 4, cudaMemcpyDeviceToHost,
                           s->stream), "reading counts");
    CU_TRY(cudaMemcpyAsync(s->h_back + cb, G->d_thr, G->nq * sizeof(vs_cu_thr_dev),
                           cudaMemcpyDeviceToHost, s->stream), "reading thresholds");
    CU_TRY(cudaStreamSynchronize(s->stream), "scan");
    memcpy(cnt, s->h_back, (size_t)n_act * 4);
    G->max_held = 0;
    for (uint32_t i = 0; i < n_act; i++) {
        finite[i] = !(thr[act[i]].s == -INFINITY && thr[act[i]].id == UINT64_MAX);
        const uint32_t h = cnt[i] < cap ? cnt[i] : cap;
        G->max_held = h > G->max_held ? h : G->max_held;
    }
    return VS_OK;
}

/* Room for CUB's sorts of items candidates in n_act buffers. */
static vs_err sort_buffers(cu_store *s, uint32_t n_act, size_t items, vs_status *st)
{
    size_t tb = 0;
    TRY(buf_need(&s->key_id, items * 8, "sort keys", st));
    TRY(buf_need(&s->key_id_out, items * 8, "sort keys", st));
    TRY(buf_need(&s->key_s, items * 4, "sort keys", st));
    TRY(buf_need(&s->key_s_out, items * 4, "sort keys", st));
    TRY(buf_need(&s->v0, items * 4, "sort values", st));
    TRY(buf_need(&s->v1, items * 4, "sort values", st));
    TRY(buf_need(&s->v2, items * 4, "sort values", st));
    TRY(buf_need(&s->beg, (size_t)n_act * 4, "sort segments", st));
    TRY(buf_need(&s->end, (size_t)n_act * 4, "sort segments", st));
    CU_TRY(vs_cu_sort_temp_bytes(items, n_act, &tb), "sort size");
    TRY(buf_need(&s->temp, tb, "sort workspace", st));
    return VS_OK;
}

/* The sort buffers as the kernels take them. */
static vs_cu_sortbuf sortbuf_of(cu_store *s)
{
    vs_cu_sortbuf b;
    b.key_id = s->key_id.p;
    b.key_id_out = s->key_id_out.p;
    b.key_s = s->key_s.p;
    b.key_s_out = s->key_s_out.p;
    b.v0 = s->v0.p;
    b.v1 = s->v1.p;
    b.v2 = s->v2.p;
    b.beg = s->beg.p;
    b.end = s->end.p;
    b.temp = s->temp.p;
    b.temp_bytes = s->temp.cap;
    return b;
}

/* Puts at least the first need candidates of every buffer the driver asked to sort in order, if
 * that is not done yet: one block each when every buffer is known to be small, one block each
 * keeping the best need when few are needed (results and the ranks of overflows need only the
 * first k), else CUB's segmented sorts. */
static vs_err ensure_sorted(cu_group *G, uint32_t need, vs_status *st)
{
    cu_store *s = G->s;
    if (!G->sort_pending && G->sorted_upto >= need)
        return VS_OK;
    G->sort_pending = 0;
    G->c.cap = G->sort_cap;
    G->c.cand = s->cand.p;
    G->c.cnt = s->cnt.p;
    if (G->max_held <= VS_CU_SMALL_SORT || need <= VS_CU_TOPK_SORT_MAX) {
        TRY(buf_need(&s->v2, (size_t)G->sort_n * G->sort_cap * 4, "sort values", st));
        vs_cu_sortbuf b = sortbuf_of(s);
        if (G->max_held <= VS_CU_SMALL_SORT) {
            CU_TRY(vs_cu_small_sort(&G->c, G->sort_n, &b, s->stream), "sort");
            G->sorted_upto = UINT32_MAX;
        } else {
            CU_TRY(vs_cu_topk_sort(&G->c, G->sort_n, need, &b, s->stream), "top-k sort");
            G->sorted_upto = need;
        }
        return VS_OK;
    }
    TRY(sort_buffers(s, G->sort_n, (size_t)G->sort_n * G->sort_cap, st));
    vs_cu_sortbuf b = sortbuf_of(s);
    CU_TRY(vs_cu_sort(&G->c, G->sort_n, &b, s->stream), "sort");
    G->sorted_upto = UINT32_MAX;
    return VS_OK;
}

/* vs_cu_select_ops.sort: deferred (ensure_sorted) until a result or a rank past VS_CU_KTH_MAX
 * needs it. */
static vs_err op_sort(void *ctx, const uint32_t *act, uint32_t n_act, uint32_t cap, vs_status *st)
{
    cu_group *G = ctx;
    (void)act;
    (void)st;
    G->sort_pending = 1;
    G->sort_n = n_act;
    G->sort_cap = cap;
    G->sorted_upto = 0;
    return VS_OK;
}

/* vs_cu_select_ops.set_thr: the block-wide j-th-best pass when the buffers are unsorted and the
 * ranks small, else from the sorted order. */
static vs_err op_set_thr(void *ctx, const uint32_t *act, uint32_t n_act, uint32_t cap,
                         const uint8_t *mode, const uint32_t *rank, vs_status *st)
{
    cu_group *G = ctx;
    cu_store *s = G->s;
    round_ptrs h, d;
    round_layout(G->hround, G->nq, &h);
    memcpy(h.act, act, n_act * 4);
    memcpy(h.mode, mode, n_act);
    memcpy(h.rank, rank, n_act * 4);
    TRY(round_upload(G, &d, st));
    G->c.cap = cap;
    G->c.cand = s->cand.p;
    G->c.cnt = s->cnt.p;
    int small_ranks = G->sort_pending;
    for (uint32_t i = 0; i < n_act && small_ranks; i++)
        small_ranks = mode[i] != VS_CU_THR_RANK || rank[i] <= VS_CU_KTH_MAX;
    if (small_ranks) /* the sample's j-th best (or a small k): no sort at all */
        CU_TRY(vs_cu_launch_kth(&G->c, n_act, d.act, d.mode, d.rank, G->d_thr, s->stream),
               "set thresholds");
    else {
        uint32_t need = 1;
        for (uint32_t i = 0; i < n_act; i++)
            if (mode[i] == VS_CU_THR_RANK && rank[i] > need)
                need = rank[i];
        TRY(ensure_sorted(G, need, st));
        vs_cu_sortbuf b = sortbuf_of(s);
        CU_TRY(vs_cu_launch_set_thr(&G->c, &b, n_act, d.act, d.mode, d.rank, G->d_thr,
                                    s->stream), "set thresholds");
    }
    return VS_OK;
}

/* vs_cu_select_ops.emit: the first k sorted candidates of the settled queries to the results. */
static vs_err op_emit(void *ctx, const uint32_t *act, uint32_t n_act, uint32_t cap,
                      const uint8_t *which, vs_status *st)
{
    cu_group *G = ctx;
    cu_store *s = G->s;
    round_ptrs h, d;
    round_layout(G->hround, G->nq, &h);
    uint32_t need = 1;
    for (uint32_t i = 0; i < n_act; i++) {
        h.emit_k[i] = which[i] ? G->k[act[i]] : 0;
        h.dst[i] = G->order[G->g->first + act[i]];
        need = h.emit_k[i] > need ? h.emit_k[i] : need;
    }
    TRY(ensure_sorted(G, need, st));
    TRY(round_upload(G, &d, st));
    vs_cu_sortbuf b = sortbuf_of(s);
    G->c.cap = cap;
    CU_TRY(vs_cu_launch_emit(&G->c, &b, n_act, d.emit_k, d.dst, s->out.p, G->kmax_out,
                             s->out_n.p, s->stream), "emit");
    return VS_OK;
}

/* ===== Preparing a group ===== */

static size_t al(size_t x) { return (x + 255) & ~(size_t)255; }

/* The field slot of field f in the group. */
static uint32_t fslot_of(const vs_cu_group *g, uint32_t f)
{
    for (uint32_t i = 0; i < g->n_fields; i++)
        if (g->fields[i] == f)
            return i;
    return 0;
}

/* Query vector src of fq as the fused kernel reads it (qdata, vecs x qslice bytes), as cuBLAS's B
 * wants it for f16 (gemm_k halves at qhi and at qlo: the split of cuda_kern.h), and its constants. */
static void pack_qv(const cu_field *F, const vs_field_queries *fq, uint32_t src, uint8_t *qdata,
                    uint16_t *qhi, uint16_t *qlo, vs_cu_qvc *qvc)
{
    const vs_cu_layout *l = &F->cl;
    const uint32_t dim = F->lay.dim;
    memset(qdata, 0, (size_t)l->vecs * l->qslice);
    switch (F->lay.storage) {
    case VS_STORAGE_F32:
    case VS_STORAGE_F16:
        memcpy(qdata, fq->f + (size_t)src * dim, (size_t)dim * 4);
        break;
    case VS_STORAGE_I8:
        memcpy(qdata, fq->c + (size_t)src * dim, dim);
        break;
    case VS_STORAGE_B1:
        memcpy(qdata, fq->bits + (size_t)src * F->lay.b1_words, (size_t)F->lay.b1_words * 8);
        break;
    }
    memset(qvc, 0, sizeof *qvc);
    qvc->gscale = 1.0f;
    if (qhi) {
        const float *q = fq->f + (size_t)src * dim;
        float amax = 0.0f;
        for (uint32_t i = 0; i < dim; i++)
            amax = fabsf(q[i]) > amax ? fabsf(q[i]) : amax;
        const float sc = vs_cu_f16_split_scale(amax);
        memset(qhi, 0, (size_t)l->gemm_k * 2);
        memset(qlo, 0, (size_t)l->gemm_k * 2);
        for (uint32_t i = 0; i < dim; i++)
            vs_cu_f16_split(q[i], sc, &qhi[i], &qlo[i]);
        qvc->gscale = 1.0f / sc;
    }
    if (F->lay.storage == VS_STORAGE_I8) {
        qvc->scale = fq->scale ? fq->scale[src] : 0.0f;
        qvc->sum = fq->sum ? fq->sum[src] : 0.0f;
    }
    qvc->norm2 = fq->norm2 ? fq->norm2[src] : 0.0f;
}

/* Everything a group's scans read, on the device in one blob: terms, compacted query vectors
 * (f16 split for cuBLAS), sample slots; its rows (every slot or its list); its allowed bitmaps;
 * tile buffers. */
static vs_err group_prepare(cu_group *G, const vs_slot_view *v, const uint8_t *as_bitmap,
                            vs_cu_thr_plan plan, vs_status *st)
{
    cu_store *s = G->s;
    const vs_cu_group *g = G->g;
    const vs_scan_batch *b = G->b;
    const uint32_t nq = G->nq, limit = v->slot_limit;
    uint32_t n_terms = 0;
    uint32_t *maps[VS_MAX_FIELDS] = {0}, *srcs[VS_MAX_FIELDS] = {0};
    vs_err err = VS_OK;

    /* fields and their compacted query vectors */
    G->nf = g->n_fields;
    for (uint32_t fs = 0; fs < G->nf; fs++) {
        const uint32_t f = g->fields[fs], n = b->fq[f].n;
        const cu_field *F = &s->f[f];
        G->field_of[fs] = f;
        maps[fs] = malloc((n ? n : 1) * 4);
        srcs[fs] = malloc((n ? n : 1) * 4);
        if (!maps[fs] || !srcs[fs]) {
            err = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cuda: out of host memory");
            goto out;
        }
        G->nv[fs] = vs_cu_group_qv_map(b, G->order, g, f, maps[fs], srcs[fs]);
        G->fd[fs].chunks = (uint8_t *const *)F->d_chunks.p;
        G->fd[fs].has = F->d_has;
        G->fd[fs].stride = F->cl.stride;
        G->fd[fs].vecs = F->cl.vecs;
        G->fd[fs].code_pad = F->cl.code_pad;
        G->fd[fs].has_consts = F->cl.has_consts;
        G->fd[fs].storage = (uint32_t)F->lay.storage;
        G->fd[fs].is_l2 = F->lay.metric == VS_METRIC_L2;
        G->fd[fs].bits = F->cl.bits;
        G->fd[fs].qslice = F->cl.qslice;
    }
    for (uint32_t i = 0; i < nq; i++)
        n_terms += b->queries[G->order[g->first + i]].n_terms;

    /* the blob: terms, neutral thresholds, then per field qdata, qhalf, qvc, then sample slots */
    size_t o_terms = 0, o_neutral = al(o_terms + (size_t)n_terms * sizeof(vs_cu_term_dev));
    size_t o = al(o_neutral + (size_t)nq * sizeof(vs_cu_thr_dev));
    size_t o_qd[VS_MAX_FIELDS], o_qh[VS_MAX_FIELDS], o_qc[VS_MAX_FIELDS];
    for (uint32_t fs = 0; fs < G->nf; fs++) {
        const cu_field *F = &s->f[G->field_of[fs]];
        o_qd[fs] = o;
        o = al(o + (size_t)G->nv[fs] * F->cl.vecs * F->cl.qslice);
        o_qh[fs] = o;
        if (F->lay.storage == VS_STORAGE_F16) /* hi columns, then lo columns */
            o = al(o + (size_t)2 * G->nv[fs] * F->cl.gemm_k * 2);
        o_qc[fs] = o;
        o = al(o + (size_t)G->nv[fs] * sizeof(vs_cu_qvc));
    }
    size_t o_sample = o, total = al(o + (size_t)plan.sample * 4);
    uint8_t *h = calloc(1, total);
    if (!h) {
        err = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cuda: out of host memory");
        goto out;
    }
    vs_cu_term_dev *ht = (vs_cu_term_dev *)(h + o_terms);
    vs_cu_thr_dev *hn = (vs_cu_thr_dev *)(h + o_neutral);
    n_terms = 0;
    for (uint32_t i = 0; i < nq; i++) {
        const vs_scan_query *q = &b->queries[G->order[g->first + i]];
        vs_cu_query_dev *d = &G->hq[i];
        memset(d, 0, sizeof *d);
        d->term_first = n_terms;
        d->n_terms = q->n_terms;
        d->combine = q->combine == VS_COMBINE_MAX ? 1u : 0u;
        d->pos = i;
        for (uint32_t t = 0; t < q->n_terms; t++) {
            const vs_scan_term *tm = &q->terms[t];
            uint32_t fs = fslot_of(g, tm->field);
            ht[n_terms].fslot = fs;
            ht[n_terms].qv_first = maps[fs][tm->first];
            ht[n_terms].qv_count = tm->n_vecs;
            ht[n_terms].weight = tm->weight;
            n_terms++;
        }
        hn[i].s = -INFINITY;
        hn[i].pad = 0;
        hn[i].id = UINT64_MAX;
        G->k[i] = q->k < 1 ? 1 : q->k;
    }
    for (uint32_t fs = 0; fs < G->nf; fs++) {
        const cu_field *F = &s->f[G->field_of[fs]];
        const vs_field_queries *fq = &b->fq[G->field_of[fs]];
        const size_t qb = (size_t)F->cl.vecs * F->cl.qslice;
        const int half = F->lay.storage == VS_STORAGE_F16;
        uint16_t *qh = (uint16_t *)(h + o_qh[fs]);
        for (uint32_t j = 0; j < G->nv[fs]; j++)
            pack_qv(F, fq, srcs[fs][j], h + o_qd[fs] + j * qb,
                    half ? qh + (size_t)j * F->cl.gemm_k : NULL,
                    half ? qh + (size_t)(G->nv[fs] + j) * F->cl.gemm_k : NULL,
                    (vs_cu_qvc *)(h + o_qc[fs]) + j);
    }
    if (plan.sample) { /* sample slots: positions in the rows to scan */
        uint32_t *hs = (uint32_t *)(h + o_sample);
        vs_cu_sample_positions(G->n_scan, plan.sample, 0x5eed0000u + g->first, hs);
        if (g->list)
            for (uint32_t i = 0; i < plan.sample; i++)
                hs[i] = g->slots[hs[i]];
    }
    err = buf_need(&s->blob, total, "query data", st);
    if (!err)
        err = upload(s, s->blob.p, h, total, st);
    free(h);
    if (err)
        goto out;
    uint8_t *d = s->blob.p;
    G->c.terms = (const vs_cu_term_dev *)(d + o_terms);
    G->c.n_terms = n_terms;
    G->d_thr_neutral = (vs_cu_thr_dev *)(d + o_neutral);
    for (uint32_t fs = 0; fs < G->nf; fs++) {
        G->d_qdata[fs] = d + o_qd[fs];
        G->d_qhalf[fs] = (const uint16_t *)(d + o_qh[fs]);
        G->d_qvc[fs] = (const vs_cu_qvc *)(d + o_qc[fs]);
    }
    G->sample_rows.list = (const uint32_t *)(d + o_sample);
    G->sample_rows.begin = 0;
    G->sample_rows.end = plan.sample;

    /* rows: every slot, or the group's list */
    if (g->list) {
        if ((err = buf_need(&s->list, g->count * 4 + 16, "the slot list", st)) != VS_OK)
            goto out;
        if ((err = upload(s, s->list.p, g->slots, g->count * 4, st)) != VS_OK)
            goto out;
        G->rows.list = s->list.p;
        G->rows.begin = 0;
        G->rows.end = (uint32_t)g->count;
    } else {
        G->rows.list = NULL;
        G->rows.begin = 0;
        G->rows.end = limit;
    }

    /* allowed bitmaps (dense groups): one device copy per distinct set in the group */
    G->filter_all = !g->list;
    if (!g->list) {
        size_t words = 0, at = 0;
        const uint32_t lw = (limit + 63) / 64;
        for (uint32_t i = 0; i < nq; i++) {
            const vs_slotset *a = b->queries[G->order[g->first + i]].allowed;
            if (!a || a->kind == VS_SLOTSET_ALL)
                G->filter_all = 0;
            else
                words += lw + 1;
        }
        if (words && (err = buf_need(&s->bitmaps, words * 8, "allowed-slot bitmaps", st)))
            goto out;
        for (uint32_t i = 0; i < nq; i++) {
            const uint32_t bq = G->order[g->first + i];
            const vs_slotset *a = b->queries[bq].allowed;
            uint32_t j;
            if (!a || a->kind == VS_SLOTSET_ALL)
                continue;
            for (j = 0; j < i; j++) { /* the same set earlier in the group */
                const vs_slotset *p = b->queries[G->order[g->first + j]].allowed;
                if (p && p->kind == a->kind && p->words == a->words && p->slots == a->slots &&
                    p->n_bits == a->n_bits && p->count == a->count)
                    break;
            }
            if (j < i) {
                G->hq[i].allowed = G->hq[j].allowed;
                G->hq[i].allowed_bits = G->hq[j].allowed_bits;
                continue;
            }
            uint64_t *dst = (uint64_t *)s->bitmaps.p + at;
            if (a->kind == VS_SLOTSET_BITMAP) {
                uint64_t bits = a->n_bits < limit ? a->n_bits : limit;
                if ((err = upload(s, dst, a->words, ((bits + 63) / 64) * 8, st)) != VS_OK)
                    goto out;
                G->hq[i].allowed_bits = bits;
            } else { /* a list taken densely (as_bitmap) */
                (void)as_bitmap;
                if ((err = buf_need(&s->gather, a->count * 4 + 16, "a slot list", st)) != VS_OK)
                    goto out;
                if (cudaMemsetAsync(dst, 0, (size_t)lw * 8, s->stream) != cudaSuccess ||
                    (err = upload(s, s->gather.p, a->slots, a->count * 4, st)) != VS_OK ||
                    vs_cu_launch_list_to_bitmap(s->gather.p, (uint32_t)a->count, dst,
                                                s->stream) != cudaSuccess) {
                    if (!err)
                        err = cu_err(st, cudaGetLastError(), "list to bitmap");
                    goto out;
                }
                G->hq[i].allowed_bits = limit;
            }
            G->hq[i].allowed = dst;
            at += lw + 1;
        }
    }

    /* common device state */
    G->c.live = s->d_live;
    G->c.id_chunks = (uint64_t *const *)s->d_id_chunks.p;
    G->c.slot_limit = limit;
    G->c.chunk_shift = s->chunk_shift;
    G->c.nq = nq;

    /* the MMA scan: one i8 or f16 field, every query one term of one vector */
    G->mma = g->path == VS_CU_PATH_TILE && G->nf == 1 &&
             (G->fd[0].storage == VS_STORAGE_I8 || G->fd[0].storage == VS_STORAGE_F16) &&
             !s->mma_off;
    for (uint32_t i = 0; i < nq && G->mma; i++) {
        const vs_scan_query *q = &b->queries[G->order[g->first + i]];
        G->mma = q->n_terms == 1 && q->terms[0].n_vecs == 1;
    }

    /* tile path buffers */
    if (g->path == VS_CU_PATH_TILE && !G->mma) {
        size_t tb = 0;
        ensure_blas(s);
        G->tile_rows = vs_cu_tile_rows(g->nv_total, s->l2_bytes, s->chunk_rows);
        for (uint32_t fs = 0; fs < G->nf; fs++) { /* f16: hi and lo columns */
            const uint32_t cols = G->nv[fs] * (G->fd[fs].storage == VS_STORAGE_F16 ? 2u : 1u);
            G->tile_off[fs] = tb;
            tb = al(tb + (size_t)cols * G->tile_rows * 4);
        }
        if ((err = buf_need(&s->tile, tb, "tile scores", st)) != VS_OK)
            goto out;
        if ((g->list || plan.sample) &&
            (err = buf_need(&s->gather, (size_t)G->tile_rows * s->max_stride, "a gathered tile",
                            st)) != VS_OK)
            goto out;
    }
out:
    for (uint32_t fs = 0; fs < VS_MAX_FIELDS; fs++) {
        free(maps[fs]);
        free(srcs[fs]);
    }
    return err;
}

/* Device memory the candidate buffers may take, in candidates (each about 48 bytes with the sort). */
static uint64_t entry_budget(void)
{
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) {
        (void)cudaGetLastError();
        return 1u << 20;
    }
    uint64_t bytes = fr / 2;
    if (bytes > (16ull << 30))
        bytes = 16ull << 30;
    uint64_t e = bytes / 48;
    return e < (1u << 16) ? (1u << 16) : e;
}

/* One group: plan its threshold, prepare it, run the selection driver over its device ops. */
static vs_err run_group(cu_store *s, const vs_slot_view *v, const vs_scan_batch *b,
                        const uint32_t *order, const uint8_t *as_bitmap, const vs_cu_group *g,
                        uint32_t kmax_out, uint64_t budget, vs_status *st)
{
    cu_group G;
    vs_cu_select_stats stats;
    vs_err err;
    memset(&G, 0, sizeof G);
    G.s = s;
    G.b = b;
    G.g = g;
    G.order = order;
    G.nq = g->n;
    G.kmax_out = kmax_out;
    G.n_scan = g->list ? g->count : v->slot_limit;
    G.k = malloc(g->n * sizeof *G.k);
    G.hq = calloc(g->n, sizeof *G.hq);
    G.hround = calloc(1, round_bytes(g->n));
    if (!G.k || !G.hq || !G.hround) {
        err = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cuda: out of host memory");
        goto out;
    }
    uint32_t kmax = 1;
    for (uint32_t i = 0; i < g->n; i++) {
        uint32_t k = b->queries[order[g->first + i]].k;
        if (k > kmax)
            kmax = k;
    }
    vs_cu_thr_plan plan = vs_cu_plan_threshold(G.n_scan, kmax, g->n);
    if (s->test_cap && plan.capacity > s->test_cap)
        plan.capacity = s->test_cap;
    if ((err = buf_need(&s->round, round_bytes(g->n), "per-round query state", st)) != VS_OK)
        goto out;
    if ((err = buf_need(&s->thr, (size_t)g->n * sizeof(vs_cu_thr_dev), "thresholds", st)))
        goto out;
    G.d_thr = s->thr.p;
    if ((err = group_prepare(&G, v, as_bitmap, plan, st)) != VS_OK)
        goto out;
    s->last_mma += (uint32_t)G.mma;
    vs_cu_select_ops ops = {&G, op_scan, op_sort, op_set_thr, op_emit};
    err = vs_cu_select_run(&ops, g->n, G.k, G.n_scan, plan, budget, &stats, st);
    s->last.scans += stats.scans;
    s->last.overflows += stats.overflows;
    s->last.underflows += stats.underflows;
    s->last.exhaustive += stats.exhaustive;
out:
    free(G.k);
    free(G.hq);
    free(G.hround);
    return err;
}

/* ===== Scan, read, size ===== */

static vs_err cu_scan(void *store, const vs_slot_view *view, const vs_scan_batch *batch,
                      vs_cand *out, size_t stride, uint32_t *counts, vs_status *st)
{
    cu_store *s = store;
    const uint32_t nq = batch->n_queries;
    uint32_t kmax = 1, ng = 0;
    uint32_t *order = NULL;
    uint8_t *as_bitmap = NULL;
    vs_cu_group *groups = NULL;
    vs_err err;
    memset(&s->last, 0, sizeof s->last);
    s->last_mma = 0;
    if (nq == 0)
        return VS_OK;
    TRY(use_device(s, st));
    TRY(mirror_sync(s, view, st));
    for (uint32_t q = 0; q < nq; q++) {
        const vs_scan_query *sq = &batch->queries[q];
        if (sq->k < 1 || sq->n_terms < 1 || sq->n_terms > VS_MAX_TERMS) /* k may exceed VS_MAX_K:
                                                                      k x rerank_factor */
            return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                 "cuda: query %u: k %u or %u terms out of range", q, sq->k,
                                 sq->n_terms);
        for (uint32_t t = 0; t < sq->n_terms; t++) {
            const vs_scan_term *tm = &sq->terms[t];
            if (tm->field >= s->n_fields || tm->n_vecs < 1 ||
                tm->first + tm->n_vecs > batch->fq[tm->field].n)
                return vs_status_set(st, VS_ERR_INVALID_ARGUMENT,
                                     "cuda: query %u term %u: field %u vectors [%u, %u) of %u", q,
                                     t, tm->field, tm->first, tm->first + tm->n_vecs,
                                     tm->field < VS_MAX_FIELDS ? batch->fq[tm->field].n : 0);
        }
        if (sq->k > kmax)
            kmax = sq->k;
    }
    if (stride < kmax)
        return vs_status_set(st, VS_ERR_INTERNAL, "cuda: result stride %zu below k %u", stride,
                             kmax);
    order = malloc(nq * sizeof *order);
    as_bitmap = malloc(nq);
    groups = malloc(nq * sizeof *groups);
    if (!order || !as_bitmap || !groups) {
        err = vs_status_set(st, VS_ERR_RESOURCE_EXHAUSTED, "cuda: out of host memory");
        goto out;
    }
    if ((err = vs_cu_plan_groups(batch, view->slot_limit, MAX_GROUP_QUERIES, order, as_bitmap,
                                 groups, &ng, st)) != VS_OK)
        goto out;
    if ((err = buf_need(&s->out, (size_t)nq * kmax * sizeof(vs_cand), "results", st)) != VS_OK ||
        (err = buf_need(&s->out_n, (size_t)nq * 4, "result counts", st)) != VS_OK)
        goto out;
    if (cudaMemsetAsync(s->out_n.p, 0, (size_t)nq * 4, s->stream) != cudaSuccess) {
        err = cu_err(st, cudaGetLastError(), "scan");
        goto out;
    }
    const uint64_t budget = entry_budget();
    for (uint32_t g = 0; g < ng && !err; g++)
        err = run_group(s, view, batch, order, as_bitmap, &groups[g], kmax, budget, st);
    if (err)
        goto out;
    /* counts and results: one wait */
    if ((err = back_need(s, (size_t)nq * 4, st)) != VS_OK)
        goto out;
    if (cudaMemcpyAsync(s->h_back, s->out_n.p, (size_t)nq * 4, cudaMemcpyDeviceToHost,
                        s->stream) != cudaSuccess ||
        cudaMemcpy2DAsync(out, stride * sizeof(vs_cand), s->out.p, kmax * sizeof(vs_cand),
                          kmax * sizeof(vs_cand), nq, cudaMemcpyDeviceToHost,
                          s->stream) != cudaSuccess ||
        cudaStreamSynchronize(s->stream) != cudaSuccess) {
        err = cu_err(st, cudaGetLastError(), "reading results");
        goto out;
    }
    memcpy(counts, s->h_back, (size_t)nq * 4);
out:
    free(order);
    free(as_bitmap);
    free(groups);
    return err;
}

/* vs_backend_ops.read_row: one row back from the device, decoded as encode.c decodes it. */
static void cu_read_row(void *store, uint32_t field, uint32_t slot, float *out)
{
    cu_store *s = store;
    const cu_field *F = &s->f[field];
    const vs_cu_layout *l = &F->cl;
    const uint32_t dim = F->lay.dim;
    uint8_t *row;
    memset(out, 0, (size_t)dim * 4);
    if (slot >= (s->n_chunks << s->chunk_shift) || cudaSetDevice(s->dev) != cudaSuccess)
        return;
    row = malloc(l->stride);
    if (!row)
        return;
    if (cudaMemcpyAsync(row, F->h_chunks[slot >> s->chunk_shift] +
                                 (size_t)(slot & (s->chunk_rows - 1u)) * l->stride,
                        l->stride, cudaMemcpyDeviceToHost, s->stream) != cudaSuccess ||
        cudaStreamSynchronize(s->stream) != cudaSuccess) {
        (void)cudaGetLastError();
        free(row);
        return;
    }
    switch (F->lay.storage) {
    case VS_STORAGE_F32:
        memcpy(out, row, (size_t)dim * 4);
        break;
    case VS_STORAGE_F16: {
        float c[4];
        memcpy(c, row + l->code_pad, sizeof c);
        for (uint32_t i = 0; i < dim; i++) {
            uint16_t h;
            memcpy(&h, row + 2 * i, 2);
            out[i] = c[1] * vs_f16_to_f32(h);
        }
        break;
    }
    case VS_STORAGE_I8: {
        float c[4];
        memcpy(c, row + l->code_pad, sizeof c);
        for (uint32_t i = 0; i < dim; i++)
            out[i] = c[0] + c[1] * (float)(int8_t)row[i];
        break;
    }
    case VS_STORAGE_B1: /* signs of a rotation: nothing to decode (as encode.c's vs_decode_row) */
        break;
    }
    free(row);
}

/* vs_backend_ops.field_bytes: the field's chunks, codes and constants. */
static size_t cu_field_bytes(void *store, uint32_t field)
{
    const cu_store *s = store;
    return (size_t)s->n_chunks * s->chunk_rows * s->f[field].cl.stride;
}

bool vs_cuda_memory_info(int ordinal, uint64_t *free_bytes, uint64_t *total_bytes)
{
    size_t fr = 0, tot = 0;
    int prev = -1;
    *free_bytes = *total_bytes = 0;
    if (cudaGetDevice(&prev) != cudaSuccess || cudaSetDevice(ordinal) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    const bool ok = cudaMemGetInfo(&fr, &tot) == cudaSuccess;
    if (!ok)
        (void)cudaGetLastError();
    (void)cudaSetDevice(prev);
    *free_bytes = fr;
    *total_bytes = tot;
    return ok;
}

/* vs_backend_ops.device_bytes: what the store allocated (rows, ids, pointer arrays, bitmaps, scan
 * buffers; cudaMalloc rounds each up a little further), from its own bookkeeping. */
static uint64_t cu_device_bytes(void *store)
{
    const cu_store *s = store;
    const cu_buf *bufs[] = {&s->d_id_chunks, &s->stage,  &s->blob, &s->round,  &s->thr,
                            &s->list,        &s->bitmaps, &s->cand, &s->cnt,   &s->tile,
                            &s->gather,      &s->out,     &s->out_n, &s->key_id, &s->key_id_out,
                            &s->key_s,       &s->key_s_out, &s->v0, &s->v1,    &s->v2,
                            &s->beg,         &s->end,     &s->temp};
    const uint64_t rows = (uint64_t)s->n_chunks * s->chunk_rows;
    uint64_t held = rows * 8u + (uint64_t)s->words_cap * 8u; /* ids, the live bitmap */
    for (uint32_t f = 0; f < s->n_fields; f++)
        held += rows * s->f[f].cl.stride + s->f[f].d_chunks.cap + (uint64_t)s->words_cap * 8u;
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        held += bufs[i]->cap;
    return held;
}

const vs_backend_ops vs_cuda_backend = {
    "cuda",        cu_create,  cu_destroy,   cu_reserve,     cu_write_rows,
    cu_slots_changed, cu_scan, cu_read_row, cu_field_bytes, cu_device_bytes,
};

/* ===== Hooks for tests and benchmarks (cuda_bench.h) ===== */

vs_err vs_cuda_fill_random(void *store, uint32_t field, uint32_t n_rows, uint64_t seed,
                           vs_status *st)
{
    cu_store *s = store;
    vs_cu_fdev fd;
    if (field >= s->n_fields)
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "cuda: no field %u", field);
    if (n_rows > (s->n_chunks << s->chunk_shift))
        return vs_status_set(st, VS_ERR_INVALID_ARGUMENT, "cuda: %u rows, only %u reserved",
                             n_rows, s->n_chunks << s->chunk_shift);
    TRY(use_device(s, st));
    memset(&fd, 0, sizeof fd);
    fd.chunks = (uint8_t *const *)s->f[field].d_chunks.p;
    fd.stride = s->f[field].cl.stride;
    fd.code_pad = s->f[field].cl.code_pad;
    fd.has_consts = s->f[field].cl.has_consts;
    fd.storage = (uint32_t)s->f[field].lay.storage;
    CU_TRY(vs_cu_launch_fill_random(&fd, s->chunk_shift, n_rows, s->f[field].cl.code_bytes, seed,
                                    s->stream), "fill");
    CU_TRY(cudaStreamSynchronize(s->stream), "fill");
    s->full_sync = 1;
    return VS_OK;
}

void vs_cuda_set_test_capacity(void *store, uint32_t cap) { ((cu_store *)store)->test_cap = cap; }

void vs_cuda_set_mma(void *store, int on) { ((cu_store *)store)->mma_off = !on; }

uint32_t vs_cuda_last_mma_groups(void *store) { return ((cu_store *)store)->last_mma; }

void vs_cuda_last_stats(void *store, vs_cu_select_stats *out)
{
    *out = ((const cu_store *)store)->last;
}

/* qsort order of float. */
static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

vs_err vs_cuda_copy_bandwidth(int ordinal, size_t bytes, int reps, double *bytes_per_s,
                              vs_status *st)
{
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    float *ms = NULL;
    vs_err err = VS_OK;
    *bytes_per_s = 0.0;
    if (reps < 1)
        reps = 1;
    CU_TRY(cudaSetDevice(ordinal), "cudaSetDevice");
    if ((err = cu_alloc(&a, bytes, "the copy benchmark", st)) != VS_OK)
        return err;
    if ((err = cu_alloc(&b, bytes, "the copy benchmark", st)) != VS_OK)
        goto out;
    ms = malloc((size_t)reps * sizeof *ms);
    if (!ms || cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess ||
        cudaMemset(a, 1, bytes) != cudaSuccess ||
        cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice) != cudaSuccess) {
        err = cu_err(st, cudaGetLastError(), "the copy benchmark");
        goto out;
    }
    for (int r = 0; r < reps; r++) {
        cudaEventRecord(e0, 0);
        cudaMemcpyAsync(r & 1 ? a : b, r & 1 ? b : a, bytes, cudaMemcpyDeviceToDevice, 0);
        cudaEventRecord(e1, 0);
        if (cudaEventSynchronize(e1) != cudaSuccess) {
            err = cu_err(st, cudaGetLastError(), "the copy benchmark");
            goto out;
        }
        cudaEventElapsedTime(&ms[r], e0, e1);
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_float);
    *bytes_per_s = 2.0 * (double)bytes / (ms[reps / 2] * 1e-3);
out:
    free(ms);
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(b);
    return err;
}
