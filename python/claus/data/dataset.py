"""The dataset interface every part of claus consumes.

A `VideoDataset` is a list of `Video`s (name, class, frame count, frame size, split,
ground-truth `Tube`s) plus, per video, a `FrameSource` for random access to its frames.
Conventions (DESIGN.md): frames are 0-based; boxes are [x1, y1, x2, y2] float32 pixels of the
original frame (x2/y2 are the right/bottom edges, so a box covering columns 0..9 is x1=0,
x2=10); readers convert at the format boundary.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .frames import ArrayFrames, FrameReadError, FrameSource, MissingFrames

log = logging.getLogger(__name__)

__all__ = [
    "Tube",
    "Video",
    "VideoDataset",
    "clip_boxes",
    "usable_tubes",
    "edges_to_inclusive",
    "inclusive_to_edges",
]


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, int]:
    """Clip (n,4) [x1,y1,x2,y2] boxes to the frame; returns (clipped float32, number changed)."""
    b = np.asarray(boxes, dtype=np.float32)
    c = b.copy()
    c[:, 0::2] = np.clip(c[:, 0::2], 0, width)
    c[:, 1::2] = np.clip(c[:, 1::2], 0, height)
    changed = int(np.any(c != b, axis=1).sum()) if len(b) else 0
    return c, changed


def usable_tubes(label: int, start: int, boxes: np.ndarray, width: int, height: int,
                 where: str = "tube") -> tuple[list[Tube], int, int]:
    """A ground-truth track as tubes of usable boxes: clipped to the frame, and split where a
    box has no area (wholly outside the frame, or degenerate), which is dropped: it shows no
    actor, so it is neither ground truth nor charged to a budget.

    Args:
        label: the track's class. start: its first frame (0-based).
        boxes: (n, 4) [x1, y1, x2, y2] edge boxes in pixels, one per frame from `start`.
        width, height: the frame size.
        where: what to name in errors (file, video, tube).

    Returns:
        (tubes, boxes clipped, boxes dropped).

    Raises:
        ValueError: a box is not finite (NaN or inf), naming `where` and the frame.
    """
    bad = np.flatnonzero(~np.isfinite(np.asarray(boxes, np.float64)).all(axis=1))
    if len(bad):
        raise ValueError(f"{where}: the box of frame {start + int(bad[0])} is not finite "
                         f"({np.asarray(boxes)[bad[0]].tolist()}); fix the annotation file")
    orig = np.asarray(boxes, np.float32)
    b, _ = clip_boxes(orig, width, height)
    keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    tubes = []
    # Runs of consecutive kept boxes: each becomes a tube.
    edges = np.flatnonzero(np.diff(np.concatenate([[0], keep.astype(np.int8), [0]])))
    for a, e in zip(edges[::2], edges[1::2], strict=True):
        tubes.append(Tube(label, start + int(a), b[a:e]))
    # A dropped box counts as dropped, not as clipped.
    clipped = int((np.any(b != orig, axis=1) & keep).sum())
    return tubes, clipped, int((~keep).sum())


def warn_boxes(where: str, clipped: int, dropped: int) -> None:
    """One warning per file for the boxes `usable_tubes` clipped or dropped."""
    parts = []
    if clipped:
        parts.append(f"{clipped} boxes reached outside the frame and were clipped")
    if dropped:
        parts.append(f"{dropped} boxes had no area inside the frame and were dropped (no "
                     "actor there; not charged to any budget)")
    if parts:
        warnings.warn(f"{where}: " + "; ".join(parts), stacklevel=3)


# The two box conventions that meet at the ACT/MOC boundary, and the only place claus converts
# between them. ACT/MOC boxes are 0-based *inclusive* pixel indices: x2 is the last covered
# column, so a box covers x2 - x1 + 1 columns (MCG-NJU/MOC-Detector src/ACT_utils/ACT_utils.py:
# "coordinates are 0-indexed", area2d/overlap2d/iou2d add 1; src/detector/normal_moc_det.py
# clips detections to [0, width - 1]). claus boxes are edges (x2 = x1 + width). The readers and
# `VideoDataset.act_gt` go through these two functions; see `claus.data.readers` for the sources.


def inclusive_to_edges(boxes: np.ndarray) -> np.ndarray:
    """ACT/MOC inclusive pixel boxes → claus edge boxes.

    Args:
        boxes: (..., 4) [x1, y1, x2, y2], any real dtype; x2/y2 are the last covered column/row.

    Returns:
        (..., 4) float32 [x1, y1, x2 + 1, y2 + 1] (the sum taken in float64, rounded once).
    """
    b = np.array(boxes, dtype=np.float64)
    b[..., 2:4] += 1.0
    return b.astype(np.float32)


def edges_to_inclusive(boxes: np.ndarray) -> np.ndarray:
    """claus edge boxes → ACT/MOC inclusive pixel boxes (the inverse of `inclusive_to_edges`).

    Args:
        boxes: (..., 4) [x1, y1, x2, y2], any real dtype; x2/y2 are the right/bottom edges.

    Returns:
        (..., 4) float64 [x1, y1, x2 - 1, y2 - 1], the boxes `claus.eval` measures (+1 areas);
        float64 so that float32 edges convert exactly.
    """
    b = np.array(boxes, dtype=np.float64)
    b[..., 2:4] -= 1.0
    return b


@dataclass
class Tube:
    """One actor's ground-truth track over a contiguous frame range.

    Attributes:
        label: class index.
        start: first frame (0-based); the tube covers frames [start, end).
        boxes: (n, 4) float32 [x1, y1, x2, y2] in original-frame pixels, one per frame.
        mask_fn: optional; `mask_fn(frame) -> (H, W) bool` pixel mask at an absolute frame in
            [start, end) (J-HMDB puppet masks). None when the dataset has boxes only.
    """

    label: int
    start: int
    boxes: np.ndarray
    mask_fn: Callable[[int], np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.label = int(self.label)
        self.start = int(self.start)

    @property
    def end(self) -> int:
        """One past the last frame (exclusive)."""
        return self.start + len(self.boxes)

    def __len__(self) -> int:
        return len(self.boxes)

    def box(self, frame: int) -> np.ndarray | None:
        """The (4,) box at an absolute frame, or None outside the tube."""
        if self.start <= frame < self.end:
            return self.boxes[frame - self.start]
        return None


@dataclass
class Video:
    """One video and its annotations.

    Attributes:
        name: unique id (e.g. `Basketball/v_Basketball_g01_c01`).
        label: the video's action class (its tubes' class), -1 when it has none.
        num_frames: frame count.
        height, width: original frame size in pixels (the frame boxes refer to).
        split: e.g. "train" / "test".
        tubes: ground-truth tubes.
        group: optional near-duplicate group (UCF-101's g01..g25 clip groups; synthetic scenes).
        source: random access to the frames (None: annotations only).
        annotated: whether `tubes` is the video's ground truth. False for videos nobody has
            labelled yet (`claus.data.videos`): their tubes are unknown, not absent, so budgets
            count frames and nothing is revealed or evaluated from them.
    """

    name: str
    label: int
    num_frames: int
    height: int
    width: int
    split: str
    tubes: list[Tube] = field(default_factory=list)
    group: str | None = None
    source: FrameSource | None = field(default=None, repr=False)
    annotated: bool = True

    def boxes_at(self, frame: int) -> list[tuple[int, int, np.ndarray]]:
        """Ground truth at one frame: [(tube index, label, (4,) box)]."""
        out = []
        for k, t in enumerate(self.tubes):
            b = t.box(frame)
            if b is not None:
                out.append((k, t.label, b))
        return out

    def boxes_per_frame(self) -> np.ndarray:
        """(num_frames,) int64: number of ground-truth boxes on each frame."""
        n = np.zeros(self.num_frames, np.int64)
        for t in self.tubes:
            n[max(t.start, 0) : min(t.end, self.num_frames)] += 1
        return n

    @property
    def num_boxes(self) -> int:
        return int(sum(len(t) for t in self.tubes))


class VideoDataset:
    """Videos with ground-truth tubes and random access to their frames.

    Args:
        name: dataset name (e.g. "ucf101-24", "synthetic:demo").
        classes: class names; labels index this list.
        videos: the videos, in a fixed order (position = video index everywhere in claus).
        strict: validate every video now (tube ranges, box shapes); errors name the video.
    """

    def __init__(
        self, name: str, classes: Sequence[str], videos: Iterable[Video], strict: bool = True
    ):
        self.name = name
        self.classes = list(classes)
        self.videos = list(videos)
        self._index = {}
        for i, v in enumerate(self.videos):
            if v.name in self._index:
                raise ValueError(f"{name}: duplicate video name {v.name!r}")
            self._index[v.name] = i
        if strict:
            for v in self.videos:
                self._validate(v)

    def _validate(self, v: Video) -> None:
        if v.num_frames <= 0:
            raise ValueError(f"{self.name}: video {v.name!r} has {v.num_frames} frames")
        for k, t in enumerate(v.tubes):
            if t.start < 0 or t.end > v.num_frames or len(t) == 0:
                raise ValueError(
                    f"{self.name}: video {v.name!r} tube {k} covers frames "
                    f"[{t.start}, {t.end}) outside [0, {v.num_frames}) or is empty"
                )
            if not 0 <= t.label < len(self.classes):
                raise ValueError(
                    f"{self.name}: video {v.name!r} tube {k} label {t.label} not in "
                    f"[0, {len(self.classes)})"
                )

    # ------------------------------------------------------------------ lookup
    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int | str) -> Video:
        """The video at index i, or by name."""
        return self.videos[self.index(i)] if isinstance(i, str) else self.videos[i]

    def __iter__(self):
        return iter(self.videos)

    def index(self, name: str) -> int:
        """Position of the video called `name`; KeyError naming it otherwise."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"{self.name}: unknown video {name!r}") from None

    def video(self, key: int | str) -> Video:
        return self.videos[self.index(key) if isinstance(key, str) else key]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def splits(self) -> list[str]:
        return sorted({v.split for v in self.videos})

    def split_indices(self, split: str | None) -> list[int]:
        """Indices of the videos in `split` (None: all). Unknown split → ValueError listing them."""
        if split is None:
            return list(range(len(self.videos)))
        if split not in self.splits:
            raise ValueError(f"{self.name}: unknown split {split!r}; choices: {self.splits}")
        return [i for i, v in enumerate(self.videos) if v.split == split]

    def subset(self, indices: Sequence[int], name: str | None = None) -> VideoDataset:
        """A dataset holding only the given videos (shared Video objects)."""
        return VideoDataset(
            name or self.name, self.classes, [self.videos[i] for i in indices], strict=False
        )

    # ------------------------------------------------------------------ counts
    def annotated(self, split: str | None = "train") -> bool:
        """Whether every video of the split has ground truth (False: some have not been
        labelled by anybody yet)."""
        return all(self.videos[i].annotated for i in self.split_indices(split))

    def num_frames(self, split: str | None = "train") -> int:
        """Frames in a split."""
        return sum(self.videos[i].num_frames for i in self.split_indices(split))

    def num_boxes(self, split: str | None = "train") -> int:
        """Ground-truth boxes in a split (the unit budgets are counted in)."""
        return sum(self.videos[i].num_boxes for i in self.split_indices(split))

    def class_counts(self, split: str | None = None) -> np.ndarray:
        """(num_classes,) int64: videos per class in the split."""
        c = np.zeros(self.num_classes, np.int64)
        for i in self.split_indices(split):
            if self.videos[i].label >= 0:
                c[self.videos[i].label] += 1
        return c

    def summary(self) -> dict:
        """Counts for logs and reports."""
        out = {"name": self.name, "videos": len(self), "classes": self.num_classes}
        for s in self.splits:
            idx = self.split_indices(s)
            out[s] = {
                "videos": len(idx),
                "frames": sum(self.videos[i].num_frames for i in idx),
                "boxes": self.num_boxes(s),
            }
        return out

    # ------------------------------------------------------------------ frames
    def read_frames(self, key: int | str, frames: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames of one video as (n, h, w, 3) uint8 RGB.

        (h, w) is the source's size: the original size for image folders and video files, the
        store size when the dataset reads from a frame store (`with_store`). Boxes stay in
        original pixels; scale them by (w / video.width, h / video.height).
        """
        v = self.video(key)
        if v.source is None:
            raise FrameReadError(
                f"{self.name}: video {v.name!r} has no frames (annotations only; "
                "give the frames folder or prepare a frame store)"
            )
        idx = np.asarray(frames, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= v.num_frames):
            raise IndexError(
                f"{self.name}: video {v.name!r}: frame {int(idx.max())} out of range "
                f"[0, {v.num_frames})"
            )
        return v.source.read(idx)

    def with_store(self, store) -> VideoDataset:
        """A copy whose frames come from a `FrameStore` (memory-mapped, resized).

        A video the store lacks reads as a `FrameReadError` that says why: skipped while
        preparing the store (with the reason `prepare` recorded), or not prepared yet; the
        stages that read frames leave it out (`claus.data.faults`). `store.missing(self)` lists
        them.
        """
        videos = []
        for v in self.videos:
            if store.has(v.name):
                src: FrameSource = ArrayFrames(store.file(v.name))
            elif v.name in store.failed:
                src = MissingFrames(
                    f"video {v.name!r} was skipped while preparing the frame store {store.root} "
                    f"({store.failed[v.name]}); fix it and prepare the store again with "
                    "--retry-failed", store.root / "index.json", v.num_frames)
            else:
                src = MissingFrames(
                    f"video {v.name!r} is not in the frame store {store.root} (prepared "
                    "before it was added, or interrupted); run python -m claus.data.prepare "
                    "again", store.root / "index.json", v.num_frames)
            videos.append(
                Video(
                    v.name, v.label, v.num_frames, v.height, v.width, v.split, v.tubes, v.group,
                    src, v.annotated,
                )
            )
        return VideoDataset(self.name, self.classes, videos, strict=False)

    # ------------------------------------------------------------------ exports
    def act_gt(
        self, split: str | None = "test", *, indices: Iterable[int | str] | None = None
    ) -> dict[str, dict[int, list[np.ndarray]]]:
        """Ground truth in the ACT/MOC `gttubes` layout, the form `claus.eval` takes.

        Frames become 1-based and boxes inclusive pixel indices (`edges_to_inclusive`): the
        convention of the `UCF101v2-GT.pkl` / `JHMDB-GT.pkl` files and of the ACT/MOC metrics,
        so `load_act_gt` followed by `act_gt` gives back the file's numbers.

        Args:
            split: the videos of this split (None: all); ignored when `indices` is given.
            indices: explicit videos (indices or names) instead of a split.

        Returns:
            {video: {label: [array (n, 5) float64: frame (1-based), x1, y1, x2, y2 inclusive]}},
            one entry per video (an empty dict for a video without tubes).
        """
        out: dict[str, dict[int, list[np.ndarray]]] = {}
        for i in self.split_indices(split) if indices is None else indices:
            v = self[i]
            d: dict[int, list[np.ndarray]] = {}
            for t in v.tubes:
                fr = np.arange(t.start, t.end, dtype=np.float64)[:, None] + 1
                rows = np.concatenate([fr, edges_to_inclusive(t.boxes)], axis=1)
                d.setdefault(t.label, []).append(rows)
            out[v.name] = d
        return out
