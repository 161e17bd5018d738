"""Audit H1 fixes on the device side.

A "more like this" pull without direction (weight 0, or liked items that are removed added items whose
vectors read as zeros) no longer turns a request without a user vector into a "personal" list of tied
scores in row order: it stays cold, as for a user with no usable history. And add_items() refuses a
fractional value for an integer column (episode, release_ts; spec §7 / rule 8).
"""

from __future__ import annotations

import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import Policy, Recommender

NOW = 1763598915.0
CTX = {"now": NOW, "hour": 20.0}


@pytest.fixture
def rec(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as rec:
        yield rec


def _add(rec, prefix: str, count: int = 3) -> list[str]:
    """`count` items added on the device (no encoder input: their players have no user vector)."""
    vector = rec.catalog.vectors([5])[0].tolist()
    genre = rec.catalog.meta(5)["genre"]
    ids = [f"{prefix}{i}" for i in range(count)]
    rec.add_items([{"item_id": i, "title": f"Added {i}", "genre": genre, "vector": vector} for i in ids])
    return ids


def _finish(rec, user: str, ids: list[str]) -> None:
    for j, item in enumerate(ids):
        rec.record(user, item, "finish", timestamp=NOW - 600 + j)


def _summary(results):
    return [(r.item_id, round(r.score, 6), r.reason.kind) for r in results]


def _assert_not_row_order(results):
    assert len({r.score for r in results}) > 1, "every score tied: the query had no direction"
    assert all(r.reason.kind != "history" for r in results)  # "because you played" a removed / unused item


def test_liked_removed_added_items_without_user_vector_stay_cold(rec):
    played = _add(rec, "add")
    _finish(rec, "u", played)
    rec.record("u", played[0], "more_like_this", timestamp=NOW - 60)
    control = _add(rec, "ctl")  # the same history without "more like this": no usable history
    _finish(rec, "ref", control)
    rec.remove_items(played + control)

    got = rec.recommend("u", 6, CTX)
    _assert_not_row_order(got)
    assert _summary(got) == _summary(rec.recommend("ref", 6, CTX))
    assert rec.stats()["counters"].get("query_no_direction") == 1  # counted, not silent


def test_feedback_weight_zero_without_user_vector_stays_cold(rec):
    liked = rec.catalog.item_id(30)
    _finish(rec, "c", _add(rec, "new"))
    rec.record("c", liked, "more_like_this", timestamp=NOW - 60)
    _finish(rec, "ref", _add(rec, "ctl"))
    policy = Policy(feedback_weight=0.0)

    got = rec.recommend("c", 6, CTX, policy=policy)
    _assert_not_row_order(got)
    # the items of a user with no usable history (the liked item's neighbours still join the short list,
    # spec §4, so the standardised scores differ a little and two near ties may swap)
    assert {r.item_id for r in got} == {r.item_id for r in rec.recommend("ref", 6, CTX, policy=policy)}
    # with its weight the same pull steers the list as before
    steered = rec.recommend("c", 6, CTX)
    assert steered[0].reason.kind == "feedback"


def test_a_zero_pull_leaves_a_user_vector_in_charge(rec):
    """With an encoder vector the query keeps its direction whatever the pull: the request is not cold."""
    bundle_items = [rec.catalog.item_id(r) for r in (1, 2, 3, 4)]
    _finish(rec, "w", bundle_items)
    liked = _add(rec, "gone", 1)
    rec.record("w", liked[0], "more_like_this", timestamp=NOW - 60)
    rec.remove_items(liked)
    got = rec.recommend("w", 6, CTX)
    assert len({r.score for r in got}) > 1
    assert all(r.reason.kind not in ("popular", "fallback") for r in got)
    assert "query_no_direction" not in rec.stats()["counters"]


@pytest.mark.parametrize("meta", [{"episode": 1.5}, {"episode": 2.000001}, {"release_ts": 1.5},
                                  {"release_ts": 1_700_000_000.25}])
def test_add_items_refuses_fractional_integer_columns(rec, meta):
    name = next(iter(meta))
    with pytest.raises(ConfigError, match=f"{name} must be a whole number"):
        rec.add_items([{"item_id": "z", "genre": "jazz", "series_id": "s01", **meta}])
    assert "z" not in rec.catalog.index  # nothing stored on refusal
    rec.add_items([{"item_id": "ok", "genre": "jazz", "vector": rec.catalog.vectors([1])[0].tolist()}])
    with pytest.raises(ConfigError, match=f"{name} must be a whole number"):
        rec.update_items([{"item_id": "ok", "genre": "jazz", **meta}])


def test_add_items_takes_whole_values_written_as_floats(rec):
    rec.add_items([{"item_id": "z", "genre": "jazz", "series_id": "s01", "episode": 2.0,
                    "release_ts": 1_700_000_000.0},
                   {"item_id": "y", "genre": "jazz", "series_id": "s01", "episode": 3, "release_ts": 1_700_000_000}])
    meta = rec.catalog.meta(rec.catalog.row("z"))
    assert meta["episode"] == 2 and meta["release_ts"] == 1_700_000_000
