"""The cases the op benchmarks time, and their inputs, in one place.

bench_stew.py, bench_scoring.py and bench_cluster.py take their shapes and inputs from here, and
tests/test_bench_records.py checks every op on them (the smaller case of each, at the size timed)
with the op tests' own checkers, so a benchmarked case is a tested case. Importable without the
scripts' folder on sys.path (`from bench.cases import ...`, a namespace package) and with it
(`from cases import ...`); only torch and NumPy.
"""

from __future__ import annotations

import numpy as np
import torch

# ---------------------------------------------------------------------------- STeW loss
# (B, T, H, W): a training batch of clips at the two frame sizes of the issue (112², 224²).
STEW_SHAPES = [(8, 8, 112, 112), (4, 16, 224, 224)]
STEW_PARAMS = (4 / 3, 4, 2)  # sigma, radius, window: claus.losses.stew_loss's defaults


def stew_inputs(shape: tuple[int, int, int, int], device: str | torch.device = "cpu",
                dtype: torch.dtype = torch.float32, seed: int = 0):
    """Logits z (B,T,H,W) `dtype`, hard pseudo-labels y (B,T,H,W) uint8 and annotated flags
    (B,T) bool with two labelled frames per clip (T/4 and 3T/4), as in training."""
    g = torch.Generator().manual_seed(seed)
    B, T, H, W = shape
    z = torch.randn(shape, generator=g).to(device=device, dtype=dtype)
    y = (torch.rand(shape, generator=g) > 0.7).to(torch.uint8).to(device)
    a = torch.zeros(B, T, dtype=torch.bool)
    a[:, T // 4] = True
    a[:, (3 * T) // 4] = True
    return z, y, a.to(device)


# ---------------------------------------------------------------------------- frame scoring
# frame_uncertainty: R MC-dropout passes of N clips of T frames, at each H = W in FRAME_SIZES.
FRAME_R, FRAME_N, FRAME_T = 10, 16, 8
FRAME_SIZES = (112, 224)
FRAME_THRESHOLD = 0.4
# select_frames: a pool of SELECT_VIDEOS videos of 30-900 frames, k frames each.
SELECT_VIDEOS = 2000
SELECT_K, SELECT_SIGMA, SELECT_RADIUS = 9, 8 / 3, 4


def frame_shape(hw: int) -> tuple[int, int, int, int, int]:
    return (FRAME_R, FRAME_N, FRAME_T, hw, hw)


def frame_logits(hw: int, gen: torch.Generator) -> torch.Tensor:
    """Logits (R,N,T,hw,hw) float32, N(0, 3²): foreground and background both well present."""
    return torch.randn(frame_shape(hw), generator=gen) * 3


def selection_pool(n_videos: int = SELECT_VIDEOS, seed: int = 0):
    """(uncertainty (N,L) float32, candidates (N,L) bool, annotated (N,L) bool, lengths (N,)):
    videos of 30-900 frames with 1-3 labelled frames each (as after a few rounds) and 90% of
    the other frames informative."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(30, 901, size=n_videos)
    L = int(lengths.max())
    inside = np.arange(L)[None, :] < lengths[:, None]
    unc = rng.random((n_videos, L), dtype=np.float32)
    annotated = np.zeros((n_videos, L), dtype=bool)
    for v, n in enumerate(lengths):
        annotated[v, rng.choice(n, size=rng.integers(1, 4), replace=False)] = True
    informative = rng.random((n_videos, L)) < 0.9
    candidates = inside & informative & ~annotated
    return unc, candidates, annotated, lengths


# ---------------------------------------------------------------------------- clustering
# (N, D, K): the paper's clip embeddings (3000 x 408, 5 clusters), a large CPU case, and the
# GPU target's (10^6, 128, 256).
CLUSTER_CPU_SIZES = [(3000, 408, 5), (200000, 256, 64)]
CLUSTER_GPU_SIZES = [*CLUSTER_CPU_SIZES, (1000000, 128, 256)]


def cluster_inputs(n: int, dim: int, k: int, device: str | torch.device = "cpu", seed: int = 0):
    """Points x (n, dim) and centres (k, dim), float32, standard normal."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g).to(device)
    c = torch.randn(k, dim, generator=g).to(device)
    return x, c


def shape_id(shape) -> str:
    """A case's shape as the records write it: "8,8,112,112"."""
    return ",".join(str(int(s)) for s in shape)
