// frame_uncertainty on CUDA: per-frame sums of R MC-dropout passes, one read of the logits.
//
// Decomposition: a frame's HW pixels are cut into fixed chunks, one block per (frame, chunk).
// Each thread owns VEC consecutive pixels at a time, reads their R values with one 16-byte load
// per pass (coalesced across the warp), folds them into per-pixel sums in registers
// (accumulate_pass), turns those into the pixel's terms (pixel_terms) and adds them to its fp32
// accumulators. The block reduces its threads in a fixed tree and writes one partial per chunk;
// a second kernel adds each frame's partials in chunk order. No atomics: the sums are
// deterministic, run to run.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "frame_uncertainty_kernel.h"
#include "scoring_math.h"

namespace claus {
namespace scoring {
namespace {

constexpr int kThreads = 256;
constexpr int kItems = 2;  // pixel groups per thread per chunk
constexpr int kSums = 3;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

// Sum of v over the block, the same tree every launch; the result is valid in thread 0.
__device__ __forceinline__ float block_sum(float v, float* shm) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();  // shm may still be read by a previous call
  if (lane == 0) shm[warp] = v;
  __syncthreads();
  float s = 0.0f;
  if (threadIdx.x == 0) {
    for (int w = 0; w < kThreads / 32; ++w) s += shm[w];
  }
  return s;
}

// Partial sums of chunk c of frame f, block b = f * chunks + c. With VEC > 1 the caller
// guarantees HW % VEC == 0 and 16-byte aligned logits, so every pack is aligned and whole.
template <typename T, int VEC, bool kMeanLog>
__global__ void __launch_bounds__(kThreads)
    partial_kernel(const T* __restrict__ z, int R, int64_t frames, int64_t HW, int64_t chunks,
                   float fg_threshold, float* __restrict__ partial) {
  __shared__ float shm[kThreads / 32];
  const int64_t b = blockIdx.x;
  const int64_t f = b / chunks, c = b % chunks;
  const int64_t chunk_px = static_cast<int64_t>(kThreads) * VEC * kItems;
  const int64_t p_end = min(HW, (c + 1) * chunk_px);
  const T* zf = z + f * HW;
  const int64_t rstride = frames * HW;
  const float Rf = static_cast<float>(R);
  float afg = 0.0f, au = 0.0f, ah = 0.0f;
  for (int64_t p = c * chunk_px + static_cast<int64_t>(threadIdx.x) * VEC; p < p_end;
       p += static_cast<int64_t>(kThreads) * VEC) {
    float sp[VEC], sq[VEC], ss[VEC];
#pragma unroll
    for (int j = 0; j < VEC; ++j) sp[j] = sq[j] = ss[j] = 0.0f;
    if (VEC > 1) {
#pragma unroll 4
      for (int r = 0; r < R; ++r) {
        const Pack<T, VEC> pk = *reinterpret_cast<const Pack<T, VEC>*>(zf + r * rstride + p);
#pragma unroll
        for (int j = 0; j < VEC; ++j)
          accumulate_pass<kMeanLog>(to_float(pk.v[j]), sp[j], sq[j], ss[j]);
      }
    } else {
#pragma unroll 4
      for (int r = 0; r < R; ++r)
        accumulate_pass<kMeanLog>(to_float(zf[r * rstride + p]), sp[0], sq[0], ss[0]);
    }
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      float fg, u, h;
      pixel_terms<kMeanLog>(sp[j], sq[j], ss[j], Rf, fg_threshold, fg, u, h);
      afg += fg;
      au += u;
      ah += h;
    }
  }
  afg = block_sum(afg, shm);
  au = block_sum(au, shm);
  ah = block_sum(ah, shm);
  if (threadIdx.x == 0) {
    partial[b * kSums + 0] = afg;
    partial[b * kSums + 1] = au;
    partial[b * kSums + 2] = ah;
  }
}

// One thread per frame adds its chunks' partials in order (fp64, like the CPU kernel).
__global__ void finish_kernel(const float* __restrict__ partial, int64_t frames, int64_t chunks,
                              float* __restrict__ fg, float* __restrict__ unc,
                              float* __restrict__ ent) {
  const int64_t f = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (f >= frames) return;
  double s0 = 0.0, s1 = 0.0, s2 = 0.0;
  const float* p = partial + f * chunks * kSums;
  for (int64_t c = 0; c < chunks; ++c) {
    s0 += p[c * kSums + 0];
    s1 += p[c * kSums + 1];
    s2 += p[c * kSums + 2];
  }
  fg[f] = static_cast<float>(s0);
  unc[f] = static_cast<float>(s1);
  ent[f] = static_cast<float>(s2);
}

int vec_width(LogitsDtype dtype, int64_t HW, const void* logits) {
  const int vec = dtype == LogitsDtype::kFloat32 ? 4 : 8;  // 16-byte packs
  const bool aligned = reinterpret_cast<uintptr_t>(logits) % 16 == 0;
  return (aligned && HW % vec == 0) ? vec : 1;
}

int64_t num_chunks(int64_t HW, int vec) {
  const int64_t chunk_px = static_cast<int64_t>(kThreads) * vec * kItems;
  return (HW + chunk_px - 1) / chunk_px;
}

template <typename T, int VEC>
cudaError_t launch_typed(const void* logits, int64_t R, int64_t frames, int64_t HW, float thr,
                         bool mean_log, float* partial, int64_t chunks, cudaStream_t stream) {
  const T* z = static_cast<const T*>(logits);
  const int64_t blocks = frames * chunks;
  if (blocks > 0x7fffffffLL || R > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
  if (mean_log) {
    partial_kernel<T, VEC, true><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        z, static_cast<int>(R), frames, HW, chunks, thr, partial);
  } else {
    partial_kernel<T, VEC, false><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        z, static_cast<int>(R), frames, HW, chunks, thr, partial);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_dtype(const void* logits, int vec, int64_t R, int64_t frames, int64_t HW,
                         float thr, bool mean_log, float* partial, int64_t chunks,
                         cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  if (vec == kVec)
    return launch_typed<T, kVec>(logits, R, frames, HW, thr, mean_log, partial, chunks, stream);
  return launch_typed<T, 1>(logits, R, frames, HW, thr, mean_log, partial, chunks, stream);
}

}  // namespace

int64_t frame_uncertainty_workspace_floats(int64_t frames, int64_t HW, LogitsDtype dtype,
                                           const void* logits) {
  return frames * num_chunks(HW, vec_width(dtype, HW, logits)) * kSums;
}

cudaError_t launch_frame_uncertainty(const void* logits, LogitsDtype dtype, int64_t R,
                                     int64_t frames, int64_t HW, float fg_threshold,
                                     bool mean_log, float* fg_count, float* unc_sum,
                                     float* ent_sum, float* workspace, cudaStream_t stream) {
  const int vec = vec_width(dtype, HW, logits);
  const int64_t chunks = num_chunks(HW, vec);
  cudaError_t err;
  switch (dtype) {
    case LogitsDtype::kFloat32:
      err = launch_dtype<float>(logits, vec, R, frames, HW, fg_threshold, mean_log, workspace,
                                chunks, stream);
      break;
    case LogitsDtype::kFloat16:
      err = launch_dtype<__half>(logits, vec, R, frames, HW, fg_threshold, mean_log, workspace,
                                 chunks, stream);
      break;
    case LogitsDtype::kBFloat16:
      err = launch_dtype<__nv_bfloat16>(logits, vec, R, frames, HW, fg_threshold, mean_log,
                                        workspace, chunks, stream);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  if (err != cudaSuccess) return err;
  const int threads = 256;
  const int64_t blocks = (frames + threads - 1) / threads;
  if (blocks > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
  finish_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
      workspace, frames, chunks, fg_count, unc_sum, ent_sum);
  return cudaGetLastError();
}

}  // namespace scoring
}  // namespace claus
