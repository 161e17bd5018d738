"""explain_list (runtime/explain_scores.py) on the spec's ranked golden bundle, which ships a scorer:
the list is the scorer's list for the user, k and context as asked (10 items when k is not given, not
the recommender's default), each row the item's scorer score and the contributions that add up to it,
and the refusals word for word."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from edgerec.errors import ConfigError
from edgerec.runtime.explain_scores import explain_list
from edgerec.runtime.recommender import Recommender

RANKED = Path(__file__).resolve().parents[2] / "spec" / "golden" / "ranked"
HISTORY = ("i03", "i11", "i19", "i27")
MORNING_TV = {"now": 1.767e9, "hour": 7.0, "device": "tv"}


@pytest.fixture
def rec():
    with Recommender.open(RANKED, backend="onnx") as opened:
        for item in HISTORY:
            opened.record("bob", item, "finish")
        yield opened


def _rows(results) -> list[dict]:
    return [{"item_id": r.item_id, "title": r.title, "score": r.meta["scorer_score"],
             "contributions": r.meta["contributions"], "why": r.reason.text} for r in results]


def test_the_explained_list_is_the_scorers_list_for_that_context(rec):
    scorer = replace(rec.policy, use_scorer=True)
    got = explain_list(rec, "bob", k=4, context=MORNING_TV)
    assert got == _rows(rec.recommend("bob", k=4, context=MORNING_TV, policy=scorer))
    assert [row["item_id"] for row in got] != [r.item_id for r in rec.recommend("bob", k=4, context=MORNING_TV)]
    for row in got:
        assert list(row) == ["item_id", "title", "score", "contributions", "why"]
        assert sum(row["contributions"].values()) == pytest.approx(row["score"], abs=1e-9)
    evening = explain_list(rec, "bob", k=4, context={"now": 1.767e9, "hour": 20.5})
    assert evening == _rows(rec.recommend("bob", k=4, context={"now": 1.767e9, "hour": 20.5}, policy=scorer))
    assert evening != got  # the context reaches the scorer


def test_without_k_the_list_has_ten_items(rec):
    assert rec.default_k != 10
    assert explain_list(rec, "bob", context=MORNING_TV) == _rows(
        rec.recommend("bob", k=10, context=MORNING_TV, policy=replace(rec.policy, use_scorer=True)))


def test_a_bundle_without_a_scorer_is_refused(golden_bundle):
    with Recommender.open(golden_bundle, backend="onnx") as plain:
        plain.record("bob", plain.catalog.item_id(0), "finish")
        with pytest.raises(ConfigError) as caught:
            explain_list(plain, "bob")
    assert str(caught.value) == ("this bundle ships no interpretable scorer; export it with "
                                 "`edgerec export ... --scorer CKPT` (train one with `edgerec scorer train`)")


class BrokenEncoder:
    def encode(self, rows):
        raise RuntimeError("the engine failed")


def test_a_failed_user_encoder_is_not_reported_as_a_user_without_history(rec):
    """The popularity fallback has no per-feature scores: it was refused as 'no history yet, record
    some events first', wrong advice for a user with a history."""
    from edgerec.errors import ModelError

    rec.models._encoder = BrokenEncoder()
    with pytest.raises(ModelError) as caught:
        explain_list(rec, "bob", k=3)
    assert str(caught.value) == ("the user encoder failed on this request, so the list is the popularity fallback "
                                 "and is not scored per feature; try again (stats() counts these as encode_fallback)")
    assert rec.stats()["counters"]["encode_fallback"] == 1


@pytest.mark.parametrize("events", [[], [("i03", "skip")], [("fresh", "finish")]],
                         ids=["none", "only a skip", "only an item added on the device"])
def test_a_list_that_is_not_personal_yet_is_refused_as_such(rec, events):
    rec.add_items([{"item_id": "fresh", "title": "Fresh", "vector": [1.0] + [0.0] * (rec.manifest.dim - 1)}])
    for item, event in events:
        rec.record("dan", item, event)
    with pytest.raises(ConfigError) as caught:
        explain_list(rec, "dan", k=3)
    assert str(caught.value) == ("this user's list is not personal yet (a newcomer's list), so it is not scored "
                                 "per feature; record plays, finishes or likes of the bundle's items first "
                                 "(`edgerec record`)")
