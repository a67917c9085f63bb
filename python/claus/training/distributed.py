"""Processes under `torchrun`: joining the group, rank and world size, and the collectives the
trainer needs (buffer averaging, means over ranks, gathering objects and tensors).

Every function is also correct in a single process (no process group, or a group of one): it
then does nothing collective and returns the local value.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = [
    "all_gather_objects",
    "average_buffers",
    "gather_tensors",
    "get_rank",
    "init_distributed",
    "is_distributed",
    "mean_over_ranks",
    "world_size",
]


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


def is_distributed() -> bool:
    """True inside a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of ranks (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def average_buffers(model: torch.nn.Module) -> None:
    """Average floating buffers (BatchNorm running statistics) over ranks, in place.

    DDP keeps parameters identical but lets each rank's running statistics follow its own
    shard of the data after the last broadcast; averaging them at the end of every epoch makes
    the checkpoint reflect all shards and the replicas identical again.
    """
    if not is_distributed():
        return
    world = dist.get_world_size()
    for buf in model.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf)
            buf.div_(world)


def mean_over_ranks(total: float, count: int, device: torch.device) -> float:
    """sum(total) / sum(count) over ranks, summed in float64 (NaN when no rank counted)."""
    if is_distributed():
        t = torch.tensor([total, float(count)], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        total, count = float(t[0]), int(t[1])
    return total / count if count else float("nan")


def all_gather_objects(obj: object) -> list:
    """Every rank's `obj`, in rank order (picklable objects; [obj] in one process)."""
    if not is_distributed():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_tensors(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each tensor concatenated over ranks along dim 0, in rank order (every rank's tensors
    must have the same shapes); the tensors themselves in one process."""
    if not is_distributed():
        return tensors
    world = dist.get_world_size()
    out = []
    for t in tensors:
        parts = [torch.empty_like(t) for _ in range(world)]
        dist.all_gather(parts, t.contiguous())
        out.append(torch.cat(parts))
    return tuple(out)
