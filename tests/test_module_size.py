"""Small modules with one job: no device-side module (runtime/, device_tests/) grows past 350 lines."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 350


def test_every_device_side_module_stays_small():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
             for folder in ("runtime", "device_tests") for p in (ROOT / folder).glob("*.py")}
    assert any(name.startswith("device_tests/") for name in sizes)
    assert sizes and {name: n for name, n in sizes.items() if n > LIMIT} == {}
