"""The shuffling bound evaluated numerically: a tighter central epsilon for the same shuffled reports.

Feldman, McMillan and Talwar ("Hiding among the clones", FOCS 2021, Theorem 3.2)
reduce n shuffled epsilon0-LDP reports to two distributions on pairs of counts:
with C ~ Bin(n - 1, e^-epsilon0) the other reports that look like a "clone" of
the target's, A ~ Bin(C, 1/2) and alpha = e^epsilon0 / (e^epsilon0 + 1),

    P(a) = alpha Bin(a; C, 1/2) + (1 - alpha) Bin(a - 1; C, 1/2),
    Q(a) = alpha Bin(a - 1; C, 1/2) + (1 - alpha) Bin(a; C, 1/2).

The shuffled batch is (epsilon, delta)-DP for any delta at least the hockey-stick
divergence sum_a max(0, P(a) - e^epsilon Q(a)) (the same both ways: swapping a and
C + 1 - a turns P into Q). Their closed form bounds that sum from above; here it is
summed, which lets a device use a larger local epsilon for the same central one.
The sums run over C within `WIDTH` deviations of its mean and `a` within `WIDTH`
deviations of C / 2; everything left out is added as if it were all divergence,
so the result stays an upper bound.
"""

from __future__ import annotations

import math

import numpy as np

WIDTH = 8.0  # deviations summed over; the mass beyond (under 1e-12) is counted in full
MAX_CELLS = 2_000_000  # (C, a) pairs evaluated at most; beyond it the caller uses the closed form


def shuffle_delta(local_epsilon: float, batch: int, epsilon: float) -> float | None:
    """An upper bound on delta for `batch` shuffled local_epsilon-LDP reports to be epsilon-DP,
    or None when the sums would take more than MAX_CELLS terms (small epsilon0 with a large batch)."""
    n1, p0 = batch - 1, math.exp(-local_epsilon)
    mean, sd = n1 * p0, math.sqrt(n1 * p0 * (1 - p0))
    lo, hi = max(0, math.floor(mean - WIDTH * sd) - 1), min(n1, math.ceil(mean + WIDTH * sd) + 1)
    if p0 >= 1.0:  # an epsilon0 so small that e^-epsilon0 rounds to 1: every other report is a clone
        lo = hi = n1
    half = math.ceil(WIDTH * math.sqrt(hi) / 2) + 2
    if (hi - lo + 1) * (2 * half + 1) > MAX_CELLS:
        return None
    c = np.arange(lo, hi + 1)
    weight = np.ones(1) if p0 >= 1.0 else np.exp(_binomial_log_pmf(n1, p0, lo, hi))  # P(C = c)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, hi + 2)))])  # log k!
    a = (c // 2)[:, None] + np.arange(-half, half + 1)[None, :]
    here, before = _half_binomial(c, a, log_fact), _half_binomial(c, a - 1, log_fact)
    alpha = 1.0 / (1.0 + p0)  # e^epsilon0 / (e^epsilon0 + 1)
    p = alpha * here + (1 - alpha) * before
    q = alpha * before + (1 - alpha) * here
    within = np.maximum(p - math.exp(epsilon) * q, 0.0).sum(1) + np.maximum(1.0 - p.sum(1), 0.0)
    return float(weight @ np.minimum(within, 1.0) + max(1.0 - weight.sum(), 0.0))


def numeric_epsilon(local_epsilon: float, batch: int, delta: float, steps: int = 40) -> float | None:
    """The smallest central epsilon whose delta bound is at most `delta` (never above local_epsilon),
    or None when the sums are too long to evaluate."""
    low, high = 0.0, local_epsilon
    for _ in range(steps):  # the divergence falls as epsilon grows
        middle = (low + high) / 2
        bound = shuffle_delta(local_epsilon, batch, middle)
        if bound is None:  # too long whatever epsilon: the sums' size depends on epsilon0 and the batch only
            return None
        low, high = (low, middle) if bound <= delta else (middle, high)
    return high


def _binomial_log_pmf(n: int, p: float, lo: int, hi: int) -> np.ndarray:
    """log P(X = k) for X ~ Bin(n, p), k = lo..hi: one lgamma, then the ratio of neighbours."""
    first = math.lgamma(n + 1) - math.lgamma(lo + 1) - math.lgamma(n - lo + 1) + lo * math.log(p) \
        + (n - lo) * math.log1p(-p)
    k = np.arange(lo, hi)
    steps = np.log((n - k) / (k + 1)) + math.log(p) - math.log1p(-p)
    return np.concatenate([[first], first + np.cumsum(steps)])


def _half_binomial(c: np.ndarray, a: np.ndarray, log_fact: np.ndarray) -> np.ndarray:
    """Bin(a; c, 1/2) for each row's c, 0 where a is outside 0..c."""
    inside = (a >= 0) & (a <= c[:, None])
    a_in = np.where(inside, a, 0)
    c_col = c[:, None]
    log_pmf = log_fact[c_col] - log_fact[a_in] - log_fact[np.where(inside, c_col - a_in, 0)] - c_col * math.log(2)
    return np.exp(np.where(inside, log_pmf, -np.inf))
