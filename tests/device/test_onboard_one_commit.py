"""Onboarding is all or nothing: the choices and every "more like this" item are stored in one
transaction of the history (HistoryStore.batch), so a failure midway (an error on the Nth row,
another writer) stores nothing, and a long onboarding makes one commit instead of one per item.
What record() does per event still holds inside it: the clock rules, retention, the per-profile
counters of generation(), keyed-hash profile names. Device suite: the standard library and the runtime."""

from __future__ import annotations

import sqlite3
import time

import pytest

from edgerec.errors import ConfigError, HistoryError, UnknownIdError
from edgerec.runtime import Recommender
from edgerec.runtime.history import HistoryStore, Retention
from edgerec.runtime.policies import column_values


@pytest.fixture
def rec(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx") as rec:
        yield rec


def item_ids(rec, n):
    assert len(rec.catalog) >= n
    return [rec.catalog.item_id(row) for row in range(n)]


def genre(rec):
    return sorted(column_values(rec.catalog, "genre"))[0]


def stored(rec):
    """Rows in the file, read by another connection (what a crash right now would leave)."""
    with sqlite3.connect(rec.history.path) as db:
        return (db.execute("SELECT COUNT(*) FROM events").fetchone()[0],
                db.execute("SELECT COUNT(*) FROM preferences").fetchone()[0])


def commits(store):
    """The COMMIT statements the store's connection runs from now on."""
    seen = []
    store.db.set_trace_callback(lambda sql: seen.append(sql) if sql.strip().upper().startswith("COMMIT") else None)
    return seen


def test_a_50_item_onboarding_makes_one_commit(rec):
    done = commits(rec.history)
    rec.onboard("ana", genres=[genre(rec)], tags=["heist"], items=item_ids(rec, 50))
    assert len(done) == 1  # one per item (and one per kind of choice) before
    assert rec.history.count("ana") == 50 and stored(rec) == (50, 2)
    assert rec.history.preferences("ana") == {"genre": [genre(rec)], "tag": ["heist"]}


def test_an_error_on_the_nth_row_stores_nothing_at_all(rec):
    # a full disk or a damaged page met by the third insert
    rec.history.db.execute("CREATE TEMP TRIGGER third BEFORE INSERT ON main.events "
                           "WHEN (SELECT COUNT(*) FROM main.events) >= 2 BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(HistoryError, match="nothing of this change was stored"):
        rec.onboard("ana", genres=[genre(rec)], items=item_ids(rec, 5))
    assert stored(rec) == (0, 0)
    assert rec.history.preferences("ana") == {} and rec.history.count("ana") == 0
    rec.history.db.execute("DROP TRIGGER temp.third")
    rec.onboard("ana", genres=[genre(rec)], items=item_ids(rec, 5))  # the retry stores it all, once
    assert stored(rec) == (5, 1)


def test_an_exception_midway_stores_nothing_at_all(rec, monkeypatch):
    calls, record = [], rec.history.record

    def failing(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("the app was killed")
        return record(*args, **kwargs)

    monkeypatch.setattr(rec.history, "record", failing)
    with pytest.raises(RuntimeError):
        rec.onboard("ana", genres=[genre(rec)], items=item_ids(rec, 5))
    assert stored(rec) == (0, 0)
    assert rec.history.count() == 0 and rec.history.profiles() == []


def test_another_writer_midway_finds_the_history_locked_and_the_onboarding_whole(rec, monkeypatch):
    other = sqlite3.connect(rec.history.path, isolation_level=None, timeout=0)
    calls, record, locked = [], rec.history.record, []

    def meets_a_writer(*args, **kwargs):  # another process starts a write between two items
        calls.append(args)
        if len(calls) == 3:
            try:
                other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # the onboarding holds the write lock to its end
                locked.append(True)
        return record(*args, **kwargs)

    monkeypatch.setattr(rec.history, "record", meets_a_writer)
    rec.history.db.execute("PRAGMA busy_timeout=50")
    try:
        rec.onboard("ana", genres=[genre(rec)], items=item_ids(rec, 5))
    except HistoryError:
        pass  # refused: then nothing may be stored
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
    assert stored(rec) in ((0, 0), (5, 1))  # one per item before: 2 items and the genre were stored, then it failed
    assert locked == [True]


def test_an_unknown_item_or_genre_is_refused_before_anything_is_stored(rec):
    done = commits(rec.history)
    with pytest.raises(UnknownIdError):
        rec.onboard("ana", genres=[genre(rec)], items=[*item_ids(rec, 3), "no such item"])
    with pytest.raises(ConfigError):
        rec.onboard("ana", genres=["no such genre"], items=item_ids(rec, 3))
    assert stored(rec) == (0, 0) and done == []


def test_an_item_given_twice_is_recorded_twice_as_documented(rec):
    item = item_ids(rec, 1)[0]
    rec.onboard("ana", items=[item, item])  # spec §3: a more_like_this given twice counts twice
    assert [(e.item, e.event) for e in rec.history.events("ana")] == [(item, "more_like_this")] * 2


def test_the_onboarding_moves_only_its_users_token_and_appends_stay_appends(rec):
    rec.record("bob", item_ids(rec, 1)[0], "play")
    bob, before = rec.history.generation("bob"), rec.history.generation("ana")
    rec.onboard("ana", items=item_ids(rec, 4))
    after = rec.history.generation("ana")
    assert rec.history.generation("bob")[1:] == bob[1:]  # no commit of "no one profile": bob's cache holds
    assert after[3] != before[3] and after[2] == before[2]  # events appended, no more: read incrementally
    rec.onboard("ana", genres=[genre(rec)])
    assert rec.history.generation("ana")[2] != after[2]  # a choice replaced: a rewrite


def test_events_recorded_while_the_clock_reads_behind_its_mark_are_dated_at_the_mark(rec):
    history, mark = rec.history, float(int(time.time())) + 600
    history.clock = lambda: mark
    rec.record("bob", item_ids(rec, 1)[0], "play")
    history.clock = lambda: 1_000_000_000.0  # a dead RTC battery: the clock set back years
    rec.onboard("ana", genres=[genre(rec)], items=item_ids(rec, 3))
    assert {e.ts for e in history.events("ana")} == {mark}
    with sqlite3.connect(history.path) as db:
        assert db.execute("SELECT DISTINCT ts FROM preferences").fetchall() == [(mark,)]


def test_a_prune_due_during_the_onboarding_runs_after_its_commit(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx",
                          retention=Retention(max_events=10)) as rec:
        for item in item_ids(rec, 40) * 2:  # 80 records: no prune yet (one every 100 of the file)
            rec.record("bob", item, "play")
        assert stored(rec) == (80, 0)
        done = commits(rec.history)
        rec.onboard("ana", items=item_ids(rec, 30))  # the 100th record of the file is in it
        assert rec.history.count("ana") == 10
        assert stored(rec) == (20, 0)  # pruned in the file too, once the batch committed
        assert len(done) >= 2 and not rec.history.db.in_transaction


def test_forget_or_prune_inside_a_batch_is_refused_and_nothing_is_stored(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    for step in (lambda: store.forget("ana"), store.prune):
        with pytest.raises(ConfigError, match="inside history.batch"):
            with store.batch():
                store.record("ana", "i1", "play")
                step()
        assert store.count() == 0 and not store.db.in_transaction
    # a batch inside a batch is refused: a failed inner one, caught by the app, was committed by the outer
    with pytest.raises(ConfigError, match="inside history.batch"):
        with store.batch():
            store.record("ana", "i1", "play")
            with store.batch():
                store.record("ana", "i2", "play")
    assert store.count() == 0 and not store.db.in_transaction
    store.close()


def test_a_pseudonymous_history_onboards_under_the_keyed_hash_only(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx",
                          profile_secret=b"s" * 32) as rec:
        rec.onboard("alice", genres=[genre(rec)], items=item_ids(rec, 3))
        assert rec.history.count("alice") == 3 and rec.history.preferences("alice")
    with sqlite3.connect(tmp_path / "h.db") as db:
        names = {r[0] for r in db.execute("SELECT profile FROM events UNION SELECT profile FROM preferences")}
    assert len(names) == 1 and "alice" not in names


def test_a_batch_rolled_back_moves_the_token_of_what_its_reads_saw(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    before = store.generation("ana")
    with pytest.raises(RuntimeError):
        with store.batch():
            store.record("ana", "i1", "play")
            assert store.count("ana") == 1  # a read inside sees the batch's row: a cache may keep it
            raise RuntimeError("the app gave up")
    assert store.count("ana") == 0 and store.generation("ana") != before  # so what it kept is not reused
    store.close()


def test_the_catalog_is_not_refreshed_inside_the_batch(rec, monkeypatch):
    """The batch holds the store's lock; a catalog refresh inside it took the sync lock after it, while another
    thread's record() takes them the other way round: the two threads deadlocked (audit K1)."""
    refreshed_in_batch = []
    refresh = rec.catalog_sync.refresh

    def spy():
        refreshed_in_batch.append(rec.history._batch is not None)
        refresh()

    monkeypatch.setattr(rec.catalog_sync, "refresh", spy)
    rec.onboard("ann", genres=[genre(rec)], items=item_ids(rec, 5))
    assert refreshed_in_batch == [False]  # once, before the batch
    assert stored(rec) == (5, 1)


def test_a_rolled_back_batch_counts_as_a_rewrite_so_no_cache_extends_it(tmp_path):
    """Counted as appended, a cache read the batch's rows, then asked only for events after them: the ids
    rolled back with the batch are given again, and the new events were skipped (audit K1)."""
    store = HistoryStore(tmp_path / "h.db")
    store.record("ana", "i0", "play")
    before = store.generation("ana")
    with pytest.raises(RuntimeError):
        with store.batch():
            store.record("ana", "i1", "play")
            raise RuntimeError("the app gave up")
    after = store.generation("ana")
    assert after[2] != before[2]  # the rewrite count moved: a state is rebuilt, not extended
    store.close()


def test_a_write_that_fails_inside_a_batch_rolls_all_of_it_back_and_refuses_the_rest(tmp_path):
    """A full disk ended SQLite's transaction: a raw OperationalError came out, the writes after it committed
    one by one, and the batch then said nothing was stored (audit K1)."""
    store = HistoryStore(tmp_path / "h.db")
    store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.item = 'bad' "
                     "BEGIN SELECT RAISE(ABORT, 'disk is full'); END")
    with pytest.raises(HistoryError, match="nothing of this change was stored"):
        with store.batch():
            store.record("ana", "first", "play")
            store.record("ana", "bad", "play")
    with pytest.raises(HistoryError, match="earlier write of this history.batch"):
        with store.batch():
            store.record("ana", "first", "play")
            with pytest.raises(HistoryError, match="nothing of this change was stored"):
                store.record("ana", "bad", "play")  # the app catches it and goes on
            store.record("ana", "second", "play")
    assert store.count() == 0 and not store.db.in_transaction
    store.record("ana", "later", "play")  # the store still works
    assert [e.item for e in store.events("ana")] == ["later"]
    store.close()
