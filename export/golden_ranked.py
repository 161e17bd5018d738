"""The spec's second golden bundle, `golden/ranked`: the golden bundle's items and ONNX user encoder
with a tiny ranker (ONNX) and an interpretable scorer added, so the ranking section of the spec
(ranker features version 1, scorer features version 2) has cases a second runtime must pass.

The ranker and the scorer are not trained: their weights are seeded random numbers, chosen so that
every feature moves the scores (a tanh layer lets the context features, equal for every candidate,
change the order too). What the cases pin down is how a runtime computes the features and applies
the models, not how good the models are. ONNX only (no TFLite file): a few KB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgerec.export.golden_files import checksum, copy_files, start_from, write_manifest
from edgerec.runtime.features import feature_count
from edgerec.runtime.scorer import SCORER_VERSION, scorer_names

SEED = 20261203
HIDDEN = 4  # tanh units of the ranker


def ranker_onnx(n_features: int, rng: np.random.Generator) -> bytes:
    """score = tanh(x W1 + b1) w2 + x w3: (C, F) float32 features -> (C,) float32 logits."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = {"W1": rng.normal(0, 1.0, (n_features, HIDDEN)), "b1": rng.normal(0, 0.5, HIDDEN),
               "w2": rng.normal(0, 1.0, (HIDDEN, 1)), "w3": rng.normal(0, 0.5, (n_features, 1)),
               "flat": np.array([-1])}
    inits = [numpy_helper.from_array(v.astype(np.int64 if k == "flat" else np.float32), k)
             for k, v in weights.items()]
    nodes = [helper.make_node("MatMul", ["features", "W1"], ["xw"]), helper.make_node("Add", ["xw", "b1"], ["pre"]),
             helper.make_node("Tanh", ["pre"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["deep"]),
             helper.make_node("MatMul", ["features", "w3"], ["wide"]),
             helper.make_node("Add", ["deep", "wide"], ["both"]), helper.make_node("Reshape", ["both", "flat"], ["score"])]
    graph = helper.make_graph(
        nodes, "golden_ranker",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["candidates", n_features])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["candidates"])], inits)
    model = helper.make_model(graph, producer_name="edgerec-golden", opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by older onnxruntime releases too
    onnx.checker.check_model(model)
    return model.SerializeToString()


def scorer_arrays(dim: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = len(scorer_names(dim))
    return {"weights": rng.normal(0, 1.0, n), "mean": rng.normal(0, 0.2, n), "scale": rng.uniform(0.5, 2.0, n),
            "intercept": np.array([0.25])}


def build_ranked_bundle(golden: Path, out: Path) -> Path:
    """`out`: the golden bundle's item files and ONNX user encoder, a ranker and a scorer (replaced)."""
    golden, out = Path(golden), Path(out)
    source, encoder = start_from(golden, out)
    kept = [name for name in source["files"] if name.startswith("items/")] + [encoder["file"]]
    copy_files(golden, out, kept)
    rng, dim = np.random.default_rng(SEED), int(source["dim"])
    n_features = feature_count(dim)
    (out / "ranker.onnx").write_bytes(ranker_onnx(n_features, rng))
    (out / "ranking").mkdir()
    arrays = {}
    for name, value in scorer_arrays(dim, rng).items():
        arrays[name] = f"ranking/scorer_{name}.npy"
        np.save(out / arrays[name], value.astype(np.float64), allow_pickle=False)
    ranker = {"role": "ranker", "format": "onnx", "file": "ranker.onnx", "quantization": "none",
              "inputs": [{"name": "features", "dtype": "float32", "shape": ["candidates", n_features]}],
              "outputs": [{"name": "score", "dtype": "float32", "shape": ["candidates"]}],
              "extra": {"features_version": 1, "n_features": n_features}}
    ranking = {"scorer": {"version": SCORER_VERSION, "features": list(scorer_names(dim)), "arrays": arrays},
               **{k: v for k, v in source.get("ranking", {}).items() if k != "scorer"}}
    files = {name: checksum(out / name) for name in sorted([*kept, "ranker.onnx", *arrays.values()])}
    manifest = {k: v for k, v in source.items() if k not in ("space", "reference", "metrics", "files")}
    manifest.update(name="golden-ranked", models=[encoder, ranker], ranking=ranking, files=files)
    write_manifest(out, manifest, encoder)
    return out
