"""How many users an A/B test and an interleaving need to detect the same improvement at 80% power.

The simulator runs every user four times with the same seeds: all under the
control, all under the treatment (the counterfactual pair gives the true
per-user effect, its size and the per-user spread an A/B test faces, with
and without CUPED), once more under the control with other draws of the
users' luck (the variance two runs of the same users share is the most any
pre-period covariate could remove: CUPED's ceiling), and once interleaved
(the per-user credits an interleaving test faces). The power calculator turns
each into users needed; their ratio is the sensitivity gain of interleaving.

Both users-needed figures are computed from estimated effects, so their ratio
is a ratio of two noise estimates whenever an effect is not really there. The
gain is given as a figure only when the paired A/B effect (a one-sample t-test
of each user's treatment minus control outcome) and the interleaving's test
(the credit test for the credit gain, the sign test for the sign gain) are both
significant at the study's alpha, and point the same way; otherwise the figure
is null and `gain_vs_ab_reason` / `gain_sign_vs_ab_reason` say why ("not
measurable: effect not distinguishable from zero (...)" or "opposite").
A gain that is given carries its (1 - alpha) confidence interval from a bootstrap over users
(`gain_interval`: every user's control, treatment and interleaved figures resampled together). Users
needed go as 1 / effect^2, so an A/B effect that is significant but not by much leaves the gain uncertain
by an order of magnitude: on MovieLens-100K (a trained bundle against its popularity policy, +4.9% plays
at paired p = 0.011) the point gain was 330x and its 95% interval 89x to 5,520x; the goal of 10x is met
with confidence only when the interval's low end is above it.
With `seeds` > 1 it is repeated on other users (seed, seed + 1, ...) and the
users of all seeds are pooled into one more row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError
from edgerec.studies import stats
from edgerec.studies.base import Progress, Study, Table
from edgerec.studies.experiments import (
    InterleaveStudy,
    _beside,
    _reactions_fields,
    _setup,
    check_alpha,
    cuped_covariates,
    interleave_tests,
    shared_credit,
)
from edgerec.studies.simulator import PRE_FEATURES, Arm, SimConfig

FIRST_COVARIATES = 4  # the four raw pre-period figures CUPED used before sessions, watch time and logs
# CUPED as Deng et al. (WSDM 2013) first wrote it: one covariate, the metric itself in the pre-period
ONE_COVARIATE = PRE_FEATURES.index("pre_plays")
GAIN_RESAMPLES = 2000  # bootstrap resamples of the users for the gain's interval


@dataclass
class SensitivityStudy(Study):
    name = "sensitivity"
    control: Arm
    treatment: Arm
    data_dir: Path
    sim: SimConfig = field(default_factory=SimConfig)
    metric: str = "plays"
    alpha: float = 0.05
    source: str = "auto"
    seeds: int = 1

    def measure(self, progress: Progress) -> dict:
        check_alpha(self.alpha)  # before the simulation, not after it
        stats.count_arg("seeds", self.seeds, 1)
        runs = [self.simulate(replace(self.sim, seed=self.sim.seed + i), progress) for i in range(self.seeds)]
        users = [run.pop("reactions") for run in runs][0]  # the same data set, so the same users, every seed
        rows = [{"seed": self.sim.seed + i, **self.figures(run)} for i, run in enumerate(runs)]
        record = {"metric": self.metric, "alpha": self.alpha, **users, "seeds": rows}
        if len(runs) > 1:
            pooled = {k: np.concatenate([r[k] for r in runs]) for k in runs[0]}
            record["pooled"] = {"seed": "pooled", **self.figures(pooled)}
        return {**record, **(record.get("pooled") or rows[0])}

    def simulate(self, sim: SimConfig, progress: Progress) -> dict[str, np.ndarray]:
        """Per-user arrays of one seed: outcome under each arm and a replicate, covariates, credits."""
        _, simulator = _setup(self.data_dir, sim, self.source, self.metric)
        out = {"reactions": _reactions_fields(simulator)}
        for key, arm, replicate in (("control", self.control, 0), ("treatment", self.treatment, 0),
                                    ("replicate", self.control, 1)):
            progress(f"seed {sim.seed}: all users under {arm.name}" + (" (other draws)" if replicate else ""), {})
            simulator.cfg = replace(sim, replicate=replicate)
            # the pre-period under the control for both, as in the A/B test
            log = simulator.run([Arm("pre", self.control.bundle, self.control.policy),
                                 Arm("only", arm.bundle, arm.policy)], lambda _u: "only")
            out[key] = log.period(self.metric)
            if key == "control":
                out["pre"] = log.pre_device
        simulator.cfg = sim
        progress(f"seed {sim.seed}: interleaved", {})
        il = InterleaveStudy(self.control, self.treatment, self.data_dir, sim, self.alpha, self.source)
        log = il.run_log(simulator)
        out["clicks_a"], out["clicks_b"] = log.period("clicks_a"), log.period("clicks_b")
        out["shared_a"], out["shared_b"] = shared_credit(log)
        out["user"] = np.array([f"{sim.seed}/{u}" for u in log.users])
        return out

    def figures(self, run: dict[str, np.ndarray]) -> dict:
        ya, yb, pre = run["control"], run["treatment"], run["pre"]
        effect = float(yb.mean() - ya.mean())
        sigma = float(np.sqrt((ya.var(ddof=1) + yb.var(ddof=1)) / 2))
        y = np.concatenate([ya - ya.mean(), yb - yb.mean()])  # each arm about its own mean
        users = np.concatenate([run["user"], run["user"]])
        cuped = {}
        for name, x in (("one", pre[:, ONE_COVARIATE]), ("first", pre[:, :FIRST_COVARIATES]),
                        ("all", cuped_covariates(pre))):
            in_sample = stats.cuped(ya, yb, x, x)[2]
            held = stats.cuped_holdout(y, np.concatenate([x, x]), users)
            # users needed from the held-out share: what a new experiment can count on
            left = sigma * np.sqrt(max(1 - held, 0.0))  # all of it held out: no sd left to plan with
            n = stats.sample_size(left, effect, self.alpha) if effect and left > 0 else None
            cuped[name] = (in_sample, held, n)
        shared = float(np.cov(ya, run["replicate"])[0, 1] / np.sqrt(ya.var(ddof=1) * run["replicate"].var(ddof=1)))
        il = interleave_tests(run["clicks_a"], run["clicks_b"], self.alpha)
        ab_n = stats.sample_size(sigma, effect, self.alpha) if effect and sigma > 0 else None
        # every user ran under both arms with the same draws: the A/B effect's test is the paired one, a
        # one-sample t-test of each user's difference (the credit test without its cap)
        ab_p = stats.credit_test(ya, yb, cap_quantile=1.0)[2]
        agrees = {"users_needed_80pct": _same_direction(effect, il["credit_mean"]),
                  "users_needed_80pct_sign": _same_direction(effect, il["preference_mean"])}
        tested = {"users_needed_80pct": ("credit", il["p_value"]), "users_needed_80pct_sign": ("sign", il["p_value_sign"])}
        gain, why, interval = {}, {}, {}
        same = np.array([u.split("/", 1)[-1] for u in run["user"]])  # a user drawn by several seeds is one user
        for k, (test, p) in tested.items():
            gain[k], why[k] = _gain_figure(ab_n, il[k], ab_p, test, p, agrees[k], self.alpha)
            # only a gain that is given has an interval: with an effect not there, both ends are noise too
            interval[k] = (gain_interval(ya, yb, run["clicks_a"], run["clicks_b"], test, self.alpha, users=same)
                           if gain[k] is not None else None)
        return {
            "users_simulated": len(ya), "true_effect": effect,
            "relative_effect": effect / float(ya.mean()) if ya.mean() else None, "sigma": sigma,
            "cuped_one_in_sample": cuped["one"][0], "cuped_one_held_out": cuped["one"][1],
            "ab_cuped_one_users_needed": cuped["one"][2],
            "cuped_first_in_sample": cuped["first"][0], "cuped_first_held_out": cuped["first"][1],
            "cuped_in_sample": cuped["all"][0], "cuped_held_out": cuped["all"][1], "cuped_ceiling": shared,
            "ab_users_needed": ab_n, "ab_cuped_first_users_needed": cuped["first"][2],
            "ab_cuped_users_needed": cuped["all"][2],
            "interleaving_sign_users_needed": il["users_needed_80pct_sign"],
            "interleaving_users_needed": il["users_needed_80pct"],
            "gain_sign_vs_ab": gain["users_needed_80pct_sign"], "gain_vs_ab": gain["users_needed_80pct"],
            "gain_sign_vs_ab_reason": why["users_needed_80pct_sign"], "gain_vs_ab_reason": why["users_needed_80pct"],
            "gain_sign_vs_ab_ci": interval["users_needed_80pct_sign"], "gain_vs_ab_ci": interval["users_needed_80pct"],
            "ab_effect_p_value": ab_p, "interleaving_credit_p_value": il["p_value"],
            "interleaving_sign_p_value": il["p_value_sign"],
            "interleaving_agrees": agrees["users_needed_80pct"], "interleaving_sign_agrees": agrees["users_needed_80pct_sign"],
            "interleaving_credit_mean": il["credit_mean"], "interleaving_credit_sd": il["credit_sd"],
            "interleaving_preference_mean": il["preference_mean"], "interleaving_preference_sd": il["preference_sd"],
            # clicks on items both lists held: credited by where the lists rank them, not by preference
            "interleaving_shared_click_share": _share(run["shared_a"] + run["shared_b"], run["clicks_a"] + run["clicks_b"]),
            "interleaving_unique_clicks": [float((run["clicks_a"] - run["shared_a"]).sum()),
                                           float((run["clicks_b"] - run["shared_b"]).sum())],
        }

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        rows = [*record["seeds"], *([record["pooled"]] if "pooled" in record else [])]
        alpha = record.get("alpha", 0.05)
        needed = [{"seed": r["seed"], "users": r["users_simulated"], "true effect": r["relative_effect"],
                   "A/B": r["ab_users_needed"], "A/B+CUPED (plays alone)": r.get("ab_cuped_one_users_needed"),
                   "A/B+CUPED (4 raw figures)": r["ab_cuped_first_users_needed"],
                   "A/B+CUPED (6 logs)": r["ab_cuped_users_needed"], "interleaving (sign)": r["interleaving_sign_users_needed"],
                   "interleaving (credit)": r["interleaving_users_needed"],
                   "A/B effect p": r.get("ab_effect_p_value"),
                   "gain (sign)": _gain(r, "gain_sign_vs_ab", "interleaving_sign_agrees", "sign"),
                   f"gain (sign) {(1 - alpha) * 100:g}% CI": _interval(r.get("gain_sign_vs_ab_ci")),
                   "gain (credit)": _gain(r, "gain_vs_ab", "interleaving_agrees", "credit"),
                   f"gain (credit) {(1 - alpha) * 100:g}% CI": _interval(r.get("gain_vs_ab_ci")),
                   "clicks on shared items": r.get("interleaving_shared_click_share")} for r in rows]
        cuped = [{"seed": r["seed"], "plays alone in sample": r.get("cuped_one_in_sample"),
                  "plays alone held out": r.get("cuped_one_held_out"), "4 raw figures in sample": r["cuped_first_in_sample"],
                  "4 raw held out": r["cuped_first_held_out"], "6 logs in sample": r["cuped_in_sample"],
                  "6 logs held out": r["cuped_held_out"], "ceiling (shared between runs)": r["cuped_ceiling"]}
                 for r in rows]
        return [Table(_beside(f"users needed at 80% power on {record['metric']} per user (CUPED: held-out share; "
                              f"gain: A/B's users over interleaving's, only where both effects are significant at "
                              f"alpha {alpha:g} and point the same way, with its bootstrap interval over users; not measurable: an effect not "
                              "distinguishable from zero, its p-values beside)", record), needed),
                Table(f"share of the variance of {record['metric']} per user CUPED removes", cuped)]


def _same_direction(effect: float, interleaved: float) -> bool:
    """Whether the interleaving's mean credit favours the arm the A/B metric's true effect favours."""
    return bool(effect and interleaved and np.sign(effect) == np.sign(interleaved))


def _share(part: np.ndarray, whole: np.ndarray) -> float | None:
    return float(part.sum() / whole.sum()) if whole.sum() else None


def _gain_figure(ab_n, il_n, ab_p: float, test: str, p: float, agrees: bool, alpha: float):
    """(gain, None) or (None, why not). Users needed are planned from the effects seen: when either is not
    distinguishable from zero, both are noise and so is their ratio (364x on MovieLens-100K, from a -0.5%
    effect and a credit test at p = 0.44), so no figure is given."""
    if not (ab_p < alpha and p < alpha):
        return None, (f"not measurable: effect not distinguishable from zero (A/B paired p={ab_p:.3g}, "
                      f"interleaving {test} test p={p:.3g}, alpha {alpha:g})")
    if not agrees:
        return None, "opposite: the interleaving favours the other arm than the A/B effect"
    if not (ab_n and il_n):
        return None, "not measurable: no spread to plan a sample with"
    return ab_n / il_n, None


def gain_interval(control, treatment, clicks_a, clicks_b, test: str = "credit", alpha: float = 0.05,
                  resamples: int = GAIN_RESAMPLES, seed: int = 0, users=None) -> list[float | None]:
    """(1 - alpha) percentile interval of the gain (A/B's users needed over the interleaving's), from a
    bootstrap over users: each resample takes whole users (their control and treatment outcomes and their
    interleaved credits together) and plans both tests again. Users needed are z^2 (sd / effect)^2 times 4
    for A/B and times 1 for interleaving, so the gain is 4 (sigma / effect)^2 (credit mean / credit sd)^2
    and z cancels; each resample's users needed are rounded up as the point figure's are (stats.sample_size),
    so the point gain lies in its interval. A resample in which either effect points the other way than in
    the whole sample gives no gain (0): the interval's low end then says so rather than a ratio of opposite
    verdicts; one in which every user's interleaved figure is the same, the right way, is the strongest
    evidence, an unbounded gain (a high end of None). `users` (one key per row): rows of one user (the same
    simulated user under several seeds) are resampled together, else each row is a user."""
    ya, yb, ca, cb = (np.asarray(v, np.float64) for v in (control, treatment, clicks_a, clicks_b))
    n = len(ya)
    if not len(yb) == len(ca) == len(cb) == n or n < 2:
        raise ConfigError(f"the gain's interval needs one control, treatment and A and B credit per user, two users "
                          f"or more (got {len(ya)}, {len(yb)}, {len(ca)}, {len(cb)})")
    if test not in ("credit", "sign"):
        raise ConfigError(f"test must be 'credit' or 'sign' (got {test!r})")
    alpha = check_alpha(alpha)
    stats.count_arg("resamples", resamples, 2)

    def interleaved(a, b):
        if test == "credit":
            mean, sd, _ = stats.credit_test(a, b)
            return mean, sd
        prefers = np.sign(b - a)
        return float(prefers.mean()), float(prefers.std(ddof=1))

    keys = np.arange(n) if users is None else np.asarray(users)
    if len(keys) != n:
        raise ConfigError(f"users must give one key per row ({n}), got {len(keys)}")
    _, code = np.unique(keys, return_inverse=True)
    rows_of = np.split(np.argsort(code, kind="stable"), np.cumsum(np.bincount(code))[:-1])
    direction = (np.sign(yb.mean() - ya.mean()), np.sign(interleaved(ca, cb)[0]))
    rng = np.random.default_rng(seed)
    gains = np.empty(resamples)
    for i in range(resamples):
        pick = np.concatenate([rows_of[u] for u in rng.integers(0, len(rows_of), len(rows_of))])
        a, b = ya[pick], yb[pick]
        effect, sigma = b.mean() - a.mean(), np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
        mean, sd = interleaved(ca[pick], cb[pick])
        if np.sign(effect) != direction[0] or np.sign(mean) != direction[1] or not sigma > 0:
            gains[i] = 0.0  # the other way (or no A/B spread to plan with): no gain in this resample
        elif not sd > 0:
            gains[i] = np.inf  # every user the same, the right way: interleaving cannot be beaten
        else:
            gains[i] = (stats.sample_size(sigma, effect, alpha) / stats.sample_size(sd, mean, alpha, arms=1))
    low, high = np.quantile(gains, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")  # resampled values: no inf - inf
    return [float(low), float(high) if np.isfinite(high) else None]


def _interval(ci) -> str | None:
    return None if not ci else f"{ci[0]:,.3g} to " + ("unbounded" if ci[1] is None else f"{ci[1]:,.3g}")


def _gain(row: dict, key: str, agrees: str, test: str):
    """The gain for the table, or in short why there is none (the record's `..._reason` says it in full):
    `not measurable (A/B p=..., credit p=...)`, `opposite`. Records from before the significance check
    have no reason and show their gain (or `opposite`)."""
    why = row.get(f"{key}_reason") if row.get(key) is None else None
    if why and why.startswith("not measurable: effect"):
        return (f"not measurable (A/B p={row['ab_effect_p_value']:.2g}, "
                f"{test} p={row[f'interleaving_{test}_p_value']:.2g})")
    if why:
        return "opposite" if why.startswith("opposite") else why
    return row[key] if row.get(agrees, True) else "opposite"
