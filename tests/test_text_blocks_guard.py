"""Guard tests of runtime/text_blocks.py (mutation testing, note 11 of tools/mutation-scores.md): the
header rules zlib applies (method 8, window at most 7, no dictionary unless flagged), every refusal's
whole message, the preset dictionary's id summed once per column, the block cache's bound and order,
the dictionary sampled and sized exactly."""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime import text_blocks
from edgerec.runtime.bundle import BundleWriter
from edgerec.runtime.text_blocks import BlockStringColumn, decode_block, encode, inflate

REEXPORT = "; the bundle is damaged, re-export it"


def _with_header(data: bytes, cmf: int, flags: int) -> bytes:
    """A zlib stream's body under another header: `flags` (FDICT, FLEVEL) with FCHECK made valid."""
    flg = flags & 0xE0
    flg |= (31 - (cmf << 8 | flg) % 31) % 31
    return bytes([cmf, flg]) + data


def _payload(rows: list[bytes]) -> bytes:
    return np.array([len(r) for r in rows], "<u4").tobytes() + b"".join(rows)


def test_the_header_rules_are_zlibs():
    body = zlib.compress(_payload([b"ab", b"c"]))[2:]
    assert inflate(_with_header(body, 0x78, 0x80)) == _payload([b"ab", b"c"])
    assert inflate(zlib.compress(b"abc", 1)) == b"abc"  # FLEVEL 0: FCHECK's low bit set, no dictionary
    for cmf in (0x77, 0x88, 0x79):  # method 7; window 2^16 (more than zlib's 32 KB); method 9
        block = _with_header(body, cmf, 0x80)
        with pytest.raises(zlib.error):
            zlib.decompress(block)
        with pytest.raises(zlib.error, match="^incorrect header check$"):
            inflate(block)
    with pytest.raises(zlib.error, match="^the stream is shorter than its header$"):
        inflate(b"x")
    with pytest.raises(zlib.error, match="^the stream does not end where the block does, or its checksum is wrong$"):
        inflate(b"\x78\x9c")  # a header alone: two bytes are not too short, the stream never ends


def test_a_stream_that_needs_a_dictionary_it_does_not_flag_is_refused():
    """A block compressed against a dictionary but without FDICT reaches back before its start: zlib
    refuses it, and so does inflate (no dictionary is assumed)."""
    packer = zlib.compressobj(9, zdict=b"XXXX")
    data = packer.compress(b"XXXXabcXXXX") + packer.flush()
    assert data[1] & 0x20 and inflate(data, b"XXXX") == b"XXXXabcXXXX"
    unflagged = _with_header(data[6:], data[0], data[1] & ~0x20)
    with pytest.raises(zlib.error):
        zlib.decompress(unflagged)
    with pytest.raises(zlib.error):
        inflate(unflagged)
    with pytest.raises(zlib.error, match="^the block needs another preset dictionary$"):
        inflate(data)  # no dictionary given
    with pytest.raises(zlib.error, match="^the block needs another preset dictionary$"):
        inflate(data, b"XXXX", zlib.adler32(b"XXXY"))  # the caller's id is the one checked
    with pytest.raises(BundleError) as refused:
        decode_block(data, 1)
    assert str(refused.value) == ("a compressed string block does not inflate (the block needs another preset "
                                  f"dictionary){REEXPORT}")
    with pytest.raises(BundleError, match="needs another preset dictionary"):
        decode_block(data, 1, "b", b"XXXX", zlib.adler32(b"XXXY"))
    with pytest.raises(BundleError, match="needs another preset dictionary"):
        BlockStringColumn(np.frombuffer(data, np.uint8), np.array([0, len(data)]), 1, 1)[0]


def test_decode_block_edges_and_messages():
    assert decode_block(zlib.compress(_payload([b"", b""])), 2) == ([0, 0, 0], b"")  # rows without bytes
    assert decode_block(zlib.compress(_payload(["é".encode(), b""])), 2) == ([0, 2, 2], "é".encode())
    cases = [(zlib.compress(b"\x01\x00"), 1, " holds fewer than its 1 rows"),
             (zlib.compress(_payload([b"ab"]) + b"c"), 1, ": its lengths do not add up to its bytes"),
             (zlib.compress(b"\x01\x00\x00\x00\xff"), 1, " is not valid UTF-8 (invalid start byte)"),
             (zlib.compress(b"\x01\x00\x00\x00\x01\x00\x00\x00\xc3\xa9"), 2, " cuts a row inside a UTF-8 character")]
    for data, rows, said in cases:
        with pytest.raises(BundleError) as refused:
            decode_block(data, rows)
        assert str(refused.value) == f"a compressed string block{said}{REEXPORT}"


def test_the_encoder_uses_level_9_and_the_dictionary(tmp_path):
    values = [f"The Hidden River {i}".encode() for i in range(40)]
    blob, starts = encode(values, 16, b"River")
    first = zlib.compressobj(9, zdict=b"River")
    assert blob[: int(starts[1])] == first.compress(_payload(values[:16])) + first.flush()
    plain, _ = encode(values, 16)
    assert plain[: len(zlib.compress(_payload(values[:16]), 9))] == zlib.compress(_payload(values[:16]), 9)
    writer = BundleWriter(tmp_path / "b", "x")
    entry = text_blocks.write_column(writer, "items/titles", [v.decode() for v in values])
    assert np.load(writer.file_path(entry["blocks"])).dtype == np.uint32 and entry["raw_bytes"] == sum(map(len, values))


def test_the_dictionary_samples_evenly_and_keeps_its_end(monkeypatch):
    assert text_blocks.make_dictionary([b"a", b"b", b"c"]) == b"abc"
    monkeypatch.setattr(text_blocks, "DICTIONARY_SAMPLES", 2)
    monkeypatch.setattr(text_blocks, "DICTIONARY_BYTES", 4)
    assert text_blocks.make_dictionary([b"a", b"b", b"c", b"d", b"e"]) == b"ace"  # every second row
    assert text_blocks.make_dictionary([bytes([97 + i]) for i in range(9)]) == b"aei"  # every fourth
    assert text_blocks.make_dictionary([b"abc", b"def", b"ghi"]) == b"fghi"  # the last 4 bytes


def _column_file(tmp_path: Path, values: list[str], block_rows: int, dictionary: bytes = b"") -> BlockStringColumn:
    blob, starts = encode([v.encode() for v in values], block_rows, dictionary)
    path = tmp_path / "blob.zlib"
    path.write_bytes(blob)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. line buffering asked of a binary file
        return BlockStringColumn(path, starts, len(values), block_rows, dictionary)


def test_the_cache_keeps_the_newest_blocks_up_to_its_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(text_blocks, "CACHED_BLOCKS", 2)
    column = _column_file(tmp_path, [f"row {i}" for i in range(10)], 2)
    assert [column[i] for i in (0, 2, 4)] == ["row 0", "row 2", "row 4"]
    assert list(column._cache) == [1, 2]  # the oldest block left first
    assert column[3] == "row 3" and list(column._cache) == [1, 2]
    for bad in (10, -1):
        with pytest.raises(IndexError, match=f"^row {bad} is outside the column's 10 rows$"):
            column.bytes_at(bad)
    odd = _column_file(tmp_path, [f"row {i}" for i in range(9)], 2)
    with pytest.raises(IndexError, match="^row 9 is outside the column's 9 rows$"):
        odd.bytes_at(9)


def test_the_cache_is_bounded_by_inflated_bytes_too(tmp_path):
    """A hostile bundle's long rows: 256 cached blocks of 16 rows of 64 KiB each would hold 256 MB."""
    long_rows = [bytes([65 + i % 26]) * (40_000 + 2_000 * (i // 16)) for i in range(16 * 8)]  # blocks of 640 KB up
    blob, starts = encode(long_rows, 16)
    path = tmp_path / "long.zlib"
    path.write_bytes(blob)
    column = BlockStringColumn(path, starts, len(long_rows), 16)
    for i in range(0, len(long_rows), 16):  # eight blocks, of 640,000 to 864,000 bytes
        assert column.bytes_at(i) == long_rows[i]
        assert column._cached_bytes == sum(len(text) for _, text in column._cache.values()) <= text_blocks.CACHED_BYTES
    assert list(column._cache) == [6, 7]  # two blocks fit 2 MiB
    assert column.bytes_at(16 * 7 + 3) == long_rows[16 * 7 + 3] and list(column._cache) == [6, 7]


def test_the_dictionary_is_summed_once_per_column(tmp_path, monkeypatch):
    """zlib's own path sums the 8 KB dictionary for every block; the column sums it once."""
    dictionary = b"The Hidden River|" * 100
    column = _column_file(tmp_path, [f"The Hidden River {i}" for i in range(64)], 4, dictionary)
    summed = []
    real = zlib.adler32
    monkeypatch.setattr(zlib, "adler32", lambda data, *rest: summed.append(len(data)) or real(data, *rest))
    assert [column[i] for i in range(0, 64, 4)] == [f"The Hidden River {i}" for i in range(0, 64, 4)]
    assert len(dictionary) not in summed and len(summed) == 16


def test_a_damaged_block_names_its_number_and_first_row(tmp_path):
    blob, starts = encode([f"row {i}".encode() for i in range(40)], 16)
    damaged = bytearray(blob)
    damaged[int(starts[1]) + 4] ^= 0xFF
    column = BlockStringColumn(np.frombuffer(bytes(damaged), np.uint8), starts, 40, 16)
    assert column[0] == "row 0"
    with pytest.raises(BundleError, match=r"^compressed text block 1 \(rows 16 on\) does not inflate"):
        column[20]


class _Column:
    def __init__(self, dictionary):
        self.dictionary = dictionary


class _Bundle:
    def __init__(self, root: Path):
        self.path = lambda name: root / name


def test_a_dictionary_of_up_to_32_kb_is_read(tmp_path):
    bundle = _Bundle(tmp_path)
    assert text_blocks.read_dictionary(bundle, _Column(None)) == b""
    (tmp_path / "d").write_bytes(b"x" * 32768)
    assert text_blocks.read_dictionary(bundle, _Column("d")) == b"x" * 32768
    (tmp_path / "d").write_bytes(b"x" * 32769)
    with pytest.raises(BundleError) as refused:
        text_blocks.read_dictionary(bundle, _Column("d"))
    assert str(refused.value) == ("d is 32769 bytes; a zlib dictionary holds at most 32768, the bundle is damaged "
                                  "or from a broken exporter, re-export it")


def test_a_block_that_inflates_past_its_column_is_refused_without_inflating_it_all():
    rows = [b"short", b"x" * text_blocks.MAX_ROW_BYTES]  # the longest row a device takes, in a few hundred bytes
    blob, starts = encode(rows, block_rows=2)
    assert len(blob) < 50_000
    honest = BlockStringColumn(blob, starts, 2, 2, raw_bytes=sum(map(len, rows)))
    assert honest.bytes_at(0) == b"short"
    bomb = BlockStringColumn(blob, starts, 2, 2, raw_bytes=64)  # the manifest claims 64 bytes of text
    with pytest.raises(BundleError, match="inflates to more than the 72 bytes its column allows"):
        bomb.bytes_at(0)
