"""The `localization` protocol (VideoCapsuleNet, Duarte et al. 2018, and the CLAUS lineage).

Per ground-truth frame (a frame whose ground-truth mask is not empty) the IoU of the predicted
foreground mask with the ground-truth mask; per video the IoU Σ intersections / Σ unions over its
ground-truth frames. Per class, the fraction of ground-truth frames (f) or videos (v) whose IoU
≥ τ; "f-mAP"/"v-mAP" are the means over classes that have videos. Frames without ground truth do
not count (false alarms there are invisible to this protocol; the `act` protocol sees them), and
the predicted class plays no part.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def boxes_to_masks(boxes: np.ndarray, valid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rasterize one box per frame into masks, inclusive pixel coordinates.

    Args:
        boxes: (N,4) [x1,y1,x2,y2] in pixels (rounded to the nearest pixel, clipped).
        valid: (N,) bool, frames that have a box.
        height, width: mask size.

    Returns:
        (N,H,W) bool.
    """
    b = np.rint(np.asarray(boxes, dtype=np.float64)).astype(np.int64)
    valid = np.asarray(valid, dtype=bool)
    ys = np.arange(height)[None, :]
    xs = np.arange(width)[None, :]
    rows = (ys >= b[:, 1:2]) & (ys <= b[:, 3:4]) & valid[:, None]
    cols = (xs >= b[:, 0:1]) & (xs <= b[:, 2:3])
    return rows[:, :, None] & cols[:, None, :]


class LocalizationMeter:
    """Accumulates per-frame and per-video mask IoUs, then scores them per class.

    Args:
        num_classes: C.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.frame_ious: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
        self.video_ious: list[list[float]] = [[] for _ in range(num_classes)]

    def add(self, label: int, gt: np.ndarray, pred: np.ndarray) -> None:
        """Add one video.

        Args:
            label: its class in [0, C).
            gt: (N,H,W) bool ground-truth masks (empty where the frame has no actor).
            pred: (N,H,W) bool predicted foreground masks (e.g. probability ≥ 0.5).
        """
        if not 0 <= label < self.num_classes:
            raise ValueError(f"label {label} outside [0, {self.num_classes})")
        gt = np.asarray(gt, dtype=bool)
        pred = np.asarray(pred, dtype=bool)
        if gt.shape != pred.shape or gt.ndim != 3:
            raise ValueError(f"gt and pred must both be (N,H,W), got {gt.shape} and {pred.shape}")
        keep = gt.reshape(len(gt), -1).any(axis=1)
        if not keep.any():
            return  # a video without ground-truth frames says nothing about localization
        g, p = gt[keep].reshape(keep.sum(), -1), pred[keep].reshape(keep.sum(), -1)
        inter = np.count_nonzero(g & p, axis=1)
        union = np.count_nonzero(g | p, axis=1)  # >= 1: every kept frame has ground truth
        self.frame_ious[label].append(inter / union)
        self.video_ious[label].append(float(inter.sum() / union.sum()))

    def result(self, thresholds: Sequence[float] = (0.5,)) -> dict[str, np.ndarray | float]:
        """Scores in percent.

        Returns:
            {"f-mAP@τ": float, "v-mAP@τ": float, "f-AP@τ": (C,) array, "v-AP@τ": (C,) array}
            per threshold τ; classes without videos are NaN and left out of the means.
        """
        out: dict[str, np.ndarray | float] = {}
        for t in thresholds:
            f = np.full(self.num_classes, np.nan)
            v = np.full(self.num_classes, np.nan)
            for c in range(self.num_classes):
                if self.video_ious[c]:
                    f[c] = 100.0 * np.mean(np.concatenate(self.frame_ious[c]) >= t)
                    v[c] = 100.0 * np.mean(np.asarray(self.video_ious[c]) >= t)
            out[f"f-AP@{t:g}"] = f
            out[f"v-AP@{t:g}"] = v
            out[f"f-mAP@{t:g}"] = float(np.nanmean(f)) if np.isfinite(f).any() else float("nan")
            out[f"v-mAP@{t:g}"] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
        return out
