"""Small modules with one job: no runtime module grows past 350 lines."""

from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1] / "runtime"
LIMIT = 350


def test_every_runtime_module_stays_small():
    sizes = {p.name: len(p.read_text().splitlines()) for p in RUNTIME.glob("*.py")}
    assert sizes and {name: n for name, n in sizes.items() if n > LIMIT} == {}
