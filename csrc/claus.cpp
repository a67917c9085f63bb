// The claus operator library: every op's schema, declared once, and the module's build info.
//
// Implementations register per device with TORCH_LIBRARY_IMPL in csrc/<op>/<op>_cpu.cpp and
// csrc/<op>/<op>_cuda.cpp. Autograd and fake (meta) kernels are registered from Python
// (claus_ext/), where torch.library keeps them next to the public wrappers.
#include <torch/extension.h>
#include <torch/library.h>

#include "common/cpu.h"

TORCH_LIBRARY(claus, m) {
  // STeW statistics (csrc/stew): per clip S0..S4, see claus_ext/reference.py.
  m.def("stew_stats(Tensor z, Tensor y, Tensor annotated, float sigma, int radius, int window)"
        " -> Tensor");
  m.def("stew_stats_backward(Tensor grad, Tensor z, Tensor y, Tensor annotated, float sigma,"
        " int radius, int window) -> Tensor");
  m.def("stew_weights(Tensor y, Tensor annotated, float sigma, int radius, int window)"
        " -> Tensor");

  // Frame scoring (csrc/scoring): see claus_ext/scoring.py and claus_ext/reference.py.
  // frame_uncertainty: (R,N,T,H,W) MC-dropout logits -> (N,T) fg_count, unc_sum, ent_sum.
  m.def("frame_uncertainty(Tensor logits, float fg_threshold, str mode)"
        " -> (Tensor, Tensor, Tensor)");
  // select_frames: greedy picks per video -> (N,kmax) selected, (N,kmax) scores, (N,) score.
  m.def("select_frames(Tensor frame_unc, Tensor candidates, Tensor annotated, Tensor k,"
        " int kmax, float sigma, int radius) -> (Tensor, Tensor, Tensor)");

  // Clustering (csrc/cluster): nearest-centre assignment, the cluster loss and its backward,
  // and the in-place online centre update; see claus_ext/reference.py.
  m.def("cluster_assign(Tensor x, Tensor centers) -> (Tensor, Tensor)");
  m.def("cluster_loss(Tensor x, Tensor centers, float beta) -> (Tensor, Tensor)");
  m.def("cluster_loss_backward(Tensor grad, Tensor x, Tensor centers, Tensor assign, float beta)"
        " -> Tensor");
  m.def("update_centers_(Tensor(a!) centers, Tensor(b!) counts, Tensor x, Tensor assign) -> ()");
}

namespace {

bool has_cuda() {
#ifdef CLAUS_WITH_CUDA
  return true;
#else
  return false;
#endif
}

pybind11::dict build_info() {
  pybind11::dict d;
  d["cuda"] = has_cuda();
#ifdef CLAUS_CUDA_VERSION
  d["cuda_version"] = CLAUS_CUDA_VERSION;
#else
  d["cuda_version"] = pybind11::none();
#endif
  d["torch_version"] = CLAUS_TORCH_VERSION;
#if defined(__clang__)
  d["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  d["compiler"] = std::string("gcc ") + __VERSION__;
#else
  d["compiler"] = std::string("unknown");
#endif
  // Which vector code the CPU kernels that have an AVX-512 path take on this machine.
  d["cpu_avx512"] = claus::cpu_has_avx512();
  d["openmp"] =
#ifdef _OPENMP
      true;
#else
      false;
#endif
  return d;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "claus compiled ops (registered under torch.ops.claus)";
  m.def("has_cuda", &has_cuda, "Whether CUDA kernels were compiled into this build.");
  m.def("build_info", &build_info, "How this extension was built.");
}
