"""Five gaps a data-import audit left open: a headerless first row of words echoed (user ids) in the
missing-column error, Parquet date/timestamp id columns imported as epoch ticks, a UTF-8 byte order mark
read with --encoding latin-1 reported as a missing column, MovieLens told to "leave the column out" of
its ratings, and the import's host path stored in dataset.json (and copied with the folder)."""

from __future__ import annotations

import json
import string

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgerec.cli.main import cli
from edgerec.data import (
    Dataset,
    ReadOptions,
    import_dataset,
    load_dataset,
    load_movielens,
    save_dataset,
)
from edgerec.errors import DataError
from edgerec.export.deidentify import public_source

ML_FLAGS = "|0" * 19


def _import(args: list[str]):
    return CliRunner().invoke(cli, ["data", "import", *map(str, args)])


# ------------------------------------------------------------- 1. a first row of words is not echoed

def test_a_headerless_first_row_of_words_is_not_echoed(tmp_path):
    """'alice,song1' has no number or date, so it passed for a header and was listed: 'the file has alice, song1'."""
    path = tmp_path / "log.csv"
    path.write_text("alice,song1\nbob,song2\n")
    with pytest.raises(DataError, match="the first line's 2 fields name none of them .*--columns") as err:
        import_dataset("csv", path)
    assert "alice" not in str(err.value) and "song1" not in str(err.value)


def test_a_header_above_rows_of_another_kind_is_still_listed(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("account,track,when\nalice,song1,2020-01-31\n")
    with pytest.raises(DataError, match="the file has account, track, when"):
        import_dataset("csv", path)


word = st.text(string.ascii_letters + "_-. ", max_size=12).map(lambda w: "Zq" + w)  # "Zq": in no message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(word, min_size=2, max_size=4), min_size=1, max_size=4))
def test_no_value_of_a_headerless_log_of_words_reaches_the_error(tmp_path_factory, rows):
    width = len(rows[0])
    rows = [(r * width)[:width] for r in rows]
    path = tmp_path_factory.mktemp("log") / "log.csv"
    path.write_text("".join(",".join(r) + "\n" for r in rows))
    with pytest.raises(DataError) as err:
        import_dataset("csv", path)
    assert "Zq" not in str(err.value).split("log.csv", 1)[-1], str(err.value)


# ------------------------------------------------------------- 2. Parquet date/timestamp id columns

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.mark.parametrize("role", ["user_id", "item_id"])
@pytest.mark.parametrize("kind", ["date32", "timestamp_us"])
def test_a_parquet_id_column_of_dates_is_refused_not_read_as_epoch_ticks(tmp_path, role, kind):
    """A date column named as the ids became '1580428800' (seconds since 1970), silently."""
    import datetime as dt

    days = [dt.date(2020, 1, 31), dt.date(2020, 2, 1)]
    dates = pa.array(days) if kind == "date32" else pa.array([dt.datetime(d.year, d.month, d.day) for d in days],
                                                              pa.timestamp("us"))
    columns = {"user_id": pa.array(["u1", "u1"]), "item_id": pa.array(["i1", "i2"]), "timestamp": pa.array([1, 2])}
    columns[role] = dates
    pq.write_table(pa.table(columns), tmp_path / "log.parquet")
    with pytest.raises(DataError, match=f"column '{role}' is a Parquet date or timestamp column, but holds ids"):
        import_dataset("parquet", tmp_path / "log.parquet")


def test_an_item_table_title_of_dates_is_refused(tmp_path):
    import datetime as dt

    pq.write_table(pa.table({"item_id": ["i1"], "title": pa.array([dt.date(2020, 1, 31)])}), tmp_path / "items.parquet")
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu1,i1,1\n")
    with pytest.raises(DataError, match="column 'title' is a Parquet date or timestamp column, but holds text"):
        import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.parquet")


# ------------------------------------------------------------- 3. a UTF-8 byte order mark read as latin-1

BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_a_utf8_mark_read_with_a_one_byte_encoding_is_named(tmp_path, encoding):
    """It became 'ï»¿user_id', reported as a missing column user_id."""
    (tmp_path / "log.csv").write_bytes(BOM + b"user_id,item_id,timestamp\nu1,i1,1\n")
    result = _import(["csv", tmp_path / "log.csv", "--out", tmp_path / "out", "--encoding", encoding])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "starts with a UTF-8 byte order mark" in result.output and "drop --encoding" in result.output


def test_an_item_table_with_a_utf8_mark_read_as_latin1_is_named(tmp_path):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu1,i1,1\n")
    (tmp_path / "items.csv").write_bytes(BOM + "item_id,title\ni1,Amélie\n".encode())
    result = _import(["csv", tmp_path / "log.csv", "--out", tmp_path / "out", "--items", tmp_path / "items.csv",
                      "--items-encoding", "latin-1"])
    assert result.exit_code == 1 and "items.csv:1: the file starts with a UTF-8 byte order mark" in result.output


def test_movielens_1m_ratings_with_a_utf8_mark_keep_the_first_user(tmp_path):
    """ratings.dat was read as latin-1: the mark stuck to the first user id ('ï»¿1', another user than 1)."""
    (tmp_path / "movies.dat").write_text("1::Toy Story (1995)::Comedy\n2::Heat (1995)::Action\n")
    (tmp_path / "ratings.dat").write_bytes(BOM + b"1::1::5::978300760\n1::2::3::978300761\n")
    assert load_movielens("ml-1m", tmp_path).user_ids == ["1"]


def test_a_movielens_item_file_with_a_mark_and_latin1_bytes_is_refused(tmp_path):
    """Read as latin-1 (it is not all UTF-8) the mark became part of item 1's id, and every rating of
    item 1 'not in the item table'."""
    (tmp_path / "u.item").write_bytes(BOM + f"1|Toy Story (1995)|01-Jan-1995||x{ML_FLAGS}\n".encode()
                                      + f"2|Amélie (2001)|01-Jan-2001||x{ML_FLAGS}\n".encode("latin-1"))
    (tmp_path / "u.data").write_text("1\t1\t5\t881250949\n1\t2\t3\t881250950\n")
    with pytest.raises(DataError, match="u.item:2: the file starts with a UTF-8 byte order mark but is not all"):
        load_movielens("ml-100k", tmp_path)


# ------------------------------------------------------------- 4. advice a MovieLens import can follow

@pytest.mark.parametrize("rating", ["nan", "x", "inf"])
def test_a_movielens_rating_that_is_not_a_number_gets_advice_that_works_there(tmp_path, rating):
    (tmp_path / "u.item").write_text(f"1|Toy Story (1995)|01-Jan-1995||x{ML_FLAGS}\n")
    (tmp_path / "u.data").write_text(f"1\t1\t5\t881250949\n1\t1\t{rating}\t881250950\n")
    with pytest.raises(DataError, match="u.data:2: .*rating from 0.5 to 5: correct or delete that line") as err:
        load_movielens("ml-100k", tmp_path)
    assert "leave the column out" not in str(err.value)


# ------------------------------------------------------------- 5. no host path in dataset.json

def test_dataset_json_names_the_source_file_not_its_host_path(tmp_path):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu1,i1,1\nu1,i2,2\n")
    assert _import(["csv", tmp_path / "log.csv", "--out", tmp_path / "out"]).exit_code == 0
    text = (tmp_path / "out" / "dataset.json").read_text()
    assert json.loads(text)["source"] == "log.csv" and str(tmp_path) not in text


def test_a_copied_folder_keeps_no_host_path(tmp_path):
    """load_dataset adds the folder's path to the meta; the demo's copy (`--out/data`) wrote it into
    dataset.json, as did an older import's full source path."""
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu1,i1,1\nu1,i2,2\n")
    save_dataset(import_dataset("csv", tmp_path / "log.csv"), tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "dataset.json").read_text())
    (tmp_path / "a" / "dataset.json").write_text(json.dumps(dict(meta, source=str(tmp_path / "log.csv"))))
    loaded = load_dataset(tmp_path / "a")
    save_dataset(Dataset(loaded.catalog, loaded.interactions, loaded.user_ids, loaded.meta), tmp_path / "copy")
    text = (tmp_path / "copy" / "dataset.json").read_text()
    assert str(tmp_path) not in text and json.loads(text)["source"] == "log.csv"


def test_a_bundle_names_an_imports_format_never_its_file():
    assert public_source({"source": "alice_plays.csv", "format": "csv"}) == "local csv files"
    assert public_source({"source": "/home/alice/plays.csv", "format": "csv"}) == "local csv files"
    assert public_source({"source": "edgerec synthetic audio/video world"}) == "edgerec synthetic audio/video world"


# ------------------------------------------------------------- a second file's byte order mark

@pytest.mark.parametrize("sep", [",", "\t"])
def test_a_byte_order_mark_inside_a_joined_file_is_refused_at_its_line(tmp_path, sep):
    """cat a.csv b.csv: b's mark stuck to its first user id, "\ufeffu1", which prints as u1 and was another user."""
    path = tmp_path / "log.csv"
    rows = ["user_id", "item_id", "timestamp"], ["u1", "a", "100"], ["\ufeffu1", "b", "101"]
    path.write_text("\ufeff" + "".join(sep.join(r) + "\n" for r in rows))  # the file's own mark is fine
    with pytest.raises(DataError, match=r"^log.csv:3: this line starts with a byte order mark \(U\+FEFF, invisible\)"):
        import_dataset("csv", path, options=ReadOptions(delimiter=sep))
    path.write_text("".join(sep.join(r) + "\n" for r in (rows[0], rows[1], ["\ufeffuser_id", *rows[0][1:]], rows[1])))
    with pytest.raises(DataError, match=r"^log.csv:3: this line repeats the header"):
        import_dataset("csv", path, options=ReadOptions(delimiter=sep))


def test_a_byte_order_mark_inside_an_id_of_json_lines_is_refused(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"user_id": "u1", "item_id": "a", "timestamp": 100}\n'
                    '{"user_id": "u1", "item_id": "\\ufeffa", "timestamp": 101}\n')
    with pytest.raises(DataError, match=r"^log.jsonl:2: column 'item_id' holds a byte order mark"):
        import_dataset("jsonl", path)


# ------------------------------------------------------------- a row in seconds among milliseconds

@pytest.mark.parametrize("unit, scale", [("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000)])
def test_a_row_in_seconds_among_finer_times_is_refused_at_its_line(tmp_path, unit, scale):
    """1600000001 read as ms is 1970-01-19: that play moved to the front of the user's history, silently."""
    path = tmp_path / "log.csv"
    path.write_text(f"user_id,item_id,timestamp\nu1,i1,{1_600_000_000 * scale}\nu2,i9,{1_600_000_000 * scale}\n"
                    f"u1,i2,1600000001\nu1,i3,{1_600_000_002 * scale}\n")
    with pytest.raises(DataError, match=r"^log.csv:4: column 'timestamp' holds '1600000001', which as epoch \w+ is "
                                        "a time in 1970, while other rows are dates after 1973: is this row written"):
        import_dataset("csv", path, options=ReadOptions(time_unit=unit))
    for rows in (["0", "1500", "3000"], ["1600000000", "1600000001", "1600000002"]):  # relative times; all seconds
        path.write_text("user_id,item_id,timestamp\n" + "".join(f"u1,i{i},{t}\n" for i, t in enumerate(rows)))
        assert len(import_dataset("csv", path, options=ReadOptions(time_unit=unit)).interactions) == 3


def test_the_early_row_is_named_when_the_real_dates_come_chunks_later(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\nu1,i1,5000\n" + "".join(f"u2,i{i},1600000000{i:03d}\n" for i in range(9)))
    with pytest.raises(DataError, match="^log.csv:2: column 'timestamp' holds '5000'"):
        import_dataset("csv", path, options=ReadOptions(time_unit="ms", chunk_rows=2))


# ------------------------------------------------------------- local times and --time-zone

@pytest.mark.parametrize("when, what", [("2020-10-25T01:30:00", "comes twice"),
                                        ("2020-03-29T01:30:00", "does not exist")])
def test_a_local_time_a_daylight_saving_change_leaves_unknown_is_refused_at_its_line(tmp_path, when, what):
    """Python picked the first of the two moments (or shifted a skipped time) and events were reordered."""
    path = tmp_path / "log.csv"
    path.write_text(f"user_id,item_id,timestamp\nu1,a,2020-06-01T12:00:00\nu1,b,{when}\n")
    with pytest.raises(DataError, match=f"^log.csv:3: column 'timestamp' holds '{when}', a local time that {what} in "
                                        "Europe/London"):
        import_dataset("csv", path, options=ReadOptions(time_zone="Europe/London"))
    for zone in ("+01:00", None):  # a fixed offset (or UTC) has no such times
        assert len(import_dataset("csv", path, options=ReadOptions(time_zone=zone)).interactions) == 2


def test_a_parquet_timestamp_without_a_zone_is_read_in_the_time_zone(tmp_path):
    """--time-zone was ignored for a naive Parquet timestamp column (read as UTC), not for the same text."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    def table(times, unit="us", tz=None):
        path = tmp_path / f"log-{len(list(tmp_path.iterdir()))}.parquet"
        pq.write_table(pa.table({"user_id": ["u1"] * len(times), "item_id": [f"i{k}" for k in range(len(times))],
                                 "timestamp": pa.array(times, pa.timestamp(unit, tz))}), path)
        return path

    eight = dt.datetime(2020, 1, 1, 8, 0)
    naive = table([eight])
    shanghai = ReadOptions(time_zone="Asia/Shanghai")
    assert import_dataset("parquet", naive, options=shanghai).interactions.timestamp.tolist() == [1577836800]
    assert import_dataset("parquet", naive).interactions.timestamp.tolist() == [1577865600]  # UTC without it
    aware = table([eight.replace(tzinfo=dt.timezone.utc)], tz="UTC")  # a zone of its own: kept
    assert import_dataset("parquet", aware, options=shanghai).interactions.timestamp.tolist() == [1577865600]
    twice = table([eight, dt.datetime(2020, 10, 25, 1, 30)])
    with pytest.raises(DataError, match=r"^log-\d.parquet:2: column 'timestamp' holds a local time that does not "
                                        "exist or comes twice in Europe/London"):
        import_dataset("parquet", twice, options=ReadOptions(time_zone="Europe/London"))


def test_a_whole_number_time_past_int64_is_refused_not_reordered(tmp_path):
    """Read through float64, 2**63 + 1 and 2**63 ns tied and kept the file's (wrong) order."""
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\nu1,a,1600000000000000000\nu1,b,9223372036854775809\n")
    with pytest.raises(DataError, match="^log.csv:3: column 'timestamp' holds '9223372036854775809', past the largest "
                                        "count of nanoseconds a 64-bit integer holds"):
        import_dataset("csv", path, options=ReadOptions(time_unit="ns"))


def test_a_release_file_with_a_header_line_says_to_delete_it(tmp_path):
    """It said to leave out --columns, which the user never passed and ml-100k refuses."""
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.item").write_text("1|Toy Story (1995)|01-Jan-1995||http://x" + ML_FLAGS + "\n")
    (folder / "u.data").write_text("user_id\titem_id\trating\ttimestamp\n1\t1\t3\t881250949\n")
    with pytest.raises(DataError) as err:
        import_dataset("ml-100k", folder)
    assert str(err.value) == ("u.data:1: the first line is a header line, but ml-100k's u.data has none (the release "
                              "writes its rows only): delete that line, or import the file as FORMAT csv with "
                              "--user-col, --item-col and --time-col")


def test_an_ml_latest_movies_file_in_latin_1_reads_as_the_other_releases_item_files(tmp_path):
    """Its header check read it as UTF-8 and asked for --encoding, which ml-latest refuses."""
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "movies.csv").write_bytes("movieId,title,genres\n1,Toy Story (1995),Comedy\n4,Café (2001),Drama\n"
                                        .encode("latin-1"))
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,4,3.0,964982704\n")
    dataset = import_dataset("ml-latest", folder)
    assert dataset.catalog.text["title"] == ["Toy Story", "Café"]


def test_rfc_3339_lower_case_t_and_z_read_as_upper_case(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\nu1,a,2020-01-01t00:00:00z\nu1,b,2020-01-01T00:00:01Z\n")
    assert import_dataset("csv", path).interactions.timestamp.tolist() == [1577836800, 1577836801]
