"""Benchmark of the frame scoring ops against their baselines, one run, a markdown table.

    python bench/bench_scoring.py                 # CPU (and CUDA when available)
    python bench/bench_scoring.py --device cuda   # CUDA rows only
    python bench/bench_scoring.py --no-record     # do not append to bench/results/scoring.csv

frame_uncertainty: the fused op vs the eager PyTorch reference (`claus_ext.reference`) at R = 10
MC-dropout passes, N = 16 clips, T = 8 frames, 112² and 224² pixels; on CUDA also float16 and
bfloat16 logits, and the achieved bandwidth (logits bytes read once / time) as a fraction of
this device's device-to-device copy bandwidth (2 x bytes / time of `dst.copy_(src)`).

select_frames: the fused op vs a NumPy implementation written the way the original research code
does it (per-frame Python loops for the penalties, an argsort per pick, Python loops for the
suppression), on N = 2000 videos of 30-900 frames, k = 9; the selections must be identical,
which the script asserts before it reports anything. The eager PyTorch reference is timed too.

Times are medians and 20/80% quantiles over --reps runs after one warm-up (bench/common.py;
CUDA: events around each run, so the host's cost of one call counts in full). On CUDA the notes
also give the time per call of 50 back-to-back calls, and the copy timed the same way, where the
host's cost of a call overlaps the previous call's kernels.

Shapes and inputs come from bench/cases.py; each case's rows are appended to
bench/results/scoring.csv (bench/common.py: run, machine, quantiles, ratio to the case's
baseline, peak memory; the GB/s figures in `extra`).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

import claus_ext
from claus_ext import reference as ref

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cases import (  # noqa: E402
    FRAME_N,
    FRAME_R,
    FRAME_SIZES,
    FRAME_T,
    FRAME_THRESHOLD,
    SELECT_K,
    SELECT_RADIUS,
    SELECT_SIGMA,
    SELECT_VIDEOS,
    frame_logits,
    selection_pool,
    shape_id,
)
from common import Recorder, add_record_args, device_copy_gbps, machine, time_fn  # noqa: E402


def timed(fn, reps: int, device: str) -> dict:
    """time_fn's figures (median, q20, q80 in ms, peak memory) over reps runs after one warm-up."""
    return time_fn(fn, device=device, warmup=1, reps=reps)


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


# ---------------------------------------------------------------------------------------------


def steady_ms(fn, calls: int = 50, reps: int = 5) -> float:
    """Milliseconds per call of `calls` back-to-back calls on the GPU (median of `reps`).

    With the queue kept full, the host's per-call cost (Python, dispatch, checks, allocation,
    launch) overlaps the previous call's kernels, as in a pipeline that scores many batches;
    the per-call timing above counts it in full.
    """
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(calls):
            fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / calls)
    return sorted(times)[len(times) // 2]


def frame_uncertainty_notes(z, mode: str, t: dict, copy: tuple[float, float]) -> tuple[str, dict]:
    """CUDA: achieved bandwidth (the logits read once) per call and back to back, as a fraction
    of the copy bandwidths `copy` (per call, back to back); the printed note and the figures."""
    nbytes = z.numel() * z.element_size()
    gbps = nbytes / (t["median"] * 1e-3) / 1e9
    ts = steady_ms(lambda: claus_ext.frame_uncertainty(z, FRAME_THRESHOLD, mode))
    sgbps = nbytes / (ts * 1e-3) / 1e9
    note = (f"{gbps:.0f} GB/s = {gbps / copy[0]:.0%} of copy; back to back "
            f"{ts:.3f} ms, {sgbps:.0f} GB/s = {sgbps / copy[1]:.0%}")
    return note, {"gbps": round(gbps, 1), "pct_of_copy": round(100 * gbps / copy[0], 1),
                  "steady_ms": round(ts, 4), "steady_gbps": round(sgbps, 1),
                  "steady_pct_of_copy": round(100 * sgbps / copy[1], 1)}


def copy_bandwidths(z32: torch.Tensor) -> tuple[float, float]:
    """Device-to-device copy of the logits' size: GB/s per call and back to back."""
    per_call = device_copy_gbps(z32.numel() * 4, "cuda")
    dst = torch.empty_like(z32)
    steady = 2 * z32.numel() * 4 / (steady_ms(lambda: dst.copy_(z32)) * 1e-3) / 1e9
    return per_call, steady


def bench_frame_uncertainty(device: str, reps: int, sizes, rows: list, rec: Recorder) -> None:
    gen = torch.Generator().manual_seed(0)
    for hw in sizes:
        z32 = frame_logits(hw, gen).to(device)
        label = f"frame_uncertainty R={FRAME_R} N={FRAME_N} T={FRAME_T} {hw}²"
        with rec.case(f"frame_uncertainty {shape_id(z32.shape)}", device) as case:
            base = timed(lambda z=z32: ref.frame_uncertainty(z, FRAME_THRESHOLD, "mean_log"),
                         max(reps // 2, 5), device)
            rows.append((label, device, "eager reference (fp32)", base, 1.0, ""))
            case.add("eager fp32", base, baseline=True)
            copy = None
            if device == "cuda":
                copy = copy_bandwidths(z32)
                rows.append((label, device, "device-to-device copy", None, None,
                             f"{copy[0]:.0f} GB/s (read + write); back to back "
                             f"{copy[1]:.0f} GB/s"))
            dtypes = [torch.float32] + ([torch.float16, torch.bfloat16] if device == "cuda"
                                        else [])
            for dt in dtypes:
                z = z32.to(dt)
                name = str(dt).replace("torch.", "")
                for mode in ("mean_log", "log_mean"):
                    t = timed(lambda z=z, m=mode: claus_ext.frame_uncertainty(z, FRAME_THRESHOLD,
                                                                              m), reps, device)
                    note, extra = ("", {}) if copy is None else frame_uncertainty_notes(
                        z, mode, t, copy)
                    rows.append((label, device, f"claus_ext ({name}, {mode})", t,
                                 base["median"] / t["median"], note))
                    case.add(f"fused {name} {mode}", t, **extra)


def bench_select_frames(device: str, reps: int, n_videos: int, rows: list, rec: Recorder) -> None:
    k, sigma, radius = SELECT_K, SELECT_SIGMA, SELECT_RADIUS
    unc, cand, ann, lengths = selection_pool(n_videos)
    tu, tc, ta = (torch.from_numpy(x).to(device) for x in (unc, cand, ann))
    label = f"select_frames N={n_videos} L=30-900 k={k}"
    sel, picked, _ = claus_ext.select_frames(tu, tc, ta, k, sigma, radius)
    ref_sel, ref_picked, _ = ref.select_frames(tu, tc, ta, k, sigma, radius)
    assert torch.equal(sel, ref_sel), "op and eager reference disagree"
    out: list = []
    # The loops take seconds: one run (time_fn also measures its peak memory).
    np_t = time_fn(lambda: out.append(select_frames_numpy_loops(unc, cand, ann, lengths, k,
                                                                sigma, radius)),
                   warmup=0, reps=1)
    np_sel, np_picked = out[0]
    # Identical selections (and bit-identical recorded scores) before any figure is reported.
    assert np.array_equal(sel.cpu().numpy(), np_sel), "op and NumPy baseline picked differently"
    assert np.array_equal(picked.cpu().numpy(), np_picked, equal_nan=True)
    base = np_t["median"]
    with rec.case(f"select_frames {n_videos} videos L=30-900 k={k}", device) as case:
        if device == "cpu":
            rows.append((label, "cpu", "NumPy loops, argsort per pick (1 run)", np_t, 1.0,
                         "selections identical"))
        # On CUDA the baseline is the same host loops, recorded with this device's rows so
        # that their ratios have their baseline in the same case.
        case.add("numpy loops", np_t, baseline=True, **({"host": True} if device != "cpu"
                                                         else {}))
        t = timed(lambda: ref.select_frames(tu, tc, ta, k, sigma, radius), max(reps // 2, 5),
                  device)
        rows.append((label, device, "eager reference (torch)", t, base / t["median"], ""))
        case.add("eager", t)
        t = timed(lambda: claus_ext.select_frames(tu, tc, ta, k, sigma, radius), reps, device)
        rows.append((label, device, "claus_ext", t, base / t["median"], "selections identical"))
        case.add("fused", t, identical=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    p.add_argument("--reps", type=int, default=11)
    p.add_argument("--sizes", type=int, nargs="+", default=list(FRAME_SIZES))
    p.add_argument("--videos", type=int, default=SELECT_VIDEOS)
    add_record_args(p)
    args = p.parse_args()
    rec = Recorder.from_args("scoring", args)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not (torch.cuda.is_available() and claus_ext.has_cuda()):
        if args.device == "cuda":
            raise SystemExit("--device cuda: no GPU or no CUDA build of claus")
        devices.remove("cuda")
    rows: list = []
    for dev in devices:
        bench_frame_uncertainty(dev, args.reps, args.sizes, rows, rec)
        bench_select_frames(dev, args.reps, args.videos, rows, rec)
    info = claus_ext.build_info()
    print(f"{machine()}; claus build {info['compiler']}, CUDA {info['cuda_version']}")
    print()
    print("| case | device | implementation | median ms | q20-q80 ms | speedup | note |")
    print("|---|---|---|---:|---:|---:|---|")
    for label, dev, impl, t, speed, note in rows:
        sp = "" if speed is None else f"{speed:.1f}x"
        med, q = ("", "") if t is None else (f"{t['median']:.2f}",
                                             f"{t['q20']:.2f}-{t['q80']:.2f}")
        print(f"| {label} | {dev} | {impl} | {med} | {q} | {sp} | {note} |")
    print(f"\n{rec.summary()}")


if __name__ == "__main__":
    main()
