"""claus.cluster: KMeans against scikit-learn, and the online centres of the cluster loss."""

from __future__ import annotations

import pytest
import torch
from claus.cluster import KMeans, OnlineCenters
from claus.losses import cluster_loss

import claus_ext
from claus_ext import reference as ref
from tests.conftest import requires_cuda


def _blobs(n, dim, k, seed, std=1.0):
    datasets = pytest.importorskip("sklearn.datasets")
    x, _ = datasets.make_blobs(n_samples=n, n_features=dim, centers=k, cluster_std=std,
                               random_state=seed)
    return torch.from_numpy(x).float()


@pytest.mark.parametrize("n,dim,k,std,seed", [(1500, 8, 6, 1.0, 0), (1200, 16, 10, 3.0, 1),
                                              (800, 2, 5, 2.5, 2)])
def test_inertia_within_one_percent_of_sklearn(n, dim, k, std, seed):
    cluster = pytest.importorskip("sklearn.cluster")
    x = _blobs(n, dim, k, seed, std)
    sk = cluster.KMeans(n_clusters=k, n_init=10, random_state=0).fit(x.numpy())
    km = KMeans(k, n_init=10, seed=0).fit(x)
    assert km.inertia_ <= sk.inertia_ * 1.01, (km.inertia_, sk.inertia_)
    # inertia_ is the sum of squared distances of the points to their centres.
    want = ref.cluster_dist2(x, km.cluster_centers_).gather(1, km.labels_[:, None]).sum()
    assert km.inertia_ == pytest.approx(float(want), rel=1e-5)


def test_fit_predict_shapes_and_determinism():
    x = _blobs(600, 5, 4, 3)
    km = KMeans(4, n_init=3, seed=7).fit(x)
    assert km.cluster_centers_.shape == (4, 5) and km.cluster_centers_.dtype == torch.float32
    assert km.labels_.shape == (600,) and km.labels_.dtype == torch.int64
    assert torch.equal(km.predict(x), km.labels_)
    again = KMeans(4, n_init=3, seed=7).fit(x)
    assert torch.equal(again.cluster_centers_, km.cluster_centers_)
    assert km.n_iter_ >= 1
    # Every centre is the mean of its points at convergence.
    for j in range(4):
        torch.testing.assert_close(km.cluster_centers_[j], x[km.labels_ == j].mean(0),
                                   rtol=1e-4, atol=1e-4)


def test_empty_cluster_is_reseeded():
    x = _blobs(400, 3, 3, 4)
    # One initial centre far from every point: it starts empty and must be moved.
    init = torch.cat([x[:2], torch.full((1, 3), 1e4)])
    km = KMeans(3, init=init, max_iter=50).fit(x)
    assert torch.bincount(km.labels_, minlength=3).min() > 0
    assert km.cluster_centers_.abs().max() < 1e3
    cluster = pytest.importorskip("sklearn.cluster")
    sk = cluster.KMeans(n_clusters=3, n_init=10, random_state=0).fit(x.numpy())
    assert km.inertia_ <= sk.inertia_ * 1.01


def test_duplicate_points_more_clusters_than_distinct_points():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]).repeat(10, 1)
    km = KMeans(5, n_init=2, seed=0).fit(x)
    assert km.inertia_ == 0.0
    assert set(km.labels_.tolist()) <= set(range(5))


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(0)
    with pytest.raises(ValueError, match="fewer than n_clusters"):
        KMeans(5).fit(torch.randn(3, 2))
    x = torch.randn(10, 2)
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        KMeans(2).fit(x)
    with pytest.raises(RuntimeError, match="before fit"):
        KMeans(2).predict(torch.randn(3, 2))
    with pytest.raises(ValueError, match="init must have shape"):
        KMeans(2, init=torch.randn(3, 2)).fit(torch.randn(10, 2))


def test_online_centers_step(gen):
    centers = torch.randn(4, 6, generator=gen)
    oc = OnlineCenters(centers, initial_count=100)
    assert oc.counts.tolist() == [100.0] * 4
    x = torch.randn(32, 6, generator=gen, requires_grad=True)
    loss, a = oc.loss(x, beta=0.5)
    rloss, ra = ref.cluster_loss(x, centers, 0.5)
    torch.testing.assert_close(loss, rloss)
    assert torch.equal(a, ra)
    loss.backward()
    torch.testing.assert_close(x.grad, 0.5 * (x - centers[a]).detach() / 32)
    want_c, want_n = ref.update_centers_sequential(centers, oc.counts, x.detach(), a)
    oc.update(x, a)
    torch.testing.assert_close(oc.centers, want_c.float())
    torch.testing.assert_close(oc.counts, want_n)
    assert set(oc.state_dict()) == {"centers", "counts"}
    # claus.losses.cluster_loss is the same op.
    l2, a2 = cluster_loss(x, oc.centers, 0.5)
    torch.testing.assert_close(l2, claus_ext.cluster_loss(x, oc.centers, 0.5)[0])


@requires_cuda
def test_kmeans_cuda_matches_cpu():
    x = _blobs(2000, 16, 8, 5)
    cpu = KMeans(8, n_init=3, seed=0).fit(x)
    gpu = KMeans(8, n_init=3, seed=0).fit(x.cuda())
    assert gpu.cluster_centers_.is_cuda
    assert gpu.inertia_ == pytest.approx(cpu.inertia_, rel=1e-3)
