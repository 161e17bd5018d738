"""A request's Policy keeps the bundle's defaults for what it leaves unset (spec §5): a policy that
only sets, say, freshness must not widen the bundle's short list (the golden bundle's is 20) to the
dataclass's 100, which re-standardised every score and changed the list. Found by the clean-room
reader of the spec (tests/spec_cleanroom)."""

from __future__ import annotations

import pytest

from edgerec.runtime import Policy, Recommender

CONTEXT = {"now": 1763598915.0, "hour": 20.5}


@pytest.fixture(scope="module")
def lists(golden_bundle):
    def run(policy):
        with Recommender.open(golden_bundle, history=None, backend="onnx") as rec:
            for item in ("i03", "i11", "i19", "i27"):
                rec.record("u", item, "finish")
            return [(r.item_id, round(r.score, 6)) for r in rec.recommend("u", k=8, context=CONTEXT,
                                                                           policy=policy)]
    return run


def test_a_policy_that_changes_nothing_gives_the_plain_list(lists):
    plain = lists(None)
    assert lists(Policy(freshness=0.0)) == plain
    assert lists(Policy(language_boost=0.05, feedback_weight=1.0)) == plain


def test_the_short_list_is_still_a_lever(lists):
    assert lists(Policy(short_list=100)) != lists(None)
    assert lists(Policy(short_list=20)) == lists(None)


def test_unset_fields_take_the_bundles_defaults_then_the_built_in_ones():
    resolved = Policy(freshness=1.0).with_defaults({"short_list": 20, "diversity": 0.2})
    assert (resolved.short_list, resolved.diversity, resolved.freshness) == (20, 0.2, 1.0)
    own = Policy(short_list=50, diversity=0.0).with_defaults({"short_list": 20, "diversity": 0.2})
    assert (own.short_list, own.diversity) == (50, 0.0)
    assert (Policy().with_defaults().short_list, Policy().with_defaults().diversity) == (100, 0.0)


def test_a_policy_the_app_sets_on_the_recommender_takes_the_defaults_too(golden_bundle, lists):
    """docs/training.md: `rec.policy = Policy.from_dict(json.load(...))`; a file that leaves the short list out
    gets the bundle's, not a crash on the unset field."""
    with Recommender.open(golden_bundle, history=None, backend="onnx") as rec:
        for item in ("i03", "i11", "i19", "i27"):
            rec.record("u", item, "finish")
        rec.policy = Policy.from_dict({"freshness": 0.0})
        got = [(r.item_id, round(r.score, 6)) for r in rec.recommend("u", k=8, context=CONTEXT)]
    assert got == lists(None)


def test_a_weight_given_as_a_numpy_scalar_lists_what_the_same_plain_number_lists(golden_bundle, tmp_path):
    """A numpy float64 feedback weight made the float32 query float64: other scores for the same value
    (audit K2). The checked fields are kept as plain floats and ints."""
    import numpy as np

    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx") as rec:
        now = rec.history.clock() + 60
        for i, event in enumerate(["play", "like", "finish", "more_like_this"] * 2):
            rec.record("u", rec.catalog.item_id(i * 3), event, timestamp=now - 1000 + i)
        context = {"now": now, "hour": 20.0, "device": "tv"}

        def listed(**weights):
            return [(r.item_id, r.score) for r in rec.recommend("u", k=5, context=context, policy=Policy(**weights))]

        plain = listed(feedback_weight=1.0, engagement=0.5, context_weight=1.0, popularity=0.1, diversity=0.2)
        assert listed(feedback_weight=np.float64(1.0), engagement=np.float64(0.5), context_weight=np.int64(1),
                      popularity=np.float64(0.1), diversity=np.float64(0.2)) == plain
        policy = Policy(feedback_weight=np.float64(2.0), short_list=np.int64(50))
        assert type(policy.feedback_weight) is float and type(policy.short_list) is int
