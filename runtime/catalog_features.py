"""Derived per-row columns of the catalog: the ranker's integer attributes and categorical codes.

Computed for the rows a request reads (the ranker's pool and history), not for every item; the
bundle's rows are read through the catalog's row readers (column_rows.py), items added on the device
from their metadata. Codes compare equal exactly when the values do, as the features need.
"""

from __future__ import annotations

import numpy as np

from edgerec.runtime.catalog_columns import RowColumn, added_text, stored_median
from edgerec.runtime.column_rows import whole_pass
from edgerec.runtime.features import MODALITIES, ItemTable


def feature_table(cat) -> ItemTable:
    """Integer attributes for ranker features over all rows of `cat` (an ItemCatalog)."""
    n = len(cat)

    def numeric(name, dtype, maximum=None, unknown=0.0):
        values = cat.numeric_rows[name]
        return RowColumn(n, rows_of(cat, lambda r: values[r].astype(dtype),
                                    lambda item: float(item.meta.get(name, 0) or unknown),
                                    lambda k: np.zeros(k, dtype)), maximum)

    popularity = cat.numeric["popularity"]

    # each a pass over the whole column, made only when read (the ranker's scale; an added item's
    # default): built eagerly, they left the column resident wherever the context stage read the table
    def top():
        return np.float32(whole_pass(popularity, popularity.max)) if len(popularity) else np.float32(0)

    # an added item of unknown popularity reads as a typical item, not as the least played one:
    # at 0 the ranker and the scorer put new items below the short list's end for every user
    def typical():
        return cat._cached("popularity median", lambda: float(np.float32(
            whole_pass(popularity, lambda: stored_median(popularity)))) if len(popularity) else 0.0)

    extra = [float(np.float32(a.meta.get("popularity", 0) or typical())) for a in cat.added]
    return ItemTable(
        modality=code_column(cat, "modality", list(MODALITIES)),
        duration=numeric("duration", np.float32),
        popularity=numeric("popularity", np.float32, lambda: np.float32(max([top(), *extra])),
                           typical() if cat.added else 0.0),
        release_ts=numeric("release_ts", np.int64),
        language=code_column(cat, "language"),
        creator=code_column(cat, "creator"),
        series=code_column(cat, "series_id"),
        episode=numeric("episode", np.int64),
    )


def code_column(cat, name: str, fixed: list[str] | None = None) -> RowColumn:
    """Integer codes of a categorical column ('' -> -1): positions in `fixed` when given (other
    values -1), else the bundle's codes, values only added items have numbered after them."""
    _, vocab = cat.categorical[name]
    codes = cat.code_rows[name][0]
    if fixed is not None:
        code_of = {v: i for i, v in enumerate(fixed)}
    else:
        code_of = {v: i for i, v in enumerate(vocab) if v}
        for item in cat.added:  # numbered once per catalog version (the feature table is cached per version)
            code_of.setdefault(added_text(item, name), len(vocab) + len(code_of))
        code_of.pop("", None)
    lut = np.array([code_of.get(v, -1) for v in vocab] + [-1], np.int64)  # code -1 reads the last entry
    return RowColumn(len(cat), rows_of(
        cat, lambda r: lut[codes[r]], lambda item: code_of.get(added_text(item, name), -1),
        lambda k: np.zeros(k, np.int64)))


def rows_of(cat, from_bundle, from_added, empty):
    """rows -> values for a derived column of this catalog version: straight from the bundle's
    columns while no item was added on the device (a request reads ~10 columns: keep it one call)."""
    if not cat.added:
        return from_bundle
    return lambda rows: cat._per_row(rows, from_bundle, from_added, empty)
