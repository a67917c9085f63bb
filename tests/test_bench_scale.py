"""bench/bench_scale.py: its --quick run at UCF-101-24's geometry reports every stage, and the
selection spends its budget; the rendered frames and window count it relies on."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from claus.data import Tube, Video, sliding_windows

from .conftest import REPO

SCRIPT = REPO / "bench" / "bench_scale.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_window_count_and_rendered_frames(bench):
    for n in (1, 2, 15, 31, 32, 33, 641):
        assert bench.num_windows(n, 16, 2) == len(sliding_windows(n, 16, 2))
    box = np.array([[32, 24, 160, 120]] * 5, np.float32)
    v = Video("a/v_a_g01_c01", 0, 10, 240, 320, "train", [Tube(0, 3, box)])
    src = bench.RenderedFrames(v, 7, (112, 112), seed=1)
    fr = src.read([2, 3, 7])
    assert fr.shape == (3, 112, 112, 3) and fr.dtype == np.uint8
    assert np.array_equal(fr, src.read([2, 3, 7]))  # deterministic
    # Frame 3 carries the box (x 11..56, y 11..56 at 112²): one flat colour plus noise < 8.
    inside = fr[1, 14:54, 14:54].astype(int)
    assert (inside.max((0, 1)) - inside.min((0, 1)) < 8).all()
    assert (np.ptp(fr[0, 14:54, 14:54].astype(int), (0, 1)) >= 8).any()  # no box on frame 2


def test_skips_without_shared_data(bench, tmp_path, capsys):
    assert bench.main(["--root", str(tmp_path)]) == 0
    assert "skipped" in capsys.readouterr().out


def test_quick_run_reports_every_stage(shared_dir, tmp_path):
    root = shared_dir / "data" / "ucf101-24"
    if not (root / "pyannot_with_class_names.pkl").is_file():
        pytest.skip(f"{root} has no UCF-101-24 annotations")
    out = tmp_path / "scale.json"
    res = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--root", str(root),
                          "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    d = json.loads(out.read_text())
    stages = d["stages"]
    assert set(stages) == {"open", "store", "clips", "score-tiny", "score-i3d", "select-claus",
                           "select-uncertainty", "label", "write", "train-step", "eval"}
    for name, r in stages.items():
        assert r["median_s"] > 0 and r["rss_peak_mb"] > 0, name
        assert f"| {name} |" in res.stdout
    assert stages["open"]["videos"] == 3194 and stages["open"]["frames"] == 555157
    for s in ("select-claus", "select-uncertainty"):
        assert stages[s]["budget"] > 0 and stages[s]["cost"] == stages[s]["budget"]
    lab = stages["label"]
    assert lab["spent_after"] == lab["spent_before"] + stages["select-claus"]["cost"]
    for s in ("score-tiny", "score-i3d", "store", "clips", "eval"):
        assert stages[s]["rate"] > 0
    p = d["projection"]
    assert p["train_frames"] == 395868 and p["test_frames"] == 159289
    for col in ("tiny_cpu", "i3d_gpu"):
        assert set(p[col]) == {"open", "train", "eval", "score", "select+label+write"}
        assert all(v > 0 for v in p[col].values())
    assert "One UCF-101-24 round" in res.stdout
