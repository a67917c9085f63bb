"""Every `python -m claus...` command README shows parses: its flags exist (an old spelling
kept as an alias where a flag was renamed), so README cannot drift from the CLI unseen."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest
from claus.__main__ import ALIASES
from claus.__main__ import COMMANDS as SUBCOMMANDS

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[tuple[int, str, list[str]]]:
    """(line, module, argv) of every runnable command line in README's code blocks; lines with
    placeholders ("...", "[...]", "a|b") are left out."""
    out = []
    text = (REPO / "README.md").read_text()
    for block in re.finditer(r"```bash\n(.*?)```", text, re.S):
        start = text[:block.start()].count("\n") + 2
        lines = block.group(1).replace("\\\n", " ").splitlines()
        for k, line in enumerate(lines):
            line = line.split(" #")[0].strip()
            m = re.search(r"-m (claus[\w.]*)(.*)$", line)
            sub = re.match(r"claus ([\w-]+)(.*)$", line)  # the console script: claus COMMAND
            if not (m or sub) or "..." in line or "[" in line or "|" in line:
                continue
            if m and m.group(1) == "claus":  # python -m claus COMMAND
                sub, m = re.match(r"([\w-]+)(.*)$", m.group(2).strip()), None
            if sub:
                module = SUBCOMMANDS[ALIASES.get(sub.group(1), sub.group(1))][0]
                out.append((start + k, module, shlex.split(sub.group(2))))
                continue
            out.append((start + k, m.group(1), shlex.split(m.group(2))))
    return out


COMMANDS = readme_commands()


def test_readme_has_commands():
    assert len(COMMANDS) > 20


@pytest.mark.parametrize("line, module, argv", COMMANDS,
                         ids=[f"L{x[0]}-{x[1]}" for x in COMMANDS])
def test_readme_command_parses(line, module, argv):
    mod = importlib.import_module(module)
    if not hasattr(mod, "build_parser"):
        pytest.skip(f"{module} builds its parser inside main")
    mod.build_parser().parse_args(argv)
