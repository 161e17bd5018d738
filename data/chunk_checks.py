"""The options and checks both readers of user files share (logs in loaders.py, item tables in
item_import.py): how a file is read, item keys made of several columns, ids, and columns of the wrong type
or case."""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from edgerec.data.item_text import LINE_BREAKS, control_char, lone_surrogate
from edgerec.data.json_lines import ListCell
from edgerec.data.tables import DEFAULT_CHUNK_ROWS, UNIT_NAMES, Chunk, time_unit
from edgerec.data.time_text import TimeText
from edgerec.errors import ConfigError, DataError
from edgerec.runtime.vocab import MAX_ID

DURATION_UNITS = {"s": 1.0, "ms": 0.001, "min": 60.0}  # seconds in one unit of an item table's durations


@dataclass
class ReadOptions:
    delimiter: str = ","
    header: tuple[str, ...] | None = None  # for files without a header line
    encoding: str = "utf-8"
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    sample_users: float | None = None  # keep this fraction of users (0, 1]
    seed: int = 0
    time_unit: str = "s"  # of numeric times: s, ms, us, ns or steps (10min; tables.time_unit); text carries its own
    quoted: bool = True  # False for formats that never quote a field (MovieLens 100K)
    skip_bad_rows: bool = False  # leave out (and count) rows with the wrong field count, no time or no id
    tag_separator: str = "|"  # between the tags of an item table's cell ("|" is also the data folder's own)
    time_format: str | None = None  # strptime format of the log's text times (None: ISO-8601)
    time_zone: str | None = None  # zone of the log's times written without one (None: UTC)
    duration_unit: str = "s"  # of an item table's durations: s, ms or min (DURATION_UNITS)
    header_from: str = "--columns"  # what gave `header`: the option, or a release's file ("ml-100k's u.data")
    missing_ids: str = "keep"  # an id written as a missing-value marker (NULL, \\N): keep (warned) or empty

    def __post_init__(self):
        if not isinstance(self.delimiter, str) or not self.delimiter or set(self.delimiter) & set('"\r\n'):
            raise ConfigError(f"the delimiter must be one or more characters other than quotes and line breaks "
                              f"(got {self.delimiter!r}); for tab-separated files pass a tab")
        if isinstance(self.chunk_rows, bool) or not isinstance(self.chunk_rows, int) or self.chunk_rows < 1:
            raise ConfigError(f"chunk_rows must be a whole number of rows >= 1 (got {self.chunk_rows!r})")
        try:
            codecs.lookup(self.encoding)
        except (LookupError, TypeError):
            raise ConfigError(f"unknown text encoding {self.encoding!r}; use a Python codec name such as utf-8, "
                              "latin-1, cp1252 or utf-16") from None
        if not isinstance(self.tag_separator, str) or not self.tag_separator \
                or set(self.tag_separator) & set('"\r\n'):
            raise ConfigError(f"the tag separator must be one or more characters other than quotes and "
                              f"line breaks (got {self.tag_separator!r}); for comma-separated tags pass ','")
        if self.header is not None:
            check_column_names(self.header)
        self.time_text  # noqa: B018  (checks both options now, before any file is read)
        time_unit(self.time_unit)  # refuses an unknown unit
        if self.duration_unit not in DURATION_UNITS:
            raise ConfigError(f"unknown duration unit {self.duration_unit!r}; use one of {', '.join(DURATION_UNITS)}")
        if self.missing_ids not in MISSING_IDS:
            raise ConfigError(f"--missing-ids is one of {', '.join(MISSING_IDS)} (got {self.missing_ids!r})")
        if self.sample_users is not None and not 0 < self.sample_users <= 1:
            raise ConfigError(f"the user sample must be a fraction in (0, 1] (got {self.sample_users})")

    @property
    def time_text(self) -> TimeText:
        """How the log's text times read (time_text.py)."""
        return TimeText(self.time_format, self.time_zone)


MISSING_IDS = ("keep", "empty")  # what --missing-ids makes of an id written as a missing-value marker
# how databases and dataframes write a missing value into text: MySQL and PostgreSQL's COPY (\N), SQL
# exports (NULL), JSON and pandas (null, None, NaN, nan, <NA>), R (NA)
MISSING_MARKERS = frozenset({"\\N", "NULL", "null", "Null", "None", "NaN", "nan", "NA", "<NA>", "N/A"})


class MissingMarkers:
    """Ids written as a missing-value marker (MISSING_MARKERS): read as ids by default, every such row one
    user (or item) of that name, so they are counted per column for a warning (`warnings`: one per column,
    naming the markers, never other values); with --missing-ids empty they are no id, so the row is refused
    at its line (or left out by --skip-bad-rows, when `skipping`)."""

    def __init__(self, mode: str = "keep"):
        self.empty = mode == "empty"
        self.rows: dict[str, dict[str, int]] = {}  # column -> marker -> rows

    def see(self, chunk: Chunk, name: str, skipping: bool = False, need: str = "an id") -> None:
        values = chunk.columns[name]
        if MISSING_MARKERS.isdisjoint(values):  # the usual chunk: one pass in C
            return
        rows = [i for i, v in enumerate(values) if v in MISSING_MARKERS]
        if not self.empty:
            counts = self.rows.setdefault(name, {})
            for i in rows:
                counts[values[i]] = counts.get(values[i], 0) + 1
        elif not skipping:
            raise DataError(f"column '{name}' holds '{values[rows[0]]}', a missing-value marker, where {need} belongs "
                            "(--missing-ids empty reads it as no id): fill it in, or pass --skip-bad-rows to leave such "
                            "rows out", chunk.path, chunk.line_of(rows[0]))
        else:  # an empty cell, which --skip-bad-rows leaves out and counts as a row without an id
            chunk.columns[name] = values = list(values)
            for i in rows:
                values[i] = ""

    def warnings(self, what: str = "the log") -> list[str]:
        out = []
        for name, counts in self.rows.items():
            rows, shown = sum(counts.values()), ", ".join(f"'{m}'" for m in sorted(counts, key=lambda m: (-counts[m], m)))
            out.append(f"{rows:,} row{'s' * (rows != 1)} of {what} {'have' if rows != 1 else 'has'} {shown} in "
                       f"column '{name}', which is how databases and dataframes write a missing value: each such "
                       "marker was read as an id, so the rows of one marker are one user or item of that name. If they mean "
                       "no id, import again with --missing-ids empty (such rows are then refused at their line, or "
                       "left out with --skip-bad-rows)")
        return out


KEY_JOIN = " - "  # between the parts of an item key made of several columns (artist+track: "Artist - Track")


def key_parts(name: str, present: set[str]) -> list[str]:
    """The columns of an item key: `artist+track` names two (joined with KEY_JOIN) unless the file has a
    column of that very name."""
    if "+" not in name or name in present:
        return [name]
    parts = [p.strip() for p in name.split("+")]
    if not all(parts) or len(set(parts)) < len(parts):
        raise ConfigError(f"an item key of several columns names each once, joined by '+' (e.g. artist+track); "
                          f"got {name!r}")
    return parts


def refuse_miscased(present: set[str], wanted: dict[str, str], path) -> None:
    """A column read when present (`wanted`: role -> name) that the file names in another case ('Event'):
    ignored, it left every row at the default (every event a play, no titles), silently."""
    for role, name in wanted.items():
        other = next((p for p in sorted(present) if p != name and p.casefold() == name.casefold()), None)
        if other is not None and name not in present:
            flag = f", or pass --{role}-col {other}" if role in ("event", "value") else ""
            raise DataError(f"column '{other}' is edgerec's '{name}' in another case: rename it{flag}", str(path))


def joined_keys(chunk: Chunk, parts: list[str], seen: dict[str, tuple[str, ...]]) -> list[str]:
    """Item keys of several columns, `Artist - Track`. A row without one of the parts has no key (""; refused,
    or left out with --skip-bad-rows, like an empty id: every untitled track of an artist would otherwise be one
    item), and different values that join to the same key ('A - B' + 'C', 'A' + 'B - C') stop the import
    instead of making one item of two."""
    out = []
    for row, key in enumerate(zip(*(chunk.columns.pop(p) for p in parts))):
        if not all(part.strip() for part in key):  # a blank name names no track either
            out.append("")
            continue
        joined = KEY_JOIN.join(key)
        first = seen.setdefault(joined, key)
        if first != key:
            raise DataError(f"columns {' + '.join(parts)} make the same item key {joined!r} from other values "
                            f"({' | '.join(map(repr, first))} before, {' | '.join(map(repr, key))} here): two items "
                            "would merge into one; rename one of them in the file, or key the items by an id column",
                            chunk.path, chunk.line_of(row))
        out.append(joined)
    return out


def check_column_names(names, option: str = "--columns", example: str = "user,time,item") -> None:
    """The names given to the columns of a file without a header line: one non-blank name for each."""
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        at = next((i for i, n in enumerate(names) if not (isinstance(n, str) and n.strip())), 0)
        raise ConfigError(f"{option} names no column in place {at + 1} ({', '.join(map(repr, names))}); "
                          f"name every column of the file in order, comma-separated (e.g. {example})")
    twice = sorted({n.strip() for n in names if [m.strip() for m in names].count(n.strip()) > 1})
    if twice:
        raise ConfigError(f"{option} names {', '.join(map(repr, twice))} twice; each column of the file needs its "
                          "own name (a column edgerec does not read may take any name)")


def check_ids(chunk: Chunk, name: str, hint: str = "") -> None:
    """Ids are non-empty (not blank: every row of a blank user would be one user), at most MAX_ID characters
    (what the device accepts), free of NUL, line breaks and control characters (a device's reasons and the CLI
    show an item without a title by its id, on one line), and exact: not integers too large for the
    floating-point column that holds them. Errors name the line and column, never the id (a user id may be
    an e-mail address)."""
    values = chunk.columns[name]
    refuse_time_typed(chunk, name, "ids")
    listed = next((i for i, v in enumerate(values) if isinstance(v, ListCell)), None)
    if listed is not None:
        raise DataError(f"column '{name}' holds a list where one id belongs; check which field the options name",
                        chunk.path, chunk.line_of(listed))
    bad = chunk.first_inexact(name)  # pandas stores an integer id column with a gap as float64 (or float32)
    if bad is not None:
        raise DataError(f"column '{name}' is stored as {chunk.float_width(name)} and holds NaN, an infinity or an "
                        f"id from {2 ** chunk.floats[name]:,} up, too large for it to keep every digit (different "
                        "ids may have merged); store the ids as integers or text (pandas: drop the rows without "
                        "one, then .astype('int64'))", chunk.path, chunk.line_of(bad))
    if "" in values or any(map(str.isspace, values)):
        bad = next(i for i, v in enumerate(values) if not v or v.isspace())
        raise DataError(f"column '{name}' is empty{' (only spaces)' * bool(values[bad])}{hint}", chunk.path,
                        chunk.line_of(bad))
    if values and max(map(len, values)) > MAX_ID:
        bad = next(i for i, v in enumerate(values) if len(v) > MAX_ID)
        raise DataError(f"column '{name}' holds an id of {len(values[bad]):,} characters; the device takes at most "
                        f"{MAX_ID} (an unclosed quote can swallow lines): shorten or hash such ids",
                        chunk.path, chunk.line_of(bad))
    if "\ufeff" in "".join(values):  # a second file's byte order mark: "\ufeffu1" prints as u1, another user
        bad = next(i for i, v in enumerate(values) if "\ufeff" in v)
        raise DataError(f"column '{name}' holds a byte order mark (U+FEFF, invisible) in an id: were files joined "
                        "(cat) with their marks? Remove it, or save the file again as UTF-8", chunk.path,
                        chunk.line_of(bad))
    if "\x00" in "".join(values):
        bad = next(i for i, v in enumerate(values) if "\x00" in v)
        raise DataError(f"column '{name}' holds a NUL character; ids must be plain text", chunk.path,
                        chunk.line_of(bad))
    half = next((i for i, v in enumerate(values) if lone_surrogate(v) is not None), None)
    if half is not None:
        raise DataError(f"column '{name}' holds half of a character (U+{ord(lone_surrogate(values[half])):04X}, a "
                        "JSON \\u escape without its pair), which no text file can store; ids must be plain text",
                        chunk.path, chunk.line_of(half))
    # a fast test first: most chunks hold printable text only
    bad = None if "".join(values).isprintable() else next(
        (i for i, v in enumerate(values) if control_char(v) is not None), None)
    if bad is not None:
        ch = control_char(values[bad])
        kind, fix = (("a line break", "replace it in the file") if ch in LINE_BREAKS else
                     ("the control character", "remove it from the file (a byte of another text encoding? a CSV "
                      "import takes --encoding)"))
        raise DataError(f"column '{name}' holds {kind} (U+{ord(ch):04X}) in an id, which a screen shows as nothing or "
                        "as a broken line (in a device's reasons, the CLI's lists): ids must be plain text on one "
                        f"line; {fix}", chunk.path, chunk.line_of(bad))


def refuse_time_typed(chunk: Chunk, name: str, what: str) -> None:
    """A Parquet date or timestamp column where text is wanted (ids, titles) was read as its ticks since 1970
    (2020-01-31 became '1580428800'), silently; usually the option names the time column by mistake."""
    if name in (chunk.units or {}):
        raise DataError(f"column '{name}' is a Parquet date or timestamp column, but holds {what} here (read as "
                        f"text its dates would become counts of {UNIT_NAMES[chunk.units[name]]} since 1970): check "
                        "which column the options name; if it does hold dates as names, store it as text "
                        "(pandas: .astype(str))", chunk.path, chunk.first_line)


def option_pairs(text: str, option: str, shape: str, example: str) -> dict[str, str]:
    """'a=x, b=y' -> {"a": "x", "b": "y"}: an option's NAME=VALUE pairs joined by commas, each name once."""
    pairs = [part for part in text.split(",") if part.strip()]
    if not pairs or any(part.count("=") != 1 for part in pairs):
        raise ConfigError(f"{option} {text!r}: write {shape} pairs joined by commas, e.g. {example!r}")
    out: dict[str, str] = {}
    for part in pairs:
        name, value = (s.strip() for s in part.split("="))
        if out.setdefault(name, value) != value:
            raise ConfigError(f"{option} names {name!r} twice ({out[name]!r} and {value!r}); keep one")
    return out
