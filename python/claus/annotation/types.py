"""What an annotation reader hands over: the types every format shares.

A reader (`claus.annotation.ava`, `cvat`, `labelstudio`) turns a tool's file into `Annotations`
(boxes as `ImportedBox` items or, for large files, one `BoxTable` of columns), or raises
`AnnotationFileError`; `claus.annotation.importer` applies them to the waiting round. These
types sit below both, so readers and the importer import them without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["AnnotationFileError", "Annotations", "BoxTable", "ImportedBox"]


class AnnotationFileError(ValueError):
    """An annotation file is malformed or does not fit the waiting round; nothing was written.
    The message names the file and what is wrong."""


@dataclass(frozen=True)
class ImportedBox:
    """One box from a tool: video, 0-based frame, class name, [x1, y1, x2, y2] in original-frame
    pixels (not clipped yet), the tool's track id (None: not linked), where it came from, and
    whether someone drew it (`keyframe`) or the tool interpolated it between keyframes."""

    video: str
    frame: int
    label: str
    box: tuple[float, float, float, float]
    track: str | None
    where: str
    keyframe: bool = True


class BoxTable(Sequence[ImportedBox]):
    """Boxes as columns (n boxes): what a reader of a large file hands over instead of n
    `ImportedBox` objects. It reads as a sequence of them, each made when asked for.

    Args:
        videos, labels: the names the `video` and `label` columns index.
        tracks: the track ids the `track` column indexes (None: not linked).
        video: (n,) int32. frame: (n,) int32 or int64, 0-based. label: (n,) int32. track: (n,)
            int32.
        box: (n, 4) float64 [x1, y1, x2, y2] in original-frame pixels (not clipped).
        keyframe: (n,) bool.
        where: box i -> where it came from (for messages; called only for boxes named).
        items: the boxes themselves when the table was made from them (`of`).
    """

    def __init__(self, videos: list[str], labels: list[str], tracks: list[str | None],
                 video: np.ndarray, frame: np.ndarray, label: np.ndarray, track: np.ndarray,
                 box: np.ndarray, keyframe: np.ndarray, where: Callable[[int], str],
                 items: Sequence[ImportedBox] | None = None):
        self.videos, self.labels, self.tracks = videos, labels, tracks
        self.video, self.frame, self.label, self.track = video, frame, label, track
        self.box, self.keyframe, self.where, self.items = box, keyframe, where, items

    @classmethod
    def of(cls, boxes: Sequence[ImportedBox]) -> BoxTable:
        """`boxes` as a table (itself when it is one)."""
        if isinstance(boxes, BoxTable):
            return boxes
        items = list(boxes)
        videos: dict[str, int] = {}
        labels: dict[str, int] = {}
        tracks: dict[str | None, int] = {}
        video = np.array([videos.setdefault(b.video, len(videos)) for b in items], np.int32)
        label = np.array([labels.setdefault(b.label, len(labels)) for b in items], np.int32)
        track = np.array([tracks.setdefault(b.track, len(tracks)) for b in items], np.int32)
        # Frames past int64 are out of range either way; the message names the box, not it.
        frame = np.array([min(max(int(b.frame), -2**62), 2**62) for b in items], np.int64)
        return cls(list(videos), list(labels), list(tracks), video, frame, label, track,
                   np.array([b.box for b in items], np.float64).reshape(-1, 4),
                   np.array([b.keyframe for b in items], bool), lambda i: items[i].where,
                   items)

    def __len__(self) -> int:
        return len(self.video)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if self.items is not None:
            return self.items[i]
        i = range(len(self))[i]
        return ImportedBox(self.videos[self.video[i]], int(self.frame[i]),
                           self.labels[self.label[i]], tuple(float(x) for x in self.box[i]),
                           self.tracks[self.track[i]], self.where(i), bool(self.keyframe[i]))

    def __iter__(self) -> Iterator[ImportedBox]:
        return (self[i] for i in range(len(self)))


@dataclass
class Annotations:
    """What one file says.

    boxes: every box (keyframes anywhere, interpolated boxes on requested frames). covered:
    {video: frames the file answers for} (a covered frame without boxes is "no actor").
    unknown_videos: names in the file matching no video. notes: things the reader skipped or
    chose. rotated: boxes turned in the tool, taken as the axis-aligned boxes enclosing them.
    """

    source: str
    boxes: list[ImportedBox] = field(default_factory=list)
    covered: dict[str, set[int]] = field(default_factory=dict)
    rotated: int = 0
    unknown_videos: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: {index in `notes`: its kind}, for notes a reader repeats (one per task, say).
    note_kinds: dict[int, str] = field(default_factory=dict)

    def cover(self, video: str, frames) -> None:
        self.covered.setdefault(video, set()).update(int(f) for f in frames)

    def note(self, text: str, kind: str | None = None) -> None:
        """Add a note; the summary counts the notes of one `kind` on one line."""
        if kind is not None:
            self.note_kinds[len(self.notes)] = kind
        self.notes.append(text)

