"""Quantization of model files and item tables.

"int8" (the default) is weight-only int8, per output channel, symmetric:
the PyTorch module is put on that grid before export (`fake_quantize`), then
each format stores int8 weights on exactly that grid (ONNX: int8 initializers
+ DequantizeLinear; TFLite: ai-edge-quantizer's weight-only recipe), and both
compute in float. So the ONNX and the TFLite file of a bundle hold the same
weights and rank the same items. "int8-dynamic" uses each engine's integer
kernels instead (onnxruntime dynamic quantization with unsigned weights: on
x86 CPUs without VNNI its u8 x s8 kernel saturates int16 sums and signed
weights lose accuracy; ai-edge-quantizer dynamic-range for TFLite); the two
formats then quantize activations differently and may swap near-tied items.
"int8-static" (ONNX, QDQ calibrated on real histories) and "fp16" exist too.
Item tables are quantized by the bundle's own format: edgerec.runtime.item_table.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError, ExportError

ONNX_MODES = ("none", "int8", "int8-dynamic", "int8-static", "fp16")
TFLITE_MODES = ("none", "int8", "int8-dynamic", "fp16")
MODE_LABEL = {"none": "none", "int8": "int8-weights", "int8-dynamic": "int8-dynamic", "int8-static": "int8-static",
              "fp16": "fp16"}
# onnxruntime's extended optimizations would fuse DequantizeLinear -> MatMul into integer kernels that also
# quantize activations; weight-only files must run with that fusion off (the manifest says so)
WEIGHT_ONLY_SESSION_CONFIG = {"session.disable_quant_qdq": "1"}


@contextlib.contextmanager
def _in_temp_dir():
    """onnxruntime's quantizer may leave shape-inference scratch files in the working directory."""
    here = os.getcwd()
    scratch = tempfile.mkdtemp(prefix="edgerec-quant-")
    os.chdir(scratch)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)
        os.chdir(here)
        shutil.rmtree(scratch, ignore_errors=True)


def quantize_onnx(src: str | os.PathLike, dst: str | os.PathLike, mode: str,
                  calibration: Iterable[dict[str, np.ndarray]] | None = None) -> Path:
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if mode not in ONNX_MODES:
        raise ConfigError(f"unknown ONNX quantization {mode!r}; use one of {', '.join(ONNX_MODES)}")
    try:
        with _in_temp_dir():
            if mode == "none":
                shutil.copyfile(src, dst)
            elif mode == "int8":
                weight_only_onnx(src, dst)
            elif mode == "int8-dynamic":
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QUInt8)
            elif mode == "int8-static":
                _quantize_static(src, dst, calibration)
            else:
                import onnx
                from onnxruntime.transformers.float16 import convert_float_to_float16

                model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
                onnx.save(model, str(dst))
    except (ConfigError, ExportError):
        raise
    except Exception as exc:
        raise ExportError(f"{mode} quantization of {src.name} failed: {exc}") from exc
    return dst


def _quantize_static(src: Path, dst: Path, calibration) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if calibration is None:
        raise ConfigError("static int8 quantization needs calibration inputs (real histories)")
    batches = list(calibration)
    if not batches:
        raise ConfigError("static int8 quantization got no calibration batches")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            return next(self.batches, None)

    # uint8 activations and weights: accurate on x86 without VNNI (see the module docstring)
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8,
                    op_types_to_quantize=["MatMul", "Gemm", "Gather"])


def quantize_tflite(src: str | os.PathLike, dst: str | os.PathLike, mode: str) -> Path:
    src, dst = Path(src).resolve(), Path(dst).resolve()  # before _in_temp_dir changes the working directory
    if mode not in TFLITE_MODES:
        raise ConfigError(f"unknown TFLite quantization {mode!r}; use one of {', '.join(TFLITE_MODES)}")
    if mode == "none":
        shutil.copyfile(src, dst)
        return dst
    try:
        from ai_edge_quantizer import quantizer, recipe
        from ai_edge_quantizer.algorithm_manager import AlgorithmName
    except ImportError:
        raise ExportError("TFLite quantization needs ai-edge-quantizer: pip install 'edgerec[tools]'") from None
    try:
        with _in_temp_dir():
            qt = quantizer.Quantizer(str(src))
            if mode == "int8":
                qt.load_quantization_recipe(recipe.weight_only_wi8_afp32())
            elif mode == "int8-dynamic":
                qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
            else:
                qt.add_weight_only_config(regex=".*", operation_name="*", num_bits=16,
                                          algorithm_key=AlgorithmName.FLOAT_CASTING)
            qt.quantize().export_model(str(dst), overwrite=True)
    except Exception as exc:
        raise ExportError(f"{mode} quantization of {src.name} failed: {exc}") from exc
    return dst


def symmetric_int8(weights: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel symmetric int8 along `axis` (the output channel): values and scales."""
    moved = np.moveaxis(np.asarray(weights, np.float32), axis, 0)
    scale = np.abs(moved.reshape(len(moved), -1)).max(1) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    shape = (-1,) + (1,) * (moved.ndim - 1)
    q = np.clip(np.round(moved / scale.reshape(shape)), -127, 127).astype(np.int8)
    return np.moveaxis(q, 0, axis), scale


def fold_layer_norms(module) -> None:
    """Fold each pre-norm's scale and shift into the Linear after it (in place).

    The TFLite converter performs this folding itself; doing it first means
    the weights it quantizes are the very ones ONNX gets.
    """
    import torch

    from edgerec.models.layers import AttentionBlock

    with torch.no_grad():
        for block in module.modules():
            if isinstance(block, AttentionBlock):
                for norm, linear in ((block.norm1, block.qkv), (block.norm2, block.ff[0])):
                    linear.bias += linear.weight @ norm.bias
                    linear.weight *= norm.weight.unsqueeze(0)
                    norm.weight.fill_(1.0)
                    norm.bias.zero_()


def fake_quantize(module):
    """A copy of a PyTorch module whose Linear and Embedding weights sit on the int8 grid.

    Exported in float, such weights are re-quantized without loss by either
    format's weight-only int8 quantizer, so every format computes with them.
    """
    import copy

    import torch

    module = copy.deepcopy(module)
    fold_layer_norms(module)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (torch.nn.Linear, torch.nn.Embedding)):
                q, scale = symmetric_int8(layer.weight.numpy(), 0)
                layer.weight.copy_(torch.as_tensor(q.astype(np.float32) * scale[:, None]))
    return module


def weight_only_onnx(src: Path, dst: Path) -> None:
    """Store large MatMul/Gemm/Gather weights as int8 + per-channel scales behind DequantizeLinear."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    axes: dict[str, int] = {}
    for node in graph.node:
        if node.op_type == "MatMul" and len(node.input) > 1 and node.input[1] in inits:
            axes[node.input[1]] = 1  # B is (in, out): one scale per output column
        elif node.op_type == "Gemm" and len(node.input) > 1 and node.input[1] in inits:
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            axes[node.input[1]] = 0 if trans_b else 1
        elif node.op_type == "Gather" and node.input[0] in inits:
            if next((a.i for a in node.attribute if a.name == "axis"), 0) == 0:
                axes[node.input[0]] = 0  # one scale per table row
    new_nodes = []
    for name, axis in axes.items():
        tensor = numpy_helper.to_array(inits[name])
        if tensor.dtype != np.float32 or tensor.ndim != 2:
            continue
        q, scale = symmetric_int8(tensor, axis)
        graph.initializer.remove(inits[name])
        graph.initializer.extend([numpy_helper.from_array(q, f"{name}_int8"),
                                  numpy_helper.from_array(scale, f"{name}_scale"),
                                  numpy_helper.from_array(np.zeros(len(scale), np.int8), f"{name}_zero")])
        new_nodes.append(helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero"],
                                          [name], name=f"dequantize_{name}", axis=axis))
    nodes = new_nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
