"""The items' tags: stored as integer codes (bundle format 5) or as text (formats 2 to 4), read alike.

Every request reads tags: the tag profile of the user's recent items, the matched tags of its
reasons, the scorer's tag match, onboarding by tag. Stored as text (`"a|b|c"` a row, in compressed
blocks in format 4), a user's first request inflated a dozen blocks and split every row. Format 5
stores the distinct tags once (`vocab`, in the manifest) and every row's tags as codes into it, one
row after another (CSR): row r's tags are `vocab[codes[offsets[r]:offsets[r + 1]]]`, in the item's
order, repeats kept. `codes` is uint8/uint16/uint32 (the narrowest that holds len(vocab) - 1),
`offsets` count + 1 uint32 (int64 past 4G codes) rising from 0 to len(codes).

`TagColumn` (format 5) and `TextTags` (older formats) answer the same questions: a row's tags
(read from the files when first asked for, then kept), the tag counts of some rows in first-seen
order, which rows carry one of some tags (a pass over the column with file reads).
"""

from __future__ import annotations

import os
import struct
import sys
import weakref
from collections import Counter
from dataclasses import dataclass
from itertools import chain

import numpy as np

from edgerec.runtime.catalog_columns import string_column
from edgerec.runtime.file_blocks import array_stats, damaged, npy_blocks, npy_header
from edgerec.runtime.id_index import native_ids

TAGS_FORMAT = 5  # the first bundle format whose tags are codes
OFFSET_DTYPES = (np.uint32, np.int64)
TAG_CODE_DTYPES = (np.uint8, np.uint16, np.uint32)
SCAN_ROWS = 1 << 16  # rows a scan of the whole column reads at once (file reads, not the map)
KEPT_ROWS = 50_000  # decoded tag lists kept (a few MB at most)


def split_tags(text: str) -> tuple[str, ...]:
    """A text row's tags: split at `|`, empty parts dropped, in order (spec/README.md rule 8)."""
    return tuple(t for t in text.split("|") if t)


@dataclass(frozen=True)
class TagSpec:
    """The manifest's `items.tags` (format 5)."""

    offsets: str
    codes: str
    vocab: tuple[str, ...]

    @classmethod
    def from_manifest(cls, raw: dict) -> TagSpec:
        return cls(raw["offsets"], raw["codes"], tuple(raw["vocab"]))

    def to_manifest(self) -> dict:
        return {"offsets": self.offsets, "codes": self.codes, "vocab": list(self.vocab)}

    def files(self) -> list[str]:
        return [self.offsets, self.codes]

    @classmethod
    def write(cls, writer, texts: list[str], stem: str = "items/tags") -> TagSpec:
        """Each item's `|`-joined tags as codes into the sorted distinct tags."""
        rows = [split_tags(t) for t in texts]
        vocab = sorted(set(chain.from_iterable(rows)))
        code_of = {t: i for i, t in enumerate(vocab)}
        dtype = next(t for t in TAG_CODE_DTYPES if len(vocab) <= int(np.iinfo(t).max) + 1)
        codes = np.fromiter((code_of[t] for t in chain.from_iterable(rows)), dtype)
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum([len(r) for r in rows], out=offsets[1:])
        offsets = offsets.astype(np.uint32) if offsets[-1] < 2**32 else offsets
        return cls(writer.add_array(f"{stem}.offsets.npy", offsets), writer.add_array(f"{stem}.codes.npy", codes),
                   tuple(vocab))

    def check(self, bundle, count: int) -> None:
        """The rules the schema cannot state, read with file reads (nothing mapped): offsets rising
        from 0 to the number of codes, every code inside the vocabulary, a vocabulary of distinct tags."""
        if len(set(self.vocab)) != len(self.vocab) or any("|" in t for t in self.vocab):
            damaged("manifest.json", "(items.tags.vocab) must hold distinct tags without '|'")
        dtype, shape, _ = npy_header(bundle.path(self.codes))
        if dtype not in TAG_CODE_DTYPES or len(shape) != 1:
            damaged(self.codes, f"(tag codes) must be one row of {'/'.join(np.dtype(t).name for t in TAG_CODE_DTYPES)} "
                                f"codes; it has dtype {dtype} and shape {shape}")
        if shape[0] and array_stats(bundle.path(self.codes))["max"] >= len(self.vocab):
            damaged(self.codes, f"(tag codes) holds a code outside the vocabulary of {len(self.vocab)} tags")
        kind, rows, _ = npy_header(bundle.path(self.offsets))
        stats = array_stats(bundle.path(self.offsets))
        if kind not in OFFSET_DTYPES or rows != (count + 1,) or stats["first"] != 0 or stats["last"] != shape[0] \
                or stats["falls"]:
            damaged(self.offsets, f"(tag offsets) must hold {count + 1} uint32/int64 offsets rising from 0 to "
                                  f"the {shape[0]} codes")


class KeptTags:
    """A row's tags decoded once and kept (the tags of a user's recent items are read by every
    request of the user; at most KEPT_ROWS rows, then it starts over); subclasses read a row."""

    def __init__(self):
        self._kept: dict[int, tuple[str, ...]] = {}

    def _read(self, row: int) -> tuple[str, ...]:
        raise NotImplementedError

    def tags(self, row: int) -> tuple[str, ...]:
        kept = self._kept.get(row)
        if kept is None:
            if len(self._kept) >= KEPT_ROWS:
                self._kept.clear()
            kept = self._kept[row] = self._read(row)
        return kept

    def _read_many(self, rows: list[int]) -> list[tuple[str, ...]]:
        return [self._read(row) for row in rows]

    def tags_many(self, rows) -> list[tuple[str, ...]]:
        """The tags of each of `rows`; the rows not kept yet are read together (_read_many: one
        compiled call for codes) and kept, unless they alone would fill the cache (a bulk read)."""
        kept = self._kept
        missing = list(dict.fromkeys(row for row in rows if row not in kept))
        if not missing:
            return [kept[row] for row in rows]
        read = dict(zip(missing, self._read_many(missing)))
        if len(read) <= KEPT_ROWS:
            if len(kept) + len(read) > KEPT_ROWS:
                kept.clear()
            kept.update(read)
        return [read[row] if row in read else kept[row] for row in rows]

    def counts(self, rows) -> Counter:
        """How often each tag occurs among `rows`, counted in the rows' order (Counter keeps the
        order a tag is first seen in, which breaks the profile's ties)."""
        return Counter(chain.from_iterable(self.tags_many(rows)))


class TagColumn(KeptTags):
    """Format 5 tags, read with pread(): a row's two offsets, then its codes, looked up in the
    vocabulary. Not a memory map: the kernel maps the cached pages around a faulting one, so the
    tags of a few dozen random rows made most of both files resident (7.6 MiB at a million items,
    measured); two system calls a row cost less than that memory."""

    def __init__(self, bundle, spec: TagSpec):
        super().__init__()
        self.vocab = spec.vocab
        self._tag_at = spec.vocab.__getitem__
        self._code_of = {t: i for i, t in enumerate(spec.vocab)}
        self._paths = (bundle.path(spec.offsets), bundle.path(spec.codes))
        (offsets, shape, self._offsets_at), (self._dtype, _, self._codes_at) = map(npy_header, self._paths)
        self.count, self._width = shape[0] - 1, offsets.itemsize
        self._pair = struct.Struct("<" + 2 * ("I" if offsets.itemsize == 4 else "q"))  # npy_header: little-endian
        handles = [open(path, "rb", buffering=0) for path in self._paths]
        weakref.finalize(self, lambda: [h.close() for h in handles])
        self._offsets, self._codes = (h.fileno() for h in handles)
        self._native = native_ids() if sys.byteorder == "little" else None  # what the compiled reader reads
        self._signed = int(offsets.kind == "i")

    def __len__(self) -> int:
        return self.count

    def _row(self, row) -> int:
        row = int(row)
        if not 0 <= row < self.count:
            raise IndexError(f"row {row} is outside the tag column's {self.count} rows")
        return row

    def _read(self, row: int) -> tuple[str, ...]:
        row = self._row(row)
        start, end = self._pair.unpack(os.pread(self._offsets, 2 * self._width, self._offsets_at + row * self._width))
        size = self._dtype.itemsize
        return self._decode(os.pread(self._codes, (end - start) * size, self._codes_at + start * size)
                            if end > start else b"")

    def _read_many(self, rows: list[int]) -> list[tuple[str, ...]]:
        """The same two reads a row in one compiled call (a user's first request reads the tags of
        ~30 rows: 4 us a row through os.pread, most of it Python's cost around the calls)."""
        if self._native is None:
            return super()._read_many(rows)
        found = self._native.read_rows(self._offsets, self._offsets_at, self._width, self._signed, self._codes,
                                       self._codes_at, self._dtype.itemsize, [self._row(row) for row in rows])
        return [self._decode(data) for data in found]

    def _decode(self, data: bytes) -> tuple[str, ...]:
        """A row's codes (bytes as read) as its tags (iterating bytes gives uint8 codes)."""
        return tuple(map(self._tag_at, data if self._dtype.itemsize == 1 else np.frombuffer(data, self._dtype).tolist()))

    def __getitem__(self, row: int) -> str:
        """The row as formats 2-4 store it (`|`-joined)."""
        return "|".join(self.tags(row))

    def rows_with(self, tags) -> np.ndarray:
        """True for every row carrying one of `tags`: a pass over the codes, a block of rows at a
        time through file reads (the map would make the whole column resident)."""
        wanted = [self._code_of[t] for t in {str(t) for t in tags} if t in self._code_of]
        out = np.zeros(len(self), bool)
        if not wanted:
            return out
        offsets_file, codes_file = self._paths
        dtype, data_at = self._dtype, self._codes_at
        with open(codes_file, "rb") as handle:
            carry = None  # the last offset of the block before: its row ends in this block
            for first, block in npy_blocks(offsets_file, SCAN_ROWS):
                bounds = block.astype(np.int64) if carry is None else np.r_[carry, block.astype(np.int64)]
                row0, carry = first if carry is None else first - 1, bounds[-1]
                start, end = int(bounds[0]), int(bounds[-1])
                handle.seek(data_at + start * dtype.itemsize)
                seen = np.r_[0, np.cumsum(np.isin(np.fromfile(handle, dtype, end - start), wanted))]
                out[row0:row0 + len(bounds) - 1] |= seen[bounds[1:] - start] > seen[bounds[:-1] - start]
        return out

    def all(self) -> list[str]:
        """Every row, `|`-joined (for host tools and tests, not the request path)."""
        vocab = self.vocab
        bounds, codes = (np.load(path, allow_pickle=False).tolist() for path in self._paths)
        return ["|".join(vocab[c] for c in codes[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


class TextTags(KeptTags):
    """Formats 2 to 4: tags as `|`-joined text in a string column (plain or compressed blocks)."""

    def __init__(self, strings):
        super().__init__()
        self.strings = strings

    def __len__(self) -> int:
        return len(self.strings)

    def _read(self, row: int) -> tuple[str, ...]:
        return split_tags(self.strings[row])

    def __getitem__(self, row: int) -> str:
        return self.strings[row]

    def rows_with(self, tags) -> np.ndarray:
        """True for every row carrying one of `tags` (exact match; scans the tag bytes a block of
        rows at a time, no decoding, no copy of the whole column). A match ends inside its own row
        (the rows' bytes run on without a separator); no tag holds a '|' (it would match two tags)."""
        out = np.zeros(len(self), bool)
        needles = [tag.encode("utf-8") for tag in {str(t) for t in tags if t} if "|" not in tag]
        for first, offsets, block in self.strings.chunks() if needles else ():
            data = block.tobytes()
            for needle in needles:
                at = data.find(needle)
                while at >= 0:
                    end = at + len(needle)
                    row = int(np.searchsorted(offsets, at, "right")) - 1
                    starts = at == offsets[row] or data[at - 1:at] == b"|"
                    ends = end == offsets[row + 1] or (end < offsets[row + 1] and data[end:end + 1] == b"|")
                    if starts and ends:
                        out[first + row] = True
                    # a match that fails can run into the next row, which may itself start a match
                    at = data.find(needle, end if starts and ends else at + 1)
        return out

    def all(self) -> list[str]:
        return self.strings.all()


def read_tags(bundle) -> TagColumn | TextTags:
    """The tags of an opened bundle, as codes (format 5) or as text (older formats)."""
    items = bundle.manifest.items
    return TagColumn(bundle, items.tags) if items.tags else TextTags(string_column(bundle, items.strings["tags"]))

