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
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write, atomic_write_json
from .ava_csv import boxes_json, read_ava_columns
from .dataset import Video, VideoDataset, usable_tubes, warn_boxes
from .frames import ArrayFrames, FrameSource, ImageFolderFrames, VideoFileFrames

__all__ = ["FORMAT", "VERSION", "load_custom", "dataset_to_json", "save_custom", "import_ava_csv",
           "write_ava_dataset"]

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
    header row is skipped when its coordinates are not numbers. Rows of one (video, track,
    label) on the same frame: the last one counts; identical rows without a track id (one
    box written twice) are counted in a warning.

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
        The JSON document (pass to `atomic_write_json`, then `load_custom`); `write_ava_dataset`
        writes the same file without holding the document's boxes as Python objects.
    """
    tracks = _AvaTracks(csv_path, videos, classes, time_unit, fps, max_gap)
    tracks.warn()
    vids = []
    for vid, info in videos.items():
        tubes = [{"label": lab, "start": start,
                  "boxes": [[round(float(x), 2) for x in b] for b in boxes]}
                 for lab, start, boxes in tracks.tubes(vid)]
        vids.append({**_video_fields(vid, info, split, [t["label"] for t in tubes]),
                     "tubes": tubes})
    return {"format": FORMAT, "version": VERSION, "name": name, "classes": tracks.labels,
            "videos": vids}


def write_ava_dataset(
    csv_path: str | os.PathLike,
    out: str | os.PathLike,
    videos: dict[str, dict[str, Any]],
    **kw: Any,
) -> tuple[int, int, int]:
    """`import_ava_csv` (same arguments after `videos`) written to `out` atomically, a video at
    a time: the file is byte for byte `atomic_write_json(out, import_ava_csv(...), indent=None)`
    while only one video's boxes exist as Python objects at once.

    Returns:
        (videos, tubes, classes) written.
    """
    import json

    split = kw.pop("split", "train")
    name = kw.pop("name", "ava-import")
    tracks = _AvaTracks(csv_path, videos, kw.pop("classes", None), **kw)
    tracks.warn()

    def dumps(obj: Any) -> str:
        return json.dumps(obj, allow_nan=False, ensure_ascii=False)

    head = {"format": FORMAT, "version": VERSION, "name": name, "classes": tracks.labels}
    n_tubes = 0
    with atomic_write(out, "w") as f:
        f.write(dumps(head)[:-1] + ', "videos": [')
        for i, (vid, info) in enumerate(videos.items()):
            tubes = list(tracks.tubes(vid))
            d = _video_fields(vid, info, split, [lab for lab, _, _ in tubes])
            n_tubes += len(tubes)
            f.write((", " if i else "") + dumps(d)[:-1] + ', "tubes": [')
            f.write(", ".join(f'{{"label": {lab}, "start": {start}, "boxes": '
                              f"{boxes_json(boxes)}}}" for lab, start, boxes in tubes))
            f.write("]}")
        f.write("]}\n")
    return len(videos), n_tubes, len(tracks.labels)


def _video_fields(vid: str, info: dict[str, Any], split: str, labels: list[int]) -> dict:
    """A video's JSON fields before `tubes`; its label is its tubes' most common (the first of
    a tie), -1 without tubes."""
    counts = Counter(labels)
    d = {"name": vid, "label": counts.most_common(1)[0][0] if counts else -1,
         "split": info.get("split", split), "num_frames": int(info["num_frames"]),
         "width": int(info["width"]), "height": int(info["height"])}
    for k in ("group", "frames", "first_frame", "video", "array"):
        if k in info:
            d[k] = info[k]
    return d


class _AvaTracks:
    """The rows of an AVA-style CSV grouped into (video, track, label) tracks, checked.

    Rows stay in `AvaColumns` (48 bytes a row); `order` lists the rows each track keeps, sorted
    by track (video, track id, label index, as `sorted` orders those tuples) and frame, the
    last row of a frame only; `bounds[g]:bounds[g + 1]` are track g's.
    """

    def __init__(self, csv_path: str | os.PathLike, videos: dict[str, dict[str, Any]],
                 classes: list[str] | None, time_unit: str = "seconds",
                 fps: float | None = None, max_gap: int | None = None):
        if time_unit not in ("seconds", "frame"):
            raise ValueError(f"time_unit must be 'seconds' or 'frame', got {time_unit!r}")
        self.path, self.videos, self.fps, self.max_gap = Path(csv_path), videos, fps, max_gap
        self.cols = read_ava_columns(self.path, CustomFormatError, lines=False)
        if not len(self.cols):
            raise CustomFormatError(f"{self.path}: no annotation rows")
        self.labels = (sorted({lab for _, lab, _ in self.cols.keys}) if classes is None
                       else list(classes))
        self.classes = classes
        self._group(self._check(time_unit == "seconds"))

    def _label_index(self, lab: str) -> int:
        """The class of a label: its index in the labels, or (with `classes`) a 0-based index
        into them; -1 when neither."""
        if lab in self.labels:
            return self.labels.index(lab)
        if self.classes is not None and lab.isdigit() and int(lab) < len(self.labels):
            return int(lab)
        return -1

    def _video_info(self, vid: str) -> tuple[int, int, int, float | None]:
        info = self.videos[vid]
        return (int(info["width"]), int(info["height"]), int(info["num_frames"]),
                info.get("fps", self.fps))

    def _check(self, seconds: bool) -> np.ndarray:
        """(n,) int64 frame of every row; raises CustomFormatError at the first bad row, with
        the message of its first failed check (video, fps, frame, box, label)."""
        keys, cols = self.cols.keys, self.cols
        info = {v: self._video_info(v) for v in {k[0] for k in keys} if v in self.videos}
        known = np.array([k[0] in info for k in keys])
        n = np.array([info[k[0]][2] if k[0] in info else 0 for k in keys], np.float64)
        rate = np.array([float(info[k[0]][3]) if k[0] in info and info[k[0]][3] and seconds
                         else (0.0 if seconds else 1.0) for k in keys])
        label = np.array([self._label_index(k[1]) for k in keys], np.int64)
        self.key_label = label
        # frame = round(t × fps): np.rint rounds halves to even, as Python's round does.
        frame = np.rint(cols.time * rate[cols.key])
        bad = ~known[cols.key] | (rate[cols.key] == 0) | ~((frame >= 0) & (frame < n[cols.key]))
        bad |= ~((cols.box >= -0.01) & (cols.box <= 1.01)).all(axis=1)
        bad |= label[cols.key] < 0
        if bad.any():
            self._raise(int(np.argmax(bad)), seconds)
        cols.drop_time()
        return frame.astype(np.int32 if n.max() < 2**31 else np.int64)

    def _raise(self, i: int, seconds: bool) -> None:
        """The error of row i, checked as one row at a time."""
        vid, lab, _ = self.cols.keys[self.cols.key[i]]
        where = f"{self.path}:{self.cols.line_of(i, CustomFormatError)}"
        t, box = float(self.cols.time[i]), self.cols.box[i].tolist()
        if vid not in self.videos:
            raise CustomFormatError(f"{where}: video {vid!r} is not in the videos table")
        _, _, n, vfps = self._video_info(vid)
        if seconds and not vfps:
            raise CustomFormatError(f"{where}: video {vid!r}: timestamps need fps")
        x = t * float(vfps) if seconds else t
        frame = int(round(x)) if np.isfinite(x) else x
        if not 0 <= frame < n:
            raise CustomFormatError(f"{where}: video {vid!r}: frame {frame} outside [0, {n})")
        if any(not -0.01 <= x <= 1.01 for x in box):
            raise CustomFormatError(f"{where}: box {box} is not normalized to [0, 1]")
        raise CustomFormatError(f"{where}: unknown label {lab!r}; classes: {self.labels}")

    def _group(self, frames: np.ndarray) -> None:
        keys = self.cols.keys
        # Tracks are (video, track id, label index): two spellings of one class are one track.
        tracks = sorted({(k[0], k[2], int(lab)) for k, lab in zip(keys, self.key_label,
                                                                     strict=True)})
        rank = {t: g for g, t in enumerate(tracks)}
        key_track = np.array([rank[(k[0], k[2], int(lab))] for k, lab in
                              zip(keys, self.key_label, strict=True)], np.int64)
        row_track = key_track.astype(np.int32)[self.cols.key]
        self.duplicates = self._duplicates(row_track, frames,
                                           np.array([t[1] == "" for t in tracks], bool))
        order = np.lexsort((frames, row_track))  # stable: a frame's rows stay in file order
        g, f = row_track[order], frames[order]
        del row_track, frames
        last = np.ones(len(order), bool)
        last[:-1] = (g[1:] != g[:-1]) | (f[1:] != f[:-1])
        # int32 row numbers: a quarter of the memory of lexsort's int64 for what is kept.
        self.order, self.frames = order[last].astype(np.int32), f[last]
        del order
        g = g[last]
        self.tracks = tracks
        self.bounds = np.searchsorted(g, np.arange(len(tracks) + 1))
        # A video's tracks are consecutive (sorted by video first): {video: (first, end)}.
        self.video_tracks: dict[str, tuple[int, int]] = {}
        for t, (vid, _, _) in enumerate(tracks):
            self.video_tracks[vid] = (self.video_tracks.get(vid, (t, t))[0], t + 1)

    def _duplicates(self, row_track: np.ndarray, frames: np.ndarray,
                    untracked: np.ndarray) -> int:
        """How many rows without a track id repeat an earlier row: same video, label, frame and
        box (one box written twice; the track's frame keeps one)."""
        r = np.flatnonzero(untracked[row_track])
        if not len(r):
            return 0
        rec = np.empty(len(r), [("g", "i8"), ("f", "i8")] + [(f"b{j}", "f8") for j in range(4)])
        rec["g"], rec["f"] = row_track[r], frames[r]
        for j in range(4):
            rec[f"b{j}"] = self.cols.box[r, j]
        return len(r) - len(np.unique(rec))

    def warn(self) -> None:
        """One warning for the identical duplicate rows without a track id."""
        if self.duplicates:
            warnings.warn(f"{self.path}: {self.duplicates} identical duplicate boxes without a "
                          "track id merged (same video, frame, label and coordinates)",
                          stacklevel=3)

    def tubes(self, vid: str) -> Iterator[tuple[int, int, np.ndarray]]:
        """(label, start, (len, 4) float64 pixel boxes) of the video's tubes, in track order:
        the keyframes of a track at most `max_gap` frames apart, interpolated linearly."""
        if vid not in self.video_tracks:
            return
        W, H, _, vfps = self._video_info(vid)
        gap = self.max_gap if self.max_gap is not None else (
            int(round(float(vfps))) if vfps else 1)
        scale = np.array([W, H, W, H], np.float64)
        for t in range(*self.video_tracks[vid]):
            lo, hi = self.bounds[t], self.bounds[t + 1]
            frs = self.frames[lo:hi]
            cuts = np.flatnonzero(np.diff(frs) > gap) + 1
            for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(frs)], strict=True):
                seg = frs[a:b]
                kb = self.cols.box[self.order[lo + a:lo + b]] * scale
                full = np.arange(seg[0], seg[-1] + 1)
                boxes = np.stack([np.interp(full, seg, kb[:, j]) for j in range(4)], axis=1)
                yield self.tracks[t][2], int(seg[0]), boxes
