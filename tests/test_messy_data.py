"""Real logs are messy: what `edgerec data import` and a data folder do with byte order marks, CRLF, quoting,
trailing blank lines, repeated or doubled headers, foreign encodings, blank metadata, MovieLens quirks, and a
data folder that was re-imported in another format or cut short. Each case either imports correctly or stops
with a DataError/ConfigError that names the line and the fix."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgerec.cli.main import cli
from edgerec.data import (
    ColumnMap,
    ReadOptions,
    import_dataset,
    load_dataset,
    load_movielens,
    save_dataset,
)
from edgerec.data.schema import EVENT_CODE, EVENTS
from edgerec.data.tables import read_vectors
from edgerec.errors import ConfigError, DataError

HEADER = ["user_id", "item_id", "timestamp"]

# an id of only spaces is a missing one (tests/test_import_audit.py); control characters and line breaks are
# refused (tests/test_import_audit3.py)
ids = st.text(st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"), exclude_characters="\ufeff"), min_size=1,
              max_size=6).filter(lambda s: not s.isspace())


def log_text(rows, *, crlf=False, quote_all=False, bom=False, blank_tail=0) -> str:
    out = io.StringIO()
    ending = "\r\n" if crlf else "\n"
    # csv quotes a field holding a character of its line ending only: a bare "\r" under "\n" endings would be
    # written unquoted, a broken file (the reader rightly splits the row there)
    quote_all = quote_all or any("\r" in field for row in rows for field in row[:2])
    writer = csv.writer(out, lineterminator=ending, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return ("\ufeff" if bom else "") + out.getvalue() + ending * blank_tail


def sequences(dataset) -> dict[str, list[tuple[str, int]]]:
    log, items = dataset.interactions, dataset.catalog.item_ids
    out = defaultdict(list)
    for u, i, t in zip(log.user, log.item, log.timestamp):
        out[dataset.user_ids[u]].append((items[i], int(t)))
    return dict(out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(ids, ids, st.integers(0, 3)), min_size=1, max_size=12),
       crlf=st.booleans(), quote_all=st.booleans(), bom=st.booleans(), blank_tail=st.integers(0, 3),
       chunk_rows=st.sampled_from([1, 2, 5, 200_000]))
def test_any_valid_log_in_any_layout_imports_exactly_and_survives_the_data_folder(
        tmp_path_factory, rows, crlf, quote_all, bom, blank_tail, chunk_rows):
    """Ids with commas, quotes, line breaks, spaces or any script; few distinct times (ties everywhere); BOM,
    CRLF, quoting, blank lines after the last row, any chunk size: each user's events come back in time order
    with ties in file order, and the same after save and load."""
    folder = tmp_path_factory.mktemp("messy")
    path = folder / "log.csv"
    path.write_bytes(log_text(rows, crlf=crlf, quote_all=quote_all, bom=bom, blank_tail=blank_tail).encode())
    expected = defaultdict(list)
    for user, item, t in sorted(rows, key=lambda r: r[2]):  # sorted() is stable: ties keep the file order
        expected[user].append((item, t))
    dataset = import_dataset("csv", path, options=ReadOptions(chunk_rows=chunk_rows))
    assert sequences(dataset) == dict(expected)
    save_dataset(dataset, folder / "data")
    assert sequences(load_dataset(folder / "data")) == dict(expected)


def test_a_blank_line_between_rows_is_still_located(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\nu1,i1,1\n\nu1,i2,2\n\n")
    with pytest.raises(DataError, match=r"log.csv:3: blank line inside the data"):
        import_dataset("csv", path)


@pytest.mark.parametrize("header", ["user_id,item_id,timestamp,item_id", "user_id,item_id,timestamp,timestamp"])
def test_a_wanted_column_named_twice_is_refused_not_read_from_the_first_copy(tmp_path, header):
    path = tmp_path / "log.csv"
    path.write_text(f"{header}\nu1,i1,100,200\n")
    with pytest.raises(DataError, match=r"log.csv:1: column\(s\) (item_id|timestamp) appear more than once"):
        import_dataset("csv", path)


def test_a_doubled_column_in_parquet_is_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.Table.from_arrays([pa.array(["u1"]), pa.array(["i1"]), pa.array([100]), pa.array(["i9"])],
                                 names=["user_id", "item_id", "timestamp", "item_id"])
    pq.write_table(table, tmp_path / "log.parquet")
    with pytest.raises(DataError, match=r"log.parquet: column\(s\) item_id appear more than once"):
        import_dataset("parquet", tmp_path / "log.parquet")  # a Parquet file has no line 0 to name


@pytest.mark.parametrize("text", ["\n\n\n", "   \n", "\nuser_id,item_id,timestamp\nu1,i1,1\n", ",,\nu1,i1,1\n"])
def test_a_blank_first_line_is_named_as_such(tmp_path, text):
    path = tmp_path / "log.csv"
    path.write_text(text)
    with pytest.raises(DataError, match="log.csv:1: the first line is blank; the header line"):
        import_dataset("csv", path)


def test_a_repeated_header_line_from_joined_files_says_so(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\nu1,i1,100\nuser_id,item_id,timestamp\nu2,i1,100\n")
    with pytest.raises(DataError, match=r"log.csv:3: this line repeats the header"):
        import_dataset("csv", path)


def test_a_latin1_log_names_its_first_bad_line_and_imports_with_its_encoding(tmp_path):
    path = tmp_path / "log.csv"
    rows = "".join(f"u{n},i{n},{n}\n" for n in range(3000))  # the bad byte far beyond the text layer's first block
    path.write_bytes(("user_id,item_id,timestamp\n" + rows + "Zoë,Café,5\n").encode("latin-1"))
    with pytest.raises(DataError, match=r"log.csv:3002: not valid utf-8 text .*--encoding"):
        import_dataset("csv", path)
    dataset = import_dataset("csv", path, options=ReadOptions(encoding="latin-1"))
    assert "Zoë" in dataset.user_ids and "Café" in dataset.catalog.item_ids
    with pytest.raises(ConfigError, match="unknown text encoding 'latin-9x'"):
        ReadOptions(encoding="latin-9x")


def test_the_cli_passes_the_encoding_to_the_log_and_the_item_table(tmp_path):
    log, items = tmp_path / "log.csv", tmp_path / "items.csv"
    log.write_bytes("user_id,item_id,timestamp\nZoë,i1,1\nZoë,i2,2\n".encode("cp1252"))
    items.write_bytes("item_id,title\ni1,Amélie\ni2,Léon\n".encode("cp1252"))
    runner = CliRunner()
    failed = runner.invoke(cli, ["data", "import", "csv", str(log), "--items", str(items), "--out", str(tmp_path / "d")])
    assert failed.exit_code == 1 and "--encoding" in failed.output and "Traceback" not in failed.output
    result = runner.invoke(cli, ["data", "import", "csv", str(log), "--items", str(items), "--encoding", "cp1252",
                                 "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    back = load_dataset(tmp_path / "d")  # written as UTF-8
    assert back.user_ids == ["Zoë"] and back.catalog.text["title"] == ["Amélie", "Léon"]


def test_blank_item_metadata_is_unknown_and_tags_are_trimmed(tmp_path):
    log, items = tmp_path / "log.csv", tmp_path / "items.csv"
    log.write_text("user_id,item_id,timestamp\nu1,i1,1\n")
    items.write_text("item_id,tags,duration,release_ts,episode\ni1,rock | pop |rock,,,\ni2,,30.5,2020-01-01, 2\n")
    catalog = import_dataset("csv", log, items=items).catalog
    assert catalog.tags == [("rock", "pop"), ()]
    assert catalog.duration.tolist() == [0.0, 30.5]
    assert catalog.release_ts.tolist() == [0, 1577836800]
    assert catalog.episode.tolist() == [0, 2]


def test_movielens_100k_fields_are_never_quoted(tmp_path):
    """u.item is `|`-separated without quoting: a title that starts with a quote keeps it, and an unbalanced
    quote does not swallow the lines after it."""
    flags = "|".join(["0"] * 5 + ["1"] + ["0"] * 13)
    (tmp_path / "u.item").write_bytes((f'1|"Quoted" Title (1995)|01-Jan-1995||http://x|{flags}\n'
                                       f'2|"Half Caf\xe9 (1996)|01-Jan-1996||http://x|{flags}\n'
                                       f"3|Plain (1997)|01-Jan-1997||http://x|{flags}\n").encode("latin-1"))
    (tmp_path / "u.data").write_text("1\t1\t5\t10\n1\t2\t4\t11\n1\t3\t3\t12\n")
    dataset = load_movielens("ml-100k", tmp_path)
    assert dataset.catalog.text["title"] == ['"Quoted" Title', '"Half Café', "Plain"]
    assert len(dataset.interactions) == 3


def test_movielens_100k_release_date_column_dates_a_title_without_a_year(tmp_path):
    """Copies of u.item without the year in the titles (the one rebuilt from the recbole wheel) used to get
    release time 0 for every film, though the third column holds the date."""
    flags = "|".join(["0"] * 8 + ["1"] + ["0"] * 10)
    (tmp_path / "u.item").write_text(f"1|Toy Story (1995)|05-Oct-1996||http://x|{flags}\n"
                                     f"2|GoldenEye|05-Oct-1996||http://x|{flags}\n"
                                     f"3|Odd|31-Feb-1995||http://x|{flags}\n"
                                     f"4|unknown||||{flags}\n")
    (tmp_path / "u.data").write_text("1\t1\t5\t10\n1\t2\t4\t11\n1\t3\t3\t12\n1\t4\t3\t13\n")
    catalog = load_movielens("ml-100k", tmp_path).catalog
    assert catalog.release_ts.tolist() == [788918400, 844473600, 0, 0]  # 1995-01-01, 1996-10-05, not a date, blank


def test_items_flag_with_a_movielens_format_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="--items is for FORMAT csv, parquet or jsonl"):
        import_dataset("ml-100k", tmp_path, items=tmp_path / "items.csv")


# ------------------------------------------------------------------------------------------- data folders


def _import(tmp_path, text: str, out, fmt="csv"):
    log = tmp_path / "log.csv"
    log.write_text(text)
    return save_dataset(import_dataset("csv", log), out, fmt)


def test_re_importing_in_the_other_format_reads_the_new_files_and_deletes_nothing(tmp_path):
    """The loader used to prefer .parquet, so a CSV re-import into a Parquet folder read the old data. The
    other format's files are not deleted either: they may be the user's own sources in that folder."""
    out = tmp_path / "data"
    _import(tmp_path, "user_id,item_id,timestamp\nold,i1,1\n", out, "parquet")
    _import(tmp_path, "user_id,item_id,timestamp\nnew,j1,1\nnew,j2,2\n", out, "csv")
    assert len(list(out.glob("*.parquet"))) == 2
    assert load_dataset(out).user_ids == ["new"]
    _import(tmp_path, "user_id,item_id,timestamp\nnewer,k1,1\n", out, "parquet")
    assert load_dataset(out).user_ids == ["newer"]


def test_both_formats_without_dataset_json_is_ambiguous(tmp_path):
    out = _import(tmp_path, "user_id,item_id,timestamp\nu1,i1,1\n", tmp_path / "data", "parquet")
    _import(tmp_path, "user_id,item_id,timestamp\nu1,i1,1\n", tmp_path / "other", "csv")
    for name in ("items.csv", "interactions.csv"):
        (out / name).write_bytes((tmp_path / "other" / name).read_bytes())
    (out / "dataset.json").unlink()
    with pytest.raises(DataError, match="both items.csv and items.parquet here"):
        load_dataset(out)


LOG = "user_id,item_id,timestamp,event,value\n" + "".join(f"u{n % 3},i{n % 5},{100 + n},play,0.5\n" for n in range(12))


@pytest.mark.parametrize("cut, message", [
    ("interactions last line", "interactions.csv holds 11 events, dataset.json recorded 12 when"),
    ("interactions inside the last value", "interactions.csv ends inside a line: it was cut short"),
    ("items last line", "items.csv holds 4 items, dataset.json recorded 5 when"),
    ("items inside the last value", "items.csv ends inside a line"),
])
def test_a_cut_data_file_is_refused_not_read_short(tmp_path, cut, message):
    """A copy cut at a line break used to load with the events before the cut; one cut inside the last
    value (a device name, a tag) loaded with that value changed."""
    out = _import(tmp_path, LOG, tmp_path / "data")
    name = cut.split()[0] + ".csv"
    data = (out / name).read_bytes()
    keep = data[:data.rstrip(b"\r\n").rfind(b"\n") + 1] if "line" in cut else data[:-4]
    (out / name).write_bytes(keep)
    with pytest.raises(DataError, match=message):
        load_dataset(out)
    if cut == "interactions last line":  # a sample has fewer events by design: not counted
        assert 0 < len(load_dataset(out, sample_users=0.7).interactions) < 11  # keeps u0 of u0, u1, u2


def test_an_edit_that_keeps_the_rows_loads_and_one_that_adds_rows_says_what_to_set(tmp_path):
    out = _import(tmp_path, LOG, tmp_path / "data")
    log = out / "interactions.csv"
    log.write_text(log.read_text().replace(",play,", ",like,"))  # also turns the CRLF line ends into LF
    assert len(load_dataset(out).interactions) == 12
    with open(log, "a") as handle:
        handle.write("u9,i1,500,play,1.0,\n")
    with pytest.raises(DataError, match=r'holds 13 events.*set "events" in dataset.json to 13'):
        load_dataset(out)


@pytest.mark.parametrize("content", ["[1, 2]", '"text"', "\xff\xfe"])
def test_a_dataset_json_that_is_not_an_object_is_a_data_error(tmp_path, content):
    out = _import(tmp_path, LOG, tmp_path / "data")
    (out / "dataset.json").write_bytes(content.encode("latin-1"))
    with pytest.raises(DataError, match="dataset.json"):
        load_dataset(out)


@pytest.mark.parametrize("command", [["data", "stats", "{d}"], ["evaluate", "--data", "{d}", "--model", "popular"]])
def test_commands_on_a_cut_folder_print_one_error_line(tmp_path, command):
    out = _import(tmp_path, LOG, tmp_path / "data")
    (out / "interactions.csv").write_bytes((out / "interactions.csv").read_bytes()[:-4])
    result = CliRunner().invoke(cli, [a.format(d=out) for a in command])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "cut short" in result.output.splitlines()[-1]


@pytest.mark.parametrize("first, delimiter", [("alice,song1,2020-01-01", ","), ("7,31,1700000000", ","),
                                              ("alice;song1;100", ";")])
def test_a_file_without_its_header_line_says_so_without_showing_the_row(tmp_path, first, delimiter):
    path = tmp_path / "log.csv"
    path.write_text(first + "\n" + first + "\n")
    with pytest.raises(DataError, match="the first line holds data, not column names: add a header line") as err:
        import_dataset("csv", path)
    assert "alice" not in str(err.value) and "1700000000" not in str(err.value)
    assert (f"separated by '{delimiter}'" in str(err.value)) == (delimiter != ",")


def test_a_real_header_with_other_names_is_still_listed(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("account,track,ts\nalice,song1,100\n")
    with pytest.raises(DataError, match="the file has account, track, ts. Map a log.s columns"):
        import_dataset("csv", path)


def test_a_value_that_is_not_a_number_says_what_to_do(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp,value\nu1,i1,100,0.5\nu1,i2,200,n/a\n")
    with pytest.raises(DataError, match=r"log.csv:3: column 'value' .*; write a number in every row"):
        import_dataset("csv", path)


@pytest.mark.parametrize("value", ["", "nan", " NaN "])
def test_an_empty_value_reads_as_a_whole_play_and_is_counted(tmp_path, value):
    """A value column filled for some events only (Yambda's played share is empty on likes) was refused;
    an empty or NaN cell is now the value of a log without the column, 1, counted in a warning, and
    never a skip after --value-scale and --skip-below."""
    path = tmp_path / "log.csv"
    path.write_text(f"user_id,item_id,timestamp,value,event\nu1,i1,100,30,play\nu1,i2,200,{value},like\n"
                    f"u1,i3,300,{value},play\nu1,i4,400,80,play\n")
    data = import_dataset("csv", path, columns=ColumnMap(value_scale=0.01, skip_below=0.5))
    assert data.interactions.value.tolist() == pytest.approx([0.3, 1.0, 1.0, 0.8])
    assert [EVENTS[e] for e in data.interactions.event] == ["skip", "like", "play", "play"]
    assert data.meta["rows_without_value"] == 2
    assert any(w.startswith("2 rows have no 'value' (an empty cell or NaN), read as 1") for w in data.meta["warnings"])


@pytest.mark.parametrize("big", [2**53, 12345678901234567890, float("nan"), float("inf")])
def test_parquet_float_ids_that_lost_digits_are_refused(tmp_path, big):
    """pandas keeps an integer id column with a gap as float64: after dropna() the ids 12345678901234567890
    and ...891 were both imported as one user '12345678901234567168'."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"user_id": pa.array([1.0, float(big)], pa.float64()), "item_id": ["a", "b"],
                             "timestamp": [1, 2]}), path)
    with pytest.raises(DataError, match=r"log.parquet:2: column 'user_id' is stored as float64") as err:
        import_dataset("parquet", path)
    assert "1234567" not in str(err.value)
    pq.write_table(pa.table({"user_id": [1.0, 2.0**53 - 1], "item_id": ["a", "b"], "timestamp": [1, 2]}), path)
    assert import_dataset("parquet", path).user_ids == ["1", str(2**53 - 1)]


def test_an_open_quote_that_swallows_lines_is_named(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text('user_id,item_id,timestamp\nu1,"i1,100\nu2,i2,200\nu3,i3,300\n')
    with pytest.raises(DataError, match=r"log.csv:2: expected 3 fields .*found 2; a field runs over several lines"):
        import_dataset("csv", path)
    # the right number of fields by chance: the quote closes rows later and the swallowed rows vanished silently
    path.write_text('user_id,item_id,timestamp\nu1,"i1\nu2,i2,200\nu3,i3,300\nu4,"i4,400\nu5,i5,500\n')
    with pytest.raises(DataError, match=r"log.csv:2: a quoted field runs over several lines and holds whole rows"):
        import_dataset("csv", path)


def test_an_item_table_without_item_id_says_how_to_name_it(tmp_path):
    log, items = tmp_path / "log.csv", tmp_path / "items.csv"
    log.write_text("user_id,item_id,timestamp\nu1,i1,1\n")
    items.write_text("id,title\ni1,A\n")
    with pytest.raises(DataError, match=r"items.csv:1: missing column\(s\) item_id.*id column must be item_id"):
        import_dataset("csv", log, items=items)


def test_a_misspelt_optional_column_is_an_error_not_a_log_of_plays(tmp_path):
    """`--event-col acton` on a file with `action` used to import every event as a play."""
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp,action,stars\nu1,i1,1,like,4\nu1,i2,2,skip,1\n")
    with pytest.raises(DataError, match="missing column.s. acton; the file has user_id, item_id, timestamp, action"):
        import_dataset("csv", path, columns=ColumnMap(event="acton"))
    with pytest.raises(DataError, match="missing column.s. star;"):
        import_dataset("csv", path, columns=ColumnMap(event="action", value="star"))
    dataset = import_dataset("csv", path, columns=ColumnMap(event="action", value="stars"))
    assert dataset.interactions.event.tolist() == [EVENT_CODE["like"], EVENT_CODE["skip"]]
    assert import_dataset("csv", path).interactions.event.tolist() == [EVENT_CODE["play"]] * 2  # defaults: optional


def test_one_column_for_two_roles_is_refused():
    with pytest.raises(ConfigError, match="column 'ts' is named for both the time and the value"):
        ColumnMap(time="ts", value="ts")
    with pytest.raises(ConfigError, match="column 'id' is named for both the user and the item"):
        ColumnMap(user="id", item="id")


def test_an_unknown_event_says_what_to_do(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp,event\nu1,i1,1,play\nu1,i2,2,purchase\n")
    with pytest.raises(DataError, match=r"log.csv:3: unknown event 'purchase'; .*rename the file's events"):
        import_dataset("csv", path)


# ------------------------------------------------------------------------- vectors a user brings (.npy)


@pytest.fixture
def vector_files(tmp_path):
    good = np.ones((4, 3), np.float32)
    nan = good.copy()
    nan[2, 1] = np.nan
    files = {"garbage": tmp_path / "garbage.npy", "npz": tmp_path / "v.npz", "nan": tmp_path / "nan.npy",
             "objects": tmp_path / "objects.npy", "flat": tmp_path / "flat.npy", "empty": tmp_path / "empty.npy"}
    files["garbage"].write_text("not an array")
    np.savez(files["npz"], a=good)
    np.save(files["nan"], nan)
    np.save(files["objects"], np.array([["a"] * 3] * 4, dtype=object), allow_pickle=True)
    np.save(files["flat"], np.ones(4))
    np.save(files["empty"], np.ones((4, 0)))
    return files


@pytest.mark.parametrize("name, message", [
    ("garbage", "not a readable .npy array"), ("npz", "an .npz archive"), ("objects", "not a readable .npy"),
    ("nan", r"NaN or infinite values \(first in row 2\)"), ("flat", r"shape \(4,\)"), ("empty", r"shape \(4, 0\)"),
])
def test_bad_vector_files_are_data_errors(tmp_path, vector_files, name, message):
    """An .npz or a non-array file used to escape as a raw AttributeError/ValueError from `train --content`
    and `export --item-vectors`; NaN vectors trained and failed later as 'the model returned NaN scores'."""
    with pytest.raises(DataError, match=message):
        read_vectors(vector_files[name], "--content text")
    data = _import(tmp_path, LOG, tmp_path / "data")
    result = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "ck"), "--epochs", "1",
                                      "--content", f"text={vector_files[name]}"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert re.search(message, result.output.splitlines()[-1])


def test_vectors_must_have_one_row_per_item_and_become_float32():
    with pytest.raises(DataError, match=r"shape \(4, 3\), dtype float32; expected numbers of shape \(5, width\)"):
        read_vectors(np.ones((4, 3), np.float32), "content vectors 'text'", rows=5)
    with pytest.raises(DataError, match=r"expected numbers of shape \(4, 8\)"):
        read_vectors(np.ones((4, 3), np.float32), "the item vectors", rows=4, dim=8)
    assert read_vectors(np.ones((4, 3), np.int64), "x", rows=4, dim=3).dtype == np.float32
