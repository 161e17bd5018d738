"""Local differential privacy: randomized response and optimized local hashing (OLH), and their estimators.

A device perturbs its one true value before anything leaves it; each report is
epsilon-LDP on its own: for any two inputs the probability of any output differs
by at most a factor e^epsilon. Small domains (categories, latency buckets) use
generalized randomized response (GRR); the item catalog uses OLH (Wang et al.,
USENIX Security 2017): a random hash from a universal family maps the item to
g = round(e^eps) + 1 buckets and GRR runs over the buckets, so a report is
three small integers whatever the catalog size. Randomness goes through a
`Randomness` object (by default the `secrets` module), so a test can enumerate
every random outcome of the real code and compute exact output probabilities.
The estimators (numpy) turn a set of reports into unbiased counts with variances.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgerec.errors import ConfigError
from edgerec.runtime import checks

PRIME = 2_147_483_647  # 2^31 - 1: the universal hash family ((a*x + b) mod PRIME) mod g over ids < PRIME
_BITS = 53


class Randomness(Protocol):
    def below(self, n: int) -> int: ...  # uniform in [0, n)
    def bernoulli(self, p: float) -> bool: ...  # True with probability p


class SecureRandomness:
    """The operating system's CSPRNG (`secrets`): the only randomness reports use in production."""

    def below(self, n: int) -> int:
        return secrets.randbelow(n)

    def bernoulli(self, p: float) -> bool:
        return secrets.randbits(_BITS) < round(p * (1 << _BITS))


# below this, e^eps is 1 to within rounding: a report's keep and flip chances are equal, so the host's
# estimate divides by (almost) zero; nothing is measured, and the device still charged its ledger
MIN_EPSILON = 1e-6


def check_epsilon(epsilon: float) -> float:
    return checks.number(epsilon, "epsilon", MIN_EPSILON, 20.0)


def keep_probability(epsilon: float, k: int) -> float:
    """GRR: the chance of reporting the true value among k; every other value has (1 - p) / (k - 1)."""
    e = math.exp(epsilon)
    return e / (e + k - 1)


def grr(value: int, k: int, epsilon: float, rng: Randomness) -> int:
    """Generalized randomized response over {0..k-1}: the value with p = e^eps/(e^eps+k-1), else another one."""
    if not 0 <= value < k:
        raise ConfigError(f"value {value} is outside the domain of {k} values")
    if rng.bernoulli(keep_probability(epsilon, k)):
        return value
    other = rng.below(k - 1)
    return other if other < value else other + 1


def olh_buckets(epsilon: float) -> int:
    """The g that minimises OLH's variance: e^eps + 1, rounded."""
    return max(2, int(round(math.exp(epsilon))) + 1)


@dataclass(frozen=True)
class LocalHash:
    """One member of the universal family x -> ((a*x + b) mod prime) mod g."""

    a: int
    b: int
    g: int
    prime: int = PRIME

    def __call__(self, x):
        if isinstance(x, np.ndarray):
            return ((self.a * x.astype(np.int64) + self.b) % self.prime) % self.g
        return ((self.a * int(x) + self.b) % self.prime) % self.g


def olh(value: int, epsilon: float, rng: Randomness, prime: int = PRIME) -> tuple[LocalHash, int]:
    """Optimized local hashing: a fresh random hash, then GRR over its g buckets. Returns (hash, bucket)."""
    if not 0 <= value < prime:
        raise ConfigError(f"value {value} is outside the hash family's domain [0, {prime})")
    g = olh_buckets(epsilon)
    h = LocalHash(1 + rng.below(prime - 1), rng.below(prime), g, prime)
    return h, grr(h(value), g, epsilon, rng)


def discrete_laplace(scale: int, rng: Randomness) -> int:
    """An integer y with P(y) proportional to exp(-|y| / scale): Canonne, Kamath and Steinke's exact sampler
    (NeurIPS 2020, Algorithm 2 with scale s/1), from uniform integers and coin flips only, so no
    floating-point noise leaks the value it is added to (Mironov, CCS 2012)."""
    scale = checks.integer(scale, "the noise scale", 1, MAX_SCALE)
    while True:
        u = rng.below(scale)
        if not rng.bernoulli(math.exp(-u / scale)):
            continue
        v = 0
        while rng.bernoulli(math.exp(-1.0)):
            v += 1
        y = u + scale * v
        negative = rng.bernoulli(0.5)
        if not (negative and y == 0):  # zero would otherwise come up from both signs
            return -y if negative else y


def on_grid(values: dict, bounds: dict, steps: int) -> dict[str, int]:
    """Each value clipped to [0, its bound] and counted in `steps` steps of the bound (the host reads
    value x bound / steps). With discrete Laplace noise of scale laplace_scale(len(values), steps, eps) on
    each, the whole vector is epsilon-LDP: its L1 sensitivity is steps x the number of values."""
    checks.instance(values, dict, "values", allow_none=False), checks.instance(bounds, dict, "bounds", allow_none=False)
    if not values or set(values) != set(bounds):
        raise ConfigError(f"every reported value needs a bound and every bound a value (values "
                          f"{sorted(map(str, values))}, bounds {sorted(map(str, bounds))}); bounds are public and "
                          "fixed before the experiment, e.g. the 99th percentile of the figure in an earlier period")
    out = {}
    for name in sorted(values, key=str):
        checks.text(name, "a value's name", 200)
        bound = checks.number(bounds[name], f"the bound of {name!r}", 0.0, 1e12, low_open=True)
        value = checks.number(values[name], f"the value of {name!r}", -1e15, 1e15)
        out[name] = round(steps * min(max(value, 0.0), bound) / bound)
    return out


# the largest noise scale: its draws pass a scale dozens of times over, and the host refuses figures past 2^53
MAX_SCALE = 1 << 40


def laplace_scale(count: int, steps: int, epsilon: float) -> int:
    """The noise scale for `count` values on a grid of `steps`: sensitivity / epsilon, rounded up (which
    only adds noise); at most MAX_SCALE, what discrete_laplace takes."""
    scale = steps * count / check_epsilon(epsilon)
    if not scale <= MAX_SCALE:  # a tiny epsilon: noise no float figure could carry
        raise ConfigError(f"epsilon {epsilon:g} puts the noise scale at {scale:.3g}, above 2^40: no report could "
                          f"carry it; give an epsilon of at least {smallest_epsilon(count, steps):.2g}")
    return math.ceil(scale)


def smallest_epsilon(count: int, steps: int) -> float:
    """The smallest epsilon laplace_scale takes for `count` values on `steps`, rounded up to two digits (at
    least MIN_EPSILON)."""
    least = steps * count / MAX_SCALE
    unit = 10.0 ** (math.floor(math.log10(least)) - 1)
    shown = math.ceil(least / unit) * unit
    return max(MIN_EPSILON, shown if steps * count / shown <= MAX_SCALE else shown + unit)


# ---------------------------------------------------------------- estimators (host side, numpy only)

@dataclass
class Estimate:
    """Unbiased counts per value, their standard errors and 95% confidence intervals."""

    counts: np.ndarray
    stderr: np.ndarray
    reports: int

    @property
    def low(self) -> np.ndarray:
        return self.counts - 1.96 * self.stderr

    @property
    def high(self) -> np.ndarray:
        return self.counts + 1.96 * self.stderr


def debias(support: np.ndarray, n: int, p: float, q: float) -> Estimate:
    """From support counts (reports that 'support' each value: true with p, false with q) to counts.

    E[support_v] = n_v p + (n - n_v) q, so (support_v - n q) / (p - q) is unbiased; its
    variance is n q (1 - q) / (p - q)^2 + n_v (1 - p - q) / (p - q), with n_v plugged in.
    """
    support = np.asarray(support, np.float64)
    counts = (support - n * q) / (p - q)
    var = n * q * (1 - q) / (p - q) ** 2 + np.clip(counts, 0, None) * (1 - p - q) / (p - q)
    return Estimate(counts, np.sqrt(np.clip(var, 0, None)), n)


def grr_estimate(values: np.ndarray, k: int, epsilon: float) -> Estimate:
    values = np.asarray(values, np.int64)
    p = keep_probability(epsilon, k)
    return debias(np.bincount(values, minlength=k)[:k], len(values), p, (1 - p) / (k - 1))


def olh_support(a: np.ndarray, b: np.ndarray, g: int, y: np.ndarray, domain: int, prime: int = PRIME,
                chunk: int = 2048) -> np.ndarray:
    """How many reports support each value in [0, domain): those whose hash sends the value to their bucket."""
    values = np.arange(domain, dtype=np.int64)
    support = np.zeros(domain, np.int64)
    for start in range(0, len(y), chunk):
        sa, sb, sy = (np.asarray(x[start:start + chunk], np.int64)[:, None] for x in (a, b, y))
        support += (((sa * values[None, :] + sb) % prime) % g == sy).sum(axis=0)
    return support


def laplace_variance(scale: int) -> float:
    """Variance of discrete Laplace noise with P(y) proportional to exp(-|y| / scale)."""
    q = math.exp(-1.0 / scale)
    return 2 * q / (1 - q) ** 2


def olh_estimate(support: np.ndarray, n: int, epsilon: float) -> Estimate:
    g = olh_buckets(epsilon)
    return debias(support, n, keep_probability(epsilon, g), 1.0 / g)
