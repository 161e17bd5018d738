"""The content teacher/student path with a user-supplied multilingual encoder folder, read offline.

No installable package ships multilingual sentence-encoder weights as a model folder, so the test
builds a small one the way a user's folder looks: a BERT-style model saved with save_pretrained and
a tokenizer.json with an XLM-R-style vocabulary (<s> = 0, <pad> = 1) holding English and Spanish
words. Its weights are random: the test checks the path (offline load, padding, distillation), not
the quality of a cross-lingual space."""

from __future__ import annotations

import numpy as np
import pytest

from edgerec.compress.content_distill import ContentDistillConfig, distill_content
from edgerec.errors import ConfigError
from edgerec.models.content import ContentTeacher, load_tokenizer, tokenize
from edgerec.runtime.content import padding

WORDS = ("a an the dark upbeat jazz track film about love night city by un una el la oscuro alegre "
         "pelicula sobre amor noche ciudad de cancion").split()
TEXTS = ["A dark jazz track about the night", "Una cancion de jazz oscuro sobre la noche",
         "An upbeat film about love", "Una pelicula alegre sobre el amor", "The city", "La ciudad de noche"]


@pytest.fixture(scope="module")
def multilingual_folder(tmp_path_factory):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("my-multilingual-encoder")
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", *WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A </s>",
                                                             special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer.save(str(folder / "tokenizer.json"))
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=1, type_vocab_size=1)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder))
    return folder


def test_a_user_folder_with_a_multilingual_vocabulary_pads_with_its_own_token(multilingual_folder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer = load_tokenizer(multilingual_folder, max_length=16)
    assert padding(tokenizer) == (1, "<pad>")
    ids, mask = tokenize(tokenizer, ["the city", "una pelicula sobre el amor"])
    assert ids[0, -1] == 1 and mask[0, -1] == 0  # the shorter text is padded with <pad> = 1, not id 0 (<s>)
    assert ids[0, 0] == 0 and ids[1, 0] == 0


def test_teacher_and_student_run_on_a_user_supplied_multilingual_folder(multilingual_folder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    teacher = ContentTeacher(multilingual_folder)
    vectors = teacher.encode(TEXTS, batch=4)
    assert vectors.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    alone = teacher.encode([TEXTS[4]])  # padding never leaks into a text's vector
    np.testing.assert_allclose(alone[0], vectors[4], atol=1e-5)
    student, info = distill_content(teacher.tokenizer, TEXTS, vectors, TEXTS, vectors,
                                    ContentDistillConfig(dim=8, epochs=40, batch_size=6, lr=0.1))
    assert student.tokens.num_embeddings == len(WORDS) + 4
    assert info["held_out_cosine_mean"] > info["history"][0]["cosine_mean"]


def test_a_tokenizer_without_a_padding_token_is_refused(tmp_path):
    from tokenizers import Tokenizer, models

    Tokenizer(models.WordLevel({"<unk>": 0, "word": 1}, unk_token="<unk>")).save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ConfigError, match="no padding token"):
        load_tokenizer(tmp_path, max_length=8)
