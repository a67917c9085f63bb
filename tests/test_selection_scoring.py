"""claus.selection.scoring: stitching clip statistics onto video frames, frame scores, and the
frame selection built on them."""

from __future__ import annotations

import math

import pytest
import torch
from claus.selection import frame_scores, select_frames, stitch_clip_stats

import claus_ext
from claus_ext import reference as ref


def stats_of(values: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N,T) fg_count = v, unc_sum = 2v, ent_sum = 3v: easy to tell apart after stitching."""
    v = torch.tensor(values, dtype=torch.float32)
    return v, 2 * v, 3 * v


def test_stitch_overlapping_clips_average():
    # Video 0 (6 frames): clips at 0 and 2 of 4 frames overlap on frames 2, 3.
    # Video 1 (3 frames): one clip at 0 whose last frame (3) lies past the end.
    fg, unc, ent = stats_of([[1, 2, 3, 4], [10, 20, 30, 40], [5, 6, 7, 8]])
    st = stitch_clip_stats(fg, unc, ent, clip_video=[0, 0, 1], clip_start=[0, 2, 0],
                           lengths=[6, 3], pixels=16)
    nan_free = torch.tensor([[1, 2, (3 + 10) / 2, (4 + 20) / 2, 30, 40], [5, 6, 7, 0, 0, 0]])
    torch.testing.assert_close(st.fg_count, nan_free.float())
    torch.testing.assert_close(st.unc_sum, 2 * nan_free.float())
    torch.testing.assert_close(st.ent_sum, 3 * nan_free.float())
    assert st.coverage.tolist() == [[1, 1, 2, 2, 1, 1], [1, 1, 1, 0, 0, 0]]
    assert st.lengths.tolist() == [6, 3] and st.pixels == 16


def test_stitch_frame_stride_leaves_gaps():
    fg, unc, ent = stats_of([[1, 2, 3], [4, 5, 6]])
    # Stride 2: clip 0 samples frames 0, 2, 4; clip 1 (start 1) samples 1, 3, 5 (5 is past 5).
    st = stitch_clip_stats(fg, unc, ent, [0, 0], [0, 1], [5], pixels=4, frame_stride=2)
    assert st.coverage.tolist() == [[1, 1, 1, 1, 1]]
    assert st.fg_count.tolist() == [[1, 4, 2, 5, 3]]
    st = stitch_clip_stats(fg[:1], unc[:1], ent[:1], [0], [0], [5], pixels=4, frame_stride=2)
    assert st.coverage.tolist() == [[1, 0, 1, 0, 1]]


def test_frame_scores_uncertainty_entropy_and_informative():
    fg, unc, ent = stats_of([[0, 0.5, 2, 4]])
    unc = torch.tensor([[0.0, 1.0, 3.0, 2.0]])
    st = stitch_clip_stats(fg, unc, ent, [0], [0], [5], pixels=10)
    sc = frame_scores(st, min_fg=1.0)
    assert sc.informative.tolist() == [[False, False, True, True, False]]
    assert sc.covered.tolist() == [[True, True, True, True, False]]
    u = sc.uncertainty[0].tolist()
    assert math.isnan(u[0]) and math.isnan(u[1]) and math.isnan(u[4])
    assert u[2:4] == [1.5, 0.5]
    e = sc.entropy[0].tolist()
    assert e[:4] == pytest.approx([0.0, 0.15, 0.6, 1.2]) and math.isnan(e[4])
    # A lower minimum makes frame 1 informative too.
    assert frame_scores(st, min_fg=0.5).informative[0, 1]


def test_frame_scores_mass_weighs_doubt_by_its_area():
    # Frame 0: a speck of 1 doubtful pixel (u = 2); frame 1: a whole actor of 6 pixels with
    # u = 0.5 each. "mean" prefers the speck (2 > 0.5), "mass" the actor (3/10 > 2/10).
    fg = torch.tensor([[1.0, 6.0, 0.0]])
    unc = torch.tensor([[2.0, 3.0, 0.0]])
    st = stitch_clip_stats(fg, unc, torch.zeros_like(fg), [0], [0], [3], pixels=10)
    mean, mass = frame_scores(st), frame_scores(st, score="mass")
    assert mean.uncertainty[0, :2].tolist() == [2.0, 0.5]
    assert mass.uncertainty[0, :2].tolist() == pytest.approx([0.2, 0.3])
    # Same informative frames, same entropy; only the uncertainty differs.
    assert mass.informative.tolist() == mean.informative.tolist() == [[True, True, False]]
    assert math.isnan(mass.uncertainty[0, 2])
    torch.testing.assert_close(mass.entropy, mean.entropy, equal_nan=True)
    assert select_frames(mean, torch.zeros(1, 3, dtype=torch.bool), 1).frames.tolist() == [[0]]
    assert select_frames(mass, torch.zeros(1, 3, dtype=torch.bool), 1).frames.tolist() == [[1]]
    with pytest.raises(ValueError, match="unknown frame score 'sum'; choices: mean"):
        frame_scores(st, score="sum")


def test_select_skips_labelled_noninformative_and_padding():
    # Two videos: video 0 has 6 frames, video 1 has 4 (padded); one 6-frame clip each.
    fgs = torch.tensor([[5.0, 5, 0, 5, 5, 5], [5.0, 5, 5, 5, 5, 5]])
    # U = 0.8, 0.6, -, 0.5, 0.2, 1.0 and 0.2, 0.4, 0.6, 0.8, (20, 20 past the end).
    uncs = torch.tensor([[4.0, 3, 0, 2.5, 1, 5], [1.0, 2, 3, 4, 100, 100]])
    st = stitch_clip_stats(fgs, uncs, fgs, [0, 1], [0, 0], [6, 4], pixels=25)
    sc = frame_scores(st)
    labelled = torch.zeros(2, 6, dtype=torch.bool)
    labelled[0, 5] = True  # the best frame of video 0 is already labelled
    sel = select_frames(sc, labelled, k=6, sigma=1.0, radius=0)
    # Video 0: frame 5 labelled, frame 2 non-informative; frames 0, 1, 3, 4 lie 5, 4, 2, 1
    # frames from the label: s = U - exp(-d^2 / 2).
    u = [0.8 - math.exp(-12.5), 0.6 - math.exp(-8), 0.5 - math.exp(-2), 0.2 - math.exp(-0.5)]
    order = [0, 1, 3, 4]
    assert sel.per_video()[0] == order
    assert sel.scores[0, :4].tolist() == pytest.approx(u, abs=1e-6)
    # Video 1: frames 4, 5 are padding (U = 20 there must not count).
    assert sel.per_video()[1] == [3, 2, 1, 0]
    assert sel.video_score[1].item() == pytest.approx((0.2 + 0.4 + 0.6 + 0.8) / 4)


def test_entropy_criterion_uses_covered_frames():
    fgs = torch.tensor([[0.0, 0, 0]])
    ent = torch.tensor([[1.0, 3.0, 2.0]])
    st = stitch_clip_stats(fgs, fgs, ent, [0], [0], [4], pixels=2)
    sc = frame_scores(st)
    none = torch.zeros(1, 4, dtype=torch.bool)
    assert select_frames(sc, none, 2).per_video() == [[]]  # nothing informative
    sel = select_frames(sc, none, 5, criterion="entropy", radius=0)
    assert sel.per_video() == [[1, 2, 0]]  # frame 3 was never sampled
    assert sel.scores[0, :3].tolist() == [1.5, 1.0, 0.5]


def test_end_to_end_matches_reference_ops():
    gen = torch.Generator().manual_seed(5)
    R, T, H, W = 4, 8, 12, 12
    lengths = torch.tensor([20, 13, 8])
    video, start = [], []
    for v, n in enumerate(lengths.tolist()):  # sliding clips, stride 1, hop 4
        for s in range(0, max(n - T, 0) + 1, 4):
            video.append(v)
            start.append(s)
    logits = torch.randn(R, len(video), T, H, W, generator=gen) * 3 - 1
    stats = claus_ext.frame_uncertainty(logits, 0.4)
    want = ref.frame_uncertainty(logits.double(), 0.4)
    # Selections are compared through the same stitched scores; the op sums match the reference.
    for a, b in zip(stats, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-2)
    sc = frame_scores(stitch_clip_stats(*stats, video, start, lengths, pixels=H * W), min_fg=3)
    labelled = torch.zeros(3, 20, dtype=torch.bool)
    labelled[0, 10] = True
    sel = select_frames(sc, labelled, torch.tensor([3, 2, 5]))
    inside = torch.arange(20)[None] < lengths[:, None]
    want_sel = ref.select_frames(sc.uncertainty, sc.informative & inside & ~labelled, labelled,
                                 torch.tensor([3, 2, 5]))
    assert torch.equal(sel.frames, want_sel[0])
    picked = set(sel.frames[sel.frames >= 0].tolist())
    assert picked and all(sc.informative.view(-1)[i] for i in [
        v * 20 + f for v, row in enumerate(sel.per_video()) for f in row])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"clip_video": [0, 2]}, "clip_video must lie"),
        ({"clip_video": [0]}, "clip_video must have shape"),
        ({"clip_start": [0.0, 1.0]}, "clip_start must hold integers"),
        ({"lengths": [4, -1]}, "lengths must be >= 0"),
        ({"frame_stride": 0}, "frame_stride"),
        ({"pixels": 0}, "pixels"),
    ],
)
def test_stitch_bad_input(kwargs, match):
    fg, unc, ent = stats_of([[1, 2], [3, 4]])
    args = {"clip_video": [0, 1], "clip_start": [0, 0], "lengths": [4, 4], "pixels": 4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        stitch_clip_stats(fg, unc, ent, **args)


def test_scores_and_select_bad_input():
    fg, unc, ent = stats_of([[1, 2]])
    st = stitch_clip_stats(fg, unc, ent, [0], [0], [2], pixels=4)
    with pytest.raises(ValueError, match="min_fg"):
        frame_scores(st, min_fg=0)
    sc = frame_scores(st)
    with pytest.raises(ValueError, match="criterion"):
        select_frames(sc, torch.zeros(1, 2, dtype=torch.bool), 1, criterion="margin")
    with pytest.raises(ValueError, match="labelled must have shape"):
        select_frames(sc, torch.zeros(1, 3, dtype=torch.bool), 1)
    with pytest.raises(ValueError, match="unc_sum must have the shape"):
        stitch_clip_stats(fg, unc[:, :1], ent, [0], [0], [2], pixels=4)


def test_no_clips_and_no_videos():
    e = torch.zeros(0, 8)
    st = stitch_clip_stats(e, e, e, [], [], [5, 3], pixels=4)
    sc = frame_scores(st)
    assert sc.uncertainty.shape == (2, 5) and not sc.covered.any()
    sel = select_frames(sc, torch.zeros(2, 5, dtype=torch.bool), 2)
    assert sel.per_video() == [[], []] and torch.isnan(sel.video_score).all()
    st = stitch_clip_stats(e, e, e, [], [], [], pixels=4)
    assert st.fg_count.shape == (0, 0)
    sel = select_frames(frame_scores(st), torch.zeros(0, 0, dtype=torch.bool), 2)
    assert sel.frames.shape == (0, 2)
