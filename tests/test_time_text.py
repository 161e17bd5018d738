"""Text times the log's way (`data import --time-format`, `--time-zone`): Goodreads' dates, KuaiRec's
Beijing `time` column and any fixed offset read as the exact epoch seconds, numbers and times that carry
their own zone untouched, and every wrong format, zone or line refused with what to write instead."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from edgerec.cli.main import cli
from edgerec.data import ReadOptions, import_dataset
from edgerec.data.loaders import ColumnMap
from edgerec.data.time_text import TimeText, zone_of
from edgerec.errors import ConfigError, DataError

LOG = ColumnMap(user="user_id", item="item_id", time="t")


def _log(tmp_path, times, name="log.csv"):
    path = tmp_path / name
    path.write_text("user_id,item_id,t\n" + "".join(f"u,i{n},{t}\n" for n, t in enumerate(times)), encoding="utf-8")
    return path


def _times(path, **options):
    return import_dataset("csv", path, columns=LOG, options=ReadOptions(**options)).interactions.timestamp.tolist()


def test_goodreads_dates_read_with_their_format(tmp_path):
    path = _log(tmp_path, ["Thu Dec 15 12:54:18 -0800 2016", "Mon Jan 02 00:00:00 +0000 2017"])
    expected = [int(datetime(2016, 12, 15, 20, 54, 18, tzinfo=timezone.utc).timestamp()),
                int(datetime(2017, 1, 2, tzinfo=timezone.utc).timestamp())]
    assert _times(path, time_format="%a %b %d %H:%M:%S %z %Y") == expected
    with pytest.raises(DataError, match="must hold a timestamp"):  # without the format: not ISO-8601
        _times(path)


def test_kuairec_beijing_time_reads_as_its_timestamp_column(tmp_path):
    # KuaiRec's `time` is Beijing time without a zone; its `timestamp` is the same instant in epoch seconds
    epoch = 1593898068.378
    local = datetime.fromtimestamp(epoch, timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    path = _log(tmp_path, [local])
    assert _times(path, time_zone="Asia/Shanghai") == [1593898068]
    assert _times(path, time_zone="+08:00") == [1593898068]
    assert _times(path) == [1593898068 + 8 * 3600]  # read as UTC: 8 hours off, as docs/data.md says


def test_a_zone_applies_to_times_without_one_only(tmp_path):
    path = _log(tmp_path, ["2020-01-01T00:00:00+00:00", "2020-01-01T00:00:00Z", "1577836800", "2020-01-01 09:00"])
    assert _times(path, time_zone="+09:00") == [1577836800] * 4


@pytest.mark.parametrize("text, minutes", [("+08:00", 480), ("UTC+8", 480), ("-0530", -330), ("GMT-5", -300),
                                           ("utc", 0), ("Z", 0), ("gmt", 0), ("+14:00", 840), ("+05:59", 359)])
def test_fixed_offsets(text, minutes):
    assert zone_of(text).utcoffset(None) == timedelta(minutes=minutes)


@pytest.mark.parametrize("options, error, message", [
    ({"time_format": "%Y %Q"}, ConfigError, "--time-format '%Y %Q' cannot be read"),
    ({"time_format": "%m%d"}, ConfigError, r"^--time-format '%m%d' has no year \(%Y or %y\): Python would date every "
     r"time in 1900, before any event can be; write the year into the times first \(Tmall's time_stamp 1111 is 11 "
     r"November 2015: '2015' \+ the value, with --time-format '%Y%m%d'\)$"),
    ({"time_format": "2020-01-01"}, ConfigError, "has no % directive"),
    ({"time_zone": "Mars/Base"}, ConfigError, "unknown time zone 'Mars/Base'; name an IANA zone"),
    ({"time_zone": "../../etc/passwd"}, ConfigError, "unknown time zone"),
    ({"time_zone": "+15:00"}, ConfigError, "is no offset a clock uses"),
    ({"time_zone": "+08:60"}, ConfigError, r"^--time-zone '\+08:60' is no offset a clock uses \(-14:00 to \+14:00\)$"),
    ({"time_zone": " "}, ConfigError, "^--time-zone is empty; name a zone such as Asia/Shanghai, or an offset such as "
                                      r"\+08:00$"),
    ({"time_zone": "Nowhere/City"}, ConfigError, r"^unknown time zone 'Nowhere/City'; name an IANA zone "
     r"\(Asia/Shanghai, America/New_York\) or an offset \(\+08:00\); on a system without a zone database, pip "
     "install tzdata$"),
    ({"time_format": "2020"}, ConfigError, r"^--time-format '2020' has no % directive; write it as Python's strptime "
     r"does, e.g. '%Y-%m-%d %H:%M:%S' or '%a %b %d %H:%M:%S %z %Y'$"),
])
def test_wrong_options_are_refused(tmp_path, options, error, message):
    path = _log(tmp_path, ["2020-01-01 00:00:00"])
    with pytest.raises(error, match=message):
        _times(path, **options)


def test_a_line_that_does_not_match_the_format_is_named_or_skipped(tmp_path):
    path = _log(tmp_path, ["2020-01-01", "2020/01/02", "2020-01-03"])
    with pytest.raises(DataError) as err:
        _times(path, time_format="%Y-%m-%d")
    assert str(err.value) == ("log.csv:3: column 't' holds '2020/01/02', which does not read as --time-format "
                              "'%Y-%m-%d': correct the format (Python's strptime directives) or that line")
    data = import_dataset("csv", path, columns=LOG, options=ReadOptions(time_format="%Y-%m-%d", skip_bad_rows=True))
    assert len(data.interactions.user) == 2 and data.meta["time_text"] == {"format": "%Y-%m-%d"}


def test_a_format_reads_digits_as_text_not_as_epoch_numbers(tmp_path):
    path = _log(tmp_path, ["20200131", "20200201"])
    assert _times(path, time_format="%Y%m%d") == [1580428800, 1580515200]


def test_movielens_formats_refuse_the_time_options(tmp_path):
    for options in ({"time_format": "%Y"}, {"time_zone": "+01:00"}):
        with pytest.raises(ConfigError, match="is read with its own columns; --time-"):
            import_dataset("ml-100k", tmp_path, options=ReadOptions(**options))


def test_the_command_line_records_the_options_in_the_data_folder(tmp_path):
    path = _log(tmp_path, ["05.07.2020 05:27", "05.07.2020 06:00"])
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["data", "import", "csv", str(path), "--out", str(out), "--time-col", "t",
                                      "--time-format", "%d.%m.%Y %H:%M", "--time-zone", "Europe/Berlin"])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["time_text"] == {"format": "%d.%m.%Y %H:%M", "zone": "Europe/Berlin"}
    assert str(tmp_path) not in json.dumps(meta)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 4_000_000_000), st.integers(-14 * 60, 14 * 60))
def test_local_text_at_any_offset_reads_back_as_its_instant(seconds, minutes):
    zone = timezone(timedelta(minutes=minutes))
    text = datetime.fromtimestamp(seconds, zone).strftime("%Y-%m-%d %H:%M:%S")
    sign, value = "-" if minutes < 0 else "+", abs(minutes)
    assert TimeText(zone=f"{sign}{value // 60:02d}:{value % 60:02d}").seconds(text) == seconds
    assert TimeText("%Y-%m-%d %H:%M:%S", f"{sign}{value // 60:02d}{value % 60:02d}").seconds(text) == seconds


BX = 'User-ID;ISBN;Book-Rating\n"276725";"034545104X";"0"\n"276726";"0155061224";"5"\n"276725";"0446520802";"7"\n'


def test_a_log_without_times_keeps_the_file_order(tmp_path):
    path = tmp_path / "BX-Book-Ratings.csv"
    path.write_text(BX + '"276725";"0452264464";"8"\n', encoding="latin-1")
    columns = ColumnMap(user="User-ID", item="ISBN", time=None, value="Book-Rating", default_event="rate")
    with pytest.raises(DataError, match="missing column"):  # without --no-time the time column is required
        import_dataset("csv", path, columns=ColumnMap(user="User-ID", item="ISBN", value="Book-Rating"),
                       options=ReadOptions(delimiter=";"))
    data = import_dataset("csv", path, columns=columns, options=ReadOptions(delimiter=";", chunk_rows=2))
    log = data.interactions
    first = log.user == data.user_ids.index("276725")
    assert [data.catalog.item_ids[i] for i in log.item[first]] == ["034545104X", "0446520802", "0452264464"]
    assert log.timestamp[first].tolist() == [0, 2, 3]  # rows counted across chunks
    assert data.meta["time"] == "file order"
    assert data.meta["warnings"][0].startswith("the log has no times (--no-time): each event's time is its row")


def test_trending_is_refused_on_a_log_without_times(tmp_path):
    """It weighed plays by an 'age' of row numbers (every play seconds old): popular under another name."""
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset, save_dataset
    from edgerec.models.baselines import make_baseline

    path = tmp_path / "BX-Book-Ratings.csv"
    path.write_text(BX + '"276726";"034545104X";"8"\n"276726";"0446520802";"3"\n', encoding="latin-1")
    columns = ColumnMap(user="User-ID", item="ISBN", time=None, value="Book-Rating", default_event="rate")
    save_dataset(import_dataset("csv", path, columns=columns, options=ReadOptions(delimiter=";")), tmp_path / "bx")
    data = load_dataset(tmp_path / "bx")  # the saved folder keeps the fact
    with pytest.raises(DataError) as err:
        make_baseline("trending", data, leave_last_out(data))
    assert str(err.value) == ("trending weighs each play by its age, and this log has no times (imported with "
                              "--no-time: a row's time is its place in the file); use popular")
    assert make_baseline("popular", data, leave_last_out(data)).name == "popular"


@pytest.mark.parametrize("options", [{"time_unit": "ms"}, {"time_format": "%Y"}, {"time_zone": "+01:00"}])
def test_time_options_without_a_time_column_are_refused(tmp_path, options):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id\nu,a\n")
    with pytest.raises(ConfigError, match="a log imported without one \\(--no-time\\) has none"):
        import_dataset("csv", path, columns=ColumnMap(time=None), options=ReadOptions(**options))


def test_the_command_line_imports_a_log_without_times(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("user,item,stars\nu,a,5\nu,b,3\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["data", "import", "csv", str(path), "--out", str(out), "--user-col", "user",
                                      "--item-col", "item", "--value-col", "stars", "--no-time"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "dataset.json").read_text())["time"] == "file order"


def test_a_typed_parquet_time_column_ignores_the_format(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"user_id": ["u", "u"], "item_id": ["a", "b"],
                             "t": pa.array([1_577_836_800, 1_577_836_860], pa.timestamp("s"))}), path)
    data = import_dataset("parquet", path, columns=LOG, options=ReadOptions(time_format="%d.%m.%Y"))
    assert data.interactions.timestamp.tolist() == [1_577_836_800, 1_577_836_860]
    result = CliRunner().invoke(cli, ["data", "import", "csv", str(path), "--out", str(tmp_path / "o2"), "--no-time",
                                      "--time-col", "when"])
    assert result.exit_code == 2 and "--no-time reads a log without times; it cannot go with --time-col when" in \
        " ".join(result.output.split())


def test_an_item_tables_release_times_without_a_zone_read_in_the_logs_zone(tmp_path):
    """KuaiRec-style: the log and its item table written in Beijing time without a zone; only the log's
    times were shifted, so every release was 8 hours late against the plays."""
    log = _log(tmp_path, ["2020-07-05 08:00:00", "2020-07-05 09:00:00"])
    items = tmp_path / "items.csv"
    items.write_text("item_id,release_ts\ni0,2020-07-05 08:00:00\ni1,1593907200\n", encoding="utf-8")
    dataset = import_dataset("csv", log, columns=LOG, items=items, options=ReadOptions(time_zone="Asia/Shanghai"))
    first_play = dataset.interactions.timestamp.min()
    assert dataset.catalog.release_ts.tolist() == [first_play, 1_593_907_200]  # epoch numbers never shift
    utc = import_dataset("csv", log, columns=LOG, items=items)
    assert utc.catalog.release_ts.tolist() == [utc.interactions.timestamp.min(), 1_593_907_200]
    assert first_play == utc.interactions.timestamp.min() - 8 * 3600
