"""`python -m claus.data.import_ava`: AVA-style CSV → a claus dataset JSON file.

Example:
    python -m claus.data.import_ava boxes.csv --video-dir videos --test-list test.txt \
        --out dataset.json

CSV rows: video, time, x1, y1, x2, y2 (normalized), label, track id. Each video's size, frame
count and rate come from `--videos` (a JSON object {name: {num_frames, width, height, fps,
split, ...}}) or are probed from `<video-dir>/<name>.<ext>` with PyAV.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cli import Parser, run_command
from .custom import write_ava_dataset
from .frames import VideoFileFrames

_EXTS = (".mp4", ".avi", ".mkv", ".webm", ".mov")


def probe_video(path: Path) -> dict:
    """{num_frames, width, height, fps} of a video file (PyAV)."""
    src = VideoFileFrames(path)
    _, s = src._stream()
    rate = s.average_rate or s.guessed_rate
    return {
        "num_frames": src.count_frames(),
        "width": int(s.codec_context.width),
        "height": int(s.codec_context.height),
        "fps": float(rate) if rate else None,
    }


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m claus.data.import_ava",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("csv", help="the AVA-style CSV file")
    p.add_argument("--out", required=True, help="the dataset JSON file to write")
    p.add_argument("--videos", help="JSON file: {name: {num_frames, width, height, fps, ...}}")
    p.add_argument("--video-dir", help="folder of <name>.<ext> video files to probe and reference")
    p.add_argument("--time-unit", choices=["seconds", "frame"], default="seconds")
    p.add_argument("--fps", type=float, help="frame rate for timestamps when a video has none")
    p.add_argument("--classes", help="text file, one class name per line (default: from the CSV)")
    p.add_argument(
        "--split", default="train", help="split of videos that name none (default train)"
    )
    p.add_argument("--test-list", help="text file of the videos of the test split, one name per "
                   "line (the others take --split)")
    p.add_argument("--max-gap", type=int, help="join keyframes at most this many frames apart")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    if not a.videos and not a.video_dir:
        p.error("give --videos or --video-dir")
    return run_command(lambda: _import(a))


def _import(a: argparse.Namespace) -> int:
    videos: dict[str, dict] = json.loads(Path(a.videos).read_text()) if a.videos else {}
    if a.video_dir:
        root = Path(a.video_dir)
        out_dir = Path(a.out).resolve().parent
        names = _first_column(Path(a.csv))
        for name in sorted(names):
            if name in videos:
                continue
            path = next((root / (name + e) for e in _EXTS if (root / (name + e)).is_file()), None)
            if path is None:
                continue  # a header row, or a video import_ava_csv will report as missing
            info = probe_video(path)
            try:
                info["video"] = str(path.resolve().relative_to(out_dir))
            except ValueError:
                info["video"] = str(path.resolve())
            videos[name] = info
    if a.test_list:
        test = {x.strip() for x in Path(a.test_list).read_text().splitlines() if x.strip()}
        unknown = sorted(test - set(videos))
        if unknown:
            raise ValueError(f"{a.test_list}: videos without a file or entry: "
                             f"{', '.join(unknown[:5])}; check the names")
        for name in test:
            videos[name]["split"] = "test"
    classes = None
    if a.classes:
        classes = [c.strip() for c in Path(a.classes).read_text().splitlines() if c.strip()]
    # Written a video at a time: the document's boxes never exist as Python objects at once.
    n_videos, n_tubes, n_classes = write_ava_dataset(
        a.csv,
        a.out,
        videos,
        classes=classes,
        time_unit=a.time_unit,
        fps=a.fps,
        max_gap=a.max_gap,
        split=a.split,
        name=Path(a.out).stem,
    )
    print(f"{a.out}: {n_videos} videos, {n_tubes} tubes, {n_classes} classes")
    return 0


def _first_column(path: Path) -> set[str]:
    """The stripped first cells of the file's non-empty lines, read a line at a time."""
    names = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line:
                names.add(line.split(",")[0].strip())
    return names


if __name__ == "__main__":
    sys.exit(main())
