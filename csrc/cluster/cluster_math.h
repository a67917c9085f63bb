// Per-row arithmetic of the clustering ops, shared by the CPU and CUDA kernels.
//
// Assignment is done in two steps, on both devices:
//   1. approximate scores s_k = ||c_k||^2 - 2 x.c_k from a blocked GEMM (fp32 accumulation for
//      fp32/fp16/bf16, fp64 for fp64); the true squared distance is ||x||^2 + s_k. The expansion
//      cancels when ||x - c_k||^2 << ||x||^2 + ||c_k||^2, so s_k alone can pick the wrong centre
//      and never gives an accurate distance;
//   2. every centre whose score is within the rounding-error bound of the best one is re-checked
//      with the exact formula sum_d (x_d - c_kd)^2 accumulated in fp64; the winner's distance is
//      always taken from that exact formula. dist2 is therefore >= 0 and accurate to fp64
//      rounding of fp32 data, and the argmin equals the fp64 reference's except for exact ties
//      of the fp64 sums, which both break towards the lowest index.
//
// NaN: a NaN distance never wins; a row with no non-NaN distance (NaN in x, or NaN in every
// centre) gets assign -1 and dist2 NaN.
#pragma once

#include <cstdint>

#include "../common/hd.h"

namespace claus {
namespace cluster {

// Unit roundoff of the accumulation type.
template <typename acc_t>
CLAUS_HD double unit_roundoff();
template <>
CLAUS_HD double unit_roundoff<float>() { return 5.9604644775390625e-8; }   // 2^-24
template <>
CLAUS_HD double unit_roundoff<double>() { return 1.1102230246251565e-16; }  // 2^-53

// Bound on |s~_k - s_k| for a score computed with `D`-term sequential (or FMA) accumulation in a
// type of unit roundoff u: the dot product errs by at most gamma_D ||x|| ||c_k|| <=
// gamma_D (||x||^2 + ||c_k||^2) / 2, the norm ||c_k||^2 by gamma_D ||c_k||^2, the final
// subtraction by u |s_k|; gamma_D = D u / (1 - D u) < 2 D u for any D the kernels see. The
// factor 2 on top absorbs the rounding of ||x||^2 and ||c_k||^2 themselves, which are only used
// here. `xnorm2` and `cnorm2` are squared norms.
CLAUS_HD double score_bound_coeff(double u, int64_t D) {
  return 4.0 * static_cast<double>(D + 2) * u;
}
CLAUS_HD double score_error_bound(double u, int64_t D, double xnorm2, double cnorm2) {
  return score_bound_coeff(u, D) * (xnorm2 + 2.0 * cnorm2);
}

// Absolute error that subnormal intermediates can add to a D-term score on top of the relative
// bound above: half a subnormal step (2^-150 in fp32, 2^-1075 in fp64) per product and per
// addition of the dot product, the norm and the final subtraction, doubled for margin. It
// matters only for bounds built from small norms (the CPU's per-centre bounds, which add it to
// their centre part), where the relative part can fall below it.
template <typename acc_t>
CLAUS_HD double subnormal_error(int64_t D);
template <>
CLAUS_HD double subnormal_error<float>(int64_t D) {
  return (2.0 * static_cast<double>(D) + 4.0) * 0x1p-149;
}
template <>
CLAUS_HD double subnormal_error<double>(int64_t D) {
  return (2.0 * static_cast<double>(D) + 4.0) * 0x1p-1074;
}

// Whether the scores of a row obey score_error_bound: `scale` = ||x||^2 + 2 max_k ||c_k||^2 (in
// fp64) lies where no product or partial sum of the score computation in acc_t can overflow
// (every one is below scale) and where the absolute rounding error of subnormal intermediates
// (subnormal_error) is negligible against a bound built from max_k ||c_k||^2 (the CUDA
// kernel's; at least 2^-100 * 4 (D+2) u in fp32). Outside, the scores can pick a wrong centre
// (measured: inputs scaled by 1e-21 or 3e18), so such rows take the exact path.
template <typename acc_t>
CLAUS_HD bool scores_in_range(double scale);
template <>
CLAUS_HD bool scores_in_range<float>(double scale) {
  return scale >= 0x1p-100 && scale < 0x1p125;
}
template <>
CLAUS_HD bool scores_in_range<double>(double scale) {
  return scale >= 0x1p-900 && scale < 0x1p1000;
}

// Whether (d, k) beats the current best (best_d, best_k): smaller distance, ties to the lower
// index. Written so that a NaN distance never wins (every comparison with NaN is false), and an
// empty best (best_k < 0) is beaten by any non-NaN distance.
template <typename T>
CLAUS_HD bool better(T d, int64_t k, T best_d, int64_t best_k) {
  if (!(d == d)) return false;
  if (best_k < 0) return true;
  return d < best_d || (d == best_d && k < best_k);
}

// Running top-2 of approximate scores (the CUDA kernel keeps the two smallest scores of a row;
// a row whose gap is within twice the error bound is re-checked in full). Start from
// s1 = s2 = +inf, k1 = -1. NaN scores are skipped; equal scores keep the lower index as best
// and make s2 == s1, which marks the row for the full check.
template <typename T>
CLAUS_HD void top2_push(T s, int32_t k, T& s1, int32_t& k1, T& s2) {
  if (!(s == s)) return;
  if (k1 < 0 || s < s1 || (s == s1 && k < k1)) {
    s2 = s1;
    s1 = s;
    k1 = k;
  } else if (s < s2) {
    s2 = s;
  }
}

// Merges another top-2 (o1, ok1, o2) into (s1, k1, s2).
template <typename T>
CLAUS_HD void top2_merge(T o1, int32_t ok1, T o2, T& s1, int32_t& k1, T& s2) {
  if (ok1 < 0) return;
  if (k1 < 0 || o1 < s1 || (o1 == s1 && ok1 < k1)) {
    T second = s1 < o2 ? s1 : o2;
    s1 = o1;
    k1 = ok1;
    s2 = second;
  } else if (o1 < s2) {
    s2 = o1;
  }
}

// Whether a row's top-2 leaves the winner in doubt: the gap between the two smallest scores is
// not larger than the sum of their error bounds (`bound` is one score's bound). NaN or inf
// arithmetic (no score, overflow) also answers yes, so such rows take the exact path.
template <typename T>
CLAUS_HD bool needs_full_check(T s1, T s2, double bound) {
  return !(static_cast<double>(s2) - static_cast<double>(s1) > 2.0 * bound);
}

// The closed form of the per-sample centre update. With n samples already absorbed and the
// per-sample rule c <- (1 - 1/n') c + (1/n') x, n' = n + 1, applied to m new samples of sum s,
// the result is (n c + s) / (n + m) exactly; n + m = 0 leaves c unchanged.
CLAUS_HD double updated_center(double c, double n, double s, double m) {
  double total = n + m;
  return total > 0.0 ? (n * c + s) / total : c;
}

// Gradient of beta/2 * mean_i ||x_i - c_a(i)||^2 for one element, scaled by the upstream
// gradient g: g * beta * (x - c) / N.
template <typename acc_t>
CLAUS_HD acc_t loss_grad(acc_t g_beta_over_n, acc_t x, acc_t c) {
  return g_beta_over_n * (x - c);
}

}  // namespace cluster
}  // namespace claus
