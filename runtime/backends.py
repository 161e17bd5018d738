"""Inference engines behind one small interface: onnxruntime and the LiteRT (TFLite) interpreter.

Each engine is imported only when a model of its format is opened, so a
device that ships one engine never needs the other.
"""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path

import numpy as np

from edgerec.errors import BundleError, ConfigError
from edgerec.runtime import checks

BACKENDS = ("onnx", "tflite")
OPTIMIZATIONS = ("none", "basic", "extended", "all")


class Backend:
    """Runs one model file: named numpy inputs in, list of numpy outputs out."""

    format: str

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    @property
    def input_names(self) -> list[str]:
        raise NotImplementedError


def import_onnxruntime():
    """onnxruntime, refused where usearch came first. usearch's compiled module carries its own copy of
    the C++ standard library and makes its locale ids process-wide (unique symbols); onnxruntime imported
    after it binds to them and dies in its import (segmentation fault; usearch 2.26, onnxruntime 1.32).
    The runtime itself imports usearch only after onnxruntime (retrieval.import_usearch); this catches an
    app that imported usearch itself, so it gets an error it can act on rather than a dead process."""
    if "usearch.compiled" in sys.modules and "onnxruntime" not in sys.modules:
        raise ConfigError("usearch was imported before onnxruntime, and importing onnxruntime now would "
                          "crash the process (the two libraries' C++ runtimes clash): import onnxruntime "
                          "first, before usearch")
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("the onnx backend needs onnxruntime: pip install onnxruntime") from None
    onnxruntime.disable_telemetry_events()  # where an app imported it before edgerec set ORT_DISABLE_TELEMETRY
    return onnxruntime


class OnnxBackend(Backend):
    format = "onnx"

    def __init__(self, path: str | Path | bytes, threads: int = 1, optimization: str = "all",
                 config: dict | None = None, name: str | None = None):
        path, name = model_source(path, name)
        checks.choice(optimization, OPTIMIZATIONS, "optimization")
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        options.graph_optimization_level = {
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[optimization]
        for key, value in (config or {}).items():  # engine settings a bundle asks for (see ModelEntry.extra)
            options.add_session_config_entry(key, str(value))
        try:
            source = path if isinstance(path, bytes) else str(path)
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise BundleError(f"{name} cannot be loaded by onnxruntime ({engine_reason(exc, path)}); the model file is "
                              "damaged or was exported for a newer runtime") from None
        self._names = [i.name for i in self.session.get_inputs()]

    @property
    def input_names(self) -> list[str]:
        return self._names

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, feeds)  # onnxruntime sessions are safe to call from several threads


def model_source(path: str | Path | bytes, name: str | None) -> tuple[Path | bytes, str]:
    """The model as an engine reads it (a file's path or its bytes) and the name errors show; a path must be
    a file (the engines' own errors would show the whole path)."""
    if isinstance(path, bytes):
        return path, name or "model"
    if not isinstance(path, (str, Path)):
        raise ConfigError(f"a model is a file path or the file's bytes, not {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{name or path.name}: no such model file (the path is missing or not a file)")
    return path, name or path.name


def engine_reason(exc: Exception, path: Path | bytes = b"") -> str:
    """An engine's reason without the file's path and onnxruntime's C++ source location and signature."""
    text = " ".join(str(exc).split())
    if isinstance(path, Path):  # an unreadable file: the engines name it by the path they were given
        text = text.replace(str(path), path.name)
    text = re.sub(r"Load model from \S+ failed:", "", text)
    return re.sub(r"\S*onnxruntime_src\S*:\d+ .*?\) (?=[A-Z])", "", text).strip()


class TfliteBackend(Backend):
    """The LiteRT interpreter; fixed input shapes; calls are serialised (interpreters are not thread-safe)."""

    format = "tflite"

    def __init__(self, path: str | Path | bytes, threads: int = 1, name: str | None = None):
        path, name = model_source(path, name)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ConfigError("the tflite backend needs ai-edge-litert: pip install 'edgerec[tflite]'") from None
        try:
            if isinstance(path, bytes):
                self._content = path  # the interpreter reads from this buffer for its whole life
                self.interpreter = Interpreter(model_content=path, num_threads=threads)
            else:
                self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BundleError(f"{name} cannot be loaded by the TFLite interpreter ({engine_reason(exc, path)}); "
                              "the model file is damaged") from None
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()
        self.lock = threading.Lock()

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.inputs]

    def input_shape(self, position: int = 0) -> tuple[int, ...]:
        return tuple(int(x) for x in self.inputs[position]["shape"])

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Inputs are matched by position (TFLite names are generated); each must have the fixed shape."""
        with self.lock:
            for detail, value in zip(self.inputs, feeds.values()):
                self.interpreter.set_tensor(detail["index"], np.ascontiguousarray(value, dtype=detail["dtype"]))
            self.interpreter.invoke()
            return [self.interpreter.get_tensor(o["index"]).copy() for o in self.outputs]


def open_backend(path: str | Path | bytes, fmt: str, threads: int = 1, optimization: str = "all",
                 config: dict | None = None, name: str | None = None) -> Backend:
    """An engine for a model file, or for its bytes (already read and verified by the caller)."""
    if fmt == "onnx":
        return OnnxBackend(path, threads, optimization, config, name)
    if fmt == "tflite":
        return TfliteBackend(path, threads, name)
    raise ConfigError(f"unknown model format {fmt!r}; use one of {', '.join(BACKENDS)}")


def available_backends() -> list[str]:
    """Engines importable here, in order of preference."""
    import importlib.util

    found = []
    if importlib.util.find_spec("onnxruntime"):
        found.append("onnx")
    if importlib.util.find_spec("ai_edge_litert"):
        found.append("tflite")
    return found


def open_model(path: str | Path | bytes, entry, threads: int = 1) -> Backend:
    """Open a bundle's model file (or its verified bytes, see Bundle.model_bytes) with the engine
    settings its manifest entry records."""
    return open_backend(path, entry.format, threads, config=entry.extra.get("session_config"), name=entry.file)
