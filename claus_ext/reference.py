"""Pure-PyTorch definitions of every claus op: the contract the kernels are tested against.

Written for clarity, not speed; benchmarks time these as the eager baseline. Each function
matches its op's signature, shapes and dtypes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _acc_dtype(z: torch.Tensor) -> torch.dtype:
    return torch.float64 if z.dtype == torch.float64 else torch.float32


def stew_labels(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Pseudo-labels as numbers: bool/uint8 masks are 0/1 (any nonzero byte is foreground);
    soft labels are cast to `dtype` as they are."""
    if y.dtype in (torch.bool, torch.uint8):
        return (y != 0).to(dtype)
    return y.to(dtype)


def stew_temporal_weights(annotated: torch.Tensor, sigma: float = 4 / 3,
                          radius: int = 4) -> torch.Tensor:
    """(B,T) bool -> (B,T) float64 temporal weights.

    w[b,t] = 1 where annotated; else max over annotated u with |t-u| <= radius of
    exp(-(t-u)^2 / (2 sigma^2)); 0 when there is none.
    """
    a = annotated.bool()
    T = a.shape[1]
    t = torch.arange(T, device=a.device, dtype=torch.float64)
    d = (t[:, None] - t[None, :]).abs()  # [t, u]
    g = torch.exp(-(d**2) / (2 * sigma**2)) * (d <= radius)
    w = (g[None, :, :] * a[:, None, :]).amax(dim=-1) if T > 0 else g.new_zeros(a.shape)
    return torch.where(a, torch.ones_like(w), w)


def stew_consistency(y: torch.Tensor, annotated: torch.Tensor, window: int = 2,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B,T,H,W) labels, (B,T) bool -> (B,T,H,W) consistency c.

    c = 1 on annotated frames; else 1 - mean over t' in [max(0,t-window), min(T-1,t+window)] of
    |y[t'] - y[t]|.
    """
    yf = stew_labels(y, dtype)
    T = y.shape[1]
    total = torch.zeros_like(yf)
    count = torch.zeros(T, dtype=dtype, device=y.device)
    for k in range(-min(window, max(T - 1, 0)), min(window, max(T - 1, 0)) + 1):
        lo, hi = max(0, -k), min(T, T - k)  # frames t with t+k in range
        total[:, lo:hi] += (yf[:, lo + k : hi + k] - yf[:, lo:hi]).abs()
        count[lo:hi] += 1
    c = 1 - total / count.clamp_min(1)[None, :, None, None]
    return torch.where(annotated.bool()[:, :, None, None], torch.ones_like(c), c)


def stew_weights(y: torch.Tensor, annotated: torch.Tensor, sigma: float = 4 / 3,
                 radius: int = 4, window: int = 2, dtype: torch.dtype = torch.float32
                 ) -> torch.Tensor:
    """Pixel weight ω = w·c, (B,T,H,W) in `dtype` (the op returns float32)."""
    w = stew_temporal_weights(annotated, sigma, radius).to(dtype)
    return w[:, :, None, None] * stew_consistency(y, annotated, window, dtype)


def stew_stats(z: torch.Tensor, y: torch.Tensor, annotated: torch.Tensor, sigma: float = 4 / 3,
               radius: int = 4, window: int = 2) -> torch.Tensor:
    """(B,T,H,W) logits and labels, (B,T) flags -> (B,5) sums [Σωℓ, Σω, Σωpy, Σωp, Σωy].

    ℓ = max(z,0) - z·y + log(1+exp(-|z|)) (BCE with logits), p = sigmoid(z). Differentiable in
    z through autograd.
    """
    acc = _acc_dtype(z)
    zf = z.to(acc)
    yf = stew_labels(y, acc)
    om = stew_weights(y, annotated, sigma, radius, window, dtype=acc)
    loss = F.binary_cross_entropy_with_logits(zf, yf, reduction="none")
    p = torch.sigmoid(zf)
    dims = (1, 2, 3)
    return torch.stack(
        [(om * loss).sum(dims), om.sum(dims), (om * p * yf).sum(dims), (om * p).sum(dims),
         (om * yf).sum(dims)],
        dim=1,
    )


def stew_loss_from_stats(stats: torch.Tensor, dice_weight: float = 1.0,
                         smooth: float = 1.0) -> torch.Tensor:
    """(B,5) STeW sums -> scalar loss: mean over clips with S1 > 0 of
    S0/S1 + dice_weight·(1 - (2·S2 + smooth)/(S3 + S4 + smooth)); 0 (with a zero gradient) when
    no clip has weight."""
    s0, s1, s2, s3, s4 = stats.unbind(1)
    valid = s1 > 0
    bce = s0 / torch.where(valid, s1, torch.ones_like(s1))
    dice = 1 - (2 * s2 + smooth) / (s3 + s4 + smooth)
    per_clip = torch.where(valid, bce + dice_weight * dice, torch.zeros_like(s0))
    return per_clip.sum() / valid.sum().clamp_min(1).to(stats.dtype)


def stew_loss(z: torch.Tensor, y: torch.Tensor, annotated: torch.Tensor, sigma: float = 4 / 3,
              radius: int = 4, window: int = 2, dice_weight: float = 1.0,
              smooth: float = 1.0) -> torch.Tensor:
    """The STeW loss built from `stew_stats` (reference path)."""
    return stew_loss_from_stats(stew_stats(z, y, annotated, sigma, radius, window), dice_weight,
                                smooth)
