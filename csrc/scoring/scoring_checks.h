// Argument checks of the frame scoring ops, shared by the CPU and CUDA glue (never by .cu files).
// The Python fake kernels in claus_ext/scoring.py repeat them, with the same messages.
#pragma once

#include <string>

#include "../common/checks.h"
#include "scoring_math.h"

namespace claus {
namespace scoring {

// Like claus::check_same_device, but a ValueError as for every other bad argument of these ops.
inline void check_device(const char* op, const at::Tensor& a, const char* an, const at::Tensor& b,
                         const char* bn) {
  CLAUS_CHECK_ARG(a.device() == b.device(), op, an, " is on ", a.device(), " but ", bn, " is on ",
                  b.device(), "; move them to one device");
}

inline UncMode parse_mode(const char* op, const std::string& mode) {
  if (mode == "mean_log") return UncMode::kMeanLog;
  if (mode == "log_mean") return UncMode::kLogMean;
  CLAUS_CHECK_ARG(false, op, "mode must be 'mean_log' or 'log_mean', got '", mode, "'");
  return UncMode::kMeanLog;  // unreachable
}

inline UncMode check_frame_uncertainty(const char* op, const at::Tensor& logits,
                                       double fg_threshold, const std::string& mode,
                                       bool allow_half) {
  CLAUS_CHECK_ARG(logits.dim() == 5, op, "logits must be 5-D (R,N,T,H,W), got shape ",
                  shape_str(logits));
  CLAUS_CHECK_ARG(logits.size(0) > 0, op,
                  "logits must hold at least one MC-dropout pass (R > 0), got shape ",
                  shape_str(logits));
  auto dt = logits.scalar_type();
  bool ok = dt == at::kFloat || (allow_half && (dt == at::kHalf || dt == at::kBFloat16));
  CLAUS_CHECK_ARG(ok, op, "logits must be float32",
                  allow_half ? " (or float16/bfloat16)" : " (float16/bfloat16 only on CUDA)",
                  ", got ", dt);
  CLAUS_CHECK_ARG(fg_threshold > 0 && fg_threshold < 1, op,
                  "fg_threshold must lie in (0, 1), got ", fg_threshold);
  return parse_mode(op, mode);
}

inline void check_flags(const char* op, const at::Tensor& t, const char* name,
                        const at::Tensor& frame_unc) {
  CLAUS_CHECK_ARG(t.dim() == 2 && t.size(0) == frame_unc.size(0) &&
                      t.size(1) == frame_unc.size(1),
                  op, name, " must have shape (N,L) = ", shape_str(frame_unc),
                  " to match frame_unc, got ", shape_str(t));
  CLAUS_CHECK_ARG(t.scalar_type() == at::kBool || t.scalar_type() == at::kByte, op, name,
                  " must be bool, got ", t.scalar_type());
  check_device(op, frame_unc, "frame_unc", t, name);
}

// Checks everything but the values of k (which need a look at the data; see check_k_values).
inline void check_select_frames(const char* op, const at::Tensor& frame_unc,
                                const at::Tensor& candidates, const at::Tensor& annotated,
                                const at::Tensor& k, int64_t kmax, double sigma,
                                int64_t radius) {
  CLAUS_CHECK_ARG(frame_unc.dim() == 2, op, "frame_unc must be 2-D (N,L), got shape ",
                  shape_str(frame_unc));
  CLAUS_CHECK_ARG(frame_unc.scalar_type() == at::kFloat, op, "frame_unc must be float32, got ",
                  frame_unc.scalar_type());
  check_flags(op, candidates, "candidates", frame_unc);
  check_flags(op, annotated, "annotated", frame_unc);
  CLAUS_CHECK_ARG(k.dim() == 1 && k.size(0) == frame_unc.size(0), op,
                  "k must have shape (N,) = [", frame_unc.size(0), "], got ", shape_str(k));
  CLAUS_CHECK_ARG(k.scalar_type() == at::kLong, op, "k must be int64, got ", k.scalar_type());
  check_device(op, frame_unc, "frame_unc", k, "k");
  CLAUS_CHECK_ARG(kmax >= 0, op, "kmax must be >= 0, got ", kmax);
  CLAUS_CHECK_ARG(sigma > 0 && std::isfinite(sigma), op,
                  "sigma must be a finite number > 0, got ", sigma);
  CLAUS_CHECK_ARG(radius >= 0, op, "radius must be >= 0, got ", radius);
}

// k in [0, kmax]; one small reduction (a device sync on CUDA, once per selection).
inline void check_k_values(const char* op, const at::Tensor& k, int64_t kmax) {
  if (k.numel() == 0) return;
  auto mm = at::aminmax(k);
  const int64_t lo = std::get<0>(mm).item<int64_t>();
  const int64_t hi = std::get<1>(mm).item<int64_t>();
  CLAUS_CHECK_ARG(lo >= 0, op, "k must be >= 0 for every video, got a minimum of ", lo);
  CLAUS_CHECK_ARG(hi <= kmax, op, "k must be <= kmax = ", kmax, " for every video, got ", hi);
}

inline at::Tensor flags_for_kernel(const at::Tensor& t) {
  auto c = t.contiguous();
  return c.scalar_type() == at::kBool ? c.view(at::kByte) : c;
}

}  // namespace scoring
}  // namespace claus
