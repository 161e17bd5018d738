"""Every golden case played through the clean-room reader (reader.py, written from spec/README.md
alone): if the text and the cases drift apart, or the text stops being enough to implement, this
fails. The reader never imports edgerec; this test does not either."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("spec_cleanroom_reader", Path(__file__).with_name("reader.py"))
reader = importlib.util.module_from_spec(_spec)  # loaded by path: the reader is no package
_spec.loader.exec_module(reader)

GOLDEN = reader.SPEC / "golden"
CASES = sorted((GOLDEN / "cases").glob("*.json"))


@pytest.fixture(scope="module")
def bundles() -> dict[str, reader.Bundle]:
    """Every bundle of the index (the golden one, and the ranked one with a ranker and a scorer)."""
    return {name: reader.Bundle(GOLDEN / name) for name in json.loads((GOLDEN / "index.json").read_text())["bundles"]}


@pytest.fixture(scope="module")
def bundle(bundles) -> reader.Bundle:
    return bundles["bundle"]


def label_differences(got: dict, expected: dict, tolerance: float) -> list[str]:
    """What differs between a tag step's {"labels", "tags"} and the expected one: each set's label,
    the tags in order, then each tag's score (within tolerance)."""
    if got["labels"] != expected["labels"]:
        return [f"labels {got['labels']} != {expected['labels']}"]
    names = [t["tag"] for t in got["tags"]], [t["tag"] for t in expected["tags"]]
    if names[0] != names[1]:
        return [f"tags {names[0]} != {names[1]}"]
    return [f"{e['tag']}: score {g['score']:.6f} != {e['score']:.6f}" for g, e in zip(got["tags"], expected["tags"])
            if not abs(g["score"] - e["score"]) <= tolerance]


def differences(got: list[dict] | dict, expected: list[dict] | dict, tolerance: float) -> list[str]:
    """What differs between a returned list and an expected one: ids in order, then per item the
    score (within tolerance), reason, reason item and matched tags (a tag step: label_differences)."""
    if isinstance(expected, dict):
        return label_differences(got, expected, tolerance)
    ids = [g["item_id"] for g in got], [e["item_id"] for e in expected]
    if ids[0] != ids[1]:
        return [f"ids {ids[0]} != {ids[1]}"]
    out = []
    for g, e in zip(got, expected):
        if abs(g["score"] - e["score"]) > tolerance:
            out.append(f"{e['item_id']}: score {g['score']:.6f} != {e['score']:.6f}")
        if ("scorer_score" in e or "scorer_score" in g) and not abs(
                g.get("scorer_score", math.inf) - e.get("scorer_score", -math.inf)) <= tolerance:
            out.append(f"{e['item_id']}: scorer_score {g.get('scorer_score')} != {e.get('scorer_score')}")
        for key in ("reason", "reason_item", "tags"):
            if g[key] != e.get(key):
                out.append(f"{e['item_id']}: {key} {g[key]!r} != {e.get(key)!r}")
    return out


def play_all(bundle: reader.Bundle, case: dict) -> list[str]:
    tolerance = case.get("tolerance", {}).get("score", 1e-4)
    problems = []
    for number, got, expected in reader.play(reader.Runtime(bundle), case):
        problems += [f"step {number}: {p}" for p in differences(got, expected, tolerance)]
    return problems


def test_the_index_lists_every_case_file():
    index = json.loads((GOLDEN / "index.json").read_text())
    assert sorted(index["cases"]) == sorted(p.stem for p in CASES)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_the_text_alone_plays_the_case(bundles, path):
    case = json.loads(path.read_text())
    assert play_all(bundles[case.get("bundle", "bundle")], case) == []


def test_the_ranked_case_is_played_by_the_ranker_and_the_scorer(bundles):
    """The ranked bundle's case exercises both models: without them the reader fails it."""
    case = json.loads((GOLDEN / "cases" / "ranker_and_scorer.json").read_text())
    ranked = bundles["ranked"]
    assert ranked.ranker is not None and ranked.scorer is not None
    saved = ranked.ranker, ranked.scorer
    try:
        ranked.ranker = None
        assert any("ids" in p or "score" in p for p in play_all(ranked, case))
        ranked.ranker, ranked.scorer = saved[0], None
        assert any("scorer" in p or "ids" in p for p in play_all(ranked, case))
    finally:
        ranked.ranker, ranked.scorer = saved


def _ranked_with(tmp_path: Path, edit) -> Path:
    root = Path(shutil.copytree(GOLDEN / "ranked", tmp_path / "ranked"))
    manifest = json.loads((root / "manifest.json").read_text())
    edit(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _ranker(manifest: dict) -> dict:
    return next(m for m in manifest["models"] if m["role"] == "ranker")


@pytest.mark.parametrize("edit, rule", [
    (lambda m: _ranker(m)["extra"].update(features_version=2), "Ranker"),
    (lambda m: _ranker(m)["inputs"][0].update(shape=["candidates", 29]), "Ranker"),
    (lambda m: m["ranking"]["scorer"].pop("version"), "Scorer"),
    (lambda m: m["ranking"]["scorer"]["features"].reverse(), "Scorer")],
    ids=["ranker version", "ranker width", "scorer version absent", "scorer names"])
def test_a_ranker_or_scorer_of_other_features_is_refused(tmp_path, edit, rule):
    """§4: checked on open (the manifest is edited, the files stay: rule 4 still holds)."""
    with pytest.raises(reader.SpecError, match=rule):
        reader.Bundle(_ranked_with(tmp_path, edit))


def test_a_changed_expectation_is_caught(bundle):
    """The comparison is not vacuous: one score moved by 1e-3, or two ids swapped, is a failure."""
    case = json.loads((GOLDEN / "cases" / "boosts.json").read_text())
    step = next(s for s in case["steps"] if s["op"] == "recommend")
    moved, swapped = copy.deepcopy(case), copy.deepcopy(case)
    first = next(s for s in moved["steps"] if s["op"] == "recommend")["expected"]
    first[3]["score"] += 1e-3
    listed = next(s for s in swapped["steps"] if s["op"] == "recommend")["expected"]
    listed[0], listed[1] = listed[1], listed[0]
    assert step["expected"] and play_all(bundle, case) == []
    assert any("score" in p for p in play_all(bundle, moved))
    assert any("ids" in p for p in play_all(bundle, swapped))


def _copy(tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    shutil.copytree(GOLDEN / "bundle", out)
    return out


def test_a_changed_file_is_refused(tmp_path):
    root = _copy(tmp_path)
    column = root / "items" / "popularity.npy"
    data = bytearray(column.read_bytes())
    data[-1] ^= 1
    column.write_bytes(bytes(data))
    with pytest.raises(reader.SpecError, match="rule 4"):
        reader.Bundle(root)


def test_a_wrong_embedding_space_is_refused(tmp_path):
    root = _copy(tmp_path)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["embedding_space"] = "0" * 24
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(reader.SpecError, match="rule 6"):
        reader.Bundle(root)


def test_the_compressed_columns_read_as_text(bundle):
    """zlib blocks (with a preset dictionary) and tag codes (format 5) give one string per item."""
    assert len(bundle.strings["tags"]) == bundle.count == len(bundle.strings["titles"])
    assert all(bundle.strings["tags"]) and bundle.strings["ids"][:2] == ["i00", "i01"]
    assert np.isfinite(bundle.vectors).all()


REFUSALS = GOLDEN / "refusals"
REFUSAL_INDEX = json.loads((REFUSALS / "index.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("entry", REFUSAL_INDEX["refusals"], ids=lambda e: e["name"])
def test_the_text_alone_refuses_every_refusal_fixture(tmp_path, entry):
    """§9's refusal fixtures as a second runtime uses them: base with the fixture's files put over it and its
    removed files gone is refused, by the rule the index names (the reader tags each refusal with its rule)."""
    root = tmp_path / entry["name"]
    shutil.copytree(REFUSALS / REFUSAL_INDEX["base"], root)
    for name in entry["files"]:
        shutil.copyfile(REFUSALS / entry["name"] / name, root / name)
    for name in entry["removed"]:
        (root / name).unlink()
    rule = "(§1 arrays)" if entry["rule"] == "arrays" else f"(rule {entry['rule']})"
    with pytest.raises(reader.SpecError) as caught:
        reader.Bundle(root)
    assert str(caught.value).endswith(rule), str(caught.value)


def test_the_refusal_base_opens():
    assert reader.Bundle(REFUSALS / REFUSAL_INDEX["base"]).count == 56


def test_a_changed_label_is_caught(bundles):
    """Tag steps (§7b) are compared too: a tag score moved by 1e-3, a set's label or the tags' order
    changed is a failure."""
    case = json.loads((GOLDEN / "cases" / "content_encoder.json").read_text())
    text = bundles[case["bundle"]]
    assert play_all(text, case) == []
    for edit in (lambda e: e["tags"][1].update(score=e["tags"][1]["score"] + 1e-3),
                 lambda e: e["labels"].update(genre="jazz"),
                 lambda e: e["tags"].reverse()):
        changed = copy.deepcopy(case)
        edit(next(s for s in changed["steps"] if s["op"] == "tag")["expected"])
        assert play_all(text, changed), "a changed tag step passed"
