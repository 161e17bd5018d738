"""Team-draft interleaving pick by pick (its mutation run asked for these; tools/mutation-scores.md): who
picks each round, the skipping of items already shown, a team that runs out, each click credited to the
team that placed the item, and the device stage that merges two lists."""

from __future__ import annotations

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime.features import DEVICES
from edgerec.runtime.interleave import (
    InterleaveStage,
    credit,
    other_recommender,
    team_draft,
    winner,
)
from edgerec.runtime.request import Recommendation, Request


class Coins:
    """A generator whose random() follows a script (below 0.5: team A picks first), counting its draws."""

    def __init__(self, *values):
        self.values, self.draws = list(values), 0

    def random(self):
        self.draws += 1
        return self.values.pop(0)


def test_each_round_the_team_with_fewer_picks_adds_its_best_item_not_yet_shown():
    coins = Coins(0.4, 0.6, 0.5)  # ties only: A, then B, then B (0.5 is not below 0.5)
    merged = team_draft(["1", "2", "3", "4"], ["2", "5", "1", "6"], 6, coins)
    assert merged.items == ["1", "2", "5", "3", "6", "4"]
    assert merged.teams == ["A", "B", "B", "A", "B", "A"]
    assert coins.draws == 3 and coins.values == []


def test_a_team_that_runs_out_hands_its_turn_to_the_other():
    merged = team_draft(["x"], ["y", "z", "w"], 5, Coins(0.9, 0.1))
    assert merged.items == ["y", "x", "z", "w"] and merged.teams == ["B", "A", "B", "B"]
    merged = team_draft(["p", "q", "r"], ["p"], 3, Coins(0.1))
    assert merged.items == ["p", "q", "r"] and merged.teams == ["A", "A", "A"]  # B's only item was taken
    assert team_draft(["a", "b"], ["c"], 0, Coins()).items == []
    assert len(team_draft(["a", "b"], ["c", "d"], 3, np.random.default_rng(0)).items) == 3


def test_credit_counts_each_click_for_the_team_of_its_position():
    teams = ["A", "B", "B", "A", "B"]
    assert credit(teams, [1, 2, 4]) == (0, 3)
    assert credit(teams, [0, 3]) == (2, 0)
    assert credit(teams, [4, 0]) == (1, 1)
    assert credit(teams, []) == (0, 0)
    for clicked in ([1, 1], [5], [-1]):
        with pytest.raises(ConfigError):
            credit(teams, clicked)
    with pytest.raises(ConfigError) as error:
        credit(["A", "C"], [0])
    assert str(error.value) == ("credit() takes the list's teams ('A' or 'B', one per position) and each clicked "
                                "position once")
    with pytest.raises(ConfigError, match="a clicked position must be an integer from 0 to 1"):
        credit(["A", "B"], [2])


def test_each_argument_is_named():
    cases = [(lambda: team_draft(None, ["x"], 1, Coins()), r"^team A's list must be a list of strings"),
             (lambda: team_draft(["x"], "yz", 1, Coins()), r"^team B's list must be a list of strings"),
             (lambda: team_draft(["x"], None, 1, Coins()), r"^team B's list must be a list of strings"),
             (lambda: team_draft(["x"], ["y"], -1, Coins()), r"^k must be an integer from 0 to 10000"),
             (lambda: team_draft(["x"], ["y"], 10_001, Coins()), r"^k must be an integer from 0 to 10000"),
             (lambda: credit("AB", [0]), r"^teams must be a list of values"),
             (lambda: credit(["A"], "0"), r"^clicked must be a list of values"),
             (lambda: InterleaveStage(lambda r: [], seed=-1), r"^seed must be an integer from 0 to")]
    for call, message in cases:
        with pytest.raises(ConfigError, match=message):
            call()
    assert team_draft(["x"], ["y"], 10_000, Coins(0.1, 0.1)).items == ["x", "y"]
    InterleaveStage(lambda r: [], seed=0)


def test_the_winner_is_the_team_with_more_clicks():
    assert (winner(2, 1), winner(1, 2), winner(1, 1), winner(0, 0)) == ("A", "B", None, None)


def _rec(item, score, **meta):
    return Recommendation(item, score, f"t-{item}", None, meta)


def _request(results, k=4, device=-1, filters=None):
    request = Request("u", k, 1.7e9, 20.5, device, filters, None, None)
    request.results = results
    return request


def test_the_stage_keeps_each_teams_own_result_and_marks_its_team():
    theirs = [_rec("x", 9.0, src="b"), _rec("a", 8.0, src="b")]
    stage = InterleaveStage(lambda request: theirs, seed=3)
    stage.rng = Coins(0.6, 0.2)  # B first, then A
    mine = [_rec("a", 1.0, src="a"), _rec("b", 0.5, src="a")]
    out = stage(_request(mine, k=4)).results
    assert [(r.item_id, r.score, r.meta) for r in out] == [
        ("x", 9.0, {"src": "b", "team": "B", "shared": False}), ("a", 1.0, {"src": "a", "team": "A", "shared": True}),
        ("b", 0.5, {"src": "a", "team": "A", "shared": False})]  # "a": both lists hold it
    assert mine[0].meta == {"src": "a"} and theirs[0].meta == {"src": "b"}  # the inputs are left as they were


def test_the_stage_does_not_merge_inside_team_bs_own_request():
    inner_seen = []

    def other(request):  # B is this very pipeline under another policy: it runs the stage again
        inner = _request([_rec("y", 2.0)], k=request.k)
        inner_seen.append(stage(inner).results)
        return inner.results

    stage = InterleaveStage(other, seed=1)
    out = stage(_request([_rec("a", 1.0)], k=2)).results
    assert [r.meta for r in inner_seen[0]] == [{}]  # no team: not merged
    assert sorted(r.meta["team"] for r in out) == ["A", "B"]
    assert sorted(r.meta["team"] for r in stage(_request([_rec("a", 1.0)], k=2)).results) == ["A", "B"]


def test_the_stage_checks_its_arguments():
    with pytest.raises(ConfigError) as error:
        InterleaveStage(3)
    assert str(error.value) == "InterleaveStage needs a function giving team B's list (got int); e.g. other_recommender(rec_b)"
    for seed in (-1, 2**63 + 1, 1.5):
        with pytest.raises(ConfigError, match="seed"):
            InterleaveStage(lambda r: [], seed=seed)
    InterleaveStage(lambda r: [], seed=2**63)
    InterleaveStage(lambda r: [], seed=None)


def test_a_seeded_stage_repeats_its_draws():
    def draws(seed):
        stage = InterleaveStage(lambda r: [_rec(f"b{i}", 1.0) for i in range(6)], seed=seed)
        return [[r.item_id for r in stage(_request([_rec(f"a{i}", 1.0) for i in range(6)], k=6)).results]
                for _ in range(5)]
    assert draws(7) == draws(7) and draws(7) != draws(8)


class FakeRec:
    def __init__(self):
        self.calls = []

    def recommend(self, user, k, context=None, filters=None, policy=None):
        self.calls.append((user, k, context, filters, policy))
        return ["list"]


def test_team_b_is_asked_in_the_requests_own_context():
    rec = FakeRec()
    ask = other_recommender(rec, policy="P")
    assert ask(_request([], k=3, device=0)) == ["list"]
    ask(_request([], k=5, device=-1, filters="F"))
    assert rec.calls == [("u", 3, {"now": 1.7e9, "hour": 20.5, "device": DEVICES[0]}, None, "P"),
                         ("u", 5, {"now": 1.7e9, "hour": 20.5}, "F", "P")]
