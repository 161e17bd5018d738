"""Defects of audit L2 in the bundle contract (spec/README.md, the schema, the golden cases), fixed:

1. a categorical vocabulary naming one value twice (creator codes 3 and 4 both "Studio Lund") opened, and
   the runtime's caps grouped the two codes as one creator while a runtime grouping by code would not;
2. the text gave no default `k`, though the golden `newcomer` case relies on `defaults.k`;
3. a context prior's lift list shorter or longer than its `modalities` opened, and was cut to fit;
4. §5's freshness read §4's `age_days` (the time truncated to the hour), the runtime the exact `now`;
6. a user encoder whose input the manifest declares float32 opened and was fed int64 anyway.

(5, the refusal fixtures' count in the text, is tests/test_golden_counts_in_docs.py.) Device suite: no
torch; every bundle is a copy of the golden one with its manifest edited (no file changes, so the
checksums and the embedding space stay valid and only the edit can refuse it)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.policies import Policy
from edgerec.runtime.recommender import Recommender
from edgerec.runtime.schema import manifest_schema, validate

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "spec" / "golden"
SPEC = (ROOT / "spec" / "README.md").read_text(encoding="utf-8")
HISTORY = ("i03", "i11", "i19")


def edited(tmp_path: Path, change) -> Path:
    root = Path(shutil.copytree(GOLDEN / "bundle", tmp_path / "bundle"))
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return root


def release_times() -> np.ndarray:
    return np.asarray(ItemCatalog(Bundle.open(GOLDEN / "bundle")).numeric["release_ts"], np.int64)


def section(number: str) -> str:
    start = SPEC.index(f"\n## {number}.")
    return SPEC[start:SPEC.index("\n## ", start + 1)]


# ---------------------------------------------------------------- 1. a categorical vocabulary names each value once


def repeat_creator(m: dict) -> None:
    vocab = m["items"]["categorical"]["creator"]["vocab"]
    vocab[4] = vocab[3]


def test_a_categorical_vocabulary_naming_a_value_twice_is_refused_on_open(tmp_path):
    bundle = edited(tmp_path, repeat_creator)
    for opening in (lambda: Bundle.open(bundle), lambda: Recommender.open(bundle, backend="onnx")):
        with pytest.raises(BundleError, match=r"^manifest\.json: items\.categorical\.creator\.vocab must hold "
                                              r"distinct values \('.+' is there more than once\).*re-export"):
            opening()


def test_the_schema_and_the_text_say_a_vocabulary_names_each_value_once():
    column = manifest_schema()["$defs"]["categorical_column"]["properties"]["vocab"]
    assert column.get("uniqueItems") is True
    assert re.search(r"categorical columns int32 codes .{0,40} into a `vocab` that MUST name each\s+value once",
                     section("1"), re.S)


@pytest.mark.parametrize("values, twice", [
    (["a", "b", "a"], "a"), ([1, 1.0], 1.0), ([{"x": [1]}, {"x": [1.0]}], {"x": [1.0]}),  # the repeat is named
    (["a", "b"], None), ([True, 1], None), ([0, False, None, "0"], None), ([[1, 2], [2, 1]], None)])
def test_unique_items_follows_json_equality(values, twice):
    problems = validate(values, {"type": "array", "uniqueItems": True})
    assert [p.rule for p in problems] == ([] if twice is None else [
        f"must hold distinct values ({json.dumps(twice) if isinstance(twice, dict) else repr(twice)} is there "
        "more than once)"])
    assert validate(values, {"type": "array", "uniqueItems": False}) == []


# ---------------------------------------------------------------- 2. the default k


@pytest.mark.parametrize("k, listed", [(7, 7), (None, 10)])
def test_a_request_without_k_lists_defaults_k_else_10_as_the_text_says(tmp_path, k, listed):
    def change(m):
        m["defaults"].pop("k")
        if k is not None:
            m["defaults"]["k"] = k
    with Recommender.open(edited(tmp_path, change), backend="onnx") as rec:
        assert len(rec.recommend("u", context={"now": 1.767e9, "hour": 12.0})) == listed
    assert "| `k` (the request's) | `defaults.k`, 10 |" in section("5")


# ---------------------------------------------------------------- 3. one lift per modality name


@pytest.mark.parametrize("part, name, size", [("device", "phone", 1), ("day_part", "night", 7),
                                              ("device", "tv", 0)])
def test_a_lift_list_of_another_length_than_the_modalities_is_refused_on_open(tmp_path, part, name, size):
    def change(m):
        m["ranking"]["context_prior"][part][name] = [0.25] * size
    bundle = edited(tmp_path, change)
    said = (rf"^manifest\.json: ranking\.context_prior\.{part}\.{name} holds {size} lift\(s\); it must hold one "
            r"per name of ranking\.context_prior\.modalities \(5\).*re-export")
    for opening in (lambda: Bundle.open(bundle), lambda: Recommender.open(bundle, backend="onnx")):
        with pytest.raises(BundleError, match=said):
            opening()


def test_lift_lists_of_the_modalities_length_open_and_the_text_says_so(tmp_path):
    def change(m):  # a prior of two names (one no runtime modality): lists of two open
        m["ranking"]["context_prior"].update(modalities=["film", "karaoke"], device={"phone": [0.5, 1.0]},
                                             day_part={"night": [0.25, -0.5]})
    with Recommender.open(edited(tmp_path, change), backend="onnx") as rec:
        assert len(rec.recommend("u", k=5, context={"now": 1.767e9, "hour": 2.0, "device": "phone"})) == 5
    assert "A lift list MUST hold exactly one value per name of `context_prior.modalities`" in section("4")


# ---------------------------------------------------------------- 4. freshness reads the exact now


def test_freshness_reads_the_exact_now_and_a_golden_step_pins_it():
    assert "`age = (now - release_ts) / 86400` in days\n  from the request's exact `now`" in section("5")
    released = release_times()
    case = json.loads((GOLDEN / "cases" / "boosts.json").read_text(encoding="utf-8"))
    pinned = []
    for step in case["steps"]:
        now, policy = step.get("context", {}).get("now"), step.get("policy", {})
        if step["op"] != "recommend" or now is None or not policy.get("freshness"):
            continue
        hour = 3600 * math.floor(now / 3600)
        # an item released after the hour began and by `now`: its age is below 0 by the hour, above by now
        within = {f"i{r:02d}" for r in np.flatnonzero((released > hour) & (released <= now))}
        if now != hour and within & {item["item_id"] for item in step["expected"]}:
            fresh, days = policy["freshness"], policy.get("freshness_days", 30.0)
            row = int(released.argmax())
            by_now = fresh * math.exp(-(now - released[row]) / 86400 / days)
            by_hour = fresh * math.exp(-(hour - released[row]) / 86400 / days)
            assert abs(by_now - by_hour) > 100 * case["tolerance"]["score"]  # far past the tolerance
            pinned.append(step)
    assert pinned, "no golden step asks for freshness mid-hour, after a release within that hour"


def test_the_runtime_adds_the_freshness_of_the_exact_now(tmp_path):
    """What the golden step pins, by hand: the newest item's boost reads its age from `now`, not its hour."""
    released = release_times()
    row = int(released.argmax())
    now = float(released[row] + (3600 - released[row] % 3600) // 2)  # within the hour of the release
    context = {"now": now, "hour": 12.0}
    with Recommender.open(GOLDEN / "bundle", backend="onnx") as rec:
        for item in HISTORY:
            rec.record("u", item, "finish", timestamp=now - 100)
        base = {r.item_id: r.score for r in rec.recommend("u", k=40, context=context, policy=Policy(short_list=100))}
        on = {r.item_id: r.score for r in rec.recommend("u", k=40, context=context, policy=Policy(
            short_list=100, freshness=10.0, freshness_days=1.0))}
    item = f"i{row:02d}"
    assert on[item] - base[item] == pytest.approx(10.0 * math.exp(-(now - released[row]) / 86400), abs=1e-9)


# ---------------------------------------------------------------- 6. a user encoder's input dtype


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8", "uint8"])
def test_a_user_encoder_input_declared_other_than_int64_or_int32_is_refused_on_open(tmp_path, dtype):
    def change(m):
        m["models"][0]["inputs"][0]["dtype"] = dtype
    bundle = edited(tmp_path, change)
    assert json.loads((bundle / "manifest.json").read_text())["models"][0]["role"] == "user_encoder"
    for opening in (lambda: Bundle.open(bundle), lambda: Recommender.open(bundle, backend="onnx")):
        with pytest.raises(BundleError, match=rf"^manifest\.json: models\[0\]\.inputs\[0\]\.dtype must be 'int64' "
                                              rf"or 'int32' for a user encoder .*\(got '{dtype}'\).*re-export"):
            opening()


def test_other_roles_keep_their_float_inputs_and_the_text_names_the_rule():
    ranked = json.loads((GOLDEN / "ranked" / "manifest.json").read_text(encoding="utf-8"))
    assert any(m["role"] == "ranker" and m["inputs"][0]["dtype"] == "float32" for m in ranked["models"])
    Bundle.open(GOLDEN / "ranked")  # a ranker's float32 input is no user encoder's
    assert re.search(r"A user encoder's input is declared `int64`\s+or `int32`, nothing else", section("3"))


def test_the_ties_are_checked_on_a_manifest_without_a_ranking_section():
    """`ranking` is optional (spec rule 1): the check of its lift lists must not need it."""
    from edgerec.runtime.schema import check_manifest

    raw = json.loads((GOLDEN / "bundle" / "manifest.json").read_text(encoding="utf-8"))
    raw.pop("ranking", None)
    check_manifest(raw)
