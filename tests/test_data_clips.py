"""Clip loader: shapes, frame/mask alignment under crop/flip/resize, windows, workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from claus.data import (
    ArrayFrames,
    ClipGeometry,
    InferenceClips,
    LabelState,
    TrainClips,
    Tube,
    Video,
    VideoDataset,
    clip_frames,
    render_boxes,
    sliding_windows,
    synthetic_dataset,
)

#: The layout these tests were written for (shapes of 8 frames, the centre at position 4).
G8 = ClipGeometry(T=8, stride=2, size=None)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return synthetic_dataset("tiny", seed=1, cache_dir=tmp_path_factory.mktemp("syn"), workers=1)


def _painted(n=20, H=30, W=40, two=False) -> VideoDataset:
    """Frames are white exactly inside the GT boxes, so image and mask must coincide."""
    rng = np.random.default_rng(0)
    tubes = []
    x = np.linspace(2, 20, n)
    tubes.append(Tube(0, 0, np.stack([x, x * 0 + 4, x + 12, x * 0 + 20], 1)))
    if two:
        tubes.append(Tube(0, 5, np.tile([[28.0, 10.0, 38.0, 26.0]], (10, 1))))
    frames = np.zeros((n, H, W, 3), np.uint8)
    v = Video("p", 0, n, H, W, "train", tubes, source=None)
    for f in range(n):
        m = render_boxes(
            np.array([[b for _, _, b in v.boxes_at(f)]], np.float32).reshape(1, -1, 4), H, W
        )
        frames[f] = m[0, :, :, None] * 255
    v.source = ArrayFrames(frames)
    del rng
    return VideoDataset("painted", ["a"], [v])


def test_clip_frames_and_windows():
    np.testing.assert_array_equal(clip_frames(5, 20, 8, 2), [0, 0, 1, 3, 5, 7, 9, 11])
    np.testing.assert_array_equal(clip_frames(18, 20, T=4, stride=3), [12, 15, 18, 19])
    for n, T, s in [(1, 8, 2), (7, 8, 2), (24, 8, 2), (33, 4, 3)]:
        seen = np.zeros(n, int)
        for fr, valid in sliding_windows(n, T, s):
            assert fr.shape == (T,) and (np.diff(fr[valid]) == s).all()
            np.add.at(seen, fr[valid], 1)
            assert (fr >= 0).all() and (fr < n).all()
        np.testing.assert_array_equal(seen, 1)  # every frame exactly once


def test_train_item_shapes_and_full_label_alignment(tiny):
    labels = LabelState.full(tiny)
    tc = TrainClips(tiny, labels, G8, augment=False, sampling="frame")
    assert len(tc) == labels.num_labelled_frames()
    S = tiny[0].height
    for i in range(0, len(tc), 37):
        it = tc[i]
        assert it["clip"].shape == (3, 8, S, S) and it["clip"].dtype == torch.float32
        assert it["mask"].shape == (8, S, S) and it["mask"].dtype == torch.uint8
        assert it["annotated"].dtype == torch.bool and it["annotated"].all()
        vi, fr = int(it["video"]), it["frames"].numpy()
        v = tiny[vi]
        assert int(it["label"]) == v.label
        # Full labels: the pseudo-mask is exactly the ground truth of each frame.
        gt = [[b for _, _, b in v.boxes_at(int(f))] for f in fr]
        K = max(1, max(len(g) for g in gt))
        arr = np.full((8, K, 4), np.nan, np.float32)
        for t, g in enumerate(gt):
            for k, b in enumerate(g):
                arr[t, k] = b
        np.testing.assert_array_equal(it["mask"].numpy(), render_boxes(arr, S, S))
        raw = tiny.read_frames(vi, fr)
        np.testing.assert_allclose(it["clip"].permute(1, 2, 3, 0).numpy(), raw / 255.0, atol=1e-6)


@pytest.mark.parametrize("size", [None, (24, 32), 60])
def test_augmented_mask_follows_pixels(size):
    ds = _painted(two=True)
    tc = TrainClips(ds, LabelState.full(ds), G8, size=size, augment=True, crop_scale=(0.6, 1.0),
                    seed=3)
    for ep in range(6):
        tc.set_epoch(ep)
        it = tc[0]
        img = it["clip"][0].numpy() > 0.5  # (T, H, W) painted box pixels
        mask = it["mask"].numpy().astype(bool)
        if size is not None:
            H, W = (size, size) if isinstance(size, int) else size
            assert mask.shape[1:] == (H, W)
        # Agreement up to interpolation at box borders.
        assert (img != mask).mean() < 0.04, (img != mask).mean()
    assert tc[0]["clip"].shape[1] == 8


def test_flip_happens_and_flips_both():
    ds = _painted(two=True)
    tc = TrainClips(ds, LabelState.full(ds), augment=True, crop_scale=(1.0, 1.0), seed=0)
    kinds = set()
    for ep in range(12):
        tc.set_epoch(ep)
        it = tc[0]
        raw = torch.from_numpy(ds.read_frames(0, it["frames"].numpy())).permute(3, 0, 1, 2) / 255.0
        flipped = torch.equal(it["clip"], raw.flip(-1))
        assert flipped or torch.equal(it["clip"], raw)
        kinds.add(flipped)
        assert torch.equal(it["mask"].bool(), it["clip"][0] > 0.5)
    assert kinds == {True, False}


def test_sparse_labels_centre_and_annotated(tiny):
    st = LabelState.random(tiny, 20, seed=0, frames_per_video=2)
    tc = TrainClips(tiny, st, G8, seed=7)
    assert len(tc) == len(st.labelled_videos())
    for ep in range(2):
        tc.set_epoch(ep)
        for i in range(len(tc)):
            it = tc[i]
            v = tiny[int(it["video"])]
            fr = it["frames"].numpy()
            assert st.is_labelled(v.name, int(fr[4]))  # centred on a labelled frame
            want = [st.is_labelled(v.name, int(f)) for f in fr]
            np.testing.assert_array_equal(it["annotated"].numpy(), want)
    # Same (seed, epoch, index) → same item; another epoch → other randomness.
    tc.set_epoch(0)
    a = tc[1]
    tc.set_epoch(0)
    b = tc[1]
    assert torch.equal(a["clip"], b["clip"]) and torch.equal(a["frames"], b["frames"])


def test_pseudo_mask_from_sparse_labels_interpolates():
    ds = _painted()
    st = LabelState.empty(ds)
    st.reveal(
        ds, "p", [0, 19], 0
    )  # only the ends: the box moves linearly, so interpolation is exact
    tc = TrainClips(ds, st, augment=False, sampling="frame")
    for i in range(len(tc)):
        it = tc[i]
        img = it["clip"][0].numpy() > 0.5
        assert (img != it["mask"].numpy().astype(bool)).mean() < 0.01


def test_inference_windows_cover_test_split(tiny):
    ic = InferenceClips(tiny, "test", G8, size=16)
    seen: dict[int, np.ndarray] = {
        i: np.zeros(tiny[i].num_frames, int) for i in tiny.split_indices("test")
    }
    for i in range(len(ic)):
        it = ic[i]
        assert it["clip"].shape == (3, 8, 16, 16) and it["mask"].shape == (8, 16, 16)
        assert not it["annotated"].any() and it["mask"].sum() == 0  # no labels given
        np.add.at(seen[int(it["video"])], it["frames"].numpy()[it["valid"].numpy()], 1)
    assert all((s == 1).all() for s in seen.values())


def test_dataloader_workers_match_in_process(tiny):
    st = LabelState.random(tiny, 30, seed=1)
    tc = TrainClips(tiny, st, seed=2)
    tc.set_epoch(4)
    ref = [tc[i] for i in range(len(tc))]
    dl = torch.utils.data.DataLoader(tc, batch_size=4, num_workers=2)
    got = [b for b in dl]
    clips = torch.cat([b["clip"] for b in got])
    masks = torch.cat([b["mask"] for b in got])
    assert torch.equal(clips, torch.stack([r["clip"] for r in ref]))
    assert torch.equal(masks, torch.stack([r["mask"] for r in ref]))


def test_masks_used_where_available():
    ds = _painted()
    v = ds[0]
    special = np.zeros((30, 40), bool)
    special[0:3, 0:3] = True  # a mask unlike the box, to see which one is used
    v.tubes[0].mask_fn = lambda f: special
    st = LabelState.empty(ds)
    st.reveal(ds, "p", [4], 0)
    it = TrainClips(ds, st, G8, augment=False, sampling="frame")[0]
    np.testing.assert_array_equal(it["mask"].numpy(), np.broadcast_to(special, (8, 30, 40)))


def test_empty_label_state_is_an_error(tiny):
    with pytest.raises(ValueError, match="labels no frame"):
        TrainClips(tiny, LabelState.empty(tiny))


def test_store_resolution_boxes_rescaled(tmp_path):
    # Frames read from a half-size store, boxes in original pixels: the mask must still follow
    # the painted pixels.
    from claus.data import FrameStore, prepare_store

    ds = _painted(two=True)
    prepare_store(ds, tmp_path / "st", (15, 20), progress=False)
    small = ds.with_store(FrameStore(tmp_path / "st"))
    tc = TrainClips(small, LabelState.full(small), size=(30, 40), augment=False, sampling="frame")
    for i in (0, 7, 15):
        it = tc[i]
        img = it["clip"][0].numpy() > 0.5
        assert (img != it["mask"].numpy().astype(bool)).mean() < 0.05


def test_inference_clips_carry_labels_when_given():
    ds = _painted()
    st = LabelState.empty(ds)
    st.reveal(ds, "p", [6], 0)
    ic = InferenceClips(ds, None, labels=st)
    items = [ic[i] for i in range(len(ic))]
    ann = sum(int(it["annotated"].sum()) for it in items)
    assert ann >= 1  # frame 6 is labelled (and may repeat as padding)
    assert all(it["mask"].sum() > 0 for it in items)  # the held box covers every frame


def test_balanced_sampling_evens_out_classes(tiny):
    from collections import Counter

    train = tiny.split_indices("train")
    counts = Counter(tiny[i].label for i in train)
    assert len(set(counts.values())) > 1  # the tiny preset is imbalanced
    for balance in (False, True):
        tc = TrainClips(tiny, LabelState.full(tiny), augment=False, clips_per_video=6,
                        balance=balance, seed=1)
        tc.set_epoch(2)
        got = Counter(tiny[int(tc[i]["video"])].label for i in range(len(tc)))
        assert len(tc) == 6 * len(train)
        if balance:
            assert max(got.values()) - min(got.values()) <= 1
            # Each class's videos are used evenly (a cycle through a per-epoch shuffle).
            per_video = Counter(int(tc[i]["video"]) for i in range(len(tc)))
            for c in counts:
                uses = [per_video[i] for i in train if tiny[i].label == c]
                assert max(uses) - min(uses) <= 1
        else:
            assert got == Counter({c: 6 * n for c, n in counts.items()})
