"""`tiny`: a compact (2+1)D convolutional encoder, sized to train on 2 CPU cores in minutes.

Every 3D convolution is factored into a spatial (1×k×k) and a temporal (k×1×1) one ((2+1)D,
Tran et al. 2018): fewer multiply-adds than a full k×k×k kernel and an extra non-linearity. No
layer runs at full resolution (see `TinyBackbone`); the encoder halves time once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Conv2Plus1d(nn.Module):
    """Spatial 1×3×3 conv → BN → ReLU → temporal 3×1×1 conv → BN, with a residual connection
    when input and output shapes agree, then ReLU.

    Args:
        cin, cout: channels in and out.
        stride: (temporal, spatial) stride; the spatial conv carries the spatial stride and the
            temporal conv the temporal one.
    """

    def __init__(self, cin: int, cout: int, stride: tuple[int, int] = (1, 1)) -> None:
        super().__init__()
        st, ss = stride
        self.spatial = nn.Conv3d(cin, cout, (1, 3, 3), stride=(1, ss, ss), padding=(0, 1, 1),
                                 bias=False)
        self.bn1 = nn.BatchNorm3d(cout)
        self.temporal = nn.Conv3d(cout, cout, (3, 1, 1), stride=(st, 1, 1), padding=(1, 0, 0),
                                  bias=False)
        self.bn2 = nn.BatchNorm3d(cout)
        self.residual = cin == cout and stride == (1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.temporal(F.relu(self.bn1(self.spatial(x)))))
        return F.relu(y + x if self.residual else y)


class TinyBackbone(nn.Module):
    """Four-level encoder: (B,3,T,H,W) → features fine → coarse.

    The stem folds every 2×2 pixel block into channels (space-to-depth) before its first
    convolution: no layer runs at full resolution, which is where a small CPU spends its time,
    while the heads still predict per input pixel (their output layer undoes the fold).
    Level sizes for widths (c0,c1,c2,c3): (c0,T,H/2,W/2), (c1,T,H/4,W/4), (c2,⌈T/2⌉,H/8,W/8),
    (c3,⌈T/2⌉,H/16,W/16) (spatial sizes rounded up; H and W must be even).

    With `motion` the stem also sees each frame's difference to the previous one (zero for the
    first frame): a cheap motion stream. Actions differ from idle people only by how they move,
    and a small network trained from scratch on a few hundred videos learns that far sooner from
    explicit differences than by discovering them in its temporal convolutions.

    Args:
        widths: channels of the four levels.
        motion: add the frame-difference channels to the input (3 → 6 channels).
    """

    #: spatial stride of the finest level relative to the input
    stride = 2

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128), motion: bool = True) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"tiny needs 4 widths, got {len(widths)}")
        c0, c1, c2, c3 = (int(c) for c in widths)
        self.motion = bool(motion)
        cin = 6 if self.motion else 3
        self.stem = nn.Sequential(
            nn.Conv3d(cin * self.stride**2, c0, (1, 3, 3), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(c0),
            nn.ReLU(inplace=True),
        )
        self.stage1 = Conv2Plus1d(c0, c1, stride=(1, 2))
        self.stage2 = Conv2Plus1d(c1, c2, stride=(2, 2))
        self.stage3 = nn.Sequential(Conv2Plus1d(c2, c3, stride=(1, 2)), Conv2Plus1d(c3, c3))
        self.channels = (c0, c1, c2, c3)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        B, C, T, H, W = x.shape
        s = self.stride
        if H % s or W % s:
            raise ValueError(f"tiny needs an even frame size, got {H}x{W}")
        if self.motion:
            diff = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:] - x[:, :, :-1]], dim=2)
            x = torch.cat([x, diff], dim=1)
            C = 2 * C
        # (B,C,T,H,W) -> (B,C·s·s,T,H/s,W/s): channel index c·s·s + dy·s + dx.
        x = x.reshape(B, C, T, H // s, s, W // s, s).permute(0, 1, 4, 6, 2, 3, 5)
        x = x.reshape(B, C * s * s, T, H // s, W // s)
        f0 = self.stem(x)
        f1 = self.stage1(f0)
        f2 = self.stage2(f1)
        f3 = self.stage3(f2)
        return [f0, f1, f2, f3]
