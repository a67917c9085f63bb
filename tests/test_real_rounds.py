"""One whole active-learning round through the CLI on every real format: train → score →
select → simulated labels → train, on frames rendered for the real UCF-101-24 annotations
(killed and resumed), a J-HMDB-21 layout, a custom JSON dataset, video files decoded with PyAV,
and I3D loading a pytorch-i3d checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from claus.train import main as train_main

REPO = Path(__file__).resolve().parents[1]

#: One round at the smallest sizes the tiny detector trains at: 10% of the boxes, then 20%.
SMALL = ["--init", "10", "--step", "10", "--target", "20", "--epochs", "1", "--batch-size",
         "4", "--min-clips-per-epoch", "0", "--T", "4", "--stride", "1", "--size", "32",
         "--passes", "2", "--clusters", "2", "--videos-per-round", "2", "--device", "cpu",
         "--quiet", "--no-pictures"]


def lines(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def check_round(run: Path, data) -> None:
    """Two committed rounds; the selection spent the round's budget on training videos; the
    second round trained on the first's labels plus the selection."""
    got = lines(run)
    assert [x["round"] for x in got] == [0, 1]
    sel = json.loads((run / "round_000" / "selection.json").read_text())
    assert sel["frames"] and set(sel["frames"]) <= set(data.names("train"))
    assert sel["cost"] == sel["budget"] == got[1]["labelled_boxes"] - got[0]["labelled_boxes"]
    for x in got:
        assert 0 <= x["metrics"]["f-mAP@0.5"] <= 100
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["name"] == data.dataset and cfg["data"]["root"] == str(data.root)


def run_cli(argv: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "claus.train", *argv], cwd=REPO,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ucf24_round_killed_and_resumed(real_ucf24, tmp_path):
    """A kill -9 after round 0's model is saved, then --resume: the same selection, labels and
    metrics as a run that was never interrupted."""
    args = [*real_ucf24.cli_args(), "--strategy", "claus", *SMALL]
    whole = run_cli([*args, "--out", str(tmp_path / "whole")])
    killed = run_cli([*args, "--out", str(tmp_path / "killed")])
    run = tmp_path / "killed" / "claus" / "seed0"
    deadline = time.monotonic() + 240
    while not (run / "round_000.partial" / "model.pt").exists():
        assert killed.poll() is None, killed.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait(60)
    assert killed.returncode == -signal.SIGKILL
    assert not (run / "round_001").exists()
    out, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err
    resumed = run_cli(["--resume", str(run), "--quiet"])
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    ref = tmp_path / "whole" / "claus" / "seed0"
    check_round(run, real_ucf24)
    for name in ("round_000/selection.json", "round_000/next_labels.json",
                 "round_001/labels.json"):
        assert (run / name).read_bytes() == (ref / name).read_bytes(), name
    assert [steady(x) for x in lines(run)] == [steady(x) for x in lines(ref)]


def steady(line: dict) -> dict:
    """A metrics line without its timings."""
    out = {k: v for k, v in line.items() if k != "wall_s"}
    out["metrics"] = {k: v for k, v in line["metrics"].items() if k != "seconds"}
    return out


@pytest.mark.parametrize("fixture", ["real_jhmdb", "real_custom", "real_videos"])
def test_round_on_each_format(fixture, request, tmp_path):
    data = request.getfixturevalue(fixture)
    out = tmp_path / "exp"
    assert train_main([*data.cli_args(), "--strategy", "claus", *SMALL, "--out", str(out)]) == 0
    check_round(out / "claus" / "seed0", data)


def test_round_with_i3d_from_a_pytorch_i3d_checkpoint(real_ucf24, i3d_weights, tmp_path):
    out = tmp_path / "exp"
    argv = [*real_ucf24.cli_args(), "--strategy", "uncertainty", *SMALL, "--model", "i3d",
            "--weights", str(i3d_weights), "--out", str(out)]
    assert train_main(argv) == 0
    run = out / "uncertainty" / "seed0"
    check_round(run, real_ucf24)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["model"] == "i3d" and cfg["train"]["weights"] == str(i3d_weights)
