"""Pseudo-labels from sparse frame labels, with no ground-truth leak.

Only the label state is read (never the ground truth of unlabelled frames, not even a tube's
true extent). Per actor track k and frame f, with p / n the nearest labelled frames before /
after f (labelled frames include "no actor" ones):

* f labelled: its own box for k, or nothing if k is absent;
* p and n both hold k: linear interpolation of the two boxes;
* otherwise the nearest of p and n (p on ties) decides: its box for k is held, and if that
  frame lacks k (e.g. labelled "no actor") f is background for k. Before the first and after
  the last labelled frame this holds the nearest labelled box.

`src` records which labelled frame a held box came from, so datasets with pixel masks use the
nearest labelled mask instead of a filled box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import LabelBox

__all__ = ["PseudoTracks", "pseudo_tracks", "render_boxes"]


@dataclass
class PseudoTracks:
    """Pseudo-labels of one video.

    Attributes:
        tubes: (K,) track ids (the label state's `tube` field), sorted.
        labels: (K,) class of each track (from its labelled boxes).
        boxes: (num_frames, K, 4) float32 [x1, y1, x2, y2] original pixels; NaN = no box.
        src: (num_frames, K) int64: the labelled frame whose box/mask is held (-1 when the
            box is interpolated or absent).
        annotated: (num_frames,) bool, frames carrying a human label.
    """

    tubes: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    src: np.ndarray
    annotated: np.ndarray

    def foreground(self) -> np.ndarray:
        """(num_frames,) bool: frames with at least one pseudo box."""
        return (
            ~np.all(np.isnan(self.boxes[..., 0]), axis=1)
            if self.boxes.shape[1]
            else np.zeros(len(self.boxes), bool)
        )


def pseudo_tracks(entries: dict[int, tuple[LabelBox, ...]], num_frames: int) -> PseudoTracks:
    """Interpolate the labelled frames of one video (see the module docstring).

    Args:
        entries: {frame: boxes} from `LabelState.entries(video)`; empty boxes = "no actor".
        num_frames: the video's frame count.
    """
    lab = np.array(sorted(entries), dtype=np.int64)
    annotated = np.zeros(num_frames, bool)
    annotated[lab] = True
    tube_ids = sorted({b.tube for bs in entries.values() for b in bs})
    K = len(tube_ids)
    boxes = np.full((num_frames, K, 4), np.nan, np.float32)
    src = np.full((num_frames, K), -1, np.int64)
    labels = np.zeros(K, np.int64)
    if K == 0 or len(lab) == 0:
        return PseudoTracks(np.array(tube_ids, np.int64), labels, boxes, src, annotated)
    f = np.arange(num_frames)
    # Nearest labelled frame at or before / at or after each frame (-1 / -1 if none).
    pi = np.searchsorted(lab, f, side="right") - 1
    ni = np.searchsorted(lab, f, side="left")
    p = np.where(pi >= 0, lab[np.clip(pi, 0, None)], -1)
    n = np.where(ni < len(lab), lab[np.clip(ni, None, len(lab) - 1)], -1)
    for j, k in enumerate(tube_ids):
        kb = np.full((num_frames, 4), np.nan, np.float64)  # box of track k on labelled frames
        for fr, bs in entries.items():
            for b in bs:
                if b.tube == k:
                    kb[fr] = b.box
                    labels[j] = b.label
        has_p = (p >= 0) & ~np.isnan(kb[np.clip(p, 0, None), 0])
        has_n = (n >= 0) & ~np.isnan(kb[np.clip(n, 0, None), 0])
        both = has_p & has_n & (p != n)
        # Weight of the next box: 0 at p, 1 at n.
        w = np.where(both, (f - p) / np.maximum(n - p, 1), 0.0)[:, None]
        interp = (1 - w) * kb[np.clip(p, 0, None)] + w * kb[np.clip(n, 0, None)]
        # Otherwise the nearest labelled frame decides (p on ties; p alone at the end, n at
        # the start).
        near = np.where((p >= 0) & ((n < 0) | (f - p <= n - f)), p, n)
        held = kb[np.clip(near, 0, None)]
        out = np.where(both[:, None], interp, held)
        out[near < 0] = np.nan
        boxes[:, j] = out
        src[:, j] = np.where(~both & (near >= 0) & ~np.isnan(held[:, 0]), near, -1)
    return PseudoTracks(np.array(tube_ids, np.int64), labels, boxes, src, annotated)


def render_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Fill boxes into masks: pixel (i, j) is foreground when its centre (j+0.5, i+0.5) lies in
    a box [x1, x2) × [y1, y2).

    Args:
        boxes: (T, K, 4) float [x1, y1, x2, y2] in output pixels; NaN rows are skipped.
    Returns:
        (T, height, width) uint8 in {0, 1}.
    """
    T, K = boxes.shape[:2]
    if K == 0:
        return np.zeros((T, height, width), np.uint8)
    xs = np.arange(width, dtype=np.float32) + 0.5
    ys = np.arange(height, dtype=np.float32) + 0.5
    b = np.nan_to_num(boxes, nan=-1.0)  # a NaN box becomes empty: x1 = x2
    inx = (xs[None, None] >= b[..., 0:1]) & (xs[None, None] < b[..., 2:3])  # (T, K, W)
    iny = (ys[None, None] >= b[..., 1:2]) & (ys[None, None] < b[..., 3:4])  # (T, K, H)
    m = np.any(iny[..., :, None] & inx[..., None, :], axis=1)
    return m.astype(np.uint8)
