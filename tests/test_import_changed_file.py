"""A log rewritten or appended to while it is imported is refused at the end of its read: its rows would
mix two versions of the file, silently."""

import os

import pytest

from edgerec.data.tables import read_chunks
from edgerec.errors import DataError

ROWS = "".join(f"u{i},i{i},{1000 + i}\n" for i in range(6))


def csv_file(folder):
    path = folder / "log.csv"
    path.write_text("user_id,item_id,timestamp\n" + ROWS)
    return path


def jsonl_file(folder):
    path = folder / "log.jsonl"
    path.write_text("".join(f'{{"user_id": "u{i}", "item_id": "i{i}", "timestamp": {1000 + i}}}\n' for i in range(6)))
    return path


def parquet_file(folder):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "log.parquet"
    pq.write_table(pa.table({"user_id": [f"u{i}" for i in range(6)], "item_id": [f"i{i}" for i in range(6)],
                             "timestamp": list(range(1000, 1006))}), path)
    return path


def append(path):
    with open(path, "ab") as f:
        f.write(b"u9,i9,2000\n" if path.suffix != ".jsonl" else b'{"user_id": "u9", "item_id": "i9", "timestamp": 2000}\n')


def replace_same_size(path):
    """A copy over the file: same bytes, same size, a new inode (an editor's save, an rsync)."""
    copy = path.with_name("copy" + path.suffix)
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)


@pytest.mark.parametrize("make", [csv_file, jsonl_file, parquet_file])
@pytest.mark.parametrize("change", [append, replace_same_size])
def test_a_file_changed_during_the_read_is_refused(tmp_path, make, change):
    path = make(tmp_path)
    chunks = read_chunks(path, chunk_rows=2)
    next(chunks)
    change(path)
    with pytest.raises(DataError) as caught:
        list(chunks)
    assert str(caught.value) == (f"{path.name}: file changed while it was read (a program still writing it, or a "
                                 "copy over it); import it again once nothing writes to it, or import a copy")


def test_a_part_changed_during_the_read_of_its_folder_is_named(tmp_path):
    folder = tmp_path / "log"
    folder.mkdir()
    for name in ("part-0.csv", "part-1.csv"):
        (folder / name).write_text("user_id,item_id,timestamp\n" + ROWS)
    chunks = read_chunks(folder, chunk_rows=4)
    next(chunks)
    append(folder / "part-0.csv")
    with pytest.raises(DataError, match="part-0.csv.*changed while it was read"):
        list(chunks)


@pytest.mark.parametrize("make", [csv_file, jsonl_file, parquet_file])
def test_a_file_left_alone_reads_whole(tmp_path, make):
    rows = sum(len(chunk) for chunk in read_chunks(make(tmp_path), chunk_rows=2))
    assert rows == 6


def test_the_import_writes_nothing_when_its_log_changed(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from edgerec.cli.main import cli
    from edgerec.data import tables

    path = csv_file(tmp_path)
    real = tables._identity
    calls = []

    def moving(p):  # the second look (after the read) sees a file that has grown
        calls.append(p)
        size, mtime, inode = real(p)
        return (size + (len(calls) > 1), mtime, inode)

    monkeypatch.setattr(tables, "_identity", moving)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["data", "import", "csv", str(path), "--out", str(out)])
    assert result.exit_code != 0 and "changed while it was read" in result.output
    assert not out.exists() or not any(out.iterdir())  # no half-imported folder left behind


def test_a_part_added_to_a_folder_during_its_read_is_refused(tmp_path):
    folder = tmp_path / "log"
    folder.mkdir()
    (folder / "part-0.csv").write_text("user_id,item_id,timestamp\n" + ROWS)
    chunks = read_chunks(folder, chunk_rows=4)
    next(chunks)
    (folder / "part-1.csv").write_text("user_id,item_id,timestamp\n" + ROWS)  # a writer's next part lands
    with pytest.raises(DataError, match="log: folder's part files changed while they were read"):
        list(chunks)
