"""The item-table section of the manifest as types: what the host writes and the device reads.

`ItemTableSpec` replaces the untyped `items` dict: the vectors (`TableSpec`)
and the metadata columns (`ColumnSpec`: strings, categorical codes with their
vocabulary, numeric values), each written through the same helpers so file
names and dtypes are defined once. `check` applies the rules the JSON Schema
cannot state (row counts, widths, dtypes, finite positive scales, codes inside
their vocabulary); each message names the file and the rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgerec.errors import BundleError
from edgerec.runtime import narrow, text_blocks
from edgerec.runtime.file_blocks import array_stats, npy_header, string_blocks
from edgerec.runtime.file_blocks import damaged as _fail
from edgerec.runtime.item_table import StoredTable
from edgerec.runtime.narrow import narrowest, stores_as
from edgerec.runtime.tag_column import TAGS_FORMAT, TagSpec
from edgerec.runtime.text_checks import check_text

STRING, CATEGORICAL, NUMERIC = "string", "categorical", "numeric"
CODE_DTYPE = np.int32  # categorical codes; -1 means "none" (format 3: the narrowest of int8/16/32)
OFFSET_DTYPE = np.int64  # string offsets into the UTF-8 blob (format 3: uint32 below 4 GiB)
NUMERIC_DTYPES = {"duration": np.float32, "release_ts": np.int64, "episode": np.int32, "popularity": np.float32,
                  "hubness": np.float32}
F32_MAX = float(np.finfo(np.float32).max)  # ranges: durations and popularity are never negative (log1p reads them)
NUMERIC_RANGES = {"duration": (0.0, F32_MAX), "popularity": (0.0, F32_MAX), "hubness": (-1.0, 1.0),
                  "release_ts": (-1e11, 1e11), "episode": (0.0, 2.0**31 - 1)}
COMPACT_FORMAT = 3  # the first format whose columns are stored in their narrowest lossless dtype
BLOCKS_FORMAT = 4  # the first format whose text columns may be stored in compressed blocks
COMPRESSED_STRINGS = ("titles", "tags")  # read for a request's k results and its history only
CODE_DTYPES = (np.int8, np.int16, np.int32)
MAX_SCALE = 1e3  # int8 steps of unit vectors are ~1/127; a thousand is absurd already (scores overflow)
TABLE_FILE_DTYPES = {"int8": np.int8, "float16": np.float16, "float32": np.float32}
MAX_ENCODER_INPUT = 2**31 - 1  # engines take int32 inputs (TFLite always): a larger one would wrap to another item


@dataclass(frozen=True)
class TableSpec:
    """The item vectors: an (count, dim) array, with float32 scales for int8."""

    file: str
    dtype: str  # int8 | float16 | float32 (the array's dtype)
    scales: str | None = None
    scale_axis: str | None = None  # dim | row (format 1 had only row, and no field)
    scale_axis_given: bool = field(default=False, compare=False)  # the manifest names it (format 1 may not)

    @classmethod
    def from_manifest(cls, raw: dict) -> TableSpec:
        scales = raw.get("scales")
        return cls(raw["file"], raw["dtype"], scales, raw.get("scale_axis", "row") if scales else None,
                   "scale_axis" in raw)

    def to_manifest(self) -> dict:
        out = {"file": self.file, "dtype": self.dtype}
        if self.scales:
            out.update(scales=self.scales, scale_axis=self.scale_axis)
        return out


@dataclass(frozen=True)
class ColumnSpec:
    """One metadata column, one value per item."""

    kind: str  # string | categorical | numeric
    file: str | None  # string: the UTF-8 blob (or compressed blocks); categorical: the codes; numeric: the values
    offsets: str | None = None  # string: count + 1 offsets into the blob (compressed: the block starts)
    vocab: tuple[str, ...] = ()  # categorical: code -> value
    codec: str | None = None  # string, format 4: blocks compressed with this codec (text_blocks.py)
    block_rows: int = 0  # compressed: strings a block
    raw_bytes: int = 0  # compressed: the strings' UTF-8 bytes before compression
    dictionary: str | None = None  # compressed: zlib's preset dictionary (a file of at most 32 KB)
    constant: int | float | None = None  # format 6: the code or value of every row, kept in the manifest (no file)

    @classmethod
    def from_manifest(cls, kind: str, raw) -> ColumnSpec:
        if kind == STRING and ("codec" in raw) == ("offsets" in raw):  # the schema cannot say "one of"
            raise BundleError(f"string column {raw['blob']} must have offsets or a codec with blocks, not both or "
                              "neither; the bundle is damaged or from a broken exporter, re-export it")
        if kind == STRING and "codec" in raw:
            return cls(kind, raw["blob"], offsets=raw["blocks"], codec=raw["codec"], block_rows=int(raw["block_rows"]),
                       raw_bytes=int(raw["raw_bytes"]), dictionary=raw.get("dictionary"))
        if kind == STRING:
            return cls(kind, raw["blob"], offsets=raw["offsets"])
        if kind == CATEGORICAL:
            return cls(kind, raw.get("codes"), vocab=tuple(raw["vocab"]), constant=raw.get("constant"))
        return cls(kind, None, constant=raw["constant"]) if isinstance(raw, dict) else cls(kind, raw)

    def to_manifest(self):
        if self.kind == STRING and self.codec:
            out = {"blob": self.file, "blocks": self.offsets, "codec": self.codec,
                   "block_rows": self.block_rows, "raw_bytes": self.raw_bytes}
            return {**out, "dictionary": self.dictionary} if self.dictionary else out
        if self.kind == STRING:
            return {"blob": self.file, "offsets": self.offsets}
        stored = {"codes": self.file} if self.constant is None else {"constant": self.constant}
        if self.kind == CATEGORICAL:
            return {**stored, "vocab": list(self.vocab)}
        return self.file if self.constant is None else stored

    def files(self) -> list[str]:
        return [f for f in (self.file, self.offsets, self.dictionary) if f]

    def values(self, bundle, name: str, count: int, mmap: bool = True) -> np.ndarray:
        """A categorical or numeric column's `count` values: its array, or a constant's rows."""
        return (bundle.array(self.file, mmap=mmap) if self.constant is None
                else narrow.repeated(self.constant, self.constant_dtype(name), count))

    def constant_dtype(self, name: str):
        """The dtype a constant column reads as: codes int32, numbers their spec dtype (else float64)."""
        return CODE_DTYPE if self.kind == CATEGORICAL else NUMERIC_DTYPES.get(name, np.float64)

    # ---------------------------------------------------------- writing (host side)

    @classmethod
    def write_strings(cls, writer, name: str, values: list[str]) -> ColumnSpec:
        """Plain, or (format 4) the text columns in compressed blocks; ids stay plain: every id
        lookup reads one."""
        if name in COMPRESSED_STRINGS and writer.format_version >= BLOCKS_FORMAT:
            return cls.from_manifest(STRING, text_blocks.write_column(writer, f"items/{name}", values))
        stored = writer.add_strings(f"items/{name}", values)
        return cls(STRING, stored["blob"], offsets=stored["offsets"])

    @classmethod
    def write_categorical(cls, writer, name: str, values: list[str], vocab: list[str] = ()) -> ColumnSpec:
        """Codes of `values` into `vocab` extended by the other values seen, sorted ('' -> -1)."""
        vocab = list(vocab)
        vocab += sorted({v for v in values if v and v not in vocab})
        lookup = {v: i for i, v in enumerate(vocab)}
        codes = np.fromiter((lookup.get(v, -1) for v in values), CODE_DTYPE, len(values))
        return cls.write_codes(writer, name, codes, vocab)

    @classmethod
    def write_codes(cls, writer, name: str, codes: np.ndarray, vocab) -> ColumnSpec:
        dtype = CODE_DTYPE
        if writer.compact:  # the narrowest type that holds every code of the vocabulary
            dtype = next(t for t in CODE_DTYPES if len(vocab) <= np.iinfo(t).max)
        codes = np.asarray(codes, dtype)
        if writer.format_version >= narrow.CONSTANT_FORMAT and (code := narrow.constant_of(codes)) is not None:
            return cls(CATEGORICAL, None, vocab=tuple(vocab), constant=code)
        return cls(CATEGORICAL, writer.add_array(f"items/{name}.npy", codes), vocab=tuple(vocab))

    @classmethod
    def write_numeric(cls, writer, name: str, values: np.ndarray) -> ColumnSpec:
        values = np.asarray(values, NUMERIC_DTYPES.get(name, np.asarray(values).dtype))
        if writer.format_version >= narrow.CONSTANT_FORMAT and (value := narrow.constant_of(values)) is not None:
            return cls(NUMERIC, None, constant=value)
        return cls(NUMERIC, writer.add_array(f"items/{name}.npy", narrowest(values) if writer.compact else values))


def write_text(writer, values: dict[str, list[str]]) -> dict:
    """The text columns (ids, titles, `|`-joined tags) as the writer's format stores them: the
    `strings` and `tags` fields of an ItemTableSpec."""
    coded = writer.format_version >= TAGS_FORMAT
    strings = {name: ColumnSpec.write_strings(writer, name, texts) for name, texts in values.items()
               if not (coded and name == "tags")}
    return {"strings": strings, "tags": TagSpec.write(writer, values["tags"]) if coded else None}


def write_encoder_inputs(writer, values: np.ndarray, name: str = "items/encoder_inputs.npy") -> str:
    """The per-item user-encoder inputs: int32, or in format 3 the narrowest integer type."""
    values = np.asarray(values, np.int32)
    return writer.add_array(name, narrowest(values) if writer.compact else values)


@dataclass(frozen=True)
class ItemTableSpec:
    """The manifest's `items`: how many items, their vectors and their metadata columns."""

    count: int
    embeddings: TableSpec
    strings: dict[str, ColumnSpec] = field(default_factory=dict)  # ids, titles; formats 2-4: tags (|-joined)
    categorical: dict[str, ColumnSpec] = field(default_factory=dict)  # modality, language, genre, ...
    numeric: dict[str, ColumnSpec] = field(default_factory=dict)  # duration, release_ts, episode, popularity
    encoder_inputs: str | None = None  # int32 user-encoder input per item (default: row + 1)
    tags: TagSpec | None = None  # format 5: the tags as codes (tag_column.py)

    @classmethod
    def from_manifest(cls, raw: dict) -> ItemTableSpec:
        """From a manifest section that passed the schema."""
        return cls(
            count=int(raw["count"]), embeddings=TableSpec.from_manifest(raw["embeddings"]),
            strings={k: ColumnSpec.from_manifest(STRING, v) for k, v in raw["strings"].items()},
            categorical={k: ColumnSpec.from_manifest(CATEGORICAL, v) for k, v in raw["categorical"].items()},
            numeric={k: ColumnSpec.from_manifest(NUMERIC, v) for k, v in raw["numeric"].items()},
            encoder_inputs=raw.get("encoder_inputs"), tags=TagSpec.from_manifest(raw["tags"]) if "tags" in raw else None,
        )

    def to_manifest(self) -> dict:
        out = {"count": self.count, "embeddings": self.embeddings.to_manifest(),
               "strings": {k: c.to_manifest() for k, c in self.strings.items()},
               "categorical": {k: c.to_manifest() for k, c in self.categorical.items()},
               "numeric": {k: c.to_manifest() for k, c in self.numeric.items()}}
        if self.encoder_inputs:
            out["encoder_inputs"] = self.encoder_inputs
        return {**out, "tags": self.tags.to_manifest()} if self.tags else out

    def columns(self) -> dict[str, ColumnSpec]:
        return {**self.strings, **self.categorical, **self.numeric}

    def files(self) -> list[str]:
        """Every file this section names."""
        table = [self.embeddings.file] + ([self.embeddings.scales] if self.embeddings.scales else [])
        columns = [name for column in self.columns().values() for name in column.files()]
        columns += self.tags.files() if self.tags else []
        return table + columns + ([self.encoder_inputs] if self.encoder_inputs else [])

    # ---------------------------------------------------------- rules beyond the schema

    def check(self, bundle, dim: int) -> None:
        """Shapes, dtypes and values of the arrays against the manifest (BundleError naming the rule);
        the bundle has checked that every file of `files()` is listed with a checksum."""
        table = self.embeddings.file
        if self.embeddings.scales and self.embeddings.dtype != "int8":  # a reader of the spec uses it as stored
            _fail("manifest.json", f"(items.embeddings) gives scales for a {self.embeddings.dtype} table; only int8 "
                                   "tables have scales")
        if self.embeddings.scale_axis_given and bundle.manifest.format_version < 2:
            _fail("manifest.json", "(items.embeddings) has a scale_axis, which format 1 does not have")
        stored = StoredTable.read(bundle, self.embeddings)
        if stored.values.dtype != TABLE_FILE_DTYPES[self.embeddings.dtype]:
            _fail(table, f"has dtype {stored.values.dtype}, the manifest says items.embeddings.dtype "
                         f"{self.embeddings.dtype}")
        if stored.values.shape != (self.count, dim):
            _fail(table, f"has shape {stored.values.shape}; it must be (items.count, dim) = ({self.count}, {dim})")
        if stored.scales is not None and (stored.scales.dtype != np.float32 or not np.all(
                np.isfinite(stored.scales) & (stored.scales > 0) & (stored.scales <= MAX_SCALE))):
            _fail(self.embeddings.scales, f"must hold finite, positive float32 scales of at most {MAX_SCALE:g}")
        if stored.values.dtype.kind == "f" and not np.all(np.isfinite(stored.values)):
            _fail(table, "holds NaN or infinite values")
        version = bundle.manifest.format_version
        for name, column in self.columns().items():
            self._check_column(bundle, name, column, version >= COMPACT_FORMAT)
        coded = version >= TAGS_FORMAT  # where the tags are: codes from format 5 on, text before, never both
        if coded != (self.tags is not None) or coded == ("tags" in self.strings):
            where = "as codes (items.tags)" if coded else "as text (items.strings.tags)"
            _fail("manifest.json", f"(items) must hold the tags {where} in a format {version} bundle, and nowhere else")
        if self.tags:
            self.tags.check(bundle, self.count)
        if self.encoder_inputs:
            path = bundle.path(self.encoder_inputs)
            dtype, shape, _ = npy_header(path)
            if shape != (self.count,) or dtype.kind not in "iu" or (self.count and not (
                    1 <= (stats := array_stats(path))["min"] and stats["max"] <= MAX_ENCODER_INPUT)):
                _fail(self.encoder_inputs, f"(encoder_inputs) must hold one integer input from 1 to {MAX_ENCODER_INPUT} "
                                           f"per item ({self.count}); it has shape {shape}")

    def _check_column(self, bundle, name: str, column: ColumnSpec, compact: bool) -> None:
        """One column's shape, dtype and values, read with file reads (file_blocks.py)."""
        if column.codec:
            return self._check_blocks(bundle, name, column)
        if column.constant is not None or (column.kind != STRING and column.file is None):
            return self._check_constant(bundle, name, column)
        path = bundle.path(values_name(column))
        dtype, shape, _ = npy_header(path)
        rows = self.count + 1 if column.kind == STRING else self.count
        if shape != (rows,):
            _fail(values_name(column), f"(column {name}) has shape {shape}; it must hold {rows} values")
        if dtype.kind not in "iuf":
            _fail(values_name(column), f"(column {name}) has dtype {dtype}; it must be numeric")
        stats = array_stats(path)
        if column.kind == STRING:
            blob = bundle.manifest.files[column.file]["bytes"]
            allowed = (OFFSET_DTYPE, np.uint32) if compact else (OFFSET_DTYPE,)
            if dtype not in allowed or (rows and (stats["first"] != 0 or stats["last"] != blob or stats["falls"])):
                _fail(column.offsets, f"(column {name}) must hold {'/'.join(np.dtype(t).name for t in allowed)} "
                                      f"offsets rising from 0 to the blob's {blob} bytes")
            check_text(bundle, name, column, stats, string_blocks(bundle.path(column.file), path))
        elif column.kind == CATEGORICAL:
            allowed = CODE_DTYPES if compact else (CODE_DTYPE,)
            if dtype not in allowed or (rows and (stats["min"] < -1 or stats["max"] >= len(column.vocab))):
                _fail(column.file, f"(column {name}) must hold {'/'.join(np.dtype(t).name for t in allowed)} "
                                   f"codes from -1 to {len(column.vocab) - 1} (its vocabulary)")
        else:
            wanted = NUMERIC_DTYPES.get(name)
            if wanted is not None and not stores_as(dtype, wanted, compact):
                _fail(column.file, f"(column {name}) has dtype {dtype}; it must be "
                                   f"{np.dtype(wanted).name}{' or a narrower one of its kind' if compact else ''}")
            if not stats["finite"]:
                _fail(column.file, f"(column {name}) holds NaN or infinite values")
            low, high = NUMERIC_RANGES.get(name, (-np.inf, np.inf))
            if self.count and (stats["min"] < low or stats["max"] > high):
                _fail(column.file, f"(column {name}) must hold values from {low:g} to {high:g}")

    def _check_constant(self, bundle, name: str, column: ColumnSpec) -> None:
        """A column stored as one value (format 6): a code of its vocabulary, or a number in its range."""
        where = f"manifest.json (items column {name}"
        if (column.file is None) == (column.constant is None):  # the schema cannot say "one of"
            _fail(where + ")", "must name a file of codes or a constant, not both or neither")
        if bundle.manifest.format_version < narrow.CONSTANT_FORMAT:
            _fail(where + "'s constant)", f"is only allowed in format {narrow.CONSTANT_FORMAT} or later bundles")
        low, high = (-1, len(column.vocab) - 1) if column.kind == CATEGORICAL else NUMERIC_RANGES.get(name, (-np.inf, np.inf))
        if not narrow.holds_constant(column.constant, dtype := column.constant_dtype(name), low, high):
            _fail(where + "'s constant)", f"must be a finite number from {low:g} to {high:g} that {np.dtype(dtype).name} holds")

    def _check_blocks(self, bundle, name: str, column: ColumnSpec) -> None:
        """A compressed text column (format 4): its codec, dictionary and block starts rising from 0
        to the blob's size; each block's rows are checked when a request inflates it (text_blocks.py)."""
        where = f"(column {name})"
        if bundle.manifest.format_version < BLOCKS_FORMAT or name == "ids" or column.codec not in text_blocks.CODECS \
                or column.block_rows < 1:
            _fail(column.file, f"{where} cannot be compressed: only text columns of format {BLOCKS_FORMAT} or later bundles "
                               f"may be, with codec {'/'.join(text_blocks.CODECS)} and block_rows >= 1")
        blocks = text_blocks.block_count(self.count, column.block_rows)
        dtype, shape, _ = npy_header(bundle.path(column.offsets))
        stats = array_stats(bundle.path(column.offsets))
        size = bundle.manifest.files[column.file]["bytes"]
        if shape != (blocks + 1,) or dtype.kind not in "iu" or stats["first"] != 0 or stats["last"] != size \
                or stats["falls"]:
            _fail(column.offsets, f"{where} must hold {blocks + 1} block starts rising from 0 to the blob's "
                                  f"{size} bytes")
        # raw_bytes bounds how far a block may inflate: a claim no blob of this size can make good is refused
        most = min(text_blocks.MAX_RATIO * size, self.count * text_blocks.MAX_ROW_BYTES)
        if column.raw_bytes > most:
            _fail("manifest.json", f"{where} claims raw_bytes {column.raw_bytes:,}, more than its {size:,}-byte blob "
                                   f"can hold for {self.count:,} rows ({most:,}: zlib inflates at most "
                                   f"{text_blocks.MAX_RATIO}x, a row holds at most {text_blocks.MAX_ROW_BYTES:,} bytes)")
        text_blocks.read_dictionary(bundle, column)


def values_name(column: ColumnSpec) -> str:
    return column.offsets if column.kind == STRING else column.file


def space_members(items) -> list[str | None]:
    """The item files of the embedding-space id (table, scales, encoder inputs), from the typed
    section or its manifest form."""
    if isinstance(items, ItemTableSpec):
        return [items.embeddings.file, items.embeddings.scales, items.encoder_inputs]
    return [items["embeddings"]["file"], items["embeddings"].get("scales"), items.get("encoder_inputs")]
