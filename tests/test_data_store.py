"""Frame store (resize, resume, corrupt videos) and the atomic-write helper."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from claus.data import FrameStore, load_custom, load_dataset, prepare_store, synthetic_dataset
from claus.data.prepare import main as prepare_main
from claus.io import atomic_torch_save, atomic_write_json, atomic_write_text
from PIL import Image


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return synthetic_dataset("tiny", seed=2, cache_dir=tmp_path_factory.mktemp("syn"), workers=1)


def test_store_resizes_and_reads(tiny, tmp_path):
    s = prepare_store(tiny, tmp_path / "st", (16, 20), progress=False)
    assert (s.written, s.reused, len(s.failed)) == (len(tiny), 0, 0)
    st = FrameStore(tmp_path / "st")
    ds = tiny.with_store(st)
    v = ds[3]
    got = ds.read_frames(3, [0, v.num_frames - 1])
    assert got.shape == (2, 16, 20, 3) and got.dtype == np.uint8
    want = np.asarray(Image.fromarray(tiny.read_frames(3, [0])[0]).resize((20, 16), Image.BILINEAR))
    np.testing.assert_array_equal(got[0], want)
    # Boxes stay in original pixels; the clip loader rescales them.
    assert (v.height, v.width) == (tiny[3].height, tiny[3].width)
    assert isinstance(np.load(st.file(v.name), mmap_mode="r"), np.memmap)


def test_store_resume_and_refuse_mixing(tiny, tmp_path):
    root = tmp_path / "st"
    prepare_store(tiny, root, 12, progress=False)
    idx = json.loads((root / "index.json").read_text())
    assert idx["size"] == {"short_side": 12}
    victim = FrameStore(root).file(tiny[5].name)
    victim.unlink()  # as if killed before this video was written
    s = prepare_store(tiny, root, 12, progress=False)
    assert (s.written, s.reused) == (1, len(tiny) - 1)
    assert victim.is_file()
    with pytest.raises(ValueError, match="refusing to mix"):
        prepare_store(tiny, root, 16, progress=False)
    assert not list(root.rglob("*.tmp"))  # no temporary leftovers


def test_corrupt_video_is_skipped_and_counted(tmp_path):
    good = np.zeros((4, 8, 8, 3), np.uint8)
    np.save(tmp_path / "good.npy", good)
    (tmp_path / "f").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "f" / "00001.png")
    (tmp_path / "f" / "00002.png").write_bytes(b"\x89PNG garbage")
    base = {"split": "train", "width": 8, "height": 8, "tubes": []}
    doc = {
        "format": "claus.dataset",
        "version": 1,
        "classes": ["a"],
        "videos": [
            {"name": "good", "num_frames": 4, "array": "good.npy", **base},
            {"name": "broken", "num_frames": 2, "frames": "f/{:05d}.png", **base},
            {"name": "absent", "num_frames": 3, "frames": "nowhere/{:05d}.jpg", **base},
        ],
    }
    (tmp_path / "d.json").write_text(json.dumps(doc))
    ds = load_custom(tmp_path / "d.json")
    with pytest.warns(UserWarning) as rec:
        s = prepare_store(ds, tmp_path / "st", progress=False)
    msgs = " ".join(str(w.message) for w in rec)
    assert "'broken'" in msgs and "00002.png" in msgs and "'absent'" in msgs
    assert s.written == 1 and set(s.failed) == {"broken", "absent"}
    assert "2 failed" in str(s)
    st = FrameStore(tmp_path / "st")
    assert st.missing(ds) == ["broken", "absent"] and set(st.failed) == {"broken", "absent"}
    # The failed ones are not retried unless asked.
    s2 = prepare_store(ds, tmp_path / "st", progress=False)
    assert (s2.written, s2.reused, len(s2.failed)) == (0, 1, 2)


def test_prepare_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CLAUS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "st"
    assert (
        prepare_main(
            ["--dataset", "synthetic:tiny", "--out", str(out), "--size", "8x8", "--no-progress"]
        )
        == 0
    )
    assert "24 videos written" in capsys.readouterr().out
    ds = load_dataset("synthetic:tiny", store=out)
    assert ds.read_frames(0, [0]).shape == (1, 8, 8, 3)
    assert prepare_main(["--dataset", "bogus", "--out", str(out)]) == 2
    assert "unknown dataset 'bogus'" in capsys.readouterr().err


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "x.json"
    atomic_write_json(p, {"a": 1})
    with pytest.raises(ValueError):
        atomic_write_json(p, {"a": float("nan")})  # NaN is not JSON: refused before writing
    assert json.loads(p.read_text()) == {"a": 1}

    def bad_save(obj, f):
        f.write(b"half a checkpoint")
        raise RuntimeError("killed")

    ck = tmp_path / "ck.pt"
    atomic_torch_save(ck, {"w": torch.arange(3)})
    with pytest.raises(RuntimeError, match="killed"):
        atomic_torch_save(ck, {"w": torch.zeros(3)}, save=bad_save)
    assert torch.equal(torch.load(ck, weights_only=True)["w"], torch.arange(3))
    assert sorted(os.listdir(tmp_path)) == ["ck.pt", "x.json"]  # no temporary files left
    atomic_write_text(tmp_path / "deep" / "t.txt", "hé")
    assert (tmp_path / "deep" / "t.txt").read_text(encoding="utf-8") == "hé"
