"""ONNX files ship without notes an engine does not read, in every graph of the file: a user's own file
(`export --encoder`) and edgerec's own exports alike. The file stays valid and runs as before."""

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from edgerec.export.formats import export_onnx
from edgerec.export.user_files import portable_onnx

SECRET = "/home/alice.smith/secret-project"


def _noted_model() -> onnx.ModelProto:
    """An If whose branch carries doc strings, a local function, graph metadata, training info, a producer."""
    table = np.arange(24, dtype=np.float32).reshape(6, 4)
    then_out = helper.make_tensor_value_info("t_out", TensorProto.FLOAT, None, doc_string=SECRET + "/then")
    then_out.metadata_props.add(key="note", value=SECRET)
    then_branch = helper.make_graph([helper.make_node("Identity", ["mean"], ["t_out"], doc_string=SECRET)], "then",
                                    [], [then_out])
    then_branch.metadata_props.add(key="branch", value=SECRET)
    else_branch = helper.make_graph([helper.make_node("Identity", ["mean"], ["e_out"])], "else", [],
                                    [helper.make_tensor_value_info("e_out", TensorProto.FLOAT, None)])
    condition = helper.make_attribute("then_branch", then_branch)
    condition.doc_string = SECRET
    node = helper.make_node("If", ["cond"], ["pooled"], else_branch=else_branch)
    node.attribute.append(condition)
    scaled = helper.make_node("Scale", ["pooled"], ["user_vector"], domain="local")
    function = helper.make_function("local", "Scale", ["x"], ["y"], [helper.make_node("Identity", ["x"], ["y"])],
                                    [helper.make_opsetid("", 18)])
    function.doc_string = SECRET
    function.metadata_props.add(key="author", value=SECRET)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["emb"]),
         helper.make_node("ReduceMean", ["emb", "axes"], ["mean"], keepdims=0), node, scaled], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "history"])],
        [helper.make_tensor_value_info("user_vector", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array([1], np.int64), "axes"),
         numpy_helper.from_array(np.array(True), "cond")])
    graph.metadata_props.add(key="pkg.torch.export.ExportedProgram.graph_signature", value=SECRET)
    model = helper.make_model(graph, functions=[function],
                              opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("local", 1)])
    model.ir_version = 10
    training = model.training_info.add()
    training.algorithm.CopyFrom(helper.make_graph([], "train " + SECRET, [], [], [
        numpy_helper.from_array(np.frombuffer(SECRET.encode(), np.uint8).copy(), "notes")]))
    model.producer_name, model.producer_version = "exporter on " + SECRET, SECRET
    return model


def _run(path) -> np.ndarray:
    ids = np.array([[1, 2, 5]], np.int64)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]


def test_a_users_file_ships_without_notes_in_any_graph(tmp_path):
    onnx.save(_noted_model(), str(tmp_path / "theirs.onnx"))
    portable_onnx(tmp_path / "theirs.onnx", tmp_path / "clean.onnx")
    assert SECRET.encode() not in (tmp_path / "clean.onnx").read_bytes()
    clean = onnx.load(str(tmp_path / "clean.onnx"))
    onnx.checker.check_model(clean, full_check=True)
    assert not clean.graph.metadata_props and not clean.training_info and not clean.producer_name
    assert np.allclose(_run(tmp_path / "clean.onnx"), _run(tmp_path / "theirs.onnx"))


def test_edgerec_exports_drop_the_exporters_graph_signature(tmp_path):
    """torch's exporter writes the graph signature (the user's parameter names) into the graph's metadata."""

    class Named(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.alices_tower = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.alices_tower(x)

    path = export_onnx(Named(), {"x": torch.zeros(2, 4)}, {"x": {0: "batch"}}, ["y"], tmp_path / "m.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert not model.graph.metadata_props and not model.metadata_props
    assert not model.producer_name and not model.producer_version
    assert b"graph_signature" not in path.read_bytes()
    x = np.ones((1, 4), np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert got.shape == (1, 3)
