"""The shuffling bounds' parts by hand (their mutation runs asked for these; tools/mutation-scores.md): the
binomial pieces of the numeric sum against exact binomials, the bisection's steps, the degenerate epsilon0,
and the promise's every bound and message."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime.shuffle import AMPLIFIED, Shuffled, largest_local_epsilon, shuffled_epsilon
from edgerec.runtime.shuffle_numeric import (
    MAX_CELLS,
    _binomial_log_pmf,
    _half_binomial,
    numeric_epsilon,
    shuffle_delta,
)


def test_the_binomial_log_pmf_by_hand():
    n, p = 20, 0.3
    got = _binomial_log_pmf(n, p, 3, 12)
    expected = [math.log(math.comb(n, k) * p ** k * (1 - p) ** (n - k)) for k in range(3, 13)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(_binomial_log_pmf(5, 0.5, 0, 5), [math.log(math.comb(5, k) / 32) for k in range(6)],
                               rtol=1e-12)


def test_the_half_binomial_by_hand_and_zero_outside():
    c = np.array([0, 3, 6])
    a = np.array([[-1, 0, 1, 2], [-1, 0, 3, 4], [2, 3, 6, 7]])
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, 8)))])
    expected = [[math.comb(cc, aa) / 2 ** cc if 0 <= aa <= cc else 0.0 for aa in row] for cc, row in zip(c, a)]
    np.testing.assert_allclose(_half_binomial(c, a, log_fact), expected, rtol=1e-12, atol=0)


def test_a_vanishing_local_epsilon_reveals_nothing():
    # e^-epsilon0 rounds to 1: every other report is a clone, P = Q, so no divergence at any epsilon
    assert shuffle_delta(1e-300, 1000, 0.0) == pytest.approx(0.0, abs=1e-12)
    assert shuffle_delta(1e-17, 50, 0.1) == pytest.approx(0.0, abs=1e-12)


def test_numeric_epsilon_bisects_from_zero_to_the_local_epsilon():
    e0, n, delta = 4.0, 100_000, 1e-7
    half = shuffle_delta(e0, n, e0 / 2)
    assert half <= delta  # so one step halves the interval from above
    assert numeric_epsilon(e0, n, delta, steps=1) == e0 / 2
    assert numeric_epsilon(e0, n, delta, steps=2) == (e0 / 4 if shuffle_delta(e0, n, e0 / 4) <= delta else e0 / 2)
    assert numeric_epsilon(e0, n, delta, steps=0) == e0  # no step: the local epsilon itself
    fine = numeric_epsilon(e0, n, delta)
    assert shuffle_delta(e0, n, fine) <= delta < shuffle_delta(e0, n, fine - e0 / 2 ** 39)


def test_largest_local_epsilon_by_hand_and_the_bound_up_to_it():
    assert largest_local_epsilon(300_000, 1e-7) == pytest.approx(math.log(300_000 / (16 * math.log(4e7))), rel=1e-15)
    limit = largest_local_epsilon(100_000, 1e-6)
    assert shuffled_epsilon(limit, 100_000, 1e-6) < limit  # the limit itself is covered
    with pytest.raises(ConfigError) as error:
        shuffled_epsilon(limit + 1e-9, 100_000, 1e-6)
    assert str(error.value).startswith(f"a local epsilon of {limit + 1e-9:g} is outside what the shuffling bound "
                                       "covers for 100,000 reports at delta 1e-06 (at most")


def test_the_promise_bounds():
    for batch, delta, max_local in ((1, 0.5, 8.0), (10, 0.0999, 20.0), (10**9, 1e-100, 1e-9)):
        Shuffled(batch, delta, max_local)
    bad = [(True, 1e-7, 8.0), (2.0, 0.1, 8.0), (0, 1e-7, 8.0), (10, 0.1, 8.0), (10, 1e-7, 0.0), (10, 1e-7, 20.5),
           (10, 1e-101, 8.0), (10, 1.5, 8.0)]
    for batch, delta, max_local in bad:
        with pytest.raises(ConfigError):
            Shuffled(batch, delta, max_local)
    with pytest.raises(ConfigError) as error:
        Shuffled(10, 0.1)
    assert str(error.value) == ("a shuffle needs a positive batch, 0 < delta < 1/batch and 0 < max_local <= 20 "
                                "(got batch 10, delta 0.1, max_local 8.0)")
    with pytest.raises(ConfigError, match="^Shuffled.delta must be"):
        Shuffled(10, 0.0)
    with pytest.raises(ConfigError, match="^Shuffled.max_local must be"):
        Shuffled(10, 1e-7, -1.0)
    with pytest.raises(ConfigError, match=r"^Shuffled.delta must be a finite number from 1e-100 up to 1 \(got 1.5\)"):
        Shuffled(10, 1.5)
    with pytest.raises(ConfigError, match=r"^Shuffled.max_local must be a finite number from 0 up to 20 \(got 20.5\)"):
        Shuffled(10, 1e-7, 20.5)
    assert Shuffled(np.int64(300)).describe() == {"batch": 300, "delta": 1e-7}
    assert type(Shuffled(np.int64(300)).batch) is int


def test_too_little_amplification_is_refused_and_just_enough_is_not():
    assert AMPLIFIED == 1.01
    shuffle = Shuffled(200)
    local = shuffle.local_epsilon(1.0)
    assert local >= 1.0 * AMPLIFIED
    with pytest.raises(ConfigError) as error:
        Shuffled(30).local_epsilon(1.0)
    assert str(error.value) == ("a shuffled batch of 30 reports is too small to amplify privacy at delta 1e-07; "
                                "report without a shuffle, or promise a larger batch")


def test_the_central_epsilon_is_the_smallest_bound():
    shuffle = Shuffled(100_000, 1e-6)
    closed = shuffled_epsilon(4.0, 100_000, 1e-6)
    numeric = numeric_epsilon(4.0, 100_000, 1e-6)
    assert shuffle.central_epsilon(4.0) == min(closed, numeric, 4.0) == numeric
    beyond = largest_local_epsilon(100_000, 1e-6) + 0.5  # past the closed form: the sum alone
    assert shuffle.central_epsilon(beyond) == numeric_epsilon(beyond, 100_000, 1e-6)
    assert Shuffled(10, 1e-3).central_epsilon(0.5) == min(0.5, numeric_epsilon(0.5, 10, 1e-3))


def test_where_the_sum_declines_the_closed_form_alone_sets_the_local_epsilon():
    # 10 million reports at delta 1e-9: the numeric sum is too long for these epsilon0, so the closed form
    # decides, and the local epsilon is the largest whose closed-form central epsilon is the one asked for
    shuffle = Shuffled(10**7, delta=1e-9)
    for central in (0.05, 0.1):
        local = shuffle.local_epsilon(central)
        assert shuffle_delta(local, 10**7, central) is None
        assert shuffled_epsilon(local, 10**7, 1e-9) == pytest.approx(central, rel=1e-9)
        assert shuffled_epsilon(local, 10**7, 1e-9) <= central


def test_the_sums_run_up_to_max_cells_and_decline_just_past_them():
    # Worked out by hand from the windows of the module docstring, at epsilon0 = 0.01044: 153330 reports sum
    # 640 values of C times 3125 of a, 2_000_000 cells, MAX_CELLS exactly; 153417 reports need 640 x 3127 =
    # 2_001_280, one more value of a on each side, and the caller falls back to the closed form.
    assert MAX_CELLS == 2_000_000
    at_edge = shuffle_delta(0.01044, 153330, 0.005)
    assert at_edge is not None and 0.0 <= at_edge <= 1.0
    assert shuffle_delta(0.01044, 153417, 0.005) is None
    assert numeric_epsilon(0.01044, 153417, 1e-6) is None
