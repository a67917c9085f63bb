// STeW per-frame and per-pixel arithmetic, shared by the CPU and CUDA kernels.
//
// Definitions (frames are clip frames, t in [0, T)):
//   temporal weight w[t] = 1 if frame t is annotated, else exp(-d^2 / (2 sigma^2)) where d is the
//     distance to the nearest annotated frame if d <= radius, else 0;
//   consistency c[t,p] = 1 if t is annotated, else 1 - mean_{t' in [t-window, t+window] ∩ [0,T)}
//     |y[t',p] - y[t,p]|;
//   omega = w * c; l = BCE-with-logits(z, y); p = sigmoid(z).
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/fastmath.h"
#include "../common/hd.h"

namespace claus {
namespace stew {

// Number of statistics per clip: S0 = sum w*l, S1 = sum w, S2 = sum w*p*y, S3 = sum w*p,
// S4 = sum w*y.
constexpr int kNumStats = 5;

// A label as a number: uint8/bool masks count any nonzero byte as foreground; soft labels are
// used as they are.
template <typename acc_t>
CLAUS_HD acc_t label_value(uint8_t v) {
  return v != 0 ? acc_t(1) : acc_t(0);
}
template <typename acc_t, typename label_t>
CLAUS_HD acc_t label_value(label_t v) {
  return static_cast<acc_t>(v);
}

// Temporal weight of frame t of one clip. `annotated` points at the clip's T flags.
// Computed in double: it is evaluated B*T times, never per pixel.
CLAUS_HD double temporal_weight(const uint8_t* annotated, int64_t T, int64_t t, double sigma,
                                int64_t radius) {
  if (annotated[t]) return 1.0;
  // The Gaussian falls with distance, so the maximum over annotated frames within the radius
  // is reached at the nearest one.
  for (int64_t k = 1; k <= radius && (t - k >= 0 || t + k < T); ++k) {
    if ((t - k >= 0 && annotated[t - k]) || (t + k < T && annotated[t + k])) {
      double d = static_cast<double>(k);
      return exp(-d * d / (2.0 * sigma * sigma));
    }
  }
  return 0.0;
}

// Inclusive frame range [lo, hi] of the consistency window around t.
CLAUS_HD void window_bounds(int64_t T, int64_t t, int64_t window, int64_t& lo, int64_t& hi) {
  lo = t - window < 0 ? 0 : t - window;
  hi = t + window > T - 1 ? T - 1 : t + window;
}

// Binary cross-entropy with logits and the sigmoid, from one exp and one log1p:
//   l = max(z, 0) - z*y + log(1 + exp(-|z|)),  p = 1/(1+e) if z >= 0 else e/(1+e), e = exp(-|z|).
// Stable for any |z|; NaN in z gives NaN in both (written with comparisons that are false for
// NaN, so the NaN flows through the arithmetic instead of being clamped away).
template <typename acc_t>
CLAUS_HD void bce_sigmoid(acc_t z, acc_t y, acc_t& loss, acc_t& p) {
  acc_t az = z < acc_t(0) ? -z : z;
  acc_t e = fastmath::exp_nonpos(-az);
  acc_t inv = acc_t(1) / (acc_t(1) + e);
  p = z >= acc_t(0) ? inv : e * inv;
  acc_t relu = z > acc_t(0) ? z : acc_t(0);
  loss = relu - z * y + fastmath::log1p_unit(e);
}

// Sigmoid alone (backward pass).
template <typename acc_t>
CLAUS_HD acc_t sigmoid(acc_t z) {
  acc_t az = z < acc_t(0) ? -z : z;
  acc_t e = fastmath::exp_nonpos(-az);
  acc_t inv = acc_t(1) / (acc_t(1) + e);
  return z >= acc_t(0) ? inv : e * inv;
}

// d(sum_k g_k S_k)/dz for one pixel: omega * (g0 (p - y) + (g2 y + g3) p (1 - p)).
// S1 and S4 do not depend on z.
template <typename acc_t>
CLAUS_HD acc_t grad_z(acc_t omega, acc_t p, acc_t y, acc_t g0, acc_t g2, acc_t g3) {
  return omega * (g0 * (p - y) + (g2 * y + g3) * p * (acc_t(1) - p));
}

}  // namespace stew
}  // namespace claus
