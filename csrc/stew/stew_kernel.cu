// STeW statistics on CUDA: torch-free kernels over raw pointers.
//
// Element-parallel: a clip's (T, HW) plane is flattened and cut into packs of VEC consecutive
// pixels of one frame (VEC = 4 when HW % 4 == 0 and every pointer is aligned to a whole pack,
// else 1); one thread owns one pack. It loads its logits and the labels of the consistency
// window around its frame, all independent loads issued together, so a warp keeps many bytes in
// flight and the grid has several waves even for short clips. (A thread per pixel walking all T
// frames, the first design, reached 15% of copy bandwidth on an H100: too few threads, each a
// serial chain of T dependent loads.) Neighbouring frames' labels are re-read by other threads;
// those reads hit L2 and labels are the smallest input (uint8 for hard masks).
//
// A block covers kBlock packs, which may span several frames when HW is small; the temporal
// weights and annotated flags of those frames are computed once per block into shared memory.
//
// Forward: per-thread sums, a fixed-shape block reduction into one fp64 partial per block and
// statistic, then one block per clip adds its partials in a fixed order: the sums are
// bit-identical from run to run.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "stew_kernel.h"
#include "stew_math.h"

namespace claus {
namespace stew {
namespace cuda {
namespace {

constexpr int kVec = 4;  // pixels per pack on the vector path

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_acc(float v);
template <> __device__ __forceinline__ float from_acc<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_acc<__half>(float v) { return __float2half(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);
}
template <typename T> __device__ __forceinline__ T from_acc(double v);
template <> __device__ __forceinline__ double from_acc<double>(double v) { return v; }

template <typename scalar_t> struct AccOf { using type = float; };
template <> struct AccOf<double> { using type = double; };

// VEC consecutive elements, loaded and stored as one access (16 bytes for float x 4).
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

template <typename T, int VEC>
__device__ __forceinline__ Pack<T, VEC> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, VEC>*>(p);
}

// a / b for non-negative a and positive b. 64-bit division is a called subroutine on the GPU
// (some 70 instructions and spilled registers around the call); every index of a realistic
// batch fits 32 bits, where it is a short inline sequence.
__device__ __forceinline__ int64_t div_index(int64_t a, int64_t b) {
  if ((a | b) <= 0xffffffffLL)
    return static_cast<int64_t>(static_cast<uint32_t>(a) / static_cast<uint32_t>(b));
  return a / b;
}

// Temporal weights and annotated flags of the frames [t0, t0 + span) that a block touches.
template <typename acc_t>
struct FrameTable {
  acc_t* w;
  unsigned char* ann;
  int64_t t0;
};

// Elements of a clip's plane that one block covers.
__device__ __forceinline__ int64_t block_elems(int vec) {
  return static_cast<int64_t>(kBlock) * kItems * vec;
}

// Frames covered by the block's packs: [t0, t1] of the clip's flattened plane.
__device__ __forceinline__ void block_frames(int64_t T, int64_t hw, int vec, int64_t& t0,
                                             int64_t& t1) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * block_elems(vec);
  const int64_t last = first + block_elems(vec) - 1;
  t0 = div_index(first, hw);
  const int64_t tl = div_index(last, hw);
  t1 = tl < T - 1 ? tl : T - 1;
}

// Fills the frame table, ready to read: every thread of the block calls it (it synchronizes).
template <typename acc_t>
__device__ FrameTable<acc_t> load_frames(unsigned char* smem, int64_t max_span,
                                         const uint8_t* ann, int64_t T, int64_t hw, int vec,
                                         double sigma, int64_t radius) {
  FrameTable<acc_t> ft;
  ft.w = reinterpret_cast<acc_t*>(smem);
  ft.ann = smem + max_span * sizeof(acc_t);
  int64_t t1;
  block_frames(T, hw, vec, ft.t0, t1);
  for (int64_t i = threadIdx.x; i <= t1 - ft.t0; i += blockDim.x) {
    ft.w[i] = static_cast<acc_t>(temporal_weight(ann, T, ft.t0 + i, sigma, radius));
    ft.ann[i] = ann[ft.t0 + i] ? 1 : 0;
  }
  __syncthreads();
  return ft;
}

// Consistency windows up to this half-width (the default is 2) load their labels as one batch
// of independent loads; wider windows walk their frames one load at a time.
constexpr int kMaxWin = 2;

// One thread's pack: its frame, labels, and the sum over the consistency window of
// |y[u] - y[t]| with the window's frame count. `issue` starts every load of the pack and
// `finish` uses them, so a thread has all of its loads in flight at once and the block builds
// its frame table meanwhile. (A first version consumed each label as it arrived: one L2 latency
// per window frame, in sequence, which left the kernels at 12% of DRAM bandwidth.)
template <typename label_t, typename acc_t, int VEC>
struct PackLabels {
  int64_t t;
  acc_t yt[VEC];
  acc_t dev[VEC];
  acc_t inv_count;  // 1 / frames in the window
  Pack<label_t, VEC> raw[2 * kMaxWin + 1];  // frames t - kMaxWin .. t + kMaxWin (batched path)

  __device__ __forceinline__ void issue(const label_t* __restrict__ yc, int64_t T, int64_t hw,
                                        int64_t t_, int64_t p, int64_t window) {
    t = t_;
    int64_t lo, hi;
    window_bounds(T, t, window, lo, hi);
    inv_count = acc_t(1) / static_cast<acc_t>(hi - lo + 1);
    if (window <= kMaxWin) {
#pragma unroll
      for (int k = 0; k <= 2 * kMaxWin; ++k) {
        const int64_t u = t - kMaxWin + k;
        if (u >= lo && u <= hi) raw[k] = load_pack<label_t, VEC>(yc + u * hw + p);
      }
      return;
    }
    const Pack<label_t, VEC> own = load_pack<label_t, VEC>(yc + t * hw + p);
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      yt[j] = label_value<acc_t>(own.v[j]);
      dev[j] = acc_t(0);
    }
    for (int64_t u = lo; u <= hi; ++u) {
      if (u == t) continue;
      const Pack<label_t, VEC> nb = load_pack<label_t, VEC>(yc + u * hw + p);
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const acc_t d = label_value<acc_t>(nb.v[j]) - yt[j];
        dev[j] += d < acc_t(0) ? -d : d;
      }
    }
  }

  __device__ __forceinline__ void finish(int64_t T, int64_t window) {
    if (window > kMaxWin) return;  // done in `issue`
    int64_t lo, hi;
    window_bounds(T, t, window, lo, hi);
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      yt[j] = label_value<acc_t>(raw[kMaxWin].v[j]);
      dev[j] = acc_t(0);
    }
    // Frame t itself adds |y_t - y_t| = 0 and is skipped.
#pragma unroll
    for (int k = 0; k <= 2 * kMaxWin; ++k) {
      const int64_t u = t - kMaxWin + k;
      if (k == kMaxWin || u < lo || u > hi) continue;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const acc_t d = label_value<acc_t>(raw[k].v[j]) - yt[j];
        dev[j] += d < acc_t(0) ? -d : d;
      }
    }
  }

  // Consistency of element j: 1 on an annotated frame.
  __device__ __forceinline__ acc_t consistency(int j, bool annotated) const {
    return annotated ? acc_t(1) : acc_t(1) - dev[j] * inv_count;
  }
};

// Flattened element index of item `it` of this thread, and its frame / pixel.
template <int VEC>
__device__ __forceinline__ int64_t item_elem(int it) {
  return static_cast<int64_t>(blockIdx.x) * block_elems(VEC) +
         (static_cast<int64_t>(it) * kBlock + threadIdx.x) * VEC;
}

// Starts the loads of this thread's kItems packs of one clip (z, y point at the clip's start).
template <typename scalar_t, typename label_t, typename acc_t, int VEC>
__device__ __forceinline__ void issue_items(const scalar_t* __restrict__ z,
                                            const label_t* __restrict__ y, int64_t T,
                                            int64_t hw, int64_t window,
                                            Pack<scalar_t, VEC> (&zp)[kItems],
                                            PackLabels<label_t, acc_t, VEC> (&lab)[kItems]) {
  const int64_t plane = T * hw;
#pragma unroll
  for (int it = 0; it < kItems; ++it) {
    const int64_t e = item_elem<VEC>(it);
    if (e < plane) {
      const int64_t t = div_index(e, hw);
      zp[it] = load_pack<scalar_t, VEC>(z + e);
      lab[it].issue(y, T, hw, t, e - t * hw, window);
    }
  }
}

// The block's sums of the kNumStats statistics in a fixed shape (warp shuffles in fp64, then
// the warp sums in order), so they are the same from run to run; valid in threads
// 0..kNumStats-1. Every thread of the block calls it.
template <typename sum_t>
__device__ __forceinline__ double block_sum_stats(const sum_t (&s)[kNumStats],
                                                  double (*warp_sums)[kNumStats]) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int k = 0; k < kNumStats; ++k) {
    double v = static_cast<double>(s[k]);
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    if (lane == 0) warp_sums[warp][k] = v;
  }
  __syncthreads();
  double v = 0.0;
  if (threadIdx.x < kNumStats) {
    for (int i = 0; i < kBlock / 32; ++i) v += warp_sums[i][threadIdx.x];
  }
  return v;
}

template <typename scalar_t, typename label_t, int VEC>
__global__ void __launch_bounds__(kBlock)
    forward_kernel(const scalar_t* __restrict__ z, const label_t* __restrict__ y,
                   const uint8_t* __restrict__ ann, int64_t B, int64_t T, int64_t hw,
                   double sigma, int64_t radius, int64_t window, int64_t max_span,
                   double* __restrict__ partial) {
  using acc_t = typename AccOf<scalar_t>::type;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __shared__ double warp_sums[kBlock / 32][kNumStats];
  const int64_t tiles = gridDim.x;
  const int64_t plane = T * hw;
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    Pack<scalar_t, VEC> zp[kItems];
    PackLabels<label_t, acc_t, VEC> lab[kItems];
    issue_items<scalar_t, label_t, acc_t, VEC>(z + b * plane, y + b * plane, T, hw, window, zp,
                                               lab);
    const FrameTable<acc_t> ft =
        load_frames<acc_t>(smem_raw, max_span, ann + b * T, T, hw, VEC, sigma, radius);
    acc_t s[kNumStats] = {0, 0, 0, 0, 0};
#pragma unroll
    for (int it = 0; it < kItems; ++it) {
      if (item_elem<VEC>(it) >= plane) continue;
      lab[it].finish(T, window);
      const int64_t i = lab[it].t - ft.t0;
      const acc_t w = ft.w[i];
      const bool annotated = ft.ann[i] != 0;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        acc_t loss, pr;
        const acc_t yt = lab[it].yt[j];
        bce_sigmoid<acc_t>(to_acc(zp[it].v[j]), yt, loss, pr);
        const acc_t om = w * lab[it].consistency(j, annotated);
        s[0] += om * loss;
        s[1] += om;
        s[2] += om * pr * yt;
        s[3] += om * pr;
        s[4] += om * yt;
      }
    }
    const double v = block_sum_stats<acc_t>(s, warp_sums);
    if (threadIdx.x < kNumStats) partial[(b * tiles + blockIdx.x) * kNumStats + threadIdx.x] = v;
    __syncthreads();  // the frame table and warp sums are rewritten for the next clip
  }
}

// One block per clip: thread i adds partials i, i + kBlock, ... in order, then a fixed tree.
template <typename acc_t>
__global__ void __launch_bounds__(kBlock)
    reduce_partials_kernel(const double* __restrict__ partial, int64_t B, int64_t tiles,
                           acc_t* __restrict__ out) {
  __shared__ double warp_sums[kBlock / 32][kNumStats];
  for (int64_t b = blockIdx.x; b < B; b += gridDim.x) {
    double s[kNumStats] = {0, 0, 0, 0, 0};
    for (int64_t j = threadIdx.x; j < tiles; j += kBlock) {
      const double* pj = partial + (b * tiles + j) * kNumStats;
#pragma unroll
      for (int k = 0; k < kNumStats; ++k) s[k] += pj[k];
    }
    const double v = block_sum_stats<double>(s, warp_sums);
    if (threadIdx.x < kNumStats) out[b * kNumStats + threadIdx.x] = static_cast<acc_t>(v);
    __syncthreads();  // the warp sums are rewritten for the next clip
  }
}

template <typename scalar_t, typename label_t, int VEC>
__global__ void __launch_bounds__(kBlock)
    backward_kernel(const typename AccOf<scalar_t>::type* __restrict__ grad,
                    const scalar_t* __restrict__ z, const label_t* __restrict__ y,
                    const uint8_t* __restrict__ ann, int64_t B, int64_t T, int64_t hw,
                    double sigma, int64_t radius, int64_t window, int64_t max_span,
                    scalar_t* __restrict__ gz) {
  using acc_t = typename AccOf<scalar_t>::type;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int64_t plane = T * hw;
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    Pack<scalar_t, VEC> zp[kItems];
    PackLabels<label_t, acc_t, VEC> lab[kItems];
    issue_items<scalar_t, label_t, acc_t, VEC>(z + b * plane, y + b * plane, T, hw, window, zp,
                                               lab);
    const acc_t g0 = grad[b * kNumStats + 0], g2 = grad[b * kNumStats + 2],
                g3 = grad[b * kNumStats + 3];
    const FrameTable<acc_t> ft =
        load_frames<acc_t>(smem_raw, max_span, ann + b * T, T, hw, VEC, sigma, radius);
#pragma unroll
    for (int it = 0; it < kItems; ++it) {
      const int64_t e = item_elem<VEC>(it);
      if (e >= plane) continue;
      lab[it].finish(T, window);
      const int64_t i = lab[it].t - ft.t0;
      const acc_t w = ft.w[i];
      const bool annotated = ft.ann[i] != 0;
      Pack<scalar_t, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const acc_t pr = sigmoid<acc_t>(to_acc(zp[it].v[j]));
        out.v[j] = from_acc<scalar_t>(
            grad_z<acc_t>(w * lab[it].consistency(j, annotated), pr, lab[it].yt[j], g0, g2, g3));
      }
      *reinterpret_cast<Pack<scalar_t, VEC>*>(gz + b * plane + e) = out;
    }
    __syncthreads();  // the frame table is rewritten for the next clip
  }
}

template <typename label_t, int VEC>
__global__ void __launch_bounds__(kBlock)
    weights_kernel(const label_t* __restrict__ y, const uint8_t* __restrict__ ann, int64_t B,
                   int64_t T, int64_t hw, double sigma, int64_t radius, int64_t window,
                   int64_t max_span, float* __restrict__ out) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int64_t plane = T * hw;
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    PackLabels<label_t, float, VEC> lab[kItems];
#pragma unroll
    for (int it = 0; it < kItems; ++it) {
      const int64_t e = item_elem<VEC>(it);
      if (e < plane) {
        const int64_t t = div_index(e, hw);
        lab[it].issue(y + b * plane, T, hw, t, e - t * hw, window);
      }
    }
    const FrameTable<float> ft =
        load_frames<float>(smem_raw, max_span, ann + b * T, T, hw, VEC, sigma, radius);
#pragma unroll
    for (int it = 0; it < kItems; ++it) {
      const int64_t e = item_elem<VEC>(it);
      if (e >= plane) continue;
      lab[it].finish(T, window);
      const int64_t i = lab[it].t - ft.t0;
      Pack<float, VEC> o;
#pragma unroll
      for (int j = 0; j < VEC; ++j) o.v[j] = ft.w[i] * lab[it].consistency(j, ft.ann[i] != 0);
      *reinterpret_cast<Pack<float, VEC>*>(out + b * plane + e) = o;
    }
    __syncthreads();
  }
}

// Packs of kVec when the plane splits into whole, aligned packs; else single elements.
bool aligned(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// Frames one block can touch: its kBlock * kItems * vec elements start anywhere in a frame.
int64_t max_span(int64_t T, int64_t hw, int vec) {
  const int64_t span = (static_cast<int64_t>(kBlock) * kItems * vec - 1) / hw + 2;
  return span < T ? span : T;
}

template <typename acc_t>
size_t frame_table_bytes(int64_t span) {
  return static_cast<size_t>(span) * (sizeof(acc_t) + 1);
}

dim3 grid_for(int64_t B, int64_t T, int64_t hw, int vec) {
  const int64_t by = B < 65535 ? B : 65535;
  return dim3(static_cast<unsigned>(num_tiles(T, hw, vec)), static_cast<unsigned>(by));
}

bool grid_ok(int64_t T, int64_t hw, int vec) {
  return num_tiles(T, hw, vec) <= 0x7fffffffLL;
}

template <typename scalar_t, typename label_t, int VEC>
cudaError_t launch_forward_vec(const void* z, const void* y, const uint8_t* ann, int64_t B,
                               int64_t T, int64_t hw, double sigma, int64_t radius,
                               int64_t window, double* ws, void* out, cudaStream_t stream) {
  using acc_t = typename AccOf<scalar_t>::type;
  if (!grid_ok(T, hw, VEC)) return cudaErrorInvalidConfiguration;
  const int64_t span = max_span(T, hw, VEC);
  forward_kernel<scalar_t, label_t, VEC>
      <<<grid_for(B, T, hw, VEC), kBlock, frame_table_bytes<acc_t>(span), stream>>>(
          static_cast<const scalar_t*>(z), static_cast<const label_t*>(y), ann, B, T, hw, sigma,
          radius, window, span, ws);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  const unsigned blocks = static_cast<unsigned>(B < 65535 ? B : 65535);
  reduce_partials_kernel<acc_t><<<blocks, kBlock, 0, stream>>>(ws, B, num_tiles(T, hw, VEC),
                                                               static_cast<acc_t*>(out));
  return cudaGetLastError();
}

template <typename scalar_t, typename label_t>
cudaError_t launch_forward(const void* z, const void* y, const uint8_t* ann, int64_t B,
                           int64_t T, int64_t hw, double sigma, int64_t radius, int64_t window,
                           double* ws, void* out, cudaStream_t stream) {
  const bool vec = hw % kVec == 0 && aligned(z, sizeof(scalar_t) * kVec) &&
                   aligned(y, sizeof(label_t) * kVec);
  if (vec)
    return launch_forward_vec<scalar_t, label_t, kVec>(z, y, ann, B, T, hw, sigma, radius,
                                                        window, ws, out, stream);
  return launch_forward_vec<scalar_t, label_t, 1>(z, y, ann, B, T, hw, sigma, radius, window,
                                                   ws, out, stream);
}

template <typename scalar_t, typename label_t, int VEC>
cudaError_t launch_backward_vec(const void* grad, const void* z, const void* y,
                                const uint8_t* ann, int64_t B, int64_t T, int64_t hw,
                                double sigma, int64_t radius, int64_t window, void* gz,
                                cudaStream_t stream) {
  using acc_t = typename AccOf<scalar_t>::type;
  if (!grid_ok(T, hw, VEC)) return cudaErrorInvalidConfiguration;
  const int64_t span = max_span(T, hw, VEC);
  backward_kernel<scalar_t, label_t, VEC>
      <<<grid_for(B, T, hw, VEC), kBlock, frame_table_bytes<acc_t>(span), stream>>>(
          static_cast<const acc_t*>(grad), static_cast<const scalar_t*>(z),
          static_cast<const label_t*>(y), ann, B, T, hw, sigma, radius, window, span,
          static_cast<scalar_t*>(gz));
  return cudaGetLastError();
}

template <typename scalar_t, typename label_t>
cudaError_t launch_backward(const void* grad, const void* z, const void* y, const uint8_t* ann,
                            int64_t B, int64_t T, int64_t hw, double sigma, int64_t radius,
                            int64_t window, void* gz, cudaStream_t stream) {
  const bool vec = hw % kVec == 0 && aligned(z, sizeof(scalar_t) * kVec) &&
                   aligned(y, sizeof(label_t) * kVec) && aligned(gz, sizeof(scalar_t) * kVec);
  if (vec)
    return launch_backward_vec<scalar_t, label_t, kVec>(grad, z, y, ann, B, T, hw, sigma,
                                                         radius, window, gz, stream);
  return launch_backward_vec<scalar_t, label_t, 1>(grad, z, y, ann, B, T, hw, sigma, radius,
                                                    window, gz, stream);
}

template <typename label_t, int VEC>
cudaError_t launch_weights_vec(const void* y, const uint8_t* ann, int64_t B, int64_t T,
                               int64_t hw, double sigma, int64_t radius, int64_t window,
                               float* out, cudaStream_t stream) {
  if (!grid_ok(T, hw, VEC)) return cudaErrorInvalidConfiguration;
  const int64_t span = max_span(T, hw, VEC);
  weights_kernel<label_t, VEC>
      <<<grid_for(B, T, hw, VEC), kBlock, frame_table_bytes<float>(span), stream>>>(
          static_cast<const label_t*>(y), ann, B, T, hw, sigma, radius, window, span, out);
  return cudaGetLastError();
}

template <typename label_t>
cudaError_t launch_weights(const void* y, const uint8_t* ann, int64_t B, int64_t T, int64_t hw,
                           double sigma, int64_t radius, int64_t window, float* out,
                           cudaStream_t stream) {
  const bool vec = hw % kVec == 0 && aligned(y, sizeof(label_t) * kVec) &&
                   aligned(out, sizeof(float) * kVec);
  if (vec)
    return launch_weights_vec<label_t, kVec>(y, ann, B, T, hw, sigma, radius, window, out,
                                             stream);
  return launch_weights_vec<label_t, 1>(y, ann, B, T, hw, sigma, radius, window, out, stream);
}

// Dispatches on the logits type and the label type (uint8, or the accumulation type).
template <template <typename, typename> class F, typename... Args>
cudaError_t dispatch(Scalar zt, bool labels_u8, Args... args) {
  switch (zt) {
    case Scalar::Float32:
      return labels_u8 ? F<float, uint8_t>::run(args...) : F<float, float>::run(args...);
    case Scalar::Float64:
      return labels_u8 ? F<double, uint8_t>::run(args...) : F<double, double>::run(args...);
    case Scalar::Float16:
      return labels_u8 ? F<__half, uint8_t>::run(args...) : F<__half, float>::run(args...);
    case Scalar::BFloat16:
      return labels_u8 ? F<__nv_bfloat16, uint8_t>::run(args...)
                       : F<__nv_bfloat16, float>::run(args...);
  }
  return cudaErrorInvalidValue;
}

template <typename scalar_t, typename label_t>
struct Forward {
  template <typename... A>
  static cudaError_t run(A... a) { return launch_forward<scalar_t, label_t>(a...); }
};
template <typename scalar_t, typename label_t>
struct Backward {
  template <typename... A>
  static cudaError_t run(A... a) { return launch_backward<scalar_t, label_t>(a...); }
};

}  // namespace

cudaError_t stats_forward(const void* z, Scalar z_type, const void* y, bool labels_u8,
                          const uint8_t* annotated, int64_t B, int64_t T, int64_t hw,
                          double sigma, int64_t radius, int64_t window, double* workspace,
                          void* out, cudaStream_t stream) {
  if (B == 0 || T == 0 || hw == 0) return cudaSuccess;
  return dispatch<Forward>(z_type, labels_u8, z, y, annotated, B, T, hw, sigma, radius, window,
                           workspace, out, stream);
}

cudaError_t stats_backward(const void* grad, const void* z, Scalar z_type, const void* y,
                           bool labels_u8, const uint8_t* annotated, int64_t B, int64_t T,
                           int64_t hw, double sigma, int64_t radius, int64_t window, void* gz,
                           cudaStream_t stream) {
  if (B == 0 || T == 0 || hw == 0) return cudaSuccess;
  return dispatch<Backward>(z_type, labels_u8, grad, z, y, annotated, B, T, hw, sigma, radius,
                            window, gz, stream);
}

cudaError_t weights(const void* y, bool labels_u8, const uint8_t* annotated, int64_t B,
                    int64_t T, int64_t hw, double sigma, int64_t radius, int64_t window,
                    float* out, cudaStream_t stream) {
  if (B == 0 || T == 0 || hw == 0) return cudaSuccess;
  if (labels_u8)
    return launch_weights<uint8_t>(y, annotated, B, T, hw, sigma, radius, window, out, stream);
  return launch_weights<float>(y, annotated, B, T, hw, sigma, radius, window, out, stream);
}

}  // namespace cuda
}  // namespace stew
}  // namespace claus
