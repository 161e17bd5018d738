"""The demo's privacy step: what encryption at rest costs on the device, and what a DP popularity prior costs.

Part one opens the bundle with a plain and an encrypted history (history_bench)
and checks that the encrypted file holds no user or item id in the clear. Part
two simulates `devices` locally DP reports (OLH, one consumed item per device
at `epsilon`) from the training log's consumption, estimates popularity on the
host, writes it as a popularity prior (for `edgerec export --popularity`) and
compares NDCG@10 of the popularity list built from it with the one built from
the true log.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.studies.base import Progress, Study, Table, fresh_history
from edgerec.studies.devices import open_device


@dataclass
class PrivacyStudy(Study):
    name = "privacy"

    bundle: Path
    data_dir: Path
    out: Path
    epsilon: float = 1.0
    devices: int = 300_000
    seed: int = 0

    def measure(self, progress: Progress) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        return {"encrypted_history": self._history(progress), "dp_popularity": self._prior(progress)}

    def _history(self, progress: Progress) -> dict:
        from edgerec.device_tests.history_bench import bench_history

        # ids long and random enough that finding them by chance is out of the question (a catalog's own ids
        # can be "1": such bytes turn up in any encrypted file, and MovieLens' first item read as a leak)
        user, item = f"demo-user-{secrets.token_hex(8)}", f"demo-item-{secrets.token_hex(8)}"
        found = {kind: self._ids_in_file(kind, user, item) for kind in ("plain", "encrypted")}
        bench = bench_history(self.bundle, events=200, requests=150, opens=20)
        record = {"ids_in_clear": found["encrypted"], "ids_in_plain_file": found["plain"], **bench}
        progress("encrypted history", {f"p99 ratio {k}": v for k, v in bench["ratio"].items()})
        return record

    def _ids_in_file(self, kind: str, user: str, item: str) -> bool:
        """Whether a user id or an item id (an item added on the device, then played) stands in the
        history's files as bytes; the plain file is the control that shows the search finds them."""
        path = fresh_history(self.out / f"{kind}-history.db", own=True)
        key = secrets.token_bytes(32) if kind == "encrypted" else None
        with open_device(self.bundle, history=path, key=key) as rec:
            rec.add_items([{"item_id": item, "title": "probe", "vector": rec.catalog.vectors([0])[0].tolist()}])
            rec.record(user, item, "finish")
            rec.recommend(user, k=10)
        blob = b"".join(p.read_bytes() for p in self.out.glob(f"{kind}-history.db*"))
        return user.encode() in blob or item.encode() in blob

    def _prior(self, progress: Progress) -> dict:
        from edgerec.data.split import leave_last_out
        from edgerec.data.store import load_dataset
        from edgerec.export.popularity import PopularityPrior
        from edgerec.models.baselines import Popular
        from edgerec.models.evaluation import Evaluator
        from edgerec.runtime.ldp import olh_estimate
        from edgerec.studies.dp_popularity import recall_at, simulate_support

        dataset = load_dataset(self.data_dir)
        split = leave_last_out(dataset)
        popular = Popular(split, dataset)
        shares = popular.scores.astype(np.float64) / popular.scores.sum()
        rng = np.random.default_rng(self.seed)
        true = rng.multinomial(self.devices, shares)
        estimate = olh_estimate(simulate_support(true, self.epsilon, rng), self.devices, self.epsilon)
        prior = PopularityPrior(dict(zip(dataset.catalog.item_ids, estimate.counts.tolist())),
                                "dp-reports (simulated devices)", self.devices, self.epsilon)
        prior.write(self.out / "dp-popularity.json")
        evaluator = Evaluator(split, dataset.catalog)
        ndcg_true = evaluator.evaluate(popular)["NDCG@10"]
        popular.scores = prior.for_catalog(dataset.catalog.item_ids)
        popular.name = "popular-dp"
        ndcg_dp = evaluator.evaluate(popular)["NDCG@10"]
        record = {"epsilon": self.epsilon, "devices": self.devices, "items": dataset.n_items,
                  "top10_recall": recall_at(true, estimate.counts, 10),
                  "top50_recall": recall_at(true, estimate.counts, 50),
                  "ndcg10_true_prior": float(ndcg_true), "ndcg10_dp_prior": float(ndcg_dp),
                  "prior_file": "dp-popularity.json"}
        progress("DP popularity prior", {k: record[k] for k in ("top10_recall", "ndcg10_true_prior",
                                                               "ndcg10_dp_prior")})
        return record

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        h, d = record["encrypted_history"], record["dp_popularity"]
        rows = [{"store": name, "record p99 ms": h[name]["record"]["p99_ms"],
                 "recommend p99 ms": h[name]["recommend"]["p99_ms"], "open ms": h[name]["open_ms"]}
                for name in ("plain", "encrypted")]
        rows.append({"store": "ratio", "record p99 ms": h["ratio"]["record"],
                     "recommend p99 ms": h["ratio"]["recommend"], "open ms": h["ratio"]["open"]})
        title = (f"history at rest (ids in the clear in the encrypted file: {h['ids_in_clear']}; in the plain "
                 f"file, the control: {h['ids_in_plain_file']})")
        return [Table(title, rows),
                Table(f"popularity prior from DP reports (epsilon {d['epsilon']:g}, {d['devices']:,} devices)",
                      [{k: d[k] for k in ("top10_recall", "top50_recall", "ndcg10_true_prior",
                                          "ndcg10_dp_prior")}])]
