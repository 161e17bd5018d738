"""Rewrite a bundle in another format version: the same items, models and references, with the item
columns stored as that version stores them (format 5: tags as integer codes; format 4: text in
compressed blocks; format 3: compact dtypes; format 2: the wide ones).

Used to ship a bundle to devices whose runtime reads only an older format, and to prove that the
compact columns change no list (tests/test_footprint.py records lists from each copy).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgerec.runtime.bundle import FORMAT_VERSION, Bundle, BundleWriter
from edgerec.runtime.catalog import string_column
from edgerec.runtime.item_spec import ColumnSpec, ItemTableSpec, write_encoder_inputs, write_text
from edgerec.runtime.tag_column import read_tags


def convert_bundle(source: str | Path, out: str | Path, format_version: int = FORMAT_VERSION) -> Path:
    """Write `source` as a bundle of `format_version` under `out` (a new folder); returns it."""
    bundle = Bundle.open(source)
    m, items = bundle.manifest, bundle.manifest.items
    writer = BundleWriter(out, m.name, format_version)
    column_files = {name for column in items.columns().values() for name in column.files()}
    column_files.update([items.encoder_inputs, *(items.tags.files() if items.tags else [])])
    for name in m.files:  # models, table, references, content-encoder files: as they are
        if name not in column_files:
            shutil.copyfile(bundle.path(name), writer.file_path(name))
            writer.add_file(name)
    writer.models = list(m.models)
    text = {name: string_column(bundle, column).all() for name, column in items.strings.items()}
    text["tags"] = read_tags(bundle).all()  # codes (format 5) or text, written as the new format stores them
    categorical = {name: ColumnSpec.write_codes(writer, name, column.values(bundle, name, items.count, mmap=False),
                                                column.vocab) for name, column in items.categorical.items()}
    numeric = {name: ColumnSpec.write_numeric(writer, name, column.values(bundle, name, items.count, mmap=False))
               for name, column in items.numeric.items()}
    inputs = None
    if items.encoder_inputs:
        inputs = write_encoder_inputs(writer, bundle.array(items.encoder_inputs, mmap=False), items.encoder_inputs)
    spec = ItemTableSpec(items.count, items.embeddings, categorical=categorical, numeric=numeric,
                         encoder_inputs=inputs, **write_text(writer, text))
    writer.finish(dim=m.dim, items=spec, defaults=m.defaults, metrics=m.metrics, budgets=m.budgets,
                  reference=m.reference, data_version=m.data_version, ranking=m.ranking, space=m.space)
    return Path(out)

