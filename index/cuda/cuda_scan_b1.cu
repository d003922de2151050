/* cuda_scan_b1.cu: the fused scan kernel instantiated for b1 rows (see cuda_scan.cuh). */
#include "cuda_scan.cuh"

extern "C" cudaError_t vs_cu_launch_small_b1(const vs_cu_small_args *a, int dots, int sm_count,
                                           cudaStream_t s)
{
    return vs_cu::launch_small<3>(*a, dots, sm_count, s);
}
