"""Fixtures of the device suite: the spec's golden bundle and cases, and the engines installed here.

This suite needs only the base install (numpy, onnxruntime) plus pytest and
hypothesis: nothing here imports torch, onnx, transformers or edgerec.data.
`make test` runs it a second time, alone, in a venv without the host tools
(`--confcutdir tests/device` keeps the host suite's conftest out).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from edgerec.runtime.backends import available_backends
from edgerec.runtime.retrieval import import_usearch

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "spec" / "golden"
ENGINES = ("onnx", "tflite")


@pytest.fixture(scope="session")
def golden_bundle() -> Path:
    return GOLDEN / "bundle"


@pytest.fixture
def bundle_copy(golden_bundle, tmp_path) -> Path:
    """A private copy of the golden bundle a test may damage."""
    return Path(shutil.copytree(golden_bundle, tmp_path / "bundle"))


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    if request.param not in available_backends():
        pytest.skip(f"the {request.param} engine is not installed here "
                    f"({'pip install ai-edge-litert' if request.param == 'tflite' else 'pip install onnxruntime'})")
    return request.param


@pytest.fixture
def usearch():
    """usearch.index, imported the way the runtime imports it: after onnxruntime (the other order
    crashes onnxruntime's import, see backends.import_onnxruntime). A test that only needs the index
    through the runtime skips with `find_spec` instead and leaves the import to the runtime."""
    if importlib.util.find_spec("usearch") is None:
        pytest.skip("the index is the optional extra edgerec[ann]")
    return import_usearch()
