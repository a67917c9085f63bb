r"""`python -m claus.data.prepare`: build a resized, memory-mapped frame store for a dataset.

Example:
    python -m claus.data.prepare --dataset ucf101-24 --root data/ucf101-24 \
        --out stores/ucf-112 --size 112

Resumable: run the same command again after an interruption and finished videos are kept.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .registry import DATASETS, load_dataset
from .store import prepare_store


def _size(text: str):
    if text.lower() in ("none", "orig", "original"):
        return None
    if "x" in text:
        h, w = text.lower().split("x")
        return int(h), int(w)
    return int(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m claus.data.prepare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dataset", default="synthetic", help=f"one of {sorted(DATASETS)} (default synthetic)"
    )
    p.add_argument("--root", help="dataset folder (ucf101-24, jhmdb-21) or JSON file (custom)")
    p.add_argument("--preset", default=None, help="synthetic preset: tiny, demo (default), full")
    p.add_argument("--seed", type=int, default=0, help="synthetic seed (default 0)")
    p.add_argument("--split", type=int, default=1, help="J-HMDB split 1-3 (default 1)")
    p.add_argument("--out", required=True, help="the store folder to create or resume")
    p.add_argument(
        "--size",
        type=_size,
        default=None,
        help="HxW (exact), S (short side, aspect kept) or 'orig' (default: orig)",
    )
    p.add_argument("--retry-failed", action="store_true", help="retry videos that failed before")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        ds = load_dataset(a.dataset, a.root, preset=a.preset, seed=a.seed, split=a.split)
    except (ValueError, FileNotFoundError) as e:
        p.error(str(e))
    summary = prepare_store(
        ds, a.out, a.size, progress=not a.no_progress, retry_failed=a.retry_failed
    )
    print(f"{a.out}: {summary}")
    return 1 if summary.failed and not (summary.written or summary.reused) else 0


if __name__ == "__main__":
    sys.exit(main())
