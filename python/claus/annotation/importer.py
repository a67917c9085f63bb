"""People's boxes → the waiting round's `next_labels.json`: the rules every format shares.

Readers (`cvat`, `labelstudio`, `ava`) turn a tool's file into `Annotations`: boxes in
original-frame pixels with their class name and the tool's track id, plus the frames the file
answers for (`covered`: a covered frame without boxes means "no actor"). Tracks of video tools
give a box on every requested frame the tool draws them on: their keyframes, and the boxes
the tool interpolates between keyframes (`claus.annotation.tracks`: each tool's own rule).
`apply_annotations` then decides, the same way for every format:

* requested frame, covered  → labelled with its boxes, or "no actor" when it has none;
* requested frame, not covered → missing: an error listing them (`allow_missing` leaves them
  unlabelled instead);
* boxes on a frame that was not requested → extra: reported and ignored (`accept_extra` labels
  such frames too, unless an earlier round labelled them); only drawn boxes (keyframes) count,
  a track's interpolated boxes are taken on the requested frames only;
* unknown videos, unknown class names, frames out of range → an error listing them all;
* coordinates outside the frame → clipped and counted; a box left with no area is dropped
  and counted;
* boxes with one track id (and class) in a video are one actor: one `tube` of the label state,
  numbered from `HUMAN_TUBE_BASE` up, so pseudo-labels interpolate between them; boxes without
  a track id are single-frame actors.

`import_files` checks everything before writing; then `import.json` (the report) and
`next_labels.json` are written atomically. The new labels are always the round's `labels.json`
plus the import, so repeating an import gives the same file and a corrected file replaces the
previous import.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import LabelBox, LabelState
from ..data.dataset import clip_boxes
from ..io import atomic_write_json
from .pending import PendingRound

__all__ = ["FORMATS", "HUMAN_TUBE_BASE", "AnnotationFileError", "Annotations", "ImportReport",
           "ImportedBox", "apply_annotations", "import_files", "read_annotations"]

#: Tube ids of imported actors start here, clear of dataset tube indices (which datasets with
#: pixel masks use to find a ground-truth mask).
HUMAN_TUBE_BASE = 1000
#: Examples listed per problem in error messages.
_SHOW = 10


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

    def cover(self, video: str, frames) -> None:
        self.covered.setdefault(video, set()).update(int(f) for f in frames)


@dataclass
class ImportReport:
    """What an import did (also written to the round folder as `import.json`)."""

    round: int
    format: str
    files: list[str]
    labelled_frames: int = 0
    boxes: int = 0
    no_actor_frames: int = 0
    missing: dict[str, list[int]] = field(default_factory=dict)
    extra: dict[str, list[int]] = field(default_factory=dict)
    extra_accepted: int = 0
    extra_already_labelled: int = 0
    clipped: int = 0
    dropped_outside: int = 0
    interpolated: int = 0
    rotated: int = 0
    class_mismatch: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    replaced: bool = False
    written: bool = False

    def to_json(self) -> dict:
        from dataclasses import asdict

        return asdict(self)

    def summary(self) -> str:
        """Human-readable lines for the CLI."""
        n_missing = sum(map(len, self.missing.values()))
        n_extra = sum(map(len, self.extra.values()))
        lines = [f"round {self.round}: {self.labelled_frames} frames labelled, {self.boxes} "
                 f"boxes, {self.no_actor_frames} frames with no actor"]
        if n_missing:
            lines.append(f"missing (left unlabelled): {n_missing} requested frames "
                         + _examples(self.missing))
        if n_extra:
            what = (f"{self.extra_accepted} labelled, {self.extra_already_labelled} already "
                    "labelled before (ignored)" if self.extra_accepted
                    or self.extra_already_labelled else "ignored; --accept-extra labels them")
            lines.append(f"boxes on frames that were not requested: {n_extra} frames ({what}) "
                         + _examples(self.extra))
        if self.clipped or self.dropped_outside:
            lines.append(f"outside the frame: {self.clipped} boxes clipped, "
                         f"{self.dropped_outside} dropped (nothing left inside)")
        if self.interpolated:
            lines.append(f"{self.interpolated} boxes on requested frames are the tool's "
                         "interpolation between keyframes (no keyframe on those frames)")
        if self.rotated:
            lines.append(f"{self.rotated} rotated boxes taken as the axis-aligned boxes "
                         "enclosing them")
        if self.class_mismatch:
            lines.append("note: classes differ from the video's class: "
                         + "; ".join(f"{v}: {', '.join(c)}" for v, c in
                                     list(self.class_mismatch.items())[:_SHOW]))
        lines += [f"note: {n}" for n in self.notes]
        if self.replaced:
            lines.append("replaced the previous import of this round")
        return "\n".join(lines)


def _examples(d: dict[str, list[int]]) -> str:
    items = [f"{v} {fr}" for v, fr in list(d.items())[:_SHOW]]
    more = f" (+{len(d) - _SHOW} videos)" if len(d) > _SHOW else ""
    return "(" + "; ".join(items) + more + ")"


def _listing(items: Sequence[str]) -> str:
    items = list(dict.fromkeys(items))
    more = f" and {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return ", ".join(repr(x) for x in items[:_SHOW]) + more


def apply_annotations(
    pending: PendingRound,
    anns: Sequence[Annotations],
    *,
    accept_extra: bool = False,
    allow_missing: bool = False,
    fmt: str = "",
) -> tuple[LabelState, ImportReport]:
    """The waiting round's new label state: its `labels.json` plus the annotations.

    Args:
        pending: the waiting round.
        anns: what each file says (several files are merged: e.g. one CVAT video task each).
        accept_extra: also label frames that were not requested (if not labelled before).
        allow_missing: leave requested frames no file covers unlabelled instead of failing.
        fmt: the format name, for the report.
    Returns:
        (new label state, report).
    Raises:
        AnnotationFileError: unknown videos or classes, frames out of range, a track with two
            boxes on one frame, bad boxes, or (without allow_missing) missing frames.
    """
    ds, base = pending.dataset, pending.labels
    files = [a.source for a in anns]
    src = ", ".join(files)
    rep = ImportReport(pending.round, fmt, files)
    rep.notes = [n for a in anns for n in a.notes]
    rep.rotated = sum(a.rotated for a in anns)
    # Videos and classes the files name.
    unknown = [v for a in anns for v in a.unknown_videos]
    unknown += [b.video for a in anns for b in a.boxes if b.video not in base.num_frames]
    unknown += [v for a in anns for v in a.covered if v not in base.num_frames]
    if unknown:
        raise AnnotationFileError(f"{src}: unknown videos (not in the training pool of "
                                  f"{ds.name}): {_listing(unknown)}")
    classes = {c: i for i, c in enumerate(ds.classes)}
    bad = [b.label for a in anns for b in a.boxes if b.label not in classes]
    if bad:
        raise AnnotationFileError(f"{src}: unknown labels {_listing(bad)}; the classes of "
                                  f"{ds.name} are {', '.join(ds.classes)}")
    out_of_range = [f"{b.where} (video {b.video!r} has {base.num_frames[b.video]} frames)"
                    for a in anns for b in a.boxes
                    if not 0 <= b.frame < base.num_frames[b.video]]
    out_of_range += [f"{a.source}: video {v!r} frame {f}" for a in anns
                     for v, fr in a.covered.items() for f in fr
                     if not 0 <= f < base.num_frames[v]]
    if out_of_range:
        raise AnnotationFileError(f"{src}: frames out of range (wrong frame count?): "
                                  + "; ".join(out_of_range[:_SHOW]))
    flipped = [b.where for a in anns for b in a.boxes
               if not all(np.isfinite(b.box)) or b.box[2] < b.box[0] or b.box[3] < b.box[1]]
    if flipped:
        raise AnnotationFileError(f"{src}: bad boxes (want finite x2 >= x1, y2 >= y1): "
                                  + "; ".join(flipped[:_SHOW]))
    # Which frames get which boxes.
    requested = pending.requested()
    covered: dict[str, set[int]] = {}
    for a in anns:
        for v, fr in a.covered.items():
            covered.setdefault(v, set()).update(fr)
    by_frame: dict[tuple[str, int], list[ImportedBox]] = {}
    for a in anns:
        for b in a.boxes:
            by_frame.setdefault((b.video, b.frame), []).append(b)
            covered.setdefault(b.video, set()).add(b.frame)  # a box answers for its frame
    missing = {v: sorted(fr - covered.get(v, set())) for v, fr in requested.items()}
    rep.missing = {v: fr for v, fr in missing.items() if fr}
    if rep.missing and not allow_missing:
        n = sum(map(len, rep.missing.values()))
        raise AnnotationFileError(f"{src}: {n} requested frames are not in the file(s) "
                                  f"{_examples(rep.missing)}; label them, or pass "
                                  "--allow-missing to leave them unlabelled this round")
    extra = sorted({(v, f) for (v, f), bs in by_frame.items()
                    if f not in requested.get(v, set()) and any(b.keyframe for b in bs)})
    for v, f in extra:
        rep.extra.setdefault(v, []).append(f)
    take: dict[str, list[int]] = {v: sorted(fr & covered.get(v, set()))
                                  for v, fr in requested.items()}
    if accept_extra:
        for v, f in extra:
            if base.is_labelled(v, f):
                rep.extra_already_labelled += 1
            else:
                take.setdefault(v, []).append(f)
                rep.extra_accepted += 1
    # Clip, link tracks to tubes, label.
    new = base.copy()
    for v in base.num_frames:  # label-state order: deterministic whatever the files' order
        frames = sorted(take.get(v, ()))
        if not frames:
            continue
        video = ds[v]
        tube_of = _tube_ids(base, v, [b for f in frames for b in by_frame.get((v, f), [])])
        for f in frames:
            got = by_frame.get((v, f), [])
            boxes = []
            if got:
                raw = np.array([b.box for b in got], np.float64)
                clipped, _ = clip_boxes(raw, video.width, video.height)
                for b, r, c in zip(got, raw, clipped, strict=True):
                    if c[2] <= c[0] or c[3] <= c[1]:
                        rep.dropped_outside += 1
                        continue
                    rep.clipped += bool(np.any(c != r.astype(np.float32)))
                    rep.interpolated += not b.keyframe
                    boxes.append(LabelBox(tube_of[id(b)], classes[b.label],
                                          tuple(float(x) for x in c)))
            new.label(v, f, boxes, pending.label_round)
            rep.labelled_frames += 1
            rep.boxes += len(boxes)
            rep.no_actor_frames += not boxes
            if video.label >= 0:
                other = sorted({b.label for b in got} - {ds.classes[video.label]})
                if other:
                    rep.class_mismatch[v] = sorted(set(rep.class_mismatch.get(v, [])) | set(other))
    return new, rep


def _tube_ids(base: LabelState, video: str, boxes: list[ImportedBox]) -> dict[int, int]:
    """{id(box): tube}: one tube per (track, class) of the video, new ids after the ones in use.

    Raises AnnotationFileError when one track has two boxes on one frame."""
    used = [b.tube for bs in base.entries(video).values() for b in bs]
    nxt = max(max(used, default=-1) + 1, HUMAN_TUBE_BASE)
    keys: dict[tuple, int] = {}
    seen: dict[tuple, str] = {}
    out = {}
    for i, b in enumerate(sorted(boxes, key=lambda b: b.frame)):
        key = ("track", b.track, b.label) if b.track is not None else ("box", i)
        if (key, b.frame) in seen:
            raise AnnotationFileError(
                f"{b.where}: track {b.track!r} ({b.label}) has two boxes on frame {b.frame} of "
                f"{video!r} (also {seen[(key, b.frame)]}); give each actor its own track")
        seen[(key, b.frame)] = b.where
        if key not in keys:
            keys[key] = nxt
            nxt += 1
        out[id(b)] = keys[key]
    return out


Reader = Callable[..., Annotations]


def _readers() -> dict[str, Reader]:
    from .ava import read_ava_csv
    from .cvat import read_cvat_images, read_cvat_video
    from .labelstudio import read_labelstudio

    return {"cvat-xml": read_cvat_video, "cvat-images": read_cvat_images,
            "labelstudio": read_labelstudio, "ava-csv": read_ava_csv}


#: Import formats and what they read.
FORMATS = {
    "cvat-xml": "CVAT for video 1.1 XML (tracks drawn as CVAT draws them: linear between "
                "keyframes, none after outside; frame = start_frame + i·step)",
    "cvat-images": "CVAT for images 1.1 XML (frames from the image names <video>/<frame>.jpg)",
    "labelstudio": "Label Studio JSON export with videorectangle tracks (drawn as Label Studio "
                   "draws them: linear between keyframes, on after an enabled one; 1-based "
                   "frames, %)",
    "ava-csv": "CSV rows: video, frame (0-based), x1, y1, x2, y2 (normalized), label, track",
}


def read_annotations(pending: PendingRound, path: str | os.PathLike, fmt: str,
                     video: str | None = None, annotator: str | None = None) -> Annotations:
    """Read one file in `fmt` (a key of `FORMATS`); `video` names the video of a single-video
    file (CVAT) when its task name does not; `annotator` picks whose annotations of a Label
    Studio task count (`completed_by` id or email; default: the latest submitted)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choices: "
                         + "; ".join(f"{k}: {v}" for k, v in FORMATS.items()))
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist or is not a file")
    reader = _readers()[fmt]
    if annotator is not None and fmt != "labelstudio":
        raise ValueError(f"--annotator applies to Label Studio files only, not {fmt}")
    if fmt in ("cvat-xml", "cvat-images"):
        return reader(path, pending, video=video)
    if video is not None:
        raise ValueError(f"--video applies to CVAT files only, not {fmt}")
    if fmt == "labelstudio":
        return reader(path, pending, annotator=annotator)
    return reader(path, pending)


def import_files(
    pending: PendingRound,
    files: Sequence[str | os.PathLike],
    fmt: str,
    *,
    video: str | None = None,
    annotator: str | None = None,
    accept_extra: bool = False,
    allow_missing: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    """Import annotation files into the waiting round (see the module docstring; `video` and
    `annotator` as in `read_annotations`).

    Every file is read and checked first; only then are `import.json` and `next_labels.json`
    written (atomically, in that order: the labels file is what marks the round as labelled).
    With `dry_run` nothing is written.
    """
    if not files:
        raise ValueError("no annotation file given")
    anns = [read_annotations(pending, f, fmt, video, annotator) for f in files]
    new, rep = apply_annotations(pending, anns, accept_extra=accept_extra,
                                 allow_missing=allow_missing, fmt=fmt)
    rep.replaced = pending.imported
    if dry_run:
        return rep
    rep.written = True
    atomic_write_json(pending.folder / "import.json", {
        "format": "claus.import", "version": 1,
        "files": [{"path": str(f), "sha256": _sha256(Path(f))} for f in files],
        "report": rep.to_json()})
    new.save(pending.folder / "next_labels.json")
    return rep


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
