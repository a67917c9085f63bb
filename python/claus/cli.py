"""What every `python -m claus.<command>` shares: one-line errors, the dataset flags.

A fault the user can fix ends a command with one line, `error: <file or flag>: <what is wrong>;
<what to do>`, and exit code 2, never a traceback: `Parser` does so for bad flags and
`run_command` for the errors library code raises (`USER_ERRORS`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import NoReturn

__all__ = ["USER_ERRORS", "Parser", "add_data_override", "data_override", "open_run_pending",
           "run_command"]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (`error: ...; see --help`), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}; see python -m {self.prog.split()[-1]} --help\n"
                  if self.prog.startswith("python -m") else f"error: {message}\n")


def _user_errors() -> tuple[type[BaseException], ...]:
    import pickle

    from .data import FrameReadError, LabelStateError, UnsafePickleError
    from .data.faults import TooManyBadVideos

    # TooManyBadVideos is a ValueError; named for the reader: too many unreadable videos end
    # a run with its one line (`claus.data.faults`).
    return (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
            IsADirectoryError, PermissionError, ImportError, UnsafePickleError,
            pickle.UnpicklingError, LabelStateError, FrameReadError, TooManyBadVideos)


USER_ERRORS = _user_errors()


def run_command(body: Callable[[], int]) -> int:
    """Run a command's body; a user-fixable error becomes `error: <message>` on stderr and
    exit code 2 (the message already names the file or flag)."""
    try:
        return body()
    except USER_ERRORS as exc:
        logging.getLogger("claus").debug("user error", exc_info=True)
        text = str(exc).strip() or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
            text = f"{exc.filename}: {exc.strerror or text}"
        print(f"error: {text}", file=sys.stderr)
        return 2


def add_data_override(p: argparse.ArgumentParser) -> None:
    """--root / --store / --split for commands that reopen a run's dataset: where its data is
    now, when it moved since the run started (checked against the run's fingerprint)."""
    g = p.add_argument_group("the run's data, when it moved")
    g.add_argument("--root", default=None, help="the dataset's folder or JSON file now")
    g.add_argument("--store", default=None, help="the frame store's folder now")
    g.add_argument("--split", default=None, help="the dataset split (must be the run's)")


def data_override(args: argparse.Namespace, spec):
    """`spec` (a `claus.config.DatasetSpec`) with --root / --store / --split applied."""
    changes = {k: getattr(args, k) for k in ("root", "store") if getattr(args, k, None)}
    split = getattr(args, "split", None)
    if split is not None:
        try:
            changes["split"] = int(split)
        except ValueError:
            raise ValueError(f"--split: expects a split number, got {split!r}") from None
    return spec.replace(**changes) if changes else spec


def open_run_pending(args: argparse.Namespace):
    """The round of `args.run` that waits for labels (`claus.annotation.open_pending`), its
    data first moved to --root / --store when given (`claus.rounds.relocate_run`)."""
    from .annotation import open_pending

    if any(getattr(args, k, None) for k in ("root", "store", "split")):
        # Only a move needs the round engine (torch: relocate_run joins torchrun's ranks);
        # importing and exporting otherwise start without it.
        from .rounds import is_rounds_run, read_run_config, relocate_run

        if is_rounds_run(args.run):
            relocate_run(args.run, data_override(args, read_run_config(args.run).data))
    return open_pending(args.run)
