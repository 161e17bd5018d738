"""Rows of the bundle's fixed-width columns (categorical codes, numbers) read with pread().

Requests read a few rows of these columns at random (the k results' metadata, a history's encoder
inputs). Through the memory map every touched 4 KB page stays in the process's resident memory, and
at a million items a few thousand such reads touch nearly every page: 10.5 MB of the 1M bench's RSS
(measured, issue 19) for columns a request reads ~10 values of. `RowReader` reads the same bytes
through the file instead (a pread per row, in one compiled call where the install built _ids.c),
so they count in the page cache, not in the process; passes over a whole column, and bulk reads,
keep using the map. A big catalog's encoder inputs are read so too, once per event: the user's
window keeps them (catalog.MAPPED_INPUTS, user_state.Window).
"""

from __future__ import annotations

import mmap
import os
import threading
import weakref

import numpy as np

from edgerec.errors import BundleError
from edgerec.runtime.id_index import native_ids

FEW_ROWS = 64  # reads of at most this many rows go through the file (the k results' metadata, a pool's caps)


def file_of(array: np.ndarray) -> tuple[str, int] | None:
    """(path, offset of the first value) when `array` is a whole memory-mapped .npy column, else None."""
    base = array
    while base is not None and not isinstance(base, np.memmap):
        base = getattr(base, "base", None)
    if base is None or getattr(base, "filename", None) is None or base.shape != array.shape:
        return None
    if base.ctypes.data != array.ctypes.data or not array.flags.c_contiguous or array.dtype.byteorder == ">":
        return None
    return str(base.filename), int(base.offset)


class RowReader:
    """column[rows] -> the same values as the array gives (its dtype; negative rows count from the
    end, others out of range raise IndexError), read through the file for memory-mapped columns."""

    def __init__(self, array: np.ndarray):
        self.array = array  # kept: len(), dtype, and the fallback for arrays not in a file
        self.dtype, self._fd, self._at, self._closing = array.dtype, None, 0, None
        # reads and close() take turns: a read of a closed descriptor number could read whatever file
        # the process opened under that number since
        self._lock = threading.Lock()
        found = file_of(array)
        if found is not None and array.ndim == 1 and hasattr(os, "pread"):
            handle = open(found[0], "rb", buffering=0)  # noqa: SIM115 (closed by close() or with the reader)
            self._closing = weakref.finalize(self, handle.close)
            self._fd, self._at = handle.fileno(), found[1]
        self._native = native_ids()  # read_cells: ~0.3 us a row where os.pread costs ~0.8 (measured)

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, rows):
        if self._fd is None:
            return self.array[rows]
        if np.ndim(rows) == 0:  # one row: a scalar, as the array gives
            return self[[rows]][0]
        rows = np.asarray(rows)
        if rows.size == 0 and rows.ndim == 1:  # [] reads as float64: numpy takes it as no rows
            rows = rows.astype(np.intp)
        if rows.dtype.kind not in "iu" or rows.ndim != 1:  # masks, slices, floats: numpy's answer (or error)
            return self.array[rows]
        if len(rows) > FEW_ROWS:  # a bulk read (a host tool, a wide pool): the map's gather, a pread a row
            return self.array[rows]  # costs ~2 us (measured), and such reads are rare
        return self._read_few(rows.tolist())

    def _checked(self, row: int) -> int:
        """`row` as an index from the start (numpy's rules), or IndexError."""
        n = len(self.array)
        if not -n <= row < n:
            raise IndexError(f"index {row} is out of bounds for a column of {n} rows")
        return row + n if row < 0 else row

    def close(self) -> None:
        """Give the file back (Recommender.close()); later reads go through the map."""
        with self._lock:
            self._fd = None
            if self._closing is not None:
                self._closing()

    def _read_few(self, rows: list) -> np.ndarray:
        """A pread per row (random rows rarely share a page), joined in order."""
        size, at, checked = self.dtype.itemsize, self._at, self._checked
        rows = [checked(int(row)) for row in rows]
        with self._lock:
            fd = self._fd
            if fd is None:  # closed meanwhile
                return self.array[rows]
            if self._native is not None and size <= 16:
                data = self._native.read_cells(fd, at, size, rows)
            else:
                got = {row: os.pread(fd, size, at + row * size) for row in set(rows)}
                data = b"".join([got[row] for row in rows])
        if len(data) != size * len(rows):
            self._short(max(rows))
        return np.frombuffer(data, self.dtype).copy()  # writable, as the array's gather is

    @staticmethod
    def _short(row: int):
        raise BundleError(f"a bundle column file ended before row {row}: the bundle changed on disk after it "
                          "was opened; open it again")


def whole_pass(array: np.ndarray, compute):
    """compute() (a pass over every row of `array`), then `release_pages(array)`."""
    try:
        return compute()
    finally:
        release_pages(array)


def release_pages(array: np.ndarray) -> None:
    """Drop a memory-mapped column's pages from the process after a pass over all of it (a prior, a
    median: once per hour or catalog version; its rows are read through the file between the passes).
    MADV_DONTNEED on a read-only file map only unmaps: the pages read back from the file when needed."""
    advise(array, "MADV_DONTNEED")


def advise(array: np.ndarray, advice: str) -> None:
    """madvise(`advice`, a name in the mmap module) on the memory map under `array`; nothing for an array
    that is not one, or where the system has no such advice (it is advice only: the data stays the same)."""
    base = array
    while base is not None and not isinstance(getattr(base, "_mmap", None), mmap.mmap):
        base = getattr(base, "base", None)
    if base is not None and hasattr(mmap, advice):
        try:
            base._mmap.madvise(getattr(mmap, advice))
        except (OSError, ValueError):
            pass


def row_readers(columns: dict) -> dict:
    """{name: RowReader} of {name: array}, or of {name: (array, vocab)} keeping the vocab beside it."""
    return {name: (RowReader(value[0]), value[1]) if isinstance(value, tuple) else RowReader(value)
            for name, value in columns.items()}


def close_readers(readers) -> None:
    """close() each RowReader among `readers` (row_readers' values: readers, or (reader, vocab) pairs)."""
    for reader in readers:
        reader = reader[0] if isinstance(reader, tuple) else reader
        if isinstance(reader, RowReader):
            reader.close()
