"""Export boundaries an audit found open: repeated formats, a path given as the bundle's name, and a
reference tolerance too loose to catch an encoder that ignores the order of the history."""

import json

import numpy as np

from edgerec.export.bundle_builder import ExportConfig, export_bundle, reference_tolerance
from edgerec.runtime.reference import check_references


def test_repeated_formats_a_path_name_and_a_measured_tolerance(tiny_bundle, tmp_path):
    world = tiny_bundle.parent
    cfg = ExportConfig(formats=("onnx", "onnx"), parity_users=50, evaluate=False, min_top10_agreement=0.8,
                       name="/home/alice/HOSTMARK", hubness=False)
    export_bundle(world / "ckpt", world / "data", tmp_path / "b", cfg)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert [m["format"] for m in manifest["models"] if m["role"] == "user_encoder"] == ["onnx"]  # was twice
    assert manifest["name"] == "HOSTMARK" and "alice" not in (tmp_path / "b" / "README.md").read_text()
    tolerance = manifest["reference"]["tolerance"]
    assert tolerance["top_k_agreement"] >= 0.9 and tolerance["cosine_min"] >= 0.98  # was a fixed 0.8 / 0.98
    assert check_references(tmp_path / "b")["passed"] is True  # the export's own files pass it


class Shifted:
    """An encoder whose vectors are the reference's plus noise: what another file's figures look like."""

    def __init__(self, noise):
        self.noise = noise

    def encode_rows(self, rows):
        return self.vectors + self.noise


def test_the_tolerance_is_the_files_own_figures_less_a_margin_within_bounds():
    rng = np.random.default_rng(0)
    table, vectors = rng.normal(size=(200, 8)), rng.normal(size=(32, 8))
    rows = np.zeros((32, 5), np.int64)
    seen = [np.zeros(0, np.int64)] * 32
    top = np.argsort(-(vectors @ table.T), axis=1)[:, :10]
    exact = Shifted(0.0)
    exact.vectors = vectors
    assert reference_tolerance({"onnx": exact}, rows, vectors, table, top, seen) == {
        "cosine_min": 0.995, "top_k_agreement": 0.95}
    noisy = Shifted(rng.normal(scale=3.0, size=vectors.shape))
    noisy.vectors = vectors
    assert reference_tolerance({"onnx": exact, "tflite": noisy}, rows, vectors, table, top, seen) == {
        "cosine_min": 0.98, "top_k_agreement": 0.8}  # never looser than the old fixed bounds


def test_a_damaged_scorer_is_refused_before_any_work_and_leaves_no_staging_folder(tiny_bundle, tmp_path):
    """It was read last, after about 25 s of export, and the staging folder stayed behind."""
    import pytest

    from edgerec.errors import ModelError

    world = tiny_bundle.parent
    (tmp_path / "scorer").mkdir()
    (tmp_path / "scorer" / "scorer.json").write_text('{"version": 2, "features": ["a"]}')
    with pytest.raises(ModelError, match="has no 'weights'"):
        export_bundle(world / "ckpt", world / "data", tmp_path / "out" / "b", ExportConfig(evaluate=False),
                      scorer=tmp_path / "scorer")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_failure_inside_the_export_removes_its_staging_folder(tiny_bundle, tmp_path, monkeypatch):
    import pytest

    from edgerec.export import bundle_builder

    def broken(*args, **kwargs):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(bundle_builder, "_write_items", broken)
    world = tiny_bundle.parent
    with pytest.raises(RuntimeError, match="disk gone"):
        export_bundle(world / "ckpt", world / "data", tmp_path / "out" / "b",
                      ExportConfig(formats=("onnx",), parity_users=20, evaluate=False, min_top10_agreement=0.5,
                                   hubness=False))
    assert list((tmp_path / "out").iterdir()) == []  # was: .b.<pid>.<id>.writing
