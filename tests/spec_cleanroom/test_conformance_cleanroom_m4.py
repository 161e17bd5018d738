"""Spec §1a (conformance: the reference outputs) implemented from the text alone, with the clean-room
reader's bundle (reader.py) and numpy: a second runtime applies the same shapes, figures and floor as
the reference runtime. Audit M4: the bundle's own `tolerance` of -1 / 0 passed random outputs, and a
top-k cut to one column or a reference of one user passed. Never imports edgerec."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("spec_cleanroom_reader", Path(__file__).with_name("reader.py"))
reader = importlib.util.module_from_spec(_spec)  # loaded by path: the reader is no package
_spec.loader.exec_module(reader)

GOLDEN = reader.SPEC / "golden"
FLOOR = {"cosine_min": 0.9, "top_k_agreement": 0.5}  # §1a rule 3
DEFAULT = {"cosine_min": 0.98, "top_k_agreement": 0.8}
MIN_USERS = 8  # §1a rule 1


def conformance(b) -> dict:
    """§1a for the reader's engine (ONNX): shapes (rule 1), figures (rule 2), tolerance (rule 3)."""
    ref = b.manifest.get("reference")
    if not ref:
        return {"passed": False}
    histories, vectors, top = (np.load(b.root / ref[key], allow_pickle=False)
                               for key in ("histories", "user_vectors", "top_k"))
    n = len(histories)
    if histories.ndim != 2 or histories.dtype.kind not in "iu" or histories.min() < 0 or histories.max() > b.count:
        raise reader.SpecError("reference histories: not model rows (§1a rule 1)")
    if vectors.shape != (n, b.dim) or vectors.dtype.kind != "f" or not np.isfinite(vectors).all():
        raise reader.SpecError("reference user_vectors: not (n, dim) finite floats (§1a rule 1)")
    k = ref["k"]
    if top.shape != (n, k) or top.dtype.kind not in "iu" or top.min() < 0 or top.max() >= b.count:
        raise reader.SpecError("reference top_k: not (n, k) item rows (§1a rule 1)")
    if n < MIN_USERS:
        raise reader.SpecError("reference: fewer than 8 users (§1a rule 1)")
    got = b.session.run(None, {b.input_name: histories.astype(np.int64)})[0].astype(np.float32)
    norms = np.linalg.norm(got, axis=1) * np.linalg.norm(vectors, axis=1)
    cos = np.where(norms <= 1e-12, 1.0, (got * vectors).sum(1) / np.maximum(norms, 1e-12))
    scores = (got @ b.vectors.T).astype(np.float32)
    for r, h in enumerate(histories):
        scores[r, h[h > 0] - 1] = -np.inf
    mine = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    agreement = float(np.mean([len(set(a) & set(t)) / k for a, t in zip(mine.tolist(), top.tolist())]))
    declared = ref.get("tolerance")
    tolerance = {key: max(declared[key], FLOOR[key]) for key in FLOOR} if declared else dict(DEFAULT)
    return {"passed": bool(cos.min() >= tolerance["cosine_min"] and agreement >= tolerance["top_k_agreement"]),
            "cosine_min": float(cos.min()), "top_k_agreement": agreement, "tolerance": tolerance}


def _copy(tmp_path: Path, change_arrays, tolerance=None) -> Path:
    """The golden bundle with reference arrays replaced (their `files` entries made consistent)."""
    root = Path(shutil.copytree(GOLDEN / "bundle", tmp_path / "bundle"))
    m = json.loads((root / "manifest.json").read_text())
    for key, array in change_arrays(root).items():
        name = m["reference"][key]
        np.save(root / name, array)
        data = (root / name).read_bytes()
        m["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if tolerance is not None:
        m["reference"]["tolerance"] = tolerance
    (root / "manifest.json").write_text(json.dumps(m))
    return root


@pytest.mark.parametrize("name", ["bundle", "content", "text"])
def test_every_golden_reference_conforms_under_its_own_tolerance(name):
    report = conformance(reader.Bundle(GOLDEN / name))
    assert report["passed"] is True and report["cosine_min"] > 0.999 and report["top_k_agreement"] == 1.0


def test_random_outputs_with_the_schemas_loosest_tolerance_fail_at_the_floor(tmp_path):
    rng = np.random.default_rng(0)

    def randomised(root):
        vectors = np.load(root / "reference/user_vectors.npy")
        top = np.load(root / "reference/top_k.npy")
        return {"user_vectors": rng.standard_normal(vectors.shape).astype(np.float32),
                "top_k": np.stack([rng.permutation(56)[: top.shape[1]] for _ in top]).astype(np.int64)}

    report = conformance(reader.Bundle(_copy(tmp_path, randomised, {"cosine_min": -1, "top_k_agreement": 0})))
    assert report["passed"] is False and report["tolerance"] == FLOOR


@pytest.mark.parametrize("change", [
    lambda root: {"top_k": np.load(root / "reference/top_k.npy")[:, :1]},  # k says 5
    lambda root: {"user_vectors": np.load(root / "reference/user_vectors.npy")[:, :3]},  # dim is 8
    lambda root: {key: np.load(root / f"reference/{file}.npy")[:1] for key, file in
                  (("histories", "histories"), ("user_vectors", "user_vectors"), ("top_k", "top_k"))},  # 1 user
])
def test_references_of_the_wrong_shape_or_too_few_users_are_refused(tmp_path, change):
    with pytest.raises(reader.SpecError, match=r"§1a rule 1"):
        conformance(reader.Bundle(_copy(tmp_path, change)))
