"""Quantization: exact int8 grids, folding that keeps outputs, weight-only ONNX on the grid, mode errors."""

import logging
import os

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from edgerec.compress.quantize import (
    _in_temp_dir,
    fake_quantize,
    fold_layer_norms,
    quantize_onnx,
    quantize_tflite,
    symmetric_int8,
    weight_only_onnx,
)
from edgerec.errors import ConfigError, ExportError
from edgerec.export.formats import export_onnx
from edgerec.models.layers import AttentionBlock


def test_symmetric_int8_by_hand():
    w = np.array([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0]], np.float32)
    q, scale = symmetric_int8(w, 0)
    assert q.dtype == np.int8 and scale.dtype == np.float32
    assert scale.tolist() == [np.float32(2 / 127), 1.0]  # an all-zero channel gets scale 1, not 0
    assert q.tolist() == [[64, -127, 32], [0, 0, 0]]  # 63.5 -> 64, 31.75 -> 32
    q1, scale1 = symmetric_int8(w, 1)  # one scale per column
    assert scale1.tolist() == pytest.approx([1 / 127, 2 / 127, 0.5 / 127])
    assert q1.tolist() == [[127, -127, 127], [0, 0, 0]]


def test_symmetric_int8_round_trip_error_is_at_most_half_a_step():
    w = np.random.default_rng(0).normal(size=(64, 48)).astype(np.float32)
    q, scale = symmetric_int8(w, 0)
    assert np.abs(q).max() == 127 and (np.abs(q).max(1) == 127).all()  # every channel uses its full range
    back = q.astype(np.float32) * scale[:, None]
    assert np.all(np.abs(back - w) <= scale[:, None] / 2 + 1e-7)


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(20, 8)
        self.block = AttentionBlock(8, 2)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, ids):
        x = self.embed(ids)
        bias = torch.zeros(ids.shape[0], 1, ids.shape[1], ids.shape[1])
        return self.head(self.block(x, bias)[:, -1])


def _randomized(module, seed=0):
    """A module whose layer norms are far from the identity, so folding them changes the weights."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5 + (1.0 if p.ndim == 1 else 0.0))
    return module.eval()


def test_folding_layer_norms_keeps_outputs_and_leaves_identity_norms():
    model = _randomized(Block())
    ids = torch.randint(0, 20, (3, 5), generator=torch.Generator().manual_seed(1))
    before = model(ids).detach()
    qkv_before = model.block.qkv.weight.detach().clone()
    fold_layer_norms(model)
    torch.testing.assert_close(model(ids).detach(), before, rtol=1e-5, atol=1e-5)
    for norm in (model.block.norm1, model.block.norm2):
        assert torch.equal(norm.weight, torch.ones(8)) and torch.equal(norm.bias, torch.zeros(8))
    assert not torch.allclose(model.block.qkv.weight, qkv_before)


def test_fake_quantize_puts_every_weight_on_its_grid_and_leaves_the_original_alone():
    model = _randomized(Block())
    original = {k: v.clone() for k, v in model.state_dict().items()}
    grid = fake_quantize(model)
    for key, value in model.state_dict().items():
        assert torch.equal(value, original[key])
    layers = [m for m in grid.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Embedding))]
    assert len(layers) == 6  # embedding, qkv, out, two feed-forward, head
    for layer in layers:
        w = layer.weight.detach().numpy()
        scale = np.abs(w).max(1) / 127
        steps = w / scale[:, None]
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    # norms were folded first: the quantized copy computes like the original, up to the int8 grid
    ids = torch.randint(0, 20, (4, 5), generator=torch.Generator().manual_seed(2))
    assert grid.block.norm1.weight.eq(1).all()
    torch.testing.assert_close(grid(ids), model(ids), rtol=0.05, atol=0.05)


class Tower(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(30, 6)
        self.a, self.b = torch.nn.Linear(6, 16), torch.nn.Linear(16, 4)

    def forward(self, ids):
        return self.b(torch.relu(self.a(self.embed(ids).mean(1))))


def _run(path, ids):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]


def test_weight_only_onnx_stores_the_grid_exactly(tmp_path):
    model = fake_quantize(_randomized(Tower()))
    ids = np.random.default_rng(0).integers(0, 30, (5, 7))
    export_onnx(model, {"ids": torch.as_tensor(ids[:2])}, {"ids": {0: "batch"}}, ["y"], tmp_path / "f.onnx")
    weight_only_onnx(tmp_path / "f.onnx", tmp_path / "q.onnx")
    quantized = onnx.load(str(tmp_path / "q.onnx"))
    int8 = {i.name: numpy_helper.to_array(i) for i in quantized.graph.initializer if i.name.endswith("_int8")}
    assert len(int8) == 3 and all(v.dtype == np.int8 for v in int8.values())  # the table and both layers
    dq = [n for n in quantized.graph.node if n.op_type == "DequantizeLinear"]
    assert len(dq) == 3 and list(quantized.graph.node[:3]) == dq
    # per output channel: a layer of 16 outputs has 16 scales, the 30-row table 30
    scales = sorted(numpy_helper.to_array(i).size for i in quantized.graph.initializer if i.name.endswith("_scale"))
    assert scales == [4, 16, 30]
    expected = model(torch.as_tensor(ids)).detach().numpy()
    np.testing.assert_allclose(_run(tmp_path / "q.onnx", ids), expected, rtol=1e-5, atol=1e-5)


def test_quantize_onnx_modes_and_their_errors(tmp_path):
    model = _randomized(Tower())
    ids = np.random.default_rng(1).integers(0, 30, (4, 7))
    src = tmp_path / "f.onnx"
    export_onnx(model, {"ids": torch.as_tensor(ids[:2])}, {"ids": {0: "batch"}}, ["y"], src)
    assert quantize_onnx(src, tmp_path / "same.onnx", "none").read_bytes() == src.read_bytes()
    half = quantize_onnx(src, tmp_path / "h.onnx", "fp16")
    assert np.dtype(np.float16) in {numpy_helper.to_array(i).dtype for i in onnx.load(str(half)).graph.initializer}
    np.testing.assert_allclose(_run(half, ids), _run(src, ids), rtol=0.02, atol=0.02)
    with pytest.raises(ConfigError, match=r"^unknown ONNX quantization 'int4'; use one of none, int8, int8-dynamic, int8-static, fp16$"):
        quantize_onnx(src, tmp_path / "x.onnx", "int4")
    with pytest.raises(ConfigError, match=r"^static int8 quantization needs calibration inputs \(real histories\)$"):
        quantize_onnx(src, tmp_path / "x.onnx", "int8-static")
    with pytest.raises(ConfigError, match="^static int8 quantization got no calibration batches$"):
        quantize_onnx(src, tmp_path / "x.onnx", "int8-static", [])
    static = onnx.load(str(quantize_onnx(src, tmp_path / "s.onnx", "int8-static",
                                         [{"ids": ids[:2]}, {"ids": ids[2:]}])))
    ops = [n.op_type for n in static.graph.node]
    # QDQ format: float Gemm between QuantizeLinear/DequantizeLinear pairs, no integer operators
    assert "QuantizeLinear" in ops and ops.count("Gemm") == 2 and not any(o.startswith(("QLinear", "QGemm")) for o in ops)
    # only MatMul, Gemm and Gather are quantized: the Relu stays (quantizing every op type folds it away)
    assert ops[5:] == ["Gather", "QuantizeLinear", "DequantizeLinear", "ReduceMean", "QuantizeLinear",
                       "DequantizeLinear", "Gemm", "QuantizeLinear", "DequantizeLinear", "Relu", "QuantizeLinear",
                       "DequantizeLinear", "Gemm", "QuantizeLinear", "DequantizeLinear"]
    arrays = {i.name: numpy_helper.to_array(i) for i in static.graph.initializer}
    # unsigned weights and activations, one weight scale per output channel, the embedding table too
    assert {a.dtype for n, a in arrays.items() if n.endswith("_quantized") and "bias" not in n} == {np.dtype(np.uint8)}
    assert {a.dtype for n, a in arrays.items() if n.endswith("_zero_point") and "bias" not in n} == {np.dtype(np.uint8)}
    assert (arrays["a.weight_scale"].size, arrays["b.weight_scale"].size) == (16, 4)
    assert "embed.weight_quantized" in arrays
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(ExportError, match=r"^int8 quantization of broken\.onnx failed: "):
        quantize_onnx(tmp_path / "broken.onnx", tmp_path / "x.onnx", "int8")


def test_quantize_tflite_mode_errors_and_plain_copy(tmp_path):
    src = tmp_path / "m.tflite"
    src.write_bytes(b"flatbuffer bytes")
    assert quantize_tflite(src, tmp_path / "c.tflite", "none").read_bytes() == b"flatbuffer bytes"
    with pytest.raises(ConfigError, match=r"^unknown TFLite quantization 'int8-static'; use one of none, int8, int8-dynamic, fp16$"):
        quantize_tflite(src, tmp_path / "x.tflite", "int8-static")
    with pytest.raises(ExportError, match=r"^int8 quantization of m\.tflite failed: "):
        quantize_tflite(src, tmp_path / "x.tflite", "int8")


def test_scratch_directory_is_left_clean():
    here = os.getcwd()
    level = logging.root.manager.disable
    with _in_temp_dir():
        scratch = os.getcwd()
        assert scratch != here and os.path.basename(scratch).startswith("edgerec-quant-")
        assert logging.root.manager.disable == logging.WARNING
        print("hidden")
    assert os.getcwd() == here and not os.path.exists(scratch) and logging.root.manager.disable == level
    with pytest.raises(RuntimeError), _in_temp_dir():
        scratch = os.getcwd()
        raise RuntimeError("boom")
    assert os.getcwd() == here and not os.path.exists(scratch) and logging.root.manager.disable == level
