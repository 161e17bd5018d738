"""Experiment studies on the user simulator: simulate, A/B, A/A, interleaving, off-policy evaluation.

Each is a `Study`: the simulator drives the real runtime, stats.py judges,
and the record holds the figures, the verdict and the rule behind it. Arm
assignment uses the device's keyed hash (runtime/experiment.py); in the
simulation each user's device key is derived from the seed and the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError
from edgerec.runtime import Recommender
from edgerec.runtime.experiment import EXPLORE_STAGE, assign, explore
from edgerec.runtime.interleave import InterleaveStage, credit, other_recommender, team_draft
from edgerec.runtime.pipeline import Stage
from edgerec.studies import stats
from edgerec.studies.base import Progress, Study, Table, pyplot, save_figure
from edgerec.studies.devices import open_device
from edgerec.studies.online_metrics import METRICS, online_metrics, popularity_shares
from edgerec.studies.ope import (
    GOAL,
    LoggedList,
    between_user_share,
    cluster_standard_error,
    days_for_goal,
    estimates,
    expected_under_logger,
    list_terms,
    lists_for_goal,
    seed_summary,
    standard_errors,
    thin_support,
)
from edgerec.studies.reactions import examination, reactions_for
from edgerec.studies.simulator import Arm, SimConfig, Simulator

ARMS = ("control", "treatment")


def device_key(seed: int, user: str) -> str:
    """A simulated device's secret key (a real device draws a random one at install)."""
    return f"sim-device-{seed}-{user}"


def _setup(data_dir: Path, sim: SimConfig, source: str, metric: str | None = None):
    """The data set and its simulator; refuses to test `metric` when the click model cannot simulate it."""
    dataset = load_dataset(data_dir)
    reactions = reactions_for(dataset, source)
    if metric is not None and metric in reactions.unmeasured:
        raise ConfigError(f"the log has nothing to simulate {metric} from (a ratings log holds no finish "
                          "events and its items no durations), so every user's figure would be made up "
                          "and the test would compare assumptions, not arms; test plays, lists or active instead")
    return dataset, Simulator(dataset, reactions, sim)


def reactions_description(reactions) -> str:
    """Who the simulated users are, in words: every record carries it beside its figures and verdicts.

    `reactions` is a Reactions object or its class name (what records before this field hold). On imported
    data the users are a click model fitted on the log: a verdict on them is a verdict on that model."""
    name = reactions if isinstance(reactions, str) else type(reactions).__name__
    if name == "FittedReactions":
        return ("users simulated by a click model fitted on the log (item popularity^0.5 x the user's genre "
                "affinity, skip and finish rates per item from the log), not real users")
    if name == "SynthReactions":
        return "users simulated by the synthetic world's ground-truth user model (data/synth.py)"
    return f"users simulated by {name}"


def _reactions_fields(simulator) -> dict:
    """The record's `reactions` (the class name, as before) and `reactions_description` (its words)."""
    return {"reactions": type(simulator.reactions).__name__,
            "reactions_description": reactions_description(simulator.reactions)}


def users_line(record: dict) -> str | None:
    """The record's description of its simulated users (from the class name in records without one)."""
    if record.get("reactions_description"):
        return record["reactions_description"]
    return reactions_description(record["reactions"]) if record.get("reactions") else None


def _beside(title: str, record: dict) -> str:
    """A table's title with the record's simulated users named beside it."""
    line = users_line(record)
    return f"{title}; {line}" if line else title


def check_alpha(alpha) -> float:
    """alpha strictly between 0 and 1, refused before any simulation (1.5 made every A/A split a hit)."""
    return stats.share_arg("alpha", alpha)


# the online metrics (online_metrics.METRICS) that come from each simulated figure
FROM_FIGURE = {"finishes": ("completion",), "watch_s": ("watch_min_per_day", "minutes_per_session")}


def unmeasured_metrics(reactions) -> list[str]:
    """Online metrics the click model makes up rather than measures (shown as n/a in the tables)."""
    return [m for figure in reactions.unmeasured for m in FROM_FIGURE.get(figure, ())]


def cuped_covariates(pre: np.ndarray) -> np.ndarray:
    """CUPED's covariates from the device's pre-period figures (simulator.PRE_FEATURES): log(1 + x) of
    each. Activity is lognormal across users, so the raw figures let the few heaviest users steer the
    fit; on 300 users the logarithms remove more variance from users the fit has not seen (docs/experiments.md)."""
    pre = np.asarray(pre, np.float64)
    return np.log1p(np.maximum(pre.reshape(len(pre), -1), 0.0))


def _metric_rows(metrics: dict, unmeasured=()) -> list[dict]:
    return [{"arm": arm, "users": m["users"], **{k: "n/a" if k in unmeasured else m["overall"][k] for k in METRICS}}
            for arm, m in metrics.items()]


def _draw_days(record: dict, path: Path, metric: str = "CTR") -> Path | None:
    """A metric per day and arm, with its 95% band over users."""
    plt = pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, series in record["daily_bands"].items():
        days = [s["day"] for s in series]
        mean = np.array([s["mean"] for s in series])
        half = np.array([s["half"] for s in series])
        ax.plot(days, mean, marker="o", label=arm)
        ax.fill_between(days, mean - half, mean + half, alpha=0.2)
    ax.set_xlabel("day")
    ax.set_ylabel(f"{record.get('band_metric', metric)} per active user (95% band)")
    ax.legend()
    return save_figure(fig, path, dpi=100)


def _daily_bands(log, field_name: str = "plays") -> dict:
    """Per arm and day: mean of `field_name` over the users active that day, and its 95% half-width."""
    arms = np.array(log.arms)
    out = {}
    for arm in sorted(set(log.arms)):
        vals, active = log.values[field_name][arms == arm], log.values["active"][arms == arm]
        series = []
        for d, day in enumerate(log.days):
            if day < 0:
                continue
            x = vals[active[:, d] > 0, d]
            half = float(1.96 * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0
            series.append({"day": int(day), "mean": float(x.mean()) if len(x) else 0.0, "half": half})
        out[arm] = series
    return out


@dataclass
class SimulateStudy(Study):
    """One bundle served to simulated users: online metrics per day and overall."""

    name = "simulate"
    draws = True
    bundle: Path
    data_dir: Path
    sim: SimConfig = field(default_factory=SimConfig)
    policy: dict | None = None
    source: str = "auto"

    def measure(self, progress: Progress) -> dict:
        dataset, simulator = _setup(self.data_dir, self.sim, self.source)
        progress(f"simulating {len(simulator.user_codes)} users for {self.sim.days} days", {})
        log = simulator.run([Arm("bundle", self.bundle, self.policy)], lambda _u: "bundle")
        unmeasured = unmeasured_metrics(simulator.reactions)
        metrics = online_metrics(log, popularity_shares(dataset), unmeasured)
        return {"users": len(log.users), "days": self.sim.days, **_reactions_fields(simulator),
                "metrics": metrics, "daily_bands": _daily_bands(log), "band_metric": "plays",
                "unmeasured": unmeasured}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        days, unmeasured = record["metrics"]["bundle"]["days"], record.get("unmeasured", ())
        return [Table(f"online metrics, {record['users']} {users_line(record) or 'simulated users'}",
                      _metric_rows(record["metrics"], unmeasured)),
                Table("per day", [{k: "n/a" if k in unmeasured else d[k] for k in ("day", *METRICS)} for d in days])]

    @classmethod
    def draw(cls, record: dict, path: Path) -> Path | None:
        return _draw_days(record, path)


@dataclass
class ABStudy(Study):
    """A/B test of two arms (bundles or policies): Welch, bootstrap, CUPED, mSPRT, MDE, verdict."""

    name = "ab"
    draws = True
    control: Arm
    treatment: Arm
    data_dir: Path
    sim: SimConfig = field(default_factory=SimConfig)
    metric: str = "plays"
    alpha: float = 0.05
    experiment: str = "edgerec-ab"
    source: str = "auto"
    report_epsilon: float | None = None  # also test the figures the devices would report at this epsilon

    def measure(self, progress: Progress) -> dict:
        from edgerec.studies.device_reports import private_analysis  # imports this module

        check_alpha(self.alpha)
        dataset, simulator = _setup(self.data_dir, self.sim, self.source, self.metric)
        arms = [Arm(ARMS[0], self.control.bundle, self.control.policy),
                Arm(ARMS[1], self.treatment.bundle, self.treatment.policy)]
        progress(f"A/B on {len(simulator.user_codes)} simulated users", {})
        log = simulator.run(arms, lambda u: assign(device_key(self.sim.seed, u), self.experiment, ARMS))
        unmeasured = unmeasured_metrics(simulator.reactions)
        private = {} if self.report_epsilon is None else {
            "private": private_analysis(log, self.metric, self.report_epsilon, self.alpha, self.sim.seed)}
        return {**ab_analysis(log, self.metric, self.alpha, self.sim.seed), **private,
                "metrics": online_metrics(log, popularity_shares(dataset), unmeasured),
                "daily_bands": _daily_bands(log), "band_metric": "plays",
                **_reactions_fields(simulator), "unmeasured": unmeasured}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        tests = [{"test": k, **{c: v[c] for c in ("delta", "relative", "ci_low", "ci_high", "p_value")}}
                 for k, v in record["tests"].items()]
        verdict = record["verdict"]
        private = [] if "private" not in record else [Table(
            f"the same from the devices' private reports (epsilon {record['private']['epsilon']:g})", [{
                **{c: record["private"]["welch"][c] for c in ("delta", "ci_low", "ci_high", "p_value")},
                **{c: record["private"][c] for c in ("bound", "noise_share_of_variance", "users_needed_x")},
                "verdict": record["private"]["verdict"]["decision"]}])]
        return [Table("online metrics by arm", _metric_rows(record["metrics"], record.get("unmeasured", ()))),
                Table(f"treatment - control on {record['metric']} per user", tests),
                Table("power", [record["power"]]), *private,
                Table(_beside(f"verdict: {verdict['decision']}", record), [{"rule": verdict["rule"]}])]

    @classmethod
    def draw(cls, record: dict, path: Path) -> Path | None:
        return _draw_days(record, path)


def ab_analysis(log, metric: str, alpha: float, seed: int) -> dict:
    """The tests of an A/B log on a per-user metric (experiment-period sum); CUPED's covariates are what
    each user's device history held before the experiment (cuped_covariates of simulator.PRE_FEATURES)."""
    arms = np.array(log.arms)
    y, x = log.period(metric), cuped_covariates(log.pre_device)
    c, t = arms == ARMS[0], arms == ARMS[1]
    plain = stats.welch(y[c], y[t], metric, alpha)
    boot = stats.bootstrap_test(y[c], y[t], metric, seed=seed, alpha=alpha)  # its own p, from its interval
    ac, at, reduction = stats.cuped(y[c], y[t], x[c], x[t])
    adjusted = stats.cuped_test(y[c], y[t], x[c], x[t], metric, alpha)
    dropped = stats.collinear_covariates(x[c], x[t])  # they separate the arms: the arm's effect would hide in them
    order = np.argsort([u for u in log.users])  # arrival order: by user id
    seq = stats.msprt(y[order][c[order]], y[order][t[order]])
    sigma = float(np.sqrt((ac.var(ddof=1) + at.var(ddof=1)) / 2))
    decided = stats.verdict(adjusted.delta, adjusted.ci_low, adjusted.ci_high, adjusted.p_value, alpha)
    if y[c].var() == 0 or y[t].var() == 0:  # identical figures in an arm: users vary, and noised reports do
        decided = stats.Verdict("inconclusive", "an arm's figures do not vary, so there is nothing to test a "
                                "difference against (too few users, or reports not noised as they say)")
    return {
        "metric": metric, "users": {a: int((arms == a).sum()) for a in ARMS},
        "tests": {"welch": plain.to_dict(), "cuped": adjusted.to_dict(),
                  "bootstrap": boot.to_dict()},
        "cuped_variance_reduction": reduction, "cuped_dropped_covariates": dropped,
        "msprt": {"final_p": seq[-1] if seq else 1.0, "stopped_at_pair": next(
            (i + 1 for i, p in enumerate(seq) if p < alpha), None)},
        "power": {"sigma_cuped": sigma, "users": len(y),
                  "mde_at_80pct": stats.mde(sigma, len(y), alpha) if len(y) >= 4 else None},
        "verdict": {"decision": decided.decision, "rule": "CUPED (the arm's coefficient of y ~ arm + pre-period, "
                    "robust errors" + (f"; pre-period column(s) {dropped} left out: they do not vary within the arms, "
                                       "so they cannot be told from the arm's effect" if dropped else "")
                    + "): " + decided.rule},
    }


@dataclass
class AAStudy(Study):
    """The test of the test: A/A experiments by re-randomising one simulated log under new hash keys.

    The runtime is run once (every user on the same arm); each experiment then
    splits the users by the device hash under another experiment name and
    runs Welch's t-test, so a few hundred experiments cost one simulation.
    """

    name = "aa"
    bundle: Path
    data_dir: Path
    sim: SimConfig = field(default_factory=SimConfig)
    experiments: int = 200
    metric: str = "plays"
    alpha: float = 0.05
    source: str = "auto"

    def measure(self, progress: Progress) -> dict:
        check_alpha(self.alpha)
        stats.count_arg("experiments", self.experiments, 1)
        _, simulator = _setup(self.data_dir, self.sim, self.source, self.metric)
        log = simulator.run([Arm("all", self.bundle)], lambda _u: "all")
        return {**aa_rates(log.users, log.period(self.metric), log.pre_device, self.experiments, self.alpha,
                           self.sim.seed), **_reactions_fields(simulator)}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        row = {k: v for k, v in record.items() if k not in ("reactions", "reactions_description")}
        return [Table(_beside("A/A false-positive rates", record), [row])]


def aa_rates(users: list[str], y: np.ndarray, pre: np.ndarray, experiments: int, alpha: float, seed: int) -> dict:
    """Welch and CUPED (on cuped_covariates(pre)) over A/A re-randomisations of one log."""
    alpha, experiments = check_alpha(alpha), stats.count_arg("experiments", experiments, 1)
    x = cuped_covariates(pre)
    hits = {"welch": 0, "cuped": 0}
    p_values = []
    for e in range(experiments):
        arms = np.array([assign(device_key(seed, u), f"aa-{e}", ARMS) for u in users])
        c, t = arms == ARMS[0], arms == ARMS[1]
        p = stats.welch(y[c], y[t]).p_value
        p_values.append(p)
        hits["welch"] += p < alpha
        hits["cuped"] += stats.cuped_test(y[c], y[t], x[c], x[t]).p_value < alpha
    return {"experiments": experiments, "users": len(users), "alpha": alpha,
            "false_positive_rate": hits["welch"] / experiments,
            "false_positive_rate_cuped": hits["cuped"] / experiments,
            "p_value_deciles": np.histogram(p_values, bins=10, range=(0, 1))[0].tolist()}


@dataclass
class InterleaveStudy(Study):
    """Team-draft interleaving of two arms on the device; the credit test (and the sign test) over users."""

    name = "interleave"
    control: Arm  # team A
    treatment: Arm  # team B
    data_dir: Path
    sim: SimConfig = field(default_factory=SimConfig)
    alpha: float = 0.05
    source: str = "auto"

    def measure(self, progress: Progress) -> dict:
        check_alpha(self.alpha)
        _, simulator = _setup(self.data_dir, self.sim, self.source)
        progress(f"interleaving for {len(simulator.user_codes)} simulated users", {})
        return {**interleave_analysis(self.run_log(simulator), self.alpha), **_reactions_fields(simulator)}

    def run_log(self, simulator: Simulator):
        """The simulated log of every user served the interleaved list."""
        same_bundle = Path(self.control.bundle) == Path(self.treatment.bundle)
        other = None if same_bundle else open_device(self.treatment.bundle)
        shared: list[tuple[bool, ...]] = []
        try:
            log = simulator.run([Arm("interleaved", self.control.bundle, self.control.policy)],
                                lambda _u: "interleaved", self._lister(other, shared, simulator),
                                mirrors=[other] if other else [])
        finally:
            if other is not None:
                other.close()
        log.interleaved_shared = shared
        return log

    def _lister(self, other: Recommender | None, shared: list, simulator: Simulator):
        """Lists for the simulator; each non-empty list's shared flags go to `shared`, in serving order."""
        stages: dict[int, object] = {}
        codes = dict(zip(simulator.user_names, simulator.user_codes.tolist()))
        cfg, served = simulator.cfg, {}  # served: id(rec) -> the user its team coins are seeded for

        def lister(rec, user, k, context):
            if id(rec) not in stages:  # the interleave stage goes into the control's pipeline once
                b = other or rec
                policy = Arm("b", self.treatment.bundle, self.treatment.policy).make_policy(b)
                stage = InterleaveStage(other_recommender(b, policy), seed=self.sim.seed)
                rec.pipeline.insert_after("explain", Stage("interleave", stage))
                stages[id(rec)] = stage
            if served.get(id(rec)) != user:  # the user's own coins, by (seed, user, replicate) as the simulator's
                # draws: one generator for all made a user's teams depend on who was simulated before
                stages[id(rec)].rng = np.random.default_rng([cfg.seed, codes[user], cfg.replicate, 0x1E])
                served[id(rec)] = user
            shown = rec.recommend(user, k, context=context,
                                  policy=Arm("a", self.control.bundle, self.control.policy).make_policy(rec))
            if shown:
                shared.append(tuple(bool(r.meta["shared"]) for r in shown))
            return [r.item_id for r in shown], [r.meta["team"] for r in shown]
        return lister

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        verdict = record["verdict"]
        return [Table("interleaving (A = control, B = treatment)",
                      [{k: record.get(k) for k in ("users", "wins_a", "wins_b", "ties", "clicks_a", "clicks_b",
                                                   "shared_clicks_a", "shared_clicks_b")}]),
                Table("tests (users needed at 80% power for the effect seen)",
                      [{"test": "credit (t-test of capped B - A clicks per user)", "p_value": record["p_value"],
                        "users_needed_80pct": record["users_needed_80pct"]},
                       {"test": "sign (per-user wins)", "p_value": record["p_value_sign"],
                        "users_needed_80pct": record["users_needed_80pct_sign"]}]),
                Table(_beside(f"verdict: {verdict['decision']}", record), [{"rule": verdict["rule"]}])]


def interleave_analysis(log, alpha: float) -> dict:
    """The tests of an interleaving log over the experiment period (interleave_tests), and how much of
    the credit went to items both lists hold (shared_credit)."""
    shared_a, shared_b = shared_credit(log)
    return {**interleave_tests(log.period("clicks_a"), log.period("clicks_b"), alpha),
            "shared_clicks_a": int(shared_a.sum()), "shared_clicks_b": int(shared_b.sum())}


def shared_credit(log) -> tuple[np.ndarray, np.ndarray]:
    """Per user, the experiment period's clicks on items both teams' lists held, credited to A and to B.

    Team draft gives such an item to whichever team reaches it first, so these clicks say where the
    two lists rank it, not which list users prefer: when they carry most of the credit, the test sees
    the lists' difference through a lot of noise (docs/experiments.md: the demo's model pair)."""
    if len(log.interleaved_shared) != len(log.interleaved):
        raise ConfigError("the interleaving log does not say which items both lists held; run it with "
                          "InterleaveStudy.run_log")
    a, b = np.zeros(len(log.users)), np.zeros(len(log.users))
    for (user, day, clicked, teams), shared in zip(log.interleaved, log.interleaved_shared):
        for p in clicked:
            if day >= 0 and shared[p]:
                (a if teams[p] == "A" else b)[user] += 1
    return a, b


def interleave_tests(a: np.ndarray, b: np.ndarray, alpha: float) -> dict:
    """Per-user credits of team A and B: the credit test decides (stats.credit_test, every user's
    B - A clicks, capped at the 90th percentile of the non-zero ones); the sign test (the team with more
    credited clicks wins the user) is kept beside it."""
    alpha = check_alpha(alpha)
    prefers = np.sign(b - a)  # +1: the user preferred the treatment (B)
    wins_a, wins_b = int((prefers < 0).sum()), int((prefers > 0).sum())
    p_sign = stats.sign_test(wins_a, wins_b)
    mean, sd = float(prefers.mean()), float(prefers.std(ddof=1))
    credit_mean, credit_sd, p = stats.credit_test(a, b)
    if p < alpha:
        decision = "ship" if credit_mean > 0 else "do not ship"
    else:
        decision = "inconclusive"
    test = ("t-test of each user's clicks for B minus clicks for A (capped at the 90th percentile)" if credit_sd > 0
            else "every user's capped clicks for B minus clicks for A are the same, so no t-test: the exact sign "
                 "test of those users")
    rule = (f"{test}: mean {credit_mean:+.3g} per user, "
            f"p={p:.3g} against alpha {alpha} (sign test: B won {wins_b} users, A {wins_a}, p={p_sign:.3g})")
    return {"users": len(prefers), "wins_a": wins_a, "wins_b": wins_b, "ties": int((prefers == 0).sum()),
            "clicks_a": int(a.sum()), "clicks_b": int(b.sum()), "p_value": p, "p_value_sign": p_sign,
            "credit_mean": credit_mean, "credit_sd": credit_sd,
            # no spread (every user the same): no sd to plan a sample with
            "users_needed_80pct": stats.sample_size(credit_sd, credit_mean, alpha, arms=1)
            if credit_mean and credit_sd > 0 else None,
            "preference_mean": mean, "preference_sd": sd,
            "users_needed_80pct_sign": stats.sample_size(sd, mean, alpha, arms=1) if mean and sd > 0 else None,
            "verdict": {"decision": decision, "rule": rule}}


@dataclass
class InterleaveAAStudy(Study):
    """The test of interleaving's tests: one bundle interleaved with itself, its team coins redrawn.

    Both teams hold the same list, so team draft shows the same items whatever
    its coins say and the users' clicks do not depend on them: each A/A
    experiment redraws every list's teams with the runtime's own team_draft
    under a new seed and credits the logged clicks again. A team that is
    favoured (say A always drafting first, under position bias) shows as a
    false-positive rate far above alpha.
    """

    name = "interleave-aa"
    bundle: Path
    data_dir: Path
    sim: SimConfig = field(default_factory=lambda: SimConfig(pre_days=0))
    experiments: int = 200
    alpha: float = 0.05
    source: str = "auto"
    policy: dict | None = None

    def measure(self, progress: Progress) -> dict:
        check_alpha(self.alpha)
        stats.count_arg("experiments", self.experiments, 1)
        _, simulator = _setup(self.data_dir, self.sim, self.source)
        arm = Arm("a", self.bundle, self.policy)
        progress(f"interleaving the bundle with itself for {len(simulator.user_codes)} simulated users", {})
        log = InterleaveStudy(arm, arm, self.data_dir, self.sim, self.alpha, self.source).run_log(simulator)
        return {**interleave_aa_rates(log, self.experiments, self.alpha, self.sim.seed),
                "observed": interleave_analysis(log, self.alpha)["verdict"], **_reactions_fields(simulator)}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        keys = ("experiments", "users", "lists", "alpha", "false_positive_rate", "false_positive_rate_sign",
                "mean_credit_b_minus_a")
        return [Table(_beside("A/A interleaving false-positive rates", record), [{k: record[k] for k in keys}])]


def interleave_aa_rates(log, experiments: int, alpha: float, seed: int) -> dict:
    """Redraw the teams of every logged list (identical lists on both sides) and test again."""
    alpha, experiments = check_alpha(alpha), stats.count_arg("experiments", experiments, 1)
    lists = [(u, clicked, len(teams)) for u, day, clicked, teams in log.interleaved if day >= 0]
    hits = {"credit": 0, "sign": 0}
    p_values, means = [], []
    for e in range(experiments):
        rng = np.random.default_rng([seed, e, 0x1A])
        a, b = np.zeros(len(log.users)), np.zeros(len(log.users))
        for user, clicked, k in lists:
            slots = [str(i) for i in range(k)]
            ca, cb = credit(team_draft(slots, slots, k, rng).teams, clicked)
            a[user] += ca
            b[user] += cb
        out = interleave_tests(a, b, alpha)
        hits["credit"] += out["p_value"] < alpha
        hits["sign"] += out["p_value_sign"] < alpha
        p_values.append(out["p_value"])
        means.append(out["credit_mean"])
    return {"experiments": experiments, "users": len(log.users), "lists": len(lists), "alpha": alpha,
            "false_positive_rate": hits["credit"] / experiments,
            "false_positive_rate_sign": hits["sign"] / experiments,
            "mean_credit_b_minus_a": float(np.mean(means)),
            "p_value_deciles": np.histogram(p_values, bins=10, range=(0, 1))[0].tolist()}


@dataclass
class OPEStudy(Study):
    """Exploration logs of the logging arm, and IPS, SNIPS, DR, DM (the direct model alone) and DR-PBM
    (item-level doubly robust) estimates of the target arm's value (studies/ope.py), beside its true
    value under the simulator (expected plays per list, position-based model). The log entries hold
    the item ids of the shown and the target list and the logger's chance of putting each target item
    at each position: host-side study records, nothing a device reports.

    With `seeds` > 1 the whole thing is repeated under seeds sim.seed, sim.seed + 1, ... (other users
    and other exploration draws); the record then holds each seed's figures and the mean absolute
    relative error of each estimator over the seeds."""

    name = "ope"
    logging: Arm
    target: Arm
    data_dir: Path
    sim: SimConfig = field(default_factory=lambda: SimConfig(users=300, days=1, pre_days=0))
    temperature: float = 2.0  # the runtime's default; at 1.0 rare positions carry large weights (docs/experiments.md)
    source: str = "auto"
    seeds: int = 1

    def measure(self, progress: Progress) -> dict:
        runs = [self.measure_seed(replace(self.sim, seed=self.sim.seed + i), progress) for i in range(self.seeds)]
        # which users each seed logged: on a small data set every seed logs the same users (all of them), so
        # the seeds redraw exploration and clicks only and their spread leaves out the users' own
        logged = [set(r.pop("logged_users")) for r in runs]
        rows = [{"seed": self.sim.seed + i, "lists": r["lists"], "true_value": r["true_value"],
                 "true_value_se": r["true_value_se"], **r["estimates"]} for i, r in enumerate(runs)]
        thin = [r["thin_support"] for r in runs]
        summary = seed_summary(rows)
        shared = (float(np.mean([len(logged[0] & u) / max(len(logged[0] | u), 1) for u in logged[1:]]))
                  if len(logged) > 1 else None)
        # the settings every figure rests on (a record without its temperature could not be read back)
        return {**runs[0], "temperature": float(self.temperature), "users_shared_across_seeds": shared,
                "seeds": [{**row, "thin_support_value": t and t["value"]} for row, t in zip(rows, thin)],
                "error_over_seeds": summary,
                "mean_relative_error": {name: s["mean"] for name, s in summary.items()}}

    def measure_seed(self, sim: SimConfig, progress: Progress) -> dict:
        dataset, simulator = _setup(self.data_dir, sim, self.source)
        logs, truth, logged_truth, users, values = [], [], [], [], []
        with open_device(self.logging.bundle) as rec, open_device(self.target.bundle) as target:
            exposures = explore(rec, self.temperature, seed=sim.seed)
            policies = self.logging.make_policy(rec), self.target.make_policy(target)
            progress(f"seed {sim.seed}: logging {len(simulator.user_codes)} users x {sim.days} lists "
                     "with exploration", {})
            sampler = rec.pipeline[EXPLORE_STAGE].run
            for code in simulator.user_codes:
                simulator.seed_history([rec, target], int(code))
                # the user's own draws: one generator for all made a user's lists depend on the other users
                sampler.rng = np.random.default_rng([sim.seed, int(code), sim.replicate, 0xE5])
                rng = np.random.default_rng([sim.seed, int(code), 7])
                consumed = simulator.consumed(int(code))
                for day in range(sim.days):
                    now = simulator.start + day * 86_400 + 20 * 3600
                    one = self._log_one(simulator, (rec, target), policies, exposures, int(code), now, rng, consumed)
                    if one is not None:
                        logs.append(one[0])
                        users.append(int(code))  # a user's lists move together: one cluster
                        truth.append(one[1])
                        logged_truth.append(one[2])
                        values.append(one[3])
        # users, not lists, are resampled: each user logs up to `days` lists that share the user's tastes
        found, errors = estimates(logs), standard_errors(logs, seed=sim.seed, users=users)
        true = float(np.mean(truth))
        terms = list_terms(logs)
        # each estimator on average over the logger's draws on these very lists (its bias), beside the truth:
        # what the run's estimate adds to it is noise (ope.expected_under_logger)
        expected = expected_under_logger(logs, np.array(values))
        # the truth is each list's exact expected plays, so it has no click noise; over these users (the
        # estimand is these lists' value, the same for every estimator) its spread is reported beside it,
        # a user's lists counted as one cluster (std / sqrt(lists) said half of it on 150 users x 5 days)
        # the noise floor is what a user can compute: each standard error against the direct model's estimate
        # (low-noise, from the logs alone), never against the simulator's truth, which a real run does not have
        scale = found["DM"]
        return {"lists": len(logs), "users_logged": len(set(users)), "logged_users": sorted(set(users)),
                "days": sim.days, "true_value": true,
                "true_value_se": cluster_standard_error(truth, users),  # None for a single user
                "logging_value": float(np.mean(logged_truth)), "estimates": found, "standard_errors": errors,
                "goal_scale": {"estimator": "DM", "value": scale},
                "lists_for_goal": {name: lists_for_goal(se, scale, len(logs)) for name, se in errors.items()},
                "between_user_share": {name: between_user_share(terms[name], users) for name in errors},
                "relative_error": {k2: abs(v - true) / true for k2, v in found.items()},
                "expected_relative_error": {k2: (v - true) / true for k2, v in expected.items()},
                "thin_support": thin_support(logs),
                "match_rate": float(np.mean([lg.match.mean() for lg in logs])), **_reactions_fields(simulator)}

    def _log_one(self, simulator, recs, policies, exposures, code, now, rng, consumed):
        """One explored list: its log entry, the target's true value and the shown list's true value."""
        react, k, gamma = simulator.reactions, self.sim.k, examination(self.sim.k)
        name = simulator.dataset.user_ids[code]
        context = {"now": now, "hour": 20.0}
        shown = [r.item_id for r in recs[0].recommend(name, k, context=context, policy=policies[0])]
        exposure = exposures.pop()
        wanted = [r.item_id for r in recs[1].recommend(name, k, context=context, policy=policies[1])]
        if exposure is None or list(exposure.items) != shown or len(shown) != k or len(wanted) != k:
            return None  # nothing explored: an empty or short list, or the popularity fallback
        items = np.array([simulator.item_code[i] for i in shown])
        target_items = np.array([simulator.item_code[i] for i in wanted])
        value = gamma * react.attraction(code, target_items, consumed)  # per position: examination x attraction
        truth = (float(value.sum()), float((gamma * react.attraction(code, items, consumed)).sum()), value)
        reaction = react.react(code, items, rng, "pbm", consumed)
        consumed.add(items[reaction.played])
        simulator.record(recs, name, shown, reaction, now)
        rank = {item: r for r, item in enumerate(exposure.greedy)}
        entry = LoggedList(reaction.played.astype(float), np.array(exposure.marginals),
                           np.array([a == b for a, b in zip(shown, wanted)]),
                           np.array([rank.get(i, k) for i in shown]), np.array([rank.get(i, k) for i in wanted]),
                           np.array(shown), np.array(wanted),
                           np.array([exposure.position_probabilities(i) for i in wanted]))
        return entry, truth[0], truth[1], truth[2]

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        rows = [{"estimator": name, "estimate": v, "standard_error": record["standard_errors"][name],
                 "relative_error": record["relative_error"][name],
                 **({"expected_error": record["expected_relative_error"].get(name)}
                    if "expected_relative_error" in record else {}),
                 "lists_for_goal": record["lists_for_goal"][name],
                 **({"days_for_goal": days_for_goal(record["lists_for_goal"][name], record["lists"], record["days"],
                                                    record.get("between_user_share", {}).get(name, 0.0))}
                    if record.get("days") and record["lists"] else {})}
                for name, v in record["estimates"].items()]
        rows.append({"estimator": "true (simulator)", "estimate": record["true_value"],
                     "standard_error": record["true_value_se"], "relative_error": 0.0})
        rows.append({"estimator": "logging policy (true)", "estimate": record["logging_value"],
                     "relative_error": None})
        temperature = (f", exploration temperature {record['temperature']:g}" if "temperature" in record
                       else ", exploration temperature not recorded")
        scale = ("5% of DM's estimate, computed from the logs alone, not from the truth" if "goal_scale" in record
                 else "computed against the simulator's truth (an older record)")
        tables = [Table(_beside(f"expected plays per list of the target ({record['lists']} logged lists, seed "
                        f"{record['seeds'][0]['seed']}{temperature}; lists_for_goal: lists the estimator's noise "
                        f"needs to stay within {GOAL:.0%} in 95% of runs ({scale}), above {record['lists']} a "
                        "verdict is luck; "
                        "expected_error: the estimator's signed error on average over the logger's draws on "
                        "these lists, its bias (SNIPS: its limit); the rest of relative_error is noise; "
                        "days_for_goal: the --days that gets there with these users, counting that more days "
                        "of them do not shrink what comes from the users themselves (n/a: no number of days "
                        "does, more users are needed); standard errors resample users, all of a user's lists "
                        "together, and the truth's is over these users)", record), rows)]
        if record.get("thin_support"):
            tables.append(Table("target positions whose item the logger shows there less than once in this many "
                                "lists (IPS and DR's correction cannot see them): share of positions, of the "
                                "target's value under the fitted click model, outside the short list; and the "
                                f"lists IPS needs to stay within {GOAL:.0%} in 95% of runs counting its rare large "
                                "weights (ips_lists_for_goal, from the click model: a bootstrap never draws them)",
                                [record["thin_support"]]))
        if len(record["seeds"]) > 1:
            tables.append(Table("each seed", record["seeds"]))
            shared = record.get("users_shared_across_seeds")
            users = ("" if shared is None else "; the seeds log the same users, so they redraw exploration and "
                     "clicks only" if shared >= 0.999 else f"; {shared:.0%} of the users shared between seeds")
            lists = sorted({row["lists"] for row in record["seeds"]})
            tables.append(Table(f"relative error over {len(record['seeds'])} seeds of "
                                f"{'/'.join(f'{n:,}' for n in lists)} lists{temperature} (goal: within "
                                f"{GOAL:.0%}, closer than IPS; signed: the mean with its sign, mean: of the "
                                f"absolute error, se: its standard error; every seed counted{users})",
                                [{"estimator": name, "signed": s["signed"], "mean": s["mean"], "se": s["se"],
                                  "rmse": s["rmse"], "seeds_within_goal": s["within_goal"],
                                  "seeds_closer_than_ips": s["closer_than_ips"]}
                                 for name, s in record["error_over_seeds"].items()]))
        return tables


@dataclass
class BundleComparisonStudy(Study):
    """One A/B test and one interleaving of two bundles on the same simulated users (the demo's)."""

    name = "experiment"
    control: Arm
    treatment: Arm
    data_dir: Path
    sim: SimConfig = field(default_factory=lambda: SimConfig(users=200, days=5, pre_days=3))
    source: str = "auto"

    def measure(self, progress: Progress) -> dict:
        ab = ABStudy(self.control, self.treatment, self.data_dir, self.sim, source=self.source).measure(progress)
        il = InterleaveStudy(self.control, self.treatment, self.data_dir, self.sim,
                             source=self.source).measure(progress)
        progress("A/B", {"verdict": ab["verdict"]["decision"]})
        progress("interleaving", {"verdict": il["verdict"]["decision"]})
        # the world's ground truth, or a click model fitted on the log
        return {"control": self.control.name, "treatment": self.treatment.name, "ab": ab, "interleave": il,
                "reactions": ab["reactions"], "reactions_description": ab["reactions_description"]}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        # each verdict's title names the users (records from before the interleaving's own field: the study's)
        title = f"{record['treatment']} (treatment) vs {record['control']} (control)"
        ab = ABStudy.tables(record["ab"])
        il = InterleaveStudy.tables({"reactions": record.get("reactions"), **record["interleave"]})
        return [Table(f"A/B, {title}: {t.title}", t.rows, t.columns) for t in ab] + \
            [Table(f"interleaving, {title}: {t.title}", t.rows, t.columns) for t in il]
