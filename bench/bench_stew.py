"""Forward+backward of the STeW loss: fused op vs eager reference vs torch.compile(reference).

    python bench/bench_stew.py [--device cpu|cuda] [--reps N] [--no-compile] [--no-record]

Prints a markdown table of median times (ms) and ratios, all measured in this one run, and
appends one row per case and implementation to bench/results/stew.csv (bench/common.py). The
shapes and inputs are bench/cases.py's (STEW_SHAPES: hard labels, two labelled frames per
clip). On CUDA
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
from cases import STEW_PARAMS, STEW_SHAPES, shape_id, stew_inputs  # noqa: E402
from claus.losses import stew_loss  # noqa: E402
from common import (  # noqa: E402
    Recorder,
    add_record_args,
    device_copy_gbps,
    machine,
    nvtx_range,
    time_fn,
)

from claus_ext import reference as ref  # noqa: E402


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
    args = STEW_PARAMS

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


def cuda_figures(z, y, a, reps: int) -> dict[str, float]:
    """Kernel-only times from CUDA graphs, achieved GB/s and the copy bandwidths they compare to
    (the module docstring gives the byte count)."""
    nbytes = (2 * z.numel() * z.element_size() + 2 * y.numel() * y.element_size()
              + z.numel() * z.element_size())
    tk = kernels_graph_ms(z, y, a, reps)
    gbps = nbytes / (tk * 1e-3) / 1e9
    copy = copy_graph_gbps(z.numel() * z.element_size(), reps)
    return {"kernels_ms": tk, "forward_ms": kernels_graph_ms(z, y, a, reps, backward=False),
            "backward_ms": kernels_graph_ms(z, y, a, reps, forward=False), "gbps": gbps,
            "copy_gbps_graph": copy, "pct_of_copy": 100 * gbps / copy,
            "copy_gbps_eager": device_copy_gbps(z.numel() * z.element_size(), str(z.device))}


def bench_shape(shape, dev: str, reps: int, compiled, rec: Recorder) -> list[str]:
    """Time one shape (fused, eager, compiled), record it; the printed table's row."""
    z, y, a = stew_inputs(shape, dev)
    # Same gradient from all three: the timings compare equal work.
    g_fused = step(stew_loss, z, y, a)
    torch.testing.assert_close(g_fused, step(ref.stew_loss, z, y, a), rtol=1e-4, atol=1e-7)
    with nvtx_range(f"fused {shape}"):
        tf = time_fn(partial(step, stew_loss, z, y, a), dev, reps=reps)
    with nvtx_range(f"eager {shape}"):
        te = time_fn(partial(step, ref.stew_loss, z, y, a), dev, reps=max(5, reps // 4))
    tc = None
    if compiled is not None:
        with nvtx_range(f"compiled {shape}"):
            tc = time_fn(partial(step, compiled, z, y, a), dev, reps=reps)
    row = [",".join(map(str, shape)), f"{tf['median']:.2f}", f"{te['median']:.2f}",
           f"{tc['median']:.2f}" if tc else "-", f"{te['median'] / tf['median']:.1f}x",
           f"{tc['median'] / tf['median']:.1f}x" if tc else "-"]
    cu = cuda_figures(z, y, a, reps) if dev.startswith("cuda") else {}
    if cu:
        row += [f"{cu['kernels_ms']:.3f}", f"{cu['forward_ms']:.3f} / {cu['backward_ms']:.3f}",
                f"{cu['gbps']:.0f}", f"{cu['copy_gbps_graph']:.0f}", f"{cu['pct_of_copy']:.0f}%",
                f"{cu['copy_gbps_eager']:.0f}"]
    with rec.case(shape_id(shape), dev) as case:
        case.add("fused", tf, **{k: round(v, 4) for k, v in cu.items()})
        case.add("eager", te, baseline=True)
        if tc is not None:
            case.add("compiled", tc)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile(reference)")
    add_record_args(ap)
    args = ap.parse_args()
    dev = args.device
    rec = Recorder.from_args("stew", args)

    print(f"STeW loss forward+backward on {machine()}\n")
    cols = ["B,T,H,W", "fused ms", "eager ms", "compiled ms", "fused vs eager",
            "fused vs compiled"]
    if dev.startswith("cuda"):
        cols += ["kernels ms (CUDA graph)", "forward / backward ms", "kernels GB/s",
                 "copy GB/s (graph)", "% of copy", "copy GB/s (eager)"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    compiled = None if args.no_compile else torch.compile(ref.stew_loss)
    for shape in STEW_SHAPES:
        row = bench_shape(shape, dev, args.reps, compiled, rec)
        print("| " + " | ".join(row) + " |", flush=True)
    print(f"\n{rec.summary()}")


if __name__ == "__main__":
    main()
