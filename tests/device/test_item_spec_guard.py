"""The item-table section (runtime/item_spec.py) on hand-made item tables of three rows.

The hostile-bundle tests check that each broken table is a BundleError; these pin what the writer
stores (codes, dtypes and their width edges, which text is compressed, where the tags go), the
section's manifest form and file list, and every rule of `check` with its whole message and both
sides of its bound.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime.bundle import BundleWriter
from edgerec.runtime.item_spec import (
    CATEGORICAL,
    NUMERIC,
    STRING,
    ColumnSpec,
    ItemTableSpec,
    TableSpec,
    space_members,
    values_name,
    write_encoder_inputs,
    write_text,
)
from edgerec.runtime.tag_column import TagSpec

TAIL = "; the bundle is damaged or from a broken exporter, re-export it"


class Opened:
    """What `ItemTableSpec.check` reads of an opened bundle: its files, as the writer listed them."""

    def __init__(self, writer, version=None):
        self.root, self.id_index = writer.root, None
        self.manifest = SimpleNamespace(files=writer.files, format_version=version or writer.format_version)

    def path(self, name):
        if name not in self.manifest.files:
            raise BundleError(f"{name} is not a file of this bundle")
        return self.root / name

    def array(self, name):
        return np.load(self.path(name), mmap_mode="r", allow_pickle=False)


def table(tmp_path, version=5, *, count=3, ids=("a", "b", "c"), vectors=None, scales=None, numeric=None):
    """A writer and the item section of `count` items: float32 vectors 2 wide (or int8 with scales),
    ids, titles, tags, a genre and the durations."""
    writer = BundleWriter(tmp_path / f"b{version}", "t", version)
    vectors = np.arange(count * 2, dtype=np.float32).reshape(count, 2) if vectors is None else vectors
    embeddings = TableSpec(writer.add_array("items/embeddings.npy", vectors), str(vectors.dtype))
    if scales is not None:
        embeddings = TableSpec(embeddings.file, embeddings.dtype, writer.add_array("items/scales.npy", scales), "row")
    text = write_text(writer, {"ids": list(ids), "titles": [f"T{i}" for i in range(count)],
                               "tags": ["x|y", "", "y"][:count] + ["x"] * max(0, count - 3)})
    genre = ColumnSpec.write_categorical(writer, "genre", (["pop", "", "jazz"] * count)[:count])
    numbers = {"duration": ColumnSpec.write_numeric(writer, "duration", np.full(count, 60.0))}
    for name, values in (numeric or {}).items():
        numbers[name] = ColumnSpec(NUMERIC, writer.add_array(f"items/{name}.npy", values))
    return writer, ItemTableSpec(count, embeddings, text["strings"], {"genre": genre}, numbers, tags=text["tags"])


def refusal(writer, spec, dim=2, version=None) -> str:
    with pytest.raises(BundleError) as caught:
        spec.check(Opened(writer, version), dim)
    assert str(caught.value).endswith(TAIL), str(caught.value)
    return str(caught.value)[:-len(TAIL)]


def replace(writer, name, values) -> None:
    writer.add_array(name, values)  # rewrites the file and its listed size


# ------------------------------------------------------------------ writing


def test_categorical_codes_extend_the_given_vocabulary_sorted(tmp_path):
    writer = BundleWriter(tmp_path / "b", "t", 5)
    column = ColumnSpec.write_categorical(writer, "genre", ["b", "", "a", "b", "z"], vocab=["z"])
    assert column == ColumnSpec(CATEGORICAL, "items/genre.npy", vocab=("z", "a", "b"))
    codes = np.load(writer.root / "items/genre.npy")
    assert codes.tolist() == [2, -1, 1, 2, 0] and codes.dtype == np.int8
    assert ColumnSpec.write_categorical(writer, "e", []).vocab == ()


@pytest.mark.parametrize(("size", "dtype"), [(0, np.int8), (127, np.int8), (128, np.int16), (32767, np.int16),
                                             (32768, np.int32)])
def test_codes_take_the_narrowest_type_from_format_3_on(tmp_path, size, dtype):
    vocab = [f"v{i}" for i in range(size)]
    for version, wanted in ((3, dtype), (2, np.int32)):
        writer = BundleWriter(tmp_path / f"b{version}", "t", version)
        column = ColumnSpec.write_codes(writer, "g", np.array([-1, 0]), vocab)
        assert np.load(writer.root / column.file).dtype == wanted and column.vocab == tuple(vocab)


def test_numeric_columns_in_their_spec_dtype_narrowed_from_format_3_on(tmp_path):
    for version, durations, episodes, other in ((3, np.int16, np.int8, np.int8), (2, np.float32, np.int32, np.int64)):
        writer = BundleWriter(tmp_path / f"b{version}", "t", version)
        for name, values, wanted in (("duration", [600.0, 90.0], durations), ("episode", [1, 2], episodes),
                                     ("custom", np.array([5, 6], np.int64), other)):
            column = ColumnSpec.write_numeric(writer, name, values)
            assert column == ColumnSpec(NUMERIC, f"items/{name}.npy")
            stored = np.load(writer.root / column.file)
            assert stored.dtype == wanted and stored.tolist() == list(values), (version, name)
        half = np.load(writer.root / ColumnSpec.write_numeric(writer, "popularity", [0.5, 1e-7]).file)
        assert half.dtype == np.float32 and half.tolist() == [0.5, np.float32(1e-7)]  # 1e-7 is not a float16


def test_encoder_inputs_are_int32_narrowed_from_format_3_on(tmp_path):
    for version, wanted in ((3, np.int16), (2, np.int32)):
        writer = BundleWriter(tmp_path / f"b{version}", "t", version)
        name = write_encoder_inputs(writer, [1, 300])
        assert name == "items/encoder_inputs.npy" and np.load(writer.root / name).dtype == wanted
        assert write_encoder_inputs(writer, [2], "x.npy") == "x.npy"


def test_which_text_is_compressed_and_where_the_tags_go(tmp_path):
    values = {"ids": ["a", "b"], "titles": ["A", "B"], "tags": ["x|y", ""]}
    five = write_text(BundleWriter(tmp_path / "b5", "t", 5), values)
    assert set(five["strings"]) == {"ids", "titles"} and five["tags"] == TagSpec(
        "items/tags.offsets.npy", "items/tags.codes.npy", ("x", "y"))
    assert five["strings"]["ids"] == ColumnSpec(STRING, "items/ids.bin", offsets="items/ids.offsets.npy")
    titles = five["strings"]["titles"]
    assert (titles.file, titles.offsets, titles.codec, titles.block_rows, titles.raw_bytes) == (
        "items/titles.zlib", "items/titles.blocks.npy", "zlib", 16, 2)
    four = write_text(BundleWriter(tmp_path / "b4", "t", 4), values)
    assert four["tags"] is None and four["strings"]["tags"].codec == "zlib" and four["strings"]["ids"].codec is None
    three = write_text(BundleWriter(tmp_path / "b3", "t", 3), values)
    assert three["tags"] is None and [c.codec for c in three["strings"].values()] == [None, None, None]
    assert three["strings"]["tags"] == ColumnSpec(STRING, "items/tags.bin", offsets="items/tags.offsets.npy")


# ------------------------------------------------------------------ the manifest form


def test_table_and_column_specs_in_manifest_form_and_back():
    assert TableSpec.from_manifest({"file": "e", "dtype": "float32"}) == TableSpec("e", "float32")
    assert TableSpec.from_manifest({"file": "e", "dtype": "float32", "scale_axis": "dim"}).scale_axis is None
    assert TableSpec.from_manifest({"file": "e", "dtype": "int8", "scales": "s"}) == TableSpec("e", "int8", "s", "row")
    assert TableSpec.from_manifest({"file": "e", "dtype": "int8", "scales": "s", "scale_axis": "dim"}).scale_axis == "dim"
    assert TableSpec("e", "float16").to_manifest() == {"file": "e", "dtype": "float16"}
    assert TableSpec("e", "int8", "s", "dim").to_manifest() == {"file": "e", "dtype": "int8", "scales": "s",
                                                               "scale_axis": "dim"}
    forms = [
        (STRING, {"blob": "b", "offsets": "o"}, ColumnSpec(STRING, "b", offsets="o")),
        (STRING, {"blob": "b", "blocks": "k", "codec": "zlib", "block_rows": 4, "raw_bytes": 9},
         ColumnSpec(STRING, "b", offsets="k", codec="zlib", block_rows=4, raw_bytes=9)),
        (STRING, {"blob": "b", "blocks": "k", "codec": "zlib", "block_rows": 4, "raw_bytes": 9, "dictionary": "d"},
         ColumnSpec(STRING, "b", offsets="k", codec="zlib", block_rows=4, raw_bytes=9, dictionary="d")),
        (CATEGORICAL, {"codes": "c", "vocab": ["x", "y"]}, ColumnSpec(CATEGORICAL, "c", vocab=("x", "y"))),
        (NUMERIC, "n.npy", ColumnSpec(NUMERIC, "n.npy")),
    ]
    for kind, raw, spec in forms:
        assert ColumnSpec.from_manifest(kind, raw) == spec and spec.to_manifest() == raw
    assert ColumnSpec(STRING, "b", offsets="k", codec="zlib", block_rows=4, raw_bytes=9, dictionary="d").files() == [
        "b", "k", "d"]
    assert ColumnSpec(CATEGORICAL, "c").files() == ["c"]
    assert values_name(ColumnSpec(STRING, "b", offsets="o")) == "o" and values_name(ColumnSpec(NUMERIC, "n")) == "n"


@pytest.mark.parametrize("raw", [{"blob": "items/t.bin"}, {"blob": "items/t.bin", "offsets": "o", "codec": "zlib"}])
def test_a_string_column_needs_offsets_or_blocks_not_both(raw):
    with pytest.raises(BundleError) as caught:
        ColumnSpec.from_manifest(STRING, raw)
    assert str(caught.value) == ("string column items/t.bin must have offsets or a codec with blocks, not both or "
                                 "neither; the bundle is damaged or from a broken exporter, re-export it")


def test_the_section_lists_its_files_in_order_and_round_trips(tmp_path):
    writer, spec = table(tmp_path, 5, scales=None)
    spec = ItemTableSpec(spec.count, TableSpec("e.npy", "int8", "s.npy", "row"), spec.strings, spec.categorical,
                         spec.numeric, encoder_inputs="in.npy", tags=spec.tags)
    assert spec.files() == ["e.npy", "s.npy", "items/ids.bin", "items/ids.offsets.npy", "items/titles.zlib",
                            "items/titles.blocks.npy", "items/titles.zdict", "items/genre.npy", "items/duration.npy",
                            "items/tags.offsets.npy", "items/tags.codes.npy", "in.npy"]
    raw = spec.to_manifest()
    assert raw["encoder_inputs"] == "in.npy" and raw["tags"]["vocab"] == ["x", "y"] and raw["count"] == 3
    assert ItemTableSpec.from_manifest(raw) == spec
    assert list(spec.columns()) == ["ids", "titles", "genre", "duration"]
    plain = ItemTableSpec(2, TableSpec("e.npy", "float32"))
    assert plain.files() == ["e.npy"] and plain.to_manifest() == {
        "count": 2, "embeddings": {"file": "e.npy", "dtype": "float32"}, "strings": {}, "categorical": {}, "numeric": {}}
    assert ItemTableSpec.from_manifest(plain.to_manifest()) == plain
    assert space_members(spec) == ["e.npy", "s.npy", "in.npy"] == space_members(raw)
    assert space_members(plain) == ["e.npy", None, None] == space_members(plain.to_manifest())


# ------------------------------------------------------------------ check: the vectors


def test_a_well_formed_section_passes_in_every_format(tmp_path):
    for version in (2, 3, 4, 5):
        writer, spec = table(tmp_path, version)
        opened = Opened(writer)
        spec.check(opened, 2)
        assert opened.id_index is not None and opened.id_index.duplicate() is None


def test_the_table_must_have_the_manifest_dtype_shape_and_finite_values(tmp_path):
    writer, spec = table(tmp_path)
    assert refusal(writer, spec, dim=3) == ("items/embeddings.npy has shape (3, 2); it must be (items.count, dim) "
                                            "= (3, 3)")
    half = ItemTableSpec(3, TableSpec(spec.embeddings.file, "float16"), spec.strings, spec.categorical, spec.numeric,
                         tags=spec.tags)
    assert refusal(writer, half) == ("items/embeddings.npy has dtype float32, the manifest says "
                                     "items.embeddings.dtype float16")
    replace(writer, "items/embeddings.npy", np.array([[0, 1], [2, np.inf], [4, 5]], np.float32))
    assert refusal(writer, spec) == "items/embeddings.npy holds NaN or infinite values"
    replace(writer, "items/embeddings.npy", np.array([[0, 1], [2, np.nan], [4, 5]], np.float32))
    assert refusal(writer, spec) == "items/embeddings.npy holds NaN or infinite values"


@pytest.mark.parametrize(("scales", "ok"), [
    ([1.0, 1e-30, 1000.0], True), ([1.0, 0.0, 1.0], False), ([1.0, -1.0, 1.0], False),
    ([1.0, 1000.001, 1.0], False), ([1.0, np.nan, 1.0], False), ([np.inf, 1.0, 1.0], False),
])
def test_int8_scales_are_finite_positive_and_at_most_a_thousand(tmp_path, scales, ok):
    writer, spec = table(tmp_path, vectors=np.ones((3, 2), np.int8), scales=np.array(scales, np.float32))
    if ok:
        spec.check(Opened(writer), 2)
    else:
        assert refusal(writer, spec) == "items/scales.npy must hold finite, positive float32 scales of at most 1000"


def test_int8_scales_must_be_float32(tmp_path):
    writer, spec = table(tmp_path, vectors=np.ones((3, 2), np.int8), scales=np.ones(3, np.float64))
    assert refusal(writer, spec) == "items/scales.npy must hold finite, positive float32 scales of at most 1000"


# ------------------------------------------------------------------ check: the columns


def test_column_shapes_and_dtypes(tmp_path):
    writer, spec = table(tmp_path)
    replace(writer, "items/genre.npy", np.zeros(2, np.int8))
    assert refusal(writer, spec) == "items/genre.npy (column genre) has shape (2,); it must hold 3 values"
    replace(writer, "items/genre.npy", np.zeros(3, bool))
    assert refusal(writer, spec) == "items/genre.npy (column genre) has dtype bool; it must be numeric"
    writer, spec = table(tmp_path / "o")
    replace(writer, "items/ids.offsets.npy", np.array([0, 1, 2], np.int64))
    assert refusal(writer, spec) == "items/ids.offsets.npy (column ids) has shape (3,); it must hold 4 values"


@pytest.mark.parametrize(("version", "codes", "message"), [
    (5, [-1, 0, 1], None), (5, [1, 1, 1], None), (5, [0, 2, 0], "int8/int16/int32 codes from -1 to 1"),
    (5, [0, -2, 0], "int8/int16/int32 codes from -1 to 1"), (2, np.array([0, 1, 0], np.int8), "int32 codes from -1 to 1"),
    (5, np.array([0, 1, 0], np.int64), "int8/int16/int32 codes from -1 to 1"),
    (5, np.array([0, 1, 0], np.uint8), "int8/int16/int32 codes from -1 to 1"),
])
def test_categorical_codes_inside_their_vocabulary(tmp_path, version, codes, message):
    writer, spec = table(tmp_path, version)  # genre's vocabulary: jazz, pop
    replace(writer, "items/genre.npy", np.asarray(codes, np.int32) if isinstance(codes, list) else codes)
    if message is None:
        spec.check(Opened(writer), 2)
    else:
        assert refusal(writer, spec) == f"items/genre.npy (column genre) must hold {message} (its vocabulary)"


@pytest.mark.parametrize(("name", "values", "message"), [
    ("duration", np.array([0, 1, 2], np.float64), "has dtype float64; it must be float32 or a narrower one of its kind"),
    ("duration", np.array([0, np.nan, 2], np.float32), "holds NaN or infinite values"),
    ("duration", np.array([0, -0.5, 2], np.float32), "must hold values from 0 to 3.40282e+38"),
    ("duration", np.array([0, 0, 0], np.uint8), None),
    ("popularity", np.array([0, -1e-9, 2], np.float32), "must hold values from 0 to 3.40282e+38"),
    ("hubness", np.array([-1.0, 1.0, 0], np.float32), None),
    ("hubness", np.array([-1.002, 0, 0], np.float32), "must hold values from -1 to 1"),
    ("hubness", np.array([0, 1.002, 0], np.float32), "must hold values from -1 to 1"),
    ("hubness", np.array([0, 1.0005, 0], np.float32), "must hold values from -1 to 1"),  # spec rule 8: [-1, 1]
    ("release_ts", np.array([-10**11, 10**11, 0], np.int64), None),
    ("release_ts", np.array([0, 10**11 + 1, 0], np.int64), "must hold values from -1e+11 to 1e+11"),
    ("episode", np.array([0, 2**31 - 1, 0], np.int32), None),
    ("episode", np.array([0, -1, 0], np.int32), "must hold values from 0 to 2.14748e+09"),
    ("episode", np.array([0, 1, 0], np.int64), "has dtype int64; it must be int32 or a narrower one of its kind"),
    ("custom", np.array([-1e30, 1e30, 0], np.float64), None),
    ("custom", np.array([0, np.inf, 0], np.float64), "holds NaN or infinite values"),
])
def test_numeric_columns_by_name(tmp_path, name, values, message):
    writer, spec = table(tmp_path, numeric={name: values} if name != "duration" else None)
    replace(writer, f"items/{name}.npy", values)
    if message is None:
        spec.check(Opened(writer), 2)
    else:
        assert refusal(writer, spec) == f"items/{name}.npy (column {name}) {message}"


def test_format_2_numeric_columns_have_their_exact_dtype(tmp_path):
    writer, spec = table(tmp_path, 2)
    replace(writer, "items/duration.npy", np.zeros(3, np.float16))
    assert refusal(writer, spec) == "items/duration.npy (column duration) has dtype float16; it must be float32"


def test_an_empty_table_skips_the_value_checks(tmp_path):
    writer, spec = table(tmp_path, count=0, ids=())
    spec.check(Opened(writer), 2)


# ------------------------------------------------------------------ check: the text


def test_string_offsets_rise_from_0_to_the_blob(tmp_path):
    writer, spec = table(tmp_path)  # ids a, b, c: a 3-byte blob
    for offsets in ([1, 1, 2, 3], [0, 1, 2, 4], [0, 2, 1, 3], [0, 1, 2, 2]):
        replace(writer, "items/ids.offsets.npy", np.array(offsets, np.int64))
        assert refusal(writer, spec) == ("items/ids.offsets.npy (column ids) must hold int64/uint32 offsets rising "
                                         "from 0 to the blob's 3 bytes"), offsets
    replace(writer, "items/ids.offsets.npy", np.array([0, 1, 2, 3], np.int32))
    assert refusal(writer, spec).startswith("items/ids.offsets.npy (column ids) must hold int64/uint32 offsets")
    writer, spec = table(tmp_path / "two", 2)
    replace(writer, "items/ids.offsets.npy", np.array([0, 1, 2, 3], np.uint32))
    assert refusal(writer, spec) == ("items/ids.offsets.npy (column ids) must hold int64 offsets rising from 0 to the "
                                     "blob's 3 bytes")


def test_ids_are_unique_and_not_empty(tmp_path):
    writer, spec = table(tmp_path, ids=("a", "b", "a"))
    assert refusal(writer, spec) == "items/ids.bin (column ids) must hold unique, non-empty item ids"
    writer, spec = table(tmp_path / "e", ids=("a", "", "b"))
    assert refusal(writer, spec) == "items/ids.bin (column ids) must hold unique, non-empty item ids"
    writer, spec = table(tmp_path / "f", ids=("", "a", "b"))
    assert refusal(writer, spec) == "items/ids.bin (column ids) must hold unique, non-empty item ids"


def test_ids_the_api_would_refuse_are_refused_on_open(tmp_path):
    """An item with such an id was shown, and then record() and remove_items() refused it."""
    writer, spec = table(tmp_path, ids=("a", "b\x00c", "d"))
    assert refusal(writer, spec) == "items/ids.bin (column ids) holds an id with a NUL character; item ids are plain text"
    writer, spec = table(tmp_path / "long", ids=("a", "x" * 257, "d"))
    assert refusal(writer, spec) == "items/ids.bin (column ids) holds an id of 257 characters; the device takes at most 256"
    writer, spec = table(tmp_path / "wide", ids=("a", "é" * 256, "x" * 256))  # 512 bytes, 256 characters: fine
    spec.check(Opened(writer), 2)


def test_text_must_be_utf8_cut_at_character_boundaries(tmp_path):
    writer, spec = table(tmp_path, ids=("é", "b", "c"))  # a 4-byte blob: c3 a9 62 63
    replace(writer, "items/ids.offsets.npy", np.array([0, 1, 3, 4], np.int64))
    assert refusal(writer, spec) == "items/ids.offsets.npy (column ids) has an offset inside a UTF-8 character"
    (writer.root / "items/ids.bin").write_bytes(b"\xffbc")
    writer.add_file("items/ids.bin")
    replace(writer, "items/ids.offsets.npy", np.array([0, 1, 2, 3], np.int64))
    assert refusal(writer, spec) == "items/ids.bin (column ids) is not valid UTF-8 (invalid start byte)"
    (writer.root / "items/ids.bin").write_bytes(b"abc\xc3")
    writer.add_file("items/ids.bin")
    replace(writer, "items/ids.offsets.npy", np.array([0, 1, 2, 4], np.int64))
    assert refusal(writer, spec) == "items/ids.bin (column ids) is not valid UTF-8 (unexpected end of data)"


def test_compressed_columns_only_where_the_format_allows_them(tmp_path):
    writer, spec = table(tmp_path, 5)
    rule = "cannot be compressed: only text columns of format 4 or later bundles may be, with codec zlib and block_rows >= 1"
    assert refusal(writer, spec, version=3) == f"items/titles.zlib (column titles) {rule}"
    titles = spec.strings["titles"]
    for bad in (ColumnSpec(**{**titles.__dict__, "codec": "lz4"}), ColumnSpec(**{**titles.__dict__, "block_rows": 0})):
        broken = ItemTableSpec(3, spec.embeddings, {**spec.strings, "titles": bad}, spec.categorical, spec.numeric,
                               tags=spec.tags)
        assert refusal(writer, broken) == f"items/titles.zlib (column titles) {rule}"
    ids = ColumnSpec(**{**titles.__dict__, "file": "items/ids.bin"})
    broken = ItemTableSpec(3, spec.embeddings, {**spec.strings, "ids": ids}, spec.categorical, spec.numeric,
                           tags=spec.tags)
    assert refusal(writer, broken) == f"items/ids.bin (column ids) {rule}"
    one = ColumnSpec(**{**titles.__dict__, "block_rows": 1})  # 1 row a block: 3 blocks, 4 starts
    broken = ItemTableSpec(3, spec.embeddings, {**spec.strings, "titles": one}, spec.categorical, spec.numeric,
                           tags=spec.tags)
    size = writer.files["items/titles.zlib"]["bytes"]
    assert refusal(writer, broken) == (f"items/titles.blocks.npy (column titles) must hold 4 block starts rising "
                                       f"from 0 to the blob's {size} bytes")


@pytest.mark.parametrize("starts", [[1, "size"], [0, "size+1"], [0, 5, "size"], [0], [0, "size-1"]])
def test_block_starts_rise_from_0_to_the_blob(tmp_path, starts):
    writer, spec = table(tmp_path, 5)
    size = writer.files["items/titles.zlib"]["bytes"]
    values = [eval(s, {"size": size}) if isinstance(s, str) else s for s in starts]
    replace(writer, "items/titles.blocks.npy", np.array(values, np.int64))
    assert refusal(writer, spec) == (f"items/titles.blocks.npy (column titles) must hold 2 block starts rising from 0 "
                                     f"to the blob's {size} bytes")
    replace(writer, "items/titles.blocks.npy", np.array([0, size], np.float64))
    assert refusal(writer, spec).startswith("items/titles.blocks.npy (column titles) must hold 2 block starts")
    replace(writer, "items/titles.blocks.npy", np.array([0, size], np.uint16))
    spec.check(Opened(writer), 2)


def test_the_tags_are_codes_from_format_5_on_and_text_before(tmp_path):
    writer, spec = table(tmp_path, 5)
    assert refusal(writer, spec, version=4) == ("manifest.json (items) must hold the tags as text (items.strings.tags) "
                                                "in a format 4 bundle, and nowhere else")
    both = ItemTableSpec(3, spec.embeddings, {**spec.strings, "tags": spec.strings["titles"]}, spec.categorical,
                         spec.numeric, tags=spec.tags)
    assert refusal(writer, both) == ("manifest.json (items) must hold the tags as codes (items.tags) in a format 5 "
                                     "bundle, and nowhere else")
    writer, spec = table(tmp_path / "four", 4)
    assert refusal(writer, spec, version=5) == ("manifest.json (items) must hold the tags as codes (items.tags) in a "
                                                "format 5 bundle, and nowhere else")
    none = ItemTableSpec(3, spec.embeddings, {k: v for k, v in spec.strings.items() if k != "tags"}, spec.categorical,
                         spec.numeric)
    assert refusal(writer, none) == ("manifest.json (items) must hold the tags as text (items.strings.tags) in a "
                                     "format 4 bundle, and nowhere else")


def test_the_tag_codes_are_checked_against_the_count(tmp_path):
    writer, spec = table(tmp_path, 5)
    replace(writer, "items/tags.codes.npy", np.array([0, 1, 2], np.uint8))
    with pytest.raises(BundleError, match=r"^items/tags.codes.npy \(tag codes\) holds a code outside"):
        spec.check(Opened(writer), 2)


# ------------------------------------------------------------------ check: the encoder inputs


@pytest.mark.parametrize(("values", "ok"), [
    (np.array([1, 2, 3], np.int32), True), (np.array([1, 200, 3], np.uint8), True),
    (np.array([1, 0, 3], np.int32), False), (np.array([-1, 2, 3], np.int64), False),
    (np.array([1, 2], np.int32), False), (np.array([1, 2, 3, 4], np.int32), False),
    (np.array([1.0, 2.0, 3.0], np.float32), False), (np.array([[1, 2, 3]], np.int32), False),
    (np.array([1, 2**31 - 1, 3], np.int64), True), (np.array([1, 2**31, 3], np.int64), False),
    (np.array([2**32 + 2, 2, 3], np.int64), False), (np.array([2**64 - 1, 2, 3], np.uint64), False),
])
def test_encoder_inputs_hold_one_int32_input_of_at_least_1_per_item(tmp_path, values, ok):
    writer, spec = table(tmp_path)
    spec = ItemTableSpec(3, spec.embeddings, spec.strings, spec.categorical, spec.numeric,
                         encoder_inputs=write_encoder_inputs(writer, [1, 1, 1]), tags=spec.tags)
    replace(writer, spec.encoder_inputs, values)
    if ok:
        spec.check(Opened(writer), 2)
    else:
        assert refusal(writer, spec) == ("items/encoder_inputs.npy (encoder_inputs) must hold one integer input from 1 "
                                         f"to 2147483647 per item (3); it has shape {values.shape}")


def test_an_encoder_input_beyond_int32_is_refused_not_wrapped_to_another_item(tmp_path):
    """Found by mutation testing: inputs were checked >= 1 only, and the encoder casts them to the
    model's input dtype (int32 for TFLite), so 2**32 + 2 ran as item input 2 (and a uint64 of
    2**64 - 1 as -1, which a Gather reads as the last row): a silently wrong user vector."""
    writer, spec = table(tmp_path)
    spec = ItemTableSpec(3, spec.embeddings, spec.strings, spec.categorical, spec.numeric,
                         encoder_inputs=writer.add_array("items/encoder_inputs.npy", np.array([2**32 + 2, 2, 3])),
                         tags=spec.tags)
    assert np.array([2**32 + 2]).astype(np.int32).tolist() == [2]  # what the encoder would have run
    with pytest.raises(BundleError, match=r"^items/encoder_inputs.npy \(encoder_inputs\) must hold one integer input "
                                          r"from 1 to 2147483647 per item \(3\)"):
        spec.check(Opened(writer), 2)


def test_no_encoder_inputs_for_no_items(tmp_path):
    writer, spec = table(tmp_path, count=0, ids=())
    spec = ItemTableSpec(0, spec.embeddings, spec.strings, spec.categorical, spec.numeric,
                         encoder_inputs=writer.add_array("items/encoder_inputs.npy", np.zeros(0, np.int32)),
                         tags=spec.tags)
    spec.check(Opened(writer), 2)
