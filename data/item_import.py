"""Reading a user's item table (`data import --items`): which of its columns hold which item field, and
the checks and warnings of what it holds.

Real item files name their columns their own way (MovieLens's `movieId,title,genres`, a music
catalog's `track_id,name,artist,lang`). `ItemColumns` says which column holds which of edgerec's item
fields; the id column defaults to the log's item column when the table has no `item_id`, and a column
that nothing reads is named in a warning, never dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgerec.data.chunk_checks import (
    DURATION_UNITS,
    MissingMarkers,
    ReadOptions,
    check_ids,
    joined_keys,
    key_parts,
    option_pairs,
    refuse_time_typed,
)
from edgerec.data.film_items import year_ts
from edgerec.data.item_text import EPISODES, bidi_warning, check_item_text
from edgerec.data.json_lines import ListCell, is_json_lines
from edgerec.data.parts import data_files, is_parquet
from edgerec.data.schema import ITEM_COLUMNS, ITEM_TEXT_COLUMNS, Catalog
from edgerec.data.tables import (
    LAST_NUMBER_DATE,
    Chunk,
    check_range,
    looks_like_data,
    numbers_as_dates,
    read_chunks,
    read_header,
    to_float,
    to_int,
    to_timestamp,
)
from edgerec.data.time_text import ISO_UTC, TimeText
from edgerec.errors import ConfigError, DataError
from edgerec.runtime.vocab import MODALITIES

NUMERIC_FIELDS = ("duration", "release_ts", "episode")
PLAIN_NUMBER = re.compile(r"\s*[+-]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?\s*")  # epoch seconds, not a date
MIN_YEAR, MAX_YEAR = 1000, 2200  # a release cell written as a whole number in here is a year
BARE_YEAR = re.compile(r"\s*([0-9]{4})(?:\.0*)?\s*")  # 1995 (1995.0: a float column), not 1995-06-30
# A modality's median item longer than this (seconds) reads as durations in a finer unit than the one
# read in: short videos and tracks last minutes, films and episodes hours, podcast episodes and live
# recordings up to a day; an item without a modality gets the films' bound.
LONG_MEDIAN_S = {"short_video": 3600, "music_track": 3600, "film": 6 * 3600, "series_episode": 6 * 3600,
                 "podcast_episode": 24 * 3600, "": 6 * 3600}
UNREAD_SHOWN = 8  # unread columns a warning names


@dataclass
class ItemColumns:
    """Which column of the item table holds which item field: `names` maps a field (item_id, title, genre,
    tags, ...) to the file's column; a field not named is read from its own column when the file has it.
    `log_item` is the log's item column (`--item-col`): the id column when the table has no item_id."""

    names: dict[str, str] = field(default_factory=dict)
    log_item: str | None = None

    def __post_init__(self):
        if not isinstance(self.names, dict):
            raise ConfigError(f"item columns are a mapping of field to column, not {type(self.names).__name__}")
        seen: dict[str, str] = {}
        for name, column in self.names.items():
            if name not in ITEM_COLUMNS:
                raise ConfigError(f"--item-columns names {name!r}, which is no item field; the fields are "
                                  f"{', '.join(ITEM_COLUMNS)}")
            if not isinstance(column, str) or not column.strip():
                raise ConfigError(f"--item-columns gives {name!r} an empty column name; write FIELD=COLUMN")
            other = seen.setdefault(column, name)
            if other != name:
                raise ConfigError(f"--item-columns reads column {column!r} as both {other!r} and {name!r}; "
                                  "each field needs its own column")

    def resolve(self, present: list[str], path) -> dict[str, str]:
        """{field: column} of the fields this file holds; `item_id` always (refused when absent)."""
        missing = [c for c in self.names.values() if c not in present and "+" not in c]
        if missing:
            raise DataError(f"--item-columns names column(s) {', '.join(map(repr, missing))}, which the item table "
                            f"lacks; it has {', '.join(present)}", str(path), 1)
        out = {f: c for f, c in self.names.items()}
        mapped = set(out.values())
        log = self.log_item
        if "item_id" not in out and "item_id" in present and log and log != "item_id" and not (
                {log, *(p.strip() for p in log.split("+"))} & mapped) and (
                log in present or ("+" in log and all(p.strip() in present for p in log.split("+")))):
            # two candidate id columns: joined on item_id, a table numbering its rows apart from the log's
            # ids (item_id 1 is movieId 3) gave every event another item's title and tags, without a word
            raise DataError(f"the item table has both an item_id column and the log's --item-col {log!r}: which one "
                            f"holds the ids the log's {log!r} column names? Say it with --item-columns "
                            f"item_id={log} (or --item-columns item_id=item_id when the table's item_id holds "
                            "them)", str(path), 1)
        for name in ITEM_COLUMNS:
            if name not in out and name in present and name not in mapped:
                out[name] = name
        if "item_id" not in out:
            if log and (log in present or ("+" in log and all(p.strip() in present for p in log.split("+")))):
                out["item_id"] = log
            elif looks_like_data(present, None):  # its first row: not shown as if it were column names
                raise DataError("the item table's first line holds data, not column names: name its columns in file "
                                "order with --items-header (e.g. item_id,title,tags; fields edgerec has no use for "
                                "may take any name), or add a header line", str(path), 1)
            else:
                also = f" or the log's --item-col {log!r}" if log and log != "item_id" else ""
                raise DataError(f"missing column(s) item_id{also}; the file has {', '.join(present)}. Name the item "
                                "table's id column with --item-columns item_id=COLUMN (or rename it; an item table's "
                                "id column must be item_id or the log's item column)", str(path), 1)
        return out


def parse_item_columns(text: str) -> dict[str, str]:
    """'item_id=movieId, tags=genres' -> {"item_id": "movieId", "tags": "genres"}."""
    return option_pairs(text, "--item-columns", "FIELD=COLUMN", "item_id=movieId,tags=genres")


def read_catalog(path: str | Path, options: ReadOptions | None = None) -> Catalog:
    """Read an item table in the neutral layout (a data folder's items.csv)."""
    return read_item_table(path, options)[0]


def read_item_table(path: str | Path, options: ReadOptions | None = None,
                    columns: ItemColumns | None = None) -> tuple[Catalog, list[str]]:
    """Read a user's item table (only an id column is required), with warnings of what it left unread."""
    options = options or ReadOptions()
    columns = columns or ItemColumns()
    if options.header and any(is_parquet(f) or is_json_lines(f) for f in data_files(path)):
        raise ConfigError("--items-header names the columns of a text table without a header line; a Parquet or "
                          "JSON Lines table names its own (map them with --item-columns)")
    present = list(options.header) if options.header else read_header(path, delimiter=options.delimiter,
                                                                      encoding=options.encoding)
    names = columns.resolve(present, path)
    _refuse_miscased(present, names, path)
    id_parts = key_parts(names["item_id"], set(present))
    wanted = [*id_parts, *(c for f, c in names.items() if f != "item_id")]
    ids: list[str] = []
    text: dict[str, list[str]] = {f: [] for f in ITEM_TEXT_COLUMNS if f in names}
    tags: list[tuple[str, ...]] = []
    numbers: dict[str, list[np.ndarray]] = {f: [] for f in (*NUMERIC_FIELDS, "release_year")}
    seen_keys: dict[str, tuple[str, ...]] = {}
    release_seen: dict[str, tuple] = {}  # the first release cell written as a year, and as another number
    # release times written without a zone read in the log's --time-zone (its --time-format is the log's own)
    zone = TimeText(zone=options.time_zone)
    markers = MissingMarkers(options.missing_ids)
    for chunk in read_chunks(path, wanted, delimiter=options.delimiter, header=options.header,
                             chunk_rows=options.chunk_rows, encoding=options.encoding, quoted=options.quoted,
                             header_option="--items-header", zone=options.time_zone):
        for part in id_parts:
            markers.see(chunk, part)
        if len(id_parts) > 1:  # joined_keys takes the parts out of the chunk; another field may read them
            parts = {p: chunk.columns[p] for p in id_parts}
            chunk.columns[names["item_id"]] = joined_keys(chunk, id_parts, seen_keys)
            chunk.columns.update(parts)
        check_ids(chunk, names["item_id"])
        ids.extend(chunk.columns[names["item_id"]])
        if "modality" in names:
            chunk.columns[names["modality"]] = _modalities(chunk, names["modality"])
        for f in text:
            c = names[f]
            refuse_time_typed(chunk, c, "text")
            chunk.columns[c] = [" ".join(v.items) if isinstance(v, ListCell) else v for v in chunk.columns[c]]
            if f == "language":
                chunk.columns[c] = [language_code(v) for v in chunk.columns[c]]
            check_item_text(chunk.columns[c], f, chunk.path, chunk.line_of, column=c)  # the field's rules
            text[f].extend(chunk.columns[c])
        if "tags" in names:
            tags.extend(_tags(chunk, names["tags"], options.tag_separator))
            check_item_text(tags[len(tags) - len(chunk):], "tags", chunk.path, chunk.line_of, column=names["tags"])
        _read_numbers(chunk, names, numbers, zone, DURATION_UNITS[options.duration_unit], release_seen)
    joined = {k: np.concatenate(v) if v else None for k, v in numbers.items()}
    _refuse_years_among_seconds(release_seen, names.get("release_ts"))
    joined["release_ts"] = _years_as_times(joined["release_ts"], joined.pop("release_year"))
    catalog = indexed(Catalog(ids, text, tags, joined["duration"], joined["release_ts"], joined["episode"]), path)
    return catalog, unread_columns_warning(present, [*id_parts, *names.values()]) + regional_warning(
        text.get("language", [])) + markers.warnings("the item table")


LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


def language_code(value: str) -> str:
    """A cell that reads as a BCP 47 language tag in the tag's usual casing, so one language is one filter
    value on the device (which compares codes exactly): ' EN' -> 'en', 'en_us' -> 'en-US', 'ZH-HANT' ->
    'zh-Hant'. Other text (a language's name, say) is only trimmed."""
    value = value.strip()
    if not LANGUAGE_TAG.fullmatch(value):
        return value
    first, *rest = value.replace("_", "-").split("-")
    return "-".join([first.lower()] + [p.upper() if len(p) == 2 and p.isalpha() else
                                       p.title() if len(p) == 4 and p.isalpha() else p.lower() for p in rest])


def regional_warning(languages: list[str]) -> list[str]:
    """A warning when codes of one language differ by region or script ('en' and 'en-US'): a device filter
    on 'en' does not pass 'en-US' items."""
    by_language: dict[str, set[str]] = {}
    for code in set(languages):
        if LANGUAGE_TAG.fullmatch(code):
            by_language.setdefault(code.split("-")[0], set()).add(code)
    mixed = sorted(", ".join(sorted(codes)) for codes in by_language.values() if len(codes) > 1)
    if not mixed:
        return []
    return [f"the language column names one language by several codes ({'; '.join(mixed[:5])}): a language "
            "filter or boost on the device compares codes exactly, so write each language one way if they mean "
            "the same"]


def _years_as_times(release: np.ndarray | None, years: np.ndarray | None) -> np.ndarray | None:
    """The release cells written as bare years (1995: valid ISO-8601 of reduced precision) as each year's
    start, decided cell by cell (years among full dates are years too); read as epoch seconds, every such
    film came out in the first 37 minutes of 1970."""
    if release is None or not years.any():
        return release
    out = release.copy()
    out[years] = [year_ts(int(y)) for y in release[years]]
    return out


def _bare_years(chunk: Chunk, name: str) -> np.ndarray:
    """Which cells of a release column are a bare year (a Parquet timestamp column holds ticks: none)."""
    if name in (chunk.units or {}):
        return np.zeros(len(chunk), bool)
    return np.array([bool(m) and MIN_YEAR <= int(m[1]) <= MAX_YEAR
                     for m in map(BARE_YEAR.fullmatch, chunk.columns[name])], bool)


def _refuse_years_among_seconds(seen: dict[str, tuple], column: str | None) -> None:
    """Bare years among epoch seconds written as numbers: 1995 may be the year or 1995 seconds after 1970
    (a column of seconds with a few small values), so no reading is safe."""
    if "year" in seen and "number" in seen:
        (path, line, year), (_, other_line, number) = seen["year"], seen["number"]
        raise DataError(f"column '{column}' holds {year.strip()!r}, a year or {year.strip()} seconds after 1970, among "
                        f"epoch seconds (such as {number.strip()!r} on line {other_line:,}): write every release "
                        "one way, as years (1995), ISO-8601 dates (1995-06-30) or epoch seconds, or leave the "
                        "cell empty when unknown", path, line)


def _read_numbers(chunk: Chunk, names: dict[str, str], numbers: dict[str, list[np.ndarray]],
                  zone: TimeText = ISO_UTC, seconds_per_unit: float = 1.0, release_seen: dict | None = None) -> None:
    for f in NUMERIC_FIELDS:  # an empty cell is an unknown value, stored as 0 like a missing column
        if f in names:
            c = names[f]
            chunk.columns[c] = [v if v.strip() else "0" for v in chunk.columns[c]]
    if "duration" in names:
        c = names["duration"]
        numbers["duration"].append(to_float(chunk, c, fix="write the duration in seconds, or leave the cell empty "
                                            "when unknown"))
        check_range(chunk, c, numbers["duration"][-1], (0.0, np.inf), "seconds, never negative")
        if seconds_per_unit != 1.0:  # float32 like the column (to_float's dtype)
            numbers["duration"][-1] = (numbers["duration"][-1] * np.float32(seconds_per_unit)).astype(np.float32)
    if "release_ts" in names:
        c = names["release_ts"]
        numbers["release_ts"].append(to_timestamp(chunk, c, text=zone))
        numbers["release_year"].append(years := _bare_years(chunk, c))
        if release_seen is not None and c not in (chunk.units or {}):  # where years and other numbers first show
            plain = np.array([bool(PLAIN_NUMBER.fullmatch(v)) for v in chunk.columns[c]], bool)
            for kind, rows in (("year", years), ("number", plain & ~years & (numbers["release_ts"][-1] != 0))):
                if rows.any():
                    row = int(np.argmax(rows))
                    release_seen.setdefault(kind, (chunk.path, chunk.line_of(row), chunk.columns[c][row]))
    if "episode" in names:
        c = names["episode"]
        numbers["episode"].append(to_int(chunk, c, np.int32))
        check_range(chunk, c, numbers["episode"][-1], EPISODES,
                    "episode numbers count from 1, 0 or empty for none; a device refuses a bundle holding a "
                    "negative one")


def _refuse_miscased(present: list[str], names: dict[str, str], path) -> None:
    """A field's column named in another case ('Title') is not read as it: refused, with the mapping that reads
    it (ignored, every item would have been untitled, silently)."""
    for name in ITEM_COLUMNS[1:]:
        other = next((p for p in present if p != name and p.casefold() == name.casefold()), None)
        if name not in names and other is not None and other not in names.values():
            raise DataError(f"column '{other}' is edgerec's '{name}' in another case: rename it, or map it with "
                            f"--item-columns {name}={other}", str(path))


def unread_columns_warning(present: list[str], read: list[str], table: str = "the item table",
                           advice: str = "") -> list[str]:
    """A warning naming the columns of a table that nothing reads (a catalog's `genres` or `lang` left out
    would cost the content encoder and the filters their text, silently; a log's `is_click` left out made
    every impression a play)."""
    unread = [c for c in present if c not in set(read)]
    if not unread:
        return []
    shown = ", ".join(map(repr, unread[:UNREAD_SHOWN])) + (f" and {len(unread) - UNREAD_SHOWN} more"
                                                            if len(unread) > UNREAD_SHOWN else "")
    advice = advice or (f"edgerec reads {', '.join(ITEM_COLUMNS)}; map a column to one with --item-columns "
                        "FIELD=COLUMN (e.g. tags=genres, language=lang)")
    return [f"{table}'s column(s) {shown} were not read: {advice}"]


def indexed(catalog: Catalog, path) -> Catalog:
    """The catalog with its id index built now, so a duplicate id is reported with its file."""
    try:
        catalog.index  # noqa: B018
    except DataError as exc:
        raise DataError(str(exc), str(path)) from None
    return catalog


def _modalities(chunk: Chunk, column: str) -> list[str]:
    """The modality column in the device's names, in any case; an unknown name stops the import (the device
    would read the item as of no modality: no verb in its reasons, no context lift, no domain)."""
    out = [v.strip().lower() for v in chunk.columns[column]]
    bad = next((i for i, v in enumerate(out) if v and v not in MODALITIES), None)
    if bad is not None:
        raise DataError(f"unknown modality {chunk.columns[column][bad]!r}; expected one of {', '.join(MODALITIES)}: "
                        "rename the file's modalities to these, or leave the cell empty when unknown", chunk.path,
                        chunk.line_of(bad))
    return out


def _tags(chunk: Chunk, column: str, separator: str) -> list[tuple[str, ...]]:
    """Each cell's tags, trimmed and once each in order; a tag may not hold "|", which would split it in
    the data folder and the bundle."""
    out = [tuple(dict.fromkeys(t for t in map(str.strip, v.items if isinstance(v, ListCell) else v.split(separator))
                               if t)) for v in chunk.columns[column]]
    bad = next((i for i, cell in enumerate(out) if any("|" in t for t in cell)), None)
    if bad is not None:
        raise DataError(f"the tag {next(t for t in out[bad] if '|' in t)!r} holds '|', which separates tags in "
                        f"edgerec's data folders and bundles; replace it in the file, or import with "
                        f"--tag-sep '|' if '|' separates this file's tags", chunk.path, chunk.line_of(bad))
    return out


def comma_tags_warning(catalog: Catalog, separator: str) -> list[str]:
    """A warning when tags read whole look like comma-separated lists (`rock, pop` kept as one tag)."""
    cells = [t for t in catalog.tags if t]
    listed = sum(len(t) == 1 and "," in t[0] for t in cells)
    # a fifth: a catalog where most items have one tag and the rest a list (KuaiRand: 48% hold '15,19')
    if separator == "|" and cells and listed * 5 >= len(cells) and all(len(t) == 1 for t in cells):
        return [f"{listed:,} of {len(cells):,} items' tags hold a comma and were each read as one tag (such as "
                f"{next(t[0] for t in cells if ',' in t[0])!r}); if commas separate the tags, import again with "
                "--tag-sep ','"]
    return []


def item_warnings(catalog: Catalog, duration_unit: str = "s") -> list[str]:
    """What an item table holds that imports as written but is likely not what was meant."""
    out = bidi_warning(catalog.text["title"], catalog.tags)  # a Catalog always has both (schema.py)
    known = catalog.release_ts[catalog.release_ts != 0]
    if known.size and known.max() <= LAST_NUMBER_DATE and numbers_as_dates([known]):
        out.append(f"every release_ts reads as a date written as a number, yyyymmdd ({int(known[0])}), which "
                   "epoch seconds put in 1970: freshness and release filters read them wrong; write the dates as "
                   "ISO-8601 (2020-01-31) or epoch seconds")
    modality = np.asarray(catalog.text.get("modality", [""] * len(catalog.item_ids)), dtype=object)
    for kind, bound in LONG_MEDIAN_S.items():
        durations = catalog.duration[(catalog.duration > 0) & (modality == kind)]
        if durations.size and float(np.median(durations)) > bound:
            hours = float(np.median(durations)) / 3600
            question = ("are the durations in milliseconds? They are read as seconds" if duration_unit == "s" else
                        f"is --duration-unit {duration_unit} their unit?")
            advice = "import again with --duration-unit ms" if duration_unit == "s" else "check --duration-unit"
            out.append(f"the {'items' if not kind else kind.replace('_', ' ') + 's'}' median duration is "
                       f"{hours:,.1f} hours: {question}; duration filters and what a play covered read them "
                       f"wrong: {advice}")
    return out
