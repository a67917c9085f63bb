"""claus_ext: the compiled ops of claus, registered under ``torch.ops.claus``.

Public wrappers (with shapes and dtypes in their docstrings) live in one module per op family;
`reference` holds the pure-PyTorch definition of every op, the contract the kernels are tested
against.
"""

from __future__ import annotations

from ._loader import load_library

_C = load_library()

from .cluster import cluster_assign, cluster_loss, update_centers_  # noqa: E402
from .scoring import frame_uncertainty, select_frames  # noqa: E402
from .stew import stew_stats, stew_weights  # noqa: E402


def has_cuda() -> bool:
    """Whether this build of claus has CUDA kernels."""
    return bool(_C.has_cuda())


def build_info() -> dict:
    """How the extension was built: CUDA on/off and version, torch version, compiler, OpenMP."""
    return dict(_C.build_info())


__all__ = [
    "build_info",
    "cluster_assign",
    "cluster_loss",
    "frame_uncertainty",
    "has_cuda",
    "select_frames",
    "stew_stats",
    "stew_weights",
    "update_centers_",
]
