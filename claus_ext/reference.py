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


# ---------------------------------------------------------------------------------------------
# Frame scoring (claus_ext.scoring): frame_uncertainty and select_frames.


def frame_uncertainty(logits: torch.Tensor, fg_threshold: float = 0.4,
                      mode: str = "mean_log") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(R,N,T,H,W) MC-dropout logits -> (fg_count, unc_sum, ent_sum), each (N,T) float32.

    Per pixel: p̄ = mean_r sigmoid(z_r), q̄ = mean_r sigmoid(-z_r) (= 1 - p̄); foreground iff
    p̄ > fg_threshold; u = mean_r softplus(-z_r) ("mean_log") or -log p̄ ("log_mean");
    h = -(p̄ log p̄ + q̄ log q̄) with 0 log 0 = 0. fg_count = Σ fg, unc_sum = Σ u over foreground
    pixels, ent_sum = Σ h over all pixels. Computed in float32 (float64 for float64 logits, which
    the op does not take but tests use for a precise expectation).
    """
    if mode not in ("mean_log", "log_mean"):
        raise ValueError(f"mode must be 'mean_log' or 'log_mean', got {mode!r}")
    z = logits.to(_acc_dtype(logits))
    pbar = torch.sigmoid(z).mean(0)
    qbar = torch.sigmoid(-z).mean(0)
    # The threshold is a float32 number in the op; compare against the same value.
    thr = torch.tensor(fg_threshold, dtype=torch.float32).item()
    fg = pbar > thr
    u = F.softplus(-z).mean(0) if mode == "mean_log" else -torch.log(pbar)
    h = -(torch.xlogy(pbar, pbar) + torch.xlogy(qbar, qbar))
    dims = (2, 3)
    return (fg.to(z.dtype).sum(dims).float(),
            torch.where(fg, u, torch.zeros_like(u)).sum(dims).float(),
            h.sum(dims).float())


def gaussian_table(n: int, sigma: float) -> torch.Tensor:
    """(n,) float32: g(d) = exp(-d^2 / (2 sigma^2)) for d = 0..n-1, in float64 rounded once."""
    d = torch.arange(n, dtype=torch.float64)
    return torch.exp(-(d * d) / (2.0 * sigma * sigma)).float()


def select_frames(frame_unc: torch.Tensor, candidates: torch.Tensor, annotated: torch.Tensor,
                  k: int | torch.Tensor, sigma: float = 8 / 3, radius: int = 4
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Greedy frame selection, all videos stepped together; see `claus_ext.select_frames`.

    (N,L) float32 scores, (N,L) bool candidates and annotated flags, k int or (N,) ->
    selected (N,kmax) int64 (-1 padded), picked_scores (N,kmax) float32 (NaN padded),
    video_score (N,) float32 (NaN when nothing was picked).
    """
    N, L = frame_unc.shape
    dev = frame_unc.device
    if isinstance(k, torch.Tensor):
        kt = k.to(dev, torch.int64)
        kmax = int(kt.max()) if N > 0 else 0
    else:
        kt = torch.full((N,), int(k), dtype=torch.int64, device=dev)
        kmax = int(k)
    selected = torch.full((N, kmax), -1, dtype=torch.int64, device=dev)
    picked = torch.full((N, kmax), float("nan"), dtype=torch.float32, device=dev)
    if N == 0 or L == 0:
        return selected, picked, torch.full((N,), float("nan"), device=dev)
    g = gaussian_table(L, sigma).to(dev)
    a = annotated.bool()
    frames = torch.arange(L, device=dev).expand(N, L)
    # Nearest annotated frame at or before f (-1: none) and at or after f (L: none).
    left = torch.where(a, frames, -1).cummax(dim=1).values
    right = torch.where(a, frames, L).flip(1).cummin(dim=1).values.flip(1)
    d = torch.minimum(torch.where(left >= 0, frames - left, L),
                      torch.where(right < L, right - frames, L))
    # d = L marks a video without annotated frames: no penalty.
    pen = torch.where(d < L, g[d.clamp_max(L - 1)], torch.zeros((), device=dev))
    s = frame_unc.float() - pen
    eligible = candidates.bool() & ~torch.isnan(frame_unc)
    rows = torch.arange(N, device=dev)
    for step in range(kmax):
        active = eligible.any(dim=1) & (kt > step)
        if not bool(active.any()):
            break
        best = torch.where(eligible, s, torch.full_like(s, -float("inf"))).amax(dim=1)
        # First eligible frame holding the best score (ties: lowest index).
        idx = (eligible & (s == best[:, None])).to(torch.int8).argmax(dim=1)
        r, i = rows[active], idx[active]
        selected[r, step] = i
        picked[r, step] = s[r, i]
        eligible[r, i] = False
        for off in range(-min(radius, L - 1), min(radius, L - 1) + 1):
            j = i + off
            ok = (j >= 0) & (j < L)
            s[r[ok], j[ok]] -= g[abs(off)]
    count = (selected >= 0).sum(dim=1)
    total = torch.where(selected >= 0, picked.double(), torch.zeros((), dtype=torch.float64,
                                                                     device=dev)).sum(dim=1)
    video = torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))
    return selected, picked, video.float()

# Clustering (claus_ext.cluster): nearest-centre assignment, cluster loss, online centre update.
# Distances are computed directly as sum_d (x_d - c_d)^2 in fp64 (no norm expansion), which is
# what the kernels' results are compared against.
# ---------------------------------------------------------------------------------------------


def cluster_dist2(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(N,D), (K,D) -> (N,K) float64 squared distances, computed as Σ_d (x_d - c_d)²."""
    xd = x.to(torch.float64)
    cd = centers.to(torch.float64)
    return ((xd[:, None, :] - cd[None, :, :]) ** 2).sum(-1)


def cluster_assign(x: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,D), (K,D) -> assign (N,) int64, dist2 (N,) float32 (float64 for float64 x).

    assign is the argmin of the fp64 distances, ties to the lowest index; NaN distances never
    win; a row whose distances are all NaN gets -1 and NaN.
    """
    d = cluster_dist2(x, centers)
    nan = torch.isnan(d)
    d_min = torch.where(nan, torch.full_like(d, float("inf")), d)
    # argmin on a row of inf returns 0, the lowest index: the same rule as for any tie.
    assign = d_min.argmin(dim=1) if d.shape[0] > 0 else d.new_empty((0,), dtype=torch.int64)
    dist2 = d_min.gather(1, assign[:, None])[:, 0]
    none = nan.all(dim=1)
    assign = torch.where(none, torch.full_like(assign, -1), assign)
    dist2 = torch.where(none, torch.full_like(dist2, float("nan")), dist2)
    return assign, dist2.to(_acc_dtype(x))


def cluster_loss(x: torch.Tensor, centers: torch.Tensor,
                 beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """beta/2 · mean_i ||x_i - c_a(i)||² (0 for N = 0) and the assignment a.

    Differentiable in x through autograd; the centres are detached (no gradient).
    """
    assign, _ = cluster_assign(x.detach(), centers.detach())
    acc = _acc_dtype(x)
    if x.shape[0] == 0:
        return x.new_zeros((), dtype=acc), assign
    c = centers.detach().to(acc)[assign.clamp_min(0)]
    c = torch.where((assign < 0)[:, None], torch.full_like(c, float("nan")), c)
    loss = 0.5 * beta * ((x.to(acc) - c) ** 2).sum(1).mean()
    return loss, assign


def update_centers_sequential(centers: torch.Tensor, counts: torch.Tensor, x: torch.Tensor,
                              assign: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-sample rule of deep clustering networks, one row at a time, in fp64.

    For each row i with k = assign[i] >= 0: n_k ← n_k + 1, η = 1/n_k, c_k ← (1-η)·c_k + η·x_i.
    Returns new (centers, counts) in float64; the inputs are not modified.
    """
    c = centers.to(torch.float64).clone()
    n = counts.to(torch.float64).clone()
    xd = x.to(torch.float64)
    for i, k in enumerate(assign.tolist()):
        if k < 0:
            continue
        n[k] += 1
        eta = 1.0 / n[k]
        c[k] = (1 - eta) * c[k] + eta * xd[i]
    return c, n


def update_centers(centers: torch.Tensor, counts: torch.Tensor, x: torch.Tensor,
                   assign: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed form of `update_centers_sequential`, vectorized, in fp64:
    c_k ← (n_k·c_k + Σ_{a_i=k} x_i)/(n_k + m_k), n_k ← n_k + m_k (unchanged where n_k + m_k = 0).
    """
    K = centers.shape[0]
    keep = assign >= 0
    a = assign[keep]
    xd = x.to(torch.float64)[keep]
    sums = torch.zeros(centers.shape, dtype=torch.float64, device=centers.device)
    sums.index_add_(0, a, xd)
    m = torch.bincount(a, minlength=K).to(torch.float64)
    n = counts.to(torch.float64)
    total = n + m
    c = centers.to(torch.float64)
    new = (n[:, None] * c + sums) / torch.where(total > 0, total, torch.ones_like(total))[:, None]
    new = torch.where((m > 0)[:, None], new, c)
    return new, total
