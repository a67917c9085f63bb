"""STeW statistics: public wrappers, autograd and fake registrations.

The op computes, per clip, five sums that the STeW localization loss is built from; see
`claus_ext.reference.stew_stats` for the definition and `claus.losses.stew_loss` for the loss.
"""

from __future__ import annotations

import torch

from ._loader import require_device_support

_LABEL_DTYPES = (torch.bool, torch.uint8, torch.float16, torch.bfloat16, torch.float32,
                 torch.float64)


def _check_labels(op: str, y: torch.Tensor, annotated: torch.Tensor, sigma: float, radius: int,
                  window: int) -> None:
    if y.dim() != 4:
        raise ValueError(f"{op}: y must be 4-D (B,T,H,W), got shape {tuple(y.shape)}")
    if y.dtype not in _LABEL_DTYPES:
        raise ValueError(f"{op}: y must be bool, uint8 or floating point, got {y.dtype}")
    if annotated.dim() != 2 or tuple(annotated.shape) != tuple(y.shape[:2]):
        raise ValueError(
            f"{op}: annotated must have shape (B,T) = {tuple(y.shape[:2])} to match y of shape "
            f"{tuple(y.shape)}, got {tuple(annotated.shape)}"
        )
    if annotated.dtype not in (torch.bool, torch.uint8):
        raise ValueError(f"{op}: annotated must be bool, got {annotated.dtype}")
    if not (sigma > 0 and sigma != float("inf")):
        raise ValueError(f"{op}: sigma must be a finite number > 0, got {sigma}")
    if radius < 0:
        raise ValueError(f"{op}: radius must be >= 0, got {radius}")
    if window < 0:
        raise ValueError(f"{op}: window must be >= 0, got {window}")
    if y.device != annotated.device:
        raise ValueError(f"{op}: y is on {y.device} but annotated is on {annotated.device}")


def _check_logits(op: str, z: torch.Tensor, y: torch.Tensor) -> None:
    if z.dim() != 4:
        raise ValueError(f"{op}: z must be 4-D (B,T,H,W), got shape {tuple(z.shape)}")
    if tuple(z.shape) != tuple(y.shape):
        raise ValueError(f"{op}: y shape {tuple(y.shape)} must equal z shape {tuple(z.shape)}")
    half = (torch.float16, torch.bfloat16)
    if z.dtype not in (torch.float32, torch.float64, *half):
        raise ValueError(f"{op}: z must be float32 or float64 (float16/bfloat16 on CUDA), "
                         f"got {z.dtype}")
    if z.dtype in half and z.device.type == "cpu":
        raise ValueError(f"{op}: z must be float32 or float64 (float16/bfloat16 only on CUDA), "
                         f"got {z.dtype}")
    if z.device != y.device:
        raise ValueError(f"{op}: z is on {z.device} but y is on {y.device}")


def _stats_dtype(z: torch.Tensor) -> torch.dtype:
    return torch.float64 if z.dtype == torch.float64 else torch.float32


def stew_stats(
    z: torch.Tensor,
    y: torch.Tensor,
    annotated: torch.Tensor,
    sigma: float = 4 / 3,
    radius: int = 4,
    window: int = 2,
) -> torch.Tensor:
    """Per-clip STeW sums, one fused pass; differentiable in `z`.

    Args:
        z: (B,T,H,W) localization logits, float32/float64 (float16/bfloat16 on CUDA).
        y: (B,T,H,W) pseudo-labels: bool/uint8 0/1, or float in [0,1] (rounded to the
            accumulation dtype: fp64 for fp64 logits, else fp32).
        annotated: (B,T) bool, True where frame t of clip b carries a human label.
        sigma: > 0, width of the temporal Gaussian, in clip frames.
        radius: >= 0, frames farther than this from every annotated frame get weight 0.
        window: >= 0, half-width of the FG/BG consistency window.

    Returns:
        (B,5) float32 (float64 for float64 logits): S0 = Σ ω·ℓ, S1 = Σ ω, S2 = Σ ω·p·y,
        S3 = Σ ω·p, S4 = Σ ω·y, with ω the pixel weight, ℓ the BCE with logits, p = sigmoid(z).
    """
    require_device_support("stew_stats", z, y, annotated)
    return torch.ops.claus.stew_stats.default(z, y, annotated, float(sigma), int(radius),
                                              int(window))


def stew_weights(
    y: torch.Tensor,
    annotated: torch.Tensor,
    sigma: float = 4 / 3,
    radius: int = 4,
    window: int = 2,
) -> torch.Tensor:
    """Pixel weights ω = w·c of STeW, for inspection and plots (the loss never builds them).

    Args: as `stew_stats` (y (B,T,H,W), annotated (B,T) bool).

    Returns:
        (B,T,H,W) float32.
    """
    require_device_support("stew_weights", y, annotated)
    return torch.ops.claus.stew_weights.default(y, annotated, float(sigma), int(radius),
                                                int(window))


@torch.library.register_fake("claus::stew_stats")
def _stew_stats_fake(z, y, annotated, sigma, radius, window):
    _check_logits("claus::stew_stats", z, y)
    _check_labels("claus::stew_stats", y, annotated, sigma, radius, window)
    return z.new_empty((z.shape[0], 5), dtype=_stats_dtype(z))


@torch.library.register_fake("claus::stew_stats_backward")
def _stew_stats_backward_fake(grad, z, y, annotated, sigma, radius, window):
    op = "claus::stew_stats_backward"
    _check_logits(op, z, y)
    _check_labels(op, y, annotated, sigma, radius, window)
    if grad.dim() != 2 or tuple(grad.shape) != (z.shape[0], 5):
        raise ValueError(f"{op}: grad must have shape (B,5) = [{z.shape[0]}, 5], got "
                         f"{tuple(grad.shape)}")
    return torch.empty_like(z, memory_format=torch.contiguous_format)


@torch.library.register_fake("claus::stew_weights")
def _stew_weights_fake(y, annotated, sigma, radius, window):
    _check_labels("claus::stew_weights", y, annotated, sigma, radius, window)
    return y.new_empty(y.shape, dtype=torch.float32)


def _setup_context(ctx, inputs, output):
    z, y, annotated, sigma, radius, window = inputs
    ctx.save_for_backward(z, y, annotated)
    ctx.params = (sigma, radius, window)


def _backward(ctx, grad):
    z, y, annotated = ctx.saved_tensors
    gz = None
    if ctx.needs_input_grad[0]:
        gz = torch.ops.claus.stew_stats_backward.default(grad, z, y, annotated, *ctx.params)
    return gz, None, None, None, None, None


torch.library.register_autograd("claus::stew_stats", _backward, setup_context=_setup_context)
