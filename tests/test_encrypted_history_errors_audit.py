"""An encrypted history's driver errors (sqlcipher3's classes are not sqlite3's) become HistoryErrors that say
what went wrong: erasure failing on a full disk in record(), forget(), prune() and an open with a pending
erasure; and an open refused for a lock or a failing disk is not blamed on the key (audit H6, defects 1-2)."""

from __future__ import annotations

import secrets
import sqlite3
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from edgerec.errors import HistoryError
from edgerec.runtime import history_care, secure_db
from edgerec.runtime.history import KEEP_EVERYTHING, HistoryStore
from edgerec.runtime.retention import Retention

dbapi2 = pytest.importorskip("sqlcipher3.dbapi2", reason="the crypto extra (sqlcipher3) is part of the full install")

FULL = "database or disk is full"


def fail_checkpoints(monkeypatch) -> None:
    """Every erasure checkpoint fails as SQLCipher's does on a full disk (its own OperationalError class)."""
    def full(db, path, wait):
        raise dbapi2.OperationalError(FULL)

    monkeypatch.setattr(history_care, "checkpoint", full)


@pytest.fixture
def disk_full(monkeypatch):
    fail_checkpoints(monkeypatch)
    return monkeypatch


def encrypted(path, key, retention=KEEP_EVERYTHING, events=(("bob", "i1"), ("alice", "i2"))):
    store = HistoryStore(path, key=key, retention=retention)
    for user, item in events:
        store.record(user, item, "play")
    return store


# ------------------------------------------------------------------ defect 1: erasure on a full disk


def test_record_whose_pruning_cannot_erase_on_a_full_disk_succeeds_and_stores_the_event_once(tmp_path,
                                                                                           monkeypatch):
    store = encrypted(tmp_path / "h.db", secrets.token_bytes(32), Retention(max_events=5),
                      [("alice", f"i{i}") for i in range(99)])
    fail_checkpoints(monkeypatch)
    event_id = store.record("alice", "last", "play")  # the 100th: retention prunes, its erasure fails
    monkeypatch.undo()
    assert event_id == 100
    assert store.erasure_pending  # as for a plain history: the next prune, forget() or open erases
    items = [e.item for e in store.events("alice")]
    assert items.count("last") == 1 and items[-1] == "last"
    store.prune()  # the disk has room again: erased, the flag dropped
    assert not store.erasure_pending
    store.close()


def test_forget_on_a_full_disk_is_a_history_error_that_says_to_free_space(tmp_path, disk_full):
    store = encrypted(tmp_path / "h.db", secrets.token_bytes(32))
    with pytest.raises(HistoryError) as failed:
        store.forget("alice")
    assert str(failed.value) == (
        f"could not erase deleted rows from h.db ({FULL}); free space on the device, then forget the user again "
        "(forget() or `edgerec history forget`) or open the history again")
    assert store.count("alice") == 0  # deleted already; only the erasure waits
    store.close()


def test_prune_on_a_full_disk_is_a_history_error(tmp_path, monkeypatch):
    store = encrypted(tmp_path / "h.db", secrets.token_bytes(32), Retention(max_events=1),
                      [("bob", "i1"), ("bob", "i2")])
    fail_checkpoints(monkeypatch)
    with pytest.raises(HistoryError, match=r"\(database or disk is full\); free space on the device"):
        store.prune()
    assert store.db.execute("SELECT item FROM events").fetchall() == [("i2",)]  # deleted; erased later
    store.close()


def test_an_open_with_a_pending_erasure_on_a_full_disk_opens_and_leaves_it_pending(tmp_path, disk_full):
    path, key = tmp_path / "h.db", secrets.token_bytes(32)
    store = encrypted(path, key)
    with pytest.raises(HistoryError):
        store.forget("alice")  # leaves the erase flag in the file
    store.close()
    again = HistoryStore(path, key=key, retention=KEEP_EVERYTHING)  # its erasure fails again: not the open
    assert again.erasure_pending and again.count("bob") == 1
    again.close()
    disk_full.undo()
    freed = HistoryStore(path, key=key, retention=KEEP_EVERYTHING)
    assert not freed.erasure_pending
    assert not freed.db.execute("SELECT 1 FROM meta WHERE key=?", (history_care.ERASE_FLAG,)).fetchall()
    freed.close()


def test_history_forget_command_on_a_full_disk_prints_the_error_not_a_traceback(tmp_path, disk_full):
    from edgerec.cli.main import cli

    key = secrets.token_bytes(32)
    encrypted(tmp_path / "h.db", key).close()
    (tmp_path / "k.hex").write_text(key.hex())
    (tmp_path / "k.hex").chmod(0o600)
    result = CliRunner().invoke(cli, ["history", "forget", "alice", "--history", str(tmp_path / "h.db"),
                                      "--key-file", str(tmp_path / "k.hex"), "--yes"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # click's own exit, not an escaped driver error
    assert "could not erase deleted rows from h.db (database or disk is full); free space" in result.output


def test_erase_catches_the_driver_errors_of_the_connection_it_is_given():
    assert history_care.database_errors(sqlite3.connect(":memory:")) == (sqlite3.DatabaseError,)
    assert dbapi2.DatabaseError in history_care.database_errors(dbapi2.connect(":memory:"))


# ------------------------------------------------------------------ defect 2: open errors that are not the key


def test_an_encrypted_history_held_exclusively_by_another_connection_is_reported_as_locked(tmp_path):
    path, key = tmp_path / "h.db", secrets.token_bytes(32)
    encrypted(path, key).close()
    holder = dbapi2.connect(str(path), isolation_level=None)
    holder.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryError) as refused:
            HistoryStore(path, key=key, timeout=0.05)
    finally:
        holder.close()
    assert str(refused.value).startswith("history database h.db is locked by another process (database is locked)")
    HistoryStore(path, key=key).close()  # the same key opens it once the other connection is gone


def test_a_wrong_key_is_still_reported_as_a_wrong_key(tmp_path):
    path = tmp_path / "h.db"
    encrypted(path, secrets.token_bytes(32)).close()
    with pytest.raises(HistoryError, match="cannot be decrypted: wrong key, or the file was altered"):
        HistoryStore(path, key=secrets.token_bytes(32))


class _FailingRead:
    """An SQLCipher connection whose first read of page 1 fails with `error` (a full or failing disk)."""

    def __init__(self, error):
        self.error, self.closed = error, False

    def execute(self, sql, *args):
        if sql.startswith("SELECT"):
            raise self.error
        return self

    def close(self):
        self.closed = True


@pytest.mark.parametrize("error", [dbapi2.OperationalError("disk I/O error"), dbapi2.OperationalError(FULL)])
def test_an_encrypted_history_on_a_full_or_failing_disk_is_not_blamed_on_the_key(tmp_path, monkeypatch, error):
    path, key = tmp_path / "h.db", secrets.token_bytes(32)
    encrypted(path, key).close()
    failing = _FailingRead(error)
    driver = SimpleNamespace(connect=lambda *a, **k: failing, DatabaseError=dbapi2.DatabaseError,
                             OperationalError=dbapi2.OperationalError)
    monkeypatch.setattr(secure_db, "_cipher_module", lambda: driver)
    with pytest.raises(HistoryError) as refused:
        HistoryStore(path, key=key)
    assert str(refused.value) == (
        f"history database h.db could not be opened: reading or writing its files failed ({error}), as when the "
        "storage is full or failing. Free space on the device (or check the storage), then open it again")
    assert failing.closed


def test_open_error_names_storage_failures_for_plain_and_encrypted_histories():
    for encrypted_file in (True, False):
        for error in (sqlite3.OperationalError("disk I/O error"), sqlite3.OperationalError(FULL)):
            message = str(history_care.open_error(error, "h.db", (sqlite3.OperationalError,), encrypted_file))
            assert "Free space on the device" in message and "integrity" not in message
            assert "recover" not in message
    damaged = history_care.open_error(sqlite3.DatabaseError("database disk image is malformed"), "h.db", (), True)
    assert "failed its integrity check" in str(damaged)
