"""How many users an A/B test and an interleaving need to detect the same improvement at 80% power.

The simulator runs every user three times with the same seeds: all under
the control, all under the treatment (the counterfactual pair gives the
true per-user effect, its size and the per-user spread an A/B test faces,
with and without CUPED), and once interleaved (the per-user preference an
interleaving test faces). The power calculator turns each into users
needed; their ratio is the sensitivity gain of interleaving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgerec.studies import stats
from edgerec.studies.base import Progress, Study, Table
from edgerec.studies.experiments import InterleaveStudy, _setup, interleave_analysis
from edgerec.studies.simulator import Arm, SimConfig


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

    def measure(self, progress: Progress) -> dict:
        _, simulator = _setup(self.data_dir, self.sim, self.source)
        runs = {}
        for arm in (self.control, self.treatment):
            progress(f"all users under {arm.name}", {})
            # the pre-period under the control for both, as in the A/B test
            log = simulator.run([Arm("pre", self.control.bundle, self.control.policy),
                                 Arm("only", arm.bundle, arm.policy)], lambda _u: "only")
            runs[arm.name] = (log.period(self.metric), log.pre_device)
        (ya, xa), (yb, xb) = runs[self.control.name], runs[self.treatment.name]
        effect = float(yb.mean() - ya.mean())
        sigma = float(np.sqrt((ya.var(ddof=1) + yb.var(ddof=1)) / 2))
        ac, at, reduction = stats.cuped(ya, yb, xa, xb)
        sigma_cuped = float(np.sqrt((ac.var(ddof=1) + at.var(ddof=1)) / 2))
        progress("interleaved", {})
        il = InterleaveStudy(self.control, self.treatment, self.data_dir, self.sim, self.alpha, self.source)
        preference = interleave_analysis(il.run_log(simulator), self.alpha)
        ab_n = stats.sample_size(sigma, effect, self.alpha) if effect else None
        ab_cuped_n = stats.sample_size(sigma_cuped, effect, self.alpha) if effect else None
        il_n = preference["users_needed_80pct"]
        return {
            "users_simulated": len(ya), "metric": self.metric, "true_effect": effect,
            "relative_effect": effect / float(ya.mean()) if ya.mean() else None,
            "sigma": sigma, "sigma_cuped": sigma_cuped, "cuped_variance_reduction": reduction,
            "ab_users_needed": ab_n, "ab_cuped_users_needed": ab_cuped_n, "interleaving_users_needed": il_n,
            "interleaving_preference_mean": preference["preference_mean"],
            "interleaving_preference_sd": preference["preference_sd"],
            "gain_vs_ab": ab_n / il_n if ab_n and il_n else None,
            "gain_vs_ab_cuped": ab_cuped_n / il_n if ab_cuped_n and il_n else None,
        }

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        rows = [{"test": "A/B (Welch)", "users_needed": record["ab_users_needed"]},
                {"test": "A/B with CUPED", "users_needed": record["ab_cuped_users_needed"]},
                {"test": "team-draft interleaving", "users_needed": record["interleaving_users_needed"]}]
        return [Table(f"users needed at 80% power (true effect {record['true_effect']:.4g} {record['metric']} "
                      f"per user; CUPED removes {100 * record['cuped_variance_reduction']:.0f}% of the variance)",
                      rows)]
