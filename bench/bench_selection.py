"""Benchmark of the whole pool scoring + selection stage: claus vs a reference-style pipeline.

    python bench/bench_selection.py [--preset demo] [--videos 40] [--passes 10] [--reps 3]

Both pipelines score the same pool videos with the same model, weights and dropout masks, and
pick the same frames (the script asserts it before reporting):

* ours: `claus.selection.score_pool` (sliding windows in batches, `mc_forward`: backbone once,
  heads R times in one batch; the fused `frame_uncertainty`; stitched with `index_add`) then
  `claus.selection.select_frames` (fused greedy) and the top videos by video score;
* reference-style (how the original research code works): one clip at a time (batch 1), the
  whole network re-run for each of the R passes, per-frame NumPy loops for the uncertainty
  (sigmoid, mean over passes, threshold, -log p), a Python dict to stitch frames, and the NumPy
  per-frame greedy of `bench_scoring.select_frames_numpy_loops`.

The dropout masks of both are drawn once, before timing (the draw is the same cost for both),
so the selections can be compared exactly. Times: median of --reps runs (bench/common.py).
Both rows are appended to bench/results/selection.csv (seconds; the ratio is the speed-up over
the reference-style pipeline; `--no-record` skips that).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
from claus.data import InferenceClips, load_dataset
from claus.models import build_model
from claus.selection import frame_scores, select_frames, stitch_clip_stats
from claus.training import TrainConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_scoring import select_frames_numpy_loops  # noqa: E402
from common import Recorder, add_record_args, in_seconds, machine, time_fn  # noqa: E402


def batches_of(clips: InferenceClips, batch: int) -> list[dict]:
    out = []
    for s in range(0, len(clips), batch):
        items = [clips[i] for i in range(s, min(len(clips), s + batch))]
        out.append({k: torch.stack([it[k] for it in items]) for k in ("clip", "video", "frames")})
    return out


def ours(model, batches, masks, pos, lengths, stride, k, V, sigma, radius):
    import claus_ext

    fgs, uncs, ents, vids, starts = [], [], [], [], []
    with torch.no_grad():
        for b, m in zip(batches, masks, strict=False):
            out = model.mc_forward(b["clip"], masks=m)
            fg, unc, ent = claus_ext.frame_uncertainty(out.loc.contiguous())
            fgs.append(fg), uncs.append(unc), ents.append(ent)
            vids.append(b["video"]), starts.append(b["frames"][:, 0])
    video = torch.tensor([pos[int(v)] for v in torch.cat(vids)])
    H, W = batches[0]["clip"].shape[-2:]
    stats = stitch_clip_stats(torch.cat(fgs), torch.cat(uncs), torch.cat(ents), video,
                              torch.cat(starts), lengths, H * W, stride)
    sc = frame_scores(stats)
    sel = select_frames(sc, torch.zeros_like(sc.informative), k, sigma=sigma, radius=radius)
    vs = sel.video_score.numpy().astype(np.float64)
    order = sorted(range(len(vs)), key=lambda i: (np.isnan(vs[i]), -np.nan_to_num(vs[i]), i))
    return {i: [f for f in sel.frames[i].tolist() if f >= 0] for i in order[:V]}


def reference(model, batches, masks, pos, lengths, stride, k, V, sigma, radius,
              fg_threshold=0.4):
    nv = len(lengths)
    sums: dict[tuple[int, int], list[float]] = {}
    with torch.no_grad():
        for b, m in zip(batches, masks, strict=False):
            for j in range(b["clip"].shape[0]):
                clip = b["clip"][j : j + 1]
                probs = []
                for r in range(next(iter(m.values())).shape[0]):
                    one = {s: t[r : r + 1, j : j + 1] for s, t in m.items()}
                    # The whole network again for every pass, as the original code does.
                    out = model.mc_forward(clip, masks=one)
                    probs.append(torch.sigmoid(out.loc[0, 0].float()).numpy())
                p = np.stack(probs)  # (R,T,H,W)
                vi, s0 = pos[int(b["video"][j])], int(b["frames"][j, 0])
                for t in range(p.shape[1]):
                    f = s0 + t * stride
                    if f >= lengths[vi]:
                        continue
                    pbar = p[:, t].mean(0)
                    fg = pbar > np.float32(fg_threshold)
                    u = (-np.log(np.maximum(p[:, t], 1e-30))).mean(0)
                    acc = sums.setdefault((vi, f), [0.0, 0.0, 0])
                    acc[0] += float(fg.sum())
                    acc[1] += float(u[fg].sum())
                    acc[2] += 1
    L = max(lengths)
    unc = np.full((nv, L), np.nan, np.float32)
    cand = np.zeros((nv, L), bool)
    for (vi, f), (fgc, us, n) in sums.items():
        fgc, us = fgc / n, us / n
        if fgc >= 1.0:
            unc[vi, f] = np.float32(us / fgc)
            cand[vi, f] = True
    sel, picked = select_frames_numpy_loops(unc, cand, np.zeros_like(cand), np.asarray(lengths),
                                            k, sigma, radius)
    vs = [float(np.mean(picked[i][sel[i] >= 0])) if (sel[i] >= 0).any() else np.nan
          for i in range(nv)]
    order = sorted(range(nv), key=lambda i: (np.isnan(vs[i]), -np.nan_to_num(vs[i]), i))
    return {i: [int(f) for f in sel[i] if f >= 0] for i in order[:V]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--videos", type=int, default=40, help="pool videos (train split)")
    ap.add_argument("--passes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--k", type=int, default=3, help="frames per video")
    ap.add_argument("--V", type=int, default=10, help="videos selected")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--T", type=int, default=TrainConfig.T, help="clip length (rounds' default)")
    ap.add_argument("--stride", type=int, default=TrainConfig.stride, help="frame step in a clip")
    ap.add_argument("--weights", default=None,
                    help="trained detector weights (e.g. RUN/round_000/model.pt of a demo run); "
                    "an untrained model sees no foreground, so nothing would be selected")
    add_record_args(ap)
    a = ap.parse_args()
    rec = Recorder.from_args("selection", a)
    ds = load_dataset("synthetic", preset=a.preset)
    pool = ds.split_indices("train")[: a.videos]
    torch.manual_seed(0)
    model = build_model("tiny", ds.num_classes, weights=a.weights).eval()
    T, stride = a.T, a.stride
    clips = InferenceClips(ds, pool, T=T, stride=stride)
    batches = batches_of(clips, a.batch)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        masks = [model.heads.sample_masks(model.head_inputs(b["clip"]), a.passes, g)
                 for b in batches]
    pos = {v: i for i, v in enumerate(pool)}
    lengths = [ds[v].num_frames for v in pool]
    args = (model, batches, masks, pos, lengths, stride, a.k, a.V, 8 / 3, 4)
    mine, ref = ours(*args), reference(*args)
    if mine != ref:
        raise SystemExit(f"selections differ:\nours {mine}\nreference {ref}")
    if not any(len(f) for f in mine.values()):
        raise SystemExit("no frame was selected: the comparison would be vacuous (see --weights)")
    t_ours = time_fn(lambda: ours(*args), warmup=1, reps=a.reps)
    t_ref = time_fn(lambda: reference(*args), warmup=0, reps=max(1, a.reps // 2))
    print(f"machine: {machine()}")
    print(f"pool: {len(pool)} videos ({sum(lengths)} frames, {len(clips)} clips of "
          f"{T}x{clips[0]['clip'].shape[-1]}²), R = {a.passes}, tiny model "
          f"({a.weights or 'untrained'}), k = {a.k}, "
          f"V = {a.V}; selections identical ({sum(map(len, mine.values()))} frames in "
          f"{len(mine)} videos)")
    print("| pipeline | median s | q20–q80 s |\n|---|---|---|")
    for name, t in (("reference-style (batch 1, network x R, NumPy loops)", t_ref),
                    ("claus (batched heads x R, fused ops)", t_ours)):
        print(f"| {name} | {t['median'] / 1e3:.2f} | {t['q20'] / 1e3:.2f}–{t['q80'] / 1e3:.2f} |")
    print(f"speed-up: {t_ref['median'] / t_ours['median']:.1f}x")
    case = (f"{a.preset} {len(pool)} videos {T}x{clips[0]['clip'].shape[-1]}² stride {stride} "
            f"R={a.passes} k={a.k} V={a.V}")
    figures = {"frames": sum(lengths), "clips": len(clips),
               "selected": sum(map(len, mine.values())), "weights": a.weights or "untrained"}
    with rec.case(case, "cpu") as c:
        c.add("reference-style", in_seconds(t_ref), unit="s", baseline=True)
        c.add("claus", in_seconds(t_ours), unit="s", **figures)
    print(rec.summary())


if __name__ == "__main__":
    main()
