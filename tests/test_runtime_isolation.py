"""The device side stays light: importing the runtime loads no host library."""

import subprocess
import sys

HEAVY = ("torch", "onnx", "transformers", "optimum", "tensorflow", "litert_torch", "scipy")


def loaded_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return [m for m in out.strip().split(",") if m]


def test_importing_the_runtime_loads_no_host_library():
    assert loaded_after("import edgerec.runtime") == []
    assert loaded_after("from edgerec.runtime import Recommender, Bundle, Filters") == []


def test_opening_and_ranking_loads_no_host_library(tiny_bundle):
    statement = (f"from edgerec.runtime import Recommender; r = Recommender.open({str(tiny_bundle)!r}); "
                 "r.recommend('u', k=3); r.record('u', r.catalog.item_id(0), 'finish'); r.recommend('u', k=3)")
    assert loaded_after(statement) == []
