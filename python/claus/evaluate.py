"""`python -m claus.evaluate --run RUN`: re-evaluate a training run's checkpoint.

    python -m claus.evaluate --run runs/demo                          # test split, run's protocol
    python -m claus.evaluate --run runs/demo --protocol localization  # VideoCapsuleNet protocol
    python -m claus.evaluate --run runs/ucf --root /new/place/of/ucf101-24   # the data moved
"""

from __future__ import annotations

import argparse
import logging
import sys

from .cli import Parser, add_data_override, data_override, run_command

#: The subsets `--on` (formerly `--split NAME`) evaluates.
SUBSETS = ("test", "train")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m claus.evaluate",
        description="Evaluate the checkpoint of a run folder (written by python -m claus.train) "
        "on a split: f-mAP@0.5, v-mAP@0.1/0.2/0.3/0.5 and @0.5:0.95 (act protocol) or the "
        "mask-IoU localization protocol, plus classification accuracy. Results go to "
        "RUN/results.json (RUN/results-<split>-<protocol>.json for another split or protocol).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--run", required=True, help="run folder with config and checkpoint.pt")
    p.add_argument("--on", default=None, choices=SUBSETS,
                   help="which videos to evaluate: test (default) or train (--split test / "
                   "--split train, the old spelling, still work)")
    p.add_argument("--protocol", default=None, choices=("act", "localization"),
                   help="metric protocol (default: the run's)")
    p.add_argument("--device", default=None, help="override the run's device (cpu, cuda, ...)")
    p.add_argument("--no-write", action="store_true", help="print only, write no file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_data_override(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command(lambda: _evaluate(args))


def _evaluate(args: argparse.Namespace) -> int:
    from claus.supervised import evaluate_run, evaluation_table, read_run_config

    subset = args.on or "test"
    if args.split in SUBSETS:  # the old spelling of --on
        subset, args.split = args.split, None
    data = None
    if any(getattr(args, k) for k in ("root", "store", "split")):
        data = data_override(args, read_run_config(args.run)[0].data)
    results = evaluate_run(args.run, subset, args.protocol, progress=not args.no_progress,
                           write=not args.no_write, device=args.device, data=data)
    print(evaluation_table(results))
    if "file" in results:
        print(f"written: {results['file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
