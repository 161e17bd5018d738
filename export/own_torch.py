"""A user's own PyTorch module as a bundle's user encoder or as a distillation teacher.

The module is imported from `module:factory`, its output adapted to the
contract of export/own_encoder.py (a tuple's first element, a mapping's named
output, the newest position of a (batch, history, dim) output), exported to
ONNX or TFLite, checked against PyTorch on real histories, then bundled by
export/custom.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgerec.data.split import leave_last_out
from edgerec.data.store import load_dataset
from edgerec.data.tables import read_vectors
from edgerec.errors import ConfigError, ExportError, ModelError
from edgerec.export.custom import (
    BATCH_USERS,
    CHECK_USERS,
    bundle_user_model,
    check_batch_independence,
    check_deterministic,
    refuse_filled_out,
)
from edgerec.export.own_encoder import (
    EncoderSpec,
    FileEncoder,
    item_sweep,
    last_rows,
    vocabulary_error,
)
from edgerec.export.parity import overlap, top_k_rows
from edgerec.models.scoring import history_rows
from edgerec.runtime.bundle import Manifest


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

    refuse_filled_out(out)
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
        last = last_rows(dataset.n_items, spec.history_length)
        with torch.no_grad():
            try:
                module(torch.as_tensor(np.pad(last, ((0, 0), (spec.history_length - last.shape[1], 0))), dtype=dtype))
                expected = module(torch.as_tensor(real, dtype=dtype)).numpy()
                again = module(torch.as_tensor(real, dtype=dtype)).numpy()
            except Exception as exc:  # an index error from an embedding smaller than the catalog, most often
                raise vocabulary_error(kind, dataset.n_items, exc) from None
        check_deterministic(kind, expected, again)
        got = FileEncoder(path, path.suffix[1:], spec).encode_rows(real)
        scale = max(float(np.abs(expected).max()), 1e-12)
        diff = float(np.abs(got - expected).max())
        agreement = float(overlap(top_k_rows(expected, items, 10), top_k_rows(got, items, 10)).mean())
        if not (diff <= 1e-4 * scale and agreement >= 0.99):  # NaN fails too
            raise ExportError(f"the exported {type(module).__name__} does not match PyTorch on real histories "
                              f"(max |diff| {diff:.3g}, top-10 agreement {agreement:.3f})")
        parity = {"reference": "pytorch", "max_abs_diff": diff, "top10_agreement": agreement,
                  "rows": int(len(real)), **({"adapted": adapted} if adapted else {})}
        return bundle_user_model(path, spec, item_vectors, data_dir, out, reference_parity=parity, **kwargs)


def _check_teacher_vocabulary(encode, n_items: int, length: int, teacher: str) -> None:
    """Every item row once, before training: a teacher whose table stops short failed mid-distillation."""
    try:
        out = np.asarray(encode(item_sweep(n_items, length)))
    except Exception as exc:  # noqa: BLE001 (the user's module raises its own types)
        raise vocabulary_error(f"--teacher {teacher}", n_items, f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if not np.isfinite(out).all():
        raise ModelError(f"--teacher {teacher} returns NaN or infinite values for some items; every item must give "
                         "a finite vector")


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
        file = FileEncoder(Path(teacher), "onnx", encoder_spec)
        encode = file.encode_rows
        _check_teacher_vocabulary(file.encoder.encode_rows, n_items, encoder_spec.history_length, file.name)
    elif ":" in teacher and not Path(teacher).exists():
        dtype = torch.int32 if encoder_spec.input_dtype == "int32" else torch.int64
        module, _ = _adapted(load_torch_module(teacher).eval(), encoder_spec,
                             torch.ones(2, encoder_spec.history_length, dtype=dtype))

        def call(rows):
            with torch.no_grad():
                return module(torch.as_tensor(rows, dtype=dtype)).numpy()

        def encode(rows):
            try:
                return call(rows)
            except Exception as exc:  # noqa: BLE001 (the user's module raises its own types)
                raise ModelError(f"--teacher {teacher} fails on these histories ({type(exc).__name__}: "
                                 f"{str(exc)[:200]}); its ids are item rows 1 to {n_items:,} (0 = padding), its "
                                 "output (batch, dim)") from None
        _check_teacher_vocabulary(call, n_items, encoder_spec.history_length, teacher)
    else:
        raise ConfigError(f"--teacher {Path(teacher).name}: give an edgerec checkpoint folder, an .onnx file or "
                          "module:factory")
    rows, name = _sample_rows(n_items, encoder_spec.history_length), f"--teacher {Path(teacher).name}"
    batched = np.asarray(encode(rows))
    check_deterministic(name, batched, np.asarray(encode(rows)))  # else dropout reads as a batch dependence
    check_batch_independence(name, encode, rows, batched)
    return OwnTeacher(lambda rows: np.asarray(encode(rows)), items, encoder_spec.history_length)


def _sample_rows(n_items: int, length: int) -> np.ndarray:
    """A few histories of varied lengths over the whole catalog, left-padded (item rows, 0 = padding)."""
    rng = np.random.default_rng(0)
    rows = rng.integers(1, n_items + 1, size=(BATCH_USERS, length))
    rows[np.arange(length)[None, :] < rng.integers(0, length, BATCH_USERS)[:, None]] = 0
    return rows
