"""The trainer: its state, a short `run_step`, and the epoch loop that calls hooks.

    trainer = Trainer(cfg, ds, labels, "runs/demo")
    trainer.register(default_hooks(trainer) + [MyHook()])   # claus.training.hooks
    trainer.start(resume=True)                               # restore a checkpoint, or begin
    trainer.train()

The loop (after detectron2's `TrainerBase`): `before_train`; per epoch `before_epoch`, then
per batch `run_step` and `after_step`; the epoch's record; `after_epoch`; at the end
`after_train` (also when training raised). Hooks run in the order registered. Everything a
run writes or shares beyond one step is a hook (`claus.training.hooks`): the metrics file,
the checkpoint, TensorBoard, periodic evaluation, the cluster-centre update.

Determinism: the model is initialised after `set_seed(cfg.seed)`; clip sampling and
augmentation derive from (seed, epoch, index) (`TrainClips`), the shuffle order from
(seed, epoch), dropout masks from a generator saved in the checkpoint. So on CPU a run resumed
from any epoch's checkpoint continues bit-identically to an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from claus.data import LabelState, VideoDataset
from claus.data.clips import collate_clips
from claus.data.faults import BadVideos
from claus.device import autocast, resolve_device
from claus.losses import bce_dice_loss, classification_loss, stew_loss
from claus.models import build_model

from .checkpoint import (
    CHECKPOINT,
    METRICS,
    fingerprint,
    fingerprint_diff,
    load_checkpoint,
    read_metrics,
    set_rng_state,
    unreadable_videos,
)
from .config import TrainConfig
from .distributed import (
    all_gather_objects,
    average_buffers,
    get_rank,
    is_distributed,
    mean_over_ranks,
    world_size,
)

log = logging.getLogger(__name__)

__all__ = [
    "HookBase",
    "NonFiniteLossError",
    "StepResult",
    "Trainer",
    "compute_losses",
    "make_generator",
    "set_seed",
]


class NonFiniteLossError(ValueError):
    """Raised after `max_nonfinite` consecutive steps with a non-finite loss or gradient."""


# ---------------------------------------------------------------------------- seeding
def set_seed(seed: int) -> None:
    """Seed torch's own RNGs (CPU and CUDA); used before model initialisation."""
    torch.manual_seed(seed)


def make_generator(seed: int, *keys: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator seeded from (seed, *keys) through NumPy's SeedSequence, so streams for
    different purposes (dropout, rank, epoch) are independent."""
    ss = np.random.SeedSequence([int(seed), *[int(k) for k in keys]])
    return torch.Generator(device=device).manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))


# ---------------------------------------------------------------------------- optimisation
def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    # Decaying biases and normalisation scales only shrinks them towards 0 for no benefit.
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup_steps) / span)))

    return factor


def _seam(name: str):
    """`claus.training.<name>`, looked up when used: the clip dataset, the parameter groups and
    the checkpoint writer are taken from the package at call time, so replacing them there
    (as tests do to watch them) reaches the trainer."""
    return getattr(sys.modules[__package__], name)


# ---------------------------------------------------------------------------- losses
def compute_losses(cfg: TrainConfig, out, batch: dict, centers=None) -> dict[str, torch.Tensor]:
    """The training losses of one batch.

    Args:
        cfg: weights and loss options.
        out: `DetectorOutput` with loc (B,T,H,W), cls (B,C), emb (B,D).
        batch: `TrainClips` items collated: mask (B,T,H,W) uint8, annotated (B,T) bool,
            label (B,) int64.
        centers: `claus.cluster.OnlineCenters` when cfg.beta > 0.

    Returns:
        {"loss": weighted total, "cls", "loc", ["cluster", "assign"]}; every loss 0-d float32.
    """
    device = out.loc.device
    mask = batch["mask"].to(device)
    annotated = batch["annotated"].to(device)
    label = batch["label"].to(device)
    # A video whose class nobody has labelled yet (-1) gives its clips no class target.
    known = label >= 0
    if cfg.cls_on_action:
        # A clip showing no actor carries no evidence of the action: its class target is noise.
        known = known & mask.flatten(1).any(1)
    if cfg.cls_on_action or not bool(known.all()):
        per_clip = classification_loss(out.cls, label.clamp(min=0), cfg.label_smoothing,
                                       reduction="none")
        cls = (per_clip * known).sum() / known.sum().clamp(min=1)
    else:
        cls = classification_loss(out.cls, label, cfg.label_smoothing)
    if cfg.loc_loss == "stew":
        loc = stew_loss(out.loc, mask, annotated, cfg.stew_sigma, cfg.stew_radius,
                        cfg.stew_window, cfg.dice_weight)
    else:
        loc = bce_dice_loss(out.loc, mask, cfg.dice_weight)
    total = cfg.cls_weight * cls + cfg.loc_weight * loc
    res = {"cls": cls.float(), "loc": loc.float()}
    if cfg.beta > 0:
        closs, assign = centers.loss(out.emb.float(), cfg.beta)
        total = total + closs
        res["cluster"] = closs.float()
        res["assign"] = assign
    res["loss"] = total.float()
    return res


def _as_centers(centers, device: torch.device):
    """Accept `OnlineCenters` or a (K,D) tensor of initial centres."""
    from claus.cluster import OnlineCenters

    if isinstance(centers, OnlineCenters):
        return centers.to(device)
    if torch.is_tensor(centers):
        return OnlineCenters(centers.float()).to(device)
    raise TypeError("centers must be a claus.cluster.OnlineCenters or a (K,D) tensor, got "
                    f"{type(centers).__name__}")


# ---------------------------------------------------------------------------- the trainer
class HookBase:
    """A piece of the training loop outside the step. Override any of the five methods; each
    runs on every rank (guard rank-0-only work with `self.trainer.rank == 0`).

    `self.trainer` is set by `Trainer.register`. What a hook can read there: `epoch`
    (0-based), `step` (optimizer steps done, taken or skipped), `last` (the `StepResult` of
    the step just run, in `after_step`), `record` (this epoch's record, in `after_epoch`),
    `records` (every record so far), `start_epoch` and `resumed`, `model`, `optimizer`,
    `cfg`, `rank`; `request_stop()` ends training after the current epoch.
    """

    trainer: Trainer

    def before_train(self) -> None:
        """Once, before the first epoch (also when a finished run trains no epoch)."""

    def before_epoch(self) -> None:
        """At the start of each epoch, after the model is in train mode and the clips and
        sampler know the epoch."""

    def after_step(self) -> None:
        """After each step (taken or skipped) and its schedule step."""

    def after_epoch(self) -> None:
        """After the epoch's record is in `trainer.records` (and `trainer.record`)."""

    def after_train(self) -> None:
        """Once at the end, also when training raised."""


@dataclass
class StepResult:
    """What one `run_step` did.

    taken: the optimizer stepped (False: a non-finite loss or gradient, step skipped).
    loss: the batch's total loss (float; may be non-finite when not taken).
    losses: `compute_losses` of the batch (0-d float32 tensors; "assign" (B,) int64 with the
        cluster loss).
    emb: (B,D) embeddings of the batch, detached.
    """

    taken: bool
    loss: float
    losses: dict[str, torch.Tensor]
    emb: torch.Tensor


class Trainer:
    """The state of one training run and its loop (module docstring).

    Built from the config: device and rank, the model (`build_model` after `set_seed` unless
    one is given), cluster centres, `TrainClips` (clips per video raised to
    `cfg.min_clips_per_epoch` per epoch), a seeded `DistributedSampler` (a plain seeded
    shuffle in one process), AdamW over `_param_groups` and a warm-up + cosine `LambdaLR`,
    the dropout generator and the ledger of unreadable videos.
    """

    def __init__(self, cfg: TrainConfig, dataset: VideoDataset, labels: LabelState,
                 run_dir: str | Path, *, model: torch.nn.Module | None = None, centers=None,
                 progress: bool = True):
        if cfg.beta > 0 and centers is None:
            raise ValueError("TrainConfig.beta > 0 needs cluster centres: pass centers= to "
                             "fit()")
        self.cfg, self.dataset, self.labels = cfg, dataset, labels
        self.run_dir, self.progress = Path(run_dir), progress
        self.rank, self.distributed = get_rank(), is_distributed()
        self.device = resolve_device(cfg.device)
        if model is None:
            set_seed(cfg.seed)
            model = build_model(cfg.model, dataset.num_classes, weights=cfg.weights)
        self.model = model.to(self.device)
        self.net: torch.nn.Module = self.model  # DDP-wrapped by `start` under torchrun
        self.centers = _as_centers(centers, self.device) if centers is not None else None
        self._build_data()
        self._build_optimizer()
        self.dropout_gen = make_generator(cfg.seed, 1, self.rank)
        self.bad = BadVideos.of(dataset, cfg.max_bad_share)
        self.ckpt_path, self.metrics_path = self.run_dir / CHECKPOINT, self.run_dir / METRICS
        self.fingerprint = fingerprint(cfg, dataset, self.labels)
        self.start_epoch = self.epoch = self.step = 0
        self.resumed = False  # set by `resume`
        self.records: list[dict] = []
        self.record: dict = {}
        self.last: StepResult | None = None
        self.hooks: list[HookBase] = []
        self.nonfinite = 0  # consecutive non-finite steps
        self._stop = False

    def _build_data(self) -> None:
        cfg = self.cfg
        per_video = cfg.clips_per_video
        if cfg.min_clips_per_epoch:
            # Few labelled videos (early active-learning rounds) still get a full training run.
            n_videos = max(1, len(self.labels.labelled_videos()))
            per_video = max(per_video, math.ceil(cfg.min_clips_per_epoch / n_videos))
        self.clips = _seam("TrainClips")(
            self.dataset, self.labels, cfg.geometry, augment=cfg.augment,
            clips_per_video=per_video, seed=cfg.seed, color_jitter=cfg.color_jitter,
            channel_shuffle=cfg.channel_shuffle, balance=cfg.balance_classes,
            skip_unreadable=True)
        # One sampler for both cases: with a single replica it is a seeded shuffle by epoch.
        self.sampler = DistributedSampler(self.clips, num_replicas=world_size(), rank=self.rank,
                                          shuffle=True, seed=cfg.seed, drop_last=False)
        self.loader = DataLoader(self.clips, batch_size=cfg.batch_size, sampler=self.sampler,
                                 num_workers=cfg.workers, pin_memory=self.device.type == "cuda",
                                 persistent_workers=False, collate_fn=collate_clips)

    def _build_optimizer(self) -> None:
        cfg, steps_per_epoch = self.cfg, len(self.loader)
        self.optimizer = torch.optim.AdamW(_seam("_param_groups")(self.model, cfg.weight_decay),
                                           lr=cfg.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _warmup_cosine(cfg.epochs * steps_per_epoch,
                                           int(round(cfg.warmup_epochs * steps_per_epoch))))

    # ------------------------------------------------------------------------ hooks
    def register(self, hooks: Sequence[HookBase | None]) -> None:
        """Add hooks (None entries are skipped), to run after those registered before."""
        for h in hooks:
            if h is not None:
                h.trainer = self
                self.hooks.append(h)

    def request_stop(self) -> None:
        """End training after the current epoch (its record and checkpoint are written, so
        the run resumes from there)."""
        self._stop = True

    def _call(self, stage: str) -> None:
        for h in self.hooks:
            getattr(h, stage)()

    # ------------------------------------------------------------------------ start / resume
    def start(self, resume: bool) -> None:
        """Resume from the run folder's checkpoint (`resume` and one exists), else begin at
        epoch 0; then, under torchrun, wrap the model in DDP (a collective: every rank)."""
        if resume and self.ckpt_path.is_file():
            self.resume(load_checkpoint(self.ckpt_path))
        elif self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            dev = self.device
            self.net = DistributedDataParallel(
                self.model, device_ids=[dev.index] if dev.type == "cuda" else None)

    def resume(self, ckpt: dict) -> None:
        """Restore model, optimizer, schedule, this rank's RNG states, centres, the epoch and
        step counters and the records of the epochs done from a checkpoint of this run.

        Raises:
            ValueError: the checkpoint's fingerprint (config minus runtime fields, dataset,
                label state) differs from this run's; the message lists what differs.
        """
        diff = fingerprint_diff(ckpt.get("fingerprint", {}), self.fingerprint)
        if diff:
            raise ValueError(f"{self.ckpt_path} belongs to another run (differs in "
                             f"{', '.join(diff)}); use another run folder or resume=False")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"][min(self.rank, len(ckpt["rng"]) - 1)], self.dropout_gen)
        if self.centers is not None and ckpt.get("centers") is not None:
            self.centers.load_state_dict(ckpt["centers"])
        self.start_epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])
        self.resumed = True
        # Records newer than the checkpoint (a kill between the two writes) are dropped.
        self.records = [r for r in read_metrics(self.metrics_path)
                        if r.get("epoch", 0) < self.start_epoch]
        # Videos earlier epochs found unreadable stay out, as they did in the first process.
        known = unreadable_videos(self.records)
        self.bad.add_json("train", known)
        self.clips.exclude(list(known))
        if self.rank == 0:
            log.info("resuming %s at epoch %d/%d", self.run_dir, self.start_epoch + 1,
                     self.cfg.epochs)
            if known:
                log.warning("%s: %d unreadable video(s) stay out of training: %s", self.run_dir,
                            len(known), ", ".join(known))

    # ------------------------------------------------------------------------ the loop
    def train(self) -> None:
        """Train the epochs left (`start_epoch` to `cfg.epochs`), calling the hooks."""
        self._call("before_train")
        try:
            for epoch in range(self.start_epoch, self.cfg.epochs):
                self._run_epoch(epoch)
                if self._stop:
                    break
        finally:
            self._call("after_train")

    def _run_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.model.train()
        self.clips.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        self._sums: dict[str, float] = {}
        self._counted = self._skipped = 0
        self._found: dict[str, dict] = {}  # videos first found unreadable this epoch
        self._call("before_epoch")
        for batch in self._batches():
            self.last = self.run_step(batch)
            self._call("after_step")
        self.record = self._epoch_record(t0)
        self.records.append(self.record)
        self._call("after_epoch")
        if self.distributed:
            dist.barrier()

    def _batches(self) -> Iterator[dict]:
        """The epoch's batches, behind a progress bar (rank 0) showing the last taken loss."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        bar = tqdm(self.loader, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", unit="batch",
                   disable=not self.progress or self.rank != 0, leave=False)
        try:
            for batch in bar:
                yield batch
                if self.last is not None and self.last.taken:
                    bar.set_postfix(loss=f"{self.last.loss:.4f}")
        finally:
            bar.close()

    def run_step(self, batch: dict) -> StepResult:
        """One optimizer step on a collated `TrainClips` batch; a step whose loss or gradient
        is not finite is skipped (`cfg.max_nonfinite` in a row raise). The schedule counts
        every step, taken or skipped."""
        if batch["unreadable"] or batch["dropped"]:
            self._note_unreadable(batch)
        with autocast(self.device, self.cfg.amp):
            out = self.net(batch["clip"].to(self.device, non_blocking=True),
                           generator=self.dropout_gen)
            losses = compute_losses(self.cfg, out, batch, self.centers)
        loss = losses["loss"]
        if self.distributed and "cluster" not in losses:
            # Without the cluster loss the embedding head gets no gradient, and DDP waits
            # for every parameter's; a zero-weighted term gives it a zero gradient.
            loss = loss + 0.0 * out.emb.float().sum()
        self.optimizer.zero_grad(set_to_none=True)
        taken = self._backward(loss)
        if taken:
            self.optimizer.step()
            self._count(losses)
        else:
            self._skip(float(loss.detach()))
        with warnings.catch_warnings():
            # torch warns when the very first optimizer step was skipped.
            warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*")
            self.scheduler.step()
        self.step += 1
        return StepResult(taken, float(loss.detach()), losses, out.emb.detach())

    def _backward(self, loss: torch.Tensor) -> bool:
        """Backward and gradient clipping; True when loss and gradient norm are finite (on
        every rank under DDP)."""
        ok = bool(torch.isfinite(loss))
        if ok or self.distributed:
            # Under DDP every rank must run backward (its all-reduce); a non-finite loss on
            # one rank then makes every rank's gradient norm non-finite, so all skip.
            loss.backward()
            # max_norm = inf measures the norm without clipping (non-finite gradients).
            clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            ok = ok and bool(torch.isfinite(norm))
        if self.distributed:
            # Every rank must take (or skip) the step together.
            flag = torch.tensor([float(ok)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            ok = bool(flag.item())
        return ok

    def _count(self, losses: dict[str, torch.Tensor]) -> None:
        self.nonfinite = 0
        self._counted += 1
        for k in ("loss", "cls", "loc", "cluster"):
            if k in losses:
                self._sums[k] = self._sums.get(k, 0.0) + float(losses[k].detach())

    def _skip(self, loss: float) -> None:
        """The non-finite policy: drop the gradients, warn, and raise after
        `cfg.max_nonfinite` consecutive skipped steps."""
        self.optimizer.zero_grad(set_to_none=True)
        self.nonfinite += 1
        self._skipped += 1
        epoch = self.epoch
        warnings.warn(f"epoch {epoch + 1} step {self.step + 1}: non-finite loss or gradient "
                      f"(loss={loss}); step skipped ({self.nonfinite} in a row)",
                      RuntimeWarning, stacklevel=3)
        if self.nonfinite >= self.cfg.max_nonfinite:
            last = (f"the last good checkpoint is {self.ckpt_path} (after epoch {epoch})"
                    if self.ckpt_path.is_file() else "no checkpoint was written yet")
            raise NonFiniteLossError(
                f"{self.run_dir}: training aborted after {self.nonfinite} consecutive steps "
                f"with a non-finite loss or gradient (epoch {epoch + 1}, step {self.step + 1}); "
                f"lower the learning rate (--lr {self.cfg.lr}), keep --grad-clip > 0, or "
                f"check the inputs; {last}")

    def _note_unreadable(self, batch: dict) -> None:
        """Record the batch's unreadable videos (warned once each) and leave them out of the
        next epochs; a batch without a single readable clip means none is left."""
        for f in batch["unreadable"]:
            if self.bad.add(f["video"], "train", f["reason"], f["file"]):
                self._found[f["video"]] = {"file": f["file"], "reason": f["reason"]}
            self.clips.exclude([f["index"]])
        if batch["dropped"]:
            raise self.bad.none_left(
                f"the {len(self.clips.videos)} labelled training videos")

    def _share_unreadable(self) -> None:
        """Under DDP, every rank leaves out the videos any rank found unreadable (the same
        clips next epoch, the same record), and the share is checked on all of them alike."""
        if not self.distributed:
            return
        for part in all_gather_objects(self._found):
            for name, e in part.items():
                self._found.setdefault(name, e)
        self.bad.add_json("train", self._found)
        self.clips.exclude(list(self._found))

    def _epoch_record(self, t0: float) -> dict:
        """The epoch's record: epoch, step, lr, skipped steps, seconds, the mean losses over
        the steps taken (over all ranks) and the videos first found unreadable. Under DDP it
        first averages BatchNorm statistics over ranks (replicas identical again)."""
        average_buffers(self.model)
        self._share_unreadable()
        record = {"epoch": self.epoch, "step": self.step,
                  "lr": self.optimizer.param_groups[0]["lr"], "skipped": self._skipped,
                  "seconds": round(time.perf_counter() - t0, 3)}
        record.update({k: mean_over_ranks(v, self._counted, self.device)
                       for k, v in self._sums.items()})
        if self._found:
            record["unreadable"] = dict(sorted(self._found.items()))
        return record
