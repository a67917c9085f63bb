"""`ClipGeometry`: the layout of a clip, the one value every stage cuts clips with.

Torch-free on purpose: `TrainConfig` holds one, and the tools that only read configurations
(importers, exports) must not import torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["ClipGeometry", "Size"]

#: A clip's output side: (H, W), an int for a square, or None for the source's size.
Size = tuple[int, int] | int | None


@dataclass(frozen=True)
class ClipGeometry:
    """The layout of a clip: `T` frames `stride` apart, at output side `size` ((H, W), an int
    for a square, or None for the source's size: the dataset's or its frame store's).

    It has no defaults of its own: a run's geometry is `TrainConfig.geometry`, and where a
    call is given none, `default_geometry()` (TrainConfig's defaults) is used.
    """

    T: int
    stride: int
    size: Size

    def __post_init__(self) -> None:
        if isinstance(self.size, list):  # read back from JSON
            object.__setattr__(self, "size", tuple(self.size))
        if self.T < 1 or self.stride < 1:
            raise ValueError(f"T and stride must be >= 1, got {self.T}, {self.stride}")

    def replace(self, **changes) -> ClipGeometry:
        return dataclasses.replace(self, **changes)

    @property
    def out_size(self) -> tuple[int, int] | None:
        """`size` as (H, W), or None for the source size."""
        return (self.size, self.size) if isinstance(self.size, int) else self.size
