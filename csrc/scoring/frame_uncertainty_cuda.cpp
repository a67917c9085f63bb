// frame_uncertainty on CUDA: checks, device guard, current stream, dtype dispatch (float32,
// float16, bfloat16 through raw pointers), workspace; the kernels are in
// frame_uncertainty_kernel.cu.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <string>
#include <tuple>

#include "frame_uncertainty_kernel.h"
#include "scoring_checks.h"

namespace claus {
namespace scoring {
namespace {

LogitsDtype logits_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return LogitsDtype::kFloat32;
    case at::kHalf:
      return LogitsDtype::kFloat16;
    case at::kBFloat16:
      return LogitsDtype::kBFloat16;
    default:
      TORCH_CHECK_VALUE(false, ::claus::cat("claus::frame_uncertainty: unsupported logits dtype ", t));
  }
  return LogitsDtype::kFloat32;  // unreachable
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> frame_uncertainty_cuda(const at::Tensor& logits,
                                                                      double fg_threshold,
                                                                      c10::string_view mode) {
  const char* op = "claus::frame_uncertainty";
  const UncMode m =
      check_frame_uncertainty(op, logits, fg_threshold, std::string(mode), /*allow_half=*/true);
  c10::cuda::CUDAGuard guard(logits.device());
  const int64_t R = logits.size(0), N = logits.size(1), T = logits.size(2);
  const int64_t HW = logits.size(3) * logits.size(4);
  auto opts = logits.options().dtype(at::kFloat);
  const int64_t frames = N * T;
  if (frames == 0 || HW == 0) {  // sums over no pixels (or no frames at all)
    return {at::zeros({N, T}, opts), at::zeros({N, T}, opts), at::zeros({N, T}, opts)};
  }
  // The kernels write every output element: no zero-fill kernels (each one a launch that the
  // op's time would include).
  auto fg = at::empty({N, T}, opts), unc = at::empty({N, T}, opts), ent = at::empty({N, T}, opts);
  auto z = logits.contiguous();
  const LogitsDtype dt = logits_dtype(z.scalar_type());
  const int64_t ws = frame_uncertainty_workspace_floats(frames, HW, dt, z.const_data_ptr());
  auto work = at::empty({ws}, opts);
  const cudaError_t err = launch_frame_uncertainty(
      z.const_data_ptr(), dt, R, frames, HW, static_cast<float>(fg_threshold),
      m == UncMode::kMeanLog, fg.mutable_data_ptr<float>(), unc.mutable_data_ptr<float>(),
      ent.mutable_data_ptr<float>(), work.mutable_data_ptr<float>(), ws,
      c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == cudaSuccess,
              ::claus::cat(op, ": CUDA kernel launch failed: ", cudaGetErrorString(err)));
  return {fg, unc, ent};
}

}  // namespace

TORCH_LIBRARY_IMPL(claus, CUDA, m) { m.impl("frame_uncertainty", &frame_uncertainty_cuda); }

}  // namespace scoring
}  // namespace claus
