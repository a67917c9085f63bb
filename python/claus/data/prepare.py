r"""`python -m claus.data.prepare`: build a resized, memory-mapped frame store for a dataset.

Example:
    python -m claus.data.prepare --dataset ucf101-24 --root data/ucf101-24 \
        --out stores/ucf-112 --size 112
    python -m claus.train --dataset ucf101-24 --root data/ucf101-24 --store stores/ucf-112 ...

Resumable: run the same command again after an interruption and finished videos are kept.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..cli import Parser, run_command
from .faults import DEFAULT_MAX_BAD_SHARE
from .store import prepare_store


def _size(text: str):
    if text.lower() in ("none", "orig", "original"):
        return None
    if "x" in text:
        h, w = text.lower().split("x")
        return int(h), int(w)
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m claus.data.prepare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from ..config import add_arguments

    add_arguments(p, ["data"])
    p.add_argument("--seed", dest="data_seed", default=None, help="same as --data-seed")
    p.add_argument("--out", required=True, help="the store folder to create or resume")
    p.add_argument(
        "--size",
        type=_size,
        default=None,
        help="HxW (exact), S (short side, aspect kept) or 'orig' (default: orig)",
    )
    p.add_argument("--retry-failed", action="store_true", help="retry videos that failed before")
    p.add_argument("--max-bad-share", type=float, default=DEFAULT_MAX_BAD_SHARE, metavar="S",
                   help="stop when more than this share of the videos cannot be read "
                   f"[{DEFAULT_MAX_BAD_SHARE}]")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    return run_command(lambda: _prepare(a))


def _prepare(a: argparse.Namespace) -> int:
    from ..config import dataset_spec, field_names, given

    spec = dataset_spec(given(a, field_names("data")), "command line")
    if spec.store is not None:
        raise ValueError("--store: prepare writes a store (--out); it does not read one")
    summary = prepare_store(
        spec.open(), a.out, a.size, progress=not a.no_progress, retry_failed=a.retry_failed,
        max_bad_share=a.max_bad_share,
    )
    print(f"{a.out}: {summary}")
    return 1 if summary.failed and not (summary.written or summary.reused) else 0


if __name__ == "__main__":
    sys.exit(main())
