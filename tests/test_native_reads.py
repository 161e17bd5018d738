"""runtime/_ids.c. The compiled id lookup gives the rows the Python lookup gives, on every offsets
layout the bundle's ids may have, for ids that exist, ids that do not, and ids whose hash matches a
row whose bytes differ; the compiled row reader gives every row's tags as the Python reads do. Both
are what a bundle's requests use (no Python read of the ids file, one read call for a list's tags)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime.catalog_columns import FileStringColumn
from edgerec.runtime.id_index import IdIndex, native_ids
from edgerec.runtime.tag_column import TagColumn, TagSpec

pytestmark = pytest.mark.skipif(native_ids() is None, reason="built without a C compiler")

IDS = [f"x{i}" for i in range(3000)] + ["", "é-ü", "名前", "a" * 300, "b" * 255 + "é", "tt0114709", "x1 "]


def _files(tmp_path, ids: list[str], dtype) -> FileStringColumn:
    data = [i.encode("utf-8") for i in ids]
    offsets = np.r_[0, np.cumsum([len(d) for d in data])].astype(dtype)
    (tmp_path / "ids.bin").write_bytes(b"".join(data))
    np.save(tmp_path / "ids.offsets.npy", offsets)
    return FileStringColumn(tmp_path / "ids.bin", tmp_path / "ids.offsets.npy")


def _python_rows(index: IdIndex, ids: list[str]) -> list[int | None]:
    find, index._find = index._find, None
    try:
        return index._search(ids)
    finally:
        index._find = find


ASKED = IDS + ["x3000", "x", "x12 ", "é", "a" * 299, "a" * 301, "\ud800", "名", "X1"]


@pytest.mark.parametrize("dtype", ["<u4", "<i4", "<i8", "<u8"])
def test_the_compiled_lookup_gives_the_python_rows(tmp_path, dtype):
    index = IdIndex(_files(tmp_path, IDS, dtype))
    assert index._find is not None
    rows = index._search(ASKED)
    assert rows == _python_rows(index, ASKED)
    assert rows[:len(IDS)] == list(range(len(IDS))) and rows[len(IDS):] == [None] * (len(ASKED) - len(IDS))


def test_big_endian_offsets_are_refused_before_any_lookup(tmp_path):
    """The spec's one layout, checked as the column opens (the Python lookup that read them is unreachable)."""
    with pytest.raises(BundleError, match="stored big-endian"):
        IdIndex(_files(tmp_path, IDS[:50], ">u4"))


def test_a_matching_hash_with_other_bytes_is_no_hit(tmp_path):
    """The index was built for 'x7'; the file now holds 'y7' at its row: the fingerprint matches,
    the bytes do not, so 'x7' is not found (and 'y7', never indexed, neither), in C as in Python."""
    column = _files(tmp_path, IDS[:100], "<u4")
    index = IdIndex(column)
    blob = (tmp_path / "ids.bin").read_bytes()
    at = blob.index(b"x7x8")
    (tmp_path / "ids.bin").write_bytes(blob[:at] + b"y7" + blob[at + 2:])
    asked = ["x7", "y7", "x8", "x6"]
    assert index._search(asked) == _python_rows(index, asked) == [None, None, 8, 6]
    (tmp_path / "ids.bin").write_bytes(blob[:at])  # cut short before row 7: a short read is no hit either
    assert index._search(["x6", "x7", "x9"]) == _python_rows(index, ["x6", "x7", "x9"]) == [6, None, None]


def test_a_bundle_looks_ids_up_without_reading_them_in_python(tiny_bundle, monkeypatch):
    """The mechanism: the history's ids are confirmed in C, so the ids column's Python read is not
    called (the Python lookup calls it once an id)."""
    from edgerec.runtime import Recommender

    with Recommender.open(tiny_bundle) as rec:
        index = rec.catalog.index.base
        ids = [rec.catalog.item_id(row) for row in range(min(40, rec.catalog.base_count))]
        reads = []
        real = type(index.column).bytes_at
        monkeypatch.setattr(type(index.column), "bytes_at", lambda col, row: reads.append(row) or real(col, row))
        assert index._search(ids + ["no such id"]) == list(range(len(ids))) + [None]
        assert reads == []
        assert _python_rows(index, ids) == list(range(len(ids))) and len(reads) >= len(ids)


class _Files:
    def __init__(self, root):
        self.root = root

    def path(self, name):
        return self.root / name


TAG_ROWS = [["a", "b"], [], ["c"], ["b", "a", "b"], list("defgh"), [], ["h"]] * 40


@pytest.mark.parametrize("codes_dtype,offsets_dtype", [("<u1", "<u4"), ("<u2", "<i8"), ("<u4", "<u4")])
def test_the_compiled_row_reader_gives_the_python_tags(tmp_path, codes_dtype, offsets_dtype):
    vocab = list("abcdefgh") + [f"t{i}" for i in range(300 if codes_dtype != "<u1" else 8)]
    codes = np.array([vocab.index(t) for row in TAG_ROWS for t in row], codes_dtype)
    np.save(tmp_path / "codes.npy", codes)
    np.save(tmp_path / "offsets.npy", np.r_[0, np.cumsum([len(r) for r in TAG_ROWS])].astype(offsets_dtype))
    column = TagColumn(_Files(tmp_path), TagSpec("offsets.npy", "codes.npy", tuple(vocab)))
    assert column._native is not None
    rows = list(range(len(TAG_ROWS)))[::-1]
    assert column._read_many(rows) == [column._read(r) for r in rows] == [tuple(TAG_ROWS[r]) for r in rows]
    with pytest.raises(IndexError):
        column._read_many([0, len(TAG_ROWS)])


def test_a_lists_tags_are_read_in_one_call(tiny_bundle, monkeypatch):
    """The mechanism: the tag profile of a user's rows and the tags of a list's rows are read by one
    compiled call for the rows not kept yet, not a Python read a row; the counts are the same."""
    from edgerec.runtime import Recommender

    with Recommender.open(tiny_bundle) as rec:
        column = rec.catalog.tag_column
        rows = [5, 3, 5, 9, 1, 3, 0, 7]
        expected = column.counts(rows)
        assert list(expected.items()) == list(Counter(t for r in rows for t in column._read(r)).items())
        column._kept.clear()
        singles, batches = [], []
        real_many, real_read = column._native.read_rows, column._read
        monkeypatch.setattr(column, "_read", lambda row: singles.append(row) or real_read(row))
        monkeypatch.setattr(column, "_native", type("N", (), {"read_rows": staticmethod(
            lambda *a: batches.append(a[-1]) or real_many(*a))}))
        assert list(column.counts(rows).items()) == list(expected.items())
        assert column.tags_many([9, 2, 0]) == [column._kept[9], column._kept[2], column._kept[0]]
        assert singles == [] and batches == [[5, 3, 9, 1, 0, 7], [2]]
