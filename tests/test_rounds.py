"""The round state machine: budgets, resume after a kill, config refusal, atomic rounds.

A stand-in trainer keeps these tests fast: it builds the tiny detector from a seed that depends
on the labels (so selections depend on the labels, as with real training), writes a checkpoint
and counts its calls; evaluation reports the labelled share. The real trainer's end-to-end round
is tested in test_rounds_e2e.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from claus.data import budget_boxes, load_dataset
from claus.io import atomic_torch_save
from claus.models import build_model
from claus.rounds import RunConfig, RunMismatchError, Trainer, initial_labels, run_rounds


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return load_dataset("synthetic", preset="tiny",
                        cache_dir=tmp_path_factory.mktemp("synthetic"))


class FakeTrainer:
    def __init__(self):
        self.fits = 0
        self.evals = 0

    def trainer(self) -> Trainer:
        def fit(opts, ds, labels, run_dir, model=None, centers=None, progress=True):
            run_dir = Path(run_dir)
            ck = run_dir / "ckpt.pt"
            torch.manual_seed(1000 + labels.spent())
            m = build_model("tiny", ds.num_classes)
            if ck.exists():
                m.load_state_dict(torch.load(ck, weights_only=True))
            else:
                self.fits += 1
                atomic_torch_save(ck, m.state_dict())
            return m

        def evaluate(model, ds, opts, progress=True):
            self.evals += 1
            return {"f-mAP@0.5": 0.5, "v-mAP@0.5": 0.25}

        return Trainer(fit=fit, evaluate=evaluate,
                       geometry=lambda o: {"T": 8, "stride": 2, "size": None, "device": "cpu"})


def cfg(strategy="uncertainty", **kw):
    base = dict(data="synthetic:tiny", strategy=strategy, seed=3, init_percent=5,
                step_percent=5, target_percent=15, passes=2, score_batch=32,
                videos_per_round=3)
    base.update(kw)
    return RunConfig(**base)


def selections(run: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(run.glob("round_*/selection.json"))]


def test_rounds_budgets_and_folder(tmp_path, ds):
    fake = FakeTrainer()
    c = cfg()
    lines = run_rounds(tmp_path / "run", c, trainer=fake.trainer(), dataset=ds, progress=False)
    assert [x["percent"] for x in lines] == [5, 10, 15]
    for x in lines:
        assert x["labelled_boxes"] == budget_boxes(ds, x["percent"])
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json", "dataset.json", "metrics.jsonl", "round_000", "round_001",
        "round_002"]
    assert (run / "round_001" / "scores.pt").exists()
    assert not (run / "round_002" / "selection.json").exists()  # the last round only evaluates
    assert fake.fits == 3
    # A second call finds everything committed and recomputes nothing.
    run_rounds(run, c, trainer=fake.trainer(), dataset=ds, progress=False)
    assert fake.fits == 3


def test_initial_set_same_for_every_strategy(ds):
    a = initial_labels(ds, cfg("random"))
    b = initial_labels(ds, cfg("claus"))
    assert a == b and a.spent() == budget_boxes(ds, 5)
    assert initial_labels(ds, cfg("random", seed=4)) != a


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, ds):
    run = tmp_path_factory.mktemp("ref") / "run"
    run_rounds(run, cfg(), trainer=FakeTrainer().trainer(), dataset=ds, progress=False)
    return run


@pytest.mark.parametrize("step", ["train", "score", "label", "commit"])
def test_resume_after_kill_gives_identical_selections(tmp_path, ds, reference_run, step):
    fake = FakeTrainer()
    with pytest.raises(KeyboardInterrupt):
        run_rounds(tmp_path / "run", cfg(), trainer=fake.trainer(), dataset=ds, progress=False,
                   stop_after=f"round1:{step}")
    assert (tmp_path / "run" / "round_000").is_dir()
    if step != "commit":
        assert (tmp_path / "run" / "round_001.partial").is_dir()
        assert not (tmp_path / "run" / "round_001").exists()
    fits = fake.fits
    run_rounds(tmp_path / "run", cfg(), trainer=fake.trainer(), dataset=ds, progress=False)
    assert selections(tmp_path / "run") == selections(reference_run)
    # Round 0 and round 1's training were not redone.
    assert fake.fits == fits + 1  # only round 2 trains anew
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 3


def test_refuses_other_config(tmp_path, ds):
    fake = FakeTrainer()
    run_rounds(tmp_path / "run", cfg(target_percent=10), trainer=fake.trainer(), dataset=ds,
               progress=False)
    with pytest.raises(RunMismatchError, match=r"strategy: 'uncertainty' → 'random'"):
        run_rounds(tmp_path / "run", cfg("random", target_percent=10), trainer=fake.trainer(),
                   dataset=ds, progress=False)
    with pytest.raises(RunMismatchError, match=r"train.epochs: 28 → 3"):
        run_rounds(tmp_path / "run", cfg(target_percent=10, train={"epochs": 3}),
                   trainer=fake.trainer(), dataset=ds, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        run_rounds(tmp_path / "run", cfg(target_percent=10), trainer=fake.trainer(), dataset=ds,
                   progress=False, resume=False)


def test_bad_config():
    with pytest.raises(ValueError, match="unknown strategy 'smart'.*claus"):
        RunConfig(strategy="smart")
    with pytest.raises(ValueError, match="below the initial"):
        RunConfig(init_percent=5, target_percent=2)
    with pytest.raises(ValueError, match="<= 100"):
        RunConfig(target_percent=120)
    assert RunConfig().percents == [1, 2, 3, 4, 5]
    assert RunConfig(strategy="full").percents == [100.0]


def test_experiment_trains_round0_once_per_configuration(tmp_path, ds):
    from claus.rounds import _adopt_round0, run_experiment

    base = cfg(target_percent=10)
    shared = FakeTrainer()
    run_experiment(tmp_path / "shared", base, ["random", "uncertainty", "claus"], [3],
                   include_full=False, trainer=shared.trainer(), dataset=ds, progress=False)
    alone = FakeTrainer()
    run_experiment(tmp_path / "alone", base, ["random", "uncertainty", "claus"], [3],
                   include_full=False, trainer=alone.trainer(), dataset=ds, progress=False,
                   share_round0=False)
    # random trains round 0; uncertainty adopts it; claus (cluster loss) trains its own.
    assert (alone.fits, shared.fits) == (6, 5)
    r0 = tmp_path / "shared" / "uncertainty" / "seed3" / "round_000"
    assert (r0 / "model.pt").read_bytes() == (
        tmp_path / "shared" / "random" / "seed3" / "round_000" / "model.pt").read_bytes()
    assert json.loads((r0 / "round.json").read_text())["round0_from"].endswith("random/seed3")
    assert "round0_from" not in json.loads(
        (tmp_path / "shared" / "claus" / "seed3" / "round_000" / "round.json").read_text())
    for s in ("random", "uncertainty", "claus"):
        assert selections(tmp_path / "shared" / s / "seed3") == selections(
            tmp_path / "alone" / s / "seed3")
    # A donor with other labels or other training options is not adopted.
    work = tmp_path / "w"
    work.mkdir()
    initial_labels(ds, cfg(seed=4)).save(work / "labels.json")
    donor = tmp_path / "shared" / "random" / "seed3"
    assert _adopt_round0(donor, work, cfg("random").training()) is None
    initial_labels(ds, cfg()).save(work / "labels.json")
    assert _adopt_round0(donor, work, cfg("claus").training()) is None
    assert not (work / "model.pt").exists()
    assert _adopt_round0(donor, work, cfg("entropy").training()) == str(donor)
    assert (work / "model.pt").exists() and (work / "train").is_dir()


def test_round_line_is_one_aligned_line():
    """What a run logs per committed round: one line, fixed widths, one decimal, '–' where a
    metric was not measured (None or absent)."""
    from claus.rounds import round_line

    a = round_line({"round": 1, "percent": 2.0, "labelled_boxes": 1234, "total_boxes": 61700,
                    "metrics": {"f-mAP@0.5": 67.5061162070546, "v-mAP@0.5": 51.62488380767818,
                                "accuracy": 82.87292817679558}, "strategy": "claus", "seed": 0,
                    "wall_s": 312.4})
    assert a == ("claus seed 0 round  1:  2.00% labelled (1,234 of 61,700 boxes)  "
                 "f-mAP@0.5  67.5  v-mAP@0.5  51.6  accuracy  82.9     312 s")
    b = round_line({"round": 12, "percent": 10.0, "labelled_boxes": 6170, "total_boxes": 61700,
                    "metrics": {"f-mAP@0.5": 5.0, "v-mAP@0.5": None}, "strategy": "claus",
                    "seed": 0, "wall_s": 5})
    assert "\n" not in b and b.index("f-mAP") == a.index("f-mAP")
    assert "v-mAP@0.5     –  accuracy     –" in b
