"""Spotify's Million Playlist Dataset: its slices of playlists, each playlist read as one listener's sequence.

The release unpacks to `data/mpd.slice.0-999.json` ... `mpd.slice.999000-999999.json`: one pretty-printed JSON
object a file, `{"info": ..., "playlists": [...]}`. A playlist has `pid`, `modified_at` (epoch seconds of its
last change, rounded to a day) and `tracks` in playlist order (`pos` 0, 1, ...), each track with `track_uri`,
`track_name`, `artist_name`, `album_name` and `duration_ms`. A playlist becomes a user who added its tracks in
their order: one `like` a track (adding a track is a choice, not a play), all at the playlist's `modified_at`,
the order kept by the log's stable sort, so the last track is the one a playlist-continuation test predicts.
Playlist names and descriptions are the users' own words and are not read. The tracks of the playlists kept
become the catalog: title, artist as creator, album in the description, duration, modality music_track.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.data.item_text import TextRepairs
from edgerec.data.parts import without_compression
from edgerec.data.schema import Catalog
from edgerec.data.tables import RELEASE_TEXT, Chunk, RowBuffer, Skipped, whole_text
from edgerec.errors import DataError
from edgerec.runtime.vocab import MAX_TS

HEADER = ("user", "item", "time")  # the columns of the chunks: playlist, track, modified_at
_SLICE = re.compile(r"mpd\.slice\.(\d+)-(\d+)\.json")  # matched without_compression
_CHALLENGE = "challenge_set"  # the RecSys Challenge's playlists, their tracks held out
_PID = re.compile(r'"pid"\s*:\s*(-?\d+)?')  # the value's digits when it is a number
_MS_IN_S = 1000.0


class Track:
    """What the catalog keeps of a track: its first playlist's copy of the metadata."""

    __slots__ = ("title", "artist", "album", "seconds", "where")

    def __init__(self, title: str, artist: str, album: str, seconds: float, where: str):
        self.title, self.artist, self.album, self.seconds, self.where = title, artist, album, seconds, where


def mpd_files(path: str | Path) -> list[Path]:
    """The slice files of a download in slice order: its folder, the `data` folder in it, or one slice."""
    path = Path(path)
    if path.is_file():
        if path.name.startswith(_CHALLENGE):
            raise DataError(_challenge_message(), str(path))
        return [path]
    if not path.is_dir():
        raise DataError("not found; pass the Million Playlist Dataset's folder (data/mpd.slice.*.json) or one of "
                        "its slice files", str(path))
    for folder in (path, path / "data"):
        found = [p for p in folder.iterdir() if p.is_file() and _slice_start(p) is not None] \
            if folder.is_dir() else []
        if found:
            return sorted(found, key=_slice_start)
    if any(p.name.startswith(_CHALLENGE) for p in path.iterdir()):
        raise DataError(_challenge_message(), str(path))
    raise DataError("holds no Million Playlist Dataset slices (data/mpd.slice.0-999.json ...): pass the folder "
                    "the download unpacked to, or one slice file", str(path))


def _slice_start(path: Path) -> int | None:
    """The first pid of a slice file's name (`mpd.slice.1000-1999.json` -> 1000), None for another file."""
    match = _SLICE.fullmatch(without_compression(path.name))
    return int(match.group(1)) if match else None


def _challenge_message() -> str:
    return ("is the RecSys Challenge set: its playlists have tracks held out and no modified_at; import the "
            "mpd.slice files of the dataset itself")


def mpd_chunks(files: list[Path], chunk_rows: int, tracks: dict[str, Track], keep: Callable[[str], bool],
               skipped: Skipped | None = None) -> Iterator[Chunk]:
    """The tracks of every playlist of `files` as chunks of HEADER columns, in playlist order, each row at the
    line of its playlist's pid. The metadata of the tracks of kept playlists (`keep(pid)`) goes into
    `tracks`. Refused, never skipped: a file that is no slice, a playlist of the challenge set, a playlist
    read twice, a bad pid or modified_at, two tracks at one position."""
    playlists: dict[str, str] = {}  # pid -> where it was read first
    tracks_read = 0
    for path in files:
        if skipped is not None and len(files) > 1:
            skipped.part = path.name
        text = whole_text(path, advice=RELEASE_TEXT)
        lists = _playlists(text, path)
        pid_lines = _pid_lines(text, len(lists))
        buffer = RowBuffer(HEADER, chunk_rows, path)
        for number, playlist in enumerate(lists, 1):
            pid, time, line = _playlist_fields(playlist, number, path, pid_lines)
            user = str(pid)
            if user in playlists:
                raise DataError(f"playlist {pid} comes again (first in {playlists[user]}): is a slice read twice, "
                                "or two downloads in one folder? Keep one", str(path), line)
            playlists[user] = path.name
            kept = keep(user)
            for track in _ordered_tracks(playlist, pid, path, line):
                tracks_read += 1
                uri = track.get("track_uri")
                if not isinstance(uri, str) or not uri.strip():
                    if skipped is None:
                        raise DataError(f"a track of playlist {pid} has no track_uri (or pass --skip-bad-rows to "
                                        "leave such tracks out)", str(path), line)
                    skipped.add("a track without track_uri", [line or 0])
                    continue
                uri = uri.strip()
                if kept and uri not in tracks:
                    tracks[uri] = _track(track, f"{path.name}:{line}" if line else path.name)
                if (chunk := buffer.add((user, uri, str(time)), line or 0)) is not None:
                    yield chunk
        if (chunk := buffer.flush()) is not None:
            yield chunk
    if not tracks_read:
        raise DataError("holds no playlist with a track: are these the Million Playlist Dataset's slices?",
                        str(files[0] if len(files) == 1 else files[0].parent))


def _playlist_fields(playlist, number: int, path: Path, pid_lines: PidLines) -> tuple[int, int, int | None]:
    """(pid, modified_at, line of the pid) of the `number`th playlist of a slice, or a DataError."""
    where = f"its playlist {number}"
    if not isinstance(playlist, dict):
        raise DataError(f"{where} is not a JSON object", str(path))
    if "num_holdouts" in playlist or "num_samples" in playlist:
        raise DataError(_challenge_message(), str(path))
    pid = playlist.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid < 0:
        raise DataError(f"{where} has no pid (a whole number >= 0; found {pid!r})", str(path),
                        pid_lines.nth(number))
    line = pid_lines.by_value.get(pid)
    time = playlist.get("modified_at")
    if isinstance(time, bool) or not isinstance(time, int) or not 0 < time < MAX_TS:
        raise DataError(f"playlist {pid}'s modified_at is {time!r}; expected epoch seconds (a whole number)",
                        str(path), line)
    return pid, time, line


def _playlists(text: str, path: Path) -> list:
    if not text.strip():
        raise DataError("is empty: a Million Playlist Dataset slice is one JSON object of 1,000 playlists (is the "
                        "download complete?)", str(path))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"is not JSON ({exc.msg}); a Million Playlist Dataset slice is one JSON object (is the "
                        "file cut short?)", str(path), exc.lineno) from None
    except RecursionError:
        raise DataError("is JSON nested too deep to be a Million Playlist Dataset slice", str(path)) from None
    lists = document.get("playlists") if isinstance(document, dict) else None
    if not isinstance(lists, list):
        raise DataError("holds no 'playlists' list: FORMAT mpd reads the Million Playlist Dataset's slices; for "
                        "a log of your own layout use FORMAT jsonl (one event a line)", str(path))
    return lists


@dataclass
class PidLines:
    """Where each playlist's `"pid"` key is in a slice's text, for messages (json.loads keeps no
    positions): by the pid's value, and in the order the keys come."""

    by_value: dict[int, int]
    in_order: list[int]
    playlists: int

    def nth(self, number: int) -> int | None:
        """The line of the `number`th playlist's pid key (1-based), when every playlist has one key
        (else the order says nothing)."""
        return self.in_order[number - 1] if len(self.in_order) == self.playlists else None


def _pid_lines(text: str, playlists: int) -> PidLines:
    found, order, line, at = {}, [], 1, 0
    for match in _PID.finditer(text):
        line += text.count("\n", at, match.start())
        at = match.start()
        order.append(line)
        if match.group(1) is not None:
            found.setdefault(int(match.group(1)), line)
    return PidLines(found, order, playlists)


def _ordered_tracks(playlist: dict, pid: int, path: Path, line: int | None) -> list[dict]:
    """The playlist's tracks by `pos` (the file lists them so; a track without pos keeps its place)."""
    tracks = playlist.get("tracks")
    if not isinstance(tracks, list) or not all(isinstance(t, dict) for t in tracks):
        raise DataError(f"playlist {pid}'s tracks are not a list of JSON objects", str(path), line)
    places = [t.get("pos", i) for i, t in enumerate(tracks)]
    if any(isinstance(p, bool) or not isinstance(p, int) for p in places):
        bad = next(p for p in places if isinstance(p, bool) or not isinstance(p, int))
        raise DataError(f"a track of playlist {pid} is at pos {bad!r}; expected a whole number", str(path), line)
    if len(set(places)) != len(places):
        raise DataError(f"two tracks of playlist {pid} are at one pos: is the playlist edited by hand? Keep one "
                        "track a position", str(path), line)
    return [tracks[i] for i in np.argsort(places, kind="stable")]


def _track(track: dict, where: str) -> Track:
    def text(name: str) -> str:
        value = track.get(name)
        return value.strip() if isinstance(value, str) else ""

    ms = track.get("duration_ms")
    seconds = float(ms) / _MS_IN_S if isinstance(ms, (int, float)) and not isinstance(ms, bool) \
        and 0 < ms < 1e9 else 0.0
    return Track(text("track_name"), text("artist_name"), text("album_name"), seconds, where)


def mpd_catalog(item_ids: list[str], tracks: dict[str, Track]) -> tuple[Catalog, list[str]]:
    """The catalog of `item_ids` (the tracks the kept playlists hold, in the log's order) from their
    metadata, and warnings: a track without a name is titled by its artist, or by its id; names the device
    would refuse or garble are repaired (TextRepairs) and counted."""
    rows = [tracks[i] for i in item_ids]
    repairs = TextRepairs()

    def where(row: int) -> str:
        return rows[row].where

    names = repairs.repaired([t.title for t in rows], "title", where, "the track name")
    artists = repairs.repaired([t.artist for t in rows], "creator", where, "the artist name")
    albums = repairs.repaired([t.album for t in rows], "description", where, "the album name")
    titles = [t or (f"a track by {a}" if a else uri) for t, a, uri in zip(names, artists, item_ids)]
    n = len(item_ids)
    text = {"title": titles, "creator": artists, "modality": ["music_track"] * n,
            "description": [_description(t, a, b) for t, a, b in zip(names, artists, albums)]}
    catalog = Catalog(list(item_ids), text, [()] * n, duration=np.asarray([t.seconds for t in rows], np.float32))
    return catalog, repairs.warnings()


def _description(title: str, artist: str, album: str) -> str:
    """'Toxic. A song by Britney Spears, from In The Zone.' (without a name: 'A song by ...')"""
    by = f" by {artist}" if artist else ""
    on = f", from {album}" if album and album != title else ""
    return f"{title}. A song{by}{on}." if title else f"A song{by}{on}."
