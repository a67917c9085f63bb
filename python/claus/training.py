"""The fit loop: optimizer, schedule, AMP, DDP, checkpoints, resume, metrics log; evaluation.

    cfg = TrainConfig(epochs=2)
    model = fit(cfg, ds, LabelState.full(ds), "runs/demo")   # checkpoint.pt, metrics.jsonl
    results = evaluate(model, ds, cfg)                          # f-mAP@0.5, v-mAP@…, accuracy

Determinism: the model is initialised after `set_seed(cfg.seed)`; clip sampling and
augmentation derive from (seed, epoch, index) (`TrainClips`), the shuffle order from
(seed, epoch), dropout masks from a generator saved in the checkpoint. So on CPU a run resumed
from any epoch's checkpoint continues bit-identically to an uninterrupted one.

Distributed: under `torchrun` call `init_distributed()` first (the CLI does); `fit` then wraps
the model in DDP, shards clips with a `DistributedSampler` and only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from claus.data import LabelState, TrainClips, VideoDataset
from claus.data.clips import collate_clips
from claus.data.faults import DEFAULT_MAX_BAD_SHARE, BadVideos
from claus.eval.pipeline import CLASS_SCOPES, DetectionSettings, evaluate_split
from claus.io import atomic_torch_save, atomic_write_text
from claus.losses import bce_dice_loss, classification_loss, stew_loss
from claus.models import build_model

log = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT",
    "METRICS",
    "LOC_LOSSES",
    "NonFiniteLossError",
    "RUNTIME_FIELDS",
    "TRAIN_HELP",
    "TrainConfig",
    "compute_losses",
    "evaluate",
    "fit",
    "init_distributed",
    "load_checkpoint",
    "load_checkpoint_model",
    "read_metrics",
    "make_generator",
    "unreadable_videos",
    "resolve_device",
    "set_seed",
]

#: One line of help per TrainConfig field: the flags' help and the configuration reference.
TRAIN_HELP = {
    "model": "detector: tiny (trains from scratch on a CPU) or i3d (Kinetics-pretrained I3D)",
    "weights": "local pretrained weights file (i3d: pytorch-i3d rgb_imagenet.pt / rgb_charades.pt)",
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
    "max_bad_share": "unreadable videos (missing or truncated frames) are left out and named; "
    "stop only when more than this share of the dataset's videos are",
    "fg_threshold": "foreground probability threshold of detections",
    "min_area": "smallest foreground region kept (pixels)",
    "nms_iou": "tube NMS IoU",
    "class_scope": "detections take the frame's class (frame) or the video's (video)",
}

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
LOC_LOSSES = ("stew", "bce_dice")


@dataclass
class TrainConfig:
    """Everything that shapes a training run (YAML / CLI overrides map onto these fields).

    Model: `model` ("tiny" | "i3d"), `weights` (local pretrained file or None).
    Optimisation: AdamW (`lr`, `weight_decay`; no decay on biases and norms), a linear warm-up
    over `warmup_epochs` then a cosine decay to 0, gradient-norm clipping at `grad_clip`
    (0 = off); `epochs` passes over `clips_per_video` clips per labelled video, raised so an
    epoch has at least `min_clips_per_epoch` clips (0 = off) when few videos are labelled;
    `balance_classes` spreads an epoch's clips evenly over the labelled videos' classes (rare
    classes are seen as often as frequent ones; see `TrainClips`).
    Clips: `T` frames `stride` apart at side `size` (None: the dataset's / store's size);
    `augment` (crop + flip) with `color_jitter` (per-channel gain/offset strength) and
    `channel_shuffle` (random RGB order) where colour carries no class information.
    Losses: `cls_weight`·CE (over clips showing an actor only with `cls_on_action`: a clip
    outside the action has no evidence of its class) + `loc_weight`·localization (`loc_loss`
    "stew", or "bce_dice": plain BCE + Dice on the same pseudo-labels, every pixel weighted 1)
    + the cluster loss with weight `beta` (> 0 needs `centers` in `fit`); `stew_*` and
    `dice_weight` configure STeW.
    Runtime: `amp` (bf16 autocast, CUDA only), `workers` (DataLoader processes), `seed`,
    `device` ("auto" = CUDA when available), `eval_every` (evaluate every N epochs during `fit`;
    0 = never), `max_nonfinite` (consecutive non-finite losses before aborting),
    `max_bad_share` (videos whose frames cannot be read are left out of each stage and named;
    a run stops only when more than this share of the dataset's videos are, see
    `claus.data.faults`).
    Evaluation: `eval_batch_size` and the detection settings (`fg_threshold`, `min_area`,
    `nms_iou`, `class_scope`, see `claus.eval.pipeline.DetectionSettings`).
    """

    model: str = "tiny"
    weights: str | None = None
    epochs: int = 28
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    grad_clip: float = 5.0
    clips_per_video: int = 2
    min_clips_per_epoch: int = 320
    balance_classes: bool = False
    T: int = 16
    stride: int = 2
    size: int | None = None
    augment: bool = True
    color_jitter: float = 0.2
    channel_shuffle: bool = False
    loc_loss: str = "stew"
    loc_weight: float = 1.0
    cls_weight: float = 1.0
    label_smoothing: float = 0.0
    cls_on_action: bool = True
    stew_sigma: float = 4 / 3
    stew_radius: int = 4
    stew_window: int = 2
    dice_weight: float = 1.0
    beta: float = 0.0
    amp: bool = True
    workers: int = 0
    seed: int = 0
    device: str = "auto"
    eval_every: int = 0
    eval_batch_size: int = 32
    max_nonfinite: int = 5
    max_bad_share: float = DEFAULT_MAX_BAD_SHARE
    fg_threshold: float = 0.5
    min_area: int = 4
    nms_iou: float = 0.5
    class_scope: str = "frame"

    def __post_init__(self) -> None:
        def need(ok: bool, field: str, what: str) -> None:
            if not ok:
                flag = "--" + field.replace("_", "-")
                raise ValueError(f"{flag} (TrainConfig.{field}): {what}, got "
                                 f"{getattr(self, field)!r}")

        need(self.epochs >= 1, "epochs", "must be >= 1")
        need(self.batch_size >= 1, "batch_size", "must be >= 1")
        need(self.lr > 0, "lr", "must be > 0")
        need(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        need(self.warmup_epochs >= 0, "warmup_epochs", "must be >= 0")
        need(self.grad_clip >= 0, "grad_clip", "must be >= 0 (0 = off)")
        need(self.clips_per_video >= 1, "clips_per_video", "must be >= 1")
        need(self.min_clips_per_epoch >= 0, "min_clips_per_epoch", "must be >= 0 (0 = off)")
        need(self.T >= 1 and self.stride >= 1, "T", "T and stride must be >= 1")
        need(self.size is None or self.size >= 8, "size", "must be None or >= 8")
        need(self.loc_loss in LOC_LOSSES, "loc_loss", f"must be one of {LOC_LOSSES}")
        need(self.beta >= 0, "beta", "must be >= 0")
        need(self.workers >= 0, "workers", "must be >= 0")
        need(self.eval_every >= 0, "eval_every", "must be >= 0 (0 = never during fit)")
        need(self.max_nonfinite >= 1, "max_nonfinite", "must be >= 1")
        need(0 <= self.max_bad_share <= 1, "max_bad_share", "must be a share in [0, 1]")
        need(0 < self.fg_threshold < 1, "fg_threshold", "must lie in (0, 1)")
        need(self.class_scope in CLASS_SCOPES, "class_scope", f"must be one of {CLASS_SCOPES}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "config") -> TrainConfig:
        """Build from a mapping (a YAML/JSON file), converting types; unknown keys are errors
        naming `source` and listing the fields."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{source}: unknown training field(s) {', '.join(unknown)}; "
                             f"fields: {', '.join(known)}")
        kw = {k: _convert(known[k], v, source) for k, v in values.items()}
        return cls(**kw)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def detection_settings(self) -> DetectionSettings:
        return DetectionSettings(fg_threshold=self.fg_threshold, min_area=self.min_area,
                                 nms_iou=self.nms_iou, class_scope=self.class_scope)


def _convert(f: dataclasses.Field, value: Any, source: str) -> Any:
    """Coerce a YAML/CLI value to the field's type (`claus.config.convert`, the one rule)."""
    from .config import convert

    return convert(str(f.type), f.name, value, source)


#: Fields that change neither the trained weights nor the order of anything random: a
#: checkpoint written under other values still resumes.
RUNTIME_FIELDS = ("workers", "device", "eval_every", "eval_batch_size", "max_nonfinite",
                  "max_bad_share", "fg_threshold", "min_area", "nms_iou", "class_scope")


class NonFiniteLossError(ValueError):
    """Raised after `max_nonfinite` consecutive steps with a non-finite loss or gradient."""


# ---------------------------------------------------------------------------- seeding, devices
def set_seed(seed: int) -> None:
    """Seed torch's own RNGs (CPU and CUDA); used before model initialisation."""
    torch.manual_seed(seed)


def make_generator(seed: int, *keys: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator seeded from (seed, *keys) through NumPy's SeedSequence, so streams for
    different purposes (dropout, rank, epoch) are independent."""
    ss = np.random.SeedSequence([int(seed), *[int(k) for k in keys]])
    return torch.Generator(device=device).manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" → the local CUDA device when available (LOCAL_RANK under torchrun), else CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return dev


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def init_distributed() -> bool:
    """Join the process group when launched by `torchrun` (WORLD_SIZE > 1 in the environment).

    NCCL when CUDA is available, gloo otherwise. Returns True when running distributed.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return True


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


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


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


# ---------------------------------------------------------------------------- run folder
def _fingerprint(cfg: TrainConfig, dataset: VideoDataset, labels: LabelState) -> dict:
    """What a checkpoint must agree on to be resumed: the config (minus runtime fields), the
    dataset and a hash of the label state."""
    conf = {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_FIELDS}
    blob = json.dumps(labels.to_json(), sort_keys=True).encode()
    return {"config": conf, "dataset": dataset.name,
            "labels": hashlib.sha256(blob).hexdigest()[:16]}


def _fingerprint_diff(a: Mapping, b: Mapping) -> list[str]:
    diff = []
    for key in ("dataset", "labels"):
        if a.get(key) != b.get(key):
            diff.append(key)
    # A field added since a checkpoint was written counts as its default there.
    default = TrainConfig().to_dict()
    ca, cb = a.get("config", {}), b.get("config", {})
    diff += [f"config.{k}" for k in sorted(set(ca) | set(cb))
             if ca.get(k, default.get(k)) != cb.get(k, default.get(k))]
    return diff


def _write_metrics(path: Path, records: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in records))


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a metrics.jsonl file (empty when absent)."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); the metrics file is "
                         "damaged, restore it or delete it to have it rewritten") from None
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not a JSON line ({exc.msg}); the metrics file "
                                 "is damaged, restore it or delete it to have it "
                                 "rewritten") from None
    return out


def load_checkpoint(path: str | Path) -> dict:
    """A claus checkpoint, read with `torch.load(weights_only=True)`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != "claus.checkpoint":
        raise ValueError(f"{path} is not a claus checkpoint (no 'format': 'claus.checkpoint')")
    return ckpt


def load_checkpoint_model(path: str | Path) -> tuple[torch.nn.Module, TrainConfig, dict]:
    """Rebuild the model of a checkpoint: (model on CPU in eval mode, its TrainConfig, the
    checkpoint dict)."""
    ckpt = load_checkpoint(path)
    cfg = TrainConfig.from_dict(ckpt["config"], source=str(path))
    model = build_model(cfg.model, ckpt["num_classes"])
    model.load_state_dict(ckpt["model"])
    return model.eval(), cfg, ckpt


def _rng_state(dropout_gen: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "dropout": dropout_gen.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping, dropout_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    dropout_gen.set_state(state["dropout"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------- fit
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
) -> torch.nn.Module:
    """Train a detector on the (pseudo-)labels of a label state.

    Each epoch draws `cfg.clips_per_video` clips per labelled video (`TrainClips`, centred on a
    random labelled frame, pseudo-masks interpolated between labels), shuffled by (seed,
    epoch). After every epoch `run_dir/checkpoint.pt` (model, optimizer, scheduler, RNG states,
    centres, epoch) is written atomically and a record appended to `run_dir/metrics.jsonl`
    (epoch, step, mean losses, lr, skipped steps, seconds); with `evaluate_every` and
    `cfg.eval_every > 0`, every `eval_every`-th epoch is also evaluated on the "test" split
    (a record with "split": "test").

    A labelled video whose frames cannot be read (`claus.data.faults`) is left out: its clips
    are made from other labelled videos, a warning names it once, later epochs do not read it
    again, and the epoch's record lists it under "unreadable" ({video: {"file", "reason"}}),
    which is also how a resumed run knows it. More than `cfg.max_bad_share` of the dataset's
    videos unreadable, or no labelled video left, ends the run (`TooManyBadVideos`).

    Args:
        cfg: the training configuration.
        dataset: the dataset (its "train" videos that `labels` labels are used).
        labels: which frames carry labels.
        run_dir: folder for the checkpoint and metrics (created).
        model: a model to train (e.g. a warm start); default `build_model(cfg.model, C,
            weights=cfg.weights)` after `set_seed(cfg.seed)`.
        centers: cluster centres for `cfg.beta > 0`: `claus.cluster.OnlineCenters` (updated in
            place) or a (K,D) tensor of initial centres.
        resume: continue from `run_dir/checkpoint.pt` when it was written for the same config
            (minus runtime fields), dataset and label state; a checkpoint of another run is an
            error listing what differs (pass resume=False to start over). A finished run
            returns its model without training.
        progress: tqdm bars (rank 0 only).
        evaluate_every: evaluate during training as `cfg.eval_every` says.
        on_epoch_end: called as `on_epoch_end(epoch, record)` after each epoch's checkpoint
            (0-based epoch; rank 0 only).

    Returns:
        The trained model (unwrapped from DDP), in train mode, on the training device.

    Raises:
        NonFiniteLossError: `cfg.max_nonfinite` consecutive non-finite losses or gradients.
        TooManyBadVideos: too many unreadable videos (see above).
        ValueError: a checkpoint of another run in `run_dir`, or `beta > 0` without centres.
    """
    if cfg.beta > 0 and centers is None:
        raise ValueError("TrainConfig.beta > 0 needs cluster centres: pass centers= to fit()")
    loop = _FitLoop(cfg, dataset, labels, Path(run_dir), model, centers, progress)
    loop.start(resume)
    loop.run(evaluate_every, on_epoch_end)
    return loop.model


def unreadable_videos(records: list[dict]) -> dict[str, dict]:
    """{video: {"file", "reason"}} that training left out, from its metrics records."""
    out: dict[str, dict] = {}
    for r in records:
        for name, e in (r.get("unreadable") or {}).items():
            out.setdefault(name, e)
    return out


class _FitLoop:
    """The state of one `fit` call: `start` builds or resumes it, `run` trains the epochs
    (`_step` one batch, `_finish_epoch` the record and checkpoint)."""

    def __init__(self, cfg: TrainConfig, dataset: VideoDataset, labels: LabelState,
                 run_dir: Path, model: torch.nn.Module | None, centers, progress: bool):
        self.cfg, self.dataset, self.labels, self.run_dir = cfg, dataset, labels, run_dir
        self.progress = progress
        self.rank, self.distributed = _rank(), _distributed()
        world = dist.get_world_size() if self.distributed else 1
        self.device = device = resolve_device(cfg.device)
        if model is None:
            set_seed(cfg.seed)
            model = build_model(cfg.model, dataset.num_classes, weights=cfg.weights)
        self.model = model.to(device)
        self.centers = _as_centers(centers, device) if centers is not None else None
        per_video = cfg.clips_per_video
        if cfg.min_clips_per_epoch:
            # Few labelled videos (early active-learning rounds) still get a full training run.
            n_videos = max(1, len(labels.labelled_videos()))
            per_video = max(per_video, math.ceil(cfg.min_clips_per_epoch / n_videos))
        self.clips = TrainClips(dataset, labels, T=cfg.T, stride=cfg.stride, size=cfg.size,
                                augment=cfg.augment, clips_per_video=per_video, seed=cfg.seed,
                                color_jitter=cfg.color_jitter,
                                channel_shuffle=cfg.channel_shuffle,
                                balance=cfg.balance_classes, skip_unreadable=True)
        # One sampler for both cases: with a single replica it is a seeded shuffle by epoch.
        self.sampler = DistributedSampler(self.clips, num_replicas=world, rank=self.rank,
                                          shuffle=True, seed=cfg.seed, drop_last=False)
        self.loader = DataLoader(self.clips, batch_size=cfg.batch_size, sampler=self.sampler,
                                 num_workers=cfg.workers, pin_memory=device.type == "cuda",
                                 persistent_workers=False, collate_fn=collate_clips)
        steps_per_epoch = len(self.loader)
        self.optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _warmup_cosine(cfg.epochs * steps_per_epoch,
                                           int(round(cfg.warmup_epochs * steps_per_epoch))))
        self.dropout_gen = make_generator(cfg.seed, 1, self.rank)
        self.bad = BadVideos.of(dataset, cfg.max_bad_share)
        self.ckpt_path, self.metrics_path = run_dir / CHECKPOINT, run_dir / METRICS
        self.fingerprint = _fingerprint(cfg, dataset, labels)
        self.start_epoch, self.step = 0, 0
        self.records: list[dict] = []
        self.nonfinite = 0
        self.net: torch.nn.Module = model
        self.tb = None

    def start(self, resume: bool) -> None:
        """Resume from the run folder's checkpoint, or start a fresh metrics file."""
        if resume and self.ckpt_path.is_file():
            self._resume(load_checkpoint(self.ckpt_path))
        elif self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            _write_metrics(self.metrics_path, [])
        self.tb = _tensorboard(self.run_dir) if self.rank == 0 else None
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            dev = self.device
            self.net = DistributedDataParallel(
                self.model, device_ids=[dev.index] if dev.type == "cuda" else None)

    def _resume(self, ckpt: dict) -> None:
        diff = _fingerprint_diff(ckpt.get("fingerprint", {}), self.fingerprint)
        if diff:
            raise ValueError(f"{self.ckpt_path} belongs to another run (differs in "
                             f"{', '.join(diff)}); use another run folder or resume=False")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"][min(self.rank, len(ckpt["rng"]) - 1)], self.dropout_gen)
        if self.centers is not None and ckpt.get("centers") is not None:
            self.centers.load_state_dict(ckpt["centers"])
        self.start_epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])
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

    def run(self, evaluate_every: bool, on_epoch_end: Callable[[int, dict], None] | None
            ) -> None:
        from tqdm.auto import tqdm

        cfg = self.cfg
        for epoch in range(self.start_epoch, cfg.epochs):
            self.model.train()
            self.clips.set_epoch(epoch)
            self.sampler.set_epoch(epoch)
            t0 = time.perf_counter()
            self.sums: dict[str, float] = {}
            self.counted = self.skipped = 0
            self.found: dict[str, dict] = {}  # videos first found unreadable this epoch
            bar = tqdm(self.loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                       disable=not self.progress or self.rank != 0, leave=False)
            for batch in bar:
                self._step(epoch, batch, bar)
            bar.close()
            self._finish_epoch(epoch, t0, evaluate_every, on_epoch_end)
        if self.tb is not None:
            self.tb.close()

    def _note_unreadable(self, batch: dict) -> None:
        """Record the batch's unreadable videos (warned once each) and leave them out of the
        next epochs; a batch without a single readable clip means none is left."""
        for f in batch["unreadable"]:
            if self.bad.add(f["video"], "train", f["reason"], f["file"]):
                self.found[f["video"]] = {"file": f["file"], "reason": f["reason"]}
            self.clips.exclude([f["index"]])
        if batch["dropped"]:
            raise self.bad.none_left(
                f"the {len(self.clips.videos)} labelled training videos")

    def _step(self, epoch: int, batch: dict, bar) -> None:
        """One optimizer step on a batch (skipped when its loss or gradient is not finite)."""
        cfg, device, model = self.cfg, self.device, self.model
        if batch["unreadable"] or batch["dropped"]:
            self._note_unreadable(batch)
        clip = batch["clip"].to(device, non_blocking=True)
        with _autocast(device, cfg.amp):
            out = self.net(clip, generator=self.dropout_gen)
            losses = compute_losses(cfg, out, batch, self.centers)
        loss = losses["loss"]
        if self.distributed and "cluster" not in losses:
            # Without the cluster loss the embedding head gets no gradient, and DDP waits
            # for every parameter's; a zero-weighted term gives it a zero gradient.
            loss = loss + 0.0 * out.emb.float().sum()
        self.optimizer.zero_grad(set_to_none=True)
        ok = bool(torch.isfinite(loss))
        if ok or self.distributed:
            # Under DDP every rank must run backward (its all-reduce); a non-finite loss on
            # one rank then makes every rank's gradient norm non-finite, so all skip.
            loss.backward()
            # max_norm = inf measures the norm without clipping (non-finite gradients).
            norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
            ok = ok and bool(torch.isfinite(norm))
        if self.distributed:
            # Every rank must take (or skip) the step together.
            flag = torch.tensor([float(ok)], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            ok = bool(flag.item())
        if ok:
            self.optimizer.step()
            if self.centers is not None:
                _update_centers(self.centers, out.emb.detach().float(), losses["assign"])
            self.nonfinite = 0
            self.counted += 1
            for k in ("loss", "cls", "loc", "cluster"):
                if k in losses:
                    self.sums[k] = self.sums.get(k, 0.0) + float(losses[k].detach())
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        else:
            self._skip_step(epoch, float(loss.detach()))
        with warnings.catch_warnings():
            # The schedule counts steps, taken or skipped; torch warns when the very
            # first optimizer step was skipped.
            warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*")
            self.scheduler.step()
        self.step += 1

    def _skip_step(self, epoch: int, loss: float) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.nonfinite += 1
        self.skipped += 1
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

    def _share_unreadable(self) -> None:
        """Under DDP, every rank leaves out the videos any rank found unreadable (the same
        clips next epoch, the same record), and the share is checked on all of them alike."""
        if not self.distributed:
            return
        parts: list = [None] * dist.get_world_size()
        dist.all_gather_object(parts, self.found)
        for part in parts:
            for name, e in part.items():
                self.found.setdefault(name, e)
        self.bad.add_json("train", self.found)
        self.clips.exclude(list(self.found))

    def _finish_epoch(self, epoch: int, t0: float, evaluate_every: bool,
                      on_epoch_end: Callable[[int, dict], None] | None) -> None:
        cfg, model, rank = self.cfg, self.model, self.rank
        if self.distributed:
            _average_buffers(model)
        self._share_unreadable()
        record = {"epoch": epoch, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
                  "skipped": self.skipped, "seconds": round(time.perf_counter() - t0, 3)}
        record.update({k: _mean_over_ranks(v, self.counted, self.device, self.distributed)
                       for k, v in self.sums.items()})
        if self.found:
            record["unreadable"] = dict(sorted(self.found.items()))
        self.records.append(record)
        if evaluate_every and cfg.eval_every > 0 and (epoch + 1) % cfg.eval_every == 0:
            if rank == 0:
                res = evaluate(model, self.dataset, cfg, "test", progress=self.progress)
                self.records.append({"epoch": epoch, "step": self.step, **_scalars(res)})
            if self.distributed:
                dist.barrier()
        rng_states = _gather_rng(self.dropout_gen, self.distributed)
        if rank == 0:
            _write_metrics(self.metrics_path, self.records)
            atomic_torch_save(self.ckpt_path, {
                "format": "claus.checkpoint", "version": 1,
                "config": cfg.to_dict(), "fingerprint": self.fingerprint,
                "num_classes": self.dataset.num_classes, "classes": list(self.dataset.classes),
                "epoch": epoch + 1, "step": self.step,
                "model": model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "rng": rng_states,
                "centers": self.centers.state_dict() if self.centers is not None else None,
            })
            self._tensorboard(epoch)
            if on_epoch_end is not None:
                on_epoch_end(epoch, record)
        if self.distributed:
            dist.barrier()

    def _tensorboard(self, epoch: int) -> None:
        if self.tb is None:
            return
        for r in self.records[-2:]:
            if r["epoch"] == epoch:
                for k, v in r.items():
                    if k not in ("epoch", "step") and isinstance(v, (int, float)):
                        self.tb.add_scalar(("test/" if "split" in r else "train/") + k, v,
                                           epoch + 1)
        self.tb.flush()


def _average_buffers(model: torch.nn.Module) -> None:
    """Average floating buffers (BatchNorm running statistics) over ranks.

    DDP keeps parameters identical but lets each rank's running statistics follow its own
    shard of the data after the last broadcast; averaging them at the end of every epoch makes
    the checkpoint reflect all shards and the replicas identical again.
    """
    world = dist.get_world_size()
    for buf in model.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf)
            buf.div_(world)


def _update_centers(centers, emb: torch.Tensor, assign: torch.Tensor) -> None:
    # Every rank must move its centres by the same samples, or they drift apart.
    if _distributed():
        world = dist.get_world_size()
        embs = [torch.empty_like(emb) for _ in range(world)]
        assigns = [torch.empty_like(assign) for _ in range(world)]
        dist.all_gather(embs, emb.contiguous())
        dist.all_gather(assigns, assign.contiguous())
        emb, assign = torch.cat(embs), torch.cat(assigns)
    centers.update(emb, assign)


def _mean_over_ranks(total: float, count: int, device: torch.device, distributed: bool) -> float:
    if distributed:
        t = torch.tensor([total, float(count)], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        total, count = float(t[0]), int(t[1])
    return total / count if count else float("nan")


def _gather_rng(dropout_gen: torch.Generator, distributed: bool) -> list[dict]:
    """RNG states of every rank (rank order), so each resumes its own dropout stream."""
    state = _rng_state(dropout_gen)
    if not distributed:
        return [state]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, state)
    return out


def _scalars(res: Mapping) -> dict:
    return {k: v for k, v in res.items() if isinstance(v, (int, float, str)) or v is None}


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: metrics.jsonl is the record
        log.debug("tensorboard not installed; logging to metrics.jsonl only")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


# ---------------------------------------------------------------------------- evaluate
def evaluate(model: torch.nn.Module, dataset: VideoDataset, cfg: TrainConfig,
             split: str = "test", *, protocol: str = "act", progress: bool = True) -> dict:
    """Evaluate a detector on a split with the clip layout and thresholds of `cfg`.

    Sliding clips → per-frame probabilities → detections → tubes → metrics; see
    `claus.eval.pipeline.evaluate_split`.

    Returns:
        JSON-ready dict with at least "f-mAP@0.5", "v-mAP@0.1", "v-mAP@0.2", "v-mAP@0.3",
        "v-mAP@0.5", "v-mAP@0.5:0.95" (act protocol) and "accuracy", in percent (None where
        undefined), plus "per_class", "videos", "frames", "seconds", and "skipped" ({video:
        {"file", "reason"}}) when videos could not be read (left out, `cfg.max_bad_share`).
    """
    device = resolve_device(cfg.device)
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = model.module
    model.to(device)
    return evaluate_split(model, dataset, split, protocol=protocol, T=cfg.T, stride=cfg.stride,
                          size=cfg.size, batch_size=cfg.eval_batch_size, device=device,
                          workers=cfg.workers, amp=cfg.amp,
                          settings=cfg.detection_settings(), progress=progress,
                          bad=BadVideos.of(dataset, cfg.max_bad_share))
