"""Guards of the figures the benchmark's parts derive from their samples: the encoder and retrieval
tables (time_calls, faiss and usearch replaced by fakes), the footprint's sections, floor and figures,
the history benchmark's ratios and the scorer benchmark's medians (a fake clock: never wall-clock speed)."""

from __future__ import annotations

import io
import math
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.device_tests import footprint, history_bench, parts_bench, scorer_bench, timing
from edgerec.device_tests.bench import BenchConfig
from edgerec.device_tests.profiles import PROFILES
from edgerec.device_tests.scale import scaled_bundle
from edgerec.device_tests.timing import percentiles
from edgerec.errors import BundleError, ConfigError
from edgerec.runtime import retrieval
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.retrieval import ExactScan, available_kernels

RANKED = Path(__file__).resolve().parents[2] / "spec" / "golden" / "ranked"
PROFILE = replace(PROFILES["tv-high"], threads=3)


class FakeTimer:
    """time_calls that calls every input (so a broken search fails here) and hands back known samples:
    call c gives 100 c, 100 c + 1, ... warm, and 100 c + 50, ... cold (with `before`)."""

    def __init__(self):
        self.calls, self.outputs, self.evicted = [], [], []

    def __call__(self, fn, n, before=None):
        base = 100.0 * len(self.calls) + (50.0 if before is not None else 0.0)
        self.calls.append((n, before is not None))
        for i in range(n):
            if before is not None:
                buffer = before()  # the eviction buffer, streamed (written) once more
                self.evicted.append((buffer.dtype, buffer.size, float(buffer[0]), float(buffer[-1])))
            self.outputs.append(fn(i))
        return [base + i for i in range(n)]


class FakeFaiss:
    def __init__(self, calls: list):
        self.calls = calls

    def omp_set_num_threads(self, threads):
        self.calls.append(("threads", threads))

    def IndexFlatIP(self, dim):  # noqa: N802 (faiss's name)
        calls = self.calls

        class Index:
            def __init__(self):
                calls.append(("dim", dim))
                self.ntotal = 0

            def add(self, table):
                calls.append(("add", table.copy()))
                self.ntotal = len(table)

            def search(self, query, k):
                calls.append(("search", query.copy(), k))
                return np.zeros((1, k)), np.zeros((1, k), np.int64)

        return Index()


@pytest.fixture(scope="module")
def grown150(golden_bundle, tmp_path_factory):
    """A catalog larger than the k of 100 the retrieval table ranks."""
    return scaled_bundle(Bundle.open(golden_bundle), 150, tmp_path_factory.mktemp("g") / "g150")


def _retrieval(monkeypatch, path, cfg, faiss=None, usearch=None):
    timer = FakeTimer()
    monkeypatch.setattr(parts_bench, "time_calls", timer)
    monkeypatch.setattr(parts_bench, "copy_bandwidth_gbs", lambda: 2.0)
    monkeypatch.setattr(parts_bench, "EVICT_BYTES", 64)  # eight float64 values, streamed before each cold query
    monkeypatch.setitem(sys.modules, "faiss", faiss)  # None: an ImportError

    def no_usearch():
        raise ImportError("usearch")

    monkeypatch.setattr(retrieval, "import_usearch", (lambda: usearch) if usearch else no_usearch)
    return parts_bench.bench_retrieval(path, PROFILE, cfg), timer


def _scan_rows(path, queries: int):
    stored = ItemCatalog(Bundle.open(path, verify=False)).stored
    cold = max(1, queries // 4)
    rows = []
    for c, kernel in enumerate(available_kernels()):
        scan = ExactScan(stored, kernel)
        warm = percentiles([200.0 * c + i for i in range(queries)])
        coldp = percentiles([200.0 * c + 150.0 + i for i in range(cold)])
        rows.append({"method": f"edgerec scan ({stored.dtype_name}, {scan.label})",
                     "index_bytes": stored.nbytes + scan.index_bytes, **warm,
                     "cold_p50_ms": coldp["p50_ms"], "cold_p99_ms": coldp["p99_ms"]})
    return stored, rows


def test_the_retrieval_table_without_baselines(monkeypatch, grown150):
    cfg = BenchConfig(retrieval_queries=9, baselines=False, seed=4)
    out, timer = _retrieval(monkeypatch, grown150, cfg)
    stored, rows = _scan_rows(grown150, 9)
    assert timer.calls == [(9, False), (2, True)] * len(available_kernels())  # a quarter as many cold queries
    bound = stored.nbytes / 2e9 * 1e3
    assert out == {"items": 150, "dim": stored.values.shape[1], "dtype": stored.dtype_name, "table_bytes": stored.nbytes,
                   "k": 100, "methods": rows, "copy_bandwidth_gbs": 2.0, "scan_bound_ms": bound, "vs_faiss": None,
                   "scan_fraction_of_bound": bound / rows[0]["cold_p50_ms"],
                   "scan_fraction_of_bound_warm": bound / rows[0]["p50_ms"],
                   "note": "the bound is the table's bytes at the measured copy bandwidth; the fraction uses the "
                           "cold run (table read from memory); warm runs may beat the bound from the CPU caches"}
    top = [o for o in timer.outputs if isinstance(o, np.ndarray)]
    assert top and all(o.shape == (100,) and o.dtype.kind == "i" for o in top)  # each search ranks k rows
    streamed = len(timer.evicted)
    assert timer.evicted == [(np.float64, 8, float(i), float(i)) for i in range(1, streamed + 1)]


def test_the_retrieval_table_beside_faiss_and_usearch(monkeypatch, golden_bundle):
    calls = []
    usearch = SimpleNamespace(MetricKind=SimpleNamespace(IP="inner product"),
                              search=lambda *a, **kw: calls.append(("usearch", a, kw)))
    cfg = BenchConfig(retrieval_queries=3, seed=1)
    out, timer = _retrieval(monkeypatch, golden_bundle, cfg, faiss=FakeFaiss(calls), usearch=usearch)
    stored, rows = _scan_rows(golden_bundle, 3)
    n, dim = stored.values.shape
    kernels = len(available_kernels())
    assert timer.calls == [(3, False), (1, True)] * (kernels + 2) and out["k"] == n == 56  # a catalog under 100
    faiss_row, usearch_row = out["methods"][kernels:]
    c = 100.0 * 2 * kernels
    assert faiss_row == {"method": "faiss-cpu IndexFlatIP (fp32)", "index_bytes": n * dim * 4,
                         **percentiles([c, c + 1, c + 2]), "cold_p50_ms": c + 150, "cold_p99_ms": c + 150}
    assert usearch_row == {"method": "usearch exact (int8)", "index_bytes": n * dim,
                           **percentiles([c + 200, c + 201, c + 202]), "cold_p50_ms": c + 350, "cold_p99_ms": c + 350}
    assert out["methods"][:kernels] == rows
    assert out["vs_faiss"] == {"method": rows[0]["method"], "time_ratio": rows[0]["p50_ms"] / faiss_row["p50_ms"],
                               "time_ratio_cold": rows[0]["cold_p50_ms"] / faiss_row["cold_p50_ms"],
                               "memory_ratio": rows[0]["index_bytes"] / faiss_row["index_bytes"]}
    assert calls[:3] == [("threads", 3), ("dim", dim), calls[2]]
    assert np.array_equal(calls[2][1], ItemCatalog(Bundle.open(golden_bundle)).vectors(np.arange(n)))
    searches = [c for c in calls if c[0] == "search"]
    assert len(searches) == 4 and all(s[2] == n and s[1].shape == (1, dim) for s in searches)
    queries = [s[1][0] for s in searches]
    assert all(abs(np.linalg.norm(q) - 1) < 1e-5 for q in queries)  # unit queries near catalog vectors
    assert len({q.tobytes() for q in queries[:3]}) == 3
    table = calls[2][1] / np.linalg.norm(calls[2][1], axis=1, keepdims=True)
    assert min(float(np.max(table @ q)) for q in queries) > 0.9  # each a catalog item's vector, perturbed
    looked = [c for c in calls if c[0] == "usearch"]
    assert len(looked) == 4
    for (_, args, kw), q in zip(looked, queries):
        table, query, k, metric = args
        assert np.array_equal(table, np.asarray(stored.values)) and k == n and metric == "inner product"
        assert query.dtype == np.int8 and np.array_equal(query, np.clip(np.round(q * 127), -127, 127).astype(np.int8))
        assert kw == {"exact": True, "threads": 3}
    again = []
    _retrieval(monkeypatch, golden_bundle, cfg, faiss=FakeFaiss(again), usearch=usearch)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(searches, [c for c in again if c[0] == "search"]))


def test_missing_baselines_are_rows_that_say_so(monkeypatch, golden_bundle):
    out, _ = _retrieval(monkeypatch, golden_bundle, BenchConfig(retrieval_queries=4))
    assert out["methods"][-2:] == [{"method": "faiss-cpu IndexFlatIP (fp32)", "skipped": "faiss-cpu not installed"},
                                   {"method": "usearch exact (int8)", "skipped": "usearch not installed"}]
    assert out["vs_faiss"] is None and len(out["methods"]) == len(available_kernels()) + 2


def test_copy_bandwidth_is_bytes_over_the_best_of_five(monkeypatch):
    asked, copied = [], []

    def timed(fn, n, warmup=5):
        asked.append((n, warmup))
        fn()
        return [4.0, 2.0, 3.0]  # ms

    monkeypatch.setattr(parts_bench, "timed", timed)
    copyto = np.copyto
    monkeypatch.setattr(np, "copyto", lambda dst, src: copied.append((dst.nbytes, src.nbytes, src.dtype)) or
                        copyto(dst, src))
    assert parts_bench.copy_bandwidth_gbs(1) == 2**20 / (2.0 / 1e3) / 1e9
    assert parts_bench.copy_bandwidth_gbs() == 256 * 2**20 / (2.0 / 1e3) / 1e9 and asked == [(5, 1)] * 2
    assert copied == [(2**20, 2**20, np.float64), (256 * 2**20, 256 * 2**20, np.float64)]  # the timed call copies


def test_the_encoder_table_has_a_row_per_user_encoder_the_device_runs(monkeypatch, golden_bundle):
    from edgerec.runtime import backends

    seen = []

    def timer(fn, n, before=None):
        seen.append(n)
        vectors = [fn(0), fn(n - 1)]
        assert all(v.shape == (1, 8) and np.isfinite(v).all() for v in vectors)
        return [1.0, 3.0, 2.0]

    monkeypatch.setattr(parts_bench, "time_calls", timer)
    rows = parts_bench.bench_encoders([Path(golden_bundle), RANKED], PROFILE, n=4)
    files = {name: Bundle.open(p).manifest for name, p in (("golden", golden_bundle), ("ranked", RANKED))}
    expected = [{"bundle": m.name, "file": e.file, "format": e.format, "quantization": e.quantization,
                 "bytes": m.files[e.file]["bytes"], **percentiles([1.0, 3.0, 2.0])}
                for m in files.values() for e in m.models if e.role == "user_encoder"]
    assert rows == expected and len(rows) == 3 and seen == [4, 4, 4]  # the ranked bundle's ranker is no encoder
    threads = []
    model = backends.open_model
    monkeypatch.setattr(backends, "open_model", lambda path, entry, n: threads.append(n) or model(path, entry, n))
    seen.clear()
    parts_bench.bench_encoders([Path(golden_bundle)], PROFILE)
    assert threads == [3, 3] and seen == [300, 300]  # the profile's threads; 300 calls by default
    monkeypatch.setattr(backends, "available_backends", lambda: ["tflite"])
    assert [r["format"] for r in parts_bench.bench_encoders([Path(golden_bundle)], PROFILE, n=2)] == ["tflite"]


@pytest.mark.parametrize("length", [None, 8, 3])
def test_a_tflite_encoder_is_timed_at_its_own_fixed_length(monkeypatch, golden_bundle, tmp_path, length):
    """The runtime reads a TFLite file's fixed L from its entry; the encoder table fed it histories of the
    bundle's default length (50 without one): a ValueError from the interpreter, not a row."""
    import json
    import shutil

    from edgerec.runtime import backends
    from edgerec.runtime.encoder import UserEncoder

    copy = Path(shutil.copytree(golden_bundle, tmp_path / "b"))
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["defaults"]["history_length"]
    if length:
        manifest["defaults"]["history_length"] = length
    (copy / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(backends, "available_backends", lambda: ["tflite"])  # ONNX here takes L = 5 only
    widths = []
    encode = UserEncoder.encode_rows
    monkeypatch.setattr(UserEncoder, "encode_rows", lambda self, rows: widths.append(rows.shape) or encode(self, rows))
    monkeypatch.setattr(parts_bench, "time_calls", lambda fn, n: [fn(0).shape[0], fn(n - 1).shape[0] + 1.0])
    assert [r["p50_ms"] for r in parts_bench.bench_encoders([copy], PROFILE, n=2)] == [1.5]
    assert widths == [(1, 5), (1, 5)]


# ---------------------------------------------------------------- footprint


def test_rss_reads_the_field_asked_for(monkeypatch):
    status = "VmHWM:\t  10240 kB\nVmRSS:\t 5120 kB\nRssAnon:\t 1024 kB\nVmRSSX:\t 1 kB\n"
    monkeypatch.setattr(footprint, "open", lambda path: io.StringIO(status) if path == "/proc/self/status" else None,
                        raising=False)
    assert footprint.rss_mb() == 5.0 and footprint.rss_mb("VmHWM") == 10.0 and footprint.rss_mb("RssAnon") == 1.0
    assert math.isnan(footprint.rss_mb("RssFile")) and math.isnan(footprint.rss_mb("VmRS"))

    def missing(path):
        raise PermissionError(path)

    monkeypatch.setattr(footprint, "open", missing, raising=False)
    assert math.isnan(footprint.rss_mb("VmHWM"))


def _sizes(path):
    bundle = Bundle.open(path)
    return bundle, {name: meta["bytes"] for name, meta in bundle.manifest.files.items()}


def _by_prefix(files: dict, *prefixes: str) -> int:
    return sum(size for name, size in files.items() if name.startswith(prefixes))


COLUMNS = ("modality", "language", "genre", "creator", "provider", "series_id", "duration", "release_ts", "episode",
           "popularity", "hubness")


def test_the_sections_of_the_golden_bundle_by_file(golden_bundle):
    bundle, files = _sizes(golden_bundle)
    assert footprint.sections(bundle) == {
        "table": files["items/embeddings.npy"] + files["items/scales.npy"],
        "ids": files["items/ids.bin"] + files["items/ids.offsets.npy"],
        "titles": _by_prefix(files, "items/titles."), "tags": _by_prefix(files, "items/tags."),
        "other columns": sum(files[f"items/{c}.npy"] for c in COLUMNS),
        "models": files["user_encoder.onnx"] + files["user_encoder.tflite"],
        "references": _by_prefix(files, "reference/"),
        "rest": files["README.md"] + files["model_card.json"] + _by_prefix(files, "space/")
        + (Path(golden_bundle) / "manifest.json").stat().st_size}
    assert sum(footprint.sections(bundle).values()) == bundle.size_bytes()
    raw = bundle.manifest.items.strings["titles"].raw_bytes  # titles compressed: the floor counts them as plain text
    assert footprint.floor_bytes(bundle) == files["items/embeddings.npy"] + files["items/scales.npy"] + \
        files["items/ids.bin"] + files["items/ids.offsets.npy"] + raw + 128 + 4 * 57


@pytest.mark.parametrize("version", [3, 4])
def test_the_sections_of_a_grown_bundle_with_tags_as_text(golden_bundle, tmp_path, version):
    bundle, files = _sizes(scaled_bundle(Bundle.open(golden_bundle), 70, tmp_path / "g", format_version=version))
    parts = footprint.sections(bundle)
    assert parts["tags"] == _by_prefix(files, "items/tags.") > 0 and parts["titles"] == _by_prefix(files, "items/titles.")
    assert parts["other columns"] == sum(files[f"items/{c}.npy"] for c in COLUMNS) + files["items/encoder_inputs.npy"]
    assert parts["references"] == 0 and parts["models"] == files["user_encoder.onnx"] + files["user_encoder.tflite"]
    assert sum(parts.values()) == bundle.size_bytes()
    table = files["items/embeddings.npy"] + files["items/scales.npy"]
    ids = files["items/ids.bin"] + files["items/ids.offsets.npy"]
    titles = (files["items/titles.bin"] + files["items/titles.offsets.npy"] if version == 3 else
              bundle.manifest.items.strings["titles"].raw_bytes + 128 + 4 * 71)
    assert footprint.floor_bytes(bundle) == table + ids + titles


def _run(**extra):
    return {"engine": "onnx", "end_to_end": {"p50_ms": 0.3, "p99_ms": 0.6}, "peak_rss_mb": 80.0,
            "steady_rss_mb": 70.0, "interpreter_rss_mb": 30.4, "steady_anon_rss_mb": 20.0, "steady_file_rss_mb": 50.6,
            "retrieve": {"p50_ms": 0.2}, "open_ms": 12.0, **extra}


def _figure(figure, measured, physical, x_physical, goal, x_goal):
    return {"figure": figure, "measured": measured, "physical": physical, "x physical": x_physical, "goal": goal,
            "x goal": x_goal}


def test_the_footprint_figures_by_hand():
    result = {"retrieval": {"table_bytes": 2 * 2**20, "scan_bound_ms": 0.25,
                            "methods": [{"method": "faiss", "skipped": "not installed"},
                                        {"method": "scan", "cold_p50_ms": 0.5}, {"method": "b", "cold_p50_ms": 9.0}]},
              "sections": {"table": 100, "ids": 20, "titles": 30}, "bundle_bytes": 3 * 2**20, "floor_bytes": 2**20,
              "footprint": [_run()]}
    assert footprint.figures(result) == [
        _figure("peak RSS, MB (onnx)", 80.0, "table 2.0 MB", 40.0, "table + 64 MB", pytest.approx(80 / 66)),
        _figure("steady RSS, MB (onnx)", 70.0, "table 2.0 MB", 35.0, "interpreter alone 30 MB", None),
        _figure("steady private (anon) RSS, MB (onnx)", 20.0, "mapped files 51 MB", None, "", None),
        _figure("recommend() p50, ms (onnx)", 0.3, "scan bound 0.25 ms", pytest.approx(1.2), "", None),
        _figure("recommend() p99, ms (onnx)", 0.6, "scan bound 0.25 ms (cold scan 0.50)", pytest.approx(2.4),
                "1.0 ms", pytest.approx(0.6)),  # 1.5x the bound is under 1 ms: the 1 ms goal holds
        _figure("retrieve stage p50, ms (onnx)", 0.2, "cold scan 0.50 ms", pytest.approx(0.4), "", None),
        _figure("open, ms (onnx)", 12.0, "", None, "", None),
        _figure("bundle bytes, MB", 3.0, "table + plain ids + titles 1.0 MB", 3.0, "1.3x table + ids + titles",
                pytest.approx(3 / 1.3)),
    ]


def test_footprint_figures_without_a_floor_a_cold_scan_or_a_retrieve_stage():
    result = {"retrieval": {"table_bytes": 2**20, "scan_bound_ms": 0.5, "methods": [{"method": "a", "skipped": "x"}]},
              "sections": {"table": 2**20, "ids": 2**19, "titles": 2**19}, "bundle_bytes": 2**20,
              "footprint": [_run(engine="tflite", retrieve={}), _run(engine="onnx")]}
    rows = footprint.figures(result)
    assert len(rows) == 15 and rows[7]["figure"] == "peak RSS, MB (onnx)"
    retrieve = rows[5]
    assert retrieve["figure"] == "retrieve stage p50, ms (tflite)" and math.isnan(retrieve["measured"])
    assert retrieve["physical"] == "cold scan nan ms" and math.isnan(retrieve["x physical"])
    assert rows[4]["physical"] == "scan bound 0.50 ms (cold scan nan)"
    assert rows[-1] == _figure("bundle bytes, MB", 1.0, "table + plain ids + titles 2.0 MB", 0.5,
                               "1.3x table + ids + titles", pytest.approx(1 / 2.6))  # the floor from the sections
    assert footprint.figures(dict(result, floor_bytes=0))[-1]["x physical"] == 0.5  # 0: not measured
    zero = dict(result, retrieval=dict(result["retrieval"], table_bytes=0, scan_bound_ms=0.0))
    rows = footprint.figures(zero)
    assert rows[0]["x physical"] is None and rows[0]["x goal"] == 80 / 64 and rows[3]["x physical"] is None
    assert rows[4]["goal"] == "1.0 ms" and rows[4]["x goal"] == 0.6  # no bound: the 1 ms goal still holds


@pytest.mark.parametrize("bound, goal, x_goal", [(0.6, "1.0 ms", 0.6), (2.0, "1.5x scan bound", 0.2),
                                                  (float("nan"), "1.0 ms", 0.6)])
def test_the_p99_goal_is_the_larger_of_1_ms_and_one_and_a_half_scan_bounds(bound, goal, x_goal):
    result = {"retrieval": {"table_bytes": 2**20, "scan_bound_ms": bound, "methods": []},
              "sections": {"table": 1, "ids": 1, "titles": 1}, "bundle_bytes": 3, "footprint": [_run()]}
    p99 = footprint.figures(result)[4]
    assert (p99["figure"], p99["goal"], p99["x goal"]) == ("recommend() p99, ms (onnx)", goal, pytest.approx(x_goal))


# ---------------------------------------------------------------- history_bench


def test_ms_figures_of_seconds():
    got = timing.seconds_ms([0.001, 0.003, 0.002])
    assert got == {"p50_ms": 2.0, "p99_ms": pytest.approx(2.98), "n": 3} and type(got["p50_ms"]) is float


def _quadratic_clock():
    """The k-th reading is k * k ms, so the pair (2m, 2m + 1) times 4m + 1 ms."""
    count = iter(range(10**6))
    return SimpleNamespace(perf_counter=lambda: next(count) ** 2 / 1e3)


def test_the_history_bench_alternates_the_stores_and_reports_each_one(monkeypatch, golden_bundle, tmp_path):
    pytest.importorskip("sqlcipher3")
    clock, seen = _quadratic_clock(), []

    def reading():  # what lies in the work folder at the first reading and at the last open
        if len(seen) in (0, 31):
            (folder,) = tmp_path.iterdir()
            dbs = {p.name: p.read_bytes()[:16] for p in folder.iterdir() if p.suffix == ".db"}
            seen.append((folder.name, dbs))
        else:
            seen.append(None)
        return clock.perf_counter()

    monkeypatch.setattr(history_bench, "time", SimpleNamespace(perf_counter=reading))
    out = history_bench.bench_history(golden_bundle, events=6, requests=3, opens=2, workdir=tmp_path)
    assert len(seen) == 32  # 4 readings a request and store, 2 an open and store
    (folder, dbs), last = seen[0], seen[31]
    assert folder.startswith("edgerec-histbench-") and set(dbs) == {"plain.db", "encrypted.db"} and last[0] == folder
    assert last[1]["plain.db"] == b"SQLite format 3\0" != last[1]["encrypted.db"]  # the second store is encrypted
    # pairs of readings in order: plain then encrypted, encrypted then plain, ... (record, then recommend)
    timed = {"plain": {"record": [1, 25, 33], "recommend": [5, 29, 37]},
             "encrypted": {"record": [9, 17, 41], "recommend": [13, 21, 45]}}
    opens = {"plain": [49, 61], "encrypted": [53, 57]}
    for name in ("plain", "encrypted"):
        for op in ("record", "recommend"):
            a = np.asarray(timed[name][op], np.float64)
            assert out[name][op] == {"p50_ms": pytest.approx(np.percentile(a, 50)),
                                     "p99_ms": pytest.approx(np.percentile(a, 99)), "n": 3}, (name, op)
        assert out[name]["open_ms"] == pytest.approx(float(np.median(opens[name])))
    assert out["ratio"] == {"record": pytest.approx(out["encrypted"]["record"]["p99_ms"] / out["plain"]["record"]["p99_ms"]),
                            "recommend": pytest.approx(out["encrypted"]["recommend"]["p99_ms"]
                                                       / out["plain"]["recommend"]["p99_ms"]),
                            "open": pytest.approx(1.0)}
    assert out["setup"] == {"events": 6, "requests": 3, "opens": 2}
    assert list(tmp_path.iterdir()) == []  # the two stores lived in a temporary folder under workdir, now gone


def test_the_history_bench_runs_its_documented_counts_by_default(monkeypatch, golden_bundle):
    """300 events, 300 requests, 30 opens (the calls replaced by counters: nothing is timed here)."""
    pytest.importorskip("sqlcipher3")
    from edgerec.runtime.recommender import Recommender

    counts = {"event": 0, "record": 0, "recommend": 0, "open": 0}

    def count(name, result=None):
        def call(*args, **kwargs):
            counts[name] += 1
            return result
        return call

    monkeypatch.setattr(Recommender, "record", count("record"))
    monkeypatch.setattr(Recommender, "recommend", count("recommend", []))
    monkeypatch.setattr(history_bench.HistoryStore, "record", count("event"))
    store = history_bench.HistoryStore
    monkeypatch.setattr(history_bench, "HistoryStore", lambda path, key: count("open")() or store(path, key=key))
    out = history_bench.bench_history(golden_bundle)
    assert counts == {"event": 600, "record": 600, "recommend": 602, "open": 60}
    assert out["setup"] == {"events": 300, "requests": 300, "opens": 30} and out["plain"]["record"]["n"] == 300


def test_the_history_bench_times_one_user_right_after_its_event_and_alternates_the_opens(monkeypatch, golden_bundle):
    pytest.importorskip("sqlcipher3")
    from edgerec.runtime.recommender import Recommender

    records, requests, opened = [], [], []
    record, recommend, store = Recommender.record, Recommender.recommend, history_bench.HistoryStore
    monkeypatch.setattr(Recommender, "record", lambda self, *a, **kw: records.append(a) or record(self, *a, **kw))
    monkeypatch.setattr(Recommender, "recommend", lambda self, *a, **kw: requests.append((a, kw))
                        or recommend(self, *a, **kw))
    monkeypatch.setattr(history_bench, "HistoryStore", lambda path, key: opened.append(path.name) or store(path, key=key))
    history_bench.bench_history(golden_bundle, events=2, requests=2, opens=3)
    assert [(user, event) for user, _, event in records] == [("u0", "finish")] * 4
    assert requests[2:] == [(("u0",), {"k": 10})] * 4  # after the two warm-up lists, the timed ones
    assert opened == ["plain.db", "encrypted.db", "encrypted.db", "plain.db", "plain.db", "encrypted.db"]


@pytest.mark.parametrize("counts, words", [(dict(requests=0), "requests must be a positive integer"),
                                           (dict(opens=0), "opens must be a positive integer"),
                                           (dict(events=-1), "events must be an integer from 0"),
                                           (dict(requests=2.0), "requests must be an integer"),
                                           (dict(events=10**7 + 1), "events must be an integer from 0 to 10000000"),
                                           (dict(requests=10**7 + 1), "requests must be a positive integer of at most"),
                                           (dict(opens=10**7 + 1), "opens must be a positive integer of at most")])
def test_the_history_bench_refuses_counts_that_give_no_figures(golden_bundle, counts, words):
    """No requests or opens was an IndexError (percentiles of no samples)."""
    with pytest.raises(ConfigError, match=f"the history benchmark's {words}"):  # before the bundle is opened
        history_bench.bench_history(Path(golden_bundle) / "missing", **counts)


def test_the_history_bench_command_line(monkeypatch, tmp_path, capsys):
    with pytest.raises(SystemExit):
        history_bench.main(["--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m edgerec.device_tests.history_bench [-h] [--events EVENTS]")
    assert "What encryption at rest costs" in " ".join(text.split())
    calls = []
    monkeypatch.setattr(history_bench, "bench_history", lambda *a: calls.append(a) or {"ratio": {"open": 1.5}})
    out = tmp_path / "h.json"
    assert history_bench.main(["b", "--json", str(out)]) == 0 and calls[-1] == ("b", 300, 300)
    text = '{\n  "ratio": {\n    "open": 1.5\n  }\n}'
    assert capsys.readouterr().out == text + "\n" and out.read_text() == text
    assert history_bench.main(["b", "--events", "7", "--requests", "9"]) == 0 and calls[-1] == ("b", 7, 9)
    monkeypatch.undo()
    assert history_bench.main([str(tmp_path / "alice" / "nope")]) == 1  # was a BundleError traceback
    err = capsys.readouterr().err
    assert err.startswith("Error: nope is not a bundle") and "alice" not in err


# ---------------------------------------------------------------- scorer_bench


def test_the_scorer_bench_reports_medians_of_each_part(monkeypatch):
    monkeypatch.setattr(scorer_bench, "time", _quadratic_clock())
    # readings per repeat r: 5r (begin), 5r + 1 (scored), 5r + 2 (explained), 5r + 3, 5r + 4 (kept side)
    out = scorer_bench.bench_scorer(RANKED, candidates=10, repeats=3)
    assert out == {"candidates": 10, "features_and_score_ms": pytest.approx(11.0),
                   "features_and_score_side_kept_ms": pytest.approx(17.0), "contributions_ms": pytest.approx(13.0)}
    assert scorer_bench.bench_scorer(RANKED, candidates=56, repeats=1)["candidates"] == 56  # the whole catalog


def test_the_scorer_bench_refuses_what_it_cannot_measure(golden_bundle, tmp_path):
    """No scorer was a SystemExit naming the bundle's full path; more candidates than items a ValueError."""
    copy = tmp_path / "alice" / "bundle"
    import shutil

    shutil.copytree(golden_bundle, copy)
    with pytest.raises(BundleError) as caught:
        scorer_bench.bench_scorer(copy)
    assert str(caught.value) == ("bundle ships no interpretable scorer (ranking.scorer); benchmark a bundle exported "
                                 "with one")
    for kwargs, words in ((dict(candidates=57), "candidates must be a positive integer of at most 56 (got 57)"),
                          (dict(candidates=0), "candidates must be a positive integer of at most 56 (got 0)"),
                          (dict(repeats=0), "repeats must be a positive integer"),
                          (dict(repeats=10**7 + 1), "repeats must be a positive integer of at most 10000000")):
        with pytest.raises(ConfigError, match=r"the scorer benchmark's " + words.replace("(", r"\(").replace(")", r"\)")):
            scorer_bench.bench_scorer(RANKED, **kwargs)
    small = scaled_bundle(Bundle.open(RANKED), 29, tmp_path / "small")
    with pytest.raises(BundleError, match=r"needs a catalog of at least 30 items \(this one has 29\)"):
        scorer_bench.bench_scorer(small, candidates=5)
    assert scorer_bench.bench_scorer(scaled_bundle(Bundle.open(RANKED), 30, tmp_path / "edge"), candidates=30,
                                     repeats=1)["candidates"] == 30


def test_the_scorer_bench_times_a_short_list_of_distinct_items_with_the_side_kept(monkeypatch, tmp_path):
    calls = {"side": [], "featurize": []}
    made = scorer_bench.device_featurizer

    def featurizer(cat):
        real = made(cat)

        class Spy:
            def side(self, history, recent):
                out = real.side(history, recent)
                calls["side"].append((history.tolist(), recent.tolist(), out))
                return out

            def __call__(self, *args):
                calls["featurize"].append(args)
                return real(*args)

        return Spy()

    monkeypatch.setattr(scorer_bench, "device_featurizer", featurizer)
    scorer_bench.bench_scorer(RANKED, candidates=40, repeats=2)
    (history, recent, side), = calls["side"]
    assert len(set(history)) == 30 and recent == history[-2:]
    full = [a for a in calls["featurize"] if len(a) == 8]
    kept = [a for a in calls["featurize"] if len(a) == 9]
    assert len(full) == len(kept) == 2 and all(a[-1] is side for a in kept)  # the kept figure times the kept path
    for args in full + kept:
        pool = args[2].tolist()
        assert len(set(pool)) == len(pool) == 40 and args[3].tolist() == history and args[7].tolist() == recent
    calls["side"].clear()
    scorer_bench.bench_scorer(RANKED, candidates=40, repeats=1)
    assert calls["side"][0][0] == history  # the same items for the same seed


def test_the_scorer_bench_times_200_lists_of_100_by_default(monkeypatch, tmp_path):
    lists = []
    made = scorer_bench.device_featurizer

    def featurizer(cat):
        real = made(cat)
        return type("Spy", (), {"side": staticmethod(real.side),
                                "__call__": lambda self, *a: lists.append(a[2].tolist()) or real(*a)})()

    monkeypatch.setattr(scorer_bench, "device_featurizer", featurizer)
    big = scaled_bundle(Bundle.open(RANKED), 120, tmp_path / "r120")
    out = scorer_bench.bench_scorer(big)
    assert out["candidates"] == 100 and len(lists) == 2 * 200 and all(len(pool) == 100 for pool in lists)
    first = lists[0]
    lists.clear()
    scorer_bench.bench_scorer(big, repeats=1, seed=0)
    assert lists[0] == first  # seed 0 by default
    lists.clear()
    scorer_bench.bench_scorer(big, repeats=1, seed=1)
    assert lists[0] != first


def test_the_scorer_bench_command_line(monkeypatch, capsys):
    monkeypatch.setattr(scorer_bench, "bench_scorer", lambda bundle: {"bundle": bundle})
    assert scorer_bench.main(["b"]) == 0 and capsys.readouterr().out == "{'bundle': 'b'}\n"
    usage = "python -m edgerec.device_tests.scorer_bench BUNDLE   # prints median milliseconds per short list\n"
    for argv, code in ((["-h"], 0), (["--help"], 0), ([], 2), (["a", "b"], 2), (["-h", "b"], 0), (["b", "-h"], 2)):
        assert scorer_bench.main(argv) == code and capsys.readouterr().out == usage, argv

    def fails(bundle):
        raise BundleError("broken")

    monkeypatch.setattr(scorer_bench, "bench_scorer", fails)
    assert scorer_bench.main(["b"]) == 1 and capsys.readouterr().err == "Error: broken\n"


def test_floors_too_small_to_mean_anything_get_no_ratio():
    """A 300-item catalog: its 10 KB table and 0.01 ms scan are lost beside the interpreter and the call."""
    result = {"retrieval": {"table_bytes": 10_000, "scan_bound_ms": 0.01,
                            "methods": [{"method": "scan", "cold_p50_ms": 0.02}]},
              "sections": {"table": 10_000, "ids": 3_000, "titles": 5_000}, "bundle_bytes": 400_000,
              "footprint": [_run()]}
    rows = {r["figure"]: r for r in footprint.figures(result)}
    assert all(r["x physical"] is None for r in rows.values())
    assert rows["peak RSS, MB (onnx)"]["x goal"] == pytest.approx(80 / (64 + 10_000 / 2**20))  # goals still hold
    half_mb = dict(result, retrieval=dict(result["retrieval"], table_bytes=2**19))  # 0.5 MB: under 1 MB, over 0.05
    assert {r["figure"]: r for r in footprint.figures(half_mb)}["peak RSS, MB (onnx)"]["x physical"] is None
    at_least = dict(result, retrieval=dict(result["retrieval"], table_bytes=2**20, scan_bound_ms=0.05))
    rows = {r["figure"]: r for r in footprint.figures(at_least)}
    assert rows["peak RSS, MB (onnx)"]["x physical"] == 80.0 and rows["recommend() p50, ms (onnx)"]["x physical"] == pytest.approx(6.0)
