"""Guards of the bundle's reference check (runtime/reference.py, note 25): the conformance gate a device
and a bundle update pass. Each figure is recomputed here from the golden bundle's arrays with numpy."""

from __future__ import annotations

import re

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime import reference
from edgerec.runtime.backends import available_backends
from edgerec.runtime.bundle import Bundle


def opened(golden_bundle, **arrays) -> Bundle:
    """The golden bundle with some reference arrays replaced in memory (the files keep their checksums)."""
    bundle = Bundle.open(golden_bundle)
    real = bundle.array
    names = {"histories": "reference/histories.npy", "user_vectors": "reference/user_vectors.npy",
             "top_k": "reference/top_k.npy"}
    swapped = {names[key]: value for key, value in arrays.items()}
    bundle.array = lambda name, **kw: swapped[name] if name in swapped else real(name, **kw)
    return bundle


def with_reference(bundle: Bundle, section) -> Bundle:
    object.__setattr__(bundle.manifest, "reference", section)
    return bundle


def by_hand_top(bundle: Bundle, users: np.ndarray, histories: np.ndarray, k: int) -> np.ndarray:
    from edgerec.runtime.catalog import ItemCatalog

    catalog = ItemCatalog(bundle)
    scores = users @ catalog.vectors(np.arange(catalog.base_count)).T
    for r, hist in enumerate(histories):
        scores[r, hist[hist > 0] - 1] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_the_golden_bundle_passes_on_every_engine_with_its_figures(golden_bundle):
    report = reference.check_references(str(golden_bundle))
    assert report["passed"] is True and report["engines"] == available_backends()
    assert report["tolerance"] == {"cosine_min": 0.98, "top_k_agreement": 0.8}
    assert [(m["file"], m["format"]) for m in report["models"]] == [
        (e.file, e.format) for e in Bundle.open(golden_bundle).manifest.models
        if e.role == "user_encoder" and e.format in available_backends()]
    for model in report["models"]:
        assert model["passed"] is True and model["top_k_agreement"] == 1.0
        assert 0.9999 < model["cosine_min"] <= model["cosine_mean"] <= 1.0 + 1e-6
    only = reference.check_references(Bundle.open(golden_bundle), formats=["onnx"])
    assert only["engines"] == ["onnx"] and [m["format"] for m in only["models"]] == ["onnx"]


def test_vectors_or_lists_that_differ_from_the_bundles_fail_by_their_own_margin(golden_bundle):
    bundle = Bundle.open(golden_bundle)
    expected = np.asarray(bundle.array("reference/user_vectors.npy"))
    top = np.asarray(bundle.array("reference/top_k.npy"))
    turned = expected.copy()
    turned[0] = -turned[0]  # one user's vector reversed: the minimum cosine is -1, the mean stays high
    report = reference.check_references(opened(golden_bundle, user_vectors=turned), formats=["onnx"])
    model = report["models"][0]
    assert report["passed"] is False and model["passed"] is False and model["top_k_agreement"] == 1.0
    assert model["cosine_min"] == pytest.approx(-1.0, abs=1e-4) and model["cosine_mean"] > 0.5
    shifted = np.roll(top, 1, axis=1)  # the same rows: order does not count
    assert reference.check_references(opened(golden_bundle, top_k=shifted), formats=["onnx"])["passed"] is True
    other = top.copy()
    for row in other:  # more than a fifth of every list replaced by catalog rows it did not hold
        row[: top.shape[1] // 2 + 1] = np.setdiff1d(np.arange(bundle.manifest.items.count), row)[: top.shape[1] // 2 + 1]
    report = reference.check_references(opened(golden_bundle, top_k=other), formats=["onnx"])
    agreement = np.mean([len(set(a) & set(b)) / top.shape[1] for a, b in zip(top, other)])
    assert report["passed"] is False and report["models"][0]["top_k_agreement"] == pytest.approx(agreement)


def test_the_bundles_own_tolerance_decides_and_a_bundle_without_references_does_not_pass(golden_bundle):
    section = dict(Bundle.open(golden_bundle).manifest.reference)
    strict = with_reference(Bundle.open(golden_bundle), {**section, "tolerance": {"cosine_min": 1.01,
                                                                                  "top_k_agreement": 0.0}})
    assert reference.check_references(strict, formats=["onnx"])["passed"] is False
    loose = with_reference(Bundle.open(golden_bundle), {**section, "tolerance": {"cosine_min": -1.0,
                                                                                 "top_k_agreement": 1.0}})
    assert reference.check_references(loose, formats=["onnx"])["passed"] is True  # agreement exactly 1.0 passes
    assert reference.check_references(with_reference(Bundle.open(golden_bundle), {}), formats=["onnx"]) == {
        "passed": False, "checked": False, "reason": "the bundle carries no reference outputs", "models": []}
    nothing = reference.check_references(Bundle.open(golden_bundle), formats=["none"])
    assert nothing["passed"] is False and nothing["models"] == []  # no engine ran: not a pass


@pytest.mark.parametrize("chunk", [7, 65_536])
def test_the_top_k_is_the_best_unseen_rows_in_score_order_chunk_by_chunk(golden_bundle, monkeypatch, chunk):
    monkeypatch.setattr(reference, "CHUNK_ROWS", chunk)
    bundle = Bundle.open(golden_bundle)
    from edgerec.runtime.catalog import ItemCatalog

    histories = np.asarray(bundle.array("reference/histories.npy"))
    users = np.asarray(bundle.array("reference/user_vectors.npy"))
    got = reference._top_k(users, ItemCatalog(bundle), histories, 10)
    assert got.dtype == np.int64 and got.tolist() == by_hand_top(bundle, users, histories, 10).tolist()
    seen = histories[histories > 0]
    assert not any(set(row) & set((h[h > 0] - 1).tolist()) for row, h in zip(got.tolist(), histories)) and len(seen)
    ties = np.zeros_like(users)  # every score 0: the lowest unseen rows, in order
    first = reference._top_k(ties, ItemCatalog(bundle), histories, 3)
    for row, h in zip(first.tolist(), histories):
        unseen = [r for r in range(bundle.manifest.items.count) if r not in set((h[h > 0] - 1).tolist())]
        assert row == unseen[:3]


def test_the_cosine_is_scale_free_and_the_bounds_are_inclusive(golden_bundle):
    bundle = Bundle.open(golden_bundle)
    expected = np.asarray(bundle.array("reference/user_vectors.npy"))
    half = reference.check_references(opened(golden_bundle, user_vectors=expected * 0.5), formats=["onnx"])
    assert half["passed"] is True and half["models"][0]["cosine_min"] == pytest.approx(1.0, abs=1e-4)
    measured = reference.check_references(Bundle.open(golden_bundle), formats=["onnx"])["models"][0]
    section = dict(bundle.manifest.reference)
    edge = with_reference(Bundle.open(golden_bundle), {**section, "tolerance": {
        "cosine_min": measured["cosine_min"], "top_k_agreement": measured["top_k_agreement"]}})
    assert reference.check_references(edge, formats=["onnx"])["passed"] is True  # exactly at both bounds passes


def test_without_a_tolerance_the_defaults_hold(golden_bundle):
    section = {k: v for k, v in Bundle.open(golden_bundle).manifest.reference.items() if k != "tolerance"}
    report = reference.check_references(with_reference(Bundle.open(golden_bundle), section), formats=["onnx"])
    assert report["tolerance"] == {"cosine_min": 0.98, "top_k_agreement": 0.8} and report["passed"] is True
    assert report["tolerance_floor"] == reference.TOLERANCE_FLOOR
    assert report["tolerance_rule"] == "the runtime's default: the bundle states no tolerance"


def test_a_tolerance_exactly_at_the_floor_is_the_bundles_own():
    report = reference.applied_tolerance({"tolerance": dict(reference.TOLERANCE_FLOOR)})
    assert report["tolerance_source"] == "bundle" and report["tolerance"] == reference.TOLERANCE_FLOOR
    assert report["tolerance_rule"] == "the bundle's own tolerance (at or above the runtime's floor)"


def test_a_format_asked_for_alone_is_checked_after_the_others_are_passed_over(golden_bundle):
    pytest.importorskip("ai_edge_litert", reason="the TFLite engine")
    report = reference.check_references(Bundle.open(golden_bundle), formats=["tflite"])
    assert [m["format"] for m in report["models"]] == ["tflite"] and report["passed"] is True


def test_lists_of_other_rows_agree_on_nothing(golden_bundle):
    """The agreement is over each user's k best rows, not every row: the expected lists made of each user's
    lowest-scoring unseen rows share none of them."""
    bundle = Bundle.open(golden_bundle)
    histories = np.asarray(bundle.array("reference/histories.npy"))
    users = np.asarray(bundle.array("reference/user_vectors.npy"))
    k = np.asarray(bundle.array("reference/top_k.npy")).shape[1]
    worst = np.array([row[::-1] for row in by_hand_top(bundle, -users, histories, k)])  # lowest scores
    report = reference.check_references(opened(golden_bundle, top_k=worst), formats=["onnx"])
    assert report["models"][0]["top_k_agreement"] == 0.0 and report["passed"] is False


def test_ties_go_to_the_lowest_row_as_the_exporter_breaks_them():
    """int8 tables make equal scores common; the lists must not depend on the sort's luck."""
    from types import SimpleNamespace

    rng = np.random.default_rng(3)
    table = rng.integers(-2, 3, (500, 4)).astype(np.float32)  # few distinct scores: large groups of ties
    catalog = SimpleNamespace(base_count=len(table), vectors=lambda rows: table[rows])
    users = rng.integers(-1, 2, (6, 4)).astype(np.float32)
    histories = np.zeros((6, 5), np.int64)
    got = reference._top_k(users, catalog, histories, 40)
    scores = users @ table.T
    assert got.tolist() == np.argsort(-scores, axis=1, kind="stable")[:, :40].tolist()


def test_a_user_vector_zero_in_the_bundle_and_here_is_a_match():
    """An own model whose history of items without vectors gives a zero vector: the bundle's reference and the
    device agree exactly, and the check called it cosine 0 (the export's own bundle failed its gate)."""
    got = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    expected = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [-1.0, -1.0]])
    assert reference.row_cosines(got, expected).tolist() == pytest.approx([1.0, 1.0, 0.0, -1.0])


def _golden_arrays(golden_bundle) -> dict:
    bundle = Bundle.open(golden_bundle)
    return {key: np.asarray(bundle.array(f"reference/{key}.npy")) for key in ("histories", "user_vectors", "top_k")}


def _edits(arrays: dict, count: int) -> dict:
    """Reference arrays each wrong in one way, with the file and the words the refusal must name."""
    hist, vec, top = arrays["histories"], arrays["user_vectors"], arrays["top_k"]
    nan = vec.copy()
    nan[2, 0] = np.nan
    negative, past = hist.copy(), hist.copy()
    negative[0, -1], past[0, -1] = -1, count + 1
    outside = top.copy()
    outside[1, 0] = count
    return {
        "float histories": ({"histories": hist.astype(np.float32)}, "histories.npy", "array of whole numbers"),
        "whole-number vectors": ({"user_vectors": vec.astype(np.int64)}, "user_vectors.npy", "array of floats"),
        "float top-k": ({"top_k": top.astype(np.float64)}, "top_k.npy", "array of whole numbers"),
        "no histories": ({"histories": hist[:0]}, "histories.npy", "non-empty 2-D array"),
        "a vector short": ({"user_vectors": vec[:-1]}, "histories.npy",
                           f"holds {len(hist)} histories for {len(hist) - 1} user vectors"),
        "a row below 0": ({"histories": negative}, "histories.npy", f"model rows outside 0..{count} "),
        "a row past the catalog": ({"histories": past}, "histories.npy", f"model rows outside 0..{count} "),
        "a top-k row past the catalog": ({"top_k": outside}, "top_k.npy", f"item rows outside 0..{count - 1};"),
        "a NaN vector": ({"user_vectors": nan}, "user_vectors.npy", "holds NaN or infinite values"),
    }


@pytest.mark.parametrize("case", ["float histories", "whole-number vectors", "float top-k", "no histories",
                                  "a vector short", "a row below 0", "a row past the catalog",
                                  "a top-k row past the catalog", "a NaN vector"])
def test_each_wrong_reference_array_is_refused_naming_its_file_and_fault(golden_bundle, case):
    count = Bundle.open(golden_bundle).manifest.items.count
    arrays, file, words = _edits(_golden_arrays(golden_bundle), count)[case]
    with pytest.raises(BundleError) as refused:
        reference.check_references(opened(golden_bundle, **arrays), formats=["onnx"])
    message = str(refused.value)
    assert f"reference/{file} " in message and words in message and message.endswith("re-export the bundle")


def test_the_last_items_model_row_is_a_history_row_not_a_fault(golden_bundle):
    """Model rows are item row + 1, so the catalog's size names its last item and is accepted."""
    count = Bundle.open(golden_bundle).manifest.items.count
    hist = _golden_arrays(golden_bundle)["histories"].copy()
    hist[0, -1] = count
    report = reference.check_references(opened(golden_bundle, histories=hist), formats=["onnx"])
    assert [m["format"] for m in report["models"]] == ["onnx"]


@pytest.mark.parametrize("k", [0, -3, True, "5", 2.0])
def test_a_reference_k_that_is_not_a_positive_whole_number_is_refused(golden_bundle, k):
    section = dict(Bundle.open(golden_bundle).manifest.reference)
    with pytest.raises(BundleError, match=rf"its reference's k is {re.escape(repr(k))}, not a whole number >= 1 "
                                          r"\(the width of reference/top_k.npy\); re-export the bundle"):
        reference.check_references(with_reference(Bundle.open(golden_bundle), {**section, "k": k}), formats=["onnx"])


def test_a_reference_without_its_files_names_what_is_missing(golden_bundle):
    section = {key: value for key, value in Bundle.open(golden_bundle).manifest.reference.items() if key != "top_k"}
    with pytest.raises(BundleError, match="^its reference names no histories, user_vectors and top_k files; "
                                          "re-export the bundle$"):
        reference.check_references(with_reference(Bundle.open(golden_bundle), section), formats=["onnx"])
