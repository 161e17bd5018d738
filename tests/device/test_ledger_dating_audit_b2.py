"""The privacy ledger and reporter after audit B2 (Dec 2026): an entry is dated at the time given (one report
dated forward no longer files every later one on its future day, drawing from a day without plays), and an
experiment report whose epsilon is too small is refused before the ledger is charged."""

from __future__ import annotations

import time

import pytest

from edgerec.errors import ConfigError, PrivacyBudgetError
from edgerec.runtime import Recommender, ldp
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.privacy_ledger import DAY, Budget, PrivacyLedger
from edgerec.runtime.reporter import STEPS, PrivateReporter

T0 = 1_800_000_000.0


class Truthful:
    """Randomness under which randomized response keeps the true value: a report says what it drew from."""

    def below(self, n: int) -> int:
        return 0

    def bernoulli(self, p: float) -> bool:
        return True


@pytest.fixture
def store(tmp_path):
    history = HistoryStore(tmp_path / "ledger.db")
    yield history
    history.close()


@pytest.fixture
def rec(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "history.db") as opened:
        yield opened


# ---------------------------------------------------------------- 3: an entry is dated at the time given

def test_an_entry_dated_forward_leaves_later_entries_at_their_own_time(store):
    ledger = PrivacyLedger(store, Budget(per_day=5.0, per_30_days=10.0), simulation=True)
    assert ledger.charge("ahead", 0.5, T0 + 40 * DAY) == T0 + 40 * DAY
    assert ledger.charge("today", 0.5, T0) == T0
    assert ledger.note("declined", T0 + 1) == T0 + 1
    assert [e[0] for e in ledger.entries()] == [T0 + 40 * DAY, T0, T0 + 1]


def test_the_caps_still_hold_around_an_entry_dated_back_among_later_ones(store):
    """Dated at `now`, an entry dated back before the newest one must still meet the entries of its own day:
    the caps are measured at the newest entry and either side of `now`."""
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=100.0), simulation=True)
    ledger.charge("ahead", 0.1, T0 + 40 * DAY)
    ledger.charge("back", 0.6, T0)
    for question, at, epsilon in (("back again", T0 + 3_600, 0.6),  # the same day as "back"
                                  ("just before", T0 - 3_600, 0.6),  # a window holds it and "back"
                                  ("a clock set back", T0 + 20 * DAY, 0.95)):  # the newest entry's day counts
        with pytest.raises(PrivacyBudgetError, match="daily"):
            ledger.charge(question, epsilon, at)
    ledger.charge("the next day", 0.6, T0 + DAY + 1)  # its own day is free
    assert [e[1] for e in ledger.entries()] == ["ahead", "back", "the next day"]


def test_one_report_dated_forward_does_not_empty_every_later_report(rec):
    """category_shares(now=+40 days) made every later report say "nothing consumed", filed on that future day."""
    rec.record("ana", rec.catalog.item_id(5), "play", timestamp=time.time() - 600)
    codes, vocab = rec.catalog.categorical["genre"]
    genre = vocab[int(codes[5])]
    reporter = PrivateReporter(rec, Budget(per_day=1.0, per_30_days=10.0), rng=Truthful())
    labels = lambda r: r["domain"]["labels"][r["value"]]  # noqa: E731
    today = time.strftime("%Y-%m-%d", time.gmtime())
    ahead = reporter.category_shares(0.1, now=time.time() + DAY)  # the furthest ahead a report may be dated
    assert labels(ahead) == "(none)" and ahead["day"] != today  # no play in that future day
    for _ in range(2):
        report = reporter.category_shares(0.1)
        assert (labels(report), report["day"]) == (genre, today)
    assert time.strftime("%Y-%m-%d", time.gmtime(reporter.ledger.entries()[-1][0])) == today


# ---------------------------------------------------------------- 7: a too small epsilon, refused before the ledger

def test_an_experiment_with_too_small_an_epsilon_is_refused_before_the_ledger(rec):
    """experiment(epsilon=5e-10) charged the ledger, then failed on the noise scale in internal words."""
    reporter = PrivateReporter(rec)
    with pytest.raises(ConfigError, match=r"epsilon must be a finite number from 1e-06 up to 20 \(got 5e-10\)"):
        reporter.experiment("e1", "B", {"plays": 3.0}, {"plays": 10.0}, epsilon=5e-10)
    assert reporter.ledger.entries() == []


def test_the_smallest_epsilon_named_is_accepted_and_every_scale_accepted_can_be_drawn(rec):
    for count in (2_000, 3_001, 70_000):  # below the noise limit at epsilon 1e-6 (ldp.MIN_EPSILON) on STEPS
        with pytest.raises(ConfigError) as refused:
            ldp.laplace_scale(count, STEPS, 1e-6)
        named = float(str(refused.value).rsplit("at least ", 1)[1])
        scale = ldp.laplace_scale(count, STEPS, named)  # the epsilon the message names is taken
        assert scale <= ldp.MAX_SCALE
        ldp.discrete_laplace(scale, ldp.SecureRandomness())  # and its scale drawn from
    assert ldp.smallest_epsilon(1, STEPS) == ldp.MIN_EPSILON  # never one check_epsilon refuses
    assert ldp.laplace_scale(10_000, 1000, 1e7 / ldp.MAX_SCALE) == ldp.MAX_SCALE
    with pytest.raises(ConfigError, match="at most"):
        ldp.discrete_laplace(ldp.MAX_SCALE + 1, ldp.SecureRandomness())
    reporter = PrivateReporter(rec)
    least = ldp.smallest_epsilon(1, STEPS)
    out = reporter.experiment("e1", "B", {"plays": 3.0}, {"plays": 10.0}, epsilon=least)
    assert out["epsilon"] == least and [e[2] for e in reporter.ledger.entries()] == [least]
