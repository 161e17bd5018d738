"""The committed golden cases are what the generator (python -m edgerec.export.golden) makes today:
the same manifest shape from a fresh export, the same event scripts over the committed bundle."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from edgerec.export.golden import RANKED, World, build_bundle, scripts
from edgerec.export.golden_ranked import build_ranked_bundle
from edgerec.runtime.golden import load_cases
from edgerec.runtime.schema import manifest_schema, validate

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden"


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def same_files(out: Path, committed: Path) -> dict[str, bytes]:
    """The files a generator made in `out`, after checking them byte for byte against the committed folder."""
    made, kept = files_of(out), files_of(committed)
    assert made.keys() == kept.keys(), "run `python -m edgerec.export.golden --out spec/golden` and commit it"
    assert [name for name in made if made[name] != kept[name]] == []
    return made


def close(made, kept, path: str = "") -> list[str]:
    """Where two JSON documents differ beyond float noise: numbers within 1e-4 relative, and hex digests (file
    checksums, the embedding-space id: hashes of the files) free to differ; everything else equal. Absolute
    differences under 1e-6 pass too: the parity figures are float noise themselves (max_abs_diff 2e-7)."""
    if isinstance(made, dict) and isinstance(kept, dict):
        if made.keys() != kept.keys():
            return [f"{path}: keys {sorted(made)} != {sorted(kept)}"]
        return [d for key in made for d in close(made[key], kept[key], f"{path}.{key}")]
    if isinstance(made, list) and isinstance(kept, list):
        if len(made) != len(kept):
            return [f"{path}: {len(made)} items != {len(kept)}"]
        return [d for i, (a, b) in enumerate(zip(made, kept)) for d in close(a, b, f"{path}[{i}]")]
    if isinstance(made, float) or isinstance(kept, float):
        ok = isinstance(made, (int, float)) and isinstance(kept, (int, float)) and made == pytest.approx(kept, rel=1e-4, abs=1e-6)
    elif isinstance(made, str) and isinstance(kept, str) and re.fullmatch(r"[0-9a-f]{24}|[0-9a-f]{64}", kept):
        ok = re.fullmatch(r"[0-9a-f]{24}|[0-9a-f]{64}", made) is not None
    else:
        ok = made == kept and type(made) is type(kept)
    return [] if ok else [f"{path}: {made!r} != {kept!r}"]


def same_up_to_float_noise(out: Path, committed: Path) -> dict[str, bytes]:
    """Like same_files, for a generator that trains a model: float sums follow the CPU's vector width and
    library (one thread gives one machine the same weights, not every machine: an AVX-512 AMD host made
    weights 1e-7 away from the committed ones). Arrays may differ by float noise, the manifest by that and by
    the hashes of the files, and the model files (same graph, those weights) by their bytes at the same size;
    the items' int8 table, the texts, the tokenizer and every other file must be the same, byte for byte."""
    made, kept = files_of(out), files_of(committed)
    assert made.keys() == kept.keys(), "run `python -m edgerec.export.golden --out spec/golden` and commit it"
    for name in [name for name in made if made[name] != kept[name]]:
        if name.endswith(".npy"):
            a, b = np.load(io.BytesIO(made[name])), np.load(io.BytesIO(kept[name]))
            assert a.dtype == b.dtype and a.dtype.kind == "f" and a.shape == b.shape, name
            assert np.allclose(a, b, rtol=1e-4, atol=1e-6), (name, float(np.abs(a - b).max()))
        elif name == "manifest.json":
            assert close(json.loads(made[name]), json.loads(kept[name])) == []
        else:
            assert name.endswith((".onnx", ".tflite")) and len(made[name]) == len(kept[name]), name
    return made


def test_float_noise_passes_and_a_real_change_does_not(tmp_path):
    kept, made = tmp_path / "kept", tmp_path / "made"
    for folder, scale, table in ((kept, 1.0, [1, 2]), (made, 1.0 + 1e-7, [1, 2])):
        folder.mkdir()
        np.save(folder / "scales.npy", np.array([0.5, 0.25], np.float32) * np.float32(scale))
        np.save(folder / "table.npy", np.array(table, np.int8))
        (folder / "manifest.json").write_text(json.dumps({"space": "ab" * 12, "cos": 0.5 * scale}))
    same_up_to_float_noise(made, kept)
    for name, value in (("table.npy", np.array([1, 3], np.int8)), ("scales.npy", np.array([0.5, 0.26], np.float32))):
        np.save(made / name, value)
        with pytest.raises(AssertionError):
            same_up_to_float_noise(made, kept)
        np.save(made / name, np.load(kept / name))
    (made / "manifest.json").write_text(json.dumps({"space": "ab" * 12, "cos": 0.6}))
    with pytest.raises(AssertionError):
        same_up_to_float_noise(made, kept)


def shape(node):
    """The schema-relevant shape of a JSON document: keys and JSON types, not values. Maps keyed by
    file name or column (files, columns, parity figures) keep their keys; lists keep their length."""
    if isinstance(node, dict):
        return {key: shape(value) for key, value in node.items()}
    if isinstance(node, list):
        return [shape(value) for value in node]
    return "number" if isinstance(node, (int, float)) and not isinstance(node, bool) else type(node).__name__


@pytest.fixture(scope="module")
def fresh_manifest(tmp_path_factory) -> dict:
    out = build_bundle(tmp_path_factory.mktemp("golden") / "bundle")
    return json.loads((out / "manifest.json").read_text())


@pytest.mark.slow
def test_a_fresh_export_has_the_committed_manifests_shape(fresh_manifest):
    committed = json.loads((GOLDEN / "bundle" / "manifest.json").read_text())
    assert validate(fresh_manifest, manifest_schema()) == []
    assert shape(fresh_manifest) == shape(committed), (
        "the exporter now writes another manifest shape than the committed golden bundle: regenerate "
        "spec/golden (python -m edgerec.export.golden) and update spec/manifest.schema.json with it")
    assert fresh_manifest["created"] == committed["created"]  # SOURCE_DATE_EPOCH pins the creation time
    assert fresh_manifest["data_version"]["source"] == "edgerec synthetic audio/video world"  # no host path


def test_the_shape_comparison_sees_a_changed_field():
    assert shape({"a": 1, "b": ["x"]}) == shape({"a": 2.5, "b": ["y"]})
    assert shape({"a": 1}) != shape({"a": "1"})
    assert shape({"a": 1}) != shape({"a": 1, "c": 0})


def test_the_committed_scripts_are_the_generators_scripts():
    """Inputs of every case (all but the expected lists) come from export/golden.py, unedited."""
    committed = {case.name: case for case in load_cases(GOLDEN / "cases")}
    for case in scripts(World(GOLDEN / "bundle")):
        stored = committed.pop(case.name)
        without = [{k: v for k, v in step.items() if k not in ("expected", "expected_by_engine")}
                   for step in stored.steps]
        assert json.loads(json.dumps(case.steps)) == without, case.name
        assert case.description == stored.description
    assert committed == {}, f"cases no script makes: {sorted(committed)}"


def test_the_golden_bundle_is_small_and_synthetic():
    files = [p for p in (GOLDEN / "bundle").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 1_000_000
    card = json.loads((GOLDEN / "bundle" / "model_card.json").read_text())
    assert card["checkpoint"] == "ckpt"  # a relative name, no host path
    manifest = json.loads((GOLDEN / "bundle" / "manifest.json").read_text())
    assert manifest["data_version"]["source"] == "edgerec synthetic audio/video world"


def test_the_ranked_bundle_is_the_generators(tmp_path):
    """golden/ranked is what export/golden_ranked.py makes from the committed golden bundle, byte for
    byte (seeded weights): no file of it was edited by hand, and it opens as a bundle."""
    from edgerec.runtime.recommender import Recommender

    out = build_ranked_bundle(GOLDEN / "bundle", tmp_path / RANKED)
    made = same_files(out, GOLDEN / RANKED)
    assert sum(map(len, made.values())) < 60_000  # bytes in the repository matter
    with Recommender.open(out, backend="onnx") as rec:
        assert rec.ranker and rec.stats()["bundle"] == "golden-ranked"


def test_the_rows_bundle_is_the_generators(tmp_path):
    """golden/rows is what export/golden_more.py makes from the committed golden bundle, byte for byte:
    the same items and ONNX encoder, the table quantized per row (spec rule 8, §4 Scan)."""
    from edgerec.export.golden_more import ROWS, build_rows_bundle
    from edgerec.runtime import Bundle

    out = build_rows_bundle(GOLDEN / "bundle", tmp_path / ROWS)
    made = same_files(out, GOLDEN / ROWS)
    assert sum(map(len, made.values())) < 40_000
    items = Bundle.open(out).manifest.items
    assert items.embeddings.scale_axis == "row" and items.embeddings.dtype == "int8"


def test_the_refusal_fixtures_are_the_generators(tmp_path):
    """golden/refusals is what export/golden_refusals.py makes from the committed golden bundle, byte for
    byte: no fixture was edited by hand, and each message fragment is the one the generator states."""
    from edgerec.export.golden_refusals import REFUSALS_FOLDER, generate

    summary = generate(GOLDEN / "bundle", tmp_path / REFUSALS_FOLDER)
    out = tmp_path / REFUSALS_FOLDER
    made = same_files(out, GOLDEN / REFUSALS_FOLDER)
    assert summary["bytes"] == sum(map(len, made.values())) < 300_000


def test_the_format1_bundle_is_the_generators(tmp_path):
    """golden/format1 is what export/golden_more.py makes from the committed rows bundle, byte for byte: the
    rows bundle in format 1 (the oldest format a runtime reads, spec rule 1)."""
    from edgerec.export.golden_more import FORMAT1, ROWS, build_format1_bundle
    from edgerec.runtime import Bundle

    out = build_format1_bundle(GOLDEN / ROWS, tmp_path / FORMAT1)
    made = same_files(out, GOLDEN / FORMAT1)
    assert sum(map(len, made.values())) < 40_000
    opened = Bundle.open(out)
    assert opened.manifest.format_version == 1 and opened.manifest.items.embeddings.scale_axis == "row"  # none written


def test_the_nan_bundle_is_the_generators(tmp_path):
    """golden/nan is what export/golden_more.py makes from the committed golden bundle, byte for byte: its
    encoder differs from the golden one in the 4 bytes of one embedding row's scale (now NaN)."""
    from edgerec.export.golden_more import NAN, build_nan_bundle

    out = build_nan_bundle(GOLDEN / "bundle", tmp_path / NAN)
    made = same_files(out, GOLDEN / NAN)
    assert sum(map(len, made.values())) < 40_000
    golden, broken = (GOLDEN / "bundle" / "user_encoder.onnx").read_bytes(), made["user_encoder.onnx"]
    assert len(golden) == len(broken) and sum(a != b for a, b in zip(golden, broken)) <= 4


def test_the_content_bundle_is_the_generators(tmp_path):
    """golden/content is what export/golden_content.py makes from the committed golden bundle and the seeded
    world, byte for byte: its two bridges read items+content (spec §8), dim + d_content rows of weights."""
    import numpy as np

    from edgerec.export.golden_content import CONTENT, build_content_bundle

    out = build_content_bundle(GOLDEN / "bundle", tmp_path / CONTENT)
    made = same_files(out, GOLDEN / CONTENT)
    assert sum(map(len, made.values())) < 100_000
    manifest = json.loads(made["manifest.json"])
    content = np.load(out / manifest["space"]["content"]["file"])
    for bridge in manifest["space"]["bridges"]:
        assert bridge["input"] == "items+content" and bridge["source_space"] == manifest["embedding_space"]
        assert np.load(out / bridge["weights"]).shape == (manifest["dim"] + content.shape[1], manifest["dim"])


def test_the_text_bundle_is_the_generators(tmp_path):
    """golden/text is what export/golden_text.py makes from the seeded world: the golden model trained again on
    one thread (the same up to float noise on another CPU) and a seeded content student over the golden catalog's
    WordPiece words."""
    from edgerec.export.golden_text import TEXT, build_text_bundle

    made = same_up_to_float_noise(build_text_bundle(tmp_path / TEXT), GOLDEN / TEXT)
    assert sum(map(len, made.values())) < 150_000
    models = json.loads(made["manifest.json"])["models"]
    assert sorted(m["format"] for m in models if m["role"] == "content_encoder") == ["onnx", "tflite"]


def test_every_recommend_step_pins_its_clock():
    """A recommend without `context.now` reads the wall clock, and freshness decays with it: the
    content_encoder case's scores drifted by 0.005 within a day and failed a run made later."""
    device_clock = {"replay"}  # on purpose: its cool-downs run from plays made just before, on the same clock
    unpinned = [f"{case.name} step {i}" for case in load_cases(GOLDEN / "cases") if case.name not in device_clock
                for i, step in enumerate(case.steps)
                if step["op"] == "recommend" and "now" not in (step.get("context") or {})]
    assert unpinned == []
