"""An outside check of the experiment statistics against scipy.stats and the textbook formulas:
Welch's test and interval, the credit and sign tests of interleaving, sample size and MDE, CUPED (the
ANCOVA identity), mSPRT's level, and IPS / SNIPS / DR on a two-list example worked by hand."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from edgerec.errors import ConfigError
from edgerec.studies import ope, stats


def test_welch_matches_scipy_on_unequal_sizes_and_variances():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n1, n2 = rng.integers(2, 60, 2)
        c = rng.exponential(2, n1) * rng.integers(0, 3, n1)
        t = rng.normal(1, rng.uniform(0.1, 5), n2)
        got = stats.welch(c, t, alpha=0.1)
        want = sps.ttest_ind(t, c, equal_var=False)  # two-sided, unpaired, treatment minus control
        ci = want.confidence_interval(0.9)
        assert got.p_value == pytest.approx(want.pvalue, abs=1e-12)
        assert (got.ci_low, got.ci_high) == pytest.approx((ci.low, ci.high), abs=1e-10)
        assert got.delta == pytest.approx(t.mean() - c.mean())


def test_welch_at_its_edges():
    with pytest.raises(ConfigError):
        stats.welch([1.0], [1.0, 2.0])  # n = 1: no variance to estimate
    same = stats.welch([2.0, 2.0, 2.0], [2.0, 2.0, 2.0])
    assert same.p_value == 1.0 and same.ci_low == same.ci_high == 0.0
    one_constant = stats.welch([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])
    t = np.array([1.0, 2.0, 3.0, 4.0])  # the control's variance is 0: Welch's df is the treatment's n - 1
    assert one_constant.p_value == pytest.approx(2 * sps.t.sf((t.mean() - 1) / (t.std(ddof=1) / 2), 3))


def test_interleaving_tests_match_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.poisson(1, 80).astype(float), rng.poisson(1.3, 80).astype(float)
    mean, sd, p = stats.credit_test(a, b, cap_quantile=1.0)  # no cap: a one-sample t-test of b - a
    assert p == pytest.approx(sps.ttest_1samp(b - a, 0).pvalue, abs=1e-12)
    assert (mean, sd) == pytest.approx(((b - a).mean(), (b - a).std(ddof=1)))
    assert stats.sign_test(3, 12) == pytest.approx(sps.binomtest(3, 15, 0.5).pvalue)
    assert stats.sign_test(0, 0) == 1.0


def test_sample_size_and_mde_are_the_normal_formulas():
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    assert stats.sample_size(1.0, 0.2) == 2 * math.ceil(2 * (z / 0.2) ** 2)  # two arms of 2 (z sigma / mde)^2 users
    assert stats.sample_size(1.0, 0.2, arms=1) == math.ceil((z / 0.2) ** 2)
    assert stats.mde(1.0, 1000) == pytest.approx(z * math.sqrt(1 / 500 + 1 / 500))


def test_cuped_is_the_ancova_estimate_and_the_textbook_theta_on_one_arm():
    rng = np.random.default_rng(2)
    x = rng.lognormal(0, 1, 400)
    arm = rng.permutation(400) < 180
    y = 2 + 0.7 * x + 0.3 * arm + rng.normal(0, 1, 400)
    ac, at, _ = stats.cuped(y[~arm], y[arm], x[~arm], x[arm])
    design = np.column_stack([np.ones(400), arm, x])
    assert at.mean() - ac.mean() == pytest.approx(np.linalg.lstsq(design, y, rcond=None)[0][1], abs=1e-10)
    theta = np.cov(x, y)[0, 1] / x.var(ddof=1)  # Deng et al. 2013, one group
    adjust = stats.cuped_fit(y, x[:, None])
    assert adjust(x[:, None]) == pytest.approx(theta * (x - x.mean()))


def test_a_a_false_positive_rates_stay_near_alpha():
    """Welch (plain and CUPED) over 2,000 A/A splits of heavy-tailed data, and mSPRT stopped at any of
    200 looks over 400 A/A runs: at most alpha plus three standard errors."""
    rng = np.random.default_rng(3)
    hits = {"welch": 0, "cuped": 0, "msprt": 0}
    runs = 2000
    for e in range(runs):
        y = rng.poisson(0.5, 200) * rng.lognormal(0, 1, 200)
        x = 0.5 * y + rng.normal(0, 1, 200)
        arm = rng.permutation(200) < 100
        hits["welch"] += stats.welch(y[~arm], y[arm]).p_value < 0.05
        ac, at, _ = stats.cuped(y[~arm], y[arm], x[~arm], x[arm])
        hits["cuped"] += stats.welch(ac, at).p_value < 0.05
        if e < 400:
            hits["msprt"] += min(stats.msprt(rng.normal(size=200), rng.normal(size=200))) < 0.05
    assert hits["welch"] / runs < 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)
    assert hits["cuped"] / runs < 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)
    assert hits["msprt"] / 400 < 0.05 + 3 * math.sqrt(0.05 * 0.95 / 400)


def _two_lists(marginals=((0.5, 0.25), (1.0, 0.5))):
    """List 1 clicks at position 0, list 2 at position 1; the target matches the shown item at both
    positions of list 1 and at position 0 of list 2."""
    return [ope.LoggedList(np.array(c, float), np.array(m), np.array(match), np.array(sr), np.array(tr))
            for c, m, match, sr, tr in (([1, 0], marginals[0], [True, True], [0, 1], [0, 1]),
                                        ([0, 1], marginals[1], [True, False], [1, 0], [0, 2]))]


def test_ips_snips_dr_on_a_hand_worked_example():
    logs = _two_lists()
    assert ope.ips(logs) == pytest.approx((1 / 0.5 + 0) / 2)  # list 1: 1 / 0.5; list 2: no matching click
    # per position: (sum m c / p) / (sum m / p): position 0: 2 / (2 + 1); position 1: 0 / 4
    assert ope.snips(logs) == pytest.approx(2 / 3)
    q = ope.ClickModel(np.array([1.0, 0.5]), np.array([0.4, 0.2, 0.1]), np.ones(1))
    # list 1: DM 1 x .4 + .5 x .2 = .5, corrections (1 - .4) / .5 + (0 - .1) / .25 = .8 -> 1.3
    # list 2: DM .4 + .5 x .1 = .45, correction (0 - .2) / 1 -> .25
    assert ope.doubly_robust(logs, q) == pytest.approx((1.3 + 0.25) / 2)
    assert ope.direct_method(logs, q) == pytest.approx((0.5 + 0.45) / 2)
    certain = _two_lists(((1.0, 1.0), (1.0, 1.0)))  # propensity 1: IPS counts the matching clicks
    assert ope.ips(certain) == pytest.approx(0.5) and ope.snips(certain) == pytest.approx(0.5)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_a_marginal_outside_zero_one_is_refused_not_an_estimate(bad):
    """A logged probability of 0 gave IPS and DR NaN and SNIPS a silent 0 for the position."""
    with pytest.raises(ConfigError, match=r"must be in \(0, 1\]"):
        ope.estimates(_two_lists(((bad, 0.25), (1.0, 0.5))))
