"""Audit fixes on the device side: the newest feedback about an item wins (spec §2), reasons never name
a refused item (§6), and the context prior is not added on top of the scorer (§4 Context)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edgerec.runtime import Recommender
from edgerec.runtime import user_state as us

# play 0, finish 1, skip 2, like 3, not_interested 4, more_like_this 5 (vocab.DEVICE_EVENTS)
PLAY, FINISH, SKIP, LIKE, NOT_INTERESTED, MORE = range(6)
NOW = 1763598915.0


def folded(rows, codes, numpy_path, monkeypatch):
    if numpy_path:
        monkeypatch.setattr(us, "SHORT_WINDOW", 0)
    window = us.Window(np.array(rows, np.int64), np.array(codes, np.int8), 0, np.zeros(len(rows)))
    got = window.folded()
    assert us.fold_events(list(rows), list(codes)) == got  # both paths give the same fields
    return got


@pytest.mark.parametrize("numpy_path", [False, True])
def test_not_interested_after_like_more_like_this_or_finish_cancels_them(numpy_path, monkeypatch):
    rows = [7, 7, 7, 8, 8, 9, 9, 9]
    codes = [LIKE, FINISH, NOT_INTERESTED, MORE, NOT_INTERESTED, PLAY, FINISH, LIKE]
    got = folded(rows, codes, numpy_path, monkeypatch)
    assert got["liked"] == [] and got["loved"] == [9] and got["finished"] == [9]
    assert got["disliked"] == [7, 8]
    assert got["consumed"] == [7, 9] and got["excluded"] == {7, 8, 9}  # the sequence and seen filter stay


@pytest.mark.parametrize("numpy_path", [False, True])
def test_a_like_or_more_like_this_after_not_interested_lifts_the_refusal(numpy_path, monkeypatch):
    rows = [3, 3, 4, 4, 5, 5, 5]
    codes = [NOT_INTERESTED, MORE, NOT_INTERESTED, LIKE, NOT_INTERESTED, FINISH, PLAY]
    got = folded(rows, codes, numpy_path, monkeypatch)
    assert got["disliked"] == [5] and got["liked"] == [3] and got["loved"] == [4]
    assert got["finished"] == []  # 5's newest feedback is still "not interested": a finish is no feedback


@pytest.mark.parametrize("numpy_path", [False, True])
def test_a_refused_item_takes_no_place_among_the_newest_five(numpy_path, monkeypatch):
    rows = list(range(10, 16)) + [15]
    codes = [MORE] * 6 + [NOT_INTERESTED]
    got = folded(rows, codes, numpy_path, monkeypatch)
    assert got["liked"] == [10, 11, 12, 13, 14] and got["disliked"] == [15]


@pytest.fixture
def golden_rec(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as rec:
        yield rec


def test_no_reason_names_an_item_marked_not_interested(golden_rec):
    rec = golden_rec
    ids = [rec.catalog.item_id(r) for r in range(8)]
    for i, item in enumerate(ids[:6]):
        rec.record("u", item, "play", timestamp=NOW - 100 + i)
    rec.record("u", ids[6], "more_like_this", timestamp=NOW - 10)
    plain = rec.recommend("u", k=40, context={"now": NOW})
    named = {r.reason.item_id for r in plain}
    refused = [item for item in (ids[6], *ids[:6]) if item in named][:2]
    assert refused  # the reasons named them before
    for i, item in enumerate(refused):
        rec.record("u", item, "not_interested", timestamp=NOW - 5 + i)
    after = rec.recommend("u", k=40, context={"now": NOW})
    assert after and not {r.reason.item_id for r in after} & set(refused)


def test_a_refused_items_tags_leave_the_matched_tags(golden_rec):
    """A tag only the refused history item carried is matched by no reason any more."""
    rec, cat = golden_rec, golden_rec.catalog
    rows = list(range(len(cat)))
    tags = {r: set(cat.tag_counts([r])) for r in rows}
    history = rows[:6]
    own = {r: tags[r] - set().union(*(tags[h] for h in history if h != r)) for r in history}
    refused = next(r for r in history if own[r] and any(own[r] & tags[c] for c in rows[6:]))
    for i, r in enumerate(history):
        rec.record("u", cat.item_id(r), "play", timestamp=NOW - 100 + i)
    shown = {t for r in rec.recommend("u", k=50, context={"now": NOW}) for t in r.reason.tags}
    assert shown & own[refused]  # matched before
    rec.record("u", cat.item_id(refused), "not_interested", timestamp=NOW)
    after = rec.recommend("u", k=50, context={"now": NOW})
    assert not {t for r in after for t in r.reason.tags} & own[refused]


def test_the_context_prior_is_not_added_on_top_of_the_scorer(golden_bundle, tmp_path):
    """The ranked golden bundle ships a scorer and context priors: with the scorer ranking, the list is the
    same whatever the context weight, in the order of the scorer's own sums."""
    ranked = golden_bundle.parent / "ranked"
    with Recommender.open(ranked, history=tmp_path / "r.db") as rec:
        for i in range(6):
            rec.record("u", rec.catalog.item_id(3 * i), "play", timestamp=NOW - 100 + i)
        context = {"now": NOW, "hour": 21.0, "device": "tv"}
        scorer = replace(rec.policy, use_scorer=True, language_boost=0.0, diversity=0.0)

        def run(weight, policy):
            return rec.recommend("u", k=12, context=context, policy=replace(policy, context_weight=weight))

        off, on = run(0.0, scorer), run(5.0, scorer)
        assert [(r.item_id, r.score) for r in on] == [(r.item_id, r.score) for r in off]
        sums = [r.meta["scorer_score"] for r in on]
        assert sums == sorted(sums, reverse=True)
        plain = replace(scorer, use_scorer=False)  # without the scorer the prior still counts
        assert [r.score for r in run(5.0, plain)] != [r.score for r in run(0.0, plain)]
