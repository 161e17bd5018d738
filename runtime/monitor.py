"""On-device health: per-stage latency, request and error counters, fallbacks, the score window for drift."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict, deque
from contextlib import contextmanager

import numpy as np

from edgerec.runtime.drift import WINDOW

FALLBACK = "encode_fallback"  # requests the encoder's fallback served: no user vector, no drift sample
_busy = threading.local()  # per thread: id(monitor) -> requests it is running in this thread


def begin(monitor) -> bool:
    """`monitor` starts a request in this thread; True when it was running one already: a nested
    request (an interleaving stage asking this very recommender for team B's list), which is not
    recorded as a request of its own (its time is the outer stage's)."""
    depth = _busy.__dict__.setdefault("depth", {})
    depth[id(monitor)] = depth.get(id(monitor), 0) + 1
    return depth[id(monitor)] > 1


def end(monitor) -> None:
    depth = _busy.__dict__.setdefault("depth", {})
    left = depth.get(id(monitor), 1) - 1
    if left > 0:
        depth[id(monitor)] = left
    else:
        depth.pop(id(monitor), None)


def busy(monitor) -> bool:
    """Whether `monitor` is running a request in this thread (what it is told now comes from a nested one)."""
    return id(monitor) in getattr(_busy, "depth", {})


class ScoreWindow(list):
    """The drift window: (top-1, top-k mean) of each user's newest plain request, oldest user first."""
    requests = 0  # plain requests measured since open
    fallbacks = 0  # requests the encoder's fallback served (they have no sample)


class Monitor:
    def __init__(self, window: int = 2048):
        self._lock = threading.Lock()
        self.timings: dict[str, deque] = defaultdict(lambda: deque(maxlen=window))
        self.counters: dict[str, int] = defaultdict(int)
        # user -> (top-1, top-k mean) of their newest plain request, for WINDOW users: one user asking
        # 60 times is one user's figure, not 60 of a population
        self.top_scores: OrderedDict = OrderedDict()
        self.forgets = 0  # forget() calls so far: a request in flight across one keeps no sample (score)
        self.scored = 0  # plain requests measured

    @contextmanager
    def stage(self, name: str):
        began = time.perf_counter()
        try:
            yield
        finally:
            self.timed(name, (time.perf_counter() - began) * 1e3)

    def timed(self, name: str, elapsed_ms: float) -> None:
        with self._lock:
            self.timings[name].append(elapsed_ms)

    def record(self, timings: list[tuple[str, float]], counts: dict[str, int]) -> None:
        """A request's stage timings and counters, under one lock."""
        with self._lock:
            for name, elapsed_ms in timings:
                self.timings[name].append(elapsed_ms)
            for name, n in counts.items():
                if isinstance(n, int):  # a stage may have put anything in the Counter
                    self.counters[name] += n

    def count(self, name: str, n: int = 1) -> None:
        if busy(self):  # a nested request's (its failure is the outer stage's, counted there)
            return
        with self._lock:
            self.counters[name] += n

    def score(self, top, forgets: int | None = None) -> None:
        """A plain request's drift.DriftSample: (top-1, top-k mean) and the user they were measured for;
        not kept when a forget() ran since the request took `forgets` (its user may be the forgotten one)."""
        if busy(self):  # a nested request's figures: the drift window holds the app's requests only
            return
        with self._lock:
            if forgets is not None and forgets != self.forgets:
                return
            self.scored += 1
            self.top_scores.pop(top.user, None)  # the user's newest figures, at the window's newest end
            self.top_scores[top.user] = (float(top.top1), float(top.topk))
            if len(self.top_scores) > WINDOW:
                self.top_scores.popitem(last=False)

    def forget(self, user: str) -> None:
        """Drop `user`'s sample (Recommender.forget: nothing of a forgotten user stays in memory)."""
        with self._lock:
            self.forgets += 1
            self.top_scores.pop(user, None)

    def score_window(self) -> ScoreWindow:
        with self._lock:
            window = ScoreWindow(self.top_scores.values())
            window.requests, window.fallbacks = self.scored, self.counters.get(FALLBACK, 0)
            return window

    def snapshot(self) -> dict:
        with self._lock:
            stages = {name: {"count": len(v), "p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99)),
                             "max_ms": float(max(v))} for name, v in self.timings.items() if v}
            return {"stages": stages, "counters": dict(self.counters)}
