"""Privacy accounting of DP-FedAvg with the dp-accounting library (Google's, maintained).

Each round samples every device independently with probability q (Poisson
sampling) and adds Gaussian noise of standard deviation sigma * clip to the
sum of the clipped updates: a Poisson-sampled Gaussian mechanism with noise
multiplier sigma, composed over the rounds. Its (epsilon, delta) is
user-level: it bounds what the released tables reveal about any one device's
whole history, whichever rounds it took part in.
"""

from __future__ import annotations

import logging
import math
import numbers
from contextlib import contextmanager
from dataclasses import dataclass

from edgerec.errors import ConfigError

ACCOUNTANTS = ("rdp", "pld")


@contextmanager
def _quiet():
    """The RDP accountant warns for every fractional order whose series does not converge (it drops
    those orders; q = 0.5 at sigma = 1 has some): expected, and not news to a person reading the run."""
    log = logging.getLogger("absl")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _accountant(kind: str):
    """A fresh accountant of a kind `_check` accepted."""
    from dp_accounting import pld, rdp

    if kind == "rdp":
        return rdp.RdpAccountant()
    return pld.PLDAccountant(value_discretization_interval=1e-3)


def _event(noise_multiplier: float, q: float, rounds: int):
    from dp_accounting import dp_event

    step = dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(noise_multiplier))
    return dp_event.SelfComposedDpEvent(step, rounds)


def _number(name: str, value) -> float:
    """`value` as a float; a bool is refused (True would pass as 1) and so is text."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number (got {type(value).__name__})")
    return float(value)


def _check(q: float, rounds: int, delta: float, accountant: str) -> tuple[float, int, float]:
    """Refuse what no accounting covers; (q, rounds, delta) as the accountant takes them."""
    if isinstance(rounds, bool) or not isinstance(rounds, numbers.Integral):
        raise ConfigError(f"rounds must be a whole number (got {type(rounds).__name__})")
    q, delta = _number("the sampling rate q", q), _number("delta", delta)
    if not (0 < q <= 1 and rounds >= 1 and 0 < delta < 1):
        raise ConfigError(f"accounting needs 0 < q <= 1, rounds >= 1 and 0 < delta < 1 (got q={q}, "
                          f"rounds={rounds}, delta={delta})")
    if accountant not in ACCOUNTANTS:
        raise ConfigError(f"unknown accountant {accountant!r}; use one of {', '.join(ACCOUNTANTS)}")
    return q, int(rounds), delta


def spent_epsilon(noise_multiplier: float, q: float, rounds: int, delta: float, accountant: str = "rdp") -> float:
    """Epsilon of `rounds` rounds at sampling rate q and this noise multiplier, for `delta`
    (infinite without noise: nothing is then promised)."""
    q, rounds, delta = _check(q, rounds, delta, accountant)
    sigma = _number("the noise multiplier", noise_multiplier)
    if not 0 <= sigma < math.inf:
        raise ConfigError(f"the noise multiplier must be finite and >= 0 (got {noise_multiplier})")
    if sigma == 0:
        return math.inf
    acc = _accountant(accountant)
    with _quiet():  # the RDP orders are computed when the event is composed
        acc.compose(_event(sigma, q, rounds))
        return float(acc.get_epsilon(delta))


LEAST_NOISE = 0.05  # where the search starts: a target met with less noise promises next to nothing


def noise_for(epsilon: float, delta: float, q: float, rounds: int, accountant: str = "rdp") -> float:
    """The smallest noise multiplier (to 0.001) whose rounds spend at most `epsilon`."""
    from dp_accounting import mechanism_calibration as calibration

    q, rounds, delta = _check(q, rounds, delta, accountant)
    target = _number("the target epsilon", epsilon)
    if not 0 < target < math.inf:
        raise ConfigError(f"the target epsilon must be positive and finite (got {epsilon})")
    guess = 1.0
    try:
        with _quiet():
            return float(calibration.calibrate_dp_mechanism(
                lambda: _accountant(accountant), lambda sigma: _event(sigma, q, rounds), target, delta,
                calibration.LowerEndpointAndGuess(LEAST_NOISE, guess), tol=1e-3))
    except calibration.NoBracketIntervalFoundError:
        # the search failed upward from (LEAST_NOISE, guess), both on one side of the target: the guess
        # tells which side (it is cheaper to account than LEAST_NOISE, for PLD by seconds)
        if spent_epsilon(guess, q, rounds, delta, accountant) <= target:
            raise ConfigError(f"target epsilon {target} is met with a noise multiplier below {LEAST_NOISE}, which "
                              f"protects next to nothing; ask for a smaller epsilon") from None
        raise ConfigError(f"no noise multiplier reaches target epsilon {target} over {rounds} rounds at delta "
                          f"{delta}; ask for a larger epsilon or delta, or fewer rounds") from None


@dataclass(frozen=True)
class DPPlan:
    """What a DP-FedAvg run promises: (epsilon, delta) over `rounds` rounds at sampling rate q."""

    epsilon: float
    delta: float
    q: float
    rounds: int
    clip: float
    accountant: str = "rdp"

    def __post_init__(self):
        _check(self.q, self.rounds, self.delta, self.accountant)
        for name, value in (("epsilon", self.epsilon), ("clip", self.clip)):
            if not 0 < _number(name, value) < math.inf:
                raise ConfigError(f"a DP plan needs a positive, finite {name} (got {value})")

    def noise_multiplier(self) -> float:
        return noise_for(self.epsilon, self.delta, self.q, self.rounds, self.accountant)

    def describe(self, noise_multiplier: float) -> dict:
        """The plan as a manifest records it (metrics.federated.dp), with the epsilon actually spent."""
        if not _number("the noise multiplier", noise_multiplier) > 0:
            raise ConfigError(f"a DP run needs noise (got a noise multiplier of {noise_multiplier}); "
                              "without it, record the run as FedAvg")
        return {"epsilon": spent_epsilon(noise_multiplier, self.q, self.rounds, self.delta, self.accountant),
                "target_epsilon": float(self.epsilon), "delta": float(self.delta),
                "noise_multiplier": float(noise_multiplier), "clip": float(self.clip), "sampling_rate": float(self.q),
                "rounds": int(self.rounds),
                "accountant": f"dp-accounting {self.accountant}, Poisson-sampled Gaussian, user level"}
