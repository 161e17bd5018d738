"""The bundle rows' decoded metadata (runtime/item_meta.py) on columns made here: each column read as
the spec's dtype, a missing category as '', each row decoded once and kept, bulk reads answered but
not kept, both caches starting over at their bound (at the bound exactly, not one row later), and
every caller getting dicts and tag lists of its own."""

from __future__ import annotations

import numpy as np
import pytest

from edgerec.runtime import item_meta
from edgerec.runtime.item_meta import CACHED_READ, BundleRows

N = 70  # more rows than one cached read


class Column:
    """A text column that records the rows read from it (titles are inflated from compressed blocks)."""

    def __init__(self, values):
        self.values, self.reads = list(values), []

    def __getitem__(self, row):
        self.reads.append(row)
        return self.values[row]


class Tags:
    """A tag column answering tags_many; records each call's rows."""

    def __init__(self, tags):
        self.tags, self.calls = tags, []

    def tags_many(self, rows):
        self.calls.append(list(rows))
        return [tuple(self.tags[row]) for row in rows]


def _tags(row):
    return () if row % 5 == 0 else (f"t{row % 3}", "shared")


def _genre(row):
    return "" if row % 4 == 0 else ("drama", "comedy")[row % 2]


def expected(row: int) -> dict:
    return {"item_id": f"i{row:02d}", "title": f"Title {row}", "tags": list(_tags(row)), "genre": _genre(row),
            "duration": 60.0 + row, "release_ts": 1_700_000_000 + row, "rank": row % 7}


def make() -> BundleRows:
    codes = np.array([-1 if r % 4 == 0 else r % 2 for r in range(N)], np.int8)  # stored compactly
    return BundleRows(Column(f"i{r:02d}" for r in range(N)), Column(f"Title {r}" for r in range(N)),
                      Tags([_tags(r) for r in range(N)]), {"genre": (codes, ["drama", "comedy"])},
                      {"genre": np.asarray(["drama", "comedy", ""], dtype=object)},
                      {"duration": np.arange(60, 60 + N, dtype=np.uint16),  # the spec's float32
                       "release_ts": np.arange(N, dtype=np.int32) + 1_700_000_000,  # the spec's int64
                       "rank": (np.arange(N) % 7).astype(np.int8)})  # no spec dtype: read as stored


def test_each_column_reads_as_the_spec_dtype_and_a_missing_category_as_empty():
    got = make().metas([3, 0, 8, 13])
    assert got == [expected(row) for row in (3, 0, 8, 13)]
    assert [m["genre"] for m in got] == ["comedy", "", "", "comedy"]
    for meta in got:
        assert list(meta) == ["item_id", "title", "tags", "genre", "duration", "release_ts", "rank"]
        assert type(meta["duration"]) is float and type(meta["release_ts"]) is int and type(meta["rank"]) is int
        assert type(meta["tags"]) is list


def test_each_row_is_decoded_once_and_kept():
    rows = make()
    assert rows.metas([1, 2]) == [expected(1), expected(2)]
    assert rows.metas([2, 3, 2]) == [expected(2), expected(3), expected(2)]  # a row asked twice: read once
    assert rows.tag_column.calls == [[1, 2], [3]] and rows.titles.reads == [1, 2, 3]
    assert rows.metas([3, 1, 2]) == [expected(3), expected(1), expected(2)]
    assert rows.label(2) == ("i02", "Title 2")
    assert rows.tag_column.calls == [[1, 2], [3]] and rows.titles.reads == [1, 2, 3] and rows.ids.reads == [1, 2, 3]


def test_every_caller_gets_dicts_and_tag_lists_of_its_own():
    rows = make()
    first, twice, _ = rows.metas([6, 6, 7])
    assert first is not twice and first["tags"] is not twice["tags"]
    first.pop("item_id"), first["tags"].append("changed"), twice.update(genre="changed")
    assert rows.metas([6, 6]) == [expected(6), expected(6)]


@pytest.mark.parametrize(("count", "kept"), [(CACHED_READ, True), (CACHED_READ + 1, False)])
def test_a_read_of_more_rows_than_a_list_is_answered_and_not_kept(count, kept):
    rows = make()
    assert rows.metas(list(range(count))) == [expected(row) for row in range(count)]
    assert rows.metas([0, 5]) == [expected(0), expected(5)]
    assert rows.label(9) == ("i09", "Title 9")
    again = [] if kept else [[0, 5]]
    assert rows.tag_column.calls == [list(range(count))] + again
    assert rows.titles.reads == list(range(count)) + ([] if kept else [0, 5, 9])


def test_the_row_cache_starts_over_when_a_read_would_pass_its_bound(monkeypatch):
    monkeypatch.setattr(item_meta, "META_CACHE_ROWS", 4)
    rows = make()
    rows.metas([0, 1, 2])
    rows.metas([3])  # 4 rows: at the bound, all kept
    rows.metas([0, 1, 2, 3])
    assert rows.tag_column.calls == [[0, 1, 2], [3]]
    rows.metas([4, 5])  # 6 rows would pass it: only the rows of this read are kept
    assert rows.metas([5, 4, 0]) == [expected(5), expected(4), expected(0)]
    assert rows.tag_column.calls == [[0, 1, 2], [3], [4, 5], [0]]


def test_the_label_cache_starts_over_when_full(monkeypatch):
    monkeypatch.setattr(item_meta, "META_CACHE_ROWS", 3)
    rows = make()
    assert [rows.label(row) for row in (0, 1, 2, 0)] == [("i00", "Title 0"), ("i01", "Title 1"),
                                                         ("i02", "Title 2"), ("i00", "Title 0")]
    assert rows.titles.reads == [0, 1, 2]
    assert rows.label(3) == ("i03", "Title 3")  # full: starts over with this row
    assert rows.label(0) == ("i00", "Title 0") and rows.label(3) == ("i03", "Title 3")
    assert rows.titles.reads == [0, 1, 2, 3, 0] and rows.ids.reads == [0, 1, 2, 3, 0]
