"""manifest.json as spec rules 1, 3 and 5 read it: strict JSON text, and the files a manifest names.

Where readers of JSON differ the manifest is refused, so two runtimes never read two manifests from
one file: a member named twice, NaN or a number past a double's range, an integer past 64 bits, an
unpaired surrogate escape. The files a manifest names are found through the schema's path type.
"""

from __future__ import annotations

import json
import math
import re

from edgerec.errors import BundleError
from edgerec.runtime.checks import shown
from edgerec.runtime.schema import MAX_DEPTH, manifest_schema

MIN_INTEGER, MAX_INTEGER = -2**63, 2**63 - 1  # spec rule 1: an integer fits a signed 64-bit one (another runtime reads it into one)
PATH_REFS = ("#/$defs/path", "#/$defs/path_form")  # the schema's types of a file the manifest names (spec rule 5)


def parse_manifest(text: str) -> dict:
    """manifest.json's text as spec rules 1 and 3 read it, or BundleError: JSON without NaN or infinities
    (Python's json reads them, JSON has none), integers within 64 bits, no object naming a member twice
    (readers keep the first or the last: two runtimes would read two manifests) and no unpaired surrogate
    escape (no UTF-8 text holds one; a path with one crashed the file checks)."""
    try:
        raw = json.loads(text, parse_constant=_no_constant, parse_float=_finite, parse_int=_integer,
                         object_pairs_hook=_unique_members)
        if _SURROGATE.search(text):  # rare: only then is the whole manifest encoded again to find one
            json.dumps(raw, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise BundleError("manifest.json nests too deeply to be a manifest; the bundle is damaged") from None
    except UnicodeEncodeError:
        raise BundleError("manifest.json holds a string with an unpaired surrogate escape (\\ud800 to "
                          "\\udfff), which is no Unicode text; the bundle is damaged") from None
    except ValueError as exc:  # JSONDecodeError, and the hooks' refusals
        raise BundleError(f"manifest.json is not valid JSON ({exc}); the bundle is damaged") from None
    return raw


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _no_constant(word: str):
    raise ValueError(f"{word} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{shown(text)} is beyond the range of a number")
    return value


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not MIN_INTEGER <= (value := int(text)) <= MAX_INTEGER:
        raise ValueError(f"integer {shown(text)} is outside the signed 64-bit range")
    return value


def _unique_members(pairs: list[tuple]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"an object names the member {shown(twice)} twice")
    return out


def named_files(instance, schema: dict | None = None) -> list[str]:
    """Every file a manifest names (spec rule 5): each value the schema types as a path, outside the
    keys of `files`; found through the schema, so a new file field is covered without a list to keep."""
    root = manifest_schema() if schema is None else schema
    out: list[str] = []
    _collect_paths(instance, root, root, out, 0)
    return out


def _collect_paths(value, schema, root: dict, out: list[str], depth: int) -> None:
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return
    ref = schema.get("$ref")
    if ref in PATH_REFS:  # path_form: a numeric column's file, or its constant (format 6)
        if isinstance(value, str):
            out.append(value)
        return
    if ref is not None:
        node = root
        for part in ref[2:].split("/"):
            node = node[part]
        _collect_paths(value, node, root, out, depth + 1)
    if isinstance(value, dict):
        properties, extra = schema.get("properties", {}), schema.get("additionalProperties")
        for key, member in value.items():
            _collect_paths(member, properties.get(key, extra), root, out, depth + 1)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict) and _may_name_files(schema["items"]):
        for member in value:
            _collect_paths(member, schema["items"], root, out, depth + 1)


def _may_name_files(schema: dict) -> bool:
    """Whether values of this array's items can hold a path (not a vocabulary of a million strings): a
    path, an object or an array (a list of lists of paths) can, a plain string or number cannot."""
    return "$ref" in schema or "properties" in schema or "additionalProperties" in schema or "items" in schema
