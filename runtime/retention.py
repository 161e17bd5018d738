"""Retention: what a history keeps, and how reads and pruning both apply it.

A profile keeps its newest `max_events` events (by id, the order they were recorded) among those
no older than `max_age_days` by the store's clock: first the age cutoff, then the count. Every read
applies this itself, so what a read returns is exactly what a prune at that moment would leave,
whenever the last prune ran; pruning (HistoryStore.prune, and every 100 records) only makes the
removal physical and erases the bytes (history_care.py). KEEP_EVERYTHING (a host simulation
replaying an old log) keeps every event: its cutoff lies before any valid timestamp.

A profile's onboarding choices (preferences) are kept while the profile keeps an event or while
they are no older than max_age_days: an aged-out user neither vanishes from profiles() (where they
are found to be forgotten) nor keeps steering lists by choices made years ago.

The time ages are measured from (ClockState): the store's clock, except when it reads more than
AHEAD (a day) past the newest time the history has believed (its high-water mark, kept in the meta
table with the first reading of a jump not believed yet). Such a jump is believed only once the
clock has run on there for SETTLE (a day, from that first reading, whichever process took it); only
the clock's run counts: a step of more than AHEAD between two readings of one process (a bad time
source that moves further on) moves that first reading on by as much. So a device off for a week
ages its history a day later (an app started every few days, at its next start); a clock that jumped
years ahead for a few minutes (a bad time fix), even further ahead meanwhile, deletes nothing. Until
then ages are measured from the high-water mark plus AHEAD. A file with no readable mark (written by
an older version, or the mark altered or lost with a damaged page) starts it from the newest time of
its events and onboarding choices not more than AHEAD past the clock at open, and one with none
believes its first reading (there is nothing to erase). A process keeps another's pending jump
when it writes the mark, unless its own reading resolved it (came back within AHEAD, or settled).

Events recorded without a time and onboarding choices are dated by the clock, or by the high-water
mark when the clock reads behind it (a clock set back, a dead RTC battery reading 2001): their ids
keep their order, and they are not erased once the clock is right, however long it read behind. The
cost, when the mark itself is wrong (a date set a year ahead, used there for a day, so believed, then
corrected): what is recorded until the clock passes the mark is dated at it, and outlives max_age_days
by as much (a day or more of use at 2001, erased at its correction, was the worse choice). Ages are measured from a clock set back at once (it deletes nothing). A time the app passes is
kept as given (and refused more than AHEAD past the time events are dated by, or older than retention
keeps); the mark is written with it when it lies more than AHEAD past the file's mark.

Whatever a jump that came back unbelieved stamped (events and onboarding choices dated more than
AHEAD past the high-water mark while no jump is pending) is re-dated to the high-water mark before
every prune and at every open that finds some, whichever process saw the jump; kept, it would
outlive max_age_days by as long as the jump was. An explicit `now` (prune(now), cutoff(now)) is
taken as given.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from dataclasses import dataclass

from edgerec.errors import ConfigError, HistoryError
from edgerec.runtime import checks
from edgerec.runtime.vocab import MAX_TS

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


SETTLE = DAY  # how long a clock that jumped ahead must run on there before ages are measured from it
CLOCK_KEY = "clock"  # meta: [the newest time believed, the first reading of a jump not believed yet or null]
MARK_EVERY = 3600  # the mark is written when it moved by this much (each record would write it otherwise)


def read_mark(db: sqlite3.Connection) -> tuple[float, float | None] | None:
    """The file's clock mark (seen, ahead); None when it has none (a file of an older version) or one
    altered outside edgerec (a mark of 1e308 would date every new event there)."""
    row = db.execute("SELECT value FROM meta WHERE key=?", (CLOCK_KEY,)).fetchone()
    try:
        seen, ahead = json.loads(row[0])
    except (TypeError, ValueError, RecursionError):  # none, or not a pair
        return None
    for value in (seen, ahead):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0 <= value <= MAX_TS):  # NaN fails too
            return None
    return None if seen is None else (float(seen), None if ahead is None else float(ahead))


@dataclass
class ClockState:
    """The high-water mark of the store's clock and a jump ahead of it not believed yet (see above)."""
    seen: float | None = None  # None: a file without a mark or any dated row (its first reading is believed)
    ahead: float | None = None
    known: float | None = None  # the file's `ahead` when this process last read or wrote it
    last: float | None = None  # this process's previous reading of the pending jump

    def start(self, db: sqlite3.Connection, reading: float | None = None) -> None:
        """At open: the file's mark; without one (a file of an older version, a recovered one), the newest
        time of its events and onboarding choices, so a jump at the first open after an upgrade deletes nothing;
        a row dated more than AHEAD past the clock at open (`reading`) is left out (a jump an older version
        never re-dated would date every new event there): the next open or prune re-dates it."""
        mark = read_mark(db)
        if mark is None:  # (`ts <= MAX_TS` also leaves out text written outside edgerec)
            top = db.execute("SELECT MAX(t) FROM (SELECT MAX(ts) AS t FROM events WHERE ts <= ?1 UNION ALL "
                             "SELECT MAX(ts) FROM preferences WHERE ts <= ?1)",
                             (min(MAX_TS, (time.time() if reading is None else reading) + AHEAD),)).fetchone()[0]
            mark = (None if top is None else float(top), None)
        self.seen, self.ahead = mark
        self.known, self.last = self.ahead, None

    def believe(self, reading: float) -> float:
        """The time ages are measured from at this reading of the store's clock."""
        if self.seen is None or reading <= self.seen + AHEAD:
            self.seen, self.ahead = reading if self.seen is None else max(self.seen, reading), None
            self.last = None
            return reading
        if self.ahead is None or reading < self.ahead:
            self.ahead = reading  # a new jump: from now on, time must be seen to pass there
        elif self.last is not None and reading > self.last + AHEAD:
            self.ahead += reading - self.last  # a further jump is no time passed: only the clock's run counts
        self.last = reading
        if reading - self.ahead >= SETTLE:  # it lasted: the time did pass (a device that was off)
            self.seen, self.ahead, self.last = reading, None, None
            return reading
        return self.seen + AHEAD

    def stamp(self, reading: float) -> float:
        """The time an event recorded at this reading is dated: behind the mark (a clock set back, a dead RTC
        battery reading 2001) it is the mark, so nothing recorded meanwhile ages out once the clock is right;
        ids keep their order."""
        return reading if self.seen is None else max(reading, self.seen)

    def sync(self, db: sqlite3.Connection, reading: float, ts: float | None = None) -> None:
        """Inside a write transaction: merge the file's mark (another process may have believed a newer time,
        or seen a jump: kept unless this process resolved it), believe `reading`, and write the mark when
        it moved by MARK_EVERY, the jump changed, or the event's time `ts` lies more than AHEAD past the
        file's mark (redate() would move it otherwise)."""
        mark = read_mark(db)
        if mark is not None:
            self.seen = mark[0] if self.seen is None else max(self.seen, mark[0])
            if mark[1] != self.known:  # another process changed the jump: theirs, and ours if we saw a new one
                ours = None if self.ahead == self.known else self.ahead
                self.ahead = min((a for a in (ours, mark[1]) if a is not None), default=None)
        self.believe(reading)
        if (mark is None or self.ahead != mark[1] or self.seen - mark[0] >= MARK_EVERY
                or (ts is not None and ts > mark[0] + AHEAD and self.seen > mark[0])):
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (CLOCK_KEY, json.dumps([self.seen, self.ahead])))
        self.known = self.ahead

    def misdated(self, read) -> bool:
        """Whether redate() would move rows, by this process's view (read: the store's reader of SQL, args)."""
        return self.seen is not None and self.ahead is None and bool(read(
            "SELECT EXISTS (SELECT 1 FROM events WHERE ts > ?1) OR EXISTS (SELECT 1 FROM preferences WHERE ts > ?1)",
            (self.seen + AHEAD,))[0][0])

    def redate(self, db: sqlite3.Connection, reading: float) -> int:
        """Inside a write transaction (before each prune, and at an open that finds some): sync, then, unless a
        jump is pending (what it stamps may prove right), date the events and onboarding choices dated more
        than AHEAD past the mark at the mark. Only a jump that came back unbelieved stamps those, whichever
        process saw it; kept, they would outlive max_age_days by as long as the jump was. Returns how many."""
        self.sync(db, reading)
        if self.seen is None or self.ahead is not None:
            return 0
        args = (self.seen, self.seen + AHEAD)
        return (db.execute("UPDATE events SET ts=? WHERE ts > ?", args).rowcount
                + db.execute("UPDATE preferences SET ts=? WHERE ts > ?", args).rowcount)


PRUNE_EVERY = 100  # records between automatic prunes, counted over the file (PRUNE_KEY), not per process
PRUNE_KEY = "pruned_at"  # meta: the event id of the record that last started an automatic prune


def prune_due(db: sqlite3.Connection, event_id: int) -> bool:
    """Inside the record's transaction: whether PRUNE_EVERY events were recorded since the last automatic
    prune (an app that records a few events per start would otherwise never prune the file)."""
    row = db.execute("SELECT value FROM meta WHERE key=?", (PRUNE_KEY,)).fetchone()
    try:
        last = int(row[0]) if row else 0
    except (TypeError, ValueError):
        last = 0
    if 0 <= event_id - last < PRUNE_EVERY:
        return False
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (PRUNE_KEY, str(event_id)))
    return True


KEEP_EVERYTHING = Retention(max_events=10**9, max_age_days=10**7)  # host simulations replay old logs

RETENTION_KEY = "retention"  # meta: the Retention the file was last opened with explicitly (JSON)


def stored(db: sqlite3.Connection) -> Retention | None:
    """The retention a file keeps; None when it stores none (made by an older version, or only ever opened
    without one) or one altered outside edgerec (read as none: the default applies)."""
    row = db.execute("SELECT value FROM meta WHERE key=?", (RETENTION_KEY,)).fetchone()
    try:
        value = json.loads(row[0])
        days = value["max_age_days"]
        return Retention(max_events=value["max_events"], max_age_days=math.inf if days is None else days)
    except (TypeError, ValueError, KeyError, IndexError, RecursionError, ConfigError):
        return None


def settle(db: sqlite3.Connection, asked: Retention | None, transaction) -> Retention:
    """At open (after the schema is current): the retention a store applies. One the app asks for applies at
    once and is stored in the file when it differs from what the file stores (that open, like a migration,
    takes the write lock if it is free; the usual open writes nothing); without one (the CLI, an app that does not set
    it) the file's own applies, and the default only to a file that stores none. So a replayed 1997 log
    (KEEP_EVERYTHING) stays whole when `edgerec history show` or an app opens it without a retention."""
    kept = stored(db)
    if asked is None:
        return kept or Retention()
    if asked != kept:
        days = None if math.isinf(asked.max_age_days) else asked.max_age_days  # JSON has no infinity
        try:
            with transaction():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           (RETENTION_KEY, json.dumps({"max_events": asked.max_events, "max_age_days": days})))
        except HistoryError:  # another process is writing: the retention asked applies all the same, and is
            pass  # stored by a later open that asked for it (an open never failed for this before)
    return asked

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
    """SQL and arguments: the profiles that keep at least one event or onboarding choice."""
    return ("SELECT profile FROM events WHERE ts >= ?1 AND ?2 > 0 UNION SELECT profile FROM preferences WHERE "
            "ts >= ?1 ORDER BY 1", (cutoff, retention.cap()))


def preferences(retention: Retention, cutoff: float, profile: str) -> tuple[str, tuple]:
    """SQL and arguments: a profile's kept onboarding choices (kind, value)."""
    return ("SELECT kind, value FROM preferences WHERE profile=?1 AND (ts >= ?2 OR EXISTS (SELECT 1 FROM events "
            "WHERE profile=?1 AND ts >= ?2 AND ?3 > 0)) ORDER BY kind, value", (profile, cutoff, retention.cap()))


def delete_removed(db: sqlite3.Connection, retention: Retention, cutoff: float) -> int:
    """Delete (inside the caller's transaction) every event and onboarding choice retention removes;
    returns how many rows."""
    removed = db.execute("DELETE FROM events WHERE ts < ?", (cutoff,)).rowcount
    removed += db.execute(
        """DELETE FROM events WHERE id IN (
               SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY profile ORDER BY id DESC) AS n
                               FROM events) WHERE n > ?)""", (retention.cap(),)).rowcount
    # the events left are the kept ones: a profile without any keeps only choices young enough
    removed += db.execute("DELETE FROM preferences WHERE ts < ? AND profile NOT IN (SELECT profile FROM events)",
                          (cutoff,)).rowcount
    return removed
