"""Readers: real UCF-101-24 annotations, generated fixtures in every format, bad input."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest
from claus.data import (
    FrameReadError,
    UnsafePickleError,
    import_ava_csv,
    load_act_gt,
    load_custom,
    load_dataset,
    load_jhmdb,
    load_ucf24,
    safe_load,
)
from claus.data.custom import CustomFormatError
from claus.data.readers import AnnotationError
from PIL import Image

# ------------------------------------------------------------------ real annotations


def test_ucf24_real_annotations(shared_dir):
    root = shared_dir / "data" / "ucf101-24"
    with pytest.warns(UserWarning, match="6 videos in the train list have no annotation"):
        ds = load_ucf24(root)
    assert len(ds) == 3194
    assert ds.num_classes == 24
    assert len(ds.split_indices("train")) == 2284
    assert len(ds.split_indices("test")) == 910
    assert ds.num_boxes("train") == 403282
    assert sum(len(v.tubes) > 1 for v in ds) == 715
    v = ds.video("Basketball/v_Basketball_g01_c01")
    assert v.split == "test" and (v.height, v.width) == (240, 320) and v.group == "Basketball/g01"
    # Boxes are x1, y1, x2, y2 inside the 320×240 frame, cast before adding (no uint8 wrap).
    allb = np.concatenate([t.boxes for u in ds for t in u.tubes])
    assert allb.dtype == np.float32
    assert (allb[:, 2] >= allb[:, 0]).all() and (allb[:, 3] >= allb[:, 1]).all()
    assert allb[:, 2].max() > 255  # a uint8 sum would have wrapped below 256
    # The ACT gttubes export is 1-based and matches the tube extents.
    gt = ds.act_gt("test")
    arr = gt[v.name][v.label][0]
    assert arr[0, 0] == v.tubes[0].start + 1 and len(arr) == len(v.tubes[0])


# ------------------------------------------------------------------ fixtures


def _pyannot(tmp_path, boxes_dtype=np.uint8, bad_len=False):
    root = tmp_path / "ucf"
    (root).mkdir()
    db = {
        "Jump/v_Jump_g01_c01": {
            "label": 0,
            "numf": np.uint8(6),
            "annotations": [
                {"label": 0, "sf": 1, "ef": 4, "boxes": np.array([[1, 2, 3, 4]] * 3, boxes_dtype)}
            ],
        },
        "Run/v_Run_g02_c01": {
            "label": 1,
            "numf": np.uint16(5),
            "annotations": [
                {
                    "label": 1,
                    "sf": 0,
                    "ef": 5,
                    "boxes": np.array([[250, 100, 100, 50]] * (4 if bad_len else 5), boxes_dtype),
                },
                {
                    "label": 1,
                    "sf": 2,
                    "ef": 4,
                    "boxes": np.array([[10, 10, 5, 5]] * 2, boxes_dtype),
                },
            ],
        },
    }
    data = {
        "db": db,
        "trainvideos": ["Jump/v_Jump_g01_c01", "Gone/v_Gone_g01_c01"],
        "classes": ["Jump", "Run"],
    }
    (root / "pyannot_with_class_names.pkl").write_bytes(pickle.dumps(data, protocol=2))
    (root / "testlist01.txt").write_text("Run/v_Run_g02_c01\n")
    return root


def test_ucf24_fixture_conversion_and_frames(tmp_path):
    root = _pyannot(tmp_path)
    fr = root / "rgb-images" / "Jump" / "v_Jump_g01_c01"
    fr.mkdir(parents=True)
    for i in range(6):
        Image.fromarray(np.full((240, 320, 3), i * 10, np.uint8)).save(
            fr / f"{i + 1:05d}.jpg", quality=100
        )
    with pytest.warns(UserWarning) as rec:
        ds = load_ucf24(root)
    msgs = " | ".join(str(w.message) for w in rec)
    assert "Gone/v_Gone_g01_c01" in msgs  # missing train video named
    assert "clipped" in msgs  # 250 + 100 > 320
    jump = ds.video("Jump/v_Jump_g01_c01")
    assert jump.split == "train" and jump.num_frames == 6
    # pyannot x, y are 1-based: (1, 2, 3, 4) covers 0-based columns 0..2, rows 1..4.
    np.testing.assert_array_equal(jump.tubes[0].boxes[0], [0, 1, 3, 5])
    assert (jump.tubes[0].start, jump.tubes[0].end) == (1, 4)
    run = ds.video("Run/v_Run_g02_c01")
    assert run.split == "test" and len(run.tubes) == 2
    np.testing.assert_array_equal(run.tubes[0].boxes[0], [249, 99, 320, 149])  # clipped, no wrap
    np.testing.assert_array_equal(run.boxes_per_frame(), [1, 1, 2, 2, 1])
    # Frame f is image f + 1; decoded frames come back in the order asked.
    got = ds.read_frames(ds.index(jump.name), [5, 0, 2])
    assert got.shape == (3, 240, 320, 3) and got.dtype == np.uint8
    np.testing.assert_allclose(got[:, 0, 0, 0], [50, 0, 20], atol=2)
    with pytest.raises(FrameReadError, match="does not exist"):
        ds.read_frames(ds.index(run.name), [0])  # no frames folder for this one
    with pytest.raises(IndexError, match="out of range"):
        ds.read_frames(ds.index(jump.name), [6])
    # A truncated image is a clear error naming the file.
    p = fr / "00002.jpg"
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(FrameReadError, match="00002.jpg"):
        ds.read_frames(ds.index(jump.name), [1])


def test_ucf24_bad_files(tmp_path):
    root = _pyannot(tmp_path, bad_len=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AnnotationError, match=r"Run/v_Run_g02_c01.*4 boxes but ef - sf"):
            load_ucf24(root)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "pyannot.pkl").write_bytes(b"")
    with pytest.raises(pickle.UnpicklingError, match="empty file"):
        load_ucf24(empty)
    (empty / "pyannot.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(AnnotationError, match="not a UCF-101-24 pyannot file"):
        load_ucf24(empty)
    with pytest.raises(FileNotFoundError, match="no UCF-101-24 annotation file"):
        load_ucf24(tmp_path / "nowhere")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_malicious_pickle_is_refused_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "pyannot.pkl"
    p.write_bytes(pickle.dumps({"db": {"x": _Evil()}}))
    with pytest.raises(UnsafePickleError, match=r"posix.system|os.system|nt.system"):
        safe_load(p)
    assert not (tmp_path / "PWNED").exists()
    # Builtins beyond plain containers are refused too.
    p.write_bytes(pickle.dumps(eval))
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        safe_load(p)
    # NumPy arrays and scalars, the only things the annotation files need, load fine.
    ok = {"a": np.arange(6, dtype=np.uint16).reshape(2, 3), "n": np.uint8(7), "s": {1, 2}}
    for proto in (2, 4, 5):
        p.write_bytes(pickle.dumps(ok, protocol=proto))
        got = safe_load(p)
        np.testing.assert_array_equal(got["a"], ok["a"])
        assert got["n"] == 7 and got["s"] == {1, 2}


def _act_gt(root, jhmdb=True):
    vids = ["clap/a", "clap/b", "run/c"]
    gt = {
        "labels": ["clap", "run"],
        "gttubes": {
            "clap/a": {0: [np.array([[f, 1, 2, 10, 12] for f in range(1, 5)], np.float32)]},
            "clap/b": {0: [np.array([[f, 0, 0, 5, 5] for f in (1, 2, 5, 6)], np.float32)]},  # a gap
            "run/c": {1: [np.array([[f, 3, 3, 40, 30] for f in range(2, 4)], np.float32)]},
        },
        "nframes": {"clap/a": 4, "clap/b": 6, "run/c": 3},
        "train_videos": [["clap/a", "run/c"], ["clap/b", "run/c"], ["clap/a"]],
        "test_videos": [["clap/b"], ["clap/a"], ["clap/b", "run/c"]],
        "resolution": {v: (24, 32) for v in vids},
    }
    name = "JHMDB-GT.pkl" if jhmdb else "UCF101v2-GT.pkl"
    (root / name).write_bytes(pickle.dumps(gt, protocol=2))
    return root / name


def test_act_gt_and_jhmdb_masks(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    _act_gt(tmp_path)
    m = np.zeros((24, 32, 4), np.uint8)
    m[5:9, 6:12, :] = 1
    (tmp_path / "puppet_mask" / "clap" / "a").mkdir(parents=True)
    scipy_io.savemat(tmp_path / "puppet_mask" / "clap" / "a" / "puppet_mask.mat", {"part_mask": m})
    fr = tmp_path / "Frames" / "clap" / "a"
    fr.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(fr / f"{i + 1:05d}.png")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = load_jhmdb(tmp_path, split=1)
    msgs = " | ".join(str(w.message) for w in rec)
    assert "'clap/b' label 0 tube 0 has gaps" in msgs and "2 boxes reached outside" in msgs
    assert ds.name == "jhmdb-21" and [v.split for v in ds] == ["train", "test", "train"]
    a = ds.video("clap/a")
    assert (a.tubes[0].start, a.tubes[0].end) == (0, 4)
    np.testing.assert_array_equal(a.tubes[0].mask_fn(2), m[:, :, 2] > 0)
    np.testing.assert_array_equal(ds.read_frames("clap/a", [3])[0, 0, 0], [120, 120, 120])
    b = ds.video("clap/b")
    assert [(t.start, t.end) for t in b.tubes] == [(0, 2), (4, 6)]  # split at the gap
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds3 = load_jhmdb(tmp_path, split=3)
        assert [v.split for v in ds3] == ["train", "test", "test"]
        with pytest.raises(ValueError, match="unknown split 4"):
            load_jhmdb(tmp_path, split=4)


def test_ucf101v2_gt_through_load_ucf24(tmp_path):
    _act_gt(tmp_path, jhmdb=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_ucf24(tmp_path)
    assert ds.name == "ucf101-24" and len(ds) == 3
    c = ds.video("run/c")
    np.testing.assert_array_equal(c.tubes[0].boxes, [[3, 3, 32, 24]] * 2)  # clipped to 32×24
    assert c.tubes[0].start == 1


def test_act_gt_missing_field(tmp_path):
    p = tmp_path / "JHMDB-GT.pkl"
    p.write_bytes(pickle.dumps({"labels": []}))
    with pytest.raises(AnnotationError, match="missing field 'gttubes'"):
        load_act_gt(p)


# ------------------------------------------------------------------ custom JSON + AVA


def _custom(tmp_path, **video_over):
    arr = np.random.default_rng(0).integers(0, 255, (5, 8, 10, 3), dtype=np.uint8)
    np.save(tmp_path / "v1.npy", arr)
    v = {
        "name": "v1",
        "label": 1,
        "split": "train",
        "num_frames": 5,
        "width": 10,
        "height": 8,
        "array": "v1.npy",
        "group": "g",
        "tubes": [{"label": 1, "start": 1, "boxes": [[0, 0, 4, 4], [1, 1, 5, 5], [2, 2, 12, 6]]}],
    }
    v.update(video_over)
    doc = {
        "format": "claus.dataset",
        "version": 1,
        "name": "mine",
        "classes": ["a", "b"],
        "videos": [v],
    }
    (tmp_path / "d.json").write_text(json.dumps(doc))
    return tmp_path / "d.json", arr


def test_custom_json(tmp_path):
    p, arr = _custom(tmp_path)
    with pytest.warns(UserWarning, match="1 boxes reached outside"):
        ds = load_dataset("custom", p)
    v = ds.video("v1")
    assert (v.label, v.split, v.group, v.num_frames) == (1, "train", "g", 5)
    np.testing.assert_array_equal(v.tubes[0].boxes[2], [2, 2, 10, 6])
    np.testing.assert_array_equal(ds.read_frames(0, [4, 1]), arr[[4, 1]])


@pytest.mark.parametrize(
    "over, match",
    [
        ({"num_frames": "5"}, "field 'num_frames' must be"),
        (
            {"tubes": [{"label": 0, "start": 4, "boxes": [[0, 0, 1, 1]] * 2}]},
            r"frames \[4, 6\) outside",
        ),
        (
            {"tubes": [{"label": 0, "start": 0, "boxes": [[0, 0, 1]]}]},
            r"boxes must be .* shape \(1, 3\)",
        ),
        ({"tubes": [{"label": 0, "start": 0, "boxes": [[5, 0, 1, 1]]}]}, "x2 < x1"),
        ({"frames": "f/x.jpg"}, "give one of"),
    ],
)
def test_custom_json_errors(tmp_path, over, match):
    p, _ = _custom(tmp_path, **over)
    with pytest.raises(CustomFormatError, match=match):
        load_custom(p)


def test_custom_json_format_errors(tmp_path):
    p = tmp_path / "d.json"
    p.write_text("")
    with pytest.raises(CustomFormatError, match="empty file"):
        load_custom(p)
    p.write_text('{"format": "claus.dataset", "version": 9}')
    with pytest.raises(CustomFormatError, match="unsupported version 9"):
        load_custom(p)
    p.write_text("[1]")
    with pytest.raises(CustomFormatError, match="not a claus dataset"):
        load_custom(p)


def test_ava_csv_import(tmp_path):
    csv = tmp_path / "a.csv"
    csv.write_text(
        "video_id,t,x1,y1,x2,y2,action,person\n"
        "vid,1,0.1,0.2,0.3,0.4,wave,0\n"
        "vid,2,0.2,0.2,0.4,0.4,wave,0\n"
        "vid,5,0.5,0.5,0.6,0.6,wave,0\n"  # 3 s after the previous keyframe: a new tube
        "vid,1,0.0,0.0,1.0,1.0,sit,1\n"
    )
    videos = {"vid": {"num_frames": 200, "width": 100, "height": 50, "fps": 10, "split": "train"}}
    doc = import_ava_csv(csv, videos)
    assert doc["classes"] == ["sit", "wave"]
    tubes = doc["videos"][0]["tubes"]
    wave = [t for t in tubes if t["label"] == 1]
    assert [(t["start"], len(t["boxes"])) for t in wave] == [(10, 11), (50, 1)]
    np.testing.assert_allclose(wave[0]["boxes"][0], [10, 10, 30, 20])
    np.testing.assert_allclose(wave[0]["boxes"][5], [15, 10, 35, 20])  # halfway interpolated
    assert doc["videos"][0]["label"] == 1
    (tmp_path / "d.json").write_text(json.dumps(doc))
    ds = load_custom(tmp_path / "d.json")
    assert ds.num_boxes("train") == 13
    bad = tmp_path / "b.csv"
    bad.write_text("vid,1,0.1,0.2,30,0.4,wave,0\n")
    with pytest.raises(CustomFormatError, match=r"b.csv:1: box .* not normalized"):
        import_ava_csv(bad, videos)
    bad.write_text("other,1,0.1,0.2,0.3,0.4,wave,0\n")
    with pytest.raises(CustomFormatError, match="video 'other' is not in the videos table"):
        import_ava_csv(bad, videos)


def _write_mp4(path, n):
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 32, 24, "yuv420p"
        s.codec_context.gop_size = 8
        for i in range(n):
            img = np.full((24, 32, 3), 5 * i, np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def test_video_file_reader(tmp_path):
    path = tmp_path / "v.mp4"
    n = 40
    _write_mp4(path, n)
    p, _ = _custom(tmp_path)
    doc = json.loads(p.read_text())
    v = doc["videos"][0]
    del v["array"]
    v.update(video="v.mp4", num_frames=n, width=32, height=24, tubes=[])
    p.write_text(json.dumps(doc))
    ds = load_custom(p)
    got = ds.read_frames(0, [33, 2, 17])
    assert got.shape == (3, 24, 32, 3)
    np.testing.assert_allclose(got[:, 12, 16].mean(1), [165, 10, 85], atol=6)
    assert ds[0].source.count_frames() == n
    # A truncated file fails with an error naming it, not a crash.
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    ds = load_custom(p)
    with pytest.raises(FrameReadError, match="v.mp4"):
        ds.read_frames(0, [39])


def test_unknown_dataset_and_split(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'nope'; choices: synthetic"):
        load_dataset("nope")
    with pytest.raises(ValueError, match="needs a path"):
        load_dataset("ucf101-24")
    p, _ = _custom(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_custom(p)
    with pytest.raises(ValueError, match=r"unknown split 'val'; choices: \['train'\]"):
        ds.split_indices("val")


def test_import_ava_cli(tmp_path, capsys):
    from claus.data.import_ava import main

    (tmp_path / "vids").mkdir()
    _write_mp4(tmp_path / "vids" / "clip1.mp4", 30)
    csv = tmp_path / "a.csv"
    csv.write_text("clip1,0.2,0.25,0.25,0.75,0.75,wave,3\nclip1,0.6,0.5,0.25,1.0,0.75,wave,3\n")
    out = tmp_path / "out" / "ds.json"
    out.parent.mkdir()
    assert main([str(csv), "--video-dir", str(tmp_path / "vids"), "--out", str(out)]) == 0
    assert "1 videos, 1 tubes, 1 classes" in capsys.readouterr().out
    ds = load_custom(out)
    v = ds["clip1"]
    assert (v.num_frames, v.width, v.height) == (30, 32, 24)
    assert (v.tubes[0].start, v.tubes[0].end) == (5, 16)  # 0.2 s and 0.6 s at 25 fps
    np.testing.assert_allclose(v.tubes[0].boxes[[0, -1]], [[8, 6, 24, 18], [16, 6, 32, 18]])
    assert ds.read_frames("clip1", [29]).shape == (1, 24, 32, 3)
    with pytest.raises(SystemExit):
        main([str(csv), "--out", str(out)])
