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

import itertools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from edgerec.errors import DataError

SUFFIXES = (".jsonl", ".ndjson", ".json")
HEADER_LINES = 1_000  # lines without any object after which a file is not JSON Lines
_INTEGRAL = re.compile(r"-?\d+\.0*")


class ListCell(str):
    """A JSON list as a cell: its text is the items joined by '|'; `items` keeps them apart."""

    items: tuple[str, ...]

    def __new__(cls, items: Sequence[str]):
        cell = super().__new__(cls, "|".join(items))
        cell.items = tuple(items)
        return cell


def is_json_lines(path: str | Path) -> bool:
    name = str(path).lower()
    return name.removesuffix(".gz").removesuffix(".bz2").removesuffix(".xz").endswith(SUFFIXES)


def _number(text: str) -> str:
    return text.split(".")[0] if _INTEGRAL.fullmatch(text) else text


def _parse(line: str):
    return json.loads(line, parse_float=_number, parse_int=str, parse_constant=str)


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


class _Ignored:
    """Where the header pass puts bad lines, keeping only the first and why: the read that follows reports
    them."""

    first: tuple[int, str] | None = None

    def note(self, line: int, problem: str) -> None:
        self.first = self.first or (line, problem)


def _objects(handle, path: Path, skipped, start: int = 1) -> Iterator[tuple[int, dict]]:
    """(line, object) for every non-blank line, the first being line `start`; a line that is no JSON
    object stops the read or, with `skipped`, is counted there."""
    for number, text in enumerate(handle, start):
        if not text.strip():
            continue
        try:
            value = _parse(text)
            problem = None if isinstance(value, dict) else f"a JSON {type(value).__name__}, not an object"
        except json.JSONDecodeError as exc:
            problem = f"not JSON ({exc.msg} at character {exc.pos + 1})"
        except RecursionError:
            problem = "JSON nested too deep"
        if problem is None:
            yield number, value
        elif isinstance(skipped, _Ignored):
            skipped.note(number, problem)
        elif skipped is not None:
            skipped.add("not a JSON object", [number])
        else:
            raise DataError(f"the line is {problem}; each line of a JSON Lines file holds one object "
                            "(--skip-bad-rows leaves such lines out)", str(path), number)


def json_header(path: Path, open_text, enough: Callable[[list[str]], bool] | None = None) -> list[str]:
    """The keys of every object in the file, in the order first seen: a key that first appears late
    (an optional field, a log that gained a column) is a column like the others. With `enough`, the
    read stops once it holds for the keys seen so far. A file whose first HEADER_LINES lines hold no
    object (a CSV named .jsonl) is refused without reading the rest."""
    keys: dict[str, None] = {}
    ignored = _Ignored()
    with open_text() as handle:
        for start, lines in ((1, itertools.islice(handle, HEADER_LINES)), (HEADER_LINES + 1, handle)):
            for _, obj in _objects(lines, path, ignored, start):
                known = len(keys)
                keys.update(dict.fromkeys(obj))
                if enough and len(keys) > known and enough(list(keys)):
                    return list(keys)
            if not keys:
                break
    if not keys:
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
    names = json_header(path, open_text, enough)
    wanted = [names[i] for i in select(names)]
    buffers: dict[str, list[str]] = {k: [] for k in wanted}
    lines: list[int] = []
    with open_text() as handle:
        for number, obj in _objects(handle, path, skipped):
            for key in wanted:
                buffers[key].append(cell(obj.get(key), key, path, number))
            lines.append(number)
            if len(lines) >= chunk_rows:
                yield make_chunk(buffers, lines)
                buffers, lines = {k: [] for k in wanted}, []
    if lines:
        yield make_chunk(buffers, lines)
