"""Care of the history file: refusing foreign or damaged files, erasure and backup (recovery:
history_recover.py).

Erasure guarantee (forget() and retention pruning). Deleted rows are overwritten
with zeros in their pages (`secure_delete`), and the write-ahead log, which
still holds the pages as they were before the delete, is checkpointed into the
database and truncated to 0 bytes. That truncation is only possible when no
other connection holds a read snapshot of the file (an app or `edgerec history
show` in the middle of a read): such a reader may legitimately still see the
rows. Erasure then waits up to `wait` seconds for it; if the reader is still
there, a HistoryError says so, the deleted rows stay invisible to new reads
but their bytes are not yet erased, and calling forget() (or `erase_pending`)
again once the reader is closed completes the erasure. Success is never
reported while the rows are readable in `history.db` or `history.db-wal`.
The transaction that deletes the rows also sets ERASE_FLAG in the meta table,
dropped once they are erased: a process killed in between (or a reader that
outlasted it) leaves the flag, and the next open completes the erasure.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

from edgerec.errors import HistoryError
from edgerec.runtime import atomic, checks

SQLITE_HEADER = b"SQLite format 3\x00"
APPLICATION_ID = 0x65647265  # "edre": marks a file as an edgerec history
OWN_TABLES = {"meta", "events", "preferences", "added_items", "privacy_ledger", "sqlite_sequence"}
ERASE_FLAG = "erase_pending"  # meta key: rows were deleted whose bytes may still be in the files
PROFILE_IDS = "profile_ids"  # meta key of a history of keyed-hash profiles (pseudonyms.MARKER)
# meta key 'items_version': moved by every added-item row written, in its transaction, and the row takes
# its new value as its change number (history_schema.py v4, by triggers): other connections' catalogs see
# their change by it and read only the rows numbered above what they applied (catalog_sync.py).


def mark_erasure(db) -> None:
    """Inside the transaction that deletes rows: until they are erased, every open erases again."""
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, '1')", (ERASE_FLAG,))


# SQLite's primary result codes (an extended code's low byte) that a message tells apart
_KINDS = {5: "locked", 6: "locked", 10: "io", 11: "corrupt", 13: "full", 26: "notadb"}
_TEXTS = (("locked", "is locked"), ("full", "disk is full"), ("io", "I/O error"), ("notadb", "not a database"),
          ("corrupt", "malformed"))


def error_kind(exc: BaseException) -> str:
    """"locked", "full", "io", "corrupt", "notadb" (SQLCipher: wrong key or altered file) or "" for an error of
    sqlite3 or sqlcipher3: by its SQLite code, else (an error made without one) by its text."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _KINDS.get(code & 0xFF, "")
    return next((kind for kind, words in _TEXTS if words in str(exc)), "")


def database_errors(db) -> tuple[type[BaseException], ...]:
    """Every DatabaseError class `db` can raise: sqlite3's and its own driver's (sqlcipher3's classes are not
    sqlite3's, so an `except sqlite3.DatabaseError` let them escape as raw tracebacks)."""
    own = getattr(sys.modules.get(type(db).__module__), "DatabaseError", None)
    if isinstance(own, type) and issubclass(own, Exception) and own is not sqlite3.DatabaseError:
        return (sqlite3.DatabaseError, own)
    return (sqlite3.DatabaseError,)


def open_error(exc: BaseException, file: str, busy: tuple, encrypted: bool) -> HistoryError:
    """What a failed open of a history says: locked by another holder, a full or failing disk, altered
    (encrypted), or unusable. The error's SQLite code decides (`busy`, kept for callers, also holds
    full-disk and I/O errors: OperationalError)."""
    kind = error_kind(exc)
    if kind == "locked":  # not damage: another holder
        return HistoryError(f"history database {file} is locked by another process ({exc}); close the other app (or "
                            "wait for `edgerec history encrypt` to finish) and try again")
    if kind in ("full", "io"):  # the storage, not the file (a full disk reads as an I/O error at open)
        return HistoryError(f"history database {file} could not be opened: reading or writing its files failed "
                            f"({exc}), as when the storage is full or failing. Free space on the device (or check "
                            "the storage), then open it again")
    if encrypted:
        return HistoryError(f"history database {file} failed its integrity check ({exc}): a page was damaged or "
                            "altered. Nothing was changed; restore the file from a backup")
    return HistoryError(f"history database {file} cannot be used ({exc}); if it is damaged, recover its readable "
                        "events into a new file with `edgerec history recover`")


def check_file(path: Path, encrypted: bool = False, writable: bool = True) -> None:
    """Refuse, before SQLite touches it, a file that cannot be an edgerec history (an encrypted
    file has no readable header: only its size and kind are checked), or, with `writable`, that
    this app cannot write."""
    if str(path) == ":memory:":
        return
    try:  # a name too long for the file system raises here, and OSError's text would show the folders above it
        dangling = path.is_symlink() and not path.exists()
        exists = path.exists()
        in_a_file = not exists and any(p.exists() and not p.is_dir() for p in path.absolute().parents)
    except OSError as exc:
        raise HistoryError(f"history path {checks.file_name(path)} cannot be used ({exc.strerror}); pass a shorter "
                           "path to the history file") from None
    if dangling:  # SQLite would create its target
        raise HistoryError(f"history path {checks.file_name(path)} is a symbolic link to a file that does not exist; pass the path "
                           "of the history file itself (a new one is created there, readable by its owner only)")
    if in_a_file:
        raise HistoryError(f"history path {checks.file_name(path)} lies under a file, not a folder (a folder of its path is a "
                           "file); pass a path in a folder")
    if not exists:
        return
    if not path.is_file():
        raise HistoryError(f"history path {checks.file_name(path)} is not a regular file; pass the path of a history database")
    if writable:
        check_writable(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise HistoryError(f"history file {checks.file_name(path)} cannot be read ({exc.strerror}); give the app's user "
                           "read access to it") from None
    if not head:
        raise HistoryError(f"history file {checks.file_name(path)} is empty (0 bytes), not an edgerec history; delete it to start "
                           "a new history, or pass the right file")
    if head != SQLITE_HEADER and not encrypted:
        raise HistoryError(f"history file {checks.file_name(path)} cannot be used (it is not a plain SQLite database; if it is an "
                           "encrypted history, pass its key: key= or --key-file); otherwise move it away and a new "
                           "one will be created, or pass the right file")


def check_writable(path: Path) -> None:
    """An existing history must be readable and writable, and so must its folder (SQLite keeps its write-ahead
    log and index beside the file, and even reads need them): else a HistoryError that says so, before SQLite
    reports 'attempt to write a readonly database' halfway (or, for a file it cannot read, a bare OS error)."""
    companions = [Path(f"{path}-wal"), Path(f"{path}-shm")]
    folder_ok = os.access(path.parent, os.W_OK | os.X_OK) or all(
        c.exists() and os.access(c, os.R_OK | os.W_OK) for c in companions)
    file_ok = os.access(path, os.R_OK | os.W_OK)
    if file_ok and folder_ok:
        return
    what = ("the file" if folder_ok else "the folder that holds it (SQLite writes its log there)" if file_ok
            else "the file and its folder")
    raise HistoryError(f"history database {checks.file_name(path)} is read-only for this app: {what} cannot be "
                       "written (or read); the runtime writes every event at once, so it opens no history it cannot "
                       "write. Give the app's user read and write access to the file and its folder, or copy the "
                       "file into a writable folder and open the copy. Nothing was read or changed")


def new_file(path: Path, mode: int = 0o600) -> None:
    """Create `path` empty with `mode` (an error if it exists). SQLite then writes into it, and the WAL
    and journal files it makes beside it copy that mode: a history and its copies are owner-only."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))


def create_private(path: Path, initialise) -> None:
    """Make a new history file that appears whole and readable by its owner only: `initialise(tmp)`
    builds it (returning its connection) in a mode-0600 file beside `path`, which is then linked to
    its name. A process killed on the way leaves no empty or half-made file at `path` (an empty
    one is refused at the next open), and if another process creates `path` first, its file wins."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.new")
    try:
        atomic.private_folders(path)
        new_file(tmp)
    except OSError as exc:
        raise HistoryError(f"cannot create the history database {checks.file_name(path)} ({exc.strerror}); pass a path in a "
                           "folder this app can write") from None
    try:
        initialise(tmp).close()
        link_new(tmp, path)  # if another process created `path` first, its file wins
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)


def link_new(tmp: Path, path: Path) -> bool:
    """`tmp`'s file also at `path` unless a file is there already (False): a finished file appears whole, and
    never replaces one another process made meanwhile."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links (FAT on a memory card)
        if path.exists():
            return False
        os.replace(tmp, path)
    return True


def schema_version(value, path: Path) -> int:
    """The meta table's schema version, or a HistoryError when it was altered into something else."""
    try:
        version = int(value)
    except (TypeError, ValueError):
        version = -1
    if version < 1:
        raise HistoryError(f"history database {checks.file_name(path)} has a damaged schema version ({str(value)[:20]!r}); recover "
                           "its readable events into a new file with `edgerec history recover`")
    return version


def context_of(raw) -> dict:
    """An event's stored context; text that is not a JSON object (altered outside edgerec) is returned
    as it is, under "unreadable", so an export still shows everything stored."""
    if not raw or raw == "{}":
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError, RecursionError):  # nesting deeper than the parser's stack, too
        value = None
    return value if isinstance(value, dict) else {"unreadable": raw if isinstance(raw, str) else repr(raw)}


def upsert_items(db, rows) -> None:
    """Save added items (item, space, vector, meta, removed), each updated where it is: INSERT OR REPLACE gave
    an updated row a new rowid, so the item moved behind the others when read back (by rowid) and ties swapped."""
    for item, space, vector, meta, removed in rows:
        values = (vector, json.dumps(meta, sort_keys=True), int(removed), item, space)
        if not db.execute("UPDATE added_items SET vector = ?, meta = ?, removed = ? WHERE item = ? AND space = ?",
                          values).rowcount:
            db.execute("INSERT INTO added_items (vector, meta, removed, item, space) VALUES (?, ?, ?, ?, ?)", values)


def added_items_query(space: str, since: int | None) -> tuple[str, tuple]:
    """The read of a space's added items in the order saved: every row, or (since) those numbered above `since`,
    found through the index of change numbers. '+rowid' keeps SQLite from scanning every row in rowid order
    (reading each row's vector and metadata on the way to its change number) rather than sort the few."""
    if since is None:
        return "SELECT item, vector, meta, removed FROM added_items WHERE space = ? ORDER BY rowid", (space,)
    return ("SELECT item, vector, meta, removed FROM added_items WHERE space = ? AND change > ? ORDER BY +rowid",
            (space, since))


def readable_items(rows, dim: int | None) -> list[tuple[str, bytes | None, dict, bool]]:
    """Added items (item, vector, meta, removed) from their rows, leaving out a row altered outside
    edgerec (no id, metadata not a JSON object, a vector not `dim` finite float32 values, not all zero):
    one such row must not keep the app from opening (the row stays in the file)."""
    out = []
    for item, vector, meta, removed in rows:
        try:
            meta = json.loads(meta)
        except (TypeError, ValueError, RecursionError):
            meta = None
        if not isinstance(item, str) or not item:
            continue
        if removed:  # a removal needs only the id: a damaged one must not bring the item back
            out.append((item, vector, meta if isinstance(meta, dict) else {}, True))
            continue
        if not isinstance(meta, dict):
            continue
        if dim is not None:  # what the catalog will read (dim None: the store's own tests)
            if not isinstance(vector, bytes) or len(vector) != 4 * dim:
                continue
            values = np.frombuffer(vector, np.float32)
            if not (np.all(np.isfinite(values)) and np.any(values)):
                continue
        out.append((item, vector, meta, bool(removed)))
    return out


def file_uri(path: str | Path) -> str:
    """An SQLite URI naming exactly the file `path` (":memory:" as it is). Every connection names its file so:
    this SQLite reads any name that starts with "file:" as a URI, so "file:c.db" stored the events in c.db
    (created by the umask, readable by others) while edgerec checked and protected "file:c.db". The path
    is percent-encoded: raw, a '#', '?' or '%' in it ended the file name."""
    return str(path) if str(path) == ":memory:" else Path(path).absolute().as_uri()


def read_only_uri(path: Path) -> str:
    """An SQLite URI that opens `path` read-only (file_uri)."""
    return f"{file_uri(path)}?mode=ro"


def check_database(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a foreign SQLite database and a damaged one, before anything is written to it."""
    app = int(db.execute("PRAGMA application_id").fetchone()[0])
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if app not in (0, APPLICATION_ID) or (tables and not {"meta", "events"} <= tables) or tables - OWN_TABLES:
        raise HistoryError(f"{checks.file_name(path)} is an SQLite database of another application, not an edgerec history; "
                           "pass a new file name for the history")
    problems = [r[0] for r in db.execute("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        raise HistoryError(f"history database {checks.file_name(path)} is damaged ({'; '.join(problems)}); recover the readable "
                           "events into a new file with `edgerec history recover` (HistoryStore.recover)")


def checkpoint(db: sqlite3.Connection, path: Path, wait: float) -> None:
    """Copy the WAL into the database and truncate it to 0 bytes, waiting up to `wait` s for readers."""
    deadline = time.monotonic() + wait
    while True:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return
        if time.monotonic() >= deadline:
            raise HistoryError(
                f"another connection holds a read snapshot of {checks.file_name(path)} (an open app or `edgerec history show`), "
                "so the deleted rows are hidden but not yet erased from its write-ahead log; close the other "
                "reader, then forget the user again (forget() or `edgerec history forget`) or open the history "
                "again: either completes the erasure")
        time.sleep(0.05)


def erase(db: sqlite3.Connection, path: Path, wait: float, vacuum: bool) -> None:
    """Make rows deleted by the last transactions unreadable in the files (see the module docstring)."""
    if str(path) == ":memory:":
        return
    try:
        checkpoint(db, path, wait)
        if vacuum:  # rebuilds the file: no free page, no slack space keeps an old byte
            db.execute("VACUUM")
            checkpoint(db, path, wait)
    except database_errors(db) as exc:  # sqlcipher3's too: raw, one escaped record() after its event was stored
        first = "free space on the device, then " if error_kind(exc) == "full" else ""
        raise HistoryError(f"could not erase deleted rows from {checks.file_name(path)} ({exc}); {first}forget the "
                           "user again (forget() or `edgerec history forget`) or open the history again") from None


def backup(db: sqlite3.Connection, out: str | Path) -> Path:
    """A consistent copy of the open database (SQLite's online backup: one read snapshot), made in a private,
    locked temporary folder beside `out` (atomic.Temporary) and linked to its name, so `out` is complete or
    absent; a killed backup's folder, its journal with it, is removed by the next writer of `out`."""
    out = Path(checks.path(out, "the backup's path"))
    if out.exists():
        raise HistoryError(f"{checks.file_name(out)} exists; choose a new file for the backup")
    try:  # its own temporary: two backups at once each deleted the other's, and both failed
        with atomic.Temporary(out, ".tmp", folder=True, parents=False) as tmp:  # removed if the copy fails
            copy = tmp.path / out.name
            new_file(copy)  # a copy of personal data: owner only
            target = sqlite3.connect(file_uri(copy), uri=True)
            try:
                db.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")  # a self-contained single file
            finally:
                target.close()
            published = link_new(copy, out)
            tmp.discard()  # the copy stays under its name (or another backup's does)
    except (sqlite3.DatabaseError, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc  # not the folders above the file
        raise HistoryError(f"could not back up the history to {checks.file_name(out)} ({why}); write the backup in a "
                           "folder this app can write, with room for it") from None
    if not published:
        raise HistoryError(f"{checks.file_name(out)} exists (another backup finished first); choose a new file for "
                           "the backup")
    atomic.sync_folder(out.parent)
    return out
