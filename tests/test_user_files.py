"""A user's own model file ships without the notes its tools left in it (export/user_files.py)."""

from pathlib import Path

import numpy as np
import pytest

from edgerec.data.synth import SynthConfig, write_synth
from edgerec.errors import ConfigError, ExportError
from edgerec.export.custom import bundle_user_model
from edgerec.export.own_encoder import EncoderSpec
from edgerec.export.user_files import portable_onnx, portable_tflite

pytest.importorskip("ai_edge_litert")
from ai_edge_litert import schema_py_generated as schema  # noqa: E402

GOLDEN_TFLITE = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle" / "user_encoder.tflite"
SECRET = b"/home/alice/models/card by Alice Ruiz"
SPEC = {"input": {"name": "ids", "history_length": 5}, "output": {"name": "user_vector"}, "dim": 8}


def _repacked(model, path: Path, tail: bytes = b"") -> Path:
    import flatbuffers

    builder = flatbuffers.Builder(1 << 16)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()) + tail)
    return path


def _with_notes(path: Path) -> Path:
    """The golden encoder as a user's tools might leave it: a model card entry, a description, a zip of
    associated files after the model, each naming the author and a host path."""
    model = schema.ModelT.InitFromPackedBuf(GOLDEN_TFLITE.read_bytes(), 0)
    card = schema.BufferT()
    card.data = np.frombuffer(SECRET, np.uint8)
    model.buffers.append(card)
    entry = schema.MetadataT()
    entry.name, entry.buffer = b"TFLITE_METADATA", len(model.buffers) - 1
    model.metadata.append(entry)
    model.description = SECRET
    return _repacked(model, path, tail=b"PK\x03\x04" + SECRET)


def _outputs(path: Path) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.array([[0, 3, 7, 1, 2]], detail["dtype"]))
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]


def test_tflite_notes_stay_behind_and_the_model_is_the_same(tmp_path):
    dirty = _with_notes(tmp_path / "theirs.tflite")
    assert SECRET in dirty.read_bytes()
    clean = tmp_path / "clean.tflite"
    portable_tflite(dirty, clean)
    data = clean.read_bytes()
    assert SECRET not in data and b"PK\x03\x04" not in data
    model = schema.Model.GetRootAsModel(data, 0)
    names = [model.Metadata(i).Name() for i in range(model.MetadataLength())]
    assert names == [b"min_runtime_version", b"keep_stablehlo_constant"] and model.Description() is None
    for i in range(model.BuffersLength()):  # the weights keep the alignment TFLite's own writer gives them
        buffer = model.Buffers(i)
        if buffer.DataLength():
            assert buffer._tab.Vector(buffer._tab.Offset(4)) % 16 == 0
    assert all(np.array_equal(a, b) for a, b in zip(_outputs(GOLDEN_TFLITE), _outputs(clean)))


def test_a_bundle_from_a_tflite_file_with_notes_carries_none_of_them(tmp_path):
    write_synth(SynthConfig(users=60, items=56, events=1_200, seed=4), tmp_path / "data")
    vectors = np.random.default_rng(1).normal(size=(56, 8)).astype(np.float32)
    bundle_user_model(_with_notes(tmp_path / "theirs.tflite"), EncoderSpec.load(SPEC), vectors, tmp_path / "data",
                      tmp_path / "b")
    files = [f for f in (tmp_path / "b").rglob("*") if f.is_file()]
    assert (tmp_path / "b" / "user_encoder.tflite") in files
    assert not any(SECRET in f.read_bytes() or b"Alice" in f.read_bytes() for f in files)


def test_tflite_files_that_cannot_ship_are_refused_with_what_to_do(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ExportError, match=r"junk.tflite is not a TFLite model \(no TFL3 identifier\); give the "):
        portable_tflite(junk, tmp_path / "out.tflite")
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(GOLDEN_TFLITE.read_bytes()[:200])
    with pytest.raises(ExportError, match=r"cut.tflite cannot be read as TFLite \(\w+\); give the file"):
        portable_tflite(cut, tmp_path / "out.tflite")
    model = schema.ModelT.InitFromPackedBuf(GOLDEN_TFLITE.read_bytes(), 0)
    model.buffers[1].offset, model.buffers[1].size = 4096, 64  # weights kept after the flatbuffer
    with pytest.raises(ExportError, match=r"keeps its weights outside the model \(a file over 2 GB\)"):
        portable_tflite(_repacked(model, tmp_path / "big.tflite"), tmp_path / "out.tflite")
    assert not (tmp_path / "out.tflite").exists()


def test_a_clean_copy_that_computes_otherwise_is_refused(tmp_path, monkeypatch):
    """The guard behind the cleaning: should repacking ever change a weight, the export stops."""
    import edgerec.export.user_files as user_files

    real_pack = user_files._AlignedBuffer.Pack

    def damaged(self, builder):
        if self.data is not None and len(self.data) >= 64:
            self.data = np.zeros(len(self.data), np.uint8)
        return real_pack(self, builder)

    monkeypatch.setattr(user_files._AlignedBuffer, "Pack", damaged)
    with pytest.raises(ExportError, match=r"could not be cleaned of its metadata without changing its outputs; "
                                          r"convert it again without metadata"):
        portable_tflite(GOLDEN_TFLITE, tmp_path / "out.tflite")


def test_onnx_metadata_and_doc_strings_stay_behind(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 2], np.arange(8, dtype=np.float32).tolist())
    weight.doc_string = SECRET.decode()
    weight.metadata_props.add(key="origin", value=SECRET.decode())
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 4], doc_string=SECRET.decode())
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 2])
    y.metadata_props.add(key="note", value=SECRET.decode())
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], doc_string=SECRET.decode())
    model.metadata_props.add(key="author", value=SECRET.decode())
    onnx.save(model, str(tmp_path / "theirs.onnx"))
    portable_onnx(tmp_path / "theirs.onnx", tmp_path / "clean.onnx")
    assert SECRET not in (tmp_path / "clean.onnx").read_bytes()
    clean = onnx.load(str(tmp_path / "clean.onnx"))
    assert onnx.numpy_helper.to_array(clean.graph.initializer[0]).tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]


# ------------------------------------------------------------------ guards (the mutation run's survivors)


def _golden_model():
    return schema.ModelT.InitFromPackedBuf(GOLDEN_TFLITE.read_bytes(), 0)


def _entry(name: bytes, buffer: int):
    entry = schema.MetadataT()
    entry.name, entry.buffer = name, buffer
    return entry


def test_refusals_say_what_was_wrong_and_what_to_give_in_full(tmp_path):
    def refused(source) -> str:
        with pytest.raises(ExportError) as caught:
            portable_tflite(source, tmp_path / "out.tflite")
        return str(caught.value)

    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00\x00\x00\x00TFL")
    assert refused(junk) == ("junk.tflite is not a TFLite model (no TFL3 identifier); give the .tflite file your "
                             "converter wrote")
    eight = tmp_path / "eight.tflite"
    eight.write_bytes(b"\x00\x00\x00\x00TFL3")  # the identifier and nothing else: read, and found damaged
    assert refused(eight) == ("eight.tflite cannot be run by the TFLite interpreter (The model is not a valid "
                              "Flatbuffer buffer); give the file your converter wrote")  # was a bare ValueError
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(GOLDEN_TFLITE.read_bytes()[:200])
    message = refused(cut)
    assert message.startswith("cut.tflite cannot be read as TFLite (") and "NoneType" not in message
    assert message.endswith("); give the file your converter wrote")
    model = _golden_model()
    model.buffers[1].offset, model.buffers[1].size = 2, 64  # the schema: offset > 1 is data after the flatbuffer
    assert refused(_repacked(model, tmp_path / "big.tflite")) == (
        "big.tflite keeps its weights outside the model (a file over 2 GB), too many for a device; shrink or "
        "quantize the model")


def test_an_offset_of_one_and_a_dangling_entry_are_no_reason_to_refuse(tmp_path):
    model = _golden_model()
    model.buffers[0].offset = 1  # not "data outside the flatbuffer" (that is > 1)
    model.metadata.append(_entry(b"dangling", len(model.buffers)))  # names a buffer that does not exist
    portable_tflite(_repacked(model, tmp_path / "odd.tflite"), tmp_path / "clean.tflite")
    assert all(np.array_equal(a, b) for a, b in zip(_outputs(GOLDEN_TFLITE), _outputs(tmp_path / "clean.tflite")))


def test_an_entry_on_buffer_zero_loses_its_bytes_and_kept_entries_keep_theirs(tmp_path):
    model = _golden_model()
    model.buffers[0].data = np.frombuffer(SECRET, np.uint8)
    model.metadata.append(_entry(b"card", 0))
    portable_tflite(_repacked(model, tmp_path / "zero.tflite"), tmp_path / "clean.tflite")
    data = (tmp_path / "clean.tflite").read_bytes()
    assert SECRET not in data
    clean = schema.Model.GetRootAsModel(data, 0)
    kept = {clean.Metadata(i).Name(): clean.Metadata(i).Buffer() for i in range(clean.MetadataLength())}
    assert bytes(clean.Buffers(kept[b"min_runtime_version"]).DataAsNumpy()).rstrip(b"\x00") == b"2.9.0"


def test_onnx_refusals_and_every_doc_string_emptied(tmp_path, monkeypatch):
    import onnx
    from onnx import TensorProto, helper

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * 32)
    with pytest.raises(ExportError) as caught:
        portable_onnx(junk, tmp_path / "out.onnx")
    message = str(caught.value)
    assert message.startswith("junk.onnx cannot be loaded as ONNX (") and "NoneType" not in message
    assert message.endswith("); give the file your exporter wrote") and "None)" not in message
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2], doc_string="x doc")
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2], doc_string="y doc")
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    graph.value_info.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1], doc_string="z doc"))
    onnx.save(helper.make_model(graph, doc_string="model doc"), str(tmp_path / "docs.onnx"))
    portable_onnx(tmp_path / "docs.onnx", tmp_path / "clean.onnx")
    clean = onnx.load(str(tmp_path / "clean.onnx"))
    assert clean.doc_string == "" and clean.graph.doc_string == ""
    assert [v.doc_string for v in (*clean.graph.input, *clean.graph.output, *clean.graph.value_info)] == ["", "", ""]

    def too_big(*_args, **_kwargs):
        raise ValueError("Message onnx.ModelProto exceeds maximum protobuf size of 2GB")

    monkeypatch.setattr(onnx, "save", too_big)
    with pytest.raises(ExportError) as caught:
        portable_onnx(tmp_path / "docs.onnx", tmp_path / "out.onnx")
    assert str(caught.value) == ("docs.onnx holds more than 2 GB of weights, too many for one file on a device; "
                                 "shrink or quantize the model")


def test_a_clean_copy_the_interpreter_cannot_run_is_refused_the_same_way(tmp_path, monkeypatch):
    import edgerec.export.user_files as user_files

    real_pack = user_files._AlignedBuffer.Pack

    def broken(self, builder):
        if self.data is not None and len(self.data) >= 64:
            self.data, self.offset, self.size = None, 1 << 40, len(self.data)  # points past the file's end
        return real_pack(self, builder)

    monkeypatch.setattr(user_files._AlignedBuffer, "Pack", broken)
    with pytest.raises(ExportError) as caught:
        portable_tflite(GOLDEN_TFLITE, tmp_path / "out.tflite")
    assert str(caught.value) == ("user_encoder.tflite could not be cleaned of its metadata without changing its "
                                 "outputs; convert it again without metadata (no model card or label files) and "
                                 "export that")


@pytest.mark.parametrize(("error", "shown"), [
    (ValueError(""), "ValueError"), (RuntimeError("  \n "), "RuntimeError"),
    (ValueError("first line\nsecond line"), "first line"), (ValueError("x" * 300), "x" * 200)])
def test_an_engines_error_is_shown_by_its_first_line_or_its_type(tmp_path, monkeypatch, error, shown):
    import onnx
    from ai_edge_litert import interpreter

    def fails(*_args, **_kwargs):
        raise error

    (tmp_path / "m.onnx").write_bytes(b"")
    monkeypatch.setattr(onnx, "load", fails)
    with pytest.raises(ExportError) as caught:
        portable_onnx(tmp_path / "m.onnx", tmp_path / "out.onnx")
    assert str(caught.value) == f"m.onnx cannot be loaded as ONNX ({shown}); give the file your exporter wrote"
    monkeypatch.setattr(interpreter, "Interpreter", fails)
    with pytest.raises(ExportError) as caught:
        portable_tflite(GOLDEN_TFLITE, tmp_path / "out.tflite")
    assert str(caught.value) == (f"user_encoder.tflite cannot be run by the TFLite interpreter ({shown}); give the "
                                 "file your converter wrote")


def test_an_encoder_file_that_is_not_there_is_refused_by_its_name(tmp_path):
    write_synth(SynthConfig(users=20, items=56, events=300, seed=4), tmp_path / "data")
    vectors = np.random.default_rng(1).normal(size=(56, 8)).astype(np.float32)
    (tmp_path / "folder.tflite").mkdir()
    for missing in (tmp_path / "gone.tflite", tmp_path / "folder.tflite"):  # not there; a folder
        with pytest.raises(ConfigError) as caught:
            bundle_user_model(missing, EncoderSpec.load(SPEC), vectors, tmp_path / "data", tmp_path / "b")
        assert str(caught.value) == f"{missing.name} is not a file here; give the path of your user encoder's file"
