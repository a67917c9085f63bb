"""Labelling the selections: people in the loop (the simulated oracle is `claus.rounds`).

An interactive run (`--oracle human`) stops after each round's selection. Then:

    pending = open_pending("runs/h/claus/seed0")           # the round that waits
    export_cvat(pending, "to-cvat")                         # or export_jsonl / export_labelstudio
    ... people label the frames in CVAT / Label Studio ...
    report = import_files(pending, ["annotations.xml"], "cvat-images")
    print(report.summary())                                 # then claus.train --resume RUN

Exports: `jsonl` (requests, one line per video), `cvat` (an image task folder; with `encode`
also the videos for CVAT video tasks), `labelstudio` (video tasks with the model's tubes as
pre-annotation tracks; with `encode` the videos, H.264 MP4, `claus.annotation.encode`).
Imports (`FORMATS`): CVAT for video / for images 1.1 XML, Label Studio JSON, AVA-style CSV;
tracks give the boxes each tool draws between keyframes (`claus.annotation.tracks`); the
rules for missing, extra and out-of-frame boxes are in `claus.annotation.importer`.
"""

from .ava import read_ava_csv
from .cvat import export_cvat, read_cvat_images, read_cvat_video
from .encode import EncodedVideo, encode_videos, task_fps
from .importer import (
    FORMATS,
    HUMAN_TUBE_BASE,
    AnnotationFileError,
    Annotations,
    ImportedBox,
    ImportReport,
    apply_annotations,
    import_files,
    read_annotations,
)
from .jsonl import export_jsonl, request_lines
from .labelstudio import export_labelstudio, read_labelstudio
from .pending import PendingError, PendingRound, Request, open_pending
from .predictions import PredictedTrack, predict_requests

#: Export formats of `claus.select`.
EXPORTS = {
    "jsonl": "requests.jsonl: one line per video (source, fps, frames, scores, strategy)",
    "cvat": "a CVAT image-task folder: images/<video>/<frame:06d>.jpg, labels.json, README.md "
            "(with --encode also the videos, for CVAT video tasks)",
    "labelstudio": "Label Studio tasks.json (video URL, frames, the model's tubes as "
                   "prediction tracks) + config.xml + README.md (with --encode the videos)",
}

__all__ = [
    "EXPORTS",
    "FORMATS",
    "HUMAN_TUBE_BASE",
    "AnnotationFileError",
    "Annotations",
    "EncodedVideo",
    "ImportReport",
    "ImportedBox",
    "PendingError",
    "PendingRound",
    "PredictedTrack",
    "Request",
    "apply_annotations",
    "encode_videos",
    "export_cvat",
    "export_jsonl",
    "export_labelstudio",
    "import_files",
    "open_pending",
    "predict_requests",
    "read_annotations",
    "read_ava_csv",
    "read_cvat_images",
    "read_cvat_video",
    "read_labelstudio",
    "request_lines",
    "task_fps",
]
