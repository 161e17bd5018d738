"""Item id -> row for the bundle's items without a Python object per item.

A dict of a million ids costs about 100 MB; this index holds one 64-bit key
per item: the high bits of a hash of the id (FNV-1a over its UTF-8 bytes)
above the item's row, sorted in place: 8 bytes an item. A lookup hashes the
id, finds its hash bits by binary search and confirms the id's bytes at each
row found (hashes may collide; ids never do, so a lookup never returns a
wrong row). The hashes are computed with numpy
a block of ids at a time, so building it takes a fraction of a second at a
million items and no per-item Python work.
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


def hash_one(data: bytes) -> int:
    """hash_strings of one string, in plain Python (a lookup's cost: a microsecond or two)."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class IdIndex:
    """Rows of a string column's values (the bundle's item ids), found by hash."""

    def __init__(self, column, blocks=None):
        """column: a catalog string column (len, bytes_at(row), chunks()) for the lookups; blocks:
        its strings as (first row, offsets from 0, bytes) blocks to hash (default: read from
        `column`; the checks at open pass blocks read from the files, see file_blocks.py)."""
        self.column = column
        self._recent: dict[str, int | None] = {}  # id -> row (or None), an index never changes
        count = len(column)
        self.row_bits = max(1, int(count).bit_length())
        self.row_mask = np.uint64((1 << self.row_bits) - 1)
        if blocks is None and hasattr(column, "blob"):  # in memory
            keys = hash_strings(column.blob, column.offsets)
        else:
            blocks = column.chunks() if blocks is None else blocks
            keys = np.empty(count, np.uint64)
            for first, bounds, data in blocks:
                keys[first:first + len(bounds) - 1] = hash_block(data, bounds)
        keys >>= np.uint64(self.row_bits)  # becomes (hash high bits | row), in place
        keys <<= np.uint64(self.row_bits)
        keys |= np.arange(count, dtype=np.uint64)
        keys.sort()
        self.keys = keys

    def _prefix(self, key: int) -> int:
        return key >> self.row_bits << self.row_bits

    def get(self, item_id: str) -> int | None:
        """The row of `item_id`, or None when no item has it."""
        return self.get_many([item_id])[0]

    def get_many(self, item_ids: list[str]) -> list[int | None]:
        """Rows of many ids (a history's worth per request): remembered ones from a dict, the rest in
        one binary search."""
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
        prefixes = [self._prefix(hash_one(d)) for d in data]
        found = np.searchsorted(self.keys, np.array(prefixes, np.uint64))
        keys, end, mask = self.keys, len(self.keys), int(self.row_mask)
        firsts = keys[np.minimum(found, end - 1)].tolist() if end else [0] * len(found)
        out = []
        for at, key, prefix, wanted in zip(found.tolist(), firsts, prefixes, data):
            row = None
            while at < end and key & ~mask == prefix:  # almost always one step
                if self.column.bytes_at(key & mask) == wanted:
                    row = key & mask
                    break
                at += 1
                key = int(keys[at]) if at < end else 0
            out.append(row)
        return out

    def duplicate(self) -> int | None:
        """A row whose id another row has as well (ids must be unique), or None."""
        high = self.keys >> np.uint64(self.row_bits)
        same = np.flatnonzero(high[1:] == high[:-1]).tolist()
        del high
        mask = int(self.row_mask)
        for at in same:  # a run of equal hash bits: compare the ids themselves
            end = at + 2
            while end < len(self.keys) and self._prefix(int(self.keys[end])) == self._prefix(int(self.keys[at])):
                end += 1
            rows = [int(k) & mask for k in self.keys[at:end].tolist()]
            values = [self.column.bytes_at(r) for r in rows]
            if len(set(values)) < len(values):
                return rows[max(i for i, v in enumerate(values) if values.index(v) != i)]
        return None

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes)
