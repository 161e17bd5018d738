"""Onboarding choices steer a newcomer's list (spec §3): a chosen genre, tag or language must show in
it, even when its items are far less popular than the catalog's hits, and the choices keep steering
while the history is short (a "more like this" item chosen with them included), then give way to
the user's own history."""

from __future__ import annotations

import pytest

from edgerec.runtime import Recommender
from edgerec.runtime.policies import column_values

CONTEXT = {"now": 1763598915.0, "hour": 20.5}


@pytest.fixture
def rec(golden_bundle, engine):
    with Recommender.open(golden_bundle, history=None, backend=engine) as rec:
        yield rec


def shown(rec, user, column, value, k=10):
    return sum(r.meta[column] == value for r in rec.recommend(user, k=k, context=CONTEXT))


def least_shown_genre(rec):
    """The genre with at least 5 items that the popular list shows least (the golden bundle's: 2 of 10)."""
    candidates = [g for g in column_values(rec.catalog, "genre") if rec.catalog.matches("genre", None, [g]).sum() >= 5]
    return min(sorted(candidates), key=lambda g: shown(rec, "nobody", "genre", g))


def test_every_genre_and_language_choice_shows_in_a_newcomers_list(rec):
    for column in ("genre", "language"):
        for value in sorted(column_values(rec.catalog, column)):
            user = f"{column}:{value}"
            rec.onboard(user, **{f"{column}s": [value]})
            matching = int(rec.catalog.matches(column, None, [value]).sum())
            assert shown(rec, user, column, value) >= min(5, matching), (column, value)


def test_a_chosen_tag_shows_too(rec):
    tags = sorted({t for row in range(len(rec.catalog)) for t in rec.catalog.tags(row)})
    popular = {r.item_id for r in rec.recommend("nobody", k=10, context=CONTEXT)}
    rare = [t for t in tags if not any(t in rec.catalog.tags(rec.catalog.row(i)) for i in popular)]
    tag = next(t for t in rare if sum(t in rec.catalog.tags(r) for r in range(len(rec.catalog))) >= 3)
    rec.onboard("fan", tags=[tag])
    steered = rec.recommend("fan", k=10, context=CONTEXT)
    assert sum(tag in r.meta["tags"] for r in steered) >= 3


def test_choices_still_steer_when_items_are_chosen_with_them(rec):
    genre = least_shown_genre(rec)
    item = next(r.item_id for r in rec.recommend("nobody", k=10, context=CONTEXT) if r.meta["genre"] != genre)
    rec.onboard("items only", items=[item])
    rec.onboard("items and genre", items=[item], genres=[genre])
    assert shown(rec, "items and genre", "genre", genre) >= shown(rec, "items only", "genre", genre) + 3


def test_choices_fade_as_the_history_grows(rec):
    genre = least_shown_genre(rec)
    played = [r.item_id for r in rec.recommend("nobody", k=10, context=CONTEXT) if r.meta["genre"] != genre]
    rec.onboard("chooser", genres=[genre])
    for n, item in enumerate(played[:3], start=1):
        for user in ("chooser", "plain"):
            rec.record(user, item, "finish", timestamp=CONTEXT["now"] - 100 + n)
        if n < 3:  # a short history: the choices still pull their genre up
            assert shown(rec, "chooser", "genre", genre) > shown(rec, "plain", "genre", genre)
    chooser = [r.item_id for r in rec.recommend("chooser", k=10, context=CONTEXT)]
    assert chooser == [r.item_id for r in rec.recommend("plain", k=10, context=CONTEXT)]


def test_the_prior_is_taken_at_the_start_of_the_requests_hour(golden_bundle):
    """Spec §3: the cold-start prior uses the request's time truncated to the hour, so a runtime may keep
    it for the hour and every runtime gives the same scores whenever in the hour it was first asked."""
    def newcomer_scores(now):
        with Recommender.open(golden_bundle, history=None, backend="onnx") as rec:
            return [(r.item_id, r.score) for r in rec.recommend("newcomer", k=10, context={"now": now, "hour": 20.0})]

    with Recommender.open(golden_bundle, history=None, backend="onnx") as rec:
        rows = range(rec.catalog.base_count)
        newest = float(max(rec.catalog.numeric_column("release_ts", list(rows))))
    hour = 3600 * (int(newest) // 3600 + 30)  # a day after the newest release: its bonus still moves by the minute
    assert newcomer_scores(hour + 10.0) == newcomer_scores(hour + 3590.0)
    assert newcomer_scores(hour + 10.0) != newcomer_scores(hour + 3600.0 + 10.0)


def test_an_added_items_given_popularity_counts_in_the_cold_start_list(golden_bundle):
    """Spec §4: the prior reads the popularity and release an added item's metadata gives (it read 0, so an
    item a server knows to be a hit never reached a newcomer's list)."""
    with Recommender.open(golden_bundle, history=None, backend="onnx") as rec:
        rows = list(range(rec.catalog.base_count))
        top = float(max(rec.catalog.numeric_column("popularity", rows)))
        dim = rec.catalog.vectors([0]).shape[1]
        rec.add_items([{"item_id": "hit", "title": "Hit", "vector": [1.0] + [0.0] * (dim - 1), "popularity": 10 * top},
                       {"item_id": "unknown", "title": "Unknown", "vector": [0.0, 1.0] + [0.0] * (dim - 2)}])
        listed = [r.item_id for r in rec.recommend("newcomer", k=10, context=CONTEXT)]
    assert listed[0] == "hit" and "unknown" not in listed
