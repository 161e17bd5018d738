"""The content study: MiniLM fp32 and int8 against the on-device content student.

Every encoder is exported for real and run by its engine on held-out catalog
texts: bytes on disk, cosine to the teacher's vectors, agreement of the ten
nearest neighbours, and milliseconds per title on one thread.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.compress.content_distill import cosine_stats, load_student, neighbour_agreement
from edgerec.compress.quantize import MODE_LABEL, quantize_onnx
from edgerec.data.store import load_dataset
from edgerec.export.content import (
    TFLITE_TOKENS,
    export_student,
    export_teacher_onnx,
    run_content_file,
)
from edgerec.models.content import ContentTeacher, held_out_texts, load_tokenizer
from edgerec.runtime.backends import open_backend
from edgerec.studies.base import Progress, Study, Table

COLUMNS = ["model", "bytes", "cosine_mean", "cosine_min", "top10_neighbour_agreement", "ms_per_title_p50",
           "bytes_vs_minilm_int8", "speedup_vs_minilm_int8"]


def content_report(encoder_dir: Path, student, texts: list[str], teacher_vectors: np.ndarray,
                   latency_texts: int = 200) -> list[dict]:
    """MiniLM fp32 / int8 (ONNX) and the student (ONNX, TFLite): bytes, fidelity to the teacher, speed."""
    tokenizer = load_tokenizer(encoder_dir, 128)
    fixed = load_tokenizer(encoder_dir, TFLITE_TOKENS, pad_to=TFLITE_TOKENS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgerec-content-report-") as scratch:
        scratch = Path(scratch)
        teacher_onnx = export_teacher_onnx(encoder_dir, scratch / "teacher")
        teacher_int8 = quantize_onnx(teacher_onnx, scratch / "teacher-int8.onnx", "int8-dynamic")
        candidates = [("MiniLM fp32 (onnx)", teacher_onnx, "onnx", None),
                      ("MiniLM int8 per-channel (onnx)", teacher_int8, "onnx", None)]
        for fmt, mode in (("onnx", "none"), ("onnx", "int8"), ("tflite", "int8")):
            path, config = export_student(student, fmt, mode, scratch / f"student-{mode}.{fmt}", scratch)
            candidates.append((f"student {MODE_LABEL[mode]} ({fmt})", path, fmt, config))
        for name, path, fmt, config in candidates:
            backend = open_backend(path, fmt, threads=1, config=config)
            vectors = run_content_file(backend, fmt, fixed, tokenizer, texts)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            times = []
            for text in texts[:latency_texts]:
                began = time.perf_counter()
                run_content_file(backend, fmt, fixed, tokenizer, [text])
                times.append((time.perf_counter() - began) * 1e3)
            rows.append({"model": name, "bytes": path.stat().st_size, **cosine_stats(vectors, teacher_vectors),
                         "top10_neighbour_agreement": neighbour_agreement(vectors, teacher_vectors),
                         "ms_per_title_p50": float(np.percentile(times, 50)),
                         "ms_per_title_mean": float(np.mean(times))})
    base = next(r for r in rows if r["model"].startswith("MiniLM int8"))
    for row in rows:
        row["bytes_vs_minilm_int8"] = row["bytes"] / base["bytes"]
        row["speedup_vs_minilm_int8"] = base["ms_per_title_mean"] / row["ms_per_title_mean"]
    return rows


@dataclass
class ContentStudy(Study):
    """The content encoders compared on held-out texts (`seed` must match `content distill`'s)."""

    name = "content"
    student: Path
    data_dir: Path
    encoder_dir: Path | None = None  # the teacher; default: the packaged all-MiniLM-L6-v2
    held_out: int = 1000
    seed: int = 0

    def measure(self, progress: Progress) -> dict:
        _, held = held_out_texts(load_dataset(self.data_dir).catalog, 0, self.held_out, self.seed)
        teacher = ContentTeacher(self.encoder_dir)
        model, _ = load_student(self.student)
        progress(f"the teacher embeds {len(held):,} held-out texts", {})
        teacher_vectors = teacher.encode(held)
        progress("exporting and timing every content encoder", {})
        return {"held_out_texts": len(held), "models": content_report(teacher.dir, model, held, teacher_vectors)}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        return [Table(f"content encoders on {record['held_out_texts']:,} held-out catalog texts (1 thread)",
                      record["models"], COLUMNS)]
