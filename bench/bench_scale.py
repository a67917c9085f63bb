"""Scale benchmark: the stages of one active-learning round at UCF-101-24's real geometry.

    python bench/bench_scale.py [--root DIR] [--quick] [--videos 8] [--i3d-videos 2] [--reps 3]

The geometry is real, the pixels are not: the dataset is opened from the shared annotations
(`pyannot_with_class_names.pkl` + `testlist01.txt`, `claus.data.load_ucf24`: all 3,194 videos,
their frame counts and tubes); frames are synthesized. A `RenderedFrames` source draws each frame
on demand (a textured background panned by the camera, the ground-truth boxes filled with a
colour per tube), at 112² for scoring and training (what a 112² frame store hands the clip
loader) and at UCF's 320×240 for the store stage, which writes a sample of videos as JPEG
folders (untimed) and times `claus.data.prepare_store` reading them back, resizing and writing
the memory maps. A full 112² store would take 555,157 × 112² × 3 bytes ≈ 20.9 GB, so its time
and size are projected from the sample.

Stages (each timed on its own; median of --reps runs where a run is cheap):

* open: `load_ucf24` + a 112² `FrameStore` index of every video + `with_store` (target ≤ 5 s);
* store: `prepare_store` of a sample from JPEG folders to 112² (frames/s; projected to all);
* clips: `InferenceClips` from the sample store (memory maps) and from the rendered source;
* score-tiny / score-i3d: `claus.selection.score_pool` (MC dropout R = 10, 16-frame clips at
  stride 2, batch 16, untrained weights) on a sample of training videos (frames/s);
* select-claus / select-uncertainty: `select_round` over all 2,284 training videos with
  synthesized per-frame scores of their real frame counts, the 1% initial labels
  (`LabelState.random`) and the 1% → 2% budget; claus clusters the embeddings with
  `claus.cluster.KMeans` (K = 5) inside the timing;
* label: the simulated oracle's `LabelState.reveal` of the selection and `LabelState.save`
  (target: select-claus + label ≤ 2 s);
* write: the round's other atomic writes (`claus.io`): labels.json, selection.json, scores.pt
  of the whole pool, round.json;
* train-step (tiny): one training step as `claus.training.fit` takes it (a `TrainClips` batch
  from the sample store, forward, `compute_losses`, backward, clipping, AdamW; median of
  reps + 2 steps after one dropped), for the round projection;
* eval (tiny): `claus.training.evaluate` on a sample of test videos, for the round projection.

Peak RSS: VmHWM of this process, reset before each stage through /proc/self/clear_refs (Linux),
so a stage's peak includes what earlier stages left allocated (its RSS at start is printed
beside it); where the reset is refused, ru_maxrss (the process's lifetime peak) is reported and
labelled so. The projections at the end say which figures are measured and which projected.

Every stage is appended as a row to bench/results/scale.csv (bench/common.py; case = the stage,
suffixed "quick" for --quick runs, whose samples are smaller; seconds; the stage's rate and RSS
at its start in `extra`); `--no-record` skips that.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from claus.data import (
    FrameSource,
    FrameStore,
    ImageFolderFrames,
    InferenceClips,
    LabelState,
    TrainClips,
    Video,
    VideoDataset,
    budget_boxes,
    load_ucf24,
    prepare_store,
)
from claus.io import atomic_torch_save, atomic_write_json
from claus.models import build_model
from claus.selection import FrameScores, select_round
from claus.selection.pool import PoolScores, score_pool
from claus.training import TrainConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    Recorder,
    add_record_args,
    machine,
    reset_rss_peak,
    status_mib,
    summarize,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLAUS_SHARED", REPO.parent / "shared"))
SIZE = (112, 112)
PASSES, BATCH, CLUSTERS, EMB_DIM = 10, 16, 5, 128  # RunConfig's passes, score_batch, clusters
STAGES = ("open", "store", "clips", "score-tiny", "score-i3d", "select-claus",
          "select-uncertainty", "label", "write", "train-step", "eval")
MB = 1 << 20


# ---------------------------------------------------------------------------- frames
class RenderedFrames(FrameSource):
    """Frames drawn on demand at `size` (h, w): a blocky texture of the video's own colours,
    panned one pixel per frame, fine noise, and every ground-truth box of the frame filled with
    its tube's colour. Deterministic in (seed, video index); nothing is cached."""

    def __init__(self, video: Video, index: int, size: tuple[int, int], seed: int = 0):
        self.video, self.index, self.size, self.seed = video, int(index), size, int(seed)
        self.num_frames = video.num_frames

    def read(self, frames) -> np.ndarray:
        idx = np.asarray(frames, dtype=np.int64).reshape(-1)
        h, w = self.size
        rng = np.random.default_rng([self.seed, self.index])
        cell, pan = 8, 32
        coarse = rng.integers(40, 216, (h // cell + 1, (w + pan) // cell + 1, 3), dtype=np.uint8)
        texture = coarse.repeat(cell, 0).repeat(cell, 1)[:h]
        colours = rng.integers(0, 248, (max(1, len(self.video.tubes)), 3), dtype=np.uint8)
        noise = np.random.default_rng([self.seed, self.index, int(idx[0]) if idx.size else 0])
        out = np.empty((idx.size, h, w, 3), np.uint8)
        sy, sx = h / self.video.height, w / self.video.width
        for j, f in enumerate(idx):
            x0 = int(f) % pan
            out[j] = texture[:, x0 : x0 + w]
            for k, t in enumerate(self.video.tubes):
                b = t.box(int(f))
                if b is None:
                    continue
                x1, y1 = int(b[0] * sx), int(b[1] * sy)
                x2, y2 = max(x1 + 1, int(math.ceil(b[2] * sx))), max(y1 + 1, int(b[3] * sy))
                out[j, y1:y2, x1:x2] = colours[k]
        out += noise.integers(0, 8, out.shape, dtype=np.uint8)  # ≤ 215 + 7 or 247 + 7: no wrap
        return out

    def describe(self) -> str:
        return f"rendered {self.size[0]}x{self.size[1]} (seed {self.seed})"


def with_sources(ds: VideoDataset, make: Callable[[int, Video], FrameSource | None],
                 indices: list[int] | None = None) -> VideoDataset:
    """A copy of `ds` (or of its videos `indices`, in that order) with new frame sources."""
    keep = range(len(ds)) if indices is None else indices
    videos = [Video(v.name, v.label, v.num_frames, v.height, v.width, v.split, v.tubes, v.group,
                    make(i, v)) for i in keep for v in [ds[i]]]
    return VideoDataset(ds.name, ds.classes, videos, strict=False)


def open_ucf(root: Path) -> VideoDataset:
    with warnings.catch_warnings():  # the 6 train-list videos without annotation (known)
        warnings.simplefilter("ignore", UserWarning)
        return load_ucf24(root)


def num_windows(n: int, T: int, stride: int) -> int:
    """len(sliding_windows(n, T, stride)) without building them."""
    return sum(math.ceil(len(range(r, n, stride)) / T) for r in range(min(stride, n)))


# ---------------------------------------------------------------------------- measuring
class PeakRSS:
    """Peak resident memory of this process over a stage (see the module docstring)."""

    def __init__(self) -> None:
        self.resettable = self._reset()
        self.method = ("VmHWM, reset before each stage (/proc/self/clear_refs)" if self.resettable
                       else "ru_maxrss: lifetime peak of the process (no per-stage reset here)")

    _reset = staticmethod(reset_rss_peak)
    _status = staticmethod(status_mib)

    @contextlib.contextmanager
    def stage(self, out: dict) -> Iterator[None]:
        if self.resettable:
            self._reset()
        out["rss_start_mb"] = self._status("VmRSS")
        yield
        peak = self._status("VmHWM") if self.resettable else None
        out["rss_peak_mb"] = (peak if peak is not None
                              else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def timed(fn: Callable[[], object], reps: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def count_flops(fn: Callable[[], object]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


# ---------------------------------------------------------------------------- context
class Ctx:
    """What the stages share, built on first use (untimed)."""

    def __init__(self, a: argparse.Namespace, root: Path, tmp: Path):
        self.a, self.root, self.tmp = a, root, tmp
        self.rss = PeakRSS()
        self.rows: dict[str, dict] = {}
        self._cache: dict[str, object] = {}

    def get(self, key: str, make: Callable[[], object]):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def ds(self) -> VideoDataset:
        return self.get("ds", lambda: open_ucf(self.root))

    @property
    def rendered(self) -> VideoDataset:
        """The dataset reading rendered 112² frames (what a 112² store hands the loader)."""
        return self.get("rendered", lambda: with_sources(
            self.ds, lambda i, v: RenderedFrames(v, i, SIZE, self.a.seed)))

    @property
    def train_idx(self) -> list[int]:
        return self.ds.split_indices("train")

    @property
    def labels(self) -> LabelState:
        return self.get("labels", lambda: LabelState.random(self.ds, 1, seed=self.a.seed))

    @property
    def budget(self) -> int:
        return budget_boxes(self.ds, 2) - self.labels.spent()

    @property
    def pool(self) -> PoolScores:
        return self.get("pool", lambda: synth_pool_scores(self.ds, self.train_idx, self.a.seed))

    def sample(self, split: str, n: int, salt: int) -> list[int]:
        """n videos of a split: seeded random ones, or the shortest in --quick mode."""
        idx = self.ds.split_indices(split)
        if self.a.quick:
            return sorted(idx, key=lambda i: (self.ds[i].num_frames, i))[:n]
        rng = np.random.default_rng([self.a.seed, salt])
        return sorted(int(i) for i in rng.choice(idx, size=min(n, len(idx)), replace=False))

    def row(self, name: str, what: str, times: list[float], mem: dict, **extra) -> dict:
        r = {"stage": name, "what": what, "seconds": times, "median_s": statistics.median(times),
             "runs": len(times), "loadavg": os.getloadavg(), **mem, **extra}
        self.rows[name] = r
        return r


def synth_pool_scores(ds: VideoDataset, train_idx: list[int], seed: int) -> PoolScores:
    """Per-frame scores of every training video at its real length, as `score_pool` returns
    them: informative where the ground truth has an actor (plus 10% of the other frames),
    U ~ Gamma on those, NaN elsewhere; embeddings near a per-class centre (D = 128)."""
    rng = np.random.default_rng([seed, 7])
    lengths = np.array([ds[i].num_frames for i in train_idx])
    V, L = len(train_idx), int(lengths.max())
    inside = np.arange(L)[None, :] < lengths[:, None]
    actor = np.zeros((V, L), bool)
    for j, i in enumerate(train_idx):
        actor[j, : lengths[j]] = ds[i].boxes_per_frame() > 0
    informative = inside & (actor | (rng.random((V, L)) < 0.1))
    unc = np.where(informative, rng.gamma(2.0, 0.02, (V, L)), np.nan).astype(np.float32)
    ent = np.where(inside, rng.random((V, L)), np.nan).astype(np.float32)
    centres = rng.normal(0, 1, (len(ds.classes), EMB_DIM))
    labels = np.array([ds[i].label for i in train_idx])
    emb = (centres[labels] + rng.normal(0, 0.7, (V, EMB_DIM))).astype(np.float32)
    scores = FrameScores(uncertainty=torch.from_numpy(unc), entropy=torch.from_numpy(ent),
                         informative=torch.from_numpy(informative),
                         covered=torch.from_numpy(inside), lengths=torch.from_numpy(lengths))
    return PoolScores(videos=list(train_idx), scores=scores, embeddings=torch.from_numpy(emb),
                      mode="mc", passes=PASSES)


# ---------------------------------------------------------------------------- stages
def stage_open(ctx: Ctx) -> None:
    ds = ctx.ds  # also warms the file cache, as a second run of a round would find it
    store = ctx.tmp / "index-only-store"
    atomic_write_json(store / "index.json", {
        "format": "claus.framestore", "version": 1, "dataset": ds.name, "size": list(SIZE),
        "videos": {v.name: {"file": f"frames/{i}.npy", "num_frames": v.num_frames,
                            "height": SIZE[0], "width": SIZE[1]} for i, v in enumerate(ds)},
        "failed": {}}, indent=None)

    def run():
        return open_ucf(ctx.root).with_store(FrameStore(store))

    mem: dict = {}
    with ctx.rss.stage(mem):
        times, opened = timed(run, ctx.a.reps)
    s = opened.summary()
    ctx.row("open", f"load_ucf24 + 112² FrameStore index + with_store: {len(opened)} videos "
            f"({s['train']['videos']} train, {s['test']['videos']} test), "
            f"{s['train']['frames'] + s['test']['frames']:,} frames", times, mem,
            target_s=5.0, videos=len(opened), frames=s["train"]["frames"] + s["test"]["frames"])


def _write_jpegs(ctx: Ctx, sample: list[int], folder: Path) -> VideoDataset:
    from PIL import Image

    orig = with_sources(ctx.ds, lambda i, v: RenderedFrames(v, i, (v.height, v.width),
                                                            ctx.a.seed), sample)
    for v in orig:
        d = folder / v.name
        d.mkdir(parents=True, exist_ok=True)
        for s in range(0, v.num_frames, 64):
            for j, fr in enumerate(v.source.read(range(s, min(s + 64, v.num_frames)))):
                Image.fromarray(fr).save(d / f"{s + j + 1:05d}.jpg", quality=90)
    return with_sources(orig, lambda i, v: ImageFolderFrames(
        str(folder / v.name / "{:05d}.jpg"), first=1, num_frames=v.num_frames))


def stage_store(ctx: Ctx) -> None:
    sample = ctx.sample("train", ctx.a.store_videos, 1)
    jpg = _write_jpegs(ctx, sample, ctx.tmp / "rgb-images")
    frames = sum(v.num_frames for v in jpg)
    jpeg_bytes = sum(p.stat().st_size for p in (ctx.tmp / "rgb-images").rglob("*.jpg"))
    runs = [ctx.tmp / f"store{k}" for k in range(ctx.a.reps)]

    def run():
        root = runs.pop(0)
        prepare_store(jpg, root, size=SIZE, progress=False)
        return root

    mem: dict = {}
    with ctx.rss.stage(mem):
        times, root = timed(run, ctx.a.reps)
    ctx._cache["store_ds"] = jpg.with_store(FrameStore(root))
    nbytes = sum(p.stat().st_size for p in Path(root, "frames").iterdir())
    total = sum(v.num_frames for v in ctx.ds)
    rate = frames / statistics.median(times)
    ctx.row("store", f"prepare_store from JPEG folders (320x240, q90, page cache warm) to 112²: "
            f"{len(sample)} train videos, {frames:,} frames", times, mem, frames=frames,
            rate=rate, unit="frames/s", store_bytes_per_frame=nbytes / frames,
            jpeg_bytes_per_frame=jpeg_bytes / frames,
            projected_all_s=total / rate, projected_all_gb=total * nbytes / frames / 1e9)


def _store_ds(ctx: Ctx) -> VideoDataset:
    """The sample videos reading from the 112² store the store stage wrote (run if needed)."""
    if "store_ds" not in ctx._cache:
        stage_store(ctx)
    return ctx._cache["store_ds"]


def stage_clips(ctx: Ctx) -> None:
    sds = _store_ds(ctx)
    T, stride = TrainConfig.T, TrainConfig.stride
    sample = [ctx.ds.index(v.name) for v in sds]
    rdr = ctx.rendered
    rates = {}
    mem: dict = {}
    with ctx.rss.stage(mem):
        for key, ds, vids in (("store", sds, list(range(len(sds)))), ("rendered", rdr, sample)):
            clips = InferenceClips(ds, vids, T=T, stride=stride)
            frames = sum(ds[v].num_frames for v in vids)
            times, _ = timed(lambda c=clips: _load_batches(c), ctx.a.reps)
            rates[key] = (frames / statistics.median(times), times)
    ctx.row("clips", f"InferenceClips ({T} frames, stride {stride}, 112²) read and stacked in "
            f"batches of {BATCH} as score_pool does, from the sample store (memory maps); rate "
            "from the rendered source in brackets", rates["store"][1], mem,
            rate=rates["store"][0], unit="frames/s", rendered_rate=rates["rendered"][0],
            rendered_seconds=rates["rendered"][1])


def _load_batches(clips: InferenceClips) -> int:
    n = 0
    for s in range(0, len(clips), BATCH):
        items = [clips[i] for i in range(s, min(len(clips), s + BATCH))]
        n += len({k: torch.stack([it[k] for it in items]) for k in ("clip", "video", "frames")})
    return n


def stage_score(ctx: Ctx, model_name: str) -> None:
    n = ctx.a.videos if model_name == "tiny" else ctx.a.i3d_videos
    sample = ctx.sample("train", n, 2)
    ds = ctx.rendered
    torch.manual_seed(ctx.a.seed)
    model = build_model(model_name, ds.num_classes).eval()
    T, stride = TrainConfig.T, TrainConfig.stride
    frames = sum(ds[v].num_frames for v in sample)
    windows = sum(num_windows(ds[v].num_frames, T, stride) for v in sample)

    def run():
        return score_pool(model, ds, sample, T=T, stride=stride, passes=PASSES,
                          batch_size=BATCH, frame_score="mass", seed=ctx.a.seed)

    mem: dict = {}
    with ctx.rss.stage(mem):
        times, ps = timed(run, ctx.a.reps)
    assert ps.scores.uncertainty.shape[0] == len(sample)
    # FLOPs for the GPU projection: torch's FlopCounterMode over one clip, on a copy of the
    # model on the meta device (shapes only, nothing computed; the counts are the same).
    meta = copy.deepcopy(model).to("meta")
    x = torch.empty(1, 3, T, *SIZE, device="meta")
    with torch.no_grad():
        mc = count_flops(lambda: meta.mc_forward(x, passes=PASSES))
        det = count_flops(lambda: meta(x))
        hidden = meta.head_inputs(x).hidden.numel()
    # The R passes' masked features and logits, each written and read once: memory traffic
    # that FLOPs do not show (the heads are cheap in FLOPs, large in bytes).
    heads_bytes = PASSES * 2 * 4 * (hidden + T * SIZE[0] * SIZE[1])
    train = count_flops(lambda: _fake_step(meta.train(), x))
    ctx.row(f"score-{model_name}", f"score_pool, {model_name} (untrained), R = {PASSES}, "
            f"{T}x112² clips stride {stride}, batch {BATCH}: {len(sample)} train videos, "
            f"{frames:,} frames, {windows} windows", times, mem, frames=frames, windows=windows,
            rate=frames / statistics.median(times), unit="frames/s", target_rss_mb=8192,
            flops_per_clip={"mc": mc, "deterministic": det, "train_fwd_bwd": train},
            mc_heads_bytes_per_clip=heads_bytes,
            params=sum(p.numel() for p in model.parameters()))


def _fake_step(model: torch.nn.Module, x: torch.Tensor) -> None:
    out = model(x)
    (out.loc.float().mean() + out.cls.float().mean() + out.emb.float().mean()).backward()


def held_by_score_pool(lengths: list[int], T: int, stride: int) -> dict:
    """Bytes `score_pool` keeps across batches for a pool (its per-batch logits are freed each
    batch): per window fg/unc/ent (T,) fp32, emb (D,) fp32, video and start int64; then the
    stitching's float64 sums, coverage and float32 scores of (V, L)."""
    N = sum(num_windows(n, T, stride) for n in lengths)
    V, L = len(lengths), max(lengths)
    per_window = 3 * T * 4 + EMB_DIM * 4 + 2 * 8
    stitch = V * L * (3 * 8 + 8 + 3 * 4 + 2 * 4 + 2) + N * T * (8 + 8 + 1)
    return {"windows": N, "per_window_bytes": per_window, "results_bytes": N * per_window,
            "stitch_bytes": stitch, "total_bytes": N * per_window + stitch}


def _select(ctx: Ctx, strategy: str):
    from claus.cluster import KMeans

    ds, idx, labels, pool = ctx.ds, ctx.train_idx, ctx.labels, ctx.pool
    parts: dict[str, float] = {}

    def run():
        t0 = time.perf_counter()
        names = [ds[i].name for i in idx]
        costs = [np.maximum(1, ds[i].boxes_per_frame()).astype(np.int64) for i in idx]
        labelled = [labels.frames(n) for n in names]
        t1 = time.perf_counter()
        clusters = None
        if strategy == "claus":
            clusters = KMeans(CLUSTERS, seed=ctx.a.seed).fit_predict(pool.embeddings.float())
            clusters = clusters.cpu().numpy().astype(np.int64)
        t2 = time.perf_counter()
        sel = select_round(strategy, names=names, num_frames=[ds[i].num_frames for i in idx],
                           frame_costs=costs, labelled=labelled, budget=ctx.budget,
                           rng=np.random.default_rng([ctx.a.seed, 0, 3]), scores=pool.scores,
                           clusters=clusters)
        parts.update(inputs_s=t1 - t0, kmeans_s=t2 - t1, select_round_s=time.perf_counter() - t2)
        return sel, clusters

    mem: dict = {}
    with ctx.rss.stage(mem):
        times, (sel, clusters) = timed(run, ctx.a.reps)
    if strategy == "claus":
        ctx._cache["selection"] = (sel, clusters)
    V = len(ds.split_indices("train"))
    ctx.row(f"select-{strategy}", f"select_round '{strategy}'"
            + (f" + KMeans(K={CLUSTERS}) of {V}x{EMB_DIM} embeddings" if clusters is not None
               else "") + f" over {V} train videos (L = {pool.scores.lengths.max().item()}), "
            f"budget {ctx.budget} boxes", times, mem, budget=ctx.budget, cost=sel.cost,
            videos_selected=len(sel.frames),
            frames_selected=sum(len(f) for f in sel.frames.values()), last_run_parts=parts)


def stage_label(ctx: Ctx) -> None:
    if "selection" not in ctx._cache:
        _select(ctx, "claus")
    sel, _ = ctx._cache["selection"]
    ds, labels = ctx.ds, ctx.labels
    path = ctx.tmp / "round" / "next_labels.json"
    parts: dict[str, float] = {}

    def run():
        t0 = time.perf_counter()
        new = labels.copy()
        for name, frames in sel.frames.items():
            new.reveal(ds, name, frames, 1)
        t1 = time.perf_counter()
        new.save(path)
        parts.update(reveal_s=t1 - t0, save_s=time.perf_counter() - t1)
        return new

    mem: dict = {}
    with ctx.rss.stage(mem):
        times, new = timed(run, ctx.a.reps)
    ctx._cache["next_labels"] = new
    ctx.row("label", f"LabelState copy + reveal of the claus selection ({len(sel.frames)} "
            f"videos) + save next_labels.json", times, mem, spent_before=labels.spent(),
            spent_after=new.spent(), file_bytes=path.stat().st_size, last_run_parts=parts)


def stage_write(ctx: Ctx) -> None:
    if "selection" not in ctx._cache:
        _select(ctx, "claus")
    sel, clusters = ctx._cache["selection"]
    names = [ctx.ds[i].name for i in ctx.train_idx]
    work = ctx.tmp / "round"
    parts: dict[str, float] = {}

    def run():
        t = [time.perf_counter()]
        ctx.labels.save(work / "labels.json")
        t.append(time.perf_counter())
        out = sel.to_json()
        out["budget"] = ctx.budget
        out["all_clusters"] = {n: int(c) for n, c in zip(names, clusters, strict=True)}
        atomic_write_json(work / "selection.json", out)
        t.append(time.perf_counter())
        atomic_torch_save(work / "scores.pt", ctx.pool.to_state())
        t.append(time.perf_counter())
        atomic_write_json(work / "round.json", {"round": 0, "selected_boxes": sel.cost})
        t.append(time.perf_counter())
        parts.update({k: b - a for k, a, b in zip(("labels", "selection", "scores", "round"),
                                                   t, t[1:], strict=False)})

    mem: dict = {}
    with ctx.rss.stage(mem):
        times, _ = timed(run, ctx.a.reps)
    sizes = {p.name: p.stat().st_size for p in work.iterdir() if not p.name.startswith(".")}
    ctx.row("write", "atomic writes of labels.json, selection.json, scores.pt (whole pool), "
            "round.json", times, mem, file_bytes=sizes, last_run_parts=parts)


def stage_train_step(ctx: Ctx) -> None:
    from claus.training import compute_losses

    cfg = TrainConfig()
    sds = _store_ds(ctx)
    # Clips come from the sample store, centred on 3 random labelled frames of each video.
    labels = LabelState.random(sds, 100, seed=ctx.a.seed)
    clips = TrainClips(sds, labels, T=cfg.T, stride=cfg.stride, augment=True,
                       clips_per_video=1, seed=ctx.a.seed, color_jitter=cfg.color_jitter)
    torch.manual_seed(ctx.a.seed)
    model = build_model("tiny", ctx.ds.num_classes).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(ctx.a.seed)
    state = {"next": 0, "load": []}

    def run():
        t0 = time.perf_counter()
        items = [clips[(state["next"] + j) % len(clips)] for j in range(cfg.batch_size)]
        state["next"] += cfg.batch_size
        batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
        state["load"].append(time.perf_counter() - t0)
        out = model(batch["clip"], generator=gen)
        loss = compute_losses(cfg, out, batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()

    mem: dict = {}
    # The first step builds oneDNN's primitives: dropped; steps are cheap, so 2 more runs.
    warm, extra = (0, 0) if ctx.a.quick else (1, 2)
    with ctx.rss.stage(mem):
        times, _ = timed(run, ctx.a.reps + warm + extra)
    times, load = times[warm:], state["load"][warm:]
    ctx.row("train-step", f"one training step, tiny, batch {cfg.batch_size} of {cfg.T}x112² "
            f"clips (TrainClips from the sample store, STeW + CE, AdamW"
            + ("" if ctx.a.quick else "; a first step dropped") + ")", times, mem,
            batch=cfg.batch_size, load_s=statistics.median(load),
            labelled_videos=len(ctx.labels.labelled_videos()))


def stage_eval(ctx: Ctx) -> None:
    from claus.training import evaluate

    sample = ctx.sample("test", ctx.a.eval_videos, 3)
    ds = with_sources(ctx.rendered, lambda i, v: ctx.rendered[i].source, sample)
    torch.manual_seed(ctx.a.seed)
    model = build_model("tiny", ds.num_classes).eval()
    cfg = TrainConfig()
    mem: dict = {}
    with ctx.rss.stage(mem):
        times, _ = timed(lambda: evaluate(model, ds, cfg, progress=False), ctx.a.reps)
    frames = sum(v.num_frames for v in ds)
    ctx.row("eval", f"evaluate (act protocol), tiny (untrained: few detections), "
            f"{len(sample)} test videos, {frames:,} frames", times, mem, frames=frames,
            rate=frames / statistics.median(times), unit="frames/s")


RUNNERS: dict[str, Callable[[Ctx], None]] = {
    "open": stage_open, "store": stage_store, "clips": stage_clips,
    "score-tiny": lambda c: stage_score(c, "tiny"), "score-i3d": lambda c: stage_score(c, "i3d"),
    "select-claus": lambda c: _select(c, "claus"),
    "select-uncertainty": lambda c: _select(c, "uncertainty"),
    "label": stage_label, "write": stage_write, "train-step": stage_train_step,
    "eval": stage_eval,
}


# ---------------------------------------------------------------------------- projection
def projection(ctx: Ctx, gpu_tflops: float, gpu_tbps: float) -> dict:
    """One full UCF-101-24 round (1% → 2%), stage by stage, from the measured figures.

    tiny, 2 CPU cores: every stage's time is a measured time or a measured rate times the
    round's count (frames, training steps). I3D, one GPU: host work (opening, loading clips,
    selection, labels, files) at the rates measured here; GPU compute = FLOPs counted here /
    the assumed sustained `gpu_tflops` (+ the MC heads' bytes / `gpu_tbps`); the two in
    series, as score_pool, fit and evaluate run them by default (score_pool and fit with
    `workers` = 0 read clips in the main process between forwards)."""
    r, ds = ctx.rows, ctx.ds
    T, stride = TrainConfig.T, TrainConfig.stride
    cfg = TrainConfig()
    test_idx = ds.split_indices("test")
    lab_videos = len(ctx.labels.labelled_videos())
    per_video = max(cfg.clips_per_video, math.ceil(cfg.min_clips_per_epoch / lab_videos))
    steps = cfg.epochs * math.ceil(lab_videos * per_video / cfg.batch_size)
    held = held_by_score_pool([ds[i].num_frames for i in ctx.train_idx], T, stride)
    count = {"train_frames": sum(ds[i].num_frames for i in ctx.train_idx),
             "test_frames": sum(ds[i].num_frames for i in test_idx),
             "train_windows": held["windows"],
             "test_windows": sum(num_windows(ds[i].num_frames, T, stride) for i in test_idx),
             "labelled_videos_1pct": lab_videos, "train_steps": steps}
    med = {k: v["median_s"] for k, v in r.items()}
    small = sum(med.get(k, 0.0) for k in ("select-claus", "label", "write"))
    out: dict = {**count, "score_pool_held": held, "gpu_tflops_assumed": gpu_tflops,
                 "gpu_tbps_assumed": gpu_tbps, "select_label_write_s": small}
    out["tiny_cpu"] = {
        "open": med.get("open"),
        "train": steps * med["train-step"] if "train-step" in r else None,
        "eval": count["test_frames"] / r["eval"]["rate"] if "eval" in r else None,
        "score": count["train_frames"] / r["score-tiny"]["rate"] if "score-tiny" in r else None,
        "select+label+write": small}
    if "score-i3d" in r and "clips" in r and "train-step" in r:
        f = r["score-i3d"]["flops_per_clip"]
        load = 1 / r["clips"]["rate"]  # host seconds per frame, store → stacked batches
        s = gpu_tflops * 1e12
        parts = {  # stage: (host seconds, GPU compute seconds)
            "train": (steps * r["train-step"]["load_s"],
                      steps * cfg.batch_size * f["train_fwd_bwd"] / s),
            "eval": (count["test_frames"] * load, count["test_windows"] * f["deterministic"] / s),
            "score": (count["train_frames"] * load, count["train_windows"] * (
                f["mc"] / s + r["score-i3d"]["mc_heads_bytes_per_clip"] / (gpu_tbps * 1e12)))}
        out["i3d_gpu_parts"] = parts
        out["i3d_gpu"] = {"open": med.get("open"), **{k: a + b for k, (a, b) in parts.items()},
                          "select+label+write": small}
        out["i3d_cpu_score_s"] = count["train_frames"] / r["score-i3d"]["rate"]
        out["i3d_cpu_gflops"] = (r["score-i3d"]["windows"] * f["mc"] / med["score-i3d"] / 1e9)
    if "score-tiny" in r:
        sample = [ds[i].num_frames for i in ctx.sample("train", ctx.a.videos, 2)]
        extra = held["total_bytes"] - held_by_score_pool(sample, T, stride)["total_bytes"]
        out["score_tiny_peak_rss_full_pool_mb"] = r["score-tiny"]["rss_peak_mb"] + extra / MB
    return out


# ---------------------------------------------------------------------------- report
def _fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 3600:
        return f"{x / 3600:.2f} h"
    if x >= 60:
        return f"{x / 60:.1f} min"
    return f"{x:.2f} s" if x >= 0.1 else f"{x * 1e3:.1f} ms"


def _target(r: dict) -> str:
    if r["stage"] == "open":
        return f"≤ 5 s: {'met' if r['median_s'] <= 5 else 'NOT met'}"
    if r["stage"].startswith("score"):
        ok = r["rss_peak_mb"] <= r["target_rss_mb"]
        return f"peak RSS ≤ 8 GB: {'met' if ok else 'NOT met'}"
    if r["stage"].startswith("select"):
        return f"spends {r['cost']}/{r['budget']} boxes"
    return ""


def print_report(ctx: Ctx, proj: dict) -> None:
    rows = ctx.rows
    print(f"machine: {machine()}; {os.cpu_count()} cores, load average at the end "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"peak RSS: {ctx.rss.method}")
    print("| stage | what | median | runs (s) | rate | RSS start / peak MB | load | target |")
    print("|---|---|---:|---|---:|---:|---:|---|")
    for name in STAGES:
        if name not in rows:
            continue
        r = rows[name]
        rate = f"{r['rate']:,.0f} {r['unit']}" if "rate" in r else ""
        if name == "clips":
            rate += f" (rendered: {r['rendered_rate']:,.0f})"
        runs = ", ".join(f"{t:.2f}" for t in r["seconds"])
        print(f"| {name} | {r['what']} | {_fmt_s(r['median_s'])} | {runs} | {rate} | "
              f"{r['rss_start_mb']:,.0f} / {r['rss_peak_mb']:,.0f} | {r['loadavg'][0]:.1f} | "
              f"{_target(r)} |")
    if "select-claus" in rows and "label" in rows:
        both = rows["select-claus"]["median_s"] + rows["label"]["median_s"]
        print(f"\nselect-claus + label, whole pool: {both:.2f} s (target ≤ 2 s: "
              f"{'met' if both <= 2 else 'NOT met'})")
    print_projection(ctx, proj)


def print_projection(ctx: Ctx, proj: dict) -> None:
    r = ctx.rows
    held = proj["score_pool_held"]
    logits = PASSES * BATCH * TrainConfig.T * SIZE[0] * SIZE[1] * 4
    print(f"\nscore_pool over the whole pool keeps {held['windows']:,} windows' statistics "
          f"({held['results_bytes'] / MB:.0f} MB) and stitches them in "
          f"{held['stitch_bytes'] / MB:.0f} MB; its logits (R,B,T,H,W) = "
          f"({PASSES},{BATCH},{TrainConfig.T},{SIZE[0]},{SIZE[1]}) fp32 = "
          f"{logits / MB:.0f} MB live one batch at a time.")
    if "score_tiny_peak_rss_full_pool_mb" in proj:
        print(f"peak RSS of tiny scoring over the whole pool (projected: measured peak + what "
              f"the larger pool keeps): {proj['score_tiny_peak_rss_full_pool_mb']:,.0f} MB")
    if "store" in r:
        print(f"112² frame store of all 555,157 frames (projected from the sample's rate): "
              f"{_fmt_s(r['store']['projected_all_s'])}, {r['store']['projected_all_gb']:.1f} GB "
              "(once per dataset, not per round)")
    for name in ("score-tiny", "score-i3d"):
        if name in r:
            f = r[name]["flops_per_clip"]
            print(f"{name[6:]}: {r[name]['params'] / 1e6:.1f} M parameters; GFLOP per 16x112² "
                  f"clip (FlopCounterMode): MC R={PASSES} {f['mc'] / 1e9:.1f}, one pass "
                  f"{f['deterministic'] / 1e9:.1f}, training forward+backward "
                  f"{f['train_fwd_bwd'] / 1e9:.1f}")
    print(f"\nOne UCF-101-24 round 1% → 2% ({proj['labelled_videos_1pct']} labelled videos, "
          f"{proj['train_steps']} training steps of {TrainConfig.batch_size} (28 epochs), "
          f"{proj['train_frames']:,} pool frames, {proj['test_frames']:,} test frames):")
    print("| stage | tiny, 2 CPU cores | I3D, one GPU |\n|---|---:|---:|")
    cpu, gpu = proj["tiny_cpu"], proj.get("i3d_gpu", {})
    for k in cpu:
        print(f"| {k} | {_fmt_s(cpu[k])} | {_fmt_s(gpu.get(k))} |")
    tot = [sum(v for v in col.values() if v is not None) for col in (cpu, gpu)]
    print(f"| total | {_fmt_s(tot[0])} | {_fmt_s(tot[1]) if gpu else '-'} |")
    if gpu:
        parts = "; ".join(f"{k} {_fmt_s(a)} + {_fmt_s(b)}"
                          for k, (a, b) in proj["i3d_gpu_parts"].items())
        print(f"I3D on one GPU = host loading at the rates measured here + GPU compute projected "
              f"from the FLOPs above at an assumed {proj['gpu_tflops_assumed']:.0f} TFLOP/s "
              f"sustained (scoring also moves the R passes' heads tensors, "
              f"{r['score-i3d']['mc_heads_bytes_per_clip'] / MB:.0f} MB per clip, at "
              f"{proj['gpu_tbps_assumed']:.1f} TB/s), in series: {parts}. "
              f"I3D on these 2 cores ran at "
              f"{proj['i3d_cpu_gflops']:.0f} GFLOP/s; scoring the pool with it here would take "
              f"{_fmt_s(proj['i3d_cpu_score_s'])}.")


def record(ctx: Ctx, rec: Recorder) -> str:
    """One row per stage (no baseline: the stages are claus's own); the recorder's summary."""
    for name in STAGES:
        if name not in ctx.rows:
            continue
        r = ctx.rows[name]
        timing = {**summarize(r["seconds"]), "peak_mib": r["rss_peak_mb"],
                  "mem": "rss" if ctx.rss.resettable else "rss-lifetime"}
        figures = {"what": r["what"], "rss_start_mib": round(r["rss_start_mb"], 1)}
        if "rate" in r:
            figures.update(rate=round(r["rate"], 1), rate_unit=r["unit"])
        with rec.case(name + (" quick" if ctx.a.quick else ""), "cpu") as case:
            case.add("claus", timing, unit="s", **figures)
    return rec.summary()


# ---------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--root", type=Path, default=SHARED / "data" / "ucf101-24",
                    help="folder with pyannot_with_class_names.pkl and testlist01.txt "
                    "(default: $CLAUS_SHARED/data/ucf101-24, or ../shared/data/ucf101-24)")
    ap.add_argument("--quick", action="store_true",
                    help="a small sample (shortest videos, one run of each stage): < 1 min")
    ap.add_argument("--videos", type=int, default=8, help="train videos scored with tiny")
    ap.add_argument("--i3d-videos", type=int, default=2, help="train videos scored with i3d")
    ap.add_argument("--store-videos", type=int, default=12, help="videos put in the sample store")
    ap.add_argument("--eval-videos", type=int, default=4, help="test videos evaluated")
    ap.add_argument("--reps", type=int, default=3, help="runs of each stage (median reported)")
    ap.add_argument("--stages", default=",".join(STAGES),
                    help=f"comma-separated subset of {', '.join(STAGES)}")
    ap.add_argument("--gpu-tflops", type=float, default=100.0,
                    help="sustained GPU throughput assumed for the I3D projection (TF32 convs)")
    ap.add_argument("--gpu-tbps", type=float, default=2.0,
                    help="GPU memory bandwidth assumed for the MC heads' tensors (TB/s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write every figure here")
    add_record_args(ap)
    a = ap.parse_args(argv)
    if a.quick:
        a.videos, a.i3d_videos, a.store_videos, a.eval_videos = 1, 1, 1, 1
        a.reps = 1
    a.stages = [s for s in a.stages.split(",") if s]
    unknown = sorted(set(a.stages) - set(STAGES))
    if unknown:
        ap.error(f"unknown stages {unknown}; choices: {', '.join(STAGES)}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    root = a.root
    if not (root / "pyannot_with_class_names.pkl").is_file():
        print(f"bench_scale: skipped: {root}/pyannot_with_class_names.pkl is absent (the shared "
              "UCF-101-24 annotations; set --root or CLAUS_SHARED)")
        return 0
    load0 = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale."))
    try:
        ctx = Ctx(a, root, tmp)
        for name in STAGES:
            if name in a.stages:
                t0 = time.perf_counter()
                RUNNERS[name](ctx)
                ctx.rows[name]["wall_with_setup_s"] = time.perf_counter() - t0
        proj = projection(ctx, a.gpu_tflops, a.gpu_tbps)
        print(f"load average at the start: {', '.join(f'{x:.2f}' for x in load0)}")
        print_report(ctx, proj)
        print(record(ctx, Recorder.from_args("scale", a)))
        if a.json is not None:
            a.json.write_text(json.dumps({"machine": machine(), "cpus": os.cpu_count(),
                                          "loadavg_start": load0, "loadavg_end": os.getloadavg(),
                                          "rss_method": ctx.rss.method, "quick": a.quick,
                                          "stages": ctx.rows, "projection": proj}, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
