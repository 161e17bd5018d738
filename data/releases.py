"""Public data sets read in their own layout (MovieLens, the Netflix Prize, Spotify's Million Playlist
Dataset, 30Music): where each keeps its log and its items, read through the log reader of loaders.py.
Options that describe a file of the user's own layout are refused for them, never ignored."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgerec.data.chunk_checks import ReadOptions, check_ids
from edgerec.data.film_items import decoded_title, film_line, item_file_encoding, year_ts
from edgerec.data.idomaar import HEADER as IDOMAAR_HEADER
from edgerec.data.idomaar import event_chunks, idomaar_catalog, idomaar_files
from edgerec.data.item_import import indexed, item_warnings
from edgerec.data.item_text import TextRepairs
from edgerec.data.loaders import (
    RELEASES,
    TIES_HASHED,
    ColumnMap,
    keep_user,
    read_interactions,
    source_name,
    tie_hash,
    with_warnings,
)
from edgerec.data.mpd import HEADER as MPD_HEADER
from edgerec.data.mpd import mpd_catalog, mpd_chunks, mpd_files
from edgerec.data.netflix import HEADER, RATINGS, netflix_catalog, netflix_chunks, netflix_files
from edgerec.data.schema import EVENT_CODE, Catalog, Dataset, Interactions
from edgerec.data.tables import Chunk, Skipped, read_chunks, read_header, time_unit
from edgerec.errors import ConfigError, DataError

__all__ = ["RELEASES", "import_release", "load_movielens"]


def import_release(fmt: str, path: str | Path, columns: ColumnMap | None, options: ReadOptions | None, *,
                   items=None, item_columns=None, items_delimiter=None, items_header=None) -> Dataset:
    """Read the release `fmt` at `path`; the other arguments are import_dataset's, refused when given."""
    skip_below = columns.skip_below if columns is not None else None
    if skip_below is not None and fmt != "30music":  # 30Music's plays have shares played; the others none
        holds = "tracks added to playlists" if fmt == "mpd" else "ratings"
        raise ConfigError(f"{fmt} holds {holds}, not plays; --skip-below is for FORMAT csv, parquet, jsonl or 30music")
    if skip_below is not None and not 0 < skip_below <= 1:
        raise ConfigError(f"--skip-below for 30music compares the share of the track played, from 0 to 1 (0.3: a "
                          f"play of under a third of the track is a skip); got {skip_below:g}")
    if skip_below is not None:
        columns = replace(columns, skip_below=None)  # load_30music compares the shares it computes
    given = [flag for flag, value in (("--event-map", columns and columns.event_map),
                                      ("--value-scale", columns and columns.value_scale),
                                      ("--time-format", options and options.time_format),
                                      ("--time-zone", options and options.time_zone),
                                      ("--time-unit", fmt in ("netflix", "mpd", "30music") and options and time_unit(options.time_unit) != (1, 1)),
                                      ("--no-time", columns and columns.time is None),
                                      ("--item-list-sep", columns and columns.item_list_sep)) if value]
    given += _changed_options(columns, options)
    if given:
        raise ConfigError(f"{fmt} is read with its own columns; {' and '.join(given)} "
                          f"{'are' if len(given) > 1 else 'is'} for FORMAT csv, parquet or jsonl")
    flags = [flag for flag, value in (("--items", items), ("--item-columns", item_columns),
                                      ("--items-delimiter", items_delimiter),
                                      ("--items-header", items_header),
                                      ("--duration-unit", options and options.duration_unit != "s")) if value]
    if flags:
        home = {"netflix": "its movie_titles file", "mpd": "the playlists' tracks",
                "30music": "its entities folder"}.get(fmt, "the MovieLens folder")
        raise ConfigError(f"{fmt} reads its items from {home}; {' and '.join(flags)} "
                          f"{'are' if len(flags) > 1 else 'is'} for FORMAT csv, parquet or jsonl")
    if fmt == "30music":
        dataset = load_30music(path, options, skip_below)
    else:
        load = {"netflix": load_netflix, "mpd": load_mpd}.get(fmt)
        dataset = load(path, options) if load else load_movielens(fmt, path, options)
    return with_warnings(dataset, item_warnings(dataset.catalog))


def _changed_options(columns: ColumnMap | None, options: ReadOptions | None) -> list[str]:
    """The options of a user's own file given for a release read in its own layout, which would ignore them."""
    columns, options = columns or ColumnMap(), options or ReadOptions()
    plain_columns, plain_options = ColumnMap(), ReadOptions()
    pairs = [("--user-col", "user"), ("--item-col", "item"), ("--event-col", "event"), ("--value-col", "value"),
             ("--default-event", "default_event")]
    flags = [flag for flag, name in pairs if getattr(columns, name) != getattr(plain_columns, name)]
    if columns.time not in (plain_columns.time, None):  # None: --no-time, refused with its own words above
        flags.append("--time-col")
    reads = [("--delimiter", "delimiter"), ("--columns", "header"), ("--encoding", "encoding"),
             ("--no-quoting", "quoted"), ("--tag-sep", "tag_separator"), ("--missing-ids", "missing_ids")]
    return flags + [flag for flag, name in reads if getattr(options, name) != getattr(plain_options, name)]


ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)
_YEAR = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?\s*)?\)\s*$")  # (1995), or a series' (2006-2007)


def _ml100k_genres(chunk: Chunk, row: int) -> list[str]:
    """The genres flagged 1 in a u.item row; a flag other than 0 or 1 lost its genre silently."""
    flags = [chunk.columns[g][row].strip() for g in ML100K_GENRES]
    bad = next((g for g, f in zip(ML100K_GENRES, flags) if f not in ("0", "1")), None)
    if bad is not None:
        raise DataError(f"the genre flag of {bad!r} is {chunk.columns[bad][row]!r}; u.item flags each genre with 0 "
                        "or 1: correct that line", chunk.path, chunk.line_of(row))
    return [g for g, f in zip(ML100K_GENRES, flags) if f == "1" and g != "unknown"]  # a placeholder, no genre


def _date_ts(text: str) -> int:
    """Epoch seconds of a MovieLens 100K release date (`01-Jan-1995`); 0 when blank or not a date."""
    try:
        return int(datetime.strptime(text.strip(), "%d-%b-%Y").replace(tzinfo=timezone.utc).timestamp())
    except ValueError:
        return 0


def _movie_catalog(ids: list[str], titles: list[str], genres: list[list[str]],
                   dates: list[str] | None = None) -> Catalog:
    """The title's year gives the release time; a title without one falls back to the file's date column."""
    release, clean_titles = [], []
    for row, title in enumerate(titles):
        match = _YEAR.search(title)
        release.append(year_ts(int(match.group(1))) if match else _date_ts(dates[row]) if dates else 0)
        clean_titles.append(_YEAR.sub("", title).strip())
    n = len(ids)
    text = {
        "title": clean_titles,
        "description": [film_line(t, g) for t, g in zip(clean_titles, genres)],
        "genre": [g[0].lower() if g else "" for g in genres],
        "modality": ["film"] * n,
    }
    tags = [tuple(x.lower() for x in g) for g in genres]
    return Catalog(ids, text, tags, release_ts=np.asarray(release, np.int64))


def _read_movielens_items(path: Path, delimiter: str, header: tuple[str, ...] | None,
                          genres_of: Callable[[Chunk, int], list[str]], id_col: str, title_col: str,
                          quoted: bool = True, date_col: str | None = None) -> tuple[Catalog, list[str]]:
    """The films of a MovieLens item file, and the warnings of the titles and genres repaired (a release's
    file is not the user's to edit: text the device would refuse is repaired, not refused)."""
    ids, titles, genres, dates = [], [], [], []
    encoding = item_file_encoding(path)
    for chunk in read_chunks(path, None, delimiter=delimiter, header=header, encoding=encoding, quoted=quoted):
        check_ids(chunk, id_col)
        ids.extend(chunk.columns[id_col])
        titles.extend(chunk.columns[title_col])
        genres.extend(genres_of(chunk, i) for i in range(len(chunk)))
        dates.extend(chunk.columns[date_col] if date_col else ())
    if encoding == "latin-1":
        titles = [decoded_title(t) for t in titles]
    first = 2 if header is None else 1  # the file line of row 0
    repairs, where = TextRepairs(), lambda row: f"{path.name}:{row + first}"
    titles = repairs.repaired(titles, "title", where, "the title")
    genres = repairs.repaired_tags(genres, where, "a genre")
    return indexed(_movie_catalog(ids, titles, genres, dates), path), repairs.warnings()


ML_FILES = {"ml-100k": ("u.data", "u.item"), "ml-1m": ("ratings.dat", "movies.dat"),
            "ml-latest": ("ratings.csv", "movies.csv")}
ML_RATINGS = (0.5, 5.0)  # stars, in every MovieLens release


NO_GENRES = "(no genres listed)"


def _listed_genres(chunk: Chunk, row: int) -> list[str]:
    """A movies file's `|`-joined genres; '(no genres listed)' (ml-latest, and ML-10M read as ml-1m) is none."""
    return [g for g in chunk.columns["genres"][row].split("|") if g and g != NO_GENRES]


def _check_movielens_folder(fmt: str, folder: Path) -> None:
    needed = ML_FILES[fmt]
    if not folder.is_dir():
        raise DataError(f"{fmt} reads a folder holding {' and '.join(needed)}; unzip the download and pass "
                        "its folder", str(folder))
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        other = [f for f, names in ML_FILES.items() if all((folder / n).is_file() for n in names)]
        hint = f"; the folder holds {other[0]} files: pass FORMAT {other[0]}" if other else ""
        raise DataError(f"no {' or '.join(missing)} here; {fmt} needs {' and '.join(needed)}{hint}", str(folder))


def _check_movielens_header(path: Path, needed: tuple[str, ...]) -> None:
    """The columns ml-latest reads by name (a missing one was a KeyError for movies.csv, and for ratings.csv
    a hint at --user-col, which MovieLens formats do not read)."""
    present = read_header(path, encoding=item_file_encoding(path))  # movies.csv may be latin-1, as the others
    missing = [c for c in needed if c not in present]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}; ml-latest reads {path.name} with the header line "
                        f"GroupLens ships ({','.join(needed)}): restore it, or import a file of your own layout "
                        "with FORMAT csv and --user-col/--item-col/--time-col", str(path), 1)


def load_movielens(fmt: str, folder: str | Path, options: ReadOptions | None = None) -> Dataset:
    """MovieLens 100K (`u.data`, `u.item`), 1M (`ratings.dat`, `movies.dat`) or `ratings.csv`/`movies.csv`."""
    folder = Path(folder)
    options = options or ReadOptions()
    if fmt not in ML_FILES:
        raise DataError(f"unknown MovieLens format {fmt!r}; use ml-100k, ml-1m or ml-latest")
    _check_movielens_folder(fmt, folder)
    # a rating is a "rate" event whose value is the rating
    cols = ColumnMap(user="user", item="item", time="timestamp", event=None, value="rating", device=None,
                     default_event="rate", value_range=ML_RATINGS)
    if fmt == "ml-100k":
        item_header = ("item", "title", "release", "video_release", "url", *ML100K_GENRES)
        catalog, warnings = _read_movielens_items(
            folder / "u.item", "|", item_header,
            _ml100k_genres, "item", "title", quoted=False,
            date_col="release",
        )
        rating_opts = ReadOptions("\t", ("user", "item", "rating", "timestamp"), "utf-8",
                                  options.chunk_rows, options.sample_users, options.seed, options.time_unit,
                                  quoted=False, skip_bad_rows=options.skip_bad_rows,
                                  header_from="ml-100k's u.data")
        ratings = folder / "u.data"
    elif fmt == "ml-1m":
        catalog, warnings = _read_movielens_items(
            folder / "movies.dat", "::", ("item", "title", "genres"),
            _listed_genres, "item", "title",
        )
        rating_opts = ReadOptions("::", ("user", "item", "rating", "timestamp"), "utf-8",  # digits; a mark skipped
                                  options.chunk_rows, options.sample_users, options.seed, options.time_unit,
                                  skip_bad_rows=options.skip_bad_rows,
                                  header_from="ml-1m's ratings.dat")
        ratings = folder / "ratings.dat"
    elif fmt == "ml-latest":
        _check_movielens_header(folder / "movies.csv", ("movieId", "title", "genres"))
        _check_movielens_header(folder / "ratings.csv", ("userId", "movieId", "rating", "timestamp"))
        catalog, warnings = _read_movielens_items(
            folder / "movies.csv", ",", None,
            _listed_genres,
            "movieId", "title",
        )
        cols = ColumnMap(user="userId", item="movieId", time="timestamp", event=None, value="rating",
                         device=None, default_event="rate", value_range=ML_RATINGS)
        rating_opts = ReadOptions(",", None, "utf-8", options.chunk_rows, options.sample_users, options.seed,
                                  options.time_unit, skip_bad_rows=options.skip_bad_rows)
        ratings = folder / "ratings.csv"
    dataset = read_interactions(ratings, cols, catalog, rating_opts)
    _refuse_rated_twice(dataset, ratings, cols, rating_opts)
    dataset.meta = dict(dataset.meta, source=source_name(folder), format=fmt)  # the name only: no host path
    log = dataset.interactions
    if fmt == "ml-latest" and ((log.user[1:] == log.user[:-1]) & (log.timestamp[1:] == log.timestamp[:-1])).any():
        # ratings.csv is sorted by user, then movie: a second's ratings are in id order, and the last one
        # the highest id (ML-100K/1M's files are not, and their order is kept: it holds information)
        dataset.interactions = _same_day_shuffled(dataset)
        dataset.meta["ties"] = TIES_HASHED
    if warnings:
        dataset.meta["warnings"] = [*dataset.meta.get("warnings", []), *warnings]
    return dataset


PAIR_BLOCK = 1 << 22  # events whose (user, item) pairs repeated_pair sorts at a time: 32 MB of int64 keys


def repeated_pair(log: Interactions, items: int, block: int = PAIR_BLOCK) -> tuple[int, int] | None:
    """The (user, item) codes of a pair that comes twice in a log sorted by user (as read_interactions
    returns it), or None. The users' events are taken a block of about `block` at a time, never splitting
    a user, each block's pairs as int64 keys sorted in place: the memory of one block (a user's events when
    they are more), not of the log (ml-25m: 25M ratings, 200 MB of keys more, then twice that to sort)."""
    user, item, start = log.user, log.item, 0
    items = max(items, 1)
    while start < len(user):
        end = min(start + block, len(user))
        if end < len(user):  # on to the end of the last user's events
            end = int(np.searchsorted(user, user[end - 1], side="right"))
        key = (user[start:end] - user[start]).astype(np.int64)
        key *= items
        key += item[start:end]
        key.sort()
        same = np.flatnonzero(key[1:] == key[:-1])
        if same.size:
            found = int(key[same[0]])
            return int(user[start]) + found // items, found % items
        start = end
    return None


def _refuse_rated_twice(dataset: Dataset, ratings: Path, columns: ColumnMap, options: ReadOptions) -> None:
    """A MovieLens release rates each movie once per user; a second rating of a pair (a file joined with
    itself, a block copied) is refused at its line, as FORMAT netflix refuses a customer rating a film twice
    (netflix_chunks, within each film's block; MovieLens files are not grouped by movie, and a set of every
    pair seen would cost gigabytes on ml-25m): found in the log read (repeated_pair), then its two lines
    looked up in the file (only then: the file is read once more)."""
    pair = repeated_pair(dataset.interactions, len(dataset.catalog.item_ids))
    if pair is None:
        return
    user_id, item_id = dataset.user_ids[pair[0]], dataset.catalog.item_ids[pair[1]]
    lines: list[int] = []
    for chunk in read_chunks(ratings, [columns.user, columns.item], delimiter=options.delimiter,
                             header=options.header, chunk_rows=options.chunk_rows, encoding=options.encoding,
                             quoted=options.quoted, skipped=Skipped() if options.skip_bad_rows else None,
                             header_option=options.header_from):
        users, items = chunk.columns[columns.user], chunk.columns[columns.item]
        lines += [chunk.line_of(i) for i, (u, m) in enumerate(zip(users, items)) if u == user_id and m == item_id]
        if len(lines) >= 2:
            break
    first = f" (first at line {lines[0]})" if len(lines) >= 2 else ""
    raise DataError(f"a user rates movie {item_id} a second time{first}: a MovieLens release holds one rating of a "
                    "movie per user. Is a file joined with itself, or a block copied? Keep one rating",
                    str(ratings), lines[1] if len(lines) >= 2 else None)


def load_netflix(path: str | Path, options: ReadOptions | None = None) -> Dataset:
    """The Netflix Prize ratings (netflix.py) as `rate` events of 1 to 5 stars, dated by day, a customer's
    ratings of one day in a fixed order drawn from a hash (_same_day_shuffled). With no titles file beside
    them, the films are bare ids."""
    options = options or ReadOptions()
    files, titles = netflix_files(path)
    catalog, warnings = netflix_catalog(titles) if titles is not None else (None, [])
    catalog = indexed(catalog, titles) if catalog is not None else None
    columns = ColumnMap(user="user", item="item", time="date", event=None, value="rating", device=None,
                        default_event="rate", value_range=RATINGS)
    read = ReadOptions(",", HEADER, "utf-8", options.chunk_rows, options.sample_users, options.seed,
                       skip_bad_rows=options.skip_bad_rows)
    dataset = read_interactions(path, columns, catalog, read,
                                chunks=lambda skipped: netflix_chunks(files, options.chunk_rows, skipped),
                                unknown_items=f"are {titles.name if titles else 'the titles'} and the ratings from "
                                "the same download?")
    dataset.interactions = _same_day_shuffled(dataset)
    dataset.meta = dict(dataset.meta, source=source_name(path), format="netflix",  # the name only: no host path
                        ties="a customer's ratings of one day in a fixed order drawn from a hash of customer and "
                             "film (the files order them by film)")
    if titles is None:
        warnings = ["no movie_titles.csv beside the ratings: the films have ids but no titles (put the file in "
                    "the ratings' folder and import the folder)"]
    if warnings:
        dataset.meta["warnings"] = [*dataset.meta.get("warnings", []), *warnings]
    return dataset


def load_mpd(path: str | Path, options: ReadOptions | None = None) -> Dataset:
    """Spotify's Million Playlist Dataset (mpd.py): each playlist a user, each of its tracks a `like` at the
    playlist's modified_at, in playlist order; the catalog is the tracks the kept playlists hold."""
    options = options or ReadOptions()
    files = mpd_files(path)
    tracks: dict = {}
    columns = ColumnMap(user="user", item="item", time="time", event=None, value=None, device=None,
                        default_event="like")
    read = ReadOptions(",", MPD_HEADER, "utf-8", options.chunk_rows, options.sample_users, options.seed,
                       skip_bad_rows=options.skip_bad_rows)
    dataset = read_interactions(
        path, columns, None, read,
        chunks=lambda skipped: mpd_chunks(files, options.chunk_rows, tracks,
                                          lambda pid: keep_user(pid, options.sample_users, options.seed), skipped))
    dataset.catalog, warnings = mpd_catalog(dataset.catalog.item_ids, tracks)
    dataset.meta = dict(dataset.meta, source=source_name(path), format="mpd",  # the name only: no host path
                        users_are="playlists (a track added to one is a like, in playlist order)")
    return with_warnings(dataset, warnings)


def load_30music(path: str | Path, options: ReadOptions | None = None, skip_below: float | None = None) -> Dataset:
    """30Music's play events (idomaar.py) as plays whose value is the share of the track played (1 when the
    playtime or the duration is unknown), a play of a known share below `skip_below` a skip; the catalog is
    the tracks played, named from the entity files."""
    options = options or ReadOptions()
    events, tracks, persons = idomaar_files(path)
    columns = ColumnMap(user="user", item="item", time="time", event=None, value="playtime", device=None,
                        default_event="play")
    read = ReadOptions("\t", IDOMAAR_HEADER, "utf-8", options.chunk_rows, options.sample_users, options.seed,
                       skip_bad_rows=options.skip_bad_rows)
    dataset = read_interactions(path, columns, None, read,
                                chunks=lambda skipped: event_chunks(events, options.chunk_rows, skipped))
    catalog, seconds, warnings = idomaar_catalog(dataset.catalog.item_ids, tracks, persons)
    log = dataset.interactions
    length = seconds[log.item]
    known = (log.value >= 0) & (length > 0)  # idomaar.py reads an unknown playtime as -1
    log.value = np.where(known, log.value / np.where(known, length, 1), 1.0).astype(np.float32)
    dataset.catalog = catalog
    dataset.meta = dict(dataset.meta, source=source_name(path), format="30music",  # the name only: no host path
                        value="the share of the track played (playtime / duration; 1 when either is unknown)")
    if skip_below is not None:
        short = known & (log.value < skip_below)
        log.event[short] = EVENT_CODE["skip"]
        dataset.meta["plays_as_skips"] = {"below": skip_below, "events": int(short.sum())}
    return with_warnings(dataset, warnings)


def _same_day_shuffled(dataset: Dataset) -> Interactions:
    """The log with each user's events of one time (a Netflix customer's day, an ml-latest second) in an
    order drawn from a hash of (user, item): the files list them by item, so the stable sort made the
    highest id of a user's last time their test item, every time (93% of Netflix customers rate several
    films on their last day). The hash is of the ids as written, so a sample keeps the full import's order."""
    log = dataset.interactions
    key = tie_hash(log, dataset.user_ids, dataset.catalog.item_ids)
    return log.take(np.lexsort((key, log.timestamp, log.user)))


