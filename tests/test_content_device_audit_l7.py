"""Audit L7, the content encoder on the device and its export: both engines read a text at one length (and the
recorded parity is against that full-length reference), a SentencePiece/Unigram tokenizer's <unk> is no word,
a tokenizer that cannot encode or pad is a BundleError, and the entry's token lengths are checked."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

tokenizers = pytest.importorskip("tokenizers")

from edgerec.errors import BundleError, ConfigError  # noqa: E402
from edgerec.runtime import Recommender  # noqa: E402
from edgerec.runtime.backends import available_backends  # noqa: E402
from edgerec.runtime.content import metadata_text, reads_words, unknown_id  # noqa: E402

TEXT = Path(__file__).resolve().parents[1] / "spec" / "golden" / "text"
CASE = Path(__file__).resolve().parents[1] / "spec" / "golden" / "cases" / "content_encoder.json"
needs_tflite = pytest.mark.skipif("tflite" not in available_backends(), reason="the tflite engine is not installed")


def _copy(tmp_path, name="text") -> Path:
    return Path(shutil.copytree(TEXT, tmp_path / name))


def _replace(bundle: Path, name: str, data: bytes) -> None:
    """A bundle file rewritten, with its checksum in the manifest (so only the content encoder sees it)."""
    (bundle / name).write_bytes(data)
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def _edit_entry(bundle: Path, fmt: str, change) -> Path:
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["models"]:
        if entry["role"] == "content_encoder" and entry["format"] == fmt:
            change(entry["extra"])
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return bundle


def _unigram(mark: bool = False):
    """An XLM-R style tokenizer: a Unigram model whose unknown token is <unk> (id 3), named by its unk_id only;
    `mark`: with the bare word-boundary piece "▁" that real SentencePiece vocabularies hold (XLM-R's id 6)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁jazz", -2.0), ("▁night", -2.0)]
    vocab += [("▁", -3.0)] if mark else []
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return tokenizer


def _genre(rec) -> str:
    return rec.catalog.meta(0)["genre"]


# ------------------------------------------------------------------ 1. one text length for both engines


def test_the_golden_tflite_content_file_reads_as_many_tokens_as_the_onnx_one():
    """TFLite content files were exported at 32 tokens while ONNX read 48."""
    manifest = json.loads((TEXT / "manifest.json").read_text(encoding="utf-8"))
    entries = {e["format"]: e for e in manifest["models"] if e["role"] == "content_encoder"}
    length = entries["onnx"]["extra"]["max_tokens"]
    assert length == 48 and entries["tflite"]["extra"]["tokens"] == length
    assert [spec["shape"] for spec in entries["tflite"]["inputs"]] == [[1, length], [1, length]]


@needs_tflite
def test_both_engines_give_an_ordinary_item_the_same_content_vector_and_labels():
    """Golden item text-2 (39 tokens) lost its "Tags: ..." on TFLite: content cosine 0.944 to ONNX, and tag()
    said genre jazz on ONNX and latin on TFLite."""
    recs = {fmt: Recommender.open(TEXT, None, backend=fmt) for fmt in ("onnx", "tflite")}
    case = json.loads(CASE.read_text(encoding="utf-8"))
    added = next(s for s in case["steps"] if s["op"] == "add_items")["items"]
    item = next(i for i in added if i["item_id"] == "text-2")
    text = metadata_text(item)
    assert 32 < len(recs["onnx"].content.tokenizer.encode(text).ids) <= 48
    onnx, tflite = (recs[fmt].content.embed([text])[0] for fmt in ("onnx", "tflite"))
    assert float(onnx @ tflite) > 0.999
    assert recs["onnx"].tag(text=text)["genre"] == recs["tflite"].tag(text=text)["genre"]
    assert all("expected_by_engine" not in step for step in case["steps"])  # the engines agree on every step
    late_word = "🎷 " * 31 + "jazz"  # a word only after token 32: read by both
    assert recs["onnx"].tag(text=late_word)["genre"] == recs["tflite"].tag(text=late_word)["genre"]


def _student(vocab_size: int):
    import torch

    from edgerec.models.content import StaticContentStudent

    torch.manual_seed(3)
    student = StaticContentStudent(vocab_size, 8, 16)
    with torch.no_grad():
        student.tokens.weight.normal_(0.0, 1.0)
        student.tokens.weight[0].zero_()
    return student.eval()


@needs_tflite
def test_the_recorded_parity_of_a_tflite_file_is_against_the_full_length_reference(tmp_path):
    """The host reference of a TFLite file was cut to the file's own 32 tokens, so a file that dropped the tags of
    ordinary items recorded cosine_min 0.99995. Against the full-length reference a short file shows its gap."""
    from edgerec.export.content import export_student, student_parity

    folder = TEXT / "content"  # the golden tokenizer.json
    student = _student(tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab_size())
    texts = [f"Quiet rain {i}: a dreamy jazz record for slow evenings by the sea. Tags: jazz, relaxing, night, "
             "smooth jazz, big band." for i in range(4)]  # about 40 tokens
    short, _ = export_student(student, "tflite", "none", tmp_path / "short.tflite", tmp_path, tokens=32)
    cut = student_parity(student, short, "tflite", None, folder, texts, max_tokens=48, tokens=32)
    assert cut["cosine_min"] < 0.99
    full, _ = export_student(student, "tflite", "none", tmp_path / "full.tflite", tmp_path, tokens=48)
    assert student_parity(student, full, "tflite", None, folder, texts, max_tokens=48)["cosine_min"] > 0.9999


def test_the_exporter_writes_tflite_content_files_of_the_onnx_length(tmp_path, monkeypatch):
    """add_content_to_bundle: the TFLite file, its `tokens`, its inputs and its parity all take max_tokens."""
    from edgerec.export import content
    from edgerec.models.content import load_tokenizer
    from edgerec.runtime.bundle import BundleWriter

    seen = []

    def export(student, fmt, mode, path, scratch, tokens=32):
        seen.append(("export", fmt, tokens))
        path.write_bytes(b"model")
        return path, None

    def parity(student, path, fmt, config, encoder_dir, texts, max_tokens=48, tokens=None):
        seen.append(("parity", fmt, max_tokens, tokens))
        return {"texts": len(texts)}

    monkeypatch.setattr(content, "export_student", export)
    monkeypatch.setattr(content, "student_parity", parity)
    folder = TEXT / "content"
    tokenizer = load_tokenizer(folder, 48)
    student = _student(tokenizer.get_vocab_size())
    writer = BundleWriter(tmp_path / "out", "x")
    texts = ["a jazz night", "a dark thriller"]
    entries = content.add_content_to_bundle(writer, student, folder, tokenizer, texts, np.ones((2, 8), np.float32),
                                            np.arange(2), {"genre": ["jazz", "thriller"]}, ("onnx", "tflite"), "none")
    assert seen == [("export", "onnx", 48), ("parity", "onnx", 48, None),
                    ("export", "tflite", 48), ("parity", "tflite", 48, None)]
    tflite = next(e for e in entries if e.format == "tflite")
    assert tflite.extra["tokens"] == tflite.extra["max_tokens"] == 48
    assert [spec.shape for spec in tflite.inputs] == [[1, 48], [1, 48]]


# ------------------------------------------------------------------ 2. the unknown token of a Unigram tokenizer


def test_the_unknown_token_comes_from_the_tokenizers_own_json():
    from tokenizers import Tokenizer, models

    assert unknown_id(_unigram()) == 3  # the Python Unigram model has no unk_token attribute
    word_piece = Tokenizer(models.WordPiece({"[PAD]": 0, "[UNK]": 1, "jazz": 2}, unk_token="[UNK]"))
    assert unknown_id(word_piece) == 1
    assert unknown_id(Tokenizer(models.Unigram([("<pad>", 0.0), ("a", -1.0)], unk_id=None))) is None
    bpe = Tokenizer(models.BPE({"<unk>": 0, "a": 1}, [], unk_token="<unk>"))
    assert unknown_id(bpe) == 0


@pytest.mark.parametrize(("text", "word"), [("🎷🎷", False), ("深夜", False), ("   ", False), ("jazz night", True),
                                            ("🎷 jazz", True)])
@pytest.mark.parametrize("mark", [False, True])
def test_a_unigram_tokenizers_unk_is_not_a_word(text, word, mark):
    tokenizer = _unigram(mark)
    if mark and text == "🎷🎷":  # the audit's case: the mark comes before the unknown piece
        assert tokenizer.encode(text).ids == [0, 6, 3, 2]  # <s> ▁ <unk> </s>
    assert reads_words(tokenizer, text) is word
    assert reads_words(tokenizer, text, unknown_id(tokenizer)) is word


def test_the_exporter_leaves_out_label_names_a_unigram_tokenizer_reads_no_word_of():
    from edgerec.export.content import usable_labels

    usable, notes = usable_labels(_unigram(), {"genre": ["jazz", "night", "🎷"]})
    assert usable == {"genre": ["jazz", "night"]} and "'🎷'" in notes[0]


def test_a_bundle_with_a_unigram_tokenizer_refuses_texts_of_no_word(tmp_path):
    """tag() labelled emoji-only and CJK texts, and add_items gave such titles one identical content vector."""
    bundle = _copy(tmp_path)
    _replace(bundle, "content/tokenizer.json", _unigram().to_str().encode("utf-8"))
    rec = Recommender.open(bundle, None, backend="onnx")
    for text in ("🎷🎷", "深夜のジャズ"):
        with pytest.raises(ConfigError, match="^there is no word to tag in the text"):
            rec.tag(text=text)
    assert rec.tag(text="jazz night")["tags"]
    genre = _genre(rec)
    rec.add_items([{"item_id": "e1", "title": "🎷🎷", "genre": genre}, {"item_id": "e2", "title": "深夜のジャズ", "genre": genre},
                   {"item_id": "e3", "title": "jazz night", "genre": genre}])
    sources = [rec.catalog.meta(rec.catalog.row(i))["vector_source"] for i in ("e1", "e2", "e3")]
    assert sources == ["related items (genre)", "related items (genre)", "content encoder"]


# ------------------------------------------------------------------ 4. a tokenizer that cannot encode or pad


def _without_unk(tmp_path) -> Path:
    bundle = _copy(tmp_path)
    tokenizer = json.loads((bundle / "content" / "tokenizer.json").read_text(encoding="utf-8"))
    del tokenizer["model"]["vocab"]["[UNK]"]
    _replace(bundle, "content/tokenizer.json", json.dumps(tokenizer).encode("utf-8"))
    return bundle


@pytest.mark.parametrize("call", ["tag", "tag_emoji", "add_items"])
def test_a_wordpiece_vocabulary_without_its_unknown_token_is_a_bundle_error(tmp_path, call):
    """The bundle opened, then tag("🎷 jazz") and add_items raised the tokenizers library's bare Exception."""
    rec = Recommender.open(_without_unk(tmp_path), None, backend="onnx")
    calls = {"tag": lambda: rec.tag(text="jazz"), "tag_emoji": lambda: rec.tag(text="🎷 jazz"),
             "add_items": lambda: rec.add_items([{"item_id": "x", "title": "🎷 jazz"}])}
    with pytest.raises(BundleError, match=r"^the bundle's content encoder tokenizer content/tokenizer\.json cannot "
                                          r"encode text \(WordPiece error: Missing \[UNK\] token"):
        calls[call]()
    assert rec.stats()["added_items"] == 0


def test_a_tokenizer_without_a_padding_token_is_a_bundle_error(tmp_path):
    """Spec §7b refuses it as a bundle error; the runtime raised a ConfigError with a host-side hint."""
    bundle = _copy(tmp_path)
    raw = (bundle / "content" / "tokenizer.json").read_text(encoding="utf-8").replace('"[PAD]"', '"[XPAD]"')
    _replace(bundle, "content/tokenizer.json", raw.encode("utf-8"))
    rec = Recommender.open(bundle, None, backend="onnx")
    with pytest.raises(BundleError, match=r"^the bundle's content encoder tokenizer content/tokenizer\.json has no "
                                          r"padding token \(one of \[PAD\], <pad>, <PAD>; spec §7b\)"):
        rec.tag(text="jazz")


# ------------------------------------------------------------------ 5. the entry's token lengths


@pytest.mark.parametrize(("fmt", "change", "message"), [
    ("onnx", {"max_tokens": 1}, "the bundle's onnx content encoder reads texts of max_tokens 1; it needs a whole "
                                "number of tokens above the 2 special token(s)"),
    ("onnx", {"max_tokens": 2}, "the bundle's onnx content encoder reads texts of max_tokens 2;"),
    ("tflite", {"tokens": None}, "the bundle's tflite content encoder names no tokens;"),
    ("tflite", {"tokens": 2}, "the bundle's tflite content encoder reads texts of tokens 2;"),
    ("tflite", {"tokens": 32}, "the bundle's content encoder content_encoder.tflite takes inputs of shape (1, 48), "
                               "(1, 48), but its manifest entry says tokens 32"),
])
def test_token_lengths_that_do_not_fit_are_a_bundle_error(tmp_path, fmt, change, message):
    """A TFLite entry without `tokens`, or with another length than its file, raised a raw ValueError (Dimension
    mismatch); max_tokens 1 was ignored and 2 made every text read no word."""
    if fmt not in available_backends():
        pytest.skip(f"the {fmt} engine is not installed")

    def edit(extra):
        for key, value in change.items():
            extra.pop(key) if value is None else extra.__setitem__(key, value)

    rec = Recommender.open(_edit_entry(_copy(tmp_path), fmt, edit), None, backend=fmt)
    with pytest.raises(BundleError) as caught:
        rec.tag(text="A dark thriller about hackers. " * 40)
    assert str(caught.value).startswith(message)


def test_a_length_just_above_the_special_tokens_reads_a_word(tmp_path):
    rec = Recommender.open(_edit_entry(_copy(tmp_path), "onnx", lambda extra: extra.update(max_tokens=3)), None,
                           backend="onnx")
    assert rec.tag(text="A dark thriller about hackers.")["tags"]
