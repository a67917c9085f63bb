"""`python -m claus.train`: the main job, active-learning runs, and supervised training.

    python -m claus.train                                              # the main job (demo)
    python -m claus.train --strategy claus --target 5                  # an active-learning run
    python -m claus.train --dataset ucf101-24 --root data/ucf101-24 --strategy claus --init 1 \\
        --target 5 --model i3d --weights rgb_imagenet.pt              # ... on real data
    python -m claus.train --strategy claus --oracle human --out runs/h # people label the rounds
    python -m claus.train --resume runs/h/claus/seed0                  # ... after claus.annotate
    python -m claus.train --dataset synthetic --labels full            # supervised: every label
    python -m claus.train --dataset synthetic:tiny --budget 5 --epochs 2
    python -m claus.train --config run.yaml --lr 1e-3 --run runs/a     # file, then flags
    python -m claus.train --resume runs/a --root /new/place/of/data    # continue, data moved
    torchrun --nproc-per-node 2 -m claus.train ...                     # DDP

Two kinds of run, told apart by --strategy (a flag or a config-file field): with it, an
active-learning run (the rounds of `claus.rounds`, as `claus.experiment` runs them, without
the full-label run unless --full); without it, one supervised training run on a label state
(`claus.supervised`). Flags may come in any order. Precedence: defaults < the dataset's
training defaults (`claus.data.TRAIN_DEFAULTS`) < --config file < flags.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from . import config as C
from .cli import Parser, run_command
from .data import DATASETS
from .experiment import (
    add_run_options,
    check_runtime,
    demo,
    file_and_flags,
    refuse_flags_on_resume,
    resume,
    run_experiment_values,
)
from .selection import STRATEGIES
from .training import TrainConfig

ALL_GROUPS = ("data", "active learning", "experiment", "labels (supervised runs)", "training")
_TITLES = {
    "active learning": "active learning (with --strategy): strategies, budgets in %% of the "
    "training boxes, rounds, scoring, oracle",
    "experiment": "active learning: which runs (strategies x seeds) and where",
    "labels (supervised runs)": "supervised runs (without --strategy): which labels to train on",
}


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m claus.train",
        description=__doc__,
        epilog="Datasets: " + "; ".join(f"{k}: {v}" for k, v in DATASETS.items())
        + ". Strategies: " + "; ".join(f"{k}: {v.description}" for k, v in STRATEGIES.items())
        + ". Budgets (--init, --step, --target) are percentages of the training split's "
        "ground-truth boxes; every round trains, evaluates on the test split, scores the pool "
        "and has the selected frames labelled by the oracle (simulated: the ground truth; "
        "human: people, through claus.select and claus.annotate). A supervised run writes "
        "RUN/config.yaml, checkpoint.pt, metrics.jsonl, results.json and pictures; an "
        "active-learning run OUT/<strategy>/seed<k>/ with one folder per round.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    C.add_arguments(p, ALL_GROUPS, _TITLES)
    add_run_options(p)
    p.add_argument("--run", default=None, help="supervised: the run folder "
                   "(default runs/train-<time>)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # the main job: the demo active-learning experiment
        return demo()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command(lambda: _dispatch(args))


def _dispatch(args: argparse.Namespace) -> int:
    from .rounds import is_rounds_run

    if args.resume and is_rounds_run(args.resume):
        refuse_flags_on_resume(args, ALL_GROUPS)
        return resume(args.resume, progress=not args.quiet, args=args)
    values = file_and_flags(args, ALL_GROUPS)
    if "strategies" in values and not args.resume:
        wrong = _given_of(values, "labels (supervised runs)") + ([] if args.run is None
                                                                 else ["--run"])
        if wrong:
            raise ValueError(f"{', '.join(wrong)}: options of a supervised run; an "
                             "active-learning run (--strategy) takes --out and budgets "
                             "(--init, --step, --target)")
        values.setdefault("full", False)
        return run_experiment_values(values, progress=not args.quiet,
                                     pictures=not args.no_pictures)
    wrong = _given_of(values, "active learning", "experiment")
    if wrong:
        raise ValueError(f"{', '.join(wrong)}: active-learning options; add --strategy NAME "
                         "to run active learning, or drop them for a supervised run")
    return _supervised(args, values)


def _given_of(values: dict, *groups: str) -> list[str]:
    return [C.flag(k) for k in C.field_names(*groups) if k in values]


def config_from_args(args: argparse.Namespace, values: dict | None = None
                     ) -> tuple[C.RunSpec, TrainConfig, dict]:
    """A supervised run's spec and TrainConfig: defaults < the dataset's training defaults <
    the resumed run's config < --config file < flags."""
    from .supervised import read_run_config

    values = dict(file_and_flags(args, ALL_GROUPS) if values is None else values)
    if args.labels is not None and args.budget is None:
        values["budget"] = None  # --labels replaces a budget of the resumed run or the file
    if args.resume:
        spec, cfg = read_run_config(args.resume)
        values = {**C.flat_values(spec, cfg), **values}
    spec, cfg = C.run_spec(values, "command line")
    return spec, cfg, values


def _supervised(args: argparse.Namespace, values: dict) -> int:
    from .supervised import evaluation_table, train_run
    from .training import init_distributed

    spec, cfg, _ = config_from_args(args, values)
    check_runtime(cfg)
    run_dir = Path(args.resume or args.run or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}")
    init_distributed()
    start = time.perf_counter()
    results = train_run(spec, cfg, run_dir, resume=bool(args.resume),
                        progress=not args.quiet, plots=not args.no_pictures)
    if results:
        print(evaluation_table(results))
        print(f"run folder: {run_dir} ({time.perf_counter() - start:.0f} s)")
        for pic in results.get("pictures", []):
            print(f"picture: {pic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
