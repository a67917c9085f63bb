"""Evaluate a detector on a dataset split: the glue over the metric building blocks.

    InferenceClips (sliding windows)  ──► model ──► ClipAccumulator per video
        │  per-frame fg (N,H,W) and class probabilities (N,C), averaged over covering clips
        ▼
    components → frame detections (f-mAP)   │   video_tubes → tube NMS (v-mAP)
    video class = argmax of the mean class probability (accuracy)
    optional: predicted masks vs ground-truth boxes (the `localization` protocol)

Coordinates: the dataset's boxes are edge coordinates ([x1, x2) covers columns x1..x2-1);
the metrics use inclusive pixel indices (+1 convention, as ACT/MOC), so ground truth enters
them through `VideoDataset.act_gt` / `claus.data.dataset.edges_to_inclusive`, the one place
that converts. Predicted boxes come out of `components` inclusive already, scaled from
prediction pixels to original-frame pixels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from claus.data import InferenceClips, VideoDataset
from claus.data.clips import ClipGeometry, Size, collate_clips, resolve_geometry
from claus.data.dataset import edges_to_inclusive
from claus.data.faults import BadVideos
from claus.device import autocast

from .ap import frame_ap, video_ap, video_map_summary
from .detect import components, frame_detections, nms_all, video_tubes
from .inference import ClipAccumulator, VideoPrediction
from .localization import LocalizationMeter, boxes_to_masks
from .settings import CLASS_SCOPES, DetectionSettings

log = logging.getLogger(__name__)

__all__ = [
    "CLASS_SCOPES",
    "PROTOCOLS",
    "DetectionSettings",
    "detect_video",
    "evaluate_split",
    "foreground_weighted_class",
    "gt_tubes",
    "predict_videos",
    "video_class",
]

PROTOCOLS = ("act", "localization")


def gt_tubes(ds: VideoDataset, indices: Sequence[int]) -> dict:
    """Ground truth of the given videos in the ACT `gttubes` layout, inclusive pixels.

    Returns:
        {video name: {label: [array (n,5) float64: frame (1-based), x1, y1, x2, y2]}}
        (`VideoDataset.act_gt` of these videos).
    """
    return ds.act_gt(indices=indices)


@torch.no_grad()
def predict_videos(
    model: torch.nn.Module,
    ds: VideoDataset,
    videos: Sequence[int],
    *,
    geometry: ClipGeometry | None = None,
    T: int | None = None,
    stride: int | None = None,
    size: Size = None,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    workers: int = 0,
    amp: bool = True,
    progress: bool = False,
    bad: BadVideos | None = None,
) -> Iterator[tuple[int, VideoPrediction]]:
    """Per-frame predictions of each video, from sliding clips (`InferenceClips`).

    Clips of one video are consecutive, so a video's prediction is yielded as soon as its last
    clip is through and only a batch's worth of videos is held in memory.

    Args:
        model: a `Detector` (put in eval mode for the call, restored after).
        ds: the dataset; videos: indices to predict.
        geometry: the clip layout the model was trained with (`TrainConfig.geometry`;
            default `claus.data.clips.default_geometry()`); T, stride, size replace single
            fields of it (`resolve_geometry`).
        batch_size, workers: DataLoader settings.
        device: where the model runs; amp: bf16 autocast on CUDA.
        progress: a tqdm bar over clips.
        bad: where unreadable videos go (stage "eval"): a video with a window that cannot be
            read is not yielded at all. None: a `FrameReadError` propagates.

    Yields:
        (video index, VideoPrediction with fg (N,H,W) at clip size and cls (N,C)), in the
        order of `videos`.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    geometry = resolve_geometry(geometry, T=T, stride=stride, size=size)
    clips = InferenceClips(ds, list(videos), geometry, skip_unreadable=bad is not None)
    remaining: dict[int, int] = {}
    for vi, _, _ in clips.windows:
        remaining[vi] = remaining.get(vi, 0) + 1
    loader = DataLoader(clips, batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=collate_clips)
    accs: dict[int, ClipAccumulator | None] = {}  # None: the video could not be read
    was_training = model.training
    model.eval()
    try:
        for batch in tqdm(loader, desc="evaluate", unit="batch", disable=not progress,
                          leave=False):
            for f in batch["unreadable"]:
                bad.add(f["video"], "eval", f["reason"], f["file"])
                accs[f["index"]] = None
                remaining[f["index"]] -= 1
                if remaining[f["index"]] == 0:
                    accs.pop(f["index"])
            if "clip" in batch:
                yield from _predict_batch(model, ds, batch, accs, remaining, device, amp)
    finally:
        model.train(was_training)


def _predict_batch(model: torch.nn.Module, ds: VideoDataset, batch: dict,
                   accs: dict[int, ClipAccumulator | None], remaining: dict[int, int],
                   device: torch.device, amp: bool) -> Iterator[tuple[int, VideoPrediction]]:
    """Add one batch of windows to their videos' accumulators; yield the videos it completes
    (not those with an unreadable window, whose accumulator is None)."""
    with autocast(device, amp):
        out = model(batch["clip"].to(device, non_blocking=True))
    fg = torch.sigmoid(out.loc.float()).cpu()
    cls = torch.softmax(out.cls.float(), dim=1).cpu()
    vids = batch["video"].tolist()
    # Padding positions (valid = False) repeat a frame another window covers; drop
    # them so every frame is averaged over the clips that really cover it.
    valid = batch["valid"]
    for vi in dict.fromkeys(vids):  # batch order, each video once
        rows = [i for i, v in enumerate(vids) if v == vi]
        if vi not in accs:
            v = ds[vi]
            accs[vi] = ClipAccumulator(v.num_frames, fg.shape[2], fg.shape[3], cls.shape[1])
        acc = accs[vi]
        if acc is not None:
            for i in rows:
                keep = valid[i]
                acc.add(batch["frames"][i][keep][None], fg[i][keep][None], cls[i][None])
        remaining[vi] -= len(rows)
        if remaining[vi] == 0:
            accs.pop(vi)
            if acc is not None:
                yield vi, acc.result()


def detect_video(pred: VideoPrediction, height: int, width: int, video_index: int,
                 settings: DetectionSettings, smoothed: np.ndarray | None = None
                 ) -> tuple[np.ndarray, dict]:
    """Frame detections and tubes of one video from its per-frame predictions.

    Args:
        pred: per-frame fg (N,h,w) and cls (N,C).
        height, width: the original frame size (boxes are returned in its pixels).
        video_index: position of the video in the evaluated list (column 0 of detections).
        settings: thresholds.
        smoothed: `temporal_smooth(pred.fg, settings.smooth)` when the caller has it already.

    Returns:
        detections (K,8) [video index, frame (1-based), label, score, x1, y1, x2, y2] and
        tubes {label: [(array (L,5): frame (1-based), x1, y1, x2, y2, score)]} after NMS.
    """
    h, w = pred.fg.shape[1:]
    fg = temporal_smooth(pred.fg, settings.smooth) if smoothed is None else smoothed
    comps = components(fg, settings.fg_threshold, settings.min_area,
                       scale=(width / w, height / h), max_per_frame=settings.max_per_frame)
    cls = pred.cls
    if settings.class_scope == "video":
        cls = np.broadcast_to(video_class(pred, settings, fg), pred.cls.shape)
    dets = frame_detections(comps, cls, video_index, top_k=settings.top_k)
    tubes = video_tubes(comps, cls, settings.link_iou, settings.max_gap,
                        settings.min_length, settings.tube_top_k)
    if settings.nms_iou is not None:
        tubes = nms_all({0: tubes}, settings.nms_iou)[0]
    return dets, tubes


def foreground_weighted_class(cls: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """(C,) class probability of a video: its frames' (N,C) `cls` averaged with weights = each
    frame's peak foreground probability in `fg` (N,H,W); the plain mean when no frame has any.

    Clips outside the action carry no class evidence (nor, with `cls_on_action`, any class
    training), so frames where the model sees the actor get the say.
    """
    w = fg.max(axis=(1, 2), initial=0.0).astype(np.float64)
    if w.sum() <= 0:
        return cls.mean(axis=0)
    return (w[:, None] * cls).sum(axis=0) / w.sum()


def video_class(pred: VideoPrediction, settings: DetectionSettings,
                smoothed: np.ndarray | None = None) -> np.ndarray:
    """(C,) class probability of a video under `settings.class_scope`: the mean over covered
    frames ("frame") or `foreground_weighted_class` of the smoothed foreground ("video");
    `smoothed` as in `detect_video`."""
    if settings.class_scope == "frame":
        return pred.video_cls
    fg = temporal_smooth(pred.fg, settings.smooth) if smoothed is None else smoothed
    return foreground_weighted_class(pred.cls, fg)


def temporal_smooth(fg: np.ndarray, k: int) -> np.ndarray:
    """Mean of every frame with its k neighbours on each side, edges repeated.

    Args:
        fg: (N,H,W) float per-frame foreground probability; k >= 0.

    Returns:
        (N,H,W) float32 (fg itself when k = 0 or N = 1).
    """
    if k < 0:
        raise ValueError(f"smooth must be >= 0, got {k}")
    if k == 0 or len(fg) < 2:
        return fg
    csum = np.cumsum(np.pad(np.asarray(fg, np.float32), ((k + 1, k), (0, 0), (0, 0)),
                            mode="edge"), axis=0, dtype=np.float64)
    # Row i of the padded array is frame i - k - 1; window of frame f: rows f+1 .. f+2k+1.
    return ((csum[2 * k + 1:] - csum[: len(fg)]) / (2 * k + 1)).astype(np.float32)


def _gt_masks(ds: VideoDataset, vi: int) -> np.ndarray:
    """(N,H,W) bool union of the video's ground-truth boxes, original pixels."""
    v = ds[vi]
    masks = np.zeros((v.num_frames, v.height, v.width), dtype=bool)
    for t in v.tubes:
        boxes = np.zeros((v.num_frames, 4))
        valid = np.zeros(v.num_frames, dtype=bool)
        boxes[t.start:t.end] = edges_to_inclusive(t.boxes)
        valid[t.start:t.end] = True
        masks |= boxes_to_masks(boxes, valid, v.height, v.width)
    return masks


def _nan_to_none(x) -> list:
    return [None if not np.isfinite(a) else float(a) for a in np.asarray(x, dtype=np.float64)]


def evaluate_split(
    model: torch.nn.Module,
    ds: VideoDataset,
    split: str = "test",
    *,
    protocol: str = "act",
    geometry: ClipGeometry | None = None,
    T: int | None = None,
    stride: int | None = None,
    size: Size = None,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    workers: int = 0,
    amp: bool = True,
    settings: DetectionSettings | None = None,
    progress: bool = False,
    bad: BadVideos | None = None,
) -> dict:
    """Evaluate a detector on every video of a split.

    A video whose frames cannot be read is left out of the evaluation, detections and ground
    truth alike, with a warning naming it (`claus.data.faults`); the report lists it.

    Args:
        model: a `Detector`.
        ds: the dataset; split: its split to evaluate ("test").
        protocol: "act" (f-mAP@0.5, v-mAP@0.1/0.2/0.3/0.5 and @0.5:0.95 with the ACT/MOC
            conventions) or "localization" (the VideoCapsuleNet mask-IoU protocol at τ = 0.5,
            keys "f-mAP@0.5"/"v-mAP@0.5" hold its frame/video scores, plus "@0.1..0.3").
        geometry, T, stride, size: the clip layout, as in `predict_videos`.
        batch_size, device, workers, amp: inference settings.
        settings: detection thresholds (defaults: `DetectionSettings()`).
        progress: a tqdm bar.
        bad: the ledger unreadable videos go to (default: a new one, at the default share).

    Returns:
        JSON-ready dict: "protocol", "split", "videos" (evaluated), "frames", "seconds", the
        metric keys ("f-mAP@0.5", "v-mAP@0.1", "v-mAP@0.2", "v-mAP@0.3", "v-mAP@0.5",
        "v-mAP@0.5:0.95" for `act`), "accuracy" (percent of videos whose predicted class is
        right), "per_class" (lists, None where a class has no ground truth) and, when videos
        were left out, "skipped" ({video: {"file", "reason"}}). Metrics are percentages.

    Raises:
        TooManyBadVideos: more than the ledger's share of the videos are unreadable, or no
            video of the split is readable.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choices: {', '.join(PROTOCOLS)}")
    settings = settings or DetectionSettings()
    indices = ds.split_indices(split)
    if not indices:
        raise ValueError(f"{ds.name}: split {split!r} has no videos")
    bad = BadVideos.of(ds) if bad is None else bad
    names = [ds[i].name for i in indices]
    position = {vi: k for k, vi in enumerate(indices)}
    start = time.perf_counter()
    detections: list[np.ndarray] = []
    tubes: dict = {}
    correct = labelled = frames = 0
    meter = LocalizationMeter(ds.num_classes) if protocol == "localization" else None
    done: list[int] = []
    geometry = resolve_geometry(geometry, T=T, stride=stride, size=size)
    for vi, pred in predict_videos(model, ds, indices, geometry=geometry,
                                   batch_size=batch_size, device=device, workers=workers,
                                   amp=amp, progress=progress, bad=bad):
        v = ds[vi]
        done.append(vi)
        frames += v.num_frames
        # Smoothed once for the detections and the video's class.
        smoothed = (temporal_smooth(pred.fg, settings.smooth)
                    if meter is None or settings.class_scope == "video" else None)
        if v.label >= 0:
            labelled += 1
            correct += int(np.argmax(video_class(pred, settings, smoothed)) == v.label)
        if meter is not None:
            if v.label >= 0:
                fg = torch.from_numpy(pred.fg)[:, None]
                if tuple(fg.shape[2:]) != (v.height, v.width):
                    fg = F.interpolate(fg, size=(v.height, v.width), mode="nearest")
                meter.add(v.label, _gt_masks(ds, vi),
                          fg[:, 0].numpy() >= settings.fg_threshold)
            continue
        dets, vt = detect_video(pred, v.height, v.width, position[vi], settings, smoothed)
        detections.append(dets)
        tubes[v.name] = vt
    if not done:
        raise bad.none_left(f"the {len(indices)} videos of split {split!r}")
    # Ground truth of the evaluated videos only: an unreadable one is out of the metrics.
    kept = sorted(done, key=position.__getitem__)
    out: dict = {"protocol": protocol, "split": split, "videos": len(kept),
                 "frames": frames}
    if meter is not None:
        res = meter.result((0.1, 0.2, 0.3, 0.5))
        for t in ("0.1", "0.2", "0.3", "0.5"):
            out[f"f-mAP@{t}"] = res[f"f-mAP@{t}"]
            out[f"v-mAP@{t}"] = res[f"v-mAP@{t}"]
        per_class = {"f-AP@0.5": _nan_to_none(res["f-AP@0.5"]),
                     "v-AP@0.5": _nan_to_none(res["v-AP@0.5"])}
    else:
        gt = gt_tubes(ds, kept)
        det = np.concatenate(detections) if detections else np.zeros((0, 8))
        fmap, f_per = frame_ap(gt, names, det, iou=0.5)
        out["f-mAP@0.5"] = fmap
        out.update(video_map_summary(gt, names, tubes, ds.num_classes))
        _, v_per = video_ap(gt, names, tubes, ds.num_classes, iou=0.5)
        per_class = {"f-AP@0.5": _nan_to_none(f_per), "v-AP@0.5": _nan_to_none(v_per)}
    out["accuracy"] = 100.0 * correct / labelled if labelled else float("nan")
    out["per_class"] = per_class
    out["settings"] = asdict(settings)
    skipped = {ds[vi].name: bad.get(ds[vi].name) for vi in indices if ds[vi].name in bad}
    if skipped:
        out["skipped"] = {n: b.to_json() for n, b in skipped.items()}
    out["seconds"] = round(time.perf_counter() - start, 3)
    # JSON has no NaN: a metric without ground truth is None.
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in out.items()}
