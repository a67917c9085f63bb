// Torch glue of the STeW CUDA kernels: checks, dtype dispatch, device guard, current stream.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "stew_checks.h"
#include "stew_kernel.h"

namespace claus {
namespace stew {
namespace {

cuda::Scalar scalar_kind(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return cuda::Scalar::Float32;
    case at::kDouble: return cuda::Scalar::Float64;
    case at::kHalf: return cuda::Scalar::Float16;
    case at::kBFloat16: return cuda::Scalar::BFloat16;
    default: TORCH_CHECK_VALUE(false, ::claus::cat("claus: unsupported logits dtype ", t));
  }
}

void check_launch(const char* op, cudaError_t err) {
  TORCH_CHECK(err == cudaSuccess,
              ::claus::cat(op, ": CUDA kernel launch failed: ", cudaGetErrorString(err)));
}

at::Tensor stew_stats_cuda(const at::Tensor& z, const at::Tensor& y, const at::Tensor& annotated,
                           double sigma, int64_t radius, int64_t window) {
  const char* op = "claus::stew_stats";
  check_logits(op, z, y, /*allow_half=*/true);
  check_labels(op, y, annotated, sigma, radius, window);
  c10::cuda::CUDAGuard guard(z.device());
  const auto acc = acc_type(z.scalar_type());
  // The kernels write every entry; only an empty batch needs the zeros.
  auto out = at::empty({z.size(0), 5}, z.options().dtype(acc));
  if (z.numel() == 0) return out.zero_();
  auto zc = z.contiguous();
  auto yc = labels_for_kernel(y, acc);
  auto ac = flags_for_kernel(annotated);
  const int64_t B = z.size(0), T = z.size(1), hw = z.size(2) * z.size(3);
  auto ws = at::empty({static_cast<int64_t>(cuda::stats_workspace_bytes(B, T, hw) / sizeof(double))},
                      z.options().dtype(at::kDouble));
  check_launch(op, cuda::stats_forward(zc.const_data_ptr(), scalar_kind(z.scalar_type()),
                                       yc.const_data_ptr(), yc.scalar_type() == at::kByte,
                                       ac.const_data_ptr<uint8_t>(), B, T, hw, sigma, radius,
                                       window, ws.mutable_data_ptr<double>(),
                                       out.mutable_data_ptr(),
                                       c10::cuda::getCurrentCUDAStream().stream()));
  return out;
}

at::Tensor stew_stats_backward_cuda(const at::Tensor& grad, const at::Tensor& z,
                                    const at::Tensor& y, const at::Tensor& annotated,
                                    double sigma, int64_t radius, int64_t window) {
  const char* op = "claus::stew_stats_backward";
  check_logits(op, z, y, /*allow_half=*/true);
  check_labels(op, y, annotated, sigma, radius, window);
  CLAUS_CHECK_ARG(grad.dim() == 2 && grad.size(0) == z.size(0) && grad.size(1) == 5, op,
                  "grad must have shape (B,5) = [", z.size(0), ", 5], got ", shape_str(grad));
  check_same_device(op, grad, "grad", z, "z");
  c10::cuda::CUDAGuard guard(z.device());
  auto gz = at::empty_like(z, at::MemoryFormat::Contiguous);
  if (z.numel() == 0) return gz;
  const auto acc = acc_type(z.scalar_type());
  auto zc = z.contiguous();
  auto gc = grad.to(acc).contiguous();
  auto yc = labels_for_kernel(y, acc);
  auto ac = flags_for_kernel(annotated);
  const int64_t B = z.size(0), T = z.size(1), hw = z.size(2) * z.size(3);
  check_launch(op, cuda::stats_backward(gc.const_data_ptr(), zc.const_data_ptr(),
                                        scalar_kind(z.scalar_type()), yc.const_data_ptr(),
                                        yc.scalar_type() == at::kByte,
                                        ac.const_data_ptr<uint8_t>(), B, T, hw, sigma, radius,
                                        window, gz.mutable_data_ptr(),
                                        c10::cuda::getCurrentCUDAStream().stream()));
  return gz;
}

at::Tensor stew_weights_cuda(const at::Tensor& y, const at::Tensor& annotated, double sigma,
                             int64_t radius, int64_t window) {
  check_labels("claus::stew_weights", y, annotated, sigma, radius, window);
  c10::cuda::CUDAGuard guard(y.device());
  auto out = at::empty(y.sizes(), y.options().dtype(at::kFloat));
  if (y.numel() == 0) return out;
  auto yc = labels_for_kernel(y, at::kFloat);
  auto ac = flags_for_kernel(annotated);
  const int64_t B = y.size(0), T = y.size(1), hw = y.size(2) * y.size(3);
  check_launch("claus::stew_weights",
               cuda::weights(yc.const_data_ptr(), yc.scalar_type() == at::kByte,
                             ac.const_data_ptr<uint8_t>(), B, T, hw, sigma, radius, window,
                             out.mutable_data_ptr<float>(), c10::cuda::getCurrentCUDAStream().stream()));
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(claus, CUDA, m) {
  m.impl("stew_stats", &stew_stats_cuda);
  m.impl("stew_stats_backward", &stew_stats_backward_cuda);
  m.impl("stew_weights", &stew_weights_cuda);
}

}  // namespace stew
}  // namespace claus
