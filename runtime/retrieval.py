"""Candidate retrieval: scores of every item for a user vector, exact or approximate.

The exact scan works on the bundle's compressed table directly. For an int8
table the user vector is quantized too (with the table's per-dimension scales
folded in first) and the dot products are integer; a per-row table then
rescales each score by its row's scale. Kernels, fastest first:

- "native": edgerec's compiled kernel (runtime/_scan.c, AVX2 on x86-64),
  reading the memory-mapped table as stored; its top-k keeps only k rows,
  never an N-long score array.
- "numkong-packed": numkong's SIMD kernels over a packed copy of the table
  (1.3-1.6x the table's bytes held in memory).
- "numkong": numkong over the table as stored.
- "numpy": no extra package; converts cache-sized chunks to float (int8 dots summed
  exactly, in spans of columns that float32 holds whole).

A short list is re-scored in float afterwards, so its order is exact for the
stored table. For very large catalogs an optional usearch HNSW index returns
candidates without touching every row.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError
from edgerec.runtime.atomic import Temporary
from edgerec.runtime.bundle import sha256_file
from edgerec.runtime.item_table import StoredTable

CHUNK_BYTES = 256 * 1024  # float32 scratch of the numpy kernel: small enough to stay in cache
KERNELS = ("native", "numkong-packed", "numkong", "numpy")
NATIVE_MAX_DIM = 4096  # MAX_DIM of runtime/scan_kernels.h: the compiled kernel refuses longer rows
# columns whose int8 products float32 sums exactly: every partial sum stays within 128 * 127 * 1032 < 2**24
EXACT_SPAN = 2**24 // (128 * 127)
ANN_EXTRA = "pip install edgerec[ann]"  # pyproject.toml's extra for usearch


def numkong_available() -> bool:
    return importlib.util.find_spec("numkong") is not None


def native_scan():
    """The compiled kernel module, or None when this install was built without a C compiler."""
    try:
        from edgerec.runtime import _scan
    except ImportError:
        return None
    return _scan


def available_kernels() -> list[str]:
    have = {"native": native_scan() is not None, "numkong-packed": numkong_available(),
            "numkong": numkong_available(), "numpy": True}
    return [k for k in KERNELS if have[k]]


class ExactScan:
    """Scores of all rows of a stored item table (see item_table.py) for one user vector.

    "auto" takes the fastest kernel installed that takes the table (the compiled
    one reads rows of at most NATIVE_MAX_DIM values). Every kernel gives the same
    integer dot products, so results do not depend on the choice.
    """

    def __init__(self, stored: StoredTable, kernel: str = "auto"):
        self.stored, self.table = stored, np.ascontiguousarray(stored.values)  # a no-op for the bundle's mapping
        self.int8 = self.table.dtype == np.int8
        too_wide = self.int8 and self.table.shape[1] > NATIVE_MAX_DIM  # the compiled kernel refuses such rows
        if kernel == "auto":
            kernel = [k for k in available_kernels() if not (too_wide and k == "native")][0]
        if kernel not in KERNELS:
            raise ConfigError(f"unknown scan kernel {kernel!r}; choose one of {', '.join(KERNELS)} or auto")
        if kernel not in available_kernels():
            hint = "pip install numkong" if kernel.startswith("numkong") else "reinstall edgerec with a C compiler"
            raise ConfigError(f"the {kernel} scan kernel is not installed here: {hint}")
        if kernel == "native" and too_wide:
            raise ConfigError(f"the native scan kernel takes vectors of at most {NATIVE_MAX_DIM} values and this "
                              f"bundle's have {self.table.shape[1]}: use kernel='auto' or another kernel")
        if kernel == "native" and not self.int8:
            kernel = "numkong" if numkong_available() else "numpy"  # the compiled kernel is int8 only
        if self.table.dtype == np.float16:  # numkong narrowed the query to float16 too: scores moved by up to
            kernel = "numpy"  # 1e-3 with the package installed (spec §4: float32 query, the rows widened)
        self.kernel = kernel
        self._native = native_scan() if kernel == "native" else None
        self._nk = None
        if kernel.startswith("numkong"):
            import numkong

            self._nk = numkong
        self._packed = self._nk.dots_pack(np.ascontiguousarray(self.table)) if kernel == "numkong-packed" else None
        rows = max(1, min(len(self.table), CHUNK_BYTES // (4 * max(self.table.shape[1], 1))))
        self._buffer = np.empty((rows, self.table.shape[1]), np.float32) if kernel == "numpy" else None
        self._buffer_lock = threading.Lock()  # one request at a time fills _buffer

    @property
    def label(self) -> str:
        """The kernel, and for the compiled one the code path it runs here (e.g. "native (avx2)")."""
        return f"native ({self._native.kernel_name(self.table.shape[1])})" if self._native else self.kernel

    @property
    def index_bytes(self) -> int:
        """Memory held for scanning beyond the (memory-mapped) table itself."""
        held = self._packed if self._packed is not None else self._buffer
        return int(held.nbytes) if held is not None else 0

    def _query(self, user: np.ndarray) -> tuple[np.ndarray, float]:
        """The query in the table's dtype, and the factor that turns its dots into scores."""
        user = np.asarray(user, np.float32)
        if user.shape != self.table.shape[1:]:  # the compiled kernel would read any length that fits
            raise ConfigError(f"a query of shape {user.shape} against a table of {self.table.shape[1]}-value "
                              "vectors; the user vector must come from this bundle's encoder")
        if not self.int8:
            return (user if self.kernel == "numpy" else user.astype(self.table.dtype)), 1.0
        if self.stored.scale_axis == "dim":
            user = user * self.stored.scales
        step = float(np.maximum.reduce(np.abs(user))) / 127.0 or 1.0
        # np.clip(np.round(...)) without their Python wrappers (the same ufuncs: rint is round to 0 decimals)
        scaled = np.rint(user / step)
        return np.minimum(np.maximum(scaled, -127, out=scaled), 127, out=scaled).astype(np.int8), step

    def scores(self, user: np.ndarray) -> np.ndarray:
        query, step = self._query(user)
        out = np.multiply(self._dots(query), np.float32(step), dtype=np.float32)
        if self.stored.scale_axis == "row":
            out *= self.stored.scales
        return out

    @property
    def streams_top_k(self) -> bool:
        """True when top() keeps only k rows in memory (no N-long score array)."""
        return self._native is not None and self.stored.scale_axis != "row"

    def top(self, user: np.ndarray, k: int, skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the k best scores and those scores, best first (ties: lower row first), leaving
        out the rows of `skip` (sorted, unique int64); the same as top_rows(scores(user), k) and
        its scores with the skipped rows' scores at -inf and dropped."""
        skip = np.zeros(0, np.int64) if skip is None else np.ascontiguousarray(skip, np.int64)
        if not self.streams_top_k or k <= 0:
            scores = self.scores(user)
            scores[skip[skip < len(scores)]] = -np.inf  # top_rows keeps finite scores only
            rows = top_rows(scores, k)
            return rows, scores[rows]
        query, step = self._query(user)
        k = min(k, len(self.table))
        rows, dots = np.empty(k, np.int64), np.empty(k, np.int32)
        kept = self._native.top_k(self.table, query, rows, dots, skip)
        rows, dots = rows[:kept], dots[:kept]
        order = np.lexsort((rows, -dots.astype(np.int64)))
        return rows[order], np.multiply(dots[order], np.float32(step), dtype=np.float32)

    def _dots(self, query: np.ndarray) -> np.ndarray:
        if self._native is not None:
            out = np.empty(len(self.table), np.int32)
            self._native.dots(self.table, query, out)
            return out
        if self._packed is not None:
            return np.asarray(self._nk.dots_packed(query[None, :], self._packed)).reshape(-1)
        if self.kernel == "numkong":
            return np.asarray(self._nk.inner(query[None, :], self.table)).reshape(-1)
        n = len(self.table)
        out = np.empty(n, np.int64 if self.int8 else np.float32)
        q = query.astype(np.float32)
        # int8 dots summed a span of columns at a time, each span exact in float32, the spans in int64
        span = EXACT_SPAN if self.int8 else len(q)
        # requests of several threads scan at once: a thread that finds _buffer in use takes scratch of its
        # own (sharing it let one thread multiply the rows another had just copied in)
        owned = self._buffer_lock.acquire(blocking=False)
        buffer = self._buffer if owned else np.empty_like(self._buffer)
        try:
            step = len(buffer)
            for start in range(0, n, step):
                block = self.table[start:start + step]
                buf = buffer[: len(block)]
                np.copyto(buf, block, casting="unsafe")
                if span >= len(q):
                    out[start:start + len(block)] = buf @ q
                    continue
                part = out[start:start + len(block)]
                part[:] = 0
                for at in range(0, len(q), span):
                    part += (buf[:, at:at + span] @ q[at:at + span]).astype(np.int64)
        finally:
            if owned:
                self._buffer_lock.release()
        return out

    def exact(self, rows: np.ndarray, user: np.ndarray) -> np.ndarray:
        """Float scores of some rows against the stored (dequantized) table."""
        return self.stored.dequantize(rows) @ np.asarray(user, np.float32)


def require_ann(kind: str | None) -> None:
    """At open: a ConfigError when the ANN index asked for cannot be built here (without it every request
    fell back to the exact scan unnoticed, and warm_up raised the import's own error)."""
    if kind is not None and importlib.util.find_spec("usearch") is None:
        raise ConfigError(f"ann={kind!r} needs usearch, which is not installed here: {ANN_EXTRA}, "
                          "or open without ann for the exact scan")


def import_usearch():
    """usearch.index, imported after onnxruntime where both are installed: the other order crashes the
    process when onnxruntime is imported later (backends.import_onnxruntime says why). Where the app has
    imported usearch itself, onnxruntime is left out: importing it then is what would crash."""
    if "usearch.compiled" not in sys.modules:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            pass  # without onnxruntime there is nothing to clash with
    import usearch.index

    return usearch.index


class AnnIndex:
    """A usearch HNSW index over the table, saved to / loaded from a cache file. The file is written whole
    or not at all (atomic.py), then its sha256 beside it (`digest_path`); one whose digest is missing or
    differs (damaged bytes crashed the process or served wrong rows), or that does not restore, is built
    again and replaced."""

    def __init__(self, vectors_fn, count: int, dim: int, cache: Path | None):
        try:
            Index = import_usearch().Index  # noqa: N806 (the library's class)
        except ImportError as exc:  # warm_up says what to install, not the import's own words
            require_ann("usearch")
            raise ConfigError(f"usearch is installed but does not import here ({type(exc).__name__}): reinstall "
                              f"it ({ANN_EXTRA}), or open without ann for the exact scan") from exc
        self.count, self.unsaved = count, None  # unsaved: why the index could not be cached, if it could not
        self.index = _restored(Index, cache, count)
        if self.index is None:
            self.index = Index(ndim=dim, metric="ip", dtype="i8", connectivity=16, expansion_add=64,
                               expansion_search=128)
            for start in range(0, count, 65_536):
                block = vectors_fn(np.arange(start, min(count, start + 65_536)))
                self.index.add(np.arange(start, start + len(block)), block)
            if cache is not None:
                self.unsaved = _save(self.index, cache)

    def search(self, user: np.ndarray, count: int) -> np.ndarray:
        matches = self.index.search(np.asarray(user, np.float32), count)
        return np.asarray(matches.keys, np.int64)


def digest_path(cache: Path) -> Path:
    """Where the sha256 of an index's cache file is kept."""
    return cache.with_name(cache.name + ".sha256")


def _save(index, cache: Path) -> str | None:
    """Save the index to `cache`, then its digest; None, or why it could not be cached."""
    try:
        saving = Temporary(cache, ".saving")  # readers (other processes too) see the old file or this one
    except OSError as exc:  # a read-only or full cache folder: the index still serves from memory
        return exc.strerror or type(exc).__name__  # (rebuilt at the next open), never per request
    try:
        with saving:
            index.save(str(saving.path))
            digest = sha256_file(saving.path)
            if not saving.publish():
                return "a folder stands where the cache file goes"
        with Temporary(digest_path(cache), ".saving") as note:  # after the file: a reader that sees the
            note.path.write_text(digest)  # new file with the old digest builds again, never trusts it
            if not note.publish():
                return "a folder stands where the cache file's digest goes"
    except (OSError, RuntimeError) as exc:  # the disk filled while saving
        return getattr(exc, "strerror", None) or type(exc).__name__
    return None


def _restored(Index, cache: Path | None, count: int):  # noqa: N803 (the library's class)
    """The cached index of this table, or None: no file, no digest or one that differs (usearch checks too
    little: damaged bytes that still opened crashed the process or served wrong rows), one of another
    count, or one that does not restore."""
    if cache is None or not cache.is_file():
        return None
    try:
        expected = digest_path(cache).read_text().strip()
        before = os.stat(cache)
        if sha256_file(cache) != expected:
            return None
        index = Index.restore(str(cache), view=True)
        after = os.stat(cache)
    except (ValueError, RuntimeError, OSError):  # "End of file reached", "File is corrupted ...": built again
        return None
    if (before.st_ino, before.st_mtime_ns) != (after.st_ino, after.st_mtime_ns):
        return None  # another process replaced the file after it was checked: not the bytes checked
    return index if index is not None and len(index) == count else None


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


def sorted_contains(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """queries' membership in a sorted array (np.isin sorts both sides on every call)."""
    if not len(sorted_values):
        return np.zeros(len(queries), bool)
    at = np.minimum(np.searchsorted(sorted_values, queries), len(sorted_values) - 1)
    return sorted_values[at] == queries


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest values, best first (ties keep position order)."""
    if k < len(scores):
        kth = scores[np.argpartition(-scores, k - 1)[:k]].min()
        # argpartition keeps arbitrary ones of the items tied with the k-th best: take the first ones
        part = np.flatnonzero(scores > kth)
        part = np.r_[part, np.flatnonzero(scores == kth)[: k - len(part)]]  # each in position order
    else:
        part = np.arange(len(scores))
    return part[np.argsort(-scores[part], kind="stable")]
