"""Conformance: the device reproduces the bundle's reference outputs and top-k within tolerance."""

from __future__ import annotations

import numpy as np

from edgerec.runtime.backends import available_backends, open_model
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.encoder import UserEncoder


def check_conformance(bundle: Bundle | str, formats: list[str] | None = None) -> dict:
    """Run every user encoder this device can run on the reference histories; compare with the bundle."""
    bundle = Bundle.open(bundle) if not isinstance(bundle, Bundle) else bundle
    ref = bundle.manifest.reference
    if not ref:
        return {"passed": False, "reason": "the bundle carries no reference outputs", "models": []}
    histories = np.asarray(bundle.array(ref["histories"]))
    expected = np.asarray(bundle.array(ref["user_vectors"]))
    expected_top = np.asarray(bundle.array(ref["top_k"]))
    tolerance = ref.get("tolerance", {"cosine_min": 0.98, "top_k_agreement": 0.8})
    catalog = ItemCatalog(bundle)
    table = catalog.vectors(np.arange(catalog.base_count))
    engines = formats or available_backends()
    reports = []
    for entry in bundle.manifest.models:
        if entry.role != "user_encoder" or entry.format not in engines:
            continue
        encoder = UserEncoder(open_model(bundle.path(entry.file), entry), entry, histories.shape[1])
        got = encoder.encode_rows(histories)
        cos = (got * expected).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1) + 1e-12)
        scores = got @ table.T
        for row, hist in enumerate(histories):
            scores[row, hist[hist > 0] - 1] = -np.inf
        k = expected_top.shape[1]
        top = np.argsort(-scores, axis=1)[:, :k]
        agreement = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top, expected_top)]))
        passed = bool(cos.min() >= tolerance["cosine_min"] and agreement >= tolerance["top_k_agreement"])
        reports.append({"file": entry.file, "format": entry.format, "cosine_min": float(cos.min()),
                        "cosine_mean": float(cos.mean()), "top_k_agreement": agreement, "passed": passed})
    return {"passed": bool(reports) and all(r["passed"] for r in reports), "tolerance": tolerance,
            "models": reports, "engines": engines}
