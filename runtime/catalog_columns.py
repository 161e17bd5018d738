"""The catalog's columns as views of the bundle's memory maps: nothing per item in Python objects.

- `StringColumn`: strings as one UTF-8 blob plus offsets, decoded only for the rows asked for
  (text_blocks.BlockStringColumn: the same for columns stored in compressed blocks);
  `FileStringColumn` reads the bundle's files with pread() instead of mapping them.
- `CatalogIds`: item id -> row; the bundle's ids through the hash index of id_index.py, items
  added on the device through a small dict that takes precedence.
- `RowColumn`: a derived per-item attribute (e.g. a ranker feature) computed for the rows asked
  for, so a feature table over a million items costs nothing until a request reads its rows.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
import weakref

import numpy as np

from edgerec.runtime.column_rows import advise
from edgerec.runtime.file_blocks import damaged, npy_header, string_blocks
from edgerec.runtime.id_index import IdIndex, memory_blocks
from edgerec.runtime.text_blocks import BlockStringColumn, read_dictionary

_OFFSET_CODES = {("u", 4): "I", ("i", 4): "i", ("u", 8): "Q", ("i", 8): "q"}  # struct codes of offset dtypes


def random_access(array: np.ndarray) -> np.ndarray:
    """Tell the kernel a memory-mapped column is read at random rows (MADV_RANDOM): a read then
    brings in its own page, not the 128 KB around it, so a request's few rows do not make the
    whole column resident. Arrays that are not memory maps pass through unchanged."""
    advise(array, "MADV_RANDOM")
    return array


class StringColumn:
    """Strings stored as one UTF-8 blob plus offsets (int64 or, in format 3, uint32)."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self.blob, self.offsets = random_access(blob), random_access(offsets)
        self._bytes = memoryview(np.ascontiguousarray(blob)).cast("B")  # slices decode without a copy

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def bytes_at(self, i: int) -> bytes:
        return bytes(self._bytes[int(self.offsets[i]):int(self.offsets[i + 1])])

    def __getitem__(self, i: int) -> str:
        return str(self._bytes[int(self.offsets[i]):int(self.offsets[i + 1])], "utf-8")

    def chunks(self):
        """(first row, offsets from 0, bytes as uint8) blocks of rows, in order (for scans)."""
        return memory_blocks(self.blob, self.offsets)

    def all(self) -> list[str]:
        """Every string (a list as long as the catalog: for host tools and tests, not the request path)."""
        data = bytes(self.blob)
        return [data[a:b].decode("utf-8") for a, b in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist())]


class FileStringColumn:
    """A StringColumn read with pread() from the bundle's blob and offsets files. Ids are read at
    random rows (each event's item, every row a lookup confirms): through memory maps a few
    thousand such reads made both files resident whole (9 MB at a million items, measured), since
    every touched page of a map counts in the process; a read costs two system calls instead."""

    def __init__(self, blob, offsets):
        dtype, shape, self._at = npy_header(offsets)
        code = _OFFSET_CODES.get((dtype.kind, dtype.itemsize))
        if code is None or len(shape) != 1 or shape[0] < 1:
            damaged(offsets.name, f"(string offsets) has dtype {dtype} and shape {shape}; it must hold one row "
                                  "of at least one int32/uint32/int64/uint64 offset")
        self.count, self._width = int(shape[0]) - 1, dtype.itemsize
        self._pair = struct.Struct("<" + 2 * code).unpack  # little-endian: npy_header refuses the other order
        self._layout = (self._width, int(dtype.kind == "i")) if sys.byteorder == "little" else None
        self._paths = (blob, offsets)
        handles = [open(path, "rb", buffering=0) for path in self._paths]
        weakref.finalize(self, lambda: [h.close() for h in handles])
        self._blob, self._offsets = (h.fileno() for h in handles)

    def __len__(self) -> int:
        return self.count

    def bytes_at(self, i: int) -> bytes:
        i = int(i)
        if not 0 <= i < self.count:
            raise IndexError(f"row {i} is outside the column's {self.count} rows")
        start, end = self._pair(os.pread(self._offsets, 2 * self._width, self._at + i * self._width))
        return os.pread(self._blob, end - start, start)

    def __getitem__(self, i: int) -> str:
        return self.bytes_at(i).decode("utf-8")

    def pread_args(self) -> tuple | None:
        """(offsets fd, where the offsets start, offset width, signed, blob fd) for the compiled id
        lookup (id_index.py), which reads little-endian offsets only; None on other layouts."""
        if self._layout is None:
            return None
        return (self._offsets, self._at, *self._layout, self._blob)

    def chunks(self):
        """(first row, offsets from 0, bytes as uint8) blocks of rows, in order (for scans)."""
        return string_blocks(*self._paths)

    def all(self) -> list[str]:
        """Every string (for host tools and tests, not the request path)."""
        return [data[a:b].tobytes().decode("utf-8") for _, bounds, data in self.chunks()
                for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


class CatalogIds:
    """Item id -> row. The bundle's index is built on first use (a fraction of a second at a
    million items); ids added on the device map to their rows in `added`, which wins."""

    def __init__(self, ids: StringColumn, base: IdIndex | None = None):
        self._ids = ids
        self._base = base  # the one the bundle's checks built when it opened, if they did
        self._lock = threading.Lock()
        self.added: dict[str, int] = {}
        self._size: int | None = None  # a view's catalog length (as_of): added rows from it on are not its own

    def as_of(self, size: int) -> CatalogIds:
        """A view of the catalog's first `size` rows, for a snapshot: an id added or taken over by an added
        row later resolves there as before (`added` is shared, and grows). Shares the bundle's index."""
        view = object.__new__(CatalogIds)
        view.__dict__.update(self.__dict__, _base=self.base, _size=size)
        return view

    def _own(self, row: int | None) -> int | None:
        return row if row is None or self._size is None or row < self._size else None

    @property
    def base(self) -> IdIndex:
        with self._lock:
            if self._base is None:
                self._base = IdIndex(self._ids)
            return self._base

    def get(self, item_id: str, default=None):
        row = self._own(self.added.get(item_id))
        if row is None and isinstance(item_id, str):
            row = self.base.get(item_id)
        return default if row is None else row

    def get_many(self, item_ids: list[str]) -> list[int | None]:
        """Rows of many ids at once (None for unknown ones): one search for the bundle's ids."""
        added = self.added
        rows = [self._own(added.get(i)) for i in item_ids] if added else [None] * len(item_ids)  # (none added: faster)
        missing = [k for k, row in enumerate(rows) if row is None and isinstance(item_ids[k], str)]
        for k, row in zip(missing, self.base.get_many([item_ids[k] for k in missing])):
            rows[k] = row
        return rows

    def bundle_row(self, item_id: str) -> int | None:
        """The bundle row of an id (even when an added item took the id over), or None."""
        return self.base.get(item_id)

    def __getitem__(self, item_id: str) -> int:
        row = self.get(item_id)
        if row is None:
            raise KeyError(item_id)
        return row

    def __contains__(self, item_id) -> bool:
        return self.get(item_id) is not None

    @property
    def nbytes(self) -> int:
        return self._base.nbytes if self._base is not None else 0


class RowColumn:
    """A per-row attribute computed on demand: column[rows] -> array, len(), max()."""

    def __init__(self, count: int, values_of, maximum=None):
        self.count, self.values_of, self._maximum = count, values_of, maximum

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, rows) -> np.ndarray:
        return self.values_of(np.asarray(rows, np.int64).reshape(-1))

    def max(self):
        return self._maximum() if self._maximum is not None else self[np.arange(self.count)].max()


def stored_median(values: np.ndarray) -> float:
    """np.median(values.astype(np.float64)) without the float64 copy of the column (16 bytes an
    item at the peak at a million items): the order statistics of the stored dtype are those of
    its float64 values (the conversion is exact and keeps the order), so the partition runs on a
    copy in the stored dtype and only the middle values are widened, then averaged as np.median does."""
    n = len(values)
    middle = [n // 2 - 1, n // 2] if n % 2 == 0 else [n // 2]
    inexact = values.dtype.kind == "f"
    part = np.partition(values, middle + [n - 1] if inexact else middle)
    if inexact and np.isnan(part[n - 1]):  # NaN sorts last: np.median gives NaN when any value is
        return float("nan")
    return float(np.mean(part[middle].astype(np.float64)))


def string_column(bundle, column) -> FileStringColumn | BlockStringColumn:
    """A string column read from the bundle's files for the rows asked for (never mapped whole)."""
    if column.codec:  # compressed blocks (format 4): the block starts are small, read into memory
        return BlockStringColumn(bundle.path(column.file), bundle.array(column.offsets, mmap=False),
                                 bundle.manifest.items.count, column.block_rows, read_dictionary(bundle, column),
                                 column.raw_bytes)
    return FileStringColumn(bundle.path(column.file), bundle.path(column.offsets))


def one_of(values: np.ndarray, wanted: list[int]) -> np.ndarray:
    """values equal to any of `wanted`; a few comparisons beat np.isin, which sorts on every call."""
    if len(wanted) > 4:
        return np.isin(values, wanted)
    out = np.zeros(len(values), bool)
    for code in wanted:
        out |= values == code
    return out


def added_text(item, name: str) -> str:
    """An added item's categorical value; None (add_items keeps it) is none, '', as a missing one is."""
    return str(item.meta.get(name) or "")
