"""The stored item table: how a bundle keeps its item vectors, and how they read back.

Precisions (the `--table` choices of `edgerec export`):

- "int8": int8 with one scale per dimension, the default. Every row shares the
  same grid, so a query folds the scales in once and the scan is pure integer
  work over exactly N*D bytes (a quarter of a float32 table). Item vectors are
  L2-normalised, so one grid for all rows costs no accuracy (measured in the
  export report's top-10 agreement).
- "int8-row": int8 with one scale per row (bundle format 1 had only this one).
  Each score needs its row's scale: 4 more bytes per row and one more pass.
- "fp16", "fp32": no scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgerec.errors import BundleError, ConfigError

TABLE_DTYPES = ("int8", "int8-row", "fp16", "fp32")


@dataclass(frozen=True)
class StoredTable:
    values: np.ndarray  # (N, D) int8, float16 or float32
    scales: np.ndarray | None = None  # float32: (D,) when scale_axis is "dim", (N,) when "row"
    scale_axis: str | None = None  # "dim" | "row" | None (float tables)

    @classmethod
    def quantize(cls, vectors: np.ndarray, dtype: str = "int8") -> StoredTable:
        """Symmetric quantization: each value lands within half a step of its original."""
        vectors = np.asarray(vectors, np.float32)
        if dtype not in TABLE_DTYPES:
            raise ConfigError(f"unknown item table dtype {dtype!r}; use one of {', '.join(TABLE_DTYPES)}")
        if dtype == "fp16":
            return cls(vectors.astype(np.float16))
        if dtype == "fp32":
            return cls(vectors)
        axis = "dim" if dtype == "int8" else "row"
        peak = np.abs(vectors).max(0 if axis == "dim" else 1, initial=0.0)
        scales = (peak / 127.0).astype(np.float32)
        scales[~(scales > 0)] = 1.0  # all-zero (or subnormal) columns/rows: any step will do
        grid = vectors / (scales[None, :] if axis == "dim" else scales[:, None])
        return cls(np.clip(np.round(grid), -127, 127).astype(np.int8), scales, axis)

    @classmethod
    def read(cls, bundle, entry) -> StoredTable:
        """The table a bundle's manifest describes (memory-mapped), checked for consistent shapes.

        entry: the manifest's `items.embeddings`, an item_spec.TableSpec or its manifest form."""
        if isinstance(entry, dict):  # (imported here: item_spec reads tables through this module)
            from edgerec.runtime.item_spec import TableSpec

            entry = TableSpec.from_manifest(entry)
        values = bundle.array(entry.file)
        scales = bundle.array(entry.scales) if entry.scales else None
        axis = entry.scale_axis if scales is not None else None
        if values.ndim != 2:
            raise BundleError(f"the item table {entry.file} must be 2-D, it has shape {values.shape}; re-export")
        if values.dtype == np.int8 and scales is None:
            raise BundleError("the bundle's int8 item table has no scales; re-export the bundle")
        if scales is not None:
            expected = {"dim": (values.shape[1],), "row": (values.shape[0],)}.get(axis)
            if expected is None:
                raise BundleError(f"unknown item table scale_axis {axis!r} (dim or row); update edgerec")
            if scales.shape != expected:
                raise BundleError(f"item table scales have shape {scales.shape}, a {axis} scale needs {expected}; "
                                  "the bundle is damaged, re-export it")
        return cls(values, scales, axis)

    def manifest_entry(self, writer, stem: str = "items") -> dict:
        """Write the arrays through a BundleWriter; returns the manifest's `embeddings` entry."""
        entry = {"file": writer.add_array(f"{stem}/embeddings.npy", self.values), "dtype": str(self.values.dtype)}
        if self.scales is not None:
            entry["scales"] = writer.add_array(f"{stem}/scales.npy", self.scales)
            entry["scale_axis"] = self.scale_axis
        return entry

    @property
    def dtype_name(self) -> str:
        """The TABLE_DTYPES name this table was stored with."""
        if self.scale_axis is not None:
            return "int8" if self.scale_axis == "dim" else "int8-row"
        return "fp16" if self.values.dtype == np.float16 else "fp32"

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes + (self.scales.nbytes if self.scales is not None else 0))

    def __len__(self) -> int:
        return len(self.values)

    def dequantize(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Float32 vectors of some rows (all rows when None)."""
        values = (self.values if rows is None else self.values[rows]).astype(np.float32)
        if self.scale_axis == "dim":
            values *= self.scales[None, :]
        elif self.scale_axis == "row":
            values *= (self.scales if rows is None else self.scales[rows])[:, None]
        return values
