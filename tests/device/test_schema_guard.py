"""The device's JSON Schema validator (runtime/schema.py) keyword by keyword, on tiny hand-made schemas.

test_manifest_schema checks the validator against the real manifest schema and against jsonschema;
these tests pin what a bundle author reads: every message whole, both sides of every bound, where
the walk stops, and the two JSON rules Python's json and re do not follow on their own (numbers are
finite; a pattern's `$` ends the string).
"""

from __future__ import annotations

import copy
import json

import pytest

from edgerec.errors import BundleError
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.schema import (
    MAX_DEPTH,
    Violation,
    check_keywords,
    check_manifest,
    describe,
    dotted,
    equal,
    is_type,
    manifest_schema,
    validate,
)

from .test_manifest_schema import MANIFEST


def messages(instance, schema, limit=20) -> list[str]:
    return [v.message() for v in validate(instance, schema, limit)]


# ------------------------------------------------------------------ paths, values, descriptions


@pytest.mark.parametrize(("path", "text"), [
    ((), "(root)"), (("a",), "a"), (("a", "b"), "a.b"), ((0,), "[0]"), ((0, 1), "[0][1]"),
    (("a", 0, "b"), "a[0].b"), (("_x@1",), "_x@1"), (("x", "_y"), "x._y"),
    (("9a",), '["9a"]'), (("a-b",), '["a-b"]'), (("a", "b c"), 'a["b c"]'), (("",), '[""]'),
    (("a", 'q"é'), 'a["q\\"\\u00e9"]'), (("@a",), '["@a"]'), (("ab\n",), '["ab\\n"]'),
])
def test_dotted_paths_by_hand(path, text):
    assert dotted(path) == text


def test_a_violation_shows_its_value_cut_to_60_characters():
    assert Violation(("a",), "is bad", "x").message() == "a is bad (got 'x')"
    assert Violation(("a",), "is bad", None).message() == "a is bad (got None)"
    assert Violation(("a",), "is required", "x", has_value=False).message() == "a is required"
    assert Violation((), "is bad", 3).where == "(root)"
    assert Violation(("a",), "r", {"k": ["é", 1]}).message() == 'a r (got {"k": ["é", 1]})'  # JSON, not repr
    assert Violation(("a",), "r", [True, None]).message() == "a r (got [true, null])"
    sixty = "x" * 58  # repr adds the two quotes: 60 characters, shown whole
    assert Violation(("a",), "r", sixty).message() == f"a r (got '{sixty}')"
    cut = "x" * 59  # 61 characters: the first 57 and "..."
    assert Violation(("a",), "r", cut).message() == "a r (got '" + "x" * 56 + "...)"
    assert Violation(("a",), "r", list(range(30))).message() == "a r (got " + json.dumps(list(range(30)))[:57] + "...)"


@pytest.mark.parametrize(("schema", "text"), [
    ({"const": "x"}, "'x'"), ({"const": 1, "type": "string"}, "1"), ({"enum": ["a", 2]}, "one of 'a', 2"),
    ({"enum": ["a"], "type": "integer"}, "one of 'a'"), ({}, "a value"), ({"minimum": 0}, "a value >= 0"),
    ({"type": "integer"}, "an integer"), ({"type": ["integer", "string"]}, "an integer or a string"),
    ({"type": ["null", "boolean", "object", "array", "number"]}, "null or true or false or an object or an array or a number"),
    ({"type": "number", "minimum": 0, "maximum": 1}, "a number between 0 and 1"),
    ({"type": "number", "minimum": -2}, "a number >= -2"), ({"type": "number", "maximum": 5}, "a number <= 5"),
    ({"type": "number", "exclusiveMinimum": 0}, "a number > 0"),
    ({"type": "number", "minimum": 1, "exclusiveMinimum": 0}, "a number >= 1 > 0"),
    ({"type": "string", "minLength": 1, "maxLength": 64}, "a string of 1 to 64 characters"),
    ({"type": "string", "minLength": 2}, "a string of at least 2 characters"),
    ({"type": "string", "maxLength": 3}, "a string of at most 3 characters"),
    ({"type": "string", "pattern": "^a$"}, "a string matching ^a$"),
    ({"type": "array", "minItems": 1, "maxItems": 3}, "an array of 1 to 3 items"),
    ({"type": "array", "minItems": 1}, "an array of at least 1 items"),
    ({"type": "array", "maxItems": 0}, "an array of at most 0 items"),
    ({"type": ["integer", "string"], "minimum": 1, "minLength": 1, "maxLength": 64, "minItems": 2},
     "an integer or a string >= 1 of 1 to 64 characters of at least 2 items"),
])
def test_descriptions_by_hand(schema, text):
    assert describe(schema) == text


# ------------------------------------------------------------------ the schema's own keywords


def test_every_implemented_keyword_and_annotation_is_accepted_and_others_are_refused_by_path():
    check_keywords({"$schema": "x", "$id": "x", "title": "t", "description": "d", "type": "object",
                    "const": 1, "enum": [1], "required": [], "minProperties": 0, "dependentRequired": {},
                    "minItems": 0, "maxItems": 1, "minimum": 0, "maximum": 1, "exclusiveMinimum": 0,
                    "minLength": 0, "maxLength": 1, "pattern": "a", "$ref": "#/$defs/a",
                    "$defs": {"a": True}, "properties": {"p": False}, "additionalProperties": True,
                    "propertyNames": {"type": "string"}, "items": False})
    cases = [
        ({"oneOf": []}, "schema # uses ['oneOf'], which runtime/schema.py does not implement"),
        ({"z": 1, "allOf": []}, "schema # uses ['allOf', 'z'], which runtime/schema.py does not implement"),
        ({"properties": {"x": {"not": {}}}}, "schema #/properties/x uses ['not'], which"),
        ({"$defs": {"d": {"if": {}}}}, "schema #/$defs/d uses ['if'], which"),
        ({"additionalProperties": {"anyOf": []}}, "schema #/additionalProperties uses ['anyOf'], which"),
        ({"propertyNames": {"format": "x"}}, "schema #/propertyNames uses ['format'], which"),
        ({"items": {"properties": {"y": {"contains": {}}}}}, "schema #/items/properties/y uses ['contains'], which"),
        ({"$ref": "other.json#/$defs/a"}, "schema #: only local refs into #/$defs are supported (got other.json#/$defs/a)"),
        ({"properties": {"r": {"$ref": "#/definitions/a"}}},
         "schema #/properties/r: only local refs into #/$defs are supported (got #/definitions/a)"),
    ]
    for schema, message in cases:
        with pytest.raises(ValueError) as caught:
            check_keywords(schema)
        assert str(caught.value).startswith(message), str(caught.value)


def test_the_shipped_schema_is_read_once_and_whole():
    schema = manifest_schema()
    assert schema is manifest_schema()  # cached: every bundle open reuses it
    assert schema["properties"]["format"] == {"const": "edgerec-bundle"} or "format" in schema["required"]
    assert set(schema["required"]) >= {"format", "format_version", "items", "files"}


# ------------------------------------------------------------------ types, values, bounds


@pytest.mark.parametrize(("value", "kinds"), [
    (0, {"integer", "number"}), (-3, {"integer", "number"}), (2.0, {"number"}), (2.5, {"number"}),
    (10**30, {"integer", "number"}), (True, {"boolean"}), (False, {"boolean"}), (None, {"null"}),
    ("1", {"string"}), ([], {"array"}), ({}, {"object"}),
    (float("nan"), set()), (float("inf"), set()), (float("-inf"), set()),  # JSON has no NaN or infinities
])
def test_json_types_by_hand(value, kinds):
    names = ("integer", "number", "string", "object", "array", "boolean", "null")
    assert {name for name in names if is_type(value, name)} == kinds


def test_json_equality():
    assert equal(1, 1.0) and equal("a", "a") and equal(False, False) and equal(True, True)
    assert not equal(True, 1) and not equal(1, True) and not equal(False, 0) and not equal(0, False)
    assert not equal(True, False) and not equal("1", 1)


def test_a_wrong_type_const_or_enum_stops_the_walk_there():
    schema = {"type": "object", "required": ["a"], "minProperties": 3}
    assert messages([], schema) == ["(root) must be an object (got [])"]
    assert messages({}, {"type": "array", "required": ["a"]}) == ["(root) must be an array (got {})"]
    assert messages(5, {"type": "string", "const": "x"}) == ["(root) must be 'x' (got 5)"]
    assert messages({"b": 1}, {"const": {"a": 1}, "required": ["a"]}) == ['(root) must be {\'a\': 1} (got {"b": 1})']
    assert messages({"b": 1}, {"enum": [{"a": 1}, 2], "required": ["a"]}) == [
        '(root) must be one of {\'a\': 1}, 2 (got {"b": 1})']
    assert messages({"a": 1}, {"const": {"a": 1}, "required": ["a"]}) == []
    assert messages(1, {"const": True}) == ["(root) must be True (got 1)"]
    assert messages(True, {"enum": [1, 2]}) == ["(root) must be one of 1, 2 (got True)"]
    assert messages(2, {"enum": [1, 2]}) == [] and messages(False, {"enum": [0, False]}) == []
    assert messages(None, {"type": ["integer", "string"]}) == ["(root) must be an integer or a string (got None)"]
    assert messages("x", {"type": ["integer", "string"]}) == []


@pytest.mark.parametrize(("schema", "good", "bad"), [
    ({"type": "integer", "minimum": 1}, [1, 2], [0, 0.0, -1, 1.0, 2.0]),
    ({"type": "number", "maximum": 5}, [5, 4.5, -10], [5.0001, 6]),
    ({"type": "number", "exclusiveMinimum": 0}, [1e-9, 3], [0, -1]),
    ({"type": "number", "minimum": 0, "maximum": 1}, [0, 1, 0.5], [-0.001, 1.001]),
    ({"type": "string", "minLength": 2}, ["ab", "abc"], ["a", ""]),
    ({"type": "string", "maxLength": 2}, ["ab", ""], ["abc"]),
    ({"type": "string", "pattern": "b"}, ["abc", "b"], ["ac"]),  # search, not a whole match
    ({"type": "string", "pattern": "^a+$"}, ["a", "aa"], ["", "ab", "ba", "a\n", "aa\n"]),
    ({"type": "string", "pattern": r"^a\$$"}, ["a$"], ["a", "a$\n"]),
    ({"type": "string", "pattern": "^[$b]$"}, ["$", "b"], ["$\n", "c"]),
    ({"type": "array", "minItems": 1}, [[1]], [[]]),
    ({"type": "array", "maxItems": 1}, [[1], []], [[1, 2]]),
])
def test_both_sides_of_each_bound(schema, good, bad):
    for value in good:
        assert validate(value, schema) == [], value
    for value in bad:
        assert messages(value, schema) == [f"(root) must be {describe(schema)} (got {value!r})"
                                           if not isinstance(value, list) else
                                           f"(root) must be {describe(schema)} (got {json.dumps(value)})"], value


def test_bounds_apply_to_their_own_kind_of_value_only():
    schema = {"minimum": 5, "maxLength": 1, "minItems": 3}
    assert validate(True, schema) == [] and validate(None, schema) == [] and validate({}, schema) == []
    assert validate("a", schema) == [] and validate(6, schema) == []
    assert messages("ab", schema) == ["(root) must be a value >= 5 of at most 1 characters of at least 3 items (got 'ab')"]
    assert len(validate(4, schema)) == 1 and len(validate([1], schema)) == 1


def test_not_a_number_and_infinities_are_refused_where_a_number_is_wanted():
    """Python's json reads NaN and Infinity; JSON has neither, and a NaN passes every bound
    (nan < 0 and nan > 1 are both false)."""
    between = {"type": "number", "minimum": 0, "maximum": 1}
    assert messages(float("nan"), between) == ["(root) must be a number between 0 and 1 (got nan)"]
    assert messages(float("inf"), {"type": "number", "minimum": 0}) == ["(root) must be a number >= 0 (got inf)"]
    assert messages(float("-inf"), {"type": ["number", "null"]}) == ["(root) must be a number or null (got -inf)"]
    assert messages(float("nan"), {"type": "integer"}) == ["(root) must be an integer (got nan)"]


def test_a_manifest_with_nan_or_infinity_is_refused_at_open(bundle_copy):
    """Found by mutation testing: `"diversity": NaN` opened, and the first request failed with a
    ConfigError about Policy.diversity, which the app never set. Refused when the text is read (JSON
    has no NaN, spec rule 3), so an open section such as metrics cannot hold one either."""
    path = bundle_copy / "manifest.json"
    raw = json.loads(path.read_text())
    for where, value in ((("defaults", "diversity"), "NaN"), (("budgets", "p99_ms"), "Infinity"),
                         (("metrics", "study"), "-Infinity"), (("data_version", "events"), "1e400")):
        doc = copy.deepcopy(raw)
        doc[where[0]][where[1]] = "@"
        path.write_text(json.dumps(doc).replace('"@"', value))
        with pytest.raises(BundleError) as caught:
            Bundle.open(bundle_copy)
        number = "'1e400' is beyond the range of a number" if value == "1e400" else f"{value} is not a JSON number"
        assert str(caught.value) == f"manifest.json is not valid JSON ({number}); the bundle is damaged"


def test_a_pattern_ends_at_the_end_of_the_string_not_before_a_final_newline():
    """Found by mutation testing: Python's `$` also matches before a final newline, so a sha256,
    an embedding-space id or a shared space's name with a newline after it passed the schema."""
    doc = copy.deepcopy(MANIFEST)
    doc["embedding_space"] += "\n"
    assert messages(doc, manifest_schema()) == [
        f"embedding_space must be a string matching ^[0-9a-f]{{24}}$ (got {doc['embedding_space']!r})"]
    doc = copy.deepcopy(MANIFEST)
    name = next(iter(doc["files"]))
    doc["files"][name]["sha256"] += "\n"
    assert [v.path for v in validate(doc, manifest_schema())] == [("files", name, "sha256")]
    path = {"type": "string", "pattern": manifest_schema()["$defs"]["path_form"]["pattern"]}
    for refused in ("a/..", "..", "a/../b", "/a", "./a", "a//b", "a\\b"):  # the `$` inside the ".." group too
        assert validate(refused, path), refused
    assert validate("a/..x", path) == [] and validate("a/b.npy", path) == []


# ------------------------------------------------------------------ objects and arrays


def test_members_required_dependent_counted_named_and_unknown():
    schema = {"type": "object", "required": ["a", "b"], "dependentRequired": {"c": ["d", "e"], "z": ["a"]},
              "minProperties": 3, "properties": {"a": {"type": "integer"}, "c": {}},
              "additionalProperties": False}
    assert messages({"c": 1}, schema) == [
        "a is required", "b is required", "d is required when c is given", "e is required when c is given",
        'must have at least 3 member(s) (got {"c": 1})'.join(("(root) ", "")),
    ]
    assert messages({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}, schema) == [
        "b is not a known field here (known: a, c)", "d is not a known field here (known: a, c)",
        "e is not a known field here (known: a, c)"]
    assert messages({"a": "x", "c": 0, "b": 0}, {**schema, "additionalProperties": True, "dependentRequired": {}}) == [
        "a must be an integer (got 'x')"]
    assert validate({"a": 1, "b": 1, "c": 1}, {**schema, "additionalProperties": True, "dependentRequired": {}}) == []
    assert validate({"q": 1, "r": 2}, {"minProperties": 2}) == []


def test_extra_members_follow_additional_properties_and_names_follow_property_names():
    schema = {"properties": {"a": {}}, "additionalProperties": {"type": "integer", "minimum": 0},
              "propertyNames": {"type": "string", "maxLength": 2}}
    assert messages({"a": "any", "bb": 1, "cc": -1, "ddd": 1}, schema) == [
        "cc must be an integer >= 0 (got -1)",
        "ddd is not a valid name: must be a string of at most 2 characters (got 'ddd')"]
    assert validate({"a": "x", "b": 0}, schema) == []
    named = validate({"ddd": 1}, schema)
    assert named == [Violation(("ddd",), "is not a valid name: must be a string of at most 2 characters", "ddd")]
    assert validate({"x": 5}, {"additionalProperties": False, "properties": {"x": True}}) == []
    assert messages({"x": 5}, {"properties": {"x": False}}) == ["x is not allowed here (got 5)"]


def test_members_without_a_value_are_violations_without_one():
    assert validate({}, {"required": ["a"]}) == [Violation(("a",), "is required", None, False)]
    assert validate({"c": 1}, {"dependentRequired": {"c": ["d"]}}) == [
        Violation(("d",), "is required when c is given", None, False)]
    assert validate({"x": 1}, {"properties": {}, "additionalProperties": False}) == [
        Violation(("x",), "is not a known field here (known: )", None, False)]


def test_a_name_breaking_two_rules_is_named_once_and_its_key_then_its_parent():
    schema = {"$defs": {"lower": {"pattern": "^[a-z]+$"}},
              "properties": {"s": {"propertyNames": {"$ref": "#/$defs/lower", "maxLength": 2}}}}
    assert messages({"s": {"ABC": 1}}, schema) == [
        "s.ABC is not a valid name: must be a value matching ^[a-z]+$ (got 'ABC')",
        "s must be a value of at most 2 characters (got 'ABC')"]


def nest(levels: int, schema: dict, value):
    """`schema` and `value` under `levels` objects of one member "a"."""
    for _ in range(levels):
        schema, value = {"properties": {"a": schema}}, {"a": value}
    return schema, value


@pytest.mark.parametrize(("inner", "value", "ok", "deep"), [
    ({"propertyNames": {"maxLength": 5}}, {"k": 1}, [], ".k is not a valid name: is nested deeper than 64 levels (got 'k')"),
    ({"additionalProperties": {"type": "integer"}}, {"k": "x"}, [".k must be an integer (got 'x')"],
     ".k is nested deeper than 64 levels"),
    ({"items": {"type": "integer"}}, ["x"], ["[0] must be an integer (got 'x')"], "[0] is nested deeper than 64 levels"),
])
def test_names_extra_members_and_array_members_count_one_level_each(inner, value, ok, deep):
    """The walk's depth limit, exactly where each kind of child crosses it."""
    where = "a" + ".a" * 62
    assert messages(*reversed(nest(63, inner, value))) == [where + m for m in ok]  # children at level 64
    assert messages(*reversed(nest(64, inner, value))) == [where + ".a" + deep]  # children at level 65


def test_a_reference_counts_one_level():
    schema, value = nest(63, {"$ref": "#/$defs/n"}, "x")
    schema["$defs"] = {"n": {"type": "integer"}}
    assert messages(value, schema) == ["a" + ".a" * 62 + " must be an integer (got 'x')"]  # the target at level 64
    schema, value = nest(64, {"$ref": "#/$defs/n"}, "x")
    schema["$defs"] = {"n": {"type": "integer"}}
    assert validate(value, schema) == [Violation(("a",) * 64, "is nested deeper than 64 levels", None, False)]


def test_a_name_refused_inside_a_section_is_named_with_its_section():
    schema = {"properties": {"files": {"propertyNames": {"pattern": "^[a-z]+$"}, "additionalProperties": {"type": "integer"}}}}
    assert messages({"files": {"ok": 1, "Bad": "x"}}, schema) == [
        'files.Bad is not a valid name: must be a value matching ^[a-z]+$ (got \'Bad\')',
        "files.Bad must be an integer (got 'x')"]


def test_array_members_and_the_fast_string_list():
    assert messages([1, "a", 2], {"items": {"type": "integer"}}) == ["[1] must be an integer (got 'a')"]
    plain = {"type": "array", "items": {"type": "string", "minLength": 1}}
    assert validate(["a", "bc"], plain) == [] and validate([], plain) == []
    assert messages(["a", "", "b", ""], plain) == ["[1] must be a string of at least 1 characters (got '')",
                                                   "[3] must be a string of at least 1 characters (got '')"]
    assert messages(["a", 7], plain) == ["[1] must be a string of at least 1 characters (got 7)"]
    assert messages(["a", True], {"items": {"type": "string"}}) == ["[1] must be a string (got True)"]
    assert messages(["", "abc"], {"items": {"type": "string", "maxLength": 2}}) == [
        "[1] must be a string of at most 2 characters (got 'abc')"]
    assert messages(["ab", "a"], {"items": {"type": "string", "pattern": "b"}}) == [
        "[1] must be a string matching b (got 'a')"]
    assert messages(["", "a"], {"items": {"type": "string", "description": "any"}}) == []
    assert messages(["x"], {"items": {"type": "integer", "description": "d"}}) == ["[0] must be an integer (got 'x')"]
    assert messages([[1, "a"]], {"items": {"items": {"type": "integer"}}}) == ["[0][1] must be an integer (got 'a')"]
    assert messages([1, 2, 3], {"maxItems": 2, "items": {"type": "string"}}) == [
        "(root) must be a value of at most 2 items (got [1, 2, 3])", "[0] must be a string (got 1)",
        "[1] must be a string (got 2)", "[2] must be a string (got 3)"]


def test_true_empty_and_false_schemas():
    for value in (None, 1, "x", [1], {"a": 1}):
        assert validate(value, {}) == [] and validate(value, True) == []
    assert messages([1], False) == ["(root) is not allowed here (got [1])"]


def test_references_are_followed_with_their_siblings():
    schema = {"$defs": {"n": {"type": "integer"}, "o": {"properties": {"x": {"$ref": "#/$defs/n"}}}},
              "$ref": "#/$defs/o", "required": ["y"]}
    assert messages({"x": "a"}, schema) == ["x must be an integer (got 'a')", "y is required"]
    assert messages(2, {"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n", "minimum": 3}) == [
        "(root) must be a value >= 3 (got 2)"]
    assert messages("2", {"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n", "minimum": 3}) == [
        "(root) must be an integer (got '2')"]


def test_the_walk_stops_past_64_levels_and_names_the_place():
    def chain(levels):
        schema = {"type": "integer"}
        for _ in range(levels):
            schema = {"properties": {"a": schema}}
        return schema

    def value(levels):
        doc = "x"
        for _ in range(levels):
            doc = {"a": doc}
        return doc

    assert MAX_DEPTH == 64
    assert messages(value(64), chain(64)) == ["a" + ".a" * 63 + " must be an integer (got 'x')"]
    assert messages(value(65), chain(65)) == ["a" + ".a" * 64 + " is nested deeper than 64 levels"]


def test_the_limit_caps_the_violations():
    schema = {"items": {"type": "integer"}}
    assert len(validate(list("abcde"), schema)) == 5
    assert messages(list("abcde"), schema, limit=2) == ["[0] must be an integer (got 'a')",
                                                        "[1] must be an integer (got 'b')"]
    assert validate(list("abc"), schema, limit=0) == []
    assert len(validate(["x"] * 30, schema)) == 20  # the default
    names = {"propertyNames": {"maxLength": 1}, "required": ["q"]}
    assert messages({"ab": 1}, names, limit=1) == ["q is required"]
    assert messages({}, {"required": ["a", "b", "c"]}, limit=1) == ["a is required"]  # one node, many failures
    assert messages({}, {"required": ["a", "b", "c"]}, limit=2) == ["a is required", "b is required"]


# ------------------------------------------------------------------ check_manifest


TAIL = "; the manifest does not follow the bundle spec (spec/manifest.schema.json): re-export the bundle"


def test_check_manifest_names_the_first_problem_and_counts_the_rest():
    check_manifest(copy.deepcopy(MANIFEST))
    doc = copy.deepcopy(MANIFEST)
    doc["items"]["count"] = "x"
    with pytest.raises(BundleError) as caught:
        check_manifest(doc)
    assert str(caught.value) == "manifest.json: items.count must be an integer >= 0 (got 'x')" + TAIL
    doc["dim"] = 0
    with pytest.raises(BundleError) as caught:
        check_manifest(doc)
    assert str(caught.value) == ("manifest.json: dim must be an integer between 1 and 65536 (got 0) "
                                 "(and 1 more problem(s))" + TAIL)
    doc.pop("name")
    with pytest.raises(BundleError) as caught:
        check_manifest(doc)
    assert str(caught.value).startswith("manifest.json: ") and str(caught.value).endswith(
        " (and 2 more problem(s))" + TAIL), str(caught.value)


def test_check_manifest_of_one_section_names_the_section():
    items = copy.deepcopy(MANIFEST["items"])
    check_manifest(items, section="items")  # its $refs resolve inside the whole schema's $defs
    items["embeddings"]["scale_axis"] = "col"
    with pytest.raises(BundleError) as caught:
        check_manifest(items, section="items")
    assert str(caught.value) == ("manifest.json: items.embeddings.scale_axis must be one of 'dim', 'row' (got 'col')"
                                 + TAIL)
    items["embeddings"]["scale_axis"] = "dim"
    items.pop("count")
    with pytest.raises(BundleError) as caught:
        check_manifest(items, section="items")
    assert str(caught.value) == "manifest.json: items.count is required" + TAIL  # no value to show
    with pytest.raises(BundleError) as caught:
        check_manifest([], section="items")
    assert str(caught.value) == "manifest.json: items must be an object (got [])" + TAIL
    with pytest.raises(BundleError) as caught:
        check_manifest([])
    assert str(caught.value) == "manifest.json: (root) must be an object (got [])" + TAIL
