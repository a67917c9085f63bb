// select_frames on CUDA: checks, device guard, current stream, the Gaussian table and scratch;
// the kernel is in select_frames_kernel.cu.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <limits>
#include <tuple>

#include "scoring_checks.h"
#include "scoring_math.h"
#include "select_frames_kernel.h"

namespace claus {
namespace scoring {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> select_frames_cuda(
    const at::Tensor& frame_unc, const at::Tensor& candidates, const at::Tensor& annotated,
    const at::Tensor& k, int64_t kmax, double sigma, int64_t radius) {
  const char* op = "claus::select_frames";
  check_select_frames(op, frame_unc, candidates, annotated, k, kmax, sigma, radius);
  c10::cuda::CUDAGuard guard(frame_unc.device());
  check_k_values(op, k, kmax);
  const int64_t N = frame_unc.size(0), L = frame_unc.size(1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto selected = at::full({N, kmax}, -1, frame_unc.options().dtype(at::kLong));
  auto picked = at::full({N, kmax}, nan, frame_unc.options());
  auto video = at::full({N}, nan, frame_unc.options());
  if (N == 0 || L == 0 || kmax == 0) return {selected, picked, video};
  CLAUS_CHECK_ARG(L <= kSelectMaxLength, op, "frame_unc may have at most ", kSelectMaxLength,
                  " frames per video on CUDA, got shape ", shape_str(frame_unc));
  // The Gaussian table is built on the host with the same gauss() as the CPU kernel, so both
  // devices subtract bit-identical penalties.
  auto pen_host = at::empty({L}, at::TensorOptions().dtype(at::kFloat));
  float* ph = pen_host.mutable_data_ptr<float>();
  for (int64_t d = 0; d < L; ++d) ph[d] = gauss(d, sigma);
  auto pen = pen_host.to(frame_unc.device());
  auto u = frame_unc.contiguous();
  auto c = flags_for_kernel(candidates);
  auto a = flags_for_kernel(annotated);
  auto kc = k.contiguous();
  auto scores = at::empty({N, L}, frame_unc.options());
  const cudaError_t err = launch_select_frames(
      u.const_data_ptr<float>(), c.const_data_ptr<uint8_t>(), a.const_data_ptr<uint8_t>(),
      kc.const_data_ptr<int64_t>(), N, L, kmax, radius, pen.const_data_ptr<float>(),
      scores.mutable_data_ptr<float>(), selected.mutable_data_ptr<int64_t>(),
      picked.mutable_data_ptr<float>(), video.mutable_data_ptr<float>(),
      c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == cudaSuccess,
              ::claus::cat(op, ": CUDA kernel launch failed: ", cudaGetErrorString(err)));
  return {selected, picked, video};
}

}  // namespace

TORCH_LIBRARY_IMPL(claus, CUDA, m) { m.impl("select_frames", &select_frames_cuda); }

}  // namespace scoring
}  // namespace claus
