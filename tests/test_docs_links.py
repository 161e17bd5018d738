"""README.md is a front page over topic files in docs/: its links and theirs must lead somewhere.

Every relative Markdown link in README.md and docs/*.md points to a file that exists (anchors are
not checked), every docs file is listed on the front page and links back to it, and each figure of
the front page's headline table occurs in the docs file its row names, so a re-measured figure
changed in its section cannot stay stale on the front page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def occurs(number: str, text: str) -> bool:
    """NUMBER is in TEXT as a whole number: 0.82 is not in 0.821, 10 is not in 0.105."""
    return re.search(rf"(?<![\d.,]){re.escape(number)}(?![\d]|[.,]\d)", text) is not None


def prose(text: str) -> str:
    """The text without fenced blocks and inline code (a `[a](b)` there is code, not a link),
    with line numbers kept."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", lambda m: "\n" * m.group(0).count("\n"), text,
                  flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def relative_links(text: str) -> list[tuple[int, str]]:
    """(line, target without its anchor) of every link to a file beside or below the page."""
    text = prose(text)
    found = []
    for match in LINK.finditer(text):
        target = match.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.I) or target.startswith("#"):
            continue  # http:, mailto:, an anchor in the same page
        found.append((text[:match.start()].count("\n") + 1, target.split("#", 1)[0]))
    return found


def broken_links(path: Path) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line}: {target}"
            for line, target in relative_links(path.read_text(encoding="utf-8"))
            if not (path.parent / target).is_file()]


def headline_rows(text: str) -> list[tuple[str, str]]:
    """(row text, linked file) of each row of the `## Headline figures` table."""
    section = re.search(r"^## Headline figures\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert section, "README.md has no `## Headline figures` section"
    rows = []
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        links = LINK.findall(line)
        if line.startswith("|") and links and len(cells) >= 3:
            rows.append((" ".join(cells[:-1]), links[-1]))
    return rows


def test_the_docs_exist():
    assert len(DOCS) >= 10, "README.md was split into topic files under docs/: where did they go?"


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert not broken_links(path)


def test_every_docs_file_is_on_the_front_page_and_links_back():
    listed = {(README.parent / target).resolve() for _, target in relative_links(README.read_text(encoding="utf-8"))}
    assert [p.name for p in DOCS if p.resolve() not in listed] == []
    for path in DOCS:
        back = {(path.parent / t).resolve() for _, t in relative_links(path.read_text(encoding="utf-8"))}
        assert README.resolve() in back, f"{path.name} has no link back to README.md"


def test_every_headline_figure_occurs_where_its_row_says():
    rows = headline_rows(README.read_text(encoding="utf-8"))
    assert len(rows) >= 5
    stale = []
    for row, target in rows:
        source = (README.parent / target).read_text(encoding="utf-8")
        stale += [f"{n} ({row[:60]}...) not in {target}" for n in NUMBER.findall(row) if not occurs(n, source)]
    assert not stale, "\n".join(stale)


def test_the_checks_see_a_broken_link_and_a_stale_figure(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("NDCG@10 measured: 0.1170, 0.10421\n", encoding="utf-8")
    page.write_text("[ok](there.md#a) [web](https://x.org) [gone](docs/gone.md) `[code](no.md)`\n"
                    "```bash\necho [x](nowhere.md)\n```\n[late](late.md)\n", encoding="utf-8")
    assert [t for _, t in relative_links(page.read_text(encoding="utf-8"))] == ["there.md", "docs/gone.md",
                                                                                 "late.md"]
    assert [line for line, _ in relative_links(page.read_text(encoding="utf-8"))] == [1, 1, 5]
    table = ("## Headline figures\n\n| what | figure | in |\n|---|---|---|\n"
             "| NDCG@10 | 0.1170 / 0.1042 | [x](there.md) |\n\n## Next\n")
    (row, target), = headline_rows(table)
    source = (tmp_path / target).read_text(encoding="utf-8")
    assert [n for n in NUMBER.findall(row) if not occurs(n, source)] == ["0.1042"]
