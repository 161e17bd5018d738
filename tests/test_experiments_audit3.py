"""The experiment studies after the third audit: sessions in the simulator's metrics, hostile device
reports, renamed users, unbounded simulator options, the fitted click model's denominators and scale,
and each user's interleaving and exploration draws independent of the other users."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgerec.data.loaders import import_dataset
from edgerec.data.store import load_dataset
from edgerec.data.synth import SynthConfig, synth_dataset
from edgerec.errors import ConfigError, DataError
from edgerec.runtime.vocab import LOG_EVENTS
from edgerec.studies import activity, experiments
from edgerec.studies.activity import ActivityConfig
from edgerec.studies.device_reports import read_reports
from edgerec.studies.experiments import InterleaveStudy, OPEStudy
from edgerec.studies.online_metrics import online_metrics
from edgerec.studies.reactions import FittedReactions, SynthReactions, reactions_for, scale_for_mean
from edgerec.studies.simulator import FIELDS, Arm, SimConfig, SimLog, Simulator

# ------------------------------------------------------------------ sessions


def test_lists_and_minutes_per_session_divide_by_sessions_not_active_days(tiny_bundle, monkeypatch):
    """lists_per_session divided lists by active user-days; minutes per session was never computed."""
    vals = {f: np.zeros((1, 1)) for f in FIELDS}
    vals["active"][0, 0], vals["sessions"][0, 0], vals["lists"][0, 0] = 1, 3, 3
    vals["impressions"][0, 0], vals["watch_s"][0, 0] = 30, 540
    hand = online_metrics(SimLog(["u"], ["A"], np.array([0]), vals, {"A": {0: ["x"] * 30}}), {"x": 1.0})
    assert hand["A"]["overall"]["lists_per_session"] == 1.0
    assert hand["A"]["overall"]["minutes_per_session"] == 3.0

    counted = []
    sessions = activity.UserActivity.sessions

    def counting(self, rng, mood, cfg):
        counted.append(sessions(self, rng, mood, cfg))
        return counted[-1]

    monkeypatch.setattr(activity.UserActivity, "sessions", counting)
    dataset = load_dataset(tiny_bundle.parent / "data")
    log = Simulator(dataset, reactions_for(dataset), SimConfig(users=8, days=3, pre_days=0, seed=0)).run(
        [Arm("b", tiny_bundle)], lambda _u: "b")
    assert log.values["sessions"].sum() == sum(counted) > log.values["active"].sum()  # some days hold two
    overall = online_metrics(log, {})["b"]["overall"]
    assert overall["lists_per_session"] == pytest.approx(log.values["lists"].sum() / sum(counted))
    assert overall["minutes_per_session"] == pytest.approx(log.values["watch_s"].sum() / 60 / sum(counted))


# ------------------------------------------------------------------ hostile reports


def test_a_report_nested_past_the_parsers_depth_is_a_data_error_naming_its_line(tmp_path):
    """One hostile device's report crashed `experiment analyze` with a raw RecursionError."""
    lines = tmp_path / "reports.jsonl"
    lines.write_text('{"question": "experiment:x"}\n{"question": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(DataError, match="line 2 is not a JSON report .nested too deeply"):
        read_reports(lines)
    whole = tmp_path / "deep.json"
    whole.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="not a JSON list of reports .nested too deeply"):
        read_reports(whole)
    long_number = tmp_path / "long.jsonl"
    long_number.write_text('{"values": ' + "9" * 5000 + "}\n")  # past Python's digit limit: a ValueError
    with pytest.raises(DataError, match="line 1 is not a JSON report") as caught:
        read_reports(long_number)
    assert str(tmp_path) not in str(caught.value)


# ------------------------------------------------------------------ renamed users


def test_a_synthetic_data_set_with_a_renamed_user_is_refused_without_naming_it():
    """A raw KeyError traceback named the user id (which may be a person's e-mail address)."""
    dataset = synth_dataset(SynthConfig(users=30, items=200, events=1_500, seed=3))
    SynthReactions(dataset)
    renamed = dataclasses.replace(dataset, user_ids=["alice.smith@example.com", *dataset.user_ids[1:]])
    with pytest.raises(ConfigError, match="1 of the data set's 30 users are not in its synthetic") as caught:
        SynthReactions(renamed)
    assert "alice" not in str(caught.value)


# ------------------------------------------------------------------ bounds


@pytest.mark.parametrize("config, named", [
    (SimConfig(days=10_000_000_000, pre_days=0), "--days and --pre-days are at most 3,650"),
    (SimConfig(days=1, pre_days=3651), "--days and --pre-days are at most 3,650"),
    (SimConfig(users=100_000, days=3000, pre_days=100), r"--users x \(days \+ pre-days\) at most 10,000,000"),
    (SimConfig(activity=ActivityConfig(visits_sigma=1000.0)), "sigmas .* <= 5"),
    (SimConfig(activity=ActivityConfig(lists_sigma=5.5)), "sigmas .* <= 5"),
    (SimConfig(activity=ActivityConfig(visits_median=1e6)), "medians <= 1000"),
    (SimConfig(activity=ActivityConfig(max_sessions=10**9)), "max_sessions and max_lists in 1..1000"),
])
def test_unbounded_simulator_options_are_refused_in_words(config, named):
    """--days 1e10 asked numpy for 74.5 GiB; --visits-sigma 1000 ended in numpy's 'lam value too large'."""
    with pytest.raises(ConfigError, match=named):
        config.validate()
    SimConfig(days=3650, pre_days=3650, activity=ActivityConfig(visits_sigma=5.0, lists_sigma=5.0)).validate()


# ------------------------------------------------------------------ the fitted click model


def _log_with_likes(tmp_path):
    """Item 0: 7 plays, 6 finishes, 1 skip and 8 likes; item 5 a hit; durations known."""
    rows = ["user_id,item_id,timestamp,event,value"]
    t = 1000
    for u in range(6):
        events = [(0, "play"), (0, "finish"), (0, "like"), (1, "play"), (2, "finish"), (3 + u % 3, "play")]
        events += [(5, "play")] * 5 + [(6 + (u * 20 + n) % 60, "play") for n in range(20)]  # a hit, a long tail
        if u == 0:
            events += [(0, "skip"), (0, "like"), (0, "like"), (0, "play")]
        for item, event in events:
            t += 10
            rows.append(f"u{u},i{item},{t},{event},")
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    items = ["item_id,title,genre,duration"] + [f"i{i},T{i},{('a', 'b')[i % 2]},600" for i in range(66)]
    (tmp_path / "items.csv").write_text("\n".join(items) + "\n")
    return import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv")


def test_the_fitted_click_model_counts_plays_not_likes_and_keeps_its_documented_mean(tmp_path):
    """Likes counted as plays in the rates' denominators, and the scale was set before the clip at 0.95
    (the mean attraction of logged pairs came out 0.435, not the documented 0.5)."""
    dataset = _log_with_likes(tmp_path)
    fitted = FittedReactions(dataset, smoothing=1e-12)
    item = dataset.catalog.item_ids.index("i0")
    # item 0: 6 + 1 plays, 6 finishes, 1 skip (8 likes are not plays): skip 1 / 14, finish 6 / 13
    assert fitted.skip[item] == pytest.approx(1 / 14, rel=1e-6)
    assert fitted.finish[item] == pytest.approx(6 / 13, rel=1e-6)
    log = dataset.interactions
    played = log.event != LOG_EVENTS.index("like")
    att = np.concatenate([fitted.attraction(int(u), log.item[played & (log.user == u)]) for u in np.unique(log.user)])
    assert att.mean() == pytest.approx(0.5, abs=1e-9) and att.max() == 0.95 and (att == 0.95).mean() > 0.1


def test_the_scale_solves_the_clipped_mean_exactly():
    rng = np.random.default_rng(0)
    for raw in (rng.lognormal(0.0, 1.0, 500), rng.lognormal(0.0, 3.0, 2000), np.ones(4), np.array([1.0, 100.0])):
        s = scale_for_mean(raw, 0.5, 0.95)
        assert np.minimum(s * raw, 0.95).mean() == pytest.approx(0.5, abs=1e-12)
    assert scale_for_mean(np.array([]), 0.5, 0.95) == 1.0


# ------------------------------------------------------------------ per-user draws


def _simulator(tiny_bundle, drop_first: bool, cfg: SimConfig) -> Simulator:
    dataset = load_dataset(tiny_bundle.parent / "data")
    sim = Simulator(dataset, reactions_for(dataset), cfg)
    if drop_first:
        sim.user_codes = sim.user_codes[1:]
    return sim


def test_a_users_interleaved_teams_do_not_depend_on_the_other_users(tiny_bundle):
    """One generator for every user's team coins: dropping the first user changed the last one's teams."""
    cfg = SimConfig(users=6, days=2, pre_days=0, seed=0)
    teams = []
    for drop in (False, True):
        study = InterleaveStudy(Arm("a", tiny_bundle), Arm("b", tiny_bundle, {"diversity": 0.6}),
                                tiny_bundle.parent / "data", cfg)
        log = study.run_log(_simulator(tiny_bundle, drop, cfg))
        last = len(log.users) - 1
        teams.append((log.users[last], [t for (u, _d, _c, t) in log.interleaved if u == last]))
    assert teams[0][0] == teams[1][0] and teams[0][1] and teams[0][1] == teams[1][1]


def test_a_users_explored_lists_do_not_depend_on_the_other_users(tiny_bundle, monkeypatch):
    """explore(rec, seed=sim.seed) shared one generator between all users of the OPE study."""
    cfg = SimConfig(users=5, days=2, pre_days=0, seed=0)
    setup, log_one = experiments._setup, OPEStudy._log_one
    runs = []
    for drop in (False, True):
        shown: list = []

        def logging(self, simulator, recs, policies, exposures, code, *rest, shown=shown):
            out = log_one(self, simulator, recs, policies, exposures, code, *rest)
            shown.append((code, None if out is None else tuple(out[0].shown_items)))
            return out

        monkeypatch.setattr(experiments, "_setup", lambda d, s, src, m=None, drop=drop: (
            None, _simulator(tiny_bundle, drop, s)))
        monkeypatch.setattr(OPEStudy, "_log_one", logging)
        OPEStudy(Arm("a", tiny_bundle), Arm("b", tiny_bundle, {"diversity": 0.5}), tiny_bundle.parent / "data",
                 cfg).measure_seed(cfg, lambda *a: None)
        runs.append(shown)
    monkeypatch.setattr(experiments, "_setup", setup)
    last = runs[0][-1][0]
    assert [s for c, s in runs[0] if c == last] == [s for c, s in runs[1] if c == last]
    assert all(s is not None for _c, s in runs[0])
