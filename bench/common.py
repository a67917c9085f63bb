"""Shared benchmark helpers: timing (median + quantiles), NVTX ranges, machine description."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator

import torch

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
        torch.cuda.synchronize()


def time_fn(fn: Callable[[], object], device: str = "cpu", warmup: int = 3, reps: int = 20,
            min_seconds: float = 0.0) -> dict[str, float]:
    """Median and 20/80% quantiles of `fn`'s wall time in milliseconds.

    CUDA timings use events on the current stream; CPU timings perf_counter.
    """
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    start_all = time.perf_counter()
    while len(times) < reps or time.perf_counter() - start_all < min_seconds:
        if device.startswith("cuda"):
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
    q = statistics.quantiles(times, n=5) if len(times) >= 5 else [min(times)] * 4
    return {"median": statistics.median(times), "q20": q[0], "q80": q[3], "n": len(times)}


def machine() -> str:
    """One line describing where the numbers came from."""
    if torch.cuda.is_available():
        return (f"{torch.cuda.get_device_name()} (torch {torch.__version__}, "
                f"CUDA {torch.version.cuda})")
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")


def device_copy_gbps(nbytes: int, device: str) -> float:
    """Device-to-device copy bandwidth in GB/s (bytes read + written) for a buffer of nbytes."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    t = time_fn(lambda: dst.copy_(src), device=device, reps=30)["median"]
    return 2 * nbytes / (t * 1e-3) / 1e9
