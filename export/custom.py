"""Bundles from models a user brings: an ONNX user encoder, or any PyTorch module, plus item vectors.

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
module may return a tuple or list (the first element is the user vector), a
mapping (the spec's output name), or (batch, history, dim) / (batch, 1, dim)
(the newest position). The manifest records parity (the file against PyTorch
on real histories, for modules), the padding check, and full-ranking test
metrics of the model beside popularity's.
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
from edgerec.errors import ConfigError, EdgerecError, ExportError
from edgerec.export.bundle_builder import ExportConfig, _add_content, _write_items, _write_reference
from edgerec.export.deidentify import public_source, synthetic_histories
from edgerec.export.parity import overlap, top_k_rows
from edgerec.export.replay_default import replay_defaults
from edgerec.models.evaluation import Evaluator, train_popularity
from edgerec.models.hubness import model_hubness
from edgerec.models.scoring import history_rows
from edgerec.runtime.backends import open_backend
from edgerec.runtime.bundle import BundleWriter, Manifest, ModelEntry, TensorSpec
from edgerec.runtime.drift import score_baseline
from edgerec.runtime.encoder import UserEncoder
from edgerec.runtime.item_table import StoredTable

EXAMPLE = ('{"input": {"name": "ids", "dtype": "int64", "history_length": 50}, "output": {"name": "user_vector"}, '
           '"dim": 64}')
CHECK_USERS = 256  # real test histories every check runs on
PADDING_USERS = 32  # short histories encoded alone and left-padded, to see whether padding moves the output
PADDING_TOLERANCE = 1e-4  # 1 - cosine
EVAL_USERS = 5000  # test users of the metrics recorded in the manifest


@dataclass
class EncoderSpec:
    input_name: str
    input_dtype: str  # int64 | int32
    history_length: int
    output_name: str
    dim: int

    @classmethod
    def load(cls, source: str | Path | dict) -> EncoderSpec:
        raw = source
        if not isinstance(source, dict):
            try:
                raw = json.loads(Path(source).read_text(encoding="utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise ConfigError(f"the encoder spec {Path(source).name} is not JSON ({exc}); write it like "
                                  f"{EXAMPLE}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"the encoder spec must be a JSON object like {EXAMPLE}, not a {type(raw).__name__}")

        def field(*keys):
            value = raw
            for key in keys:
                if not isinstance(value, dict) or key not in value:
                    raise ConfigError(f"the encoder spec lacks {'.'.join(keys)}; it needs every field of {EXAMPLE}")
                value = value[key]
            return value

        dtype = field("input", "dtype") if isinstance(raw.get("input"), dict) and "dtype" in raw["input"] else "int64"
        spec = cls(field("input", "name"), dtype, field("input", "history_length"), field("output", "name"),
                   field("dim"))
        for what, value in (("input.name", spec.input_name), ("output.name", spec.output_name)):
            if not isinstance(value, str) or not value:
                raise ConfigError(f"the encoder spec's {what} must be the tensor's name as text, not {value!r}")
        for what, value, top in (("input.history_length", spec.history_length, 100_000), ("dim", spec.dim, 65_536)):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
                raise ConfigError(f"the encoder spec's {what} must be a whole number from 1 to {top:,}, "
                                  f"not {value!r}")
        if spec.input_dtype not in ("int64", "int32"):
            raise ConfigError(f"the encoder spec's input.dtype must be int64 or int32, not {spec.input_dtype!r}")
        return spec


def _onnx_input(backend, name: str, spec: EncoderSpec) -> TensorSpec:
    """The file's one input as the manifest records it, or a refusal saying what to change."""
    inputs, outputs = backend.session.get_inputs(), backend.session.get_outputs()
    names = [i.name for i in inputs]
    if spec.input_name not in names:
        raise ExportError(f"{name} has inputs {names}, the spec names {spec.input_name!r}: set input.name to the "
                          "file's input")
    if len(inputs) > 1:
        raise ExportError(f"{name} takes {len(inputs)} inputs ({', '.join(names)}); the runtime feeds one, a "
                          "(batch, history) tensor of item ids: compute the others inside the model (a padding "
                          "mask is ids > 0) and export it again")
    tensor = inputs[0]
    dtype = {"tensor(int64)": "int64", "tensor(int32)": "int32"}.get(tensor.type)
    if dtype is None:
        raise ExportError(f"{name}'s input is {tensor.type}; it must hold int64 or int32 item ids")
    if dtype != spec.input_dtype:
        raise ExportError(f"{name}'s input is {dtype}, the spec says {spec.input_dtype}: set input.dtype to {dtype}")
    if len(tensor.shape) != 2:
        raise ExportError(f"{name}'s input has shape {tensor.shape}; it must be (batch, history)")
    batch, length = tensor.shape
    if isinstance(batch, int) and batch != 1:
        raise ExportError(f"{name}'s input has a fixed batch of {batch}; the device encodes one user at a time: "
                          f"export it with a dynamic batch axis (torch.onnx.export(..., dynamic_axes="
                          f"{{'{tensor.name}': {{0: 'batch'}}}})) or with batch 1")
    if isinstance(length, int) and length != spec.history_length:
        raise ExportError(f"{name}'s input has a fixed history length of {length}, the spec says "
                          f"{spec.history_length}: set input.history_length to {length}")
    if outputs[0].name != spec.output_name:
        fix = ("export it with the user vector as the first output" if spec.output_name in [o.name for o in outputs]
               else f"set output.name to {outputs[0].name!r} if that is the user vector")
        raise ExportError(f"{name}'s first output is {outputs[0].name!r}, the spec names {spec.output_name!r}; the "
                          f"runtime reads the first output: {fix}")
    return TensorSpec(tensor.name, dtype, [1 if batch == 1 else "batch",
                                           length if isinstance(length, int) else "history"])


def _tflite_input(backend, name: str, spec: EncoderSpec) -> TensorSpec:
    """A TFLite file's one fixed-shape input: (1, history_length) integers."""
    if len(backend.inputs) != 1:
        raise ExportError(f"{name} takes {len(backend.inputs)} inputs; the runtime feeds one, a (1, history) tensor "
                          "of item ids")
    shape = backend.input_shape(0)
    if len(shape) != 2 or shape[0] != 1:
        raise ExportError(f"{name}'s input has shape {shape}; a TFLite user encoder takes (1, history)")
    if shape[1] != spec.history_length:
        raise ExportError(f"{name}'s input is fixed at {shape}, the spec says history_length "
                          f"{spec.history_length}: set input.history_length to {shape[1]}")
    return TensorSpec(spec.input_name, "int32", [1, spec.history_length])


class _FileEncoder:
    """The user's file run the way the device runs it, with the contract's checks on every output."""

    def __init__(self, path: Path, fmt: str, spec: EncoderSpec, name: str | None = None):
        self.path, self.fmt, self.spec, self.name = path, fmt, spec, name or path.name
        try:
            backend = open_backend(path, fmt, name=self.name)
        except EdgerecError as exc:
            raise ExportError(str(exc)) from None
        if fmt == "onnx":
            self.input = _onnx_input(backend, self.name, spec)
        else:
            self.input = _tflite_input(backend, self.name, spec)
        self.backend = backend
        self._encoder()

    def _encoder(self) -> None:
        self.encoder = UserEncoder(self.backend, self.entry(), self.spec.history_length)

    def pad_to_length(self) -> None:
        """From now on every history is left-padded to history_length (recorded in the manifest's shape)."""
        self.input = TensorSpec(self.input.name, self.input.dtype, [self.input.shape[0], self.spec.history_length])
        self._encoder()

    @property
    def fixed_length(self) -> bool:
        return isinstance(self.input.shape[1], int)

    def entry(self, **kwargs) -> ModelEntry:
        batch = self.input.shape[0]
        return ModelEntry("user_encoder", self.fmt, f"user_encoder.{self.fmt}", [self.input],
                          [TensorSpec(self.spec.output_name, "float32", [batch, self.spec.dim])],
                          history_length=self.spec.history_length, batch=1 if batch == 1 else None, **kwargs)

    def encode_rows(self, rows: np.ndarray) -> np.ndarray:
        name = self.name
        try:
            vectors = self.encoder.encode_rows(rows)
        except EdgerecError:
            raise
        except Exception as exc:  # the engine's own error types
            raise ExportError(f"{name} failed on real histories ({exc}); its input must be a (batch, history) "
                              f"{self.input.dtype} tensor of item rows, 0 = padding") from None
        if vectors.ndim == 3 and vectors.shape[1] == 1:
            raise ExportError(f"{name} returned shape {vectors.shape}; it must return (batch, {self.spec.dim}): "
                              "squeeze the middle axis (out[:, 0]) and export it again, or give the PyTorch module "
                              "with --torch-module, which is adapted by itself")
        if vectors.ndim != 2 or vectors.shape[1] != self.spec.dim:
            raise ExportError(f"{name} returned shape {vectors.shape}, the spec says (batch, {self.spec.dim}); "
                              "dim must be the width of the user vector and of the item vectors")
        if not np.all(np.isfinite(vectors)):
            raise ExportError(f"{name} returned NaN or infinite values on real histories")
        return vectors

    def user_vectors(self, users: np.ndarray, history) -> np.ndarray:
        """As a scorer's `user_vectors` (what models/hubness.py reads)."""
        return self.encode_rows(history_rows(history, users, self.spec.history_length))


def _padding_gap(encoder: _FileEncoder, history, users: np.ndarray) -> float:
    """1 - the lowest cosine between short histories' vectors left-padded to L and the same histories alone
    (as a dynamic-length file sees them on the device): ranking reads the direction only."""
    length = encoder.spec.history_length
    short = [u for u in users if 0 < len(history.of(u)) < length][:PADDING_USERS]
    if not short:
        return 0.0
    padded = encoder.encode_rows(history_rows(history, np.asarray(short), length))
    alone = np.vstack([encoder.encode_rows(history_rows(history, np.asarray([u]), len(history.of(u))))
                       for u in short])
    cosine = (padded * alone).sum(1) / np.maximum(np.linalg.norm(padded, axis=1) * np.linalg.norm(alone, axis=1),
                                                  1e-12)
    return float(max(0.0, 1.0 - cosine.min()))


class _VectorScorer:
    def __init__(self, name, encoder: _FileEncoder, table: np.ndarray):
        self.name, self.encoder, self.table = name, encoder, table

    def score(self, users, history) -> np.ndarray:
        return self.encoder.user_vectors(users, history) @ self.table.T


def _test_metrics(split, dataset, encoder: _FileEncoder, table: np.ndarray) -> dict:
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


def bundle_user_model(encoder: str | Path, spec: EncoderSpec, item_vectors: str | Path | np.ndarray,
                      data_dir: str | Path, out: str | Path, *, table_dtype: str = "int8",
                      name: str | None = None, reference_parity: dict | None = None,
                      content: str | Path | None = None) -> Manifest:
    """Bundle a user's ONNX (or TFLite) user encoder with their item vectors and the data's catalog.

    `reference_parity`: the file against its PyTorch original (bundle_torch_module measures it);
    `content`: a content student (`edgerec content distill`) to ship, mapped into the item vectors' space."""
    encoder = Path(encoder)
    fmt = {".onnx": "onnx", ".tflite": "tflite"}.get(encoder.suffix)
    if fmt is None:
        raise ConfigError(f"{encoder.name} must be a .onnx or .tflite file")
    dataset = load_dataset(data_dir)
    vectors = read_vectors(item_vectors, "the item vectors", rows=dataset.n_items, dim=spec.dim)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    split = leave_last_out(dataset)
    with tempfile.TemporaryDirectory(prefix="edgerec-custom-") as scratch:
        shipped = Path(scratch) / f"user_encoder.{fmt}"
        if fmt == "onnx":
            _portable_onnx(encoder, shipped)
        else:
            shutil.copyfile(encoder, shipped)
        return _bundle_checked(_FileEncoder(shipped, fmt, spec, encoder.name), spec, vectors, dataset, split, out,
                               table_dtype=table_dtype, name=name, reference_parity=reference_parity,
                               content=content)


def _portable_onnx(source: Path, target: Path) -> None:
    """The user's ONNX file as one self-contained file (weights kept in external data files read in) without
    the exporter's debug metadata (stack traces hold host paths)."""
    import onnx

    from edgerec.export.formats import strip_debug_metadata

    try:
        model = onnx.load(str(source))
    except Exception as exc:  # protobuf and onnx raise several types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{source.name} cannot be loaded as ONNX ({first[:200]}); give the file your exporter "
                          "wrote") from None
    strip_debug_metadata(model)
    model.doc_string = ""
    try:
        onnx.save(model, str(target))
    except ValueError:  # protobuf's 2 GB limit of one file
        raise ExportError(f"{source.name} holds more than 2 GB of weights, too many for one file on a device; "
                          "shrink or quantize the model") from None


def _last_rows(n_items: int, length: int) -> np.ndarray:
    """One history of the catalog's highest item rows: a model whose vocabulary is smaller than the catalog
    (trained on an older one) fails on it."""
    return np.arange(max(1, n_items - length + 1), n_items + 1, dtype=np.int64)[None, -length:]


def _vocabulary_error(who: str, n_items: int, exc: Exception) -> ExportError:
    return ExportError(f"{who} fails on the catalog's last items ({exc}); its ids must cover every item of "
                       f"items.csv: rows 1 to {n_items:,} (0 = padding)")


def _bundle_checked(model: _FileEncoder, spec: EncoderSpec, vectors: np.ndarray, dataset, split, out, *,
                    table_dtype: str, name: str | None, reference_parity: dict | None, content) -> Manifest:
    fmt = model.fmt
    history = split.history("test")
    users = split.test_users[:CHECK_USERS]
    model.encode_rows(np.ones((1, spec.history_length), np.int64))  # runs at all (else the general refusal)
    last = _last_rows(dataset.n_items, spec.history_length)
    try:
        model.encoder.encode_rows(np.pad(last, ((0, 0), (spec.history_length - last.shape[1], 0))))
    except Exception as exc:  # the engine's own error types
        raise _vocabulary_error(model.name, dataset.n_items, exc) from None
    rows = history_rows(history, users, spec.history_length)
    produced = model.encode_rows(rows)
    if len(produced) > 1 and np.ptp(produced, axis=0).max() <= 1e-6 * max(float(np.abs(produced).max()), 1e-12):
        raise ExportError(f"{model.name} returns the same vector for every history; it must read the ids "
                          "(item rows: catalog index + 1, 0 = padding)")
    padding = {"cosine_gap": 0.0}
    if not model.fixed_length:
        padding["cosine_gap"] = _padding_gap(model, history, users)
        if padding["cosine_gap"] > PADDING_TOLERANCE:
            model.pad_to_length()  # the device pads to L as every check here did
    padding["padded_to"] = spec.history_length if model.fixed_length else "longest history"
    writer = BundleWriter(out, name or Path(out).name)
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
    reference = _write_reference(writer, synthetic, model.encode_rows(synthetic), table, 10)
    if content:
        _add_content(writer, content, dataset, split, table, ExportConfig(formats=(fmt,), quantize="int8"))
    produced = model.encode_rows(rows)
    metrics = {"monitoring": score_baseline(produced, table, [history.of(u) for u in users]),
               **_test_metrics(split, dataset, model, table)}
    return writer.finish(dim=spec.dim, items=items,
                         defaults={"k": 10, "history_length": spec.history_length, "diversity": 0.0, "short_list": 100,
                                   **replay_defaults(dataset)},
                         metrics=metrics, budgets={}, reference=reference,
                         data_version={"source": public_source(dataset.meta), "items": dataset.n_items})


def load_torch_module(reference: str):
    """'package.module:factory' -> the torch.nn.Module the factory returns (the current folder is importable,
    as for `python -m`), or a ConfigError saying what to fix."""
    import importlib
    import os
    import sys

    import torch

    module_name, _, factory = reference.partition(":")
    if not module_name or not factory:
        raise ConfigError(f"--torch-module takes MODULE:FUNCTION (e.g. mymodels:build_encoder), not {reference!r}: "
                          "a module importable from here and a function returning your torch.nn.Module")
    here = os.getcwd()
    added = here not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        imported = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        hint = (f": run edgerec in the folder holding {module_name.replace('.', '/')}.py, or add that folder to "
                "PYTHONPATH") if exc.name and module_name.startswith(exc.name) else ""
        raise ConfigError(f"cannot import {module_name} ({exc}){hint}") from None
    except Exception as exc:  # the user's module failed while importing
        raise ConfigError(f"importing {module_name} failed ({type(exc).__name__}: {exc})") from None
    finally:
        if added:
            sys.path.remove(here)
    build = getattr(imported, factory, None)
    if not callable(build):
        raise ConfigError(f"{module_name} has no function {factory!r} to call")
    try:
        module = build()
    except Exception as exc:
        raise ConfigError(f"{reference}() failed ({type(exc).__name__}: {exc}); the factory is called without "
                          "arguments") from None
    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"{reference}() returned a {type(module).__name__}, not a torch.nn.Module")
    return module


def _adapted(module, spec: EncoderSpec, sample):
    """The module with its output made (batch, dim): tuple -> first, mapping -> spec's output name,
    (batch, history, dim) -> newest position. Returns (module, what was adapted)."""
    import torch

    kind = type(module).__name__
    with torch.no_grad():
        try:
            out = module(sample)
        except Exception as exc:
            raise ExportError(f"{kind} failed when called on a {tuple(sample.shape)} {spec.input_dtype} tensor of "
                              f"item rows ({type(exc).__name__}: {exc}); its forward must take one such tensor "
                              "(the spec's input.dtype and history_length)") from None
    steps = []
    if isinstance(out, dict):
        if spec.output_name not in out:
            raise ExportError(f"{kind} returns a mapping with keys {list(out)}; none is the spec's output.name "
                              f"{spec.output_name!r}")
        steps.append(("key", spec.output_name))
        out = out[spec.output_name]
    elif isinstance(out, (tuple, list)):
        steps.append(("first", 0))
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise ExportError(f"{kind} returns a {type(out).__name__}; it must return a (batch, dim) tensor")
    if out.dim() == 3:
        steps.append(("newest", -1))
        out = out[:, -1]
    if out.dim() != 2 or out.shape[1] != spec.dim:
        raise ExportError(f"{kind} returns shape {tuple(out.shape)}; the spec says (batch, {spec.dim}): dim must "
                          "be the width of the user vector and of the item vectors")
    if not steps:
        return module, None

    class Adapted(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, ids):
            value = self.inner(ids)
            for how, key in steps:
                value = value[:, key] if how == "newest" else value[key]
            return value

    labels = {"key": "the output named in the spec", "first": "the first element of the tuple",
              "newest": "the last position of its (batch, positions, dim) output"}
    return Adapted(module).eval(), ", ".join(labels[how] for how, _ in steps)


def bundle_torch_module(module, spec: EncoderSpec, item_vectors, data_dir: str | Path, out: str | Path,
                        *, formats: tuple[str, ...] = ("onnx",), **kwargs) -> Manifest:
    """Export any PyTorch module that follows the spec to ONNX (or TFLite), check it against PyTorch on real
    histories, then bundle it."""
    import torch

    from edgerec.export.formats import export_onnx, export_tflite

    dtype = torch.int32 if spec.input_dtype == "int32" else torch.int64
    dataset = load_dataset(data_dir)
    items = read_vectors(item_vectors, "the item vectors", rows=dataset.n_items, dim=spec.dim)  # before the export
    split = leave_last_out(dataset)
    real = history_rows(split.history("test"), split.test_users[:CHECK_USERS], spec.history_length)
    sample = torch.ones(2, spec.history_length, dtype=dtype)
    kind = type(module).__name__
    module, adapted = _adapted(module.eval(), spec, sample)
    with tempfile.TemporaryDirectory(prefix="edgerec-custom-") as scratch:
        path = Path(scratch) / ("user_encoder.onnx" if "onnx" in formats else "user_encoder.tflite")
        if path.suffix == ".onnx":
            export_onnx(module, {spec.input_name: sample}, {spec.input_name: {0: "batch", 1: "history"}},
                        [spec.output_name], path, max_sizes={"history": spec.history_length})
        else:
            export_tflite(module, (sample[:1],), path)
        last = _last_rows(dataset.n_items, spec.history_length)
        with torch.no_grad():
            try:
                module(torch.as_tensor(np.pad(last, ((0, 0), (spec.history_length - last.shape[1], 0))), dtype=dtype))
                expected = module(torch.as_tensor(real, dtype=dtype)).numpy()
            except Exception as exc:  # an index error from an embedding smaller than the catalog, most often
                raise _vocabulary_error(kind, dataset.n_items, exc) from None
        got = _FileEncoder(path, path.suffix[1:], spec).encode_rows(real)
        scale = max(float(np.abs(expected).max()), 1e-12)
        diff = float(np.abs(got - expected).max())
        agreement = float(overlap(top_k_rows(expected, items, 10), top_k_rows(got, items, 10)).mean())
        if diff > 1e-4 * scale or agreement < 0.99:
            raise ExportError(f"the exported {type(module).__name__} does not match PyTorch on real histories "
                              f"(max |diff| {diff:.3g}, top-10 agreement {agreement:.3f})")
        parity = {"reference": "pytorch", "max_abs_diff": diff, "top10_agreement": agreement,
                  "rows": int(len(real)), **({"adapted": adapted} if adapted else {})}
        return bundle_user_model(path, spec, item_vectors, data_dir, out, reference_parity=parity, **kwargs)


def own_teacher(teacher: str, spec: str | None, vectors: str | None, n_items: int):
    """A user's ONNX file or PyTorch module (`module:factory`) as a distillation teacher
    (compress/own_teacher.py), checked as `export --encoder` checks it."""
    import torch

    from edgerec.compress.own_teacher import OwnTeacher

    if not (spec and vectors):
        raise ConfigError(f"--teacher {Path(teacher).name} is not an edgerec checkpoint folder; your own teacher "
                          "needs --teacher-spec and --teacher-vectors")
    encoder_spec = EncoderSpec.load(spec)
    items = read_vectors(vectors, "the teacher's item vectors", rows=n_items, dim=encoder_spec.dim)
    if Path(teacher).suffix == ".onnx" and Path(teacher).is_file():
        encode = _FileEncoder(Path(teacher), "onnx", encoder_spec).encode_rows
    elif ":" in teacher and not Path(teacher).exists():
        dtype = torch.int32 if encoder_spec.input_dtype == "int32" else torch.int64
        module, _ = _adapted(load_torch_module(teacher).eval(), encoder_spec,
                             torch.ones(2, encoder_spec.history_length, dtype=dtype))

        def encode(rows):
            with torch.no_grad():
                return module(torch.as_tensor(rows, dtype=dtype)).numpy()
    else:
        raise ConfigError(f"--teacher {Path(teacher).name}: give an edgerec checkpoint folder, an .onnx file or "
                          "module:factory")
    return OwnTeacher(lambda rows: np.asarray(encode(rows)), items, encoder_spec.history_length)
