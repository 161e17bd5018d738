"""Chunked reading and writing of tables (CSV, TSV, Parquet) with error locations.

Everything that reads user files goes through here, so every malformed file
gets the same kind of message: the file, the line, what was wrong. Readers
yield chunks (dicts of column name -> list of strings) so files larger than
memory stream through.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import errno
import gzip
import lzma
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from edgerec.data.json_lines import ListCell, is_json_lines, json_header, read_json_chunks
from edgerec.data.parts import data_files, is_parquet
from edgerec.data.time_text import ISO_UTC, LocalTimeError, TimeText, zone_of
from edgerec.errors import ConfigError, DataError
from edgerec.runtime.atomic import Temporary
from edgerec.runtime.vocab import MAX_TS

DEFAULT_CHUNK_ROWS = 200_000
PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}  # units of numeric times
FLOAT_NAMES = {11: "float16", 24: "float32", 53: "float64"}  # by bits of significand
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
STEP_SECONDS = {"s": 1, "min": 60, "h": 3_600, "d": 86_400}  # units a count of steps may use: 10min
_STEP_WORDS = {"s": "second", "min": "minute", "h": "hour", "d": "day"}
_STEPS = re.compile(r"([1-9]\d{0,6})?(s|min|h|d)")


def time_unit(unit: str) -> tuple[int, int]:
    """(ticks, seconds): `ticks` of a numeric time make `seconds` seconds. A unit is s, ms, us or ns, or a
    count of s, min, h or d steps ('10min': Twitch's slots, 'd': days), read exactly as whole steps."""
    if unit in PER_SECOND:
        return PER_SECOND[unit], 1
    match = _STEPS.fullmatch(unit) if isinstance(unit, str) else None
    if match is None:
        raise ConfigError(f"unknown time unit {unit!r}; use s, ms, us or ns, or steps of s, min, h or d with an "
                          "optional count before them (10min for times counted in 10-minute slots)")
    return 1, int(match.group(1) or 1) * STEP_SECONDS[match.group(2)]


def unit_name(unit: str) -> str:
    """The unit in words: 'milliseconds', 'days', '10-minute steps'."""
    if unit in UNIT_NAMES:
        return UNIT_NAMES[unit]
    time_unit(unit)  # refuses what is not a unit
    count, step = _STEPS.fullmatch(unit).groups()
    return f"{_STEP_WORDS[step]}s" if count in (None, "1") else f"{count}-{_STEP_WORDS[step]} steps"


@dataclass
class Chunk:
    """Rows of one table read together. `first_line` is the file line of row 0."""

    columns: dict[str, list[str]]
    first_line: int
    path: str
    floats: dict[str, int] = dataclass_field(default_factory=dict)  # Parquet floating-point columns: significand bits
    lines: np.ndarray | None = None  # the file line of every row, when rows were skipped (else consecutive)
    units: dict[str, str] | None = None  # Parquet timestamp/date columns, read as integers in this unit

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def line_of(self, row: int) -> int:
        return int(self.lines[row]) if self.lines is not None else self.first_line + row

    def first_inexact(self, name: str) -> int | None:
        """The row of a floating-point column's first value that may have been rounded when it was stored:
        not finite, or at least 2**bits, from where the column's width (`bits` of significand) no longer keeps
        every whole number (float32 from 16,777,216: ids merged). None: no such row."""
        if name not in self.floats:
            return None
        limit = 2.0 ** self.floats[name]
        return next((i for i, v in enumerate(self.columns[name]) if v and not abs(float(v)) < limit), None)

    def float_width(self, name: str) -> str:
        """How a floating-point column is stored, as its reader would name it ('float32')."""
        return FLOAT_NAMES.get(self.floats[name], "floating point")

    def without(self, drop: np.ndarray) -> Chunk:
        """The chunk less the rows where `drop` is True (their lines are remembered for later errors)."""
        keep = np.flatnonzero(~drop)
        lines = self.lines if self.lines is not None else self.first_line + np.arange(len(self))
        return Chunk({k: [v[i] for i in keep] for k, v in self.columns.items()}, int(lines[keep[0]]) if keep.size
                     else self.first_line, self.path, self.floats, lines[keep], self.units)


class RowBuffer:
    """Rows of a log that is not a table (Netflix's blocks, playlists, Idomaar lines), gathered column by
    column with their file lines and given out as Chunks of `chunk_rows` rows."""

    def __init__(self, header: Sequence[str], chunk_rows: int, path: str | os.PathLike):
        self.header, self.chunk_rows, self.path = tuple(header), chunk_rows, str(path)
        self._columns: list[list[str]] = [[] for _ in self.header]
        self._lines: list[int] = []

    def add(self, values: Sequence[str], line: int) -> Chunk | None:
        """Add one row (its values in header order); the chunk it completes, if it does."""
        for column, value in zip(self._columns, values, strict=True):
            column.append(value)
        self._lines.append(line)
        return self.flush() if len(self._lines) >= self.chunk_rows else None

    def flush(self) -> Chunk | None:
        """The rows added since the last chunk, as one (None when there are none)."""
        if not self._lines:
            return None
        lines = np.asarray(self._lines, np.int64)
        chunk = Chunk(dict(zip(self.header, self._columns)), int(lines[0]), self.path, lines=lines)
        self._columns, self._lines = [[] for _ in self.header], []
        return chunk


class Skipped:
    """Rows an import left out on request (`--skip-bad-rows`), counted by reason with their first lines."""

    SHOWN = 5

    def __init__(self):
        self.reasons: dict[str, list] = {}  # reason -> [count, first lines]
        self.part: str | None = None  # the part file being read, when a folder of parts is (then "part:line")

    def add(self, reason: str, lines) -> None:
        entry = self.reasons.setdefault(reason, [0, []])
        lines = [int(x) if self.part is None else f"{self.part}:{int(x)}" for x in lines]
        entry[0] += len(lines)
        entry[1] = (entry[1] + lines[: self.SHOWN])[: self.SHOWN]

    @property
    def total(self) -> int:
        return sum(count for count, _ in self.reasons.values())

    def summary(self) -> dict:
        return {reason: {"rows": count, "first_lines": lines} for reason, (count, lines) in self.reasons.items()}


def read_chunks(
    path: str | os.PathLike,
    columns: Sequence[str] | None = None,
    *,
    delimiter: str = ",",
    header: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    encoding: str = "utf-8",
    quoted: bool = True,
    skipped: Skipped | None = None,
    header_option: str = "--columns",
    zone: str | None = None,
) -> Iterator[Chunk]:
    """Yield chunks of a CSV/TSV/Parquet file, keeping only `columns` (all when None).

    `header` names the columns of a file that has no header line (MovieLens
    `u.data`); `delimiter` may be several characters (`::` in MovieLens 1M).
    `quoted=False` for formats that never quote (MovieLens 100K): a `"` is then
    plain text, not the start of a quoted field; `header_option` is the option that gave `header` (named when
    the file has a header line after all); `zone` (--time-zone) is the zone of a Parquet timestamp column
    stored without one (UTC when None). With `skipped`, a row with too few or too many fields
    is left out and counted there instead of stopping the read. A folder is read as its part files in
    name order (parts.py), each naming its own lines in errors. A file (or a folder's list of parts) that
    changed by the end of its read is refused: its rows would mix two versions.
    """
    if Path(path).is_dir():
        parts = data_files(path)
        for part in parts:
            if skipped is not None:
                skipped.part = part.name  # the lines it counts name their part
            yield from read_chunks(part, columns, delimiter=delimiter, header=header, chunk_rows=chunk_rows,
                                   encoding=encoding, quoted=quoted, skipped=skipped, header_option=header_option,
                                   zone=zone)
        if data_files(path) != parts:  # a part added or taken away while the others were read
            raise DataError("folder's part files changed while they were read; import it again once nothing "
                            "writes to it", str(path))
        return
    path = _existing_file(path)
    before = _identity(path)
    if before[0] == 0:
        raise DataError("file is empty; expected " + ("at least one row" if header is not None else
                                                      "a header and at least one row"), str(path))
    if is_parquet(path):
        yield from _read_parquet_chunks(path, columns, chunk_rows, zone)
    elif is_json_lines(path):
        if header is not None:
            raise ConfigError("--columns names the columns of a file without a header line; a JSON Lines file "
                              "names its fields itself: leave --columns out")
        yield from read_json_chunks(
            path, chunk_rows, lambda: _open_text(path, encoding),
            lambda buffers, lines: Chunk(buffers, lines[0], str(path), lines=np.asarray(lines, np.int64)),
            lambda names: _select(names, columns, path, 1), skipped,
            None if columns is None else lambda names: set(columns) <= set(names))
    else:
        yield from _read_text_chunks(path, columns, delimiter, header, chunk_rows, encoding, quoted, skipped,
                                     header_option)
    _refuse_changed(path, before)


RELEASE_TEXT = ("the release writes its files in UTF-8: is this file from the download, or was it saved again in "
                "another encoding?")  # what to do about a release's file that is not UTF-8 (no --encoding there)


def numbered_lines(path: str | os.PathLike, encoding: str = "utf-8",
                   advice: str | None = None) -> Iterator[tuple[int, str]]:
    """Each line of a text file (plain, gzip, bzip2 or xz) with its number from 1, line break removed, for
    formats that are not tables (Netflix Prize's blocks). Bytes not in `encoding`, a cut or damaged
    stream and a file changed while it is read are DataErrors naming the file (and line). `advice`: what to
    do about text in another encoding, for formats that take no --encoding (RELEASE_TEXT)."""
    path = _existing_file(path)
    before, number = _identity(path), 0
    try:
        with _open_text(path, encoding, advice) as handle:
            for number, line in enumerate(handle, 1):  # noqa: B007 (read after the loop, for the error line)
                yield number, line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise _not_text(path, encoding, exc, advice) from None
    except UNREADABLE as exc:
        raise DataError(f"cannot be read past this line ({exc})", str(path), max(number, 1)) from None
    _refuse_changed(path, before)


def whole_text(path: str | os.PathLike, encoding: str = "utf-8", advice: str | None = None) -> str:
    """A text file (plain, gzip, bzip2 or xz) read in one piece, every line break as "\\n", with
    numbered_lines' errors, for formats parsed whole (an MPD slice is one JSON document): a line at a
    time cost five times json.loads of the text (2.8M lines in four slices)."""
    path = _existing_file(path)
    before = _identity(path)
    try:
        with _open_text(path, encoding, advice) as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise _not_text(path, encoding, exc, advice) from None
    except UNREADABLE as exc:
        raise DataError(f"cannot be read to its end ({exc})", str(path)) from None
    _refuse_changed(path, before)
    if "\r" in text:  # line numbers count "\n": Windows' and old Macs' breaks count as one each
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _refuse_changed(path: Path, before: tuple[int, int, int]) -> None:
    if _identity(path) != before:  # a log still being written, or replaced: its rows mix two versions
        raise DataError("file changed while it was read (a program still writing it, or a copy over it); "
                        "import it again once nothing writes to it, or import a copy", str(path))


def _identity(path: Path) -> tuple[int, int, int]:
    """(size, time of last change, inode): any write to the file or replacement of it moves one of them."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError("file not found; check the path", str(path))
    if not path.is_file():
        raise DataError("is a folder (or a device), not a data file; give the path of the file itself", str(path))
    if not os.access(path, os.R_OK):
        raise DataError("cannot be read (permission denied); give this user read access to it, or copy it", str(path))
    return path


def _open_text(path: Path, encoding: str, advice: str | None = None):
    """A text handle on a CSV/TSV file, gzip-compressed or not; a UTF-8 byte order mark (Excel writes
    one) is dropped, otherwise it would stick to the first column's name. `advice`: numbered_lines'."""
    try:
        utf8 = codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")  # any alias (utf_8, U8, utf-8-sig)
    except (LookupError, TypeError):
        raise ConfigError(f"unknown text encoding {encoding!r}; name one Python knows, such as utf-8, latin-1 "
                          "or cp1252") from None
    _refuse_binary(path, None if utf8 else encoding, advice)
    if utf8:
        encoding = "utf-8-sig"
    opener = OPENERS.get(_compression(path), open)
    return opener(path, "rt", newline="", encoding=encoding, errors="strict")


UTF8_MARK = codecs.BOM_UTF8


def _refuse_binary(path: Path, other_encoding: str | None = None, advice: str | None = None) -> None:
    """A Parquet file or a zip archive (an Excel workbook is one) read as text would fail as a text encoding
    problem, or, read as Latin-1, as a header without the columns: say what the file is instead. So for a
    UTF-8 byte order mark read in `other_encoding` than UTF-8: it became 'ï»¿user_id', a missing column."""
    try:
        with _open_raw(path) as raw:
            head = raw.read(TAR_MARK_AT + len(TAR_MARK))
    except UNREADABLE:  # a damaged compressed stream: the text reader names its line
        return
    if head[:4] == b"PAR1":
        raise DataError("a Parquet file, not text: name it .parquet" + (" once unpacked with gunzip (Parquet "
                        "compresses its own columns)" if _compressed(path) else ""), str(path))
    if other_encoding and head.startswith(UTF8_MARK):
        raise DataError(f"the file starts with a UTF-8 byte order mark, so it is UTF-8 text, not {other_encoding}: "
                        "drop --encoding for this file (the item table has its own, --items-encoding)", str(path), 1)
    if head[:4] == b"PK\x03\x04":
        raise DataError("a zip archive (an Excel workbook is one), not text: unzip it and import the CSV inside "
                        "(save a workbook's sheet as CSV first)", str(path))
    if head[TAR_MARK_AT:] == TAR_MARK:
        raise DataError("a tar archive, not text: extract it (tar xf) and import the file inside", str(path))
    if head[:2] in UTF16_MARKS and other_encoding is None:  # read as UTF-8, it fails as "not valid utf-8"
        raise DataError("the file starts with a UTF-16 byte order mark (Excel's \"Unicode text\" saves this way): "
                        + (advice or "pass --encoding utf-16"), str(path), 1)


TAR_MARK, TAR_MARK_AT = b"ustar", 257  # where every tar header names its format
UTF16_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}  # told apart by their first bytes, not names
UNREADABLE = (OSError, EOFError, lzma.LZMAError)  # a damaged or cut compressed stream


def _compression(path: Path) -> str | None:
    with open(path, "rb") as raw:
        head = raw.read(6)
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit():
        return "bz2"
    return "xz" if head == b"\xfd7zXZ\x00" else None


def _compressed(path: Path) -> bool:
    return _compression(path) is not None


def ends_mid_line(path: Path) -> bool:
    """A plain CSV/TSV file whose last byte is not a line break (a cut file; Parquet and gzip: False)."""
    if is_parquet(path) or _compressed(path) or path.stat().st_size == 0:
        return False
    with open(path, "rb") as raw:
        raw.seek(-1, os.SEEK_END)
        return raw.read(1) not in (b"\n", b"\r")


def _open_raw(path: Path):
    return OPENERS.get(_compression(path), open)(path, "rb")


def _select(names: list[str], wanted: Sequence[str] | None, path: Path, line: int,
            next_row: Callable[[], list[str] | None] | None = None) -> list[int]:
    """Indices of the `wanted` columns (all when None); `line` 0 for a file without lines (Parquet).
    `next_row` reads the row after the first line of a text file (to tell a header from a row of data)."""
    where = (str(path), line or None)
    twice = sorted({c for c in (names if wanted is None else wanted) if c and names.count(c) > 1})
    if twice:  # reading the first copy could silently read the wrong data
        raise DataError(f"column(s) {', '.join(twice)} appear more than once in the header; rename or drop the "
                        "copies so that one column holds each", *where)
    if wanted is None:
        return list(range(len(names)))
    missing = [c for c in wanted if c not in names]
    if missing:
        hint = ("Map a log's columns with --user-col/--item-col/--time-col or rename them (an item table's id "
                "column must be item_id).")
        glued = [d for d in (";", "\t", "|", ",") if len(names) == 1 and d in names[0]]
        if glued:  # the whole header is one name: the file is split by another character
            hint = f"The header is one column: is the file separated by {glued[0]!r}? Pass --delimiter."
        if not is_parquet(path) and looks_like_data(names, glued[0] if glued else None):  # ids: not shown
            also = f"; it is one field: is the file separated by {glued[0]!r}? Pass --delimiter" if glued else ""
            raise DataError(f"missing column(s) {', '.join(missing)}; the first line holds data, not column names: "
                            f"add a header line naming the columns ({', '.join(wanted)}) or, for a log, name "
                            f"every column in file order with --columns{also}", *where)
        if next_row is not None and not _header_evident(names, wanted, next_row(), glued[0] if glued else None):
            raise DataError(f"missing column(s) {', '.join(missing)}; the first line's {len(names)} fields name "
                            "none of them (they are not shown: without a header line they would be data, such as "
                            "a user id). If it is a header line, map the columns with --user-col/--item-col/"
                            "--time-col or rename them (an item table's id column must be item_id); if the file "
                            "has no header line, name every column in file order with --columns", *where)
        raise DataError(f"missing column(s) {', '.join(missing)}; the file has {', '.join(names)}. {hint}", *where)
    return [names.index(c) for c in wanted]


def _header_evident(names: list[str], wanted: Sequence[str], second: list[str] | None, glued: str | None) -> bool:
    """The first line is a header for sure: it names a wanted column, or a field of the next row is a number
    or a date where the first line has text (`ts` above `100`). Otherwise its fields may be data (user ids:
    not to be shown). `glued`: the separator of a line read as one field."""
    if glued:
        names = names[0].split(glued)
        second = second[0].split(glued) if second and len(second) == 1 else None
    if any(c in names for c in wanted):
        return True
    if not second or len(second) != len(names):
        return False
    typed = [_looks_numeric(v.strip()) or _is_time(v.strip()) for v in second]
    return any(t and not (_looks_numeric(a) or _is_time(a)) for a, t in zip(names, typed))


def looks_like_data(names: list[str], glued: str | None) -> bool:
    """A first line holding a number or a date is a row of data, not a header (a file without one)."""
    cells = [c.strip() for n in names for c in (n.split(glued) if glued else [n])]
    return any(c and (_looks_numeric(c) or _is_time(c)) for c in cells)


def _is_time(text: str) -> bool:
    try:
        ISO_UTC.seconds(text)
    except (ValueError, OverflowError):
        return False
    return True


def _first_rows(path: Path, delimiter: str, encoding: str, quoted: bool) -> tuple[list[str] | None, ...]:
    """The fields of a text file's first two rows (None for a row it lacks or that cannot be read)."""
    try:
        with _open_text(path, encoding) as handle:
            rows = _split_lines(handle, delimiter, quoted)
            first = next(rows, None)
            return first, next(rows, None)
    except (UnicodeDecodeError, csv.Error, DataError, *UNREADABLE):
        return None, None


def _second_row(path: Path, delimiter: str, encoding: str, quoted: bool) -> list[str] | None:
    """The fields of a text file's second row (None when it has none or cannot be read)."""
    return _first_rows(path, delimiter, encoding, quoted)[1]


def _refuse_spaced_fields(header: list[str], row: list[str], delimiter: str, path: Path, line: int) -> None:
    """A file written 'user_id, item_id' / 'u1, i1' and read with ',': the header's names are stripped, the
    values are kept as written, so every id after the first column began with a space (' i1'), silently."""
    if len(header) < 2 or len(row) != len(header) or delimiter.endswith(" "):
        return
    if all(f[:1] == " " and f.strip() for f in header[1:] + row[1:]):
        raise DataError(f"the fields are separated by {delimiter!r} and a space (the header's names and the first "
                        f"row's values after the first start with one): pass --delimiter '{delimiter} ' (ids are "
                        "kept exactly as written, spaces included)", str(path), line)


def _refuse_a_header_line(path: Path, names: list[str], delimiter: str, encoding: str, quoted: bool,
                          option: str = "--columns") -> None:
    """With --columns every line is data; a first line that is evidently a header (text above numbers or
    times, or naming a column) would fail as a row ("found 'timestamp'"), or pass as one: named instead."""
    first, second = _first_rows(path, delimiter, encoding, quoted)
    if first is None or len(first) != len(names):
        return
    cells = [c.strip() for c in first]
    # an item table's ids and titles are text too: a cell named like a column ('movie_id', 'title') says it
    named = option == "--items-header" and any(_COLUMN_NAME.fullmatch(c) for c in cells)
    if named or (not looks_like_data(cells, None) and _header_evident(cells, names, second, None)):
        if not option.startswith("--"):  # a release's file, read in its own layout: no option to leave out
            raise DataError(f"the first line is a header line, but {option} has none (the release writes its rows "
                            "only): delete that line, or import the file as FORMAT csv with --user-col, --item-col "
                            "and --time-col", str(path), 1)
        mapping = "--user-col, --item-col, --time-col" if option == "--columns" else "--item-columns"
        raise DataError(f"the first line is a header line (text where the rows below hold numbers or times, or "
                        f"the names {option} gives), but {option} says the file has none: leave {option} out "
                        f"and map the columns by the header's names ({mapping})", str(path), 1)


_COLUMN_NAME = re.compile(r"[A-Za-z]+(_id|_ID|Id|ID)|[Ii][Dd]|(item|movie|track|video)_?[Ii]d|[Tt]itles?|[Nn]ame|"
                          r"[Gg]enres?|[Tt]ags?|[Dd]uration|[Ll]anguage|[Dd]escription")


STRAY_QUOTE = ("a field starts with a quote and goes on after the closing one (a name such as '\"Heroes\" (Live)'): its "
               "quotes are part of the text, not CSV quoting; pass --no-quoting, or quote the whole field and double "
               "the quotes inside it")


class _KeepLast:
    """The lines a csv reader reads, the last one kept: a one-line row is read again strictly when it holds a
    quote (_refuse_stray_quote)."""

    def __init__(self, handle):
        self.handle, self.last = handle, ""

    def __iter__(self):
        for text in self.handle:
            self.last = text
            yield text


def _refuse_stray_quote(text: str, delimiter: str, path: Path, line: int) -> None:
    """csv reads '"Weird Al" Yankovic' as 'Weird Al Yankovic' (the quoted part, then the rest, quotes dropped):
    two names became one, silently. Read strictly, such text after a closing quote is an error."""
    try:
        next(csv.reader([text], delimiter=delimiter, strict=True), None)
    except csv.Error as exc:
        if "expected after" in str(exc):
            raise DataError(STRAY_QUOTE, str(path), line) from None


def _split_lines(handle, delimiter: str, quoted: bool = True):
    """The rows' fields: a csv reader, whose `line_num` counts the lines read (a quoted field may span
    several), or one row a line."""
    if len(delimiter) == 1 and quoted:
        return csv.reader(handle, delimiter=delimiter)
    # csv cannot split on "::"; such files (MovieLens 1M, and 100K's "|" files) never quote fields
    return (raw.rstrip("\r\n").split(delimiter) for raw in handle)


def _read_text_chunks(path, columns, delimiter, header, chunk_rows, encoding, quoted=True,
                      skipped=None, header_option="--columns") -> Iterator[Chunk]:
    with _open_text(path, encoding) as handle:
        read = _KeepLast(handle)
        rows = _split_lines(read, delimiter, quoted)
        spans_lines = hasattr(rows, "line_num")  # a csv reader: it counts the lines of each row
        line = 0
        first_row = None  # the header line as read, to recognise it if it comes again
        try:
            if header is None:
                first_row = next(rows)
                names = [c.strip() for c in first_row]
                line = rows.line_num if spans_lines else 1
                if not any(names):
                    raise DataError("the first line is blank; the header line (the column names) must come first",
                                    str(path), 1)
            else:
                names = list(header)
                _refuse_a_header_line(path, names, delimiter, encoding, quoted, header_option)
        except StopIteration:
            raise DataError("file is empty; expected a header and at least one row", str(path)) from None
        except UnicodeDecodeError as exc:
            raise _not_text(path, encoding, exc) from None
        except UNREADABLE as exc:  # a compressed stream cut or damaged before its first line ends
            raise DataError(f"cannot be read ({exc}): the file is cut short or damaged", str(path), 1) from None
        keep = _select(names, columns, path, max(line, 1),
                       lambda: _second_row(path, delimiter, encoding, quoted) if header is None else None)
        out_names = [names[i] for i in keep]
        width = len(names)
        buffers: list[list[str]] = [[] for _ in keep]
        first_line = line + 1
        rows_seen = 0
        lines = None  # the line of every row of the chunk, once a row was skipped in it
        blank = 0  # the first blank line after some rows: ignored at the end of the file, an error before a row
        try:
            for fields in rows:
                start = line + 1  # the row's first line; `line` its last (a quoted field may span several)
                line = rows.line_num if spans_lines else start
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    if not rows_seen:  # not buffers[0]: after a full chunk it is empty, yet the line is inside
                        first_line = line + 1
                    elif not blank:
                        blank = line
                    continue
                if blank:  # a blank line inside the data would shift the line numbers of the chunk
                    raise DataError("blank line inside the data; remove it", str(path), blank)
                if spans_lines and line == start and '"' in read.last:
                    _refuse_stray_quote(read.last, delimiter, path, start)
                if not rows_seen and first_row is not None:
                    _refuse_spaced_fields(first_row, fields, delimiter, path, start)
                marked = bool(fields) and fields[0].startswith("\ufeff")  # a second file's byte order mark
                if fields == first_row or (marked and [fields[0][1:], *fields[1:]] == first_row):
                    raise DataError("this line repeats the header (were files joined with their header lines?); "
                                    "keep only the first header line", str(path), start)
                if marked:  # "\ufeffu1" would print as u1 and be another user
                    raise DataError("this line starts with a byte order mark (U+FEFF, invisible), which belongs at "
                                    "the start of a file only: were files joined (cat)? Remove it", str(path), start)
                if len(fields) != width:
                    spans = any("\n" in f or "\r" in f for f in fields)  # csv read on to the next quote
                    if skipped is not None and not spans:
                        skipped.add(f"not {width} fields", [start])
                        lines = lines if lines is not None else list(range(first_line, start))
                        continue
                    raise DataError(
                        f"expected {width} fields ({', '.join(names)}), found {len(fields)}"
                        + ("; a field runs over several lines: is a quote left open here?" if spans
                           else _short_row_hint(rows, path, len(fields) < width, header_option,
                                                header is not None)),
                        str(path),
                        start,
                    )
                if line != start and _swallowed(fields, delimiter, width):  # the right count by chance: silent otherwise
                    raise DataError("a quoted field runs over several lines and holds whole rows of the file: is a "
                                    "quote left open here? (for a log whose names hold quotes pass --no-quoting)",
                                    str(path), start)
                for buf, i in zip(buffers, keep):
                    buf.append(fields[i])
                if lines is None and line != start:  # the rows after this one no longer follow from first_line
                    lines = list(range(first_line, start))
                if lines is not None:
                    lines.append(start)
                rows_seen += 1
                if len(buffers[0]) >= chunk_rows:
                    _refuse_garbled(buffers, encoding, path, first_line, lines)
                    yield _chunk(out_names, buffers, first_line, path, lines)
                    buffers = [[] for _ in keep]
                    first_line, lines = line + 1, None
        except UnicodeDecodeError as exc:
            raise _not_text(path, encoding, exc) from None
        except csv.Error as exc:  # the row being read
            if "field limit" in str(exc):  # csv stops at 128 KiB a field: far more than any id or title holds
                raise DataError(f"a field longer than {csv.field_size_limit():,} characters starts in this row: is "
                                "a quote left open here (for a log whose names hold quotes pass --no-quoting)? "
                                "Shorten such a field or close its quote", str(path), line + 1) from None
            raise DataError(f"malformed CSV ({exc})", str(path), line + 1) from None
        except UNREADABLE as exc:  # a damaged compressed stream
            raise DataError(f"cannot be read past this line ({exc})", str(path), line) from None
        if rows_seen == 0:
            if skipped is not None and skipped.total:
                raise DataError(f"every row was skipped ({skipped.total:,}; {', '.join(skipped.reasons)}): is the "
                                "delimiter or --columns wrong?", str(path))
            raise DataError("file has a header but no rows", str(path), line)
        if buffers[0]:
            _refuse_garbled(buffers, encoding, path, first_line, lines)
            yield _chunk(out_names, buffers, first_line, path, lines)


def _short_row_hint(rows, path: Path, short: bool, header_option: str = "--columns", named: bool = False) -> str:
    """What to do about a row of the wrong width: a short last line without a line break is a cut file; an
    item table (no --skip-bad-rows) whose columns --items-header named may be named wrong."""
    if header_option == "--items-header":
        return f"; {header_option} must name every column of the file, in order" if named else ""
    try:
        last = next(rows, None) is None
    except (csv.Error, UnicodeDecodeError, *UNREADABLE):  # the rest is not read anyway
        last = False
    if short and last and ends_mid_line(path):
        return ("; it is the last line and the file ends inside it (no line break after it): the file looks cut "
                "short, fetch it again (or leave the line out with --skip-bad-rows)")
    return "; to leave such rows out, counted, pass --skip-bad-rows"


def _chunk(names, buffers, first_line, path, lines) -> Chunk:
    if lines is None:
        return Chunk(dict(zip(names, buffers)), first_line, str(path))
    return Chunk(dict(zip(names, buffers)), lines[0] if lines else first_line, str(path), lines=np.asarray(lines))


def _refuse_garbled(buffers: list[list[str]], encoding: str, path: Path, first_line: int, lines) -> None:
    """UTF-8 text read with a one-byte encoding (latin-1, cp1252) decodes without an error, every accented
    letter as two ('Jürgen' as 'JÃ¼rgen'): refused when the kept text, encoded back, is UTF-8 beyond ASCII
    (text truly in a one-byte encoding almost never is)."""
    if len(b"\xc3\xbc".decode(encoding, errors="replace")) != 2:  # UTF-8, UTF-16: a wrong one fails on its own
        return
    raw = "\x1f".join(v for column in buffers for v in column).encode(encoding, errors="replace")
    if raw.isascii():
        return
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:  # truly one-byte text
        return
    row, seen = next((r, v) for r, values in enumerate(zip(*buffers)) for v in values if not v.isascii())
    # one letter, not the value: the value may be a user id
    raw = re.search(r"[^\x00-\x7f]+", seen).group().encode(encoding, errors="replace")
    meant = raw.decode("utf-8", errors="replace")[0]
    garbled = raw[:len(meant.encode())].decode(encoding, errors="replace")
    raise DataError(f"this text is UTF-8, read as {encoding} ({meant!r} became {garbled!r}): drop --encoding for "
                    "this file (the item table has its own, --items-encoding)", str(path),
                    int(lines[row]) if lines is not None else first_line + row)


def _swallowed(fields: list[str], delimiter: str, width: int) -> bool:
    """A field that read on over line breaks up to a quote far below: the lines between its first and its
    last are whole rows (`width` non-empty fields each). Quoted text may hold line breaks, rarely whole rows
    of the file; its last line is where the quote closed, part of a row even when swallowed, and a closing
    line of prose (`Stars: Ann, Bob, Cy.`) has commas enough to pass for one. A field ending in a line break
    holds a quote left open to the end of the file: its last line is whole too."""
    for field in fields:
        if "\n" not in field and "\r" not in field:
            continue
        lines = field.splitlines()
        inner = lines[1:] if field.endswith(("\n", "\r")) else lines[1:-1]
        if inner and all(len(parts := line.split(delimiter)) == width and all(p.strip() for p in parts)
                         for line in inner):
            return True
    return False


def _not_text(path: Path, encoding: str, exc: UnicodeDecodeError, advice: str | None = None) -> DataError:
    """The error for bytes that are not `encoding` text, at the file line of the first bad byte (the text
    layer decodes blocks ahead of the rows, so the reader's own line count is no guide)."""
    decoder, line = codecs.getincrementaldecoder(encoding)(), 0
    try:
        with _open_raw(path) as raw:
            for piece in raw:
                line += 1
                decoder.decode(piece)
    except (UnicodeDecodeError, *UNREADABLE):  # found it (or a damaged compressed stream: the last line reached)
        pass
    return DataError(f"not valid {encoding} text ({exc.reason}); " + (advice or "pass the file's encoding with "
                     "--encoding (e.g. latin-1, cp1252, utf-16; --items-encoding for an item table of another one "
                     "than the log) or save the file as UTF-8"), str(path), max(line, 1))


def _read_parquet_chunks(path: Path, columns, chunk_rows, zone: str | None = None) -> Iterator[Chunk]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            "reading Parquet needs pyarrow: pip install 'edgerec[tools]'", str(path)
        ) from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for foreign files
        raise DataError(f"not a readable Parquet file ({exc})", str(path)) from None
    names = parquet.schema_arrow.names
    keep = _select(names, columns, path, 0)
    out_names = [names[i] for i in keep]
    for name in out_names:
        kind = parquet.schema_arrow.field(name).type
        if pa.types.is_nested(kind) and not _plain_lists(kind, pa):
            raise DataError(f"column '{name}' holds {kind} values; expected one plain value (text or number) or a "
                            "list of them per row: flatten it before importing", str(path))
    floats = {n: bits for n in out_names if (bits := _significand_bits(parquet.schema_arrow.field(n).type, pa))}
    units = {n: _time_unit(parquet.schema_arrow.field(n).type, pa) for n in out_names}
    units = {n: u for n, u in units.items() if u}
    row = 0
    for batch in parquet.iter_batches(batch_size=chunk_rows, columns=out_names):
        cols = {name: [_cell(v, name, path, row + i + 1) for i, v in
                       enumerate(_as_ticks(_zoned(batch.column(name), zone, name, path, row), pa) if name in units
                                 else batch.column(name).to_pylist())]
                for name in out_names}
        yield Chunk(cols, row + 1, str(path), floats, units=units or None)  # "line" of a Parquet file = 1-based row
        row += batch.num_rows
    if row == 0:
        raise DataError("file has no rows", str(path))


def _plain_lists(kind, pa) -> bool:
    """A list type (nested lists too) whose innermost values are plain: read as a ListCell (json_lines.py)."""
    while pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        kind = kind.value_type
    return not pa.types.is_nested(kind)


def _significand_bits(kind, pa) -> int | None:
    """Bits of significand of a floating-point Parquet column (a dictionary one by its values): whole numbers
    from 2**bits up are no longer all kept. None for other types."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return np.finfo(kind.to_pandas_dtype()).nmant + 1 if pa.types.is_floating(kind) else None


def _time_unit(kind, pa) -> str | None:
    """The unit a Parquet time column is read in: a timestamp's own (its integers count that unit since
    1970 in UTC, whatever the zone shown; naive ones are read in --time-zone, UTC without it), seconds for
    a date."""
    if pa.types.is_timestamp(kind):
        return kind.unit
    return "s" if pa.types.is_date(kind) else None


def _zoned(column, zone: str | None, name: str, path: Path, row: int):
    """A timestamp column stored without a zone, or a date column (a day has no zone: its midnight is local
    as a text date's is), read in `zone` (--time-zone) as text times are; a local time that a daylight-saving
    change makes ambiguous or skips is refused at its row, never guessed. A date is its day's first instant: where
    a change skips midnight (America/Santiago, 8 Sep 2024) the day starts after the gap, and where midnight comes
    twice, at the first."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dates = pa.types.is_date(column.type)

    def assume(values):
        return pc.assume_timezone(values, timezone=zone, ambiguous="earliest" if dates else "raise",
                                  nonexistent="latest" if dates else "raise")

    if zone is not None and dates:  # read as UTC midnights, 8 h off a CSV's dates
        column = column.cast(pa.timestamp("s"))
    if zone is None or not pa.types.is_timestamp(column.type) or column.type.tz is not None:
        return column
    named = zone
    zone = arrow_zone(zone)
    try:
        return assume(column)
    except (pa.ArrowInvalid, ValueError) as exc:
        bad = 0
        for bad in range(len(column)):  # the first such row (only when there is one: a slow path)
            try:
                assume(column.slice(bad, 1))
            except (pa.ArrowInvalid, ValueError):
                break
        raise DataError(f"column '{name}' holds a local time that does not exist or comes twice in {named} (a "
                        f"daylight-saving change: {str(exc).splitlines()[0]}); store such times with their offset "
                        "or in UTC, or drop the row", str(path), row + bad + 1) from None


def arrow_zone(zone: str) -> str:
    """A --time-zone as pyarrow names it: an IANA name as it is, a fixed offset as +HH:MM (pyarrow reads no
    'UTC+8', 'Z' or '+8', which zone_of accepts as text times do)."""
    tz = zone_of(zone)
    if isinstance(getattr(tz, "key", None), str):  # a ZoneInfo
        return tz.key
    minutes = round(tz.utcoffset(None).total_seconds() / 60)
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _as_ticks(column, pa) -> list:
    """A timestamp or date column as its integer ticks: as Python datetimes a nanosecond column would lose
    its last three digits (and the order of events less than a microsecond apart)."""
    if pa.types.is_date(column.type):
        column = column.cast(pa.timestamp("s"))
    return column.cast(pa.int64()).to_pylist()


def _cell(value, name: str, path: Path, row: int) -> str:
    """One Parquet value as the text a CSV would hold: integral floats as integers (pandas turns an
    id column with a gap into floats, and item 10 must stay '10', not '10.0'); bytes as UTF-8."""
    if value is None:
        return ""
    if isinstance(value, list):  # a list column (tags, genres): its items, nested lists flattened, nulls left out
        items: list[str] = []
        for inner in (_cell(v, name, path, row) for v in value if v is not None):
            items.extend(inner.items if isinstance(inner, ListCell) else (inner,))
        return ListCell(items)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"column '{name}' holds bytes that are not UTF-8 text", str(path), row) from None
    return str(value)


# ---------------------------------------------------------------- conversions


def _first_bad(values: list[str], convert) -> int:
    for i, v in enumerate(values):
        try:
            convert(v)
        except (ValueError, TypeError, OverflowError):
            return i
    return -1


def to_int(chunk: Chunk, name: str, dtype=np.int64) -> np.ndarray:
    values, limits = chunk.columns[name], np.iinfo(dtype)
    try:
        return np.asarray(values).astype(dtype)
    except (ValueError, OverflowError):
        pass
    try:  # "3.0" is an integer written as a float
        as_float = np.asarray(values, dtype=np.float64)
        if np.all(np.isfinite(as_float)) and np.all(as_float == np.round(as_float)):
            # a cast would wrap them; the bounds lie one past the ends as float64 rounds int64's (2**63 - 1 is 2**63)
            outside = np.flatnonzero((as_float <= limits.min - 1.0) | (as_float >= limits.max + 1.0))
            if not outside.size:
                return as_float.astype(dtype)
            bad = int(outside[0])
            raise DataError(f"column '{name}' holds {values[bad]!r}, outside {limits.min} to {limits.max} (what its "
                            f"{np.dtype(dtype).name} column holds)", chunk.path, chunk.line_of(bad))
    except ValueError:
        pass
    bad = max(_first_bad(values, _strict_int), 0)
    raise DataError(
        f"column '{name}' must hold integers, found {values[bad]!r}", chunk.path, chunk.line_of(bad)
    )


def _strict_int(v: str) -> int:
    f = float(v)
    if f != round(f):
        raise ValueError(v)
    return int(f)


_FIX = "write a number in every row (or leave the column out if it carries nothing)"


def to_float(chunk: Chunk, name: str, dtype=np.float32, fix: str = _FIX) -> np.ndarray:
    """`fix`: what the user can do about a cell that is not a number (a MovieLens file cannot lose a column)."""
    values = chunk.columns[name]
    try:
        out = np.asarray(values, dtype=np.float64)
    except ValueError:
        bad = max(_first_bad(values, float), 0)
        raise DataError(
            f"column '{name}' must hold numbers, found {values[bad]!r}; {fix}", chunk.path, chunk.line_of(bad)
        ) from None
    if not np.all(np.isfinite(out)):
        bad = int(np.flatnonzero(~np.isfinite(out))[0])
        raise DataError(
            f"column '{name}' holds a non-finite value {values[bad]!r}; {fix}", chunk.path, chunk.line_of(bad)
        )
    big = np.flatnonzero(np.abs(out) > np.finfo(dtype).max)  # an infinity once stored: the folder would not read back
    if big.size:
        bad = int(big[0])
        raise DataError(f"column '{name}' holds {values[bad]!r}, too large for its {np.dtype(dtype).name} column "
                        f"(at most {np.finfo(dtype).max:.3g}); scale the column down", chunk.path, chunk.line_of(bad))
    return out.astype(dtype)


def _text_seconds(values: list[str], unit: tuple[int, int], text: TimeText, why: dict | None = None) -> np.ndarray:
    """Seconds of each value: a number in its unit, else text read as `text` says (every value through
    its format when it has one); NaN where a value does not read. Each distinct value is read once: logs
    dated by day (Netflix Prize, reviews) repeat a few thousand dates over millions of rows."""
    seconds = np.empty(len(values), np.float64)
    read: dict[str, float] = {}
    for i, v in enumerate(values):
        if v in read:
            seconds[i] = read[v]
            continue
        try:
            seconds[i] = (float(v) * unit[1] / unit[0] if text.format is None and _looks_numeric(v)
                          else text.seconds(v))
        except LocalTimeError as exc:  # NaN, and why, for the error that names its line
            seconds[i] = np.nan
            if why is not None:
                why[v] = str(exc)
        except ValueError as exc:
            if text.format is not None and ("directive" in str(exc) or "stray %" in str(exc)):
                raise ConfigError(f"--time-format {text.format!r} cannot be read ({exc}); write it as Python's "
                                  "strptime does, e.g. '%Y-%m-%d %H:%M:%S'") from None
            seconds[i] = np.nan
        except OverflowError:
            seconds[i] = np.nan
        read[v] = seconds[i]
    return seconds


def to_seconds(chunk: Chunk, name: str, unit: str = "s", low: float = -MAX_TS, *,
               lenient: bool = False, text: TimeText = ISO_UTC) -> np.ndarray:
    """Epoch seconds as float64 (fractions kept, so sub-second order survives) from numbers in `unit`
    or text times (ISO-8601, or as `text` says: time_text.py); a value outside [low, MAX_TS] is an
    error naming its line, never a wrapped integer (with `lenient`, NaN: the caller drops the row)."""
    unit = (chunk.units or {}).get(name, unit)
    values, (ticks, step) = chunk.columns[name], time_unit(unit)
    why: dict[str, str] = {}  # values whose local time a daylight-saving change leaves unknown
    if text.format is not None and name not in (chunk.units or {}):  # digits too go through the format
        seconds = _text_seconds(values, (ticks, step), text, why)
    else:
        try:
            seconds = np.asarray(values, dtype=np.float64) * step / ticks
        except ValueError:
            seconds = _text_seconds(values, (ticks, step), text, why)
    bad = np.flatnonzero(~(np.isfinite(seconds) & (seconds >= low) & (seconds <= MAX_TS)))
    if bad.size and lenient:
        seconds[bad] = np.nan
    elif bad.size:
        i = int(bad[0])
        shown, where = values[i], (chunk.path, chunk.line_of(i))
        if name in (chunk.units or {}) and abs(seconds[i]) < 2.5e11:  # a Parquet timestamp: shown as a date
            shown = (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=float(seconds[i]))).isoformat()
        gap = str(shown).strip()
        if shown in why:
            raise DataError(f"column '{name}' holds {shown!r}, {why[shown]}", *where)
        if not np.isfinite(seconds[i]) and gap.lower() in ("", "nan"):  # a gap in the log, not a strange value
            # NaN is how a float column (KuaiRec's timestamp, written by pandas or Polars) marks a missing time
            raise DataError(f"column '{name}' is {'empty' if not gap else 'NaN'}: every event needs its time; fill "
                            "it in or drop the row (an import with --skip-bad-rows leaves such rows out and counts "
                            "them)", *where)
        if not np.isfinite(seconds[i]) and text.format is not None:
            raise DataError(f"column '{name}' holds {_unread_time(shown)}, which does not read as --time-format "
                            f"{text.format!r}: correct the format (Python's strptime directives) or that line",
                            *where)
        if not np.isfinite(seconds[i]):
            written = ("; for times written another way pass --time-format, as Python's strptime reads them "
                       "(e.g. '%m/%d/%Y %I:%M:%S %p')") if low == 0 else ""  # a log's times (item tables: no option)
            raise DataError(f"column '{name}' must hold a timestamp (epoch seconds or ISO-8601), found "
                            f"{_unread_time(shown)}{written}", *where)
        if seconds[i] > MAX_TS and _number_date(shown):
            raise DataError(f"column '{name}' holds {shown!r}, a date and time written as a number "
                            "(yyyymmddHHMM[SS]), not epoch seconds: write the times as ISO-8601 "
                            "(2020-01-31T12:30:00) or epoch seconds", *where)
        if seconds[i] > MAX_TS and name in (chunk.units or {}):  # a typed time column: no unit to pass
            raise DataError(f"column '{name}' holds {shown!r}, after the year 5000: correct or drop such times (the "
                            "column is a timestamp: --time-unit does not apply to it)", *where)
        if seconds[i] > MAX_TS:
            finer = ("are the times in milliseconds (or micro-, nanoseconds)? For an interaction log pass "
                     "--time-unit ms (us, ns); convert other columns to seconds") if (ticks, step) == (1, 1) else \
                "is that the unit of these numbers? Check --time-unit (a date written as a number is no count)"
            raise DataError(f"column '{name}' holds {shown!r}, after the year 5000 as epoch {unit_name(unit)}: "
                            + finer, *where)
        raise DataError(f"column '{name}' holds {shown!r}, a time before " + (
            "1970; events need epoch times from 0 (is it a placeholder for a missing time? drop those rows)"
            if low == 0 else "the year -1200"), *where)
    if name in chunk.floats:  # a narrow float column rounded its times when it was stored (NaN rows: skipped)
        rounded = np.flatnonzero(np.abs(seconds * ticks / step) >= 2.0 ** chunk.floats[name])
        if rounded.size:
            i = int(rounded[0])
            raise DataError(f"column '{name}' is stored as {chunk.float_width(name)}, which keeps whole numbers "
                            f"only below {2 ** chunk.floats[name]:,}, and holds {values[i]!r}: its times were "
                            "rounded when stored (events reordered or tied); store times as int64 or a timestamp "
                            "column", chunk.path, chunk.line_of(i))
    return seconds


TIME_LIKE = re.compile(r"[0-9\s/,.:+\-TZ]*")  # what a time is written with (2020-01-31T12:30:00Z, 31/01/2020)


def _unread_time(cell) -> str:
    """A cell that does not read as a time, as an error shows it: quoted when it looks like a time (a typo to
    find), else only described: with columns mapped the wrong way round it is a user id, an e-mail address."""
    text = str(cell)
    if TIME_LIKE.fullmatch(text) or text.strip().lower().lstrip("+-") in ("inf", "infinity"):  # a float's infinity
        return repr(text)
    holding = "'@'" if "@" in text else "letters" if any(ch.isalpha() for ch in text) else "other characters"
    return f"text of {len(text):,} characters holding {holding}"


def _number_date(text: str) -> bool:
    """A date and time written as a number, 202001311230 or 20200131123000 (logs exported from databases)."""
    digits = text.strip()
    layout = {12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}.get(len(digits))
    try:
        return bool(layout) and digits.isascii() and digits.isdigit() and bool(datetime.strptime(digits, layout))
    except ValueError:
        return False


def to_timestamp(chunk: Chunk, name: str, unit: str = "s", low: float = -MAX_TS, text: TimeText = ISO_UTC) -> np.ndarray:
    """Whole epoch seconds (int64, rounded down) from numbers in `unit` or ISO-8601 strings (in `text`'s zone
    when they name none)."""
    return split_seconds(chunk, name, unit, to_seconds(chunk, name, unit, low, text=text))[0]


NS = 1_000_000_000


def split_seconds(chunk: Chunk, name: str, unit: str, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The times `to_seconds` read as whole epoch seconds (rounded down) and the nanoseconds within that
    second, both int64 and exact for integer times: float64 seconds keep about 0.2 us near today, so a
    nanosecond log read through them ties events 100 ns apart (the file's order then decides, which may
    be the reverse of the true one) and rounds 1 ns before a second up into it."""
    unit = (chunk.units or {}).get(name, unit)
    per_second, step = time_unit(unit)
    if per_second > 1 or step > 1:
        try:
            ticks = np.asarray(chunk.columns[name], dtype=np.int64)
        except OverflowError:  # a whole number past int64: through float64 its order within the second is lost
            big = next((i for i, v in enumerate(chunk.columns[name])
                        if isinstance(v, str) and v.strip().lstrip("+-").isdigit() and abs(int(v)) >= 2 ** 63), 0)
            raise DataError(f"column '{name}' holds {chunk.columns[name][big]!r}, past the largest count of "
                            f"{unit_name(unit)} a 64-bit integer holds: check the unit, or correct that line",
                            chunk.path, chunk.line_of(big)) from None
        except ValueError:  # fractions or ISO-8601 strings: the float seconds
            ticks = None
        if ticks is not None and step > 1:  # whole steps (to_seconds checked their range): exact seconds
            return ticks * step, np.zeros(len(ticks), np.int64)
        if ticks is not None:
            return ticks // per_second, (ticks % per_second) * (NS // per_second)
    whole = np.floor(seconds)
    within = np.clip(np.round((seconds - whole) * NS), 0, NS - 1).astype(np.int64)
    for i, text in enumerate(chunk.columns[name]):  # ISO-8601 fractions past the microsecond datetime keeps
        if len(text) > 26 and (match := _FRACTION.search(text)):
            within[i] = int(match.group(1)[:9].ljust(9, "0"))
    return whole.astype(np.int64), within


_FRACTION = re.compile(r"\d:\d\d[.,](\d{7,})")  # seconds with more than six fraction digits (Spark, pandas)


def _looks_numeric(v: str) -> bool:
    try:
        f = float(v)
    except ValueError:
        return False
    return np.isfinite(f)


def read_vectors(source, what: str, rows: int | None = None, dim: int | None = None) -> np.ndarray:
    """A (items, width) float32 matrix of finite numbers from a .npy file (or an array), one row per item
    of items.csv in its order; `rows` and `dim`, when given, are the shape it must have."""
    where = None
    array = source
    if isinstance(source, (str, os.PathLike)):
        where = str(_existing_file(source))
        try:
            array = np.load(where, allow_pickle=False)
        except (OSError, ValueError, EOFError):  # another file type, an object array, a cut file
            raise DataError(f"{what}: not a readable .npy array of numbers; save one with numpy.save",
                            where) from None
        if not isinstance(array, np.ndarray):  # an .npz archive
            array.close()
            raise DataError(f"{what}: an .npz archive; save the one array with numpy.save (.npy)", where)
    array = np.asarray(array)
    expected = f"({rows if rows is not None else 'items'}, {dim if dim is not None else 'width'})"
    if (array.ndim != 2 or 0 in array.shape or not np.issubdtype(array.dtype, np.number)
            or (rows is not None and array.shape[0] != rows) or (dim is not None and array.shape[1] != dim)):
        raise DataError(f"{what}: shape {array.shape}, dtype {array.dtype}; expected numbers of shape "
                        f"{expected}: one row per item of items.csv, in its order", where)
    with np.errstate(over="ignore"):
        out = array.astype(np.float32)
    finite = np.isfinite(out).all(axis=1)  # after the cast: float64 values past float32's range become inf
    if not finite.all():
        raise DataError(f"{what}: NaN or infinite values (first in row {int(np.argmin(finite))}), values past "
                        "float32's range (3.4e38) included; compute those items' vectors again", where)
    _refuse_outliers(out, what, where)
    return out


OUTLIER_RATIO = 1000.0  # how far past its column's usual size a value may lie (embeddings: within ~10x)


def _refuse_outliers(out: np.ndarray, what: str, where) -> None:
    """DataError for a value far outside its column's scale: more than OUTLIER_RATIO times the column's
    median nonzero |value| (at least 1, so small columns keep values of a normal size): one such value
    makes training diverge, and the loss would blame the learning rate."""
    big = np.maximum(out.max(axis=0), -out.min(axis=0))  # no |out| copy of a large matrix
    for column in np.flatnonzero(big > OUTLIER_RATIO):  # only these can hold an outlier: usually none
        values = np.abs(out[:, column])
        nonzero = values[values > 0]  # sparse columns (one-hot, counts): their zeros are no scale
        usual = float(np.median(nonzero))
        if big[column] > OUTLIER_RATIO * max(usual, 1.0):
            row = int(np.argmax(values))
            raise DataError(f"{what}: row {row}, column {column} holds {out[row, column]:.3g}, where that column's "
                            f"values are usually about {usual:.3g} in size; a value this far out makes training "
                            "diverge: compute that item's vector again, or rescale the column (e.g. standardize "
                            "it, or log1p for counts)", where)


# --------------------------------------------------------------------- writers


def publish(tmp: Temporary) -> None:
    """Flush a written temporary and rename it into place (an OSError when a folder stands there)."""
    if not tmp.publish():
        raise IsADirectoryError(errno.EISDIR, "a folder has the file's name")


def write_csv(path: str | os.PathLike, columns: dict[str, Sequence]) -> None:
    """Write columns (equal-length sequences) as one CSV file, atomically (a private temporary renamed)."""
    with Temporary(Path(path), ".tmp") as tmp:
        with open(tmp.path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(list(columns))
            writer.writerows(zip(*columns.values()))
        publish(tmp)


class CsvAppender:
    """Write a CSV in several chunks (streaming generation of large data sets), renamed into place whole."""

    def __init__(self, path: str | os.PathLike, names: Sequence[str]):
        self.path = Path(path)
        self._tmp = Temporary(self.path, ".tmp")
        self._handle = open(self._tmp.path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(list(names))
        self.rows = 0

    def append(self, columns: Sequence[Sequence]) -> None:
        self._writer.writerows(zip(*columns))
        self.rows += len(columns[0]) if columns else 0

    def close(self) -> None:
        self._handle.close()
        publish(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()
        else:
            self._handle.close()
            self._tmp.discard()


def write_parquet(path: str | os.PathLike, columns: dict[str, Sequence]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("writing Parquet needs pyarrow: pip install 'edgerec[tools]'", str(path)) from None
    table = pa.table({k: (np.asarray(v) if isinstance(v, np.ndarray) else list(v)) for k, v in columns.items()})
    with Temporary(Path(path), ".tmp") as tmp:
        pq.write_table(table, tmp.path)
        publish(tmp)


def read_header(path: str | os.PathLike, *, delimiter: str = ",", encoding: str = "utf-8") -> list[str]:
    """Column names of a CSV/Parquet/JSON Lines file, or of all a folder's part files in first-seen order (to
    decide which optional columns exist: one only in a later part was left unread, silently; now a part
    without it is named)."""
    if Path(path).is_dir():
        names = [read_header(part, delimiter=delimiter, encoding=encoding) for part in data_files(path)]
        return list(dict.fromkeys(name for part in names for name in part))
    path = _existing_file(path)
    if is_json_lines(path):
        return json_header(path, lambda: _open_text(path, encoding))
    if is_parquet(path):
        try:
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        except ImportError:
            raise DataError("reading Parquet needs pyarrow: pip install 'edgerec[tools]'", str(path)) from None
        except Exception as exc:
            raise DataError(f"not a readable Parquet file ({exc})", str(path)) from None
    with _open_text(path, encoding) as handle:
        try:
            first = next(_split_lines(handle, delimiter))
        except StopIteration:
            raise DataError("file is empty; expected a header and at least one row", str(path)) from None
        except UnicodeDecodeError as exc:
            raise _not_text(path, encoding, exc) from None
        except (csv.Error, *UNREADABLE) as exc:
            raise DataError(f"the first line cannot be read ({exc})", str(path), 1) from None
    return [c.strip() for c in first]


FIRST_NUMBER_DATE, LAST_NUMBER_DATE = 19_000_101, 21_001_231  # dates written yyyymmdd that logs hold


def numbers_as_dates(times: list[np.ndarray]) -> bool:
    """Every time (epoch seconds) is a date written as a number, yyyymmdd (20200131): a log of dates, not of
    seconds in August 1970 (where 31 Jan and 1 Feb are 70 'seconds' apart)."""
    for t in times:
        month, day = t // 100 % 100, t % 100
        if not ((t >= FIRST_NUMBER_DATE) & (t <= LAST_NUMBER_DATE) & (month >= 1) & (month <= 12)
                & (day >= 1) & (day <= 31)).all():
            return False
    return True


def check_range(chunk: Chunk, name: str, values: np.ndarray, bounds: tuple[float, float], why: str) -> None:
    low, high = bounds
    outside = np.flatnonzero((values < low) | (values > high))
    if outside.size:
        i = int(outside[0])
        allowed = f"below {low:,g}" if high == np.inf else f"outside {number_text(low)} to {number_text(high)}"
        raise DataError(f"column '{name}' holds {chunk.columns[name][i]!r}, {allowed} ({why})",
                        chunk.path, chunk.line_of(i))


def number_text(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"
