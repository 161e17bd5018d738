"""Import defects an audit confirmed (M2), each refused or read right now: a `%Z` time format, an item table
holding both `item_id` and the log's item column, JSON Lines NaN ids and repeated keys, MovieLens ratings of a
(user, movie) pair given twice, Parquet date columns and --time-zone, ids written as a database's
missing-value marker, and Netflix titles whose film ids are zero-padded."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import numpy as np
import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data import ColumnMap, ReadOptions, import_dataset, load_movielens
from edgerec.data.schema import Interactions
from edgerec.errors import ConfigError, DataError


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def users_items(dataset):
    log = dataset.interactions
    return sorted((dataset.user_ids[u], dataset.catalog.item_ids[i]) for u, i in zip(log.user, log.item))


# ---------------------------------------------------------------- 1. --time-format with %Z


@pytest.mark.parametrize("form", ["%Y-%m-%d %H:%M:%S %Z", "%Z %Y-%m-%d"])
def test_a_zone_name_directive_is_refused_before_reading(tmp_path, form):
    # strptime accepts %Z (UTC, GMT, the host's own zone) and drops it: the time then read in --time-zone
    log = write(tmp_path / "log.csv", "user_id,item_id,timestamp\nu1,a,2020-06-01 10:00:00 UTC\n")
    with pytest.raises(ConfigError) as err:
        import_dataset("csv", log, options=ReadOptions(time_format=form, time_zone="America/New_York"))
    assert "%Z" in str(err.value) and "%z" in str(err.value) and "--time-zone" in str(err.value)


def test_a_zone_written_as_text_in_the_format_reads_in_time_zone_and_percent_percent_is_no_directive(tmp_path):
    log = write(tmp_path / "log.csv", "user_id,item_id,timestamp\nu1,a,2020-06-01 10:00:00 UTC\n")
    dataset = import_dataset("csv", log, options=ReadOptions(time_format="%Y-%m-%d %H:%M:%S UTC"))
    assert dataset.interactions.timestamp.tolist() == [int(datetime(2020, 6, 1, 10, tzinfo=timezone.utc).timestamp())]
    write(log, "user_id,item_id,timestamp\nu1,a,2020-06-01 %Z\n")  # '%%Z' is the text '%Z'
    dataset = import_dataset("csv", log, options=ReadOptions(time_format="%Y-%m-%d %%Z"))
    assert dataset.interactions.timestamp.tolist() == [int(datetime(2020, 6, 1, tzinfo=timezone.utc).timestamp())]


def test_the_cli_refuses_percent_capital_z(tmp_path):
    log = write(tmp_path / "log.csv", "user_id,item_id,timestamp\nu1,a,2020-06-01 10:00:00 EST\n")
    result = CliRunner().invoke(cli, ["data", "import", "csv", str(log), "--out", str(tmp_path / "out"),
                                      "--time-format", "%Y-%m-%d %H:%M:%S %Z"])
    assert result.exit_code != 0 and "has %Z" in result.output and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- 2. item_id beside the log's --item-col


def test_an_item_table_with_item_id_and_the_logs_item_column_is_refused(tmp_path):
    log = write(tmp_path / "log.csv", "user_id,movieId,timestamp\nu1,1,100\nu1,3,101\nu2,2,102\n")
    items = write(tmp_path / "items.csv", "item_id,movieId,title\n1,3,Heat\n2,2,Alien\n3,1,Toy Story\n")
    columns = ColumnMap(item="movieId")
    with pytest.raises(DataError) as err:
        import_dataset("csv", log, columns=columns, items=items)
    message = str(err.value)
    assert message.startswith("items.csv:1: ") and "--item-columns item_id=movieId" in message
    assert "Toy Story" not in message and "u1" not in message
    # named: joined on movieId, so movie 1 is Toy Story
    dataset = import_dataset("csv", log, columns=columns, items=items, item_columns={"item_id": "movieId"})
    titles = dict(zip(dataset.catalog.item_ids, dataset.catalog.text["title"]))
    assert titles == {"3": "Heat", "2": "Alien", "1": "Toy Story"}
    # or the table's item_id when it is the one that holds the log's ids
    dataset = import_dataset("csv", log, columns=columns, items=items, item_columns={"item_id": "item_id"})
    assert dict(zip(dataset.catalog.item_ids, dataset.catalog.text["title"]))["1"] == "Heat"


def test_the_logs_item_column_mapped_to_another_field_leaves_item_id_the_id(tmp_path):
    log = write(tmp_path / "log.csv", "user_id,series,timestamp\nu1,s1,100\n")
    items = write(tmp_path / "items.csv", "item_id,series,title\ns1,show,Pilot\n")
    dataset = import_dataset("csv", log, columns=ColumnMap(item="series"), items=items,
                             item_columns={"series_id": "series"})
    assert dataset.catalog.item_ids == ["s1"] and dataset.catalog.text["series_id"] == ["show"]


def test_a_table_without_item_id_still_joins_on_the_logs_item_column(tmp_path):
    log = write(tmp_path / "log.csv", "user_id,movieId,timestamp\nu1,1,100\n")
    items = write(tmp_path / "items.csv", "movieId,title\n1,Toy Story\n")
    dataset = import_dataset("csv", log, columns=ColumnMap(item="movieId"), items=items)
    assert dataset.catalog.text["title"] == ["Toy Story"]


# ---------------------------------------------------------------- 3, 4. JSON Lines NaN ids, repeated keys


def test_json_nan_ids_are_missing_ids_named_at_their_line(tmp_path):
    log = write(tmp_path / "log.jsonl", '{"user_id": "u1", "item_id": "x", "timestamp": 100}\n'
                '{"user_id": "u1", "item_id": NaN, "timestamp": 101}\n'
                '{"user_id": "u2", "item_id": NaN, "timestamp": 102}\n')
    with pytest.raises(DataError) as err:
        import_dataset("jsonl", log)
    assert str(err.value).startswith("log.jsonl:2: column 'item_id' is empty")
    dataset = import_dataset("jsonl", log, options=ReadOptions(skip_bad_rows=True))
    assert users_items(dataset) == [("u1", "x")]
    assert dataset.meta["skipped_rows"]["no user or item id"]["rows"] == 2


def test_json_nan_as_a_value_is_a_missing_value_read_as_one(tmp_path):
    log = write(tmp_path / "log.jsonl", '{"user_id": "u1", "item_id": "x", "timestamp": 100, "value": NaN}\n'
                '{"user_id": "u1", "item_id": "y", "timestamp": 101, "value": 0.5}\n')
    dataset = import_dataset("jsonl", log)
    assert dataset.interactions.value.tolist() == [1.0, 0.5] and dataset.meta["rows_without_value"] == 1


@pytest.mark.parametrize("constant", ["Infinity", "-Infinity"])
def test_json_infinity_as_a_value_is_refused_not_read_as_a_default_one(tmp_path, constant):
    log = write(tmp_path / "log.jsonl", f'{{"user_id": "u1", "item_id": "x", "timestamp": 100, "value": {constant}}}\n')
    with pytest.raises(DataError, match=f"log.jsonl:1: column 'value' holds a non-finite value '{constant}'"):
        import_dataset("jsonl", log)


def test_a_json_array_file_reads_nan_as_missing_too(tmp_path):
    log = write(tmp_path / "log.json", '[{"user_id": NaN, "item_id": "x", "timestamp": 100}]')
    with pytest.raises(DataError, match="log.json:1: column 'user_id' is empty"):
        import_dataset("jsonl", log)


@pytest.mark.parametrize("name, text", [
    ("log.jsonl", '{"user_id": "u0", "item_id": "a", "timestamp": 99}\n'
                  '{"user_id": "u1", "item_id": "a", "timestamp": 100, "user_id": "u2"}\n'),
    ("log.json", '[{"user_id": "u0", "item_id": "a", "timestamp": 99},\n'
                 ' {"user_id": "u1", "item_id": "a", "timestamp": 100, "user_id": "u2"}]'),
])
def test_a_json_object_naming_a_read_key_twice_is_refused_at_its_line(tmp_path, name, text):
    log = write(tmp_path / name, text)
    with pytest.raises(DataError) as err:
        import_dataset("jsonl", log)
    message = str(err.value)
    assert message.startswith(f"{name}:2: the object names key 'user_id' more than once")
    assert "u1" not in message and "u2" not in message
    dataset = import_dataset("jsonl", log, options=ReadOptions(skip_bad_rows=True))
    assert users_items(dataset) == [("u0", "a")] and dataset.meta["skipped_rows"]["a key named twice"]["rows"] == 1


def test_a_key_named_twice_that_nothing_reads_is_no_matter(tmp_path):
    log = write(tmp_path / "log.jsonl", '{"user_id": "u1", "item_id": "a", "timestamp": 100, "note": 1, '
                '"note": 2, "extra": {"k": 1, "k": 2}}\n')
    assert users_items(import_dataset("jsonl", log)) == [("u1", "a")]


def test_an_item_table_in_json_lines_refuses_a_repeated_id_key(tmp_path):
    log = write(tmp_path / "log.csv", "user_id,item_id,timestamp\nu1,a,100\n")
    items = write(tmp_path / "items.jsonl", '{"item_id": "a", "title": "A"}\n{"item_id": "b", "item_id": "a"}\n')
    with pytest.raises(DataError, match="items.jsonl:2: the object names key 'item_id' more than once"):
        import_dataset("csv", log, items=items)


# ---------------------------------------------------------------- 5. MovieLens: one rating per (user, movie)


ML100K_ITEMS = ("10|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
                "20|GoldenEye (1995)|01-Jan-1995||http://x|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n")


def test_ml100k_refuses_a_second_rating_of_a_pair_at_its_line(tmp_path):
    write(tmp_path / "u.item", ML100K_ITEMS, "latin-1")
    write(tmp_path / "u.data", "1\t10\t5\t881250949\n2\t10\t4\t881250940\n1\t20\t3\t881250950\n"
                               "1\t10\t2\t881250999\n")
    with pytest.raises(DataError) as err:
        load_movielens("ml-100k", tmp_path)
    assert str(err.value).startswith("u.data:4: a user rates movie 10 a second time (first at line 1)")
    with pytest.raises(DataError, match="u.data:4: "):  # not a bad row: --skip-bad-rows keeps refusing it
        load_movielens("ml-100k", tmp_path, ReadOptions(skip_bad_rows=True))


def test_ml1m_and_ml_latest_refuse_a_pair_rated_twice(tmp_path):
    one = tmp_path / "1m"
    one.mkdir()
    write(one / "movies.dat", "1::Toy Story (1995)::Animation\n2::Heat (1995)::Action\n", "latin-1")
    write(one / "ratings.dat", "1::1::5::978300760\n1::2::3::978302109\n2::1::4::978298413\n1::1::5::978300760\n")
    with pytest.raises(DataError, match=r"ratings.dat:4: a user rates movie 1 a second time \(first at line 1\)"):
        load_movielens("ml-1m", one)
    latest = tmp_path / "latest"
    latest.mkdir()
    write(latest / "movies.csv", "movieId,title,genres\n1,Toy Story (1995),Animation\n2,Heat (1995),Action\n")
    write(latest / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,4.5,964981247\n"
                                  "2,2,3.0,964981000\n2,2,3.0,964981000\n")
    with pytest.raises(DataError, match=r"ratings.csv:5: a user rates movie 2 a second time \(first at line 4\)"):
        load_movielens("ml-latest", latest)
    write(latest / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,4.5,964981247\n"
                                  "2,2,3.0,964981000\n")
    assert len(load_movielens("ml-latest", latest).interactions) == 3  # one rating a pair imports as before


def test_repeated_pair_finds_a_pair_across_block_edges_and_never_splits_a_user():
    from edgerec.data.releases import repeated_pair

    rng = np.random.default_rng(0)
    user = np.sort(rng.integers(0, 300, 5_000)).astype(np.int32)
    start = np.searchsorted(user, user, side="left")
    item = ((np.arange(len(user)) - start) * 7 + user) % 1_000  # distinct within each user (< 1,000 each)
    log = Interactions(user, item.astype(np.int32), np.zeros(len(user), np.int64), np.zeros(len(user), np.int8),
                       np.ones(len(user), np.float32))
    for block in (1, 7, 64, 10_000):
        assert repeated_pair(log, 1_000, block) is None
    last = int(np.searchsorted(user, user[-1]))  # the last user's first event
    log.item[-1] = log.item[last]
    for block in (1, 7, 64, 10_000):
        assert repeated_pair(log, 1_000, block) == (int(user[-1]), int(log.item[last]))


# ---------------------------------------------------------------- 6. Parquet date columns and --time-zone


def test_a_parquet_date_column_reads_in_time_zone_as_csv_dates_do(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"user_id": ["a", "a"], "item_id": ["x", "y"],
                             "timestamp": pa.array([date(2020, 1, 1), date(2020, 1, 2)], pa.date32())}),
                   tmp_path / "log.parquet")
    write(tmp_path / "log.csv", "user_id,item_id,timestamp\na,x,2020-01-01\na,y,2020-01-02\n")
    for zone, expected in (("+08:00", 1577808000), ("UTC+8", 1577808000), ("Asia/Shanghai", 1577808000),
                           ("-0500", 1577854800), (None, 1577836800)):
        options = ReadOptions(time_zone=zone)
        parquet = import_dataset("parquet", tmp_path / "log.parquet", options=options).interactions.timestamp
        csv = import_dataset("csv", tmp_path / "log.csv", options=options).interactions.timestamp
        assert parquet.tolist() == csv.tolist() == [expected, expected + 86_400], zone


def test_a_parquet_date_whose_midnight_a_clock_change_skips_starts_after_the_gap(tmp_path):
    """Santiago's clocks went from 00:00 to 01:00 on 8 Sep 2024: the day exists and starts at 01:00 local (04:00
    UTC); the whole import was refused as a time in a gap, which a date cannot avoid."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"user_id": ["a", "a"], "item_id": ["x", "y"],
                             "timestamp": pa.array([date(2024, 9, 7), date(2024, 9, 8)], pa.date32())}),
                   tmp_path / "log.parquet")
    stamps = import_dataset("parquet", tmp_path / "log.parquet", options=ReadOptions(time_zone="America/Santiago"))
    day = int(datetime(2024, 9, 8, 4, tzinfo=timezone.utc).timestamp())
    assert stamps.interactions.timestamp.tolist() == [day - 24 * 3600, day]


def test_a_naive_parquet_timestamp_reads_in_an_offset_written_as_python_takes_it(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"user_id": ["a"], "item_id": ["x"],
                             "timestamp": pa.array([datetime(2020, 1, 1)], pa.timestamp("s"))}),
                   tmp_path / "log.parquet")
    for zone in ("UTC+8", "+8", "+0800"):  # pyarrow knows none of these; --time-zone takes them all
        stamp = import_dataset("parquet", tmp_path / "log.parquet", options=ReadOptions(time_zone=zone))
        assert stamp.interactions.timestamp.tolist() == [1577808000], zone
    from edgerec.data.tables import arrow_zone

    assert arrow_zone("Z") == "+00:00" and arrow_zone("UTC-5") == "-05:00" and arrow_zone("Europe/Paris") == \
        "Europe/Paris"


def test_an_item_tables_parquet_release_date_reads_in_time_zone(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    write(tmp_path / "log.csv", "user_id,item_id,timestamp\na,x,1600000000\n")
    pq.write_table(pa.table({"item_id": ["x"], "release_ts": pa.array([date(2020, 1, 1)], pa.date32())}),
                   tmp_path / "items.parquet")
    dataset = import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.parquet",
                             options=ReadOptions(time_zone="+08:00"))
    assert dataset.catalog.release_ts.tolist() == [1577808000]


# ---------------------------------------------------------------- 7. ids written as missing-value markers


MARKED = "user_id,item_id,timestamp\n\\N,a,100\n\\N,b,101\nNULL,c,102\nu1,a,103\nu1,NaN,104\n"


def test_marker_ids_are_kept_with_one_warning_a_column_that_counts_them(tmp_path):
    log = write(tmp_path / "log.csv", MARKED)
    dataset = import_dataset("csv", log, options=ReadOptions(chunk_rows=2))  # counted over chunks
    assert sorted(dataset.user_ids) == ["NULL", "\\N", "u1"]
    warnings = [w for w in dataset.meta["warnings"] if "missing value" in w]
    assert len(warnings) == 2
    user, item = sorted(warnings, key=lambda w: "'user_id'" not in w)
    assert user.startswith("3 rows of the log have '\\N', 'NULL' in column 'user_id'") and "--missing-ids empty" in user
    assert item.startswith("1 row of the log has 'NaN' in column 'item_id'")
    assert "u1" not in user + item and "'a'" not in user + item


def test_missing_ids_empty_refuses_a_marker_at_its_line_or_skips_it(tmp_path):
    log = write(tmp_path / "log.csv", MARKED)
    with pytest.raises(DataError) as err:
        import_dataset("csv", log, options=ReadOptions(missing_ids="empty"))
    assert str(err.value).startswith("log.csv:2: column 'user_id' holds '\\N', a missing-value marker")
    dataset = import_dataset("csv", log, options=ReadOptions(missing_ids="empty", skip_bad_rows=True))
    assert users_items(dataset) == [("u1", "a")]
    assert dataset.meta["skipped_rows"]["no user or item id"] == {"rows": 4, "first_lines": [2, 3, 4, 6]}
    assert not [w for w in dataset.meta.get("warnings", []) if "missing value" in w]


def test_marker_ids_of_an_item_key_of_two_columns_and_of_an_item_table(tmp_path):
    log = write(tmp_path / "log.csv", "user,artist,track,ts\nu,Nina,Sinnerman,1\nu,Nina,NULL,2\n")
    columns = ColumnMap(user="user", item="artist+track", time="ts")
    with pytest.raises(DataError, match="log.csv:3: column 'track' holds 'NULL'"):
        import_dataset("csv", log, columns=columns, options=ReadOptions(missing_ids="empty"))
    dataset = import_dataset("csv", log, columns=columns)
    assert any(w.startswith("1 row of the log has 'NULL' in column 'track'") for w in dataset.meta["warnings"])
    write(log, "user_id,item_id,timestamp\nu,a,1\n")
    items = write(tmp_path / "items.csv", "item_id,title\na,A\nnull,Nothing\n")
    dataset = import_dataset("csv", log, items=items)
    assert any(w.startswith("1 row of the item table has 'null' in column 'item_id'") for w in dataset.meta["warnings"])
    with pytest.raises(DataError, match="items.csv:3: column 'item_id' holds 'null'"):
        import_dataset("csv", log, items=items, options=ReadOptions(missing_ids="empty"))


def test_missing_ids_is_checked_and_refused_for_releases(tmp_path):
    with pytest.raises(ConfigError, match="--missing-ids is one of keep, empty"):
        ReadOptions(missing_ids="drop")
    write(tmp_path / "u.item", ML100K_ITEMS, "latin-1")
    write(tmp_path / "u.data", "1\t10\t5\t881250949\n")
    with pytest.raises(ConfigError, match="--missing-ids"):
        import_dataset("ml-100k", tmp_path, options=ReadOptions(missing_ids="empty"))


def test_the_cli_passes_missing_ids(tmp_path):
    log = write(tmp_path / "log.csv", MARKED)
    runner = CliRunner()
    result = runner.invoke(cli, ["data", "import", "csv", str(log), "--out", str(tmp_path / "a")])
    assert result.exit_code == 0 and "--missing-ids empty" in " ".join(result.output.split())
    result = runner.invoke(cli, ["data", "import", "csv", str(log), "--out", str(tmp_path / "b"),
                                 "--missing-ids", "empty", "--skip-bad-rows"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "b" / "dataset.json").read_text())["skipped_rows"]["no user or item id"]["rows"] == 4
    assert (tmp_path / "b" / "interactions.csv").read_text().count("\n") == 2  # the header and u1's row


# ---------------------------------------------------------------- Netflix: zero-padded film ids


def test_netflix_titles_with_zero_padded_film_ids_match_the_ratings(tmp_path):
    write(tmp_path / "combined_data_1.txt", "1:\n6,3,2005-09-06\n7,4,2005-09-07\n002:\n6,2,2005-09-06\n")
    write(tmp_path / "movie_titles.csv", "0001,2003,Dinosaur Planet\n0002,2004,Isle of Man TT 2004 Review\n")
    dataset = import_dataset("netflix", tmp_path)
    assert dict(zip(dataset.catalog.item_ids, dataset.catalog.text["title"])) == {
        "1": "Dinosaur Planet", "2": "Isle of Man TT 2004 Review"}
    write(tmp_path / "movie_titles.csv", "1,2003,Dinosaur Planet\n0001,2003,Dinosaur Planet\n")
    with pytest.raises(DataError, match="movie_titles.csv:2: film 1 is listed twice"):
        import_dataset("netflix", tmp_path)
