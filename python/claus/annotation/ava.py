"""AVA-style CSV annotations of the requested frames.

One row per box: `video, frame, x1, y1, x2, y2, label, track` — frame 0-based (as in the
exported requests), coordinates normalized to [0, 1] of the frame (the AVA layout with frame
numbers instead of timestamps), label a class name or a 0-based class index, track any id
(boxes of one track and class are one actor; empty: not linked). A header row is skipped. A
video that appears in the file answers for all its requested frames: those without rows are
"no actor"; requested videos absent from the file are missing.

The file is read a row at a time into columns (`claus.data.ava_csv.read_ava_columns`) and
handed over as a `BoxTable`: a million rows take tens of megabytes, not a Python object each.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .pending import PendingRound
from .types import AnnotationFileError, Annotations, BoxTable

__all__ = ["read_ava_csv"]


def read_ava_csv(path: str | Path, pending: PendingRound) -> Annotations:
    """Boxes of an AVA-style CSV file (see the module docstring)."""
    from claus.data.ava_csv import csv_row, read_ava_columns

    path = Path(path)
    known = pending.labels.num_frames
    out = Annotations(str(path))
    try:
        cols = read_ava_columns(path, AnnotationFileError, "frame", columns=(7, 8))
    except (UnicodeDecodeError, csv.Error) as e:
        raise AnnotationFileError(f"{path}: not a CSV text file ({e})") from None
    key_known = np.array([k[0] in known for k in cols.keys], bool)
    row_known = key_known[cols.key]
    # Checked in file order, the first failure raised: a frame that is not whole (any row),
    # then coordinates far outside [0, 1] (rows of known videos).
    whole = cols.time == np.trunc(cols.time)
    normal = ((cols.box >= -1.0) & (cols.box <= 2.0)).all(axis=1)
    bad = ~whole | (row_known & ~normal)
    if bad.any():
        i = int(np.argmax(bad))
        where = f"{path}:{int(cols.line[i])}"
        if not whole[i]:
            raise AnnotationFileError(f"{where}: frame {csv_row(path, int(cols.line[i]))[1]!r} "
                                      "is not a whole frame number")
        raise AnnotationFileError(f"{where}: coordinates {cols.box[i].tolist()} are not "
                                  "normalized to [0, 1] (pixels?)")
    # Unknown videos, once each in the order the rows name them.
    out.unknown_videos = list(dict.fromkeys(k[0] for k, ok in zip(cols.keys, key_known,
                                                                    strict=True) if not ok))
    out.boxes = _table(cols, row_known, pending)
    requested = pending.requested()
    for vid in out.boxes.videos:  # in the order the rows first name them
        out.cover(vid, requested.get(vid, ()))
    return out


def _table(cols, row_known: np.ndarray, pending: PendingRound) -> BoxTable:
    """The rows of known videos as a `BoxTable` in pixels (`cols.box` is scaled in place)."""
    ds = pending.dataset
    keys = cols.keys
    videos = list(dict.fromkeys(k[0] for k in keys if k[0] in pending.labels.num_frames))
    labels = list(dict.fromkeys(_class_name(k[1], ds) for k in keys))
    tracks = list(dict.fromkeys(k[2] or None for k in keys))
    vpos, lpos, tpos = ({x: i for i, x in enumerate(xs)} for xs in (videos, labels, tracks))
    key_video = np.array([vpos.get(k[0], -1) for k in keys], np.int32)
    key_label = np.array([lpos[_class_name(k[1], ds)] for k in keys], np.int32)
    key_track = np.array([tpos[k[2] or None] for k in keys], np.int32)
    size = np.array([[ds[v].width, ds[v].height] for v in videos], np.float64).reshape(-1, 2)
    rows = None if row_known.all() else np.flatnonzero(row_known)
    key = cols.key if rows is None else cols.key[rows]
    box = cols.box if rows is None else cols.box[rows]
    video = key_video[key]
    box[:, 0::2] *= size[video, 0:1]  # x by width, y by height, as the file normalized them
    box[:, 1::2] *= size[video, 1:2]
    # Whole numbers; past int32 they are out of range either way (the check names the row).
    frame = np.clip(cols.time if rows is None else cols.time[rows], -2**31, 2**31 - 1).astype(
        np.int32)
    line = cols.line if rows is None else cols.line[rows]
    path = cols.path

    def where(i: int) -> str:
        return f"{path}:{int(line[i])} ({videos[video[i]]} frame {int(frame[i])})"

    return BoxTable(videos, labels, tracks, video, frame, key_label[key], key_track[key], box,
                    np.ones(len(key), bool), where)


def _class_name(label: str, ds) -> str:
    """A label as written, or the class a 0-based index names."""
    if label not in ds.classes and label.isdigit() and int(label) < ds.num_classes:
        return ds.classes[int(label)]
    return label
