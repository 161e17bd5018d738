"""A real experiment end to end: pre-period figures on the device, private reports, the host's tests."""

from __future__ import annotations

import json
import math
import time
from collections import Counter

import numpy as np
import pytest

from edgerec.errors import ConfigError, DataError, PrivacyBudgetError
from edgerec.runtime import ldp
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.pre_period import PRE_FEATURES, pre_period
from edgerec.runtime.privacy_ledger import Budget
from edgerec.runtime.reporter import STEPS, PrivateReporter
from edgerec.studies.device_reports import ReportsStudy, read_reports, report_log
from edgerec.studies.device_reports import SeededRandomness as Seeded

DAY = 86_400
START = float(int(time.time()) // DAY * DAY - 5 * DAY)  # recent: the history keeps two years


@pytest.mark.parametrize("scale", [1, 3, 40])
def test_discrete_laplace_has_its_law(scale):
    rng = Seeded(scale)
    draws = np.array([ldp.discrete_laplace(scale, rng) for _ in range(30_000)])
    q = math.exp(-1 / scale)
    counts = Counter(draws.tolist())
    for y in range(-2 * scale, 2 * scale + 1):
        p = (1 - q) / (1 + q) * q ** abs(y)
        assert abs(counts[y] / len(draws) - p) < 5 * math.sqrt(p * (1 - p) / len(draws)) + 1e-4, y
    assert abs(draws.mean()) < 5 * math.sqrt(ldp.laplace_variance(scale) / len(draws))
    assert draws.var() == pytest.approx(ldp.laplace_variance(scale), rel=0.05)


def test_on_grid_clips_and_names_what_is_missing():
    assert ldp.on_grid({"plays": 7, "watch_s": -3.0, "finishes": 90}, {"plays": 50, "watch_s": 10, "finishes": 40},
                       1000) == {"finishes": 1000, "plays": 140, "watch_s": 0}
    with pytest.raises(ConfigError, match="every reported value needs a bound"):
        ldp.on_grid({"plays": 1, "likes": 2}, {"plays": 5}, 1000)
    with pytest.raises(ConfigError, match="bound of 'plays'"):
        ldp.on_grid({"plays": 1}, {"plays": 0}, 1000)
    assert ldp.laplace_scale(2, 1000, 4.0) == 500 and ldp.laplace_scale(3, 1000, 7.0) == 429  # rounded up


def _history(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    begin = START - 3 * DAY
    older = [("o1", "play", START - 30 * DAY), ("o2", "play", START - 10 * DAY)]
    pre = [("a", "play", begin + 100, 60.0), ("b", "finish", begin + 200, 50.0),  # one session
           ("c", "skip", begin + DAY + 10, 5.0), ("c", "like", begin + DAY + 20, None),  # the next day
           ("d", "not_interested", begin + DAY + 5_000, None),  # a session of its own (silence > 30 min)
           ("e", "play", START + 50, 100.0)]  # after the arm was first served: not pre-period
    for item, event, ts in older:
        store.record("ana", item, event, ts=ts)
    for item, event, ts, value in pre:
        store.record("ana", item, event, value=value, ts=ts)
    return store, begin


def test_pre_period_figures_from_the_device_history(tmp_path):
    store, begin = _history(tmp_path)
    figures = pre_period(store, "ana", begin, START)
    assert list(figures) == list(PRE_FEATURES)
    assert figures == {"pre_plays": 3.0, "pre_finishes": 1.0, "pre_active_days": 2.0,
                       "older_events_per_day": 0.1, "pre_sessions": 3.0, "pre_watch_s": 115.0}
    assert pre_period(store, "ana", begin)["pre_plays"] == 4.0  # no end: up to now
    with pytest.raises(ConfigError, match="ends .* before it begins"):
        pre_period(store, "ana", START, begin)


def test_events_within_a_long_play_are_one_session(tmp_path):
    """A 3-hour film and two likes 40 minutes apart during it counted 2 sessions: the gap was measured from the
    previous event's end, not the latest end so far."""
    store = HistoryStore(tmp_path / "h.db")
    begin = START - DAY
    store.record("ana", "film", "finish", value=10_800.0, ts=begin + 12_000)  # watched from begin + 1,200
    store.record("ana", "x", "like", ts=begin + 3_000)
    store.record("ana", "y", "like", ts=begin + 5_400)
    assert pre_period(store, "ana", begin, START)["pre_sessions"] == 1.0


def test_a_device_reports_clipped_noised_figures_charged_to_its_ledger(tiny_bundle, tmp_path):
    from edgerec.runtime import Recommender

    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as rec:
        reporter = PrivateReporter(rec, Budget(per_day=3.0, per_30_days=10.0), rng=Seeded(1))
        with pytest.raises(ConfigError, match="needs a bound"):
            reporter.experiment("ranker-v2", "treatment", {"plays": 3}, {}, epsilon=1.0)
        assert reporter.ledger.entries() == []  # refused before anything was charged
        record = reporter.experiment("ranker-v2", "treatment", {"plays": 3, "pre_plays": 80},
                                     {"plays": 50, "pre_plays": 40}, epsilon=2.0, now=START)
        with pytest.raises(PrivacyBudgetError):
            reporter.experiment("ranker-v2", "treatment", {"plays": 3}, {"plays": 50}, epsilon=1.5, now=START)
        assert [e[1:] for e in reporter.ledger.entries()] == [("experiment:ranker-v2", 2.0)]
    assert set(record) == {"format", "question", "mechanism", "epsilon", "day", "domain", "arm", "values"}
    assert record["domain"] == {"bounds": {"plays": 50.0, "pre_plays": 40.0}, "steps": STEPS}
    assert record["values"]["plays"] != 60 or record["values"]["pre_plays"] != STEPS  # noise was added
    # over many reports the noise averages out to the clipped figure (pre_plays 80 clipped to 40)
    rng = Seeded(2)
    scale = ldp.laplace_scale(2, STEPS, 2.0)
    means = np.mean([[60 + ldp.discrete_laplace(scale, rng), STEPS + ldp.discrete_laplace(scale, rng)]
                     for _ in range(4000)], 0)
    within = 4 * math.sqrt(ldp.laplace_variance(scale) / 4000) / STEPS  # 4 standard errors, in bounds
    assert means[0] * 50 / STEPS == pytest.approx(3.0, abs=50 * within)
    assert means[1] * 40 / STEPS == pytest.approx(40.0, abs=40 * within)


def _reports(n, effect, epsilon, seed=0, name="ranker-v2"):
    """Reports as devices send them: plays driven by a persistent activity the pre-period also shows."""
    rng, noise = np.random.default_rng(seed), Seeded(seed)
    bounds = {"plays": 60.0, "pre_plays": 60.0}
    scale = ldp.laplace_scale(len(bounds), STEPS, epsilon)
    out = []
    for i in range(n):
        arm = ("control", "treatment")[i % 2]
        activity = rng.lognormal(2.0, 0.5)
        figures = {"plays": rng.poisson(activity * (1 + effect * (arm == "treatment"))),
                   "pre_plays": rng.poisson(activity)}
        grid = ldp.on_grid(figures, bounds, STEPS)
        out.append({"format": 1, "question": f"experiment:{name}", "mechanism": "discrete_laplace",
                    "epsilon": epsilon, "day": "2026-12-03", "domain": {"bounds": bounds, "steps": STEPS},
                    "arm": arm, "values": {k: v + ldp.discrete_laplace(scale, noise) for k, v in grid.items()}})
    return out


def test_the_host_finds_a_planted_effect_in_private_reports_and_cuped_uses_the_pre_period(tmp_path):
    reports = _reports(4000, effect=0.3, epsilon=4.0)
    path = tmp_path / "reports.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [{"question": "items_consumed"}, *reports]) + "\n")
    record = ReportsStudy(path, "ranker-v2", "plays").run(lambda *_: None).record
    assert record["users"] == {"control": 2000, "treatment": 2000}
    cuped, plain = record["tests"]["cuped"], record["tests"]["welch"]
    assert cuped["ci_low"] > 0 and record["verdict"]["decision"] == "ship"
    assert cuped["ci_high"] - cuped["ci_low"] < plain["ci_high"] - plain["ci_low"]  # the pre-period helped
    assert record["covariates"] == 1 and 0 < record["privacy"]["noise_share_of_variance"] < 1
    scale = ldp.laplace_scale(2, STEPS, 4.0)
    assert record["privacy"]["noise_variance"] == pytest.approx(ldp.laplace_variance(scale) * (60 / STEPS) ** 2)


def test_no_effect_in_private_reports_is_rarely_called_significant():
    hits = 0
    for seed in range(40):
        log = report_log(_reports(400, effect=0.0, epsilon=1.0, seed=seed), "ranker-v2")
        from edgerec.studies.experiments import ab_analysis

        hits += ab_analysis(log, "plays", 0.05, seed)["tests"]["cuped"]["p_value"] < 0.05
    assert hits <= 6  # alpha 0.05 of 40: 2 expected; 6 or more has chance < 5%


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.update(arm="other"), "arm 'other', not one of"),
    (lambda r: r.update(mechanism="laplace"), "format 1 / 'laplace'"),
    (lambda r: r["domain"].update(steps=10), "other bounds or steps"),
    (lambda r: r["values"].pop("plays"), "one whole number per bounded figure"),
    (lambda r: r["values"].update(plays=1.5), "one whole number per bounded figure"),
    (lambda r: r["values"].update(plays=10 ** 400), "one whole number per bounded figure"),
    (lambda r: r["values"].update(plays=True), "one whole number per bounded figure"),
    (lambda r: r.update(epsilon=True), "no valid epsilon"),
    (lambda r: r.update(epsilon=None), "no valid epsilon"),
])
def test_a_foreign_or_inconsistent_report_is_named(change, message):
    reports = _reports(10, 0.0, 1.0)
    reports[3] = json.loads(json.dumps(reports[3]))
    change(reports[3])
    with pytest.raises(DataError, match=message):
        report_log(reports, "ranker-v2")


def test_reports_of_one_arm_or_another_experiment_are_refused(tmp_path):
    with pytest.raises(DataError, match="no report of experiment 'other'"):
        report_log(_reports(10, 0.0, 1.0), "other")
    with pytest.raises(DataError, match="one arm only"):
        report_log(_reports(10, 0.0, 1.0)[::2], "ranker-v2")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{oops\n')
    with pytest.raises(DataError, match="line 2 is not a JSON report"):
        read_reports(tmp_path / "bad.jsonl")
    (tmp_path / "latin.jsonl").write_bytes('{"arm": "é"}'.encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_reports(tmp_path / "latin.jsonl")
    bounds = _reports(4, 0.0, 1.0)
    bounds[0]["domain"]["bounds"]["plays"] = -1
    with pytest.raises(DataError, match="no valid bounds"):
        report_log(bounds, "ranker-v2")
    huge = _reports(4, 0.0, 1.0)  # finite, but the noise's variance overflowed: an OverflowError traceback
    for r in huge:
        r["domain"]["bounds"]["plays"] = 1e308
    with pytest.raises(DataError, match=r"no valid bounds \(each in \(0, 1e\+12\]\)"):
        report_log(huge, "ranker-v2")


def test_analyze_from_the_shell_names_arms_and_writes_json(tmp_path):
    from click.testing import CliRunner

    from edgerec.cli.main import cli

    reports = _reports(600, effect=0.0, epsilon=2.0)
    for r in reports:
        r["arm"] = {"control": "v1", "treatment": "v2"}[r["arm"]]
    (tmp_path / "r.jsonl").write_text("\n".join(map(json.dumps, reports)))
    args = ["experiment", "analyze", str(tmp_path / "r.jsonl"), "--experiment", "ranker-v2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "name the arms with --control and --treatment" in result.output
    result = CliRunner().invoke(cli, [*args, "--control", "v1", "--treatment", "v2", "--json",
                                      str(tmp_path / "ab.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "v2 - v1 on plays per device" in result.output and "privacy noise" in result.output
    assert json.loads((tmp_path / "ab.json").read_text())["users"] == {"control": 300, "treatment": 300}


class DailyLog:
    """A simulated log's shape (studies/simulator.SimLog): per user and day, pre-period days first."""

    def __init__(self, users, effect, pre_days=3, days=7, seed=0):
        rng = np.random.default_rng(seed)
        self.arms = [("control", "treatment")[i % 2] for i in range(users)]
        self.users = [f"u{i:05d}" for i in range(users)]
        self.days = np.arange(-pre_days, days)
        activity = rng.lognormal(0.0, 0.6, users)[:, None] * np.ones(len(self.days))
        lift = 1 + effect * ((np.array(self.arms) == "treatment")[:, None] & (self.days >= 0))
        self.values = {"plays": rng.poisson(activity * lift).astype(float)}
        self.pre_device = self.period("plays", pre=True)[:, None]

    def period(self, name, pre=False):
        return self.values[name][:, self.days < 0 if pre else self.days >= 0].sum(1)


def test_private_analysis_of_a_simulated_log_prices_the_privacy():
    from edgerec.studies.device_reports import private_analysis, report_bound

    log = DailyLog(3000, effect=0.5)
    bound = report_bound(log, "plays")
    assert bound == math.ceil(np.quantile(log.period("plays", pre=True), 0.99) * 7 / 3)
    loose, tight = (private_analysis(log, "plays", eps, 0.05, 0) for eps in (8.0, 1.0))
    assert loose["bound"] == bound and loose["welch"]["ci_low"] > 0  # the effect survives the noise at 8
    assert 1 < loose["users_needed_x"] < tight["users_needed_x"]
    assert 0 < loose["noise_share_of_variance"] < tight["noise_share_of_variance"] < 1
    with pytest.raises(ConfigError, match="--pre-days >= 1"):
        report_bound(DailyLog(10, 0.0, pre_days=0), "plays")


def _interleaved(n, lift, epsilon, seed=0):
    from edgerec.runtime.reporter import experiment_record

    rng, noise = np.random.default_rng(seed), Seeded(seed)
    bounds = {"clicks_a": 20.0, "clicks_b": 20.0}
    return [experiment_record("ranker-v2", "interleaved", {"clicks_a": float(rng.poisson(2.0)),
                                                            "clicks_b": float(rng.poisson(2.0 * (1 + lift)))},
                              bounds, epsilon, noise, START) for _ in range(n)]


def test_interleaving_reports_find_the_preferred_team_through_the_noise(tmp_path):
    from click.testing import CliRunner

    from edgerec.cli.main import cli
    from edgerec.studies.device_reports import interleave_reports

    record = interleave_reports(_interleaved(3000, 0.5, 4.0), "ranker-v2")
    assert record["verdict"]["decision"] == "ship" and record["wins_b"] > record["wins_a"]
    assert 0 < record["privacy"]["noise_share_of_variance"] < 1
    level = interleave_reports(_interleaved(3000, 0.0, 4.0, seed=3), "ranker-v2")
    assert level["p_value"] > 0.05 and level["verdict"]["decision"] == "inconclusive"
    with pytest.raises(DataError, match="carry clicks_a and clicks_b"):
        interleave_reports(_reports(10, 0.0, 1.0)[::2], "ranker-v2", arm="control")
    (tmp_path / "r.jsonl").write_text("\n".join(map(json.dumps, _interleaved(400, 1.0, 8.0))))
    result = CliRunner().invoke(cli, ["experiment", "analyze", str(tmp_path / "r.jsonl"), "--experiment",
                                      "ranker-v2", "--interleaved", "interleaved"], catch_exceptions=False)
    assert result.exit_code == 0 and "interleaving (A = control, B = treatment)" in result.output
    assert "verdict: ship" in result.output and "privacy noise" in result.output


def test_reports_whose_figures_do_not_vary_in_an_arm_decide_nothing(tmp_path):
    """2 + 2 devices with identical figures in each arm gave p = 0, a point interval and "ship": noised reports
    never agree exactly, and no difference can be tested against no spread."""
    reports = _reports(4, 0.0, 1.0)
    for r in reports:
        r["values"] = {"plays": 10 if r["arm"] == "control" else 12, "pre_plays": 5}
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(map(json.dumps, reports)))
    record = ReportsStudy(path, "ranker-v2", "plays").run(lambda *_: None).record
    assert record["verdict"]["decision"] == "inconclusive"
    assert "do not vary" in record["verdict"]["rule"]


def test_experiment_commands_refuse_a_negative_seed(tmp_path):
    from click.testing import CliRunner

    from edgerec.cli.main import cli

    for command in ("ab", "interleave", "ope"):
        result = CliRunner().invoke(cli, ["experiment", command, str(tmp_path), str(tmp_path), "--data",
                                          str(tmp_path), "--seed", "-1"])
        assert result.exit_code == 2 and "--seed" in result.output and "Traceback" not in result.output
