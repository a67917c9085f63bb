// Argument checks of the STeW ops, shared by the CPU and CUDA glue.
#pragma once

#include "../common/checks.h"

namespace claus {
namespace stew {

inline void check_labels(const char* op, const at::Tensor& y, const at::Tensor& annotated,
                         double sigma, int64_t radius, int64_t window) {
  CLAUS_CHECK_ARG(y.dim() == 4, op, "y must be 4-D (B,T,H,W), got shape ", shape_str(y));
  auto yt = y.scalar_type();
  CLAUS_CHECK_ARG(yt == at::kBool || yt == at::kByte || at::isFloatingType(yt), op,
                  "y must be bool, uint8 or floating point, got ", yt);
  CLAUS_CHECK_ARG(annotated.dim() == 2 && annotated.size(0) == y.size(0) &&
                      annotated.size(1) == y.size(1),
                  op, "annotated must have shape (B,T) = [", y.size(0), ", ", y.size(1),
                  "] to match y of shape ", shape_str(y), ", got ", shape_str(annotated));
  CLAUS_CHECK_ARG(annotated.scalar_type() == at::kBool || annotated.scalar_type() == at::kByte,
                  op, "annotated must be bool, got ", annotated.scalar_type());
  check_same_device(op, y, "y", annotated, "annotated");
  CLAUS_CHECK_ARG(sigma > 0 && std::isfinite(sigma), op, "sigma must be a finite number > 0, got ",
                  sigma);
  CLAUS_CHECK_ARG(radius >= 0, op, "radius must be >= 0, got ", radius);
  CLAUS_CHECK_ARG(window >= 0, op, "window must be >= 0, got ", window);
}

inline void check_logits(const char* op, const at::Tensor& z, const at::Tensor& y,
                         bool allow_half) {
  CLAUS_CHECK_ARG(z.dim() == 4, op, "z must be 4-D (B,T,H,W), got shape ", shape_str(z));
  CLAUS_CHECK_ARG(z.sizes() == y.sizes(), op, "y shape ", shape_str(y), " must equal z shape ",
                  shape_str(z));
  auto zt = z.scalar_type();
  bool ok = zt == at::kFloat || zt == at::kDouble ||
            (allow_half && (zt == at::kHalf || zt == at::kBFloat16));
  CLAUS_CHECK_ARG(ok, op, "z must be float32 or float64",
                  allow_half ? " (or float16/bfloat16)" : " (float16/bfloat16 only on CUDA)",
                  ", got ", zt);
  check_same_device(op, z, "z", y, "y");
}

// Labels as the kernels read them: uint8 for bool/uint8 (bool is stored as 0/1 bytes), else the
// accumulation dtype. Soft labels are therefore rounded to fp32 for fp32/fp16/bf16 logits.
inline at::Tensor labels_for_kernel(const at::Tensor& y, at::ScalarType acc) {
  if (y.scalar_type() == at::kBool) return y.contiguous().view(at::kByte);
  if (y.scalar_type() == at::kByte) return y.contiguous();
  return y.to(acc).contiguous();
}

inline at::Tensor flags_for_kernel(const at::Tensor& annotated) {
  auto a = annotated.contiguous();
  return a.scalar_type() == at::kBool ? a.view(at::kByte) : a;
}

inline at::ScalarType acc_type(at::ScalarType zt) {
  return zt == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace stew
}  // namespace claus
