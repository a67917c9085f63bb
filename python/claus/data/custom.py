"""The claus JSON dataset format (bring your own videos) and AVA-style CSV import.

A dataset file (`dataset.json`) looks like::

    {
      "format": "claus.dataset", "version": 1,
      "name": "my-actions",
      "classes": ["wave", "jump"],
      "videos": [
        {"name": "cam1/0001", "label": 0, "split": "train", "group": "cam1",
         "num_frames": 120, "width": 320, "height": 240,
         "frames": "frames/cam1/0001/{:05d}.jpg", "first_frame": 1,
         "tubes": [{"label": 0, "start": 10,
                    "boxes": [[x1, y1, x2, y2], ...]}]}
      ]
    }

Per video exactly one frame source: `frames` (an image path pattern with one `{}` field; the
file number of frame 0 is `first_frame`, default 1), `video` (a video file, decoded with PyAV),
or `array` (a (T, H, W, 3) uint8 `.npy`). Relative paths are relative to the JSON file. Frames
and `start` are 0-based; a tube covers frames [start, start + len(boxes)), one box per frame, in
pixels of the original frame, [x1, y1, x2, y2]. `split` is any name ("train", "test", ...);
`group` (optional) names near-duplicate videos. `label` defaults to the first tube's label.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write_json
from .dataset import Video, VideoDataset, usable_tubes, warn_boxes
from .frames import ArrayFrames, FrameSource, ImageFolderFrames, VideoFileFrames

__all__ = ["FORMAT", "VERSION", "load_custom", "dataset_to_json", "save_custom", "import_ava_csv"]

FORMAT = "claus.dataset"
VERSION = 1


class CustomFormatError(ValueError):
    """The dataset JSON is malformed; the message names the file, video and field."""


def _req(d: dict, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in d:
        raise CustomFormatError(f"{where}: missing field {key!r}")
    val = d[key]
    if not isinstance(val, kind) or isinstance(val, bool) and kind is not bool:
        raise CustomFormatError(f"{where}: field {key!r} must be {kind}, got {type(val).__name__}")
    return val


def load_custom(path: str | os.PathLike) -> VideoDataset:
    """Read a claus dataset JSON file (see the module docstring for the schema)."""
    import json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise CustomFormatError(f"{path}: empty file")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise CustomFormatError(f"{path}: not JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CustomFormatError(
            f"{path}: not a claus dataset file (field 'format' must be {FORMAT!r})"
        )
    if doc.get("version") != VERSION:
        raise CustomFormatError(
            f"{path}: unsupported version {doc.get('version')!r} (this claus reads {VERSION})"
        )
    classes = _req(doc, "classes", str(path), list)
    vids = _req(doc, "videos", str(path), list)
    if not vids:
        raise CustomFormatError(f"{path}: no videos")
    base = path.parent
    videos, clipped, dropped = [], 0, 0
    for i, v in enumerate(vids):
        where = f"{path}: videos[{i}]"
        if not isinstance(v, dict):
            raise CustomFormatError(f"{where}: must be an object")
        name = _req(v, "name", where, str)
        where = f"{path}: video {name!r}"
        n = _req(v, "num_frames", where, int)
        W = _req(v, "width", where, int)
        H = _req(v, "height", where, int)
        split = _req(v, "split", where, str)
        tubes = []
        for k, t in enumerate(v.get("tubes", [])):
            tw = f"{where} tube {k}"
            b = np.asarray(_req(t, "boxes", tw, list), dtype=np.float32)
            if b.ndim != 2 or b.shape[1] != 4 or len(b) == 0:
                raise CustomFormatError(
                    f"{tw}: boxes must be a non-empty list of [x1, y1, x2, y2], got shape {b.shape}"
                )
            if np.any(b[:, 2] < b[:, 0]) or np.any(b[:, 3] < b[:, 1]):
                raise CustomFormatError(
                    f"{tw}: a box has x2 < x1 or y2 < y1 (boxes are [x1, y1, x2, y2])"
                )
            start = _req(t, "start", tw, int)
            if start < 0 or start + len(b) > n:
                raise CustomFormatError(
                    f"{tw}: frames [{start}, {start + len(b)}) outside [0, {n})"
                )
            kept, c, d = usable_tubes(_req(t, "label", tw, int), start, b, W, H, tw)
            tubes += kept
            clipped += c
            dropped += d
        label = v.get("label", tubes[0].label if tubes else -1)
        videos.append(
            Video(
                name, int(label), n, H, W, split, tubes, v.get("group"), _source(v, base, where, n)
            )
        )
    warn_boxes(str(path), clipped, dropped)
    return VideoDataset(str(doc.get("name", path.stem)), [str(c) for c in classes], videos)


def _source(v: dict, base: Path, where: str, n: int) -> FrameSource | None:
    kinds = [k for k in ("frames", "video", "array") if k in v]
    if len(kinds) > 1:
        raise CustomFormatError(f"{where}: give one of 'frames', 'video', 'array', not {kinds}")
    if not kinds:
        return None
    val = _req(v, kinds[0], where, str)
    p = Path(val) if Path(val).is_absolute() else base / val
    if kinds[0] == "frames":
        if "{" not in val:
            raise CustomFormatError(
                f"{where}: 'frames' must be a pattern with a {{}} field, e.g. "
                "'frames/v1/{:05d}.jpg'"
            )
        return ImageFolderFrames(str(p), first=int(v.get("first_frame", 1)), num_frames=n)
    if kinds[0] == "video":
        return VideoFileFrames(p, num_frames=n)
    return ArrayFrames(p)


def dataset_to_json(ds: VideoDataset, frames: dict[str, dict[str, Any]] | None = None) -> dict:
    """The claus JSON document of a dataset; `frames` maps video name → its source fields."""
    vids = []
    for v in ds.videos:
        d: dict[str, Any] = {
            "name": v.name,
            "label": v.label,
            "split": v.split,
            "num_frames": v.num_frames,
            "width": v.width,
            "height": v.height,
        }
        if v.group is not None:
            d["group"] = v.group
        if frames and v.name in frames:
            d.update(frames[v.name])
        d["tubes"] = [
            {
                "label": t.label,
                "start": t.start,
                "boxes": [[round(float(x), 2) for x in b] for b in t.boxes],
            }
            for t in v.tubes
        ]
        vids.append(d)
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": ds.name,
        "classes": ds.classes,
        "videos": vids,
    }


def save_custom(
    ds: VideoDataset, path: str | os.PathLike, frames: dict[str, dict[str, Any]] | None = None
) -> None:
    """Write `ds` as a claus dataset JSON file (atomically)."""
    atomic_write_json(path, dataset_to_json(ds, frames), indent=None)


def import_ava_csv(
    csv_path: str | os.PathLike,
    videos: dict[str, dict[str, Any]],
    *,
    classes: list[str] | None = None,
    time_unit: str = "seconds",
    fps: float | None = None,
    max_gap: int | None = None,
    split: str = "train",
    name: str = "ava-import",
) -> dict:
    """Convert AVA-style CSV rows into a claus dataset JSON document.

    Each row: video, time, x1, y1, x2, y2 (normalized to [0, 1]), label, track id — the AVA
    layout (`video_id, middle_frame_timestamp, x1, y1, x2, y2, action_id, person_id`). A
    header row is skipped when its coordinates are not numbers.

    Args:
        csv_path: the CSV file.
        videos: per video name, its `num_frames`, `width`, `height`, optional `fps` and the
            frame-source fields of the JSON format (`frames`/`video`/`array`, `split`, `group`).
        classes: class names; labels in the CSV are then 0-based indices into it, or names
            found in it. Default: the sorted distinct labels of the CSV.
        time_unit: "seconds" (AVA timestamps, × fps) or "frame" (0-based frame numbers).
        fps: frames per second for `seconds` when a video gives none.
        max_gap: keyframes of one (track, label) at most this many frames apart are joined by
            linear interpolation into one tube; farther apart starts a new tube. Default: one
            second of frames (AVA annotates at 1 Hz), or 1 for `frame` without fps.
        split: split for videos whose entry has none.

    Returns:
        The JSON document (pass to `atomic_write_json`, then `load_custom`).
    """
    if time_unit not in ("seconds", "frame"):
        raise ValueError(f"time_unit must be 'seconds' or 'frame', got {time_unit!r}")
    path = Path(csv_path)
    from .ava_csv import ava_rows

    rows = [(ln, row[0].strip(), t, box, row[6].strip(), row[7].strip())
            for ln, row, t, box in ava_rows(path, CustomFormatError)]
    if not rows:
        raise CustomFormatError(f"{path}: no annotation rows")
    labels = sorted({r[4] for r in rows}) if classes is None else list(classes)

    def label_index(lab: str, ln: int) -> int:
        if lab in labels:
            return labels.index(lab)
        if classes is not None and lab.isdigit() and int(lab) < len(labels):
            return int(lab)
        raise CustomFormatError(f"{path}:{ln}: unknown label {lab!r}; classes: {labels}")

    tracks: dict[tuple[str, str, int], dict[int, list[float]]] = defaultdict(dict)
    for ln, vid, t, box, lab, track in rows:
        if vid not in videos:
            raise CustomFormatError(f"{path}:{ln}: video {vid!r} is not in the videos table")
        info = videos[vid]
        W, H, n = int(info["width"]), int(info["height"]), int(info["num_frames"])
        if time_unit == "seconds":
            vfps = info.get("fps", fps)
            if not vfps:
                raise CustomFormatError(f"{path}:{ln}: video {vid!r}: timestamps need fps")
            frame = int(round(t * float(vfps)))
        else:
            frame = int(round(t))
        if not 0 <= frame < n:
            raise CustomFormatError(f"{path}:{ln}: video {vid!r}: frame {frame} outside [0, {n})")
        if any(not -0.01 <= x <= 1.01 for x in box):
            raise CustomFormatError(f"{path}:{ln}: box {box} is not normalized to [0, 1]")
        tracks[(vid, track, label_index(lab, ln))][frame] = [
            box[0] * W,
            box[1] * H,
            box[2] * W,
            box[3] * H,
        ]

    per_video: dict[str, list[dict]] = defaultdict(list)
    for (vid, _track, lab), fb in sorted(tracks.items()):
        vfps = videos[vid].get("fps", fps)
        gap = max_gap if max_gap is not None else (int(round(float(vfps))) if vfps else 1)
        frs = sorted(fb)
        seg = [frs[0]]
        for f in frs[1:] + [None]:
            if f is not None and f - seg[-1] <= gap:
                seg.append(f)
                continue
            # Interpolate linearly between consecutive keyframes of the segment.
            full = np.arange(seg[0], seg[-1] + 1)
            kb = np.array([fb[s] for s in seg], np.float64)
            boxes = np.stack([np.interp(full, seg, kb[:, j]) for j in range(4)], axis=1)
            per_video[vid].append(
                {
                    "label": lab,
                    "start": int(seg[0]),
                    "boxes": [[round(float(x), 2) for x in b] for b in boxes],
                }
            )
            if f is not None:
                seg = [f]
    vids = []
    for vid, info in videos.items():
        tubes = per_video.get(vid, [])
        counts = Counter(t["label"] for t in tubes)
        d = {
            "name": vid,
            "label": counts.most_common(1)[0][0] if counts else -1,
            "split": info.get("split", split),
            "num_frames": int(info["num_frames"]),
            "width": int(info["width"]),
            "height": int(info["height"]),
        }
        for k in ("group", "frames", "first_frame", "video", "array"):
            if k in info:
                d[k] = info[k]
        d["tubes"] = tubes
        vids.append(d)
    return {"format": FORMAT, "version": VERSION, "name": name, "classes": labels, "videos": vids}
