"""Opening a bundle applies the spec: the schema, then the rules it cannot state; each error names
the file or field and the rule. Built on damaged copies of the golden bundle (no torch needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bundle_edit import replace_array, rewrite

from edgerec.errors import BundleError
from edgerec.runtime import Bundle, Recommender
from edgerec.runtime import bundle as bundle_module
from edgerec.runtime.item_spec import ItemTableSpec


def test_the_item_section_round_trips_through_its_dataclass(golden_bundle):
    raw = json.loads((golden_bundle / "manifest.json").read_text())
    spec = ItemTableSpec.from_manifest(raw["items"])
    assert spec.to_manifest() == raw["items"]
    assert spec.count == 56 and spec.embeddings.scale_axis == "dim" and spec.embeddings.dtype == "int8"
    assert set(spec.categorical) == {"modality", "language", "genre", "creator", "provider", "series_id"}
    assert spec.categorical["modality"].vocab[:2] == ("film", "series_episode")
    assert set(spec.files()) <= set(raw["files"])
    assert Bundle.open(golden_bundle).manifest.to_dict() == raw


def test_a_schema_violation_names_the_field_and_the_rule(bundle_copy):
    rewrite(bundle_copy, lambda d: d["items"].update(count="x"))
    with pytest.raises(BundleError, match=r"^manifest.json: items.count must be an integer >= 0 \(got 'x'\); "):
        Bundle.open(bundle_copy)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda root: rewrite(root, lambda d: d["items"].update(count=55)),
     r"items/embeddings.npy has shape \(56, 8\); it must be \(items.count, dim\) = \(55, 8\)"),
    (lambda root: rewrite(root, lambda d: d.update(dim=16)), r"outputs vectors 8 wide, the manifest's dim is 16"),
    (lambda root: replace_array(root, "items/scales.npy", np.r_[np.nan, np.ones(7)].astype(np.float32)),
     r"items/scales.npy must hold finite, positive float32 scales"),
    (lambda root: replace_array(root, "items/scales.npy", np.r_[0.0, np.ones(7)].astype(np.float32)),
     r"items/scales.npy must hold finite, positive float32 scales"),
    (lambda root: replace_array(root, "items/genre.npy", np.full(56, 99, np.int32)),
     r"items/genre.npy \(column genre\) must hold int8/int16/int32 codes from -1 to \d+"),
    (lambda root: replace_array(root, "items/duration.npy", np.ones(56, np.float64)),
     r"items/duration.npy \(column duration\) has dtype float64; it must be float32 or a narrower one"),
    (lambda root: replace_array(root, "items/popularity.npy", np.ones(50, np.float32)),
     r"items/popularity.npy \(column popularity\) has shape \(50,\); it must hold 56 values"),
    (lambda root: replace_array(root, "items/ids.offsets.npy", np.arange(57, dtype=np.int64)),
     r"items/ids.offsets.npy \(column ids\) must hold int64/uint32 offsets rising from 0 to the "),
    (lambda root: rewrite(root, lambda d: d["files"].pop("items/provider.npy")),
     r"manifest.json: items/provider.npy is not listed with a checksum in files"),
    (lambda root: rewrite(root, lambda d: d["reference"].update(top_k="reference/elsewhere.npy")),
     r"manifest.json: reference/elsewhere.npy is not listed with a checksum in files"),
])
def test_rules_beyond_the_schema_are_checked_on_open(bundle_copy, damage, message):
    damage(bundle_copy)
    with pytest.raises(BundleError, match=message):
        Bundle.open(bundle_copy)


def test_an_intact_copy_opens_and_recommends(bundle_copy):
    rewrite(bundle_copy, lambda d: None)
    with Recommender.open(bundle_copy) as rec:
        assert len(rec.recommend("u", k=5)) == 5


def test_a_deeply_nested_or_huge_manifest_is_a_bundle_error(bundle_copy, monkeypatch):
    (bundle_copy / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(BundleError, match="nests too deeply"):
        Bundle.open(bundle_copy)
    (bundle_copy / "manifest.json").write_text(json.dumps({"format": "edgerec-bundle", "pad": "x" * 2000}))
    monkeypatch.setattr(bundle_module, "MAX_MANIFEST_BYTES", 1000)
    with pytest.raises(BundleError, match="above the 1,000 a manifest may have"):
        Bundle.open(bundle_copy)


def test_the_writer_refuses_a_manifest_that_breaks_the_schema(golden_bundle, tmp_path):
    """export/ writes through the same schema: a writer bug stops the export, not the device."""
    from edgerec.device_tests.scale import scaled_bundle

    source = Bundle.open(golden_bundle)
    grown = scaled_bundle(source, 300, tmp_path / "grown")
    with Recommender.open(grown) as rec:
        assert Bundle.open(grown).manifest.items.count == 300 and len(rec.recommend("u", k=5)) == 5
    source.manifest.defaults["k"] = 0
    with pytest.raises(BundleError, match=r"manifest.json: defaults.k must be an integer between 1 and 10000 "
                                          r"\(got 0\)"):
        scaled_bundle(source, 100, tmp_path / "bad")


def test_the_writer_takes_the_item_section_typed_or_in_manifest_form(golden_bundle, tmp_path):
    """Both forms give the same manifest; a broken manifest-form section names its field."""
    from edgerec.runtime.bundle import BundleWriter
    from edgerec.runtime.item_spec import space_members
    from edgerec.runtime.item_table import StoredTable

    source = Bundle.open(golden_bundle)
    spec = source.manifest.items
    assert space_members(spec) == space_members(spec.to_manifest()) == [
        "items/embeddings.npy", "items/scales.npy", None]
    typed = StoredTable.read(source, spec.embeddings)
    plain = StoredTable.read(source, spec.embeddings.to_manifest())
    assert typed.scale_axis == plain.scale_axis == "dim" and np.array_equal(typed.values, plain.values)

    def write(root, items):
        writer = BundleWriter(root, "copy", source.manifest.format_version)  # its items: that format's
        for name in source.manifest.files:
            writer.file_path(name).write_bytes(source.path(name).read_bytes())
            writer.add_file(name)
        writer.models = list(source.manifest.models)
        m = source.manifest
        return writer.finish(dim=m.dim, items=items, defaults=m.defaults, metrics=m.metrics, budgets=m.budgets,
                             reference=m.reference, data_version=m.data_version)

    a, b = write(tmp_path / "a", spec), write(tmp_path / "b", spec.to_manifest())
    def content(manifest):  # the manifest less its creation time, which may tick between the writes
        return {k: v for k, v in manifest.to_dict().items() if k != "created"}

    assert content(a) == content(b) and a.embedding_space == source.manifest.embedding_space
    assert Bundle.open(tmp_path / "b").manifest.items == spec
    with pytest.raises(BundleError, match=r"^manifest.json: items.count must be an integer >= 0 \(got -1\)"):
        write(tmp_path / "c", dict(spec.to_manifest(), count=-1))
