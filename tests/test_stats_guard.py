"""Guards of the statistics that decide whether a bundle ships (studies/stats.py): exact values against
scipy and hand-worked cases, the invariants (scale, shift, CUPED's pooled mean), the edges (equal arms,
constant arms, two users) and hostile inputs, which must be a ConfigError and never a numpy warning,
a ZeroDivisionError or a NaN that reads as "inconclusive". Mutation note 33 in tools/mutation-scores.md."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from edgerec.errors import ConfigError
from edgerec.studies import stats


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    """A numpy RuntimeWarning on the way to a result is a defect here: make it fail the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---- Welch ----------------------------------------------------------------------------------------------

def test_welch_two_users_an_arm_worked_by_hand():
    """c = [0, 2], t = [1, 3]: delta 1, each arm's variance of the mean 1, se sqrt 2, df 2. With two degrees of
    freedom the t tail is closed-form: P(|T| > x) = 1 - x / sqrt(x^2 + 2), so p = 1 - 1 / sqrt 5, and the
    97.5% quantile is 0.95 / sqrt(2 x 0.975 x 0.025)."""
    got = stats.welch([0.0, 2.0], [1.0, 3.0])
    assert got.p_value == pytest.approx(1 - 1 / math.sqrt(5), rel=1e-12)
    half = 0.95 / math.sqrt(2 * 0.975 * 0.025) * math.sqrt(2)
    assert (got.ci_low, got.ci_high) == pytest.approx((1 - half, 1 + half), rel=1e-12)
    assert (got.metric, got.control_mean, got.treatment_mean, got.delta, got.relative) == ("metric", 1.0, 2.0, 1.0, 1.0)
    assert (got.n_control, got.n_treatment, got.method) == (2, 2, "welch")


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2])
def test_welch_every_field_matches_scipy(alpha):
    rng = np.random.default_rng(30)
    c, t = rng.exponential(3, 7), rng.normal(2, 0.5, 12)
    got = stats.welch(c, t, "plays", alpha)
    want = sps.ttest_ind(t, c, equal_var=False)
    ci = want.confidence_interval(1 - alpha)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-10)
    assert (got.ci_low, got.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert got.to_dict() == {**got.to_dict(), "metric": "plays", "n_control": 7, "n_treatment": 12, "method": "welch"}
    assert got.control_mean == pytest.approx(c.mean()) and got.treatment_mean == pytest.approx(t.mean())
    assert got.relative == pytest.approx((t.mean() - c.mean()) / c.mean())


def test_welch_when_one_arm_is_constant_uses_the_other_arms_degrees_of_freedom():
    """Welch-Satterthwaite with one variance 0 is the other arm's n - 1, whichever arm it is."""
    varied = np.array([1.0, 2.0, 4.0, 8.0, 9.0])
    for control, treatment in (([3.0, 3.0, 3.0], varied), (varied, [3.0, 3.0, 3.0])):
        got = stats.welch(control, treatment)
        se = varied.std(ddof=1) / math.sqrt(5)
        delta = np.mean(treatment) - np.mean(control)
        assert got.p_value == pytest.approx(2 * sps.t.sf(abs(delta) / se, 4), rel=1e-12)
        assert got.ci_high - got.delta == pytest.approx(sps.t.ppf(0.975, 4) * se, rel=1e-12)


def test_welch_on_equal_arms_and_on_constant_arms():
    same = stats.welch([1.0, 5.0, 2.0], [1.0, 5.0, 2.0])
    assert same.p_value == pytest.approx(1.0) and same.delta == 0.0 and same.ci_low == pytest.approx(-same.ci_high)
    exact = stats.welch([1.0, 1.0], [3.0, 3.0])  # no noise at all: the difference is exact
    assert (exact.p_value, exact.ci_low, exact.ci_high, exact.delta, exact.relative) == (0.0, 2.0, 2.0, 2.0, 2.0)
    nothing = stats.welch([4.0, 4.0, 4.0], [4.0, 4.0])
    assert (nothing.p_value, nothing.ci_low, nothing.ci_high) == (1.0, 0.0, 0.0)


def test_welch_relative_change_of_a_zero_control_is_not_a_number():
    got = stats.welch([0.0, 0.0, 0.0], [1.0, 2.0, 0.0])
    assert math.isnan(got.relative) and got.delta == 1.0
    assert stats.welch([-2.0, -4.0], [1.0, 2.0]).relative == pytest.approx(4.5 / -3.0)


def test_welch_accepts_integers_and_booleans_as_numbers():
    ints = stats.welch(np.array([0, 1, 1, 0, 1]), [1, 1, 1, 0, 1])
    floats = stats.welch([0.0, 1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0, 1.0])
    bools = stats.welch([False, True, True, False, True], [True, True, True, False, True])
    assert ints == floats == bools


@pytest.mark.parametrize("scale", [1e-100, 1e-30, 1e30, 1e100])
def test_welch_does_not_depend_on_the_unit(scale):
    """The test is scale-free. The old df formula squared the variances of the means: 1e-200 squared to 0 (a
    division by zero, df inf) and 1e200 to inf (df and p NaN, so the verdict a silent "inconclusive")."""
    c, t = np.array([0.0, 1.0, 3.0]), np.array([2.0, 4.0, 3.5, 6.0])
    unit, scaled = stats.welch(c, t), stats.welch(c * scale, t * scale)
    assert scaled.p_value == pytest.approx(unit.p_value, rel=1e-9)
    assert (scaled.ci_low / scale, scaled.ci_high / scale) == pytest.approx((unit.ci_low, unit.ci_high), rel=1e-9)


# ---- hostile inputs of every function that takes per-user arrays ----------------------------------------

ARRAY_FUNCTIONS = {
    "welch": lambda c, t: stats.welch(c, t),
    "bootstrap_ci": lambda c, t: stats.bootstrap_ci(c, t, resamples=10),
    "msprt": lambda c, t: stats.msprt(c, t),
    "credit_test": lambda c, t: stats.credit_test(c, t),
    "cuped": lambda c, t: stats.cuped(c, t, [1.0, 2.0, 3.0], [2.0, 1.0, 0.0]),
}
GOOD = [1.0, 2.0, 4.0]


NOT_FINITE = r"^an arm's values hold NaN or infinite values: drop or fill the users without a value$"
TOO_LARGE = (r"^the values are too large for float64 statistics \(their variance overflows\): rescale the metric, "
             r"e\.g\. to thousands$")


@pytest.mark.parametrize("name", ARRAY_FUNCTIONS)
@pytest.mark.parametrize("bad, message", [
    ([1.0, float("nan"), 2.0], NOT_FINITE),
    ([1.0, float("inf"), 2.0], NOT_FINITE),
    ([-float("inf"), 0.0, 2.0], NOT_FINITE),
    ([1.0, None, 2.0], NOT_FINITE),
    (["1", "2", "3"], r"^an arm's values must be numbers \(got list\)$"),
    ([1 + 2j, 2.0, 3.0], r"^an arm's values must be numbers \(got list\)$"),
    ({"a": 1.0}, r"^an arm's values must be numbers \(got dict\)$"),
    ([[1.0, 2.0], [3.0]], r"^an arm's values must be numbers \(got list\)$"),
    ([], "has 0 user"),
    ([2.0], "has 1 user"),
    (None, r"^an arm's values must be numbers \(got NoneType\)$"),
    (3.0, r"shape \(\)"),
    ([[1.0, 2.0], [3.0, 4.0]], r"values of shape \(2, 2\)"),
    ([1e200, -1e200, 1.0], TOO_LARGE),
])
def test_hostile_arm_values_are_a_config_error(name, bad, message):
    for args in ((bad, GOOD), (GOOD, bad)):
        with pytest.raises(ConfigError, match=message):
            ARRAY_FUNCTIONS[name](*args)


def test_values_whose_partial_sums_overflow_both_ways_are_too_large_not_a_warning():
    """numpy sums 16 values in 8 partial sums: +inf in one and -inf in another make the mean NaN (an invalid
    warning), not inf."""
    bad = np.zeros(16)
    bad[[0, 8]], bad[[1, 9]] = 1e308, -1e308
    for call in (lambda: stats.welch(bad, np.ones(16)), lambda: stats.bootstrap_ci(np.ones(16), bad, resamples=3),
                 lambda: stats.credit_test(np.zeros(16), bad, cap_quantile=1.0),
                 lambda: stats.msprt(np.zeros(16), bad)):
        with pytest.raises(ConfigError, match=TOO_LARGE):
            call()


@pytest.mark.parametrize("alpha", [0, 0.0, 1, 1.0, -0.05, 1.5, float("nan"), float("inf"), "0.05", None, True])
def test_an_alpha_outside_zero_one_is_refused(alpha):
    for call in (lambda: stats.welch(GOOD, GOOD, alpha=alpha), lambda: stats.bootstrap_ci(GOOD, GOOD, alpha=alpha),
                 lambda: stats.sample_size(1.0, 0.1, alpha=alpha), lambda: stats.mde(1.0, 100, alpha=alpha),
                 lambda: stats.verdict(0.1, 0.05, 0.2, 0.01, alpha=alpha)):
        with pytest.raises(ConfigError, match=r"^alpha must be (a number|finite|between 0 and 1, exclusive) \(got "):
            call()


# ---- bootstrap ---------------------------------------------------------------------------------------------

def _bootstrap_by_hand(c, t, resamples, alpha, seed):
    """The percentile bootstrap written out: resample each arm's users with replacement, same stream."""
    rng = np.random.default_rng(seed)
    diffs = [t[rng.integers(0, len(t), len(t))].mean() - c[rng.integers(0, len(c), len(c))].mean()
             for _ in range(resamples)]
    return tuple(np.quantile(diffs, [alpha / 2, 1 - alpha / 2]))


def test_bootstrap_is_the_percentile_interval_of_resampled_differences():
    rng = np.random.default_rng(31)
    c, t = rng.exponential(1, 9), rng.exponential(2, 6)
    assert stats.bootstrap_ci(c, t, 300, 0.1, 4) == pytest.approx(_bootstrap_by_hand(c, t, 300, 0.1, 4), rel=1e-12)
    assert stats.bootstrap_ci(c, t, 50, 0.3, 0) == pytest.approx(_bootstrap_by_hand(c, t, 50, 0.3, 0), rel=1e-12)
    # the defaults: 2,000 resamples, alpha 0.05, seed 0, and the same answer every time
    assert stats.bootstrap_ci(c, t) == stats.bootstrap_ci(c, t, 2000, 0.05, 0) == stats.bootstrap_ci(c, t)
    assert stats.bootstrap_ci(c, t) != stats.bootstrap_ci(c, t, seed=1)
    assert stats.bootstrap_ci(c, t) != stats.bootstrap_ci(c, t, resamples=2001)


def test_bootstrap_draws_every_user_including_the_first():
    """One heavy user first in an arm of five is in two of three resamples: the interval must reach it."""
    heavy, zeros = np.array([1000.0, 0, 0, 0, 0]), np.zeros(5)
    lo, hi = stats.bootstrap_ci(zeros, heavy, resamples=200)
    assert lo == 0.0 and hi >= 200.0
    lo, hi = stats.bootstrap_ci(heavy, zeros, resamples=200)
    assert lo <= -200.0 and hi == 0.0
    assert stats.bootstrap_ci([2.0, 2.0], [5.0, 5.0, 5.0], resamples=5) == (3.0, 3.0)  # constant arms: exact
    one = stats.bootstrap_ci(heavy, zeros, resamples=1)  # one resample is an interval of one difference
    assert one[0] == one[1] and one == pytest.approx(_bootstrap_by_hand(heavy, zeros, 1, 0.05, 0))


@pytest.mark.parametrize("resamples", [0, -1, 2.5, "100", True, None])
def test_bootstrap_needs_a_whole_number_of_resamples(resamples):
    with pytest.raises(ConfigError, match="resamples must be a whole number"):
        stats.bootstrap_ci(GOOD, GOOD, resamples=resamples)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bootstrap_and_holdout_need_a_whole_seed(seed):
    with pytest.raises(ConfigError, match="^seed must be a whole number of at least 0"):
        stats.bootstrap_ci(GOOD, GOOD, seed=seed)
    with pytest.raises(ConfigError, match="^seed must be a whole number of at least 0"):
        stats.cuped_holdout(np.arange(10.0), np.arange(10.0), np.arange(10), seed=seed)


# ---- CUPED ----------------------------------------------------------------------------------------------

def test_cuped_worked_by_hand():
    """Within each arm y rises one for one with x, so theta = 1; x's pooled mean is 1.5, and the adjusted
    arms are constant: all of the variance is removed."""
    ac, at, removed = stats.cuped([1.0, 2.0, 3.0], [5.0, 6.0, 7.0], [1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert ac.tolist() == pytest.approx([1.5, 1.5, 1.5]) and at.tolist() == pytest.approx([6.5, 6.5, 6.5])
    assert removed == pytest.approx(1.0)
    assert stats.cuped_fit(np.array([1.0, 2.0, 3.0, 5.0, 6.0, 7.0]), np.array([1.0, 2, 3, 0, 1, 2]),
                           np.array([0, 0, 0, 1, 1, 1]))(np.array([[1.5], [2.5]])) == pytest.approx([0.0, 1.0])


def test_cuped_keeps_the_pooled_mean_and_each_arms_mean_when_the_pre_period_is_balanced():
    rng = np.random.default_rng(32)
    x = rng.gamma(2, 2, 40)
    xc, xt = x[:20], x[20:] - x[20:].mean() + x[:20].mean()  # the same pre-period mean in both arms
    c, t = 2 * xc + rng.normal(0, 1, 20), 2 * xt + 1 + rng.normal(0, 1, 20)
    ac, at, _ = stats.cuped(c, t, xc, xt)
    assert ac.mean() == pytest.approx(c.mean(), rel=1e-12) and at.mean() == pytest.approx(t.mean(), rel=1e-12)
    # unbalanced arms of unequal size: each arm moves by theta (its x mean - the pooled x mean), the sum stays
    ac, at, _ = stats.cuped(c[:15], t, x[:15], x[20:])
    assert ac.sum() + at.sum() == pytest.approx(c[:15].sum() + t.sum(), rel=1e-12)


def test_cuped_share_removed_is_the_sample_variance_ratio_on_any_scale():
    rng = np.random.default_rng(33)
    x = rng.normal(0, 1, 30)
    y = 0.01 * (x + rng.normal(0, 0.7, 30))  # a small metric: both arms' variance far below 1
    ac, at, removed = stats.cuped(y[:12], y[12:], x[:12], x[12:])
    want = 1 - (ac.var(ddof=1) + at.var(ddof=1)) / (y[:12].var(ddof=1) + y[12:].var(ddof=1))
    assert removed == pytest.approx(want, rel=1e-12) and 0.3 < removed < 0.9
    _, _, scaled = stats.cuped(1e6 * y[:12], 1e6 * y[12:], x[:12], x[12:])
    assert scaled == pytest.approx(removed, rel=1e-9)


def test_cuped_of_constant_arms_or_constant_covariates_removes_nothing():
    ac, at, removed = stats.cuped([2.0, 2.0], [3.0, 3.0], [1.0, 5.0], [2.0, 7.0])
    assert removed == 0.0 and ac.tolist() == [2.0, 2.0] and at.tolist() == [3.0, 3.0]
    y = np.array([1.0, 4.0, 2.0, 8.0, 5.0])
    ac, at, removed = stats.cuped(y[:2], y[2:], np.ones(2), np.ones(3))
    assert removed == 0.0 and ac.tolist() == y[:2].tolist() and at.tolist() == y[2:].tolist()


def test_cuped_ignores_a_constant_covariate_beside_a_useful_one():
    rng = np.random.default_rng(34)
    x = rng.normal(0, 1, 24)
    y = x + rng.normal(0, 0.5, 24)
    both = np.column_stack([x, np.full(24, 3.0)])
    with_constant = stats.cuped(y[:10], y[10:], both[:10], both[10:])
    alone = stats.cuped(y[:10], y[10:], x[:10], x[10:])
    assert with_constant[2] == pytest.approx(alone[2], rel=1e-12)
    assert with_constant[0] == pytest.approx(alone[0], rel=1e-12)
    # and x given as one column or as a vector is the same covariate
    assert stats.cuped(y[:10], y[10:], x[:10, None], x[10:, None])[2] == pytest.approx(alone[2], rel=1e-12)


@pytest.mark.parametrize("pre_control, pre_treatment, message", [
    ([1.0, 2.0], [1.0, 2.0, 3.0], r"every user: 3 row\(s\)"),
    ([1.0, 2.0, 3.0], [1.0, 2.0], r"every user: 3 row\(s\)"),
    (np.ones((3, 2)), np.ones((3, 3)), "same pre-period covariates in both arms"),
    (np.ones((3, 1, 1)), np.ones((3, 1)), r"got shape \(3, 1, 1\)"),
    (np.ones((3, 1)), np.ones((3, 1, 1)), r"got shape \(3, 1, 1\)"),
    (1.0, [1.0, 2.0, 3.0], r"got shape \(\)"),
    ([1.0, 2.0, 3.0], 1.0, r"got shape \(\)"),
    ([1.0, float("nan"), 3.0], [1.0, 2.0, 3.0], "^the pre-period values hold NaN or infinite values"),
    ([1.0, 2.0, 3.0], ["a", "b", "c"], r"^the pre-period values must be numbers \(got list\)$"),
    ([1e200, -1e200, 0.0], [1.0, 2.0, 3.0],
     r"^the pre-period values are too large for float64 \(their variance overflows\): rescale them$"),
])
def test_cuped_refuses_pre_period_values_that_do_not_fit_the_arms(pre_control, pre_treatment, message):
    with pytest.raises(ConfigError, match=message):
        stats.cuped([1.0, 2.0, 3.0], [2.0, 3.0, 5.0], pre_control, pre_treatment)


def test_cuped_fit_checks_its_rows():
    y, x = np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 3.0])
    assert stats.cuped_fit(y, x)(x[:, None]) == pytest.approx(stats.cuped_fit(y, x, np.zeros(3))(x[:, None]))
    assert stats.cuped_fit(np.array([1, 2, 4]), x)(x[:, None]) == pytest.approx(stats.cuped_fit(y, x)(x[:, None]))
    with pytest.raises(ConfigError, match=r"one arm label per user \(3\)"):
        stats.cuped_fit(y, x, np.zeros(2))
    with pytest.raises(ConfigError, match=r"^the metric needs one value per row \(a 1-D array\), got shape \(3, 1\)$"):
        stats.cuped_fit(np.ones((3, 1)), x)
    with pytest.raises(ConfigError, match="every user"):
        stats.cuped_fit(y, x[:2])


# ---- held-out CUPED -------------------------------------------------------------------------------------------

def _leave_one_user_out(y, x):
    """Held-out CUPED with one fold per user, written with the textbook theta = cov(x, y) / var(x)."""
    adjusted = np.empty_like(y)
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        theta = np.cov(x[rest], y[rest])[0, 1] / x[rest].var(ddof=1)
        adjusted[i] = y[i] - theta * (x[i] - x[rest].mean())
    return 1 - ((adjusted - adjusted.mean()) ** 2).sum() / ((y - y.mean()) ** 2).sum()


def test_held_out_cuped_with_one_fold_per_user_is_leave_one_out():
    """folds = users puts each user in a fold of its own whatever the seed: a closed-form check."""
    rng = np.random.default_rng(35)
    x = rng.normal(0, 1, 12)
    y = 10 + x + rng.normal(0, 0.6, 12)
    want = _leave_one_user_out(y, x)
    assert 0.3 < want < 0.95
    for seed in (0, 3):
        assert stats.cuped_holdout(y, x, np.arange(12), folds=12, seed=seed) == pytest.approx(want, rel=1e-10)
    # two rows per user stay together: leave one user (both rows) out
    rows_y, rows_x, names = np.repeat(y, 2), np.repeat(x, 2), np.repeat([f"u{i}" for i in range(12)], 2)
    both = stats.cuped_holdout(rows_y, rows_x, names, folds=12)
    adjusted = np.empty(24)
    for i in range(12):
        rest = names != f"u{i}"
        theta = np.cov(rows_x[rest], rows_y[rest])[0, 1] / rows_x[rest].var(ddof=1)
        adjusted[~rest] = rows_y[~rest] - theta * (rows_x[~rest] - rows_x[rest].mean())
    assert both == pytest.approx(1 - adjusted.var() / rows_y.var(), rel=1e-10)


def test_held_out_cuped_is_blind_to_a_shift_and_to_row_order_and_has_its_defaults():
    rng = np.random.default_rng(36)
    x = rng.normal(0, 1, 40)
    y = x + rng.normal(0, 1, 40)
    users = np.arange(40)
    base = stats.cuped_holdout(y, x, users)
    assert stats.cuped_holdout(y + 100.0, x, users) == pytest.approx(base, rel=1e-9)
    order = rng.permutation(40)
    assert stats.cuped_holdout(y[order], x[order], users[order]) == pytest.approx(base, rel=1e-12)
    assert base == stats.cuped_holdout(y, x, users, folds=5, seed=0)
    assert base != stats.cuped_holdout(y, x, users, folds=6) and base != stats.cuped_holdout(y, x, users, seed=1)
    assert stats.cuped_holdout(np.full(10, 3.0), np.arange(10.0), np.arange(10)) == 0.0  # nothing to remove


def test_held_out_cuped_of_a_small_metric_is_not_rounded_away():
    x = np.random.default_rng(37).normal(0, 1, 30)
    y = 1e-3 * (x + np.random.default_rng(38).normal(0, 0.3, 30))  # pooled sum of squares far below 1
    assert stats.cuped_holdout(y, x, np.arange(30)) == pytest.approx(stats.cuped_holdout(1e3 * y, x, np.arange(30)))
    assert stats.cuped_holdout(y, x, np.arange(30)) > 0.5


@pytest.mark.parametrize("kwargs, message", [
    ({"folds": 1}, "folds must be a whole number of at least 2"),
    ({"folds": 0}, "folds must be"),
    ({"folds": 2.5}, "folds must be"),
    ({"folds": "5"}, "folds must be"),
    ({"folds": 11}, r"at least as many users as the 11 folds \(got 10\)"),
    ({"groups": np.arange(9)}, r"one user name per row \(10\)"),
    ({"groups": [None, "a"] * 5}, "^the user names must be all strings or all numbers$"),
    ({"y": np.r_[np.nan, np.ones(9)]}, "^the metric values hold NaN or infinite values"),
    ({"y": ["a"] * 10}, r"^the metric values must be numbers \(got list\)$"),
    ({"y": np.ones((10, 1))}, "1-D"),
    ({"x": np.ones(9)}, "every user"),
])
def test_held_out_cuped_refuses_what_it_cannot_fold(kwargs, message):
    args = {"y": np.arange(10.0), "x": np.arange(10.0) ** 2, "groups": np.arange(10), **kwargs}
    with pytest.raises(ConfigError, match=message):
        stats.cuped_holdout(**args)


# ---- mSPRT ---------------------------------------------------------------------------------------------------

def _msprt_by_hand(c, t, tau=None):
    """Johari et al.'s mixture likelihood ratio as written in the paper, sigma^2 the running variance of the
    paired differences (ddof 1) at each look, the looks from the burn-in on."""
    n = min(len(c), len(t))
    d = t[:n] - c[:n]
    out, p = [], 1.0
    for m in range(1, n + 1):
        if m >= stats.MSPRT_BURN_IN:
            sigma2 = np.var(d[:m], ddof=1)
            tau2 = sigma2 / 4 if tau is None else tau ** 2
            v = sigma2 / m
            mean = d[:m].mean()
            lam = math.sqrt(v / (v + tau2)) * math.exp(tau2 * mean ** 2 / (2 * v * (v + tau2)))
            p = min(p, 1 / lam)
        out.append(p)
    return out


def test_msprt_is_the_mixture_likelihood_ratio_of_the_paper():
    rng = np.random.default_rng(41)
    c, t = rng.normal(0, 1, 40), rng.normal(1.0, 1.5, 40)
    got = stats.msprt(c, t)
    assert len(got) == 40 and got == pytest.approx(_msprt_by_hand(c, t), rel=1e-9)
    assert got[:stats.MSPRT_BURN_IN - 1] == [1.0] * (stats.MSPRT_BURN_IN - 1) and got[-1] < 0.05
    assert stats.msprt(c, t, tau=0.3) == pytest.approx(_msprt_by_hand(c, t, 0.3), rel=1e-9)
    assert stats.msprt(c, t, tau=3.0) == pytest.approx(_msprt_by_hand(c, t, 3.0), rel=1e-9)
    # unequal arms: pairs up to the shorter one
    assert stats.msprt(c[:27], t) == pytest.approx(_msprt_by_hand(c[:27], t[:27]), rel=1e-9)
    # before the burn-in nothing is looked at, however strong the first pairs
    assert stats.msprt(np.zeros(5), np.r_[10.0, 11.0, 9.0, 10.0, 12.0]) == [1.0] * 5


def test_msprt_stops_heavy_tailed_aa_tests_no_more_often_than_alpha():
    """One variance from the whole sample stopped lognormal A/A tests early at 7 to 9% for an alpha of 5%."""
    rng = np.random.default_rng(1)
    stopped = sum(min(stats.msprt(rng.lognormal(0, 1.5, 300), rng.lognormal(0, 1.5, 300))) < 0.05
                  for _ in range(300))
    assert stopped / 300 < 0.05


def test_msprt_of_a_small_metric_is_the_same_test():
    """Scale-free: at 1e-150 the textbook form squared 1e-300 numbers to 0 and lost the evidence."""
    rng = np.random.default_rng(40)
    c, t = rng.normal(0, 1, 30), rng.normal(1, 1, 30)
    unit = stats.msprt(c, t)
    assert unit[-1] < 1e-3
    for scale in (1e-150, 1e150):
        assert stats.msprt(c * scale, t * scale) == pytest.approx(unit, rel=1e-9)
        assert stats.msprt(c * scale, t * scale, tau=0.7 * scale) == pytest.approx(stats.msprt(c, t, 0.7), rel=1e-9)


def test_msprt_refuses_a_mixture_that_overflows_at_the_last_look():
    """tau^2 / sigma^2 near float64's largest: finite at one pair, inf at three."""
    c, t = np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 4.0])
    sigma2 = 2 * np.var(np.concatenate([c, t]), ddof=1)
    with pytest.raises(ConfigError, match="^tau must be a positive effect size on the metric's scale"):
        stats.msprt(c, t, tau=1e154 * math.sqrt(sigma2))


def test_msprt_of_identical_values_never_rejects():
    assert stats.msprt([2.0, 2.0, 2.0, 2.0], [2.0, 2.0, 2.0]) == [1.0, 1.0, 1.0]
    huge = stats.msprt(np.zeros(50) + np.tile([0.0, 1e-3], 25), np.ones(50))  # overwhelming evidence
    assert huge[-1] < 1e-15 and all(b <= a for a, b in zip(huge, huge[1:]))


@pytest.mark.parametrize("tau, message", [
    (0.0, "tau must be a positive effect size"), (-1.0, "tau must be a positive"), (1e-200, "tau must be a positive"),
    (1e300, "tau must be a positive"), (float("nan"), "tau must be finite"), (float("inf"), "tau must be finite"),
    ("1", "tau must be a number"), (True, "tau must be a number"),
])
def test_msprt_refuses_a_mixture_width_that_is_no_effect_size(tau, message):
    with pytest.raises(ConfigError, match=message):
        stats.msprt([0.0, 1.0, 2.0], [1.0, 2.0, 4.0], tau=tau)


# ---- power ---------------------------------------------------------------------------------------------------

def test_sample_size_and_mde_at_other_alpha_and_power():
    z = sps.norm.ppf(0.95) + sps.norm.ppf(0.9)  # alpha 0.1, power 0.9
    assert stats.sample_size(0.5, 0.1, alpha=0.1, power=0.9) == 2 * math.ceil(2 * (z * 0.5 / 0.1) ** 2)  # whole users a side
    assert stats.sample_size(0.5, -0.1, alpha=0.1, power=0.9) == stats.sample_size(0.5, 0.1, alpha=0.1, power=0.9)
    assert stats.sample_size(0.5, 0.1, 0.1, 0.9, arms=1) == math.ceil((z * 0.5 / 0.1) ** 2)
    assert stats.mde(0.5, 400, alpha=0.1, power=0.9) == pytest.approx(z * 0.5 * math.sqrt(4 / 400), rel=1e-12)
    assert stats.mde(0.0, 10) == 0.0  # no noise: any difference shows
    with pytest.raises(ConfigError, match="sd above 0"):  # but no spread tells no test how many users it needs
        stats.sample_size(0.0, 0.1)
    assert stats.mde(1.0, 4) == pytest.approx((sps.norm.ppf(0.975) + sps.norm.ppf(0.8)), rel=1e-12)
    assert stats.mde(1.0, np.int64(100)) == pytest.approx(stats.mde(1.0, 100))


@pytest.mark.parametrize("kwargs, message", [
    ({"mde": 0.0}, r"need a non-zero effect and sigma >= 0 \(got mde=0.0, sigma=1.0\)"),
    ({"sigma": -0.5}, r"need a non-zero effect and sigma >= 0 \(got mde=0.1, sigma=-0.5\)"),
    ({"mde": float("nan")}, "mde must be finite"), ({"mde": float("inf")}, "mde must be finite"),
    ({"sigma": float("nan")}, "sigma must be finite"), ({"sigma": "1"}, r"^sigma must be a number \(got str\)$"),
    ({"mde": None}, "mde must be a number"), ({"power": 1.0}, "power must be between 0 and 1"),
    ({"power": 0.0}, "power must be"), ({"power": float("nan")}, "power must be finite"),
    ({"arms": 3}, "arms must be 1"), ({"arms": 0}, "arms must be 1"), ({"arms": True}, "arms must be 1"),
    ({"arms": "2"}, "arms must be 1"), ({"mde": 1e-300}, "too small against sigma"),
])
def test_sample_size_refuses_what_plans_no_experiment(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        stats.sample_size(**{"sigma": 1.0, "mde": 0.1, **kwargs})


@pytest.mark.parametrize("kwargs, message", [
    ({"users": 3}, r"users must be a whole number of at least 4 \(got 3\)"), ({"users": 4.0}, "users must be"),
    ({"users": float("nan")}, "users must be"), ({"sigma": -1.0}, r"need sigma >= 0 \(got -1.0\)"),
    ({"sigma": float("inf")}, "sigma must be finite"), ({"power": 1.2}, "power must be"),
])
def test_mde_refuses_what_plans_no_experiment(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        stats.mde(**{"sigma": 1.0, "users": 100, **kwargs})


# ---- interleaving ---------------------------------------------------------------------------------------------

def test_credit_test_caps_at_the_quantile_of_non_zero_differences_worked_by_hand():
    a, b = np.zeros(6), np.array([1.0, 2.0, 3.0, 4.0, 100.0, 0.0])
    capped = np.array([1.0, 2.0, 3.0, 3.0, 3.0, 0.0])  # the median of 1, 2, 3, 4, 100 is 3; the tie 0 is not counted
    mean, sd, p = stats.credit_test(a, b, cap_quantile=0.5)
    assert (mean, sd) == pytest.approx((2.0, capped.std(ddof=1)), rel=1e-12)
    assert p == pytest.approx(sps.ttest_1samp(capped, 0.0).pvalue, rel=1e-12)
    assert stats.credit_test(b, a, cap_quantile=0.5)[0] == -2.0  # symmetric in the teams
    uncapped = stats.credit_test(a, b, cap_quantile=1.0)
    assert uncapped[0] == pytest.approx(110 / 6) and uncapped[2] == pytest.approx(sps.ttest_1samp(b, 0.0).pvalue)
    assert stats.credit_test([0, 0, 0], [0, 0, 0]) == (0.0, 0.0, 1.0)
    assert stats.credit_test([0, 0, 0], [2, 2, 2]) == (2.0, 0.0, 0.25)  # no spread: the exact sign test, 3 of 3


@pytest.mark.parametrize("cap, message", [(0.0, r"in \(0, 1\]"), (1.5, r"in \(0, 1\] \(got 1.5\)"),
                                          (float("nan"), "cap_quantile must be finite"),
                                          ("0.9", "cap_quantile must be a number")])
def test_credit_test_refuses_a_cap_that_is_no_quantile(cap, message):
    with pytest.raises(ConfigError, match=message):
        stats.credit_test([1, 2, 3], [2, 2, 5], cap_quantile=cap)


@pytest.mark.parametrize("cap", [1.0, 0.9])
def test_credit_test_refuses_differences_that_overflow(cap):
    """B - A of two finite credits can overflow; two such users made the cap's quantile inf - inf."""
    with pytest.raises(ConfigError, match=r"^the credits are too large for float64 \(B - A overflows\): rescale them$"):
        stats.credit_test([-1e308, -1e308, 0.0, 1.0], [1e308, 1e308, 1.0, 0.0], cap_quantile=cap)
    with pytest.raises(ConfigError, match=TOO_LARGE):  # finite differences whose variance overflows
        stats.credit_test([0.0, 0.0, 0.0], [1e200, -1e200, 1.0], cap_quantile=cap)


def test_sign_test_is_the_two_sided_binomial_test():
    assert stats.sign_test(0, 5) == pytest.approx(2 * 0.5 ** 5, rel=1e-12)
    assert stats.sign_test(5, 0) == pytest.approx(0.0625, rel=1e-12)
    assert stats.sign_test(1, 1) == 1.0 and stats.sign_test(0, 0) == 1.0
    assert stats.sign_test(np.int64(7), np.int64(20)) == pytest.approx(sps.binomtest(7, 27, 0.5).pvalue)


@pytest.mark.parametrize("wins, name", [((-1, 3), "wins_a"), ((3, -1), "wins_b"), ((2.5, 3), "wins_a"),
                                        ((3, "4"), "wins_b"), ((None, 1), "wins_a"), ((True, 3), "wins_a")])
def test_sign_test_needs_counts(wins, name):
    with pytest.raises(ConfigError, match=f"^{name} must be a whole number of at least 0"):
        stats.sign_test(*wins)


# ---- the verdict ---------------------------------------------------------------------------------------------------

def test_the_verdicts_rule_says_why_in_full():
    assert stats.verdict(0.2, 0.1, 0.3, 0.001) == stats.Verdict(
        "ship", "significant improvement at alpha 0.05 (p=0.001, 95% CI [0.1, 0.3])")
    assert stats.verdict(-0.2, -0.3, -0.1, 0.002, alpha=0.1) == stats.Verdict(
        "do not ship", "significant harm at alpha 0.1 (p=0.002, 90% CI [-0.3, -0.1])")
    assert stats.verdict(0.05, -0.1, 0.2, 0.4, alpha=0.01) == stats.Verdict(
        "inconclusive", "no significant difference at alpha 0.01 (p=0.4, 99% CI [-0.1, 0.2])")


@pytest.mark.parametrize("args, higher_is_better, decision", [
    ((0.2, 0.1, 0.3, 0.05), True, "inconclusive"),  # p == alpha is not below it
    ((-0.2, -0.3, -0.1, 0.05), True, "inconclusive"),
    ((0.2, 0.0, 0.4, 0.01), True, "inconclusive"),  # the interval touches 0
    ((-0.2, -0.4, 0.0, 0.01), True, "inconclusive"),
    ((-0.2, -0.3, -0.1, 0.4), True, "inconclusive"),  # harm that is not significant
    ((0.7, 0.5, 0.9, 0.01), True, "ship"),
    ((-0.7, -0.9, -0.5, 0.01), True, "do not ship"),
    ((-0.2, -0.3, -0.1, 0.01), False, "ship"),  # lower is better: a fall is an improvement
    ((0.7, 0.5, 0.9, 0.01), False, "do not ship"),
    ((0.3, 0.2, 0.5, 0.01), False, "do not ship"),
    ((-0.2, -0.4, 0.0, 0.01), False, "inconclusive"),
    ((0.2, 0.0, 0.4, 0.01), False, "inconclusive"),
    ((-0.7, -0.9, -0.5, 0.01), False, "ship"),
])
def test_the_verdict_at_its_boundaries(args, higher_is_better, decision):
    assert stats.verdict(*args, higher_is_better=higher_is_better).decision == decision


def test_the_verdict_takes_what_welch_gives_for_constant_arms():
    """Constant arms give p = 0 with a point interval, or p = 1 with [0, 0]: results, not errors."""
    exact = stats.welch([1.0, 1.0], [3.0, 3.0])
    assert stats.verdict(exact.delta, exact.ci_low, exact.ci_high, exact.p_value).decision == "ship"
    same = stats.welch([1.0, 1.0], [1.0, 1.0])
    assert stats.verdict(same.delta, same.ci_low, same.ci_high, same.p_value).decision == "inconclusive"


@pytest.mark.parametrize("args, message", [
    ((0.1, 0.05, 0.2, float("nan")), "p_value must be finite"),
    ((0.1, float("nan"), 0.2, 0.01), "ci_low must be finite"),
    ((0.1, 0.05, float("inf"), 0.01), "ci_high must be finite"),
    ((float("nan"), 0.05, 0.2, 0.01), "delta must be finite"),
    ((0.1, 0.05, 0.2, "0.01"), "p_value must be a number"),
    ((0.1, 0.05, 0.2, 1.5), r"p=1.5 must be in \[0, 1\]"),
    ((0.1, 0.05, 0.2, -0.01), r"must be in \[0, 1\]"),
    ((0.1, 0.2, 0.05, 0.01), r"interval \[0.2, 0.05\] must not be reversed"),
])
def test_the_verdict_refuses_what_is_no_test_result(args, message):
    """A NaN p-value or interval failed every comparison and read as a quiet "inconclusive"."""
    with pytest.raises(ConfigError, match=message):
        stats.verdict(*args)


@pytest.mark.parametrize("control, got", [([1.0], "1 user(s)"), ([[1.0, 2.0], [3.0, 4.0]], "values of shape (2, 2)")])
def test_an_arm_too_small_is_refused_with_what_to_do(control, got):
    """The whole message (note 43): what the arm has and what to do about it."""
    with pytest.raises(ConfigError) as caught:
        stats.welch(control, [1.0, 2.0, 3.0])
    assert str(caught.value) == (
        f"each arm needs at least two users' values and one arm has {got}: with simulated users raise --users (arms "
        "are drawn at random, so a few users can leave one nearly empty)")


# ---- the CUPED test --------------------------------------------------------------------------------------------

def test_cuped_test_keeps_small_aa_experiments_at_alpha():
    """Welch on the CUPED-adjusted arrays took them as raw data: with six covariates and 20 users A/A tests were
    significant 17% of the time at alpha 0.05. The regression's own test (HC2 error, Bell-McCaffrey degrees of freedom)
    is not."""
    rng = np.random.default_rng(7)
    hits = welch_hits = 0
    for _ in range(400):
        x = rng.normal(size=(20, 6))
        y = x @ np.full(6, 0.3) + rng.normal(size=20)
        c, t = slice(0, 10), slice(10, 20)
        hits += stats.cuped_test(y[c], y[t], x[c], x[t]).p_value < 0.05
        ac, at, _ = stats.cuped(y[c], y[t], x[c], x[t])
        welch_hits += stats.welch(ac, at).p_value < 0.05
    assert hits / 400 < 0.05 + 3 * math.sqrt(0.05 * 0.95 / 400) < welch_hits / 400


def test_cuped_test_is_the_cuped_estimate_with_welchs_error_when_nothing_is_adjusted():
    rng = np.random.default_rng(3)
    c, t = rng.normal(0, 1, 30), rng.normal(0.5, 2, 25)
    xc, xt = rng.normal(size=(30, 2)), rng.normal(size=(25, 2))
    test = stats.cuped_test(c, t, xc, xt)
    ac, at, _ = stats.cuped(c, t, xc, xt)
    assert test.delta == pytest.approx(at.mean() - ac.mean(), rel=1e-9)
    plain = stats.cuped_test(c, t, np.ones(30), np.ones(25))  # a constant covariate is dropped: HC2 is Welch's error
    welch = stats.welch(c, t)
    # HC2 is Welch's error and, with Bell-McCaffrey degrees of freedom, Welch's interval and p exactly
    assert plain.delta == pytest.approx(welch.delta) and plain.ci_high == pytest.approx(welch.ci_high, rel=1e-9)
    assert plain.p_value == pytest.approx(welch.p_value, rel=1e-9)
    # 6 users leave room for 4 independent columns about the arms' means: 6 - 2 - 4 = 0 degrees of freedom
    with pytest.raises(ConfigError, match="4 independent covariate.*needs more than 6 users"):
        stats.cuped_test(c[:3], t[:3], rng.normal(size=(3, 6)), rng.normal(size=(3, 6)))


def test_cuped_test_counts_users_against_the_covariates_it_keeps():
    """Copies of a column are dropped before the users are counted: 10 users with one pre-period figure
    given nine times is the test with that figure, not a refusal for needing more than 11 users."""
    rng = np.random.default_rng(4)
    c, t, xc, xt = rng.normal(0, 1, 5), rng.normal(1, 1, 5), rng.normal(size=5), rng.normal(size=5)
    once = stats.cuped_test(c, t, xc, xt)
    nine = stats.cuped_test(c, t, np.tile(xc[:, None], 9), np.tile(xt[:, None], 9))
    assert nine.delta == pytest.approx(once.delta, rel=1e-9) and nine.p_value == pytest.approx(once.p_value, rel=1e-6)


def test_welch_of_tiny_values_is_the_same_test():
    """Squares of 1e-162 underflowed to 0: se 0, p 0 and a point interval, where 1e-150 gave p 0.37."""
    c, t = np.array([1.0, 2.0, 0.0, 3.0, 1.0]), np.array([0.0, 0.0, 1.0, 2.0, 1.0])
    unit = stats.welch(c, t)
    for scale in (1e-162, 1e-170, 1e100):
        scaled = stats.welch(c * scale, t * scale)
        assert scaled.p_value == pytest.approx(unit.p_value, rel=1e-9)
        assert scaled.ci_low == pytest.approx(unit.ci_low * scale, rel=1e-9)
