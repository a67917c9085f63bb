"""Where a model runs and at what precision: the one rule for each, shared by training,
evaluation, pool scoring, the rounds and the annotation tools.

    dev = resolve_device(cfg.device)          # "auto" → cuda:LOCAL_RANK when CUDA is there
    with autocast(dev, cfg.amp):
        out = model(clip.to(dev))
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext

import torch

__all__ = ["autocast", "resolve_device"]


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """"auto" → the local CUDA device when available (LOCAL_RANK under torchrun), else CPU;
    any other name as `torch.device` reads it ("cpu", "cuda", "cuda:1").

    Raises:
        ValueError: a CUDA device is named but CUDA is not available.
    """
    if str(name) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(name)!r} requested but CUDA is not available")
    return dev


def autocast(device: torch.device, amp: bool) -> AbstractContextManager:
    """bf16 autocast on CUDA when `amp`, else a no-op context.

    CPU stays fp32: bf16 convolutions on most CPUs are slower than fp32, and the CPU results
    are the reference the tests compare against.
    """
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()
