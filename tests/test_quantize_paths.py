"""Quantizers work with relative paths (they run in a scratch directory of their own)."""

import os

import torch

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
    assert (tmp_path / "q-int8.tflite").stat().st_size > 0
