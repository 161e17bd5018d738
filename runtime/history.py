"""The user's history, kept on the device in SQLite (WAL): durable, ordered, per profile, forgettable.

Each `record` commits on its own (synchronous=FULL): a killed process loses nothing acknowledged.
Profiles share one database (a family's set-top box). Retention bounds each profile by count and by
age from the store's clock, unless it jumped ahead (a simulated device replaying an old log:
KEEP_EVERYTHING); every read applies it at once, pruning erases later (retention.py). `forget` and
pruning erase from the files or raise (history_care.py); foreign or damaged files are refused at
open; `backup` copies, `recover` salvages, and the schema migrates older files forward (the only
time an open takes the write lock: reads go on while another process writes).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from edgerec.errors import ConfigError, HistoryError
from edgerec.runtime import checks, history_care, history_recover
from edgerec.runtime import history_schema as schema
from edgerec.runtime import retention as kept
from edgerec.runtime.history_erasure import BatchState, Erasure
from edgerec.runtime.history_schema import SCHEMA_VERSION, Event  # noqa: F401  (SCHEMA_VERSION re-exported)
from edgerec.runtime.retention import KEEP_EVERYTHING, Retention  # noqa: F401  (re-exported)
from edgerec.runtime.secure_db import connect
from edgerec.runtime.vocab import CONSUMED, DEVICE_EVENTS  # noqa: F401  (CONSUMED re-exported)

EVENTS = DEVICE_EVENTS  # the names this module has always exported


class HistoryStore(Erasure):
    """One SQLite file; safe to share between threads of one process (calls are serialised)."""

    def __init__(self, path: str | Path, retention: Retention | None = None, timeout: float = 5.0,
                 erase_wait: float = 2.0, key: bytes | None = None):
        """key: 32 raw bytes to keep the file encrypted at rest (SQLCipher, see secure_db.py)."""
        self.path, self.timeout = Path(checks.path(path, "the history's path")), timeout
        self.file = checks.file_name(path)  # how messages name it: never the folders above it
        self.erase_wait = erase_wait  # how long erasure waits for another reader (history_care.py)
        self.erasure_pending = False  # rows deleted by automatic pruning whose bytes a reader kept
        if retention is not None and not isinstance(retention, Retention):
            raise ConfigError(f"retention must be a Retention(max_events=..., max_age_days=...), not {type(retention).__name__}")
        self.retention = retention or Retention()
        self.clock = time.time  # the store's clock: retention's age cutoff and events recorded without a time
        self._clock = kept.ClockState()  # what of the clock is believed (retention.py), loaded at open
        self._lock = threading.RLock()
        self.closed = False
        self._since_prune = 0
        self._writes = 0  # commits of this store not tied to one profile (retention, item cache)
        self._profile_writes: dict[str, int] = {}  # commits per profile
        self._rewrites: dict[str, int] = {}  # commits per profile that did more than append events
        self._stamp = self._forgotten = 0  # commits of all profiles; what a profile not in those counts from
        self._batch: dict[str | None, bool] | None = None  # in batch(): profile -> only appended, counted at commit
        self._due = False  # a record found a prune due (in batch(): pruned after its commit)
        history_care.check_file(self.path, encrypted=key is not None)
        if str(self.path) != ":memory:" and not self.path.exists():
            history_care.create_private(self.path, lambda tmp: self._open(tmp, key, timeout))
        self.retention = kept.settle(self._open(self.path, key, timeout), retention, self._transaction)
        with suppress(HistoryError):  # the clock at open is believed when the file has no mark nor dated row
            self._redate()
        if self._read("SELECT 1 FROM meta WHERE key=?", (history_care.ERASE_FLAG,)):
            self._try_erase(vacuum=True)  # a forget() or prune killed before its erasure: finish it now

    def _open(self, path: Path, key: bytes | None, timeout: float) -> sqlite3.Connection:
        try:
            conn = connect(path, key, timeout)
            self.db, self._errors, self._busy, self.encrypted = conn.db, conn.errors, conn.busy, conn.encrypted
            history_care.check_database(self.db, path)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA secure_delete=ON")
            self._seen = self.db.execute("PRAGMA data_version").fetchone()[0]  # others' commits: _check_others
            self._migrate()
            self._clock.start(self.db, self.clock())
            return self.db
        except (HistoryError, sqlite3.DatabaseError, *getattr(self, "_errors", ())) as exc:
            if hasattr(self, "db"):
                self.db.close()
            if isinstance(exc, HistoryError):
                raise
            raise history_care.open_error(exc, self.file, getattr(self, "_busy", ()),
                                          getattr(self, "encrypted", False)) from None

    # ------------------------------------------------------------ schema

    def version(self) -> int:
        return schema.version(self.db, self.path)

    def _migrate(self) -> None:
        if schema.up_to_date(self.db, self.version(), self.file):
            return  # the usual open: no write lock, so it never waits for another process's write
        with self._transaction():
            if not schema.up_to_date(self.db, self.version(), self.file):  # unless another process did meanwhile
                schema.migrate(self.db, self.version())

    def generation(self, profile: str) -> tuple[int, int, int, int]:
        """A token that changes whenever what is stored for `profile` may have changed (so derived
        data can be cached): (other connections' commits, this store's commits for no one profile,
        the profile's rewrites, its commits). Only the last moved: events were appended, no more. The counts
        of a profile left without rows (forget, retention) are dropped and restart above any given."""
        with self._lock:
            try:
                external = int(self.db.execute("PRAGMA data_version").fetchone()[0])
            except self._errors as exc:
                self._require_open()
                raise HistoryError(f"could not read {self.file} ({exc})") from None
            base = self._forgotten
            return external, self._writes, self._rewrites.get(profile, base), self._profile_writes.get(profile, base)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """record() and set_preferences() calls in one transaction, one commit: all stored, or none."""
        with self._lock:  # other threads' calls wait: they would run inside this transaction
            self._outside_batch("history.batch()")  # one at a time: a failed inner one could not be undone alone
            with self._transaction(batch=True):
                yield
            self._prune_if_due(False)

    @contextmanager
    def _transaction(self, profile: str | None = None, append: bool = False, batch: bool = False) -> Iterator[None]:
        with self._lock:
            if self._batch is not None:  # inside batch(): stored by its commit, counted at once
                with self._batched(profile, append):
                    yield
                return
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except self._busy as exc:
                raise HistoryError(f"history database {self.file} is locked by another process ({exc}); "
                                   "close the other app or try again") from None
            except self._errors as exc:  # closed, or replaced (encrypted) or damaged under this app
                self._require_open()
                raise HistoryError(f"could not write to {self.file} ({exc}); nothing was stored: open the history "
                                   "anew (with its key if it was encrypted meanwhile)") from None
            before = self.db.total_changes
            self._batch = BatchState() if batch else None
            try:
                self._check_others()
                yield
                if batch:  # a failed write the app caught: say so, not SQLite's "no transaction is active"
                    self._batch.ensure_whole(self.db.in_transaction)
                self.db.execute("COMMIT")  # a commit that fails (disk full, I/O) is rolled back below
            except BaseException as exc:
                self._rollback()
                self._count(dict.fromkeys(self._batch or (), False))  # a batch's reads saw its rows: rewritten
                if isinstance(exc, self._errors):
                    raise HistoryError(f"could not write to {self.file} ({exc}); nothing of this change was "
                                       "stored") from None
                raise
            else:  # no row changed (e.g. retention found nothing old): what was derived still holds
                self._count({profile: append} if not batch and self.db.total_changes != before else {})
            finally:
                self._batch = None

    plain_names = True  # profiles stored as given (PseudonymousHistory: keyed hashes)

    def _check_others(self) -> None:
        """In a write transaction: once another connection (a process opened with a profile secret) made the
        file pseudonymous, a plain name written here would escape its forget(). Checked when others wrote."""
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._seen:
            if self.plain_names and self.db.execute("SELECT 1 FROM meta WHERE key=?",
                                                    (history_care.PROFILE_IDS,)).fetchone():
                raise HistoryError(f"history database {self.file} stores profiles as keyed hashes now (another app "
                                   "opened it with a profile secret); nothing was stored: open it again with its "
                                   "profile secret (profile_secret=... or --profile-key-file)")
            self._seen = version

    def _rollback(self) -> None:
        with suppress(self._errors):  # the transaction may be gone already (SQLite rolled it back itself)
            self.db.execute("ROLLBACK")

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self.db.execute(sql, args).fetchall()
            except self._errors as exc:
                self._require_open()
                raise HistoryError(f"could not read {self.file} ({exc}); if it is damaged, recover it with "
                                   "`edgerec history recover`") from None

    def _require_open(self) -> None:
        """A closed store's calls fail for that reason, not as a damaged file (which recover would fix)."""
        if self.closed:
            raise HistoryError(f"the history {self.file} was closed (close() or the end of a `with` block); "
                               "open it again to use it") from None

    # ------------------------------------------------------------ events

    def record(self, profile: str, item: str, event: str, value: float | None = None, ts: float | None = None,
               context: dict | None = None) -> int:
        """Append one event; returns its id once it is durably committed (in batch(): at the batch's end)."""
        checks.event(event)
        checks.text(profile, "user")
        checks.text(item, "item")
        value = checks.number(value, "event value", allow_none=True)
        context = checks.json_object(context, "context")
        reading, now, stamp = self.times()
        ts = stamp if ts is None else checks.timestamp(ts)
        kept.require_kept(self.retention, ts, self.retention.cutoff(now))
        kept.require_past(ts, stamp)
        with self._transaction(profile, append=True):
            cursor = self.db.execute(
                "INSERT INTO events (profile, item, event, value, ts, context) VALUES (?, ?, ?, ?, ?, ?)",
                (profile, item, event, value, ts, json.dumps(context or {}, sort_keys=True)))
            event_id = int(cursor.lastrowid)
            due = kept.prune_due(self.db, event_id)
            self._clock.sync(self.db, reading, ts)  # ts: the mark is written when ts needs it (retention.py)
        self._since_prune += 1  # also retries a prune another writer's lock skipped
        self._prune_if_due(due)
        return event_id

    # Every read below returns only what retention keeps at the time of the read (retention.py).

    def times(self) -> tuple[float, float, float]:
        """(the store's clock, the time ages are measured from, the time an event is dated): ClockState."""
        reading = self.clock()
        with self._lock:
            return reading, self._clock.believe(reading), self._clock.stamp(reading)

    def _redate(self) -> None:
        """At open and before every prune: date what a jump that came back stamped (retention.py)."""
        reading = self.times()[0]
        if self._clock.misdated(self._read):  # a read: a write (the lock) only when there is something to date
            with self._transaction():
                self._clock.redate(self.db, reading)

    def cutoff(self, now: float | None = None) -> float:
        """The oldest event time retention keeps now (by the store's clock, unless it jumped ahead) or at `now`."""
        return self.retention.cutoff(self.times()[1] if now is None else checks.timestamp(now, "now", allow_none=False))

    def events(self, profile: str, limit: int | None = None) -> list[Event]:
        """A profile's events, oldest first (the newest `limit` when given)."""
        checks.text(profile, "user")
        limit = checks.integer(limit, "limit", 0, allow_none=True)
        rows = self._read(kept.newest_kept("id, profile, item, event, value, ts, context"),
                          (profile, self.cutoff(), self.retention.cap(limit)))[::-1]
        return [Event(r[0], r[1], r[2], r[3], r[4], r[5], history_care.context_of(r[6]))
                for r in rows]

    def events_after(self, profile: str, after: int, limit: int) -> list[tuple[int, str, str, float]]:
        """(id, item, event, ts) of a profile's newest `limit` events with an id above `after`, oldest
        first (after=0: the newest events; else those appended since event `after` was read)."""
        checks.text(profile, "user")
        after, limit = checks.integer(after, "after", 0), checks.integer(limit, "limit", 0)
        return self._read(kept.newest_kept("id, item, event, CAST(ts AS REAL)", after=True),  # text: 0.0
                          (profile, after, self.cutoff(), self.retention.cap(limit)))[::-1]

    def items_since(self, ts: float, events: tuple[str, ...], until: float | None = None) -> list[str]:
        """Items of the given events since `ts` (up to `until`), over every profile (what the device did)."""
        return [r[0] for r in self._read(*kept.items_since(self.retention, self.cutoff(), ts, events, until))]

    def profiles(self) -> list[str]:
        """The profiles that keep an event or an onboarding choice (retention.py)."""
        with self._lock:
            return [r[0] for r in self._read(*kept.profiles(self.retention, self.cutoff()))]

    def count(self, profile: str | None = None) -> int:
        if profile is not None:
            checks.text(profile, "user")
        with self._lock:
            return int(self._read(*kept.count(self.retention, self.cutoff(), profile))[0][0])

    def backup(self, out: str | Path) -> Path:
        """A consistent copy of this history at `out` (safe while the app reads and writes)."""
        if self.encrypted:  # the backup API would write the copy in plain text: refuse rather than leak
            raise HistoryError("online backup of an encrypted history is not supported yet; copy the file (it "
                               "stays encrypted) while no app has it open")
        with self._lock:
            return history_care.backup(self.db, out)

    @staticmethod
    def recover(path: str | Path, out: str | Path, key: bytes | None = None) -> dict:
        """Copy every readable row of a damaged history into a new one (encrypted with `key` when the history
        is); returns what was saved and lost."""
        return history_recover.recover(path, out, key)

    # ------------------------------------------------------------ preferences (onboarding)

    def set_preferences(self, profile: str, kind: str, values: list[str]) -> None:
        checks.text(profile, "user")
        checks.text(kind, "preference kind")
        values = list(dict.fromkeys(checks.names(values, f"{kind} preferences", allow_none=False)))  # once each
        reading, _, stamp = self.times()  # dated as events are: retention ages them alike
        with self._transaction(profile):
            self.db.execute("DELETE FROM preferences WHERE profile=? AND kind=?", (profile, kind))
            self.db.executemany("INSERT INTO preferences VALUES (?, ?, ?, ?)",
                                [(profile, kind, v, stamp) for v in values])
            self._clock.sync(self.db, reading)

    def preferences(self, profile: str) -> dict[str, list[str]]:
        """The profile's onboarding choices that retention keeps."""
        checks.text(profile, "user")
        rows = self._read(*kept.preferences(self.retention, self.cutoff(), profile))
        out: dict[str, list[str]] = {}
        for kind, value in rows:
            out.setdefault(kind, []).append(value)
        return out

    # ------------------------------------------------------------ user rights

    def export(self, profile: str) -> dict:
        """Everything stored about a profile, as plain data. Events retention removed are deleted first
        (and their bytes erased unless a reader blocks it), so what is stored is what is exported."""
        checks.text(profile, "user")
        self._auto_prune()
        return {"profile": profile, "events": [e.__dict__ for e in self.events(profile)],
                "preferences": self.preferences(profile), "exported_at": time.time()}

    def forget(self, profile: str) -> int:
        """Delete a profile's events and preferences and erase them from the files: on return no byte
        of them is left in the database or its WAL; a HistoryError otherwise (see history_care.py)."""
        checks.text(profile, "user")
        self._outside_batch("forget()")  # checked before anything is deleted
        with self._transaction(profile):
            removed = self.db.execute("DELETE FROM events WHERE profile=?", (profile,)).rowcount
            self.db.execute("DELETE FROM preferences WHERE profile=?", (profile,))
            history_care.mark_erasure(self.db)  # a process killed before the erasure: the next open does it
        self._drop_counts([profile])
        self.erase_pending()
        return removed

    # ------------------------------------------------------------ on-device catalog additions

    def save_item(self, item: str, space: str, vector: bytes | None, meta: dict, removed: bool = False) -> None:
        self.save_items([(item, space, vector, meta, removed)])

    def save_items(self, rows: list[tuple[str, str, bytes | None, dict, bool]]) -> None:
        """Store added items (item, space, vector, meta, removed) in one transaction: all or none. Each row
        written moves the items counter and takes its number (history_schema v4): catalog_sync.py reads by it."""
        self._outside_batch("add_items() and remove_items()")  # the open catalog changes at once: no rollback
        with self._transaction():  # its errors say that nothing of the batch was stored
            history_care.upsert_items(self.db, rows)

    def saved_items(self, space: str, dim: int | None = None, since: int | None = None) -> list[tuple[str, bytes | None, dict, bool]]:
        """Items added on the device for this embedding space (rows of other spaces are kept for their
        bundles: two bundles may share one history, and an app may roll an update back); with `since`,
        only the rows written after the items counter was at `since`."""
        with self._lock:
            rows = self._read(*history_care.added_items_query(space, since))
        return history_care.readable_items(rows, dim)  # a row altered outside edgerec is left out

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self.db.close()
