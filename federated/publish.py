"""The result of a federated run as a new bundle: the same models, the trained table, a new space id.

The table is re-quantized with the source bundle's precision and written
through the bundle writer, so the new manifest gets its own embedding-space
id (devices drop what they cached for the old space: added items, ANN index
files, personal vectors). The encoder is unchanged, so the reference user
vectors stay and only their top-k is computed again against the new table;
the drift monitor's baseline is measured on those synthetic histories too
(the server has no real ones). `metrics.federated` records the run: parent
space, rounds, devices per round and, under DP, the (epsilon, delta) spent
(spec/README.md, "Federated updates").
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError
from edgerec.export.parity import top_k_rows
from edgerec.runtime.bundle import Bundle, BundleWriter, Manifest
from edgerec.runtime.drift import score_baseline
from edgerec.runtime.item_spec import TableSpec
from edgerec.runtime.item_table import StoredTable


def publish_bundle(source: Bundle, table: np.ndarray, out: str | Path, record: dict,
                   name: str | None = None) -> Manifest:
    """Write `source` with `table` (float, one row per item) as a new bundle at `out`."""
    m = source.manifest
    table = np.asarray(table, np.float32)
    if table.shape != (m.items.count, m.dim) or not np.all(np.isfinite(table)):
        raise ConfigError(f"the federated table must be finite and {m.items.count} x {m.dim} (got {table.shape})")
    old = StoredTable.read(source, m.items.embeddings)
    replaced = {m.items.embeddings.file, m.items.embeddings.scales, m.reference.get("top_k")}
    writer = BundleWriter(out, name or Path(out).name)
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
                         reference=reference, data_version=m.data_version)
