// STeW statistics on the CPU: forward (per-clip sums) and backward (dL/dz), one pass each.
//
// Work is split into fixed tiles of kTile pixels of one clip, processed over all T frames.
// A tile's labels are read once into a small scratch (T x kTile), from which the temporal
// consistency window is evaluated, so every pseudo-label value is loaded from memory once per
// pass and no weight tensor is ever materialized. Each tile reduces its lanes into one fp64
// partial; partials are summed per clip in tile order. The tiling does not depend on the
// thread count, so the sums are bit-identical for any number of threads.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../common/cpu.h"
#include "../common/simd.h"
#include "stew_checks.h"
#include "stew_math.h"

namespace claus {
namespace stew {
namespace {

// 128 pixels x T frames of labels and their running sums stay in L1 for clips up to T = 16.
constexpr int64_t kTile = 128;


// Loads labels y[b, :, p0:p0+n] into ybuf (T x kTile, acc_t).
template <typename acc_t, typename label_t>
CLAUS_ALWAYS_INLINE void load_labels(const label_t* y, int64_t T, int64_t HW, int64_t n,
                                     acc_t* ybuf) {
  for (int64_t t = 0; t < T; ++t) {
    const label_t* src = y + t * HW;
    acc_t* dst = ybuf + t * kTile;
    for (int64_t i = 0; i < n; ++i) dst[i] = label_value<acc_t>(src[i]);
  }
}

// Consistency c[i] of frame t for the tile's n pixels (caller handles annotated frames).
template <typename acc_t>
CLAUS_ALWAYS_INLINE void consistency(const acc_t* ybuf, int64_t T, int64_t t, int64_t window,
                                     int64_t n, acc_t* c) {
  int64_t lo, hi;
  window_bounds(T, t, window, lo, hi);
  const acc_t* yt = ybuf + t * kTile;
  for (int64_t i = 0; i < n; ++i) c[i] = acc_t(0);
  for (int64_t u = lo; u <= hi; ++u) {
    if (u == t) continue;
    const acc_t* yu = ybuf + u * kTile;
    for (int64_t i = 0; i < n; ++i) {
      acc_t d = yu[i] - yt[i];
      c[i] += d < acc_t(0) ? -d : d;
    }
  }
  const acc_t inv = acc_t(1) / static_cast<acc_t>(hi - lo + 1);
  for (int64_t i = 0; i < n; ++i) c[i] = acc_t(1) - c[i] * inv;
}

// Forward over one tile: writes the tile's 5 sums (fp64) to out.
template <typename scalar_t, typename label_t>
CLAUS_ALWAYS_INLINE void forward_tile_impl(const scalar_t* z, const label_t* y,
                                           const uint8_t* ann, const double* w, int64_t T,
                                           int64_t HW, int64_t n, int64_t window,
                                           scalar_t* scratch, double* out) {
  using acc_t = scalar_t;  // float or double on the CPU.
  acc_t* ybuf = scratch;                // T * kTile
  acc_t* c = ybuf + T * kTile;          // kTile
  acc_t* acc = c + kTile;               // 5 * kTile lane accumulators
  load_labels(y, T, HW, n, ybuf);
  for (int64_t i = 0; i < kNumStats * kTile; ++i) acc[i] = acc_t(0);
  acc_t* a0 = acc;
  acc_t* a1 = acc + kTile;
  acc_t* a2 = acc + 2 * kTile;
  acc_t* a3 = acc + 3 * kTile;
  acc_t* a4 = acc + 4 * kTile;
  for (int64_t t = 0; t < T; ++t) {
    const acc_t wt = static_cast<acc_t>(w[t]);
    if (ann[t]) {
      for (int64_t i = 0; i < n; ++i) c[i] = acc_t(1);
    } else {
      consistency(ybuf, T, t, window, n, c);
    }
    const scalar_t* zt = z + t * HW;
    const acc_t* yt = ybuf + t * kTile;
    for (int64_t i = 0; i < n; ++i) {
      acc_t loss, p;
      acc_t yi = yt[i];
      bce_sigmoid<acc_t>(zt[i], yi, loss, p);
      acc_t om = wt * c[i];
      a0[i] += om * loss;
      a1[i] += om;
      a2[i] += om * p * yi;
      a3[i] += om * p;
      a4[i] += om * yi;
    }
  }
  for (int k = 0; k < kNumStats; ++k) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(acc[k * kTile + i]);
    out[k] = s;
  }
}

// Backward over one tile: writes dL/dz for the tile's pixels of every frame.
template <typename scalar_t, typename label_t>
CLAUS_ALWAYS_INLINE void backward_tile_impl(const scalar_t* z, const label_t* y,
                                            const uint8_t* ann, const double* w,
                                            const scalar_t* g, int64_t T, int64_t HW, int64_t n,
                                            int64_t window, scalar_t* scratch, scalar_t* gz) {
  using acc_t = scalar_t;
  acc_t* ybuf = scratch;
  acc_t* c = ybuf + T * kTile;
  load_labels(y, T, HW, n, ybuf);
  const acc_t g0 = g[0], g2 = g[2], g3 = g[3];
  for (int64_t t = 0; t < T; ++t) {
    const acc_t wt = static_cast<acc_t>(w[t]);
    if (ann[t]) {
      for (int64_t i = 0; i < n; ++i) c[i] = acc_t(1);
    } else {
      consistency(ybuf, T, t, window, n, c);
    }
    const scalar_t* zt = z + t * HW;
    const acc_t* yt = ybuf + t * kTile;
    scalar_t* gt = gz + t * HW;
    for (int64_t i = 0; i < n; ++i) {
      acc_t p = sigmoid<acc_t>(zt[i]);
      gt[i] = grad_z<acc_t>(wt * c[i], p, yt[i], g0, g2, g3);
    }
  }
}

// ---- float32: explicit vectors (8 lanes for AVX2, 16 for AVX-512), accumulators in
// registers ----

using simd::kMaxLanes;

// Per-frame constants of a clip: consistency window, its size, annotation, temporal weight.
struct FrameInfo {
  int64_t lo, hi;
  float count, inv_count, weight;
  bool annotated;
};

CLAUS_ALWAYS_INLINE void frame_info(const uint8_t* ann, const double* w, int64_t T,
                                    int64_t window, FrameInfo* info) {
  for (int64_t t = 0; t < T; ++t) {
    FrameInfo& f = info[t];
    window_bounds(T, t, window, f.lo, f.hi);
    f.count = static_cast<float>(f.hi - f.lo + 1);
    f.inv_count = 1.0f / f.count;
    f.weight = static_cast<float>(w[t]);
    f.annotated = ann[t] != 0;
  }
}

// Labels of a tile as 0/1 or soft floats, zero-padded to whole vectors of the widest kind. For
// 0/1 labels also the running sums along t, prefix[t] = sum_{u<t} y[u], so that a window's
// disagreement is O(1): sum_u |y_u - y_t| = ones if y_t = 0, else count - ones.
template <typename label_t>
CLAUS_ALWAYS_INLINE void load_tile_labels(const label_t* y, int64_t T, int64_t HW, int64_t n,
                                          float* ybuf, float* prefix) {
  load_labels(y, T, HW, n, ybuf);
  const int64_t padded = (n + kMaxLanes - 1) / kMaxLanes * kMaxLanes;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = n; i < padded; ++i) ybuf[t * kTile + i] = 0.0f;
  if (prefix == nullptr) return;
  for (int64_t i = 0; i < padded; ++i) prefix[i] = 0.0f;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < padded; ++i)
      prefix[(t + 1) * kTile + i] = prefix[t * kTile + i] + ybuf[t * kTile + i];
}

// Hints the next tile's logits and labels (the kTile pixels after this tile's, in every frame)
// into the cache while this one computes: a tile reads 2T short rows, too many streams for the
// hardware prefetchers to pick up before the tile is done.
template <typename label_t>
CLAUS_ALWAYS_INLINE void prefetch_next_tile(const float* z, const label_t* y, int64_t T,
                                            int64_t HW, int64_t n) {
  if (n < kTile) return;  // the clip's last tile
  constexpr int64_t kLine = 64;
  for (int64_t t = 0; t < T; ++t) {
    const char* zn = reinterpret_cast<const char*>(z + t * HW + kTile);
    for (int64_t o = 0; o < kTile * int64_t(sizeof(float)); o += kLine)
      __builtin_prefetch(zn + o, 0, 3);
    const char* yn = reinterpret_cast<const char*>(y + t * HW + kTile);
    for (int64_t o = 0; o < kTile * int64_t(sizeof(label_t)); o += kLine)
      __builtin_prefetch(yn + o, 0, 3);
  }
}

// Consistency of frame t for lanes [i, i + lanes).
template <typename V, bool kBinary>
CLAUS_ALWAYS_INLINE V consistency_v(const float* ybuf, const float* prefix, const FrameInfo& f,
                                    int64_t t, int64_t i, V yt) {
  if (f.annotated) return simd::splat<V>(1.0f);
  if constexpr (kBinary) {
    const V ones = simd::load<V>(prefix + (f.hi + 1) * kTile + i) -
                   simd::load<V>(prefix + f.lo * kTile + i);
    const V differ = ones + yt * (f.count - 2.0f * ones);
    return 1.0f - differ * f.inv_count;
  } else {
    V s = simd::splat<V>(0.0f);
    for (int64_t u = f.lo; u <= f.hi; ++u) {
      if (u == t) continue;
      s += simd::abs(simd::load<V>(ybuf + u * kTile + i) - yt);
    }
    return 1.0f - s * f.inv_count;
  }
}

// z[i .. i + lanes) of one frame; lanes past the tile's n pixels read as 0 (their weight is 0
// too).
template <typename V>
CLAUS_ALWAYS_INLINE V load_z(const float* z, int64_t i, int64_t n) {
  if (i + simd::lanes<V>() <= n) return simd::load<V>(z + i);
  float tmp[simd::lanes<V>()] = {};
  std::memcpy(tmp, z + i, static_cast<size_t>(n - i) * sizeof(float));
  return simd::load<V>(tmp);
}

// Scratch floats a float tile needs: labels, prefix sums and the frame table.
inline int64_t f32_scratch_floats(int64_t T) {
  return (2 * T + 1) * kTile + T * static_cast<int64_t>(sizeof(FrameInfo) / sizeof(float) + 1);
}

// A float tile's scratch, laid out by f32_scratch_floats: labels, their running sums along t
// (0/1 labels only) and the frame table, filled for the tile's n pixels.
struct F32Tile {
  float* ybuf;
  float* prefix;
  FrameInfo* info;
};

template <typename label_t>
CLAUS_ALWAYS_INLINE F32Tile prepare_f32_tile(const label_t* y, const uint8_t* ann,
                                             const double* w, int64_t T, int64_t HW, int64_t n,
                                             int64_t window, float* scratch) {
  constexpr bool kBinary = std::is_same<label_t, uint8_t>::value;
  F32Tile tile{scratch, kBinary ? scratch + T * kTile : nullptr,
               reinterpret_cast<FrameInfo*>(scratch + (2 * T + 1) * kTile)};
  load_tile_labels(y, T, HW, n, tile.ybuf, tile.prefix);
  frame_info(ann, w, T, window, tile.info);
  return tile;
}

template <typename V, typename label_t>
CLAUS_ALWAYS_INLINE void forward_tile_f32_impl(const float* z, const label_t* y,
                                               const uint8_t* ann, const double* w, int64_t T,
                                               int64_t HW, int64_t n, int64_t window,
                                               float* scratch, double* out) {
  constexpr bool kBinary = std::is_same<label_t, uint8_t>::value;
  constexpr int kLanes = simd::lanes<V>();
  const F32Tile tile = prepare_f32_tile(y, ann, w, T, HW, n, window, scratch);
  prefetch_next_tile(z, y, T, HW, n);
  const float* ybuf = tile.ybuf;
  const float* prefix = tile.prefix;
  const FrameInfo* info = tile.info;
  const V zero = simd::splat<V>(0.0f);
  V s0 = zero, s1 = zero, s2 = zero, s3 = zero, s4 = zero;
  for (int64_t i = 0; i < n; i += kLanes) {
    const auto valid = simd::lanes_below<V>(n - i);
    for (int64_t t = 0; t < T; ++t) {
      const FrameInfo& f = info[t];
      const V yt = simd::load<V>(ybuf + t * kTile + i);
      const V c = consistency_v<V, kBinary>(ybuf, prefix, f, t, i, yt);
      const V zt = load_z<V>(z + t * HW, i, n);
      // BCE with logits and sigmoid from one exp and one division (see stew_math.h).
      const V e = simd::exp_nonpos(-simd::abs(zt));
      V inv;
      const V l1p = simd::log1p_recip(e, inv);
      const V p = simd::select(zt >= 0.0f, inv, e * inv);
      const V relu = simd::select(zt > 0.0f, zt, zero);
      const V loss = relu - zt * yt + l1p;
      const V om = simd::select(valid, f.weight * c, zero);
      s0 += om * loss;
      s1 += om;
      const V omp = om * p;
      s2 += omp * yt;
      s3 += omp;
      s4 += om * yt;
    }
  }
  const V acc[kNumStats] = {s0, s1, s2, s3, s4};
  for (int k = 0; k < kNumStats; ++k) {
    double sum = 0.0;
    for (int j = 0; j < kLanes; ++j) sum += static_cast<double>(acc[k][j]);
    out[k] = sum;
  }
}

template <typename V, typename label_t>
CLAUS_ALWAYS_INLINE void backward_tile_f32_impl(const float* z, const label_t* y,
                                                const uint8_t* ann, const double* w,
                                                const float* g, int64_t T, int64_t HW,
                                                int64_t n, int64_t window, float* scratch,
                                                float* gz) {
  constexpr bool kBinary = std::is_same<label_t, uint8_t>::value;
  constexpr int kLanes = simd::lanes<V>();
  const F32Tile tile = prepare_f32_tile(y, ann, w, T, HW, n, window, scratch);
  prefetch_next_tile(z, y, T, HW, n);
  const float* ybuf = tile.ybuf;
  const float* prefix = tile.prefix;
  const FrameInfo* info = tile.info;
  const float g0 = g[0], g2 = g[2], g3 = g[3];
  for (int64_t i = 0; i < n; i += kLanes) {
    for (int64_t t = 0; t < T; ++t) {
      const FrameInfo& f = info[t];
      const V yt = simd::load<V>(ybuf + t * kTile + i);
      const V c = consistency_v<V, kBinary>(ybuf, prefix, f, t, i, yt);
      const V zt = load_z<V>(z + t * HW, i, n);
      const V e = simd::exp_nonpos(-simd::abs(zt));
      const V inv = 1.0f / (1.0f + e);
      const V p = simd::select(zt >= 0.0f, inv, e * inv);
      const V om = f.weight * c;
      const V gv = om * (g0 * (p - yt) + (g2 * yt + g3) * p * (1.0f - p));
      float* dst = gz + t * HW + i;
      if (i + kLanes <= n) {
        simd::store(dst, gv);
      } else {
        float tmp[kLanes];
        simd::store(tmp, gv);
        std::memcpy(dst, tmp, static_cast<size_t>(n - i) * sizeof(float));
      }
    }
  }
}

// Non-template entry points, so that each can be multiversioned. fp64 is for checks and uses
// the scalar body with libm; fp32 the vector body.
#define CLAUS_STEW_TILE_FNS(scalar_t, label_t, suffix)                                         \
  CLAUS_MULTIVERSION void forward_tile_##suffix(                                               \
      const scalar_t* z, const label_t* y, const uint8_t* ann, const double* w, int64_t T,     \
      int64_t HW, int64_t n, int64_t window, scalar_t* scratch, double* out) {                 \
    forward_tile_impl<scalar_t, label_t>(z, y, ann, w, T, HW, n, window, scratch, out);        \
  }                                                                                            \
  CLAUS_MULTIVERSION void backward_tile_##suffix(                                              \
      const scalar_t* z, const label_t* y, const uint8_t* ann, const double* w,                \
      const scalar_t* g, int64_t T, int64_t HW, int64_t n, int64_t window, scalar_t* scratch,  \
      scalar_t* gz) {                                                                          \
    backward_tile_impl<scalar_t, label_t>(z, y, ann, w, g, T, HW, n, window, scratch, gz);     \
  }

#define CLAUS_STEW_TILE_FNS_F32_AS(attr, V, label_t, suffix)                                   \
  attr void forward_tile_##suffix(const float* z, const label_t* y, const uint8_t* ann,          \
                                  const double* w, int64_t T, int64_t HW, int64_t n,             \
                                  int64_t window, float* scratch, double* out) {                 \
    forward_tile_f32_impl<V, label_t>(z, y, ann, w, T, HW, n, window, scratch, out);             \
  }                                                                                              \
  attr void backward_tile_##suffix(const float* z, const label_t* y, const uint8_t* ann,         \
                                   const double* w, const float* g, int64_t T, int64_t HW,       \
                                   int64_t n, int64_t window, float* scratch, float* gz) {       \
    backward_tile_f32_impl<V, label_t>(z, y, ann, w, g, T, HW, n, window, scratch, gz);          \
  }

// fp32 tiles: 8 lanes, multiversioned for AVX2 and baseline x86-64; and where the compiler can
// target it, a 16-lane AVX-512 build (half the instructions per pixel, which is what bounds
// these tiles: they are arithmetic-bound, not memory-bound), taken when the CPU has it.
#if CLAUS_HAVE_AVX512_PATH
#define CLAUS_STEW_TILE_FNS_F32(label_t, suffix)                                \
  CLAUS_STEW_TILE_FNS_F32_AS(CLAUS_MULTIVERSION, simd::f32x8, label_t, suffix)  \
  CLAUS_STEW_TILE_FNS_F32_AS(CLAUS_TARGET_AVX512, simd::f32x16, label_t, suffix##_avx512)
#define CLAUS_STEW_F32_DISPATCH(fn, suffix, ...) \
  (cpu_has_avx512() ? fn##_##suffix##_avx512(__VA_ARGS__) : fn##_##suffix(__VA_ARGS__))
#else
#define CLAUS_STEW_TILE_FNS_F32(label_t, suffix) \
  CLAUS_STEW_TILE_FNS_F32_AS(CLAUS_MULTIVERSION, simd::f32x8, label_t, suffix)
#define CLAUS_STEW_F32_DISPATCH(fn, suffix, ...) fn##_##suffix(__VA_ARGS__)
#endif

CLAUS_STEW_TILE_FNS_F32(uint8_t, f32_u8)
CLAUS_STEW_TILE_FNS_F32(float, f32_f32)
CLAUS_STEW_TILE_FNS(double, uint8_t, f64_u8)
CLAUS_STEW_TILE_FNS(double, double, f64_f64)

void forward_tile(const float* z, const uint8_t* y, const uint8_t* a, const double* w, int64_t T,
                  int64_t HW, int64_t n, int64_t win, float* s, double* o) {
  CLAUS_STEW_F32_DISPATCH(forward_tile, f32_u8, z, y, a, w, T, HW, n, win, s, o);
}
void forward_tile(const float* z, const float* y, const uint8_t* a, const double* w, int64_t T,
                  int64_t HW, int64_t n, int64_t win, float* s, double* o) {
  CLAUS_STEW_F32_DISPATCH(forward_tile, f32_f32, z, y, a, w, T, HW, n, win, s, o);
}
void forward_tile(const double* z, const uint8_t* y, const uint8_t* a, const double* w,
                  int64_t T, int64_t HW, int64_t n, int64_t win, double* s, double* o) {
  forward_tile_f64_u8(z, y, a, w, T, HW, n, win, s, o);
}
void forward_tile(const double* z, const double* y, const uint8_t* a, const double* w,
                  int64_t T, int64_t HW, int64_t n, int64_t win, double* s, double* o) {
  forward_tile_f64_f64(z, y, a, w, T, HW, n, win, s, o);
}
void backward_tile(const float* z, const uint8_t* y, const uint8_t* a, const double* w,
                   const float* g, int64_t T, int64_t HW, int64_t n, int64_t win, float* s,
                   float* gz) {
  CLAUS_STEW_F32_DISPATCH(backward_tile, f32_u8, z, y, a, w, g, T, HW, n, win, s, gz);
}
void backward_tile(const float* z, const float* y, const uint8_t* a, const double* w,
                   const float* g, int64_t T, int64_t HW, int64_t n, int64_t win, float* s,
                   float* gz) {
  CLAUS_STEW_F32_DISPATCH(backward_tile, f32_f32, z, y, a, w, g, T, HW, n, win, s, gz);
}
void backward_tile(const double* z, const uint8_t* y, const uint8_t* a, const double* w,
                   const double* g, int64_t T, int64_t HW, int64_t n, int64_t win, double* s,
                   double* gz) {
  backward_tile_f64_u8(z, y, a, w, g, T, HW, n, win, s, gz);
}
void backward_tile(const double* z, const double* y, const uint8_t* a, const double* w,
                   const double* g, int64_t T, int64_t HW, int64_t n, int64_t win, double* s,
                   double* gz) {
  backward_tile_f64_f64(z, y, a, w, g, T, HW, n, win, s, gz);
}

// Temporal weights (B,T) in fp64: a tiny pre-pass, not per pixel.
std::vector<double> temporal_weights(const uint8_t* ann, int64_t B, int64_t T, double sigma,
                                     int64_t radius) {
  std::vector<double> w(static_cast<size_t>(B * T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) w[b * T + t] = temporal_weight(ann + b * T, T, t, sigma, radius);
  return w;
}

template <typename scalar_t, typename label_t>
void forward_cpu(const at::Tensor& z, const at::Tensor& y, const at::Tensor& a, double sigma,
                 int64_t radius, int64_t window, at::Tensor& out) {
  const int64_t B = z.size(0), T = z.size(1), HW = z.size(2) * z.size(3);
  const int64_t tiles = (HW + kTile - 1) / kTile;
  const scalar_t* zp = z.const_data_ptr<scalar_t>();
  const label_t* yp = y.const_data_ptr<label_t>();
  const uint8_t* ap = a.const_data_ptr<uint8_t>();
  std::vector<double> w = temporal_weights(ap, B, T, sigma, radius);
  std::vector<double> partial(static_cast<size_t>(B * tiles * kNumStats));
  // Grain of one tile: each is T*kTile pixels of work, enough to amortize scheduling.
  at::parallel_for(0, B * tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<scalar_t> scratch(static_cast<size_t>(
        std::max((T + 1 + kNumStats) * kTile, f32_scratch_floats(T))));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / tiles, p0 = (item % tiles) * kTile;
      const int64_t n = std::min(kTile, HW - p0);
      const int64_t off = b * T * HW + p0;
      forward_tile(zp + off, yp + off, ap + b * T, w.data() + b * T, T, HW, n, window,
                   scratch.data(), partial.data() + item * kNumStats);
    }
  });
  auto o = out.accessor<scalar_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    for (int k = 0; k < kNumStats; ++k) {
      double s = 0.0;
      for (int64_t j = 0; j < tiles; ++j) s += partial[(b * tiles + j) * kNumStats + k];
      o[b][k] = static_cast<scalar_t>(s);
    }
  }
}

template <typename scalar_t, typename label_t>
void backward_cpu(const at::Tensor& grad, const at::Tensor& z, const at::Tensor& y,
                  const at::Tensor& a, double sigma, int64_t radius, int64_t window,
                  at::Tensor& gz) {
  const int64_t B = z.size(0), T = z.size(1), HW = z.size(2) * z.size(3);
  const int64_t tiles = (HW + kTile - 1) / kTile;
  const scalar_t* zp = z.const_data_ptr<scalar_t>();
  const label_t* yp = y.const_data_ptr<label_t>();
  const uint8_t* ap = a.const_data_ptr<uint8_t>();
  const scalar_t* gp = grad.const_data_ptr<scalar_t>();
  scalar_t* gzp = gz.mutable_data_ptr<scalar_t>();
  std::vector<double> w = temporal_weights(ap, B, T, sigma, radius);
  at::parallel_for(0, B * tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<scalar_t> scratch(
        static_cast<size_t>(std::max((T + 1) * kTile, f32_scratch_floats(T))));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / tiles, p0 = (item % tiles) * kTile;
      const int64_t n = std::min(kTile, HW - p0);
      const int64_t off = b * T * HW + p0;
      backward_tile(zp + off, yp + off, ap + b * T, w.data() + b * T, gp + b * kNumStats, T, HW,
                    n, window, scratch.data(), gzp + off);
    }
  });
}

at::Tensor stew_stats_cpu(const at::Tensor& z, const at::Tensor& y, const at::Tensor& annotated,
                          double sigma, int64_t radius, int64_t window) {
  const char* op = "claus::stew_stats";
  check_logits(op, z, y, /*allow_half=*/false);
  check_labels(op, y, annotated, sigma, radius, window);
  auto acc = acc_type(z.scalar_type());
  auto out = at::zeros({z.size(0), kNumStats}, z.options().dtype(acc));
  if (z.numel() == 0) return out;
  auto zc = z.contiguous();
  auto yc = labels_for_kernel(y, acc);
  auto ac = flags_for_kernel(annotated);
  if (acc == at::kDouble) {
    if (yc.scalar_type() == at::kByte) forward_cpu<double, uint8_t>(zc, yc, ac, sigma, radius, window, out);
    else forward_cpu<double, double>(zc, yc, ac, sigma, radius, window, out);
  } else {
    if (yc.scalar_type() == at::kByte) forward_cpu<float, uint8_t>(zc, yc, ac, sigma, radius, window, out);
    else forward_cpu<float, float>(zc, yc, ac, sigma, radius, window, out);
  }
  return out;
}

at::Tensor stew_stats_backward_cpu(const at::Tensor& grad, const at::Tensor& z,
                                   const at::Tensor& y, const at::Tensor& annotated, double sigma,
                                   int64_t radius, int64_t window) {
  const char* op = "claus::stew_stats_backward";
  check_logits(op, z, y, /*allow_half=*/false);
  check_labels(op, y, annotated, sigma, radius, window);
  CLAUS_CHECK_ARG(grad.dim() == 2 && grad.size(0) == z.size(0) && grad.size(1) == kNumStats, op,
                  "grad must have shape (B,5) = [", z.size(0), ", 5], got ", shape_str(grad));
  auto gz = at::empty_like(z, at::MemoryFormat::Contiguous);
  if (z.numel() == 0) return gz;
  auto zc = z.contiguous();
  auto gc = grad.to(z.scalar_type()).contiguous();
  auto yc = labels_for_kernel(y, z.scalar_type());
  auto ac = flags_for_kernel(annotated);
  if (z.scalar_type() == at::kDouble) {
    if (yc.scalar_type() == at::kByte) backward_cpu<double, uint8_t>(gc, zc, yc, ac, sigma, radius, window, gz);
    else backward_cpu<double, double>(gc, zc, yc, ac, sigma, radius, window, gz);
  } else {
    if (yc.scalar_type() == at::kByte) backward_cpu<float, uint8_t>(gc, zc, yc, ac, sigma, radius, window, gz);
    else backward_cpu<float, float>(gc, zc, yc, ac, sigma, radius, window, gz);
  }
  return gz;
}

template <typename label_t>
void weights_cpu(const at::Tensor& y, const at::Tensor& a, double sigma, int64_t radius,
                 int64_t window, at::Tensor& out) {
  const int64_t B = y.size(0), T = y.size(1), HW = y.size(2) * y.size(3);
  const int64_t tiles = (HW + kTile - 1) / kTile;
  const label_t* yp = y.const_data_ptr<label_t>();
  const uint8_t* ap = a.const_data_ptr<uint8_t>();
  float* op = out.mutable_data_ptr<float>();
  std::vector<double> w = temporal_weights(ap, B, T, sigma, radius);
  at::parallel_for(0, B * tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> ybuf(static_cast<size_t>(T * kTile)), c(kTile);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / tiles, p0 = (item % tiles) * kTile;
      const int64_t n = std::min(kTile, HW - p0);
      const int64_t off = b * T * HW + p0;
      load_labels(yp + off, T, HW, n, ybuf.data());
      for (int64_t t = 0; t < T; ++t) {
        float* dst = op + off + t * HW;
        const float wt = static_cast<float>(w[b * T + t]);
        if (ap[b * T + t]) {
          for (int64_t i = 0; i < n; ++i) dst[i] = wt;
        } else {
          consistency(ybuf.data(), T, t, window, n, c.data());
          for (int64_t i = 0; i < n; ++i) dst[i] = wt * c[i];
        }
      }
    }
  });
}

at::Tensor stew_weights_cpu(const at::Tensor& y, const at::Tensor& annotated, double sigma,
                            int64_t radius, int64_t window) {
  check_labels("claus::stew_weights", y, annotated, sigma, radius, window);
  auto out = at::empty(y.sizes(), y.options().dtype(at::kFloat));
  if (y.numel() == 0) return out;
  auto yc = labels_for_kernel(y, at::kFloat);
  auto ac = flags_for_kernel(annotated);
  if (yc.scalar_type() == at::kByte) weights_cpu<uint8_t>(yc, ac, sigma, radius, window, out);
  else weights_cpu<float>(yc, ac, sigma, radius, window, out);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(claus, CPU, m) {
  m.impl("stew_stats", &stew_stats_cpu);
  m.impl("stew_stats_backward", &stew_stats_backward_cpu);
  m.impl("stew_weights", &stew_weights_cpu);
}

}  // namespace stew
}  // namespace claus
