"""The upload format of a federated update: the rows a device changed, as compact bytes.

What a device sends for one round is the change of some item-table rows (the
items it consumed and the negatives it sampled), clipped to an L2 bound. The
bytes, little-endian throughout (spec/README.md, "Federated updates"):

    offset size  field
    0      4     magic b"ERFU"
    4      1     format version (1)
    5      1     value encoding: 1 = float16 rows, 2 = int8 rows with one float32 scale per row
    6      2     dim D (uint16)
    8      4     round (uint32)
    12     4     row count n (uint32)
    16     4     weight (float32): the examples behind the update, what FedAvg weighs it by (1 in a DP round)
    20     12    the first 12 bytes of the embedding-space id (24 hex digits) the rows belong to
    32     4n    row ids (uint32, ascending)
    ...    4n    int8 only: the row scales (float32)
    ...    2nD   float16 rows, or nD int8 rows

No user id, no item id, no order of events: row numbers of the bundle's table and
their changes only. Those rows include the items the device consumed, hidden only
among its hard negatives, and a FedAvg weight tells how many examples it had; in a
round with DP the row count is the round's `upload_rows` for every device
(docs/federated.md says what this does and does not protect). A device with D = 32 that changed 600 rows sends
32 + 600 * (4 + 4 + 32) = 24,032 bytes as int8 (38,432 as float16) (`upload_bytes`); a server plans
rounds whose uploads fit UPLOAD_LIMIT.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import numpy as np

from edgerec.errors import ConfigError
from edgerec.runtime import checks

MAGIC = b"ERFU"
VERSION = 1
ENCODINGS = {"fp16": 1, "int8": 2}
_HEADER = struct.Struct("<4sBBHIIf12s")  # 32 bytes
_FLOAT32_MAX = float(np.finfo(np.float32).max)  # the header holds the weight as float32
_FP16_MAX = float(np.finfo(np.float16).max)  # 65504
UPLOAD_LIMIT = 64 * 1024  # bytes: what a round's plan keeps a DP upload within (docs/federated.md)


def upload_bytes(rows: int, dim: int, encoding: str) -> int:
    """The size of an upload of `rows` rows of width `dim` (the format above)."""
    return _HEADER.size + rows * (4 + (2 * dim if encoding == "fp16" else dim + 4))


@dataclass
class ClientUpdate:
    """The change of some table rows one device computed in one round."""

    round: int
    space: str  # the embedding-space id of the table the rows belong to
    rows: np.ndarray  # int64 (n,), ascending
    delta: np.ndarray  # float32 (n, D)
    weight: float  # examples behind it (1 in a DP round: devices weigh alike there)

    @property
    def norm(self) -> float:  # in float64, as the server measures it against the clip bound
        return float(np.linalg.norm(np.asarray(self.delta, np.float64)))


def encode_update(update: ClientUpdate, encoding: str = "int8") -> bytes:
    """The update as bytes (the format above); int8 rows are rounded to their row's scale."""
    if not isinstance(encoding, str) or encoding not in ENCODINGS:
        raise ConfigError(f"unknown update encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    rows = np.asarray(update.rows)
    if rows.size and rows.dtype.kind not in "iu":  # a float id would be cut to another row silently
        raise ConfigError(f"an update's row ids are integers (got {rows.dtype} values)")
    rows = rows.astype(np.int64)
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused below
        delta = np.asarray(update.delta, np.float32)
    if delta.ndim != 2 or len(delta) != len(rows) or (len(rows) and rows.min() < 0):
        raise ConfigError(f"an update needs one delta row per row id (got {len(rows)} ids, delta {delta.shape})")
    if len(rows) > 1 and np.any(np.diff(rows) <= 0):
        raise ConfigError("an update's row ids must be unique and ascending")
    if (len(rows) and rows.max() >= 1 << 32) or not np.all(np.isfinite(delta)):
        raise ConfigError("an update needs row ids below 2**32 and finite values; it was not encoded")
    # the header's fields in their widths: a value outside them would fail in struct, not here
    if delta.shape[1] > 0xFFFF:
        raise ConfigError(f"an update's rows are at most 65535 wide (got {delta.shape[1]}); it was not encoded")
    rnd = checks.integer(update.round, "an update's round", 0, (1 << 32) - 1)
    weight = checks.number(update.weight, "an update's weight", 0, _FLOAT32_MAX)
    if not (isinstance(update.space, str) and re.fullmatch("[0-9a-f]{24}", update.space[:24])):
        raise ConfigError(f"embedding-space id {update.space!r:.40} does not start with 24 lowercase "
                          "hexadecimal digits (a bundle's embedding_space)")
    head = _HEADER.pack(MAGIC, VERSION, ENCODINGS[encoding], delta.shape[1], rnd, len(rows), weight,
                        bytes.fromhex(update.space[:24]))
    values, decoded = _rounded(delta, encoding)
    if not np.all(np.isfinite(decoded)):  # float16 ends at 65504: a larger value would arrive as inf
        raise ConfigError(f"an update's values pass float16's range ({_FP16_MAX:g}); clip it lower or encode it as "
                          "int8; it was not encoded")
    return b"".join([head, rows.astype("<u4").tobytes(), *values])


def _rounded(delta: np.ndarray, encoding: str) -> tuple[list[bytes], np.ndarray]:
    """The rows' bytes in `encoding`, and the values decode_update reads back from them."""
    if encoding == "fp16":
        with np.errstate(over="ignore"):  # past float16's range: inf, refused by the caller
            half = delta.astype("<f2")
        return [half.tobytes()], half.astype(np.float32)
    scales = (np.abs(delta).max(1, initial=0.0) / 127.0).astype("<f4")
    scales[~(scales > 0)] = 1.0
    codes = np.clip(np.round(delta / scales[:, None]), -127, 127).astype(np.int8)
    return [scales.tobytes(), codes.tobytes()], codes.astype(np.float32) * scales[:, None]


def clip_for_upload(delta, clip: float, encoding: str) -> np.ndarray:
    """`delta` (float32) scaled so that the values the server decodes from it in `encoding` have an L2 norm of
    at most `clip`: rounding to int8 steps or float16 after clipping raised it up to 0.05% past the bound."""
    delta = np.asarray(delta, np.float64)
    norm = float(np.linalg.norm(delta))
    if norm > clip:
        delta = delta * (clip / norm)
    for attempt in range(40):
        out = delta.astype(np.float32)
        got = float(np.linalg.norm(_rounded(out, encoding)[1].astype(np.float64)))
        if got <= clip:
            return out
        # int8 steps scale with the row, so one rescale does; float16 rounds anew: shrink a little more each time
        delta = delta * (clip / got) * (1.0 - 2.0 ** (attempt - 30))
    return np.zeros(delta.shape, np.float32)  # not reached: by attempt 30 the factor is 0


def decode_update(data: bytes, max_rows: int | None = None) -> ClientUpdate:
    """Bytes of `encode_update` back to an update (ConfigError for anything malformed). max_rows: refuse a
    header that claims more rows before reading any (a server knows its table's size)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ConfigError(f"an update is bytes, as encode_update wrote them (got {type(data).__name__})")
    data = bytes(data)
    if len(data) < _HEADER.size:
        raise ConfigError(f"an update has at least {_HEADER.size} bytes (got {len(data)}); it was cut short")
    magic, version, code, dim, rnd, count, weight, space = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or code not in ENCODINGS.values():
        raise ConfigError("these bytes are not a version-1 edgerec federated update (magic, version or encoding)")
    if max_rows is not None and count > max_rows:
        raise ConfigError(f"an update of {count} rows is refused: this run's updates hold at most {max_rows}")
    width = 2 * dim if code == 1 else dim + 4
    if len(data) != _HEADER.size + count * (4 + width):
        raise ConfigError(f"an update of {count} rows of dim {dim} has {_HEADER.size + count * (4 + width)} bytes, "
                          f"not {len(data)}; it is damaged")
    at = _HEADER.size
    rows = np.frombuffer(data, "<u4", count, at).astype(np.int64)
    at += 4 * count
    if code == 1:
        delta = np.frombuffer(data, "<f2", count * dim, at).astype(np.float32).reshape(count, dim)
    else:
        scales = np.frombuffer(data, "<f4", count, at)
        values = np.frombuffer(data, np.int8, count * dim, at + 4 * count).reshape(count, dim)
        with np.errstate(invalid="ignore", over="ignore"):  # an inf or NaN scale is refused below
            delta = values.astype(np.float32) * scales[:, None]
    if not np.all(np.isfinite(delta)) or not np.isfinite(weight) or weight < 0:
        raise ConfigError("an update holds NaN, infinite or negative values; it is refused")
    if count > 1 and np.any(np.diff(rows) <= 0):
        raise ConfigError("an update's row ids must be unique and ascending")
    return ClientUpdate(int(rnd), space.hex(), rows, delta, float(weight))
