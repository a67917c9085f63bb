"""The `claus` command: every program under one name, old names kept for one release."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from claus.__main__ import ALIASES, COMMANDS, main


def test_every_command_has_a_parser_and_main():
    for name, (module, text) in COMMANDS.items():
        mod = importlib.import_module(module)
        assert callable(mod.main), name
        assert text and "\n" not in text
        if hasattr(mod, "build_parser"):
            assert mod.build_parser().format_help()


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - {"demo"}))
def test_command_help_is_the_modules_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    ours = capsys.readouterr().out
    mod = importlib.import_module(COMMANDS[name][0])
    assert ours == mod.build_parser().format_help()


def test_listing_and_unknown_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in COMMANDS)
    assert main(["trian"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: trian: not a claus command;")


def test_old_export_name_still_works(capsys):
    assert ALIASES == {"select": "export"}
    with pytest.raises(SystemExit):
        main(["select", "--help"])
    cap = capsys.readouterr()
    assert "python -m claus.export" in cap.out
    assert "now `claus export`" in cap.err
    import claus.export
    import claus.select

    assert claus.select.main is claus.export.main


def test_python_dash_m_claus_runs_a_command():
    r = subprocess.run([sys.executable, "-m", "claus", "evaluate", "--run", "/nonexistent/run"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "/nonexistent/run" in lines[0]
