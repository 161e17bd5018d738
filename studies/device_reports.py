"""A real experiment's analysis: the devices' private reports in, the A/B tests out.

    edgerec experiment analyze reports.jsonl --experiment ranker-v2 --metric plays

Each report is one device's figures at the end of the experiment
(`PrivateReporter.experiment`): outcome sums and CUPED's pre-period figures,
each clipped to a public bound, on a grid of `steps`, with discrete Laplace
noise. Read back as value x bound / steps, a figure is unbiased for the
clipped one up to the grid's rounding (half a thousandth of its bound), and its noise is the same in both arms, so the difference of the
arms' means stays unbiased and Welch's test, the bootstrap and CUPED run on
them as on the simulator's per-user figures (ab_analysis); only the variance
grows. The record says how much of each arm's variance the noise is (known
from each report's epsilon), which is what the privacy costs in users.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError, DataError
from edgerec.runtime.ldp import laplace_scale, laplace_variance
from edgerec.runtime.pre_period import PRE_FEATURES
from edgerec.runtime.reporter import FORMAT, experiment_record
from edgerec.studies.base import Progress, Study, Table
from edgerec.studies.experiments import ARMS, InterleaveStudy, ab_analysis, interleave_tests
from edgerec.studies.stats import whole_number

MECHANISM = "discrete_laplace"


@dataclass
class ReportLog:
    """The reports of one experiment as ab_analysis reads a simulated log: one row per device."""

    arms: list[str]  # ARMS names, the control's first
    users: list[str]  # the reports' order of arrival (no device is named in a report)
    values: dict[str, np.ndarray]
    pre_device: np.ndarray  # (devices, the PRE_FEATURES the reports carry)
    noise_var: dict[str, float]  # the noise's variance of one device's figure, by figure (mean over devices)

    def period(self, metric: str) -> np.ndarray:
        return self.values[metric]


def read_reports(path: str | Path) -> list[dict]:
    """The records of a JSON-lines file (one report a line) or of a JSON list."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text at byte {exc.start}: reports are JSON, one a line", Path(path).name) from None
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"not a JSON list of reports ({exc.msg} at line {exc.lineno})", str(path)) from None
        except (RecursionError, ValueError) as exc:  # nested past the parser's depth, a number too long, ...
            raise DataError(f"not a JSON list of reports ({_why(exc)})", str(path)) from None
        return records
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"line {number} is not a JSON report ({exc.msg}); the file holds one report "
                                "a line, as the devices sent them", str(path)) from None
            except (RecursionError, ValueError) as exc:  # one hostile device's report must not crash the analysis
                raise DataError(f"line {number} is not a JSON report ({_why(exc)}); remove that line, the "
                                "file holds one report a line, as the devices sent them", str(path)) from None
    return records


def _why(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to be a report"
    return str(exc)[:200]


MAX_BOUND = 1e12  # a figure's public bound; past it the noise's variance overflows float64 (1e308 did)


def decoded(records: list, experiment: str, arms: tuple[str, ...]) -> tuple[list[str], dict, dict]:
    """The reports of `experiment` among `records` (others are left out), each of the current format,
    naming one of `arms` and carrying the same figures and bounds: (arm of each report, its figures read
    back as value x bound / steps, the noise's variance of one report's figure by figure)."""
    if not isinstance(records, list):
        raise DataError("reports must be a list of report records (PrivateReporter.experiment's dicts)")
    question = f"experiment:{experiment}"
    mine = [r for r in records if isinstance(r, dict) and r.get("question") == question]
    if not mine:
        raise DataError(f"no report of experiment {experiment!r} among {len(records):,} records; check the "
                        "experiment's name (reports say question 'experiment:NAME')")
    domain = mine[0].get("domain")
    if not (isinstance(domain, dict) and isinstance(domain.get("bounds"), dict) and domain["bounds"]
            and all(isinstance(b, (int, float)) and 0 < b <= MAX_BOUND for b in domain["bounds"].values())
            and whole_number(domain.get("steps")) and domain["steps"] > 0):
        raise DataError(f"report 1 of {experiment!r} has no valid bounds (each in (0, {MAX_BOUND:g}]) and steps "
                        f"({domain!r})")
    rows = []
    for i, r in enumerate(mine):
        where = f"report {i + 1} of {experiment!r}"
        if r.get("format") != FORMAT or r.get("mechanism") != MECHANISM:
            raise DataError(f"{where} is of format {r.get('format')!r} / {r.get('mechanism')!r}, not "
                            f"{FORMAT} / {MECHANISM!r}: update edgerec on the host to read it")
        if r.get("domain") != domain:
            raise DataError(f"{where} has other bounds or steps than the first ({r.get('domain')} against "
                            f"{domain}): analyse each set of bounds on its own")
        if r.get("arm") not in arms:
            raise DataError(f"{where} is of arm {r.get('arm')!r}, not one of {list(arms)}: name the arms with "
                            "--control and --treatment (an interleaving experiment's with --interleaved)")
        values = r.get("values")
        if not isinstance(values, dict) or set(values) != set(domain["bounds"]) or not all(
                whole_number(v) and abs(v) < 2 ** 53 for v in values.values()):
            raise DataError(f"{where} does not hold one whole number per bounded figure")
        epsilon = r.get("local_epsilon", r.get("epsilon"))
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 < epsilon <= 20:
            raise DataError(f"{where} has no valid epsilon ({epsilon!r})")
        rows.append((r["arm"], values, epsilon))
    bounds, steps = domain["bounds"], domain["steps"]
    names = sorted(bounds)
    values = {n: np.array([row[1][n] * bounds[n] / steps for row in rows], np.float64) for n in names}
    noise = float(np.mean([laplace_variance(laplace_scale(len(names), steps, row[2])) for row in rows]))
    return [row[0] for row in rows], values, {n: noise * (bounds[n] / steps) ** 2 for n in names}


def report_log(records: list, experiment: str, arms: tuple[str, str] = ARMS) -> ReportLog:
    """An A/B experiment's reports as ab_analysis reads them (decoded); both arms must have reported."""
    if len(arms) != 2 or arms[0] == arms[1]:
        raise ConfigError(f"an A/B test compares two differently named arms (got {list(arms)})")
    names, values, noise = decoded(records, experiment, arms)
    if set(names) != set(arms):
        raise DataError(f"experiment {experiment!r} has reports from one arm only; a test needs both")
    pre = [n for n in PRE_FEATURES if n in values]
    return ReportLog([ARMS[arms.index(a)] for a in names], [f"{i:012d}" for i in range(len(names))], values,
                     np.stack([values[n] for n in pre], 1) if pre else np.zeros((len(names), 0)), noise)


def interleave_reports(records: list, experiment: str, arm: str = "interleaved", alpha: float = 0.05) -> dict:
    """An interleaving experiment's reports: each device's plays credited to team A (`clicks_a`) and B
    (`clicks_b`), decoded, through the simulator's tests (interleave_tests); plus the noise's share."""
    _, values, noise = decoded(records, experiment, (arm,))
    if not {"clicks_a", "clicks_b"} <= set(values):
        raise DataError(f"interleaving reports carry clicks_a and clicks_b, the plays credited to each team "
                        f"(these carry {', '.join(sorted(values))})")
    d = values["clicks_b"] - values["clicks_a"]
    share = (noise["clicks_a"] + noise["clicks_b"]) / d.var(ddof=1) if len(d) > 1 and d.var() > 0 else float("nan")
    return {**interleave_tests(values["clicks_a"], values["clicks_b"], alpha),
            "privacy": {"noise_variance": noise["clicks_a"] + noise["clicks_b"], "noise_share_of_variance": share}}


class SeededRandomness:
    """Repeatable randomness for simulated reports (a device uses the operating system's, SecureRandomness)."""

    def __init__(self, seed: int):
        self.draw = random.Random(seed)

    def below(self, n: int) -> int:
        return self.draw.randrange(n)

    def bernoulli(self, p: float) -> bool:
        return self.draw.random() < p


def report_bound(log, metric: str) -> float:
    """A public bound for the metric fixed before the experiment: the 99th percentile of the users'
    pre-period sums, scaled to the experiment's length."""
    days, pre_days = int((log.days >= 0).sum()), int((log.days < 0).sum())
    if pre_days == 0:
        raise ConfigError("private reports need a pre-period to set their bound from; simulate with --pre-days >= 1")
    return max(1.0, math.ceil(float(np.quantile(log.period(metric, pre=True), 0.99)) * days / pre_days))


def private_analysis(log, metric: str, epsilon: float, alpha: float, seed: int) -> dict:
    """The A/B tests again, on the figures each simulated device would report at `epsilon`
    (reporter.experiment_record; the metric only: a noisy pre-period covariate costs more than it removes),
    with how many more users the same interval needs than the exact figures with CUPED."""
    bound = report_bound(log, metric)
    y, rng = log.period(metric), SeededRandomness(seed)
    records = [experiment_record("simulated", arm, {metric: float(v)}, {metric: bound}, epsilon, rng, 0.0)
               for arm, v in zip(log.arms, y)]
    private = report_log(records, "simulated")
    tests = ab_analysis(private, metric, alpha, seed)
    exact = ab_analysis(log, metric, alpha, seed)["tests"]["cuped"]
    width = tests["tests"]["welch"]["ci_high"] - tests["tests"]["welch"]["ci_low"]
    variance = float(np.mean([private.values[metric][np.array(private.arms) == a].var(ddof=1) for a in ARMS]))
    return {"epsilon": epsilon, "bound": bound, "welch": tests["tests"]["welch"],
            "noise_share_of_variance": private.noise_var[metric] / variance if variance > 0 else float("nan"),
            "users_needed_x": (width / (exact["ci_high"] - exact["ci_low"])) ** 2, "verdict": tests["verdict"]}


@dataclass
class ReportsStudy(Study):
    """Welch, bootstrap, CUPED, mSPRT and the verdict on the devices' private reports of one experiment."""

    reports: Path
    experiment: str
    metric: str = "plays"
    arms: tuple[str, str] = ARMS
    alpha: float = 0.05
    seed: int = 0
    interleaved: str | None = None  # the arm name of an interleaving experiment's reports

    name = "analyze"

    def measure(self, progress: Progress) -> dict:
        if self.interleaved is not None:
            return interleave_reports(read_reports(self.reports), self.experiment, self.interleaved, self.alpha)
        log = report_log(read_reports(self.reports), self.experiment, self.arms)
        if self.metric not in log.values:
            raise ConfigError(f"the reports carry no {self.metric!r}; they carry {', '.join(sorted(log.values))}")
        progress(f"{len(log.arms):,} device reports of {self.experiment!r}", {})
        record = ab_analysis(log, self.metric, self.alpha, self.seed)
        y, arms = log.period(self.metric), np.array(log.arms)
        variance = float(np.mean([y[arms == a].var(ddof=1) for a in ARMS]))
        share = log.noise_var[self.metric] / variance if variance > 0 else float("nan")
        return {**record, "arm_names": dict(zip(ARMS, self.arms)), "covariates": log.pre_device.shape[1],
                "privacy": {"noise_variance": log.noise_var[self.metric], "noise_share_of_variance": share}}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        if "wins_a" in record:  # an interleaving experiment
            return [*InterleaveStudy.tables(record), Table("privacy noise", [record["privacy"]])]
        tests = [{"test": k, **{c: v[c] for c in ("delta", "relative", "ci_low", "ci_high", "p_value")}}
                 for k, v in record["tests"].items()]
        return [Table(f"{record['arm_names']['treatment']} - {record['arm_names']['control']} on "
                      f"{record['metric']} per device", tests),
                Table("privacy noise", [record["privacy"]]), Table("power", [record["power"]]),
                Table(f"verdict: {record['verdict']['decision']}", [{"rule": record["verdict"]["rule"]}])]
