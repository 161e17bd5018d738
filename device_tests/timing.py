"""Timing and memory helpers of the benchmarks: latency percentiles, timed calls, peak RSS."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from edgerec.errors import EdgerecError


def percentiles(samples_ms: list[float]) -> dict:
    a = np.asarray(samples_ms, np.float64)
    if a.size == 0:
        return {"count": 0}
    return {"count": int(a.size), "mean_ms": float(a.mean()), "p50_ms": float(np.percentile(a, 50)),
            "p95_ms": float(np.percentile(a, 95)), "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}


def seconds_ms(samples_s: list[float]) -> dict:
    """p50 and p99 in ms of samples in seconds, and their count."""
    a = np.asarray(samples_s) * 1e3
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)), "n": len(a)}


def print_result(run, json_path: str | None) -> int:
    """A bench's command line end: run(), its result as JSON on screen and in `json_path`; an EdgerecError
    (a bad bundle or count) as its words and exit status 1, not a traceback."""
    from edgerec.runtime.atomic import write_file
    from edgerec.runtime.outputs import output_refusal

    if json_path and (why := output_refusal(json_path)):  # before the run: it replaced bundle/manifest.json
        print(f"Error: --json {why}", file=sys.stderr)
        return 2
    try:
        result = run()
    except EdgerecError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=2)
    print(text)
    if json_path:
        write_file(Path(json_path), text)
    return 0


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
