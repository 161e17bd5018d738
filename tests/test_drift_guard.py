"""Guards of score drift and the health monitor (runtime/drift.py, runtime/monitor.py): exact figures on
hand-made scores, every way a manifest's baseline is refused, and the monitor's windows and snapshot."""

from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.runtime.drift import (
    DEFAULT_THRESHOLD,
    DRIFT_K,
    MIN_WINDOW,
    WINDOW,
    DriftBaseline,
    DriftSample,
    drift_report,
    score_baseline,
    top_summary,
)
from edgerec.runtime.monitor import Monitor


def test_the_constants_the_baselines_and_reports_depend_on():
    assert (DRIFT_K, MIN_WINDOW, WINDOW, DEFAULT_THRESHOLD) == (10, 50, 500, 1.0)


def test_top_summary_is_the_best_score_and_the_mean_of_the_k_best_finite_ones():
    scores = np.array([0.1, np.nan, 0.9, -np.inf, 0.5, 0.3, np.inf])
    assert top_summary(scores, k=2) == (0.9, pytest.approx(0.7))
    assert top_summary(scores, k=3) == (0.9, pytest.approx(1.7 / 3))
    assert top_summary(scores, k=10) == (0.9, pytest.approx(0.45))  # fewer than k finite: all of them
    assert top_summary(np.arange(12.0)) == (11.0, pytest.approx(6.5))  # k defaults to the 10 best: 2..11
    assert top_summary(np.array([0.4], np.float32), k=1) == (pytest.approx(0.4), pytest.approx(0.4))
    assert top_summary(np.array([np.nan, -np.inf])) is None and top_summary(np.array([])) is None
    # summed in float64 whatever the scores' type: float32 would lose the ones beside 2**24
    assert top_summary(np.array([2.0**24, 1, 1, 1], np.float32), k=4) == (2.0**24, 4194304.75)


def test_score_baseline_excludes_each_users_seen_rows_and_reports_population_statistics():
    table = np.eye(3, dtype=np.float32)  # user u's score of item i is its i-th coordinate
    users = np.array([[0.9, 0.5, 0.1], [0.2, 0.8, 0.4], [0.7, 0.6, 0.3]], np.float32)
    found = score_baseline(users, table, [[0], [], [0, 1, 2]], k=2, threshold=2.5)
    # user 0 without item 0: best 0.5, mean of two 0.3; user 1: 0.8, 0.6; user 2 has seen everything
    top1, topk = np.array([0.5, 0.8]), np.array([0.3, 0.6])
    assert found["score_baseline"] == {
        "k": 2, "users": 2, "top1": {"mean": pytest.approx(top1.mean()), "std": pytest.approx(top1.std())},
        "topk": {"mean": pytest.approx(topk.mean()), "std": pytest.approx(topk.std())}}
    assert found["drift_threshold"] == 2.5 and found["drift_min_window"] == 50
    nobody = score_baseline(users[:1], table, [[0, 1, 2]])
    assert nobody == {"score_baseline": {"k": 10, "users": 0}, "drift_threshold": 1.0, "drift_min_window": 50}


def test_score_baseline_reads_users_past_the_first_chunk_of_256_with_their_own_seen_rows():
    n = 300
    users = np.zeros((n, 2), np.float32)
    users[:, 0] = np.linspace(0.0, 1.0, n)
    users[:, 1] = 2.0  # item 1 always wins unless seen
    seen = [[1] if u >= 256 else [] for u in range(n)]  # only users of the second chunk have seen item 1
    found = score_baseline(users, np.eye(2, dtype=np.float32), seen, k=1)["score_baseline"]
    top1 = np.where(np.arange(n) >= 256, users[:, 0], 2.0)
    assert found["users"] == n
    assert found["top1"]["mean"] == pytest.approx(top1.mean(), rel=1e-6)
    assert found["top1"]["std"] == pytest.approx(top1.std(), rel=1e-5)


def test_score_baseline_scores_in_float32_as_the_device_does():
    third = float(np.float32(1 / 3))  # 0.3333333432674408; float64 would give 0.3333333333333333
    found = score_baseline(np.array([[1 / 3]]), np.array([[1.0]]), [[]], k=1)["score_baseline"]
    assert found["top1"]["mean"] == third and found["topk"]["mean"] == third
    found = score_baseline(np.array([[1.0]]), np.array([[1 / 3]]), [[]], k=1)["score_baseline"]
    assert found["top1"]["mean"] == third


def _manifest(section, where="metrics"):
    """A manifest-like object with the monitoring section where old or new exporters put it."""
    if where == "metrics":
        return SimpleNamespace(metrics={"monitoring": section})
    return SimpleNamespace(monitoring=section, metrics={"monitoring": {"ignored": True}})


GOOD = {"score_baseline": {"k": 10, "users": 200, "top1": {"mean": 0.8, "std": 0.05},
                           "topk": {"mean": 0.7, "std": 0.04}}, "drift_threshold": 2.0, "drift_min_window": 30}


@pytest.mark.parametrize("where", ["metrics", "attribute"])
def test_a_baseline_is_read_from_the_manifest_with_its_threshold_and_window(where):
    baseline = DriftBaseline.from_manifest(_manifest(GOOD, where))
    assert baseline == DriftBaseline((0.8, 0.05), (0.7, 0.04), 10, 200, 2.0, 30)
    assert baseline.to_dict() == {"top1_mean": 0.8, "top1_std": 0.05, "topk_mean": 0.7, "topk_std": 0.04,
                                  "k": 10, "users": 200}
    plain = {"score_baseline": GOOD["score_baseline"]}  # the threshold and window default
    assert DriftBaseline.from_manifest(_manifest(plain)) == DriftBaseline((0.8, 0.05), (0.7, 0.04), 10, 200, 1.0, 50)


def _with(**changes):
    base = {**GOOD["score_baseline"], **{k: v for k, v in changes.items() if k in GOOD["score_baseline"]}}
    return {**GOOD, "score_baseline": base, **{k: v for k, v in changes.items() if k.startswith("drift_")}}


@pytest.mark.parametrize("section", [
    {}, None, "a string", {"score_baseline": None}, {"score_baseline": {"k": 10}},
    _with(top1={"mean": "high", "std": 0.05}), _with(top1=[0.8, 0.05]), _with(k="ten"), _with(k=None),
    _with(top1={"mean": float("nan"), "std": 0.05}), _with(topk={"mean": 0.7, "std": float("inf")}),
    _with(top1={"mean": 1e400, "std": 0.05}), _with(drift_threshold=float("nan")),
    _with(drift_threshold=0), _with(drift_threshold=-1), _with(drift_min_window=0), _with(drift_min_window=-5),
    _with(drift_min_window=float("inf")),
    _with(top1={"mean": 0.8, "std": -0.05}), _with(topk={"mean": 0.7, "std": -1e-9}),  # would always drift
    _with(k=5), _with(k=20),  # the device summarizes its 10 best: another k compares unlike figures
    _with(top1={"mean": 0.8, "std": 0.0}), _with(topk={"mean": 0.7, "std": 0.0}),  # every window drifted
    _with(users=19), _with(users=1), {"score_baseline": {k: v for k, v in GOOD["score_baseline"].items()
                                                        if k != "users"}},  # too few users to trust
])
def test_a_malformed_or_unusable_baseline_means_none_never_a_crash(section):
    assert DriftBaseline.from_manifest(_manifest(section)) is None


def test_a_window_of_one_and_a_baseline_of_twenty_users_are_usable():
    baseline = DriftBaseline.from_manifest(_manifest(_with(top1={"mean": 0.8, "std": 1e-9}, drift_min_window=1)))
    assert baseline.top1 == (0.8, 1e-9) and baseline.min_window == 1
    assert DriftBaseline.from_manifest(_manifest(_with(users=20))).users == 20


def test_drift_report_exact_figures_at_the_window_edge_and_the_threshold():
    baseline = DriftBaseline((0.5, 0.25), (0.5, 0.125), 10, 200, threshold=2.0, min_window=16)
    window = [(1.25, 0.5)] * 16  # top-1 moved 3 deviations: the threshold plus 4 / sqrt(16 users), not past it
    report = drift_report(window, baseline)
    assert report == {"available": True, "window": 16, "users": 16, "fallbacks": 0, "min_window": 16,
                      "threshold": 2.0, "baseline": baseline.to_dict(),
                      "current": {"top1_mean": 1.25, "topk_mean": 0.5}, "score": 3.0, "allowance": 1.0,
                      "drifted": False}
    moved = drift_report(window[:15] + [(1.25, 4.5)], baseline)  # top-k mean 0.75: 2 deviations; top-1 still 3
    assert moved["current"]["topk_mean"] == 0.75 and moved["score"] == 3.0 and not moved["drifted"]
    past = drift_report([(1.5, 0.5)] * 16, baseline)
    assert past["score"] == 4.0 and past["drifted"] is True
    low = drift_report([(0.5, 0.0)] * 16, baseline)  # a fall counts like a rise: |0 - 0.5| / 0.125 = 4
    assert low["score"] == 4.0 and low["drifted"] is True
    early = drift_report(window[:15], baseline)
    assert early["current"] is None and early["score"] is None and early["drifted"] is False
    assert early["window"] == 15 and early["min_window"] == 16
    assert early["reason"] == "too few plain requests to judge (15 of 16)"


def test_a_shift_of_exactly_the_threshold_is_not_drift():
    baseline = DriftBaseline((0.5, 0.25), (0.5, 0.25), 10, 200, threshold=1.0, min_window=1)
    assert drift_report([(1.0, 0.5)] * 16, baseline)["score"] == 2.0  # 0.5 / 0.25, exact in binary
    assert drift_report([(1.0, 0.5)] * 16, baseline)["drifted"] is False  # 1.0 plus 4 / sqrt(16)


def test_without_a_baseline_the_report_says_why_and_counts_the_window():
    assert drift_report([(0.1, 0.1)] * 7, None) == {
        "available": False, "window": 7, "users": 7, "fallbacks": 0, "drifted": False,
        "reason": "the bundle carries no usable score baseline (none, malformed, measured on fewer than 20 users "
                  "or with no spread between them, or not of the 10 best scores); re-export it to monitor drift"}


def test_the_monitor_keeps_windows_of_timings_and_scores_and_totals_counters():
    assert Monitor().timings["any"].maxlen == 2048
    monitor = Monitor(window=3)
    monitor.count("requests", 5)
    for ms in (1.0, 2.0, 3.0, 4.0):
        monitor.timed("scan", ms)
    monitor.record([("scan", 10.0), ("rank", 0.5)], {"requests": 2, "fallback": 1})
    monitor.count("requests")
    monitor.count("errors", 4)
    with monitor.stage("encode"):
        pass
    snap = monitor.snapshot()
    assert list(monitor.timings["scan"]) == [3.0, 4.0, 10.0]  # the window keeps the newest three
    assert snap["stages"]["scan"] == {"count": 3, "p50_ms": 4.0, "p99_ms": pytest.approx(9.88), "max_ms": 10.0}
    assert snap["stages"]["rank"] == {"count": 1, "p50_ms": 0.5, "p99_ms": 0.5, "max_ms": 0.5}
    assert snap["stages"]["encode"]["count"] == 1 and 0 <= snap["stages"]["encode"]["max_ms"] < 1000
    assert snap["counters"] == {"requests": 8, "fallback": 1, "errors": 4}
    for i in range(WINDOW + 2):
        monitor.score(DriftSample(float(i), 0.0, f"u{i}"))
    window = monitor.score_window()
    assert len(window) == WINDOW and window[0] == (2.0, 0.0) and window[-1] == (float(WINDOW + 1), 0.0)


def test_a_stage_that_raises_is_still_timed_and_the_error_passes_through():
    monitor = Monitor()
    with pytest.raises(KeyError):
        with monitor.stage("explain"):
            raise KeyError("x")
    assert monitor.snapshot()["stages"]["explain"]["count"] == 1
    assert Monitor().snapshot() == {"stages": {}, "counters": {}}
