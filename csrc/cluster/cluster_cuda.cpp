// Torch glue of the clustering CUDA kernels: checks, dtype dispatch (float16/bfloat16 by raw
// pointer; the kernels widen to fp32), device guard, current stream, launch-error check.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>

#include "cluster_checks.h"
#include "cluster_kernel.h"

namespace claus {
namespace cluster {
namespace {

DType kernel_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return DType::kFloat;
    case at::kDouble: return DType::kDouble;
    case at::kHalf: return DType::kHalf;
    case at::kBFloat16: return DType::kBFloat16;
    default: TORCH_CHECK_VALUE(false, "claus cluster ops: unsupported dtype ", t);
  }
  return DType::kFloat;
}

at::ScalarType dist_dtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

void check_launch(const char* op, cudaError_t err) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

// assign in [-1, K): one reduction and a device sync (the kernels index centres with it).
void check_assign_values_cuda(const char* op, const at::Tensor& assign, int64_t K) {
  if (assign.numel() == 0) return;
  auto mm = at::aminmax(assign);
  const int64_t lo = std::get<0>(mm).item<int64_t>(), hi = std::get<1>(mm).item<int64_t>();
  CLAUS_CHECK_ARG(lo >= -1 && hi < K, op, "assign values must lie in [-1, K) = [-1, ", K,
                  "), got values in [", lo, ", ", hi, "]");
}

// Runs the assignment kernels; dist2 has dist_dtype(x).
void assign_into(const char* op, const at::Tensor& xc, const at::Tensor& cc, at::Tensor& assign,
                 at::Tensor& dist2) {
  const int64_t N = xc.size(0), D = xc.size(1), K = cc.size(0);
  auto ws = at::empty({static_cast<int64_t>(assign_workspace_bytes(N, K))},
                      xc.options().dtype(at::kByte));
  check_launch(op, launch_assign(kernel_dtype(xc.scalar_type()), xc.const_data_ptr(),
                                 cc.const_data_ptr(), N, D, K, assign.mutable_data_ptr<int64_t>(),
                                 dist2.mutable_data_ptr(), dist2.scalar_type() == at::kDouble,
                                 ws.mutable_data_ptr(),
                                 c10::cuda::getCurrentCUDAStream().stream()));
}

std::tuple<at::Tensor, at::Tensor> cluster_assign_cuda(const at::Tensor& x,
                                                       const at::Tensor& centers) {
  const char* op = "claus::cluster_assign";
  check_points(op, x, centers, /*allow_half=*/true);
  c10::cuda::CUDAGuard guard(x.device());
  const int64_t N = x.size(0);
  auto assign = at::empty({N}, x.options().dtype(at::kLong));
  auto dist2 = at::empty({N}, x.options().dtype(dist_dtype(x.scalar_type())));
  if (N == 0) return {assign, dist2};
  auto xc = x.contiguous();
  auto cc = centers.contiguous();
  assign_into(op, xc, cc, assign, dist2);
  return {assign, dist2};
}

std::tuple<at::Tensor, at::Tensor> cluster_loss_cuda(const at::Tensor& x,
                                                     const at::Tensor& centers, double beta) {
  const char* op = "claus::cluster_loss";
  check_points(op, x, centers, /*allow_half=*/true);
  CLAUS_CHECK_ARG(std::isfinite(beta), op, "beta must be finite, got ", beta);
  c10::cuda::CUDAGuard guard(x.device());
  const int64_t N = x.size(0);
  const auto acc = dist_dtype(x.scalar_type());
  auto assign = at::empty({N}, x.options().dtype(at::kLong));
  if (N == 0) return {at::zeros({}, x.options().dtype(acc)), assign};
  auto dist2 = at::empty({N}, x.options().dtype(acc));
  auto xc = x.contiguous();
  auto cc = centers.contiguous();
  assign_into(op, xc, cc, assign, dist2);
  // fp64 sum of the per-row distances (torch's reduction, deterministic for a given size).
  auto loss = (dist2.sum(at::kDouble) * (0.5 * beta / static_cast<double>(N))).to(acc);
  return {loss, assign};
}

at::Tensor cluster_loss_backward_cuda(const at::Tensor& grad, const at::Tensor& x,
                                      const at::Tensor& centers, const at::Tensor& assign,
                                      double beta) {
  const char* op = "claus::cluster_loss_backward";
  check_points(op, x, centers, /*allow_half=*/true);
  check_assign_shape(op, assign, x);
  CLAUS_CHECK_ARG(grad.numel() == 1, op, "grad must hold one value (the loss is a scalar), ",
                  "got shape ", shape_str(grad));
  check_same_device(op, x, "x", grad, "grad");
  c10::cuda::CUDAGuard guard(x.device());
  const int64_t N = x.size(0), D = x.size(1), K = centers.size(0);
  auto gx = at::empty(x.sizes(), x.options());
  if (N == 0) return gx;
  check_assign_values_cuda(op, assign, K);
  auto xc = x.contiguous();
  auto cc = centers.contiguous();
  auto ac = assign.contiguous();
  auto g = grad.reshape({}).to(dist_dtype(x.scalar_type())).contiguous();
  check_launch(op, launch_loss_backward(kernel_dtype(x.scalar_type()), g.const_data_ptr(),
                                        xc.const_data_ptr(), cc.const_data_ptr(),
                                        ac.const_data_ptr<int64_t>(), beta, N, D,
                                        gx.mutable_data_ptr(),
                                        c10::cuda::getCurrentCUDAStream().stream()));
  return gx;
}

CountType count_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return CountType::kFloat;
    case at::kDouble: return CountType::kDouble;
    default: return CountType::kLong;
  }
}

void update_centers_cuda(at::Tensor& centers, at::Tensor& counts, const at::Tensor& x,
                         const at::Tensor& assign) {
  const char* op = "claus::update_centers_";
  check_update(op, centers, counts, x, assign);
  c10::cuda::CUDAGuard guard(centers.device());
  const int64_t N = x.size(0), D = x.size(1), K = centers.size(0);
  // Checked before anything is written, so a bad call changes nothing (two device syncs).
  auto nd = counts.to(at::kDouble);
  const bool counts_ok = at::logical_and(nd >= 0, at::isfinite(nd)).all().item<bool>();
  CLAUS_CHECK_ARG(counts_ok, op, "counts must be finite and >= 0, got min ",
                  nd.min().item<double>());
  check_assign_values_cuda(op, assign, K);
  if (N == 0) return;
  auto cc = centers.contiguous();
  auto nc = counts.contiguous();
  auto xc = x.to(centers.scalar_type()).contiguous();
  auto ac = assign.contiguous();
  auto ws = at::empty({static_cast<int64_t>(update_workspace_bytes(K, D))},
                      centers.options().dtype(at::kByte));
  check_launch(op, launch_update_centers(kernel_dtype(centers.scalar_type()),
                                         cc.mutable_data_ptr(), count_type(counts.scalar_type()),
                                         nc.mutable_data_ptr(), xc.const_data_ptr(),
                                         ac.const_data_ptr<int64_t>(), N, D, K,
                                         ws.mutable_data_ptr(),
                                         c10::cuda::getCurrentCUDAStream().stream()));
  // In place even for non-contiguous arguments: write the contiguous results back.
  if (!cc.is_same(centers)) centers.copy_(cc);
  if (!nc.is_same(counts)) counts.copy_(nc);
}

}  // namespace

TORCH_LIBRARY_IMPL(claus, CUDA, m) {
  m.impl("cluster_assign", &cluster_assign_cuda);
  m.impl("cluster_loss", &cluster_loss_cuda);
  m.impl("cluster_loss_backward", &cluster_loss_backward_cuda);
  m.impl("update_centers_", &update_centers_cuda);
}

}  // namespace cluster
}  // namespace claus
