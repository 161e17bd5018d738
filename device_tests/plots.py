"""Benchmark pictures: latency distribution per engine and per-stage breakdown (needs matplotlib)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from edgerec.runtime.atomic import write_file


def plot_bench(result: dict, path: str | Path) -> Path | None:
    """Two panels: end-to-end latency CDF per engine, and stage p50/p99. None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    path = Path(path)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for run in result["runs"]:
        samples = np.sort(np.asarray(run.get("latencies_ms", []), np.float64))
        if samples.size:
            left.plot(samples, np.arange(1, samples.size + 1) / samples.size, label=f"{run['backend']}")
    budget = result["profile"]["p99_ms"]
    left.axvline(budget, color="red", linestyle="--", label=f"p99 budget {budget} ms")
    left.axhline(0.99, color="grey", linestyle=":", linewidth=0.8)
    left.set_xscale("log")
    left.set_xlabel("recommend() latency, ms (log)")
    left.set_ylabel("share of requests")
    left.set_title(f"end to end, {result['items']:,} items, profile {result['profile']['name']}")
    left.legend()
    stages = ["history", "encode", "retrieve", "rank", "policies", "explain"]
    width = 0.8 / max(len(result["runs"]), 1)
    for i, run in enumerate(result["runs"]):
        p50 = [run["stages"].get(s, {}).get("p50_ms", 0.0) for s in stages]
        p99 = [run["stages"].get(s, {}).get("p99_ms", 0.0) for s in stages]
        x = np.arange(len(stages)) + i * width
        right.bar(x, p50, width, label=f"{run['backend']} p50")
        right.scatter(x, p99, marker="_", s=200, color="black", label="p99" if i == 0 else None)
    right.set_xticks(np.arange(len(stages)) + width * (len(result["runs"]) - 1) / 2, stages)
    right.set_ylabel("ms")
    right.set_title("per stage")
    right.legend()
    try:
        fig.tight_layout()
        image = io.BytesIO()
        fig.savefig(image, format=path.suffix.lstrip(".").lower() or "png", dpi=110)
    finally:
        plt.close(fig)
    write_file(path, image.getvalue())  # whole or not at all: saved in place, a kill left a cut-short image
    return path
