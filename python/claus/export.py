"""`python -m claus.export`: export the requests of an interactive run's waiting round.

    python -m claus.train --strategy claus --oracle human --out runs/h   # stops after selecting
    python -m claus.export --run runs/h/claus/seed0 --format cvat         # → an image task folder
    python -m claus.export --run runs/h/claus/seed0 --format labelstudio --encode
        # → tasks.json, config.xml, README.md, and the videos in runs/h/claus/seed0/videos/

Formats: jsonl (requests.jsonl, one line per video), cvat (images/<video>/<frame:06d>.jpg,
labels.json, README.md), labelstudio (tasks.json with the model's tubes as pre-annotation
tracks, config.xml, README.md). The default folder is RUN/round_<r>.partial/export/<format>/.

--encode writes the requested videos (only this round's; kept and reused when already there)
as H.264 MP4 at the task frame rate, for Label Studio (tasks point at them through Label
Studio's local-files serving unless --video-url says otherwise; the README gives the steps)
and for CVAT video tasks. Then label, import with `python -m claus.annotate`, and continue
with `python -m claus.train --resume RUN`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .annotation import EXPORTS
from .cli import Parser, add_data_override, open_run_pending, run_command


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m claus.export", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="the run folder (started with --oracle human)")
    p.add_argument("--format", required=True, choices=list(EXPORTS),
                   help="; ".join(f"{k}: {v}" for k, v in EXPORTS.items()))
    p.add_argument("--out", default=None,
                   help="output folder (default RUN/round_<r>.partial/export/<format>)")
    p.add_argument("--no-predictions", action="store_true",
                   help="labelstudio: no model boxes as pre-annotations (faster)")
    p.add_argument("--encode", nargs="?", const="", default=None, metavar="DIR",
                   help="labelstudio, cvat: write the requested videos as H.264 MP4 into DIR "
                   "(default RUN/videos), reusing those already there")
    p.add_argument("--fps", type=float, default=None,
                   help="labelstudio, cvat --encode: frame rate of the tasks and videos "
                   "(default: the video file's, else the dataset's, else 24)")
    p.add_argument("--document-root", default=None, metavar="DIR",
                   help="labelstudio --encode: Label Studio's LOCAL_FILES_DOCUMENT_ROOT, for the "
                   "tasks' local-files URLs (default: that variable when set, else the parent "
                   "of the videos folder)")
    p.add_argument("--video-url", default=None, metavar="TEMPLATE",
                   help="labelstudio: URL of a task's video, with {video}, {stem}, {path}, "
                   "{file} (the encoded file under DIR) (default with --encode: "
                   "/data/local-files/?d=<DIR under the document root>/{file}; else the "
                   "video file, else "
                   "<video>.mp4)")
    p.add_argument("--fg-threshold", type=float, default=None,
                   help="labelstudio predictions: foreground threshold (default: the run's)")
    p.add_argument("--device", default=None, help="labelstudio predictions: cpu, cuda, ...")
    add_data_override(p)
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_command(lambda: _export(a))


def _export(a: argparse.Namespace) -> int:
    from .annotation import export_cvat, export_jsonl, export_labelstudio
    from .annotation.encode import VIDEOS

    if a.format == "jsonl" and (a.encode is not None or a.fps is not None):
        raise ValueError("--encode/--fps: apply to --format labelstudio and cvat; drop them "
                         "for jsonl")
    if a.fps is not None and not a.fps > 0:
        raise ValueError(f"--fps: must be positive, got {a.fps}; e.g. --fps 25")
    pending = open_run_pending(a)
    out = Path(a.out) if a.out else pending.folder / "export" / a.format
    encode = None
    if a.encode is not None:
        encode = Path(a.encode) if a.encode else pending.run / VIDEOS
    if a.format == "jsonl":
        written = export_jsonl(pending, out)
    elif a.format == "cvat":
        written = export_cvat(pending, out, encode=encode, fps=a.fps)
    else:
        # Label Studio reads LABEL_STUDIO_<name> first, then <name>.
        root = a.document_root or next(
            (os.environ[k] for k in ("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT",
                                     "LOCAL_FILES_DOCUMENT_ROOT") if os.environ.get(k)), None)
        written = export_labelstudio(pending, out, predictions=not a.no_predictions,
                                     video_url=a.video_url, fg_threshold=a.fg_threshold,
                                     device=a.device, encode=encode, fps=a.fps,
                                     document_root=root)
    reqs = pending.requests
    print(f"round {pending.round} of {pending.run}: {sum(len(r.frames) for r in reqs)} frames "
          f"of {len(reqs)} videos to label → {written}")
    if encode is not None:
        print(f"videos: {encode} (see {out / 'README.md'} for serving them)")
    elif a.format == "labelstudio" and a.video_url is None:
        print("note: Label Studio plays videos from a server: pass --encode to write them (and "
              "have Label Studio serve them), or --video-url for videos you serve; see "
              f"{out / 'README.md'}")
    if pending.imported:
        print("note: labels were imported already; a new import replaces them")
    imp = {"jsonl": "ava-csv", "cvat": "cvat-images", "labelstudio": "labelstudio"}[a.format]
    if a.format == "cvat" and encode is not None:
        imp = "cvat-images (or cvat-xml for video tasks)"
    print(f"next: label them, then `python -m claus.annotate --run {pending.run} --file FILE "
          f"--format {imp}` and `python -m claus.train --resume {pending.run}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
