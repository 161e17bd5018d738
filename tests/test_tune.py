"""`edgerec tune`: the search finds a planted better setting, resumes after an interruption, never reads test."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data import SynthConfig, synth_dataset, write_synth
from edgerec.data.split import leave_last_out
from edgerec.errors import ConfigError
from edgerec.models.checkpoint import load_model
from edgerec.models.train import TrainConfig
from edgerec.studies import policy_bound
from edgerec.studies import tune as tune_module
from edgerec.studies.tune import TuneConfig, parse_space, policy_value, run_tune

pytest.importorskip("optuna")

WORLD = SynthConfig(users=150, items=500, events=6_000, seed=11)
# everything but the learning rate fixed small, so each trial costs a second or two
SMALL = {"dim": [16], "layers": [1], "heads": [1], "max_len": [8], "dropout": [0.0], "loss": ["sampled"],
         "negatives": [128], "use_features": [True]}
QUICK = TrainConfig(steps=60, batch_size=64)
# every policy lever fixed at its untuned value but the hub penalty
ONLY_HUB_PENALTY = {"diversity": [0.0], "freshness": [0.0], "popularity": [0.0], "freshness_days": [30.0],
                    "short_list": [100], "keep_top": [0]}


pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def tiny():
    dataset = synth_dataset(WORLD)
    return dataset, leave_last_out(dataset)


def quick(**kw) -> TuneConfig:
    base = {"minutes": 5.0, "space": dict(SMALL), "train": QUICK, "seed": 0}
    return TuneConfig(**{**base, **kw})


def test_the_search_finds_the_planted_better_learning_rate(tiny, tmp_path):
    dataset, split = tiny
    cfg = quick(trials=4, space={**SMALL, "lr": [1e-6, 5e-3]})  # 1e-6 cannot learn in 60 steps
    record = run_tune(dataset, split, cfg, tmp_path)
    values = {t["params"]["lr"]: t["value"] for t in record["trials"] if t["value"] is not None}
    assert set(values) == {1e-6, 5e-3}  # both were tried
    assert record["best"]["params"]["lr"] == 5e-3
    assert values[5e-3] > 2 * values[1e-6]
    model, ckpt = load_model(tmp_path / "best")  # the best model is a normal checkpoint
    assert ckpt.info["tune"]["params"]["lr"] == 5e-3
    assert record["test"]["NDCG@10"] > 0  # scored once at the end


def test_an_interrupted_study_resumes_and_its_trial_count_continues(tiny, tmp_path, monkeypatch):
    dataset, split = tiny
    cfg = quick(trials=2, space={**SMALL, "lr": (1e-3, 1e-2, "log")})
    assert run_tune(dataset, split, cfg, tmp_path)["completed"] == 2
    real_train = tune_module.train_model

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C in the middle of the third trial

    monkeypatch.setattr(tune_module, "train_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_tune(dataset, split, quick(trials=4, space=cfg.space), tmp_path)
    monkeypatch.setattr(tune_module, "train_model", real_train)
    record = run_tune(dataset, split, quick(trials=4, space=cfg.space), tmp_path)
    states = {t["number"]: t["state"] for t in record["trials"]}
    assert list(states) == [0, 1, 2, 3, 4]  # the numbering goes on past the interrupted trial
    assert (states[0], states[1], states[2]) == ("complete", "complete", "fail")
    assert states[3] in ("complete", "pruned") and states[4] in ("complete", "pruned")
    params = [t["params"]["lr"] for t in record["trials"] if t["state"] != "fail"]
    assert len(set(params)) == 4  # the resumed sampler does not replay the first trials


def test_the_tuner_never_reads_the_test_split_and_compares_strategies(tiny, tmp_path):
    dataset, split = tiny
    cfg = quick(trials=4, strategies=("sasrec", "hybrid", "itemknn"), space={**SMALL, "lr": [5e-3]})
    clean = run_tune(dataset, split, cfg, tmp_path / "clean")
    poisoned_split = leave_last_out(dataset)
    poisoned_split.test_items = np.random.default_rng(3).permutation(poisoned_split.test_items)
    poisoned = run_tune(dataset, poisoned_split, cfg, tmp_path / "poisoned")
    strip = [(t["number"], t["value"], t["params"]) for t in clean["trials"]]
    assert strip == [(t["number"], t["value"], t["params"]) for t in poisoned["trials"]]
    assert clean["best"] == poisoned["best"]
    assert clean["test"] != poisoned["test"]  # the poisoned labels do reach the one final test score
    tried = {t["params"]["strategy"] for t in clean["trials"] if t["value"] is not None}
    assert {r["strategy"] for r in clean["strategies"]} == tried and len(tried) >= 2
    assert clean["winner"] == max(clean["strategies"], key=lambda r: r["value"])["strategy"]


def test_one_trial_gets_a_share_of_the_budget_not_all_of_it(tiny, tmp_path, monkeypatch):
    dataset, split = tiny
    caps, real_train = [], tune_module.train_model

    def spy(*args, **kwargs):
        caps.append(args[3].max_minutes)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(tune_module, "train_model", spy)
    run_tune(dataset, split, quick(minutes=30.0, trials=2, space={**SMALL, "lr": [5e-3]}), tmp_path)
    assert caps == [pytest.approx(30.0 / tune_module.TRIALS_PER_BUDGET)] * 2
    caps.clear()
    run_tune(dataset, split, quick(minutes=30.0, trials=3, trial_minutes=2.0, space={**SMALL, "lr": [5e-3]}),
             tmp_path)
    assert caps == [2.0]  # --trial-minutes wins


def test_trial_zero_is_the_default_training_settings(tiny, tmp_path):
    dataset, split = tiny
    record = run_tune(dataset, split, quick(trials=2, space={**SMALL, "lr": (1e-3, 1e-2, "log")}), tmp_path)
    assert record["trials"][0]["params"]["lr"] == TrainConfig().lr  # the default, not a TPE draw
    assert record["trials"][1]["params"]["lr"] != TrainConfig().lr
    wide = TuneConfig(strategies=("sasrec", "itemknn"))
    assert tune_module.default_params(wide) == {
        "strategy": "sasrec", "dim": 64, "layers": 2, "heads": 2, "dropout": 0.2, "lr": 2e-3, "max_len": 50,
        "loss": "sampled", "negatives": 1024, "use_features": True}
    assert "strategy" not in tune_module.default_params(TuneConfig(strategies=("itemknn",)))


def test_policy_value_penalises_accuracy_loss_beyond_the_bound():
    base = 0.10
    assert policy_value({"NDCG@10": 0.0995, "coverage@10": 0.4}, "coverage@10", base, 0.01) == 0.4
    assert policy_value({"NDCG@10": 0.09, "coverage@10": 0.9}, "coverage@10", base, 0.01) < 0.4
    # with a margin of 1% the loss must stay 1% clear of the bound: 0.5% loss is now too close
    assert policy_value({"NDCG@10": 0.0995, "coverage@10": 0.4}, "coverage@10", base, 0.01, 0.01) < 0.4
    assert policy_value({"NDCG@10": 0.1, "coverage@10": 0.4}, "coverage@10", base, 0.01, 0.01) == 0.4


def test_the_paired_margin_is_a_one_sided_95_percent_bound_on_the_difference():
    base = np.array([1.0, 0.0, 0.5, 0.0])
    same = tune_module.paired_margin(base, base)
    assert same == 0.0
    moved = np.array([0.0, 0.0, 0.5, 1.0])
    diff = moved - base
    assert tune_module.paired_margin(moved, base) == pytest.approx(1.645 * diff.std(ddof=1) / 2 / base.mean())
    assert tune_module.paired_margin(moved, base, 1.0) == pytest.approx(diff.std(ddof=1) / 2 / base.mean())
    with pytest.raises(ConfigError, match="margin-z"):
        TuneConfig(target="policy", margin_z=-1.0).validate()


def test_the_policy_search_raises_diversity_over_the_untuned_policy(tiny, tmp_path):
    dataset, split = tiny
    ckpt_cfg = quick(trials=1, space={**SMALL, "lr": [5e-3]})
    run_tune(dataset, split, ckpt_cfg, tmp_path / "model")
    cfg = TuneConfig(target="policy", minutes=5.0, trials=4, objective="diversity@10", max_ndcg_loss=1.0,
                     space={"diversity": [0.0, 0.6], "freshness": [0.0], "popularity": [0.0],
                            "freshness_days": [30.0], "hub_penalty": [0.0], "short_list": [100], "keep_top": [0]})
    record = run_tune(dataset, split, cfg, tmp_path / "policy", model=tmp_path / "model" / "best")
    untuned = record["trials"][0]
    assert untuned["params"] == {} or untuned["params"].get("diversity", 0.0) == 0.0
    assert record["best"]["params"]["diversity"] == 0.6
    assert record["best"]["value"] > untuned["value"]
    assert json.loads((tmp_path / "policy" / "policy.json").read_text())["diversity"] == 0.6
    assert set(record["test"]) == {"tuned", "untuned"}
    change = record["test_ndcg_change"]  # the paired change on test, with its standard error
    test = record["test"]
    assert change["change"] == pytest.approx(test["tuned"]["NDCG@10"] / test["untuned"]["NDCG@10"] - 1)
    assert change["standard_error"] > 0


def test_the_policy_search_raises_coverage_with_the_hub_penalty(tiny, tmp_path, monkeypatch):
    dataset, split = tiny
    run_tune(dataset, split, quick(trials=1, space={**SMALL, "lr": [5e-3]}), tmp_path / "model")
    cfg = TuneConfig(target="policy", minutes=5.0, trials=3, objective="coverage@10", max_ndcg_loss=1.0,
                     space={**ONLY_HUB_PENALTY, "hub_penalty": [0.0, 1.0]})
    record = run_tune(dataset, split, cfg, tmp_path / "policy", model=tmp_path / "model" / "best")
    untuned = record["trials"][0]
    assert untuned["params"].get("hub_penalty", 0.0) == 0.0
    assert record["best"]["params"]["hub_penalty"] == 1.0
    assert record["best"]["value"] > untuned["value"]  # the penalty spreads the lists over the catalog
    base = untuned["val"]["NDCG@10"]
    moved = [t for t in record["trials"] if t["params"].get("hub_penalty")]
    assert moved
    for trial in moved:  # each trial's value carries its own paired margin
        assert trial["ndcg_margin"] > 0
        assert trial["expected_margin"] > 0  # the curve's own bootstrap error
        assert trial["value"] == pytest.approx(policy_value(trial["val"], "coverage@10", base, 1.0,
                                                            trial["ndcg_margin"], trial["expected_ndcg_change"],
                                                            trial["expected_margin"], untuned["val"]["coverage@10"]))
        assert -1.0 <= trial["expected_ndcg_change"] < 0  # hubs give way to items lower in the model's order
    assert untuned["expected_ndcg_change"] == 0.0  # the model's own list
    # a margin far wider than any bound: no change of the lists can show it keeps NDCG@10
    monkeypatch.setattr(policy_bound, "MARGIN_Z", 1e4)
    strict = run_tune(dataset, split, cfg, tmp_path / "strict", model=tmp_path / "model" / "best")
    assert strict["best"]["params"].get("hub_penalty", 0.0) == 0.0
    # --margin-z: the search's own number of standard errors (0: the point estimate) over the default
    point = TuneConfig(**{**cfg.__dict__, "margin_z": 0.0})
    loose = run_tune(dataset, split, point, tmp_path / "point", model=tmp_path / "model" / "best")
    assert all(t.get("ndcg_margin", 0.0) == 0.0 for t in loose["trials"])
    assert loose["best"]["params"]["hub_penalty"] == 1.0


def test_the_policy_search_hands_its_short_list_to_the_replay(tiny, tmp_path, monkeypatch):
    """The short list is a lever: each trial's drawn length reaches the replay it is scored by, and a
    long-tail lift reaches other items from a longer list (the test split is scored the same way)."""
    dataset, split = tiny
    run_tune(dataset, split, quick(trials=1, space={**SMALL, "lr": [5e-3]}), tmp_path / "model")
    seen = []
    real = tune_module.PolicyScorer

    def watched(*args, **kwargs):
        scorer = real(*args, **kwargs)
        seen.append(scorer.policy.short_list)
        return scorer

    monkeypatch.setattr(tune_module, "PolicyScorer", watched)
    fixed = {"diversity": [0.0], "freshness": [0.0], "popularity": [-3.0], "freshness_days": [30.0],
             "hub_penalty": [0.0], "keep_top": [0]}
    cfg = TuneConfig(target="policy", minutes=5.0, trials=4, objective="coverage@10", max_ndcg_loss=1.0,
                     space={**fixed, "short_list": [20, 400]})
    record = run_tune(dataset, split, cfg, tmp_path / "policy", model=tmp_path / "model" / "best")
    lengths = {t["params"]["short_list"]: t["val"] for t in record["trials"]}
    assert set(lengths) == {20, 400} and {20, 400} <= set(seen)
    assert lengths[400]["coverage@10"] != lengths[20]["coverage@10"]
    assert record["policy"]["short_list"] == record["best"]["params"]["short_list"]
    assert seen[-2] == record["policy"]["short_list"]  # the test split: the tuned policy, then the untuned
    assert seen[-1] == 100


def test_the_expected_ndcg_bound_rejects_what_the_rank_curve_says_costs_too_much(tiny, tmp_path, monkeypatch):
    dataset, split = tiny
    run_tune(dataset, split, quick(trials=1, space={**SMALL, "lr": [5e-3]}), tmp_path / "model")
    cfg = TuneConfig(target="policy", minutes=5.0, trials=3, objective="coverage@10", max_ndcg_loss=1.0,
                     margin_z=0.0, space={**ONLY_HUB_PENALTY, "hub_penalty": [0.0, 1.0]})
    real = tune_module.HitCurve.change
    # any list other than the model's own "costs" twice its NDCG@10: beyond even a 100% bound
    monkeypatch.setattr(tune_module.HitCurve, "change", lambda self, listed, k, z=None: (
        min(real(self, listed, k)[0] * 1e3, 0.0), 0.0))
    record = run_tune(dataset, split, cfg, tmp_path / "on", model=tmp_path / "model" / "best")
    assert record["best"]["params"].get("hub_penalty", 0.0) == 0.0
    off = TuneConfig(**{**cfg.__dict__, "expected_bound": False})
    record = run_tune(dataset, split, off, tmp_path / "off", model=tmp_path / "model" / "best")
    assert record["best"]["params"]["hub_penalty"] == 1.0
    assert all("expected_ndcg_change" not in t for t in record["trials"])


def test_the_hit_curve_reads_lists_by_the_model_ranks_of_their_items():
    curve = tune_module.HitCurve.of(np.array([0, 0, 1, 3, 500]), 1_000, seed=None)
    # non-increasing: the hit at rank 3 is pooled with the empty rank 2, the one at 500 with ranks 4-500
    assert curve.at(np.array([0, 1, 2, 3])).tolist() == [0.4, 0.2, 0.1, 0.1]
    assert curve.at(np.array([4, 500])).tolist() == pytest.approx([0.2 / 497] * 2)
    assert curve.at(np.array([501, 999])).tolist() == [0.0, 0.0]
    d = 1 / np.log2(np.arange(10) + 2)
    hit = np.r_[0.4, 0.2, 0.1, 0.1, [0.2 / 497] * 6]
    plain = hit @ d
    assert curve.change({7: np.arange(10)}, 10) == (0.0, 0.0)
    swapped = {7: np.array([1, 0, 2, 3, 4, 5, 6, 7, 8, 9])}  # the first two places swapped
    assert curve.change(swapped, 10)[0] == pytest.approx((0.2 * d[0] + 0.4 * d[1] - 0.4 * d[0] - 0.2 * d[1]) / plain)
    dropped = {7: np.array([0, 1, 2, 4, 5, 6, 7, 8, 9, 10]), 8: np.arange(10)}  # one user loses rank 3
    assert curve.change(dropped, 10)[0] == pytest.approx(-0.5 * (0.1 - 0.2 / 497) * d[3] / plain)
    assert curve.per_user(dropped, 10).tolist() == pytest.approx([-(0.1 - 0.2 / 497) * d[3] / plain, 0.0])
    assert policy_value({"NDCG@10": 0.1, "coverage@10": 0.4}, "coverage@10", 0.1, 0.01, 0.0, -0.005) == 0.4
    assert policy_value({"NDCG@10": 0.1, "coverage@10": 0.4}, "coverage@10", 0.1, 0.01, 0.0, -0.05) < 0.4


def test_the_hit_curve_is_non_increasing_in_rank():
    """Validation's bumps (more hits at ranks 8-9 than at 6-7) would make every lever below them look dearer."""
    ranks = np.r_[[0] * 50, [1] * 30, [6] * 10, [8] * 20, [10] * 12, [400] * 3]
    curve = tune_module.HitCurve.of(ranks, 1_000, seed=None)
    hits = curve.at(np.arange(1_000))
    assert np.all(np.diff(hits) <= 1e-15)
    # the hits at 6, 8 and 10 rise above the empty ranks before them: ranks 2-10 share them
    assert hits[2] == hits[8] == hits[10] == pytest.approx(42 / len(ranks) / 9)
    assert hits[1] == 30 / len(ranks) and hits[11] < hits[10]
    assert hits.sum() == pytest.approx(1.0)  # still the whole chance of a hit somewhere


def test_the_expected_reading_carries_the_bootstrap_error_of_its_curve():
    rng = np.random.default_rng(3)
    ranks = np.minimum(rng.geometric(0.08, 400) - 1, 999)
    curve = tune_module.HitCurve.of(ranks, 1_000, seed=0)
    lower = {u: np.r_[np.arange(7), 30, 31, 32] for u in range(50)}  # the last three places from rank 30
    change, margin = curve.change(lower, 10)
    assert change < 0 and margin > 0
    assert curve.change(lower, 10, z=1.0)[1] == pytest.approx(margin / 1.645)
    small = tune_module.HitCurve.of(ranks[:40], 1_000, seed=0)  # a tenth of the users: a wider error
    assert small.change(lower, 10)[1] > margin
    assert tune_module.HitCurve.of(ranks, 1_000, seed=None).change(lower, 10) == (change, 0.0)


def test_the_expected_bound_holds_by_its_margin_and_the_measured_reading_may_not_contradict_it():
    base, met = 0.1, {"NDCG@10": 0.1, "coverage@10": 0.4}
    value = policy_value  # (metrics, objective, base, max_loss, consistency margin, expected, expected margin)
    assert value(met, "coverage@10", base, 0.01, 0.0, -0.006, 0.003) == 0.4
    assert value(met, "coverage@10", base, 0.01, 0.0, -0.006, 0.006) < 0.4  # -1.2% at its bound: beyond 1%
    low = {"NDCG@10": 0.097, "coverage@10": 0.4}  # measured -3%, expected -0.5%
    assert value(low, "coverage@10", base, 0.01, 0.03, -0.005) == 0.4  # within 3 points of noise of the expected
    assert value(low, "coverage@10", base, 0.01, 0.02, -0.005) < 0.4  # 2.5 points below: the reading is wrong
    # without the expected reading the measured change keeps to the bound by its margin
    assert value(low, "coverage@10", base, 0.06, 0.02) == 0.4
    assert value(low, "coverage@10", base, 0.01, 0.0) < 0.4


def test_the_penalty_beyond_the_bound_scales_with_the_objective():
    """Novelty is counted in bits (about 2.8 on MovieLens-100K): a penalty of fixed units let a search
    take +115% novelty at an expected NDCG@10 -19%."""
    base, untuned = 0.1, {"NDCG@10": 0.1, "novelty@10": 2.8}
    far = {"NDCG@10": 0.081, "novelty@10": 6.0}  # measured and expected -19%, 18 points past a 1% bound
    assert policy_value(far, "novelty@10", base, 0.01, 0.0, -0.19, 0.0, 2.8) < 2.8
    assert policy_value(untuned, "novelty@10", base, 0.01, 0.0, 0.0, 0.0, 2.8) == 2.8
    near = {"NDCG@10": 0.1, "novelty@10": 3.0}  # 0.1 points past the bound: a small loss, not a wall
    assert 2.8 < policy_value(near, "novelty@10", base, 0.01, 0.0, -0.011, 0.0, 2.8) < 3.0
    small = {"NDCG@10": 0.1, "coverage@10": 0.06}  # a small objective (coverage 0.05) keeps the same share
    assert 0.05 < policy_value(small, "coverage@10", base, 0.01, 0.0, -0.011, 0.0, 0.05) < 0.06


def test_the_consistency_margin_is_z_standard_errors_of_measured_minus_expected():
    base = np.array([1.0, 0.0, 0.5, 0.0])
    gains = np.array([0.0, 0.0, 0.5, 1.0])
    expected = np.array([-0.1, 0.0, 0.0, 0.0])
    diff = (gains - base) / base.mean() - expected
    assert policy_bound.consistency_margin(gains, base, expected) == pytest.approx(1.645 * diff.std(ddof=1) / 2)
    assert policy_bound.consistency_margin(base, base, np.zeros(4)) == 0.0


def test_the_policy_search_starts_with_one_lever_at_a_time_below_a_kept_head(tiny, tmp_path):
    probes = tune_module.policy_probes(TuneConfig(target="policy"))
    levers = ("diversity", "freshness", "popularity", "hub_penalty")
    assert len(probes) == 8
    for probe in probes:
        assert probe["keep_top"] in (5, 8) and probe["short_list"] == 100
        assert sum(probe[name] != 0.0 for name in levers) == 1  # one lever, the others untuned
    no_hubs = tune_module.policy_probes(TuneConfig(target="policy", space={"hub_penalty": [0.0]}))
    assert len(no_hubs) == 6 and all("hub_penalty" not in p for p in no_hubs)  # fixed: not a trial setting
    assert tune_module.policy_probes(TuneConfig(target="policy", space={"keep_top": [0]})) == []
    dataset, split = tiny
    run_tune(dataset, split, quick(trials=1, space={**SMALL, "lr": [5e-3]}), tmp_path / "model")
    cfg = TuneConfig(target="policy", minutes=5.0, trials=3, objective="coverage@10", max_ndcg_loss=1.0)
    record = run_tune(dataset, split, cfg, tmp_path / "policy", model=tmp_path / "model" / "best")
    assert [t["params"] for t in record["trials"][1:3]] == probes[:2]  # after the untuned trial


def test_parse_space_types_values():
    assert parse_space(["dim=32,64", "loss=full", "use_features=false", "lr=0.001"]) == {
        "dim": [32, 64], "loss": ["full"], "use_features": [False], "lr": [0.001]}


def test_cli_tune_prints_progress_and_writes_the_report(tmp_path):
    data = tmp_path / "data"
    write_synth(WORLD, data)
    out = CliRunner().invoke(cli, ["tune", "--data", str(data), "--out", str(tmp_path / "study"), "--trials", "2",
                                   "--steps", "40", "--space", "dim=16", "--space", "layers=1", "--space", "heads=1",
                                   "--space", "max_len=8", "--space", "negatives=128", "--space", "loss=sampled",
                                   "--space", "use_features=true"])
    assert out.exit_code == 0, out.output
    assert "trial 1:" in out.output and "best model:" in out.output
    record = json.loads((tmp_path / "study" / "tune.json").read_text())
    assert record["completed"] == 2 and (tmp_path / "study" / "tune.png").exists()
    # names in the study folder, not host paths (the report was written with both absolute)
    assert record["study"] == "study.db" and record["checkpoint"] == "best"
    assert str(tmp_path) not in (tmp_path / "study" / "tune.json").read_text()
    assert (tmp_path / "study" / record["checkpoint"] / "config.json").exists()
    assert f"best model: {tmp_path / 'study' / 'best'}" in " ".join(out.output.split())


def test_the_first_policy_trial_keeps_to_a_space_that_excludes_the_untuned_values():
    assert tune_module.untuned_policy(TuneConfig(target="policy")) == tune_module.UNTUNED
    long_tail = TuneConfig(target="policy", space={"popularity": [-0.1, -0.2], "diversity": (0.1, 0.5, "float")})
    assert tune_module.untuned_policy(long_tail) == {"freshness": 0.0, "freshness_days": 30.0, "hub_penalty": 0.0,
                                                     "short_list": 100, "keep_top": 0}
    assert tune_module.POLICY_SPACE["popularity"][0] < 0  # the search reaches long-tail weights


@pytest.mark.parametrize("values, message", [
    (dict(minutes=float("nan")), "--minutes must be a finite time"), (dict(minutes=-1.0, trials=1), "--minutes"),
    (dict(trials=0), "--trials must be at least 1"), (dict(eval_users=-1), "--eval-users"),
    (dict(trial_minutes=0.0), "--trial-minutes"), (dict(max_ndcg_loss=-1.0), "--max-ndcg-loss"),
    (dict(train=TrainConfig(steps=-1)), "steps"),
    (dict(space={"dim": ["abc"]}), "--space dim takes int values, not 'abc'"),
    (dict(space={"nokey": [1]}), "--space nokey: no such setting"),
    (dict(target="policy", space={"dim": [32]}), "--space dim: no such setting"),
    (dict(space={"heads": [0]}), "--space heads: 0 is out of range; give values of at least 1"),  # was 32 heads
    (dict(strategies=("hybrid",), space={"knn_weight": [-1.0]}), "--space knn_weight: -1.0 is out of range"),
    (dict(space={"lr": (0.0, 1e-2, "log")}), "--space lr: 0.0 is out of range; give values above 0"),
    (dict(space={"loss": ["foo"]}), "--space loss: 'foo' is out of range; give values among sampled, full"),
    (dict(space={"dropout": [1.5]}), "--space dropout: 1.5 is out of range"),
])
def test_impossible_tuning_settings_are_refused_before_any_trial(values, message):
    with pytest.raises(ConfigError, match=message):
        TuneConfig(**values).validate()


def test_space_ranges_and_typed_lists_still_pass():
    TuneConfig(space={**SMALL, "lr": (1e-3, 1e-2, "log"), "use_features": [False], "dropout": [0, 0.1]}).validate()
    TuneConfig(target="policy", space={"diversity": (0.1, 0.5, "float"), "popularity": [-0.1]}).validate()


def test_cli_tune_checks_its_arguments_before_reading_the_data(tmp_path):
    out = CliRunner().invoke(cli, ["tune", "--data", str(tmp_path), "--out", str(tmp_path / "s"), "--minutes", "nan"])
    assert out.exit_code == 2 and "Invalid value for '--minutes'" in out.output  # not "no items.csv here"


def test_cli_tune_passes_the_bound_options_on(tmp_path, monkeypatch):
    out = CliRunner().invoke(cli, ["tune", "--data", str(tmp_path), "--out", str(tmp_path / "s"), "--target", "policy",
                                   "--margin-z", "-1"])
    assert out.exit_code == 2 and "Invalid value for '--margin-z'" in out.output
    seen = {}

    def stop(self):  # TuneConfig.validate: read the options, then stop before any data is read
        seen.update(margin_z=self.margin_z, expected_bound=self.expected_bound)
        raise ConfigError("stopped here")

    monkeypatch.setattr(TuneConfig, "validate", stop)
    CliRunner().invoke(cli, ["tune", "--data", str(tmp_path), "--out", str(tmp_path / "s"), "--target", "policy",
                             "--margin-z", "0.5", "--no-expected-bound"])
    assert seen == {"margin_z": 0.5, "expected_bound": False}
    CliRunner().invoke(cli, ["tune", "--data", str(tmp_path), "--out", str(tmp_path / "s"), "--target", "policy"])
    assert seen == {"margin_z": None, "expected_bound": True}


def test_a_study_folder_is_resumed_only_on_the_data_it_was_tuned_on():
    """A study made on other data was resumed: its trial 0, scored on that data, stayed the best."""
    from types import SimpleNamespace

    from edgerec.studies.tune import TuneConfig
    from edgerec.studies.tune_store import check_same_target as _check_same_target

    attrs = {}
    study = SimpleNamespace(user_attrs=attrs, set_user_attr=attrs.__setitem__)
    cfg = TuneConfig()
    _check_same_target(study, cfg, "data-a")
    _check_same_target(study, cfg, "data-a")
    with pytest.raises(ConfigError, match="^this study folder tunes on another data set"):
        _check_same_target(study, cfg, "data-b")
    assert attrs["data"] == "data-a"
