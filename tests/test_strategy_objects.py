"""Strategies as objects: the registry, what the built-in strategies declare (what the string
comparisons of rounds, reports and config did), and user-defined strategies run end to end with
the stand-in trainer of tests/test_rounds.py (the README's example is `LongestFirst`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from claus import rounds
from claus.config import ExperimentSpec, RunConfig
from claus.data import LabelState
from claus.reports import order_strategies, upper_bounds
from claus.rounds import run_experiment, run_rounds
from claus.run_folder import RunFolder, experiment_run
from claus.selection import (
    STRATEGIES,
    Strategy,
    equidistant_frames,
    get_strategy,
    register_strategy,
    select_round,
)

import tests.test_rounds as tr

BUILTIN = ["random", "equidistant", "entropy", "uncertainty", "claus", "full"]


class LongestFirst(Strategy):
    """The README's example: longest unlabelled videos first, equally spaced frames (the
    default frame order)."""

    name = "longest"
    description = "longest unlabelled videos first, equally spaced frames"

    def rank_videos(self, pool, rng):
        return sorted(pool.candidates, key=lambda i: (-pool.num_frames[i], i))


class EntropyPeak(Strategy):
    """A scored user strategy: videos by their highest frame entropy of one deterministic
    pass (the pool is scored because it names a score)."""

    name = "entropy-peak"
    description = "videos by their highest frame entropy"
    score = "entropy"
    scoring = "deterministic"

    def rank_videos(self, pool, rng):
        peak = pool.scores.entropy.nan_to_num(-1.0).amax(1)
        return sorted(pool.candidates, key=lambda i: (-float(peak[i]), i))


@pytest.fixture
def user_strategies():
    """The user strategies registered for one test; the registry is restored after it."""
    before = dict(STRATEGIES)
    register_strategy(LongestFirst)
    register_strategy(EntropyPeak())
    yield
    STRATEGIES.clear()
    STRATEGIES.update(before)


def test_builtins_declare_what_the_names_used_to_decide():
    assert list(STRATEGIES)[:6] == BUILTIN
    assert {n: STRATEGIES[n].score for n in BUILTIN} == {
        "random": None, "equidistant": None, "entropy": "entropy",
        "uncertainty": "uncertainty", "claus": "uncertainty", "full": None}
    assert [n for n in BUILTIN if STRATEGIES[n].scoring == "deterministic"] == ["entropy"]
    assert [n for n in BUILTIN if STRATEGIES[n].clusters] == ["claus"]
    assert [n for n in BUILTIN if not STRATEGIES[n].selects] == ["full"]
    # Training extras: only claus trains with the cluster loss (its beta), as RunConfig says.
    for kw in ({}, {"beta": 0.5}, {"beta": 0.0}, {"train": {"epochs": 3}}):
        for n in BUILTIN:
            cfg = RunConfig(strategy=n, seed=7, **kw)
            assert get_strategy(n).training(cfg) == cfg.training(), (n, kw)
    assert get_strategy("claus").training(RunConfig(strategy="claus", beta=0.5)).beta == 0.5
    assert get_strategy("random").training(RunConfig(strategy="random", beta=0.5)).beta == 0.0


def test_run_config_asks_the_registered_strategy(user_strategies):
    """RunConfig decides by the strategy object, not by its name: a user strategy's training
    extras and its `selects` flag shape the run; the help lists what is registered when it
    is made."""

    class OneEpochFull(Strategy):
        name = "one-epoch-full"
        description = "every frame labelled, one epoch per round"
        selects = False

        def training(self, cfg):
            return cfg.train.replace(seed=int(cfg.seed), beta=0.0, epochs=1)

    register_strategy(OneEpochFull)
    cfg = RunConfig(strategy="one-epoch-full", seed=5, beta=0.5)
    assert cfg.training() == cfg.train.replace(seed=5, epochs=1)
    assert cfg.training().epochs == 1 and RunConfig(seed=5).training().epochs != 1
    assert cfg.percents == [100.0]
    assert RunConfig(strategy="longest", target_percent=3).percents == [1, 2, 3]
    from claus.train import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "one-epoch-full: every frame labelled, one epoch per round" in text
    assert "registered: random, equidistant, entropy, uncertainty, claus, full, longest" in text


def test_unknown_name_is_one_line_listing_the_registered(user_strategies, tmp_path, capsys):
    with pytest.raises(ValueError) as e:
        get_strategy("nope")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("unknown strategy 'nope'; choices: random: ")
    for n in [*BUILTIN, "longest", "entropy-peak"]:
        assert f"{n}: {STRATEGIES[n].description}" in msg
    with pytest.raises(ValueError, match="longest: longest unlabelled videos first"):
        RunConfig(strategy="nope")
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        ExperimentSpec(strategies=["random", "nope"])
    from claus.experiment import main

    assert main(["--strategies", "nope", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "longest: " in err
    assert not (tmp_path / "x").exists()


def test_register_refuses_bad_and_taken_names(user_strategies):
    for bad in ("", "a b", "../up", ".hidden", None):
        with pytest.raises(ValueError, match="strategy name"):
            register_strategy(type("Bad", (Strategy,), {"name": bad}))
    with pytest.raises(ValueError, match="'claus' is taken by Claus"):
        register_strategy(type("Mine", (Strategy,), {"name": "claus"}))
    with pytest.raises(TypeError, match="not a claus.selection.Strategy"):
        register_strategy(object())
    assert register_strategy(LongestFirst) is LongestFirst  # the same class again: kept
    assert list(STRATEGIES) == [*BUILTIN, "longest", "entropy-peak"]
    assert type(STRATEGIES["claus"]).__name__ == "Claus"


def test_reports_order_registered_strategies_then_others(user_strategies):
    names = {"zeta", "longest", "claus", "random", "full", "entropy-peak"}
    assert order_strategies(names) == ["random", "claus", "longest", "entropy-peak", "zeta"]
    assert upper_bounds(names) == ["full"] and upper_bounds({"zeta"}) == []


def _train_videos(ds):
    idx = ds.split_indices("train")
    return [ds[i].name for i in idx], [ds[i].num_frames for i in idx]


def test_a_user_strategy_runs_rounds_end_to_end(user_strategies, tmp_path, ds):
    fake = tr.FakeTrainer()
    cfg = tr.cfg("longest", budget_unit="frames")  # every frame costs 1: quotas are counts
    run = RunFolder(tmp_path / "run")
    lines = run_rounds(run.path, cfg, trainer=fake.trainer(), dataset=ds, progress=False)
    assert [(x["round"], x["strategy"]) for x in lines] == [(0, "longest"), (1, "longest"),
                                                            (2, "longest")]
    names, lengths = _train_videos(ds)
    for r in (0, 1):
        done = run.round(r)
        assert not done.scores.exists()  # the strategy scores nothing: no pool scoring
        sel = json.loads(done.selection.read_text())
        assert "all_clusters" not in sel and sel["cost"] == sel["budget"] > 0
        labels = LabelState.load(done.labels, ds)
        free = [j for j, n in enumerate(names) if not labels.frames(n)]
        longest = sorted(free, key=lambda j: (-lengths[j], j))[:3]
        assert list(sel["frames"]) == [names[j] for j in longest]
        # The first video's quota is budget // 3 frames: the start of the equidistant order.
        first = longest[0]
        got = sel["frames"][names[first]]
        per_video = max(1, round(sel["budget"] / 3))
        k = min(len(got), per_video)
        assert got[:k] == equidistant_frames(lengths[first], set(labels.frames(names[first])),
                                             per_video)[:k]
    # A resume finds every round committed and recomputes nothing.
    fits = fake.fits
    assert run_rounds(run.path, cfg, trainer=fake.trainer(), dataset=ds,
                      progress=False) == lines
    assert fake.fits == fits


def test_a_scored_user_strategy_gets_its_pool_scores(user_strategies, tmp_path, ds):
    run = RunFolder(tmp_path / "run")
    run_rounds(run.path, tr.cfg("entropy-peak", target_percent=10),
               trainer=tr.FakeTrainer().trainer(), dataset=ds, progress=False)
    state = torch.load(run.round(0).scores, weights_only=True)
    assert state["mode"] == "deterministic"  # the strategy's scoring
    peak = state["entropy"].nan_to_num(-1.0).amax(1)
    names, _ = _train_videos(ds)
    labels = LabelState.load(run.round(0).labels, ds)
    free = [j for j, n in enumerate(names) if not labels.frames(n)]
    best = sorted(free, key=lambda j: (-float(peak[j]), j))[:3]
    sel = json.loads(run.round(0).selection.read_text())
    assert list(sel["frames"]) == [names[j] for j in best]


def test_select_round_takes_a_strategy_object_as_its_name():
    pool = dict(names=[f"v{i}" for i in range(6)], num_frames=[10, 40, 20, 40, 5, 30],
                frame_costs=[np.ones(n, np.int64) for n in (10, 40, 20, 40, 5, 30)],
                labelled=[[], [], [], [0], [], []])
    sel = select_round(LongestFirst(), budget=9, videos_per_round=3,
                       rng=np.random.default_rng(0), **pool)
    assert list(sel.frames) == ["v1", "v5", "v2"]  # v3 is partly labelled: not a candidate
    assert sel.frames["v1"] == equidistant_frames(40, set(), 3) and sel.cost == 9
    with pytest.raises(ValueError, match="'full' labels everything at once"):
        select_round("full", budget=9, rng=np.random.default_rng(0), **pool)
    with pytest.raises(ValueError, match="'entropy-peak' needs pool scores"):
        select_round(EntropyPeak(), budget=9, rng=np.random.default_rng(0), **pool)


def test_the_command_line_accepts_a_registered_strategy(user_strategies, tmp_path, cache, ds,
                                                        monkeypatch):
    from claus.train import main

    monkeypatch.setenv("CLAUS_CACHE", str(cache))
    monkeypatch.setattr(rounds, "default_trainer", lambda: tr.FakeTrainer().trainer())
    out = tmp_path / "exp"
    assert main(["--preset", "tiny", "--strategy", "longest", "--init", "5", "--step", "5",
                 "--target", "10", "--videos-per-round", "3", "--passes", "2", "--out",
                 str(out), "--quiet", "--no-pictures"]) == 0
    lines = RunFolder(experiment_run(out, "longest", 0)).summaries()
    assert [(x["round"], x["strategy"]) for x in lines] == [(0, "longest"), (1, "longest")]
    assert "| longest |" in (out / "results.md").read_text()


def test_run_experiment_runs_a_user_strategy_beside_the_builtins(user_strategies, tmp_path, ds):
    fake = tr.FakeTrainer()
    run_experiment(tmp_path, tr.cfg(target_percent=10), ["longest", "random"], [3],
                   include_full=False, trainer=fake.trainer(), dataset=ds, progress=False)
    # Same training, same initial labels: random adopts longest's round 0.
    assert fake.fits == 3
    summary = json.loads(RunFolder(experiment_run(tmp_path, "random", 3)).round(0)
                         .summary.read_text())
    assert summary["round0_from"] == str(experiment_run(tmp_path, "longest", 3))
