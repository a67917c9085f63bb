"""Build of claus: the `claus` framework and the `claus_ext._C` compiled ops.

    pip install --no-build-isolation -e .

CPU kernels are always built. CUDA kernels are built when this torch is a CUDA build and nvcc
is found (CUDA_HOME), or when FORCE_CUDA=1; CLAUS_NO_CUDA=1 forces a CPU-only build. DEBUG=1
builds without optimization and with debug symbols. The resolved configuration is printed.
"""

from __future__ import annotations

import glob
import os
import sys

from setuptools import find_packages, setup

try:
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
except ImportError:  # pragma: no cover - exercised only on a broken environment
    sys.exit(
        "claus needs PyTorch (>= 2.4) installed before it is built, and builds with "
        "--no-build-isolation so that it compiles against that torch:\n"
        "    pip install torch==2.13.0 && pip install --no-build-isolation -e ."
    )

ROOT = os.path.dirname(os.path.abspath(__file__))


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _torch_version() -> tuple[int, int]:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def _resolve_cuda() -> tuple[bool, str]:
    nvcc = CUDA_HOME is not None and os.path.exists(os.path.join(CUDA_HOME, "bin", "nvcc"))
    torch_cuda = torch.version.cuda is not None
    if _env_flag("CLAUS_NO_CUDA"):
        return False, "off (CLAUS_NO_CUDA=1)"
    if _env_flag("FORCE_CUDA"):
        if not torch_cuda:
            sys.exit(
                f"FORCE_CUDA=1 but torch {torch.__version__} is a CPU-only build: the CUDA glue "
                "needs torch's CUDA headers. Install a CUDA build of torch, or unset FORCE_CUDA."
            )
        if not nvcc:
            sys.exit("FORCE_CUDA=1 but nvcc was not found: set CUDA_HOME to the CUDA toolkit.")
        return True, f"on (FORCE_CUDA=1, CUDA_HOME={CUDA_HOME})"
    if torch_cuda and nvcc:
        return True, f"on (torch CUDA {torch.version.cuda}, CUDA_HOME={CUDA_HOME})"
    why = "torch is a CPU build" if not torch_cuda else "nvcc not found (set CUDA_HOME)"
    return False, f"off ({why})"


def _sources(with_cuda: bool) -> list[str]:
    rel = lambda p: os.path.relpath(p, ROOT)  # noqa: E731
    srcs = [rel(os.path.join(ROOT, "csrc", "claus.cpp"))]
    srcs += sorted(rel(p) for p in glob.glob(os.path.join(ROOT, "csrc", "*", "*_cpu.cpp")))
    if with_cuda:
        srcs += sorted(rel(p) for p in glob.glob(os.path.join(ROOT, "csrc", "*", "*_cuda.cpp")))
        srcs += sorted(rel(p) for p in glob.glob(os.path.join(ROOT, "csrc", "*", "*_kernel.cu")))
    return srcs


def _extension():
    if _torch_version() < (2, 4):
        sys.exit(f"claus needs torch >= 2.4, found {torch.__version__}")
    with_cuda, cuda_reason = _resolve_cuda()
    debug = _env_flag("DEBUG")
    opt = ["-O0", "-g"] if debug else ["-O3"]
    macros = [("CLAUS_TORCH_VERSION", f'"{torch.__version__}"')]
    # OpenMP pragmas in at::parallel_for are inline in torch's headers: without -fopenmp the
    # CPU kernels would silently run on one thread. The runtime is torch's own libgomp.
    # No trapping math: lets GCC if-convert the branch-free selects in the kernels and vectorize
    # them (NaN and Inf semantics are unchanged; claus never reads FP exception flags).
    cxx = [*opt, "-fopenmp", "-fno-trapping-math", "-fno-math-errno", "-Wall",
           "-Wno-unknown-pragmas", "-Wno-psabi"]
    nvcc = [*opt, "-lineinfo", "--expt-relaxed-constexpr", "-std=c++17"]
    if with_cuda:
        macros += [("CLAUS_WITH_CUDA", None), ("CLAUS_CUDA_VERSION", f'"{torch.version.cuda}"')]
    ext_cls = CUDAExtension if with_cuda else CppExtension
    sources = _sources(with_cuda)
    print(
        "claus build configuration:\n"
        f"  torch           {torch.__version__} ({torch.__file__})\n"
        f"  CUDA kernels    {cuda_reason}\n"
        f"  TORCH_CUDA_ARCH_LIST {os.environ.get('TORCH_CUDA_ARCH_LIST', '(torch default)')}\n"
        f"  debug           {debug}\n"
        f"  sources         {len(sources)}: {' '.join(sources)}",
        flush=True,
    )
    args = {"cxx": cxx, "nvcc": nvcc} if with_cuda else cxx
    return ext_cls(
        "claus_ext._C",
        sources,
        include_dirs=[os.path.join(ROOT, "csrc")],
        define_macros=macros,
        extra_compile_args=args,
    )


setup(
    packages=[*find_packages("python"), "claus_ext"],
    package_dir={"": "python", "claus_ext": "claus_ext"},
    ext_modules=[_extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
