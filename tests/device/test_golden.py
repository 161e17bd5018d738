"""The golden cases of spec/golden pass on this runtime, with every engine and scan kernel installed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from edgerec.runtime.golden import differences, load_cases, run_case
from edgerec.runtime.retrieval import available_kernels

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "spec" / "golden"
CASES = {case.name: case for case in load_cases(GOLDEN / "cases")}
KERNELS = sorted({"numpy", available_kernels()[0]})  # the portable kernel and the fastest one here


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_case(engine, kernel, name):
    case = CASES[name]
    if not case.plays_on(engine):
        pytest.skip(f"golden case {name} plays on {', '.join(case.engines)} only (its bundle has no {engine} files)")
    if _has_content_encoder(GOLDEN / case.bundle):
        pytest.importorskip("tokenizers")  # the content encoder's optional extra (the device venv has none)
    got = run_case(GOLDEN / case.bundle, case, engine, kernel)
    problems = differences(case.expected(engine), got, case.tolerance)
    assert not problems, f"golden case {name} ({engine}, {kernel} scan):\n" + "\n".join(problems)


def _has_content_encoder(bundle: Path) -> bool:
    manifest = json.loads((bundle / "manifest.json").read_text())
    return any(model["role"] == "content_encoder" for model in manifest["models"])


def test_the_cases_cover_every_step_kind_and_policy():
    """The golden set keeps covering what the device text promises (a pruned case fails here)."""
    steps = [step for case in CASES.values() for step in case.steps]
    assert {s["op"] for s in steps} == {"record", "onboard", "add_items", "remove_items", "forget", "recommend",
                                        "transfer", "tag"}
    assert {s["method"] for s in steps if s["op"] == "transfer"} == {"content", "mapping", "direct"}  # spec §8
    assert {s["event"] for s in steps if s["op"] == "record"} == {"play", "finish", "like", "skip",
                                                                   "not_interested", "more_like_this"}
    reasons = {r["reason"] for s in steps if s["op"] == "recommend" for r in s["expected"]}
    assert reasons == {"popular", "tags", "choice", "history", "series", "feedback", "scorer", "replay", "fallback"}
    policies = {key for s in steps for key in s.get("policy", {})}
    assert {"diversity", "max_per_creator", "max_per_genre", "freshness", "language_boost", "replay", "replay_gap",
            "replay_minutes", "replay_min_plays", "popularity", "keep_top", "context_weight", "cold_start_items",
            "engagement"} <= policies
    rows = json.loads((GOLDEN / "rows" / "manifest.json").read_text())["items"]["embeddings"]
    assert rows["scale_axis"] == "row" and any(case.bundle == "rows" for case in CASES.values())  # per-row scales
    filters = {key for s in steps for key in s.get("filters", {})}
    assert filters == {"languages", "modalities", "genres", "exclude_genres", "exclude_items", "kids_safe",
                       "max_duration_s"}
    assert sum(s["op"] == "recommend" for s in steps) >= 40
    ranked = [s for case in CASES.values() if case.bundle != "bundle" for s in case.steps]
    assert {"use_ranker", "use_scorer"} <= {key for s in ranked for key in s.get("policy", {})}
    assert any("scorer_score" in r for s in ranked if s["op"] == "recommend" for r in s["expected"])
    assert {s.get("context", {}).get("device") for s in ranked} >= {None, "phone", "tablet"}


def test_every_bundle_of_the_index_opens_with_its_engines():
    """The ranked bundle carries a ranker and a scorer (the spec's ranking section has cases)."""
    from edgerec.runtime.recommender import Recommender

    index = json.loads((GOLDEN / "index.json").read_text())
    assert set(index["bundles"]) == {case.bundle for case in CASES.values()}
    manifest = json.loads((GOLDEN / "ranked" / "manifest.json").read_text())
    assert [m["role"] for m in manifest["models"]] == ["user_encoder", "ranker"]
    assert manifest["ranking"]["scorer"]["version"] == 2
    with Recommender.open(GOLDEN / "ranked", backend="onnx") as rec:
        assert rec.ranker and rec.ranker[0].role == "ranker"


def test_the_format_1_bundle_gives_the_lists_of_its_format_6_twin():
    """golden/format1 is golden/rows as format 1 stored it (spec rule 1: the oldest format still read): no
    scale_axis, wide dtypes, tags as text; the same steps give the same lists, score for score."""
    import numpy as np

    manifest = json.loads((GOLDEN / "format1" / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and "scale_axis" not in manifest["items"]["embeddings"]
    assert "tags" in manifest["items"]["strings"] and "tags" not in manifest["items"]
    assert all("offsets" in column for column in manifest["items"]["strings"].values())  # no compressed blocks
    assert np.load(GOLDEN / "format1" / "items" / "genre.npy").dtype == np.int32  # wide codes, not format 3's
    twin, old = CASES["per_row_scales"], CASES["format_1"]
    assert (twin.bundle, old.bundle) == ("rows", "format1")
    assert [s for s in old.steps if s["op"] != "recommend"] == [s for s in twin.steps if s["op"] != "recommend"]
    assert old.expected("onnx") == twin.expected("onnx")


def test_a_nan_user_vector_is_the_counted_popularity_fallback():
    """Spec §3: the nan bundle's encoder returns NaN for one item's input. With it in the window the list is
    the popularity fallback (reasons `fallback`, no item, no tags; another hour and device change nothing:
    no context prior), counted; out of the window the list is personal again."""
    from edgerec.runtime.recommender import Recommender

    case = CASES["nan_user_vector"]
    lists = case.expected("onnx")
    assert [{r["reason"] for r in got} == {"fallback"} for got in lists] == [False, True, True, True, False]
    assert all(r["reason_item"] is None and r["tags"] == [] for got in lists[1:4] for r in got)
    assert lists[2] == lists[3] and lists[1] != lists[2]  # no context prior; a more_like_this still counts
    with Recommender.open(GOLDEN / case.bundle, backend="onnx") as rec:
        for step in case.steps[:case.steps.index(next(s for s in case.steps if s.get("user") == "n"
                                                             and s["op"] == "recommend"))]:
            if step["op"] == "record":
                rec.record(step["user"], step["item"], step["event"])
        assert {r.reason.kind for r in rec.recommend("n", k=5, context={"now": 1.78e9})} == {"fallback"}
        assert rec.stats()["counters"]["encode_fallback"] == 1


def test_a_wrong_expectation_is_caught(golden_bundle):
    """The comparison is not vacuous: a swapped pair, a moved score and a wrong reason all fail."""
    case = CASES["feedback"]
    got = run_case(golden_bundle, case, "onnx")
    swapped = json.loads(json.dumps(got))
    swapped[0][0], swapped[0][1] = swapped[0][1], swapped[0][0]
    assert differences(got, swapped, case.tolerance)
    moved = json.loads(json.dumps(got))
    moved[1][2]["score"] += 10 * case.tolerance
    assert differences(got, moved, case.tolerance) == [
        f"recommend #1 rank 2 ({got[1][2]['item_id']}): score {moved[1][2]['score']}, "
        f"expected {got[1][2]['score']} +- {case.tolerance}"]
    wrong = json.loads(json.dumps(got))
    wrong[2][0]["reason"] = "popular"
    assert len(differences(got, wrong, case.tolerance)) == 1


def test_the_schema_and_the_golden_cases_change_together():
    """A schema edit must come with regenerated golden cases (python -m edgerec.export.golden)."""
    index = json.loads((GOLDEN / "index.json").read_text())
    schema = hashlib.sha256((ROOT / "spec" / "manifest.schema.json").read_bytes()).hexdigest()
    assert index["schema_sha256"] == schema, (
        "spec/manifest.schema.json changed but spec/golden was not regenerated: run "
        "`python -m edgerec.export.golden --out spec/golden` and commit both")
    assert sorted(index["cases"]) == sorted(CASES)
    manifest = json.loads((GOLDEN / "bundle" / "manifest.json").read_text())
    assert manifest["format_version"] == index["format_version"]
