"""Evaluate a detector with the clip layout, batch size and thresholds of a training config."""

from __future__ import annotations

import torch

from claus.data import VideoDataset
from claus.data.faults import BadVideos
from claus.device import resolve_device
from claus.eval.pipeline import evaluate_split

from .config import TrainConfig

__all__ = ["evaluate"]


def evaluate(model: torch.nn.Module, dataset: VideoDataset, cfg: TrainConfig,
             split: str = "test", *, protocol: str = "act", progress: bool = True) -> dict:
    """Evaluate a detector on a split with the clip layout and thresholds of `cfg`.

    Sliding clips of `cfg.geometry` → per-frame probabilities → detections → tubes → metrics;
    see `claus.eval.pipeline.evaluate_split`.

    Returns:
        JSON-ready dict with at least "f-mAP@0.5", "v-mAP@0.1", "v-mAP@0.2", "v-mAP@0.3",
        "v-mAP@0.5", "v-mAP@0.5:0.95" (act protocol) and "accuracy", in percent (None where
        undefined), plus "per_class", "videos", "frames", "seconds", and "skipped" ({video:
        {"file", "reason"}}) when videos could not be read (left out, `cfg.max_bad_share`).
    """
    device = resolve_device(cfg.device)
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = model.module
    model.to(device)
    return evaluate_split(model, dataset, split, protocol=protocol, geometry=cfg.geometry,
                          batch_size=cfg.eval_batch_size, device=device, workers=cfg.workers,
                          amp=cfg.amp, settings=cfg.detection_settings(), progress=progress,
                          bad=BadVideos.of(dataset, cfg.max_bad_share))
