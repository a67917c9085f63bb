"""A run killed after any step and resumed ends with the very files of an uninterrupted run.

`run_rounds(..., stop_after="round<r>:<step>")` raises KeyboardInterrupt right after that step,
as a kill would. One run is killed after every step of every round in turn (train, eval,
score, select, label, commit; the last round has no score/select/label), each time resumed by
a fresh `run_rounds` call that stops at the next point, so every "step done, next step not"
state of the folder is resumed from exactly once. After each kill the folder must hold what an
uninterrupted run holds at that point (the `.partial` round's files equal the committed
round's); at the end every file must be the uninterrupted run's: every metrics line, every
round.json, selection, label state, score and checkpoint (wall times aside). A fast stand-in
trainer covers the steps of three rounds; the real trainer covers two rounds on
`synthetic:tiny` at minimal sizes.

The same real-trainer runs check `warm_start`: round r+1's training starts from round r's
model.pt with it, and from the fresh initialisation without it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch
from claus.data import load_dataset
from claus.io import atomic_torch_save
from claus.models import build_model
from claus.rounds import RunConfig, Trainer, run_rounds

from tests.rundiff import files, jsonl, same_file, same_tree, tree_diff

STEPS = ("train", "eval", "score", "select", "label", "commit")
LAST = ("train", "eval", "commit")  # the last round only trains and evaluates
#: What each step leaves in the round's folder, and the next step's file (still absent).
MADE = {"train": ("model.pt", "eval.json"), "eval": ("eval.json", "scores.pt"),
        "score": ("scores.pt", "selection.json"), "select": ("selection.json",
                                                             "next_labels.json"),
        "label": ("next_labels.json", "round.json")}


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return load_dataset("synthetic", preset="tiny", cache_dir=tmp_path_factory.mktemp("syn"))


class FakeTrainer:
    """Builds the tiny detector from a seed that depends on the labels (selections then depend
    on the labels), resumes from its own checkpoint; evaluation reports numbers that depend on
    the weights, so a resume that evaluates another model is seen."""

    def __init__(self):
        self.fits = 0

    def trainer(self) -> Trainer:
        def fit(opts, ds, labels, run_dir, model=None, centers=None, progress=True):
            ck = Path(run_dir) / "ckpt.pt"
            torch.manual_seed(1000 + labels.spent())
            m = build_model("tiny", ds.num_classes)
            if ck.exists():
                m.load_state_dict(torch.load(ck, weights_only=True))
            else:
                self.fits += 1
                atomic_torch_save(ck, m.state_dict())
            return m

        def evaluate(model, ds, opts, progress=True):
            total = sum(float(p.detach().double().abs().sum()) for p in model.parameters())
            return {"f-mAP@0.5": round(total % 100, 6), "v-mAP@0.5": 25.0}

        return Trainer(fit=fit, evaluate=evaluate,
                       geometry=lambda o: {"T": 8, "stride": 2, "size": None, "device": "cpu"})


def fake_cfg() -> RunConfig:
    # claus: every step and file (cluster-loss centres, pool scores, clusters) is exercised.
    return RunConfig(data="synthetic:tiny", strategy="claus", seed=3, init_percent=5,
                     step_percent=5, target_percent=15, passes=2, clusters=3, score_batch=32,
                     videos_per_round=3)


def kill_points(rounds: int) -> list[str]:
    return [f"round{r}:{s}" for r in range(rounds) for s in (LAST if r == rounds - 1 else STEPS)]


def check_killed_state(run: Path, ref: Path, point: str) -> None:
    """After a kill at `point`: the step's file is there, the next step's is not, and every
    file so far equals the uninterrupted run's (a `.partial` round's as the committed one's;
    metrics.jsonl its first lines)."""
    r, step = int(point[5:point.index(":")]), point.partition(":")[2]
    work = run / f"round_{r:03d}.partial"
    if step == "commit":
        assert (run / f"round_{r:03d}" / "round.json").is_file() and not work.exists(), point
    else:
        made, nxt = MADE[step]
        assert (work / made).is_file() and not (work / nxt).exists(), point
        assert not (run / f"round_{r:03d}").exists(), point
    if step == "train" and json.loads((run / "config.json").read_text())["strategy"] == "claus":
        assert (work / "centers.pt").is_file(), point
    ref_files = files(ref)
    for name, path in files(run).items():
        ref_name = name.replace(".partial", "")
        assert ref_name in ref_files, f"after the kill at {point}: {name} is not in the run"
        if name == "metrics.jsonl":
            lines = jsonl(path)
            assert lines == jsonl(ref_files[name])[:len(lines)], point
        else:
            assert same_file(path, ref_files[ref_name]), f"after the kill at {point}: {name}"


def resume_through_every_kill(run: Path, ref: Path, cfg: RunConfig, rounds: int,
                              **kw) -> None:
    """Kill the run after every step of every round in turn, each time resuming it; then let
    it finish. The killed folder is compared with `ref` after every kill and at the end."""
    for point in kill_points(rounds):
        with pytest.raises(KeyboardInterrupt, match="stopped after"):
            run_rounds(run, cfg, progress=False, stop_after=point, **kw)
        check_killed_state(run, ref, point)
    lines = run_rounds(run, cfg, progress=False, **kw)
    diff = tree_diff(run, ref)
    assert not diff, "\n".join(diff)
    assert lines == [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def check_reports(ref: Path, rounds: int) -> None:
    """Every round reports what it selected; the last selects nothing and says so."""
    lines = jsonl(ref / "metrics.jsonl")
    assert [x["round"] for x in lines] == list(range(rounds))
    for a, b in zip(lines, lines[1:], strict=False):
        sel = json.loads((ref / f"round_{a['round']:03d}" / "selection.json").read_text())
        assert a["selected_boxes"] == sel["cost"] == b["labelled_boxes"] - a["labelled_boxes"]
        assert a["selected_videos"] == len(sel["frames"]) > 0
    assert (lines[-1]["selected_videos"], lines[-1]["selected_boxes"]) == (0, 0)
    assert not (ref / f"round_{rounds - 1:03d}" / "selection.json").exists()
    assert all(x["metrics"] for x in lines)


def test_resume_after_a_kill_at_every_step_gives_the_uninterrupted_files(tmp_path, ds):
    ref = tmp_path / "ref"
    run_rounds(ref, fake_cfg(), trainer=FakeTrainer().trainer(), dataset=ds, progress=False)
    check_reports(ref, 3)
    fake = FakeTrainer()
    resume_through_every_kill(tmp_path / "killed", ref, fake_cfg(), 3,
                              trainer=fake.trainer(), dataset=ds)
    assert fake.fits == 3  # every round trained once: a resume reloads, never retrains


# --------------------------------------------------------------------- the real trainer
TRAIN = {"epochs": 1, "batch_size": 4, "min_clips_per_epoch": 0, "clips_per_video": 1, "T": 8,
         "device": "cpu", "amp": False}


def real_cfg(**kw) -> RunConfig:
    return RunConfig(data="synthetic:tiny", strategy="claus", seed=0, init_percent=5,
                     step_percent=5, target_percent=10, passes=2, clusters=3, score_batch=32,
                     videos_per_round=3, train=TRAIN, **kw)


@contextlib.contextmanager
def initial_weights():
    """The weights every `claus.training.fit` call starts training from, in call order (its
    optimizer is built from the model it trains: a warm start or its own fresh model)."""
    from claus import training

    inits: list[dict] = []
    groups = training._param_groups

    def spy(model, weight_decay):
        inits.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return groups(model, weight_decay)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "_param_groups", spy)
        yield inits


@pytest.fixture(scope="module")
def cold(tmp_path_factory, ds):
    """An uninterrupted two-round claus run with the real trainer, and its fits' initial
    weights."""
    run = tmp_path_factory.mktemp("real") / "cold"
    with initial_weights() as inits:
        run_rounds(run, real_cfg(), dataset=ds, progress=False)
    return run, inits


def model_pt(round_dir: Path) -> dict:
    return torch.load(round_dir / "model.pt", weights_only=True)["model"]


def test_real_trainer_resume_after_a_kill_at_every_step(tmp_path, ds, cold):
    ref, _ = cold
    check_reports(ref, 2)
    resume_through_every_kill(tmp_path / "killed", ref, real_cfg(), 2, dataset=ds)


def test_warm_start_trains_from_the_previous_round(tmp_path, ds, cold):
    ref, cold_inits = cold
    warm = tmp_path / "warm"
    with initial_weights() as inits:
        run_rounds(warm, real_cfg(warm_start=True), dataset=ds, progress=False)
    assert len(inits) == len(cold_inits) == 2  # one fit per round
    # Round 0 has no previous round: the fresh initialisation, the same model as without.
    assert same_tree(inits[0], cold_inits[0]), "warm start: round 0 did not start fresh"
    assert same_tree(model_pt(warm / "round_000"), model_pt(ref / "round_000"))
    # With warm_start, round 1 starts from round 0's trained weights ...
    trained = model_pt(warm / "round_000")
    assert not same_tree(trained, inits[0])  # training moved the weights
    assert same_tree(inits[1], trained), "warm start: round 1 did not start from round 0's"
    # ... without it, from the fresh initialisation again.
    assert same_tree(cold_inits[1], cold_inits[0]), "no warm start: round 1 did not start fresh"
