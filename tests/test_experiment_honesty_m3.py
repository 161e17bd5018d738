"""The experiment tools after audit M3 (MovieLens-100K): a sensitivity gain only for effects that are
there, every record and verdict naming who the simulated users are, alpha checked before simulating,
and `interleave --help` naming the test that decides."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.errors import ConfigError
from edgerec.studies import experiments, sensitivity, stats
from edgerec.studies.experiments import (
    AAStudy,
    ABStudy,
    BundleComparisonStudy,
    InterleaveAAStudy,
    InterleaveStudy,
    OPEStudy,
    SimulateStudy,
    aa_rates,
    interleave_aa_rates,
    interleave_tests,
)
from edgerec.studies.sensitivity import SensitivityStudy
from edgerec.studies.simulator import Arm, SimConfig

FITTED = "users simulated by a click model fitted on the log"
SYNTH = "users simulated by the synthetic world's ground-truth user model"


def _run(n: int = 400, seed: int = 0) -> dict:
    """Per-user arrays of a sensitivity run in which neither test sees an effect, though both lean the
    same way: 21 users gain a play and 20 lose one under the treatment (mean +1/400, paired p ~ 0.9),
    and 21 users credit B with one more click, 20 credit A (credit mean +1/400)."""
    rng = np.random.default_rng(seed)
    y = rng.poisson(3.0, n).astype(float)
    treated = y.copy()
    treated[:21] += 1
    treated[21:41] -= 1
    a = rng.poisson(1.0, n).astype(float)
    b = a.copy()
    b[100:121] += 1
    a[200:220] += 1
    return {"control": y, "treatment": treated, "user": np.arange(n).astype(str), "pre": rng.poisson(2.0, (n, 6)),
            "replicate": y, "clicks_a": a, "clicks_b": b, "shared_a": np.zeros(n), "shared_b": np.zeros(n)}


def test_no_gain_figure_when_neither_effect_is_distinguishable_from_zero():
    """ML-100K: a -0.53% effect gave A/B 1,432,094 users, interleaving 3,934 and a gain of "364x" while the
    credit test on the same users said p = 0.44: a ratio of two noise estimates."""
    study = SensitivityStudy(Arm("a", "a"), Arm("b", "b"), "data")
    out = study.figures(_run())
    assert out["true_effect"] > 0 and out["interleaving_credit_mean"] > 0  # same direction, as on ML-100K
    assert out["ab_users_needed"] and out["interleaving_users_needed"]  # both plans exist, from noise
    assert out["ab_effect_p_value"] > 0.5 and out["interleaving_credit_p_value"] > 0.5
    assert out["gain_vs_ab"] is None and out["gain_sign_vs_ab"] is None
    assert out["gain_vs_ab_reason"].startswith("not measurable: effect not distinguishable from zero (A/B paired p=")
    assert "interleaving credit test p=" in out["gain_vs_ab_reason"] and "alpha 0.05" in out["gain_vs_ab_reason"]
    assert "interleaving sign test p=" in out["gain_sign_vs_ab_reason"]
    row = study.tables({"metric": "plays", "seeds": [{"seed": 0, **out}]})[0].rows[0]
    assert row["gain (credit)"].startswith("not measurable (A/B p=") and "credit p=" in row["gain (credit)"]
    assert row["gain (sign)"].startswith("not measurable (A/B p=") and "sign p=" in row["gain (sign)"]


def test_the_gain_needs_both_tests_significant_and_is_a_figure_when_they_are():
    study = SensitivityStudy(Arm("a", "a"), Arm("b", "b"), "data")
    run = _run()
    run["treatment"] = run["control"] + np.where(np.arange(400) % 2 == 0, 1.0, 0.0)  # +0.5 a user, clear
    out = study.figures(run)
    assert out["ab_effect_p_value"] < 0.05 < out["interleaving_credit_p_value"]
    assert out["gain_vs_ab"] is None and "interleaving credit test" in out["gain_vs_ab_reason"]
    run["clicks_b"] = run["clicks_a"] + (np.arange(400) % 3 == 0)  # a third of the users credit B once more
    out = study.figures(run)
    assert out["interleaving_credit_p_value"] < 0.05 and out["gain_vs_ab_reason"] is None
    assert out["gain_vs_ab"] == pytest.approx(out["ab_users_needed"] / out["interleaving_users_needed"])
    # the study's alpha decides: at 1e-300 nothing here is significant
    strict = SensitivityStudy(Arm("a", "a"), Arm("b", "b"), "data", alpha=1e-300).figures(run)
    assert strict["gain_vs_ab"] is None and "alpha 1e-300" in strict["gain_vs_ab_reason"]


@pytest.fixture(scope="module")
def imported(tiny_bundle, tmp_path_factory):
    """The tiny world as imported data: no synthetic config, so the users are the fitted click model."""
    from edgerec.data.store import load_dataset, save_dataset

    dataset = load_dataset(tiny_bundle.parent / "data")
    dataset.meta = {"format": "csv"}
    return save_dataset(dataset, tmp_path_factory.mktemp("imported") / "data")


def reactions_description(reactions) -> str:
    return experiments.reactions_description(reactions)  # looked up when called: new in audit M3


def test_reactions_are_described_in_words_by_one_function():
    assert reactions_description("FittedReactions").startswith(FITTED)
    assert reactions_description("FittedReactions").endswith("not real users")
    assert reactions_description("SynthReactions").startswith(SYNTH)
    # records from before the field: the tables name the users from the class name
    assert experiments.users_line({"reactions": "FittedReactions"}) == reactions_description("FittedReactions")
    assert experiments.users_line({}) is None


@pytest.mark.slow
def test_every_study_on_imported_data_says_its_users_are_a_fitted_click_model(tiny_bundle, imported):
    """`ab`, `interleave`, `ope` and `aa` never said so (only the demo's combined study did), and
    `simulate` showed a class name."""
    a, b = Arm("control", tiny_bundle), Arm("treatment", tiny_bundle, {"diversity": 0.5})
    tiny = SimConfig(users=8, days=2, pre_days=1, k=5, seed=1)
    studies = [SimulateStudy(tiny_bundle, imported, tiny), ABStudy(a, b, imported, tiny),
               AAStudy(tiny_bundle, imported, tiny, experiments=3),
               InterleaveAAStudy(tiny_bundle, imported, SimConfig(users=8, days=2, pre_days=0, k=5, seed=1),
                                 experiments=3),
               InterleaveStudy(a, b, imported, SimConfig(users=8, days=2, pre_days=0, k=5, seed=1)),
               OPEStudy(a, b, imported, SimConfig(users=8, days=1, pre_days=0, k=5, seed=1), temperature=5.0),
               SensitivityStudy(a, b, imported, SimConfig(users=8, days=2, pre_days=1, k=5, seed=1)),
               BundleComparisonStudy(a, b, imported, SimConfig(users=8, days=2, pre_days=1, k=5, seed=1))]
    for study in studies:
        record = study.run().record
        assert record["reactions"] == "FittedReactions", study.name
        assert record["reactions_description"] == reactions_description("FittedReactions"), study.name
        titles = [t.title for t in type(study).tables(record)]
        named = [t for t in titles if reactions_description("FittedReactions") in t]
        assert named, (study.name, titles)
        verdicts = [t for t in titles if "verdict:" in t]
        assert all(reactions_description("FittedReactions") in t for t in verdicts), (study.name, verdicts)
        if study.name == "aa":  # the description sits in the title, not as two more columns of the rates
            assert "reactions_description" not in type(study).tables(record)[0].rows[0]


@pytest.mark.parametrize("alpha", [1.5, 0.0, -1.0, 1.0, float("nan"), "0.05", True])
def test_aa_rates_refuse_an_alpha_that_is_not_a_probability(alpha):
    """1.5 gave a false-positive rate of 1.0; 0, -1 and NaN gave 0.0."""
    rng = np.random.default_rng(0)
    users = [str(i) for i in range(40)]
    with pytest.raises(ConfigError, match="alpha"):
        aa_rates(users, rng.poisson(3.0, 40).astype(float), rng.poisson(2.0, (40, 6)), 5, alpha, 0)
    log = type("Log", (), {"users": users, "interleaved": []})()
    with pytest.raises(ConfigError, match="alpha"):
        interleave_aa_rates(log, 5, alpha, 0)
    with pytest.raises(ConfigError, match="alpha"):
        interleave_tests(rng.poisson(1.0, 40), rng.poisson(1.0, 40), alpha)


def test_aa_rates_refuse_no_experiments():
    with pytest.raises(ConfigError, match="experiments"):
        aa_rates(["a", "b"], np.ones(2), np.ones((2, 6)), 0, 0.05, 0)


def test_every_study_checks_alpha_before_it_simulates(monkeypatch):
    """ABStudy checked alpha only after the whole simulation; AAStudy and the interleaving studies never."""
    def no_simulation(*_args, **_kwargs):
        raise AssertionError("simulated before checking alpha")

    monkeypatch.setattr(experiments, "_setup", no_simulation)
    monkeypatch.setattr(sensitivity, "_setup", no_simulation)
    arm = Arm("a", "no-bundle")
    for study in (ABStudy(arm, arm, "data", alpha=1.5), AAStudy("no-bundle", "data", alpha=0.0),
                  InterleaveStudy(arm, arm, "data", alpha=-1.0),
                  InterleaveAAStudy("no-bundle", "data", alpha=float("nan")),
                  SensitivityStudy(arm, arm, "data", alpha=2.0)):
        with pytest.raises(ConfigError, match="alpha must be"):
            study.measure(lambda *_a: None)
    assert stats.share_arg("alpha", 0.05) == 0.05


def test_interleave_help_names_the_credit_test_as_the_one_that_decides():
    """It said the sign test decides; the verdict comes from the capped credit t-test."""
    out = " ".join(CliRunner().invoke(cli, ["experiment", "interleave", "--help"]).output.split())
    assert "The credit test decides" in out and "capped at the 90th percentile" in out
    assert "sign test over per-user wins is shown beside it" in out


def test_the_combined_study_names_the_users_beside_both_verdicts_of_an_older_record():
    """A demo record from before `reactions_description`: the interleaving's own record had no field."""
    verdict = {"decision": "inconclusive", "rule": "..."}
    test = {c: 0.0 for c in ("delta", "relative", "ci_low", "ci_high", "p_value")}
    ab = {"metric": "plays", "metrics": {}, "tests": {"welch": test}, "power": {}, "verdict": verdict,
          "reactions": "FittedReactions"}
    il = {"p_value": 0.5, "p_value_sign": 0.5, "users_needed_80pct": None, "users_needed_80pct_sign": None,
          "verdict": verdict}
    record = {"control": "student", "treatment": "teacher", "ab": ab, "interleave": il, "reactions": "FittedReactions"}
    verdicts = [t.title for t in BundleComparisonStudy.tables(record) if "verdict:" in t.title]
    assert len(verdicts) == 2 and all(t.endswith(reactions_description("FittedReactions")) for t in verdicts)
