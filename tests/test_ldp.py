"""Local DP: exact proof of the epsilon guarantee, a check against dp-accounting, estimators, ledger, reporter."""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict

import numpy as np
import pytest

from edgerec.errors import ConfigError, PrivacyBudgetError
from edgerec.runtime import ldp
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.ldp import PRIME
from edgerec.runtime.privacy_ledger import DAY, Budget, PrivacyLedger

# ------------------------------------------------------------ exact output distributions


class Scripted:
    """Randomness that follows a script of choices and records each branch point (to enumerate them all)."""

    def __init__(self, script):
        self.script, self.taken, self.arity, self.prob = list(script), [], [], 1.0

    def _choose(self, n, weights):
        pos = len(self.taken)
        choice = self.script[pos] if pos < len(self.script) else 0
        self.taken.append(choice)
        self.arity.append(n)
        self.prob *= weights(choice)
        return choice

    def below(self, n):
        return self._choose(n, lambda _c: 1.0 / n)

    def bernoulli(self, p):
        return self._choose(2, lambda c: p if c == 0 else 1.0 - p) == 0


def distribution(mechanism) -> dict:
    """Every output of `mechanism(rng)` with its exact probability, by running the real code on every path."""
    out, stack = defaultdict(float), [[]]
    while stack:
        script = stack.pop()
        rng = Scripted(script)
        out[mechanism(rng)] += rng.prob
        for pos in range(len(script), len(rng.taken)):
            stack.extend(rng.taken[:pos] + [alt] for alt in range(1, rng.arity[pos]))
    return dict(out)


def worst_ratio(dists: list[dict]) -> float:
    """The largest P(o | x) / P(o | x') over outputs o and inputs x, x' (inf when supports differ)."""
    worst = 0.0
    for d1 in dists:
        for d2 in dists:
            for o in set(d1) | set(d2):
                p1, p2 = d1.get(o, 0.0), d2.get(o, 0.0)
                worst = max(worst, math.inf if p2 == 0 and p1 > 0 else (p1 / p2 if p2 else 0.0))
    return worst


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 2.0])
def test_grr_never_exceeds_e_to_the_epsilon(epsilon):
    k = 5
    dists = [distribution(lambda rng, v=v: ldp.grr(v, k, epsilon, rng)) for v in range(k)]
    assert all(abs(sum(d.values()) - 1) < 1e-12 for d in dists)
    assert worst_ratio(dists) == pytest.approx(math.exp(epsilon), rel=1e-9)  # tight: the bound is met


@pytest.mark.parametrize("epsilon", [0.7, 1.5])
def test_olh_never_exceeds_e_to_the_epsilon(epsilon):
    prime, domain = 11, 5  # small hash family so every (a, b, coin, bucket) path can be enumerated
    dists = [distribution(lambda rng, v=v: ldp.olh(v, epsilon, rng, prime)) for v in range(domain)]
    assert len(dists[0]) == (prime - 1) * prime * ldp.olh_buckets(epsilon)
    assert all(abs(sum(d.values()) - 1) < 1e-9 for d in dists)
    assert worst_ratio(dists) <= math.exp(epsilon) * (1 + 1e-9)


def test_the_proof_catches_a_wrong_probability(monkeypatch):
    epsilon, k = 1.0, 4
    monkeypatch.setattr(ldp, "keep_probability", lambda eps, kk: math.exp(1.2 * eps) / (math.exp(1.2 * eps) + kk - 1))
    dists = [distribution(lambda rng, v=v: ldp.grr(v, k, epsilon, rng)) for v in range(k)]
    assert worst_ratio(dists) > math.exp(epsilon) * 1.1


def test_grr_matches_dp_accounting():
    """Independent check: dp-accounting's randomized response with the same output law has our epsilon,
    and composes to the ledger's sum."""
    pld = pytest.importorskip("dp_accounting.pld.privacy_loss_distribution")
    for epsilon, k in ((0.5, 2), (1.0, 5), (2.0, 20)):
        noise = k / (math.exp(epsilon) + k - 1)  # dp-accounting: uniform over all k buckets with this chance
        assert 1 - noise + noise / k == pytest.approx(ldp.keep_probability(epsilon, k))
        dist = distribution(lambda rng, k=k, epsilon=epsilon: ldp.grr(0, k, epsilon, rng))
        assert dist[0] == pytest.approx(1 - noise + noise / k) and dist[1] == pytest.approx(noise / k)
        mech = pld.from_randomized_response(noise, k)
        assert mech.get_epsilon_for_delta(0.0) == pytest.approx(epsilon, rel=1e-3)
        assert mech.self_compose(3).get_epsilon_for_delta(0.0) == pytest.approx(3 * epsilon, rel=1e-3)


# ------------------------------------------------------------ estimators


class Seeded:
    """Fast reproducible randomness for statistical tests (production uses SecureRandomness)."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    def below(self, n):
        return self.r.randrange(n)

    def bernoulli(self, p):
        return self.r.random() < p


def test_olh_estimates_are_unbiased_and_intervals_cover():
    rng, epsilon, domain = Seeded(1), 2.0, 60
    truth = np.random.default_rng(0).multinomial(20_000, np.r_[np.full(5, 0.1), np.full(domain - 5, 0.5 / 55)])
    values = np.repeat(np.arange(domain), truth)
    reports = [ldp.olh(int(v), epsilon, rng) for v in values]
    a = np.array([h.a for h, _ in reports])
    b = np.array([h.b for h, _ in reports])
    y = np.array([y for _, y in reports])
    est = ldp.olh_estimate(ldp.olh_support(a, b, ldp.olh_buckets(epsilon), y, domain), len(values), epsilon)
    z = (est.counts - truth) / est.stderr
    assert abs(z.mean()) < 0.35 and 0.7 < z.std() < 1.3  # unbiased, and the stated error is the real one
    assert np.mean((est.low <= truth) & (truth <= est.high)) > 0.85
    assert set(np.argsort(-est.counts)[:5]) == set(range(5))


def test_fast_simulation_has_the_law_of_real_reports():
    from edgerec.studies.dp_popularity import simulate_support

    epsilon, rng = 1.0, np.random.default_rng(3)
    truth = np.array([3000, 1000, 500] + [100] * 20)
    sims = np.stack([simulate_support(truth, epsilon, rng) for _ in range(400)])
    values = np.repeat(np.arange(len(truth)), truth)
    real = []
    seeded = Seeded(5)
    for _ in range(3):
        reps = [ldp.olh(int(v), epsilon, seeded) for v in values]
        real.append(ldp.olh_support(np.array([h.a for h, _ in reps]), np.array([h.b for h, _ in reps]),
                                    ldp.olh_buckets(epsilon), np.array([y for _, y in reps]), len(truth)))
    real = np.stack(real)
    sd = sims.std(axis=0)
    assert np.all(np.abs(real.mean(axis=0) - sims.mean(axis=0)) < 4 * sd)


# ------------------------------------------------------------ ledger


def test_ledger_caps_and_never_renews_silently(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    ledger = PrivacyLedger(store, Budget(per_day=1.0, per_30_days=2.5), simulation=True)  # days simulated below
    t0 = 1_800_000_000.0
    ledger.charge("items_consumed", 0.5, t0)
    ledger.charge("items_consumed", 0.5, t0 + 10)
    with pytest.raises(PrivacyBudgetError, match="daily"):
        ledger.charge("items_consumed", 0.1, t0 + 20)
    with pytest.raises(PrivacyBudgetError, match="daily"):  # a clock set back frees nothing
        ledger.charge("items_consumed", 0.1, t0 - 5 * DAY)
    ledger.charge("items_consumed", 1.0, t0 + 1.1 * DAY)
    with pytest.raises(PrivacyBudgetError, match="30-day"):
        ledger.charge("items_consumed", 1.0, t0 + 2.2 * DAY)
    store.record("u", "i1", "play")
    store.forget("u")  # user rights do not reset the budget
    store.close()
    ledger = PrivacyLedger(HistoryStore(tmp_path / "h.db"), Budget(per_day=1.0, per_30_days=2.5), simulation=True)
    assert [e[2] for e in ledger.entries()] == [0.5, 0.5, 1.0]
    with pytest.raises(PrivacyBudgetError, match="30-day"):
        ledger.charge("items_consumed", 1.0, t0 + 29 * DAY)
    ledger.charge("items_consumed", 1.0, t0 + 30.01 * DAY)  # the first two left the 30-day window


# ------------------------------------------------------------ reporter and host aggregation


def test_reporter_produces_plain_records_and_charges_the_ledger(tiny_bundle, tmp_path):
    from edgerec.runtime import Recommender
    from edgerec.runtime.reporter import PrivateReporter
    from edgerec.studies.dp_popularity import aggregate_items, aggregate_labels

    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as rec:
        for row in range(5):
            rec.record("bob", rec.catalog.item_id(row), "finish")
        rec.recommend("bob", k=5)
        reporter = PrivateReporter(rec, Budget(per_day=3.0, per_30_days=10.0), rng=Seeded(2))
        items = reporter.items_consumed(epsilon=1.0)
        genre = reporter.category_shares(epsilon=1.0)
        health = reporter.health(epsilon=1.0)
        with pytest.raises(PrivacyBudgetError):
            reporter.items_consumed(epsilon=0.5)
        assert [e[1:] for e in reporter.ledger.entries()] == [("items_consumed", 1.0), ("category_shares:genre", 1.0),
                                                               ("health", 1.0)]
        n_items = rec.catalog.base_count
        ids = rec.catalog.ids.all()
    text = json.dumps([items, genre, *health])
    assert "bob" not in text and all(rec_id not in text for rec_id in ids[:5])
    assert items["domain"]["size"] == n_items + 1 and 0 <= items["value"] < items["hash"]["g"]
    three = [{**items, "hash": {**items["hash"], "b": (items["hash"]["b"] + i) % PRIME}} for i in range(3)]
    estimate, info = aggregate_items(three, ids)
    assert estimate.counts.shape == (n_items + 1,) and info["reports"] == 3
    with pytest.raises(ConfigError, match="2 reports repeat another exactly"):  # a replayed report
        aggregate_items([items] * 3, ids)
    shares = aggregate_labels(health[:1] * 4, "health:latency_ms")
    assert set(shares) == set(health[0]["domain"]["labels"])


def test_study_writes_a_popularity_prior(tmp_path, small_data_dir):
    from edgerec.export.popularity import PopularityPrior
    from edgerec.studies.dp_popularity import DPPopularityStudy

    result = DPPopularityStudy(small_data_dir, epsilons=(1.0, 4.0), devices=(20_000,), trials=2,
                               prior_out=tmp_path / "pop.json", prior_devices=50_000).run()
    rows = {r["epsilon"]: r for r in result.record["rows"]}
    assert rows[4.0]["count_mae"] < rows[1.0]["count_mae"]
    assert 0.8 < rows[4.0]["ci95_coverage"] <= 1.0
    prior = PopularityPrior.read(tmp_path / "pop.json")
    assert prior.epsilon == 1.0 and prior.reports == 50_000 and len(prior.counts) == 1_500
    assert result.write_plot(tmp_path / "dp.png").exists()


def test_demo_privacy_study(tiny_bundle, tmp_path):
    from edgerec.export.popularity import PopularityPrior
    from edgerec.studies.privacy import PrivacyStudy

    result = PrivacyStudy(tiny_bundle, tiny_bundle.parent / "data", tmp_path / "privacy", devices=50_000).run()
    history, prior = result.record["encrypted_history"], result.record["dp_popularity"]
    assert history["ids_in_clear"] is False and history["ids_in_plain_file"] is True  # the control finds them
    assert history["encrypted"]["record"]["n"] == 150
    assert set(history["ratio"]) == {"record", "recommend", "open"}
    assert 0 < prior["ndcg10_dp_prior"] and 0 < prior["ndcg10_true_prior"]
    assert PopularityPrior.read(tmp_path / "privacy" / "dp-popularity.json").reports == 50_000
    assert [t.title for t in result.tables][0].startswith("history at rest")


@pytest.mark.parametrize("field, value", [("a", PRIME), ("a", 2 * PRIME), ("a", 2 ** 40 + 1), ("b", 2 ** 62),
                                          ("a", 1.5), ("prime", 0), ("prime", 2_147_483_649), ("prime", 7)])
def test_olh_reports_with_hashes_devices_cannot_draw_are_refused(field, value):
    """a = PRIME hashed every item alike: 20 forged reports added 45 to every item's count; a past 2**40
    overflowed int64; another prime (or none) collided items; all were counted without a word."""
    from edgerec.runtime.ldp import olh_buckets
    from edgerec.studies.dp_popularity import aggregate_items

    g = olh_buckets(2.0)
    honest = [{"question": "items_consumed", "epsilon": 2.0, "domain": {"size": 4}, "value": i % g,
               "hash": {"a": 1000 + i, "b": 7 * i, "g": g, "prime": PRIME}} for i in range(30)]
    aggregate_items(honest, ["i0", "i1", "i2"])
    forged = [{**r, "hash": {**r["hash"], field: value}} for r in honest]
    with pytest.raises(ConfigError, match="cannot produce"):
        aggregate_items(forged, ["i0", "i1", "i2"])


@pytest.mark.parametrize("labels, value, message", [(["only"], 0, "at least 2 distinct labels"),
                                                     (["x", "x", "y"], 0, "at least 2 distinct labels"),
                                                     ("abc", 0, "at least 2 distinct labels"),
                                                     (["x", "y"], 1.7, "a whole number")])
def test_grr_reports_of_a_domain_devices_never_send_are_refused(labels, value, message):
    from edgerec.studies.dp_popularity import aggregate_labels

    reports = [{"question": "health:x", "epsilon": 1.0, "domain": {"labels": labels}, "value": value}] * 5
    with pytest.raises(ConfigError, match=message):
        aggregate_labels(reports, "health:x")
