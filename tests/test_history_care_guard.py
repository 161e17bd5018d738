"""The history file's care by hand: each refusal's whole message, the write checks' modes, private
creation's races, erasure's waits, backups, salvaging rows of a damaged file (mutation guard)."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import struct
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import ConfigError, HistoryError
from edgerec.runtime import history_care as hc
from edgerec.runtime import history_recover as hr
from edgerec.runtime.history import HistoryStore


def history(path: Path) -> Path:
    store = HistoryStore(path)
    store.record("p", "i1", "play")
    store.close()
    return path


def message(call, *args, **kw) -> str:
    with pytest.raises(HistoryError) as err:
        call(*args, **kw)
    return str(err.value)


# ------------------------------------------------------------------ check_file

def test_check_file_messages(tmp_path):
    assert hc.SQLITE_HEADER == b"SQLite format 3\x00" and hc.APPLICATION_ID == 0x65647265
    assert hc.check_file(Path(":memory:")) is None and hc.check_file(tmp_path / "new.db") is None
    (tmp_path / "link.db").symlink_to(tmp_path / "nowhere.db")
    assert message(hc.check_file, tmp_path / "link.db") == (
        "history path link.db is a symbolic link to a file that does not exist; pass the path of the history "
        "file itself (a new one is created there, readable by its owner only)")
    assert not (tmp_path / "nowhere.db").exists()
    (tmp_path / "dir.db").mkdir()
    assert message(hc.check_file, tmp_path / "dir.db") == (
        "history path dir.db is not a regular file; pass the path of a history database")
    (tmp_path / "empty.db").write_bytes(b"")
    assert message(hc.check_file, tmp_path / "empty.db") == (
        "history file empty.db is empty (0 bytes), not an edgerec history; delete it to start a new history, "
        "or pass the right file")
    foreign = ("history file {} cannot be used (it is not a plain SQLite database; if it is an encrypted history, "
               "pass its key: key= or --key-file); otherwise move it away and a new one will be created, or pass "
               "the right file")
    for name, data in (("v2.db", b"SQLite format 2\x00" + b"\x00" * 100), ("short.db", b"SQLite format 3")):
        (tmp_path / name).write_bytes(data)
        assert message(hc.check_file, tmp_path / name) == foreign.format(name)
        assert hc.check_file(tmp_path / name, encrypted=True) is None  # no readable header when encrypted
    real = history(tmp_path / "real.db")
    assert hc.check_file(real) is None
    (tmp_path / "to-real.db").symlink_to(real)
    assert hc.check_file(tmp_path / "to-real.db") is None


@pytest.mark.parametrize("kind", ["garbage", "dangling link"])
def test_memory_is_never_a_file_even_when_one_has_that_name(tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    if kind == "garbage":
        Path(":memory:").write_bytes(b"not a database")
    else:
        Path(":memory:").symlink_to(tmp_path / "nowhere")
    assert hc.check_file(Path(":memory:")) is None


def test_check_file_checks_writing_only_when_asked(tmp_path, monkeypatch):
    real = history(tmp_path / "real.db")
    asked = []
    monkeypatch.setattr(hc, "check_writable", asked.append)
    hc.check_file(real, writable=False)
    assert asked == []
    hc.check_file(real)
    assert asked == [real]


def test_an_unreadable_history_file_says_so(tmp_path, monkeypatch):
    real = history(tmp_path / "real.db")

    def refused(*args, **kw):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(hc, "open", refused, raising=False)
    assert message(hc.check_file, real, writable=False) == (
        "history file real.db cannot be read (Permission denied); give the app's user read access to it")


# ------------------------------------------------------------------ check_writable

@pytest.mark.parametrize("file_mode, folder_mode, companions, what", [
    (6, 3, (), None),
    (6, 1, (), "the folder that holds it (SQLite writes its log there)"),
    (6, 2, (), "the folder that holds it (SQLite writes its log there)"),
    (6, 1, (6, 6), None),  # the log and index exist and can be written: enough
    (6, 1, (6, 4), "the folder that holds it (SQLite writes its log there)"),
    (6, 1, (2, 6), "the folder that holds it (SQLite writes its log there)"),
    (6, 1, (6,), "the folder that holds it (SQLite writes its log there)"),
    (4, 3, (), "the file"),
    (2, 3, (), "the file"),
    (4, 1, (), "the file and its folder"),
])
def test_check_writable_by_the_modes_granted(tmp_path, monkeypatch, file_mode, folder_mode, companions, what):
    path = tmp_path / "h.db"
    granted = {str(path): file_mode, str(tmp_path): folder_mode}
    for suffix, mode in zip(("-wal", "-shm"), companions):
        Path(f"{path}{suffix}").write_bytes(b"")
        granted[f"{path}{suffix}"] = mode
    monkeypatch.setattr(hr.os, "access", lambda p, mode: granted.get(str(p), 0) & mode == mode)
    assert (os.R_OK, os.W_OK, os.X_OK) == (4, 2, 1)
    if what is None:
        assert hc.check_writable(path) is None
        return
    assert message(hc.check_writable, path) == (
        f"history database h.db is read-only for this app: {what} cannot be written (or read); the runtime writes "
        "every event at once, so it opens no history it cannot write. Give the app's user read and write access "
        "to the file and its folder, or copy the file into a writable folder and open the copy. Nothing was read "
        "or changed")


# ------------------------------------------------------------------ new and private files

def test_new_file_is_created_empty_with_its_mode_and_never_replaces(tmp_path):
    old = os.umask(0)
    try:
        hc.new_file(tmp_path / "a")
        hc.new_file(tmp_path / "b", 0o640)
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o600 and (tmp_path / "b").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "a").read_bytes() == b""
    (tmp_path / "a").write_bytes(b"kept")
    with pytest.raises(FileExistsError):
        hc.new_file(tmp_path / "a")
    assert (tmp_path / "a").read_bytes() == b"kept"


def make(tmp_name: list, content: bytes = b"made", also: Path | None = None):
    """An initialise() that writes `content` into the temporary file (and, first, `also` with other bytes)."""

    class Conn:
        def close(self):
            pass

    def initialise(tmp):
        tmp_name.append(tmp)
        if also is not None:
            also.write_bytes(b"the other process's")
        tmp.write_bytes(content)
        Path(f"{tmp}-wal").write_bytes(b"w")
        return Conn()

    return initialise


def test_create_private_links_a_whole_file_and_leaves_nothing_beside_it(tmp_path):
    path, made = tmp_path / "app" / "sub" / "h.db", []
    hc.create_private(path, make(made))
    tmp = made[0]
    assert tmp.parent == path.parent and tmp.name.startswith(".h.db.") and tmp.name.endswith(".new")
    assert len(tmp.name) == len(".h.db.") + 12 + len(".new") and int(tmp.name[6:18], 16) >= 0
    assert path.read_bytes() == b"made" and sorted(p.name for p in path.parent.iterdir()) == ["h.db"]
    for folder in (tmp_path / "app", tmp_path / "app" / "sub"):  # every folder it made, not the last only
        assert folder.stat().st_mode & 0o777 == 0o700


def test_create_private_uses_a_folder_made_meanwhile(tmp_path, monkeypatch):
    race, real, asked = tmp_path / "race", Path.is_dir, []
    race.mkdir()

    def not_yet(self):  # another process makes the folder between the check and mkdir
        asked.append(self)
        return False if self == race and asked.count(race) == 1 else real(self)

    monkeypatch.setattr(Path, "is_dir", not_yet)
    hc.create_private(race / "h.db", make([]))
    assert (race / "h.db").read_bytes() == b"made" and asked.count(race) == 2


def test_create_private_lets_a_file_made_meanwhile_win(tmp_path, monkeypatch):
    path = tmp_path / "h.db"
    hc.create_private(path, make([], also=path))
    assert path.read_bytes() == b"the other process's" and [p.name for p in tmp_path.iterdir()] == ["h.db"]

    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(hc.os, "link", no_links)  # FAT: no hard links; replaced unless a file came first
    other = tmp_path / "o.db"
    hc.create_private(other, make([], also=other))
    assert other.read_bytes() == b"the other process's"
    fresh = tmp_path / "f.db"
    hc.create_private(fresh, make([]))
    assert fresh.read_bytes() == b"made" and sorted(p.name for p in tmp_path.iterdir()) == ["f.db", "h.db", "o.db"]


def test_create_private_cleans_up_when_initialise_fails(tmp_path):
    made = []

    def failing(tmp):
        made.append(tmp)
        Path(f"{tmp}-shm").write_bytes(b"s")
        raise HistoryError("initialise failed")

    with pytest.raises(HistoryError, match="^initialise failed$"):
        hc.create_private(tmp_path / "h.db", failing)
    assert list(tmp_path.iterdir()) == []


def test_a_history_that_cannot_be_created_names_the_file_only(tmp_path):
    (tmp_path / "alice").write_text("a file, not a folder")
    assert message(hc.create_private, tmp_path / "alice" / "h.db", make([])) == (
        "cannot create the history database h.db (File exists); pass a path in a folder this app can write")


# ------------------------------------------------------------------ stored values read back

@pytest.mark.parametrize("value, version", [("1", 1), (1, 1), ("7", 7), (b"3", 3)])
def test_a_schema_version_of_one_or_more_is_read(value, version):
    assert hc.schema_version(value, Path("h.db")) == version


@pytest.mark.parametrize("value, shown", [("0", "'0'"), (0, "'0'"), ("-3", "'-3'"), ("x" * 30, repr("x" * 20)),
                                          (None, "'None'"), ("2.5", "'2.5'")])
def test_a_damaged_schema_version_is_refused(value, shown):
    assert message(hc.schema_version, value, Path("/home/alice/h.db")) == (
        f"history database h.db has a damaged schema version ({shown}); recover its readable events into a new "
        "file with `edgerec history recover`")


@pytest.mark.parametrize("raw, context", [
    (None, {}), ("", {}), ("{}", {}), (b"", {}), ('{"a": [1, 2]}', {"a": [1, 2]}), (b'{"b": 1}', {"b": 1}),
    ("[1]", {"unreadable": "[1]"}), ("not json", {"unreadable": "not json"}), ("3", {"unreadable": "3"}),
    (b"\xff", {"unreadable": "b'\\xff'"}), (7, {"unreadable": "7"}),
    ("[" * 100_000, {"unreadable": "[" * 100_000}),  # deeper than the parser's stack: still shown as stored
])
def test_a_stored_context_reads_back_or_is_shown_as_stored(raw, context):
    assert hc.context_of(raw) == context


def test_a_context_nested_beyond_the_parser_is_exported_not_a_crash(tmp_path):
    """Before, json's RecursionError escaped events() and export() (a user could not get their data)."""
    store = HistoryStore(tmp_path / "h.db")
    store.record("p", "i1", "play")
    store.db.execute("UPDATE events SET context = ?", ("{\"a\":" * 50_000,))
    assert store.events("p")[0].context == {"unreadable": "{\"a\":" * 50_000}
    assert store.export("p")["events"][0]["context"] == {"unreadable": "{\"a\":" * 50_000}


def vec(*values) -> bytes:
    return np.array(values, np.float32).tobytes()


def test_readable_items_leave_out_each_kind_of_altered_row():
    good = vec(1.0, 0.0)
    rows = [("a", good, '{"t": 1}', 0), (None, good, "{}", 0), ("", good, "{}", 0), (7, good, "{}", 0),
            ("b", good, "[1]", 0), ("c", good, "not json", 0), ("d", good, None, 0),
            ("e", vec(1.0), "{}", 0), ("f", vec(1.0, 0.0, 2.0), "{}", 0), ("g", "text", "{}", 0),
            ("h", vec(0.0, 0.0), "{}", 0), ("i", vec(np.nan, 1.0), "{}", 0), ("j", vec(np.inf, 1.0), "{}", 0),
            ("k", None, "{}", 0), ("l", good, "[" * 100_000, 0), ("m", vec(0.0, -2.0), "{}", 2)]
    assert hc.readable_items(rows, 2) == [("a", good, {"t": 1}, False), ("m", vec(0.0, -2.0), {}, True)]
    assert hc.readable_items(rows, None) == [
        ("a", good, {"t": 1}, False), ("e", vec(1.0), {}, False), ("f", vec(1.0, 0.0, 2.0), {}, False),
        ("g", "text", {}, False), ("h", vec(0.0, 0.0), {}, False), ("i", vec(np.nan, 1.0), {}, False),
        ("j", vec(np.inf, 1.0), {}, False), ("k", None, {}, False), ("m", vec(0.0, -2.0), {}, True)]


@pytest.mark.parametrize("meta, kept", [("[1]", {}), ("x", {}), (None, {}), ('{"x": 2}', {"x": 2}),
                                        ("[" * 100_000, {})])
def test_a_removal_needs_only_the_id(meta, kept):
    assert hc.readable_items([("r", None, meta, 1), ("", None, "{}", 1)], 4) == [("r", None, kept, True)]


def test_added_items_nested_beyond_the_parser_do_not_stop_the_others(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    store.save_items([("ok", "s", vec(1.0, 2.0), {"title": "t"}, False), ("deep", "s", vec(1.0, 2.0), {}, False)])
    store.db.execute("UPDATE added_items SET meta = ? WHERE item = 'deep'", ("[" * 100_000,))
    assert store.saved_items("s", 2) == [("ok", vec(1.0, 2.0), {"title": "t"}, False)]


# ------------------------------------------------------------------ check_database

class Scripted:
    """A connection whose queries answer from a script (SQL -> rows, or an exception to raise)."""

    def __init__(self, answers: dict):
        self.answers, self.asked, self.closed = answers, [], False

    def close(self):
        self.closed = True

    def execute(self, sql, params=()):
        self.asked.append(sql)
        answer = self.answers[sql]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            answer = answer()
        return sqlite3.connect(":memory:").execute("SELECT 1 WHERE 0") if answer == [] else _Rows(answer)


class _Rows:
    def __init__(self, rows):
        self.rows = rows

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self):
        return list(self.rows)

    def __iter__(self):
        return iter(self.rows)


def database(app=0, tables=(), problems=("ok",)) -> Scripted:
    return Scripted({"PRAGMA application_id": [(app,)],
                     "SELECT name FROM sqlite_master WHERE type='table'": [(t,) for t in tables],
                     "PRAGMA quick_check(5)": [(p,) for p in problems]})


@pytest.mark.parametrize("app, tables", [
    (0, ()), (0x65647265, ()), (0, ("meta", "events")), (0x65647265, tuple(hc.OWN_TABLES)),
    (0x65647265, ("meta", "events", "privacy_ledger")),
])
def test_an_edgerec_or_new_database_is_accepted(app, tables):
    db = database(app, tables)
    assert hc.check_database(db, Path("h.db")) is None and db.asked[-1] == "PRAGMA quick_check(5)"
    assert hc.OWN_TABLES == {"meta", "events", "preferences", "added_items", "privacy_ledger", "sqlite_sequence"}


@pytest.mark.parametrize("app, tables", [
    (1, ()), (0x65647266, ("meta", "events")), (0, ("meta",)), (0, ("events",)), (0, ("contacts",)),
    (0, ("meta", "events", "contacts")), (0x65647265, ("meta", "events", "added_items_by_space")),
])
def test_a_foreign_database_is_refused(app, tables):
    db = database(app, tables)
    assert message(hc.check_database, db, Path("/home/alice/h.db")) == (
        "h.db is an SQLite database of another application, not an edgerec history; pass a new file name for "
        "the history")
    assert "PRAGMA quick_check(5)" not in db.asked


def test_a_damaged_database_lists_its_problems():
    db = database(0, ("meta", "events"), ("row 3 missing from index", "page 7: btreeInitPage() returns error"))
    assert message(hc.check_database, db, Path("h.db")) == (
        "history database h.db is damaged (row 3 missing from index; page 7: btreeInitPage() returns error); "
        "recover the readable events into a new file with `edgerec history recover` (HistoryStore.recover)")


# ------------------------------------------------------------------ erasure

class Clock:
    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def monotonic(self):
        return self.now

    def sleep(self, s):
        self.sleeps.append(s)
        self.now += s


def checkpoints(busy: list[int]) -> Scripted:
    return Scripted({"PRAGMA wal_checkpoint(TRUNCATE)": lambda: [(busy.pop(0), 0, 0)], "VACUUM": []})


def test_a_checkpoint_retries_every_50_ms_until_its_wait_is_over(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(hc, "time", clock)
    hc.checkpoint(checkpoints([1, 1, 0]), Path("h.db"), 1.0)
    assert clock.sleeps == [0.05, 0.05]
    clock.sleeps, clock.now = [], 0.0
    busy = checkpoints([1] * 10)
    assert message(hc.checkpoint, busy, Path("/home/alice/h.db"), 0.1) == (
        "another connection holds a read snapshot of h.db (an open app or `edgerec history show`), so the deleted "
        "rows are hidden but not yet erased from its write-ahead log; close the other reader, then forget the user "
        "again (forget() or `edgerec history forget`) or open the history again: either completes the erasure")
    assert clock.sleeps == [0.05, 0.05] and len(busy.asked) == 3  # at 0, 0.05 and 0.1 (the deadline)
    clock.sleeps = []
    with pytest.raises(HistoryError):
        hc.checkpoint(checkpoints([1, 0]), Path("h.db"), 0.0)
    assert clock.sleeps == []


def test_erase_checkpoints_and_vacuums_as_asked(monkeypatch):
    monkeypatch.setattr(hc, "time", Clock())
    plain = checkpoints([0])
    hc.erase(plain, Path("h.db"), 0.0, vacuum=False)
    assert plain.asked == ["PRAGMA wal_checkpoint(TRUNCATE)"]
    full = checkpoints([0, 0])
    hc.erase(full, Path("h.db"), 0.0, vacuum=True)
    assert full.asked == ["PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"]
    memory = checkpoints([])
    hc.erase(memory, Path(":memory:"), 0.0, vacuum=True)
    assert memory.asked == []
    busy = ("another connection holds a read snapshot of h.db (an open app or `edgerec history show`), so the "
            "deleted rows")
    for answers, vacuum in (([1], False), ([1], True), ([0, 1], True)):  # the first checkpoint, or the last
        assert message(hc.erase, checkpoints(answers), Path("/home/alice/h.db"), 0.0, vacuum).startswith(busy)
    failing = Scripted({"PRAGMA wal_checkpoint(TRUNCATE)": sqlite3.OperationalError("disk I/O error")})
    assert message(hc.erase, failing, Path("/home/alice/h.db"), 1.0, True) == (
        "could not erase deleted rows from h.db (disk I/O error); forget the user again (forget() or "
        "`edgerec history forget`) or open the history again")


# ------------------------------------------------------------------ backup

def test_a_backup_is_one_private_self_contained_file(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    store.record("p", "i1", "play")
    out = hc.backup(store.db, str(tmp_path / "copy.db"))
    assert out == tmp_path / "copy.db" and isinstance(out, Path) and not list(tmp_path.glob(".copy.db.*"))
    head = out.read_bytes()[:20]
    assert head[:16] == hc.SQLITE_HEADER and struct.unpack("BB", head[18:20]) == (1, 1)  # not WAL
    assert out.stat().st_mode & 0o777 == 0o600 and not Path(f"{out}-wal").exists()
    assert [e.item for e in HistoryStore(out).events("p")] == ["i1"]
    assert message(hc.backup, store.db, out) == "copy.db exists; choose a new file for the backup"
    with pytest.raises(ConfigError, match="the backup's path must be a path"):
        hc.backup(store.db, None)


def test_a_failed_backup_names_the_file_only_and_leaves_nothing(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    assert message(hc.backup, store.db, tmp_path / "alice" / "copy.db") == (
        "could not back up the history to copy.db (No such file or directory); write the backup in a folder "
        "this app can write, with room for it")

    class Failing:
        def backup(self, target):
            raise sqlite3.OperationalError("database or disk is full")

    assert message(hc.backup, Failing(), tmp_path / "copy.db") == (
        "could not back up the history to copy.db (database or disk is full); write the backup in a folder "
        "this app can write, with room for it")
    assert sorted(p.name for p in tmp_path.iterdir() if "copy" in p.name) == []


def test_two_backups_to_one_file_at_once_keep_the_first_and_refuse_the_second(tmp_path, monkeypatch):
    """Both used the temporary copy.db.tmp, each deleted the other's, and both failed ("readonly database",
    "disk I/O error"), leaving no backup."""
    store = HistoryStore(tmp_path / "h.db")
    store.record("p", "i1", "play")
    other = HistoryStore(tmp_path / "h.db")
    real = hc.link_new

    def the_other_finishes_first(tmp, path):
        monkeypatch.setattr(hc, "link_new", real)
        hc.backup(other.db, path)  # the other backup, with its own temporary, publishes meanwhile
        return real(tmp, path)

    monkeypatch.setattr(hc, "link_new", the_other_finishes_first)
    assert message(hc.backup, store.db, tmp_path / "copy.db") == (
        "copy.db exists (another backup finished first); choose a new file for the backup")
    assert [e.item for e in HistoryStore(tmp_path / "copy.db").events("p")] == ["i1"]
    assert not list(tmp_path.glob(".copy.db.*"))


# ------------------------------------------------------------------ salvaging rows

class Flaky:
    """A real connection whose reads fail where `bad` ids lie (whole-table reads fail too)."""

    def __init__(self, db, bad, seq=None, whole_ok=False):
        self.db, self.bad, self.seq, self.whole_ok, self.asked = db, set(bad), seq, whole_ok, []

    def execute(self, sql, params=()):
        self.asked.append((sql, params))
        if len(self.asked) > 50_000:  # a salvage loop that never ends fails the test instead of hanging it
            raise AssertionError("endless probing")
        if "WHERE" not in sql and not self.whole_ok:
            raise sqlite3.DatabaseError("database disk image is malformed")
        if "sqlite_sequence" in sql:
            if isinstance(self.seq, Exception):
                raise self.seq
            return _Rows([] if self.seq is None else [(self.seq,)])
        if "BETWEEN" in sql and any(params[0] <= b <= params[1] for b in self.bad):
            raise sqlite3.DatabaseError("malformed")
        if sql.endswith("=?") and params[0] in self.bad:
            raise sqlite3.DatabaseError("malformed")
        return self.db.execute(sql, params)


def rows_db(n: int):
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"r{i}") for i in range(1, n + 1)])
    return db


def test_a_readable_table_is_read_whole():
    flaky = Flaky(rows_db(3), [], whole_ok=True)
    assert hr.readable_rows(flaky, "t", "id, x", "id", 10) == ([(1, "r1"), (2, "r2"), (3, "r3")], 0)
    assert flaky.asked == [("SELECT id, x FROM t", ())]
    assert hr.readable_rows(Flaky(rows_db(3), []), "t", "id, x", None, 10) == ([], 1)


def test_a_damaged_range_is_read_row_by_row_up_to_the_sequence():
    assert hr.RECOVER_CHUNK == 256
    flaky = Flaky(rows_db(700), [300, 301], seq=600)
    rows, failed = hr.readable_rows(flaky, "t", "id, x", "id", 10)
    assert failed == 2 and [r[0] for r in rows] == [i for i in range(1, 701) if i not in (300, 301)]
    ranges = [p for sql, p in flaky.asked if "BETWEEN" in sql]
    assert ranges == [(0, 255), (256, 511), (512, 767)]
    singles = [p[0] for sql, p in flaky.asked if sql.endswith("=?") and "sqlite_sequence" not in sql]
    assert singles == list(range(256, 512))
    assert ("SELECT seq FROM sqlite_sequence WHERE name=?", ("t",)) in flaky.asked


def test_a_sequence_altered_to_a_huge_number_costs_queries_for_the_rows_only():
    """Before, every id below the sequence was probed chunk by chunk: 2**62 / 256 queries, for ever."""
    class Counted(Flaky):
        def execute(self, sql, params=()):
            if len(self.asked) > 10_000:
                raise AssertionError("probing the whole id space")
            return super().execute(sql, params)

    db = rows_db(700)
    db.execute("INSERT INTO t VALUES (5000000, 'far')")
    flaky = Counted(db, [300], seq=2**62)
    rows, failed = hr.readable_rows(flaky, "t", "id, x", "id", 10)
    assert failed == 1 and [r[0] for r in rows] == [i for i in range(1, 701) if i != 300] + [5_000_000]
    ranges = [p for sql, p in flaky.asked if "BETWEEN" in sql]
    assert ranges == [(0, 255), (256, 511), (512, 767), (5_000_000, 5_000_255)]  # the gap cost one query


def test_an_unreadable_part_of_the_tree_is_stepped_over_a_chunk_at_a_time():
    class Blind(Flaky):
        def execute(self, sql, params=()):
            if "min(" in sql and params[0] < 600:
                self.asked.append((sql, params))
                raise sqlite3.DatabaseError("malformed")
            return super().execute(sql, params)

    flaky = Blind(rows_db(700), [], seq=700)
    rows, failed = hr.readable_rows(flaky, "t", "id, x", "id", 10)
    assert failed == 0 and [r[0] for r in rows] == list(range(1, 701))
    assert [p for sql, p in flaky.asked if "BETWEEN" in sql] == [(0, 255), (256, 511), (512, 767)]


class DeadFrom(Flaky):
    """Every read that reaches ids from `first` on fails (the page of the last rows is damaged), and so does the
    tree's `min` past them."""

    def __init__(self, db, first, seq):
        super().__init__(db, [], seq=seq)
        self.first = first

    def execute(self, sql, params=()):
        if params and isinstance(params[0], int) and params[-1] >= self.first and "sqlite_sequence" not in sql:
            self.asked.append((sql, params))
            if len(self.asked) > 50_000:
                raise AssertionError("endless probing")
            raise sqlite3.DatabaseError("malformed")
        return super().execute(sql, params)


@pytest.mark.parametrize("most, last", [(1000, 1536), (1024, 1536), (1025, 1792)])
def test_a_damaged_end_of_the_tree_under_a_huge_sequence_is_probed_no_further_than_most_ids(most, last):
    """The last rows' page unreadable and the sequence altered to 2**62: every id past the real rows fails and
    so does the tree's `min` that skips gaps, so recovery stepped a chunk at a time towards 2**62 (for ever).
    Blind steps now stop once `most` ids in a row have given nothing (counted from the last chunk with rows)."""
    flaky = DeadFrom(rows_db(700), 650, seq=2**62)
    rows, failed = hr.readable_rows(flaky, "t", "id, x", "id", most)
    assert [r[0] for r in rows] == list(range(1, 650))
    ranges = [p for sql, p in flaky.asked if "BETWEEN" in sql]
    assert ranges == [(start, start + 255) for start in range(0, last + 1, 256)]
    assert failed == last + 256 - 650  # each id of the failing chunks, one by one


@pytest.mark.parametrize("most, chunks", [(256, 1), (257, 2)])
def test_a_table_unreadable_from_its_first_id_is_probed_for_most_ids(most, chunks):
    flaky = DeadFrom(rows_db(700), 0, seq=2**62)
    assert hr.readable_rows(flaky, "t", "id, x", "id", most) == ([], 256 * chunks)


def damaged_history(db, seq, marker: str):
    """A history of 3000 events whose sequence reads `seq` (SQL), with the page holding `marker` damaged."""
    store = HistoryStore(db)
    with store._transaction():
        store.db.executemany("INSERT INTO events (profile, item, event, value, ts, context) VALUES (?,?,?,?,?,?)",
                             [("p", f"item-{i:05d}", "play", None, 1e9 + i, "{}") for i in range(3000)])
        store.db.execute(f"UPDATE sqlite_sequence SET seq = {seq} WHERE name = 'events'")
    store.close()
    page = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(db.read_bytes())
    victim = data.index(marker.encode()) // page
    data[victim * page:victim * page + 64] = b"\xa5" * 64
    db.write_bytes(bytes(data))
    return db


def test_recovering_a_file_whose_last_page_is_damaged_under_a_huge_sequence_ends(tmp_path):
    """The same on a real file, in its own process: before, `history recover` never returned."""
    import subprocess
    import sys

    db = damaged_history(tmp_path / "h.db", 2**62, "item-02999")  # the page of the last rows
    code = ("import sys, json\nfrom edgerec.runtime.history_recover import recover\n"
            "print(json.dumps(recover(sys.argv[1], sys.argv[2])))\n")
    done = subprocess.run([sys.executable, "-c", code, str(db), str(tmp_path / "out.db")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert 2800 < report["events"] < 3000  # the damaged chunk's ids, then at most `most` blind ones:
    assert report["unreadable"] <= db.stat().st_size // 16 + 2 * hr.RECOVER_CHUNK
    out = sqlite3.connect(tmp_path / "out.db")
    assert out.execute("SELECT count(*) FROM events").fetchone()[0] == report["events"]
    out.close()


@pytest.mark.parametrize("seq, top", [(None, 511), (sqlite3.DatabaseError("gone"), 511), ("x", 511), (float("inf"), 511),
                                      (256, 511), (255, 255), (-1, 0)])
def test_without_a_sequence_the_ids_up_to_most_are_probed(seq, top):
    flaky = Flaky(rows_db(700), [], seq=seq)
    rows, failed = hr.readable_rows(flaky, "t", "id, x", "id", 511)
    assert failed == 0 and [r[0] for r in rows] == list(range(1, top + 1))


# ------------------------------------------------------------------ recover

def test_recover_copies_every_table_and_reports_counts(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    for i in range(3):
        store.record("p", f"i{i}", "play", context={"n": i})
    store.set_preferences("p", "genre", ["jazz", "rock"])
    store.save_items([("new", "s", vec(1.0), {"t": 1}, False)])
    store.close()
    report = hr.recover(tmp_path / "h.db", str(tmp_path / "out.db"))
    assert report == {"events": 3, "preferences": 2, "added_items": 1, "unreadable": 0}
    fresh = HistoryStore(tmp_path / "out.db")
    assert [(e.id, e.item, e.context) for e in fresh.events("p")] == [(1, "i0", {"n": 0}), (2, "i1", {"n": 1}),
                                                                      (3, "i2", {"n": 2})]
    assert fresh.preferences("p") == {"genre": ["jazz", "rock"]}
    assert fresh.saved_items("s") == [("new", vec(1.0), {"t": 1}, False)]


def test_recover_refusals_name_the_files_only(tmp_path):
    home = tmp_path / "alice"
    home.mkdir()
    assert message(hr.recover, home / "gone.db", home / "out.db") == (
        "gone.db does not exist; pass the damaged history file")
    history(home / "h.db")
    (home / "taken.db").write_bytes(b"x")
    assert message(hr.recover, home / "h.db", home / "taken.db") == (
        "taken.db exists; choose a new file for the recovered history")
    sqlite3.connect(home / "notes.db").execute("CREATE TABLE meta (x)").connection.commit()
    with sqlite3.connect(home / "mixed.db") as db:
        db.execute("CREATE TABLE events (x)")
        db.execute("CREATE TABLE contacts (x)")
    with sqlite3.connect(home / "other.db") as db:  # only an "events" table, of another app: 0 events "recovered"
        db.execute("CREATE TABLE events (x)")
        db.execute("INSERT INTO events VALUES (1)")
    with sqlite3.connect(home / "marked.db") as db:  # edgerec's tables, another application's id
        db.execute("PRAGMA application_id = 1234")
        db.execute("CREATE TABLE events (id, profile, item, event, value, ts, context)")
    for name in ("notes.db", "mixed.db", "other.db", "marked.db"):
        assert message(hr.recover, home / name, home / "out.db") == (
            f"{name} is not an edgerec history (no events table, or another application's tables); pass the "
            "damaged history file")
    assert not (home / "out.db").exists()
    (home / "plain.txt").write_bytes(b"hello, not a database at all")
    assert "plain.txt cannot be used" in message(hr.recover, home / "plain.txt", home / "out.db")


@pytest.mark.parametrize("name", ["my#history.db", "a%41.db", "q?x.db", "é h.db"])
def test_recover_opens_the_named_file_whatever_its_characters(tmp_path, name):
    """Before, the path went into a file: URI raw: "my#history.db" opened (and created) "my"."""
    history(tmp_path / name)
    assert hr.recover(tmp_path / name, tmp_path / "out.db")["events"] == 1
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(name)) == ["out.db"]


@pytest.mark.parametrize("path, out, what", [(None, "o.db", "the damaged history's path"),
                                             (7, "o.db", "the damaged history's path"),
                                             ("h.db", b"o.db", "the recovered history's path"),
                                             ("h\x00.db", "o.db", "the damaged history's path")])
def test_recover_refuses_a_path_of_the_wrong_type(tmp_path, path, out, what):
    with pytest.raises(ConfigError) as err:
        HistoryStore.recover(path, out)
    assert str(err.value).startswith(f"{what} must be a path (a non-empty str or pathlib.Path; got ")


def test_the_items_bump_counts_saves(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    version = lambda: store.db.execute("SELECT value FROM meta WHERE key='items_version'").fetchone()  # noqa: E731
    assert version() is None
    store.save_items([("a", "s", None, {}, True)])
    store.save_items([("b", "s", None, {}, True)])
    assert json.loads(str(version()[0])) == 2


@pytest.mark.parametrize("name", ["photos#1.db", "photos?x.db"])
def test_a_foreign_database_is_not_encrypted_whatever_its_name(tmp_path, name):
    """Before, the read-only check opened "photos" (a new, empty and so acceptable database) instead of the
    named file, and encrypted another application's database, locking it out."""
    pytest.importorskip("sqlcipher3", reason="the crypto extra (sqlcipher3) is part of the full install")
    from handmade import foreign_database

    from edgerec.runtime.secure_db import encrypt_database

    before = foreign_database(tmp_path / name, "albums")
    with pytest.raises(HistoryError, match="another application"):
        encrypt_database(tmp_path / name, bytes(range(32)))
    assert (tmp_path / name).read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [name]


def test_recover_reads_a_file_this_app_cannot_write(tmp_path, monkeypatch):
    history(tmp_path / "h.db")
    monkeypatch.setattr(hr.os, "access", lambda p, mode: not mode & os.W_OK)  # a read-only copy
    assert hr.recover(tmp_path / "h.db", tmp_path / "out.db")["events"] == 1


def test_recover_says_when_nothing_can_be_read(tmp_path, monkeypatch):
    history(tmp_path / "h.db")

    def cannot(*args, **kw):
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(hc.sqlite3, "connect", cannot)
    assert message(hr.recover, tmp_path / "h.db", tmp_path / "out.db") == (
        "h.db cannot be opened at all (unable to open database file); nothing can be recovered")
    listing = Scripted({"SELECT name FROM sqlite_master WHERE type='table'": sqlite3.DatabaseError("malformed")})
    monkeypatch.setattr(hc.sqlite3, "connect", lambda *a, **kw: listing)
    assert message(hr.recover, tmp_path / "h.db", tmp_path / "out.db") == (
        "h.db is damaged beyond its table list (malformed); nothing can be recovered")
    assert listing.closed and not (tmp_path / "out.db").exists()


def test_recover_bounds_the_probed_ids_by_the_file_size_and_counts_unreadable_tables(tmp_path, monkeypatch):
    history(tmp_path / "h.db")
    calls, real = [], hr.readable_rows

    def recorded(db, table, columns, key, most, errors):
        calls.append((table, columns, key, most))
        if table == "preferences":
            raise sqlite3.DatabaseError("malformed")
        return real(db, table, columns, key, most, errors)

    monkeypatch.setattr(hr, "readable_rows", recorded)
    report = hr.recover(tmp_path / "h.db", tmp_path / "out.db")
    most = (tmp_path / "h.db").stat().st_size // 16
    assert calls == [("events", "id, profile, item, event, value, ts, context", "id", most),
                     ("preferences", "profile, kind, value, ts", None, most),
                     ("added_items", "item, space, vector, meta, removed", None, most)]
    assert report == {"events": 1, "preferences": 0, "added_items": 0, "unreadable": 1}


def test_a_damaged_file_whose_sequence_was_altered_into_text_is_recovered(tmp_path):
    """Before, int() of the altered sequence raised ValueError out of recover()."""
    db = damaged_history(tmp_path / "h.db", "'many'", "item-01500")
    report = hr.recover(db, tmp_path / "out.db")
    assert 2800 < report["events"] < 3000 and report["unreadable"] > 0


def test_a_history_in_a_folder_this_app_cannot_write_is_recovered_from_a_private_copy(tmp_path, monkeypatch):
    """SQLite cannot open a WAL history read-only where it cannot make its -shm file: recover() called such a
    healthy file 'damaged beyond its table list'. (Run as root, file modes do not stop SQLite, so the folder
    is made to look read-only to the check.)"""
    (tmp_path / "ro").mkdir()
    store = HistoryStore(tmp_path / "ro" / "h.db")
    for i in range(40):
        store.record("ann", f"i{i}", "play")
    store.close()
    real_access = os.access
    monkeypatch.setattr(hr.os, "access", lambda p, mode: False if Path(p) == tmp_path / "ro" else real_access(p, mode))
    copies = []
    real_copy = hr._recover_from
    monkeypatch.setattr(hr, "_recover_from", lambda p, out, key: copies.append(p) or real_copy(p, out, key))
    report = hr.recover(tmp_path / "ro" / "h.db", tmp_path / "out.db")
    assert report["events"] == 40 and report["unreadable"] == 0
    assert copies and copies[0].parent != tmp_path / "ro" and not copies[0].parent.exists()  # the copy is gone
