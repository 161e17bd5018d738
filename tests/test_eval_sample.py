"""Large logs are evaluated on a seeded sample of their users (with every user of a 300k-user log the
demo's first baseline ran past 5 minutes unfinished); small ones, every user. The sample is stated, not hidden."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data.split import leave_last_out
from edgerec.models.baselines import make_baseline
from edgerec.models.evaluation import MAX_USERS, Evaluator, sample_rows


def test_sample_rows_is_a_seeded_sorted_subset_or_everyone():
    assert sample_rows(10, 0) is None and sample_rows(10, 10) is None and sample_rows(10, 11) is None
    assert len(sample_rows(10, 1)) == 1  # one user is a sample too
    rows = sample_rows(1000, 50)
    assert len(rows) == 50 and len(set(rows.tolist())) == 50 and (np.diff(rows) > 0).all()
    assert rows.min() >= 0 and rows.max() < 1000
    assert np.array_equal(rows, sample_rows(1000, 50))  # every model and run: the same users
    assert not np.array_equal(rows, sample_rows(1000, 50, seed=1))


@pytest.fixture(scope="module")
def split_and_scorer(small_dataset):
    split = leave_last_out(small_dataset)
    return small_dataset, split, make_baseline("itemknn", small_dataset, split)


def test_a_phase_past_the_limit_is_scored_on_the_stated_sample(split_and_scorer):
    dataset, split, scorer = split_and_scorer
    everyone = len(split.test_users)
    assert everyone > 40
    sampled = Evaluator(split, dataset.catalog, max_users=40).evaluate(scorer)
    assert sampled["users"] == 40 and sampled["users_in_phase"] == everyone
    explicit = Evaluator(split, dataset.catalog, max_users=0).evaluate(scorer, rows=sample_rows(everyone, 40))
    for key in ("HR@10", "NDCG@10", "MRR@10", "coverage@10"):
        assert sampled[key] == explicit[key]
    whole = Evaluator(split, dataset.catalog, max_users=0).evaluate(scorer)
    assert whole["users"] == everyone == whole["users_in_phase"]
    assert Evaluator(split, dataset.catalog).evaluate(scorer)["users"] == min(everyone, MAX_USERS)


def test_evaluate_says_when_it_sampled(tmp_path):
    world = tmp_path / "world"
    run = CliRunner().invoke
    assert run(cli, ["data", "synth", "--out", str(world), "--users", "150", "--items", "600", "--events", "8000",
                     "--seed", "1"]).exit_code == 0
    report = tmp_path / "eval.json"
    result = run(cli, ["evaluate", "--data", str(world), "--model", "popular", "--max-users", "30", "--json",
                       str(report)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "a seeded sample of 30 of" in result.output
    [row] = json.loads(report.read_text())["results"]
    assert row["users"] == 30 and row["users_in_phase"] > 30
    result = run(cli, ["evaluate", "--data", str(world), "--model", "popular", "--max-users", "0"])
    assert result.exit_code == 0 and "sample" not in result.output
    assert f"{MAX_USERS:,}" in run(cli, ["evaluate", "--help"]).output  # the help states the real default


def test_tied_scores_are_ordered_by_each_users_key_not_the_item_index(split_and_scorer):
    """A scorer that scores every item equal: each user's list follows that user's tie keys, so lists
    differ between users and are not the lowest item ids (catalogs are often numbered by popularity)."""
    from edgerec.models.evaluation import rank_of, top_k

    dataset, split, _ = split_and_scorer

    class Flat:
        name = "flat"

        def score(self, users, history):
            return np.zeros((len(users), split.n_items), np.float32)

    evaluator = Evaluator(split, dataset.catalog, max_users=60)
    ranks, lists = evaluator.ranks_and_lists(Flat())
    users, targets = split.test_users[sample_rows(len(split.test_users), 60)], \
        split.test_items[sample_rows(len(split.test_users), 60)]
    scores = np.zeros((len(users), split.n_items), np.float32)
    history = split.history("test")
    for row, user in enumerate(users):
        scores[row, history.of(user)] = -np.inf
    assert np.array_equal(lists, top_k(scores, 10, users)) and np.array_equal(ranks, rank_of(scores, targets, users))
    assert len({tuple(x) for x in lists.tolist()}) > 50  # not one id-ordered list for everybody
