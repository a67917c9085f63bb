"""Tables and pictures of active-learning runs, and an experiment's report (`write_report`).

The numbers of many runs (`aggregate`, `results_table`, `plot_map_vs_budget`, the strategy
order) live in `claus.results`, which `claus.compare` shares; they are re-exported here.

* `results_table`: the paper's "Comparing with baselines" layout — one row per strategy, one
  column pair (f-mAP@0.5, v-mAP@0.5) per labelled budget, mean ± std over seeds (in %), plus
  the `full` upper bound; `write_report` puts the paired differences between strategies
  (`claus.compare`) under it;
* pictures (matplotlib, the optional `plots` extra): mAP vs budget per strategy; a cluster map
  (2-D PCA of video embeddings coloured by cluster, selected videos marked); STeW weight maps of
  a sample clip (`claus_ext.stew_weights`); a strip of detections (ground truth red, prediction
  blue).
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .compare import compare, plot_paired_differences, report_tables
from .io import atomic_write_text
from .results import (
    METRICS,
    aggregate,
    can_draw,
    order_strategies,
    plot_map_vs_budget,
    require_matplotlib,
    results_table,
    save_figure,
    upper_bounds,
)
from .run_folder import RoundFolder, RunFolder, experiment_runs
from .selection import STRATEGIES

if TYPE_CHECKING:
    from .data.clips import ClipGeometry

__all__ = [
    "METRICS",
    "aggregate",
    "order_strategies",
    "plot_cluster_map",
    "plot_detections",
    "plot_map_vs_budget",
    "plot_stew_weights",
    "require_matplotlib",
    "results_table",
    "upper_bounds",
    "write_report",
]

log = logging.getLogger(__name__)


def _clusters(name: str) -> bool:
    """Whether `name` is a registered strategy that clusters the pool's videos."""
    return name in STRATEGIES and STRATEGIES[name].clusters


def _pca2(x: torch.Tensor) -> np.ndarray:
    x = x.double() - x.double().mean(0, keepdim=True)
    # SVD of the centred data: the first two right singular vectors are the principal axes.
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    return (x @ vh[:2].T).numpy()


def plot_cluster_map(round_dir: str | os.PathLike, path: str | os.PathLike,
                     names: Sequence[str]) -> Path:
    """2-D PCA of a claus round's video embeddings, coloured by cluster, selected videos ringed.

    Args:
        round_dir: a committed round of a strategy that clusters (its pool scores, and its
            selection with all_clusters).
        path: the picture.
        names: the training videos' names, in the order the pool was scored.
    """
    plt = require_matplotlib()
    rd = RoundFolder(round_dir)
    st = torch.load(rd.scores, weights_only=True)
    sel = json.loads(rd.selection.read_text())
    xy = _pca2(st["embeddings"])
    cl = np.array([sel["all_clusters"].get(n, -1) for n in names])
    chosen = np.array([n in sel["frames"] for n in names])
    fig, ax = plt.subplots(figsize=(5, 4.2))
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=cl, cmap="tab10", s=14, vmin=0, vmax=9)
    ax.scatter(xy[chosen, 0], xy[chosen, 1], facecolors="none", edgecolors="k", s=70, lw=1.2,
               label="selected this round")
    ax.legend(*sc.legend_elements(), title="cluster", fontsize=7, loc="upper right")
    ax.set_title(f"video embeddings (PCA), {rd.path.name}")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    return save_figure(fig, path)


def plot_stew_weights(item: dict, path: str | os.PathLike, **stew: float) -> Path:
    """Frames, pseudo-label masks and STeW pixel weights ω of one training clip.

    Args:
        item: a `claus.data.TrainClips` item (clip (3,T,H,W), mask (T,H,W), annotated (T,)).
        stew: sigma / radius / window of `claus_ext.stew_weights`.
    """
    import claus_ext

    plt = require_matplotlib()
    clip, mask, ann = item["clip"], item["mask"], item["annotated"].bool()
    omega = claus_ext.stew_weights(mask[None].float().contiguous(), ann[None], **stew)[0]
    T = clip.shape[1]
    fig, axes = plt.subplots(3, T, figsize=(1.4 * T, 4.4), squeeze=False)
    for t in range(T):
        img = clip[:, t].permute(1, 2, 0).float().numpy()
        axes[0][t].imshow(img.clip(0, 1))
        axes[0][t].set_title("labelled" if ann[t] else f"t={t}", fontsize=7,
                             color="r" if ann[t] else "k")
        axes[1][t].imshow(mask[t].float().numpy(), cmap="gray", vmin=0, vmax=1)
        axes[2][t].imshow(omega[t].numpy(), cmap="viridis", vmin=0, vmax=1)
        for r in range(3):
            axes[r][t].axis("off")
    axes[1][0].set_title("pseudo-label", fontsize=7, loc="left")
    axes[2][0].set_title("STeW ω", fontsize=7, loc="left")
    return save_figure(fig, path)


def plot_detections(model: torch.nn.Module, ds, video: int, path: str | os.PathLike, *,
                    geometry: ClipGeometry | None = None, frames: int = 8,
                    threshold: float = 0.5, device: str = "cpu") -> Path:
    """A strip of `frames` frames of one video, ground-truth boxes red, the evaluation's
    detections blue: `claus.plots.detection_strip` (one picture of detections, drawn with
    Pillow) with the foreground threshold `threshold`. `geometry`: the clip layout the model
    was trained with (`TrainConfig.geometry`; default `claus.data.clips.default_geometry()`)."""
    from .eval.settings import DetectionSettings
    from .plots import detection_strip

    return detection_strip(model, ds, path, video=video, num_frames=frames, geometry=geometry,
                           device=device, settings=DetectionSettings(fg_threshold=threshold))


def _cluster_round(out: Path) -> RoundFolder | None:
    """The latest committed round with pool scores and a selection of the last run (highest
    seed) of a strategy that clusters, for the cluster map; None without one."""
    for strategy, _, path in reversed(experiment_runs(out)):
        if not _clusters(strategy):
            continue
        run = RunFolder(path)
        scored = [run.round(r) for r in run.committed()
                  if run.round(r).scores.is_file() and run.round(r).selection.is_file()]
        if scored:
            return scored[-1]
    return None


def _sample_round(out: Path) -> tuple[RunFolder, RoundFolder] | None:
    """The first run of a strategy that clusters (else the first run) and its last committed
    round, for the STeW and detection pictures; None without one."""
    runs = experiment_runs(out)
    picks = [x for x in runs if _clusters(x[0])] or runs
    if not picks:
        return None
    run = RunFolder(picks[0][2])
    done = run.committed()
    return (run, run.round(done[-1])) if done else None


def unreadable(lines: Sequence[dict]) -> dict[str, list[str]]:
    """{video: sorted stages} of the videos the runs left out as unreadable (the lines'
    "skipped": {stage: {video: {file, reason}}})."""
    out: dict[str, set[str]] = defaultdict(set)
    for x in lines:
        for stage, videos in (x.get("skipped") or {}).items():
            for v in videos:
                out[v].add(stage)
    return {v: sorted(out[v]) for v in sorted(out)}


def write_report(out_dir: str | os.PathLike, lines: Sequence[dict], *, dataset=None,
                 title: str = "claus active-learning comparison", pictures: bool = True,
                 device: str = "cpu", ci: str = "t") -> tuple[Path, list[Path]]:
    """OUT/results.md (the table, the paired differences between strategies, the runs' wall
    times) and OUT/figures/*.png.

    Args:
        out_dir: an experiment folder laid out by `claus.rounds.run_experiment`.
        lines: the runs' metric lines.
        dataset: the dataset (needed for the cluster map, STeW and detection pictures).
        pictures: draw pictures (needs matplotlib).
        ci: confidence interval of the paired differences: "t" or "bootstrap"
            (`claus.compare`).
    Returns:
        (results.md path, picture paths).
    """
    from .data import LabelState, TrainClips

    out = Path(out_dir)
    agg = aggregate(lines)
    seeds = sorted({x["seed"] for x in lines})
    wall = sum(x.get("wall_s", 0.0) for x in lines)
    unit = next((x["budget_unit"] for x in lines if x.get("budget_unit")), "boxes")
    text = [f"# {title}\n",
            f"f-mAP@0.5 and v-mAP@0.5 in %, mean ± std over seeds {seeds} (sample std; one "
            f"seed: no ±). Columns: % of the training split's {unit} labelled.\n",
            report_tables(lines, method=ci)]
    notes = sorted({x["note"] for x in lines if x.get("note") and not x.get("metrics")
                    and x.get("labelled_frames", 1)})
    if notes:
        text.append("\nNot in the table: " + "; ".join(notes) + ".\n")
    skipped = unreadable(lines)
    if skipped:
        text.append("\nLeft out as unreadable (missing or truncated frames): "
                    + "; ".join(f"{v} ({', '.join(st)})" for v, st in skipped.items())
                    + f"; each round's {RoundFolder('.').summary.name} lists them under "
                    "\"skipped\".\n")
    figs: list[Path] = []
    pictures = pictures and can_draw(text)
    if pictures:
        figs.append(plot_map_vs_budget(agg, out / "figures" / "map_vs_budget.png"))
        stats = compare(lines, method=ci)
        if stats:
            figs.append(plot_paired_differences(stats, out / "figures" /
                                                "paired_differences.png"))
        if dataset is not None and "test" in dataset.splits:
            names = [dataset[i].name for i in dataset.split_indices("train")]
            rd = _cluster_round(out)
            if rd is not None:
                figs.append(plot_cluster_map(rd, out / "figures" / "cluster_map.png", names))
            sample = _sample_round(out)
            if sample is not None:
                run, last = sample
                labels = LabelState.load(last.labels, dataset)
                cfg = json.loads(run.config.read_text())
                from .training import TrainConfig

                geometry = TrainConfig(**{k: cfg["train"][k] for k in ("T", "stride", "size")
                                          if k in cfg["train"]}).geometry
                clips = TrainClips(dataset, labels, geometry, augment=False,
                                   sampling="frame")
                # The first clip whose pseudo-label shows an actor (else the first clip).
                item = next((it for it in (clips[i] for i in range(min(len(clips), 64)))
                             if bool(it["mask"].any())), clips[0])
                figs.append(plot_stew_weights(item, out / "figures" / "stew_weights.png"))
                from .models import build_model

                model = build_model(cfg["train"].get("model", "tiny"), dataset.num_classes)
                model.load_weights(last.model)
                video = dataset.split_indices("test")[0]
                figs.append(plot_detections(model, dataset, video,
                                            out / "figures" / "detections.png",
                                            geometry=geometry, device=device))
        text.append("\nPictures:\n\n" + "".join(f"- `{p.relative_to(out)}`\n" for p in figs))
    text.append(f"\nSum of round wall times: {wall:.0f} s over {len(lines)} rounds.\n")
    path = out / "results.md"
    atomic_write_text(path, "\n".join(text))
    return path, figs
