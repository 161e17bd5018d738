"""The federated upload format byte by byte (runtime/fed_format.py): known answers for both
encodings, every header field at its edge, and every malformed input refused with a ConfigError."""

import struct

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime.fed_format import ClientUpdate, decode_update, encode_update

SPACE = "0123456789abcdef01234567"


def update(rows=(1, 5), delta=None, weight=2.0, space=SPACE, rnd=3):
    delta = np.array([[1.0, -0.5, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0]], np.float32) if delta is None else delta
    return ClientUpdate(rnd, space, np.asarray(rows), np.asarray(delta), weight)  # cast by encode_update


def test_the_int8_bytes_by_hand():
    data = encode_update(update())
    head = b"ERFU" + bytes([1, 2]) + struct.pack("<HIIf", 4, 3, 2, 2.0) + bytes.fromhex(SPACE)
    assert data[:32] == head
    assert data[32:40] == struct.pack("<II", 1, 5)
    # the first row's scale is its largest magnitude / 127; an all-zero row gets scale 1
    assert data[40:48] == struct.pack("<ff", np.float32(1 / 127), 1.0)
    assert data[48:] == bytes(np.array([127, -64, 32, 0, 0, 0, 0, 0], np.int8))  # -63.5 and 31.75 round to even
    assert len(data) == 32 + 2 * (4 + 4 + 4)
    back = decode_update(data)
    assert (back.round, back.space, back.weight) == (3, SPACE, 2.0)
    assert back.rows.dtype == np.int64 and back.rows.tolist() == [1, 5]
    assert back.delta.dtype == np.float32 and back.delta.shape == (2, 4)
    assert np.allclose(back.delta[0], [1.0, -64 / 127, 32 / 127, 0.0], atol=1e-7) and not back.delta[1].any()


def test_the_fp16_bytes_by_hand_and_the_default_is_int8():
    data = encode_update(update(weight=0.0, rnd=(1 << 32) - 1), "fp16")
    assert data[:32] == b"ERFU" + bytes([1, 1]) + struct.pack("<HIIf", 4, (1 << 32) - 1, 2, 0.0) + bytes.fromhex(SPACE)
    assert data[40:] == np.array([[1.0, -0.5, 0.25, 0.0], [0, 0, 0, 0]], "<f2").tobytes()
    back = decode_update(bytearray(data))
    assert back.round == (1 << 32) - 1 and back.weight == 0.0
    assert back.delta.dtype == np.float32 and back.delta.tolist() == [[1.0, -0.5, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0]]
    assert decode_update(memoryview(data)).rows.tolist() == [1, 5]
    assert encode_update(update())[5] == 2
    # a negative value's scale comes from its magnitude, and 127 steps never clip a row's own maximum
    neg = decode_update(encode_update(update(rows=[0], delta=[[-2.0, 1.0]])))
    assert np.allclose(neg.delta, [[-2.0, 1.0]], atol=2 / 127 / 2)
    assert neg.delta[0, 0] == pytest.approx(-2.0, abs=1e-6)


def test_an_empty_update_and_the_longest_ids():
    empty = ClientUpdate(0, SPACE, np.zeros(0, np.int64), np.zeros((0, 4), np.float32), 1.0)
    for encoding in ("int8", "fp16"):
        data = encode_update(empty, encoding)
        assert len(data) == 32 and decode_update(data).delta.shape == (0, 4)
    flat = decode_update(encode_update(update(rows=[3], delta=np.zeros((1, 0)))))  # rows 0 wide: scale 1
    assert flat.delta.shape == (1, 0) and flat.rows.tolist() == [3]
    top = decode_update(encode_update(update(rows=np.array([0, (1 << 32) - 1], np.uint64))))
    assert top.rows.tolist() == [0, (1 << 32) - 1]
    assert decode_update(encode_update(update(space=SPACE + "ff"))).space == SPACE  # only the first 24 digits
    assert encode_update(update(rows=[7], delta=np.ones((1, 0xFFFF)) / 10, weight=np.float32(3)), "fp16")[6:8] == b"\xff\xff"


@pytest.mark.parametrize("kwargs, message", [
    (dict(rows=[1]), "an update needs one delta row per row id (got 1 ids, delta (2, 4))"),
    (dict(rows=[-1, 2]), "an update needs one delta row per row id (got 2 ids, delta (2, 4))"),
    (dict(rows=[0], delta=np.ones(4)), "an update needs one delta row per row id (got 1 ids, delta (4,))"),
    (dict(rows=[5, 1]), "an update's row ids must be unique and ascending"),
    (dict(rows=[2, 2]), "an update's row ids must be unique and ascending"),
    (dict(rows=[1.0, 5.7]), "an update's row ids are integers (got float64 values)"),
    (dict(rows=["1", "5"]), "an update's row ids are integers (got <U1 values)"),
    (dict(rows=[0], delta=[[1e300, 0.0]]), "an update needs row ids below 2**32 and finite values; it was not encoded"),
    (dict(rows=[0, 1 << 32]), "an update needs row ids below 2**32 and finite values; it was not encoded"),
    (dict(delta=[[np.inf, 0, 0, 0], [0, 0, 0, 0]]), "an update needs row ids below 2**32 and finite values; it was not encoded"),
    (dict(rows=[0], delta=np.zeros((1, 0x10000))), "an update's rows are at most 65535 wide (got 65536); it was not encoded"),
    (dict(rnd=1 << 32), "an update's round must be an integer from 0 to 4294967295 (got 4294967296)"),
    (dict(rnd=-1), "an update's round must be an integer from 0 to 4294967295 (got -1)"),
    (dict(rnd=1.5), "an update's round must be an integer (got float 1.5)"),
    (dict(weight=-0.5), "an update's weight must be a finite number from 0 up to 3.40282e+38 (got -0.5)"),
    (dict(weight=1e39), "an update's weight must be a finite number from 0 up to 3.40282e+38 (got 1e+39)"),
    (dict(weight=float("nan")), "an update's weight must be a finite number from 0 up to 3.40282e+38 (got nan)"),
    (dict(weight="2"), "an update's weight must be a number (got str '2')"),
    (dict(space=None), "embedding-space id None does not start with 24 lowercase hexadecimal digits (a bundle's embedding_space)"),
    (dict(space="ab"), "embedding-space id 'ab' does not start with 24 lowercase hexadecimal digits (a bundle's embedding_space)"),
    (dict(space="ab cd" * 5), "embedding-space id 'ab cdab cdab cdab cdab cd' does not start with 24 lowercase "
                              "hexadecimal digits (a bundle's embedding_space)"),
    (dict(space=SPACE.upper()), f"embedding-space id {SPACE.upper()!r} does not start with 24 lowercase "
                                "hexadecimal digits (a bundle's embedding_space)"),
])
def test_an_update_outside_the_format_is_refused_by_name(kwargs, message):
    """Each of these crashed in struct (or passed: a round of 1.5, a short space id) before the checks."""
    with pytest.raises(ConfigError) as refused:
        encode_update(update(**kwargs))
    assert str(refused.value) == message


@pytest.mark.parametrize("encoding", ["int4", None, 2, "INT8"])
def test_an_unknown_encoding_is_named(encoding):
    with pytest.raises(ConfigError) as refused:
        encode_update(update(), encoding)
    assert str(refused.value) == f"unknown update encoding {encoding!r}; use one of fp16, int8"


def _header(data: bytes, **fields) -> bytes:
    names = ("magic", "version", "code", "dim", "rnd", "count", "weight", "space")
    values = dict(zip(names, struct.unpack_from("<4sBBHIIf12s", data)))
    values.update(fields)
    return struct.pack("<4sBBHIIf12s", *(values[n] for n in names)) + data[32:]


def test_damaged_bytes_are_refused_with_what_was_wrong():
    data = encode_update(update())
    narrow = encode_update(update(rows=[0], delta=[[1.0, 2.0]]))
    not_ours = "these bytes are not a version-1 edgerec federated update (magic, version or encoding)"
    cases = [
        ("text", "an update is bytes, as encode_update wrote them (got str)"),
        (data[:31], "an update has at least 32 bytes (got 31); it was cut short"),
        (b"", "an update has at least 32 bytes (got 0); it was cut short"),
        (_header(data, magic=b"ERFV"), not_ours),
        (_header(data, version=2), not_ours),
        (_header(data, version=0), not_ours),
        (_header(data, code=0), not_ours),
        (_header(data, code=3), not_ours),
        (data[:-1], "an update of 2 rows of dim 4 has 56 bytes, not 55; it is damaged"),
        (data + b"\0", "an update of 2 rows of dim 4 has 56 bytes, not 57; it is damaged"),
        (_header(narrow, code=1), "an update of 1 rows of dim 2 has 40 bytes, not 42; it is damaged"),  # int8 read as fp16
        (_header(data, weight=-1.0), "an update holds NaN, infinite or negative values; it is refused"),
        (_header(data, weight=float("inf")), "an update holds NaN, infinite or negative values; it is refused"),
        (_header(data, weight=float("nan")), "an update holds NaN, infinite or negative values; it is refused"),
        (data[:32] + struct.pack("<II", 5, 5) + data[40:], "an update's row ids must be unique and ascending"),
        (data[:32] + struct.pack("<II", 5, 1) + data[40:], "an update's row ids must be unique and ascending"),
        (data[:40] + struct.pack("<f", np.inf) + data[44:], "an update holds NaN, infinite or negative values; it is refused"),
    ]
    for bad, message in cases:
        with pytest.raises(ConfigError) as refused:
            decode_update(bad)
        assert str(refused.value) == message
    assert decode_update(_header(data, weight=0.0)).weight == 0.0  # zero is a weight (nothing learned)
    one = encode_update(update(rows=[9], delta=[[1.0, 2.0]]), "fp16")
    assert decode_update(one).rows.tolist() == [9]  # one row: nothing to be ascending against
    assert ClientUpdate(0, SPACE, np.array([1]), np.array([[3.0, 4.0]], np.float32), 1).norm == 5.0
