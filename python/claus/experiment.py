"""`python -m claus.experiment`: compare selection strategies over seeds; results.md + pictures.

Example::

    python -m claus.experiment --preset demo --strategies random equidistant entropy \
        uncertainty claus --seeds 3 --out runs/compare

Every (strategy, seed) run lives in OUT/<strategy>/seed<k>/ and resumes where it stopped when
the command is repeated (a folder from another configuration is refused). With `--oracle human`
a run stops after each selection until people's labels are imported (`claus.select`,
`claus.annotate`); the command then exits 0 and says what to run next.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .rounds import DEFAULT_FRAME_SCORE, ORACLES, AwaitingLabels, RunConfig, run_experiment
from .selection.scoring import FRAME_SCORES
from .selection.strategies import STRATEGIES

# Training options passed through to claus.training.TrainConfig when given.
TRAIN_FLAGS = {
    "model": str, "epochs": int, "batch_size": int, "lr": float, "loc_loss": str,
    "beta": float, "workers": int, "device": str, "size": int, "T": int, "stride": int,
    "min_clips_per_epoch": int,
}


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The flags shared by `claus.experiment` and `claus.train`'s active-learning mode."""
    p.add_argument("--dataset", default="synthetic", help="dataset name (default synthetic)")
    p.add_argument("--preset", default="demo", help="synthetic preset: tiny, demo, full")
    p.add_argument("--init", type=float, default=1.0, help="initial labelled %% of boxes")
    p.add_argument("--step", type=float, default=1.0, help="%% of boxes added per round")
    p.add_argument("--target", type=float, default=5.0, help="final labelled %% of boxes")
    p.add_argument("--videos-per-round", type=int, default=None,
                   help="V (default: each chosen video gets ~5%% of its frames)")
    p.add_argument("--passes", type=int, default=10, help="MC-dropout passes R (default 10)")
    p.add_argument("--frame-score", choices=list(FRAME_SCORES), default=DEFAULT_FRAME_SCORE,
                   help="frame score of uncertainty and claus: " + "; ".join(
                       f"{k}: {v}" for k, v in FRAME_SCORES.items())
                   + f" (default {DEFAULT_FRAME_SCORE})")
    p.add_argument("--clusters", type=int, default=5, help="K for claus (default 5)")
    p.add_argument("--cluster-cap", type=float, default=None,
                   help="largest share of labelled videos in one cluster (paper: 0.54)")
    p.add_argument("--warm-start", action="store_true", help="start rounds from the last weights")
    p.add_argument("--oracle", choices=list(ORACLES), default="simulated",
                   help="who labels the selections: " + "; ".join(
                       f"{k}: {v}" for k, v in ORACLES.items()))
    for name, typ in TRAIN_FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None,
                       help=f"training option {name} (claus.training.TrainConfig)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run_config(a: argparse.Namespace, strategy: str, seed: int) -> RunConfig:
    """A RunConfig from parsed flags (training options only when given)."""
    train = {k: getattr(a, k) for k in TRAIN_FLAGS if getattr(a, k) is not None}
    return RunConfig(dataset=a.dataset, preset=a.preset, strategy=strategy, seed=seed,
                     init_percent=a.init, step_percent=a.step, target_percent=a.target,
                     videos_per_round=a.videos_per_round, passes=a.passes,
                     frame_score=a.frame_score, clusters=a.clusters,
                     cluster_cap=a.cluster_cap, warm_start=a.warm_start, train=train,
                     oracle=a.oracle)


# The main job (`python -m claus.train` with no arguments): claus on the demo preset, 1% → 2%
# of the boxes (two trained rounds, one selection) with the default training of a round
# (`claus.training.TrainConfig`), sized for under 10 minutes on 2 idle CPU cores (README).
DEMO_ARGV = ["--preset", "demo", "--strategies", "claus", "--seeds", "1", "--no-full",
             "--target", "2", "--out", "runs/demo"]


def demo(extra: list[str] | None = None) -> int:
    """Run the demo active-learning experiment (the main job)."""
    return main(DEMO_ARGV + list(extra or []))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m claus.experiment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    p.add_argument("--strategies", nargs="+", default=["random", "claus"],
                   help="strategies to compare; choices: " + ", ".join(STRATEGIES))
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (0..n-1)")
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds run are FIRST..FIRST+n-1 (split an experiment over processes; "
                   "a later call over all seeds reuses their runs and writes the whole table)")
    p.add_argument("--no-full", action="store_true", help="skip the full-label upper bound")
    p.add_argument("--no-share-round0", action="store_true",
                   help="train round 0 in every run (default: once per seed, adopted by the "
                   "strategies that train it identically, i.e. all but claus)")
    p.add_argument("--out", default="runs/experiment", help="experiment folder")
    p.add_argument("--no-pictures", action="store_true", help="table only")
    p.add_argument("--resume", metavar="RUN", default=None,
                   help="continue one run folder (OUT/<strategy>/seed<k>) with its stored config")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from . import reports
    from .data import load_dataset

    if a.resume is not None:
        return _resume(a.resume, progress=not a.quiet)
    try:
        base = run_config(a, a.strategies[0], 0)
        ds = load_dataset(a.dataset, preset=a.preset)
        seeds = list(range(a.first_seed, a.first_seed + a.seeds))
        lines = run_experiment(a.out, base, a.strategies, seeds,
                               include_full=not a.no_full, dataset=ds, progress=not a.quiet,
                               share_round0=not a.no_share_round0)
        path, figs = reports.write_report(a.out, lines, dataset=ds, pictures=not a.no_pictures)
    except AwaitingLabels as wait:
        print(wait)
        return 0
    except (ValueError, ImportError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path.read_text())
    print(f"results: {path}")
    for f in figs:
        print(f"picture: {f}")
    return 0


def is_rounds_run(path: str) -> bool:
    """Whether `path` is an active-learning run folder (its config.json is a RunConfig)."""
    import json
    from pathlib import Path

    from .rounds import FORMAT

    conf = Path(path) / "config.json"
    try:
        return conf.is_file() and json.loads(conf.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def resume(run: str, progress: bool = True) -> int:
    """Continue one active-learning run folder with its stored configuration (exit code)."""
    return _resume(run, progress)


def _resume(run: str, progress: bool) -> int:
    import json
    from pathlib import Path

    from . import reports
    from .rounds import run_rounds

    conf = Path(run) / "config.json"
    try:
        if not conf.is_file():
            raise ValueError(f"{run} is not a run folder (no config.json)")
        cfg = RunConfig.from_json(json.loads(conf.read_text()))
        lines = run_rounds(run, cfg, resume=True, progress=progress)
    except AwaitingLabels as wait:
        print(wait)
        return 0
    except (ValueError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(reports.results_table(reports.aggregate(lines)))
    print(f"run folder: {run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
