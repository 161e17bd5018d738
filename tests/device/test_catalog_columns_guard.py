"""Guards of runtime/catalog_columns.py beyond tests/test_catalog_columns_guard.py (mutation testing, note 32
of tools/mutation-scores.md): the file layout a string column hands to the compiled id lookup (pread_args:
which offsets it can read, signed or not), its files opened without a warning, and the per-request views of
the id index (CatalogIds.as_of): one shared bundle index, device-added rows from the view's size on not its own."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime.catalog_columns import CatalogIds, FileStringColumn, StringColumn
from edgerec.runtime.id_index import IdIndex

IDS = ["a", "b", "é€", "", "dd"]  # a multi-byte id and an empty one


def _files(tmp_path, dtype: str):
    data = [s.encode() for s in IDS]
    bounds = np.r_[0, np.cumsum([len(d) for d in data])]
    (tmp_path / "ids.bin").write_bytes(b"".join(data))
    np.save(tmp_path / "ids.offsets.npy", bounds.astype(dtype))
    return tmp_path / "ids.bin", tmp_path / "ids.offsets.npy", bounds


def _memory_column(strings) -> StringColumn:
    data = [s.encode() for s in strings]
    offsets = np.r_[0, np.cumsum([len(d) for d in data])].astype(np.int64)
    return StringColumn(np.frombuffer(b"".join(data) + b"\0", np.uint8)[: offsets[-1]], offsets)


@pytest.mark.parametrize("dtype", ["<i8", "<u8", "<i4", "<u4"])
def test_little_endian_offsets_are_handed_to_the_compiled_lookup(tmp_path, dtype):
    blob, offsets, bounds = _files(tmp_path, dtype)
    column = FileStringColumn(blob, offsets)
    args = column.pread_args()
    assert sys.byteorder == "little" and args is not None and len(args) == 5
    offsets_fd, start, width, signed, blob_fd = args
    assert (width, signed) == (np.dtype(dtype).itemsize, int(dtype[1] == "i"))
    assert start == os.path.getsize(offsets) - len(bounds) * width  # where the .npy header ends
    assert os.pread(offsets_fd, len(bounds) * width, start) == bounds.astype(dtype).tobytes()
    assert os.pread(blob_fd, 100, 0) == "".join(IDS).encode()
    assert column.pread_args() == args  # the same open files every time


@pytest.mark.parametrize("dtype", [">i8", ">u8", ">i4", ">u4"])
def test_big_endian_offsets_are_refused_as_the_column_opens(tmp_path, dtype):
    """The spec's one layout, checked on open: a big-endian column opened and failed at the first request."""
    with pytest.raises(BundleError, match="is stored big-endian or in Fortran order"):
        FileStringColumn(*_files(tmp_path, dtype)[:2])


@pytest.mark.parametrize("dtype", ["<i8", "<u4", "<i4"])
def test_an_index_over_a_file_column_finds_every_id_with_each_layout(tmp_path, dtype):
    index = IdIndex(FileStringColumn(*_files(tmp_path, dtype)[:2]))
    assert index.get_many(IDS + ["zz", "a\0"]) == [0, 1, 2, 3, 4, None, None]


def test_a_file_column_opens_its_files_without_a_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # line buffering of a binary file warns (RuntimeWarning)
        column = FileStringColumn(*_files(tmp_path, "<i8")[:2])
        assert column[2] == "é€"


def test_a_view_shares_the_bundle_index_built_once():
    ids = CatalogIds(_memory_column(["a", "b", "c"]))
    view = ids.as_of(3)
    assert ids.nbytes > 0  # a view is taken per request: the index is built then, for the catalog
    assert view.base is ids.base and view.as_of(3).base is ids.base and view.nbytes == ids.nbytes
    given = IdIndex(_memory_column(["a", "b", "c"]))
    assert CatalogIds(_memory_column(["x"]), given).as_of(1).base is given


def test_a_view_leaves_out_rows_added_after_it():
    ids = CatalogIds(_memory_column(["a", "b", "c"]))
    ids.added["early"] = 3
    view = ids.as_of(4)  # the catalog had rows 0..3 when the view was taken
    ids.added.update({"late": 4, "b": 5})  # added later, and a bundle id taken over later
    assert view.added is ids.added  # shared, not copied per request
    assert [view.get(i) for i in ("early", "late", "b", "a")] == [3, None, 1, 0]
    assert view.get("late", "gone") == "gone" and view.get_many(["late", "b", "early", 7]) == [None, 1, 3, None]
    assert "late" not in view and "early" in view and view["b"] == 1
    with pytest.raises(KeyError):
        view["late"]
    assert [ids.get(i) for i in ("early", "late", "b")] == [3, 4, 5]  # the catalog itself sees them all
    assert ids.as_of(5).get_many(["late", "b"]) == [4, 1] and ids.as_of(6).get("b") == 5  # row == size: not its own
    assert view.as_of(6).get("b") == 5 and view.get("b") == 1  # a view of a view has the size it was given
    ids.added[9] = 2  # a non-string key: found in the view (row below its size), never searched in the bundle
    assert view.get(9) == 2 and view.as_of(2).get(9) is None and view.as_of(2).get_many([9]) == [None]


def test_a_view_of_no_rows_owns_no_added_row():
    ids = CatalogIds(_memory_column([]))
    ids.added["n"] = 0
    assert ids.as_of(0).get("n") is None and ids.as_of(1).get("n") == 0 and ids.get("n") == 0
