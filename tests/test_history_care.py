"""Erasure under readers, backups under writers, damaged, empty and foreign history files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from handmade import foreign_database

from edgerec.errors import HistoryError
from edgerec.runtime.history import HistoryStore, Retention

SECRET = "secret-user-7f3a"


def raw_bytes(db) -> bytes:
    """The bytes of the database, its WAL and its rollback journal (whichever exist)."""
    return b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))


def fill(store: HistoryStore, n: int = 150) -> None:
    for i in range(n):
        store.record(SECRET, f"secret-item-{i:04d}", "play")
        store.record("other", f"kept-item-{i:04d}", "play")


def assert_erased(db) -> None:
    raw = raw_bytes(db)
    assert SECRET.encode() not in raw and b"secret-item-" not in raw
    assert b"kept-item-" in raw  # the scan does see rows that remain


def test_forget_with_a_reader_holding_a_snapshot_raises_then_completes(tmp_path):
    db = tmp_path / "h.db"
    store = HistoryStore(db, erase_wait=0.3, timeout=0.2)
    fill(store)
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM events WHERE profile=?", (SECRET,)).fetchone()[0] == 150
    with pytest.raises(HistoryError, match=r"read snapshot of .*h\.db \("):  # the file is named
        store.forget(SECRET)
    assert SECRET.encode() in raw_bytes(db)  # what the error said: not erased yet, so no success claimed
    assert store.count(SECRET) == 0  # but hidden from every new read
    reader.execute("COMMIT")
    reader.close()
    assert store.forget(SECRET) == 0
    assert_erased(db)
    assert store.count("other") == 150


def test_forget_waits_for_a_reader_in_another_process_that_finishes(tmp_path):
    db = tmp_path / "h.db"
    store = HistoryStore(db, erase_wait=20.0)
    fill(store)
    child = textwrap.dedent(f"""
        import sqlite3, sys, time
        conn = sqlite3.connect({str(db)!r}, isolation_level=None)
        conn.execute("BEGIN")
        conn.execute("SELECT COUNT(*) FROM events").fetchone()
        print("holding", flush=True)
        time.sleep(1.0)
        conn.execute("COMMIT")
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    assert store.forget(SECRET) == 150  # waited for the reader, then erased
    proc.wait()
    assert_erased(db)


def test_forget_without_readers_leaves_no_byte_in_db_wal_or_journal(tmp_path):
    db = tmp_path / "h.db"
    store = HistoryStore(db)
    fill(store)
    store.set_preferences(SECRET, "genre", ["secret-item-genre"])
    other = HistoryStore(db)  # an idle second connection does not block erasure
    assert other.count(SECRET) == 150
    assert store.forget(SECRET) == 150
    assert_erased(db)
    assert other.count(SECRET) == 0


def test_pruning_erases_what_it_removes_or_says_it_could_not(tmp_path):
    db = tmp_path / "h.db"
    store = HistoryStore(db, Retention(max_events=10), erase_wait=0.2, timeout=0.2)
    for i in range(50):
        store.record("p", f"pruned-item-{i:03d}", "play")
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM events").fetchone()
    with pytest.raises(HistoryError, match=r"read snapshot of .*h\.db \("):  # the file is named
        store.prune()
    reader.execute("COMMIT")
    store.prune()
    raw = raw_bytes(db)
    assert b"pruned-item-000" not in raw and b"pruned-item-039" not in raw
    assert b"pruned-item-049" in raw and store.count("p") == 10


def test_automatic_pruning_never_fails_a_record_and_finishes_erasure_later(tmp_path):
    db = tmp_path / "h.db"
    store = HistoryStore(db, Retention(max_events=5))  # the default 5 s lock timeout
    reader = sqlite3.connect(db, isolation_level=None)
    for i in range(60):
        store.record("p", f"auto-item-{i:03d}", "play")
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM events").fetchone()
    for i in range(60, 100):
        store.record("p", f"auto-item-{i:03d}", "play")  # the 100th prunes while the reader holds on
    assert store.erasure_pending
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000  # restored after the attempt
    reader.execute("COMMIT")
    store.erase_pending()
    assert store.erasure_pending is False and b"auto-item-000" not in raw_bytes(db)


def test_backup_taken_while_another_connection_writes_holds_every_committed_event(tmp_path):
    db = tmp_path / "h.db"
    store = HistoryStore(db)
    writer = HistoryStore(db)
    acked: list[int] = []
    stop = threading.Event()

    def write():
        i = 0
        while not stop.is_set():
            acked.append(writer.record("w", f"item-{i}", "play"))
            i += 1

    thread = threading.Thread(target=write)
    thread.start()
    deadline = time.monotonic() + 60
    while len(acked) < 50:  # a writer that failed fails the test instead of hanging it
        assert thread.is_alive() and time.monotonic() < deadline, "the writer thread stopped"
        time.sleep(0.01)
    before = list(acked)
    copy = store.backup(tmp_path / "copy.db")
    stop.set()
    thread.join()
    assert not (tmp_path / "copy.db-wal").exists()  # one self-contained file
    assert os.name != "posix" or copy.stat().st_mode & 0o777 == 0o600  # a copy of personal data: owner only
    restored = HistoryStore(copy)
    ids = [e.id for e in restored.events("w")]
    assert set(before) <= set(ids)  # everything acknowledged before the backup began
    assert ids == list(range(1, len(ids) + 1))  # one consistent snapshot: no gaps, no half writes
    with pytest.raises(HistoryError, match="exists"):
        store.backup(copy)


def test_empty_foreign_and_missing_files_are_refused_not_adopted(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(HistoryError, match="empty"):
        HistoryStore(empty)
    assert empty.stat().st_size == 0
    foreign = tmp_path / "foreign.db"
    before = foreign_database(foreign)
    with pytest.raises(HistoryError, match=r"foreign\.db .*another application"):  # the file is named
        HistoryStore(foreign)
    assert foreign.read_bytes() == before and not (tmp_path / "foreign.db-wal").exists()
    if os.path.isdir("/proc/self/fd"):  # a refused file is not kept open either (Linux shows open files)
        held = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                if os.path.exists(f"/proc/self/fd/{fd}")]
        assert str(foreign) not in held
    with pytest.raises(HistoryError, match="not a regular file"):
        HistoryStore(tmp_path)


def damaged_history(tmp_path, n: int = 3000):
    db = tmp_path / "h.db"
    store = HistoryStore(db)
    start = time.time() - n - 3_600  # recent: reads show only what retention keeps
    with store._transaction():
        store.db.executemany("INSERT INTO events (profile, item, event, value, ts, context) VALUES (?,?,?,?,?,?)",
                             [("p", f"item-{i:05d}", "play", None, start + i, "{}") for i in range(n)])
    store.set_preferences("p", "genre", ["jazz"])
    store.close()
    page = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(db.read_bytes())
    victim = data.index(f"item-{n // 2:05d}".encode()) // page  # a leaf of the events table
    data[victim * page:victim * page + 64] = b"\xa5" * 64
    db.write_bytes(bytes(data))
    return db, n


def test_a_damaged_page_is_detected_at_open_and_the_readable_events_recovered(tmp_path):
    db, n = damaged_history(tmp_path)
    with pytest.raises(HistoryError, match="damaged|malformed"):
        HistoryStore(db)
    report = HistoryStore.recover(db, tmp_path / "fresh.db")
    fresh = HistoryStore(tmp_path / "fresh.db")
    events = fresh.events("p")
    assert report["events"] == len(events) and report["unreadable"] > 0
    assert n - 200 < len(events) < n  # one page of rows lost, every other one kept
    assert all(e.item == f"item-{e.id - 1:05d}" for e in events)  # rows are what was written
    assert fresh.preferences("p") == {"genre": ["jazz"]}
    with pytest.raises(HistoryError, match="exists"):
        HistoryStore.recover(db, tmp_path / "fresh.db")


def test_kill_during_forget_loses_no_other_profile_event(tmp_path):
    db = tmp_path / "h.db"
    store = HistoryStore(db)
    fill(store, 100)
    store.close()
    child = textwrap.dedent(f"""
        from edgerec.runtime.history import HistoryStore
        store = HistoryStore({str(db)!r})
        print("start", flush=True)
        store.forget({SECRET!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    proc.kill()
    proc.wait()
    store = HistoryStore(db)
    assert store.count("other") == 100
    store.forget(SECRET)
    assert_erased(db)


@pytest.mark.parametrize("finish", ["prune", "erase_pending"])
def test_an_erasure_left_pending_is_completed_by_prune_or_erase_pending(tmp_path, finish):
    db = tmp_path / "h.db"
    store = HistoryStore(db, Retention(max_events=5), erase_wait=0.2)
    for i in range(99):
        store.record("p", f"auto-item-{i:03d}-" + "x" * 200, "play")
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM events").fetchone()
    store.record("p", "the-hundredth", "play")  # retention runs; the reader keeps the bytes
    assert store.erasure_pending is True
    reader.execute("COMMIT")
    getattr(store, finish)()
    assert store.erasure_pending is False and b"auto-item-000" not in raw_bytes(db)


def test_automatic_pruning_without_a_reader_erases_at_once_without_rebuilding_the_file(tmp_path):
    db = tmp_path / "h.db"
    store = HistoryStore(db, Retention(max_events=5))
    for i in range(100):  # the 100th record runs retention
        store.record("p", f"auto-item-{i:03d}-" + "x" * 200, "play")
    assert store.erasure_pending is False and b"auto-item-000" not in raw_bytes(db) and store.count() == 5
    # a record never pays for a VACUUM: the freed pages stay free (secure_delete zeroed them)
    assert store.db.execute("PRAGMA freelist_count").fetchone()[0] > 0


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_new_history_is_readable_by_its_owner_only(tmp_path):
    store = HistoryStore(tmp_path / "app" / "h.db")
    store.record("alice", "i1", "play")
    files = sorted(p.name for p in (tmp_path / "app").iterdir())
    assert files == ["h.db", "h.db-shm", "h.db-wal"]  # no temporary left beside it
    assert {oct((tmp_path / "app" / f).stat().st_mode & 0o777) for f in files} == {"0o600"}
    assert oct((tmp_path / "app").stat().st_mode & 0o777) == "0o700"
    store.close()
    shared = tmp_path / "shared.db"  # a file the app made itself keeps the mode it chose
    HistoryStore(shared).close()
    shared.chmod(0o640)
    HistoryStore(shared).close()
    assert oct(shared.stat().st_mode & 0o777) == "0o640"


def test_a_history_that_cannot_be_created_is_a_history_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(HistoryError, match="h.db lies under a file, not a folder"):  # it said "(File exists)"
        HistoryStore(blocker / "h.db")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere
        pytest.skip("this user can write into a read-only folder")
    with pytest.raises(HistoryError, match="cannot create the history database .*folder this app can write"):
        HistoryStore(locked / "h.db")


def test_a_process_killed_while_creating_its_history_leaves_none_behind(tmp_path):
    """Before, SQLite made an empty file at once, and an app killed before its first write found
    its history refused as empty at the next start."""
    path = tmp_path / "h.db"
    script = textwrap.dedent(f"""
        import os, signal
        from edgerec.runtime.history import HistoryStore
        HistoryStore._migrate = lambda self: os.kill(os.getpid(), signal.SIGKILL)
        HistoryStore({str(path)!r})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -9 and not path.exists()
    store = HistoryStore(path)  # the next start makes a new one
    store.record("alice", "i1", "play")
    assert [e.item for e in store.events("alice")] == ["i1"]


def test_two_processes_creating_one_history_share_the_first_file(tmp_path):
    path, stores, errors = tmp_path / "h.db", [], []

    def open_and_record(user):
        try:
            store = HistoryStore(path)
            store.record(user, "i1", "play")
            stores.append(store)
        except Exception as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=open_and_record, args=(f"user-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(stores[0].profiles()) == [f"user-{i}" for i in range(4)]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".new")]


def test_history_errors_name_the_file_not_the_folders_above_it(tmp_path):
    """An app may log or upload an error's text; a full path can name the user (.../alice/history.db)."""
    from edgerec.errors import ConfigError
    from edgerec.runtime.keys import FileKey

    home = tmp_path / "alice"
    home.mkdir()
    (home / "history.db").write_bytes(b"not a database, " * 64)
    (home / "other.db").write_bytes(b"")
    sqlite3.connect(home / "foreign.db").execute("create table notes (x)").connection.commit()
    for name in ("history.db", "other.db", "foreign.db"):
        with pytest.raises(HistoryError) as err:
            HistoryStore(home / name)
        assert name in str(err.value) and "alice" not in str(err.value) and str(tmp_path) not in str(err.value)
    with pytest.raises(ConfigError) as err:
        FileKey(home / "missing.key").key()
    assert "missing.key" in str(err.value) and "alice" not in str(err.value)
