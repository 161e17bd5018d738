"""An outside audit's inputs that still broke the importer: times finer than float64 seconds keep.

Epoch seconds as float64 keep about 0.2 us near today, so a nanosecond log (`--time-unit ns`, or a Parquet
`timestamp[ns]` column) read through floats tied events 100 ns apart (the file's order then decided, which
may be the reverse of the true one) and rounded 1 ns before a second up to that second. Events per user
must come back in true time order, ties (equal times only) in file order."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgerec.data import ReadOptions, import_dataset

BASE_S = 1_700_000_000  # Nov 2023: where float64 seconds have a resolution of 2**-22 s (238 ns)
PER = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def item_order(dataset) -> dict[str, list[str]]:
    log, items = dataset.interactions, dataset.catalog.item_ids
    out = defaultdict(list)
    for u, i in zip(log.user, log.item):
        out[dataset.user_ids[u]].append(items[i])
    return dict(out)


def expected_order(rows) -> dict[str, list[str]]:
    out = defaultdict(list)
    for user, item, _ in sorted(rows, key=lambda r: r[2]):  # stable: equal times keep the file order
        out[user].append(item)
    return dict(out)


# times as integer ticks of the unit, a few ticks apart around BASE_S (ties, neighbours, a second's edge)
rows_of = st.lists(st.tuples(st.sampled_from(["u1", "u2"]), st.integers(-3, 3)), min_size=2, max_size=12)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_of, unit=st.sampled_from(["ns", "us", "ms"]), chunk_rows=st.sampled_from([1, 3, 200_000]))
def test_integer_times_of_any_unit_order_events_exactly(tmp_path_factory, rows, unit, chunk_rows):
    path = tmp_path_factory.mktemp("units") / "log.csv"
    ticks = [(user, f"i{n}", BASE_S * PER[unit] + offset) for n, (user, offset) in enumerate(rows)]
    path.write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in ticks))
    dataset = import_dataset("csv", path, options=ReadOptions(time_unit=unit, chunk_rows=chunk_rows))
    assert item_order(dataset) == expected_order(ticks)
    whole = {f"i{n}": t // PER[unit] for n, (_, _, t) in enumerate(ticks)}  # floor, never rounded up
    got = {dataset.catalog.item_ids[i]: int(t) for i, t in zip(dataset.interactions.item, dataset.interactions.timestamp)}
    assert got == whole


def test_a_nanosecond_before_a_second_stays_in_the_second_before(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(f"user_id,item_id,timestamp\nu,late,{BASE_S * 10**9}\nu,early,{BASE_S * 10**9 - 1}\n")
    dataset = import_dataset("csv", path, options=ReadOptions(time_unit="ns"))
    assert item_order(dataset) == {"u": ["early", "late"]}
    assert dataset.interactions.timestamp.tolist() == [BASE_S - 1, BASE_S]


@pytest.mark.parametrize("unit", ["ns", "us"])
@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Kolkata"])
def test_parquet_timestamp_columns_keep_their_sub_microsecond_order_and_zone(tmp_path, unit, tz):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    step = 100 if unit == "ns" else 1  # 100 ns (or 1 us) apart, the later one first in the file
    ticks = np.array([BASE_S * PER[unit] + 2 * step, BASE_S * PER[unit] + step, BASE_S * PER[unit] + step])
    table = pa.table({"user_id": ["u", "u", "u"], "item_id": ["third", "second", "tie"],
                      "timestamp": pa.array(ticks, pa.timestamp(unit, tz=tz))})
    pq.write_table(table, tmp_path / "log.parquet")
    # --time-unit is about numbers; a timestamp column carries its own unit
    dataset = import_dataset("parquet", tmp_path / "log.parquet", options=ReadOptions(time_unit="ms"))
    assert item_order(dataset) == {"u": ["second", "tie", "third"]}
    assert set(dataset.interactions.timestamp.tolist()) == {BASE_S}  # stored in UTC whatever the zone


def test_parquet_dates_and_second_timestamps_still_import(tmp_path):
    import datetime as dt

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"user_id": ["u", "u"], "item_id": ["b", "a"],
                             "timestamp": pa.array([dt.date(2020, 1, 2), dt.date(2020, 1, 1)])}), tmp_path / "d.parquet")
    dataset = import_dataset("parquet", tmp_path / "d.parquet")
    assert item_order(dataset) == {"u": ["a", "b"]}
    assert dataset.interactions.timestamp.tolist() == [1577836800, 1577923200]
    pq.write_table(pa.table({"user_id": ["u"], "item_id": ["a"],  # 1971 in a timestamp column: no unit to doubt
                             "timestamp": pa.array([dt.datetime(1971, 1, 1)], pa.timestamp("ms"))}), tmp_path / "t.parquet")
    assert "warnings" not in import_dataset("parquet", tmp_path / "t.parquet", options=ReadOptions(time_unit="ms")).meta


# ------------------------------------------------------------------ item keys of several columns

from edgerec.data import ColumnMap  # noqa: E402
from edgerec.errors import DataError  # noqa: E402

names = (st.lists(st.sampled_from(["A", "B"]), min_size=1, max_size=3).map(" - ".join)  # names holding the joiner
         | st.sampled_from(["-", " A", "é", "A -", "- B"]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plays=st.lists(st.tuples(names, names), min_size=1, max_size=8))
def test_a_key_of_several_columns_never_merges_two_items(tmp_path_factory, plays):
    """`--item-col artist+track`: distinct (artist, track) pairs stay distinct items, or the import stops;
    names holding the joiner ('A - B' + 'C' against 'A' + 'B - C') must not make one item of two."""
    path = tmp_path_factory.mktemp("keys") / "log.csv"
    path.write_text("user_id,artist,track,timestamp\n" + "".join(f'u,"{a}","{t}",{n}\n' for n, (a, t) in enumerate(plays)))
    try:
        dataset = import_dataset("csv", path, columns=ColumnMap(item="artist+track"))
    except DataError as exc:
        assert "same item key" in str(exc)
        return
    log, ids = dataset.interactions, dataset.catalog.item_ids
    pair_of = {}
    for code, play in zip(log.item, plays):  # one user, times in file order: the log keeps the file order
        assert pair_of.setdefault(int(code), play) == play  # one item, one pair
    assert len(ids) == len(set(plays))


def test_joined_names_that_collide_are_refused_naming_the_line(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,artist,track,timestamp\nu,Foo - Bar,Baz,1\nu,Foo,Bar - Baz,2\n")
    with pytest.raises(DataError, match=r":3: columns artist \+ track make the same item key 'Foo - Bar - Baz'"):
        import_dataset("csv", path, columns=ColumnMap(item="artist+track"))


def test_a_key_with_a_part_missing_is_an_empty_id_not_one_item_for_all_untitled_tracks(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,artist,track,timestamp\nu,Foo,,1\nu,Foo,,2\nu,Foo,Bar,3\n")
    with pytest.raises(DataError, match=r":2: .*every row needs artist and track"):
        import_dataset("csv", path, columns=ColumnMap(item="artist+track"))
    dataset = import_dataset("csv", path, columns=ColumnMap(item="artist+track"),
                             options=ReadOptions(skip_bad_rows=True))
    assert dataset.catalog.item_ids == ["Foo - Bar"]
    assert dataset.meta["skipped_rows"] == {"no user or item id": {"rows": 2, "first_lines": [2, 3]}}


def test_a_parquet_timestamp_before_1970_is_shown_as_a_date(tmp_path):
    import datetime as dt

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"user_id": ["u"], "item_id": ["a"],
                             "timestamp": pa.array([dt.datetime(1960, 1, 1)], pa.timestamp("us"))}), tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r":1: column 'timestamp' holds '1960-01-01T00:00:00\+00:00', a time before 1970"):
        import_dataset("parquet", tmp_path / "t.parquet")


# ------------------------------------------------------------------ Parquet column types


def _parquet_cases():
    pa = pytest.importorskip("pyarrow")
    users = ["007", "7", "007"]
    return {
        "string": pa.array(users),
        "large_string": pa.array(users, pa.large_string()),
        "dictionary (pandas categorical)": pa.array(users).dictionary_encode(),
        **({"string_view": pa.array(users, pa.string_view())} if hasattr(pa, "string_view") else {}),
    }


@pytest.mark.parametrize("kind", ["string", "large_string", "dictionary (pandas categorical)", "string_view"])
def test_parquet_text_id_columns_of_any_arrow_type_keep_every_id_exactly(tmp_path, kind):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    cases = _parquet_cases()
    if kind not in cases:
        pytest.skip(f"this pyarrow has no {kind}")
    items = pa.array([7, 7, 8], pa.int64()).dictionary_encode() if kind.startswith("dict") else pa.array([7, 7, 8], pa.uint64())
    pq.write_table(pa.table({"user_id": cases[kind], "item_id": items, "timestamp": pa.array([3, 2, 1], pa.int32())}),
                   tmp_path / "log.parquet")
    dataset = import_dataset("parquet", tmp_path / "log.parquet")
    assert sorted(dataset.user_ids) == ["007", "7"]  # leading zeros kept, "007" and "7" two users
    assert item_order(dataset) == {"007": ["8", "7"], "7": ["7"]}


def test_parquet_nullable_integer_ids_are_digits_and_a_missing_one_is_named(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"user_id": pd.array([1, 1, 2], "Int64"), "item_id": pd.array([10, 20, 10], "Int64"),
                          "timestamp": [1, 2, 3]})
    frame.to_parquet(tmp_path / "ok.parquet")
    dataset = import_dataset("parquet", tmp_path / "ok.parquet")
    assert item_order(dataset) == {"1": ["10", "20"], "2": ["10"]}  # never '10.0'
    frame.loc[1, "item_id"] = pd.NA
    frame.to_parquet(tmp_path / "gap.parquet")
    with pytest.raises(DataError, match=r"gap.parquet:2: column 'item_id' is empty"):
        import_dataset("parquet", tmp_path / "gap.parquet")


def test_a_seconds_log_imported_as_milliseconds_is_flagged_not_silently_moved_to_1970(tmp_path):
    from click.testing import CliRunner

    from edgerec.cli.main import cli

    path = tmp_path / "log.csv"
    path.write_text(f"user_id,item_id,timestamp\nu,a,{BASE_S}\nu,b,{BASE_S + 60}\n")
    result = CliRunner().invoke(cli, ["data", "import", "csv", str(path), "--out", str(tmp_path / "ms"),
                                      "--time-unit", "ms"])
    assert result.exit_code == 0 and "before 1973 read as epoch milliseconds" in result.output
    assert "without --time-unit" in result.output
    result = CliRunner().invoke(cli, ["data", "import", "csv", str(path), "--out", str(tmp_path / "s")])
    assert result.exit_code == 0 and "warning" not in result.output


def test_events_dated_after_today_are_flagged(tmp_path):
    """Deciseconds read as seconds (or a device clock set to 2999) put events centuries ahead, below the
    year-5000 refusal; splits and recency would read them as they are."""
    from click.testing import CliRunner

    from edgerec.cli.main import cli

    future = 32_503_680_000  # 3000-01-01
    path = tmp_path / "log.csv"
    path.write_text(f"user_id,item_id,timestamp\nu,a,{BASE_S}\nu,b,{future}\nv,a,{future + 60}\n")
    result = CliRunner().invoke(cli, ["data", "import", "csv", str(path), "--out", str(tmp_path / "f")])
    text = " ".join(result.output.split())
    assert result.exit_code == 0 and "2 events are dated after today (the latest on 3000-01-01)" in text
    path.write_text(f"user_id,item_id,timestamp\nu,a,{BASE_S * 1000}\n")
    result = CliRunner().invoke(cli, ["data", "import", "csv", str(path), "--out", str(tmp_path / "ms2"),
                                      "--time-unit", "ms"])
    assert result.exit_code == 0 and "warning" not in result.output


@pytest.mark.parametrize("blank", [" ", "   ", "\t"])
def test_a_blank_part_of_a_key_of_several_columns_is_a_missing_part(tmp_path, blank):
    """Ids are kept as written, spaces too (an id column's " " is an id); but a key of several columns is made
    of names, and a blank name names no track: every blank-titled track of an artist would be one item."""
    path = tmp_path / "log.csv"
    path.write_text(f"user_id,artist,track,timestamp\n u1 ,Foo,Bar,1\nu1,Foo,{blank},2\nu2,Foo,{blank},3\n")
    with pytest.raises(DataError, match=r":3: .*every row needs artist and track"):
        import_dataset("csv", path, columns=ColumnMap(item="artist+track"))
    kept = import_dataset("csv", path, columns=ColumnMap(item="artist+track"), options=ReadOptions(skip_bad_rows=True))
    assert kept.catalog.item_ids == ["Foo - Bar"] and kept.user_ids == [" u1 "]  # other spaces kept as written
    assert kept.meta["skipped_rows"]["no user or item id"]["rows"] == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offsets=st.lists(st.tuples(st.integers(0, 2_000), st.sampled_from([7, 8, 9])), min_size=2, max_size=8),
       zone=st.sampled_from(["Z", "+00:00", "+05:30", ""]), sep=st.sampled_from(["T", " "]))
def test_iso_times_with_nanosecond_fractions_order_events_exactly(tmp_path_factory, offsets, zone, sep):
    """Spark and pandas write ISO-8601 times with nine fraction digits; Python's datetime keeps six."""
    import datetime as dt

    path = tmp_path_factory.mktemp("iso") / "log.csv"
    start = dt.datetime(2023, 11, 14, 22, 13, 19)
    rows = []
    for n, (off, digits) in enumerate(offsets):  # off: ns after 22:13:19.999999000 (some cross the second)
        step = 10 ** (9 - digits)  # what the written digits can tell apart
        ns = (999_999_000 + off) // step * step
        stamp = start + dt.timedelta(seconds=ns // 10**9)
        rows.append(("u", f"i{n}", f"{stamp:%Y-%m-%d}{sep}{stamp:%H:%M:%S}.{ns % 10**9:09d}"[:-(9 - digits) or None]
                     + zone, ns))
    path.write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t, _ in rows))
    dataset = import_dataset("csv", path)
    assert item_order(dataset) == expected_order([(u, i, ns) for u, i, _, ns in rows])


@pytest.mark.parametrize("kind", ["zip", "parquet.gz", "parquet named .csv", "xlsx"])
def test_an_archive_or_parquet_file_read_as_text_says_what_it_is(tmp_path, kind):
    import gzip
    import io
    import zipfile

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = io.BytesIO()
    pq.write_table(pa.table({"user_id": ["u"], "item_id": ["a"], "timestamp": [1]}), table)
    if kind in ("zip", "xlsx"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("ratings.csv", "user_id,item_id,timestamp\nu,a,1\n")
        data, name, hint = buffer.getvalue(), "log." + kind, "unzip"
    elif kind == "parquet.gz":
        data, name, hint = gzip.compress(table.getvalue()), "log.parquet.gz", "Parquet"
    else:
        data, name, hint = table.getvalue(), "log.csv", "Parquet"
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError, match=hint) as info:
        import_dataset("csv", tmp_path / name)
    assert "--encoding" not in str(info.value)  # not a text encoding problem
