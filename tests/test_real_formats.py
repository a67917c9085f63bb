"""The real release formats, rendered small (tests/realdata.py), read through `load_dataset`.

Every layout: the counts of videos, frames, tubes and boxes are those rendered; frames read
back at the right size, 0-based (frame 0 is file 00001); each box sits on its drawn actor and
inside the frame. Then supervised runs of the training CLI on the UCF-101-24 layout, with the
tiny model and with I3D from a pytorch-i3d-named checkpoint.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.realdata import (
    CLASS_COLOURS,
    REPO,
    Rendered,
    i3d_units,
    render_jhmdb,
    render_ucf24,
    ucf24_annotations,
)


def _load(r: Rendered, **kw):
    """The rendered dataset, asserting that reading it warns about nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return r.load(**kw)


def _check_counts(ds, r: Rendered, box_atol: float = 0.0) -> None:
    """Videos, splits, labels, frames, tubes and boxes equal what was rendered."""
    assert ds.classes == r.classes
    assert sorted(v.name for v in ds) == r.names()
    for split in ("train", "test"):
        assert sorted(ds[i].name for i in ds.split_indices(split)) == r.names(split)
        assert ds.num_frames(split) == r.num_frames(split)
        assert ds.num_boxes(split) == r.num_boxes(split)
    for v in ds:
        want = r.videos[v.name]
        assert (v.label, v.split, v.num_frames) == (want.label, want.split, want.num_frames)
        assert (v.height, v.width) == r.frame_size
        got = sorted((t.label, t.start, len(t)) for t in v.tubes)
        assert got == sorted((lab, st, len(b)) for lab, st, b in want.tubes)
        for t, (_, _, b) in zip(
            sorted(v.tubes, key=lambda t: (t.start, t.boxes[0, 0])),
            sorted(want.tubes, key=lambda x: (x[1], x[2][0, 0])),
            strict=True,
        ):
            np.testing.assert_allclose(t.boxes, b, atol=box_atol)


def _check_frames(ds, r: Rendered, colour_tol: int = 60) -> None:
    """Reads have the right shape and order; every tube's box sits on its drawn shape."""
    H, W = r.frame_size
    for i, v in enumerate(ds):
        n = v.num_frames
        got = ds.read_frames(i, [n - 1, 0, n // 2])
        assert got.shape == (3, H, W, 3) and got.dtype == np.uint8
        with pytest.raises(IndexError):
            ds.read_frames(i, [n])  # frames are 0-based: n - 1 is the last one
        for t in v.tubes:
            b = t.boxes
            assert (b[:, :2] >= 0).all() and (b[:, 2] <= W).all() and (b[:, 3] <= H).all()
            assert (b[:, 2:] >= b[:, :2]).all()
            f = t.start + len(t) // 2
            x1, y1, x2, y2 = t.boxes[f - t.start]
            cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
            px = ds.read_frames(i, [f])[0, max(cy - 1, 0) : cy + 2, max(cx - 1, 0) : cx + 2]
            want = np.array(CLASS_COLOURS[t.label % len(CLASS_COLOURS)])
            err = np.abs(np.median(px.reshape(-1, 3), axis=0) - want).max()
            assert err < colour_tol, f"{v.name} frame {f}: {px.reshape(-1, 3)} vs {want}"


def _check_first_file(ds, r: Rendered) -> None:
    """Frame 0 is the image numbered `first_frame` (00001 unless the format says otherwise)."""
    from PIL import Image

    for i, v in enumerate(ds):
        want = r.videos[v.name]
        with Image.open(want.source.format(want.first_frame)) as im:
            np.testing.assert_array_equal(ds.read_frames(i, [0])[0], np.asarray(im.convert("RGB")))


# ------------------------------------------------------------------ UCF-101-24


def test_ucf24_layout_and_reader(real_ucf24):
    r = real_ucf24
    root = r.root
    assert r.seconds < 5 and r.num_train == 6 and r.num_test == 3 and len(r.classes) == 3
    # The released layout: rgb-images/<Class>/<video>/00001.jpg ..., no 00000.jpg.
    for name, v in r.videos.items():
        files = sorted((root / "rgb-images" / name).iterdir())
        assert [f.name for f in files] == [f"{k:05d}.jpg" for k in range(1, v.num_frames + 1)]
    assert (root / "testlist01.txt").read_text().split() == r.names("test")
    ds = _load(r)
    assert ds.name == "ucf101-24" and len(ds) == 9
    assert sum(len(v.tubes) > 1 for v in ds) >= 2  # the fencers come in pairs
    assert {v.group for v in ds} >= {"Fencing/g01", "Basketball/g08"}
    _check_counts(ds, r)
    _check_frames(ds, r)
    _check_first_file(ds, r)


def test_ucf24_subset_is_the_real_annotations(real_ucf24, shared_dir):
    """The written pickle has the real file's structure, and its tubes are the real tubes,
    shifted by the window's start."""
    from claus.data import safe_load

    real, _ = ucf24_annotations(shared_dir / "data" / "ucf101-24")
    sub = safe_load(real_ucf24.root / "pyannot_with_class_names.pkl")
    assert set(sub) == set(real) == {"db", "trainvideos", "classes"}
    assert sub["classes"] == ["Basketball", "Diving", "Fencing"]
    assert sorted(sub["trainvideos"]) == real_ucf24.names("train")
    assert set(sub["trainvideos"]) <= set(real["trainvideos"])
    for key, rec in sub["db"].items():
        orig = real["db"][key]
        assert set(rec) == set(orig) and type(rec["numf"]) is type(orig["numf"])
        assert real["classes"][orig["label"]] == sub["classes"][rec["label"]]
        off = real_ucf24.videos[str(key)].offset
        assert int(rec["numf"]) <= min(24, int(orig["numf"]) - off)
        for a in rec["annotations"]:
            sf, ef = a["sf"] + off, a["ef"] + off
            assert any(
                o["sf"] <= sf and ef <= o["ef"] and o["boxes"].dtype == a["boxes"].dtype
                and np.array_equal(o["boxes"][sf - o["sf"] : ef - o["sf"]], a["boxes"])
                for o in orig["annotations"]
            ), f"{key}: tube {a['sf']}..{a['ef']} is not a real tube shifted by {off}"


def test_ucf24_whole_videos_and_video_files(tmp_path, shared_dir):
    """max_frames=None keeps the real frame counts and tubes; frames="videos" writes
    videos/<Class>/<video>.avi, which the reader decodes with PyAV."""
    pytest.importorskip("av")
    r = render_ucf24(tmp_path / "u", (1, 1), ["Diving"], max_frames=None, frames="videos")
    assert r.seconds < 5
    assert not (tmp_path / "u" / "rgb-images").exists()
    assert sorted(p.name for p in (tmp_path / "u" / "videos" / "Diving").iterdir()) == [
        n.split("/")[1] + ".avi" for n in r.names()
    ]
    real = ucf24_annotations(shared_dir / "data" / "ucf101-24")[0]["db"]
    ds = _load(r)
    _check_counts(ds, r)
    for v in ds:
        orig = real[v.name]
        assert v.num_frames == int(orig["numf"]) and len(v.tubes) == len(orig["annotations"])
        assert [t.start for t in v.tubes] == [a["sf"] for a in orig["annotations"]]
        assert v.source.count_frames() == v.num_frames
    _check_frames(ds, r, colour_tol=70)


# ------------------------------------------------------------------ J-HMDB-21


def test_jhmdb_layout_and_reader(real_jhmdb):
    r = real_jhmdb
    assert r.seconds < 5 and r.frame_size == (60, 80)
    gt = pickle.loads((r.root / "JHMDB-GT.pkl").read_bytes())
    assert set(gt) == {"labels", "gttubes", "nframes", "train_videos", "test_videos", "resolution"}
    assert len(gt["train_videos"]) == len(gt["test_videos"]) == 3
    for tr, te in zip(gt["train_videos"], gt["test_videos"], strict=True):
        assert not set(tr) & set(te) and sorted(tr + te) == r.names()
        for c in r.classes:  # every split has train and test videos of every class
            assert any(v.startswith(c + "/") for v in tr) and any(v.startswith(c + "/") for v in te)
    for name, v in r.videos.items():
        (arr,) = gt["gttubes"][name][v.label]
        assert arr.shape == (v.num_frames, 5) and arr[0, 0] == 1  # ACT frames are 1-based
        assert gt["resolution"][name] == (60, 80) and gt["nframes"][name] == v.num_frames
        assert 15 <= v.num_frames <= 40
        pngs = sorted((r.root / "Frames" / name).glob("*.png"))
        assert [p.name for p in pngs] == [f"{k:05d}.png" for k in range(1, v.num_frames + 1)]
    for split in (1, 2, 3):
        ds = _load(r, split=split)
        assert ds.name == "jhmdb-21" and len(ds) == 12
        assert sorted(ds[i].name for i in ds.split_indices("test")) == sorted(
            gt["test_videos"][split - 1])
    ds = _load(r)
    # Whether ACT boxes are inclusive or edges is being settled: within one pixel here.
    _check_counts(ds, r, box_atol=1.01)
    _check_frames(ds, r)
    _check_first_file(ds, r)


def test_jhmdb_puppet_masks(real_jhmdb):
    pytest.importorskip("scipy.io")
    ds = _load(real_jhmdb)
    for v in ds:
        t = v.tubes[0]
        assert t.mask_fn is not None
        f = t.start + len(t) // 2
        m = t.mask_fn(f)
        assert m.shape == (60, 80) and m.dtype == bool
        x1, y1, x2, y2 = t.boxes[f - t.start]
        assert m[int((y1 + y2) / 2), int((x1 + x2) / 2)]
        ys, xs = np.nonzero(m)  # the mask lies within its box
        assert xs.min() >= x1 - 1 and xs.max() <= x2 and ys.min() >= y1 - 1 and ys.max() <= y2


def test_jhmdb_other_split_and_no_masks(tmp_path):
    r = render_jhmdb(tmp_path / "j", n_videos=3, classes=["pour", "run"], split=2, masks=False)
    assert not (tmp_path / "j" / "puppet_mask").exists()
    assert r.cli_args()[-2:] == ["--split", "2"] and (r.num_train, r.num_test) == (4, 2)
    ds = _load(r)
    assert ds.classes == ["pour", "run"] and all(t.mask_fn is None for v in ds for t in v.tubes)
    _check_counts(ds, r, box_atol=1.01)


# ------------------------------------------------------------------ custom JSON, video files


def test_custom_layout_and_reader(real_custom):
    r = real_custom
    assert r.seconds < 5 and r.root.name == "dataset.json"
    doc = json.loads(r.root.read_text())
    assert doc["format"] == "claus.dataset" and len(doc["videos"]) == 15
    assert {v.get("first_frame") for v in doc["videos"]} == {0, 1}
    assert any(len(v["tubes"]) == 2 for v in doc["videos"])
    assert any(v["tubes"][0]["start"] > 0 for v in doc["videos"])  # actor over part of it
    ds = _load(r)
    assert (ds.name, len(ds), r.num_train, r.num_test) == ("real-custom", 15, 9, 6)
    assert ds["run/run_02"].group == "run"
    _check_counts(ds, r, box_atol=1e-4)
    _check_frames(ds, r)
    _check_first_file(ds, r)


def test_video_files_layout_and_reader(real_videos, real_custom):
    """.avi (MPEG-4) and .mp4 (H.264 with B-frames) decode, in any order asked, to the frames
    the image folders hold (each read frame is nearest to its own image, lossy codecs
    aside)."""
    r = real_videos
    assert r.seconds < 5
    kinds = {Path(v.source).suffix for v in r.videos.values()}
    assert kinds == {".avi", ".mp4"} and not (r.root.parent / "frames").exists()
    ds = _load(r)
    images = _load(real_custom)
    _check_counts(ds, r, box_atol=1e-4)
    _check_frames(ds, r, colour_tol=70)
    for i, v in enumerate(ds):
        assert v.source.count_frames() == v.num_frames
        n = v.num_frames
        order = [n - 1, 0, n // 2, 1, n // 2 - 1]
        got = ds.read_frames(i, order).astype(np.int16)
        ref = images.read_frames(v.name, range(n)).astype(np.int16)
        # One at a time too: a read that starts past frame 0 seeks to a keyframe first.
        alone = np.concatenate([ds.read_frames(i, [f]) for f in order]).astype(np.int16)
        np.testing.assert_array_equal(alone, got)
        for g, f in zip(got, order, strict=True):
            err = np.abs(g - ref).mean(axis=(1, 2, 3))
            # Frames without an actor 8 apart are alike (the background pans in 8 steps).
            other = np.abs(ref - ref[f]).mean(axis=(1, 2, 3)) > 2
            assert err[f] < 12 and (err[other] > err[f]).all(), (
                f"{v.source.describe()} frame {f}: errors {err.round(1)}"
            )


# ------------------------------------------------------------------ I3D weights, CLI


def test_i3d_checkpoint_names_fit_claus(i3d_weights):
    import torch
    from claus.models import build_model

    sd = torch.load(i3d_weights, weights_only=True)
    assert "Conv3d_1a_7x7.conv3d.weight" in sd and "Mixed_3b.b0.conv3d.weight" in sd
    assert sd["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1)
    assert len(i3d_units()) == 3 + 9 * 6
    model = build_model("i3d", 3)
    report = model.load_weights(i3d_weights)
    own = {k for k in model.backbone.state_dict() if not k.endswith("num_batches_tracked")}
    assert set(report.loaded) == own and not report.missing and not report.unexpected
    assert {k.split(".")[0] for k in report.skipped} == {"Mixed_5b", "Mixed_5c", "logits"}
    torch.testing.assert_close(model.backbone.state_dict()["Mixed_4f.b1b.bn.running_var"],
                               sd["Mixed_4f.b1b.bn.running_var"])


def _train(rendered: Rendered, run: Path, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "claus.train", *rendered.cli_args(), "--budget", "50",
           "--epochs", "1", "--T", "4", "--stride", "1", "--size", "32", "--batch-size", "4",
           "--min-clips-per-epoch", "0", "--device", "cpu", "--quiet", "--no-pictures",
           "--run", str(run), *extra]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    return json.loads((run / "results.json").read_text())


def test_cli_supervised_on_ucf24(real_ucf24, tmp_path):
    res = _train(real_ucf24, tmp_path / "run")
    assert res["videos"] == real_ucf24.num_test and res["frames"] == real_ucf24.num_frames("test")
    assert len(res["per_class"]["f-AP@0.5"]) == 3


def test_cli_i3d_from_pytorch_i3d_checkpoint(real_ucf24, i3d_weights, tmp_path):
    res = _train(real_ucf24, tmp_path / "run", "--model", "i3d", "--weights", str(i3d_weights))
    assert res["videos"] == real_ucf24.num_test
