"""Quantizers work with relative paths (they run in a scratch directory of their own), and each mode
writes the file it names: its operators, its dtypes, and outputs close to the float model's."""

import os

import numpy as np
import onnx
from onnx import numpy_helper
from tiny_models import (
    mlp_reference,
    mlp_weights,
    tower_weights,
    write_onnx_tower,
    write_tflite_mlp,
)

from edgerec.compress.quantize import quantize_onnx, quantize_tflite


def test_relative_paths(tmp_path):
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        write_onnx_tower("m.onnx", tower_weights(0))
        write_tflite_mlp("m.tflite", mlp_weights(0))
        for mode in ("int8", "int8-dynamic", "fp16"):
            assert quantize_onnx("m.onnx", f"q-{mode}.onnx", mode) == tmp_path / f"q-{mode}.onnx"
            assert quantize_tflite("m.tflite", f"q-{mode}.tflite", mode) == tmp_path / f"q-{mode}.tflite"
        assert quantize_tflite("m.tflite", "q-none.tflite", "none") == tmp_path / "q-none.tflite"
    finally:
        os.chdir(here)
    # each mode wrote what it names (files written in the scratch directory would be missing here)
    onnx_files = {mode: onnx.load(str(tmp_path / f"q-{mode}.onnx")) for mode in ("int8", "int8-dynamic", "fp16")}
    weights = {mode: {numpy_helper.to_array(i).dtype.name for i in m.graph.initializer} for mode, m in onnx_files.items()}
    assert [n.op_type for n in onnx_files["int8"].graph.node].count("DequantizeLinear") == 3 and "int8" in weights["int8"]
    assert [n.op_type for n in onnx_files["int8-dynamic"].graph.node].count("MatMulInteger") == 2
    assert "float16" in weights["fp16"]
    assert (tmp_path / "q-none.tflite").read_bytes() == (tmp_path / "m.tflite").read_bytes()


def test_tflite_modes_write_their_operators_and_compute_like_the_float_model(tmp_path):
    w = mlp_weights(2)
    src = write_tflite_mlp(tmp_path / "m.tflite", w)
    x = np.random.default_rng(3).normal(size=(1, 8)).astype(np.float32)
    expected = mlp_reference(w, x)
    np.testing.assert_allclose(tflite_run(src, x), expected, rtol=1e-5, atol=1e-5)
    outputs = {}
    for mode in ("int8", "int8-dynamic", "fp16"):
        (tmp_path / f"q-{mode}.tflite").write_bytes(b"an older file")  # replaced, as a re-export replaces it
        dst = quantize_tflite(src, tmp_path / f"q-{mode}.tflite", mode)
        outputs[mode] = tflite_run(dst, x)
    # int8 weight-only: int8 weights dequantized, float kernels; dynamic: integer kernels read int8 weights
    assert tflite_ops(tmp_path / "q-int8.tflite") == (["DEQUANTIZE", "FULLY_CONNECTED"] * 2, {"float32", "int8"})
    assert tflite_ops(tmp_path / "q-int8-dynamic.tflite") == (["FULLY_CONNECTED"] * 2, {"float32", "int8"})
    assert tflite_ops(tmp_path / "q-fp16.tflite") == (["DEQUANTIZE", "FULLY_CONNECTED"] * 2, {"float16", "float32"})
    scale = np.abs(expected).max()
    np.testing.assert_allclose(outputs["fp16"], expected, atol=2e-3 * scale)
    for mode in ("int8", "int8-dynamic"):
        error = np.abs(outputs[mode] - expected).max()
        assert 0 < error < 0.02 * scale, (mode, error)  # on a grid: close, but not the float weights


def tflite_run(path, x):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def tflite_ops(path):
    """The operators of a TFLite file, in order, and the dtypes of its tensors."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    return ops, {d["dtype"].__name__ for d in interpreter.get_tensor_details()}
