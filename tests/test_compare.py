"""The paired comparison (`claus.compare`): intervals and per-seed differences on hand-computed
cases, pairing rules, and experiments exported into small files, re-tabulated and extended.

The numbers written below were computed by hand (the t quantiles from a printed table:
t_{0.975,1} = 12.706, t_{0.975,2} = 4.303), not by the code under test.
"""

from __future__ import annotations

import itertools
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from claus import experiment
from claus.compare import (
    bootstrap_interval,
    compare,
    export_experiment,
    index_lines,
    paired_stats,
    paired_table,
    read_export,
    report_tables,
    t_interval,
    tabulate,
)
from claus.io import atomic_torch_save
from claus.models import build_model
from claus.reports import write_report
from claus.rounds import RunConfig, Trainer, load_metrics, run_experiment

F, V = "f-mAP@0.5", "v-mAP@0.5"


def line(strategy, percent, seed, f=None, v=None, **extra):
    return {"strategy": strategy, "percent": percent, "seed": seed, "round": 0,
            "metrics": {F: f, V: v}, "wall_s": 1.0, **extra}


# ---------------------------------------------------------------------------- intervals
def test_t_interval_by_hand():
    # diffs 2, 4, 9: mean 5; sd = sqrt((9 + 1 + 16) / 2) = sqrt(13) = 3.6056; se = sd / sqrt(3)
    # = 2.0817; half width 4.3027 · 2.0817 = 8.9567 → [-3.957, 13.957].
    lo, hi = t_interval([2.0, 4.0, 9.0])
    assert lo == pytest.approx(-3.9567, abs=2e-4) and hi == pytest.approx(13.9567, abs=2e-4)
    # diffs 1, 3: mean 2, sd sqrt(2), se 1, t_{0.975,1} = 12.7062 → [-10.706, 14.706].
    assert t_interval([1.0, 3.0]) == pytest.approx((-10.7062, 14.7062), abs=2e-4)
    # 90%: t_{0.95,2} = 2.9200 → 5 ± 6.0784.
    assert t_interval([2.0, 4.0, 9.0], 0.90) == pytest.approx((-1.0784, 11.0784), abs=2e-4)
    assert t_interval([5.0]) is None and t_interval([]) is None  # no spread from one seed
    assert t_interval([3.0, 3.0, 3.0]) == (3.0, 3.0)  # no spread: no width


def test_bootstrap_interval_by_hand_and_seeded():
    # n = 3: a resample of one seed three times has probability 1/27 = 3.7% > 2.5%, so both
    # 2.5% and 97.5% quantiles of the resampled means are the extreme atoms: [min, max].
    assert bootstrap_interval([2.0, 4.0, 9.0]) == (2.0, 9.0)
    d = [1.0, 2.0, 3.0, 4.0, 10.0]
    a = bootstrap_interval(d, seed=7)
    assert a == bootstrap_interval(d, seed=7)  # the same seed: the same interval
    assert bootstrap_interval(d, seed=0) != bootstrap_interval(d, seed=1, resamples=500)
    # The exact bootstrap distribution of the mean of n = 5 (all 5^5 equally likely
    # resamples, enumerated): the seeded estimate lands within an atom (0.2) of its quantiles.
    means = np.sort([np.mean(c) for c in itertools.product(d, repeat=5)])
    exact = (means[int(0.025 * len(means))], means[int(0.975 * len(means))])
    est = bootstrap_interval(d, resamples=50_000)
    assert est == pytest.approx(exact, abs=0.21)
    assert bootstrap_interval([4.0]) is None


# ---------------------------------------------------------------------------- pairing
LINES = [
    # round 0 (1%) is shared: the same model, so every difference is 0.
    *[line(s, 1.0, k, f=10.0 + k, v=5.0) for s in ("random", "claus") for k in (0, 1, 2)],
    line("random", 2, 0, f=10.0, v=5.0),
    line("random", 2.0, 1, f=20.0, v=None),  # no v-mAP for seed 1: undefined, not 0
    line("random", 2.0, 2, f=30.0, v=7.0),
    line("random", 2.0, 3, f=40.0, v=9.0),  # claus has no seed 3: unpaired
    line("claus", 2.0, 0, f=12.0, v=6.0),
    line("claus", 2.0, 1, f=24.0, v=8.0),
    line("claus", 2.0, 2, f=39.0, v=10.0),
    line("entropy", 2.0, 3, f=41.0, v=None),  # shares seed 3 with random only
    line("full", 100.0, 0, f=80.0, v=60.0),
]


def test_paired_differences_by_hand_unpaired_seeds_excluded():
    by = {(s.a, s.b, s.percent, s.metric): s for s in compare(LINES)}
    f = by[("random", "claus", 2.0, F)]
    assert (f.seeds, f.diffs, f.mean) == ((0, 1, 2), (2.0, 4.0, 9.0), 5.0)  # seed 3 dropped
    assert f.ci == pytest.approx((-3.9567, 13.9567), abs=2e-4)
    v = by[("random", "claus", 2.0, V)]
    assert (v.seeds, v.diffs, v.mean) == ((0, 2), (1.0, 3.0), 2.0)  # seed 1 has no v-mAP
    assert v.ci == pytest.approx((-10.7062, 14.7062), abs=2e-4)
    z = by[("random", "claus", 1.0, F)]
    assert (z.diffs, z.ci) == ((0.0, 0.0, 0.0), (0.0, 0.0))
    e = by[("random", "entropy", 2.0, F)]
    assert (e.seeds, e.diffs, e.ci) == ((3,), (1.0,), None)
    assert ("random", "entropy", 2.0, V) not in by  # no seed with both v-mAPs
    assert not [k for k in by if k[:2] == ("entropy", "claus") or "full" in k]
    # Row order: pairs (A before B in the paper's order), budgets ascending, metrics.
    assert [(s.a, s.b, s.percent, s.metric) for s in compare(LINES)][:3] == [
        ("random", "entropy", 2.0, F), ("random", "claus", 1.0, F), ("random", "claus", 1.0, V)]


def test_bootstrap_method_in_pairs_and_header():
    idx = index_lines(LINES)
    st = paired_stats(idx, "random", "claus", 2.0, F, method="bootstrap")
    assert st.ci == (2.0, 9.0) and st.method == "bootstrap"
    table = paired_table(compare(LINES, method="bootstrap"))
    assert "95% CI, paired bootstrap, 10000 resamples, seed 0" in table.splitlines()[0]
    with pytest.raises(ValueError, match="^--ci: unknown method 'z'"):
        paired_stats(idx, "random", "claus", 2.0, F, method="z")


def test_paired_table_rows_by_hand():
    rows = paired_table(compare(LINES)).splitlines()
    assert rows[0] == ("| pair | budget | seeds | Δ f-mAP@0.5 (95% CI, paired t) | "
                       "Δ v-mAP@0.5 (95% CI, paired t) | Δ f-mAP@0.5 per seed | "
                       "Δ v-mAP@0.5 per seed |")
    assert rows[2:] == [
        "| entropy − random | 2% | 1 | +1.0 (no CI) | – | 3: +1.0 | – |",
        "| claus − random | 1% | 3 | +0.0 [+0.0, +0.0] | +0.0 [+0.0, +0.0] | "
        "0: +0.0, 1: +0.0, 2: +0.0 | 0: +0.0, 1: +0.0, 2: +0.0 |",
        "| claus − random | 2% | 3 | +5.0 [-4.0, +14.0] | +2.0 [-10.7, +14.7] (n=2) | "
        "0: +2.0, 1: +4.0, 2: +9.0 | 0: +1.0, 2: +3.0 |",
    ]
    assert paired_table([]).startswith("(No budget with a seed")


def test_duplicate_lines_refused():
    with pytest.raises(ValueError, match=r"^metrics: two lines for claus seed 0 at 2%; "):
        compare(LINES + [line("claus", 2.0, 0, f=1.0, v=1.0)])


def test_report_puts_paired_table_under_the_means(tmp_path):
    path, _ = write_report(tmp_path, LINES, pictures=False)
    text = path.read_text()
    assert report_tables(LINES) in text
    assert text.index("| strategy |") < text.index("## Paired differences") < text.index(
        "| claus − random | 2% | 3 | +5.0 [-4.0, +14.0]")


def test_paired_picture(tmp_path):
    pytest.importorskip("matplotlib")
    from claus.compare import plot_paired_differences

    p = plot_paired_differences(compare(LINES), tmp_path / "d.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------- real runs, exports
class LabelTrainer:
    """Fast stand-in trainer: the model is seeded by the labelled frames (so strategies that
    label other frames get other models), evaluation reads numbers off its weights."""

    def trainer(self) -> Trainer:
        def fit(opts, ds, labels, run_dir, model=None, centers=None, progress=True):
            ck = Path(run_dir) / "ckpt.pt"
            key = json.dumps([[v, labels.frames(v)] for v in labels.videos])
            torch.manual_seed(zlib.crc32(key.encode()))
            m = build_model("tiny", ds.num_classes)
            if ck.exists():
                m.load_state_dict(torch.load(ck, weights_only=True))
            else:
                atomic_torch_save(ck, m.state_dict())
            return m

        def evaluate(model, ds, opts, progress=True):
            w = float(next(model.parameters()).detach().abs().sum())
            return {F: round(w * 1000 % 100, 3), V: round(w * 7000 % 100, 3)}

        return Trainer(fit=fit, evaluate=evaluate,
                       geometry=lambda o: {"T": 8, "stride": 2, "size": None, "device": "cpu"})


def base_cfg(**kw) -> RunConfig:
    return RunConfig(**{**dict(data="synthetic:tiny", strategy="random", seed=0, init_percent=5,
                               step_percent=5, target_percent=10, videos_per_round=3), **kw})


def run(out: Path, ds, seeds, **kw) -> list[dict]:
    return run_experiment(out, base_cfg(**kw), ["random", "equidistant"], seeds,
                          include_full=True, trainer=LabelTrainer().trainer(), dataset=ds,
                          progress=False)


@pytest.fixture(scope="module")
def live(tmp_path_factory, ds):
    out = tmp_path_factory.mktemp("live") / "cmp"
    return out, run(out, ds, [0, 1])


def test_export_retabulates_the_live_table(tmp_path, live):
    out, lines = live
    live_md, _ = write_report(out, lines, pictures=False)
    dest = tmp_path / "experiments" / "cmp"
    summary = export_experiment(out, dest, pictures=False)
    assert sorted(summary.added) == [(s, k) for s in ("equidistant", "full", "random")
                                     for k in (0, 1)]
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["experiment.json", "metrics/equidistant/seed0.jsonl",
                     "metrics/equidistant/seed1.jsonl", "metrics/full/seed0.jsonl",
                     "metrics/full/seed1.jsonl", "metrics/random/seed0.jsonl",
                     "metrics/random/seed1.jsonl", "results.md"]  # no weights, no scores
    spec = json.loads((dest / "experiment.json").read_text())
    assert spec["strategies"] == ["random", "equidistant", "full"]
    assert "strategy" not in spec["run"] and spec["run"]["target_percent"] == 10
    # Each run's lines as it wrote them, the round-0 donor named inside the experiment.
    eq0 = [json.loads(x) for x in (dest / "metrics/equidistant/seed0.jsonl").read_text()
           .splitlines()]
    ref = load_metrics(out / "equidistant" / "seed0")
    assert ref[0]["round0_from"] == str(out / "random" / "seed0")
    assert eq0 == [{**ref[0], "round0_from": "random/seed0"}] + ref[1:]
    tables = report_tables(lines)
    assert "| equidistant − random | 10% | 2 |" in tables
    assert tables in live_md.read_text() and tables in (dest / "results.md").read_text()
    _, exported = read_export(dest)
    assert report_tables(exported) == tables
    # Again: nothing new, nothing written but the same results.md.
    again = export_experiment(out, dest, pictures=False)
    assert again.added == [] and again.updated == [] and len(again.unchanged) == 6


def test_extend_with_a_new_seed_and_refuse_mixed_configs(tmp_path, live, ds, capsys):
    out, lines = live
    dest = tmp_path / "exp"
    export_experiment(out, dest, pictures=False)
    day2 = tmp_path / "day2"
    more = run(day2, ds, [2])
    rc = experiment.main(["--export", str(dest), "--out", str(day2), "--no-pictures"])
    assert rc == 0
    assert (f"{dest}: added equidistant seed 2, full seed 2, random seed 2; updated none; "
            "unchanged 0\n") in capsys.readouterr().out
    tables = report_tables(lines + more)
    assert tables in (dest / "results.md").read_text()
    assert "| equidistant − random | 10% | 3 |" in tables
    assert experiment.main(["--tabulate", str(dest), "--no-pictures"]) == 0
    assert tables in capsys.readouterr().out
    # A seed of another configuration is refused: one line naming its config and the field.
    other = tmp_path / "other"
    run(other, ds, [3], target_percent=15)
    before = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    rc = experiment.main(["--export", str(dest), "--out", str(other)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {other / 'equidistant' / 'seed3' / 'config.json'}: differs "
                          f"from {dest / 'experiment.json'} in target_percent: 10.0 → 15.0; ")
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == before


def test_mixed_configs_in_one_folder_refused(tmp_path, ds):
    out = tmp_path / "mixed"
    run(out, ds, [0])
    run_experiment(out, base_cfg(train={"epochs": 3}), ["random"], [1], include_full=False,
                   trainer=LabelTrainer().trainer(), dataset=ds, progress=False)
    with pytest.raises(ValueError) as e:
        export_experiment(out, tmp_path / "x", pictures=False)
    assert str(e.value).startswith(
        f"{out / 'random' / 'seed1' / 'config.json'}: differs from "
        f"{out / 'equidistant' / 'seed0' / 'config.json'} in train.epochs: ")
    assert not (tmp_path / "x").exists()


def test_partial_run_updates_and_changed_results_refused(tmp_path, live):
    out, _ = live
    dest = tmp_path / "exp"
    export_experiment(out, dest, pictures=False)
    path = dest / "metrics" / "random" / "seed0.jsonl"
    full = path.read_text()
    path.write_text(full.splitlines(keepends=True)[0])  # as if exported after round 0
    assert export_experiment(out, dest, pictures=False).updated == [("random", 0)]
    assert path.read_text() == full
    path.write_text(full.replace('"round": 1', '"round": 1, "x": 1'))
    with pytest.raises(ValueError, match=rf"^{path}: round 1 differs from "):
        export_experiment(out, dest, pictures=False)


def test_one_line_errors(tmp_path, live, capsys):
    out, _ = live
    dest = tmp_path / "exp"
    export_experiment(out, dest, pictures=False)
    bad = dest / "metrics" / "random" / "seed0.jsonl"
    cases = {
        "missing": (["--tabulate", str(tmp_path / "nope")], "no experiment.json; "),
        "flags": (["--tabulate", str(dest), "--epochs", "3"], "--epochs: --tabulate reads "),
        "both": (["--tabulate", str(dest), "--export", str(dest)], "--export --tabulate: "),
        "no runs": (["--export", str(dest), "--out", str(tmp_path / "empty")],
                    "no such experiment folder"),
    }
    (tmp_path / "empty").mkdir()
    cases["no runs"] = (cases["no runs"][0], "no runs (OUT/<strategy>/seed<k>/config.json)")
    for name, (argv, want) in cases.items():
        assert experiment.main(argv) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and want in err and err.count("\n") == 1, (name, err)
    bad.write_text(bad.read_text().replace('"seed": 0', '"seed": 5', 1))
    assert experiment.main(["--tabulate", str(dest)]) == 2
    assert capsys.readouterr().err == (f"error: {bad}:1: not a metrics line of random seed 0 "
                                       "(strategy, seed, percent, metrics); restore the file "
                                       "from git\n")
    bad.unlink()
    (dest / "metrics" / "random" / "notes.jsonl").write_text("")
    with pytest.raises(ValueError, match="notes.jsonl: not a run of this export"):
        read_export(dest)


def test_tabulate_without_matplotlib_says_so(tmp_path, live, monkeypatch):
    import sys

    out, _ = live
    dest = tmp_path / "exp"
    export_experiment(out, dest, pictures=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    path, figs = tabulate(dest)
    assert figs == [] and "(No pictures: pictures need matplotlib" in path.read_text()


# ---------------------------------------------------------------------------- committed exports
COMMITTED = sorted(p.parent for p in (Path(__file__).resolve().parents[1] / "experiments")
                   .glob("*/experiment.json"))


@pytest.mark.parametrize("folder", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_export_tables_match_its_metrics(folder):
    # Anyone can check the numbers: a committed results.md holds the tables its files give.
    _, lines = read_export(folder)
    assert report_tables(lines) in (folder / "results.md").read_text(encoding="utf-8")
