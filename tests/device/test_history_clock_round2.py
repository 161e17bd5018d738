"""The history's clock, second review (retention.py's ClockState): a file with no clock mark (an older
version's, a recovered one) believes no jump at its first open; what a jump that came back stamped,
events and onboarding choices alike, is re-dated by every prune and open whichever process saw it; a
clock set back dates new events at the high-water mark, so they survive its correction. Device suite:
the standard library and the runtime only."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from test_history_lifetime_audit_device import (
    fresh_at as opened_at,  # a store whose clock reads `now` from its open on
)

from edgerec.runtime.history import HistoryStore, Retention
from edgerec.runtime.retention import AHEAD, CLOCK_KEY, DAY, PRUNE_KEY, ClockState

YEARS_3 = 3 * 365 * DAY
NOW = float(int(time.time()))


def sql(path, query: str, args: tuple = ()) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(query, args).fetchall()


def meta(path) -> dict:
    return dict(sql(path, "SELECT key, value FROM meta"))


def older_version_file(path, events: int = 150) -> None:
    """A history as the previous version left it: events and a choice, no clock mark, no prune count."""
    store = opened_at(path, NOW)
    store.set_preferences("alice", "tag", ["jazz"])
    for i in range(events):
        store.record("alice", f"i{i}", "play", ts=NOW - 1000 + i)
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM meta WHERE key IN (?, ?)", (CLOCK_KEY, PRUNE_KEY))


# ------------------------------------------------------------------ 1. no mark: start from the newest row


def test_a_jump_at_the_first_open_of_an_older_versions_file_erases_nothing(tmp_path):
    path = tmp_path / "h.db"
    older_version_file(path)
    store = opened_at(path, NOW + YEARS_3)  # a bad time fix as the upgraded app starts
    assert store.count("alice") == 150 and store.preferences("alice") == {"tag": ["jazz"]}
    store.record("alice", "x", "play")  # its first record prunes (no prune count yet): nothing old
    assert sql(path, "SELECT COUNT(*) FROM events") == [(151,)]
    store.clock.now = NOW + 60  # the clock comes back
    assert store.count("alice") == 151 and store.prune() == 0
    store.close()


@pytest.mark.parametrize("mark", ["[1e308, null]", "[-1, null]", "[NaN, null]", '["1e9", null]', "[true, null]",
                                  "[1e20, 1e20]", "garbage"])
def test_an_altered_mark_is_read_as_none_and_dates_nothing_past_the_newest_row(tmp_path, mark):
    path = tmp_path / "h.db"
    older_version_file(path, events=3)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO meta VALUES (?, ?)", (CLOCK_KEY, mark))
    store = opened_at(path, NOW + YEARS_3)
    store.record("alice", "x", "play")
    store.clock.now = NOW + 60
    store.record("alice", "y", "play")
    assert store.count("alice") == 5 and store.events("alice")[-1].ts == NOW + 60  # not dated at 1e308
    store.close()


def test_a_file_with_no_row_believes_its_first_reading(tmp_path):
    store = opened_at(tmp_path / "h.db", NOW)
    store.clock.now = NOW + YEARS_3  # still nothing believed by the file: nothing to erase either
    store.record("alice", "a", "play")
    assert store.count("alice") == 1 and store.events("alice")[0].ts == NOW + YEARS_3
    store.close()


def test_recover_keeps_the_clock_mark_and_the_prune_count(tmp_path):
    path, out = tmp_path / "h.db", tmp_path / "recovered.db"
    store = opened_at(path, NOW)
    for i in range(120):
        store.record("alice", f"i{i}", "play", ts=NOW - 300 * DAY + i)
    store.close()
    HistoryStore.recover(path, out)
    assert {k: v for k, v in meta(out).items() if k in (CLOCK_KEY, PRUNE_KEY)} == \
        {CLOCK_KEY: meta(path)[CLOCK_KEY], PRUNE_KEY: "100"}
    recovered = opened_at(out, NOW + YEARS_3)  # a jump at the recovered copy's first open
    recovered.record("alice", "x", "play")
    assert recovered.prune() == 0 and recovered.count("alice") == 121
    recovered.close()


# ------------------------------------------------------------------ 2./3. re-dating, driven by the file


def jumped_elsewhere(path) -> None:
    """Another process whose clock jumped three years ahead records and onboards, then exits."""
    other = opened_at(path, NOW + YEARS_3)
    other.record("guest", "jumped", "play")
    other.set_preferences("guest", "tag", ["heist"])
    other.close()


def test_a_prune_re_dates_what_another_processs_jump_stamped(tmp_path):
    path = tmp_path / "h.db"
    store = opened_at(path, NOW)
    store.record("alice", "a", "play")
    jumped_elsewhere(path)
    for hour in range(1, 5):  # this process never saw the jump, and writes the mark meanwhile
        store.clock.now = NOW + hour * 3600
        store.record("alice", f"h{hour}", "play")
    assert store.prune() == 0
    dated = sql(path, "SELECT ts FROM events UNION ALL SELECT ts FROM preferences")
    assert max(ts for (ts,) in dated) <= store.clock.now + AHEAD  # events and choices alike
    store.close()


def test_an_open_re_dates_what_a_jump_that_came_back_stamped(tmp_path):
    path = tmp_path / "h.db"
    first = opened_at(path, NOW)
    first.record("alice", "a", "play")
    first.close()
    jumped_elsewhere(path)
    again = opened_at(path, NOW + 3600)  # the next app start, the clock right again
    assert sql(path, "SELECT item, ts FROM events ORDER BY id") == [("a", NOW), ("jumped", NOW + 3600)]
    assert sql(path, "SELECT ts FROM preferences") == [(NOW + 3600,)]
    again.close()


def test_onboarding_choices_made_during_a_jump_age_out_with_retention(tmp_path):
    path = tmp_path / "h.db"
    store = opened_at(path, NOW)
    store.record("other", "x", "play")
    store.clock.now = NOW + YEARS_3  # a brief jump: the guest onboards and plays
    store.record("guest", "a", "play")
    store.set_preferences("guest", "genre", ["jazz"])
    store.clock.now = NOW + 60
    store.record("other", "y", "play")
    assert store.prune(now=NOW + 800 * DAY) == 4  # both profiles' events and the guest's choice
    assert store.preferences("guest") == {} and sql(path, "SELECT COUNT(*) FROM preferences") == [(0,)]
    store.close()


def test_re_dated_events_keep_the_order_they_were_recorded_in(tmp_path):
    store = opened_at(tmp_path / "h.db", NOW)
    store.record("alice", "a", "play")
    store.clock.now = NOW + YEARS_3
    for item in ("b", "c", "d"):
        store.record("alice", item, "play")
        store.clock.now -= 3600  # the jumped clock wanders: later events dated earlier
    store.clock.now = NOW + 60
    store.record("alice", "e", "play")
    store.prune()
    assert [e.item for e in store.events("alice")] == ["a", "b", "c", "d", "e"]
    assert {e.ts for e in store.events("alice")[1:4]} == {NOW + 60}  # ties: the ids keep the order
    store.close()


def test_a_jump_pending_elsewhere_is_kept_until_a_reading_here_resolves_it(tmp_path):
    """A mark written by a process that missed the jump keeps the jump while its own clock is ahead too."""
    path = tmp_path / "h.db"
    store = opened_at(path, NOW)
    store.record("alice", "a", "play")
    other = opened_at(path, NOW + YEARS_3)
    other.record("alice", "b", "play")  # the file: a jump not believed yet
    store.clock.now = NOW + YEARS_3 + 3600
    store.record("alice", "c", "play")  # this process sees the same jump an hour later
    assert json.loads(meta(path)[CLOCK_KEY])[1] == NOW + YEARS_3  # the first reading of it is kept
    store.clock.now = NOW + YEARS_3 + DAY  # a day after the other process first saw it: believed
    assert store.cutoff() == Retention().cutoff(NOW + YEARS_3 + DAY)
    store.close(), other.close()


def test_a_jump_this_process_saw_come_back_is_not_merged_back_in():
    """A pending jump this process refuted is not taken from the file again: a second jump a day past the
    first one would otherwise be believed at once."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO meta VALUES (?, ?)", (CLOCK_KEY, json.dumps([NOW, NOW + YEARS_3])))
    clock = ClockState(seen=NOW, ahead=NOW + YEARS_3, known=NOW + YEARS_3)  # as loaded at open
    clock.believe(NOW + 60)  # back: refuted, in memory only (reads write nothing)
    clock.sync(db, NOW + YEARS_3 + 2 * DAY)  # another bad fix, two days past the first
    assert clock.ahead == NOW + YEARS_3 + 2 * DAY and clock.believe(NOW + YEARS_3 + 2 * DAY) == NOW + 60 + AHEAD


# ------------------------------------------------------------------ 4. a clock set back


def test_events_recorded_while_the_clock_was_set_back_survive_its_correction(tmp_path):
    path = tmp_path / "h.db"
    store = opened_at(path, NOW)
    store.record("alice", "before", "play")
    store.clock.now = 978_307_200.0  # 2001: a dead RTC battery, for a week of use
    for k in range(5):
        store.clock.now += 3600
        store.record("alice", f"week{k}", "play")
    store.set_preferences("alice", "genre", ["jazz"])
    explicit = store.record("alice", "given", "play", ts=978_307_200.0)  # the app's own time is kept as given
    assert sql(path, "SELECT ts FROM events WHERE id=?", (explicit,)) == [(978_307_200.0,)]
    store.clock.now = NOW + 7 * DAY  # the clock is corrected
    assert [e.item for e in store.events("alice")] == ["before"] + [f"week{k}" for k in range(5)]
    assert store.preferences("alice") == {"genre": ["jazz"]}
    assert store.prune() == 1  # only the event the app dated 2001 itself
    assert sql(path, "SELECT COUNT(*) FROM events") == [(6,)]
    store.close()
