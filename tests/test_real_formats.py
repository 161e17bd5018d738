"""An outside audit of `edgerec data import` against the published layouts of public audio/video logs:
KuaiRec 2.0 (short video), Last.fm 1K (music), MovieLens 1M and ml-latest, a Yambda-style Parquet log and a
podcast log with awkward ids. Each test builds a small replica of the layout itself (no download)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import pytest
from click.testing import CliRunner
from documented import run_documented

from edgerec.cli.main import cli
from edgerec.data import ReadOptions, import_dataset, load_movielens
from edgerec.data.loaders import ColumnMap
from edgerec.data.schema import EVENT_CODE, EVENTS
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError, DataError

KUAIREC_HEADER = "user_id,video_id,play_duration,video_duration,time,date,timestamp,watch_ratio\n"


def _kuairec_row(user, video, seconds, ratio, duration=10_867):
    """One row of KuaiRec's small_matrix.csv; `seconds` None: the row's time, date and timestamp are NaN
    (pandas writes them empty)."""
    if seconds is None:
        return f"{user},{video},{int(ratio * duration)},{duration},,,,{ratio}\n"
    # KuaiRec's `time` is Beijing time (UTC+8) without a zone; `timestamp` the epoch seconds, 3 decimals
    local = datetime.fromtimestamp(seconds + 8 * 3600, timezone.utc)
    time = local.strftime("%Y-%m-%d %H:%M:%S.") + f"{round(seconds % 1 * 1000):03d}"
    return (f"{user},{video},{int(ratio * duration)},{duration},{time},{local:%Y%m%d}.0,{seconds:.3f},"
            f"{ratio}\n")


def _import(*args):
    return CliRunner().invoke(cli, ["data", "import", *map(str, args)])


def _log(folder):
    dataset = load_dataset(folder)
    log = dataset.interactions
    return [(dataset.user_ids[u], dataset.catalog.item_ids[i], int(t), EVENTS[e], round(float(v), 4))
            for u, i, t, e, v in zip(log.user, log.item, log.timestamp, log.event, log.value)]


def test_kuairec_watch_ratio_below_the_threshold_imports_as_skips(tmp_path):
    """KuaiRec's only signal is the watch ratio (0 for a scroll past, above 1 for replays): every row was a
    play, consumed, with no way to say that a video watched 3% of the way was skipped."""
    path = tmp_path / "small_matrix.csv"
    path.write_text(KUAIREC_HEADER
                    + _kuairec_row(14, 148, 1593898068.378, 0.722)
                    + _kuairec_row(14, 183, 1593898068.1, 0.0)  # same second, earlier: first
                    + _kuairec_row(14, 3649, None, 1.27)  # NaN time: left out with --skip-bad-rows
                    + _kuairec_row(14, 5262, 1593898100.5, 2.5)
                    + _kuairec_row(19, 148, 1593898200.25, 0.4999)
                    + _kuairec_row(19, 183, 1593898300.0, 0.5))
    result = _import("csv", path, "--out", tmp_path / "kuai", "--item-col", "video_id", "--value-col",
                     "watch_ratio", "--skip-below", "0.5", "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    assert "2 plays with a value below 0.5 imported as skips" in result.output
    assert "skipped 1 row (time not readable); first at line(s) 4" in result.output
    assert _log(tmp_path / "kuai") == [
        ("14", "183", 1593898068, "skip", 0.0), ("14", "148", 1593898068, "play", 0.722),
        ("14", "5262", 1593898100, "play", 2.5),
        ("19", "148", 1593898200, "skip", 0.4999), ("19", "183", 1593898300, "play", 0.5)]
    meta = json.loads((tmp_path / "kuai" / "dataset.json").read_text())
    assert meta["plays_as_skips"] == {"below": 0.5, "events": 2}
    # without the threshold every row stays a play, the ratio in `value`
    plain = _import("csv", path, "--out", tmp_path / "plain", "--item-col", "video_id", "--value-col",
                    "watch_ratio", "--skip-bad-rows")
    assert plain.exit_code == 0 and "imported as skips" not in plain.output
    assert {e for *_, e, _ in _log(tmp_path / "plain")} == {"play"}
    assert "plays_as_skips" not in json.loads((tmp_path / "plain" / "dataset.json").read_text())


def test_skip_below_changes_plays_only_and_counts_what_the_sample_kept(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp,event,share\n"
                    + "".join(f"u{u},i{k},{100 + k},{'finish' if k == 0 else 'play'},{k * 10}\n"
                              for u in range(40) for k in range(4)))
    columns = ColumnMap(value="share", skip_below=25)
    full = import_dataset("csv", path, columns=columns)
    events = full.interactions.event.reshape(40, 4)  # sorted by user, then time
    # the finish of share 0 stays a finish; plays of 10 and 20 are skips; 30 is not below 25
    assert (events == [EVENT_CODE["finish"], EVENT_CODE["skip"], EVENT_CODE["skip"], EVENT_CODE["play"]]).all()
    assert full.meta["plays_as_skips"] == {"below": 25, "events": 80}
    half = import_dataset("csv", path, columns=columns, options=ReadOptions(sample_users=0.5, seed=3))
    assert 0 < half.n_users < 40 and half.meta["plays_as_skips"]["events"] == 2 * half.n_users
    assert "warnings" not in full.meta
    # a threshold above every value leaves nothing consumed: train and evaluate refuse later, the import says why
    every = import_dataset("csv", path, columns=ColumnMap(value="share", skip_below=1e9, event=None))
    assert (every.interactions.event == EVENT_CODE["skip"]).all()
    assert every.meta["warnings"][0].startswith("the log's column(s) 'event' were not read")  # event=None
    assert every.meta["warnings"][1:] == ["every event is a skip (--skip-below 1e+09 made all the plays skips): nothing "
                                      "is consumed, so nothing can train or be evaluated; lower the threshold or "
                                      "check --value-col"]


def test_skip_below_refuses_what_it_cannot_read(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\nu,a,1\n")
    with pytest.raises(ConfigError, match=r"--skip-below compares each play's value, but the file has no column "
                                          r"'value'; name .* with --value-col"):
        import_dataset("csv", path, columns=ColumnMap(skip_below=0.5))
    with pytest.raises(ConfigError, match="--skip-below must be a finite number") as err:
        ColumnMap(skip_below=float("nan"))
    assert "0.3 for 30music's share of the track played" in str(err.value)  # its own scale, not only percentages
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1::5::978300760\n")
    (folder / "movies.dat").write_text("1::Toy Story (1995)::Animation\n")
    result = _import("ml-1m", folder, "--out", tmp_path / "o", "--skip-below", "3")
    assert result.exit_code == 1
    assert "ml-1m holds ratings, not plays; --skip-below is for FORMAT csv, parquet, jsonl or 30music" in result.output


@pytest.mark.parametrize("cell", ["nan", "NaN"])
def test_a_nan_time_says_what_to_do(tmp_path, cell):
    """A float time column marks a missing time as NaN (KuaiRec's timestamp through pandas or Polars); the
    refusal read "must hold a timestamp, found 'nan'" without naming --skip-bad-rows."""
    path = tmp_path / "log.csv"
    path.write_text(f"user_id,item_id,timestamp\nu,a,1593898068.378\nu,b,{cell}\n")
    with pytest.raises(DataError, match=r"log\.csv:3: column 'timestamp' is NaN: every event needs its time; fill "
                                        r"it in or drop the row \(an import with --skip-bad-rows"):
        import_dataset("csv", path)
    kept = import_dataset("csv", path, options=ReadOptions(skip_bad_rows=True))
    assert kept.meta["skipped_rows"] == {"time not readable": {"rows": 1, "first_lines": [3]}}


def test_movielens_films_without_genres_read_as_prose(tmp_path):
    """ml-latest's '(no genres listed)' (series such as Cosmos) gave `Cosmos. A film film.`, and a first genre
    starting with a vowel `A animation film.`: the text the content encoder reads."""
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "movies.csv").write_text('movieId,title,genres\n171495,Cosmos,(no genres listed)\n'
                                       '1,Toy Story (1995),Adventure|Animation\n6,Heat (1995),Action|Crime\n'
                                       '11,"American President, The (1995)",Comedy|Drama\n')
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    catalog = load_movielens("ml-latest", folder).catalog
    assert catalog.text["description"] == ["Cosmos. A film.", "Toy Story. An adventure / animation film.",
                                           "Heat. An action / crime film.",
                                           "American President, The. A comedy / drama film."]


def test_lastfm_1k_newest_first_with_tied_seconds_imports_in_time_order(tmp_path):
    """Last.fm 1K lists each user's plays newest first; ties keep the file's order (the stable sort)."""
    rows = [("user_000001", "2009-05-04T23:08:57Z", "", "Мумий Тролль", "", "Владивосток 2000"),
            ("user_000001", "2009-05-04T23:05:57Z", "b10bbbfc-cf9e-42e0-be17-e2c3e1d2600d", "The Beatles", "",
             '"Heroes"'),
            ("user_000001", "2009-05-04T23:05:57Z", "", '"Weird Al" Yankovic', "", "Amish Paradise"),
            ("user_000001", "2009-05-04T22:00:00Z", "", "Sigur Rós", "", "Hoppípolla"),
            ("user_000002", "2009-05-04T23:05:57Z", "", "坂本龍一", "", "Merry Christmas Mr. Lawrence")]
    path = tmp_path / "userid-timestamp-artid-artname-traid-traname.tsv"
    path.write_text("".join("\t".join(r) + "\n" for r in rows) + "user_000003\t2009-05-01T10:00:00Z\t\tbroken\n",
                    encoding="utf-8")
    result = _import("csv", path, "--out", tmp_path / "music", "--delimiter", "tab", "--columns",
                     "user,time,artist_id,artist,track_id,track", "--user-col", "user", "--time-col", "time",
                     "--item-col", "artist+track", "--no-quoting", "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    assert "skipped 1 row (not 6 fields); first at line(s) 6" in result.output
    t = 1241478537  # 2009-05-04T23:08:57Z
    assert [(u, i, ts) for u, i, ts, *_ in _log(tmp_path / "music")] == [
        ("user_000001", "Sigur Rós - Hoppípolla", t - 4137),
        ("user_000001", 'The Beatles - "Heroes"', t - 180),
        ("user_000001", '"Weird Al" Yankovic - Amish Paradise', t - 180),
        ("user_000001", "Мумий Тролль - Владивосток 2000", t),
        ("user_000002", "坂本龍一 - Merry Christmas Mr. Lawrence", t - 180)]


def test_yambda_parquet_with_relative_times_and_a_percentage_imports_exactly(tmp_path):
    """Yambda: uint32 ids, integer seconds from the start of the log (from 0), played_ratio_pct."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "listens.parquet"
    pq.write_table(pa.table({
        "uid": pa.array([100, 100, 100, 7], pa.uint32()), "timestamp": pa.array([5, 0, 5, 0], pa.uint32()),
        "item_id": pa.array([4_294_967_295, 1, 2, 1], pa.uint32()), "is_organic": pa.array([1, 0, 1, 0], pa.uint8()),
        "played_ratio_pct": pa.array([100, 3, 150, 50], pa.uint16()),
        "track_length_seconds": pa.array([200, 180, 240, 180], pa.uint32())}), path)
    result = _import("parquet", path, "--out", tmp_path / "y", "--user-col", "uid", "--value-col",
                     "played_ratio_pct", "--skip-below", "50")
    assert result.exit_code == 0, result.output
    assert "1 play with a value below 50 imported as skips" in result.output
    assert _log(tmp_path / "y") == [("100", "1", 0, "skip", 3.0), ("100", "4294967295", 5, "play", 100.0),
                                    ("100", "2", 5, "play", 150.0), ("7", "1", 0, "play", 50.0)]
    assert np.asarray(load_dataset(tmp_path / "y").interactions.timestamp).min() == 0


# ------------------------------------------------------------------ events and values in the log's own terms


def _yambda_like(path):
    path.write_text("uid,item_id,timestamp,event_type,played_ratio_pct\n"
                    "1,10,100,listen,100\n1,11,200,listen,20\n1,10,300,like,100\n1,12,400,unlike,100\n"
                    "2,11,100,Listen,80\n2,12,150,dislike,100\n2,10,160,listen,150\n")
    return path


def test_event_map_renames_and_drops_the_logs_own_events_and_counts_the_dropped(tmp_path):
    path = _yambda_like(tmp_path / "multi_event.csv")
    result = _import("csv", path, "--out", tmp_path / "d", "--user-col", "uid", "--event-col", "event_type",
                     "--value-col", "played_ratio_pct", "--value-scale", "0.01", "--skip-below", "0.5",
                     "--event-map", "listen=play, unlike=drop,dislike=skip")
    assert result.exit_code == 0, result.output
    assert "left out 1 row of event 'unlike' (--event-map unlike=drop)" in result.output
    dataset = load_dataset(tmp_path / "d")
    log = dataset.interactions
    assert [EVENTS[e] for e in log.event] == ["play", "skip", "like", "play", "skip", "play"]
    assert np.allclose(log.value, [1.0, 0.2, 1.0, 0.8, 1.0, 1.5])  # percentages as shares
    assert dataset.meta["event_map"] == {"map": {"listen": "play", "unlike": "drop", "dislike": "skip"},
                                         "dropped_rows": {"unlike": 1}}
    assert dataset.meta["value_scale"] == 0.01 and dataset.meta["plays_as_skips"]["events"] == 1


def test_an_unmapped_event_names_the_option_and_bad_maps_are_refused(tmp_path):
    path = _yambda_like(tmp_path / "multi_event.csv")
    common = ["csv", path, "--out", tmp_path / "d", "--user-col", "uid", "--event-col", "event_type"]
    result = _import(*common)
    assert result.exit_code == 1 and "unknown event 'listen'" in result.output and "--event-map" in result.output
    result = _import(*common, "--event-map", "listen=play")
    assert result.exit_code == 1 and "unknown event 'unlike'" in result.output
    for bad, words in (("listen", "write NAME=EVENT pairs"), ("listen=watch", "maps 'listen' to 'watch'"),
                       ("=play", "an empty event name"), ("a=b=c", "write NAME=EVENT pairs")):
        result = _import(*common, "--event-map", bad)
        assert result.exit_code == 1 and words in result.output, (bad, result.output)
    with pytest.raises(DataError, match=r"no events left: --event-map dropped every row it kept \(listen: 4"):
        import_dataset("csv", path, columns=ColumnMap(user="uid", event="event_type", value=None, event_map={
            "listen": "drop", "like": "drop", "unlike": "drop", "dislike": "drop"}))
    with pytest.raises(ConfigError, match="--event-map renames the file's events, but it has no column 'event'"):
        import_dataset("csv", path, columns=ColumnMap(user="uid", event_map={"listen": "play"}))


def test_value_scale_is_checked_and_needs_a_value_column(tmp_path):
    path = _yambda_like(tmp_path / "multi_event.csv")
    for scale in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="--value-scale must be a finite number above 0"):
            ColumnMap(value_scale=scale)
    with pytest.raises(ConfigError, match="--value-scale multiplies each row's value, but the file has no column 'value'"):
        import_dataset("csv", path, columns=ColumnMap(user="uid", event=None, value_scale=0.01))
    with pytest.raises(ConfigError, match="ml-1m is read with its own columns; --event-map and --value-scale are"):
        import_dataset("ml-1m", tmp_path, columns=ColumnMap(event_map={"a": "play"}, value_scale=2.0))


def test_times_counted_from_the_logs_own_start_are_imported_in_order_with_a_warning(tmp_path):
    """Yambda's timestamps count seconds from its log's start: a log of days that all fall in early 1970."""
    path = tmp_path / "listens.csv"
    path.write_text("uid,item_id,timestamp\n1,10,5\n1,11,90000\n2,10,172800\n2,12,172800\n")
    dataset = import_dataset("csv", path, columns=ColumnMap(user="uid", event=None, value=None))
    assert dataset.interactions.timestamp.tolist() == [5, 90000, 172800, 172800]
    (warning,) = dataset.meta["warnings"]
    assert warning.startswith("every time falls before 1973 as epoch seconds (the latest on 1970-01-03): times "
                              "counted from the log's own start")
    short = tmp_path / "short.csv"  # under a day: a small test log, not a relative clock
    short.write_text("uid,item_id,timestamp\n1,10,5\n1,11,86404\n")
    assert "warnings" not in import_dataset("csv", short, columns=ColumnMap(user="uid", event=None, value=None)).meta


def test_a_long_log_within_hours_of_1970_is_warned_about(tmp_path):
    """Twitch 100k counts 10-minute slots (0 to 6,148): read as seconds, three million events in 1.7 hours."""
    from edgerec.data.loaders import MANY_ROWS

    path = tmp_path / "100k_a.csv"
    path.write_text("".join(f"{i % 50},s{i},streamer{i % 97},{i // 8},{i // 8 + 3}\n" for i in range(MANY_ROWS)))
    columns = ColumnMap(user="user", item="streamer", time="start", event=None, value=None)
    dataset = import_dataset("csv", path, columns=columns,
                             options=ReadOptions(header=("user", "stream", "streamer", "start", "stop")))
    warning, unread = dataset.meta["warnings"]
    assert unread.startswith("the log's column(s) 'stream', 'stop' were not read")
    assert warning.startswith("every time falls before 1973 as epoch seconds (the latest on 1970-01-01)")
    assert warning.endswith("Times counted in other steps put gaps and recency wrong: pass their unit (--time-unit "
                            "10min for Twitch's 10-minute slots, d for days)")
    path.write_text("".join(f"{i % 50},s{i},streamer{i % 97},{i // 8},0\n" for i in range(MANY_ROWS - 1)))
    assert [w for w in import_dataset("csv", path, columns=columns, options=ReadOptions(
        header=("user", "stream", "streamer", "start", "stop"))).meta["warnings"] if "1973" in w] == []


def test_event_map_refusals_read_whole():
    from edgerec.data.loaders import checked_event_map, parse_event_map

    for bad in ({}, [("listen", "play")], "listen=play"):
        with pytest.raises(ConfigError) as caught:
            ColumnMap(event_map=bad)
        assert str(caught.value) == "--event-map needs pairs NAME=EVENT, e.g. 'listen=play,unlike=drop'"
    with pytest.raises(ConfigError) as caught:
        checked_event_map({"listen": "watch"})
    assert str(caught.value) == ("--event-map maps 'listen' to 'watch'; map each name to one of play, finish, skip, "
                                 "like, rate, or to drop to leave its rows out")
    with pytest.raises(ConfigError) as caught:
        parse_event_map("listen")
    assert str(caught.value) == ("--event-map 'listen': write NAME=EVENT pairs joined by commas, e.g. "
                                 "'listen=play,like=like,unlike=drop'")
    assert parse_event_map(" Listen = PLAY ,, Unlike=Drop ") == {"listen": "play", "unlike": "drop"}


def test_a_scaled_value_past_float32_and_a_name_mapped_twice_are_refused(tmp_path):
    from edgerec.data.loaders import checked_event_map

    path = tmp_path / "v.csv"
    path.write_text("user_id,item_id,timestamp,value\nu,a,1,1\nu,b,2,1e30\n")
    with pytest.raises(DataError) as caught:
        import_dataset("csv", path, columns=ColumnMap(value_scale=1e10))
    assert str(caught.value) == ("v.csv:3: a value times --value-scale 1e+10 is too large for a number (found "
                                 "'1e30'); check the scale and the column")  # was stored as inf
    with pytest.raises(ConfigError) as caught:
        checked_event_map({"Listen": "play", "listen": "skip"})
    assert str(caught.value) == ("--event-map maps 'listen' twice, to 'play' and to 'skip' (names are compared in "
                                 "lower case); keep one")  # was: the last one won
    assert checked_event_map({"Listen": "play", "listen": "PLAY"}) == {"listen": "play"}


def test_an_event_named_twice_in_the_map_is_refused():
    """dict() of the pairs kept the last mapping of a name given twice, silently."""
    from edgerec.data.loaders import parse_event_map

    with pytest.raises(ConfigError, match=r"^--event-map names 'listen' twice \('play' and 'skip'\); keep one$"):
        parse_event_map("listen=play,listen=skip")
    assert parse_event_map(" listen = play ,like=like") == {"listen": "play", "like": "like"}


def test_the_documented_twitch_command_reads_10_minute_slots(tmp_path):
    """docs/data.md's Twitch 100k command on a replica: no header, times counted in 10-minute slots."""

    rows = ["1,34347669376,grimnax,5415,5419", "1,34391109664,jtoddcolq,5433,5434",
            "1,34378308096,ketchupfix,5419,5420", "2,34391109664,jtoddcolq,6000,6002", "2,34347669376,grimnax,61,62"]
    (tmp_path / "100k_a.csv").write_text("\n".join(rows) + "\n")
    result = run_documented("100k_a.csv", tmp_path / "100k_a.csv", tmp_path / "twitch")
    assert result.exit_code == 0, result.output
    assert "10-minute steps" in result.output  # dated in 1970: the warning says what holds
    dataset = load_dataset(tmp_path / "twitch")
    log = dataset.interactions
    assert [dataset.catalog.item_ids[i] for i in log.item] == ["grimnax", "ketchupfix", "jtoddcolq", "grimnax",
                                                               "jtoddcolq"]
    assert log.timestamp.tolist() == [5415 * 600, 5419 * 600, 5433 * 600, 61 * 600, 6000 * 600]


def test_ml_10m_read_as_ml_1m_has_films_without_genres(tmp_path):
    """ML-10M: the 1M layout, half stars, '(no genres listed)' (which became a genre, a tag and 'A (no genres
    listed) film.')."""
    folder = tmp_path / "ml-10M100K"
    folder.mkdir()
    (folder / "movies.dat").write_text("1::Toy Story (1995)::Adventure|Animation\n"
                                       "8606::Pull My Daisy (1958)::(no genres listed)\n")
    (folder / "ratings.dat").write_text("1::1::4.5::838985046\n1::8606::3::838983525\n")
    dataset = import_dataset("ml-1m", folder)
    assert dataset.catalog.tags == [("adventure", "animation"), ()]
    assert dataset.catalog.text["genre"] == ["adventure", ""]
    assert dataset.catalog.text["description"][1] == "Pull My Daisy. A film."
    assert dataset.interactions.value.tolist() == [3.0, 4.5]


@pytest.mark.parametrize("column, warned", [("rating", True), ("Stars", True), ("review_score", True),
                                            ("watch_ratio", False), ("value", False), ("rated_at", False)])
def test_a_ratings_column_read_as_plays_is_warned_about(tmp_path, column, warned):
    path = tmp_path / "ratings.csv"
    path.write_text(f"user_id,item_id,timestamp,{column}\nu1,i1,1600000000,4.5\nu1,i2,1600000100,1\n")
    meta = import_dataset("csv", path, columns=ColumnMap(value=column)).meta
    assert any("if it holds ratings, import again with --default-event rate" in w
               for w in meta.get("warnings", [])) == warned
    rated = import_dataset("csv", path, columns=ColumnMap(value=column, default_event="rate")).meta
    assert not any("--default-event rate" in w for w in rated.get("warnings", []))


def test_no_quoting_reaches_the_item_table(tmp_path):
    """HetRec's artists.dat holds '"Weird Al" Yankovic': the refusal named --no-quoting, which the item table
    did not take, so it stayed refused."""
    (tmp_path / "user_artists.dat").write_text("userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n")
    (tmp_path / "artists.dat").write_text('id\tname\turl\n51\t"Weird Al" Yankovic\thttp://x/1\n52\tHeroes\thttp://x/2\n')
    columns = ColumnMap(user="userID", item="artistID", time=None, value="weight")
    with pytest.raises(DataError, match="--no-quoting"):
        import_dataset("csv", tmp_path / "user_artists.dat", columns=columns, items=tmp_path / "artists.dat",
                       options=ReadOptions(delimiter="\t"), item_columns={"item_id": "id", "title": "name"})
    dataset = import_dataset("csv", tmp_path / "user_artists.dat", columns=columns, items=tmp_path / "artists.dat",
                             options=ReadOptions(delimiter="\t", quoted=False),
                             item_columns={"item_id": "id", "title": "name"})
    assert dataset.catalog.text["title"] == ['"Weird Al" Yankovic', "Heroes"]


def test_durations_in_milliseconds_are_warned_about_and_read_with_duration_unit(tmp_path):
    """KuaiRand's video_duration is in ms: 74,280 read as 20 hours, and a max_duration_s filter served nothing."""
    (tmp_path / "log.csv").write_text("user_id,video_id,time_ms\n0,7,1649347200123\n0,8,1649347260456\n")
    (tmp_path / "videos.csv").write_text("video_id,video_duration\n7,74280\n8,12000.5\n")
    common = dict(columns=ColumnMap(item="video_id", time="time_ms"), items=tmp_path / "videos.csv",
                  item_columns={"duration": "video_duration"})
    read = import_dataset("csv", tmp_path / "log.csv", options=ReadOptions(time_unit="ms"), **common)
    assert read.catalog.duration.tolist() == [74280.0, 12000.5]
    (warning,) = [w for w in read.meta["warnings"] if "median duration" in w]
    assert warning.startswith("the items' median duration is 12.0 hours: are the durations in milliseconds?")
    assert warning.endswith("import again with --duration-unit ms")
    fixed = import_dataset("csv", tmp_path / "log.csv", options=ReadOptions(time_unit="ms", duration_unit="ms"),
                           **common)
    assert fixed.catalog.duration.tolist() == pytest.approx([74.28, 12.0005])
    assert not any("median duration" in w for w in fixed.meta.get("warnings", []))
    with pytest.raises(ConfigError, match="--duration-unit describes the --items file"):
        import_dataset("csv", tmp_path / "log.csv", options=ReadOptions(time_unit="ms", duration_unit="ms"),
                       columns=ColumnMap(item="video_id", time="time_ms"))
    with pytest.raises(ConfigError, match="unknown duration unit 'h'; use one of s, ms, min"):
        ReadOptions(duration_unit="h")


def test_log_columns_nothing_reads_are_named_with_the_click_options():
    """KuaiRand imported without --event-col: every impression (is_click 0) became a play, its other 17
    columns left out without a word."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log_standard.csv"
        path.write_text("user_id,video_id,time_ms,is_click,is_like,play_time_ms\n"
                        "0,7,1649347200123,1,0,5000\n0,8,1649347260456,0,0,0\n")
        columns = ColumnMap(item="video_id", time="time_ms")
        meta = import_dataset("csv", path, columns=columns, options=ReadOptions(time_unit="ms")).meta
        (warning,) = meta["warnings"]
        assert warning.startswith("the log's column(s) 'is_click', 'is_like', 'play_time_ms' were not read")
        assert warning.endswith("A 0/1 column of clicks makes the unclicked rows skips: --event-col is_click "
                                "--event-map '1=play,0=skip'.")
        clicked = import_dataset("csv", path, options=ReadOptions(time_unit="ms"), columns=ColumnMap(
            item="video_id", time="time_ms", event="is_click", event_map={"1": "play", "0": "skip"}))
        (warning,) = clicked.meta["warnings"]
        assert "'is_like', 'play_time_ms' were not read" in warning and "--event-map" not in warning
        assert [EVENTS[e] for e in clicked.interactions.event] == ["play", "skip"]


def test_a_no_time_dump_sorted_by_item_id_is_warned_about(tmp_path):
    """HetRec's user_artists.dat is sorted by user, then artist id: under --no-time each user's 'last play' was
    their highest artist id (popular's HR@10 0.0067 against 0.47 on the same rows shuffled)."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(2, 30):
        for artist in sorted(rng.choice(np.arange(1, 400), 6, replace=False)):
            rows.append(f"{user}\t{artist}\t{rng.integers(1, 5000)}\n")
    path = tmp_path / "user_artists.dat"
    path.write_text("userID\tartistID\tweight\n" + "".join(rows))
    columns = ColumnMap(user="userID", item="artistID", time=None, value="weight")
    warnings = import_dataset("csv", path, columns=columns, options=ReadOptions(delimiter="\t")).meta["warnings"]
    assert any(w.startswith("each user's rows are in the order of their item ids") for w in warnings)
    shuffled = tmp_path / "shuffled.dat"  # 9 in 10 users must rise: one falling pair in each user is enough
    shuffled.write_text("userID\tartistID\tweight\n" + "".join(
        row for block in zip(*[iter(rows)] * 6) for row in (block[1], block[0], *block[2:])))
    warnings = import_dataset("csv", shuffled, columns=columns, options=ReadOptions(delimiter="\t")).meta["warnings"]
    assert not any("order of their item ids" in w for w in warnings)
    few = tmp_path / "few.dat"  # under ten users with three rows: not judged
    few.write_text("userID\tartistID\tweight\n" + "".join(rows[:54]))
    warnings = import_dataset("csv", few, columns=columns, options=ReadOptions(delimiter="\t")).meta["warnings"]
    assert not any("order of their item ids" in w for w in warnings)


def test_an_item_list_column_becomes_one_event_per_id_in_the_order_written(tmp_path):
    """MicroLens-100k_pairs.tsv: a user and their items, space-separated, in viewing order; it imported as
    one event per user whose item was the whole sequence."""
    path = tmp_path / "MicroLens-100k_pairs.tsv"
    users = [f"{u}\t{' '.join(str(100 + (u * 7 + k) % 13) for k in range(4))}\n" for u in range(12)]
    path.write_text("".join(users))
    plain = ColumnMap(user="user", item="item", time=None)
    whole = import_dataset("csv", path, columns=plain, options=ReadOptions(delimiter="\t", header=("user", "item")))
    assert len(whole.interactions) == 12
    assert any(w.startswith("every user has one event (12 users)") and w.endswith("--item-list-sep")
               for w in whole.meta["warnings"])
    listed = ColumnMap(user="user", item="item", time=None, item_list_sep=" ")
    dataset = import_dataset("csv", path, columns=listed, options=ReadOptions(delimiter="\t", header=("user", "item")))
    log = dataset.interactions
    assert len(log) == 48 and not any("one event" in w for w in dataset.meta["warnings"])
    first = [dataset.catalog.item_ids[i] for i in log.item[log.user == dataset.user_ids.index("1")]]
    assert first == users[1].split("\t")[1].split()  # the order written


def test_item_lists_keep_the_rows_time_and_line(tmp_path):
    path = tmp_path / "sessions.csv"
    path.write_text("user_id,item_id,timestamp\nu1,a  b,200\nu1,c,100\nu2,,300\n")
    listed = ColumnMap(item_list_sep=" ")
    with pytest.raises(DataError, match="sessions.csv:4: .*user_id|sessions.csv:4: .*item"):  # the empty list
        import_dataset("csv", path, columns=listed)
    path.write_text("user_id,item_id,timestamp\nu1,a  b,200\nu1,c,100\nu2,d,300\n")
    dataset = import_dataset("csv", path, columns=listed)
    log = dataset.interactions
    assert [dataset.catalog.item_ids[i] for i in log.item] == ["c", "a", "b", "d"]
    assert log.timestamp.tolist() == [100, 200, 200, 300]
    path.write_text("user_id,item_id,timestamp\nu1,a b,x\n")
    with pytest.raises(DataError, match="sessions.csv:2: column 'timestamp'"):
        import_dataset("csv", path, columns=listed)


@pytest.mark.parametrize("kwargs, message", [
    (dict(item_list_sep=""), "--item-list-sep must be one or more characters"),
    (dict(item_list_sep='"'), "--item-list-sep must be one or more characters"),
])
def test_item_list_sep_mistakes_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ColumnMap(**kwargs)
    path = tmp_path / "log.csv"
    path.write_text("user_id,artist,track,timestamp\nu1,a,b c,1\n")
    with pytest.raises(ConfigError, match="cannot go with an item key of several columns"):
        import_dataset("csv", path, columns=ColumnMap(item="artist+track", item_list_sep=" "))


def test_the_documented_microlens_command_reads_its_sequences(tmp_path):

    (tmp_path / "MicroLens-100k_pairs.tsv").write_text("1\t5 9 2\n2\t9 7\n")
    result = run_documented("MicroLens-100k_pairs.tsv", tmp_path / "MicroLens-100k_pairs.tsv", tmp_path / "microlens")
    assert result.exit_code == 0, result.output
    dataset = load_dataset(tmp_path / "microlens")
    assert [(dataset.user_ids[u], dataset.catalog.item_ids[i]) for u, i in
            zip(dataset.interactions.user, dataset.interactions.item)] == [("1", "5"), ("1", "9"), ("1", "2"),
                                                                           ("2", "9"), ("2", "7")]


def test_item_lists_from_json_lists_comma_and_space_and_a_separator_that_splits_nothing(tmp_path):
    listed = ColumnMap(user="user", item="item", time=None, item_list_sep=" ")
    jsonl = tmp_path / "pairs.jsonl"  # a JSON list cell lists its own items (its text joins them with '|')
    jsonl.write_text('{"user": "1", "item": ["287", "400", "239"]}\n{"user": "2", "item": ["400"]}\n')
    dataset = import_dataset("jsonl", jsonl, columns=listed)
    assert [dataset.catalog.item_ids[i] for i in dataset.interactions.item] == ["287", "400", "239", "400"]
    spaced = tmp_path / "pairs.csv"  # ' 400' after a comma is item 400
    spaced.write_text('user,item\n1,"287, 400, 239"\n2,400\n')
    dataset = import_dataset("csv", spaced, columns=replace(listed, item_list_sep=","))
    assert sorted(dataset.catalog.item_ids) == ["239", "287", "400"]
    assert not any("no item cell lists" in w for w in dataset.meta.get("warnings", []))
    wrong = import_dataset("csv", spaced, columns=replace(listed, item_list_sep=";")).meta["warnings"]
    assert "no item cell lists several ids split by --item-list-sep ';': is that the separator the cells use?" in wrong


def test_a_cut_last_line_that_lists_several_ids_is_warned_about(tmp_path):
    path = tmp_path / "sessions.csv"
    path.write_text("user_id,item_id,timestamp\nu1,a b,1600039040\nu2,b c,1600039050\nu3,a c,16000")
    warnings = import_dataset("csv", path, columns=ColumnMap(item_list_sep=" ")).meta["warnings"]
    assert any(w.startswith("the file ends inside its last line (4: no line break after it)") for w in warnings)


def test_a_pandas_index_column_is_not_named_as_unread(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(",user_id,item_id,timestamp\n0,u1,a,1600000000\n1,u1,b,1600000001\n")
    assert "warnings" not in import_dataset("csv", path).meta
    path.write_text("Unnamed: 0,user_id,item_id,timestamp,mood\n0,u1,a,1600000000,x\n1,u1,b,1600000001,y\n")
    (warning,) = import_dataset("csv", path).meta["warnings"]
    assert warning.startswith("the log's column(s) 'mood' were not read")


@pytest.mark.parametrize("modality, seconds, warned", [
    ("short_video", 15_000, True),  # 15 s videos in milliseconds: 4.2 hours read as seconds
    ("podcast_episode", 12 * 3600, False), ("", 8 * 3600, True), ("film", 2 * 3600, False),
    ("music_track", 240_000, True),
])
def test_the_long_duration_warning_is_bounded_by_modality(tmp_path, modality, seconds, warned):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu1,a,1600000000\n")
    (tmp_path / "items.csv").write_text("item_id,modality,duration\n" + "".join(
        f"{i},{modality},{seconds}\n" for i in "abc"))
    warnings = import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv").meta.get("warnings", [])
    assert any("median duration" in w for w in warnings) == warned
    if warned:
        minutes = import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv",
                                 options=ReadOptions(duration_unit="min")).meta["warnings"]
        assert any("is --duration-unit min their unit?" in w and w.endswith("check --duration-unit")
                   for w in minutes)


@pytest.mark.parametrize("users, rows_each, falling, items, warned", [
    (10, 3, 0, None, True), (9, 3, 0, None, False), (10, 2, 0, None, False),  # too few users, rows
    (10, 3, 1, None, True), (10, 3, 2, None, False),  # nine in ten rise; eight do not
    (10, 3, 0, ["9", "10", "11"], True),  # ids compared as numbers: '9' < '10'
    (10, 3, 0, ["a", "a", "b"], True),  # a repeated play is no fall
])
def test_the_item_order_warning_at_its_bounds(tmp_path, users, rows_each, falling, items, warned):
    lines = []
    for u in range(users):
        listed = items or [f"i{u}{k}" for k in range(rows_each)]
        listed = listed[::-1] if u < falling else listed
        lines += [f"u{u},{item}\n" for item in listed[:rows_each]]
    path = tmp_path / "dump.csv"
    path.write_text("user,item\n" + "".join(lines))
    meta = import_dataset("csv", path, columns=ColumnMap(user="user", item="item", time=None)).meta
    assert any("order of their item ids" in w for w in meta["warnings"]) == warned


def test_the_unread_log_columns_warning_whole_and_without_a_click_column(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp,mood,is_like\nu1,a,1600000000,x,0\nu1,b,1600000001,y,1\n")
    assert import_dataset("csv", path).meta["warnings"] == [
        "the log's column(s) 'mood', 'is_like' were not read: an event is read from the user, item and time "
        "columns, with --event-col, --value-col and a device column when named (a row is a play without an event "
        "column)."]


def test_a_listed_row_in_a_later_json_line_is_named_by_its_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"user": "1", "item": ["a", "b"], "t": 1}\n\n{"user": "2", "item": ["c", "d"], "t": "x"}\n')
    with pytest.raises(DataError, match="pairs.jsonl:3: column 't'"):
        import_dataset("jsonl", path, columns=ColumnMap(user="user", item="item", time="t", item_list_sep=" "))


def test_the_item_order_check_takes_ids_that_only_look_like_digits(tmp_path):
    """'²' passes str.isdigit but not int(): such ids are compared as text, not a crash."""
    path = tmp_path / "dump.csv"
    path.write_text("user,item\n" + "".join(f"u{u},{item}\n" for u in range(10) for item in ("1", "2", "\u00b2")))
    meta = import_dataset("csv", path, columns=ColumnMap(user="user", item="item", time=None)).meta
    assert any("order of their item ids" in w for w in meta["warnings"])  # '1' < '2' < '²' as text
