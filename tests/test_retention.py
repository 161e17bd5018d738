"""Retention as the reads see it: before any prune, no read of the history (events, counts, profiles,
the device-wide items, exports, the user state and the recommendations built on it) returns an event
retention would remove at the time of the read; pruning later changes nothing a read returns."""

import itertools
import math
import time

import pytest
from handmade import recorded_back_then
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgerec.errors import ConfigError
from edgerec.runtime import user_state
from edgerec.runtime.history import KEEP_EVERYTHING, HistoryStore, Retention
from edgerec.runtime.pseudonyms import PseudonymousHistory
from edgerec.runtime.user_state import read_state

DAY = 86_400
EVERY = ("play", "finish", "skip", "like", "not_interested", "more_like_this")
USERS = itertools.count()


def reads(store: HistoryStore, profile: str) -> dict:
    """What every read path of the store returns about `profile` (and the device as a whole)."""
    events = store.events(profile)
    first = events[0].id if events else 0
    return {"events": [(e.id, e.item, e.ts) for e in events],
            "newest 3": [e.id for e in store.events(profile, limit=3)],
            "after 0": store.events_after(profile, 0, 10_000),
            "after first": store.events_after(profile, first, 10_000),
            "after 0, newest 2": store.events_after(profile, 0, 2),
            "count": store.count(profile), "count all": store.count(), "profiles": store.profiles(),
            "items since 0": store.items_since(0.0, EVERY)}  # export() prunes first: tested on its own below


def stored(store: HistoryStore) -> int:
    return store.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def test_default_retention_reads_none_of_the_events_older_than_two_years_before_any_prune(tmp_path):
    store = HistoryStore(tmp_path / "h.db")  # default retention: 730 days
    now = time.time()
    for i in range(5):  # an imported old history with its own times, older than 730 days
        recorded_back_then(store, "p", f"old{i}", EVERY[i], now - 731 * DAY + i)
        recorded_back_then(store, "gone", f"gone{i}", "finish", now - 900 * DAY + i)
    for i in range(3):
        store.record("p", f"new{i}", "play", ts=now - 729 * DAY + i)
    assert stored(store) == 13  # nothing pruned yet: only the reads apply retention
    seen = reads(store, "p")
    assert [item for _, item, _ in seen["events"]] == ["new0", "new1", "new2"]
    assert [item for _, item, _, _ in seen["after 0"]] == ["new0", "new1", "new2"]
    assert [item for _, item, _, _ in seen["after first"]] == ["new1", "new2"]
    assert [e.item for e in store.events("p", limit=3)] == ["new0", "new1", "new2"]
    assert seen["count"] == 3 and seen["count all"] == 3 and seen["profiles"] == ["p"]  # "gone" keeps nothing
    assert seen["items since 0"] == ["new0", "new1", "new2"]
    assert store.events("gone") == [] and store.events_after("gone", 0, 10) == [] and store.count("gone") == 0
    store.clock = lambda: now  # the prune below runs at the same moment as the reads above
    assert store.prune() == 10 and stored(store) == 3
    assert reads(store, "p") == seen  # the prune changed nothing the reads return


def test_reads_return_only_the_newest_max_events_before_the_hundred_record_prune(tmp_path):
    store = HistoryStore(tmp_path / "h.db", Retention(max_events=5))
    ids = [store.record("p", f"a{i}", "play") for i in range(10)]  # max_events + 5
    store.record("q", "b", "finish")
    assert stored(store) == 11
    seen = reads(store, "p")
    assert [item for _, item, _ in seen["events"]] == [f"a{i}" for i in range(5, 10)]
    assert seen["newest 3"] == ids[7:]
    assert [i for i, *_ in seen["after 0"]] == ids[5:] and [i for i, *_ in seen["after 0, newest 2"]] == ids[8:]
    assert [i for i, *_ in store.events_after("p", ids[2], 100)] == ids[5:]  # beyond max_events: not "after"
    assert [i for i, *_ in store.events_after("p", ids[6], 100)] == ids[7:]
    assert (seen["count"], seen["count all"], store.count("q")) == (5, 6, 1)
    assert seen["items since 0"] == [f"a{i}" for i in range(5, 10)] + ["b"]
    assert store.prune() == 5 and reads(store, "p") == seen


def test_an_export_deletes_what_retention_removed_before_it_reads(tmp_path):
    """A user asking for their data gets what is stored: expired rows still in the file are deleted
    first, not left out of the answer while they remain on the device."""
    store = HistoryStore(tmp_path / "h.db", Retention(max_events=3))
    now = time.time()
    recorded_back_then(store, "p", "old", "finish", now - 731 * DAY)
    ids = [store.record("p", f"a{i}", "play", ts=now - 10 + i) for i in range(5)]
    recorded_back_then(store, "gone", "x", "play", now - 900 * DAY)
    assert stored(store) == 7
    assert [(e["id"], e["item"]) for e in store.export("p")["events"]] == [(i, f"a{k}") for k, i in
                                                                             enumerate(ids) if k >= 2]
    assert stored(store) == 3 and store.export("gone")["events"] == []


@pytest.mark.parametrize("bad", [{"max_age_days": float("nan")}, {"max_age_days": 0}, {"max_age_days": -1.0},
                                 {"max_age_days": "730"}, {"max_events": -1}, {"max_events": 2.5},
                                 {"max_events": True}, {"max_events": None}])
def test_a_retention_that_would_hide_or_keep_the_wrong_events_is_refused(bad):
    with pytest.raises(ConfigError, match="Retention"):
        Retention(**bad)


@pytest.mark.parametrize("bad", [{"max_events": 5}, 730, "forever"])
def test_a_store_refuses_a_retention_that_is_not_one(tmp_path, bad):
    with pytest.raises(ConfigError, match="Retention"):
        HistoryStore(tmp_path / "h.db", bad)


def test_a_retention_without_an_age_limit_keeps_old_events(tmp_path):
    store = HistoryStore(tmp_path / "h.db", Retention(max_events=10, max_age_days=math.inf))
    store.record("p", "ancient", "play", ts=1.0)
    assert [e.item for e in store.events("p")] == ["ancient"] and store.prune() == 0


def test_a_pseudonymous_store_reads_with_retention_too(tmp_path):
    store = PseudonymousHistory(tmp_path / "h.db", b"s" * 32, Retention(max_events=2))
    now = time.time()
    recorded_back_then(store, "alice", "old", "play", now - 800 * DAY)
    for i in range(3):
        store.record("alice", f"n{i}", "play", ts=now)
    assert [e.item for e in store.events("alice")] == ["n1", "n2"] and store.count("alice") == 2
    assert [item for _, item, _, _ in store.events_after("alice", 0, 10)] == ["n1", "n2"]


def test_keep_everything_reads_every_event_of_an_old_log(tmp_path):
    store = HistoryStore(tmp_path / "h.db", KEEP_EVERYTHING)
    for i in range(150):  # past the 100-record prune, from the first second of the epoch on
        store.record("p", f"a{i}", "play", ts=float(i))
    assert store.count("p") == 150 == stored(store) and store.events("p")[0].ts == 0.0
    assert len(store.events_after("p", 0, 1_000)) == 150 and store.profiles() == ["p"]


# ------------------------------------------------------------------ property: reads == a prune now

NOW = 1_000_000_000.0


@settings(max_examples=150, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(-3, 3),
                                 st.sampled_from(["play", "finish", "like"])), max_size=30),
       max_events=st.integers(0, 6), days=st.sampled_from([1.0, 2.5, 10.0]), after=st.integers(0, 31),
       limit=st.integers(0, 8))
def test_every_read_is_what_a_prune_at_that_moment_leaves(events, max_events, days, after, limit):
    """Event times within seconds of the cutoff, recorded out of order: each read returns exactly
    the newest max_events (by id) of a profile's events at or after the cutoff, and the same after
    the prune that makes it physical."""
    retention = Retention(max_events=max_events, max_age_days=days)
    store = HistoryStore(":memory:", retention)
    store.clock = lambda: NOW
    cutoff = NOW - days * DAY
    rows = [(recorded_back_then(store, p, f"{p}{i}", event, cutoff + offset), p, f"{p}{i}", event, cutoff + offset)
            for i, (p, offset, event) in enumerate(events)]
    kept = {p: [r for r in rows if r[1] == p and r[4] >= cutoff][::-1][:max_events][::-1] for p in "abc"}
    everything = sorted(r for p in "abc" for r in kept[p])
    before = {}
    for p in "abc":
        assert [(e.id, e.item, e.event, e.ts) for e in store.events(p)] == [(i, it, ev, ts) for i, _, it, ev, ts in
                                                                        kept[p]]
        assert [e.id for e in store.events(p, limit=limit)] == [r[0] for r in kept[p]][::-1][:limit][::-1]
        assert store.events_after(p, after, limit) == [(i, it, ev, ts) for i, _, it, ev, ts in kept[p]
                                                       if i > after][::-1][:limit][::-1]
        assert store.count(p) == len(kept[p])
        before[p] = reads(store, p)
    assert store.count() == len(everything) and store.profiles() == sorted(p for p in "abc" if kept[p])
    assert store.items_since(cutoff + 1, ("play", "like")) == [it for _, _, it, ev, ts in everything
                                                               if ts >= cutoff + 1 and ev in ("play", "like")]
    store.prune()  # at the store's clock: the same moment
    assert stored(store) == len(everything) and all(reads(store, p) == before[p] for p in "abc")


# ------------------------------------------------------------------ the user state and recommendations


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_profile_whose_events_all_expired_gets_the_cold_start_list(rec):
    now = time.time()
    for i in range(12):
        recorded_back_then(rec.history, "expired", rec.catalog.item_id(i * 5),
                           ["finish", "like", "not_interested"][i % 3], now - 731 * DAY + i)
    rec.record("fresh", rec.catalog.item_id(0), "finish", timestamp=now)  # someone with a live history
    assert rec.history.count("expired") == 0 and stored(rec.history) == 13
    context = {"now": now, "hour": 20, "device": "tv"}
    cold = rec.recommend("newcomer", k=10, context=context)
    assert rec.recommend("expired", k=10, context=context) == cold  # items, scores, titles and reasons
    assert all(r.reason.kind != "history" for r in cold)
    assert read_state(rec.history, rec.catalog, "expired") == read_state(rec.history, rec.catalog, "newcomer")
    assert rec.export_history("expired")["events"] == []
    assert (rec.stats()["profiles"], rec.stats()["events"]) == (1, 1)


def test_a_cached_user_state_is_rebuilt_once_its_oldest_event_ages_out(rec):
    """No write happens between the requests (the cache key does not move); only the clock does."""
    clock = Clock(time.time())
    rec.history.clock = clock
    cache = rec.pipeline["history"].run.cache
    rows = [3, 14, 15, 92, 65]
    for i, row in enumerate(rows):  # the first event is one minute from the age cutoff
        rec.record("u", rec.catalog.item_id(row), "finish", timestamp=clock.now - 730 * DAY + 60 + i * DAY)
    first = rec.recommend("u", k=10)
    assert cache.get("u").state.consumed == rows
    assert rec.recommend("u", k=10) == first and rec.stats()["counters"]["user_cache_hits"] == 1
    clock.now += 61  # the first event is now older than retention keeps: the state must forget it
    again = rec.recommend("u", k=10)
    state = cache.get("u").state
    assert state.consumed == rows[1:] == read_state(rec.history, rec.catalog, "u").consumed
    assert rec.stats()["counters"]["user_cache_hits"] == 1  # the aged-out entry was not served
    assert again == rec.recommend("u", k=10)
    assert rec.stats()["counters"]["user_cache_hits"] == 2  # the rebuilt entry is cached again


def test_events_appended_to_a_window_whose_oldest_event_aged_out_read_it_afresh(rec):
    clock = Clock(time.time())
    rec.history.clock = clock
    cache = rec.pipeline["history"].run.cache
    rec.record("u", rec.catalog.item_id(7), "not_interested", timestamp=clock.now - 730 * DAY + 10)
    rec.record("u", rec.catalog.item_id(8), "finish", timestamp=clock.now)
    rec.recommend("u", k=5)
    assert 7 in cache.get("u").state.excluded
    clock.now += 11
    rec.record("u", rec.catalog.item_id(9), "finish", timestamp=clock.now)  # an append: the key moved
    results = rec.recommend("u", k=5)
    state = cache.get("u").state
    assert state == read_state(rec.history, rec.catalog, "u") and 7 not in state.excluded
    assert state.consumed == [8, 9] and rec.stats()["counters"].get("user_state_appended", 0) == 0
    assert len(results) == 5


def test_appends_keep_the_window_to_max_events(tiny_bundle, tmp_path):
    from edgerec.runtime import Recommender

    with Recommender.open(tiny_bundle, history=tmp_path / "h.db", retention=Retention(max_events=3)) as rec:
        cache = rec.pipeline["history"].run.cache
        for i in range(6):
            rec.record("u", rec.catalog.item_id(i * 11), "finish")
            rec.recommend("u", k=5)
            assert cache.get("u").state == read_state(rec.history, rec.catalog, "u")
        assert cache.get("u").state.consumed == [33, 44, 55]
        assert rec.stats()["counters"]["user_state_appended"] == 5  # the cheap path, kept to three events


ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("record"), st.integers(0, 40), st.integers(-3, 3)),  # seconds from the cutoff + 5 s
    st.tuples(st.just("record now"), st.integers(0, 40), st.just(0)),
    st.tuples(st.just("wait"), st.just(0), st.integers(1, 4)),
), min_size=1, max_size=20)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS, window=st.sampled_from([3, 2_000]))
def test_the_cached_state_is_always_the_state_of_a_full_read_as_the_clock_moves(rec, monkeypatch, actions, window):
    monkeypatch.setattr(user_state, "HISTORY_WINDOW", window)
    user = f"u{next(USERS)}"
    clock = Clock(time.time())
    rec.history.clock = clock
    cache = rec.pipeline["history"].run.cache
    for action, number, seconds in actions:
        if action == "wait":
            clock.now += seconds
        else:
            ts = clock.now if action == "record now" else clock.now - 730 * DAY + 5 + seconds
            rec.record(user, rec.catalog.item_id(number * 7), "finish" if number % 3 else "not_interested",
                       timestamp=ts)
        rec.recommend(user, k=5)
        assert cache.get(user).state == read_state(rec.history, rec.catalog, user)
