"""The history stage adds a user's new events to what it read before: the state is always the one
a full read gives (window, rewrites, other writers and catalog changes included)."""

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgerec.runtime import user_state
from edgerec.runtime.history import EVENTS, HistoryStore
from edgerec.runtime.user_state import read_state

USERS = itertools.count()
ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("record"), st.integers(0, 40), st.sampled_from(EVENTS)),
    st.tuples(st.just("unknown item"), st.just(0), st.sampled_from(EVENTS)),
    st.tuples(st.just("onboard"), st.integers(0, 3), st.just("")),
    st.tuples(st.just("forget"), st.just(0), st.just("")),
    st.tuples(st.just("other writer"), st.integers(0, 40), st.just("play")),
    st.tuples(st.just("other forgets"), st.just(0), st.just("")),
    st.tuples(st.just("other onboards"), st.just(0), st.just("")),
), min_size=1, max_size=25)


def act(rec, other: HistoryStore, user: str, action: str, number: int, event: str) -> None:
    """One step of ACTIONS: through the recommender, or through `other` (a second connection)."""
    if action == "record":
        rec.record(user, rec.catalog.item_id(number * 7), event)
    elif action == "unknown item":
        rec.history.record(user, "no-such-item", event)
    elif action == "onboard":
        rec.onboard(user, tags=[["jazz"], ["drama", "comedy"], [], ["news"]][number])
    elif action == "forget":
        rec.forget(user)
    elif action == "other forgets":
        other.forget(user)
    elif action == "other onboards":
        other.set_preferences(user, "tag", ["thriller"])
    else:
        other.record(user, rec.catalog.item_id(number * 7), event)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS, window=st.sampled_from([4, 9, 2_000]))
def test_the_state_after_new_events_is_the_state_of_a_full_read(rec, monkeypatch, actions, window):
    monkeypatch.setattr(user_state, "HISTORY_WINDOW", window)
    user = f"u{next(USERS)}"
    cache = rec.pipeline["history"].run.cache
    other = HistoryStore(rec.history.path)  # a second connection, as another process of the app would be
    try:
        for action, number, event in actions:
            act(rec, other, user, action, number, event)
            rec.recommend(user, k=5)
            assert cache.get(user).state == read_state(rec.history, rec.catalog, user)
    finally:
        other.close()


def test_a_long_history_reads_only_its_new_events(rec, monkeypatch):
    for i in range(60):
        rec.record("long", rec.catalog.item_id(i), "finish")
    rec.recommend("long", k=5)
    asked = []
    events_after = rec.history.events_after
    monkeypatch.setattr(rec.history, "events_after",
                        lambda user, after, limit: asked.append(after) or events_after(user, after, limit))
    last = rec.history.record("long", rec.catalog.item_id(100), "not_interested")
    results = rec.recommend("long", k=5)
    assert asked == [last - 1]  # from the event after the newest one read, not from the start
    assert rec.stats()["counters"]["user_state_appended"] == 1
    assert rec.catalog.item_id(100) not in [r.item_id for r in results]
    state = rec.pipeline["history"].run.cache.get("long").state
    assert state == read_state(rec.history, rec.catalog, "long") and rec.catalog.row(rec.catalog.item_id(100)) in \
        state.excluded and np.isin(np.arange(60), state.consumed).all()


def test_events_beyond_the_window_leave_the_state_as_new_ones_arrive(rec, monkeypatch):
    monkeypatch.setattr(user_state, "HISTORY_WINDOW", 4)
    cache = rec.pipeline["history"].run.cache
    for i in range(8):
        rec.record("w", rec.catalog.item_id(i * 7), "play" if i % 3 else "not_interested")
        rec.recommend("w", k=5)
        assert cache.get("w").state == read_state(rec.history, rec.catalog, "w")
    assert cache.get("w").state.excluded == {28, 35, 42, 49} and cache.get("w").state.disliked == [42] and \
        rec.stats()["counters"]["user_state_appended"] == 7


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_a_user_pushed_out_of_the_cache_comes_back_to_the_state_of_a_full_read(rec, actions):
    """With room for one user, every other request pushes the user out: their next request starts
    from the window kept for them (the events after it only), never a stale one."""
    user = f"u{next(USERS)}"
    cache = rec.pipeline["history"].run.cache
    cache.size = 1
    other = HistoryStore(rec.history.path)
    rec.record("filler", rec.catalog.item_id(3), "play")
    try:
        for action, number, event in actions:
            rec.recommend("filler", k=5)  # pushes `user` out
            act(rec, other, user, action, number, event)
            rec.recommend(user, k=5)
            assert cache.get(user).state == read_state(rec.history, rec.catalog, user)
    finally:
        other.close()


def test_the_windows_of_users_pushed_out_are_bounded_and_forgotten(rec):
    cache = rec.pipeline["history"].run.cache
    cache.size, cache.window_events = 1, 10
    for user, events in (("a", 4), ("b", 5), ("c", 3)):
        for i in range(events):
            rec.record(user, rec.catalog.item_id(i), "play")
        rec.recommend(user, k=5)
    assert cache.window("a") is not None and cache.window("b") is not None  # 4 + 5 events kept
    rec.record("d", rec.catalog.item_id(0), "play")
    rec.recommend("d", k=5)  # c's 3 events make 12: the oldest window goes
    assert cache.window("a") is None and cache.window("b") is not None and cache._window_total == 8
    rec.forget("b")
    assert cache.window("b") is None and cache._window_total == 3
    asked = []
    events_after = rec.history.events_after
    rec.history.events_after = lambda user, after, limit: asked.append((user, after)) or events_after(user, after, limit)
    appended = rec.stats()["counters"].get("user_state_appended", 0)
    rec.recommend("c", k=5)  # pushed out, nothing new since: nothing read
    last = rec.history.events("c")[-1].id
    rec.record("c", rec.catalog.item_id(9), "play")
    rec.recommend("d", k=5)
    rec.recommend("c", k=5)  # pushed out again, one new event: read from its last event on
    assert asked == [("c", last)] and rec.stats()["counters"]["user_state_appended"] == appended + 3  # d's too
    assert cache.get("c").state == read_state(rec.history, rec.catalog, "c")


@settings(max_examples=200, deadline=None)
@given(events=st.lists(st.tuples(st.integers(-1, 12), st.integers(-1, len(EVENTS) - 1)), max_size=60))
def test_a_short_window_folds_as_a_long_one(events):
    rows = np.array([r for r, _ in events], np.int64)
    codes = np.array([c for _, c in events], np.int8)
    window = user_state.Window(rows, codes, 0, np.zeros(len(rows)))
    short = window.folded()
    saved = user_state.SHORT_WINDOW
    user_state.SHORT_WINDOW = -1  # every window takes the numpy path
    try:
        assert window.folded() == short
    finally:
        user_state.SHORT_WINDOW = saved
