"""Block-compressed string columns (bundle format 4): writing, reading a row, checking a block.

Rows are cut into blocks of `block_rows` strings; each block is compressed on its own with
zlib (the standard library's DEFLATE) as the rows' byte lengths (uint32, little-endian)
followed by their UTF-8 bytes, with a preset dictionary of the column's words (`dictionary`,
a few KB sampled from the column: short blocks compress about twice as well). The bundle
holds the compressed blocks one after the other (`blob`) and where each block starts
(`blocks`: ceil(count / block_rows) + 1 offsets rising from 0 to the blob's size; the last
block may hold fewer rows). A request that shows k titles reads and inflates at most k blocks
of a few hundred bytes each; nothing inflates the whole column. The checks at open read the
block starts only (inflating every block would cost seconds at a million items); each block is
checked when it is inflated, and a damaged one is a BundleError for the request.
"""

from __future__ import annotations

import os
import struct
import threading
import weakref
import zlib
from collections import OrderedDict
from itertools import accumulate

import numpy as np

from edgerec.errors import BundleError

CODECS = ("zlib",)
BLOCK_ROWS = 16  # a few hundred bytes a block: a row costs ~10 us to inflate; the dictionary keeps the ratio
LEVEL = 9
CACHED_BLOCKS = 256  # inflated blocks kept per column, ~1 KB each: the titles a user's reasons name recur
CACHED_BYTES = 1 << 21  # and at most this much inflated text per column: a hostile bundle's 64 KiB rows would
# otherwise keep 256 blocks of 1 MiB each
DICTIONARY_BYTES = 8192  # zlib's preset dictionary: a block of 64 short strings finds their words in it
DICTIONARY_SAMPLES = 2000
MAX_ROW_BYTES = 1 << 16  # a row's UTF-8 bytes (a title, or an item's joined tags): far above any real one, and
# it bounds what one block may inflate to whatever the manifest claims (add_items takes 1,000-character titles)
MAX_RATIO = 1032  # DEFLATE's ceiling: no zlib stream inflates to more than 1032 times its own size


def block_count(count: int, block_rows: int) -> int:
    return -(-count // block_rows)


def make_dictionary(values: list[bytes]) -> bytes:
    """A preset dictionary for a column: evenly spaced rows joined, the last DICTIONARY_BYTES of
    them (zlib reaches back from a block's start, so the end of the dictionary matters most)."""
    step = max(1, len(values) // DICTIONARY_SAMPLES)
    return b"".join(values[::step])[-DICTIONARY_BYTES:]


def encode(values: list[bytes], block_rows: int = BLOCK_ROWS, dictionary: bytes = b"") -> tuple[bytes, np.ndarray]:
    """(compressed blob, block starts) of UTF-8 strings, with zlib's preset `dictionary` if any."""
    parts, starts = [], [0]
    for first in range(0, len(values), block_rows):
        rows = values[first:first + block_rows]
        payload = struct.pack(f"<{len(rows)}I", *map(len, rows)) + b"".join(rows)
        packer = zlib.compressobj(LEVEL, zdict=dictionary) if dictionary else zlib.compressobj(LEVEL)
        parts.append(packer.compress(payload) + packer.flush())
        starts.append(starts[-1] + len(parts[-1]))
    return b"".join(parts), np.asarray(starts, np.int64)


def write_column(writer, stem: str, values: list[str]) -> dict:
    """Write strings as a compressed column through a BundleWriter: its manifest entry."""
    encoded = [v.encode("utf-8") for v in values]
    long = next((row for row, value in enumerate(encoded) if len(value) > MAX_ROW_BYTES), None)
    if long is not None:
        raise BundleError(f"{stem}: row {long} holds {len(encoded[long]):,} bytes of text, above the {MAX_ROW_BYTES:,} "
                          "a compressed text row may hold (a device refuses it); shorten that value")
    dictionary = make_dictionary(encoded)
    blob, starts = encode(encoded, BLOCK_ROWS, dictionary)
    writer.file_path(f"{stem}.zlib").write_bytes(blob)
    starts = starts.astype(np.uint32) if starts[-1] < 2**32 else starts
    out = {"blob": writer.add_file(f"{stem}.zlib"), "blocks": writer.add_array(f"{stem}.blocks.npy", starts),
           "codec": "zlib", "block_rows": BLOCK_ROWS, "raw_bytes": sum(map(len, encoded))}
    if dictionary:
        writer.file_path(f"{stem}.zdict").write_bytes(dictionary)
        out["dictionary"] = writer.add_file(f"{stem}.zdict")
    return out


def inflate(data: bytes, dictionary: bytes = b"", dictionary_id: int | None = None,
            limit: int | None = None) -> bytes:
    """zlib.decompressobj(zdict=dictionary).decompress(data) with the same checks (header, the
    dictionary's id, the end of the stream, Adler-32 of the output), inflating the raw deflate
    stream: zlib's own path sums the 8 KB dictionary for every block, half a block's cost.
    dictionary_id: zlib.adler32(dictionary), when the caller keeps it. limit: the most bytes the
    block may inflate to (a few hundred bytes of a hostile bundle could otherwise inflate to gigabytes)."""
    if len(data) < 2:
        raise zlib.error("the stream is shorter than its header")
    cmf, flg = data[0], data[1]
    if cmf & 0x0F != 8 or cmf >> 4 > 7 or (cmf << 8 | flg) % 31:
        raise zlib.error("incorrect header check")
    head, zdict = 2, b""
    if flg & 0x20:  # the block was compressed with a preset dictionary: it must be this one
        wanted = zlib.adler32(dictionary) if dictionary_id is None else dictionary_id
        if not dictionary or data[2:6] != wanted.to_bytes(4, "big"):
            raise zlib.error("the block needs another preset dictionary")
        head, zdict = 6, dictionary
    unpacker = zlib.decompressobj(-15, zdict=zdict) if zdict else zlib.decompressobj(-15)
    payload = unpacker.decompress(data[head:], 0 if limit is None else limit + 1)
    if limit is not None and len(payload) > limit:
        raise zlib.error(f"the block inflates to more than the {limit:,} bytes its column allows")
    if not unpacker.eof or unpacker.unused_data != zlib.adler32(payload).to_bytes(4, "big"):
        raise zlib.error("the stream does not end where the block does, or its checksum is wrong")
    return payload


def decode_block(data: bytes, rows: int, where: str = "a compressed string block",
                 dictionary: bytes = b"", dictionary_id: int | None = None,
                 raw_bytes: int | None = None) -> tuple[list[int], bytes]:
    """(rows + 1 offsets into the text, the text) of one compressed block; BundleError when the
    block does not inflate to `rows` lengths and exactly their bytes. It inflates to at most its lengths plus
    `rows` * MAX_ROW_BYTES (and the column's `raw_bytes`): a cap of its own, not only the manifest's claim."""
    text_cap = rows * MAX_ROW_BYTES if raw_bytes is None else min(raw_bytes, rows * MAX_ROW_BYTES)
    try:
        payload = inflate(data, dictionary, dictionary_id, 4 * rows + text_cap)
    except zlib.error as exc:
        raise BundleError(f"{where} does not inflate ({exc}); the bundle is damaged, re-export it") from None
    head = 4 * rows
    if len(payload) < head:
        raise BundleError(f"{where} holds fewer than its {rows} rows; the bundle is damaged, re-export it")
    lengths = struct.unpack_from(f"<{rows}I", payload)
    if lengths and max(lengths) > MAX_ROW_BYTES:
        raise BundleError(f"{where} holds a row of {max(lengths):,} bytes, above the {MAX_ROW_BYTES:,} a row may hold; "
                          "the bundle is damaged, re-export it")
    bounds = list(accumulate(lengths, initial=0))
    text = payload[head:]
    if bounds[-1] != len(text):
        raise BundleError(f"{where}: its lengths do not add up to its bytes; the bundle is damaged, re-export it")
    if not text.isascii():  # ASCII is UTF-8 cut anywhere at a character's edge: the usual case, checked fast
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BundleError(f"{where} is not valid UTF-8 ({exc.reason}); the bundle is damaged, re-export it") from None
        if any(text[b] & 0xC0 == 0x80 for b in bounds[:-1] if b < len(text)):
            raise BundleError(f"{where} cuts a row inside a UTF-8 character; the bundle is damaged, re-export it")
    return bounds, text


class BlockStringColumn:
    """A block-compressed string column: a block is read from the file with pread() when a row
    of it is asked for, and a few inflated blocks are cached. Not a memory map: the kernel maps
    a file's cached pages in large pieces, so a few reads of a mapped blob made all of it count
    in the process's memory (measured: 30 random rows of a 9 MB blob made 9 MB resident)."""

    def __init__(self, blob: str | os.PathLike | np.ndarray | bytes, starts: np.ndarray, count: int,
                 block_rows: int, dictionary: bytes = b"", raw_bytes: int | None = None):
        """blob: the blob's file (read with pread) or its bytes in memory. raw_bytes: the column's
        text bytes, which no block's text can exceed."""
        self.count, self.block_rows, self.dictionary, self.raw_bytes = count, block_rows, dictionary, raw_bytes
        self.dictionary_id = zlib.adler32(dictionary)
        # kept as stored (uint32 or int64): a Python list cost 36 bytes a block, 4.5 MB at 1M items
        self.starts = np.asarray(starts)
        if isinstance(blob, (str, os.PathLike)):
            handle = open(blob, "rb", buffering=0)
            weakref.finalize(self, handle.close)
            fd = handle.fileno()
            self._read = lambda start, end: os.pread(fd, end - start, start)
        else:
            view = memoryview(np.ascontiguousarray(np.frombuffer(blob, np.uint8))).cast("B")
            self._read = lambda start, end: view[start:end]
        self._cache: OrderedDict[int, tuple[list[int], bytes]] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()  # requests on several threads share the cache and its byte count

    def __len__(self) -> int:
        return self.count

    def _block(self, number: int) -> tuple[list[int], bytes]:
        cached = self._cache.get(number)
        if cached is None:
            rows = min(self.block_rows, self.count - number * self.block_rows)
            data = self._read(int(self.starts[number]), int(self.starts[number + 1]))
            where = f"compressed text block {number} (rows {number * self.block_rows} on)"
            cached = decode_block(data, rows, where, self.dictionary, self.dictionary_id, self.raw_bytes)
            with self._lock:
                while self._cache and (len(self._cache) >= CACHED_BLOCKS
                                       or self._cached_bytes + len(cached[1]) > CACHED_BYTES):
                    self._cached_bytes -= len(self._cache.popitem(last=False)[1][1])
                if number not in self._cache:  # another thread may have inflated it meanwhile
                    self._cache[number] = cached
                    self._cached_bytes += len(cached[1])
        return cached

    def bytes_at(self, i: int) -> bytes:
        i = int(i)
        if not 0 <= i < self.count:
            raise IndexError(f"row {i} is outside the column's {self.count} rows")
        bounds, text = self._block(i // self.block_rows)
        at = i % self.block_rows
        return text[bounds[at]:bounds[at + 1]]

    def __getitem__(self, i: int) -> str:
        return self.bytes_at(i).decode("utf-8")

    def chunks(self):
        """(first row, offsets from 0, bytes as uint8) of each block, in row order (for scans)."""
        for number in range(block_count(self.count, self.block_rows)):
            bounds, text = self._block(number)
            yield number * self.block_rows, np.asarray(bounds, np.int64), np.frombuffer(text, np.uint8)

    def all(self) -> list[str]:
        """Every string (for host tools and tests, not the request path)."""
        blocks = (self._block(n) for n in range(block_count(self.count, self.block_rows)))
        return [text[a:b].decode("utf-8") for bounds, text in blocks for a, b in zip(bounds[:-1], bounds[1:])]


def read_dictionary(bundle, column) -> bytes:
    """A compressed column's preset dictionary (b"" without one); zlib takes at most 32 KB."""
    if not column.dictionary:
        return b""
    data = bundle.path(column.dictionary).read_bytes()
    if len(data) > 1 << 15:
        raise BundleError(f"{column.dictionary} is {len(data)} bytes; a zlib dictionary holds at most 32768, "
                          "the bundle is damaged or from a broken exporter, re-export it")
    return data
