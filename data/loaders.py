"""Loaders for data a user already has: any CSV/Parquet log, and MovieLens files.

Each loader streams its file in chunks, maps external ids to dense codes and
returns the neutral model of `schema.py`. Sampling by user is decided from a
hash of the user id, so it works while streaming and is the same on every run.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgerec.data.schema import DEVICE_CODE, EVENT_CODE, EVENTS, Catalog, Dataset, Interactions
from edgerec.data.tables import (
    DEFAULT_CHUNK_ROWS,
    Chunk,
    read_chunks,
    read_header,
    to_float,
    to_int,
    to_timestamp,
)
from edgerec.errors import DataError

FORMATS = ("csv", "parquet", "ml-100k", "ml-1m", "ml-latest")


@dataclass
class ColumnMap:
    """Which column of the user's file holds what. Optional columns may be None."""

    user: str = "user_id"
    item: str = "item_id"
    time: str = "timestamp"
    event: str | None = "event"
    value: str | None = "value"
    device: str | None = "device"
    default_event: str = "play"


@dataclass
class ReadOptions:
    delimiter: str = ","
    header: tuple[str, ...] | None = None  # for files without a header line
    encoding: str = "utf-8"
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    sample_users: float | None = None  # keep this fraction of users (0, 1]
    seed: int = 0


def keep_user(user_id: str, fraction: float | None, seed: int) -> bool:
    if fraction is None or fraction >= 1.0:
        return True
    return zlib.crc32(f"{seed}:{user_id}".encode()) < fraction * 2**32


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


def read_interactions(
    path: str | Path,
    columns: ColumnMap | None = None,
    catalog: Catalog | None = None,
    options: ReadOptions | None = None,
) -> Dataset:
    """Read an interaction log; with `catalog`, every item must be in it.

    Without a catalog, a bare one is built from the ids seen.
    """
    columns = columns or ColumnMap()
    options = options or ReadOptions()
    present = set(options.header or read_header(path, delimiter=options.delimiter, encoding=options.encoding))
    optional = {name: getattr(columns, name) for name in ("event", "value", "device")}
    optional = {k: v for k, v in optional.items() if v is not None and v in present}
    wanted = [columns.user, columns.item, columns.time, *optional.values()]

    users = _Codes()
    items = _Codes(catalog.index, catalog.item_ids) if catalog is not None else _Codes()
    parts: list[Interactions] = []
    for chunk in read_chunks(
        path, wanted, delimiter=options.delimiter, header=options.header,
        chunk_rows=options.chunk_rows, encoding=options.encoding,
    ):
        user_ids, item_ids = chunk.columns[columns.user], chunk.columns[columns.item]
        for name, values in ((columns.user, user_ids), (columns.item, item_ids)):
            if "" in values:
                bad = values.index("")
                raise DataError(f"column '{name}' is empty", chunk.path, chunk.line_of(bad))
        if catalog is not None:
            index = catalog.index
            for i, v in enumerate(item_ids):
                if v not in index:
                    raise DataError(
                        f"item {v!r} is not in the item table; add it there or drop the event",
                        chunk.path, chunk.line_of(i),
                    )
        timestamp = to_timestamp(chunk, columns.time)
        event = _events(chunk, optional.get("event"), columns.default_event)
        value = to_float(chunk, optional["value"]) if "value" in optional else np.ones(len(chunk), np.float32)
        device = _devices(chunk, optional.get("device"))
        # sample after parsing, so errors above name the true line
        keep = np.fromiter((keep_user(u, options.sample_users, options.seed) for u in user_ids), bool, len(chunk))
        if not keep.any():
            continue
        if not keep.all():
            user_ids = [u for u, k in zip(user_ids, keep) if k]
            item_ids = [v for v, k in zip(item_ids, keep) if k]
            timestamp, event, value, device = timestamp[keep], event[keep], value[keep], device[keep]
        parts.append(Interactions(users.encode(user_ids), items.encode(item_ids), timestamp, event, value, device))
    if not parts:
        raise DataError("no events left (the sample kept no user); raise --sample", str(path))
    log = Interactions(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                         ("user", "item", "timestamp", "event", "value", "device")))
    if catalog is None:
        catalog = Catalog.bare(items.ids)
    return Dataset(catalog, log.sorted_by_time(), users.ids, meta={"source": str(path)})


def _events(chunk: Chunk, column: str | None, default: str) -> np.ndarray:
    if column is None:
        return np.full(len(chunk), EVENT_CODE[default], np.int8)
    out = np.empty(len(chunk), np.int8)
    for i, name in enumerate(chunk.columns[column]):
        code = EVENT_CODE.get(name.strip().lower())
        if code is None:
            raise DataError(
                f"unknown event {name!r}; expected one of {', '.join(EVENTS)}", chunk.path, chunk.line_of(i)
            )
        out[i] = code
    return out


def _devices(chunk: Chunk, column: str | None) -> np.ndarray:
    if column is None:
        return np.full(len(chunk), -1, np.int8)
    return np.fromiter((DEVICE_CODE.get(v.strip().lower(), -1) for v in chunk.columns[column]), np.int8, len(chunk))


def read_catalog(path: str | Path, options: ReadOptions | None = None, id_col: str = "item_id") -> Catalog:
    """Read an item table in the neutral layout (only `item_id` is required)."""
    options = options or ReadOptions()
    from edgerec.data.schema import ITEM_TEXT_COLUMNS

    present = read_header(path, delimiter=options.delimiter, encoding=options.encoding)
    wanted = [id_col] + [c for c in (*ITEM_TEXT_COLUMNS, "tags", "duration", "release_ts", "episode") if c in present]
    ids: list[str] = []
    text: dict[str, list[str]] = {c: [] for c in ITEM_TEXT_COLUMNS if c in present}
    tags: list[tuple[str, ...]] = []
    numbers: dict[str, list[np.ndarray]] = {"duration": [], "release_ts": [], "episode": []}
    for chunk in read_chunks(path, wanted, delimiter=options.delimiter, chunk_rows=options.chunk_rows,
                             encoding=options.encoding):
        ids.extend(chunk.columns[id_col])
        for c in text:
            text[c].extend(chunk.columns[c])
        if "tags" in chunk.columns:
            tags.extend(tuple(t for t in v.split("|") if t) for v in chunk.columns["tags"])
        if "duration" in chunk.columns:
            numbers["duration"].append(to_float(chunk, "duration"))
        if "release_ts" in chunk.columns:
            numbers["release_ts"].append(to_timestamp(chunk, "release_ts"))
        if "episode" in chunk.columns:
            numbers["episode"].append(to_int(chunk, "episode", np.int32))
    joined = {k: np.concatenate(v) if v else None for k, v in numbers.items()}
    catalog = Catalog(ids, text, tags, joined["duration"], joined["release_ts"], joined["episode"])
    catalog.index  # noqa: B018 -- raises on duplicate ids now, not at first use
    return catalog


# ------------------------------------------------------------------- MovieLens

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def _year_ts(year: int | None) -> int:
    return int(datetime(year, 1, 1, tzinfo=timezone.utc).timestamp()) if year else 0


def _movie_catalog(ids: list[str], titles: list[str], genres: list[list[str]]) -> Catalog:
    release, clean_titles = [], []
    for title in titles:
        match = _YEAR.search(title)
        release.append(_year_ts(int(match.group(1))) if match else 0)
        clean_titles.append(_YEAR.sub("", title).strip())
    n = len(ids)
    text = {
        "title": clean_titles,
        "description": [f"{t}. A {' / '.join(g).lower() or 'film'} film." for t, g in zip(clean_titles, genres)],
        "genre": [g[0].lower() if g else "" for g in genres],
        "modality": ["film"] * n,
    }
    tags = [tuple(x.lower() for x in g) for g in genres]
    return Catalog(ids, text, tags, release_ts=np.asarray(release, np.int64))


def _read_movielens_items(path: Path, delimiter: str, header: tuple[str, ...] | None, encoding: str,
                          genres_of: Callable[[Chunk, int], list[str]], id_col: str, title_col: str) -> Catalog:
    ids, titles, genres = [], [], []
    for chunk in read_chunks(path, None, delimiter=delimiter, header=header, encoding=encoding):
        ids.extend(chunk.columns[id_col])
        titles.extend(chunk.columns[title_col])
        genres.extend(genres_of(chunk, i) for i in range(len(chunk)))
    return _movie_catalog(ids, titles, genres)


def load_movielens(fmt: str, folder: str | Path, options: ReadOptions | None = None) -> Dataset:
    """MovieLens 100K (`u.data`, `u.item`), 1M (`ratings.dat`, `movies.dat`) or `ratings.csv`/`movies.csv`."""
    folder = Path(folder)
    options = options or ReadOptions()
    # a rating is a "rate" event whose value is the rating
    cols = ColumnMap(user="user", item="item", time="timestamp", event=None, value="rating", device=None,
                     default_event="rate")
    if fmt == "ml-100k":
        item_header = ("item", "title", "release", "video_release", "url", *ML100K_GENRES)
        catalog = _read_movielens_items(
            folder / "u.item", "|", item_header, "latin-1",
            lambda c, i: [g for g in ML100K_GENRES if c.columns[g][i] == "1"], "item", "title",
        )
        rating_opts = ReadOptions("\t", ("user", "item", "rating", "timestamp"), "utf-8",
                                  options.chunk_rows, options.sample_users, options.seed)
        ratings = folder / "u.data"
    elif fmt == "ml-1m":
        catalog = _read_movielens_items(
            folder / "movies.dat", "::", ("item", "title", "genres"), "latin-1",
            lambda c, i: [g for g in c.columns["genres"][i].split("|") if g], "item", "title",
        )
        rating_opts = ReadOptions("::", ("user", "item", "rating", "timestamp"), "latin-1",
                                  options.chunk_rows, options.sample_users, options.seed)
        ratings = folder / "ratings.dat"
    elif fmt == "ml-latest":
        catalog = _read_movielens_items(
            folder / "movies.csv", ",", None, "utf-8",
            lambda c, i: [g for g in c.columns["genres"][i].split("|") if g and g != "(no genres listed)"],
            "movieId", "title",
        )
        cols = ColumnMap(user="userId", item="movieId", time="timestamp", event=None, value="rating",
                         device=None, default_event="rate")
        rating_opts = ReadOptions(",", None, "utf-8", options.chunk_rows, options.sample_users, options.seed)
        ratings = folder / "ratings.csv"
    else:
        raise DataError(f"unknown MovieLens format {fmt!r}; use ml-100k, ml-1m or ml-latest")
    dataset = read_interactions(ratings, cols, catalog, rating_opts)
    dataset.meta = {"source": str(folder), "format": fmt}
    return dataset


def import_dataset(fmt: str, path: str | Path, *, columns: ColumnMap | None = None,
                   items: str | Path | None = None, options: ReadOptions | None = None) -> Dataset:
    """Read data in any supported FORMAT into the neutral model."""
    if fmt.startswith("ml-"):
        return load_movielens(fmt, path, options)
    if fmt not in ("csv", "parquet"):
        raise DataError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    catalog = read_catalog(items, options) if items else None
    dataset = read_interactions(path, columns, catalog, options)
    dataset.meta = {"source": str(path), "format": fmt}
    return dataset
