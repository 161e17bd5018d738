"""The content student's starting point: the teacher's whole vocabulary passed through the teacher.

model2vec's distillation embeds every token of the teacher's tokenizer alone
(one forward pass per token, mean-pooled) and weights each vector by its Zipf
rank (SIF). We keep its vectors in the teacher's own space and reduce them with
PCA ourselves, so the PCA basis (and the teacher's shared direction) become the
student's map back into the teacher's space: a student built this way already
embeds any text the tokenizer can read, including words no catalog text ever used.

`adapt_student` then fine-tunes the token rows the adaptation texts use; rows
they never use keep their vocabulary-pass values (SparseAdam only moves rows
that get a gradient). With real titles among those texts the map learns too
(`adaptation_config`); on the catalog's texts alone it stays the PCA basis.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgerec.compress.content_distill import ContentDistillConfig, distill_content, embed
from edgerec.errors import ConfigError, ModelError
from edgerec.models.content import StaticContentStudent, load_encoder_model, tokenize

VOCABULARY_ONLY = "vocabulary"  # sub-folder of a checkpoint holding its vocabulary-only student
# `content distill`'s default widths: with all-MiniLM-L6-v2's 30,522 tokens each int8 file stays under a
# quarter of MiniLM int8's bytes (static 176: 5.60 MB, 0.244; contextual at 176 would be 6.17 MB, 0.269)
STATIC_WIDTH = 176
CONTEXTUAL_WIDTH = 128
UNUSED = r"\[unused\d+\]"  # BERT's placeholder tokens: no text uses them


@dataclass
class VocabularyPass:
    """Token vectors in the teacher's space, one row per teacher token id (zeros where the library
    dropped a token, e.g. [unused..]), unweighted, and each row's SIF weight from its Zipf rank."""

    vectors: np.ndarray  # (vocab, teacher_dim) float32
    weights: np.ndarray  # (vocab,) float32
    seconds: float
    library: str


def vocabulary_pass(encoder_dir: str | Path, sif_coefficient: float = 1e-4,
                    only: set[str] | None = None) -> VocabularyPass:
    """Every token of the teacher's tokenizer through the teacher, with model2vec (offline).

    `only` passes just these tokens (plus the special ones) and leaves the others at zero: a quick
    pass for tests on a slow machine; the student then knows nothing else. The weights do not
    depend on `only`: a token's rank is its place in the tokenizer's order ([unused..] left out),
    the order model2vec ranks a full pass by."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import model2vec
        from model2vec.distill import distill_from_model
        from model2vec.distill.inference import compute_weights
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise ConfigError(f"the vocabulary pass needs model2vec's distill extra ({exc}): "
                          "pip install 'edgerec[tools]'") from None
    began = time.perf_counter()
    model = load_encoder_model(encoder_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir), local_files_only=True, use_fast=True)
    except OSError as exc:
        raise ModelError(f"cannot load a sentence encoder from {encoder_dir} ({exc})") from None
    quiet = logging.getLogger("model2vec")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            # no PCA, no weights, float32: PCA and weights are applied below, the basis kept as the map
            static = distill_from_model(model, tokenizer, pca_dims=None, sif_coefficient=None,
                                        quantize_to="float32", device="cpu",
                                        token_remove_pattern=_all_but(only, tokenizer) if only else UNUSED)
    finally:
        quiet.setLevel(level)
    ours = tokenizer.get_vocab()
    theirs = static.tokenizer.get_vocab()
    source = np.asarray(static.embedding, np.float32)
    vectors = np.zeros((max(ours.values()) + 1, source.shape[1]), np.float32)
    for token, row in ours.items():
        if token in theirs and token != tokenizer.pad_token:
            vectors[row] = source[theirs[token]]
    ranked = sorted(row for token, row in ours.items() if not re.fullmatch(UNUSED, token))
    weights = np.zeros(len(vectors), np.float32)
    weights[ranked] = compute_weights(len(ranked), sif_coefficient=sif_coefficient)
    return VocabularyPass(vectors, weights, time.perf_counter() - began, f"model2vec {model2vec.__version__}")


def _all_but(keep: set[str], tokenizer) -> str:
    """A pattern matching every token except `keep` and the special tokens (the library drops matches)."""
    keep = set(keep) | set(tokenizer.all_special_tokens)
    return "^(?!(?:" + "|".join(re.escape(t) for t in sorted(keep, key=len, reverse=True)) + ")$).*$"


def student_from_vocabulary(vocab: VocabularyPass, dim: int) -> tuple[StaticContentStudent, dict]:
    """model2vec's recipe in the teacher's space: PCA of the unweighted token vectors, each token's
    coordinates times its SIF weight; the map back is the PCA basis, plus the teacher's shared
    direction as the offset (models.content.to_teacher_space).

    The offset is the mean of the unit token vectors, r long, scaled to r / sqrt(1 - r^2) of a
    unit vector: the shared part of a typical teacher output against its own part. The PCA mean
    is not added back: it would give every text the same large term, which drowns short texts'
    differences (on 1,000 real film titles: top-10 agreement with MiniLM 0.23 with it, 0.32 with
    the offset)."""
    x = vocab.vectors.astype(np.float64)
    used = np.abs(x).sum(1) > 0
    if dim > x.shape[1] or dim > used.sum():
        raise ConfigError(f"the student's width {dim} exceeds the teacher's {x.shape[1]} or its {int(used.sum())} "
                          f"tokens; pass --dim {min(x.shape[1], int(used.sum()))} or less")
    shared = (x[used] / np.linalg.norm(x[used], axis=1, keepdims=True)).mean(0)
    share = float(np.linalg.norm(shared))
    if not np.isfinite(x).all() or not share < 0.99:
        raise ModelError(f"the teacher's token vectors are not finite or all point one way (shared length "
                         f"{share:.3f}); check the --encoder folder holds a trained sentence encoder")
    centred = x[used] - x[used].mean(0)
    _, s, basis = np.linalg.svd(centred, full_matrices=False)
    coords = np.zeros((len(x), dim))
    coords[used] = (centred @ basis[:dim].T) * vocab.weights[used, None]
    student = StaticContentStudent(len(x), dim, x.shape[1])
    with torch.no_grad():
        student.tokens.weight.copy_(torch.as_tensor(coords, dtype=torch.float32))
        student.project.weight.copy_(torch.as_tensor(basis[:dim].T, dtype=torch.float32))
        student.project.bias.zero_()
        student.offset.copy_(torch.as_tensor(shared / np.sqrt(1.0 - share ** 2), dtype=torch.float32))
    explained = float((s[:dim] ** 2).sum() / (s ** 2).sum())
    return student.eval(), {"init": "vocabulary", "library": vocab.library, "pca_dims": dim,
                            "pca_explained_variance": explained, "shared_direction_length": share,
                            "vocabulary_seconds": round(vocab.seconds, 1), "tokens_with_vectors": int(used.sum())}


def adaptation_config(dim: int = 128, epochs: int = 10, seed: int = 0, real_titles: bool = True
                      ) -> ContentDistillConfig:
    """How `content distill` adapts the vocabulary student.

    With real titles among the adaptation texts the map (PCA basis, bias, shared direction) learns
    too, and a listwise term (each text's in-batch neighbours, teacher against student) joins the
    cosine loss. Measured on 500 held-out IMDb titles after the demo world's 4,000 catalog texts and
    52,500 training titles (PyTorch, cosine / top-10 agreement with MiniLM): map fixed 0.771 / 0.497;
    map learnt 0.818 / 0.522 (titles with unseen words 0.761 / 0.423 -> 0.817 / 0.462); and the
    listwise term at 0.1, batches of 512, 0.813 / 0.542. On the catalog's synthetic texts alone the
    map stays fixed: learnt there it pulls real titles away from MiniLM (0.688 -> 0.622 cosine)."""
    if not real_titles:
        return ContentDistillConfig(dim=dim, epochs=epochs, lr=0.01, projection_lr=0.0, seed=seed)
    return ContentDistillConfig(dim=dim, epochs=epochs, lr=0.01, projection_lr=1e-3, batch_size=512,
                                listwise_weight=0.1, temperature=0.05, seed=seed)


def adapt_student(student: StaticContentStudent, tokenizer, texts: list[str], targets: np.ndarray,
                  held_texts: list[str], held_targets: np.ndarray,
                  cfg: ContentDistillConfig | None = None, progress=None) -> tuple[StaticContentStudent, dict]:
    """Fine-tune the token rows the in-domain texts use (cosine to the teacher); the map learns only
    if `cfg.projection_lr` > 0 (`adaptation_config`: with real titles).

    Rows no text uses keep their vocabulary-pass values either way. On a few synthetic catalog texts
    a learnt map raised their cosine but pulled titles with unseen words away from the teacher (0.48
    -> 0.30 mean cosine on 150 real titles after 400 synthetic catalog texts); on 52,500 real titles
    it brings them closer (see `adaptation_config`)."""
    cfg = cfg or ContentDistillConfig(epochs=10, lr=0.01, projection_lr=0.0)
    before = embed(student, *tokenize(tokenizer, held_texts))
    adapted, info = distill_content(tokenizer, texts, targets, held_texts, held_targets, cfg, progress,
                                    student=student)
    cos = (before * held_targets).sum(1) / (np.linalg.norm(before, axis=1) + 1e-12)
    info["held_out_cosine_before"] = float(cos.mean())
    return adapted, info
