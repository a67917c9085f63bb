"""Pictures of a training run: loss / metric curves and a strip of detections on test frames.

The curves need matplotlib (`pip install "claus[plots]"`); without it they are skipped with a
warning that says so. The detection strip is drawn with Pillow (a core dependency).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from claus.data import VideoDataset
from claus.data.clips import ClipGeometry
from claus.eval.pipeline import DetectionSettings, detect_video, predict_videos
from claus.io import atomic_write_bytes

log = logging.getLogger(__name__)

__all__ = ["detection_strip", "training_curves"]

MATPLOTLIB_MISSING = ("matplotlib is not installed, so the training curves were not drawn; "
                      "install it with: pip install \"claus[plots]\"")


def training_curves(records: Sequence[dict], path: str | Path) -> Path | None:
    """Training loss (total, classification, localization, cluster) per epoch and, where the
    run was evaluated, f-mAP@0.5 / v-mAP@0.5 / accuracy, as one PNG.

    Args:
        records: metrics.jsonl records (training ones have "loss"; evaluations have "split").
        path: the PNG to write (atomically).

    Returns:
        The path, or None when matplotlib is missing (a warning says how to install it).
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning(MATPLOTLIB_MISSING)
        return None
    train = [r for r in records if "split" not in r and "loss" in r]
    evals = [r for r in records if "split" in r]
    fig, axes = plt.subplots(1, 2 if evals else 1, figsize=(10 if evals else 5.5, 3.6),
                             squeeze=False)
    ax = axes[0, 0]
    epochs = [r["epoch"] + 1 for r in train]
    for key, name in (("loss", "total"), ("cls", "classification"), ("loc", "localization"),
                      ("cluster", "cluster")):
        ys = [r.get(key) for r in train]
        if any(y is not None for y in ys):
            ax.plot(epochs, [np.nan if y is None else y for y in ys], marker="o", ms=3,
                    label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (mean over the epoch)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if evals:
        ax = axes[0, 1]
        xs = [r["epoch"] + 1 for r in evals]
        for key in ("f-mAP@0.5", "v-mAP@0.5", "accuracy"):
            ys = [r.get(key) for r in evals]
            ax.plot(xs, [np.nan if y is None else y for y in ys], marker="o", ms=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel("percent (test split)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _pick_video(ds: VideoDataset, split: str) -> int:
    """The first video of the split with a ground-truth tube (deterministic)."""
    indices = ds.split_indices(split)
    for vi in indices:
        if ds[vi].tubes:
            return vi
    return indices[0]


def detection_strip(
    model: torch.nn.Module,
    ds: VideoDataset,
    path: str | Path,
    *,
    video: int | str | None = None,
    split: str = "test",
    num_frames: int = 6,
    geometry: ClipGeometry | None = None,
    device: torch.device | str = "cpu",
    settings: DetectionSettings | None = None,
    scale: int | None = None,
) -> Path:
    """A row of test frames with ground-truth boxes in red and predicted boxes in blue.

    Predictions are the frame detections of the evaluation (connected foreground regions of
    the sliding-clip probabilities), each region drawn once with its best class and score.

    Args:
        model: a `Detector`.
        ds: the dataset.
        path: PNG to write (atomically).
        video: index or name; default the first video of `split` with ground truth.
        num_frames: frames shown, evenly spaced over the ground-truth span (else the video).
        geometry: the clip layout the model was trained with (`TrainConfig.geometry`;
            default `claus.data.clips.default_geometry()`).
        device, settings: inference settings, as in evaluation.
        scale: integer upscaling of the frames (default: so frames are >= 160 px high).

    Returns:
        The path written.
    """
    settings = settings or DetectionSettings()
    vi = _pick_video(ds, split) if video is None else (
        ds.index(video) if isinstance(video, str) else int(video))
    v = ds[vi]
    _, pred = next(predict_videos(model, ds, [vi], geometry=geometry, device=device))
    dets, _ = detect_video(pred, v.height, v.width, 0, settings)
    if v.tubes:
        lo = min(t.start for t in v.tubes)
        hi = max(t.end for t in v.tubes) - 1
    else:
        lo, hi = 0, v.num_frames - 1
    frames = np.unique(np.linspace(lo, hi, num_frames).round().astype(np.int64))
    raw = ds.read_frames(vi, frames)  # (n, h, w, 3) source pixels
    h, w = raw.shape[1:3]
    k = scale or max(1, int(np.ceil(160 / h)))
    sx, sy = w / v.width * k, h / v.height * k  # original pixels → drawn pixels
    gap = 4
    sheet = Image.new("RGB", (len(frames) * (w * k + gap) - gap, h * k + 14), "white")
    draw = ImageDraw.Draw(sheet)
    for n, f in enumerate(frames):
        ox = n * (w * k + gap)
        sheet.paste(Image.fromarray(raw[n]).resize((w * k, h * k), Image.NEAREST), (ox, 0))
        # Ground truth: edge coordinates.
        for _, _, b in v.boxes_at(int(f)):
            draw.rectangle([ox + b[0] * sx, b[1] * sy, ox + b[2] * sx - 1, b[3] * sy - 1],
                           outline=(230, 20, 20), width=2)
        # Predictions: inclusive pixel boxes, the best class per region.
        mine = dets[dets[:, 1] == f + 1]
        seen: set[tuple] = set()
        for row in mine[np.argsort(-mine[:, 3], kind="stable")]:
            key = tuple(row[4:8])
            if key in seen:
                continue
            seen.add(key)
            x1, y1, x2, y2 = row[4:8]
            draw.rectangle([ox + x1 * sx, y1 * sy, ox + (x2 + 1) * sx - 1, (y2 + 1) * sy - 1],
                           outline=(30, 60, 240), width=2)
            draw.text((ox + x1 * sx + 2, y1 * sy + 1),
                      f"{ds.classes[int(row[2])]} {row[3]:.2f}", fill=(30, 60, 240))
        draw.text((ox + 2, h * k + 1), f"frame {int(f)}", fill=(0, 0, 0))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
