// Argument checks of the clustering ops, shared by the CPU and CUDA glue.
#pragma once

#include "../common/checks.h"

namespace claus {
namespace cluster {

// x (N,D) and centers (K,D): 2-D, one floating dtype, one device, K >= 1.
inline void check_points(const char* op, const at::Tensor& x, const at::Tensor& centers,
                         bool allow_half) {
  CLAUS_CHECK_ARG(x.dim() == 2, op, "x must be 2-D (N,D), got shape ", shape_str(x));
  CLAUS_CHECK_ARG(centers.dim() == 2, op, "centers must be 2-D (K,D), got shape ",
                  shape_str(centers));
  CLAUS_CHECK_ARG(centers.size(1) == x.size(1), op, "centers shape ", shape_str(centers),
                  " must have D = ", x.size(1), " columns to match x of shape ", shape_str(x));
  CLAUS_CHECK_ARG(centers.size(0) >= 1, op, "centers must hold at least one centre (K >= 1), ",
                  "got shape ", shape_str(centers));
  auto xt = x.scalar_type();
  bool ok = xt == at::kFloat || xt == at::kDouble ||
            (allow_half && (xt == at::kHalf || xt == at::kBFloat16));
  CLAUS_CHECK_ARG(ok, op, "x must be float32 or float64",
                  allow_half ? " (or float16/bfloat16)" : " (float16/bfloat16 only on CUDA)",
                  ", got ", xt);
  CLAUS_CHECK_ARG(centers.scalar_type() == xt, op, "centers dtype ", centers.scalar_type(),
                  " must equal x dtype ", xt);
  check_same_device(op, x, "x", centers, "centers");
}

// assign (N,) int64 on x's device (values are checked by the kernels or the caller).
inline void check_assign_shape(const char* op, const at::Tensor& assign, const at::Tensor& x) {
  CLAUS_CHECK_ARG(assign.dim() == 1 && assign.size(0) == x.size(0), op,
                  "assign must have shape (N,) = [", x.size(0), "] to match x of shape ",
                  shape_str(x), ", got ", shape_str(assign));
  CLAUS_CHECK_ARG(assign.scalar_type() == at::kLong, op, "assign must be int64, got ",
                  assign.scalar_type());
  check_same_device(op, x, "x", assign, "assign");
}

// update_centers_: centers (K,D) float32/float64, counts (K,) float32/float64/int64, x (N,D)
// floating (cast to centers' dtype), assign (N,) int64.
inline void check_update(const char* op, const at::Tensor& centers, const at::Tensor& counts,
                         const at::Tensor& x, const at::Tensor& assign) {
  CLAUS_CHECK_ARG(centers.dim() == 2, op, "centers must be 2-D (K,D), got shape ",
                  shape_str(centers));
  CLAUS_CHECK_ARG(centers.size(0) >= 1, op, "centers must hold at least one centre (K >= 1), ",
                  "got shape ", shape_str(centers));
  auto ct = centers.scalar_type();
  CLAUS_CHECK_ARG(ct == at::kFloat || ct == at::kDouble, op,
                  "centers must be float32 or float64, got ", ct);
  CLAUS_CHECK_ARG(counts.dim() == 1 && counts.size(0) == centers.size(0), op,
                  "counts must have shape (K,) = [", centers.size(0), "] to match centers of ",
                  "shape ", shape_str(centers), ", got ", shape_str(counts));
  auto nt = counts.scalar_type();
  CLAUS_CHECK_ARG(nt == at::kFloat || nt == at::kDouble || nt == at::kLong, op,
                  "counts must be float32, float64 or int64, got ", nt);
  CLAUS_CHECK_ARG(x.dim() == 2 && x.size(1) == centers.size(1), op, "x must have shape (N,D) ",
                  "with D = ", centers.size(1), " to match centers of shape ", shape_str(centers),
                  ", got ", shape_str(x));
  CLAUS_CHECK_ARG(at::isFloatingType(x.scalar_type()), op, "x must be floating point, got ",
                  x.scalar_type());
  check_same_device(op, centers, "centers", counts, "counts");
  check_same_device(op, centers, "centers", x, "x");
  check_assign_shape(op, assign, x);
}

}  // namespace cluster
}  // namespace claus
