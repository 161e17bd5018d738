"""Conformance: the device reproduces the bundle's reference outputs and top-k within tolerance.

The check itself lives in the runtime (runtime/reference.py), which also uses it to vet a bundle
update before serving it; this is the name the device test suite and `edgerec bench` call it by.
`add_conformance` folds its verdict into a benchmark result: `python -m edgerec.device_tests` runs
it by default, and a mismatch fails the run as a missed budget does.
"""

from __future__ import annotations

from edgerec.errors import BundleError
from edgerec.runtime.reference import check_references as check_conformance

__all__ = ["add_conformance", "check_conformance", "conformance_failure", "conformance_lines"]


def conformance_failure(report: dict) -> str:
    """Why a report did not pass, in words: each failed engine's figures against the tolerance applied."""
    if report.get("reason"):
        return report["reason"]
    tolerance = report.get("tolerance") or {}
    failed = [f"{m['format']} ({m['file']}): cosine {m['cosine_min']:.3f} (at least {tolerance.get('cosine_min')}), "
              f"top-k agreement {m['top_k_agreement']:.2f} (at least {tolerance.get('top_k_agreement')})"
              for m in report.get("models", []) if not m["passed"]]
    if not failed:  # no engine of the bundle's user encoders runs here: nothing was reproduced
        return (f"no user encoder of the bundle runs on this device's engines ({', '.join(report.get('engines', []))}); "
                "install the engine of one of its formats")
    return ("the device does not reproduce the bundle's reference outputs: " + "; ".join(failed)
            + (f"; {report['tolerance_rule']}" if report.get("tolerance_source") == "floor" else ""))


def add_conformance(result: dict, bundle, formats: list[str] | None = None) -> dict:
    """Check `bundle`'s reference outputs on this device's engines (or `formats`) and fold the report
    into a benchmark `result`: `result["conformance"]` holds it, and a mismatch (or reference arrays the
    runtime refuses) is one of `result["failures"]` and sets `result["passed"]` False. A bundle without reference
    outputs (format 1; the runtime serves it) is reported as not checked, not as a failure. Returns the report."""
    try:
        report = check_conformance(bundle, formats)
    except BundleError as exc:  # reference arrays of the wrong shape or kind: the bundle does not conform
        report = {"passed": False, "reason": str(exc), "models": []}
    result["conformance"] = report
    if not report["passed"] and report.get("checked", True):
        result.setdefault("failures", []).append("conformance: " + conformance_failure(report))
        result["passed"] = False
    return report


def conformance_lines(report: dict) -> list[str]:
    """The report as a short plain-text table (the runner's words for a person; its JSON keeps the rest)."""
    tolerance = report.get("tolerance")
    head = ("conformance with the bundle's reference outputs: " + ("passed" if report["passed"] else "FAILED")
            + (f" (tolerance cosine >= {tolerance['cosine_min']}, top-k agreement >= {tolerance['top_k_agreement']}:"
               f" {report.get('tolerance_rule')})" if tolerance else ""))
    rows = [("engine", "file", "cosine min", "cosine mean", "top-k agreement", "passed")]
    rows += [(m["format"], m["file"], f"{m['cosine_min']:.4f}", f"{m['cosine_mean']:.4f}", f"{m['top_k_agreement']:.3f}",
              "yes" if m["passed"] else "NO") for m in report.get("models", [])]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [head] + (["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
                      if report.get("models") else [])
    return lines + ([] if report["passed"] else ["  " + conformance_failure(report)])
