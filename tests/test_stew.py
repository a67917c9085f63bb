"""The fused STeW op against its pure-PyTorch reference, hand cases, autograd, compile, errors."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from claus.losses import stew_loss

import claus_ext
from claus_ext import reference as ref
from tests.conftest import requires_cuda

# (B, T, H, W, sigma, radius, window, annotation pattern)
CASES = [
    (2, 8, 5, 7, 4 / 3, 4, 2, "random"),
    (3, 1, 4, 4, 4 / 3, 4, 2, "random"),  # T = 1
    (2, 5, 3, 9, 1.0, 4, 7, "random"),  # window >= T
    (2, 6, 4, 5, 2.0, 0, 2, "random"),  # radius 0
    (2, 7, 6, 3, 4 / 3, 4, 2, "none"),  # no annotated frame
    (2, 4, 5, 5, 4 / 3, 4, 2, "all"),  # every frame annotated
    (1, 16, 17, 19, 0.7, 3, 1, "random"),  # H*W not a multiple of the tile
    (2, 9, 23, 29, 3.0, 8, 0, "random"),  # window 0, several tiles
    # Labels only at clip ends, or far apart: the temporal weight's search must reach past one
    # end of the clip to the other side, and stop at the radius. T > 16 (the CPU tile keeps 16
    # frames in L1) on the CPU too.
    (2, 12, 5, 6, 4 / 3, 4, 2, "ends"),  # frames 0 and T-1 only; the middle 3 get no weight
    (2, 7, 3, 4, 1.0, 5, 2, "first"),  # frame 0 only: the far end is 6 > radius away
    (2, 7, 3, 4, 1.0, 5, 3, "last"),  # frame T-1 only
    (2, 24, 6, 7, 4 / 3, 2, 2, "gaps"),  # every 2*radius+3 frames: gaps longer than the radius
    (1, 33, 9, 15, 2.0, 4, 3, "random"),  # T = 33
    (2, 20, 4, 5, 4 / 3, 3, 4, "ends"),  # T = 20, labels at the ends only
]


def make_inputs(case, label_kind: str, dtype=torch.float64, device="cpu", seed=0):
    B, T, H, W, sigma, radius, window, pattern = case
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(B, T, H, W, generator=g) * 3).to(dtype)
    soft = torch.rand(B, T, H, W, generator=g)
    y = {
        "bool": soft > 0.5,
        "uint8": (soft > 0.5).to(torch.uint8),
        "soft": soft.to(dtype if dtype in (torch.float32, torch.float64) else torch.float32),
    }[label_kind]
    t = torch.arange(T)
    a = {
        "random": torch.rand(B, T, generator=g) > 0.6,
        "none": torch.zeros(B, T, dtype=torch.bool),
        "all": torch.ones(B, T, dtype=torch.bool),
        "ends": ((t == 0) | (t == T - 1)).expand(B, T).clone(),
        "first": (t == 0).expand(B, T).clone(),
        "last": (t == T - 1).expand(B, T).clone(),
        # Clip b starts its labels at frame b: each clip its own phase.
        "gaps": torch.stack([(t - b) % (2 * radius + 3) == 0 for b in range(B)]),
    }[pattern]
    if pattern == "random":
        a[0, T // 2] = True  # at least one clip with a label
    return z.to(device), y.to(device), a.to(device), sigma, radius, window


def tolerances(dtype):
    return {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-5,
                                                                          "atol": 1e-5}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[:4]}-w{c[6]}-r{c[5]}-{c[7]}")
@pytest.mark.parametrize("label_kind", ["bool", "uint8", "soft"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_and_backward_match_reference(case, label_kind, dtype):
    z, y, a, sigma, radius, window = make_inputs(case, label_kind, dtype)
    got = claus_ext.stew_stats(z, y, a, sigma, radius, window)
    want = ref.stew_stats(z, y, a, sigma, radius, window)
    assert got.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    torch.testing.assert_close(got, want, **tolerances(dtype))

    zk = z.clone().requires_grad_()
    zr = z.clone().requires_grad_()
    g1 = torch.Generator().manual_seed(1)
    upstream = torch.randn(z.shape[0], 5, dtype=got.dtype, generator=g1)
    sk = claus_ext.stew_stats(zk, y, a, sigma, radius, window)
    sr = ref.stew_stats(zr, y, a, sigma, radius, window)
    (gk,) = torch.autograd.grad(sk, zk, upstream)
    (gr,) = torch.autograd.grad(sr, zr, upstream)
    torch.testing.assert_close(gk, gr, **tolerances(dtype))


SPARSE_CASES = [c for c in CASES if c[7] in ("ends", "first", "last", "gaps")]


@pytest.mark.parametrize("case", SPARSE_CASES, ids=lambda c: f"T{c[1]}-r{c[5]}-{c[7]}")
def test_weights_sparse_annotations(case):
    # The weights frame by frame against the definition: 1 on labelled frames, the Gaussian of
    # the distance to the nearest label within the radius (on either side, across nothing but
    # the clip), 0 beyond it; with all-ones labels (consistency 1) ω is the temporal weight.
    B, T, H, W, sigma, radius, window, _ = case
    _, _, a, *_ = make_inputs(case, "bool", torch.float32)
    y = torch.ones(B, T, 2, 3, dtype=torch.bool)
    got = claus_ext.stew_weights(y, a, sigma, radius, window)[:, :, 0, 0].double()
    want = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        labelled = a[b].nonzero()[:, 0].tolist()
        for t in range(T):
            d = min(abs(t - u) for u in labelled)
            want[b, t] = math.exp(-d * d / (2 * sigma**2)) if d <= radius else 0.0
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    torch.testing.assert_close(claus_ext.stew_weights(y, a, sigma, radius, window),
                               ref.stew_weights(y, a, sigma, radius, window), rtol=1e-6, atol=0)
    # Not vacuous: frames beyond the radius (weight 0) and frames at exactly the radius.
    assert bool((want == 0).any())
    assert bool((want == math.exp(-radius * radius / (2 * sigma**2))).any())


@pytest.mark.parametrize("case", CASES[:4], ids=str)
def test_weights_match_reference(case):
    for kind in ("bool", "soft"):
        _, y, a, sigma, radius, window = make_inputs(case, kind, torch.float32)
        got = claus_ext.stew_weights(y, a, sigma, radius, window)
        want = ref.stew_weights(y, a, sigma, radius, window)
        assert got.dtype == torch.float32 and got.shape == y.shape
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_hand_computed_three_frames_middle_annotated():
    # One clip, 3 frames of one pixel, only frame 1 labelled; y = [0, 1, 1], z = 0.
    y = torch.tensor([0.0, 1.0, 1.0]).view(1, 3, 1, 1)
    a = torch.tensor([[False, True, False]])
    z = torch.zeros(1, 3, 1, 1, dtype=torch.float64)
    e = math.exp(-1 / (2 * (4 / 3) ** 2))  # d = 1 from the labelled frame
    # consistency: frame 0 sees |1-0| twice among 3 frames; frame 2 sees |0-1| once.
    omega = torch.tensor([e * (1 - 2 / 3), 1.0, e * (1 - 1 / 3)], dtype=torch.float64)
    torch.testing.assert_close(claus_ext.stew_weights(y, a).view(3).double(), omega,
                               rtol=1e-6, atol=1e-7)
    s = claus_ext.stew_stats(z, y.double(), a)[0]
    ln2 = math.log(2.0)
    want = torch.tensor([ln2 * omega.sum(), omega.sum(), 0.5 * (omega[1] + omega[2]),
                         0.5 * omega.sum(), omega[1] + omega[2]], dtype=torch.float64)
    torch.testing.assert_close(s, want, rtol=1e-12, atol=1e-12)


def test_hand_computed_radius_cuts_weight():
    # Frames 3 away from the only label get no weight at radius 2, exp(-9/2) at radius 3.
    y = torch.ones(1, 4, 1, 1)
    a = torch.tensor([[True, False, False, False]])
    w2 = claus_ext.stew_weights(y, a, sigma=1.0, radius=2, window=0).view(4)
    w3 = claus_ext.stew_weights(y, a, sigma=1.0, radius=3, window=0).view(4)
    torch.testing.assert_close(w2, torch.tensor([1.0, math.exp(-0.5), math.exp(-2.0), 0.0]))
    assert w3[3].item() == pytest.approx(math.exp(-4.5), rel=1e-6)


def test_non_contiguous_inputs():
    z, y, a, sigma, radius, window = make_inputs(CASES[0], "soft", torch.float32)
    zt = z.transpose(2, 3).contiguous().transpose(2, 3)  # same values, permuted strides
    yt = y.transpose(2, 3).contiguous().transpose(2, 3)
    assert not zt.is_contiguous()
    torch.testing.assert_close(claus_ext.stew_stats(zt, yt, a, sigma, radius, window),
                               ref.stew_stats(z, y, a, sigma, radius, window), rtol=1e-5,
                               atol=1e-5)
    zs = torch.randn(2, 8, 5, 14)[..., ::2]  # strided slice
    ys = (torch.rand(2, 8, 5, 14) > 0.5)[..., ::2]
    torch.testing.assert_close(claus_ext.stew_stats(zs, ys, a), ref.stew_stats(zs, ys, a),
                               rtol=1e-5, atol=1e-5)


def test_deterministic_across_thread_counts():
    z, y, a, *_ = make_inputs((4, 8, 40, 40, 4 / 3, 4, 2, "random"), "soft", torch.float32)
    prev = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = claus_ext.stew_stats(z, y, a)
        torch.set_num_threads(max(2, prev))
        many = claus_ext.stew_stats(z, y, a)
    finally:
        torch.set_num_threads(prev)
    assert torch.equal(one, many)


def test_empty_inputs_give_zeros():
    a = torch.zeros(0, 4, dtype=torch.bool)
    out = claus_ext.stew_stats(torch.zeros(0, 4, 3, 3), torch.zeros(0, 4, 3, 3), a)
    assert out.shape == (0, 5)
    a = torch.ones(2, 4, dtype=torch.bool)
    out = claus_ext.stew_stats(torch.zeros(2, 4, 0, 3), torch.zeros(2, 4, 0, 3), a)
    assert out.shape == (2, 5) and torch.equal(out, torch.zeros(2, 5))
    z = torch.zeros(2, 4, 0, 3, requires_grad=True)
    stew_loss(z, torch.zeros(2, 4, 0, 3), a).backward()
    assert z.grad.shape == z.shape
    assert claus_ext.stew_weights(torch.zeros(2, 4, 0, 3), a).shape == (2, 4, 0, 3)


def test_nan_logits_propagate():
    z, y, a, *_ = make_inputs(CASES[0], "bool", torch.float32)
    z[0, 3, 2, 2] = float("nan")
    s = claus_ext.stew_stats(z, y, a)
    assert torch.isnan(s[0, 0]) and torch.isfinite(s[1]).all()
    zz = z.clone().requires_grad_()
    stew_loss(zz, y, a).backward()
    assert torch.isnan(zz.grad[0]).any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"z": torch.zeros(2, 3, 4)}, r"z must be 4-D \(B,T,H,W\), got shape"),
        ({"y": torch.zeros(2, 3, 4, 6)}, r"y shape .* must equal z shape"),
        ({"annotated": torch.zeros(2, 4, dtype=torch.bool)}, r"annotated must have shape \(B,T\)"),
        ({"annotated": torch.zeros(2, 3)}, r"annotated must be bool"),
        ({"z": torch.zeros(2, 3, 4, 5, dtype=torch.int32)}, r"z must be float32 or float64"),
        ({"z": torch.zeros(2, 3, 4, 5, dtype=torch.float16)}, r"float16/bfloat16 only on CUDA"),
        ({"y": torch.zeros(2, 3, 4, 5, dtype=torch.int64)}, r"y must be bool, uint8"),
        ({"sigma": 0.0}, r"sigma must be a finite number > 0"),
        ({"radius": -1}, r"radius must be >= 0"),
        ({"window": -2}, r"window must be >= 0"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    args = {"z": torch.zeros(2, 3, 4, 5), "y": torch.zeros(2, 3, 4, 5),
            "annotated": torch.zeros(2, 3, dtype=torch.bool), "sigma": 1.0, "radius": 4,
            "window": 2}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        claus_ext.stew_stats(**args)


def test_gradcheck_float64():
    z, y, a, sigma, radius, window = make_inputs((2, 5, 3, 4, 4 / 3, 3, 2, "random"), "soft",
                                                 torch.float64)
    z.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda zz: claus_ext.stew_stats(zz, y, a, sigma, radius, window), (z,))
    assert torch.autograd.gradcheck(lambda zz: stew_loss(zz, y, a, sigma, radius, window), (z,))


@pytest.mark.parametrize("case", CASES[:3], ids=str)
def test_opcheck(case):
    for kind in ("bool", "soft"):
        z, y, a, sigma, radius, window = make_inputs(case, kind, torch.float32)
        torch.library.opcheck(torch.ops.claus.stew_stats.default,
                              (z.requires_grad_(), y, a, sigma, radius, window))
        torch.library.opcheck(torch.ops.claus.stew_weights.default, (y, a, sigma, radius, window))
        g = torch.randn(z.shape[0], 5)
        torch.library.opcheck(torch.ops.claus.stew_stats_backward.default,
                              (g, z.detach(), y, a, sigma, radius, window))


def test_stew_loss_matches_reference_and_edge_cases():
    z, y, a, sigma, radius, window = make_inputs(CASES[0], "soft", torch.float64)
    for dice in (0.0, 1.0, 0.5):
        zk = z.clone().requires_grad_()
        zr = z.clone().requires_grad_()
        lk = stew_loss(zk, y, a, sigma, radius, window, dice_weight=dice, smooth=1.0)
        lr = ref.stew_loss(zr, y, a, sigma, radius, window, dice_weight=dice, smooth=1.0)
        lk.backward()
        lr.backward()
        torch.testing.assert_close(lk, lr, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(zk.grad, zr.grad, rtol=1e-9, atol=1e-12)
    # No clip has a label: zero loss that still backpropagates a zero gradient.
    zn = z.clone().requires_grad_()
    none = torch.zeros_like(a)
    loss = stew_loss(zn, y, none)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(zn.grad, torch.zeros_like(zn))


def test_stew_loss_compiles_fullgraph():
    z, y, a, sigma, radius, window = make_inputs(CASES[0], "bool", torch.float32)
    compiled = torch.compile(stew_loss, fullgraph=True)
    zk = z.clone().requires_grad_()
    zc = z.clone().requires_grad_()
    le = stew_loss(zk, y, a, sigma, radius, window)
    lc = compiled(zc, y, a, sigma, radius, window)
    le.backward()
    lc.backward()
    torch.testing.assert_close(lc, le)
    torch.testing.assert_close(zc.grad, zk.grad)


def test_build_info_is_consistent():
    info = claus_ext.build_info()
    assert info["cuda"] == claus_ext.has_cuda()
    assert info["torch_version"].split("+")[0] == torch.__version__.split("+")[0]
    assert isinstance(info["cpu_avx512"], bool)


_FALLBACK_SCRIPT = """
import sys, torch, claus_ext
from claus_ext import reference as ref
sys.path.insert(0, sys.argv[1])
from tests.test_stew import CASES, make_inputs
assert not claus_ext.build_info()["cpu_avx512"], "CLAUS_CPU_NO_AVX512 was ignored"
for case in CASES + [(3, 6, 37, 41, 4 / 3, 4, 2, "random")]:
    for kind in ("uint8", "soft"):
        z, y, a, sigma, radius, window = make_inputs(case, kind, torch.float32)
        got = claus_ext.stew_stats(z, y, a, sigma, radius, window)
        torch.testing.assert_close(got, ref.stew_stats(z, y, a, sigma, radius, window),
                                   rtol=1e-5, atol=1e-5)
        up = torch.randn(z.shape[0], 5)
        zk, zr = z.clone().requires_grad_(), z.clone().requires_grad_()
        (gk,) = torch.autograd.grad(claus_ext.stew_stats(zk, y, a, sigma, radius, window), zk, up)
        (gr,) = torch.autograd.grad(ref.stew_stats(zr, y, a, sigma, radius, window), zr, up)
        torch.testing.assert_close(gk, gr, rtol=1e-5, atol=1e-5)
print("fallback ok")
"""


def test_cpu_avx2_path_matches_reference():
    """The fp32 CPU kernels have an AVX-512 build and an AVX2/baseline one; the tests above run
    whichever this CPU takes. Here the other one is forced (CLAUS_CPU_NO_AVX512=1 is read once
    per process, hence the subprocess) and checked against the reference the same way."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "CLAUS_CPU_NO_AVX512": "1"}
    proc = subprocess.run([sys.executable, "-c", _FALLBACK_SCRIPT, str(root)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fallback ok" in proc.stdout


# ---- CUDA (skipped without a GPU and a CUDA build) ----

def _cuda_matches_cpu(z, y, a, sigma, radius, window, up):
    cpu = claus_ext.stew_stats(z, y, a, sigma, radius, window)
    gpu = claus_ext.stew_stats(z.cuda(), y.cuda(), a.cuda(), sigma, radius, window)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-5)
    gc = torch.ops.claus.stew_stats_backward(up, z, y, a, sigma, radius, window)
    gg = torch.ops.claus.stew_stats_backward(up.cuda(), z.cuda(), y.cuda(), a.cuda(), sigma,
                                             radius, window)
    torch.testing.assert_close(gg.cpu(), gc, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(claus_ext.stew_weights(y.cuda(), a.cuda(), sigma, radius,
                                                      window).cpu(),
                               claus_ext.stew_weights(y, a, sigma, radius, window))


@requires_cuda
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("label_kind", ["bool", "soft"])
def test_cuda_matches_cpu(case, label_kind):
    z, y, a, sigma, radius, window = make_inputs(case, label_kind, torch.float32)
    _cuda_matches_cpu(z, y, a, sigma, radius, window, torch.randn(z.shape[0], 5))
    z64, y64, a64, *_ = make_inputs(case, label_kind, torch.float64)
    torch.testing.assert_close(claus_ext.stew_stats(z64.cuda(), y64.cuda(), a64.cuda(), sigma,
                                                    radius, window).cpu(),
                               ref.stew_stats(z64, y64, a64, sigma, radius, window),
                               rtol=1e-10, atol=1e-10)


# Planes that split into whole 4-pixel packs (the vector path), blocks that span several frames
# (small H*W), long clips and wide windows.
VECTOR_CASES = [
    (2, 8, 16, 16, 4 / 3, 4, 2, "random"),  # 256 px: a block spans 4 frames
    (3, 12, 2, 2, 4 / 3, 4, 2, "random"),  # 4 px: a block spans the whole clip
    (2, 16, 32, 36, 2.0, 6, 3, "random"),  # several blocks per frame, boundary mid-block
    (1, 40, 12, 12, 1.0, 2, 9, "random"),  # window wider than the unrolled loop
    (2, 6, 8, 8, 4 / 3, 4, 2, "none"),
    (2, 6, 8, 8, 4 / 3, 4, 2, "all"),
]


@requires_cuda
@pytest.mark.parametrize("case", VECTOR_CASES, ids=str)
@pytest.mark.parametrize("label_kind", ["uint8", "soft"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_vector_path_matches_cpu(case, label_kind, dtype):
    z, y, a, sigma, radius, window = make_inputs(case, label_kind, dtype)
    up = torch.randn(z.shape[0], 5, dtype=dtype)
    _cuda_matches_cpu(z, y, a, sigma, radius, window, up)
    if dtype == torch.float64:
        torch.testing.assert_close(claus_ext.stew_stats(z.cuda(), y.cuda(), a.cuda(), sigma,
                                                        radius, window).cpu(),
                                   ref.stew_stats(z, y, a, sigma, radius, window),
                                   rtol=1e-10, atol=1e-10)


@requires_cuda
def test_cuda_unaligned_inputs_take_the_scalar_path():
    # Contiguous views that start one element into their storage: not 16-byte aligned.
    z, y, a, sigma, radius, window = make_inputs(VECTOR_CASES[0], "uint8", torch.float32)
    zb = torch.cat([torch.zeros(1), z.flatten()]).cuda()[1:].view(z.shape)
    yb = torch.cat([torch.zeros(1, dtype=y.dtype), y.flatten()]).cuda()[1:].view(y.shape)
    assert zb.data_ptr() % 16 != 0 and yb.data_ptr() % 4 != 0
    torch.testing.assert_close(claus_ext.stew_stats(zb, yb, a.cuda(), sigma, radius,
                                                    window).cpu(),
                               claus_ext.stew_stats(z, y, a, sigma, radius, window),
                               rtol=1e-5, atol=1e-5)
    up = torch.randn(z.shape[0], 5)
    torch.testing.assert_close(
        torch.ops.claus.stew_stats_backward(up.cuda(), zb, yb, a.cuda(), sigma, radius,
                                            window).cpu(),
        torch.ops.claus.stew_stats_backward(up, z, y, a, sigma, radius, window),
        rtol=1e-5, atol=1e-6)


@requires_cuda
def test_cuda_large_batch_matches_cpu():
    # More clips than one grid row of blocks per clip would hold in flight; uneven annotations.
    z, y, a, sigma, radius, window = make_inputs((37, 16, 28, 28, 4 / 3, 4, 2, "random"),
                                                 "uint8", torch.float32)
    up = torch.randn(z.shape[0], 5)
    _cuda_matches_cpu(z, y, a, sigma, radius, window, up)


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_half_precision(dtype):
    z, y, a, sigma, radius, window = make_inputs((4, 8, 32, 32, 4 / 3, 4, 2, "random"), "bool",
                                                 torch.float32)
    zh = z.to(dtype)
    want = ref.stew_stats(zh.float(), y, a, sigma, radius, window)  # same rounded inputs
    got = claus_ext.stew_stats(zh.cuda(), y.cuda(), a.cuda(), sigma, radius, window)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-3)
    zg = zh.cuda().requires_grad_()
    stew_loss(zg, y.cuda(), a.cuda()).backward()
    assert zg.grad.dtype == dtype and torch.isfinite(zg.grad).all()


@requires_cuda
def test_cuda_run_to_run_stable():
    z, y, a, *_ = make_inputs((8, 16, 64, 64, 4 / 3, 4, 2, "random"), "soft", torch.float32)
    zc, yc, ac = z.cuda(), y.cuda(), a.cuda()
    first = claus_ext.stew_stats(zc, yc, ac)
    for _ in range(5):
        again = claus_ext.stew_stats(zc, yc, ac)
        torch.testing.assert_close(again, first, rtol=1e-6, atol=0)


def test_uint8_labels_are_masks():
    # Any nonzero byte is foreground: 255-valued masks give the same statistics as 0/1 ones.
    z, y, a, sigma, radius, window = make_inputs(CASES[0], "uint8", torch.float32)
    y255 = y * 255
    torch.testing.assert_close(claus_ext.stew_stats(z, y255, a, sigma, radius, window),
                               claus_ext.stew_stats(z, y, a, sigma, radius, window))
    torch.testing.assert_close(claus_ext.stew_stats(z, y255, a, sigma, radius, window),
                               ref.stew_stats(z, y255, a, sigma, radius, window), rtol=1e-5,
                               atol=1e-5)
    torch.testing.assert_close(claus_ext.stew_weights(y255, a), ref.stew_weights(y, a))
