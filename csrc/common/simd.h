// Portable 8-lane float vectors for the CPU kernels (GCC/Clang vector extensions).
//
// Code written on f32x8 compiles to AVX2 in the `arch=x86-64-v3` clone of a CLAUS_MULTIVERSION
// function and to pairs of SSE2 instructions in the baseline clone, with accumulators kept in
// registers, which auto-vectorized loops over arrays do not manage. The transcendental
// functions mirror the scalar ones in fastmath.h (same reductions and polynomials).
#pragma once

#include <cstdint>
#include <cstring>

namespace claus {
namespace simd {

typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));

constexpr int kLanes = 8;

// Broadcast (vector + scalar), which compilers emit as one vbroadcastss.
inline f32x8 splat(float v) { return f32x8{} + v; }
inline f32x8 load(const float* p) {
  f32x8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, f32x8 v) { std::memcpy(p, &v, sizeof v); }
inline i32x8 bits(f32x8 v) {
  i32x8 i;
  std::memcpy(&i, &v, sizeof i);
  return i;
}
inline f32x8 from_bits(i32x8 i) {
  f32x8 v;
  std::memcpy(&v, &i, sizeof v);
  return v;
}
// mask lanes are all-ones (true) or zero, as produced by vector comparisons.
inline f32x8 select(i32x8 mask, f32x8 a, f32x8 b) {
  return from_bits((mask & bits(a)) | (~mask & bits(b)));
}
inline f32x8 abs(f32x8 v) { return from_bits(bits(v) & 0x7fffffff); }

// exp(x) for x <= 0; 0 below -87.3, NaN for NaN (see fastmath::exp_nonpos).
inline f32x8 exp_nonpos(f32x8 x) {
  const f32x8 lo = splat(-87.3f);
  const i32x8 under = x < lo;
  const f32x8 xc = select(under, lo, x);
  const f32x8 shifter = splat(12582912.0f);
  const f32x8 n = (xc * 1.44269504088896341f + shifter) - shifter;
  f32x8 r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  const f32x8 r2 = r * r;
  f32x8 p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  const i32x8 e = (__builtin_convertvector(n, i32x8) + 127) << 23;
  return select(under, splat(0.0f), p * from_bits(e));
}

// For e in [0, 1]: log(1 + e), and 1/(1 + e) through `recip`, with a single division.
// log1p(e) = 2 atanh(s), s = e/(2+e) in [0, 1/3]; the series to s^13 is below 2^-24 relative
// for every e in range, tiny e included (s ~ e/2), unlike log(1+e) after rounding 1+e.
inline f32x8 log1p_recip(f32x8 e, f32x8& recip) {
  const f32x8 u = 1.0f + e;
  const f32x8 v = 2.0f + e;
  const f32x8 d = 1.0f / (u * v);
  recip = v * d;
  const f32x8 s = e * u * d;
  const f32x8 s2 = s * s;
  f32x8 q = splat(1.0f / 13);
  q = q * s2 + 1.0f / 11;
  q = q * s2 + 1.0f / 9;
  q = q * s2 + 1.0f / 7;
  q = q * s2 + 1.0f / 5;
  q = q * s2 + 1.0f / 3;
  return 2.0f * (s + s * s2 * q);
}

}  // namespace simd
}  // namespace claus
