"""Audit J4: teachers and user models whose layers, tokenizers or output sizes edgerec misread.

The tiny Hugging Face folders and the synthetic world are test_own_models.py's fixtures (no download)."""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import test_own_models
import torch
from test_own_models import SPEC, MeanPool

from edgerec.errors import ExportError, ModelError
from edgerec.export.own_encoder import EncoderSpec
from edgerec.export.own_torch import bundle_torch_module
from edgerec.models.content import ContentTeacher, load_tokenizer, tokenize

hf, world = test_own_models.hf, test_own_models.world  # its fixtures, shared
TEXTS = ["a tense heist", "a quiet song about rain", "night"]


def _sentence_transformer(hf, folder: Path, safe: bool = True):
    """bert32 as sentence-transformers saves it: Transformer -> mean Pooling -> Dense(32 -> 16, tanh) -> Normalize."""
    from sentence_transformers import SentenceTransformer

    with warnings.catch_warnings():  # the module's newer name is not in sentence-transformers 3
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers import models
    _, folders = hf
    torch.manual_seed(1)
    transformer = models.Transformer(str(folders["bert32"]))
    model = SentenceTransformer(modules=[transformer, models.Pooling(32, "mean"),
                                         models.Dense(32, 16, activation_function=torch.nn.Tanh()),
                                         models.Normalize()], device="cpu")
    model.save(str(folder), safe_serialization=safe)
    return model


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "pytorch_model.bin"])
def test_a_dense_layer_after_the_pooling_is_applied(hf, tmp_path, safe):
    """The Dense module was ignored: the teacher gave 32 numbers where the model gives 16."""
    model = _sentence_transformer(hf, tmp_path / "st", safe)
    expected = model.encode(TEXTS, normalize_embeddings=True)
    teacher = ContentTeacher(tmp_path / "st")
    assert teacher.dim == 16
    assert np.allclose(teacher.encode(TEXTS), expected, atol=1e-5)
    # the vocabulary pass's token vectors (pooled space) map the same way; tokens left out stay zeros
    pooled = np.vstack([np.zeros(32), np.random.default_rng(0).normal(size=(2, 32))]).astype(np.float32)
    with torch.no_grad():
        mapped = torch.tanh(model[2].linear(torch.as_tensor(pooled[1:]))).numpy()
    got = teacher.through_head(pooled)
    assert got.shape == (3, 16) and not got[0].any()
    assert np.allclose(got[1:], mapped / np.linalg.norm(mapped, axis=1, keepdims=True), atol=1e-5)


def test_modules_the_teacher_cannot_compute_are_refused(hf, tmp_path):
    folder = tmp_path / "st"
    _sentence_transformer(hf, folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules.insert(2, {"idx": 9, "name": "9", "path": "9_LSTM", "type": "sentence_transformers.models.LSTM"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelError, match=r"^st's modules.json has a LSTM module; the teacher computes") as caught:
        ContentTeacher(folder)
    assert str(tmp_path) not in str(caught.value)
    del modules[2]
    (folder / "modules.json").write_text(json.dumps(modules))
    dense = next(folder.glob("*_Dense"))
    config = json.loads((dense / "config.json").read_text())
    (dense / "config.json").write_text(json.dumps(dict(config, activation_function="mypackage.Swish")))
    with pytest.raises(ModelError, match=r"uses the activation 'mypackage.Swish'; the teacher builds torch.nn"):
        ContentTeacher(folder)
    (dense / "config.json").write_text(json.dumps(dict(config, in_features=48)))
    with pytest.raises(ModelError, match=r"takes 48 numbers but is given 32"):
        ContentTeacher(folder)


def test_a_tokenizer_larger_than_the_embedding_table_is_refused(hf, tmp_path):
    """Ids past the model's table ended in torch's IndexError on the first text that held one."""
    from transformers import BertConfig, BertModel

    _, folders = hf
    BertModel(BertConfig(vocab_size=20, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(tmp_path / "small")
    shutil.copy(folders["bert32"] / "tokenizer.json", tmp_path / "small" / "tokenizer.json")
    ids = load_tokenizer(folders["bert32"], 16).get_vocab_size()
    with pytest.raises(ModelError, match=rf"small gives token ids up to {ids - 1:,} but the model's embedding "
                                         r"table has 20 rows \(ids 0 to 19\)"):
        ContentTeacher(tmp_path / "small")


def test_a_tokenizer_that_cannot_encode_text_is_refused(hf, world, tmp_path):
    """A WordPiece vocabulary without its unknown token parsed, then failed on the first word it did not know
    in the library's bare Exception."""
    from tokenizers import Tokenizer

    from edgerec.export.content import usable_labels

    _, folders = hf
    shutil.copytree(folders["bert32"], tmp_path / "nounk")
    path = tmp_path / "nounk" / "tokenizer.json"
    content = json.loads(path.read_text())
    content["model"]["unk_token"] = "[NONE]"
    path.write_text(json.dumps(content))
    message = r"^tokenizer.json in nounk cannot encode text \(WordPiece error: Missing \[UNK\] token"
    with pytest.raises(ModelError, match=message):
        load_tokenizer(tmp_path / "nounk", 16)
    with pytest.raises(ModelError, match=message):
        ContentTeacher(tmp_path / "nounk")
    # the texts a tokenizer read without the probe (e.g. a bundle's own file) are guarded too
    raw = Tokenizer.from_file(str(path))
    with pytest.raises(ModelError, match=r"^the tokenizer cannot encode text \(WordPiece error"):
        tokenize(raw, ["a tense heist", "zzz\u2603"])
    with pytest.raises(ModelError, match=r"^the content encoder's tokenizer.json cannot encode text"):
        usable_labels(raw, {"genre": ["drama", "\u2603"]})
    with pytest.raises(TypeError):  # not the library's failure: not disguised as the model's
        tokenize(raw, [None])


def test_a_model_whose_sizes_differ_from_its_config_says_which(hf, tmp_path):
    """torch's first line names only the layer; the size mismatch line was dropped."""
    _, folders = hf
    folder = tmp_path / "bert_lie"
    shutil.copytree(folders["bert32"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(config, hidden_size=64)))
    with pytest.raises(ModelError, match=r"^cannot load a sentence encoder from bert_lie \(.*size mismatch for "
                                         r".*\); its config.json does not match its weights file") as caught:
        ContentTeacher(folder)
    assert str(tmp_path) not in str(caught.value)


@pytest.mark.parametrize("change", [-1, 1], ids=["fewer layers", "more layers"])
def test_a_config_with_another_layer_count_than_the_weights_is_refused(hf, tmp_path, change):
    """transformers dropped the weights past the config's layers, or started extra layers from random numbers,
    and only logged it: the teacher ran a truncated or partly random model (audit K2)."""
    _, folders = hf
    folder = tmp_path / "bert_layers"
    shutil.copytree(folders["bert32"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(config, num_hidden_layers=config["num_hidden_layers"] + change)))
    with pytest.raises(ModelError, match=r"^bert_layers: its config.json does not match its weights file \("
                                         r"(unexpected|missing) keys: .*layer"):
        ContentTeacher(folder)


def test_a_checkpoint_with_its_pretraining_head_still_loads(hf, tmp_path):
    """BERT checkpoints saved with their masked-LM head (bert-base-uncased's cls.* weights) hold weights the bare
    encoder leaves out; only weights of numbered layers say that the config's layer count is wrong."""
    from transformers import BertConfig, BertForMaskedLM

    _, folders = hf
    folder = tmp_path / "bert_mlm"
    shutil.copytree(folders["bert32"], folder)
    BertForMaskedLM(BertConfig.from_pretrained(folders["bert32"])).save_pretrained(folder)
    assert ContentTeacher(folder).encode(["a tense heist"]).shape == (1, 32)


class Scaled(MeanPool):
    def __init__(self, vectors, scale):
        super().__init__(vectors)
        self.scale = scale

    def forward(self, ids):
        return super().forward(ids) * self.scale


class ZeroWhenShort(MeanPool):
    def forward(self, ids):
        return super().forward(ids) * ((ids > 0).sum(1, keepdim=True) > 2).to(torch.float32)


def test_the_padding_check_of_a_model_with_tiny_outputs(world, tmp_path):
    """Vectors ~1e-9 long read cosine 0 (a floor on the product of norms) and were padded to L for nothing."""
    root, vectors = world
    manifest = bundle_torch_module(Scaled(vectors, 1e-9), EncoderSpec.load(SPEC), vectors, root / "data",
                                   tmp_path / "b")
    entry = manifest.models[0]
    assert entry.parity["padding"]["cosine_gap"] < 1e-4
    assert entry.inputs[0].shape == ["batch", "history"]


def test_a_model_that_returns_zero_vectors_is_refused(world, tmp_path):
    """A vector of zeros has no direction; the padding check blamed padding for it."""
    root, vectors = world
    with pytest.raises(ExportError, match=r"returns a vector of zeros for \d+ of \d+ real histories"):
        bundle_torch_module(ZeroWhenShort(vectors), EncoderSpec.load(SPEC), vectors, root / "data", tmp_path / "b")


def test_tflite_tensor_names_of_the_users_modules_stay_behind(tmp_path):
    """The golden TFLite encoder's converter named its tensors after Python modules and classes."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    from edgerec.export.user_files import portable_tflite

    source = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle" / "user_encoder.tflite"
    assert b"edgerec.models" in source.read_bytes()
    portable_tflite(source, tmp_path / "clean.tflite")  # checks the outputs bit for bit
    data = (tmp_path / "clean.tflite").read_bytes()
    assert b"edgerec.models" not in data and b"torch.nn" not in data
    before, after = (schema.ModelT.InitFromPackedBuf(d, 0).subgraphs[0] for d in (source.read_bytes(), data))
    ends = [*before.inputs, *before.outputs]
    assert [after.tensors[i].name for i in ends] == [before.tensors[i].name for i in ends]
    assert {t.name for i, t in enumerate(after.tensors) if i not in ends} == {
        f"t{i}".encode() for i in range(len(after.tensors)) if i not in ends}
    names = [[d["name"] for d in (i.get_input_details() + i.get_output_details())]
             for i in (Interpreter(model_path=str(p)) for p in (source, tmp_path / "clean.tflite"))]
    assert names[0] == names[1]
    assert after.name == b"main"


def test_the_first_subgraphs_own_name_stays_behind_too():
    """Only subgraphs after the first were renamed: a name the user gave the main graph shipped (audit K2)."""
    from ai_edge_litert import schema_py_generated as schema

    from edgerec.export.user_files import _neutral_names

    source = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle" / "user_encoder.tflite"
    model = schema.ModelT.InitFromPackedBuf(source.read_bytes(), 0)
    model.subgraphs[0].name = b"alice-private-recommender"
    _neutral_names(model)
    assert model.subgraphs[0].name == "main"


def test_content_distill_of_a_dense_teacher_starts_from_its_sentence_space(hf, tmp_path):
    """The vocabulary pass read the bare transformer (32 wide) while the Dense teacher's targets were 16:
    `content distill` ended in a raw ValueError."""
    from click.testing import CliRunner

    from edgerec.cli.main import cli

    root, _ = hf
    _sentence_transformer(hf, tmp_path / "st")
    result = CliRunner().invoke(cli, ["content", "distill", "--data", str(root / "data"), "--encoder",
                                      str(tmp_path / "st"), "--out", str(tmp_path / "content"), "--train-items", "60",
                                      "--held-out", "20", "--epochs", "1", "--real-titles", "0"])
    assert result.exit_code == 0, result.output
    assert "student width 16" in result.output
