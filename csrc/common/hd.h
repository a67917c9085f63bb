// Shared-math conventions for kernels compiled by both g++ (CPU) and nvcc (CUDA).
//
// Per-element arithmetic of every op lives in small inline functions marked CLAUS_HD, in a
// header included by the op's CPU kernel and its CUDA kernel. The CPU tests therefore exercise
// the very math the GPU runs; the .cu files add only the parallel decomposition.
#pragma once

#if defined(__CUDACC__)
#define CLAUS_HD __host__ __device__ __forceinline__
#else
#define CLAUS_HD inline
#endif
