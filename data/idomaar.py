"""30Music (Last.fm scrobbles in the Idomaar layout): its play events, and the tracks and artists they name.

The release unpacks to `relations/events.idomaar` and `entities/tracks.idomaar`, `entities/persons.idomaar`
(and files not read here: sessions, love, playlists, albums, tags, users). A line is tab-separated: kind,
id, time (epoch seconds, -1 for none), then two JSON objects, the entity's properties and its links (some
files separate those two by a space):

    event.play  0  1390231051  {"playtime":176}  {"subjects":[{"type":"user","id":7}],"objects":[{"type":"track","id":42}]}
    track  42  -1  {"duration":236,"playcount":4,"MBID":null,"name":"Heal+the+World"}  {"artists":[{"type":"person","id":3}],...}
    person  3  -1  {"MBID":null,"name":"Michael+Jackson"}

Names are URL-encoded ('+' a space). A play's value is the share of the track played (playtime over the
track's duration) when both are known, else 1. The chunks carry the columns of HEADER and are read as any
other log (loaders.py); the catalog is built after, for the tracks the kept users played.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import numpy as np

from edgerec.data.item_text import TextRepairs
from edgerec.data.parts import COMPRESSED_SUFFIXES, without_compression
from edgerec.data.schema import Catalog
from edgerec.data.tables import RELEASE_TEXT, Chunk, RowBuffer, Skipped, numbered_lines
from edgerec.errors import DataError
from edgerec.runtime.vocab import MAX_TS

HEADER = ("user", "item", "time", "playtime")  # the columns of the chunks
EVENTS_FILE, TRACKS_FILE, PERSONS_FILE = "events.idomaar", "tracks.idomaar", "persons.idomaar"
PLAY = "event.play"
_DECODER = json.JSONDecoder()


def idomaar_files(path: str | Path) -> tuple[Path, Path | None, Path | None]:
    """(events, tracks or None, persons or None) of a download: its folder (relations/ and entities/ in it,
    or the files side by side), its relations folder, or its events.idomaar (the entities found beside it
    or in ../entities). Each file may be compressed (events.idomaar.gz)."""
    path = Path(path)
    if path.is_file():
        if without_compression(path.name) in (TRACKS_FILE, PERSONS_FILE) or path.parent.name == "entities":
            raise DataError("is an entity file; pass the 30Music folder, or its relations/events.idomaar",
                            str(path))
        events, roots = path, (path.parent, path.parent.parent / "entities")
    elif path.is_dir():
        events = _first((path / "relations", path), EVENTS_FILE)
        if events is None:
            raise DataError("holds no relations/events.idomaar: pass the folder the 30Music download unpacked "
                            "to (entities/ and relations/ in it), or its events.idomaar", str(path))
        roots = (path / "entities", path, path.parent / "entities")
    else:
        raise DataError("not found; pass the 30Music folder or its relations/events.idomaar", str(path))
    return events, _first(roots, TRACKS_FILE), _first(roots, PERSONS_FILE)


def _first(folders, name: str) -> Path | None:
    """The first file named `name` (or a compressed copy of it) in `folders`."""
    for folder in folders:
        for candidate in (name, *(name + suffix for suffix in COMPRESSED_SUFFIXES)):
            if (folder / candidate).is_file():
                return folder / candidate
    return None


def split_line(line: str, kind: str) -> tuple[str, str, dict, dict] | str:
    """(id, time, properties, links) of an Idomaar line of `kind`, or what is wrong with it."""
    parts = line.split("\t", 3)
    if len(parts) < 4:
        return f"not an Idomaar line (kind, id, time and JSON, separated by tabs); found {line[:40]!r}"
    if parts[0] != kind:
        return f"a {parts[0][:30]!r} line where this file holds {kind!r} lines"
    rest, objects = parts[3].strip(), []
    try:
        while rest and len(objects) < 2:
            value, end = _DECODER.raw_decode(rest)
            objects.append(value)
            rest = rest[end:].lstrip()
    except json.JSONDecodeError as exc:
        return f"its JSON is not readable ({exc.msg}; is the line cut short?)"
    except RecursionError:
        return "its JSON is nested too deep"
    if rest or not objects or not all(isinstance(o, dict) for o in objects):
        return "expected one or two JSON objects after the time (properties, then links)"
    return parts[1].strip(), parts[2].strip(), objects[0], objects[1] if len(objects) > 1 else {}


def _one_id(links: dict, role: str, kind: str) -> str | None:
    """The id of the single entity of `kind` that `links[role]` lists, or None."""
    listed = links.get(role)
    if not isinstance(listed, list) or len(listed) != 1:
        return None
    return _entity_id(listed[0], kind)


def _link_problem(links: dict, role: str, kind: str) -> str:
    """What keeps `links[role]` from naming one entity of `kind` (_one_id gave None), in words short
    enough that the value at fault is never cut away."""
    listed = links.get(role)
    if not isinstance(listed, list):
        return f"{role} is {_short(listed)}, not a list"
    if len(listed) != 1:
        return f"{role} lists {len(listed)} entities"
    entity = listed[0]
    if not isinstance(entity, dict) or entity.get("type") != kind:
        kind_found = entity.get("type") if isinstance(entity, dict) else entity
        return f"{role} holds {_short(kind_found)}, not a {kind!r}"
    return f"the {kind}'s id is {_short(entity.get('id'))}, not a whole number or text"


def _short(value) -> str:
    """A JSON value as a message shows it (runtime/checks.py: shown is the device's own, which data/ may
    not import; this one writes the file's JSON notation: null, true, "text")."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _entity_id(entity, kind: str) -> str | None:
    """The id of a link `{"type": kind, "id": ...}` as text, or None when it is not one."""
    if not isinstance(entity, dict) or entity.get("type") != kind:
        return None
    ident = entity.get("id")
    if isinstance(ident, bool) or not isinstance(ident, (int, str)):
        return None
    return str(ident).strip() or None


def event_chunks(path: Path, chunk_rows: int, skipped: Skipped | None = None) -> Iterator[Chunk]:
    """The play events of events.idomaar as chunks of HEADER columns (playtime 0 when the line has none)."""
    buffer = RowBuffer(HEADER, chunk_rows, path)
    lines_read = 0
    event_ids = EventIds()
    for number, line in numbered_lines(path, advice=RELEASE_TEXT):
        if not line.strip():
            continue
        lines_read += 1
        kind = line.split("\t", 1)[0]
        if kind != PLAY and "\t" in line:  # another kind of event (a love, a session): never a play
            raise DataError(f"a {kind[:30]!r} line where this file holds {PLAY!r} lines; FORMAT 30music reads the "
                            "play events of relations/events.idomaar", str(path), number)
        fields = split_line(line, PLAY)
        problem = fields if isinstance(fields, str) else None
        if problem is None:
            _, time, props, links = fields
            user, item = _one_id(links, "subjects", "user"), _one_id(links, "objects", "track")
            if not (time.isascii() and time.isdigit() and 0 < int(time) < MAX_TS):  # -1: the release's "none"
                problem = f"its time is not in epoch seconds (found {time[:20]!r}; -1 is the release's no time)"
            elif user is None or item is None:
                problem = ("its links do not name one user (subjects) and one track (objects); "
                           + (_link_problem(links, "subjects", "user") if user is None
                              else _link_problem(links, "objects", "track")))
            playtime = props.get("playtime")  # seconds; -1 (or none) when unknown, read as -1 here
            playtime = str(playtime) if isinstance(playtime, (int, float)) and not isinstance(playtime, bool) \
                and 0 <= playtime < 1e7 else "-1"
        if problem is not None:
            if skipped is None:
                raise DataError(f"{problem} (or pass --skip-bad-rows to leave such lines out)", str(path), number)
            skipped.add(problem.split(";")[0].split(" (")[0], [number])  # the reason without what was found
            continue
        event_ids.add(fields[0], number)
        if (chunk := buffer.add((user, item, time, playtime), number)) is not None:
            yield chunk
    if (chunk := buffer.flush()) is not None:
        yield chunk
    event_ids.check(path)
    if not lines_read:
        raise DataError("holds no play events (an event.play line a play): is it 30Music's events.idomaar?",
                        str(path))


class EventIds:
    """The ids of the events read (as int64: 31M of them take 250 MB, a set of str several GB), so that a file
    read twice, or copies joined, is refused rather than doubling every play."""

    def __init__(self):
        self.ids, self.lines = array("q"), array("q")

    def add(self, ident: str, line: int) -> None:
        if ident.isascii() and ident.isdigit() and len(ident) < 19:  # 30Music's ids; others are not checked
            self.ids.append(int(ident))
            self.lines.append(line)

    def check(self, path: Path) -> None:
        ids = np.frombuffer(self.ids, np.int64)
        order = np.argsort(ids, kind="stable")
        again = np.flatnonzero(ids[order][1:] == ids[order][:-1])
        if again.size:
            first, second = order[again[0]], order[again[0] + 1]
            raise DataError(f"event {ids[first]} comes again (first at line {self.lines[first]}), and "
                            f"{again.size:,} events in all: is the file read twice, or two copies joined? Keep one "
                            "line an event", str(path), int(self.lines[second]))


def read_entities(path: Path, kind: str, wanted: set[str]) -> dict[str, tuple[dict, dict, int]]:
    """(properties, links, line) of each entity of `kind` in `wanted`; the lines of other entities are not
    parsed (tracks.idomaar lists 5.6M tracks). An entity listed twice is refused."""
    found: dict[str, tuple[dict, dict, int]] = {}
    prefix = kind + "\t"
    for number, line in numbered_lines(path, advice=RELEASE_TEXT):
        if not line.startswith(prefix):
            if line.strip():
                raise DataError(f"expected a {kind!r} line (kind, id, time and JSON, separated by tabs); found "
                                f"{line[:40]!r}", str(path), number)
            continue
        ident = line[len(prefix):].split("\t", 1)[0].strip()
        if ident not in wanted:
            continue
        fields = split_line(line, kind)
        if isinstance(fields, str):
            raise DataError(f"{kind} {ident}: {fields}", str(path), number)
        if ident in found:
            raise DataError(f"{kind} {ident} is listed twice (first at line {found[ident][2]}); keep one line",
                            str(path), number)
        found[ident] = (fields[2], fields[3], number)
    return found


def name_of(props: dict) -> str:
    """An entity's URL-encoded name (`Caf%C3%A9+del+Mar`) as text: its escapes read as UTF-8, or as Latin-1
    where they are no UTF-8 (`Caf%E9`), never as U+FFFD."""
    name = props.get("name")
    if not isinstance(name, str):
        return ""
    try:
        return unquote_plus(name, errors="strict").strip()
    except UnicodeDecodeError:
        return unquote_plus(name, encoding="latin-1").strip()


def idomaar_catalog(item_ids: list[str], tracks_path: Path | None, persons_path: Path | None
                    ) -> tuple[Catalog, np.ndarray, list[str]]:
    """The catalog of the tracks played (`item_ids`, in the log's order), each track's duration in seconds
    (0 unknown) and warnings about what the entity files lacked."""
    n = len(item_ids)
    tracks = read_entities(tracks_path, "track", set(item_ids)) if tracks_path else {}
    artist_of = {ident: _first_artist(links) for ident, (_, links, _) in tracks.items()}
    persons = read_entities(persons_path, "person", {a for a in artist_of.values() if a}) if persons_path else {}
    titles, artists, seconds, lines, artist_lines = [], [], np.zeros(n, np.float32), [], []
    for row, ident in enumerate(item_ids):
        props, _, line = tracks.get(ident, ({}, {}, 0))  # line 0: not in the file
        artist, _, artist_line = persons.get(artist_of.get(ident) or "", ({}, {}, 0))
        titles.append(name_of(props))
        artists.append(name_of(artist))
        duration = props.get("duration")
        if isinstance(duration, (int, float)) and not isinstance(duration, bool) and 0 < duration < 1e7:
            seconds[row] = duration
        lines.append(line)
        artist_lines.append(artist_line)
    repairs = TextRepairs()
    tracks_name, persons_name = (p.name if p else "" for p in (tracks_path, persons_path))
    titles = repairs.repaired(titles, "title", lambda row: f"{tracks_name}:{lines[row]}", "the track name")
    artists = repairs.repaired(artists, "creator", lambda row: f"{persons_name}:{artist_lines[row]}",
                               "the artist name")
    names, titles = titles, [t or (f"a track by {a}" if a else ident) for t, a, ident in zip(titles, artists, item_ids)]
    text = {"title": titles, "creator": artists, "modality": ["music_track"] * n,
            "description": [_description(t, a) for t, a in zip(names, artists)]}
    warnings = []
    if tracks_path is None:
        warnings.append("no entities/tracks.idomaar beside the events: the tracks have ids but no names (import "
                        "the download's folder)")
    elif len(tracks) < n:
        warnings.append(f"{n - len(tracks):,} of the {n:,} tracks played are not in {TRACKS_FILE}: they have ids "
                        "but no names (each is titled by its id)")
    unnamed = sum(1 for ident in tracks if artist_of[ident] and artist_of[ident] not in persons)
    if unnamed and persons_path is None:
        warnings.append("no entities/persons.idomaar beside the events: the artists have no names (import the "
                        "download's folder)")
    elif unnamed:
        warnings.append(f"{unnamed:,} of the tracks named have an artist that is not in {persons_path.name}: their "
                        "artist is left empty")
    warnings += repairs.warnings()
    return Catalog(list(item_ids), text, [()] * n, duration=seconds), seconds, warnings


def _first_artist(links: dict) -> str | None:
    listed = links.get("artists")
    ids = (_entity_id(entity, "person") for entity in listed) if isinstance(listed, list) else ()
    return next(filter(None, ids), None)


def _description(title: str, artist: str) -> str:
    if not title:
        return f"A song by {artist}." if artist else ""
    return f"{title}. A song by {artist}." if artist else f"{title}. A song."
