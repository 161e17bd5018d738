"""Bundles from models a user brings: an ONNX user encoder, or any PyTorch module, plus item vectors.

The model must follow the runtime's contract, declared in a small spec:

    {"input": {"name": "ids", "dtype": "int64", "history_length": 50},
     "output": {"name": "user_vector"}, "dim": 64}

Its input is a (batch, history) tensor of item rows (catalog index + 1, 0 =
padding, left-padded, newest last); its output a (batch, dim) user vector in
the same space as the item vectors (an (items, dim) float32 .npy, rows in
items.csv order). The file is run on real histories before it is bundled: a
model that fails, returns the wrong shape or non-finite values is refused.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.data.split import leave_last_out
from edgerec.data.store import load_dataset
from edgerec.data.tables import read_vectors
from edgerec.errors import ConfigError, ExportError
from edgerec.export.bundle_builder import _write_items, _write_reference
from edgerec.export.deidentify import public_source, synthetic_histories
from edgerec.models.evaluation import train_popularity
from edgerec.models.hubness import model_hubness
from edgerec.models.scoring import history_rows
from edgerec.runtime.backends import open_backend
from edgerec.runtime.bundle import BundleWriter, Manifest, ModelEntry, TensorSpec
from edgerec.runtime.drift import score_baseline
from edgerec.runtime.encoder import UserEncoder
from edgerec.runtime.item_table import StoredTable


@dataclass
class EncoderSpec:
    input_name: str
    input_dtype: str  # int64 | int32
    history_length: int
    output_name: str
    dim: int

    @classmethod
    def load(cls, source: str | Path | dict) -> EncoderSpec:
        raw = source if isinstance(source, dict) else json.loads(Path(source).read_text())
        try:
            spec = cls(raw["input"]["name"], raw["input"].get("dtype", "int64"), int(raw["input"]["history_length"]),
                       raw["output"]["name"], int(raw["dim"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"encoder spec lacks {exc}; see `edgerec export --help` for its fields") from None
        if spec.input_dtype not in ("int64", "int32"):
            raise ConfigError(f"encoder input dtype must be int64 or int32, not {spec.input_dtype}")
        return spec


def _check_io(path: Path, fmt: str, spec: EncoderSpec, rows: np.ndarray) -> np.ndarray:
    try:
        backend = open_backend(path, fmt)
    except Exception as exc:
        raise ExportError(f"{path.name} cannot be loaded ({exc})") from None
    if fmt == "onnx" and spec.input_name not in backend.input_names:
        raise ExportError(f"{path.name} has inputs {backend.input_names}, the spec names {spec.input_name!r}")
    entry = ModelEntry("user_encoder", fmt, path.name, [], [], history_length=spec.history_length)
    try:
        vectors = UserEncoder(backend, entry, spec.history_length).encode_rows(rows)
    except Exception as exc:
        raise ExportError(f"{path.name} failed on real histories ({exc}); check its input spec") from None
    if vectors.ndim != 2 or vectors.shape[1] != spec.dim:
        raise ExportError(f"{path.name} returned shape {vectors.shape}, the spec says (batch, {spec.dim})")
    if not np.all(np.isfinite(vectors)):
        raise ExportError(f"{path.name} returned NaN or infinite values on real histories")
    return vectors


class _SuppliedEncoder:
    """The user's encoder as the `user_vectors` of a scorer (what models/hubness.py reads)."""

    def __init__(self, path: Path, fmt: str, spec: EncoderSpec):
        self.path, self.fmt, self.spec = path, fmt, spec

    def user_vectors(self, users: np.ndarray, history) -> np.ndarray:
        return _check_io(self.path, self.fmt, self.spec, history_rows(history, users, self.spec.history_length))


def bundle_user_model(encoder: str | Path, spec: EncoderSpec, item_vectors: str | Path | np.ndarray,
                      data_dir: str | Path, out: str | Path, *, table_dtype: str = "int8",
                      name: str | None = None) -> Manifest:
    """Bundle a user's ONNX (or TFLite) user encoder with their item vectors and the data's catalog."""
    encoder = Path(encoder)
    fmt = {".onnx": "onnx", ".tflite": "tflite"}.get(encoder.suffix)
    if fmt is None:
        raise ConfigError(f"{encoder} must be a .onnx or .tflite file")
    dataset = load_dataset(data_dir)
    vectors = read_vectors(item_vectors, "the item vectors", rows=dataset.n_items, dim=spec.dim)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    split = leave_last_out(dataset)
    history = split.history("test")
    users = split.test_users[:256]
    rows = history_rows(history, users, spec.history_length)
    produced = _check_io(encoder, fmt, spec, rows)
    writer = BundleWriter(out, name or Path(out).name)
    shutil.copyfile(encoder, writer.file_path(f"user_encoder.{fmt}"))
    stored = StoredTable.quantize(vectors, table_dtype)
    table = stored.dequantize()
    shape = ["batch", "history"] if fmt == "onnx" else [1, spec.history_length]
    writer.add_model(ModelEntry("user_encoder", fmt, f"user_encoder.{fmt}",
                                [TensorSpec(spec.input_name, spec.input_dtype, shape)],
                                [TensorSpec(spec.output_name, "float32", [shape[0], spec.dim])],
                                quantization="as supplied", history_length=spec.history_length,
                                batch=1 if fmt == "tflite" else None,
                                parity={"checked": {"histories": int(len(rows)), "finite": True, "dim": spec.dim}},
                                extra={"source": "user-supplied"}))
    popularity = train_popularity(split)
    hubs = model_hubness(_SuppliedEncoder(encoder, fmt, spec), split.train, table)  # for Policy.hub_penalty
    items = _write_items(writer, dataset.catalog, stored, popularity, hubs)
    synthetic = synthetic_histories(popularity, dataset.catalog.text["genre"], 32, spec.history_length)
    reference = _write_reference(writer, synthetic, _check_io(encoder, fmt, spec, synthetic), table, 10)
    return writer.finish(dim=spec.dim, items=items,
                         defaults={"k": 10, "history_length": spec.history_length, "diversity": 0.0, "short_list": 100},
                         metrics={"monitoring": score_baseline(produced, table, [history.of(u) for u in users])},
                         budgets={}, reference=reference,
                         data_version={"source": public_source(dataset.meta), "items": dataset.n_items})


def bundle_torch_module(module, spec: EncoderSpec, item_vectors, data_dir: str | Path, out: str | Path,
                        *, formats: tuple[str, ...] = ("onnx",), **kwargs) -> Manifest:
    """Export any PyTorch module that follows the spec to ONNX (and/or TFLite), then bundle it."""
    import torch

    from edgerec.export.formats import export_onnx, export_tflite

    sample = torch.ones(2, spec.history_length, dtype=torch.int64)
    with tempfile.TemporaryDirectory(prefix="edgerec-custom-") as scratch:
        path = Path(scratch) / ("user_encoder.onnx" if "onnx" in formats else "user_encoder.tflite")
        if path.suffix == ".onnx":
            export_onnx(module, {spec.input_name: sample}, {spec.input_name: {0: "batch", 1: "history"}},
                        [spec.output_name], path, max_sizes={"history": spec.history_length})
        else:
            export_tflite(module, (sample[:1],), path)
        with torch.no_grad():
            expected = module(sample).numpy()
        got = _check_io(path, path.suffix[1:], spec, sample.numpy())
        if np.abs(got - expected).max() > 1e-4:
            raise ExportError("the exported module does not match PyTorch on a sample input")
        return bundle_user_model(path, spec, item_vectors, data_dir, out, **kwargs)
