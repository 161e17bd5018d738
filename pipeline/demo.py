"""`edgerec demo`: the whole pipeline on the embedded default catalog.

synthetic catalog -> baselines -> teacher -> distilled student -> ranker ->
bundle (ONNX + TFLite, int8) -> compression report -> on-device replay ->
benchmark -> one report (table, report.json, plots). Each step is a function
of the run folder and the results so far; progress is shown as it goes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgerec.data.synth import SynthConfig
from edgerec.errors import ConfigError
from edgerec.models.config import ModelConfig
from edgerec.models.train import TrainConfig


@dataclass
class DemoConfig:
    out: Path = Path("runs/demo")
    quick: bool = False
    seed: int = 0
    synth: SynthConfig = field(default_factory=SynthConfig)
    baselines: tuple[str, ...] = ("popular", "trending", "itemknn", "userknn", "content", "hybrid")
    teacher: ModelConfig = field(default_factory=lambda: ModelConfig(dim=256, layers=2, heads=2, max_len=50))
    teacher_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=5, patience=2))
    student: ModelConfig = field(default_factory=lambda: ModelConfig(dim=32, layers=2, heads=1, max_len=50,
                                                                      own_rows=6000, hash_buckets=2000))
    student_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=12, patience=2))
    replay_users: int = 300
    bench_profile: str = "phone-mid"
    bench_items: int | None = 100_000

    @classmethod
    def make(cls, out: str | Path, quick: bool = False, seed: int = 0) -> DemoConfig:
        if not quick:
            return cls(out=Path(out), seed=seed, synth=SynthConfig(seed=seed))
        return cls(
            out=Path(out), quick=True, seed=seed,
            synth=SynthConfig(users=1_500, items=5_000, events=100_000, seed=seed),
            baselines=("popular", "itemknn", "content"),
            teacher=ModelConfig(dim=64, layers=2, heads=2, max_len=30),
            teacher_train=TrainConfig(epochs=4, patience=2, eval_users=500),
            student=ModelConfig(dim=16, layers=1, heads=1, max_len=30, own_rows=1500, hash_buckets=500),
            student_train=TrainConfig(epochs=6, patience=2, eval_users=500),
            replay_users=100, bench_items=None,
        )


Reporter = Callable[[str, dict], None]


def _data(cfg):
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset

    dataset = load_dataset(cfg.out / "data")
    return dataset, leave_last_out(dataset)


def step_data(cfg: DemoConfig, results: dict, report: Reporter) -> None:
    from edgerec.data.stats import dataset_stats
    from edgerec.data.store import load_dataset
    from edgerec.data.synth import write_synth

    summary = write_synth(cfg.synth, cfg.out / "data")
    stats = dataset_stats(load_dataset(cfg.out / "data"))
    results["data"] = {**summary, **{k: v for k, v in stats.items() if not isinstance(v, dict)}}
    report("synthetic catalog", {k: summary[k] for k in ("users", "items", "events", "seconds")})


def step_baselines(cfg: DemoConfig, results: dict, report: Reporter) -> None:
    from edgerec.models.baselines import make_baseline
    from edgerec.models.evaluation import Evaluator

    dataset, split = _data(cfg)
    evaluator = Evaluator(split, dataset.catalog)
    rows = []
    for name in cfg.baselines:
        began = time.perf_counter()
        row = evaluator.evaluate(make_baseline(name, dataset, split))
        row["seconds"] = round(time.perf_counter() - began, 1)
        rows.append(row)
        report(f"baseline {name}", {k: row[k] for k in ("HR@10", "NDCG@10")})
    results["baselines"] = rows


def _progress(report: Reporter, who: str):
    def on(kind, done, total, record):
        if kind == "epoch":
            report(f"{who} epoch {record['epoch']}", {"loss": record["loss"], "val NDCG@10": record["val_NDCG@10"]})
    return on


def step_teacher(cfg: DemoConfig, results: dict, report: Reporter) -> None:
    from edgerec.models.train import train_model

    dataset, split = _data(cfg)
    result = train_model(dataset, split, cfg.teacher, cfg.teacher_train, out=cfg.out / "teacher",
                         progress=_progress(report, "teacher"))
    results["teacher"] = {k: result.info[k] for k in ("parameters", "val_NDCG@10", "train_seconds", "epochs_run")}


def step_student(cfg: DemoConfig, results: dict, report: Reporter) -> None:
    from edgerec.compress.distill import DistillConfig, distill_model
    from edgerec.models.checkpoint import load_model

    dataset, split = _data(cfg)
    teacher, _ = load_model(cfg.out / "teacher")
    result = distill_model(dataset, split, teacher, cfg.student, cfg.student_train, DistillConfig(),
                           out=cfg.out / "student", progress=_progress(report, "student"))
    results["student"] = {k: result.info[k] for k in ("parameters", "val_NDCG@10", "train_seconds", "epochs_run")}


def step_ranker(cfg: DemoConfig, results: dict, report: Reporter) -> None:
    """Train a ranker for the student; it ships only if it improves validation NDCG@10."""
    from edgerec.models.checkpoint import load_model
    from edgerec.models.evaluation import train_popularity
    from edgerec.models.persist import save_ranker
    from edgerec.models.ranker import (
        RankerConfig,
        build_training_set,
        item_table,
        ranker_gain,
        train_ranker,
    )
    from edgerec.models.scoring import ModelScorer

    dataset, split = _data(cfg)
    student, _ = load_model(cfg.out / "student")
    table = item_table(dataset.catalog, train_popularity(split))
    ranker_cfg = RankerConfig(events_per_user=10 if cfg.quick else 20, epochs=4, seed=cfg.seed)
    examples = build_training_set(dataset, split, ModelScorer(student), table, ranker_cfg)
    ranker, info = train_ranker(examples, ranker_cfg)
    validation = ranker_gain(dataset, split, ModelScorer(student), ranker, table, "val")
    test = ranker_gain(dataset, split, ModelScorer(student), ranker, table, "test")
    info["validation"] = validation
    save_ranker(cfg.out / "ranker", ranker, cfg.out / "student", info)
    ships = validation["NDCG@10 with ranker"] > validation["NDCG@10 retrieval only"]
    results["ranker"] = {"groups": info["groups"], "skips": info["skips"], "ships": ships,
                         "validation": validation, "test": test}
    report("ranker", {"val NDCG@10 retrieval": validation["NDCG@10 retrieval only"],
                      "val NDCG@10 re-ranked": validation["NDCG@10 with ranker"], "ships": ships})


def step_export(cfg: DemoConfig, results: dict, report: Reporter) -> None:
    from edgerec.export.bundle_builder import ExportConfig, export_bundle
    from edgerec.runtime.bundle import Bundle

    ranker = cfg.out / "ranker" if results.get("ranker", {}).get("ships") else None
    manifest = export_bundle(cfg.out / "student", cfg.out / "data", cfg.out / "bundle",
                             ExportConfig(name="demo-student-int8"), ranker=ranker, teacher=cfg.out / "teacher")
    export_bundle(cfg.out / "student", cfg.out / "data", cfg.out / "bundle-fp32",
                  ExportConfig(formats=("onnx",), quantize="none", table_dtype="fp32", evaluate=False,
                               name="demo-student-fp32"))
    size = Bundle.open(cfg.out / "bundle").size_bytes()
    model_bytes = sum(manifest.files[f]["bytes"] for f in manifest.files
                      if f.startswith(("user_encoder", "ranker", "items/embeddings", "items/scales")))
    results["bundle"] = {"bytes": size, "model_and_table_bytes": model_bytes,
                         "models": [{"file": m.file, "quantization": m.quantization,
                                     "bytes": manifest.files[m.file]["bytes"]} for m in manifest.models],
                         "onnx_vs_tflite": manifest.metrics.get("onnx_vs_tflite"),
                         "metrics": {k: v for k, v in manifest.metrics.items() if isinstance(v, dict) and "NDCG@10" in v}}
    report("bundle", {"bytes": size, "onnx vs tflite identical top-10": manifest.metrics["onnx_vs_tflite"]["top10_identical_share"]})


def step_compression(cfg: DemoConfig, results: dict, report: Reporter) -> None:
    from edgerec.export.report import compression_report, plot_pareto

    result = compression_report(cfg.out / "teacher", cfg.out / "student", cfg.out / "data")
    (cfg.out / "compression.json").write_text(json.dumps(result, indent=2))
    plot_pareto(result, cfg.out / "compression.png")
    results["compression"] = result["variants"]
    for row in result["variants"]:
        report(row["variant"], {k: row[k] for k in ("bytes", "NDCG@10", "encoder_p50_ms")})


def step_replay(cfg: DemoConfig, results: dict, report: Reporter) -> None:
    """Play held-out users' histories into the on-device runtime, then ask it for their next item."""
    from edgerec.runtime import Recommender

    dataset, split = _data(cfg)
    log = dataset.interactions
    history = split.history("test")
    events = ("play", "finish", "skip", "like")
    rng = np.random.default_rng(cfg.seed)
    picked = rng.choice(len(split.test_users), min(cfg.replay_users, len(split.test_users)), replace=False)
    hits, latencies, example = 0, [], None
    with Recommender.open(cfg.out / "bundle", history=cfg.out / "device" / "history.db") as rec:
        for row in picked:
            user = int(split.test_users[row])
            name = dataset.user_ids[user]
            mask = (log.user == user) & split.train_events
            for e in np.flatnonzero(mask)[-60:]:
                rec.record(name, dataset.catalog.item_ids[log.item[e]], events[log.event[e]],
                           timestamp=float(log.timestamp[e]))
            for item in history.of(user)[-1:]:  # the validation item, as the device saw it
                rec.record(name, dataset.catalog.item_ids[item], "finish")
            target = dataset.catalog.item_ids[split.test_items[row]]
            context = {"now": float(split.test_times[row]), "device": "tv"}
            began = time.perf_counter()
            listed = rec.recommend(name, k=10, context=context)
            latencies.append((time.perf_counter() - began) * 1e3)
            hits += target in [r.item_id for r in listed]
            if example is None:
                example = {"user": name, "recommendations": [
                    {"item": r.item_id, "title": r.title, "why": r.reason.text} for r in listed[:5]]}
        stats = rec.stats()
    results["replay"] = {"users": len(picked), "HR@10": hits / len(picked),
                         "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
                         "example": example, "fallbacks": {k: v for k, v in stats["counters"].items() if "fallback" in k}}
    report("on-device replay", {k: results["replay"][k] for k in ("users", "HR@10", "p50_ms", "p99_ms")})


def step_bench(cfg: DemoConfig, results: dict, report: Reporter) -> None:
    from edgerec.device_tests.bench import BenchConfig, run_bench, summary
    from edgerec.device_tests.plots import plot_bench
    from edgerec.device_tests.profiles import get_profile

    profile = get_profile(cfg.bench_profile)
    result = run_bench(cfg.out / "bundle", profile,
                       BenchConfig(requests=300, items=cfg.bench_items, compare=[str(cfg.out / "bundle-fp32")]))
    plot_bench(result, cfg.out / "bench.png")
    (cfg.out / "bench.json").write_text(json.dumps(summary(result), indent=2))
    slim = summary(result)
    results["bench"] = {"profile": profile.name, "items": slim["items"], "passed": slim["passed"],
                        "failures": slim["failures"], "peak_rss_mb": slim["peak_rss_mb"],
                        "runs": [{"backend": r["backend"], "open_ms": r["open_ms"], **r["end_to_end"],
                                  "p99_after_event_ms": r["after_event"]["p99_ms"]} for r in slim["runs"]],
                        "encoders": slim["encoders"], "retrieval": slim["retrieval"]}
    for run in slim["runs"]:
        report(f"bench {run['backend']}", {"p50_ms": run["end_to_end"]["p50_ms"], "p99_ms": run["end_to_end"]["p99_ms"]})


def _finished_run(out: Path, config: dict) -> dict | None:
    """The results of an earlier run in `out` with the same settings, or None."""
    try:
        results = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        return None
    same = {k: v for k, v in results.get("config", {}).items() if k != "out"} == {
        k: v for k, v in config.items() if k != "out"}  # the folder may be named differently now
    if not same:
        raise ConfigError(f"{out} holds a demo run with other settings; use another --out or drop --resume")
    return results


STEPS: tuple[tuple[str, Callable], ...] = (
    ("data", step_data),
    ("baselines", step_baselines),
    ("teacher", step_teacher),
    ("student", step_student),
    ("ranker", step_ranker),
    ("export", step_export),
    ("compression", step_compression),
    ("replay", step_replay),
    ("bench", step_bench),
)


def run_demo(cfg: DemoConfig, report: Reporter, on_step: Callable[[str, int, int], None] | None = None,
             resume: bool = False) -> dict:
    """Run every step; results (and the timing of each step) go to `out/report.json`.

    `resume` keeps the finished steps of an earlier run with the same settings
    in `out` and runs the rest (e.g. after the bench failed or was interrupted).
    """
    config = json.loads(json.dumps(asdict(cfg), default=str))
    results = _finished_run(cfg.out, config) if resume else None
    if results is None:
        if cfg.out.exists() and any(cfg.out.iterdir()):
            import shutil

            shutil.rmtree(cfg.out)  # a demo run starts clean
        results = {"config": config, "timings": {}}
    cfg.out.mkdir(parents=True, exist_ok=True)
    for index, (name, step) in enumerate(STEPS):
        if name in results["timings"]:
            continue
        if on_step:
            on_step(name, index, len(STEPS))
        began = time.perf_counter()
        step(cfg, results, report)
        results["timings"][name] = round(time.perf_counter() - began, 1)
        (cfg.out / "report.json").write_text(json.dumps(results, indent=2, default=str))
    results["timings"].pop("total", None)
    results["timings"]["total"] = round(sum(results["timings"].values()), 1)
    (cfg.out / "report.json").write_text(json.dumps(results, indent=2, default=str))
    return results
