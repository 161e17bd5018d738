"""The Netflix Prize release: its ratings in blocks, one film at a time, and its film titles.

A ratings file (`combined_data_1.txt` to `_4.txt` in the Kaggle copy, `training_set/mv_0000001.txt` ... in
the original) holds a `MovieID:` line, then that film's `CustomerID,Rating,Date` rows, then the next film's
line. The titles (`movie_titles.csv`, or `.txt` in the original) are `MovieID,YearOfRelease,Title` without a
header and without quotes: a title keeps its commas, a year may be `NULL`, and the original is latin-1.
The rows become chunks of a log with the columns of HEADER, read as any other log (loaders.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgerec.data.film_items import decoded_title, film_line, item_file_encoding, year_ts
from edgerec.data.item_text import check_item_text
from edgerec.data.schema import Catalog
from edgerec.data.tables import Chunk, Skipped, numbered_lines
from edgerec.errors import DataError

HEADER = ("user", "item", "rating", "date")  # the columns of the chunks: customer, film, stars, day
RATINGS = (1.0, 5.0)  # whole stars
TITLE_FILES = ("movie_titles.csv", "movie_titles.txt")
_FILM_LINE = re.compile(r"\s*(\d+):\s*")
_RATING_FILES = ("combined_data_*.txt", "mv_*.txt")


def netflix_files(path: str | Path) -> tuple[list[Path], Path | None]:
    """The ratings files of a download in name order and its titles file (None when it has none): a folder
    of the Kaggle copy, the original's folder or its training_set folder, or one ratings file."""
    path = Path(path)
    if path.is_file():
        return [path], None
    if not path.is_dir():
        raise DataError("not found; pass the Netflix Prize folder (combined_data_*.txt, movie_titles.csv) or one "
                        "of its ratings files", str(path))
    folders = [path, path / "training_set"]
    ratings = next((found for folder in folders for pattern in _RATING_FILES
                    if (found := sorted(p for p in folder.glob(pattern) if p.is_file()))), [])
    if not ratings:
        raise DataError("holds no Netflix Prize ratings (combined_data_*.txt, or training_set/mv_*.txt in the "
                        "original): pass the folder the download unpacked to", str(path))
    titles = next((folder / name for folder in (path, path.parent) for name in TITLE_FILES
                   if (folder / name).is_file()), None)
    return ratings, titles


def netflix_chunks(files: list[Path], chunk_rows: int, skipped: Skipped | None = None) -> Iterator[Chunk]:
    """The ratings of `files` as chunks of HEADER columns, every row with its file line. A row that is not
    three fields is an error at its line, or counted in `skipped`; a rating before any film line is an
    error (not this format)."""
    for path in files:
        film, rows = None, 0
        buffers: list[list[str]] = [[] for _ in HEADER]
        lines: list[int] = []
        if skipped is not None and len(files) > 1:
            skipped.part = path.name  # its lines name their file
        for number, line in numbered_lines(path):
            if line.rstrip().endswith(":") and (match := _FILM_LINE.fullmatch(line)):
                film = match.group(1)
                continue
            if not line.strip():  # a blank line holds no rating: nothing to lose
                continue
            fields = line.split(",")
            if film is None:
                raise DataError(f"a row before the first film line ({line[:40]!r}): FORMAT netflix reads the "
                                "Netflix Prize's ratings, where each film's rows follow a line such as '1:'; for "
                                "another layout use FORMAT csv", str(path), number)
            if len(fields) != 3:
                if skipped is None:
                    raise DataError(f"expected CustomerID,Rating,Date (3 fields) in film {film}'s ratings, found "
                                    f"{len(fields)} (or pass --skip-bad-rows to leave such rows out)", str(path),
                                    number)
                skipped.add("not 3 fields", [number])
                continue
            for buffer, value in zip(buffers, (fields[0].strip(), film, fields[1].strip(), fields[2].strip())):
                buffer.append(value)
            lines.append(number)
            rows += 1
            if len(lines) >= chunk_rows:
                yield _chunk(buffers, lines, path)
                buffers, lines = [[] for _ in HEADER], []
        if lines:
            yield _chunk(buffers, lines, path)
        if film is None:
            raise DataError("holds no film line (such as '1:'): is it a Netflix Prize ratings file?", str(path))
        if not rows and (skipped is None or not skipped.total):
            raise DataError("holds film lines but no ratings", str(path))


def _chunk(buffers: list[list[str]], lines: list[int], path: Path) -> Chunk:
    return Chunk(dict(zip(HEADER, buffers)), lines[0], str(path), lines=np.asarray(lines, np.int64))


def netflix_catalog(path: Path) -> Catalog:
    """The films of a titles file, in its order: title, release year, 'Title. A film.' as description."""
    ids, titles, years, seen = [], [], [], {}
    encoding = item_file_encoding(path)
    for number, line in numbered_lines(path, encoding):
        if not line.strip():
            continue
        fields = line.split(",", 2)
        if len(fields) != 3 or not fields[0].strip().isdigit():
            raise DataError(f"expected MovieID,YearOfRelease,Title, found {line[:60]!r}", str(path), number)
        film, year, title = (f.strip() for f in fields)
        if film in seen:
            raise DataError(f"film {film} is listed twice (first at line {seen[film]}); keep one line for it",
                            str(path), number)
        if not (year.isdigit() and 1800 <= int(year) <= 2100) and year.upper() not in ("NULL", ""):
            raise DataError(f"the year of film {film} is {year!r}; expected a year or NULL", str(path), number)
        seen[film] = number
        ids.append(film)
        titles.append(decoded_title(title) if encoding == "latin-1" else title)
        years.append(int(year) if year.isdigit() else None)
    if not ids:
        raise DataError("holds no film", str(path))
    lines = list(seen.values())
    check_item_text(titles, "title", path, lambda row: lines[row], "the title")
    n = len(ids)
    text = {"title": titles, "description": [film_line(t, []) for t in titles], "genre": [""] * n,
            "modality": ["film"] * n}
    return Catalog(ids, text, [()] * n, release_ts=np.asarray([year_ts(y) for y in years], np.int64))
