/*
 * test_gpu_conformance.c: the backend conformance suite (tests/conformance) run on the CUDA backend,
 * through the public index API. VS_GPU_TEST_QUICK=1 trims the sizes (for compute-sanitizer).
 * Without a CUDA device it prints SKIP and exits 77.
 */
#include <stdio.h>
#include <stdlib.h>

#include "conformance.h"
#include "cuda_bench.h"
#include "testutil.h"

int main(void)
{
    char why[160], msg[200];
    int quick = getenv("VS_GPU_TEST_QUICK") != NULL, fails = 0;
    if (vs_cuda_device_count(why, sizeof why) == 0) {
        snprintf(msg, sizeof msg, "no CUDA device (%s)", why);
        return vs_test_skip("test_gpu_conformance", msg);
    }
    for (uint64_t seed = 42; seed < (quick ? 43u : 44u); seed++)
        fails += vs_conformance_run(VS_DEVICE_CUDA, seed, quick);
    if (fails) {
        fprintf(stderr, "test_gpu_conformance: %d check(s) failed\n", fails);
        return 1;
    }
    fprintf(stderr, "test_gpu_conformance: all checks passed\n");
    return 0;
}
