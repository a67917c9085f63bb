// Torch-free launcher of the frame_uncertainty CUDA kernels (raw pointers, sizes, a stream).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace claus {
namespace scoring {

enum class LogitsDtype : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Floats of scratch that launch_frame_uncertainty needs for `frames` frames of HW pixels on the
// current device (the split of the work depends on its number of SMs).
int64_t frame_uncertainty_workspace_floats(int64_t frames, int64_t HW, LogitsDtype dtype,
                                           const void* logits);

// logits: R*frames*HW contiguous values of `dtype` (pass r, frame f, pixel p at
// (r*frames + f)*HW + p), frames = N*T. Writes fg_count, unc_sum, ent_sum (frames floats each).
// Every output element is written (no zero-fill needed). workspace: workspace_floats floats,
// at least frame_uncertainty_workspace_floats(...) for the same arguments on the same (current)
// device, no initialization needed. counters: nullptr (two launches: partial sums, then a
// finishing kernel) or at least `frames` unsigned ints that are all 0 when the launch starts
// (in stream order) and that it leaves all 0 again (one launch: the last block of each frame
// finishes it). A counter buffer must not be used by two launches that may run at the same
// time (e.g. on two streams); neither may a workspace. Requires R >= 1, frames >= 1, HW >= 1
// (cudaErrorInvalidValue otherwise, or when the workspace is too small). Returns the first CUDA
// error of the launches (cudaSuccess when none).
cudaError_t launch_frame_uncertainty(const void* logits, LogitsDtype dtype, int64_t R,
                                     int64_t frames, int64_t HW, float fg_threshold,
                                     bool mean_log, float* fg_count, float* unc_sum,
                                     float* ent_sum, float* workspace, int64_t workspace_floats,
                                     unsigned* counters, cudaStream_t stream);

}  // namespace scoring
}  // namespace claus
