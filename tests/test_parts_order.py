"""Audit fix: a folder's part files are read with their numbers compared by value, so pyarrow's and
Dask's unpadded `part-10` comes after `part-2`, and the last event (the held-out test item) is the last
one written."""

from __future__ import annotations

import pytest

from edgerec.data import import_dataset
from edgerec.data.loaders import ColumnMap, ReadOptions, read_interactions
from edgerec.data.parts import data_files


def test_numbers_in_part_names_sort_by_value(tmp_path):
    names = ["part-10.csv", "part-2.csv", "part-0.csv", "part-1.csv", "part-11.csv", "part-00003.csv"]
    for name in names:
        (tmp_path / name).write_text("user_id,item_id\n")
    assert [p.name for p in data_files(tmp_path)] == [
        "part-0.csv", "part-1.csv", "part-2.csv", "part-00003.csv", "part-10.csv", "part-11.csv"]


def test_dask_names_and_padded_names_keep_their_order(tmp_path):
    dask, spark = tmp_path / "dask", tmp_path / "spark"
    dask.mkdir()
    spark.mkdir()
    for n in (0, 1, 2, 9, 10, 12):
        (dask / f"part.{n}.csv").write_text("user_id,item_id\n")
        (spark / f"part-{n:05d}-c000.csv").write_text("user_id,item_id\n")
    assert [p.name for p in data_files(dask)] == [f"part.{n}.csv" for n in (0, 1, 2, 9, 10, 12)]
    assert [p.name for p in data_files(spark)] == [f"part-{n:05d}-c000.csv" for n in (0, 1, 2, 9, 10, 12)]


def test_a_log_without_times_in_pyarrow_parts_ends_with_its_last_written_event(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pds = pytest.importorskip("pyarrow.dataset")
    n = 60  # one user, items it0..it59 in this order, 12 parts of 5 rows: part-0 .. part-11, unpadded
    pds.write_dataset(pa.table({"user_id": ["u1"] * n, "item_id": [f"it{i}" for i in range(n)]}), tmp_path / "log",
                      format="parquet", max_rows_per_file=5, max_rows_per_group=5)
    assert (tmp_path / "log" / "part-10.parquet").exists()
    dataset = read_interactions(tmp_path / "log", ColumnMap(time=None), None, ReadOptions())
    order = [dataset.catalog.item_ids[i] for i in dataset.interactions.item]
    assert order == [f"it{i}" for i in range(n)]


def test_ties_in_time_follow_the_numbered_parts(tmp_path):
    folder = tmp_path / "plays"
    folder.mkdir()
    for n in range(12):  # every event at the same second: the parts' order is the events' order
        (folder / f"part-{n}.csv").write_text(f"user_id,item_id,timestamp\nu,i{n},100\n")
    dataset = import_dataset("csv", folder)
    assert [dataset.catalog.item_ids[i] for i in dataset.interactions.item][-1] == "i11"
