"""A table given as a folder of part files (Spark, Polars, Hive, Hugging Face exports): the parts read in
name order as one table, bookkeeping files left alone, and every error naming the part and its line."""

from __future__ import annotations

import gzip
import json

import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data import import_dataset
from edgerec.data.parts import data_files
from edgerec.data.store import load_dataset
from edgerec.data.tables import read_header
from edgerec.errors import DataError


@pytest.fixture
def spark(tmp_path):
    folder = tmp_path / "plays"
    folder.mkdir()
    (folder / "part-00001.csv").write_text("item_id,user_id,timestamp\nc,u,5\nd,v,1\n")  # its own column order
    (folder / "part-00000.csv").write_text("user_id,item_id,timestamp\nu,a,5\nu,b,2\n")
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-00000.csv.crc").write_bytes(b"\x00\x01")
    return folder


def test_parts_read_in_name_order_as_one_table(spark):
    assert [p.name for p in data_files(spark)] == ["part-00000.csv", "part-00001.csv"]
    assert read_header(spark) == ["user_id", "item_id", "timestamp"]
    dataset = import_dataset("csv", spark)
    log, items = dataset.interactions, dataset.catalog.item_ids
    user_u = log.user == dataset.user_ids.index("u")
    assert [items[i] for i in log.item[user_u]] == ["b", "a", "c"]  # a and c tie at 5: part order decides
    assert dataset.meta["source"] == "plays"


def test_an_error_names_the_part_and_its_line(spark):
    (spark / "part-00002.csv").write_text("user_id,item_id,timestamp\nu,e,6\nu,f,soon\n")
    with pytest.raises(DataError, match=r"part-00002.csv:3: column 'timestamp' must hold a timestamp"):
        import_dataset("csv", spark)
    (spark / "part-00002.csv").write_text("user_id,item,timestamp\nu,e,6\n")
    with pytest.raises(DataError, match=r"part-00002.csv:1: missing column\(s\) item_id"):
        import_dataset("csv", spark)


def test_parquet_and_json_lines_parts(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    folder = tmp_path / "pq"
    folder.mkdir()
    for n, items in enumerate((["a", "b"], ["c"])):
        pq.write_table(pa.table({"user_id": ["u"] * len(items), "item_id": items,
                                 "timestamp": list(range(n * 10, n * 10 + len(items)))}), folder / f"p{n}.parquet")
    assert import_dataset("parquet", folder).catalog.item_ids == ["a", "b", "c"]
    folder = tmp_path / "js"
    folder.mkdir()
    for n in range(2):
        with gzip.open(folder / f"part-{n}.jsonl.gz", "wt") as handle:
            handle.write(json.dumps({"user_id": "u", "item_id": f"i{n}", "timestamp": n}) + "\n")
    assert import_dataset("jsonl", folder).catalog.item_ids == ["i0", "i1"]


@pytest.mark.parametrize("names, message", [
    ([], "is a folder without data files"),
    (["_SUCCESS", ".hidden.csv", "notes"], "is a folder without data files"),
    (["a.csv", "b.parquet"], "is a folder of Parquet and text files; a table's parts are all of one kind"),
    (["a.csv.gz", "b.jsonl"], "is a folder of JSON Lines and text files"),
])
def test_folders_that_are_no_table_are_refused(tmp_path, names, message):
    folder = tmp_path / "f"
    folder.mkdir()
    for name in names:
        (folder / name).write_text("user_id,item_id,timestamp\nu,a,1\n")
    with pytest.raises(DataError, match=f"^f: {message}"):  # the folder's name, never its host path
        import_dataset("csv", folder)


def test_a_file_is_its_own_only_part(tmp_path):
    path = tmp_path / "log.anything"
    path.write_text("x")
    assert data_files(path) == [path]


def test_the_command_line_takes_folders_for_the_log_and_the_items(spark, tmp_path):
    items = tmp_path / "items"
    items.mkdir()
    (items / "part-0.csv").write_text("item_id,title\na,A\nb,B\n")
    (items / "part-1.csv").write_text("item_id,title\nc,C\nd,D\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["data", "import", "csv", str(spark), "--items", str(items), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert load_dataset(out).catalog.text["title"] == ["A", "B", "C", "D"]


def test_underscore_and_dot_files_are_bookkeeping_even_with_a_data_name(spark):
    (spark / "_temporary.csv").write_text("not,a,table\n")
    (spark / ".tmp.csv").write_text("not,a,table\n")
    assert [p.name for p in data_files(spark)] == ["part-00000.csv", "part-00001.csv"]


def test_a_mixed_folder_says_what_to_do(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    (folder / "b.parquet").write_text("x")
    with pytest.raises(DataError) as err:
        data_files(folder)
    assert str(err.value) == ("f: is a folder of Parquet and text files; a table's parts are all of one kind: give one "
                              "file, or move the others out")


def test_every_read_option_reaches_each_part(tmp_path):
    from edgerec.data.tables import Skipped, read_chunks

    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "a.tsv").write_bytes('u1\t"Caf\xe9\t1\nu2\tb\t2\n'.encode("latin-1"))
    (folder / "b.tsv").write_bytes("u3\tc\t3\textra\nu4\td\t4\n".encode("latin-1"))
    skipped = Skipped()
    chunks = list(read_chunks(folder, ["user", "item"], delimiter="\t", header=("user", "item", "t"), chunk_rows=1,
                              encoding="latin-1", quoted=False, skipped=skipped))
    assert [c.columns["item"] for c in chunks] == [['"Café'], ["b"], ["d"]]
    assert [c.path.rsplit("/", 1)[-1] for c in chunks] == ["a.tsv", "a.tsv", "b.tsv"]
    assert skipped.total == 1 and [c.line_of(0) for c in chunks] == [1, 2, 2]


def test_an_empty_part_is_named(tmp_path):
    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "a.parquet").write_bytes(b"")
    from edgerec.data.tables import read_chunks

    with pytest.raises(DataError, match=r"^a.parquet: file is empty; expected a header and at least one row$"):
        list(read_chunks(folder))


def test_quoted_fields_stay_whole_in_every_part(tmp_path):
    folder = tmp_path / "dump"
    folder.mkdir()
    for n in range(2):
        (folder / f"p{n}.csv").write_text(f'user_id,item_id,timestamp\nu,"Song, part {n}",{n}\n')
    assert import_dataset("csv", folder).catalog.item_ids == ["Song, part 0", "Song, part 1"]


def test_rows_left_out_of_parts_are_named_with_their_part(tmp_path):
    from edgerec.data import ReadOptions

    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "a.csv").write_text("user_id,item_id,timestamp\nu,x,1\nu,,2\n")
    (folder / "b.csv").write_text("user_id,item_id,timestamp\nu,y,soon\nu,z,3,extra\nu,w,4\n")
    data = import_dataset("csv", folder, options=ReadOptions(skip_bad_rows=True))
    assert data.catalog.item_ids == ["x", "w"]
    assert data.meta["skipped_rows"] == {
        "not 3 fields": {"rows": 1, "first_lines": ["b.csv:3"]},
        "no user or item id": {"rows": 1, "first_lines": ["a.csv:3"]},
        "time not readable": {"rows": 1, "first_lines": ["b.csv:2"]}}


def test_a_column_only_some_parts_hold_is_never_dropped_silently(tmp_path):
    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "a.csv").write_text("user_id,item_id,timestamp\nu,x,1\n")
    (folder / "b.csv").write_text("user_id,item_id,timestamp,value\nu,y,2,0.5\n")
    assert read_header(folder) == ["user_id", "item_id", "timestamp", "value"]
    with pytest.raises(DataError, match=r"^a.csv:1: missing column\(s\) value"):
        import_dataset("csv", folder)  # it read the value of no part before
    (folder / "a.csv").write_text("user_id,item_id,timestamp,value\nu,x,1,1\n")
    assert import_dataset("csv", folder).interactions.value.tolist() == [1.0, 0.5]
