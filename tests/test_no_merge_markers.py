"""No file git tracks holds a merge's conflict markers: README.md carried a resolved-looking pair
(HEAD against a helper's branch) through a whole session and CI, as prose does not fail to parse."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^(<{7} |>{7} |={7}$)", re.M)


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = [ROOT / name for name in listed.decode().split("\0") if name]
    return [p for p in paths if p.is_file() and p.suffix in {".py", ".md", ".json", ".toml", ".txt", ".c", ".h",
                                                              ".cfg", ".yml", ".yaml", ""}]


def markers_in(text: str) -> list[int]:
    return [text.count("\n", 0, m.start()) + 1 for m in MARKER.finditer(text)]


def test_no_tracked_file_holds_conflict_markers():
    files = tracked_text_files()
    assert any(p.name == "README.md" for p in files)
    found = {}
    for path in files:
        lines = markers_in(path.read_text(encoding="utf-8", errors="replace"))
        if lines:
            found[str(path.relative_to(ROOT))] = lines
    assert found == {}, f"conflict markers left by a merge (file: lines): {found}"


def test_the_check_sees_a_marker():
    text = "a\n" + "<" * 7 + " HEAD\nb\n" + "=" * 7 + "\nc\n" + ">" * 7 + " other\n"
    assert markers_in(text) == [2, 4, 6]
    assert markers_in("a\n" + "=" * 8 + "\n") == []  # a Markdown rule under a heading is not a marker
