"""Guards of the encrypted history's connection code (what mutation testing found untested in secure_db.py).

Messages must name the history file only: a folder above it can name the user
(/data/user/alice/...), and these errors reach an app's logs.
"""

import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing

import pytest

from edgerec.errors import ConfigError, HistoryError
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.secure_db import check_key, connect, encrypt_database, is_plain, verify_pages

pytest.importorskip("sqlcipher3", reason="the crypto extra (sqlcipher3) is part of the full install")

FOLDER = "alice-private-folder"


@pytest.fixture
def where(tmp_path):
    folder = tmp_path / FOLDER
    folder.mkdir()
    return folder / "h.db"


def test_check_key_says_what_it_got():
    assert check_key(bytearray(range(32))) == bytes(range(32))
    with pytest.raises(ConfigError, match=r"^a history key is 32 raw bytes \(got 31\); take it from the OS "
                                          r"keystore, or make one with secrets.token_bytes\(32\)$"):
        check_key(bytes(31))
    with pytest.raises(ConfigError, match=r"\(got str\)"):
        check_key("0" * 32)


def test_refusals_name_the_file_and_never_the_folders_above_it(where):
    key = secrets.token_bytes(32)
    HistoryStore(where, key=key).close()
    with pytest.raises(HistoryError, match=r"^history database h.db cannot be used without a key: it is encrypted, "
                                           r"or not a database. Open it with its key .* if it is corrupt, move it "
                                           r"away and a new one will be created$") as no_key:
        connect(where)
    with pytest.raises(HistoryError, match=r"^history database h.db cannot be decrypted: wrong key, or the file was "
                                           r"altered. Nothing was changed; open it with the key it was created "
                                           r"with$") as wrong:
        connect(where, secrets.token_bytes(32))
    plain = where.with_name("p.db")
    HistoryStore(plain).close()
    with pytest.raises(HistoryError, match=r"^history database p.db is not encrypted; encrypt it first with "
                                           r"edgerec.runtime.secure_db.encrypt_database \(or `edgerec history "
                                           r"encrypt`\)$") as unencrypted:
        connect(plain, key)
    for refusal in (no_key, wrong, unencrypted):
        assert FOLDER not in str(refusal.value)


def test_connections_autocommit_and_serve_other_threads(where):
    for key in (None, secrets.token_bytes(32)):
        conn = connect(where.with_name(f"t{key is None}.db"), key)
        assert conn.encrypted is (key is not None) and conn.db.isolation_level is None  # the store runs BEGIN itself
        assert conn.busy and all(issubclass(e, BaseException) for e in conn.busy + conn.errors)
        seen = []
        worker = threading.Thread(target=lambda db=conn.db, out=seen: out.append(db.execute("SELECT 7").fetchone()[0]))
        worker.start()
        worker.join()
        assert seen == [7]  # an app's worker thread may serve requests (check_same_thread off)
        conn.db.close()
    memory = connect(":memory:")
    assert memory.encrypted is False and memory.db.execute("SELECT 1").fetchone() == (1,)


def test_is_plain_reads_the_header_of_existing_non_empty_files(tmp_path):
    assert not is_plain(tmp_path / "missing.db")
    (tmp_path / "empty.db").write_bytes(b"")
    assert not is_plain(tmp_path / "empty.db")
    (tmp_path / "one.db").write_bytes(b"S")
    assert not is_plain(tmp_path / "one.db")
    sqlite3.connect(tmp_path / "real.db").execute("CREATE TABLE t (x)").connection.close()
    assert is_plain(tmp_path / "real.db")


def test_verify_pages_names_each_damaged_page(tmp_path):
    key, path = secrets.token_bytes(32), tmp_path / "h.db"
    store = HistoryStore(path, key=key)
    for i in range(400):
        store.record("u", f"i{i:05d}", "play")
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert verify_pages(store.db) == []
    store.close()
    data = bytearray(path.read_bytes())
    data[3 * 4096 + 100] ^= 0xFF  # one byte of page 4
    path.write_bytes(bytes(data))
    conn = connect(path, key)  # page 1 is intact: it opens
    problems = verify_pages(conn.db)
    conn.db.close()
    assert problems and all(isinstance(p, str) and p not in ("None", "") for p in problems)
    assert any("4" in p for p in problems), problems


def test_encrypting_keeps_the_version_and_names_the_file_only(where):
    store = HistoryStore(where)
    store.record("u", "i1", "play")
    version = store.db.execute("PRAGMA user_version").fetchone()[0]
    store.close()
    key = secrets.token_bytes(32)
    assert encrypt_database(where, key) > 0
    assert not where.with_name("h.db.encrypting").exists()
    conn = connect(where, key)
    assert conn.db.execute("PRAGMA user_version").fetchone()[0] == version
    conn.db.close()
    with pytest.raises(HistoryError, match=r"^h.db is not a plain SQLite history \(already encrypted, or missing\)$"):
        encrypt_database(where, key)


def test_shredding_overwrites_every_byte_before_removing(tmp_path):
    from edgerec.runtime.secure_db import _shred_file

    path, witness = tmp_path / "old.db", tmp_path / "witness"
    secret = b"alice watched this " * 500
    path.write_bytes(secret)
    witness.hardlink_to(path)  # a second name of the same bytes survives the unlink
    _shred_file(path)
    left = witness.read_bytes()
    assert not path.exists() and len(left) == len(secret)
    assert b"alice" not in left and left != secret
    _shred_file(tmp_path / "never-existed")  # nothing to do, no error


def test_encrypting_replaces_a_copy_a_killed_run_left_and_checks_its_argument(where, monkeypatch):
    HistoryStore(where).close()
    stale = where.with_name("h.db.encrypting")
    stale.write_bytes(b"half of an earlier copy")
    key = secrets.token_bytes(32)
    encrypt_database(where, key)
    assert not stale.exists() and connect(where, key).encrypted
    with pytest.raises(ConfigError, match=r"^the history to encrypt must be a path"):
        encrypt_database(7, key)
    import sys

    monkeypatch.setitem(sys.modules, "sqlcipher3", None)  # as if the crypto extra were not installed
    with pytest.raises(HistoryError, match=r"^an encrypted history needs SQLCipher, which is not installed; install "
                                           r"the encryption extra: pip install 'edgerec\[crypto\]'. Nothing was "
                                           r"written.$"):
        connect(where, key)


def test_the_copy_check_counts_the_rows_of_every_table(tmp_path):
    from edgerec.runtime.secure_db import _row_counts

    store = HistoryStore(tmp_path / "h.db")
    for i in range(3):
        store.record("u", f"i{i}", "play")
    counts = _row_counts(store.db)
    store.close()
    assert counts["events"] == 3 and all(not name.startswith("sqlite_") for name in counts)


def test_refused_ids_and_paths_are_not_echoed_in_messages():
    from edgerec.runtime import checks

    for call, secret in ((lambda: checks.text(48151623, "user"), "48151623"),
                         (lambda: checks.path(b"/home/alice/h.db", "history"), "alice"),
                         (lambda: checks.path("/home/alice/\x00h.db", "history"), "alice")):
        with pytest.raises(ConfigError) as refused:
            call()
        assert secret not in str(refused.value)
    with pytest.raises(ConfigError, match=r"^user must be a string \(got int\)$"):
        checks.text(7, "user")
    with pytest.raises(ConfigError, match=r"^history must be a path \(a non-empty str or pathlib.Path; got a path "
                                          r"holding a NUL byte\)$"):
        checks.path("a\x00b", "history")
    with pytest.raises(ConfigError, match=r"got an empty path\)$"):
        checks.path("", "history")
    assert checks.path("h.db", "history") == "h.db"


def test_connections_wait_on_a_lock_as_long_as_asked(where):
    key = secrets.token_bytes(32)
    for k, name in ((None, "p.db"), (key, "e.db")):
        path = where.with_name(name)
        default, short = connect(path, k), connect(path, k, timeout=0.25)
        assert default.db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000  # 5 s unless told
        assert short.db.execute("PRAGMA busy_timeout").fetchone()[0] == 250
        default.db.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        started = time.monotonic()
        with pytest.raises(short.busy):
            short.db.execute("BEGIN IMMEDIATE")
        assert time.monotonic() - started > 0.2  # it waited (how long at most is the pragma above, not a timing)
        default.db.execute("ROLLBACK")
        for conn in (default, short):
            conn.db.close()


def test_verify_pages_reports_a_check_that_cannot_run(tmp_path):
    conn = connect(tmp_path / "h.db", secrets.token_bytes(32))
    conn.db.close()
    assert verify_pages(conn.db) == ["Cannot operate on a closed database."]


def test_a_damaged_plain_history_is_refused_as_damaged_not_with_a_traceback(where):
    damaged = b"SQLite format 3\x00" + bytes(range(256)) * 20  # the header, then no database
    where.write_bytes(damaged)
    with pytest.raises(HistoryError, match=r"^history database h.db is damaged \(file is not a database\) and was not "
                                           r"encrypted; recover its readable events into a new file with `edgerec "
                                           r"history recover`, then encrypt that$") as refused:
        encrypt_database(where, secrets.token_bytes(32))
    assert FOLDER not in str(refused.value)
    assert where.read_bytes() == damaged and sorted(p.name for p in where.parent.iterdir()) == ["h.db"]


def test_a_history_open_elsewhere_is_not_encrypted_under_it(where):
    store = HistoryStore(where)
    store.record("u", "i1", "play")
    key = secrets.token_bytes(32)
    started = time.monotonic()
    with pytest.raises(HistoryError, match=r"^h.db is open in another connection \(an app, or `edgerec history "
                                           r"show`\); close it, then encrypt again. Nothing was changed$"):
        encrypt_database(where, key)
    assert time.monotonic() - started < 4.0  # refused at once, not after the 5 s lock wait (a wide margin: loaded CI)
    assert is_plain(where) and not where.with_name("h.db.encrypting").exists()
    store.record("u", "i2", "play")  # the app goes on writing into the file it has open
    store.close()
    encrypt_database(where, key)
    reopened = HistoryStore(where, key=key)
    assert sorted(e.item for e in reopened.events("u")) == ["i1", "i2"]  # nothing written meanwhile was lost
    reopened.close()


APP = """
import sys
from edgerec.runtime.history import HistoryStore
store = HistoryStore(sys.argv[1])
store.record("u", "i1", "play")
print("open", flush=True)
sys.stdin.readline()
store.record("u", "i2", "play")
store.close()
"""


def test_a_history_an_app_process_has_open_is_not_encrypted_under_it(where):
    app = subprocess.Popen([sys.executable, "-c", APP, str(where)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    try:
        assert app.stdout.readline() == "open\n"
        with pytest.raises(HistoryError, match=r"^h.db is open in another connection"):
            encrypt_database(where, secrets.token_bytes(32))
    finally:
        app.communicate("\n", timeout=60)
    assert app.returncode == 0 and is_plain(where)
    store = HistoryStore(where)
    assert sorted(e.item for e in store.events("u")) == ["i1", "i2"]  # the app's later write is in the file
    store.close()


def _plain_history(where, events=3):
    store = HistoryStore(where)
    for i in range(events):
        store.record("u", f"i{i}", "play")
    store.close()
    return where.read_bytes()


def test_a_failed_export_leaves_the_plain_file_and_no_copy(where):
    plain = _plain_history(where)
    where.with_name("h.db.encrypting-journal").mkdir()  # the copy's journal cannot be created
    with pytest.raises(HistoryError, match=r"^could not encrypt h.db \(unable to open database file\); the plain file "
                                           r"is unchanged$"):
        encrypt_database(where, secrets.token_bytes(32))
    assert where.read_bytes() == plain and not where.with_name("h.db.encrypting").exists()


def test_a_copy_missing_rows_is_refused_and_removed(where, monkeypatch):
    from edgerec.runtime import secure_db

    plain, real, seen = _plain_history(where), secure_db._row_counts, []

    def one_row_lost(db):  # the second count is the copy's
        counts = real(db)
        seen.append(dict(counts))
        if len(seen) == 2:
            counts["events"] -= 1
        return counts

    monkeypatch.setattr(secure_db, "_row_counts", one_row_lost)
    with pytest.raises(HistoryError, match=r"^the encrypted copy of h.db does not hold every row; the plain file is "
                                           r"unchanged$"):
        encrypt_database(where, secrets.token_bytes(32))
    assert seen[0]["events"] == 3 and seen[0] == seen[1]
    assert where.read_bytes() == plain and not where.with_name("h.db.encrypting").exists()
    store = HistoryStore(where)
    assert [e.item for e in store.events("u")] == ["i0", "i1", "i2"]  # it still opens and reads
    store.close()


def test_a_stale_shared_memory_file_is_shredded_too(where):
    _plain_history(where)
    with closing(sqlite3.connect(where)) as db:
        db.execute("PRAGMA journal_mode=DELETE")  # a backup's mode: SQLite leaves a stray -shm alone
    stale, witness = where.with_name("h.db-shm"), where.with_name("witness")
    stale.write_bytes(b"alice watched this " * 100)
    witness.hardlink_to(stale)
    key = secrets.token_bytes(32)
    encrypt_database(where, key)
    assert sorted(p.name for p in where.parent.iterdir()) == ["h.db", "witness"]
    assert b"alice" not in witness.read_bytes() and len(witness.read_bytes()) == 1900
    assert connect(where, key).encrypted


def test_a_copy_that_cannot_be_written_is_a_history_error_naming_the_file_only(where):
    plain = _plain_history(where)
    where.with_name("h.db.encrypting").mkdir()  # in the way of the copy, and no file to remove
    with pytest.raises(HistoryError, match=r"^could not write the encrypted copy of h.db beside it \(Is a directory\); "
                                           r"the plain file is unchanged$") as refused:
        encrypt_database(where, secrets.token_bytes(32))
    assert FOLDER not in str(refused.value)
    assert where.read_bytes() == plain and where.with_name("h.db.encrypting").is_dir()


WRITER = """
import sys, time
from pathlib import Path
from edgerec.errors import EdgerecError
from edgerec.runtime.history import HistoryStore
path, stop = sys.argv[1], Path(sys.argv[2])
i = 0
while not stop.exists():
    i += 1
    try:
        store = HistoryStore(path, timeout=0.05)
        try:
            store.record("u", f"w{i}", "play")
        finally:
            store.close()
        print(f"stored w{i}", flush=True)
    except EdgerecError as exc:
        print(f"refused {type(exc).__name__}", flush=True)
    time.sleep(0.005)
"""


def test_an_app_writing_while_the_history_is_encrypted_loses_no_event(where, monkeypatch):
    """The exclusive lock was let go before the plain file was shredded and the encrypted copy renamed into
    place: an app that opened the plain file in that gap stored events that were then shredded (lost without
    a word). The gap is widened here (the shred waits); every event the app was told was stored must be in
    the encrypted history, and an app kept out is told so (HistoryError), never left writing into nowhere."""
    from edgerec.runtime import secure_db

    _plain_history(where)
    stop, lines = where.with_name("stop"), []
    app = subprocess.Popen([sys.executable, "-c", WRITER, str(where), str(stop)], stdout=subprocess.PIPE, text=True)
    reader = threading.Thread(target=lambda: lines.extend(app.stdout), daemon=True)
    reader.start()
    real_shred = secure_db._shred_file
    monkeypatch.setattr(secure_db, "_shred_file", lambda path: time.sleep(0.3) or real_shred(path))
    key, done = secrets.token_bytes(32), None
    try:
        deadline = time.monotonic() + 60
        while not any(line.startswith("stored") for line in lines):  # the app is writing
            assert time.monotonic() < deadline and app.poll() is None
            time.sleep(0.01)
        while done is None and time.monotonic() < deadline:
            try:
                done = encrypt_database(where, key)
            except HistoryError as exc:  # the app held the file at that moment: again
                assert "is open in another connection" in str(exc)
                time.sleep(0.002)
        time.sleep(0.3)  # the app goes on: now it is kept out of the encrypted file
    finally:
        stop.touch()
        app.wait(timeout=60)
        reader.join(timeout=10)
    assert done and app.returncode == 0
    stored = {line.split()[1] for line in lines if line.startswith("stored")}
    assert stored and {line.strip() for line in lines} - {f"stored {w}" for w in stored} <= {"refused HistoryError"}
    store = HistoryStore(where, key=key)
    kept = {e.item for e in store.events("u")}
    store.close()
    assert stored <= kept, sorted(stored - kept)


def test_an_app_opening_the_encrypted_history_at_once_keeps_its_writes(where, monkeypatch):
    """The plain file's connection now closes after the rename: nothing of the plain file may be left by the
    history's name (a -wal, or a journal of plain pages: DELETE mode left one) and the first app's -wal is
    its own (a second app reads its events before it closes)."""
    from edgerec.runtime import secure_db

    _plain_history(where)
    key, real_replace, apps, beside = secrets.token_bytes(32), secure_db.os.replace, [], []

    def replace_then_an_app_writes(src, dst):
        real_replace(src, dst)
        if str(dst) == str(where):
            beside.append(sorted(p.name for p in where.parent.iterdir()))
            app = HistoryStore(where, key=key, timeout=0.5)
            app.record("u", "during", "play")
            apps.append(app)

    monkeypatch.setattr(secure_db.os, "replace", replace_then_an_app_writes)
    encrypt_database(where, key)
    monkeypatch.undo()
    [app] = apps
    app.record("u", "after", "play")
    other = HistoryStore(where, key=key)  # a second app reads what the first wrote, from the same -wal
    assert [e.item for e in other.events("u")] == ["i0", "i1", "i2", "during", "after"]
    other.close()
    app.close()
    assert beside == [["h.db"]]  # no -wal or journal of the plain file (plain pages) beside the encrypted one
    store = HistoryStore(where, key=key)
    assert [e.item for e in store.events("u")] == ["i0", "i1", "i2", "during", "after"]
    store.close()


def test_a_rename_that_fails_leaves_the_plain_history_and_no_copy(where, monkeypatch):
    import errno

    from edgerec.runtime import secure_db

    _plain_history(where)  # its bytes change (out of WAL mode), not its rows

    def refused(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(secure_db.os, "replace", refused)
    with pytest.raises(HistoryError) as failed:
        encrypt_database(where, secrets.token_bytes(32))
    monkeypatch.undo()
    assert str(failed.value) == ("could not put the encrypted copy of h.db in place (Permission denied); the plain "
                                 "file is unchanged")
    assert sorted(p.name for p in where.parent.iterdir()) == ["h.db"]
    store = HistoryStore(where)  # still the plain history, every event in it
    assert [e.item for e in store.events("u")] == ["i0", "i1", "i2"]
    store.close()


def test_plain_bytes_that_cannot_be_overwritten_are_told_after_the_copy_is_in_place(where, monkeypatch):
    import errno

    from edgerec.runtime import secure_db

    _plain_history(where)
    real = secure_db._overwrite

    def full(f):
        if f.name == str(where):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f)

    monkeypatch.setattr(secure_db, "_overwrite", full)
    key = secrets.token_bytes(32)
    with pytest.raises(HistoryError) as failed:
        encrypt_database(where, key)
    assert str(failed.value) == ("h.db is encrypted, but its old plain bytes could not be overwritten (No space left "
                                 "on device); flash storage may keep them until the space is reused")
    assert not is_plain(where) and sorted(p.name for p in where.parent.iterdir()) == ["h.db"]
    store = HistoryStore(where, key=key)
    assert [e.item for e in store.events("u")] == ["i0", "i1", "i2"]
    store.close()


def test_leaving_wal_mode_that_fails_leaves_the_plain_history_and_no_copy(where, monkeypatch):
    from edgerec.runtime import secure_db

    plain = _plain_history(where)
    real_exclusive = secure_db._exclusive

    class NoMemoryJournal:
        def __init__(self, db, driver):
            self.db, self.driver = db, driver

        def execute(self, sql, *args):
            if sql.upper().startswith("PRAGMA JOURNAL_MODE"):  # SQL is case-blind, so is this
                raise self.driver.OperationalError("disk I/O error")
            return self.db.execute(sql, *args)

        def close(self):
            self.db.close()

    monkeypatch.setattr(secure_db, "_exclusive", lambda driver, path: NoMemoryJournal(real_exclusive(driver, path),
                                                                                       driver))
    with pytest.raises(HistoryError) as failed:
        encrypt_database(where, secrets.token_bytes(32))
    monkeypatch.undo()
    assert str(failed.value) == "could not encrypt h.db (disk I/O error); the plain file is unchanged"
    assert where.read_bytes() == plain and not where.with_name("h.db.encrypting").exists()


def test_a_file_gone_before_its_shred_is_passed_over(tmp_path, monkeypatch):
    from pathlib import Path

    from edgerec.runtime import secure_db

    gone = tmp_path / "h.db-shm"
    monkeypatch.setattr(Path, "is_file", lambda self: True)  # it was there when asked, gone when opened
    secure_db._shred_file(gone)
    assert not gone.exists()


def test_an_empty_wal_left_by_a_crash_beside_a_rollback_journal_history_is_not_left_beside_the_encrypted_one(where):
    """SQLite leaves an empty -wal where it finds one beside a file in rollback-journal mode; its name would
    then stand beside the encrypted history as if it were that file's log."""
    _plain_history(where)
    with closing(sqlite3.connect(where)) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    where.with_name("h.db-wal").write_bytes(b"")
    key = secrets.token_bytes(32)
    encrypt_database(where, key)
    assert sorted(p.name for p in where.parent.iterdir()) == ["h.db"]
    store = HistoryStore(where, key=key)
    assert [e.item for e in store.events("u")] == ["i0", "i1", "i2"]
    store.close()


def test_a_wrong_key_prints_nothing_of_sqlcipher_s_own(where, capfd):
    """SQLCipher logged "hmac check failed for pgno=1" and two more lines to stderr before our refusal."""
    HistoryStore(where, key=secrets.token_bytes(32)).close()
    capfd.readouterr()
    with pytest.raises(HistoryError, match="wrong key"):
        connect(where, secrets.token_bytes(32))
    assert capfd.readouterr().err == ""
