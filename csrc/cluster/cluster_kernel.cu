// Clustering kernels on CUDA, torch-free (raw pointers, sizes, a stream).
//
// Assignment runs in three kernels (numerics in cluster_math.h):
//   1. center_stats: ||c_k||^2 per centre (fp64, stored as fp32 for the scores) and the largest
//      one, for the error bound;
//   2. scores_top2: a tiled fp32 GEMM of x against the centres (128 rows x 128 centres per block,
//      8 x 8 outputs per thread in registers, tiles of 8 along D staged through shared memory with
//      the next tile prefetched into registers). Its epilogue turns dot products into scores
//      ||c_k||^2 - 2 x.c_k and keeps, per row, the two smallest scores and the best index; the
//      block loops over all centre tiles, so no partial result leaves the chip. float16/bfloat16
//      are widened to fp32 on load (products of such values are exact in fp32);
//   3. refine: one warp per row recomputes the exact fp64 distance to the best centre and the
//      row's squared norm; a row whose top-2 gap is within the error bound, or whose arithmetic
//      overflowed, scans every centre with the exact formula. float64 input skips kernel 2 and
//      takes this exact scan for every row (fp64 on a GPU is for checks, not speed).
// The GEMM reads each centre tile from L2 once per 128 rows and x once per 128 centres.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cluster_kernel.h"
#include "cluster_math.h"

namespace claus {
namespace cluster {
namespace {

constexpr int kBM = 128;  // rows per block
constexpr int kBN = 128;  // centres per tile
constexpr int kBK = 8;    // D per shared-memory stage
constexpr int kTM = 8;    // rows per thread
constexpr int kTN = 8;    // centres per thread
constexpr int kThreads = 256;
constexpr int kWarps = 8;  // warps per block in the warp-per-row kernels

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(double v) { return static_cast<float>(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

__device__ __forceinline__ double to_double(float v) { return static_cast<double>(v); }
__device__ __forceinline__ double to_double(double v) { return v; }
__device__ __forceinline__ double to_double(__half v) { return static_cast<double>(__half2float(v)); }
__device__ __forceinline__ double to_double(__nv_bfloat16 v) {
  return static_cast<double>(__bfloat162float(v));
}

template <typename T>
__device__ __forceinline__ T from_acc(float v);
template <>
__device__ __forceinline__ float from_acc<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_acc<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// Exact fp64 squared distance between two rows, lanes strided over D and a fixed butterfly
// reduction (the same order on every run). Every lane returns the sum.
template <typename T>
__device__ __forceinline__ double warp_dist2(const T* x, const T* c, int64_t D, int lane) {
  double acc = 0.0;
  for (int64_t d = lane; d < D; d += 32) {
    double t = to_double(x[d]) - to_double(c[d]);
    acc += t * t;
  }
  return warp_sum(acc);
}

// Workspace layout of launch_assign (16-byte aligned pieces).
struct AssignWorkspace {
  float* cnf;     // K: ||c_k||^2 as fp32, for the scores
  double* cmax;   // 1: max_k ||c_k||^2 (fp64)
  int32_t* k1;    // N: approximate best index
  float* s1;      // N: best score
  float* s2;      // N: second-best score
};

constexpr size_t align16(size_t b) { return (b + 15) / 16 * 16; }

AssignWorkspace carve(void* ws, int64_t N, int64_t K) {
  char* p = static_cast<char*>(ws);
  AssignWorkspace w;
  w.cnf = reinterpret_cast<float*>(p);
  p += align16(sizeof(float) * K);
  w.cmax = reinterpret_cast<double*>(p);
  p += align16(sizeof(double));
  w.k1 = reinterpret_cast<int32_t*>(p);
  p += align16(sizeof(int32_t) * N);
  w.s1 = reinterpret_cast<float*>(p);
  p += align16(sizeof(float) * N);
  w.s2 = reinterpret_cast<float*>(p);
  return w;
}

// One block: warps take centres in turn; lanes stride over D.
template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    center_stats_kernel(const T* c, int64_t K, int64_t D, float* cnf, double* cmax) {
  __shared__ double wmax[kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  double m = 0.0;
  for (int64_t k = warp; k < K; k += kWarps) {
    double acc = 0.0;
    for (int64_t d = lane; d < D; d += 32) {
      double t = to_double(c[k * D + d]);
      acc += t * t;
    }
    acc = warp_sum(acc);
    if (lane == 0) cnf[k] = static_cast<float>(acc);
    // NaN must win the max: it makes the bound NaN and sends every row to the exact path.
    m = (acc > m || acc != acc) ? acc : m;
  }
  if (lane == 0) wmax[warp] = m;
  __syncthreads();
  if (threadIdx.x == 0) {
    double r = wmax[0];
    for (int w = 1; w < kWarps; ++w) r = (wmax[w] > r || wmax[w] != wmax[w]) ? wmax[w] : r;
    *cmax = r;
  }
}

// Loads the 4 values this thread stages of a (rows x kBK) tile starting at (r0, d0).
template <typename T>
__device__ __forceinline__ void load_stage(const T* src, int64_t r0, int64_t rows, int64_t d0,
                                           int64_t D, int lr, int lc, float (&v)[4]) {
  const int64_t r = r0 + lr;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int64_t d = d0 + lc + j;
    v[j] = (r < rows && d < D) ? to_float(src[r * D + d]) : 0.0f;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    scores_top2_kernel(const T* __restrict__ x, const T* __restrict__ c,
                       const float* __restrict__ cnf, int64_t N, int64_t D, int64_t K,
                       int32_t* __restrict__ k1_out, float* __restrict__ s1_out,
                       float* __restrict__ s2_out) {
  __shared__ __align__(16) float As[kBK][kBM];
  __shared__ __align__(16) float Bs[kBK][kBN];
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  // Staging: thread tid moves row tid/2, columns (tid%2)*4 .. +4 of each tile.
  const int lr = tid >> 1, lc = (tid & 1) * 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kBM;

  float s1[kTM], s2[kTM];
  int32_t k1[kTM];
#pragma unroll
  for (int i = 0; i < kTM; ++i) {
    s1[i] = __int_as_float(0x7f800000);
    s2[i] = s1[i];
    k1[i] = -1;
  }

  for (int64_t n0 = 0; n0 < K; n0 += kBN) {
    float acc[kTM][kTN];
#pragma unroll
    for (int i = 0; i < kTM; ++i)
#pragma unroll
      for (int j = 0; j < kTN; ++j) acc[i][j] = 0.0f;

    float xa[4], cb[4];
    load_stage(x, row0, N, 0, D, lr, lc, xa);
    load_stage(c, n0, K, 0, D, lr, lc, cb);
    for (int64_t d0 = 0; d0 < D; d0 += kBK) {
      __syncthreads();  // the previous stage has been consumed
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        As[lc + j][lr] = xa[j];
        Bs[lc + j][lr] = cb[j];
      }
      __syncthreads();
      if (d0 + kBK < D) {  // prefetch the next stage while this one is multiplied
        load_stage(x, row0, N, d0 + kBK, D, lr, lc, xa);
        load_stage(c, n0, K, d0 + kBK, D, lr, lc, cb);
      }
#pragma unroll
      for (int kk = 0; kk < kBK; ++kk) {
        float a[kTM], b[kTN];
        const float4 a0 = *reinterpret_cast<const float4*>(&As[kk][ty * kTM]);
        const float4 a1 = *reinterpret_cast<const float4*>(&As[kk][ty * kTM + 4]);
        const float4 b0 = *reinterpret_cast<const float4*>(&Bs[kk][tx * kTN]);
        const float4 b1 = *reinterpret_cast<const float4*>(&Bs[kk][tx * kTN + 4]);
        a[0] = a0.x; a[1] = a0.y; a[2] = a0.z; a[3] = a0.w;
        a[4] = a1.x; a[5] = a1.y; a[6] = a1.z; a[7] = a1.w;
        b[0] = b0.x; b[1] = b0.y; b[2] = b0.z; b[3] = b0.w;
        b[4] = b1.x; b[5] = b1.y; b[6] = b1.z; b[7] = b1.w;
#pragma unroll
        for (int i = 0; i < kTM; ++i)
#pragma unroll
          for (int j = 0; j < kTN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
    }
#pragma unroll
    for (int j = 0; j < kTN; ++j) {
      const int64_t col = n0 + tx * kTN + j;
      if (col < K) {
        const float cn = cnf[col];
#pragma unroll
        for (int i = 0; i < kTM; ++i)
          top2_push(fmaf(-2.0f, acc[i][j], cn), static_cast<int32_t>(col), s1[i], k1[i], s2[i]);
      }
    }
  }
  // The 16 threads of a row group are 16 consecutive lanes of one warp.
#pragma unroll
  for (int i = 0; i < kTM; ++i) {
#pragma unroll
    for (int off = 8; off > 0; off >>= 1) {
      const float o1 = __shfl_xor_sync(0xffffffffu, s1[i], off, 16);
      const int32_t ok = __shfl_xor_sync(0xffffffffu, k1[i], off, 16);
      const float o2 = __shfl_xor_sync(0xffffffffu, s2[i], off, 16);
      top2_merge(o1, ok, o2, s1[i], k1[i], s2[i]);
    }
  }
  if (tx == 0) {
#pragma unroll
    for (int i = 0; i < kTM; ++i) {
      const int64_t row = row0 + ty * kTM + i;
      if (row < N) {
        k1_out[row] = k1[i];
        s1_out[row] = s1[i];
        s2_out[row] = s2[i];
      }
    }
  }
}

template <typename T, typename out_t>
__global__ void __launch_bounds__(kWarps * 32)
    refine_kernel(const T* __restrict__ x, const T* __restrict__ c, const double* cmax,
                  const int32_t* __restrict__ k1, const float* __restrict__ s1,
                  const float* __restrict__ s2, int64_t N, int64_t D, int64_t K,
                  int64_t* __restrict__ assign, out_t* __restrict__ dist2) {
  const int lane = threadIdx.x % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= N) return;
  const T* xr = x + row * D;
  int64_t best_k = -1;
  double best_d = 0.0;
  bool full = k1 == nullptr;  // float64: exact scan for every row
  if (!full) {
    const int64_t kb = k1[row];
    double xn = 0.0, db = 0.0;
    const T* cb = c + (kb < 0 ? 0 : kb) * D;
    for (int64_t d = lane; d < D; d += 32) {
      const double xv = to_double(xr[d]);
      const double t = xv - to_double(cb[d]);
      xn += xv * xv;
      db += t * t;
    }
    xn = warp_sum(xn);
    db = warp_sum(db);
    const double bound = score_error_bound(unit_roundoff<float>(), D, xn, *cmax);
    full = kb < 0 || needs_full_check(s1[row], s2[row], bound);
    if (!full) {
      best_k = kb;
      best_d = db;
    }
  }
  if (full) {
    for (int64_t k = 0; k < K; ++k) {
      const double dk = warp_dist2(xr, c + k * D, D, lane);
      if (better(dk, k, best_d, best_k)) {
        best_d = dk;
        best_k = k;
      }
    }
  }
  if (lane == 0) {
    assign[row] = best_k;
    dist2[row] = best_k < 0 ? static_cast<out_t>(__longlong_as_double(0x7ff8000000000000ll))
                            : static_cast<out_t>(best_d);
  }
}

int grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  // Grid-stride loops cover the rest; 2^16 blocks of 256 threads fill any current GPU.
  return static_cast<int>(blocks < 65536 ? (blocks < 1 ? 1 : blocks) : 65536);
}

template <typename T, typename acc_t>
__global__ void loss_backward_kernel(const acc_t* __restrict__ grad, const T* __restrict__ x,
                                     const T* __restrict__ c, const int64_t* __restrict__ assign,
                                     double beta_over_n, int64_t N, int64_t D,
                                     T* __restrict__ gx) {
  const acc_t g = grad[0] * static_cast<acc_t>(beta_over_n);
  const int64_t total = N * D;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / D, d = e - i * D;
    const int64_t k = assign[i];
    acc_t v;
    if (k < 0) {
      v = static_cast<acc_t>(__longlong_as_double(0x7ff8000000000000ll));
    } else {
      v = loss_grad<acc_t>(g, static_cast<acc_t>(to_double(x[e])),
                           static_cast<acc_t>(to_double(c[k * D + d])));
    }
    gx[e] = from_acc<T>(v);
  }
}

template <>
__global__ void loss_backward_kernel<double, double>(const double* __restrict__ grad,
                                                     const double* __restrict__ x,
                                                     const double* __restrict__ c,
                                                     const int64_t* __restrict__ assign,
                                                     double beta_over_n, int64_t N, int64_t D,
                                                     double* __restrict__ gx) {
  const double g = grad[0] * beta_over_n;
  const int64_t total = N * D;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / D, d = e - i * D;
    const int64_t k = assign[i];
    gx[e] = k < 0 ? __longlong_as_double(0x7ff8000000000000ll)
                  : loss_grad<double>(g, x[e], c[k * D + d]);
  }
}

template <typename T>
__global__ void accumulate_kernel(const T* __restrict__ x, const int64_t* __restrict__ assign,
                                  int64_t N, int64_t D, double* __restrict__ sums) {
  const int64_t total = N * D;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / D, d = e - i * D;
    const int64_t k = assign[i];
    if (k >= 0) atomicAdd(&sums[k * D + d], static_cast<double>(x[e]));
  }
}

// Rows per cluster (separate from the sums so that D = 0 still counts).
__global__ void count_kernel(const int64_t* __restrict__ assign, int64_t N,
                             unsigned long long* __restrict__ m) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < N;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (assign[i] >= 0) atomicAdd(&m[assign[i]], 1ull);
  }
}

template <typename T, typename count_t>
__global__ void apply_kernel(T* __restrict__ c, const count_t* __restrict__ n,
                             const double* __restrict__ sums,
                             const unsigned long long* __restrict__ m, int64_t K, int64_t D) {
  const int64_t total = K * D;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t k = e / D;
    if (m[k] == 0) continue;
    c[e] = static_cast<T>(updated_center(static_cast<double>(c[e]), static_cast<double>(n[k]),
                                         sums[e], static_cast<double>(m[k])));
  }
}

// Separate from apply_kernel: every element of row k reads n[k] before it changes.
template <typename count_t>
__global__ void counts_kernel(count_t* __restrict__ n, const unsigned long long* __restrict__ m,
                              int64_t K) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k < K) n[k] = static_cast<count_t>(n[k] + static_cast<count_t>(m[k]));
}

template <typename T>
cudaError_t assign_typed(const T* x, const T* c, int64_t N, int64_t D, int64_t K,
                         int64_t* assign, void* dist2, bool dist2_double, void* workspace,
                         cudaStream_t stream, bool gemm) {
  AssignWorkspace w = carve(workspace, N, K);
  center_stats_kernel<T><<<1, kWarps * 32, 0, stream>>>(c, K, D, w.cnf, w.cmax);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  if (gemm) {
    const int64_t blocks = (N + kBM - 1) / kBM;
    scores_top2_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        x, c, w.cnf, N, D, K, w.k1, w.s1, w.s2);
    err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  const unsigned rblocks = static_cast<unsigned>((N + kWarps - 1) / kWarps);
  const int32_t* k1 = gemm ? w.k1 : nullptr;
  if (dist2_double) {
    refine_kernel<T, double><<<rblocks, kWarps * 32, 0, stream>>>(
        x, c, w.cmax, k1, w.s1, w.s2, N, D, K, assign, static_cast<double*>(dist2));
  } else {
    refine_kernel<T, float><<<rblocks, kWarps * 32, 0, stream>>>(
        x, c, w.cmax, k1, w.s1, w.s2, N, D, K, assign, static_cast<float*>(dist2));
  }
  return cudaGetLastError();
}

template <typename T, typename count_t>
cudaError_t update_typed(T* c, count_t* n, const T* x, const int64_t* assign, int64_t N,
                         int64_t D, int64_t K, void* workspace, cudaStream_t stream) {
  double* sums = static_cast<double*>(workspace);
  unsigned long long* m = reinterpret_cast<unsigned long long*>(
      static_cast<char*>(workspace) + align16(sizeof(double) * K * D));
  cudaError_t err = cudaMemsetAsync(workspace, 0, update_workspace_bytes(K, D), stream);
  if (err != cudaSuccess) return err;
  if (N <= 0) return cudaSuccess;
  count_kernel<<<grid_for(N, 256), 256, 0, stream>>>(assign, N, m);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  if (D > 0) {
    accumulate_kernel<T><<<grid_for(N * D, 256), 256, 0, stream>>>(x, assign, N, D, sums);
    err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  if (K * D > 0) {
    apply_kernel<T, count_t><<<grid_for(K * D, 256), 256, 0, stream>>>(c, n, sums, m, K, D);
    err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  counts_kernel<count_t><<<static_cast<unsigned>((K + 255) / 256), 256, 0, stream>>>(n, m, K);
  return cudaGetLastError();
}

template <typename T>
cudaError_t update_counts_dispatch(T* c, CountType ct, void* n, const T* x, const int64_t* a,
                                   int64_t N, int64_t D, int64_t K, void* ws, cudaStream_t s) {
  switch (ct) {
    case CountType::kFloat: return update_typed(c, static_cast<float*>(n), x, a, N, D, K, ws, s);
    case CountType::kDouble: return update_typed(c, static_cast<double*>(n), x, a, N, D, K, ws, s);
    case CountType::kLong: return update_typed(c, static_cast<int64_t*>(n), x, a, N, D, K, ws, s);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

size_t assign_workspace_bytes(int64_t N, int64_t K) {
  return align16(sizeof(float) * K) + align16(sizeof(double)) + align16(sizeof(int32_t) * N) +
         align16(sizeof(float) * N) + align16(sizeof(float) * N);
}

cudaError_t launch_assign(DType dtype, const void* x, const void* centers, int64_t N, int64_t D,
                          int64_t K, int64_t* assign, void* dist2, bool dist2_double,
                          void* workspace, cudaStream_t stream) {
  if (N <= 0) return cudaSuccess;
  if (K <= 0 || D < 0) return cudaErrorInvalidValue;
  switch (dtype) {
    case DType::kFloat:
      return assign_typed(static_cast<const float*>(x), static_cast<const float*>(centers), N, D,
                          K, assign, dist2, dist2_double, workspace, stream, true);
    case DType::kDouble:
      return assign_typed(static_cast<const double*>(x), static_cast<const double*>(centers), N,
                          D, K, assign, dist2, dist2_double, workspace, stream, false);
    case DType::kHalf:
      return assign_typed(static_cast<const __half*>(x), static_cast<const __half*>(centers), N,
                          D, K, assign, dist2, dist2_double, workspace, stream, true);
    case DType::kBFloat16:
      return assign_typed(static_cast<const __nv_bfloat16*>(x),
                          static_cast<const __nv_bfloat16*>(centers), N, D, K, assign, dist2,
                          dist2_double, workspace, stream, true);
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_loss_backward(DType dtype, const void* grad, const void* x,
                                 const void* centers, const int64_t* assign, double beta,
                                 int64_t N, int64_t D, void* gx, cudaStream_t stream) {
  if (N <= 0 || D <= 0) return cudaSuccess;
  const double bn = beta / static_cast<double>(N);
  const int grid = grid_for(N * D, 256);
  switch (dtype) {
    case DType::kFloat:
      loss_backward_kernel<float, float><<<grid, 256, 0, stream>>>(
          static_cast<const float*>(grad), static_cast<const float*>(x),
          static_cast<const float*>(centers), assign, bn, N, D, static_cast<float*>(gx));
      break;
    case DType::kDouble:
      loss_backward_kernel<double, double><<<grid, 256, 0, stream>>>(
          static_cast<const double*>(grad), static_cast<const double*>(x),
          static_cast<const double*>(centers), assign, bn, N, D, static_cast<double*>(gx));
      break;
    case DType::kHalf:
      loss_backward_kernel<__half, float><<<grid, 256, 0, stream>>>(
          static_cast<const float*>(grad), static_cast<const __half*>(x),
          static_cast<const __half*>(centers), assign, bn, N, D, static_cast<__half*>(gx));
      break;
    case DType::kBFloat16:
      loss_backward_kernel<__nv_bfloat16, float><<<grid, 256, 0, stream>>>(
          static_cast<const float*>(grad), static_cast<const __nv_bfloat16*>(x),
          static_cast<const __nv_bfloat16*>(centers), assign, bn, N, D,
          static_cast<__nv_bfloat16*>(gx));
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

size_t update_workspace_bytes(int64_t K, int64_t D) {
  return align16(sizeof(double) * K * D) + align16(sizeof(unsigned long long) * K);
}

cudaError_t launch_update_centers(DType dtype, void* centers, CountType count_type, void* counts,
                                  const void* x, const int64_t* assign, int64_t N, int64_t D,
                                  int64_t K, void* workspace, cudaStream_t stream) {
  if (K <= 0) return cudaErrorInvalidValue;
  switch (dtype) {
    case DType::kFloat:
      return update_counts_dispatch(static_cast<float*>(centers), count_type, counts,
                                    static_cast<const float*>(x), assign, N, D, K, workspace,
                                    stream);
    case DType::kDouble:
      return update_counts_dispatch(static_cast<double*>(centers), count_type, counts,
                                    static_cast<const double*>(x), assign, N, D, K, workspace,
                                    stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace cluster
}  // namespace claus
