"""One vocabulary: events, devices and modalities are spelled once, in runtime/vocab.py.

Two guards against a second definition creeping back: every module-level
tuple that equals a vocabulary list must be the very object from
`edgerec.runtime.vocab` (a copy could drift), and no source file outside
vocab.py may spell a literal list of two or more vocabulary names.
"""

import ast
import importlib
from pathlib import Path

import pytest

from edgerec.runtime import vocab

ROOT = Path(__file__).resolve().parents[1]
NAMES = set(vocab.DEVICE_EVENTS) | set(vocab.LOG_EVENTS) | set(vocab.DEVICES) | set(vocab.MODALITIES)
VOCABULARY = {name: getattr(vocab, name) for name in ("DEVICE_EVENTS", "CONSUMED", "FEEDBACK", "EXCLUDING",
                                                      "HOST_ONLY_EVENTS", "LOG_EVENTS", "CONSUMED_LOG_EVENTS",
                                                      "DEVICES", "MODALITIES")}
# Literals that name a few members for a fact of their own, not a list of the vocabulary:
# (file, the names). Add here with a reason, never a copy of a vocabulary list.
ALLOWED_SUBSETS = {
    ("data/synth.py", ("series_episode", "podcast_episode")),  # modalities that come in series
    ("data/synth.py", ("film", "series_episode")),  # modalities made by studios
}
HOST_TOOLS = {"torch", "onnx", "onnxscript", "transformers", "optimum", "sentence_transformers", "litert_torch",
              "ai_edge_quantizer", "safetensors", "scipy", "pyarrow", "matplotlib", "faiss"}


def test_the_host_log_and_the_device_relate_as_documented():
    assert set(vocab.LOG_TO_DEVICE) == set(vocab.LOG_EVENTS)
    assert set(vocab.LOG_TO_DEVICE.values()) <= set(vocab.DEVICE_EVENTS)
    assert set(vocab.LOG_EVENTS) - set(vocab.DEVICE_EVENTS) == set(vocab.HOST_ONLY_EVENTS) == {"rate"}
    assert set(vocab.DEVICE_EVENTS) - set(vocab.LOG_EVENTS) == set(vocab.FEEDBACK)  # buttons exist on devices only
    assert set(vocab.CONSUMED_LOG_EVENTS) == set(vocab.CONSUMED) | {"rate"}
    assert set(vocab.CONSUMED) <= vocab.EXCLUDING and "skip" in vocab.EXCLUDING
    assert "more_like_this" not in vocab.EXCLUDING  # the recommender handles it (shows what is like the item)
    # the log's int8 codes: appending is fine, reordering breaks saved data
    assert [vocab.LOG_EVENTS.index(e) for e in ("play", "finish", "skip", "like", "rate")] == [0, 1, 2, 3, 4]


def _modules():
    """Every module of the edgerec namespace (a top-level folder `x/` is `edgerec.x`); modules
    that need host tools are skipped when those are not installed (a device-only venv)."""
    for path in sorted(ROOT.glob("*/**/*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if not (ROOT / parts[0] / "__init__.py").exists() or parts[0] == "tests" or parts[-1] == "__main__":
            continue
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        name = ".".join(parts if parts[0] == "edgerec" else ("edgerec",) + parts)
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in HOST_TOOLS:
                raise


def test_every_package_uses_the_device_vocabulary_objects():
    seen = set()
    for module in _modules():
        for attr, value in vars(module).items():
            for name, original in VOCABULARY.items():
                if isinstance(value, (tuple, frozenset)) and value == original:
                    assert value is original, f"{module.__name__}.{attr} copies runtime.vocab.{name}; import it"
                    seen.add(module.__name__.split(".")[1])
    assert {"data", "runtime", "models"} <= seen  # they do import it


def test_the_cli_choices_are_the_vocabulary():
    import click

    from edgerec.cli.main import cli

    def params(command):
        yield from command.params
        for sub in getattr(command, "commands", {}).values():
            yield from params(sub)

    choices = [p.type.choices for p in params(cli) if isinstance(p.type, click.Choice)
               and set(p.type.choices) & NAMES]
    assert any(c is vocab.DEVICES for c in choices) and any(c is vocab.DEVICE_EVENTS for c in choices)
    assert all(any(c is v for v in VOCABULARY.values()) for c in choices), choices


def vocabulary_literals(source: str, path: str = "<source>") -> list[str]:
    """Collection literals in `source` spelling two or more vocabulary names (outside ALLOWED_SUBSETS)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            continue
        names = tuple(e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in NAMES)
        if len(names) >= 2 and (path, names) not in ALLOWED_SUBSETS:
            found.append(f"{path}:{node.lineno}: {names}")
    return found


def _sources():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        top = rel.split("/")[0]
        if top.startswith(".") or top in {"tests", "build", "runs"} or rel == "runtime/vocab.py":  # .venv*
            continue
        yield rel, path.read_text()


def test_no_second_list_of_vocabulary_names_in_the_source():
    found = [hit for rel, text in _sources() for hit in vocabulary_literals(text, rel)]
    assert not found, "spell these through edgerec.runtime.vocab:\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    'EVENTS = ("play", "finish", "skip", "like", "rate")',
    'x = click.Choice(["phone", "tv"])',
    "if m in {'film', 'music_track'}: pass",
])
def test_the_literal_check_catches_a_second_definition(source):
    assert vocabulary_literals(source)


def test_the_literal_check_leaves_single_names_alone():
    assert not vocabulary_literals('rec.record(user, item, "finish")\nif event == "skip": pass')
