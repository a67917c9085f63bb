"""Video AP against a literal per-tube reference written here, with its own tube IoU.

The reference follows the ACT/MOC procedure (MCG-NJU/MOC-Detector ACT_utils.iou3dt and
ACT.videoAP) as `claus.eval.ap` documents it, one tube at a time and in exact arithmetic:
- box IoU with inclusive pixel boxes: a box covers (x2 - x1 + 1)(y2 - y1 + 1) pixels;
- tube IoU = temporal IoU with inclusive frame counts × the mean box IoU over the frames both
  tubes hold, 0 without temporal overlap (or without a common frame);
- detections of a class sorted by score, ties in input order (videos in the evaluated order,
  then the order of each video's list); each matched to the still-unmatched GT tube of its
  video and class with the highest IoU (the first on ties); a true positive when that IoU is at
  least the threshold, and the GT tube is then used;
- AP = trapezoid area under the raw precision-recall curve from (recall 0, precision 1);
  mean over the classes with ground truth.

Random cases are drawn by Hypothesis (derandomized) on an integer pixel grid, with duplicate
detections, score ties, temporal gaps inside and between tubes, and IoUs exactly at the
thresholds (exact here, and exact in floats for the values the cases hit).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from claus.eval import video_ap, video_map_summary
from hypothesis import given, settings
from hypothesis import strategies as st

PROPS = settings(derandomize=True, database=None, deadline=None, max_examples=150)
THRESHOLDS = (0.1, 0.25, 0.5, 0.75)


# --------------------------------------------------------------------------- the reference


def ref_box_iou(a, b):
    """Exact IoU of two inclusive integer boxes [x1, y1, x2, y2]."""
    ax1, ay1, ax2, ay2 = (int(v) for v in a)
    bx1, by1, bx2, by2 = (int(v) for v in b)
    w = max(0, min(ax2, bx2) - max(ax1, bx1) + 1)
    h = max(0, min(ay2, by2) - max(ay1, by1) + 1)
    inter = w * h
    union = (ax2 - ax1 + 1) * (ay2 - ay1 + 1) + (bx2 - bx1 + 1) * (by2 - by1 + 1) - inter
    return Fraction(inter, union)


def ref_tube_iou(a, b):
    """Exact ACT tube IoU of two (L,5) tubes [frame, x1, y1, x2, y2], frames increasing."""
    fa = {int(r[0]): r[1:5] for r in a}
    fb = {int(r[0]): r[1:5] for r in b}
    start = max(min(fa), min(fb))
    end = min(max(fa), max(fb))
    if end < start:
        return Fraction(0)
    temporal = Fraction(end - start + 1, max(max(fa), max(fb)) - min(min(fa), min(fb)) + 1)
    common = sorted(set(fa) & set(fb))
    if not common:
        return Fraction(0)
    spatial = sum((ref_box_iou(fa[f], fb[f]) for f in common), Fraction(0)) / len(common)
    return temporal * spatial


def ref_video_ap(gt, videos, tubes, num_classes, thr):
    """Per-class AP in percent (None for classes without GT) and their mean, tube by tube."""
    per_class = []
    for c in range(num_classes):
        remaining = {v: list(gt.get(v, {}).get(c, [])) for v in videos}
        n_gt = sum(len(r) for r in remaining.values())
        if n_gt == 0:
            per_class.append(None)
            continue
        dets = [(score, v, t) for v in videos for t, score in tubes.get(v, {}).get(c, [])]
        dets = sorted(dets, key=lambda d: -d[0])  # stable: ties keep input order
        flags = []
        for _, v, t in dets:
            hit = False
            if remaining[v]:
                ious = [ref_tube_iou(g, t) for g in remaining[v]]
                best = max(range(len(ious)), key=lambda j: (ious[j], -j))  # first of equals
                if ious[best] >= Fraction(repr(thr)):  # the decimal threshold: 0.1 is 1/10
                    hit = True
                    del remaining[v][best]
            flags.append(hit)
        area, tps, prev_r, prev_p = 0.0, 0, 0.0, 1.0
        for i, hit in enumerate(flags):
            tps += hit
            r, p = tps / n_gt, tps / (i + 1)
            area += (r - prev_r) * (p + prev_p) / 2
            prev_r, prev_p = r, p
        per_class.append(100 * area)
    valid = [x for x in per_class if x is not None]
    return per_class, (sum(valid) / len(valid) if valid else math.nan)


def check_against_reference(gt, videos, tubes, num_classes):
    for thr in THRESHOLDS:
        ref, ref_mean = ref_video_ap(gt, videos, tubes, num_classes, thr)
        m, per = video_ap(gt, videos, tubes, num_classes, iou=thr)
        assert per.shape == (num_classes,)
        for c, want in enumerate(ref):
            if want is None:
                assert math.isnan(per[c])
            else:
                assert per[c] == pytest.approx(want, abs=1e-9), f"class {c} at {thr}"
                assert 0 <= per[c] <= 100
        if math.isnan(ref_mean):
            assert math.isnan(m)
        else:
            assert m == pytest.approx(ref_mean, abs=1e-9)
    summary = video_map_summary(gt, videos, tubes, num_classes, thresholds=THRESHOLDS)
    for thr in THRESHOLDS:
        want = ref_video_ap(gt, videos, tubes, num_classes, thr)[1]
        got = summary[f"v-mAP@{thr:g}"]
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, abs=1e-9)


# --------------------------------------------------------------------------- random cases


def make_tube(frames, boxes):
    return np.column_stack([np.asarray(frames, np.float64), np.asarray(boxes, np.float64)])


@st.composite
def gt_tubes(draw):
    """A GT tube on an integer grid: 1..8 frames from 1..10, sometimes with frames missing
    inside, a box that may drift by a pixel per frame."""
    start = draw(st.integers(1, 10))
    length = draw(st.integers(1, 8))
    frames = list(range(start, start + length))
    if length > 2 and draw(st.booleans()):
        drop = draw(st.sets(st.sampled_from(frames[1:-1]), max_size=length - 2))
        frames = [f for f in frames if f not in drop]
    x, y = draw(st.integers(0, 20)), draw(st.integers(0, 20))
    w, h = draw(st.sampled_from([1, 2, 4, 10])), draw(st.sampled_from([1, 2, 4, 10]))
    drift = draw(st.sampled_from([0, 0, 1]))
    boxes = [[x + drift * i, y, x + drift * i + w - 1, y + h - 1] for i in range(len(frames))]
    return make_tube(frames, boxes)


@st.composite
def detection_from(draw, g):
    """A detection made from a GT tube: the same tube, cut in time (IoU 1/2, 1/4 ... at
    thresholds), shifted in time (a gap to the GT when far), boxes halved or moved."""
    kind = draw(st.sampled_from(["copy", "cut", "shift", "half", "move"]))
    t = g.copy()
    if kind == "cut" and len(t) > 1:
        t = t[: draw(st.integers(1, len(t) - 1))]
    elif kind == "shift":
        t[:, 0] += draw(st.integers(-12, 12))
        t = t[t[:, 0] >= 1] if (t[:, 0] >= 1).any() else g.copy()
    elif kind == "half":
        # Boxes of even width: the left half covers exactly half the pixels (IoU 1/2).
        w = t[:, 3] - t[:, 1] + 1
        t[:, 3] = np.where(w % 2 == 0, t[:, 1] + w // 2 - 1, t[:, 3])
    elif kind == "move":
        t[:, 1:5:2] += draw(st.integers(-3, 3))
        t[:, 2:5:2] += draw(st.integers(-3, 3))
    return t


@st.composite
def cases(draw):
    num_classes = draw(st.integers(1, 3))
    videos = [f"v{i}" for i in range(draw(st.integers(1, 3)))]
    gt, tubes = {}, {}
    scores = st.sampled_from([0.25, 0.5, 0.5, 0.75, 1.0])  # many ties
    for v in videos:
        for c in range(num_classes):
            gl = draw(st.lists(gt_tubes(), max_size=2))
            if gl:
                gt.setdefault(v, {})[c] = gl
            dets = []
            for g in gl:
                for _ in range(draw(st.integers(0, 3))):  # duplicates and near copies
                    dets.append((draw(detection_from(g)), draw(scores)))
            for _ in range(draw(st.integers(0, 2))):  # detections of nothing
                dets.append((draw(gt_tubes()), draw(scores)))
            if dets:
                order = draw(st.permutations(range(len(dets))))
                tubes.setdefault(v, {})[c] = [dets[i] for i in order]
    return gt, videos, tubes, num_classes


@PROPS
@given(case=cases())
def test_video_ap_equals_the_literal_reference(case):
    check_against_reference(*case)


# --------------------------------------------------------------------------- hand cases


def tube(frames, box):
    return make_tube(frames, np.tile(box, (len(frames), 1)))


def test_reference_tube_iou_hand_values():
    a = tube(range(1, 11), [0, 0, 9, 9])
    assert ref_tube_iou(a, tube(range(6, 16), [0, 0, 4, 9])) == Fraction(5, 15) * Fraction(1, 2)
    assert ref_tube_iou(a, tube(range(11, 20), [0, 0, 9, 9])) == 0
    assert ref_tube_iou(a, a) == 1
    # Frames 1 and 3 against frames 2 and 4: overlapping spans, no common frame.
    assert ref_tube_iou(tube([1, 3], [0, 0, 9, 9]), tube([2, 4], [0, 0, 9, 9])) == 0
    # Touching boxes share a pixel column: 10 / 190.
    assert ref_box_iou([0, 0, 9, 9], [9, 0, 18, 9]) == Fraction(10, 190)


def test_two_identical_detections_of_one_tube_score_100_never_more():
    g = tube(range(1, 9), [0, 0, 9, 9])
    gt = {"a": {0: [g]}}
    for scores in ((0.9, 0.9), (0.9, 0.5), (0.5, 0.9)):
        tubes = {"a": {0: [(g.copy(), scores[0]), (g.copy(), scores[1])]}}
        m, per = video_ap(gt, ["a"], tubes, 1)
        assert m == pytest.approx(100.0) and per[0] == pytest.approx(100.0)
        assert video_map_summary(gt, ["a"], tubes, 1)["v-mAP@0.5:0.95"] == pytest.approx(100.0)
    # Two GT tubes and three copies of one of them: one hit of two, recall 1/2, AP 50.
    gt2 = {"a": {0: [g, tube(range(1, 9), [40, 40, 49, 49])]}}
    tubes = {"a": {0: [(g.copy(), 0.9)] * 3}}
    assert video_ap(gt2, ["a"], tubes, 1)[0] == pytest.approx(50.0)


@pytest.mark.parametrize("det,what", [
    (tube(range(1, 6), [0, 0, 9, 9]), "temporal IoU 5/10, boxes equal"),
    (tube(range(1, 11), [0, 0, 4, 9]), "temporal IoU 1, box IoU 50/100"),
    (tube(range(3, 13), [0, 0, 9, 9]), "temporal IoU 8/12, boxes equal"),
    (make_tube([1, 2, 3, 4], [[0, 0, 9, 9], [0, 0, 4, 9], [0, 0, 9, 9], [0, 0, 4, 9]]),
     "temporal IoU 4/10 × box IoUs 1, 1/2, 1, 1/2"),
])
def test_iou_exactly_at_the_threshold_is_a_hit(det, what):
    g = tube(range(1, 11), [0, 0, 9, 9])
    gt = {"a": {0: [g]}}
    exact = ref_tube_iou(g, det)
    got = video_ap(gt, ["a"], {"a": {0: [(det, 1.0)]}}, 1, iou=float(exact))[0]
    assert got == pytest.approx(100.0), what
    if exact == Fraction(1, 2):
        assert video_ap(gt, ["a"], {"a": {0: [(det, 1.0)]}}, 1, iou=0.5)[0] == 100.0
        assert video_map_summary(gt, ["a"], {"a": {0: [(det, 1.0)]}}, 1)["v-mAP@0.5"] == 100.0
    above = float(exact) + 1e-9
    assert video_ap(gt, ["a"], {"a": {0: [(det, 1.0)]}}, 1, iou=above)[0] == 0.0


def test_score_ties_keep_the_input_order():
    # A miss and a hit with equal scores: the listed order decides the ranking. Miss first:
    # (r, p) = (0, 0), (1, 1/2): AP 1/4. Hit first: 100.
    g = tube(range(1, 5), [0, 0, 9, 9])
    miss = tube(range(1, 5), [50, 50, 59, 59])
    gt = {"a": {0: [g]}}
    assert video_ap(gt, ["a"], {"a": {0: [(miss, 0.5), (g, 0.5)]}}, 1)[0] == pytest.approx(25.0)
    assert video_ap(gt, ["a"], {"a": {0: [(g, 0.5), (miss, 0.5)]}}, 1)[0] == pytest.approx(100.0)
    # Across videos: the evaluated order of the videos, then each video's list.
    gt2 = {"a": {0: [g]}, "b": {0: [g]}}
    tubes = {"b": {0: [(g, 0.5)]}, "a": {0: [(miss, 0.5)]}}
    # Videos ["a", "b"]: a's miss ranks first: (0, 0), (1/2, 1/2): AP 1/8.
    assert video_ap(gt2, ["a", "b"], tubes, 1)[0] == pytest.approx(12.5)
    # Videos ["b", "a"]: b's hit first: (1/2, 1), (1/2, 1/2): AP 1/2.
    assert video_ap(gt2, ["b", "a"], tubes, 1)[0] == pytest.approx(50.0)
