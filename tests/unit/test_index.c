/*
 * test_index.c: libvecscan on the CPU backend: the conformance suite under every kernel table this
 * processor runs (scalar reference, AVX2, AVX-512), and the memory bound of i8 storage.
 */
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "testutil.h"

/* Resident set size in bytes, from /proc/self/statm. */
static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * 4096ul;
}

/* An i8 field of N rows takes at most 1.1 x N x (d + 12) bytes (no hidden f32 copy). */
static void test_i8_memory(void)
{
    const uint32_t d = 128, n = 200000, batch = 4096;
    vs_field_spec sp = {.name = "e", .dim = d, .metric = VS_METRIC_IP, .storage = VS_STORAGE_I8};
    vs_index_options o = {.n_threads = 1};
    vs_index *ix;
    vs_status st;
    CHECK(vs_index_create(&sp, 1, &o, &ix, &st) == VS_OK);
    float *x = malloc((size_t)batch * d * sizeof(float));
    vs_item_vectors *items = calloc(batch, sizeof *items);
    vs_rng r;
    vs_rng_seed(&r, 5);
    for (size_t i = 0; i < (size_t)batch * d; i++)
        x[i] = (float)vs_rng_gauss(&r);
    size_t before = rss_bytes();
    for (uint32_t done = 0; done < n; done += batch) {
        uint32_t b = n - done < batch ? n - done : batch;
        for (uint32_t i = 0; i < b; i++) {
            items[i].id = done + i;
            items[i].vectors[0] = x + (size_t)i * d;
        }
        CHECK(vs_index_upsert(ix, items, b, NULL, &st) == VS_OK);
    }
    size_t grown = rss_bytes() - before;
    double bound = 1.1 * n * (d + 12);
    /* the index's own bookkeeping, not the field's: slot ids (8 bytes a row) and the id map (12
     * bytes a bucket, 1.4 to 2.9 buckets a row) */
    double bookkeeping = (double)n * (8 + 12 * 2.9);
    printf("i8 field: %u rows x %u: resident growth %.1f MB, field bound %.1f MB (+ %.1f MB ids)\n", n, d,
           grown / 1e6, bound / 1e6, bookkeeping / 1e6);
#if defined(__SANITIZE_ADDRESS__)
    printf("(AddressSanitizer's shadow memory and quarantine inflate the resident size: not checked)\n");
#else
    CHECKF(grown <= bound + bookkeeping, "resident growth %zu > %.0f", grown, bound + bookkeeping);
#endif
    size_t fb = vs_index_field_bytes(ix, 0);
    CHECKF(fb <= bound && fb >= (size_t)n * (d + 12), "field bytes %zu outside [%u, %.0f]", fb, n * (d + 12), bound);
    free(items);
    free(x);
    vs_index_destroy(ix);
}

int main(void)
{
    test_i8_memory(); /* first, while the heap holds nothing freed that it could reuse */
    static const char *const tables[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        setenv("VECSCAN_KERNELS", tables[i], 1);
        int quick = i == 0 || getenv("VECSCAN_QUICK") != NULL; /* the scalar table is slow at d = 784 */
        int fails = vs_conformance_run(VS_DEVICE_CPU, 42 + (uint64_t)i, quick);
        printf("conformance, %s kernels: %s\n", tables[i], fails ? "FAILED" : "ok");
    }
    unsetenv("VECSCAN_KERNELS");
    return vs_test_finish("test_index");
}
