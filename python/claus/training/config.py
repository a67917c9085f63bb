"""The training configuration: one typed dataclass whose fields become the CLI flags and the
config-file keys (`claus.config`), with one line of help each (`TRAIN_HELP`).

    cfg = TrainConfig(epochs=2, T=8)
    cfg.geometry             # ClipGeometry(T=8, stride=2, size=None): every stage's clip layout
    cfg.replace(lr=1e-3)     # checked like a new config
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from claus.conversion import convert
from claus.data.faults import DEFAULT_MAX_BAD_SHARE
from claus.data.geometry import ClipGeometry
from claus.eval.settings import CLASS_SCOPES, DetectionSettings

__all__ = ["LOC_LOSSES", "RUNTIME_FIELDS", "TRAIN_HELP", "TrainConfig"]

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
        """A copy with `changes` applied (checked like a new config)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (what checkpoints and config files hold)."""
        return asdict(self)

    @property
    def geometry(self) -> ClipGeometry:
        """The clip layout (`T`, `stride`, `size`) every stage of a run uses: training clips,
        evaluation, pool scoring, pictures. Its defaults are this config's."""
        return ClipGeometry(self.T, self.stride, self.size)

    def detection_settings(self) -> DetectionSettings:
        """The evaluation's detection thresholds (`claus.eval.pipeline.DetectionSettings`)."""
        return DetectionSettings(fg_threshold=self.fg_threshold, min_area=self.min_area,
                                 nms_iou=self.nms_iou, class_scope=self.class_scope)


def _convert(f: dataclasses.Field, value: Any, source: str) -> Any:
    """Coerce a YAML/CLI value to the field's type (`claus.conversion.convert`, the one rule)."""
    return convert(str(f.type), f.name, value, source)


#: Fields that change neither the trained weights nor the order of anything random: a
#: checkpoint written under other values still resumes.
RUNTIME_FIELDS = ("workers", "device", "eval_every", "eval_batch_size", "max_nonfinite",
                  "max_bad_share", "fg_threshold", "min_area", "nms_iou", "class_scope")
