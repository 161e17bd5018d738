"""Retention: what a history keeps, and how reads and pruning both apply it.

A profile keeps its newest `max_events` events (by id, the order they were recorded) among those
no older than `max_age_days` by the store's clock: first the age cutoff, then the count. Every read
applies this itself, so what a read returns is exactly what a prune at that moment would leave,
whenever the last prune ran; pruning (HistoryStore.prune, and every 100 records) only makes the
removal physical and erases the bytes (history_care.py). KEEP_EVERYTHING (a host simulation
replaying an old log) keeps every event: its cutoff lies before any valid timestamp.
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass

from edgerec.errors import ConfigError
from edgerec.runtime import checks

DAY = 86_400


@dataclass(frozen=True)  # KEEP_EVERYTHING is shared
class Retention:
    max_events: int = 10_000  # per profile; the oldest go first
    max_age_days: float = 730.0

    def __post_init__(self):
        # every read compares against these: a NaN age would hide the whole history without a word
        events, days = self.max_events, self.max_age_days
        if isinstance(events, bool) or not isinstance(events, int) or not 0 <= events <= 1 << 62:  # SQLite's LIMIT
            raise ConfigError(f"Retention.max_events is a whole number of events >= 0 (got {checks.shown(events)})")
        if isinstance(days, bool) or not isinstance(days, (int, float)) or not days > 0:  # NaN is not > 0
            raise ConfigError(f"Retention.max_age_days is a number of days > 0, math.inf for no age limit "
                              f"(got {checks.shown(days)})")
        # as a float: an int past float's range (10**400 days) made every read raise OverflowError
        object.__setattr__(self, "max_age_days", float(days) if days < 1e300 else math.inf)

    def cutoff(self, now: float) -> float:
        """The oldest timestamp kept at `now` (an event at exactly the cutoff stays)."""
        return now - self.max_age_days * DAY

    def cap(self, limit: int | None = None) -> int:
        """How many of a profile's newest kept events a read of at most `limit` returns."""
        kept = max(int(self.max_events), 0)  # SQLite reads a negative LIMIT as none at all
        return kept if limit is None else min(kept, limit)


def require_kept(retention: Retention, ts: float, cutoff: float) -> None:
    """Refuse an event older than the history keeps: stored, it would be invisible at once and erased
    at the next prune (a replayed 1997 log left the device with no history, without a word)."""
    if ts < cutoff:
        day = time.strftime("%Y-%m-%d", time.gmtime(ts))  # 0 <= ts <= MAX_TS (checks.timestamp)
        raise ConfigError(f"the event's time ({day}) is older than this history keeps (the last "
                          f"{retention.max_age_days:g} days, Retention.max_age_days): record events as they "
                          "happen, or open the history with a Retention that keeps older ones")


AHEAD = DAY  # how far after the store's clock an event may be dated (clocks of app and device differ a little)


def require_past(ts: float, now: float) -> None:
    """Refuse an event dated after now: kept, it would outlive max_age_days by as long as it is early and
    hold its item back from replays until then (a wrong unit or clock, a scheduled time)."""
    if ts > now + AHEAD:
        day = time.strftime("%Y-%m-%d", time.gmtime(ts))  # ts <= MAX_TS (checks.timestamp)
        raise ConfigError(f"the event's time ({day}) is after now by the device clock (more than a day "
                          "ahead): record events as they happen, or leave the timestamp out to use the clock")


KEEP_EVERYTHING = Retention(max_events=10**9, max_age_days=10**7)  # host simulations replay old logs

# The events every profile keeps at a cutoff (?1) and a count (?2), with their rank from the newest.
KEPT = ("SELECT * FROM (SELECT id, profile, item, event, value, ts, context, ROW_NUMBER() OVER "
        "(PARTITION BY profile ORDER BY id DESC) AS n FROM events WHERE ts >= ?) WHERE n <= ?")


def newest_kept(columns: str, after: bool = False) -> str:
    """One profile's newest kept events, newest first; arguments: profile, [id after,] cutoff, limit
    (limit = Retention.cap(...)). The newest `limit` events at or after the cutoff are all among
    its newest max_events there (limit <= max_events), so no ranking of the whole profile is needed."""
    return (f"SELECT {columns} FROM events WHERE profile=? {'AND id>? ' if after else ''}AND ts >= ? "
            "ORDER BY id DESC LIMIT ?")


def items_since(retention: Retention, cutoff: float, since: float, events: tuple[str, ...],
                until: float | None = None) -> tuple[str, tuple]:
    """SQL and arguments: the kept events' items of the given kinds at or after `since` (and at or before
    `until`), over every profile, in the order they were recorded."""
    events = checks.names(events, "events", allow_none=False)
    marks = ",".join("?" * len(events))
    bound = () if until is None else (checks.number(until, "until"),)
    return (f"SELECT item FROM ({KEPT}) WHERE ts >= ? {'AND ts <= ? ' if bound else ''}AND event IN ({marks}) "
            "ORDER BY id", (cutoff, retention.cap(), checks.number(since, "since"), *bound, *events))


def count(retention: Retention, cutoff: float, profile: str | None) -> tuple[str, tuple]:
    """SQL and arguments: how many events one profile (None: every profile) keeps."""
    if profile is not None:
        return "SELECT MIN(COUNT(*), ?) FROM events WHERE profile=? AND ts >= ?", (retention.cap(), profile, cutoff)
    return ("SELECT COALESCE(SUM(MIN(n, ?)), 0) FROM (SELECT COUNT(*) AS n FROM events WHERE ts >= ? "
            "GROUP BY profile)", (retention.cap(), cutoff))


def profiles(retention: Retention, cutoff: float) -> tuple[str, tuple]:
    """SQL and arguments: the profiles that keep at least one event."""
    return "SELECT DISTINCT profile FROM events WHERE ts >= ? AND ? > 0 ORDER BY profile", (cutoff, retention.cap())


def delete_removed(db: sqlite3.Connection, retention: Retention, cutoff: float) -> int:
    """Delete (inside the caller's transaction) every event retention removes; returns how many."""
    removed = db.execute("DELETE FROM events WHERE ts < ?", (cutoff,)).rowcount
    removed += db.execute(
        """DELETE FROM events WHERE id IN (
               SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY profile ORDER BY id DESC) AS n
                               FROM events) WHERE n > ?)""", (retention.cap(),)).rowcount
    return removed
