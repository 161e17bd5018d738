"""JSON Lines files (`.jsonl`, `.ndjson`, `.json`, compressed with gzip, bzip2 or xz, or not): one object
per line, read in chunks as the CSV reader's rows, so every import option and check applies unchanged.

Public logs and catalogs ship this way (Amazon reviews and metadata, Goodreads, Yelp). A field's value
becomes the text a CSV cell would hold: numbers exactly as written (`4.0` an integer's `4`, as Parquet
reads them), strings as they are, null or a missing key an empty cell, true/false as written. A list
(Amazon's categories, a list of genres) becomes a `ListCell`: text joined with '|' for any reader, and its
items for the tag reader, nested lists flattened in order. An object, or a line that is not a JSON
object, stops the read at its line (or is left out and counted with `--skip-bad-rows`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from edgerec.data.parts import without_compression
from edgerec.errors import DataError

SUFFIXES = (".jsonl", ".ndjson", ".json")
HEADER_LINES = 1_000  # values that are no object, before any object, after which a file is not one of objects
_INTEGRAL = re.compile(r"-?\d+\.0*")


class ListCell(str):
    """A JSON list as a cell: its text is the items joined by '|'; `items` keeps them apart."""

    items: tuple[str, ...]

    def __new__(cls, items: Sequence[str]):
        cell = super().__new__(cls, "|".join(items))
        cell.items = tuple(items)
        return cell


def is_json_lines(path: str | Path) -> bool:
    return without_compression(str(path).lower()).endswith(SUFFIXES)


def _number(text: str) -> str:
    return text.split(".")[0] if _INTEGRAL.fullmatch(text) else text


class _Repeats(dict):
    """An object that names a key more than once, holding its last value as json does: `repeated` holds the
    keys named again. A line's object is refused when the import reads one of them (read_json_chunks): which
    value is meant is unknown. A nested object is refused wherever a value is read anyway (_scalar)."""

    repeated: frozenset[str]


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        keys = [k for k, _ in pairs]
        obj = _Repeats(obj)
        obj.repeated = frozenset(k for k in obj if keys.count(k) > 1)
    return obj


def _missing(constant: str) -> str | None:
    """NaN (not JSON, but Python's json.dumps writes it for a float NaN, pandas' missing value) reads as null: an
    empty cell, never an id named 'NaN' shared by every row without one. Infinity and -Infinity stay text, so a
    value column refuses them as non-finite (read as missing, an infinite rating became a default 1) and an id
    column keeps them as written."""
    return None if constant == "NaN" else constant


_DECODING = {"parse_float": _number, "parse_int": str, "parse_constant": _missing, "object_pairs_hook": _pairs}


def _parse(line: str):
    return json.loads(line, **_DECODING)


def _scalar(value, key: str, path: Path, line: int) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):  # not from a file (its numbers arrive as text): as Python writes them
        return str(value)
    if isinstance(value, dict):
        keys = ", ".join(list(value)[:5]) + (", ..." if len(value) > 5 else "")  # its keys, never its values
        raise DataError(f"field {key!r} holds an object (with keys {keys}); edgerec reads text, numbers and lists: "
                        "flatten it first (pandas: json_normalize) or leave the field out", str(path), line)
    raise DataError(f"field {key!r} holds a value edgerec cannot read ({type(value).__name__})", str(path), line)


def _flat(values: list, key: str, path: Path, line: int) -> list[str]:
    """The scalars of nested lists in order, nulls left out (a loop, not recursion: any depth json reads)."""
    out: list[str] = []
    stack = [iter(values)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            if value is not None:
                out.append(_scalar(value, key, path, line))
        else:
            stack.pop()
    return out


def cell(value, key: str, path: Path, line: int) -> str:
    """A field's value as the text of a cell (module docstring)."""
    if isinstance(value, list):
        return ListCell(_flat(value, key, path, line))
    return _scalar(value, key, path, line)


class _NoObjects(Exception):
    """The header pass met HEADER_LINES values before any object: the file is not one of objects."""


class _Ignored:
    """Where the header pass puts bad values, keeping only the first and why: the read that follows reports
    them. It gives up once HEADER_LINES of them came before any object (a CSV file named .jsonl)."""

    def __init__(self):
        self.first: tuple[int, str] | None = None
        self.count = 0
        self.found = False  # an object was seen

    def note(self, line: int, problem: str) -> None:
        self.first = self.first or (line, problem)
        self.count += 1
        if not self.found and self.count >= HEADER_LINES:
            raise _NoObjects


def _problem(value) -> str | None:
    return None if isinstance(value, dict) else f"a JSON {type(value).__name__}, not an object"


def _refuse_or_count(skipped, line: int, problem: str, what: str, path: Path) -> None:
    """A value that is no object: noted by the header pass, counted with --skip-bad-rows, else refused."""
    if isinstance(skipped, _Ignored):
        skipped.note(line, problem)
    elif skipped is not None:
        skipped.add("not a JSON object", [line])
    else:
        raise DataError(f"the {what} is {problem}; " + (
            "each line of a JSON Lines file holds one object" if what == "line" else
            "each element of a JSON array file is one object") + f" (--skip-bad-rows leaves such {what}s out)",
            str(path), line)


def _objects(handle, path: Path, skipped) -> Iterator[tuple[int, dict]]:
    """(line, object) for every non-blank line; a line that is no JSON object stops the read or, with
    `skipped`, is counted there."""
    for number, text in enumerate(handle, 1):
        if not text.strip():
            continue
        try:
            value = _parse(text)
            problem = _problem(value)
        except json.JSONDecodeError as exc:
            problem = f"not JSON ({exc.msg} at character {exc.pos + 1})"
        except RecursionError:
            problem = "JSON nested too deep"
        if problem is None:
            yield number, value
        else:
            _refuse_or_count(skipped, number, problem, "line", path)


_SPACE = re.compile(r"[ \t\n\r]*")
ARRAY_BLOCK = 1 << 20  # characters read at a time from a JSON array file


def _starts_an_array(open_text) -> bool:
    """Whether the file is one JSON array (Spotify's streaming history, many API dumps) rather than lines."""
    with open_text() as handle:
        return handle.read(4096).lstrip(" \t\r\n").startswith("[")


def _one_document(open_text) -> bool:
    """Whether the file is one pretty-printed JSON object (Spotify's Million Playlist slices): a lone '{'
    on its first line that is not blank."""
    with open_text() as handle:
        return next((line.strip() for line in handle if line.strip()), "") == "{"


def _array_objects(handle, path: Path, skipped, block: int = ARRAY_BLOCK) -> Iterator[tuple[int, dict]]:
    """(line, object) for every element of a file that is one JSON array, each at the line where it starts,
    decoded one element at a time from blocks of text: a file of any size, pretty-printed or on one line,
    never held whole. A syntax error stops the read at its line (the elements after it cannot be found)."""
    decoder = json.JSONDecoder(**_DECODING)
    text, pos, line, ended = "", 0, 1, False
    state = "open"  # then "first" (after '['), "value" (after ','), "next" (after a value), "closed"

    def fail(problem: str, at: int):
        return DataError(problem, str(path), at)

    while True:
        space = _SPACE.match(text, pos).end()
        line, pos = line + text.count("\n", pos, space), space
        if pos == len(text) and not ended:  # refill, keeping what is not decoded yet
            more = handle.read(block)
            text, pos, ended = text[pos:] + more, 0, not more
            continue
        if pos == len(text):
            if state != "closed":
                raise fail("the JSON array is not closed: the file ends inside it (is it cut short?)", line)
            return
        char = text[pos]
        if state == "closed":
            raise fail("text after the JSON array's closing ']'; the file must hold one array", line)
        if state == "open":
            if char != "[":
                raise fail(f"expected '[' to open the array, found {char!r}", line)
            state, pos = "first", pos + 1
            continue
        if char == "]" and state in ("first", "next"):
            state, pos = "closed", pos + 1
            continue
        if state == "next":
            if char != ",":
                raise fail(f"expected ',' or ']' after an element of the array, found {char!r}", line)
            state, pos = "value", pos + 1
            continue
        try:
            value, end = decoder.raw_decode(text, pos)
            cut = end == len(text)  # a number may go on in the next block
        except json.JSONDecodeError as exc:
            open_string = exc.msg.startswith("Unterminated string")
            if not ended and (open_string or len(text) - exc.pos < 64):  # cut by the block (an escape, a value)
                cut = True
            elif open_string or exc.pos >= len(text) - 1:
                raise fail("the JSON array is not closed: the file ends inside it (is it cut short?)", line) from None
            else:
                raise fail(f"the array is not JSON here ({exc.msg})", line + text.count("\n", pos, exc.pos)) from None
        except RecursionError:
            raise fail("an element of the array is JSON nested too deep", line) from None
        if cut and not ended:  # read on, then decode the element again
            more = handle.read(block)
            text, pos, ended = text[pos:] + more, 0, not more
            continue
        problem = _problem(value)
        if problem is None:
            yield line, value
        else:
            _refuse_or_count(skipped, line, problem, "element", path)
        line, pos, state = line + text.count("\n", pos, end), end, "next"


def _file_objects(handle, path: Path, skipped, array: bool) -> Iterator[tuple[int, dict]]:
    return _array_objects(handle, path, skipped) if array else _objects(handle, path, skipped)


def json_header(path: Path, open_text, enough: Callable[[list[str]], bool] | None = None,
                array: bool | None = None) -> list[str]:
    """The keys of every object in the file, in the order first seen: a key that first appears late
    (an optional field, a log that gained a column) is a column like the others. With `enough`, the
    read stops once it holds for the keys seen so far. A file whose first HEADER_LINES values are no
    object (a CSV named .jsonl) is refused without reading the rest. `array`: whether the file is one JSON
    array, when the caller knows (else looked up)."""
    keys: dict[str, None] = {}
    ignored = _Ignored()
    array = _starts_an_array(open_text) if array is None else array
    with open_text() as handle:
        try:
            for _, obj in _file_objects(handle, path, ignored, array):
                ignored.found, known = True, len(keys)
                keys.update(dict.fromkeys(obj))
                if enough and len(keys) > known and enough(list(keys)):
                    return list(keys)
        except _NoObjects:
            pass
    if not keys:
        if not array and _one_document(open_text):
            slice_hint = (" (a Million Playlist Dataset slice imports as it is with FORMAT mpd)"
                          if path.name.startswith("mpd.slice.") else "")
            raise DataError("the file is one JSON object over many lines (its first line is a lone '{'), not one "
                            "object a line: write one event a line first (a playlist's tracks as one row each, "
                            f"e.g. with pandas json_normalize or jq -c), then import that{slice_hint}", str(path), 1)
        where = f" (line {ignored.first[0]} is {ignored.first[1]})" if ignored.first else ""
        csv = ignored.first is not None and ignored.first[1].startswith("not JSON")
        raise DataError(f"file holds no JSON object{where}; expected one object per line, each with its fields"
                        + (": is it a CSV file named .jsonl?" if csv else ""), str(path))
    return list(keys)


def read_json_chunks(path: Path, chunk_rows: int, open_text, make_chunk, select, skipped=None,
                     enough: Callable[[list[str]], bool] | None = None) -> Iterator:
    """Chunks of a JSON Lines file: `select(names)` picks the wanted columns' places among the file's keys
    (and refuses a missing one: tables.py passes its own), `make_chunk(columns, lines)` builds a chunk;
    `enough(names)` tells when the keys seen so far hold every wanted column (json_header)."""
    array = _starts_an_array(open_text)
    names = json_header(path, open_text, enough, array)
    wanted = [names[i] for i in select(names)]
    buffers: dict[str, list[str]] = {k: [] for k in wanted}
    lines: list[int] = []
    with open_text() as handle:
        for number, obj in _file_objects(handle, path, skipped, array):
            if isinstance(obj, _Repeats) and (twice := [k for k in wanted if k in obj.repeated]):
                if skipped is None:
                    raise DataError(f"the object names key {twice[0]!r} more than once, and JSON keeps only the "
                                    "last value: which one is meant is unknown (as with a CSV header naming a "
                                    "column twice); keep one (or pass --skip-bad-rows to leave such lines out)",
                                    str(path), number)
                skipped.add("a key named twice", [number])
                continue
            for key in wanted:
                buffers[key].append(cell(obj.get(key), key, path, number))
            lines.append(number)
            if len(lines) >= chunk_rows:
                yield make_chunk(buffers, lines)
                buffers, lines = {k: [] for k in wanted}, []
    if lines:
        yield make_chunk(buffers, lines)
