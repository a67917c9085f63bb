"""Benchmark of the frame scoring ops against their baselines, one run, a markdown table.

    python bench/bench_scoring.py                 # CPU (and CUDA when available)
    python bench/bench_scoring.py --device cuda   # CUDA rows only

frame_uncertainty: the fused op vs the eager PyTorch reference (`claus_ext.reference`) at R = 10
MC-dropout passes, N = 16 clips, T = 8 frames, 112² and 224² pixels; on CUDA also float16 and
bfloat16 logits, and the achieved bandwidth (logits bytes read once / time) as a fraction of
this device's device-to-device copy bandwidth (2 x bytes / time of `dst.copy_(src)`).

select_frames: the fused op vs a NumPy implementation written the way the original research code
does it (per-frame Python loops for the penalties, an argsort per pick, Python loops for the
suppression), on N = 2000 videos of 30-900 frames, k = 9; the selections must be identical,
which the script asserts before it reports anything. The eager PyTorch reference is timed too.

Times are medians over --reps runs after one warm-up (CUDA: CUDA events around each run).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import claus_ext
from claus_ext import reference as ref


def median_ms(fn, reps: int, device: str) -> float:
    fn()  # warm-up: first-touch allocations, lazy init
    times = []
    for _ in range(reps):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------
# select_frames: the original research code's way, in NumPy


def select_frames_numpy_loops(frame_unc: np.ndarray, candidates: np.ndarray,
                              annotated: np.ndarray, lengths: np.ndarray, k: int, sigma: float,
                              radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Per video: a Python loop over frames for the distance-to-label penalty, then k times an
    argsort of all scores and a walk down it to the first eligible frame, and a Python loop over
    the suppressed neighbours. Same float32 arithmetic as the op (Gaussian in float64, rounded
    once), ties to the lowest index (stable sort of -s)."""
    N, _ = frame_unc.shape
    selected = np.full((N, k), -1, dtype=np.int64)
    picked = np.full((N, k), np.nan, dtype=np.float32)
    for v in range(N):
        n = int(lengths[v])
        labelled = [f for f in range(n) if annotated[v, f]]
        scores = np.zeros(n, dtype=np.float32)
        for f in range(n):
            pen = np.float32(0.0)
            if labelled:
                d = min(abs(f - a) for a in labelled)
                pen = np.float32(np.exp(-(d * d) / (2.0 * sigma * sigma)))
            scores[f] = np.float32(frame_unc[v, f]) - pen
        eligible = [bool(candidates[v, f]) and not np.isnan(frame_unc[v, f]) for f in range(n)]
        for i in range(k):
            order = np.argsort(-scores, kind="stable")
            pick = next((int(f) for f in order if eligible[f]), -1)
            if pick < 0:
                break
            selected[v, i] = pick
            picked[v, i] = scores[pick]
            eligible[pick] = False
            for j in range(max(0, pick - radius), min(n - 1, pick + radius) + 1):
                g = np.float32(np.exp(-((j - pick) ** 2) / (2.0 * sigma * sigma)))
                scores[j] = scores[j] - g
    return selected, picked


def selection_pool(n_videos: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(30, 901, size=n_videos)
    L = int(lengths.max())
    inside = np.arange(L)[None, :] < lengths[:, None]
    unc = rng.random((n_videos, L), dtype=np.float32)
    annotated = np.zeros((n_videos, L), dtype=bool)
    for v, n in enumerate(lengths):  # 1-3 labelled frames per video, as after a few rounds
        annotated[v, rng.choice(n, size=rng.integers(1, 4), replace=False)] = True
    informative = rng.random((n_videos, L)) < 0.9
    candidates = inside & informative & ~annotated
    return unc, candidates, annotated, lengths


# ---------------------------------------------------------------------------------------------


def bench_frame_uncertainty(device: str, reps: int, sizes, rows: list) -> None:
    R, N, T = 10, 16, 8
    gen = torch.Generator().manual_seed(0)
    for hw in sizes:
        shape = (R, N, T, hw, hw)
        z32 = (torch.randn(shape, generator=gen) * 3).to(device)
        nbytes = z32.numel() * 4
        base = median_ms(lambda z=z32: ref.frame_uncertainty(z, 0.4, "mean_log"), max(reps // 2, 2),
                         device)
        label = f"frame_uncertainty R={R} N={N} T={T} {hw}²"
        rows.append((label, device, "eager reference (fp32)", base, 1.0, ""))
        copy_ms = None
        if device == "cuda":
            dst = torch.empty_like(z32)
            copy_ms = median_ms(lambda d=dst, s=z32: d.copy_(s), reps, device)
            rows.append((label, device, "device-to-device copy (fp32)", copy_ms, None,
                         f"{2 * nbytes / copy_ms / 1e6:.0f} GB/s"))
        dtypes = [torch.float32] + ([torch.float16, torch.bfloat16] if device == "cuda" else [])
        for dt in dtypes:
            z = z32.to(dt)
            for mode in ("mean_log", "log_mean"):
                ms = median_ms(lambda z=z, m=mode: claus_ext.frame_uncertainty(z, 0.4, m), reps,
                               device)
                note = ""
                if copy_ms is not None:
                    bw = z.numel() * z.element_size() / ms / 1e6
                    note = f"{bw:.0f} GB/s = {bw / (2 * nbytes / copy_ms / 1e6):.0%} of copy"
                name = str(dt).replace("torch.", "")
                rows.append((label, device, f"claus_ext ({name}, {mode})", ms, base / ms, note))


def bench_select_frames(device: str, reps: int, n_videos: int, rows: list) -> None:
    k, sigma, radius = 9, 8 / 3, 4
    unc, cand, ann, lengths = selection_pool(n_videos)
    tu, tc, ta = (torch.from_numpy(x).to(device) for x in (unc, cand, ann))
    label = f"select_frames N={n_videos} L=30-900 k={k}"
    sel, picked, _ = claus_ext.select_frames(tu, tc, ta, k, sigma, radius)
    ref_sel, ref_picked, _ = ref.select_frames(tu, tc, ta, k, sigma, radius)
    assert torch.equal(sel, ref_sel), "op and eager reference disagree"
    t0 = time.perf_counter()
    np_sel, np_picked = select_frames_numpy_loops(unc, cand, ann, lengths, k, sigma, radius)
    np_ms = (time.perf_counter() - t0) * 1e3
    # Identical selections (and bit-identical recorded scores) before any figure is reported.
    assert np.array_equal(sel.cpu().numpy(), np_sel), "op and NumPy baseline picked differently"
    assert np.array_equal(picked.cpu().numpy(), np_picked, equal_nan=True)
    if device == "cpu":  # one run: the loops take seconds
        rows.append((label, "cpu", "NumPy loops, argsort per pick (1 run)", np_ms, 1.0,
                     "selections identical"))
    base = np_ms
    ref_ms = median_ms(lambda: ref.select_frames(tu, tc, ta, k, sigma, radius), max(reps // 2, 2),
                       device)
    rows.append((label, device, "eager reference (torch)", ref_ms, base / ref_ms, ""))
    ms = median_ms(lambda: claus_ext.select_frames(tu, tc, ta, k, sigma, radius), reps, device)
    rows.append((label, device, "claus_ext", ms, base / ms, "selections identical"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--sizes", type=int, nargs="+", default=[112, 224])
    p.add_argument("--videos", type=int, default=2000)
    args = p.parse_args()
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not (torch.cuda.is_available() and claus_ext.has_cuda()):
        if args.device == "cuda":
            raise SystemExit("--device cuda: no GPU or no CUDA build of claus")
        devices.remove("cuda")
    rows: list = []
    for dev in devices:
        bench_frame_uncertainty(dev, args.reps, args.sizes, rows)
        bench_select_frames(dev, args.reps, args.videos, rows)
    info = claus_ext.build_info()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, claus build "
          f"{info['compiler']}, CUDA {info['cuda_version']}"
          + (f", GPU {torch.cuda.get_device_name()}" if "cuda" in devices else ""))
    print()
    print("| case | device | implementation | median ms | speedup | note |")
    print("|---|---|---|---:|---:|---|")
    for label, dev, impl, ms, speed, note in rows:
        sp = "" if speed is None else f"{speed:.1f}x"
        print(f"| {label} | {dev} | {impl} | {ms:.2f} | {sp} | {note} |")


if __name__ == "__main__":
    main()
