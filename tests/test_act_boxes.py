"""Box conventions at the ACT/MOC boundary.

ACT/MOC pickles (`UCF101v2-GT.pkl`, `JHMDB-GT.pkl`) and the ACT/MOC metrics use 0-based
inclusive pixel boxes (x2 = last covered column, areas +1); claus keeps edges (x2 = x1 + width);
UCF-101-24's pyannot pickles hold 1-based x, y and sizes w, h. Every example below is hand-worked
so that a one-pixel slip in any direction changes the asserted number (see the comments).
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from claus.data import Tube, Video, VideoDataset, load_act_gt, load_ucf24
from claus.data.dataset import edges_to_inclusive, inclusive_to_edges
from claus.data.readers import ucf24_xywh_to_edges
from claus.data.safe_pickle import safe_load
from claus.eval import (
    box_iou,
    boxes_to_masks,
    components,
    frame_ap,
    frame_detections,
    tube_iou,
    video_ap,
)


def _edge_iou(a, b) -> float:
    """Plain IoU of two edge boxes (no +1): the area a box of claus covers."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def _write_act(path, gttubes, nframes, res=(24, 32)):
    data = {
        "labels": ["clap", "run"],
        "gttubes": gttubes,
        "nframes": nframes,
        "train_videos": [[]],
        "test_videos": [sorted(gttubes)],
        "resolution": {v: res for v in gttubes},
    }
    path.write_bytes(pickle.dumps(data, protocol=2))
    return path


# ------------------------------------------------------------------ the two helpers


def test_helpers_are_inverse_and_shape_preserving():
    inc = np.array([[[10, 20, 19, 29]], [[0, 0, 0, 0]]], np.float32)  # (2, 1, 4)
    e = inclusive_to_edges(inc)
    assert e.dtype == np.float32 and e.shape == (2, 1, 4)
    np.testing.assert_array_equal(e[:, 0], [[10, 20, 20, 30], [0, 0, 1, 1]])
    back = edges_to_inclusive(e)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, inc)
    inc[0, 0, 0] = 99  # copies, not views
    assert e[0, 0, 0] == 10


# ------------------------------------------------------------------ ACT pickle → claus


def test_act_pickle_inclusive_boxes_become_edges(tmp_path):
    # The file's box covers columns 10..19, rows 20..22 (10×3 pixels) in frames 1..2 (1-based).
    box = [10, 20, 19, 22]
    p = _write_act(
        tmp_path / "JHMDB-GT.pkl",
        {"clap/a": {0: [np.array([[f, *box] for f in (1, 2)], np.float32)]}},
        {"clap/a": 3},
    )
    ds = load_act_gt(p)
    t = ds.video("clap/a").tubes[0]
    assert (t.start, t.end) == (0, 2)
    # Edges: x2 = 19 + 1 = 20, y2 = 22 + 1 = 23. The old verbatim reading ([10, 20, 19, 22])
    # gives a box one column and one row short.
    np.testing.assert_array_equal(t.boxes, [[10, 20, 20, 23]] * 2)
    # A box of claus covering columns 15..24, rows 20..22: 5 shared columns of 10 + 10 - 5 → 1/3.
    # Read verbatim it would be 4·3 / (27 + 30 - 12) = 12/45 = 0.267.
    assert _edge_iou(t.boxes[0], [15, 20, 25, 23]) == pytest.approx(1 / 3)


def test_act_pickle_frame_border(tmp_path):
    # 32×24 frame: a box ending in the last column/row (31, 23) fills the frame and is not
    # clipped; one reaching x2 = 32 lies a column outside and is clipped (one warning).
    p = _write_act(
        tmp_path / "UCF101v2-GT.pkl",
        {
            "run/a": {1: [np.array([[1, 0, 0, 31, 23]], np.float32)]},
            "run/b": {1: [np.array([[1, 0, 0, 32, 23]], np.float32)]},
        },
        {"run/a": 1, "run/b": 1},
    )
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = load_act_gt(p)
    msgs = [str(w.message) for w in rec]
    assert len(msgs) == 1 and "1 boxes reached outside the frame" in msgs[0]
    np.testing.assert_array_equal(ds.video("run/a").tubes[0].boxes, [[0, 0, 32, 24]])
    np.testing.assert_array_equal(ds.video("run/b").tubes[0].boxes, [[0, 0, 32, 24]])


def test_act_pickle_round_trip_gives_back_the_file(tmp_path):
    # Non-integer boxes as in MultiSports-style pickles; frames 4..6.
    rows = np.array(
        [[4, 1.5, 2.25, 10.75, 12.0], [5, 2.0, 2.0, 11.0, 13.5], [6, 0.0, 0.0, 5.0, 5.0]],
        np.float32,
    )
    p = _write_act(tmp_path / "JHMDB-GT.pkl", {"clap/a": {0: [rows]}}, {"clap/a": 6})
    gt = load_act_gt(p).act_gt("test")
    assert list(gt) == ["clap/a"] and list(gt["clap/a"]) == [0]
    np.testing.assert_allclose(gt["clap/a"][0][0], rows, rtol=0, atol=1e-5)


def test_puppet_mask_box_covers_the_mask(tmp_path):
    # A J-HMDB puppet mask on rows 5..8, columns 6..11: its tight box in the pickle's convention
    # is [6, 5, 11, 8] (min/max pixel index). Through claus (read, act_gt, rasterize inclusive)
    # it must cover exactly the mask's pixels: the old reading covered one row/column more.
    m = np.zeros((24, 32), bool)
    m[5:9, 6:12] = True
    p = _write_act(
        tmp_path / "JHMDB-GT.pkl",
        {"clap/a": {0: [np.array([[1, 6, 5, 11, 8]], np.float32)]}},
        {"clap/a": 1},
    )
    ds = load_act_gt(p)
    np.testing.assert_array_equal(ds.video("clap/a").tubes[0].boxes, [[6, 5, 12, 9]])
    inc = ds.act_gt("test")["clap/a"][0][0][:, 1:5]
    np.testing.assert_array_equal(boxes_to_masks(inc, np.ones(1, bool), 24, 32)[0], m)
    # The same box in edges, rasterized as the mask ("columns x1..x2-1").
    b = ds.video("clap/a").tubes[0].boxes[0].astype(int)
    edge_mask = np.zeros_like(m)
    edge_mask[b[1] : b[3], b[0] : b[2]] = True
    np.testing.assert_array_equal(edge_mask, m)


# ------------------------------------------------------------------ claus → act_gt → evaluation


def _one_pixel_dataset() -> VideoDataset:
    # One actor occupying a single pixel (column 5, row 7) in frames 0..2: edges [5, 7, 6, 8].
    tube = Tube(0, 0, np.array([[5, 7, 6, 8]] * 3, np.float32))
    video = Video("clap/a", 0, 3, 16, 16, "test", [tube])
    return VideoDataset("toy", ["clap"], [video])


def test_act_gt_writes_inclusive_boxes_and_one_based_frames():
    gt = _one_pixel_dataset().act_gt("test")
    rows = gt["clap/a"][0][0]
    assert rows.dtype == np.float64
    np.testing.assert_array_equal(rows, [[1, 5, 7, 5, 7], [2, 5, 7, 5, 7], [3, 5, 7, 5, 7]])
    # Selecting by index gives the same (the evaluation pipeline's path).
    np.testing.assert_array_equal(_one_pixel_dataset().act_gt(indices=[0])["clap/a"][0][0], rows)


def test_exact_detection_scores_iou_1_and_ap_100():
    ds = _one_pixel_dataset()
    gt = ds.act_gt("test")
    # The detector's own path: a foreground mask on exactly the actor's pixel → components.
    v = ds.video("clap/a")
    fg = np.zeros((3, 16, 16))
    for f in range(3):
        b = v.tubes[0].boxes[f].astype(int)
        fg[f, b[1] : b[3], b[0] : b[2]] = 1.0
    comps = components(fg, min_area=1)
    np.testing.assert_array_equal(comps.box, [[5, 7, 5, 7]] * 3)
    det = frame_detections(comps, np.ones((3, 1)), video_index=0, top_k=1)
    # IoU 1 with the +1 areas; had act_gt kept the edges ([5, 7, 6, 8], 4 pixels under the +1
    # convention) the IoU would be 1/4 and the AP at 0.5 would be 0.
    assert box_iou(gt["clap/a"][0][0][0, 1:5], det[0, 4:8]) == 1.0
    assert box_iou([5, 7, 6, 8], det[0, 4:8]) == 0.25
    fmap, per = frame_ap(gt, ["clap/a"], det, iou=0.5)
    assert fmap == pytest.approx(100.0) and per.tolist() == pytest.approx([100.0])
    tube = np.column_stack([det[:, 1], det[:, 4:8]])
    assert tube_iou(gt["clap/a"][0][0], tube) == 1.0
    vmap, _ = video_ap(gt, ["clap/a"], {"clap/a": {0: [(tube, 0.9)]}}, 1, iou=0.5)
    assert vmap == pytest.approx(100.0)


def test_one_pixel_counts_as_act_counts_it():
    # GT edges [0, 0, 3, 2]: 3×2 pixels (columns 0..2, rows 0..1). The detection covers the same
    # columns and rows 0..3 (3×4 = 12 pixels): IoU 6 / (6 + 12 - 6) = 0.5 exactly, a true
    # positive at 0.5 and a false one at 0.51. Had act_gt passed the edges on as inclusive
    # (4×3 = 12 pixels) the IoU would be 9 / 15 = 0.6 and the detection would pass at 0.51.
    ds = VideoDataset(
        "toy", ["clap"], [Video("a", 0, 1, 8, 8, "test", [Tube(0, 0, np.array([[0, 0, 3, 2]]))])]
    )
    gt = ds.act_gt("test")
    det = np.array([[0, 1, 0, 0.9, 0, 0, 2, 3]], float)
    assert box_iou(gt["a"][0][0][0, 1:5], det[0, 4:8]) == 0.5
    assert box_iou([0, 0, 3, 2], det[0, 4:8]) == pytest.approx(0.6)
    assert frame_ap(gt, ["a"], det, iou=0.5)[0] == pytest.approx(100.0)
    assert frame_ap(gt, ["a"], det, iou=0.51)[0] == 0.0


# ------------------------------------------------------------------ UCF-101-24 pyannot


def test_ucf24_xywh_conversion_by_hand():
    # x, y = 1 is the first column/row: (1, 1, 3, 2) covers 0-based columns 0..2, rows 0..1.
    b = ucf24_xywh_to_edges(np.array([[1, 1, 3, 2], [250, 100, 70, 50]], np.uint8))
    assert b.dtype == np.float32
    np.testing.assert_array_equal(b, [[0, 0, 3, 2], [249, 99, 319, 149]])  # no uint8 wrap
    np.testing.assert_array_equal(edges_to_inclusive(b[:1]), [[0, 0, 2, 1]])


def _pyannot(root, boxes):
    db = {
        "Jump/v_Jump_g01_c01": {
            "label": 0,
            "numf": np.uint16(3),
            "annotations": [
                {"label": 0, "sf": 0, "ef": len(boxes), "boxes": np.array(boxes, np.uint16)}
            ],
        }
    }
    data = {"db": db, "trainvideos": [], "classes": ["Jump"]}
    root.mkdir()
    (root / "pyannot_with_class_names.pkl").write_bytes(pickle.dumps(data, protocol=2))
    (root / "testlist01.txt").write_text("Jump/v_Jump_g01_c01\n")
    return root


def test_ucf24_pyannot_through_evaluation(tmp_path):
    # Frame 0: (1, 1, 3, 2), 3×2 pixels at the top-left corner; frame 1: (1, 1, 319, 239)
    # touching the left/top border and ending at x + w = 320, y + h = 240 (the annotations'
    # maximum), which stays inside the 320×240 frame: no clipping.
    root = _pyannot(tmp_path / "ucf", [[1, 1, 3, 2], [1, 1, 319, 239]])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = load_ucf24(root)
    assert not [w for w in rec if "clipped" in str(w.message)]
    t = ds.video("Jump/v_Jump_g01_c01").tubes[0]
    np.testing.assert_array_equal(t.boxes, [[0, 0, 3, 2], [0, 0, 319, 239]])
    gt = ds.act_gt("test")
    np.testing.assert_array_equal(gt["Jump/v_Jump_g01_c01"][0][0][0], [1, 0, 0, 2, 1])
    # Exact detections (the 3×2 block; columns 0..318, rows 0..238) score IoU 1; the old reading
    # (x1 = x) put the first box at columns 1..3, rows 1..2: IoU 2 / (6 + 6 - 2) = 0.2.
    det = np.array([[0, 1, 0, 0.9, 0, 0, 2, 1], [0, 2, 0, 0.8, 0, 0, 318, 238]], float)
    assert frame_ap(gt, ["Jump/v_Jump_g01_c01"], det, iou=0.5)[0] == pytest.approx(100.0)
    assert box_iou([1, 1, 3, 2], det[0, 4:8]) == pytest.approx(0.2)


def test_ucf24_real_annotations_fit_the_frame(shared_dir):
    root = shared_dir / "data" / "ucf101-24"
    raw = safe_load(root / "pyannot_with_class_names.pkl")
    allraw = np.concatenate(
        [a["boxes"] for r in raw["db"].values() for a in r["annotations"]]
    ).astype(np.int64)
    # The evidence for 1-based x, y: never 0, and the frame border is x = 1 / y = 1.
    assert allraw[:, 0].min() == 1 and allraw[:, 1].min() == 1
    assert (allraw[:, 0] + allraw[:, 2]).max() == 320 and (allraw[:, 1] + allraw[:, 3]).max() == 240
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = load_ucf24(root)
    assert not [w for w in rec if "clipped" in str(w.message)]
    allb = np.concatenate([t.boxes for v in ds for t in v.tubes])
    assert allb[:, 0].min() == 0 and allb[:, 1].min() == 0  # the border is column/row 0
    assert allb[:, 2].max() == 319 and allb[:, 3].max() == 239
    v = ds.video("Basketball/v_Basketball_g01_c01")
    first = raw["db"][v.name]["annotations"][0]
    assert first["sf"] == 8 and first["boxes"][0].tolist() == [189, 102, 47, 78]
    np.testing.assert_array_equal(v.tubes[0].boxes[0], [188, 101, 235, 179])
    rows = ds.act_gt("test")[v.name][v.label][0]
    np.testing.assert_array_equal(rows[0], [9, 188, 101, 234, 178])
    # Exact detections of a handful of test videos (boxes = the GT itself) give f-mAP 100.
    names = [ds.videos[i].name for i in ds.split_indices("test")[:20]]
    gt = ds.act_gt(indices=names)
    det = [
        np.column_stack([np.full(len(r), iv), r[:, 0], np.full(len(r), c), np.ones(len(r)),
                         r[:, 1:5]])
        for iv, n in enumerate(names) for c, tl in gt[n].items() for r in tl
    ]
    assert frame_ap(gt, names, np.concatenate(det), iou=0.99)[0] == pytest.approx(100.0)


def test_ucf24_real_tube_ends_and_two_actors(shared_dir):
    # What the test above leaves open, on two real videos worked by hand from the pickle.
    # Basketball g01 c01 (test split, class 0, 141 frames): one tube, sf = 8, ef = 52 (ef is
    # exclusive: 44 boxes, frames 8..51); its last raw box (193, 84, 43, 96) is edges
    # (192, 83, 235, 179) and, in the ACT rows, 1-based frame 52 with inclusive (…, 234, 178).
    ds = load_ucf24(shared_dir / "data" / "ucf101-24")
    v = ds.video("Basketball/v_Basketball_g01_c01")
    assert (v.label, v.num_frames, v.split, v.group) == (0, 141, "test", "Basketball/g01")
    assert ds.classes[0] == "Basketball"
    (t,) = v.tubes
    assert (t.label, t.start, t.end, len(t.boxes)) == (0, 8, 52, 44)
    np.testing.assert_array_equal(t.boxes[-1], [192, 83, 235, 179])
    np.testing.assert_array_equal(ds.act_gt("test")[v.name][0][0][-1], [52, 192, 83, 234, 178])
    # Fencing g14 c04 (train split, class 6 = "Fencing", 142 frames): two fencers, tubes of 70
    # and 142 boxes both from frame 0. Raw (1, 41, 101, 199) touches the left border: edges
    # (0, 40, 101, 240 - 1 = 239); raw (186, 51, 133, 183) is (185, 50, 318, 233).
    f = ds.video("Fencing/v_Fencing_g14_c04")
    assert (f.label, f.num_frames, f.split, ds.classes[6]) == (6, 142, "train", "Fencing")
    assert [(t.label, t.start, t.end) for t in f.tubes] == [(6, 0, 70), (6, 0, 142)]
    np.testing.assert_array_equal(f.tubes[0].boxes[0], [0, 40, 101, 239])
    np.testing.assert_array_equal(f.tubes[0].boxes[-1], [0, 54, 81, 226])  # raw (1, 55, 81, 172)
    np.testing.assert_array_equal(f.tubes[1].boxes[0], [185, 50, 318, 233])
    np.testing.assert_array_equal(f.tubes[1].boxes[-1], [0, 31, 109, 238])  # raw (1, 32, 109, 207)
    rows = ds.act_gt("train")[f.name][6]
    np.testing.assert_array_equal(rows[0][[0, -1]], [[1, 0, 40, 100, 238], [70, 0, 54, 80, 225]])
    np.testing.assert_array_equal(rows[1][-1], [142, 0, 31, 108, 237])
