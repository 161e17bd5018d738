"""Metadata of the bundle's rows as requests read it: the k results' ids, titles, tags and small
columns, the titles a reason names (tags are read through tag_column.py).

A request reads a few rows, but the rows recur: hub items come back in other users' lists, a
user's history items come back in their reasons (in the 100k bench 88% of the rows a list shows
were shown in the last 4,096 rows). Titles are stored in compressed blocks (format 4 on),
and inflating a block and decoding its row cost more than the rest of the row's metadata, so
each row is decoded once and kept. The bundle's rows never change (an update retires a row and
appends a new one), so nothing kept can go stale; each cache is bounded and starts over when full.
"""

from __future__ import annotations

import numpy as np

from edgerec.runtime.item_spec import NUMERIC_DTYPES

META_CACHE_ROWS = 4_096  # rows whose whole metadata is kept (about 0.5 KB each)
CACHED_READ = 64  # reads of at most this many rows (a list, a reason) are kept; bulk reads are not
# a row's own id, title and tags, and the description a bundle item never has (spec §7b): a categorical or numeric
# column of one of these names is not read into its metadata (a "description" column was read into tag(item_id=...)
# and a "tags" column replaced the row's tags with its value's characters)
ROW_KEYS = frozenset({"item_id", "title", "tags", "description"})


class BundleRows:
    """Decoded metadata of bundle rows, read through the catalog's columns and kept per row."""

    def __init__(self, ids, titles, tags, categorical: dict, vocab_arrays: dict, numeric: dict):
        """tags: a tag_column.TagColumn or TextTags (each row's tags as a tuple)."""
        self.ids, self.titles, self.tag_column = ids, titles, tags
        self.categorical, self.vocab_arrays, self.numeric = categorical, vocab_arrays, numeric
        self._metas: dict[int, dict] = {}  # row -> its meta, tags as a tuple (never handed out)
        self._labels: dict[int, tuple[str, str]] = {}  # row -> (item id, title)

    def label(self, row: int) -> tuple[str, str]:
        """(item id, title) of a row: what a reason names."""
        cached = self._labels.get(row)
        if cached is None:
            if len(self._labels) >= META_CACHE_ROWS:
                self._labels.clear()
            cached = self._labels[row] = (self.ids[row], self.titles[row])
        return cached

    def metas(self, rows: list[int]) -> list[dict]:
        """A new metadata dict per row (the caller may change it); columns are read once for the
        rows not kept yet."""
        kept = self._metas
        found = {row: kept.get(row) for row in rows}
        missing = [row for row, meta in found.items() if meta is None]
        if missing:
            keep = len(rows) <= CACHED_READ  # a bulk read (host tools) is answered, not kept
            read = self._read(missing, keep)
            found.update(read)
            if keep:
                if len(kept) + len(read) > META_CACHE_ROWS:
                    kept.clear()
                kept.update(read)
        return [_fresh(found[row]) for row in rows]

    def _read(self, rows: list[int], keep: bool) -> dict[int, dict]:
        at = np.asarray(rows, np.int64)
        columns = {}
        for name, (codes, _) in self.categorical.items():
            if name not in ROW_KEYS:
                columns[name] = self.vocab_arrays[name][codes[at]].tolist()  # code -1 reads the trailing ''
        for name, values in self.numeric.items():  # stored compactly, read as the spec's dtype
            if name not in ROW_KEYS:
                columns[name] = values[at].astype(NUMERIC_DTYPES.get(name, values.dtype)).tolist()
        out, tags = {}, self.tag_column.tags_many(rows)  # the rows' tags read together
        for position, row in enumerate(rows):
            item_id, title = self.label(row) if keep else (self.ids[row], self.titles[row])
            meta = {"item_id": item_id, "title": title, "tags": tags[position]}
            for name, values in columns.items():
                meta[name] = values[position]
            out[row] = meta
        return out


def _fresh(meta: dict) -> dict:
    out = dict(meta)
    out["tags"] = list(meta["tags"])
    return out
