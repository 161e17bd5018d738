"""Guards of data/store.py and data/schema.py (mutation note 37): a data folder written and read back exactly
(ids as text, tied times in their order, every column), and a damaged folder refused with a DataError that
names the file, never the host path."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from edgerec.data import import_dataset, load_dataset, save_dataset
from edgerec.data.schema import EVENT_CODE, ITEM_TEXT_COLUMNS, Catalog, Dataset, Interactions
from edgerec.errors import DataError

LOG = "user_id,item_id,timestamp\n"


def write(path, text):
    path.write_text(text)
    return path


def small_folder(tmp_path):
    log = write(tmp_path / "log.csv", LOG + "u1,i1,1\nu1,i2,2\n")
    return save_dataset(import_dataset("csv", log), tmp_path / "data")


def test_a_dataset_json_that_is_a_folder_is_a_data_error_without_the_host_path(tmp_path):
    """It was IsADirectoryError, whose text holds the full path."""
    folder = small_folder(tmp_path)
    (folder / "dataset.json").unlink()
    (folder / "dataset.json").mkdir()
    with pytest.raises(DataError) as err:
        load_dataset(folder)
    assert str(err.value) == ("dataset.json: dataset.json cannot be read (Is a directory); it must be a file this "
                              "user can read: fix its permissions, or delete it and regenerate the folder")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_dataset_json_is_a_data_error(tmp_path):
    folder = small_folder(tmp_path)
    (folder / "dataset.json").chmod(0)
    try:
        with pytest.raises(DataError, match=r"^dataset.json: dataset.json cannot be read \(Permission denied\)"):
            load_dataset(folder)
    finally:
        (folder / "dataset.json").chmod(0o644)


def test_the_folder_records_its_counts_and_format(tmp_path):
    folder = small_folder(tmp_path)
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta == {"events": 2, "file_format": "csv", "format": "csv", "format_version": 1, "items": 2,
                    "source": "log.csv", "users": 1}


# ------------------------------------------------------------------ schema: the in-memory model


def test_a_catalog_fills_unknown_columns_with_their_empty_values():
    catalog = Catalog(["a", "b"], {"title": ["A", "B"]})
    assert set(catalog.text) == set(ITEM_TEXT_COLUMNS) and catalog.text["genre"] == ["", ""]
    assert catalog.column("title") == ["A", "B"] and len(catalog) == 2
    assert catalog.tags == [(), ()]
    for name, dtype in (("duration", "float32"), ("release_ts", "int64"), ("episode", "int32")):
        array = getattr(catalog, name)
        assert array.tolist() == [0, 0] and array.dtype.name == dtype, name
    assert Catalog.bare(("x",)).item_ids == ["x"]  # a list, whatever sequence came in


@pytest.mark.parametrize("column", ["text", "tags", "duration", "release_ts", "episode"])
def test_a_catalog_column_of_another_length_is_a_data_error(column):
    kwargs = {"text": {"title": ["A"]}, "tags": [("t",)], "duration": np.zeros(3, np.float32),
              "release_ts": np.zeros(3, np.int64), "episode": np.zeros(1, np.int32)}
    with pytest.raises(DataError) as err:
        Catalog(["a", "b"], **{column: kwargs[column]})
    lengths = sorted({2, len(next(iter(kwargs[column].values())) if column == "text" else kwargs[column])})
    assert str(err.value) == f"catalog columns have different lengths {lengths}; expected 2"


def test_a_duplicate_item_id_is_named_with_both_places_every_time_it_is_asked():
    catalog = Catalog.bare(["007", "7", "x", "7", "007"])
    for _ in range(2):  # the partial index is not kept
        with pytest.raises(DataError) as err:
            catalog.index  # noqa: B018
        assert str(err.value) == ("catalog has duplicate item ids: '7' is item 2 and item 4 (data rows counted from "
                                  "1, in file order); every item_id must be unique")
    assert Catalog.bare(["007", "7", "07"]).index == {"007": 0, "7": 1, "07": 2}


def test_codes_of_a_text_column_follow_its_sorted_vocabulary():
    catalog = Catalog(["a", "b", "c", "d"], {"genre": ["rock", "", "jazz", "rock"]})
    codes, vocab = catalog.codes("genre")
    assert vocab == ["", "jazz", "rock"] and codes.tolist() == [2, 0, 1, 2] and codes.dtype.name == "int32"


def test_a_subset_takes_every_column_of_the_rows_asked_in_their_order():
    catalog = Catalog(["a", "b", "c"], {"title": ["A", "B", "C"]}, [("x",), (), ("y", "z")],
                      np.array([1.5, 2, 3], np.float32), np.array([10, 20, 30]), np.array([0, 1, 2], np.int32))
    part = catalog.subset([2, 0])
    assert part.item_ids == ["c", "a"] and part.text["title"] == ["C", "A"] and part.text["genre"] == ["", ""]
    assert part.tags == [("y", "z"), ("x",)]
    assert part.duration.tolist() == [3, 1.5] and part.release_ts.tolist() == [30, 10]
    assert part.episode.tolist() == [2, 0]


def log(users, times, items=None, within=None):
    n = len(users)
    return Interactions(np.asarray(users, np.int32), np.asarray(items if items is not None else range(n), np.int32),
                        np.asarray(times, np.int64), np.asarray([EVENT_CODE["play"]] * n, np.int8),
                        np.ones(n, np.float32))


def test_interactions_default_to_no_device_and_refuse_columns_of_other_lengths():
    events = log([0, 1], [5, 6])
    assert events.device.tolist() == [-1, -1] and events.device.dtype.name == "int8" and len(events) == 2
    for field in ("item", "timestamp", "event", "value", "device"):
        columns = {f: getattr(events, f) for f in ("user", "item", "timestamp", "event", "value", "device")}
        columns[field] = columns[field][:1]
        with pytest.raises(DataError, match="^interaction columns have different lengths$"):
            Interactions(**columns)


def test_sorting_by_time_is_stable_by_user_then_time_then_fraction():
    events = log([1, 0, 1, 0, 1, 0], [5, 7, 5, 7, 4, 6])
    assert events.sorted_by_time().item.tolist() == [5, 1, 3, 4, 0, 2]
    within = np.array([9, 2, 1, 1, 0, 0])  # nanoseconds within the second break ties
    assert events.sorted_by_time(within).item.tolist() == [5, 3, 1, 4, 2, 0]
    took = events.take(np.array([3, 0]))
    assert took.user.tolist() == [0, 1] and took.timestamp.tolist() == [7, 5] and took.device.tolist() == [-1, -1]


def test_every_event_but_a_skip_is_consumption():
    events = log([0] * len(EVENT_CODE), range(len(EVENT_CODE)))
    events.event = np.array(list(EVENT_CODE.values()), np.int8)
    assert events.consumed_mask().tolist() == [name != "skip" for name in EVENT_CODE]


def test_a_dataset_counts_its_users_and_items():
    dataset = Dataset(Catalog.bare(["a", "b", "c"]), log([0], [1]), ["u", "v"])
    assert (dataset.n_users, dataset.n_items, dataset.meta) == (2, 3, {})


# ------------------------------------------------------------------ store: the folder, written and read


MESSY = ('user_id,item_id,timestamp,event,value,device\n007,7,1.7,play,0.123456,tv\n7,007,1.5,skip,1,\n'
         '007,"a,""b"" c",1.2,like,2,Phone\n 007 ,7,1,rate,3,mobile\n007,07,1.7,finish,1,web\n007,7,1,play,1,\n')
ITEMS = ('item_id,title,tags,duration,release_ts,episode,genre\n7,Seven,a|b,1.25,-5,3,x\n007,"Q, ""u""",,,,,\n'
         '"a,""b"" c",ü,c,,,,\n07,,,,,,\n99,cold,,,,,\n')


@pytest.fixture
def messy(tmp_path):
    return import_dataset("csv", write(tmp_path / "log.csv", MESSY), items=write(tmp_path / "items.csv", ITEMS))


def rows(dataset):
    log, items = dataset.interactions, dataset.catalog.item_ids
    return [(dataset.user_ids[u], items[i], int(t), int(e), float(v), int(d)) for u, i, t, e, v, d in
            zip(log.user, log.item, log.timestamp, log.event, log.value, log.device)]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_messy_import_reads_back_from_its_folder_as_written(tmp_path, messy, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    folder = save_dataset(messy, tmp_path / fmt, fmt)
    assert sorted(p.name for p in folder.iterdir()) == [".edgerec-writing", "dataset.json", f"interactions.{fmt}",
                                                        f"items.{fmt}"]  # the writers' lock file, and no temporaries
    back = load_dataset(folder)
    assert back.user_ids == ["007", "7", " 007 "]
    assert back.catalog.item_ids == ["7", "007", 'a,"b" c', "07", "99"]
    ev = EVENT_CODE
    # tied times keep their order (1.2 < 1.7 within second 1), the value to 4 decimals, unknown devices -1
    assert rows(back) == [("007", "7", 1, ev["play"], 1.0, -1), ("007", 'a,"b" c', 1, ev["like"], 2.0, 0),
                          ("007", "7", 1, ev["play"], pytest.approx(0.1235), 1), ("007", "07", 1, ev["finish"], 1.0, 3),
                          ("7", "007", 1, ev["skip"], 1.0, -1), (" 007 ", "7", 1, ev["rate"], 3.0, -1)]
    catalog = back.catalog
    assert catalog.text["title"] == ["Seven", 'Q, "u"', "ü", "", "cold"]
    assert catalog.tags == [("a", "b"), (), ("c",), (), ()]
    assert catalog.duration.tolist() == [pytest.approx(1.2), 0, 0, 0, 0]  # to 0.1 s
    assert catalog.release_ts.tolist() == [-5, 0, 0, 0, 0] and catalog.episode.tolist() == [3, 0, 0, 0, 0]
    assert catalog.text["genre"] == ["x", "", "", "", ""]
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta == {"events": 6, "file_format": fmt, "format": "csv", "format_version": 1, "items": 5,
                    "source": "log.csv", "users": 3, "warnings": messy.meta["warnings"]}
    assert back.meta == dict(meta, path=str(folder))


def test_the_interactions_file_holds_the_columns_in_order_with_names_not_codes(tmp_path, messy):
    folder = save_dataset(messy, tmp_path / "data")
    lines = (folder / "interactions.csv").read_text().splitlines()
    assert lines[0] == "user_id,item_id,timestamp,event,value,device"
    assert lines[1:4] == ["007,7,1,play,1.0,", '007,"a,""b"" c",1,like,2.0,phone', "007,7,1,play,0.1235,tv"]
    assert lines[-1] == " 007 ,7,1,rate,3.0,"
    items = (folder / "items.csv").read_text().splitlines()
    assert items[0] == ("item_id,title,description,genre,mood,modality,language,creator,provider,series_id,tags,"
                        "duration,release_ts,episode")
    assert items[1] == "7,Seven,,x,,,,,,,a|b,1.2,-5,3"


def test_a_saved_folder_never_keeps_a_host_path(tmp_path, messy):
    for source in (str(tmp_path / "log.csv"), "~/logs/log.csv"):
        messy.meta = dict(messy.meta, source=source, path=str(tmp_path))
        folder = save_dataset(messy, tmp_path / "data")
        meta = json.loads((folder / "dataset.json").read_text())
        assert meta["source"] == "log.csv" and "path" not in meta
        assert not (folder / "dataset.json.tmp").exists()
    messy.meta = dict(messy.meta, source="ml-100k")
    assert json.loads((save_dataset(messy, tmp_path / "data") / "dataset.json").read_text())["source"] == "ml-100k"


def test_an_unknown_file_format_and_an_unwritable_folder_are_data_errors(tmp_path, messy):
    with pytest.raises(DataError) as err:
        save_dataset(messy, tmp_path / "data", "json")
    assert str(err.value) == "unknown file format 'json'; use csv or parquet"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError) as err:
        save_dataset(messy, tmp_path / "file" / "sub")
    assert str(err.value) == "sub: cannot create the output folder (Not a directory); choose another --out"
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "items.csv").mkdir()  # in the way of the atomic write's rename, even for root
    with pytest.raises(DataError) as err:
        save_dataset(messy, tmp_path / "ro")
    assert str(err.value) == ("ro: cannot write the data files (a folder has the file's name); choose an --out this app can "
                              "write, with room for them")


def test_the_folder_reads_the_format_dataset_json_names_else_the_only_one(tmp_path, messy):
    pytest.importorskip("pyarrow")
    folder = save_dataset(messy, tmp_path / "data", "parquet")
    (folder / "dataset.json").unlink()
    assert load_dataset(folder).user_ids == ["007", "7", " 007 "]  # the only files: parquet
    for stem in ("items", "interactions"):
        (folder / f"{stem}.parquet").unlink()
    with pytest.raises(DataError) as err:
        load_dataset(folder)
    assert str(err.value) == ("data: no items.csv or items.parquet here; create one with `edgerec data synth` or "
                              "`edgerec data import`")
    with pytest.raises(DataError) as err:
        load_dataset(tmp_path / "log.csv")
    assert str(err.value) == "log.csv: not a data folder; create one with `edgerec data synth` or `edgerec data import`"


def test_a_folder_without_dataset_json_loads_a_file_edited_without_a_final_line_break(tmp_path, messy):
    folder = save_dataset(messy, tmp_path / "data")
    (folder / "dataset.json").unlink()
    log = folder / "interactions.csv"
    log.write_bytes(log.read_bytes().rstrip(b"\r\n"))
    assert len(load_dataset(folder).interactions) == 6


def test_counts_are_checked_against_dataset_json_but_not_for_a_sample(tmp_path, messy):
    folder = save_dataset(messy, tmp_path / "data")
    meta = json.loads((folder / "dataset.json").read_text())
    (folder / "dataset.json").write_text(json.dumps(dict(meta, events=7)))
    with pytest.raises(DataError) as err:
        load_dataset(folder)
    assert str(err.value) == ("data: interactions.csv holds 6 events, dataset.json recorded 7 when the folder was "
                              "written: the file was cut short or changed since; import the data again (if you "
                              "changed it on purpose, set \"events\" in dataset.json to 6)")
    assert load_dataset(folder, sample_users=0.999).n_users == 3
    (folder / "dataset.json").write_text(json.dumps(dict(meta, items=4)))
    with pytest.raises(DataError, match=r"^data: items.csv holds 5 items, dataset.json recorded 4 when"):
        load_dataset(folder, sample_users=0.5)
    (folder / "dataset.json").write_text(json.dumps(dict(meta, items="5", events=6.0)))  # not counts: not checked
    assert len(load_dataset(folder).interactions) == 6


@pytest.mark.parametrize("current, stale", [("parquet", "csv"), ("csv", "parquet")])
def test_the_files_dataset_json_names_gone_the_other_formats_stale_files_are_not_read(tmp_path, current, stale):
    """An earlier import's files of the other format were read as the data, silently (their counts may match)."""
    pytest.importorskip("pyarrow")
    old = import_dataset("csv", write(tmp_path / "old.csv", LOG + "old,i1,1\nold,i2,2\n"))
    new = import_dataset("csv", write(tmp_path / "new.csv", LOG + "new,j1,1\nnew,j2,2\n"))
    folder = save_dataset(old, tmp_path / "data", stale)
    save_dataset(new, folder, current)
    assert load_dataset(folder).user_ids == ["new"]
    (folder / f"items.{current}").unlink()
    with pytest.raises(DataError) as err:
        load_dataset(folder)
    assert str(err.value) == (f"data: dataset.json names {current} files, but there is no items.{current} here, only "
                              f"items.{stale} (from an earlier import?); import the data again, or delete "
                              f"dataset.json to read items.{stale}")
    (folder / f"items.{current}").write_bytes(b"")  # the log missing instead
    (folder / f"interactions.{current}").unlink()
    with pytest.raises(DataError, match=f"no interactions.{current} here, only interactions.{stale}"):
        load_dataset(folder)
    (folder / "dataset.json").unlink()
    (folder / f"items.{current}").unlink()
    assert load_dataset(folder).user_ids == ["old"]
