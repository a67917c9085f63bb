"""Metrics on hand cases, and the vectorized matcher against a literal per-detection loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from claus.eval import (
    ClipAccumulator,
    LocalizationMeter,
    ap_from_tp,
    box_iou,
    boxes_to_masks,
    components,
    frame_ap,
    frame_detections,
    link_tubes,
    tube_boxes,
    tube_iou,
    tube_nms,
    video_ap,
    video_map_summary,
    video_tubes,
)


def tube(frames, box):
    """(L,5) tube with one box over the given frames."""
    f = np.asarray(frames, dtype=np.float64)
    return np.column_stack([f, np.tile(np.asarray(box, dtype=np.float64), (f.size, 1))])


def dets_from_gt(gt, videos, score=1.0):
    rows = []
    for iv, v in enumerate(videos):
        for label, tubes in gt.get(v, {}).items():
            for t in tubes:
                for r in t:
                    rows.append([iv, r[0], label, score, *r[1:5]])
    return np.array(rows)


# --------------------------------------------------------------------------- IoU conventions


def test_box_iou_plus_one_convention():
    # A 10x10-pixel box (x 0..9) and its left half (x 0..4): 50 / 100 pixels under +1.
    assert box_iou([0, 0, 9, 9], [0, 0, 4, 9]) == pytest.approx(0.5)
    # Touching boxes share one pixel column under the inclusive convention.
    assert box_iou([0, 0, 9, 9], [9, 0, 18, 9]) == pytest.approx(10 / 190)
    assert box_iou([0, 0, 9, 9], [10, 0, 19, 9]) == 0.0


def test_frame_ap_uses_plus_one_iou():
    gt = {"v": {0: [tube([1], [0, 0, 9, 9])]}}
    det = np.array([[0, 1, 0, 0.9, 0, 0, 4, 9]])
    # IoU is exactly 0.5 with +1 (a hit), 36/81 = 0.44 without (a miss).
    assert frame_ap(gt, ["v"], det, iou=0.5)[0] == pytest.approx(100.0)
    assert frame_ap(gt, ["v"], det, iou=0.51)[0] == pytest.approx(0.0)


def test_tube_iou_temporal_times_spatial():
    a = tube(range(1, 11), [0, 0, 9, 9])
    b = tube(range(6, 16), [0, 0, 4, 9])
    # Frames 6..10 overlap: temporal IoU 5/15; each common frame has box IoU 0.5.
    assert tube_iou(a, b) == pytest.approx(5 / 15 * 0.5)
    assert tube_iou(a, tube(range(11, 20), [0, 0, 9, 9])) == 0.0
    assert tube_iou(a, a) == pytest.approx(1.0)


# --------------------------------------------------------------------------- AP on hand cases


def test_known_pr_curve_trapezoid_from_recall0_precision1():
    # Ranked TP, FP, TP, FP with 3 GT: (r,p) = (1/3,1), (1/3,1/2), (2/3,2/3), (2/3,1/2).
    # Trapezoids from (0,1): 1/3·(1+1)/2 + 0 + 1/3·(1/2+2/3)/2 + 0 = 19/36.
    # (VOC all-point interpolation would give 5/9, 11-point another value.)
    assert ap_from_tp(np.array([1, 0, 1, 0], bool), 3) == pytest.approx(19 / 36)
    gt = {"a": {0: [tube([1, 2, 3], [10, 10, 29, 29])]}}
    hit, miss = [10, 10, 29, 29], [50, 50, 60, 60]
    det = np.array([
        [0, 1, 0, 0.9, *hit],
        [0, 2, 0, 0.8, *miss],
        [0, 2, 0, 0.7, *hit],
        [0, 3, 0, 0.6, *miss],
    ])
    m, per = frame_ap(gt, ["a"], det)
    assert m == pytest.approx(100 * 19 / 36)
    assert per.shape == (1,)


def test_perfect_detections_score_100_and_none_score_0():
    rng = np.random.default_rng(0)
    gt = {}
    for v in range(4):
        s = int(rng.integers(1, 20))
        gt[f"v{v}"] = {v % 3: [tube(range(s, s + 8), [5 + v, 5, 30 + v, 40])]}
    videos = sorted(gt)
    det = dets_from_gt(gt, videos)
    assert frame_ap(gt, videos, det)[0] == pytest.approx(100.0)
    assert frame_ap(gt, videos, np.zeros((0, 8)))[0] == 0.0
    tubes = {v: {c: [(t, 1.0) for t in tl] for c, tl in per.items()} for v, per in gt.items()}
    assert video_ap(gt, videos, tubes, 3)[0] == pytest.approx(100.0)
    assert video_ap(gt, videos, {}, 3)[0] == 0.0
    summary = video_map_summary(gt, videos, tubes, 3)
    assert set(summary) == {"v-mAP@0.1", "v-mAP@0.2", "v-mAP@0.3", "v-mAP@0.5", "v-mAP@0.5:0.95"}
    assert all(val == pytest.approx(100.0) for val in summary.values())


def test_classes_without_ground_truth_are_nan_and_left_out():
    gt = {"a": {0: [tube([1], [0, 0, 9, 9])]}, "b": {2: [tube([1], [0, 0, 9, 9])]}}
    det = np.array([
        [0, 1, 0, 0.9, 0, 0, 9, 9],  # class 0: perfect
        [1, 1, 3, 0.9, 0, 0, 9, 9],  # class 3 has no GT
        [1, 1, 1, 0.5, 0, 0, 9, 9],  # class 1 has no GT
    ])
    m, per = frame_ap(gt, ["a", "b"], det)
    assert per.shape == (4,)  # 1 + largest label in gt or detections
    assert per[0] == pytest.approx(100.0) and per[2] == 0.0
    assert math.isnan(per[1]) and math.isnan(per[3])
    assert m == pytest.approx(50.0)
    vm, vper = video_ap(gt, ["a", "b"], {}, num_classes=5)
    assert vper.shape == (5,) and np.isnan(vper[[1, 3, 4]]).all() and vm == 0.0
    assert math.isnan(frame_ap({}, [], np.zeros((0, 8)))[0])


def test_greedy_matching_duplicates_and_best_remaining_gt():
    # Two GT boxes in one frame; the best detection overlaps both but GT 1 more; the second
    # detection only fits GT 1, which is taken, so it is a false positive (no re-matching).
    g0, g1 = [0, 0, 9, 9], [4, 0, 13, 9]
    gt = {"a": {0: [tube([1], g0), tube([1], g1)]}}
    det = np.array([
        [0, 1, 0, 0.9, 3, 0, 12, 9],  # IoU 0.54 with g0, 0.82 with g1 -> g1
        [0, 1, 0, 0.8, 4, 0, 13, 9],  # == g1 (taken), IoU 0.43 with g0 -> FP
        [0, 1, 0, 0.7, 0, 0, 9, 9],   # == g0 -> TP
        [0, 1, 0, 0.6, 0, 0, 9, 9],   # duplicate -> FP
    ])
    # TP, FP, TP, FP with 2 GT: 1/2·1 + 0 + 1/2·(1/2 + 2/3)/2 + 0.
    assert frame_ap(gt, ["a"], det)[0] == pytest.approx(100 * (1 / 2 + 7 / 24))
    # Detections in other frames or videos never match.
    shifted = det.copy()
    shifted[:, 1] = 2
    assert frame_ap(gt, ["a"], shifted)[0] == 0.0


def test_video_ap_thresholds_and_ranking():
    gt = {"a": {0: [tube(range(1, 11), [0, 0, 9, 9])]}, "b": {0: [tube(range(1, 5), [0, 0, 9, 9])]}}
    half = tube(range(6, 16), [0, 0, 9, 9])  # tube IoU 5/15 with a's GT
    full_b = tube(range(1, 5), [0, 0, 9, 9])
    tubes = {"a": {0: [(half, 0.9)]}, "b": {0: [(full_b, 0.5)]}}
    # At 0.3: TP, TP -> 100. At 0.5: FP then TP: (r,p) = (0,0), (1/2,1/2) -> 1/2·(0+1/2)/2.
    assert video_ap(gt, ["a", "b"], tubes, 1, iou=0.3)[0] == pytest.approx(100.0)
    assert video_ap(gt, ["a", "b"], tubes, 1, iou=0.5)[0] == pytest.approx(100 * 0.125)
    s = video_map_summary(gt, ["a", "b"], tubes, 1)
    assert s["v-mAP@0.3"] == pytest.approx(100.0) and s["v-mAP@0.5"] == pytest.approx(12.5)
    # Every threshold in 0.5:0.95 sees the same FP (IoU 1/3), TP (IoU 1) ranking.
    assert s["v-mAP@0.5:0.95"] == pytest.approx(12.5)
    with pytest.raises(ValueError, match="not in the evaluated list"):
        video_ap(gt, ["a"], tubes, 1)


def test_bad_inputs_raise():
    gt = {"a": {0: [tube([1], [0, 0, 9, 9])]}}
    with pytest.raises(ValueError, match="out of range"):
        frame_ap(gt, ["a"], np.array([[1, 1, 0, 0.9, 0, 0, 9, 9]]))
    with pytest.raises(ValueError, match=r"\(N,8\)"):
        frame_ap(gt, ["a"], np.zeros((2, 7)))
    with pytest.raises(ValueError, match="strictly increasing"):
        video_ap(gt, ["a"], {"a": {0: [(tube([3, 2], [0, 0, 9, 9]), 1.0)]}}, 1)


# --------------------------------------------------------------------------- literal reference


def literal_iou(a, b):
    """IoU of two inclusive-pixel boxes [x1, y1, x2, y2], written here rather than taken from
    `claus.eval.box_iou` (under test: a bug there would cancel out of the comparison)."""
    w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return float(inter / (area_a + area_b - inter))


def naive_frame_ap(gt, videos, dets, thr):
    """The ACT procedure written as a plain loop over detections, with its own IoU."""
    labels = {int(c) for per in gt.values() for c in per} | {int(c) for c in dets[:, 2]}
    out = {}
    for c in sorted(labels):
        remaining = {}
        for iv, v in enumerate(videos):
            for t in gt.get(v, {}).get(c, []):
                for r in t:
                    remaining.setdefault((iv, int(r[0])), []).append(r[1:5])
        n_gt = sum(len(b) for b in remaining.values())
        if n_gt == 0:
            continue
        dc = dets[dets[:, 2] == c]
        dc = dc[np.argsort(-dc[:, 3], kind="stable")]
        tp = []
        for d in dc:
            key = (int(d[0]), int(d[1]))
            ok = False
            if remaining.get(key):
                ious = [literal_iou(g, d[4:8]) for g in remaining[key]]
                j = int(np.argmax(ious))
                if ious[j] >= thr:
                    ok = True
                    del remaining[key][j]
            tp.append(ok)
        prec, rec, tps = [1.0], [0.0], 0
        for i, ok in enumerate(tp):
            tps += ok
            prec.append(tps / (i + 1))
            rec.append(tps / n_gt)
        out[c] = 100 * sum((rec[i + 1] - rec[i]) * (prec[i + 1] + prec[i]) / 2
                           for i in range(len(tp)))
    return out


def test_literal_iou_hand_values():
    assert literal_iou([0, 0, 9, 9], [0, 0, 4, 9]) == 0.5
    assert literal_iou([0, 0, 9, 9], [9, 0, 18, 9]) == pytest.approx(10 / 190)
    assert literal_iou([0, 0, 9, 9], [10, 0, 19, 9]) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_frame_ap_equals_literal_loop(seed):
    rng = np.random.default_rng(seed)
    videos = [f"v{i}" for i in range(5)]
    gt = {}
    for v in videos[:4]:
        gt[v] = {}
        for _ in range(rng.integers(1, 4)):
            c = int(rng.integers(0, 3))
            s = int(rng.integers(1, 6))
            L = int(rng.integers(1, 6))
            xy = rng.uniform(0, 30, size=2)
            wh = rng.uniform(5, 20, size=2)
            boxes = np.tile(np.r_[xy, xy + wh], (L, 1)) + rng.normal(0, 1, (L, 4))
            gt[v].setdefault(c, []).append(np.column_stack([np.arange(s, s + L), boxes]))
    rows = []
    for _ in range(300):
        iv = int(rng.integers(0, 5))
        f = int(rng.integers(1, 11))
        c = int(rng.integers(0, 4))
        xy = rng.uniform(0, 30, size=2)
        wh = rng.uniform(5, 20, size=2)
        score = float(rng.integers(0, 20)) / 20  # many ties: the stable order must agree
        rows.append([iv, f, c, score, *xy, *(xy + wh)])
    # Add near-copies of GT so that there are true positives to find.
    for iv, v in enumerate(videos):
        for c, tl in gt.get(v, {}).items():
            for t in tl:
                for r in t:
                    rows.append([iv, r[0], c, rng.uniform(), *(r[1:5] + rng.normal(0, 2, 4))])
    dets = np.array(rows)[rng.permutation(len(rows))]
    for thr in (0.3, 0.5, 0.7):
        m, per = frame_ap(gt, videos, dets, iou=thr)
        ref = naive_frame_ap(gt, videos, dets, thr)
        for c in range(len(per)):
            if c in ref:
                assert per[c] == pytest.approx(ref[c], abs=1e-9)
            else:
                assert math.isnan(per[c])
        assert m == pytest.approx(np.mean(list(ref.values())))


# --------------------------------------------------------------------------- detections, tubes


def test_components_boxes_and_detections_layout():
    fg = np.zeros((3, 8, 10))
    fg[0, 1:3, 2:5] = 0.9  # 2 rows x 3 cols -> box [2,1,4,2]
    fg[0, 5:8, 7:10] = 0.6  # box [7,5,9,7]
    fg[1, 0, 0] = 0.8  # one pixel: speckle, dropped by min_area=2
    fg[2, 2:4, 2:4] = 0.4  # below threshold
    comps = components(fg, threshold=0.5, min_area=2)
    assert comps.frame.tolist() == [0, 0]
    np.testing.assert_allclose(comps.box, [[2, 1, 4, 2], [7, 5, 9, 7]])
    np.testing.assert_allclose(comps.conf, [0.9, 0.6])
    # Scaling inclusive boxes by 2: pixel block [2..4] becomes [4..9].
    scaled = components(fg, threshold=0.5, min_area=2, scale=(2.0, 2.0))
    np.testing.assert_allclose(scaled.box[0], [4, 2, 9, 5])
    cls = np.array([[0.7, 0.2, 0.1]] * 3)
    det = frame_detections(comps, cls, video_index=4, top_k=2)
    assert det.shape == (4, 8)
    np.testing.assert_allclose(det[0], [4, 1, 0, 0.9 * 0.7, 2, 1, 4, 2])
    np.testing.assert_allclose(det[1], [4, 1, 1, 0.9 * 0.2, 2, 1, 4, 2])
    one = components(fg, threshold=0.5, min_area=1, max_per_frame=1)
    assert one.frame.tolist() == [0, 1] and one.conf[0] == pytest.approx(0.9)


def test_link_tubes_hand_case():
    # Two actors over frames 0..5: A moves right 2 px per frame, B stays; B is missed in
    # frame 2 (a gap of one frame) and A vanishes after frame 3; a far box appears in frame 5.
    frames, boxes, scores = [], [], []
    for f in range(6):
        if f <= 3:
            frames.append(f), boxes.append([2 * f, 0, 2 * f + 9, 9]), scores.append(0.9)
        if f != 2:
            frames.append(f), boxes.append([40, 40, 49, 49]), scores.append(0.5)
    frames.append(5), boxes.append([100, 100, 109, 109]), scores.append(0.3)
    tubes = link_tubes(np.array(frames), np.array(boxes), np.array(scores), link_iou=0.5,
                       max_gap=1)
    got = sorted([np.array(frames)[t].tolist(), np.array(boxes)[t][0].tolist()] for t in tubes)
    assert got == sorted([
        [[0, 1, 2, 3], [0, 0, 9, 9]],
        [[0, 1, 3, 4, 5], [40, 40, 49, 49]],
        [[5], [100, 100, 109, 109]],
    ])
    # Without gaps allowed, B breaks into two tubes at the missed frame.
    assert len(link_tubes(np.array(frames), np.array(boxes), np.array(scores), 0.5, 0)) == 4
    # The gap is filled by interpolation in the contiguous tube.
    b = next(t for t in tubes if len(t) == 5)
    filled = tube_boxes(np.array(frames), np.array(boxes), b)
    assert filled[:, 0].tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_allclose(filled[2, 1:], [40, 40, 49, 49])


def test_link_prefers_best_tube_and_highest_iou():
    # Two tubes end near one box in frame 1; the higher-scoring tube takes it.
    frames = np.array([0, 0, 1])
    boxes = np.array([[0, 0, 9, 9], [1, 0, 10, 9], [1, 0, 10, 9]], float)
    scores = np.array([0.2, 0.9, 0.5])
    tubes = link_tubes(frames, boxes, scores, link_iou=0.5, max_gap=0)
    assert sorted(t.tolist() for t in tubes) == [[0], [1, 2]]


def test_video_tubes_and_nms():
    fg = np.zeros((6, 20, 20))
    fg[:, 2:8, 2:8] = 0.8
    cls = np.tile([0.1, 0.6, 0.3], (6, 1))
    out = video_tubes(components(fg), cls, min_length=3, top_k=2)
    assert sorted(out) == [1, 2]
    t, s = out[1][0]
    assert t[:, 0].tolist() == [1, 2, 3, 4, 5, 6]  # 1-based frames
    assert s == pytest.approx(0.8 * 0.6)
    a = tube(range(1, 7), [0, 0, 9, 9])
    b = tube(range(1, 7), [1, 0, 10, 9])  # IoU 0.82 with a
    far = tube(range(1, 7), [50, 50, 59, 59])
    tubes = [(a, 0.5), (b, 0.9), (far, 0.1)]
    kept = tube_nms(tubes, iou=0.5)
    assert [s for _, s in kept] == [0.9, 0.1]


def test_clip_accumulator_averages_overlapping_clips():
    import torch

    acc = ClipAccumulator(num_frames=5, height=2, width=2, num_classes=2)
    fg = torch.stack([torch.full((3, 2, 2), 0.2), torch.full((3, 2, 2), 0.8)])
    cls = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    acc.add(torch.tensor([[0, 1, 2], [2, 3, 3]]), fg, cls)
    pred = acc.result()
    np.testing.assert_allclose(pred.fg[:, 0, 0], [0.2, 0.2, 0.5, 0.8, 0.0], atol=1e-6)
    np.testing.assert_allclose(pred.cls[2], [0.5, 0.5], atol=1e-6)
    assert pred.covered.tolist() == [True, True, True, True, False]
    # The uncovered frame gets the video's mean class probability (clip positions weighted).
    np.testing.assert_allclose(pred.cls[4], [0.5, 0.5], atol=1e-6)


def test_localization_protocol_hand_case():
    meter = LocalizationMeter(num_classes=3)
    gt = boxes_to_masks(np.array([[0, 0, 3, 3], [0, 0, 3, 3], [0, 0, 0, 0]]),
                        np.array([True, True, False]), 8, 8)
    assert gt.sum() == 32
    pred = np.zeros_like(gt)
    pred[0, 0:4, 0:4] = True  # frame IoU 1
    pred[1, 0:4, 0:2] = True  # frame IoU 0.5
    pred[2] = True  # no GT: ignored
    meter.add(1, gt, pred)
    meter.add(1, gt, np.zeros_like(gt))  # frame IoUs 0, 0
    res = meter.result(thresholds=(0.5, 0.9))
    # Class 1: frames with IoU >= 0.5: 2 of 4; >= 0.9: 1 of 4. Videos: 24/32 = 0.75 and 0.
    assert res["f-AP@0.5"][1] == pytest.approx(50.0)
    assert res["f-AP@0.9"][1] == pytest.approx(25.0)
    assert res["v-AP@0.5"][1] == pytest.approx(50.0)
    assert res["v-AP@0.9"][1] == pytest.approx(0.0)
    assert np.isnan(res["f-AP@0.5"][[0, 2]]).all()
    assert res["f-mAP@0.5"] == pytest.approx(50.0)


def test_pipeline_from_exact_masks_scores_100():
    # Predictions that are exactly the GT masks must survive masks -> boxes -> detections /
    # tubes with the same pixel and frame conventions as the metrics, at every threshold.
    rng = np.random.default_rng(3)
    gt, videos, dets, tubes = {}, [], [], {}
    for iv in range(4):
        name, c, n = f"v{iv}", iv % 2, 12
        start, stop = 2, 10  # the action covers frames 2..9 (0-based)
        x, y = rng.integers(0, 20, size=2)
        boxes = np.array([[x + f, y, x + f + 7, y + 9] for f in range(n)], dtype=np.float64)
        valid = (np.arange(n) >= start) & (np.arange(n) < stop)
        fg = boxes_to_masks(boxes, valid, 40, 40).astype(np.float64)
        gt[name] = {c: [np.column_stack([np.arange(start, stop) + 1, boxes[valid]])]}
        videos.append(name)
        cls = np.zeros((n, 2))
        cls[:, c] = 0.9
        cls[:, 1 - c] = 0.1
        comps = components(fg)
        dets.append(frame_detections(comps, cls, iv, top_k=2))
        tubes[name] = video_tubes(comps, cls, link_iou=0.5, max_gap=0, top_k=2)
    assert frame_ap(gt, videos, np.concatenate(dets), iou=0.95)[0] == pytest.approx(100.0)
    summary = video_map_summary(gt, videos, tubes, 2)
    assert summary["v-mAP@0.5:0.95"] == pytest.approx(100.0)
