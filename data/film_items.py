"""How a film release's item file reads (MovieLens, Netflix Prize): its text encoding, each title's own
encoding, and the description and release time a film gets from its title, genres and year."""

from __future__ import annotations

import codecs
from datetime import datetime, timezone
from pathlib import Path

from edgerec.errors import DataError


def year_ts(year: int | None) -> int:
    """The start of `year` in epoch seconds; 0 is "unknown" to a bundle, so 1970 starts one second late (its
    films lost their year)."""
    return int(datetime(year, 1, 1, tzinfo=timezone.utc).timestamp()) or 1 if year else 0


def film_line(title: str, genres: list[str]) -> str:
    """The description a MovieLens film gets: `Heat. A crime / thriller film.`, `Up. An animation film.`; a film
    without genres (ml-latest's '(no genres listed)') was `Cosmos. A film film.`."""
    kinds = " / ".join(genres).lower()
    if not kinds:
        return f"{title}. A film."
    return f"{title}. {'An' if kinds[0] in 'aeiou' else 'A'} {kinds} film."


def decoded_title(title: str) -> str:
    """A title of a file that is not all UTF-8 (read as latin-1, which keeps every byte) in the first encoding
    its own bytes decode in: UTF-8 (a file stitched from a UTF-8 and a latin-1 source), then cp1252 (what
    Windows tools save: latin-1 but for curly quotes, dashes and 'œ' at bytes 0x80-0x9f, which latin-1 reads
    as invisible control characters), else latin-1. Latin-1 text whose bytes happen to be valid UTF-8 needs
    pairs like 'Ã©' that titles do not hold; cp1252 reads latin-1's printable bytes as latin-1 does."""
    if title.isascii():
        return title
    raw = title.encode("latin-1")
    for encoding in ("utf-8", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return title


def item_file_encoding(path: Path) -> str:
    """UTF-8 when the whole file decodes as UTF-8, else latin-1 (each title then decoded on its own): GroupLens
    ships the 100K and 1M item files in latin-1, re-packaged copies are often UTF-8, and either read the
    other way garbles every accented title without an error. (An item file is a few MB at most.)"""
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.object.startswith(codecs.BOM_UTF8):  # read as latin-1, the mark would stick to the first item id
            line = exc.object.count(b"\n", 0, exc.start) + 1
            raise DataError("the file starts with a UTF-8 byte order mark but is not all UTF-8 (a title from "
                            "another source pasted in?): save it as UTF-8 throughout", str(path), line) from None
        return "latin-1"
    except OSError:  # missing or unreadable: reading it says so, with the file's name
        pass
    return "utf-8"
