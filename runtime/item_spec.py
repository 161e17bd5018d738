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
from edgerec.runtime.item_table import StoredTable

STRING, CATEGORICAL, NUMERIC = "string", "categorical", "numeric"
CODE_DTYPE = np.int32  # categorical codes; -1 means "none"
OFFSET_DTYPE = np.int64  # string offsets into the UTF-8 blob
NUMERIC_DTYPES = {"duration": np.float32, "release_ts": np.int64, "episode": np.int32, "popularity": np.float32}
MAX_SCALE = 1e3  # int8 steps of unit vectors are ~1/127; a thousand is absurd already (scores overflow)
TABLE_FILE_DTYPES = {"int8": np.int8, "float16": np.float16, "float32": np.float32}


@dataclass(frozen=True)
class TableSpec:
    """The item vectors: an (count, dim) array, with float32 scales for int8."""

    file: str
    dtype: str  # int8 | float16 | float32 (the array's dtype)
    scales: str | None = None
    scale_axis: str | None = None  # dim | row (format 1 had only row, and no field)

    @classmethod
    def from_manifest(cls, raw: dict) -> TableSpec:
        scales = raw.get("scales")
        return cls(raw["file"], raw["dtype"], scales, raw.get("scale_axis", "row") if scales else None)

    def to_manifest(self) -> dict:
        out = {"file": self.file, "dtype": self.dtype}
        if self.scales:
            out.update(scales=self.scales, scale_axis=self.scale_axis)
        return out


@dataclass(frozen=True)
class ColumnSpec:
    """One metadata column, one value per item."""

    kind: str  # string | categorical | numeric
    file: str  # string: the UTF-8 blob; categorical: the codes; numeric: the values (.npy)
    offsets: str | None = None  # string: count + 1 offsets into the blob
    vocab: tuple[str, ...] = ()  # categorical: code -> value

    @classmethod
    def from_manifest(cls, kind: str, raw) -> ColumnSpec:
        if kind == STRING:
            return cls(kind, raw["blob"], offsets=raw["offsets"])
        if kind == CATEGORICAL:
            return cls(kind, raw["codes"], vocab=tuple(raw["vocab"]))
        return cls(kind, raw)

    def to_manifest(self):
        if self.kind == STRING:
            return {"blob": self.file, "offsets": self.offsets}
        if self.kind == CATEGORICAL:
            return {"codes": self.file, "vocab": list(self.vocab)}
        return self.file

    def files(self) -> list[str]:
        return [self.file] + ([self.offsets] if self.offsets else [])

    # ---------------------------------------------------------- writing (host side)

    @classmethod
    def write_strings(cls, writer, name: str, values: list[str]) -> ColumnSpec:
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
        return cls(CATEGORICAL, writer.add_array(f"items/{name}.npy", np.asarray(codes, CODE_DTYPE)),
                   vocab=tuple(vocab))

    @classmethod
    def write_numeric(cls, writer, name: str, values: np.ndarray) -> ColumnSpec:
        values = np.asarray(values, NUMERIC_DTYPES.get(name, np.asarray(values).dtype))
        return cls(NUMERIC, writer.add_array(f"items/{name}.npy", values))


@dataclass(frozen=True)
class ItemTableSpec:
    """The manifest's `items`: how many items, their vectors and their metadata columns."""

    count: int
    embeddings: TableSpec
    strings: dict[str, ColumnSpec] = field(default_factory=dict)  # ids, titles, tags (|-joined)
    categorical: dict[str, ColumnSpec] = field(default_factory=dict)  # modality, language, genre, ...
    numeric: dict[str, ColumnSpec] = field(default_factory=dict)  # duration, release_ts, episode, popularity
    encoder_inputs: str | None = None  # int32 user-encoder input per item (default: row + 1)

    @classmethod
    def from_manifest(cls, raw: dict) -> ItemTableSpec:
        """From a manifest section that passed the schema."""
        return cls(
            count=int(raw["count"]), embeddings=TableSpec.from_manifest(raw["embeddings"]),
            strings={k: ColumnSpec.from_manifest(STRING, v) for k, v in raw["strings"].items()},
            categorical={k: ColumnSpec.from_manifest(CATEGORICAL, v) for k, v in raw["categorical"].items()},
            numeric={k: ColumnSpec.from_manifest(NUMERIC, v) for k, v in raw["numeric"].items()},
            encoder_inputs=raw.get("encoder_inputs"),
        )

    def to_manifest(self) -> dict:
        out = {"count": self.count, "embeddings": self.embeddings.to_manifest(),
               "strings": {k: c.to_manifest() for k, c in self.strings.items()},
               "categorical": {k: c.to_manifest() for k, c in self.categorical.items()},
               "numeric": {k: c.to_manifest() for k, c in self.numeric.items()}}
        if self.encoder_inputs:
            out["encoder_inputs"] = self.encoder_inputs
        return out

    def columns(self) -> dict[str, ColumnSpec]:
        return {**self.strings, **self.categorical, **self.numeric}

    def files(self) -> list[str]:
        """Every file this section names."""
        table = [self.embeddings.file] + ([self.embeddings.scales] if self.embeddings.scales else [])
        columns = [name for column in self.columns().values() for name in column.files()]
        return table + columns + ([self.encoder_inputs] if self.encoder_inputs else [])

    # ---------------------------------------------------------- rules beyond the schema

    def check(self, bundle, dim: int) -> None:
        """Shapes, dtypes and values of the arrays against the manifest (BundleError naming the rule);
        the bundle has checked that every file of `files()` is listed with a checksum."""
        stored = StoredTable.read(bundle, self.embeddings)
        table = self.embeddings.file
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
        for name, column in self.columns().items():
            self._check_column(bundle, name, column)
        if self.encoder_inputs:
            inputs = bundle.array(self.encoder_inputs)
            if inputs.shape != (self.count,) or inputs.dtype.kind != "i" or (self.count and int(inputs.min()) < 1):
                _fail(self.encoder_inputs, f"(encoder_inputs) must hold one integer input >= 1 per item "
                                           f"({self.count}); it has shape {inputs.shape}")

    def _check_column(self, bundle, name: str, column: ColumnSpec) -> None:
        values = bundle.array(column.offsets if column.kind == STRING else column.file)
        rows = self.count + 1 if column.kind == STRING else self.count
        if values.shape != (rows,):
            _fail(values_name(column), f"(column {name}) has shape {values.shape}; it must hold {rows} values")
        if column.kind == STRING:
            blob = bundle.manifest.files[column.file]["bytes"]
            if values.dtype != OFFSET_DTYPE or (rows and (values[0] != 0 or values[-1] != blob or
                                                          np.any(np.diff(values) < 0))):
                _fail(column.offsets, f"(column {name}) must hold int64 offsets rising from 0 to the blob's "
                                      f"{blob} bytes")
            self._check_text(bundle, name, column, values)
        elif column.kind == CATEGORICAL:
            if values.dtype != CODE_DTYPE or (rows and (int(values.min()) < -1 or
                                                        int(values.max()) >= len(column.vocab))):
                _fail(column.file, f"(column {name}) must hold int32 codes from -1 to {len(column.vocab) - 1} "
                                   "(its vocabulary)")
        else:
            wanted = NUMERIC_DTYPES.get(name)
            if values.dtype.kind not in "iuf" or (wanted is not None and values.dtype != wanted):
                _fail(column.file, f"(column {name}) has dtype {values.dtype}; it must be "
                                   f"{np.dtype(wanted).name if wanted else 'numeric'}")
            if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
                _fail(column.file, f"(column {name}) holds NaN or infinite values")

    def _check_text(self, bundle, name: str, column: ColumnSpec, offsets: np.ndarray) -> None:
        """Valid UTF-8 cut at character boundaries; ids also non-empty and unique."""
        data = bundle.path(column.file).read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            _fail(column.file, f"(column {name}) is not valid UTF-8 ({exc.reason} at byte {exc.start})")
        starts = offsets[:-1][offsets[:-1] < len(data)]
        if len(starts) and np.any(np.frombuffer(data, np.uint8)[starts] & 0xC0 == 0x80):
            _fail(column.offsets, f"(column {name}) has an offset inside a UTF-8 character")
        if name == "ids":
            ids = [data[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
            if not all(ids) or len(set(ids)) != len(ids):
                _fail(column.file, "(column ids) must hold unique, non-empty item ids")


def values_name(column: ColumnSpec) -> str:
    return column.offsets if column.kind == STRING else column.file


def _fail(file: str, rule: str):
    raise BundleError(f"{file} {rule}; the bundle is damaged or from a broken exporter, re-export it")


def space_members(items) -> list[str | None]:
    """The item files of the embedding-space id (table, scales, encoder inputs), from the typed
    section or its manifest form."""
    if isinstance(items, ItemTableSpec):
        return [items.embeddings.file, items.embeddings.scales, items.encoder_inputs]
    return [items["embeddings"]["file"], items["embeddings"].get("scales"), items.get("encoder_inputs")]
