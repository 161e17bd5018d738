"""Guards of the heavy parts a request uses (runtime/models.py): each made once, on first use, from the
bundle's verified bytes with the engine, threads and kernel asked for; the content encoder's format;
the ANN index's cache file; and the old space's index files dropped after a federated update."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime import content as content_module
from edgerec.runtime.backends import available_backends
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.models import Models, drop_superseded_indexes, model_bytes

ort = pytest.importorskip("onnxruntime")
RANKED = Path(__file__).resolve().parents[2] / "spec" / "golden" / "ranked"


def models(path, backend="onnx", threads=1, kernel="numpy", ann=None, cache_dir=None) -> Models:
    bundle = Bundle.open(path)
    return Models(bundle, ItemCatalog(bundle), backend, threads, kernel, ann, cache_dir)


def threads_of(backend) -> int:
    return backend.session.get_session_options().intra_op_num_threads


# ------------------------------------------------------------------ model bytes

def test_model_bytes_are_the_files_bytes_and_a_file_changed_after_open_is_refused_by_name(bundle_copy):
    bundle = Bundle.open(bundle_copy)
    path = bundle_copy / "user_encoder.onnx"
    data = path.read_bytes()
    assert model_bytes(bundle, "user_encoder.onnx") == data
    assert hashlib.sha256(data).hexdigest() == bundle.manifest.files["user_encoder.onnx"]["sha256"]
    changed = bytearray(data)
    changed[-10] ^= 0xFF  # same size: only the hash tells
    path.write_bytes(bytes(changed))
    with pytest.raises(BundleError) as caught:
        model_bytes(bundle, "user_encoder.onnx")
    assert str(caught.value) == ("bundle file user_encoder.onnx fails its sha256 check when loaded; it was modified "
                                 "after the bundle was opened: copy the bundle again")
    path.write_bytes(data)
    bundle.manifest.files["user_encoder.onnx"].pop("sha256")  # no hash to compare with: refused too
    with pytest.raises(BundleError, match="sha256 check when loaded"):
        model_bytes(bundle, "user_encoder.onnx")


def test_an_encoder_swapped_after_open_is_refused_when_the_encoder_is_first_made(bundle_copy):
    parts = models(bundle_copy)
    (bundle_copy / "user_encoder.onnx").write_bytes((bundle_copy / "user_encoder.onnx").read_bytes()[:-1] + b"\0")
    with pytest.raises(BundleError, match="user_encoder.onnx fails its sha256 check when loaded"):
        _ = parts.encoder


# ------------------------------------------------------------------ superseded ANN indexes

SPACE = "9da4727dc5a3be405bc65bf2"
OLD = "0123456789abcdef01234567"


def index_folder(tmp_path) -> set[str]:
    names = {f"ann-{OLD}-56.usearch", f"ann-{OLD}-1000.usearch", f"ann-{SPACE}-56.usearch",
             f"ann-{OLD}0-56.usearch", f"ann-{OLD}.usearch", f"ann-{OLD}-56.usearch.tmp", f"x-ann-{OLD}-5.usearch", f"ann-{OLD}-56.usearch.sha256",
             "ann-other-56.usearch"}
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    return names


def manifest(metrics) -> SimpleNamespace:
    return SimpleNamespace(metrics=metrics, embedding_space=SPACE)


def test_the_parent_spaces_index_files_go_and_every_other_file_stays(tmp_path):
    names = index_folder(tmp_path)
    drop_superseded_indexes(tmp_path, manifest({"federated": {"parent_space": OLD, "rounds": 3}}))
    assert {p.name for p in tmp_path.iterdir()} == names - {f"ann-{OLD}-56.usearch", f"ann-{OLD}-1000.usearch",
                                                            f"ann-{OLD}-56.usearch.sha256"}


@pytest.mark.parametrize("metrics", [
    {}, {"federated": None}, {"federated": [OLD]}, {"federated": f"parent_space={OLD}"}, {"federated": {}},
    {"federated": {"parent_space": None}}, {"federated": {"parent_space": 7}}, {"federated": {"parent_space": ""}},
    {"federated": {"parent_space": "*"}}, {"federated": {"parent_space": f"{OLD[:4]}*"}},
    {"federated": {"parent_space": f"{OLD}-56"}}, {"federated": {"parent_space": SPACE}},
    {"parent_space": OLD}])
def test_no_file_goes_without_a_parent_space_that_is_one_plain_name_other_than_the_bundles_own(tmp_path, metrics):
    names = index_folder(tmp_path)
    drop_superseded_indexes(tmp_path, manifest(metrics))
    assert {p.name for p in tmp_path.iterdir()} == names


def test_an_index_file_another_process_removed_first_is_no_error(tmp_path, monkeypatch):
    gone = tmp_path / f"ann-{OLD}-56.usearch"  # listed, then removed by another process before the unlink
    monkeypatch.setattr(type(tmp_path), "glob", lambda folder, pattern: iter([gone]))
    drop_superseded_indexes(tmp_path, manifest({"federated": {"parent_space": OLD}}))
    assert not gone.exists()


# ------------------------------------------------------------------ each part made once, as asked

def test_the_encoder_is_made_once_with_the_engine_and_threads_asked_for(golden_bundle):
    parts = models(golden_bundle, threads=3)
    encoder = parts.encoder
    assert parts.encoder is encoder and encoder.entry.format == "onnx" and encoder.entry.file == "user_encoder.onnx"
    assert threads_of(encoder.backend) == 3
    assert encoder.max_len == 5  # the manifest's defaults.history_length
    rows = np.array([[0, 0, 3, 4, 5]])
    assert encoder.encode_rows(rows).shape == (1, 8)


def test_the_encoders_history_length_defaults_to_50_when_the_manifest_has_none(golden_bundle):
    bundle = Bundle.open(golden_bundle)
    bundle.manifest.defaults.pop("history_length")
    assert Models(bundle, ItemCatalog(bundle), "onnx", 1, "numpy", None, None).encoder.max_len == 50
    bundle = Bundle.open(golden_bundle)
    bundle.manifest.defaults["history_length"] = "7"  # read as a whole number
    assert Models(bundle, ItemCatalog(bundle), "onnx", 1, "numpy", None, None).encoder.max_len == 7


def test_the_tflite_encoder_is_the_tflite_file(golden_bundle):
    if "tflite" not in available_backends():
        pytest.skip("the tflite engine is not installed here")
    encoder = models(golden_bundle, backend="tflite").encoder
    assert encoder.entry.format == "tflite" and encoder.entry.file == "user_encoder.tflite"


def test_the_ranker_is_the_engines_ranker_once_or_false_when_the_bundle_has_none(golden_bundle):
    parts = models(RANKED, threads=2)
    ranker = parts.ranker
    entry, backend = ranker
    assert parts.ranker is ranker and (entry.role, entry.format, entry.file) == ("ranker", "onnx", "ranker.onnx")
    assert threads_of(backend) == 2 and backend.input_names
    assert models(golden_bundle).ranker is False
    assert models(RANKED, backend="tflite").ranker is False  # no TFLite ranker in that bundle


def test_the_scan_is_made_once_with_the_kernel_asked_for_and_its_label_is_none_until_then(golden_bundle):
    parts = models(golden_bundle, kernel="numpy")
    assert parts.scan_label is None
    scan = parts.scan
    assert parts.scan is scan and scan.kernel == "numpy" and parts.scan_label == "numpy"
    assert scan.stored is parts.catalog.stored
    user = np.linspace(-1, 1, 8).astype(np.float32)
    assert scan.scores(user).shape == (56,)


class FakeContent:
    """Stands in for ContentEncoder (the golden bundles carry none): records what it was made with."""

    made: list = []

    def __init__(self, bundle, entry, threads):
        FakeContent.made.append((bundle, entry, threads))


def with_content(path, formats) -> Bundle:
    bundle = Bundle.open(path)
    base = bundle.manifest.models[0]
    for fmt in formats:
        bundle.manifest.models.append(replace(base, role="content_encoder", format=fmt, file=f"content.{fmt}"))
    return bundle


@pytest.mark.parametrize("backend, formats, chosen", [
    ("onnx", ["tflite", "onnx"], "onnx"), ("tflite", ["onnx", "tflite"], "tflite"),
    ("onnx", ["tflite"], "tflite"), ("tflite", ["onnx"], "onnx")])
def test_the_content_encoder_is_the_engines_format_else_the_first_listed_made_once(golden_bundle, monkeypatch,
                                                                                  backend, formats, chosen):
    monkeypatch.setattr(content_module, "ContentEncoder", FakeContent)
    FakeContent.made = []
    bundle = with_content(golden_bundle, formats)
    parts = Models(bundle, ItemCatalog(bundle), backend, 3, "numpy", None, None)
    encoder = parts.content
    assert isinstance(encoder, FakeContent) and parts.content is encoder
    assert len(FakeContent.made) == 1
    made_bundle, entry, threads = FakeContent.made[0]
    assert made_bundle is bundle and threads == 3
    assert (entry.role, entry.format, entry.file) == ("content_encoder", chosen, f"content.{chosen}")


def test_no_content_encoder_is_none_and_is_not_looked_for_again(golden_bundle, monkeypatch):
    monkeypatch.setattr(content_module, "ContentEncoder", FakeContent)
    FakeContent.made = []
    parts = models(golden_bundle)
    looked = []
    formats = parts.manifest.formats
    monkeypatch.setattr(parts.manifest, "formats", lambda role: looked.append(role) or formats(role))
    assert parts.content is None and parts.content is None
    assert looked == ["content_encoder"] and FakeContent.made == []


# ------------------------------------------------------------------ the ANN index

def test_the_ann_index_is_built_once_over_the_whole_table_without_a_cache(golden_bundle, usearch, tmp_path):
    parts = models(golden_bundle, ann="usearch")
    index = parts.ann_index()
    assert parts.ann_index() is index and parts.ann is index
    assert index.count == 56 and len(index.index) == 56 and index.index.ndim == 8
    stored, row = index.index.get(3).astype(np.float64), parts.catalog.vectors(np.array([3]))[0]  # int8 steps
    assert stored @ row / np.linalg.norm(stored) / np.linalg.norm(row) > 0.999
    assert list(tmp_path.iterdir()) == []


def test_the_ann_index_is_cached_by_space_and_count_and_the_parent_spaces_files_go(golden_bundle, usearch,
                                                                                   tmp_path):
    bundle = Bundle.open(golden_bundle)
    bundle.manifest.metrics["federated"] = {"parent_space": OLD}
    stale, other = tmp_path / f"ann-{OLD}-56.usearch", tmp_path / "ann-other-56.usearch"
    stale.write_bytes(b"x")
    other.write_bytes(b"x")
    parts = Models(bundle, ItemCatalog(bundle), "onnx", 1, "numpy", "usearch", tmp_path)
    index = parts.ann_index()
    assert parts.ann_index() is index
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"ann-{SPACE}-56.usearch", f"ann-{SPACE}-56.usearch.sha256",
                                                          "ann-other-56.usearch"]
    assert index.unsaved is None and len(index.index) == 56


def test_an_index_already_set_is_used_as_it_is(golden_bundle, tmp_path):
    parts = models(golden_bundle, ann="usearch", cache_dir=tmp_path)
    broken = object()
    parts.ann = broken
    assert parts.ann_index() is broken and list(tmp_path.iterdir()) == []
