"""The manifest's JSON Schema on the device: a small validator for the subset the schema uses.

The schema itself is spec/manifest.schema.json (shipped as package data of
`edgerec.spec`). The device side may not depend on the `jsonschema` package,
so this module checks the keywords that file uses, with JSON Schema 2020-12
semantics (a keyword applies only to values of its kind): type, const, enum,
properties, required, additionalProperties, propertyNames, minProperties,
dependentRequired, items, minItems, maxItems, uniqueItems, minimum, maximum,
exclusiveMinimum, minLength, maxLength, pattern, and local $ref into $defs.
A schema that uses any other keyword is refused, so the schema cannot
silently outgrow its validator. The tests cross-check it with `jsonschema`.
`check_manifest` also checks the few ties between members that JSON Schema
cannot state (spec/README.md §1 rule 3): see `linked`.
"""

from __future__ import annotations

import json
import math
import pkgutil
import re
from dataclasses import dataclass
from functools import cache

from edgerec.errors import BundleError
from edgerec.runtime.checks import shown

SCHEMA_PACKAGE = "edgerec.spec"
SCHEMA_FILE = "manifest.schema.json"
ANNOTATIONS = frozenset(("$schema", "$id", "title", "description"))
KEYWORDS = frozenset(("type", "const", "enum", "properties", "required", "additionalProperties", "propertyNames",
                      "minProperties", "dependentRequired", "items", "minItems", "maxItems", "uniqueItems", "minimum",
                      "maximum", "exclusiveMinimum", "minLength", "maxLength", "pattern", "$ref", "$defs"))
MAX_DEPTH = 64  # the schema is a few levels deep; a deeper walk means a malformed schema
ARTICLES = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
            "object": "an object", "array": "an array", "null": "null"}


@dataclass(frozen=True)
class Violation:
    path: tuple  # keys and indices from the document's root
    rule: str  # "must be an integer >= 0", "is required", ...
    value: object = None
    has_value: bool = True

    @property
    def where(self) -> str:
        return dotted(self.path)

    def message(self) -> str:
        got = f" (got {shown(self.value)})" if self.has_value else ""
        return f"{self.where} {self.rule}{got}"


def dotted(path: tuple) -> str:
    """items.count, models[0].inputs[1].dtype, files["items/ids.bin"].sha256"""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_@]*", part):
            out += ("." if out else "") + part
        else:
            out += f"[{json.dumps(part)}]"
    return out or "(root)"


# ------------------------------------------------------------------ the schema


@cache
def manifest_schema() -> dict:
    """The manifest schema shipped with this install (checked to use only supported keywords)."""
    # pkgutil, not importlib.resources: that one imports tempfile, shutil and random (1 MB on a device)
    text = pkgutil.get_data(SCHEMA_PACKAGE, SCHEMA_FILE).decode("utf-8")
    schema = json.loads(text)
    check_keywords(schema)
    return schema


def check_keywords(schema, where: str = "#") -> None:
    """Refuse a schema with keywords this validator does not implement."""
    if isinstance(schema, bool):
        return
    unknown = set(schema) - KEYWORDS - ANNOTATIONS
    if unknown:
        raise ValueError(f"schema {where} uses {sorted(unknown)}, which runtime/schema.py does not implement")
    for key in ("properties", "$defs"):
        for name, sub in schema.get(key, {}).items():
            check_keywords(sub, f"{where}/{key}/{name}")
    for key in ("additionalProperties", "propertyNames", "items"):
        if isinstance(schema.get(key), dict):
            check_keywords(schema[key], f"{where}/{key}")
    ref = schema.get("$ref")
    if ref is not None and not ref.startswith("#/$defs/"):
        raise ValueError(f"schema {where}: only local refs into #/$defs are supported (got {ref})")


# ------------------------------------------------------------------ validation


def validate(instance, schema: dict, limit: int = 20) -> list[Violation]:
    """Up to `limit` violations of `schema` by `instance` (an empty list: valid)."""
    out: list[Violation] = []
    _Walk(schema, out, limit).node(instance, schema, (), 0)
    return out


class _Walk:
    def __init__(self, root: dict, out: list[Violation], limit: int):
        self.root, self.out, self.limit = root, out, limit

    def fail(self, path, rule, value=None, has_value=True) -> None:
        if len(self.out) < self.limit:
            self.out.append(Violation(path, rule, value, has_value))

    def resolve(self, ref: str) -> dict:
        node = self.root
        for part in ref[2:].split("/"):
            node = node[part]
        return node

    def node(self, value, schema, path: tuple, depth: int) -> None:
        if len(self.out) >= self.limit:
            return
        if schema is True or schema == {}:
            return
        if schema is False:
            self.fail(path, "is not allowed here", value)
            return
        if depth > MAX_DEPTH:
            self.fail(path, f"is nested deeper than {MAX_DEPTH} levels", has_value=False)
            return
        if "$ref" in schema:
            self.node(value, self.resolve(schema["$ref"]), path, depth + 1)
        if not self.scalar(value, schema, path):
            return
        if isinstance(value, dict):
            self.mapping(value, schema, path, depth)
        elif isinstance(value, list):
            self.sequence(value, schema, path, depth)

    def scalar(self, value, schema, path) -> bool:
        """type, const, enum and the bounds of numbers and strings; False stops the walk here."""
        wanted = schema.get("type")
        if wanted is not None and not any(is_type(value, t) for t in ([wanted] if isinstance(wanted, str)
                                                                        else wanted)):
            self.fail(path, "must be " + describe(schema), value)
            return False
        if "const" in schema and not equal(value, schema["const"]):
            self.fail(path, "must be " + describe(schema), value)
            return False
        if "enum" in schema and not any(equal(value, option) for option in schema["enum"]):
            self.fail(path, "must be " + describe(schema), value)
            return False
        bad = False
        if is_type(value, "number"):
            bad = (("minimum" in schema and value < schema["minimum"])
                   or ("maximum" in schema and value > schema["maximum"])
                   or ("exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]))
        elif isinstance(value, str):
            bad = (("minLength" in schema and len(value) < schema["minLength"])
                   or ("maxLength" in schema and len(value) > schema["maxLength"])
                   or ("pattern" in schema and not _pattern(schema["pattern"]).search(value)))
        if bad:
            self.fail(path, "must be " + describe(schema), value)
        return True

    def mapping(self, value: dict, schema, path, depth) -> None:
        for key in schema.get("required", ()):
            if key not in value:
                self.fail(path + (key,), "is required", has_value=False)
        for key, needs in schema.get("dependentRequired", {}).items():
            if key in value:
                for other in needs:
                    if other not in value:
                        self.fail(path + (other,), f"is required when {key} is given", has_value=False)
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            self.fail(path, f"must have at least {schema['minProperties']} member(s)", value)
        names = schema.get("propertyNames")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, member in value.items():
            if names is not None:
                before = len(self.out)
                self.node(key, names, path, depth + 1)
                if len(self.out) > before:  # name the offending key, not its parent
                    self.out[before] = Violation(path + (key,), "is not a valid name: " + self.out[before].rule,
                                                 key)
            if key in properties:
                self.node(member, properties[key], path + (key,), depth + 1)
            elif extra is False:
                known = ", ".join(sorted(properties))
                self.fail(path + (key,), f"is not a known field here (known: {known})", has_value=False)
            elif extra is not True:
                self.node(member, extra, path + (key,), depth + 1)

    def sequence(self, value: list, schema, path, depth) -> None:
        if ("minItems" in schema and len(value) < schema["minItems"]) or \
                ("maxItems" in schema and len(value) > schema["maxItems"]):
            self.fail(path, "must be " + describe(schema), value)
        if schema.get("uniqueItems") is True and (twice := repeated(value)) is not None:
            self.fail(path, f"must hold distinct values ({shown(twice[0])} is there more than once)", has_value=False)
        items = schema.get("items")
        if items is None:
            return
        if set(items) <= {"type", "minLength", "description"} and items.get("type") == "string" and \
                set(map(type, value)) <= {str} and min(map(len, value), default=1 << 30) >= items.get("minLength", 0):
            return  # the usual vocabulary list: up to a million plain strings, checked in two C-speed passes
        for i, member in enumerate(value):
            self.node(member, items, path + (i,), depth + 1)


def is_type(value, name: str) -> bool:
    """JSON types as the spec reads them (rule 3): booleans are not numbers, an integer is written as one
    (1.0 is a number, not an integer: JSON Schema would take it, and a reader of integers would either
    refuse it or, as TFLite's fixed history length did, fail later), and NaN and the infinities (which
    Python's json reads) are not numbers: JSON has none of them."""
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, float) and math.isfinite(value))
    kinds = {"string": str, "object": dict, "array": list, "boolean": bool, "null": type(None)}
    return isinstance(value, kinds[name])


def repeated(values: list) -> tuple | None:
    """(the first value seen a second time,) by JSON equality (true is not 1, 1 is 1.0), else None."""
    if set(map(type, values)) <= {str}:  # a vocabulary: up to a million strings, one C-speed pass
        if len(set(values)) == len(values):
            return None
    seen: set = set()
    for value in values:
        key = _json_key(value)
        if key in seen:
            return (value,)
        seen.add(key)
    return None


def _json_key(value):
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, list):
        return ("array", tuple(map(_json_key, value)))
    if isinstance(value, dict):
        return ("object", frozenset((k, _json_key(v)) for k, v in value.items()))
    return ("string" if isinstance(value, str) else "number", value)


def equal(a, b) -> bool:
    """JSON equality: true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def describe(schema: dict) -> str:
    """What a schema node asks for, in words: "an integer >= 0", "one of 'onnx', 'tflite'"."""
    if "const" in schema:
        return f"{schema['const']!r}"
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    words = " or ".join(ARTICLES[k] for k in kinds) or "a value"
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        words += f" between {low} and {high}"
    elif low is not None:
        words += f" >= {low}"
    elif high is not None:
        words += f" <= {high}"
    if "exclusiveMinimum" in schema:
        words += f" > {schema['exclusiveMinimum']}"
    words += _count(schema, "Length", "characters")
    if "pattern" in schema:
        words += f" matching {schema['pattern']}"
    return words + _count(schema, "Items", "items")


def _count(schema: dict, keyword: str, unit: str) -> str:
    low, high = schema.get("min" + keyword), schema.get("max" + keyword)
    if low is not None and high is not None:
        return f" of {low} to {high} {unit}"
    if low is not None:
        return f" of at least {low} {unit}"
    return f" of at most {high} {unit}" if high is not None else ""


@cache
def _pattern(text: str) -> re.Pattern:
    """A schema pattern in Python: ECMA-262's `$` (the schema's dialect) ends the string, Python's
    also matches before a final newline, so a bare `$` (not escaped, not in a class) becomes `\\Z`."""
    return re.compile(re.sub(r"(\\.|\[(?:\\.|[^\]\\])*\])|\$", lambda m: m.group(1) or r"\Z", text))


def check_manifest(raw, section: str | None = None) -> None:
    """BundleError naming the first field of a manifest (or of one of its sections) that breaks the
    schema, and the rule."""
    schema = manifest_schema()
    if section is not None:
        schema = {"$defs": schema["$defs"], **schema["properties"][section]}
    problems = validate(raw, schema)
    if problems:
        first = problems[0]
        first = Violation((section,) + first.path, first.rule, first.value, first.has_value) if section else first
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise BundleError(f"manifest.json: {first.message()}{more}; the manifest does not follow the "
                          "bundle spec (spec/manifest.schema.json): re-export the bundle")
    if section is None and (problems := linked(raw)):
        raise BundleError(f"manifest.json: {problems[0].message()}; the manifest does not follow the bundle spec "
                          "(spec/README.md, section 1 rule 3): re-export the bundle")


USER_ENCODER_INPUTS = ("int64", "int32")  # a user encoder's item inputs are integers (spec §3)


def linked(raw: dict) -> list[Violation]:
    """The ties between members that JSON Schema cannot state (spec §1 rule 3), on a manifest the schema
    took: each lift list of ranking.context_prior holds one value per name of its `modalities` (a shorter
    or longer one would be cut to fit, silently), and a user encoder's item input is declared int64 or
    int32 (§3: a float declaration names no input a runtime can feed)."""
    out = []
    prior = raw.get("ranking", {}).get("context_prior")
    if prior:
        size = len(prior["modalities"])
        for part in ("device", "day_part"):
            out += [Violation(("ranking", "context_prior", part, name), f"holds {len(lifts)} lift(s); it must hold "
                              f"one per name of ranking.context_prior.modalities ({size})", has_value=False)
                    for name, lifts in prior[part].items() if len(lifts) != size]
    for i, model in enumerate(raw["models"]):
        if model["role"] == "user_encoder" and (dtype := model["inputs"][0]["dtype"]) not in USER_ENCODER_INPUTS:
            out.append(Violation(("models", i, "inputs", 0, "dtype"), "must be 'int64' or 'int32' for a user "
                                 "encoder (its inputs are item inputs, integers)", dtype))
    return out
