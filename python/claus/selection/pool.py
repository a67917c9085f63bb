"""Pool scoring: per-frame uncertainty / entropy and per-video embeddings of the unlabelled pool.

Every pool video is cut into sliding windows of the trainer's clip geometry
(`claus.data.sliding_windows`: each frame is the valid position of exactly one window).
Windows are batched; per batch the model runs

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

Unreadable videos (`claus.data.faults`): a video with a window whose frames cannot be read is
not scored (no frame covered, so none informative, and a zero embedding) and is listed in
`PoolScores.skipped`, as are the videos the ledger knew to be unreadable, which are not read;
callers leave them out of the selection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist

import claus_ext

from ..data import InferenceClips, VideoDataset
from ..data.clips import ClipGeometry, Size, resolve_geometry
from ..data.faults import BadVideos
from .scoring import FrameScores, check_frame_score, frame_scores, stitch_clip_stats

__all__ = ["PoolScores", "score_pool", "MODES"]

MODES = ("mc", "deterministic")


@dataclass
class PoolScores:
    """Scores of V pool videos (in the order given to `score_pool`).

    videos: (V,) dataset indices. scores: `FrameScores` padded to the longest video.
    embeddings: (V,D) float32 mean clip embedding per video. mode, passes: how they were made.
    skipped: {video name: {"file", "reason"}} of the videos that could not be read (not
    scored: no covered frame, a zero embedding).
    """

    videos: list[int]
    scores: FrameScores
    embeddings: torch.Tensor
    mode: str
    passes: int
    skipped: dict[str, dict] = field(default_factory=dict)

    def to_state(self) -> dict:
        """Tensors and plain values only (saved with `torch.save`, loaded with weights_only)."""
        s = self.scores
        out = {"videos": torch.tensor(self.videos, dtype=torch.int64),
               "uncertainty": s.uncertainty.cpu(), "entropy": s.entropy.cpu(),
               "informative": s.informative.cpu(), "covered": s.covered.cpu(),
               "lengths": s.lengths.cpu(), "embeddings": self.embeddings.cpu(),
               "mode": self.mode, "passes": self.passes}
        if self.skipped:
            out["skipped"] = {n: dict(e) for n, e in self.skipped.items()}
        return out

    @classmethod
    def from_state(cls, d: dict) -> PoolScores:
        return cls(videos=[int(v) for v in d["videos"].tolist()],
                   scores=FrameScores(uncertainty=d["uncertainty"], entropy=d["entropy"],
                                      informative=d["informative"], covered=d["covered"],
                                      lengths=d["lengths"]),
                   embeddings=d["embeddings"], mode=str(d["mode"]), passes=int(d["passes"]),
                   skipped={str(n): dict(e) for n, e in d.get("skipped", {}).items()})


def _collate(items: list[dict]) -> dict:
    """Stack the readable windows; list the failures of the markers (`InferenceClips`)."""
    good = [it for it in items if "clip" in it]
    out = {k: torch.stack([it[k] for it in good]) for k in ("clip", "video", "frames")} \
        if good else {}
    out["unreadable"] = [f for it in items for f in it.get("unreadable", ())]
    return out


@torch.no_grad()
def score_pool(
    model: torch.nn.Module,
    ds: VideoDataset,
    videos: Sequence[int],
    *,
    geometry: ClipGeometry | None = None,
    T: int | None = None,
    stride: int | None = None,
    size: Size = None,
    mode: str = "mc",
    passes: int = 10,
    batch_size: int = 16,
    fg_threshold: float = 0.4,
    min_fg: float = 1.0,
    frame_score: str = "mean",
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
    bad: BadVideos | None = None,
) -> PoolScores:
    """Score the frames of `videos` with `model` (put in eval mode here).

    Args:
        model: a `claus.models.Detector` (loc (B,T,H,W), emb (B,D); `mc_forward`).
        ds: the dataset; videos: dataset indices of the pool (order kept in the result).
        geometry: the clip geometry the model was trained with (`TrainConfig.geometry`;
            default `claus.data.clips.default_geometry()`); T, stride, size replace single
            fields of it (`resolve_geometry`).
        mode: "mc" (MC dropout, R = passes) or "deterministic" (one pass, no dropout).
        passes: R >= 1 for mode "mc".
        batch_size: windows per forward.
        fg_threshold: foreground threshold of `frame_uncertainty`; min_fg and frame_score: the
            `min_fg` and `score` of `frame_scores`.
        seed: dropout masks of batch b come from a generator seeded with (seed, b).
        device: where the model runs.
        progress: show a progress bar (rank 0).
        bad: the ledger of unreadable videos (stage "score"): those it holds are not read,
            those found here are added (a warning each). Default: a new one at the default
            share.
    Returns:
        `PoolScores` on the CPU (on every rank under torch.distributed).
    Raises:
        TooManyBadVideos: more than the ledger's share unreadable, or no pool video readable.
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
    bad = BadVideos.of(ds) if bad is None else bad
    # Videos known to be unreadable are not read again; they stay in `videos` (the order of
    # the result) without a window.
    geometry = resolve_geometry(geometry, T=T, stride=stride, size=size)
    clips = InferenceClips(ds, [v for v in videos if ds[v].name not in bad], geometry,
                           skip_unreadable=True)
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
    failures: list[dict] = []
    for b in it:
        items = _collate([clips[i] for i in batches[b]])
        failures += items["unreadable"]
        if "clip" not in items:
            continue
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
                            "start": items["frames"][:, 0], "hw": torch.tensor(clip.shape[3:])}))
    if world > 1:
        gathered: list = [None] * world
        dist.all_gather_object(gathered, (results, failures))
        results = [r for part, _ in gathered for r in part]
        failures = [f for _, part in gathered for f in part]
    results.sort(key=lambda r: r[0])
    # Every rank records the same failures (in window order), so all agree on what is out.
    for f in sorted(failures, key=lambda f: (f["index"], f["video"])):
        bad.add(f["video"], "score", f["reason"], f["file"])
    lost = {v for v in videos if ds[v].name in bad}
    results = [(b, _without(r, lost)) for b, r in results]
    results = [(b, r) for b, r in results if len(r["video"])]
    if not results:
        raise bad.none_left(f"the {len(videos)} pool videos")
    cat = {k: torch.cat([r[1][k] for r in results]) for k in results[0][1] if k != "hw"}
    pos = {v: j for j, v in enumerate(videos)}
    clip_video = torch.tensor([pos[int(v)] for v in cat["video"]], dtype=torch.int64)
    lengths = [ds[v].num_frames for v in videos]
    H, W = (int(x) for x in results[0][1]["hw"])
    stats = stitch_clip_stats(cat["fg"], cat["unc"], cat["ent"], clip_video, cat["start"],
                              lengths, int(H * W), frame_stride=geometry.stride)
    emb = torch.zeros(len(videos), cat["emb"].shape[1], dtype=torch.float64)
    emb.index_add_(0, clip_video, cat["emb"].double())
    counts = torch.bincount(clip_video, minlength=len(videos)).clamp_min(1)
    embeddings = (emb / counts[:, None]).float()
    skipped = {ds[v].name: bad.get(ds[v].name).to_json() for v in videos if v in lost}
    return PoolScores(videos=videos, scores=frame_scores(stats, min_fg, frame_score),
                      embeddings=embeddings, mode=mode, passes=passes if mode == "mc" else 1,
                      skipped=skipped)


def _without(r: dict, lost: set[int]) -> dict:
    """A batch's results without the windows of videos that could not be read."""
    keep = torch.tensor([int(v) not in lost for v in r["video"]], dtype=torch.bool)
    if bool(keep.all()):
        return r
    return {k: (v if k == "hw" else v[keep]) for k, v in r.items()}
