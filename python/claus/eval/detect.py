"""From per-frame predictions to detections and tubes.

    fg (N,H,W) foreground probability, cls (N,C) class probability per frame
        │ components(): connected foreground regions above a threshold, one box each
        ▼
    frame detections (the (K,8) layout of `frame_ap`): one per region and class, scored
        region confidence × class probability
        │ link_tubes(): greedy temporal linking by IoU (class-agnostic, on the regions)
        ▼
    tubes per class (the layout of `video_ap`), scored by the mean detection score
        │ tube_nms(): a separate, optional step
        ▼

Boxes are inclusive pixel coordinates [x1,y1,x2,y2] (the +1 convention of the metrics). Frame
numbers in the outputs are 1-based (the ACT layouts); everything else is 0-based.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .boxes import iou_matrix, tube_iou

# Within-frame 8-connectivity, nothing across frames: one labelling call covers a whole video.
_STRUCTURE = np.zeros((3, 3, 3), dtype=bool)
_STRUCTURE[1] = True


@dataclass
class Components:
    """Connected foreground regions of a video, one row each, sorted by (frame, label order).

    frame: (K,) int64 0-based frame index.
    box: (K,4) float64 [x1,y1,x2,y2] inclusive pixels (scaled to the output frame size).
    conf: (K,) float64 mean foreground probability over the region.
    area: (K,) int64 pixels in the region (at prediction resolution).
    """

    frame: np.ndarray
    box: np.ndarray
    conf: np.ndarray
    area: np.ndarray

    def __len__(self) -> int:
        return int(self.frame.size)


def components(fg: np.ndarray, threshold: float = 0.5, min_area: int = 4,
               scale: tuple[float, float] = (1.0, 1.0),
               max_per_frame: int | None = 10) -> Components:
    """Boxes of the connected foreground regions of every frame.

    Args:
        fg: (N,H,W) foreground probability, float.
        threshold: a pixel is foreground when fg >= threshold.
        min_area: regions with fewer pixels are dropped (speckle).
        scale: (sx, sy) from prediction pixels to output pixels; inclusive boxes scale as
            x1·sx and (x2+1)·sx - 1.
        max_per_frame: keep at most this many regions per frame, the most confident, or None
            for all.

    Returns:
        Components.
    """
    fg = np.asarray(fg, dtype=np.float64)
    if fg.ndim != 3:
        raise ValueError(f"fg must be (N,H,W), got shape {fg.shape}")
    labels, n = ndimage.label(fg >= threshold, structure=_STRUCTURE)
    empty = Components(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))
    if n == 0:
        return empty
    slices = ndimage.find_objects(labels)
    ids = np.arange(1, n + 1)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    conf = np.asarray(ndimage.mean(fg, labels, ids), dtype=np.float64)
    frame = np.array([s[0].start for s in slices], dtype=np.int64)
    sx, sy = scale
    box = np.array([[s[2].start * sx, s[1].start * sy, s[2].stop * sx - 1, s[1].stop * sy - 1]
                    for s in slices], dtype=np.float64)
    keep = area >= min_area
    if max_per_frame is not None:
        # Rank regions inside their frame by confidence; drop those beyond the cap.
        order = np.lexsort((-conf, frame))
        start = np.searchsorted(frame[order], frame[order])
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n) - start
        keep &= rank < max_per_frame
    return Components(frame[keep], box[keep], conf[keep], area[keep].astype(np.int64))


def frame_detections(comps: Components, cls_prob: np.ndarray, video_index: int,
                     top_k: int = 3, min_score: float = 0.0) -> np.ndarray:
    """Detections of one video in the (K,8) layout of `frame_ap`.

    Each region yields one detection for each of its frame's `top_k` most probable classes,
    scored region confidence × class probability.

    Args:
        comps: from `components`.
        cls_prob: (N,C) per-frame class probabilities.
        video_index: index of the video in the evaluated list.
        top_k: classes per region.
        min_score: detections scoring below are dropped.

    Returns:
        (K,8) float64 [video index, frame (1-based), label, score, x1, y1, x2, y2].
    """
    cls_prob = np.asarray(cls_prob, dtype=np.float64)
    if len(comps) == 0:
        return np.zeros((0, 8))
    k = min(top_k, cls_prob.shape[1])
    probs = cls_prob[comps.frame]  # (K,C)
    labels = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (K,k)
    scores = comps.conf[:, None] * np.take_along_axis(probs, labels, axis=1)
    rows = np.concatenate(
        [
            np.full((len(comps), k, 1), float(video_index)),
            np.broadcast_to((comps.frame + 1)[:, None, None], (len(comps), k, 1)),
            labels[..., None].astype(np.float64),
            scores[..., None],
            np.broadcast_to(comps.box[:, None, :], (len(comps), k, 4)),
        ],
        axis=2,
    ).reshape(-1, 8)
    return rows[rows[:, 3] >= min_score]


def link_tubes(frames: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
               link_iou: float = 0.2, max_gap: int = 2) -> list[np.ndarray]:
    """Greedy temporal linking of per-frame boxes into tubes.

    Frames are visited in increasing order. At each frame the live tubes, best mean score
    first, each take the still-free box of that frame with the highest IoU with the tube's last
    box, when that IoU ≥ `link_iou`; boxes left over start new tubes. A tube dies once it has
    gone more than `max_gap` frames without a box.

    Args:
        frames: (K,) int frame index of each box.
        boxes: (K,4) boxes [x1,y1,x2,y2].
        scores: (K,) scores (ordering of tubes and of new boxes).
        link_iou: minimum IoU to extend a tube.
        max_gap: frames a tube may skip; skipped frames are filled by `tube_boxes`.

    Returns:
        Tubes as arrays of indices into the inputs, each in increasing frame order, sorted by
        their first index.
    """
    frames = np.asarray(frames, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((-scores, frames))  # by frame, best score first within a frame
    starts = np.flatnonzero(np.r_[True, np.diff(frames[order]) != 0])
    live: list[list[int]] = []
    live_sum: list[float] = []
    done: list[list[int]] = []
    for a, b in zip(starts, np.r_[starts[1:], order.size], strict=True):
        f = frames[order[a]]
        det = order[a:b]
        # Retire tubes whose gap is now too long.
        alive = [f - frames[t[-1]] <= max_gap + 1 for t in live]
        done += [t for t, a in zip(live, alive, strict=True) if not a]
        live = [t for t, a in zip(live, alive, strict=True) if a]
        live_sum = [s for s, a in zip(live_sum, alive, strict=True) if a]
        free = np.ones(det.size, dtype=bool)
        if live:
            ious = iou_matrix(boxes[[t[-1] for t in live]], boxes[det])  # (A,D)
            mean = np.array(live_sum) / np.array([len(t) for t in live])
            for i in np.argsort(-mean, kind="stable"):
                cand = np.where(free, ious[i], -np.inf)
                j = int(np.argmax(cand))
                if cand[j] >= link_iou:
                    live[i].append(int(det[j]))
                    live_sum[i] += float(scores[det[j]])
                    free[j] = False
        for j in np.flatnonzero(free):
            live.append([int(det[j])])
            live_sum.append(float(scores[det[j]]))
    done += live
    return sorted((np.array(t, dtype=np.int64) for t in done), key=lambda t: int(t[0]))


def tube_boxes(frames: np.ndarray, boxes: np.ndarray, index: np.ndarray) -> np.ndarray:
    """One linked tube as an (L,5) array [frame, x1, y1, x2, y2] over contiguous frames.

    Frames the tube skipped get boxes interpolated linearly between their neighbours. Frame
    numbers are returned as given (add 1 for the ACT layout).
    """
    f = np.asarray(frames, dtype=np.int64)[index]
    b = np.asarray(boxes, dtype=np.float64)[index]
    full = np.arange(f[0], f[-1] + 1)
    out = np.empty((full.size, 5))
    out[:, 0] = full
    for c in range(4):
        out[:, c + 1] = np.interp(full, f, b[:, c])
    return out


def video_tubes(comps: Components, cls_prob: np.ndarray, link_iou: float = 0.2,
                max_gap: int = 2, min_length: int = 3, top_k: int = 1
                ) -> dict[int, list[tuple[np.ndarray, float]]]:
    """Tubes of one video in the layout of `video_ap` (before NMS).

    Regions are linked class-agnostically (`link_tubes`, on region confidence); each tube is
    then labelled with its `top_k` classes by mean per-frame score (region confidence × class
    probability over the tube's regions), which is also its score for that class.

    Args:
        comps: from `components`.
        cls_prob: (N,C) per-frame class probabilities.
        link_iou, max_gap: see `link_tubes`.
        min_length: tubes spanning fewer frames are dropped.
        top_k: labels per tube.

    Returns:
        {label: [(array (L,5): frame (1-based), x1, y1, x2, y2, score)]}.
    """
    cls_prob = np.asarray(cls_prob, dtype=np.float64)
    out: dict[int, list[tuple[np.ndarray, float]]] = {}
    if len(comps) == 0:
        return out
    k = min(top_k, cls_prob.shape[1])
    for idx in link_tubes(comps.frame, comps.box, comps.conf, link_iou, max_gap):
        tube = tube_boxes(comps.frame, comps.box, idx)
        if len(tube) < min_length:
            continue
        tube[:, 0] += 1
        per_class = (comps.conf[idx, None] * cls_prob[comps.frame[idx]]).mean(axis=0)
        for c in np.argsort(-per_class, kind="stable")[:k]:
            out.setdefault(int(c), []).append((tube, float(per_class[c])))
    return out


def tube_nms(tubes: Sequence[tuple[np.ndarray, float]], iou: float = 0.5
             ) -> list[tuple[np.ndarray, float]]:
    """Non-maximum suppression of the tubes of one video and class.

    Tubes are visited best score first; one is kept unless its tube IoU (`tube_iou`) with a
    kept tube exceeds `iou`.

    Returns:
        The kept (tube, score) pairs, best first.
    """
    order = np.argsort(-np.array([s for _, s in tubes], dtype=np.float64), kind="stable")
    kept: list[tuple[np.ndarray, float]] = []
    for i in order:
        t, s = tubes[i]
        if all(tube_iou(k, t) <= iou for k, _ in kept):
            kept.append((t, s))
    return kept


def nms_all(tubes: dict, iou: float = 0.5) -> dict:
    """`tube_nms` applied to every (video, label) of a {video: {label: [(tube, score)]}} dict."""
    return {v: {c: tube_nms(tl, iou) for c, tl in per.items()} for v, per in tubes.items()}
