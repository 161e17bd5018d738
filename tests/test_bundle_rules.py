"""The bundle rules the schema cannot state, each against a bundle that breaks exactly one of them,
and the exact bytes the writer puts on disk."""

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
    ModelEntry,
    TensorSpec,
)

VECTORS = np.arange(12, dtype=np.float32).reshape(4, 3)  # 4 items, dim 3
REFERENCE = {"histories": "reference/histories.npy", "user_vectors": "reference/user_vectors.npy",
             "top_k": "reference/top_k.npy"}


def rewrite(root, change):
    data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    change(data)
    (root / MANIFEST).write_text(json.dumps(data), encoding="utf-8")


def unlisted(name):
    return rf"^manifest.json: {name} is not listed with a checksum in files; re-export the bundle$"


def with_reference(root):
    def add(writer):
        for name in REFERENCE.values():
            writer.add_array(name, np.zeros((1, 2), np.float32))

    root = write_handmade_bundle(root, VECTORS, before_finish=add)
    rewrite(root, lambda d: d.update(reference={**REFERENCE, "k": 2}))
    return root


def test_reference_files_listed_with_checksums_open(tmp_path):
    assert Bundle.open(with_reference(tmp_path / "b")).manifest.reference == {**REFERENCE, "k": 2}


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_a_reference_file_without_a_checksum_is_refused(tmp_path, key):
    root = with_reference(tmp_path / "b")
    rewrite(root, lambda d: d["files"].pop(REFERENCE[key]))
    with pytest.raises(BundleError, match=unlisted(REFERENCE[key])):
        Bundle.open(root)


def test_an_item_table_file_without_a_checksum_is_refused(tmp_path):
    root = write_handmade_bundle(tmp_path / "b", VECTORS)
    rewrite(root, lambda d: d["files"].pop("items/popularity.npy"))
    with pytest.raises(BundleError, match=unlisted("items/popularity.npy")):
        Bundle.open(root)


EXTRAS = {"tokenizer": ("tok.json", "tok.json"), "projection": ("proj.npy", "proj.npy"),
          "labels": ({"names": ["calm"], "vectors": "labels.npy", "sets": {}}, "labels.npy")}


@pytest.mark.parametrize("key", sorted(EXTRAS))
def test_a_model_file_named_in_extra_needs_a_checksum(tmp_path, key):
    value, file = EXTRAS[key]
    listed = write_handmade_bundle(tmp_path / "listed", VECTORS,
                                   before_finish=lambda w: w.add_array(file, np.zeros(2, np.float32)))
    rewrite(listed, lambda d: d["models"][0]["extra"].update({key: value}))
    assert Bundle.open(listed).manifest.models[0].extra[key] == value
    root = write_handmade_bundle(tmp_path / "b", VECTORS)
    rewrite(root, lambda d: d["models"][0]["extra"].update({key: value}))
    with pytest.raises(BundleError, match=unlisted(file)):
        Bundle.open(root)


def with_ranker(root, width):
    def add(writer):
        writer.file_path("ranker.onnx").write_bytes(b"a ranker")
        writer.add_model(ModelEntry("ranker", "onnx", "ranker.onnx", [TensorSpec("features", "float32", ["b", 4])],
                                    [TensorSpec("logits", "float32", ["b", width])]))

    return write_handmade_bundle(root, VECTORS, before_finish=add)


def test_the_user_encoder_must_output_dim_wide_vectors(tmp_path):
    root = write_handmade_bundle(tmp_path / "b", VECTORS)
    rewrite(root, lambda d: d["models"][0]["outputs"][0].update(shape=["batch", 5]))
    with pytest.raises(BundleError, match=r"^manifest.json: models\[0\] \(user_encoder.onnx\) outputs vectors 5 wide, "
                                          r"the manifest's dim is 3; the rule is one width for both, re-export$"):
        Bundle.open(root)
    rewrite(root, lambda d: d["models"][0]["outputs"][0].update(shape=["batch", "dim"]))  # a named axis: no rule
    assert Bundle.open(root).manifest.models[0].outputs[0].shape == ["batch", "dim"]


def test_a_ranker_output_of_another_width_is_fine(tmp_path):
    root = with_ranker(tmp_path / "b", 5)
    assert [m.outputs[0].shape for m in Bundle.open(root).manifest.models] == [["batch", 3], ["b", 5]]


def test_a_mapped_array_is_a_plain_read_only_ndarray(tmp_path):
    bundle = Bundle.open(write_handmade_bundle(tmp_path / "b", VECTORS))
    mapped = bundle.array("items/embeddings.npy")
    assert type(mapped) is np.ndarray and not mapped.flags.writeable and not mapped.flags.owndata


def test_add_json_writes_utf8_with_one_space_indents(tmp_path):
    writer = BundleWriter(tmp_path / "b", "x")
    payload = {"title": "Amélie", "tags": ["ñ", "日本"]}
    writer.add_json("card.json", payload)
    assert (writer.root / "card.json").read_bytes() == (
        '{\n "title": "Amélie",\n "tags": [\n  "ñ",\n  "日本"\n ]\n}'.encode())


@pytest.fixture
def ascii_locale():
    """The process's text encoding made ASCII (LC_CTYPE=C), as on a device or host without a UTF-8 locale."""
    import locale

    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    if locale.getpreferredencoding(False).lower() not in ("ansi_x3.4-1968", "ascii", "us-ascii"):
        locale.setlocale(locale.LC_CTYPE, before)
        pytest.skip("the C locale is not ASCII here (UTF-8 mode)")
    yield
    locale.setlocale(locale.LC_CTYPE, before)


def test_bundles_with_non_ascii_text_write_and_read_under_an_ascii_locale(tmp_path, ascii_locale):
    """The writer and reader name their encoding: a locale that is not UTF-8 changes nothing."""

    def card(writer):
        writer.name = "Amélie"
        writer.add_json("card.json", {"title": "Amélie"})

    bundle = Bundle.open(write_handmade_bundle(tmp_path / "b", np.eye(2), before_finish=card))
    assert (bundle.manifest.name, bundle.json("card.json")["title"]) == ("Amélie", "Amélie")
    assert (tmp_path / "b" / "card.json").read_bytes() == '{\n "title": "Amélie"\n}'.encode()
    assert '"name": "Amélie"'.encode() in (tmp_path / "b" / MANIFEST).read_bytes()


def test_a_minimal_model_entry_takes_the_documented_defaults():
    entry = ModelEntry.from_dict({"role": "ranker", "format": "onnx", "file": "r.onnx", "inputs": [], "outputs": []})
    assert (entry.quantization, entry.history_length, entry.batch, entry.parity, entry.extra) == (
        "none", None, None, {}, {})


def test_check_files_verifies_checksums_unless_told_not_to(tmp_path):
    root = write_handmade_bundle(tmp_path / "b", VECTORS)
    bundle = Bundle.open(root)
    data = (root / "items/popularity.npy").read_bytes()
    (root / "items/popularity.npy").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, other bytes
    bundle.check_files(hashes=False)
    with pytest.raises(BundleError, match=r"^bundle file items/popularity.npy fails its sha256 check; it is "
                                          r"corrupt or was modified$"):
        bundle.check_files()


def test_the_size_message_names_both_sizes(tmp_path):
    root = write_handmade_bundle(tmp_path / "b", VECTORS)
    size = (root / "items/popularity.npy").stat().st_size
    with open(root / "items/popularity.npy", "ab") as handle:
        handle.write(b"xyz")
    with pytest.raises(BundleError, match=rf"^bundle file items/popularity.npy has {size + 3} bytes, the manifest "
                                          rf"says {size}; it is truncated or replaced, copy the bundle again$"):
        Bundle.open(root, verify=False)


def test_the_embedding_space_message(tmp_path):
    root = write_handmade_bundle(tmp_path / "b", VECTORS)
    rewrite(root, lambda d: d.update(embedding_space="0" * 24))
    with pytest.raises(BundleError, match=r"^embedding-space mismatch: the item table and the user encoder\(s\) do "
                                          r"not come from the same export; re-export the bundle instead of mixing "
                                          r"files$"):
        Bundle.open(root)


def test_a_missing_bundle_says_how_to_make_one(tmp_path):
    with pytest.raises(BundleError, match=r"^nothing is not a bundle \(no such directory or packed "
                                          r"file\); create one with `edgerec export`$"):
        Bundle.open(tmp_path / "nothing")


def test_a_manifest_of_exactly_the_largest_size_opens(tmp_path, monkeypatch):
    from edgerec.runtime import bundle as module

    root = write_handmade_bundle(tmp_path / "b", VECTORS)
    size = (root / MANIFEST).stat().st_size
    monkeypatch.setattr(module, "MAX_MANIFEST_BYTES", size)
    Bundle.open(root)
    monkeypatch.setattr(module, "MAX_MANIFEST_BYTES", size - 1)
    with pytest.raises(BundleError, match=rf"^manifest.json is {size:,} bytes, above the {size - 1:,} a manifest "
                                          r"may have$"):
        Bundle.open(root)


def test_a_foreign_manifest_is_named_as_such(tmp_path):
    root = write_handmade_bundle(tmp_path / "b", VECTORS)
    rewrite(root, lambda d: d.update(format="something-else"))
    with pytest.raises(BundleError, match=r"^manifest.json is not an edgerec bundle manifest \(no 'format': "
                                          r"'edgerec-bundle'\)$"):
        Bundle.open(root)


SECTIONS = {"defaults": {"k": 7, "history_length": 10, "diversity": 0.25, "short_list": 50},
            "metrics": {"teacher": {"ndcg@10": 0.5}}, "budgets": {"p95_ms": 12.5},
            "data_version": {"source": "hand", "events": 3}}


def test_every_section_given_to_finish_is_written_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(365 * 86_400 + 3_661))  # 1971-01-01 01:01:01 UTC
    writer = BundleWriter(tmp_path / "a" / "b" / "c", "Amélie")  # a new folder three levels down
    writer.add_array("deep/er/x.npy", np.arange(3))  # and files in new sub-folders
    for name in REFERENCE.values():
        writer.add_array(name, np.zeros((1, 2), np.float32))
    source = write_handmade_bundle(tmp_path / "t", VECTORS)  # its encoder and item table, copied
    manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    for name in manifest["files"]:
        writer.file_path(name).write_bytes((source / name).read_bytes())
        writer.add_file(name)
    writer.models.append(ModelEntry.from_dict(manifest["models"][0]))
    items = manifest["items"]
    reference = {**REFERENCE, "k": 2}
    written = writer.finish(dim=3, items=items, reference=reference, **SECTIONS)
    root = tmp_path / "a" / "b" / "c"
    assert (root / MANIFEST).read_bytes() == json.dumps(written.to_dict(), indent=2, ensure_ascii=False).encode()
    assert not (root / f"{MANIFEST}.tmp").exists()
    m = Bundle.open(root).manifest
    assert (m.defaults, m.metrics, m.budgets, m.data_version, m.reference) == (
        SECTIONS["defaults"], SECTIONS["metrics"], SECTIONS["budgets"], SECTIONS["data_version"], reference)
    assert m.created == "1971-01-01T01:01:01Z" and m.name == "Amélie"
    np.testing.assert_array_equal(Bundle.open(root).array("deep/er/x.npy"), [0, 1, 2])


def test_a_manifest_nested_too_deeply_is_refused_by_name(tmp_path):
    root = write_handmade_bundle(tmp_path / "b", VECTORS)
    (root / MANIFEST).write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    with pytest.raises(BundleError, match=r"^manifest.json nests too deeply to be a manifest; the bundle is "
                                          r"damaged$"):
        Bundle.open(root)


@pytest.mark.parametrize("version", [1, FORMAT_VERSION + 1])
def test_the_writer_refuses_a_format_it_does_not_write_before_making_the_folder(tmp_path, version):
    with pytest.raises(BundleError, match=rf"^this edgerec writes bundle format 2 to {FORMAT_VERSION}, not {version}$"):
        BundleWriter(tmp_path / "out", "x", format_version=version)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("version, offsets", [(2, np.int64), (3, np.uint32), (None, np.uint32)])
def test_string_offsets_are_wide_in_format_2_and_narrow_from_format_3_on(tmp_path, version, offsets):
    root = write_handmade_bundle(tmp_path / "b", VECTORS, format_version=version)
    bundle = Bundle.open(root)
    assert bundle.manifest.format_version == (version or FORMAT_VERSION)
    strings = list(bundle.manifest.items.strings.values())
    arrays = [bundle.array(s.offsets) for s in strings]
    assert arrays and {a.dtype for a in arrays} == {np.dtype(offsets)}
    assert [int(a[-1]) for a in arrays] == [bundle.path(s.file).stat().st_size for s in strings]


def test_ranking_and_space_sections_are_written_when_given_and_left_out_when_empty(tmp_path):
    ranking = {"engagement": 0.25}
    space = {"id": "shared-1", "domains": ["music"]}

    def sections(name, **extra):
        root = write_handmade_bundle(tmp_path / name, VECTORS, finish_extra=extra)
        return json.loads((root / MANIFEST).read_text(encoding="utf-8")), Bundle.open(root).manifest

    data, manifest = sections("both", ranking=ranking, space=space)
    assert (data["ranking"], data["space"]) == (ranking, space) == (manifest.ranking, manifest.space)
    data, manifest = sections("none")
    assert "ranking" not in data and "space" not in data and (manifest.ranking, manifest.space) == ({}, {})


def test_fixed_tflite_shapes_are_written_only_when_set():
    spec = [TensorSpec("ids", "int64", [1, 10])]
    fixed = ModelEntry("user_encoder", "tflite", "u.tflite", spec, spec, history_length=10, batch=1).to_dict()
    assert (fixed["history_length"], fixed["batch"]) == (10, 1)
    only_length = ModelEntry("user_encoder", "tflite", "u.tflite", spec, spec, history_length=10).to_dict()
    assert only_length["history_length"] == 10 and "batch" not in only_length
    free = ModelEntry("user_encoder", "onnx", "u.onnx", spec, spec).to_dict()
    assert "history_length" not in free and "batch" not in free
    assert ModelEntry.from_dict(fixed) == ModelEntry.from_dict(json.loads(json.dumps(fixed)))


@pytest.mark.parametrize("version, offsets", [(2, np.int64), (3, np.uint32)])
def test_add_strings_writes_the_blob_and_its_offsets_exactly(tmp_path, version, offsets):
    writer = BundleWriter(tmp_path / "b", "x", format_version=version)
    entry = writer.add_strings("names", ["é" * 100, "", "z"])  # 200 bytes, then an empty string
    assert (writer.root / entry["blob"]).read_bytes() == "é".encode() * 100 + b"z"
    written = np.load(writer.root / entry["offsets"])
    assert written.dtype == offsets and written.tolist() == [0, 200, 200, 201]
    assert set(writer.files) == {entry["blob"], entry["offsets"]}
