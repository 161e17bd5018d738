"""The README's and formats.md's counts of the golden cases follow spec/golden/cases (a step added to a
case left both at the old count), and spec/README.md's count and list of the refusal fixtures follow
spec/golden/refusals/index.json (the text said 42 while the index held 46, and its list left some out)."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_documented_golden_counts_are_the_cases_own():
    cases = [json.loads(p.read_text()) for p in sorted((ROOT / "spec/golden/cases").glob("*.json"))]
    lists = sum(step["op"] in ("recommend", "transfer") for case in cases for step in case["steps"])
    assert f"{len(cases)} cases, {lists} lists, " in (ROOT / "README.md").read_text()
    assert f"{len(cases)} cases, {lists} lists and " in (ROOT / "docs/formats.md").read_text()


def refusal_paragraph() -> tuple[int, dict[str, list[str]]]:
    """spec/README.md §9's refusal fixtures: the count it gives, and the names it lists under each rule."""
    text = (ROOT / "spec/README.md").read_text(encoding="utf-8")
    start = text.index("**Refusal fixtures.**")
    paragraph = text[start:text.index("\n\nEach is ", start)]
    count = re.search(r"(\d+) in all", paragraph)
    assert count, "spec/README.md §9 gives no count of the refusal fixtures ('N in all')"
    listed: dict[str, list[str]] = {}
    for item in re.split(r"\n- ", paragraph)[1:]:
        head, names = item.split(":", 1)
        rule = "arrays" if ".npy" in head else re.match(r"rule (\d)", head).group(1)
        said = int(re.search(r"\((\d+)\)", head).group(1))
        listed[rule] = re.findall(r"`([a-z0-9_]+)`", names)
        assert said == len(listed[rule]), f"spec/README.md §9: rule {rule} says ({said}), lists {len(listed[rule])}"
    return int(count.group(1)), listed


def test_the_documented_refusal_fixtures_are_the_index():
    entries = json.loads((ROOT / "spec/golden/refusals/index.json").read_text(encoding="utf-8"))["refusals"]
    count, listed = refusal_paragraph()
    assert count == len(entries), f"spec/README.md §9 says {count} refusal fixtures, index.json lists {len(entries)}"
    by_rule: dict[str, list[str]] = {}
    for entry in entries:
        by_rule.setdefault(entry["rule"], []).append(entry["name"])
    assert listed == by_rule  # every fixture named once, under the rule the index gives it, in its order
