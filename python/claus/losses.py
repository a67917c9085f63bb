"""Training losses: classification, STeW localization (over the fused `claus_ext.stew_stats` op)
and the deep-clustering loss (over `claus_ext.cluster_loss`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import claus_ext


def stew_loss(
    z: torch.Tensor,
    y: torch.Tensor,
    annotated: torch.Tensor,
    sigma: float = 4 / 3,
    radius: int = 4,
    window: int = 2,
    dice_weight: float = 1.0,
    smooth: float = 1.0,
) -> torch.Tensor:
    """Spatio-temporally weighted localization loss on interpolated pseudo-labels.

    Every pixel is weighted by its frame's temporal distance to a human label and by its FG/BG
    consistency over neighbouring frames (see `claus_ext.stew_stats`). Per clip b with weight
    S1 > 0: L_b = S0/S1 + dice_weight·(1 - (2·S2 + smooth)/(S3 + S4 + smooth)), a weighted
    BCE plus a weighted soft Dice.

    Args:
        z: (B,T,H,W) localization logits, float32/float64 (float16/bfloat16 on CUDA).
        y: (B,T,H,W) pseudo-labels, bool/uint8 or float in [0,1].
        annotated: (B,T) bool, frames carrying a human label.
        sigma, radius, window: see `claus_ext.stew_stats`.
        dice_weight: weight of the Dice term (0 gives weighted BCE alone).
        smooth: additive smoothing of the Dice ratio.

    Returns:
        Scalar float32 (float64 for float64 logits): the mean of L_b over clips with weight, or a
        zero carrying a zero gradient when no clip has any.
    """
    stats = claus_ext.stew_stats(z, y, annotated, sigma, radius, window)
    return stew_loss_from_stats(stats, dice_weight, smooth)


def stew_loss_from_stats(stats: torch.Tensor, dice_weight: float = 1.0,
                         smooth: float = 1.0) -> torch.Tensor:
    """(B,5) STeW sums of `claus_ext.stew_stats` -> the scalar loss of `stew_loss`.

    Clips without weight (S1 = 0) are left out of the mean; none with weight gives a zero that
    still carries a (zero) gradient, so a batch of unlabelled clips does not break backward.
    (`claus_ext.reference` defines the same loss independently; the tests compare the two.)
    """
    s0, s1, s2, s3, s4 = stats.unbind(1)
    weighted = s1 > 0
    bce = s0 / torch.where(weighted, s1, torch.ones_like(s1))
    dice = 1 - (2 * s2 + smooth) / (s3 + s4 + smooth)
    per_clip = torch.where(weighted, bce + dice_weight * dice, torch.zeros_like(s0))
    return per_clip.sum() / weighted.sum().clamp_min(1).to(stats.dtype)


def bce_dice_loss(z: torch.Tensor, y: torch.Tensor, dice_weight: float = 1.0,
                  smooth: float = 1.0) -> torch.Tensor:
    """Unweighted localization loss: BCE + soft Dice on the pseudo-labels (the ablation of STeW).

    Every pixel of every frame counts the same, whether its label was drawn by a person or
    interpolated. Per clip: L_b = mean BCE + dice_weight·(1 - (2·Σpy + smooth)/(Σp + Σy +
    smooth)), averaged over clips — STeW's formula with every pixel weight ω = 1.

    Args:
        z: (B,T,H,W) localization logits, float (computed in float32 at least).
        y: (B,T,H,W) pseudo-labels, bool/uint8 or float in [0,1].
        dice_weight, smooth: as in `stew_loss`.

    Returns:
        Scalar float32 (float64 for float64 logits).
    """
    if z.dtype in (torch.float16, torch.bfloat16):
        z = z.float()
    y = y.to(z.dtype)
    bce = F.binary_cross_entropy_with_logits(z, y, reduction="none").flatten(1).mean(1)
    p = torch.sigmoid(z).flatten(1)
    yf = y.flatten(1)
    dice = 1 - (2 * (p * yf).sum(1) + smooth) / (p.sum(1) + yf.sum(1) + smooth)
    return (bce + dice_weight * dice).mean()


def classification_loss(logits: torch.Tensor, target: torch.Tensor,
                        label_smoothing: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of clip class logits.

    Args:
        logits: (B,C) float class logits.
        target: (B,) int64 class indices in [0, C).
        label_smoothing: in [0,1), as `torch.nn.functional.cross_entropy`.
        reduction: "mean" or "none" (per clip, (B,)).

    Returns:
        Scalar, the mean over clips (computed in float32 at least, so bf16 logits under AMP do
        not lose the log-sum-exp).
    """
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing, reduction=reduction)

def cluster_loss(
    x: torch.Tensor,
    centers: torch.Tensor,
    beta: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deep-clustering loss: pulls every embedding towards its nearest centre.

    L = beta/2 · mean_i ||x_i - c_a(i)||², a(i) the nearest centre (found in the same pass).
    Differentiable in x only; the centres move through `claus.cluster.OnlineCenters.update`.
    The mean (not the sum of the original code) keeps beta independent of the batch size.

    Args:
        x: (N,D) video embeddings, float32/float64 (float16/bfloat16 on CUDA).
        centers: (K,D) centres, same dtype and device as x.
        beta: weight of the loss.

    Returns:
        loss: 0-d float32 (float64 for float64 x), 0 for an empty batch.
        assign: (N,) int64 index of each embedding's centre (feed it to the centre update).
    """
    return claus_ext.cluster_loss(x, centers, beta)
