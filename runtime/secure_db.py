"""Opening the history database, plain or encrypted at rest (SQLCipher), and moving a plain one to encrypted.

Encryption is opt-in: a raw 32-byte key, passed to SQLCipher as `x'<hex>'` so no
passphrase derivation runs on the hot path. The key never reaches a log or an
error message. SQLCipher comes from the optional `sqlcipher3` package (the
`crypto` extra); asking for encryption without it fails, it never falls back to
plaintext. Destroying the key makes the file unreadable (crypto-shredding).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path

from edgerec.errors import ConfigError, HistoryError
from edgerec.runtime import checks
from edgerec.runtime.history_care import (
    SQLITE_HEADER,
    check_database,
    check_writable,
    error_kind,
    file_uri,
    new_file,
    open_error,
    read_only_uri,
)

KEY_BYTES = 32
INSTALL_HINT = "install the encryption extra: pip install 'edgerec[crypto]'"


@dataclass
class Connection:
    """An open database and the exception classes of the driver that opened it (sqlite3 or sqlcipher3)."""

    db: object
    errors: tuple[type[BaseException], ...]  # every database error of the driver
    busy: tuple[type[BaseException], ...]  # "locked" / "busy" errors
    encrypted: bool


def check_key(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
        raise ConfigError(f"a history key is {KEY_BYTES} raw bytes (got "
                          f"{len(key) if isinstance(key, (bytes, bytearray)) else type(key).__name__}); "
                          "take it from the OS keystore, or make one with secrets.token_bytes(32)")
    return bytes(key)


def _cipher_module():
    try:
        from sqlcipher3 import dbapi2
    except ImportError:
        raise HistoryError(f"an encrypted history needs SQLCipher, which is not installed; {INSTALL_HINT}. "
                           "Nothing was written.") from None
    return dbapi2


def _key_literal(key: bytes) -> str:
    return f"\"x'{check_key(key).hex()}'\""  # hex of validated bytes: nothing else can reach the SQL


def is_plain(path: str | Path) -> bool:
    """True for an existing, unencrypted SQLite file (its header is readable)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb") as f:
        return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER


def connect(path: str | Path, key: bytes | None = None, timeout: float = 5.0) -> Connection:
    """Open `path` (":memory:" allowed); with `key`, through SQLCipher, checking the key before any write."""
    name, shown = str(path), checks.file_name(path)  # messages name the file, never the folders above it
    if key is None:
        if name != ":memory:" and Path(name).is_file() and Path(name).stat().st_size and not is_plain(name):
            raise HistoryError(f"history database {shown} cannot be used without a key: it is encrypted, or not a "
                               "database. Open it with its key (Recommender.open(..., key=...) or --key-file); "
                               "if it is corrupt, move it away and a new one will be created")
        db = sqlite3.connect(file_uri(name), timeout=timeout, check_same_thread=False, isolation_level=None, uri=True)
        return Connection(db, (sqlite3.DatabaseError,), (sqlite3.OperationalError,), False)
    key_sql = _key_literal(key)
    driver = _cipher_module()
    if name != ":memory:" and is_plain(name):
        raise HistoryError(f"history database {shown} is not encrypted; encrypt it first with "
                           "edgerec.runtime.secure_db.encrypt_database (or `edgerec history encrypt`)")
    db = driver.connect(file_uri(name), timeout=timeout, check_same_thread=False, isolation_level=None, uri=True)
    _unlock(db, driver, key_sql, shown, f"history database {shown} cannot be decrypted: wrong key, or the file "
                                        "was altered. Nothing was changed; open it with the key it was created with")
    return Connection(db, (driver.DatabaseError, sqlite3.DatabaseError), (driver.OperationalError,), True)


def _unlock(db, driver, key_sql: str, shown: str, refusal: str) -> None:
    """Give an SQLCipher connection its key and read page 1, which checks the key; else close it and refuse.
    Only "file is not a database" (page 1 fails its HMAC) or a damaged page 1 means a wrong key or an altered
    file: a lock held by another process, or a full or failing disk, is said as such (the key may be right)."""
    try:
        db.execute("PRAGMA cipher_log_level = NONE")  # its own lines on stderr ("hmac check failed") came before ours
        db.execute(f"PRAGMA key = {key_sql}")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except driver.DatabaseError as exc:
        db.close()
        if error_kind(exc) in ("notadb", "corrupt"):
            raise HistoryError(refusal) from None
        raise open_error(exc, shown, (), encrypted=False) from None  # locked, full or failing disk, or other


def open_read_only(path: str | Path, key: bytes):
    """A read-only connection to an encrypted history, for recovery, and the errors its reads raise."""
    driver = _cipher_module()
    if is_plain(path):  # else SQLCipher's key check blamed a wrong key or a damaged first page
        raise HistoryError(f"history database {checks.file_name(path)} is not encrypted; recover it without a key")
    return _Reopening(driver, path, key), (driver.DatabaseError, sqlite3.DatabaseError)


class _Reopening:
    """An SQLCipher connection that starts afresh after a failed read: after a page fails its HMAC, SQLCipher
    fails every later read of the connection too (its "deferred error"), so recovery stopped at the first
    damaged page. A raw key (x'..') needs no key derivation, so opening again costs about a millisecond."""

    def __init__(self, driver, path, key: bytes):
        self.driver, self.path, self.key, self.db = driver, path, key, None
        self._open()

    def _open(self) -> None:
        if self.db is not None:
            self.db.close()
        self.db = self.driver.connect(read_only_uri(self.path), uri=True, isolation_level=None)
        shown = checks.file_name(self.path)
        _unlock(self.db, self.driver, _key_literal(self.key), shown, f"history database {shown} cannot be "
                "decrypted: wrong key, or its first page is damaged; nothing can be recovered without it")

    def execute(self, sql: str, params=()):
        try:
            return _Rows(self.db.execute(sql, params).fetchall())
        except self.driver.DatabaseError:
            self._open()
            raise

    def close(self) -> None:
        self.db.close()


class _Rows(list):
    """Rows already fetched, read as a cursor's."""

    def fetchall(self) -> list:
        return list(self)

    def fetchone(self):
        return self[0] if self else None


def verify_pages(db) -> list[str]:
    """Authenticate every page of an open encrypted database (SQLCipher's per-page HMAC).

    Returns the problems found ([] when every page is intact); a damaged page otherwise
    surfaces only when a query reads it."""
    try:
        rows = db.execute("PRAGMA cipher_integrity_check").fetchall()
    except Exception as exc:  # the driver's own DatabaseError class  # noqa: BLE001
        return [str(exc)]
    return [str(r[0]) for r in rows]


def encrypt_database(path: str | Path, key: bytes) -> int:
    """Rewrite the plain database at `path` encrypted with `key`, in place; returns the pages written.

    The encrypted copy is written beside it with sqlcipher_export, checked (it opens with the
    key and holds as many rows as the original), and only then replaces the original, whose
    bytes are overwritten before it is removed. On any failure the original is left as it was and the
    copy removed. A history another connection has open (an app) is refused: its writes would be lost.
    """
    path = Path(checks.path(path, "the history to encrypt"))
    key_sql = _key_literal(key)
    driver = _cipher_module()
    if not is_plain(path):
        raise HistoryError(f"{checks.file_name(path)} is not a plain SQLite history (already encrypted, or missing)")
    check_writable(path)  # the file is replaced and its folder takes the encrypted copy: refused before any write
    name = checks.file_name(path)
    try:
        with closing(sqlite3.connect(read_only_uri(path), uri=True)) as plain:
            check_database(plain, path)  # another app's database, or a damaged one, is left as it is
    except sqlite3.DatabaseError as exc:  # a header followed by garbage: SQLite's error, not a traceback
        raise HistoryError(f"history database {name} is damaged ({exc}) and was not encrypted; recover its readable "
                           "events into a new file with `edgerec history recover`, then encrypt that") from None
    _exclusive(sqlite3, path).close()  # sqlite3 and SQLCipher are two libraries: their locks in one process
    src = _exclusive(driver, path)      # do not see each other, so each looks for the other's connections
    tmp = path.with_name(path.name + ".encrypting")
    try:
        try:
            tmp.unlink(missing_ok=True)
            new_file(tmp, path.stat().st_mode & 0o777)  # the encrypted file keeps the plain file's mode
        except OSError as exc:  # its text would name the folders above the file
            raise HistoryError(f"could not write the encrypted copy of {name} beside it ({exc.strerror}); the "
                               "plain file is unchanged") from None
        counts = _export(src, driver, tmp, key_sql, name)
        pages = _check_copy(tmp, key, counts, name)
        _swap(src, driver, path, tmp, name)
    except BaseException:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)  # no second copy of the history is left behind, encrypted or not
        raise
    finally:
        src.close()
    return pages


def _swap(src, driver, path: Path, tmp: Path, name: str) -> None:
    """Put the encrypted copy in the plain file's place and shred the plain bytes, all under src's exclusive
    lock: an app let in before the rename would write events that the shred then destroys. Out of WAL first
    (into a journal kept in memory): the -wal is checkpointed and closed under the lock, and no journal of
    plain pages is left beside the encrypted file, where its next opener would find it."""
    try:
        src.execute("PRAGMA journal_mode=MEMORY")
    except driver.DatabaseError as exc:
        raise HistoryError(f"could not encrypt {name} ({exc}); the plain file is unchanged") from None
    replaced = False
    try:
        for suffix in ("-wal", "-shm"):  # one left by an earlier crash beside a rollback-journal file
            _shred_file(path.with_name(path.name + suffix))
        with path.open("r+b") as plain:  # the plain bytes, reached after the rename through this handle
            os.replace(tmp, path)
            replaced = True
            _overwrite(plain)
        # closing `plain` dropped this process's locks on the old file (POSIX): it holds only random bytes now
    except OSError as exc:
        if replaced:
            raise HistoryError(f"{name} is encrypted, but its old plain bytes could not be overwritten "
                               f"({exc.strerror}); flash storage may keep them until the space is reused") from None
        raise HistoryError(f"could not put the encrypted copy of {name} in place ({exc.strerror}); the plain "
                           "file is unchanged") from None


def _exclusive(driver, path: Path):
    """A connection of `driver` to the plain history that keeps every other connection out until it closes:
    one still open (an app) would otherwise write on into the replaced file, and its events would be lost."""
    src = driver.connect(file_uri(path), timeout=0, isolation_level=None, uri=True)
    try:
        src.execute("PRAGMA locking_mode=EXCLUSIVE")  # the lock the next write takes is kept until close
        src.execute("BEGIN EXCLUSIVE")
        src.execute("COMMIT")
    except driver.DatabaseError:
        src.close()
        raise HistoryError(f"{checks.file_name(path)} is open in another connection (an app, or `edgerec history "
                           "show`); close it, then encrypt again. Nothing was changed") from None
    return src


def _export(src, driver, tmp: Path, key_sql: str, name: str) -> dict[str, int]:
    """Copy the plain database into `tmp` encrypted; returns its row counts per table."""
    try:
        src.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        counts = _row_counts(src)
        src.execute(f"ATTACH DATABASE ? AS encrypted KEY {key_sql}", (file_uri(tmp),))
        src.execute("SELECT sqlcipher_export('encrypted')")
        version = src.execute("PRAGMA user_version").fetchone()[0]
        src.execute(f"PRAGMA encrypted.user_version = {int(version)}")
        src.execute("DETACH DATABASE encrypted")
    except driver.DatabaseError as exc:
        raise HistoryError(f"could not encrypt {name} ({exc}); the plain file is unchanged") from None
    return counts


def _check_copy(tmp: Path, key: bytes, counts: dict[str, int], name: str) -> int:
    """The encrypted copy opens with the key and holds every row; returns its page count."""
    check = connect(tmp, key)
    try:
        if _row_counts(check.db) != counts:
            raise HistoryError(f"the encrypted copy of {name} does not hold every row; the plain file is unchanged")
        return int(check.db.execute("PRAGMA page_count").fetchone()[0])
    finally:
        check.db.close()


def _row_counts(db) -> dict[str, int]:
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                       "AND name NOT LIKE 'sqlite_%'")]
    return {t: int(db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}


def _shred_file(path: Path) -> None:
    """Overwrite a file with random bytes, then remove it (best effort: flash storage may keep old blocks)."""
    if not path.is_file():
        return
    with suppress(FileNotFoundError):  # gone meanwhile: nothing left to overwrite
        with path.open("r+b") as f:
            _overwrite(f)
        path.unlink()


def _overwrite(f) -> None:
    """Random bytes over the whole of an open file, on disk before this returns."""
    size = os.fstat(f.fileno()).st_size
    f.seek(0)
    f.write(secrets.token_bytes(size))
    f.flush()
    os.fsync(f.fileno())
