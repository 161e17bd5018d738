"""Reports meant for a shuffler: the local epsilon that n shuffled reports turn into a smaller central one.

When an app sends its reports through an anonymizing shuffler (a separate party that
strips senders and mixes at least `batch` reports from distinct devices before the host
sees any of them), the host sees an unordered batch, and each device's privacy against
the host is far better than its local epsilon (privacy amplification by shuffling).
The bound is Feldman, McMillan and Talwar's ("Hiding among the clones", FOCS 2021, arXiv
2012.12803): its closed form (conservative variant; it holds for any epsilon0-LDP
randomizer when epsilon0 <= log(n / (16 log(4/delta)))) and, tighter, the same theorem
summed numerically (shuffle_numeric.py); a batch gets the smaller of the two. At 300,000
reports, delta 1e-7 and a central epsilon of 1 the closed form allows a local epsilon of
6.65, the sum 7.97.

Against the shuffler itself, or if it mixes fewer reports than promised, a report is
only epsilon0-LDP: the local epsilon is recorded beside the central one and capped.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import lru_cache

from edgerec.errors import ConfigError
from edgerec.runtime import checks
from edgerec.runtime.ldp import check_epsilon
from edgerec.runtime.shuffle_numeric import numeric_epsilon, shuffle_delta


def largest_local_epsilon(batch: int, delta: float) -> float:
    """The largest epsilon0 for which the bound holds for `batch` reports (may be <= 0: no amplification)."""
    return math.log(batch / (16 * math.log(4 / delta)))


def shuffled_epsilon(local_epsilon: float, batch: int, delta: float) -> float:
    """Central epsilon (at `delta`) of `batch` shuffled local_epsilon-LDP reports."""
    if local_epsilon > largest_local_epsilon(batch, delta) + 1e-12:
        raise ConfigError(f"a local epsilon of {local_epsilon:g} is outside what the shuffling bound covers for "
                          f"{batch:,} reports at delta {delta:g} (at most {largest_local_epsilon(batch, delta):.3g})")
    e0 = math.exp(local_epsilon)
    spread = 8 * math.sqrt(e0 * math.log(4 / delta) / batch) + 8 * e0 / batch
    damp = (1 - 1 / e0) / (1 + math.exp(-local_epsilon - math.log1p(spread)))
    return math.log1p(damp * spread)


@dataclass(frozen=True)
class Shuffled:
    """The app's promise that reports reach the host only in shuffled batches of at least `batch`.

    delta: the central guarantee's delta (keep it well below 1 / batch); max_local: the most a
    single report may reveal to whoever sees it before shuffling (Apple's published per-day
    budgets are local epsilons of 4 to 8).
    """

    batch: int
    delta: float = 1e-7
    max_local: float = 8.0

    def __post_init__(self):
        checks.number(self.delta, "Shuffled.delta", 1e-100, 1.0)  # a denormal delta broke the bound's logs
        checks.number(self.max_local, "Shuffled.max_local", 0.0, 20.0)
        if not (isinstance(self.batch, numbers.Integral) and not isinstance(self.batch, bool) and self.batch > 0 and 0 < self.delta < 1 / self.batch
                and 0 < self.max_local <= 20):
            raise ConfigError(f"a shuffle needs a positive batch, 0 < delta < 1/batch and 0 < max_local <= 20 "
                              f"(got batch {self.batch}, delta {self.delta}, max_local {self.max_local})")
        object.__setattr__(self, "batch", int(self.batch))  # numpy integers too; reports stay plain JSON

    def local_epsilon(self, central: float) -> float:
        """The largest epsilon0 (at most max_local) whose shuffled batch is at most `central`-DP."""
        return _largest_local(self.batch, self.delta, self.max_local, check_epsilon(central))

    def central_epsilon(self, local: float) -> float:
        """The central epsilon (at this delta) of a batch of local-LDP reports: the tighter bound."""
        return _central(self.batch, self.delta, check_epsilon(local))

    def describe(self) -> dict:
        return {"batch": self.batch, "delta": self.delta}


AMPLIFIED = 1.01  # a local epsilon less than 1% above the central one is no amplification worth a shuffle


@lru_cache(maxsize=256)  # a pure function of its arguments; the numeric sums take up to a second
def _central(batch: int, delta: float, local: float) -> float:
    bounds = [local]  # shuffling never makes it worse
    if local <= largest_local_epsilon(batch, delta):
        bounds.append(shuffled_epsilon(local, batch, delta))
    numeric = numeric_epsilon(local, batch, delta)
    if numeric is not None:
        bounds.append(numeric)
    return min(bounds)


@lru_cache(maxsize=256)
def _largest_local(batch: int, delta: float, max_local: float, central: float) -> float:
    def within(local: float) -> bool:  # either bound proves the batch central-DP
        if local <= largest_local_epsilon(batch, delta) and shuffled_epsilon(local, batch, delta) <= central:
            return True
        bound = shuffle_delta(local, batch, central)
        return bound is not None and bound <= delta

    if within(max_local):
        return max_local
    low, high = central, max_local  # a local epsilon equal to the central one always holds
    for _ in range(40):  # both bounds grow with epsilon0: bisect for the boundary
        middle = (low + high) / 2
        low, high = (middle, high) if within(middle) else (low, middle)
    if low < central * AMPLIFIED:
        raise ConfigError(f"a shuffled batch of {batch:,} reports is too small to amplify privacy at delta "
                          f"{delta:g}; report without a shuffle, or promise a larger batch")
    return low
