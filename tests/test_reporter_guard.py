"""The reporter's every random draw and every record field, exactly (its mutation run asked for these;
tools/mutation-scores.md): which item is drawn from which window, the hash and bucket that leave the
device, the probabilities handed to randomized response and the scale of the experiment noise."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from edgerec.errors import ConfigError, PrivacyBudgetError
from edgerec.runtime import ldp
from edgerec.runtime.privacy_ledger import DAY, Budget
from edgerec.runtime.reporter import (
    ERROR_BUCKETS,
    LATENCY_BUCKETS_MS,
    STEPS,
    PrivateReporter,
    bucket,
    experiment_record,
    record,
)

NOW = float(int(time.time()) // DAY * DAY - 2 * DAY + 3600)  # recent: inside the history's retention


class Recorded:
    """Randomness that answers from scripts (below: 0, bernoulli: True once they run out) and logs each call."""

    def __init__(self, below=(), bernoulli=()):
        self.below_answers, self.coin_answers, self.calls = list(below), list(bernoulli), []

    def below(self, n):
        self._log(("below", n))
        return self.below_answers.pop(0) if self.below_answers else 0

    def bernoulli(self, p):
        self._log(("bernoulli", p))
        return self.coin_answers.pop(0) if self.coin_answers else True

    def _log(self, call):
        # coins that always say True never end the noise's geometric loop: fail rather than hang
        assert len(self.calls) < 100, "the reporter drew far more randomness than its mechanism needs"
        self.calls.append(call)


@pytest.fixture
def rec(tiny_bundle, tmp_path):
    from edgerec.runtime import Recommender

    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as r:
        yield r


def _reporter(rec, rng, per_day=10.0):
    return PrivateReporter(rec, Budget(per_day=per_day, per_30_days=100.0), rng=rng)


def test_items_consumed_draws_one_of_the_last_days_consumed_items_and_sends_its_hash_and_bucket(rec):
    ids = rec.catalog.ids.all()
    rec.record("bob", ids[7], "finish", timestamp=NOW - DAY - 10)  # older than a day: not drawn
    rec.record("bob", ids[11], "skip", timestamp=NOW - 50)  # not consumed
    rec.record("bob", ids[17], "play", timestamp=NOW - 40)
    rec.record("bob", ids[23], "like", timestamp=NOW - 30)
    rng = Recorded(below=[1, 4, 9])
    epsilon = 2.0
    out = _reporter(rec, rng).items_consumed(epsilon=epsilon, now=NOW)
    g = ldp.olh_buckets(epsilon)
    assert rng.calls == [("below", 2), ("below", ldp.PRIME - 1), ("below", ldp.PRIME),
                         ("bernoulli", ldp.keep_probability(epsilon, g))]
    picked = ldp.LocalHash(5, 9, g)
    assert out["value"] in (picked(17), picked(23)) and out["value"] == picked(23)  # below(2) -> 1: the second
    assert out["hash"] == {"a": 5, "b": 9, "g": g, "prime": ldp.PRIME}
    size = rec.catalog.base_count
    assert out["domain"] == {"space": rec.manifest.embedding_space, "size": size + 1, "none": size}
    assert (out["format"], out["question"], out["mechanism"], out["epsilon"]) == (1, "items_consumed", "olh", 2.0)
    assert out["day"] == datetime.fromtimestamp(NOW, timezone.utc).strftime("%Y-%m-%d")


def test_items_consumed_with_nothing_consumed_reports_the_none_value(rec):
    rng = Recorded(below=[0, 0])  # a = 1, b = 0: the hash is x mod g
    out = _reporter(rec, rng).items_consumed(epsilon=5.0, now=NOW)  # g = 149
    size = rec.catalog.base_count
    assert rng.calls[0] == ("below", ldp.PRIME - 1)  # no draw among consumed items: there are none
    assert out["value"] == size % out["hash"]["g"]


def test_category_shares_sends_the_drawn_items_genre_through_grr(rec):
    codes, vocab = rec.catalog.categorical["genre"]
    rec.record("bob", rec.catalog.item_id(3), "play", timestamp=NOW - 5)
    rng = Recorded()
    out = _reporter(rec, rng).category_shares(epsilon=1.5, now=NOW)
    k = len(vocab) + 1
    assert rng.calls == [("below", 1), ("bernoulli", ldp.keep_probability(1.5, k))]
    assert out["value"] == int(codes[3]) and out["domain"] == {"labels": [*vocab, "(none)"]}
    assert (out["question"], out["mechanism"], out["epsilon"]) == ("category_shares:genre", "grr", 1.5)
    other = _reporter(rec, Recorded(), per_day=10.0).category_shares(epsilon=1.0, column="language", now=NOW)
    assert other["question"] == "category_shares:language"
    with pytest.raises(ConfigError, match="category_shares column"):
        _reporter(rec, Recorded()).category_shares(column="title")


def test_category_shares_with_nothing_consumed_reports_none(rec):
    _, vocab = rec.catalog.categorical["genre"]
    out = _reporter(rec, Recorded()).category_shares(epsilon=1.0, now=NOW)
    assert out["value"] == len(vocab) and out["domain"]["labels"][out["value"]] == "(none)"


def test_health_halves_the_epsilon_between_its_two_questions(rec, monkeypatch):
    monkeypatch.setattr(rec.monitor, "snapshot", lambda: {"stages": {"total": {"p50_ms": 12.0}},
                                                          "counters": {"errors": 3}})
    rng = Recorded()
    reporter = _reporter(rec, rng)
    latency, errors = reporter.health(epsilon=1.0, now=NOW)
    assert rng.calls == [("bernoulli", ldp.keep_probability(0.5, 7)), ("bernoulli", ldp.keep_probability(0.5, 5))]
    assert latency["value"] == 2 and errors["value"] == 2  # 12 ms: <=20; 3 errors: <=5
    assert latency["domain"]["labels"] == ["<=5", "<=10", "<=20", "<=50", "<=100", ">100", "(none)"]
    assert errors["domain"]["labels"] == ["<=0", "<=1", "<=5", "<=20", ">20"]
    assert [(r["question"], r["epsilon"], r["mechanism"]) for r in (latency, errors)] == [
        ("health:latency_ms", 0.5, "grr"), ("health:errors", 0.5, "grr")]
    assert [e[1:] for e in reporter.ledger.entries()] == [("health", 1.0)]


def test_health_of_a_device_that_served_nothing_reports_no_latency_and_no_errors(rec):
    latency, errors = _reporter(rec, Recorded()).health(epsilon=1.0, now=NOW)
    assert latency["value"] == 6 and latency["domain"]["labels"][6] == "(none)" and errors["value"] == 0


def test_buckets_include_their_upper_edge():
    assert [bucket(v, LATENCY_BUCKETS_MS) for v in (0.0, 5.0, 5.01, 100.0, 100.5)] == [0, 0, 1, 4, 5]
    assert [bucket(v, ERROR_BUCKETS) for v in (0, 1, 2, 20, 21)] == [0, 1, 2, 3, 4]


def test_the_experiment_noise_has_the_scale_of_its_epsilon_and_grid(rec):
    # per value: u, then coins: keep u, stop v at 0, the sign (True: negative)
    rng = Recorded(below=[3, 7], bernoulli=[True, False, False, True, False, True])
    epsilon = 2.0
    reporter = _reporter(rec, rng)
    out = reporter.experiment("ranker-v2", "treatment", {"plays": 10, "watch_s": 50.0},
                              {"plays": 40, "watch_s": 100.0}, epsilon=epsilon, now=NOW)
    scale = ldp.laplace_scale(2, STEPS, epsilon)  # 1000 steps x 2 values / epsilon 2
    assert scale == 1000 and [c for c in rng.calls if c[0] == "below"] == [("below", scale)] * 2
    assert out["values"] == {"plays": 250 + 3, "watch_s": 500 - 7}
    assert out["epsilon"] == epsilon and out["arm"] == "treatment" and out["question"] == "experiment:ranker-v2"
    assert out["domain"] == {"bounds": {"plays": 40.0, "watch_s": 100.0}, "steps": STEPS}
    assert [e[1:] for e in reporter.ledger.entries()] == [("experiment:ranker-v2", 2.0)]


def test_the_experiment_record_adds_the_noise_to_the_clipped_grid():
    # coins: keep u (True), v: stop at once (False), sign positive (False); per value
    rng = Recorded(below=[3, 5], bernoulli=[True, False, False, True, False, True])
    out = experiment_record("x", "control", {"a": 10, "b": 300.0}, {"a": 40, "b": 100.0}, 4.0, rng, NOW)
    assert out["values"] == {"a": 250 + 3, "b": 1000 - 5}
    assert ("below", ldp.laplace_scale(2, STEPS, 4.0)) in rng.calls
    assert out["epsilon"] == 4.0 and out["mechanism"] == "discrete_laplace"


def test_a_record_carries_the_utc_day_and_nothing_else_about_time():
    out = record("q", "grr", 1.0, 1_800_000_000.0, {"labels": ["a"]}, value=0)
    assert out == {"format": 1, "question": "q", "mechanism": "grr", "epsilon": 1.0, "day": "2027-01-15",
                   "domain": {"labels": ["a"]}, "value": 0}


def test_every_report_is_charged_and_dated_at_the_time_given(rec):
    reporter = _reporter(rec, Recorded(below=[0, 0], bernoulli=[True, False, False, True, False, False]))
    then = NOW - 5 * DAY
    out = reporter.experiment("x", "a", {"v": 1}, {"v": 2}, epsilon=1.0, now=then)
    latency, _ = reporter.health(epsilon=1.0, now=then)
    assert [e[0] for e in reporter.ledger.entries()] == [then, then]
    day = datetime.fromtimestamp(then, timezone.utc).strftime("%Y-%m-%d")
    assert out["day"] == latency["day"] == day != datetime.fromtimestamp(NOW, timezone.utc).strftime("%Y-%m-%d")


def test_a_shuffled_experiment_report_is_noised_at_the_local_epsilon(rec):
    from edgerec.runtime.shuffle import Shuffled

    shuffle = Shuffled(300_000)
    local = shuffle.local_epsilon(1.0)
    rng = Recorded(below=[0, 0], bernoulli=[True, False, False, True, False, False])
    reporter = _reporter(rec, rng)
    out = reporter.experiment("x", "a", {"v": 1, "w": 1}, {"v": 2, "w": 2}, epsilon=1.0, now=NOW, shuffle=shuffle)
    assert [c for c in rng.calls if c[0] == "below"] == [("below", ldp.laplace_scale(2, STEPS, local))] * 2
    assert out["local_epsilon"] == local and out["shuffle"] == shuffle.describe()
    assert out["epsilon"] == shuffle.central_epsilon(local) <= 1.0
    [(_, question, charged)] = reporter.ledger.entries()
    assert question == f"experiment:x (shuffled; local epsilon {local:.3g})" and charged == out["epsilon"]


def test_the_experiment_name_and_arm_are_named(rec):
    reporter = _reporter(rec, Recorded())
    for name, arm, message in (("", "a", "^the experiment name must not be empty"), ("x", "", "^arm must not be empty"),
                               ("n" * 901, "a", "^the experiment name is 901 characters long; the limit is 900"),
                               ("x", "a" * 1001, "^arm is 1,001 characters long; the limit is 1000")):
        with pytest.raises(ConfigError, match=message):
            reporter.experiment(name, arm, {"v": 1}, {"v": 2}, now=NOW)
    assert reporter.ledger.entries() == []
    rng = Recorded(below=[0], bernoulli=[True, False, False])
    out = _reporter(rec, rng).experiment("n" * 900, "a" * 1000, {"v": 1}, {"v": 2}, now=NOW)
    assert out["arm"] == "a" * 1000 and out["question"] == "experiment:" + "n" * 900
    # the longest name still fits the ledger's question with the shuffle's note (a 1000-character name
    # passed the name check and was then refused as "the report's question is 1,011 characters long")
    from edgerec.runtime.shuffle import Shuffled

    rng = Recorded(below=[0], bernoulli=[True, False, False])
    shuffled = _reporter(rec, rng).experiment("n" * 900, "a", {"v": 1}, {"v": 2}, now=NOW, shuffle=Shuffled(300_000))
    assert shuffled["question"] == "experiment:" + "n" * 900


def test_items_added_on_the_device_are_not_in_the_reported_domain(rec):
    import numpy as np

    rec.add_items([{"item_id": "fresh", "title": "x", "vector": rec.catalog.vectors(np.array([0]))[0].tolist()}])
    assert rec.catalog.index["fresh"] == rec.catalog.base_count  # the first row past the bundle's items
    rec.record("bob", "fresh", "play", timestamp=NOW - 20)
    rec.record("bob", rec.catalog.item_id(3), "play", timestamp=NOW - 10)
    rng = Recorded()
    _reporter(rec, rng).items_consumed(epsilon=1.0, now=NOW)
    assert rng.calls[0] == ("below", 1)  # only item 3 is drawn from


def test_the_first_genre_is_a_genre_not_none(rec):
    codes, vocab = rec.catalog.categorical["genre"]
    assert int(codes[0]) == 0
    rec.record("bob", rec.catalog.item_id(0), "play", timestamp=NOW - 5)
    out = _reporter(rec, Recorded()).category_shares(epsilon=1.0, now=NOW)
    assert out["value"] == 0 and out["domain"]["labels"][0] == vocab[0]


def test_defaults_charge_an_epsilon_of_1_and_a_shuffled_share_says_so(rec, monkeypatch):
    from edgerec.runtime.shuffle import Shuffled
    from edgerec.studies.device_reports import SeededRandomness

    reporter = _reporter(rec, SeededRandomness(1), per_day=20.0)
    reporter.items_consumed(now=NOW)
    reporter.category_shares(now=NOW)
    reporter.experiment("x", "a", {"v": 1}, {"v": 2}, now=NOW)
    reporter.health(now=NOW)
    shuffle = Shuffled(300_000)
    shared = reporter.category_shares(epsilon=0.5, now=NOW - 60, shuffle=shuffle)
    local = shuffle.local_epsilon(0.5)
    assert shared["local_epsilon"] == local and shared["shuffle"] == shuffle.describe()
    entries = reporter.ledger.entries()
    assert [e[2] for e in entries[:4]] == [1.0] * 4
    assert entries[4] == (NOW - 60, f"category_shares:genre (shuffled; local epsilon {local:.3g})", shared["epsilon"])
    for call, message in ((lambda: reporter.items_consumed(shuffle=3), "^shuffle must be a Shuffled"),
                          (lambda: reporter.items_consumed(now=-1.0), r"^now \(epoch seconds\) must be")):
        with pytest.raises(ConfigError, match=message):
            call()
    with pytest.raises(ConfigError, match="^category_shares column"):
        reporter.category_shares(column="nope")


def test_the_day_is_the_utc_day_whatever_the_devices_time_zone(monkeypatch):
    noon_utc = 1_800_000_000.0 + 4 * 3600  # 2027-01-15 12:00 UTC: already the 16th at UTC+14
    monkeypatch.setenv("TZ", "XXX-14")  # POSIX: 14 hours east of UTC, no time zone database needed
    time.tzset()
    try:
        assert record("q", "grr", 1.0, noon_utc, {})["day"] == "2027-01-15"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_health_and_experiment_dated_back_count_on_the_real_day(rec):
    """health() and experiment() report undated values (the monitor's state, the app's figures): dated back a
    day apart into an empty ledger, each fitted its own day, so a device sent them past the daily cap in one
    real day. The ledger now counts each on the day it was made as well."""
    reporter = PrivateReporter(rec, Budget(per_day=1.0, per_30_days=10.0), rng=Recorded())
    reporter.health(epsilon=1.0, now=NOW - 3 * DAY)
    for call in (lambda: reporter.health(epsilon=1.0, now=NOW - 2 * DAY),
                 lambda: reporter.experiment("x", "a", {"v": 1}, {"v": 2}, epsilon=0.5, now=NOW - DAY)):
        with pytest.raises(PrivacyBudgetError, match="daily privacy budget of 1 over the last 1 day.s. of the device clock"):
            call()
    assert [e[1:] for e in reporter.ledger.entries()] == [("health", 1.0)]
    simulated = PrivateReporter(rec, Budget(per_day=1.0, per_30_days=10.0), rng=Recorded(), simulation=True)
    assert [r["epsilon"] for r in simulated.health(epsilon=1.0, now=NOW - DAY)] == [0.5, 0.5]


def test_a_simulations_reporter_may_keep_its_history_in_memory(tiny_bundle):
    from edgerec.runtime import Recommender

    with Recommender.open(tiny_bundle) as memory:
        with pytest.raises(ConfigError, match="^private reports need the history in a file"):
            PrivateReporter(memory)
        with pytest.raises(ConfigError, match="simulation must be True or False"):
            PrivateReporter(memory, simulation=1)
        reporter = PrivateReporter(memory, rng=Recorded(), simulation=True)
        assert [r["epsilon"] for r in reporter.health(epsilon=1.0, now=NOW)] == [0.5, 0.5]
        assert reporter.ledger.simulation is True
