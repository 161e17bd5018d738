"""Audit G3: drift judged per user, not per request (a single-user device was flagged a third of the time),
an encoder that always falls back is visible in drift and in the private health report, a device with no
request reports no latency rather than the fastest bucket, and a baseline without spread is no baseline."""

from types import SimpleNamespace

import numpy as np
import pytest
from handmade import NOW, watch

from edgerec.runtime import Recommender
from edgerec.runtime.drift import (
    MIN_BASELINE_USERS,
    NOISE_Z,
    DriftBaseline,
    DriftSample,
    drift_report,
    score_baseline,
)
from edgerec.runtime.monitor import Monitor
from edgerec.runtime.privacy_ledger import Budget
from edgerec.runtime.reporter import ERROR_BUCKETS, LATENCY_BUCKETS_MS, PrivateReporter

pytestmark = pytest.mark.usefixtures("fixed_history_clock")  # events recorded at fixed times near 1.79e9


class Truthful:
    """Randomness under which randomized response keeps the true value: the report shows what was measured."""

    def bernoulli(self, p):
        return True

    def below(self, n):
        return 0


def _reference_histories(rec):
    ref = rec.bundle.manifest.reference
    return [h[h > 0] - 1 for h in np.asarray(rec.bundle.array(ref["histories"]))]


def _shift(sample, baseline):
    return max(abs(sample[0] - baseline.top1[0]) / baseline.top1[1], abs(sample[1] - baseline.topk[0]) / baseline.topk[1])


# ------------------------------------------------------------------ 1. one user is one sample


def test_a_healthy_single_user_device_is_not_flagged_and_a_broken_encoder_still_is(tiny_bundle, monkeypatch):
    with Recommender.open(tiny_bundle) as rec:  # each reference user once: their own figures
        histories = _reference_histories(rec)
        for u, hist in enumerate(histories):
            watch(rec, f"ref{u}", hist)
            rec.recommend(f"ref{u}", k=10, context=NOW)
        baseline, shifts = rec.drift_baseline, [_shift(s, rec.drift_baseline) for s in rec.monitor.score_window()]
    # the most atypical healthy user: past the threshold alone, within it plus one user's noise
    typical = int(np.argmax(shifts))
    assert baseline.threshold < shifts[typical] < baseline.threshold + NOISE_Z
    with Recommender.open(tiny_bundle) as phone:  # the one user of a phone opens the app 60 times
        watch(phone, "me", histories[typical])
        for _ in range(60):
            phone.recommend("me", k=10, context=NOW)
        drift = phone.stats()["drift"]
    assert (drift["window"], drift["users"]) == (60, 1) and drift["score"] == pytest.approx(shifts[typical])
    assert drift["allowance"] == NOISE_Z and drift["drifted"] is False
    with Recommender.open(tiny_bundle) as phone:  # the same phone, its encoder's vectors halved
        real = phone.encoder.backend.run
        monkeypatch.setattr(phone.encoder.backend, "run", lambda feeds: [0.5 * out for out in real(feeds)])
        watch(phone, "me", histories[typical])
        for _ in range(60):
            phone.recommend("me", k=10, context=NOW)
        drift = phone.stats()["drift"]
    assert drift["users"] == 1 and drift["score"] > baseline.threshold + NOISE_Z and drift["drifted"] is True


def test_the_window_keeps_each_users_newest_figures_once(rec):
    watch(rec, "ann", range(60, 66))
    for _ in range(3):  # cache hits: the same figures, one sample
        rec.recommend("ann", k=10, context=NOW)
    window = rec.monitor.score_window()
    assert len(window) == 1 and window.requests == 3
    rec.record("ann", rec.catalog.item_id(70), "finish", timestamp=NOW["now"] - 10)  # a new state replaces it
    watch(rec, "bob", range(10, 16))
    rec.recommend("bob", k=10, context=NOW)
    rec.recommend("ann", k=10, context=NOW)
    window = rec.monitor.score_window()
    assert len(window) == 2 and window.requests == 5 and window[-1] != window[0]  # bob, then ann's newest
    drift = rec.stats()["drift"]
    assert (drift["window"], drift["users"]) == (5, 2)
    rec.forget("ann")  # the window holds a sample per user: nothing of a forgotten user stays
    assert len(rec.monitor.score_window()) == 1 and rec.stats()["drift"]["users"] == 1


def test_a_forgotten_user_leaves_the_window():
    monitor = Monitor()
    monitor.score(DriftSample(0.9, 0.8, "ann"))
    monitor.score(DriftSample(0.7, 0.6, "bob"))
    monitor.forget("ann")
    monitor.forget("nobody")
    assert monitor.score_window() == [(0.7, 0.6)]


def test_a_request_in_flight_across_forget_keeps_no_sample_of_its_user(rec):
    """forget() ran while alice's request was inside the pipeline: the request finished after it and put
    her name back in the drift window (audit J2), where it stayed until 500 other users pushed it out."""
    from edgerec.runtime.pipeline import Stage

    for user in ("alice", "bob"):
        for row in range(3):
            rec.record(user, rec.catalog.item_id(row), "finish")

    def forget_midway(request):
        if request.user == "alice":
            rec.forget("alice")
        return request

    rec.pipeline.insert_after("explain", Stage("app_forget", forget_midway, required=False))
    rec.recommend("alice", k=5)
    rec.recommend("bob", k=5)  # a request after the forget keeps its sample
    assert list(rec.monitor.top_scores) == ["bob"]


def test_forget_drops_the_stage_failures_of_the_users_requests_only(rec):
    """An app stage's error quoted the request's user, and stats()["failures"] kept it after forget(); then
    forget() matched by words, so a one-letter id erased another user's failure that merely contained it."""
    from edgerec.runtime.pipeline import Stage

    def quoting(request):
        if request.user == "a":
            raise ValueError(f"no row for {request.user}")
        return request

    def plain(request):
        if request.user != "a":
            raise ValueError("the app's table is empty")
        return request

    rec.pipeline.insert_after("explain", Stage("app_quoting", quoting, required=False))
    rec.pipeline.insert_after("explain", Stage("app_plain", plain, required=False))
    rec.recommend("a", k=3)
    rec.recommend("dave-4711", k=3)
    assert set(rec.stats()["failures"]) == {"app_quoting", "app_plain"}
    rec.forget("a")
    assert rec.stats()["failures"] == {"app_plain": "ValueError: the app's table is empty"}


def test_the_allowance_shrinks_with_the_square_root_of_the_users():
    baseline = DriftBaseline((0.5, 0.25), (0.5, 0.25), 10, 200, threshold=1.0, min_window=1)
    one_user = drift_report([(1.0, 0.5)] * 16, baseline)  # 2 deviations out, 16 samples: allowance 1
    assert one_user["score"] == 2.0 and one_user["allowance"] == 1.0 and one_user["drifted"] is False
    many = drift_report([(1.0, 0.5)] * 25, baseline)  # allowance 0.8: 2 > 1.8
    assert many["allowance"] == pytest.approx(0.8) and many["drifted"] is True
    monitor = Monitor()
    for _ in range(16):
        monitor.score(DriftSample(1.0, 0.5, "me"))
    assert drift_report(monitor.score_window(), baseline)["allowance"] == NOISE_Z  # 16 requests, one user


def test_the_window_holds_the_newest_users_up_to_its_size():
    monitor = Monitor()
    for i in range(502):
        monitor.score(DriftSample(float(i), 0.0, f"u{i}"))
    monitor.score(DriftSample(-1.0, 0.0, "u3"))  # an old user asks again: newest, and still one sample
    window = monitor.score_window()
    assert len(window) == 500 and window.requests == 503  # u0, u1 left; u3 moved to the newest end
    assert window[0] == (2.0, 0.0) and window[-1] == (-1.0, 0.0) and (3.0, 0.0) not in window


# ------------------------------------------------------------------ 2. a broken encoder shows


def _break_encoder(rec, monkeypatch):
    def run(feeds):
        raise RuntimeError("engine crashed")

    monkeypatch.setattr(rec.encoder.backend, "run", run)


def test_an_encoder_that_always_falls_back_says_so_in_drift_and_in_the_health_report(rec, monkeypatch):
    _break_encoder(rec, monkeypatch)
    for u in range(4):
        watch(rec, f"u{u}", range(10 * u, 10 * u + 6))
        for _ in range(6):
            assert {r.reason.kind for r in rec.recommend(f"u{u}", k=5, context=NOW)} == {"fallback"}
    stats = rec.stats()
    drift = stats["drift"]
    assert stats["counters"]["encode_fallback"] == 24 and "errors" not in stats["counters"]
    assert (drift["window"], drift["users"], drift["fallbacks"], drift["drifted"]) == (0, 0, 24, False)
    assert "24 requests fell back to the popularity list" in drift["reason"]
    reporter = PrivateReporter(rec, Budget(per_day=10.0, per_30_days=100.0), rng=Truthful())
    latency, errors = reporter.health(epsilon=1.0, now=NOW["now"])
    assert errors["domain"]["labels"][errors["value"]] == f">{ERROR_BUCKETS[-1]}"  # 24 failed requests
    # the same two questions, each charged half: a fallback is counted, not asked about separately
    assert [(r["question"], r["epsilon"]) for r in (latency, errors)] == [("health:latency_ms", 0.5),
                                                                         ("health:errors", 0.5)]
    assert [e[1:] for e in reporter.ledger.entries()] == [("health", 1.0)]


def test_fallbacks_are_counted_beside_the_samples_of_a_working_encoder(rec, monkeypatch):
    watch(rec, "ann", range(60, 66))
    rec.recommend("ann", k=10, context=NOW)
    _break_encoder(rec, monkeypatch)
    watch(rec, "bob", range(10, 16))
    rec.recommend("bob", k=10, context=NOW)
    drift = rec.stats()["drift"]
    assert (drift["window"], drift["users"], drift["fallbacks"]) == (1, 1, 1)


# ------------------------------------------------------------------ 3. no request, no latency


def test_a_device_that_served_no_request_reports_no_latency_not_the_fastest_bucket(rec):
    reporter = PrivateReporter(rec, Budget(per_day=10.0, per_30_days=100.0), rng=Truthful())
    latency, errors = reporter.health(epsilon=1.0, now=NOW["now"])
    labels = latency["domain"]["labels"]
    assert labels == [f"<={e:g}" for e in LATENCY_BUCKETS_MS] + [">100", "(none)"]
    assert labels[latency["value"]] == "(none)" and errors["value"] == 0
    watch(rec, "ann", range(60, 66))
    rec.recommend("ann", k=10, context=NOW)
    latency, _ = reporter.health(epsilon=1.0, now=NOW["now"])
    assert latency["domain"]["labels"][latency["value"]] != "(none)"


# ------------------------------------------------------------------ 4. a baseline without spread


def _manifest(**base):
    section = {"score_baseline": {"k": 10, "users": 200, "top1": {"mean": 0.8, "std": 0.05},
                                  "topk": {"mean": 0.7, "std": 0.04}, **base}}
    return SimpleNamespace(metrics={"monitoring": section})


@pytest.mark.parametrize("change", [
    {"top1": {"mean": 0.8, "std": 0.0}}, {"topk": {"mean": 0.7, "std": 0.0}},
    {"users": MIN_BASELINE_USERS - 1}, {"users": 1}, {"users": None},
])
def test_a_baseline_without_spread_or_of_a_few_users_is_no_baseline(change):
    assert DriftBaseline.from_manifest(_manifest()) is not None
    assert DriftBaseline.from_manifest(_manifest(users=MIN_BASELINE_USERS)) is not None
    if change == {"users": None}:  # an exporter always wrote how many users it measured
        section = _manifest().metrics["monitoring"]["score_baseline"]
        del section["users"]
        manifest = SimpleNamespace(metrics={"monitoring": {"score_baseline": section}})
    else:
        manifest = _manifest(**change)
    assert DriftBaseline.from_manifest(manifest) is None


def test_the_exporters_baseline_of_one_user_reports_drift_unavailable_and_says_why():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(200, 16)).astype(np.float32)
    monitoring = score_baseline(rng.normal(size=(1, 16)).astype(np.float32), table, [[0, 1, 2]])
    assert monitoring["score_baseline"]["top1"]["std"] == 0.0
    baseline = DriftBaseline.from_manifest(SimpleNamespace(monitoring=None, metrics={"monitoring": monitoring}))
    top = monitoring["score_baseline"]["top1"]["mean"]
    report = drift_report([(top * (1 + 1e-5), monitoring["score_baseline"]["topk"]["mean"])] * 60, baseline)
    assert report["available"] is False and report["drifted"] is False
    assert f"fewer than {MIN_BASELINE_USERS} users or with no spread" in report["reason"]
