"""The trainer's hooks: everything a training run does beyond its steps.

`default_hooks` gives `fit`'s set, in the order they run after each epoch:

    CenterSync           after each taken step: move the cluster centres (all ranks' samples)
    PeriodicEvaluation   every `cfg.eval_every` epochs: evaluate on "test", add a record
    MetricsWriter        rewrite RUN/metrics.jsonl with every record (rank 0)
    Checkpointer         gather every rank's RNG state, write RUN/checkpoint.pt (rank 0)
    TensorBoardWriter    the epoch's scalars under RUN/tensorboard (rank 0, when installed)
    EpochCallback        `on_epoch_end(epoch, record)` (rank 0)

The order matters: the evaluation's record must be in the metrics file, and the metrics are
written before the checkpoint, so a run killed between the two resumes from the older
checkpoint and drops the newer records. A hook of your own goes after these
(`fit(..., hooks=[...])`): it sees each epoch's record written and checkpointed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import torch.distributed as dist

from .checkpoint import gather_rng, write_metrics
from .distributed import gather_tensors
from .evaluation import evaluate
from .loop import HookBase, Trainer, _seam

log = logging.getLogger(__name__)

__all__ = [
    "CenterSync",
    "Checkpointer",
    "EpochCallback",
    "MetricsWriter",
    "PeriodicEvaluation",
    "TensorBoardWriter",
    "default_hooks",
]


class CenterSync(HookBase):
    """After each taken step, move the online cluster centres towards the batch's embeddings
    by their assignments. Under DDP the embeddings of every rank are gathered first: every
    rank must move its centres by the same samples, or they drift apart."""

    def after_step(self) -> None:
        t = self.trainer
        if t.centers is None or not t.last.taken:
            return
        emb, assign = gather_tensors(t.last.emb.float(), t.last.losses["assign"])
        t.centers.update(emb, assign)


class PeriodicEvaluation(HookBase):
    """Every `every`-th epoch, evaluate the model on `split` (rank 0; the others wait) and add
    a record {"epoch", "step", "split", metrics...} after the epoch's."""

    def __init__(self, every: int, split: str = "test"):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.split = int(every), split

    def after_epoch(self) -> None:
        t = self.trainer
        if (t.epoch + 1) % self.every:
            return
        if t.rank == 0:
            res = evaluate(t.model, t.dataset, t.cfg, self.split, progress=t.progress)
            t.records.append({"epoch": t.epoch, "step": t.step, **_scalars(res)})
        if t.distributed:
            dist.barrier()


class MetricsWriter(HookBase):
    """RUN/metrics.jsonl (rank 0): emptied when a run begins (not when it resumes), rewritten
    atomically with every record after each epoch."""

    def before_train(self) -> None:
        t = self.trainer
        if t.rank == 0 and not t.resumed:
            write_metrics(t.metrics_path, [])

    def after_epoch(self) -> None:
        t = self.trainer
        if t.rank == 0:
            write_metrics(t.metrics_path, t.records)


class Checkpointer(HookBase):
    """RUN/checkpoint.pt after each epoch (layout in `claus.training.checkpoint`): every rank
    hands its RNG states over (a collective), rank 0 writes atomically."""

    def after_epoch(self) -> None:
        t = self.trainer
        rng_states = gather_rng(t.dropout_gen)
        if t.rank == 0:
            _seam("atomic_torch_save")(t.ckpt_path, checkpoint_state(t, rng_states))


def checkpoint_state(t: Trainer, rng_states: list[dict]) -> dict:
    """The checkpoint of a trainer after its epoch `t.epoch` (so "epoch" counts epochs done)."""
    return {
        "format": "claus.checkpoint", "version": 1,
        "config": t.cfg.to_dict(), "fingerprint": t.fingerprint,
        "num_classes": t.dataset.num_classes, "classes": list(t.dataset.classes),
        "epoch": t.epoch + 1, "step": t.step,
        "model": t.model.state_dict(), "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict(), "rng": rng_states,
        "centers": t.centers.state_dict() if t.centers is not None else None,
    }


class TensorBoardWriter(HookBase):
    """The numeric fields of each epoch's records under RUN/tensorboard ("train/<key>", and
    "test/<key>" for an evaluation's), at step epoch + 1; rank 0, when TensorBoard is
    installed (else metrics.jsonl is the only record)."""

    def __init__(self) -> None:
        self.writer = None

    def before_train(self) -> None:
        t = self.trainer
        self.writer = _summary_writer(t.run_dir) if t.rank == 0 else None

    def after_epoch(self) -> None:
        if self.writer is None:
            return
        epoch = self.trainer.epoch
        # The epoch's record and, when evaluated, the evaluation's come last.
        for r in self.trainer.records[-2:]:
            if r["epoch"] == epoch:
                self._add(r, epoch + 1)
        self.writer.flush()

    def _add(self, record: Mapping, step: int) -> None:
        prefix = "test/" if "split" in record else "train/"
        for k, v in record.items():
            if k not in ("epoch", "step") and isinstance(v, (int, float)):
                self.writer.add_scalar(prefix + k, v, step)

    def after_train(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class EpochCallback(HookBase):
    """Call `fn(epoch, record)` after each epoch's checkpoint (0-based epoch; rank 0)."""

    def __init__(self, fn: Callable[[int, dict], None]):
        self.fn = fn

    def after_epoch(self) -> None:
        t = self.trainer
        if t.rank == 0:
            self.fn(t.epoch, t.record)


def default_hooks(trainer: Trainer, *, evaluate_every: bool = True,
                  on_epoch_end: Callable[[int, dict], None] | None = None) -> list[HookBase]:
    """`fit`'s hooks, in order (module docstring); periodic evaluation only with
    `evaluate_every` and `cfg.eval_every > 0`, the callback only when given."""
    every = trainer.cfg.eval_every
    hooks: list[HookBase] = [CenterSync()]
    if evaluate_every and every > 0:
        hooks.append(PeriodicEvaluation(every))
    hooks += [MetricsWriter(), Checkpointer(), TensorBoardWriter()]
    if on_epoch_end is not None:
        hooks.append(EpochCallback(on_epoch_end))
    return hooks


def _scalars(res: Mapping) -> dict:
    return {k: v for k, v in res.items() if isinstance(v, (int, float, str)) or v is None}


def _summary_writer(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: metrics.jsonl is the record
        log.debug("tensorboard not installed; logging to metrics.jsonl only")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))
