"""Clustering in embedding space: KMeans and the online centres of the cluster loss.

Both run on the fused ops of `claus_ext` (`cluster_assign`, `cluster_loss`, `update_centers_`),
on the device of the data. KMeans replaces scikit-learn's in CLAUS's cluster-aware video
selection; `OnlineCenters` holds the K centres a model's embeddings are pulled towards during
training, moved by the closed form of the per-sample rule of deep clustering networks.
"""

from __future__ import annotations

import math

import torch

import claus_ext


def _as_points(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N,D), got shape {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        x = x.to(torch.float32)
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.to(torch.float32)
    return x


class KMeans:
    """K-means with k-means++ seeding and Lloyd iterations, on the claus assignment op.

    Seeding is greedy k-means++ (as scikit-learn's: each new centre is the best of
    2 + ⌊ln K⌋ candidates drawn with probability ∝ D², by the potential they leave). Each Lloyd
    step assigns every point exactly (`claus_ext.cluster_assign`) and moves each centre to the
    mean of its points (`claus_ext.update_centers_` with zero counts, sums in fp64). A centre
    left without points is re-seeded at the point farthest from its own centre (distinct points
    for several empty clusters). Iterations stop when the squared centre shift falls to
    tol · mean per-feature variance of x, or after max_iter; the best of n_init runs (lowest
    inertia) is kept.

    Args:
        n_clusters: K >= 1.
        n_init: independent seedings; the run with the lowest inertia is kept.
        max_iter: Lloyd iterations per run.
        tol: relative tolerance on the centre shift (scikit-learn's convention).
        seed: seeds the one torch.Generator all random choices draw from.
        init: "k-means++", or a (K,D) tensor of initial centres (then n_init is 1).

    Attributes (after `fit`):
        cluster_centers_: (K,D) centres, dtype of x (float32 for half input).
        labels_: (N,) int64 index of each point's centre.
        inertia_: float, sum of squared distances of the points to their centres.
        n_iter_: Lloyd iterations of the kept run.
    """

    def __init__(self, n_clusters: int, n_init: int = 10, max_iter: int = 100,
                 tol: float = 1e-4, seed: int = 0, init: str | torch.Tensor = "k-means++"):
        if n_clusters < 1:
            raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
        if n_init < 1:
            raise ValueError(f"n_init must be >= 1, got {n_init}")
        if max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter}")
        if tol < 0:
            raise ValueError(f"tol must be >= 0, got {tol}")
        if isinstance(init, str) and init != "k-means++":
            raise ValueError(f"init must be 'k-means++' or a (K,D) tensor, got {init!r}")
        self.n_clusters = int(n_clusters)
        self.n_init = int(n_init)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.seed = int(seed)
        self.init = init
        self.cluster_centers_: torch.Tensor | None = None
        self.labels_: torch.Tensor | None = None
        self.inertia_: float | None = None
        self.n_iter_: int | None = None

    def fit(self, x: torch.Tensor) -> KMeans:
        """Cluster x (N,D) float (any device claus supports); N >= n_clusters. Returns self."""
        x = _as_points(x).contiguous()
        n, k = x.shape[0], self.n_clusters
        if n < k:
            raise ValueError(f"x has {n} points, fewer than n_clusters = {k}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x contains NaN or inf; KMeans needs finite points")
        gen = torch.Generator().manual_seed(self.seed)
        tol_abs = self.tol * float(x.to(torch.float64).var(dim=0, unbiased=False).mean())
        best = None
        runs = 1 if isinstance(self.init, torch.Tensor) else self.n_init
        for _ in range(runs):
            if isinstance(self.init, torch.Tensor):
                centers = self._check_init(self.init, x)
            else:
                centers = _kmeans_plusplus(x, k, gen)
            centers, labels, inertia, n_iter = self._lloyd(x, centers, tol_abs)
            if best is None or inertia < best[2]:
                best = (centers, labels, inertia, n_iter)
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = best
        return self

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(N,D) -> (N,) int64 index of the nearest fitted centre."""
        if self.cluster_centers_ is None:
            raise RuntimeError("KMeans.predict called before fit")
        x = _as_points(x).to(self.cluster_centers_.dtype)
        return claus_ext.cluster_assign(x, self.cluster_centers_)[0]

    def fit_predict(self, x: torch.Tensor) -> torch.Tensor:
        """fit(x), then the labels of x: (N,) int64."""
        return self.fit(x).labels_

    def _check_init(self, init: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if tuple(init.shape) != (self.n_clusters, x.shape[1]):
            raise ValueError(f"init must have shape (K,D) = ({self.n_clusters}, {x.shape[1]}), "
                             f"got {tuple(init.shape)}")
        return init.to(device=x.device, dtype=x.dtype).clone()

    def _lloyd(self, x: torch.Tensor, centers: torch.Tensor,
               tol_abs: float) -> tuple[torch.Tensor, torch.Tensor, float, int]:
        k = centers.shape[0]
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):  # noqa: B007 - n_iter is reported
            labels, dist2 = claus_ext.cluster_assign(x, centers)
            new = centers.clone()
            counts = torch.zeros(k, dtype=torch.float64, device=x.device)
            # Zero counts turn the online update into the plain mean of each cluster's points.
            claus_ext.update_centers_(new, counts, x, labels)
            empty = counts == 0
            if bool(empty.any()):
                _reseed_empty(x, new, empty, dist2)
            shift = float(((new.to(torch.float64) - centers.to(torch.float64)) ** 2).sum())
            centers = new
            if shift <= tol_abs:
                break
        labels, dist2 = claus_ext.cluster_assign(x, centers)
        return centers, labels, float(dist2.to(torch.float64).sum()), n_iter


def _reseed_empty(x: torch.Tensor, centers: torch.Tensor, empty: torch.Tensor,
                  dist2: torch.Tensor) -> None:
    """Moves the centres flagged in `empty` onto the points farthest from their centres."""
    idx = empty.nonzero()[:, 0]
    far = torch.topk(dist2.to(torch.float64), idx.numel()).indices
    centers[idx] = x[far]


def _kmeans_plusplus(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ seeding: (N,D) -> (K,D) centres drawn from the rows of x."""
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    first = int(torch.randint(n, (1,), generator=gen))
    centers = [x[first]]
    closest = claus_ext.cluster_assign(x, x[first:first + 1])[1].to(torch.float64)
    pot = float(closest.sum())
    for _ in range(1, k):
        if pot > 0:
            cum = torch.cumsum(closest.cpu(), 0)
            draws = torch.rand(trials, generator=gen, dtype=torch.float64) * cum[-1]
            cand = torch.searchsorted(cum, draws, right=True).clamp_(max=n - 1)
        else:  # every point coincides with a centre: any point will do
            cand = torch.randint(n, (trials,), generator=gen)
        best = None
        for c in cand.tolist():
            d = claus_ext.cluster_assign(x, x[c:c + 1])[1].to(torch.float64)
            new_closest = torch.minimum(closest, d)
            new_pot = float(new_closest.sum())
            if best is None or new_pot < best[1]:
                best = (c, new_pot, new_closest)
        c, pot, closest = best
        centers.append(x[c])
    return torch.stack(centers).clone()


class OnlineCenters(torch.nn.Module):
    """The K centres of the cluster loss, moved online as training sees embeddings.

    Holds `centers` (K,D) and `counts` (K,) float64 as buffers (saved in state_dict). Every
    centre starts with `initial_count` absorbed samples, so early batches move it gently: after
    m more samples of sum s, c ← (n·c + s)/(n + m), the closed form of the per-sample rule
    c ← (1-η)·c + η·x, η = 1/count.

    Typical step: ``loss, assign = oc.loss(z, beta)``; ``loss.backward()``;
    ``oc.update(z.detach(), assign)``.

    Args:
        centers: (K,D) initial centres (e.g. `KMeans(...).fit(z).cluster_centers_`), float32 or
            float64.
        initial_count: >= 0, samples each centre is taken to have absorbed already.
    """

    def __init__(self, centers: torch.Tensor, initial_count: float = 100.0):
        super().__init__()
        if centers.dim() != 2 or centers.shape[0] < 1:
            raise ValueError(f"centers must be 2-D (K,D) with K >= 1, got shape "
                             f"{tuple(centers.shape)}")
        if centers.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"centers must be float32 or float64, got {centers.dtype}")
        if not initial_count >= 0:
            raise ValueError(f"initial_count must be >= 0, got {initial_count}")
        self.register_buffer("centers", centers.detach().clone())
        self.register_buffer("counts", torch.full((centers.shape[0],), float(initial_count),
                                                  dtype=torch.float64, device=centers.device))

    def loss(self, x: torch.Tensor, beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """beta/2 · mean_i ||x_i - c_a(i)||² and the assignment a, see `claus_ext.cluster_loss`.

        x: (N,D) embeddings; the centres are cast to x's dtype (float16/bfloat16 on CUDA).
        Returns a 0-d loss (float32, float64 for float64 x) and (N,) int64 assign.
        """
        return claus_ext.cluster_loss(x, self.centers.to(x.dtype), beta)

    @torch.no_grad()
    def update(self, x: torch.Tensor, assign: torch.Tensor) -> None:
        """Absorbs rows x (N,D) into their clusters `assign` (N,) int64 (-1 rows skipped)."""
        claus_ext.update_centers_(self.centers, self.counts, x.detach(), assign)
