"""pre_period's every edge by hand (its mutation run asked for these; tools/mutation-scores.md): the window
[begin, end), sessions cut by more than SESSION_GAP of silence, days counted from `begin`, the rate of the
older events and which events are plays."""

from __future__ import annotations

import time

import pytest

from edgerec.errors import ConfigError
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.pre_period import DAY, PRE_FEATURES, SESSION_GAP, pre_period

B = float(int(time.time()) // DAY * DAY - 10 * DAY)  # recent: inside the history's retention
E = B + 3 * DAY


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "h.db")
    yield s
    s.close()


def _add(store, user, events):
    for item, event, ts, value in events:
        store.record(user, item, event, value=value, ts=ts)


def test_every_figure_by_hand(store):
    assert SESSION_GAP == 1800 and DAY == 86_400
    _add(store, "ana", [
        ("o1", "play", B - 5 * DAY, 10.0), ("o2", "like", B - 3 * DAY, None), ("o3", "play", B - DAY, 5.0),
        ("a", "play", B, None),  # exactly at begin: in; session 1 starts on day 0
        ("b", "play", B + 1000, 600.0),  # began at B + 400: 400 s after the last end, same session
        ("c", "finish", B + 3100, 300.0),  # began at B + 2800: exactly SESSION_GAP of silence, same session
        ("d", "skip", B + 4901, 0.0),  # 1801 s of silence: session 2, day 0
        ("e", "like", B + 4950, None),  # not a play
        ("f", "more_like_this", B + DAY + 50, None),  # feedback: not a play, but session 3 on day 1
        ("g", "play", B + 2 * DAY + 7200, 7200.0),  # began exactly 2 days after begin: session 4, day 2
        ("h", "play", E, 50.0),  # exactly at end: out
        ("i", "finish", E + 100, 50.0),  # after the end: out
    ])
    figures = pre_period(store, "ana", B, E)
    assert list(figures) == list(PRE_FEATURES)
    assert figures == {"pre_plays": 5.0, "pre_finishes": 1.0, "pre_active_days": 3.0,
                       "older_events_per_day": 0.75, "pre_sessions": 4.0, "pre_watch_s": 8100.0}
    assert all(type(v) is float for v in figures.values())
    up_to_now = pre_period(store, "ana", B)
    assert (up_to_now["pre_plays"], up_to_now["pre_finishes"], up_to_now["pre_watch_s"]) == (7.0, 2.0, 8200.0)


def test_a_session_of_one_day_running_past_midnight_counts_one_active_day(store):
    _add(store, "bo", [("a", "play", B + DAY - 60, 30.0), ("b", "play", B + DAY + 600, 600.0)])
    figures = pre_period(store, "bo", B, E)
    assert (figures["pre_sessions"], figures["pre_active_days"]) == (1.0, 1.0)


def test_the_older_rate_is_per_day_of_their_span_with_at_least_one_day(store):
    _add(store, "cy", [("a", "play", B - 3600, 1.0), ("b", "play", B - 1800, 1.0), ("c", "play", B - 1, 1.0)])
    assert pre_period(store, "cy", B, E)["older_events_per_day"] == 3.0  # within an hour: over one day
    _add(store, "di", [("a", "play", B - 8 * DAY, 1.0), ("b", "play", B - 2 * DAY, 1.0),
                       ("c", "play", B - 2 * DAY, 1.0)])
    assert pre_period(store, "di", B, E)["older_events_per_day"] == 0.5  # 3 events over 6 days
    assert pre_period(store, "nobody", B, E) == dict.fromkeys(PRE_FEATURES, 0.0)


def test_the_window_must_not_end_before_it_begins(store):
    _add(store, "ana", [("a", "play", B, 5.0)])
    assert pre_period(store, "ana", B, B)["pre_plays"] == 0.0  # an empty window is a window
    with pytest.raises(ConfigError) as error:
        pre_period(store, "ana", B, B - 1)
    assert str(error.value) == (f"the pre-period ends ({B - 1}) before it begins ({B}); pass the time the "
                                "experiment began as its end and an earlier time as its begin")
    with pytest.raises(ConfigError, match=r"^the pre-period's begin \(epoch seconds\) must be a number"):
        pre_period(store, "ana", None)
    with pytest.raises(ConfigError, match=r"^the pre-period's end \(when the experiment's arm was first served\) "):
        pre_period(store, "ana", B, -1.0)


def test_only_plays_take_their_value_as_seconds_watched(store):
    _add(store, "ed", [("a", "play", B + 100, 60.0),
                       ("b", "not_interested", B + 2100, 1000.0)])  # a value on feedback is not a duration
    figures = pre_period(store, "ed", B, E)
    assert (figures["pre_sessions"], figures["pre_watch_s"], figures["pre_plays"]) == (2.0, 60.0, 1.0)
