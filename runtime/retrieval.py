"""Candidate retrieval: scores of every item for a user vector, exact or approximate.

The exact scan works on the bundle's compressed table directly. For an int8
table the user vector is quantized too and the dot products are integer
(numkong's SIMD kernels when that small package is installed, chunked numpy
otherwise); each item's score is then rescaled by its row scale. A short list
is re-scored in float afterwards, so its order is exact for the stored table.
For very large catalogs an optional usearch HNSW index returns candidates
without touching every row.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError

CHUNK_BYTES = 256 * 1024  # float32 scratch of the numpy kernel: small enough to stay in cache
KERNELS = ("numkong-packed", "numkong", "numpy")


def numkong_available() -> bool:
    return importlib.util.find_spec("numkong") is not None


class ExactScan:
    """Scores of all rows of a (N, D) int8/fp16/fp32 table (int8 rows carry per-row scales).

    Kernels: "numkong-packed" (fastest; holds a SIMD-friendly copy of the table,
    about 1.3-1.6x its bytes), "numkong" (SIMD over the table as stored, no extra
    memory), "numpy" (no extra package; converts cache-sized chunks to float).
    "auto" takes the fastest one installed.
    """

    def __init__(self, table: np.ndarray, scales: np.ndarray | None, kernel: str = "auto"):
        self.table, self.scales = table, scales
        self.int8 = table.dtype == np.int8
        if kernel == "auto":
            kernel = "numkong-packed" if numkong_available() else "numpy"
        if kernel not in KERNELS:
            raise ConfigError(f"unknown scan kernel {kernel!r}; choose one of {', '.join(KERNELS)} or auto")
        if kernel.startswith("numkong"):
            if not numkong_available():
                raise ConfigError(f"the {kernel} scan needs the numkong package: pip install numkong")
            import numkong

            self._nk = numkong
        self.kernel = kernel
        self._packed = self._nk.dots_pack(np.ascontiguousarray(table)) if kernel == "numkong-packed" else None
        rows = max(1, min(len(table), CHUNK_BYTES // (4 * max(table.shape[1], 1))))
        self._buffer = np.empty((rows, table.shape[1]), np.float32) if kernel == "numpy" else None

    @property
    def index_bytes(self) -> int:
        """Memory held for scanning beyond the (memory-mapped) table itself."""
        held = self._packed if self._packed is not None else self._buffer
        return int(held.nbytes) if held is not None else 0

    def scores(self, user: np.ndarray) -> np.ndarray:
        user = np.asarray(user, np.float32)
        if self.int8:
            step = float(np.abs(user).max()) / 127.0 or 1.0
            query = np.clip(np.round(user / step), -127, 127).astype(np.int8)
            out = np.multiply(self._dots(query), self.scales, dtype=np.float32)
            out *= step
            return out
        return self._dots(user.astype(self.table.dtype) if self.kernel != "numpy" else user)

    def _dots(self, query: np.ndarray) -> np.ndarray:
        if self._packed is not None:
            return np.asarray(self._nk.dots_packed(query[None, :], self._packed)).reshape(-1)
        if self.kernel == "numkong":
            return np.asarray(self._nk.inner(query[None, :], self.table)).reshape(-1)
        n = len(self.table)
        out = np.empty(n, np.int64 if self.int8 else np.float32)
        q = query.astype(np.float32)
        step = len(self._buffer)
        for start in range(0, n, step):
            block = self.table[start:start + step]
            buf = self._buffer[: len(block)]
            np.copyto(buf, block, casting="unsafe")
            out[start:start + len(block)] = buf @ q
        return out

    def exact(self, rows: np.ndarray, user: np.ndarray) -> np.ndarray:
        """Float scores of some rows against the stored (dequantized) table."""
        values = self.table[rows].astype(np.float32)
        if self.scales is not None:
            values *= self.scales[rows, None]
        return values @ np.asarray(user, np.float32)


class AnnIndex:
    """A usearch HNSW index over the table, saved to / loaded from a cache file."""

    def __init__(self, vectors_fn, count: int, dim: int, cache: Path | None):
        from usearch.index import Index

        self.count = count
        if cache is not None and cache.exists():
            self.index = Index.restore(str(cache), view=True)
            if self.index is None or len(self.index) != count:
                self.index = None
        else:
            self.index = None
        if self.index is None:
            self.index = Index(ndim=dim, metric="ip", dtype="i8", connectivity=16, expansion_add=64,
                               expansion_search=128)
            for start in range(0, count, 65_536):
                block = vectors_fn(np.arange(start, min(count, start + 65_536)))
                self.index.add(np.arange(start, start + len(block)), block)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                self.index.save(str(cache))

    def search(self, user: np.ndarray, count: int) -> np.ndarray:
        matches = self.index.search(np.asarray(user, np.float32), count)
        return np.asarray(matches.keys, np.int64)


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest finite scores, best first.

    Large arrays are first cut to the rows above the k-th best of a strided
    sample (that threshold can only be lower than the true k-th best, so no
    winner is lost), which spares a partition over every row.
    """
    n = len(scores)
    if k <= 0 or n == 0:
        return np.zeros(0, np.int64)
    stride = min(16, n // (8 * k))
    if stride >= 2:
        sample = scores[::stride]
        threshold = np.partition(sample, len(sample) - k)[len(sample) - k]
        if np.isfinite(threshold):
            rows = np.flatnonzero(scores >= threshold)
            return rows[_best(scores[rows], k)]
    k = min(k, int(np.isfinite(scores).sum()))
    return _best(scores, k) if k > 0 else np.zeros(0, np.int64)


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest values, best first (ties keep position order)."""
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
        part.sort()  # position order, so the stable sort below breaks ties by position
    else:
        part = np.arange(len(scores))
    return part[np.argsort(-scores[part], kind="stable")]
