"""FORMAT 30music: 30Music's Idomaar files (play events, tracks, artists), built here as small replicas in the
release's layout (no download)."""

from __future__ import annotations

import json
import re

import numpy as np
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


def play(event_id, ts, user, track, playtime=100, sep="\t"):
    links = {"subjects": [{"type": "user", "id": user}], "objects": [{"type": "track", "id": track}]}
    return f"event.play\t{event_id}\t{ts}\t{json.dumps({'playtime': playtime})}{sep}{json.dumps(links)}"


def track(ident, name, duration, artist=None):
    links = {"artists": [{"type": "person", "id": artist}] if artist is not None else [], "albums": [],
             "tags": [{"type": "tag", "id": 9}]}
    props = {"duration": duration, "playcount": 3, "MBID": None, "name": name}
    return f"track\t{ident}\t-1\t{json.dumps(props)}\t{json.dumps(links)}"


def person(ident, name):
    return f"person\t{ident}\t-1\t{json.dumps({'MBID': None, 'name': name})}"


EVENTS_LINES = [play(0, 1390231051, 7, 42, 118), play(1, 1390231300, 7, 43, -1), play(2, 1390230000, 8, 42, 236),
                play(3, 1390232000, 7, 44, 50)]
TRACKS_LINES = [track(42, "Heal+the+World", 236, artist=3), track(43, "Caf%C3%A9+del+Mar", -1, artist=4),
                track(44, "No+Artist", 100), track(45, "never played {", 1)]
PERSONS_LINES = [person(3, "Michael+Jackson"), person(4, "Energy+52"), person(5, "Unused")]


def download(root, events=EVENTS_LINES, tracks=TRACKS_LINES, persons=PERSONS_LINES):
    (root / "relations").mkdir(parents=True)
    (root / "entities").mkdir()
    (root / "relations" / "events.idomaar").write_text("\n".join(events) + "\n")
    if tracks is not None:
        (root / "entities" / "tracks.idomaar").write_text("\n".join(tracks) + "\n")
    if persons is not None:
        (root / "entities" / "persons.idomaar").write_text("\n".join(persons) + "\n")
    return root


def sequences(dataset):
    log = dataset.interactions
    out: dict[str, list] = {}
    for u, i, t, e, v in zip(log.user, log.item, log.timestamp, log.event, log.value):
        out.setdefault(dataset.user_ids[u], []).append((dataset.catalog.item_ids[i], int(t), EVENTS[e],
                                                         round(float(v), 4)))
    return out


def test_plays_become_shares_of_tracks_named_from_the_entity_files(tmp_path):
    dataset = import_dataset("30music", download(tmp_path / "ThirtyMusic"))
    assert sequences(dataset) == {
        "7": [("42", 1390231051, "play", 0.5), ("43", 1390231300, "play", 1.0), ("44", 1390232000, "play", 0.5)],
        "8": [("42", 1390230000, "play", 1.0)]}  # 236 s of 236; 43 has no duration, its play no share
    catalog = dataset.catalog
    row = {ident: r for r, ident in enumerate(catalog.item_ids)}
    assert catalog.text["title"][row["42"]] == "Heal the World"
    assert catalog.text["title"][row["43"]] == "Café del Mar"  # URL-encoded UTF-8
    assert catalog.text["creator"][row["42"]] == "Michael Jackson"
    assert catalog.text["creator"][row["44"]] == ""
    assert catalog.text["description"][row["43"]] == "Café del Mar. A song by Energy 52."
    assert catalog.text["description"][row["44"]] == "No Artist. A song."
    assert catalog.duration[row["42"]] == 236 and catalog.duration[row["43"]] == 0
    assert set(catalog.text["modality"]) == {"music_track"}
    assert "45" not in row  # never played: not in the catalog (and its broken line never parsed)
    assert dataset.meta["format"] == "30music" and dataset.meta["source"] == "ThirtyMusic"
    assert "warnings" not in dataset.meta


def test_the_events_file_alone_finds_the_entities_and_the_cli_round_trips(tmp_path):
    root = download(tmp_path / "t")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["data", "import", "30music", str(root / "relations" / "events.idomaar"),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    dataset = load_dataset(out)
    assert sequences(dataset) == sequences(import_dataset("30music", root))
    assert dataset.catalog.text["title"] == import_dataset("30music", root).catalog.text["title"]


def test_json_objects_separated_by_a_space_read_as_by_a_tab(tmp_path):
    spaced = [line.replace("}\t{", "} {") for line in EVENTS_LINES]
    assert all("\t{" not in line.split("\t", 3)[3][1:] for line in spaced)
    assert sequences(import_dataset("30music", download(tmp_path / "a", spaced))) == \
        sequences(import_dataset("30music", download(tmp_path / "b")))


@pytest.mark.parametrize("line, message", [
    (play(9, 1390231051, 7, 42).replace("event.play", "preference.love"),
     ":2: a 'preference.love' line where this file holds 'event.play' lines; FORMAT 30music reads the play"),
    ("event.play\t9\t1390231051\t{\"playtime\": 3}\t{\"subjects\": [{\"type\"",
     ":2: its JSON is not readable \\(.*is the line cut short\\?\\) \\(or pass --skip-bad-rows"),
    (play(9, 1390231051, 7, 42).replace('"user"', '"person"'),
     ":2: its links do not name one user \\(subjects\\) and one track \\(objects\\)"),
    ("event.play 9 1390231051", ":2: not an Idomaar line"),
    (play(9, "yesterday", 7, 42), ":2: .*yesterday"),
])
def test_a_bad_event_line_names_its_line(tmp_path, line, message):
    root = download(tmp_path / "t", [EVENTS_LINES[0], line, *EVENTS_LINES[1:]])
    with pytest.raises(DataError, match=f"^events.idomaar{message}"):
        import_dataset("30music", root)


def test_skip_bad_rows_counts_unreadable_lines_but_never_other_kinds(tmp_path):
    cut = EVENTS_LINES[0][:-5]
    root = download(tmp_path / "t", [cut, *EVENTS_LINES[1:]])
    dataset = import_dataset("30music", root, options=ReadOptions(skip_bad_rows=True))
    assert len(dataset.interactions) == 3
    assert dataset.meta["skipped_rows"]["its JSON is not readable"] == {"rows": 1, "first_lines": [1]}
    love = play(9, 1390231051, 7, 42).replace("event.play", "event.love")
    with pytest.raises(DataError, match="a 'event.love' line"):
        import_dataset("30music", download(tmp_path / "u", [love, *EVENTS_LINES]),
                       options=ReadOptions(skip_bad_rows=True))


def test_missing_entity_files_and_tracks_leave_ids_and_say_so(tmp_path):
    bare = import_dataset("30music", download(tmp_path / "a", tracks=None, persons=None))
    assert bare.catalog.text["title"] == bare.catalog.item_ids  # titled by their ids
    assert "no entities/tracks.idomaar beside the events" in bare.meta["warnings"][0]
    assert [v for *_, v in sequences(bare)["7"]] == [1.0, 1.0, 1.0]  # no durations: no shares
    partial = import_dataset("30music", download(tmp_path / "b", tracks=TRACKS_LINES[:1], persons=None))
    assert "2 of the 3 tracks played are not in tracks.idomaar" in partial.meta["warnings"][0]
    assert partial.catalog.text["creator"] == ["", "", ""]  # no persons file: no artist names


def test_entity_files_that_would_be_read_wrong_are_refused(tmp_path):
    with pytest.raises(DataError, match="^tracks.idomaar:3: track 42 is listed twice .first at line 1."):
        import_dataset("30music", download(tmp_path / "a", tracks=[*TRACKS_LINES[:2], TRACKS_LINES[0]]))
    with pytest.raises(DataError, match="^tracks.idomaar:2: expected a 'track' line"):
        import_dataset("30music", download(tmp_path / "b", tracks=[TRACKS_LINES[0], PERSONS_LINES[0]]))
    with pytest.raises(DataError, match="^tracks.idomaar:1: track 42: its JSON is not readable"):
        import_dataset("30music", download(tmp_path / "c", tracks=[TRACKS_LINES[0][:-3], *TRACKS_LINES[1:]]))
    repaired = import_dataset("30music", download(tmp_path / "d", tracks=[track(42, "bad%00name", 3),
                                                                          *TRACKS_LINES[1:]]))
    assert repaired.catalog.text["title"][repaired.catalog.index["42"]] == "bad name"
    assert repaired.meta["warnings"][-1].endswith("the first: tracks.idomaar:1: the track name holds a NUL character, "
                                                  "which the device refuses in text")


def test_paths_that_are_no_30music_events_are_named(tmp_path):
    root = download(tmp_path / "t")
    with pytest.raises(DataError, match="^tracks.idomaar: is an entity file"):
        import_dataset("30music", root / "entities" / "tracks.idomaar")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="^empty: holds no relations/events.idomaar"):
        import_dataset("30music", tmp_path / "empty")


def test_a_sample_keeps_whole_users_and_only_the_tracks_they_played(tmp_path):
    lines = [play(n, 1390000000 + n, n % 30, 1000 + n % 30 * 2 + n // 30 % 2) for n in range(120)]
    tracks = [track(1000 + i, f"Song+{i}", 200) for i in range(60)]
    dataset = import_dataset("30music", download(tmp_path / "t", lines, tracks, []),
                             options=ReadOptions(sample_users=0.5, seed=1))
    kept = {str(u) for u in range(30) if keep_user(str(u), 0.5, 1)}
    assert set(sequences(dataset)) == kept and 5 < len(kept) < 25
    assert sorted(dataset.catalog.item_ids) == sorted(str(1000 + int(u) * 2 + b) for u in kept for b in (0, 1))
    assert all(title.startswith("Song ") for title in dataset.catalog.text["title"])


@pytest.mark.parametrize("kwargs, flag", [
    ({"columns": ColumnMap(user="uid")}, "--user-col"),
    ({"options": ReadOptions(delimiter=";")}, "--delimiter"),
    ({"items": "tracks.csv"}, "--items"),
])
def test_options_for_a_log_of_your_own_layout_are_refused(tmp_path, kwargs, flag):
    with pytest.raises(ConfigError, match=f"30music .*{flag}"):
        import_dataset("30music", download(tmp_path / "t"), **kwargs)


def test_chunks_of_one_or_two_rows_read_the_same_log_and_name_later_lines(tmp_path):
    root = download(tmp_path / "t")
    whole = sequences(import_dataset("30music", root))
    for rows in (1, 2):
        assert sequences(import_dataset("30music", root, options=ReadOptions(chunk_rows=rows))) == whole
    late = download(tmp_path / "u", [*EVENTS_LINES, EVENTS_LINES[0][:-3]])
    with pytest.raises(DataError, match="^events.idomaar:5: its JSON is not readable"):
        import_dataset("30music", late, options=ReadOptions(chunk_rows=1))


def test_skip_below_makes_plays_of_a_small_known_share_skips(tmp_path):
    root = download(tmp_path / "t")
    dataset = import_dataset("30music", root, columns=ColumnMap(skip_below=0.6))
    assert [(i, e) for i, _, e, _ in sequences(dataset)["7"]] == [("42", "skip"), ("43", "play"), ("44", "skip")]
    assert sequences(dataset)["8"] == [("42", 1390230000, "play", 1.0)]  # a whole play
    assert dataset.meta["plays_as_skips"] == {"below": 0.6, "events": 2}
    unchanged = import_dataset("30music", root, columns=ColumnMap(skip_below=0.5))  # 0.5 is not below 0.5
    assert [e for _, _, e, _ in sequences(unchanged)["7"]] == ["play"] * 3
    with pytest.raises(ConfigError, match="^mpd holds tracks added to playlists, not plays; --skip-below is for "
                                          "FORMAT csv, parquet, jsonl or 30music"):
        import_dataset("mpd", root, columns=ColumnMap(skip_below=0.5))


def test_an_events_file_without_lines_is_named_not_a_crash(tmp_path):
    for text in ("", "\n\n"):
        root = tmp_path / str(len(text))
        download(root)
        (root / "relations" / "events.idomaar").write_text(text)
        with pytest.raises(DataError, match="^events.idomaar: holds no play events"):
            import_dataset("30music", root)


def test_a_chunk_reader_that_yields_no_row_is_a_data_error(tmp_path):
    from edgerec.data.loaders import read_interactions

    with pytest.raises(DataError, match="^log: holds no events"):
        read_interactions(tmp_path / "log", ColumnMap(user="user", item="item", time="time", event=None,
                                                      value=None, device=None),
                          None, ReadOptions(header=("user", "item", "time")), chunks=lambda skipped: iter(()))


def test_links_and_playtimes_read_only_as_the_format_gives_them(tmp_path):
    two_users = play(9, 1390231051, 7, 42).replace('[{"type": "user", "id": 7}]',
                                                   '[{"type": "user", "id": 7}, {"type": "user", "id": 8}]')
    for bad, reason in ((two_users, "subjects lists 2 entities"),
                        (play(9, 1390231051, True, 42), "the user's id is true, not a whole number or text"),
                        (play(9, 1390231051, 7, None), "the track's id is null, not a whole number or text"),
                        # said whole: the links' JSON cut at 80 characters used to end before this id
                        (play(9, 1390231051, 7, 42.5), "the track's id is 42.5, not a whole number or text"),
                        (play(9, 1390231051, 7, 42).replace('[{"type": "track", "id": 42}]', '["42"]'),
                         "objects holds \"42\", not a 'track'"),
                        (play(9, 1390231051, 7, 42).replace('"objects"', '"items"'), "objects is null, not a list"),
                        (play(9, 1390231051, 7, 42).replace('[{"type": "track", "id": 42}]', '5'),
                         "objects is 5, not a list"),
                        # a value shown whole up to 40 characters of JSON, cut past them
                        (play(9, 1390231051, "u" * 38, 42).replace('"user"', '"member"'),
                         "subjects holds \"member\", not a 'user'"),
                        (play(9, 1390231051, 7, 42).replace('"track"', '"' + "b" * 38 + '"'),
                         'objects holds "' + "b" * 38 + '", not a \'track\''),
                        (play(9, 1390231051, 7, 42).replace('"track"', '"' + "b" * 39 + '"'),
                         'objects holds "' + "b" * 36 + '..., not a \'track\''),
                        (play(9, 1390231051, 7, 42).replace('"track"', '"' + "a" * 60 + '"'),
                         'objects holds "' + "a" * 36 + '..., not a \'track\''),
                        (play(9, 1390231051, " ", 42), "the user's id is \" \", not a whole number or text")):
        with pytest.raises(DataError, match=r"^events.idomaar:1: its links do not name one user \(subjects\) and "
                                            r"one track \(objects\); " + re.escape(reason) + r" \(or pass"):
            import_dataset("30music", download(tmp_path / str(len(list(tmp_path.iterdir()))), [bad]))
    root = download(tmp_path / "skip", [two_users, *EVENTS_LINES])
    skipped = import_dataset("30music", root, options=ReadOptions(skip_bad_rows=True)).meta["skipped_rows"]
    assert skipped == {"its links do not name one user": {"rows": 1, "first_lines": [1]}}
    lines = [play(0, 1390231051, " 7 ", "42", 23.6), play(1, 1390231052, 7, 42, 0), play(2, 1390231053, 7, 42, True),
             play(3, 1390231054, 7, 42, 9_999_999), play(4, 1390231055, 7, 42, 10_000_000), "",
             play(5, 1390231056, 7, 42, 1)]
    got = sequences(import_dataset("30music", download(tmp_path / "ok", lines)))
    assert [v for *_, v in got["7"]] == pytest.approx([0.1, 0.0, 1.0, 42372.88, 1.0, round(1 / 236, 4)])  # 0 s is a share of 0


def test_durations_and_artists_read_only_as_the_format_gives_them(tmp_path):
    def with_artists(ident, duration, artists):
        props = {"duration": duration, "playcount": 1, "MBID": None, "name": f"T{ident}"}
        return f"track\t{ident}\t-1\t{json.dumps(props)}\t{json.dumps({'artists': artists})}"

    tracks = [with_artists(42, 1, [{"type": "album", "id": 3}, "x", {"type": "person", "id": True},
                                   {"type": "person", "id": 4}]),
              with_artists(43, 0, {"type": "person", "id": 3}), with_artists(44, 9_999_999, []),
              with_artists(45, 10_000_000, [{"type": "person", "id": 3}])]
    events = [play(n, 1390231051 + n, 7, 42 + n, -1) for n in range(4)]
    catalog = import_dataset("30music", download(tmp_path / "a", events, tracks)).catalog
    assert catalog.text["creator"] == ["Energy 52", "", "", "Michael Jackson"]
    assert catalog.text["description"] == ["T42. A song by Energy 52.", "T43. A song.", "T44. A song.",
                                           "T45. A song by Michael Jackson."]
    assert catalog.duration.tolist() == [1.0, 0.0, 9_999_999.0, 0.0] and catalog.duration.dtype == "float32"
    assert catalog.tags == [()] * 4
    nameless = [track(42, "", 10, artist=3), track(43, "", 10)]
    catalog = import_dataset("30music", download(tmp_path / "b", events[:2], nameless)).catalog
    assert catalog.text["description"] == ["A song by Michael Jackson.", ""]


def test_an_artist_name_the_device_refuses_is_repaired_and_named_by_its_persons_line(tmp_path):
    persons = [person(4, "Energy+52"), person(3, "Michael%0AJackson")]
    dataset = import_dataset("30music", download(tmp_path / "a", persons=persons))
    assert dataset.catalog.text["creator"][dataset.catalog.index["42"]] == "Michael Jackson"
    assert dataset.meta["warnings"] == [
        "1 name held text the device refuses or garbles and was repaired (control characters and line breaks "
        "became spaces, half characters U+FFFD, names past the device's length limit (1,000 characters, 256 for a tag) were cut); the first: persons.idomaar:2: "
        "the artist name holds a line break (U+000A); it is shown on one line"]


def test_names_that_are_no_utf8_read_as_latin1_and_nameless_tracks_take_their_artist(tmp_path):
    tracks = [track(42, "Caf%E9", 10, artist=3), track(43, "", 10, artist=4), track(44, "", 10)]
    dataset = import_dataset("30music", download(tmp_path / "a", tracks=tracks))
    assert dataset.catalog.text["title"] == ["Café", "a track by Energy 52", "44"]
    assert dataset.catalog.text["description"] == ["Café. A song by Michael Jackson.", "A song by Energy 52.", ""]


def test_artists_missing_from_persons_are_counted(tmp_path):
    got = import_dataset("30music", download(tmp_path / "a", persons=PERSONS_LINES[1:])).meta["warnings"]
    assert got == ["1 of the tracks named have an artist that is not in persons.idomaar: their artist is left empty"]
    got = import_dataset("30music", download(tmp_path / "b", persons=None)).meta["warnings"]
    assert got == ["no entities/persons.idomaar beside the events: the artists have no names (import the download's "
                   "folder)"]


def test_the_warnings_say_how_many_tracks_lack_names(tmp_path):
    bare = import_dataset("30music", download(tmp_path / "a", tracks=None)).meta["warnings"]
    assert bare == ["no entities/tracks.idomaar beside the events: the tracks have ids but no names (import the "
                    "download's folder)"]
    partial = import_dataset("30music", download(tmp_path / "b", tracks=TRACKS_LINES[1:])).meta["warnings"]
    assert partial == ["1 of the 3 tracks played are not in tracks.idomaar: they have ids but no names (each is "
                       "titled by its id)"]


@pytest.mark.parametrize("fmt, home", [("netflix", "its movie_titles file"), ("mpd", "the playlists' tracks"),
                                       ("30music", "its entities folder"), ("ml-1m", "the MovieLens folder")])
def test_each_release_names_where_it_reads_its_items(tmp_path, fmt, home):
    from edgerec.data.loaders import import_dataset as imported

    with pytest.raises(ConfigError) as err:
        imported(fmt, tmp_path, items="items.csv")
    assert str(err.value) == f"{fmt} reads its items from {home}; --items is for FORMAT csv, parquet or jsonl"
    with pytest.raises(ConfigError) as err:
        imported(fmt, tmp_path, item_columns={"title": "name"}, items_delimiter=";", items_header=("a",),
                 options=ReadOptions(duration_unit="ms"))
    assert str(err.value) == (f"{fmt} reads its items from {home}; --item-columns and --items-delimiter and "
                              "--items-header and --duration-unit are for FORMAT csv, parquet or jsonl")


def test_the_log_of_a_release_is_float32_and_says_what_it_holds(tmp_path):
    dataset = import_dataset("30music", download(tmp_path / "t"))
    assert dataset.interactions.value.dtype == np.float32
    assert dataset.meta["value"] == "the share of the track played (playtime / duration; 1 when either is unknown)"
    one_second = download(tmp_path / "u", [play(0, 1390231051, 7, 46, 1)], [track(46, "Blip", 1)], [])
    assert sequences(import_dataset("30music", one_second))["7"][0][3] == 1.0  # 1 s of a 1-second track
    half = download(tmp_path / "v", [play(0, 1390231051, 7, 46, 1)], [track(46, "Blip", 2)], [])
    assert sequences(import_dataset("30music", half))["7"][0][3] == 0.5


def test_a_missing_path_or_any_entity_file_is_named(tmp_path):
    with pytest.raises(DataError) as err:
        import_dataset("30music", tmp_path / "missing")
    assert str(err.value) == "missing: not found; pass the 30Music folder or its relations/events.idomaar"
    root = download(tmp_path / "t")
    (root / "entities" / "albums.idomaar").write_text("album\t1\t-1\t{}\n")
    with pytest.raises(DataError) as err:
        import_dataset("30music", root / "entities" / "albums.idomaar")
    assert str(err.value) == ("albums.idomaar: is an entity file; pass the 30Music folder, or its "
                              "relations/events.idomaar")


play_lines = st.tuples(st.integers(0, 5), st.integers(1, 2 * 10**9), st.integers(-1, 600), st.integers(40, 46),
                       st.integers(0, 6), json_values, st.text(max_size=12)).map(
    lambda t: [play(0, t[1], t[0], t[3], t[2]),  # one in seven lines spoiled in one of six ways
               play(0, t[1], t[0], t[3], t[2]).replace('"track"', json.dumps(t[5])),
               play(0, t[1], t[0], t[3], t[2]).replace('{"playtime"', '{"x"' if t[4] else t[6]),
               f"event.play\t{t[6]}\t{t[1]}\t{json.dumps(t[5])}",
               play(0, t[1], t[0], t[3], t[2])[: len(t[6])],
               t[6], play(0, t[6] or "-1", t[0], t[3], t[2])][t[4] if t[4] < 5 and t[2] % 7 == 0 else 0])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(play_lines, min_size=1, max_size=6), skip=st.booleans())
def test_any_events_file_imports_or_is_a_data_error(tmp_path, lines, skip):
    root = tmp_path / "t"
    if root.exists():
        import shutil

        shutil.rmtree(root)
    download(root, [line.replace("\n", " ").replace("\r", " ") for line in lines])
    try:
        dataset = import_dataset("30music", root, options=ReadOptions(skip_bad_rows=skip))
    except DataError:
        return
    assert len(dataset.interactions) > 0 and np.isfinite(dataset.interactions.value).all()


def test_an_event_read_twice_is_refused_at_its_second_line(tmp_path):
    doubled = download(tmp_path / "a", EVENTS_LINES + EVENTS_LINES)
    with pytest.raises(DataError) as err:
        import_dataset("30music", doubled)
    assert str(err.value) == ("events.idomaar:5: event 0 comes again (first at line 1), and 4 events in all: is the "
                              "file read twice, or two copies joined? Keep one line an event")
    with pytest.raises(DataError, match="^events.idomaar:3: event 1 comes again .first at line 2., and 1 events"):
        import_dataset("30music", download(tmp_path / "b", [EVENTS_LINES[0], EVENTS_LINES[1], EVENTS_LINES[1]]),
                       options=ReadOptions(skip_bad_rows=True))  # no option makes a copy right


def test_a_play_of_zero_seconds_is_a_share_of_zero_and_a_skip_below_any_bound(tmp_path):
    root = download(tmp_path / "t", [play(0, 1390231051, 7, 42, 0), play(1, 1390231052, 7, 42, -1)])
    assert [v for *_, v in sequences(import_dataset("30music", root))["7"]] == [0.0, 1.0]
    skipped = import_dataset("30music", root, columns=ColumnMap(skip_below=0.01))
    assert [e for _, _, e, _ in sequences(skipped)["7"]] == ["skip", "play"]


@pytest.mark.parametrize("bound", [0.0, -1.0, 1.5, 50.0])
def test_skip_below_for_30music_is_a_share(tmp_path, bound):
    with pytest.raises(ConfigError, match="^--skip-below for 30music compares the share of the track played, from 0 "
                                          f"to 1 .* got {bound:g}$"):
        import_dataset("30music", download(tmp_path / "t"), columns=ColumnMap(skip_below=bound))
    assert import_dataset("30music", download(tmp_path / "u"), columns=ColumnMap(skip_below=1.0)).meta[
        "plays_as_skips"]["events"] == 2  # shares 0.5 and 0.5 are below 1; the whole play and the unknown one not


def test_the_relations_folder_and_compressed_files_find_everything(tmp_path):
    import gzip as gz

    root = download(tmp_path / "t")
    whole = import_dataset("30music", root)
    from_relations = import_dataset("30music", root / "relations")
    assert sequences(from_relations) == sequences(whole) and from_relations.catalog.text == whole.catalog.text
    for name in ("relations/events.idomaar", "entities/tracks.idomaar", "entities/persons.idomaar"):
        plain = root / name
        (root / (name + ".gz")).write_bytes(gz.compress(plain.read_bytes()))
        plain.unlink()
    packed = import_dataset("30music", root)
    assert sequences(packed) == sequences(whole) and packed.catalog.text == whole.catalog.text
    with pytest.raises(DataError, match="^tracks.idomaar.gz: is an entity file"):
        import_dataset("30music", root / "entities" / "tracks.idomaar.gz")


def test_a_file_in_another_encoding_is_asked_about_not_sent_to_encoding(tmp_path):
    root = download(tmp_path / "t")
    (root / "entities" / "persons.idomaar").write_bytes("person\t3\t-1\t{\"name\": \"Caf\xe9\"}\n".encode("latin-1"))
    with pytest.raises(DataError) as err:
        import_dataset("30music", root)
    assert str(err.value).startswith("persons.idomaar:1: not valid utf-8 text (invalid continuation byte); the "
                                     "release writes its files in UTF-8: is this file from the download")
    assert "--encoding" not in str(err.value)
    events = root / "relations" / "events.idomaar"
    good = events.read_bytes()
    events.write_bytes(good.replace(b"event.play\t3", "event.play\t3 caf\xe9".encode("latin-1")))
    with pytest.raises(DataError, match="^events.idomaar:4: not valid utf-8 text .*the release writes its files in "
                                        "UTF-8: is this file from the download"):
        import_dataset("30music", root)
    events.write_bytes(good)
    (root / "entities" / "persons.idomaar").write_bytes("\ufeffperson".encode("utf-16"))
    with pytest.raises(DataError, match="UTF-16 byte order mark .*: the release writes its files in UTF-8"):
        import_dataset("30music", root)


def test_a_play_without_a_time_or_in_milliseconds_is_named_for_what_it_is(tmp_path):
    for time in ("-1", "1390231051000", "2014-01-20"):
        root = download(tmp_path / time, [EVENTS_LINES[0], play(9, time, 7, 42)])
        with pytest.raises(DataError) as err:
            import_dataset("30music", root)
        assert str(err.value) == (f"events.idomaar:2: its time is not in epoch seconds (found {time!r}; -1 is the "
                                  "release's no time) (or pass --skip-bad-rows to leave such lines out)")
        assert "--time-unit" not in str(err.value)
        dataset = import_dataset("30music", root, options=ReadOptions(skip_bad_rows=True))
        assert dataset.meta["skipped_rows"] == {"its time is not in epoch seconds": {"rows": 1, "first_lines": [2]}}
    only = download(tmp_path / "only", [play(9, "-1", 7, 42)])
    with pytest.raises(DataError) as err:
        import_dataset("30music", only, options=ReadOptions(skip_bad_rows=True))
    assert str(err.value) == "only: every row was left out (1: its time is not in epoch seconds)"
