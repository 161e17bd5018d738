"""Erasing what a history deleted (forget, retention pruning) from its files, as a part of HistoryStore.

The guarantee and how erasure waits for readers: history_care.py. The transaction that deletes
rows also sets ERASE_FLAG in the meta table; it is dropped once the rows are erased, so a process
killed in between (or a reader that outlasted it) leaves it, and the next open erases again.
"""

from __future__ import annotations

from contextlib import suppress

from edgerec.errors import HistoryError
from edgerec.runtime import history_care
from edgerec.runtime import retention as kept


class Erasure:
    """prune() and erase_pending(), and the erasure of record(), forget() and the open (HistoryStore's)."""

    def prune(self, now: float | None = None) -> int:
        """Apply retention and erase what it removed (HistoryError when a reader blocks the erasure,
        see history_care.py); returns how many rows were removed (events and onboarding choices)."""
        removed = self._delete_old(now)
        with self._lock:
            history_care.erase(self.db, self.path, self.erase_wait, vacuum=False)
            self._erased()
        return removed

    def _delete_old(self, now: float | None) -> int:
        with self._transaction():
            removed = kept.delete_removed(self.db, self.retention, self.cutoff(now))
            if removed:
                history_care.mark_erasure(self.db)
        self._since_prune = 0
        return removed

    def _auto_prune(self) -> None:
        """Retention during record(): the event is committed whatever happens here, so neither another
        writer's lock (pruned next time) nor a reader blocking the erasure fails the record."""
        try:
            removed = self._delete_old(None)
        except HistoryError:  # raised, a record already stored would be retried and stored twice
            return
        if removed or self.erasure_pending:
            self._try_erase(vacuum=False)

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
        with self._lock:
            history_care.erase(self.db, self.path, self.erase_wait, vacuum=True)
            self._erased()
