// STeW statistics on CUDA: torch-free kernels over raw pointers.
//
// One thread owns one pixel of one clip and walks its T frames, keeping the labels of the
// consistency window in a small ring, so each label is read from global memory once per pass.
// Forward: per-thread fp32 (fp64 for fp64) sums, a fixed-shape block reduction into one fp64
// partial per block, then a second kernel that adds a clip's partials in block order: the sums
// are bit-identical from run to run. The temporal weights of a clip (T values) are computed
// once per block into shared memory.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "stew_kernel.h"
#include "stew_math.h"

namespace claus {
namespace stew {
namespace cuda {
namespace {

// Windows up to this half-width use the register/local ring; wider ones read labels directly.
constexpr int64_t kMaxRingWindow = 8;

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

// Walks the labels of one pixel along t, exposing the window [lo, hi] around the current frame.
template <typename label_t, typename acc_t>
struct LabelWindow {
  const label_t* y;  // first frame of this pixel; frame u at y[u * hw]
  int64_t hw, T, window;
  bool ring_ok;
  int64_t loaded = 0;
  acc_t ring[2 * kMaxRingWindow + 1];

  __device__ LabelWindow(const label_t* y_, int64_t hw_, int64_t T_, int64_t window_)
      : y(y_), hw(hw_), T(T_), window(window_), ring_ok(window_ <= kMaxRingWindow) {}

  __device__ __forceinline__ acc_t load(int64_t u) const {
    return label_value<acc_t>(y[u * hw]);
  }
  __device__ __forceinline__ int64_t slot(int64_t u) const { return u % (2 * window + 1); }

  // Brings frames up to hi into the ring (frames below lo are no longer needed).
  __device__ __forceinline__ void advance(int64_t hi) {
    if (!ring_ok) return;
    for (; loaded <= hi; ++loaded) ring[slot(loaded)] = load(loaded);
  }
  __device__ __forceinline__ acc_t at(int64_t u) const {
    return ring_ok ? ring[slot(u)] : load(u);
  }

  // Consistency of frame t (not annotated), given its label yt.
  __device__ __forceinline__ acc_t consistency(int64_t t, acc_t yt) const {
    int64_t lo, hi;
    window_bounds(T, t, window, lo, hi);
    acc_t s = acc_t(0);
    for (int64_t u = lo; u <= hi; ++u) {
      acc_t d = at(u) - yt;
      s += d < acc_t(0) ? -d : d;
    }
    return acc_t(1) - s / static_cast<acc_t>(hi - lo + 1);
  }
};

template <typename acc_t>
__device__ void load_weights(const uint8_t* ann, int64_t T, double sigma, int64_t radius,
                             acc_t* w) {
  for (int64_t t = threadIdx.x; t < T; t += blockDim.x)
    w[t] = static_cast<acc_t>(temporal_weight(ann, T, t, sigma, radius));
  __syncthreads();
}

template <typename scalar_t, typename label_t>
__global__ void __launch_bounds__(kBlock)
    forward_kernel(const scalar_t* __restrict__ z, const label_t* __restrict__ y,
                   const uint8_t* __restrict__ ann, int64_t B, int64_t T, int64_t hw,
                   double sigma, int64_t radius, int64_t window, double* __restrict__ partial) {
  using acc_t = typename AccOf<scalar_t>::type;
  extern __shared__ unsigned char smem_raw[];
  acc_t* w = reinterpret_cast<acc_t*>(smem_raw);
  __shared__ double warp_sums[kBlock / 32][kNumStats];
  const int64_t tiles = gridDim.x;
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    load_weights(ann + b * T, T, sigma, radius, w);
    const int64_t p = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    acc_t s[kNumStats] = {0, 0, 0, 0, 0};
    if (p < hw) {
      const int64_t base = b * T * hw + p;
      LabelWindow<label_t, acc_t> lw(y + base, hw, T, window);
      for (int64_t t = 0; t < T; ++t) {
        int64_t lo, hi;
        window_bounds(T, t, window, lo, hi);
        lw.advance(hi);
        const acc_t yt = lw.at(t);
        const acc_t c = ann[b * T + t] ? acc_t(1) : lw.consistency(t, yt);
        acc_t loss, pr;
        bce_sigmoid<acc_t>(to_acc(z[base + t * hw]), yt, loss, pr);
        const acc_t om = w[t] * c;
        s[0] += om * loss;
        s[1] += om;
        s[2] += om * pr * yt;
        s[3] += om * pr;
        s[4] += om * yt;
      }
    }
    // Fixed-shape reduction: warp shuffles, then warp 0 over the warp sums.
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int k = 0; k < kNumStats; ++k) {
      double v = static_cast<double>(s[k]);
      for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
      if (lane == 0) warp_sums[warp][k] = v;
    }
    __syncthreads();
    if (threadIdx.x < kNumStats) {
      double v = 0.0;
      for (int i = 0; i < kBlock / 32; ++i) v += warp_sums[i][threadIdx.x];
      partial[(b * tiles + blockIdx.x) * kNumStats + threadIdx.x] = v;
    }
    __syncthreads();
  }
}

template <typename acc_t>
__global__ void reduce_partials_kernel(const double* __restrict__ partial, int64_t B,
                                       int64_t tiles, acc_t* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= B * kNumStats) return;
  const int64_t b = i / kNumStats, k = i % kNumStats;
  double v = 0.0;
  for (int64_t j = 0; j < tiles; ++j) v += partial[(b * tiles + j) * kNumStats + k];
  out[i] = static_cast<acc_t>(v);
}

template <typename scalar_t, typename label_t>
__global__ void __launch_bounds__(kBlock)
    backward_kernel(const typename AccOf<scalar_t>::type* __restrict__ grad,
                    const scalar_t* __restrict__ z, const label_t* __restrict__ y,
                    const uint8_t* __restrict__ ann, int64_t B, int64_t T, int64_t hw,
                    double sigma, int64_t radius, int64_t window, scalar_t* __restrict__ gz) {
  using acc_t = typename AccOf<scalar_t>::type;
  extern __shared__ unsigned char smem_raw[];
  acc_t* w = reinterpret_cast<acc_t*>(smem_raw);
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    load_weights(ann + b * T, T, sigma, radius, w);
    const int64_t p = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    if (p < hw) {
      const acc_t g0 = grad[b * kNumStats + 0], g2 = grad[b * kNumStats + 2],
                  g3 = grad[b * kNumStats + 3];
      const int64_t base = b * T * hw + p;
      LabelWindow<label_t, acc_t> lw(y + base, hw, T, window);
      for (int64_t t = 0; t < T; ++t) {
        int64_t lo, hi;
        window_bounds(T, t, window, lo, hi);
        lw.advance(hi);
        const acc_t yt = lw.at(t);
        const acc_t c = ann[b * T + t] ? acc_t(1) : lw.consistency(t, yt);
        const acc_t pr = sigmoid<acc_t>(to_acc(z[base + t * hw]));
        gz[base + t * hw] = from_acc<scalar_t>(grad_z<acc_t>(w[t] * c, pr, yt, g0, g2, g3));
      }
    }
    __syncthreads();  // w is rewritten for the next clip
  }
}

template <typename label_t>
__global__ void __launch_bounds__(kBlock)
    weights_kernel(const label_t* __restrict__ y, const uint8_t* __restrict__ ann, int64_t B,
                   int64_t T, int64_t hw, double sigma, int64_t radius, int64_t window,
                   float* __restrict__ out) {
  extern __shared__ unsigned char smem_raw[];
  float* w = reinterpret_cast<float*>(smem_raw);
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    load_weights(ann + b * T, T, sigma, radius, w);
    const int64_t p = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    if (p < hw) {
      const int64_t base = b * T * hw + p;
      LabelWindow<label_t, float> lw(y + base, hw, T, window);
      for (int64_t t = 0; t < T; ++t) {
        int64_t lo, hi;
        window_bounds(T, t, window, lo, hi);
        lw.advance(hi);
        const float c = ann[b * T + t] ? 1.0f : lw.consistency(t, lw.at(t));
        out[base + t * hw] = w[t] * c;
      }
    }
    __syncthreads();
  }
}

dim3 grid_for(int64_t B, int64_t hw) {
  const int64_t by = B < 65535 ? B : 65535;
  return dim3(static_cast<unsigned>(num_tiles(hw)), static_cast<unsigned>(by));
}

template <typename scalar_t, typename label_t>
cudaError_t launch_forward(const void* z, const void* y, const uint8_t* ann, int64_t B,
                           int64_t T, int64_t hw, double sigma, int64_t radius, int64_t window,
                           double* ws, void* out, cudaStream_t stream) {
  using acc_t = typename AccOf<scalar_t>::type;
  const size_t smem = static_cast<size_t>(T) * sizeof(acc_t);
  forward_kernel<scalar_t, label_t><<<grid_for(B, hw), kBlock, smem, stream>>>(
      static_cast<const scalar_t*>(z), static_cast<const label_t*>(y), ann, B, T, hw, sigma,
      radius, window, ws);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  const int64_t n = B * kNumStats;
  reduce_partials_kernel<acc_t><<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(
      ws, B, num_tiles(hw), static_cast<acc_t*>(out));
  return cudaGetLastError();
}

template <typename scalar_t, typename label_t>
cudaError_t launch_backward(const void* grad, const void* z, const void* y, const uint8_t* ann,
                            int64_t B, int64_t T, int64_t hw, double sigma, int64_t radius,
                            int64_t window, void* gz, cudaStream_t stream) {
  using acc_t = typename AccOf<scalar_t>::type;
  const size_t smem = static_cast<size_t>(T) * sizeof(acc_t);
  backward_kernel<scalar_t, label_t><<<grid_for(B, hw), kBlock, smem, stream>>>(
      static_cast<const acc_t*>(grad), static_cast<const scalar_t*>(z),
      static_cast<const label_t*>(y), ann, B, T, hw, sigma, radius, window,
      static_cast<scalar_t*>(gz));
  return cudaGetLastError();
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
  const size_t smem = static_cast<size_t>(T) * sizeof(float);
  if (labels_u8) {
    weights_kernel<uint8_t><<<grid_for(B, hw), kBlock, smem, stream>>>(
        static_cast<const uint8_t*>(y), annotated, B, T, hw, sigma, radius, window, out);
  } else {
    weights_kernel<float><<<grid_for(B, hw), kBlock, smem, stream>>>(
        static_cast<const float*>(y), annotated, B, T, hw, sigma, radius, window, out);
  }
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace stew
}  // namespace claus
