// select_frames on the CPU: redundancy-aware greedy frame selection, all videos at once.
//
// Videos are independent, so they are spread over threads with at::parallel_for; each video is
// handled start to finish by one thread, so the result does not depend on the thread count.
// Per video: two sweeps give every frame its distance to the nearest annotated frame (O(L)),
// then k greedy steps, each a max over the L scores (lane-wise, so it vectorizes), a scan for the
// first frame holding that max (ties go to the lowest index), and an O(radius) suppression.
// No sorting anywhere: O(k·L) per video.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "../common/cpu.h"
#include "scoring_checks.h"
#include "scoring_math.h"

namespace claus {
namespace scoring {
namespace {

constexpr int64_t kLanes = 16;

// Highest non-NaN value of s[0:L], -inf when there is none (NaN never wins a `>` comparison).
CLAUS_ALWAYS_INLINE float max_eligible(const float* s, int64_t L) {
  float m[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) m[l] = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= L; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const float v = s[i + l];
      m[l] = v > m[l] ? v : m[l];
    }
  }
  float best = -std::numeric_limits<float>::infinity();
  for (; i < L; ++i) best = s[i] > best ? s[i] : best;
  for (int64_t l = 0; l < kLanes; ++l) best = m[l] > best ? m[l] : best;
  return best;
}

// One video. `pen` holds g(d) for d in [0, L) (as float, see gauss()), `left` is L scratch
// slots, `s` L scratch scores. Writes sel/ps (k slots, pre-filled with -1/NaN) and *vs.
CLAUS_MULTIVERSION void select_video(const float* unc, const uint8_t* cand, const uint8_t* ann,
                                     int64_t L, int64_t k, int64_t radius, const float* pen,
                                     int64_t* left, float* s, int64_t* sel, float* ps,
                                     float* vs) {
  // Nearest annotated frame at or before f, then at or after f while sweeping back.
  int64_t last = -1;
  for (int64_t f = 0; f < L; ++f) {
    if (ann[f]) last = f;
    left[f] = last;
  }
  int64_t next = -1;
  for (int64_t f = L - 1; f >= 0; --f) {
    if (ann[f]) next = f;
    int64_t d = kFar;
    if (left[f] >= 0) d = f - left[f];
    if (next >= 0 && next - f < d) d = next - f;
    s[f] = initial_score(unc[f], cand[f] != 0, d >= kFar ? 0.0f : pen[d]);
  }
  double total = 0.0;
  int64_t picked = 0;
  for (; picked < k; ++picked) {
    const float best = max_eligible(s, L);
    int64_t idx = -1;
    for (int64_t f = 0; f < L; ++f) {
      if (s[f] == best) {  // false for NaN: ineligible frames never match
        idx = f;
        break;
      }
    }
    if (idx < 0) break;  // nothing eligible left
    sel[picked] = idx;
    ps[picked] = s[idx];
    total += static_cast<double>(s[idx]);
    s[idx] = std::numeric_limits<float>::quiet_NaN();
    const int64_t lo = std::max<int64_t>(0, idx - radius);
    const int64_t hi = std::min<int64_t>(L - 1, idx + radius);
    for (int64_t j = lo; j <= hi; ++j) s[j] = suppress(s[j], pen[j < idx ? idx - j : j - idx]);
  }
  if (picked > 0) *vs = static_cast<float>(total / static_cast<double>(picked));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> select_frames_cpu(
    const at::Tensor& frame_unc, const at::Tensor& candidates, const at::Tensor& annotated,
    const at::Tensor& k, int64_t kmax, double sigma, int64_t radius) {
  const char* op = "claus::select_frames";
  check_select_frames(op, frame_unc, candidates, annotated, k, kmax, sigma, radius);
  check_k_values(op, k, kmax);
  const int64_t N = frame_unc.size(0), L = frame_unc.size(1);
  auto selected = at::full({N, kmax}, -1, frame_unc.options().dtype(at::kLong));
  auto picked = at::full({N, kmax}, std::numeric_limits<float>::quiet_NaN(), frame_unc.options());
  auto video = at::full({N}, std::numeric_limits<float>::quiet_NaN(), frame_unc.options());
  if (N == 0 || L == 0 || kmax == 0) return {selected, picked, video};
  auto u = frame_unc.contiguous();
  auto c = flags_for_kernel(candidates);
  auto a = flags_for_kernel(annotated);
  auto kc = k.contiguous();
  const float* up = u.const_data_ptr<float>();
  const uint8_t* cp = c.const_data_ptr<uint8_t>();
  const uint8_t* ap = a.const_data_ptr<uint8_t>();
  const int64_t* kp = kc.const_data_ptr<int64_t>();
  int64_t* selp = selected.mutable_data_ptr<int64_t>();
  float* psp = picked.mutable_data_ptr<float>();
  float* vsp = video.mutable_data_ptr<float>();
  // g(d) for every distance a video of L frames can hold: both the annotation penalty and the
  // suppression read it, so exp is evaluated L times in all rather than per frame and pick.
  std::vector<float> pen(static_cast<size_t>(L));
  for (int64_t d = 0; d < L; ++d) pen[d] = gauss(d, sigma);
  // Videos of a pool vary 30x in length: small grains keep the two threads balanced.
  at::parallel_for(0, N, 8, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> left(static_cast<size_t>(L));
    std::vector<float> s(static_cast<size_t>(L));
    for (int64_t v = begin; v < end; ++v) {
      select_video(up + v * L, cp + v * L, ap + v * L, L, kp[v], radius, pen.data(), left.data(),
                   s.data(), selp + v * kmax, psp + v * kmax, vsp + v);
    }
  });
  return {selected, picked, video};
}

}  // namespace

TORCH_LIBRARY_IMPL(claus, CPU, m) { m.impl("select_frames", &select_frames_cpu); }

}  // namespace scoring
}  // namespace claus
