"""Timing and memory helpers of the benchmarks: latency percentiles, timed calls, peak RSS."""

from __future__ import annotations

import resource
import sys
import time

import numpy as np


def percentiles(samples_ms: list[float]) -> dict:
    a = np.asarray(samples_ms, np.float64)
    if a.size == 0:
        return {"count": 0}
    return {"count": int(a.size), "mean_ms": float(a.mean()), "p50_ms": float(np.percentile(a, 50)),
            "p95_ms": float(np.percentile(a, 95)), "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}


def time_calls(fn, n: int, before=None) -> list[float]:
    """Time fn(i) for i in 0..n-1 after a short warm-up (inputs vary, so caches do not flatter).

    `before()`, when given, runs untimed ahead of every call (e.g. to evict the CPU caches).
    """
    for i in range(min(5, n)):
        fn(i)
    out = []
    for i in range(n):
        if before is not None:
            before()
        began = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - began) * 1e3)
    return out


def timed(fn, n: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        began = time.perf_counter()
        fn()
        out.append((time.perf_counter() - began) * 1e3)
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process. Linux's VmHWM belongs to the current program only;
    ru_maxrss can carry a parent's peak across fork+exec, so it is the fallback."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    per_mb = 2.0**20 if sys.platform == "darwin" else 1024.0  # ru_maxrss: bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / per_mb
