"""Audit H2/H6 (Dec 2026) on the device side: an app stage's policy and filters are its own copies; the user
cache keeps no empty window and a bounded number of windows; the privacy ledger refuses a `now=` far ahead
of the device clock and names an entry dated ahead when it refuses; an output deep inside a bundle is refused
by every caller of output_refusal (the device benchmark's --json included)."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest

from edgerec.errors import ConfigError, HistoryError, PrivacyBudgetError
from edgerec.runtime import Filters, Policy, Recommender, Stage
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.outputs import output_refusal
from edgerec.runtime.privacy_ledger import DAY, Budget, PrivacyLedger
from edgerec.runtime.request import UserState
from edgerec.runtime.user_state import UserCache, UserEntry, Window
from edgerec.runtime.vocab import MAX_TS

T0 = 1_800_000_000.0


@pytest.fixture
def rec(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "history.db") as opened:
        yield opened


# ---------------------------------------------------------------- 1: an app stage's policy and filters

def test_an_app_stage_changing_the_policy_or_filters_in_place_changes_them_for_its_request_only(rec):
    """The stage set rec.policy's fields for good and appended to the caller's Filters list."""
    seen = []

    def meddling(request):
        request.policy.max_per_creator, request.policy.diversity = 1, 1.0
        request.policy.extra.setdefault("notes", []).append("meddled")
        request.policy.extra.setdefault("seen", set()).add("meddled")
        request.filters.exclude_items.append(rec.catalog.item_id(0))
        return request

    def later(request):  # a later stage of the same request sees what the first one set
        seen.append((request.policy.max_per_creator, list(request.filters.exclude_items)))
        return request

    rec.pipeline.insert_after("policies", Stage("meddler", meddling, required=False))
    rec.pipeline.insert_after("meddler", Stage("later", later, required=False))
    before = (rec.policy.max_per_creator, rec.policy.diversity, dict(rec.policy.extra))
    mine, policy = Filters(exclude_items=[rec.catalog.item_id(1)]), Policy(extra={"notes": ["mine"], "seen": {"mine"}})
    rec.recommend("alice", k=5, filters=mine, policy=policy)
    rec.recommend("alice", k=5, filters=mine)
    assert seen[0] == (1, [rec.catalog.item_id(1), rec.catalog.item_id(0)])  # the change held for its request
    assert (rec.policy.max_per_creator, rec.policy.diversity, dict(rec.policy.extra)) == before
    assert mine.exclude_items == [rec.catalog.item_id(1)]
    assert policy.extra == {"notes": ["mine"], "seen": {"mine"}}
    assert (policy.max_per_creator, policy.diversity) == (None, None)


# ---------------------------------------------------------------- 2: the user cache's windows

def _entry(n: int) -> UserEntry:
    window = Window(np.arange(n, dtype=np.int64), np.zeros(n, np.int8), n, np.zeros(n, np.float64))
    return UserEntry(("k",), UserState([], set(), [], [], Counter(), Counter()), window=window)


def test_empty_windows_are_not_kept_and_the_kept_windows_are_bounded_in_number():
    cache = UserCache(size=1, window_events=1_000, windows=3)
    for i in range(10):  # guests asking for lists: no event, no window kept
        cache.put(f"guest-{i}", _entry(0))
    assert len(cache._windows) == 0 and cache._window_total == 0
    for i in range(10):  # users of one event each: 10 events fit the event bound, the number bound holds
        cache.put(f"user-{i}", _entry(1))
    assert list(cache._windows) == ["user-6", "user-7", "user-8"] and cache._window_total == 3


def test_many_guest_names_leave_nothing_in_memory_beyond_the_cache(rec):
    for i in range(rec.users.size + 20):
        rec.recommend(f"guest-{i}", k=5)
    assert len(rec.users._windows) == 0 and len(rec.users._entries) == rec.users.size


# ---------------------------------------------------------------- 3: the ledger and a date far ahead

@pytest.fixture
def clock(monkeypatch):
    """The device clock, set by the test: clock.now = ..."""
    import edgerec.runtime.privacy_ledger as module

    class Clock:
        now = T0

    monkeypatch.setattr(module.time, "time", lambda: Clock.now)
    return Clock


@pytest.fixture
def store(tmp_path):
    history = HistoryStore(tmp_path / "ledger.db")
    yield history
    history.close()


def test_a_report_dated_more_than_a_day_after_the_device_clock_is_refused_before_the_ledger(store, clock):
    """now= 100 years ahead was accepted and held every later report shut until then."""
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0))
    for call in (lambda: ledger.charge("health", 1.0, T0 + 100 * 365 * DAY), lambda: ledger.note("n", T0 + DAY + 1)):
        with pytest.raises(ConfigError, match=r"now \(\d{4}-\d\d-\d\d\) is more than a day after the device clock"):
            call()
    assert ledger.entries() == []
    assert ledger.charge("health", 0.5, T0 + DAY) == T0 + DAY  # a day ahead, as record() allows an event
    simulated = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0), simulation=True)
    assert simulated.charge("q", 0.1, T0 + 400 * DAY) == T0 + 400 * DAY  # a simulation walks its own days


def test_a_report_made_while_the_clock_ran_ahead_is_named_when_it_holds_later_reports_back(store, clock):
    """The refusal blamed "the last 1 day(s)" for years; it names the entry ahead now, and frees nothing."""
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0))
    ahead = T0 + 3 * 365 * DAY
    clock.now = ahead  # a glitch of the device clock, set right after the report
    ledger.charge("health", 1.0)
    clock.now = T0
    with pytest.raises(PrivacyBudgetError) as caught:
        ledger.charge("health", 0.1)
    assert str(caught.value) == (
        "the health report (epsilon 0.1) is refused: the privacy ledger holds a report dated 2030-01-14, after this "
        "report (2027-01-15): the device clock went back since it was made (or ran ahead then), and a clock set "
        "back frees no budget, so 1 of the daily privacy budget of 1 counts until 2030-01-15. If the device clock "
        "is wrong, set it right. Nothing was reported.")
    assert len(ledger.entries()) == 1
    clock.now = ahead + DAY  # its day has passed: the budget is back
    assert ledger.charge("health", 1.0) == ahead + DAY


@pytest.mark.parametrize("column", ["ts", "clock"])
@pytest.mark.parametrize("value", [1e20, 253_402_300_799.0, float("inf"), -5.0, "soon"])
def test_a_ledger_entry_dated_outside_the_calendar_is_a_history_error_that_frees_nothing(store, clock, column, value):
    """A hand-edited row past the calendar raised a raw OverflowError (1e20), or named the year 10000; text or
    a negative date must not read as an old, freed entry either."""
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0))
    row = {"ts": T0, "clock": T0, column: value}
    with store._transaction():
        store.db.execute("INSERT INTO privacy_ledger (ts, question, epsilon, clock) VALUES (?, 'q', 5.0, ?)",
                         (row["ts"], row["clock"]))
    for call in (lambda: ledger.charge("health", 0.1), ledger.spent):
        with pytest.raises(HistoryError, match="^the privacy ledger holds an entry whose date is not a time") as caught:
            call()
        assert "altered" in str(caught.value) and "backup" in str(caught.value)
    assert len(ledger.entries()) == 1  # nothing was charged


def test_a_ledger_entry_at_the_last_time_edgerec_writes_still_holds_the_budget(store, clock):
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0))
    with store._transaction():
        store.db.execute("INSERT INTO privacy_ledger (ts, question, epsilon, clock) VALUES (?, 'q', 5.0, NULL)",
                         (MAX_TS,))
    with pytest.raises(PrivacyBudgetError, match="counts until 5138-"):
        ledger.charge("health", 0.1)


def test_recover_drops_an_altered_ledger_row_and_counts_the_whole_budget_spent(store, clock, tmp_path):
    """`history recover` copied the altered row as it was, so the recovered device refused every report with
    the same HistoryError; the row is an unknown spending now, as an unreadable one is."""
    from edgerec.runtime.history_recover import recover

    PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0)).charge("health", 0.1)
    with store._transaction():
        store.db.execute("INSERT INTO privacy_ledger (ts, question, epsilon, clock) VALUES (1e20, 'q', 0.1, NULL)")
    store.close()
    report = recover(tmp_path / "ledger.db", tmp_path / "recovered.db")
    assert report["privacy_ledger"] == 1 and report["unreadable"] == 1
    fresh = HistoryStore(tmp_path / "recovered.db")
    try:
        with pytest.raises(PrivacyBudgetError):  # not the altered file's HistoryError: the budget counts as spent
            PrivacyLedger(fresh, Budget(per_day=1.0, per_30_days=10.0)).charge("health", 0.1)
    finally:
        fresh.close()


# ---------------------------------------------------------------- 5: outputs deep inside a bundle

def test_a_file_deep_inside_a_bundle_is_refused_and_a_new_file_beside_its_files_is_not(bundle_copy, tmp_path):
    nested = bundle_copy / "items" / "embeddings.npy"
    assert output_refusal(nested) == ("embeddings.npy is a file of a bundle (bundle); writing over it would break "
                                      "it: choose another file for the output")
    assert output_refusal(bundle_copy / "items" / "new.json") is None  # the user's choice
    (tmp_path / "mine" / "items").mkdir(parents=True)
    (tmp_path / "mine" / "items" / "x.npy").write_bytes(b"x")
    assert output_refusal(tmp_path / "mine" / "items" / "x.npy") is None  # no bundle above it


def test_the_device_benchmark_refuses_a_json_output_deep_inside_a_bundle(bundle_copy, monkeypatch, capsys):
    from edgerec.device_tests import __main__ as entry

    monkeypatch.setattr(entry, "run_bench", lambda *a, **k: pytest.fail("the benchmark ran"))
    nested = bundle_copy / "items" / "embeddings.npy"
    before = hashlib.sha256(nested.read_bytes()).hexdigest()
    assert entry.main([str(bundle_copy), "--requests", "5", "--json", str(nested)]) == 2
    assert "--json embeddings.npy is a file of a bundle" in capsys.readouterr().err
    assert hashlib.sha256(nested.read_bytes()).hexdigest() == before
