"""Training a detector: the config, the trainer and its hooks, checkpoints, evaluation.

    cfg = TrainConfig(epochs=2)
    model = fit(cfg, ds, LabelState.full(ds), "runs/demo")   # checkpoint.pt, metrics.jsonl
    results = evaluate(model, ds, cfg)                          # f-mAP@0.5, v-mAP@…, accuracy

The package, top-down:

    config.py        TrainConfig (flags and config-file fields), its `geometry` (ClipGeometry)
    loop.py          Trainer: state, `run_step` (one optimizer step and the non-finite policy),
                     the epoch loop calling hooks; HookBase; compute_losses; seeding
    hooks.py         CenterSync, PeriodicEvaluation, MetricsWriter, Checkpointer,
                     TensorBoardWriter, EpochCallback; `default_hooks`
    checkpoint.py    the run folder's checkpoint.pt and metrics.jsonl, the resume fingerprint
    distributed.py   torchrun: joining the group, rank, the collectives the trainer needs
    evaluation.py    `evaluate` with a config's clip layout and thresholds

`fit` (train.py) is the thin wrapper: a `Trainer`, `default_hooks` (+ yours), `start`, `train`.

Only the configuration is imported eagerly (torch-free, so tools that read run configurations
start without torch); every other name loads on first use (PEP 562).

Distributed: under `torchrun` call `init_distributed()` first (the CLI does); `fit` then wraps
the model in DDP, shards clips with a `DistributedSampler` and only rank 0 writes files.
"""

from __future__ import annotations

from ..lazy import lazy_getattr
from .config import LOC_LOSSES, RUNTIME_FIELDS, TRAIN_HELP, TrainConfig

#: name -> (module, attribute) of what loads on first use. The trainer takes `TrainClips`,
#: `_param_groups` and `atomic_torch_save` through the package when it uses them
#: (`loop._seam`), so a test can replace them here.
_LAZY: dict[str, tuple[str, str]] = {
    **{n: ("claus.data.clips", n) for n in ("ClipGeometry", "TrainClips")},
    "resolve_device": ("claus.device", "resolve_device"),
    "atomic_torch_save": ("claus.io", "atomic_torch_save"),
    **{n: (".checkpoint", n) for n in ("CHECKPOINT", "METRICS", "load_checkpoint",
                                        "load_checkpoint_model", "read_metrics",
                                        "unreadable_videos")},
    **{n: (".distributed", n) for n in ("get_rank", "init_distributed", "is_distributed")},
    "evaluate": (".evaluation", "evaluate"),
    **{n: (".hooks", n) for n in ("CenterSync", "Checkpointer", "EpochCallback",
                                   "MetricsWriter", "PeriodicEvaluation", "TensorBoardWriter",
                                   "default_hooks")},
    **{n: (".loop", n) for n in ("HookBase", "NonFiniteLossError", "StepResult", "Trainer",
                                  "_param_groups", "compute_losses", "make_generator",
                                  "set_seed")},
    "fit": (".train", "fit"),
}


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CHECKPOINT",
    "METRICS",
    "LOC_LOSSES",
    "CenterSync",
    "Checkpointer",
    "ClipGeometry",
    "EpochCallback",
    "HookBase",
    "MetricsWriter",
    "NonFiniteLossError",
    "PeriodicEvaluation",
    "RUNTIME_FIELDS",
    "StepResult",
    "TRAIN_HELP",
    "TensorBoardWriter",
    "TrainClips",
    "TrainConfig",
    "Trainer",
    "_param_groups",
    "atomic_torch_save",
    "compute_losses",
    "default_hooks",
    "evaluate",
    "fit",
    "get_rank",
    "init_distributed",
    "is_distributed",
    "load_checkpoint",
    "load_checkpoint_model",
    "make_generator",
    "read_metrics",
    "resolve_device",
    "set_seed",
    "unreadable_videos",
]


