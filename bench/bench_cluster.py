"""Benchmark of the clustering ops, one run, medians and ratios as a markdown table.

    python bench/bench_cluster.py                 # CPU sizes: (3000,408,5), (200000,256,64)
    python bench/bench_cluster.py --device cuda   # adds (1000000,128,256) and the GPU bound

Nearest-centre assignment (`claus_ext.cluster_assign`) is timed against `torch.cdist` + argmin
and, on the CPU, faiss `IndexFlatL2` (when faiss-cpu is installed: `pip install -e .[bench]`).
`mismatch` counts rows whose assignment differs from the fp64 argmin (exact ties excluded).
On CUDA the bound is max(time to read x once, cuBLAS fp32 GEMM x @ centers.T without TF32),
both measured here, and `of bound` = bound / claus time (the issue's target: >= 0.6).
The cluster loss (forward + backward) and the centre update are timed against the
pure-PyTorch references of claus_ext.reference.

Sizes and inputs come from bench/cases.py. Each case's rows are appended to
bench/results/cluster.csv (bench/common.py), with the ratio to the case's baseline (assign:
cdist + argmin; loss and update: the PyTorch reference), the mismatch count and the fraction of
the bound in `extra`; `--no-record` skips that.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

import claus_ext
from claus_ext import reference as ref

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cases import CLUSTER_CPU_SIZES, CLUSTER_GPU_SIZES, cluster_inputs, shape_id  # noqa: E402
from common import Recorder, add_record_args, time_fn  # noqa: E402

try:
    import faiss  # type: ignore[import-not-found]
except ImportError:  # optional bench extra
    faiss = None


def timeit(fn, device: torch.device, repeats: int) -> dict:
    """time_fn's figures for fn(): median and quantiles (ms) of `repeats` calls after one
    warm-up call (CUDA: events on the stream), peak memory."""
    return time_fn(fn, device.type, warmup=1, reps=repeats)


def mismatches(assign: torch.Tensor, x: torch.Tensor, c: torch.Tensor) -> int:
    """Rows whose assignment is not an fp64 argmin (rows with an exact fp64 tie excluded)."""
    bad = 0
    for i0 in range(0, x.shape[0], 65536):  # chunks keep the (n,K) fp64 matrix small
        xs = x[i0:i0 + 65536].double()
        d = torch.cdist(xs, c.double(), compute_mode="donot_use_mm_for_euclid_dist")
        best = d.min(1).values
        got = d.gather(1, assign[i0:i0 + 65536, None].clamp_min(0))[:, 0]
        bad += int((got > best).sum())
    return bad


def cuda_bounds(x, c, device, repeats) -> list[tuple[str, dict]]:
    """The bound's two parts (read x once; cuBLAS fp32 GEMM without TF32) and the half-precision
    inputs' assignment times."""
    out = [("bound: read x once", timeit(lambda: x.sum(), device, repeats))]
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        out.append(("bound: cuBLAS fp32 GEMM", timeit(lambda: x @ c.T, device, repeats)))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    for dtype in (torch.float16, torch.bfloat16):
        xh, ch = x.to(dtype), c.to(dtype)
        t = timeit(lambda xh=xh, ch=ch: claus_ext.cluster_assign(xh, ch), device, repeats)
        out.append((f"claus cluster_assign {str(dtype).replace('torch.', '')}", t))
    return out


def bench_assign(n, dim, k, device, repeats, rows, check, rec: Recorder):
    x, c = cluster_inputs(n, dim, k, device)
    mine = timeit(lambda: claus_ext.cluster_assign(x, c), device, repeats)
    a_mine = claus_ext.cluster_assign(x, c)[0]
    results = [("claus cluster_assign", mine, a_mine)]
    t = timeit(lambda: torch.cdist(x, c).argmin(1), device, repeats)
    results.append(("torch.cdist + argmin", t, torch.cdist(x, c).argmin(1)))
    if device.type == "cpu" and faiss is not None:
        xn, cn = x.numpy(), c.numpy()
        index = faiss.IndexFlatL2(dim)
        index.add(cn)
        t = timeit(lambda: index.search(xn, 1), device, repeats)
        results.append(("faiss IndexFlatL2", t, torch.from_numpy(index.search(xn, 1)[1][:, 0])))
    extra = cuda_bounds(x, c, device, repeats) if device.type == "cuda" else []
    of_bound = ""
    if extra:
        of_bound = f"{max(extra[0][1]['median'], extra[1][1]['median']) / mine['median']:.2f}"
    impl = {"claus cluster_assign": "fused", "torch.cdist + argmin": "cdist+argmin",
            "faiss IndexFlatL2": "faiss IndexFlatL2"}
    with rec.case(f"assign {shape_id((n, dim, k))}", device.type) as case:
        for name, t, a in results:
            mm = mismatches(a.to(x.device), x, c) if check else "-"
            ob = of_bound if a is a_mine else ""
            rows.append(("assign", device.type, n, dim, k, name, t["median"],
                         t["median"] / mine["median"], mm, ob))
            figures = {} if mm == "-" else {"mismatch": mm}
            if ob:
                figures["of_bound"] = float(ob)
            case.add(impl[name], t, baseline=name == "torch.cdist + argmin", **figures)
        for name, t in extra:
            rows.append(("assign", device.type, n, dim, k, name, t["median"],
                         t["median"] / mine["median"], "-", ""))
            case.add(name.replace("claus cluster_assign", "fused"), t)


def bench_loss_update(n, dim, k, device, repeats, rows, rec: Recorder):
    x, c = cluster_inputs(n, dim, k, device, seed=1)
    x.requires_grad_(True)

    def step(fn):
        loss, _ = fn(x, c, 0.5)
        loss.backward()
        x.grad = None

    size = shape_id((n, dim, k))
    with rec.case(f"loss fwd+bwd {size}", device.type) as case:
        mine = timeit(lambda: step(claus_ext.cluster_loss), device, repeats)
        rows.append(("loss fwd+bwd", device.type, n, dim, k, "claus cluster_loss",
                     mine["median"], 1.0, "-", ""))
        case.add("fused", mine)
        if n * k * dim <= 2e8:  # the reference's (N,K,D) intermediate: 13 GB at (2e5,256,64)
            t = timeit(lambda: step(ref.cluster_loss), device, repeats)
            rows.append(("loss fwd+bwd", device.type, n, dim, k, "reference (PyTorch)",
                         t["median"], t["median"] / mine["median"], "-", ""))
            case.add("reference", t, baseline=True)
    xd = x.detach()
    a = claus_ext.cluster_assign(xd, c)[0]
    counts = torch.full((k,), 100.0, device=device)
    with rec.case(f"update_centers_ {size}", device.type) as case:
        mine = timeit(lambda: claus_ext.update_centers_(c.clone(), counts.clone(), xd, a),
                      device, repeats)
        rows.append(("update_centers_", device.type, n, dim, k, "claus update_centers_",
                     mine["median"], 1.0, "-", ""))
        case.add("fused", mine)
        t = timeit(lambda: ref.update_centers(c, counts, xd, a), device, repeats)
        rows.append(("update_centers_", device.type, n, dim, k, "reference (index_add)",
                     t["median"], t["median"] / mine["median"], "-", ""))
        case.add("reference (index_add)", t, baseline=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--repeats", type=int, default=5, help="timed calls per row (median)")
    p.add_argument("--sizes", default=None,
                   help="N,D,K;N,D,K... (default: the issue's sizes for the device)")
    p.add_argument("--no-check", action="store_true", help="skip the fp64 mismatch count")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (torch.set_num_threads; default: torch's)")
    add_record_args(p)
    args = p.parse_args(argv)
    rec = Recorder.from_args("cluster", args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not (torch.cuda.is_available() and claus_ext.has_cuda()):
        sys.exit("--device cuda needs a GPU and a CUDA build of claus")
    sizes = ([tuple(int(v) for v in s.split(",")) for s in args.sizes.split(";")]
             if args.sizes else (CLUSTER_GPU_SIZES if device.type == "cuda"
                                 else CLUSTER_CPU_SIZES))
    rows: list[tuple] = []
    for n, dim, k in sizes:
        bench_assign(n, dim, k, device, args.repeats, rows, not args.no_check, rec)
        bench_loss_update(n, dim, k, device, args.repeats, rows, rec)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"CPU, {torch.get_num_threads()} threads")
    print(f"claus clustering benchmark: torch {torch.__version__}, {where}, "
          f"faiss {'yes' if faiss is not None else 'not installed'}, median of {args.repeats}\n")
    print("| op | device | N | D | K | implementation | median ms | time / claus | mismatch "
          "| of bound |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for op, dev, n, dim, k, name, t, ratio, mm, ob in rows:
        print(f"| {op} | {dev} | {n} | {dim} | {k} | {name} | {t:.2f} | {ratio:.2f} | {mm} "
              f"| {ob} |")
    print(f"\n{rec.summary()}")


if __name__ == "__main__":
    main()
