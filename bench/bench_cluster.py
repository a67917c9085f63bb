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
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

import claus_ext
from claus_ext import reference as ref

try:
    import faiss  # type: ignore[import-not-found]
except ImportError:  # optional bench extra
    faiss = None

CPU_SIZES = [(3000, 408, 5), (200000, 256, 64)]
GPU_SIZES = [*CPU_SIZES, (1000000, 128, 256)]


def timeit(fn, device: torch.device, repeats: int) -> float:
    """Median wall time of fn() in ms after one warm-up call (CUDA: events on the stream)."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


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


def bench_assign(n, dim, k, device, repeats, rows, check):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, dim, generator=g).to(device)
    c = torch.randn(k, dim, generator=g).to(device)
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
    extra, of_bound = [], ""
    if device.type == "cuda":
        t_read = timeit(lambda: x.sum(), device, repeats)
        tf32 = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        try:
            t_mm = timeit(lambda: x @ c.T, device, repeats)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = tf32
        of_bound = f"{max(t_read, t_mm) / mine:.2f}"
        extra += [("bound: read x once", t_read), ("bound: cuBLAS fp32 GEMM", t_mm)]
        for dtype in (torch.float16, torch.bfloat16):
            xh, ch = x.to(dtype), c.to(dtype)
            t = timeit(lambda xh=xh, ch=ch: claus_ext.cluster_assign(xh, ch), device, repeats)
            extra.append((f"claus cluster_assign {str(dtype).replace('torch.', '')}", t))
    for name, t, a in results:
        mm = mismatches(a.to(x.device), x, c) if check else "-"
        ob = of_bound if a is a_mine else ""
        rows.append(("assign", device.type, n, dim, k, name, t, t / mine, mm, ob))
    for name, t in extra:
        rows.append(("assign", device.type, n, dim, k, name, t, t / mine, "-", ""))


def bench_loss_update(n, dim, k, device, repeats, rows):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, dim, generator=g).to(device).requires_grad_(True)
    c = torch.randn(k, dim, generator=g).to(device)

    def step(fn):
        loss, _ = fn(x, c, 0.5)
        loss.backward()
        x.grad = None

    mine = timeit(lambda: step(claus_ext.cluster_loss), device, repeats)
    rows.append(("loss fwd+bwd", device.type, n, dim, k, "claus cluster_loss", mine, 1.0, "-", ""))
    t = timeit(lambda: step(ref.cluster_loss), device, repeats) if n * k * dim <= 2e8 else None
    if t is not None:
        rows.append(("loss fwd+bwd", device.type, n, dim, k, "reference (PyTorch)", t, t / mine,
                     "-", ""))
    xd = x.detach()
    a = claus_ext.cluster_assign(xd, c)[0]
    counts = torch.full((k,), 100.0, device=device)
    mine = timeit(lambda: claus_ext.update_centers_(c.clone(), counts.clone(), xd, a), device,
                  repeats)
    rows.append(("update_centers_", device.type, n, dim, k, "claus update_centers_", mine, 1.0,
                 "-", ""))
    t = timeit(lambda: ref.update_centers(c, counts, xd, a), device, repeats)
    rows.append(("update_centers_", device.type, n, dim, k, "reference (index_add)", t, t / mine,
                 "-", ""))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--repeats", type=int, default=5, help="timed calls per row (median)")
    p.add_argument("--sizes", default=None,
                   help="N,D,K;N,D,K... (default: the issue's sizes for the device)")
    p.add_argument("--no-check", action="store_true", help="skip the fp64 mismatch count")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (torch.set_num_threads; default: torch's)")
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not (torch.cuda.is_available() and claus_ext.has_cuda()):
        sys.exit("--device cuda needs a GPU and a CUDA build of claus")
    sizes = ([tuple(int(v) for v in s.split(",")) for s in args.sizes.split(";")]
             if args.sizes else (GPU_SIZES if device.type == "cuda" else CPU_SIZES))
    rows: list[tuple] = []
    for n, dim, k in sizes:
        bench_assign(n, dim, k, device, args.repeats, rows, not args.no_check)
        bench_loss_update(n, dim, k, device, args.repeats, rows)
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


if __name__ == "__main__":
    main()
