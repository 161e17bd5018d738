"""A history file keeps the retention it was opened with (retention.settle, applied by open_history).

`edgerec study replay --history r1.db` wrote 1997-98 events with KEEP_EVERYTHING; `history show` and
`history export`, `Recommender.open(bundle, history=...)` and an app's 101st record then opened the
file with the default retention (730 days by the wall clock): show listed 1 event of 61, and export
and the record's prune erased every user's replayed events. An open without a retention now applies
the one the file stores; one the app asks for always applies, and is stored when it differs.
"""

from __future__ import annotations

import math
import sqlite3

import pytest

from edgerec.runtime import Recommender
from edgerec.runtime import retention as kept
from edgerec.runtime.history import KEEP_EVERYTHING, HistoryStore, Retention
from edgerec.runtime.pseudonyms import PseudonymousHistory, open_history, stored_count

OLD = 888_451_200.0  # 1998-02-26, as MovieLens-100K's events
SECRET = b"s" * 32


def replayed(path, **access) -> None:
    """What a host replay leaves: two users' 1998 events, written with KEEP_EVERYTHING."""
    store = open_history(path, retention=KEEP_EVERYTHING, **access)
    for user in ("u1", "u2"):
        for i in range(3):
            store.record(user, f"i{i}", "play", ts=OLD + i)
    store.close()


def rows(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def test_an_open_without_a_retention_keeps_what_the_file_was_written_with(tmp_path):
    path = tmp_path / "r1.db"
    replayed(path)
    store = open_history(path)  # as `edgerec history show/export` opens it
    assert store.retention == KEEP_EVERYTHING
    assert store.count("u1") == 3 and len(store.events("u1")) == 3
    assert len(store.export("u1")["events"]) == 3  # export prunes first: by the file's retention
    store.close()
    assert rows(path) == 6  # the other user's events too


def test_an_app_that_opens_it_without_a_retention_erases_nothing_at_its_prune(tmp_path, golden_bundle):
    path = tmp_path / "r1.db"
    replayed(path)
    with Recommender.open(golden_bundle, history=path) as rec:  # retention=None, as an app opens it
        item = rec.catalog.item_id(0)
        for _ in range(kept.PRUNE_EVERY + 1):
            rec.record("someone", item, "play")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM events WHERE profile != 'someone'").fetchone()[0] == 6


def test_a_retention_the_app_asks_for_wins_and_the_file_keeps_it(tmp_path):
    path = tmp_path / "h.db"
    replayed(path)
    short = Retention(max_age_days=30)  # an app shortening retention for privacy: at once
    store = open_history(path, retention=short)
    assert store.retention == short and store.count("u1") == 0
    store.close()
    assert open_history(path).retention == short  # and every open without one after it
    endless = Retention(max_events=7, max_age_days=math.inf)  # no infinity in JSON: stored as null
    open_history(path, retention=endless).close()
    assert open_history(path).retention == endless


def test_a_file_that_stores_none_gets_the_default(tmp_path):
    path = tmp_path / "h.db"
    HistoryStore(path).record("u1", "i1", "play")  # as a file of an older version
    store = open_history(path)
    assert store.retention == Retention() and kept.stored(store.db) is None  # nothing written for it
    store.close()


def test_the_usual_open_takes_no_write_lock(tmp_path):
    path = tmp_path / "h.db"
    mine = Retention(max_events=50)
    open_history(path, retention=mine).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        for asked in (None, mine):  # without one, and with the one the file stores: reads only
            store = open_history(path, retention=asked, timeout=0.1)
            assert store.retention == mine
            store.close()
        # a new one while the file is busy: it applies at once, and is stored by a later open (audit L6: the
        # open failed, where it never had, and left its connection open)
        store = open_history(path, retention=Retention(max_events=60), timeout=0.1)
        assert store.retention == Retention(max_events=60) and kept.stored(store.db) == mine
        store.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    store = open_history(path, retention=Retention(max_events=60))
    store.close()
    assert open_history(path).retention == Retention(max_events=60)


@pytest.mark.parametrize("value", ['[10, 20]', '{"max_events": -1, "max_age_days": 5}', 'nan', '{"max_events": 5}',
                                   '{"max_events": 5, "max_age_days": "NaN"}', '{"max_events": true, "max_age_days": 5}'])
def test_a_retention_altered_outside_edgerec_reads_as_none(tmp_path, value):
    path = tmp_path / "h.db"
    open_history(path, retention=Retention(max_events=5)).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value=? WHERE key=?", (value, kept.RETENTION_KEY))
    assert open_history(path).retention == Retention()  # the default, as for a file that stores none
    open_history(path, retention=Retention(max_events=5)).close()  # one asked for is stored again
    assert open_history(path).retention == Retention(max_events=5)


def test_a_pseudonymous_history_keeps_its_retention_too(tmp_path):
    path = tmp_path / "h.db"
    replayed(path, profile_secret=SECRET)
    for store in (PseudonymousHistory(path, SECRET), open_history(path, profile_secret=SECRET)):
        assert store.retention == KEEP_EVERYTHING and store.count("u1") == 3
        assert stored_count(store, "u1") == 3 and stored_count(store, "nobody") == 0
        store.close()


def test_an_encrypted_history_keeps_its_retention_too(tmp_path):
    pytest.importorskip("sqlcipher3", reason="the crypto extra (sqlcipher3)")
    path, key = tmp_path / "h.db", bytes(range(32))
    replayed(path, key=key)
    store = open_history(path, key=key)
    assert store.retention == KEEP_EVERYTHING and len(store.export("u2")["events"]) == 3
    store.close()
    store = open_history(path, key=key)
    assert store.count() == 6
    store.close()


def test_stored_count_counts_what_retention_hides(tmp_path):
    path = tmp_path / "h.db"
    replayed(path)
    open_history(path, retention=Retention(max_events=1, max_age_days=math.inf)).close()
    store = open_history(path)
    assert (store.count("u1"), stored_count(store, "u1")) == (1, 3)
    store.close()


def test_encrypting_a_history_keeps_its_retention(tmp_path):
    pytest.importorskip("sqlcipher3", reason="the crypto extra (sqlcipher3)")
    from edgerec.runtime.secure_db import encrypt_database

    path, key = tmp_path / "h.db", bytes(range(32))
    replayed(path)
    encrypt_database(path, key)  # `edgerec history encrypt`
    store = open_history(path, key=key)
    assert store.retention == KEEP_EVERYTHING and store.count() == 6
    store.close()


# The two below need a change in files of others (see docs/runtime.md, Retention): strict, so the
# marker is removed with the change that makes them pass.

def test_a_history_store_opened_directly_keeps_the_files_retention(tmp_path):
    path = tmp_path / "h.db"
    store = HistoryStore(path, retention=KEEP_EVERYTHING)
    store.record("u1", "i1", "play", ts=OLD)
    store.close()
    store = HistoryStore(path)
    assert store.retention == KEEP_EVERYTHING and store.count("u1") == 1
    store.close()


def test_a_recovered_history_keeps_its_retention(tmp_path):
    path, out = tmp_path / "h.db", tmp_path / "fresh.db"
    replayed(path)
    HistoryStore.recover(path, out)  # `edgerec history recover`
    store = open_history(out)
    assert store.retention == KEEP_EVERYTHING and store.count() == 6
    store.close()
