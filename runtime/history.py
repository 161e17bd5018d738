"""The user's history, kept on the device in SQLite (WAL): durable, ordered, per profile, forgettable.

Every `record` is its own committed transaction (synchronous=FULL), so a
killed process loses nothing that was acknowledged. Several profiles share
one database (a family's set-top box). Retention bounds each profile by count
and age. `forget` deletes a profile with secure_delete on and truncates the
WAL, so its data is not left readable in free pages. The schema carries a
version and migrates older files forward.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgerec.errors import ConfigError, HistoryError
from edgerec.runtime.secure_db import connect
from edgerec.runtime.vocab import CONSUMED, DEVICE_EVENTS  # noqa: F401  (CONSUMED re-exported)

SCHEMA_VERSION = 2
EVENTS = DEVICE_EVENTS  # the names this module has always exported

# v1: events only. v2: context as JSON and a preferences table (onboarding choices).
MIGRATIONS = {
    1: [
        """CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, profile TEXT NOT NULL, item TEXT NOT NULL,
           event TEXT NOT NULL, value REAL, ts REAL NOT NULL)""",
        "CREATE INDEX events_by_profile ON events(profile, id)",
    ],
    2: [
        "ALTER TABLE events ADD COLUMN context TEXT",
        """CREATE TABLE preferences (profile TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
           ts REAL NOT NULL, PRIMARY KEY (profile, kind, value))""",
        """CREATE TABLE added_items (item TEXT PRIMARY KEY, space TEXT NOT NULL, vector BLOB, meta TEXT NOT NULL,
           removed INTEGER NOT NULL DEFAULT 0)""",
    ],
}


@dataclass
class Event:
    id: int
    profile: str
    item: str
    event: str
    value: float | None
    ts: float
    context: dict


@dataclass
class Retention:
    max_events: int = 10_000  # per profile; the oldest go first
    max_age_days: float = 730.0


class HistoryStore:
    """One SQLite file; safe to share between threads of one process (calls are serialised)."""

    def __init__(self, path: str | Path, retention: Retention | None = None, timeout: float = 5.0,
                 key: bytes | None = None):
        """key: 32 raw bytes to keep the file encrypted at rest (SQLCipher, see secure_db.py)."""
        self.path = Path(path)
        self.retention = retention or Retention()
        self._lock = threading.RLock()
        self._since_prune = 0
        self._writes = 0  # commits of this store not tied to one profile (retention, item cache)
        self._profile_writes: dict[str, int] = {}  # commits per profile
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = connect(self.path, key, timeout)
            self.db, self._errors, self._busy, self.encrypted = conn.db, conn.errors, conn.busy, conn.encrypted
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA secure_delete=ON")
            self._migrate()
        except (sqlite3.DatabaseError, *getattr(self, "_errors", ())) as exc:
            if getattr(self, "encrypted", False):
                raise HistoryError(f"history database {self.path} failed its integrity check ({exc}): a page was "
                                   "damaged or altered. Nothing was changed; restore the file from a backup") from None
            raise HistoryError(f"history database {self.path} cannot be used ({exc}); if it is corrupt, move it "
                               "away and a new one will be created (the old events are then lost)") from None

    # ------------------------------------------------------------ schema

    def version(self) -> int:
        exists = self.db.execute("SELECT name FROM sqlite_master WHERE name='meta'").fetchone()
        if not exists:
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        with self._transaction():
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            current = self.version()
            if current > SCHEMA_VERSION:
                raise HistoryError(f"history database {self.path} has schema version {current}, newer than this "
                                   f"runtime ({SCHEMA_VERSION}); update edgerec")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    self.db.execute(statement)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def generation(self, profile: str) -> tuple[int, int, int]:
        """A token that changes whenever what is stored for `profile` may have changed, by this
        store or by another connection to the same file (so derived data can be cached)."""
        with self._lock:
            try:
                external = int(self.db.execute("PRAGMA data_version").fetchone()[0])
            except self._errors as exc:
                raise HistoryError(f"could not read {self.path} ({exc})") from None
            return external, self._writes, self._profile_writes.get(profile, 0)

    @contextmanager
    def _transaction(self, profile: str | None = None) -> Iterator[None]:
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except self._busy as exc:
                raise HistoryError(f"history database {self.path} is locked by another process ({exc}); "
                                   "close the other app or try again") from None
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")
                if profile is None:
                    self._writes += 1
                else:
                    self._profile_writes[profile] = self._profile_writes.get(profile, 0) + 1

    # ------------------------------------------------------------ events

    def record(self, profile: str, item: str, event: str, value: float | None = None, ts: float | None = None,
               context: dict | None = None) -> int:
        """Append one event; returns its id once it is durably committed."""
        if event not in EVENTS:
            raise ConfigError(f"unknown event {event!r}; use one of {', '.join(EVENTS)}")
        if not profile or not item:
            raise ConfigError("record() needs a non-empty user and item")
        ts = time.time() if ts is None else float(ts)
        try:
            with self._transaction(profile):
                cursor = self.db.execute(
                    "INSERT INTO events (profile, item, event, value, ts, context) VALUES (?, ?, ?, ?, ?, ?)",
                    (profile, item, event, value, ts, json.dumps(context or {}, sort_keys=True)))
                event_id = int(cursor.lastrowid)
        except self._errors as exc:
            raise HistoryError(f"could not write to {self.path} ({exc}); the event was not recorded") from None
        self._since_prune += 1
        if self._since_prune >= 100:
            self.prune()
        return event_id

    def events(self, profile: str, limit: int | None = None) -> list[Event]:
        """A profile's events, oldest first (the newest `limit` when given)."""
        with self._lock:
            try:
                if limit is None:
                    rows = self.db.execute("SELECT id, profile, item, event, value, ts, context FROM events "
                                           "WHERE profile=? ORDER BY id", (profile,)).fetchall()
                else:
                    rows = self.db.execute("SELECT * FROM (SELECT id, profile, item, event, value, ts, context "
                                           "FROM events WHERE profile=? ORDER BY id DESC LIMIT ?) ORDER BY id",
                                           (profile, int(limit))).fetchall()
            except self._errors as exc:
                raise HistoryError(f"could not read {self.path} ({exc})") from None
        return [Event(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] and r[6] != "{}" else {})
                for r in rows]

    def item_events(self, profile: str, limit: int) -> list[tuple[str, str]]:
        """(item, event) of a profile's newest `limit` events, oldest first: all a request needs,
        without building full events."""
        with self._lock:
            try:
                rows = self.db.execute("SELECT item, event FROM events WHERE profile=? ORDER BY id DESC LIMIT ?",
                                       (profile, int(limit))).fetchall()
            except self._errors as exc:
                raise HistoryError(f"could not read {self.path} ({exc})") from None
        rows.reverse()
        return rows

    def items_since(self, ts: float, events: tuple[str, ...]) -> list[str]:
        """Items of the given events since `ts`, over every profile (what the device as a whole did)."""
        marks = ",".join("?" * len(events))
        with self._lock:
            return [r[0] for r in self.db.execute(f"SELECT item FROM events WHERE ts >= ? AND event IN ({marks}) "
                                                  "ORDER BY id", (float(ts), *events))]

    def profiles(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self.db.execute("SELECT DISTINCT profile FROM events ORDER BY profile")]

    def count(self, profile: str | None = None) -> int:
        with self._lock:
            if profile is None:
                return int(self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            return int(self.db.execute("SELECT COUNT(*) FROM events WHERE profile=?", (profile,)).fetchone()[0])

    def prune(self, now: float | None = None) -> int:
        """Apply retention; returns how many events were removed."""
        now = time.time() if now is None else now
        cutoff = now - self.retention.max_age_days * 86_400
        with self._transaction():
            removed = self.db.execute("DELETE FROM events WHERE ts < ?", (cutoff,)).rowcount
            removed += self.db.execute(
                """DELETE FROM events WHERE id IN (
                       SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY profile ORDER BY id DESC) AS n
                                       FROM events) WHERE n > ?)""", (self.retention.max_events,)).rowcount
        self._since_prune = 0
        return removed

    # ------------------------------------------------------------ preferences (onboarding)

    def set_preferences(self, profile: str, kind: str, values: list[str]) -> None:
        with self._transaction(profile):
            self.db.execute("DELETE FROM preferences WHERE profile=? AND kind=?", (profile, kind))
            self.db.executemany("INSERT INTO preferences VALUES (?, ?, ?, ?)",
                                [(profile, kind, v, time.time()) for v in values])

    def preferences(self, profile: str) -> dict[str, list[str]]:
        with self._lock:
            rows = self.db.execute("SELECT kind, value FROM preferences WHERE profile=? ORDER BY kind, value",
                                   (profile,)).fetchall()
        out: dict[str, list[str]] = {}
        for kind, value in rows:
            out.setdefault(kind, []).append(value)
        return out

    # ------------------------------------------------------------ user rights

    def export(self, profile: str) -> dict:
        """Everything stored about a profile, as plain data."""
        return {"profile": profile, "events": [e.__dict__ for e in self.events(profile)],
                "preferences": self.preferences(profile), "exported_at": time.time()}

    def forget(self, profile: str) -> int:
        """Delete a profile's events and preferences and leave no readable trace in the files."""
        with self._transaction(profile):
            removed = self.db.execute("DELETE FROM events WHERE profile=?", (profile,)).rowcount
            self.db.execute("DELETE FROM preferences WHERE profile=?", (profile,))
        with self._lock:
            # secure_delete zeroed the freed pages; old page images may remain in the WAL until it is reset
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.execute("VACUUM")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    # ------------------------------------------------------------ on-device catalog additions

    def save_item(self, item: str, space: str, vector: bytes | None, meta: dict, removed: bool = False) -> None:
        with self._transaction():
            self.db.execute("INSERT OR REPLACE INTO added_items VALUES (?, ?, ?, ?, ?)",
                            (item, space, vector, json.dumps(meta, sort_keys=True), int(removed)))

    def saved_items(self, space: str) -> list[tuple[str, bytes | None, dict, bool]]:
        """Items added on the device for this embedding space; rows of other spaces are dropped (stale)."""
        with self._transaction():
            self.db.execute("DELETE FROM added_items WHERE space != ?", (space,))
        with self._lock:
            rows = self.db.execute("SELECT item, vector, meta, removed FROM added_items ORDER BY rowid").fetchall()
        return [(r[0], r[1], json.loads(r[2]), bool(r[3])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self.db.close()
