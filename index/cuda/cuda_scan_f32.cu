/* cuda_scan_f32.cu: the fused scan kernel instantiated for f32 rows (see cuda_scan.cuh). */
#include "cuda_scan.cuh"

extern "C" cudaError_t vs_cu_launch_small_f32(const vs_cu_small_args *a, int dots, int sm_count,
                                           cudaStream_t s)
{
    return vs_cu::launch_small<0>(*a, dots, sm_count, s);
}
