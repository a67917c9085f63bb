"""`python -m claus.select`: export the requests of an interactive run's waiting round.

    python -m claus.train --strategy claus --oracle human --out runs/h   # stops after selecting
    python -m claus.select --run runs/h/claus/seed0 --format cvat         # → an image task folder
    python -m claus.select --run runs/h/claus/seed0 --format labelstudio --video-url \\
        'http://localhost:8081/{video}.mp4'                                # → tasks.json

Formats: jsonl (requests.jsonl, one line per video), cvat (images/<video>/<frame:06d>.jpg,
labels.json, README.md), labelstudio (tasks.json with the model's boxes as pre-annotations,
config.xml, README.md). The default folder is RUN/round_<r>.partial/export/<format>/. Then
label, import with `python -m claus.annotate`, and continue with `python -m claus.train
--resume RUN`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .annotation import EXPORTS
from .cli import Parser, add_data_override, open_run_pending, run_command


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m claus.select", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="the run folder (started with --oracle human)")
    p.add_argument("--format", required=True, choices=list(EXPORTS),
                   help="; ".join(f"{k}: {v}" for k, v in EXPORTS.items()))
    p.add_argument("--out", default=None,
                   help="output folder (default RUN/round_<r>.partial/export/<format>)")
    p.add_argument("--no-predictions", action="store_true",
                   help="labelstudio: no model boxes as pre-annotations (faster)")
    p.add_argument("--video-url", default=None, metavar="TEMPLATE",
                   help="labelstudio: URL of a task's video, with {video}, {stem}, {path} "
                   "(default: the video file, else <video>.mp4)")
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

    pending = open_run_pending(a)
    out = Path(a.out) if a.out else pending.folder / "export" / a.format
    if a.format == "jsonl":
        written = export_jsonl(pending, out)
    elif a.format == "cvat":
        written = export_cvat(pending, out)
    else:
        written = export_labelstudio(pending, out, predictions=not a.no_predictions,
                                     video_url=a.video_url, fg_threshold=a.fg_threshold,
                                     device=a.device)
    reqs = pending.requests
    print(f"round {pending.round} of {pending.run}: {sum(len(r.frames) for r in reqs)} frames "
          f"of {len(reqs)} videos to label → {written}")
    if pending.imported:
        print("note: labels were imported already; a new import replaces them")
    imp = {"jsonl": "ava-csv", "cvat": "cvat-images", "labelstudio": "labelstudio"}[a.format]
    print(f"next: label them, then `python -m claus.annotate --run {pending.run} --file FILE "
          f"--format {imp}` and `python -m claus.train --resume {pending.run}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
