"""What a log file is before it is rows (audit of real public logs, session 30): bzip2 and xz streams read
as gzip ones do, tar archives and UTF-16 text named for what they are, quotes that are part of a name
refused instead of silently merging two names, and 12-hour times that read as written."""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import tarfile

import pytest

from edgerec.data import ReadOptions, import_dataset
from edgerec.data.loaders import ColumnMap
from edgerec.data.tables import read_chunks, read_header
from edgerec.data.time_text import TimeText
from edgerec.errors import ConfigError, DataError

LOG = "user_id,item_id,timestamp\nu1,a,100\nu1,b,200\nu2,a,300\nu2,c,400\nu1,c,500\n"


def _rows(path) -> dict:
    columns: dict[str, list[str]] = {}
    for chunk in read_chunks(path, ["user_id", "item_id", "timestamp"], chunk_rows=2):
        for name, values in chunk.columns.items():
            columns.setdefault(name, []).extend(values)
    return columns


@pytest.mark.parametrize("name, pack", [("log.csv.bz2", bz2.compress), ("log.csv.xz", lzma.compress),
                                        ("log.csv.gz", gzip.compress), ("log.dat", bz2.compress)])
def test_bzip2_and_xz_logs_read_as_the_plain_file(tmp_path, name, pack):
    (tmp_path / "log.csv").write_text(LOG)
    (tmp_path / name).write_bytes(pack(LOG.encode()))
    assert read_header(tmp_path / name) == ["user_id", "item_id", "timestamp"]
    assert _rows(tmp_path / name) == _rows(tmp_path / "log.csv")  # told apart by their bytes, not their names


@pytest.mark.parametrize("pack", [bz2.compress, lzma.compress, gzip.compress])
def test_a_cut_compressed_stream_is_named_not_a_traceback(tmp_path, pack):
    path = tmp_path / "log.csv.x"
    body = pack(LOG.encode())
    path.write_bytes(body[:12])  # cut before its first line is whole
    with pytest.raises(DataError, match=r"^log.csv.x:1: cannot be read \(.+\): the file is cut short or damaged$"):
        _rows(path)
    lines = "".join(f"u{i % 97},i{i % 1009},{i}\n" for i in range(200_000))
    body = pack((LOG + lines).encode())  # incompressible enough that the cut falls after many rows
    path.write_bytes(body[: len(body) // 2])
    with pytest.raises(DataError, match=r"^log.csv.x:\d{3,}: cannot be read past this line"):
        _rows(path)


@pytest.mark.parametrize("name, pack", [("log.jsonl.bz2", bz2.compress), ("log.jsonl.xz", lzma.compress)])
def test_a_compressed_json_lines_log_is_json_lines(tmp_path, name, pack):
    path = tmp_path / name
    path.write_bytes(pack(b'{"user_id": "u1", "item_id": "a", "timestamp": 1}\n'))
    assert _rows(path) == {"user_id": ["u1"], "item_id": ["a"], "timestamp": ["1"]}


@pytest.mark.parametrize("name, mode", [("logs.tar", "w"), ("logs.tar.gz", "w:gz")])
def test_a_tar_archive_is_named_as_one(tmp_path, name, mode):
    data = LOG.encode()
    with tarfile.open(tmp_path / name, mode) as tar:
        info = tarfile.TarInfo("log.csv")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    message = f"{name}: a tar archive, not text: extract it (tar xf) and import the file inside"
    for read in (read_header, _rows):  # it was read as text: its header block, NUL bytes and all, as column names
        with pytest.raises(DataError) as err:
            read(tmp_path / name)
        assert str(err.value) == message


@pytest.mark.parametrize("bom", [codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE])
def test_utf16_text_is_named_with_the_option_that_reads_it(tmp_path, bom):
    path = tmp_path / "log.csv"
    path.write_bytes(bom + LOG.encode("utf-16-le" if bom == codecs.BOM_UTF16_LE else "utf-16-be"))
    with pytest.raises(DataError) as err:
        _rows(path)
    assert str(err.value) == ("log.csv:1: the file starts with a UTF-16 byte order mark (Excel's \"Unicode text\" "
                              "saves this way): pass --encoding utf-16")
    rows = {}
    for chunk in read_chunks(path, ["item_id"], encoding="utf-16"):
        rows.setdefault("item_id", []).extend(chunk.columns["item_id"])
    assert rows["item_id"] == ["a", "b", "a", "c", "c"]


STRAY = ("a field starts with a quote and goes on after the closing one (a name such as '\"Heroes\" (Live)'): its "
         "quotes are part of the text, not CSV quoting; pass --no-quoting, or quote the whole field and double the "
         "quotes inside it")


def test_quotes_that_are_part_of_a_name_are_refused_and_read_apart_without_quoting(tmp_path):
    """'"Weird Al" Yankovic' read as 'Weird Al Yankovic': two artists became one, without a word."""
    path = tmp_path / "plays.tsv"
    path.write_text('user\titem\tts\nu1\tWeird Al Yankovic\t100\nu1\t"Weird Al" Yankovic\t200\n'
                    'u2\tWeird Al Yankovic\t300\n')
    columns = ColumnMap(user="user", item="item", time="ts")
    with pytest.raises(DataError) as err:
        import_dataset("csv", path, columns=columns, options=ReadOptions(delimiter="\t"))
    assert str(err.value) == "plays.tsv:3: " + STRAY
    with pytest.raises(DataError) as err:  # --skip-bad-rows does not leave it out: the file's quoting is wrong
        import_dataset("csv", path, columns=columns, options=ReadOptions(delimiter="\t", skip_bad_rows=True))
    assert str(err.value) == "plays.tsv:3: " + STRAY
    dataset = import_dataset("csv", path, columns=columns, options=ReadOptions(delimiter="\t", quoted=False))
    assert sorted(dataset.catalog.item_ids) == ['"Weird Al" Yankovic', "Weird Al Yankovic"]


@pytest.mark.parametrize("text", ['u1,"a, the first",100\n', 'u1,"say ""hi""",100\n', 'u1,ab"c,100\n',
                                  'u1,"a\n""quoted"" at a line start, inside",100\n'])
def test_csv_quoting_as_written_still_reads(tmp_path, text):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\n" + text)
    (item,) = _rows(path)["item_id"]
    assert '"' not in item or item in ('say "hi"', 'ab"c') or item.startswith('a\n"quoted"')


@pytest.mark.parametrize("layout, problem", [
    ("%m/%d/%Y %H:%M:%S %p", "has %p (AM/PM) with a 24-hour %H: Python then ignores %p and reads 12:05 AM as "
                             "noon; write the hour as %I"),
    ("%m/%d/%Y %I:%M:%S", "has a 12-hour %I without %p (AM/PM): every time would read as AM; add %p, or write the "
                          "hour as %H if it counts to 23"),
])
def test_an_hour_that_cannot_read_as_written_is_refused_before_the_read(layout, problem):
    with pytest.raises(ConfigError) as err:
        TimeText(format=layout)
    assert str(err.value) == f"--time-format {layout!r} {problem}"


def test_twelve_hour_times_keep_their_order(tmp_path):
    """MIND's behaviors.tsv writes '11/15/2019 12:05:00 AM': read with %H it became noon, after 1:00 AM."""
    path = tmp_path / "log.tsv"
    path.write_text("u\ti\tt\nu1\ti1\t11/15/2019 12:05:00 AM\nu1\ti2\t11/15/2019 1:00:00 AM\n"
                    "u1\ti3\t11/15/2019 12:30:00 PM\n")
    dataset = import_dataset("csv", path, columns=ColumnMap(user="u", item="i", time="t"),
                             options=ReadOptions(delimiter="\t", time_format="%m/%d/%Y %I:%M:%S %p"))
    log = dataset.interactions
    assert [dataset.catalog.item_ids[i] for i in log.item] == ["i1", "i2", "i3"]
    assert list(log.timestamp) == [1_573_776_300, 1_573_779_600, 1_573_821_000]


HEADER_REFUSED = ("log.csv:1: the first line is a header line (text where the rows below hold numbers or times, or the "
                  "names --columns gives), but --columns says the file has none: leave --columns out and map the "
                  "columns by the header's names (--user-col, --item-col, --time-col)")


@pytest.mark.parametrize("names", [("user_id", "item_id", "timestamp"), ("user", "item", "ts")])
def test_columns_on_a_file_with_a_header_line_is_named(tmp_path, names):
    """It failed as a row ("found 'timestamp'"), or with names matching read the header as an event."""
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    with pytest.raises(DataError) as err:
        _rows_named(path, names)
    assert str(err.value) == HEADER_REFUSED


@pytest.mark.parametrize("text, users", [("u1,a,100\nu2,b,200\n", ["u1", "u2"]),
                                         ("alice,film one,x\nbob,film two,y\n", ["alice", "bob"])])
def test_columns_on_a_file_without_a_header_reads_its_first_line(tmp_path, text, users):
    path = tmp_path / "log.csv"
    path.write_text(text)
    assert _rows_named(path, ("user", "item", "ts"))["user"] == users


def _rows_named(path, names) -> dict:
    columns: dict[str, list[str]] = {}
    for chunk in read_chunks(path, list(names), header=names):
        for name, values in chunk.columns.items():
            columns.setdefault(name, []).extend(values)
    return columns


def test_a_file_separated_by_comma_and_space_is_named_with_its_delimiter(tmp_path):
    """'u1, i1, 100' read with ',': the header's names are stripped, the ids were not (' i1')."""
    path = tmp_path / "log.csv"
    path.write_text("user_id, item_id, timestamp\nu1, i1, 100\nu1, i2, 200\nu2, i1, 300\n")
    with pytest.raises(DataError) as err:
        import_dataset("csv", path)
    assert str(err.value) == ("log.csv:2: the fields are separated by ',' and a space (the header's names and the "
                              "first row's values after the first start with one): pass --delimiter ', ' (ids are "
                              "kept exactly as written, spaces included)")
    dataset = import_dataset("csv", path, options=ReadOptions(delimiter=", "))
    assert dataset.catalog.item_ids == ["i1", "i2"] and dataset.user_ids == ["u1", "u2"]
    path.write_text("user_id,item_id,timestamp\nu1, i1, 100\nu1,i2,200\n")  # spaced values alone: kept as written
    assert import_dataset("csv", path).catalog.item_ids == [" i1", "i2"]


def test_a_log_cut_after_the_date_of_its_last_time_is_warned_about(tmp_path):
    """Music4All's TSV cut after '2019-06-01' of '2019-06-01 07:29:09': that play became midnight, its
    user's first of the day, and the test item changed."""
    path = tmp_path / "listening.tsv"
    path.write_text("user_id\titem_id\ttimestamp\nu1\ta\t2019-06-01 07:20:00\nu1\tb\t2019-06-01 07:29:09\n"
                    "u1\tc\t2019-06-01")
    (warning,) = import_dataset("csv", path, options=ReadOptions(delimiter="\t")).meta["warnings"]
    assert warning.startswith("the file ends inside its last line (4: no line break after it)")


def test_a_log_cut_inside_its_last_time_is_warned_about(tmp_path):
    """'u3,i1,16000' after '...,1600039050' and no line break: a download that stopped; it imported as 1970."""
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\nu1,a,1600039040\nu2,b,1600039050\nu3,a,16000")
    (warning,) = import_dataset("csv", path).meta["warnings"]
    assert warning.startswith("the file ends inside its last line (4: no line break after it) and that row's time "
                              "is shorter than the row before's, as if cut: the file looks cut short")
    for whole in ("user_id,item_id,timestamp\nu1,a,1600039040\nu2,b,1600039050\nu3,a,16000\n",  # ends its line
                  "user_id,item_id,timestamp\nu1,a,1600039040\nu2,b,1600039050\nu3,a,1600039060",  # same digits
                  "user_id,item_id,timestamp\nu1,a,1600039040\nu2,b,2020-09-13T23:10:50\nu3,a,1600039",  # other form
                  "user_id,item_id,timestamp\nu1,a,1600039040\nu2,b,1600039049.5\nu3,a,1600039050"):  # a fraction
        path.write_text(whole)
        warnings = import_dataset("csv", path).meta.get("warnings", [])
        assert not any(w.startswith("the file ends inside") for w in warnings)


def test_an_item_table_without_a_header_line_is_named_without_echoing_its_row(tmp_path):
    (tmp_path / "log.csv").write_text("user_id,movie_id,timestamp\nu1,1,100\nu1,2,200\n")
    (tmp_path / "movie_titles.csv").write_text("1,1953,Isle of Man TT 2004 Review\n2,1969,Paula Abdul\n")
    with pytest.raises(DataError) as err:
        import_dataset("csv", tmp_path / "log.csv", columns=ColumnMap(item="movie_id"),
                       items=tmp_path / "movie_titles.csv")
    assert str(err.value) == ("movie_titles.csv:1: the item table's first line holds data, not column names: name "
                              "its columns in file order with --items-header (e.g. item_id,title,tags; fields edgerec "
                              "has no use for may take any name), or add a header line")
    # what the message says to do reads the file
    dataset = import_dataset("csv", tmp_path / "log.csv", columns=ColumnMap(item="movie_id"),
                             items=tmp_path / "movie_titles.csv", items_header=("movie_id", "year", "title"))
    assert dataset.catalog.item_ids == ["1", "2"]
    assert dataset.catalog.text["title"] == ["Isle of Man TT 2004 Review", "Paula Abdul"]



@pytest.mark.parametrize("layout", ["%Y-%m-%d", "%d/%m/%y %H:%M", "%c", "%x %X", "%G-W%V-%u"])
def test_a_time_format_with_a_year_is_accepted(layout):
    assert TimeText(format=layout).format == layout


@pytest.mark.parametrize("layout", ["%m%d", "%X", "%d %b %H:%M"])
def test_a_time_format_without_a_year_is_refused(layout):
    with pytest.raises(ConfigError, match=r"has no year \(%Y or %y\)"):
        TimeText(format=layout)


@pytest.mark.parametrize("text", ["a,  b\n1,  2\n", "user_id,item_id, ts\nu1, i1, 3\n", "a,b, c\n1, 2, 3\n",
                                  "a, b, c\n1,2, 3\n"])
def test_spaces_after_some_separators_are_kept_as_written(tmp_path, text):
    """Only a header and a first row whose every field after the first starts with a space are refused."""
    path = tmp_path / "log.csv"
    path.write_text(text)
    names = read_header(path)
    delimiter = ", " if text.startswith("a,  b\n") else ","  # the right one: never refused
    chunks = list(read_chunks(path, delimiter=delimiter))
    assert len(chunks) == 1 and names


def test_a_two_column_file_separated_by_comma_and_space_is_refused(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id, item_id\nu1, i1\n")
    with pytest.raises(DataError, match=r"^log.csv:2: the fields are separated by ',' and a space"):
        list(read_chunks(path))


def test_a_quoted_header_line_with_columns_is_named(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text('"user, name",item,ts\nu1,a,100\n')
    with pytest.raises(DataError) as err:
        _rows_named(path, ("u", "i", "t"))
    assert str(err.value) == HEADER_REFUSED


def test_columns_of_another_count_than_the_first_line_fail_as_a_row(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp,extra\nu1,a,100,x\n")
    with pytest.raises(DataError) as err:
        _rows_named(path, ("u", "i", "t"))
    assert str(err.value) == ("log.csv:1: expected 3 fields (u, i, t), found 4; to leave such rows out, counted, "
                              "pass --skip-bad-rows")
