"""The fake (meta) kernels refuse what the C++ kernels refuse, so torch.compile and export see
the same contract as eager code. Each case is a bad argument set: both paths must raise."""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import claus_ext  # noqa: F401  (registers the ops)


def _stew_args(B=2, T=6, S=5):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(B, T, S, S, generator=g)
    y = (torch.rand(B, T, S, S, generator=g) > 0.5).to(torch.uint8)
    a = torch.zeros(B, T, dtype=torch.bool)
    a[:, 0] = True
    return z, y, a


def _cluster_args(N=7, D=4, K=3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=g)
    c = torch.randn(K, D, generator=g)
    return x, c, torch.randint(0, K, (N,), generator=g)


def _bad_cases():
    z, y, a = _stew_args()
    x, c, assign = _cluster_args()
    stew_back = torch.ops.claus.stew_stats_backward.default
    loss_back = torch.ops.claus.cluster_loss_backward.default
    return {
        "stew backward: grad (B,4)": (stew_back, (torch.ones(2, 4), z, y, a, 1.0, 4, 2)),
        "stew backward: grad (B+1,5)": (stew_back, (torch.ones(3, 5), z, y, a, 1.0, 4, 2)),
        "stew backward: negative radius": (stew_back, (torch.ones(2, 5), z, y, a, 1.0, -1, 2)),
        "stew backward: sigma 0": (stew_back, (torch.ones(2, 5), z, y, a, 0.0, 4, 2)),
        "stew backward: annotated (B,T+1)": (
            stew_back, (torch.ones(2, 5), z, y, torch.zeros(2, 7, dtype=torch.bool), 1.0, 4, 2)),
        "cluster backward: grad of 2 values": (loss_back, (torch.ones(2), x, c, assign, 0.5)),
        "cluster backward: assign too short": (loss_back, (torch.ones(()), x, c, assign[:3], 0.5)),
    }


CASES = _bad_cases()


@pytest.mark.parametrize("name", list(CASES))
def test_fake_and_cpu_kernels_refuse_alike(name):
    op, args = CASES[name]
    with pytest.raises((ValueError, RuntimeError)):
        op(*args)
    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(t) if isinstance(t, torch.Tensor) else t for t in args]
        with pytest.raises((ValueError, RuntimeError)):
            op(*fake)


def test_fake_and_cpu_kernels_accept_good_arguments_alike():
    z, y, a = _stew_args()
    x, c, assign = _cluster_args()
    cases = [
        (torch.ops.claus.stew_stats_backward.default, (torch.ones(2, 5), z, y, a, 1.0, 4, 2)),
        (torch.ops.claus.cluster_loss_backward.default, (torch.ones(()), x, c, assign, 0.5)),
    ]
    for op, args in cases:
        real = op(*args)
        with FakeTensorMode() as mode:
            out = op(*[mode.from_tensor(t) if isinstance(t, torch.Tensor) else t for t in args])
        assert out.shape == real.shape and out.dtype == real.dtype
