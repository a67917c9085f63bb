"""Loading of the compiled library `claus_ext._C` with errors that say what to do."""

from __future__ import annotations

import types

import torch


def load_library() -> types.ModuleType:
    """Import `claus_ext._C` (which registers the ops under ``torch.ops.claus``).

    Raises ImportError naming the build and the installed torch when the library is missing or
    was compiled against another torch.
    """
    try:
        from . import _C  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(
            f"claus_ext._C could not be loaded: {exc}\n"
            "The compiled ops are missing or were built against another torch than the installed "
            f"torch {torch.__version__}. Rebuild them in this environment:\n"
            "    pip install --no-build-isolation -e ."
        ) from exc
    built = _C.build_info()["torch_version"]
    if built.split("+")[0] != torch.__version__.split("+")[0]:
        raise ImportError(
            f"claus_ext._C was built against torch {built} but torch {torch.__version__} is "
            "installed; rebuild with: pip install --no-build-isolation -e ."
        )
    return _C


def require_device_support(op: str, *tensors: torch.Tensor) -> None:
    """Raise a clear error when a CUDA tensor reaches an op of a build without CUDA kernels."""
    from . import _C  # noqa: PLC0415

    for t in tensors:
        if t.device.type == "cuda" and not _C.has_cuda():
            raise RuntimeError(
                f"claus_ext.{op}: got a CUDA tensor, but this build of claus has no CUDA kernels "
                f"(build info: {_C.build_info()}). Rebuild with a CUDA build of torch and nvcc on "
                "the path: pip install --no-build-isolation -e . (FORCE_CUDA=1 to insist)."
            )
        if t.device.type not in ("cpu", "cuda", "meta"):
            raise RuntimeError(f"claus_ext.{op}: device {t.device} is not supported (CPU, CUDA)")
