"""Item id -> row for the bundle's items without a Python object per item.

A dict of a million ids costs about 100 MB; this index holds one 32-bit entry
per item (a fingerprint of the id's hash, FNV-1a over its UTF-8 bytes, above
the item's row) in buckets of 16 to 32 by the hash's top bits: 4.1 to 4.25 bytes
an item. A lookup hashes the id and confirms the id's bytes at each row of its
bucket with its fingerprint (hashes may collide; ids never do, so a lookup
never returns a wrong row). The hashes are computed with numpy
a block of ids at a time, so building it takes a fraction of a second at a
million items and no per-item Python work. Lookups run in C (runtime/_ids.c) when the install
built it and the ids are read from files (a user's first request looks up ~30 ids: about 5 us an
id in Python, 1 to 2 in C, most of it the two reads that confirm the id), else in Python.
"""

from __future__ import annotations

import numpy as np

FNV_BASIS = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
BLOCK = 1 << 13  # ids hashed per numpy pass (bounds the scratch memory: ~0.5 MB)
RECENT_IDS = 16_384  # looked-up ids remembered (~2 MB at most): requests re-read their histories' ids


def hash_block(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """FNV-1a 64 of each string data[offsets[i]:offsets[i + 1]] (uint64, wrapping arithmetic)."""
    at = np.asarray(offsets, np.int64)
    lengths, at = np.diff(at), at[:-1].copy()  # `at` walks along each string, a byte per step
    h = np.full(len(at), FNV_BASIS, np.uint64)
    shortest, longest = (int(lengths.min()), int(lengths.max())) if len(lengths) else (0, 0)
    for j in range(longest):
        if j < shortest:  # every string of the block has a byte here
            h ^= data[at]
            h *= FNV_PRIME
        else:
            live = np.flatnonzero(lengths > j)
            h[live] = (h[live] ^ data[at[live]]) * FNV_PRIME
        at += 1
    return h


def memory_blocks(blob: np.ndarray, offsets: np.ndarray):
    """string_blocks (file_blocks.py) over arrays already in memory."""
    n = len(offsets) - 1
    for first in range(0, n, BLOCK):
        bounds = np.asarray(offsets[first:first + BLOCK + 1], np.int64)
        yield first, bounds - bounds[0], blob[int(bounds[0]):int(bounds[-1])]


def hash_strings(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """FNV-1a 64 of each string blob[offsets[i]:offsets[i + 1]]."""
    out = np.empty(max(len(offsets) - 1, 0), np.uint64)
    for first, bounds, data in memory_blocks(blob, offsets):
        out[first:first + len(bounds) - 1] = hash_block(data, bounds)
    return out


def native_ids():
    """The compiled lookup module, or None when this install was built without a C compiler."""
    try:
        from edgerec.runtime import _ids
    except ImportError:
        return None
    return _ids


def hash_one(data: bytes) -> int:
    """hash_strings of one string, in plain Python (a lookup's cost: a microsecond or two)."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class IdIndex:
    """Rows of a string column's values (the bundle's item ids), found by hash.

    The rows are grouped in buckets by the hash's top bits (about 16 to 32 rows a bucket, `starts`
    gives each bucket's first entry) and each entry is one 32-bit word: a fingerprint of the next
    hash bits above the row (64-bit words past 2^28 items). 4.1 to 4.25 bytes an item, where a sorted
    64-bit key per item took 8; a lookup reads the ids of the few entries whose fingerprint matches.
    Buckets of 4 to 8 cost 0.4 MB more at a million items for nothing a lookup can measure: its two
    reads take ~1.5 us, comparing 24 words instead of 6 a few ns, and a false match of the 12-bit
    fingerprint (an extra read) stays under 1 lookup in 100."""

    def __init__(self, column, blocks=None):
        """column: a catalog string column (len, bytes_at(row), chunks()) for the lookups; blocks:
        its strings as (first row, offsets from 0, bytes) blocks to hash (default: read from
        `column`; the checks at open pass blocks read from the files, see file_blocks.py)."""
        self.column = column
        self._recent: dict[str, int | None] = {}  # id -> row (or None), an index never changes
        count = len(column)
        self.row_bits = max(1, int(count).bit_length())
        self.bucket_bits = max(0, self.row_bits - 5)
        width = 32 if self.row_bits <= 28 else 64
        self.fp_bits = min(width - self.row_bits, 64 - self.row_bits - self.bucket_bits)
        self._shift = 64 - self.bucket_bits - self.fp_bits  # hash bits below bucket and fingerprint go
        keys = np.empty(count, np.uint64)  # (bucket | fingerprint | row), sorted: a build-time scratch
        if blocks is None and hasattr(column, "blob"):  # in memory
            keys[:] = hash_strings(column.blob, column.offsets)
            keys >>= np.uint64(self._shift)
            keys <<= np.uint64(self.row_bits)
            for first in range(0, count, BLOCK):  # the rows, without a catalog-long arange
                keys[first:first + BLOCK] |= np.arange(first, min(first + BLOCK, count), dtype=np.uint64)
        else:
            for first, bounds, data in (column.chunks() if blocks is None else blocks):
                rows = np.arange(first, first + len(bounds) - 1, dtype=np.uint64)
                keys[first:first + len(rows)] = hash_block(data, bounds) >> np.uint64(self._shift) \
                    << np.uint64(self.row_bits) | rows
        keys.sort()
        low = self.fp_bits + self.row_bits
        firsts = np.arange(1 << self.bucket_bits, dtype=np.uint64) << np.uint64(low)  # each bucket's least key
        self.starts = np.r_[np.searchsorted(keys, firsts), count].astype(np.uint32 if count < 1 << 32 else np.uint64)
        keys &= np.uint64((1 << low) - 1)
        self.entries = keys.astype(np.uint32 if width == 32 else np.uint64)
        self._find = self._native_find()

    def _native_find(self):
        """find(list of id bytes) -> rows, in C, or None: the column must be read from files
        (pread_args) and the index's words 32-bit."""
        native, files = native_ids(), getattr(self.column, "pread_args", lambda: None)()
        if native is None or files is None or self.entries.dtype != np.uint32 or self.starts.dtype != np.uint32:
            return None
        entries, starts, layout = self.entries, self.starts, (self.row_bits, self.fp_bits, self._shift, *files)
        return lambda data: native.find(entries, starts, data, *layout)

    def _split(self, data: bytes) -> tuple[int, int]:
        """(bucket, fingerprint) of an id's bytes."""
        h = hash_one(data) >> self._shift
        return h >> self.fp_bits, h & ((1 << self.fp_bits) - 1)

    def get(self, item_id: str) -> int | None:
        """The row of `item_id`, or None when no item has it."""
        return self.get_many([item_id])[0]

    def get_many(self, item_ids: list[str]) -> list[int | None]:
        """Rows of many ids (a history's worth per request): remembered ones from a dict, the rest
        searched."""
        recent = self._recent
        rows = [recent.get(i, -1) for i in item_ids]
        todo = [k for k, row in enumerate(rows) if row == -1]
        if todo:
            found = self._search([item_ids[k] for k in todo])
            if len(recent) + len(found) > RECENT_IDS:  # bounded: start over rather than track ages
                recent.clear()
            for k, row in zip(todo, found):
                rows[k] = recent[item_ids[k]] = row
        return rows

    def _search(self, item_ids: list[str]) -> list[int | None]:
        data = [i.encode("utf-8", "surrogatepass") for i in item_ids]  # a lone surrogate: no valid id matches
        if self._find is not None:
            return self._find(data)
        split = [self._split(d) for d in data]
        buckets = np.array([b for b, _ in split], np.int64)
        los, his = self.starts[buckets].tolist(), self.starts[buckets + 1].tolist()
        mask, out = (1 << self.row_bits) - 1, []
        for (_, fp), lo, hi, wanted in zip(split, los, his, data):
            row = None
            for entry in self.entries[lo:hi].tolist():  # 16 to 32 entries; the fingerprint spares reads
                if entry >> self.row_bits == fp and self.column.bytes_at(entry & mask) == wanted:
                    row = entry & mask
                    break
            out.append(row)
        return out

    def duplicate(self) -> int | None:
        """A row whose id another row has as well (ids must be unique), or None. Equal ids share a
        bucket and a fingerprint, so they sit in one run of equal entries: only those ids are read."""
        mask, entries, starts = (1 << self.row_bits) - 1, self.entries, self.starts
        done = -1
        for first in range(0, len(entries), 8 * BLOCK):
            part = entries[first:first + 8 * BLOCK + 1] >> self.row_bits
            at = first + np.flatnonzero(part[1:] == part[:-1])
            bucket_end = starts[np.searchsorted(starts, at, "right")]  # the next bucket's first entry
            inside = at + 1 < bucket_end
            for start, stop in zip(at[inside].tolist(), bucket_end[inside].tolist()):
                if start < done:
                    continue  # inside a run read already
                run = (entries[start:stop] >> self.row_bits).tolist()  # the rest of the bucket: a few entries
                end = start + next((k for k, f in enumerate(run) if f != run[0]), len(run))
                done = end
                rows = [e & mask for e in entries[start:end].tolist()]
                values = [self.column.bytes_at(r) for r in rows]
                if len(set(values)) < len(values):
                    return rows[max(i for i, v in enumerate(values) if values.index(v) != i)]
        return None

    @property
    def nbytes(self) -> int:
        return int(self.entries.nbytes + self.starts.nbytes)
