"""Parts of a request timed alone: the user encoder of each bundle, and the retrieval scan against
faiss-cpu flat search and usearch exact search on the same table, beside the scan's memory-bandwidth
bound (`edgerec bench` runs them in its measuring child process)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgerec.device_tests.profiles import DeviceProfile
from edgerec.device_tests.timing import percentiles, time_calls, timed

if TYPE_CHECKING:  # bench.py imports this module
    from edgerec.device_tests.bench import BenchConfig

EVICT_BYTES = 128 * 1024 * 1024  # more than the last-level cache of phones, boxes and most servers


def bench_encoders(paths: list[Path], profile: DeviceProfile, n: int = 300) -> list[dict]:
    """The user encoder alone (batch 1, full history length), for each model file of each bundle."""
    from edgerec.runtime.backends import available_backends, open_model
    from edgerec.runtime.bundle import Bundle
    from edgerec.runtime.catalog import ItemCatalog
    from edgerec.runtime.encoder import UserEncoder, pad_histories

    rows = []
    engines = available_backends()
    for path in paths:
        bundle = Bundle.open(path)
        length = int(bundle.manifest.defaults.get("history_length", 50))
        count = bundle.manifest.items.count
        histories = ItemCatalog(bundle).encoder_inputs(np.random.default_rng(0).integers(0, count, n * length))
        histories = histories.reshape(n, length)
        for entry in bundle.manifest.models:
            if entry.role != "user_encoder" or entry.format not in engines:
                continue
            encoder = UserEncoder(open_model(bundle.path(entry.file), entry, profile.threads), entry, length)
            rows_in = pad_histories(list(histories), encoder.max_len)  # a TFLite file fixes its own length
            samples = time_calls(lambda row, e=encoder, h=rows_in: e.encode_rows(h[row][None]), n)
            rows.append({"bundle": bundle.manifest.name, "file": entry.file, "format": entry.format,
                         "quantization": entry.quantization, "bytes": bundle.manifest.files[entry.file]["bytes"],
                         **percentiles(samples)})
    return rows


def copy_bandwidth_gbs(megabytes: int = 256) -> float:
    """Measured memory bandwidth of a large copy (bytes copied per second, best of 5)."""
    src = np.ones(megabytes * 1024 * 1024 // 8, np.float64)
    dst = np.empty_like(src)
    best = min(timed(lambda: np.copyto(dst, src), 5, warmup=1))
    return src.nbytes / (best / 1e3) / 1e9


def bench_retrieval(bundle_path: Path, profile: DeviceProfile, cfg: BenchConfig) -> dict:
    """The int8 scan against faiss flat and usearch exact on the same table and queries."""
    from edgerec.runtime.bundle import Bundle
    from edgerec.runtime.catalog import ItemCatalog
    from edgerec.runtime.retrieval import ExactScan, available_kernels

    catalog = ItemCatalog(Bundle.open(bundle_path, verify=False))
    stored = catalog.stored
    table = stored.values
    n, dim = table.shape
    rng = np.random.default_rng(cfg.seed)
    queries = catalog.vectors(rng.integers(0, n, cfg.retrieval_queries))
    queries += rng.normal(0, 0.05, queries.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    k = min(100, n)  # a catalog smaller than 100 items is ranked whole
    table_bytes = stored.nbytes
    rows = []

    # Cold runs stream a buffer larger than any last-level cache before each query, so the table
    # comes from memory as on a device that did other work in between; warm runs reuse the caches.
    evict = np.zeros(EVICT_BYTES // 8, np.float64)
    cold_queries = max(1, len(queries) // 4)

    def run(name, search, memory):
        warm = percentiles(time_calls(lambda i: search(queries[i]), len(queries)))
        cold = percentiles(time_calls(lambda i: search(queries[i]), cold_queries, before=lambda: evict.__iadd__(1.0)))
        rows.append({"method": name, "index_bytes": int(memory), **warm,
                     "cold_p50_ms": cold["p50_ms"], "cold_p99_ms": cold["p99_ms"]})

    timed = set()
    for kernel in available_kernels():
        scan = ExactScan(stored, kernel)
        if scan.label in timed:  # an fp16 table falls back to numpy in every kernel: one row, not four
            continue
        timed.add(scan.label)
        run(f"edgerec scan ({stored.dtype_name}, {scan.label})", lambda q, s=scan: s.top(q, k)[0],
            table_bytes + scan.index_bytes)
    float_table = catalog.vectors(np.arange(n)) if cfg.baselines else None
    if cfg.baselines:
        try:
            import faiss

            faiss.omp_set_num_threads(profile.threads)
            index = faiss.IndexFlatIP(dim)
            index.add(float_table)
            run("faiss-cpu IndexFlatIP (fp32)", lambda q: index.search(q[None], k), index.ntotal * dim * 4)
            del index
        except ImportError:
            rows.append({"method": "faiss-cpu IndexFlatIP (fp32)", "skipped": "faiss-cpu not installed"})
        if stored.dtype_name != "int8":  # its int8 search of a float table would measure something else
            rows.append({"method": "usearch exact (int8)", "skipped": f"the table is {stored.dtype_name}"})
        else:
            try:
                from edgerec.runtime.retrieval import import_usearch

                usearch = import_usearch()
                int8 = np.asarray(table)
                run("usearch exact (int8)",
                    lambda q: usearch.search(int8, np.clip(np.round(q * 127), -127, 127).astype(np.int8), k,
                                             usearch.MetricKind.IP, exact=True, threads=profile.threads),
                    int8.nbytes)
            except ImportError:
                rows.append({"method": "usearch exact (int8)", "skipped": "usearch not installed"})
    bandwidth = copy_bandwidth_gbs()
    bound_ms = table_bytes / (bandwidth * 1e9) * 1e3
    ours = rows[0]
    faiss_row = next((r for r in rows if r["method"].startswith("faiss") and "p50_ms" in r), None)
    versus = None
    if faiss_row is not None:
        versus = {"method": ours["method"], "time_ratio": ours["p50_ms"] / faiss_row["p50_ms"],
                  "time_ratio_cold": ours["cold_p50_ms"] / faiss_row["cold_p50_ms"],
                  "memory_ratio": ours["index_bytes"] / faiss_row["index_bytes"]}
    return {"items": n, "dim": dim, "dtype": stored.dtype_name, "table_bytes": table_bytes, "k": k, "methods": rows,
            "copy_bandwidth_gbs": bandwidth, "scan_bound_ms": bound_ms, "vs_faiss": versus,
            "scan_fraction_of_bound": bound_ms / ours["cold_p50_ms"],
            "scan_fraction_of_bound_warm": bound_ms / ours["p50_ms"],
            "note": "the bound is the table's bytes at the measured copy bandwidth; the fraction uses the cold run "
                    "(table read from memory); warm runs may beat the bound from the CPU caches"}
