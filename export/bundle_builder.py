"""`edgerec export`: a trained recommender (+ optional ranker) -> a verified bundle folder.

Steps: deploy module -> ONNX and/or TFLite -> parity against PyTorch on real
histories -> quantization -> parity again (an export that misses its
tolerance stops here) -> item table (int8 with per-dimension scales, see runtime/item_table.py) and item
metadata -> reference inputs/outputs for on-device conformance -> the top-score baseline
of the device's drift monitor (metrics.monitoring, see runtime/drift.py) -> manifest and
model card, written through the schema of `edgerec.runtime.bundle`.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgerec.compress.quantize import (
    MODE_LABEL,
    WEIGHT_ONLY_SESSION_CONFIG,
    fake_quantize,
    quantize_onnx,
    quantize_tflite,
)
from edgerec.data.schema import Catalog, Dataset
from edgerec.data.split import Split, leave_last_out
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError, DataError, ModelError
from edgerec.export.deidentify import public_source, scrub_paths, synthetic_histories
from edgerec.export.formats import export_onnx, export_tflite
from edgerec.export.parity import check, compare_vectors, overlap, top_k_rows
from edgerec.export.popularity import PopularityPrior
from edgerec.export.ranker_export import export_ranker
from edgerec.export.ranking import ranking_section
from edgerec.export.replay_default import replay_defaults
from edgerec.models.checkpoint import load_model, read_config, refuse_unfinished, unfinished
from edgerec.models.evaluation import Evaluator, train_popularity
from edgerec.models.hubness import model_hubness
from edgerec.models.scorer import load_scorer
from edgerec.models.scoring import ModelScorer, history_rows
from edgerec.runtime.backends import open_backend, open_model
from edgerec.runtime.bundle import BundleWriter, Manifest, ModelEntry, TensorSpec
from edgerec.runtime.checks import file_name
from edgerec.runtime.drift import score_baseline
from edgerec.runtime.encoder import UserEncoder
from edgerec.runtime.item_spec import ColumnSpec, ItemTableSpec, TableSpec, write_text
from edgerec.runtime.item_table import StoredTable
from edgerec.runtime.reference import MIN_REFERENCE_USERS, row_cosines
from edgerec.runtime.vocab import MODALITIES

FP32_TOLERANCE = 1e-4
Progress = Callable[[str], None]


@dataclass
class ExportConfig:
    formats: tuple[str, ...] = ("onnx", "tflite")
    quantize: str = "int8"  # none | int8 | int8-static (ONNX only) | fp16
    table_dtype: str = "int8"  # item table: one of item_table.TABLE_DTYPES
    parity_users: int = 500
    min_top10_agreement: float = 0.9  # for quantized files; fp32 files must match to FP32_TOLERANCE
    reference_users: int = 32
    k: int = 10
    short_list: int = 100
    cold_max_per_creator: int | None = None  # newcomers' creator cap (spec §5; 0 off); None: not written, devices use 3
    name: str | None = None
    evaluate: bool = True  # record test metrics of the model (and of the teacher) in the manifest
    budgets: dict = field(default_factory=lambda: {"p99_ms": 5.0, "rss_mb": 300.0})
    priors: bool = True  # context priors and the engagement pull in the manifest's ranking section
    hubness: bool = True  # the items' hubness column, for the device's Policy.hub_penalty

    def validate(self) -> ExportConfig:
        self.formats = tuple(dict.fromkeys(self.formats))  # onnx,onnx wrote two entries the runtime refuses
        bad = set(self.formats) - {"onnx", "tflite"}
        if bad or not self.formats:
            raise ConfigError(f"formats must be onnx and/or tflite (got {', '.join(self.formats) or 'none'})")
        if self.quantize == "int8-static" and "tflite" in self.formats:
            raise ConfigError("int8-static is an ONNX quantization; use --format onnx, or int8/fp16 for TFLite")
        if isinstance(self.reference_users, bool) or not isinstance(self.reference_users, int) \
                or self.reference_users < MIN_REFERENCE_USERS:  # fewer: every device's conformance check refuses it
            raise ConfigError(f"reference_users must be a whole number of at least {MIN_REFERENCE_USERS} (the runtime's "
                              f"conformance minimum, spec §1a; got {self.reference_users!r})")
        return self


def export_bundle(checkpoint: str | Path, data_dir: str | Path, out: str | Path, cfg: ExportConfig | None = None,
                  *, ranker: str | Path | None = None, teacher: str | Path | None = None,
                  content: str | Path | None = None, scorer: str | Path | None = None,
                  progress: Progress | None = None, popularity: PopularityPrior | None = None,
                  allow_unfinished: bool = False) -> Manifest:
    """popularity: a prior for the bundle's popularity list (e.g. estimated from DP device reports)
    instead of the training log's counts. A checkpoint whose training run did not finish (killed) is refused
    (a ConfigError) unless `allow_unfinished`: then its best epoch so far ships, and the manifest
    (`metrics.unfinished_training`), its README and its model card say it is unfinished; an unfinished teacher
    (whose metrics the manifest records) likewise."""
    cfg = (cfg or ExportConfig()).validate()
    say = progress or (lambda _msg: None)
    model, ckpt = load_model(checkpoint)
    if not allow_unfinished:
        refuse_unfinished(checkpoint, "--model", "--allow-unfinished", ckpt.info)
        if teacher is not None:  # its metrics would stand in the manifest as the finished teacher's
            refuse_unfinished(teacher, "--teacher", "--allow-unfinished")
    partial = unfinished_runs(ckpt.info, teacher)
    for who, run in partial.items():
        said = file_name(checkpoint) if who == "model" else f"the teacher {file_name(teacher)}"
        say(f"{said} is an unfinished training run's best epoch so far ({run['best_epoch']})")
    dataset = load_dataset(data_dir)
    if model.item_data.item_ids != dataset.catalog.item_ids:
        raise ModelError(f"{file_name(checkpoint)} was trained on another catalog than {file_name(data_dir)}; export "
                         "with its own data")
    if content is not None:
        content_labels(dataset.catalog)  # refused before any work
    if scorer is not None:
        load_scorer(scorer)  # a damaged scorer.json too (it was read last, after the encoders' export)
    split = leave_last_out(dataset)
    writer = BundleWriter(out, scrub_paths(cfg.name) if cfg.name else Path(out).name)  # a name given as a path: no folders
    with _discarded_on_failure(writer):  # a failed export leaves no hidden staging folder behind
        deployed = model.deploy().eval()
        max_len = model.config.max_len

        # real histories for parity, calibration and conformance references
        history = split.history("test")
        rng = np.random.default_rng(0)
        users = rng.choice(split.test_users, min(cfg.parity_users, len(split.test_users)), replace=False)
        rows = history_rows(history, users, max_len)
        seen = [history.of(u) for u in users]
        with torch.no_grad():
            reference = deployed(torch.as_tensor(rows)).numpy()
            table = model.item_vectors()[1:].numpy()
        stored = StoredTable.quantize(table, cfg.table_dtype)
        bundle_table = stored.dequantize()
        metrics: dict = {"table": compare_vectors(table, bundle_table)}
        if partial:  # in the open metrics section: readers of the manifest (and `inspect`) see it
            metrics["unfinished_training"] = partial

        encoders = {}
        with tempfile.TemporaryDirectory(prefix="edgerec-export-") as scratch:
            scratch = Path(scratch)
            for fmt in cfg.formats:
                say(f"exporting the user encoder to {fmt}")
                entry, encoder = _export_encoder(fmt, deployed, rows, reference, table, seen, max_len, model.config.dim,
                                                 cfg, scratch, writer)
                writer.add_model(entry)
                encoders[fmt] = encoder
            if len(encoders) == 2:  # the two formats must agree on what users see
                vectors = {f: e.encode_rows(rows) for f, e in encoders.items()}
                top = {f: top_k_rows(v, bundle_table, cfg.k, seen) for f, v in vectors.items()}
                metrics["onnx_vs_tflite"] = {"top10_identical_share": float(np.mean(overlap(top["onnx"], top["tflite"]) == 1.0)),
                                             "top10_agreement": float(overlap(top["onnx"], top["tflite"]).mean())}
            if ranker is not None:
                say("exporting the ranker")
                for entry in export_ranker(ranker, checkpoint, model, dataset, split, users, history, cfg, scratch,
                                           writer):
                    writer.add_model(entry)

        if content is not None:
            say("adding the content encoder")
            _add_content(writer, content, dataset, split, table, cfg, say)

        say("writing the item table and metadata")
        log_popularity = train_popularity(split)
        if popularity is not None:
            metrics["popularity_prior"] = popularity.describe()
        hubs = None
        if cfg.hubness:
            say("measuring each item's hubness against the training users")
            hubs = model_hubness(ModelScorer(model, "student"), split.train, bundle_table)
        items = _write_items(writer, dataset.catalog, stored,
                             log_popularity if popularity is None else popularity.for_catalog(dataset.catalog.item_ids),
                             hubs)
        # what the device's drift monitor compares with: the shipped encoder's top scores on these users
        shipped = next(iter(encoders.values()))
        metrics["monitoring"] = score_baseline(shipped.encode_rows(rows), bundle_table, seen)
        # conformance runs on synthetic sessions: no real user's history is sent to every device
        ref_rows = synthetic_histories(log_popularity, dataset.catalog.text["genre"], cfg.reference_users, max_len)
        with torch.no_grad():
            ref_vectors = deployed(torch.as_tensor(ref_rows)).numpy()
        reference_files = _write_reference(writer, ref_rows, ref_vectors, bundle_table, cfg.k, encoders)
        if cfg.evaluate:
            say("measuring test metrics")
            metrics.update(_model_metrics(model, ckpt.info, dataset, split, teacher, bundle_table))
        training = {k: v for k, v in ckpt.info.items() if k != "history"}
        if "SOURCE_DATE_EPOCH" in os.environ:  # a reproducible build (the golden bundle): no wall-clock figures
            training.pop("train_seconds", None)
        writer.add_json("model_card.json", scrub_paths({
            "checkpoint": Path(checkpoint).name, "config": model.config.to_dict(),
            "training": training, "export": asdict(cfg)}))
        _write_card(writer, model, ckpt.info, metrics, cfg, dataset, partial)
        ranking = {}
        if cfg.priors or scorer is not None:
            say("writing the ranking section (context priors, interpretable scorer)")
            ranking = ranking_section(writer, dataset, split, checkpoint, scorer)
            if not cfg.priors:
                ranking = {"scorer": ranking["scorer"]}
        return writer.finish(
            ranking=ranking,
            dim=model.config.dim, items=items,
            defaults={"k": cfg.k, "history_length": max_len, "diversity": 0.0, "short_list": cfg.short_list,
                      **({} if cfg.cold_max_per_creator is None else {"cold_max_per_creator": cfg.cold_max_per_creator}),
                      **replay_defaults(dataset)},
            metrics=metrics, budgets=cfg.budgets, reference=reference_files,
            data_version={"source": public_source(dataset.meta), "users": dataset.n_users,
                          "items": dataset.n_items, "events": len(dataset.interactions),
                          "last_event": int(dataset.interactions.timestamp.max()) if len(dataset.interactions) else 0},
        )


@contextmanager
def _discarded_on_failure(writer: BundleWriter):
    try:
        yield
    except BaseException:
        writer.staging.discard()
        raise


def _export_encoder(fmt, deployed, rows, reference, table, seen, max_len, dim, cfg, scratch, writer):
    """Export (on the int8 grid for weight-only int8), check the export, quantize, check again."""
    mode = cfg.quantize
    module = fake_quantize(deployed) if mode == "int8" else deployed
    raw = scratch / f"user_encoder.float.{fmt}"
    final_name = f"user_encoder.{fmt}"
    if fmt == "onnx":
        export_onnx(module, {"ids": torch.as_tensor(rows[:2])}, {"ids": {0: "batch", 1: "history"}},
                    ["user_vector"], raw, max_sizes={"history": max_len})
        inputs = [TensorSpec("ids", "int64", ["batch", "history"])]
        outputs = [TensorSpec("user_vector", "float32", ["batch", dim])]
    else:
        export_tflite(module, (torch.as_tensor(rows[:1]),), raw)
        inputs = [TensorSpec("ids", "int32", [1, max_len])]
        outputs = [TensorSpec("user_vector", "float32", [1, dim])]
    entry = ModelEntry("user_encoder", fmt, final_name, inputs, outputs, quantization=MODE_LABEL[mode],
                       history_length=max_len if fmt == "tflite" else None, batch=1 if fmt == "tflite" else None)
    with torch.no_grad():
        expected = module(torch.as_tensor(rows)).numpy()
    produced = UserEncoder(open_backend(raw, fmt), entry, max_len).encode_rows(rows)
    parity = {"export": check(compare_vectors(expected, produced, table, seen), f"{fmt} export of the user encoder",
                              max_abs_diff=FP32_TOLERANCE)}
    final = writer.file_path(final_name)
    entry.extra = {"float_bytes": raw.stat().st_size}
    if fmt == "onnx":
        calibration = [{"ids": rows[i:i + 32]} for i in range(0, min(len(rows), 256), 32)]
        quantize_onnx(raw, final, mode, calibration)
        if mode == "int8":
            entry.extra["session_config"] = WEIGHT_ONLY_SESSION_CONFIG
    else:
        quantize_tflite(raw, final, mode)
    encoder = UserEncoder(open_model(final, entry), entry, max_len)
    # the shipped file against the unquantized PyTorch model, on the same real histories
    parity[MODE_LABEL[mode]] = check(compare_vectors(reference, encoder.encode_rows(rows), table, seen),
                                     f"{fmt} {mode} user encoder",
                                     min_agreement=cfg.min_top10_agreement if mode != "none" else None,
                                     max_abs_diff=FP32_TOLERANCE if mode == "none" else None)
    entry.parity = parity
    return entry, encoder


def _write_items(writer: BundleWriter, catalog: Catalog, stored: StoredTable, popularity,
                 hubness: np.ndarray | None = None) -> ItemTableSpec:
    """The item table and its metadata columns, written through the manifest's item section."""
    text = catalog.text
    strings = {"ids": catalog.item_ids, "titles": text["title"], "tags": ["|".join(t) for t in catalog.tags]}
    numeric = {"duration": catalog.duration, "release_ts": catalog.release_ts, "episode": catalog.episode,
               "popularity": popularity}
    if hubness is not None:  # float16 steps (~5e-4) are ample for a penalty: 2 bytes an item once narrowed
        numeric["hubness"] = np.asarray(hubness, np.float16).astype(np.float32)
    return ItemTableSpec(
        count=len(catalog), embeddings=TableSpec.from_manifest(stored.manifest_entry(writer)),
        **write_text(writer, strings),
        categorical={name: ColumnSpec.write_categorical(writer, name, text[name],
                                                        list(MODALITIES) if name == "modality" else [])
                     for name in ("modality", "language", "genre", "creator", "provider", "series_id")},
        numeric={name: ColumnSpec.write_numeric(writer, name, values) for name, values in numeric.items()},
    )


def _write_reference(writer, rows, vectors, table, k: int, encoders: dict) -> dict:
    seen = [r[r > 0] - 1 for r in rows]  # what a device knows: the stored history rows
    top = top_k_rows(vectors, table, k, seen)
    return {
        "histories": writer.add_array("reference/histories.npy", rows.astype(np.int64)),
        "user_vectors": writer.add_array("reference/user_vectors.npy", vectors.astype(np.float32)),
        "top_k": writer.add_array("reference/top_k.npy", top.astype(np.int64)),
        "k": k,
        "note": "histories are model rows (item index + 1), left-padded with 0; top_k excludes the items in them",
        "tolerance": reference_tolerance(encoders, rows, vectors, table, top, seen),
    }


def reference_tolerance(encoders: dict, rows, vectors, table, top, seen) -> dict:
    """What a device's engine must reproduce: each shipped file's own figures on the references, less a
    margin for another CPU's kernels (cosine 0.005, agreement 0.05), never looser than 0.98 / 0.8. A fixed
    0.98 / 0.8 passed encoders that ignore the order of the history (0.89 agreement; genuine files 0.98-1)."""
    cosine, agreement = 1.0, 1.0
    for encoder in encoders.values():
        got = encoder.encode_rows(rows)
        cosine = min(cosine, float(row_cosines(got, vectors).min()))
        agreement = min(agreement, float(overlap(top_k_rows(got, table, top.shape[1], seen), top).mean()))
    def down(value: float, places: int) -> float:  # rounded down, past float noise (0.99999999 - 0.005)
        return math.floor(round(value * 10**places, 6)) / 10**places

    return {"cosine_min": max(0.98, down(cosine - 0.005, 3)),
            "top_k_agreement": max(0.8, min(0.95, down(agreement - 0.05, 2)))}


def _model_metrics(model, info: dict, dataset: Dataset, split: Split, teacher, bundle_table) -> dict:
    evaluator = Evaluator(split, dataset.catalog)
    scorer = ModelScorer(model, "student")
    out = {"student": _brief(evaluator.evaluate(scorer), model, info)}
    scorer._items = bundle_table  # the same model scored against the quantized table it ships with
    out["student_with_bundle_table"] = _brief(evaluator.evaluate(scorer), model, info)
    if teacher is not None:
        teacher_model, teacher_ckpt = load_model(teacher)
        out["teacher"] = _brief(evaluator.evaluate(ModelScorer(teacher_model, "teacher")), teacher_model,
                                teacher_ckpt.info)
    return out


def _brief(result: dict, model, info: dict) -> dict:
    keep = ("HR@10", "NDCG@10", "MRR@10", "coverage@10")
    return {**{k: result[k] for k in keep}, "parameters": int(sum(p.numel() for p in model.parameters())),
            "train_seconds": info.get("train_seconds")}


def unfinished_runs(info: dict, teacher: str | Path | None) -> dict:
    """{"model": {"best_epoch": N}, "teacher": ...}: the checkpoints of an export (the model, a teacher whose
    metrics it records) that an unfinished training run wrote (its best epoch so far); {} when none."""
    out = {}
    if unfinished(info):
        out["model"] = {"best_epoch": int(info.get("best_epoch") or 0)}
    if teacher is not None:
        teacher_info = read_config(teacher)[1].get("info", {})
        if unfinished(teacher_info):
            out["teacher"] = {"best_epoch": int(teacher_info.get("best_epoch") or 0)}
    return out


def unfinished_lines(partial: dict) -> list[str]:
    """What a bundle's README and `inspect` say of an export's unfinished checkpoints (`unfinished_runs`)."""
    return [f"{'' if who == 'model' else who + ': '}unfinished training run (best epoch {run.get('best_epoch')}): "
            "its best epoch so far, exported with --allow-unfinished" for who, run in partial.items()
            if isinstance(run, dict)]


def _write_card(writer, model, info, metrics, cfg, dataset, partial: dict | None = None) -> None:
    best = info.get("val_NDCG@10")
    lines = [
        f"# {writer.name}", "",
        f"A {model.config.arch} user encoder (dim {model.config.dim}, {model.config.layers} block(s), history "
        f"{model.config.max_len}) over {dataset.n_items:,} items, exported by edgerec.", "",
        *[f"- {line}" for line in unfinished_lines(partial or {})],
        f"- formats: {', '.join(cfg.formats)}; quantization: {cfg.quantize}; item table: {cfg.table_dtype}",
        f"- trained on: {public_source(dataset.meta)} ({dataset.n_users:,} users, "
        f"{len(dataset.interactions):,} events)",
        f"- parameters: {sum(p.numel() for p in model.parameters()):,}"
        + (f"; best validation NDCG@10: {best:.4f}" if isinstance(best, (int, float)) else ""),
    ]
    for who in ("teacher", "student", "student_with_bundle_table"):
        if who in metrics:
            m = metrics[who]
            lines.append(f"- {who}: NDCG@10 {m['NDCG@10']:.4f}, HR@10 {m['HR@10']:.4f}")
    lines += ["", "Intended use: on-device ranking of the catalog above. Histories stay on the device.",
              "Limits: items added later need vectors from the bundle's content encoder (if any) or the host."]
    writer.file_path("README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    writer.add_file("README.md")


def _add_content(writer: BundleWriter, content_dir, dataset: Dataset, split: Split, table: np.ndarray,
                 cfg: ExportConfig, say: Progress) -> None:
    from edgerec.compress.content_distill import load_student
    from edgerec.export.content import add_content_to_bundle, projection_items, usable_labels
    from edgerec.models.content import item_texts, load_tokenizer

    student, config = load_student(content_dir)
    tokenizer = load_tokenizer(content_dir, 48)
    label_sets, notes = usable_labels(tokenizer, content_labels(dataset.catalog))
    for note in notes:
        say(note)
    fit_rows = projection_items(train_popularity(split))
    mode = "none" if cfg.quantize == "int8-static" else cfg.quantize
    add_content_to_bundle(writer, student, Path(content_dir), tokenizer, item_texts(dataset.catalog), table,
                          fit_rows, label_sets, cfg.formats, mode)


def content_labels(catalog) -> dict[str, list[str]]:
    """The zero-shot label sets a content encoder may ship with: the catalog's genres, moods and 300 commonest
    tags (the sets it has; export.content.usable_labels keeps those of two names or more). A catalog without
    any such set is refused: the device's content encoder tags with them, and a set of one value would give
    every text that value."""
    from collections import Counter

    tag_counts = Counter(t for tags in catalog.tags for t in tags)
    sets = {"genre": sorted({g for g in catalog.text["genre"] if g}), "mood": sorted({m for m in catalog.text["mood"] if m}),
            "tag": [t for t, _ in tag_counts.most_common(300)]}
    if not any(len(v) >= 2 for v in sets.values()):
        raise DataError("a content encoder needs labels to tag with: a genre, mood or tag that takes at least two "
                        "different values over the items, and this catalog has none; import an item table with "
                        "one (--items), or export without --content")
    return {k: v for k, v in sets.items() if v}
