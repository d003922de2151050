/* cuda_scan_i8.cu: the fused scan kernel instantiated for i8 rows (see cuda_scan.cuh). */
#include "cuda_scan.cuh"

extern "C" cudaError_t vs_cu_launch_small_i8(const vs_cu_small_args *a, int dots, int sm_count,
                                           cudaStream_t s)
{
    return vs_cu::launch_small<2>(*a, dots, sm_count, s);
}
