"""Guard tests of runtime/catalog_columns.py (mutation testing, note 17 of tools/mutation-scores.md): the
random-access advice given to a column's memory map (and only to it), strings cut at their byte offsets
(multi-byte UTF-8, empty rows, every offset dtype and byte order the files may hold), the refusal of
offsets that are no string column and of rows outside it with whole messages, the id lookups' order of
precedence (device-added ids first, non-strings never searched), derived columns and the stored median
worked out by hand."""

from __future__ import annotations

import mmap
from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime.catalog_columns import (
    CatalogIds,
    FileStringColumn,
    RowColumn,
    StringColumn,
    random_access,
    stored_median,
)
from edgerec.runtime.id_index import IdIndex

STRINGS = ["ab", "", "é€", "x"]  # bytes 2, 0, 5, 1: a multi-byte row and an empty one
BOUNDS = [0, 2, 2, 7, 8]


def _blob(strings=STRINGS) -> bytes:
    return "".join(strings).encode()


def _column(strings=STRINGS, dtype=np.int64) -> StringColumn:
    data = [s.encode() for s in strings]
    offsets = np.r_[0, np.cumsum([len(d) for d in data])].astype(dtype)
    return StringColumn(np.frombuffer(b"".join(data) or b"\0", np.uint8)[: offsets[-1]], offsets)


class _Spy(mmap.mmap):
    """A memory map that records the advice it is given."""

    def madvise(self, *args):
        self.advice = getattr(self, "advice", []) + [args]
        if getattr(self, "fails", False):
            raise OSError("advice refused")


def test_random_access_advises_the_map_under_the_array_and_returns_it_unchanged():
    spy = _Spy(-1, 4096)
    array = SimpleNamespace(base=SimpleNamespace(base=SimpleNamespace(_mmap=spy, base=None)))
    assert random_access(array) is array
    assert spy.advice == [(mmap.MADV_RANDOM,)]
    direct = SimpleNamespace(_mmap=spy, base=None)
    assert random_access(direct) is direct and spy.advice == [(mmap.MADV_RANDOM,)] * 2
    spy.fails = True  # advice only: a kernel that refuses it changes nothing
    assert random_access(direct) is direct and len(spy.advice) == 3
    plain = np.arange(3)
    assert random_access(plain) is plain
    not_a_map = SimpleNamespace(_mmap=object(), base=SimpleNamespace(_mmap=spy, base=None))
    assert random_access(not_a_map) is not_a_map and len(spy.advice) == 4  # only an mmap.mmap is advised


def test_a_memory_mapped_column_is_advised(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(10))
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert random_access(mapped) is mapped  # a real map takes the advice without complaint


@pytest.mark.parametrize("dtype", [np.int64, np.uint32])
def test_a_string_column_cuts_at_its_byte_offsets(dtype):
    column = _column(dtype=dtype)
    assert len(column) == 4
    assert [column[i] for i in range(4)] == STRINGS and column.all() == STRINGS
    assert [column.bytes_at(i) for i in range(4)] == [s.encode() for s in STRINGS]
    assert type(column.bytes_at(0)) is bytes and type(column[0]) is str
    assert [(first, bounds.tolist(), bytes(data)) for first, bounds, data in column.chunks()] == \
        [(0, BOUNDS, _blob())]
    assert len(_column([])) == 0 and _column([]).all() == []
    assert _column(["z"])[0] == "z" and _column(["z"]).all() == ["z"]


def _files(tmp_path, dtype="<i8", strings=STRINGS):
    (tmp_path / "ids.bin").write_bytes(_blob(strings))
    np.save(tmp_path / "ids.offsets.npy", np.array(BOUNDS if strings is STRINGS else
                                                    np.r_[0, np.cumsum([len(s.encode()) for s in strings])], dtype))
    return tmp_path / "ids.bin", tmp_path / "ids.offsets.npy"


@pytest.mark.parametrize("dtype", ["<i8", "<u4", "<i4", "<u8"])  # big-endian: refused on open (spec: one layout)
def test_a_file_column_reads_rows_with_every_offset_dtype_and_byte_order(tmp_path, dtype):
    column = FileStringColumn(*_files(tmp_path, dtype))
    assert len(column) == 4 and column.count == 4
    assert [column[i] for i in range(4)] == STRINGS and column.all() == STRINGS
    assert [column.bytes_at(i) for i in (3, 0, 2, 1)] == [b"x", b"ab", "é€".encode(), b""]
    assert column.bytes_at(np.int64(2)) == "é€".encode()
    assert [(first, bounds.tolist(), data.tobytes()) for first, bounds, data in column.chunks()] == \
        [(0, BOUNDS, _blob())]


def test_a_file_column_refuses_rows_outside_it(tmp_path):
    column = FileStringColumn(*_files(tmp_path))
    for row in (-1, 4, 9):
        with pytest.raises(IndexError) as caught:
            column.bytes_at(row)
        assert str(caught.value) == f"row {row} is outside the column's 4 rows"
    with pytest.raises(IndexError, match=r"^row 4 is outside the column's 4 rows$"):
        column[4]


def test_a_file_column_of_one_offset_is_empty(tmp_path):
    column = FileStringColumn(*_files(tmp_path, strings=[]))
    assert len(column) == 0 and column.all() == []
    with pytest.raises(IndexError, match=r"^row 0 is outside the column's 0 rows$"):
        column.bytes_at(0)


@pytest.mark.parametrize(("offsets", "described"), [
    (np.zeros(5, np.float64), "dtype float64 and shape (5,)"),
    (np.zeros(5, np.int16), "dtype int16 and shape (5,)"),
    (np.zeros(0, np.int64), "dtype int64 and shape (0,)"),
    (np.zeros((5, 1), np.int64), "dtype int64 and shape (5, 1)"),
    (np.int64(0), "dtype int64 and shape ()"),
])
def test_offsets_that_are_no_string_column_are_refused(tmp_path, offsets, described):
    (tmp_path / "ids.bin").write_bytes(b"abc")
    np.save(tmp_path / "ids.offsets.npy", offsets)
    with pytest.raises(BundleError) as caught:
        FileStringColumn(tmp_path / "ids.bin", tmp_path / "ids.offsets.npy")
    assert str(caught.value) == (f"ids.offsets.npy (string offsets) has {described}; it must hold one row of at "
                                 "least one int32/uint32/int64/uint64 offset; the bundle is damaged or from a "
                                 "broken exporter, re-export it")


def test_catalog_ids_take_device_ids_first_and_never_search_non_strings():
    ids = CatalogIds(_column(["a", "b", "c"]))
    assert ids.nbytes == 0  # the index is built on first use
    assert ids.get("b") == 1 and ids.get("zz") is None and ids.get("zz", -7) == -7
    built = ids.base
    assert isinstance(built, IdIndex) and ids.base is built and ids.nbytes == built.nbytes > 0
    ids.added.update({"b": 10, "new": 11})
    assert ids.get("b") == 10 and ids["new"] == 11 and ids.bundle_row("b") == 1 and ids.bundle_row("new") is None
    assert ids.get("c", 99) == 2 and ids.get(3, "none") == "none" and ids.get(None) is None
    assert ids.get_many(["new", "a", "q", 5, "b", "c"]) == [11, 0, None, None, 10, 2]
    assert ids.get_many([]) == []
    assert "a" in ids and "new" in ids and "q" not in ids and 4 not in ids
    with pytest.raises(KeyError) as caught:
        ids["q"]
    assert caught.value.args == ("q",)
    ids.added[7] = 3  # a non-string key a caller put there is found, but never searched in the bundle
    assert ids.get(7) == 3 and ids.get_many([7, 8]) == [3, None]


def test_catalog_ids_row_zero_is_a_row():
    ids = CatalogIds(_column(["first", "second"]))
    assert ids.get("first", "missing") == 0 and ids["first"] == 0 and "first" in ids
    ids.added["device"] = 0
    assert ids.get("device", "missing") == 0 and ids.get_many(["device", "first"]) == [0, 0]


def test_catalog_ids_use_the_index_the_checks_built():
    given = IdIndex(_column(["x", "y"]))
    ids = CatalogIds(_column(["p", "q"]), given)
    assert ids.base is given and ids.nbytes == given.nbytes and ids.get("y") == 1 and ids.get("p") is None


def test_a_row_column_computes_the_rows_asked_for():
    asked = []

    def values_of(rows):
        asked.append((rows.dtype, rows.tolist()))
        return rows * 10

    column = RowColumn(4, values_of)
    assert len(column) == 4
    assert column[[2, 0]].tolist() == [20, 0] and column[3].tolist() == [30]
    assert column[np.array([[1], [2]], np.int32)].tolist() == [10, 20]
    assert asked == [(np.dtype(np.int64), [2, 0]), (np.dtype(np.int64), [3]), (np.dtype(np.int64), [1, 2])]
    assert column.max() == 30 and asked[-1] == (np.dtype(np.int64), [0, 1, 2, 3])
    assert RowColumn(4, values_of, lambda: 99).max() == 99 and len(asked) == 4  # the given maximum, no rows read
    assert RowColumn(3, lambda rows: -rows - 1).max() == -1


@pytest.mark.parametrize(("values", "median"), [
    ([5], 5.0), ([7, 1], 4.0), ([3, 9, 1], 3.0), ([4, 1, 3, 2], 2.5), ([1, 2, 100, 101, 5], 5.0),
    ([-3, -1], -2.0), ([6, 6, 1, 9], 6.0),
])
def test_the_stored_median_by_hand(values, median):
    for dtype in (np.int8, np.int64, np.float16, np.float32):
        result = stored_median(np.array(values, dtype))
        assert result == median and type(result) is float


def test_the_stored_median_widens_before_averaging():
    assert stored_median(np.array([127, 127], np.int8)) == 127.0  # int8 127 + 127 would wrap
    assert stored_median(np.array([60000, 65000], np.float16)) == 62496.0  # float16 sum overflows to inf
    assert stored_median(np.array([2**62 + 1, 2**62 + 3], np.int64)) == float(2**62 + 2)


def test_the_stored_median_is_nan_when_any_value_is():
    # the last: a partition at the middle alone leaves the NaN short of the end (found by search)
    for values in ([1.0, np.nan], [np.nan], [np.nan, 1.0, 2.0], [3.0, 1.0, 2.0, np.nan, 5.0],
                   [-0.13210485875606537, 0.6404226422309875, 0.10490011423826218, -0.5356693863868713,
                    0.3615950644016266, np.nan, 0.9470809698104858, -0.7037352323532104]):
        assert np.isnan(stored_median(np.array(values, np.float32)))
    values = np.array([1.0, np.nan, 2.0], np.float64)
    stored_median(values)
    assert np.isnan(values[1]) and values[0] == 1.0  # the stored column is left as it is


def test_string_column_picks_the_reader_of_its_storage(tmp_path):
    from edgerec.runtime.catalog_columns import string_column
    from edgerec.runtime.text_blocks import BlockStringColumn

    blob, offsets = _files(tmp_path)
    asked = []

    def array(name, mmap=True):
        asked.append((name, mmap))
        return np.array([0, 0], np.uint32)

    bundle = SimpleNamespace(path=lambda name: tmp_path / name, array=array,
                             manifest=SimpleNamespace(items=SimpleNamespace(count=4)))
    plain = string_column(bundle, SimpleNamespace(codec=None, file="ids.bin", offsets="ids.offsets.npy"))
    assert isinstance(plain, FileStringColumn) and plain.all() == STRINGS and asked == []
    packed = string_column(bundle, SimpleNamespace(codec="zlib", file="ids.bin", offsets="starts.npy", block_rows=3,
                                                   dictionary=None, raw_bytes=123))
    assert isinstance(packed, BlockStringColumn) and asked == [("starts.npy", False)]  # block starts: in memory
    assert (packed.count, packed.block_rows, packed.raw_bytes, packed.dictionary) == (4, 3, 123, b"")
    assert packed.starts.tolist() == [0, 0]
