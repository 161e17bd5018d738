"""Guard tests of runtime/id_index.py (mutation testing, note 11 of tools/mutation-scores.md): the hash
is FNV-1a 64 to the known answers, the index's layout (bucket, fingerprint, row in each entry) worked
out by hand, both build paths alike, the remembered lookups' bound exactly, duplicates named."""

from __future__ import annotations

import numpy as np
import pytest

from edgerec.runtime import id_index as id_index_module
from edgerec.runtime.catalog_columns import StringColumn
from edgerec.runtime.id_index import IdIndex, hash_block, hash_one, hash_strings, memory_blocks

KNOWN = {b"": 0xCBF29CE484222325, b"a": 0xAF63DC4C8601EC8C, b"foobar": 0x85944171F73967E8}  # FNV-1a 64 vectors


def _column(ids: list[str]) -> StringColumn:
    data = [i.encode() for i in ids]
    offsets = np.r_[0, np.cumsum([len(d) for d in data])].astype(np.uint32)
    return StringColumn(np.frombuffer(b"".join(data) or b"\0", np.uint8)[: offsets[-1]], offsets)


class _FromChunks:
    """A column without an in-memory blob: the index hashes its chunks()."""

    def __init__(self, column: StringColumn):
        self.inner = column

    def __len__(self):
        return len(self.inner)

    def bytes_at(self, row):
        return self.inner.bytes_at(row)

    def chunks(self):
        return self.inner.chunks()


def test_the_hash_is_fnv1a_64_to_the_known_answers(monkeypatch):
    for data, h in KNOWN.items():
        assert hash_one(data) == h
    words = [b"foobar", b"", b"a", b"\xc3\xbc" * 9, b"ab", b"a"]
    offsets = np.r_[0, np.cumsum([len(w) for w in words])]
    blob = np.frombuffer(b"".join(words), np.uint8)
    wanted = [hash_one(w) for w in words]
    assert wanted[:3] == [KNOWN[b"foobar"], KNOWN[b""], KNOWN[b"a"]]
    assert hash_block(blob, offsets).tolist() == wanted and hash_block(blob, offsets).dtype == np.uint64
    monkeypatch.setattr(id_index_module, "BLOCK", 2)  # blocks of 2 strings: 3 blocks, offsets rebased
    assert [(first, bounds.tolist()) for first, bounds, _ in memory_blocks(blob, offsets)] == \
        [(0, [0, 6, 6]), (2, [0, 1, 19]), (4, [0, 2, 3])]
    got = hash_strings(blob, offsets)
    assert got.dtype == np.uint64 and got.tolist() == wanted
    empty = hash_strings(np.zeros(0, np.uint8), np.zeros(1, np.int64))
    assert empty.dtype == np.uint64 and empty.shape == (0,)
    assert hash_block(np.zeros(0, np.uint8), np.zeros(1, np.int64)).shape == (0,)


@pytest.mark.parametrize("count, row_bits, bucket_bits, fp_bits", [
    (0, 1, 0, 31), (1, 1, 0, 31), (7, 3, 0, 29), (8, 4, 0, 28), (9, 4, 0, 28), (40, 6, 1, 26), (1000, 10, 5, 22),
])
def test_each_entry_is_its_ids_fingerprint_above_its_row_in_its_bucket(count, row_bits, bucket_bits, fp_bits):
    ids = [f"id-{i}" for i in range(count)]
    index = IdIndex(_column(ids))
    assert (index.row_bits, index.bucket_bits, index.fp_bits) == (row_bits, bucket_bits, fp_bits)
    assert index._shift == 64 - bucket_bits - fp_bits
    assert index.entries.dtype == np.uint32 and index.starts.dtype == np.uint32
    assert len(index.starts) == (1 << bucket_bits) + 1 and index.starts[0] == 0 and index.starts[-1] == count
    assert index.nbytes == 4 * count + 4 * len(index.starts)
    assert np.all(np.diff(index.starts.astype(np.int64)) >= 0)
    for row, item in enumerate(ids):
        h = hash_one(item.encode())
        bucket, fp = index._split(item.encode())
        assert (bucket, fp) == (h >> (64 - bucket_bits) if bucket_bits else 0, (h >> index._shift) & ((1 << fp_bits) - 1))
        lo, hi = int(index.starts[bucket]), int(index.starts[bucket + 1])
        assert (fp << row_bits | row) in index.entries[lo:hi].tolist()
    for b in range(1 << bucket_bits):  # each bucket sorted by (fingerprint, row)
        part = index.entries[int(index.starts[b]):int(index.starts[b + 1])].tolist()
        assert part == sorted(part)
    assert index.get_many(ids) == list(range(count)) and index.get("id-x") is None


def test_both_build_paths_give_the_same_index(monkeypatch):
    monkeypatch.setattr(id_index_module, "BLOCK", 16)  # several blocks in each path
    ids = [f"item-{i * 7919 % 1000}" for i in range(300)]
    column = _column(ids)
    given = _FromChunks(column)
    given.chunks = lambda: pytest.fail("the index hashed the column's chunks, not the blocks it was given")
    built = [IdIndex(column), IdIndex(_FromChunks(column)), IdIndex(given, memory_blocks(column.blob, column.offsets))]
    for other in built[1:]:
        assert other.entries.tolist() == built[0].entries.tolist() and other.starts.tolist() == built[0].starts.tolist()
        assert other.get_many(ids[::13]) == list(range(0, 300, 13))


def test_lookups_of_ids_no_item_has(monkeypatch):
    ids = ["a", "ab", "abc", "ünï"]
    index = IdIndex(_column(ids))
    assert index.get_many(["abcd", "", "\ud800", "ünï", "b"]) == [None, None, None, 3, None]
    assert IdIndex(_column([])).get("a") is None
    # every hash the same: the bytes decide between the candidates, in any bucket position
    monkeypatch.setattr(id_index_module, "hash_one", lambda data: 0)
    monkeypatch.setattr(id_index_module, "hash_strings", lambda blob, offsets: np.zeros(len(offsets) - 1, np.uint64))
    same = IdIndex(_column(ids))
    assert same.get_many(ids + ["x"]) == [0, 1, 2, 3, None]


def test_remembered_lookups_start_over_only_past_the_bound(monkeypatch):
    monkeypatch.setattr(id_index_module, "RECENT_IDS", 10)
    ids = [f"item-{i}" for i in range(30)]
    index = IdIndex(_column(ids))
    assert index.get_many(ids[:4]) == [0, 1, 2, 3] and len(index._recent) == 4
    assert index.get_many(ids[4:10] + ["nope"]) == [4, 5, 6, 7, 8, 9, None]  # 11 > 10: starts over first
    assert sorted(index._recent, key=str) == sorted(ids[4:10] + ["nope"], key=str)
    index._recent.clear()
    assert index.get_many(ids[:10]) == list(range(10)) and len(index._recent) == 10  # exactly the bound: kept
    assert index._recent == {i: r for r, i in enumerate(ids[:10])}
    assert index.get_many(ids[10:11]) == [10] and index._recent == {ids[10]: 10}
    index._recent.clear()
    assert index.get_many(ids[:9]) == list(range(9)) and index.get_many(ids[9:10]) == [9]  # 9 + 1: kept
    assert len(index._recent) == 10
    assert index.get_many(ids[:1] + ids[11:12]) == [0, 11] and index._recent == {ids[11]: 11}  # 10 + 1: over


def test_a_duplicate_names_the_later_row(monkeypatch):
    ids = [f"item-{i}" for i in range(40)]
    assert IdIndex(_column(ids)).duplicate() is None
    assert IdIndex(_column(ids[:5] + ["item-3"] + ids[5:])).duplicate() == 5
    assert IdIndex(_column(["x", "y", "x", "z", "x"])).duplicate() == 4
    assert IdIndex(_column(["x", "x"])).duplicate() == 1
    # one hash for every id: a single bucket, one run of equal fingerprints, read across scan blocks
    monkeypatch.setattr(id_index_module, "hash_strings", lambda blob, offsets: np.zeros(len(offsets) - 1, np.uint64))
    monkeypatch.setattr(id_index_module, "BLOCK", 1)  # scan blocks of 8 entries
    assert IdIndex(_column(ids)).duplicate() is None
    assert IdIndex(_column(ids + ["item-0"])).duplicate() == 40
    assert IdIndex(_column(ids[:20] + ["item-19"] + ids[20:])).duplicate() == 20
    # hashes by length: runs of equal fingerprints split by buckets and by other fingerprints
    monkeypatch.setattr(id_index_module, "hash_strings", lambda blob, offsets: np.diff(offsets).astype(np.uint64) << 40)
    mixed = ["a", "bb", "c", "dd", "eee", "fff", "g", "eee"]
    assert IdIndex(_column(mixed[:-1])).duplicate() is None
    assert IdIndex(_column(mixed)).duplicate() == 7


def test_a_duplicate_is_found_wherever_its_run_falls_in_the_scan(monkeypatch):
    """Ids hashed by their length (the bucket and fingerprint follow it, the sort puts longer ids last),
    scanned 8 entries at a time: a duplicate at the scan blocks' edges, at the very end, and a run of
    equal fingerprints that starts where the run before it (no duplicate there) ended."""
    monkeypatch.setattr(id_index_module, "hash_strings", lambda blob, offsets: np.diff(offsets).astype(np.uint64) << 40)
    monkeypatch.setattr(id_index_module, "BLOCK", 1)
    ids = ["x" * n for n in range(1, 41)]
    assert IdIndex(_column(ids)).duplicate() is None
    for n in (7, 8, 9, 16, 40):  # the duplicate pair sits at sorted entries n - 1 and n
        assert IdIndex(_column(ids + ["x" * n])).duplicate() == 40, n
    assert IdIndex(_column(["a", "b", "cc", "cc"])).duplicate() == 3
    assert IdIndex(_column(["a", "cc", "b", "cc"])).duplicate() == 3
