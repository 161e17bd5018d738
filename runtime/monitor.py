"""On-device health: per-stage latency, request and error counters, fallbacks, score drift."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from contextlib import contextmanager

import numpy as np


class Monitor:
    def __init__(self, window: int = 2048):
        self._lock = threading.Lock()
        self.timings: dict[str, deque] = defaultdict(lambda: deque(maxlen=window))
        self.counters: dict[str, int] = defaultdict(int)
        self.top_scores: deque = deque(maxlen=window)
        self.baseline_score: float | None = None  # mean top score of the first full window

    @contextmanager
    def stage(self, name: str):
        began = time.perf_counter()
        try:
            yield
        finally:
            elapsed = (time.perf_counter() - began) * 1e3
            with self._lock:
                self.timings[name].append(elapsed)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def score(self, top: float) -> None:
        with self._lock:
            self.top_scores.append(top)
            if self.baseline_score is None and len(self.top_scores) == self.top_scores.maxlen:
                self.baseline_score = float(np.mean(self.top_scores))

    def snapshot(self) -> dict:
        with self._lock:
            stages = {name: {"count": len(v), "p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99)),
                             "max_ms": float(max(v))} for name, v in self.timings.items() if v}
            scores = list(self.top_scores)
            drift = None
            if self.baseline_score is not None and scores:
                drift = float(np.mean(scores[-256:]) - self.baseline_score)
            return {"stages": stages, "counters": dict(self.counters),
                    "top_score_mean": float(np.mean(scores)) if scores else None, "top_score_drift": drift}
