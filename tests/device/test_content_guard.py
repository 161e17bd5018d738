"""The device's content encoder (runtime/content.py) with every number chosen here: the padding token
it picks, the text it reads from an item's metadata, the tokenizer settings and engine inputs of each
format, the normalised vectors, the projection into the item space and the zero-shot labels.

The engine and the tokenizer are stand-ins (this suite runs without the `tokenizers` extra, and the
end-to-end path with a real student is tests/test_content.py); one test uses the real tokenizers
library when it is installed."""

from __future__ import annotations

import re
import sys
import types

import numpy as np
import pytest

from edgerec.errors import BundleError, ConfigError
from edgerec.runtime import content
from edgerec.runtime.bundle import ModelEntry
from edgerec.runtime.content import ContentEncoder, metadata_text, padding


class Vocabulary:
    """What padding() asks of a tokenizer: the id of a token, or None."""

    def __init__(self, ids: dict):
        self.ids = ids

    def token_to_id(self, token):
        return self.ids.get(token)


def test_padding_is_the_first_padding_token_the_vocabulary_holds():
    assert padding(Vocabulary({"[PAD]": 0, "<pad>": 1, "<PAD>": 2})) == (0, "[PAD]")  # id 0 counts as found
    assert padding(Vocabulary({"<pad>": 1, "<PAD>": 2})) == (1, "<pad>")
    assert padding(Vocabulary({"<PAD>": 7})) == (7, "<PAD>")
    pad_id, _ = padding(Vocabulary({"<pad>": np.int64(1)}))
    assert type(pad_id) is int


def test_a_vocabulary_without_a_padding_token_is_refused():
    with pytest.raises(ConfigError) as caught:
        padding(Vocabulary({"<unk>": 0, "[CLS]": 1}))
    assert str(caught.value) == ("the tokenizer has no padding token (one of [PAD], <pad>, <PAD>); "
                                 "use a sentence-transformers model folder")


@pytest.mark.parametrize(("meta", "text"), [
    ({"title": "Heat", "description": "A heist in LA.", "tags": ["crime", "drama"]},
     "Heat A heist in LA. Tags: crime, drama."),
    ({"title": "Heat", "description": "A heist in LA."}, "Heat A heist in LA."),
    ({"title": "Heat", "tags": ("crime",)}, "Heat Tags: crime."),
    ({"description": "Only words.", "tags": []}, "Only words."),
    ({"tags": ["a", "b"]}, "Tags: a, b."),
    ({"title": "Número 5", "genre": "drama", "item_id": "x"}, "Número 5"),  # other keys are not read
    ({}, ""),
])
def test_the_metadata_text_is_title_description_and_tags(meta, text):
    assert metadata_text(meta) == text


def test_missing_metadata_written_as_none_reads_as_absent():
    """An app's JSON null for a description or tags is no text: it was read as the word 'None' (and
    null tags raised a TypeError)."""
    assert metadata_text({"title": "Heat", "description": None, "tags": None}) == "Heat"
    assert metadata_text({"title": None, "description": "A heist."}) == "A heist."


class Encoded:
    def __init__(self, ids, mask):
        self.ids, self.attention_mask = ids, mask
        self.special_tokens_mask = [1 - m for m in mask]  # padding only: this tokenizer adds no [CLS]


class StandInTokenizer:
    """Records the settings it is given; encodes each word as its length, padded as it was told."""

    def __init__(self, path):
        self.path = path

    @classmethod
    def from_file(cls, path):
        return cls(path)

    def token_to_id(self, token):
        return {"<pad>": 1}.get(token)

    def enable_truncation(self, max_length):
        self.max_length = max_length

    def enable_padding(self, pad_id, pad_token, length=None):
        self.padding = (pad_id, pad_token, length)

    def encode(self, text):
        return self.encode_batch([text])[0]

    def encode_batch(self, texts):
        rows = [[len(w) + 2 for w in t.split()][:self.max_length] for t in texts]
        width = self.padding[2] or max(len(r) for r in rows)
        return [Encoded(r + [self.padding[0]] * (width - len(r)), [1] * len(r) + [0] * (width - len(r)))
                for r in rows]


class Engine:
    """A content model: each row's output is (tokens, sum of ids, 0) / 10, so a vector's length is
    known by hand; records every input it was given."""

    def __init__(self, data, entry, threads):
        self.data, self.entry, self.threads, self.feeds = data, entry, threads, []

    def run(self, feeds):
        self.feeds.append(feeds)
        ids, mask = feeds["input_ids"], feeds["attention_mask"]
        out = np.stack([mask.sum(1), (ids * mask).sum(1), np.zeros(len(ids))], 1) / 10.0
        return [out.astype(np.float32)]


class Files:
    """The bundle parts the encoder reads: a file's path and an array by name."""

    name = "the bundle"

    def __init__(self, arrays):
        self.arrays = arrays

    def path(self, name):
        from pathlib import PurePosixPath

        return PurePosixPath("/bundle") / name

    def array(self, name):
        return self.arrays[name]


PROJECTION = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0], [0.5, 0.0]])  # 3 content dims -> 2, then the bias
LABELS = {"names": ["drama", "comedy", "dark", "sunny", "slow", "quiet"],
          "vectors": "content/label_vectors.npy",
          "sets": {"genre": ["comedy", "drama"], "mood": ["dark", "sunny"]}}  # members of names only (check_labels)
LABEL_VECTORS = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0],
                          [0.0, 0.0, -1.0]])


def _entry(fmt, **extra):
    return ModelEntry("content_encoder", fmt, f"content/encoder.{fmt}", [], [],
                      extra={"tokenizer": "content/tokenizer.json", "projection": "content/projection.npy",
                             "labels": LABELS, **extra})


@pytest.fixture
def make(monkeypatch):
    """A ContentEncoder of a stand-in bundle, tokenizer and engine, for a format and manifest extras."""
    monkeypatch.setitem(sys.modules, "tokenizers", types.SimpleNamespace(Tokenizer=StandInTokenizer))
    monkeypatch.setattr(content, "model_bytes", lambda bundle, name: f"verified {name} of {bundle.name}".encode())
    monkeypatch.setattr(content, "open_model", Engine)
    files = Files({"content/projection.npy": PROJECTION, "content/label_vectors.npy": LABEL_VECTORS})

    def build(fmt="onnx", threads=1, **extra):
        return ContentEncoder(files, _entry(fmt, **extra), threads)
    return build


def test_the_encoder_reads_its_parts_from_the_manifest_entry(make):
    enc = make("onnx", threads=3)
    assert enc.tokenizer.path == "/bundle/content/tokenizer.json"  # a str: tokenizers takes no Path
    assert enc.backend.data == b"verified content/encoder.onnx of the bundle" and enc.backend.threads == 3
    assert enc.backend.entry is enc.entry and enc.entry.format == "onnx"
    assert enc.projection.tolist() == PROJECTION.tolist() and enc.label_vectors.tolist() == LABEL_VECTORS.tolist()
    assert enc.label_names == LABELS["names"] and enc.label_sets == LABELS["sets"]
    enc.label_sets["mood"].append("changed")  # the encoder's own lists, not the manifest's
    assert LABELS["sets"]["mood"] == ["dark", "sunny"]


@pytest.mark.parametrize(("fmt", "extra", "truncation", "length"), [
    ("onnx", {}, 48, None),  # the default length, padded to the longest text of a batch
    ("onnx", {"max_tokens": 5, "tokens": 9}, 5, None),  # an ONNX file takes any length: `tokens` is TFLite's
    ("tflite", {"max_tokens": 5, "tokens": 9}, 9, 9),  # a TFLite file's fixed input length
])
def test_the_tokenizer_truncates_and_pads_as_the_format_needs(make, fmt, extra, truncation, length):
    tokenizer = make(fmt, **extra).tokenizer
    assert tokenizer.max_length == truncation and type(tokenizer.max_length) is int
    assert tokenizer.padding == (1, "<pad>", length)


def test_a_tflite_entry_without_tokens_is_refused(make):
    with pytest.raises(BundleError, match="^the bundle's tflite content encoder names no tokens"):
        make("tflite", max_tokens=5)


def test_the_encoder_without_the_tokenizers_package_says_how_to_get_it(make, monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(ConfigError) as caught:
        make("onnx")
    assert str(caught.value) == "the bundle's content encoder needs the tokenizers package: pip install tokenizers"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_onnx_runs_the_batch_at_once_and_returns_unit_vectors(make):
    enc = make("onnx", max_tokens=3)
    vectors = enc.embed(["ab c", "a b c d e", ""])  # ids 4 3 / 3 3 3 (cut at 3 tokens) / nothing
    (feeds,) = enc.backend.feeds
    assert feeds["input_ids"].dtype == np.int64 and feeds["attention_mask"].dtype == np.int64
    assert feeds["input_ids"].tolist() == [[4, 3, 1], [3, 3, 3], [1, 1, 1]]
    assert feeds["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1], [0, 0, 0]]
    # raw outputs (0.2, 0.7, 0) and (0.3, 0.9, 0): lengths below 1; an empty text's zero vector stays zero
    np.testing.assert_allclose(vectors, [[0.2 / np.hypot(0.2, 0.7), 0.7 / np.hypot(0.2, 0.7), 0],
                                         [0.3 / np.hypot(0.3, 0.9), 0.9 / np.hypot(0.3, 0.9), 0], [0, 0, 0]],
                               rtol=1e-6)


def test_texts_without_a_token_still_reach_the_engine_as_integer_ids(make):
    """A tokenizer without special tokens gives an empty text no ids: an (n, 0) batch, still int64 (numpy
    would read the empty rows as float64, which the engine refuses)."""
    enc = make("onnx")
    assert enc.embed(["", ""]).tolist() == [[0, 0, 0], [0, 0, 0]]
    (feeds,) = enc.backend.feeds
    assert [(f.dtype, f.shape) for f in feeds.values()] == [(np.int64, (2, 0))] * 2


def test_tflite_runs_one_text_at_a_time_in_int32(make):
    enc = make("tflite", tokens=4)
    vectors = enc.embed(["abc d", "ab"])
    assert [f["input_ids"].tolist() for f in enc.backend.feeds] == [[[5, 3, 1, 1]], [[4, 1, 1, 1]]]
    assert [f["attention_mask"].tolist() for f in enc.backend.feeds] == [[[1, 1, 0, 0]], [[1, 0, 0, 0]]]
    assert all(f[name].dtype == np.int32 for f in enc.backend.feeds for name in f)
    np.testing.assert_allclose(vectors, [[0.2 / np.hypot(0.2, 0.8), 0.8 / np.hypot(0.2, 0.8), 0],
                                         [0.1 / np.hypot(0.1, 0.4), 0.4 / np.hypot(0.1, 0.4), 0]], rtol=1e-6)


@pytest.mark.parametrize(("texts", "message"), [
    ("a tense thriller", "the texts to embed must be a list of strings, e.g. [text] (got str)"),  # not per character
    (7, "the texts to embed must be a list of strings, e.g. [text] (got int)"),
    ([], "there are no texts to embed"),
    (["fine", 42], "each text to embed must be a string (got int)"),
    ([None], "each text to embed must be a string (got NoneType)"),
])
def test_texts_that_are_not_a_list_of_strings_are_refused(make, texts, message):
    enc = make("onnx")
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        enc.embed(texts)
    assert not enc.backend.feeds


def test_the_projection_maps_content_into_the_item_space_as_unit_vectors(make):
    enc = make("onnx")
    content_vectors = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-0.5, 0.0, 0.0]])
    # rows: (0, 2) + bias (0.5, 0); (0, 0) + bias; (-0.5, 0) + bias = 0 (a zero vector stays zero)
    np.testing.assert_allclose(enc.item_vectors(content_vectors),
                               [[0.5 / np.hypot(0.5, 2), 2 / np.hypot(0.5, 2)], [1, 0], [0, 0]], atol=1e-12)
    small = enc.item_vectors(np.array([[-0.4, 0.0, 0.0]]))  # (0.1, 0): a length below 1 is scaled up
    np.testing.assert_allclose(small, [[1.0, 0.0]], atol=1e-12)


def test_zero_shot_labels_are_the_best_of_each_set_and_the_top_tags(make):
    enc = make("onnx")
    vector = np.array([0.1, 0.9, 0.3])  # similarities: drama 0.1, comedy 0.9, dark 0.78, sunny 0.3, slow -0.1, quiet -0.3
    labels = enc.labels(vector, k=3)
    assert list(labels) == ["genre", "mood", "tags"]  # the sets in the manifest's order, then the tags
    assert labels["genre"] == "comedy" and labels["mood"] == "dark"
    assert [name for name, _ in labels["tags"]] == ["comedy", "dark", "sunny"]
    np.testing.assert_allclose([s for _, s in labels["tags"]], [0.9, 0.78, 0.3])
    assert all(type(s) is float for _, s in labels["tags"])
    # similarities: drama -1, comedy 0.1, dark -0.52, sunny 0.2, slow 1, quiet -0.2; k is 5 by default
    other = enc.labels(np.array([-1.0, 0.1, 0.2]))
    assert other["genre"] == "comedy" and other["mood"] == "sunny"
    assert [name for name, _ in other["tags"]] == ["slow", "sunny", "comedy", "quiet", "dark"]
    assert [name for name, _ in enc.labels(vector, k=1)["tags"]] == ["comedy"]
    assert len(enc.labels(vector, k=10_000)["tags"]) == 6  # the largest k: every label


@pytest.mark.parametrize("k", [0, -1, 10_001, 2.5, True, "3", None])
def test_a_count_of_tags_that_is_not_a_positive_integer_is_refused(make, k):
    """`edgerec content tag --k -1` listed every tag but the last, and --k 0 none at all."""
    with pytest.raises(ConfigError, match="^k must be"):
        make("onnx").labels(np.array([0.1, 0.9, 0.3]), k=k)


def test_a_real_tokenizer_pads_with_its_own_token_for_each_format(monkeypatch, tmp_path):
    """The real `tokenizers` library with a word-level vocabulary whose <pad> is 1 (as in XLM-R)."""
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {"<s>": 0, "<pad>": 1, "<unk>": 2, "dark": 3, "jazz": 4, "night": 5}
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    monkeypatch.setattr(content, "model_bytes", lambda bundle, name: b"")
    monkeypatch.setattr(content, "open_model", Engine)
    files = Files({"content/projection.npy": PROJECTION, "content/label_vectors.npy": LABEL_VECTORS})
    files.path = lambda name: tmp_path / "tokenizer.json"
    onnx = ContentEncoder(files, _entry("onnx", max_tokens=3))
    assert onnx.backend.threads == 1  # the default: one thread
    onnx.embed(["dark jazz", "dark jazz at night tonight"])
    assert onnx.backend.feeds[0]["input_ids"].tolist() == [[3, 4, 1], [3, 4, 2]]
    tflite = ContentEncoder(files, _entry("tflite", tokens=4, max_tokens=3))
    tflite.embed(["night", "dark jazz at night tonight"])
    assert [f["input_ids"].tolist() for f in tflite.backend.feeds] == [[[5, 1, 1, 1]], [[3, 4, 2, 5]]]


class Reader:
    """A content encoder that records the texts it is given and places every item at one vector."""

    def __init__(self, dim):
        self.dim, self.texts = dim, []

    def embed(self, texts):
        self.texts += texts
        return np.ones((len(texts), 3))

    def item_vectors(self, embedded):
        return np.ones((len(embedded), self.dim))

    def reads_words(self, text):
        return bool(text.strip())


def test_an_item_added_with_a_null_description_is_embedded_from_its_title(golden_bundle, tmp_path):
    from edgerec.runtime.recommender import Recommender

    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as rec:
        rec.models._content = reader = Reader(rec.manifest.dim)
        rec.add_items([{"item_id": "new", "title": "Night Train", "description": None, "tags": ["slow"]}])
        assert reader.texts == ["Night Train Tags: slow."]
        assert rec.catalog.meta(rec.catalog.row("new"))["vector_source"] == "content encoder"
