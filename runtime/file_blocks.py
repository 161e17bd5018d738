"""A bundle's arrays and blobs read a block at a time through plain file reads, for the checks at open.

Reading every page of a memory map makes all of them resident in the process (a million items'
columns are tens of MB of RSS that no request needs); bytes read with read() land in the page
cache instead, and the process holds one block at a time. Requests keep using the memory maps
and touch only the rows they read.
"""

from __future__ import annotations

import sys
import tokenize
from pathlib import Path

import numpy as np

from edgerec.errors import BundleError

# a block and its temporaries land in malloc's heap, which keeps their pages once freed (glibc raises
# its mmap threshold past the big arrays a process frees): 1 MB blocks left ~4 MB of freed heap
# resident after the checks of a million items (measured: heap 10 -> 6 MB after open)
BLOCK_BYTES = 1 << 18
# what numpy's .npy header reader raises on a garbled header: an unbalanced bracket in it escapes
# as tokenize's error (numpy retries the header through the tokenizer), not as a ValueError
HEADER_ERRORS = (ValueError, SyntaxError, tokenize.TokenError)


def damaged(file: str, rule: str):
    """Refuse a bundle whose `file` breaks `rule` (a BundleError naming both)."""
    raise BundleError(f"{file} {rule}; the bundle is damaged or from a broken exporter, re-export it")


def npy_header(path: Path) -> tuple[np.dtype, tuple, int]:
    """(dtype, shape, offset of the data) of a .npy file, without reading its data."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(handle)  # a dtype description only, never unpickled
            if dtype.hasobject or fortran:
                raise ValueError("object or Fortran-ordered arrays are not bundle arrays")
            if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):  # spec: one layout
                raise BundleError(f"bundle array {path.name} is stored big-endian or in Fortran order; a bundle's "
                                  "arrays are little-endian and in C order, re-export it")
            if any(size < 0 for size in shape):  # numpy's header reader lets them through
                raise ValueError(f"its header gives the shape {shape}")
            return dtype, shape, handle.tell()
    except OSError as exc:  # its text names the full path, which can name the user (.../alice/...)
        raise BundleError(f"bundle array {path.name} cannot be read ({exc.strerror or type(exc).__name__}); "
                          "the bundle is damaged or unreadable") from None
    except HEADER_ERRORS as exc:
        raise BundleError(f"bundle array {path.name} cannot be read ({exc}); the bundle is damaged") from None


def npy_blocks(path: Path, rows: int | None = None):
    """(first index, 1-D array) blocks of a 1-D .npy file, read with file reads."""
    dtype, shape, offset = npy_header(path)
    total = int(np.prod(shape)) if shape else 1
    step = rows or max(1, BLOCK_BYTES // max(dtype.itemsize, 1))
    with open(path, "rb") as handle:
        handle.seek(offset)
        for first in range(0, total, step):
            block = np.fromfile(handle, dtype, min(step, total - first))
            if len(block) != min(step, total - first):
                raise BundleError(f"bundle array {path.name} is shorter than its header says; the bundle is damaged")
            yield first, block


def read_range(handle, start: int, end: int) -> np.ndarray:
    """Bytes [start, end) of an open file as uint8."""
    handle.seek(start)
    data = handle.read(end - start)
    if len(data) != end - start:
        raise BundleError("a string blob is shorter than its offsets say; the bundle is damaged")
    return np.frombuffer(data, np.uint8)


def string_blocks(blob: Path, offsets: Path, rows: int = 1 << 13):
    """(first row, the block's offsets from 0, the block's bytes) of a string column, read with
    file reads; the offsets must be rising (checked before)."""
    with open(blob, "rb") as data:
        carry = None
        for first, block in npy_blocks(offsets, rows):
            block = block.astype(np.int64)
            bounds, row0 = (block, 0) if carry is None else (np.r_[carry, block], first - 1)
            if len(bounds) > 1:
                yield row0, bounds - bounds[0], read_range(data, int(bounds[0]), int(bounds[-1]))
            carry = block[-1]


def array_stats(path) -> dict:
    """min, max, first, last, all finite, any fall or repeat between neighbours: one pass of file reads."""
    out = {"min": 0, "max": 0, "first": None, "last": None, "finite": True, "falls": False, "repeats": False}
    previous = None
    for _, block in npy_blocks(path):
        if not len(block):
            continue
        if out["first"] is None:
            out.update(first=block[0].item(), min=block[0].item(), max=block[0].item())
        out.update(min=min(out["min"], block.min().item()), max=max(out["max"], block.max().item()),
                   last=block[-1].item())
        if block.dtype.kind == "f":
            out["finite"] &= bool(np.all(np.isfinite(block)))
        edge = previous is not None  # the pair across the block edge, without a joined copy of the block
        out["falls"] |= bool(np.any(block[1:] < block[:-1])) or (edge and bool(block[0] < previous))
        out["repeats"] |= bool(np.any(block[1:] == block[:-1])) or (edge and bool(block[0] == previous))
        previous = block[-1]
    return out
