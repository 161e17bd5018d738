"""Numeric bounds of the bundle's ranking section (spec §4 Scorer and Context), found by an audit: a
schema-valid context prior (lifts of 1e308, a weight of 1e300) or scorer (weights 1e6 over scales of
1e-300) made every list empty, or its scores -3.8e299, and the update gate served such a bundle.
Such a bundle is now refused on open, and a non-finite boost or score at request time skips the
optional stage (counted) instead of dropping the items. Device suite: no torch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from bundle_edit import replace_array, rewrite

from edgerec.errors import BundleError, ModelError
from edgerec.runtime.policies import Policy
from edgerec.runtime.ranking import ContextPrior
from edgerec.runtime.recommender import Recommender
from edgerec.runtime.scorer import LinearScorer, scorer_names
from edgerec.runtime.vocab import MODALITIES

GOLDEN = Path(__file__).resolve().parents[2] / "spec" / "golden"
HISTORY = ("i03", "i11", "i19", "i27")
EVENING_ON_TV = {"now": 1.767e9, "hour": 20.5, "device": "tv"}


def copied(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(GOLDEN / name, tmp_path / name))


def with_prior(root: Path, lift=None, weight=None) -> Path:
    """The bundle at `root` with every lift of its context prior set to `lift` and/or its weight."""
    def change(data):
        prior = data["ranking"]["context_prior"]
        if weight is not None:
            prior["weight"] = weight
        if lift is not None:
            for part in ("device", "day_part"):
                for row in prior[part].values():
                    row[:] = [lift] * len(row)
    rewrite(root, change)
    return root


def listed(rec, **how) -> list[str]:
    for item in HISTORY:
        rec.record("u", item, "finish")
    return [r.item_id for r in rec.recommend("u", k=5, context=EVENING_ON_TV, **how)]


def stage(rec, name: str):
    return next(s.run for s in rec.pipeline.stages if s.name == name)


# ---------------------------------------------------------------- context prior


@pytest.mark.parametrize("lift, weight, said", [
    (1e308, None, r"ranking\.context_prior\.device\.phone\[0\] must be a number between -100 and 100 \(got 1e\+308\)"),
    (-1e200, None, r"context_prior\.device\.phone\[0\] must be a number between -100 and 100 \(got -1e\+200\)"),
    (100.5, None, r"between -100 and 100 \(got 100\.5\)"),
    (None, 1e300, r"ranking\.context_prior\.weight must be a number between 0 and 100 \(got 1e\+300\)"),
    (None, 100.5, r"weight must be a number between 0 and 100 \(got 100\.5\)")],
    ids=["1e308", "-1e200", "101", "w1e300", "w101"])
def test_context_priors_past_their_bounds_are_refused_on_open(tmp_path, lift, weight, said):
    root = with_prior(copied(tmp_path, "bundle"), lift, weight)
    with pytest.raises(BundleError, match=said + r"( \(and \d+ more problem\(s\)\))?; the manifest does not follow"):
        Recommender.open(root)


def test_context_priors_at_their_bounds_open_and_give_a_full_list(tmp_path):
    with Recommender.open(with_prior(copied(tmp_path, "bundle"), 100.0, 100.0)) as rec:
        assert len(listed(rec)) == 5 and "context_fallback" not in rec.stats()["counters"]


def test_the_update_gate_turns_down_huge_context_lifts_and_keeps_serving(tmp_path):
    bad = with_prior(copied(tmp_path, "bundle"), lift=1e308)
    with Recommender.open(bad, fallback=GOLDEN / "bundle") as rec:
        assert not rec.update.accepted and "context_prior" in rec.update.reason
        assert len(listed(rec)) == 5


def test_a_non_finite_context_boost_skips_the_stage_instead_of_emptying_the_list(tmp_path):
    with Recommender.open(GOLDEN / "bundle") as plain:
        expected = listed(plain, policy=Policy(context_weight=0.0))  # the list without the context stage
    with Recommender.open(GOLDEN / "bundle") as rec:
        huge = [1e308] * len(MODALITIES)  # past the checks on open: what a future bug could hand the stage
        stage(rec, "context").prior = ContextPrior(list(MODALITIES), {"tv": huge}, {"evening": huge}, 1.0)
        assert listed(rec) == expected
        assert rec.stats()["counters"]["context_fallback"] == 1


def test_the_context_stage_raises_on_a_non_finite_boost():
    from types import SimpleNamespace as NS

    from edgerec.runtime.ranking import ContextStage

    context = ContextStage(NS(ranking={}))
    huge = [1e308] * len(MODALITIES)
    context.prior = ContextPrior(list(MODALITIES), {"tv": huge}, {"evening": huge}, 1.0)
    table = NS(modality=np.array([0, 1, -1]))
    request = NS(policy=Policy(), device=1, hour=20.0, pool=np.array([0, 1, 2]),
                 catalog=NS(feature_table=lambda: table), relevance=np.array([1.0, -np.inf, 0.0]))
    with pytest.raises(ModelError, match="non-finite boost"):
        context(request)
    context.prior = ContextPrior(list(MODALITIES), {"tv": [1.0] * 5}, {}, 1.0)  # -inf stays -inf: no failure
    assert context(request).relevance.tolist() == [2.0, -np.inf, 0.0]


# ---------------------------------------------------------------- scorer


def with_scorer(root: Path, weight: float, scale: float) -> Path:
    n = len(scorer_names(8))
    replace_array(root, "ranking/scorer_weights.npy", np.full(n, weight))
    replace_array(root, "ranking/scorer_scale.npy", np.full(n, scale))
    replace_array(root, "ranking/scorer_mean.npy", np.zeros(n))
    return root


def test_a_scorer_whose_weight_over_scale_is_past_1e12_is_refused_on_open(tmp_path):
    root = with_scorer(copied(tmp_path, "ranked"), 1e6, 1e-300)
    with pytest.raises(BundleError, match=r"weights / scale must be at most 1e\+12 in size \(found 1e\+306\)"):
        Recommender.open(root, backend="onnx")


def test_a_scorer_with_a_huge_mean_is_refused_on_open(tmp_path):
    """Weight 1 over scale 1e100 and mean 1e200 pass every other bound, yet shift every score by -1e100:
    the items' differences (about 1e-100) vanish and the list is the tie order, silently."""
    root = with_scorer(copied(tmp_path, "ranked"), 1.0, 1e100)
    replace_array(root, "ranking/scorer_mean.npy", np.full(len(scorer_names(8)), 1e200))
    with pytest.raises(BundleError, match=r"scorer means must be at most 1e\+09 in size \(found 1e\+200\)"):
        Recommender.open(root, backend="onnx")


def test_the_update_gate_turns_down_a_scorer_past_the_bound(tmp_path):
    bad = with_scorer(copied(tmp_path, "ranked"), 1e6, 1e-300)
    with Recommender.open(bad, fallback=GOLDEN / "ranked", backend="onnx") as rec:
        assert not rec.update.accepted and "weights / scale" in rec.update.reason
        assert len(listed(rec, policy=Policy(use_scorer=True))) == 5


def test_the_largest_trained_weight_over_the_smallest_trained_scale_is_accepted():
    names = scorer_names(2)
    n = len(names)
    LinearScorer(names, np.full(n, 1e6), np.zeros(n), np.full(n, 1e-6))  # training floors scales at 1e-6
    with pytest.raises(ValueError, match="weights / scale must be at most"):
        LinearScorer(names, np.full(n, 1e6), np.zeros(n), np.full(n, 1e-7))


class _Overflowing(LinearScorer):
    """A scorer whose sums overflow for one candidate (past the open checks: e.g. a damaged feature)."""

    def score(self, features):
        out = super().score(features)
        out[0] = np.inf
        return out


def test_a_non_finite_score_skips_the_scorer_and_keeps_the_previous_order():
    use = Policy(use_scorer=True, use_ranker=False)
    with Recommender.open(GOLDEN / "ranked", backend="onnx") as plain:
        expected = listed(plain, policy=Policy(use_scorer=False, use_ranker=False))
    with Recommender.open(GOLDEN / "ranked", backend="onnx") as rec:
        real = stage(rec, "scorer").scorer
        stage(rec, "scorer").scorer = _Overflowing(real.names, real.weights, real.mean, real.scale, real.intercept)
        got = listed(rec, policy=use)
        assert got == expected  # not an item dropped: the retrieval order, whole
        assert rec.stats()["counters"]["scorer_fallback"] == 1
        for item in HISTORY:
            rec.record("u", item, "finish")
        assert all(r.reason.kind != "scorer" for r in rec.recommend("u", k=5, context=EVENING_ON_TV, policy=use))
