// frame_uncertainty on CUDA: checks, device guard, current stream, dtype dispatch (float32,
// float16, bfloat16 through raw pointers), scratch (cached per stream, or per call while a CUDA
// graph is captured); the kernels are in frame_uncertainty_kernel.cu.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include "frame_uncertainty_kernel.h"
#include "scoring_checks.h"

namespace claus {
namespace scoring {
namespace {

LogitsDtype logits_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return LogitsDtype::kFloat32;
    case at::kHalf:
      return LogitsDtype::kFloat16;
    case at::kBFloat16:
      return LogitsDtype::kBFloat16;
    default:
      TORCH_CHECK_VALUE(false, ::claus::cat("claus::frame_uncertainty: unsupported logits dtype ", t));
  }
  return LogitsDtype::kFloat32;  // unreachable
}

// Scratch of the fused launch, cached per (device, stream): `counters` (int32, all 0 between
// launches: each launch leaves them 0) and `partial`. Launches on one stream run one after
// the other, so they can share them; each stream has its own, so launches on two streams may
// overlap. A buffer is replaced (zeroed counters) when a call needs more; the old one goes back
// to the caching allocator, whose reuse is ordered on this stream, after the launches queued
// before. The caller keeps its copies of the handles until its launch is queued. Entries live
// as long as the process (a few KiB each); a destroyed stream's entry is reused by a new
// stream with the same handle, after the destroyed stream's work (if it overlapped, the two
// would share counters).
struct StreamScratch {
  at::Tensor counters, partial;
};

StreamScratch stream_scratch(const at::TensorOptions& float_opts, cudaStream_t stream,
                             int64_t frames, int64_t partial_floats) {
  static std::mutex mu;
  static auto* cache = new std::map<std::pair<int, cudaStream_t>, StreamScratch>();  // never freed
  const std::lock_guard<std::mutex> lock(mu);
  StreamScratch& s = (*cache)[{static_cast<int>(float_opts.device().index()), stream}];
  if (!s.counters.defined() || s.counters.numel() < frames) {
    const int64_t n = std::max(frames, s.counters.defined() ? 2 * s.counters.numel() : 0);
    s.counters = at::zeros({n}, float_opts.dtype(at::kInt));  // on the current stream = stream
  }
  if (!s.partial.defined() || s.partial.numel() < partial_floats) {
    const int64_t n = std::max(partial_floats, s.partial.defined() ? 2 * s.partial.numel() : 0);
    s.partial = at::empty({n}, float_opts);
  }
  return s;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> frame_uncertainty_cuda(const at::Tensor& logits,
                                                                      double fg_threshold,
                                                                      c10::string_view mode) {
  const char* op = "claus::frame_uncertainty";
  const UncMode m =
      check_frame_uncertainty(op, logits, fg_threshold, std::string(mode), /*allow_half=*/true);
  c10::cuda::CUDAGuard guard(logits.device());
  const int64_t R = logits.size(0), N = logits.size(1), T = logits.size(2);
  const int64_t HW = logits.size(3) * logits.size(4);
  auto opts = logits.options().dtype(at::kFloat);
  const int64_t frames = N * T;
  if (frames == 0 || HW == 0) {  // sums over no pixels (or no frames at all)
    return {at::zeros({N, T}, opts), at::zeros({N, T}, opts), at::zeros({N, T}, opts)};
  }
  // The kernels write every output element: no zero-fill kernels (each one a launch that the
  // op's time would include).
  auto fg = at::empty({N, T}, opts), unc = at::empty({N, T}, opts), ent = at::empty({N, T}, opts);
  auto z = logits.contiguous();
  const LogitsDtype dt = logits_dtype(z.scalar_type());
  const int64_t ws = frame_uncertainty_workspace_floats(frames, HW, dt, z.const_data_ptr());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  // One launch with the stream's cached counters; while the stream is being captured into a
  // CUDA graph (or its state is unknown), two launches and a per-call workspace instead, so a
  // graph holds no reference to the cache and replays do not share counters with eager calls.
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusActive;
  const cudaError_t query = cudaStreamIsCapturing(stream, &capture);
  if (query != cudaSuccess) (void)cudaGetLastError();  // the launch reports its own errors
  const bool fused = query == cudaSuccess && capture == cudaStreamCaptureStatusNone;
  StreamScratch scratch;
  if (fused) {
    scratch = stream_scratch(opts, stream, frames, ws);
  } else {
    scratch.partial = at::empty({ws}, opts);
  }
  const cudaError_t err = launch_frame_uncertainty(
      z.const_data_ptr(), dt, R, frames, HW, static_cast<float>(fg_threshold),
      m == UncMode::kMeanLog, fg.mutable_data_ptr<float>(), unc.mutable_data_ptr<float>(),
      ent.mutable_data_ptr<float>(), scratch.partial.mutable_data_ptr<float>(),
      scratch.partial.numel(),
      fused ? reinterpret_cast<unsigned*>(scratch.counters.mutable_data_ptr<int>()) : nullptr,
      stream);
  TORCH_CHECK(err == cudaSuccess,
              ::claus::cat(op, ": CUDA kernel launch failed: ", cudaGetErrorString(err)));
  return {fg, unc, ent};
}

}  // namespace

TORCH_LIBRARY_IMPL(claus, CUDA, m) { m.impl("frame_uncertainty", &frame_uncertainty_cuda); }

}  // namespace scoring
}  // namespace claus
