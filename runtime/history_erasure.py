"""Erasing what a history deleted (forget, retention pruning) from its files, as a part of HistoryStore.

The guarantee and how erasure waits for readers: history_care.py. The transaction that deletes
rows also sets ERASE_FLAG in the meta table; it is dropped once the rows are erased, so a process
killed in between (or a reader that outlasted it) leaves it, and the next open erases again.

Also the per-profile write counters generation() is made of: a profile whose last row a deletion
removed (forget, retention) leaves no name in them, as forget() always did; and the writes inside a
history.batch(), which one failure rolls back whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from edgerec.errors import ConfigError, HistoryError
from edgerec.runtime import history_care
from edgerec.runtime import retention as kept


class BatchState(dict):
    """What a history.batch() wrote: profile -> only appended (counted at its commit); `failed` once a write in
    it failed: the whole transaction is rolled back then, and every later write of the batch is refused."""

    failed = False

    def ensure_whole(self, in_transaction: bool) -> None:
        if self.failed or not in_transaction:
            raise HistoryError("an earlier write of this history.batch() failed, so nothing of the batch is "
                               "stored; run the whole batch again")


class Erasure:
    """prune() and erase_pending(), and the erasure of record(), forget() and the open (HistoryStore's)."""

    def prune(self, now: float | None = None) -> int:
        """Apply retention and erase what it removed (HistoryError when a reader blocks the erasure,
        see history_care.py); returns how many rows were removed (events and onboarding choices)."""
        self._outside_batch("prune()")
        removed = self._delete_old(now)
        with self._lock:
            history_care.erase(self.db, self.path, self.erase_wait, vacuum=False)
            self._erased()
        return removed

    def _delete_old(self, now: float | None) -> int:
        self._redate()  # what a jump that came back stamped first (retention.py)
        emptied: list[str] = []
        with self._transaction():
            removed = kept.delete_removed(self.db, self.retention, self.cutoff(now))
            if removed:
                history_care.mark_erasure(self.db)
                emptied = self._emptied()
        self._drop_counts(emptied)
        self._since_prune = 0
        return removed

    def _prune_if_due(self, due: bool) -> None:
        """After a record (due: the file says a prune is due) or a batch: prune when due, never inside a
        batch (its erasure needs the transaction committed), so a batch's records prune after it."""
        self._due = self._due or due
        if self._batch is None and (self._due or self._since_prune >= kept.PRUNE_EVERY):
            self._due = False
            self._auto_prune()

    def _auto_prune(self) -> None:
        """Retention during record(): the event is committed whatever happens here, so neither another
        writer's lock (pruned next time) nor a reader blocking the erasure fails the record."""
        if self._batch is not None:  # (export() inside a batch) after its commit: _prune_if_due
            self._due = True
            return
        try:
            removed = self._delete_old(None)
        except HistoryError:  # raised, a record already stored would be retried and stored twice
            return
        if removed or self.erasure_pending:
            self._try_erase(vacuum=False)

    def _outside_batch(self, what: str) -> None:
        with self._lock:  # another thread's batch holds it: wait for its end; this thread's own batch: refused
            inside = self._batch is not None
        if inside:  # the erasure cannot run inside the batch's transaction
            raise ConfigError(f"{what} cannot run inside history.batch(); call it after the batch (it did "
                              "nothing; the batch goes on)")

    def _try_erase(self, vacuum: bool) -> None:
        """Erase without waiting for another connection: one in the way leaves `erasure_pending` set (and the
        flag in the file), for the next prune, forget() or open."""
        with self._lock:
            self.db.execute("PRAGMA busy_timeout=0")  # a record or an open never waits for someone else's reader
            try:
                history_care.erase(self.db, self.path, 0.0, vacuum=vacuum)
                self._erased()
            except HistoryError:
                self.erasure_pending = True
            finally:
                self.db.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")

    def _erased(self) -> None:
        """The deleted rows are erased: drop the flag (kept, it only makes the next open erase again)."""
        self.erasure_pending = False
        with suppress(HistoryError, *self._errors):
            if self.db.execute("DELETE FROM meta WHERE key=?", (history_care.ERASE_FLAG,)).rowcount:
                history_care.checkpoint(self.db, self.path, 0.0)  # its own log frame: the log stays empty

    def erase_pending(self) -> None:
        """Complete an erasure a reader blocked (HistoryError again while it still does)."""
        self._outside_batch("erase_pending()")
        with self._lock:
            history_care.erase(self.db, self.path, self.erase_wait, vacuum=True)
            self._erased()

    @contextmanager
    def _batched(self, profile: str | None, append: bool) -> Iterator[None]:
        """A write inside batch(), stored by the batch's commit. A failed one rolls the batch back at once: SQLite
        may have ended the transaction itself (a full disk), and the writes after it would each commit alone."""
        batch = self._batch
        batch.ensure_whole(self.db.in_transaction)
        try:
            yield
        except BaseException as exc:
            batch.failed = True
            self._rollback()
            self._count(dict.fromkeys([*batch, profile], False))  # what a request read of the batch is gone
            if isinstance(exc, self._errors):
                raise HistoryError(f"could not write to {self.file} ({exc}); nothing of this change was stored") from None
            raise
        batch[profile] = batch.get(profile, True) and append  # appended only if all of its writes were
        self._count({profile: append})  # at once: a request inside the batch reads its rows (the rollback recounts)

    # ------------------------------------------------------------ the write counters of generation()

    def _count(self, commits: dict[str | None, bool]) -> None:
        """Count a commit that changed rows: of no one profile (None), or of profiles (True: only appended)."""
        for profile, append in commits.items():
            if profile is None:
                self._writes += 1
            else:
                self._stamp += 1  # every count stays <= _stamp + _forgotten; both kept once written,
                base = self._forgotten  # so a later forget() of someone else moves no token of this one
                self._profile_writes[profile] = self._profile_writes.get(profile, base) + 1
                self._rewrites[profile] = self._rewrites.get(profile, base) + (0 if append else 1)

    def _emptied(self) -> list[str]:
        """In a transaction that deleted rows: the counted profiles left without an event or a choice."""
        return [name for name in self._profile_writes if not self.db.execute(
            "SELECT EXISTS (SELECT 1 FROM events WHERE profile=?1) OR EXISTS (SELECT 1 FROM preferences "
            "WHERE profile=?1)", (name,)).fetchone()[0]]

    def _drop_counts(self, profiles: list[str]) -> None:
        """No trace of these names left in memory. A name counted again starts above any count given
        so far, so its generation() never repeats a token an older state of it had."""
        if not profiles:
            return
        with self._lock:
            for name in profiles:
                self._profile_writes.pop(name, None), self._rewrites.pop(name, None)
            self._forgotten += self._stamp + 1
