"""`python -m claus.experiment`: compare selection strategies over seeds; results.md + pictures.

Examples::

    python -m claus.experiment --preset demo --strategies random equidistant entropy \\
        uncertainty claus --seeds 3 --out runs/compare
    python -m claus.experiment --dataset ucf101-24 --root data/ucf101-24 --model i3d \\
        --weights rgb_imagenet.pt --strategies random claus --target 5 --out runs/ucf
    python -m claus.experiment --config configs/ucf101-24-i3d.yaml --root data/ucf101-24
    python -m claus.experiment --resume runs/compare/claus/seed0     # continue one run
    python -m claus.experiment --export experiments/cmp --out runs/compare  # results to commit
    python -m claus.experiment --export experiments/cmp --out runs/more-seeds   # add seeds
    python -m claus.experiment --tabulate experiments/cmp    # results.md from those files

Every (strategy, seed) run lives in OUT/<strategy>/seed<k>/ and resumes where it stopped when
the command is repeated (a folder from another configuration is refused with what differs).
Fields come from the dataclasses of `claus.config` (flags and config-file keys are the same
names); precedence: defaults < the dataset's training defaults < --config file < flags. With
`--oracle human` a run stops after each selection until people's labels are imported
(`claus.select`, `claus.annotate`); the command then exits 0 and says what to run next.

results.md gives, under the table of means, the paired differences between strategies (per
seed, at every budget; mean with a 95% CI by paired t, or --ci bootstrap). `--export DIR` keeps
an experiment's results as small files to commit (config + per-seed metrics, no weights,
`claus.compare`); exporting later seeds' folders into the same DIR extends it, and
`--tabulate DIR` rewrites DIR/results.md from those files alone.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from . import config as C
from .cli import Parser, data_override, run_command

#: The field groups an active-learning command takes.
AL_GROUPS = ("data", "active learning", "experiment", "training")

# The main job (`python -m claus.train` with no arguments): claus on the demo preset, 1% → 2%
# of the boxes (two trained rounds, one selection) with the default training of a round
# (`claus.training.TrainConfig`), sized for under 10 minutes on 2 idle CPU cores (README).
DEMO_ARGV = ["--preset", "demo", "--strategies", "claus", "--seeds", "1", "--no-full",
             "--target", "2", "--out", "runs/demo"]


def add_run_options(p: argparse.ArgumentParser) -> None:
    """--config, --resume and the output switches of both run commands."""
    g = p.add_argument_group("run")
    g.add_argument("--config", default=None, metavar="FILE",
                   help="YAML or JSON file of fields (the flags' names); flags override it")
    g.add_argument("--resume", metavar="RUN", default=None,
                   help="continue a run folder with its stored configuration (with --root / "
                   "--store when its data moved)")
    g.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                   help="no progress bars")
    g.add_argument("--no-pictures", "--no-plots", dest="no_pictures", action="store_true",
                   help="table only, no pictures")


def add_record_options(p: argparse.ArgumentParser) -> None:
    """--export, --tabulate and --ci: the committed record of an experiment's results."""
    from .compare import CI_METHODS

    g = p.add_argument_group("results to commit (claus.compare)")
    g.add_argument("--export", metavar="DIR", default=None,
                   help="copy the results of the experiment folder --out into DIR (e.g. "
                   "experiments/NAME): experiment.json + metrics/<strategy>/seed<k>.jsonl, no "
                   "weights; an existing export gains the runs it lacks (add seeds over days)")
    g.add_argument("--tabulate", metavar="DIR", default=None,
                   help="rewrite DIR/results.md (and pictures) from an export's files alone")
    g.add_argument("--ci", choices=CI_METHODS, default="t",
                   help="95%% CI of the paired differences: paired t (default) or a seeded "
                   "percentile bootstrap")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m claus.experiment", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_arguments(p, AL_GROUPS)
    add_run_options(p)
    add_record_options(p)
    return p


def file_and_flags(args: argparse.Namespace, groups: tuple[str, ...]) -> dict[str, Any]:
    """Config-file values (--config) overridden by the flags given (both converted)."""
    values = C.load_config_file(args.config) if args.config else {}
    values.update(C.given(args, C.field_names(*groups)))
    return values


def check_runtime(train) -> None:
    """What a run needs before anything is written: a known model, its weights file, the
    device it asks for."""
    import torch

    from .models import MODELS

    if train.model not in MODELS:
        raise ValueError(f"--model: unknown model {train.model!r}; choices: "
                         f"{', '.join(sorted(MODELS))}")
    if train.weights is not None and not Path(train.weights).is_file():
        raise FileNotFoundError(f"--weights: {train.weights} does not exist; give the path of "
                                "a local weights file")
    if train.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {train.device}: no CUDA device is available here; use "
                         "--device cpu (or auto)")


def run_experiment_values(values: dict[str, Any], *, progress: bool = True,
                          pictures: bool = True, source: str = "command line",
                          ci: str = "t") -> int:
    """Validate every run of an experiment, then run them and write the report."""
    from . import reports
    from .rounds import AwaitingLabels, run_experiment

    exp = C.experiment_spec(values, source)
    seeds = exp.seed_list
    # Every run's config is built (and so validated) before anything is written.
    configs = [C.run_config(values, s, seeds[0], source) for s in exp.strategies]
    base = configs[0]
    check_runtime(base.training())
    ds = base.data.open()
    try:
        lines = run_experiment(exp.out, base, exp.strategies, seeds, include_full=exp.full,
                               dataset=ds, progress=progress, share_round0=exp.share_round0)
    except AwaitingLabels as wait:
        print(wait)
        return 0
    import torch.distributed as dist

    if dist.is_initialized() and dist.get_rank() > 0:
        return 0  # under torchrun rank 0 alone writes the report (the runs are complete)
    path, figs = reports.write_report(exp.out, lines, dataset=ds, pictures=pictures, ci=ci)
    print(path.read_text())
    print(f"results: {path}")
    for f in figs:
        print(f"picture: {f}")
    return 0


def resume(run: str, progress: bool = True, args: argparse.Namespace | None = None) -> int:
    """Continue one active-learning run folder with its stored configuration (exit code);
    `args` may carry --root / --store / --split when the run's data moved."""
    from . import reports
    from .rounds import AwaitingLabels, read_run_config, relocate_run, run_rounds

    cfg = read_run_config(run)
    if args is not None:
        cfg = relocate_run(run, data_override(args, cfg.data))
        if getattr(args, "max_bad_share", None) is not None:
            # The one training option a resume may change: how many unreadable videos to bear.
            share = C.convert("float", "max_bad_share", args.max_bad_share, "--max-bad-share")
            cfg = cfg.replace(train=cfg.train.replace(max_bad_share=share))
    try:
        lines = run_rounds(run, cfg, resume=True, progress=progress)
    except AwaitingLabels as wait:
        print(wait)
        return 0
    print(reports.results_table(reports.aggregate(lines)))
    print(f"run folder: {run}")
    return 0


def _extra_flags(args: argparse.Namespace, groups: tuple[str, ...], keep: tuple[str, ...],
                 config: bool = False) -> list[str]:
    """The field flags given besides `keep` (and --config unless `config` allows it)."""
    extra = [C.flag(k) for k in C.field_names(*groups)
             if k not in keep and getattr(args, k, None) is not None]
    if getattr(args, "config", None) and not config:
        extra.append("--config")
    return extra


def refuse_flags_on_resume(args: argparse.Namespace, groups: tuple[str, ...]) -> None:
    """A resumed run keeps its stored configuration: only where its data lives may change."""
    extra = _extra_flags(args, groups, ("root", "store", "split", "max_bad_share"))
    if extra:
        raise ValueError(f"{' '.join(extra)}: {args.resume} resumes with its stored "
                         "configuration; drop these flags (only --root / --store may point "
                         "it at moved data, and --max-bad-share may change)")


def records(args: argparse.Namespace, groups: tuple[str, ...] = AL_GROUPS) -> int:
    """--export (the experiment folder --out into an export folder) or --tabulate (an export's
    results.md from its files): print the tables, say what was written (exit code)."""
    from .compare import export_experiment, tabulate

    if args.tabulate is not None:
        extra = _extra_flags(args, groups, ())
        if extra:
            raise ValueError(f"{' '.join(extra)}: --tabulate reads {args.tabulate} alone; drop "
                             "these flags")
        path, figs = tabulate(args.tabulate, pictures=not args.no_pictures, method=args.ci)
    else:
        extra = _extra_flags(args, groups, ("out",), config=True)
        if extra:
            raise ValueError(f"{' '.join(extra)}: --export copies the runs of --out as they "
                             "ran; drop these flags")
        live = C.experiment_spec(file_and_flags(args, groups)).out
        summary = export_experiment(live, args.export, pictures=not args.no_pictures,
                                    method=args.ci)
        print(summary)
        path, figs = summary.folder / "results.md", sorted(
            (summary.folder / "figures").glob("*.png"))
    print(path.read_text())
    print(f"results: {path}")
    for f in figs:
        print(f"picture: {f}")
    return 0


def main(argv: list[str] | None = None, *, defaults: dict[str, Any] | None = None) -> int:
    """`python -m claus.experiment`; `defaults` (flat fields) sit below the file and flags."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def body() -> int:
        modes = [f for f, v in (("--resume", args.resume), ("--export", args.export),
                                ("--tabulate", args.tabulate)) if v is not None]
        if len(modes) > 1:
            raise ValueError(f"{' '.join(modes)}: give one of them")
        if args.resume is not None:
            refuse_flags_on_resume(args, AL_GROUPS)
            return resume(args.resume, progress=not args.quiet, args=args)
        if modes:
            return records(args)
        values = {**(defaults or {}), **file_and_flags(args, AL_GROUPS)}
        return run_experiment_values(values, progress=not args.quiet,
                                     pictures=not args.no_pictures, ci=args.ci)

    return run_command(body)


def demo(extra: list[str] | None = None) -> int:
    """Run the demo active-learning experiment (the main job)."""
    return main(DEMO_ARGV + list(extra or []))


if __name__ == "__main__":
    sys.exit(main())
