"""Tiny float model files written op by op (no torch export): quantizer inputs that cost milliseconds.

Exporting even a two-layer module through torch.onnx or the TFLite converter takes seconds, and a
mutation run pays that again for every mutant its tests reach. These builders write the same kind
of graph directly, with weights from a seed, and give the numpy reference of what it computes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tower_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Weights of the ONNX tower: a 30 x 6 table, a Gemm layer 6 -> 16, a MatMul layer 16 -> 4."""
    rng = np.random.default_rng(seed)
    return {"embed": rng.normal(size=(30, 6)).astype(np.float32),
            "a_weight": rng.normal(size=(16, 6)).astype(np.float32),  # Gemm with transB = 1: (out, in)
            "a_bias": rng.normal(size=16).astype(np.float32),
            "b_weight": rng.normal(size=(16, 4)).astype(np.float32),  # MatMul's B: (in, out)
            "b_bias": rng.normal(size=4).astype(np.float32)}


def tower_reference(w: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """What the tower computes: mean of the ids' rows -> Gemm -> Relu -> MatMul + bias."""
    h = np.maximum(w["embed"][ids].mean(1) @ w["a_weight"].T + w["a_bias"], 0.0)
    return h @ w["b_weight"] + w["b_bias"]


def write_onnx_tower(path: Path, w: dict[str, np.ndarray], trans_b: bool = True) -> Path:
    """ids (batch, 7) int64 -> Gather -> ReduceMean -> Gemm -> Relu -> MatMul -> Add -> y (batch, 4).

    trans_b=False stores the Gemm weight as (in, out) and leaves the attribute out (its default, 0).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = dict(w) if trans_b else dict(w, a_weight=np.ascontiguousarray(w["a_weight"].T))
    gemm = {"transB": 1} if trans_b else {}
    nodes = [helper.make_node("Gather", ["embed", "ids"], ["rows"], name="gather"),  # axis left at its default, 0
             helper.make_node("ReduceMean", ["rows"], ["pooled"], name="mean", axes=[1], keepdims=0),
             helper.make_node("Gemm", ["pooled", "a_weight", "a_bias"], ["a_out"], name="a", **gemm),
             helper.make_node("Relu", ["a_out"], ["hidden"], name="relu"),
             helper.make_node("MatMul", ["hidden", "b_weight"], ["b_out"], name="b"),
             helper.make_node("Add", ["b_out", "b_bias"], ["y"], name="b_add")]
    graph = helper.make_graph(
        nodes, "tower",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(value, name) for name, value in w.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def mlp_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Weights of the TFLite MLP: 8 -> 16 (Relu) -> 4, each as (out, in) like FULLY_CONNECTED."""
    rng = np.random.default_rng(seed)
    return {"w1": rng.normal(size=(16, 8)).astype(np.float32), "b1": rng.normal(size=16).astype(np.float32),
            "w2": rng.normal(size=(4, 16)).astype(np.float32), "b2": rng.normal(size=4).astype(np.float32)}


def mlp_reference(w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ w["w1"].T + w["b1"], 0.0) @ w["w2"].T + w["b2"]


def write_tflite_mlp(path: Path, w: dict[str, np.ndarray]) -> Path:
    """x (1, 8) float32 -> FULLY_CONNECTED (fused Relu) -> FULLY_CONNECTED -> y (1, 4), with a signature."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    buffers = [fb.BufferT()]  # buffer 0 is the empty one by convention

    def tensor(name, shape, data=None):
        t = fb.TensorT()
        t.name, t.shape, t.type = name, list(shape), fb.TensorType.FLOAT32
        t.buffer = 0
        if data is not None:
            b = fb.BufferT()
            b.data = list(np.ascontiguousarray(data, np.float32).tobytes())
            buffers.append(b)
            t.buffer = len(buffers) - 1
        return t

    tensors = [tensor("x", (1, 8)), tensor("w1", (16, 8), w["w1"]), tensor("b1", (16,), w["b1"]),
               tensor("h", (1, 16)), tensor("w2", (4, 16), w["w2"]), tensor("b2", (4,), w["b2"]),
               tensor("y", (1, 4))]

    def fully_connected(inputs, output, relu):
        op = fb.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, inputs, [output]
        op.builtinOptionsType = fb.BuiltinOptions.FullyConnectedOptions
        op.builtinOptions = fb.FullyConnectedOptionsT()
        op.builtinOptions.fusedActivationFunction = (fb.ActivationFunctionType.RELU if relu
                                                      else fb.ActivationFunctionType.NONE)
        return op

    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    subgraph = fb.SubGraphT()
    subgraph.tensors, subgraph.inputs, subgraph.outputs = tensors, [0], [6]
    subgraph.operators = [fully_connected([0, 1, 2], 3, True), fully_connected([3, 4, 5], 6, False)]
    subgraph.name = "main"
    signature = fb.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = "serving_default", 0
    signature.inputs, signature.outputs = [fb.TensorMapT()], [fb.TensorMapT()]
    signature.inputs[0].name, signature.inputs[0].tensorIndex = "x", 0
    signature.outputs[0].name, signature.outputs[0].tensorIndex = "y", 6
    model = fb.ModelT()
    model.version, model.description = 3, "edgerec test MLP"
    model.operatorCodes, model.subgraphs, model.buffers = [code], [subgraph], buffers
    model.signatureDefs = [signature]
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    Path(path).write_bytes(bytes(builder.Output()))
    return Path(path)
