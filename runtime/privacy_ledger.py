"""The privacy ledger: every DP report's epsilon, kept in the device database, and the budget it must fit.

Federated rounds are entered too (runtime/federated.py): a round under DP with its epsilon, a refused
round or one taken without DP with epsilon 0 (`note`), so the ledger shows every round the device saw.

Reports compose sequentially, so what a device has revealed is the sum of the
epsilons it spent. Two caps hold, both over rolling windows: one day, and a hard
cap over 30 days. The ledger is append-only: forget(), retention and catalog
updates never touch it, and the caps are measured at the latest of the clock and
the newest entry (so setting the device clock back frees nothing) and, for an entry
dated among others, over a window either side of its date. An entry is dated at the
time given, never at that newest one: one report dated 40 days ahead would otherwise
have dated every later report on its day too. Budget comes back only as entries turn
older than the window. Outside a simulation `now=` may date an entry at most a day after the
device clock (as `record` dates an event): a unit slip dated one 100 years ahead and held every
later report shut until then. An entry far ahead of the clock can still come from a clock that
ran ahead and was set right; its budget counts until its date passes (telling that from a clock
set back is impossible), and a refusal says so rather than blaming the last day's reports. A report that would pass a cap is refused (PrivacyBudgetError)
before anything is produced. An entry may carry a key (a federated round of a space),
which the ledger holds once: a second entry with it is refused the same way.

Each entry has two times: `ts`, the time the caller gave (`now=`, the device clock by
default), which dates the report; and `clock`, the device clock when it was spent. The caps
hold over both: a report dated back (or forward) into an empty day still counts on the real
day it was made, so `now=` never lets a device spend more per real day than the cap. A
simulation that walks many simulated days in one real second says so (`simulation=True`):
its ledger checks the caps over `ts` only and may live in memory. A real one may not: a
ledger kept in memory starts empty at every app start.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from edgerec.errors import ConfigError, HistoryError, PrivacyBudgetError
from edgerec.runtime import checks
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.retention import AHEAD
from edgerec.runtime.vocab import MAX_TS

DAY = 86_400.0
WINDOW_DAYS = 30
_EPS_SLACK = 1e-9  # float sums of epsilons that add up to the cap exactly still fit


@dataclass(frozen=True)
class Budget:
    per_day: float = 1.0
    per_30_days: float = 10.0

    def __post_init__(self):
        for name in ("per_day", "per_30_days"):  # finite: an infinite budget would be no budget at all
            checks.number(getattr(self, name), f"Budget.{name}", 0.0, 1e6, low_open=True)
        if not (0 < self.per_day <= self.per_30_days):
            raise ConfigError(f"a privacy budget needs 0 < per_day <= per_30_days (got {self.per_day}, "
                              f"{self.per_30_days})")


@dataclass
class Spent:
    day: float
    window: float
    now: float


# an entry's device-clock time; entries written before the clock column was added count at their ts
_CLOCK = "COALESCE(clock, ts)"


class PrivacyLedger:
    def __init__(self, store: HistoryStore, budget: Budget | None = None, *, simulation: bool = False):
        checks.instance(store, HistoryStore, "the ledger's store (rec.history)", allow_none=False)
        self.store, self.budget = store, checks.instance(budget, Budget, "budget") or Budget()
        self.simulation = checks.flag(simulation, "simulation")
        if not simulation and in_memory(store):
            raise ConfigError("a privacy ledger needs the history in a file: kept in memory it forgets what was "
                              "spent when the app restarts, so no budget would hold; open the history (the "
                              "Recommender) with a file path, or pass simulation=True in a simulation")
        store._outside_batch("a privacy ledger")  # its table and entries must outlive a rolled-back batch
        with store._transaction():
            store.db.execute("CREATE TABLE IF NOT EXISTS privacy_ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                             "ts REAL NOT NULL, question TEXT NOT NULL, epsilon REAL NOT NULL, clock REAL, key TEXT)")
            columns = {r[1] for r in store.db.execute("PRAGMA table_info(privacy_ledger)")}
            if "clock" not in columns:
                store.db.execute("ALTER TABLE privacy_ledger ADD COLUMN clock REAL")  # a ledger from before 12/2026
            if "key" not in columns:
                store.db.execute("ALTER TABLE privacy_ledger ADD COLUMN key TEXT")  # a ledger from before 12/2026

    def _window(self, column: str, now: float) -> Spent:
        """What the entries spent over the day and the 30 days by `column`: up to the later of `now` and the
        newest entry, and (an entry dated back among later ones) either side of `now`; the larger of each."""
        read = self.store._read  # its errors (a closed or damaged history) are HistoryErrors
        newest = read(f"SELECT MAX({column}) FROM privacy_ledger")[0][0]
        if newest is not None and not ledger_time(newest):  # edgerec writes none: a hand-edited row (past the calendar,
            raise HistoryError(  # or text) raised a raw OverflowError; no budget is read as freed from it
                "the privacy ledger holds an entry whose date is not a time from 1970 to the year 5138, which "
                "edgerec never writes: the history file was altered, so what this device spent is not known and "
                "every report is refused. Restore the history file from a backup, or run `edgerec history recover` "
                "(it counts the altered entry as the whole budget spent: reports wait 30 days). Nothing was reported.")
        last = max(now, newest or now)
        sums = [read(f"SELECT COALESCE(SUM(epsilon), 0) FROM privacy_ledger WHERE ({column} > ? AND "
                     f"{column} <= ?) OR ({column} > ? AND {column} < ?)",
                     (last - days * DAY, last, now - days * DAY, now + days * DAY))[0][0]
                for days in (1, WINDOW_DAYS)]
        return Spent(float(sums[0]), float(sums[1]), last)

    def _views(self, now: float, clock: float | None = None) -> tuple[Spent, Spent | None]:
        """The windows by the dates given (`now=`) and, unless simulated, by the device clock."""
        if self.simulation:
            return self._window("ts", now), None
        return self._window("ts", now), self._window(_CLOCK, time.time() if clock is None else clock)

    def _dated(self, now) -> float:
        """`now` checked (the device clock when None): outside a simulation, at most a day after the clock."""
        now = _now(now)
        if not self.simulation and now > time.time() + AHEAD:
            raise ConfigError(f"now ({_day(now)}) is more than a day after the device clock: a report is dated when "
                              "it is made; leave now out to use the clock (a simulation that walks simulated days "
                              "passes simulation=True)")
        return now

    def _spent(self, now: float) -> Spent:
        dated, real = self._views(now)
        if real is None:
            return dated
        return Spent(max(dated.day, real.day), max(dated.window, real.window), dated.now)

    def spent(self, now: float | None = None) -> Spent:
        """What is spent of each cap: by the dates given and (unless simulated) by the device clock, the larger."""
        with self.store._lock:
            return self._spent(_now(now))

    def charge(self, question: str, epsilon: float, now: float | None = None, *, key: str | None = None) -> float:
        """Record `epsilon` for `question` if it fits both caps and `key` is not in the ledger yet (else
        PrivacyBudgetError); returns the entry time, `now`."""
        checks.text(question, "the report's question", 1000)
        epsilon = checks.number(epsilon, "a report's epsilon", 0.0, 1e6, low_open=True)
        now = self._dated(now)  # checked before the transaction: a time far ahead would hold every window shut
        self.store._outside_batch("a privacy ledger charge")  # a rolled-back batch would undo a spent epsilon
        with self.store._transaction():
            self._once(question, key)
            clock = time.time()
            dated, real = self._views(now, clock)
            for spent, at, when in ((dated, now, ""), (real, clock, " of the device clock")):
                if spent is not None:
                    self._check(question, epsilon, spent, at, when)
            self._insert(now, question, float(epsilon), key)
        return now

    def taken(self, key: str) -> bool:
        """Whether an entry with `key` is in the ledger."""
        checks.text(key, "the entry's key", 1000)
        with self.store._lock:
            return bool(self.store._read("SELECT 1 FROM privacy_ledger WHERE key = ? LIMIT 1", (key,)))

    def _once(self, question: str, key: str | None) -> None:
        if key is not None and self.taken(key):  # inside the caller's transaction: two threads cannot both pass
            raise PrivacyBudgetError(f"the {question} entry is refused: this device has one already ({key}), and it "
                                     "counts once. Nothing was reported.")

    def _check(self, question: str, epsilon: float, spent: Spent, at: float, when: str) -> None:
        """PrivacyBudgetError when `epsilon` does not fit; `at`: the time the windows were asked for."""
        for label, used, cap, days in (("daily", spent.day, self.budget.per_day, 1),
                                       ("30-day", spent.window, self.budget.per_30_days, WINDOW_DAYS)):
            if used + epsilon > cap + _EPS_SLACK and spent.now > at + AHEAD:  # measured from an entry far ahead
                raise PrivacyBudgetError(
                    f"the {question} report (epsilon {epsilon:g}) is refused: the privacy ledger holds a report "
                    f"dated {_day(spent.now)}, after {'the device clock' if when else 'this report'} "
                    f"({_day(at)}): the device clock went back since it was made (or ran ahead then), and a clock "
                    f"set back frees no budget, so {used:g} of the {label} privacy budget of {cap:g} counts until "
                    f"{_day(spent.now + days * DAY)}. If the device clock is wrong, set it right. Nothing was "
                    "reported.")
            if used + epsilon > cap + _EPS_SLACK:
                raise PrivacyBudgetError(
                    f"the {question} report (epsilon {epsilon:g}) is refused: this device has spent "
                    f"{used:g} of its {label} privacy budget of {cap:g} over the last {days} day(s){when}; "
                    "budget returns only as old reports leave the window. Nothing was reported.")

    def _insert(self, ts: float, question: str, epsilon: float, key: str | None) -> None:
        self.store.db.execute("INSERT INTO privacy_ledger (ts, question, epsilon, clock, key) VALUES (?, ?, ?, ?, ?)",
                              (ts, question, epsilon, time.time(), key))

    def note(self, question: str, now: float | None = None, *, key: str | None = None) -> float:
        """Record an entry that spends nothing (a refused federated round, one run without DP); returns its time,
        `now`. PrivacyBudgetError when `key` is in the ledger already."""
        checks.text(question, "the entry's question", 1000)
        now = self._dated(now)
        self.store._outside_batch("a privacy ledger note")  # a keyed note counts a round once: a rollback
        with self.store._transaction():                     # would let the device take part twice
            self._once(question, key)
            self._insert(now, question, 0.0, key)
        return now

    def entries(self) -> list[tuple[float, str, float]]:
        with self.store._lock:
            return [tuple(r) for r in self.store._read("SELECT ts, question, epsilon FROM privacy_ledger ORDER BY id")]


def in_memory(store: HistoryStore) -> bool:
    return str(store.path) == ":memory:"


def ledger_time(value) -> bool:
    """A ledger date as edgerec writes one: a finite number of epoch seconds from 0 to MAX_TS."""
    return isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= MAX_TS


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))  # ts <= MAX_TS + 30 days: within what gmtime takes


def _now(now) -> float:
    """The device clock, or a given time: epoch seconds within what the calendar functions handle."""
    return time.time() if now is None else checks.timestamp(now, "now", allow_none=False)
