"""`python -m claus.train`: train a detector on a label state and evaluate it.

    python -m claus.train --dataset synthetic --labels full          # the demo (~minutes, CPU)
    python -m claus.train --dataset synthetic:tiny --budget 5 --epochs 2
    python -m claus.train --config run.yaml --lr 1e-3 --run runs/a    # file, then CLI overrides
    python -m claus.train --resume runs/a                             # continue an interrupted run
    python -m claus.train --strategy claus --oracle human --out runs/h  # people label the rounds
    python -m claus.train --resume runs/h/claus/seed0                 # ... after claus.annotate
    torchrun --nproc-per-node 2 -m claus.train ...                    # DDP

Precedence: defaults < the dataset's defaults (`claus.data.TRAIN_DEFAULTS`) < --config file <
command-line flags. See `claus.supervised` for the run
folder layout.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import MISSING, fields
from pathlib import Path

from claus.data import DATASETS
from claus.models import MODELS
from claus.supervised import RunSpec, load_config_file, read_run_config, split_config
from claus.training import TrainConfig

_HELP = {
    "epochs": "passes over the training clips",
    "batch_size": "clips per optimizer step (per process under DDP)",
    "lr": "AdamW peak learning rate",
    "weight_decay": "AdamW weight decay (not on biases / norms)",
    "warmup_epochs": "linear warm-up length before the cosine decay",
    "grad_clip": "gradient-norm clipping (0 = off)",
    "clips_per_video": "clips drawn per labelled video and epoch",
    "T": "frames per clip",
    "stride": "frame step inside a clip",
    "size": "input side in pixels (none = the dataset's / store's size)",
    "augment": "random crop + flip (+ the colour options below)",
    "color_jitter": "per-channel colour gain/offset strength of augmentation (0 = off)",
    "channel_shuffle": "augmentation: random RGB channel order (colour carries no class)",
    "cls_on_action": "classification loss only on clips whose pseudo-labels show an actor",
    "min_clips_per_epoch": "raise clips per video so an epoch has at least this many (0 = off)",
    "balance_classes": "spread each epoch's clips evenly over the classes (rare ones repeat)",
    "loc_loss": "localization loss: stew, or bce_dice (unweighted ablation)",
    "loc_weight": "weight of the localization loss",
    "cls_weight": "weight of the classification loss",
    "label_smoothing": "cross-entropy label smoothing",
    "stew_sigma": "STeW temporal Gaussian sigma (frames)",
    "stew_radius": "STeW: frames farther than this from a label get weight 0",
    "stew_window": "STeW consistency half-window (frames)",
    "dice_weight": "weight of the Dice term",
    "beta": "cluster-loss weight (active-learning rounds; 0 = off)",
    "amp": "bf16 autocast on CUDA",
    "workers": "DataLoader worker processes",
    "seed": "seed of the run (model init, sampling, augmentation, dropout, budget draw)",
    "device": "auto, cpu, cuda, cuda:1, ...",
    "eval_every": "also evaluate every N epochs during training (0 = only at the end)",
    "eval_batch_size": "clips per inference batch",
    "max_nonfinite": "abort after this many consecutive non-finite losses",
    "fg_threshold": "foreground probability threshold of detections",
    "min_area": "smallest foreground region kept (pixels)",
    "nms_iou": "tube NMS IoU",
    "class_scope": "detections take the frame's class (frame) or the video's (video)",
}
# Flags with their own place in the parser.
_OWN = {"model", "weights", "epochs"}


def _field_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m claus.train",
        description="Train a spatio-temporal action detector on a label state (every frame, a "
        "label-state file, or a random budget), evaluate it on the test split (f-mAP@0.5, "
        "v-mAP@0.1-0.5, accuracy) and write a run folder (config, checkpoint, metrics.jsonl, "
        "results.json, pictures).",
        epilog="Datasets: " + "; ".join(f"{k}: {v}" for k, v in DATASETS.items())
        + ". Config files (YAML or JSON) are flat mappings of the same field names as the "
        "flags (dataset, root, labels, budget, lr, batch_size, ...); flags override them.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("data and labels")
    g.add_argument("--dataset", default=None,
                   help="dataset name (default synthetic = synthetic:demo); "
                   f"choices: {', '.join(DATASETS)}, synthetic:tiny|demo|full")
    g.add_argument("--root", default=None, help="dataset folder / JSON file (real datasets)")
    g.add_argument("--store", default=None, help="frame store folder (claus.data.prepare)")
    g.add_argument("--data-seed", type=int, default=None, help="synthetic generator seed (0)")
    lab = g.add_mutually_exclusive_group()
    lab.add_argument("--labels", default=None,
                     help="'full' (every training frame labelled, the default) or a "
                     "label-state JSON file")
    lab.add_argument("--budget", type=float, default=None,
                     help="label a random PCT percent of the training boxes (e.g. 5)")
    g = p.add_argument_group("model")
    g.add_argument("--model", default=None, help=f"detector: {', '.join(sorted(MODELS))}")
    g.add_argument("--weights", default=None, help="local pretrained weights file (i3d: "
                   "pytorch-i3d rgb_imagenet.pt / rgb_charades.pt)")
    g = p.add_argument_group("run")
    g.add_argument("--config", default=None, help="YAML or JSON file of fields")
    g.add_argument("--run", default=None, help="run folder (default runs/train-<time>)")
    g.add_argument("--resume", default=None, metavar="RUN",
                   help="continue the run in this folder from its last checkpoint (an "
                   "active-learning run folder continues its rounds, e.g. after claus.annotate)")
    g.add_argument("--protocol", default=None, choices=("act", "localization"),
                   help="final evaluation protocol (act)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    g.add_argument("--no-plots", action="store_true", help="skip the pictures")
    g = p.add_argument_group("training (TrainConfig fields; defaults in brackets)")
    g.add_argument("--epochs", type=int, default=None,
                   help=f"{_HELP['epochs']} [{TrainConfig.epochs}]")
    for f in fields(TrainConfig):
        if f.name in _OWN:
            continue
        default = f.default if f.default is not MISSING else None
        g.add_argument(_field_flag(f.name), dest=f.name, default=None, metavar="V",
                       help=f"{_HELP.get(f.name, f.name)} [{default}]")
    return p


def config_from_args(args: argparse.Namespace) -> tuple[RunSpec, TrainConfig, dict]:
    """Merge defaults < config file (or the resumed run's config) < flags."""
    values: dict = {}
    if args.resume:
        spec, cfg = read_run_config(args.resume)
        from dataclasses import asdict

        values.update({**asdict(spec), **cfg.to_dict()})
    if args.config:
        from_file = load_config_file(args.config)
        split_config(from_file, str(args.config))  # unknown or mistyped fields name the file
        values.update(from_file)
    flags = {"dataset": args.dataset, "root": args.root, "store": args.store,
             "data_seed": args.data_seed, "protocol": args.protocol}
    if args.budget is not None:
        flags.update(budget=args.budget)
    for f in fields(TrainConfig):
        flags[f.name] = getattr(args, f.name, None)
    values.update({k: v for k, v in flags.items() if v is not None})
    if args.labels is not None:  # --labels replaces a budget from the file or the resumed run
        values.update(labels=args.labels, budget=None)
    from claus.data import train_defaults

    for k, v in train_defaults(values.get("dataset") or "synthetic").items():
        values.setdefault(k, v)  # the dataset's defaults: above TrainConfig's, below the rest
    spec, cfg = split_config(values, "command line")
    return spec, cfg, values


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # No arguments: the main job, the demo active-learning experiment (claus.experiment.demo).
    # --strategy NAME: one active-learning run (the flags of claus.experiment).
    if not argv or argv[0] == "--strategy":
        from claus.experiment import demo
        from claus.experiment import main as experiment

        return demo() if not argv else experiment(["--no-full", "--strategies", *argv[1:]])
    # --resume of an active-learning run folder (e.g. after a human import): continue its rounds.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--resume", default=None)
    pre.add_argument("--no-progress", "--quiet", dest="quiet", action="store_true")
    known, rest = pre.parse_known_args(argv)
    from claus.experiment import is_rounds_run

    if known.resume and is_rounds_run(known.resume):
        if rest:
            print(f"error: {known.resume} is an active-learning run; it resumes with its stored "
                  f"configuration, without the flags {' '.join(rest)}", file=sys.stderr)
            return 2
        from claus.experiment import resume

        return resume(known.resume, progress=not known.quiet)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from claus.supervised import results_table, train_run
    from claus.training import init_distributed

    try:
        spec, cfg, _ = config_from_args(args)
        _check_names(spec, cfg)
        run_dir = Path(args.resume or args.run or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}")
        init_distributed()
        start = time.perf_counter()
        results = train_run(spec, cfg, run_dir, resume=bool(args.resume),
                            progress=not args.no_progress, plots=not args.no_plots)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        parser.exit(2, f"error: {exc}\n")
    if results:
        print(results_table(results))
        print(f"run folder: {run_dir} ({time.perf_counter() - start:.0f} s)")
        for pic in results.get("pictures", []):
            print(f"picture: {pic}")
    return 0


def _check_names(spec: RunSpec, cfg: TrainConfig) -> None:
    if cfg.model not in MODELS:
        raise ValueError(f"unknown model {cfg.model!r}; choices: {', '.join(sorted(MODELS))}")
    if cfg.weights is not None and not Path(cfg.weights).is_file():
        raise FileNotFoundError(f"weights file {cfg.weights} does not exist")
    base = spec.dataset.partition(":")[0]
    if base not in DATASETS:
        choices = "; ".join(f"{k}: {v}" for k, v in DATASETS.items())
        raise ValueError(f"unknown dataset {spec.dataset!r}; choices: {choices}")


if __name__ == "__main__":
    sys.exit(main())
