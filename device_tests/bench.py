"""`edgerec bench`: latency, memory and size of a bundle on a device profile, side by side in one run.

The measurements run in a child process that takes the profile's CPU
affinity, thread count and memory cap (the parent is never constrained), and
that imports only the runtime. In one run it measures: bundle open time;
recommend() end to end and per stage for every engine the bundle and the
device share; the user encoder alone for this bundle and any --compare
bundles (e.g. fp32 against int8); the retrieval scan against faiss-cpu flat
inner product and usearch exact search on the same table (when installed);
the memory-bandwidth bound of the scan and the scan's share of it; peak RSS.
Budgets of the profile decide the exit code.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgerec.device_tests.parts_bench import bench_encoders, bench_retrieval
from edgerec.device_tests.profiles import DeviceProfile
from edgerec.device_tests.timing import peak_rss_mb, percentiles
from edgerec.errors import ConfigError, EdgerecError


@dataclass
class BenchConfig:
    requests: int = 400
    warmup: int = 40
    users: int = 200
    history: int = 30  # events per synthetic user
    long_history: int = 2_000  # events of one more user, asked for a list after each new event (0: skip)
    long_requests: int = 60
    items: int | None = None  # grow the catalog to this many items first
    ann: str | None = None  # "usearch": retrieve through the HNSW index instead of the exact scan
    compare: list[str] = field(default_factory=list)  # more bundles whose encoders to time alongside
    retrieval_queries: int = 200
    baselines: bool = True  # faiss / usearch when installed
    footprint: bool = True  # memory, bytes and time of each engine alone (footprint.py)
    seed: int = 0

    def __post_init__(self):
        for name in ("requests", "users", "history", "retrieval_queries", "items"):
            value = getattr(self, name)
            if (value is not None or name != "items") and (  # at most 10**8: a grown catalog is held in memory
                    isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**8):
                raise ConfigError(f"the benchmark's {name} must be a whole number >= 1 and at most 10**8 "
                                  f"(got {value!r})")


# ------------------------------------------------------------------ worker (child process)


def apply_profile(profile: DeviceProfile) -> None:
    if profile.cpus and hasattr(os, "sched_setaffinity"):
        # every thread: numpy's BLAS threads, started at import, kept running on every core
        threads = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else []
        for tid in threads:
            with suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(tid, set(profile.cpus))
        os.sched_setaffinity(0, set(profile.cpus))
    if profile.memory_mb:
        limit = int(profile.memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _users(rec, cfg: BenchConfig, rng) -> list[str]:
    """Synthetic users with histories of real catalog items, recorded through the runtime."""
    n = rec.catalog.base_count
    users = []
    now = time.time()  # recent events: older ones would fall out of the history's retention window
    for u in range(cfg.users):
        name = f"bench-{u}"
        start = int(rng.integers(0, n))
        for i in range(cfg.history):  # runs of neighbouring rows: series, creators
            row = (start + i if rng.random() < 0.7 else int(rng.integers(0, n))) % n
            rec.history.record(name, rec.catalog.item_id(row), "finish", ts=now - 60 * (cfg.history - i))
        users.append(name)
    return users


def bench_recommend(bundle_path: Path, backend: str, profile: DeviceProfile, cfg: BenchConfig) -> dict:
    from edgerec.runtime import Recommender

    began = time.perf_counter()
    rec = Recommender.open(bundle_path, backend=backend, threads=profile.threads, ann=cfg.ann)
    open_ms = (time.perf_counter() - began) * 1e3
    index_s = None
    if cfg.ann:  # built once per catalog on a device (then cached); timed apart from requests
        t = time.perf_counter()
        rec.warm_up()
        index_s = time.perf_counter() - t
    rng = np.random.default_rng(cfg.seed)
    users = _users(rec, cfg, rng)
    for i in range(cfg.warmup):
        rec.recommend(users[i % len(users)], k=10)
    rec.monitor = type(rec.monitor)()  # count only measured requests
    latencies, after_event = [], []
    began = time.perf_counter()
    for i in range(cfg.requests):
        user = users[int(rng.integers(0, len(users)))]
        fresh = i % 5 == 0  # real-time: some requests follow a fresh event (and cannot reuse the user's state)
        if fresh:
            rec.history.record(user, rec.catalog.item_id(int(rng.integers(0, rec.catalog.base_count))), "play")
        t = time.perf_counter()
        rec.recommend(user, k=10)
        latencies.append((time.perf_counter() - t) * 1e3)
        if fresh:
            after_event.append(latencies[-1])
    wall = time.perf_counter() - began
    stats = rec.monitor.snapshot()
    long_history = _long_history_after_events(rec, cfg, rng)
    result = {"backend": backend, "open_ms": open_ms, "end_to_end": percentiles(latencies),
              "after_event": percentiles(after_event), "repeated": _repeated_requests(rec, users, cfg, rng),
              "long_history_after_event": long_history,
              "throughput_rps": cfg.requests / wall, "stages": stats["stages"], "counters": stats["counters"],
              "kernel": rec.scan.label, "ann": rec.ann_kind, "ann_build_s": index_s, "latencies_ms": latencies}
    rec.close()
    return result


def _repeated_requests(rec, users: list[str], cfg: BenchConfig, rng) -> dict:
    """recommend() asked again at once with nothing new (a refresh, another row of the same screen):
    what the user's kept state saves; timed apart from the mix, a fifth as many requests."""
    latencies = []
    for _ in range(max(1, cfg.requests // 5)):
        user = users[int(rng.integers(0, len(users)))]
        rec.recommend(user, k=10)
        t = time.perf_counter()
        rec.recommend(user, k=10)
        latencies.append((time.perf_counter() - t) * 1e3)
    return percentiles(latencies)


def _long_history_after_events(rec, cfg: BenchConfig, rng) -> dict | None:
    """recommend() right after each new event of a user with `long_history` events (real listeners
    keep years of history: the window of the newest 2,000 events is full), timed apart from the mix."""
    if not cfg.long_history or not cfg.long_requests:
        return None
    n, now = rec.catalog.base_count, time.time()
    for i in range(cfg.long_history):
        rec.history.record("bench-long", rec.catalog.item_id(int(rng.integers(0, n))), "finish",
                           ts=now - 60 * (cfg.long_history - i))
    rec.recommend("bench-long", k=10)
    latencies = []
    for _ in range(cfg.long_requests):
        rec.history.record("bench-long", rec.catalog.item_id(int(rng.integers(0, n))), "play")
        t = time.perf_counter()
        rec.recommend("bench-long", k=10)
        latencies.append((time.perf_counter() - t) * 1e3)
    return {"events": cfg.long_history, **percentiles(latencies)}


def run_worker(bundle: str, profile: DeviceProfile, cfg: BenchConfig, source: str | None = None) -> dict:
    """Measure `source` (default: the bundle itself; a grown copy when cfg.items asks for one,
    made beforehand by run_bench so that its memory is not counted as the device's)."""
    apply_profile(profile)
    from edgerec.runtime.backends import available_backends
    from edgerec.runtime.bundle import Bundle

    source = Path(source or bundle)
    opened = Bundle.open(source)
    # a packed file ships as that file (tar headers and padding included), not as its unpacked copy
    manifest, bundle_bytes = opened.manifest, source.stat().st_size if source.is_file() else opened.size_bytes()
    engines = [e for e in available_backends() if e in manifest.formats("user_encoder")]
    runs = [bench_recommend(source, engine, profile, cfg) for engine in engines]
    rss_runtime = peak_rss_mb()  # before the baselines below allocate their float copies
    encoders = bench_encoders([source] + [Path(p) for p in cfg.compare], profile)
    retrieval = bench_retrieval(source, profile, cfg)
    config = dict(asdict(cfg), compare=[Path(p).name for p in cfg.compare])  # names: no host paths in reports
    return {"bundle": Path(bundle).name, "profile": profile.to_dict(), "config": config, "items": manifest.items.count,
            "bundle_bytes": int(bundle_bytes), "runs": runs, "encoders": encoders, "retrieval": retrieval,
            "peak_rss_mb": rss_runtime, "peak_rss_mb_with_baselines": peak_rss_mb(),
            "python": sys.version.split()[0], "machine": os.uname().machine, "cpus_seen": os.cpu_count(),
            "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}


# ------------------------------------------------------------------ orchestrator (parent process)


def device_peak_rss_mb(result: dict) -> float:
    """A device runs one engine: the largest peak of the engines each in its own process when
    measured (footprint.py), else the peak of the worker that ran them all. A footprint without
    /proc reads NaN, which max() would keep or drop by its place and any budget would let pass."""
    peaks = [f["peak_rss_mb"] for f in result.get("footprint", ()) if not math.isnan(f["peak_rss_mb"])]
    return max(peaks, default=result["peak_rss_mb"])


def check_budgets(result: dict, profile: DeviceProfile) -> list[str]:
    failures = []
    for run in result["runs"]:
        if run["end_to_end"]["p99_ms"] > profile.p99_ms:
            failures.append(f"{run['backend']}: recommend() p99 {run['end_to_end']['p99_ms']:.2f} ms exceeds the "
                            f"{profile.p99_ms} ms budget")
        if run["open_ms"] > profile.open_ms:
            failures.append(f"{run['backend']}: bundle open {run['open_ms']:.0f} ms exceeds {profile.open_ms} ms")
    peak = device_peak_rss_mb(result)
    if peak > profile.rss_mb:
        failures.append(f"peak RSS {peak:.0f} MB exceeds the {profile.rss_mb} MB budget")
    if result["bundle_bytes"] / 1e6 > profile.bundle_mb:
        failures.append(f"bundle is {result['bundle_bytes'] / 1e6:.1f} MB, over the {profile.bundle_mb} MB budget")
    if not result["runs"]:
        failures.append("no inference engine on this device runs this bundle's user encoder")
    return failures


def run_bench(bundle: str | Path, profile: DeviceProfile, cfg: BenchConfig, timeout: float = 3600) -> dict:
    """Run the worker in a fresh process under the profile; returns its result plus the budget verdict."""
    from edgerec.runtime.bundle import Bundle

    opened = Bundle.open(bundle)  # verified here: a damaged bundle is one clear error, not a child's traceback
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if profile.cpus and usable is not None and not set(profile.cpus) <= usable:  # else the child's OSError
        raise ConfigError(f"profile {profile.name} pins CPUs {sorted(profile.cpus)}, and this machine lets this "
                          f"process use {sorted(usable)}: set cpus to some of those (--set cpus=0) or any")
    with tempfile.TemporaryDirectory(prefix="edgerec-bench-") as scratch:
        source = Path(bundle)
        if cfg.items:  # grown here: the worker's peak memory is the runtime's alone
            from edgerec.device_tests.scale import scaled_bundle

            source = scaled_bundle(opened, cfg.items, Path(scratch) / "scaled", cfg.seed)
        spec = Path(scratch) / "spec.json"
        out = Path(scratch) / "result.json"
        spec.write_text(json.dumps({"bundle": str(bundle), "source": str(source), "profile": profile.to_dict(),
                                    "config": asdict(cfg)}))
        env = dict(os.environ, OMP_NUM_THREADS=str(profile.threads))
        proc = subprocess.run([sys.executable, "-m", "edgerec.device_tests", "--worker", str(spec), str(out)],
                              capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout)[-1500:]
            raise EdgerecError(f"the benchmark process failed (exit {proc.returncode}); its last words:\n{tail}")
        result = json.loads(out.read_text())
        if cfg.footprint:  # each engine alone in a fresh process, as on a device
            from edgerec.device_tests.footprint import figures, floor_bytes, run_footprint, sections

            opened = Bundle.open(source, verify=False)
            result["sections"], result["floor_bytes"] = sections(opened), floor_bytes(opened)
            result["footprint"] = run_footprint(source, [r["backend"] for r in result["runs"]], profile, cfg)
            result["figures"] = figures(result)
    result["failures"] = check_budgets(result, profile)
    result["passed"] = not result["failures"]
    return result


def summary(result: dict) -> dict:
    """The result without raw latency samples (for JSON and tables)."""
    slim = json.loads(json.dumps(result))
    for run in slim["runs"]:
        run.pop("latencies_ms", None)
    return slim
