import gzip

import numpy as np
import pytest

from edgerec.data import (
    ColumnMap,
    ReadOptions,
    import_dataset,
    load_dataset,
    load_movielens,
    save_dataset,
)
from edgerec.data.schema import EVENT_CODE
from edgerec.errors import ConfigError, DataError


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def ml100k(tmp_path):
    write(tmp_path / "u.data", "1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t4\t881250940\n2\t30\t1\t881250940\n")
    write(tmp_path / "u.item",
          "10|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
          "20|GoldenEye (1995)|01-Jan-1995||http://x|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n"
          "30|Amélie (2001)|01-Jan-2001||http://x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|1|0|0|0|0\n", "latin-1")
    return tmp_path


def test_movielens_100k(ml100k):
    ds = load_movielens("ml-100k", ml100k)
    assert ds.n_users == 2 and ds.n_items == 3
    assert ds.catalog.text["title"] == ["Toy Story", "GoldenEye", "Amélie"]
    assert ds.catalog.tags[0] == ("animation", "children's", "comedy")
    assert set(ds.interactions.event) == {EVENT_CODE["rate"]}
    # sorted by (user, time); the tie of user 2 keeps the file order (item 10 before 30)
    assert [ds.catalog.item_ids[i] for i in ds.interactions.item] == ["10", "20", "10", "30"]
    assert ds.interactions.value.tolist() == [5, 3, 4, 1]


def test_movielens_1m(tmp_path):
    write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    write(tmp_path / "movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
                                   "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n", "latin-1")
    ds = load_movielens("ml-1m", tmp_path)
    assert ds.n_users == 2 and ds.n_items == 2
    assert ds.catalog.text["genre"] == ["drama", "animation"]
    assert ds.catalog.release_ts[0] == 157766400  # 1975-01-01


def test_movielens_latest_csv(tmp_path):
    write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n")
    write(tmp_path / "movies.csv", 'movieId,title,genres\n1,"Toy Story (1995)",Adventure|Animation\n'
                                   '3,"Grumpier Old Men, The (1995)",Comedy|Romance\n')
    ds = load_movielens("ml-latest", tmp_path)
    assert ds.catalog.text["title"][1] == "Grumpier Old Men, The"
    # time order: movie 3 was rated first
    assert [ds.catalog.item_ids[i] for i in ds.interactions.item] == ["3", "1"]
    assert ds.interactions.value.tolist() == [4.5, 4.0]


def test_generic_csv_with_column_mapping_and_iso_times(tmp_path):
    path = write(tmp_path / "log.csv", "who,what,when\nalice,song1,2024-01-02T10:00:00Z\nbob,song2,2024-01-01\n"
                                       "alice,song2,2024-01-01T09:00:00\n")
    ds = import_dataset("csv", path, columns=ColumnMap(user="who", item="what", time="when"))
    assert ds.user_ids == ["alice", "bob"]
    assert ds.interactions.event.tolist() == [EVENT_CODE["play"]] * 3
    assert [ds.catalog.item_ids[i] for i in ds.interactions.item[:2]] == ["song2", "song1"]


def test_chunked_reading_equals_one_pass(small_data_dir):
    whole = import_dataset("csv", small_data_dir / "interactions.csv")
    chunked = import_dataset("csv", small_data_dir / "interactions.csv", options=ReadOptions(chunk_rows=997))
    for field in ("user", "item", "timestamp", "event", "value", "device"):
        assert np.array_equal(getattr(whole.interactions, field), getattr(chunked.interactions, field))


def test_sampling_by_user_is_deterministic_and_keeps_whole_users(small_data_dir):
    a = load_dataset(small_data_dir, sample_users=0.3, seed=1)
    b = load_dataset(small_data_dir, sample_users=0.3, seed=1)
    full = load_dataset(small_data_dir)
    assert a.user_ids == b.user_ids
    assert 0.15 * full.n_users < a.n_users < 0.45 * full.n_users
    user = a.user_ids[0]
    full_code = full.user_ids.index(user)
    assert (a.interactions.user == 0).sum() == (full.interactions.user == full_code).sum()


def test_parquet_round_trip(tmp_path, small_dataset):
    save_dataset(small_dataset, tmp_path / "pq", fmt="parquet")
    back = load_dataset(tmp_path / "pq")
    assert back.n_items == small_dataset.n_items
    assert np.array_equal(back.interactions.item, small_dataset.interactions.item)
    assert back.catalog.text["title"] == small_dataset.catalog.text["title"]


@pytest.mark.parametrize("content, message, line", [
    ("user_id,item_id\nu1,i1\n", "missing column 'timestamp', the time of each event; the file has user_id, item_id. "
     "Name it with --time-col, or import a log without times with --no-time", 1),
    ("user_id,item_id,timestamp\nu1,i1,100\nu1,i2,yesterday\n", "must hold a timestamp", 3),
    ("user_id,item_id,timestamp\nu1,i1,100\nu1,i2\n", "expected 3 fields", 3),
    ("user_id,item_id,timestamp,event\nu1,i1,100,watched\n", "unknown event 'watched'", 2),
    ("user_id,item_id,timestamp\n", "header but no rows", 1),
    ("", "file is empty", None),
])
def test_malformed_files_name_the_file_and_line(tmp_path, content, message, line):
    path = write(tmp_path / "bad.csv", content)
    with pytest.raises(DataError) as err:
        import_dataset("csv", path)
    text = str(err.value)
    assert message in text and text.startswith("bad.csv:") and str(tmp_path) not in text  # base name only
    assert err.value.path == str(path)  # the full path stays available to a program
    if line is not None:
        assert f"bad.csv:{line}:" in text


def test_bad_movielens_line_is_located(ml100k):
    with open(ml100k / "u.data", "a") as handle:
        handle.write("3\t10\tfive\t881250949\n")
    with pytest.raises(DataError, match=r"u\.data:5: column 'rating' must hold numbers"):
        load_movielens("ml-100k", ml100k)


def test_unknown_item_and_missing_folder_are_clear(tmp_path, small_data_dir):
    items = write(tmp_path / "items.csv", "item_id,title\ni1,One\n")
    log = write(tmp_path / "log.csv", "user_id,item_id,timestamp\nu,i1,1\nu,i9,2\n")
    with pytest.raises(DataError, match=r"log\.csv:3: item 'i9' is not in the item table"):
        import_dataset("csv", log, items=items)
    with pytest.raises(DataError, match="not a data folder"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DataError, match="dup.csv: catalog has duplicate item ids: 'i1' is item 2 and item 3 "):
        import_dataset("csv", log, items=write(tmp_path / "dup.csv", "item_id\ni0\ni1\ni1\n"))


# ------------------------------------------------------- hostile and real-world files (outside audit)

LOG = "user_id,item_id,timestamp\n"


def items_of(ds) -> list[str]:
    return [ds.catalog.item_ids[i] for i in ds.interactions.item]


def test_a_folder_given_as_the_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        import_dataset("csv", tmp_path)


def test_excel_byte_order_mark_and_gzip_files_import(tmp_path):
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (LOG + "u1,i1,5\n").encode())
    assert import_dataset("csv", bom).user_ids == ["u1"]
    packed = tmp_path / "log.csv.gz"
    packed.write_bytes(gzip.compress((LOG + "u1,i2,7\nu1,i1,5\n").encode()))
    assert items_of(import_dataset("csv", packed)) == ["i1", "i2"]


@pytest.mark.parametrize("value, message", [
    ("1e30", "--time-unit ms"),  # would wrap to -2**63 as int64
    ("99999999999999999999", "--time-unit ms"),
    ("1704182400123", "--time-unit ms"),  # milliseconds read as seconds: year 55,975
    ("-5", "before 1970"),
])
def test_timestamps_out_of_range_are_refused_not_wrapped(tmp_path, value, message):
    path = write(tmp_path / "t.csv", LOG + f"u1,i1,1\nu1,i2,{value}\n")
    with pytest.raises(DataError, match=f"t.csv:3: column 'timestamp' holds '{value}'.*{message}"):
        import_dataset("csv", path)


def test_time_unit_converts_millisecond_logs(tmp_path):
    path = write(tmp_path / "ms.csv", LOG + "u1,i1,1704182400999\nu1,i2,1704182400123\n")
    ds = import_dataset("csv", path, options=ReadOptions(time_unit="ms"))
    assert ds.interactions.timestamp.tolist() == [1704182400, 1704182400]
    assert items_of(ds) == ["i2", "i1"]  # ordered by the milliseconds, not by file order within the second


@pytest.mark.parametrize("unit, seconds", [("10min", 600), ("min", 60), ("h", 3_600), ("d", 86_400),
                                           ("1d", 86_400), ("30s", 30), ("7d", 7 * 86_400), ("2s", 2)])
def test_times_counted_in_steps_read_as_whole_seconds(tmp_path, unit, seconds):
    # Twitch 100k counts its times in 10-minute slots from the crawl's start; read as seconds, a day became 144 s
    path = write(tmp_path / "steps.csv", LOG + "u1,i1,4000\nu1,i2,3\nu1,i3,3.5\n")
    ds = import_dataset("csv", path, options=ReadOptions(time_unit=unit))
    assert items_of(ds) == ["i2", "i3", "i1"]
    assert ds.interactions.timestamp.tolist() == [3 * seconds, int(3.5 * seconds), 4000 * seconds]
    assert "10-minute steps" in import_dataset("csv", path, options=ReadOptions(time_unit="10min")).meta["warnings"][0]


def test_times_in_steps_past_the_year_5000_are_refused_by_line(tmp_path):
    path = write(tmp_path / "far.csv", LOG + "u1,i1,3\nu1,i2,99999999999\n")
    with pytest.raises(DataError, match="far.csv:3: .*after the year 5000 as epoch days"):
        import_dataset("csv", path, options=ReadOptions(time_unit="d"))


def test_fractional_seconds_keep_their_order_and_ties_keep_file_order(tmp_path):
    path = write(tmp_path / "f.csv", LOG + "u1,i1,1.7\nu1,i2,1.5\nu1,i3,2\nu1,i4,2\nu1,i5,1.5\n")
    ds = import_dataset("csv", path)
    assert items_of(ds) == ["i2", "i5", "i1", "i3", "i4"]
    assert ds.interactions.timestamp.tolist() == [1, 1, 1, 2, 2]


@pytest.mark.parametrize("user, message", [
    ("u" * 300, "id of 300 characters; the device takes at most 256"),
    ("a\x00b", "NUL character"),
])
def test_ids_the_device_would_refuse_are_refused_at_import(tmp_path, user, message):
    path = write(tmp_path / "ids.csv", LOG + f"ok,i1,1\n{user},i1,2\n")
    with pytest.raises(DataError, match=f"ids.csv:3: column 'user_id' holds .*{message}"):
        import_dataset("csv", path)


def test_ids_with_commas_quotes_and_unicode_survive(tmp_path):
    path = write(tmp_path / "odd.csv", LOG + 'ü,"a,b",1\n"q""x","say ""hi""",2\n')
    ds = import_dataset("csv", path)
    assert ds.user_ids == ["ü", 'q"x'] and ds.catalog.item_ids == ["a,b", 'say "hi"']
    path = write(tmp_path / "odd.csv", LOG + 'ü,"line\nbreak",1\n')  # shown on one line: refused at its line
    with pytest.raises(DataError, match=r"^odd.csv:2: column 'item_id' holds a line break \(U\+000A\) in an id"):
        import_dataset("csv", path)


def test_a_header_glued_by_another_delimiter_says_which(tmp_path):
    path = write(tmp_path / "semi.csv", "user_id;item_id;timestamp\nu1;i1;1\n")
    with pytest.raises(DataError, match="separated by ';'\\? Pass --delimiter"):
        import_dataset("csv", path)
    assert import_dataset("csv", path, options=ReadOptions(delimiter=";")).user_ids == ["u1"]


@pytest.mark.parametrize("options, message", [
    (dict(delimiter=""), "delimiter"), (dict(delimiter='"'), "delimiter"), (dict(chunk_rows=0), "chunk_rows"),
    (dict(time_unit="hours"), "unknown time unit"), (dict(time_unit="0min"), "unknown time unit"),
    (dict(time_unit=5), "unknown time unit"), (dict(sample_users=0.0), "fraction"),
])
def test_bad_read_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        ReadOptions(**options)


def test_parquet_float_ids_nested_and_binary_columns(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    floats = tmp_path / "floats.parquet"  # what pandas writes for an int column with a gap
    pq.write_table(pa.table({"user_id": ["a", "a"], "item_id": [10.0, 20.0], "timestamp": [2.5, 1.0]}), floats)
    ds = import_dataset("parquet", floats)
    assert ds.catalog.item_ids == ["10", "20"] and items_of(ds) == ["20", "10"]
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"user_id": [["a"]], "item_id": ["x"], "timestamp": [1]}), nested)
    with pytest.raises(DataError, match=r"nested.parquet:1: column 'user_id' holds a list where one id"):
        import_dataset("parquet", nested)
    raw = tmp_path / "raw.parquet"
    pq.write_table(pa.table({"user_id": ["a"], "item_id": [b"\xff"], "timestamp": [1]}), raw)
    with pytest.raises(DataError, match="raw.parquet:1: column 'item_id' holds bytes that are not UTF-8"):
        import_dataset("parquet", raw)


def test_utf8_item_file_is_not_read_as_latin1(ml100k):
    text = (ml100k / "u.item").read_bytes().decode("latin-1")
    (ml100k / "u.item").write_bytes(text.encode("utf-8"))  # a re-packaged copy
    assert load_movielens("ml-100k", ml100k).catalog.text["title"][2] == "Amélie"


def test_an_item_file_stitched_from_utf8_and_latin1_keeps_both_titles(ml100k):
    """A latin-1 file extended with a UTF-8 line is not all UTF-8: each title is read the way it was written."""
    with open(ml100k / "u.item", "ab") as handle:
        handle.write("40|Café au lait (1994)|01-Jan-1994||http://x".encode() + b"|0" * 19 + b"\n")
    titles = load_movielens("ml-100k", ml100k).catalog.text["title"]
    assert titles[2] == "Amélie" and titles[-1] == "Café au lait"


def test_movielens_ratings_out_of_range_and_duplicate_items_are_located(ml100k):
    with open(ml100k / "u.data", "a") as handle:
        handle.write("3\t10\t9\t881250949\n")
    with pytest.raises(DataError, match=r"u\.data:5: column 'rating' holds '9', outside 0.5 to 5"):
        load_movielens("ml-100k", ml100k)
    with open(ml100k / "u.item", "a", encoding="latin-1") as handle:
        handle.write("20|Again (1995)|01-Jan-1995||http://x" + "|0" * 19 + "\n")
    with pytest.raises(DataError, match=r"u\.item: catalog has duplicate item ids: '20' is item 2 and item 4 "):
        load_movielens("ml-100k", ml100k)


def test_movielens_folder_mistakes_name_the_fix(ml100k, tmp_path):
    with pytest.raises(DataError, match="the folder holds ml-100k files: pass FORMAT ml-100k"):
        load_movielens("ml-1m", ml100k)
    archive = write(tmp_path / "ml-100k.zip", "PK")
    with pytest.raises(DataError, match="unzip the download and pass its folder"):
        load_movielens("ml-100k", archive)


def test_item_table_negative_duration_refused_pre_1970_release_kept(tmp_path):
    log = write(tmp_path / "log.csv", LOG + "u,i1,1\n")
    old = write(tmp_path / "old.csv", "item_id,duration,release_ts\ni1,90,-1262304000\n")
    assert import_dataset("csv", log, items=old).catalog.release_ts.tolist() == [-1262304000]  # a 1930 film
    bad = write(tmp_path / "bad.csv", "item_id,duration\ni1,-30\n")
    with pytest.raises(DataError, match=r"bad.csv:2: column 'duration' holds '-30', below 0"):
        import_dataset("csv", log, items=bad)


def test_an_output_folder_that_cannot_be_made_is_a_data_error(tmp_path, small_dataset):
    blocker = write(tmp_path / "file", "x")
    with pytest.raises(DataError, match="cannot create the output folder"):
        save_dataset(small_dataset, blocker / "sub")


def test_the_log_is_joined_and_sorted_column_by_column_as_in_one_piece():
    """The import joins its chunks and sorts them a column at a time (the log was held three times over);
    the result is the joined log's stable sort by (user, time, nanoseconds), with file order on ties."""
    from edgerec.data.loaders import LOG_FIELDS, _sorted_log
    from edgerec.data.schema import Interactions

    rng = np.random.default_rng(5)
    sizes = [7, 1, 12, 5]
    chunks = [dict(user=rng.integers(0, 4, n).astype(np.int32), item=rng.integers(0, 9, n).astype(np.int32),
                   timestamp=rng.integers(0, 3, n).astype(np.int64), event=rng.integers(0, 3, n).astype(np.int8),
                   value=rng.random(n).astype(np.float32), device=rng.integers(-1, 2, n).astype(np.int8))
              for n in sizes]
    within = [rng.choice([0, 500_000_000], len(c["timestamp"])) for c in chunks]  # ties and fractions (ns)
    whole = Interactions(**{f: np.concatenate([c[f] for c in chunks]) for f in LOG_FIELDS})
    expected = whole.sorted_by_time(np.concatenate(within))
    got = _sorted_log({f: [c[f] for c in chunks] for f in LOG_FIELDS}, list(within))
    for field in LOG_FIELDS:
        assert np.array_equal(getattr(got, field), getattr(expected, field))
        assert getattr(got, field).dtype == getattr(expected, field).dtype
