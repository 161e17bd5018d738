"""The demo's build steps, each a `Study`: synthesize, train, distill, train the ranker, export.

They share the study interface so the demo is one list run in order; their
records say what was built (sizes, validation figures, seconds), and what
they build lands in files the later studies read.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgerec.data.synth import SynthConfig
from edgerec.models.config import ModelConfig
from edgerec.models.ranker import RankerConfig
from edgerec.models.train import TrainConfig
from edgerec.studies.base import Progress, Study, Table, epoch_lines, say

TRAINED = ("parameters", "val_NDCG@10", "val_NDCG@10_popular", "warning", "train_seconds", "epochs_run")


def _trained(info: dict, progress: Progress, who: str) -> dict:
    """A training step's record; its warning (a model below popularity) said as the step ends too."""
    if info["warning"]:
        progress(f"{who}: {info['warning']}", {})
    return {k: info[k] for k in TRAINED}


def _data(data_dir: Path):
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset

    dataset = load_dataset(data_dir)
    return dataset, leave_last_out(dataset)


@dataclass
class SynthStep(Study):
    """The embedded default catalog, written to `out`."""

    name = "data"
    synth: SynthConfig
    out: Path

    def measure(self, progress: Progress) -> dict:
        from edgerec.data.stats import dataset_stats
        from edgerec.data.store import load_dataset
        from edgerec.data.synth import write_synth

        summary = write_synth(self.synth, self.out)
        summary.pop("path", None)  # no host paths in reports
        stats = dataset_stats(load_dataset(self.out))
        progress("synthetic catalog", {k: summary[k] for k in ("users", "items", "events", "seconds")})
        return {**summary, **{k: v for k, v in stats.items() if not isinstance(v, dict)}}


@dataclass
class DataStep(Study):
    """The user's own data folder (`edgerec data import` output), checked and copied to `out`, so
    the run reads one fixed copy and never writes next to the user's files."""

    name = "data"
    source: Path
    out: Path

    def measure(self, progress: Progress) -> dict:
        from edgerec.data.stats import dataset_stats
        from edgerec.data.store import load_dataset, save_dataset

        began = time.perf_counter()
        dataset = load_dataset(self.source)  # a DataError saying what is wrong, before any training
        save_dataset(dataset, self.out)
        stats = {k: v for k, v in dataset_stats(dataset).items() if not isinstance(v, dict)}
        summary = {"users": dataset.n_users, "items": dataset.n_items, "events": len(dataset.interactions),
                   "seconds": round(time.perf_counter() - began, 1)}
        progress("your data", summary)
        return {**summary, **stats}


@dataclass
class TeacherStep(Study):
    """A large sequential recommender trained on the data."""

    name = "teacher"
    data_dir: Path
    out: Path
    model: ModelConfig
    train: TrainConfig

    def measure(self, progress: Progress) -> dict:
        from edgerec.models.train import train_model

        dataset, split = _data(self.data_dir)
        result = train_model(dataset, split, self.model, self.train, out=self.out,
                             progress=epoch_lines(progress, "teacher"))
        return _trained(result.info, progress, "teacher")


@dataclass
class StudentStep(Study):
    """A small student distilled from the teacher."""

    name = "student"
    data_dir: Path
    teacher: Path
    out: Path
    model: ModelConfig
    train: TrainConfig

    def measure(self, progress: Progress) -> dict:
        from edgerec.compress.distill import DistillConfig, distill_model
        from edgerec.models.checkpoint import load_model

        dataset, split = _data(self.data_dir)
        teacher, _ = load_model(self.teacher)
        result = distill_model(dataset, split, teacher, self.model, self.train, DistillConfig(), out=self.out,
                               progress=epoch_lines(progress, "student"))
        return _trained(result.info, progress, "student")


@dataclass
class RankerStep(Study):
    """A ranker for the student; its checkpoint records whether it helps on validation."""

    name = "ranker"
    data_dir: Path
    retrieval: Path
    out: Path
    config: RankerConfig = field(default_factory=RankerConfig)

    def measure(self, progress: Progress) -> dict:
        from edgerec.models.ranker_recipe import fit_ranker

        dataset, split = _data(self.data_dir)
        info = fit_ranker(dataset, split, self.retrieval, self.out, self.config, phases=("val", "test"),
                          progress=say(progress))
        validation = info["validation"]
        progress("ranker", {"val NDCG@10 retrieval": validation["NDCG@10 retrieval only"],
                            "val NDCG@10 re-ranked": validation["NDCG@10 with ranker"], "ships": info["ships"]})
        return {k: info[k] for k in ("groups", "skips", "ships", "validation", "test")}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        rows = [{"phase": phase, **{k: v for k, v in record[phase].items() if k != "phase"}}
                for phase in ("validation", "test")]
        verdict = "ships in the bundle" if record["ships"] else "does not help on validation: not shipped"
        return [Table(f"ranker ({verdict})", rows)]


@dataclass
class ExportStep(Study):
    """The int8 bundle (ONNX + TFLite, with the ranker when it helps) and an fp32 ONNX bundle to compare."""

    name = "export"
    student: Path
    data_dir: Path
    out: Path
    out_fp32: Path
    ranker: Path | None = None  # shipped only if its checkpoint says it helps
    teacher: Path | None = None
    scorer: Path | None = None  # the interpretable scorer, shipped beside (or instead of) the ranker

    def measure(self, progress: Progress) -> dict:
        from edgerec.export.bundle_builder import ExportConfig, export_bundle
        from edgerec.models.checkpoint import load_checkpoint
        from edgerec.runtime.bundle import Bundle

        # the step's own bundles an unfinished run of it published (`demo --resume` after a kill between the two
        # exports was refused: "bundle exists and is not empty"): exported anew, the step's record with them
        remove_own_bundle(self.out, INT8_NAME)
        remove_own_bundle(self.out_fp32, FP32_NAME)
        ranker = self.ranker if self.ranker and load_checkpoint(self.ranker).info.get("ships") else None
        manifest = export_bundle(self.student, self.data_dir, self.out, ExportConfig(name=INT8_NAME),
                                 ranker=ranker, teacher=self.teacher, scorer=self.scorer)
        export_bundle(self.student, self.data_dir, self.out_fp32,
                      ExportConfig(formats=("onnx",), quantize="none", table_dtype="fp32", evaluate=False,
                                   name=FP32_NAME))
        size = Bundle.open(self.out).size_bytes()
        files = manifest.files
        model_bytes = sum(files[f]["bytes"] for f in files
                          if f.startswith(("user_encoder", "ranker", "items/embeddings", "items/scales")))
        record = {"bytes": size, "model_and_table_bytes": model_bytes,
                  "models": [{"file": m.file, "quantization": m.quantization, "bytes": files[m.file]["bytes"]}
                             for m in manifest.models],
                  "onnx_vs_tflite": manifest.metrics.get("onnx_vs_tflite"),
                  "metrics": {k: v for k, v in manifest.metrics.items() if isinstance(v, dict) and "NDCG@10" in v}}
        progress("bundle", {"bytes": size, "onnx vs tflite identical top-10":
                            manifest.metrics["onnx_vs_tflite"]["top10_identical_share"]})
        return record

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        metrics = record["metrics"]
        rows = [{"model": who, **{k: metrics[who].get(k) for k in ("HR@10", "NDCG@10", "MRR@10", "coverage@10",
                                                                   "parameters", "train_seconds")}}
                for who in metrics]
        return [Table("teacher vs distilled student (test, full ranking)", rows),
                Table(f"bundle: {record['bytes']:,} bytes", record["models"])]


INT8_NAME, FP32_NAME = "demo-student-int8", "demo-student-fp32"  # the names ExportStep gives its bundles


REMOVING = ".removing"  # the suffix of a bundle folder renamed aside to be deleted


def remove_own_bundle(folder: Path, name: str) -> None:
    """Remove `folder` when it holds the bundle named `name` (a step's own: a bundle is published whole, with its
    manifest); anything else there (another bundle, a user's files) is left for the export to refuse. The bundle
    is first renamed aside in one step, then deleted: a kill while deleting it in place left a folder without its
    manifest that the next resume no longer knew as its own, and the export refused. Such renamed leftovers of
    an earlier removal are deleted here too."""
    import json
    import shutil

    from edgerec.runtime.atomic import temporary
    from edgerec.runtime.bundle import MANIFEST

    folder = Path(folder)
    for leftover in folder.parent.glob(f".{glob.escape(folder.name)}.*{REMOVING}"):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not (isinstance(manifest, dict) and manifest.get("name") == name):
        return
    aside = temporary(folder, REMOVING)
    try:
        os.replace(folder, aside)
    except OSError:  # a mount point, no permission: left for the export to refuse, naming the folder
        return
    shutil.rmtree(aside, ignore_errors=True)
