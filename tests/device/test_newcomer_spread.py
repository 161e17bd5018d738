"""A newcomer's list spreads over creators (spec §5 "Newcomer spread") and names the choice it matches
(§6 "choice"): a cold or short-history list keeps at most cold_max_per_creator items of one creator
ahead of other creators' items (bundle default, absent: 3; Policy overrides; 0 turns it off), without
shortening the list or putting an unmatched item before a chosen one."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter

import numpy as np
import pytest

from edgerec.runtime import Recommender
from edgerec.runtime import retrieve as retrieve_module
from edgerec.runtime.policies import Policy, column_values

CONTEXT = {"now": 1763598915.0, "hour": 20.5}


@pytest.fixture
def rec(golden_bundle):
    with Recommender.open(golden_bundle, backend="onnx") as rec:
        yield rec


def listed(rec, user, k=8, **policy):
    return rec.recommend(user, k=k, context=CONTEXT, policy=Policy(**policy) if policy else None)


def most_by_one_creator(results) -> int:
    return max(Counter(r.meta["creator"] for r in results if r.meta.get("creator")).values())


def past_the_cap(results, cap: int) -> list[bool]:
    """For each item in list order: whether its creator already had `cap` items above it."""
    seen, flags = Counter(), []
    for r in results:
        flags.append(seen[r.meta["creator"]] >= cap)
        seen[r.meta["creator"]] += 1
    return flags


def test_a_newcomers_list_keeps_three_items_of_a_creator_by_default(rec):
    """The golden bundle has no defaults.cold_max_per_creator (made before it): 3 applies."""
    assert "cold_max_per_creator" not in rec.manifest.defaults
    off = listed(rec, "nobody", cold_max_per_creator=0)
    assert most_by_one_creator(off) > 3  # the golden world's popular list crowds a creator
    spread = listed(rec, "nobody")
    assert len(spread) == 8 and most_by_one_creator(spread) == 3 and not any(past_the_cap(spread, 3))
    assert [r.item_id for r in listed(rec, "nobody", cold_max_per_creator=3)] == [r.item_id for r in spread]
    two = listed(rec, "nobody", cold_max_per_creator=2)
    assert most_by_one_creator(two) == 2 and len(two) == 8
    # 5 creators: at 1 each the first 5 places go to 5 creators, and 3 items past the cap fill the list
    one = listed(rec, "nobody", cold_max_per_creator=1)
    assert len(one) == 8 and past_the_cap(one, 1) == [False] * 5 + [True] * 3


def test_the_bundles_default_sets_it_and_a_policy_overrides_it(bundle_copy):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["defaults"]["cold_max_per_creator"] = 1
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with Recommender.open(bundle_copy, backend="onnx") as rec:
        assert past_the_cap(listed(rec, "nobody"), 1) == [False] * 5 + [True] * 3
        assert most_by_one_creator(listed(rec, "nobody", cold_max_per_creator=3)) == 3
        assert past_the_cap(listed(rec, "nobody", diversity=0.0, short_list=20), 1)[:5] == [False] * 5  # left unset


def test_a_short_history_keeps_the_spread_and_a_real_history_its_own_caps(rec):
    items = [r.item_id for r in listed(rec, "nobody", k=20)]
    rec.record("short", items[0], "play", timestamp=CONTEXT["now"] - 60)
    assert most_by_one_creator(listed(rec, "short", cold_max_per_creator=2)) == 2  # 5 creators: 8 fill at 2 each
    assert most_by_one_creator(listed(rec, "short")) <= 3 < most_by_one_creator(listed(rec, "short", cold_max_per_creator=0))
    for n, item in enumerate(items[:3]):
        rec.record("regular", item, "play", timestamp=CONTEXT["now"] - 60 + n)
    assert [r.item_id for r in listed(rec, "regular")] == [r.item_id for r in listed(rec, "regular", cold_max_per_creator=0)]


def test_the_requests_own_smaller_cap_still_drops_items(rec):
    own = listed(rec, "nobody", max_per_creator=1, cold_max_per_creator=3)
    assert most_by_one_creator(own) == 1
    # a larger own cap gives way to the spread's 3, which passes items over instead of dropping them
    assert [r.item_id for r in listed(rec, "nobody", max_per_creator=5)] == [r.item_id for r in listed(rec, "nobody")]


def test_items_past_the_cap_are_passed_over_not_dropped_and_never_behind_unmatched_ones(rec):
    """A genre whose items are mostly one creator's: with the spread its items still fill the list
    before any item of another genre, and the list is as long as k."""
    cat = rec.catalog
    genre = max(sorted(column_values(cat, "genre")), key=lambda g: max(Counter(
        cat.column("creator", np.flatnonzero(cat.matches("genre", None, [g])))).values()))
    rec.onboard("chooser", genres=[genre])
    matching = int(cat.matches("genre", None, [genre]).sum())
    for cap in (0, 1, 2):
        got = listed(rec, "chooser", k=min(matching, 8), cold_max_per_creator=cap)
        assert len(got) == min(matching, 8) and all(r.meta["genre"] == genre for r in got), cap


def test_a_language_choice_is_named_as_the_reason(rec):
    language = sorted(column_values(rec.catalog, "language"))[0]
    rec.onboard("speaker", languages=[language])
    got = listed(rec, "speaker")
    mine = [r for r in got if r.meta["language"] == language]
    assert mine and all(r.reason.kind == "choice" and language in r.reason.text for r in mine)
    assert all(r.reason.kind == "popular" for r in got if r.meta["language"] != language)
    assert all(r.reason.kind == "popular" for r in listed(rec, "nobody"))  # no choice: nothing to name


def test_a_genre_choice_without_a_matching_tag_is_named_too(rec):
    """The golden items carry their genre as a tag; an item added without tags does not."""
    genre, language = sorted(column_values(rec.catalog, "genre"))[0], sorted(column_values(rec.catalog, "language"))[0]
    rec.add_items([{"item_id": "untagged", "title": "Untagged", "genre": genre, "language": language, "tags": [],
                    "popularity": 1e6, "creator": "someone new"}])
    rec.onboard("genre fan", genres=[genre], languages=[language])
    [reason] = [r.reason for r in listed(rec, "genre fan") if r.item_id == "untagged"]
    assert (reason.kind, reason.text) == ("choice", f"matches your choices: {genre}, {language}")


@pytest.mark.parametrize("ann", [None, "usearch"])
def test_the_new_releases_are_found_once_per_request(golden_bundle, tmp_path, monkeypatch, ann):
    if ann and importlib.util.find_spec("usearch") is None:
        pytest.skip("the index is the optional extra edgerec[ann]")
    calls = []
    real = retrieve_module.fresh_rows
    monkeypatch.setattr(retrieve_module, "fresh_rows", lambda cat, request: calls.append(1) or real(cat, request))
    with Recommender.open(golden_bundle, backend="onnx", ann=ann, cache_dir=tmp_path) as rec:
        items = [r.item_id for r in listed(rec, "nobody", k=5)]
        for n, item in enumerate(items):
            rec.record("regular", item, "play", timestamp=CONTEXT["now"] - 60 + n)
        calls.clear()
        got = listed(rec, "regular", freshness=2.0, freshness_days=365.0)
        assert got and len(calls) == 1 and rec.stats()["counters"].get("ann_too_few", 0) == 0
