"""The bench study: the device benchmark (device_tests/bench.py) run as a study, with its plot.

The benchmark itself lives with the device code and runs in a fresh process
under a device profile; this wraps its summary as a record and its tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgerec.device_tests.bench import BenchConfig, run_bench, summary
from edgerec.device_tests.plots import plot_bench
from edgerec.device_tests.profiles import get_profile
from edgerec.studies.base import Progress, Study, StudyResult, Table

RUN_COLUMNS = ["backend", "kernel", "open_ms", "p50_ms", "p95_ms", "p99_ms", "p99_after_event_ms", "throughput_rps"]
RETRIEVAL_COLUMNS = ["method", "index_bytes", "p50_ms", "p99_ms", "cold_p50_ms", "skipped"]


@dataclass
class BenchStudy(Study):
    """recommend() latency, open time, memory and retrieval of a bundle against a device profile."""

    name = "bench"
    bundle: Path
    profile: str = "phone-mid"
    config: BenchConfig = field(default_factory=BenchConfig)

    def _bench(self, progress: Progress) -> dict:
        profile = get_profile(self.profile)
        progress(f"benchmarking under profile {profile.name} ({profile.threads} thread(s))", {})
        result = run_bench(self.bundle, profile, self.config)
        for run in result["runs"]:
            progress(f"bench {run['backend']}", {k: run["end_to_end"][k] for k in ("p50_ms", "p99_ms")})
        return result

    def measure(self, progress: Progress) -> dict:
        return summary(self._bench(progress))

    def run(self, progress: Progress | None = None) -> StudyResult:
        full = self._bench(progress or (lambda _m, _v: None))
        result = self.result(summary(full))
        result.plot = lambda path: plot_bench(full, path)  # the latency CDF needs the raw samples
        return result

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        verdict = "within budget" if record["passed"] else "budget missed: " + "; ".join(record["failures"])
        runs = [{"backend": r["backend"], "kernel": r.get("kernel"), "open_ms": r["open_ms"], **r["end_to_end"],
                 "p99_after_event_ms": r["after_event"]["p99_ms"], "throughput_rps": r.get("throughput_rps")}
                for r in record["runs"]]
        return [Table(f"bench: profile {record['profile']['name']}, {record['items']:,} items ({verdict})",
                      runs, RUN_COLUMNS), *retrieval_tables(record["retrieval"])]


def retrieval_tables(ret: dict) -> list[Table]:
    """The scan against faiss and usearch, and the scan against its memory-bandwidth bound."""
    bound = {"copy_bandwidth_gbs": ret["copy_bandwidth_gbs"], "scan_bound_ms": ret["scan_bound_ms"],
             "cold_share_of_bound": ret["scan_fraction_of_bound"],
             "warm_share_of_bound": ret["scan_fraction_of_bound_warm"]}
    if ret.get("vs_faiss"):
        v = ret["vs_faiss"]
        bound |= {"vs faiss flat": v["method"], "time_ratio_warm": v["time_ratio"],
                  "time_ratio_cold": v["time_ratio_cold"], "memory_ratio": v["memory_ratio"]}
    return [Table(f"retrieval of the top {ret['k']} over {ret['items']:,} items (dim {ret['dim']}, "
                  f"table {ret['dtype']})", ret["methods"], RETRIEVAL_COLUMNS),
            Table(f"the scan against its bandwidth bound ({ret['note']})", [bound])]
