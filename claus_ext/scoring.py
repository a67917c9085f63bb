"""Frame scoring: public wrappers and fake registrations of `frame_uncertainty` and
`select_frames`.

`frame_uncertainty` reduces R MC-dropout passes of a localization head to three per-frame sums
in one pass over the logits; `select_frames` picks, per video, the k most uncertain frames while
penalizing frames near labelled ones and near earlier picks. The plain-PyTorch definitions are
`claus_ext.reference.frame_uncertainty` and `claus_ext.reference.select_frames`;
`claus.selection.scoring` builds frame and video scores from them. Neither op is
differentiable.
"""

from __future__ import annotations

import math

import torch

from ._loader import require_device_support

UNCERTAINTY_MODES = ("mean_log", "log_mean")
_FLAG_DTYPES = (torch.bool, torch.uint8)


def _check_frame_uncertainty(op: str, logits: torch.Tensor, fg_threshold: float,
                             mode: str) -> None:
    if logits.dim() != 5:
        raise ValueError(f"{op}: logits must be 5-D (R,N,T,H,W), got shape {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        raise ValueError(f"{op}: logits must hold at least one MC-dropout pass (R > 0), got shape "
                         f"{tuple(logits.shape)}")
    half = (torch.float16, torch.bfloat16)
    if logits.dtype not in (torch.float32, *half):
        raise ValueError(f"{op}: logits must be float32 (float16/bfloat16 only on CUDA), "
                         f"got {logits.dtype}")
    if logits.dtype in half and logits.device.type == "cpu":
        raise ValueError(f"{op}: logits of dtype {logits.dtype} are only supported on CUDA; "
                         "use float32")
    if not 0 < fg_threshold < 1:
        raise ValueError(f"{op}: fg_threshold must lie in (0, 1), got {fg_threshold}")
    if mode not in UNCERTAINTY_MODES:
        raise ValueError(f"{op}: mode must be 'mean_log' or 'log_mean', got {mode!r}")


def _check_flags(op: str, t: torch.Tensor, name: str, frame_unc: torch.Tensor) -> None:
    if t.dim() != 2 or tuple(t.shape) != tuple(frame_unc.shape):
        raise ValueError(f"{op}: {name} must have shape (N,L) = {tuple(frame_unc.shape)} to match "
                         f"frame_unc, got {tuple(t.shape)}")
    if t.dtype not in _FLAG_DTYPES:
        raise ValueError(f"{op}: {name} must be bool, got {t.dtype}")
    if t.device != frame_unc.device:
        raise ValueError(f"{op}: frame_unc is on {frame_unc.device} but {name} is on {t.device}")


def _check_select_frames(op: str, frame_unc: torch.Tensor, candidates: torch.Tensor,
                         annotated: torch.Tensor, k: torch.Tensor, kmax: int, sigma: float,
                         radius: int) -> None:
    if frame_unc.dim() != 2:
        raise ValueError(f"{op}: frame_unc must be 2-D (N,L), got shape {tuple(frame_unc.shape)}")
    if frame_unc.dtype != torch.float32:
        raise ValueError(f"{op}: frame_unc must be float32, got {frame_unc.dtype}")
    _check_flags(op, candidates, "candidates", frame_unc)
    _check_flags(op, annotated, "annotated", frame_unc)
    if k.dim() != 1 or k.shape[0] != frame_unc.shape[0]:
        raise ValueError(f"{op}: k must have shape (N,) = ({frame_unc.shape[0]},), got "
                         f"{tuple(k.shape)}")
    if k.dtype != torch.int64:
        raise ValueError(f"{op}: k must be int64, got {k.dtype}")
    if k.device != frame_unc.device:
        raise ValueError(f"{op}: frame_unc is on {frame_unc.device} but k is on {k.device}")
    if kmax < 0:
        raise ValueError(f"{op}: kmax must be >= 0, got {kmax}")
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"{op}: sigma must be a finite number > 0, got {sigma}")
    if radius < 0:
        raise ValueError(f"{op}: radius must be >= 0, got {radius}")


def frame_uncertainty(
    logits: torch.Tensor,
    fg_threshold: float = 0.4,
    mode: str = "mean_log",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-frame foreground count, uncertainty sum and entropy sum of MC-dropout logits.

    Per pixel, over the R passes: p̄ = mean sigmoid(z_r); the pixel is foreground iff
    p̄ > fg_threshold; its uncertainty is u = mean softplus(-z_r) = mean -log p_r
    (``mode="mean_log"``, the paper's formula) or u = -log p̄ (``mode="log_mean"``, what the
    original code computed); its binary entropy is h = -(p̄ log p̄ + (1-p̄) log(1-p̄)) (natural
    log, 0 log 0 = 0, 1-p̄ computed as the mean of sigmoid(-z_r)). One pass over the logits, the
    R values of a pixel combined in registers, fp32 accumulation, sums that do not depend on the
    number of threads. Not differentiable.

    Args:
        logits: (R,N,T,H,W) localization logits of R MC-dropout passes over N clips of T frames;
            float32 (float16/bfloat16 also on CUDA). R >= 1.
        fg_threshold: in (0, 1), foreground threshold on p̄ (compared in float32).
        mode: ``"mean_log"`` or ``"log_mean"``.

    Returns:
        ``(fg_count, unc_sum, ent_sum)``, each (N,T) float32 on the logits' device: the number
        of foreground pixels, the sum of u over foreground pixels, the sum of h over all pixels.
    """
    require_device_support("frame_uncertainty", logits)
    return torch.ops.claus.frame_uncertainty.default(logits, float(fg_threshold), str(mode))


def select_frames(
    frame_unc: torch.Tensor,
    candidates: torch.Tensor,
    annotated: torch.Tensor,
    k: int | torch.Tensor,
    sigma: float = 8 / 3,
    radius: int = 4,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Greedy, redundancy-aware choice of the frames to label in each of N videos.

    Score s[f] = frame_unc[f] - exp(-d^2 / (2 sigma^2)), d = distance from f to the nearest
    annotated frame of its video (no penalty when the video has none). Then, up to k times per
    video: pick the eligible frame with the highest current s (ties: lowest index), record it
    and its score, make it ineligible, and subtract exp(-(j-pick)^2 / (2 sigma^2)) from s[j]
    for every |j - pick| <= radius. Eligible = a candidate whose frame_unc is not NaN and that
    was not picked yet; a video stops early when none is left. The Gaussian is evaluated in
    float64 and rounded once to float32; every score update is float32, so the result is exact
    and reproducible. O(k·L) per video, no sorting.

    Args:
        frame_unc: (N,L) float32, per-frame uncertainty of N videos padded to length L.
        candidates: (N,L) bool, frames that may be picked (inside the video, informative, not
            yet labelled).
        annotated: (N,L) bool, frames already labelled.
        k: frames to pick per video, an int >= 0 or an (N,) int64 tensor of them.
        sigma: > 0, width in frames of the Gaussian penalty.
        radius: >= 0, reach in frames of the suppression around each pick.

    Returns:
        ``(selected, picked_scores, video_score)``: (N,kmax) int64 frame indices in pick order,
        padded with -1; (N,kmax) float32 score of each pick when it was made, padded with NaN;
        (N,) float32 mean of a video's recorded scores (NaN when it picked none). kmax = k for
        an int k, max(k) for a tensor (0 when it is empty).

    The output width depends on the values of a tensor k, so this wrapper reads them (one
    device sync). Under ``torch.compile(fullgraph=True)`` call the op itself with kmax given:
    ``torch.ops.claus.select_frames(frame_unc, candidates, annotated, k, kmax, sigma, radius)``.
    """
    require_device_support("select_frames", frame_unc, candidates, annotated)
    n = frame_unc.shape[0] if frame_unc.dim() >= 1 else 0
    if isinstance(k, torch.Tensor):
        kt = k.to(device=frame_unc.device, dtype=torch.int64)
        if kt.dim() != 1 or kt.shape[0] != n:
            raise ValueError(f"select_frames: k must be an int or have shape (N,) = ({n},), got "
                             f"{tuple(k.shape)}")
        if kt.numel():
            lo, hi = (int(v) for v in torch.aminmax(kt))
            if lo < 0:
                raise ValueError(f"select_frames: k must be >= 0 for every video, got {lo}")
        else:
            hi = 0
    else:
        k = int(k)
        if k < 0:
            raise ValueError(f"select_frames: k must be >= 0, got {k}")
        kt = torch.full((n,), k, dtype=torch.int64, device=frame_unc.device)
        hi = k
    return torch.ops.claus.select_frames.default(frame_unc, candidates, annotated, kt, hi,
                                                 float(sigma), int(radius))


@torch.library.register_fake("claus::frame_uncertainty")
def _frame_uncertainty_fake(logits, fg_threshold, mode):
    _check_frame_uncertainty("claus::frame_uncertainty", logits, fg_threshold, mode)
    shape = (logits.shape[1], logits.shape[2])
    return tuple(logits.new_empty(shape, dtype=torch.float32) for _ in range(3))


@torch.library.register_fake("claus::select_frames")
def _select_frames_fake(frame_unc, candidates, annotated, k, kmax, sigma, radius):
    _check_select_frames("claus::select_frames", frame_unc, candidates, annotated, k, kmax, sigma,
                         radius)
    n = frame_unc.shape[0]
    return (frame_unc.new_empty((n, kmax), dtype=torch.int64),
            frame_unc.new_empty((n, kmax), dtype=torch.float32),
            frame_unc.new_empty((n,), dtype=torch.float32))
