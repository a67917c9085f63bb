"""`python -m claus.annotate`: import people's boxes into an interactive run's waiting round.

    python -m claus.annotate --run runs/h/claus/seed0 --file annotations.xml --format cvat-images
    python -m claus.annotate --run RUN --file a.xml b.xml --format cvat-xml   # one video task each
    python -m claus.train --resume runs/h/claus/seed0                        # the rounds go on

Formats: cvat-xml (CVAT for video 1.1: tracks, frame = start_frame + i·step), cvat-images (CVAT
for images 1.1: frames from the image names), labelstudio (Label Studio JSON export,
videorectangle tracks), ava-csv (video, frame, x1, y1, x2, y2 normalized, label, track).

Tracks give every requested frame the box the tool shows there: its keyframe, or the box the
tool interpolates between keyframes (linear; Label Studio carries a box on after an enabled
keyframe up to the next keyframe or the video's end, CVAT up to the next keyframe or the
task's end unless the track is outside). Of a Label Studio task's annotations the latest
submitted, not cancelled one counts (--annotator picks someone's); a note says when there
were several.

A requested frame without boxes is recorded as "no actor"; requested frames the files do not
cover are an error (--allow-missing leaves them unlabelled); boxes on frames that were not
requested are reported and ignored (--accept-extra labels them); unknown videos or labels are
an error listing them; boxes reaching outside the frame are clipped and counted. Nothing is
written unless everything checks out; repeating an import gives the same labels, a corrected
file replaces the previous import.
"""

from __future__ import annotations

import argparse
import sys

from .annotation.importer import FORMATS
from .cli import Parser, add_data_override, open_run_pending, run_command


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m claus.annotate", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="the run folder (started with --oracle human)")
    p.add_argument("--file", required=True, nargs="+", help="annotation file(s), merged")
    p.add_argument("--format", required=True, choices=list(FORMATS),
                   help="; ".join(f"{k}: {v}" for k, v in FORMATS.items()).replace("%", "%%"))
    p.add_argument("--video", default=None,
                   help="CVAT: the claus video of a single-video file whose task name or image "
                   "names do not say")
    p.add_argument("--annotator", default=None, metavar="ID_OR_EMAIL",
                   help="labelstudio: use the annotations of this user (completed_by id or "
                   "email) instead of each task's latest submitted one")
    p.add_argument("--accept-extra", action="store_true",
                   help="also label frames that were not requested (if not labelled before)")
    p.add_argument("--allow-missing", action="store_true",
                   help="leave requested frames the files do not cover unlabelled")
    p.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
    add_data_override(p)
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    return run_command(lambda: _import(a))


def _import(a: argparse.Namespace) -> int:
    from .annotation import import_files

    pending = open_run_pending(a)
    report = import_files(pending, a.file, a.format, video=a.video, annotator=a.annotator,
                          accept_extra=a.accept_extra, allow_missing=a.allow_missing,
                          dry_run=a.dry_run)
    print(report.summary())
    if a.dry_run:
        print("dry run: nothing written")
    else:
        print(f"wrote {pending.files.next_labels}; next: `python -m claus.train "
              f"--resume {pending.run}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
