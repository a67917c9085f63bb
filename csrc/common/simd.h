// Portable float vectors for the CPU kernels (GCC/Clang vector extensions), of 8 or 16 lanes.
//
// Code written on these types compiles to whatever the calling function targets: 8 lanes to
// AVX2 in the `arch=x86-64-v3` clone of a CLAUS_MULTIVERSION function and to pairs of SSE2
// instructions in the baseline clone; 16 lanes to AVX-512 in a CLAUS_TARGET_AVX512 function.
// Accumulators stay in registers, which auto-vectorized loops over arrays do not manage. Every
// helper is always inlined, so it is compiled for its caller's instruction set. The
// transcendental functions mirror the scalar ones in fastmath.h (same reductions and
// polynomials).
#pragma once

#include <cstdint>
#include <cstring>

#include "cpu.h"

namespace claus {
namespace simd {

template <int N>
struct VecTypes {
  typedef float f32 __attribute__((vector_size(4 * N)));
};

// f32v<N>: N floats. Their lane masks (mask_of below) are int32 vectors of all-ones or zero.
template <int N>
using f32v = typename VecTypes<N>::f32;
using f32x8 = f32v<8>;
using f32x16 = f32v<16>;

// The widest vector any kernel uses; scratch rows are padded to a multiple of it.
constexpr int kMaxLanes = 16;

template <typename V>
constexpr int lanes() {
  return static_cast<int>(sizeof(V) / sizeof(float));
}
// The lane-mask type of a float vector (what its comparisons return).
template <typename V>
using mask_of = decltype(V{} < V{});

// Broadcast (vector + scalar), which compilers emit as one broadcast.
template <typename V>
CLAUS_ALWAYS_INLINE V splat(float v) {
  return V{} + v;
}
template <typename V>
CLAUS_ALWAYS_INLINE V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename V>
CLAUS_ALWAYS_INLINE void store(float* p, V v) {
  std::memcpy(p, &v, sizeof v);
}
template <typename V>
CLAUS_ALWAYS_INLINE mask_of<V> bits(V v) {
  mask_of<V> i;
  std::memcpy(&i, &v, sizeof i);
  return i;
}
template <typename V>
CLAUS_ALWAYS_INLINE V from_bits(mask_of<V> i) {
  V v;
  std::memcpy(&v, &i, sizeof v);
  return v;
}
template <typename V>
CLAUS_ALWAYS_INLINE V select(mask_of<V> mask, V a, V b) {
  return from_bits<V>((mask & bits(a)) | (~mask & bits(b)));
}
template <typename V>
CLAUS_ALWAYS_INLINE V abs(V v) {
  return from_bits<V>(bits(v) & 0x7fffffff);
}
// Lanes [0, count) true, the rest false.
template <typename V>
CLAUS_ALWAYS_INLINE mask_of<V> lanes_below(int64_t count) {
  mask_of<V> iota;
  for (int j = 0; j < lanes<V>(); ++j) iota[j] = j;
  return iota < static_cast<int32_t>(count);
}

// exp(x) for x <= 0; 0 below -87.3, NaN for NaN (see fastmath::exp_nonpos).
template <typename V>
CLAUS_ALWAYS_INLINE V exp_nonpos(V x) {
  const V lo = splat<V>(-87.3f);
  const mask_of<V> under = x < lo;
  const V xc = select(under, lo, x);
  const V shifter = splat<V>(12582912.0f);
  const V n = (xc * 1.44269504088896341f + shifter) - shifter;
  V r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  const V r2 = r * r;
  V p = splat<V>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  const mask_of<V> e = (__builtin_convertvector(n, mask_of<V>) + 127) << 23;
  return select(under, splat<V>(0.0f), p * from_bits<V>(e));
}

// For e in [0, 1]: log(1 + e), and 1/(1 + e) through `recip`, with a single division.
// log1p(e) = 2 atanh(s), s = e/(2+e) in [0, 1/3]; the series to s^13 is below 2^-24 relative
// for every e in range, tiny e included (s ~ e/2), unlike log(1+e) after rounding 1+e.
template <typename V>
CLAUS_ALWAYS_INLINE V log1p_recip(V e, V& recip) {
  const V u = 1.0f + e;
  const V v = 2.0f + e;
  const V d = 1.0f / (u * v);
  recip = v * d;
  const V s = e * u * d;
  const V s2 = s * s;
  V q = splat<V>(1.0f / 13);
  q = q * s2 + 1.0f / 11;
  q = q * s2 + 1.0f / 9;
  q = q * s2 + 1.0f / 7;
  q = q * s2 + 1.0f / 5;
  q = q * s2 + 1.0f / 3;
  return 2.0f * (s + s * s2 * q);
}

}  // namespace simd
}  // namespace claus
