"""Pool scoring: per-frame uncertainty / entropy and per-video embeddings of the unlabelled pool.

Every pool video is cut into sliding windows (`claus.data.sliding_windows`: each frame is the
valid position of exactly one window). Windows are batched; per batch the model runs

* `mode="mc"`: `model.mc_forward` (backbone once, heads R times in one batch) →
  `claus_ext.frame_uncertainty` over the R passes;
* `mode="deterministic"`: one plain forward (no dropout; the entropy baseline scores the
  deterministic prediction) → `frame_uncertainty` with R = 1;

then the per-clip-frame sums are stitched onto video frames (`stitch_clip_stats`) and turned
into `FrameScores`. A video's embedding is the mean of its windows' clip embeddings.

Determinism: batch b (a fixed slice of the global window list) draws its dropout masks from a
generator seeded with (seed, b), so the scores do not depend on how batches are spread over
processes. Under `torchrun` (torch.distributed initialized) rank r scores batches r, r + W, ...
and rank 0 gathers everything; the result is identical to one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

import claus_ext

from ..data import InferenceClips, VideoDataset
from .scoring import FrameScores, check_frame_score, frame_scores, stitch_clip_stats

__all__ = ["PoolScores", "score_pool", "MODES"]

MODES = ("mc", "deterministic")


@dataclass
class PoolScores:
    """Scores of V pool videos (in the order given to `score_pool`).

    videos: (V,) dataset indices. scores: `FrameScores` padded to the longest video.
    embeddings: (V,D) float32 mean clip embedding per video. mode, passes: how they were made.
    """

    videos: list[int]
    scores: FrameScores
    embeddings: torch.Tensor
    mode: str
    passes: int

    def to_state(self) -> dict:
        """Tensors and plain values only (saved with `torch.save`, loaded with weights_only)."""
        s = self.scores
        return {"videos": torch.tensor(self.videos, dtype=torch.int64),
                "uncertainty": s.uncertainty.cpu(), "entropy": s.entropy.cpu(),
                "informative": s.informative.cpu(), "covered": s.covered.cpu(),
                "lengths": s.lengths.cpu(), "embeddings": self.embeddings.cpu(),
                "mode": self.mode, "passes": self.passes}

    @classmethod
    def from_state(cls, d: dict) -> PoolScores:
        return cls(videos=[int(v) for v in d["videos"].tolist()],
                   scores=FrameScores(uncertainty=d["uncertainty"], entropy=d["entropy"],
                                      informative=d["informative"], covered=d["covered"],
                                      lengths=d["lengths"]),
                   embeddings=d["embeddings"], mode=str(d["mode"]), passes=int(d["passes"]))


def _collate(items: list[dict]) -> dict:
    return {k: torch.stack([it[k] for it in items]) for k in ("clip", "video", "frames")}


@torch.no_grad()
def score_pool(
    model: torch.nn.Module,
    ds: VideoDataset,
    videos: Sequence[int],
    *,
    T: int = 8,
    stride: int = 2,
    size: tuple[int, int] | int | None = None,
    mode: str = "mc",
    passes: int = 10,
    batch_size: int = 16,
    fg_threshold: float = 0.4,
    min_fg: float = 1.0,
    frame_score: str = "mean",
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> PoolScores:
    """Score the frames of `videos` with `model` (put in eval mode here).

    Args:
        model: a `claus.models.Detector` (loc (B,T,H,W), emb (B,D); `mc_forward`).
        ds: the dataset; videos: dataset indices of the pool (order kept in the result).
        T, stride, size: the clip geometry the model was trained with.
        mode: "mc" (MC dropout, R = passes) or "deterministic" (one pass, no dropout).
        passes: R >= 1 for mode "mc".
        batch_size: windows per forward.
        fg_threshold: foreground threshold of `frame_uncertainty`; min_fg and frame_score: the
            `min_fg` and `score` of `frame_scores`.
        seed: dropout masks of batch b come from a generator seeded with (seed, b).
        device: where the model runs.
        progress: show a progress bar (rank 0).
    Returns:
        `PoolScores` on the CPU (on every rank under torch.distributed).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    check_frame_score(frame_score, "frame_score")  # before the costly passes
    videos = [int(v) for v in videos]
    if not videos:
        raise ValueError("score_pool: the pool is empty")
    device = torch.device(device)
    model.eval().to(device)
    clips = InferenceClips(ds, videos, T=T, stride=stride, size=size)
    n = len(clips)
    batches = [list(range(s, min(n, s + batch_size))) for s in range(0, n, batch_size)]
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    mine = list(range(rank, len(batches), world))
    it = mine
    if progress and rank == 0:
        from tqdm import tqdm

        it = tqdm(mine, desc=f"scoring pool ({mode}, R={passes if mode == 'mc' else 1})",
                  unit="batch", leave=False)
    results: list[tuple[int, dict]] = []
    for b in it:
        items = _collate([clips[i] for i in batches[b]])
        clip = items["clip"].to(device)
        if mode == "mc":
            g = torch.Generator(device=device)
            g.manual_seed(int(np.random.SeedSequence([seed, b]).generate_state(1)[0]))
            out = model.mc_forward(clip, passes=passes, generator=g)
            loc = out.loc
        else:
            out = model(clip)
            loc = out.loc.unsqueeze(0)
        fg, unc, ent = claus_ext.frame_uncertainty(loc.float().contiguous(), fg_threshold)
        results.append((b, {"fg": fg.cpu(), "unc": unc.cpu(), "ent": ent.cpu(),
                            "emb": out.emb.float().cpu(), "video": items["video"],
                            "start": items["frames"][:, 0]}))
    if world > 1:
        gathered: list = [None] * world
        dist.all_gather_object(gathered, results)
        results = [r for part in gathered for r in part]
    results.sort(key=lambda r: r[0])
    cat = {k: torch.cat([r[1][k] for r in results]) for k in results[0][1]}
    pos = {v: j for j, v in enumerate(videos)}
    clip_video = torch.tensor([pos[int(v)] for v in cat["video"]], dtype=torch.int64)
    lengths = [ds[v].num_frames for v in videos]
    H, W = clips.size if clips.size is not None else ds.read_frames(videos[0], [0]).shape[1:3]
    stats = stitch_clip_stats(cat["fg"], cat["unc"], cat["ent"], clip_video, cat["start"],
                              lengths, int(H * W), frame_stride=stride)
    emb = torch.zeros(len(videos), cat["emb"].shape[1], dtype=torch.float64)
    emb.index_add_(0, clip_video, cat["emb"].double())
    counts = torch.bincount(clip_video, minlength=len(videos)).clamp_min(1)
    embeddings = (emb / counts[:, None]).float()
    return PoolScores(videos=videos, scores=frame_scores(stats, min_fg, frame_score),
                      embeddings=embeddings, mode=mode, passes=passes if mode == "mc" else 1)
