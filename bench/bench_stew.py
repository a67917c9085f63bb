"""Forward+backward of the STeW loss: fused op vs eager reference vs torch.compile(reference).

    python bench/bench_stew.py [--device cpu|cuda] [--reps N] [--no-compile]

Prints a markdown table of median times (ms) and ratios, all measured in this one run. On CUDA
it also reports achieved GB/s against a device-to-device copy measured in the same run, with the
minimal bytes: forward reads z and y; backward reads z and y and writes dL/dz. The kernels and
the copy are both replayed from CUDA graphs (launch overhead excluded alike); the copy timed
around an eager call is printed too.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from claus.losses import stew_loss  # noqa: E402
from common import device_copy_gbps, machine, nvtx_range, time_fn  # noqa: E402

from claus_ext import reference as ref  # noqa: E402

SIZES = [(8, 8, 112, 112), (4, 16, 224, 224)]


def make_batch(shape, device, dtype=torch.float32, seed=0):
    """Logits, hard pseudo-labels (uint8) and two labelled frames per clip, as in training."""
    g = torch.Generator().manual_seed(seed)
    B, T, H, W = shape
    z = torch.randn(shape, generator=g).to(device=device, dtype=dtype)
    y = (torch.rand(shape, generator=g) > 0.7).to(torch.uint8).to(device)
    a = torch.zeros(B, T, dtype=torch.bool)
    a[:, T // 4] = True
    a[:, (3 * T) // 4] = True
    return z, y, a.to(device)


def step(loss_fn, z, y, a):
    zz = z.detach().requires_grad_()
    with nvtx_range("forward"):
        loss = loss_fn(zz, y, a)
    with nvtx_range("backward"):
        loss.backward()
    return zz.grad


def kernels_graph_ms(z, y, a, reps: int, forward: bool = True, backward: bool = True) -> float:
    """Device time of the forward op + backward op alone, replayed from a CUDA graph.

    At these sizes a training step's time on a GPU is mostly Python and launch overhead; the
    graph removes it, so the bandwidth figure describes the kernels themselves.
    """
    grad = torch.ones(z.shape[0], 5, device=z.device)
    args = (4 / 3, 4, 2)

    def ops():
        if forward:
            torch.ops.claus.stew_stats.default(z, y, a, *args)
        if backward:
            torch.ops.claus.stew_stats_backward.default(grad, z, y, a, *args)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            ops()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ops()
    return time_fn(graph.replay, "cuda", reps=reps)["median"]


def copy_graph_gbps(nbytes: int, reps: int) -> float:
    """Device-to-device copy of nbytes (read + write), replayed from a CUDA graph like the
    kernels, so that both figures exclude launch overhead alike."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        dst.copy_(src)
    t = time_fn(graph.replay, "cuda", reps=max(reps, 30))["median"]
    return 2 * nbytes / (t * 1e-3) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile(reference)")
    args = ap.parse_args()
    dev = args.device

    print(f"STeW loss forward+backward on {machine()}\n")
    cols = ["B,T,H,W", "fused ms", "eager ms", "compiled ms", "fused vs eager",
            "fused vs compiled"]
    if dev.startswith("cuda"):
        cols += ["kernels ms (CUDA graph)", "forward / backward ms", "kernels GB/s",
                 "copy GB/s (graph)", "% of copy", "copy GB/s (eager)"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    compiled = None if args.no_compile else torch.compile(ref.stew_loss)
    for shape in SIZES:
        z, y, a = make_batch(shape, dev)
        # Same gradient from all three: the timings compare equal work.
        g_fused = step(stew_loss, z, y, a)
        torch.testing.assert_close(g_fused, step(ref.stew_loss, z, y, a), rtol=1e-4, atol=1e-7)
        with nvtx_range(f"fused {shape}"):
            tf = time_fn(partial(step, stew_loss, z, y, a), dev, reps=args.reps)
        with nvtx_range(f"eager {shape}"):
            te = time_fn(partial(step, ref.stew_loss, z, y, a), dev, reps=max(5, args.reps // 4))
        tc = None
        if compiled is not None:
            with nvtx_range(f"compiled {shape}"):
                tc = time_fn(partial(step, compiled, z, y, a), dev, reps=args.reps)
        row = [",".join(map(str, shape)), f"{tf['median']:.2f}", f"{te['median']:.2f}",
               f"{tc['median']:.2f}" if tc else "-", f"{te['median'] / tf['median']:.1f}x",
               f"{tc['median'] / tf['median']:.1f}x" if tc else "-"]
        if dev.startswith("cuda"):
            nbytes = (2 * z.numel() * z.element_size() + 2 * y.numel() * y.element_size()
                      + z.numel() * z.element_size())
            tk = kernels_graph_ms(z, y, a, args.reps)
            tfw = kernels_graph_ms(z, y, a, args.reps, backward=False)
            tbw = kernels_graph_ms(z, y, a, args.reps, forward=False)
            gbps = nbytes / (tk * 1e-3) / 1e9
            copy = copy_graph_gbps(z.numel() * z.element_size(), args.reps)
            copy_eager = device_copy_gbps(z.numel() * z.element_size(), dev)
            row += [f"{tk:.3f}", f"{tfw:.3f} / {tbw:.3f}", f"{gbps:.0f}", f"{copy:.0f}",
                    f"{100 * gbps / copy:.0f}%", f"{copy_eager:.0f}"]
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
