// frame_uncertainty on CUDA: per-frame sums of R MC-dropout passes, one read of the logits.
//
// Decomposition. Pixels are grouped in packs of VEC = 4 (one 16-byte load per pass for fp32, 8
// bytes for fp16/bf16; VEC = 1 on the scalar path, taken when HW % 4 != 0 or the logits are not
// aligned to a pack). Since HW % VEC == 0, no pack straddles two frames, and the packs of all
// frames of one pass are contiguous: pack g of pass r lies at (r * frames * HW / VEC + g) packs.
// The P = frames * HW / VEC packs are cut into S contiguous, equal ranges (sizes differ by at most
// one pack), one per block, regardless of frame boundaries; so every block does the same work and
// no block runs a ragged tail of a frame. S is a whole number of waves (SMs x kMinBlocks resident
// blocks) and at least `frames`: a range then holds at most ppf = HW / VEC packs and touches at
// most two frames, so each thread keeps two sets of sums (the block's first frame and the next
// one), picked per pack by a comparison. With frames <= one wave (the usual case, e.g. 128 frames
// on 132 SMs) the grid is exactly one wave, every block resident from the start.
//
// Each thread owns one pack at a time, issues the loads of a batch of kBatch passes before it
// uses any (kBatch loads in flight per thread), then folds them in. The block reduces
// its threads in a fixed tree and writes one partial per (block, frame) it touches, at slot
// block + frame (unique: the frames a block touches never decrease with the block).
// Finish, fused into the same launch (no second kernel: one launch less per call): after its
// partials, each block adds 1 to a counter per frame it touched (__threadfence first); the
// block that completes a frame's count (frames are covered by known block ranges) resets the
// counter to 0 and, with one warp, adds the partials of the frame's blocks in a fixed order
// (fp64, like the CPU kernel; read with ld.cg), so the sums stay deterministic run to run
// (they depend on the grid, so on the GPU model's SM count, not on timing). The counters come
// from the caller, all 0, and are left all 0 (the glue caches one set per device and stream).
// Without counters (the glue's path while a CUDA graph is captured) a second kernel, one warp
// per frame, does the same sums in the same order: bit-identical results.
//
// Per-logit arithmetic (a CUDA-only variant of scoring_math.h's accumulate_pass): the special
// function unit (16 results/clk/SM on an H100) would bound the kernel with the three MUFU ops
// per logit of accumulate_pass (exp, reciprocal, log). Here each logit costs one (ex2); the
// reciprocal and the log are taken once per batch of passes of a pixel:
//   with e_r = exp(-|z_r|), u_r = 1 + e_r, a_r = sigmoid(z_r) u_r (1 or e_r), b_r = u_r - a_r:
//   sum_r sigmoid(z_r) = Np / D, sum_r sigmoid(-z_r) = Nq / D, D = prod u_r,
//   Np = sum_r a_r prod_{s != r} u_s (and Nq alike), built as Np <- Np u + a D, D <- D u.
//   Every term is positive, so both sums keep their relative precision (no 1 - p cancellation);
//   D <= 2^kBatch cannot overflow.
//   sum_r softplus(-z_r) = sum_r max(-z_r, 0) + log D + sum_r (e_r - (u_r - 1)); the last sum
//   restores what rounding 1 + e_r lost (all of e_r when e_r < 2^-24, i.e. z near +-inf), as the
//   CPU kernel's log1p does.
// The rounding of the product adds at most kBatch ulps of D to log D (about 5e-7 absolute), the
// hardware ex2/lg2/rcp approximations about 2e-7 relative or absolute; the tests allow 1e-5 per
// pixel. Per-pixel terms multiply by 1/R (host-rounded) and use __logf: at most ~1 ulp apart
// from the CPU's division; only p̄ within an ulp of the threshold could flip.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "frame_uncertainty_kernel.h"

namespace claus {
namespace scoring {
namespace {

constexpr int kThreads = 256;
// Blocks per SM the grid is sized for; __launch_bounds__ caps the registers (64) so that they
// do fit. 1024 threads x kBatch 16-byte loads in flight per SM (128 KiB) is several times what
// an H100 needs to cover DRAM latency at full bandwidth (~25 KiB per SM).
constexpr int kMinBlocks = 4;
constexpr int kSums = 3;
constexpr int kFinishThreads = 256;  // 8 frames (warps) per finishing block
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ float ex2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float lg2_ftz(float x) {
  float y;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float rcp_ftz(float x) {
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Pixels per pack: 4, so one load per pass is 16 bytes (fp32) or 8 bytes (fp16/bf16). Four
// 16-bit pixels rather than eight keep a thread's per-pixel sums (3 per pixel, live across the
// batches) and a batch of loads within 64 registers.
constexpr int kVec = 4;

// 32-bit words of one pack: VEC * sizeof(T) / 4, or 1 on the scalar path (a 16-bit value
// zero-extended).
template <typename T, int VEC>
constexpr int kWords = VEC == 1 ? 1 : VEC * static_cast<int>(sizeof(T)) / 4;

// Passes folded per batch: the loads a thread has in flight, and the passes that share one
// reciprocal and one log.
constexpr int kBatch = 8;

template <typename T, int VEC>
__device__ __forceinline__ void load_pack(const T* p, unsigned (&w)[kWords<T, VEC>]) {
  // Streamed once: evict-first, so the logits do not push anything else out of L2.
  if constexpr (kWords<T, VEC> == 4) {
    const uint4 v = __ldcs(reinterpret_cast<const uint4*>(p));
    w[0] = v.x;
    w[1] = v.y;
    w[2] = v.z;
    w[3] = v.w;
  } else if constexpr (kWords<T, VEC> == 2) {
    const uint2 v = __ldcs(reinterpret_cast<const uint2*>(p));
    w[0] = v.x;
    w[1] = v.y;
  } else if constexpr (sizeof(T) == 4) {
    w[0] = __ldcs(reinterpret_cast<const unsigned*>(p));
  } else {
    w[0] = __ldcs(reinterpret_cast<const unsigned short*>(p));
  }
}

// Element j of a pack, as float (little endian: element 2k is the low half of word k).
template <typename T, int VEC>
__device__ __forceinline__ float element(const unsigned (&w)[kWords<T, VEC>], int j) {
  if constexpr (sizeof(T) == 4) {
    return __uint_as_float(w[j]);
  } else {
    const unsigned x = w[j / 2];
    const bool hi = (j & 1) != 0;
    if constexpr (std::is_same<T, __nv_bfloat16>::value) {
      return __uint_as_float(hi ? (x & 0xffff0000u) : (x << 16));
    } else {
      return __half2float(__ushort_as_half(static_cast<unsigned short>(hi ? x >> 16 : x)));
    }
  }
}

// Folds NB passes of each of the VEC pixels of a pack (w[k] = pass k) into the pixels' sums:
// sp += sum sigmoid(z), sq += sum sigmoid(-z), ss += sum softplus(-z) (mean_log only). See the
// header for the algebra; one ex2 per logit, one rcp (and one lg2) per pixel and batch.
template <typename T, int VEC, int NB, bool kMeanLog>
__device__ __forceinline__ void fold_batch(const unsigned (&w)[NB][kWords<T, VEC>], float (&sp)[VEC],
                                           float (&sq)[VEC], float (&ss)[VEC]) {
#pragma unroll
  for (int j = 0; j < VEC; ++j) {
    float D = 1.0f, Np = 0.0f, Nq = 0.0f, m = 0.0f, c = 0.0f;
#pragma unroll
    for (int k = 0; k < NB; ++k) {
      const float x = element<T, VEC>(w[k], j);
      const float e = ex2_ftz(fabsf(x) * -kLog2e);  // exp(-|x|); 0 below 2^-126, as on the CPU
      const float u = 1.0f + e;
      const bool pos = x >= 0.0f;  // false for NaN: NaN still reaches every sum through e
      const float a = pos ? 1.0f : e;
      const float b = pos ? e : 1.0f;
      if (k == 0) {
        D = u;
        Np = a;
        Nq = b;
      } else {
        Np = fmaf(a, D, Np * u);
        Nq = fmaf(b, D, Nq * u);
        D *= u;
      }
      if (kMeanLog) {
        m += fmaxf(-x, 0.0f);
        c += e - (u - 1.0f);  // exact (Sterbenz): the part of e that 1 + e rounded away
      }
    }
    const float inv = rcp_ftz(D);  // D in [1, 2^NB]
    sp[j] += Np * inv;
    sq[j] += Nq * inv;
    if (kMeanLog) ss[j] += (m + c) + kLn2 * lg2_ftz(D);
  }
}

// Loads passes [r, r + NB) of the pack at p (pass 0; passes rstride elements apart), all loads
// before any use, and folds them in.
template <typename T, int VEC, int NB, bool kMeanLog>
__device__ __forceinline__ void load_and_fold(const T* p, int64_t rstride, int r, float (&sp)[VEC],
                                              float (&sq)[VEC], float (&ss)[VEC]) {
  unsigned w[NB][kWords<T, VEC>];
  const T* q = p + static_cast<int64_t>(r) * rstride;
#pragma unroll
  for (int k = 0; k < NB; ++k) {
    load_pack<T, VEC>(q, w[k]);
    q += rstride;
  }
  fold_batch<T, VEC, NB, kMeanLog>(w, sp, sq, ss);
}

// The R % kBatch passes left after the full batches: batches of NB, NB/2, ..., 1, each at most
// once (R = 10 with kBatch = 8: 8, then 2).
template <typename T, int VEC, int NB, bool kMeanLog>
__device__ __forceinline__ void fold_tail(const T* p, int64_t rstride, int r, int R,
                                          float (&sp)[VEC], float (&sq)[VEC], float (&ss)[VEC]) {
  if constexpr (NB >= 1) {
    if (R - r >= NB) {
      load_and_fold<T, VEC, NB, kMeanLog>(p, rstride, r, sp, sq, ss);
      r += NB;
    }
    fold_tail<T, VEC, NB / 2, kMeanLog>(p, rstride, r, R, sp, sq, ss);
  }
}

// x log x with 0 log 0 = 0, for x in [0, 1] (a few ulps above 1 after rounding) or NaN.
__device__ __forceinline__ float xlogx_fast(float x) { return x == 0.0f ? 0.0f : x * __logf(x); }

// The first of the frame-range split: block b covers packs [range_begin(b), range_begin(b + 1)),
// the first `rem` blocks q + 1 packs, the others q (q >= 1).
__host__ __device__ __forceinline__ int64_t range_begin(int64_t b, int64_t q, int64_t rem) {
  return b * q + (b < rem ? b : rem);
}

// The block whose range holds pack g.
__device__ __forceinline__ int64_t block_of(int64_t g, int64_t q, int64_t rem) {
  const int64_t big = rem * (q + 1);
  return g < big ? g / (q + 1) : rem + (g - big) / q;
}

// One warp adds up frame f: lane i takes the partials of blocks b_lo + i, b_lo + i + 32, ... in
// fp64, then a xor tree across the lanes; lane 0 writes the result. Fixed order, so
// deterministic, and the same in the fused finish and in finish_kernel. The partials are read
// from L2 (ld.cg): in the fused finish other blocks wrote them during this launch.
__device__ __forceinline__ void finish_frame(const float* __restrict__ partial, int64_t f,
                                             int64_t ppf, int64_t q, int64_t rem, int lane,
                                             float* __restrict__ fg, float* __restrict__ unc,
                                             float* __restrict__ ent) {
  const int64_t b_lo = block_of(f * ppf, q, rem);
  const int64_t b_hi = block_of((f + 1) * ppf - 1, q, rem);
  double s0 = 0.0, s1 = 0.0, s2 = 0.0;
  for (int64_t b = b_lo + lane; b <= b_hi; b += 32) {
    const float* p = partial + (b + f) * kSums;
    s0 += __ldcg(p);
    s1 += __ldcg(p + 1);
    s2 += __ldcg(p + 2);
  }
  for (int o = 16; o > 0; o >>= 1) {
    s0 += __shfl_xor_sync(0xffffffffu, s0, o);
    s1 += __shfl_xor_sync(0xffffffffu, s1, o);
    s2 += __shfl_xor_sync(0xffffffffu, s2, o);
  }
  if (lane == 0) {
    fg[f] = static_cast<float>(s0);
    unc[f] = static_cast<float>(s1);
    ent[f] = static_cast<float>(s2);
  }
}

// Block b: packs [range_begin(b), range_begin(b + 1)), at most ppf of them, in frames f0 and
// possibly f0 + 1. Writes the partial sums of frame f0 at slot b + f0 and, if it reaches it,
// those of frame f0 + 1 at slot b + f0 + 1. With VEC > 1 the caller guarantees HW % VEC == 0
// and 16-byte aligned logits.
// Fused finish (counters != nullptr; counters[f] == 0 for f < frames on entry): after writing
// its partials, the block counts itself in on each frame it touched; the block that completes
// a frame's count sets the counter back to 0 and finishes the frame (finish_frame, warp 0 for
// f0, warp 1 for f0 + 1). With counters == nullptr finish_kernel does it in a second launch.
template <typename T, int VEC, bool kMeanLog>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    partial_kernel(const T* __restrict__ z, int R, int64_t packs, int64_t ppf, int64_t q,
                   int64_t rem, float fg_threshold, float inv_R, float* __restrict__ partial,
                   unsigned* __restrict__ counters, float* __restrict__ fg_out,
                   float* __restrict__ unc_out, float* __restrict__ ent_out) {
  constexpr int kB = kBatch;
  __shared__ float shm[2 * kSums][kThreads / 32];
  __shared__ int finishes[2];
  const int64_t b = blockIdx.x;
  const int64_t begin = range_begin(b, q, rem);
  const int64_t end = begin + q + (b < rem ? 1 : 0);
  const int64_t f0 = begin / ppf;
  const int64_t second_begin = (f0 + 1) * ppf;  // first pack of frame f0 + 1
  const int64_t rstride = packs * VEC;          // elements between passes
  float acc[2][kSums] = {};
  for (int64_t g = begin + threadIdx.x; g < end; g += kThreads) {
    const T* p = z + g * VEC;
    float sp[VEC], sq[VEC], ss[VEC];
#pragma unroll
    for (int j = 0; j < VEC; ++j) sp[j] = sq[j] = ss[j] = 0.0f;
    int r = 0;
    for (; R - r >= kB; r += kB) load_and_fold<T, VEC, kB, kMeanLog>(p, rstride, r, sp, sq, ss);
    fold_tail<T, VEC, kB / 2, kMeanLog>(p, rstride, r, R, sp, sq, ss);
    float tfg = 0.0f, tu = 0.0f, th = 0.0f;
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      const float pbar = sp[j] * inv_R;
      const float qbar = sq[j] * inv_R;
      const bool fg = pbar > fg_threshold;
      const float u = kMeanLog ? ss[j] * inv_R : -__logf(pbar);
      tfg += fg ? 1.0f : 0.0f;
      tu += fg ? u : 0.0f;  // a select: an infinite u of a background pixel stays out
      th -= xlogx_fast(pbar) + xlogx_fast(qbar);
    }
    const bool second = g >= second_begin;
    acc[0][0] += second ? 0.0f : tfg;
    acc[0][1] += second ? 0.0f : tu;
    acc[0][2] += second ? 0.0f : th;
    acc[1][0] += second ? tfg : 0.0f;
    acc[1][1] += second ? tu : 0.0f;
    acc[1][2] += second ? th : 0.0f;
  }
  // Fixed-shape block reduction: a xor tree within each warp, then warp 0's lane order.
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
  for (int s = 0; s < 2; ++s) {
#pragma unroll
    for (int k = 0; k < kSums; ++k) {
      float v = acc[s][k];
      for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
      if (lane == 0) shm[s * kSums + k][warp] = v;
    }
  }
  __syncthreads();
  const bool has_second = end - 1 >= second_begin;
  if (threadIdx.x < 2 * kSums) {
    const int i = threadIdx.x;  // (slot, sum) = (i / kSums, i % kSums)
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < kThreads / 32; ++w) v += shm[i][w];
    if (i < kSums) {
      partial[(b + f0) * kSums + i] = v;
    } else if (has_second) {
      partial[(b + f0 + 1) * kSums + (i - kSums)] = v;
    }
    __threadfence();  // the partials reach L2 before this block is counted in
  }
  if (counters == nullptr) return;  // the same for the whole block
  __syncthreads();
  if (threadIdx.x < 2) {
    const int s = threadIdx.x;  // frame f0 + s
    int last = 0;
    if (s == 0 || has_second) {
      const int64_t f = f0 + s;
      // Blocks touching frame f: each adds 1 to counters[f] exactly once.
      const int64_t n = block_of((f + 1) * ppf - 1, q, rem) - block_of(f * ppf, q, rem) + 1;
      const unsigned done = atomicAdd(counters + f, 1u) + 1u;
      if (done == static_cast<unsigned>(n)) {
        last = 1;
        atomicExch(counters + f, 0u);  // every block of f counted: ready for the next launch
        __threadfence();               // the other blocks' partials are read after the count
      }
    }
    finishes[s] = last;
  }
  __syncthreads();
  const int warp2 = threadIdx.x >> 5;
  if (warp2 < 2 && finishes[warp2]) {
    finish_frame(partial, f0 + warp2, ppf, q, rem, threadIdx.x & 31, fg_out, unc_out, ent_out);
  }
}

// The unfused finish (counters == nullptr): one warp per frame, finish_frame.
__global__ void __launch_bounds__(kFinishThreads)
    finish_kernel(const float* __restrict__ partial, int64_t frames, int64_t ppf, int64_t q,
                  int64_t rem, float* __restrict__ fg, float* __restrict__ unc,
                  float* __restrict__ ent) {
  const int64_t f = (static_cast<int64_t>(blockIdx.x) * kFinishThreads + threadIdx.x) >> 5;
  if (f >= frames) return;  // the whole warp: f is the same for its 32 lanes
  finish_frame(partial, f, ppf, q, rem, threadIdx.x & 31, fg, unc, ent);
}

// kVec, or 1 (the scalar path) when a frame is not a whole number of packs or the logits are
// not aligned to a pack.
int vec_width(LogitsDtype dtype, int64_t HW, const void* logits) {
  const int64_t pack_bytes = kVec * (dtype == LogitsDtype::kFloat32 ? 4 : 2);
  const bool aligned = reinterpret_cast<uintptr_t>(logits) % pack_bytes == 0;
  return (aligned && HW % kVec == 0) ? kVec : 1;
}

// The split of the packs over the blocks of partial_kernel.
struct Split {
  int64_t packs = 0;   // P: packs of one pass, frames * ppf
  int64_t ppf = 0;     // packs per frame
  int64_t blocks = 0;  // S
  int64_t q = 0, rem = 0;
};

// SMs of the current device, queried once per device (a call costs host time on every op).
int sm_count() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cached[kMaxDevices];  // static storage: all 0 (not yet queried)
  int dev = 0, sms = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 1;  // the launch then reports the error
  const bool cacheable = dev >= 0 && dev < kMaxDevices;
  if (cacheable) {
    sms = cached[dev].load(std::memory_order_relaxed);
    if (sms > 0) return sms;
  }
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
      sms < 1) {
    return 1;
  }
  if (cacheable) cached[dev].store(sms, std::memory_order_relaxed);
  return sms;
}

Split make_split(int64_t frames, int64_t HW, int vec) {
  Split s;
  s.ppf = HW / vec;
  s.packs = frames * s.ppf;
  const int64_t wave = static_cast<int64_t>(sm_count()) * kMinBlocks;
  // Whole waves, at least one block per frame (so a range spans at most two frames), at most
  // one block per pack (so no range is empty).
  int64_t blocks = (frames + wave - 1) / wave * wave;
  s.blocks = blocks < s.packs ? blocks : s.packs;
  s.q = s.packs / s.blocks;
  s.rem = s.packs % s.blocks;
  return s;
}

int64_t workspace_floats(int64_t frames, const Split& s) {
  return (s.blocks + frames - 1) * kSums;  // slots b + f, b < S, f < frames
}

// What partial_kernel writes: partials, and with counters the finished sums.
struct Outputs {
  float* partial;
  unsigned* counters;  // nullptr: finish_kernel finishes
  float* fg;
  float* unc;
  float* ent;
};

template <typename T, int VEC>
cudaError_t launch_typed(const void* logits, int R, const Split& s, float thr, float inv_R,
                         bool mean_log, const Outputs& o, cudaStream_t stream) {
  const T* z = static_cast<const T*>(logits);
  const unsigned grid = static_cast<unsigned>(s.blocks);
  if (mean_log) {
    partial_kernel<T, VEC, true><<<grid, kThreads, 0, stream>>>(
        z, R, s.packs, s.ppf, s.q, s.rem, thr, inv_R, o.partial, o.counters, o.fg, o.unc, o.ent);
  } else {
    partial_kernel<T, VEC, false><<<grid, kThreads, 0, stream>>>(
        z, R, s.packs, s.ppf, s.q, s.rem, thr, inv_R, o.partial, o.counters, o.fg, o.unc, o.ent);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_dtype(const void* logits, int vec, int R, const Split& s, float thr,
                         float inv_R, bool mean_log, const Outputs& o, cudaStream_t stream) {
  if (vec == kVec) return launch_typed<T, kVec>(logits, R, s, thr, inv_R, mean_log, o, stream);
  return launch_typed<T, 1>(logits, R, s, thr, inv_R, mean_log, o, stream);
}

}  // namespace

int64_t frame_uncertainty_workspace_floats(int64_t frames, int64_t HW, LogitsDtype dtype,
                                           const void* logits) {
  if (frames < 1 || HW < 1) return 0;
  return workspace_floats(frames, make_split(frames, HW, vec_width(dtype, HW, logits)));
}

cudaError_t launch_frame_uncertainty(const void* logits, LogitsDtype dtype, int64_t R,
                                     int64_t frames, int64_t HW, float fg_threshold,
                                     bool mean_log, float* fg_count, float* unc_sum,
                                     float* ent_sum, float* workspace, int64_t workspace_floats_,
                                     unsigned* counters, cudaStream_t stream) {
  if (R < 1 || frames < 1 || HW < 1) return cudaErrorInvalidValue;
  if (R > INT_MAX) return cudaErrorInvalidConfiguration;
  const int vec = vec_width(dtype, HW, logits);
  const Split s = make_split(frames, HW, vec);
  if (s.blocks > INT_MAX) return cudaErrorInvalidConfiguration;
  if (workspace_floats(frames, s) > workspace_floats_) return cudaErrorInvalidValue;
  const float inv_R = 1.0f / static_cast<float>(R);
  const int r = static_cast<int>(R);
  const Outputs o{workspace, counters, fg_count, unc_sum, ent_sum};
  cudaError_t err;
  switch (dtype) {
    case LogitsDtype::kFloat32:
      err = launch_dtype<float>(logits, vec, r, s, fg_threshold, inv_R, mean_log, o, stream);
      break;
    case LogitsDtype::kFloat16:
      err = launch_dtype<__half>(logits, vec, r, s, fg_threshold, inv_R, mean_log, o, stream);
      break;
    case LogitsDtype::kBFloat16:
      err = launch_dtype<__nv_bfloat16>(logits, vec, r, s, fg_threshold, inv_R, mean_log, o,
                                        stream);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  if (err != cudaSuccess || counters != nullptr) return err;  // fused: partial_kernel finished
  constexpr int64_t kFramesPerBlock = kFinishThreads / 32;
  const int64_t blocks = (frames + kFramesPerBlock - 1) / kFramesPerBlock;
  if (blocks > INT_MAX) return cudaErrorInvalidConfiguration;
  finish_kernel<<<static_cast<unsigned>(blocks), kFinishThreads, 0, stream>>>(
      workspace, frames, s.ppf, s.q, s.rem, fg_count, unc_sum, ent_sum);
  return cudaGetLastError();
}

}  // namespace scoring
}  // namespace claus
