"""Frame scores from MC-dropout clip statistics, and the frames to label in each video.

The pool is scored clip by clip: `claus_ext.frame_uncertainty` reduces the R dropout passes of
N clips of T frames to per-clip-frame sums (fg_count, unc_sum, ent_sum, each (N,T)). This module

1. stitches those sums back onto the frames of the original videos (`stitch_clip_stats`): clip
   frame t of a clip that starts at frame s with stride m samples original frame s + t·m;
   a frame sampled by several clips (sliding windows overlap) gets the mean of their statistics;
   a frame no clip sampled has no statistics;
2. turns them into frame scores (`frame_scores`): the uncertainty U = unc_sum / fg_count (the
   paper's mean over the predicted foreground) or unc_sum / (H·W) (its mass, `score="mass"`)
   where fg_count >= min_fg (frames below are non-informative: too little foreground to
   judge), and an entropy score ent_sum / (H·W) for the entropy baseline;
3. picks frames per video with the redundancy-aware greedy `claus_ext.select_frames`
   (`select_frames`), never a labelled or non-informative frame.

Frames are 0-based; per-video arrays are padded to the longest video, L frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

import claus_ext

# The names live in the torch-free `criteria` (configurations check them without torch);
# FRAME_SCORES stays importable from here.
from .criteria import CRITERIA, check_frame_score
from .criteria import FRAME_SCORES as FRAME_SCORES


@dataclass(frozen=True)
class FrameStats:
    """Per-frame MC-dropout statistics of V videos, padded to L frames (float32 unless noted).

    fg_count, unc_sum, ent_sum: (V,L), the mean over the clip frames that sampled each frame of
    `claus_ext.frame_uncertainty`'s sums (0 where none did). coverage: (V,L) int64, how many clip
    frames sampled each frame. lengths: (V,) int64 video lengths. pixels: H·W of a clip frame.
    """

    fg_count: torch.Tensor
    unc_sum: torch.Tensor
    ent_sum: torch.Tensor
    coverage: torch.Tensor
    lengths: torch.Tensor
    pixels: int


@dataclass(frozen=True)
class FrameScores:
    """Frame scores of V videos padded to L frames.

    uncertainty: (V,L) float32 U = unc_sum / fg_count on informative frames, NaN elsewhere.
    entropy: (V,L) float32 mean pixel entropy ent_sum / (H·W) on covered frames, NaN elsewhere.
    informative: (V,L) bool, covered and fg_count >= min_fg. covered: (V,L) bool, sampled by at
    least one clip frame. lengths: (V,) int64.
    """

    uncertainty: torch.Tensor
    entropy: torch.Tensor
    informative: torch.Tensor
    covered: torch.Tensor
    lengths: torch.Tensor

    def take(self, rows: list[int]) -> FrameScores:
        """The scores of the videos at `rows` (in that order), padding kept."""
        r = torch.as_tensor(rows, dtype=torch.int64, device=self.uncertainty.device)
        return FrameScores(uncertainty=self.uncertainty[r], entropy=self.entropy[r],
                           informative=self.informative[r], covered=self.covered[r],
                           lengths=self.lengths[r])


@dataclass(frozen=True)
class FrameSelection:
    """Frames picked per video, in pick order.

    frames: (V,kmax) int64, -1 padded. scores: (V,kmax) float32 score of each pick when it was
    made, NaN padded. video_score: (V,) float32 mean of a video's pick scores (NaN if none).
    """

    frames: torch.Tensor
    scores: torch.Tensor
    video_score: torch.Tensor

    def per_video(self) -> list[list[int]]:
        """The picked frames of every video as plain lists (padding dropped)."""
        return [[f for f in row if f >= 0] for row in self.frames.tolist()]


def _as_index(name: str, t: torch.Tensor | list[int], n: int | None = None) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        # An empty list would otherwise become a float tensor.
        t = torch.as_tensor(t) if len(t) else torch.zeros(0, dtype=torch.int64)
    if t.dim() != 1 or (n is not None and t.shape[0] != n):
        want = "(N,)" if n is None else f"({n},)"
        raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}")
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold integers, got {t.dtype}")
    return t.to("cpu", torch.int64)


def stitch_clip_stats(
    fg_count: torch.Tensor,
    unc_sum: torch.Tensor,
    ent_sum: torch.Tensor,
    clip_video: torch.Tensor | list[int],
    clip_start: torch.Tensor | list[int],
    lengths: torch.Tensor | list[int],
    pixels: int,
    frame_stride: int = 1,
) -> FrameStats:
    """Maps per-clip-frame sums back onto the frames of the original videos.

    Args:
        fg_count, unc_sum, ent_sum: (N,T) float, `claus_ext.frame_uncertainty` of N clips.
        clip_video: (N,) int, the video (0..V-1) each clip was cut from.
        clip_start: (N,) int, the original frame of each clip's frame 0.
        lengths: (V,) int >= 0, frames per video.
        pixels: H·W of a clip frame (> 0).
        frame_stride: >= 1, original frames between consecutive clip frames.

    Returns:
        `FrameStats` on the device of `fg_count`, padded to L = max(lengths). Clip frames that
        fall outside their video (a last clip padded past the end) are dropped. The sums are
        taken in float64 on the CPU, so the result does not depend on the device or on the
        order of the clips beyond float64 rounding.
    """
    if fg_count.dim() != 2:
        raise ValueError(f"fg_count must be 2-D (N,T), got shape {tuple(fg_count.shape)}")
    for name, t in (("unc_sum", unc_sum), ("ent_sum", ent_sum)):
        if tuple(t.shape) != tuple(fg_count.shape):
            raise ValueError(f"{name} must have the shape of fg_count {tuple(fg_count.shape)}, "
                             f"got {tuple(t.shape)}")
    N, T = fg_count.shape
    video = _as_index("clip_video", clip_video, N)
    start = _as_index("clip_start", clip_start, N)
    lengths = _as_index("lengths", lengths)
    if frame_stride < 1:
        raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
    if pixels < 1:
        raise ValueError(f"pixels must be >= 1, got {pixels}")
    if lengths.numel() and int(lengths.min()) < 0:
        raise ValueError(f"lengths must be >= 0, got a minimum of {int(lengths.min())}")
    V = lengths.shape[0]
    if N and (int(video.min()) < 0 or int(video.max()) >= V):
        raise ValueError(f"clip_video must lie in [0, {V}) for {V} videos, got values in "
                         f"[{int(video.min())}, {int(video.max())}]")
    L = int(lengths.max()) if V else 0
    device = fg_count.device
    frame = start[:, None] + torch.arange(T)[None, :] * frame_stride  # (N,T) original frame
    inside = (frame >= 0) & (frame < lengths[video][:, None])
    flat = (video[:, None] * L + frame)[inside]
    sums = []
    for t in (fg_count, unc_sum, ent_sum):
        acc = torch.zeros(V * L, dtype=torch.float64)
        acc.index_add_(0, flat, t.detach().to("cpu", torch.float64)[inside])
        sums.append(acc)
    cov = torch.zeros(V * L, dtype=torch.int64).index_add_(0, flat, torch.ones_like(flat))
    mean = [(s / cov.clamp_min(1)).view(V, L).to(device, torch.float32) for s in sums]
    return FrameStats(*mean, coverage=cov.view(V, L).to(device), lengths=lengths.to(device),
                      pixels=int(pixels))


#: How a frame's MC-dropout uncertainty becomes its score (`frame_scores(score=...)`).
def frame_scores(stats: FrameStats, min_fg: float = 1.0, score: str = "mean") -> FrameScores:
    """Frame uncertainty and entropy scores from stitched statistics.

    Args:
        stats: `FrameStats` of V videos padded to L frames.
        min_fg: > 0, least mean foreground pixel count of an informative frame.
        score: one of `FRAME_SCORES`. "mean" (the paper's) scores a frame whose model sees a few
            doubtful foreground pixels (a half-detected idle figure, a speck on the background)
            as high as one with a whole doubtful actor; "mass" weighs the doubt by the area it
            covers.

    Returns:
        `FrameScores`: U = unc_sum / fg_count ("mean") or unc_sum / pixels ("mass") where
        covered and fg_count >= min_fg (NaN elsewhere); entropy = ent_sum / pixels where covered
        (NaN elsewhere).
    """
    if not (min_fg > 0 and math.isfinite(min_fg)):
        raise ValueError(f"min_fg must be a finite number > 0, got {min_fg}")
    check_frame_score(score)
    covered = stats.coverage > 0
    informative = covered & (stats.fg_count >= min_fg)
    nan = torch.full_like(stats.fg_count, float("nan"))
    denom = stats.fg_count.clamp_min(min_fg) if score == "mean" else float(stats.pixels)
    unc = torch.where(informative, stats.unc_sum / denom, nan)
    ent = torch.where(covered, stats.ent_sum / stats.pixels, nan)
    return FrameScores(uncertainty=unc, entropy=ent, informative=informative, covered=covered,
                       lengths=stats.lengths)


def select_frames(
    scores: FrameScores,
    labelled: torch.Tensor,
    k: int | torch.Tensor,
    criterion: str = "uncertainty",
    sigma: float = 8 / 3,
    radius: int = 4,
) -> FrameSelection:
    """Frames to label next in each video: greedy on the chosen score, penalized near labelled
    frames and near earlier picks (see `claus_ext.select_frames`).

    Args:
        scores: `FrameScores` of V videos padded to L frames.
        labelled: (V,L) bool, frames that already carry a label (never picked; they set the
            annotation penalty).
        k: frames per video, an int >= 0 or a (V,) int tensor.
        criterion: "uncertainty" (U, informative frames only) or "entropy" (mean pixel entropy,
            every covered frame).
        sigma: > 0, width in frames of the Gaussian penalty.
        radius: >= 0, reach in frames of the suppression around each pick.

    Returns:
        `FrameSelection` on the device of the scores.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    unc = scores.uncertainty if criterion == "uncertainty" else scores.entropy
    if tuple(labelled.shape) != tuple(unc.shape):
        raise ValueError(f"labelled must have shape (V,L) = {tuple(unc.shape)}, got "
                         f"{tuple(labelled.shape)}")
    labelled = labelled.to(unc.device, torch.bool)
    L = unc.shape[1]
    inside = torch.arange(L, device=unc.device)[None, :] < scores.lengths[:, None]
    eligible = scores.informative if criterion == "uncertainty" else scores.covered
    candidates = eligible & inside & ~labelled
    sel, picked, video = claus_ext.select_frames(unc.contiguous(), candidates, labelled & inside,
                                                 k, sigma, radius)
    return FrameSelection(frames=sel, scores=picked, video_score=video)
