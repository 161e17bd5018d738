"""A popularity prior for a bundle from outside the training log: the host's estimate from DP device reports.

The file is JSON written by the DP popularity study (studies/dp_popularity.py):
{"kind": "edgerec-popularity", "item_ids": [...], "counts": [...], "reports": n, "epsilon": e, ...}.
Counts are unbiased estimates, so some are negative; a prior clips them at zero.
Items of the catalog the file does not name get zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError
from edgerec.runtime.atomic import write_file

KIND = "edgerec-popularity"


@dataclass
class PopularityPrior:
    counts: dict[str, float]
    source: str
    reports: int | None = None
    epsilon: float | None = None

    @classmethod
    def read(cls, path: str | Path) -> PopularityPrior:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"popularity file {path.name} cannot be read ({exc}); write it with "
                              "`edgerec study dp-popularity`") from None
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise ConfigError(f"{path.name} is not a popularity file (its 'kind' must be {KIND!r})")
        ids, counts = data.get("item_ids", []), data.get("counts", [])
        if len(ids) != len(counts) or not ids:
            raise ConfigError(f"{path.name}: item_ids and counts must be non-empty lists of one length")
        values = np.asarray(counts, np.float64)
        if not np.all(np.isfinite(values)):
            raise ConfigError(f"{path.name}: counts must be finite numbers")
        return cls(dict(zip(map(str, ids), values.tolist())), str(data.get("source", "dp-reports")),
                   data.get("reports"), data.get("epsilon"))

    def write(self, path: str | Path) -> None:
        write_file(Path(path), json.dumps({"kind": KIND, "source": self.source, "reports": self.reports,
                                          "epsilon": self.epsilon, "item_ids": list(self.counts),
                                          "counts": list(self.counts.values())}))

    def for_catalog(self, item_ids: list[str]) -> np.ndarray:
        known = sum(1 for i in item_ids if i in self.counts)
        if known == 0:
            raise ConfigError("the popularity file names none of this catalog's items; it was made for another "
                              "catalog")
        return np.asarray([max(self.counts.get(i, 0.0), 0.0) for i in item_ids], np.float32)

    def describe(self) -> dict:
        return {"source": self.source, "reports": self.reports, "epsilon": self.epsilon, "items": len(self.counts)}
