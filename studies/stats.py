"""The statistics of online experiments: Welch's t-test, bootstrap intervals, CUPED, mSPRT,
power and minimum detectable effect, the sign and credit tests of interleaving, and the verdict rule.

All of it works on per-user arrays (one value per user and arm), the unit
that was randomised. Normal approximations are used where the sample sizes
of an online experiment make them exact enough; scipy gives the t and
binomial tails.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

from edgerec.errors import ConfigError


def _values(v, what: str) -> np.ndarray:
    """`v` as a float64 array of finite numbers; anything else is a ConfigError that names `what`."""
    try:
        if v is None:
            raise TypeError
        raw = np.asarray(v)
        if raw.dtype.kind not in "biufO":  # strings, complex numbers, dates: no metric values
            raise TypeError
        a = raw.astype(np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be numbers (got {type(v).__name__})") from None
    if not np.isfinite(a).all():
        raise ConfigError(f"{what} hold NaN or infinite values: drop or fill the users without a value")
    return a


def _arrays(*values) -> list[np.ndarray]:
    out = [_values(v, "an arm's values") for v in values]
    for a in out:
        if a.ndim != 1 or len(a) < 2:
            got = f"{len(a)} user(s)" if a.ndim == 1 else f"values of shape {a.shape}"
            raise ConfigError(f"each arm needs at least two users' values and one arm has {got}: with simulated users "
                              "raise --users (arms are drawn at random, so a few users can leave one nearly empty)")
    return out


def whole_number(value) -> bool:
    """An int (numpy's too), not a bool or a float that happens to be whole: what a device report holds."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def number_arg(name: str, value) -> float:
    """A scalar argument as a float: a finite real number (not a bool, not text), else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number (got {type(value).__name__})")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite (got {value})")
    return float(value)


def _share(name: str, value) -> float:
    """alpha, power: strictly between 0 and 1 (at 0 or 1 the normal and t quantiles are infinite)."""
    v = number_arg(name, value)
    if not 0 < v < 1:
        raise ConfigError(f"{name} must be between 0 and 1, exclusive (got {v})")
    return v


share_arg = _share  # the public name: studies validate alpha with it before they simulate


def count_arg(name: str, value, least: int) -> int:
    """A whole-number argument of at least `least` (numpy integers too; not a bool or 2.0), else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ConfigError(f"{name} must be a whole number of at least {least} (got {value!r})")
    return int(value)


def _moments(a: np.ndarray) -> tuple[float, float]:
    """Mean and sample variance; values so large that these overflow float64 are refused, not NaN."""
    with np.errstate(over="ignore", invalid="ignore"):  # numpy's pairwise sum can meet inf and -inf: NaN
        mean, var = float(a.mean()), float(a.var(ddof=1))
    if not (math.isfinite(mean) and math.isfinite(var)):
        raise ConfigError("the values are too large for float64 statistics (their variance overflows): "
                          "rescale the metric, e.g. to thousands")
    return mean, var


@dataclass
class Comparison:
    """Treatment minus control on one metric."""

    metric: str
    control_mean: float
    treatment_mean: float
    delta: float
    relative: float  # delta / control mean
    ci_low: float
    ci_high: float
    p_value: float
    n_control: int
    n_treatment: int
    method: str

    def to_dict(self) -> dict:
        return asdict(self)


def welch(control, treatment, metric: str = "metric", alpha: float = 0.05) -> Comparison:
    """Welch's unequal-variance t-test and its (1 - alpha) interval for the difference of means."""
    c, t = _arrays(control, treatment)
    alpha = _share("alpha", alpha)
    _moments(c), _moments(t)  # refuses values whose moments overflow
    scale = float(max(np.abs(c).max(), np.abs(t).max())) or 1.0  # scale-free: squares of 1e-162 underflowed to 0,
    (mc, vc), (mt, vt) = _moments(c / scale), _moments(t / scale)  # and p came out 0
    vc, vt = vc / len(c), vt / len(t)
    se, delta = math.sqrt(vc + vt), mt - mc
    if se == 0:  # both arms constant: the difference is exact
        p, half = (1.0 if delta == 0 else 0.0), 0.0
    else:
        # Welch-Satterthwaite df written with the variance shares, which neither overflow nor underflow
        wc, wt = vc / (vc + vt), vt / (vc + vt)
        df = 1 / (wc ** 2 / (len(c) - 1) + wt ** 2 / (len(t) - 1))
        p = float(2 * sps.t.sf(abs(delta) / se, df))
        half = float(sps.t.isf(alpha / 2, df) * se)
    mc, mt, delta, half = mc * scale, mt * scale, delta * scale, half * scale
    return Comparison(metric, mc, mt, delta, _relative(delta, mc),
                      delta - half, delta + half, p, len(c), len(t), "welch")


def _relative(delta: float, base: float) -> float:
    # no relative change from a control mean of 0: NaN, which records write as null
    return float(delta / base) if base else float("nan")


def _bootstrap_differences(c: np.ndarray, t: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    for arm in (c, t):
        _moments(arm)  # refuses values whose means would overflow
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    for b in range(resamples):
        diffs[b] = t[rng.integers(0, len(t), len(t))].mean() - c[rng.integers(0, len(c), len(c))].mean()
    return diffs


def bootstrap_ci(control, treatment, resamples: int = 2000, alpha: float = 0.05, seed: int = 0
                 ) -> tuple[float, float]:
    """Percentile bootstrap interval of the difference of means (users resampled within each arm)."""
    c, t = _arrays(control, treatment)
    resamples, alpha, seed = count_arg("resamples", resamples, 1), _share("alpha", alpha), count_arg("seed", seed, 0)
    diffs = _bootstrap_differences(c, t, resamples, seed)
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def percentile_p_value(diffs) -> float:
    """The two-sided p-value that goes with the percentile interval of these bootstrap differences: the
    smallest alpha at which the interval (np.quantile's linear interpolation at alpha / 2 and
    1 - alpha / 2) leaves out 0, so p < alpha exactly when the interval at alpha excludes 0. About
    2 min(share of differences <= 0, share >= 0); 0 when every resample fell on one side of 0."""
    s = np.sort(_values(diffs, "the bootstrap differences").ravel())
    if len(s) == 0:
        raise ConfigError("no bootstrap differences: draw at least one resample")
    if len(s) == 1:
        return 1.0 if s[0] == 0 else 0.0
    step = 1.0 / (len(s) - 1)  # np.quantile puts the i-th sorted value at tau = i / (n - 1)

    def crossing(j: int) -> float:  # tau where the line from s[j] to s[j + 1] meets 0
        return (j + (0.0 - s[j]) / (s[j + 1] - s[j])) * step

    # low: the largest tau whose quantile is <= 0 (the interval's low end is above 0 for alpha > 2 low)
    if s[0] > 0:
        low = 0.0
    elif s[-1] <= 0:
        low = 1.0
    else:
        j = int(np.flatnonzero(s <= 0)[-1])
        low = crossing(j) if s[j] < 0 else j * step
    # high: the smallest tau whose quantile is >= 0 (the high end is below 0 for alpha > 2 (1 - high))
    if s[-1] < 0:
        high = 1.0
    elif s[0] >= 0:
        high = 0.0
    else:
        j = int(np.flatnonzero(s >= 0)[0])
        high = crossing(j - 1) if s[j] > 0 else j * step
    return float(min(1.0, 2 * low, 2 * (1 - high)))


def bootstrap_test(control, treatment, metric: str = "metric", resamples: int = 2000, alpha: float = 0.05,
                   seed: int = 0) -> Comparison:
    """The difference of means with its percentile bootstrap interval (bootstrap_ci's, the same draws) and
    the p-value of that interval (percentile_p_value): p < alpha exactly when the interval excludes 0.
    Welch's p-value beside the bootstrap interval, as the record showed before, could say 0.06 beside an
    interval that left out 0."""
    c, t = _arrays(control, treatment)
    resamples, alpha, seed = count_arg("resamples", resamples, 1), _share("alpha", alpha), count_arg("seed", seed, 0)
    diffs = _bootstrap_differences(c, t, resamples, seed)
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    mc, mt = float(c.mean()), float(t.mean())
    delta = mt - mc
    return Comparison(metric, mc, mt, delta, _relative(delta, mc), float(lo), float(hi),
                      percentile_p_value(diffs), len(c), len(t), "bootstrap (percentile, users resampled)")


def cuped(control, treatment, pre_control, pre_treatment) -> tuple[np.ndarray, np.ndarray, float]:
    """CUPED (Deng et al., WSDM 2013): y - theta (x - mean x), theta = cov(x, y) / var(x) over both arms.

    x is one pre-period value per user, or several (an (n, p) array): theta is
    then the least-squares fit of y on the covariates (regression adjustment;
    with one column it is the formula above). Returns the adjusted arrays and
    the share of variance removed. The mean of x over both arms is
    subtracted, so the difference of means keeps its expectation (x is
    measured before assignment). theta is fitted on y and x taken about each
    arm's own means, one slope for both arms (the treatment coefficient of
    y ~ arm + x): fitted about the pooled mean instead, the effect itself
    leaks into theta and the adjustment shrinks it towards zero by about the
    share of the arm indicator that the covariates explain by chance (4% with
    six heavy-tailed covariates on 300 users; the test shows it).
    """
    c, t = _arrays(control, treatment)
    xc, xt = _covariates(pre_control, len(c)), _covariates(pre_treatment, len(t))
    if xc.shape[1] != xt.shape[1]:
        raise ConfigError(f"CUPED needs the same pre-period covariates in both arms (got {xc.shape[1]} and "
                          f"{xt.shape[1]} per user)")
    arm = np.repeat([0, 1], [len(c), len(t)])
    adjust = cuped_fit(np.concatenate([c, t]), np.concatenate([xc, xt]), arm)
    ac, at = c - adjust(xc), t - adjust(xt)
    before = _moments(c)[1] + _moments(t)[1]
    after = _moments(ac)[1] + _moments(at)[1]
    return ac, at, float(1 - after / before) if before > 0 else 0.0


def cuped_test(control, treatment, pre_control, pre_treatment, metric: str = "metric",
               alpha: float = 0.05) -> Comparison:
    """The CUPED comparison with its test: the arm coefficient of y ~ 1 + arm + x (the CUPED estimate, as
    `cuped` adjusts), its HC2 robust standard error and t with Bell-McCaffrey degrees of freedom.

    Welch's test on the adjusted arrays took them as raw data: the slope fitted on the covariates lowers
    their spread and uses up degrees of freedom, and with six covariates and 20 to 40 users A/A tests came
    out significant at 0.10 to 0.17 for an alpha of 0.05. Without covariates HC2's error is Welch's.

    The degrees of freedom are Satterthwaite's for the HC2 variance (Bell and McCaffrey 2002; Imbens and
    Kolesar 2016) under a working model with one residual variance per arm: without covariates they are
    Welch's exactly. n - p - 2, used before, ignored that with unequal arms the variance comes almost all
    from the small arm: 400 control and 12 treatment devices gave a verdict in 7.6% of A/A runs at an
    alpha of 5% (Welch: 5.1%).

    Covariates that do not vary within the arms (a pre-period figure that separates the arms), or that
    are combinations of others within the arms, leave the arm's effect unidentified: they are dropped
    (`collinear_covariates` names them) and the method says so. Before, a pseudo-inverse split the
    effect between the arm and such a covariate and returned half of it as significant.
    """
    c, t = _arrays(control, treatment)
    alpha = _share("alpha", alpha)
    xc, xt = _covariates(pre_control, len(c)), _covariates(pre_treatment, len(t))
    if xc.shape[1] != xt.shape[1]:
        raise ConfigError(f"CUPED needs the same pre-period covariates in both arms (got {xc.shape[1]} and "
                          f"{xt.shape[1]} per user)")
    ac, at, _ = cuped(c, t, xc, xt)  # refuses values whose moments overflow
    y, x = np.concatenate([c, t]), np.concatenate([xc, xt])
    arm = np.repeat([0.0, 1.0], [len(c), len(t)])
    # one sd, used both to drop constant columns and to scale the rest: recomputed on the kept copy,
    # a constant column's rounding-noise sd (1e-15) became exactly 0 and put 0/0 in the design
    keep, sd = _varying(x)
    x = (x[:, keep] - x[:, keep].mean(0)) / sd[keep]  # conditioning only: the arm's coefficient does not change
    independent = _identified(x, arm)
    used = int(independent.sum())  # counted after dropping: copies of a column cost no degree of freedom
    if len(y) - used - 2 < 1:
        raise ConfigError(f"CUPED with {used} independent covariate(s) needs more than {used + 2} users "
                          f"(got {len(y)}): give fewer pre-period columns or more users")
    dropped = [int(i) for i in np.flatnonzero(keep)[~independent]]
    design = np.column_stack([np.ones(len(y)), arm, x[:, independent]])
    df = len(y) - design.shape[1]
    scale = max(float(np.abs(y).max()), 1e-300)  # scale-free: tiny values would underflow in the squares
    try:
        inverse = np.linalg.pinv(design.T @ design)
    except np.linalg.LinAlgError as exc:  # finite, scaled columns make this rare; never a raw numpy error
        raise ConfigError(f"CUPED could not fit the pre-period covariates ({exc}): check that they are "
                          f"finite and not near copies of each other, or run the test without CUPED") from exc
    beta = inverse @ design.T @ (y / scale)
    residual = y / scale - design @ beta
    leverage = np.einsum("ij,jk,ik->i", design, inverse, design)
    room = np.maximum(1 - leverage, 1e-12)
    weight = (design @ inverse[1]) ** 2 / room  # d_i^2: HC2's variance of the arm's coefficient is sum d_i^2 e_i^2
    se = math.sqrt(max(float((weight * residual ** 2).sum()), 0.0))
    delta = float(beta[1]) * scale
    if se == 0:  # the fit is exact: the difference is too (as welch says of constant arms)
        p, half = (1.0 if delta == 0 else 0.0), 0.0
    else:
        # one residual variance per arm, unbiased under it (sum of e^2 over the sum of 1 - h): Welch's s^2
        # without covariates
        omega = np.zeros(len(y))
        for rows in (arm == 0, arm == 1):
            omega[rows] = (residual[rows] ** 2).sum() / max(float((1 - leverage[rows]).sum()), 1e-12)
        df = bell_mccaffrey_df(design, inverse, weight, omega, leverage)
        p = float(2 * sps.t.sf(abs(beta[1]) / se, df))
        half = float(sps.t.isf(alpha / 2, df) * se) * scale
    control_mean = float(ac.mean())
    method = "cuped (y ~ arm + pre-period, HC2, Bell-McCaffrey df)"
    if dropped:
        method += (f"; covariate column(s) {dropped} dropped: they do not vary within the arms apart from the "
                   "other covariates (e.g. a pre-period figure that separates the arms), so they cannot be told "
                   "from the arm's effect")
    return Comparison(metric, control_mean, control_mean + delta, delta, _relative(delta, control_mean),
                      delta - half, delta + half, p, len(c), len(t), method)


def bell_mccaffrey_df(design: np.ndarray, inverse: np.ndarray, weight: np.ndarray, omega: np.ndarray,
                      leverage: np.ndarray) -> float:
    """Satterthwaite's degrees of freedom of the HC2 variance sum_i d_i^2 e_i^2 of one coefficient,
    (tr M)^2 / tr(M^2) with M = D (I - H) Omega (I - H) D, D = diag(d), H the hat matrix and Omega the
    working model's diagonal variances (Bell and McCaffrey 2002). M is n x n; here it is the diagonal
    D Omega D plus a term of rank 2p, so the traces cost O(n p^2), not O(n^3)."""
    hx = design @ inverse  # rows: x_i' (X'X)^-1
    s = design.T @ (design * omega[:, None])  # X' Omega X
    h_omega_h = np.einsum("ij,jk,ik->i", hx, s, hx)  # (H Omega H)_ii
    trace = float((weight * (omega * (1 - 2 * leverage) + h_omega_h)).sum())
    root = np.sqrt(weight)
    u = np.column_stack([design * root[:, None], design * (root * omega)[:, None]])
    k = design.shape[1]
    middle = np.block([[inverse @ s @ inverse, -inverse], [-inverse, np.zeros((k, k))]])
    diagonal = weight * omega
    gram = u.T @ u
    square = float((diagonal ** 2).sum() + 2 * np.trace(middle @ (u.T @ (u * diagonal[:, None])))
                   + np.trace(middle @ gram @ middle @ gram))
    if not (trace > 0 and square > 0):
        return float(len(omega) - k)  # no residual spread to weigh: the classical count
    return trace * trace / square


def _identified(x: np.ndarray, arm: np.ndarray, tolerance: float = 1e-7) -> np.ndarray:
    """Which columns of x to keep so the arm's coefficient of y ~ 1 + arm + x is identified: taken about
    each arm's own mean, a column must not be (nearly: a residual under `tolerance` of its size) a
    combination of the columns kept before it. The design's rank is then 2 + the columns kept."""
    within = x.copy()
    for a in np.unique(arm):
        rows = arm == a
        within[rows] -= within[rows].mean(0)
    basis: list[np.ndarray] = []
    kept = np.zeros(x.shape[1], bool)
    for j in range(x.shape[1]):
        size = float(np.linalg.norm(x[:, j] - x[:, j].mean()))
        rest = within[:, j].copy()
        for b in basis:  # Gram-Schmidt, twice for stability
            rest -= (b @ rest) * b
        for b in basis:
            rest -= (b @ rest) * b
        left = float(np.linalg.norm(rest))
        if size > 0 and left > tolerance * size:
            basis.append(rest / left)
            kept[j] = True
    return kept


def collinear_covariates(pre_control, pre_treatment) -> list[int]:
    """The pre-period columns CUPED drops because, about each arm's own mean, they are constant or a
    combination of earlier columns (a figure that separates the arms): the arm's effect and theirs cannot
    be told apart. Constant columns are not listed (they say nothing and are dropped anyway)."""
    xc, xt = _values(pre_control, "the pre-period values"), _values(pre_treatment, "the pre-period values")
    xc, xt = _covariates(xc, len(xc)), _covariates(xt, len(xt))
    if xc.shape[1] != xt.shape[1]:
        raise ConfigError(f"CUPED needs the same pre-period covariates in both arms (got {xc.shape[1]} and "
                          f"{xt.shape[1]} per user)")
    x = np.concatenate([xc, xt])
    keep, sd = _varying(x)
    x = (x[:, keep] - x[:, keep].mean(0)) / sd[keep]
    arm = np.repeat([0.0, 1.0], [len(xc), len(xt)])
    return [int(i) for i in np.flatnonzero(keep)[~_identified(x, arm)]]


def _vector(y) -> np.ndarray:
    y = _values(y, "the metric values")
    if y.ndim != 1:
        raise ConfigError(f"the metric needs one value per row (a 1-D array), got shape {y.shape}")
    return y


def _covariates(x, rows: int) -> np.ndarray:
    """Pre-period values as a (rows, p) array: one value per user (1-D) or p of them (2-D)."""
    x = _values(x, "the pre-period values")
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or len(x) != rows:
        raise ConfigError(f"CUPED needs the pre-period values of every user: {rows} row(s), one per user, "
                          f"got shape {x.shape}")
    return x


def _varying(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The columns of x that vary, and every column's sd. A column that is the same for every user
    has a float sd of rounding noise (1e-15 for log(31)), not 0: relative to its size it is constant."""
    with np.errstate(over="ignore"):
        sd = x.std(0)
    return sd > 1e-12 * np.maximum(1.0, np.abs(x.mean(0))), sd


def cuped_fit(y: np.ndarray, x: np.ndarray, arm: np.ndarray | None = None):
    """The adjustment x -> theta (x - mean x): theta by least squares of y on x, both taken about
    their mean within each arm (`arm`: one label per row; None: one arm); mean x over all rows."""
    y = _vector(y)
    x = _covariates(x, len(y))
    arm = np.zeros(len(y), np.int64) if arm is None else np.asarray(arm)
    if arm.shape != y.shape:
        raise ConfigError(f"need one arm label per user ({len(y)}), got shape {arm.shape}")
    with np.errstate(over="ignore"):  # finite x: an overflow gives inf, never NaN
        mean, spread = x.mean(0), x.var(0)
    if not (np.isfinite(mean).all() and np.isfinite(spread).all()):
        raise ConfigError("the pre-period values are too large for float64 (their variance overflows): rescale them")
    keep, sd = _varying(x)  # a constant covariate says nothing
    # nor does one that is constant within the arms (it separates them) or a combination of others there:
    # the same columns cuped_test keeps, so its arm coefficient is this adjustment's difference of means
    keep[keep] = _identified((x[:, keep] - mean[keep]) / sd[keep], arm)
    yw, xw = y.copy(), x[:, keep]
    for a in np.unique(arm):
        rows = arm == a
        yw[rows] -= yw[rows].mean()
        xw[rows] -= xw[rows].mean(0)
    theta = np.linalg.lstsq(xw, yw, rcond=None)[0]
    return lambda new: (np.asarray(new, np.float64) - mean)[:, keep] @ theta


def _removed(before: np.ndarray, after: np.ndarray) -> float:
    total = float((before ** 2).sum())
    return float(1 - (after ** 2).sum() / total) if total > 0 else 0.0


def cuped_holdout(y: np.ndarray, x: np.ndarray, groups: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Share of the variance of pooled y that CUPED removes from users it was not fitted on.

    The in-sample share overstates with many covariates and heavy-tailed users
    (the fit chases the few heaviest); here each fold of users is adjusted with
    theta fitted on the others, the figure to plan sample sizes with. `groups`
    names the user of each row, so rows of one user stay in one fold.
    """
    y = _vector(y)
    x, groups = _covariates(x, len(y)), np.asarray(groups)
    folds, seed = count_arg("folds", folds, 2), count_arg("seed", seed, 0)
    if groups.shape != y.shape:
        raise ConfigError(f"need one user name per row ({len(y)}), got shape {groups.shape}")
    try:
        names, row = np.unique(groups, return_inverse=True)
    except TypeError:  # names of mixed types (None among strings) have no order
        raise ConfigError("the user names must be all strings or all numbers") from None
    if len(names) < folds:
        raise ConfigError(f"need at least as many users as the {folds} folds (got {len(names)})")
    fold = np.random.default_rng(seed).permutation(len(names))[row] % folds
    adjusted = np.empty_like(y)
    for f in range(folds):
        out = fold == f
        adjusted[out] = y[out] - cuped_fit(y[~out], x[~out])(x[out])
    return _removed(y - y.mean(), adjusted - adjusted.mean())


MSPRT_BURN_IN = 20  # pairs before the first look: the normal approximation needs some users first


def msprt(control, treatment, tau: float | None = None) -> list[float]:
    """Always-valid p-values of the mixture sequential probability ratio test, one per look.

    Johari et al. (KDD 2017 / OR 2022): a normal mixture N(0, tau^2) over the
    difference of means; after each pair of users the likelihood ratio
    Lambda_n is updated and p_n = min(p_{n-1}, 1 / Lambda_n). Stopping the
    first time p_n < alpha keeps the false-positive rate at alpha. Users are
    taken in arrival order in pairs (one per arm). The variance at each look is
    the running estimate from the pairs seen so far, and the first look comes
    after MSPRT_BURN_IN pairs (p is 1 before). One variance from the whole
    sample, as before, let heavy-tailed metrics stop A/A tests early at 7 to 9%
    for an alpha of 5% (lognormal watch time, 300 to 1,000 users a side); the
    running estimate with the burn-in measured 1 to 4% on the same draws and on
    normal ones.
    """
    c, t = _arrays(control, treatment)
    n = min(len(c), len(t))
    sigma2 = _moments(np.concatenate([c[:n], t[:n]]))[1] * 2  # the whole sample's: only to check tau's scale
    if sigma2 == 0:
        return [1.0] * n
    scaled = 0.5 if tau is None else max(number_arg("tau", tau), 0.0) / math.sqrt(sigma2)  # default: half a sigma
    if not (scaled * scaled > 0 and math.isfinite(scaled * scaled * n)):
        raise ConfigError(f"tau must be a positive effect size on the metric's scale (got {tau} for differences "
                          f"of standard deviation {math.sqrt(sigma2):.3g})")
    d = t[:n] - c[:n]
    unit = float(np.abs(d).max()) or 1.0  # scale-free: the squares of 1e-150 differences would underflow
    d, tau_unit = d / unit, (None if tau is None else float(tau) / unit)
    out, p, mean, m2 = [], 1.0, 0.0, 0.0
    for m in range(1, n + 1):  # Welford's running mean and sum of squares of the differences
        step = d[m - 1] - mean
        mean += step / m
        m2 += step * (d[m - 1] - mean)
        var = m2 / (m - 1) if m > 1 else 0.0
        if m >= MSPRT_BURN_IN and var > 0:
            # in units of the running variance v: r = tau^2 / v, z = S_m / sqrt(v)
            # log Lambda_m = -0.5 log(1 + r m) + r z^2 / (2 (1 + r m))
            r = 0.25 if tau_unit is None else tau_unit * tau_unit / var
            if not math.isfinite(r * m):
                raise ConfigError(f"tau must be a positive effect size on the metric's scale (got {tau} for "
                                  f"differences of standard deviation {math.sqrt(var) * unit:.3g})")
            z2 = (mean * m) ** 2 / var
            p = min(p, math.exp(-(-0.5 * math.log1p(r * m) + r * z2 / (2 * (1 + r * m)))))
        out.append(p)
    return out


def sample_size(sigma: float, mde: float, alpha: float = 0.05, power: float = 0.8, arms: int = 2) -> int:
    """Users in total to detect a difference `mde` of means (per-user sd `sigma`), two-sided.

    arms=2: an A/B test, n per arm = 2 (z_a + z_b)^2 sigma^2 / mde^2.
    arms=1: a one-sample test of a paired outcome (interleaving), n = (z_a + z_b)^2 sigma^2 / mde^2.
    sigma must be above 0: a sample without spread gives no sd to plan with (it returned 0 users).
    """
    sigma, mde = number_arg("sigma", sigma), number_arg("mde", mde)
    alpha, power = _share("alpha", alpha), _share("power", power)
    if mde == 0 or sigma < 0:
        raise ConfigError(f"need a non-zero effect and sigma >= 0 (got mde={mde}, sigma={sigma})")
    if sigma == 0:
        raise ConfigError("need a per-user sd above 0 (got sigma=0): a sample in which every user's figure is "
                          "the same shows no noise to plan with, not an experiment that needs no users; "
                          "measure sigma on more users")
    if arms not in (1, 2) or isinstance(arms, bool):
        raise ConfigError(f"arms must be 1 (a paired outcome) or 2 (an A/B test), got {arms!r}")
    ratio = float(sps.norm.isf(alpha / 2) + sps.norm.ppf(power)) * sigma / mde
    per_arm = arms * ratio * ratio  # arms x (z sigma / mde)^2; a Python float overflows to inf
    if not math.isfinite(per_arm):
        raise ConfigError(f"an effect of {mde} is too small against sigma {sigma} to plan a sample for")
    return arms * int(math.ceil(per_arm))  # whole users in each arm: 392.5 a side is 786, not 785


def mde(sigma: float, users: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest difference of means an even two-arm test of `users` in total detects at `power`."""
    sigma, users = number_arg("sigma", sigma), count_arg("users", users, 4)
    alpha, power = _share("alpha", alpha), _share("power", power)
    if sigma < 0:
        raise ConfigError(f"need sigma >= 0 (got {sigma})")
    z = sps.norm.isf(alpha / 2) + sps.norm.ppf(power)
    return float(z * sigma * math.sqrt(2 / (users / 2)))


def credit_test(clicks_a, clicks_b, cap_quantile: float = 0.9) -> tuple[float, float, float]:
    """Interleaving's per-user credit test: a one-sample t-test of each user's clicks for B minus
    clicks for A over the whole experiment (every user counts, ties and users without clicks as 0).

    Unlike the sign test it keeps how strongly each user preferred a team, so a
    user who played five of B's items and one of A's weighs more than one who
    played one of each side. The few heaviest users would then drown the rest in
    their own noise, so each difference is capped at the `cap_quantile` of the
    non-zero |differences| (winsorising; 1.0: no cap). The cap depends on sizes
    only, never on signs, so with no preference the capped differences stay
    symmetric about 0 and the test keeps its level. When every capped difference
    is the same the t statistic has no spread to stand on: the p-value is then
    the exact sign test's (2 x 0.5^users for a common non-zero difference, 1 for
    none). Returns (mean capped difference, its standard deviation over users,
    two-sided p-value).
    """
    a, b = _arrays(clicks_a, clicks_b)
    if len(a) != len(b):
        raise ConfigError(f"need one A and one B credit per user (got {len(a)} and {len(b)})")
    cap_quantile = number_arg("cap_quantile", cap_quantile)
    if not 0 < cap_quantile <= 1:
        raise ConfigError(f"cap_quantile must be in (0, 1] (got {cap_quantile})")
    with np.errstate(over="ignore"):
        d = b - a
    if not np.isfinite(d).all():
        raise ConfigError("the credits are too large for float64 (B - A overflows): rescale them")
    if cap_quantile < 1 and d.any():
        cap = float(np.quantile(np.abs(d[d != 0]), cap_quantile))
        d = np.clip(d, -cap, cap)
    mean, var = _moments(d)
    sd = math.sqrt(var)
    if sd <= 1e-12 * max(1.0, abs(mean)):  # equal credits leave float noise (0.1 each: sd 1.7e-17, t of 1e16)
        sd = 0.0
        # every user's capped difference is the same: a t statistic of x / 0 is no evidence (it gave p = 0
        # and "ship" on three users); the exact sign test of those users is, and needs no spread
        return mean, sd, sign_test(int((d < 0).sum()), int((d > 0).sum()))
    return mean, sd, float(2 * sps.t.sf(abs(mean) / (sd / math.sqrt(len(d))), len(d) - 1))


def sign_test(wins_a: int, wins_b: int) -> float:
    """Two-sided binomial test of interleaving wins (ties dropped): p-value that A and B are equal."""
    n = count_arg("wins_a", wins_a, 0) + count_arg("wins_b", wins_b, 0)
    if n == 0:
        return 1.0
    return float(sps.binomtest(wins_a, n, 0.5).pvalue)


@dataclass
class Verdict:
    decision: str  # "ship", "do not ship", "inconclusive"
    rule: str


def verdict(delta: float, ci_low: float, ci_high: float, p_value: float, alpha: float = 0.05,
            higher_is_better: bool = True) -> Verdict:
    """Ship when the interval excludes zero on the good side; do not ship when it does on the bad side.

    Every figure must be finite and p a probability: a NaN would otherwise fail every comparison and
    read as a quiet "inconclusive"."""
    for name, v in (("delta", delta), ("ci_low", ci_low), ("ci_high", ci_high), ("p_value", p_value)):
        number_arg(name, v)
    alpha = _share("alpha", alpha)
    if not 0 <= p_value <= 1 or ci_low > ci_high:
        raise ConfigError(f"not a test result: p={p_value} must be in [0, 1] and the interval "
                          f"[{ci_low}, {ci_high}] must not be reversed")
    good = ci_low > 0 if higher_is_better else ci_high < 0
    bad = ci_high < 0 if higher_is_better else ci_low > 0
    shown = f"p={p_value:.3g}, {100 * (1 - alpha):.0f}% CI [{ci_low:.4g}, {ci_high:.4g}]"
    if p_value < alpha and good:
        return Verdict("ship", f"significant improvement at alpha {alpha} ({shown})")
    if p_value < alpha and bad:
        return Verdict("do not ship", f"significant harm at alpha {alpha} ({shown})")
    return Verdict("inconclusive", f"no significant difference at alpha {alpha} ({shown})")
