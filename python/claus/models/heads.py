"""The three detection heads shared by every backbone, with MC dropout confined to them.

A backbone hands over multi-scale features once. `DetectionHeads.prepare` runs everything that
does not depend on dropout, once: a top-down decoder (the "neck") that brings the features to
the finest level and its per-pixel hidden layer, the pooled clip vector and the embedding.
`DetectionHeads.decode` runs the stochastic part, the output layers behind dropout, for R
dropout passes in one batched call: the passes are stacked in the batch dimension.

Keeping the stochastic part small is the point: MC-dropout scoring of an unlabelled pool costs
one backbone + neck pass and R cheap head passes per clip, instead of R whole-network passes.

Dropout masks are explicit tensors (`sample_masks`), drawn from a caller's generator. That makes
a batched MC call reproducible and lets a test replay any single pass with the very same masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class HeadInputs:
    """What the heads need from one backbone pass (all deterministic).

    Attributes:
        hidden: (B,D_0,t_0,h_0,w_0) per-pixel hidden features of the localization head at the
            finest level (input of its dropout and output layer).
        pooled: (B,P) the pooled coarsest backbone map (classifier input): its global average
            (P = C_L), or average and maximum side by side (P = 2·C_L, `pool="avgmax"`), or
            those and the actor-weighted average (P = 3·C_L, `pool="actor"`).
        emb: (B,E) clip embedding (no dropout: it feeds clustering, which wants it stable).
        out_size: (T,H,W) of the input clip: localization logits are returned at this size.
    """

    hidden: torch.Tensor
    pooled: torch.Tensor
    emb: torch.Tensor
    out_size: tuple[int, int, int]


POOLS = ("avg", "avgmax", "actor")


def _same_3d(kernel: Sequence[int]) -> tuple[int, int, int]:
    return tuple(k // 2 for k in kernel)  # type: ignore[return-value]


class DetectionHeads(nn.Module):
    """Localization, classification and embedding heads over multi-scale 3D features.

    Neck (deterministic): a top-down decoder (FPN-like, additive skips). The coarsest map is
    projected by a 1×1×1 convolution; at every finer level the running map is projected to that
    level's width, upsampled (trilinear) to the level's (t,h,w), added to the 1×1×1 projection
    of the level's backbone feature, and fused by a 3D convolution + ReLU.

    Localization head: 1×1×1 conv → ReLU (deterministic, in `prepare`) → dropout → 1×1×1 conv
    giving an s×s block of foreground logits per voxel of the finest level (`out_stride` s,
    sub-pixel convolution), interpolated (trilinear) to the input clip's (T,H,W) where sizes
    still differ (temporal stride, odd sizes). Only the last layer sees dropout: per-pixel masks
    at the finest level are the largest tensors of an MC pass, and one site keeps the R passes
    a small fraction of a forward pass.

    Classification head (stochastic): dropout → linear → ReLU → dropout → linear on the pooled
    coarsest map. Embedding head (deterministic): linear on the same pooled vector. Pooling
    `"avg"` averages over (t,h,w); `"avgmax"` also keeps the maximum, which lets a small actor's
    response stand out however many idle people and how much background share the frame;
    `"actor"` adds the average weighted by the localization head's own deterministic foreground
    probability (pooled to the coarsest map's grid, gradient stopped), so the classifier also
    reads the features of where the actor is rather than of the scene and the idle people.

    Args:
        in_channels: channels of the backbone's features, fine → coarse.
        num_classes: C, the number of action classes.
        emb_dim: D, embedding width.
        dec_channels: neck width per level, fine → coarse (same length as `in_channels`).
        fuse_kernels: kernel of the fusing convolution at each level except the coarsest, fine →
            coarse (length len(in_channels) - 1).
        cls_hidden: width of the classifier's hidden layer.
        p_loc: dropout probability before the localization output layer.
        p_cls: dropout probability before each layer of the classification head.
        fg_prior: initial foreground probability (sets the output bias so early training
            starts near the typical foreground fraction instead of at 0.5).
        out_stride: spatial stride s of the finest level relative to the input.
        pool: "avg", "avgmax" or "actor", how the coarsest map becomes the clip vector.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        emb_dim: int = 128,
        dec_channels: Sequence[int] | None = None,
        fuse_kernels: Sequence[Sequence[int]] | None = None,
        cls_hidden: int = 128,
        p_loc: float = 0.3,
        p_cls: float = 0.3,
        fg_prior: float = 0.05,
        out_stride: int = 1,
        pool: str = "avg",
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        self.pool = pool
        levels = len(in_channels)
        if levels < 1:
            raise ValueError("DetectionHeads needs at least one feature level")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        for name, p in (("p_loc", p_loc), ("p_cls", p_cls)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        if out_stride < 1:
            raise ValueError(f"out_stride must be >= 1, got {out_stride}")
        dec = (list(dec_channels) if dec_channels is not None
               else [max(8, c // 2) for c in in_channels])
        if len(dec) != levels:
            raise ValueError(f"dec_channels needs {levels} entries (one per level), got {len(dec)}")
        kernels = ([tuple(k) for k in fuse_kernels] if fuse_kernels is not None
                   else [(1, 3, 3)] * (levels - 1))
        if len(kernels) != levels - 1:
            raise ValueError(f"fuse_kernels needs {levels - 1} entries, got {len(kernels)}")

        self.in_channels = tuple(in_channels)
        self.num_classes = num_classes
        self.emb_dim = emb_dim
        self.out_stride = int(out_stride)
        self.p = {"loc": float(p_loc), "cls0": float(p_cls), "cls1": float(p_cls)}
        top = in_channels[-1]
        # Neck. Level i < L-1: lateral (backbone feature → width dec[i]); proj (coarser running
        # map → dec[i], applied before upsampling because it is cheaper there); fuse.
        self.top_proj = nn.Conv3d(top, dec[-1], 1)
        self.laterals = nn.ModuleList(nn.Conv3d(in_channels[i], dec[i], 1)
                                      for i in range(levels - 1))
        self.projs = nn.ModuleList(nn.Conv3d(dec[i + 1], dec[i], 1) for i in range(levels - 1))
        self.fuses = nn.ModuleList(
            nn.Conv3d(dec[i], dec[i], kernels[i], padding=_same_3d(kernels[i]))
            for i in range(levels - 1)
        )
        # Heads.
        self.loc_hidden = nn.Conv3d(dec[0], dec[0], 1)
        self.loc_out = nn.Conv3d(dec[0], self.out_stride**2, 1)
        pooled = top * {"avg": 1, "avgmax": 2, "actor": 3}[pool]
        self.cls_hidden = nn.Linear(pooled, cls_hidden)
        self.cls_out = nn.Linear(cls_hidden, num_classes)
        self.emb_out = nn.Linear(pooled, emb_dim)
        # The output layer keeps PyTorch's default (fan-in scaled) weights: a near-zero layer
        # (std 0.01 before) passes almost no localization gradient into the network, and the
        # demo's losses sat on a plateau for the first quarter of training until it had grown.
        nn.init.constant_(self.loc_out.bias, float(torch.logit(torch.tensor(fg_prior))))

    def prepare(self, feats: Sequence[torch.Tensor], out_size: Sequence[int]) -> HeadInputs:
        """Deterministic part: neck, localization hidden layer, pooling, embedding. Run once per
        backbone pass.

        Args:
            feats: backbone features fine → coarse, each (B,C_i,t_i,h_i,w_i), floating point.
            out_size: (T,H,W) of the input clip.
        """
        if len(feats) != len(self.in_channels):
            raise ValueError(f"expected {len(self.in_channels)} feature levels, got {len(feats)}")
        top = feats[-1]
        x = F.relu(self.top_proj(top))
        for i in range(len(self.laterals) - 1, -1, -1):
            lat = self.laterals[i](feats[i])
            x = self.projs[i](x)
            if tuple(x.shape[2:]) != tuple(lat.shape[2:]):
                x = F.interpolate(x, size=lat.shape[2:], mode="trilinear", align_corners=False)
            x = F.relu(self.fuses[i](x + lat))
        hidden = F.relu(self.loc_hidden(x))
        pooled = top.mean(dim=(2, 3, 4))
        if self.pool in ("avgmax", "actor"):
            pooled = torch.cat([pooled, top.amax(dim=(2, 3, 4))], dim=1)
        if self.pool == "actor":
            with torch.no_grad():
                # Foreground probability of each finest-level voxel (mean over its s×s
                # sub-pixels), averaged onto the coarsest grid.
                fg = torch.sigmoid(self.loc_out(hidden).float()).mean(dim=1, keepdim=True)
                w = F.adaptive_avg_pool3d(fg, top.shape[2:]).to(top.dtype)
            actor = (top * w).sum(dim=(2, 3, 4)) / w.sum(dim=(2, 3, 4)).clamp_min(1e-6)
            pooled = torch.cat([pooled, actor], dim=1)
        return HeadInputs(hidden=hidden, pooled=pooled,
                          emb=self.emb_out(pooled),
                          out_size=(int(out_size[0]), int(out_size[1]), int(out_size[2])))

    def mask_shapes(self, inputs: HeadInputs) -> dict[str, tuple[int, ...]]:
        """Shape (without the pass dimension) of the dropout mask at every site: "loc" before
        the localization output layer, "cls0", "cls1" before the two classifier layers."""
        pooled = inputs.pooled.shape
        return {
            "loc": tuple(inputs.hidden.shape),
            "cls0": tuple(pooled),
            "cls1": (pooled[0], self.cls_hidden.out_features),
        }

    def sample_masks(
        self, inputs: HeadInputs, passes: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Dropout masks for `passes` stochastic passes, already scaled by 1/(1-p).

        Returns:
            {site: (R, *shape)} for the sites of `mask_shapes`, in the features' dtype and
            device, entries 0 or 1/(1-p) (all ones where p = 0). Drawn site by site in the
            order of `mask_shapes`.
        """
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        ref = inputs.hidden
        masks = {}
        for site, shape in self.mask_shapes(inputs).items():
            keep = 1.0 - self.p[site]
            full = (passes, *shape)
            if keep == 1.0:
                masks[site] = torch.ones(full, dtype=ref.dtype, device=ref.device)
                continue
            # Drawn in float32 on the generator's device so that a seed gives the same masks
            # whatever the feature dtype.
            gen_device = generator.device if generator is not None else ref.device
            m = torch.empty(full, device=gen_device).bernoulli_(keep, generator=generator)
            masks[site] = m.mul_(1.0 / keep).to(device=ref.device, dtype=ref.dtype)
        return masks

    def decode(
        self, inputs: HeadInputs, masks: dict[str, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stochastic part of the heads for R passes in one batched call.

        Args:
            inputs: from `prepare`.
            masks: from `sample_masks` (R passes), or None for the deterministic heads (R = 1,
                no dropout).

        Returns:
            loc: (R,B,T,H,W) foreground logits at the input clip's size.
            cls: (R,B,C) class logits.
        """
        R = 1 if masks is None else masks["loc"].shape[0]

        def drop(x: torch.Tensor, site: str) -> torch.Tensor:
            # x: (R,B,...) → (R,B,...) with the site's mask applied.
            return x if masks is None else x * masks[site]

        x = drop(inputs.hidden.unsqueeze(0), "loc")
        loc = self.loc_out(x.flatten(0, 1))
        s = self.out_stride
        if s > 1:
            # (N,s·s,t,h,w) -> (N,1,t,h·s,w·s), channel dy·s + dx going to pixel (y·s+dy, x·s+dx).
            n, _, t, h, w = loc.shape
            loc = loc.reshape(n, s, s, t, h, w).permute(0, 3, 4, 1, 5, 2)
            loc = loc.reshape(n, 1, t, h * s, w * s)
        if tuple(loc.shape[2:]) != inputs.out_size:
            loc = F.interpolate(loc, size=inputs.out_size, mode="trilinear", align_corners=False)
        loc = loc.squeeze(1).unflatten(0, (R, -1))

        v = drop(inputs.pooled.unsqueeze(0).expand(R, *inputs.pooled.shape), "cls0")
        cls = self.cls_out(drop(F.relu(self.cls_hidden(v)), "cls1"))
        return loc, cls
