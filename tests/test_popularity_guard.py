"""Guards of export/popularity.py (mutation note 40): the prior file read back exactly, what the bundle's
popularity column gets from it (clipped, unnamed items at zero, ties, huge counts), and every refusal of a
file that is not one, as a ConfigError that names the file but no folder."""

import json

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.export.popularity import KIND, PopularityPrior

F32_MAX = float(np.finfo(np.float32).max)


def _write(path, data) -> str:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def _file(**fields) -> dict:
    return {"kind": KIND, "item_ids": ["a", "b", "c"], "counts": [3.0, -2.5, 0.0], **fields}


def test_a_prior_reads_back_what_was_written(tmp_path):
    prior = PopularityPrior({"a": 3.5, "b": -1.0, "7": 1e30}, "dp-reports (simulated devices)", 5_000, 2.0)
    prior.write(tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text()) == {
        "kind": "edgerec-popularity", "source": "dp-reports (simulated devices)", "reports": 5_000, "epsilon": 2.0,
        "item_ids": ["a", "b", "7"], "counts": [3.5, -1.0, 1e30]}
    assert PopularityPrior.read(tmp_path / "p.json") == prior
    assert prior.describe() == {"source": "dp-reports (simulated devices)", "reports": 5_000, "epsilon": 2.0,
                                "items": 3}


def test_a_file_without_its_optional_fields_reads_with_their_defaults(tmp_path):
    prior = PopularityPrior.read(_write(tmp_path / "p.json", {"kind": KIND, "item_ids": [7, "x"], "counts": [2, 1]}))
    assert prior == PopularityPrior({"7": 2.0, "x": 1.0}, "dp-reports", None, None)  # JSON numbers as ids: strings
    assert all(type(v) is float for v in prior.counts.values())
    assert prior.describe() == {"source": "dp-reports", "reports": None, "epsilon": None, "items": 2}


def test_the_catalog_column_clips_at_zero_and_gives_unnamed_items_zero():
    prior = PopularityPrior({"a": 3.0, "b": -2.5, "c": 0.0, "d": 3.0, "gone": 9.0}, "dp")
    column = prior.for_catalog(["d", "new", "a", "b", "c"])  # the catalog's order, not the file's
    assert column.dtype == np.float32
    np.testing.assert_array_equal(column, np.array([3.0, 0.0, 3.0, 0.0, 0.0], np.float32))  # ties stay equal


def test_one_named_item_is_enough_and_none_is_refused():
    assert PopularityPrior({"a": 2.0}, "dp").for_catalog(["x", "a"]).tolist() == [0.0, 2.0]
    with pytest.raises(ConfigError) as caught:
        PopularityPrior({"a": 2.0}, "dp").for_catalog(["x", "y"])
    assert str(caught.value) == ("the popularity file names none of this catalog's items; it was made for another "
                                 "catalog")


def test_huge_counts_the_column_can_hold_are_kept_and_larger_ones_refused(tmp_path):
    prior = PopularityPrior.read(_write(tmp_path / "p.json", _file(counts=[1e30, F32_MAX, 2**40])))
    column = prior.for_catalog(["a", "b", "c"])
    assert column.tolist() == [np.float32(1e30), F32_MAX, 2.0**40] and np.all(np.isfinite(column))
    for count in ("1e39", "-1e39", "1" + "0" * 400):  # finite in float64 (or a Python int): inf in the column
        text = json.dumps(_file()).replace("-2.5", count)
        with pytest.raises(ConfigError) as caught:
            PopularityPrior.read(_write(tmp_path / "p.json", text))
        assert str(caught.value) == ("p.json: counts must be finite numbers no larger than 3.4e+38 (the bundle's "
                                     "popularity column is float32)")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "true", '"3"', "null", "[1]", "{}"])
def test_a_count_that_is_no_finite_number_is_refused(tmp_path, text):
    with pytest.raises(ConfigError, match=r"^p\.json: counts must be finite numbers no larger than"):
        PopularityPrior.read(_write(tmp_path / "p.json", json.dumps(_file()).replace("-2.5", text)))


@pytest.mark.parametrize("fields", [
    {"item_ids": [], "counts": []},
    {"item_ids": ["a", "b"], "counts": [1.0]},
    {"item_ids": ["a"], "counts": [1.0, 2.0]},
    {"item_ids": None},
    {"counts": None},
    {"item_ids": "ab", "counts": [1.0, 2.0]},  # a string has a length too
    {"item_ids": ["a", "b"], "counts": "12"},
    {"item_ids": {"a": 1}, "counts": [1.0]},
])
def test_ids_and_counts_must_be_two_lists_of_one_length(tmp_path, fields):
    with pytest.raises(ConfigError) as caught:
        PopularityPrior.read(_write(tmp_path / "p.json", _file(**fields)))
    assert str(caught.value) == "p.json: item_ids and counts must be non-empty lists of one length"


def test_a_missing_list_is_refused(tmp_path):
    for missing in ("item_ids", "counts"):
        data = _file()
        del data[missing]
        with pytest.raises(ConfigError, match="^p.json: item_ids and counts must be non-empty lists"):
            PopularityPrior.read(_write(tmp_path / "p.json", data))


def test_an_item_named_twice_is_refused(tmp_path):
    with pytest.raises(ConfigError) as caught:  # "1" and 1 are one id once read
        PopularityPrior.read(_write(tmp_path / "p.json", _file(item_ids=["a", "1", 1, "a"], counts=[1, 2, 3, 4])))
    assert str(caught.value) == "p.json: 2 item id(s) appear more than once; each item must have one count"


@pytest.mark.parametrize("data", [[], "[1, 2]", {"kind": "edgerec-popularity-v0"}, {"item_ids": ["a"], "counts": [1]}])
def test_a_file_of_another_kind_is_refused(tmp_path, data):
    with pytest.raises(ConfigError) as caught:
        PopularityPrior.read(_write(tmp_path / "p.json", data))
    assert str(caught.value) == "p.json is not a popularity file (its 'kind' must be 'edgerec-popularity')"


@pytest.mark.parametrize("make,reason", [
    (lambda p: None, "No such file or directory"),
    (lambda p: p.mkdir(), "Is a directory"),
    (lambda p: p.write_bytes(b"\xff\xfe{}"), "'utf-8' codec can't decode byte 0xff in position 0"),
    (lambda p: p.write_text("{cut"), "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (lambda p: p.write_text("[" * 100_000), "maximum recursion depth exceeded"),
])
def test_a_file_that_cannot_be_read_is_named_without_its_folder(tmp_path, make, reason):
    path = tmp_path / "private-folder" / "p.json"
    path.parent.mkdir()
    make(path)
    with pytest.raises(ConfigError) as caught:
        PopularityPrior.read(path)
    text = str(caught.value)
    assert text.startswith(f"popularity file p.json cannot be read ({reason}")
    assert text.endswith("); write it with `edgerec study dp-popularity`")
    assert "private-folder" not in text and str(tmp_path) not in text


@pytest.mark.usefixtures("torch_one_thread")
def test_a_bundle_exported_with_a_prior_holds_its_column(tmp_path):
    """The real path: a file read, a bundle exported with it, the column and the manifest read back."""
    from edgerec.data import SynthConfig, write_synth
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.export.bundle_builder import ExportConfig, export_bundle
    from edgerec.models.config import ModelConfig
    from edgerec.models.train import TrainConfig, train_model
    from edgerec.runtime import Recommender

    write_synth(SynthConfig(users=60, items=200, events=2_000, seed=11), tmp_path / "data")
    dataset = load_dataset(tmp_path / "data")
    train_model(dataset, leave_last_out(dataset), ModelConfig(dim=8, layers=1, heads=1, max_len=8, dropout=0.0),
                TrainConfig(epochs=1, eval_users=0), out=tmp_path / "ckpt")
    ids = dataset.catalog.item_ids
    prior = PopularityPrior.read(_write(tmp_path / "p.json", {
        "kind": KIND, "source": "dp-test", "reports": 10, "epsilon": 1.0,
        "item_ids": [ids[0], ids[1], ids[2], ids[3], "not-in-the-catalog"], "counts": [5, -3.0, 1e30, 5, 7]}))
    manifest = export_bundle(tmp_path / "ckpt", tmp_path / "data", tmp_path / "bundle",
                             ExportConfig(formats=("onnx",), parity_users=20, reference_users=8, evaluate=False,
                                          hubness=False, priors=False, min_top10_agreement=0.0), popularity=prior)
    assert manifest.metrics["popularity_prior"] == {"source": "dp-test", "reports": 10, "epsilon": 1.0, "items": 5}
    with Recommender.open(tmp_path / "bundle", history=tmp_path / "h.db") as rec:
        rows = np.arange(rec.catalog.base_count)
        column = rec.catalog.numeric_column("popularity", rows)
        assert [rec.catalog.item_id(int(r)) for r in rows] == list(ids)
    expected = np.zeros(len(ids))
    expected[[0, 2, 3]] = [5.0, float(np.float32(1e30)), 5.0]
    np.testing.assert_array_equal(column, expected)


def test_a_read_error_without_a_system_reason_is_named_by_its_kind(tmp_path, monkeypatch):
    from pathlib import Path

    def refuse(self, *args, **kwargs):
        raise PermissionError(f"{self} is locked")  # no errno, so no strerror; its text holds the path

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(ConfigError) as caught:
        PopularityPrior.read(tmp_path / "p.json")
    assert str(caught.value) == ("popularity file p.json cannot be read (PermissionError); write it with "
                                 "`edgerec study dp-popularity`")
