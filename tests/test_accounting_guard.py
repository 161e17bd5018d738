"""Guards of the epsilon a DP-FedAvg deployment reports (federated/accounting.py).

A wrong epsilon is a false privacy claim, so the values are checked against oracles built here:
dp-accounting's accountants called directly, and for q = 1 (no sampling) the closed form of the
Gaussian mechanism (Balle and Wang 2018), which no accountant computes for us. Inputs no
accounting covers must be refused with a ConfigError, never turned into a number.
"""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from dp_accounting import dp_event, pld, rdp
from scipy.optimize import brentq
from scipy.stats import norm

from edgerec.errors import ConfigError, EdgerecError
from edgerec.federated.accounting import DPPlan, noise_for, spent_epsilon

DELTA = 1e-6


def gaussian_epsilon(sigma: float, rounds: int, delta: float) -> float:
    """Exact epsilon of `rounds` Gaussian mechanisms of sensitivity 1 and noise sigma: together one
    Gaussian mechanism with mu = sqrt(rounds) / sigma, whose delta(eps) has a closed form."""
    mu = math.sqrt(rounds) / sigma
    return brentq(lambda e: norm.cdf(-e / mu + mu / 2) - math.exp(e) * norm.cdf(-e / mu - mu / 2) - delta, 0, 500)


def oracle(sigma: float, q: float, rounds: int, delta: float, kind: str, interval: float = 1e-3) -> float:
    """dp-accounting used directly: one sampled Gaussian step composed `rounds` times."""
    acc = rdp.RdpAccountant() if kind == "rdp" else pld.PLDAccountant(value_discretization_interval=interval)
    acc.compose(dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)), rounds)
    return acc.get_epsilon(delta)


@pytest.mark.parametrize("sigma, q, rounds", [(1.0, 0.5, 3), (2.0, 0.1, 10), (0.8, 1.0, 2)])
def test_rdp_epsilon_is_dp_accountings_own(sigma, q, rounds):
    assert spent_epsilon(sigma, q, rounds, DELTA) == pytest.approx(oracle(sigma, q, rounds, DELTA, "rdp"), rel=1e-12)
    assert spent_epsilon(sigma, q, rounds, DELTA, "rdp") == spent_epsilon(sigma, q, rounds, DELTA)


def test_pld_epsilon_is_dp_accountings_and_never_below_a_finer_grid():
    got = spent_epsilon(1.0, 0.5, 3, DELTA, "pld")
    assert got == pytest.approx(oracle(1.0, 0.5, 3, DELTA, "pld"), rel=1e-12)
    finer = oracle(1.0, 0.5, 3, DELTA, "pld", interval=1e-4)
    assert finer <= got <= finer + 0.01  # the coarser grid rounds the privacy loss up, by little


@pytest.mark.parametrize("sigma, rounds", [(1.0, 1), (2.0, 4), (5.0, 10), (3.0, 1)])
def test_without_sampling_both_accountants_bound_the_exact_gaussian_epsilon(sigma, rounds):
    exact = gaussian_epsilon(sigma, rounds, DELTA)
    assert exact <= spent_epsilon(sigma, 1.0, rounds, DELTA, "pld") <= exact + 1e-3  # PLD is tight
    assert exact <= spent_epsilon(sigma, 1.0, rounds, DELTA, "rdp") <= 1.1 * exact  # RDP is an upper bound


def test_epsilon_grows_with_rounds_and_sampling_rate_and_falls_with_noise():
    by_q = [spent_epsilon(1.0, q, 5, DELTA) for q in (0.01, 0.1, 0.5, 1.0)]
    assert all(a < b for a, b in zip(by_q, by_q[1:]))
    by_rounds = [spent_epsilon(1.5, 0.5, r, DELTA) for r in (1, 2, 8)]
    assert all(a < b for a, b in zip(by_rounds, by_rounds[1:]))
    by_delta = [spent_epsilon(1.5, 0.5, 4, d) for d in (1e-9, 1e-6, 1e-3)]
    assert all(a > b for a, b in zip(by_delta, by_delta[1:]))
    assert spent_epsilon(0.0, 0.5, 4, DELTA) == math.inf  # no noise: nothing is promised
    assert spent_epsilon(1e-9, 1.0, 1, DELTA) > 1e6  # the smallest noise is still accounted, not zero


def test_numpy_numbers_count_as_the_plain_ones():
    plain = spent_epsilon(1.0, 0.5, 3, DELTA)
    assert spent_epsilon(np.float32(1.0), np.float64(0.5), np.int64(3), np.float64(DELTA)) == plain


@pytest.mark.parametrize("eps, q, rounds, kind", [(2.0, 1.0, 2, "rdp"), (4.0, 0.5, 3, "rdp"), (1.0, 1.0, 1, "pld")])
def test_the_noise_for_a_target_keeps_it_and_is_the_least_that_does(eps, q, rounds, kind):
    sigma = noise_for(eps, DELTA, q, rounds, kind)
    assert spent_epsilon(sigma, q, rounds, DELTA, kind) <= eps  # never more than promised
    assert spent_epsilon(sigma - 1.1e-3, q, rounds, DELTA, kind) > eps  # and to 0.001 the least noise
    assert oracle(sigma, q, rounds, DELTA, kind) <= eps
    plan = DPPlan(eps, DELTA, q, rounds, 1.0, kind)
    assert plan.noise_multiplier() == sigma
    assert plan.describe(sigma)["epsilon"] == spent_epsilon(sigma, q, rounds, DELTA, kind)


def test_a_target_that_needs_next_to_no_noise_or_more_than_any_is_refused():
    with pytest.raises(ConfigError, match=r"target epsilon 1000.0 is met with a noise multiplier below 0.05.*smaller"):
        noise_for(1000.0, DELTA, 1.0, 1)
    assert noise_for(200.0, DELTA, 1.0, 1) > 0.05  # still reachable
    with pytest.raises(ConfigError, match=r"no noise multiplier reaches target epsilon 0.001 over 1000000000000 rounds"):
        noise_for(1e-3, DELTA, 1.0, 10**12)


def test_the_plan_describes_what_was_spent_in_plain_json():
    plan = DPPlan(np.float32(4.0), np.float64(DELTA), np.float64(0.5), np.int64(3), np.float32(1.5))
    got = plan.describe(np.float32(1.75))
    assert got == {"epsilon": oracle(1.75, 0.5, 3, DELTA, "rdp"), "target_epsilon": 4.0, "delta": DELTA,
                   "noise_multiplier": 1.75, "clip": 1.5, "sampling_rate": 0.5, "rounds": 3,
                   "accountant": "dp-accounting rdp, Poisson-sampled Gaussian, user level"}
    assert [type(got[k]) for k in ("epsilon", "target_epsilon", "delta", "noise_multiplier", "clip",
                                   "sampling_rate", "rounds")] == [float] * 6 + [int]
    assert json.loads(json.dumps(got, allow_nan=False)) == got
    assert DPPlan(4.0, DELTA, 0.5, 3, 1.5, "pld").describe(1.75)["accountant"].startswith("dp-accounting pld,")
    assert DPPlan(4.0, DELTA, 0.5, 3, 1.5, "pld").describe(1.75)["epsilon"] == oracle(1.75, 0.5, 3, DELTA, "pld")
    assert plan.describe(0.5)["epsilon"] == oracle(0.5, 0.5, 3, DELTA, "rdp")  # little noise is still noise
    for none in (0.0, -1.0, float("nan")):  # a "DP" run without noise promises nothing: no epsilon to publish
        with pytest.raises(ConfigError, match=r"a DP run needs noise \(got a noise multiplier of .*\); without it, "
                                              "record the run as FedAvg"):
            plan.describe(none)
    for word in ("1.6", True):
        with pytest.raises(ConfigError, match="the noise multiplier must be a number"):
            plan.describe(word)


GOOD = dict(noise_multiplier=1.0, q=0.5, rounds=3, delta=DELTA, accountant="rdp")
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("bad, message", [
    (dict(q=0.0), r"0 < q <= 1, rounds >= 1 and 0 < delta < 1 \(got q=0.0, rounds=3, delta=1e-06\)"),
    (dict(q=-0.5), "0 < q <= 1"), (dict(q=1.0000001), "0 < q <= 1"), (dict(q=NAN), "got q=nan"),
    (dict(q=INF), "got q=inf"), (dict(q=True), r"the sampling rate q must be a number \(got bool\)"),
    (dict(q="0.5"), "q must be a number"), (dict(q=None), "q must be a number"),
    (dict(rounds=0), "rounds=0"), (dict(rounds=-2), "rounds=-2"), (dict(rounds=1.5), r"rounds must be a whole number \(got float\)"),
    (dict(rounds=2.0), "whole number"), (dict(rounds=True), "whole number"), (dict(rounds=NAN), "whole number"),
    (dict(delta=0.0), "delta=0.0"), (dict(delta=1.0), "delta=1.0"), (dict(delta=1.5), "delta=1.5"),
    (dict(delta=-1e-6), "delta=-1e-06"), (dict(delta=NAN), "delta=nan"), (dict(delta=True), "delta must be a number"),
    (dict(accountant="gdp"), "unknown accountant 'gdp'; use one of rdp, pld"), (dict(accountant="RDP"), "'RDP'"),
    (dict(accountant=None), "unknown accountant None"),
    (dict(noise_multiplier=NAN), r"noise multiplier must be finite and >= 0 \(got nan\)"),
    (dict(noise_multiplier=INF), "finite and >= 0"), (dict(noise_multiplier=-0.5), r"\(got -0.5\)"),
    (dict(noise_multiplier=True), "the noise multiplier must be a number"),
    (dict(noise_multiplier="1"), "must be a number"),
])
def test_what_no_accounting_covers_is_refused_by_spent_epsilon(bad, message):
    with pytest.raises(ConfigError, match=message):
        spent_epsilon(**(GOOD | bad))
    if "noise_multiplier" not in bad:  # refused without noise too: not an infinite epsilon
        with pytest.raises(ConfigError, match=message):
            spent_epsilon(**(GOOD | bad | {"noise_multiplier": 0.0}))


@pytest.mark.parametrize("bad, message", [
    (dict(epsilon=0.0), r"target epsilon must be positive and finite \(got 0.0\)"), (dict(epsilon=-1.0), "positive"),
    (dict(epsilon=NAN), "got nan"), (dict(epsilon=INF), "got inf"),
    (dict(epsilon=True), "the target epsilon must be a number"), (dict(epsilon="4"), "must be a number"),
    (dict(q=1.5), "0 < q <= 1"), (dict(rounds=0), "rounds=0"), (dict(rounds=True), "whole number"),
    (dict(delta=1.0), "delta=1.0"), (dict(accountant="gdp"), "unknown accountant"),
])
def test_what_no_accounting_covers_is_refused_by_noise_for(bad, message):
    with pytest.raises(ConfigError, match=message):
        noise_for(**(dict(epsilon=4.0, delta=DELTA, q=0.5, rounds=3, accountant="rdp") | bad))


@pytest.mark.parametrize("bad, message", [
    (dict(epsilon=0.0), r"a DP plan needs a positive, finite epsilon \(got 0.0\)"), (dict(epsilon=INF), "epsilon"),
    (dict(epsilon=NAN), "epsilon"), (dict(epsilon=True), "epsilon must be a number"),
    (dict(clip=0.0), r"positive, finite clip \(got 0.0\)"), (dict(clip=-1.0), "clip"), (dict(clip=INF), "clip"),
    (dict(clip=NAN), "clip"), (dict(clip="1"), "clip must be a number"),
    (dict(q=0.0), "0 < q <= 1"), (dict(rounds=0), "rounds=0"), (dict(rounds=2.5), "whole number"),
    (dict(delta=0.0), "delta=0.0"), (dict(accountant="moments"), "unknown accountant 'moments'"),
])
def test_a_plan_no_accounting_covers_is_refused_when_made(bad, message):
    with pytest.raises(ConfigError, match=message) as caught:
        DPPlan(**(dict(epsilon=4.0, delta=DELTA, q=0.5, rounds=3, clip=1.0) | bad))
    assert isinstance(caught.value, EdgerecError)


def test_the_accountants_warnings_stay_quiet_and_the_log_level_comes_back():
    """RDP warns for every order it drops (q = 0.5, sigma = 1 has some): not news. The caller's level is kept."""
    log, seen = logging.getLogger("absl"), []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    keep, level = Keep(logging.DEBUG), log.level
    log.addHandler(keep)
    log.setLevel(logging.INFO)
    try:
        spent_epsilon(1.0, 0.5, 3, DELTA)
        assert seen == [] and log.level == logging.INFO
        with pytest.raises(ConfigError):
            noise_for(1000.0, DELTA, 1.0, 1)
        assert log.level == logging.INFO
        oracle(1.0, 0.5, 3, DELTA, "rdp")
        assert seen  # the warnings exist: quiet is what the accounting makes them
    finally:
        log.removeHandler(keep)
        log.setLevel(level)
