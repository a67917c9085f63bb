// Clustering kernels on CUDA, torch-free (raw pointers, sizes, a stream).
//
// Assignment runs in three kernels (numerics in cluster_math.h):
//   1. center_stats: ||c_k||^2 per centre (fp64, stored as fp32 for the scores) and the largest
//      one, for the error bound;
//   2. scores_top2: a tiled fp32 SIMT GEMM of x against the centres. Block = 128 rows x kBN
//      centres, kBN = 128, 64 or 32 (the narrowest tile holding K, so K = 64 does not multiply
//      half-empty tiles), 256 threads with 8 x kBN/16 outputs each. Stages of 8 along D go
//      through double-buffered, k-major, padded shared tiles (one barrier per stage, the next
//      stage's global loads in flight during this one's FMAs, transposed stores and float4
//      fragment loads both free of bank conflicts); __launch_bounds__(256, 2) keeps two blocks
//      per SM to hide latency, which is why a row's running top-2 lives in shared memory, not
//      registers. Per centre tile the epilogue turns dot products into scores
//      ||c_k||^2 - 2 x.c_k and merges them into each row's two smallest scores and best index
//      (per thread, then 8-lane butterfly, then across the 2 centre warps in shared memory:
//      fixed order, deterministic); the block loops over all centre tiles, so no partial result
//      leaves the chip. The D sum is one sequential fma chain per output, as the error bound
//      assumes. float16/bfloat16 are widened to fp32 on load (products of such values are exact
//      in fp32); fp32/fp16/bf16 rows with D % 4 == 0 and aligned bases use vector loads;
//   3. refine: 8 lanes per row (4 rows per warp), 16-byte loads where rows are aligned
//      (D % 4 == 0), take the exact fp64 distance to the best centre and the row's squared norm
//      in one pass over x; a row whose top-2 gap is within the error bound, or whose arithmetic
//      overflowed, scans every centre with the exact formula, 4 centres per step (loads and
//      8-lane sums of several centres in flight; the scan is warp-uniform, so the shuffles
//      always have the whole warp). float64 input and K <= 8 skip kernel 2 and take this exact
//      scan for every row (fp64 on a GPU is for checks, not speed; a few centres cost less
//      exactly than a mostly empty GEMM tile and a third kernel).
// The GEMM reads each centre tile from L2 once per 128 rows and x once per centre tile.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "cluster_kernel.h"
#include "cluster_math.h"

namespace claus {
namespace cluster {
namespace {

// Scoring GEMM tiles (see scores_top2_kernel).
constexpr int kBM = 128;      // rows per block
constexpr int kBK = 8;        // D per shared-memory stage
constexpr int kTM = 8;        // rows per thread
constexpr int kThreads = 256;  // 8 warps: 4 along rows x 2 along centres
constexpr int kPad = 4;       // shared row padding: transposed stores hit 32 distinct banks
// K at or below this takes the exact fp64 scan for every row (no GEMM): a handful of centres
// costs less exactly than a mostly empty GEMM tile plus a third launch.
constexpr int64_t kExactMaxK = 8;
constexpr int kWarps = 8;  // warps per block in the warp-per-row kernels
constexpr int kRefineGroup = 8;  // lanes per row in refine (4 rows per warp)
constexpr int kRefineC = 4;      // centres per step of refine's exact scan

__device__ __forceinline__ float to_float(float v) { return v; }
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

// Converts 4 consecutive elements at p (4-element aligned) to fp32 with one vector load.
__device__ __forceinline__ void load4(const float* p, float (&v)[4]) {
  const float4 t = *reinterpret_cast<const float4*>(p);
  v[0] = t.x;
  v[1] = t.y;
  v[2] = t.z;
  v[3] = t.w;
}
__device__ __forceinline__ void load4(const __half* p, float (&v)[4]) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  const float2 lo = __half22float2(*reinterpret_cast<const __half2*>(&u.x));
  const float2 hi = __half22float2(*reinterpret_cast<const __half2*>(&u.y));
  v[0] = lo.x;
  v[1] = lo.y;
  v[2] = hi.x;
  v[3] = hi.y;
}
__device__ __forceinline__ void load4(const __nv_bfloat16* p, float (&v)[4]) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.x));
  const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.y));
  v[0] = lo.x;
  v[1] = lo.y;
  v[2] = hi.x;
  v[3] = hi.y;
}

// Loads the 4 values this thread stages of one kBK stage: p points at element lc of the
// thread's staging row (valid only when `in`, the row exists), d = d0 + lc is the column of p[0];
// zero outside the matrix. kVec (D % 4 == 0, base 4-element aligned): the 4 values are in or out
// together and come in one vector load.
template <typename T, bool kVec>
__device__ __forceinline__ void load_stage(const T* __restrict__ p, bool in, int d, int D,
                                           float (&v)[4]) {
  if (kVec) {
    if (in && d < D) {
      load4(p, v);
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) v[j] = 0.0f;
    }
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = (in && d + j < D) ? to_float(p[j]) : 0.0f;
  }
}

// kN consecutive floats of shared memory (aligned to kN floats) into registers.
template <int kN>
__device__ __forceinline__ void lds(const float* p, float* v) {
  if constexpr (kN == 4) {
    const float4 t = *reinterpret_cast<const float4*>(p);
    v[0] = t.x;
    v[1] = t.y;
    v[2] = t.z;
    v[3] = t.w;
  } else if constexpr (kN == 2) {
    const float2 t = *reinterpret_cast<const float2*>(p);
    v[0] = t.x;
    v[1] = t.y;
  } else {
    v[0] = p[0];
  }
}

// Scores of a 128-row block against every centre, kept as a per-row top-2 (see the header).
// Block tile 128 rows x kBN = 16 kTN centres; warps 4 (rows) x 2 (centres), each 32 x 8 kTN;
// lanes 4 (rows) x 8 (centres), each 8 rows {4 tm .. +3, 16 + 4 tm .. +3} x kTN centres in two
// halves of kTN / 2 (so a warp's fragment loads are a few contiguous broadcast vectors: no bank
// conflicts). Shared tiles are k-major (A transposed while staging), double-buffered: one
// __syncthreads per kBK step, the next step's global loads in flight during this one's FMAs.
// __launch_bounds__(256, 2): two blocks per SM (<= 128 registers) to hide load and barrier
// latency. The top-2 state of a row lives in the registers of thread tid = row (3 registers)
// rather than 3 x 8 in every thread, which is what makes the 128-register budget.
template <typename T, int kTN, bool kVec>
__global__ void __launch_bounds__(kThreads, 2)
    scores_top2_kernel(const T* __restrict__ x, const T* __restrict__ c,
                       const float* __restrict__ cnf, int64_t N, int64_t D, int64_t K,
                       int32_t* __restrict__ k1_out, float* __restrict__ s1_out,
                       float* __restrict__ s2_out) {
  constexpr int kHalf = kTN / 2;  // centres per thread in each half of the warp tile
  constexpr int kWN = 8 * kTN;    // centres per warp
  constexpr int kBN = 2 * kWN;    // centres per block tile
  __shared__ __align__(16) float As[2][kBK][kBM + kPad];
  __shared__ __align__(16) float Bs[2][kBK][kBN + kPad];
  __shared__ float red_s1[2][kBM], red_s2[2][kBM];
  __shared__ int32_t red_k1[2][kBM];
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int wm = warp / 2, wn = warp % 2;
  const int tm = lane / 8, tn = lane % 8;
  const int am = wm * 32 + tm * 4;        // first row of this thread in the block tile
  const int bn = wn * kWN + tn * kHalf;   // first centre of this thread in the block tile
  // Staging: thread tid moves row tid / 2, columns (tid % 2) * 4 .. +3 of each stage; only the
  // first 2 kBN threads stage centres.
  const int lr = tid >> 1, lc = (tid & 1) * 4;
  const bool stages_c = lr < kBN;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kBM;
  const int Di = static_cast<int>(D);                // the host keeps D < 2^30 here
  const int nk = Di > 0 ? (Di + kBK - 1) / kBK : 1;  // D = 0: one all-zero stage
  const T* xs = x + (row0 + lr) * D + lc;            // this thread's staging row of x
  const bool x_in = row0 + lr < N;

  // Running top-2 of row row0 + tid over the centre tiles done so far, touched only by thread
  // tid < kBM (shared memory, not registers: the GEMM needs all 128 of those).
  __shared__ float st_s1[kBM], st_s2[kBM];
  __shared__ int32_t st_k1[kBM];
  if (tid < kBM) {
    st_s1[tid] = __int_as_float(0x7f800000);
    st_s2[tid] = st_s1[tid];
    st_k1[tid] = -1;
  }

  for (int64_t n0 = 0; n0 < K; n0 += kBN) {
    float acc[kTM][kTN];
#pragma unroll
    for (int i = 0; i < kTM; ++i)
#pragma unroll
      for (int j = 0; j < kTN; ++j) acc[i][j] = 0.0f;

    // Stage 0 into buffer 0. Safe: the last barrier of the previous tile's loop (and the one
    // before its top-2 merge) follow every read of the buffers and of red_*.
    float xa[4], cb[4];
    const T* cs = c + (n0 + lr) * D + lc;  // this thread's staging row of the centres
    const bool c_in = stages_c && n0 + lr < K;
    load_stage<T, kVec>(xs, x_in, lc, Di, xa);
    if (stages_c) load_stage<T, kVec>(cs, c_in, lc, Di, cb);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      As[0][lc + j][lr] = xa[j];
      if (stages_c) Bs[0][lc + j][lr] = cb[j];
    }
    __syncthreads();

    for (int t = 0; t < nk; ++t) {
      const int buf = t & 1;
      const bool more = t + 1 < nk;
      if (more) {  // next stage's loads in flight during this stage's FMAs
        const int d0 = (t + 1) * kBK;
        load_stage<T, kVec>(xs + d0, x_in, d0 + lc, Di, xa);
        if (stages_c) load_stage<T, kVec>(cs + d0, c_in, d0 + lc, Di, cb);
      }
#pragma unroll
      for (int kk = 0; kk < kBK; ++kk) {
        float a[kTM], b[kTN];
        lds<4>(&As[buf][kk][am], a);
        lds<4>(&As[buf][kk][am + 16], a + 4);
        lds<kHalf>(&Bs[buf][kk][bn], b);
        lds<kHalf>(&Bs[buf][kk][bn + 8 * kHalf], b + kHalf);
#pragma unroll
        for (int i = 0; i < kTM; ++i)
#pragma unroll
          for (int j = 0; j < kTN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
      if (more) {  // the other buffer was last read before the previous barrier
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          As[buf ^ 1][lc + j][lr] = xa[j];
          if (stages_c) Bs[buf ^ 1][lc + j][lr] = cb[j];
        }
      }
      __syncthreads();
    }

    // Epilogue: scores ||c||^2 - 2 x.c, top-2 per row over this thread's centres (ascending
    // index), then over the warp's 8 lanes of a row group (butterfly: every lane ends with the
    // same result), then the two warps of a row meet in shared memory.
    // Scores in place, one centre norm live at a time (registers are at the limit here).
#pragma unroll
    for (int j = 0; j < kTN; ++j) {
      const int64_t cl = n0 + bn + (j / kHalf) * 8 * kHalf + j % kHalf;
      const float cn = cl < K ? cnf[cl] : 0.0f;
#pragma unroll
      for (int i = 0; i < kTM; ++i) acc[i][j] = fmaf(-2.0f, acc[i][j], cn);
    }
    const int64_t col0 = n0 + bn;
#pragma unroll
    for (int i = 0; i < kTM; ++i) {
      float s1 = __int_as_float(0x7f800000), s2 = s1;
      int32_t k1 = -1;
#pragma unroll
      for (int j = 0; j < kTN; ++j) {
        const int64_t cl = col0 + (j / kHalf) * 8 * kHalf + j % kHalf;
        if (cl < K) top2_push(acc[i][j], static_cast<int32_t>(cl), s1, k1, s2);
      }
#pragma unroll
      for (int off = 1; off < 8; off <<= 1) {
        const float o1 = __shfl_xor_sync(0xffffffffu, s1, off);
        const int32_t ok = __shfl_xor_sync(0xffffffffu, k1, off);
        const float o2 = __shfl_xor_sync(0xffffffffu, s2, off);
        top2_merge(o1, ok, o2, s1, k1, s2);
      }
      if (tn == 0) {
        const int m = am + (i % 4) + (i / 4) * 16;
        red_s1[wn][m] = s1;
        red_k1[wn][m] = k1;
        red_s2[wn][m] = s2;
      }
    }
    __syncthreads();
    if (tid < kBM) {  // fixed order: centre half 0, then half 1
      float st1 = st_s1[tid], st2 = st_s2[tid];
      int32_t stk = st_k1[tid];
      top2_merge(red_s1[0][tid], red_k1[0][tid], red_s2[0][tid], st1, stk, st2);
      top2_merge(red_s1[1][tid], red_k1[1][tid], red_s2[1][tid], st1, stk, st2);
      st_s1[tid] = st1;
      st_s2[tid] = st2;
      st_k1[tid] = stk;
    }
  }
  if (tid < kBM) {
    const int64_t row = row0 + tid;
    if (row < N) {
      k1_out[row] = st_k1[tid];
      s1_out[row] = st_s1[tid];
      s2_out[row] = st_s2[tid];
    }
  }
}

// Sum over the kRefineGroup lanes of a row group (fixed xor butterfly inside the group, the same
// order on every run and for every centre). Every lane of the warp must call it.
__device__ __forceinline__ double group_sum(double v) {
#pragma unroll
  for (int off = kRefineGroup / 2; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// This lane's share (lane g of its row group) of the exact fp64 ||x - c_k||^2 for the kC centres
// k0 .. k0 + kC - 1 (those >= K give 0), summed over the group. kVec (D % 4 == 0, rows 4-element
// aligned): lane g takes the 4-element vectors g, g + 8, ... (a group reads 8 consecutive
// vectors per step, coalesced); otherwise elements g, g + 8, ... Every lane of the warp must
// call it with the same k0 (the group sums shuffle across the whole warp).
template <typename T, bool kVec, int kC>
__device__ __forceinline__ void group_dist2(const T* __restrict__ xr, const T* __restrict__ c,
                                            int64_t k0, int64_t K, int64_t D, int g,
                                            double (&acc)[kC]) {
#pragma unroll
  for (int j = 0; j < kC; ++j) acc[j] = 0.0;
  if constexpr (kVec) {
    for (int64_t d = 4 * g; d < D; d += 4 * kRefineGroup) {
      float xv[4];
      load4(xr + d, xv);
#pragma unroll
      for (int j = 0; j < kC; ++j) {
        if (k0 + j < K) {
          float cv[4];
          load4(c + (k0 + j) * D + d, cv);
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const double t = static_cast<double>(xv[e]) - static_cast<double>(cv[e]);
            acc[j] = fma(t, t, acc[j]);
          }
        }
      }
    }
  } else {
    for (int64_t d = g; d < D; d += kRefineGroup) {
      const double xv = to_double(xr[d]);
#pragma unroll
      for (int j = 0; j < kC; ++j) {
        if (k0 + j < K) {
          const double t = xv - to_double(c[(k0 + j) * D + d]);
          acc[j] = fma(t, t, acc[j]);
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kC; ++j) acc[j] = group_sum(acc[j]);
}

// This lane's share of ||x||^2 and ||x - c||^2 (one pass over the row), summed over the group.
template <typename T, bool kVec>
__device__ __forceinline__ void group_norm_dist2(const T* __restrict__ xr,
                                                 const T* __restrict__ cr, int64_t D, int g,
                                                 double& xn, double& db) {
  xn = 0.0;
  db = 0.0;
  if constexpr (kVec) {
#pragma unroll 4
    for (int64_t d = 4 * g; d < D; d += 4 * kRefineGroup) {
      float xv[4], cv[4];
      load4(xr + d, xv);
      load4(cr + d, cv);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const double xe = static_cast<double>(xv[e]);
        const double t = xe - static_cast<double>(cv[e]);
        xn = fma(xe, xe, xn);
        db = fma(t, t, db);
      }
    }
  } else {
#pragma unroll 4
    for (int64_t d = g; d < D; d += kRefineGroup) {
      const double xe = to_double(xr[d]);
      const double t = xe - to_double(cr[d]);
      xn = fma(xe, xe, xn);
      db = fma(t, t, db);
    }
  }
  xn = group_sum(xn);
  db = group_sum(db);
}

// kRefineGroup = 8 lanes per row, 4 rows per warp, 16-byte loads where rows are aligned (kVec).
// A row takes the exact fp64 distance to its approximate best centre and its squared norm; a row
// whose top-2 gap is within the error bound (or whose arithmetic overflowed, or every row when
// k1 == nullptr) scans every centre exactly, kRefineC centres per step so that several loads and
// group sums are in flight. The scan is warp-uniform (any row of the warp needs it: all four
// groups run it, only the rows that need it use the result), so the group shuffles always have
// the whole warp; rows past N compute on row N - 1 and store nothing.
template <typename T, typename out_t, bool kVec>
__global__ void __launch_bounds__(kWarps * 32)
    refine_kernel(const T* __restrict__ x, const T* __restrict__ c, const double* cmax,
                  const int32_t* __restrict__ k1, const float* __restrict__ s1,
                  const float* __restrict__ s2, int64_t N, int64_t D, int64_t K,
                  int64_t* __restrict__ assign, out_t* __restrict__ dist2) {
  constexpr int kRows = 32 / kRefineGroup;  // rows per warp
  const int lane = threadIdx.x % 32, g = lane % kRefineGroup;
  const int64_t row0 =
      (static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32) * kRows;
  if (row0 >= N) return;  // whole warp
  const int64_t row_l = row0 + lane / kRefineGroup;
  const bool live = row_l < N;
  const int64_t row = live ? row_l : N - 1;
  const T* xr = x + row * D;
  int64_t best_k = -1;
  double best_d = 0.0;
  bool full = k1 == nullptr;  // float64 and K <= kExactMaxK: exact scan for every row
  if (!full) {
    const int64_t kb = k1[row];
    const float a1 = s1[row], a2 = s2[row];
    double xn, db;
    group_norm_dist2<T, kVec>(xr, c + (kb < 0 ? 0 : kb) * D, D, g, xn, db);
    const double bound = score_error_bound(unit_roundoff<float>(), D, xn, *cmax);
    full = kb < 0 || needs_full_check(a1, a2, bound) ||
           !scores_in_range<float>(xn + 2.0 * *cmax);
    if (!full) {
      best_k = kb;
      best_d = db;
    }
  }
  if (__any_sync(0xffffffffu, full)) {
    for (int64_t k0 = 0; k0 < K; k0 += kRefineC) {
      double dk[kRefineC];
      group_dist2<T, kVec, kRefineC>(xr, c, k0, K, D, g, dk);
      if (full) {
#pragma unroll
        for (int j = 0; j < kRefineC; ++j) {
          if (k0 + j < K && better(dk[j], k0 + j, best_d, best_k)) {
            best_d = dk[j];
            best_k = k0 + j;
          }
        }
      }
    }
  }
  if (g == 0 && live) {
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

// Launches the scoring kernel with the narrowest centre tile that covers K in one tile (up to
// 128), so small K does not multiply mostly zero columns; vector loads where rows are aligned.
template <typename T, int kTN>
void launch_scores(const T* x, const T* c, const float* cnf, int64_t N, int64_t D, int64_t K,
                   int32_t* k1, float* s1, float* s2, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((N + kBM - 1) / kBM);
  const uintptr_t align = 4 * sizeof(T) - 1;
  const bool vec = D % 4 == 0 && (reinterpret_cast<uintptr_t>(x) & align) == 0 &&
                   (reinterpret_cast<uintptr_t>(c) & align) == 0;
  if (vec) {
    scores_top2_kernel<T, kTN, true><<<blocks, kThreads, 0, stream>>>(x, c, cnf, N, D, K, k1, s1,
                                                                      s2);
  } else {
    scores_top2_kernel<T, kTN, false><<<blocks, kThreads, 0, stream>>>(x, c, cnf, N, D, K, k1,
                                                                       s1, s2);
  }
}

// Refine with 16-byte loads where `vec` (never for float64, which has no vector path).
template <typename T, typename out_t>
void launch_refine(bool vec, unsigned blocks, const T* x, const T* c, const AssignWorkspace& w,
                   const int32_t* k1, int64_t N, int64_t D, int64_t K, int64_t* assign,
                   out_t* out, cudaStream_t stream) {
  if constexpr (!std::is_same<T, double>::value) {
    if (vec) {
      refine_kernel<T, out_t, true><<<blocks, kWarps * 32, 0, stream>>>(
          x, c, w.cmax, k1, w.s1, w.s2, N, D, K, assign, out);
      return;
    }
  }
  refine_kernel<T, out_t, false><<<blocks, kWarps * 32, 0, stream>>>(
      x, c, w.cmax, k1, w.s1, w.s2, N, D, K, assign, out);
}

template <typename T>
cudaError_t assign_typed(const T* x, const T* c, int64_t N, int64_t D, int64_t K,
                         int64_t* assign, void* dist2, bool dist2_double, void* workspace,
                         cudaStream_t stream) {
  AssignWorkspace w = carve(workspace, N, K);
  center_stats_kernel<T><<<1, kWarps * 32, 0, stream>>>(c, K, D, w.cnf, w.cmax);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  // float64 (fp64 on a GPU is for checks, not speed) and tiny K: exact scan of every row.
  bool gemm = false;
  if constexpr (!std::is_same<T, double>::value) {
    gemm = K > kExactMaxK && D < (int64_t{1} << 30);  // 32-bit column arithmetic
    if (gemm) {
      if (K <= 32) {
        launch_scores<T, 2>(x, c, w.cnf, N, D, K, w.k1, w.s1, w.s2, stream);
      } else if (K <= 64) {
        launch_scores<T, 4>(x, c, w.cnf, N, D, K, w.k1, w.s1, w.s2, stream);
      } else {
        launch_scores<T, 8>(x, c, w.cnf, N, D, K, w.k1, w.s1, w.s2, stream);
      }
      err = cudaGetLastError();
      if (err != cudaSuccess) return err;
    }
  }
  const int64_t rows_per_block = kWarps * (32 / kRefineGroup);
  const unsigned rblocks = static_cast<unsigned>((N + rows_per_block - 1) / rows_per_block);
  const int32_t* k1 = gemm ? w.k1 : nullptr;
  bool vec = false;  // 16-byte loads in refine: D % 4 == 0 and 4-element aligned rows
  if constexpr (!std::is_same<T, double>::value) {
    const uintptr_t align = 4 * sizeof(T) - 1;
    vec = D % 4 == 0 && (reinterpret_cast<uintptr_t>(x) & align) == 0 &&
          (reinterpret_cast<uintptr_t>(c) & align) == 0;
  }
  if (dist2_double) {
    launch_refine<T, double>(vec, rblocks, x, c, w, k1, N, D, K, assign,
                             static_cast<double*>(dist2), stream);
  } else {
    launch_refine<T, float>(vec, rblocks, x, c, w, k1, N, D, K, assign,
                            static_cast<float*>(dist2), stream);
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
                          K, assign, dist2, dist2_double, workspace, stream);
    case DType::kDouble:
      return assign_typed(static_cast<const double*>(x), static_cast<const double*>(centers), N,
                          D, K, assign, dist2, dist2_double, workspace, stream);
    case DType::kHalf:
      return assign_typed(static_cast<const __half*>(x), static_cast<const __half*>(centers), N,
                          D, K, assign, dist2, dist2_double, workspace, stream);
    case DType::kBFloat16:
      return assign_typed(static_cast<const __nv_bfloat16*>(x),
                          static_cast<const __nv_bfloat16*>(centers), N, D, K, assign, dist2,
                          dist2_double, workspace, stream);
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
