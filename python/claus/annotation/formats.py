"""The import formats: each format's name, what it reads and its reader (`FORMATS`, `READERS`),
and `read_annotations`, which reads one file in a named format.

The registry sits above the readers (`ava`, `cvat`, `labelstudio`) and below the importer
(`claus.annotation.importer`), so neither has to import the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .ava import read_ava_csv
from .cvat import read_cvat_images, read_cvat_video
from .labelstudio import read_labelstudio
from .pending import PendingRound
from .types import Annotations

__all__ = ["FORMATS", "READERS", "Reader", "read_annotations"]

Reader = Callable[..., Annotations]


#: The reader of each format.
READERS: dict[str, Reader] = {"cvat-xml": read_cvat_video, "cvat-images": read_cvat_images,
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
    reader = READERS[fmt]
    if annotator is not None and fmt != "labelstudio":
        raise ValueError(f"--annotator applies to Label Studio files only, not {fmt}")
    if fmt in ("cvat-xml", "cvat-images"):
        return reader(path, pending, video=video)
    if video is not None:
        raise ValueError(f"--video applies to CVAT files only, not {fmt}")
    if fmt == "labelstudio":
        return reader(path, pending, annotator=annotator)
    return reader(path, pending)
