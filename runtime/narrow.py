"""Compact column dtypes (bundle format 3): the narrowest lossless dtype a writer stores a column in,
and which stored dtypes a reader accepts for a column's spec dtype."""

from __future__ import annotations

import math

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


CONSTANT_FORMAT = 6  # the first format that stores a column whose rows all hold one value as that value


def constant_of(values: np.ndarray) -> int | float | None:
    """The one finite number every row of `values` holds (a Python int or float, as JSON writes it),
    else None: an empty column, rows that differ, NaN, or values that are not numbers."""
    if not len(values) or values.dtype.kind not in "iuf" or not np.isfinite(values[0]):
        return None
    return values[0].item() if np.all(values == values[0]) else None


def repeated(value: int | float, dtype, count: int) -> np.ndarray:
    """A constant column as an array: `count` rows of `value` that share one element's memory
    (read-only, as the memory-mapped columns are)."""
    return np.broadcast_to(np.asarray(value, dtype), (count,))


def holds_constant(value, dtype, low: float, high: float) -> bool:
    """Whether a constant from the manifest is a finite number in [low, high] that `dtype` holds exactly."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value) and low <= value <= high and np.asarray(value, dtype).item() == value
    except OverflowError:  # an integer past float64's range
        return False
