"""The refusal fixtures of spec/golden/refusals: every bundle there is refused on open, with the error class
and the start of the message its index names, and the base they all edit opens and recommends.

A fixture's folder holds only the files its edit changed; the bundle it stands for is a copy of `base` with
them put over it and the index's `removed` files taken away (spec/README.md §9), made here in tmp_path.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgerec import errors
from edgerec.runtime import Recommender
from edgerec.runtime.schema import validate

ROOT = Path(__file__).resolve().parents[2]
REFUSALS = ROOT / "spec" / "golden" / "refusals"
INDEX = json.loads((REFUSALS / "index.json").read_text(encoding="utf-8"))
ENTRIES = {entry["name"]: entry for entry in INDEX["refusals"]}


def assemble(entry: dict, out: Path) -> Path:
    """The bundle a fixture stands for: base, the fixture's files over it, its removed files gone."""
    shutil.copytree(REFUSALS / INDEX["base"], out)
    for name in entry["files"]:
        shutil.copyfile(REFUSALS / entry["name"] / name, out / name)
    for name in entry["removed"]:
        (out / name).unlink()
    return out


def test_the_base_opens_and_recommends():
    """Only a fixture's edit can refuse it: the bundle they all edit is valid."""
    with Recommender.open(REFUSALS / INDEX["base"], backend="onnx") as rec:
        rec.record("u", rec.catalog.item_id(3), "finish")  # a history: the user encoder runs
        assert len(rec.recommend("u", k=5)) == 5


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_a_refusal_fixture_is_refused_on_open(tmp_path, name):
    entry = ENTRIES[name]
    bundle = assemble(entry, tmp_path / name)
    with pytest.raises(errors.EdgerecError) as caught:
        with Recommender.open(bundle, backend="onnx"):
            pass
    assert type(caught.value) is getattr(errors, entry["error"]), caught.value
    assert str(caught.value).startswith(entry["message"]), str(caught.value)
    assert str(tmp_path) not in str(caught.value)  # never a host path


def test_the_index_describes_the_folder():
    """Each fixture's folder holds exactly the files the index lists; every folder is a fixture or the base;
    the index follows its schema and records the manifest schema the fixtures were made with."""
    import hashlib

    schema = json.loads((ROOT / "spec" / "refusals.schema.json").read_text(encoding="utf-8"))
    assert validate(INDEX, schema) == []
    manifest_schema = (ROOT / "spec" / "manifest.schema.json").read_bytes()
    assert INDEX["schema_sha256"] == hashlib.sha256(manifest_schema).hexdigest(), (
        "spec/manifest.schema.json changed: run `python -m edgerec.export.golden_refusals` and commit spec/golden")
    assert {p.name for p in REFUSALS.iterdir() if p.is_dir()} == {INDEX["base"], *ENTRIES}
    base = {p.relative_to(REFUSALS / INDEX["base"]).as_posix() for p in (REFUSALS / INDEX["base"]).rglob("*")
            if p.is_file()}
    for name, entry in ENTRIES.items():
        held = sorted(p.relative_to(REFUSALS / name).as_posix() for p in (REFUSALS / name).rglob("*") if p.is_file())
        assert held == entry["files"] and "manifest.json" in held, name
        assert set(entry["removed"]) <= base, name


def test_the_fixtures_cover_every_rule_of_opening():
    """Spec §1's rules 1 to 8 and the .npy layout each have a fixture, and no two fixtures are alike."""
    assert {e["rule"] for e in ENTRIES.values()} == {"1", "2", "3", "4", "5", "6", "7", "8", "arrays"}
    assert len(ENTRIES) >= 30
    made = {json.dumps([(REFUSALS / n / f).read_bytes().hex() for f in e["files"]] + e["removed"])
            for n, e in ENTRIES.items()}
    assert len(made) == len(ENTRIES)  # every fixture is its own edit
    total = sum(p.stat().st_size for p in REFUSALS.rglob("*") if p.is_file())
    assert total < 300_000  # base's files are stored once


def test_a_fixture_whose_edit_is_undone_opens(tmp_path):
    """The comparison is not vacuous: the assembled bundle without the fixture's files is base, which opens;
    with them, it is refused (here the changed popularity column)."""
    entry = ENTRIES["file_changed"]
    bundle = assemble({**entry, "files": [], "removed": []}, tmp_path / "undone")
    with Recommender.open(bundle, backend="onnx") as rec:
        assert rec.catalog.base_count == 56
    with pytest.raises(errors.BundleError, match="^bundle file items/popularity.npy fails its sha256 check"):
        Recommender.open(assemble(entry, tmp_path / "edited"), backend="onnx")
