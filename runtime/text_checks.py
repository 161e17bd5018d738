"""The text columns' checks at open: valid UTF-8 cut at character boundaries, and item ids that are
unique, non-empty and ones the device's API takes. Read a block at a time, never the whole blob."""

from __future__ import annotations

import codecs

import numpy as np

from edgerec.runtime.file_blocks import damaged as _fail
from edgerec.runtime.file_blocks import string_blocks
from edgerec.runtime.id_index import IdIndex
from edgerec.runtime.vocab import MAX_ID


def check_text(bundle, name: str, column, stats: dict, chunks) -> None:
    """Valid UTF-8 cut at character boundaries; ids also non-empty and unique. Read a block
    at a time from the files (`chunks`): no copy of the blob, no Python object per string."""
    from edgerec.runtime.catalog_columns import FileStringColumn

    decoder = codecs.getincrementaldecoder("utf-8")()
    for _, bounds, data in chunks:
        try:
            decoder.decode(data.tobytes())
        except UnicodeDecodeError as exc:
            _fail(column.file, f"(column {name}) is not valid UTF-8 ({exc.reason})")
        starts = bounds[:-1][bounds[:-1] < len(data)]
        if len(starts) and np.any(data[starts] & 0xC0 == 0x80):
            _fail(column.offsets, f"(column {name}) has an offset inside a UTF-8 character")
        if name == "ids":
            _check_ids(column.file, bounds, data)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        _fail(column.file, f"(column {name}) is not valid UTF-8 ({exc.reason})")
    if name == "ids":
        blob, offsets = bundle.path(column.file), bundle.path(column.offsets)
        if stats["repeats"]:
            _fail(column.file, "(column ids) must hold unique, non-empty item ids")
        index = IdIndex(FileStringColumn(blob, offsets), string_blocks(blob, offsets))
        if index.duplicate() is not None:
            _fail(column.file, "(column ids) must hold unique, non-empty item ids")
        bundle.id_index = index  # the catalog's id lookups reuse it (and its memory maps)


def _check_ids(file: str, bounds: np.ndarray, data: np.ndarray) -> None:
    """Ids the device's API takes (vocab.MAX_ID characters at most, no NUL): an app could be shown an item
    it then cannot record, remove or ask about."""
    if np.any(data == 0):
        _fail(file, "(column ids) holds an id with a NUL character; item ids are plain text")
    for row in np.flatnonzero(np.diff(bounds) > MAX_ID):  # more bytes than MAX_ID: count the characters
        text = data[bounds[row]:bounds[row + 1]].tobytes().decode("utf-8", "replace")
        if len(text) > MAX_ID:
            _fail(file, f"(column ids) holds an id of {len(text):,} characters; the device takes at most {MAX_ID}")
