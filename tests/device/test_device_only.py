"""The device side stays light: the runtime, and this suite, run without any host library.

`make test` runs this folder a second time in .venv-device, a venv with only
the base install (plus pytest and hypothesis); there EDGEREC_DEVICE_ONLY=1 and
the host libraries must not even be installed.
"""

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "onnx", "transformers", "optimum", "tensorflow", "litert_torch", "scipy")
HOST = ("edgerec.data", "edgerec.models", "edgerec.compress", "edgerec.export", "edgerec.pipeline", "edgerec.cli")
HERE = Path(__file__).resolve().parent


def loaded_after(statement: str, names: tuple[str, ...] = HEAVY) -> list[str]:
    code = f"import sys; {statement}; print(','.join(m for m in {names!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return [m for m in out.strip().split(",") if m]


def test_importing_the_runtime_loads_no_host_library():
    assert loaded_after("import edgerec.runtime") == []
    assert loaded_after("from edgerec.runtime import Recommender, Bundle, Filters") == []


def test_importing_the_runtime_leaves_out_what_only_rare_paths_need():
    """importlib.resources (it imports tempfile, shutil and random) and logging: about 1 MB on a device."""
    assert loaded_after("import edgerec.runtime", ("importlib.resources", "tempfile", "shutil", "logging")) == []


def test_opening_and_ranking_loads_no_host_library(golden_bundle):
    statement = (f"from edgerec.runtime import Recommender; r = Recommender.open({str(golden_bundle)!r}); "
                 "r.recommend('u', k=3); r.record('u', r.catalog.item_id(0), 'finish'); r.recommend('u', k=3)")
    assert loaded_after(statement) == []


def test_the_golden_runner_loads_no_host_library(golden_bundle):
    root = str(golden_bundle.parent)  # each case on its own bundle (content_encoder plays on golden/text,
    # whose content encoder needs the tokenizers extra: played where it is installed)
    statement = ("import os, importlib.util; from edgerec.runtime.golden import load_cases, run_case; "
                 f"[run_case(os.path.join({root!r}, c.bundle), c, 'onnx') for c in load_cases(os.path.join({root!r}, 'cases'))"
                 " if (c.engines is None or 'onnx' in c.engines)"
                 " and (c.bundle != 'text' or importlib.util.find_spec('tokenizers'))]")
    assert loaded_after(statement) == []


def test_this_suite_imports_nothing_of_the_host():
    """No file of tests/device (nor the golden runner) imports a host library or host package."""
    files = [*HERE.glob("*.py"), HERE.parents[1] / "runtime" / "golden.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in HEAVY and not name.startswith(HOST), f"{path.name} imports {name}"


@pytest.mark.skipif(os.environ.get("EDGEREC_DEVICE_ONLY") != "1", reason="only in the device venv (make test)")
def test_the_device_venv_has_no_host_library():
    installed = [name for name in ("torch", "onnx", "transformers", "optimum") if importlib.util.find_spec(name)]
    assert installed == [], f"the device venv must hold the base install only, it has {installed}"
