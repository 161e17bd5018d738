"""Compact column dtypes (bundle format 3): the narrowest lossless dtype a writer stores a column in,
and which stored dtypes a reader accepts for a column's spec dtype."""

from __future__ import annotations

import numpy as np


def narrowest(values: np.ndarray) -> np.ndarray:
    """`values` in the smallest dtype that holds every one of them exactly (integers: int8 to int64;
    floats: int8/int16 when all are whole numbers, float16 when each survives the round trip),
    else unchanged. Readers convert back to the column's spec dtype."""
    if not len(values):
        return values
    if values.dtype.kind in "iu":
        low, high = int(values.min()), int(values.max())
        for t in (np.int8, np.int16, np.int32, np.int64):
            if np.iinfo(t).min <= low and high <= np.iinfo(t).max:
                return values.astype(t) if np.dtype(t).itemsize < values.dtype.itemsize else values
        return values
    if values.dtype.kind == "f" and values.dtype.itemsize > 2 and np.all(np.isfinite(values)):
        if np.array_equal(values, np.round(values)) and -2**15 <= values.min() and values.max() < 2**15:
            small = np.int8 if -128 <= values.min() and values.max() < 128 else np.int16
            return values.astype(small)  # whole numbers (seconds, counts): read back as floats
        with np.errstate(over="ignore"):
            half = values.astype(np.float16)
        if np.all(np.isfinite(half)) and np.array_equal(half.astype(values.dtype), values):
            return half
    return values


def stores_as(dtype: np.dtype, wanted, compact: bool) -> bool:
    """Whether a numeric column's dtype is its spec dtype (format 3: or narrower, of its kind, or
    integers where the spec has floats)."""
    wanted = np.dtype(wanted)
    if not compact or dtype == wanted:
        return dtype == wanted
    same_kind = dtype.kind == wanted.kind or dtype.kind in "iu"  # float columns may hold whole numbers
    return same_kind and dtype.itemsize < wanted.itemsize
