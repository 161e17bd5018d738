"""The privacy ledger one rule at a time (its mutation run asked for these; tools/mutation-scores.md):
the windows' edges, what is stored, the budget's own bounds, and the refusal's words."""

from __future__ import annotations

import pytest

from edgerec.errors import ConfigError, PrivacyBudgetError
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.privacy_ledger import DAY, WINDOW_DAYS, Budget, PrivacyLedger

T0 = 1_800_000_000.0


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "h.db")
    yield s
    s.close()


def test_the_day_window_frees_an_entry_exactly_one_day_later(store):
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0))
    ledger.charge("q", 1.0, T0)
    with pytest.raises(PrivacyBudgetError, match="daily"):
        ledger.charge("q", 0.01, T0 + DAY - 1)
    assert ledger.spent(T0 + DAY - 1).day == 1.0 and ledger.spent(T0 + DAY).day == 0.0
    assert ledger.charge("q", 1.0, T0 + DAY) == T0 + DAY  # the first entry is a day old: out of the day


def test_the_30_day_window_frees_an_entry_exactly_30_days_later(store):
    ledger = PrivacyLedger(store, Budget(per_day=2.0, per_30_days=2.0))
    ledger.charge("q", 2.0, T0)
    with pytest.raises(PrivacyBudgetError, match="30-day"):
        ledger.charge("q", 0.01, T0 + WINDOW_DAYS * DAY - 1)
    spent = ledger.spent(T0 + WINDOW_DAYS * DAY - 1)
    assert (spent.day, spent.window, spent.now) == (0.0, 2.0, T0 + WINDOW_DAYS * DAY - 1)
    assert ledger.spent(T0 + WINDOW_DAYS * DAY).window == 0.0
    ledger.charge("q", 2.0, T0 + WINDOW_DAYS * DAY)


def test_spent_sums_what_each_window_holds(store):
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=5.0))
    ledger.charge("a", 0.25, T0 - 3 * DAY)
    ledger.charge("b", 0.5, T0 - 2 * DAY)
    ledger.charge("c", 0.75, T0)
    spent = ledger.spent(T0 + 60)
    assert (spent.day, spent.window, spent.now) == (0.75, 1.5, T0 + 60)


def test_a_charge_exactly_up_to_each_cap_fits_and_the_least_bit_more_does_not(store):
    ledger = PrivacyLedger(store, Budget(per_day=0.3, per_30_days=0.6))
    for _ in range(3):
        ledger.charge("q", 0.1, T0)  # 0.1 + 0.1 + 0.1 is 0.30000000000000004: the slack lets it fit
    with pytest.raises(PrivacyBudgetError, match="daily"):
        ledger.charge("q", 1e-6, T0)
    ledger.charge("q", 0.3, T0 + DAY)
    with pytest.raises(PrivacyBudgetError, match="30-day"):
        ledger.charge("q", 1e-6, T0 + 2 * DAY)
    assert [e[2] for e in ledger.entries()] == [0.1, 0.1, 0.1, 0.3]


def test_the_refusal_says_what_was_spent_of_which_cap(store):
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=1.5))
    ledger.charge("q", 0.75, T0)
    with pytest.raises(PrivacyBudgetError) as day:
        ledger.charge("items_consumed", 0.5, T0)
    assert str(day.value) == ("the items_consumed report (epsilon 0.5) is refused: this device has spent 0.75 of its "
                              "daily privacy budget of 1 over the last 1 day(s); budget returns only as old reports "
                              "leave the window. Nothing was reported.")
    ledger.charge("q", 0.75, T0 + DAY)
    with pytest.raises(PrivacyBudgetError) as window:
        ledger.charge("health", 0.25, T0 + 2 * DAY)
    assert "spent 1.5 of its 30-day privacy budget of 1.5 over the last 30 day(s)" in str(window.value)


def test_entries_keep_the_question_epsilon_and_the_time_never_before_the_newest(store):
    ledger = PrivacyLedger(store, Budget(per_day=5.0, per_30_days=10.0))
    assert ledger.charge("first", 0.5, T0) == T0
    assert ledger.charge("set back", 0.25, T0 - 100) == T0  # a clock set back is stamped at the newest entry
    assert ledger.note("declined round", T0 - 50) == T0
    assert ledger.note("later", T0 + 5) == T0 + 5
    assert ledger.entries() == [(T0, "first", 0.5), (T0, "set back", 0.25), (T0, "declined round", 0.0),
                                (T0 + 5, "later", 0.0)]
    assert ledger.spent(T0 + 5).day == 0.75  # notes spend nothing


def test_a_set_back_clock_measures_the_windows_from_the_newest_entry(store):
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0))
    ledger.charge("q", 1.0, T0 + DAY)
    spent = ledger.spent(T0)  # asked a day before the newest entry
    assert (spent.day, spent.now) == (1.0, T0 + DAY)


def test_the_budget_bounds():
    assert Budget() == Budget(per_day=1.0, per_30_days=10.0)
    Budget(per_day=2.0, per_30_days=2.0)  # equal caps are a budget
    Budget(per_day=1e6, per_30_days=1e6)
    for per_day, per_30 in ((2.0, 1.0), (0.0, 1.0), (1.0, 0.0), (-1.0, 1.0), (1.0, 1e6 + 1)):
        with pytest.raises(ConfigError, match="Budget|per_day"):
            Budget(per_day=per_day, per_30_days=per_30)
    with pytest.raises(ConfigError, match=r"0 < per_day <= per_30_days \(got 2.0, 1.0\)"):
        Budget(per_day=2.0, per_30_days=1.0)


def test_a_default_ledger_has_the_default_budget_and_checks_its_store(store):
    assert PrivacyLedger(store).budget == Budget()
    with pytest.raises(ConfigError, match="ledger's store"):
        PrivacyLedger(object())
    with pytest.raises(ConfigError, match="budget"):
        PrivacyLedger(store, budget={"per_day": 1.0})


def test_charge_refuses_a_bad_question_epsilon_or_time_before_writing(store):
    ledger = PrivacyLedger(store, Budget(per_day=5.0, per_30_days=10.0))
    for question, epsilon, now in (("", 1.0, T0), ("q" * 1001, 1.0, T0), ("q", 0.0, T0), ("q", 1e6 + 1, T0),
                                   ("q", 1.0, 1e12), ("q", float("nan"), T0)):
        with pytest.raises(ConfigError):
            ledger.charge(question, epsilon, now)
    ledger.charge("q" * 1000, 1e-9, T0)
    for question, now in (("", T0), ("q" * 1001, T0), ("q", -1.0)):
        with pytest.raises(ConfigError):
            ledger.note(question, now)
    assert len(ledger.entries()) == 1


def test_without_a_time_the_device_clock_is_used(store, monkeypatch):
    import edgerec.runtime.privacy_ledger as module

    monkeypatch.setattr(module.time, "time", lambda: T0 + 7)
    ledger = PrivacyLedger(store)
    assert ledger.charge("q", 0.5) == T0 + 7 and ledger.note("n") == T0 + 7
    assert ledger.spent().now == T0 + 7


def test_each_refused_argument_is_named(store):
    ledger = PrivacyLedger(store, Budget(per_day=5.0, per_30_days=10.0))
    cases = [(lambda: ledger.charge("", 1.0, T0), "the report's question must not be empty"),
             (lambda: ledger.charge("q", 0.0, T0), r"a report's epsilon must be a finite number above 0 up to 1e\+06"),
             (lambda: ledger.note("", T0), "the entry's question must not be empty"),
             (lambda: ledger.note("q" * 1001, T0), "the entry's question is 1,001 characters long; the limit is 1000")]
    for call, message in cases:
        with pytest.raises(ConfigError, match=message):
            call()
    ledger.note("n" * 1000, T0)  # a long question (a declined round's reason) is an entry
    assert ledger.entries() == [(T0, "n" * 1000, 0.0)]


def test_the_ledgers_own_arguments_are_named(store):
    for call, message in ((lambda: Budget(per_day=0.0), r"Budget.per_day must be a finite number above 0 up to 1e\+06"),
                          (lambda: Budget(per_30_days=0.0), r"Budget.per_30_days must be a finite number above 0"),
                          (lambda: PrivacyLedger(None), r"the ledger's store \(rec.history\) must be a HistoryStore"),
                          (lambda: PrivacyLedger(store, 1.0), "budget must be a Budget"),
                          (lambda: PrivacyLedger(store).charge("q", 0.1, -1.0),
                           r"now \(epoch seconds\) must be a finite number from 0 up to 1e\+11")):
        with pytest.raises(ConfigError, match=message):
            call()


def test_the_float_slack_is_inclusive(store):
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0))
    ledger.charge("q", 1.0 + 1e-9, T0)  # exactly the cap plus the slack still fits
    with pytest.raises(PrivacyBudgetError):
        ledger.charge("q", 1e-9, T0)
