"""Text columns in compressed blocks (bundle format 4): rows read back exactly, a request inflates
only the blocks of the rows it reads, and a damaged column is refused when the bundle opens."""

from __future__ import annotations

import json
import random
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.export.convert import convert_bundle
from edgerec.runtime import text_blocks
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog import ItemCatalog

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"


def _column(values: list[str], block_rows: int = 4) -> text_blocks.BlockStringColumn:
    blob, starts = text_blocks.encode([v.encode() for v in values], block_rows)
    return text_blocks.BlockStringColumn(np.frombuffer(blob, np.uint8), starts, len(values), block_rows)


def test_rows_read_back_exactly_across_block_edges():
    values = ["", "ünïcode", "a|b", "x" * 300, "", "last of block", "new block", "", "z"]
    column = _column(values)
    assert [column[i] for i in range(len(values))] == values and column.all() == values
    assert [(first, len(bounds) - 1) for first, bounds, _ in column.chunks()] == [(0, 4), (4, 4), (8, 1)]
    with pytest.raises(IndexError):
        column.bytes_at(len(values))


def test_a_row_inflates_its_own_block_only(monkeypatch):
    column = _column([f"title {i}" for i in range(1000)], block_rows=64)
    inflated = []
    real = text_blocks.decode_block
    monkeypatch.setattr(text_blocks, "decode_block", lambda data, rows, *a, **k: inflated.append(rows) or real(data, rows))
    assert column[700] == "title 700" and column[701] == "title 701" and column[5] == "title 5"
    assert inflated == [64, 64]  # rows 700 and 701 share a block (cached), row 5 has its own


def test_a_preset_dictionary_shrinks_short_blocks_and_must_be_the_one_written():
    values = [f"The {a} {b}".encode() for a in ("Hidden", "Golden", "Broken", "Silent") for b in
              ("River", "Harbor", "Kingdom", "Lantern", "Station")] * 20
    dictionary = text_blocks.make_dictionary(values)
    plain, _ = text_blocks.encode(values, 8)
    packed, starts = text_blocks.encode(values, 8, dictionary)
    assert len(packed) < 0.8 * len(plain)
    column = text_blocks.BlockStringColumn(np.frombuffer(packed, np.uint8), starts, len(values), 8, dictionary)
    assert column.all() == [v.decode() for v in values]
    wrong = text_blocks.BlockStringColumn(np.frombuffer(packed, np.uint8), starts, len(values), 8, dictionary[1:])
    with pytest.raises(BundleError, match="damaged"):
        wrong[0]


def test_a_block_that_does_not_hold_its_rows_is_refused():
    good = zlib.compress(b"\x02\x00\x00\x00\x01\x00\x00\x00abc")
    assert text_blocks.decode_block(good, 2) == ([0, 2, 3], b"abc")
    cases = [(good, 3), (zlib.compress(b"\x02\x00\x00\x00\x01\x00\x00\x00abcd"), 2), (b"junk", 2),
             (zlib.compress(b"\x01\x00\x00\x00\x01\x00\x00\x00\xc3\xa9"), 2),  # a row cut inside a character
             (zlib.compress(b"\x01\x00\x00\x00\xff"), 1), (good + b"trailing", 2)]
    for data, rows in cases:
        with pytest.raises(BundleError, match="damaged"):
            text_blocks.decode_block(data, rows)


def _zlib_inflate(data: bytes, dictionary: bytes):
    """What zlib's own decompressor makes of a block: its bytes, or None when it refuses it."""
    try:
        unpacker = zlib.decompressobj(zdict=dictionary) if dictionary else zlib.decompressobj()
        payload = unpacker.decompress(data)
        return payload if unpacker.eof and not unpacker.unused_data else None
    except zlib.error:
        return None


def test_the_raw_inflate_accepts_and_refuses_exactly_what_zlib_does():
    """inflate() skips zlib's per-block sum of the dictionary, so it checks the header, the
    dictionary's id and the Adler-32 trailer itself: every damaged copy of a block is refused
    exactly when zlib's decompressor refuses it (flipped bits, a cut or extra byte, another
    dictionary or none)."""
    rng = random.Random(0)
    dictionary = b"The Hidden River|The Golden Harbor|Silent Station|" * 40
    checked = 0
    for size in (0, 1, 40, 300):
        payload = bytes(rng.choice(b"abc HiddenRiver|") for _ in range(size))
        for zdict in (b"", dictionary):
            packer = zlib.compressobj(9, zdict=zdict) if zdict else zlib.compressobj(9)
            data = packer.compress(payload) + packer.flush()
            damaged = [data, data[:-1], data + b"x", data[: len(data) // 2], data[:1]]
            damaged += [data[:i] + bytes([data[i] ^ bit]) + data[i + 1:] for i in range(len(data)) for bit in (1, 128)]
            for given in (zdict, b"", dictionary[1:]):
                for block in damaged:
                    expected = _zlib_inflate(block, given)
                    try:
                        got = text_blocks.inflate(block, given)
                    except zlib.error:
                        got = None
                    assert got == expected, (size, len(block), len(given))
                    checked += 1
    assert checked > 1000


def test_block_starts_are_kept_as_stored_not_as_python_numbers():
    """A million items have 62,500 blocks a column: as a list of Python ints their starts took
    2.2 MB a column; as the stored uint32 array, 250 KB."""
    starts = np.arange(0, 100_001 * 8, 8, dtype=np.uint32)
    blob = np.zeros(int(starts[-1]), np.uint8)
    tracemalloc.start()
    try:
        column = text_blocks.BlockStringColumn(blob, starts, 1_600_000, 16)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(column) == 1_600_000 and peak < 500_000, f"{peak} bytes for the starts of 100,000 blocks"


@pytest.fixture()
def compressed(tmp_path):
    return convert_bundle(GOLDEN, tmp_path / "v4")


def _edit_manifest(bundle: Path, edit) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def test_the_golden_bundle_reads_the_same_compressed(compressed):
    plain, new = ItemCatalog(Bundle.open(GOLDEN)), ItemCatalog(Bundle.open(compressed))
    assert new.bundle.manifest.items.strings["titles"].codec == "zlib"
    assert new.titles.all() == plain.titles.all() and new.tag_column.all() == plain.tag_column.all()
    assert [new.meta(r) for r in (0, 7, new.base_count - 1)] == [plain.meta(r) for r in (0, 7, new.base_count - 1)]


def test_damaged_compressed_text_is_an_error_when_read(compressed):
    """Open checks the block starts only (inflating every block costs seconds at a million items);
    the damaged block is a BundleError for the request that reads it, never a wrong title."""
    titles = Bundle.open(compressed).manifest.items.strings["titles"]
    blob = bytearray((compressed / titles.file).read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (compressed / titles.file).write_bytes(bytes(blob))
    catalog = ItemCatalog(Bundle.open(compressed, verify=False))
    with pytest.raises(BundleError, match="compressed text block"):
        catalog.titles.all()
    with pytest.raises(BundleError, match="sha256"):
        Bundle.open(compressed)  # a verified open still catches it up front


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["items"]["strings"]["titles"].update(offsets="items/ids.offsets.npy"), "not both"),
    (lambda m: m["items"]["strings"]["titles"].update(block_rows=3), "block starts"),
    (lambda m: m.update(format_version=3), "cannot be compressed"),
])
def test_a_compressed_column_that_breaks_a_rule_is_refused(compressed, edit, message):
    _edit_manifest(compressed, edit)
    with pytest.raises(BundleError, match=message):
        Bundle.open(compressed, verify=False)


def test_a_wrong_dictionary_is_an_error_when_read_and_an_oversized_one_on_open(compressed):
    titles = Bundle.open(compressed).manifest.items.strings["titles"]
    assert titles.dictionary
    path = compressed / titles.dictionary
    path.write_bytes(path.read_bytes()[::-1])  # the same size, other bytes
    with pytest.raises(BundleError, match="does not inflate"):
        ItemCatalog(Bundle.open(compressed, verify=False)).titles[0]
    path.write_bytes(b"x" * 40_000)
    _edit_manifest(compressed, lambda m: m["files"][titles.dictionary].update(bytes=40_000))
    with pytest.raises(BundleError, match="at most 32768"):
        Bundle.open(compressed, verify=False)


def test_ids_are_never_compressed(compressed, tmp_path):
    items = Bundle.open(compressed).manifest.items
    titles = items.strings["titles"].to_manifest()
    _edit_manifest(compressed, lambda m: m["items"]["strings"].update(ids=titles))
    with pytest.raises(BundleError, match="cannot be compressed"):
        Bundle.open(compressed, verify=False)
