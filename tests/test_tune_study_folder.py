"""`edgerec tune`'s study folder and report: fixed settings, single strategies, foreign files and models,
killed runs, changed options on resume, pruned trials (the audit's defects, one test each at least)."""

import json
import shutil
import sqlite3

import optuna
import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data import SynthConfig, synth_dataset, write_synth
from edgerec.data.split import leave_last_out
from edgerec.errors import ConfigError, ModelError
from edgerec.models.baselines import Hybrid
from edgerec.models.checkpoint import load_model
from edgerec.models.evaluation import Evaluator
from edgerec.models.scoring import ModelScorer
from edgerec.models.train import TrainConfig
from edgerec.runtime.atomic import claim
from edgerec.studies import tune as tune_module
from edgerec.studies import tune_store
from edgerec.studies.tune import TuneConfig, run_tune

WORLD = SynthConfig(users=150, items=500, events=6_000, seed=11)
SMALL = {"dim": [16], "layers": [1], "heads": [1], "max_len": [8], "dropout": [0.0], "loss": ["sampled"],
         "negatives": [128], "use_features": [True], "lr": [5e-3]}
QUICK = TrainConfig(steps=60, batch_size=64)

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def tiny():
    dataset = synth_dataset(WORLD)
    return dataset, leave_last_out(dataset)


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    """A model checkpoint of the tiny world (a one-trial tune's best)."""
    dataset, split = tiny
    folder = tmp_path_factory.mktemp("model")
    run_tune(dataset, split, quick(trials=1), folder)
    return folder / "best"


def quick(**kw) -> TuneConfig:
    return TuneConfig(**{"minutes": 5.0, "space": dict(SMALL), "train": QUICK, "seed": 0, **kw})


def policy(**kw) -> TuneConfig:
    return TuneConfig(**{"target": "policy", "minutes": 5.0, "trials": 2, "objective": "coverage@10",
                         "max_ndcg_loss": 1.0, **kw})


# 1 ---------------------------------------------------------------- settings --space fixes
def test_settings_fixed_by_space_reach_policy_json_the_best_table_and_the_test_score(tiny, trained, tmp_path,
                                                                                     monkeypatch):
    dataset, split = tiny
    seen, real = [], tune_module.PolicyScorer

    def watched(*args, **kwargs):
        scorer = real(*args, **kwargs)
        seen.append((scorer.policy.keep_top, scorer.policy.short_list))
        return scorer

    monkeypatch.setattr(tune_module, "PolicyScorer", watched)
    cfg = policy(space={"keep_top": [5], "short_list": [50], "popularity": [-0.5]})
    record = run_tune(dataset, split, cfg, tmp_path, model=trained)
    for where in (record["policy"], json.loads((tmp_path / "policy.json").read_text()), record["best"]["params"]):
        assert (where["keep_top"], where["short_list"], where["popularity"]) == (5, 50, -0.5)
    assert seen[-2] == (5, 50)  # the test split: the tuned policy as its trials ran it, then the untuned one
    assert "best:" in tune_module.TuneStudy.tables(record)[1].title
    assert {"setting": "keep_top", "value": 5} in tune_module.TuneStudy.tables(record)[1].rows


# 2 ------------------------------------------------------------- a single strategy
def test_a_single_hybrid_strategy_reports_the_hybrid_test_score(tiny, tmp_path):
    dataset, split = tiny
    record = run_tune(dataset, split, quick(trials=2, strategies=("hybrid",)), tmp_path)
    best = record["best"]
    assert best["params"]["strategy"] == "hybrid"
    folder = tmp_path / (record["winner_model"] or record["checkpoint"])
    assert tune_store.saved_trial(folder) == best["number"]
    model = ModelScorer(load_model(folder)[0], "model")
    evaluator = Evaluator(split, dataset.catalog, k=10)
    hybrid = Hybrid([(model, 1.0), (tune_module.ItemKNN(split), best["params"]["knn_weight"])], name="hybrid")
    assert record["test"]["NDCG@10"] == pytest.approx(evaluator.evaluate(hybrid, "test")["NDCG@10"])
    assert record["test"]["NDCG@10"] != pytest.approx(evaluator.evaluate(model, "test")["NDCG@10"])


def test_a_single_itemknn_strategy_reports_its_test_score_and_no_model(tiny, tmp_path):
    dataset, split = tiny
    record = run_tune(dataset, split, quick(trials=2, strategies=("itemknn",), space={"neighbors": [20]}), tmp_path)
    assert record["best"]["params"]["strategy"] == "itemknn" and record["best"]["params"]["neighbors"] == 20
    assert record["test"]["NDCG@10"] > 0
    assert record["checkpoint"] is None and not (tmp_path / "best").exists()


# 3 ------------------------------------------------------------ a model of another catalog
def test_a_policy_over_a_model_of_another_catalog_is_refused(tiny, tmp_path):
    other = synth_dataset(SynthConfig(users=100, items=300, events=3_000, seed=5))
    run_tune(other, leave_last_out(other), quick(trials=1), tmp_path / "other")
    dataset, split = tiny
    with pytest.raises(ModelError, match="another catalog"):
        run_tune(dataset, split, policy(), tmp_path / "policy", model=tmp_path / "other" / "best")


# 4 ------------------------------------------------------------ folders the study did not write
def test_an_out_holding_the_users_own_checkpoint_is_refused_and_kept(tiny, trained, tmp_path):
    dataset, split = tiny
    own = tmp_path / "out" / "best"
    shutil.copytree(trained, own)
    config = json.loads((own / "config.json").read_text())
    del config["info"]["tune"]  # a checkpoint of `edgerec train`
    (own / "config.json").write_text(json.dumps(config))
    before = (own / "config.json").read_text()
    with pytest.raises(ConfigError, match="best/"):
        run_tune(dataset, split, quick(trials=1), tmp_path / "out")
    assert (own / "config.json").read_text() == before
    # the same after a study exists: a tuned model of another study, or a foreign folder in candidates/
    run_tune(dataset, split, quick(trials=1), tmp_path / "study")
    (tmp_path / "study" / "candidates" / "mine").mkdir(parents=True)
    with pytest.raises(ConfigError, match="candidates/"):
        run_tune(dataset, split, quick(trials=2), tmp_path / "study")
    assert (tmp_path / "study" / "candidates" / "mine").is_dir()
    (tmp_path / "study" / "candidates" / "mine").rmdir()
    shutil.rmtree(tmp_path / "study" / "best")
    shutil.copytree(trained, tmp_path / "study" / "best")  # tuned, by another study
    with pytest.raises(ConfigError, match="best/"):
        run_tune(dataset, split, quick(trials=2), tmp_path / "study")


# 5 ------------------------------------------------------------ a run killed during trial 0
def test_a_run_killed_in_trial_zero_runs_the_untuned_baseline_again(tiny, tmp_path):
    dataset, split = tiny
    cfg = quick(trials=2, space={**SMALL, "lr": (1e-3, 1e-2, "log")})
    study = tune_store.open_study(optuna, cfg.study_name, tmp_path, cfg.seed)
    study.enqueue_trial(tune_module.default_params(cfg))
    study.ask()  # trial 0 running with the defaults, then the process is killed (kill -9: nothing is told)
    record = run_tune(dataset, split, cfg, tmp_path)
    states = [t["state"] for t in record["trials"]]
    assert states[0] == "fail" and states.count("complete") == 2
    assert record["trials"][1]["params"]["lr"] == TrainConfig().lr  # the baseline, not a TPE draw


def test_a_second_process_on_the_same_study_is_refused(tiny, tmp_path):
    dataset, split = tiny
    held = claim(tmp_path, "study.lock")  # another run holds the folder
    try:
        with pytest.raises(ConfigError, match="another edgerec tune is running"):
            run_tune(dataset, split, quick(trials=1), tmp_path)
    finally:
        held.release()
    assert run_tune(dataset, split, quick(trials=1), tmp_path)["completed"] == 1


# 6 ------------------------------------------------------------ what best/ holds
def test_best_holds_the_model_with_the_best_score_of_its_own(tiny, tmp_path):
    dataset, split = tiny
    cfg = quick(trials=4, strategies=("sasrec", "hybrid"))
    record = run_tune(dataset, split, cfg, tmp_path)
    study = optuna.load_study(study_name=cfg.study_name, storage=f"sqlite:///{tmp_path / 'study.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    own = {t.number: tune_store.model_value(t) for t in done}
    hybrids = [t for t in done if tune_store.settings(t)["strategy"] == "hybrid"]
    assert hybrids and all(own[t.number] != t.value for t in hybrids)  # a hybrid's model alone scores otherwise
    best_own = max(own, key=own.get)
    assert tune_store.saved_trial(tmp_path / "best") == best_own
    assert record["checkpoint_of"] == {"trial": best_own, "strategy": tune_store.settings(study.trials[best_own])[
        "strategy"], "value": own[best_own]}
    if record["best"]["number"] != best_own:  # the winner's model is kept for its test score
        assert record["winner_model"] == "winner"
        assert tune_store.saved_trial(tmp_path / "winner") == record["best"]["number"]
    assert record["test"]


def test_the_cli_says_what_best_holds_when_item_knn_wins(tmp_path):
    data = tmp_path / "data"
    write_synth(WORLD, data)
    out = CliRunner().invoke(cli, ["tune", "--data", str(data), "--out", str(tmp_path / "s"), "--trials", "1",
                                   "--strategies", "itemknn"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "item-kNN (no trained model)" in text and "no trained model was kept" in text
    assert "best model:" not in text


def test_the_cli_names_the_hybrid_winners_parts(tmp_path):
    from edgerec.cli.tune_cmd import _say_models

    record = {"objective": "NDCG@10", "winner": "hybrid", "winner_model": "winner",
              "best": {"number": 3, "params": {"knn_weight": 0.5}},
              "checkpoint_of": {"trial": 1, "strategy": "sasrec", "value": 0.25}}
    from edgerec.cli import output

    with output.console.capture() as captured:
        _say_models(record, tmp_path)
    text = " ".join(captured.get().split())
    assert "a hybrid" in text and "knn_weight 0.5000" in text and "trial 1, sasrec alone" in text
    assert "validation NDCG@10 0.2500" in text


# 7 + 9 -------------------------------------------------------- a resumed study keeps its options
def test_resuming_with_another_space_or_strategies_is_refused(tiny, tmp_path):
    dataset, split = tiny
    cfg = quick(trials=1, space={**SMALL, "heads": [1, 2]})
    run_tune(dataset, split, cfg, tmp_path)
    for changed in (quick(trials=2, space={**SMALL, "heads": [1]}),
                    quick(trials=2, space=cfg.space, strategies=("sasrec", "itemknn"))):
        with pytest.raises(ConfigError, match="use another --out"):
            run_tune(dataset, split, changed, tmp_path)
    study = optuna.load_study(study_name=cfg.study_name, storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"]  # nothing failed on the way
    assert run_tune(dataset, split, quick(trials=2, space=cfg.space), tmp_path)["completed"] == 2


def test_a_policy_study_is_resumed_only_over_its_model_and_bound(tiny, trained, tmp_path):
    dataset, split = tiny
    run_tune(dataset, split, policy(trials=1), tmp_path / "policy", model=trained)
    other = tmp_path / "other"
    run_tune(dataset, split, quick(trials=1), other)  # the same catalog, another save
    for cfg, model, flag in ((policy(), other / "best", "--model"),
                             (policy(max_ndcg_loss=0.5), trained, "--max-ndcg-loss"),
                             (policy(margin_z=0.0), trained, "--margin-z"),
                             (policy(expected_bound=False), trained, "--expected-bound"),
                             (policy(eval_users=50), trained, "--eval-users")):
        with pytest.raises(ConfigError, match=flag):
            run_tune(dataset, split, cfg, tmp_path / "policy", model=model)
    assert run_tune(dataset, split, policy(), tmp_path / "policy", model=trained)["completed"] == 2


# 8 ------------------------------------------------------------ a study.db that is not one
@pytest.mark.parametrize("kind", ["garbage", "other program"])
def test_a_study_db_that_is_not_a_tuning_study_is_refused(tiny, tmp_path, kind):
    dataset, split = tiny
    path = tmp_path / "study.db"
    if kind == "garbage":
        path.write_bytes(bytes(range(256)) * 12)
    else:
        with sqlite3.connect(path) as db:
            db.execute("create table notes(x)")
        db.close()
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="^study.db in --out is not an edgerec tuning study; use another --out$"):
        run_tune(dataset, split, quick(trials=1), tmp_path)
    assert path.read_bytes() == before


def test_an_optuna_storage_of_another_study_is_refused(tiny, tmp_path):
    dataset, split = tiny
    optuna.create_study(study_name="theirs", storage=f"sqlite:///{tmp_path / 'study.db'}")
    with pytest.raises(ConfigError, match="not an edgerec tuning study"):
        run_tune(dataset, split, quick(trials=1), tmp_path)
    assert optuna.get_all_study_names(f"sqlite:///{tmp_path / 'study.db'}") == ["theirs"]
    tune_store.check_study_file(tmp_path / "absent.db", "edgerec-tune")  # a new study


# 10 ----------------------------------------------------------- pruned trials
def test_pruned_trials_carry_no_objective_value(tiny, tmp_path, monkeypatch):
    dataset, split = tiny
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: self.number == 1)
    cfg = quick(trials=2, objective="MRR@10", space={**SMALL, "lr": (1e-3, 1e-2, "log")})
    record = run_tune(dataset, split, cfg, tmp_path)
    pruned = record["trials"][1]
    assert pruned["state"] == "pruned" and pruned["value"] is None
    study = optuna.load_study(study_name=cfg.study_name, storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert study.trials[1].value is not None  # Optuna keeps its last epoch's NDCG@10 there
    assert record["best"]["number"] == 0
