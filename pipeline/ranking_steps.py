"""The demo's interpretable-scorer step: trained after the ranker, compared with it, shipped in the bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgerec.models.ranker import RankerConfig
from edgerec.pipeline.steps import _data
from edgerec.studies.base import Progress, Study, Table, say


@dataclass
class ScorerStep(Study):
    """The interpretable scorer for the student; NDCG@10 beside the deep ranker's and the retrieval order's."""

    name = "scorer"
    data_dir: Path
    retrieval: Path
    ranker: Path
    out: Path
    config: RankerConfig = field(default_factory=RankerConfig)

    def measure(self, progress: Progress) -> dict:
        from edgerec.models.scorer import fit_scorer

        dataset, split = _data(self.data_dir)
        info = fit_scorer(dataset, split, self.retrieval, self.out, self.config, ranker=self.ranker,
                          phases=("val", "test"), progress=say(progress))
        progress("scorer", {k: v for k, v in info["validation"].items() if k.startswith("NDCG")})
        return info

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        rows = [{k: v for k, v in record[phase].items() if k != "users"} for phase in ("validation", "test")
                if phase in record]
        return [Table("NDCG@10: retrieval order, interpretable scorer, deep ranker", rows)]
