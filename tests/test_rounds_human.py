"""Interactive runs (`RunConfig.oracle = "human"`): the rounds stop after each selection until
labels arrive in the round's next_labels.json, recompute nothing while waiting, and go on.

Labels "arrive" here as the simulated oracle's output written where an import writes it, so a
human run must then select exactly what a simulated run selects. Imports themselves are tested
in test_annotation.py.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from claus.data import LabelState, load_dataset
from claus.models import build_model
from claus.rounds import (
    AwaitingLabels,
    RunConfig,
    RunMismatchError,
    Trainer,
    run_rounds,
    simulated_oracle,
)
from claus.selection.strategies import Selection


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return load_dataset("synthetic", preset="tiny", cache_dir=tmp_path_factory.mktemp("syn"))


class CountingTrainer:
    def __init__(self):
        self.fits = self.evals = 0

    def trainer(self) -> Trainer:
        def fit(opts, ds, labels, run_dir, model=None, centers=None, progress=True):
            self.fits += 1
            torch.manual_seed(1000 + labels.spent())
            return build_model("tiny", ds.num_classes)

        def evaluate(model, ds, opts, progress=True):
            self.evals += 1
            return {"f-mAP@0.5": 0.5}

        return Trainer(fit=fit, evaluate=evaluate,
                       geometry=lambda o: {"T": 8, "stride": 2, "size": None, "device": "cpu"})


def cfg(**kw) -> RunConfig:
    base = dict(data="synthetic:tiny", strategy="uncertainty", seed=3,
                init_percent=5, step_percent=5, target_percent=15, passes=2, score_batch=32,
                videos_per_round=3, oracle="human")
    base.update(kw)
    return RunConfig(**base)


def _label_like_the_simulation(run, r, ds) -> None:
    work = run / f"round_{r:03d}.partial"
    labels = LabelState.load(work / "labels.json", ds)
    sel = Selection.from_json(json.loads((work / "selection.json").read_text()))
    simulated_oracle(ds, labels, sel, r + 1).save(work / "next_labels.json")


def test_human_run_waits_then_matches_the_simulation(tmp_path, ds):
    t = CountingTrainer()
    run = tmp_path / "human"
    for r in (0, 1):
        with pytest.raises(AwaitingLabels, match=rf"round {r} of .* waits for human labels") as w:
            run_rounds(run, cfg(), trainer=t.trainer(), dataset=ds, progress=False)
        assert w.value.round == r and w.value.folder == run / f"round_{r:03d}.partial"
        assert not (w.value.folder / "next_labels.json").exists()
        fits, evals = t.fits, t.evals
        # Without labels a resume stops again at once: no training, evaluation or scoring.
        with pytest.raises(AwaitingLabels):
            run_rounds(run, cfg(), trainer=t.trainer(), dataset=ds, progress=False)
        assert (t.fits, t.evals) == (fits, evals)
        _label_like_the_simulation(run, r, ds)
    lines = run_rounds(run, cfg(), trainer=t.trainer(), dataset=ds, progress=False)
    assert [x["round"] for x in lines] == [0, 1, 2]
    assert t.fits == 3  # a round committed after its labels arrived is not trained again
    sim = run_rounds(tmp_path / "sim", cfg(oracle="simulated"), trainer=t.trainer(),
                     dataset=ds, progress=False)
    assert [x["labelled_boxes"] for x in lines] == [x["labelled_boxes"] for x in sim]
    for r in (0, 1):
        a, b = (json.loads((p / f"round_{r:03d}" / "selection.json").read_text())
                for p in (run, tmp_path / "sim"))
        assert a == b


def test_config_without_oracle_resumes_and_bad_oracle(tmp_path, ds):
    run = tmp_path / "run"
    c = cfg(oracle="simulated", target_percent=5)
    run_rounds(run, c, trainer=CountingTrainer().trainer(), dataset=ds, progress=False)
    conf = json.loads((run / "config.json").read_text())
    del conf["oracle"]  # written before the field existed
    (run / "config.json").write_text(json.dumps(conf))
    assert run_rounds(run, c, trainer=CountingTrainer().trainer(), dataset=ds, progress=False)
    # A run written before frame_score existed scored frames by the mean: it resumes as such,
    # whatever the current default, and refuses another frame score.
    del conf["frame_score"]
    (run / "config.json").write_text(json.dumps(conf))
    assert run_rounds(run, dataclasses.replace(c, frame_score="mean"),
                      trainer=CountingTrainer().trainer(), dataset=ds, progress=False)
    with pytest.raises(RunMismatchError, match="frame_score: 'mean' → 'mass'"):
        run_rounds(run, dataclasses.replace(c, frame_score="mass"),
                   trainer=CountingTrainer().trainer(), dataset=ds, progress=False)
    assert RunConfig.from_json(conf).frame_score == "mean"
    with pytest.raises(ValueError, match="unknown --frame-score 'sum'"):
        cfg(frame_score="sum")
    with pytest.raises(ValueError, match="unknown oracle 'crowd'; choices: simulated"):
        cfg(oracle="crowd")
