"""The history over its lifetime (audit H2/H6): an open that only reads never waits for another
process's write; a clock that jumps years ahead for a moment erases nothing; retention reaches the
file when each app start records only a few events; onboarding choices age out with their profile;
forget() leaves no name in memory. Device suite: the standard library and the runtime only."""

from __future__ import annotations

import sqlite3
import time

import pytest

from edgerec.errors import HistoryError
from edgerec.runtime.history import HistoryStore, Retention
from edgerec.runtime.retention import DAY

YEARS_3 = 3 * 365 * DAY


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def rows(path, table: str = "events") -> int:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def store_at(path, now: float, **options) -> HistoryStore:
    """A store whose clock reads `now` from here on (its open read the real clock)."""
    store = HistoryStore(path, **options)
    store.clock = Clock(now)
    return store


def fresh_at(path, now: float, **options) -> HistoryStore:
    """A new history whose clock has read `now` from its open on (a device whose clock was right then)."""
    clock = Clock(now)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", clock)
        store = HistoryStore(path, **options)
    store.clock = clock
    return store


# ------------------------------------------------------------------ 1. an open takes no write lock


def test_an_open_reads_while_another_process_holds_a_write_transaction(tmp_path):
    path = tmp_path / "h.db"
    first = HistoryStore(path)
    first.record("alice", "i01", "play")
    first.close()
    other = sqlite3.connect(path, isolation_level=None)  # another app, in the middle of a long write
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO meta VALUES ('x', 'y')")
        reader = HistoryStore(path, timeout=0.2)  # was: "locked by another process" (a write lock at open)
        assert [e.item for e in reader.events("alice")] == ["i01"] and reader.profiles() == ["alice"]
        with pytest.raises(HistoryError, match="locked by another process"):
            reader.record("alice", "i02", "play")  # writes still wait for the writer, and say why
        other.execute("ROLLBACK")
        reader.record("alice", "i02", "play")
        assert reader.count("alice") == 2
        reader.close()
    finally:
        other.close()


# ------------------------------------------------------------------ 2. a clock that jumps ahead


def test_a_clock_that_jumps_years_ahead_for_a_moment_erases_nothing(tmp_path):
    path, now = tmp_path / "h.db", float(int(time.time()))
    store = store_at(path, now)
    for i in range(150):  # the real history, recorded as it happened over most of a year
        store.record("alice", f"i{i}", "play", ts=now - 300 * DAY + i * 3600)
    store.clock.now = now + YEARS_3  # a bad time fix
    for i in range(50):  # the app goes on recording: the 200th record prunes
        store.record("alice", f"g{i}", "play")
    assert store.prune() == 0 and store.count("alice") == 200 and rows(path) == 200
    store.clock.now = now + 600  # the clock is corrected
    assert store.count("alice") == 200
    store.record("alice", "after", "play")
    assert store.prune() == 0  # every prune first re-dates what the jump stamped
    newest = max(e.ts for e in store.events("alice"))
    assert store.count("alice") == 201 and newest <= store.clock.now + DAY
    store.close()
    again = store_at(path, now + 700)
    assert again.count("alice") == 201
    again.close()


def test_a_jump_seen_by_another_process_is_not_believed_either(tmp_path):
    path, now = tmp_path / "h.db", float(int(time.time()))
    first = store_at(path, now)
    first.record("alice", "old", "play", ts=now - 100 * DAY)
    first.close()  # the file keeps the newest time it believed
    glitched = store_at(path, now + YEARS_3)
    assert glitched.prune() == 0 and glitched.count("alice") == 1
    glitched.close()


def test_a_clock_that_stays_ahead_is_believed_a_day_later(tmp_path):
    """A device that was off for three years: its history ages out once the clock has run on a day."""
    path, now = tmp_path / "h.db", float(int(time.time()))
    store = store_at(path, now)
    store.record("alice", "old", "play", ts=now - DAY)
    store.clock.now = now + YEARS_3
    assert store.count("alice") == 1  # not yet: it may be a glitch
    store.clock.now = now + YEARS_3 + DAY
    assert store.count("alice") == 0 and store.prune() == 1 and rows(path) == 0
    store.close()


def test_a_clock_set_back_is_believed_at_once(tmp_path):
    path, now = tmp_path / "h.db", float(int(time.time()))
    store = store_at(path, now - 20 * DAY, retention=Retention(max_age_days=10))  # a clock set back
    store.record("alice", "a", "play", ts=now - 25 * DAY)  # kept by that clock
    assert store.count("alice") == 1 and store.prune() == 0
    store.clock.now = now  # forward again, to what the history had believed: at once
    assert store.count("alice") == 0 and store.prune() == 1
    store.close()


# ------------------------------------------------------------------ 3. pruning across app starts


def test_retention_reaches_the_file_when_every_start_records_a_few_events(tmp_path):
    path = tmp_path / "h.db"
    for session in range(30):  # an app started 30 times, five records each: 150 records
        store = HistoryStore(path, retention=Retention(max_events=20))
        for i in range(5):
            store.record("alice", f"i{session}-{i}", "play")
        assert store.count("alice") == min(20, 5 * (session + 1))
        store.close()
    assert rows(path) == 20 + 50  # pruned at the 100th record of the file, not of one app start


# ------------------------------------------------------------------ 4. onboarding choices


def test_onboarding_choices_age_out_with_a_profile_that_keeps_no_event(tmp_path):
    path, now = tmp_path / "h.db", float(int(time.time()))
    store = fresh_at(path, now - 800 * DAY)  # a device used back then
    store.set_preferences("gone", "tag", ["heist"])
    store.record("gone", "i01", "play")
    store.set_preferences("player", "tag", ["jazz"])
    store.record("player", "i02", "play")
    store.clock.now = now - DAY  # then off for two years: believed once the clock has run on a day
    assert store.count("gone") == 1
    store.clock.now = now
    store.record("player", "i03", "play")  # keeps an event: keeps its choices
    store.set_preferences("newcomer", "language", ["es"])  # onboarded today, nothing played yet
    assert store.preferences("gone") == {} and store.count("gone") == 0  # reads apply it before any prune
    assert store.preferences("player") == {"tag": ["jazz"]} and store.preferences("newcomer") == {"language": ["es"]}
    assert store.profiles() == ["newcomer", "player"]  # a user with choices only can be found (and forgotten)
    assert store.prune() == 3  # gone's event and choice, player's old event
    assert rows(path, "preferences") == 2 and store.profiles() == ["newcomer", "player"]
    store.clock.now = now + 731 * DAY  # two years on (believed once the clock has run there a day)
    assert store.profiles() == ["newcomer", "player"]
    store.clock.now += DAY
    assert store.profiles() == [] and store.preferences("newcomer") == {} and store.prune() == 3
    store.close()


def test_onboarding_choices_are_dated_by_the_stores_clock(tmp_path):
    store = fresh_at(tmp_path / "h.db", 1_000_000_000.0)  # what retention measures their age by
    store.set_preferences("newcomer", "language", ["es"])
    assert store.db.execute("SELECT ts FROM preferences").fetchall() == [(1_000_000_000.0,)]
    store.close()


# ------------------------------------------------------------------ 5. forget() and memory


def test_forget_leaves_no_name_in_memory_and_moves_only_that_profiles_generation(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    name = "alice@example.com"
    tokens = [store.generation(name)]
    store.record(name, "i01", "play")
    tokens.append(store.generation(name))
    store.set_preferences(name, "tag", ["x"])
    tokens.append(store.generation(name))
    store.record("bob", "i02", "play")
    bob = store.generation("bob")
    store.forget(name)
    assert name not in repr(vars(store))  # was kept in two per-profile counters for the store's life
    assert store.generation(name) not in tokens and store.generation("bob") == bob
    store.record(name, "i03", "play")  # written again: a token never given before
    assert store.generation(name) not in tokens
    store.close()
