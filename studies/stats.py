"""The statistics of online experiments: Welch's t-test, bootstrap intervals, CUPED, mSPRT,
power and minimum detectable effect, the sign and credit tests of interleaving, and the verdict rule.

All of it works on per-user arrays (one value per user and arm), the unit
that was randomised. Normal approximations are used where the sample sizes
of an online experiment make them exact enough; scipy gives the t and
binomial tails.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

from edgerec.errors import ConfigError


def _arrays(*values) -> list[np.ndarray]:
    out = [np.asarray(v, np.float64) for v in values]
    for a in out:
        if a.ndim != 1 or len(a) < 2:
            got = f"{len(a)} user(s)" if a.ndim == 1 else f"values of shape {a.shape}"
            raise ConfigError(f"each arm needs at least two users' values and one arm has {got}: with simulated users "
                              "raise --users (arms are drawn at random, so a few users can leave one nearly empty)")
    return out


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
    vc, vt = c.var(ddof=1) / len(c), t.var(ddof=1) / len(t)
    se = math.sqrt(vc + vt)
    delta = float(t.mean() - c.mean())
    if se == 0:
        p, half = (1.0 if delta == 0 else 0.0), 0.0
    else:
        df = (vc + vt) ** 2 / ((vc ** 2 / (len(c) - 1) if vc else 0) + (vt ** 2 / (len(t) - 1) if vt else 0))
        p = float(2 * sps.t.sf(abs(delta) / se, df))
        half = float(sps.t.ppf(1 - alpha / 2, df) * se)
    return Comparison(metric, float(c.mean()), float(t.mean()), delta, _relative(delta, c.mean()),
                      delta - half, delta + half, p, len(c), len(t), "welch")


def _relative(delta: float, base: float) -> float:
    return float(delta / base) if base else float("nan")


def bootstrap_ci(control, treatment, resamples: int = 2000, alpha: float = 0.05, seed: int = 0
                 ) -> tuple[float, float]:
    """Percentile bootstrap interval of the difference of means (users resampled within each arm)."""
    c, t = _arrays(control, treatment)
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    for b in range(resamples):
        diffs[b] = t[rng.integers(0, len(t), len(t))].mean() - c[rng.integers(0, len(c), len(c))].mean()
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


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
    xc, xt = (np.asarray(v, np.float64) for v in (pre_control, pre_treatment))
    xc, xt = (v.reshape(len(v), -1) if v.ndim == 1 else v for v in (xc, xt))
    if xc.ndim != 2 or len(xc) != len(c) or len(xt) != len(t) or xc.shape[1] != xt.shape[1]:
        raise ConfigError("CUPED needs the same pre-period values for every user in each arm")
    arm = np.repeat([0, 1], [len(c), len(t)])
    adjust = cuped_fit(np.concatenate([c, t]), np.concatenate([xc, xt]), arm)
    ac, at = c - adjust(xc), t - adjust(xt)
    before = c.var(ddof=1) + t.var(ddof=1)
    after = ac.var(ddof=1) + at.var(ddof=1)
    return ac, at, float(1 - after / before) if before > 0 else 0.0


def cuped_fit(y: np.ndarray, x: np.ndarray, arm: np.ndarray | None = None):
    """The adjustment x -> theta (x - mean x): theta by least squares of y on x, both taken about
    their mean within each arm (`arm`: one label per row; None: one arm); mean x over all rows."""
    arm = np.zeros(len(y), np.int64) if arm is None else np.asarray(arm)
    mean = x.mean(0)
    keep = x.var(0) > 0  # a constant covariate says nothing
    yw, xw = y.astype(np.float64), x[:, keep].astype(np.float64)
    for a in np.unique(arm):
        rows = arm == a
        yw[rows] -= yw[rows].mean()
        xw[rows] -= xw[rows].mean(0)
    theta = np.linalg.lstsq(xw, yw, rcond=None)[0] if keep.any() else np.zeros(0)
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
    y, x = np.asarray(y, np.float64), np.asarray(x, np.float64).reshape(len(y), -1)
    names, row = np.unique(groups, return_inverse=True)
    fold = np.random.default_rng(seed).permutation(len(names))[row] % folds
    adjusted = np.empty_like(y)
    for f in range(folds):
        out = fold == f
        if out.all() or not out.any():
            raise ConfigError(f"need more users than the {folds} folds")
        adjusted[out] = y[out] - cuped_fit(y[~out], x[~out])(x[out])
    return _removed(y - y.mean(), adjusted - adjusted.mean())


def msprt(control, treatment, tau: float | None = None) -> list[float]:
    """Always-valid p-values of the mixture sequential probability ratio test, one per look.

    Johari et al. (KDD 2017 / OR 2022): a normal mixture N(0, tau^2) over the
    difference of means; after each pair of users the likelihood ratio
    Lambda_n is updated and p_n = min(p_{n-1}, 1 / Lambda_n). Stopping the
    first time p_n < alpha keeps the false-positive rate at alpha. Users are
    taken in arrival order in pairs (one per arm); the variance is the pooled
    running estimate.
    """
    c, t = _arrays(control, treatment)
    n = min(len(c), len(t))
    d = t[:n] - c[:n]
    sigma2 = float(np.var(np.concatenate([c[:n], t[:n]]), ddof=1)) * 2  # variance of one paired difference
    if sigma2 <= 0:
        return [1.0] * n
    tau2 = (tau ** 2) if tau else sigma2 / 4  # a mixture about the size of a half-sigma effect
    out, p = [], 1.0
    csum = np.cumsum(d)
    for m in range(1, n + 1):
        mean = csum[m - 1] / m
        v = sigma2 / m
        log_lr = 0.5 * math.log(v / (v + tau2)) + (mean ** 2) * tau2 / (2 * v * (v + tau2))
        p = min(p, math.exp(-log_lr) if log_lr < 700 else 0.0)
        out.append(p)
    return out


def sample_size(sigma: float, mde: float, alpha: float = 0.05, power: float = 0.8, arms: int = 2) -> int:
    """Users in total to detect a difference `mde` of means (per-user sd `sigma`), two-sided.

    arms=2: an A/B test, n per arm = 2 (z_a + z_b)^2 sigma^2 / mde^2.
    arms=1: a one-sample test of a paired outcome (interleaving), n = (z_a + z_b)^2 sigma^2 / mde^2.
    """
    if mde == 0 or sigma < 0:
        raise ConfigError(f"need a non-zero effect and sigma >= 0 (got mde={mde}, sigma={sigma})")
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    per_arm = (2 if arms == 2 else 1) * (z * sigma / mde) ** 2
    return int(math.ceil(per_arm * arms))


def mde(sigma: float, users: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest difference of means an even two-arm test of `users` in total detects at `power`."""
    if users < 4:
        raise ConfigError(f"need at least 4 users (got {users})")
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
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
    symmetric about 0 and the test keeps its level. Returns (mean capped
    difference, its standard deviation over users, two-sided p-value).
    """
    a, b = _arrays(clicks_a, clicks_b)
    if len(a) != len(b):
        raise ConfigError(f"need one A and one B credit per user (got {len(a)} and {len(b)})")
    if not 0 < cap_quantile <= 1:
        raise ConfigError(f"cap_quantile must be in (0, 1] (got {cap_quantile})")
    d = b - a
    if cap_quantile < 1 and d.any():
        cap = float(np.quantile(np.abs(d[d != 0]), cap_quantile))
        d = np.clip(d, -cap, cap)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        return mean, sd, 1.0 if mean == 0 else 0.0
    return mean, sd, float(2 * sps.t.sf(abs(mean) / (sd / math.sqrt(len(d))), len(d) - 1))


def sign_test(wins_a: int, wins_b: int) -> float:
    """Two-sided binomial test of interleaving wins (ties dropped): p-value that A and B are equal."""
    n = wins_a + wins_b
    if n == 0:
        return 1.0
    return float(sps.binomtest(wins_a, n, 0.5).pvalue)


@dataclass
class Verdict:
    decision: str  # "ship", "do not ship", "inconclusive"
    rule: str


def verdict(delta: float, ci_low: float, ci_high: float, p_value: float, alpha: float = 0.05,
            higher_is_better: bool = True) -> Verdict:
    """Ship when the interval excludes zero on the good side; do not ship when it does on the bad side."""
    good = ci_low > 0 if higher_is_better else ci_high < 0
    bad = ci_high < 0 if higher_is_better else ci_low > 0
    shown = f"p={p_value:.3g}, {100 * (1 - alpha):.0f}% CI [{ci_low:.4g}, {ci_high:.4g}]"
    if p_value < alpha and good:
        return Verdict("ship", f"significant improvement at alpha {alpha} ({shown})")
    if p_value < alpha and bad:
        return Verdict("do not ship", f"significant harm at alpha {alpha} ({shown})")
    return Verdict("inconclusive", f"no significant difference at alpha {alpha} ({shown})")
