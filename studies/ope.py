"""Off-policy evaluation: a new policy's expected plays per list from exploration logs, without showing it.

Logs come from the runtime's exploration stage (Plackett-Luce sampling of
the short list, runtime/experiment.py) and record the marginal probability
p of each shown item at its position. Under the position-based model a
click at position r depends only on the item there, so with m = [the
target policy puts the same item at r]:

    IPS   = mean_n sum_r  m c / p
    SNIPS = sum_r  (sum_n m c / p) / (sum_n m / p)         (self-normalised per position)
    DR    = mean_n sum_r  q(target item, r) + m / p (c - q(shown item, r))

q is a direct model fitted on the same logs: the mean click rate of
(position, rank of the item in the logging policy's greedy list), shrunk
towards the position's mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHRINK = 5.0


@dataclass
class LoggedList:
    clicks: np.ndarray  # 0/1 per position of the shown list
    marginals: np.ndarray  # P(shown item at its position) under the logging policy
    match: np.ndarray  # bool per position: the target policy shows the same item there
    shown_rank: np.ndarray  # rank of each shown item in the logging policy's greedy list (k: not in it)
    target_rank: np.ndarray  # ... of each item of the target's list


def ips(logs: list[LoggedList]) -> float:
    return float(np.mean([(lg.match * lg.clicks / lg.marginals).sum() for lg in logs]))


def snips(logs: list[LoggedList]) -> float:
    num = np.sum([lg.match * lg.clicks / lg.marginals for lg in logs], axis=0)
    den = np.sum([lg.match / lg.marginals for lg in logs], axis=0)
    return float(np.sum(np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)))


def direct_model(logs: list[LoggedList]) -> np.ndarray:
    """q[r, g]: click rate at position r of an item of greedy rank g (g = k: outside the greedy list)."""
    k = len(logs[0].clicks)
    clicks, counts = np.zeros((k, k + 1)), np.zeros((k, k + 1))
    for lg in logs:
        np.add.at(clicks, (np.arange(k), lg.shown_rank), lg.clicks)
        np.add.at(counts, (np.arange(k), lg.shown_rank), 1)
    per_position = clicks.sum(1, keepdims=True) / np.maximum(counts.sum(1, keepdims=True), 1)
    return (clicks + SHRINK * per_position) / (counts + SHRINK)


def doubly_robust(logs: list[LoggedList], q: np.ndarray | None = None) -> float:
    q = direct_model(logs) if q is None else q
    out = []
    for lg in logs:
        r = np.arange(len(lg.clicks))
        out.append((q[r, lg.target_rank] + lg.match / lg.marginals * (lg.clicks - q[r, lg.shown_rank])).sum())
    return float(np.mean(out))


ESTIMATORS = {"IPS": ips, "SNIPS": snips, "DR": doubly_robust}


def estimates(logs: list[LoggedList]) -> dict[str, float]:
    return {name: fn(logs) for name, fn in ESTIMATORS.items()}


def standard_errors(logs: list[LoggedList], resamples: int = 200, seed: int = 0) -> dict[str, float]:
    """Bootstrap standard error of each estimator (lists resampled)."""
    rng = np.random.default_rng(seed)
    draws = {name: [] for name in ESTIMATORS}
    for _ in range(resamples):
        pick = [logs[i] for i in rng.integers(0, len(logs), len(logs))]
        for name, fn in ESTIMATORS.items():
            draws[name].append(fn(pick))
    return {name: float(np.std(v, ddof=1)) for name, v in draws.items()}
