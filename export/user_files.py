"""A user's own model file, made fit to ship: what it says about where and by whom it was built stays behind.

Every device that installs a bundle receives its files, so a file the user
brings (`export --encoder x.onnx | x.tflite`) goes in without the notes its
tools left in it: ONNX doc strings, stack traces and key-value metadata (they
hold host paths, user names, free text), and TFLite metadata entries (model
cards, label files, a packed zip of associated files after the model). Only
what an engine reads to run the model is kept; the cleaned TFLite file is run
beside the original and must give the same outputs bit for bit.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgerec.errors import ExportError

TFLITE_IDENTIFIER = b"TFL3"  # the flatbuffer file identifier of every TFLite model (bytes 4 to 8)
TFLITE_KEPT_METADATA = {b"min_runtime_version", b"keep_stablehlo_constant"}  # converters' own: a version, a flag
TFLITE_ALIGNMENT = 16  # TFLite's own writer aligns every weight buffer so; kernels may assume it


def portable_onnx(source: Path, target: Path) -> None:
    """The user's ONNX file as one self-contained file (weights kept in external data files read in)
    without doc strings or metadata anywhere in it."""
    import onnx

    from edgerec.export.formats import strip_debug_metadata

    try:
        model = onnx.load(str(source))
    except Exception as exc:  # protobuf and onnx raise several types
        raise ExportError(f"{source.name} cannot be loaded as ONNX ({first_words(exc)}); give the file your "
                          "exporter wrote") from None
    strip_debug_metadata(model)
    try:
        onnx.save(model, str(target))
    except ValueError:  # protobuf's 2 GB limit of one file
        raise ExportError(f"{source.name} holds more than 2 GB of weights, too many for one file on a device; "
                          "shrink or quantize the model") from None


HOST_FOLDERS = re.compile(r"(?<![\w.~-])~?(?:[A-Za-z]:)?[/\\](?:[^\s'\"()\[\],;:/\\]+[/\\])+")  # /a/b/ of /a/b/c


def first_words(exc: Exception) -> str:
    """An engine's error in a message: its first line, at most 200 characters, or its type when it is silent;
    absolute paths in it cut to their last name (onnx names the model's folder and external data files)."""
    lines = str(exc).strip().splitlines()
    return HOST_FOLDERS.sub("", lines[0] if lines else type(exc).__name__)[:200]


def portable_tflite(source: Path, target: Path) -> None:
    """The user's TFLite file without its metadata entries (but the runtime version), description, the names
    its converter gave inner tensors and any bytes after the model; refused when its weights live outside the
    flatbuffer (models over 2 GB)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    data = source.read_bytes()
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ExportError(f"{source.name} is not a TFLite model (no TFL3 identifier); give the .tflite file your "
                          "converter wrote")
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # a damaged flatbuffer fails in struct or index errors
        raise ExportError(f"{source.name} cannot be read as TFLite ({type(exc).__name__}); give the file your "
                          "converter wrote") from None
    buffers = model.buffers or []
    if model.externalBuffers or any(b.offset > 1 for b in buffers):
        raise ExportError(f"{source.name} keeps its weights outside the model (a file over 2 GB), too many for a "
                          "device; shrink or quantize the model")
    kept = [m for m in model.metadata or [] if m.name in TFLITE_KEPT_METADATA]
    used = {m.buffer for m in kept}
    for index in {m.buffer for m in model.metadata or []} | set(model.metadataBuffer or []):
        if index not in used and 0 <= index < len(buffers):
            buffers[index].data = None  # the entry's bytes go; the buffer stays so tensors keep their indices
    model.metadata, model.metadataBuffer, model.description = kept or None, None, None
    _neutral_names(model)
    model.buffers = [_AlignedBuffer(b.data, b.offset, b.size) for b in buffers] or None
    builder = flatbuffers.Builder(len(data))
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    target.write_bytes(bytes(builder.Output()))
    _same_outputs(source, target)


def _neutral_names(model) -> None:
    """Tensors named t0, t1, ... and subgraphs main, s1, s2, ... (converters name them after the user's Python modules
    and classes, e.g. mymodel.Mean/torch.nn.modules.sparse.Embedding_emb); the first subgraph's inputs and
    outputs keep their names, which an app may look up (the runtime matches them by position). Operators and
    signatures point at tensors and subgraphs by index, so nothing else changes."""
    for number, graph in enumerate(model.subgraphs or []):
        ends = [x for x in (graph.inputs, graph.outputs) if x is not None]  # numpy arrays: no `or []`
        kept = {int(i) for x in ends for i in x} if number == 0 else set()
        for index, tensor in enumerate(graph.tensors or []):
            if index not in kept:
                tensor.name = f"t{index}"
        graph.name = f"s{number}" if number else "main"  # the first one too: a converter may take the user's name


class _AlignedBuffer:
    """Packs a TFLite buffer as the schema's BufferT does, with its bytes aligned for the kernels."""

    def __init__(self, data, offset: int, size: int):
        self.data, self.offset, self.size = data, offset, size

    def Pack(self, builder):  # noqa: N802 (the flatbuffers object API's name)
        from ai_edge_litert import schema_py_generated as schema

        data = None
        if self.data is not None:
            payload = np.asarray(self.data, np.uint8).tobytes()
            builder.StartVector(1, len(payload), TFLITE_ALIGNMENT)
            builder.head -= len(payload)
            builder.Bytes[builder.head:builder.head + len(payload)] = payload
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        schema.BufferAddOffset(builder, self.offset)
        schema.BufferAddSize(builder, self.size)
        return schema.BufferEnd(builder)


def _same_outputs(source: Path, target: Path) -> None:
    """Both files on the same input (every input zero: padding for an id input): equal to the bit."""
    from ai_edge_litert.interpreter import Interpreter

    outputs = []
    for path in (source, target):
        try:
            interpreter = Interpreter(model_path=str(path), num_threads=1)
            interpreter.allocate_tensors()
            for detail in interpreter.get_input_details():
                interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
            interpreter.invoke()
        except Exception as exc:  # the interpreter raises ValueError and RuntimeError
            if path == source:
                raise ExportError(f"{source.name} cannot be run by the TFLite interpreter ({first_words(exc)}); give "
                                  "the file your converter wrote") from None
            raise _not_clean(source) from None
        outputs.append([interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()])
    if len(outputs[0]) != len(outputs[1]) or not all(
            a.shape == b.shape and a.tobytes() == b.tobytes() for a, b in zip(*outputs)):
        raise _not_clean(source)


def _not_clean(source: Path) -> ExportError:
    return ExportError(f"{source.name} could not be cleaned of its metadata without changing its outputs; "
                       "convert it again without metadata (no model card or label files) and export that")
