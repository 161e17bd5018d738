"""Score drift: the model's top scores on the device against the baseline measured at export.

What is compared is the raw similarity of a user vector to its best items
(seen items excluded): the best score and the mean of the DRIFT_K best. The
exporter measures both over its parity users and writes their mean and
deviation into the manifest (metrics.monitoring, see `score_baseline`); the
runtime measures them on plain requests (a real history, no filters, no
feedback pull) and keeps one sample per user, their newest (a device has one
user or a household: counting requests made one user's typical score stand
for a population). It reports the standardized mean shift over its users,
|window mean - baseline mean| / baseline deviation, the larger of the two,
and flags drift once the device has measured MIN_WINDOW plain requests and
the shift passes the threshold (the manifest's, else 1.0) plus the window
mean's own noise, NOISE_Z / sqrt(users) deviations. A user base that drifted
from the training data, a damaged encoder or a stale item table all move
these scores; requests the encoder's fallback served have none, and the
report counts them. A baseline measured on fewer than MIN_BASELINE_USERS
users, or with no spread between them, cannot judge a shift: none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

DRIFT_K = 10
MIN_WINDOW = 50
WINDOW = 500  # users (their newest plain request each) compared with the baseline
# In baseline deviations between users: a different mix of users moves the mean by a few tenths; a broken
# encoder or stale table moves it by several (a halved encoder output: 13 for every user of the tiny world).
DEFAULT_THRESHOLD = 1.0
# The window mean of n users strays 1/sqrt(n) deviations by chance; one healthy user of the tiny world's
# 150 sat 3.8 deviations out (tails heavier than normal), so a single user must be 1 + 4 = 5 out.
NOISE_Z = 4.0
MIN_BASELINE_USERS = 20  # fewer parity users give no deviation worth dividing by
UNUSABLE = (f"the bundle carries no usable score baseline (none, malformed, measured on fewer than "
            f"{MIN_BASELINE_USERS} users or with no spread between them, or not of the {DRIFT_K} best scores); "
            "re-export it to monitor drift")


class DriftSample(NamedTuple):
    """A plain request's figures, with the user they were measured for (the window keeps one per user)."""
    top1: float
    topk: float
    user: str


def top_summary(scores: np.ndarray, k: int = DRIFT_K) -> tuple[float, float] | None:
    """(best score, mean of the k best) among finite `scores`; None when there are none."""
    finite = np.asarray(scores, np.float64)
    if not np.isfinite(finite).all():  # (the usual case, all finite, skips the filter's copy)
        finite = finite[np.isfinite(finite)]
    n = len(finite)
    if not n:
        return None
    k = min(k, n)
    best = np.partition(finite, n - k)[n - k:]
    return float(best.max()), float(np.add.reduce(best)) / k  # best.mean(): the same sum, divided as it does


def score_baseline(user_vectors: np.ndarray, table: np.ndarray, seen: list, k: int = DRIFT_K,
                   threshold: float = DEFAULT_THRESHOLD) -> dict:
    """The manifest's monitoring section: top-score statistics of users (vectors as the shipped
    encoder gives them) against the shipped table, each user's seen rows excluded."""
    summaries = []
    for start in range(0, len(user_vectors), 256):
        scores = np.asarray(user_vectors[start:start + 256], np.float32) @ np.asarray(table, np.float32).T
        for row, rows_seen in enumerate(seen[start:start + 256]):
            scores[row, np.asarray(rows_seen, np.int64)] = -np.inf
            found = top_summary(scores[row], k)
            if found is not None:
                summaries.append(found)
    values = np.asarray(summaries, np.float64).reshape(-1, 2)
    stats = {name: {"mean": float(values[:, i].mean()), "std": float(values[:, i].std())}
             for i, name in enumerate(("top1", "topk"))} if len(values) else {}
    return {"score_baseline": {"k": k, "users": len(values), **stats}, "drift_threshold": threshold,
            "drift_min_window": MIN_WINDOW}


@dataclass
class DriftBaseline:
    top1: tuple[float, float]  # (mean, std)
    topk: tuple[float, float]
    k: int
    users: int
    threshold: float = DEFAULT_THRESHOLD
    min_window: int = MIN_WINDOW

    @classmethod
    def from_manifest(cls, manifest) -> DriftBaseline | None:
        """The bundle's baseline, or None for bundles exported without one."""
        section = getattr(manifest, "monitoring", None) or manifest.metrics.get("monitoring") or {}
        try:  # the metrics section is open in the schema: a malformed baseline means none, never a crash
            base = section.get("score_baseline") or {}
            baseline = cls((float(base["top1"]["mean"]), float(base["top1"]["std"])),
                       (float(base["topk"]["mean"]), float(base["topk"]["std"])), int(base["k"]),
                       int(base.get("users", 0)), float(section.get("drift_threshold", DEFAULT_THRESHOLD)),
                       int(section.get("drift_min_window", MIN_WINDOW)))
        except (AttributeError, KeyError, TypeError, ValueError, OverflowError):
            return None
        numbers = (*baseline.top1, *baseline.topk, baseline.threshold)
        # a deviation of 0 (one parity user, or all alike) or below flags every window as drifted, a few users
        # give no deviation to trust, and the device summarizes its DRIFT_K best scores: another k compares
        # unlike figures
        usable = (all(math.isfinite(v) for v in numbers) and baseline.top1[1] > 0 and baseline.topk[1] > 0
                  and baseline.users >= MIN_BASELINE_USERS and baseline.threshold > 0
                  and 0 < baseline.min_window <= WINDOW and baseline.k == DRIFT_K)
        return baseline if usable else None

    def to_dict(self) -> dict:
        return {"top1_mean": self.top1[0], "top1_std": self.top1[1], "topk_mean": self.topk[0],
                "topk_std": self.topk[1], "k": self.k, "users": self.users}


def drift_report(window: list[tuple[float, float]], baseline: DriftBaseline | None) -> dict:
    """stats()["drift"]: the window (one sample per user; Monitor.score_window) against the baseline, and
    whether it drifted. window: plain requests measured, users: samples, fallbacks: requests without one."""
    users = len(window)
    requests = getattr(window, "requests", users)  # a plain list: one request per sample
    fallbacks = getattr(window, "fallbacks", 0)
    report = {"available": baseline is not None, "window": requests, "users": users, "fallbacks": fallbacks,
              "drifted": False}
    if baseline is None:
        return report | {"reason": UNUSABLE}
    report.update(min_window=baseline.min_window, threshold=baseline.threshold, baseline=baseline.to_dict(),
                  current=None, score=None, allowance=None)
    if requests < baseline.min_window or not users:
        why = f"too few plain requests to judge ({requests} of {baseline.min_window})"
        if fallbacks:  # a broken encoder leaves the window empty: say so, not just "not drifted"
            why += (f"; {fallbacks} requests fell back to the popularity list, which has no model scores "
                    "(the user encoder failed: rec.stats()['failures']['encode'] says why)")
        return report | {"reason": why}
    current = np.asarray(window, np.float64).mean(0)
    score = max(abs(current[i] - mean) / std for i, (mean, std) in enumerate((baseline.top1, baseline.topk)))
    allowance = NOISE_Z / math.sqrt(users)
    report.update(current={"top1_mean": float(current[0]), "topk_mean": float(current[1])}, score=float(score),
                  allowance=allowance, drifted=bool(score > baseline.threshold + allowance))
    return report
