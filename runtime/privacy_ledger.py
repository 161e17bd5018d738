"""The privacy ledger: every DP report's epsilon, kept in the device database, and the budget it must fit.

Federated rounds are entered too (runtime/federated.py): a round under DP with its epsilon, a refused
round or one taken without DP with epsilon 0 (`note`), so the ledger shows every round the device saw.

Reports compose sequentially, so what a device has revealed is the sum of the
epsilons it spent. Two caps hold, both over rolling windows: one day, and a hard
cap over 30 days. The ledger is append-only: forget(), retention and catalog
updates never touch it, and the windows are measured against the latest of the
clock and the newest entry, so setting the device clock back frees nothing.
Budget comes back only as entries turn older than the window. A report that
would pass a cap is refused (PrivacyBudgetError) before anything is produced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from edgerec.errors import ConfigError, PrivacyBudgetError
from edgerec.runtime import checks
from edgerec.runtime.history import HistoryStore

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


class PrivacyLedger:
    def __init__(self, store: HistoryStore, budget: Budget | None = None):
        checks.instance(store, HistoryStore, "the ledger's store (rec.history)", allow_none=False)
        self.store, self.budget = store, checks.instance(budget, Budget, "budget") or Budget()
        with store._transaction():
            store.db.execute("CREATE TABLE IF NOT EXISTS privacy_ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                             "ts REAL NOT NULL, question TEXT NOT NULL, epsilon REAL NOT NULL)")

    def _spent(self, now: float) -> Spent:
        db = self.store.db
        newest = db.execute("SELECT MAX(ts) FROM privacy_ledger").fetchone()[0]
        now = max(now, newest or now)
        day, window = db.execute(
            "SELECT COALESCE(SUM(CASE WHEN ts > ? THEN epsilon END), 0), COALESCE(SUM(epsilon), 0) "
            "FROM privacy_ledger WHERE ts > ?", (now - DAY, now - WINDOW_DAYS * DAY)).fetchone()
        return Spent(float(day), float(window), now)

    def spent(self, now: float | None = None) -> Spent:
        with self.store._lock:
            return self._spent(_now(now))

    def charge(self, question: str, epsilon: float, now: float | None = None) -> float:
        """Record `epsilon` for `question` if it fits both caps (else PrivacyBudgetError); returns the entry time."""
        checks.text(question, "the report's question", 1000)
        epsilon = checks.number(epsilon, "a report's epsilon", 0.0, 1e6, low_open=True)
        now = _now(now)  # checked before the transaction: a time past MAX_TS would hold every window shut
        with self.store._transaction():
            spent = self._spent(now)
            for label, used, cap, days in (("daily", spent.day, self.budget.per_day, 1),
                                           ("30-day", spent.window, self.budget.per_30_days, WINDOW_DAYS)):
                if used + epsilon > cap + _EPS_SLACK:
                    raise PrivacyBudgetError(
                        f"the {question} report (epsilon {epsilon:g}) is refused: this device has spent "
                        f"{used:g} of its {label} privacy budget of {cap:g} over the last {days} day(s); "
                        "budget returns only as old reports leave the window. Nothing was reported.")
            self.store.db.execute("INSERT INTO privacy_ledger (ts, question, epsilon) VALUES (?, ?, ?)",
                                  (spent.now, question, float(epsilon)))
        return spent.now

    def note(self, question: str, now: float | None = None) -> float:
        """Record an entry that spends nothing (a refused federated round, one run without DP); returns its time."""
        checks.text(question, "the entry's question", 1000)
        now = _now(now)
        with self.store._transaction():
            spent = self._spent(now)
            self.store.db.execute("INSERT INTO privacy_ledger (ts, question, epsilon) VALUES (?, ?, 0)",
                                  (spent.now, question))
        return spent.now

    def entries(self) -> list[tuple[float, str, float]]:
        with self.store._lock:
            return [tuple(r) for r in self.store.db.execute(
                "SELECT ts, question, epsilon FROM privacy_ledger ORDER BY id")]


def _now(now) -> float:
    """The device clock, or a given time: epoch seconds within what the calendar functions handle."""
    return time.time() if now is None else checks.timestamp(now, "now", allow_none=False)
