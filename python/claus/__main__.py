"""`claus COMMAND [ARGS]` (or `python -m claus COMMAND [ARGS]`): every claus program under one name.

Each command is the `python -m claus.<module>` program of the same job, with the same flags;
`claus COMMAND --help` shows them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

#: command -> (module whose `main(argv)` runs it, one line of help). Ordered as a user meets them.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("claus.train", "train a detector, or run active-learning rounds with --strategy"),
    "experiment": ("claus.experiment", "strategies x seeds from the same start, with a report"),
    "export": ("claus.export", "export a waiting round's frames to CVAT, Label Studio, JSONL"),
    "annotate": ("claus.annotate", "import people's boxes into a waiting round"),
    "serve": ("claus.annotation.serve", "serve exported videos to an annotation tool"),
    "evaluate": ("claus.evaluate", "re-evaluate a run's checkpoint (f-mAP, v-mAP)"),
    "prepare": ("claus.data.prepare", "build a resized, memory-mapped frame store"),
    "import-ava": ("claus.data.import_ava", "an AVA-style CSV -> a claus dataset JSON file"),
    "demo": ("claus.demo", "a short demo of the fused STeW loss op"),
}
#: Old names, kept for one release.
ALIASES = {"select": "export"}


def usage() -> str:
    """The command list `claus --help` prints."""
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items())
    return (f"usage: claus COMMAND [ARGS]   (claus COMMAND --help for its flags)\n\n"
            f"commands:\n{rows}\n")


def command(name: str) -> Callable[[list[str] | None], int | None]:
    """The `main` function of command `name` (an alias gives its new command's)."""
    module, _ = COMMANDS[ALIASES.get(name, name)]
    return importlib.import_module(module).main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(), end="")
        return 0
    name, rest = argv[0], argv[1:]
    if name in ("-V", "--version"):
        from . import __version__

        print(f"claus {__version__}")
        return 0
    if name not in COMMANDS and name not in ALIASES:
        print(f"error: {name}: not a claus command; one of {', '.join(COMMANDS)} "
              "(claus --help lists them)", file=sys.stderr)
        return 2
    if name in ALIASES:
        print(f"note: `claus {name}` is now `claus {ALIASES[name]}`; the old name goes in the "
              "next release", file=sys.stderr)
    rc = command(name)(rest)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
