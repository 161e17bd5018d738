"""Quantization: exact int8 grids, folding that keeps outputs, weight-only ONNX on the grid, mode errors."""

import logging
import os
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from tiny_models import tower_reference, tower_weights, write_onnx_tower

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


def test_symmetric_int8_quantizes_float64_weights_as_the_float32_they_become():
    """0.5 + 1e-12 is 0.5 in float32, which rounds to the even step 0; in float64 it would round up to 1."""
    w = np.array([[127.0, 0.5 + 1e-12, -1.5]], np.float64)
    q, scale = symmetric_int8(w, 0)
    assert scale.tolist() == [1.0] and q.tolist() == [[127, 0, -2]]
    q32, scale32 = symmetric_int8(w.astype(np.float32), 0)
    assert np.array_equal(q, q32) and np.array_equal(scale, scale32)


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


def _run(path, ids):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]


def _on_grid(values, axis):
    q, scale = symmetric_int8(values, axis)
    return q.astype(np.float32) * np.expand_dims(scale, 1 - axis)


@pytest.mark.parametrize("trans_b", [True, False])
def test_weight_only_onnx_stores_the_grid_exactly(tmp_path, trans_b):
    """Gather, Gemm (either weight layout) and MatMul weights: int8 on the per-output-channel grid."""
    w = tower_weights(3)
    src = write_onnx_tower(tmp_path / "f.onnx", w, trans_b=trans_b)
    weight_only_onnx(src, tmp_path / "q.onnx")
    quantized = onnx.load(str(tmp_path / "q.onnx"))
    arrays = {i.name: numpy_helper.to_array(i) for i in quantized.graph.initializer}
    # the table per row, the Gemm per output unit (its rows when transB=1, else its columns), MatMul per column
    a_name, a_axis = "a_weight", 0 if trans_b else 1
    for name, axis in (("embed", 0), (a_name, a_axis), ("b_weight", 1)):
        stored = w[name] if name != a_name or trans_b else w[name].T
        q, scale = symmetric_int8(stored, axis)
        assert arrays[f"{name}_int8"].dtype == np.int8 and np.array_equal(arrays[f"{name}_int8"], q)
        assert arrays[f"{name}_scale"].dtype == np.float32 and np.array_equal(arrays[f"{name}_scale"], scale)
        assert np.array_equal(arrays[f"{name}_zero"], np.zeros(len(scale), np.int8))
        assert name not in arrays  # the float original is gone
    assert sorted(a.size for n, a in arrays.items() if n.endswith("_scale")) == [4, 16, 30]
    # the biases (1-D) stay float, and nothing else is added
    assert sorted(arrays) == sorted(["a_bias", "b_bias"] + [f"{n}_{s}" for n in ("embed", "a_weight", "b_weight")
                                                             for s in ("int8", "scale", "zero")])
    dq = [n for n in quantized.graph.node if n.op_type == "DequantizeLinear"]
    assert list(quantized.graph.node[:3]) == dq  # dequantized before any node reads them
    assert {(n.name, tuple(n.input), tuple(n.output), n.attribute[0].i) for n in dq} == {
        (f"dequantize_{n}", (f"{n}_int8", f"{n}_scale", f"{n}_zero"), (n,), axis)
        for n, axis in (("embed", 0), ("a_weight", a_axis), ("b_weight", 1))}
    grid = {"embed": _on_grid(w["embed"], 0), "a_weight": _on_grid(w["a_weight"], 0),
            "b_weight": _on_grid(w["b_weight"], 1), "a_bias": w["a_bias"], "b_bias": w["b_bias"]}
    ids = np.random.default_rng(0).integers(0, 30, (5, 7))
    np.testing.assert_allclose(_run(tmp_path / "q.onnx", ids), tower_reference(grid, ids), rtol=1e-5, atol=1e-5)
    # and the grid is not the float model: every weight moved by up to half a step
    assert np.abs(tower_reference(grid, ids) - tower_reference(w, ids)).max() > 1e-3


def test_weight_only_onnx_leaves_what_it_cannot_quantize(tmp_path):
    """Only 2-D float32 initializers behind MatMul/Gemm's B or a row Gather's table become int8."""
    import onnx.helper as oh
    from onnx import TensorProto

    rng = np.random.default_rng(4)
    inits = {"table": rng.normal(size=(5, 3)).astype(np.float32),  # Gather along axis 1: columns, not rows
             "half": rng.normal(size=(3, 2)).astype(np.float16),  # not float32
             "cube": rng.normal(size=(2, 2, 2)).astype(np.float32),  # not 2-D
             "left": rng.normal(size=(2, 2)).astype(np.float32),  # 2-D float32, but an Add's operand
             "right": rng.normal(size=(2, 2)).astype(np.float32),
             "good": rng.normal(size=(2, 2)).astype(np.float32)}
    nodes = [oh.make_node("Gather", ["table", "cols"], ["g"], axis=1),  # (5, 3) -> (5, 3)
             oh.make_node("Cast", ["g"], ["g16"], to=TensorProto.FLOAT16),
             oh.make_node("MatMul", ["g16", "half"], ["m16"]),  # (5, 2)
             oh.make_node("Cast", ["m16"], ["m"], to=TensorProto.FLOAT),
             oh.make_node("MatMul", ["x", "cube"], ["c"]),  # (2, 2, 2)
             oh.make_node("MatMul", ["x", "x"], ["xx"]),  # B is an input, not an initializer
             oh.make_node("Add", ["left", "x"], ["l"]),  # an initializer first, as a Gather's table would be
             oh.make_node("Add", ["x", "right"], ["r"]),  # an initializer second, as a Gemm's B would be
             oh.make_node("MatMul", ["x", "good"], ["ok"])]  # after all those, one that is quantized
    graph = oh.make_graph(nodes, "rest", [oh.make_tensor_value_info("cols", TensorProto.INT64, [3]),
                                          oh.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
                          [oh.make_tensor_value_info(n, TensorProto.FLOAT, shape)
                           for n, shape in (("m", [5, 2]), ("c", [2, 2, 2]), ("xx", [2, 2]), ("l", [2, 2]),
                                            ("r", [2, 2]), ("ok", [2, 2]))],
                          [numpy_helper.from_array(v, n) for n, v in inits.items()])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "f.onnx"))
    weight_only_onnx(tmp_path / "f.onnx", tmp_path / "q.onnx")
    out = onnx.load(str(tmp_path / "q.onnx"))
    assert [n.op_type for n in out.graph.node] == ["DequantizeLinear"] + [n.op_type for n in nodes]
    assert {i.name for i in out.graph.initializer} == set(inits) - {"good"} | {"good_int8", "good_scale", "good_zero"}


def test_weight_only_onnx_quantizes_a_gemm_without_bias(tmp_path):
    """Gemm's bias C is optional: a two-input Gemm's weight is quantized like any other."""
    import onnx.helper as oh
    from onnx import TensorProto

    weight = np.random.default_rng(6).normal(size=(3, 4)).astype(np.float32)  # (in, out), transB = 0
    graph = oh.make_graph([oh.make_node("Gemm", ["x", "w"], ["y"])], "gemm",
                          [oh.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [oh.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
                          [numpy_helper.from_array(weight, "w")])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "f.onnx"))
    weight_only_onnx(tmp_path / "f.onnx", tmp_path / "q.onnx")
    out = onnx.load(str(tmp_path / "q.onnx"))
    arrays = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer}
    q, scale = symmetric_int8(weight, 1)
    assert np.array_equal(arrays["w_int8"], q) and np.array_equal(arrays["w_scale"], scale)
    assert [n.op_type for n in out.graph.node] == ["DequantizeLinear", "Gemm"]


def test_quantize_onnx_modes_and_their_errors(tmp_path):
    w = tower_weights(1)
    ids = np.random.default_rng(1).integers(0, 30, (4, 7))
    src = write_onnx_tower(tmp_path / "f.onnx", w)
    assert quantize_onnx(src, tmp_path / "same.onnx", "none").read_bytes() == src.read_bytes()
    # int8: the weight-only file, the same bytes as weight_only_onnx writes
    weight_only_onnx(src, tmp_path / "direct.onnx")
    assert quantize_onnx(src, tmp_path / "w.onnx", "int8").read_bytes() == (tmp_path / "direct.onnx").read_bytes()
    half = onnx.load(str(quantize_onnx(src, tmp_path / "h.onnx", "fp16")))
    assert {numpy_helper.to_array(i).dtype.name for i in half.graph.initializer} == {"float16"}
    # float16 inside, float32 at the edges (keep_io_types): the output is cast back
    assert [n.op_type for n in half.graph.node][-1] == "Cast"
    assert half.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    np.testing.assert_allclose(_run(tmp_path / "h.onnx", ids), tower_reference(w, ids), rtol=0.02, atol=0.02)
    dynamic = onnx.load(str(quantize_onnx(src, tmp_path / "d.onnx", "int8-dynamic")))
    dyn_arrays = {i.name: numpy_helper.to_array(i) for i in dynamic.graph.initializer}
    # integer kernels on unsigned weights, one scale per output channel (Gemm's 16, MatMul's 4)
    assert [n.op_type for n in dynamic.graph.node].count("MatMulInteger") == 2
    assert {a.dtype.name for n, a in dyn_arrays.items() if n.endswith("_quantized")} == {"uint8"}
    assert sorted(a.size for n, a in dyn_arrays.items() if "weight" in n and n.endswith("_scale")) == [4, 16]
    np.testing.assert_allclose(_run(tmp_path / "d.onnx", ids), tower_reference(w, ids), rtol=0.1, atol=0.1)
    with pytest.raises(ConfigError, match=r"^unknown ONNX quantization 'int4'; use one of none, int8, int8-dynamic, int8-static, fp16$"):
        quantize_onnx(src, tmp_path / "x.onnx", "int4")
    with pytest.raises(ConfigError, match=r"^static int8 quantization needs calibration inputs \(real histories\)$"):
        quantize_onnx(src, tmp_path / "x.onnx", "int8-static")
    with pytest.raises(ConfigError, match="^static int8 quantization got no calibration batches$"):
        quantize_onnx(src, tmp_path / "x.onnx", "int8-static", [])
    assert not (tmp_path / "x.onnx").exists()
    batches = [{"ids": ids[:2]}, {"ids": ids[2:]}]
    static = onnx.load(str(quantize_onnx(src, tmp_path / "s.onnx", "int8-static", iter(batches))))
    ops = [n.op_type for n in static.graph.node]
    # QDQ format: float operators between QuantizeLinear/DequantizeLinear pairs, no integer operators;
    # only MatMul, Gemm and Gather are quantized: the Relu and Add stay float-only (no pair of their own)
    assert ops == ["DequantizeLinear"] * 4 + [
        "Gather", "QuantizeLinear", "DequantizeLinear", "ReduceMean", "QuantizeLinear", "DequantizeLinear",
        "Gemm", "QuantizeLinear", "DequantizeLinear", "Relu", "QuantizeLinear", "DequantizeLinear",
        "MatMul", "QuantizeLinear", "DequantizeLinear", "Add"]
    arrays = {i.name: numpy_helper.to_array(i) for i in static.graph.initializer}
    # unsigned weights and activations, one weight scale per output channel, the embedding table too
    assert {a.dtype for n, a in arrays.items() if n.endswith("_quantized") and "bias" not in n} == {np.dtype(np.uint8)}
    assert {a.dtype for n, a in arrays.items() if n.endswith("_zero_point") and "bias" not in n} == {np.dtype(np.uint8)}
    assert (arrays["a_weight_scale"].size, arrays["b_weight_scale"].size) == (16, 4)
    assert "embed_quantized" in arrays
    # calibrated on the batches given: the ranks survive, values within the activation grid
    np.testing.assert_allclose(_run(tmp_path / "s.onnx", ids), tower_reference(w, ids), rtol=0.15, atol=0.15)
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    for mode in ("int8", "int8-dynamic", "int8-static", "fp16"):
        with pytest.raises(ExportError, match=rf"^{mode} quantization of broken\.onnx failed: \S"):
            quantize_onnx(tmp_path / "broken.onnx", tmp_path / "x.onnx", mode, batches)


def test_quantize_tflite_mode_errors_and_plain_copy(tmp_path):
    src = tmp_path / "m.tflite"
    src.write_bytes(b"flatbuffer bytes")
    assert quantize_tflite(src, tmp_path / "c.tflite", "none").read_bytes() == b"flatbuffer bytes"
    with pytest.raises(ConfigError, match=r"^unknown TFLite quantization 'int8-static'; use one of none, int8, int8-dynamic, fp16$"):
        quantize_tflite(src, tmp_path / "x.tflite", "int8-static")
    for mode in ("int8", "int8-dynamic", "fp16"):
        with pytest.raises(ExportError, match=rf"^{mode} quantization of m\.tflite failed: \S"):
            quantize_tflite(src, tmp_path / "x.tflite", mode)
    assert not (tmp_path / "x.tflite").exists()


def test_quantize_tflite_without_the_quantizer_says_what_to_install(tmp_path, monkeypatch):
    src = tmp_path / "m.tflite"
    src.write_bytes(b"flatbuffer bytes")
    monkeypatch.setitem(sys.modules, "ai_edge_quantizer", None)  # import fails as if not installed
    with pytest.raises(ExportError, match=r"^TFLite quantization needs ai-edge-quantizer: pip install 'edgerec\[tools\]'$"):
        quantize_tflite(src, tmp_path / "x.tflite", "int8")
    # "none" is a plain copy and needs no quantizer
    assert quantize_tflite(src, tmp_path / "c.tflite", "none").read_bytes() == b"flatbuffer bytes"


def test_scratch_directory_is_left_clean(capsys):
    here = os.getcwd()
    level = logging.root.manager.disable
    with _in_temp_dir():
        scratch = os.getcwd()
        assert scratch != here and os.path.basename(scratch).startswith("edgerec-quant-")
        assert logging.root.manager.disable == logging.WARNING
        print("hidden")
        sys.stdout.write("hidden too\n")  # what the quantizers print goes nowhere, and writing still works
    assert capsys.readouterr().out == ""
    assert os.getcwd() == here and not os.path.exists(scratch) and logging.root.manager.disable == level
    with pytest.raises(RuntimeError), _in_temp_dir():
        scratch = os.getcwd()
        raise RuntimeError("boom")
    assert os.getcwd() == here and not os.path.exists(scratch) and logging.root.manager.disable == level
