"""Guards of retention (runtime/retention.py): both sides of each bound of a Retention, its refusals word
for word (short, and never failing on a huge number, nor do the argument checks), ages far past a float's
range, the cutoff and the cap by hand, the refusal of an event older than the history keeps, and
items_since's refusals."""

from __future__ import annotations

import math

import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import checks
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.retention import DAY, KEEP_EVERYTHING, Retention, require_kept

EVENTS_SAY = "Retention.max_events is a whole number of events >= 0 (got {})"
DAYS_SAY = "Retention.max_age_days is a number of days > 0, math.inf for no age limit (got {})"
NOW = 1_000_000_000.0  # 2001-09-09


@pytest.mark.parametrize("events", [0, 1, 10_000, (1 << 62) - 1, 1 << 62])
def test_max_events_from_zero_up_to_two_to_the_62_is_kept_as_given(events):
    assert Retention(max_events=events).max_events == events


@pytest.mark.parametrize("events, shown", [
    (-1, "-1"), ((1 << 62) + 1, str((1 << 62) + 1)), (1 << 63, str(1 << 63)), (2.0, "2.0"), (True, "True"),
    (None, "None"), ("5", "'5'"), pytest.param(10**5000, "an int of 16610 bits", id="huge"), ("9" * 70, "'" + "9" * 56 + "...")])
def test_max_events_outside_its_range_or_of_another_type_is_refused_in_a_short_message(events, shown):
    with pytest.raises(ConfigError) as caught:
        Retention(max_events=events)
    assert str(caught.value) == EVENTS_SAY.format(shown)


@pytest.mark.parametrize("days, shown", [
    (0, "0"), (0.0, "0.0"), (-1e-9, "-1e-09"), (-math.inf, "-inf"), (math.nan, "nan"), (True, "True"),
    ("730", "'730'"), (None, "None"), pytest.param(-10**5000, "an int of 16610 bits", id="huge"),
    ("x" * 58, "'" + "x" * 58 + "'"), ("x" * 59, "'" + "x" * 56 + "...")])  # shown whole up to 60 characters
def test_max_age_days_not_above_zero_or_not_a_number_is_refused_in_a_short_message(days, shown):
    with pytest.raises(ConfigError) as caught:
        Retention(max_age_days=days)
    assert str(caught.value) == DAYS_SAY.format(shown)


def test_the_cutoff_and_the_cap_by_hand():
    assert Retention().max_events == 10_000 and Retention().max_age_days == 730.0
    assert Retention(max_age_days=2.5).cutoff(NOW) == NOW - 216_000.0 and DAY == 86_400
    assert Retention(max_age_days=1e-9).cutoff(NOW) == NOW - 86_400e-9
    assert Retention(max_age_days=math.inf).cutoff(NOW) == -math.inf
    seven = Retention(max_events=7)
    assert (seven.cap(), seven.cap(3), seven.cap(7), seven.cap(8), seven.cap(0)) == (7, 3, 7, 7, 0)
    assert Retention(max_events=0).cap() == 0 and Retention(max_events=0).cap(5) == 0
    assert (KEEP_EVERYTHING.max_events, KEEP_EVERYTHING.max_age_days) == (10**9, 10**7)
    assert KEEP_EVERYTHING.cutoff(253_402_300_799.0) < 0  # the last second of year 9999: every event kept


@pytest.mark.parametrize("days", [10**305, 10**400, 1e300, 1e308], ids=["int 1e305", "int 1e400", "1e300", "1e308"])
def test_an_age_limit_past_a_floats_range_keeps_everything_instead_of_failing_every_read(tmp_path, days):
    retention = Retention(max_age_days=days)
    assert retention.cutoff(NOW) == -math.inf or retention.cutoff(NOW) < -1e300
    store = HistoryStore(tmp_path / "h.db", retention)
    store.record("p", "first", "play", ts=0.0)
    assert [e.item for e in store.events("p")] == ["first"] and store.count() == 1 and store.profiles() == ["p"]
    assert store.prune() == 0


def test_the_largest_max_events_reads_and_prunes(tmp_path):
    store = HistoryStore(tmp_path / "h.db", Retention(max_events=1 << 62))
    store.record("p", "a", "play")
    assert [e.item for e in store.events("p")] == ["a"] and store.count("p") == 1 and store.prune() == 0


def test_an_event_older_than_the_history_keeps_is_refused_in_words_at_the_exact_cutoff():
    two_and_a_half = Retention(max_age_days=2.5)
    cutoff = two_and_a_half.cutoff(NOW)
    require_kept(two_and_a_half, cutoff, cutoff)  # at the cutoff: kept
    with pytest.raises(ConfigError) as caught:
        require_kept(two_and_a_half, cutoff - 0.001, cutoff)
    assert str(caught.value) == (
        "the event's time (2001-09-06) is older than this history keeps (the last 2.5 days, "
        "Retention.max_age_days): record events as they happen, or open the history with a Retention that "
        "keeps older ones")


def test_items_since_refuses_what_is_not_a_list_of_event_names_or_a_time(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    store.record("p", "a", "play")
    assert store.items_since(0.0, ("play",)) == ["a"] and store.items_since(0.0, []) == []
    for events, message in ((None, "events must be a list of strings (got NoneType None)"),
                            ("play", "events must be a list of strings, e.g. ['play'], not a single string "
                                     "(got 'play')"),
                            ([""], "each of events must not be empty")):
        with pytest.raises(ConfigError) as caught:
            store.items_since(0.0, events)
        assert str(caught.value) == message
    with pytest.raises(ConfigError) as caught:
        store.items_since(math.nan, ("play",))
    assert str(caught.value) == "since must be a finite number from -inf to inf (got nan)"


def test_the_argument_checks_refuse_an_int_too_long_to_print_in_words():
    huge = 10**5000  # past Python's 4,300-digit limit: repr raises ValueError
    for check, message in (
            (lambda: checks.integer(huge, "k"), "k must be an integer from 0 to 2147483648 (got an int of 16610 bits)"),
            (lambda: checks.integer(-huge, "k"), "k must be an integer from 0 to 2147483648 (got an int of 16610 bits)"),
            (lambda: checks.number(huge, "since"), "since must be a finite number from -inf to inf "
                                                   "(got an int of 16610 bits)")):
        with pytest.raises(ConfigError) as caught:
            check()
        assert str(caught.value) == message
    assert checks._shown(10**4000) == repr(10**4000)[:57] + "..."  # within the limit: cut as any long value


def test_a_newcomers_kept_state_does_not_outlive_their_onboarding_choices(golden_bundle, tmp_path):
    """A user with choices and no event kept a cached state with an empty window, which never expired: the
    choices retention no longer keeps steered every list until something was written again."""
    import time

    from edgerec.runtime import Recommender
    from edgerec.runtime.policies import column_values

    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx",
                          retention=Retention(max_age_days=0.5)) as rec:
        now = time.time() + 60
        rec.history.clock = lambda: now
        genre = sorted(column_values(rec.catalog, "genre"))[-1]
        plain = [r.item_id for r in rec.recommend("ann", k=5)]
        rec.onboard("ann", genres=[genre])
        steered = [r.item_id for r in rec.recommend("ann", k=5)]
        assert steered != plain  # the choice shows
        rec.history.clock = lambda: now + 0.8 * DAY  # nothing written since: the choice is past max_age_days
        assert rec.history.preferences("ann") == {}
        assert [r.item_id for r in rec.recommend("ann", k=5)] == plain
