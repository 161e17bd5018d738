"""What Bundle.open verifies, exactly: checksums of files larger than any read buffer, which files
make the embedding-space id, the manifest's required fields and versions, and path confinement."""

import hashlib
import json

import numpy as np
import pytest
from handmade import write_handmade_bundle

from edgerec.errors import BundleError
from edgerec.runtime.bundle import (
    FORMAT_VERSION,
    MANIFEST,
    Bundle,
    BundleWriter,
    Manifest,
    ModelEntry,
    TensorSpec,
    embedding_space_id,
    resolve_inside,
    safe_relative,
    sha256_file,
)

MIB = 1 << 20


def small_bundle(root, big_bytes=0, format_version=None):
    """A hand-made bundle (4 items of width 3, fp32), a JSON file and optionally one large binary file."""

    def extra_files(writer):
        writer.add_json("info.json", {"hello": "world"})
        if big_bytes:
            path = writer.file_path("big.bin")
            path.write_bytes(np.random.default_rng(0).integers(0, 256, big_bytes, dtype=np.uint8).tobytes())
            writer.add_file("big.bin")

    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    return write_handmade_bundle(root, vectors, table="fp32", before_finish=extra_files, format_version=format_version)


def rewrite(root, change):
    data = json.loads((root / MANIFEST).read_text())
    change(data)
    (root / MANIFEST).write_text(json.dumps(data))


def flip(path, offset):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


# ------------------------------------------------------------------ checksums


@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB, MIB + 1, 3 * MIB + 17])
def test_sha256_file_is_the_checksum_of_the_whole_file(tmp_path, size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    assert sha256_file(tmp_path / "f", chunk=4096) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("offset", [0, MIB - 1, MIB, MIB + 5, 3 * MIB + 16])
def test_a_flipped_byte_anywhere_in_a_large_file_fails_the_check(tmp_path, offset):
    root = small_bundle(tmp_path / "b", big_bytes=3 * MIB + 17)  # three read buffers and a bit
    Bundle.open(root)
    flip(root / "big.bin", offset)
    with pytest.raises(BundleError, match="big.bin fails its sha256 check"):
        Bundle.open(root)
    Bundle.open(root, verify=False)  # sizes still match: only the hash can tell


def test_size_is_checked_even_without_hashes(tmp_path):
    root = small_bundle(tmp_path / "b")
    with open(root / "info.json", "a") as handle:
        handle.write(" ")
    with pytest.raises(BundleError, match="info.json has .* bytes, the manifest says"):
        Bundle.open(root, verify=False)


def test_missing_files_and_models_without_checksums(tmp_path):
    root = small_bundle(tmp_path / "b")
    (root / "info.json").unlink()
    with pytest.raises(BundleError, match="info.json is missing"):
        Bundle.open(root)
    root = small_bundle(tmp_path / "c")
    entry = ModelEntry("ranker", "onnx", "ranker.onnx", [TensorSpec("features", "float32", ["batch", 4])],
                       [TensorSpec("logits", "float32", ["batch"])]).to_dict()
    rewrite(root, lambda d: d["models"].append(entry))
    with pytest.raises(BundleError, match="ranker.onnx is not listed with a checksum"):
        Bundle.open(root)


# ------------------------------------------------------------------ embedding-space id


def space_inputs(**changes):
    files = {name: {"sha256": hashlib.sha256(name.encode()).hexdigest(), "bytes": 1} for name in (
        "items/embeddings.npy", "items/scales.npy", "items/encoder_inputs.npy", "user_encoder.onnx",
        "user_encoder.tflite", "ranker.onnx", "content_encoder.onnx", "items/popularity.npy", "README.md")}
    for name, sha in changes.items():
        files[name.replace("__", "/").replace("_dot_", ".")]["sha256"] = sha
    models = [ModelEntry(role, fmt, f"{role}.{fmt}", [], []) for role, fmt in (
        ("user_encoder", "tflite"), ("ranker", "onnx"), ("user_encoder", "onnx"), ("content_encoder", "onnx"))]
    items = {"embeddings": {"file": "items/embeddings.npy", "scales": "items/scales.npy"},
             "encoder_inputs": "items/encoder_inputs.npy", "numeric": {"popularity": "items/popularity.npy"}}
    return files, models, items


def test_embedding_space_id_is_the_hash_of_its_members():
    files, models, items = space_inputs()
    members = ["items/embeddings.npy", "items/scales.npy", "items/encoder_inputs.npy", "user_encoder.onnx",
               "user_encoder.tflite"]
    text = "".join(f"{name}={files[name]['sha256']};" for name in members)
    assert embedding_space_id(files, models, items) == hashlib.sha256(text.encode()).hexdigest()[:24]
    assert embedding_space_id(files, models[::-1], items) == embedding_space_id(files, models, items)


@pytest.mark.parametrize("member", ["items/embeddings.npy", "items/scales.npy", "items/encoder_inputs.npy",
                                    "user_encoder.onnx", "user_encoder.tflite"])
def test_every_member_changes_the_id(member):
    files, models, items = space_inputs()
    before = embedding_space_id(files, models, items)
    files[member]["sha256"] = "0" * 64
    assert embedding_space_id(files, models, items) != before


@pytest.mark.parametrize("other", ["ranker.onnx", "content_encoder.onnx", "items/popularity.npy", "README.md"])
def test_files_outside_the_space_leave_the_id_alone(other):
    files, models, items = space_inputs()
    before = embedding_space_id(files, models, items)
    files[other]["sha256"] = "0" * 64
    assert embedding_space_id(files, models, items) == before


def test_optional_members_may_be_absent():
    files, models, items = space_inputs()
    plain = {"embeddings": {"file": "items/embeddings.npy"}}
    only_table = "items/embeddings.npy=" + files["items/embeddings.npy"]["sha256"] + ";"
    assert embedding_space_id(files, [], plain) == hashlib.sha256(only_table.encode()).hexdigest()[:24]
    assert embedding_space_id(files, [], plain) != embedding_space_id(files, [], items)


def test_a_retrained_encoder_or_table_is_a_new_space_on_disk(handmade_bundle):
    vectors = np.random.default_rng(0).normal(size=(6, 4))
    a = Bundle.open(handmade_bundle(vectors)).manifest.embedding_space
    assert Bundle.open(handmade_bundle(vectors)).manifest.embedding_space == a  # deterministic
    assert Bundle.open(handmade_bundle(vectors, popularity=range(6))).manifest.embedding_space == a
    assert Bundle.open(handmade_bundle(vectors * 2)).manifest.embedding_space != a
    assert Bundle.open(handmade_bundle(vectors, table="int8")).manifest.embedding_space != a


def test_a_swapped_model_with_updated_checksum_is_refused(handmade_bundle, tmp_path):
    root = handmade_bundle(np.eye(4))
    other = handmade_bundle(np.eye(4)[::-1].copy())
    (root / "user_encoder.onnx").write_bytes((other / "user_encoder.onnx").read_bytes())
    rewrite(root, lambda d: d["files"]["user_encoder.onnx"].update(
        sha256=sha256_file(root / "user_encoder.onnx"), bytes=(root / "user_encoder.onnx").stat().st_size))
    with pytest.raises(BundleError, match="embedding-space mismatch"):
        Bundle.open(root)


# ------------------------------------------------------------------ manifest fields


def test_manifest_round_trips(tmp_path):
    manifest = Bundle.open(small_bundle(tmp_path / "b")).manifest
    assert Manifest.from_dict(json.loads(json.dumps(manifest.to_dict()))) == manifest
    assert manifest.format_version == FORMAT_VERSION and manifest.dim == 3 and manifest.name == "handmade"
    assert list(manifest.files) == sorted(manifest.files)
    assert manifest.files["info.json"] == {"sha256": sha256_file(tmp_path / "b" / "info.json"),
                                           "bytes": (tmp_path / "b" / "info.json").stat().st_size}
    assert len(manifest.created) == 20 and manifest.created.endswith("Z") and manifest.edgerec_version


@pytest.mark.parametrize("version", [1, 2, FORMAT_VERSION])
def test_supported_format_versions_open(tmp_path, version):
    root = small_bundle(tmp_path / "b", format_version=2 if version < FORMAT_VERSION else None)  # 1 and 2: wide columns
    rewrite(root, lambda d: d.update(format_version=version))
    assert Bundle.open(root).manifest.format_version == version


@pytest.mark.parametrize("version", [0, -1, FORMAT_VERSION + 1, "2", None, 2.0, True])
def test_unsupported_format_versions_are_refused(tmp_path, version):
    """An integer out of range is a version this runtime does not read; anything else (2.0 too: spec rule 3
    reads an integer as written) is no version at all, and the message does not send the app to update."""
    root = small_bundle(tmp_path / "b")
    rewrite(root, lambda d: d.update(format_version=version))
    plain = isinstance(version, int) and not isinstance(version, bool)
    with pytest.raises(BundleError, match="is not supported by this runtime" if plain else
                       r"^manifest.json: format_version must be an integer \(got "):
        Bundle.open(root)


@pytest.mark.parametrize("field", ["name", "embedding_space", "dim", "items", "models", "files"])
def test_required_fields(tmp_path, field):
    root = small_bundle(tmp_path / "b")
    rewrite(root, lambda d: d.pop(field))
    with pytest.raises(BundleError, match=rf"manifest.json: {field} is required; the manifest does not follow "
                                          r"the bundle spec \(spec/manifest.schema.json\)"):
        Bundle.open(root)


def test_optional_fields_default(tmp_path):
    root = small_bundle(tmp_path / "b")
    optional = ("defaults", "metrics", "budgets", "reference", "data_version", "created", "edgerec_version")
    rewrite(root, lambda d: [d.pop(k) for k in optional])
    m = Bundle.open(root).manifest
    assert (m.defaults, m.metrics, m.budgets, m.reference, m.data_version, m.created, m.edgerec_version) == (
        {}, {}, {}, {}, {}, "", "")


def test_not_a_manifest(tmp_path):
    for payload in ([], {"format": "something-else", "format_version": 2}, {"format_version": 2}):
        root = small_bundle(tmp_path / f"b{len(str(payload))}")
        (root / MANIFEST).write_text(json.dumps(payload))
        with pytest.raises(BundleError, match="not an edgerec bundle manifest"):
            Bundle.open(root)
    root = small_bundle(tmp_path / "dim")
    rewrite(root, lambda d: d.update(dim="three"))
    with pytest.raises(BundleError, match="manifest.json: dim must be an integer .*got 'three'"):
        Bundle.open(root)


def test_model_entries_round_trip_and_refuse_malformed_ones():
    entry = ModelEntry("user_encoder", "tflite", "u.tflite", [TensorSpec("ids", "int32", [1, 10])],
                       [TensorSpec("v", "float32", [1, 8])], quantization="int8", history_length=10, batch=1,
                       parity={"x": 1}, extra={"y": 2})
    data = entry.to_dict()
    assert data["history_length"] == 10 and data["batch"] == 1 and data["inputs"][0]["shape"] == [1, 10]
    assert ModelEntry.from_dict(data) == entry
    plain = ModelEntry("ranker", "onnx", "r.onnx", [], []).to_dict()
    assert "history_length" not in plain and "batch" not in plain
    assert ModelEntry.from_dict(plain) == ModelEntry("ranker", "onnx", "r.onnx", [], [], "none", None, None, {}, {})
    for broken in ({k: v for k, v in plain.items() if k != "file"}, dict(plain, inputs=[{"name": "x"}])):
        with pytest.raises(BundleError, match="model entry is malformed"):
            ModelEntry.from_dict(broken)


def test_manifest_model_lookup():
    files, models, items = space_inputs()
    m = Manifest("n", "s", 3, items, models, files)
    assert m.model("user_encoder").format == "tflite"  # the first listed
    assert m.model("user_encoder", "onnx").file == "user_encoder.onnx"
    assert m.model("ranker", "tflite") is None and m.model("nothing") is None
    assert m.formats("user_encoder") == ["tflite", "onnx"] and m.formats("content_projection") == []


# ------------------------------------------------------------------ paths


@pytest.mark.parametrize("name", ["a.npy", "items/a.npy", "a/b/c.bin", ".hidden"])
def test_plain_relative_paths_pass(name):
    assert safe_relative(name) == name


@pytest.mark.parametrize("name", ["", "a\\b", "a\x00b", None, 3])
def test_odd_names_are_refused(name):
    with pytest.raises(BundleError, match="is not a plain relative path"):
        safe_relative(name)


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", "a/..", "./a", "../" + "x" * 5000])
def test_names_leaving_the_bundle_are_refused(name):
    with pytest.raises(BundleError, match="leaves the bundle directory") as err:
        safe_relative(name)
    assert len(str(err.value)) < 200  # a packed file's 5,000-character member name is cut, not echoed whole


def test_resolve_inside_refuses_links_on_the_way_and_the_root_itself(tmp_path):
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "f").write_text("x")
    assert resolve_inside(root, "real/f") == root / "real" / "f"
    (root / "via").symlink_to(root / "real")
    with pytest.raises(BundleError, match="goes through a symbolic link"):
        resolve_inside(root, "via/f")
    with pytest.raises(BundleError, match="leaves the bundle directory or is not in its plain form"):
        resolve_inside(root, ".")  # the root itself: refused by its name (spec rule 2), before any lookup


def test_bundle_accessors(tmp_path):
    root = small_bundle(tmp_path / "b")
    bundle = Bundle.open(root)
    np.testing.assert_array_equal(bundle.array("items/embeddings.npy"), np.arange(12).reshape(4, 3))
    loaded = bundle.array("items/embeddings.npy", mmap=False)
    assert loaded.flags.writeable and type(loaded) is np.ndarray
    assert not bundle.array("items/embeddings.npy").flags.writeable  # a read-only mapping
    assert bundle.json("info.json") == {"hello": "world"}
    assert bundle.size_bytes() == sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    with pytest.raises(BundleError, match="nope.npy is not a file of this bundle"):
        bundle.path("nope.npy")
    with pytest.raises(BundleError, match="info.json is not valid JSON"):
        (root / "info.json").write_text("{{")
        bundle.json("info.json")


def test_arrays_never_unpickle(tmp_path):
    def pickled_file(writer):
        with pytest.raises(BundleError, match="object arrays would need pickle"):
            writer.add_array("o.npy", np.array([{"a": 1}], dtype=object))
        np.save(writer.file_path("o.npy"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
        writer.add_file("o.npy")

    root = write_handmade_bundle(tmp_path / "b", np.eye(2, dtype=np.float32), before_finish=pickled_file)
    for mmap in (True, False):
        with pytest.raises(BundleError, match="o.npy cannot be read"):
            Bundle.open(root).array("o.npy", mmap=mmap)


def test_writer_refuses_a_non_empty_folder_and_stores_strings_with_offsets(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(BundleError, match="exists and is not empty"):
        BundleWriter(tmp_path / "full", "x")
    (tmp_path / "empty").mkdir()
    writer = BundleWriter(tmp_path / "empty", "x")  # an empty folder is fine
    spec = writer.add_strings("s", ["a", "", "ünï"])
    assert spec == {"blob": "s.bin", "offsets": "s.offsets.npy"}
    assert (writer.root / "s.bin").read_bytes() == "aünï".encode()  # in its staging folder until finish
    np.testing.assert_array_equal(np.load(writer.root / "s.offsets.npy"), [0, 1, 1, 6])
    root = small_bundle(tmp_path / "finished")
    written = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert written == {MANIFEST, *Bundle.open(root).manifest.files}  # no temporary left beside them
