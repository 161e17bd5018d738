"""The result of a federated run as a new bundle: the same models, the trained table, a new space id.

The table is re-quantized with the source bundle's precision and written
through the bundle writer in the source's format version (its devices must
read the update), with its ranking and space sections; the new manifest gets its own embedding-space
id (devices drop what they cached for the old space: added items, ANN index
files, personal vectors). The encoder is unchanged, so the reference user
vectors stay and only their top-k is computed again against the new table;
the drift monitor's baseline is measured on those synthetic histories too
(the server has no real ones). `metrics.federated` records the run: parent
space, rounds, devices per round and, under DP, the (epsilon, delta) spent
(spec/README.md, "Federated updates").
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError
from edgerec.export.parity import top_k_rows
from edgerec.runtime.bundle import Bundle, BundleWriter, Manifest
from edgerec.runtime.drift import score_baseline
from edgerec.runtime.item_spec import TableSpec
from edgerec.runtime.item_table import StoredTable

DP_KEYS = ("epsilon", "target_epsilon", "delta", "noise_multiplier", "clip", "sampling_rate", "accountant")


def _plain(value, where: str) -> None:
    """Refuse what a manifest cannot carry: non-JSON values, NaN or infinity (not JSON either, and a
    strict parser on a device refuses them) and host paths (they name a person's folders)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where} has a key that is not text ({type(key).__name__})")
            _plain(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _plain(item, f"{where}[{i}]")
    elif isinstance(value, str):
        if os.path.isabs(value) or value.startswith("~") or re.match(r"[A-Za-z]:[\\/]", value):
            raise ConfigError(f"{where} looks like a host path; a published bundle names no folder of the machine "
                              "that made it")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where} is {value}; a manifest holds finite numbers only")
    elif value is not None and not isinstance(value, (bool, int)):
        raise ConfigError(f"{where} is a {type(value).__name__}; a record holds JSON values only "
                          "(text, numbers, lists, dicts)")


def _check_record(record) -> None:
    """A run record as metrics.federated takes it: plain JSON, the parent space left to us, and under DP
    the accounted (epsilon, delta) with what produced them (spec/README.md, "Federated updates")."""
    if not isinstance(record, dict):
        raise ConfigError(f"the run record must be a dict (got {type(record).__name__})")
    if "parent_space" in record:
        raise ConfigError("the run record must not set parent_space: it is the source bundle's space")
    _plain(record, "metrics.federated")
    if "dp" not in record:
        return
    dp = record["dp"]
    missing = [k for k in DP_KEYS if k not in dp] if isinstance(dp, dict) else list(DP_KEYS)
    if missing:
        raise ConfigError(f"metrics.federated.dp lacks {', '.join(missing)}; record the plan as DPPlan.describe does")
    eps, delta = dp["epsilon"], dp["delta"]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (eps, delta))
    if not (numeric and eps > 0 and 0 < delta < 1):
        raise ConfigError(f"metrics.federated.dp needs the spent epsilon > 0 and 0 < delta < 1 (got {eps!r}, {delta!r})")


def publish_bundle(source: Bundle, table: np.ndarray, out: str | Path, record: dict,
                   name: str | None = None) -> Manifest:
    """Write `source` with `table` (float, one row per item) as a new bundle at `out`."""
    m = source.manifest
    table = np.asarray(table, np.float32)
    if table.shape != (m.items.count, m.dim) or not np.all(np.isfinite(table)):
        raise ConfigError(f"the federated table must be finite and {m.items.count} x {m.dim} (got {table.shape})")
    _check_record(record)
    name = Path(out).resolve().name if name is None else name
    if not isinstance(name, str) or not name or "/" in name or "\\" in name:
        raise ConfigError("the bundle's name must be a folder name, not a path or nothing")
    old = StoredTable.read(source, m.items.embeddings)
    replaced = {m.items.embeddings.file, m.items.embeddings.scales, m.reference.get("top_k")}
    writer = BundleWriter(out, name, m.format_version)  # the parent's devices must read its update
    for file in m.files:
        if file not in replaced:
            writer.file_path(file).write_bytes(source.path(file).read_bytes())
            writer.add_file(file)
    writer.models = list(m.models)
    stored = StoredTable.quantize(table, old.dtype_name)
    items = replace(m.items, embeddings=TableSpec.from_manifest(stored.manifest_entry(writer)))
    shipped = stored.dequantize()
    reference, metrics = dict(m.reference), {k: v for k, v in m.metrics.items() if k != "monitoring"}
    if "histories" in reference:
        rows = source.array(reference["histories"], mmap=False)
        vectors = source.array(reference["user_vectors"], mmap=False)
        seen = [r[r > 0] - 1 for r in rows]
        reference["top_k"] = writer.add_array("reference/top_k.npy",
                                              top_k_rows(vectors, shipped, int(reference["k"]), seen).astype(np.int64))
        metrics["monitoring"] = score_baseline(vectors, shipped, seen)
    metrics["federated"] = {"parent_space": m.embedding_space, **record}
    return writer.finish(dim=m.dim, items=items, defaults=m.defaults, metrics=metrics, budgets=m.budgets,
                         reference=reference, data_version=m.data_version, ranking=m.ranking, space=m.space)
