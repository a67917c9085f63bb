"""`fit`: a `Trainer` with the default hooks (and yours), started and run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from claus.data import LabelState, VideoDataset

from .config import TrainConfig
from .hooks import default_hooks
from .loop import HookBase, Trainer

__all__ = ["fit"]


def fit(
    cfg: TrainConfig,
    dataset: VideoDataset,
    labels: LabelState,
    run_dir: str | Path,
    *,
    model: torch.nn.Module | None = None,
    centers=None,
    resume: bool = True,
    progress: bool = True,
    evaluate_every: bool = True,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    hooks: Sequence[HookBase] = (),
) -> torch.nn.Module:
    """Train a detector on the (pseudo-)labels of a label state.

    Each epoch draws `cfg.clips_per_video` clips per labelled video (`TrainClips`, centred on a
    random labelled frame, pseudo-masks interpolated between labels), shuffled by (seed,
    epoch). After every epoch a record goes to `run_dir/metrics.jsonl` (epoch, step, mean
    losses, lr, skipped steps, seconds; with `evaluate_every` and `cfg.eval_every > 0` also a
    "test" evaluation every `eval_every` epochs) and `run_dir/checkpoint.pt` is written
    atomically (`claus.training.hooks`).

    A labelled video whose frames cannot be read is left out: its clips come from other
    labelled videos, a warning names it once, and the epoch's record lists it under
    "unreadable" ({video: {"file", "reason"}}), which a resumed run reads back. Past
    `cfg.max_bad_share` of the dataset's videos, or with no labelled video left, the run ends.

    Args:
        cfg, dataset, labels: the configuration, the dataset (its "train" videos that `labels`
            labels are used) and which frames carry labels.
        run_dir: folder for the checkpoint and metrics (created).
        model: a model to train (a warm start); default `build_model(cfg.model, C,
            weights=cfg.weights)` after `set_seed(cfg.seed)`.
        centers: cluster centres for `cfg.beta > 0`: `claus.cluster.OnlineCenters` (updated in
            place) or a (K,D) tensor of initial centres.
        resume: continue from `run_dir/checkpoint.pt` when it was written for the same config
            (minus runtime fields), dataset and label state; a checkpoint of another run is an
            error listing what differs. A finished run returns its model without training.
        progress: tqdm bars (rank 0 only).
        evaluate_every: evaluate during training as `cfg.eval_every` says.
        on_epoch_end: `on_epoch_end(epoch, record)` after each epoch's checkpoint (rank 0).
        hooks: more `HookBase`s, run after the default ones (`request_stop()` ends training).

    Returns:
        The trained model (unwrapped from DDP), in train mode, on the training device.

    Raises:
        NonFiniteLossError: `cfg.max_nonfinite` consecutive non-finite losses or gradients.
        TooManyBadVideos: too many unreadable videos (see above).
        ValueError: a checkpoint of another run in `run_dir`, or `beta > 0` without centres.
    """
    trainer = Trainer(cfg, dataset, labels, run_dir, model=model, centers=centers,
                      progress=progress)
    trainer.register([*default_hooks(trainer, evaluate_every=evaluate_every,
                                     on_epoch_end=on_epoch_end), *hooks])
    trainer.start(resume)
    trainer.train()
    return trainer.model
