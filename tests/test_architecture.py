"""The folder dependency rules of ARCHITECTURE.md, enforced from the imports of every source file.

Each top-level folder `x/` is the package `edgerec.x`; `edgerec/` itself is the
root (the version and the exception hierarchy). Every `import` and
`from ... import` (at module level or inside a function) is mapped to the
folder it reaches and checked against RULES. Imports inside one folder are
always allowed.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVERYTHING = {"edgerec", "data", "models", "compress", "export", "runtime", "device_tests", "studies", "pipeline",
              "spec", "cli", "federated"}

# folder -> what of ours it may import: folders, or single modules written folder.module.
RULES = {
    "edgerec": set(),  # the root: version and errors
    "spec": set(),  # data: the bundle's schema and golden cases
    "runtime": {"edgerec", "spec"},  # the device: nothing else of ours
    "device_tests": {"edgerec", "runtime"},
    "data": {"edgerec", "runtime.vocab", "runtime.atomic"},  # the names of events, devices and modalities the
    # device owns; files written whole or not at all
    "models": {"edgerec", "data", "runtime"},  # runtime: features and vocabulary the device computes too
    "compress": {"edgerec", "data", "models", "runtime"},
    "export": {"edgerec", "data", "models", "compress", "runtime"},  # runtime: the bundle format it writes
    "federated": {"edgerec", "export", "runtime"},  # the server: aggregation, accounting, the new bundle
    "studies": {"edgerec", "data", "models", "compress", "export", "runtime", "device_tests", "federated"},
    "pipeline": {"edgerec", "data", "models", "compress", "export", "runtime", "device_tests", "studies",
                 "federated"},
    "cli": EVERYTHING,
}
# Libraries the device side never imports (the runtime ships with numpy and one inference engine).
HOST_ONLY_LIBRARIES = {"torch", "onnx", "onnxscript", "transformers", "optimum", "sentence_transformers",
                       "litert_torch", "ai_edge_quantizer", "safetensors"}
DEVICE_SIDE = {"runtime", "device_tests"}


def folder_of(module: str) -> str | None:
    """edgerec.x.y -> x (a folder), edgerec / edgerec.errors -> edgerec; None for other libraries."""
    parts = module.split(".")
    if parts[0] != "edgerec":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in EVERYTHING else "edgerec"


def _module_name(rel: str) -> str:
    parts = list(Path(rel).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts if parts[0] == "edgerec" else ["edgerec", *parts])


def imports(rel: str, source: str) -> list[tuple[int, str]]:
    """(line, module) for every import in the file at `rel` (relative imports resolved)."""
    package = _module_name(rel).split(".")
    if not rel.endswith("__init__.py"):
        package = package[:-1]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            # `from edgerec.runtime import vocab` reaches edgerec.runtime.vocab
            out += [(node.lineno, f"{module}.{alias.name}" if alias.name[0].islower() else module)
                    for alias in node.names]
    return out


def _allowed(folder: str, module: str) -> bool:
    target = folder_of(module)
    if target is None or target == folder:
        return True
    for rule in RULES[folder]:
        if "." not in rule and rule == target:
            return True
        if "." in rule and (module == f"edgerec.{rule}" or module.startswith(f"edgerec.{rule}.")):
            return True
    return False


def violations(files: dict[str, str]) -> list[str]:
    """Broken rules in {relative path: source}: imports of ours against RULES, host libraries on the device."""
    found = []
    for rel, source in files.items():
        folder = rel.split("/")[0] if "/" in rel else "edgerec"
        for line, module in imports(rel, source):
            if not _allowed(folder, module):
                found.append(f"{rel}:{line}: {folder}/ may not import {module}")
            if folder in DEVICE_SIDE and module.split(".")[0] in HOST_ONLY_LIBRARIES:
                found.append(f"{rel}:{line}: {folder}/ is device side and may not import {module}")
    return found


def folder_graph(files: dict[str, str]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for rel, source in files.items():
        folder = rel.split("/")[0]
        for _, module in imports(rel, source):
            target = folder_of(module)
            if target not in (None, folder):
                graph.setdefault(folder, set()).add(target)
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def source_files() -> dict[str, str]:
    out = {}
    for folder in sorted(EVERYTHING):
        for path in sorted((ROOT / folder).rglob("*.py")):
            out[path.relative_to(ROOT).as_posix()] = path.read_text()
    return out


def test_every_package_folder_is_mapped_and_has_a_rule():
    """pyproject maps edgerec.x to x/ for every folder here; a new folder needs a rule above."""
    text = (ROOT / "pyproject.toml").read_text()
    mapped = dict(re.findall(r'^"edgerec(?:\.(\w+))?" = "(\w+)"', text, re.M))
    assert all((name or "edgerec") == folder for name, folder in mapped.items()), mapped
    folders = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert folders <= set(RULES), f"no rule for {folders - set(RULES)}"
    assert {(name or "edgerec") for name in mapped} <= set(RULES)


def test_imports_follow_the_folder_rules():
    found = violations(source_files())
    assert not found, "\n".join(found)


def test_no_cycles_between_folders():
    assert cycle(folder_graph(source_files())) is None
    assert cycle({folder: {r.split(".")[0] for r in rules} - {folder} for folder, rules in RULES.items()}) is None


@pytest.mark.parametrize("rel, source", [
    ("runtime/x.py", "import edgerec.models.train"),
    ("runtime/x.py", "def f():\n    from edgerec.studies.base import Study"),  # inside a function
    ("runtime/x.py", "from ..models import train"),  # relative, out of the folder
    ("runtime/x.py", "import torch"),
    ("data/x.py", "from edgerec.runtime.recommender import Recommender"),  # runtime beyond vocab
    ("models/x.py", "from edgerec.export import bundle_builder"),
    ("export/x.py", "from edgerec import studies"),
    ("studies/x.py", "from edgerec.pipeline.demo import run_demo"),
    ("edgerec/errors.py", "from edgerec.runtime import Bundle"),
])
def test_the_checker_catches_a_violation(rel, source):
    assert violations({rel: source})


@pytest.mark.parametrize("rel, source", [
    ("data/x.py", "from edgerec.runtime.vocab import DEVICES"),
    ("data/x.py", "from edgerec.runtime import vocab"),
    ("runtime/x.py", "from edgerec.errors import BundleError\nfrom .bundle import Bundle\nimport numpy"),
    ("cli/x.py", "from edgerec.pipeline import run_demo"),
])
def test_the_checker_lets_allowed_imports_pass(rel, source):
    assert not violations({rel: source})


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
