"""Audit L8 of the experiment statistics: the CUPED test's degrees of freedom with unequal arms, a
covariate that separates the arms, the credit test without spread, the bootstrap row's own p-value and
the OPE standard errors of users who log several lists."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from edgerec.errors import ConfigError
from edgerec.studies import ope, stats
from edgerec.studies.experiments import ab_analysis, interleave_tests


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


class _Log:
    """What ab_analysis reads from a log: arms, users (arrival order), the metric and the pre-period figures."""

    def __init__(self, yc, yt, pre=None):
        self.arms = ["control"] * len(yc) + ["treatment"] * len(yt)
        self.users = [f"{i:06d}" for i in range(len(self.arms))]
        self.y = np.r_[yc, yt]
        self.pre_device = np.zeros((len(self.arms), 0)) if pre is None else pre

    def period(self, _metric):
        return self.y


# ---- 1. the CUPED test's degrees of freedom ------------------------------------------------------------------

def _welch_df(c, t):
    vc, vt = c.var(ddof=1) / len(c), t.var(ddof=1) / len(t)
    return (vc + vt) ** 2 / (vc ** 2 / (len(c) - 1) + vt ** 2 / (len(t) - 1))


@pytest.mark.parametrize("covariates", [0, "constant"])
def test_cuped_test_without_covariates_is_welchs_test_exactly(covariates):
    """No covariate (or only a constant one): the HC2 error is Welch's, and so must the degrees of freedom be.
    With n - p - 2 = 410 degrees of freedom for 400 vs 12 users, p was 0.044 where Welch said 0.066."""
    rng = np.random.default_rng(11)
    c, t = rng.normal(6, 1, 400), rng.normal(6, 3, 12)
    xc, xt = (np.zeros((400, 0)), np.zeros((12, 0))) if covariates == 0 else (np.ones(400), np.ones(12))
    got, welch = stats.cuped_test(c, t, xc, xt), stats.welch(c, t)
    scipy_p = sps.ttest_ind(t, c, equal_var=False).pvalue
    assert got.p_value == pytest.approx(welch.p_value, rel=1e-9) == pytest.approx(scipy_p, rel=1e-9)
    assert (got.ci_low, got.ci_high) == pytest.approx((welch.ci_low, welch.ci_high), rel=1e-9)
    half = (got.ci_high - got.ci_low) / 2
    se = math.sqrt(c.var(ddof=1) / 400 + t.var(ddof=1) / 12)
    assert half == pytest.approx(sps.t.isf(0.025, _welch_df(c, t)) * se, rel=1e-9)  # df about 11, not 410


def test_bell_mccaffrey_df_is_the_dense_formula():
    """(tr M)^2 / tr(M^2), M = D (I - H) Omega (I - H) D, computed in O(n p^2), against the n x n matrices."""
    rng = np.random.default_rng(5)
    n = 40
    arm = np.repeat([0.0, 1.0], [29, 11])
    design = np.column_stack([np.ones(n), arm, rng.normal(size=(n, 3))])
    inverse = np.linalg.inv(design.T @ design)
    hat = design @ inverse @ design.T
    leverage = np.diag(hat)
    weight = (design @ inverse[1]) ** 2 / (1 - leverage)
    omega = rng.uniform(0.2, 3.0, n)
    rest = np.eye(n) - hat
    m = np.diag(np.sqrt(weight)) @ rest @ np.diag(omega) @ rest @ np.diag(np.sqrt(weight))
    want = np.trace(m) ** 2 / np.trace(m @ m)
    assert stats.bell_mccaffrey_df(design, inverse, weight, omega, leverage) == pytest.approx(want, rel=1e-9)


def test_cuped_verdict_keeps_alpha_with_a_small_treatment_arm():
    """A/A, 300 control and 8 treatment users (a ramp-up arm) with a useful covariate: the verdict's test
    rejected about twice as often as alpha with n - p - 2 degrees of freedom; Satterthwaite's keep it."""
    rng = np.random.default_rng(2024)
    runs, hits = 300, 0
    for _ in range(runs):
        xc, xt = rng.normal(size=300), rng.normal(size=8)
        yc, yt = 0.5 * xc + rng.normal(0, 1, 300), 0.5 * xt + rng.normal(0, 1, 8)
        got = stats.cuped_test(yc, yt, xc, xt)
        hits += stats.verdict(got.delta, got.ci_low, got.ci_high, got.p_value).decision != "inconclusive"
    assert hits / runs < 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / runs)  # 0.084; n - p - 2 df: 0.10 on these draws


# ---- 2. a covariate that separates the arms ------------------------------------------------------------------

def test_cuped_test_drops_a_covariate_that_separates_the_arms():
    """A 0/1 pre-period figure equal to the arm: the arm's effect is not identified beside it. A pseudo-inverse
    split the difference of 4.0 in half and called 2.0 significant; the covariate is now left out, and said so."""
    c, t = np.array([1.0, 2.0, 3.0, 2.0]), np.array([5.0, 6.0, 7.0, 6.0])
    xc, xt = np.zeros(4), np.ones(4)
    got = stats.cuped_test(c, t, xc, xt)
    ac, at, _ = stats.cuped(c, t, xc, xt)
    assert got.delta == pytest.approx(4.0) == pytest.approx(at.mean() - ac.mean())
    assert got.p_value == pytest.approx(stats.welch(c, t).p_value, rel=1e-9)
    assert "dropped" in got.method and stats.collinear_covariates(xc, xt) == [0]
    pre = np.r_[xc, xt][:, None] * np.e - 1  # log1p gives the 0/1 figure, as cuped_covariates builds it
    record = ab_analysis(_Log(c, t, pre), "plays", 0.05, 0)
    assert record["tests"]["cuped"]["delta"] == pytest.approx(4.0)
    assert record["cuped_dropped_covariates"] == [0] and "left out" in record["verdict"]["rule"]


def test_cuped_test_drops_a_covariate_that_is_another_plus_the_arm():
    """x2 = x1 + arm: within the arms it copies x1, and beside x1 it carries the arm. The fit keeps x1 only;
    the test's effect is cuped()'s adjusted difference and the one-covariate fit's."""
    rng = np.random.default_rng(8)
    x1 = rng.normal(size=40)
    arm = np.repeat([0.0, 1.0], 20)
    y = 2.0 * x1 + rng.normal(size=40) + 0.3 * arm
    x = np.column_stack([x1, x1 + arm])
    got = stats.cuped_test(y[:20], y[20:], x[:20], x[20:])
    ac, at, _ = stats.cuped(y[:20], y[20:], x[:20], x[20:])
    alone = stats.cuped_test(y[:20], y[20:], x1[:20], x1[20:])
    assert got.delta == pytest.approx(at.mean() - ac.mean(), rel=1e-9) == pytest.approx(alone.delta, rel=1e-9)
    assert (got.p_value, got.ci_low) == pytest.approx((alone.p_value, alone.ci_low), rel=1e-9)
    assert stats.collinear_covariates(x[:20], x[20:]) == [1]


def test_identified_covariates_are_not_listed():
    rng = np.random.default_rng(1)
    assert stats.collinear_covariates(rng.normal(size=(10, 2)), rng.normal(size=(12, 2))) == []
    with pytest.raises(ConfigError, match="same pre-period covariates"):
        stats.collinear_covariates(np.zeros((3, 2)), np.zeros((3, 1)))


# ---- 3. the credit test without spread -----------------------------------------------------------------------

def test_credit_test_without_spread_is_the_exact_sign_test():
    """Every user's B - A the same: sd 0 gave p = 0 and "ship" on three users; the sign test says 0.25."""
    assert stats.credit_test(np.zeros(3), np.ones(3)) == (1.0, 0.0, pytest.approx(0.25))
    assert stats.credit_test(np.full(10, 2.0), np.zeros(10))[2] == pytest.approx(sps.binomtest(0, 10).pvalue)
    assert stats.credit_test(np.zeros(4), np.zeros(4))[2] == 1.0
    out = interleave_tests(np.zeros(3), np.ones(3), 0.05)
    assert out["p_value"] == pytest.approx(0.25) and out["verdict"]["decision"] == "inconclusive"
    assert out["users_needed_80pct"] is None and out["users_needed_80pct_sign"] is None
    assert "sign test" in out["verdict"]["rule"]
    many = interleave_tests(np.zeros(12), np.ones(12), 0.05)  # twelve of twelve users: the sign test is sure
    assert many["p_value"] == pytest.approx(2 * 0.5 ** 12) and many["verdict"]["decision"] == "ship"


def test_sample_size_refuses_a_sigma_of_zero():
    with pytest.raises(ConfigError, match="sd above 0"):
        stats.sample_size(0.0, 1.0)
    with pytest.raises(ConfigError, match="sd above 0"):
        stats.sample_size(0.0, 0.5, arms=1)


# ---- 4. the bootstrap row's p-value ----------------------------------------------------------------------------

def test_the_bootstrap_row_has_the_p_value_of_its_own_interval():
    """Welch's p (0.062) sat beside a bootstrap interval [0.29, 3.59] that left out 0."""
    r = np.random.default_rng(1)
    yc, yt = r.lognormal(0, 1.2, 30), r.lognormal(0.5, 1.2, 30)
    row = ab_analysis(_Log(yc, yt), "plays", 0.05, 0)["tests"]["bootstrap"]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(stats.bootstrap_ci(yc, yt, seed=0))
    assert row["ci_low"] > 0 and row["p_value"] < 0.05 < stats.welch(yc, yt).p_value
    assert row["method"].startswith("bootstrap") and row["delta"] == pytest.approx(yt.mean() - yc.mean())


def test_the_bootstrap_p_value_agrees_with_its_interval_at_every_alpha():
    for seed in range(40):
        r = np.random.default_rng([seed, 3])
        yc, yt = r.lognormal(0, 1.0, 25), r.lognormal(0.3 * (seed % 3), 1.0, 20)
        test = stats.bootstrap_test(yc, yt, resamples=400, seed=seed)
        for alpha in (0.01, 0.037, 0.05, 0.1, 0.31):
            lo, hi = stats.bootstrap_ci(yc, yt, resamples=400, alpha=alpha, seed=seed)
            p = stats.bootstrap_test(yc, yt, resamples=400, alpha=alpha, seed=seed).p_value
            assert p == test.p_value  # one p, whatever the interval's level
            assert (p < alpha) == (lo > 0 or hi < 0), (seed, alpha, p, lo, hi)


def test_percentile_p_value_edges():
    assert stats.percentile_p_value([1.0, 2.0, 3.0]) == 0.0  # no resample on the other side of 0
    assert stats.percentile_p_value([-1.0, 1.0]) == 1.0
    assert stats.percentile_p_value([0.0]) == 1.0 and stats.percentile_p_value([2.0]) == 0.0
    # five values at tau 0, .25, .5, .75, 1: the quantile crosses 0 at tau 0.125, so p = 0.25
    assert stats.percentile_p_value([-1.0, 1.0, 2.0, 3.0, 4.0]) == pytest.approx(0.25)
    assert stats.percentile_p_value([-4.0, -3.0, -2.0, -1.0, 1.0]) == pytest.approx(0.25)


# ---- 5. OPE: a user logs several lists ------------------------------------------------------------------------

def _user_lists(users: int, days: int, seed: int) -> tuple[list, np.ndarray]:
    """Each user's taste (click rate) is the user's own, and the user logs `days` lists of three positions."""
    rng = np.random.default_rng(seed)
    logs, who = [], []
    for u in range(users):
        rate = rng.beta(0.5, 2.0)  # heavy differences between users
        for _ in range(days):
            clicks = (rng.random(3) < rate).astype(float)
            logs.append(ope.LoggedList(clicks, np.full(3, 0.5), rng.random(3) < 0.5, np.arange(3), np.arange(3)))
            who.append(u)
    return logs, np.array(who)


def test_cluster_standard_error_worked_by_hand():
    """[1, 1] from user a, [3, 3] from user b: the mean 2 has deviations summing to -2 and 2 per user, so the
    cluster error is sqrt(2 / 1 x 8) / 4 = 1; std / sqrt(lists) said 0.58, as if four users had shown it."""
    assert ope.cluster_standard_error([1.0, 1.0, 3.0, 3.0], ["a", "a", "b", "b"]) == pytest.approx(1.0)
    values = np.random.default_rng(0).normal(size=9)
    assert ope.cluster_standard_error(values, np.arange(9)) == pytest.approx(values.std(ddof=1) / 3)
    with pytest.raises(ConfigError, match="one user per logged list"):
        ope.cluster_standard_error(values, np.arange(8))


def test_ope_standard_errors_resample_users_not_lists():
    """Lists resampled one by one understate the noise of users who log several: a user-cluster bootstrap
    is about sqrt(1 + (m - 1) rho) times wider. Here 60 users log 5 lists each."""
    logs, who = _user_lists(60, 5, seed=4)
    by_list = ope.standard_errors(logs, resamples=60, seed=1)
    by_user = ope.standard_errors(logs, resamples=60, seed=1, users=who)
    ips = ope.list_terms(logs)["IPS"]
    want = ope.cluster_standard_error(ips, who)  # IPS is a mean of per-list terms: the sandwich is its error
    assert by_user["IPS"] == pytest.approx(want, rel=0.3)
    assert by_user["IPS"] > 1.3 * by_list["IPS"] and by_list["IPS"] == pytest.approx(ips.std() / np.sqrt(300), rel=0.3)
    assert ope.between_user_share(ips, who) > 0.2
    assert ope.between_user_share(ips, np.arange(300)) == 0.0  # one list per user: nothing to split


def test_days_for_goal_counts_what_more_days_of_the_same_users_cannot_shrink():
    """A run of 300 lists over 3 days needs the variance of 600 lists (half its own). With a quarter of it
    from the users themselves, f days give V (1/4 + 3/4 / f): f = 3, 9 days, not the 6 of independent lists;
    with half of it from the users no number of days gets there."""
    assert ope.days_for_goal(600.0, 300, 3) == 6 == ope.days_for_goal(600.0, 300, 3, 0.0)
    assert ope.days_for_goal(600.0, 300, 3, 0.25) == 9
    assert ope.days_for_goal(600.0, 300, 3, 0.5) is None
    assert ope.days_for_goal(200.0, 300, 3, 0.9) == 3  # already enough: the days run
    with pytest.raises(ConfigError, match="between_share"):
        ope.days_for_goal(600.0, 300, 3, 1.5)


def test_equal_credits_that_float_noise_spreads_fall_back_to_the_sign_test():
    """0.1 each: the sd came out 1.7e-17, not 0, and the t-test said p = 1e-32 and ship (audit L9)."""
    mean, sd, p = stats.credit_test([0.0, 0.0, 0.0], [0.1, 0.1, 0.1])
    assert mean == pytest.approx(0.1) and sd == 0.0 and p == pytest.approx(0.25)


def test_the_truths_error_over_one_user_is_not_measurable():
    """All lists from one user: the cluster error was reported as exactly 0 (audit L9)."""
    assert ope.cluster_standard_error([1.0, 5.0, 2.0, 9.0, 3.0], [4] * 5) is None
    assert ope.between_user_share([1.0, 5.0, 2.0, 9.0, 3.0], [4] * 5) == 0.0
