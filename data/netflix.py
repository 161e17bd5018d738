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
from edgerec.data.item_text import TextRepairs
from edgerec.data.parts import without_compression
from edgerec.data.schema import Catalog
from edgerec.data.tables import Chunk, RowBuffer, Skipped, numbered_lines
from edgerec.errors import DataError

HEADER = ("user", "item", "rating", "date")  # the columns of the chunks: customer, film, stars, day
RATINGS = (1.0, 5.0)  # whole stars
_TITLES = re.compile(r"movie_titles\.(csv|txt)")  # matched without_compression: a .gz copy reads as the plain file
_RATING_FILES = (re.compile(r"combined_data_\d+\.txt"), re.compile(r"mv_\d+\.txt"))
_TEST_SETS = ("qualifying", "probe")  # the Prize's files without ratings
_FILM_LINE = re.compile(r"\s*(\d+)\s*:\s*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STARS = frozenset("12345")


def film_id(digits: str) -> str:
    """A MovieID as the data set names it, without leading zeros: the ratings' `0001:` and the titles' `0001`
    are film 1 (the original's files are named mv_0000001.txt)."""
    return digits.lstrip("0") or "0"


def netflix_files(path: str | Path) -> tuple[list[Path], Path | None]:
    """The ratings files of a download in name order and its titles file (None when it has none): a folder
    of the Kaggle copy, the original's folder or its training_set folder, or one ratings file."""
    path = Path(path)
    if path.is_file():
        if path.name.startswith(_TEST_SETS):
            raise DataError("is one of the Prize's test sets, which hold no ratings: import the combined_data "
                            "files (or the folder)", str(path))
        if _TITLES.fullmatch(without_compression(path.name)):
            raise DataError("is the titles file: pass the folder, or one of its ratings files", str(path))
        return [path], _titles(path.parent, path.parent.parent)
    if not path.is_dir():
        raise DataError("not found; pass the Netflix Prize folder (combined_data_*.txt, movie_titles.csv) or one "
                        "of its ratings files", str(path))
    folders = [path, path / "training_set"]
    ratings = next((found for folder in folders if folder.is_dir() for pattern in _RATING_FILES
                    if (found := sorted(p for p in folder.iterdir() if _named(p, pattern)))), [])
    if not ratings:
        raise DataError("holds no Netflix Prize ratings (combined_data_1.txt ..., or training_set/mv_0000001.txt "
                        "... in the original): pass the folder the download unpacked to", str(path))
    return ratings, _titles(path, path.parent)


def _named(path: Path, pattern: re.Pattern) -> bool:
    """Whether `path` is a file whose name, less a compression suffix, is one `pattern` matches."""
    return path.is_file() and pattern.fullmatch(without_compression(path.name)) is not None


def _titles(*folders: Path) -> Path | None:
    """The titles file in the first of `folders` that has one."""
    for folder in folders:
        found = sorted(p for p in folder.iterdir() if _named(p, _TITLES)) if folder.is_dir() else []
        if found:
            return found[0]
    return None


def netflix_chunks(files: list[Path], chunk_rows: int, skipped: Skipped | None = None) -> Iterator[Chunk]:
    """The ratings of `files` as chunks of HEADER columns, every row with its file line. A row that is not
    CustomerID,Rating,Date is an error at its line, or counted in `skipped`. Never skipped, since the rows
    after them would go to the wrong film or twice into the log: a line that ends in ':' but is no film
    line, a film whose block comes again, a customer rating one film twice, stars other than 1 to 5."""
    films: dict[str, str] = {}  # film -> where its block began
    for path in files:
        film, rows = None, 0
        buffer = RowBuffer(HEADER, chunk_rows, path)
        raters: dict[str, int] = {}  # customer -> line, within the film's block
        if skipped is not None and len(files) > 1:
            skipped.part = path.name  # its lines name their file
        for number, line in numbered_lines(path):
            if line.rstrip().endswith(":"):
                match = _FILM_LINE.fullmatch(line)
                if match is None:
                    raise DataError(f"a line ending in ':' that is no film line ('{line.strip()[:20]}'); a film's "
                                    "line is its MovieID and ':', such as '1:'", str(path), number)
                film, raters = film_id(match.group(1)), {}
                if film in films:
                    raise DataError(f"film {film}'s ratings begin again here (first at {films[film]}): is a file "
                                    "read twice, or a block copied? Keep one", str(path), number)
                films[film] = f"{path.name}:{number}"
                continue
            if not line.strip():  # a blank line holds no rating: nothing to lose
                continue
            if film is None:
                raise DataError("a row before the first film line: FORMAT netflix reads the Netflix Prize's "
                                "ratings, where each film's rows follow a line such as '1:'; for another layout "
                                "use FORMAT csv", str(path), number)
            fields = [f.strip() for f in line.split(",")]
            problem = _row_problem(fields)
            if problem is not None and len(fields) == 2 and _DATE.fullmatch(fields[1]):
                raise DataError("rows of CustomerID,Date are the Prize's qualifying set, without ratings: import "
                                "the combined_data files", str(path), number)
            if problem is not None and problem.startswith("stars"):
                raise DataError(f"film {film}'s ratings: {problem}", str(path), number)
            if problem is not None:
                if skipped is None:
                    raise DataError(f"film {film}'s ratings: {problem} (or pass --skip-bad-rows to leave such rows "
                                    "out)", str(path), number)
                skipped.add(problem.partition(";")[0], [number])
                continue
            if fields[0] in raters:
                raise DataError(f"a customer rates film {film} a second time (first at line {raters[fields[0]]}): "
                                "is a block copied? Keep one rating", str(path), number)
            raters[fields[0]] = number
            rows += 1
            if (chunk := buffer.add((fields[0], film, fields[1], fields[2]), number)) is not None:
                yield chunk
        if (chunk := buffer.flush()) is not None:
            yield chunk
        if film is None:
            raise DataError("holds no film line (such as '1:'): is it a Netflix Prize ratings file?", str(path))
        if not rows and (skipped is None or not skipped.total):
            raise DataError("holds film lines but no ratings", str(path))


def _row_problem(fields: list[str]) -> str | None:
    """What is wrong with a rating row's fields, or None."""
    if len(fields) != 3:
        return f"not 3 fields; expected CustomerID,Rating,Date, found {len(fields)} fields"
    if fields[1] not in _STARS:
        return f"stars {fields[1]!r}, where a rating is a whole number of stars from 1 to 5"
    if not _DATE.fullmatch(fields[2]):
        return f"date not YYYY-MM-DD; found {fields[2]!r} (a line cut short?)"
    return None


def netflix_catalog(path: Path) -> tuple[Catalog, list[str]]:
    """The films of a titles file, in its order: title, release year, 'Title. A film.' as description; and
    the warning of the titles repaired (text the device would refuse: the release is not the user's to edit)."""
    ids, titles, years, seen = [], [], [], {}
    encoding = item_file_encoding(path)
    for number, line in numbered_lines(path, encoding):
        if not line.strip():
            continue
        fields = line.split(",", 2)
        if len(fields) != 3 or not fields[0].strip().isdigit():
            raise DataError(f"expected MovieID,YearOfRelease,Title, found {line[:60]!r}", str(path), number)
        film, year, title = (f.strip() for f in fields)
        film = film_id(film)  # as the ratings' film lines: '0001' is film 1 (else no rating would find it)
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
    repairs = TextRepairs()
    titles = repairs.repaired(titles, "title", lambda row: f"{path.name}:{lines[row]}", "the title")
    n = len(ids)
    text = {"title": titles, "description": [film_line(t, []) for t in titles], "genre": [""] * n,
            "modality": ["film"] * n}
    return Catalog(ids, text, [()] * n, release_ts=np.asarray([year_ts(y) for y in years], np.int64)), \
        repairs.warnings()
