"""Exact checks of runtime/ldp.py that its mutation run asked for: the production randomness, the
estimators' probabilities and variances by hand, the hash family and the grid (tools/mutation-scores.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import ldp


class FakeSecrets:
    """Stands in for the `secrets` module: scripted draws, and the argument of every call."""

    def __init__(self, bits=0, below=0):
        self.bits, self.below, self.calls = bits, below, []

    def randbits(self, k):
        self.calls.append(("randbits", k))
        return self.bits

    def randbelow(self, n):
        self.calls.append(("randbelow", n))
        return self.below


def test_secure_bernoulli_compares_53_random_bits_with_p_scaled_to_them(monkeypatch):
    rng = ldp.SecureRandomness()
    for p, bits, expected in ((0.25, (1 << 51) - 1, True), (0.25, 1 << 51, False),  # the threshold is p * 2^53
                              (0.0, 0, False), (1.0, (1 << 53) - 1, True), (0.5, 1 << 52, False)):
        fake = FakeSecrets(bits=bits)
        monkeypatch.setattr(ldp, "secrets", fake)
        assert rng.bernoulli(p) is expected, (p, bits)
        assert fake.calls == [("randbits", 53)]


def test_secure_below_asks_the_os_for_exactly_the_range(monkeypatch):
    fake = FakeSecrets(below=4)
    monkeypatch.setattr(ldp, "secrets", fake)
    assert ldp.SecureRandomness().below(7) == 4 and fake.calls == [("randbelow", 7)]
    monkeypatch.undo()
    draws = {ldp.SecureRandomness().below(3) for _ in range(300)}  # the real module: every value, none outside
    assert draws == {0, 1, 2}


def test_grr_estimate_by_hand():
    k, epsilon = 3, 1.0
    values = np.array([0, 0, 0, 1, 2, 2, 0, 1])
    p = math.e / (math.e + 2)
    q = (1 - p) / 2  # each other value's chance
    est = ldp.grr_estimate(values, k, epsilon)
    support = np.array([4, 2, 2])
    expected = (support - 8 * q) / (p - q)
    np.testing.assert_allclose(est.counts, expected, rtol=1e-12)
    var = 8 * q * (1 - q) / (p - q) ** 2 + np.clip(expected, 0, None) * (1 - p - q) / (p - q)
    np.testing.assert_allclose(est.stderr, np.sqrt(var), rtol=1e-12)
    assert est.reports == 8
    np.testing.assert_allclose(est.low, expected - 1.96 * np.sqrt(var), rtol=1e-12)
    np.testing.assert_allclose(est.high, expected + 1.96 * np.sqrt(var), rtol=1e-12)


@pytest.mark.parametrize("k, epsilon", [(2, 0.5), (5, 1.0), (20, 3.0)])
def test_grr_estimate_returns_the_truth_from_the_expected_reports(k, epsilon):
    """Debiasing the expected support of each value gives back the true counts exactly: a wrong keep or
    flip probability anywhere (device or host) would not."""
    truth = np.arange(1, k + 1) * 10
    n = int(truth.sum())
    p = ldp.keep_probability(epsilon, k)
    q = (1 - p) / (k - 1)
    expected_support = truth * p + (n - truth) * q
    np.testing.assert_allclose(ldp.debias(expected_support, n, p, q).counts, truth, rtol=1e-9)
    # grr_estimate reads its reports through the same p and q: reports shaped like the expectation
    reports = np.repeat(np.arange(k), np.round(expected_support * 1000).astype(int))
    np.testing.assert_allclose(ldp.grr_estimate(reports, k, epsilon).counts, truth * 1000, rtol=1e-3)


def test_grr_estimate_has_a_count_for_every_value_even_one_nobody_reported():
    est = ldp.grr_estimate(np.array([0, 0, 1]), 4, 1.0)
    assert est.counts.shape == (4,) and est.stderr.shape == (4,)
    p = ldp.keep_probability(1.0, 4)
    q = (1 - p) / 3
    counts = (np.array([2, 1, 0, 0]) - 3 * q) / (p - q)
    np.testing.assert_allclose(est.counts, counts, rtol=1e-12)
    assert counts[2] < 0  # a negative estimate adds no variance of its own (its n_v is taken as 0)
    var = 3 * q * (1 - q) / (p - q) ** 2 + np.clip(counts, 0, None) * (1 - p - q) / (p - q)
    np.testing.assert_allclose(est.stderr, np.sqrt(var), rtol=1e-12)


def test_one_report_has_a_standard_error_below_one():
    est = ldp.grr_estimate(np.array([1]), 2, 3.0)
    p = ldp.keep_probability(3.0, 2)
    assert est.stderr[0] == pytest.approx(math.sqrt((1 - p) * p / (2 * p - 1) ** 2), rel=1e-12)
    assert est.stderr[0] < 0.3


def test_grr_keeps_the_value_with_e_eps_over_e_eps_plus_k_minus_1():
    assert ldp.keep_probability(1.0, 2) == pytest.approx(math.e / (math.e + 1), rel=1e-15)
    assert ldp.keep_probability(2.0, 5) == pytest.approx(math.exp(2) / (math.exp(2) + 4), rel=1e-15)


def test_a_value_outside_the_domain_is_refused_before_any_draw():
    with pytest.raises(ConfigError) as error:
        ldp.grr(4, 4, 1.0, Scripted([], []))
    assert str(error.value) == "value 4 is outside the domain of 4 values"
    with pytest.raises(ConfigError) as error:
        ldp.olh(11, 1.0, Scripted([], []), prime=11)
    assert str(error.value) == "value 11 is outside the hash family's domain [0, 11)"
    assert ldp.grr(3, 4, 1.0, Scripted([], [True])) == 3


def test_olh_draws_a_from_1_to_prime_minus_1_and_b_from_0_to_prime_minus_1():
    for below, (a, b) in (([0, 0], (1, 0)), ([9, 10], (10, 10))):
        rng = Scripted(below, [True])
        h, y = ldp.olh(7, 1.0, rng, prime=11)
        assert (h.a, h.b, h.g, h.prime) == (a, b, 4, 11) and rng.calls == [10, 11]
        assert y == ((a * 7 + b) % 11) % 4  # kept: the value's own bucket


def test_olh_buckets_is_e_eps_plus_one_rounded_and_at_least_two():
    assert [ldp.olh_buckets(e) for e in (0.05, 0.5, 1.0, 2.0, 3.0)] == [2, 3, 4, 8, 21]


def test_olh_estimate_uses_the_bucket_probabilities():
    epsilon, n = 1.0, 1000
    g = 4
    p, q = math.e / (math.e + 3), 1 / g
    support = np.array([400.0, 250.0])
    est = ldp.olh_estimate(support, n, epsilon)
    np.testing.assert_allclose(est.counts, (support - n * q) / (p - q), rtol=1e-12)


def test_olh_support_counts_by_hand_across_chunks():
    rng = np.random.default_rng(4)
    prime, g, domain, n = ldp.PRIME, 5, 13, 23
    a = rng.integers(1, prime, n)
    b = rng.integers(0, prime, n)
    y = rng.integers(0, g, n)
    expected = np.array([sum(ldp.LocalHash(int(a[i]), int(b[i]), g)(v) == y[i] for i in range(n))
                         for v in range(domain)])
    for chunk in (1, 4, 23, 2048):
        support = ldp.olh_support(a, b, g, y, domain, chunk=chunk)
        np.testing.assert_array_equal(support, expected)
    assert expected.sum() > 0


def test_a_local_hash_maps_arrays_as_it_maps_numbers():
    h = ldp.LocalHash(a=PRIME_LARGE_A, b=12345, g=7)
    xs = np.array([0, 1, 99, 2_000_000_000, ldp.PRIME - 1], np.int32)
    assert h(xs).tolist() == [((PRIME_LARGE_A * int(x) + 12345) % ldp.PRIME) % 7 for x in xs]
    assert [h(int(x)) for x in xs] == h(xs).tolist()


PRIME_LARGE_A = ldp.PRIME - 2  # a * x overflows int32 (the array path widens to int64 first)


class Scripted:
    """below() answers from a script, bernoulli() from another; each call's argument is kept."""

    def __init__(self, below, coins):
        self.below_answers, self.coins, self.calls = list(below), list(coins), []

    def below(self, n):
        self.calls.append(n)
        return self.below_answers.pop(0)

    def bernoulli(self, p):
        return self.coins.pop(0)


def test_discrete_laplace_takes_a_scale_from_1_to_2_to_the_40():
    for scale in (0, (1 << 40) + 1):
        with pytest.raises(ConfigError) as error:
            ldp.discrete_laplace(scale, ldp.SecureRandomness())
        assert str(error.value) == f"the noise scale must be a positive integer of at most {1 << 40} (got {scale})"
    rng = Scripted(below=[5], coins=[True, False, False])  # keep u = 5, v = 0, positive
    assert ldp.discrete_laplace(1 << 40, rng) == 5 and rng.calls == [1 << 40]


def test_discrete_laplace_by_its_coins():
    """u uniform below the scale, kept with chance e^(-u/scale); v counts coins of chance e^-1; a sign; a zero
    drawn negative is drawn again (else zero would come up twice as often)."""
    probs = []

    class Logged(Scripted):
        def bernoulli(self, p):
            probs.append(p)
            return super().bernoulli(p)

    rng = Logged(below=[2, 1, 0, 0], coins=[False, True, True, True, False, True,
                                                  True, False, True, True, False, False])
    # first u = 2 refused; u = 1 kept, v = 2, negative: -(1 + 2 * 4) = -9
    assert ldp.discrete_laplace(4, rng) == -9
    assert probs == pytest.approx([math.exp(-2 / 4), math.exp(-1 / 4), math.exp(-1), math.exp(-1), math.exp(-1), 0.5])
    # u = 0 kept, v = 0, negative: zero drawn negative, drawn again: u = 0, v = 0, positive
    assert ldp.discrete_laplace(4, rng) == 0 and rng.coins == [] and rng.below_answers == []


def test_200k_discrete_laplace_draws_have_variance_2q_over_1_minus_q_squared():
    import random

    class Seeded:
        def __init__(self):
            self.r = random.Random(11)

        def below(self, n):
            return self.r.randrange(n)

        def bernoulli(self, p):
            return self.r.random() < p

    rng, scale = Seeded(), 5
    draws = np.array([ldp.discrete_laplace(scale, rng) for _ in range(200_000)], np.float64)
    # a discrete Laplace of scale b has variance 2q/(1-q)^2 with q = e^(-1/b), close to 2b^2 = 50 at b = 5
    assert draws.var() == pytest.approx(ldp.laplace_variance(scale), rel=0.02)
    assert abs(draws.mean()) < 0.05 and np.mean(draws == 0) == pytest.approx((1 - math.exp(-0.2)) / (1 + math.exp(-0.2)),
                                                                             abs=0.003)


def test_laplace_variance_by_hand():
    q = math.exp(-1 / 3)
    assert ldp.laplace_variance(3) == pytest.approx(2 * q / (1 - q) ** 2, rel=1e-15)
    assert ldp.laplace_variance(1000) == pytest.approx(2 * 1000.0 ** 2, rel=1e-3)  # 2 b^2 for a large scale


def test_epsilon_is_from_a_millionth_up_to_20():
    for epsilon in (1e-6, 0.5, 1, 20.0):
        assert ldp.check_epsilon(epsilon) == float(epsilon)
    # 1e-300 was taken and charged: the host's estimate then divided by zero (e^eps == 1) or came out at 1e14
    for epsilon in (0, 0.0, -1.0, 1e-300, 9.9e-7, 20.000001, float("inf")):
        with pytest.raises(ConfigError) as error:
            ldp.check_epsilon(epsilon)
        assert str(error.value) == f"epsilon must be a finite number from 1e-06 up to 20 (got {epsilon!r})"


def test_on_grid_names_each_wrong_argument():
    cases = [((None, {"a": 1}), "values must be a dict"), (({"a": 1}, None), "bounds must be a dict"),
             (({1: 1, "a": 2}, {1: 1, "a": 2}), "a value's name must be a string"),
             (({"a" * 201: 1}, {"a" * 201: 1}), "a value's name is 201 characters long; the limit is 200"),
             (({"a": 1}, {"a": 2e12}), r"the bound of 'a' must be a finite number above 0 up to 1e\+12"),
             (({"a": 2e15}, {"a": 2}), r"the value of 'a' must be a finite number from -1e\+15 up to 1e\+15"),
             (({"a": 1}, {"b": 1}), "bounds are public and fixed before the experiment, e.g. the 99th percentile")]
    for (values, bounds), message in cases:
        with pytest.raises(ConfigError, match=message):
            ldp.on_grid(values, bounds, 10)
    name = "n" * 200
    assert ldp.on_grid({name: 1e15, "b": -1e15}, {name: 1e12, "b": 0.5}, 10) == {name: 10, "b": 0}
    assert ldp.on_grid({"x": 0.25}, {"x": 0.5}, 1000) == {"x": 500}  # a bound below 1 is a bound
    with pytest.raises(ConfigError, match="the bound of 'x'"):
        ldp.on_grid({"x": 1.0}, {"x": 1e12 + 1}, 10)
    for value in (1e15 + 1, -1e15 - 1):
        with pytest.raises(ConfigError, match="the value of 'x'"):
            ldp.on_grid({"x": value}, {"x": 1.0}, 10)


def test_an_epsilon_too_small_for_any_report_is_refused_not_overflowed():
    """A subnormal epsilon made the scale infinite (OverflowError from math.ceil); one past 2^53 gives noise
    no reported figure can carry."""
    from edgerec.runtime.ldp import MAX_SCALE, laplace_scale

    assert laplace_scale(10_000, 1000, 1e7 / MAX_SCALE) == MAX_SCALE
    for tiny in (2.2250738585e-313, 1e-15):
        with pytest.raises(ConfigError, match="from 1e-06 up to 20"):
            laplace_scale(1, 1000, tiny)
    with pytest.raises(ConfigError, match="above 2\\^40: no report could carry it; give an epsilon of at least 9.1e-06"):
        laplace_scale(10_000, 1000, 1e-6)
