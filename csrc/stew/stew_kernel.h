// Torch-free launchers of the STeW CUDA kernels (raw pointers, sizes and a stream).
//
// Layouts: z, y are contiguous (B,T,HW); annotated is (B,T) uint8 (0/1). Labels are either
// uint8 (`labels_u8`) or of the accumulation type: double for Float64 logits, else float.
// Every launcher returns the launch status; the torch glue turns a failure into an error.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace claus {
namespace stew {
namespace cuda {

enum class Scalar : int { Float32 = 0, Float64 = 1, Float16 = 2, BFloat16 = 3 };

// Threads per block; a thread owns kItems packs of up to 4 consecutive pixels of one frame, so
// a block covers at most kBlock * kItems * 4 elements of a clip's flattened (T, HW) plane.
constexpr int kBlock = 256;
constexpr int kItems = 2;

// Blocks per clip for packs of `vec` elements (the scalar path, vec = 1, needs the most).
inline int64_t num_tiles(int64_t T, int64_t hw, int64_t vec) {
  const int64_t per_block = static_cast<int64_t>(kBlock) * kItems;
  return (T * hw / vec + per_block - 1) / per_block;
}

// Bytes of fp64 workspace that `stats_forward` needs: one partial per block and statistic,
// sized for the scalar path, the one with the most blocks.
inline size_t stats_workspace_bytes(int64_t B, int64_t T, int64_t hw) {
  return static_cast<size_t>(B) * static_cast<size_t>(num_tiles(T, hw, 1)) * 5 * sizeof(double);
}

// out: (B,5) of the accumulation type (double for Float64 logits, else float).
cudaError_t stats_forward(const void* z, Scalar z_type, const void* y, bool labels_u8,
                          const uint8_t* annotated, int64_t B, int64_t T, int64_t hw,
                          double sigma, int64_t radius, int64_t window, double* workspace,
                          void* out, cudaStream_t stream);

// grad: (B,5) of the accumulation type; gz: (B,T,HW) of z's type.
cudaError_t stats_backward(const void* grad, const void* z, Scalar z_type, const void* y,
                           bool labels_u8, const uint8_t* annotated, int64_t B, int64_t T,
                           int64_t hw, double sigma, int64_t radius, int64_t window, void* gz,
                           cudaStream_t stream);

// y: uint8 or float labels; out: (B,T,HW) float.
cudaError_t weights(const void* y, bool labels_u8, const uint8_t* annotated, int64_t B,
                    int64_t T, int64_t hw, double sigma, int64_t radius, int64_t window,
                    float* out, cudaStream_t stream);

}  // namespace cuda
}  // namespace stew
}  // namespace claus
