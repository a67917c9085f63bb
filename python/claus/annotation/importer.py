"""People's boxes → the waiting round's `next_labels.json`: the rules every format shares.

Readers (`cvat`, `labelstudio`, `ava`; by format name `claus.annotation.formats`) turn a
tool's file into `Annotations` (`claus.annotation.types`): boxes in original-frame pixels
with their class name and the tool's track id, plus the frames the file answers for
(`covered`: a covered frame without boxes means "no actor"). Tracks of video tools
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
  a track id are single-frame actors, and identical ones (same video, frame, class and
  coordinates) are one actor drawn twice: merged, with a note counting them.

`import_files` checks everything before writing; then `import.json` (the report) and
`next_labels.json` are written atomically. The new labels are always the round's `labels.json`
plus the import, so repeating an import gives the same file and a corrected file replaces the
previous import.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import LabelBox, LabelState
from ..data.dataset import clip_boxes
from ..io import atomic_write_json
from .formats import FORMATS, read_annotations
from .pending import PendingRound
from .types import AnnotationFileError, Annotations, BoxTable, ImportedBox

__all__ = ["FORMATS", "HUMAN_TUBE_BASE", "NOTES_KEPT", "AnnotationFileError", "Annotations",
           "BoxTable", "ImportReport", "ImportedBox", "apply_annotations", "import_files",
           "read_annotations"]

#: Tube ids of imported actors start here, clear of dataset tube indices (which datasets with
#: pixel masks use to find a ground-truth mask).
HUMAN_TUBE_BASE = 1000
#: Examples listed per problem in error messages.
_SHOW = 10
#: Notes of one kind quoted in the summary.
_NOTE_EXAMPLES = 3
#: Notes kept in import.json (the count of the others is there too).
NOTES_KEPT = 1000


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
    #: The kind of each note ("" for a note of its own), as `Annotations.note` gave it.
    note_kinds: list[str] = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        """The report as `import.json` holds it: the first `NOTES_KEPT` notes, how many more
        there were (`notes_truncated`) and the count of each kind (`note_counts`)."""
        from dataclasses import asdict

        d = asdict(self)
        del d["note_kinds"]
        d["notes"] = d["notes"][:NOTES_KEPT]
        d["notes_truncated"] = max(len(self.notes) - NOTES_KEPT, 0)
        d["note_counts"] = {k: len(ns) for k, ns in self._note_groups().items()}
        return d

    def _note_groups(self) -> dict[str, list[str]]:
        """{kind: its notes}, kinds in the order of their first note; a note without a kind is
        a kind of its own (its text)."""
        groups: dict[str, list[str]] = {}
        for i, n in enumerate(self.notes):
            kind = self.note_kinds[i] if i < len(self.note_kinds) else ""
            groups.setdefault(kind or n, []).append(n)
        return groups

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
        for kind, ns in self._note_groups().items():
            # Repeated notes are one line: how many, a few of them; import.json lists them.
            if len(ns) == 1 or kind == ns[0]:
                lines.append(f"note: {ns[0]}" + (f" ({len(ns)} times)" if len(ns) > 1 else ""))
            else:
                lines.append(f"note: {len(ns)} {kind}, e.g. " + "; ".join(ns[:_NOTE_EXAMPLES])
                             + f" (import.json lists {min(len(self.notes), NOTES_KEPT)} of the "
                             f"{len(self.notes)} notes)")
        if self.replaced:
            lines.append("replaced the previous import of this round")
        return "\n".join(lines)


def _examples(d: dict[str, list[int]]) -> str:
    items = [f"{v} {_frames(fr)}" for v, fr in list(d.items())[:_SHOW]]
    more = f" (+{len(d) - _SHOW} videos)" if len(d) > _SHOW else ""
    return "(" + "; ".join(items) + more + ")"


def _frames(frames: list[int]) -> str:
    """'[3, 5, 8]', the first `_SHOW` frames of a longer list and how many more."""
    if len(frames) <= _SHOW:
        return str(frames)
    return str(frames[:_SHOW])[:-1] + f", ... +{len(frames) - _SHOW}]"


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

    Boxes are handled as columns (`BoxTable`): checked and indexed by frame with array
    operations, made into objects only on the frames that get labelled.

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
    base = pending.labels
    files = [a.source for a in anns]
    src = ", ".join(files)
    rep = ImportReport(pending.round, fmt, files)
    rep.notes = [n for a in anns for n in a.notes]
    rep.note_kinds = [a.note_kinds.get(i, "") for a in anns for i in range(len(a.notes))]
    rep.rotated = sum(a.rotated for a in anns)
    tables = [BoxTable.of(a.boxes) for a in anns]
    _check_names(pending, anns, tables, src)
    _check_boxes(base, anns, tables, src)
    index = _FrameIndex(tables, base, pending.dataset.classes)
    if len(index.dropped):
        rep.notes.append(f"{src}: {len(index.dropped)} identical duplicate boxes without a "
                         "track id merged (same video, frame, class and coordinates)")
        rep.note_kinds.append("")
    # Which frames get which boxes: a file answers for the frames it covers and for every
    # frame it has a box on.
    requested = pending.requested()
    covered: dict[str, set[int]] = {v: set() for v in requested}
    for a in anns:
        for v, fr in a.covered.items():
            covered.setdefault(v, set()).update(fr)
    for v, fr in requested.items():
        covered[v] |= index.present(v, fr)
    missing = {v: sorted(fr - covered[v]) for v, fr in requested.items()}
    rep.missing = {v: fr for v, fr in missing.items() if fr}
    if rep.missing and not allow_missing:
        n = sum(map(len, rep.missing.values()))
        raise AnnotationFileError(f"{src}: {n} requested frames are not in the file(s) "
                                  f"{_examples(rep.missing)}; label them, or pass "
                                  "--allow-missing to leave them unlabelled this round")
    rep.extra = index.extra(requested)
    take: dict[str, list[int]] = {v: sorted(fr & covered[v]) for v, fr in requested.items()}
    if accept_extra:
        for v, frames in rep.extra.items():
            for f in frames:
                if base.is_labelled(v, f):
                    rep.extra_already_labelled += 1
                else:
                    take.setdefault(v, []).append(f)
                    rep.extra_accepted += 1
    new = base.copy()
    for v in base.num_frames:  # label-state order: deterministic whatever the files' order
        frames = sorted(take.get(v, ()))
        if frames:
            _label_video(pending, new, rep, v, {f: index.boxes(v, f) for f in frames})
    return new, rep


def _first_seen(names: list[str], column: np.ndarray, bad) -> list[str]:
    """The names `bad` picks among those `column` (indices into `names`) uses, in the order
    the rows first use them."""
    ids = [i for i, x in enumerate(names) if bad(x)]
    if not ids:
        return []
    used = column[np.isin(column, ids)]
    u, first = np.unique(used, return_index=True)
    return [names[u[j]] for j in np.argsort(first, kind="stable")]


def _check_names(pending: PendingRound, anns: Sequence[Annotations],
                 tables: list[BoxTable], src: str) -> None:
    """Unknown videos, then unknown class names: an error listing them."""
    ds, known = pending.dataset, pending.labels.num_frames
    unknown = [v for a in anns for v in a.unknown_videos]
    for t in tables:
        unknown += _first_seen(t.videos, t.video, lambda v: v not in known)
    unknown += [v for a in anns for v in a.covered if v not in known]
    if unknown:
        raise AnnotationFileError(f"{src}: unknown videos (not in the training pool of "
                                  f"{ds.name}): {_listing(unknown)}")
    classes = set(ds.classes)
    bad = [x for t in tables for x in _first_seen(t.labels, t.label, lambda c: c not in classes)]
    if bad:
        raise AnnotationFileError(f"{src}: unknown labels {_listing(bad)}; the classes of "
                                  f"{ds.name} are {', '.join(ds.classes)}")


def _check_boxes(base: LabelState, anns: Sequence[Annotations], tables: list[BoxTable],
                 src: str) -> None:
    """Frames out of range, then boxes that are not finite or flipped: an error naming the
    first of them."""
    out_of_range: list[str] = []
    for t in tables:
        counts = np.array([base.num_frames.get(v, 0) for v in t.videos], np.int64)
        n = counts[t.video]
        for i in np.flatnonzero((t.frame < 0) | (t.frame >= n))[:_SHOW - len(out_of_range)]:
            out_of_range.append(f"{t.where(int(i))} (video {t.videos[t.video[i]]!r} has "
                                f"{int(n[i])} frames)")
    out_of_range += [f"{a.source}: video {v!r} frame {f}" for a in anns
                     for v, fr in a.covered.items() for f in fr
                     if not 0 <= f < base.num_frames[v]][:_SHOW]
    if out_of_range:
        raise AnnotationFileError(f"{src}: frames out of range (wrong frame count?): "
                                  + "; ".join(out_of_range[:_SHOW]))
    flipped: list[str] = []
    for t in tables:
        b = t.box
        bad = ~np.isfinite(b).all(axis=1) | (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
        flipped += [t.where(int(i)) for i in np.flatnonzero(bad)[:_SHOW - len(flipped)]]
    if flipped:
        raise AnnotationFileError(f"{src}: bad boxes (want finite x2 >= x1, y2 >= y1): "
                                  + "; ".join(flipped[:_SHOW]))


class _FrameIndex:
    """The boxes of every table by (video, frame): a frame's boxes in the files' order, less
    the identical duplicates of boxes without a track id (`dropped`).

    Each box has the key `pool position × span + frame` (frames are checked to lie in their
    video); `order` sorts the boxes by key (stable), `keys[g]` is the g-th distinct key and
    `order[starts[g]:starts[g + 1]]` its boxes, numbered across the tables (`offsets`).
    """

    def __init__(self, tables: list[BoxTable], base: LabelState, classes: list[str]):
        self.tables = tables
        self.pool = list(base.num_frames)
        self.pos = {v: i for i, v in enumerate(self.pool)}
        self.span = max(base.num_frames.values(), default=0) + 1
        self.offsets = np.cumsum([0] + [len(t) for t in tables])
        key = np.zeros(0, np.int64)
        for t in tables:  # in place: a million boxes take 8 MB a temporary
            k = np.array([self.pos.get(v, -1) for v in t.videos], np.int64)[t.video]
            k *= self.span
            k += t.frame
            key = k if not len(key) else np.concatenate([key, k])
        self.dropped = self._duplicates({c: i for i, c in enumerate(classes)})
        order = np.argsort(key, kind="stable")
        if len(self.dropped):
            keep = np.ones(len(key), bool)
            keep[self.dropped] = False
            order = order[keep[order]]
        key = key[order]
        self.order = order.astype(np.int32) if len(order) < 2**31 else order
        del order
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(
            0, np.int64)
        self.keys, self.starts = key[starts], np.r_[starts, len(key)]
        del key
        kf = np.concatenate([t.keyframe for t in tables]) if tables else np.zeros(0, bool)
        # Frames with a drawn box (a keyframe), not only a track's interpolation.
        self.drawn = (np.logical_or.reduceat(kf[self.order], starts) if len(starts)
                      else np.zeros(0, bool))

    def _duplicates(self, classes: dict[str, int]) -> np.ndarray:
        """Box numbers (across the tables) of boxes without a track id that repeat an earlier
        one: the same video, frame, class and coordinates. They are one actor drawn twice (a
        box pasted twice, an export that lists it twice), not two actors: the first stays.
        Boxes with track ids stay apart however alike: the tool says they are two actors."""
        rows, recs = [], []
        fields = [("v", "i8"), ("f", "i8"), ("c", "i8")] + [(f"b{j}", "f8") for j in range(4)]
        for t, off in zip(self.tables, self.offsets, strict=False):
            untracked = [i for i, x in enumerate(t.tracks) if x is None]
            r = np.flatnonzero(np.isin(t.track, untracked)) if untracked else []
            if not len(r):
                continue
            rec = np.empty(len(r), fields)
            rec["v"] = np.array([self.pos.get(v, -1) for v in t.videos], np.int64)[t.video[r]]
            rec["f"], rec["c"] = t.frame[r], np.array(
                [classes.get(c, -1) for c in t.labels], np.int64)[t.label[r]]
            for j in range(4):
                rec[f"b{j}"] = t.box[r, j]
            rows.append(r + off)
            recs.append(rec)
        if not rows:
            return np.zeros(0, np.int64)
        rows, rec = np.concatenate(rows), np.concatenate(recs)
        _, first = np.unique(rec, return_index=True)  # stable: the first of equal boxes
        keep = np.zeros(len(rows), bool)
        keep[first] = True
        return rows[~keep]

    def present(self, video: str, frames) -> set[int]:
        """Those of `frames` the video has boxes on."""
        if video not in self.pos:
            return set()
        fr = np.fromiter(frames, np.int64)
        q = self.pos[video] * self.span + fr
        # `keys` is sorted: a binary search per frame (np.isin would sort `keys` per video).
        g = np.minimum(np.searchsorted(self.keys, q), max(len(self.keys) - 1, 0))
        hit = self.keys[g] == q if len(self.keys) else np.zeros(len(q), bool)
        return {int(f) for f in fr[hit]}

    def extra(self, requested: dict[str, set[int]]) -> dict[str, list[int]]:
        """{video: frames}: frames with a drawn box that were not requested, videos by name,
        frames ascending."""
        req = np.array(sorted(self.pos[v] * self.span + f for v, fr in requested.items()
                              for f in fr if v in self.pos), np.int64)
        keys = self.keys[self.drawn & ~np.isin(self.keys, req)]
        video, frame = np.divmod(keys, self.span)
        rank = np.empty(len(self.pool), np.int64)
        rank[np.argsort(np.array(self.pool, dtype=object))] = np.arange(len(self.pool))
        o = np.lexsort((frame, rank[video]))
        video, frame = video[o], frame[o]
        cuts = np.flatnonzero(np.diff(video)) + 1
        return {self.pool[int(v[0])]: f.tolist() for v, f in
                zip(np.split(video, cuts), np.split(frame, cuts), strict=True) if len(v)}

    def boxes(self, video: str, frame: int) -> list[ImportedBox]:
        """The boxes on one frame, in the files' order."""
        k = self.pos[video] * self.span + frame
        g = int(np.searchsorted(self.keys, k))
        if g == len(self.keys) or self.keys[g] != k:
            return []
        out = []
        for row in self.order[self.starts[g]:self.starts[g + 1]]:
            t = int(np.searchsorted(self.offsets, row, side="right")) - 1
            out.append(self.tables[t][int(row - self.offsets[t])])
        return out


def _label_video(pending: PendingRound, new: LabelState, rep: ImportReport, v: str,
                 got: dict[int, list[ImportedBox]]) -> None:
    """Label the frames of `got` (ascending) with their boxes: clipped, linked into tubes."""
    ds = pending.dataset
    classes = {c: i for i, c in enumerate(ds.classes)}
    video = ds[v]
    tube_of = _tube_ids(pending.labels, v, [b for bs in got.values() for b in bs])
    for f, bs in got.items():
        boxes = []
        if bs:
            raw = np.array([b.box for b in bs], np.float64)
            clipped, _ = clip_boxes(raw, video.width, video.height)
            for b, r, c in zip(bs, raw, clipped, strict=True):
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
            other = sorted({b.label for b in bs} - {ds.classes[video.label]})
            if other:
                rep.class_mismatch[v] = sorted(set(rep.class_mismatch.get(v, [])) | set(other))


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
    atomic_write_json(pending.files.import_record, {
        "format": "claus.import", "version": 1,
        "files": [{"path": str(f), "sha256": _sha256(Path(f))} for f in files],
        "report": rep.to_json()})
    new.save(pending.files.next_labels)
    return rep


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
