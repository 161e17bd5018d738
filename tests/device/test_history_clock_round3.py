"""The history's clock, third review (audit J1, retention.py's ClockState): a further jump ahead is no day
passed; Background dates an event as the history would; a clock that has run a day behind the mark dates
events itself; a row an older version left far ahead neither moves the mark at an upgrade nor stays; a time
the app passes survives the next open. Device suite: the standard library and the runtime only."""

from __future__ import annotations

import sqlite3
import time

from test_history_lifetime_audit_device import (
    fresh_at,  # a store whose clock reads `now` from its open on
)

from edgerec.runtime import Background, Recommender
from edgerec.runtime.history import Retention
from edgerec.runtime.retention import AHEAD, CLOCK_KEY, DAY, PRUNE_KEY

YEAR = 365 * DAY
NOW = float(int(time.time())) + 60  # ahead of the real clock: records after an open are dated by it
Y2001 = 978_307_200.0


def dated(store, profile: str = "alice") -> dict[str, float]:
    return {e.item: e.ts for e in store.events(profile)}


# ------------------------------------------------------------------ 1. a jump that moves further on


def test_a_jump_that_moves_further_ahead_minutes_later_erases_nothing(tmp_path):
    store = fresh_at(tmp_path / "h.db", NOW)
    for i in range(50):
        store.record("alice", f"i{i}", "play")
    store.clock.now = NOW + 10 * YEAR  # a bad time fix
    assert store.prune() == 0
    store.clock.now = NOW + 20 * YEAR + 300  # five minutes later the same source reads ten years further
    assert store.prune() == 0 and store.count("alice") == 50  # was: 50 removed (believed as a day passed)
    store.clock.now = NOW + 600  # corrected
    assert store.count("alice") == 50 and store.prune() == 0
    store.close()


def test_a_jump_the_clock_then_runs_on_in_small_steps_for_a_day_is_believed(tmp_path):
    store = fresh_at(tmp_path / "h.db", NOW, retention=Retention(max_age_days=30))
    store.record("alice", "old", "play")
    store.clock.now = NOW + 10 * YEAR
    assert store.count("alice") == 1
    store.clock.now = NOW + 20 * YEAR  # a further jump: its day starts again here
    assert store.count("alice") == 1
    for hour in range(1, 25):
        store.clock.now = NOW + 20 * YEAR + hour * 3600
        assert store.count("alice") == (1 if hour < 24 else 0)  # a device off for years, believed a day later
    store.close()


def test_a_jump_pending_when_the_app_closed_is_believed_a_day_after_at_the_next_start(tmp_path):
    """An app started every two days (a new process each time) still ages its history."""
    path = tmp_path / "h.db"
    store = fresh_at(path, NOW, retention=Retention(max_age_days=3))
    store.record("alice", "old", "play")
    store.close()
    for start in (1, 2, 3):  # two days between starts: each first reading is a jump past the mark
        store = fresh_at(path, NOW + start * 2 * DAY, retention=Retention(max_age_days=3))
        store.record("alice", f"s{start}", "play")
        store.close()
    assert "old" not in dated(fresh_at(path, NOW + 6 * DAY + 60, retention=Retention(max_age_days=3)))


# ------------------------------------------------------------------ 2. Background dates as the history does


def test_background_dates_an_event_at_the_mark_while_the_clock_is_set_back(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx",
                          retention=Retention(max_age_days=30)) as rec:
        item, now = rec.catalog.item_id, time.time() + 60  # ahead of the mark the open took (NOW may be behind)
        rec.history.clock = lambda: now
        rec.record("alice", item(0), "play")
        rec.history.clock = lambda: Y2001  # a dead RTC battery
        with Background(rec) as bg:
            bg.record("alice", item(1), "play").result(30)
        assert dated(rec.history)[item(1)] == now  # was: 2001-01-01, kept as an app-given time
        rec.history.clock = lambda: now + 60  # corrected
        rec.history.prune()
        assert [e.item for e in rec.history.events("alice")] == [item(0), item(1)]


# ------------------------------------------------------------------ 3. a future mark, and a future row at upgrade


def test_days_of_use_with_the_clock_reading_2001_survive_its_correction(tmp_path):
    """For a day behind the mark, events were dated at it, then by the clock: three days of use in one run at
    a dead RTC battery's 2001 lost the last two when the clock was corrected (audit K1)."""
    store = fresh_at(tmp_path / "h.db", NOW)
    store.record("alice", "before", "play")
    rtc = 978_307_200.0
    for hour in range(72):
        store.clock.now = rtc + hour * 3600
        store.record("alice", f"rtc{hour}", "play")
    store.clock.now = NOW + 3 * DAY  # network time again
    assert store.prune() == 0
    assert sum(item.startswith("rtc") for item in dated(store)) == 72
    store.close()


def test_a_row_an_older_version_left_years_ahead_does_not_date_new_events_there(tmp_path):
    path = tmp_path / "h.db"
    store = fresh_at(path, NOW)
    store.record("alice", "old", "play")
    store.close()
    with sqlite3.connect(path) as db:  # as an older version left it: a jump it never re-dated, no mark
        db.execute("INSERT INTO events (profile, item, event, value, ts, context) VALUES "
                   "('alice', 'jumped', 'play', NULL, ?, '{}')", (NOW + 5 * YEAR,))
        db.execute("DELETE FROM meta WHERE key IN (?, ?)", (CLOCK_KEY, PRUNE_KEY))
    store = fresh_at(path, NOW + 60)
    store.record("alice", "after", "play")
    assert dated(store) == {"old": NOW, "jumped": NOW + 60, "after": NOW + 60}  # was: both 5 years ahead
    store.close()


def test_a_row_less_than_a_day_past_the_clock_at_open_still_starts_the_mark(tmp_path):
    """Only rows more than a day past the clock are left out of the mark (mutation run: a row an hour ahead,
    an app-given time the clock has not reached yet, was left out too, and new events dated before it)."""
    path = tmp_path / "h.db"
    store = fresh_at(path, NOW)
    store.record("alice", "old", "play", ts=NOW - 2 * DAY)
    store.record("alice", "given", "play", ts=NOW + 3600)  # the app's own time, an hour ahead: accepted
    store.close()
    with sqlite3.connect(path) as db:  # as an older version left it: no mark
        db.execute("DELETE FROM meta WHERE key IN (?, ?)", (CLOCK_KEY, PRUNE_KEY))
    store = fresh_at(path, NOW)
    store.clock.now = NOW - 600  # set back a little
    store.record("alice", "after", "play")
    assert dated(store)["after"] == NOW + 3600  # at the mark, the newest row: ids and times keep one order
    store.close()


# ------------------------------------------------------------------ 4. a time the app passes


def test_a_time_the_app_passes_survives_an_open_after_a_small_set_back(tmp_path):
    path = tmp_path / "h.db"
    store = fresh_at(path, NOW)
    store.record("alice", "first", "play")
    store.clock.now = NOW + 3000  # 50 minutes on: the file's mark is still NOW (written every hour)
    given = NOW + 3000 + AHEAD - 400  # the app's own time, just under a day ahead: accepted
    store.record("alice", "given", "play", ts=given)
    store.close()
    again = fresh_at(path, NOW + 60)  # the next start, after NTP set the clock back 49 minutes
    assert dated(again)["given"] == given  # was: moved to NOW + 60
    again.close()
