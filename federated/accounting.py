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
from contextlib import contextmanager
from dataclasses import dataclass

from edgerec.errors import ConfigError

ACCOUNTANTS = ("rdp", "pld")


@contextmanager
def _quiet():
    """The RDP accountant warns for every order that does not converge (it drops those orders):
    expected at small sampling rates, and not news to a person reading the run."""
    log = logging.getLogger("absl")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _accountant(kind: str):
    from dp_accounting import pld, rdp

    if kind == "rdp":
        return rdp.RdpAccountant()
    if kind == "pld":
        return pld.PLDAccountant(value_discretization_interval=1e-3)
    raise ConfigError(f"unknown accountant {kind!r}; use one of {', '.join(ACCOUNTANTS)}")


def _event(noise_multiplier: float, q: float, rounds: int):
    from dp_accounting import dp_event

    step = dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(noise_multiplier))
    return dp_event.SelfComposedDpEvent(step, rounds)


def _check(q: float, rounds: int, delta: float) -> None:
    if not (0 < q <= 1 and rounds >= 1 and 0 < delta < 1):
        raise ConfigError(f"accounting needs 0 < q <= 1, rounds >= 1 and 0 < delta < 1 (got q={q}, "
                          f"rounds={rounds}, delta={delta})")


def spent_epsilon(noise_multiplier: float, q: float, rounds: int, delta: float, accountant: str = "rdp") -> float:
    """Epsilon of `rounds` rounds at sampling rate q and this noise multiplier, for `delta`."""
    _check(q, rounds, delta)
    if not noise_multiplier > 0:
        return float("inf")
    acc = _accountant(accountant)
    with _quiet():  # the RDP orders are computed when the event is composed
        acc.compose(_event(noise_multiplier, q, rounds))
        return float(acc.get_epsilon(delta))


def noise_for(epsilon: float, delta: float, q: float, rounds: int, accountant: str = "rdp") -> float:
    """The smallest noise multiplier (to 0.1%) whose rounds spend at most `epsilon`."""
    from dp_accounting import mechanism_calibration as calibration

    _check(q, rounds, delta)
    if not epsilon > 0:
        raise ConfigError(f"target epsilon must be positive (got {epsilon})")
    with _quiet():
        return float(calibration.calibrate_dp_mechanism(
            lambda: _accountant(accountant), lambda sigma: _event(sigma, q, rounds), epsilon, delta,
            calibration.LowerEndpointAndGuess(0.05, 1.0), tol=1e-3))


@dataclass(frozen=True)
class DPPlan:
    """What a DP-FedAvg run promises: (epsilon, delta) over `rounds` rounds at sampling rate q."""

    epsilon: float
    delta: float
    q: float
    rounds: int
    clip: float
    accountant: str = "rdp"

    def noise_multiplier(self) -> float:
        return noise_for(self.epsilon, self.delta, self.q, self.rounds, self.accountant)

    def describe(self, noise_multiplier: float) -> dict:
        """The plan as a manifest records it (metrics.federated.dp), with the epsilon actually spent."""
        return {"epsilon": spent_epsilon(noise_multiplier, self.q, self.rounds, self.delta, self.accountant),
                "target_epsilon": self.epsilon, "delta": self.delta, "noise_multiplier": noise_multiplier,
                "clip": self.clip, "sampling_rate": self.q, "rounds": self.rounds,
                "accountant": f"dp-accounting {self.accountant}, Poisson-sampled Gaussian, user level"}
