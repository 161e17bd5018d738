"""The item side on the device: the bundle's item table plus on-device additions and removals.

The bundle's int8 (or fp16) table is memory-mapped and never copied. Items added on the device
live in a small float32 table appended after it; removed items are masked. Metadata columns stay
in the bundle's memory maps in their stored (compact) dtypes and are read for the rows a request
asks for; ids are found through a hash index (catalog_columns.py), never a dict of every id, so
nothing in Python objects grows with the catalog.

Updates never change a list or array a reader may hold: they build new ones and swap them in under
the lock, so `snapshot()` gives a request one consistent view while add_items/remove_items run in
another thread.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from edgerec.errors import ConfigError, UnknownIdError
from edgerec.runtime import catalog_features, column_rows
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog_columns import (  # string_column: imported from here by host tools
    CatalogIds,
    RowColumn,
    added_text,
    one_of,
    random_access,
    stored_median,
    string_column,
)
from edgerec.runtime.features import ItemTable
from edgerec.runtime.item_meta import BundleRows
from edgerec.runtime.item_table import StoredTable
from edgerec.runtime.tag_column import read_tags

# A history's first read takes 30 to 50 inputs: 4 us through the map, 25 to 50 through the file (a pread
# each, measured). A column of at most this many bytes stays on the map (all its pages resident cost at
# most that: 100k int16 inputs, 0.2 MB); past it the file (a million items' 2 MB stayed resident).
MAPPED_INPUTS = 1 << 20


@dataclass
class AddedItem:
    item_id: str
    vector: np.ndarray  # float32, L2-normalised, in the bundle's space
    meta: dict = field(default_factory=dict)  # title, tags, genre, modality, language, creator, ...


class ItemCatalog:
    """Rows 0..n-1: the bundle's items; rows n..: items added on the device."""

    def __init__(self, bundle: Bundle):
        spec = bundle.manifest.items  # checked against the schema and its arrays when the bundle opened
        self.bundle = bundle
        self.stored = StoredTable.read(bundle, spec.embeddings)
        self.table = self.stored.values
        self.base_count = spec.count
        checked = getattr(bundle, "id_index", None)  # built by the checks at open, with its column's maps
        self.ids = checked.column if checked is not None else string_column(bundle, spec.strings["ids"])
        self.titles = string_column(bundle, spec.strings["titles"])
        self.tag_column = read_tags(bundle)  # codes (format 5) or text, read alike
        self.categorical = {k: (random_access(c.values(bundle, k, spec.count)), list(c.vocab)) for k, c in spec.categorical.items()}
        self._vocab_arrays = {k: np.asarray(vocab + [""], dtype=object) for k, (_, vocab) in self.categorical.items()}
        self.numeric = {k: random_access(c.values(bundle, k, spec.count)) for k, c in spec.numeric.items()}
        # Which user-encoder input each item is (default: row + 1, 0 being padding); a bundle
        # whose catalog outgrew its model maps the newer items onto inputs the model knows.
        self.input_map = random_access(bundle.array(spec.encoder_inputs)) if spec.encoder_inputs else None
        inputs = self.input_map
        self._input_rows = column_rows.RowReader(inputs) if inputs is not None and inputs.nbytes > MAPPED_INPUTS else inputs
        # rows read at random go through the files (column_rows.py); whole passes read the maps above
        self.code_rows, self.numeric_rows = column_rows.row_readers(self.categorical), column_rows.row_readers(self.numeric)
        self.rows = BundleRows(self.ids, self.titles, self.tag_column, self.code_rows, self._vocab_arrays,
                               self.numeric_rows)  # their decoded metadata, kept for the rows that recur
        self._derived: dict[str, tuple] = {}  # name -> (version, value); shared with every snapshot
        self.added: list[AddedItem] = []
        # a flag per bundle row once one is retired; None till then: made up front, its 1 MB at a
        # million items was resident in every process (every page, measured after open)
        self.removed: np.ndarray | None = None
        self._index = CatalogIds(self.ids, checked)
        self._lock = threading.RLock()
        self.version = 0  # bumps on every change, so derived structures know to rebuild

    # ---------------------------------------------------------- identity

    def encoder_inputs(self, rows: list[int]) -> np.ndarray:
        """User-encoder inputs of a history: bundle rows, and an added item that took over a bundle id reads
        that row's (spec §3); other added items have no model input."""
        rows = self._model_rows(rows)
        rows = rows[rows >= 0]
        return self.input_map[rows].astype(np.int64) if self.input_map is not None else rows + 1

    def input_rows(self, rows) -> np.ndarray:
        """encoder_inputs row by row, -1 for a row without one (rows -1 too): a history's new events,
        kept in its window (user_state.py). Past MAPPED_INPUTS, few rows are read through the file and
        many (a long history's first read) through the map, its pages given back after: random rows
        left them resident."""
        rows = self._model_rows(rows)
        known = rows >= 0
        if self.input_map is None:
            return np.where(known, rows + 1, -1)
        if known.all():  # the usual case: one gather, no mask
            out = self._input_rows[rows].astype(np.int64)
        else:
            out = np.full(len(rows), -1, np.int64)
            out[known] = self._input_rows[rows[known]]
        if known.sum() > column_rows.FEW_ROWS and self._input_rows is not self.input_map:  # the reader used the map
            column_rows.release_pages(self.input_map)
        return out

    @property
    def window_inputs(self):
        """input_rows when a user's window should keep its events' inputs (the column is read through
        the file, past MAPPED_INPUTS), else None: through the map an encode's gather costs less than
        keeping them (measured: +25 us on a user's first request at 100k items)."""
        return self.input_rows if self._input_rows is not self.input_map else None

    def _model_rows(self, rows) -> np.ndarray:
        """Rows whose encoder input each row takes: its own, a taken-over bundle row's, or -1."""
        rows = np.array(rows, np.int64).reshape(-1)
        added = rows >= self.base_count if self.added else None
        if added is not None and added.any():
            taken = [self.index.bundle_row(self.added[r].item_id) for r in (rows[added] - self.base_count).tolist()]
            rows[added] = [-1 if row is None else row for row in taken]
        return rows

    def close(self) -> None:
        """Give back the column files (Recommender.close()); reads after it go through the maps."""
        column_rows.close_readers([*self.code_rows.values(), *self.numeric_rows.values(), self._input_rows])

    def __len__(self) -> int:
        return self.base_count + len(self.added)

    @property
    def index(self) -> CatalogIds:
        """External id -> row (`get`, `[]`, `in`); the bundle's part is a hash index built on first use."""
        return self._index

    def row(self, item_id: str) -> int:
        row = self.index.get(item_id) if isinstance(item_id, str) else None
        if row is None or not self.is_active(row):
            raise UnknownIdError(f"unknown item {item_id!r}: it is not in the bundle's catalog (or was removed); "
                                 "add it with add_items() first")
        return row

    def item_id(self, row: int) -> str:
        return self.ids[row] if self._checked(row) < self.base_count else self.added[row - self.base_count].item_id

    def title(self, row: int) -> str:
        return self.titles[row] if self._checked(row) < self.base_count else str(self.added[row - self.base_count].meta.get("title", ""))

    def _checked(self, row: int) -> int:  # methods of one row refuse a number that is no row
        if 0 <= row < self.base_count + len(self.added):
            return row
        raise ConfigError(f"row {row} is not one of this catalog's {len(self)} rows: take rows from catalog.row(item_id)")

    def is_active(self, row: int) -> bool:
        if 0 <= row < self.base_count:  # False for a number that is no row, as for a removed item
            return self.removed is None or not self.removed[row]
        return 0 <= row - self.base_count < len(self.added) and self.added[row - self.base_count].vector is not None

    # ---------------------------------------------------------- vectors

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """Float32 vectors of some rows (dequantized); zeros for a removed added item, as in
        added_matrix (a history keeps its rows: a None here read as NaN and emptied the list)."""
        if not self.added:  # the usual case, without _per_row's closures
            return self.stored.dequantize(np.asarray(rows, np.int64))
        return self._per_row(rows, self.stored.dequantize, lambda item: item.vector if item.vector is not None else 0.0,
                             lambda n: np.zeros((n, self.table.shape[1]), np.float32))

    def _per_row(self, rows, from_bundle, from_added, empty) -> np.ndarray:
        """A value per row, rows unchecked (a pool's, a history's): bundle rows in one vectorised call, added ones one by one."""
        rows = np.asarray(rows, np.int64)
        if not self.added or not len(rows) or rows.max() < self.base_count:  # the usual case
            return from_bundle(rows)
        out = empty(len(rows))
        base = rows < self.base_count
        if base.any():
            out[base] = from_bundle(rows[base])
        for i in np.flatnonzero(~base):
            out[i] = from_added(self.added[rows[i] - self.base_count])
        return out

    def added_matrix(self) -> np.ndarray:
        if not self.added:
            return np.zeros((0, self.table.shape[1]), np.float32)
        return self._cached("added", lambda: np.stack([
            a.vector if a.vector is not None else np.zeros(self.table.shape[1], np.float32) for a in self.added]))

    def _cached(self, name: str, build):
        """A value derived from this catalog version, built once and shared with every snapshot."""
        cached = self._derived.get(name)
        if cached is None or cached[0] != (self.version, len(self)):
            cached = self._derived[name] = ((self.version, len(self)), build())
        return cached[1]

    def inactive_rows(self) -> np.ndarray:
        """Rows removed from the catalog (few, so requests mask them without a pass over all rows)."""
        return self._cached("inactive", lambda: np.r_[
            np.flatnonzero(self.removed) if self.removed is not None else np.zeros(0, np.int64),
            self.base_count + np.flatnonzero([a.vector is None for a in self.added])].astype(np.int64))

    # ---------------------------------------------------------- metadata

    def meta(self, row: int) -> dict:
        return self.metas([row])[0]

    def metas(self, rows) -> list[dict]:
        """New metadata dicts of some rows (a list's worth per request: bundle rows are kept decoded)."""
        rows = [int(r) for r in rows]
        base = self.rows.metas([r for r in rows if self._checked(r) < self.base_count])
        if len(base) == len(rows):  # the usual case: no added item among them
            return base
        base, out = iter(base), []
        for row in rows:
            item = self.added[row - self.base_count] if row >= self.base_count else None
            out.append(next(base) if item is None else {"item_id": item.item_id, **item.meta})
        return out

    def label(self, row: int) -> tuple[str, str]:  # (item id, title)
        return self.rows.label(row) if self._checked(row) < self.base_count else (self.item_id(row), self.title(row))

    def tags(self, row: int) -> list[str]:
        return list(self._tag_tuple(self._checked(row)))

    def tag_counts(self, rows: list[int]) -> Counter:
        """How often each tag occurs among some rows (a user's recent items)."""
        if not self.added or all(row < self.base_count for row in rows):
            return self.tag_column.counts(rows)
        return Counter(chain.from_iterable(self._tag_tuple(row) for row in rows))

    def _tag_tuple(self, row: int) -> tuple[str, ...]:
        if row >= self.base_count:
            return tuple(self.added[row - self.base_count].meta.get("tags", []))
        return self.tag_column.tags(row)

    def column(self, name: str, rows: np.ndarray) -> np.ndarray:
        """A categorical column as strings for some rows (bundle and added items alike)."""
        codes, vocab = self.code_rows[name][0], self._vocab_arrays[name]  # code -1 (none) reads its trailing ''
        return self._per_row(rows, lambda r: vocab[codes[r]], lambda item: added_text(item, name),
                             lambda n: np.empty(n, dtype=object))

    def matches(self, name: str, rows: np.ndarray | None, values) -> np.ndarray:
        """True where a categorical column is one of `values` (compares integer codes, not strings);
        rows None: every row."""
        codes, vocab = self.categorical[name]
        wanted = set(values)
        wanted_codes = [i for i, v in enumerate(vocab) if v in wanted]
        if rows is None:  # every row: the codes as stored, without a gather
            added = [added_text(item, name) in wanted for item in self.added]
            return np.r_[one_of(codes, wanted_codes), np.array(added, bool)]
        codes = self.code_rows[name][0]
        return self._per_row(rows, lambda r: one_of(codes[r], wanted_codes),
                             lambda item: added_text(item, name) in wanted, lambda n: np.zeros(n, bool))

    def numeric_column(self, name: str, rows: np.ndarray) -> np.ndarray:
        values = self.numeric_rows[name]
        return self._per_row(rows, lambda r: values[r].astype(np.float64),
                             lambda item: float(item.meta.get(name, 0) or 0), lambda n: np.zeros(n, np.float64))

    def hubness(self, rows: np.ndarray) -> np.ndarray:
        """Each row's hubness (models/hubness.py); items added on the device take the bundle's median."""
        values = self.numeric.get("hubness")
        if values is None:
            raise ConfigError("this bundle has no hubness column (exported before it existed, or with "
                              "ExportConfig(hubness=False)): re-export it, or leave Policy.hub_penalty at 0")
        median = self._cached("hubness median", lambda: column_rows.whole_pass(values, lambda: stored_median(values))
                              if len(values) else 0.0) if self.added else 0.0  # for added items only
        rows_of = self.numeric_rows["hubness"]
        return self._per_row(rows, lambda r: rows_of[r].astype(np.float64), lambda _item: median, np.zeros)

    def feature_table(self) -> ItemTable:
        """Integer attributes for ranker features over all rows (built per catalog version)."""
        return self._cached("features", lambda: catalog_features.feature_table(self))

    def code_column(self, name: str, fixed: list[str] | None = None) -> RowColumn:
        """Integer codes of a categorical column for the rows asked for (catalog_features.py)."""
        return catalog_features.code_column(self, name, fixed)

    # ---------------------------------------------------------- updates

    def snapshot(self) -> ItemCatalog:
        """A view of the catalog as it is now, for one request; later updates do not reach it."""
        with self._lock:
            view = copy.copy(self)
            view._index = self._index.as_of(len(self))  # ids the catalog adds or takes over later are not its
            return view

    def __copy__(self) -> ItemCatalog:
        """A shallow copy (every request takes one): the fields as they are, without copy's protocol."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def add(self, item: AddedItem) -> int:
        """Add an item, or update one added earlier; a bundle item of that id is an error (see replace)."""
        with self._lock:
            return self._add([item], takes_over=False)[0]

    def replace(self, item: AddedItem) -> int:
        return self.replace_many([item])[0]

    def replace_many(self, items: list[AddedItem]) -> list[int]:
        """Add or update items; a bundle item of the same id is retired and the new one takes its id."""
        with self._lock:
            taken = [row for row in map(self.index.get, (item.item_id for item in items))
                     if row is not None and row < self.base_count]
            if taken:
                self._retire(taken)
            return self._add(items, takes_over=True)

    def _add(self, items: list[AddedItem], takes_over: bool) -> list[int]:
        # one new list a call (snapshots keep reading the old one): a copy per item made big batches quadratic
        ids, added, rows = self.index, list(self.added), []
        for item in items:
            row = ids.added.get(item.item_id)
            if row is not None:
                added[row - self.base_count] = item
            elif not takes_over and ids.bundle_row(item.item_id) is not None:
                raise UnknownIdError(f"item {item.item_id!r} is in the bundle already; use update_items()")
            else:
                added.append(item)
                row = ids.added[item.item_id] = self.base_count + len(added) - 1
            rows.append(row)
        self.added = added
        self.version += 1
        return rows

    def remove(self, item_id: str) -> None:
        with self._lock:
            row = self.row(item_id)
            if row < self.base_count:
                self._retire(row)
            else:
                added = list(self.added)
                gone = added[row - self.base_count]
                added[row - self.base_count] = AddedItem(gone.item_id, None, gone.meta)
                self.added = added
            self.version += 1

    def _retire(self, rows) -> None:
        removed = np.zeros(self.base_count, bool) if self.removed is None else self.removed.copy()
        removed[rows] = True
        self.removed = removed
