"""Guards of the inference engines (runtime/backends.py): the onnxruntime session's settings, the
TFLite interpreter's fixed inputs, which engine opens which format, and the load errors (a file's
name, the engine's reason, never the host path), on the golden bundle's two encoder files."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.errors import BundleError, ConfigError
from edgerec.runtime import backends
from edgerec.runtime.backends import (
    BACKENDS,
    OnnxBackend,
    TfliteBackend,
    available_backends,
    engine_reason,
    open_backend,
    open_model,
)

ort = pytest.importorskip("onnxruntime")
ONNX_SOURCE = ("[ONNXRuntimeError] : 1 : FAIL : Load model from /home/ann/models/x.onnx failed:/onnxruntime_src/"
               "onnxruntime/core/graph/model.cc:256 onnxruntime::Model::Model(onnx::ModelProto&&, const "
               "onnxruntime::PathString&, const onnxruntime::logging::Logger&) Unsupported model IR version: 99, "
               "max supported IR version: 14\n")


@pytest.fixture(scope="module")
def onnx_bytes(golden_bundle):
    return (golden_bundle / "user_encoder.onnx").read_bytes()


@pytest.fixture(scope="module")
def tflite_path(golden_bundle):
    pytest.importorskip("ai_edge_litert", reason="the TFLite guards need ai-edge-litert")
    return golden_bundle / "user_encoder.tflite"


def options(backend):
    return backend.session.get_session_options()


def test_the_onnx_session_runs_sequentially_on_the_cpu_with_the_threads_asked_for(golden_bundle):
    backend = open_backend(str(golden_bundle / "user_encoder.onnx"), "onnx", threads=3)
    got = options(backend)
    assert (got.intra_op_num_threads, got.inter_op_num_threads) == (3, 1)
    assert got.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert got.log_severity_level == 3  # errors only: warnings about the file are not the app's log
    assert got.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert backend.session.get_providers() == ["CPUExecutionProvider"]
    assert isinstance(backend, OnnxBackend) and backend.format == "onnx" and backend.input_names == ["ids"]


def test_without_settings_a_session_has_one_thread_and_every_optimization(onnx_bytes):
    for backend in (open_backend(onnx_bytes, "onnx"), OnnxBackend(onnx_bytes),
                    open_model(onnx_bytes, SimpleNamespace(format="onnx", file="u.onnx", extra={}))):
        got = options(backend)
        assert got.intra_op_num_threads == 1
        assert got.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


@pytest.mark.parametrize(("name", "level"), [("none", "ORT_DISABLE_ALL"), ("basic", "ORT_ENABLE_BASIC"),
                                              ("extended", "ORT_ENABLE_EXTENDED"), ("all", "ORT_ENABLE_ALL")])
def test_each_optimization_name_sets_its_own_level(onnx_bytes, name, level):
    backend = open_backend(onnx_bytes, "onnx", optimization=name)
    assert options(backend).graph_optimization_level == getattr(ort.GraphOptimizationLevel, level)


def test_an_unknown_optimization_is_a_config_error_naming_the_choices(onnx_bytes):
    with pytest.raises(ConfigError, match="optimization must be one of none, basic, extended, all"):
        open_backend(onnx_bytes, "onnx", optimization="fast")


def test_the_bundles_session_config_reaches_the_session_as_text(golden_bundle, onnx_bytes):
    backend = open_backend(onnx_bytes, "onnx", config={"session.disable_quant_qdq": 1,
                                                       "session.intra_op.allow_spinning": "0"})
    assert options(backend).get_session_config_entry("session.disable_quant_qdq") == "1"
    assert options(backend).get_session_config_entry("session.intra_op.allow_spinning") == "0"
    from edgerec.runtime.bundle import Bundle

    entry = next(e for e in Bundle.open(golden_bundle).manifest.models if e.format == "onnx")
    opened = open_model(onnx_bytes, entry, threads=2)
    assert options(opened).get_session_config_entry("session.disable_quant_qdq") == "1"  # from the manifest
    assert options(opened).intra_op_num_threads == 2


def test_open_model_names_the_entrys_file_in_its_errors():
    entry = SimpleNamespace(format="onnx", file="ranker.onnx", extra={})
    with pytest.raises(BundleError, match=r"^ranker\.onnx cannot be loaded by onnxruntime"):
        open_model(b"not a model" * 10, entry)
    with pytest.raises(ConfigError, match="unknown model format 'coreml'; use one of onnx, tflite"):
        open_model(b"", SimpleNamespace(format="coreml", file="x", extra={}))


def test_both_engines_give_the_same_user_vector(golden_bundle, onnx_bytes, tflite_path):
    ids = np.array([[3, 1, 4, 1, 5]])
    onnx = open_backend(onnx_bytes, "onnx")
    (want,) = onnx.run({"ids": ids.astype(np.int64)})
    tflite = open_backend(tflite_path, "tflite", threads=2)
    got = tflite.run({"anything": ids})  # matched by position; int64 cast to the input's int32
    assert len(got) == 1 and got[0].shape == (1, 8) and got[0].dtype == np.float32
    np.testing.assert_allclose(got[0], want, atol=0.02)  # two int8-weight files
    assert np.abs(want).sum() > 0


def test_a_tflite_engine_reports_its_fixed_inputs(tflite_path):
    backend = open_backend(str(tflite_path), "tflite")
    assert isinstance(backend, TfliteBackend) and backend.format == "tflite"
    assert backend.input_names == ["serving_default_args_0"]
    assert backend.input_shape() == backend.input_shape(0) == (1, 5)
    assert all(type(x) is int for x in backend.input_shape())


def test_a_tflite_engine_opened_from_bytes_runs_after_the_caller_drops_them(tflite_path):
    import gc

    backend = open_backend(bytes(bytearray(tflite_path.read_bytes())), "tflite")
    gc.collect()
    first = backend.run({"ids": np.array([[0, 0, 0, 2, 7]], np.int32)})[0]
    first[:] = 99.0  # the caller's copy: the next run is not changed by it
    again = backend.run({"ids": np.array([[0, 0, 0, 2, 7]], np.int32)})[0]
    assert np.all(np.isfinite(again)) and not np.any(again == 99.0)


def test_tflite_runs_from_several_threads_are_serialised(tflite_path):
    backend = open_backend(tflite_path, "tflite")
    rows = [np.array([[0, 0, i % 7 + 1, 2, 3]], np.int32) for i in range(8)]
    want = [backend.run({"ids": r})[0] for r in rows]
    got: dict[int, np.ndarray] = {}

    def worker(i):
        for _ in range(30):
            got[i] = backend.run({"ids": rows[i]})[0]
            np.testing.assert_array_equal(got[i], want[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(8))


def test_an_engine_not_installed_is_a_config_error_saying_what_to_install(onnx_bytes, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    with pytest.raises(ConfigError, match=r"^the onnx backend needs onnxruntime: pip install onnxruntime$"):
        open_backend(onnx_bytes, "onnx")
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(ConfigError, match=r"^the tflite backend needs ai-edge-litert: pip install 'edgerec\[tflite\]'$"):
        open_backend(b"x", "tflite")


def test_available_backends_lists_the_importable_engines_in_order_of_preference(monkeypatch):
    import importlib.util

    present = {"onnxruntime", "ai_edge_litert"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name in present else None)
    assert available_backends() == ["onnx", "tflite"] and tuple(available_backends()) == BACKENDS
    present = {"ai_edge_litert"}
    assert available_backends() == ["tflite"]
    present = {"onnxruntime"}
    assert available_backends() == ["onnx"]
    present = set()
    assert available_backends() == []


def test_an_unknown_format_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^unknown model format 'ONNX'; use one of onnx, tflite$"):
        open_backend(b"", "ONNX")


# ------------------------------------------------------------------ load errors


def test_the_engines_reason_loses_the_path_and_the_cpp_source_location():
    assert engine_reason(RuntimeError(ONNX_SOURCE)) == (
        "[ONNXRuntimeError] : 1 : FAIL : Unsupported model IR version: 99, max supported IR version: 14")
    assert engine_reason(RuntimeError("a\n  b\tc ")) == "a b c"  # one line, single spaces
    where = Path("/home/ann/models/enc.tflite")  # a file that cannot be read: the engines show the path given
    assert engine_reason(RuntimeError(f"Could not open '{where}'."), where) == "Could not open 'enc.tflite'."
    assert engine_reason(RuntimeError(f"Load model {where} failed. Permission denied"), where) == (
        "Load model enc.tflite failed. Permission denied")


@pytest.fixture(params=["onnx", "tflite"])
def fmt(request):
    if request.param == "tflite":
        pytest.importorskip("ai_edge_litert")
    return request.param


def private_file(tmp_path, name, content=None):
    """A file in a folder whose name must not reach an error message."""
    path = tmp_path / "private-folder" / name
    path.parent.mkdir()
    if content is not None:
        path.write_bytes(content)
    return path


def test_a_damaged_file_is_a_bundle_error_with_its_name_and_the_engines_reason(tmp_path, fmt):
    path = private_file(tmp_path, f"enc.{fmt}", b"not a model" * 100)
    engine = "onnxruntime" if fmt == "onnx" else "the TFLite interpreter"
    with pytest.raises(BundleError, match=rf"^enc\.{fmt} cannot be loaded by {engine} \(.+\); the model file is "
                                          "damaged") as caught:
        open_backend(path, fmt)
    assert "private-folder" not in str(caught.value)
    with pytest.raises(BundleError, match=rf"^model cannot be loaded by {engine}"):
        open_backend(path.read_bytes(), fmt)
    with pytest.raises(BundleError, match=rf"^user\.{fmt} cannot be loaded by {engine}"):
        open_backend(path.read_bytes(), fmt, name="user." + fmt)


def test_a_newer_onnx_file_is_refused_with_the_engines_reason_and_no_path(tmp_path, onnx_bytes):
    path = private_file(tmp_path, "new.onnx", onnx_bytes[:1] + bytes([99]) + onnx_bytes[2:])  # field 1: ir_version
    with pytest.raises(BundleError) as caught:
        open_backend(path, "onnx")
    message = str(caught.value)
    assert message == ("new.onnx cannot be loaded by onnxruntime ([ONNXRuntimeError] : 1 : FAIL : Unsupported "
                       "model IR version: 99, max supported IR version: "
                       f"{message.split('max supported IR version: ')[1].split(')')[0]}); the model file is "
                       "damaged or was exported for a newer runtime")


def test_a_missing_file_is_named_missing_without_its_folder(tmp_path, fmt):
    path = private_file(tmp_path, f"gone.{fmt}")
    with pytest.raises(BundleError, match=rf"^gone\.{fmt}: no such model file") as caught:
        open_backend(path, fmt)
    assert "private-folder" not in str(caught.value) and str(tmp_path) not in str(caught.value)


def test_the_module_names_its_engines():
    assert backends.BACKENDS == ("onnx", "tflite")


def test_the_load_prefix_is_dropped_without_a_source_location():
    text = "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from /p/x.onnx failed:Protobuf parsing failed."
    assert engine_reason(RuntimeError(text)) == "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Protobuf parsing failed."


def test_the_tflite_reason_is_the_interpreters_own(tmp_path):
    pytest.importorskip("ai_edge_litert")
    with pytest.raises(BundleError) as caught:
        open_backend(private_file(tmp_path, "z.tflite", b"\0" * 64), "tflite")
    assert str(caught.value) == ("z.tflite cannot be loaded by the TFLite interpreter (The model is not a valid "
                                 "Flatbuffer buffer); the model file is damaged")


def test_an_unreadable_files_error_names_the_file_not_its_folder(tmp_path, fmt, monkeypatch):
    """A file the app may not read (root, who runs these tests, reads any): the engines name the path."""
    path = private_file(tmp_path, f"locked.{fmt}", b"x")
    if fmt == "onnx":
        def refuse(source, *args, **kwargs):
            raise RuntimeError(f"[ONNXRuntimeError] : 3 : NO_SUCHFILE : Load model {source} failed. Permission denied")
        monkeypatch.setattr(ort, "InferenceSession", refuse)
    else:
        import ai_edge_litert.interpreter as litert

        def refuse(model_path=None, **kwargs):
            raise ValueError(f"Could not open '{model_path}'.")
        monkeypatch.setattr(litert, "Interpreter", refuse)
    with pytest.raises(BundleError) as caught:
        open_backend(path, fmt)
    assert f"locked.{fmt}" in str(caught.value).partition("(")[2] and "private-folder" not in str(caught.value)


def test_each_engine_built_directly_takes_a_path_as_text(golden_bundle, tflite_path):
    """Apps build an engine from a string path as often as from a Path (it used to fail on `.is_file`)."""
    onnx = OnnxBackend(str(golden_bundle / "user_encoder.onnx"))
    tflite = TfliteBackend(str(tflite_path))
    assert onnx.input_names == ["ids"] and tflite.input_shape()[0] == 1
    with pytest.raises(BundleError, match=r"^nothing\.onnx: no such model file"):
        OnnxBackend(str(golden_bundle / "nothing.onnx"))


@pytest.mark.parametrize("engine", [OnnxBackend, TfliteBackend])
@pytest.mark.parametrize("path", [3, None, ["user_encoder.onnx"]])
def test_a_model_that_is_neither_a_path_nor_bytes_is_a_config_error(engine, path):
    with pytest.raises(ConfigError, match=f"a model is a file path or the file's bytes, not {type(path).__name__}"):
        engine(path)


def test_onnxruntime_is_refused_in_words_where_usearch_was_loaded_before_it(monkeypatch):
    """usearch's compiled module loaded first makes onnxruntime's import die (segfault): the engine says so
    instead of importing. Where onnxruntime came first, usearch beside it changes nothing."""
    fake_usearch = SimpleNamespace()
    monkeypatch.setitem(sys.modules, "usearch.compiled", fake_usearch)
    assert backends.import_onnxruntime() is ort  # already imported: the safe order
    monkeypatch.delitem(sys.modules, "onnxruntime")  # as if not imported yet (the refusal comes before any import)
    with pytest.raises(ConfigError) as refused:
        backends.import_onnxruntime()
    assert str(refused.value) == ("usearch was imported before onnxruntime, and importing onnxruntime now would "
                                  "crash the process (the two libraries' C++ runtimes clash): import onnxruntime "
                                  "first, before usearch")
    assert "onnxruntime" not in sys.modules
    monkeypatch.undo()
    assert sys.modules["onnxruntime"] is ort and backends.import_onnxruntime() is ort


def test_the_index_library_is_taken_as_it_is_where_the_app_loaded_it_first(monkeypatch):
    """retrieval.import_usearch imports onnxruntime first, except where usearch is loaded already: importing
    onnxruntime then is what would crash (an app with the TFLite engine and an index died so)."""
    import builtins

    from edgerec.runtime.retrieval import import_usearch

    index, asked, real_import = SimpleNamespace(Index=object), [], builtins.__import__
    monkeypatch.setitem(sys.modules, "usearch", SimpleNamespace(index=index))
    monkeypatch.setitem(sys.modules, "usearch.index", index)
    monkeypatch.setitem(sys.modules, "usearch.compiled", SimpleNamespace())
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **kw: asked.append(name) or real_import(name, *a, **kw))
    assert import_usearch() is index and asked == ["usearch.index"]
    monkeypatch.delitem(sys.modules, "usearch.compiled")  # not loaded yet: onnxruntime is imported first
    assert import_usearch() is index and asked[1:] == ["onnxruntime", "usearch.index"]
