"""The round's model on the requested videos: its tubes, to show annotators as pre-annotations.

The waiting round trained its detector before selecting (its folder's `model.pt`);
`predict_requests` runs it over each requested video (sliding clips, as evaluation does) and
turns the predictions into tubes exactly as evaluation does (`claus.eval.detect_video` with the
run's detection settings: foreground regions, linked over frames, one class per tube, tube
NMS). A tube that spans requested frames becomes one `PredictedTrack` with its boxes on those
frames, so an annotation tool shows it as one track and accepting it gives one actor.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .pending import PendingRound

__all__ = ["PredictedTrack", "predict_requests"]


@dataclass(frozen=True)
class PredictedTrack:
    """One tube the model detects in a video.

    label: class index. score: the tube's score in [0, 1] (mean of its detections' foreground
    confidence × class probability). boxes: {requested frame (0-based): [x1, y1, x2, y2]} in
    original-frame pixels (edges), on the requested frames the tube spans, ascending.
    """

    label: int
    score: float
    boxes: dict[int, tuple[float, float, float, float]]


def predict_requests(
    pending: PendingRound,
    *,
    fg_threshold: float | None = None,
    device: str | None = None,
    progress: bool = False,
) -> dict[str, list[PredictedTrack]]:
    """{video: tracks, best score first} from the round's trained model; a requested video
    whose frames cannot be read has none.

    Args:
        pending: the waiting round (its folder must hold the trained model).
        fg_threshold: foreground probability threshold (default: the run's, 0.5).
        device: where the model runs (default: the run's training device).
        progress: a progress bar over clips.
    """
    import torch

    from ..data.dataset import clip_boxes
    from ..data.faults import BadVideos
    from ..device import resolve_device
    from ..eval.pipeline import detect_video, predict_videos
    from ..models import build_model
    from .encode import max_bad_share

    weights = pending.files.model
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} does not exist: the round has no trained model "
                                "(pass --no-predictions to export without pre-annotations)")
    tc = pending.cfg.training()
    thr = tc.fg_threshold if fg_threshold is None else float(fg_threshold)
    if not 0 <= thr < 1:
        raise ValueError(f"fg_threshold must lie in [0, 1), got {thr}")
    # One class per tube: a pre-annotation is one actor with one class.
    settings = dataclasses.replace(tc.detection_settings(), fg_threshold=thr, tube_top_k=1)
    ds = pending.dataset
    model = build_model(tc.model, ds.num_classes)
    model.load_weights(weights)
    dev = resolve_device(device or tc.device)
    model.to(dev)
    reqs = {r.video: r.frames for r in pending.requests}
    idx = [ds.index(v) for v in reqs]
    # A video whose frames cannot be read gets no pre-annotation (a warning names it); the
    # export goes on unless more than the run's share of videos is unreadable.
    bad = BadVideos.of(ds, max_bad_share(pending))
    out: dict[str, list[PredictedTrack]] = {v: [] for v in reqs}
    with torch.no_grad():
        for vi, pred in predict_videos(model, ds, idx, geometry=tc.geometry,
                                       batch_size=tc.eval_batch_size, device=dev,
                                       amp=tc.amp, progress=progress, bad=bad):
            v = ds[vi]
            _, tubes = detect_video(pred, v.height, v.width, 0, settings)
            want = set(reqs[v.name])
            tracks = []
            for label, found in tubes.items():
                for tube, score in found:
                    frames = tube[:, 0].astype(np.int64) - 1  # 1-based → 0-based
                    rows = [i for i, f in enumerate(frames) if f in want]
                    if not rows:
                        continue
                    # Inclusive pixel boxes → edges, inside the frame.
                    edges = tube[rows, 1:5] + np.array([0.0, 0.0, 1.0, 1.0])
                    edges, _ = clip_boxes(edges, v.width, v.height)
                    tracks.append(PredictedTrack(
                        int(label), float(score),
                        {int(frames[i]): tuple(float(x) for x in b)
                         for i, b in zip(rows, edges, strict=True)}))
            out[v.name] = sorted(tracks, key=lambda t: -t.score)
    return out
