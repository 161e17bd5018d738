"""`edgerec tune`, audit H5: a resumed study keeps its seed, step budget and item metadata; --space heads
divide every width; --space values are checked against the real limits before the study exists; queued
trials that never ran are not reported as trials."""

import dataclasses
import json
import math
from types import SimpleNamespace

import optuna
import pytest

from edgerec.data import SynthConfig, synth_dataset
from edgerec.data.split import leave_last_out
from edgerec.errors import ConfigError
from edgerec.models.train import TrainConfig
from edgerec.studies import tune as tune_module
from edgerec.studies.tune import TuneConfig, run_tune
from edgerec.studies.tune_store import check_same_setup, items_fingerprint

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
    run_tune(dataset, split, TuneConfig(minutes=5.0, trials=1, space=dict(SMALL), train=QUICK), folder)
    return folder / "best"


def knn(**kw) -> TuneConfig:
    """Item-kNN trials: no training, so a study of a few trials takes a second."""
    return TuneConfig(**{"minutes": 5.0, "strategies": ("itemknn",), "eval_users": 60, "seed": 0, **kw})


def policy(**kw) -> TuneConfig:
    return TuneConfig(**{"target": "policy", "minutes": 5.0, "trials": 1, "objective": "coverage@10",
                         "max_ndcg_loss": 1.0, **kw})


def states(folder) -> list[str]:
    study = optuna.load_study(study_name="edgerec-tune", storage=f"sqlite:///{folder / 'study.db'}")
    return [t.state.name for t in study.trials]


def recatalogued(dataset, **columns):
    """The same items, users and events (Dataset.fingerprint() unchanged) with other item metadata."""
    other = dataclasses.replace(dataset, catalog=dataclasses.replace(dataset.catalog, **columns))
    assert other.fingerprint() == dataset.fingerprint()
    return other


# 1 -------------------------------------------------------- seed and step budget of a resumed study
def test_resuming_with_another_seed_is_refused(tiny, tmp_path):
    """--seed draws the validation users of --eval-users: trials of two seeds were scored on other users."""
    dataset, split = tiny
    run_tune(dataset, split, knn(trials=1), tmp_path)
    with pytest.raises(ConfigError, match="^this study folder was tuned with other --seed; .*use another --out$"):
        run_tune(dataset, split, knn(trials=2, seed=99), tmp_path)
    assert states(tmp_path) == ["COMPLETE"]
    assert run_tune(dataset, split, knn(trials=2), tmp_path)["completed"] == 2  # the same command resumes


def test_resuming_with_another_step_budget_is_refused_and_more_time_is_not(tiny, tmp_path):
    """--steps changes what a trial's model learns; --minutes and --trial-minutes are only time limits."""
    dataset, split = tiny
    run_tune(dataset, split, knn(trials=1, train=TrainConfig(steps=50)), tmp_path)
    with pytest.raises(ConfigError, match="other --steps"):
        run_tune(dataset, split, knn(trials=2, train=TrainConfig(steps=500)), tmp_path)
    resumed = knn(trials=2, train=TrainConfig(steps=50), minutes=9.0, trial_minutes=2.0)
    assert run_tune(dataset, split, resumed, tmp_path)["completed"] == 2


def test_a_study_from_before_a_setting_was_kept_resumes_and_keeps_it_from_then_on():
    attrs: dict = {}
    study = SimpleNamespace(user_attrs=attrs, set_user_attr=attrs.__setitem__)
    check_same_setup(study, {"space": {}, "eval_users": 0})  # stored by an older edgerec
    check_same_setup(study, {"space": {}, "eval_users": 0, "seed": 1, "items": "abc"})
    assert attrs["setup"] == {"space": {}, "eval_users": 0, "seed": 1, "items": "abc"}
    with pytest.raises(ConfigError, match="other --seed"):
        check_same_setup(study, {"space": {}, "eval_users": 0, "seed": 2, "items": "abc"})


# 2 -------------------------------------------------------------------- heads divide the width
@pytest.mark.parametrize("space, message", [
    ({"heads": [3], "dim": [32]}, "--space heads: 3 heads do not divide dim 32"),  # was run with 1 head
    ({"heads": [1, 2, 4], "dim": [32, 34]}, "4 heads do not divide dim 34"),
    ({"dim": [30]}, "4 heads do not divide dim 30.*give --space heads values"),  # the default heads 1, 2, 4
    ({"heads": [3], "dim": (30, 32, "int")}, "3 heads do not divide dim 31"),
])
def test_heads_that_do_not_divide_every_width_are_refused_up_front(space, message):
    with pytest.raises(ConfigError, match=message):
        TuneConfig(space=space).validate()


def test_heads_that_divide_every_width_pass_and_item_knn_alone_reads_neither():
    TuneConfig(space={"heads": [1, 2, 4], "dim": [32, 64]}).validate()
    TuneConfig(space={"heads": [3], "dim": [24, 48]}).validate()
    TuneConfig(strategies=("itemknn",), space={"dim": [30]}).validate()


def test_the_saved_model_has_the_heads_the_report_names(tiny, tmp_path):
    dataset, split = tiny
    record = run_tune(dataset, split, TuneConfig(minutes=5.0, trials=1, train=QUICK,
                                                 space={**SMALL, "heads": [2]}), tmp_path)
    saved = json.loads((tmp_path / "best" / "config.json").read_text())
    assert record["best"]["params"]["heads"] == saved["model"]["heads"] == saved["info"]["tune"]["params"]["heads"] == 2


# 3 ----------------------------------------------------------------- the item metadata trials read
def test_the_items_fingerprint_follows_the_metadata_trials_read(tiny):
    dataset, _ = tiny
    catalog, base = dataset.catalog, items_fingerprint(dataset.catalog)
    n = len(catalog)
    changed = [
        dataclasses.replace(catalog, tags=[("retagged",)] * n),
        dataclasses.replace(catalog, text={**catalog.text, "genre": ["drama"] * n}),  # diversity@10, features
        dataclasses.replace(catalog, text={**catalog.text, "creator": ["one"] * n}),  # use_features
        dataclasses.replace(catalog, release_ts=catalog.release_ts + 86_400),  # the freshness lever
    ]
    assert all(items_fingerprint(c) != base for c in changed)
    retitled = dataclasses.replace(catalog, text={**catalog.text, "title": ["x"] * n})  # read by no trial
    assert items_fingerprint(retitled) == base


def test_a_policy_study_resumed_on_changed_item_metadata_is_refused(tiny, trained, tmp_path):
    """Best chosen on the old catalog, its test figure read on the new one: the audit's r9."""
    dataset, split = tiny
    run_tune(dataset, split, policy(), tmp_path, model=trained)
    n = len(dataset.catalog)
    for other in (recatalogued(dataset, tags=[("drama",) if i % 2 else ("comedy",) for i in range(n)]),
                  recatalogued(dataset, release_ts=dataset.catalog.release_ts + 30 * 86_400)):
        with pytest.raises(ConfigError, match="other item metadata in --data"):
            run_tune(other, split, policy(trials=2), tmp_path, model=trained)
    assert states(tmp_path)[0] == "COMPLETE" and "FAIL" not in states(tmp_path)
    assert run_tune(dataset, split, policy(trials=2), tmp_path, model=trained)["completed"] == 2


# 4 ------------------------------------------------------- --space values against the real limits
@pytest.mark.parametrize("target, space, message", [
    ("policy", {"diversity": [5.0]}, "--space diversity: 5.0 is out of range; Policy.diversity"),
    ("policy", {"short_list": [0]}, "--space short_list: 0 is out of range"),
    ("policy", {"keep_top": [-3]}, "--space keep_top: -3 is out of range"),
    ("policy", {"freshness_days": [0]}, "--space freshness_days: 0 is out of range"),
    ("policy", {"popularity": [math.nan]}, "--space popularity: nan is out of range"),
    ("policy", {"hub_penalty": [-2.0]}, "--space hub_penalty: -2.0 is out of range"),
    ("policy", {"diversity": (0.0, 2.0, "float")}, "--space diversity: 2.0 is out of range"),  # a range's end
    ("model", {"lr": [math.inf]}, "--space lr: inf is out of range"),
    ("model", {"knn_weight": [math.inf]}, "--space knn_weight: inf is out of range"),
    ("model", {"max_len": [1]}, "--space max_len: 1 is out of range"),
    ("model", {"dim": [2], "heads": [1]}, "--space dim: 2 is out of range"),
])
def test_space_values_outside_what_a_trial_builds_are_refused_up_front(target, space, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        TuneConfig(target=target, space=space).validate()


def test_the_whole_default_spaces_pass():
    TuneConfig(target="policy", space=dict(tune_module.POLICY_SPACE)).validate()
    TuneConfig(space={**tune_module.MODEL_SPACE, **tune_module.HYBRID_SPACE, **tune_module.KNN_SPACE}).validate()


def test_a_bad_space_leaves_no_study_so_the_corrected_command_runs(tiny, trained, tmp_path):
    dataset, split = tiny
    out = tmp_path / "study"
    with pytest.raises(ConfigError, match="--space diversity"):
        run_tune(dataset, split, policy(space={"diversity": [5.0]}), out, model=trained)
    assert not (out / "study.db").exists()
    assert run_tune(dataset, split, policy(space={"diversity": [0.5]}), out, model=trained)["completed"] == 1


# 5 ------------------------------------------------------------------ queued trials that never ran
def test_queued_probe_trials_are_not_reported_as_trials(tiny, trained, tmp_path):
    dataset, split = tiny
    record = run_tune(dataset, split, policy(trials=2), tmp_path, model=trained)
    assert [t["state"] for t in record["trials"]] == ["complete", "complete"]
    assert record["queued"] == len(tune_module.policy_probes(policy())) - 1  # the first probe ran as trial 1
    title = tune_module.TuneStudy.tables(record)[0].title
    assert title.startswith(f"2 trials (2 completed, 0 pruned, {record['queued']} queued")
    resumed = run_tune(dataset, split, policy(trials=3), tmp_path, model=trained)  # the queue runs on
    assert len(resumed["trials"]) == 3 and resumed["queued"] == record["queued"] - 1
