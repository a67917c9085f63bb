"""Shared benchmark helpers: timing (median + quantiles) with peak memory, NVTX ranges, the
machine's description, and the recorder that appends every case's figures to
`bench/results/<bench>.csv` (from which `bench/tables.py` writes RESULTS.md's tables)."""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# torch is imported where it is used, not here: bench_import.py records through this module and
# must stay small, since Linux carries a parent's peak RSS into the children it measures.

try:  # NVTX ranges show the phases in Nsight Systems; a no-op when the package is absent.
    import nvtx as _nvtx
except ImportError:  # pragma: no cover - depends on the environment
    _nvtx = None


@contextlib.contextmanager
def nvtx_range(name: str) -> Iterator[None]:
    if _nvtx is None:
        yield
    else:
        with _nvtx.annotate(name):
            yield


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


class PeakMemory:
    """Peak memory over a `with` block, in MiB, and how it was measured (`kind`).

    CUDA: torch.cuda.max_memory_allocated, reset on entry ("cuda-allocated"). CPU: the process's
    peak resident set (VmHWM), reset on entry through /proc/self/clear_refs ("rss"); where the
    reset is refused (not Linux, or no permission) the lifetime peak ru_maxrss ("rss-lifetime").
    The CPU figure includes everything the process holds (torch itself is a few hundred MiB), as
    a user's process would.
    """

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.mib: float | None = None
        self.kind = ""

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.kind = "cuda-allocated"
        else:
            self.kind = "rss" if reset_rss_peak() else "rss-lifetime"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            self.mib = torch.cuda.max_memory_allocated() / 2**20
            return
        hwm = status_mib("VmHWM") if self.kind == "rss" else None
        self.mib = hwm if hwm is not None else (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux


def reset_rss_peak() -> bool:
    """Reset VmHWM to the current RSS ("5" to clear_refs, Linux >= 4.0); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def status_mib(key: str) -> float | None:
    with contextlib.suppress(OSError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024  # the line reads "VmHWM:  123 kB"
    return None


def time_fn(fn: Callable[[], object], device: str = "cpu", warmup: int = 3, reps: int = 20,
            min_seconds: float = 0.0) -> dict[str, Any]:
    """Median and 20/80% quantiles of `fn`'s wall time in milliseconds, the number of timed
    runs, and the peak memory over warm-up and runs (`peak_mib`, `mem`: see PeakMemory).

    CUDA timings use events on the current stream; CPU timings perf_counter.
    """
    with PeakMemory(device) as mem:
        out = _time_runs(fn, device, warmup, reps, min_seconds)
    return {**out, "peak_mib": mem.mib, "mem": mem.kind}


def _time_runs(fn: Callable[[], object], device: str, warmup: int, reps: int,
               min_seconds: float) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    start_all = time.perf_counter()
    while len(times) < reps or time.perf_counter() - start_all < min_seconds:
        if device.startswith("cuda"):
            import torch

            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return summarize(times)


def summarize(times: list[float]) -> dict[str, float]:
    """Median, 20% and 80% quantiles and count of some timings (fewer than 5: q20 = min,
    q80 = max)."""
    if len(times) >= 5:
        q = statistics.quantiles(times, n=5)
        q20, q80 = q[0], q[3]
    else:
        q20, q80 = min(times), max(times)
    return {"median": statistics.median(times), "q20": q20, "q80": q80, "n": len(times)}


def machine() -> str:
    """One line describing where the numbers came from."""
    import torch

    if torch.cuda.is_available():
        return (f"{torch.cuda.get_device_name()} (torch {torch.__version__}, "
                f"CUDA {torch.version.cuda})")
    cpu = _cpu_model()
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")


def device_copy_gbps(nbytes: int, device: str) -> float:
    """Device-to-device copy bandwidth in GB/s (bytes read + written) for a buffer of nbytes."""
    import torch

    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    t = time_fn(lambda: dst.copy_(src), device=device, reps=30)["median"]
    return 2 * nbytes / (t * 1e-3) / 1e9


# ---------------------------------------------------------------------------- recording
RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parents[1]
# One row per (case, implementation) of a run. date, commit, machine and load say where and
# when; median/p20/p80 are in `unit`; ratio = the case's baseline median / this median, both
# from the same run (> 1: faster than the baseline); peak_mib is measured as `mem` says
# (PeakMemory); extra is a JSON object of the script's own figures.
COLUMNS = ("date", "commit", "machine", "load", "device", "case", "impl", "unit", "median",
           "p20", "p80", "n", "baseline", "ratio", "peak_mib", "mem", "extra")


def utc_now() -> str:
    """The current time, UTC, ISO 8601 to the second ("2026-12-03T17:02:11Z")."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_commit(repo: Path = REPO) -> str:
    """Short hash of HEAD, "+dirty" when tracked files differ from it (the results folder
    excepted: recording must not make the next run dirty); $CLAUS_COMMIT where git is absent
    (a copy of the tree on another machine), else "unknown"."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        changes = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                      ":(exclude)bench/results")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("CLAUS_COMMIT", "unknown")
    return head + ("+dirty" if changes else "")


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_id(device: str = "cpu") -> str:
    """The machine column of a record: what the figures depend on and a later run on the same
    machine repeats (so it groups runs); the load, which changes, has its own column."""
    import torch

    if device.startswith("cuda"):
        return (f"{torch.cuda.get_device_name(device)}, {os.cpu_count()} CPU cores, "
                f"torch {torch.__version__}, CUDA {torch.version.cuda}")
    return (f"{_cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}")


def add_record_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-record", action="store_true",
                        help="do not append this run's rows to bench/results/<bench>.csv "
                        "($CLAUS_BENCH_RESULTS: another folder)")


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


class Recorder:
    """Appends one CSV row per (case, implementation) of this run to `<folder>/<bench>.csv`.

    The folder is `folder`, else $CLAUS_BENCH_RESULTS, else bench/results. Inside a pytest run
    (PYTEST_CURRENT_TEST, inherited by the scripts tests start) without an explicit folder
    nothing is written: tests must not change the repository's records. The header is written
    when the file is new; an existing file with other columns is refused rather than mixed.
    Rows are appended when their case completes, one line per write, flushed: a run that dies
    leaves the complete cases before it and no partial line.
    """

    def __init__(self, bench: str, enabled: bool = True, folder: Path | None = None) -> None:
        env = os.environ.get("CLAUS_BENCH_RESULTS")
        if folder is None and env is None and "PYTEST_CURRENT_TEST" in os.environ:
            enabled = False
        self.path = Path(folder or env or RESULTS) / f"{bench}.csv"
        self.enabled = enabled
        self.date = utc_now()  # the run's start: every row of one run shares it
        self.commit = git_commit() if enabled else ""
        self.rows = 0
        self._machines: dict[str, str] = {}

    @classmethod
    def from_args(cls, bench: str, args: argparse.Namespace) -> Recorder:
        return cls(bench, enabled=not getattr(args, "no_record", False))

    def machine(self, device: str) -> str:
        if device not in self._machines:
            self._machines[device] = machine_id(device)
        return self._machines[device]

    @contextlib.contextmanager
    def case(self, case: str, device: str = "cpu") -> Iterator[CaseRows]:
        """Collect a case's rows; on a normal exit compute the ratios and append them."""
        rows = CaseRows(case, device)
        yield rows
        self.write(rows.finish(self, os.getloadavg()[0]))

    def write(self, rows: list[dict[str, str]]) -> None:
        if not self.enabled or not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", newline="") as f:
            f.seek(0)
            header = f.readline()
            if not header:
                f.write(_csv_line(COLUMNS))
            elif next(csv.reader([header])) != list(COLUMNS):
                raise SystemExit(f"{self.path}: its columns are not {','.join(COLUMNS)}; "
                                 "move it aside to start a new file")
            for r in rows:
                f.write(_csv_line([r[c] for c in COLUMNS]))
                f.flush()
        self.rows += len(rows)

    def summary(self) -> str:
        if not self.enabled:
            return "not recorded (--no-record, or inside a test without $CLAUS_BENCH_RESULTS)"
        rel = self.path.relative_to(REPO) if self.path.is_relative_to(REPO) else self.path
        return f"recorded {self.rows} rows in {rel} (run {self.date}, commit {self.commit})"


def _csv_line(values) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


class CaseRows:
    """The rows of one case in one run; `add` one per implementation, one of them the baseline."""

    def __init__(self, case: str, device: str) -> None:
        self.case, self.device = case, device
        self.items: list[dict[str, Any]] = []
        self.baseline: str | None = None

    def add(self, impl: str, timing: dict[str, Any], unit: str = "ms", baseline: bool = False,
            **extra: Any) -> None:
        """timing: time_fn's dict (median, q20, q80, n, peak_mib, mem), figures in `unit`;
        extra: the script's own figures for this row (JSON-serialisable)."""
        if baseline:
            if self.baseline is not None:
                raise ValueError(f"case {self.case}: two baselines ({self.baseline}, {impl})")
            self.baseline = impl
        self.items.append({"impl": impl, "unit": unit, "t": timing, "extra": extra})

    def finish(self, rec: Recorder, load: float) -> list[dict[str, str]]:
        base = next((it["t"]["median"] for it in self.items if it["impl"] == self.baseline),
                    None)
        rows = []
        for it in self.items:
            t, ratio = it["t"], None
            if base is not None and t["median"] > 0:
                ratio = base / t["median"]
            rows.append({
                "date": rec.date, "commit": rec.commit, "machine": rec.machine(self.device),
                "load": f"{load:.2f}", "device": self.device, "case": self.case,
                "impl": it["impl"], "unit": it["unit"], "median": _fmt(t["median"]),
                "p20": _fmt(t.get("q20")), "p80": _fmt(t.get("q80")), "n": str(t.get("n", "")),
                "baseline": self.baseline or "", "ratio": _fmt(ratio),
                "peak_mib": "" if t.get("peak_mib") is None else f"{t['peak_mib']:.1f}",
                "mem": t.get("mem", ""),
                "extra": json.dumps(it["extra"], sort_keys=True, separators=(",", ":"))
                if it["extra"] else ""})
        return rows


def in_seconds(t: dict[str, Any]) -> dict[str, Any]:
    """time_fn's figures (ms) in seconds, for scripts whose unit is the second."""
    return {**t, **{k: t[k] / 1e3 for k in ("median", "q20", "q80") if t.get(k) is not None}}
