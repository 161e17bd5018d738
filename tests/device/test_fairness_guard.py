"""Guards of exposure fairness (runtime/fairness.py), every figure worked out by hand on a few items:
the position discount, exposure shares, the Gini index (empty, all zero, huge counts), the baseline's
cap per provider at the edges of its rounding, each provider's lift, and the fair stage's list on a
four-item catalog (both methods, the kept head, the policy's own caps, a newcomer's spread)."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
from stand_ins import ProviderCatalog

from edgerec.errors import ConfigError
from edgerec.runtime.fairness import (
    exposure,
    fair_relevance,
    fairness_applies,
    fairness_stage,
    gini,
    position_discount,
    provider_cap,
    provider_lift,
)
from edgerec.runtime.policies import Policy
from edgerec.runtime.request import Request

LOG3 = math.log2(3)


def test_the_position_discount_is_one_over_log2_of_the_place_plus_one():
    assert position_discount(4).tolist() == [1.0, 1 / LOG3, 0.5, 1 / math.log2(5)]
    assert position_discount(0).tolist() == []


def test_exposure_shares_count_labels_outside_the_groups_from_zero():
    assert exposure([["a", "b"]]) == pytest.approx({"a": 1 / (1 + 1 / LOG3), "b": (1 / LOG3) / (1 + 1 / LOG3)},
                                                   abs=1e-15)
    shares = exposure([["b", "a"], ["a"]], ["z"])  # a: 1/log2(3) + 1, b: 1, z: none
    whole = 2 + 1 / LOG3
    assert shares == pytest.approx({"z": 0.0, "b": 1 / whole, "a": (1 + 1 / LOG3) / whole}, abs=1e-15)
    assert exposure([], ["a", "b"]) == {"a": 0.0, "b": 0.0} and exposure([[], []]) == {}


def test_gini_by_hand_including_empty_all_zero_and_huge_counts():
    assert gini([]) == 0.0 and gini([0, 0]) == 0.0 and gini([0.0, 0.0, 0.0]) == 0.0 and gini([5]) == 0.0
    assert gini([0, 0, 0, 2]) == pytest.approx(0.75, abs=1e-15)  # (3 x 2) / (4 x 2)
    assert gini([3, 1]) == pytest.approx(0.25, abs=1e-15)  # sorted 1, 3: (-1 + 3) / (2 x 4)
    assert gini(np.array([1, 2, 3], np.int8)) == pytest.approx(2 / 9, abs=1e-15)  # (-2 + 0 + 6) / (3 x 6)
    assert gini([2**62, 2**62, 0]) == pytest.approx(1 / 3, abs=1e-15)  # past int64 when summed as integers


@pytest.mark.parametrize("values", [[1.0, float("nan")], [1.0, float("inf")], [-1.0, 1.0], [-1.0, 2.0]])
def test_gini_refuses_values_that_are_not_finite_counts_or_shares(values):
    with pytest.raises(ConfigError) as caught:
        gini(values)
    assert str(caught.value) == ("gini: every value must be a finite number >= 0 (an exposure share or a "
                                 "count); got a negative or non-finite one")


def test_fair_relevance_is_computed_in_float64_whatever_the_inputs_dtype():
    relevance = np.array([0.1, 0.7, 0.3, -np.inf], np.float32)
    lift = np.array([0.1, -0.3, 0.0, 2.0], np.float32)
    r = relevance[:3].astype(np.float64)
    z = (r - r.mean()) / math.sqrt(float(((r - r.mean()) ** 2).sum()) / 3)
    got = fair_relevance(relevance, lift, 2.0)
    assert got.dtype == np.float64 and got[3] == -np.inf
    assert np.abs(got[:3] - (z - 2.0 * 0.15 * lift[:3].astype(np.float64))).max() < 1e-15


def test_the_providers_cap_rounds_up_but_not_for_float_noise():
    assert [provider_cap(5, w) for w in (0.0, 0.5, 0.6, 0.8, 0.99, 1.0, 3.0, -1.0)] == [5, 3, 2, 1, 1, 1, 1, 5]
    assert provider_cap(3, 0.5) == 2 and provider_cap(7, 0.5) == 4  # 1.5 and 3.5 round up, not to even
    assert provider_cap(10, 0.7) == 3 and provider_cap(10, 0.8 - 1e-11) == 2  # within 1e-9 of a step: the step


def request(policy, k=4, relevance=(4.0, 3.0, 2.0, 1.0), head=None, cat=None, spread=False, vectors=None) -> Request:
    req = Request(user="u", k=k, now=0.0, hour=12.0, device=-1, filters=None, policy=policy.with_defaults(),
                  catalog=cat or ProviderCatalog())  # a request runs with the bundle's defaults filled in
    req.pool = np.arange(4)
    req.relevance = np.asarray(relevance, np.float64)
    req.vectors = np.eye(4, dtype=np.float32) if vectors is None else vectors
    req.head = None if head is None else np.asarray(head, np.int64)
    req.spread = spread
    return req


def test_the_lift_of_each_provider_by_hand_with_a_last_zero_for_items_without_one():
    codes, lift = provider_lift(ProviderCatalog())
    assert codes.tolist() == [0, 0, 1, -1]
    assert lift.tolist() == pytest.approx([math.log(0.8 * 2), math.log(0.2 * 2), 0.0], abs=1e-15)
    assert len(lift) == 3
    assert provider_lift(ProviderCatalog(codes=[0, 0], plays=[1, 1]))[1].tolist() == [0.0, 0.0]  # one provider: equal
    small = provider_lift(ProviderCatalog(codes=[0, 1], plays=[0.3, 0.1]))[1]  # fewer than one play in all still counts
    assert small.tolist() == pytest.approx([math.log(0.75 * 2), math.log(0.25 * 2), 0.0], abs=1e-15)
    codes, lift = provider_lift(ProviderCatalog(codes=[], plays=[]))  # no items
    assert codes.tolist() == [] and lift.tolist() == [0.0]
    assert provider_lift(ProviderCatalog(codes=[-1, -1], plays=[3, 4]))[1].tolist() == [0.0]


def test_infinite_plays_count_as_none_and_an_unplayed_provider_warns_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log 0 for the provider nobody played is expected, not a warning
        lift = provider_lift(ProviderCatalog(codes=[0, 1, 2], plays=[np.inf, 10, 0]))[1]
    assert lift.tolist() == pytest.approx([-2.0, math.log(3), -2.0, 0.0], abs=1e-15)


def test_the_stage_applies_with_a_fairness_weight_and_a_provider_column_only():
    cat = ProviderCatalog()
    assert fairness_applies(request(Policy(fairness=0.5), cat=cat))
    assert not fairness_applies(request(Policy(fairness=0.0), cat=cat))
    cat.categorical = {"creator": None, "genre": None}
    assert not fairness_applies(request(Policy(fairness=0.5), cat=cat))


# z of relevance 4, 3, 2, 1: (r - 2.5) / sqrt(1.25); lifts log 1.6 (p0), log 0.4 (p1), 0 (none)
Z = [(r - 2.5) / math.sqrt(1.25) for r in (4, 3, 2, 1)]
LIFT = [math.log(1.6), math.log(1.6), math.log(0.4), 0.0]


def test_the_exposure_method_re_ranks_by_relevance_minus_the_lift_by_hand():
    fair = [z - 10 * 0.15 * lift for z, lift in zip(Z, LIFT)]  # 0.636, -0.258, 0.927, -1.342
    assert sorted(range(4), key=lambda i: -fair[i]) == [2, 0, 1, 3]
    got = fairness_stage(request(Policy(fairness=10.0)))
    assert got.order.tolist() == [2, 0, 1, 3] and got.order.dtype == np.int64
    assert fairness_stage(request(Policy(fairness=10.0), head=[3])).order.tolist() == [3, 2, 0, 1]
    assert fairness_stage(request(Policy(fairness=10.0), k=2)).order.tolist() == [2, 0]


def test_the_exposure_method_keeps_the_policys_creator_cap_diversity_and_a_newcomers_spread():
    capped = Policy(fairness=10.0, max_per_creator=1)  # creators c, c, d, e: the second c item goes
    assert fairness_stage(request(capped)).order.tolist() == [2, 0, 3]
    # a newcomer's spread passes the capped item over instead of dropping it
    assert fairness_stage(request(capped, spread=True)).order.tolist() == [2, 0, 3, 1]
    genre = Policy(fairness=10.0, max_per_genre=1)  # genres g, h, g, h
    assert fairness_stage(request(genre)).order.tolist() == [2, 1]
    # diversity: items 0 and 2 share a vector, so after 2 comes 1 (0.9 x its spread beats 0's lead)
    vectors = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], np.float32)
    diverse = fairness_stage(request(Policy(fairness=10.0, diversity=0.9), k=2, vectors=vectors))
    assert diverse.order.tolist() == [2, 1]


def test_the_cap_method_keeps_at_most_the_cap_per_provider_and_the_genre_cap():
    # k 3 at weight 0.5: at most 2 per provider; providers p0, p0, p1, none: all four fit
    assert fairness_stage(request(Policy(fairness=0.5, fairness_method="cap"), k=3)).order.tolist() == [0, 1, 2]
    one = Policy(fairness=0.9, fairness_method="cap")  # cap 1: the second p0 item goes
    assert fairness_stage(request(one, k=3)).order.tolist() == [0, 2, 3]
    assert fairness_stage(request(one, k=3, head=[1])).order.tolist() == [1, 2, 3]  # the kept head counts
    genre = Policy(fairness=0.9, fairness_method="cap", max_per_genre=1)
    assert fairness_stage(request(genre, k=3)).order.tolist() == [0, 3]  # 2 shares 0's genre g
    vectors = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], np.float32)
    diverse = Policy(fairness=0.1, fairness_method="cap", diversity=0.9)
    assert fairness_stage(request(diverse, k=2, vectors=vectors)).order.tolist() == [0, 2]


def test_the_cap_method_reads_an_unset_diversity_as_none_as_the_exposure_method_does():
    """A policy whose diversity was left unset (None) raised a TypeError in the cap method's MMR."""
    for method in ("cap", "exposure"):
        req = request(Policy(fairness=0.9, fairness_method=method), k=3)
        req.policy = replace(req.policy, diversity=None)
        assert fairness_stage(req).order.tolist() == ([0, 2, 3] if method == "cap" else [0, 1, 2])
