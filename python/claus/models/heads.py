"""The three detection heads shared by every backbone, with MC dropout confined to them.

A backbone hands over multi-scale features once; `DetectionHeads.prepare` computes everything
that does not depend on dropout (lateral projections of the skip features, the pooled vector,
the embedding) once, and `DetectionHeads.decode` runs the stochastic part for R dropout passes
in one batched call: the passes are stacked in the batch dimension and the deterministic skip
features are broadcast to them, never copied.

Dropout masks are explicit tensors (`sample_masks`), drawn from a caller's generator. That makes
a batched MC call reproducible and lets a test replay any single pass with the very same masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: Dropout sites of the heads: the coarsest feature map before the localization decoder, and the
#: pooled feature vector before the classifier.
MASK_SITES = ("loc", "cls")


@dataclass
class HeadInputs:
    """What the heads need from one backbone pass (all deterministic).

    Attributes:
        top: (B,C_L,t_L,h_L,w_L) the coarsest feature map (decoder input, before dropout).
        laterals: per finer level i (fine → coarse, excluding the coarsest), (B,D_i,t_i,h_i,w_i)
            the 1×1×1 projection of that level's skip feature.
        pooled: (B,C_L) global average of `top` (classifier input, before dropout).
        emb: (B,E) clip embedding (no dropout: it feeds clustering, which wants it stable).
        out_size: (T,H,W) of the input clip: localization logits are returned at this size.
    """

    top: torch.Tensor
    laterals: list[torch.Tensor]
    pooled: torch.Tensor
    emb: torch.Tensor
    out_size: tuple[int, int, int]


def _same_3d(kernel: Sequence[int]) -> tuple[int, int, int]:
    return tuple(k // 2 for k in kernel)  # type: ignore[return-value]


class DetectionHeads(nn.Module):
    """Localization decoder, classifier and embedding head over multi-scale 3D features.

    Localization is a top-down decoder (FPN-like, additive skips): the coarsest map goes through
    dropout and a 1×1×1 projection; at every finer level it is projected to that level's width,
    upsampled (trilinear) to the level's (t,h,w), added to the level's lateral projection and
    fused by a 3D convolution; a 1×1×1 convolution gives one foreground logit per voxel, upsampled
    to the input clip's (T,H,W) when the finest level is coarser.

    Args:
        in_channels: channels of the backbone's features, fine → coarse.
        num_classes: C, the number of action classes.
        emb_dim: D, embedding width.
        dec_channels: decoder width per level, fine → coarse (same length as `in_channels`).
        fuse_kernels: kernel of the fusing convolution at each level except the coarsest, fine →
            coarse (length len(in_channels) - 1).
        p_loc: dropout probability on the coarsest map before the localization decoder.
        p_cls: dropout probability on the pooled vector before the classifier.
        fg_prior: initial foreground probability (sets the output bias so early training
            starts near the typical foreground fraction instead of at 0.5).
        out_stride: spatial stride s of the finest level relative to the input. The output
            layer predicts s·s logits per voxel, rearranged into an s×s pixel block (sub-pixel
            convolution), so masks are sharp at input resolution without a decoder level there.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        emb_dim: int = 128,
        dec_channels: Sequence[int] | None = None,
        fuse_kernels: Sequence[Sequence[int]] | None = None,
        p_loc: float = 0.3,
        p_cls: float = 0.3,
        fg_prior: float = 0.05,
        out_stride: int = 1,
    ) -> None:
        super().__init__()
        levels = len(in_channels)
        if levels < 1:
            raise ValueError("DetectionHeads needs at least one feature level")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        for name, p in (("p_loc", p_loc), ("p_cls", p_cls)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        dec = (list(dec_channels) if dec_channels is not None
               else [max(8, c // 2) for c in in_channels])
        if len(dec) != levels:
            raise ValueError(f"dec_channels needs {levels} entries (one per level), got {len(dec)}")
        kernels = (
            [tuple(k) for k in fuse_kernels]
            if fuse_kernels is not None
            else [(1, 3, 3)] * (levels - 1)
        )
        if len(kernels) != levels - 1:
            raise ValueError(f"fuse_kernels needs {levels - 1} entries, got {len(kernels)}")

        self.in_channels = tuple(in_channels)
        self.num_classes = num_classes
        self.emb_dim = emb_dim
        self.p = {"loc": float(p_loc), "cls": float(p_cls)}
        top = in_channels[-1]
        self.top_proj = nn.Conv3d(top, dec[-1], 1)
        # Level i < L-1: lateral (skip projection, deterministic), proj (coarser decoder width →
        # this level's width, before upsampling because it is cheaper there), fuse.
        self.laterals = nn.ModuleList(nn.Conv3d(in_channels[i], dec[i], 1)
                                      for i in range(levels - 1))
        self.projs = nn.ModuleList(nn.Conv3d(dec[i + 1], dec[i], 1) for i in range(levels - 1))
        self.fuses = nn.ModuleList(
            nn.Conv3d(dec[i], dec[i], kernels[i], padding=_same_3d(kernels[i]))
            for i in range(levels - 1)
        )
        if out_stride < 1:
            raise ValueError(f"out_stride must be >= 1, got {out_stride}")
        self.out_stride = int(out_stride)
        self.loc_out = nn.Conv3d(dec[0], self.out_stride**2, 1)
        self.cls_out = nn.Linear(top, num_classes)
        self.emb_out = nn.Linear(top, emb_dim)
        nn.init.zeros_(self.loc_out.weight)
        nn.init.constant_(self.loc_out.bias, float(torch.logit(torch.tensor(fg_prior))))

    def prepare(self, feats: Sequence[torch.Tensor], out_size: Sequence[int]) -> HeadInputs:
        """Deterministic part of the heads, run once per backbone pass.

        Args:
            feats: backbone features fine → coarse, each (B,C_i,t_i,h_i,w_i), floating point.
            out_size: (T,H,W) of the input clip.
        """
        if len(feats) != len(self.in_channels):
            raise ValueError(f"expected {len(self.in_channels)} feature levels, got {len(feats)}")
        top = feats[-1]
        pooled = top.mean(dim=(2, 3, 4))
        return HeadInputs(
            top=top,
            laterals=[lat(f) for lat, f in zip(self.laterals, feats[:-1], strict=True)],
            pooled=pooled,
            emb=self.emb_out(pooled),
            out_size=(int(out_size[0]), int(out_size[1]), int(out_size[2])),
        )

    def sample_masks(
        self, inputs: HeadInputs, passes: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Dropout masks for `passes` stochastic passes, already scaled by 1/(1-p).

        Returns:
            {"loc": (R,B,C_L,t_L,h_L,w_L), "cls": (R,B,C_L)} in the features' dtype and device,
            entries 0 or 1/(1-p). A site with p = 0 gets all ones.
        """
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        shapes = {"loc": inputs.top.shape, "cls": inputs.pooled.shape}
        ref = inputs.top
        masks = {}
        for site in MASK_SITES:
            keep = 1.0 - self.p[site]
            shape = (passes, *shapes[site])
            if keep == 1.0:
                masks[site] = torch.ones(shape, dtype=ref.dtype, device=ref.device)
                continue
            # Drawn in float32 on the generator's device so that a seed gives the same masks
            # whatever the feature dtype; the comparison then yields exact 0/1.
            gen_device = generator.device if generator is not None else ref.device
            u = torch.rand(shape, generator=generator, device=gen_device)
            masks[site] = (u < keep).to(device=ref.device, dtype=ref.dtype) / keep
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
        top, pooled = inputs.top, inputs.pooled
        if masks is None:
            x = top.unsqueeze(0)
            v = pooled.unsqueeze(0)
        else:
            x = top.unsqueeze(0) * masks["loc"]
            v = pooled.unsqueeze(0) * masks["cls"]
        R, B = x.shape[:2]
        x = F.relu(self.top_proj(x.flatten(0, 1)))
        for i in range(len(self.laterals) - 1, -1, -1):
            lat = inputs.laterals[i]
            x = self.projs[i](x)
            if tuple(x.shape[2:]) != tuple(lat.shape[2:]):
                x = F.interpolate(x, size=lat.shape[2:], mode="trilinear", align_corners=False)
            # The skip is the same for every pass: broadcast it over R instead of repeating it.
            x = (x.unflatten(0, (R, B)) + lat.unsqueeze(0)).flatten(0, 1)
            x = F.relu(self.fuses[i](x))
        loc = self.loc_out(x)
        s = self.out_stride
        if s > 1:
            # (N,s·s,t,h,w) -> (N,1,t,h·s,w·s), channel dy·s + dx going to pixel (y·s+dy, x·s+dx).
            n, _, t, h, w = loc.shape
            loc = loc.reshape(n, s, s, t, h, w).permute(0, 3, 4, 1, 5, 2)
            loc = loc.reshape(n, 1, t, h * s, w * s)
        if tuple(loc.shape[2:]) != inputs.out_size:
            loc = F.interpolate(loc, size=inputs.out_size, mode="trilinear", align_corners=False)
        loc = loc.squeeze(1).unflatten(0, (R, B))
        cls = self.cls_out(v)
        return loc, cls
