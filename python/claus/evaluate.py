"""`python -m claus.evaluate --run RUN`: re-evaluate a training run's checkpoint.

    python -m claus.evaluate --run runs/demo                          # test split, run's protocol
    python -m claus.evaluate --run runs/demo --protocol localization  # VideoCapsuleNet protocol
"""

from __future__ import annotations

import argparse
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m claus.evaluate",
        description="Evaluate the checkpoint of a run folder (written by python -m claus.train) "
        "on a split: f-mAP@0.5, v-mAP@0.1/0.2/0.3/0.5 and @0.5:0.95 (act protocol) or the "
        "mask-IoU localization protocol, plus classification accuracy. Results go to "
        "RUN/results.json (RUN/results-<split>-<protocol>.json for another split or protocol).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--run", required=True, help="run folder with config and checkpoint.pt")
    p.add_argument("--split", default="test", help="dataset split to evaluate")
    p.add_argument("--protocol", default=None, choices=("act", "localization"),
                   help="metric protocol (default: the run's)")
    p.add_argument("--device", default=None, help="override the run's device (cpu, cuda, ...)")
    p.add_argument("--no-write", action="store_true", help="print only, write no file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from claus.supervised import evaluate_run, results_table

    try:
        results = evaluate_run(args.run, args.split, args.protocol,
                               progress=not args.no_progress, write=not args.no_write,
                               device=args.device)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        parser.exit(2, f"error: {exc}\n")
    print(results_table(results))
    if "file" in results:
        print(f"written: {results['file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
