"""Clustering ops: public wrappers, autograd and fake registrations.

`cluster_assign` maps every row of x to its nearest centre; `cluster_loss` pulls embeddings
towards their centres during training; `update_centers_` moves the centres by the closed form of
the per-sample online rule. See `claus_ext.reference` for the definitions and
`claus.cluster` for KMeans and the online centres built on them.

Numerics: squared distances come from a blocked GEMM expansion, but every centre that could be
the nearest within the expansion's rounding-error bound is re-checked with the exact fp64 sum of
squared differences, and the returned distance is always that exact value. So dist2 >= 0 and the
assignment equals the fp64 reference's (ties to the lowest index).
"""

from __future__ import annotations

import math

import torch

from ._loader import require_device_support

_HALF = (torch.float16, torch.bfloat16)


def _check_points(op: str, x: torch.Tensor, centers: torch.Tensor) -> None:
    if x.dim() != 2:
        raise ValueError(f"{op}: x must be 2-D (N,D), got shape {tuple(x.shape)}")
    if centers.dim() != 2:
        raise ValueError(f"{op}: centers must be 2-D (K,D), got shape {tuple(centers.shape)}")
    if centers.shape[1] != x.shape[1]:
        raise ValueError(
            f"{op}: centers shape {tuple(centers.shape)} must have D = {x.shape[1]} columns to "
            f"match x of shape {tuple(x.shape)}"
        )
    if centers.shape[0] < 1:
        raise ValueError(
            f"{op}: centers must hold at least one centre (K >= 1), got shape "
            f"{tuple(centers.shape)}"
        )
    if x.dtype not in (torch.float32, torch.float64, *_HALF):
        raise ValueError(f"{op}: x must be float32 or float64 (float16/bfloat16 on CUDA), "
                         f"got {x.dtype}")
    if x.dtype in _HALF and x.device.type == "cpu":
        raise ValueError(f"{op}: x of dtype {x.dtype} is only supported on CUDA; use float32")
    if centers.dtype != x.dtype:
        raise ValueError(f"{op}: centers dtype {centers.dtype} must equal x dtype {x.dtype}")
    if x.device != centers.device:
        raise ValueError(f"{op}: x is on {x.device} but centers is on {centers.device}")


def _check_assign(op: str, assign: torch.Tensor, x: torch.Tensor) -> None:
    if assign.dim() != 1 or assign.shape[0] != x.shape[0]:
        raise ValueError(
            f"{op}: assign must have shape (N,) = ({x.shape[0]},) to match x of shape "
            f"{tuple(x.shape)}, got {tuple(assign.shape)}"
        )
    if assign.dtype != torch.int64:
        raise ValueError(f"{op}: assign must be int64, got {assign.dtype}")
    if assign.device != x.device:
        raise ValueError(f"{op}: x is on {x.device} but assign is on {assign.device}")


def _check_update(op: str, centers: torch.Tensor, counts: torch.Tensor, x: torch.Tensor,
                  assign: torch.Tensor) -> None:
    if centers.dim() != 2 or centers.shape[0] < 1:
        raise ValueError(f"{op}: centers must be 2-D (K,D) with K >= 1, got shape "
                         f"{tuple(centers.shape)}")
    if centers.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{op}: centers must be float32 or float64, got {centers.dtype}")
    if counts.dim() != 1 or counts.shape[0] != centers.shape[0]:
        raise ValueError(
            f"{op}: counts must have shape (K,) = ({centers.shape[0]},) to match centers of "
            f"shape {tuple(centers.shape)}, got {tuple(counts.shape)}"
        )
    if counts.dtype not in (torch.float32, torch.float64, torch.int64):
        raise ValueError(f"{op}: counts must be float32, float64 or int64, got {counts.dtype}")
    if x.dim() != 2 or x.shape[1] != centers.shape[1]:
        raise ValueError(
            f"{op}: x must have shape (N,D) with D = {centers.shape[1]} to match centers of "
            f"shape {tuple(centers.shape)}, got {tuple(x.shape)}"
        )
    if not x.dtype.is_floating_point:
        raise ValueError(f"{op}: x must be floating point, got {x.dtype}")
    for name, t in (("counts", counts), ("x", x)):
        if t.device != centers.device:
            raise ValueError(f"{op}: centers is on {centers.device} but {name} is on {t.device}")
    _check_assign(op, assign, x)


def _dist_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def cluster_assign(x: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centre of every row by squared Euclidean distance.

    Not differentiable: a backward pass through dist2 raises (use `cluster_loss`).

    Args:
        x: (N,D) points, float32/float64 (float16/bfloat16 on CUDA, fp32 accumulation).
        centers: (K,D) centres, K >= 1, same dtype and device as x.

    Returns:
        assign: (N,) int64, the index of the nearest centre; ties go to the lowest index; -1 for
            a row with no non-NaN distance (NaN in the row).
        dist2: (N,) float32 (float64 for float64 x), the squared distance to that centre,
            >= 0, computed exactly in fp64 from the inputs; NaN where assign is -1.
    """
    require_device_support("cluster_assign", x, centers)
    return torch.ops.claus.cluster_assign.default(x, centers)


def cluster_loss(x: torch.Tensor, centers: torch.Tensor,
                 beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Deep-clustering loss beta/2 · mean_i ||x_i - c_a(i)||², assignment in the same pass.

    Differentiable in x only, with gradient beta·(x_i - c_a(i))/N; the centres get no gradient
    (they move through `update_centers_`).

    Args:
        x: (N,D) embeddings, float32/float64 (float16/bfloat16 on CUDA).
        centers: (K,D), same dtype and device as x.
        beta: weight of the loss.

    Returns:
        loss: 0-d float32 (float64 for float64 x); 0 for N = 0; NaN if a row holds NaN.
        assign: (N,) int64 nearest-centre index, as `cluster_assign`.
    """
    require_device_support("cluster_loss", x, centers)
    return torch.ops.claus.cluster_loss.default(x, centers, float(beta))


def update_centers_(centers: torch.Tensor, counts: torch.Tensor, x: torch.Tensor,
                    assign: torch.Tensor) -> None:
    """Online centre update, in place: the closed form of the per-sample rule.

    For each cluster k with m_k rows assigned to it (assign == k):
    c_k ← (n_k·c_k + Σ_i x_i)/(n_k + m_k), n_k ← n_k + m_k, which equals applying
    c ← (1-η)·c + η·x with η = 1/count (count incremented first) once per row, in any order.
    Rows with assign -1 are skipped; clusters with no rows are left unchanged. Sums are fp64.
    Deterministic on the CPU; on CUDA the sums use fp64 atomics, so the fp64 sums (not the
    result's dtype) may differ in the last bits between runs.

    Args:
        centers: (K,D) float32/float64, updated in place.
        counts: (K,) float32/float64/int64, >= 0, samples absorbed per centre; updated in place.
        x: (N,D) floating point rows (cast to centers' dtype), same device.
        assign: (N,) int64 in [-1, K).
    """
    require_device_support("update_centers_", centers, counts, x, assign)
    torch.ops.claus.update_centers_.default(centers, counts, x, assign)


@torch.library.register_fake("claus::cluster_assign")
def _cluster_assign_fake(x, centers):
    _check_points("claus::cluster_assign", x, centers)
    n = x.shape[0]
    return x.new_empty((n,), dtype=torch.int64), x.new_empty((n,), dtype=_dist_dtype(x))


@torch.library.register_fake("claus::cluster_loss")
def _cluster_loss_fake(x, centers, beta):
    _check_points("claus::cluster_loss", x, centers)
    if not math.isfinite(beta):
        raise ValueError(f"claus::cluster_loss: beta must be finite, got {beta}")
    return x.new_empty((), dtype=_dist_dtype(x)), x.new_empty((x.shape[0],), dtype=torch.int64)


@torch.library.register_fake("claus::cluster_loss_backward")
def _cluster_loss_backward_fake(grad, x, centers, assign, beta):
    _check_points("claus::cluster_loss_backward", x, centers)
    _check_assign("claus::cluster_loss_backward", assign, x)
    if grad.numel() != 1:
        raise ValueError("claus::cluster_loss_backward: grad must hold one value (the loss is a "
                         f"scalar), got shape {tuple(grad.shape)}")
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.register_fake("claus::update_centers_")
def _update_centers_fake(centers, counts, x, assign):
    _check_update("claus::update_centers_", centers, counts, x, assign)
    return None


def _setup_context(ctx, inputs, output):
    x, centers, beta = inputs
    _, assign = output
    ctx.save_for_backward(x, centers, assign)
    ctx.beta = beta


def _backward(ctx, grad_loss, grad_assign):
    x, centers, assign = ctx.saved_tensors
    gx = None
    if ctx.needs_input_grad[0]:
        gx = torch.ops.claus.cluster_loss_backward.default(grad_loss, x, centers, assign,
                                                           ctx.beta)
    return gx, None, None


torch.library.register_autograd("claus::cluster_loss", _backward, setup_context=_setup_context)


def _assign_backward(ctx, grad_assign, grad_dist2):
    # Without this, autograd would warn and pass no gradient through dist2, silently.
    raise RuntimeError(
        "claus_ext.cluster_assign is not differentiable; detach x before calling it, or use "
        "claus_ext.cluster_loss for a loss differentiable in x"
    )


torch.library.register_autograd("claus::cluster_assign", _assign_backward)
