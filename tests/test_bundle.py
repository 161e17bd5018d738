"""Bundles: what export writes, what the runtime accepts, and every way a bundle can be bad."""

import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from bundle_edit import flatten_columns
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.device_tests.scale import scaled_bundle
from edgerec.errors import BundleError
from edgerec.runtime import Bundle, Recommender
from edgerec.runtime.backends import open_model
from edgerec.runtime.bundle import sha256_file
from edgerec.runtime.pack import pack


@pytest.fixture
def copy(tiny_bundle, tmp_path):
    target = tmp_path / "b"
    shutil.copytree(tiny_bundle, target)
    return target


def rewrite_manifest(root, change):
    path = root / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_manifest_records_what_the_device_needs(tiny_bundle):
    m = Bundle.open(tiny_bundle).manifest
    assert m.format_version == 6 and len(m.embedding_space) == 24
    assert {(e.role, e.format) for e in m.models} == {("user_encoder", "onnx"), ("user_encoder", "tflite")}
    onnx, tflite = m.model("user_encoder", "onnx"), m.model("user_encoder", "tflite")
    assert onnx.inputs[0].shape == ["batch", "history"] and onnx.inputs[0].dtype == "int64"
    assert tflite.inputs[0].shape == [1, 10] and tflite.history_length == 10
    for entry in (onnx, tflite):
        assert entry.quantization == "int8-weights"
        assert entry.parity["export"]["max_abs_diff"] < 1e-4
        assert entry.parity["int8-weights"]["top10_agreement"] >= 0.8
    assert m.metrics["onnx_vs_tflite"]["top10_identical_share"] >= 0.99
    assert m.items.embeddings.dtype == "int8" and m.items.count == 1000
    assert m.items.embeddings.scale_axis == "dim"  # one scale per dimension: the scan is pure int8
    assert m.defaults["history_length"] == 10
    assert set(m.reference) >= {"histories", "user_vectors", "top_k"}
    for name, meta in m.files.items():
        assert sha256_file(tiny_bundle / name) == meta["sha256"]


def test_bundles_hold_no_pickle_and_no_code(tiny_bundle):
    for path in tiny_bundle.rglob("*"):
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)  # raises on object arrays
        assert path.suffix not in (".pkl", ".pickle", ".pt", ".py", ".pyc", ".so")
        if path.is_file():
            assert not zipfile.is_zipfile(path) or path.suffix in (".npy",)  # torch saves are zip pickles


def test_reference_outputs_are_reproduced_by_both_engines(tiny_bundle):
    bundle = Bundle.open(tiny_bundle)
    ref = bundle.manifest.reference
    histories, expected = bundle.array(ref["histories"]), bundle.array(ref["user_vectors"])
    for entry in bundle.manifest.models:
        backend = open_model(bundle.path(entry.file), entry)
        if entry.format == "onnx":
            got = backend.run({"ids": np.asarray(histories)})[0]
        else:
            got = np.concatenate([backend.run({"ids": h[None].astype(np.int32)})[0] for h in histories])
        cos = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
        assert cos.min() > ref["tolerance"]["cosine_min"]


def test_missing_file(copy):
    (copy / "items" / "scales.npy").unlink()
    with pytest.raises(BundleError, match="items/scales.npy is missing"):
        Bundle.open(copy)


def test_checksum_mismatch(copy):
    data = bytearray((copy / "user_encoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "user_encoder.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="fails its sha256 check"):
        Bundle.open(copy)


def test_truncated_model(copy):
    path = copy / "user_encoder.tflite"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(BundleError, match="truncated or replaced"):
        Bundle.open(copy)


def test_truncated_model_with_fixed_manifest_fails_to_load(copy):
    """Even a consistent-looking but damaged model file gives a clear error, not a crash."""
    from edgerec.runtime.bundle import Manifest, embedding_space_id

    path = copy / "user_encoder.onnx"
    path.write_bytes(path.read_bytes()[:1000])
    rewrite_manifest(copy, lambda d: d["files"]["user_encoder.onnx"].update(bytes=1000, sha256=sha256_file(path)))
    with pytest.raises(BundleError, match="embedding-space mismatch"):  # the encoder is part of the space id
        Recommender.open(copy, backend="onnx")

    def new_space(d):
        m = Manifest.from_dict(d)
        d["embedding_space"] = embedding_space_id(m.files, m.models, m.items)

    rewrite_manifest(copy, new_space)  # now every check of the manifest passes: the engine must refuse
    rec = Recommender.open(copy, backend="onnx")
    assert len(rec.recommend("u", k=3)) == 3  # a newcomer's list needs no model
    rec.record("u", rec.catalog.item_id(0), "finish")
    listed = rec.recommend("u", k=3)  # the encoder is refused: the popularity list, counted, the reason kept
    assert len(listed) == 3 and all(r.reason.kind == "fallback" for r in listed)
    assert "user_encoder.onnx cannot be loaded by onnxruntime" in rec.pipeline.failures["encode"]
    with pytest.raises(BundleError, match="user_encoder.onnx cannot be loaded by onnxruntime"):
        rec.encoder  # noqa: B018


def test_unknown_format_version(copy):
    rewrite_manifest(copy, lambda d: d.update(format_version=99))
    with pytest.raises(BundleError, match="format version 99 is not supported"):
        Bundle.open(copy)


def _replace_array(root, name, array):
    """Swap one .npy of a bundle and make the manifest consistent again (checksums, space id)."""
    from edgerec.runtime.bundle import Manifest, embedding_space_id

    np.save(root / name, array)
    data = json.loads((root / "manifest.json").read_text())
    data["files"][name].update(bytes=(root / name).stat().st_size, sha256=sha256_file(root / name))
    m = Manifest.from_dict(data)
    data["embedding_space"] = embedding_space_id(m.files, m.models, m.items)
    (root / "manifest.json").write_text(json.dumps(data))


def test_item_scales_of_the_wrong_shape_are_refused_at_open(copy):
    dim = Bundle.open(copy).manifest.dim
    _replace_array(copy, "items/scales.npy", np.ones(dim + 1, np.float32))
    with pytest.raises(BundleError, match="scales have shape"):
        Recommender.open(copy)


def test_format_1_bundles_with_row_scales_still_read(copy, tmp_path):
    """Format 1 had one scale per row and no scale_axis: such a table must read back the same."""
    from edgerec.export.convert import convert_bundle
    from edgerec.runtime.catalog import ItemCatalog

    copy = convert_bundle(copy, tmp_path / "wide", format_version=2)  # format 1 columns were wide too
    before = ItemCatalog(Bundle.open(copy))
    vectors = before.vectors(np.arange(len(before)))
    scales = np.abs(vectors).max(1) / 127
    _replace_array(copy, "items/embeddings.npy", np.round(vectors / scales[:, None]).astype(np.int8))
    _replace_array(copy, "items/scales.npy", scales.astype(np.float32))
    rewrite_manifest(copy, lambda d: (d.update(format_version=1), d["items"]["embeddings"].pop("scale_axis")))
    after = ItemCatalog(Bundle.open(copy))
    assert after.stored.scale_axis == "row"
    np.testing.assert_allclose(after.vectors(np.arange(len(after))), vectors, atol=np.abs(vectors).max() / 127)
    with Recommender.open(copy) as rec:
        assert len(rec.recommend("new-user", k=5)) == 5


def test_embedding_space_mismatch(copy, tiny_bundle, tmp_path):
    rewrite_manifest(copy, lambda d: d.update(embedding_space="0" * 24))
    with pytest.raises(BundleError, match="embedding-space mismatch"):
        Bundle.open(copy)
    # a table from another export, with its checksum dutifully updated, is caught as well
    other = tmp_path / "other"
    shutil.copytree(tiny_bundle, other)
    table = np.load(other / "items" / "embeddings.npy")
    np.save(other / "items" / "embeddings.npy", np.roll(table, 1, axis=0))
    rewrite_manifest(other, lambda d: d["files"]["items/embeddings.npy"].update(
        sha256=sha256_file(other / "items" / "embeddings.npy")))
    with pytest.raises(BundleError, match="embedding-space mismatch"):
        Bundle.open(other)


def test_manifest_not_json_and_not_a_bundle(copy, tmp_path):
    (copy / "manifest.json").write_text("{ this is not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        Bundle.open(copy)
    (copy / "manifest.json").write_text(json.dumps({"hello": "world"}))
    with pytest.raises(BundleError, match="not an edgerec bundle manifest"):
        Bundle.open(copy)
    with pytest.raises(BundleError, match="no manifest.json"):
        Bundle.open(tmp_path)


def test_paths_outside_the_bundle_and_links(copy, tmp_path):
    (tmp_path / "secret.txt").write_text("x")
    rewrite_manifest(copy, lambda d: d["files"].update({"../secret.txt": {"sha256": "0", "bytes": 1}}))
    with pytest.raises(BundleError, match="leaves the bundle"):
        Bundle.open(copy)


def test_symlinked_file_is_refused(copy, tmp_path):
    target = copy / "README.md"
    outside = tmp_path / "outside.md"
    outside.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(BundleError, match="symbolic link"):
        Bundle.open(copy)


def test_a_symlinked_manifest_is_refused(copy, tmp_path):
    """Rule 2 was checked for the files the manifest lists, not for the manifest itself."""
    outside = tmp_path / "manifest-elsewhere.json"
    outside.write_bytes((copy / "manifest.json").read_bytes())
    (copy / "manifest.json").unlink()
    (copy / "manifest.json").symlink_to(outside)
    with pytest.raises(BundleError, match="^manifest.json is a symbolic link"):
        Bundle.open(copy)


def test_pack_round_trip(tiny_bundle, tmp_path):
    packed = pack(tiny_bundle, tmp_path / "one.edgerec")
    rec = Recommender.open(packed)
    assert len(rec.recommend("u", k=5)) == 5
    assert Bundle.open(packed).manifest.embedding_space == Bundle.open(tiny_bundle).manifest.embedding_space


def _packed(tmp_path, members):
    path = tmp_path / "evil.edgerec"
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def test_packed_file_with_path_traversal_or_links_is_refused(tmp_path):
    manifest = tarfile.TarInfo("manifest.json")
    manifest.size = 2
    evil = tarfile.TarInfo("../../escape.txt")
    evil.size = 3
    with pytest.raises(BundleError, match="leaves the bundle"):
        Bundle.open(_packed(tmp_path, [(manifest, b"{}"), (evil, b"bad")]))
    assert not (tmp_path.parent / "escape.txt").exists()
    link = tarfile.TarInfo("items")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc"
    with pytest.raises(BundleError, match="link or special file"):
        Bundle.open(_packed(tmp_path, [(manifest, b"{}"), (link, None)]))
    (tmp_path / "junk.edgerec").write_bytes(b"\x00" * 10)
    with pytest.raises(BundleError, match="junk.edgerec cannot be unpacked .*not a packed bundle"):
        Bundle.open(tmp_path / "junk.edgerec")


def test_cli_inspect_shows_constant_columns_as_their_value(tmp_path):
    """Format 6: a column stored as one value has no file; inspect names the value and 0 bytes."""
    golden = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"
    shutil.copytree(golden, tmp_path / "flat")
    flatten_columns(tmp_path / "flat", {"creator": -1, "duration": 1800.0})
    source = Bundle.open(tmp_path / "flat")
    bundle = scaled_bundle(source, source.manifest.items.count, tmp_path / "v6")
    result = CliRunner().invoke(cli, ["inspect", str(bundle)])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in result.output.splitlines() if line.count("│") == 6}
    assert rows["creator"] == ["categorical", "int32", "0", "constant -1 (every item)"]
    assert rows["duration"] == ["numeric", "float32", "0", "constant 1800.0 (every item)"]
    assert rows["genre"][:2] == ["categorical", "int8"] and int(rows["genre"][2].replace(",", "")) > 0


def test_cli_inspect_and_bad_bundle_exit_code(tiny_bundle, copy):
    runner = CliRunner()
    result = runner.invoke(cli, ["inspect", str(tiny_bundle)])
    assert result.exit_code == 0 and "user_encoder" in result.output and "int8-weights" in result.output
    (copy / "manifest.json").write_text("nope")
    result = runner.invoke(cli, ["inspect", str(copy)])
    assert result.exit_code != 0 and "not valid JSON" in result.output
