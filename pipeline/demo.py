"""`edgerec demo`: the whole pipeline on the embedded default catalog, as a list of studies.

synthetic catalog -> baselines -> teacher -> distilled student -> ranker ->
bundle (ONNX + TFLite, int8) -> compression -> on-device replay -> newcomers -> benchmark -> privacy (encrypted history,
DP popularity prior) -> federated rounds (FedAvg, DP-FedAvg, personal vectors) -> cross-domain transfer
-> one report (tables, report.json, plots). Each step is a `Study` built
from the config; they run in order, each record goes into `report.json` as
soon as it is done, and `resume` skips the steps an earlier run finished.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from edgerec.data.synth import SynthConfig
from edgerec.device_tests.bench import BenchConfig
from edgerec.errors import ConfigError
from edgerec.federated.server import ServerConfig
from edgerec.models.config import ModelConfig
from edgerec.models.ranker import RankerConfig
from edgerec.models.train import TrainConfig
from edgerec.pipeline.experiment_steps import TeacherBundleStep
from edgerec.pipeline.ranking_steps import ScorerStep
from edgerec.pipeline.steps import (
    DataStep,
    ExportStep,
    RankerStep,
    StudentStep,
    SynthStep,
    TeacherStep,
)
from edgerec.runtime.atomic import write_file
from edgerec.studies.base import Progress, Study, StudyResult
from edgerec.studies.baselines import BaselinesStudy
from edgerec.studies.bench import BenchStudy
from edgerec.studies.compression import CompressionStudy
from edgerec.studies.experiments import BundleComparisonStudy
from edgerec.studies.explain import ExplainStudy
from edgerec.studies.fairness import FairnessStudy
from edgerec.studies.fed_world import WorldConfig
from edgerec.studies.federated import FederatedStudy
from edgerec.studies.newcomers import NewcomerStudy
from edgerec.studies.privacy import PrivacyStudy
from edgerec.studies.replay import ReplayStudy
from edgerec.studies.simulator import Arm, SimConfig
from edgerec.studies.transfer import TransferStudy

QUICK_MINUTES = 5.0  # each training's time cap in `demo --data D --quick`


@dataclass
class DemoConfig:
    out: Path = Path("runs/demo")
    quick: bool = False
    seed: int = 0
    data: Path | None = None  # the user's own data folder instead of the synthetic catalog
    synth: SynthConfig | None = field(default_factory=SynthConfig)  # None with `data`
    baselines: tuple[str, ...] = ("popular", "trending", "itemknn", "userknn", "content", "hybrid")
    teacher: ModelConfig = field(default_factory=lambda: ModelConfig(dim=256, layers=2, heads=2, max_len=50))
    teacher_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=5, patience=2))
    student: ModelConfig = field(default_factory=lambda: ModelConfig(dim=32, layers=2, heads=1, max_len=50,
                                                                      own_rows=6000, hash_buckets=2000))
    student_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=12, patience=2))
    replay_users: int = 300
    experiment: SimConfig = field(default_factory=lambda: SimConfig(users=150, days=4, pre_days=3))
    bench_profile: str = "phone-mid"
    bench_items: int | None = 100_000
    # the federated rounds: a small v1 and upper bound of their own (the demo's bundle saw every event)
    federated: WorldConfig = field(default_factory=lambda: WorldConfig(
        max_devices=600, model=ModelConfig(dim=32, layers=1, heads=1, max_len=30)))
    federated_server: ServerConfig = field(default_factory=ServerConfig)
    federated_epsilons: tuple[float, ...] = (1.0, 4.0, 8.0)
    # transfer study: the demo world, and coupled worlds of this size (the transfer's ground truth)
    transfer_world: SynthConfig | None = field(  # None with `data`: no transfer study
        default_factory=lambda: SynthConfig(users=2_000, items=6_000, events=120_000))
    transfer_couplings: tuple[float, ...] = (1.0, 0.0)

    @classmethod
    def make(cls, out: str | Path, quick: bool = False, seed: int = 0, data: str | Path | None = None) -> DemoConfig:
        """The demo's settings; with `data`, the same pipeline on the user's own data folder. Its
        models then train on a budget set by the data's size (models/schedule.py), capped in time,
        and the transfer study is left out: it needs two domains and their names
        (`edgerec study transfer --data DIR --by COLUMN --source A --target B`)."""
        cfg = cls._synthetic(out, quick, seed)
        if data is None:
            return cfg
        own: dict = {"data": Path(data), "synth": None, "transfer_world": None, "transfer_couplings": ()}
        if not quick:
            own.update(teacher=ModelConfig(), teacher_train=TrainConfig(max_minutes=30),
                       student=ModelConfig(dim=32, layers=1, heads=1, max_len=50),
                       student_train=TrainConfig(max_minutes=15))
        else:  # the quick teacher's 4 epochs of a 300k-user log would take about 40 minutes (6,396 steps an epoch),
            # and of a 500-event log 4 optimizer steps (an untrained model, far below popularity): the data's
            # step budget decides instead, capped in time
            quick_train = TrainConfig(max_minutes=QUICK_MINUTES, eval_users=cfg.teacher_train.eval_users)
            own.update(teacher_train=quick_train, student_train=quick_train)
        return replace(cfg, **own)

    @classmethod
    def _synthetic(cls, out: str | Path, quick: bool, seed: int) -> DemoConfig:
        if not quick:
            return cls(out=Path(out), seed=seed, synth=SynthConfig(seed=seed),
                       transfer_world=SynthConfig(users=2_000, items=6_000, events=120_000, seed=seed))
        return cls(
            out=Path(out), quick=True, seed=seed,
            synth=SynthConfig(users=1_500, items=5_000, events=100_000, seed=seed),
            baselines=("popular", "itemknn", "content"),
            teacher=ModelConfig(dim=64, layers=2, heads=2, max_len=30),
            teacher_train=TrainConfig(epochs=4, patience=2, eval_users=500),
            student=ModelConfig(dim=16, layers=1, heads=1, max_len=30, own_rows=1500, hash_buckets=500),
            student_train=TrainConfig(epochs=6, patience=2, eval_users=500),
            replay_users=100, bench_items=None, experiment=SimConfig(users=40, days=2, pre_days=1),
            federated=WorldConfig(max_devices=300, model=ModelConfig(dim=16, layers=1, heads=1, max_len=20),
                                  train=TrainConfig(eval_users=300, max_minutes=2)),
            federated_server=ServerConfig(rounds=5, clients_per_round=60), federated_epsilons=(4.0,),
            transfer_world=SynthConfig(users=1_000, items=3_000, events=50_000, seed=seed),
        )


def demo_studies(cfg: DemoConfig) -> list[Study]:
    """The demo, in order: each study reads what the ones before it wrote under `cfg.out`."""
    out = cfg.out
    ranker = RankerConfig(events_per_user=10 if cfg.quick else 20, max_events=20_000 if cfg.quick else RankerConfig.max_events,
                          epochs=4, seed=cfg.seed)
    bench = BenchConfig(requests=300, items=cfg.bench_items, compare=[str(out / "bundle-fp32")])
    data = SynthStep(cfg.synth, out / "data") if cfg.data is None else DataStep(cfg.data, out / "data")
    transfer = [] if cfg.transfer_world is None else [
        TransferStudy(out / "data", cfg.transfer_world, couplings=cfg.transfer_couplings, seed=cfg.seed)]
    return [
        data,
        BaselinesStudy(out / "data", cfg.baselines),
        TeacherStep(out / "data", out / "teacher", cfg.teacher, cfg.teacher_train),
        StudentStep(out / "data", out / "teacher", out / "student", cfg.student, cfg.student_train),
        RankerStep(out / "data", out / "student", out / "ranker", ranker),
        ScorerStep(out / "data", out / "student", out / "ranker", out / "scorer", ranker),
        ExportStep(out / "student", out / "data", out / "bundle", out / "bundle-fp32", ranker=out / "ranker",
                   teacher=out / "teacher", scorer=out / "scorer"),
        CompressionStudy(out / "teacher", out / "student", out / "data"),
        ReplayStudy(out / "bundle", out / "data", out / "device" / "history.db", cfg.replay_users, cfg.seed,
                    own_history=True),
        NewcomerStudy(out / "bundle", out / "data", cfg.replay_users, cfg.seed),
        FairnessStudy(out / "bundle", out / "data", out / "device" / "fairness.db", cfg.replay_users, cfg.seed,
                      own_history=True),
        ExplainStudy(out / "bundle"),
        BenchStudy(out / "bundle", cfg.bench_profile, bench),
        TeacherBundleStep(out / "teacher", out / "data", out / "bundle-teacher"),
        BundleComparisonStudy(Arm("student", out / "bundle"), Arm("teacher", out / "bundle-teacher"), out / "data",
                              cfg.experiment),
        PrivacyStudy(out / "bundle", out / "data", out / "privacy", seed=cfg.seed),
        FederatedStudy(out / "data", out / "federated", cfg.federated, cfg.federated_server,
                       epsilons=cfg.federated_epsilons),
        *transfer,
    ]


def _finished_run(out: Path, config: dict) -> dict | None:
    """The results of an earlier run in `out` with the same settings, or None."""
    try:
        results = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict):
        return None
    same = {k: v for k, v in results.get("config", {}).items() if k != "out"} == {
        k: v for k, v in config.items() if k != "out"}  # the folder may be named differently now
    if not same:
        raise ConfigError("the --out folder holds a demo run with other settings; use another --out or drop --resume")
    return results


def recorded_config(cfg: DemoConfig) -> dict:
    """The settings as report.json keeps them: no host paths (the data folder by its name and a
    digest of its files, so --resume notices other data under the same name)."""
    config = json.loads(json.dumps(asdict(cfg), default=str))
    config.pop("out")
    if cfg.data is not None:
        digest = hashlib.sha256()
        for path in sorted(p for p in Path(cfg.data).iterdir() if p.is_file()):
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        config["data"] = {"name": Path(cfg.data).name, "sha256": digest.hexdigest()}
    return config


def _start_clean(out: Path, data: Path | None) -> None:
    """Empty `out` for a new run, but only when it holds an earlier demo run: a demo never deletes a
    folder of the user's (their data, their project) given as --out by mistake."""
    if data is not None:
        inside = out.resolve()
        if inside == Path(data).resolve() or inside in Path(data).resolve().parents:
            raise ConfigError("the --out folder holds the --data folder, and a demo run starts by emptying "
                              "--out; choose another --out")
    if out.exists() and not out.is_dir():
        raise ConfigError("--out names a file, not a folder; choose a new or empty folder")
    if not out.exists() or not any(out.iterdir()):
        return
    try:
        earlier = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        earlier = None
    if not (isinstance(earlier, dict) and "config" in earlier and "timings" in earlier):
        raise ConfigError("the --out folder is not empty and holds no earlier demo run (a run starts by "
                          "emptying it); choose a new or empty folder")
    shutil.rmtree(out)


def run_demo(cfg: DemoConfig, progress: Progress, on_step: Callable[[str, int, int], None] | None = None,
             resume: bool = False) -> dict:
    """Run every study; records (and the seconds of each) go to `out/report.json`.

    A study whose result has a plot also writes `<name>.json` and `<name>.png` next to it.
    `resume` keeps the finished steps of an earlier run with the same settings
    in `out` and runs the rest (e.g. after the bench failed or was interrupted).
    """
    if cfg.data is not None and not Path(cfg.data).is_dir():
        raise ConfigError("the --data folder does not exist; give a folder written by `edgerec data import`")
    config = recorded_config(cfg)
    results = _finished_run(cfg.out, config) if resume else None
    if results is None:
        _start_clean(cfg.out, cfg.data)
        results = {"config": config, "timings": {}}
    cfg.out.mkdir(parents=True, exist_ok=True)
    studies = demo_studies(cfg)
    for index, study in enumerate(studies):
        if study.name in results["timings"]:
            continue
        if on_step:
            on_step(study.name, index, len(studies))
        began = time.perf_counter()
        result = study.run(progress)
        if result.plot:
            result.write_json(cfg.out / f"{study.name}.json")
            result.write_plot(cfg.out / f"{study.name}.png")
        results[study.name] = result.record
        results["timings"][study.name] = round(time.perf_counter() - began, 1)
        # whole or not at all: a run killed while writing it keeps the steps done before, for --resume
        write_file(cfg.out / "report.json", json.dumps(results, indent=2, default=str))
    results["timings"].pop("total", None)
    results["timings"]["total"] = round(sum(results["timings"].values()), 1)
    write_file(cfg.out / "report.json", json.dumps(results, indent=2, default=str))
    return results


def demo_report(cfg: DemoConfig, results: dict) -> list[StudyResult]:
    """Each study's result rebuilt from the records of a run (tables to print)."""
    return [type(study).result(results[study.name]) for study in demo_studies(cfg) if study.name in results]
