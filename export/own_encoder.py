"""A user's own user-encoder file (ONNX or TFLite) and the small spec that declares its contract.

The spec names the file's one input (a (batch, history) tensor of item rows:
catalog index + 1, 0 = padding, left-padded, newest last), its output (a
(batch, dim) user vector) and the history length:

    {"input": {"name": "ids", "dtype": "int64", "history_length": 50},
     "output": {"name": "user_vector"}, "dim": 64}

`FileEncoder` runs the file the way the device runs it and refuses, with what
to change, a file whose inputs, shapes or outputs break the contract.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError, EdgerecError, ExportError
from edgerec.models.scoring import history_rows
from edgerec.runtime.backends import open_backend
from edgerec.runtime.bundle import ModelEntry, TensorSpec
from edgerec.runtime.encoder import UserEncoder

EXAMPLE = ('{"input": {"name": "ids", "dtype": "int64", "history_length": 50}, "output": {"name": "user_vector"}, '
           '"dim": 64}')


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


def _refuse_other_output_dtype(backend, fmt: str, name: str) -> None:
    """The manifest declares a float32 user vector, and a runtime reads the output's buffer as one: a float64
    or integer output (forward ending in .double() or .long()) read so is garbage."""
    if fmt == "onnx":
        kind = backend.session.get_outputs()[0].type
        ok = kind == "tensor(float)"
    else:
        kind = str(np.dtype(backend.outputs[0]["dtype"]))
        ok = kind == "float32"
    if not ok:
        raise ExportError(f"{name} returns {kind} user vectors; a bundle's user encoder returns float32: end its "
                          "forward with .float() (PyTorch) and export it again")


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


class FileEncoder:
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
        _refuse_other_output_dtype(backend, fmt, self.name)
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


def last_rows(n_items: int, length: int) -> np.ndarray:
    """One history of the catalog's highest item rows: a model whose vocabulary is smaller than the catalog
    (trained on an older one) fails on it."""
    return np.arange(max(1, n_items - length + 1), n_items + 1, dtype=np.int64)[None, -length:]


def item_sweep(n_items: int, length: int) -> np.ndarray:
    """Histories that hold every item row once, `length` a history (the last one left-padded): a model that
    fails or returns NaN for some items does so on one of them."""
    rows = np.zeros(-(-n_items // length) * length, np.int64)
    rows[len(rows) - n_items:] = np.arange(1, n_items + 1)
    return rows.reshape(-1, length)


def vocabulary_error(who: str, n_items: int, exc: Exception) -> ExportError:
    return ExportError(f"{who} fails on the catalog's last items ({exc}); its ids must cover every item of "
                       f"items.csv: rows 1 to {n_items:,} (0 = padding)")
