// Frame scoring arithmetic, shared by the CPU and CUDA kernels of frame_uncertainty and
// select_frames (see claus_ext/reference.py for the definitions in plain PyTorch).
//
// frame_uncertainty, per pixel over R MC-dropout logits z_r:
//   p̄ = mean_r sigmoid(z_r), q̄ = mean_r sigmoid(-z_r) (= 1 - p̄, computed without cancellation),
//   u = mean_r softplus(-z_r) (mode mean_log) or -log p̄ (mode log_mean),
//   h = -(p̄ log p̄ + q̄ log q̄) with 0 log 0 = 0; the pixel is foreground iff p̄ > fg_threshold.
// select_frames, per video of L frames:
//   s[f] = unc[f] - g(d_f), g(d) = exp(-d^2 / (2 sigma^2)), d_f = distance to the nearest
//   annotated frame (no penalty without one); greedy picks of the highest s (ties: lowest
//   index), each subtracting g(|j - pick|) from s[j] for |j - pick| <= radius.
//   Ineligible frames (not candidates, NaN scores, already picked) hold NaN in s, so
//   eligibility is simply "s is not NaN" and suppression of them is a no-op.
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/fastmath.h"
#include "../common/hd.h"

namespace claus {
namespace scoring {

// ---------------------------------------------------------------------------------------------
// frame_uncertainty

enum class UncMode : int { kMeanLog = 0, kLogMean = 1 };

// The per-logit exp, reciprocal and log. On the GPU, the hardware approximations (__expf,
// __fdividef, __logf; absolute errors below 1e-6 on these arguments, far below the fp32
// accumulation error of the sums) keep the op at memory bandwidth: the accurate library versions
// take about three times the instructions, more than a 16-byte load per 4 (fp32) or 8 (fp16)
// logits leaves room for on an H100. On the CPU, the vectorizable fastmath polynomials.
CLAUS_HD float pass_exp_nonpos(float x) {
#if defined(__CUDA_ARCH__)
  return __expf(x);
#else
  return fastmath::exp_nonpos(x);
#endif
}

// 1/u for u in [1, 2].
CLAUS_HD float pass_recip_1to2(float u) {
#if defined(__CUDA_ARCH__)
  return __fdividef(1.0f, u);
#else
  return 1.0f / u;
#endif
}

// log(u) for u in [1, 2].
CLAUS_HD float pass_log_1to2(float u) {
#if defined(__CUDA_ARCH__)
  return __logf(u);
#else
  return fastmath::log_1to2(u);
#endif
}

// One MC pass of one pixel, folded into its running sums: sp += sigmoid(z), sq += sigmoid(-z),
// and (mean_log only) ssp += softplus(-z) = -log sigmoid(z). One exp, one division and, for
// mean_log, one log:
// with e = exp(-|z|), sigmoid(|z|) = 1/(1+e), sigmoid(-|z|) = e/(1+e),
// softplus(-z) = max(-z, 0) + log1p(e). Stable for any z; z = ±inf give the limits; NaN flows
// through (the comparisons are false for NaN, so nothing clamps it away).
template <bool kMeanLog>
CLAUS_HD void accumulate_pass(float z, float& sp, float& sq, float& ssp) {
  const float az = z < 0.0f ? -z : z;
  const float e = pass_exp_nonpos(-az);
  const float u = 1.0f + e;
  const float inv = pass_recip_1to2(u);
  const float ei = e * inv;
  const bool pos = z >= 0.0f;
  sp += pos ? inv : ei;
  sq += pos ? ei : inv;
  if (kMeanLog) {
    // log1p(e) as fastmath::log1p_unit computes it, log(u) + (e - (u - 1)) / u (the second term
    // restores what rounding 1 + e lost), but multiplying by inv = 1/u, which is at hand: one
    // division per logit instead of two.
    ssp += (z < 0.0f ? -z : 0.0f) + pass_log_1to2(u) + (e - (u - 1.0f)) * inv;
  }
}

// x log x with 0 log 0 = 0, for x in [0, 1] or NaN (NaN propagates).
CLAUS_HD float xlogx(float x) { return x == 0.0f ? 0.0f : x * fastmath::log_pos(x); }

// A pixel's contributions to its frame's three sums, from its R-pass sums.
// fg: 1 if foreground else 0; u: its uncertainty if foreground else 0 (a select, not a
// product, so an infinite u of a background pixel cannot turn into NaN); h: its entropy.
template <bool kMeanLog>
CLAUS_HD void pixel_terms(float sp, float sq, float ssp, float R, float fg_threshold, float& fg,
                          float& u, float& h) {
  const float pbar = sp / R;
  const float qbar = sq / R;
  const bool is_fg = pbar > fg_threshold;
  const float uu = kMeanLog ? ssp / R : -fastmath::log_pos(pbar);
  fg = is_fg ? 1.0f : 0.0f;
  u = is_fg ? uu : 0.0f;
  h = -(xlogx(pbar) + xlogx(qbar));
}

// ---------------------------------------------------------------------------------------------
// select_frames

// g(d) = exp(-d^2 / (2 sigma^2)) evaluated in double and rounded once to float, so every
// implementation (CPU, CUDA, the PyTorch reference, the NumPy baseline) subtracts the very same
// float32 values in the same order and their greedy picks agree exactly.
CLAUS_HD float gauss(int64_t d, double sigma) {
  const double dd = static_cast<double>(d);
  return static_cast<float>(exp(-(dd * dd) / (2.0 * sigma * sigma)));
}

// Distance that stands for "no annotated frame in reach" (larger than any frame distance).
constexpr int64_t kFar = INT64_MAX / 4;

// Initial score of a frame whose annotation penalty is pen (g(d) for the distance d to the
// nearest annotated frame, 0 when the video has none): NaN (ineligible) unless a candidate with
// a non-NaN uncertainty.
CLAUS_HD float initial_score(float unc, bool candidate, float pen) {
  return candidate ? unc - pen : NAN;
}

// Suppression of frame j by a pick at distance |j - pick| <= radius: s - g(|j - pick|), in
// float32 (NaN stays NaN, so ineligible frames stay ineligible).
CLAUS_HD float suppress(float s, float g) { return s - g; }

// Whether (s, i) ranks before (best_s, best_i) in the greedy order: eligible (not NaN) first,
// then higher score, then lower index. best_i < 0 means "nothing yet". A total order on
// eligible frames, so any reduction tree over it finds the same pick.
CLAUS_HD bool ranks_before(float s, int64_t i, float best_s, int64_t best_i) {
  if (s != s) return false;
  if (best_i < 0) return true;
  return s > best_s || (s == best_s && i < best_i);
}

}  // namespace scoring
}  // namespace claus
