"""`edgerec demo`: the whole pipeline on the embedded default catalog.

Each step is a function of the run folder and the results so far; the run
prints progress as it goes and ends with one report (table + report.json).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgerec.data.synth import SynthConfig


@dataclass
class DemoConfig:
    out: Path = Path("runs/demo")
    quick: bool = False
    seed: int = 0
    synth: SynthConfig = field(default_factory=SynthConfig)
    baselines: tuple[str, ...] = ("popular", "trending", "itemknn", "userknn", "content", "hybrid")

    @classmethod
    def make(cls, out: str | Path, quick: bool = False, seed: int = 0) -> DemoConfig:
        synth = (SynthConfig(users=1_500, items=5_000, events=100_000, seed=seed) if quick
                 else SynthConfig(seed=seed))
        return cls(out=Path(out), quick=quick, seed=seed, synth=synth)


Reporter = Callable[[str, dict], None]


def step_data(cfg: DemoConfig, results: dict, report: Reporter) -> None:
    from edgerec.data.synth import write_synth

    summary = write_synth(cfg.synth, cfg.out / "data")
    results["data"] = summary
    report("synthetic catalog", summary)


def step_baselines(cfg: DemoConfig, results: dict, report: Reporter) -> None:
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.models.baselines import make_baseline
    from edgerec.models.evaluation import Evaluator

    dataset = load_dataset(cfg.out / "data")
    split = leave_last_out(dataset)
    evaluator = Evaluator(split, dataset.catalog)
    rows = []
    for name in cfg.baselines:
        began = time.perf_counter()
        scorer = make_baseline(name, dataset, split)
        row = evaluator.evaluate(scorer)
        row["fit_seconds"] = round(time.perf_counter() - began - row["eval_seconds"], 2)
        rows.append(row)
        report(f"baseline {name}", {k: row[k] for k in ("HR@10", "NDCG@10", "coverage@10")})
    results["baselines"] = rows


STEPS: tuple[tuple[str, Callable], ...] = (
    ("data", step_data),
    ("baselines", step_baselines),
)


def run_demo(cfg: DemoConfig, report: Reporter, on_step: Callable[[str, int, int], None] | None = None) -> dict:
    """Run every step; results (and the timing of each step) go to `out/report.json`."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"config": json.loads(json.dumps(asdict(cfg), default=str)), "timings": {}}
    for index, (name, step) in enumerate(STEPS):
        if on_step:
            on_step(name, index, len(STEPS))
        began = time.perf_counter()
        step(cfg, results, report)
        results["timings"][name] = round(time.perf_counter() - began, 2)
    results["timings"]["total"] = round(sum(results["timings"].values()), 2)
    (cfg.out / "report.json").write_text(json.dumps(results, indent=2, default=str))
    return results
