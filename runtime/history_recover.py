"""Recovery of a damaged history: every readable event, preference, added item and privacy-ledger entry
copied into a new file (plain, or encrypted with the history's key)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from edgerec.errors import HistoryError
from edgerec.runtime import checks
from edgerec.runtime.atomic import Temporary, private_folders, sync_folder
from edgerec.runtime.history_care import (
    APPLICATION_ID,
    OWN_TABLES,
    check_file,
    checkpoint,
    link_new,
    read_only_uri,
)
from edgerec.runtime.retention import CLOCK_KEY, PRUNE_KEY, RETENTION_KEY

RECOVER_CHUNK = 256  # rows read per query while salvaging a damaged file


def readable_rows(db: sqlite3.Connection, table: str, columns: str, key: str | None,
                  most: int, errors: tuple = (sqlite3.DatabaseError,)) -> tuple[list, int]:
    """Every row of `table` that can still be read, and how many reads failed. With an integer `key`,
    a failing range is retried row by row, so one damaged page costs only the rows on it; `most`
    bounds the ids probed when the file no longer says how many there are, and in any case the ids
    probed blind (past a part of the tree that cannot be read) without finding a row: a sequence
    altered to a huge number beyond an unreadable last page meant stepping towards it for ever."""
    try:
        return db.execute(f"SELECT {columns} FROM {table}").fetchall(), 0
    except errors:
        if key is None:
            return [], 1
    try:
        top = int(db.execute("SELECT seq FROM sqlite_sequence WHERE name=?", (table,)).fetchone()[0])
    except (*errors, TypeError, ValueError, OverflowError):  # no sequence, or one altered into text
        top = most
    rows, failed, start, dead = [], 0, 0, 0  # dead: ids probed blind since a chunk last gave rows
    while start is not None and start <= top:
        end, found = start + RECOVER_CHUNK - 1, len(rows)
        try:
            rows += db.execute(f"SELECT {columns} FROM {table} WHERE {key} BETWEEN ? AND ?", (start, end)).fetchall()
        except errors:
            for rowid in range(start, end + 1):
                try:
                    rows += db.execute(f"SELECT {columns} FROM {table} WHERE {key}=?", (rowid,)).fetchall()
                except errors:
                    failed += 1
        try:
            start = _next_key(db, table, key, end)
        except errors:  # that part of the tree is unreadable: the next chunk, unless `most` ids
            dead = 0 if len(rows) > found else dead + RECOVER_CHUNK  # in a row have given nothing
            start = end + 1 if dead < most else None
    return rows, failed


def _next_key(db: sqlite3.Connection, table: str, key: str, after: int) -> int | None:
    """The first stored key past `after`, found through the table's tree, so gaps cost one query (a
    sequence altered to a huge number no longer means probing every id below it); None when no key
    follows. DatabaseError when that part of the tree cannot be read."""
    found = db.execute(f"SELECT min({key}) FROM {table} WHERE {key} > ?", (after,)).fetchone()[0]
    return None if found is None else max(int(found), after + 1)


def recover(path: str | Path, out: str | Path, key: bytes | None = None) -> dict:
    """Copy every readable event, preference, added item and privacy-ledger entry of a damaged history into a
    new file (the ledger's failed reads become one entry of the whole budget: what was spent is not known).
    `key`: the history is encrypted (SQLCipher), and so is the new file, with the same key."""

    path = Path(checks.path(path, "the damaged history's path"))
    out = Path(checks.path(out, "the recovered history's path"))
    if not path.is_file():
        raise HistoryError(f"{checks.file_name(path)} does not exist; pass the damaged history file")
    check_file(path, encrypted=key is not None, writable=False)  # a read-only copy can be recovered from
    if out.exists():
        raise HistoryError(f"{checks.file_name(out)} exists; choose a new file for the recovered history")
    if os.access(path.parent, os.W_OK | os.X_OK):
        return _recover_from(path, out, key)
    # SQLite cannot open a write-ahead-log history in a folder it cannot write, not even read-only (it needs
    # its -shm file there): recover from a copy in a private temporary folder, removed at once
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="edgerec-recover-"))
    try:
        for part in (path, path.with_name(path.name + "-wal")):
            if part.exists():
                shutil.copyfile(part, folder / part.name)
        return _recover_from(folder / path.name, out, key)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _meta_rows(source: sqlite3.Connection, tables: set, errors) -> list[tuple[str, str]]:
    """The meta rows a copy keeps: the mark of keyed-hash profiles (pseudonyms.MARKER: without it the copy
    took plain names and any secret), the clock's high-water mark (without it a jump at the copy's first
    open could be believed), the automatic prune's count (retention.py) and the record of catalog changes
    carried across a bundle swap (catalog_carry.py: without it the copy carried them again)."""
    # imported here: pseudonyms imports the history, which imports this module
    from edgerec.runtime.catalog_carry import KEY as CARRIED
    from edgerec.runtime.pseudonyms import MARKER

    if "meta" not in tables:
        return []
    try:
        return source.execute("SELECT key, value FROM meta WHERE key IN (?, ?, ?, ?) OR key LIKE ?",
                              (MARKER, CLOCK_KEY, PRUNE_KEY, RETENTION_KEY, CARRIED + "%")).fetchall()
    except errors:  # a damaged meta page: the events are still worth saving (the copy's clock: retention.py)
        return []


def _recover_from(path: Path, out: Path, key: bytes | None) -> dict:
    from edgerec.runtime.history import HistoryStore

    if key is not None:
        from edgerec.runtime.secure_db import open_read_only  # here: secure_db imports this module

        source, errors = open_read_only(path, key)
    else:
        errors = (sqlite3.DatabaseError,)
        try:
            source = sqlite3.connect(read_only_uri(path), uri=True)
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{checks.file_name(path)} cannot be opened at all ({exc}); nothing can be recovered") from None
    report = {"events": 0, "preferences": 0, "added_items": 0, "unreadable": 0}
    parts = {"events": ("id, profile, item, event, value, ts, context", "id"),
             "preferences": ("profile, kind, value, ts", None),
             "added_items": ("item, space, vector, meta, removed", None)}
    salvaged, failures = {}, {}
    try:
        try:
            tables = {r[0] for r in source.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            ledger = {r[1] for r in source.execute("PRAGMA table_info(privacy_ledger)")}  # its clock: since 12/2026
            event_columns = {r[1] for r in source.execute("PRAGMA table_info(events)")}
            app = int(source.execute("PRAGMA application_id").fetchone()[0])
            meta = _meta_rows(source, tables, errors)
        except errors as exc:
            raise HistoryError(f"{checks.file_name(path)} is damaged beyond its table list ({exc}); nothing can be recovered") from None
        if "events" not in tables or tables - OWN_TABLES or app not in (0, APPLICATION_ID) \
                or not set(parts["events"][0].split(", ")) <= event_columns:  # an app's own "events" table
            raise HistoryError(f"{checks.file_name(path)} is not an edgerec history (no events table, or another application's "
                               "tables); pass the damaged history file")
        if "privacy_ledger" in tables:  # what the device already reported: its budget must outlive the file
            parts["privacy_ledger"] = ("id, ts, question, epsilon" + ", clock" * ("clock" in ledger)
                                       + ", key" * ("key" in ledger), "id")  # the rounds it took part in
        most = path.stat().st_size // 16  # no row takes fewer bytes than this
        for table, (columns, key_column) in parts.items():
            try:
                salvaged[table], failed = readable_rows(source, table, columns, key_column, most, errors)
            except errors:
                salvaged[table], failed = [], 1
            if table == "privacy_ledger":  # a row dated outside the calendar was altered: an unknown spending
                from edgerec.runtime.privacy_ledger import ledger_time

                names = columns.split(", ")
                clock = names.index("clock") if "clock" in names else None
                kept = [row for row in salvaged[table] if ledger_time(row[1])
                        and (clock is None or row[clock] is None or ledger_time(row[clock]))]
                failed += len(salvaged[table]) - len(kept)
                salvaged[table] = kept
            report["unreadable"] += failed
            failures[table] = failed
    finally:
        source.close()
    with _private_folder(out) as tmp:  # built beside --out, published only when complete
        built = tmp.path / out.name
        fresh = HistoryStore(built, key=key)
        try:
            if "privacy_ledger" in parts:
                from edgerec.runtime.privacy_ledger import PrivacyLedger

                PrivacyLedger(fresh)  # its table
            with fresh._transaction():
                for table, (columns, _) in parts.items():
                    marks = ", ".join("?" * len(columns.split(",")))
                    fresh.db.executemany(f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({marks})",
                                         salvaged[table])
                    report[table] = len(salvaged[table])
                fresh.db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta)
                if failures.get("privacy_ledger"):  # an unknown spending counts as the whole budget: reports wait
                    fresh.db.execute("INSERT INTO privacy_ledger (ts, question, epsilon) VALUES (?, ?, ?)",  # 30 d
                                     (time.time(), f"history recovered: {failures['privacy_ledger']} ledger reads "
                                      "failed", 1e6))
            checkpoint(fresh.db, built, 0.0)  # every page in the file itself: only the file is published
        finally:
            fresh.close()
        published = link_new(built, out)  # never over a file that appeared meanwhile (another recover's)
        tmp.discard()
    if not published:
        raise HistoryError(f"{checks.file_name(out)} exists (another recover finished first); choose a new file for "
                           "the recovered history")
    sync_folder(out.parent)
    return report


def _private_folder(out: Path) -> Temporary:
    """A private, locked temporary folder beside `out` (its folders made owner-only, as a new history's are): a
    killed recover leaves nothing at `out`, and its folder is removed by the next writer of `out`."""
    try:
        private_folders(out)
        return Temporary(out, ".tmp", folder=True, parents=False)
    except OSError as exc:
        raise HistoryError(f"cannot create the recovered history {checks.file_name(out)} ({exc.strerror}); pass a "
                           "path in a folder this app can write") from None
