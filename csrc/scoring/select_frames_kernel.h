// Torch-free launcher of the select_frames CUDA kernel (raw pointers, sizes, a stream).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace claus {
namespace scoring {

// Largest padded length L the kernel takes (frame indices are kept in 32 bits while sweeping).
constexpr int64_t kSelectMaxLength = 0x7fffffffLL;

// N videos padded to L frames, row-major (N,L): frame_unc float32, candidates/annotated 0/1
// bytes; k (N,) int64 in [0, kmax]; pen (L,) float32 = gauss(d, sigma) for d = 0..L-1 (see
// scoring_math.h); scores: N*L floats of scratch. Writes selected (N,kmax) int64 and
// picked (N,kmax) float32, which the caller pre-fills with -1 and NaN, and video_score (N,)
// float32, pre-filled with NaN. Requires N >= 1, 1 <= L <= kSelectMaxLength, kmax >= 1.
// Returns the launch error (cudaSuccess when none).
cudaError_t launch_select_frames(const float* frame_unc, const uint8_t* candidates,
                                 const uint8_t* annotated, const int64_t* k, int64_t N,
                                 int64_t L, int64_t kmax, int64_t radius, const float* pen,
                                 float* scores, int64_t* selected, float* picked,
                                 float* video_score, cudaStream_t stream);

}  // namespace scoring
}  // namespace claus
