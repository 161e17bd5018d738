"""The device benchmark and conformance: well-formed results, profiles and budgets honoured."""

import json

import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.device_tests import BenchConfig, check_conformance, get_profile, run_bench
from edgerec.errors import ConfigError, EdgerecError

FAST = BenchConfig(requests=40, warmup=5, users=20, history=8, retrieval_queries=30)


# budgets far above anything a tiny bundle needs: these tests check behaviour, not speed
LENIENT = {"p99_ms": "10000", "open_ms": "100000", "rss_mb": "4000"}


@pytest.fixture(scope="module")
def result(tiny_bundle):
    return run_bench(tiny_bundle, get_profile("stb-low", LENIENT), FAST)


def test_result_is_complete_and_within_budget(result):
    assert result["passed"], result["failures"]
    assert {r["backend"] for r in result["runs"]} == {"onnx", "tflite"}
    for run in result["runs"]:
        assert run["end_to_end"]["count"] == 40 and run["end_to_end"]["p99_ms"] >= run["end_to_end"]["p50_ms"] > 0
        assert {"history", "encode", "retrieve", "rank", "policies", "total"} <= set(run["stages"])
        # every measured user has a history, so every request runs the whole path (no cold-start shortcut):
        # it encodes the history, or reuses the vector of an unchanged one
        reused = run["counters"].get("user_cache_hits", 0)
        assert run["stages"]["encode"]["count"] + reused == run["stages"]["total"]["count"] == 40
        assert run["after_event"]["count"] == 8 and run["after_event"]["p50_ms"] > 0
        assert run["open_ms"] > 0
    methods = [m["method"] for m in result["retrieval"]["methods"]]
    assert methods[0].startswith("edgerec scan") and any("faiss" in m for m in methods)
    retrieval = result["retrieval"]
    assert retrieval["copy_bandwidth_gbs"] > 0 and retrieval["scan_fraction_of_bound"] > 0
    assert all(m["cold_p50_ms"] > 0 for m in retrieval["methods"] if "skipped" not in m)
    versus = retrieval["vs_faiss"]
    assert versus["method"] == methods[0] and versus["time_ratio"] > 0 and versus["time_ratio_cold"] > 0
    if "native" in methods[0]:  # the default scan reads the int8 table as stored: a quarter of faiss's floats
        assert retrieval["dtype"] == "int8" and versus["memory_ratio"] < 0.26
    assert len(result["encoders"]) == 2 and 0 < result["peak_rss_mb"] < 1000 and result["bundle_bytes"] > 0


def test_profile_is_applied_in_the_worker(result):
    assert result["affinity"] == [0]  # stb-low pins the benchmark to core 0
    assert result["profile"]["name"] == "stb-low" and result["profile"]["memory_mb"] == 2048


def test_budgets_decide_the_verdict_and_exit_code(tiny_bundle, tmp_path):
    strict = get_profile("stb-low", {"p99_ms": "0.0001", "bundle_mb": "0.01"})
    verdict = run_bench(tiny_bundle, strict, FAST)
    assert not verdict["passed"]
    assert any("p99" in f for f in verdict["failures"]) and any("bundle is" in f for f in verdict["failures"])
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(cli, ["bench", str(tiny_bundle), "--profile", "stb-low", "--set", "p99_ms=0.0001",
                                      "--requests", "20", "--json", str(out), "--plot", str(tmp_path / "b.png")])
    assert result.exit_code == 1 and "budget missed" in result.output
    saved = json.loads(out.read_text())
    assert saved["passed"] is False and "latencies_ms" not in saved["runs"][0]
    assert (tmp_path / "b.png").stat().st_size > 1000


def test_profiles_and_overrides():
    assert get_profile("phone-mid", {"threads": "2"}).threads == 2
    assert get_profile("stb-low", {"cpus": "0,1"}).cpus == (0, 1)
    with pytest.raises(ConfigError, match="unknown device profile"):
        get_profile("fridge")
    with pytest.raises(ConfigError, match="unknown profile field"):
        get_profile("stb-low", {"speed": "fast"})


def test_memory_cap_is_enforced(tiny_bundle):
    with pytest.raises(EdgerecError, match="benchmark process failed"):
        run_bench(tiny_bundle, get_profile("stb-low", {"memory_mb": "40"}), FAST)


def test_conformance_passes_and_catches_a_wrong_reference(tiny_bundle, tmp_path):
    report = check_conformance(str(tiny_bundle))
    assert report["passed"] and {m["format"] for m in report["models"]} == {"onnx", "tflite"}
    import shutil

    import numpy as np

    from edgerec.runtime.bundle import sha256_file

    bad = tmp_path / "bad"
    shutil.copytree(tiny_bundle, bad)
    vectors = np.load(bad / "reference" / "user_vectors.npy")
    np.save(bad / "reference" / "user_vectors.npy", -vectors)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["files"]["reference/user_vectors.npy"]["sha256"] = sha256_file(bad / "reference" / "user_vectors.npy")
    (bad / "manifest.json").write_text(json.dumps(manifest))
    assert not check_conformance(str(bad))["passed"]


def test_scaled_bundle_outgrows_its_model_and_still_recommends(tiny_bundle, tmp_path):
    """Items past the model's vocabulary read as the item they were copied from."""
    import numpy as np

    from edgerec.device_tests.scale import scaled_bundle
    from edgerec.runtime import Recommender
    from edgerec.runtime.bundle import Bundle

    source = Bundle.open(tiny_bundle)
    base = source.manifest.items.count
    path = scaled_bundle(source, base * 3, tmp_path / "scaled")
    rec = Recommender.open(path, history=tmp_path / "h.db")
    inputs = rec.catalog.encoder_inputs(np.arange(base * 3))
    assert inputs.max() <= base and inputs.min() >= 1
    assert np.array_equal(inputs[:base], np.arange(1, base + 1))  # the real items keep their own inputs
    for item in (base * 3 - 1, base * 2, 5):  # a history mostly of copies past the model's vocabulary
        rec.record("u", rec.catalog.item_id(item), "play")
    assert len(rec.recommend("u", k=10)) == 10
    rec.close()


def test_scaled_bundle_with_a_wrong_input_map_is_refused(tiny_bundle, tmp_path):
    import numpy as np

    from edgerec.device_tests.scale import scaled_bundle
    from edgerec.errors import BundleError
    from edgerec.runtime.bundle import Bundle
    from edgerec.runtime.catalog import ItemCatalog

    path = scaled_bundle(Bundle.open(tiny_bundle), 1_500, tmp_path / "scaled")
    np.save(path / "items" / "encoder_inputs.npy", np.zeros(1_500, np.int32))  # 0 is padding, not an item
    with pytest.raises(BundleError, match="encoder_inputs"):
        ItemCatalog(Bundle.open(path, verify=False))


def test_bench_through_the_ann_index(tiny_bundle):
    pytest.importorskip("usearch")
    result = run_bench(tiny_bundle, get_profile("stb-low", LENIENT),
                       BenchConfig(requests=20, warmup=3, users=10, history=8, retrieval_queries=10, ann="usearch"))
    for run in result["runs"]:
        assert run["ann"] == "usearch" and run["ann_build_s"] > 0
        assert "ann_fallback" not in run["counters"]  # the index answered every request itself
        assert run["counters"]["retrieve_streamed"] == 20  # ... and its candidates were the pool, no full scoring
