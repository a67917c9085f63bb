"""Label state (round trip, validation, budget arithmetic) and pseudo-labels (hand cases)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from claus.data import (
    LabelBox,
    LabelState,
    LabelStateError,
    Tube,
    Video,
    VideoDataset,
    budget_boxes,
    frame_cost,
    pseudo_tracks,
    render_boxes,
    total_boxes,
)


@pytest.fixture
def ds() -> VideoDataset:
    b = lambda n, x: np.tile(np.array([[x, 0, x + 2, 2]], np.float32), (n, 1))
    vids = [
        Video("a", 0, 10, 20, 30, "train", [Tube(0, 2, b(5, 1)), Tube(0, 4, b(4, 9))]),  # 9 boxes
        Video("b", 1, 6, 20, 30, "train", [Tube(1, 0, b(6, 3))]),  # 6 boxes
        Video("c", 1, 8, 20, 30, "test", [Tube(1, 0, b(8, 3))]),
    ]
    return VideoDataset("toy", ["x", "y"], vids)


def test_budget_arithmetic(ds):
    assert total_boxes(ds) == 15
    assert budget_boxes(ds, 20) == 3
    assert budget_boxes(ds, 100) == 15
    with pytest.raises(ValueError, match="percentage"):
        budget_boxes(ds, 101)
    # Cost = boxes on the frame, minimum 1 (an empty frame still costs a look).
    np.testing.assert_array_equal(frame_cost(ds, "a", [0, 2, 4, 6, 7]), [1, 1, 2, 2, 1])
    st = LabelState.empty(ds)
    assert st.videos == ["a", "b"]  # the training split only
    assert st.reveal(ds, "a", [0, 4], round=0) == 3
    assert st.reveal(ds, "b", [5], round=1) == 1
    assert st.spent() == 4 and st.spent(round=0) == 3 and st.spent(round=1) == 1
    assert st.boxes("a", 0) == ()  # labelled "no actor"
    assert [b.tube for b in st.boxes("a", 4)] == [0, 1]
    np.testing.assert_array_equal(st.rounds("a"), [0, -1, -1, -1, 0, -1, -1, -1, -1, -1])
    assert st.labelled_videos() == ["a", "b"] and st.last_round == 1
    # The paper's scale: 1 % of UCF-101-24's 403,282 training boxes.
    assert int(round(0.01 * 403282)) == 4033


def test_full_and_random_states(ds):
    full = LabelState.full(ds)
    assert full.num_labelled_frames() == 16
    assert full.spent() == 9 + 6 + 4  # frames 0, 1, 8, 9 of "a" hold no box but cost 1 each
    for pct in (10, 30, 60):
        st = LabelState.random(ds, pct, seed=5, frames_per_video=2)
        assert 0 < st.spent() <= budget_boxes(ds, pct)  # never over budget
        assert st == LabelState.random(ds, pct, seed=5, frames_per_video=2)  # seeded
    assert LabelState.random(ds, 60, seed=5) != LabelState.random(ds, 60, seed=6)


def test_round_trip_and_validation(ds, tmp_path):
    st = LabelState.empty(ds)
    st.reveal(ds, "a", [3, 6], 0)
    st.label("b", 2, [], 1)
    st.label("b", 4, [(7, 1, [0.5, 1.5, 2.5, 3.5])], 2)
    p = tmp_path / "labels.json"
    st.save(p)
    back = LabelState.load(p, ds)
    assert back == st
    assert back.boxes("b", 4) == (LabelBox(7, 1, (0.5, 1.5, 2.5, 3.5)),)
    with pytest.raises(LabelStateError, match="already labelled"):
        st.label("b", 2, [], 3)
    with pytest.raises(LabelStateError, match="unknown video 'zzz'"):
        st.label("zzz", 0, [], 0)
    with pytest.raises(LabelStateError, match=r"frame 6 out of range \[0, 6\)"):
        st.label("b", 6, [], 0)
    with pytest.raises(LabelStateError, match="bad box"):
        st.label("b", 0, [(0, 0, [3, 0, 1, 1])], 0)

    doc = json.loads(p.read_text())

    def load_mod(change) -> None:
        d = json.loads(json.dumps(doc))
        change(d)
        p.write_text(json.dumps(d))
        LabelState.load(p, ds)

    with pytest.raises(LabelStateError, match="unsupported version 2"):
        load_mod(lambda d: d.update(version=2))
    with pytest.raises(LabelStateError, match="unknown video 'ghost'"):
        load_mod(lambda d: d["videos"].update(ghost={"num_frames": 3, "frames": {}}))
    with pytest.raises(LabelStateError, match=r"video 'a': frame 10 out of range"):
        load_mod(lambda d: d["videos"]["a"]["frames"].update({"10": {"round": 0, "boxes": []}}))
    with pytest.raises(LabelStateError, match="has 11 frames here but 10"):
        load_mod(lambda d: d["videos"]["a"].update(num_frames=11))
    with pytest.raises(LabelStateError, match="made for dataset 'other'"):
        load_mod(lambda d: d.update(dataset="other"))
    with pytest.raises(LabelStateError, match="label outside"):
        load_mod(lambda d: d["videos"]["b"]["frames"]["4"]["boxes"][0].update(label=5))
    p.write_text("not json")
    with pytest.raises(LabelStateError, match="labels.json: not valid JSON"):
        LabelState.load(p, ds)


# ------------------------------------------------------------------ pseudo-labels


def _box(x):
    return (float(x), 0.0, float(x) + 10, 10.0)


def test_interpolation_hand_case():
    entries = {
        2: (LabelBox(0, 1, _box(0)),),
        6: (LabelBox(0, 1, _box(8)),),
    }
    pt = pseudo_tracks(entries, 10)
    x1 = pt.boxes[:, 0, 0]
    # Held before the first and after the last label; linear in between: 0, 2, 4, 6, 8.
    np.testing.assert_array_equal(x1, [0, 0, 0, 2, 4, 6, 8, 8, 8, 8])
    np.testing.assert_array_equal(pt.boxes[:, 0, 2], x1 + 10)
    np.testing.assert_array_equal(pt.annotated, [f in (2, 6) for f in range(10)])
    np.testing.assert_array_equal(pt.labels, [1])
    np.testing.assert_array_equal(pt.src[:, 0], [2, 2, 2, -1, -1, -1, 6, 6, 6, 6])


def test_no_actor_frames_and_two_tracks():
    entries = {
        1: (LabelBox(0, 0, _box(0)), LabelBox(3, 0, _box(20))),
        5: (LabelBox(0, 0, _box(4)),),  # track 3 absent here
        8: (),  # labelled "no actor"
    }
    pt = pseudo_tracks(entries, 11)
    assert list(pt.tubes) == [0, 3]
    a, b = pt.boxes[:, 0, 0], pt.boxes[:, 1, 0]
    nan = np.nan
    # Track 0: held, interpolated 1→5, then nearest-label rule between 5 and the empty frame 8
    # (6 is nearer 5: held; 7 nearer 8: background; ties go to the earlier frame).
    np.testing.assert_array_equal(a, [0, 0, 1, 2, 3, 4, 4, nan, nan, nan, nan])
    # Track 3 only on frame 1: held while frame 1 is the nearest label.
    np.testing.assert_array_equal(b, [20, 20, 20, 20, nan, nan, nan, nan, nan, nan, nan])
    np.testing.assert_array_equal(pt.foreground(), [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0])


def test_no_ground_truth_leak(ds):
    # Pseudo-labels depend only on the label state: the same labelled boxes give the same
    # pseudo-labels whatever the ground truth of unlabelled frames says.
    st = LabelState.empty(ds)
    st.reveal(ds, "a", [5], 0)
    before = pseudo_tracks(st.entries("a"), 10).boxes.copy()
    ds["a"].tubes[0].boxes[:] = 99  # change every GT box of the tube...
    ds["a"].tubes[0].boxes[3] = st.boxes("a", 5)[0].box  # ...except the labelled frame 5
    after = pseudo_tracks(st.entries("a"), 10).boxes
    np.testing.assert_array_equal(before, after)
    # The true extent (frames 2..6) is not used: the held box covers the whole video.
    assert not np.isnan(after[:, 0, 0]).any()


def test_render_boxes():
    b = np.array([[[1.0, 2.0, 3.0, 4.0], [np.nan] * 4]], np.float32)
    m = render_boxes(b, 5, 6)
    want = np.zeros((5, 6), np.uint8)
    want[2:4, 1:3] = 1  # pixel centres 1.5, 2.5 in [1, 3); 2.5, 3.5 in [2, 4)
    np.testing.assert_array_equal(m[0], want)
    m = render_boxes(np.array([[[1.6, 2.0, 3.0, 4.0]]], np.float32), 5, 6)
    assert m[0, 2, 1] == 0 and m[0, 2, 2] == 1  # centre 1.5 < 1.6
