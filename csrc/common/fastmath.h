// Branch-free float32 exp / log / log1p for the CPU kernels.
//
// glibc's expf/logf are scalar calls, so a loop that uses them never vectorizes. These versions
// are plain arithmetic on floats and their bit patterns (range reduction + Cephes minimax
// polynomials), so GCC/Clang vectorize loops that call them. Accuracy is about 1-2 ulp over the
// ranges the kernels use, far below the fp32 accumulation error of the sums they feed.
// Under nvcc they map to the CUDA math library instead.
#pragma once

#include <cstdint>
#include <cstring>
#include <cmath>

#include "hd.h"

namespace claus {
namespace fastmath {

CLAUS_HD float bits_to_float(int32_t i) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(i);
#else
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
#endif
}

CLAUS_HD int32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(f);
#else
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
#endif
}

// exp(x) for x <= 0 (what the kernels need: exp(-|z|)); returns 0 below -87.3 and NaN for NaN.
CLAUS_HD float exp_nonpos(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  // x = n*ln2 + r, |r| <= ln2/2, exp(x) = 2^n * exp(r).
  const float lo = -87.3f;
  float xc = x < lo ? lo : x;  // NaN stays NaN: the comparison is false.
  // Round to nearest with the 1.5*2^23 trick: plain arithmetic, so SSE2 vectorizes it too.
  const float shifter = 12582912.0f;
  float n = (xc * 1.44269504088896341f + shifter) - shifter;
  // Cody-Waite split of ln2 keeps r exact to ~1 ulp.
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  int32_t e = (static_cast<int32_t>(n) + 127) << 23;
  float res = p * bits_to_float(e);
  return x < lo ? 0.0f : res;
#endif
}

// log(m * 2^k) from f = m - 1, m in [sqrt(1/2), sqrt(2)): the Cephes minimax polynomial and the
// split-ln2 reconstruction shared by log_1to2 and log_pos.
CLAUS_HD float log_reduced(float f, float k) {
  float f2 = f * f;
  float p = 7.0376836292e-2f;
  p = p * f + -1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f + -1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f + -1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f + -2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float y = f * f2 * p;
  y += -2.12194440e-4f * k;
  y += -0.5f * f2;
  return f + y + 0.693359375f * k;
}

// log(x) for x in [1, 2] up to rounding (the kernels call it on 1 + e, e in [0, 1]).
CLAUS_HD float log_1to2(float x) {
#if defined(__CUDA_ARCH__)
  return logf(x);
#else
  // Write x = m * 2^k with m in [sqrt(1/2), sqrt(2)): for x in [1,2], k is 0 or 1.
  bool big = x > 1.41421356237f;
  float m = big ? x * 0.5f : x;
  float k = big ? 1.0f : 0.0f;
  float f = m - 1.0f;
  return log_reduced(f, k);
#endif
}

// log(1 + e) for e in [0, 1], accurate also when 1 + e rounds: the classic correction
// log1p(e) = log(u) + (e - (u - 1)) / u with u = 1 + e.
CLAUS_HD float log1p_unit(float e) {
#if defined(__CUDA_ARCH__)
  return log1pf(e);
#else
  float u = 1.0f + e;
  return log_1to2(u) + (e - (u - 1.0f)) / u;
#endif
}

// log(x) over the whole non-negative float range, subnormals included: -inf for 0, NaN for
// NaN, +inf for +inf. The exponent is read from the bits and the mantissa reduced to
// [sqrt(1/2), sqrt(2)), then the same Cephes polynomial as log_1to2. Branch-free (selects only),
// so loops over it vectorize; the scoring kernels take logs of probabilities that may be tiny.
CLAUS_HD float log_pos(float x) {
#if defined(__CUDA_ARCH__)
  return logf(x);
#else
  // Subnormals carry no implicit leading bit: scale them by 2^23 into the normal range first.
  const bool sub = x < 1.17549435e-38f;
  const float xs = sub ? x * 8388608.0f : x;
  const int32_t bits = float_to_bits(xs);
  float k = static_cast<float>(((bits >> 23) & 0xff) - 127) - (sub ? 23.0f : 0.0f);
  float m = bits_to_float((bits & 0x007fffff) | 0x3f800000);  // in [1, 2)
  const bool big = m > 1.41421356237f;
  m = big ? m * 0.5f : m;
  k = big ? k + 1.0f : k;
  const float f = m - 1.0f;
  float r = log_reduced(f, k);
  const float inf = bits_to_float(0x7f800000);
  r = x == 0.0f ? -inf : r;
  r = x == inf ? inf : r;
  r = x != x ? x : r;  // NaN in, NaN out
  return r;
#endif
}

// Double precision: exactness matters more than speed (fp64 is for checks), use libm.
CLAUS_HD double exp_nonpos(double x) { return exp(x); }
CLAUS_HD double log1p_unit(double e) { return log1p(e); }
CLAUS_HD double log_pos(double x) { return log(x); }

}  // namespace fastmath
}  // namespace claus
