"""AVA-style CSV annotations of the requested frames.

One row per box: `video, frame, x1, y1, x2, y2, label, track` — frame 0-based (as in the
exported requests), coordinates normalized to [0, 1] of the frame (the AVA layout with frame
numbers instead of timestamps), label a class name or a 0-based class index, track any id
(boxes of one track and class are one actor; empty: not linked). A header row is skipped. A
video that appears in the file answers for all its requested frames: those without rows are
"no actor"; requested videos absent from the file are missing.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .importer import AnnotationFileError, Annotations, ImportedBox
from .pending import PendingRound

__all__ = ["read_ava_csv"]


def read_ava_csv(path: str | Path, pending: PendingRound) -> Annotations:
    """Boxes of an AVA-style CSV file (see the module docstring)."""
    path = Path(path)
    ds = pending.dataset
    known = pending.labels.num_frames
    requested = pending.requested()
    out = Annotations(str(path))
    from claus.data.ava_csv import ava_rows

    seen = []
    try:
        rows = list(ava_rows(path, AnnotationFileError, "frame", columns=(7, 8)))
    except (UnicodeDecodeError, csv.Error) as e:
        raise AnnotationFileError(f"{path}: not a CSV text file ({e})") from None
    for ln, row, frame_f, coords in rows:
        where = f"{path}:{ln}"
        if frame_f != int(frame_f):
            raise AnnotationFileError(f"{where}: frame {row[1]!r} is not a whole frame number")
        vid = row[0].strip()
        if vid not in known:
            out.unknown_videos.append(vid)
            continue
        if any(not -1.0 <= c <= 2.0 for c in coords):
            raise AnnotationFileError(f"{where}: coordinates {coords} are not normalized to "
                                      "[0, 1] (pixels?)")
        label = row[6].strip()
        if label not in ds.classes and label.isdigit() and int(label) < ds.num_classes:
            label = ds.classes[int(label)]
        track = row[7].strip() if len(row) == 8 and row[7].strip() else None
        v = ds[vid]
        out.boxes.append(ImportedBox(vid, int(frame_f), label,
                                     (coords[0] * v.width, coords[1] * v.height,
                                      coords[2] * v.width, coords[3] * v.height),
                                     track, f"{where} ({vid} frame {int(frame_f)})"))
        seen.append(vid)
    for vid in dict.fromkeys(seen):
        out.cover(vid, requested.get(vid, ()))
    return out
