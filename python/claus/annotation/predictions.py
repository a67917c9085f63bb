"""The round's model on the requested frames: boxes to show annotators as pre-annotations.

The waiting round trained its detector before selecting (`RUN/round_<r>.partial/model.pt`);
`predict_requests` runs it over the requested videos (sliding clips, as evaluation does), turns
the foreground of each requested frame into boxes (`claus.eval.components`) and gives each box
the frame's most probable class, scored foreground confidence × class probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pending import PendingRound

__all__ = ["PredictedBox", "predict_requests"]


@dataclass(frozen=True)
class PredictedBox:
    """label: class index; box: [x1, y1, x2, y2] original-frame pixels (edges); score in [0, 1]."""

    label: int
    box: tuple[float, float, float, float]
    score: float


def predict_requests(
    pending: PendingRound,
    *,
    fg_threshold: float | None = None,
    device: str | None = None,
    progress: bool = False,
) -> dict[str, dict[int, list[PredictedBox]]]:
    """{video: {requested frame: boxes}} from the round's trained model.

    Args:
        pending: the waiting round (its folder must hold model.pt).
        fg_threshold: foreground probability threshold (default: the run's, 0.5).
        device: where the model runs (default: the run's training device).
        progress: a progress bar over clips.
    """
    import torch

    from ..data.dataset import clip_boxes
    from ..eval.detect import components, frame_detections
    from ..eval.pipeline import predict_videos
    from ..models import build_model
    from ..training import resolve_device

    weights = pending.folder / "model.pt"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} does not exist: the round has no trained model "
                                "(pass --no-predictions to export without pre-annotations)")
    tc = pending.cfg.training()
    thr = tc.fg_threshold if fg_threshold is None else float(fg_threshold)
    if not 0 <= thr < 1:
        raise ValueError(f"fg_threshold must lie in [0, 1), got {thr}")
    ds = pending.dataset
    model = build_model(tc.model, ds.num_classes)
    model.load_weights(weights)
    dev = resolve_device(device or tc.device)
    model.to(dev)
    reqs = {r.video: r.frames for r in pending.requests}
    idx = [ds.index(v) for v in reqs]
    out: dict[str, dict[int, list[PredictedBox]]] = {}
    with torch.no_grad():
        for vi, pred in predict_videos(model, ds, idx, T=tc.T, stride=tc.stride, size=tc.size,
                                       batch_size=tc.eval_batch_size, device=dev,
                                       amp=tc.amp, progress=progress):
            v = ds[vi]
            frames = list(reqs[v.name])
            h, w = pred.fg.shape[1:]
            # Only the requested frames: components of a (n,h,w) stack, renumbered after.
            comps = components(pred.fg[frames], thr, tc.min_area,
                               scale=(v.width / w, v.height / h))
            dets = frame_detections(comps, pred.cls[frames], 0, top_k=1)
            per: dict[int, list[PredictedBox]] = {f: [] for f in frames}
            if len(dets):
                # Inclusive pixel boxes → edges, inside the frame.
                edges = dets[:, 4:8] + np.array([0.0, 0.0, 1.0, 1.0])
                edges, _ = clip_boxes(edges, v.width, v.height)
                for d, b in zip(dets, edges, strict=True):
                    f = frames[int(d[1]) - 1]
                    per[f].append(PredictedBox(int(d[2]), tuple(float(x) for x in b),
                                               float(d[3])))
            out[v.name] = per
    return out
