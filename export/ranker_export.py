"""The ranker's files (ONNX, TFLite) and their parity with PyTorch on the pools the device ranks.

Parity runs on real test users' pools as the device forms them (their best unseen items, at most the
short list) through the device's own call (runtime/stages.run_ranker: a fixed-size TFLite file takes
blocks of its batch, zero-padded). Differences are read against the spread of each pool's scores:
logits have no fixed scale (a context the training never saw, e.g. an hour of day far from a log's,
can lift them to 1e5), and a pool of ten items or fewer agrees on its top 10 whatever the file returns.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from edgerec.compress.quantize import (
    MODE_LABEL,
    WEIGHT_ONLY_SESSION_CONFIG,
    fake_quantize,
    quantize_onnx,
    quantize_tflite,
)
from edgerec.errors import ExportError, ModelError
from edgerec.export.formats import export_onnx, export_tflite
from edgerec.export.parity import check, top_k_rows
from edgerec.models.evaluation import train_popularity
from edgerec.models.scoring import ModelScorer
from edgerec.runtime.backends import open_backend
from edgerec.runtime.bundle import ModelEntry, TensorSpec
from edgerec.runtime.checks import file_name
from edgerec.runtime.stages import run_ranker

PARITY_USERS = 20
EXPORT_TOLERANCE = 1e-3  # max |diff| over a pool's score spread, the file against its source module


def device_pools(vectors: np.ndarray, items: np.ndarray, seen: list[np.ndarray], short_list: int) -> list:
    """Each user's pool as the device forms it: the best `short_list` items the user has not consumed."""
    pools = []
    for row, consumed in enumerate(seen):
        consumed = np.unique(consumed)
        best = top_k_rows(vectors[row:row + 1], items, short_list + len(consumed), [consumed])[0]
        pools.append(best[~np.isin(best, consumed)][:short_list])
    return pools


def order_agreement(expected: np.ndarray, got: np.ndarray) -> float:
    """The share of a pool's pairs of items the two score vectors put in the same order (1.0 for one item)."""
    upper = np.triu_indices(len(expected), 1)
    if not len(upper[0]):
        return 1.0
    same = np.sign(np.subtract.outer(expected, expected)) == np.sign(np.subtract.outer(got, got))
    return float(same[upper].mean())


def pool_parity(expected: list[np.ndarray], got: list[np.ndarray]) -> dict:
    """max |diff|, the same over each pool's score spread, top-10 agreement and pairwise order agreement."""
    diff = [np.abs(e - g).max() for e, g in zip(expected, got)]
    spread = [np.ptp(e) for e in expected]
    agree = [len(set(np.argsort(-e)[:10]) & set(np.argsort(-g)[:10])) / min(10, len(e)) for e, g in zip(expected, got)]
    return {"max_abs_diff": float(max(diff)), "score_scale": float(max(np.abs(e).max() for e in expected)),
            "max_diff_of_spread": float(max(d / max(s, 1e-12) for d, s in zip(diff, spread))),
            "top10_agreement": float(np.mean(agree)),
            "order_agreement": float(np.mean([order_agreement(e, g) for e, g in zip(expected, got)])),
            "pools": len(expected),
            "pool_sizes": [int(min(len(e) for e in expected)), int(max(len(e) for e in expected))]}


def export_ranker(ranker_dir, checkpoint, model, dataset, split, users, history, cfg, scratch: Path,
                  writer) -> list[ModelEntry]:
    from edgerec.models.persist import load_ranker
    from edgerec.models.ranker import item_table
    from edgerec.runtime.features import ranker_features

    ranker, info = load_ranker(ranker_dir)
    if Path(info["retrieval"]).resolve() != Path(checkpoint).resolve():
        raise ModelError(f"the ranker {file_name(ranker_dir)} was trained on {file_name(info['retrieval'])}, not on {file_name(checkpoint)}; "
                         "train a ranker for this model with `edgerec train --arch ranker --retrieval`")
    scorer = ModelScorer(model)
    users = users[:PARITY_USERS]
    vectors = scorer.user_vectors(users, history)
    items = scorer.item_matrix()
    table = item_table(dataset.catalog, train_popularity(split))
    seen = [history.of(u) for u in users]
    now = int(time.time())
    feats = [ranker_features(vectors[row], items[pool], pool, table, seen[row], 20.0, 1, now).astype(np.float32)
             for row, pool in enumerate(device_pools(vectors, items, seen, cfg.short_list)) if len(pool)]
    if not feats:
        raise ExportError("no test user has an unseen item left to rank, so the ranker cannot be checked; export "
                          "without --ranker, or with a catalog larger than the users' histories")
    mode = "none" if cfg.quantize == "int8-static" else cfg.quantize  # static int8 is for the encoder only
    module = fake_quantize(ranker) if mode == "int8" else ranker
    with torch.no_grad():
        expected = [ranker(torch.as_tensor(f)).numpy().reshape(-1) for f in feats]
        source = [module(torch.as_tensor(f)).numpy().reshape(-1) for f in feats]
    width = feats[0].shape[-1]
    entries = []
    for fmt in cfg.formats:
        raw = scratch / f"ranker.float.{fmt}"
        name = f"ranker.{fmt}"
        if fmt == "onnx":
            export_onnx(module, {"features": torch.as_tensor(feats[0])}, {"features": {0: "candidates"}},
                        ["score"], raw)
            shape_in, shape_out = ["candidates", width], ["candidates"]
        else:  # fixed at the short list, which the device pads every pool to (a smaller catalog's pools too)
            sample = np.zeros((cfg.short_list, width), np.float32)
            sample[:min(len(feats[0]), cfg.short_list)] = feats[0][:cfg.short_list]
            export_tflite(module, (torch.as_tensor(sample),), raw)
            shape_in, shape_out = [cfg.short_list, width], [cfg.short_list]
        config = WEIGHT_ONLY_SESSION_CONFIG if fmt == "onnx" and mode == "int8" else None
        entry = ModelEntry("ranker", fmt, name, [TensorSpec("features", "float32", shape_in)],
                           [TensorSpec("score", "float32", shape_out)], quantization=MODE_LABEL[mode],
                           batch=cfg.short_list if fmt == "tflite" else None,
                           extra={"features_version": 1, "n_features": int(width),
                                  **({"session_config": config} if config else {})})
        raw_backend = open_backend(raw, fmt)
        exported = pool_parity(source, [run_ranker(entry, raw_backend, f) for f in feats])["max_diff_of_spread"]
        if not exported <= EXPORT_TOLERANCE:  # the float file against the module it was made from
            raise ExportError(f"{fmt} ranker: its scores differ from the PyTorch module it was exported from by "
                              f"{exported:.3g} of a pool's score spread (tolerance {EXPORT_TOLERANCE}); the export "
                              "is wrong, do not ship it")
        final = writer.file_path(name)
        (quantize_onnx if fmt == "onnx" else quantize_tflite)(raw, final, mode)
        backend = open_backend(final, fmt, config=config)
        got = [run_ranker(entry, backend, f) for f in feats]
        if not all(np.all(np.isfinite(g)) for g in got):
            raise ExportError(f"the {MODE_LABEL[mode]} {fmt} ranker returns NaN or infinite scores (PyTorch's reach "
                              f"{max(np.abs(e).max() for e in expected):.3g}); export it with --quantize int8 or none")
        parity = pool_parity(expected, got)  # against the trained ranker: what quantization costs
        check(parity, f"{fmt} ranker", min_agreement=cfg.min_top10_agreement)
        if parity["order_agreement"] < cfg.min_top10_agreement:
            raise ExportError(f"{fmt} ranker: {parity['order_agreement']:.3f} of the pools' item pairs keep "
                              f"PyTorch's order, below the tolerance {cfg.min_top10_agreement}; use a milder "
                              "quantization (e.g. --quantize fp16)")
        entry.parity = {**parity, "export_diff_of_spread": exported,
                        "tolerance": {**parity["tolerance"], "export_diff_of_spread": EXPORT_TOLERANCE}}
        entries.append(entry)
    return entries
