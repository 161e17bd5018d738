"""Offline-online agreement: does the offline metric order bundles and policies as simulated users do?

Each arm (a bundle and a policy) is measured twice. Offline: held-out users'
logged histories are replayed into the device and NDCG@10 / HR@10 of their
next item is scored (the replay study's protocol). Online: the same arm serves
every simulated user (same users, same seeds, so arms are paired) and the
simulator's online metrics are taken. The record gives both side by side and,
per online metric, the Spearman and Kendall rank correlation with offline
NDCG@10 over the arms: a correlation near 1 says offline evaluation picks the
same winner as users would; near 0 or negative says it does not.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgerec.data.split import leave_last_out, require_targets
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError
from edgerec.studies.base import Progress, Study, Table, pyplot, save_figure
from edgerec.studies.devices import open_device
from edgerec.studies.experiments import reactions_description, unmeasured_metrics
from edgerec.studies.online_metrics import METRICS, online_metrics, popularity_shares
from edgerec.studies.reactions import reactions_for
from edgerec.studies.replay import replay_lists
from edgerec.studies.simulator import Arm, SimConfig, Simulator

MIN_ARMS = 3  # a rank correlation over two arms is +1 or -1 and says nothing


def offline_scores(arm: Arm, dataset, split, picked: np.ndarray) -> dict:
    """NDCG@10 and HR@10 of the arm on replayed held-out users (a fresh device history per arm)."""
    gains = []
    with tempfile.TemporaryDirectory() as scratch:
        with open_device(arm.bundle, dataset, history=Path(scratch) / "history.db") as rec:
            policy = arm.make_policy(rec)
            for _name, target, listed, _ms in replay_lists(rec, dataset, split, picked, policy=policy):
                ids = [r.item_id for r in listed]
                gains.append(1.0 / math.log2(ids.index(target) + 2) if target in ids else 0.0)
    gains = np.asarray(gains)
    return {"NDCG@10": float(gains.mean()) if len(gains) else 0.0,
            "HR@10": float((gains > 0).mean()) if len(gains) else 0.0}


def rank_agreement(offline: list[float], online: list[float]) -> dict:
    """Spearman's rho and Kendall's tau-b between two scorings of the same arms (None when either is
    constant, or the online metric not measured: no order to agree with)."""
    from scipy import stats

    if None in online or len(set(offline)) < 2 or len(set(online)) < 2:
        return {"spearman": None, "kendall": None}
    return {"spearman": float(stats.spearmanr(offline, online).statistic),
            "kendall": float(stats.kendalltau(offline, online).statistic)}


@dataclass
class AgreementStudy(Study):
    """Offline NDCG@10 beside simulated online metrics for several arms, and their rank correlation."""

    name = "agreement"
    draws = True
    arms: list[Arm]
    data_dir: Path
    sim: SimConfig = field(default_factory=lambda: SimConfig(users=200, days=5, pre_days=0))
    offline_users: int = 300
    source: str = "auto"

    def measure(self, progress: Progress) -> dict:
        names = [a.name for a in self.arms]
        if len(self.arms) < MIN_ARMS or len(set(names)) != len(names):
            raise ConfigError(f"give at least {MIN_ARMS} arms with different names (got {names})")
        if isinstance(self.offline_users, bool) or not isinstance(self.offline_users, int) or self.offline_users < 1:
            raise ConfigError(f"offline_users must be a whole number >= 1 (got {self.offline_users!r}): with none "
                              "replayed every arm's NDCG@10 read 0.0")
        dataset = load_dataset(self.data_dir)
        split = leave_last_out(dataset)
        require_targets(split)
        rng = np.random.default_rng(self.sim.seed)
        picked = rng.choice(len(split.test_users), min(self.offline_users, len(split.test_users)), replace=False)
        simulator = Simulator(dataset, reactions_for(dataset, self.source), self.sim)
        shares = popularity_shares(dataset)
        unmeasured = unmeasured_metrics(simulator.reactions)  # made up by the click model: null, not figures
        rows = []
        for arm in self.arms:
            progress(f"{arm.name}: offline replay of {len(picked)} users", {})
            offline = offline_scores(arm, dataset, split, picked)
            progress(f"{arm.name}: {len(simulator.user_codes)} simulated users for {self.sim.days} days", offline)
            log = simulator.run([arm], lambda _user, a=arm.name: a)
            online = online_metrics(log, shares, unmeasured)[arm.name]["overall"]
            rows.append({"arm": arm.name, **offline, **{m: online[m] for m in METRICS}})
        ndcg = [r["NDCG@10"] for r in rows]
        agreement = {m: rank_agreement(ndcg, [r[m] for r in rows]) for m in METRICS}
        return {"arms": rows, "agreement": agreement, "unmeasured": unmeasured, "offline_users": len(picked),
                "simulated_users": len(simulator.user_codes), "days": self.sim.days,
                "reactions": type(simulator.reactions).__name__,
                "reactions_description": reactions_description(simulator.reactions)}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        return [
            Table(f"offline ({record['offline_users']} replayed users) and online ({record['simulated_users']} "
                  f"simulated users, {record['days']} days; {reactions_description(record['reactions'])})", record["arms"]),
            Table("rank correlation of each online metric with offline NDCG@10, over the arms",
                  [{"online metric": m, **v} for m, v in record["agreement"].items()]),
        ]

    @classmethod
    def draw(cls, record: dict, path: Path) -> Path | None:
        plt = pyplot()
        if plt is None:
            return None
        fig, ax = plt.subplots(figsize=(6, 4))
        for row in record["arms"]:
            ax.scatter(row["NDCG@10"], row["plays_per_day"])
            ax.annotate(row["arm"], (row["NDCG@10"], row["plays_per_day"]), fontsize=8)
        rho = record["agreement"]["plays_per_day"]["spearman"]
        ax.set_title(f"Spearman rho = {rho:.2f}" if rho is not None else "no order to compare")
        ax.set_xlabel("offline NDCG@10")
        ax.set_ylabel("simulated plays per day")
        return save_figure(fig, path, dpi=100)
