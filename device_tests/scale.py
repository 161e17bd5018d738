"""A bundle grown to N items, to measure how a device copes with a larger catalog.

The extra rows are perturbed copies of real item vectors (so score
distributions stay realistic), re-quantized like the original table; the
models, the ranking section (scorer, context prior) and the shared space are
the bundle's own, the space's content rows copied with the item rows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError
from edgerec.runtime.bundle import FORMAT_VERSION, Bundle, BundleWriter
from edgerec.runtime.catalog import string_column
from edgerec.runtime.item_spec import (
    ColumnSpec,
    ItemTableSpec,
    TableSpec,
    write_encoder_inputs,
    write_text,
)
from edgerec.runtime.item_table import StoredTable
from edgerec.runtime.tag_column import read_tags


def scaled_bundle(source: Bundle, n_items: int, out: str | Path, seed: int = 0,
                  format_version: int = FORMAT_VERSION) -> Path:
    """Write a copy of `source` whose item table has `n_items` rows (returns the new folder), in
    this edgerec's bundle format or (format_version=2) the older one with wide column dtypes."""
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 1:
        raise ConfigError(f"a grown catalog needs a whole number of items >= 1 (got {n_items!r})")
    out = Path(out)
    m = source.manifest
    rng = np.random.default_rng(seed)
    stored = StoredTable.read(source, m.items.embeddings)
    base = stored.dequantize()
    picks = rng.integers(0, len(base), n_items)
    picks[: min(len(base), n_items)] = np.arange(min(len(base), n_items))  # the real items come first, as they are
    vectors = base[picks] + rng.normal(0, 0.05, (n_items, base.shape[1])).astype(np.float32)
    vectors[: min(len(base), n_items)] = base[: min(len(base), n_items)]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    writer = BundleWriter(out, f"{m.name}-{n_items}", format_version)
    embeddings = TableSpec.from_manifest(StoredTable.quantize(vectors, stored.dtype_name).manifest_entry(writer))
    known = m.items.encoder_inputs
    inputs = source.array(known, mmap=False)[picks] if known else picks + 1  # a copy reads as its original
    # new ids; titles and tags copied with the rows, so the text columns' bytes are a catalog's
    text = {"titles": string_column(source, m.items.strings["titles"]).all(), "tags": read_tags(source).all()}
    strings = {"ids": [f"x{i}" for i in range(n_items)],
               **{name: [values[p] for p in picks.tolist()] for name, values in text.items()}}
    items = ItemTableSpec(
        count=n_items, embeddings=embeddings,
        **write_text(writer, strings),
        categorical={name: ColumnSpec.write_codes(writer, name, c.values(source, name, m.items.count, False)[picks],
                                                  c.vocab) for name, c in m.items.categorical.items()},
        numeric={name: ColumnSpec.write_numeric(writer, name, c.values(source, name, m.items.count, False)[picks])
                 for name, c in m.items.numeric.items()},
        encoder_inputs=write_encoder_inputs(writer, inputs),
    )
    for entry in m.models:
        _copy(source, writer, entry.file)
        writer.models.append(entry)
    for name in _files_in(m.ranking, m.files):  # the scorer's arrays: per feature, not per item
        _copy(source, writer, name)
    space = m.space
    if space:  # the bridges are per space, as they are; the content vectors are per item
        content = space.get("content")
        for name in _files_in(space, m.files) - {content and content["file"]}:
            _copy(source, writer, name)
        if content:
            writer.add_array(content["file"], source.array(content["file"], mmap=False)[picks])
    writer.finish(dim=m.dim, items=items, defaults=m.defaults, metrics={}, budgets=m.budgets, reference={},
                  data_version=m.data_version, ranking=m.ranking, space=space)
    return out


def _copy(source: Bundle, writer: BundleWriter, name: str) -> None:
    shutil.copyfile(source.path(name), writer.file_path(name))
    writer.add_file(name)


def _files_in(section, files: dict) -> set[str]:
    """The bundle files a manifest section names, at any depth."""
    if isinstance(section, dict):
        return set().union(*(_files_in(v, files) for v in section.values()))
    if isinstance(section, list):
        return set().union(*(_files_in(v, files) for v in section))
    return {section} if isinstance(section, str) and section in files else set()

