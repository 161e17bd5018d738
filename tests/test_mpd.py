"""FORMAT mpd: Spotify's Million Playlist Dataset slices, built here as small replicas in the release's
layout (pretty-printed JSON objects of playlists; no download)."""

from __future__ import annotations

import gzip
import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import json_values

from edgerec.cli.main import cli
from edgerec.data import ReadOptions, import_dataset
from edgerec.data.loaders import ColumnMap, keep_user
from edgerec.data.schema import EVENTS
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError, DataError

DAY_1, DAY_2 = 1_493_424_000, 1_500_000_000


def track(n, pos, **extra):
    return {"pos": pos, "artist_name": f"Artist {n % 3}", "track_uri": f"spotify:track:{n:04d}",
            "artist_uri": "spotify:artist:a", "track_name": f"Song {n}", "album_uri": "spotify:album:b",
            "duration_ms": 200_000 + n, "album_name": f"Album {n // 2}", **extra}


def playlist(pid, songs, modified=DAY_1, **extra):
    return {"name": f"private words {pid}", "collaborative": "false", "pid": pid, "modified_at": modified,
            "num_tracks": len(songs), "tracks": [track(n, p) for p, n in enumerate(songs)], **extra}


def write_slice(folder, first, playlists, suffix=""):
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"info": {"slice": f"{first}-{first + 999}", "version": "v1"}, "playlists": playlists}
    path = folder / f"mpd.slice.{first}-{first + 999}.json{suffix}"
    text = json.dumps(doc, indent=4)
    path.write_bytes(gzip.compress(text.encode()) if suffix == ".gz" else text.encode())
    return path


def release(tmp_path, second=None):
    """The download's layout: data/ holds the slices (README.md and src/ beside it)."""
    root = tmp_path / "spotify_million_playlist_dataset"
    write_slice(root / "data", 0, [playlist(0, [5, 1, 7]), playlist(1, [1, 2], DAY_2)])
    write_slice(root / "data", 1000, second if second is not None else [playlist(1000, [7, 7, 3, 9])])
    (root / "README.md").write_text("the release's readme")
    return root


def sequences(dataset):
    log = dataset.interactions
    out: dict[str, list] = {}
    for u, i, t, e in zip(log.user, log.item, log.timestamp, log.event):
        out.setdefault(dataset.user_ids[u], []).append((dataset.catalog.item_ids[i], int(t), EVENTS[e]))
    return out


def test_each_playlist_is_a_user_who_liked_its_tracks_in_order(tmp_path):
    dataset = import_dataset("mpd", release(tmp_path))
    got = sequences(dataset)
    uri = "spotify:track:{:04d}".format
    assert got == {"0": [(uri(5), DAY_1, "like"), (uri(1), DAY_1, "like"), (uri(7), DAY_1, "like")],
                   "1": [(uri(1), DAY_2, "like"), (uri(2), DAY_2, "like")],
                   "1000": [(uri(7), DAY_1, "like"), (uri(7), DAY_1, "like"), (uri(3), DAY_1, "like"),
                            (uri(9), DAY_1, "like")]}
    catalog = dataset.catalog
    row = catalog.index[uri(7)]
    assert catalog.text["title"][row] == "Song 7"
    assert catalog.text["creator"][row] == "Artist 1"
    assert catalog.text["description"][row] == "Song 7. A song by Artist 1, from Album 3."
    assert catalog.text["modality"][row] == "music_track"
    assert catalog.duration[row] == pytest.approx(200.007)
    assert sorted(catalog.item_ids) == sorted({uri(n) for n in (5, 1, 7, 2, 3, 9)})
    assert dataset.meta["format"] == "mpd" and dataset.meta["source"] == "spotify_million_playlist_dataset"
    assert "private words" not in json.dumps(dataset.meta)  # playlist names are not read


def test_the_last_track_of_a_playlist_is_its_test_item_after_a_round_trip(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["data", "import", "mpd", str(release(tmp_path) / "data"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    dataset = load_dataset(out)
    assert {u: [i for i, _, _ in s][-1] for u, s in sequences(dataset).items()} == {
        "0": "spotify:track:0007", "1": "spotify:track:0002", "1000": "spotify:track:0009"}


def test_tracks_are_read_by_pos_whatever_their_order_in_the_file(tmp_path):
    shuffled = playlist(3, [4, 5, 6])
    shuffled["tracks"] = [shuffled["tracks"][2], shuffled["tracks"][0], shuffled["tracks"][1]]
    path = write_slice(tmp_path, 0, [shuffled])
    assert [i for i, _, _ in sequences(import_dataset("mpd", path))["3"]] == [
        "spotify:track:0004", "spotify:track:0005", "spotify:track:0006"]


def test_one_gzip_slice_reads_as_the_plain_one(tmp_path):
    plain = import_dataset("mpd", write_slice(tmp_path / "a", 0, [playlist(0, [1, 2, 3])]))
    packed = import_dataset("mpd", write_slice(tmp_path / "b", 0, [playlist(0, [1, 2, 3])], ".gz"))
    assert sequences(plain) == sequences(packed)
    assert plain.catalog.text == packed.catalog.text


@pytest.mark.parametrize("bad, message", [
    ({"pid": None}, "its playlist 1 has no pid"),
    ({"modified_at": "yesterday"}, ":10: playlist 4's modified_at is 'yesterday'; expected epoch seconds"),
    ({"modified_at": 0}, "playlist 4's modified_at is 0"),
    ({"tracks": {"0": 1}}, "playlist 4's tracks are not a list of JSON objects"),
    ({"num_holdouts": 5}, "is the RecSys Challenge set"),
])
def test_a_bad_playlist_names_its_file_and_line(tmp_path, bad, message):
    path = write_slice(tmp_path, 0, [playlist(4, [1, 2]) | bad])
    with pytest.raises(DataError, match="^mpd.slice.0-999.json") as err:
        import_dataset("mpd", path)
    assert message in str(err.value)


def test_two_tracks_at_one_position_or_a_position_that_is_no_number_are_refused(tmp_path):
    twice = playlist(4, [1, 2])
    twice["tracks"][1]["pos"] = 0
    with pytest.raises(DataError, match="two tracks of playlist 4 are at one pos"):
        import_dataset("mpd", write_slice(tmp_path / "a", 0, [twice]))
    odd = playlist(4, [1, 2])
    odd["tracks"][1]["pos"] = "1"
    with pytest.raises(DataError, match="a track of playlist 4 is at pos '1'"):
        import_dataset("mpd", write_slice(tmp_path / "b", 0, [odd]))


def test_a_playlist_in_two_slices_is_refused_at_its_second_place(tmp_path):
    root = release(tmp_path, second=[playlist(1000, [3]), playlist(1, [9])])
    with pytest.raises(DataError, match=r"^mpd.slice.1000-1999.json:\d+: playlist 1 comes again \(first in "
                                        r"mpd.slice.0-999.json\)"):
        import_dataset("mpd", root)


def test_a_track_without_uri_is_refused_or_counted_with_skip_bad_rows(tmp_path):
    broken = playlist(4, [1, 2, 3])
    del broken["tracks"][1]["track_uri"]
    path = write_slice(tmp_path, 0, [broken, playlist(5, [2])])
    with pytest.raises(DataError, match="a track of playlist 4 has no track_uri .or pass --skip-bad-rows"):
        import_dataset("mpd", path)
    dataset = import_dataset("mpd", path, options=ReadOptions(skip_bad_rows=True))
    assert [i for i, _, _ in sequences(dataset)["4"]] == ["spotify:track:0001", "spotify:track:0003"]
    assert dataset.meta["skipped_rows"]["a track without track_uri"]["rows"] == 1


def test_a_sample_keeps_whole_playlists_and_only_their_tracks(tmp_path):
    lists = [playlist(pid, [pid * 3, pid * 3 + 1, pid * 3 + 2]) for pid in range(40)]
    path = write_slice(tmp_path, 0, lists)
    dataset = import_dataset("mpd", path, options=ReadOptions(sample_users=0.5, seed=3))
    kept = {str(pid) for pid in range(40) if keep_user(str(pid), 0.5, 3)}
    assert set(sequences(dataset)) == kept and 5 < len(kept) < 35
    assert sorted(dataset.catalog.item_ids) == sorted(f"spotify:track:{n:04d}" for pid in map(int, kept)
                                                      for n in range(pid * 3, pid * 3 + 3))
    assert all(len(s) == 3 for s in sequences(dataset).values())


def test_a_track_keeps_its_first_playlists_metadata_and_a_nameless_one_its_artist(tmp_path):
    first, second = playlist(0, [1]), playlist(1, [1, 2])
    second["tracks"][0]["track_name"] = "Another Name"
    second["tracks"][1]["track_name"] = ""
    second["tracks"][1]["duration_ms"] = None
    catalog = import_dataset("mpd", write_slice(tmp_path, 0, [first, second])).catalog
    assert catalog.text["title"] == ["Song 1", "a track by Artist 2"]
    assert catalog.duration.tolist()[1] == 0.0  # unknown


@pytest.mark.parametrize("text, message", [
    ('{\n    "playlists": [\n        {"pid": 1,\n', "is not JSON"),
    ("[1, 2]", "holds no 'playlists' list: FORMAT mpd reads the Million Playlist Dataset's slices"),
    ('{"info": {}}', "holds no 'playlists' list"),
])
def test_a_file_that_is_no_slice_says_what_mpd_reads(tmp_path, text, message):
    path = tmp_path / "mpd.slice.0-999.json"
    path.write_text(text)
    with pytest.raises(DataError, match=f"^mpd.slice.0-999.json(:\\d+)?: {message}"):
        import_dataset("mpd", path)


def test_folders_without_slices_and_the_challenge_set_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no Million Playlist Dataset slices"):
        import_dataset("mpd", tmp_path / "empty")
    challenge = tmp_path / "challenge"
    challenge.mkdir()
    (challenge / "challenge_set.json").write_text(json.dumps({"playlists": []}))
    for path in (challenge, challenge / "challenge_set.json"):
        with pytest.raises(DataError, match="is the RecSys Challenge set: .* import the mpd.slice files"):
            import_dataset("mpd", path)


@pytest.mark.parametrize("kwargs, flag", [
    ({"columns": ColumnMap(user="pid")}, "--user-col"),
    ({"options": ReadOptions(time_unit="ms")}, "--time-unit"),
    ({"items": "tracks.csv"}, "--items"),
])
def test_options_for_a_log_of_your_own_layout_are_refused(tmp_path, kwargs, flag):
    with pytest.raises(ConfigError, match=f"mpd .*{flag}"):
        import_dataset("mpd", release(tmp_path), **kwargs)


def test_slices_are_read_in_slice_order(tmp_path):
    folder = tmp_path / "data"
    write_slice(folder, 10_000, [playlist(10_000, [1])])
    write_slice(folder, 2000, [playlist(2000, [1])])
    write_slice(folder, 0, [playlist(0, [2])])
    dataset = import_dataset("mpd", folder)
    assert dataset.catalog.item_ids == ["spotify:track:0002", "spotify:track:0001"]  # slice 0 first, not 10000


def test_chunks_of_one_or_two_rows_read_the_same_log_and_name_later_lines(tmp_path):
    root = release(tmp_path)
    whole = import_dataset("mpd", root)
    for rows in (1, 2):
        small = import_dataset("mpd", root, options=ReadOptions(chunk_rows=rows))
        assert sequences(small) == sequences(whole) and small.catalog.text == whole.catalog.text
    late = write_slice(tmp_path / "late", 0, [playlist(0, [1, 2, 3]), playlist(1, [4]) | {"modified_at": -5}])
    with pytest.raises(DataError, match=r"^mpd.slice.0-999.json:(\d+): playlist 1's modified_at") as err:
        import_dataset("mpd", late, options=ReadOptions(chunk_rows=1))
    assert int(err.value.line) > 40  # the second playlist's pid, after the first one's tracks


def test_slices_without_a_track_are_named_not_a_crash(tmp_path):
    for lists in ([], [playlist(1, [])]):
        with pytest.raises(DataError, match="^mpd.slice.0-999.json: holds no playlist with a track"):
            import_dataset("mpd", write_slice(tmp_path / str(len(lists)), 0, lists))
    folder = tmp_path / "two" / "data"
    write_slice(folder, 0, [])
    write_slice(folder, 1000, [playlist(1000, [])])
    with pytest.raises(DataError, match="^data: holds no playlist with a track"):
        import_dataset("mpd", folder)


def pid_line(path, pid):
    """The file line of a playlist's pid, as the release's pretty-printing puts it."""
    return next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.strip() == f'"pid": {pid},')


def test_errors_and_skipped_tracks_name_the_line_of_their_playlists_pid(tmp_path):
    broken = playlist(8, [1, 2])
    del broken["tracks"][1]["track_uri"]
    path = write_slice(tmp_path / "a", 0, [playlist(7, [3, 4, 5]), broken])
    with pytest.raises(DataError) as err:
        import_dataset("mpd", path)
    assert err.value.line == pid_line(path, 8) and str(err.value).startswith(f"mpd.slice.0-999.json:{pid_line(path, 8)}:")
    skipped = import_dataset("mpd", path, options=ReadOptions(skip_bad_rows=True)).meta["skipped_rows"]
    assert skipped == {"a track without track_uri": {"rows": 1, "first_lines": [pid_line(path, 8)]}}
    for change, message in ((lambda t: t[1].update(pos="x"), "is at pos 'x'"),
                            (lambda t: t[1].update(pos=0), "two tracks of playlist 8 are at one pos"),
                            (lambda t: t.append("a string"), "tracks are not a list of JSON objects")):
        bad = playlist(8, [1, 2])
        change(bad["tracks"])
        path = write_slice(tmp_path / message[:5], 0, [playlist(7, [3]), bad])
        with pytest.raises(DataError, match=f"^mpd.slice.0-999.json:{pid_line(path, 8)}: .*{message}"):
            import_dataset("mpd", path)


def test_tracks_without_pos_keep_their_place_and_playlists_must_be_objects(tmp_path):
    loose = playlist(3, [6, 5, 4])
    for t in loose["tracks"]:
        del t["pos"]
    dataset = import_dataset("mpd", write_slice(tmp_path / "a", 0, [loose]))
    assert [i[-1] for i, _, _ in sequences(dataset)["3"]] == ["6", "5", "4"]
    with pytest.raises(DataError, match="^mpd.slice.0-999.json: its playlist 2 is not a JSON object"):
        import_dataset("mpd", write_slice(tmp_path / "b", 0, [playlist(1, [1]), [1, 2]]))
    with pytest.raises(DataError, match="is the RecSys Challenge set"):
        import_dataset("mpd", write_slice(tmp_path / "c", 0, [playlist(1, [1]) | {"num_samples": 5}]))


def test_descriptions_and_durations_follow_what_each_track_has(tmp_path):
    lists = [playlist(0, [1, 2, 3, 4, 5])]
    t = lists[0]["tracks"]
    t[0].update(album_name="Song 1")  # a single: its album is its title
    t[1].update(artist_name="", album_name="")
    t[2].update(artist_name=None, track_name=None, duration_ms=1)
    t[3].update(album_name=17, duration_ms=0)
    t[4].update(duration_ms=True)
    catalog = import_dataset("mpd", write_slice(tmp_path, 0, lists)).catalog
    assert catalog.text["description"] == ["Song 1. A song by Artist 1.", "Song 2. A song.",
                                           "A song, from Album 1.", "Song 4. A song by Artist 1.",
                                           "Song 5. A song by Artist 2, from Album 2."]
    assert catalog.text["title"][2] == "spotify:track:0003"  # no name and no artist: its id
    assert catalog.duration[0] == pytest.approx(200.001) and catalog.duration[1] == pytest.approx(200.002)
    assert catalog.duration[2] == pytest.approx(0.001) and catalog.duration[3] == 0 and catalog.duration[4] == 0
    assert catalog.tags == [()] * 5 and catalog.duration.dtype == "float32"


@pytest.mark.parametrize("ms, seconds", [(999_999_999, 999_999.999), (1_000_000_000, 0.0), (-5, 0.0)])
def test_a_duration_beyond_eleven_days_or_below_zero_is_unknown(tmp_path, ms, seconds):
    lists = [playlist(0, [1])]
    lists[0]["tracks"][0]["duration_ms"] = ms
    assert import_dataset("mpd", write_slice(tmp_path, 0, lists)).catalog.duration[0] == pytest.approx(seconds)


def test_a_sampled_track_takes_its_metadata_from_a_kept_playlist(tmp_path):
    pids = range(40)
    kept = [p for p in pids if keep_user(str(p), 0.5, 0)]
    dropped = [p for p in pids if not keep_user(str(p), 0.5, 0)]
    first, later = playlist(dropped[0], [1]), playlist(kept[-1], [1])
    first["tracks"][0]["track_name"] = "Name In A Dropped Playlist"
    dataset = import_dataset("mpd", write_slice(tmp_path, 0, [first, later]),
                             options=ReadOptions(sample_users=0.5, seed=0))
    assert dataset.catalog.text["title"] == ["Song 1"]


def test_names_the_device_would_refuse_are_repaired_and_counted_by_slice_and_line(tmp_path):
    """A release's files cannot be edited (a slice that is fails its checksum): such names are repaired, and the
    warning names the first one's slice and line."""
    bad = playlist(7, [1, 2, 3])
    bad["tracks"][0]["track_name"] = "tab\tinside"
    bad["tracks"][1]["artist_name"] = "half \ud83d of a smile"
    bad["tracks"][2]["album_name"] = "nul\x00inside"
    bad["tracks"][2]["track_name"] = "Long " * 300
    folder = tmp_path / "data"
    write_slice(folder, 0, [playlist(1, [4])])
    path = write_slice(folder, 1000, [bad])
    dataset = import_dataset("mpd", folder)
    row = {ident[-1]: r for r, ident in enumerate(dataset.catalog.item_ids)}
    text = dataset.catalog.text
    assert text["title"][row["1"]] == "tab inside" and text["creator"][row["2"]] == "half \ufffd of a smile"
    assert len(text["title"][row["3"]]) == 1000 and text["title"][row["3"]].endswith("…")
    assert text["description"][row["3"]].endswith(", from nul inside.")
    assert dataset.meta["warnings"] == [
        "4 names held text the device refuses or garbles and were repaired (control characters and line breaks "
        "became spaces, half characters U+FFFD, names past the device's length limit (1,000 characters, 256 for a tag) were cut); the first: "
        f"mpd.slice.1000-1999.json:{pid_line(path, 7)}: the track name holds the control character U+0009, which "
        "shows as nothing or garbles the line on a screen"]
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["data", "import", "mpd", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert load_dataset(out).catalog.text["creator"][row["2"]] == "half \ufffd of a smile"  # it can be written


def test_a_cut_or_too_deep_slice_says_so(tmp_path):
    path = write_slice(tmp_path, 0, [playlist(1, [1, 2])])
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match=r"^mpd.slice.0-999.json:\d+: is not JSON .*is the file cut short\?\)$") as err:
        import_dataset("mpd", path)
    assert err.value.line > 10
    path.write_text('{"playlists": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(DataError, match="^mpd.slice.0-999.json: is JSON nested too deep to be a Million Playlist"):
        import_dataset("mpd", path)
    path.write_text("[]")
    with pytest.raises(DataError, match="for a log of your own layout use FORMAT jsonl .one event a line.$"):
        import_dataset("mpd", path)


def test_skipped_tracks_of_a_folder_name_their_slice_and_later_errors_their_file(tmp_path):
    folder = tmp_path / "data"
    write_slice(folder, 0, [playlist(0, [1, 2])])
    broken = playlist(1000, [3, 4])
    del broken["tracks"][0]["track_uri"]
    second = write_slice(folder, 1000, [broken])
    meta = import_dataset("mpd", folder, options=ReadOptions(skip_bad_rows=True)).meta
    assert meta["skipped_rows"]["a track without track_uri"]["first_lines"] == [
        f"mpd.slice.1000-1999.json:{pid_line(second, 1000)}"]
    long_id = playlist(7, [1])
    long_id["tracks"][0]["track_uri"] = "spotify:track:" + "x" * 300
    path = write_slice(tmp_path / "long", 0, [long_id])
    with pytest.raises(DataError, match=f"^mpd.slice.0-999.json:{pid_line(path, 7)}: "):
        import_dataset("mpd", path)


def test_an_album_name_on_two_lines_stays_in_the_description(tmp_path):
    lists = [playlist(0, [1])]
    lists[0]["tracks"][0]["album_name"] = "Live\nat Wembley"
    dataset = import_dataset("mpd", write_slice(tmp_path, 0, lists))
    assert dataset.catalog.text["description"] == ["Song 1. A song by Artist 1, from Live\nat Wembley."]
    assert "warnings" not in dataset.meta  # a description may hold a line break: nothing was repaired


@pytest.mark.parametrize("end", ["\r\n", "\r"])
def test_a_slice_saved_with_other_line_ends_reads_the_same_and_names_the_same_lines(tmp_path, end):
    lists = [playlist(0, [5, 1]), playlist(3, [2], modified="yesterday")]
    unix = write_slice(tmp_path / "unix", 0, lists)
    other = tmp_path / "other" / unix.name
    other.parent.mkdir()
    other.write_bytes(unix.read_bytes().replace(b"\n", end.encode()))
    lines = []
    for path in (unix, other):
        with pytest.raises(DataError, match="playlist 3's modified_at is 'yesterday'") as err:
            import_dataset("mpd", path)
        lines.append(err.value.line)
    assert lines == [pid_line(unix, 3)] * 2
    lists[1]["modified_at"] = DAY_2
    write_slice(tmp_path / "unix", 0, lists)
    other.write_bytes(unix.read_bytes().replace(b"\n", end.encode()))
    assert sequences(import_dataset("mpd", other)) == sequences(import_dataset("mpd", unix))


def test_a_cut_gzip_slice_is_named_not_a_crash(tmp_path):
    path = write_slice(tmp_path, 0, [playlist(0, [1, 2, 3])], suffix=".gz")
    path.write_bytes(path.read_bytes()[:-12])  # the stream's end and its checksum gone
    with pytest.raises(DataError, match=r"^mpd.slice.0-999.json.gz: cannot be read to its end"):
        import_dataset("mpd", path)


def test_a_slice_in_another_encoding_is_asked_about(tmp_path):
    path = write_slice(tmp_path, 0, [playlist(0, [1])])
    path.write_bytes(path.read_bytes().replace(b"Song 1", "Caf\xe9".encode("latin-1")))
    with pytest.raises(DataError, match="^mpd.slice.0-999.json:\\d+: not valid utf-8 text .*the release writes its "
                                        "files in UTF-8"):
        import_dataset("mpd", path)
    empty = tmp_path / "empty" / "mpd.slice.0-999.json"
    empty.parent.mkdir()
    empty.write_text("  \n")
    with pytest.raises(DataError) as err:
        import_dataset("mpd", empty)
    assert str(err.value) == ("mpd.slice.0-999.json: is empty: a Million Playlist Dataset slice is one JSON object of "
                              "1,000 playlists (is the download complete?)")


names = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=6)
TRACK_KEYS = ("pos", "track_uri", "track_name", "artist_name", "album_name", "duration_ms")


def spoiled(valid, keys):
    """A valid object; one in five has a field replaced by any JSON value or left out."""
    def apply(t):
        obj, junk, drop, dice = t
        return obj if dice != 3 else {k: v for k, v in {**obj, **junk}.items() if k not in drop}
    return st.tuples(valid, st.dictionaries(st.sampled_from(keys), json_values, max_size=1),
                     st.lists(st.sampled_from(keys), max_size=1), st.integers(0, 4)).map(apply)


tracks = spoiled(st.fixed_dictionaries({
    "pos": st.integers(0, 60), "track_uri": st.sampled_from(["spotify:track:1", "spotify:track:2", " x "]),
    "track_name": names, "artist_name": names, "album_name": names,
    "duration_ms": st.integers(-5, 10**10)}), TRACK_KEYS)
playlists = st.lists(spoiled(st.fixed_dictionaries({
    "pid": st.integers(0, 10**6), "modified_at": st.integers(-5, 2 * 10**9), "tracks": st.lists(tracks, max_size=4)}),
    ("pid", "modified_at", "tracks", "num_holdouts")), max_size=4) | st.lists(json_values, max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lists=playlists, skip=st.booleans())
def test_any_json_slice_imports_or_is_a_data_error(tmp_path, lists, skip):
    path = write_slice(tmp_path, 0, lists)
    try:
        dataset = import_dataset("mpd", path, options=ReadOptions(skip_bad_rows=skip))
    except DataError:
        return
    assert len(dataset.interactions) > 0 and len(dataset.catalog) > 0


def test_an_empty_slice_says_so_and_a_dot_path_keeps_its_folder_name(tmp_path, monkeypatch):
    path = tmp_path / "mpd.slice.0-999.json"
    path.write_text("")
    with pytest.raises(DataError, match="^mpd.slice.0-999.json: is empty: a Million Playlist Dataset slice is one"):
        import_dataset("mpd", path)
    root = release(tmp_path / "dl")
    monkeypatch.chdir(root / "data")
    assert import_dataset("mpd", ".").meta["source"] == "data"


@pytest.mark.parametrize("bad", ['"8"', "null", "-3", "8.5"])
def test_a_pid_that_is_no_whole_number_is_named_at_its_own_line(tmp_path, bad):
    path = write_slice(tmp_path, 0, [playlist(7, [3, 4, 5]), playlist(8, [1, 2]), playlist(9, [6])])
    line = pid_line(path, 8)
    path.write_text(path.read_text().replace('"pid": 8,', f'"pid": {bad},'))
    with pytest.raises(DataError, match=f"^mpd.slice.0-999.json:{line}: its playlist 2 has no pid") as err:
        import_dataset("mpd", path)
    assert err.value.line == line


def test_a_slice_whose_pid_keys_do_not_match_its_playlists_names_no_line(tmp_path):
    """A playlist without a pid key leaves the keys' order meaningless: no line rather than a wrong one."""
    nameless = playlist(8, [1, 2])
    del nameless["pid"]
    path = write_slice(tmp_path, 0, [playlist(7, [3]), nameless, playlist(9, [6])])
    with pytest.raises(DataError, match="^mpd.slice.0-999.json: its playlist 2 has no pid") as err:
        import_dataset("mpd", path)
    assert err.value.line is None


def test_a_pid_key_inside_a_track_leaves_the_bad_pid_without_a_line(tmp_path):
    """The keys' order names a playlist's line only when each playlist has one pid key: a track's own
    "pid" field would shift every playlist after it onto another's line."""
    tracked = playlist(9, [6])
    tracked["tracks"][0]["pid"] = 123
    path = write_slice(tmp_path, 0, [playlist(7, [3]), playlist(8, [1, 2]), tracked])
    path.write_text(path.read_text().replace('"pid": 8,', '"pid": "8",'))
    with pytest.raises(DataError, match="^mpd.slice.0-999.json: its playlist 2 has no pid") as err:
        import_dataset("mpd", path)
    assert err.value.line is None
