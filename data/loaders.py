"""Loaders for data a user already has: the log reader every import goes through (a CSV, TSV, Parquet or
JSON log, or the chunks of a release read in its own layout: releases.py), and import_dataset, which picks
the reader for a FORMAT.

Each loader streams its file in chunks, maps external ids to dense codes and
returns the neutral model of `schema.py`. Sampling by user is decided from a
hash of the user id, so it works while streaming and is the same on every run.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgerec.data.chunk_checks import (
    KEY_JOIN,
    MissingMarkers,
    ReadOptions,
    check_column_names,
    check_ids,
    joined_keys,
    key_parts,
    option_pairs,
    refuse_miscased,
)
from edgerec.data.item_import import (
    ItemColumns,
    comma_tags_warning,
    item_warnings,
    read_item_table,
    unread_columns_warning,
)
from edgerec.data.item_text import bidi_ids_warning
from edgerec.data.json_lines import SUFFIXES as JSON_SUFFIXES
from edgerec.data.json_lines import ListCell, is_json_lines
from edgerec.data.parts import data_files
from edgerec.data.schema import (
    DEVICE_CODE,
    DEVICES,
    EVENT_CODE,
    EVENTS,
    Catalog,
    Dataset,
    Interactions,
)
from edgerec.data.tables import (
    LAST_NUMBER_DATE,
    PER_SECOND,
    Chunk,
    Skipped,
    check_range,
    ends_mid_line,
    numbers_as_dates,
    read_chunks,
    read_header,
    split_seconds,
    time_unit,
    to_float,
    to_seconds,
    unit_name,
)
from edgerec.errors import ConfigError, DataError

__all__ = ["FORMATS", "KEY_JOIN", "RELEASES", "ColumnMap", "ItemColumns", "ReadOptions", "import_dataset",
           "key_parts", "read_interactions", "source_name"]

FORMATS = ("csv", "parquet", "jsonl", "ml-100k", "ml-1m", "ml-latest", "netflix", "mpd", "30music")
RELEASES = ("ml-100k", "ml-1m", "ml-latest", "netflix", "mpd", "30music")  # releases.py: read in their own layout
DAY = 86_400
MANY_ROWS = 10_000  # a log this long within a day of 1970 is counted in other steps or from its own start
EARLY_1973 = 100_000_000  # epoch seconds (March 1973): a log in ms, us or ns ending before it was likely in seconds


@dataclass
class ColumnMap:
    """Which column of the user's file holds what. Optional columns may be None."""

    user: str = "user_id"
    item: str = "item_id"
    time: str | None = "timestamp"  # None: the log has no times (--no-time): rows in file order
    event: str | None = "event"
    value: str | None = "value"
    device: str | None = "device"
    default_event: str | None = None  # a log without an event column: all plays unless set; with one: empty cells
    value_range: tuple[float, float] | None = None  # e.g. MovieLens ratings: a value outside is an error
    skip_below: float | None = None  # a play whose value is below this is a skip (a watch ratio under a threshold)
    value_scale: float | None = None  # values are multiplied by it as read (0.01: percentages to shares)
    event_map: dict[str, str] | None = None  # the file's event names -> edgerec's (or DROP: the row is left out)
    item_list_sep: str | None = None  # the item column holds several ids a row, split by this (MicroLens)

    def __post_init__(self):
        if self.default_event is not None and self.default_event not in EVENTS:
            raise ConfigError(f"the default event is one of {', '.join(EVENTS)} (got {self.default_event!r})")
        roles = [(role, name) for role in ("user", "item", "time", "event", "value", "device")
                 if (name := getattr(self, role)) is not None]
        for role, name in roles:  # an empty name was reported as "missing column(s) ; the file has ..."
            if not isinstance(name, str) or not name.strip():
                optional = " or leave the option out (the column is optional)" if role in _DEFAULTS else ""
                flag = f" with --{role}-col" if role != "device" else ""
                raise ConfigError(f"the {role} column's name is empty ({name!r}); pass the file's column name"
                                  f"{flag}{optional}")
        for i, (role, name) in enumerate(roles):
            other = next((r for r, n in roles[i + 1:] if n == name), None)
            if other:
                raise ConfigError(f"column {name!r} is named for both the {role} and the {other}; each needs "
                                  "its own column (--user-col, --item-col, --time-col, --event-col, --value-col)")
        if self.skip_below is not None and not np.isfinite(self.skip_below):
            raise ConfigError(f"--skip-below must be a finite number (got {self.skip_below!r}) on the scale of "
                              "the plays' values: e.g. 0.5 for a watch ratio, 50 for a percentage column, 0.3 for "
                              "30music's share of the track played")
        if self.value_scale is not None and not (np.isfinite(self.value_scale) and self.value_scale > 0):
            raise ConfigError(f"--value-scale must be a finite number above 0 (got {self.value_scale!r}), e.g. "
                              "0.01 for percentages")
        if self.event_map is not None:
            self.event_map = checked_event_map(self.event_map)
        if self.item_list_sep is not None and (not isinstance(self.item_list_sep, str) or not self.item_list_sep
                                               or set(self.item_list_sep) & set('"\r\n')):
            raise ConfigError(f"--item-list-sep must be one or more characters other than quotes and line breaks (got "
                              f"{self.item_list_sep!r}); ' ' for ids separated by spaces")


_RATING_NAME = re.compile(r"rating|stars?$|score|^rate$", re.I)  # a value column that holds ratings
FILE_ORDER = "(row in the file)"  # the time column of a log imported without one
_DEFAULTS = {"event": ColumnMap.event, "value": ColumnMap.value, "device": ColumnMap.device}


class SecondsAmongFinerTimes:
    """With --time-unit ms, us or ns, a row written in epoch seconds reads as a date in January 1970 and
    moves to the front of its user's history. Refused at its line once the log also holds real dates
    (after 1973): a log of small relative times in ms (from 0) is still read as it is."""

    EARLY, LATE = 365 * DAY, 1e8  # before 1971; after March 1973

    def __init__(self, unit: str):
        self.unit, self.on = unit, PER_SECOND.get(unit, 1) > 1
        self.early: tuple | None = None  # (file, line, value) of the first row before 1971
        self.late = False

    def see(self, chunk: Chunk, column: str, seconds: np.ndarray) -> None:
        if not self.on or column in (chunk.units or {}):  # a typed timestamp column carries its own unit
            return
        early = np.flatnonzero((seconds < self.EARLY) & (seconds != 0))  # 0 is 0 in any unit
        if early.size and self.early is None:
            first = int(early[0])
            self.early = (chunk.path, chunk.line_of(first), chunk.columns[column][first])
        self.late |= bool(np.any(seconds >= self.LATE))
        if self.early is not None and self.late:
            path, line, value = self.early
            raise DataError(f"column '{column}' holds {value!r}, which as epoch {unit_name(self.unit)} is a time in "
                            "1970, while other rows are dates after 1973: is this row written in seconds? Write every "
                            "time in one unit (or drop the row)", path, line)


def source_name(path: str | Path) -> str:
    """What a data set keeps of where it came from: the file's or folder's own name, never the folders above it
    (they can name a person), also when given as '.' or 'logs/'."""
    return Path(os.path.abspath(path)).name or "/"  # abspath, not resolve: a link keeps the name it was given


def keep_user(user_id: str, fraction: float | None, seed: int) -> bool:
    """Whether the sample of `fraction` of the users keeps this one. A cryptographic hash, not CRC-32: CRC is
    linear, so the seed's digits XORed one constant into every user's hash and seeds 0 and 9 kept the very
    same users (0 and 1 shared nine tenths of a half sample)."""
    if fraction is None or fraction >= 1.0:
        return True
    digest = hashlib.blake2b(f"{seed}:{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < fraction * 2**64


class _Codes:
    """Grows a mapping external id -> dense code while streaming."""

    def __init__(self, known: dict[str, int] | None = None, ids: list[str] | None = None):
        self.index = dict(known or {})
        self.ids = list(ids or [])

    def encode(self, values: list[str]) -> np.ndarray:
        index, ids = self.index, self.ids
        out = np.empty(len(values), np.int32)
        for i, v in enumerate(values):
            code = index.get(v)
            if code is None:
                code = index[v] = len(ids)
                ids.append(v)
            out[i] = code
        return out


UNKNOWN_ITEMS = ("are the table's ids read from the right column? Name it with --item-columns item_id=COLUMN "
                 "(by default the table's item_id column, else the log's --item-col)")


def read_interactions(
    path: str | Path,
    columns: ColumnMap | None = None,
    catalog: Catalog | None = None,
    options: ReadOptions | None = None,
    chunks: Callable[[Skipped | None], Iterator[Chunk]] | None = None,
    name_unread: bool = False,
    unknown_items: str = UNKNOWN_ITEMS,
    hash_item_order_ties: bool = False,
) -> Dataset:
    """Read an interaction log; with `catalog`, every item must be in it.

    Without a catalog, a bare one is built from the ids seen. `chunks` reads a log that is not a table
    (Netflix Prize's blocks) as chunks of the columns `options.header` names. With `name_unread`, columns
    nothing reads are named in a warning (and a log of one event a user). `unknown_items`: what to check when
    no item of the log's first rows is in the catalog. With `hash_item_order_ties`, events at the same time
    whose file order is item-id order are put in a fixed hash order instead (_rows_in_item_order
    judged on the groups of tied events).
    """
    columns = columns or ColumnMap()
    options = options or ReadOptions()
    names = list(options.header or read_header(path, delimiter=options.delimiter, encoding=options.encoding))
    present = set(names)
    optional = {name: getattr(columns, name) for name in ("event", "value", "device")}
    refuse_miscased(present, {k: v for k, v in optional.items() if v == _DEFAULTS[k]}, path)
    # an optional column is read when present; one named other than its default must be there (a typo in
    # --event-col would otherwise make every event a play)
    optional = {k: v for k, v in optional.items() if v is not None and (v in present or v != _DEFAULTS[k])}
    if columns.event_map is not None and "event" not in optional:
        raise ConfigError(f"--event-map renames the file's events, but it has no column {columns.event!r}; name the "
                          "column of event names with --event-col")
    if columns.value_scale is not None and "value" not in optional:
        raise ConfigError(f"--value-scale multiplies each row's value, but the file has no column {columns.value!r}; "
                          "name it with --value-col")
    if columns.skip_below is not None and "value" not in optional:
        raise ConfigError(f"--skip-below compares each play's value, but the file has no column "
                          f"{columns.value!r}; name the column of watch ratios or shares played with --value-col")
    item_parts = key_parts(columns.item, present)
    if columns.item_list_sep is not None and len(item_parts) > 1:
        raise ConfigError("--item-list-sep splits one item column; it cannot go with an item key of several "
                          f"columns ({columns.item})")
    file_order = columns.time is None  # a log without times (a ratings dump): events in the file's order
    if not file_order and columns.time not in present and {columns.user, *item_parts} <= present:
        raise DataError(f"missing column {columns.time!r}, the time of each event; the file has {', '.join(names)}. "
                        "Name it with --time-col, or import a log without times with --no-time (each row's place "
                        "in the file is then its time)", str(path), 1)
    seconds_unit = time_unit(options.time_unit) == (1, 1)  # 's' or '1s'
    if file_order and (not seconds_unit or not options.time_text.plain):
        raise ConfigError("--time-unit, --time-format and --time-zone read a time column; a log imported without "
                          "one (--no-time) has none")
    wanted = [columns.user, *item_parts, *([] if file_order else [columns.time]), *optional.values()]
    if file_order:
        columns = replace(columns, time=FILE_ORDER)
    rows_read = 0  # the file order of a log without times
    skipped = Skipped() if options.skip_bad_rows else None
    unit_read = False  # some times were numbers read in options.time_unit
    last_times: list[str] = []  # the time text of the last two rows read (a cut last line: _cut_short)
    last_line = 0
    keys_seen: dict[str, tuple[str, ...]] = {}  # item key of several columns -> the values that made it
    parts_hint = (f"; every row needs {' and '.join(item_parts)} (or pass --skip-bad-rows to leave such rows out)"
                  if len(item_parts) > 1 else "")

    users = _Codes()
    items = _Codes(catalog.index, catalog.item_ids) if catalog is not None else _Codes()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in LOG_FIELDS}  # chunk arrays, column by column
    within: list[np.ndarray] = []  # nanoseconds within the second: the order of events within a second
    rows_kept = 0  # rows past --skip-bad-rows (the sample may still leave them out)
    sampled: dict[str, bool] = {}  # user id -> kept by the sample (hashed once per user)
    unknown_devices: dict[str, int] = {}  # device names the device does not know -> rows (read as unknown)
    as_skips = 0  # plays the sample kept that --skip-below made skips
    no_value = 0  # rows whose value cell is empty, read as 1 (as a log without the column)
    dropped: Counter = Counter()  # rows --event-map left out, by the file's event name
    defaulted: Counter = Counter()  # rows whose event cell was empty, given --default-event
    listing_rows = 0  # rows whose item cell listed several ids (--item-list-sep)
    finer = SecondsAmongFinerTimes(options.time_unit)
    markers = MissingMarkers(options.missing_ids)
    for chunk in chunks(skipped) if chunks is not None else read_chunks(
        path, wanted, delimiter=options.delimiter, header=options.header,
        chunk_rows=options.chunk_rows, encoding=options.encoding, quoted=options.quoted, skipped=skipped,
        zone=options.time_zone, header_option=options.header_from,
    ):
        if file_order:
            chunk.columns[FILE_ORDER] = [str(rows_read + i) for i in range(len(chunk))]
        rows_read += len(chunk)
        for name, need in ((columns.user, "a user"), *((p, "an item") for p in item_parts)):
            markers.see(chunk, name, skipped is not None, need)
        if not file_order:  # the rows as written: a listed row's copies would compare with themselves
            last_times = (last_times + chunk.columns[columns.time][-2:])[-2:]
            last_line = chunk.line_of(len(chunk) - 1)
        if columns.item_list_sep is not None:
            chunk, more = _one_item_a_row(chunk, columns.item, columns.item_list_sep)
            listing_rows += more
        if len(item_parts) > 1:
            chunk.columns[columns.item] = joined_keys(chunk, item_parts, keys_seen)
        if skipped is not None:
            chunk, seconds = _skip_bad(chunk, columns, options, skipped)
            if not len(chunk):
                continue
        rows_kept += len(chunk)
        user_ids, item_ids = chunk.columns[columns.user], chunk.columns[columns.item]
        check_ids(chunk, columns.user, "; every row needs a user (or pass --skip-bad-rows to leave such rows out)")
        check_ids(chunk, columns.item, parts_hint or "; a log whose items lack an id in some rows can key them by "
                  "several columns (--item-col artist+track) or leave those rows out (--skip-bad-rows)")
        if catalog is not None:
            index = catalog.index
            for i, v in enumerate(item_ids):
                if v not in index:
                    none = rows_kept == len(chunk) and not any(x in index for x in item_ids)
                    raise DataError(
                        f"item {v!r} is not in the item table; " + (
                            f"no item of the log's first rows is: {unknown_items}" if none
                            else "add it there or drop the event"),
                        chunk.path, chunk.line_of(i),
                    )
        unit_read = unit_read or columns.time not in (chunk.units or {})  # numbers, not a Parquet timestamp
        if skipped is None:
            seconds = to_seconds(chunk, columns.time, options.time_unit, low=0.0, text=options.time_text)
        timestamp, nanos = split_seconds(chunk, columns.time, options.time_unit, seconds)
        finer.see(chunk, columns.time, seconds)
        # the sample (by user) first: the rows it leaves out are not counted as dropped or defaulted either
        keep = np.fromiter((sampled[u] if u in sampled else sampled.setdefault(
            u, keep_user(u, options.sample_users, options.seed)) for u in user_ids), bool, len(chunk))
        event = _events(chunk, optional.get("event"), columns.default_event, columns.event_map, dropped, defaulted,
                        keep)
        empty = (_fill_missing_values(chunk, optional["value"]) if "value" in optional and columns.value_range is None
                 else np.zeros(len(chunk), bool))
        value = (to_float(chunk, optional["value"], fix=_value_fix(columns)) if "value" in optional
                 else np.ones(len(chunk), np.float32))
        if "value" in optional and columns.value_range is not None:
            check_range(chunk, optional["value"], value, columns.value_range, "the range of this format")
        if columns.value_scale is not None:  # before --skip-below, which then compares shares
            with np.errstate(over="ignore"):  # a product past float32 is refused below, by its line
                # in float64, then cast once: float32(30) x float32(0.01) fell under float32(0.3), a play at
                value = (value.astype(np.float64) * columns.value_scale).astype(np.float32)  # the bound a skip
            if not np.isfinite(value).all():
                first = int(np.flatnonzero(~np.isfinite(value))[0])
                raise DataError(f"a value times --value-scale {columns.value_scale:g} is too large for a number "
                                f"(found {chunk.columns[optional['value']][first]!r}); check the scale and the "
                                "column", chunk.path, chunk.line_of(first))
        value[empty] = 1.0  # after the scale: a missing share is a whole play, never a skip
        short = np.zeros(len(chunk), bool)
        if columns.skip_below is not None:
            short = (event == EVENT_CODE["play"]) & (value < columns.skip_below)
            event[short] = EVENT_CODE["skip"]
        keep &= event != DROPPED  # the sampled rows, parsed whole so errors above name the true line
        device = _devices(chunk, optional.get("device"), unknown_devices, keep)  # counts the imported rows only
        if not keep.any():
            continue
        if not keep.all():
            user_ids = [u for u, k in zip(user_ids, keep) if k]
            item_ids = [v for v, k in zip(item_ids, keep) if k]
            timestamp, event, value, device = timestamp[keep], event[keep], value[keep], device[keep]
            nanos, short, empty = nanos[keep], short[keep], empty[keep]
        as_skips += int(short.sum())
        no_value += int(empty.sum())
        for name, array in zip(LOG_FIELDS, (users.encode(user_ids), items.encode(item_ids), timestamp, event, value,
                                            device)):
            parts[name].append(array)
        within.append(nanos)
    if not rows_read and not (skipped is not None and skipped.total):  # a chunk reader that found no row at all
        raise DataError("holds no events: the file (or every file of the folder) has no rows to import", str(path))
    if not rows_kept:  # every row had no id or no time: "the sample kept no user" blamed an option not given
        hint = ("" if chunks is not None else ": are the columns named right (--user-col, --item-col, --time-col, "
                "--columns) and is --time-unit the file's?")  # a release's reader names its own columns
        raise DataError(f"every row was left out ({skipped.total:,}: {', '.join(skipped.reasons)}){hint}", str(path))
    if not within:
        if dropped:
            raise DataError(f"no events left: --event-map dropped every row it kept ({_named_counts(dropped)})",
                            str(path))
        raise DataError("no events left (the sample kept no user); raise --sample", str(path))
    if catalog is None:
        catalog = Catalog.bare(items.ids)
    meta = {"source": source_name(path)} | ({"skipped_rows": skipped.summary()} if skipped is not None else {})
    if columns.skip_below is not None:  # said, so a log of skips is never a surprise
        meta["plays_as_skips"] = {"below": columns.skip_below, "events": as_skips}
    if columns.default_event is not None and "event" in optional:  # rows without an event took it: said
        meta["default_event"] = {"event": columns.default_event, "rows": defaulted["rows"]}
    if columns.event_map is not None:
        meta["event_map"] = {"map": dict(columns.event_map), "dropped_rows": dict(sorted(dropped.items()))}
    if columns.value_scale is not None:
        meta["value_scale"] = columns.value_scale
    if options.sample_users is not None:  # which users a later run would get again
        meta["sample"] = {"users": options.sample_users, "seed": options.seed}
    if not options.time_text.plain:
        meta["time_text"] = options.time_text.as_meta()
    latest = max(int(t.max()) for t in parts["timestamp"])
    if file_order:
        meta["time"] = "file order"
        meta["warnings"] = ["the log has no times (--no-time): each event's time is its row in the file, so a "
                            "user's last event is their last row; splits follow that order, and recency, gaps and "
                            "time of day mean nothing"]
    elif unit_read and not seconds_unit and latest < EARLY_1973:
        meta["warnings"] = [f"every time falls before 1973 read as epoch {unit_name(options.time_unit)} "
                            f"(--time-unit {options.time_unit}): if the file holds seconds, import it again "
                            "without --time-unit; if its times count from the log's own start (Diginetica's "
                            "timeframe), order and gaps hold, but dates and time of day mean nothing"]
    elif unit_read and (ticks := _whole_ticks(parts["timestamp"], options.time_unit)) is not None \
            and max(int(t.max()) for t in ticks) <= LAST_NUMBER_DATE and numbers_as_dates(ticks):
        first = int(ticks[0][0])
        read_as = ("epoch seconds put in 1970, days seconds or minutes apart" if seconds_unit else
                   f"--time-unit {options.time_unit} reads as {unit_name(options.time_unit)} since 1970 (the latest "
                   f"on {datetime.fromtimestamp(min(latest, 4e12), timezone.utc):%Y-%m-%d})")
        meta["warnings"] = [f"every time reads as a date written as a number, yyyymmdd ({first} is "
                            f"{first // 10000}-{first // 100 % 100:02d}-{first % 100:02d}), which {read_as}: events "
                            "keep their order, but recency, gaps and time of day are wrong; write the dates as "
                            "ISO-8601 (2020-01-31) or epoch seconds"]
    elif unit_read and seconds_unit and latest < EARLY_1973 and (
            latest - earliest(parts) >= DAY or rows_kept >= MANY_ROWS):  # small test logs count from 0: silent
        meta["warnings"] = [f"every time falls before 1973 as epoch seconds (the latest on "
                            f"{datetime.fromtimestamp(latest, timezone.utc):%Y-%m-%d}): times counted from the log's "
                            "own start (as Yambda's are) keep the events' order, but dates and time of day mean "
                            "nothing, and a device's history dated so is past any retention window; add the log's "
                            "start time to them if it is known. Times counted in other steps put gaps and recency wrong: "
                            "pass their unit (--time-unit 10min for Twitch's 10-minute slots, d for days)"]
    elif latest > time.time() + DAY:
        future = sum(int((t > time.time() + DAY).sum()) for t in parts["timestamp"])
        meta["warnings"] = [f"{future:,} events are dated after today (the latest on "
                            f"{datetime.fromtimestamp(latest, timezone.utc):%Y-%m-%d}): check the time unit "
                            "(--time-unit) or the log's clock; splits and recency read them as they are"]
    if not file_order and _cut_short(path, last_times):
        meta["warnings"] = [*meta.get("warnings", []), f"the file ends inside its last line ({last_line:,}: no line "
                            "break after it) and that row's time is shorter than the row before's, as if cut: the "
                            "file looks cut short (a copy or download that stopped), so that event's time is wrong; "
                            "fetch the file again, or drop that line"]
    if name_unread and (unread := _unread_log_columns(names, wanted, "event" in optional)):
        meta["warnings"] = [*meta.get("warnings", []), *unread]  # a user's own file (a release's is read as meant)
    if "value" in optional and "event" not in optional and columns.default_event in (None, "play") \
            and _RATING_NAME.search(optional["value"]):
        meta["warnings"] = [*meta.get("warnings", []), f"column {optional['value']!r} reads as the share of each "
                            "play played (a 4 as four plays), since the log has no event column: if it holds "
                            "ratings, import again with --default-event rate"]
    if no_value:
        meta["rows_without_value"] = no_value
        meta["warnings"] = [*meta.get("warnings", []), f"{no_value:,} rows have no {columns.value!r} (an empty cell "
                            "or NaN), read as 1, the value of a log without that column (a whole play; a play "
                            "without a value is never below --skip-below)"]
    if unknown_devices:
        meta["warnings"] = [*meta.get("warnings", []), device_warning(unknown_devices)]
    if marked := markers.warnings():
        meta["warnings"] = [*meta.get("warnings", []), *marked]
    if as_skips and all((e == EVENT_CODE["skip"]).all() for e in parts["event"]):  # train and evaluate then refuse
        meta["warnings"] = [*meta.get("warnings", []), f"every event is a skip (--skip-below {columns.skip_below:g} "
                            "made all the plays skips): nothing is consumed, so nothing can train or be evaluated; "
                            "lower the threshold or check --value-col"]
    tied: list[np.ndarray] = []
    # a listed cell's ids (--item-list-sep) share their row's time in the order written: a true order
    judge_ties = hash_item_order_ties and not file_order and columns.item_list_sep is None
    log = _sorted_log(parts, within, tied if judge_ties else None)
    if tied and _rows_in_item_order(log, catalog.item_ids, groups := np.cumsum(~tied[0]) - 1, least=2):
        # the stable sort kept the file's order of a second's events; a file sorted by item (Amazon's
        # ratings CSVs, ml-latest) makes the highest id of a user's last second their test item every time
        log = log.take(np.lexsort((tie_hash(log, users.ids, catalog.item_ids), groups)))
        meta["ties"] = TIES_HASHED
        meta["warnings"] = [*meta.get("warnings", []), "events at the same time were in the order of their item "
                            "ids (the file is sorted by item), so each user's last one would be their highest "
                            "item id: they are ordered by a fixed hash of user and item instead (dataset.json: "
                            "ties); if the file's order of same-time events is their true order, write finer "
                            "times (milliseconds) so they no longer tie"]
    if columns.item_list_sep is not None and not listing_rows:
        meta["warnings"] = [*meta.get("warnings", []), f"no item cell lists several ids split by --item-list-sep "
                            f"{columns.item_list_sep!r}: is that the separator the cells use?"]
    elif name_unread and columns.item_list_sep is None and len(users.ids) >= 10 and len(log) == len(users.ids):
        meta["warnings"] = [*meta.get("warnings", []), f"every user has one event ({len(users.ids):,} users): "
                            "nothing is left to train on or to test once a user's last event is held out; if the "
                            "item column lists several ids a row (a sequence), split them with --item-list-sep"]
    if file_order and _rows_in_item_order(log, catalog.item_ids):
        meta["warnings"] = [*meta.get("warnings", []), "each user's rows are in the order of their item ids: with "
                            "--no-time the file's order is the time, so a user's last event is their highest item id, "
                            "and a leave-last-out test scores that id, not a last play. If the file has no true "
                            "order, shuffle each user's rows before the import (pandas: "
                            "df.sample(frac=1, random_state=0)); if it has times elsewhere, import them"]
    return Dataset(catalog, log, users.ids, meta=meta)


def _whole_ticks(times: list[np.ndarray], unit: str) -> list[np.ndarray] | None:
    """The numbers a log wrote, from the seconds read in `unit` when it counts whole seconds or steps of
    them (None for finer units: a date number read as milliseconds lands in 1970 and is warned about so)."""
    per_second, step = time_unit(unit)
    return None if per_second > 1 else [t // step for t in times]


TIES_HASHED = ("a user's events at the same time in a fixed order drawn from a hash of user and item (the "
               "file orders them by item)")


def tie_hash(log: Interactions, user_ids: list[str], item_ids: list[str]) -> np.ndarray:
    """A fixed key per event from a hash of its user and item ids as written (so a sample keeps the full
    import's order): the order of tied events when the file's order is item order (Netflix's same-day
    ratings, ml-latest's same-second ones, a generic log sorted by item)."""
    users = np.fromiter((zlib.crc32(u.encode()) for u in user_ids), np.uint64, len(user_ids))
    items = np.fromiter((zlib.crc32(i.encode()) for i in item_ids), np.uint64, len(item_ids))
    with np.errstate(over="ignore"):  # uint64 products wrap: a mix, not a count
        key = users[log.user] * np.uint64(0x9E3779B97F4A7C15) ^ items[log.item] * np.uint64(0xC2B2AE3D27D4EB4F)
        key ^= key >> np.uint64(29)
    return key


def _rows_in_item_order(log: Interactions, item_ids: list[str], groups: np.ndarray | None = None,
                        least: int = 3) -> bool:
    """Item ids rise through the rows of nine in ten users with three rows or more (at least ten such users):
    a dump sorted by user, then item (HetRec's user_artists.dat), not a log in time order. `groups` (one
    label per row, rows of a group adjacent) judges other groups than users: the tied events of a log with
    times, groups of two or more. Only groups of two or more distinct items are judged: one item repeated
    (a play and its finish in one second) neither rises nor falls, and counting it as rising reordered the
    true order of a time-ordered log's few ties of two items."""
    groups = log.user if groups is None else groups
    counts = np.bincount(groups)
    pairs = np.unique(groups.astype(np.int64) * max(len(item_ids), 1) + log.item)  # each (group, item) once
    distinct = np.bincount(pairs // max(len(item_ids), 1), minlength=len(counts))
    judged = (counts >= least) & (distinct >= 2)
    if judged.sum() < 10:
        return False
    # ids compared as numbers when all are ASCII digits ('²' is a digit to isdigit, not to int)
    key = [int(i) for i in item_ids] if all(i.isascii() and i.isdigit() for i in item_ids) else item_ids
    rank = np.empty(len(item_ids), np.int64)
    rank[sorted(range(len(item_ids)), key=key.__getitem__)] = np.arange(len(item_ids))
    ranks = rank[log.item]
    falls = (groups[1:] == groups[:-1]) & (ranks[1:] < ranks[:-1])
    fell = np.zeros(len(counts), bool)
    fell[groups[1:][falls]] = True
    return float((~fell[judged]).mean()) >= 0.9


def _one_item_a_row(chunk: Chunk, column: str, sep: str) -> tuple[Chunk, int]:
    """The chunk with each row repeated for every id its `column` lists, in the order written, each copy at
    the row's line, and how many cells listed more than one. A cell is split by `sep`, each piece stripped
    of spaces (' 400' after a comma is id 400) and empty pieces left out; a JSON or Parquet list cell
    lists its own items. A row that lists none keeps its empty cell (refused by its line as any row
    without an item)."""
    pieces = [[p for p in (cell.items if isinstance(cell, ListCell) else (q.strip() for q in cell.split(sep))) if p]
              or [cell] for cell in chunk.columns[column]]
    rows = np.repeat(np.arange(len(pieces)), [len(p) for p in pieces])
    columns = {name: [values[r] for r in rows] for name, values in chunk.columns.items()}
    columns[column] = [p for listed in pieces for p in listed]
    lines = (chunk.lines if chunk.lines is not None else chunk.first_line + np.arange(len(chunk)))[rows]
    return Chunk(columns, int(lines[0]), chunk.path, chunk.floats, lines, chunk.units), sum(len(p) > 1 for p in pieces)


def _unread_log_columns(names: list[str], read: list[str], with_events: bool) -> list[str]:
    """A warning naming the log's columns nothing reads, with the options that read a click column (a
    KuaiRand or Tenrec log without --event-col made every impression a play)."""
    names = [n for n in names if n.strip() and not _INDEX_NAME.fullmatch(n)]  # pandas' index: no data of ours
    clicks = next((n for n in names if n not in read and _CLICK_NAME.fullmatch(n)), None)
    hint = (f" A 0/1 column of clicks makes the unclicked rows skips: --event-col {clicks} --event-map "
            "'1=play,0=skip'." if clicks and not with_events else "")
    return unread_columns_warning(names, read, "the log", "an event is read from the user, item and time columns, "
                                  "with --event-col, --value-col and a device column when named (a row is a play "
                                  f"without an event column).{hint}")


_CLICK_NAME = re.compile(r"(is_?)?click(ed)?", re.I)
_INDEX_NAME = re.compile(r"Unnamed: \d+|index|level_\d+")  # what pandas names its index column when it writes one


def device_warning(unknown: dict[str, int]) -> str:
    """What became of device names the device does not know: read as unknown, which the docs promise, but
    never without a word (a log of 'mobile' and 'desktop' lost its whole device column)."""
    shown, rows = sorted(unknown, key=lambda name: (-unknown[name], name))[:3], sum(unknown.values())
    return (f"{rows:,} {'row names' if rows == 1 else 'rows name'} a device edgerec does not know "
            f"({', '.join(map(repr, shown))}"
            f"{', ...' * (len(unknown) > 3)}): their events have no device; name devices {', '.join(DEVICES)} "
            "(in any case) to keep them")


def _cut_short(path, last_times: list[str]) -> bool:
    """A plain text log whose last line has no line break and whose last time is the start of one written
    as the row before it is ('16000' after '1600039050', '2019-06-01' after '2019-06-01 07:29:09'): a cut
    file, whose last event imported as 1970 or as midnight (moved to its user's first place that day)."""
    path = Path(path)
    if path.is_dir() or len(last_times) < 2 or not ends_mid_line(path):
        return False
    # a fraction of a second is no part of the shape: '1600000002' after '1600000001.5' is whole
    before, last = (_DIGITS.sub("9", _FRACTION.sub("", t.strip())) for t in last_times)
    return "9" in last and len(last) < len(before) and before.startswith(last)


_DIGITS = re.compile(r"\d")
_FRACTION = re.compile(r"[.,]\d*$")


def earliest(parts: dict[str, list[np.ndarray]]) -> int:
    return min(int(t.min()) for t in parts["timestamp"])


def _named_counts(counts: Counter) -> str:
    return ", ".join(f"{name}: {n:,}" for name, n in counts.most_common(5))


def _fill_missing_values(chunk: Chunk, name: str) -> np.ndarray:
    """Empty or NaN value cells (a column filled for some events only: Yambda's played share is empty on
    likes) read as 1, the value of a log without the column; where they were."""
    cells = chunk.columns[name]
    empty = np.fromiter((not v.strip() or v.strip().lower() == "nan" for v in cells), bool, len(cells))
    if empty.any():
        chunk.columns[name] = ["1" if e else v for v, e in zip(cells, empty)]
    return empty


def _value_fix(columns: ColumnMap) -> str:
    """What to do about a value that is not a number; a format with a range (MovieLens ratings) cannot leave
    its column out."""
    if columns.value_range is None:
        return "write a number in every row (or leave the column out if it carries nothing)"
    low, high = columns.value_range
    return f"every row of this format needs a rating from {low:g} to {high:g}: correct or delete that line"


LOG_FIELDS = ("user", "item", "timestamp", "event", "value", "device")


def _sorted_log(parts: dict[str, list[np.ndarray]], within: list[np.ndarray],
                ties: list[np.ndarray] | None = None) -> Interactions:
    """The chunks joined and ordered by (user, timestamp, nanoseconds within the second), stably, as
    `Interactions.sorted_by_time(within)`; one column at a time, each chunk list and unsorted column let go
    once used (the log was held three times over: chunks, joined, sorted; 90 bytes an event at the peak).
    `ties`, when given, receives the mask of the sorted events tied with the one before (same user, second
    and nanosecond): the log's events keep no nanoseconds."""
    users, timestamp = np.concatenate(parts.pop("user")), np.concatenate(parts.pop("timestamp"))
    nanos = np.concatenate(within)
    order = np.lexsort((nanos, timestamp, users))  # lexsort is stable
    within.clear()
    columns = {"user": users[order], "timestamp": timestamp[order]}
    del users, timestamp
    if ties is not None:
        nanos = nanos[order]
        tied = np.zeros(len(order), bool)
        tied[1:] = ((columns["user"][1:] == columns["user"][:-1]) & (columns["timestamp"][1:] == columns["timestamp"][:-1])
                    & (nanos[1:] == nanos[:-1]))
        ties.append(tied)
    del nanos
    for name in LOG_FIELDS[1:]:
        if name != "timestamp":
            columns[name] = np.concatenate(parts.pop(name))[order]
    return Interactions(**columns)


def _skip_bad(chunk: Chunk, columns: ColumnMap, options: ReadOptions, skipped: Skipped) -> tuple[Chunk, np.ndarray]:
    """The chunk less its rows without a user id, an item id or a readable time (counted in `skipped`),
    and the times of the rows kept."""
    seconds = to_seconds(chunk, columns.time, options.time_unit, low=0.0, lenient=True, text=options.time_text)
    no_time = np.isnan(seconds)
    no_id = np.zeros(len(chunk), bool)
    for name in (columns.user, columns.item):
        no_id |= np.fromiter((not v or v.isspace() for v in chunk.columns[name]), bool, len(chunk))
    for reason, rows in (("no user or item id", no_id), ("time not readable", no_time & ~no_id)):
        if rows.any():
            skipped.add(reason, [chunk.line_of(i) for i in np.flatnonzero(rows)])
    drop = no_id | no_time
    return (chunk.without(drop), seconds[~drop]) if drop.any() else (chunk, seconds)


DROP = "drop"  # an --event-map target: rows of that event are left out (and counted)
DROPPED = -1  # _events' code of such a row


def checked_event_map(mapping) -> dict[str, str]:
    """{file's name: edgerec event or "drop"}, names compared as the events are (stripped, lower case)."""
    if not isinstance(mapping, dict) or not mapping:
        raise ConfigError("--event-map needs pairs NAME=EVENT, e.g. 'listen=play,unlike=drop'")
    out = {}
    for name, target in mapping.items():
        key, value = str(name).strip().lower(), str(target).strip().lower()
        if not key:
            raise ConfigError(f"--event-map has an empty event name (before '={target}'); write NAME=EVENT")
        if value not in EVENT_CODE and value != DROP:
            raise ConfigError(f"--event-map maps {name!r} to {target!r}; map each name to one of "
                              f"{', '.join(EVENTS)}, or to {DROP} to leave its rows out")
        if out.setdefault(key, value) != value:  # names compare in lower case: 'Listen' is 'listen'
            raise ConfigError(f"--event-map maps {key!r} twice, to {out[key]!r} and to {value!r} (names are "
                              "compared in lower case); keep one")
    return out


def parse_event_map(text: str) -> dict[str, str]:
    """'listen=play, unlike=drop' -> {"listen": "play", "unlike": "drop"} (checked; a name given twice is
    refused, it kept the last silently)."""
    return checked_event_map(option_pairs(text, "--event-map", "NAME=EVENT", "listen=play,like=like,unlike=drop"))


def _events(chunk: Chunk, column: str | None, default: str | None, event_map: dict[str, str] | None = None,
            dropped: Counter | None = None, defaulted: Counter | None = None,
            counted: np.ndarray | None = None) -> np.ndarray:
    """Event codes of a chunk; DROPPED where --event-map drops the name (counted in `dropped` by name); an
    empty cell takes `default` (counted in `defaulted`) and without one is refused. `counted`: the rows the
    counts cover (the sample's), all of them when None."""
    if column is None:
        return np.full(len(chunk), EVENT_CODE[default or "play"], np.int8)
    out = np.empty(len(chunk), np.int8)
    event_map = event_map or {}
    for i, name in enumerate(chunk.columns[column]):
        key = name.strip().lower()
        mapped = event_map.get(key, key)
        if mapped == DROP:
            out[i] = DROPPED
            dropped[key] += counted is None or bool(counted[i])
            continue
        if not key and default is not None:
            out[i] = EVENT_CODE[default]
            defaulted["rows"] += counted is None or bool(counted[i])
            continue
        code = EVENT_CODE.get(mapped)
        if not key:  # a JSON line without the field reads as an empty cell too
            raise DataError(f"no event on this row: its {column!r} field is empty or missing while other rows have "
                            "one; name the event of such rows with --default-event (e.g. play), or fill them in",
                            chunk.path, chunk.line_of(i))
        if code is None:
            raise DataError(
                f"unknown event {name!r}; expected one of {', '.join(EVENTS)}: rename the file's events to these, "
                "or map them with --event-map (e.g. 'listen=play,unlike=drop'; every event but a skip counts as "
                "consuming the item)", chunk.path, chunk.line_of(i)
            )
        out[i] = code
    return out


def _devices(chunk: Chunk, column: str | None, unknown: dict[str, int], counted: np.ndarray) -> np.ndarray:
    """Device codes, -1 for an empty cell or a name the device does not know (counted in `unknown` for the
    `counted` rows: those imported, not those the sample or --event-map left out)."""
    if column is None:
        return np.full(len(chunk), -1, np.int8)
    names = [v.strip().lower() for v in chunk.columns[column]]
    for name, count in zip(names, counted):
        if count and name and name not in DEVICE_CODE:
            unknown[name] = unknown.get(name, 0) + 1
    return np.fromiter((DEVICE_CODE.get(name, -1) for name in names), np.int8, len(names))


def import_dataset(fmt: str, path: str | Path, *, columns: ColumnMap | None = None,
                   items: str | Path | None = None, options: ReadOptions | None = None,
                   items_encoding: str | None = None, item_columns: dict[str, str] | None = None,
                   items_delimiter: str | None = None, items_header: tuple[str, ...] | None = None) -> Dataset:
    """Read data in any supported FORMAT into the neutral model. For the `items` table: `items_encoding` and
    `items_delimiter` when they are not the log's, `item_columns` {field: column} when its columns are not
    named as edgerec's fields (the id column defaults to the log's item column), `items_header` the names of
    its columns when it has no header line."""
    if fmt in RELEASES:
        from edgerec.data.releases import import_release  # it reads through this module

        return import_release(fmt, path, columns, options, items=items, item_columns=item_columns,
                              items_delimiter=items_delimiter, items_header=items_header)
    if fmt not in ("csv", "parquet", "jsonl"):
        raise DataError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "jsonl" and not is_json_lines(data_files(path)[0]):
        raise ConfigError(f"FORMAT jsonl reads files named {', '.join(JSON_SUFFIXES)} (or with .gz after it); "
                          f"rename {Path(path).name}, or pass the format it is in")
    given = [flag for flag, value in (("--items-encoding", items_encoding), ("--item-columns", item_columns),
                                      ("--items-delimiter", items_delimiter), ("--items-header", items_header),
                                      ("--duration-unit", options and options.duration_unit != "s")) if value]
    if given and not items:
        raise ConfigError(f"{' and '.join(given)} {'describe' if len(given) > 1 else 'describes'} the --items file; "
                          "pass it with --items")
    options = options or ReadOptions()
    if items_header is not None:
        check_column_names(items_header, "--items-header", "item_id,title,tags")
    item_options = replace(options, encoding=items_encoding or options.encoding,
                           delimiter=items_delimiter or options.delimiter, header=items_header)
    log_item = (columns or ColumnMap()).item
    catalog, unread = read_item_table(items, item_options, ItemColumns(item_columns or {}, log_item)) if items \
        else (None, [])
    dataset = read_interactions(path, columns, catalog, options, name_unread=True, hash_item_order_ties=True)
    dataset.meta = dict(dataset.meta, source=source_name(path), format=fmt)
    items_read = [*unread, *comma_tags_warning(catalog, options.tag_separator),
                  *item_warnings(catalog, options.duration_unit)] if catalog else []
    return with_warnings(dataset, [*items_read, *bidi_ids_warning(dataset.catalog.item_ids)])


def with_warnings(dataset: Dataset, warnings: list[str]) -> Dataset:
    if warnings:
        dataset.meta = dict(dataset.meta, warnings=[*dataset.meta.get("warnings", []), *warnings])
    return dataset
