"""The README's and formats.md's counts of the golden cases follow spec/golden/cases (a step added to a
case left both at the old count)."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_documented_golden_counts_are_the_cases_own():
    cases = [json.loads(p.read_text()) for p in sorted((ROOT / "spec/golden/cases").glob("*.json"))]
    lists = sum(step["op"] in ("recommend", "transfer") for case in cases for step in case["steps"])
    assert f"{len(cases)} cases, {lists} lists, " in (ROOT / "README.md").read_text()
    assert f"{len(cases)} cases, {lists} lists and " in (ROOT / "docs/formats.md").read_text()
