"""Quantizers work with relative paths (they run in a scratch directory of their own)."""

import os

import onnx
import torch
from onnx import numpy_helper

from edgerec.compress.quantize import quantize_onnx, quantize_tflite
from edgerec.export.formats import export_onnx, export_tflite


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(8, 16), torch.nn.Linear(16, 4)

    def forward(self, x):  # the sample's key names this argument
        return self.b(torch.relu(self.a(x)))


def test_relative_paths(tmp_path):
    model = Tiny().eval()
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        export_onnx(model, {"x": torch.ones(2, 8)}, {"x": {0: "batch"}}, ["y"], "m.onnx")
        export_tflite(model, (torch.ones(1, 8),), "m.tflite")
        for mode in ("int8", "int8-dynamic", "fp16"):
            assert quantize_onnx("m.onnx", f"q-{mode}.onnx", mode).exists()
            assert quantize_tflite("m.tflite", f"q-{mode}.tflite", mode).exists()
    finally:
        os.chdir(here)
    # each mode wrote what it names (files written in the scratch directory would be missing here)
    onnx_files = {mode: onnx.load(str(tmp_path / f"q-{mode}.onnx")) for mode in ("int8", "int8-dynamic", "fp16")}
    weights = {mode: {numpy_helper.to_array(i).dtype.name for i in m.graph.initializer} for mode, m in onnx_files.items()}
    assert [n.op_type for n in onnx_files["int8"].graph.node].count("DequantizeLinear") == 2 and "int8" in weights["int8"]
    dynamic = [n.op_type for n in onnx_files["int8-dynamic"].graph.node]
    assert dynamic.count("MatMulInteger") == 2 and "uint8" in weights["int8-dynamic"]  # unsigned, integer kernels
    scales = sorted(numpy_helper.to_array(i).size for i in onnx_files["int8-dynamic"].graph.initializer
                    if i.name.endswith("_scale"))
    assert scales == [4, 16]  # per output channel
    assert "float16" in weights["fp16"]
    assert tflite_ops(tmp_path / "q-int8.tflite") == (["DEQUANTIZE", "FULLY_CONNECTED"] * 2, {"float32", "int8"})
    assert tflite_ops(tmp_path / "q-int8-dynamic.tflite") == (["FULLY_CONNECTED"] * 2, {"float32", "int8"})
    assert tflite_ops(tmp_path / "q-fp16.tflite") == (["DEQUANTIZE", "FULLY_CONNECTED"] * 2, {"float16", "float32"})


def tflite_ops(path):
    """The operators of a TFLite file, in order, and the dtypes of its tensors."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    return ops, {d["dtype"].__name__ for d in interpreter.get_tensor_details()}
