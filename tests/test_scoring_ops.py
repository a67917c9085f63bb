"""Frame scoring ops (`claus_ext.frame_uncertainty`, `claus_ext.select_frames`) against their
pure-PyTorch references, hand-computed cases, edge cases, bad input, opcheck and CUDA parity."""

from __future__ import annotations

import math

import pytest
import torch

import claus_ext
from claus_ext import reference as ref
from tests.conftest import requires_cuda

MODES = ("mean_log", "log_mean")


# ---------------------------------------------------------------------------------------------
# frame_uncertainty


def random_logits(gen: torch.Generator, shape, scale: float = 4.0) -> torch.Tensor:
    """Logits with a spread of magnitudes, including saturated pixels (|z| up to 120)."""
    z = torch.randn(shape, generator=gen) * scale
    wild = torch.rand(shape, generator=gen) < 0.02
    return torch.where(wild, torch.randn(shape, generator=gen) * 60, z).clamp(-120, 120)


def clear_threshold(z: torch.Tensor, thr: float, band: float = 1e-4) -> torch.Tensor:
    """Moves pixels whose p̄ lies within `band` of the threshold well away from it, so float32
    rounding cannot flip a pixel's foreground status between kernel and reference."""
    pbar = torch.sigmoid(z.double()).mean(0)
    near = (pbar - thr).abs() < band
    return torch.where(near[None], z + 3.0, z)


def assert_frame_stats_close(got, want, hw: int) -> None:
    fg, unc, ent = got
    efg, eunc, eent = want
    torch.testing.assert_close(fg, efg, rtol=0, atol=0)
    # Per-pixel terms are O(1) to O(100) (saturated logits): compare sums relative to magnitude.
    torch.testing.assert_close(unc, eunc, rtol=2e-5, atol=1e-5 * max(hw, 1))
    torch.testing.assert_close(ent, eent, rtol=2e-5, atol=1e-5 * max(hw, 1))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(6))
def test_frame_uncertainty_matches_reference(mode, seed):
    gen = torch.Generator().manual_seed(seed)
    R, N, T = (int(torch.randint(1, 7, (1,), generator=gen)), int(torch.randint(1, 4, (1,),
               generator=gen)), int(torch.randint(1, 6, (1,), generator=gen)))
    H, W = (int(x) for x in torch.randint(1, 40, (2,), generator=gen))
    thr = float(torch.empty(1).uniform_(0.05, 0.95, generator=gen))
    z = clear_threshold(random_logits(gen, (R, N, T, H, W)), thr)
    got = claus_ext.frame_uncertainty(z, thr, mode)
    assert all(t.shape == (N, T) and t.dtype == torch.float32 for t in got)
    assert_frame_stats_close(got, ref.frame_uncertainty(z.double(), thr, mode), H * W)


def dyadic_threshold(gen: torch.Generator, R: int) -> tuple[int, float]:
    """A random threshold j/(2R) that is a dyadic fraction (exact in float32 and float64)."""
    halves = [j for j in range(1, 2 * R) if (j / (2 * R)) * 2**12 % 1 == 0]
    j = halves[int(torch.randint(0, len(halves), (1,), generator=gen))]
    return j, j / (2 * R)


def plant_at_threshold(gen: torch.Generator, z: torch.Tensor, j: int) -> torch.Tensor:
    """Logits (R,N,T,H,W) with a third of the pixels (pixel 0 always) given p̄ EXACTLY at the
    threshold j/(2R), and a few one half-pass above or below it.

    Such a pixel's passes are +50 (sigmoid 1 in float32 and float64 alike), -50 (sigmoid
    ~2e-22, lost when added to 0.5 or 1) or 0 (sigmoid 1/2 exactly), in random order, so
    p̄ = (k + m/2)/R with k passes at +50 and m at 0: exact in both precisions when it is a
    dyadic fraction, as the threshold is."""
    R = z.shape[0]

    def passes(target: torch.Tensor) -> torch.Tensor:  # (n,) -> (R, n), sigmoids sum target/2
        k, m = target // 2, target % 2
        swap = (k > 0) & (k + m + 1 <= R) & (torch.rand(k.shape, generator=gen) < 0.5)
        k, m = k - swap.long(), m + 2 * swap.long()  # one +50 becomes two zeros
        rank = torch.rand(R, k.numel(), generator=gen).argsort(0).argsort(0)  # random order
        return torch.where(rank < k, 50.0, torch.where(rank < k + m, 0.0, -50.0))

    pix = z.shape[1:].numel()
    flat = z.reshape(R, pix).clone()
    which = torch.rand(pix, generator=gen)
    which[0] = 0.0
    at = which < 1 / 3
    flat[:, at] = passes(torch.full((int(at.sum()),), j))
    near = ((which >= 1 / 3) & (which < 0.4)).nonzero()[:, 0]
    up = (near % 2 == 1) & (j + 1 < 2 * R)
    flat[:, near] = passes(torch.where(up, j + 1, j - 1))
    return flat.reshape(z.shape)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(6))
def test_frame_uncertainty_pixels_at_the_threshold(mode, seed):
    # The random cases above move every pixel away from the threshold; here a third of them sit
    # exactly on it, and both the kernel and the reference must count them as background
    # (foreground iff p̄ > threshold).
    gen = torch.Generator().manual_seed(1000 + seed)
    R = int(torch.randint(1, 9, (1,), generator=gen))
    N, T = (int(v) for v in torch.randint(1, 4, (2,), generator=gen))
    H, W = (int(v) for v in torch.randint(1, 30, (2,), generator=gen))
    j, thr = dyadic_threshold(gen, R)
    z = clear_threshold(random_logits(gen, (R, N, T, H, W)), thr)
    z = plant_at_threshold(gen, z, j)
    got = claus_ext.frame_uncertainty(z, thr, mode)
    want = ref.frame_uncertainty(z.double(), thr, mode)
    # Not vacuous: `>=` would count more pixels than the reference does.
    pbar = torch.sigmoid(z.double()).mean(0)
    assert bool((pbar == thr).any())
    assert not torch.equal(want[0], (pbar >= thr).sum((2, 3)).float())
    assert_frame_stats_close(got, want, H * W)


def test_frame_uncertainty_large_frame_spans_tiles(gen):
    # 3 x 1100 pixels: several CPU tiles per frame, a partial last one.
    z = clear_threshold(random_logits(gen, (4, 2, 3, 33, 100)), 0.4)
    for mode in MODES:
        assert_frame_stats_close(claus_ext.frame_uncertainty(z, 0.4, mode),
                                 ref.frame_uncertainty(z.double(), 0.4, mode), 3300)


def test_frame_uncertainty_hand_computed():
    # One frame of three pixels, R = 2 passes.
    ln3 = math.log(3.0)
    z = torch.tensor([[0.0, ln3, -5.0], [0.0, -ln3, -5.0]]).reshape(2, 1, 1, 1, 3)
    p_bg = 1 / (1 + math.exp(5.0))
    h = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))
    # Pixel 0: p = (.5, .5); pixel 1: p = (.75, .25), p̄ = .5; pixel 2: p̄ = sigmoid(-5) < 0.4.
    fg, unc, ent = claus_ext.frame_uncertainty(z, 0.4, "mean_log")
    assert fg.item() == 2.0
    expected_u = math.log(2.0) + (-math.log(0.75) - math.log(0.25)) / 2
    assert unc.item() == pytest.approx(expected_u, rel=1e-6)
    assert ent.item() == pytest.approx(2 * math.log(2.0) + h(p_bg), rel=1e-6)
    # log_mean: -log p̄ = log 2 for both foreground pixels.
    fg, unc, ent = claus_ext.frame_uncertainty(z, 0.4, "log_mean")
    assert fg.item() == 2.0
    assert unc.item() == pytest.approx(2 * math.log(2.0), rel=1e-6)
    assert ent.item() == pytest.approx(2 * math.log(2.0) + h(p_bg), rel=1e-6)
    # A threshold above 0.5 leaves no foreground pixel.
    fg, unc, _ = claus_ext.frame_uncertainty(z, 0.6, "mean_log")
    assert fg.item() == 0.0 and unc.item() == 0.0


def test_frame_uncertainty_saturated_and_infinite_logits():
    z = torch.tensor([[100.0, -100.0, float("inf"), float("-inf"), 88.0, -88.0, 0.0]])
    z = z.reshape(1, 1, 1, 1, 7)
    for mode in MODES:
        got = claus_ext.frame_uncertainty(z, 0.5, mode)
        want = ref.frame_uncertainty(z.double(), 0.5, mode)
        assert all(torch.isfinite(t).all() for t in got)
        assert got[0].item() == 3.0  # 100, inf, 88 (0 gives p̄ = 0.5, not > 0.5)
        torch.testing.assert_close(got[1:], want[1:], rtol=1e-5, atol=1e-6)


def test_frame_uncertainty_nan_propagates():
    z = torch.zeros(2, 1, 2, 1, 2)
    z[1, 0, 1, 0, 0] = float("nan")
    fg, unc, ent = claus_ext.frame_uncertainty(z, 0.4, "mean_log")
    assert torch.isfinite(ent[0, 0]) and torch.isnan(ent[0, 1])
    assert fg[0, 1].item() == 1.0  # the NaN pixel is not foreground (NaN > thr is false)
    assert torch.isfinite(unc).all()


def test_frame_uncertainty_deterministic_across_threads(gen):
    z = random_logits(gen, (5, 3, 4, 37, 41))
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = claus_ext.frame_uncertainty(z, 0.3)
        torch.set_num_threads(max(2, old))
        many = claus_ext.frame_uncertainty(z, 0.3)
    finally:
        torch.set_num_threads(old)
    for a, b in zip(one, many, strict=True):
        assert torch.equal(a, b)


def test_frame_uncertainty_non_contiguous(gen):
    z = random_logits(gen, (3, 4, 2, 9, 11)).permute(0, 2, 1, 3, 4)  # (R,T,N,H,W) storage
    want = claus_ext.frame_uncertainty(z.contiguous(), 0.4)
    got = claus_ext.frame_uncertainty(z, 0.4)
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("shape", [(2, 0, 3, 4, 4), (2, 3, 0, 4, 4), (2, 3, 2, 0, 4),
                                   (1, 2, 2, 3, 0)])
def test_frame_uncertainty_empty(shape):
    out = claus_ext.frame_uncertainty(torch.zeros(shape), 0.4)
    for t in out:
        assert t.shape == shape[1:3] and t.dtype == torch.float32
        assert (t == 0).all()


@pytest.mark.parametrize(
    ("logits", "thr", "mode", "match"),
    [
        (torch.zeros(2, 3, 4, 4), 0.4, "mean_log", "logits must be 5-D"),
        (torch.zeros(0, 1, 2, 3, 3), 0.4, "mean_log", "R > 0"),
        (torch.zeros(2, 1, 2, 3, 3, dtype=torch.float64), 0.4, "mean_log", "logits must be"),
        (torch.zeros(2, 1, 2, 3, 3, dtype=torch.float16), 0.4, "mean_log", "logits must be"),
        (torch.zeros(2, 1, 2, 3, 3), 0.0, "mean_log", "fg_threshold"),
        (torch.zeros(2, 1, 2, 3, 3), 1.0, "mean_log", "fg_threshold"),
        (torch.zeros(2, 1, 2, 3, 3), float("nan"), "mean_log", "fg_threshold"),
        (torch.zeros(2, 1, 2, 3, 3), 0.4, "mean", "mode"),
    ],
)
def test_frame_uncertainty_bad_input(logits, thr, mode, match):
    with pytest.raises(ValueError, match=match):
        claus_ext.frame_uncertainty(logits, thr, mode)
    # The fake kernel (torch.compile, meta tensors) raises the same error; meta tensors are not
    # on the CPU, so the CPU-only dtype rule does not apply to them.
    if logits.dtype != torch.float16:
        with pytest.raises(ValueError, match=match):
            torch.ops.claus.frame_uncertainty(logits.to("meta"), thr, mode)


def test_frame_uncertainty_opcheck(gen):
    for shape in [(3, 2, 2, 5, 7), (1, 1, 1, 1, 1), (2, 0, 2, 3, 3)]:
        for mode in MODES:
            torch.library.opcheck(torch.ops.claus.frame_uncertainty.default,
                                  (random_logits(gen, shape), 0.4, mode))


def test_frame_uncertainty_compiles(gen):
    z = random_logits(gen, (2, 2, 3, 6, 6))
    fn = torch.compile(lambda x: claus_ext.frame_uncertainty(x, 0.4, "log_mean"),
                       backend="aot_eager", fullgraph=True)
    for a, b in zip(fn(z), claus_ext.frame_uncertainty(z, 0.4, "log_mean"), strict=True):
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------------
# select_frames


def assert_selection_equal(got, want) -> None:
    sel, ps, vs = got
    esel, eps, evs = want
    assert sel.dtype == torch.int64 and ps.dtype == torch.float32 and vs.dtype == torch.float32
    assert torch.equal(sel, esel), f"selected differ:\n{sel}\nvs reference\n{esel}"
    # Same float32 operations in the same order: the recorded scores agree bit for bit.
    torch.testing.assert_close(ps, eps, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(vs, evs, rtol=1e-6, atol=1e-7, equal_nan=True)


def random_selection_case(gen: torch.Generator, n_max: int = 12, l_max: int = 70):
    N = int(torch.randint(1, n_max, (1,), generator=gen))
    L = int(torch.randint(1, l_max, (1,), generator=gen))
    lengths = torch.randint(0, L + 1, (N,), generator=gen)
    inside = torch.arange(L)[None, :] < lengths[:, None]  # padded videos
    unc = torch.rand(N, L, generator=gen)
    if bool(torch.rand(1, generator=gen) < 0.5):
        unc = (unc * 4).floor() / 4  # few distinct values: many ties
    annotated = (torch.rand(N, L, generator=gen) < 0.1) & inside
    if bool(torch.rand(1, generator=gen) < 0.2):
        annotated = inside.clone()  # all frames annotated
    candidates = (torch.rand(N, L, generator=gen) < 0.8) & inside & ~annotated
    k = torch.randint(0, 12, (N,), generator=gen)  # often more than the eligible frames
    sigma = float(torch.empty(1).uniform_(0.5, 5.0, generator=gen))
    radius = int(torch.randint(0, 7, (1,), generator=gen))
    return unc, candidates, annotated, k, sigma, radius


@pytest.mark.parametrize("seed", range(8))
def test_select_frames_matches_reference(seed):
    gen = torch.Generator().manual_seed(100 + seed)
    for _ in range(25):
        args = random_selection_case(gen)
        assert_selection_equal(claus_ext.select_frames(*args), ref.select_frames(*args))


def test_select_frames_hand_computed():
    # L = 5, one annotated frame (2), sigma = 1, radius = 1, k = 2.
    unc = torch.tensor([[0.9, 0.5, 0.0, 0.6, 0.8]])
    annotated = torch.tensor([[False, False, True, False, False]])
    candidates = ~annotated
    sel, ps, vs = claus_ext.select_frames(unc, candidates, annotated, 2, sigma=1.0, radius=1)
    # s = unc - exp(-d^2/2): d = (2, 1, -, 1, 2) -> frame 0 (0.9 - e^-2), then frame 1 drops by
    # e^-0.5 and frame 4 (0.8 - e^-2) beats frame 3 (0.6 - e^-0.5).
    assert sel.tolist() == [[0, 4]]
    e2 = math.exp(-2.0)
    assert ps[0].tolist() == pytest.approx([0.9 - e2, 0.8 - e2], abs=1e-6)
    assert vs.item() == pytest.approx(0.85 - e2, abs=1e-6)


def test_select_frames_suppression_changes_the_pick():
    unc = torch.tensor([[1.0, 0.95, 0.5, 0.9, 0.1]])
    none = torch.zeros(1, 5, dtype=torch.bool)
    cand = torch.ones(1, 5, dtype=torch.bool)
    # radius 0: no suppression, the runner-up neighbour wins.
    sel, _, _ = claus_ext.select_frames(unc, cand, none, 2, sigma=1.0, radius=0)
    assert sel.tolist() == [[0, 1]]
    # radius 2: frame 1 drops to 0.95 - e^-0.5, frame 2 to 0.5 - e^-2; frame 3 (0.9) wins.
    sel, ps, _ = claus_ext.select_frames(unc, cand, none, 2, sigma=1.0, radius=2)
    assert sel.tolist() == [[0, 3]]
    assert ps.tolist() == [[1.0, pytest.approx(0.9)]]


def test_select_frames_ties_go_to_lowest_index():
    unc = torch.full((2, 6), 0.5)
    none = torch.zeros(2, 6, dtype=torch.bool)
    cand = torch.ones(2, 6, dtype=torch.bool)
    sel, _, _ = claus_ext.select_frames(unc, cand, none, 3, sigma=1.0, radius=0)
    assert sel.tolist() == [[0, 1, 2], [0, 1, 2]]
    sel, _, _ = claus_ext.select_frames(unc, cand, none, 3, sigma=1.0, radius=1)
    assert sel.tolist() == [[0, 2, 4], [0, 2, 4]]


def test_select_frames_k_beyond_eligible_and_nan_scores():
    unc = torch.tensor([[0.3, float("nan"), 0.7, 0.1], [0.2, 0.4, 0.6, 0.8]])
    cand = torch.tensor([[True, True, True, False], [False, False, False, False]])
    ann = torch.zeros(2, 4, dtype=torch.bool)
    sel, ps, vs = claus_ext.select_frames(unc, cand, ann, torch.tensor([5, 2]), sigma=1.0,
                                          radius=0)
    assert sel.tolist() == [[2, 0, -1, -1, -1], [-1, -1, -1, -1, -1]]
    assert ps[0, :2].tolist() == pytest.approx([0.7, 0.3]) and torch.isnan(ps[0, 2:]).all()
    assert torch.isnan(ps[1]).all()
    assert vs[0].item() == pytest.approx(0.5) and torch.isnan(vs[1])


def test_select_frames_no_annotated_means_no_penalty():
    unc = torch.tensor([[0.2, 0.9, 0.4]])
    cand = torch.ones(1, 3, dtype=torch.bool)
    sel, ps, _ = claus_ext.select_frames(unc, cand, torch.zeros_like(cand), 1)
    assert sel.tolist() == [[1]] and ps.item() == torch.tensor(0.9).item()


def test_select_frames_single_frame_and_uint8_flags():
    unc = torch.tensor([[0.25], [0.5]])
    cand = torch.tensor([[1], [0]], dtype=torch.uint8)
    ann = torch.tensor([[0], [1]], dtype=torch.uint8)
    sel, ps, vs = claus_ext.select_frames(unc, cand, ann, 2)
    assert sel.tolist() == [[0, -1], [-1, -1]]
    assert ps[0, 0].item() == 0.25 and torch.isnan(vs[1])


def test_select_frames_empty():
    sel, ps, vs = claus_ext.select_frames(torch.zeros(0, 5), torch.zeros(0, 5, dtype=torch.bool),
                                          torch.zeros(0, 5, dtype=torch.bool), 3)
    assert sel.shape == (0, 3) and ps.shape == (0, 3) and vs.shape == (0,)
    sel, ps, vs = claus_ext.select_frames(torch.zeros(2, 0), torch.zeros(2, 0, dtype=torch.bool),
                                          torch.zeros(2, 0, dtype=torch.bool), 3)
    assert sel.tolist() == [[-1] * 3] * 2 and torch.isnan(ps).all() and torch.isnan(vs).all()
    sel, ps, vs = claus_ext.select_frames(torch.rand(2, 4), torch.ones(2, 4, dtype=torch.bool),
                                          torch.zeros(2, 4, dtype=torch.bool), 0)
    assert sel.shape == (2, 0) and ps.shape == (2, 0) and torch.isnan(vs).all()


def test_select_frames_deterministic_across_threads():
    gen = torch.Generator().manual_seed(7)
    N, L = 300, 200
    unc = torch.rand(N, L, generator=gen)
    ann = torch.rand(N, L, generator=gen) < 0.05
    cand = ~ann
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = claus_ext.select_frames(unc, cand, ann, 9)
        torch.set_num_threads(max(2, old))
        many = claus_ext.select_frames(unc, cand, ann, 9)
    finally:
        torch.set_num_threads(old)
    for a, b in zip(one, many, strict=True):
        assert torch.equal(a.nan_to_num(-7), b.nan_to_num(-7))


def _flags(n, length):
    return torch.zeros(n, length, dtype=torch.bool)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((torch.rand(5), _flags(1, 5), _flags(1, 5), 1, 1.0, 1), "frame_unc must be 2-D"),
        ((torch.rand(2, 5).double(), _flags(2, 5), _flags(2, 5), 1, 1.0, 1), "frame_unc must be"),
        ((torch.rand(2, 5), _flags(2, 4), _flags(2, 5), 1, 1.0, 1), "candidates must have"),
        ((torch.rand(2, 5), _flags(2, 5), _flags(3, 5), 1, 1.0, 1), "annotated must have"),
        ((torch.rand(2, 5), _flags(2, 5).float(), _flags(2, 5), 1, 1.0, 1), "candidates must be"),
        ((torch.rand(2, 5), _flags(2, 5), _flags(2, 5), -1, 1.0, 1), "k must be >= 0"),
        ((torch.rand(2, 5), _flags(2, 5), _flags(2, 5), torch.tensor([1, -2]), 1.0, 1),
         "k must be >= 0"),
        ((torch.rand(2, 5), _flags(2, 5), _flags(2, 5), torch.tensor([1, 2, 3]), 1.0, 1),
         "k must"),
        ((torch.rand(2, 5), _flags(2, 5), _flags(2, 5), 1, 0.0, 1), "sigma"),
        ((torch.rand(2, 5), _flags(2, 5), _flags(2, 5), 1, -1.0, 1), "sigma"),
        ((torch.rand(2, 5), _flags(2, 5), _flags(2, 5), 1, float("inf"), 1), "sigma"),
        ((torch.rand(2, 5), _flags(2, 5), _flags(2, 5), 1, 1.0, -1), "radius"),
    ],
)
def test_select_frames_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        claus_ext.select_frames(*args)


def test_select_frames_device_mismatch():
    unc, flags = torch.rand(2, 5), _flags(2, 5)
    with pytest.raises(ValueError, match="frame_unc is on cpu but candidates is on meta"):
        claus_ext.select_frames(unc, flags.to("meta"), flags, 1)
    with pytest.raises(ValueError, match="frame_unc is on cpu but annotated is on meta"):
        claus_ext.select_frames(unc, flags, flags.to("meta"), 1)


def test_select_frames_op_checks_k_against_kmax():
    unc, cand = torch.rand(2, 5), _flags(2, 5)
    with pytest.raises(ValueError, match="kmax"):
        torch.ops.claus.select_frames(unc, cand, cand, torch.tensor([1, 3]), 2, 1.0, 1)
    with pytest.raises(ValueError, match="k must be >= 0"):
        torch.ops.claus.select_frames(unc, cand, cand, torch.tensor([1, -3]), 2, 1.0, 1)
    with pytest.raises(ValueError, match="radius"):  # the fake kernel checks too
        torch.ops.claus.select_frames(unc.to("meta"), cand.to("meta"), cand.to("meta"),
                                      torch.tensor([1, 3], device="meta"), 3, 1.0, -1)


def test_select_frames_opcheck():
    gen = torch.Generator().manual_seed(3)
    # Outputs without NaN padding: opcheck's compiled-vs-eager comparison treats NaN != NaN.
    for N, L, k in [(3, 20, 4), (1, 1, 1), (5, 9, 9)]:
        unc = torch.rand(N, L, generator=gen)
        ann = torch.zeros(N, L, dtype=torch.bool)
        ann[:, L // 2] = L > 1
        cand = ~ann | (L == 1)
        kt = torch.full((N,), min(k, int(cand[0].sum())), dtype=torch.int64)
        torch.library.opcheck(torch.ops.claus.select_frames.default,
                              (unc, cand, ann, kt, int(kt.max()), 1.5, 2))
    # Padded outputs: every check but that comparison.
    utils = ("test_schema", "test_autograd_registration", "test_faketensor")
    for _ in range(3):
        unc, cand, ann, k, sigma, radius = random_selection_case(gen)
        torch.library.opcheck(torch.ops.claus.select_frames.default,
                              (unc, cand, ann, k, int(k.max()), sigma, radius), test_utils=utils)
    torch.library.opcheck(torch.ops.claus.select_frames.default,
                          (torch.zeros(0, 4), _flags(0, 4), _flags(0, 4),
                           torch.zeros(0, dtype=torch.int64), 2, 1.0, 1), test_utils=utils)


def test_select_frames_compiles():
    gen = torch.Generator().manual_seed(4)
    unc, cand, ann, k, sigma, radius = random_selection_case(gen)
    kmax = int(k.max())
    fn = torch.compile(lambda *a: torch.ops.claus.select_frames(*a, kmax, sigma, radius),
                       backend="aot_eager", fullgraph=True)
    got = fn(unc, cand, ann, k)
    want = claus_ext.select_frames(unc, cand, ann, k, sigma, radius)
    assert_selection_equal(got, want)


# ---------------------------------------------------------------------------------------------
# CUDA parity (skipped without a GPU)


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", MODES)
def test_frame_uncertainty_cuda_matches_cpu(dtype, mode):
    gen = torch.Generator().manual_seed(11)
    # (9, 7) pixels: odd sizes take the scalar path; (16, 16) the vector path.
    for hw in [(9, 7), (16, 16), (56, 56)]:
        z = random_logits(gen, (5, 3, 4, *hw)).to(dtype)
        zf = clear_threshold(z.float(), 0.4).to(dtype)
        want = claus_ext.frame_uncertainty(zf.float(), 0.4, mode)
        got = claus_ext.frame_uncertainty(zf.cuda(), 0.4, mode)
        assert all(t.is_cuda for t in got)
        assert_frame_stats_close(tuple(t.cpu() for t in got), want, hw[0] * hw[1])


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("seed", range(4))
def test_frame_uncertainty_cuda_pixels_at_the_threshold(seed, dtype):
    # ±50 and 0 are exact in float16 too; (H, W) odd or a multiple of 4: scalar and vector path.
    gen = torch.Generator().manual_seed(2000 + seed)
    R = int(torch.randint(1, 12, (1,), generator=gen))
    j, thr = dyadic_threshold(gen, R)
    for hw in [(9, 7), (16, 16)]:
        z = clear_threshold(random_logits(gen, (R, 3, 4, *hw)).to(dtype).float(), thr)
        z = plant_at_threshold(gen, z, j).to(dtype)
        for mode in MODES:
            got = claus_ext.frame_uncertainty(z.cuda(), thr, mode)
            want = ref.frame_uncertainty(z.double(), thr, mode)
            assert_frame_stats_close(tuple(t.cpu() for t in got), want, hw[0] * hw[1])


@requires_cuda
def test_frame_uncertainty_cuda_deterministic_and_strided():
    gen = torch.Generator().manual_seed(12)
    z = random_logits(gen, (4, 3, 5, 40, 40)).cuda()
    a = claus_ext.frame_uncertainty(z, 0.4)
    b = claus_ext.frame_uncertainty(z, 0.4)
    c = claus_ext.frame_uncertainty(z.transpose(1, 2).contiguous().transpose(1, 2), 0.4)
    for x, y, w in zip(a, b, c, strict=True):
        assert torch.equal(x, y) and torch.equal(x, w)
    empty = claus_ext.frame_uncertainty(torch.zeros(2, 0, 3, 4, 4, device="cuda"), 0.4)
    assert all(t.shape == (0, 3) and t.is_cuda for t in empty)


# (R, N, T, H, W) shapes for the CUDA kernel's paths. The kernel cuts all frames' pixels into
# one equal range per block (packs of 4 pixels; 1 on the scalar path, for HW % 4 != 0), blocks
# = a whole number of waves (4 per SM) and at least one per frame; passes go in batches of 8,
# then 4, 2, 1.
CUDA_SHAPES = [
    (1, 2, 3, 8, 8),       # R = 1 (only the 1-pass batch); frames far fewer than blocks
    (10, 16, 8, 28, 28),   # the benchmark's R: 8 + 2 passes; ranges straddle frame boundaries
    (15, 2, 2, 12, 20),    # 8 + 4 + 2 + 1
    (40, 1, 2, 16, 16),    # 5 full batches
    (3, 1, 1, 1, 4),       # a single pack: one block
    (2, 25, 30, 2, 4),     # 750 frames of two packs: more frames than a wave of blocks
    (9, 40, 16, 1, 1),     # 640 one-pixel frames (scalar path): one block per frame
    (6, 30, 25, 3, 5),     # 750 frames of 15 pixels, scalar path, ranges spanning frames
    (5, 1, 1, 256, 300),   # one large frame spread over every block
    (4, 1, 2, 211, 223),   # large odd frames (scalar path)
]


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", CUDA_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_frame_uncertainty_cuda_paths_match_cpu(dtype, mode, shape):
    gen = torch.Generator().manual_seed(sum(shape))
    z = random_logits(gen, shape).to(dtype).float()
    zf = clear_threshold(z, 0.4).to(dtype).float()  # the values the CUDA op sees
    want = claus_ext.frame_uncertainty(zf, 0.4, mode)
    got = claus_ext.frame_uncertainty(zf.to(dtype).cuda(), 0.4, mode)
    assert all(t.is_cuda and t.shape == shape[1:3] for t in got)
    assert_frame_stats_close(tuple(t.cpu() for t in got), want, shape[3] * shape[4])
    again = claus_ext.frame_uncertainty(zf.to(dtype).cuda(), 0.4, mode)
    for a, b in zip(got, again, strict=True):
        assert torch.equal(a, b)


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_frame_uncertainty_cuda_unaligned_logits(dtype):
    # A contiguous view at an odd element offset: not aligned to a pack, so the scalar path,
    # although HW % 4 == 0.
    gen = torch.Generator().manual_seed(21)
    shape = (10, 3, 4, 16, 16)
    zf = clear_threshold(random_logits(gen, shape).to(dtype).float(), 0.4).to(dtype)
    flat = torch.zeros(zf.numel() + 1, dtype=dtype, device="cuda")
    flat[1:] = zf.flatten().cuda()
    z = flat[1:].view(shape)
    assert z.is_contiguous() and z.data_ptr() % 8 != 0
    for mode in MODES:
        want = claus_ext.frame_uncertainty(zf.float(), 0.4, mode)
        got = claus_ext.frame_uncertainty(z, 0.4, mode)
        assert_frame_stats_close(tuple(t.cpu() for t in got), want, 256)


@requires_cuda
@pytest.mark.parametrize("hw", [7, 8])  # scalar and vector path
def test_frame_uncertainty_cuda_saturated_infinite_nan(hw):
    vals = [100.0, -100.0, float("inf"), float("-inf"), 88.0, -88.0, 0.0, 3.0][:hw]
    z = torch.tensor([vals, [-v for v in vals]]).reshape(2, 1, 1, 1, hw)
    for mode in MODES:
        for r in (1, 2):  # with r = 2 every pixel has p̄ = 0.5, clear of the threshold
            got = claus_ext.frame_uncertainty(z[:r].cuda(), 0.4, mode)
            want = claus_ext.frame_uncertainty(z[:r], 0.4, mode)
            for a, b in zip(got, want, strict=True):
                torch.testing.assert_close(a.cpu(), b, rtol=1e-5, atol=1e-6)
    zn = torch.zeros(2, 1, 2, 1, hw)
    zn[1, 0, 1, 0, 0] = float("nan")
    fg, unc, ent = claus_ext.frame_uncertainty(zn.cuda(), 0.4, "mean_log")
    assert torch.isfinite(ent[0, 0]) and torch.isnan(ent[0, 1])
    assert fg[0, 1].item() == hw - 1  # the NaN pixel is not foreground
    assert torch.isfinite(unc).all()


@requires_cuda
def test_frame_uncertainty_cuda_empty_pixels():
    for shape in [(2, 3, 2, 0, 4), (2, 0, 3, 4, 4)]:
        out = claus_ext.frame_uncertainty(torch.zeros(shape, device="cuda"), 0.4)
        assert all(t.shape == shape[1:3] and t.is_cuda and (t == 0).all() for t in out)


@requires_cuda
def test_frame_uncertainty_cuda_counters_streams_graphs():
    # The finish is fused into the main kernel through per-frame counters cached per stream,
    # which every launch must leave at 0: shapes of growing and shrinking frame counts back to
    # back, then again in reverse order (bit-identical), on a second stream (its own counters)
    # and in a captured CUDA graph (the unfused two-kernel path: the same sums, bit for bit).
    gen = torch.Generator().manual_seed(31)
    shapes = [(10, 4, 8, 28, 28), (3, 25, 30, 2, 4), (5, 1, 1, 9, 7), (2, 40, 20, 1, 1),
              (10, 4, 8, 28, 28)]
    zs = [clear_threshold(random_logits(gen, s), 0.4) for s in shapes]
    zc = [z.cuda() for z in zs]
    for mode in MODES:
        first = []
        for z, c, s in zip(zs, zc, shapes, strict=True):
            got = claus_ext.frame_uncertainty(c, 0.4, mode)
            want = claus_ext.frame_uncertainty(z, 0.4, mode)
            assert_frame_stats_close(tuple(t.cpu() for t in got), want, s[3] * s[4])
            first.append(got)
        for c, f in reversed(list(zip(zc, first, strict=True))):
            again = claus_ext.frame_uncertainty(c, 0.4, mode)
            assert all(torch.equal(a, b) for a, b in zip(again, f, strict=True))
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            on_side = [claus_ext.frame_uncertainty(c, 0.4, mode) for c in zc]
        torch.cuda.current_stream().wait_stream(side)
        for got, f in zip(on_side, first, strict=True):
            assert all(torch.equal(a, b) for a, b in zip(got, f, strict=True))
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = claus_ext.frame_uncertainty(zc[0], 0.4, mode)
        for _ in range(2):
            graph.replay()
            torch.cuda.synchronize()
            assert all(torch.equal(a, b) for a, b in zip(captured, first[0], strict=True))
        after = claus_ext.frame_uncertainty(zc[1], 0.4, mode)  # eager again after the graph
        assert all(torch.equal(a, b) for a, b in zip(after, first[1], strict=True))


@requires_cuda
def test_select_frames_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(13)
    for _ in range(40):
        args = random_selection_case(gen, n_max=40, l_max=300)
        unc, cand, ann, k, sigma, radius = args
        got = claus_ext.select_frames(unc.cuda(), cand.cuda(), ann.cuda(), k.cuda(), sigma, radius)
        assert all(t.is_cuda for t in got)
        assert_selection_equal(tuple(t.cpu() for t in got), claus_ext.select_frames(*args))


@requires_cuda
def test_select_frames_cuda_device_mismatch():
    unc, flags = torch.rand(2, 5, device="cuda"), _flags(2, 5)
    with pytest.raises(ValueError, match="candidates is on cpu"):
        claus_ext.select_frames(unc, flags, flags.cuda(), 1)
    with pytest.raises(ValueError, match="k is on cpu"):
        k_cpu = torch.ones(2, dtype=torch.long)
        torch.ops.claus.select_frames(unc, flags.cuda(), flags.cuda(), k_cpu, 1, 1.0, 1)


@requires_cuda
def test_select_frames_cuda_long_videos_and_empty():
    gen = torch.Generator().manual_seed(14)
    N, L = 64, 5000  # chunks of 157 frames per lane; annotated frames far apart
    unc = torch.rand(N, L, generator=gen)
    ann = torch.rand(N, L, generator=gen) < 0.002
    cand = ~ann
    want = claus_ext.select_frames(unc, cand, ann, 9, sigma=30.0, radius=50)
    got = claus_ext.select_frames(unc.cuda(), cand.cuda(), ann.cuda(), 9, sigma=30.0, radius=50)
    assert_selection_equal(tuple(t.cpu() for t in got), want)
    sel, ps, vs = claus_ext.select_frames(torch.zeros(3, 0, device="cuda"),
                                          torch.zeros(3, 0, dtype=torch.bool, device="cuda"),
                                          torch.zeros(3, 0, dtype=torch.bool, device="cuda"), 2)
    assert sel.shape == (3, 2) and (sel == -1).all() and torch.isnan(vs).all()
