"""`python -m claus.select`: the old name of `python -m claus.export`, kept for one release.

It shadowed the standard library's `select` module inside the package; use `claus.export` (or
`claus export`).
"""

from __future__ import annotations

import sys

from .export import build_parser, main

__all__ = ["build_parser", "main"]


def _main(argv: list[str] | None = None) -> int:
    print("note: python -m claus.select is now python -m claus.export (or `claus export`); the "
          "old name goes in the next release", file=sys.stderr)
    return main(argv)


if __name__ == "__main__":
    sys.exit(_main())
