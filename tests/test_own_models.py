"""A user's own models, shaped their way: PyTorch modules and ONNX files from other tools as user encoders,
and Hugging Face folders as content teachers. Each either becomes a bundle that runs on the device as it
was checked, or is refused with what to change."""

import json
import sys
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data import SynthConfig, write_synth
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError, ExportError
from edgerec.export.custom import bundle_user_model
from edgerec.export.own_encoder import EncoderSpec
from edgerec.export.own_torch import bundle_torch_module, load_torch_module
from edgerec.runtime import Recommender

L, D = 12, 16
SPEC = {"input": {"name": "ids", "dtype": "int64", "history_length": L}, "output": {"name": "user_vector"}, "dim": D}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    write_synth(SynthConfig(users=120, items=200, events=3_000, seed=3), root / "data")
    n = load_dataset(root / "data").n_items
    vectors = np.random.default_rng(0).normal(size=(n, D)).astype(np.float32)
    np.save(root / "vectors.npy", vectors)
    return root, vectors


class MeanPool(torch.nn.Module):
    """Mean of the history's item vectors; `pad` is the row it treats as padding (0 is the contract)."""

    def __init__(self, vectors, pad=0):
        super().__init__()
        table = np.insert(vectors, pad, np.full(vectors.shape[1], 0.0 if pad == 0 else 1.0, np.float32), axis=0)
        self.table = torch.nn.Embedding.from_pretrained(torch.as_tensor(table))
        self.pad = pad

    def forward(self, ids):
        mask = (ids != 0).unsqueeze(-1).to(torch.float32)  # a model that reads 0 as an item when pad != 0
        if self.pad:
            mask = torch.ones_like(mask)
        return (self.table(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class Int32Only(MeanPool):
    def forward(self, ids):
        torch._assert(ids.dtype == torch.int32, "ids must be int32")
        return super().forward(ids)


class Shaped(MeanPool):
    """Returns the user vector as another tool would: a tuple, a mapping, or (batch, 1, dim)."""

    def __init__(self, vectors, how):
        super().__init__(vectors)
        self.how = how

    def forward(self, ids):
        v = super().forward(ids)
        return {"tuple": (v, v.sum(-1)), "dict": {"logits": v.sum(-1), "user_vector": v}, "3d": v.unsqueeze(1)}[self.how]


class Branchy(MeanPool):
    def forward(self, ids):
        if (ids > 0).sum() > 3:
            return super().forward(ids)
        return self.table(ids[:, -1])


def _device_vector(bundle, rows):
    """The user vector the device computes for one history of item rows (catalog index + 1)."""
    rec = Recommender.open(bundle)
    for r in rows:
        rec.record("u", rec.catalog.item_id(r - 1), "finish")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(rec.recommend("u", k=5)) == 5
    assert "encode_fallback" not in rec.stats()["counters"]
    return rec.models.encoder.encode([np.asarray(rows)])[0]


def test_int32_module_and_its_parity_figures(world, tmp_path):
    root, vectors = world
    spec = EncoderSpec.load(dict(SPEC, input=dict(SPEC["input"], dtype="int32")))
    manifest = bundle_torch_module(Int32Only(vectors), spec, vectors, root / "data", tmp_path / "b")
    entry = manifest.models[0]
    assert entry.inputs[0].dtype == "int32"
    assert entry.parity["reference"] == "pytorch" and entry.parity["top10_agreement"] == 1.0
    assert entry.parity["max_abs_diff"] < 1e-5
    got = _device_vector(tmp_path / "b", [3, 9, 4])
    assert np.allclose(got, vectors[[2, 8, 3]].mean(0), atol=1e-5)
    assert {"user_model", "popular"} <= set(manifest.metrics)
    assert 0 <= manifest.metrics["user_model"]["NDCG@10"] <= 1


@pytest.mark.parametrize("how", ["tuple", "dict", "3d"])
def test_outputs_shaped_another_way_are_adapted(world, tmp_path, how):
    root, vectors = world
    manifest = bundle_torch_module(Shaped(vectors, how), EncoderSpec.load(SPEC), vectors, root / "data",
                                   tmp_path / "b")
    assert manifest.models[0].parity["adapted"]
    assert np.allclose(_device_vector(tmp_path / "b", [5, 6]), vectors[[4, 5]].mean(0), atol=1e-5)


def test_a_model_that_reads_padding_is_padded_to_its_length_on_the_device(world, tmp_path):
    root, vectors = world
    module = MeanPool(vectors, pad=len(vectors))  # 0-based rows, padding_idx = N: 0 is an item to it
    bundle_torch_module(module, EncoderSpec.load(SPEC), vectors, root / "data", tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    entry = manifest["models"][0]
    assert entry["inputs"][0]["shape"] == ["batch", L] and entry["parity"]["padding"]["cosine_gap"] > 0.05
    padded = np.zeros((1, L), np.int64)
    padded[0, -2:] = [7, 8]
    with torch.no_grad():
        expected = module(torch.as_tensor(padded)).numpy()[0]
    assert np.allclose(_device_vector(tmp_path / "b", [7, 8]), expected, atol=1e-5)  # what was checked is what runs
    # a model that ignores padding keeps dynamic lengths
    bundle_torch_module(MeanPool(vectors), EncoderSpec.load(SPEC), vectors, root / "data", tmp_path / "ok")
    entry = json.loads((tmp_path / "ok" / "manifest.json").read_text())["models"][0]
    assert entry["inputs"][0]["shape"] == ["batch", "history"]


def _legacy_onnx(module, path, dynamic, dtype=torch.int64, batch=4, **names):
    inputs = names.get("inputs", ["input_ids"])
    sample = tuple(torch.ones(batch, L, dtype=dtype) for _ in inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, sample, str(path), dynamo=False, opset_version=17, input_names=inputs,
                          output_names=names.get("outputs", ["embedding"]), dynamic_axes=dynamic)
    return path


class TwoInputs(MeanPool):
    def forward(self, ids, mask):
        return super().forward(ids * mask)


class Widen(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, ids):
        return self.inner(ids.long())


def test_onnx_files_from_other_tools(world, tmp_path):
    root, vectors = world
    other = dict(SPEC, input={"name": "input_ids", "history_length": L}, output={"name": "embedding"})
    module = MeanPool(vectors).eval()
    # a fixed history length (batch dynamic): padded to L on the device, not a popularity fallback
    fixed = _legacy_onnx(module, tmp_path / "fixed.onnx", {"input_ids": {0: "b"}, "embedding": {0: "b"}})
    bundle_user_model(fixed, EncoderSpec.load(other), vectors, root / "data", tmp_path / "b1")
    assert np.allclose(_device_vector(tmp_path / "b1", [3, 4]), vectors[[2, 3]].mean(0), atol=1e-5)
    # int32 ids (as TensorFlow-made files take), declared in the spec
    int32 = _legacy_onnx(Widen(module), tmp_path / "i32.onnx", {"input_ids": {0: "b", 1: "t"}}, dtype=torch.int32)
    with pytest.raises(ExportError, match="set input.dtype to int32"):
        bundle_user_model(int32, EncoderSpec.load(other), vectors, root / "data", tmp_path / "no")
    bundle_user_model(int32, EncoderSpec.load(dict(other, input=dict(other["input"], dtype="int32"))), vectors,
                      root / "data", tmp_path / "b2")
    assert np.allclose(_device_vector(tmp_path / "b2", [3, 4]), vectors[[2, 3]].mean(0), atol=1e-5)
    # batch fixed at 1: one history per call
    one = _legacy_onnx(module, tmp_path / "one.onnx", {"input_ids": {1: "t"}}, batch=1)
    bundle_user_model(one, EncoderSpec.load(other), vectors, root / "data", tmp_path / "b3")
    assert np.allclose(_device_vector(tmp_path / "b3", [3, 4]), vectors[[2, 3]].mean(0), atol=1e-5)
    refusals = [
        (_legacy_onnx(module, tmp_path / "four.onnx", {}), "fixed batch of 4; the device encodes one user"),
        (_legacy_onnx(TwoInputs(vectors), tmp_path / "two.onnx", {}, inputs=["input_ids", "attention_mask"]),
         "takes 2 inputs"),
        (_legacy_onnx(Shaped(vectors, "tuple"), tmp_path / "outs.onnx", {"input_ids": {0: "b", 1: "t"}},
                      outputs=["logits", "embedding"]), "first output is 'logits'"),
        (_legacy_onnx(Shaped(vectors, "3d"), tmp_path / "3d.onnx", {"input_ids": {0: "b", 1: "t"}}),
         "squeeze the middle axis"),
    ]
    for path, message in refusals:
        with pytest.raises(ExportError, match=message):
            bundle_user_model(path, EncoderSpec.load(other), vectors, root / "data", tmp_path / path.stem)
    (tmp_path / "text.onnx").write_text("not a model")
    with pytest.raises(ExportError, match="cannot be loaded as ONNX"):
        bundle_user_model(tmp_path / "text.onnx", EncoderSpec.load(other), vectors, root / "data", tmp_path / "t")


def test_onnx_file_ships_self_contained_without_host_paths(world, tmp_path):
    import shutil

    import onnx

    root, vectors = world
    other = dict(SPEC, input={"name": "input_ids", "history_length": L}, output={"name": "embedding"})
    made = _legacy_onnx(MeanPool(vectors).eval(), tmp_path / "made.onnx", {"input_ids": {0: "b", 1: "t"}})
    model = onnx.load(str(made))
    secret = "/home/alice/projects/recsys/train.py"  # what exporters write into node metadata
    for node in model.graph.node:
        node.doc_string = f"File {secret}, line 12"
        node.metadata_props.add(key="pkg.torch.onnx.stack_trace", value=secret)
    (tmp_path / "theirs").mkdir()
    onnx.save(model, str(tmp_path / "theirs" / "enc.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="enc.data", size_threshold=0)
    bundle_user_model(tmp_path / "theirs" / "enc.onnx", EncoderSpec.load(other), vectors, root / "data",
                      tmp_path / "b")
    shutil.rmtree(tmp_path / "theirs")  # the weights were in enc.data beside it
    assert not any(secret.encode() in f.read_bytes() for f in (tmp_path / "b").rglob("*") if f.is_file())
    assert np.allclose(_device_vector(tmp_path / "b", [3, 4]), vectors[[2, 3]].mean(0), atol=1e-5)


def test_module_from_the_current_folder_and_its_refusals(world, tmp_path, monkeypatch):
    (tmp_path / "mymodels.py").write_text(
        "import torch\n"
        "def build():\n    return torch.nn.Identity()\n"
        "def broken():\n    raise RuntimeError('weights file missing')\n"
        "def not_a_module():\n    return 3\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])  # as the console script
    assert isinstance(load_torch_module("mymodels:build"), torch.nn.Identity)
    for reference, message in [("mymodels", "MODULE:FUNCTION"), ("nomodels:build", "PYTHONPATH"),
                               ("mymodels:missing", "no function 'missing'"), ("mymodels:broken", "weights file"),
                               ("mymodels:not_a_module", "not a torch.nn.Module")]:
        with pytest.raises(ConfigError, match=message):
            load_torch_module(reference)
    assert str(tmp_path) not in sys.path


def test_exporter_failure_is_one_short_line(world, tmp_path):
    root, vectors = world
    with pytest.raises(ExportError) as caught:
        bundle_torch_module(Branchy(vectors), EncoderSpec.load(SPEC), vectors, root / "data", tmp_path / "b")
    message = str(caught.value)
    assert "torch.where" in message and "test_own_models.py line" in message
    assert len(message) < 700 and "/" + "tests/" not in message and "Exception summary" not in message
    with pytest.raises(ExportError, match="must take one such tensor"):  # int64 ids to an int32-only forward
        bundle_torch_module(Int32Only(vectors), EncoderSpec.load(SPEC), vectors, root / "data", tmp_path / "c")
    with pytest.raises(ExportError, match=r"returns shape \(2, 16\); the spec says \(batch, 8\)"):
        bundle_torch_module(MeanPool(vectors), EncoderSpec.load(dict(SPEC, dim=8)), vectors[:, :8], root / "data",
                            tmp_path / "d")


@pytest.mark.parametrize("text, message", [
    ('{"input": {"name": "ids"', "not JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"output": {"name": "v"}, "dim": 8}', "lacks input.name"),
    ('{"input": {"name": "ids"}, "output": {"name": "v"}, "dim": 8}', "lacks input.history_length"),
    ('{"input": {"name": "ids", "history_length": 10}, "output": "v", "dim": 8}', "lacks output.name"),
    ('{"input": {"name": "ids", "history_length": "ten"}, "output": {"name": "v"}, "dim": 8}', "whole number"),
    ('{"input": {"name": "ids", "history_length": 10}, "output": {"name": "v"}, "dim": 0}', "dim must be"),
    ('{"input": {"name": "ids", "dtype": "float32", "history_length": 10}, "output": {"name": "v"}, "dim": 8}',
     "int64 or int32"),
])
def test_spec_refusals(tmp_path, text, message):
    (tmp_path / "spec.json").write_text(text)
    with pytest.raises(ConfigError, match=message):
        EncoderSpec.load(tmp_path / "spec.json")


def test_cli_warns_when_the_model_reads_zero_as_an_item(world, tmp_path, monkeypatch):
    root, vectors = world
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    (tmp_path / "mine.py").write_text(
        "import numpy as np, torch\n"
        f"from {__name__} import MeanPool\n"
        f"def build():\n    return MeanPool(np.load({str(root / 'vectors.npy')!r}), pad={len(vectors)})\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["export", "--torch-module", "mine:build", "--spec", "spec.json",
                                      "--item-vectors", str(root / "vectors.npy"), "--data", str(root / "data"),
                                      "--out", "bundle"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"left-padded to {L} on the device" in text and "reads 0 as an item" in text


# ------------------------------------------------------------------ Hugging Face folders as content teachers


@pytest.fixture(scope="module")
def hf(world):
    """Tiny random Hugging Face folders, made here (no download), over the world's words."""
    import re

    import sentencepiece as spm
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizerFast,
        DistilBertConfig,
        DistilBertModel,
        DistilBertTokenizerFast,
        T5Config,
        T5EncoderModel,
        T5Model,
    )

    root, _ = world
    catalog = load_dataset(root / "data").catalog
    texts = [f"{t} {d}" for t, d in zip(catalog.text["title"], catalog.text["description"])]
    words = sorted({w for t in texts for w in re.findall(r"\w+", t.lower())})
    (root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    torch.manual_seed(0)
    folders = {}
    folders["bert32"] = root / "bert32"  # hidden 32: narrower than the student's default width
    BertModel(BertConfig(vocab_size=len(words) + 5, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folders["bert32"])
    BertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(folders["bert32"])
    folders["distilbert"] = root / "distilbert"  # its forward takes no token_type_ids
    DistilBertModel(DistilBertConfig(vocab_size=len(words) + 5, dim=32, n_layers=1, n_heads=2,
                                     hidden_dim=64)).save_pretrained(folders["distilbert"])
    DistilBertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(folders["distilbert"])
    (root / "corpus.txt").write_text("\n".join(texts))
    spm.SentencePieceTrainer.train(input=str(root / "corpus.txt"), model_prefix=str(root / "sp"), vocab_size=200,
                                   pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2)
    folders["sentence-t5"] = root / "sentence-t5"  # an encoder-only T5 with a sentencepiece tokenizer only
    shape = dict(vocab_size=200, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_heads=2)
    T5EncoderModel(T5Config(**shape)).save_pretrained(folders["sentence-t5"])
    (folders["sentence-t5"] / "spiece.model").write_bytes((root / "sp.model").read_bytes())
    folders["t5"] = root / "t5"  # encoder-decoder
    T5Model(T5Config(**shape)).save_pretrained(folders["t5"])
    folders["empty"] = root / "empty"
    folders["empty"].mkdir()
    return root, folders


def test_hugging_face_teachers_shaped_their_way(hf):
    from edgerec.errors import ModelError
    from edgerec.models.content import ContentTeacher

    root, folders = hf
    vectors = ContentTeacher(folders["distilbert"]).encode(["a tense heist", "a quiet song"])
    assert vectors.shape == (2, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    for name, message in (("empty", "holds no config.json"), ("t5", "encoder-decoder model"),
                          ("sentence-t5", "AutoTokenizer.from_pretrained")):
        with pytest.raises(ModelError, match=message):
            ContentTeacher(folders[name])
    with pytest.raises(ModelError, match="holds no config.json"):  # a file, not a folder
        ContentTeacher(root / "vocab.txt")
    # the advice works: the sentencepiece tokenizer converted to tokenizer.json, the encoder-only T5 loads
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(folders["sentence-t5"])).save_pretrained(str(folders["sentence-t5"]))
    assert ContentTeacher(folders["sentence-t5"]).encode(["a tense heist"]).shape == (1, 32)


def test_content_distill_with_a_narrower_teacher_and_its_bundle(hf, tmp_path):
    root, folders = hf
    runner = CliRunner()
    result = runner.invoke(cli, ["content", "distill", "--data", str(root / "data"), "--encoder",
                                 str(folders["bert32"]), "--out", str(tmp_path / "content"), "--train-items", "60",
                                 "--held-out", "20", "--epochs", "1", "--real-titles", "0"])
    assert result.exit_code == 0, result.output
    assert "student width 32" in result.output
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    vectors = np.load(root / "vectors.npy")
    bundle_user_model(_legacy_onnx(MeanPool(vectors).eval(), tmp_path / "mine.onnx", {"input_ids": {0: "b", 1: "t"}}),
                      EncoderSpec.load(dict(SPEC, input={"name": "input_ids", "history_length": L},
                                            output={"name": "embedding"})),
                      vectors, root / "data", tmp_path / "b", content=tmp_path / "content")
    rec = Recommender.open(tmp_path / "b")
    assert rec.add_items([{"item_id": "new1", "title": "Night heist", "description": "a tense crime story"}])
    assert rec.tag("a tense crime story")["tags"]
    for extra in (["--ranker", str(tmp_path)], ["--quantize", "fp16"], ["--format", "tflite"]):  # refused, not ignored
        result = runner.invoke(cli, ["export", "--encoder", str(tmp_path / "mine.onnx"), "--spec",
                                     str(tmp_path / "spec.json"), "--item-vectors", str(root / "vectors.npy"),
                                     "--data", str(root / "data"), "--out", str(tmp_path / "c"), *extra])
        assert result.exit_code == 1 and "go with --model" in result.output, result.output


# ------------------------------------------------------------------ a user's encoder as distillation teacher


def test_own_teacher_states_are_its_vectors_of_each_prefix(world):
    from edgerec.compress.own_teacher import OwnTeacher

    _, vectors = world
    module = MeanPool(vectors).eval()
    calls = []

    def encode(rows):
        calls.append(rows.shape)
        with torch.no_grad():
            return module(torch.as_tensor(rows)).numpy()

    teacher = OwnTeacher(encode, vectors, history_length=3)
    states = teacher.hidden(torch.as_tensor([[0, 0, 5, 6, 7, 8]]))
    assert states.shape == (1, 6, D) and calls == [(4, 3)]  # the 2 prefixes of padding only are not encoded
    assert np.allclose(states[0, :2], 0)  # padding only: masked out by the loss, never NaN
    assert np.allclose(states[0, 3], vectors[[4, 5]].mean(0), atol=1e-6)  # rows 5, 6 = items 4, 5
    assert np.allclose(states[0, 5], vectors[[5, 6, 7]].mean(0), atol=1e-6)  # the newest 3 only
    assert np.allclose(teacher.item_vectors()[1:], vectors) and float(teacher.item_vectors()[0].abs().sum()) == 0


def test_distill_from_your_own_teacher_via_the_cli(world, tmp_path):
    root, vectors = world
    import edgerec.compress.distill as distill

    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    onnx_teacher = _legacy_onnx(MeanPool(vectors).eval(), tmp_path / "teacher.onnx", {"input_ids": {0: "b", 1: "t"}})
    (tmp_path / "tspec.json").write_text(json.dumps(dict(SPEC, input={"name": "input_ids", "history_length": L},
                                                         output={"name": "embedding"})))
    seen = []
    original = distill.TeacherTargets.__init__
    runner = CliRunner()
    common = ["--data", str(root / "data"), "--dim", "8", "--layers", "1", "--heads", "1", "--max-len", str(L),
              "--epochs", "1", "--eval-users", "0", "--teacher-vectors", str(root / "vectors.npy")]
    try:
        distill.TeacherTargets.__init__ = lambda self, teacher, *a, **k: seen.append(teacher) or original(
            self, teacher, *a, **k)
        result = runner.invoke(cli, ["distill", "--teacher", str(onnx_teacher), "--teacher-spec",
                                     str(tmp_path / "tspec.json"), "--out", str(tmp_path / "student"), *common])
    finally:
        distill.TeacherTargets.__init__ = original
    assert result.exit_code == 0, result.output
    assert type(seen[0]).__name__ == "OwnTeacher" and (tmp_path / "student" / "model.safetensors").exists()
    for teacher, message in ((str(tmp_path / "nothere"), "does not exist"),
                             (str(tmp_path / "spec.json"), "give an edgerec checkpoint folder, an .onnx file")):
        result = runner.invoke(cli, ["distill", "--teacher", teacher, "--teacher-spec", str(tmp_path / "spec.json"),
                                     "--out", str(tmp_path / "x"), *common])
        assert result.exit_code == 1 and message in result.output, result.output


def test_a_tflite_file_of_your_own(tmp_path):
    """The golden bundle's TFLite encoder (input (1, 5), output 8, 56 items) as a user's file."""
    from pathlib import Path

    tflite = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle" / "user_encoder.tflite"
    write_synth(SynthConfig(users=60, items=56, events=1_200, seed=4), tmp_path / "data")
    vectors = np.random.default_rng(1).normal(size=(56, 8)).astype(np.float32)
    spec = {"input": {"name": "ids", "history_length": 5}, "output": {"name": "user_vector"}, "dim": 8}
    manifest = bundle_user_model(tflite, EncoderSpec.load(spec), vectors, tmp_path / "data", tmp_path / "b")
    assert manifest.models[0].inputs[0].shape == [1, 5] and manifest.models[0].inputs[0].dtype == "int32"
    assert _device_vector(tmp_path / "b", [3, 4]).shape == (8,)
    with pytest.raises(ExportError, match=r"fixed at \(1, 5\), the spec says history_length 7: set"):
        bundle_user_model(tflite, EncoderSpec.load(dict(spec, input={"name": "ids", "history_length": 7})), vectors,
                          tmp_path / "data", tmp_path / "c")


def test_sentence_transformers_layouts_pool_as_the_model_does(hf, tmp_path):
    """A sentence-transformers folder whose transformer sits in 0_Transformer and pools the CLS token."""
    import shutil

    from edgerec.models.content import ContentTeacher, load_tokenizer, tokenize

    _, folders = hf
    folder = tmp_path / "st"
    shutil.copytree(folders["bert32"], folder / "0_Transformer")
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    teacher = ContentTeacher(folder)
    got = teacher.encode(["a tense heist", "a quiet song about rain"])
    ids, mask = tokenize(load_tokenizer(folder / "0_Transformer", 128), ["a tense heist", "a quiet song about rain"])
    with torch.no_grad():
        states = teacher.model(input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask)).last_hidden_state
    cls = states[:, 0].numpy()
    assert np.allclose(got, cls / np.linalg.norm(cls, axis=1, keepdims=True), atol=1e-5)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}))
    from edgerec.errors import ModelError

    with pytest.raises(ModelError, match="not one of mean, CLS, max or last token alone"):
        ContentTeacher(folder)
    (folder / "modules.json").unlink()
    with pytest.raises(ModelError, match="its subfolder 0_Transformer holds one"):
        ContentTeacher(folder)


def test_a_model_trained_on_a_smaller_catalog_is_refused(world, tmp_path):
    root, vectors = world
    small = MeanPool(vectors[:150]).eval()  # rows 1..150 only; the catalog has 200 items
    with pytest.raises(ExportError, match="must cover every item of items.csv: rows 1 to 200"):
        bundle_torch_module(small, EncoderSpec.load(SPEC), vectors, root / "data", tmp_path / "a")
    other = dict(SPEC, input={"name": "input_ids", "history_length": L}, output={"name": "embedding"})
    path = _legacy_onnx(small, tmp_path / "small.onnx", {"input_ids": {0: "b", 1: "t"}})
    with pytest.raises(ExportError, match="must cover every item of items.csv: rows 1 to 200"):
        bundle_user_model(path, EncoderSpec.load(other), vectors, root / "data", tmp_path / "b")


# ------------------------------------------------------------------ what the device would get otherwise


class BatchCentred(MeanPool):
    """Statistics over the batch: alone (as the device encodes a user) every vector is the same constant."""

    def forward(self, ids):
        v = super().forward(ids)
        return v - v.mean(0, keepdim=True) + 0.01


class NaNForOneItem(MeanPool):
    """NaN for histories holding item row 200 (the catalog's last item), which few test histories hold."""

    def forward(self, ids):
        v = super().forward(ids)
        return torch.where((ids == 200).any(1, keepdim=True), torch.full_like(v, float("nan")), v)


class Sampling(MeanPool):
    def forward(self, ids):
        return torch.nn.functional.dropout(super().forward(ids), 0.5, training=True)


class NaNInPyTorchOnly(MeanPool):
    """The exported graph is finite, the module gave NaN for one real history: parity must not pass on NaN."""

    def forward(self, ids):
        v = super().forward(ids)
        if torch.onnx.is_in_onnx_export() or ids.shape[0] < 3:
            return v
        return torch.cat([torch.full_like(v[:1], float("nan")), v[1:]])


@pytest.mark.parametrize("module, message", [
    (BatchCentred, "changes with the other histories in its batch"),
    (NaNForOneItem, r"NaN or infinite values for 1 of 17 histories that together hold every item, first for one of "
                    r"the item rows 189 to 200"),
    (Sampling, "other vectors for the same histories on a second call"),
])
def test_models_the_device_would_run_otherwise_are_refused(world, tmp_path, module, message):
    root, vectors = world
    with pytest.raises(ExportError, match=message):
        bundle_torch_module(module(vectors), EncoderSpec.load(SPEC), vectors, root / "data", tmp_path / "b")
    assert not (tmp_path / "b").exists()
    if module is BatchCentred:  # an ONNX file of such a model, given as a file
        path = _legacy_onnx(module(vectors).eval(), tmp_path / "c.onnx", {"input_ids": {0: "b", 1: "t"}})
        other = dict(SPEC, input={"name": "input_ids", "history_length": L}, output={"name": "embedding"})
        with pytest.raises(ExportError, match=message):
            bundle_user_model(path, EncoderSpec.load(other), vectors, root / "data", tmp_path / "c")


def test_parity_does_not_pass_on_nan(tmp_path):
    """One NaN history of 256 (top-10 agreement 0.996): a NaN max |diff| compared as "not above" passed."""
    write_synth(SynthConfig(users=300, items=200, events=4_000, seed=5), tmp_path / "data")
    vectors = np.random.default_rng(2).normal(size=(200, D)).astype(np.float32)
    with pytest.raises(ExportError, match=r"does not match PyTorch on real histories \(max \|diff\| nan"):
        bundle_torch_module(NaNInPyTorchOnly(vectors), EncoderSpec.load(SPEC), vectors, tmp_path / "data",
                            tmp_path / "b")


def test_item_vectors_at_the_edges_of_float32(world, tmp_path):
    """Rows of norm past 1.8e19 overflowed float32's norm and became 0 in the table (NDCG@10 0.202 -> 0.002);
    float64 values past float32's range became inf after the finite check; one vector for every item ranked
    the catalog alike for everyone."""
    from edgerec.errors import DataError

    root, vectors = world
    path = _legacy_onnx(MeanPool(vectors).eval(), tmp_path / "m.onnx", {"input_ids": {0: "b", 1: "t"}})
    spec = EncoderSpec.load(dict(SPEC, input={"name": "input_ids", "history_length": L}, output={"name": "embedding"}))
    bundle_user_model(path, spec, vectors * np.float32(1e30), root / "data", tmp_path / "huge")
    bundle_user_model(path, spec, vectors, root / "data", tmp_path / "plain")
    rows = np.arange(len(vectors))
    tables = [Recommender.open(tmp_path / name).catalog.vectors(rows) for name in ("huge", "plain")]
    assert np.abs(tables[0]).max() > 0.5 and np.allclose(tables[0], tables[1], atol=1e-6)
    with pytest.raises(DataError, match="past float32's range"):
        bundle_user_model(path, spec, vectors.astype(np.float64) * 1e39, root / "data", tmp_path / "f64")
    with pytest.raises(ExportError, match="every item vector points the same way"):
        bundle_user_model(path, spec, np.ones_like(vectors) * 3, root / "data", tmp_path / "same")
    assert not (tmp_path / "f64").exists() and not (tmp_path / "same").exists()


def test_an_onnx_file_for_a_newer_runtime_is_refused_without_paths(world, tmp_path):
    """onnxruntime's reason named the scratch copy's path and its own C++ source file and signature."""
    import onnx

    root, vectors = world
    path = _legacy_onnx(MeanPool(vectors).eval(), tmp_path / "m.onnx", {"input_ids": {0: "b", 1: "t"}})
    model = onnx.load(str(path))
    model.ir_version = 99
    onnx.save(model, str(tmp_path / "new.onnx"))
    spec = EncoderSpec.load(dict(SPEC, input={"name": "input_ids", "history_length": L}, output={"name": "embedding"}))
    with pytest.raises(ExportError) as caught:
        bundle_user_model(tmp_path / "new.onnx", spec, vectors, root / "data", tmp_path / "b")
    message = str(caught.value)
    assert "new.onnx cannot be loaded by onnxruntime" in message and "IR version: 99" in message
    assert "/" not in message.replace("and or", "") and "onnxruntime_src" not in message


def test_teachers_with_few_positions_and_a_corrupt_tokenizer(hf, tmp_path):
    """Texts longer than a teacher's positions stopped in a torch error (128 tokens against 24 positions, and
    XLM-R numbers positions after its padding id); an unreadable tokenizer.json in a bare Exception."""
    import shutil

    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    from edgerec.errors import ModelError
    from edgerec.models.content import ContentTeacher

    root, folders = hf
    shape = dict(vocab_size=1_000, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    for name, model in (("bert", BertModel(BertConfig(max_position_embeddings=24, **shape))),
                        ("xlmr", XLMRobertaModel(XLMRobertaConfig(max_position_embeddings=24, pad_token_id=1, **shape)))):
        model.save_pretrained(tmp_path / name)
        shutil.copy(folders["bert32"] / "tokenizer.json", tmp_path / name / "tokenizer.json")
        vectors = ContentTeacher(tmp_path / name).encode([" ".join(["heist"] * 300), "a quiet song"])
        assert vectors.shape == (2, 32) and np.isfinite(vectors).all()
    (tmp_path / "bert" / "tokenizer.json").write_text("{not json")
    with pytest.raises(ModelError, match="tokenizer.json in bert cannot be read"):
        ContentTeacher(tmp_path / "bert")


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_parity_reads_the_exported_file_and_catches_a_broken_export(world, tmp_path, monkeypatch, fmt):
    """The exporter writes a file of other weights (one item's row changed): the file is run, not PyTorch."""
    import copy

    import edgerec.export.formats as formats

    root, vectors = world
    real = getattr(formats, f"export_{fmt}")

    def broken(module, *args, **kwargs):
        module = copy.deepcopy(module)
        with torch.no_grad():
            module.table.weight[1:60] *= -1.0
        return real(module, *args, **kwargs)

    monkeypatch.setattr(formats, f"export_{fmt}", broken)
    with pytest.raises(ExportError, match="does not match PyTorch on real histories"):
        bundle_torch_module(MeanPool(vectors), EncoderSpec.load(SPEC), vectors, root / "data", tmp_path / "b",
                            formats=(fmt,))
    assert not (tmp_path / "b").exists()


def test_own_teacher_refuses_nan_for_real_histories(world):
    """NaN for histories of real items was turned into 0 targets and distilled without a word."""
    from edgerec.compress.own_teacher import OwnTeacher
    from edgerec.errors import ModelError

    _, vectors = world
    module = NaNForOneItem(vectors).eval()

    def encode(rows):
        with torch.no_grad():
            return module(torch.as_tensor(rows)).numpy()

    teacher = OwnTeacher(encode, vectors, history_length=3)
    assert np.isfinite(teacher.hidden(torch.as_tensor([[0, 0, 5, 6]])).numpy()).all()
    with pytest.raises(ModelError, match=r"NaN or infinite values for 1 of 4 histories \(the first holds item rows "
                                         r"\[5, 6, 200\]\)"):
        teacher.hidden(torch.as_tensor([[0, 5, 6, 200]]))


def test_tflite_export_failure_is_one_short_line_too(world, tmp_path):
    """The TFLite path gave the converter's raw text: no torch.where advice, no line of the user's file."""
    root, vectors = world
    with pytest.raises(ExportError) as caught:
        bundle_torch_module(Branchy(vectors), EncoderSpec.load(SPEC), vectors, root / "data", tmp_path / "b",
                            formats=("tflite",))
    message = str(caught.value)
    assert message.startswith("TFLite conversion of Branchy failed") and "torch.where" in message
    assert "test_own_models.py line" in message and "/" + "tests/" not in message and len(message) < 900


def test_a_teacher_whose_vectors_depend_on_the_batch_is_refused(world, tmp_path, monkeypatch):
    """Its distillation targets would depend on which users shared a batch of the teacher's pass."""
    from edgerec.export.own_torch import own_teacher

    root, vectors = world
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    (tmp_path / "batch_teachers.py").write_text(
        "import numpy as np\n"
        f"from {__name__} import BatchCentred, MeanPool\n"
        f"def centred():\n    return BatchCentred(np.load({str(root / 'vectors.npy')!r}))\n"
        f"def plain():\n    return MeanPool(np.load({str(root / 'vectors.npy')!r}))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec, table = str(tmp_path / "spec.json"), str(root / "vectors.npy")
    assert own_teacher("batch_teachers:plain", spec, table, len(vectors)) is not None
    with pytest.raises(ExportError, match="--teacher batch_teachers:centred's vector of a history changes with the other"):
        own_teacher("batch_teachers:centred", spec, table, len(vectors))
    onnx_file = _legacy_onnx(BatchCentred(vectors).eval(), tmp_path / "c.onnx", {"input_ids": {0: "b", 1: "t"}})
    (tmp_path / "tspec.json").write_text(json.dumps(dict(SPEC, input={"name": "input_ids", "history_length": L},
                                                         output={"name": "embedding"})))
    with pytest.raises(ExportError, match="c.onnx's vector of a history changes"):
        own_teacher(str(onnx_file), str(tmp_path / "tspec.json"), table, len(vectors))


def test_the_padding_check_runs_on_cut_histories_when_no_real_one_is_short(world, tmp_path):
    """With every test history at least L long (a filtered log, or a small L) the check compared nothing and
    recorded a gap of 0: the bundle kept dynamic lengths and every new user's short history diverged."""
    root, vectors = world
    spec = EncoderSpec.load(dict(SPEC, input=dict(SPEC["input"], history_length=2)))
    bundle_torch_module(MeanPool(vectors, pad=len(vectors)), spec, vectors, root / "data", tmp_path / "b")
    entry = json.loads((tmp_path / "b" / "manifest.json").read_text())["models"][0]
    assert entry["inputs"][0]["shape"] == ["batch", 2] and entry["parity"]["padding"]["cosine_gap"] > 0.05


class Float64(MeanPool):
    def forward(self, ids):
        return super().forward(ids).double()


def test_user_vectors_that_are_not_float32_are_refused(world, tmp_path):
    """The manifest said float32 while the file returned float64 (or int64): a runtime reading the declared
    buffer would read garbage."""
    root, vectors = world
    with pytest.raises(ExportError, match=r"returns tensor\(double\) user vectors; a bundle's user encoder returns "
                                          "float32"):
        bundle_torch_module(Float64(vectors), EncoderSpec.load(SPEC), vectors, root / "data", tmp_path / "b")
    assert not (tmp_path / "b").exists()
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    result = CliRunner().invoke(cli, ["export", "--torch-module", "x:y", "--spec", str(tmp_path / "spec.json"),
                                      "--item-vectors", str(root / "vectors.npy"), "--data", str(root / "data"),
                                      "--out", str(tmp_path / "c"), "--format", "TFLite,bogus"])
    assert result.exit_code != 0 and "--format must be onnx and/or tflite (got 'TFLite,bogus')" in result.output


def test_an_own_teacher_whose_table_stops_short_of_the_catalog_is_refused_before_training(world, tmp_path,
                                                                                         monkeypatch):
    """`distill --teacher module:factory` with a vocabulary 20 rows short ended in a 53-line IndexError."""
    from edgerec.export.own_torch import own_teacher

    root, vectors = world
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    module = tmp_path / "shortteacher.py"
    module.write_text("import torch\n\nclass Short(torch.nn.Module):\n"
                      f"    def __init__(self):\n        super().__init__()\n"
                      f"        self.table = torch.nn.Embedding({len(vectors) - 19}, {D})\n"
                      "    def forward(self, ids):\n        return self.table(ids).mean(1)\n\n"
                      "def short():\n    return Short()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ExportError, match=rf"^--teacher shortteacher:short fails on the catalog's last items "
                                          rf"\(IndexError: .*\); its ids must cover every item of items.csv: rows 1 "
                                          rf"to {len(vectors)}"):
        own_teacher("shortteacher:short", str(tmp_path / "spec.json"), str(root / "vectors.npy"), len(vectors))


def test_a_history_length_of_one_exports_to_onnx(world, tmp_path):
    """torch.export's dynamic dims start at 2: a spec with history_length 1 ended in a traceback dump and an
    internal 'Invalid ranges [2:1]'. The axis is exported static instead."""
    root, vectors = world
    spec = EncoderSpec.load(dict(SPEC, input=dict(SPEC["input"], history_length=1)))
    bundle_torch_module(MeanPool(vectors), spec, vectors, root / "data", tmp_path / "b")
    entry = json.loads((tmp_path / "b" / "manifest.json").read_text())["models"][0]
    assert entry["inputs"][0]["shape"][1] == 1
    assert np.allclose(_device_vector(tmp_path / "b", [7]), vectors[6], atol=1e-5)


# ------------------------------------------------------------------ files that run otherwise than they were checked


class DropoutLeftOn(MeanPool):
    """model.eval() forgotten before the export: the file's Dropout stays on."""

    def __init__(self, vectors):
        super().__init__(vectors)
        self.drop = torch.nn.Dropout(0.3)

    def forward(self, ids):
        return self.drop(super().forward(ids))


@pytest.mark.parametrize("batch, dynamic", [(1, {"input_ids": {1: "t"}}), (4, {"input_ids": {0: "b", 1: "t"}})])
def test_an_onnx_file_with_dropout_left_on_is_refused(world, tmp_path, batch, dynamic):
    """A fixed batch of 1 skipped the only check that ran a file twice (the batch check) and shipped a file
    whose vector changed at every call; with a dynamic batch the cause read as a batch dependence."""
    root, vectors = world
    module = DropoutLeftOn(vectors).train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.ones(batch, L, dtype=torch.long),), str(tmp_path / "drop.onnx"),
                          dynamo=False, training=torch.onnx.TrainingMode.TRAINING, input_names=["input_ids"],
                          output_names=["embedding"], dynamic_axes=dynamic)
    other = dict(SPEC, input={"name": "input_ids", "history_length": L}, output={"name": "embedding"})
    with pytest.raises(ExportError, match=r"drop.onnx returns other vectors for the same histories on a second call "
                                          r".*deterministic: no dropout or sampling \(model.eval\(\)"):
        bundle_user_model(tmp_path / "drop.onnx", EncoderSpec.load(other), vectors, root / "data", tmp_path / "b")
    assert not (tmp_path / "b").exists()


class LearntPositions(MeanPool):
    """A position table of exactly L rows: traced with a dynamic history axis, the file runs at L only."""

    def __init__(self, vectors):
        super().__init__(vectors)
        self.positions = torch.nn.Parameter(torch.linspace(0.5, 1.5, L)[:, None].repeat(1, vectors.shape[1]))

    def forward(self, ids):
        mask = (ids != 0).unsqueeze(-1).to(torch.float32)
        return ((self.table(ids) + self.positions) * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def test_a_file_declared_dynamic_that_runs_at_its_length_only_is_padded_to_it(world, tmp_path):
    """The padding check encoded short histories alone and refused the file with the engine's broadcast error."""
    root, vectors = world
    module = LearntPositions(vectors).eval()
    path = _legacy_onnx(module, tmp_path / "pos.onnx", {"input_ids": {0: "b", 1: "t"}, "embedding": {0: "b"}})
    other = dict(SPEC, input={"name": "input_ids", "history_length": L}, output={"name": "embedding"})
    manifest = bundle_user_model(path, EncoderSpec.load(other), vectors, root / "data", tmp_path / "b")
    entry = manifest.models[0]
    assert entry.inputs[0].shape == ["batch", L]
    assert entry.parity["padding"]["padded_to"] == L and "short_histories_alone" in entry.parity["padding"]
    padded = np.zeros((1, L), np.int64)
    padded[0, -2:] = [7, 8]
    with torch.no_grad():
        expected = module(torch.as_tensor(padded)).numpy()[0]
    assert np.allclose(_device_vector(tmp_path / "b", [7, 8]), expected, atol=1e-5)


class Counting(MeanPool):
    """State a call changes: every call scales the vector up."""

    def __init__(self, vectors):
        super().__init__(vectors)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, ids):
        self.calls.add_(1)
        return super().forward(ids) * self.calls


def test_a_teacher_that_answers_a_second_call_otherwise_is_told_so(world, tmp_path, monkeypatch):
    """F.dropout's training=True default (on after .eval()) or a call counter read as 'changes with the other
    histories in its batch'."""
    from edgerec.export.own_torch import own_teacher

    root, vectors = world
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    (tmp_path / "random_teachers.py").write_text(
        "import numpy as np\n"
        f"from {__name__} import Counting, Sampling\n"
        f"def sampling():\n    return Sampling(np.load({str(root / 'vectors.npy')!r}))\n"
        f"def counting():\n    return Counting(np.load({str(root / 'vectors.npy')!r}))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for factory in ("sampling", "counting"):
        with pytest.raises(ExportError, match=rf"^--teacher random_teachers:{factory} returns other vectors for the "
                                              r"same histories on a second call .*deterministic"):
            own_teacher(f"random_teachers:{factory}", str(tmp_path / "spec.json"), str(root / "vectors.npy"),
                        len(vectors))


class NaiveMean(MeanPool):
    """The mean written the obvious way: NaN (0 / 0) for a history of padding only."""

    def forward(self, ids):
        mask = (ids != 0).unsqueeze(-1).to(torch.float32)
        return (self.table(ids) * mask).sum(1) / mask.sum(1)


def test_an_onnx_teacher_meets_prefixes_of_padding_only_and_a_short_catalog(world, tmp_path):
    """The file's own NaN check fired on the window's first, all-padding prefixes before the teacher zeroed them
    (a module teacher was fine); an ONNX teacher's table was not checked against the catalog before training."""
    from edgerec.export.own_torch import own_teacher

    root, vectors = world
    (tmp_path / "tspec.json").write_text(json.dumps(dict(SPEC, input={"name": "input_ids", "history_length": L},
                                                         output={"name": "embedding"})))
    path = _legacy_onnx(NaiveMean(vectors).eval(), tmp_path / "naive.onnx", {"input_ids": {0: "b", 1: "t"}})
    teacher = own_teacher(str(path), str(tmp_path / "tspec.json"), str(root / "vectors.npy"), len(vectors))
    states = teacher.hidden(torch.as_tensor([[0, 0, 0, 5, 17, 42]])).numpy()
    assert np.isfinite(states).all() and np.allclose(states[0, :3], 0)
    assert np.allclose(states[0, 4], vectors[[4, 16]].mean(0), atol=1e-5)
    small = NaiveMean(vectors[:-20]).eval()
    path = _legacy_onnx(small, tmp_path / "small.onnx", {"input_ids": {0: "b", 1: "t"}})
    with pytest.raises(ExportError, match=rf"^--teacher small.onnx fails on the catalog's last items .*rows 1 to "
                                          rf"{len(vectors)}"):
        own_teacher(str(path), str(tmp_path / "tspec.json"), str(root / "vectors.npy"), len(vectors))


def test_damaged_sentence_transformers_files_are_named_not_tracebacks(tmp_path):
    """A modules.json of names (not objects) ended in an AttributeError, a damaged pooling config.json in a
    JSONDecodeError traceback."""
    from edgerec.errors import ModelError
    from edgerec.models.content import sentence_layout

    folder = tmp_path / "my-encoder"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "modules.json").write_text('["0_Transformer", "1_Pooling"]')
    with pytest.raises(ModelError, match=r"^modules.json in my-encoder must be a list of objects") as caught:
        sentence_layout(folder)
    assert str(tmp_path) not in str(caught.value)
    (folder / "modules.json").write_text(json.dumps(
        [{"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling" / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"^1_Pooling/config.json in my-encoder cannot be read as JSON") as caught:
        sentence_layout(folder)
    assert str(tmp_path) not in str(caught.value)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    assert sentence_layout(folder) == (folder, "cls")


def test_onnx_load_errors_name_files_not_host_folders(world, tmp_path):
    """onnx's refusal of external data outside the model's folder named the user's folders in full."""
    import onnx

    root, vectors = world
    other = EncoderSpec.load(dict(SPEC, input={"name": "input_ids", "history_length": L},
                                  output={"name": "embedding"}))
    made = onnx.load(str(_legacy_onnx(MeanPool(vectors).eval(), tmp_path / "m.onnx", {"input_ids": {0: "b", 1: "t"}})))
    (tmp_path / "model").mkdir()
    onnx.save(made, str(tmp_path / "model" / "m.onnx"), save_as_external_data=True, location="weights.bin",
              size_threshold=0)
    model = onnx.load(str(tmp_path / "model" / "m.onnx"), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = str(tmp_path / "model" / "weights.bin")  # absolute: refused by onnx
    onnx.save(model, str(tmp_path / "model" / "abs.onnx"))
    with pytest.raises(ExportError, match=r"abs.onnx cannot be loaded as ONNX \(.*weights.bin") as caught:
        bundle_user_model(tmp_path / "model" / "abs.onnx", other, vectors, root / "data", tmp_path / "b")
    assert str(tmp_path) not in str(caught.value) and "/" not in str(caught.value).split("(", 1)[1]


def test_a_filled_out_folder_is_refused_before_the_export(world, tmp_path, monkeypatch):
    import edgerec.export.formats as formats
    from edgerec.errors import BundleError

    root, vectors = world
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "old.txt").write_text("an earlier bundle")
    monkeypatch.setattr(formats, "export_onnx", lambda *a, **k: pytest.fail("exported before --out was checked"))
    with pytest.raises(BundleError, match="^b exists and is not empty; choose a new --out folder"):
        bundle_torch_module(MeanPool(vectors), EncoderSpec.load(SPEC), vectors, root / "data", tmp_path / "b")
    path = _legacy_onnx(MeanPool(vectors).eval(), tmp_path / "m.onnx", {"input_ids": {0: "b", 1: "t"}})
    other = dict(SPEC, input={"name": "input_ids", "history_length": L}, output={"name": "embedding"})
    monkeypatch.setattr("edgerec.export.custom.load_dataset", lambda *a: pytest.fail("read before --out was checked"))
    with pytest.raises(BundleError, match="^b exists and is not empty"):
        bundle_user_model(path, EncoderSpec.load(other), vectors, root / "data", tmp_path / "b")
