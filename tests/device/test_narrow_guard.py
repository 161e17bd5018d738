"""Guards of the compact column dtypes (runtime/narrow.py, bundle format 3): the narrowest lossless dtype
a writer picks, at each edge, and which stored dtypes a reader accepts for a spec dtype."""

import numpy as np
import pytest

from edgerec.runtime.narrow import narrowest, stores_as


@pytest.mark.parametrize("values, dtype", [
    ([-128, 127], np.int8), ([-129, 0], np.int16), ([0, 128], np.int16), ([-2**15, 2**15 - 1], np.int16),
    ([2**15], np.int32), ([-2**31, 2**31 - 1], np.int32), ([2**31], np.int64), ([-2**31 - 1], np.int64),
])
def test_integers_take_the_narrowest_signed_type_that_holds_them(values, dtype):
    out = narrowest(np.array(values, np.int64))
    assert out.dtype == dtype and out.tolist() == values


def test_integers_never_widen_and_unsigned_ones_beyond_int64_stay_as_they_are():
    small = np.array([1, 2], np.int8)
    assert narrowest(small) is small
    same = np.array([2**20], np.int32)
    assert narrowest(same) is same  # int32 is already the narrowest
    huge = np.array([2**63], np.uint64)
    assert narrowest(huge) is huge
    assert narrowest(np.array([200], np.uint8)).dtype == np.uint8  # int16 would be wider
    assert narrowest(np.array([200], np.uint32)).dtype == np.int16


def test_whole_floats_become_small_integers_and_the_rest_float16_when_exact():
    assert narrowest(np.array([-128.0, 127.0], np.float32)).dtype == np.int8
    assert narrowest(np.array([-128.0, 128.0], np.float32)).dtype == np.int16
    assert narrowest(np.array([-129.0, 0.0], np.float64)).dtype == np.int16
    assert narrowest(np.array([-2.0**15, 2.0**15 - 1], np.float32)).dtype == np.int16
    out = narrowest(np.array([2.0**15], np.float32))  # not an int16: exact in float16 (a power of two)
    assert out.dtype == np.float16 and out.tolist() == [2.0**15]
    assert narrowest(np.array([-2.0**15 - 1], np.float32)).dtype == np.float32  # 32769 is not a float16
    half = narrowest(np.array([0.5, 1.25], np.float32))
    assert half.dtype == np.float16 and half.tolist() == [0.5, 1.25]
    assert narrowest(np.array([0.1], np.float32)).dtype == np.float32  # float16 would round it
    assert narrowest(np.array([1e6 + 0.5], np.float64)).dtype == np.float64  # beyond float16: stays
    assert narrowest(np.array([70000.5], np.float32)).dtype == np.float32  # float16 overflows to inf


def test_non_finite_floats_half_floats_and_empty_columns_are_left_as_they_are():
    for values in (np.array([1.0, np.nan], np.float32), np.array([np.inf], np.float64),
                   np.array([1.0], np.float16), np.zeros(0, np.float64), np.zeros(0, np.int64)):
        assert narrowest(values) is values
    words = np.array(["a"])
    assert narrowest(words) is words


def test_a_reader_takes_the_spec_dtype_or_a_narrower_one_of_its_kind_in_compact_bundles():
    assert stores_as(np.dtype(np.float32), np.float32, compact=False)
    assert not stores_as(np.dtype(np.float16), np.float32, compact=False)  # before format 3: exactly
    assert stores_as(np.dtype(np.float32), "float32", compact=True)
    assert stores_as(np.dtype(np.float16), np.float32, compact=True)
    assert stores_as(np.dtype(np.int8), np.float32, compact=True)  # whole numbers in a float column
    assert stores_as(np.dtype(np.uint16), np.int32, compact=True)
    assert not stores_as(np.dtype(np.int32), np.float32, compact=True)  # not narrower
    assert not stores_as(np.dtype(np.float64), np.float32, compact=True)
    assert not stores_as(np.dtype(np.float16), np.int64, compact=True)  # floats in an integer column
    assert stores_as(np.dtype(np.int64), np.int64, compact=False)
    assert not stores_as(np.dtype("U1"), np.int64, compact=True)
