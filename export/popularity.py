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
from edgerec.runtime.item_spec import F32_MAX

KIND = "edgerec-popularity"


def _counts(counts: list) -> np.ndarray | None:
    """The counts as float64, or None when one is no number the bundle can hold (true, "3", 1e39, 10**400)."""
    if not all(type(c) in (int, float) for c in counts):
        return None
    try:
        values = np.asarray(counts, np.float64)
    except OverflowError:
        return None
    return values if bool(np.all(np.abs(values) <= F32_MAX)) else None  # NaN compares False


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
        except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON, or bytes that are no UTF-8
            reason = (exc.strerror or type(exc).__name__) if isinstance(exc, OSError) else exc  # OSError's text: a path
            raise ConfigError(f"popularity file {path.name} cannot be read ({reason}); write it with "
                              "`edgerec study dp-popularity`") from None
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise ConfigError(f"{path.name} is not a popularity file (its 'kind' must be {KIND!r})")
        ids, counts = data.get("item_ids"), data.get("counts")
        if not (isinstance(ids, list) and isinstance(counts, list)) or len(ids) != len(counts) or not ids:
            raise ConfigError(f"{path.name}: item_ids and counts must be non-empty lists of one length")
        ids = [str(i) for i in ids]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"{path.name}: {len(ids) - len(set(ids))} item id(s) appear more than once; "
                              "each item must have one count")
        values = _counts(counts)
        if values is None:
            raise ConfigError(f"{path.name}: counts must be finite numbers no larger than {F32_MAX:.3g} (the "
                              "bundle's popularity column is float32)")
        return cls(dict(zip(ids, values.tolist())), str(data.get("source", "dp-reports")),
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
