"""The baselines study: non-neural recommenders under the full-ranking protocol, as a yardstick."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from edgerec.data.split import leave_last_out
from edgerec.data.store import load_dataset
from edgerec.errors import DataError
from edgerec.models.baselines import make_baseline
from edgerec.models.evaluation import Evaluator
from edgerec.studies.base import Progress, Study, Table

COLUMNS = ["model", "HR@10", "NDCG@10", "MRR@10", "coverage@10", "novelty@10", "diversity@10", "pop_percentile@10",
           "gini@10", "seconds"]


@dataclass
class BaselinesStudy(Study):
    """Test metrics of each named baseline (popular, trending, itemknn, userknn, content, hybrid)."""

    name = "baselines"
    data_dir: Path
    baselines: tuple[str, ...] = ("popular", "itemknn", "content")

    def measure(self, progress: Progress) -> dict:
        dataset = load_dataset(self.data_dir)
        split = leave_last_out(dataset)
        evaluator = Evaluator(split, dataset.catalog)
        rows = []
        for name in self.baselines:
            began = time.perf_counter()
            try:
                scorer = make_baseline(name, dataset, split)
            except DataError as exc:  # e.g. content on a bare log: say why, run the others
                rows.append({"model": name, "not measured": str(exc)})
                progress(f"baseline {name} not measured: {exc}", {})
                continue
            row = evaluator.evaluate(scorer)
            row["seconds"] = round(time.perf_counter() - began, 1)
            rows.append(row)
            progress(f"baseline {name}", {k: row[k] for k in ("HR@10", "NDCG@10")})
        return {"models": rows}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        skipped = ["not measured"] if any("not measured" in row for row in record["models"]) else []
        return [Table("baselines (test, full ranking)", record["models"], COLUMNS + skipped)]
