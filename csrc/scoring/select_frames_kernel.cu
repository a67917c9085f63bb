// select_frames on CUDA: one warp per video, all videos at once.
//
// Setup: lane l owns a contiguous chunk of frames. Warp scans over the lanes' last (first)
// annotated frame give each chunk the nearest annotated frame left (right) of it, then each
// lane sweeps its chunk forward and back to get every frame's distance to the nearest annotated
// frame and its initial score (initial_score). The forward sweep parks the left neighbour's
// index in the frame's score slot (as float bits), which the backward sweep, by the same lane,
// reads and overwrites: no extra scratch.
// Greedy step: every lane finds its best frame over a strided scan, a butterfly of shuffles
// combines them under ranks_before (a total order: every lane ends with the same pick), and the
// lanes share the O(radius) suppression. __syncwarp orders the score writes and reads.
#include <climits>
#include <cmath>

#include "scoring_math.h"
#include "select_frames_kernel.h"

namespace claus {
namespace scoring {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr unsigned kFull = 0xffffffffu;

__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    select_kernel(const float* __restrict__ frame_unc, const uint8_t* __restrict__ candidates,
                  const uint8_t* __restrict__ annotated, const int64_t* __restrict__ k,
                  int64_t N, int64_t L, int64_t kmax, int64_t radius,
                  const float* __restrict__ pen, float* __restrict__ scores,
                  int64_t* __restrict__ selected, float* __restrict__ picked,
                  float* __restrict__ video_score) {
  const int lane = threadIdx.x & 31;
  const int64_t v = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (v >= N) return;  // whole warps leave together
  const float* u = frame_unc + v * L;
  const uint8_t* cand = candidates + v * L;
  const uint8_t* ann = annotated + v * L;
  float* s = scores + v * L;

  const int chunk = static_cast<int>((L + 31) / 32);
  const int f0 = min(static_cast<int64_t>(lane) * chunk, L);
  const int f1 = min(static_cast<int64_t>(f0) + chunk, L);
  int my_last = -1, my_first = -1;
  for (int f = f0; f < f1; ++f) {
    if (ann[f]) {
      my_last = f;
      if (my_first < 0) my_first = f;
    }
  }
  // Nearest annotated frame before my chunk: max of the earlier lanes' last ones.
  int incl = my_last;
  for (int o = 1; o < 32; o <<= 1) {
    const int t = __shfl_up_sync(kFull, incl, o);
    if (lane >= o) incl = max(incl, t);
  }
  int left = __shfl_up_sync(kFull, incl, 1);
  if (lane == 0) left = -1;
  // Nearest annotated frame after my chunk: min of the later lanes' first ones (INT_MAX: none).
  int incr = my_first < 0 ? INT_MAX : my_first;
  for (int o = 1; o < 32; o <<= 1) {
    const int t = __shfl_down_sync(kFull, incr, o);
    if (lane + o < 32) incr = min(incr, t);
  }
  int right = __shfl_down_sync(kFull, incr, 1);
  if (lane == 31) right = INT_MAX;

  for (int f = f0; f < f1; ++f) {
    if (ann[f]) left = f;
    s[f] = __int_as_float(left);
  }
  for (int f = f1 - 1; f >= f0; --f) {
    if (ann[f]) right = f;
    const int lf = __float_as_int(s[f]);
    int64_t d = kFar;
    if (lf >= 0) d = f - lf;
    if (right != INT_MAX && right - f < d) d = right - f;
    s[f] = initial_score(u[f], cand[f] != 0, d >= kFar ? 0.0f : pen[d]);
  }
  __syncwarp();

  const int64_t kv = k[v];
  double total = 0.0;
  int64_t count = 0;
  for (; count < kv; ++count) {
    float best_s = 0.0f;
    int64_t best_i = -1;
    for (int64_t f = lane; f < L; f += 32) {
      const float x = s[f];
      if (ranks_before(x, f, best_s, best_i)) {
        best_s = x;
        best_i = f;
      }
    }
    for (int o = 16; o > 0; o >>= 1) {
      const float os = __shfl_xor_sync(kFull, best_s, o);
      const int64_t oi = __shfl_xor_sync(kFull, best_i, o);
      if (oi >= 0 && ranks_before(os, oi, best_s, best_i)) {
        best_s = os;
        best_i = oi;
      }
    }
    if (best_i < 0) break;  // nothing eligible left (the same on every lane)
    if (lane == 0) {
      selected[v * kmax + count] = best_i;
      picked[v * kmax + count] = best_s;
    }
    total += static_cast<double>(best_s);
    __syncwarp();  // every lane has read s before it changes
    const int64_t lo = best_i - radius < 0 ? 0 : best_i - radius;
    const int64_t hi = best_i + radius > L - 1 ? L - 1 : best_i + radius;
    for (int64_t j = lo + lane; j <= hi; j += 32) {
      // The pick itself (always inside [lo, hi]) becomes ineligible; the lane that owns it
      // writes the NaN, so no two lanes write one slot.
      s[j] = j == best_i ? NAN : suppress(s[j], pen[j < best_i ? best_i - j : j - best_i]);
    }
    __syncwarp();
  }
  if (lane == 0 && count > 0) video_score[v] = static_cast<float>(total / static_cast<double>(count));
}

}  // namespace

cudaError_t launch_select_frames(const float* frame_unc, const uint8_t* candidates,
                                 const uint8_t* annotated, const int64_t* k, int64_t N,
                                 int64_t L, int64_t kmax, int64_t radius, const float* pen,
                                 float* scores, int64_t* selected, float* picked,
                                 float* video_score, cudaStream_t stream) {
  if (N < 1 || L < 1 || L > kSelectMaxLength || kmax < 1) return cudaErrorInvalidValue;
  const int64_t blocks = (N + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
  select_kernel<<<static_cast<unsigned>(blocks), kWarpsPerBlock * 32, 0, stream>>>(
      frame_unc, candidates, annotated, k, N, L, kmax, radius, pen, scores, selected, picked,
      video_score);
  return cudaGetLastError();
}

}  // namespace scoring
}  // namespace claus
