"""Guards of the benchmark's deterministic parts: device profiles and their overrides, percentiles and
timed calls (a fake clock, never wall-clock speed), the grown catalog of `edgerec bench --items`, the
arguments of `python -m edgerec.device_tests` and its child entries (the measuring runs monkeypatched)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.device_tests import __main__ as entry
from edgerec.device_tests import timing
from edgerec.device_tests.bench import BenchConfig, summary
from edgerec.device_tests.profiles import PROFILES, DeviceProfile, get_profile
from edgerec.device_tests.scale import scaled_bundle
from edgerec.errors import BundleError, ConfigError
from edgerec.runtime import Recommender
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog import ItemCatalog, string_column
from edgerec.runtime.item_table import StoredTable
from edgerec.runtime.tag_column import read_tags

RANKED = Path(__file__).resolve().parents[2] / "spec" / "golden" / "ranked"
FIELDS = "threads, cpus, memory_mb, p99_ms, rss_mb, bundle_mb, open_ms, description"


# ---------------------------------------------------------------- profiles


def test_the_profiles_and_their_budgets_are_as_documented():
    assert DeviceProfile("x").to_dict() == {"name": "x", "threads": 1, "cpus": None, "memory_mb": None, "p99_ms": 25.0,
                                            "rss_mb": 512.0, "bundle_mb": 50.0, "open_ms": 500.0, "description": ""}
    assert list(PROFILES) == ["phone-mid", "stb-low", "tv-high"]
    assert {name: p.to_dict() for name, p in PROFILES.items()} == {
        "phone-mid": {"name": "phone-mid", "threads": 1, "cpus": None, "memory_mb": None, "p99_ms": 10.0,
                      "rss_mb": 400.0, "bundle_mb": 30.0, "open_ms": 200.0,
                      "description": "mid-range phone: one big core for the app, a few hundred MB"},
        "stb-low": {"name": "stb-low", "threads": 1, "cpus": (0,), "memory_mb": 2048, "p99_ms": 25.0, "rss_mb": 300.0,
                    "bundle_mb": 20.0, "open_ms": 300.0,
                    "description": "low-end set-top box: one pinned core, a hard memory cap"},
        "tv-high": {"name": "tv-high", "threads": 2, "cpus": None, "memory_mb": None, "p99_ms": 8.0, "rss_mb": 800.0,
                    "bundle_mb": 100.0, "open_ms": 200.0,
                    "description": "high-end smart TV: two cores, generous memory"},
    }


def test_overrides_replace_only_their_fields_and_take_command_line_words():
    assert get_profile("tv-high") is PROFILES["tv-high"] and get_profile("tv-high", {}) is PROFILES["tv-high"]
    got = get_profile("stb-low", {"threads": "3", "cpus": "0, 2", "memory_mb": "none", "p99_ms": "7.5",
                                  "rss_mb": 100, "bundle_mb": "1e-3", "open_ms": "1", "description": 12})
    assert got == replace(PROFILES["stb-low"], threads=3, cpus=(0, 2), memory_mb=None, p99_ms=7.5, rss_mb=100.0,
                          bundle_mb=0.001, open_ms=1.0, description="12")
    assert type(got.threads) is int and type(got.rss_mb) is float and type(got.open_ms) is float
    assert PROFILES["stb-low"].threads == 1 and PROFILES["stb-low"].memory_mb == 2048  # the table is not edited
    for raw in (None, "", "any"):
        assert get_profile("stb-low", {"cpus": raw}).cpus is None
    assert get_profile("phone-mid", {"cpus": "0"}).cpus == (0,) and get_profile("phone-mid", {"cpus": 3}).cpus == (3,)
    for raw in (None, ""):
        assert get_profile("stb-low", {"memory_mb": raw}).memory_mb is None
    edge = get_profile("phone-mid", {"threads": "1", "memory_mb": 1, "p99_ms": 1e-9, "open_ms": 2.0})
    assert (edge.threads, edge.memory_mb, edge.p99_ms, edge.open_ms) == (1, 1, 1e-9, 2.0)
    assert type(edge.memory_mb) is int and get_profile("phone-mid", {"threads": 4.0}).threads == 4


@pytest.mark.parametrize("field, raw, kind", [
    ("threads", "0", "a whole number >= 1"), ("threads", None, "a whole number >= 1"),
    ("threads", 1.5, "a whole number >= 1"), ("threads", True, "a whole number >= 1"),
    ("threads", "1.0", "a whole number >= 1"),
    ("memory_mb", "0", "a whole number of MB >= 1 (or none)"), ("memory_mb", 2.5, "a whole number of MB >= 1 (or none)"),
    ("memory_mb", "any", "a whole number of MB >= 1 (or none)"),
    ("cpus", "-1", "CPU numbers such as 0,1 (or any)"), ("cpus", "0,-2", "CPU numbers such as 0,1 (or any)"),
    ("cpus", "none", "CPU numbers such as 0,1 (or any)"), ("cpus", [0, 1], "CPU numbers such as 0,1 (or any)"),
    ("p99_ms", "0", "a positive number"), ("p99_ms", "-0.5", "a positive number"), ("p99_ms", "inf", "a positive number"),
    ("p99_ms", "nan", "a positive number"), ("rss_mb", None, "a positive number"), ("bundle_mb", True, "a positive number"),
    ("open_ms", [1], "a positive number"), ("p99_ms", "", "a positive number"),
])
def test_a_bad_override_names_its_field_what_it_takes_and_the_value(field, raw, kind):
    """None, True and 1.5 threads reached int()/float(): a TypeError, or one thread run silently."""
    with pytest.raises(ConfigError) as caught:
        get_profile("phone-mid", {field: raw})
    assert str(caught.value) == f"profile field {field} takes {kind}, not {raw!r}"
    assert caught.value.__suppress_context__


def test_unknown_profiles_and_fields_list_the_known_ones():
    for name in ("fridge", None, ["phone-mid"]):  # a list was a TypeError (unhashable)
        with pytest.raises(ConfigError) as caught:
            get_profile(name)
        assert str(caught.value) == f"unknown device profile {name!r}; choose one of phone-mid, stb-low, tv-high"
    for key in ("speed", "name"):
        with pytest.raises(ConfigError) as caught:
            get_profile("stb-low", {"threads": "2", key: "x"})
        assert str(caught.value) == f"unknown profile field {key!r}; use one of {FIELDS}"


# ---------------------------------------------------------------- timing


def test_percentiles_of_known_samples():
    assert timing.percentiles([]) == {"count": 0}
    got = timing.percentiles(list(range(101)))
    assert got == {"count": 101, "mean_ms": 50.0, "p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0, "max_ms": 100.0}
    assert all(type(v) is float for k, v in got.items() if k != "count") and type(got["count"]) is int
    assert timing.percentiles([7]) == {"count": 1, "mean_ms": 7.0, "p50_ms": 7.0, "p95_ms": 7.0, "p99_ms": 7.0,
                                       "max_ms": 7.0}
    skewed = timing.percentiles([1.0] * 99 + [1001.0])  # one slow call of a hundred: p99 interpolates to it
    assert skewed["p50_ms"] == 1.0 and skewed["p95_ms"] == 1.0 and skewed["p99_ms"] == pytest.approx(11.0)
    assert skewed["mean_ms"] == 11.0 and skewed["max_ms"] == 1001.0


class Clock:
    """perf_counter that moves only when the timed code says so."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_time_calls_warms_up_then_times_each_input_with_before_untimed(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(timing.time, "perf_counter", clock)
    seen, befores = [], []

    def fn(i):
        seen.append(i)
        clock.now += (i + 1) / 1000  # call i takes i + 1 ms

    def before():
        befores.append(len(seen))
        clock.now += 50.0  # eviction: long, and never counted

    assert timing.time_calls(fn, 7, before) == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    assert seen == [0, 1, 2, 3, 4] + list(range(7)) and befores == [5, 6, 7, 8, 9, 10, 11]
    seen.clear()
    assert timing.time_calls(fn, 3) == pytest.approx([1.0, 2.0, 3.0]) and seen == [0, 1, 2, 0, 1, 2]
    seen.clear()
    assert timing.time_calls(fn, 0) == [] and seen == []


def test_timed_warms_up_as_asked_then_times_each_call(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(timing.time, "perf_counter", clock)
    calls = []

    def fn():
        calls.append(1)
        clock.now += len(calls) / 1000

    assert timing.timed(fn, 3) == pytest.approx([6.0, 7.0, 8.0]) and len(calls) == 8  # 5 warm-up calls first
    calls.clear()
    assert timing.timed(fn, 2, warmup=1) == pytest.approx([2.0, 3.0]) and len(calls) == 3
    calls.clear()
    assert timing.timed(fn, 2, warmup=0) == pytest.approx([1.0, 2.0])


def test_peak_rss_reads_vmhwm_else_falls_back_to_the_rusage_peak(monkeypatch):
    status = "Name:\tpython\nVmPeak:\t 999999 kB\nVmHWM:\t  204800 kB\nVmRSS:\t 1024 kB\n"
    asked = []
    monkeypatch.setattr(timing, "open", lambda path: asked.append(path) or io.StringIO(status), raising=False)
    usage = SimpleNamespace(RUSAGE_SELF=0, getrusage=lambda who: SimpleNamespace(ru_maxrss=3072 if who == 0 else 1))
    monkeypatch.setattr(timing, "resource", usage)
    assert timing.peak_rss_mb() == 200.0 and asked == ["/proc/self/status"]
    monkeypatch.setattr(timing, "open", lambda path: io.StringIO("VmPeak: 8 kB\nVmHWMX: 1 kB\n"), raising=False)
    assert timing.peak_rss_mb() == 3.0  # no VmHWM line: ru_maxrss, KiB

    def missing(path):
        raise FileNotFoundError(path)

    monkeypatch.setattr(timing, "open", missing, raising=False)
    assert timing.peak_rss_mb() == 3.0


def test_the_rusage_peak_is_read_in_the_units_of_the_platform(monkeypatch):
    """macOS gives ru_maxrss in bytes: its peak read as KiB was 1024 times too large (every RSS budget missed)."""
    monkeypatch.setattr(timing, "open", lambda path: io.StringIO(""), raising=False)  # no /proc: no VmHWM line
    monkeypatch.setattr(timing, "resource", SimpleNamespace(
        RUSAGE_SELF=0, getrusage=lambda who: SimpleNamespace(ru_maxrss=200 * 2**20)))
    monkeypatch.setattr(timing.sys, "platform", "darwin")
    assert timing.peak_rss_mb() == 200.0
    monkeypatch.setattr(timing.sys, "platform", "linux")
    assert timing.peak_rss_mb() == 200.0 * 1024


def test_a_footprint_peak_that_could_not_be_read_leaves_the_budget_to_the_workers_peak():
    """Without /proc the footprint's peaks are NaN: max() kept a leading NaN, and NaN > budget is False, so the
    memory budget passed unread."""
    from edgerec.device_tests.bench import check_budgets, device_peak_rss_mb

    nan = float("nan")
    result = {"runs": [{"backend": "onnx", "end_to_end": {"p99_ms": 1.0}, "open_ms": 1.0}], "peak_rss_mb": 300.0,
              "bundle_bytes": 1000, "footprint": [{"peak_rss_mb": nan}, {"peak_rss_mb": nan}]}
    assert device_peak_rss_mb(result) == 300.0
    assert check_budgets(result, replace(PROFILES["phone-mid"], rss_mb=200.0)) == [
        "peak RSS 300 MB exceeds the 200.0 MB budget"]
    for peaks in ([nan, 150.0], [150.0, nan]):
        assert device_peak_rss_mb(dict(result, footprint=[{"peak_rss_mb": p} for p in peaks])) == 150.0


# ---------------------------------------------------------------- the grown catalog


def _columns(path: Path) -> dict:
    bundle = Bundle.open(path)
    items = bundle.manifest.items
    out = {name: string_column(bundle, items.strings[name]).all() for name in ("ids", "titles")}
    out["tags"] = read_tags(bundle).all()
    for name, column in {**items.categorical, **items.numeric}.items():
        values = column.values(bundle, name, items.count, mmap=False)
        out[name] = [column.vocab[v] for v in values] if hasattr(column, "vocab") and column.vocab else values.tolist()
    out["vectors"] = StoredTable.read(bundle, items.embeddings).dequantize()
    return out


@pytest.fixture
def grown(golden_bundle, tmp_path):
    """Made for each test (0.1 s): a mutation run maps a module fixture's code to its first test only."""
    return scaled_bundle(Bundle.open(golden_bundle), 90, tmp_path / "g90", seed=3)


def test_a_grown_bundle_keeps_every_row_with_its_own_metadata(golden_bundle, grown):
    """Rows past the original are copies of the row their encoder input names: titles, tags, every
    column; vectors close to it, not equal; the originals first, as they are; new ids x0, x1, ..."""
    source, m = Bundle.open(golden_bundle), Bundle.open(grown).manifest
    n = source.manifest.items.count
    assert m.items.count == 90 and m.name == f"{source.manifest.name}-90" and m.dim == source.manifest.dim
    inputs = ItemCatalog(Bundle.open(grown)).encoder_inputs(np.arange(90))
    picks = inputs - 1  # the golden bundle has no encoder inputs: row r reads as r + 1
    assert np.array_equal(picks[:n], np.arange(n)) and picks.min() >= 0 and picks.max() < n
    assert len(set(picks[n:].tolist())) > 5  # copies of many rows, not one
    old, new = _columns(golden_bundle), _columns(grown)
    assert new["ids"] == [f"x{i}" for i in range(90)]
    for name in old:
        if name not in ("ids", "vectors"):
            assert new[name] == [old[name][p] for p in picks.tolist()], name
    assert set(new) == set(old)
    norms = np.linalg.norm(new["vectors"], axis=1)
    assert np.allclose(norms, 1.0, atol=0.02)
    apart = np.abs(new["vectors"] - old["vectors"][picks]).max(axis=1)  # the stored vectors are unit already
    assert apart[:n].max() < 0.01  # the originals, re-quantized
    assert 0.02 < apart[n:].min() and apart[n:].max() < 0.3  # the copies, perturbed (noise of 0.05 a dimension)
    table = Bundle.open(grown).manifest.items.embeddings
    assert StoredTable.read(Bundle.open(grown), table).dtype_name == StoredTable.read(
        source, source.manifest.items.embeddings).dtype_name


def test_a_grown_bundle_keeps_models_sections_and_settings(golden_bundle, grown):
    source, bundle = Bundle.open(golden_bundle), Bundle.open(grown)
    sm, m = source.manifest, bundle.manifest
    assert [e.to_dict() for e in m.models] == [e.to_dict() for e in sm.models]
    for model in sm.models:
        assert (Path(grown) / model.file).read_bytes() == (Path(golden_bundle) / model.file).read_bytes()
    assert (m.defaults, m.budgets, m.data_version, m.metrics, m.reference) == (
        sm.defaults, sm.budgets, sm.data_version, {}, {})
    assert m.ranking == sm.ranking and m.ranking["context_prior"]  # was dropped: no context prior on the grown copy
    assert m.space == sm.space  # ... nor the shared space: its content vectors now follow the rows
    picks = ItemCatalog(bundle).encoder_inputs(np.arange(90)) - 1
    content = source.array(sm.space["content"]["file"], mmap=False)
    assert np.array_equal(bundle.array(m.space["content"]["file"], mmap=False), content[picks])
    for bridge in sm.space["bridges"]:
        for key in ("weights", "bias", "prior"):
            if key in bridge:
                assert (Path(grown) / bridge[key]).read_bytes() == (Path(golden_bundle) / bridge[key]).read_bytes()
    assert "reference/top_k.npy" not in m.files and "README.md" not in m.files


def test_a_grown_ranked_bundle_still_ranks_with_its_scorer(tmp_path):
    """The scorer (ranking.scorer and its arrays) went missing: `bench --items` timed another pipeline."""
    from edgerec.runtime.ranking import open_scorer

    grown = scaled_bundle(Bundle.open(RANKED), 70, tmp_path / "r70")
    m, sm = Bundle.open(grown).manifest, Bundle.open(RANKED).manifest
    assert m.ranking == sm.ranking and set(sm.ranking["scorer"]["arrays"].values()) <= set(m.files)
    with Recommender.open(grown, history=tmp_path / "h.db") as rec:
        assert open_scorer(rec.models.manifest, rec.models.bundle) is not None
        assert [e.role for e in rec.bundle.manifest.models] == ["user_encoder", "ranker"]


def test_growing_a_grown_bundle_reads_each_copy_as_its_original(grown, tmp_path):
    twice = scaled_bundle(Bundle.open(grown), 120, tmp_path / "twice", seed=1)
    first = ItemCatalog(Bundle.open(grown)).encoder_inputs(np.arange(90))
    inputs = ItemCatalog(Bundle.open(twice)).encoder_inputs(np.arange(120))
    assert np.array_equal(inputs[:90], first) and set(inputs[90:].tolist()) <= set(first.tolist())
    assert Bundle.open(twice).manifest.name.endswith("-90-120")


def test_a_smaller_catalog_keeps_the_first_rows_and_seeds_pick_other_copies(golden_bundle, tmp_path):
    small = scaled_bundle(Bundle.open(golden_bundle), 12, tmp_path / "small")
    old, new = _columns(golden_bundle), _columns(small)
    assert new["titles"] == old["titles"][:12] and new["ids"] == [f"x{i}" for i in range(12)]
    a = ItemCatalog(Bundle.open(scaled_bundle(Bundle.open(golden_bundle), 80, tmp_path / "a"))).encoder_inputs(
        np.arange(80))
    b = ItemCatalog(Bundle.open(scaled_bundle(Bundle.open(golden_bundle), 80, tmp_path / "b", seed=0))
                    ).encoder_inputs(np.arange(80))
    c = ItemCatalog(Bundle.open(scaled_bundle(Bundle.open(golden_bundle), 80, tmp_path / "c", seed=5))
                    ).encoder_inputs(np.arange(80))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("version", [2, 4])
def test_a_grown_bundle_in_an_older_format(golden_bundle, tmp_path, version):
    path = scaled_bundle(Bundle.open(golden_bundle), 60, tmp_path / "old", format_version=version)
    assert Bundle.open(path).manifest.format_version == version
    assert _columns(path)["titles"][:56] == _columns(golden_bundle)["titles"]


@pytest.mark.parametrize("dtype", ["fp16", "int8-row"])
def test_a_grown_bundle_keeps_the_table_dtype_of_its_source(golden_bundle, tmp_path, monkeypatch, dtype):
    quantize = StoredTable.quantize.__func__
    monkeypatch.setattr(StoredTable, "quantize", classmethod(lambda cls, vectors, kind="int8": quantize(cls, vectors,
                                                                                                      dtype)))
    source = scaled_bundle(Bundle.open(golden_bundle), 60, tmp_path / "source")  # a source stored as `dtype`
    monkeypatch.undo()
    grown = Bundle.open(scaled_bundle(Bundle.open(source), 70, tmp_path / "grown"))
    assert StoredTable.read(grown, grown.manifest.items.embeddings).dtype_name == dtype


def test_a_catalog_of_one_item(golden_bundle, tmp_path):
    one = Bundle.open(scaled_bundle(Bundle.open(golden_bundle), 1, tmp_path / "one"))
    assert one.manifest.items.count == 1 and string_column(one, one.manifest.items.strings["ids"]).all() == ["x0"]


@pytest.mark.parametrize("count", [0, -3, 2.0, True, None])
def test_a_grown_catalog_needs_one_item_or_more(golden_bundle, tmp_path, count):
    with pytest.raises(ConfigError, match=r"a grown catalog needs a whole number of items >= 1 \(got "):
        scaled_bundle(Bundle.open(golden_bundle), count, tmp_path / "none")
    assert not (tmp_path / "none").exists()
    with pytest.raises(BundleError):  # the writer refuses a folder that is not empty, as for any bundle
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("x")
        scaled_bundle(Bundle.open(golden_bundle), 3, tmp_path / "full")


# ---------------------------------------------------------------- python -m edgerec.device_tests


def _result(passed: bool) -> dict:
    return {"passed": passed, "failures": [] if passed else ["peak RSS 9 MB exceeds the 1 MB budget"],
            "runs": [{"backend": "onnx", "latencies_ms": [1.0, 2.0], "end_to_end": {"p99_ms": 2.0}}]}


def test_the_entry_runs_the_bench_with_its_arguments_and_exits_on_the_verdict(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(entry, "run_bench", lambda bundle, profile, cfg: calls.append((bundle, profile, cfg))
                        or _result(passed=True))
    checked = []  # the conformance check itself: tests/device/test_device_runner_conformance_m4.py
    monkeypatch.setattr(entry, "add_conformance", lambda result, bundle: checked.append(bundle) or {"passed": True})
    out = tmp_path / "r.json"
    assert entry.main(["b", "--json", str(out)]) == 0
    assert checked == ["b"]
    bundle, profile, cfg = calls[-1]
    assert bundle == "b" and profile is PROFILES["phone-mid"] and cfg == BenchConfig(requests=400, items=None, ann=None)
    printed = capsys.readouterr().out
    expected = json.dumps(summary(_result(passed=True)), indent=2)
    assert printed == expected + "\n" and out.read_text() == expected and "latencies_ms" not in printed
    monkeypatch.setattr(entry, "run_bench", lambda bundle, profile, cfg: calls.append((bundle, profile, cfg))
                        or _result(passed=False))
    assert entry.main(["b", "--profile", "tv-high", "--items", "500", "--requests", "7", "--ann", "usearch"]) == 1
    assert calls[-1][1] is PROFILES["tv-high"] and calls[-1][2] == BenchConfig(requests=7, items=500, ann="usearch")


@pytest.mark.parametrize("argv, words", [
    (["b", "--profile", "fridge"], "Error: unknown device profile 'fridge'"),
    (["b", "--items", "0"], "Error: the benchmark's items must be a whole number >= 1"),
    (["b", "--requests", "-1"], "Error: the benchmark's requests must be a whole number >= 1"),
])
def test_a_bad_argument_is_one_line_of_words_and_exit_2(monkeypatch, capsys, argv, words):
    """These were tracebacks (ConfigError raised through main)."""
    monkeypatch.setattr(entry, "run_bench", lambda *a: pytest.fail("no run for a bad argument"))
    assert entry.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(words) and len(err.strip().splitlines()) == 1


def test_a_bundle_that_is_not_one_is_exit_2_without_its_folders(tmp_path, capsys):
    assert entry.main([str(tmp_path / "alice" / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: nope is not a bundle") and "alice" not in err and "Traceback" not in err


def test_the_entry_reads_its_arguments_from_the_command_line(monkeypatch, capsys):
    monkeypatch.setattr(entry.sys, "argv", ["python -m edgerec.device_tests", "--worker"])
    assert entry.main() == 2 and capsys.readouterr().err.startswith("Error: --worker takes SPEC OUT")
    with pytest.raises(SystemExit) as caught:  # an engine of the index the entry does not know
        entry.main(["b", "--ann", "hnsw"])
    assert caught.value.code == 2 and "invalid choice: 'hnsw'" in capsys.readouterr().err


def test_the_entry_help_names_the_command_and_what_it_does(capsys):
    with pytest.raises(SystemExit):
        entry.main(["--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m edgerec.device_tests [-h] [--profile PROFILE] [--items ITEMS]")
    assert "the benchmark with only the runtime installed" in " ".join(text.split()) and "--json JSON_OUT" in text


def _spec(tmp_path: Path, **extra) -> Path:
    spec = tmp_path / "spec.json"
    profile = dict(PROFILES["stb-low"].to_dict(), cpus=[0, 1])
    spec.write_text(json.dumps({"bundle": "b", "profile": profile, "config": {"requests": 3, "items": 9}, **extra}))
    return spec


def test_the_child_entries_measure_under_the_spec_and_write_the_result(monkeypatch, tmp_path):
    from edgerec.device_tests import footprint

    calls = []
    monkeypatch.setattr(entry, "run_worker", lambda *a: calls.append(("worker", *a)) or {"worker": 1})
    monkeypatch.setattr(footprint, "footprint_worker", lambda *a: calls.append(("footprint", *a)) or {"engine": 2})
    out = tmp_path / "out.json"
    assert entry.main(["--worker", str(_spec(tmp_path, source="s")), str(out)]) == 0
    assert json.loads(out.read_text()) == {"worker": 1}
    expected_profile = replace(PROFILES["stb-low"], cpus=(0, 1))
    assert calls[-1] == ("worker", "b", expected_profile, BenchConfig(requests=3, items=9), "s")
    assert entry.main(["--worker", str(_spec(tmp_path)), str(out)]) == 0 and calls[-1][-1] is None
    assert entry.main(["--footprint", str(_spec(tmp_path, engine="tflite")), str(out)]) == 0
    assert json.loads(out.read_text()) == {"engine": 2}
    assert calls[-1] == ("footprint", "b", "tflite", expected_profile, BenchConfig(requests=3, items=9))
    spec = json.loads((tmp_path / "spec.json").read_text())
    spec["profile"]["cpus"] = None
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert entry.main(["--worker", str(tmp_path / "spec.json"), str(out)]) == 0 and calls[-1][2].cpus is None


def test_a_child_entry_misused_answers_in_words(tmp_path, capsys):
    """A missing SPEC OUT was an IndexError, a missing or broken spec file a FileNotFoundError or
    JSONDecodeError naming its path."""
    for argv in (["--worker"], ["--footprint", "spec.json"], ["--worker", "a", "b", "c"]):
        assert entry.main(argv) == 2
        assert capsys.readouterr().err == f"Error: {argv[0]} takes SPEC OUT (an entry of the benchmark's own child " \
                                          "processes)\n"
    (tmp_path / "broken.json").write_text("{")
    for spec in (tmp_path / "alice" / "spec.json", tmp_path / "broken.json"):
        assert entry.main(["--footprint", str(spec), str(tmp_path / "out.json")]) == 1
        assert capsys.readouterr().err == ("Error: --footprint reads the spec file `edgerec bench` writes; this one "
                                           "cannot be read as JSON\n")
    assert not (tmp_path / "out.json").exists()


# ---------------------------------------------------------------- bench config and summary


@pytest.mark.parametrize("name", ["requests", "users", "history", "retrieval_queries", "items"])
def test_each_count_of_the_bench_config_is_checked_at_both_ends(name):
    assert getattr(BenchConfig(**{name: 1}), name) == 1 and getattr(BenchConfig(**{name: 10**8}), name) == 10**8
    for bad in (0, 10**8 + 1, True, 1.0, "5"):
        with pytest.raises(ConfigError) as caught:
            BenchConfig(**{name: bad})
        assert str(caught.value) == (f"the benchmark's {name} must be a whole number >= 1 and at most 10**8 "
                                     f"(got {bad!r})")
    assert BenchConfig(items=None).items is None and BenchConfig(warmup=0, long_history=0).warmup == 0
    if name != "items":
        with pytest.raises(ConfigError):
            BenchConfig(**{name: None})


def test_the_summary_drops_raw_samples_from_a_copy():
    result = {"runs": [{"backend": "onnx", "latencies_ms": [1.0]}, {"backend": "tflite"}], "figures": [{"a": (1, 2)}]}
    slim = summary(result)
    assert slim == {"runs": [{"backend": "onnx"}, {"backend": "tflite"}], "figures": [{"a": [1, 2]}]}
    assert result["runs"][0]["latencies_ms"] == [1.0]  # the caller's result (plots read it) keeps them
