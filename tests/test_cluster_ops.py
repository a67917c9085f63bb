"""Clustering ops (cluster_assign, cluster_loss, update_centers_) against claus_ext.reference."""

from __future__ import annotations

import pytest
import torch

import claus_ext
from claus_ext import reference as ref
from tests.conftest import requires_cuda

# (N, D, K): K = 1, D = 1, N and K off every tile size (6- and 12-row micro-tiles, 96-row chunks,
# 8/16-wide centre panels (K = 8 is the last narrow one), 128-wide CUDA tiles), and the
# paper's D with its K.
SHAPES = [(1, 1, 1), (7, 1, 3), (13, 5, 1), (50, 12, 8), (50, 12, 9), (97, 37, 17), (250, 408, 5),
          (301, 64, 70)]


def assert_assign_exact(x, centers, assign, dist2):
    """The documented rule, element for element: assign is the argmin of the fp64 distances,
    ties to the lowest index, -1 for a row with no non-NaN distance (what the reference
    computes); dist2 is that fp64 distance (summed in another order: a few ulp) in the output
    dtype. No tolerance on the assignment: a kernel that breaks a tie the other way, or picks a
    centre merely close to the best, fails."""
    ra, rd = ref.cluster_assign(x, centers)
    assert assign.dtype == torch.int64 and assign.shape == ra.shape
    wrong = (assign != ra).nonzero()[:, 0]
    assert wrong.numel() == 0, (
        f"{wrong.numel()} rows differ, e.g. row {int(wrong[0])}: assign "
        f"{int(assign[wrong[0]])} but reference {int(ra[wrong[0]])}; distances "
        f"{ref.cluster_dist2(x, centers)[wrong[0]].tolist()}")
    if dist2.dtype == torch.float64:
        tol = {"rtol": 1e-13, "atol": 1e-300}
    else:  # fp64 rounded to float32 (2 ulp), subnormal steps at the tiny scales
        tol = {"rtol": 2.4e-7, "atol": 3e-45}
    torch.testing.assert_close(dist2.to(torch.float64), rd.to(torch.float64), equal_nan=True,
                               **tol)


def assert_assign_ok(x, centers, assign, dist2):
    """Looser check for the CUDA tests (not yet run exactly on a GPU): assign equals the fp64
    reference except where the two best distances are within 1e-5 relative; dist2 matches the
    fp64 distance of the reference to 1e-4 relative + 1e-6."""
    ra, rd = ref.cluster_assign(x, centers)
    d = ref.cluster_dist2(x, centers)
    torch.testing.assert_close(dist2.to(torch.float64), rd.to(torch.float64), rtol=1e-4,
                               atol=1e-6, equal_nan=True)
    assert assign.dtype == torch.int64 and assign.shape == ra.shape
    bad = (assign != ra).nonzero()[:, 0]
    for i in bad.tolist():
        assert assign[i] >= 0, f"row {i}: assign {assign[i]} but reference {ra[i]}"
        mine, best = float(d[i, assign[i]]), float(d[i, ra[i]])
        assert mine <= best * (1 + 1e-5) + 1e-12, (
            f"row {i}: assign {int(assign[i])} at {mine} but reference {int(ra[i])} at {best}")
    assert bool((dist2[~torch.isnan(dist2)] >= 0).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_assign_matches_reference(shape, dtype, gen):
    n, dim, k = shape
    x = torch.randn(n, dim, generator=gen, dtype=dtype)
    c = torch.randn(k, dim, generator=gen, dtype=dtype)
    a, d2 = claus_ext.cluster_assign(x, c)
    assert d2.dtype == dtype
    assert_assign_exact(x, c, a, d2)


def test_assign_guards_cancellation(gen):
    # Points and centres far from the origin, close to each other: ||x||^2 ~ 6.4e7 while the
    # distances are ~1e-2, far below fp32 resolution of the ||x||^2 - 2x.c + ||c||^2 expansion.
    x = 1000.0 + 0.01 * torch.randn(500, 64, generator=gen)
    c = 1000.0 + 0.01 * torch.randn(9, 64, generator=gen)
    a, d2 = claus_ext.cluster_assign(x, c)
    assert_assign_exact(x, c, a, d2)
    # The expansion alone gets it wrong here, so the check above is not vacuous.
    approx = (x.square().sum(1, keepdim=True) - 2 * x @ c.T + c.square().sum(1)).argmin(1)
    assert (approx != ref.cluster_assign(x, c)[0]).any()


def check_extreme_scales(device: str, dim: int) -> None:
    """Rows scaled by 1e-21 (fp32 products underflow to subnormals, whose rounding error is
    absolute, so the scores' relative error bound no longer holds), 3e18 (partial sums
    overflow) and 1, mixed, against centres of each scale placed near rows of that scale (close
    calls): such rows must take the exact scan. The checks are relative only (assert_assign_ok's
    absolute tolerances would pass anything at 1e-21)."""
    g = torch.Generator().manual_seed(7)
    n, k = 6000, 40
    scales = torch.tensor([1e-21, 3e18, 1.0])
    x = torch.randn(n, dim, generator=g) * scales[torch.arange(n) % 3, None]
    for which in ([0], [1], [2, 0]):
        # Centre j: a row of scale which[j % len(which)] plus 5% noise of that scale.
        s = torch.tensor(which)[torch.arange(k) % len(which)]
        rows = torch.randint(0, n // 3, (k,), generator=g) * 3 + s
        c = x[rows] + 0.05 * scales[s, None] * torch.randn(k, dim, generator=g)
        a, d2 = claus_ext.cluster_assign(x.to(device), c.to(device))
        a, d2 = a.cpu(), d2.cpu()
        (assert_assign_exact if device == "cpu" else assert_assign_ok)(x, c, a, d2)
        ra, rd = ref.cluster_assign(x, c)
        # atol: a few fp32 subnormal steps (2^-149 each), the precision float32 output has at
        # 1e-21 scale, where the distances are ~1e-41.
        torch.testing.assert_close(d2, rd, rtol=1e-4, atol=1e-44)
        d = ref.cluster_dist2(x, c)
        i = torch.arange(n)
        assert bool((d[i, a] <= d[i, ra] * (1 + 1e-5)).all())


@pytest.mark.parametrize("dim", [17, 128])
def test_assign_extreme_scales(dim):
    check_extreme_scales("cpu", dim)


def test_assign_ties_go_to_lowest_index():
    x = torch.zeros(10, 3)
    c = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0], [0, 1.0, 0], [0, 0, -1.0]])
    a, d2 = claus_ext.cluster_assign(x, c)
    assert a.tolist() == [0] * 10 and d2.tolist() == [1.0] * 10
    # Duplicate centres: always the first copy.
    pts = torch.randn(50, 4, generator=torch.Generator().manual_seed(1))
    cd = torch.cat([pts[:3], pts[:3]])
    a, _ = claus_ext.cluster_assign(pts, cd)
    assert (a < 3).all()
    # Integer grid: many exact ties between centres at equal distance.
    g = torch.arange(-3.0, 4.0)
    grid = torch.cartesian_prod(g, g)
    cg = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    a, d2 = claus_ext.cluster_assign(grid, cg)
    torch.testing.assert_close(a, ref.cluster_assign(grid, cg)[0], rtol=0, atol=0)
    torch.testing.assert_close(d2, ref.cluster_assign(grid, cg)[1], rtol=0, atol=0)


def integer_grid_case(shape, dtype, seed: int):
    """Points and centres on a small integer grid (every distance an exact small integer, so
    ties are everywhere), a third of the centres copies of earlier ones, a quarter of the rows
    at the exact midpoint of two centres, all scaled by a power of two (exact too)."""
    g = torch.Generator().manual_seed(seed)
    n, dim, k = shape
    x = torch.randint(-3, 4, (n, dim), generator=g).to(dtype)
    c = torch.randint(-2, 3, (k, dim), generator=g).to(dtype)
    for j in range(1, k, 3):  # centre j repeats an earlier centre
        c[j] = c[int(torch.randint(0, j, (1,), generator=g))]
    if k >= 2:
        i, j = torch.randint(0, k, (2, n), generator=g)
        mid = (c[i] + c[j]) / 2  # half-integers: exact
        take = torch.rand(n, generator=g) < 0.25
        x = torch.where(take[:, None], mid, x)
    scale = 2.0 ** int(torch.randint(-12, 13, (1,), generator=g))
    return x * scale, c * scale


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_assign_integer_grid_ties_exact(shape, dtype):
    for seed in range(2):
        x, c = integer_grid_case(shape, dtype, seed)
        a, d2 = claus_ext.cluster_assign(x, c)
        assert_assign_exact(x, c, a, d2)
        if shape[2] >= 2:
            # Not vacuous: many rows have two or more nearest centres.
            d = ref.cluster_dist2(x, c)
            ties = (d == d.min(1, keepdim=True).values).sum(1) > 1
            assert int(ties.sum()) >= max(1, shape[0] // 10)


@pytest.mark.parametrize("shape", [(50, 12, 8), (97, 37, 17), (301, 64, 70), (400, 20, 40)])
def test_assign_duplicated_centres_exact(shape, gen):
    # Random (non-integer) data, every centre present twice: once in the first half and once,
    # in another order, in the second, so the copies sit in different 8/16-wide centre panels.
    # The first copy always wins; an odd K adds one unique centre at the end.
    n, dim, k = shape
    h = k // 2
    x = torch.randn(n, dim, generator=gen)
    half = torch.randn(h, dim, generator=gen)
    perm = torch.randperm(h, generator=gen)
    c = torch.cat([half, half[perm], torch.randn(k % 2, dim, generator=gen)])
    a, d2 = claus_ext.cluster_assign(x, c)
    assert_assign_exact(x, c, a, d2)
    assert not ((a >= h) & (a < 2 * h)).any(), "a second copy won"
    # Rows on a centre of the second half: distance 0 to both copies, the first (perm) wins.
    on = c[h:2 * h].clone()
    a2, d22 = claus_ext.cluster_assign(on, c)
    assert_assign_exact(on, c, a2, d22)
    assert torch.equal(a2, perm) and (d22 == 0).all()


def test_assign_non_contiguous(gen):
    big = torch.randn(120, 40, generator=gen)
    x = big[::2, ::2]
    c = torch.randn(20, 11, generator=gen).T  # (11, 20), column-major
    assert not x.is_contiguous() and not c.is_contiguous()
    a, d2 = claus_ext.cluster_assign(x, c)
    assert_assign_exact(x, c, a, d2)


def test_assign_nan_and_inf_rows(gen):
    x = torch.randn(20, 6, generator=gen)
    c = torch.randn(4, 6, generator=gen)
    x[3, 2] = float("nan")
    x[5, 0] = float("inf")
    a, d2 = claus_ext.cluster_assign(x, c)
    assert a[3] == -1 and torch.isnan(d2[3])
    assert a[5] == 0 and torch.isinf(d2[5])  # every distance is inf: a tie, lowest index
    assert_assign_exact(x, c, a, d2)
    # A NaN centre never wins.
    c[1, 0] = float("nan")
    a, d2 = claus_ext.cluster_assign(x, c)
    assert not (a == 1).any()
    assert_assign_exact(x, c, a, d2)


def test_assign_is_not_differentiable():
    x = torch.randn(6, 3, requires_grad=True)
    a, d2 = claus_ext.cluster_assign(x, torch.randn(2, 3))
    assert a.shape == (6,)  # a forward on a tensor that requires grad is fine
    with pytest.raises(RuntimeError, match="not differentiable"):
        d2.sum().backward()


def test_assign_empty_and_bad_input():
    a, d2 = claus_ext.cluster_assign(torch.empty(0, 5), torch.randn(3, 5))
    assert a.shape == (0,) and d2.shape == (0,) and a.dtype == torch.int64
    x = torch.randn(4, 5)
    with pytest.raises(ValueError, match="K >= 1"):
        claus_ext.cluster_assign(x, torch.empty(0, 5))
    with pytest.raises(ValueError, match="centers shape"):
        claus_ext.cluster_assign(x, torch.randn(3, 4))
    with pytest.raises(ValueError, match="x must be 2-D"):
        claus_ext.cluster_assign(torch.randn(5), torch.randn(3, 5))
    with pytest.raises(ValueError, match="centers dtype"):
        claus_ext.cluster_assign(x, torch.randn(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="only on CUDA"):
        claus_ext.cluster_assign(x.half(), torch.randn(3, 5).half())
    with pytest.raises(ValueError, match="x must be float32"):
        claus_ext.cluster_assign(x.int(), torch.randn(3, 5).int())


def test_assign_independent_of_thread_count(gen):
    x = torch.randn(3000, 65, generator=gen)  # 32 chunks of 96 rows: several tasks
    c = torch.randn(21, 65, generator=gen)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a1, d1 = claus_ext.cluster_assign(x, c)
        torch.set_num_threads(max(2, old))
        a2, d2 = claus_ext.cluster_assign(x, c)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(a1, a2) and torch.equal(d1, d2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (9, 7, 41), (130, 20, 3)])
def test_loss_forward_backward(shape, dtype, gen):
    n, dim, k = shape
    x = torch.randn(n, dim, generator=gen, dtype=dtype, requires_grad=True)
    c = torch.randn(k, dim, generator=gen, dtype=dtype)
    loss, a = claus_ext.cluster_loss(x, c, 0.7)
    rloss, ra = ref.cluster_loss(x, c, 0.7)
    torch.testing.assert_close(loss, rloss)
    assert torch.equal(a, ra)
    # Not the last layer: a random upstream gradient.
    up = torch.rand((), generator=gen, dtype=dtype) + 0.5
    (g,) = torch.autograd.grad(loss * up, x)
    (rg,) = torch.autograd.grad(rloss * up, x)
    torch.testing.assert_close(g, rg)


def test_loss_gradcheck_and_no_center_grad(gen):
    x = torch.randn(11, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    c = torch.randn(3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: claus_ext.cluster_loss(t, c.detach(), 1.3)[0], (x,))
    loss, _ = claus_ext.cluster_loss(x, c, 1.0)
    loss.backward()
    assert x.grad is not None and c.grad is None


def test_loss_empty_nan_and_bad_input():
    x = torch.empty(0, 3, requires_grad=True)
    loss, a = claus_ext.cluster_loss(x, torch.randn(2, 3), 1.0)
    assert float(loss.detach()) == 0.0 and a.shape == (0,)
    loss.backward()
    assert x.grad.shape == (0, 3)
    xn = torch.randn(4, 3)
    xn[1, 1] = float("nan")
    loss, a = claus_ext.cluster_loss(xn, torch.randn(2, 3), 1.0)
    assert torch.isnan(loss) and a[1] == -1
    with pytest.raises(ValueError, match="beta must be finite"):
        claus_ext.cluster_loss(torch.randn(4, 3), torch.randn(2, 3), float("inf"))
    with pytest.raises(ValueError, match="assign values"):
        torch.ops.claus.cluster_loss_backward(torch.tensor(1.0), torch.randn(4, 3),
                                              torch.randn(2, 3), torch.tensor([0, 1, 2, 0]), 1.0)


@pytest.mark.parametrize("count_dtype", [torch.int64, torch.float64, torch.float32])
def test_update_closed_form_equals_sequential_rule(count_dtype, gen):
    k, dim, n = 5, 7, 200
    centers = torch.randn(k, dim, generator=gen, dtype=torch.float64)
    counts = torch.full((k,), 100, dtype=count_dtype)
    counts[2] = 0  # an empty centre becomes the mean of its rows
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    a = torch.randint(-1, k - 1, (n,), generator=gen)  # cluster k-1 gets no rows; -1 skipped
    want_c, want_n = ref.update_centers_sequential(centers, counts, x, a)
    closed_c, closed_n = ref.update_centers(centers, counts, x, a)
    torch.testing.assert_close(closed_c, want_c)
    c, nn = centers.clone(), counts.clone()
    claus_ext.update_centers_(c, nn, x, a)
    torch.testing.assert_close(c, want_c)
    torch.testing.assert_close(nn.to(torch.float64), want_n)
    assert nn.dtype == count_dtype
    assert torch.equal(c[k - 1], centers[k - 1])


def test_update_float32_non_contiguous_in_place(gen):
    base = torch.randn(6, 8, generator=gen)
    centers = base.T  # (8, 6) view, not contiguous
    counts = torch.full((16,), 3.0)[::2]
    x = torch.randn(40, 12, generator=gen)[:, ::2]
    a = torch.randint(0, 8, (40,), generator=gen)
    want_c, want_n = ref.update_centers(centers, counts, x, a)
    claus_ext.update_centers_(centers, counts, x, a)
    torch.testing.assert_close(base.T, want_c.float())  # written through the view
    torch.testing.assert_close(counts, want_n.float())


def test_update_deterministic_and_thread_independent(gen):
    centers = torch.randn(16, 300, generator=gen)
    x = torch.randn(3000, 300, generator=gen)
    a = torch.randint(0, 16, (3000,), generator=gen)
    old = torch.get_num_threads()
    outs = []
    try:
        for t in (1, max(2, old)):
            torch.set_num_threads(t)
            c, n = centers.clone(), torch.zeros(16)
            claus_ext.update_centers_(c, n, x, a)
            outs.append(c)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(outs[0], outs[1])


def test_update_bad_input():
    c, n, x = torch.randn(3, 2), torch.ones(3), torch.randn(4, 2)
    a = torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match="counts must be finite and >= 0"):
        claus_ext.update_centers_(c, torch.tensor([1.0, -1.0, 0.0]), x, a)
    with pytest.raises(ValueError, match="counts must be float32, float64 or int64"):
        claus_ext.update_centers_(c, torch.ones(3, dtype=torch.int32), x, a)
    with pytest.raises(ValueError, match="assign values"):
        claus_ext.update_centers_(c, n, x, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="assign values"):
        claus_ext.update_centers_(c, n, x, torch.tensor([0, -2, 1, 0]))
    with pytest.raises(ValueError, match="assign must be int64"):
        claus_ext.update_centers_(c, n, x, a.int())
    with pytest.raises(ValueError, match="x must have shape"):
        claus_ext.update_centers_(c, n, torch.randn(4, 3), a)
    with pytest.raises(ValueError, match="counts must have shape"):
        claus_ext.update_centers_(c, torch.ones(2), x, a)
    before = c.clone()
    with pytest.raises(ValueError):
        claus_ext.update_centers_(c, n, x, torch.tensor([0, 1, 7, 0]))
    assert torch.equal(c, before)  # a rejected call changes nothing


def _samples():
    g = torch.Generator().manual_seed(3)
    for n, dim, k, dtype in [(9, 7, 4, torch.float32), (20, 3, 1, torch.float64),
                             (0, 4, 2, torch.float32)]:
        yield (torch.randn(n, dim, generator=g, dtype=dtype),
               torch.randn(k, dim, generator=g, dtype=dtype))


def test_opcheck_assign_and_loss():
    for x, c in _samples():
        torch.library.opcheck(torch.ops.claus.cluster_assign.default, (x, c))
        xg = x.clone().requires_grad_(True)
        torch.library.opcheck(torch.ops.claus.cluster_loss.default, (xg, c, 0.5))
        _, a = claus_ext.cluster_loss(x, c, 0.5)
        torch.library.opcheck(torch.ops.claus.cluster_loss_backward.default,
                              (torch.tensor(1.5, dtype=x.dtype), x, c, a, 0.5))


def test_opcheck_update():
    for x, c in _samples():
        a = claus_ext.cluster_assign(x, c)[0]
        for counts in (torch.full((c.shape[0],), 100.0, dtype=torch.float64),
                       torch.zeros(c.shape[0], dtype=torch.int64)):
            torch.library.opcheck(torch.ops.claus.update_centers_.default,
                                  (c.clone(), counts, x, a))


# CUDA scoring variants: K <= 8 exact scan; 32-, 64- and 128-wide centre tiles (K <= 32, <= 64,
# > 64), each with vector loads (D % 4 == 0) and without, one or several centre tiles, N off the
# 128-row block.
CUDA_SHAPES = SHAPES + [(1000, 128, 256), (777, 130, 129), (200, 20, 32), (129, 33, 64),
                        (300, 36, 40), (257, 64, 33), (130, 7, 65), (1500, 408, 300)]


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", CUDA_SHAPES)
def test_cuda_assign_parity(shape, dtype):
    g = torch.Generator().manual_seed(0)
    n, dim, k = shape
    x = torch.randn(n, dim, generator=g).to(dtype)
    c = torch.randn(k, dim, generator=g).to(dtype)
    a, d2 = claus_ext.cluster_assign(x.cuda(), c.cuda())
    assert d2.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert_assign_ok(x, c, a.cpu(), d2.cpu())


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("shape", [(300, 64, 40), (300, 64, 200), (300, 12, 20)])
def test_cuda_assign_misaligned_base(shape, dtype):
    # Contiguous views at an odd storage offset: D % 4 == 0 but the rows are not 4-element
    # aligned, so the kernel must take its scalar loads.
    g = torch.Generator().manual_seed(2)
    n, dim, k = shape
    xb = torch.randn(n * dim + 1, generator=g).to(dtype).cuda()
    cb = torch.randn(k * dim + 3, generator=g).to(dtype).cuda()
    x, c = xb[1:].view(n, dim), cb[3:].view(k, dim)
    a, d2 = claus_ext.cluster_assign(x, c)
    assert_assign_ok(x.cpu(), c.cpu(), a.cpu(), d2.cpu())


@requires_cuda
def test_cuda_assign_duplicate_centres_across_tiles():
    # Centre k and k + 70 are equal: the tie crosses warps and 128-wide centre tiles and must go
    # to the lower index.
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2000, 32, generator=g)
    c = torch.randn(70, 32, generator=g)
    cd = torch.cat([c, c, c])
    a, d2 = claus_ext.cluster_assign(x.cuda(), cd.cuda())
    assert_assign_ok(x, cd, a.cpu(), d2.cpu())
    assert (a < 70).all()


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("shape", [(1003, 128, 37), (1001, 30, 129)])
def test_cuda_assign_mixed_exact_rows(shape, dtype):
    # Rows at the midpoint of two centres (gap within the error bound: exact scan) next to
    # ordinary rows in the same 4-row refine warp, duplicate centres, N off 4 rows and K off the
    # 4-centre scan step; with vector loads (D % 4 == 0) and without.
    g = torch.Generator().manual_seed(5)
    n, dim, k = shape
    c = torch.randn(k, dim, generator=g)
    c[k - 1] = c[3]
    x = torch.randn(n, dim, generator=g)
    x[::3] = 0.5 * (c[1] + c[k - 2])
    x[1::7] = 0.5 * (c[3] + c[k - 1])
    x, c = x.to(dtype), c.to(dtype)
    a, d2 = claus_ext.cluster_assign(x.cuda(), c.cuda())
    assert_assign_ok(x, c, a.cpu(), d2.cpu())
    assert (a != k - 1).all()


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(50, 12, 9), (301, 64, 70), (1000, 128, 256), (777, 130, 129),
                                   (200, 20, 32), (130, 7, 65)])
def test_cuda_assign_integer_grid_ties_exact(shape, dtype):
    # The CPU's exact rule on the GPU's paths (exact scan, 32/64/128-wide tiles, vector loads):
    # ties everywhere, duplicated centres, midpoints; compared element for element.
    for seed in range(2):
        x, c = integer_grid_case(shape, dtype, seed)
        a, d2 = claus_ext.cluster_assign(x.cuda(), c.cuda())
        assert_assign_exact(x, c, a.cpu(), d2.cpu())


@requires_cuda
@pytest.mark.parametrize("dim", [17, 128])
def test_cuda_assign_extreme_scales(dim):
    check_extreme_scales("cuda", dim)


@requires_cuda
def test_cuda_assign_deterministic():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5000, 128, generator=g).cuda()
    c = torch.randn(256, 128, generator=g).cuda()
    a1, d1 = claus_ext.cluster_assign(x, c)
    a2, d2 = claus_ext.cluster_assign(x, c)
    assert torch.equal(a1, a2) and torch.equal(d1, d2)
    assert_assign_ok(x.cpu(), c.cpu(), a1.cpu(), d1.cpu())


@requires_cuda
def test_cuda_assign_cancellation_nan_ties():
    g = torch.Generator().manual_seed(1)
    x = 1000.0 + 0.01 * torch.randn(3000, 64, generator=g)
    c = 1000.0 + 0.01 * torch.randn(9, 64, generator=g)
    x[7, 3] = float("nan")
    a, d2 = claus_ext.cluster_assign(x.cuda(), c.cuda())
    assert_assign_ok(x, c, a.cpu(), d2.cpu())
    assert a[7] == -1
    cd = torch.cat([c[:3], c[:3]])
    a, d2 = claus_ext.cluster_assign(x.cuda(), cd.cuda())
    assert_assign_ok(x, cd, a.cpu(), d2.cpu())
    assert (a[a >= 0] < 3).all()


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_cuda_loss_parity(dtype):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, 20, generator=g).to(dtype)
    c = torch.randn(7, 20, generator=g).to(dtype)
    xc = x.cuda().requires_grad_(True)
    loss, a = claus_ext.cluster_loss(xc, c.cuda(), 0.9)
    rloss, ra = ref.cluster_loss(x.requires_grad_(True), c, 0.9)
    torch.testing.assert_close(loss.cpu(), rloss.to(loss.dtype), rtol=1e-5, atol=1e-6)
    assert torch.equal(a.cpu(), ra)
    (gx,) = torch.autograd.grad(loss * 1.7, xc)
    (rg,) = torch.autograd.grad(rloss * 1.7, x)
    tol = {torch.float16: 2e-3}.get(dtype, 1e-5)
    torch.testing.assert_close(gx.cpu().to(torch.float64), rg.to(torch.float64), rtol=tol,
                               atol=tol)


@requires_cuda
@pytest.mark.parametrize("count_dtype", [torch.int64, torch.float32])
def test_cuda_update_parity(count_dtype):
    g = torch.Generator().manual_seed(4)
    centers = torch.randn(9, 33, generator=g)
    counts = torch.full((9,), 100, dtype=count_dtype)
    x = torch.randn(5000, 33, generator=g)
    a = torch.randint(-1, 8, (5000,), generator=g)
    want_c, want_n = ref.update_centers(centers, counts, x, a)
    c, n = centers.cuda(), counts.cuda()
    claus_ext.update_centers_(c, n, x.cuda(), a.cuda())
    torch.testing.assert_close(c.cpu(), want_c.float())
    torch.testing.assert_close(n.cpu().to(torch.float64), want_n)
    with pytest.raises(ValueError, match="assign values"):
        claus_ext.update_centers_(c, n, x.cuda(), torch.full((5000,), 9, device="cuda"))


@requires_cuda
def test_cuda_opcheck():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(50, 12, generator=g).cuda()
    c = torch.randn(6, 12, generator=g).cuda()
    torch.library.opcheck(torch.ops.claus.cluster_assign.default, (x, c))
    torch.library.opcheck(torch.ops.claus.cluster_loss.default,
                          (x.clone().requires_grad_(True), c, 0.5))
    a = claus_ext.cluster_assign(x, c)[0]
    torch.library.opcheck(torch.ops.claus.update_centers_.default,
                          (c.clone(), torch.zeros(6, device="cuda"), x, a))
