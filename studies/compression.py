"""The compression study: teacher, student and every quantized variant, measured the same way.

For each variant the user encoder is exported to a real file and run by its
real engine on every test user's history; the item table is stored at the
variant's precision. Reported: bytes on disk (encoder file and item table),
test HR@10 / NDCG@10 over the full catalog, top-10 agreement with the
teacher, and single-thread latency of the encoder at batch 1.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgerec.compress.quantize import (
    WEIGHT_ONLY_SESSION_CONFIG,
    fake_quantize,
    quantize_onnx,
    quantize_tflite,
)
from edgerec.data.split import leave_last_out
from edgerec.data.store import load_dataset
from edgerec.export.formats import export_onnx, export_tflite
from edgerec.export.parity import overlap
from edgerec.export.size_check import stored_bytes
from edgerec.models.checkpoint import load_model, require_same_catalog
from edgerec.models.evaluation import Evaluator
from edgerec.models.scoring import ModelScorer, history_rows
from edgerec.runtime.backends import open_backend
from edgerec.runtime.bundle import ModelEntry, TensorSpec
from edgerec.runtime.encoder import UserEncoder
from edgerec.runtime.item_table import StoredTable
from edgerec.studies.base import Progress, Study, Table, pyplot, save_figure, say


@dataclass
class Variant:
    name: str
    model: str  # teacher | student
    format: str  # onnx | tflite
    quantize: str  # none | int8 | int8-dynamic | int8-static | fp16
    table: str  # fp32 | fp16 | int8


DEFAULT_VARIANTS = (
    Variant("teacher fp32 (onnx)", "teacher", "onnx", "none", "fp32"),
    Variant("student fp32 (onnx)", "student", "onnx", "none", "fp32"),
    Variant("student fp16 (onnx)", "student", "onnx", "fp16", "fp16"),
    Variant("student int8 weights (onnx)", "student", "onnx", "int8", "int8"),
    Variant("student int8 dynamic (onnx)", "student", "onnx", "int8-dynamic", "int8"),
    Variant("student int8 static (onnx)", "student", "onnx", "int8-static", "int8"),
    Variant("student int8 weights (tflite)", "student", "tflite", "int8", "int8"),
)


class _FileScorer:
    """Scores the catalog with an exported encoder file and a stored item table."""

    def __init__(self, encoder: UserEncoder, table: np.ndarray, max_len: int, name: str):
        self.encoder, self.table, self.max_len, self.name = encoder, table, max_len, name

    def score(self, users, history):
        rows = history_rows(history, users, self.max_len)
        if self.encoder.fixed:
            vectors = self.encoder.encode_rows(rows)
        else:
            vectors = np.concatenate([self.encoder.encode_rows(rows[i:i + 512]) for i in range(0, len(rows), 512)])
        return vectors @ self.table.T


def compression_report(teacher: str | Path, student: str | Path, data_dir: str | Path,
                       variants: tuple[Variant, ...] = DEFAULT_VARIANTS, latency_calls: int = 300,
                       progress: Callable[[str], None] | None = None) -> dict:
    say = progress or (lambda _m: None)
    dataset = load_dataset(data_dir)
    split = leave_last_out(dataset)
    evaluator = Evaluator(split, dataset.catalog)
    models = {"teacher": load_model(teacher)[0], "student": load_model(student)[0]}
    for role, model in models.items():
        require_same_catalog(model, dataset, f"the {role} {Path(teacher if role == 'teacher' else student).name}")
    history = split.history("test")
    users = split.test_users
    teacher_lists = evaluator.ranks_and_lists(ModelScorer(models["teacher"], "teacher"))[1]
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="edgerec-report-") as scratch:
        for variant in variants:
            say(f"measuring {variant.name}")
            model = models[variant.model]
            max_len = model.config.max_len
            sample = history_rows(history, users[:512], max_len)
            deployed = model.deploy().eval()
            module = fake_quantize(deployed) if variant.quantize == "int8" else deployed
            raw = Path(scratch) / f"{variant.model}-{variant.format}-{variant.quantize}.raw.{variant.format}"
            final = raw.with_name(raw.name.replace(".raw", ""))
            if variant.format == "onnx":
                export_onnx(module, {"ids": torch.as_tensor(sample[:2])}, {"ids": {0: "batch", 1: "history"}},
                            ["user_vector"], raw, max_sizes={"history": max_len})
                calibration = [{"ids": sample[i:i + 32]} for i in range(0, 256, 32)]
                quantize_onnx(raw, final, variant.quantize, calibration)
            else:
                export_tflite(module, (torch.as_tensor(sample[:1]),), raw)
                quantize_tflite(raw, final, variant.quantize)
            config = WEIGHT_ONLY_SESSION_CONFIG if variant.format == "onnx" and variant.quantize == "int8" else None
            entry = ModelEntry("user_encoder", variant.format, final.name, [TensorSpec("ids", "int64", [])], [],
                               history_length=max_len if variant.format == "tflite" else None)
            encoder = UserEncoder(open_backend(final, variant.format, threads=1, config=config), entry, max_len)
            with torch.no_grad():
                vectors = model.item_vectors()[1:].numpy()
            stored = StoredTable.quantize(vectors, variant.table)
            table_bytes = stored_bytes(stored)  # as the bundle stores it: the .npy headers count (distill's budget)
            scorer = _FileScorer(encoder, stored.dequantize(), max_len, variant.name)
            ranks, lists = evaluator.ranks_and_lists(scorer)
            k = evaluator.k
            hr = float(np.mean(ranks < k))
            ndcg = float(np.mean(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)))
            latency = _latency(encoder, sample, latency_calls)
            rows_out.append({
                "variant": variant.name, "model": variant.model, "format": variant.format,
                "quantization": variant.quantize, "table": variant.table,
                "encoder_bytes": final.stat().st_size, "table_bytes": int(table_bytes),
                "bytes": final.stat().st_size + int(table_bytes),
                "HR@10": hr, "NDCG@10": ndcg, "top10_agreement_with_teacher": float(overlap(lists, teacher_lists).mean()),
                "encoder_p50_ms": float(np.percentile(latency, 50)), "encoder_p99_ms": float(np.percentile(latency, 99)),
                "parameters": int(sum(p.numel() for p in model.parameters())),
            })
    add_teacher_ratios(rows_out)
    return {"teacher": Path(teacher).name, "student": Path(student).name, "data": Path(data_dir).name,  # no host paths
            "users": len(teacher_lists), "users_in_phase": int(len(users)),  # scored: at most the evaluator's sample
            "variants": rows_out}


def add_teacher_ratios(rows: list[dict]) -> None:
    """Each variant's encoder bytes and NDCG@10 as shares of the teacher's; the NDCG share is None
    (not measured) when the teacher's NDCG@10 is 0, where it was printed as 0.0000."""
    teacher = next(r for r in rows if r["model"] == "teacher")
    for row in rows:
        row["bytes_vs_teacher_encoder"] = row["encoder_bytes"] / teacher["encoder_bytes"]
        row["ndcg_vs_teacher"] = row["NDCG@10"] / teacher["NDCG@10"] if teacher["NDCG@10"] > 0 else None


def _latency(encoder: UserEncoder, sample: np.ndarray, calls: int) -> np.ndarray:
    for i in range(10):
        encoder.encode_rows(sample[i % len(sample)][None])
    out = []
    for i in range(calls):
        began = time.perf_counter()
        encoder.encode_rows(sample[i % len(sample)][None])
        out.append((time.perf_counter() - began) * 1e3)
    return np.asarray(out)


def plot_pareto(report: dict, path: str | Path) -> Path | None:
    """Size (log) against NDCG@10 for every variant, with the Pareto front drawn."""
    plt = pyplot()
    if plt is None:
        return None
    rows = report["variants"]
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in rows:
        ax.scatter(r["bytes"], r["NDCG@10"], s=60, marker="s" if r["model"] == "teacher" else "o")
        ax.annotate(r["variant"], (r["bytes"], r["NDCG@10"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    front, best = [], -1.0
    for r in sorted(rows, key=lambda r: r["bytes"]):
        if r["NDCG@10"] > best:
            front.append(r)
            best = r["NDCG@10"]
    ax.plot([r["bytes"] for r in front], [r["NDCG@10"] for r in front], "--", color="grey", label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("bytes on disk: user encoder + item table (log)")
    ax.set_ylabel("test NDCG@10 (full ranking)")
    ax.set_title("size against accuracy")
    ax.legend()
    return save_figure(fig, path)


COLUMNS = ["variant", "bytes", "encoder_bytes", "table_bytes", "HR@10", "NDCG@10", "ndcg_vs_teacher",
           "top10_agreement_with_teacher", "encoder_p50_ms", "encoder_p99_ms", "parameters"]


@dataclass
class CompressionStudy(Study):
    """Bytes, accuracy and encoder latency of every compressed variant, with the size/accuracy plot."""

    name = "compression"
    draws = True
    teacher: Path
    student: Path
    data_dir: Path
    variants: tuple[Variant, ...] = DEFAULT_VARIANTS
    latency_calls: int = 300

    def measure(self, progress: Progress) -> dict:
        return compression_report(self.teacher, self.student, self.data_dir, self.variants, self.latency_calls,
                                  progress=say(progress))

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        return [Table(f"compression: {record['users']:,} test users, full ranking; encoder latency on 1 thread",
                      record["variants"], COLUMNS)]

    @classmethod
    def draw(cls, record: dict, path: Path) -> Path | None:
        return plot_pareto(record, path)
