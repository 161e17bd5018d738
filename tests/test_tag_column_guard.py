"""Guard tests of runtime/tag_column.py (mutation testing, note 11 of tools/mutation-scores.md): tag
columns written and read by hand (codes of every width, offsets of either width and byte order, rows
without tags), the checks' whole messages, the kept rows' bound, and the text scan's exact matches."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime import tag_column
from edgerec.runtime.bundle import BundleWriter
from edgerec.runtime.catalog_columns import StringColumn
from edgerec.runtime.tag_column import TagColumn, TagSpec, TextTags

TAIL = "; the bundle is damaged or from a broken exporter, re-export it"


class _Files:
    """The one thing TagColumn and TagSpec.check ask of a bundle: a file's path."""

    def __init__(self, writer: BundleWriter):
        self.path = writer.file_path


def _strings(values: list[str]) -> StringColumn:
    data = [v.encode() for v in values]
    offsets = np.r_[0, np.cumsum([len(d) for d in data])].astype(np.uint32)
    return StringColumn(np.frombuffer(b"".join(data) or b"\0", np.uint8)[: offsets[-1]], offsets)


def _hand_made(tmp_path, offsets: np.ndarray, codes: np.ndarray, vocab) -> tuple[_Files, TagSpec]:
    writer = BundleWriter(tmp_path / "b", "x")
    spec = TagSpec(writer.add_array("t.offsets.npy", offsets), writer.add_array("t.codes.npy", codes), tuple(vocab))
    return _Files(writer), spec


def test_the_writer_names_its_files_and_picks_each_width_at_its_edge(tmp_path):
    writer = BundleWriter(tmp_path / "b", "x")
    spec = TagSpec.write(writer, ["b|a", "", "a"])
    assert (spec.offsets, spec.codes, spec.vocab) == ("items/tags.offsets.npy", "items/tags.codes.npy", ("a", "b"))
    offsets = np.load(writer.file_path(spec.offsets))
    assert offsets.dtype == np.uint32 and offsets.tolist() == [0, 2, 2, 3]
    assert spec.to_manifest() == {"offsets": spec.offsets, "codes": spec.codes, "vocab": ["a", "b"]}
    assert TagSpec.from_manifest(spec.to_manifest()) == spec and spec.files() == [spec.offsets, spec.codes]
    for size, dtype in ((256, np.uint8), (257, np.uint16), (65_536, np.uint16), (65_537, np.uint32)):
        texts = [f"t{i:06d}" for i in range(size)]
        written = TagSpec.write(writer, texts, stem=f"items/v{size}")
        codes = np.load(writer.file_path(written.codes))
        assert codes.dtype == dtype and codes[-1] == size - 1 and len(written.vocab) == size, size
    empty = TagSpec.write(writer, [], stem="items/none")
    assert np.load(writer.file_path(empty.offsets)).tolist() == [0] and empty.vocab == ()


@pytest.mark.parametrize("size", [300, 70_000])  # uint16 and uint32 codes: decoded from bytes, not one byte a code
def test_wide_codes_read_back(tmp_path, size):
    writer = BundleWriter(tmp_path / "b", "x")
    texts = [f"t{i:06d}|t{size - 1 - i:06d}" if i % 3 else "" for i in range(size)]
    bundle = _Files(writer)
    column = TagColumn(bundle, TagSpec.write(writer, texts))
    assert column.count == len(column) == size
    assert column.tags(1) == (f"t{1:06d}", f"t{size - 2:06d}") and column.tags(0) == () and column[3] == ""
    assert column[size - 1] == texts[size - 1] and column.all()[:5] == texts[:5]


@pytest.mark.parametrize("offsets_dtype, codes_dtype", [("<u4", "u1"), ("<i8", "<u2"), ("<u4", "<u2"), ("<i8", "u1")])
def test_offsets_and_codes_are_read_in_the_width_and_byte_order_their_headers_state(tmp_path, offsets_dtype,
                                                                                      codes_dtype):
    vocab = ("drama", "jazz", "live", "news")
    offsets = np.array([0, 2, 2, 5, 6], offsets_dtype)
    codes = np.array([3, 0, 1, 1, 2, 0], codes_dtype)
    bundle, spec = _hand_made(tmp_path, offsets, codes, vocab)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. line buffering asked of a binary file
        column = TagColumn(bundle, spec)
    assert [column.tags(r) for r in range(4)] == [("news", "drama"), (), ("jazz", "jazz", "live"), ("drama",)]
    assert column.all() == ["news|drama", "", "jazz|jazz|live", "drama"]
    assert column.rows_with(["jazz", "nope"]).tolist() == [False, False, True, False]
    with pytest.raises(IndexError, match=r"^row 4 is outside the tag column's 4 rows$"):
        column.tags(4)
    with pytest.raises(IndexError, match=r"^row -1 is outside the tag column's 4 rows$"):
        column.tags(-1)


def test_a_row_is_read_once_and_the_kept_rows_start_over_at_their_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(tag_column, "KEPT_ROWS", 3)
    bundle, spec = _hand_made(tmp_path, np.array([0, 1, 2, 3, 4], np.uint32), np.array([0, 1, 0, 1], np.uint8),
                              ("a", "b"))
    column = TagColumn(bundle, spec)
    column._native = None  # every read through _read, to count them (the compiled reader: test_native_reads)
    reads = []
    real = column._read
    column._read = lambda row: reads.append(row) or real(row)
    assert [column.tags(r) for r in (0, 1, 0, 2, 1)] == [("a",), ("b",), ("a",), ("a",), ("b",)]
    assert reads == [0, 1, 2] and len(column._kept) == 3  # exactly the bound: kept
    assert column.tags(3) == ("b",) and column._kept == {3: ("b",)}  # one more: starts over
    assert list(column.counts([3, 0, 3]).items()) == [("b", 2), ("a", 1)] and reads == [0, 1, 2, 3, 0]


def test_the_scan_marks_each_block_of_rows_on_its_own(tmp_path, monkeypatch):
    """Rows after the first block, and a block without a match after one with matches."""
    monkeypatch.setattr(tag_column, "SCAN_ROWS", 2)
    codes = np.array([1, 0, 1, 0, 0, 1], np.uint8)  # rows: (b), (a, b), (), (a), (a), (b)
    bundle, spec = _hand_made(tmp_path, np.array([0, 1, 3, 3, 4, 5, 6], np.uint32), codes, ("a", "b"))
    column = TagColumn(bundle, spec)
    assert column.rows_with(["b"]).tolist() == [True, True, False, False, False, True]
    assert column.rows_with(["a"]).tolist() == [False, True, False, True, True, False]
    assert column.rows_with([]).dtype == bool


@pytest.mark.parametrize("offsets, codes, vocab, file, rule", [
    ([0, 1, 2], [0, 1], ("a", "a"), "manifest.json", "(items.tags.vocab) must hold distinct tags without '|'"),
    ([0, 1, 2], [0, 1], ("a", "b|c"), "manifest.json", "(items.tags.vocab) must hold distinct tags without '|'"),
    ([0, 1, 2], np.array([0, 1], np.int16), ("a", "b"), "t.codes.npy",
     "(tag codes) must be one row of uint8/uint16/uint32 codes; it has dtype int16 and shape (2,)"),
    ([0, 1, 2], [0, 2], ("a", "b"), "t.codes.npy", "(tag codes) holds a code outside the vocabulary of 2 tags"),
    (np.array([0, 1, 2], np.int32), [0, 1], ("a", "b"), "t.offsets.npy",
     "(tag offsets) must hold 3 uint32/int64 offsets rising from 0 to the 2 codes"),
    ([0, 1, 2, 2], [0, 1], ("a", "b"), "t.offsets.npy",  # one offset too many, first and last right
     "(tag offsets) must hold 3 uint32/int64 offsets rising from 0 to the 2 codes"),
    ([1, 1, 2], [0, 1], ("a", "b"), "t.offsets.npy",
     "(tag offsets) must hold 3 uint32/int64 offsets rising from 0 to the 2 codes"),
    ([0, 2, 1], [0, 1], ("a", "b"), "t.offsets.npy",
     "(tag offsets) must hold 3 uint32/int64 offsets rising from 0 to the 2 codes"),
])
def test_the_checks_refuse_with_the_file_and_the_rule(tmp_path, offsets, codes, vocab, file, rule):
    offsets = offsets if isinstance(offsets, np.ndarray) else np.array(offsets, np.uint32)
    codes = codes if isinstance(codes, np.ndarray) else np.array(codes, np.uint8)
    bundle, spec = _hand_made(tmp_path, offsets, codes, vocab)
    with pytest.raises(BundleError) as refused:
        spec.check(bundle, 2)
    assert str(refused.value) == f"{file} {rule}{TAIL}"


def test_the_checks_pass_a_valid_column(tmp_path):
    bundle, spec = _hand_made(tmp_path, np.array([0, 0, 2], np.int64), np.array([1, 0], np.uint16), ("a", "b"))
    spec.check(bundle, 2)
    assert TagColumn(bundle, spec).all() == ["", "b|a"]


def test_the_text_scan_matches_whole_tags_only():
    """Format 2 to 4 tags as text: a tag matches at a row's start or after a '|', and ends at the row's end
    or before a '|' (never in the next row), in every row it occurs in."""
    texts = ["rock|new", "wave|pop", "ab", "abc", "cab|d", "x|ab", "ab|ab", "", "ab"]
    column = TextTags(_strings(texts))
    found = column.rows_with(["ab"])
    assert found.dtype == bool and found.tolist() == [False, False, True, False, False, True, True, False, True]
    assert column.rows_with(["rock"]).tolist() == [True] + [False] * 8
    assert column.rows_with(["pop", "d"]).tolist() == [False, True, False, False, True, False, False, False, False]
    assert column.rows_with(["newwave"]).tolist() == [False] * 9  # "new" ends row 0, "wave" starts row 1
    assert column.rows_with(["rock|new"]).tolist() == [False] * 9  # two tags, not one
    assert column.rows_with(["", "zzz"]).tolist() == [False] * 9 and column.rows_with([]).dtype == bool
    assert column.tags(4) == ("cab", "d") and column[5] == "x|ab" and len(column) == 9
    assert column.all() == texts


def test_a_failed_text_match_that_runs_into_the_next_row_does_not_hide_that_rows_match():
    # rows "a" and "aa" are stored as "aaa": the first try at "aa" starts in row 0 and ends in row 1
    column = TextTags(_strings(["a", "aa", "b|aa"]))
    assert column.rows_with(["aa"]).tolist() == [False, True, True]
