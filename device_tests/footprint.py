"""The footprint of serving one bundle with one engine, each in a fresh process: memory, bytes, time.

A device runs one engine, so each engine gets its own process (the benchmark's main worker loads
all of them). The process reports the interpreter's resident memory before the bundle opens, the
peak (VmHWM) and steady (VmRSS) resident memory after opening and serving requests, open time,
and recommend() latency. `sections` splits the bundle's bytes by what they hold, and `figures`
sets the measurements beside their physical floors: the table's bytes and the scan's bound.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edgerec.errors import EdgerecError

RSS_ALLOWANCE_MB = 64.0  # the goal: peak RSS within the table's bytes plus this much
BYTES_ALLOWANCE = 1.3  # bundle bytes within this many times (table + ids + titles)
P99_ALLOWANCE = 1.5  # recommend() p99 within this many times the scan's bandwidth bound


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory now (VmRSS) or at its peak (VmHWM), from /proc (Linux)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def footprint_worker(bundle: str, engine: str, profile, cfg) -> dict:
    """Open `bundle` with `engine`, serve cfg.requests requests; memory and time (child process)."""
    from edgerec.device_tests.bench import _users, apply_profile, percentiles
    from edgerec.runtime import Recommender

    apply_profile(profile)
    interpreter = rss_mb()  # Python, numpy and the runtime's modules: the engine loads with the bundle
    began = time.perf_counter()
    rec = Recommender.open(bundle, backend=engine, threads=profile.threads)
    open_ms = (time.perf_counter() - began) * 1e3
    after_open = rss_mb()
    rng = np.random.default_rng(cfg.seed)
    users = _users(rec, cfg, rng)
    for i in range(cfg.warmup):
        rec.recommend(users[i % len(users)], k=10)
    rec.monitor = type(rec.monitor)()
    latencies = []
    for i in range(cfg.requests):
        user = users[int(rng.integers(0, len(users)))]
        if i % 5 == 0:  # a fresh event: the user's state is read and encoded again
            rec.history.record(user, rec.catalog.item_id(int(rng.integers(0, rec.catalog.base_count))), "play")
        t = time.perf_counter()
        rec.recommend(user, k=10)
        latencies.append((time.perf_counter() - t) * 1e3)
    stages = rec.monitor.snapshot()["stages"]
    out = {"engine": engine, "kernel": rec.scan.label, "open_ms": open_ms, "interpreter_rss_mb": interpreter,
           "open_rss_mb": after_open, "steady_rss_mb": rss_mb(), "peak_rss_mb": rss_mb("VmHWM"),
           "id_index_bytes": rec.catalog.index.nbytes, "end_to_end": percentiles(latencies),
           "retrieve": stages.get("retrieve", {})}
    rec.close()
    return out


def run_footprint(source: Path, engines: list[str], profile, cfg, timeout: float = 1800) -> list[dict]:
    """footprint_worker for each engine, each in a fresh process."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgerec-footprint-") as scratch:
        for engine in engines:
            spec, out = Path(scratch) / f"{engine}.json", Path(scratch) / f"{engine}-out.json"
            spec.write_text(json.dumps({"bundle": str(source), "engine": engine, "profile": profile.to_dict(),
                                        "config": asdict(cfg)}))
            env = dict(os.environ, OMP_NUM_THREADS=str(profile.threads))
            proc = subprocess.run([sys.executable, "-m", "edgerec.device_tests", "--footprint", str(spec), str(out)],
                                  capture_output=True, text=True, timeout=timeout, env=env)
            if proc.returncode != 0 or not out.exists():
                raise EdgerecError(f"the footprint process ({engine}) failed (exit {proc.returncode}):\n"
                                   f"{(proc.stderr or proc.stdout)[-1500:]}")
            rows.append(json.loads(out.read_text()))
    return rows


def sections(bundle) -> dict:
    """Bytes of an opened bundle by what they hold: table, ids, titles, tags, the other columns,
    models, references and the rest (manifest included)."""
    m = bundle.manifest
    items = m.items
    files = {name: meta["bytes"] for name, meta in m.files.items()}
    out = {"table": sum(files[f] for f in (items.embeddings.file, items.embeddings.scales) if f)}
    for name in ("ids", "titles", "tags"):
        column = items.strings[name]
        out[name] = files[column.file] + files[column.offsets]
    taken = set(items.files()[:2]) | {f for n in ("ids", "titles", "tags") for f in items.strings[n].files()}
    other_columns = [f for f in items.files() if f not in taken]
    out["other columns"] = sum(files[f] for f in other_columns)
    models = {e.file for e in m.models}
    out["models"] = sum(files[f] for f in models)
    references = {m.reference[k] for k in ("histories", "user_vectors", "top_k") if k in m.reference}
    out["references"] = sum(files[f] for f in references)
    counted = set(items.files()) | models | references
    out["rest"] = sum(size for name, size in files.items() if name not in counted) + \
        (bundle.root / "manifest.json").stat().st_size
    return out


def figures(result: dict) -> list[dict]:
    """The footprint rows of one bench run: measured, physical floor, ratio and the issue's goal."""
    ret, parts = result["retrieval"], result["sections"]
    table_mb = ret["table_bytes"] / 2**20
    floor_bytes = parts["table"] + parts["ids"] + parts["titles"]
    cold_scan = next((m["cold_p50_ms"] for m in ret["methods"] if "cold_p50_ms" in m), None)
    rows = []
    for run in result["footprint"]:
        engine = run["engine"]
        rows += [
            {"figure": f"peak RSS, MB ({engine})", "measured": run["peak_rss_mb"],
             "physical": f"table {table_mb:.1f} MB", "ratio": run["peak_rss_mb"] / table_mb,
             "goal": f"<= table + {RSS_ALLOWANCE_MB:.0f} MB", "met": run["peak_rss_mb"] <= table_mb + RSS_ALLOWANCE_MB},
            {"figure": f"steady RSS, MB ({engine})", "measured": run["steady_rss_mb"],
             "physical": f"interpreter {run['interpreter_rss_mb']:.1f} MB", "ratio": run["steady_rss_mb"] / table_mb,
             "goal": "", "met": None},
            {"figure": f"recommend() p99, ms ({engine})", "measured": run["end_to_end"]["p99_ms"],
             "physical": f"scan bound {ret['scan_bound_ms']:.2f} ms, cold scan {cold_scan or float('nan'):.2f} ms",
             "ratio": run["end_to_end"]["p99_ms"] / ret["scan_bound_ms"],
             "goal": f"<= {P99_ALLOWANCE}x scan bound",
             "met": run["end_to_end"]["p99_ms"] <= P99_ALLOWANCE * ret["scan_bound_ms"]},
            {"figure": f"open, ms ({engine})", "measured": run["open_ms"], "physical": "", "ratio": None,
             "goal": "", "met": None},
        ]
    rows.append({"figure": "bundle bytes, MB", "measured": result["bundle_bytes"] / 2**20,
                 "physical": f"table + ids + titles {floor_bytes / 2**20:.1f} MB",
                 "ratio": result["bundle_bytes"] / floor_bytes, "goal": f"<= {BYTES_ALLOWANCE}x",
                 "met": result["bundle_bytes"] <= BYTES_ALLOWANCE * floor_bytes})
    return rows
