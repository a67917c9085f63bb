"""Subprocesses for the multi-process tests: a launch that cannot hang the suite."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest


def run_group(cmd: list[str], env: dict, log: Path, timeout: float) -> int:
    """Run `cmd` in its own process group with its output in `log`; on a timeout kill the
    whole group (torchrun and its ranks) and fail the test with the log's tail. Returns the
    exit status."""
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"{' '.join(map(str, cmd[:6]))} ... hung for {timeout} s; log:\n"
                        + log.read_text()[-4000:])
