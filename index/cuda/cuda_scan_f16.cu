/* cuda_scan_f16.cu: the fused scan kernel instantiated for f16 rows (see cuda_scan.cuh). */
#include "cuda_scan.cuh"

extern "C" cudaError_t vs_cu_launch_small_f16(const vs_cu_small_args *a, int dots, int sm_count,
                                           cudaStream_t s)
{
    return vs_cu::launch_small<1>(*a, dots, sm_count, s);
}
