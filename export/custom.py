"""Bundles from models a user brings: an ONNX (or TFLite) user encoder plus item vectors.

The model must follow the runtime's contract, declared in a small spec:

    {"input": {"name": "ids", "dtype": "int64", "history_length": 50},
     "output": {"name": "user_vector"}, "dim": 64}

Its input is one (batch, history) tensor of item rows (catalog index + 1, 0 =
padding, left-padded, newest last); its output a (batch, dim) user vector in
the same space as the item vectors (an (items, dim) float32 .npy, rows in
items.csv order). The file is run on real histories before it is bundled: a
model that fails, returns the wrong shape or non-finite values is refused,
each with what to change.

What adapts by itself: an ONNX file whose history axis is fixed (another
tool's export) or whose output depends on how much padding it sees (a GRU
over left padding) is padded to `history_length` on the device too; a fixed
batch of 1 runs one history at a time; int32 inputs are fed int32. A PyTorch
module (export/own_torch.py) may return a tuple or list (the first element is the user vector), a
mapping (the spec's output name), or (batch, history, dim) / (batch, 1, dim)
(the newest position). The manifest records parity (the file against PyTorch
on real histories, for modules), the padding check, and full-ranking test
metrics of the model beside popularity's.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgerec.data.split import leave_last_out
from edgerec.data.store import load_dataset
from edgerec.data.tables import read_vectors
from edgerec.errors import BundleError, ConfigError, EdgerecError, ExportError
from edgerec.export.bundle_builder import ExportConfig, _add_content, _write_items, _write_reference
from edgerec.export.deidentify import public_source, scrub_paths, synthetic_histories
from edgerec.export.own_encoder import (
    EncoderSpec,
    FileEncoder,
    item_sweep,
    last_rows,
    vocabulary_error,
)
from edgerec.export.replay_default import replay_defaults
from edgerec.export.user_files import portable_onnx, portable_tflite
from edgerec.models.evaluation import Evaluator, train_popularity
from edgerec.models.hubness import model_hubness
from edgerec.models.scoring import history_rows
from edgerec.runtime.bundle import BundleWriter, Manifest
from edgerec.runtime.drift import score_baseline
from edgerec.runtime.item_table import StoredTable

CHECK_USERS = 256  # real test histories every check runs on
PADDING_USERS = 32  # short histories encoded alone and left-padded, to see whether padding moves the output
PADDING_TOLERANCE = 1e-4  # 1 - cosine
EVAL_USERS = 5000  # test users of the metrics recorded in the manifest


def _padding_gap(encoder: FileEncoder, history, users: np.ndarray) -> float | None:
    """1 - the lowest cosine between short histories' vectors left-padded to L and the same histories alone
    (as a dynamic-length file sees them on the device): ranking reads the direction only. Short histories
    are the test users' shorter than L, else the last 1, 2 and L/2 items of their histories: a data set whose
    users all hold L items or more (filtered logs) made the check pass on nothing, while every new user on
    the device has a short one. None when the file fails on the short histories alone: its history axis is
    declared dynamic but it runs at L only (a trace that baked L in), which padding to L serves."""
    length = encoder.spec.history_length
    short = [history.of(u) for u in users if 0 < len(history.of(u)) < length][:PADDING_USERS]
    if not short:
        cuts = sorted({k for k in (1, 2, length // 2) if 0 < k < length})
        short = [history.of(u)[-k:] for u in users[:PADDING_USERS] for k in cuts if len(history.of(u)) >= k]
    if not short:  # L of 1: every history is already of length L
        return 0.0
    rows = np.vstack([np.r_[np.zeros(length - len(h), np.int64), np.asarray(h) + 1] for h in short])
    padded = encoder.encode_rows(rows)
    refuse_zero_vectors(encoder.name, padded, rows, "short histories")
    try:
        alone = np.vstack([encoder.encode_rows((np.asarray(h, np.int64) + 1)[None]) for h in short])
    except EdgerecError:  # the padded rows above ran, so the short lengths are what fails
        return None
    refuse_zero_vectors(encoder.name, alone, rows, "short histories given without padding")
    # each vector to unit length on its own: a floor on the product of two norms made a model whose vectors
    # are ~1e-9 long read cosine 0 (and padded to L) though padding moved nothing
    padded, alone = (unit(v) for v in (padded, alone))
    return float(max(0.0, 1.0 - (padded * alone).sum(1).min()))


def unit(vectors: np.ndarray) -> np.ndarray:
    wide = np.asarray(vectors, np.float64)  # float64: squares of float32's smallest values do not vanish
    return wide / np.maximum(np.linalg.norm(wide, axis=1, keepdims=True), np.finfo(np.float64).tiny)


def refuse_zero_vectors(name: str, vectors: np.ndarray, rows: np.ndarray, what: str) -> None:
    """A user vector of zeros has no direction: every item scores alike for that user on the device, and the
    padding check read it as cosine 0 (padding blamed for it)."""
    zero = np.flatnonzero(~np.any(np.asarray(vectors) != 0, axis=1))
    if len(zero):
        held = rows[zero[0]][rows[zero[0]] > 0]
        raise ExportError(f"{name} returns a vector of zeros for {len(zero)} of {len(rows)} {what}, first for the "
                          f"item rows {held.tolist()[:10]} (catalog index + 1); a user vector of zeros ranks every "
                          "item alike: return a vector with a direction for every history (e.g. add a learnt "
                          "default vector)")


def _check_every_item(model: FileEncoder, n_items: int) -> None:
    """Every item row in some history: NaN for a few items would reach the device (a popularity fallback for
    each user who consumed one) while real test histories miss them."""
    sweep = item_sweep(n_items, model.spec.history_length)
    try:
        out = model.encoder.encode_rows(sweep)
    except Exception as exc:  # the engine's own error types
        raise vocabulary_error(model.name, n_items, exc) from None
    bad = np.flatnonzero(~np.isfinite(out).all(1))
    if len(bad):
        held = sweep[bad[0]][sweep[bad[0]] > 0]
        raise ExportError(f"{model.name} returns NaN or infinite values for {len(bad)} of {len(sweep)} histories "
                          f"that together hold every item, first for one of the item rows {held[0]} to {held[-1]} "
                          "(catalog index + 1); every item must give a finite vector: guard divisions and logs "
                          "(e.g. clamp a count before dividing by it)")
    refuse_zero_vectors(model.name, out, sweep, "histories that together hold every item")


BATCH_USERS = 16  # histories encoded alone and in one batch, to see whether the batch moves the output


def check_deterministic(name: str, first: np.ndarray, second: np.ndarray) -> None:
    """The same histories encoded twice must give the same vectors: dropout left on (model.eval() forgotten
    before the export, or F.dropout's training=True default) or a call counter would give the device other
    vectors than every check here saw, and a teacher other targets at each call."""
    first, second = np.asarray(first), np.asarray(second)
    scale = max(float(np.nanmax(np.abs(first), initial=0.0)), 1e-12)
    if first.shape != second.shape or not np.allclose(first, second, rtol=0.0, atol=1e-6 * scale, equal_nan=True):
        gap = float(np.nanmax(np.abs(first - second), initial=0.0)) if first.shape == second.shape else float("nan")
        raise ExportError(f"{name} returns other vectors for the same histories on a second call (max |diff| "
                          f"{gap:.3g}); it must be deterministic: no dropout or sampling (model.eval() before the "
                          "export; F.dropout needs training=self.training) and no state a call changes")


def check_batch_independence(name: str, encode, rows: np.ndarray, batched: np.ndarray) -> None:
    """The device encodes one user at a time; a model that reads batch statistics (BatchNorm in training
    mode, a mean over the batch) gives it other vectors than every check here, which runs in batches
    (and a teacher's distillation targets would depend on which users shared a batch)."""
    alone = np.vstack([np.asarray(encode(rows[i:i + 1])) for i in range(min(BATCH_USERS, len(rows)))])
    gap = float(np.abs(alone - batched[:len(alone)]).max())
    if gap > 1e-4 * max(float(np.abs(batched).max()), 1e-12):
        raise ExportError(f"{name}'s vector of a history changes with the other histories in its batch "
                          f"(max |diff| {gap:.3g} between one at a time and a batch of {len(rows)}); the device "
                          "encodes one user at a time: export it in eval mode (model.eval()) and without statistics "
                          "over the batch axis")


class _VectorScorer:
    def __init__(self, name, encoder: FileEncoder, table: np.ndarray):
        self.name, self.encoder, self.table = name, encoder, table

    def score(self, users, history) -> np.ndarray:
        return self.encoder.user_vectors(users, history) @ self.table.T


def _test_metrics(split, dataset, encoder: FileEncoder, table: np.ndarray) -> dict:
    """Full-ranking test metrics of the user's model with the shipped table, beside popularity's."""
    from edgerec.models.baselines import Popular

    users, _ = split.targets("test")
    if not len(users):
        return {}
    evaluator = Evaluator(split, dataset.catalog)
    rows = np.arange(min(len(users), EVAL_USERS))
    keep = ("users", "HR@10", "NDCG@10", "MRR@10", "coverage@10")
    out = {}
    for name, scorer in (("user_model", _VectorScorer("user_model", encoder, table)),
                         ("popular", Popular(split, dataset))):
        result = evaluator.evaluate(scorer, "test", rows=rows)
        out[name] = {k: result[k] for k in keep}
    return out


def refuse_filled_out(out: str | Path) -> None:
    """BundleWriter's refusal of a filled --out, said before the checks and exports it would otherwise follow."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BundleError(f"{out.name} exists and is not empty; choose a new --out folder")


def bundle_user_model(encoder: str | Path, spec: EncoderSpec, item_vectors: str | Path | np.ndarray,
                      data_dir: str | Path, out: str | Path, *, table_dtype: str = "int8",
                      name: str | None = None, reference_parity: dict | None = None,
                      content: str | Path | None = None) -> Manifest:
    """Bundle a user's ONNX (or TFLite) user encoder with their item vectors and the data's catalog.

    `reference_parity`: the file against its PyTorch original (bundle_torch_module measures it);
    `content`: a content student (`edgerec content distill`) to ship, mapped into the item vectors' space."""
    refuse_filled_out(out)
    encoder = Path(encoder)
    fmt = {".onnx": "onnx", ".tflite": "tflite"}.get(encoder.suffix)
    if fmt is None:
        raise ConfigError(f"{encoder.name} must be a .onnx or .tflite file")
    if not encoder.is_file():
        raise ConfigError(f"{encoder.name} is not a file here; give the path of your user encoder's file")
    dataset = load_dataset(data_dir)
    vectors = read_vectors(item_vectors, "the item vectors", rows=dataset.n_items, dim=spec.dim)
    wide = vectors.astype(np.float64)  # a float32 norm overflows past 1.8e19 and turned rows to 0
    vectors = (wide / np.maximum(np.linalg.norm(wide, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    if np.ptp(vectors, axis=0).max() == 0:
        raise ExportError("every item vector points the same way (or is zero), so every history would rank the "
                          "catalog alike; give each item its own vector, rows in items.csv order")
    split = leave_last_out(dataset)
    with tempfile.TemporaryDirectory(prefix="edgerec-custom-") as scratch:
        shipped = Path(scratch) / f"user_encoder.{fmt}"
        (portable_onnx if fmt == "onnx" else portable_tflite)(encoder, shipped)
        return _bundle_checked(FileEncoder(shipped, fmt, spec, encoder.name), spec, vectors, dataset, split, out,
                               table_dtype=table_dtype, name=name, reference_parity=reference_parity,
                               content=content)


def _bundle_checked(model: FileEncoder, spec: EncoderSpec, vectors: np.ndarray, dataset, split, out, *,
                    table_dtype: str, name: str | None, reference_parity: dict | None, content) -> Manifest:
    fmt = model.fmt
    history = split.history("test")
    users = split.test_users[:CHECK_USERS]
    model.encode_rows(np.ones((1, spec.history_length), np.int64))  # runs at all (else the general refusal)
    last = last_rows(dataset.n_items, spec.history_length)
    try:
        model.encoder.encode_rows(np.pad(last, ((0, 0), (spec.history_length - last.shape[1], 0))))
    except Exception as exc:  # the engine's own error types
        raise vocabulary_error(model.name, dataset.n_items, exc) from None
    _check_every_item(model, dataset.n_items)
    rows = history_rows(history, users, spec.history_length)
    produced = model.encode_rows(rows)
    refuse_zero_vectors(model.name, produced, rows, "real histories")
    check_deterministic(model.name, produced, model.encode_rows(rows))  # before the batch check: its cause first
    if model.input.shape[0] != 1:  # a fixed batch of one already runs one user at a time
        check_batch_independence(model.name, model.encode_rows, rows, produced)
    if len(produced) > 1 and np.ptp(produced, axis=0).max() <= 1e-6 * max(float(np.abs(produced).max()), 1e-12):
        raise ExportError(f"{model.name} returns the same vector for every history; it must read the ids "
                          "(item rows: catalog index + 1, 0 = padding)")
    padding = {"cosine_gap": 0.0}
    if not model.fixed_length:
        gap = _padding_gap(model, history, users)
        if gap is None:
            padding["short_histories_alone"] = "fail: the file runs at history_length only"
        else:
            padding["cosine_gap"] = gap
        if gap is None or gap > PADDING_TOLERANCE:
            model.pad_to_length()  # the device pads to L as every check here did
    padding["padded_to"] = spec.history_length if model.fixed_length else "longest history"
    writer = BundleWriter(out, scrub_paths(name) if name else Path(out).name)  # a name given as a path: no folders
    shutil.copyfile(model.path, writer.file_path(f"user_encoder.{fmt}"))
    stored = StoredTable.quantize(vectors, table_dtype)
    table = stored.dequantize()
    parity = {"checked": {"histories": int(len(rows)), "finite": True, "dim": spec.dim}, "padding": padding,
              **(reference_parity or {"reference": "none: the file as supplied"})}
    writer.add_model(model.entry(quantization="as supplied", parity=parity, extra={"source": "user-supplied"}))
    popularity = train_popularity(split)
    hubs = model_hubness(model, split.train, table)  # for Policy.hub_penalty
    items = _write_items(writer, dataset.catalog, stored, popularity, hubs)
    synthetic = synthetic_histories(popularity, dataset.catalog.text["genre"], 32, spec.history_length)
    reference = _write_reference(writer, synthetic, model.encode_rows(synthetic), table, 10, {fmt: model})
    if content:
        _add_content(writer, content, dataset, split, table, ExportConfig(formats=(fmt,), quantize="int8"),
                     logging.getLogger("edgerec.export").warning)  # label sets left out are said
    produced = model.encode_rows(rows)
    metrics = {"monitoring": score_baseline(produced, table, [history.of(u) for u in users]),
               **_test_metrics(split, dataset, model, table)}
    return writer.finish(dim=spec.dim, items=items,
                         defaults={"k": 10, "history_length": spec.history_length, "diversity": 0.0, "short_list": 100,
                                   **replay_defaults(dataset)},
                         metrics=metrics, budgets={}, reference=reference,
                         data_version={"source": public_source(dataset.meta), "items": dataset.n_items})
