"""The detector: a backbone, the three heads, MC-dropout inference and weight loading."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from .heads import DetectionHeads, HeadInputs

log = logging.getLogger(__name__)


class DetectorOutput(NamedTuple):
    """One deterministic (or training) pass.

    loc: (B,T,H,W) foreground logits, one per pixel of every input frame.
    cls: (B,C) class logits.
    emb: (B,D) clip embedding.
    """

    loc: torch.Tensor
    cls: torch.Tensor
    emb: torch.Tensor


class MCOutput(NamedTuple):
    """R MC-dropout passes of the heads over one backbone pass.

    loc: (R,B,T,H,W) foreground logits.
    cls: (R,B,C) class logits.
    emb: (B,D) clip embedding (its head has no dropout, so it is the same for every pass).
    """

    loc: torch.Tensor
    cls: torch.Tensor
    emb: torch.Tensor


@dataclass
class LoadReport:
    """What `Detector.load_weights` did.

    loaded: checkpoint entries copied into the model.
    missing: model entries the checkpoint lacks (they keep their initial values).
    unexpected: checkpoint entries the model has no place for.
    skipped: checkpoint entries deliberately left out (layers beyond the backbone's cut).
    """

    path: str
    target: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f", ... ({len(keys)} in all)" if len(keys) > 5 else "")

        parts = [f"loaded {len(self.loaded)} tensors from {self.path} into the {self.target}"]
        if self.missing:
            parts.append(f"missing (left as initialized): {few(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected (ignored): {few(self.unexpected)}")
        if self.skipped:
            parts.append(f"{len(self.skipped)} beyond the backbone's cut (ignored)")
        return "; ".join(parts)


def normalize_clip(clip: torch.Tensor) -> torch.Tensor:
    """Map a clip to the [-1, 1] float range every backbone expects (the I3D convention).

    Args:
        clip: (B,3,T,H,W) uint8 in [0,255], or floating point in [0,1].

    Returns:
        (B,3,T,H,W) float32 (or the input's floating dtype) in [-1,1].
    """
    if clip.dim() != 5 or clip.shape[1] != 3:
        raise ValueError(f"expected a clip batch (B,3,T,H,W), got shape {tuple(clip.shape)}")
    if clip.dtype == torch.uint8:
        return clip.float() * (2.0 / 255.0) - 1.0
    if not clip.is_floating_point():
        raise ValueError(f"clip must be uint8 or floating point, got {clip.dtype}")
    return clip * 2.0 - 1.0


class Detector(nn.Module):
    """Backbone + localization, classification and embedding heads.

    MC dropout lives only in the heads (`DetectionHeads`), so `mc_forward` runs the backbone
    once and the heads R times in one batched call.

    Args:
        backbone: module mapping a normalized (B,3,T,H,W) clip to features fine → coarse, with
            a `channels` attribute listing their widths.
        heads: `DetectionHeads` built for those widths.
        name: registry name (kept for checkpoints and reports).
        skip_prefixes: checkpoint key prefixes of layers beyond the backbone's cut.
    """

    def __init__(self, backbone: nn.Module, heads: DetectionHeads, name: str = "",
                 skip_prefixes: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = heads
        self.name = name
        self.skip_prefixes = skip_prefixes

    @property
    def num_classes(self) -> int:
        return self.heads.num_classes

    def head_inputs(self, clip: torch.Tensor) -> HeadInputs:
        """Backbone pass plus the deterministic part of the heads, for callers that drive the
        heads themselves (`heads.sample_masks`, `heads.decode`)."""
        x = normalize_clip(clip)
        return self.heads.prepare(self.backbone(x), x.shape[2:])

    def forward(self, clip: torch.Tensor,
                generator: torch.Generator | None = None) -> DetectorOutput:
        """One pass; dropout is active in training mode only.

        Args:
            clip: (B,3,T,H,W) uint8 in [0,255] or float in [0,1].
            generator: source of the dropout masks in training mode (None: torch's default).

        Returns:
            DetectorOutput(loc (B,T,H,W), cls (B,C), emb (B,D)), in the compute dtype.
        """
        inputs = self.head_inputs(clip)
        masks = self.heads.sample_masks(inputs, 1, generator) if self.training else None
        loc, cls = self.heads.decode(inputs, masks)
        return DetectorOutput(loc[0], cls[0], inputs.emb)

    def mc_forward(self, clip: torch.Tensor, passes: int = 10,
                   generator: torch.Generator | None = None,
                   masks: dict[str, torch.Tensor] | None = None) -> MCOutput:
        """MC-dropout inference: the backbone once, the heads `passes` times in one batch.

        Dropout is applied whatever the module's mode; BatchNorm follows the mode, so call
        `model.eval()` first for scoring.

        Args:
            clip: (B,3,T,H,W) uint8 in [0,255] or float in [0,1].
            passes: R >= 1.
            generator: source of the dropout masks (None: torch's default generator).
            masks: explicit masks from `heads.sample_masks` (overrides passes and generator).

        Returns:
            MCOutput(loc (R,B,T,H,W), cls (R,B,C), emb (B,D)).
        """
        inputs = self.head_inputs(clip)
        if masks is None:
            masks = self.heads.sample_masks(inputs, passes, generator)
        loc, cls = self.heads.decode(inputs, masks)
        return MCOutput(loc, cls, inputs.emb)

    def load_weights(self, path: str | Path) -> LoadReport:
        """Load weights from a local file, by parameter name, reporting what did not fit.

        Accepts a backbone state dict (e.g. pytorch-i3d's `rgb_imagenet.pt`, optionally with a
        DataParallel `module.` prefix), a whole-detector state dict (keys `backbone.*`,
        `heads.*`), or a dict holding one of those under "model" or "state_dict" (claus
        checkpoints). Read with `torch.load(weights_only=True)`: no code from the file runs.

        Raises:
            FileNotFoundError: no such file.
            ValueError: unreadable file, no tensors, no key in common with the model, or a
                tensor whose shape differs from the model's (all listed).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} does not exist")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for corrupt or unsafe files
            raise ValueError(
                f"cannot read weights from {path}: {type(exc).__name__}: {exc}. Expected a "
                "PyTorch state dict saved with torch.save (only tensors and plain containers "
                "are accepted)."
            ) from exc
        state = _find_state_dict(obj, path)
        state = {_strip(k, "module."): v for k, v in state.items()}

        if any(k.startswith(("backbone.", "heads.")) for k in state):
            target, module = "detector", self
        else:
            target, module = "backbone", self.backbone
        own = module.state_dict()
        report = LoadReport(path=str(path), target=target)
        report.skipped = sorted(k for k in state if target == "backbone"
                                and k.split(".")[0] in self.skip_prefixes)
        candidates = {k: v for k, v in state.items() if k not in report.skipped}
        report.unexpected = sorted(k for k in candidates if k not in own)
        matching = {k: v for k, v in candidates.items() if k in own}
        if not matching:
            raise ValueError(
                f"weights in {path} do not fit the {self.name or 'model'} {target}: none of its "
                f"{len(state)} entries (e.g. {', '.join(sorted(state)[:3])}) matches a parameter "
                f"name (e.g. {', '.join(list(own)[:3])})"
            )
        bad = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
               for k, v in matching.items() if tuple(v.shape) != tuple(own[k].shape)]
        if bad:
            raise ValueError(f"weights in {path} are incompatible with the {self.name or 'model'} "
                             f"{target}: shape mismatch for " + "; ".join(bad[:10])
                             + (f" ... ({len(bad)} in all)" if len(bad) > 10 else ""))
        module.load_state_dict(matching, strict=False)
        report.loaded = sorted(matching)
        # Checkpoints written before PyTorch 0.4 have no BatchNorm step counters; their absence
        # changes nothing (momentum is fixed), so it is not worth a warning.
        report.missing = sorted(k for k in own if k not in matching
                                and not k.endswith("num_batches_tracked"))
        (log.warning if report.missing or report.unexpected else log.info)("%s", report.summary())
        return report


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


def _find_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        tensors = {k: v for k, v in obj.items() if isinstance(k, str) and torch.is_tensor(v)}
        if tensors:
            return tensors
    raise ValueError(f"weights file {path} holds no state dict of tensors "
                     f"(found {type(obj).__name__})")
