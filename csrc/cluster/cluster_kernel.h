// Torch-free launchers of the clustering CUDA kernels (csrc/cluster/cluster_kernel.cu).
//
// Pointers are raw device pointers to contiguous row-major data; `dtype` names the element type
// of x and centers. Every launcher enqueues on `stream` and returns the launch error (a
// cudaError_t the torch glue checks); none synchronizes.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace claus {
namespace cluster {

enum class DType : int { kFloat = 0, kDouble = 1, kHalf = 2, kBFloat16 = 3 };

// Bytes of device workspace `launch_assign` needs for N rows and K centres.
size_t assign_workspace_bytes(int64_t N, int64_t K);

// Nearest centre of every row of x (N,D) among centers (K,D), K >= 1, N >= 1.
// Writes assign (N,) int64 (-1 for a row with no non-NaN distance) and dist2 (N,) as float
// (dist2_double = false) or double (true); `workspace` holds assign_workspace_bytes(N, K) bytes,
// 16-byte aligned.
cudaError_t launch_assign(DType dtype, const void* x, const void* centers, int64_t N, int64_t D,
                          int64_t K, int64_t* assign, void* dist2, bool dist2_double,
                          void* workspace, cudaStream_t stream);

// Gradient of beta/2 * mean_i ||x_i - c_assign(i)||^2 w.r.t. x, times the upstream gradient
// `grad` (one value on the device, float for float/half/bf16 x, double for double x):
// gx (N,D) of x's dtype; NaN rows where assign is -1. `assign` must lie in [-1, K).
cudaError_t launch_loss_backward(DType dtype, const void* grad, const void* x,
                                 const void* centers, const int64_t* assign, double beta,
                                 int64_t N, int64_t D, void* gx, cudaStream_t stream);

// Counts dtype of update_centers_.
enum class CountType : int { kFloat = 0, kDouble = 1, kLong = 2 };

// Bytes of device workspace `launch_update_centers` needs.
size_t update_workspace_bytes(int64_t K, int64_t D);

// In-place closed-form centre update (see cluster_math.h, updated_center). centers (K,D) and x
// (N,D) of `dtype` (float or double only), counts (K,) of `count_type`, assign in [-1, K).
// Sums are fp64 atomics: the order of additions varies between runs.
cudaError_t launch_update_centers(DType dtype, void* centers, CountType count_type, void* counts,
                                  const void* x, const int64_t* assign, int64_t N, int64_t D,
                                  int64_t K, void* workspace, cudaStream_t stream);

}  // namespace cluster
}  // namespace claus
