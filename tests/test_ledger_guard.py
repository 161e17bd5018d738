"""The privacy ledger one rule at a time (its mutation run asked for these; tools/mutation-scores.md):
the windows' edges, what is stored, the budget's own bounds, and the refusal's words. Tests that walk
simulated days in one real second use a simulation's ledger (`simulation=True`); the caps by the device
clock are tested at the end."""

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
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0), simulation=True)
    ledger.charge("q", 1.0, T0)
    with pytest.raises(PrivacyBudgetError, match="daily"):
        ledger.charge("q", 0.01, T0 + DAY - 1)
    assert ledger.spent(T0 + DAY - 1).day == 1.0 and ledger.spent(T0 + DAY).day == 0.0
    assert ledger.charge("q", 1.0, T0 + DAY) == T0 + DAY  # the first entry is a day old: out of the day


def test_the_30_day_window_frees_an_entry_exactly_30_days_later(store):
    ledger = PrivacyLedger(store, Budget(per_day=2.0, per_30_days=2.0), simulation=True)
    ledger.charge("q", 2.0, T0)
    with pytest.raises(PrivacyBudgetError, match="30-day"):
        ledger.charge("q", 0.01, T0 + WINDOW_DAYS * DAY - 1)
    spent = ledger.spent(T0 + WINDOW_DAYS * DAY - 1)
    assert (spent.day, spent.window, spent.now) == (0.0, 2.0, T0 + WINDOW_DAYS * DAY - 1)
    assert ledger.spent(T0 + WINDOW_DAYS * DAY).window == 0.0
    ledger.charge("q", 2.0, T0 + WINDOW_DAYS * DAY)


def test_spent_sums_what_each_window_holds(store):
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=5.0), simulation=True)
    ledger.charge("a", 0.25, T0 - 3 * DAY)
    ledger.charge("b", 0.5, T0 - 2 * DAY)
    ledger.charge("c", 0.75, T0)
    spent = ledger.spent(T0 + 60)
    assert (spent.day, spent.window, spent.now) == (0.75, 1.5, T0 + 60)


def test_a_charge_exactly_up_to_each_cap_fits_and_the_least_bit_more_does_not(store):
    ledger = PrivacyLedger(store, Budget(per_day=0.3, per_30_days=0.6), simulation=True)
    for _ in range(3):
        ledger.charge("q", 0.1, T0)  # 0.1 + 0.1 + 0.1 is 0.30000000000000004: the slack lets it fit
    with pytest.raises(PrivacyBudgetError, match="daily"):
        ledger.charge("q", 1e-6, T0)
    ledger.charge("q", 0.3, T0 + DAY)
    with pytest.raises(PrivacyBudgetError, match="30-day"):
        ledger.charge("q", 1e-6, T0 + 2 * DAY)
    assert [e[2] for e in ledger.entries()] == [0.1, 0.1, 0.1, 0.3]


def test_the_refusal_says_what_was_spent_of_which_cap(store):
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=1.5), simulation=True)
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


def test_entries_keep_the_question_epsilon_and_the_time_never_before_the_newest(store, clock):
    ledger = PrivacyLedger(store, Budget(per_day=5.0, per_30_days=10.0))
    assert ledger.charge("first", 0.5, T0) == T0
    assert ledger.charge("set back", 0.25, T0 - 100) == T0 - 100  # dated as given; the caps still count it
    assert ledger.note("declined round", T0 - 50) == T0 - 50
    assert ledger.note("later", T0 + 5) == T0 + 5
    assert ledger.entries() == [(T0, "first", 0.5), (T0 - 100, "set back", 0.25), (T0 - 50, "declined round", 0.0),
                                (T0 + 5, "later", 0.0)]
    assert ledger.spent(T0 + 5).day == 0.75  # notes spend nothing


def test_a_set_back_clock_measures_the_windows_from_the_newest_entry(store, clock):
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


def test_charge_refuses_a_bad_question_epsilon_or_time_before_writing(store, clock):
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


def test_each_refused_argument_is_named(store, clock):
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


def test_the_float_slack_is_inclusive(store, clock):
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0))
    ledger.charge("q", 1.0 + 1e-9, T0)  # exactly the cap plus the slack still fits
    with pytest.raises(PrivacyBudgetError):
        ledger.charge("q", 1e-9, T0)


# ---------------------------------------------------------------- the caps by the device clock (2026-12-05)


@pytest.fixture
def clock(monkeypatch):
    """The device clock, set by the test: clock.now = ..."""
    import edgerec.runtime.privacy_ledger as module

    class Clock:
        now = T0

    monkeypatch.setattr(module.time, "time", lambda: Clock.now)
    return Clock


def test_a_report_dated_into_an_empty_day_still_counts_on_the_real_day(store, clock):
    """Before, `now=` a day apart (back or forward) gave each report an empty day of the ledger: a device
    could spend its whole 30-day budget in one real second. The caps now hold by the device clock too."""
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0))
    assert ledger.charge("health", 1.0, T0 - 3 * DAY) == T0 - 3 * DAY  # dated back: the entry keeps its date
    for dated in (T0 - 2 * DAY, T0 + DAY, T0):
        with pytest.raises(PrivacyBudgetError) as caught:
            ledger.charge("experiment:x", 0.5, dated)
        assert str(caught.value) == (
            "the experiment:x report (epsilon 0.5) is refused: this device has spent 1 of its daily privacy budget "
            "of 1 over the last 1 day(s) of the device clock; budget returns only as old reports leave the window. "
            "Nothing was reported.")
    assert ledger.spent(T0 - 2 * DAY).day == 1.0  # what an app reads of its budget says so too
    clock.now = T0 + DAY - 1
    with pytest.raises(PrivacyBudgetError, match="device clock"):
        ledger.charge("health", 0.5, T0 + DAY)
    clock.now = T0 + DAY  # a real day later the day's budget is back, whatever the dates
    assert ledger.charge("health", 1.0, T0 - 2 * DAY) == T0 - 2 * DAY
    assert ledger.entries() == [(T0 - 3 * DAY, "health", 1.0), (T0 - 2 * DAY, "health", 1.0)]


def test_the_30_day_cap_holds_by_the_device_clock_too(store, clock):
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=2.0))
    for day, dated in ((0, T0 - 40 * DAY), (1, T0 + DAY)):  # two real days, dated 41 days apart
        clock.now = T0 + day * DAY
        ledger.charge("q", 1.0, dated)
    clock.now = T0 + 2 * DAY
    with pytest.raises(PrivacyBudgetError) as caught:
        ledger.charge("q", 0.5, T0 + 3 * DAY)  # a day ahead of the clock: its dated windows hold 1
    assert "spent 2 of its 30-day privacy budget of 2 over the last 30 day(s) of the device clock" in str(caught.value)
    clock.now = T0 + WINDOW_DAYS * DAY  # the first real day's entry leaves the real window
    ledger.charge("q", 1.0, T0 + (WINDOW_DAYS + 1) * DAY)


def test_setting_the_device_clock_back_frees_nothing(store, clock):
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0))
    ledger.charge("q", 1.0, T0)
    clock.now = T0 - 10 * DAY  # measured from the newest entry's clock, as the dated windows are
    with pytest.raises(PrivacyBudgetError, match="device clock"):
        ledger.charge("q", 0.5)  # dated by the clock set back


def test_a_note_spends_nothing_but_keeps_its_clock(store, clock):
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0))
    ledger.note("declined round", T0 - 5 * DAY)
    ledger.charge("q", 1.0, T0 - 4 * DAY)
    assert store.db.execute("SELECT ts, clock, epsilon FROM privacy_ledger ORDER BY id").fetchall() == [
        (T0 - 5 * DAY, T0, 0.0), (T0 - 4 * DAY, T0, 1.0)]


def test_a_simulations_ledger_checks_the_dates_given_only(store, clock):
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0), simulation=True)
    for day in range(10):  # ten simulated days in one real second
        ledger.charge("q", 1.0, T0 + day * DAY)
    with pytest.raises(PrivacyBudgetError) as caught:
        ledger.charge("q", 0.5, T0 + 9 * DAY)
    assert "daily privacy budget of 1 over the last 1 day(s); budget" in str(caught.value)  # no clock named
    assert ledger.spent(T0 + 10 * DAY).day == 0.0


def test_a_ledger_in_memory_is_refused_unless_it_is_a_simulations():
    memory = HistoryStore(":memory:")
    try:
        with pytest.raises(ConfigError) as caught:
            PrivacyLedger(memory)
        assert str(caught.value) == (
            "a privacy ledger needs the history in a file: kept in memory it forgets what was spent when the app "
            "restarts, so no budget would hold; open the history (the Recommender) with a file path, or pass "
            "simulation=True in a simulation")
        assert PrivacyLedger(memory, simulation=True).charge("q", 1.0, T0) == T0
        with pytest.raises(ConfigError, match="simulation must be True or False"):
            PrivacyLedger(memory, simulation="yes")
    finally:
        memory.close()


def test_a_ledger_written_before_the_clock_counts_its_entries_at_their_dates(tmp_path, clock):
    import sqlite3

    path = tmp_path / "old.db"
    HistoryStore(path).close()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE privacy_ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, "
               "question TEXT NOT NULL, epsilon REAL NOT NULL)")
    db.execute("INSERT INTO privacy_ledger (ts, question, epsilon) VALUES (?, 'old', 1.0)", (T0 - 60,))
    db.commit()
    db.close()
    store = HistoryStore(path)
    try:
        ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0))
        with pytest.raises(PrivacyBudgetError, match="device clock"):  # its clock is its date: a minute ago
            ledger.charge("q", 0.5, T0 + DAY)
        assert ledger.entries() == [(T0 - 60, "old", 1.0)]
        PrivacyLedger(store)  # opened again: the column is there once
    finally:
        store.close()
