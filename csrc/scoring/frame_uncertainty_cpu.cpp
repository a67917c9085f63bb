// frame_uncertainty on the CPU: per-frame foreground count, uncertainty sum and entropy sum of
// R MC-dropout passes, one pass over the logits.
//
// Work is split into fixed tiles of kTile pixels of one frame. A tile folds the R passes into
// three per-pixel running sums held in a small scratch (R streams of kTile contiguous floats,
// L1-resident), turns them into per-pixel terms, and reduces those into kLanes fp32 lane sums
// (an elementwise loop, so it vectorizes without reassociating anything), then the lanes into one
// fp64 partial. Partials are added per frame in tile order. The tiling does not depend on the
// thread count, so the sums are bit-identical for any number of threads.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>
#include <vector>

#include "../common/cpu.h"
#include "scoring_checks.h"
#include "scoring_math.h"

namespace claus {
namespace scoring {
namespace {

constexpr int64_t kTile = 1024;
constexpr int64_t kLanes = 16;
constexpr int kNumSums = 3;  // fg_count, unc_sum, ent_sum

// One tile: z points at pixel p0 of the frame in pass 0; passes are rstride apart. Writes the
// tile's three sums (fp64) to out.
template <bool kMeanLog>
CLAUS_ALWAYS_INLINE void tile_impl(const float* z, int64_t R, int64_t rstride, int64_t n,
                                   float fg_threshold, float* scratch, double* out) {
  float* sp = scratch;
  float* sq = sp + kTile;
  float* ss = sq + kTile;
  for (int64_t i = 0; i < kTile; ++i) {
    sp[i] = 0.0f;
    sq[i] = 0.0f;
    ss[i] = 0.0f;
  }
  for (int64_t r = 0; r < R; ++r) {
    const float* zr = z + r * rstride;
    for (int64_t i = 0; i < n; ++i) accumulate_pass<kMeanLog>(zr[i], sp[i], sq[i], ss[i]);
  }
  // Per-pixel terms, in place; the padding of the last lane group contributes zeros.
  const float Rf = static_cast<float>(R);
  for (int64_t i = 0; i < n; ++i) {
    float fg, u, h;
    pixel_terms<kMeanLog>(sp[i], sq[i], ss[i], Rf, fg_threshold, fg, u, h);
    sp[i] = fg;
    sq[i] = u;
    ss[i] = h;
  }
  const int64_t nl = (n + kLanes - 1) / kLanes * kLanes;
  for (int64_t i = n; i < nl; ++i) {
    sp[i] = 0.0f;
    sq[i] = 0.0f;
    ss[i] = 0.0f;
  }
  float afg[kLanes] = {}, au[kLanes] = {}, ah[kLanes] = {};
  for (int64_t i = 0; i < nl; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      afg[l] += sp[i + l];
      au[l] += sq[i + l];
      ah[l] += ss[i + l];
    }
  }
  double s0 = 0.0, s1 = 0.0, s2 = 0.0;
  for (int64_t l = 0; l < kLanes; ++l) {
    s0 += afg[l];
    s1 += au[l];
    s2 += ah[l];
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
}

// Non-template entry points, so that each can be multiversioned.
CLAUS_MULTIVERSION void tile_mean_log(const float* z, int64_t R, int64_t rstride, int64_t n,
                                      float thr, float* scratch, double* out) {
  tile_impl<true>(z, R, rstride, n, thr, scratch, out);
}
CLAUS_MULTIVERSION void tile_log_mean(const float* z, int64_t R, int64_t rstride, int64_t n,
                                      float thr, float* scratch, double* out) {
  tile_impl<false>(z, R, rstride, n, thr, scratch, out);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> frame_uncertainty_cpu(const at::Tensor& logits,
                                                                     double fg_threshold,
                                                                     c10::string_view mode) {
  const char* op = "claus::frame_uncertainty";
  const UncMode m =
      check_frame_uncertainty(op, logits, fg_threshold, std::string(mode), /*allow_half=*/false);
  const int64_t R = logits.size(0), N = logits.size(1), T = logits.size(2);
  const int64_t HW = logits.size(3) * logits.size(4);
  auto opts = logits.options().dtype(at::kFloat);
  auto fg = at::zeros({N, T}, opts), unc = at::zeros({N, T}, opts), ent = at::zeros({N, T}, opts);
  const int64_t frames = N * T;
  if (frames == 0 || HW == 0) return {fg, unc, ent};
  auto z = logits.contiguous();
  const float* zp = z.const_data_ptr<float>();
  const int64_t tiles = (HW + kTile - 1) / kTile;
  const int64_t rstride = frames * HW;
  // The threshold is compared with p̄ in float32, as on the GPU.
  const float thr = static_cast<float>(fg_threshold);
  std::vector<double> partial(static_cast<size_t>(frames * tiles * kNumSums));
  // Grain of one tile: each is R*kTile logits, enough to amortize scheduling.
  at::parallel_for(0, frames * tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(static_cast<size_t>(kNumSums * kTile));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t f = item / tiles, p0 = (item % tiles) * kTile;
      const int64_t n = std::min(kTile, HW - p0);
      const float* zt = zp + f * HW + p0;
      double* out = partial.data() + item * kNumSums;
      if (m == UncMode::kMeanLog) tile_mean_log(zt, R, rstride, n, thr, scratch.data(), out);
      else tile_log_mean(zt, R, rstride, n, thr, scratch.data(), out);
    }
  });
  float* o[kNumSums] = {fg.mutable_data_ptr<float>(), unc.mutable_data_ptr<float>(),
                        ent.mutable_data_ptr<float>()};
  for (int64_t f = 0; f < frames; ++f) {
    for (int k = 0; k < kNumSums; ++k) {
      double s = 0.0;
      for (int64_t j = 0; j < tiles; ++j) s += partial[(f * tiles + j) * kNumSums + k];
      o[k][f] = static_cast<float>(s);
    }
  }
  return {fg, unc, ent};
}

}  // namespace

TORCH_LIBRARY_IMPL(claus, CPU, m) { m.impl("frame_uncertainty", &frame_uncertainty_cpu); }

}  // namespace scoring
}  // namespace claus
