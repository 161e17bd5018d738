"""Audit M4 (runtime/reference.py, runtime/update.py): the bundle set its own conformance tolerance, so
`cosine_min: -1, top_k_agreement: 0` (schema-valid) passed random reference outputs and the update gate
served them; and the reference's k and shapes were not checked (a top-k cut to 1 column with k 10, a
reference of one user). Now the runtime owns a floor the manifest may tighten, never loosen, and the
reference arrays must match k, their user count and (users, dim)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from bundle_edit import replace_array, rewrite

from edgerec.errors import BundleError, EdgerecError
from edgerec.runtime import Recommender, reference
from edgerec.runtime.bundle import Bundle

GOLDEN = Path(__file__).resolve().parents[2] / "spec" / "golden"
LOOSEST = {"cosine_min": -1, "top_k_agreement": 0}  # the schema's own bounds


def _random_references(root: Path, tolerance: dict | None = LOOSEST, seed: int = 0) -> Path:
    """The bundle at `root` with random reference vectors and top-k lists (checksums made consistent)."""
    rng = np.random.default_rng(seed)
    vectors = np.load(root / "reference/user_vectors.npy")
    top = np.load(root / "reference/top_k.npy")
    count = Bundle.open(root).manifest.items.count
    np.save(root / "reference/user_vectors.npy", rng.standard_normal(vectors.shape).astype(np.float32))
    np.save(root / "reference/top_k.npy", np.stack([rng.permutation(count)[: top.shape[1]] for _ in top]).astype(np.int64))

    def change(data):
        if tolerance is None:
            data["reference"].pop("tolerance", None)
        else:
            data["reference"]["tolerance"] = tolerance

    rewrite(root, change)
    return root


def test_random_references_with_the_loosest_tolerance_fail_at_the_runtimes_floor(bundle_copy):
    report = reference.check_references(_random_references(bundle_copy), formats=["onnx"])
    assert report["passed"] is False and report["models"][0]["passed"] is False
    assert report["tolerance"] == {"cosine_min": 0.9, "top_k_agreement": 0.5} == reference.TOLERANCE_FLOOR
    assert report["tolerance_source"] == "floor" and report["tolerance_declared"] == LOOSEST
    assert report["tolerance_floor"] == reference.TOLERANCE_FLOOR
    assert "raised cosine_min -1 to 0.9, top_k_agreement 0 to 0.5" in report["tolerance_rule"]
    assert "never loosen" in report["tolerance_rule"]


def test_the_floor_only_raises_what_is_looser_and_a_stricter_tolerance_is_the_bundles(bundle_copy):
    rewrite(bundle_copy, lambda d: d["reference"].update(tolerance={"cosine_min": 0.5, "top_k_agreement": 0.9}))
    report = reference.check_references(bundle_copy, formats=["onnx"])  # genuine outputs: still passes
    assert report["passed"] is True and report["tolerance"] == {"cosine_min": 0.9, "top_k_agreement": 0.9}
    assert report["tolerance_source"] == "floor" and "raised cosine_min 0.5 to 0.9" in report["tolerance_rule"]
    assert "top_k_agreement 0.9" not in report["tolerance_rule"]
    rewrite(bundle_copy, lambda d: d["reference"].update(tolerance={"cosine_min": 0.99, "top_k_agreement": 0.9}))
    report = reference.check_references(bundle_copy, formats=["onnx"])
    assert report["tolerance"] == {"cosine_min": 0.99, "top_k_agreement": 0.9} and report["tolerance_source"] == "bundle"
    assert report["tolerance_rule"].startswith("the bundle's own tolerance")
    rewrite(bundle_copy, lambda d: d["reference"].pop("tolerance"))
    report = reference.check_references(bundle_copy, formats=["onnx"])
    assert report["tolerance"] == reference.DEFAULT_TOLERANCE and report["tolerance_source"] == "default"
    assert report["tolerance_declared"] is None


def test_every_golden_reference_passes_under_its_own_tolerance_above_the_floor():
    for name in ("bundle", "content", "text"):
        bundle = Bundle.open(GOLDEN / name)
        declared = bundle.manifest.reference["tolerance"]
        assert all(declared[k] >= reference.TOLERANCE_FLOOR[k] for k in declared)
        assert len(np.load(GOLDEN / name / "reference/histories.npy")) >= reference.MIN_REFERENCE_USERS
        report = reference.check_references(bundle, formats=["onnx"])
        assert report["passed"] is True and report["tolerance_source"] == "bundle", name


@pytest.mark.parametrize("tolerance", [LOOSEST, None])
def test_an_update_with_random_references_is_rejected_whatever_its_tolerance(golden_bundle, tmp_path, tolerance):
    update = _random_references(Path(shutil.copytree(golden_bundle, tmp_path / "update")), tolerance)
    with Recommender.open(update, fallback=golden_bundle, backend="onnx") as rec:
        assert rec.bundle.root == golden_bundle and not rec.update.accepted and rec.update.rejected == "update"
        assert "does not reproduce the bundle's reference outputs" in rec.update.reason
        if tolerance is not None:
            assert "tolerance {'cosine_min': 0.9, 'top_k_agreement': 0.5}, the runtime's floor" in rec.update.reason
        else:
            assert "tolerance {'cosine_min': 0.98, 'top_k_agreement': 0.8})" in rec.update.reason


REFUSED = [  # (file, change, words of the refusal)
    ("top_k", lambda a: a[:, :1], "reference/top_k.npy holds top-k rows of width 1; the reference's k is 5"),
    ("top_k", lambda a: np.concatenate([a, a[:, :1]], axis=1), "holds top-k rows of width 6; the reference's k is 5"),
    ("user_vectors", lambda a: a[:, :3], "reference/user_vectors.npy gives vectors of shape (8, 3); expected (8, 8)"),
    ("user_vectors", lambda a: np.concatenate([a, a], axis=1), "gives vectors of shape (8, 16); expected (8, 8)"),
]


@pytest.mark.parametrize("name, change, words", REFUSED)
def test_reference_arrays_of_the_wrong_width_are_refused_before_any_engine_runs(bundle_copy, name, change, words):
    replace_array(bundle_copy, f"reference/{name}.npy", change(np.load(bundle_copy / f"reference/{name}.npy")))
    for formats in (["onnx"], ["none"]):  # refused even where no engine of the bundle runs
        with pytest.raises(BundleError) as refused:
            reference.check_references(bundle_copy, formats=formats)
        assert words in str(refused.value) and str(refused.value).endswith("; re-export the bundle")
        assert isinstance(refused.value, EdgerecError)


@pytest.mark.parametrize("k", [10, 1])
def test_a_k_that_is_not_the_width_of_the_top_k_is_refused(bundle_copy, k):
    rewrite(bundle_copy, lambda d: d["reference"].update(k=k))
    with pytest.raises(BundleError, match=rf"holds top-k rows of width 5; the reference's k is {k} \(of 56 items\); re-"):
        reference.check_references(bundle_copy, formats=["onnx"])


def test_a_catalog_smaller_than_k_has_every_item_in_its_reference_top_k(bundle_copy):
    """The exporter writes min(k, items) columns (export/parity.py top_k_rows): a custom model over fewer than its
    k items was refused on every device."""
    rewrite(bundle_copy, lambda d: d["reference"].update(k=100))
    top = np.load(bundle_copy / "reference/top_k.npy")
    rest = [np.concatenate([row, np.setdiff1d(np.arange(56), row)]) for row in top]
    replace_array(bundle_copy, "reference/top_k.npy", np.stack(rest).astype(top.dtype))
    assert reference.check_references(bundle_copy, formats=["onnx"])["passed"] is True


@pytest.mark.parametrize("users", [1, 7])  # 7: one fewer than MIN_REFERENCE_USERS (8)
def test_a_reference_of_too_few_users_is_refused(bundle_copy, users):
    for name in ("histories", "user_vectors", "top_k"):
        replace_array(bundle_copy, f"reference/{name}.npy", np.load(bundle_copy / f"reference/{name}.npy")[:users])
    with pytest.raises(BundleError) as refused:
        reference.check_references(bundle_copy, formats=["onnx"])
    assert str(refused.value) == (f"its reference file reference/histories.npy holds {users} reference histories; a "
                                  "conformance check needs at least 8 users to tell a "
                                  "reproduced encoder from chance; re-export the bundle")


def test_an_update_with_a_cut_reference_is_rejected_with_the_reason(golden_bundle, tmp_path):
    update = Path(shutil.copytree(golden_bundle, tmp_path / "update"))
    replace_array(update, "reference/top_k.npy", np.load(update / "reference/top_k.npy")[:, :1])
    with Recommender.open(update, fallback=golden_bundle, backend="onnx") as rec:
        assert not rec.update.accepted and "holds top-k rows of width 1; the reference's k is 5" in rec.update.reason


def test_a_tolerance_that_is_not_a_number_is_a_bundle_error(golden_bundle):
    section = dict(Bundle.open(golden_bundle).manifest.reference)
    bundle = Bundle.open(golden_bundle)
    object.__setattr__(bundle.manifest, "reference", {**section, "tolerance": {"cosine_min": "high",
                                                                               "top_k_agreement": 0.8}})
    with pytest.raises(BundleError, match=r"tolerance's cosine_min is 'high', not a number; re-export the bundle"):
        reference.check_references(bundle, formats=["onnx"])


def test_the_spec_states_the_runtimes_floor_and_minimum():
    """spec §1a is what a second runtime implements: its numbers are the runtime's."""
    text = (GOLDEN.parent / "README.md").read_text(encoding="utf-8")
    section = " ".join(text[text.index("\n## 1a. "):text.index("\n## 2. ")].split())
    floor = reference.TOLERANCE_FLOOR
    assert (f"the runtime's **floor**: `cosine_min` {floor['cosine_min']:g}, `top_k_agreement` "
            f"{floor['top_k_agreement']:g}") in section
    assert f"`n` is at least **{reference.MIN_REFERENCE_USERS}**" in section
    default = reference.DEFAULT_TOLERANCE
    assert f"without `tolerance` gets {default['cosine_min']:g} and {default['top_k_agreement']:g}" in section
    assert "Every runtime MUST apply this floor" in section
