"""The manifest schema (spec/manifest.schema.json) and the runtime's own validator of it.

The runtime may not depend on `jsonschema`; where that package is installed
(the host suite) it cross-checks the runtime's validator: the schema is a valid
draft 2020-12 schema, and both validators give the same verdict on the golden
manifest and on hypothesis-generated breakages of it.
"""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgerec.runtime.schema import check_keywords, describe, dotted, manifest_schema, validate

GOLDEN = Path(__file__).resolve().parents[2] / "spec" / "golden"
MANIFEST = json.loads((GOLDEN / "bundle" / "manifest.json").read_text())


def paths(node, prefix=()) -> list[tuple]:
    """Every location in a JSON document (the root excluded)."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        out.append(prefix + (key,))
        out += paths(child, prefix + (key,))
    return out


LOCATIONS = paths(MANIFEST)
leaves = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8)
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                          max_size=3),
                      max_leaves=8)


@st.composite
def broken_manifests(draw):
    """The golden manifest with one to three locations replaced, deleted, extended or nested deeply."""
    doc = copy.deepcopy(MANIFEST)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(doc) or [()]))
        if not where:
            break
        parent = doc
        for key in where[:-1]:
            parent = parent[key]
        key = where[-1]
        kind = draw(st.sampled_from(("replace", "delete", "add", "nest", "retype")))
        if kind == "replace":
            parent[key] = draw(values)
        elif kind == "delete":
            del parent[key]
        elif kind == "add" and isinstance(parent[key], dict):
            parent[key][draw(st.text(min_size=1, max_size=6))] = draw(values)
        elif kind == "nest":
            for _ in range(draw(st.integers(1, 60))):
                parent[key] = [parent[key]] if draw(st.booleans()) else {"x": parent[key]}
        else:  # the same value as another JSON type: "3" for 3, 3 for "3", 1 for true
            value = parent[key]
            parent[key] = (str(value) if isinstance(value, (int, float)) and not isinstance(value, bool)
                           else int(value) if isinstance(value, bool)
                           else len(value) if isinstance(value, (str, list, dict)) else "null")
    return doc


def test_the_golden_manifest_follows_the_schema():
    assert validate(MANIFEST, manifest_schema()) == []
    assert set(MANIFEST) == set(manifest_schema()["properties"])  # a golden manifest uses every section


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["items"].update(count="x"), "items.count must be an integer >= 0 (got 'x')"),
    (lambda m: m["items"].pop("embeddings"), "items.embeddings is required"),
    (lambda m: m["models"][1].update(format="pytorch"), "models[1].format must be one of 'onnx', 'tflite' "
                                                        "(got 'pytorch')"),
    (lambda m: m["models"][0]["inputs"][0].update(shape=[0, "history"]),
     "models[0].inputs[0].shape[0] must be an integer or a string >= 1 of 1 to 64 characters (got 0)"),
    (lambda m: m["files"]["items/ids.bin"].update(sha256="0"),
     'files["items/ids.bin"].sha256 must be a string matching ^[0-9a-f]{64}$ (got \'0\')'),
    (lambda m: m["defaults"].update(diversity=1.5), "defaults.diversity must be a number between 0 and 1 (got 1.5)"),
    (lambda m: m["items"]["categorical"]["genre"]["vocab"].append(7),
     "items.categorical.genre.vocab[", ),
    (lambda m: m.update(colour="blue"), "colour is not a known field here (known: budgets, created,"),
    (lambda m: m["reference"].pop("top_k"), "reference.top_k is required when histories is given"),
    (lambda m: m.update(models=[]), "models must be an array of 1 to 64 items (got [])"),
    (lambda m: m["items"]["embeddings"].update(scale_axis="col"), "items.embeddings.scale_axis must be one of 'dim', "
                                                                  "'row' (got 'col')"),
    (lambda m: m.update(format_version=True), "format_version must be an integer between 1 and 6 (got True)"),
])
def test_violations_name_the_field_and_the_rule(change, message):
    doc = copy.deepcopy(MANIFEST)
    change(doc)
    problems = validate(doc, manifest_schema())
    assert problems and problems[0].message().startswith(message), [p.message() for p in problems]


def test_dotted_paths_and_descriptions():
    assert dotted(("models", 0, "inputs", 1, "dtype")) == "models[0].inputs[1].dtype"
    assert dotted(("files", "items/ids.bin", "bytes")) == 'files["items/ids.bin"].bytes'
    assert dotted(()) == "(root)"
    assert describe({"type": "integer", "minimum": 1}) == "an integer >= 1"
    assert describe({"enum": ["a", "b"]}) == "one of 'a', 'b'"


def test_a_schema_keyword_the_validator_lacks_is_refused():
    """The schema cannot silently use a keyword the device's validator would ignore."""
    check_keywords(manifest_schema())
    with pytest.raises(ValueError, match="oneOf"):
        check_keywords({"properties": {"x": {"oneOf": [{"type": "string"}]}}})
    with pytest.raises(ValueError, match="local refs"):
        check_keywords({"$ref": "https://example.com/other.json"})


def test_deep_values_in_open_sections_are_accepted_and_deep_walks_stop():
    doc = copy.deepcopy(MANIFEST)
    deep = 1
    for _ in range(500):
        deep = [deep]
    doc["metrics"]["study"] = deep  # metrics is extensible: not walked
    assert validate(doc, manifest_schema()) == []
    looping = {"$defs": {"a": {"type": "array", "items": {"$ref": "#/$defs/a"}}}, "$ref": "#/$defs/a"}
    problems = validate(deep, looping)
    assert len(problems) == 1 and "nested deeper than" in problems[0].rule


# ------------------------------------------------------------------ cross-check with jsonschema


@pytest.fixture(scope="module")
def reference_validator():
    """jsonschema, told the three rules of spec rule 3 that Python's json, re and JSON Schema itself do not
    follow: numbers are finite (json reads NaN and Infinity), an integer is written as one (JSON Schema takes
    1.0), and a pattern's `$` (ECMA-262) ends the string (Python's also matches before a final newline; the
    schema's patterns have no `$` escaped or in a class)."""
    jsonschema = pytest.importorskip("jsonschema", reason="the cross-check needs jsonschema (the dev extra)")
    schema = manifest_schema()
    base = jsonschema.Draft202012Validator
    base.check_schema(schema)

    def finite_number(checker, value):
        return base.TYPE_CHECKER.is_type(value, "number") and math.isfinite(value)

    def ecma_pattern(validator, pattern, value, schema):
        if validator.is_type(value, "string") and not re.search(pattern.replace("$", r"\Z"), value):
            yield jsonschema.ValidationError(f"{value!r} does not match {pattern!r}")

    def literal_integer(checker, value):
        return isinstance(value, int) and not isinstance(value, bool)

    types = base.TYPE_CHECKER.redefine_many({"number": finite_number, "integer": literal_integer})
    strict = jsonschema.validators.extend(base, validators={"pattern": ecma_pattern}, type_checker=types)
    return strict(schema)


def test_the_schema_is_valid_draft_2020_12_and_accepts_the_golden_manifest(reference_validator):
    assert list(reference_validator.iter_errors(MANIFEST)) == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_manifests())
def test_both_validators_agree_on_broken_manifests(reference_validator, doc):
    ours = validate(doc, manifest_schema(), limit=1000)
    theirs = list(reference_validator.iter_errors(doc))
    assert (not ours) == (not theirs), ([p.message() for p in ours], [e.message for e in theirs])
    if ours:  # and the field we name is one jsonschema names (or its parent, for required/unknown keys)
        named = {tuple(e.absolute_path) for e in theirs}
        first = ours[0].path
        assert first in named or first[:-1] in named, (ours[0].message(), sorted(named, key=str))
