import numpy as np
import pytest

from edgerec.data.split import leave_last_out
from edgerec.errors import ConfigError, ModelError
from edgerec.models.baselines import BASELINES, make_baseline
from edgerec.models.evaluation import Evaluator


@pytest.fixture(scope="module")
def setup(small_dataset):
    split = leave_last_out(small_dataset)
    return small_dataset, split, Evaluator(split, small_dataset.catalog, k=10, chunk_users=128)


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_ranks_the_full_catalog(setup, name):
    dataset, split, evaluator = setup
    scorer = make_baseline(name, dataset, split)
    result = evaluator.evaluate(scorer)
    for key in ("HR@10", "NDCG@10", "MRR@10", "coverage@10", "diversity@10", "pop_percentile@10", "gini@10"):
        assert 0.0 <= result[key] <= 1.0
    assert result["novelty@10"] > 0
    assert result["users"] == len(split.test_users)
    ranks, lists = evaluator.ranks_and_lists(scorer)
    history = split.history("test")
    for row, user in enumerate(split.test_users[:50]):
        assert not set(lists[row]) & set(history.of(user).tolist())  # consumed items never come back


def test_item_knn_learns_personal_structure_popularity_cannot(setup):
    dataset, split, evaluator = setup
    popular = evaluator.evaluate(make_baseline("popular", dataset, split))
    itemknn = evaluator.evaluate(make_baseline("itemknn", dataset, split))
    assert itemknn["NDCG@10"] > 3 * popular["NDCG@10"]
    assert itemknn["coverage@10"] > popular["coverage@10"]


def test_bad_scorer_and_unknown_name_are_reported(setup):
    dataset, split, evaluator = setup

    class Broken:
        name = "broken"

        def score(self, users, history):
            return np.full((len(users), split.n_items), np.nan, np.float32)

    with pytest.raises(ModelError, match="NaN"):
        evaluator.evaluate(Broken())
    with pytest.raises(ConfigError, match="unknown baseline 'svd'"):
        make_baseline("svd", dataset, split)
