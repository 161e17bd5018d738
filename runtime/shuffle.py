"""Reports meant for a shuffler: the local epsilon that n shuffled reports turn into a smaller central one.

When an app sends its reports through an anonymizing shuffler (a separate party that
strips senders and mixes at least `batch` reports from distinct devices before the host
sees any of them), the host sees an unordered batch, and each device's privacy against
the host is far better than its local epsilon (privacy amplification by shuffling).
The bound used is the closed form of Feldman, McMillan and Talwar ("Hiding among the
clones", FOCS 2021, arXiv 2012.12803) in its conservative variant; it holds for any
epsilon0-LDP randomizer when epsilon0 <= log(n / (16 log(4/delta))).

Against the shuffler itself, or if it mixes fewer reports than promised, a report is
only epsilon0-LDP: the local epsilon is recorded beside the central one and capped.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from edgerec.errors import ConfigError
from edgerec.runtime.ldp import check_epsilon


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
        if not (isinstance(self.batch, numbers.Integral) and not isinstance(self.batch, bool) and self.batch > 0 and 0 < self.delta < 1 / self.batch
                and 0 < self.max_local <= 20):
            raise ConfigError(f"a shuffle needs a positive batch, 0 < delta < 1/batch and 0 < max_local <= 20 "
                              f"(got batch {self.batch}, delta {self.delta}, max_local {self.max_local})")
        object.__setattr__(self, "batch", int(self.batch))  # numpy integers too; reports stay plain JSON

    def local_epsilon(self, central: float) -> float:
        """The largest epsilon0 (at most max_local) whose shuffled batch is at most `central`-DP."""
        central = check_epsilon(central)
        top = min(largest_local_epsilon(self.batch, self.delta), self.max_local)
        if top <= 0:
            raise ConfigError(f"a shuffled batch of {self.batch:,} reports is too small to amplify privacy at delta "
                              f"{self.delta:g}; report without a shuffle, or promise a larger batch")
        if shuffled_epsilon(top, self.batch, self.delta) <= central:
            return top
        low, high = 0.0, top  # shuffled_epsilon grows with epsilon0: bisect for the boundary
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (middle, high) if shuffled_epsilon(middle, self.batch, self.delta) <= central else (low, middle)
        return low

    def describe(self) -> dict:
        return {"batch": self.batch, "delta": self.delta}
