"""Host commands not covered by test_real_data_shapes.py (tune, federate, ...) on odd but legal logs.

An audit on MovieLens-100K cut down (three events per user, every timestamp equal) and tiny
synthetic worlds: each case printed a traceback, misleading advice or a figure never measured.
"""

import numpy as np
import pytest
from click.testing import CliRunner
from test_real_data_shapes import _ratings

from edgerec.cli.main import cli
from edgerec.data.loaders import import_dataset
from edgerec.data.split import leave_last_out
from edgerec.data.store import save_dataset
from edgerec.errors import ConfigError, DataError


def _same_time(tmp_path, per_user):
    """_ratings' log with every event at one time (an export that kept the day's date, say)."""
    _ratings(tmp_path, per_user)
    lines = (tmp_path / "log.csv").read_text().splitlines()
    cells = [line.split(",") for line in lines[1:]]
    (tmp_path / "log.csv").write_text("\n".join([lines[0]] + [",".join([*c[:2], "881250949", *c[3:]]) for c in cells]))
    return import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv")


@pytest.mark.parametrize("strategy, error, message", [
    ("sasrec", ConfigError, "no training windows"),
    ("itemknn", DataError, "no training user consumed two distinct items")])
def test_tune_on_data_its_trials_cannot_use_prints_the_error_without_optunas_traceback(
        tmp_path, capfd, strategy, error, message):
    """Three events per user: Optuna logged the trial's failure with a 20-line traceback before the
    command's one-line error (every EdgerecError raised inside a trial did)."""
    from edgerec.models.train import TrainConfig
    from edgerec.studies.tune import TuneConfig, run_tune

    dataset = _ratings(tmp_path, per_user=3)
    cfg = TuneConfig(minutes=1.0, trials=1, strategies=(strategy,), train=TrainConfig(steps=5, batch_size=8))
    with pytest.raises(error, match=message):
        run_tune(dataset, leave_last_out(dataset), cfg, tmp_path / "tune")
    err = capfd.readouterr().err
    assert "Traceback" not in err and "failed with" not in err


def test_tune_importance_leaves_out_settings_the_trials_never_varied():
    """Two trials on 40 MovieLens users drew dim=64, layers=2, heads=2 both times and the importance
    table printed 0.0000 for each, as if measured not to matter."""
    import optuna

    from edgerec.studies.tune import _importance

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    dists = {"dim": optuna.distributions.CategoricalDistribution([32, 64]),
             "lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
             "dropout": optuna.distributions.FloatDistribution(0.0, 0.5)}
    rng = np.random.default_rng(0)
    for _ in range(8):
        lr, dropout = float(10 ** rng.uniform(-4, -2)), float(rng.uniform(0, 0.5))
        study.add_trial(optuna.trial.create_trial(params={"dim": 64, "lr": lr, "dropout": dropout},
                                                  distributions=dists, value=lr * 100 + 0.01 * dropout))
    importance = _importance(optuna, study)
    assert set(importance) == {"lr", "dropout"} and importance["lr"] > importance["dropout"]
    one = optuna.create_study(direction="maximize")
    for value in (0.1, 0.2):
        one.add_trial(optuna.trial.create_trial(params={"dim": 64}, distributions={"dim": dists["dim"]},
                                                value=value))
    assert _importance(optuna, one) == {}


def test_federate_on_a_log_with_one_timestamp_says_the_time_split_is_empty(tmp_path):
    """Every event at one time: the early share was empty and v1's training said "no user has two
    consumed items ... import a log in which users consume several items each" of users with eight."""
    from edgerec.studies.fed_world import split_by_time

    dataset = _same_time(tmp_path, per_user=8)
    with pytest.raises(DataError, match="1 distinct timestamp.*splits it by time"):
        split_by_time(dataset, 0.7)
    save_dataset(dataset, tmp_path / "data")
    result = CliRunner().invoke(cli, ["federate", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "fed"),
                                      "--rounds", "1", "--clients", "2", "--train-minutes", "0.1"])
    assert result.exit_code != 0 and "distinct timestamp" in result.output and "Traceback" not in result.output
    spread = _ratings(tmp_path, per_user=8)
    early, cut = split_by_time(spread, 0.7)
    assert 0 < len(early.interactions.timestamp) < len(spread.interactions.timestamp)


def test_ope_noise_no_resample_showed_is_not_measured_not_zero():
    """`experiment ope --users 2 --days 1`: IPS and SNIPS saw no list where the target matched the
    logger, drew 0 in every resample and printed standard error 0.0000, lists_for_goal 0.0 and
    days_for_goal 1, i.e. "already within 5%" for an estimator that saw nothing."""
    from edgerec.studies import ope

    k, rng = 4, np.random.default_rng(3)
    logs = [ope.LoggedList(rng.integers(0, 2, k).astype(float), np.full(k, 0.25), np.zeros(k, bool),
                           np.arange(k), np.arange(k)) for _ in range(3)]
    errors = ope.standard_errors(logs, resamples=50)
    assert errors["IPS"] is None and errors["SNIPS"] is None
    assert ope.lists_for_goal(errors["IPS"], 1.5, 3) is None and ope.days_for_goal(None, 3, 1) is None
    assert ope.lists_for_goal(0.3, 0.0, 3) is None  # no relative goal around a truth of 0
    assert ope.lists_for_goal(0.1, 1.0, 100) == pytest.approx(100 * (1.96 * 0.1 / 0.05) ** 2)
    varied = [ope.LoggedList(np.array([1.0, 0, 0, 0]) * (i % 2), np.full(k, 0.25), np.ones(k, bool),
                             np.arange(k), np.arange(k)) for i in range(6)]
    assert ope.standard_errors(varied, resamples=50)["IPS"] > 0


def test_fairness_provider_gini_without_two_providers_is_not_measured_not_zero():
    """`report fairness` on MovieLens (no provider column) printed provider_gini 0.0000 (perfect equality)
    beside its own note that the items name fewer than two providers."""
    from edgerec.studies.fairness import _popularity_bias

    lists = [["a", "b"], ["b", "c"]]
    popularity, bucket = {"a": 3, "b": 2, "c": 1}, {"a": "head", "b": "tail", "c": "tail"}
    for provider_of, providers in (({}, []), ({"a": "p", "b": "p", "c": "p"}, ["p"])):
        assert _popularity_bias(lists, popularity, bucket, provider_of, providers)["provider_gini"] is None
    two = _popularity_bias(lists, popularity, bucket, {"a": "p", "b": "p", "c": "q"}, ["p", "q"])
    assert two["provider_gini"] > 0 and two["long_tail_share"] == 0.75


def test_content_held_out_and_training_texts_skip_items_without_text():
    """`content distill` on MovieLens with 5 of 1,316 items titled: 8 held-out texts and 30 training
    texts were mostly empty strings; the held-out cosine (0.52, min 0.52) was the empty string's."""
    from edgerec.data.schema import Catalog
    from edgerec.models.content import held_out_texts

    titles = [""] * 12
    titles[2], titles[7], titles[9] = "Heat", "Ran", "Up"
    catalog = Catalog([f"i{n}" for n in range(12)], text={"title": titles})
    train, held = held_out_texts(catalog, 30, 1, seed=0)
    assert len(held) == 1 and len(train) == 2 and sorted(train + held) == ["Heat", "Ran", "Up"]
    with pytest.raises(ConfigError, match="3 items with a title, description or tags and --held-out 3"):
        held_out_texts(catalog, 30, 3, seed=0)
    from edgerec.models.content import text_order  # the order `content report` reads titles in

    assert sorted(text_order(catalog, 0).tolist()) == [2, 7, 9]
    full = Catalog([f"i{n}" for n in range(5)], text={"title": list("abcde")})  # every item titled: order as before
    assert text_order(full, 4).tolist() == np.random.default_rng(4).permutation(5).tolist()


def test_neighbour_agreement_needs_more_texts_than_neighbours():
    """`content report --held-out 2`: MiniLM against itself showed a top-10 agreement of 0.2 (two texts,
    each its own neighbour, over 10); with 11 texts or fewer any two embeddings share every neighbour."""
    from edgerec.compress.content_distill import neighbour_agreement

    rng = np.random.default_rng(2)
    for n in (2, 11):
        x = rng.normal(size=(n, 8))
        assert neighbour_agreement(x, x) is None and neighbour_agreement(x, rng.normal(size=(n, 8))) is None
    x = rng.normal(size=(40, 8))
    assert neighbour_agreement(x, x) == 1.0 and neighbour_agreement(x, rng.normal(size=(40, 8))) < 0.6


def test_dp_popularity_on_a_catalog_of_at_most_k_items(tmp_path):
    """`study dp-popularity` on one MovieLens user's 39 items printed a top-50 recall of 0.78 (39 found
    over 50, when any estimate holds them all); on 6 items it ended in an IndexError traceback."""
    from edgerec.studies.dp_popularity import DPPopularityStudy, recall_at

    counts = np.arange(39.0)
    assert recall_at(counts, counts[::-1], 50) is None and recall_at(counts, counts[::-1], 39) is None
    assert recall_at(counts, counts, 10) == 1.0 and recall_at(counts, -counts, 10) == 0.0
    data = save_dataset(_ratings(tmp_path, per_user=3, items=6), tmp_path / "six")
    record = DPPopularityStudy(data, epsilons=(1.0,), devices=(200,), trials=2).measure(lambda *a: None)
    row = record["rows"][0]
    assert row["top10_recall"] is None and row["top50_recall"] is None and row["mae_share_of_top10_count"] is None
    assert row["count_mae"] > 0 and 0 <= row["ci95_coverage"] <= 1
    assert DPPopularityStudy.draw(record, tmp_path / "dp.png") is None or (tmp_path / "dp.png").exists()


def test_an_ab_test_with_one_user_in_an_arm_says_to_raise_users():
    """`experiment ab --users 2`: "each arm needs at least two users' values (got shape (1,))" named a numpy
    shape and no way out; arms are drawn at random, so a few users can leave one with a single user."""
    from edgerec.studies import stats

    with pytest.raises(ConfigError, match=r"one arm has 1 user\(s\): with simulated users raise --users"):
        stats.welch(np.array([1.0]), np.array([1.0, 2.0]), "plays")
    assert stats.welch(np.array([1.0, 3.0]), np.array([1.0, 2.0]), "plays").delta == pytest.approx(-0.5)


def test_a_simulation_of_one_user_names_the_options_not_the_config_object():
    """`experiment simulate|interleave --users 1` printed the whole SimConfig repr (activity model included)."""
    from edgerec.studies.simulator import SimConfig

    with pytest.raises(ConfigError) as caught:
        SimConfig(users=1, days=1, pre_days=0).validate()
    assert str(caught.value) == ("need --users >= 2, --days >= 1, --pre-days >= 0, --k >= 1, --seed >= 0 (got 1, 1, 0, "
                                 "10, 0)")


def test_federated_table_shows_an_arm_every_device_declined():
    """`federate --rounds 2 --epsilon 4` on a 50-user world: each DP round asked for epsilon 2, over a device's
    daily budget of 1, so all devices declined; the table showed the arm at v1's NDCG@10 as its result."""
    from edgerec.studies.federated import FederatedStudy

    arms = [{"arm": "v1 (no update)", "NDCG@10": 0.8, "HR@10": 1.0},
            {"arm": "FedAvg", "NDCG@10": 1.0, "HR@10": 1.0},
            {"arm": "DP-FedAvg eps 4", "NDCG@10": 0.8, "HR@10": 1.0, "epsilon": 4.0, "noise_multiplier": 1.8}]
    none = {"mean": None, "max": None, "n": 0}
    runs = {"FedAvg": {"bytes": {"mean": 3232.0, "max": 3232.0, "n": 4}, "ms": {"mean": 7.0}, "declined": 0},
            "DP-FedAvg eps 4": {"bytes": none, "ms": none, "declined": 4}}
    record = {"arms": arms, "runs": runs, "devices": 2, "delta": 1e-6, "training": {},
              "server": {"rounds": 2, "clients_per_round": 5}, "device_500_events": {"events": 78, "median_ms": 8.0}}
    rows = {r["arm"]: r for r in FederatedStudy.tables(record)[0].rows}
    assert (rows["DP-FedAvg eps 4"]["uploads"], rows["DP-FedAvg eps 4"]["declined"]) == (0, 4)
    assert (rows["FedAvg"]["uploads"], rows["FedAvg"]["declined"]) == (4, 0)
    assert rows["v1 (no update)"]["uploads"] is None
