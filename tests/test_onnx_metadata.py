"""Exported ONNX files carry no exporter debug metadata: no stack traces, no host paths."""

from pathlib import Path

import onnx
import torch

from edgerec.compress.quantize import quantize_onnx
from edgerec.export.formats import export_onnx


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))

    def forward(self, x):
        return self.inner(x)


def test_exported_and_quantized_files_hold_no_stack_traces_or_paths(tmp_path):
    raw = export_onnx(Tiny(), {"x": torch.zeros(2, 4)}, {"x": {0: "batch"}}, ["y"], tmp_path / "raw.onnx")
    final = quantize_onnx(raw, tmp_path / "int8.onnx", "int8")
    for path in (raw, final):
        model = onnx.load(str(path))
        assert model.graph.node and all(len(node.metadata_props) == 0 for node in model.graph.node)
        data = path.read_bytes()
        assert b"stack_trace" not in data and Path(__file__).name.encode() not in data


def test_the_committed_golden_encoder_carries_no_host_paths():
    golden = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle" / "user_encoder.onnx"
    assert b"stack_trace" not in golden.read_bytes()  # regenerate spec/golden if this fails
