"""Guards of data/store.py and data/schema.py (mutation note 37): a data folder written and read back exactly
(ids as text, tied times in their order, every column), and a damaged folder refused with a DataError that
names the file, never the host path."""

from __future__ import annotations

import json
import os

import pytest

from edgerec.data import import_dataset, load_dataset, save_dataset
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
