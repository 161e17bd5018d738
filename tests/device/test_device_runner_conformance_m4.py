"""Audit M4 (device_tests/__main__.py): `python -m edgerec.device_tests BUNDLE` ran only the benchmark and
never checked the bundle's reference outputs, though device_tests owns conformance. Now it checks them by
default (the runtime's check, through device_tests.conformance.add_conformance), writes the report into its
JSON, prints a table of it, and a mismatch exits 1; `--no-conformance` skips it. The benchmark itself is
stubbed here: these tests are about the verdict, not the timings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bundle_edit import replace_array, rewrite

from edgerec.device_tests import __main__ as entry
from edgerec.device_tests.conformance import add_conformance, conformance_failure
from edgerec.runtime.backends import available_backends


def _bench(bundle, profile, cfg) -> dict:
    return {"passed": True, "failures": [], "runs": [{"backend": "onnx", "latencies_ms": [1.0]}]}


@pytest.fixture
def stubbed(monkeypatch):
    monkeypatch.setattr(entry, "run_bench", _bench)


def _turned(bundle_copy):
    """The golden bundle copy with its reference vectors reversed (the encoder no longer reproduces them)."""
    replace_array(bundle_copy, "reference/user_vectors.npy", -np.load(bundle_copy / "reference/user_vectors.npy"))
    return bundle_copy


def test_a_conforming_bundle_passes_and_the_report_is_in_the_json_and_the_table(stubbed, bundle_copy, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert entry.main([str(bundle_copy), "--json", str(out)]) == 0
    printed, err = capsys.readouterr()
    written = json.loads(out.read_text())
    assert json.loads(printed) == written and written["passed"] is True and written["failures"] == []
    report = written["conformance"]
    assert report["passed"] is True and report["tolerance"] == {"cosine_min": 0.98, "top_k_agreement": 0.8}
    assert report["tolerance_source"] == "bundle" and report["engines"] == available_backends()
    assert [m["format"] for m in report["models"]] == [e for e in ("onnx", "tflite") if e in available_backends()]
    lines = err.splitlines()
    assert lines[0].startswith("conformance with the bundle's reference outputs: passed (tolerance cosine >= 0.98, "
                               "top-k agreement >= 0.8: the bundle's own tolerance")
    assert lines[1].split() == ["engine", "file", "cosine", "min", "cosine", "mean", "top-k", "agreement", "passed"]
    assert lines[2].split()[:2] == ["onnx", "user_encoder.onnx"] and lines[2].split()[-1] == "yes"


def test_a_mismatch_is_a_failure_and_exit_1(stubbed, bundle_copy, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert entry.main([str(_turned(bundle_copy)), "--json", str(out)]) == 1
    written = json.loads(out.read_text())
    assert written["passed"] is False and written["conformance"]["passed"] is False
    failure = written["failures"][0]
    assert len(written["failures"]) == 1 and failure.startswith("conformance: the device does not reproduce the bundle's reference outputs: onnx "
                              "(user_encoder.onnx): cosine -1.000 (at least 0.98), top-k agreement ")
    err = capsys.readouterr().err
    assert "FAILED" in err.splitlines()[0] and err.splitlines()[2].split()[-1] == "NO"


def test_no_conformance_skips_the_check(stubbed, bundle_copy, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert entry.main([str(_turned(bundle_copy)), "--no-conformance", "--json", str(out)]) == 0
    assert "conformance" not in json.loads(out.read_text()) and capsys.readouterr().err == ""


def test_reference_arrays_the_runtime_refuses_fail_the_run_with_its_words(stubbed, bundle_copy, tmp_path):
    out = tmp_path / "r.json"
    rewrite(bundle_copy, lambda d: d["reference"].update(k=10))
    assert entry.main([str(bundle_copy), "--json", str(out)]) == 1
    written = json.loads(out.read_text())
    assert written["failures"] == ["conformance: its reference file reference/top_k.npy holds top-k rows of width 5; "
                                   "the reference's k is 10 (of 56 items); re-export the bundle"]


def test_a_bundle_without_references_is_not_checked_and_does_not_fail_the_run(stubbed, bundle_copy, tmp_path):
    """A format-1 bundle has no reference outputs and the runtime serves it: the run says so and passes."""
    out = tmp_path / "r.json"
    rewrite(bundle_copy, lambda d: d.pop("reference"))
    assert entry.main([str(bundle_copy), "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["failures"] == [] and written["conformance"]["checked"] is False
    assert written["conformance"]["reason"] == "the bundle carries no reference outputs"


def test_the_floor_is_named_in_the_failure(bundle_copy):
    turned = _turned(bundle_copy)
    rewrite(turned, lambda d: d["reference"].update(tolerance={"cosine_min": -1, "top_k_agreement": 0}))
    result = {"passed": True, "failures": []}
    report = add_conformance(result, turned, ["onnx"])
    assert report["tolerance_source"] == "floor" and result["passed"] is False
    assert "(at least 0.9)" in result["failures"][0] and "never loosen" in result["failures"][0]
    nothing = {"passed": False, "models": [], "engines": ["none"]}
    assert conformance_failure(nothing).startswith("no user encoder of the bundle runs on this device's engines (none)")


def test_the_help_names_the_option(capsys):
    with pytest.raises(SystemExit):
        entry.main(["--help"])
    assert "--no-conformance" in capsys.readouterr().out
