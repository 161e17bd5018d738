"""`edgerec evaluate` with several models: each later one's NDCG@10 change from the first, with its paired
standard error over the same users (is a difference between two models more than noise?)."""

import json

import numpy as np
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.models.metrics import describe_change, paired_change

SAME = {"change": 0.0, "standard_error": 0.0, "difference": 0.0, "difference_error": 0.0}


def test_paired_change_is_the_mean_difference_and_its_standard_error_as_shares_of_the_base():
    base = np.array([1.0, 0.0, 0.5, 0.5])
    gains = np.array([1.0, 1.0, 0.5, 0.0])
    change = paired_change(gains, base)
    diff = gains - base  # 0, 1, 0, -0.5: mean 0.125, sd 0.6292
    assert np.isclose(change["change"], 0.125 / 0.5)
    assert np.isclose(change["standard_error"], diff.std(ddof=1) / 2 / 0.5)
    assert np.isclose(change["difference"], 0.125) and np.isclose(change["difference_error"], diff.std(ddof=1) / 2)
    assert paired_change(base, base) == SAME
    assert describe_change(change) == "+25.0% (s.e. 62.9%)"


def test_a_base_scoring_zero_gives_no_relative_change_but_the_absolute_difference():
    """A relative change from a base of 0 means nothing: it reads n/a, not a huge number."""
    change = paired_change(np.array([0.5, 0.0, 0.25, 0.25]), np.zeros(4))
    assert change["change"] is None and change["standard_error"] is None
    assert np.isclose(change["difference"], 0.25)
    assert np.isclose(change["difference_error"], np.array([0.5, 0.0, 0.25, 0.25]).std(ddof=1) / 2)
    assert describe_change(change) == "n/a, base scores 0: +0.2500 (s.e. 0.1021)"
    assert paired_change(np.zeros(1), np.zeros(1)) == {**SAME, "change": None, "standard_error": None}


def test_evaluate_reports_each_later_model_against_the_first(tmp_path):
    world, report = tmp_path / "world", tmp_path / "eval.json"
    runner = CliRunner()
    made = runner.invoke(cli, ["data", "synth", "--out", str(world), "--users", "150", "--items", "600",
                               "--events", "8000", "--seed", "2"])
    assert made.exit_code == 0, made.output
    result = runner.invoke(cli, ["evaluate", "--data", str(world), "--model", "popular", "--model", "itemknn",
                                 "--model", "popular", "--json", str(report)])
    assert result.exit_code == 0, result.output
    first, knn, again = json.loads(report.read_text())["results"]
    assert "NDCG@10 vs first" not in first
    change = knn["NDCG@10 vs first"]
    assert np.isclose(change["change"], knn["NDCG@10"] / first["NDCG@10"] - 1)
    assert change["standard_error"] > 0  # the two lists differ for some users
    assert again["NDCG@10 vs first"] == SAME  # the same model: no difference
    assert "change (s.e.)" in result.output
