"""Frame-AP and video-AP with the ACT/MOC conventions (the `act` protocol).

- IoU with the +1 pixel convention (`claus.eval.boxes`).
- Detections sorted by score (descending; ties keep input order) and matched greedily, each to
  the still-unmatched ground truth of its class in the same frame (video for tubes) with the
  highest IoU; a true positive when that IoU ≥ the threshold, else a false positive.
- AP = area under the raw precision-recall curve by the trapezoid rule, starting from
  (recall 0, precision 1), with no interpolation envelope (neither VOC 11-point nor all-point).
- mAP = mean over the classes that have ground truth; the others are NaN and left out.

Ground truth uses the ACT `gttubes` layout: {video: {label: [array (n,5): frame (1-based),
x1, y1, x2, y2]}} with inclusive pixel boxes, as in `UCF101v2-GT.pkl` / `JHMDB-GT.pkl` and as
`VideoDataset.act_gt` writes them; only videos listed in `videos` count. Detections are
inclusive too (`claus.eval.detect.components`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .boxes import box_iou, check_tube, tube_iou

#: Thresholds of the v-mAP summary besides 0.5:0.05:0.95.
VIDEO_THRESHOLDS = (0.1, 0.2, 0.3, 0.5)


def ap_from_tp(tp: np.ndarray, num_gt: int) -> float:
    """AP in [0,1] of a ranked list of detections.

    Args:
        tp: (N,) bool, True where the detection at rank i (best first) is a true positive.
        num_gt: number of ground-truth instances (> 0).

    Returns:
        Trapezoid area under the raw PR curve from (recall 0, precision 1).
    """
    tp = np.asarray(tp, dtype=bool)
    if num_gt <= 0:
        raise ValueError(f"num_gt must be > 0, got {num_gt}")
    if tp.size == 0:
        return 0.0
    ctp = np.cumsum(tp, dtype=np.float64)
    precision = np.concatenate([[1.0], ctp / np.arange(1, tp.size + 1)])
    recall = np.concatenate([[0.0], ctp / num_gt])
    return float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) * 0.5))


def _detections_array(detections: np.ndarray | Sequence, num_videos: int) -> np.ndarray:
    d = np.asarray(detections, dtype=np.float64)
    if d.size == 0:
        return np.zeros((0, 8))
    if d.ndim != 2 or d.shape[1] != 8:
        raise ValueError("detections must be an (N,8) array [video index, frame, label, score, "
                         f"x1, y1, x2, y2], got shape {d.shape}")
    for col, name in ((0, "video index"), (1, "frame"), (2, "label")):
        if not np.all(d[:, col] == np.round(d[:, col])):
            raise ValueError(f"detections: column {col} ({name}) must hold integers")
    bad = (d[:, 0] < 0) | (d[:, 0] >= num_videos)
    if bad.any():
        raise ValueError(f"detections: video index {int(d[bad][0, 0])} out of range for "
                         f"{num_videos} videos")
    if (d[:, 2] < 0).any():
        raise ValueError("detections: labels must be >= 0")
    return d


def _gt_rows(gt: Mapping, videos: Sequence[str]) -> tuple[np.ndarray, int]:
    """GT of the listed videos as (G,7) rows [video index, frame, label, x1, y1, x2, y2], and
    1 + the largest label anywhere in gt (0 if none)."""
    rows = []
    max_label = -1
    for per_label in gt.values():
        for label in per_label:
            max_label = max(max_label, int(label))
    for iv, v in enumerate(videos):
        for label, tubes in gt.get(v, {}).items():
            for k, tube in enumerate(tubes):
                t = np.asarray(tube, dtype=np.float64)
                if t.size == 0:
                    continue
                if t.ndim != 2 or t.shape[1] != 5:
                    raise ValueError(f"gt[{v!r}][{label}][{k}] must be an (n,5) array [frame, x1, "
                                     f"y1, x2, y2], got shape {t.shape}")
                lead = np.column_stack([np.full(len(t), iv), t[:, 0], np.full(len(t), int(label))])
                rows.append(np.hstack([lead, t[:, 1:5]]))
    g = np.concatenate(rows) if rows else np.zeros((0, 7))
    return g, max_label + 1


def _frame_tp(gt_keys: np.ndarray, gt_boxes: np.ndarray, det_keys: np.ndarray,
              det_boxes: np.ndarray, thr: float) -> np.ndarray:
    """Greedy matching of score-sorted detections to GT boxes of the same key (frame).

    Equivalent to visiting detections best first and removing the matched GT each time, but
    vectorized: detections of different frames never compete, so all detections with the same
    rank inside their frame are matched at once, rank after rank.

    Args:
        gt_keys: (G,) int64 frame keys of the GT boxes; gt_boxes (G,4).
        det_keys: (N,) int64 frame keys of detections sorted by score; det_boxes (N,4).

    Returns:
        (N,) bool true-positive flags.
    """
    n = det_keys.size
    tp = np.zeros(n, dtype=bool)
    if n == 0 or gt_keys.size == 0:
        return tp
    uniq, inv = np.unique(np.concatenate([gt_keys, det_keys]), return_inverse=True)
    g_id, d_id = inv[: gt_keys.size], inv[gt_keys.size :]
    k = uniq.size

    # GT padded per key: slot j of key q holds its j-th box in input order, which keeps ACT's
    # tie-break (argmax takes the first of equal IoUs among the remaining boxes).
    g_order = np.argsort(g_id, kind="stable")
    g_count = np.bincount(g_id, minlength=k)
    g_start = np.cumsum(g_count) - g_count
    g_slot = np.arange(gt_keys.size) - g_start[g_id[g_order]]
    gmax = int(g_count.max())
    pad = np.zeros((k, gmax, 4))
    free = np.zeros((k, gmax), dtype=bool)
    pad[g_id[g_order], g_slot] = gt_boxes[g_order]
    free[g_id[g_order], g_slot] = True

    # Rank of each detection within its key, in score order (detections arrive sorted).
    d_order = np.argsort(d_id, kind="stable")
    d_count = np.bincount(d_id, minlength=k)
    d_start = np.cumsum(d_count) - d_count
    rank = np.empty(n, dtype=np.int64)
    rank[d_order] = np.arange(n) - d_start[d_id[d_order]]

    cand = np.flatnonzero(g_count[d_id] > 0)  # detections in frames without GT stay FP
    cand = cand[np.argsort(rank[cand], kind="stable")]
    bounds = np.searchsorted(rank[cand], np.arange(rank[cand].max() + 2)) if cand.size else [0]
    for r in range(len(bounds) - 1):
        idx = cand[bounds[r] : bounds[r + 1]]
        q = d_id[idx]
        ious = box_iou(pad[q], det_boxes[idx][:, None, :])
        ious = np.where(free[q], ious, -np.inf)
        j = np.argmax(ious, axis=1)
        hit = ious[np.arange(idx.size), j] >= thr
        tp[idx[hit]] = True
        free[q[hit], j[hit]] = False
    return tp


def frame_ap(gt: Mapping, videos: Sequence[str], detections: np.ndarray | Sequence,
             iou: float = 0.5) -> tuple[float, np.ndarray]:
    """Frame-AP per class and f-mAP, in percent (ACT/MOC convention).

    Args:
        gt: {video: {label: [array (n,5): frame (1-based), x1, y1, x2, y2]}} (ACT gttubes).
        videos: evaluated video names; position = video index used in `detections`.
        detections: (N,8) [video index, frame (1-based), label, score, x1, y1, x2, y2].
        iou: IoU threshold of a true positive.

    Returns:
        (f-mAP in percent: mean over classes with ground truth, NaN if none; per-class AP in
        percent, float64 array of length 1 + the largest label in gt or detections, NaN for
        classes without ground truth).
    """
    videos = list(videos)
    d = _detections_array(detections, len(videos))
    g, n_gt_labels = _gt_rows(gt, videos)
    num_classes = max(n_gt_labels, int(d[:, 2].max()) + 1 if len(d) else 0)
    per_class = np.full(num_classes, np.nan)

    # One int64 key per (video, frame); frames are offset so they are >= 0.
    frames = np.concatenate([g[:, 1], d[:, 1]]).astype(np.int64)
    fmin = int(frames.min()) if frames.size else 0
    span = int(frames.max()) - fmin + 1 if frames.size else 1

    def keys(rows: np.ndarray) -> np.ndarray:
        return rows[:, 0].astype(np.int64) * span + (rows[:, 1].astype(np.int64) - fmin)

    order = np.argsort(-d[:, 3], kind="stable")
    d = d[order]
    for c in range(num_classes):
        gc = g[g[:, 2] == c]
        if len(gc) == 0:
            continue
        dc = d[d[:, 2] == c]
        tp = _frame_tp(keys(gc), gc[:, 3:7], keys(dc), dc[:, 4:8], iou)
        per_class[c] = 100.0 * ap_from_tp(tp, len(gc))
    return _mean(per_class), per_class


def _mean(per_class: np.ndarray) -> float:
    valid = per_class[~np.isnan(per_class)]
    return float(valid.mean()) if valid.size else float("nan")


def _video_ious(gt: Mapping, videos: Sequence[str], tubes: Mapping, num_classes: int
                ) -> tuple[list[list[tuple[float, np.ndarray]]], np.ndarray]:
    """Per class: detection tubes best first, each with its IoUs to the class's GT tubes of its
    video; and the number of GT tubes per class."""
    index = {v: i for i, v in enumerate(videos)}
    unknown = [v for v in tubes if v not in index]
    if unknown:
        raise ValueError(f"tubes given for videos not in the evaluated list: {unknown[:5]}")
    num_gt = np.zeros(num_classes, dtype=np.int64)
    gt_tubes: dict[tuple[int, int], list[np.ndarray]] = {}
    for iv, v in enumerate(videos):
        for label, tl in gt.get(v, {}).items():
            c = int(label)
            if not 0 <= c < num_classes:
                raise ValueError(f"gt[{v!r}] has label {c} outside [0, {num_classes})")
            checked = [check_tube(t, f"gt[{v!r}][{c}][{k}]") for k, t in enumerate(tl)
                       if np.asarray(t).size]
            gt_tubes[(iv, c)] = checked
            num_gt[c] += len(checked)

    per_class: list[list[tuple[float, np.ndarray]]] = [[] for _ in range(num_classes)]
    for iv, v in enumerate(videos):
        for label, tl in tubes.get(v, {}).items():
            c = int(label)
            if not 0 <= c < num_classes:
                raise ValueError(f"tubes[{v!r}] has label {c} outside [0, {num_classes})")
            gts = gt_tubes.get((iv, c), [])
            for k, item in enumerate(tl):
                tube, score = item
                t = check_tube(tube, f"tubes[{v!r}][{c}][{k}]")
                ious = np.array([tube_iou(gtt, t) for gtt in gts])
                per_class[c].append((float(score), np.concatenate([[iv], ious])))
    ranked = []
    for dets in per_class:
        order = np.argsort(-np.array([s for s, _ in dets]), kind="stable")
        ranked.append([dets[i] for i in order])
    return ranked, num_gt


def _video_ap_at(ranked: list[list[tuple[float, np.ndarray]]], num_gt: np.ndarray,
                 thr: float) -> np.ndarray:
    per_class = np.full(len(num_gt), np.nan)
    for c, dets in enumerate(ranked):
        if num_gt[c] == 0:
            continue
        used: dict[int, np.ndarray] = {}
        tp = np.zeros(len(dets), dtype=bool)
        for i, (_, row) in enumerate(dets):
            iv, ious = int(row[0]), row[1:]
            if ious.size == 0:
                continue
            free = used.setdefault(iv, np.ones(ious.size, dtype=bool))
            masked = np.where(free, ious, -np.inf)
            j = int(np.argmax(masked))
            if masked[j] >= thr:
                tp[i] = True
                free[j] = False
        per_class[c] = 100.0 * ap_from_tp(tp, int(num_gt[c]))
    return per_class


def video_ap(gt: Mapping, videos: Sequence[str], tubes: Mapping, num_classes: int,
             iou: float = 0.5) -> tuple[float, np.ndarray]:
    """Video-AP per class and v-mAP, in percent (ACT/MOC convention).

    Tube IoU = temporal IoU (inclusive frame counts) × mean per-frame IoU over the frames both
    tubes cover, 0 without temporal overlap. Tubes are used as given (no NMS here).

    Args:
        gt: {video: {label: [array (n,5): frame, x1, y1, x2, y2]}} (ACT gttubes).
        videos: evaluated video names.
        tubes: {video: {label: [(array (L,5): frame, x1, y1, x2, y2 over contiguous frames,
            score)]}}; every video must be in `videos`.
        num_classes: C; labels must lie in [0, C).
        iou: tube IoU threshold of a true positive.

    Returns:
        (v-mAP in percent over classes with ground truth, NaN if none; (C,) float64 per-class
        AP in percent, NaN where a class has no ground truth).
    """
    ranked, num_gt = _video_ious(gt, list(videos), tubes, num_classes)
    per_class = _video_ap_at(ranked, num_gt, iou)
    return _mean(per_class), per_class


def video_map_summary(gt: Mapping, videos: Sequence[str], tubes: Mapping, num_classes: int,
                      thresholds: Sequence[float] = VIDEO_THRESHOLDS) -> dict[str, float]:
    """v-mAP (percent) at each threshold and the mean over 0.5:0.05:0.95, tube IoUs computed once.

    Returns:
        {"v-mAP@0.1": ..., "v-mAP@0.2": ..., "v-mAP@0.3": ..., "v-mAP@0.5": ...,
        "v-mAP@0.5:0.95": ...}.
    """
    ranked, num_gt = _video_ious(gt, list(videos), tubes, num_classes)
    out = {f"v-mAP@{t:g}": _mean(_video_ap_at(ranked, num_gt, t)) for t in thresholds}
    coco = np.round(np.arange(0.5, 0.951, 0.05), 2)
    out["v-mAP@0.5:0.95"] = float(np.mean([_mean(_video_ap_at(ranked, num_gt, t))
                                           for t in coco]))
    return out
