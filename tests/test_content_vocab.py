"""The content student from the teacher's whole vocabulary (model2vec), adapted to a catalog: unseen
words still get meaningful vectors, the exported files match PyTorch, tagging accuracy is counted right."""

import numpy as np
import pytest
import torch

from edgerec.compress.content_distill import ContentDistillConfig, distill_content, embed
from edgerec.compress.content_vocab import adapt_student, student_from_vocabulary, vocabulary_pass
from edgerec.data.film_texts import imdb_titles, unseen_titles, words
from edgerec.data.store import load_dataset
from edgerec.models.content import ContentTeacher, item_texts, load_tokenizer, tokenize
from edgerec.studies.content import tagging_accuracy

OOV_FLOOR = 0.4  # mean cosine to MiniLM on titles with unseen words (measured: 0.48 with all 30k tokens)


@pytest.fixture(scope="module")
def teacher():
    return ContentTeacher()


@pytest.fixture(scope="module")
def world(tiny_bundle, teacher):
    texts = item_texts(load_dataset(tiny_bundle.parent / "data").catalog)
    train, held = texts[:400], texts[900:1000]
    unseen = unseen_titles(imdb_titles(), train, 150)
    return {"train": train, "held": held, "unseen": unseen, "tokenizer": load_tokenizer(teacher.dir, 48),
            **{f"{k}_vectors": teacher.encode(v) for k, v in (("train", train), ("held", held),
                                                               ("unseen", unseen))}}


@pytest.fixture(scope="module")
def vocab(teacher, world):
    """The real model2vec pass, over the tokens of every text here plus the 3,000 first word tokens
    (the whole 30k-token pass is the same call and takes minutes; `content distill` runs that one)."""
    tok = world["tokenizer"]
    used = {t for text in world["train"] + world["held"] + world["unseen"]
            for t in tok.encode(text).tokens}
    common = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])[1996:4996]]
    return vocabulary_pass(teacher.dir, only=used | set(common))


@pytest.fixture(scope="module")
def students(vocab, world):
    start, _ = student_from_vocabulary(vocab, 128)
    start_rows = start.tokens.weight.detach().clone()
    adapted, info = adapt_student(start, world["tokenizer"], world["train"], world["train_vectors"],
                                  world["held"], world["held_vectors"],
                                  ContentDistillConfig(epochs=4, lr=0.01, projection_lr=0.0))
    catalog_only, _ = distill_content(world["tokenizer"], world["train"], world["train_vectors"], world["held"],
                                      world["held_vectors"], ContentDistillConfig(epochs=12))
    return {"start_rows": start_rows, "adapted": adapted, "info": info, "catalog_only": catalog_only}


def _cosine(student, tokenizer, texts, targets):
    v = embed(student, *tokenize(tokenizer, texts))
    return float((v * targets).sum(1).mean())


def test_unseen_titles_are_really_unseen(world):
    seen = set().union(*(words(t) for t in world["train"]))
    assert len(world["unseen"]) == 150 and all(words(t) - seen for t in world["unseen"])


def test_titles_of_unseen_words_still_get_meaningful_vectors(students, world):
    """Dropping the vocabulary pass loses the unseen words: the catalog-only student never learnt them."""
    tok = world["tokenizer"]
    adapted = _cosine(students["adapted"], tok, world["unseen"], world["unseen_vectors"])
    catalog_only = _cosine(students["catalog_only"], tok, world["unseen"], world["unseen_vectors"])
    assert adapted > OOV_FLOOR and adapted > catalog_only + 0.1


def test_neighbours_of_unseen_titles_follow_minilm(students, world):
    from edgerec.compress.content_distill import neighbour_agreement

    tok = world["tokenizer"]
    agree = {name: neighbour_agreement(embed(students[name], *tokenize(tok, world["unseen"])),
                                       world["unseen_vectors"]) for name in ("adapted", "catalog_only")}
    assert agree["adapted"] > agree["catalog_only"] + 0.05  # measured 0.30 vs 0.23 here


def test_tokens_the_catalog_never_used_keep_their_vocabulary_values(students, world):
    ids, mask = tokenize(world["tokenizer"], world["train"])
    used = np.zeros(len(students["start_rows"]), bool)
    used[ids[mask > 0]] = True
    after = students["adapted"].tokens.weight.detach()
    assert torch.equal(after[~used], students["start_rows"][~used])
    assert not torch.equal(after[used], students["start_rows"][used])
    assert students["info"]["held_out_cosine_mean"] > students["info"]["held_out_cosine_before"]


def test_full_width_student_is_the_mean_of_the_weighted_token_vectors(vocab, world):
    """PCA at the teacher's width loses nothing: the student's map back reproduces model2vec's vectors."""
    student, info = student_from_vocabulary(vocab, vocab.vectors.shape[1])
    assert info["pca_explained_variance"] > 0.9999 and info["library"].startswith("model2vec")
    ids, mask = tokenize(world["tokenizer"], world["held"][:20])
    got = embed(student, ids, mask)
    want = np.stack([vocab.vectors[i[m > 0]].mean(0) for i, m in zip(ids, mask)])
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert (got * want).sum(1).min() > 0.999  # float32 PCA round-off: measured 0.9993 at worst


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_exported_adapted_student_matches_pytorch(students, world, teacher, fmt, tmp_path):
    from edgerec.export.content import export_student, student_parity

    texts = world["unseen"][:40]
    path, config = export_student(students["adapted"], fmt, "none", tmp_path / f"s.{fmt}", tmp_path)
    exact = student_parity(students["adapted"], path, fmt, config, teacher.dir, texts)
    assert exact["texts"] == 40 and exact["max_abs_diff"] < 1e-4
    path, config = export_student(students["adapted"], fmt, "int8", tmp_path / f"q.{fmt}", tmp_path)
    quantized = student_parity(students["adapted"], path, fmt, config, teacher.dir, texts)
    assert quantized["cosine_min"] > 0.98 and quantized["max_abs_diff"] > exact["max_abs_diff"]


def test_tagging_accuracy_on_a_hand_made_case():
    labels = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    texts = np.array([[0.9, 0.1],    # -> label 0, true {0}: right
                      [0.2, 0.8],    # -> label 1, true {0, 2}: wrong
                      [-0.7, 0.1],   # -> label 2, true {1, 2}: right
                      [0.1, -0.9]])  # -> label 0 (1.0*0.1 beats 0 and -0.1), true {1}: wrong
    assert tagging_accuracy(texts, labels, [{0}, {0, 2}, {1, 2}, {1}]) == 0.5
    assert tagging_accuracy(texts[:1], labels, [{1}]) == 0.0
