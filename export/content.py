"""Content encoders out of PyTorch: MiniLM to ONNX (optimum), the student to ONNX and TFLite, the
content -> item-space projection and tag vectors for zero-shot tagging."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import torch

from edgerec.compress.content_distill import cosine_stats
from edgerec.compress.quantize import (
    MODE_LABEL,
    WEIGHT_ONLY_SESSION_CONFIG,
    fake_quantize,
    quantize_onnx,
    quantize_tflite,
)
from edgerec.errors import DataError, ExportError
from edgerec.export.formats import export_onnx, export_tflite
from edgerec.models.content import tokenize, tokenizer_error
from edgerec.runtime.bundle import BundleWriter, ModelEntry, TensorSpec
from edgerec.runtime.content import reads_words, unknown_id

TFLITE_TOKENS = 48  # fixed text length of a TFLite content student, the ONNX files' max_tokens (read_length): a
# bundle's TFLite file reads as many tokens as its ONNX twin (at 32 it dropped the "Tags: ..." of ordinary items)
PARITY_TEXTS = 256  # catalog texts on which an exported student is checked against PyTorch
FIT_EVENT_SHARE = 0.75  # the projection learns from the most consumed items holding this share of training events
MIN_FIT_ITEMS = 64  # ...and from at least this many (small catalogs)


def export_teacher_onnx(encoder_dir: str | Path, out_dir: str | Path) -> Path:
    """The sentence encoder as ONNX via optimum (outputs token_embeddings and sentence_embedding)."""
    from optimum.exporters.onnx import main_export

    out_dir = Path(out_dir)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            main_export(model_name_or_path=str(encoder_dir), output=str(out_dir), task="feature-extraction",
                        library_name="sentence_transformers", opset=18, device="cpu", local_files_only=True)
    except Exception as exc:
        raise ExportError(f"optimum could not export {encoder_dir} to ONNX: {exc}") from exc
    return out_dir / "model.onnx"


def export_student(student, fmt: str, mode: str, path: Path, scratch: Path,
                   tokens: int = TFLITE_TOKENS) -> tuple[Path, dict | None]:
    """Export and quantize the content student; returns the file and the engine settings it needs. `tokens`:
    the fixed text length of a TFLite file (an ONNX file takes any length)."""
    module = fake_quantize(student) if mode == "int8" else student
    ids = torch.ones(2, tokens, dtype=torch.int64)
    mask = torch.ones(2, tokens, dtype=torch.int64)
    raw = scratch / f"content.float.{fmt}"
    if fmt == "onnx":
        export_onnx(module, {"input_ids": ids, "attention_mask": mask},
                    {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
                    ["sentence_embedding"], raw,
                    # a contextual student has a position table: no more tokens than its rows
                    max_sizes={"tokens": student.max_len} if hasattr(student, "max_len") else None)
        quantize_onnx(raw, path, mode)
    else:
        export_tflite(module, (ids[:1], mask[:1]), raw)
        quantize_tflite(raw, path, mode)
    return path, (WEIGHT_ONLY_SESSION_CONFIG if fmt == "onnx" and mode == "int8" else None)


def run_content_file(backend, fmt: str, tokenizer_fixed, tokenizer, texts: list[str], batch: int = 64) -> np.ndarray:
    """Embed texts with an exported content encoder (ONNX: padded batches; TFLite: one at a time)."""
    if fmt == "tflite":
        ids, mask = tokenize(tokenizer_fixed, texts)
        return np.concatenate([backend.run({"input_ids": ids[i:i + 1].astype(np.int32),
                                            "attention_mask": mask[i:i + 1].astype(np.int32)})[0]
                               for i in range(len(texts))])
    out = []
    for start in range(0, len(texts), batch):
        ids, mask = tokenize(tokenizer, texts[start:start + batch])
        result = backend.run({"input_ids": ids, "attention_mask": mask})
        out.append(result[-1] if len(result) > 1 else result[0])
    return np.concatenate(out)


def student_parity(student, path: Path, fmt: str, config: dict | None, encoder_dir: Path,
                   texts: list[str], max_tokens: int = TFLITE_TOKENS, tokens: int | None = None) -> dict:
    """The exported file (run by its device engine, reading `tokens` per text: a TFLite file's fixed length,
    default max_tokens) against the PyTorch student on the same texts read at `max_tokens`.

    The reference is the full-length one for every engine: it was cut to the TFLite file's own 32 tokens, so
    the manifest recorded cosine 0.99995 for a file that dropped the tags of ordinary items (0.944 to ONNX)."""
    from edgerec.compress.content_distill import embed
    from edgerec.models.content import load_tokenizer
    from edgerec.runtime.backends import open_backend

    tokens = max_tokens if tokens is None else tokens
    tokenizer = load_tokenizer(encoder_dir, max_tokens)
    fixed = load_tokenizer(encoder_dir, tokens, pad_to=tokens)
    host = embed(student, *tokenize(tokenizer, texts))
    device = run_content_file(open_backend(path, fmt, config=config), fmt, fixed,
                              load_tokenizer(encoder_dir, tokens), texts)
    device = device / np.maximum(np.linalg.norm(device, axis=1, keepdims=True), 1e-12)
    return {"texts": len(texts), "max_abs_diff": float(np.abs(device - host).max()),
            **cosine_stats(device, host)}


def projection_items(counts: np.ndarray, share: float = FIT_EVENT_SHARE) -> np.ndarray:
    """Rows the content projection is fitted on: the most consumed items that together hold `share` of
    the training events (at least MIN_FIT_ITEMS of the consumed ones), in row order.

    Training places a rarely consumed item's row from a few events, mostly as a negative pushed away
    from users. A fit over that long tail maps text to where no user looks: on the MovieLens sample
    (9,066 films, half with 2 ratings or fewer) items added from their titles reached HR@100 0.0004
    when the fit took every consumed film and 0.096 with the films holding 75% of the ratings; on the
    demo world the same cut raised HR@10 of the content placement from 0.371 to 0.451 (MiniLM)."""
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 1 or not np.all(np.isfinite(counts)) or np.any(counts < 0) or not 0 < share <= 1:
        raise ExportError("projection items need one finite, non-negative count per item and a share in (0, 1]")
    consumed = np.flatnonzero(counts > 0)
    order = consumed[np.argsort(-counts[consumed], kind="stable")]
    if not len(order):
        return order
    held = np.cumsum(counts[order]) / counts[order].sum()
    keep = max(int(np.searchsorted(held, share - 1e-12)) + 1, MIN_FIT_ITEMS)
    return np.sort(order[:keep])


def fit_projection(content: np.ndarray, items: np.ndarray, ridge: float = 1.0) -> np.ndarray:
    """Ridge regression from content vectors to recommender item vectors; (C + 1, D) with a bias row."""
    x = np.hstack([content, np.ones((len(content), 1), np.float32)]).astype(np.float64)
    reg = ridge * np.eye(x.shape[1])
    reg[-1, -1] = 0.0  # the bias is not shrunk
    return np.linalg.solve(x.T @ x + reg, x.T @ items.astype(np.float64)).astype(np.float32)


def project(content: np.ndarray, projection: np.ndarray) -> np.ndarray:
    out = content @ projection[:-1] + projection[-1]
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def read_length(tokenizer) -> int:
    """The tokens a text is cut to, as the student was distilled and checked: the catalog's longest text was
    written instead, and on a catalog of short titles the device dropped the tags of every item it embedded."""
    return int((tokenizer.truncation or {}).get("max_length", TFLITE_TOKENS))


def _reads_words(tokenizer, text: str, unknown: int | None) -> bool:
    try:
        return reads_words(tokenizer, text, unknown)
    except Exception as exc:
        if type(exc) is not Exception:  # the tokenizers library's own failures are bare Exceptions
            raise
        raise tokenizer_error(exc, "the content encoder's tokenizer.json") from None


def usable_labels(tokenizer, label_sets: dict[str, list[str]]) -> tuple[dict[str, list[str]], list[str]]:
    """The label sets a bundle ships, and a note for each name or set left out.

    A name that reads no word (an emoji-only tag) is [CLS] [UNK] [SEP] to the encoder: it was returned as a
    tag of texts it has nothing to do with, while `tag` refuses such a text. A set of fewer than two names
    gave every text its one name (a catalog whose every item is "calm" tagged a heist thriller "calm")."""
    unknown = unknown_id(tokenizer)  # from the tokenizer's own JSON, as the device reads it (Unigram: unk_id)
    unreadable = {name for names in label_sets.values() for name in names
                  if not _reads_words(tokenizer, name, unknown)}
    notes = [f"left out {len(unreadable):,} label name(s) that read no word to the tokenizer (symbols or emoji "
             f"alone): {', '.join(map(repr, sorted(unreadable)[:10]))}"] if unreadable else []
    usable = {}
    for kind, names in label_sets.items():
        kept = [name for name in names if name not in unreadable]
        if len(set(kept)) >= 2:
            usable[kind] = kept
        else:
            held = f"only {kept[0]!r}" if kept else "no name that reads as words"
            notes.append(f"left out the {kind} labels: the catalog has {held}, and a set of fewer than two would "
                         f"give every text the same {kind}")
    if not usable:
        raise DataError("no label set has two names that read as words, so the content encoder would have "
                        "nothing to tell texts apart by; give the items genres, moods or tags with at least two "
                        "different values in words (--items), or export without --content")
    return usable, notes


def add_content_to_bundle(writer: BundleWriter, student, encoder_dir: Path, tokenizer, catalog_texts: list[str],
                          item_vectors: np.ndarray, fit_rows: np.ndarray, label_sets: dict[str, list[str]],
                          formats: tuple[str, ...], mode: str) -> list[ModelEntry]:
    """Content encoder files, tokenizer, projection and tag vectors; returns the model entries."""
    from edgerec.compress.content_distill import embed

    ids, mask = tokenize(tokenizer, catalog_texts)
    content = embed(student, ids, mask)
    projection = fit_projection(content[fit_rows], item_vectors[fit_rows])
    fit = cosine_stats(project(content[fit_rows], projection), item_vectors[fit_rows])
    tokenizer_file = "content/tokenizer.json"
    writer.file_path(tokenizer_file).write_bytes((Path(encoder_dir) / "tokenizer.json").read_bytes())
    writer.add_file(tokenizer_file)
    labels = sorted({label for values in label_sets.values() for label in values})
    length = read_length(tokenizer)  # both formats read this many tokens (TFLite: its fixed input length)
    label_ids, label_mask = tokenize(tokenizer, labels)
    extra = {
        "tokenizer": tokenizer_file, "max_tokens": length,
        "projection": writer.add_array("content/projection.npy", projection),
        "labels": {"names": labels, "vectors": writer.add_array("content/label_vectors.npy",
                                                                embed(student, label_ids, label_mask)),
                   "sets": label_sets},
        "projection_fit": fit,
    }
    entries = []
    with tempfile.TemporaryDirectory(prefix="edgerec-content-") as scratch:
        for fmt in formats:
            name = f"content_encoder.{fmt}"
            path, config = export_student(student, fmt, mode, writer.file_path(name), Path(scratch), tokens=length)
            parity = student_parity(student, path, fmt, config, encoder_dir, catalog_texts[:PARITY_TEXTS], length)
            shape = ["batch", "tokens"] if fmt == "onnx" else [1, length]
            dtype = "int64" if fmt == "onnx" else "int32"
            entry = ModelEntry("content_encoder", fmt, name,
                               [TensorSpec("input_ids", dtype, shape), TensorSpec("attention_mask", dtype, shape)],
                               [TensorSpec("sentence_embedding", "float32", [shape[0], student.project.out_features])],
                               quantization=MODE_LABEL[mode], batch=1 if fmt == "tflite" else None,
                               extra=dict(extra, parity=parity, **({"session_config": config} if config else {}),
                                          **({"tokens": length} if fmt == "tflite" else {})))
            writer.add_model(entry)
            entries.append(entry)
    return entries
