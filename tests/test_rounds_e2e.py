"""A tiny end-to-end active-learning run with the real trainer: claus selection on the `tiny`
synthetic preset (train → evaluate → score → cluster → select → reveal), the report, the CLI."""

from __future__ import annotations

import json

import pytest
from claus.data import budget_boxes, load_dataset
from claus.experiment import main as experiment_main
from claus.rounds import RunConfig, run_rounds

TRAIN = {"epochs": 1, "batch_size": 8, "min_clips_per_epoch": 0, "device": "cpu", "amp": False}


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return load_dataset("synthetic", preset="tiny", cache_dir=tmp_path_factory.mktemp("syn"))


def test_claus_round_end_to_end(tmp_path, ds):
    cfg = RunConfig(data="synthetic:tiny", strategy="claus", seed=0, init_percent=5,
                    step_percent=5, target_percent=10, passes=3, clusters=3,
                    videos_per_round=3, train=TRAIN)
    lines = run_rounds(tmp_path / "run", cfg, dataset=ds, progress=False)
    assert [x["round"] for x in lines] == [0, 1]
    assert lines[1]["labelled_boxes"] == budget_boxes(ds, 10)
    for x in lines:
        assert 0 <= x["metrics"]["f-mAP@0.5"] <= 100 and "v-mAP@0.5" in x["metrics"]
    sel = json.loads((tmp_path / "run" / "round_000" / "selection.json").read_text())
    assert sel["cost"] == sel["budget"] == budget_boxes(ds, 10) - budget_boxes(ds, 5)
    assert set(sel["clusters"]) == set(sel["frames"]) and len(sel["all_clusters"]) == len(
        ds.split_indices("train"))
    assert (tmp_path / "run" / "round_000" / "train" / "checkpoint.pt").exists()


def test_experiment_cli_table_and_errors(tmp_path, ds, capsys, monkeypatch):
    monkeypatch.setenv("CLAUS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "exp"
    rc = experiment_main(["--preset", "tiny", "--strategies", "random", "--seeds", "1",
                          "--no-full", "--init", "5", "--target", "5", "--epochs", "1",
                          "--min-clips-per-epoch", "0",
                          "--device", "cpu", "--out", str(out), "--quiet", "--no-pictures"])
    assert rc == 0
    text = (out / "results.md").read_text()
    assert "| random |" in text and "f-mAP@0.5 @5%" in text
    # --resume of a finished run recomputes nothing and prints its table.
    before = (out / "random" / "seed0" / "metrics.jsonl").read_text()
    assert experiment_main(["--resume", str(out / "random" / "seed0"), "--quiet"]) == 0
    assert (out / "random" / "seed0" / "metrics.jsonl").read_text() == before
    assert "| random |" in capsys.readouterr().out
    # Another seed in its own call (--first-seed); equidistant adopts random's round 0.
    rc = experiment_main(["--preset", "tiny", "--strategies", "random", "equidistant",
                          "--seeds", "1", "--first-seed", "1", "--no-full", "--init", "5",
                          "--target", "5", "--epochs", "1", "--min-clips-per-epoch", "0",
                          "--device", "cpu", "--out", str(out), "--quiet", "--no-pictures"])
    assert rc == 0
    eq = json.loads((out / "equidistant" / "seed1" / "round_000" / "round.json").read_text())
    assert eq["seed"] == 1 and eq["round0_from"] == str(out / "random" / "seed1")
    assert eq["metrics"] == json.loads(
        (out / "random" / "seed1" / "round_000" / "round.json").read_text())["metrics"]
    assert experiment_main(["--resume", str(tmp_path / "nothing")]) == 2
    assert experiment_main(["--strategies", "magic", "--out", str(out)]) == 2
    assert "unknown strategy 'magic'" in capsys.readouterr().err
