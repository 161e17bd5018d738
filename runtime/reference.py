"""The bundle's reference check: this device's user encoder reproduces the vectors and top-k the
exporter recorded (the conformance test of device_tests, and the gate a bundle update must pass)."""

from __future__ import annotations

import numpy as np

from edgerec.errors import BundleError
from edgerec.runtime.backends import available_backends, open_model
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.encoder import UserEncoder
from edgerec.runtime.models import model_bytes

CHUNK_ROWS = 65_536  # item rows dequantized at a time: a million-item table is never copied whole

# The loosest tolerance this runtime accepts, whatever the bundle says (spec §1a): a manifest may
# tighten it, never loosen it, else a bundle of random reference vectors and lists (`cosine_min: -1`,
# `top_k_agreement: 0`, both schema-valid) passed conformance and was served as an update.
# Below every tolerance edgerec's exporter writes: export/bundle_builder.py's reference_tolerance
# writes max(0.98, measured - 0.005) and max(0.8, ...) for every file it ships (fp32, fp16 and int8,
# ONNX and TFLite; export/custom.py writes through it too; older exporters a fixed 0.98 / 0.8), so
# the floor never decides for a genuine edgerec bundle. Above what random outputs reach: a random
# direction's cosine to a given one is >= 0.9 with probability 0.14 in 2 dimensions, 5e-4 in 8 and
# 5e-13 in 32, so over MIN_REFERENCE_USERS users all pass with probability < 2e-7 even at dim 2;
# random top-k lists share about k / (catalog - history) of their rows (0.1 for the 56-item golden
# bundle at k 5, 0.0125 for 800 items at k 10), far below half.
TOLERANCE_FLOOR = {"cosine_min": 0.9, "top_k_agreement": 0.5}
DEFAULT_TOLERANCE = {"cosine_min": 0.98, "top_k_agreement": 0.8}  # a bundle that states none
# Fewest reference users a bundle may carry: the cosine is a minimum over users and the agreement a mean,
# so one or two users prove little (see the floor's odds). The exporter writes 32 (ExportConfig's
# reference_users), the golden bundles (spec/golden/) 8, the federated world 16.
MIN_REFERENCE_USERS = 8


def applied_tolerance(ref: dict) -> dict:
    """The tolerance the check applies: the bundle's, raised to the floor where it is looser, and why."""
    declared = ref.get("tolerance")
    if not isinstance(declared, dict):
        return {"tolerance": dict(DEFAULT_TOLERANCE), "tolerance_source": "default", "tolerance_declared": None,
                "tolerance_floor": dict(TOLERANCE_FLOOR), "tolerance_rule": "the runtime's default: the bundle states no tolerance"}
    applied, raised = {}, []
    for key, floor in TOLERANCE_FLOOR.items():
        value = declared.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise BundleError(f"its reference tolerance's {key} is {value!r}, not a number; re-export the bundle")
        applied[key] = max(float(value), floor)
        if value < floor:
            raised.append(f"{key} {value:g} to {floor:g}")
    rule = ("the bundle's own tolerance (at or above the runtime's floor)" if not raised else
            f"the runtime's floor: the bundle's tolerance is looser than this runtime accepts (raised {', '.join(raised)}; "
            "a bundle may tighten the floor, never loosen it)")
    return {"tolerance": applied if raised else {k: declared[k] for k in TOLERANCE_FLOOR},
            "tolerance_source": "floor" if raised else "bundle", "tolerance_declared": dict(declared),
            "tolerance_floor": dict(TOLERANCE_FLOOR), "tolerance_rule": rule}


def check_references(bundle: Bundle | str, formats: list[str] | None = None) -> dict:
    """Run every user encoder this device can run (or those of `formats`) on the reference
    histories and compare with the bundle; the report says which passed and by what margin, and which
    tolerance applied and why (`tolerance`; `tolerance_source`: bundle, floor or default; `tolerance_declared`,
    `tolerance_floor`, `tolerance_rule` in words)."""
    bundle = Bundle.open(bundle) if not isinstance(bundle, Bundle) else bundle
    ref = bundle.manifest.reference
    if not ref:
        return {"passed": False, "checked": False, "reason": "the bundle carries no reference outputs", "models": []}
    catalog = ItemCatalog(bundle)
    histories, expected, expected_top = reference_arrays(bundle, ref, catalog.base_count)
    rules = applied_tolerance(ref)
    tolerance = rules["tolerance"]
    engines = formats or available_backends()
    reports = []
    for entry in bundle.manifest.models:
        if entry.role != "user_encoder" or entry.format not in engines:
            continue
        try:
            encoder = UserEncoder(open_model(model_bytes(bundle, entry.file), entry), entry, histories.shape[1])
            got = encoder.encode_rows(histories)
        except BundleError:
            raise
        except Exception as exc:  # noqa: BLE001 (an engine raises its own types; the caller sees a BundleError)
            raise BundleError(f"its user encoder ({entry.file}) fails on the reference histories "
                              f"({type(exc).__name__}: {str(exc)[:200]}); re-export the bundle") from None
        if got.shape != expected.shape:
            raise BundleError(f"its user encoder ({entry.file}) gives vectors of shape {got.shape} for the reference "
                              f"histories, the bundle's reference holds {expected.shape}; re-export the bundle")
        cos = row_cosines(got, expected)
        k = expected_top.shape[1]
        top = _top_k(got, catalog, histories, k)
        agreement = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top, expected_top)]))
        passed = bool(cos.min() >= tolerance["cosine_min"] and agreement >= tolerance["top_k_agreement"])
        reports.append({"file": entry.file, "format": entry.format, "cosine_min": float(cos.min()),
                        "cosine_mean": float(cos.mean()), "top_k_agreement": agreement, "passed": passed})
    return {"passed": bool(reports) and all(r["passed"] for r in reports), **rules,
            "models": reports, "engines": engines}


def row_cosines(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Row cosines; a row zero in both is a match (1.0), not 0/1e-12: a history of items without vectors
    gives a zero user vector, reproduced exactly, and the export's own bundle then failed its check."""
    got_norm, expected_norm = np.linalg.norm(got, axis=1), np.linalg.norm(expected, axis=1)
    cos = (got * expected).sum(1) / np.maximum(got_norm * expected_norm, 1e-12)
    both_zero = (got_norm <= 1e-12) & (expected_norm <= 1e-12)
    return np.where(both_zero, 1.0, cos)


def reference_arrays(bundle: Bundle, ref: dict, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference histories (model rows: item row + 1, 0 pads), user vectors and top-k rows, checked
    against each other and the catalog: a file that passed its checksum can still be the wrong array,
    and the engines and numpy would fail on it with their own errors (or read out of the table)."""
    names = [ref.get(key) for key in ("histories", "user_vectors", "top_k")]
    if not all(isinstance(name, str) for name in names):
        raise BundleError("its reference names no histories, user_vectors and top_k files; re-export the bundle")
    histories, vectors, top = (np.asarray(bundle.array(name)) for name in names)

    def refuse(name: str, what: str):
        raise BundleError(f"its reference file {name} {what}; re-export the bundle")

    for name, array, kind in zip(names, (histories, vectors, top), ("iu", "f", "iu")):
        if array.ndim != 2 or not array.size or array.dtype.kind not in kind:
            refuse(name, f"is a {array.dtype} array of shape {array.shape}; expected a non-empty 2-D array of "
                   + ("floats" if kind == "f" else "whole numbers"))
    if not len(histories) == len(vectors) == len(top):
        refuse(names[0], f"holds {len(histories)} histories for {len(vectors)} user vectors and {len(top)} top-k rows")
    if len(histories) < MIN_REFERENCE_USERS:
        refuse(names[0], f"holds {len(histories)} reference histories; a conformance check needs at least "
               f"{MIN_REFERENCE_USERS} users to tell a reproduced encoder from chance")
    k = ref.get("k")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise BundleError(f"its reference's k is {k!r}, not a whole number >= 1 (the width of {names[2]}); "
                          "re-export the bundle")
    if top.shape[1] != min(k, count):  # a catalog smaller than k: every item (export/parity.py top_k_rows)
        refuse(names[2], f"holds top-k rows of width {top.shape[1]}; the reference's k is {k} (of {count} items)")
    dim = bundle.manifest.dim
    if vectors.shape != (len(histories), dim):
        refuse(names[1], f"gives vectors of shape {vectors.shape}; expected {(len(histories), dim)}: one vector "
               f"of the bundle's dim {dim} per reference history")
    if histories.min() < 0 or histories.max() > count:
        refuse(names[0], f"holds model rows outside 0..{count} (item row + 1; 0 pads)")
    if top.min() < 0 or top.max() >= count:
        refuse(names[2], f"holds item rows outside 0..{count - 1}")
    if not np.isfinite(vectors).all():
        refuse(names[1], "holds NaN or infinite values")
    return histories.astype(np.int64), vectors.astype(np.float32), top.astype(np.int64)


def _top_k(users: np.ndarray, catalog: ItemCatalog, histories: np.ndarray, k: int) -> np.ndarray:
    """Each user's k best bundle rows outside their history (model rows - 1), chunk by chunk."""
    best_rows = np.zeros((len(users), 0), np.int64)
    best_scores = np.zeros((len(users), 0), np.float32)
    for start in range(0, catalog.base_count, CHUNK_ROWS):
        rows = np.arange(start, min(start + CHUNK_ROWS, catalog.base_count))
        scores = users @ catalog.vectors(rows).T
        for r, hist in enumerate(histories):
            seen = hist[hist > 0] - 1
            seen = seen[(seen >= start) & (seen < rows[-1] + 1)]
            scores[r, seen - start] = -np.inf
        best_rows = np.concatenate([best_rows, np.broadcast_to(rows, scores.shape)], axis=1)
        best_scores = np.concatenate([best_scores, scores], axis=1)
        keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
        best_rows = np.take_along_axis(best_rows, keep, 1)
        best_scores = np.take_along_axis(best_scores, keep, 1)
    return best_rows
