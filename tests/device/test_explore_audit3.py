"""Exploration (runtime/experiment.py) after the audit of its stage's place and refusals: the log is the
list shown (after the fairness stage), and what the sampler cannot do honestly (a temperature too low for
k, a position table too costly for one request, a policy's hard caps) reaches the app in words."""

from __future__ import annotations

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import Recommender
from edgerec.runtime.experiment import EXPLORE_STAGE, ExplorationStage, ExposureLog, explore
from edgerec.runtime.policies import Policy


def _with_history(rec: Recommender, user: str = "regular") -> str:
    for row in range(5):  # a real history (not a newcomer's popularity list): the policy's caps apply as set
        rec.record(user, rec.catalog.item_id(row), "finish")
    return user


def test_explore_runs_after_fairness_so_the_log_holds_the_list_shown(golden_bundle, tmp_path):
    """Inserted after "policies", the optional fairness stage re-ranked the sampled list afterwards:
    the log held lists that were never shown."""
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "h.db") as rec:
        user = _with_history(rec)
        log = explore(rec, temperature=2.0, width=20, seed=3)
        names = rec.pipeline.names
        assert names.index("fairness") < names.index(EXPLORE_STAGE) == names.index("explain") - 1
        for policy in (None, Policy(fairness=2.0)):
            for _ in range(15):
                shown = [r.item_id for r in rec.recommend(user, 8, policy=policy)]
                assert list(log.pop().items) == shown


def test_a_temperature_too_low_for_k_reaches_the_app_in_words(golden_bundle, tmp_path):
    """The optional stage swallowed it: the greedy list was shown, nothing logged, and `experiment ope`
    told its user to run more users or days."""
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "h.db") as rec:
        log = explore(rec, temperature=1e-3, width=12, seed=5)
        with pytest.raises(ConfigError, match="raise the exploration temperature or lower k"):
            rec.recommend("newcomer", k=10)
        assert log.pop() is None
        assert len(rec.recommend("newcomer", k=1)) == 1  # one item: nothing for the weights to underflow


def test_a_position_table_too_costly_for_one_request_is_refused_before_it_is_computed(golden_bundle, tmp_path):
    """k = 60 stalled a device for 1.9 s, k = 120 for 25 s (the table grows as k^3)."""
    stage = ExplorationStage(ExposureLog(), temperature=2.0, width=30, seed=0)
    with pytest.raises(ConfigError, match="position table of about .* steps, more than a request may spend"):
        stage.table(-np.arange(120) / 2.0, 120)
    assert stage.table(-np.arange(30) / 2.0, 10).shape == (30, 10)
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "h.db") as rec:
        log = explore(rec, seed=0)
        with pytest.raises(ConfigError, match="ask for fewer items or lower the width"):
            rec.recommend("newcomer", k=40)
        assert log.pop() is None and len(rec.recommend("newcomer", k=10)) == 10 and log.pop() is not None


@pytest.mark.parametrize("policy, named", [
    (Policy(max_per_creator=1), "max_per_creator"),
    (Policy(max_per_genre=2), "max_per_genre"),
    (Policy(keep_top=3), "keep_top"),
    (Policy(fairness=1.0, fairness_method="cap"), "fairness_method 'cap'"),
])
def test_a_policy_with_a_hard_cap_is_refused_rather_than_broken(golden_bundle, tmp_path, policy, named):
    """The sampler drew from the short list ignoring caps: max_per_creator=1 gave 3 items of one creator."""
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "h.db") as rec:
        user = _with_history(rec)
        assert rec.recommend(user, 8, policy=policy)  # the policy itself serves lists
        log = explore(rec, temperature=2.0, seed=1)
        with pytest.raises(ConfigError, match=f"exploration cannot keep the policy's {named}"):
            rec.recommend(user, 8, policy=policy)
        assert log.pop() is None
        shown = [r.item_id for r in rec.recommend(user, 8)]  # without the cap it explores
        assert list(log.pop().items) == shown


def test_a_newcomers_creator_spread_is_sampled_over_not_refused(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "h.db") as rec:
        log = explore(rec, temperature=2.0, seed=1)
        shown = [r.item_id for r in rec.recommend("newcomer", 8)]
        assert list(log.pop().items) == shown
