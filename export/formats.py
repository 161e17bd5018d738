"""PyTorch modules -> ONNX (dynamic axes) and TFLite (fixed shapes).

ONNX: torch.onnx.export with the dynamo exporter, opset 20, weights inside
the file. Opset 20 has a Gelu operator (onnxruntime 1.17 or newer runs it):
without it the tanh approximation becomes seven element-wise nodes per block,
and at batch 1 the runtime pays per node, not per multiply.

The exporter annotates every node with debug metadata (module names, the
FX node, the Python stack trace with the host's file paths): it is stripped,
since a bundle carries no host paths, and on a small encoder it was most of
the file.

TFLite: litert-torch, which converts fixed shapes only, so the caller picks
the batch and history length; integer inputs become int32.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from pathlib import Path

import torch

from edgerec.errors import ExportError

OPSET = 20


@contextlib.contextmanager
def _quiet():
    """The exporters print progress and warnings about packages we do not use (torchvision)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logging.disable(previous)


def export_onnx(module: torch.nn.Module, sample: dict[str, torch.Tensor], dynamic: dict[str, dict[int, str]],
                outputs: list[str], path: str | os.PathLike, max_sizes: dict[str, int] | None = None) -> Path:
    """Export `module` (called with the sample's tensors as keyword arguments, in order).

    dynamic: input name -> {axis: axis name}; max_sizes: axis name -> largest size allowed.
    """
    from torch.export import Dim

    path = Path(path)
    max_sizes = max_sizes or {}
    dims: dict[str, Dim] = {}
    shapes = {}
    for name, axes in dynamic.items():
        axes = {axis: label for axis, label in axes.items() if max_sizes.get(label, 2) >= 2}  # torch.export's
        # dims start at 2: an axis at most 1 long (a history of 1) is exported static, at the sample's size
        shapes[name] = {axis: dims.setdefault(label, Dim(label, max=max_sizes.get(label, 1 << 20)) if label in max_sizes
                                             else Dim(label)) for axis, label in axes.items()}
    try:
        with _quiet():
            torch.onnx.export(module.eval(), tuple(sample.values()), str(path), dynamo=True, opset_version=OPSET,
                              external_data=False, input_names=list(sample), output_names=outputs,
                              dynamic_shapes=shapes)
    except Exception as exc:  # the exporter raises many error types
        raise ExportError(f"ONNX export of {type(module).__name__} failed: {exporter_summary(exc)}") from None
    import onnx

    model = onnx.load(str(path))
    strip_debug_metadata(model)
    onnx.save(model, str(path))
    return path


def exporter_summary(exc: Exception) -> str:
    """torch.export's pages of advice, graph dumps and stack cut to the cause and the user's line (its file's
    name, not its path), with what to change."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    cause = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    summary = re.search(r"## Exception summary\s*\n\s*(.+)", text)
    if summary:
        cause = re.sub(r"^<class '(?:[\w.]+\.)?(\w+)'>", r"\1", summary.group(1).strip())
    where = re.findall(r'File "([^"]+)", line (\d+), in \w+\n\s*(.+)', text)
    if where:
        file, line, code = where[-1]
        cause += f" (at {Path(file).name} line {line}: {code.strip()})"
    advice = ""
    if "data-dependent" in text or "GuardOnDataDependent" in text:
        advice = ("; the graph cannot branch on tensor values: use torch.where (or torch.cond) instead of an `if` "
                  "on the ids, and shapes that do not depend on them")
    return (cause[:600] + advice) if len(cause) > 600 else cause + advice


def strip_debug_metadata(model) -> None:
    """Drop, in place, every note an engine does not read: doc strings and key-value metadata of the model, its
    graphs (the bodies of If / Loop / Scan and of local functions too), nodes, attributes, values and weights,
    the training graphs, and the producer's name and version. They hold stack traces, host paths, user names
    and free text; torch's exporter writes the parameters' names into the graph's metadata."""
    model.doc_string = model.producer_name = model.producer_version = ""
    del model.metadata_props[:]
    del model.training_info[:]  # a second graph with its own weights, for on-device training no runtime here runs
    graphs = [model.graph, *model.functions]  # a FunctionProto holds nodes and values as a graph does
    while graphs:
        graph = graphs.pop()
        graph.doc_string = ""
        del graph.metadata_props[:]
        values = [*graph.value_info]
        if isinstance(graph, type(model.graph)):
            values += [*graph.input, *graph.output, *graph.initializer,
                       *(t for sparse in graph.sparse_initializer for t in (sparse.values, sparse.indices))]
        for value in values:
            value.doc_string = ""
            del value.metadata_props[:]
        for attribute in getattr(graph, "attribute_proto", ()):  # a function's attributes' default values
            attribute.doc_string = ""
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            for attribute in node.attribute:
                attribute.doc_string = ""
                graphs.extend([attribute.g] if attribute.HasField("g") else [])
                graphs.extend(attribute.graphs)
                for tensor in ([attribute.t] if attribute.HasField("t") else []) + list(attribute.tensors):
                    tensor.doc_string = ""
                    del tensor.metadata_props[:]


def export_tflite(module: torch.nn.Module, sample: tuple[torch.Tensor, ...], path: str | os.PathLike) -> Path:
    """Convert `module` at the sample's fixed shapes (int64 inputs become int32)."""
    path = Path(path)
    sample = tuple(t.to(torch.int32) if t.dtype == torch.int64 else t for t in sample)
    try:
        with _quiet():
            import litert_torch

            litert_torch.convert(module.eval(), sample).export(str(path))
    except ImportError:
        raise ExportError("TFLite export needs litert-torch: pip install 'edgerec[tools]'") from None
    except Exception as exc:
        raise ExportError(f"TFLite conversion of {type(module).__name__} failed: {exporter_summary(exc)}") from None
    return path
