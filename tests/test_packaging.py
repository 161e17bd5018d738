"""The wheel carries every subpackage under the one namespace, and its console script."""

import shutil
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
SUBPACKAGES = [name.split(".", 1)[1] for name in PACKAGE_DIRS if "." in name]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", *PACKAGE_DIRS.values()):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out)], check=True)
    return next(out.glob("edgerec-*.whl"))


def test_wheel_contains_every_subpackage_and_the_script(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {"data", "models", "compress", "export", "runtime", "device_tests", "cli"} <= set(SUBPACKAGES)
    for sub in SUBPACKAGES:
        assert f"edgerec/{sub}/__init__.py" in names, sub
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "edgerec = edgerec.cli.main:cli" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert not any(n.startswith(("tests/", "data/", "runtime/")) for n in names)


def test_wheel_imports_from_its_own_files(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path)
    code = ("import edgerec.data, edgerec.runtime, edgerec.cli.main as m; "
            "print(edgerec.data.__file__); print(m.cli.name)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, check=True).stdout
    assert out.splitlines()[0].startswith(str(tmp_path))


def test_the_wheel_ships_the_manifest_schema(wheel, tmp_path):
    """A non-editable install finds the bundle schema as package data (edgerec.spec), not in a checkout."""
    names = zipfile.ZipFile(wheel).namelist()
    assert "edgerec/spec/manifest.schema.json" in names
    assert not any(n.startswith("edgerec/spec/golden/") for n in names)  # the golden cases stay in the repo
    zipfile.ZipFile(wheel).extractall(tmp_path)
    code = ("from edgerec.runtime.schema import manifest_schema, validate; import edgerec.spec as s; "
            "print(s.__file__); print(len(manifest_schema()['$defs']), validate({}, manifest_schema())[0].where)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, check=True).stdout.splitlines()
    assert out[0].startswith(str(tmp_path)) and out[1].split()[1] == "format"
