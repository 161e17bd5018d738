"""The device benchmark and conformance: well-formed results, profiles and budgets honoured."""

import importlib.util
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.device_tests import BenchConfig, check_conformance, get_profile, run_bench
from edgerec.device_tests.bench import check_budgets, device_peak_rss_mb
from edgerec.device_tests.timing import percentiles
from edgerec.errors import ConfigError, EdgerecError

FAST = BenchConfig(requests=40, warmup=5, users=20, history=8, retrieval_queries=30, long_history=25, long_requests=6)


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
        assert run["repeated"]["count"] == 8 and run["repeated"]["p99_ms"] >= run["repeated"]["p50_ms"] > 0
        long = run["long_history_after_event"]
        assert long["events"] == 25 and long["count"] == 6 and long["p99_ms"] >= long["p50_ms"] > 0
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


def test_footprint_of_each_engine_alone(result, tiny_bundle):
    from edgerec.runtime.bundle import Bundle
    from edgerec.runtime.catalog import ItemCatalog

    """Each engine in its own process: memory, time and the kernel that ran; the bundle's bytes by
    section add up to the bundle; the figures set each measurement beside its physical floor."""
    assert [f["engine"] for f in result["footprint"]] == [r["backend"] for r in result["runs"]]
    for f in result["footprint"]:
        assert f["kernel"] == result["runs"][0]["kernel"] and f["end_to_end"]["count"] == 40
        assert 0 < f["interpreter_rss_mb"] <= f["open_rss_mb"] <= f["peak_rss_mb"]
        assert f["steady_rss_mb"] <= f["peak_rss_mb"] and f["open_ms"] > 0
        assert f["id_index_bytes"] <= 5 * result["items"] + 8  # a 32-bit entry an item and its bucket starts, no dict
    assert sum(result["sections"].values()) == result["bundle_bytes"]
    assert result["sections"]["table"] == result["retrieval"]["table_bytes"] + 128 * 2  # two .npy headers
    figures = {row["figure"]: row for row in result["figures"]}
    peak = figures[f"peak RSS, MB ({result['footprint'][0]['engine']})"]
    table_mb = result["retrieval"]["table_bytes"] / 2**20
    assert peak["measured"] == result["footprint"][0]["peak_rss_mb"]
    assert table_mb < 1 and peak["x physical"] is None  # a tiny table's floor gives no ratio (by hand: guard tests)
    assert peak["x goal"] == pytest.approx(peak["measured"] / (table_mb + 64))
    floor = result["floor_bytes"]  # the table, ids and titles as plain text (titles are compressed)
    assert floor == result["sections"]["table"] + result["sections"]["ids"] + sum(
        len(t.encode()) for t in ItemCatalog(Bundle.open(tiny_bundle)).titles.all()) + 128 + 4 * (result["items"] + 1)
    assert floor < 2**20 and figures["bundle bytes, MB"]["x physical"] is None
    assert figures["bundle bytes, MB"]["x goal"] == pytest.approx(result["bundle_bytes"] / (1.3 * floor))


def test_profile_is_applied_in_the_worker(result):
    assert result["affinity"] == [0]  # stb-low pins the benchmark to core 0
    assert result["profile"]["name"] == "stb-low" and result["profile"]["memory_mb"] == 2048


def test_each_budget_is_judged_against_its_own_figure(result):
    """Budgets set at the measured figures pass; one just below its figure fails with exactly that message."""
    runs = {r["backend"]: r for r in result["runs"]}
    slowest = max(runs, key=lambda b: runs[b]["end_to_end"]["p99_ms"])
    slowest_open = max(runs, key=lambda b: runs[b]["open_ms"])
    exact = replace(get_profile("stb-low"), p99_ms=runs[slowest]["end_to_end"]["p99_ms"],
                    open_ms=runs[slowest_open]["open_ms"], rss_mb=device_peak_rss_mb(result),
                    bundle_mb=result["bundle_bytes"] / 1e6)
    assert check_budgets(result, exact) == []  # a figure equal to its budget meets it
    below = 1 - 1e-9
    cases = [("p99_ms", f"{slowest}: recommend() p99 "), ("open_ms", f"{slowest_open}: bundle open "),
             ("rss_mb", "peak RSS "), ("bundle_mb", "bundle is ")]
    for name, words in cases:
        failures = check_budgets(result, replace(exact, **{name: getattr(exact, name) * below}))
        assert len(failures) == 1 and failures[0].startswith(words), (name, failures)
    assert check_budgets(dict(result, runs=[]), exact) == [
        "no inference engine on this device runs this bundle's user encoder"]


def test_budget_messages_by_hand():
    """Every budget against a result small enough to check by eye; each failure names its figure."""
    result = {"runs": [{"backend": "onnx", "end_to_end": {"p99_ms": 4.0}, "open_ms": 120.0},
                       {"backend": "tflite", "end_to_end": {"p99_ms": 6.5}, "open_ms": 80.0}],
              "peak_rss_mb": 210.0, "bundle_bytes": 3_450_000}
    exact = replace(get_profile("stb-low"), p99_ms=6.5, open_ms=120.0, rss_mb=210.0, bundle_mb=3.45)
    assert check_budgets(result, exact) == []
    assert check_budgets(result, replace(exact, p99_ms=6.4)) == [
        "tflite: recommend() p99 6.50 ms exceeds the 6.4 ms budget"]
    assert check_budgets(result, replace(exact, p99_ms=3.9)) == [
        "onnx: recommend() p99 4.00 ms exceeds the 3.9 ms budget",
        "tflite: recommend() p99 6.50 ms exceeds the 3.9 ms budget"]
    assert check_budgets(result, replace(exact, open_ms=119.0)) == ["onnx: bundle open 120 ms exceeds 119.0 ms"]
    assert check_budgets(result, replace(exact, rss_mb=209.9)) == ["peak RSS 210 MB exceeds the 209.9 MB budget"]
    assert check_budgets(result, replace(exact, bundle_mb=3.4499999)) == [  # megabytes of 10**6 bytes
        "bundle is 3.5 MB, over the 3.4499999 MB budget"]
    assert check_budgets(dict(result, runs=[], peak_rss_mb=500.0), exact) == [
        "peak RSS 500 MB exceeds the 210.0 MB budget",
        "no inference engine on this device runs this bundle's user encoder"]


def test_the_memory_budget_judges_the_largest_single_engine_peak():
    """With per-engine footprints measured, the budget reads their largest peak, not the worker's (which ran
    every engine in one process); without them, the worker's peak."""
    runs = [{"backend": "onnx", "end_to_end": {"p99_ms": 1.0}, "open_ms": 10.0}]
    worker = {"runs": runs, "peak_rss_mb": 300.0, "bundle_bytes": 1_000_000}
    measured = dict(worker, footprint=[{"engine": "onnx", "peak_rss_mb": 120.0},
                                       {"engine": "tflite", "peak_rss_mb": 150.0}])
    assert device_peak_rss_mb(worker) == 300.0 and device_peak_rss_mb(dict(worker, footprint=[])) == 300.0
    assert device_peak_rss_mb(measured) == 150.0
    profile = replace(get_profile("stb-low"), p99_ms=5.0, open_ms=50.0, rss_mb=200.0, bundle_mb=2.0)
    assert check_budgets(measured, profile) == []
    assert check_budgets(worker, profile) == ["peak RSS 300 MB exceeds the 200.0 MB budget"]
    assert check_budgets(measured, replace(profile, rss_mb=149.0)) == ["peak RSS 150 MB exceeds the 149.0 MB budget"]
    assert check_budgets(measured, replace(profile, rss_mb=150.0)) == []


def test_percentiles_by_hand():
    assert percentiles([]) == {"count": 0}
    assert percentiles([4.0, 1.0, 3.0, 2.0]) == {"count": 4, "mean_ms": 2.5, "p50_ms": 2.5,
                                                 "p95_ms": pytest.approx(3.85), "p99_ms": pytest.approx(3.97),
                                                 "max_ms": 4.0}


def _bench_cli(bundle, out, *settings):
    lenient = [x for k, v in LENIENT.items() for x in ("--set", f"{k}={v}")]
    return CliRunner().invoke(cli, ["bench", str(bundle), "--profile", "stb-low", *lenient, *settings,
                                    "--requests", "20", "--json", str(out)])


def test_exit_code_follows_the_bundle_size_budget(tiny_bundle, tmp_path):
    """The size is the one figure known before the run: budgets one byte either side of it."""
    from edgerec.runtime.bundle import Bundle

    size_mb = Bundle.open(tiny_bundle).size_bytes() / 1e6
    ok = _bench_cli(tiny_bundle, tmp_path / "ok.json", "--set", f"bundle_mb={size_mb!r}", "--plot",
                    str(tmp_path / "b.png"))
    assert ok.exit_code == 0 and "within every budget of stb-low" in ok.output, ok.output
    assert json.loads((tmp_path / "ok.json").read_text())["passed"] is True
    assert (tmp_path / "b.png").stat().st_size > 1000
    over = _bench_cli(tiny_bundle, tmp_path / "over.json", "--set", f"bundle_mb={size_mb - 1e-6!r}")
    assert over.exit_code == 1 and "budget missed: bundle is" in over.output
    saved = json.loads((tmp_path / "over.json").read_text())
    assert saved["passed"] is False and len(saved["failures"]) == 1 and "latencies_ms" not in saved["runs"][0]


def test_a_failed_conformance_check_fails_the_run(tiny_bundle, tmp_path):
    bad = _wrong_reference(tiny_bundle, tmp_path)
    result = _bench_cli(bad, tmp_path / "bad.json", "--conformance")
    assert result.exit_code == 1
    assert "budget missed: conformance" in result.output
    saved = json.loads((tmp_path / "bad.json").read_text())
    assert saved["passed"] is False and len(saved["failures"]) == 1
    assert saved["failures"][0].startswith("conformance: the device does not reproduce the bundle's reference "
                                           "outputs: onnx (user_encoder.onnx): cosine -1.000 (at least 0.99")
    assert saved["conformance"]["passed"] is False
    assert {m["format"]: m["passed"] for m in saved["conformance"]["models"]} == {"onnx": False, "tflite": False}


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


def _wrong_reference(tiny_bundle, tmp_path):
    """A copy of the bundle whose reference vectors point the other way (checksums updated to match)."""
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
    return bad


def test_conformance_passes_and_catches_a_wrong_reference(tiny_bundle, tmp_path):
    report = check_conformance(str(tiny_bundle))
    assert report["passed"] and {m["format"] for m in report["models"]} == {"onnx", "tflite"}
    assert all(m["passed"] for m in report["models"])
    assert not check_conformance(str(_wrong_reference(tiny_bundle, tmp_path)))["passed"]


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
    if importlib.util.find_spec("usearch") is None:  # not importorskip: the runtime imports it in the safe order
        pytest.skip("needs usearch")
    result = run_bench(tiny_bundle, get_profile("stb-low", LENIENT),
                       BenchConfig(requests=20, warmup=3, users=10, history=8, retrieval_queries=10, ann="usearch"))
    for run in result["runs"]:
        assert run["ann"] == "usearch" and run["ann_build_s"] > 0
        assert "ann_fallback" not in run["counters"]  # the index answered every request itself
        assert run["counters"]["retrieve_streamed"] == 20  # ... and its candidates were the pool, no full scoring


# ---------------------------------------------------------------- hostile arguments (outside audit)

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"


@pytest.mark.parametrize("values", [dict(requests=0), dict(requests=-5), dict(items=-1), dict(items=0),
                                    dict(users=True), dict(requests=2.5), dict(items=10**11)])  # was a MemoryError
def test_bench_config_refuses_counts_below_one(values):
    with pytest.raises(ConfigError, match="must be a whole number >= 1"):
        BenchConfig(**values)


@pytest.mark.parametrize("field, raw", [("p99_ms", "abc"), ("p99_ms", "nan"), ("rss_mb", "-1"), ("threads", "0"),
                                        ("threads", "two"), ("cpus", "x"), ("memory_mb", "0")])
def test_bad_profile_overrides_are_config_errors(field, raw):
    with pytest.raises(ConfigError, match=f"profile field {field} takes"):
        get_profile("phone-mid", {field: raw})


def test_a_damaged_bundle_is_one_clear_error_before_any_child_runs(tmp_path):
    from edgerec.errors import BundleError

    copy = tmp_path / "bundle"
    shutil.copytree(GOLDEN, copy)
    with open(copy / "user_encoder.onnx", "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(BundleError, match="user_encoder.onnx has 100 bytes") as caught:
        run_bench(copy, get_profile("phone-mid"), FAST)
    assert "Traceback" not in str(caught.value)


def test_a_child_reports_an_edgerec_error_as_one_line(tmp_path, capsys):
    from edgerec.device_tests.__main__ import main

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"bundle": str(tmp_path / "gone"), "profile": get_profile("phone-mid").to_dict(),
                                "config": {"requests": 1}}))
    assert main(["--worker", str(spec), str(tmp_path / "out.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_retrieval_baselines_run_on_a_catalog_smaller_than_their_k():
    from edgerec.device_tests.parts_bench import bench_retrieval
    from edgerec.runtime.bundle import Bundle

    n = Bundle.open(GOLDEN).manifest.items.count
    assert n < 100
    out = bench_retrieval(GOLDEN, get_profile("phone-mid"), replace(FAST, retrieval_queries=4))
    assert out["k"] == n and all("p50_ms" in row or "skipped" in row for row in out["methods"])


def test_device_tools_refuse_a_json_output_over_a_bundle_file_before_the_run(tmp_path, monkeypatch):
    """`python -m edgerec.device_tests b --json b/manifest.json` and history_bench replaced the manifest."""
    import shutil
    from pathlib import Path

    from edgerec.device_tests import __main__ as device_main
    from edgerec.device_tests import timing

    golden = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"
    bundle = Path(shutil.copytree(golden, tmp_path / "b"))
    before = (bundle / "manifest.json").read_bytes()
    monkeypatch.setattr(device_main, "run_bench", lambda *a, **k: pytest.fail("the benchmark ran"))
    assert device_main.main([str(bundle), "--json", str(bundle / "manifest.json")]) == 2
    assert timing.print_result(lambda: pytest.fail("the benchmark ran"), str(bundle / "manifest.json")) == 2
    assert (bundle / "manifest.json").read_bytes() == before


def test_a_bench_refuses_cpus_this_machine_does_not_have_before_it_starts():
    """`--set cpus=5` on a 2-core machine ended in the benchmark process's OSError traceback."""
    import os
    from pathlib import Path

    from edgerec.device_tests.bench import BenchConfig, run_bench
    from edgerec.device_tests.profiles import get_profile
    from edgerec.errors import ConfigError

    golden = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"
    missing = max(os.sched_getaffinity(0)) + 1
    with pytest.raises(ConfigError, match=rf"pins CPUs \[{missing}\], and this machine lets this process use"):
        run_bench(golden, get_profile("phone-mid", {"cpus": str(missing)}), BenchConfig(requests=2))


def test_inspect_of_a_packed_bundle_shows_the_file_that_ships(tmp_path):
    from pathlib import Path

    from click.testing import CliRunner

    from edgerec.cli.main import cli
    from edgerec.runtime.pack import pack

    golden = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"
    packed = pack(golden, tmp_path / "g.edgerec")
    result = CliRunner().invoke(cli, ["inspect", str(packed)])
    assert result.exit_code == 0 and f"{packed.stat().st_size:,}" in result.output
    assert "bytes by section (unpacked)" in result.output
