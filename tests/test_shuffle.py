"""Reports for a shuffler: the amplification bound, the device's local epsilon, the ledger and the host's checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgerec.errors import ConfigError
from edgerec.runtime.ldp import olh_buckets, olh_estimate, olh_support
from edgerec.runtime.privacy_ledger import Budget
from edgerec.runtime.shuffle import Shuffled, largest_local_epsilon, shuffled_epsilon
from edgerec.runtime.shuffle_numeric import numeric_epsilon, shuffle_delta


def test_the_bound_by_hand_at_one_point():
    # n = 100,000 reports, epsilon0 = 4, delta = 1e-6, worked step by step:
    # spread = 8 sqrt(e^4 ln(4e6) / 1e5) + 8 e^4 / 1e5 = 8 * sqrt(54.598 * 15.2018 / 1e5) + 0.0043679
    #        = 8 * 0.091103 + 0.0043679 = 0.733192
    # damp = (1 - e^-4) / (1 + e^-4 / (1 + spread)) = 0.9816844 / 1.0105675 = 0.971419
    # central = ln(1 + damp * spread) = ln(1.712237) = 0.53777
    assert shuffled_epsilon(4.0, 100_000, 1e-6) == pytest.approx(0.53777, abs=2e-4)


def test_the_bound_shrinks_with_the_batch_and_grows_with_the_local_epsilon():
    central = [shuffled_epsilon(3.0, n, 1e-7) for n in (10_000, 100_000, 1_000_000)]
    assert central[0] > central[1] > central[2] and central[0] < 3.0
    assert shuffled_epsilon(2.0, 300_000, 1e-7) < shuffled_epsilon(4.0, 300_000, 1e-7) < shuffled_epsilon(6.0, 300_000, 1e-7)
    limit = largest_local_epsilon(300_000, 1e-7)
    assert limit == pytest.approx(math.log(300_000 / (16 * math.log(4e7))))
    with pytest.raises(ConfigError, match="outside what the shuffling bound covers"):
        shuffled_epsilon(limit + 0.01, 300_000, 1e-7)


@pytest.mark.parametrize("central,batch", [(0.5, 100_000), (1.0, 300_000), (1.0, 50_000), (0.25, 1_000_000),
                                           (0.25, 10_000)])
def test_the_local_epsilon_is_the_largest_that_stays_within_the_central_one(central, batch):
    shuffle = Shuffled(batch)
    local = shuffle.local_epsilon(central)
    assert local > central  # the point of shuffling

    def proven(e0):  # by either bound
        closed = e0 <= largest_local_epsilon(batch, shuffle.delta) and shuffled_epsilon(e0, batch, shuffle.delta) <= central
        numeric = shuffle_delta(e0, batch, central)
        return closed or (numeric is not None and numeric <= shuffle.delta)

    assert proven(local) and shuffle.central_epsilon(local) <= central + 1e-9 * local
    if local < shuffle.max_local - 1e-6:
        assert not proven(local + 1e-3)
    closed_only = largest_local_epsilon(batch, shuffle.delta)  # the sum allows more than the closed form
    if closed_only > 0 and local < shuffle.max_local:
        bisect = [0.0, min(closed_only, shuffle.max_local)]
        for _ in range(40):
            middle = sum(bisect) / 2
            bisect[shuffled_epsilon(middle, batch, shuffle.delta) > central] = middle
        assert local > bisect[0] + 0.5


def _clone_pair_delta(n: int, e0: float, eps: float) -> float:
    """Theorem 3.2's divergence summed over every C and a, in exact binomials (no window, no logs)."""
    p0, alpha, total = math.exp(-e0), math.exp(e0) / (1 + math.exp(e0)), 0.0
    for c in range(n):
        weight = math.comb(n - 1, c) * p0 ** c * (1 - p0) ** (n - 1 - c)

        def half(a, c=c):
            return math.comb(c, a) / 2 ** c if 0 <= a <= c else 0.0

        total += weight * sum(max(0.0, alpha * half(a) + (1 - alpha) * half(a - 1)
                                  - math.exp(eps) * (alpha * half(a - 1) + (1 - alpha) * half(a)))
                              for a in range(c + 2))
    return total


@pytest.mark.parametrize("n,e0,eps", [(30, 1.0, 0.5), (60, 2.0, 0.8), (120, 0.5, 0.2)])
def test_the_numeric_sum_is_the_theorems_divergence(n, e0, eps):
    exact = _clone_pair_delta(n, e0, eps)
    assert exact - 1e-15 <= shuffle_delta(e0, n, eps) <= exact + 1e-12  # an upper bound, by rounding only


def _shuffled_randomized_response_delta(n: int, e0: float, eps: float, ones: int) -> float:
    """The exact delta of n shuffled binary randomized responses (ones of the other n - 1 hold 1):
    the host sees only how many reports say 1; the target holds 0 or 1."""
    keep = math.exp(e0) / (1 + math.exp(e0))
    others = np.array([1.0])
    for i in range(n - 1):
        p1 = keep if i < ones else 1 - keep
        others = np.convolve(others, [1 - p1, p1])
    zero, one = np.convolve(others, [keep, 1 - keep]), np.convolve(others, [1 - keep, keep])
    return max(np.maximum(zero - math.exp(eps) * one, 0).sum(), np.maximum(one - math.exp(eps) * zero, 0).sum())


@pytest.mark.parametrize("n,e0", [(200, 2.0), (1000, 3.0), (2000, 4.0)])
def test_the_numeric_bound_holds_for_a_real_shuffled_mechanism_and_is_tighter_than_the_closed_form(n, e0):
    for eps in (0.3, 0.6, 1.0):
        bound = shuffle_delta(e0, n, eps)
        exact = max(_shuffled_randomized_response_delta(n, e0, eps, ones) for ones in (0, (n - 1) // 2, n - 1))
        assert exact <= bound < 1
    for batch, e0 in ((100_000, 4.0), (300_000, 6.0), (1_000_000, 6.0)):
        closed = shuffled_epsilon(e0, batch, 1e-7)
        numeric = numeric_epsilon(e0, batch, 1e-7)
        assert numeric < closed / 2 and shuffle_delta(e0, batch, numeric) <= 1e-7
    assert numeric_epsilon(2.0, 10**7, 1e-9) is None  # too long to sum: the closed form answers alone
    assert Shuffled(10**7, delta=1e-9).central_epsilon(2.0) == shuffled_epsilon(2.0, 10**7, 1e-9)


def test_caps_and_batches_too_small_to_amplify():
    assert Shuffled(10_000_000, delta=1e-9, max_local=5.0).local_epsilon(4.0) == 5.0  # the local cap binds
    for batch in (1, 10):
        with pytest.raises(ConfigError, match="too small to amplify"):
            Shuffled(batch).local_epsilon(1.0)
    assert 1.3 < Shuffled(200).local_epsilon(1.0) < 2  # the numeric sum finds a little even in 200
    for central in (float("nan"), 0.0, -1.0, float("inf")):  # never a silent local epsilon of 0
        with pytest.raises(ConfigError, match="epsilon must be"):
            Shuffled(300_000).local_epsilon(central)
    for bad in (dict(batch=0), dict(batch=1000, delta=0.01), dict(batch=1000, max_local=0)):
        with pytest.raises(ConfigError):
            Shuffled(**bad)


@pytest.mark.parametrize("local,most", [(1e-6, 1e-6), (1e-5, 1e-5), (0.5, 0.05), (8.0, 1.03), (20.0, 20.0)])
def test_the_central_epsilon_of_any_valid_local_one_is_at_most_it(local, most):
    assert 0 <= Shuffled(300_000).central_epsilon(local) <= most  # 20: e^-20 x 300,000 clones, no amplification


@pytest.mark.parametrize("local", [0.0, -1.0, float("nan"), float("inf"), 20.5, 1e-300, 9e-7])  # ldp.MIN_EPSILON
def test_the_central_epsilon_refuses_a_local_one_outside_0_to_20(local):
    with pytest.raises(ConfigError, match="epsilon must be"):
        Shuffled(300_000).central_epsilon(local)


@settings(max_examples=40, deadline=None)
@given(local=st.floats(1e-300, 20.0), batch=st.integers(1, 10**8), epsilon=st.floats(0.0, 20.0))
def test_the_numeric_bound_is_a_probability_or_declines(local, batch, epsilon):
    bound = shuffle_delta(local, batch, epsilon)
    assert bound is None or 0.0 <= bound <= 1.0 + 1e-9


def _reporter(rec, budget=None):
    from test_ldp import Seeded

    from edgerec.runtime.reporter import PrivateReporter

    return PrivateReporter(rec, budget or Budget(per_day=1.0, per_30_days=10.0), rng=Seeded(3))


def test_a_shuffled_report_randomizes_locally_and_charges_the_central_epsilon(tiny_bundle, tmp_path):
    from edgerec.errors import PrivacyBudgetError
    from edgerec.runtime import Recommender

    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as rec:
        rec.record("bob", rec.catalog.item_id(3), "finish")
        reporter = _reporter(rec)
        shuffle = Shuffled(300_000)
        report = reporter.items_consumed(epsilon=1.0, shuffle=shuffle)
        local = shuffle.local_epsilon(1.0)
        assert report["local_epsilon"] == local and report["shuffle"] == {"batch": 300_000, "delta": 1e-7}
        assert report["epsilon"] == shuffle.central_epsilon(local) <= 1.0 and local > 7.9
        assert report["hash"]["g"] == olh_buckets(local) > olh_buckets(1.0)
        [(_, question, charged)] = reporter.ledger.entries()
        assert charged == report["epsilon"] and question == f"items_consumed (shuffled; local epsilon {local:.3g})"
        with pytest.raises(PrivacyBudgetError):  # the daily budget of 1 holds the central epsilon
            reporter.category_shares(epsilon=0.5, shuffle=shuffle)
        plain = _reporter(rec, Budget(per_day=5.0, per_30_days=10.0)).category_shares(epsilon=0.5)
        assert "local_epsilon" not in plain and plain["epsilon"] == 0.5


def _shuffled_reports(count: int, promised: int, local: float, rng) -> list[dict]:
    g = olh_buckets(local)
    return [{"question": "items_consumed", "epsilon": 0.9, "local_epsilon": local, "domain": {"size": 4},
             "shuffle": {"batch": promised, "delta": 1e-7},
             "hash": {"a": int(rng.integers(1, 1000)), "b": int(rng.integers(0, 1000)), "g": g, "prime": 2_147_483_647},
             "value": int(rng.integers(0, g))} for _ in range(count)]


def test_the_host_estimates_with_the_local_epsilon_and_refuses_a_short_batch():
    from edgerec.studies.dp_popularity import aggregate_items

    rng = np.random.default_rng(0)
    reports = _shuffled_reports(50, 50, 5.0, rng)
    estimate, info = aggregate_items(reports, ["a", "b", "c"])
    a, b, y = (np.array([r["hash"][k] if k != "value" else r[k] for r in reports]) for k in ("a", "b", "value"))
    expected = olh_estimate(olh_support(a, b, olh_buckets(5.0), y, 4), 50, 5.0)
    np.testing.assert_allclose(estimate.counts, expected.counts)
    assert info["local_epsilon"] == 5.0 and info["epsilon"] == 0.9
    with pytest.raises(ConfigError, match="batches of at least 60.*holds 50"):
        aggregate_items(_shuffled_reports(50, 60, 5.0, rng), ["a", "b", "c"])
    mixed = reports[:49] + [dict(reports[49], local_epsilon=4.0)]
    with pytest.raises(ConfigError, match="one epsilon"):
        aggregate_items(mixed, ["a", "b", "c"])


def test_shuffling_finds_the_top_items_that_local_reports_miss(small_data_dir):
    from edgerec.studies.dp_popularity import DPPopularityStudy

    def recall(shuffled):
        study = DPPopularityStudy(small_data_dir, epsilons=(1.0,), devices=(300_000,), trials=2, shuffled=shuffled)
        [row] = study.run().record["rows"]
        return row

    local, shuffled = recall(False), recall(True)
    assert local["local_epsilon"] == 1.0 and shuffled["local_epsilon"] > 6
    assert shuffled["top10_recall"] >= local["top10_recall"] + 0.3
    assert shuffled["count_mae"] < local["count_mae"] / 5


def test_a_numpy_batch_size_gives_plain_json_reports():
    import json

    shuffle = Shuffled(np.int64(300_000))
    assert json.dumps(shuffle.describe()) == '{"batch": 300000, "delta": 1e-07}'
    with pytest.raises(ConfigError):
        Shuffled(True)


def _good_report(rng):
    return _shuffled_reports(1, 0, 2.0, rng)[0] | {"shuffle": {"batch": 1, "delta": 1e-7}}


@pytest.mark.parametrize("corrupt", [
    lambda r: r.pop("hash"),
    lambda r: r.update(value="seven"),
    lambda r: r.update(value=10**30),
    lambda r: r.update(value=-1),
    lambda r: r.update(value=olh_buckets(2.0)),  # one past the last bucket
    lambda r: r["hash"].update(g=3),
    lambda r: r["hash"].update(a=0),
    lambda r: r.update(local_epsilon=float("nan")),
    lambda r: r.update(local_epsilon=1e9),
    lambda r: r.update(epsilon=None),
    lambda r: r["domain"].pop("size"),
    lambda r: r.update(shuffle={"delta": 1e-7}),
])
def test_the_host_refuses_a_malformed_report_with_a_clear_error(corrupt):
    from edgerec.studies.dp_popularity import aggregate_items

    rng = np.random.default_rng(5)
    reports = [_good_report(rng) for _ in range(20)]
    aggregate_items(reports, ["a", "b", "c"])  # the untouched batch aggregates
    corrupt(reports[7])
    with pytest.raises(ConfigError):
        aggregate_items(reports, ["a", "b", "c"])


def test_the_host_refuses_what_is_not_a_report():
    from edgerec.studies.dp_popularity import aggregate_items, aggregate_labels

    with pytest.raises(ConfigError, match="dicts PrivateReporter produces"):
        aggregate_items(["not a report"], ["a"])
    labels = {"question": "health:errors", "epsilon": 1.0, "domain": {"labels": ["<=0", ">0"]}}
    with pytest.raises(ConfigError, match="a value among them"):
        aggregate_labels([labels | {"value": 0}, labels | {"value": 2}], "health:errors")
    assert set(aggregate_labels([labels | {"value": 0}, labels | {"value": 1}], "health:errors")) == {"<=0", ">0"}
