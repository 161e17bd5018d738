"""Guards of runtime/manifest_read.py and runtime/model_rules.py (spec §1 rules 1, 5 and 7), found by
mutation testing (note 41): the exact ends of the 64-bit integer range, which member a refusal names,
the whole surrogate message, the files a schema other than the manifest's names (arrays of objects,
maps and lists, a schema that refers to itself), and the model rules on shapes the golden bundles
do not have (3-D outputs, a ranker listed before the encoders)."""

from __future__ import annotations

import json

import pytest
from bundle_edit import rewrite

from edgerec.errors import BundleError
from edgerec.runtime import Bundle
from edgerec.runtime.bundle import ModelEntry, TensorSpec
from edgerec.runtime.manifest_read import named_files, parse_manifest
from edgerec.runtime.model_rules import check_models, history_axis
from edgerec.runtime.schema import MAX_DEPTH

JSON = "manifest.json is not valid JSON"


def refusal(text: str) -> str:
    with pytest.raises(BundleError) as caught:
        parse_manifest(text)
    return str(caught.value)


def test_integers_at_both_ends_of_the_signed_64_bit_range_are_read():
    """Rule 1: every integer a signed 64-bit integer holds is read, -2**63 included (it was refused)."""
    text = '{"max": 9223372036854775807, "min": -9223372036854775808, "nineteen": 1000000000000000000, "z": -0}'
    got = parse_manifest(text)
    assert got == {"max": 2**63 - 1, "min": -2**63, "nineteen": 10**18, "z": 0}
    assert all(type(v) is int for v in got.values())


@pytest.mark.parametrize("literal", ["9223372036854775808", "-9223372036854775809", "10000000000000000000",
                                     "-99999999999999999999"])
def test_an_integer_one_past_either_end_is_refused(literal):
    assert refusal('{"x": ' + literal + "}") == (f"{JSON} (integer '{literal}' is outside the signed 64-bit "
                                                  "range); the bundle is damaged")


@pytest.mark.parametrize("text, member", [
    ('{"a": 1, "b": 2, "c": 3, "b": 4}', "b"),
    ('{"first": 0, "inner": {"k": 1, "m": 2, "m": 3}}', "m"),
    ('{"a": 1, "b": 2, "c": 3, "c": 4, "b": 5}', "c"),  # the first member seen again is named
])
def test_a_member_named_twice_is_named_in_the_refusal(text, member):
    assert refusal(text) == f"{JSON} (an object names the member '{member}' twice); the bundle is damaged"


def test_the_surrogate_refusal_in_full_and_a_paired_escape_read():
    message = ("manifest.json holds a string with an unpaired surrogate escape (\\ud800 to \\udfff), which is no "
               "Unicode text; the bundle is damaged")
    assert refusal('{"name": "a\\ud83d"}') == message
    assert refusal('{"\\uDC00x": 1}') == message  # a key, upper-case hex
    assert parse_manifest('{"name": "\\ud83d\\ude00"}') == {"name": "\U0001f600"}  # a pair is one character


@pytest.mark.parametrize("word", ["NaN", "Infinity", "-Infinity"])
def test_json_constants_beyond_json_are_refused(word):
    assert refusal('{"x": ' + word + "}") == f"{JSON} ({word} is not a JSON number); the bundle is damaged"


PATH = {"$ref": "#/$defs/path"}


@pytest.mark.parametrize("items, instance", [
    (PATH, ["a.npy", "b.npy"]),  # an array of paths
    ({"properties": {"file": PATH, "n": {"type": "integer"}}}, [{"file": "a.npy", "n": 1}, {"file": "b.npy"}]),
    ({"additionalProperties": PATH}, [{"x": "a.npy"}, {"y": "b.npy"}]),  # an array of maps of paths
    ({"type": "array", "items": PATH}, [["a.npy"], ["b.npy"]]),  # an array of arrays of paths (was missed)
])
def test_the_files_named_by_a_schemas_arrays(items, instance):
    """named_files walks any schema it is given: each array whose items can hold a path is followed."""
    schema = {"type": "object", "properties": {"list": {"type": "array", "items": items}}}
    assert named_files({"list": instance, "other": "c.npy"}, schema) == ["a.npy", "b.npy"]


def test_values_a_schema_types_as_no_path_are_passed_over():
    schema = {"properties": {"words": {"type": "array", "items": {"type": "string"}}, "loose": {"type": "object"},
                             "file": PATH}}
    assert named_files({"words": ["a.npy"], "loose": ["b.npy", {"c": "d.npy"}], "file": "e.npy"}, schema) == ["e.npy"]
    assert named_files({"file": 5}, schema) == []  # a path_form holding a constant, not a file


@pytest.mark.parametrize("child, steps", [
    ({"$ref": "#/$defs/node"}, 2),  # a tree of objects: the $ref, then the member
    ({"type": "array", "items": {"$ref": "#/$defs/node"}}, 3),  # a tree through lists: the member, the item, the $ref
])
def test_a_schema_that_refers_to_itself_is_walked_max_depth_steps_then_no_further(child, steps):
    """A malformed (self-referring) schema cannot drive the walk into a RecursionError: a level of the
    tree costs `steps` steps, the file of level k is reached at step steps * k + 2, and a step deeper
    than MAX_DEPTH is not taken."""
    schema = {"$ref": "#/$defs/node", "$defs": {"node": {"properties": {"file": PATH, "child": child}}}}
    tree: dict = {}
    node = tree
    for level in range(2000):
        node["file"] = f"f{level}"
        below: dict = {}
        node["child"] = below if steps == 2 else [below]
        node = below
    assert named_files(tree, schema) == [f"f{level}" for level in range((MAX_DEPTH - 2) // steps + 1)]


def test_the_manifests_own_schema_is_the_default(golden_bundle):
    manifest = json.loads((golden_bundle / "manifest.json").read_text())
    assert named_files(manifest, {"properties": {}}) == []
    assert "user_encoder.onnx" in named_files(manifest)


def entry(role="user_encoder", fmt="onnx", file="m.onnx", inputs=(("batch", "history"),), outputs=(("batch", 8),),
          history_length=None) -> ModelEntry:
    return ModelEntry(role, fmt, file, [TensorSpec(f"in{i}", "int64", list(s)) for i, s in enumerate(inputs)],
                      [TensorSpec(f"out{i}", "float32", list(s)) for i, s in enumerate(outputs)],
                      history_length=history_length)


@pytest.mark.parametrize("inputs, axis", [
    ((("batch", 5),), 5), (((1, 20), ("batch", 3)), 20), ((("batch", "history"),), None), (((5,),), None),
    (((1, 5, 8),), None), (((1, "history", 8),), None), ((), None),
])
def test_the_history_axis_is_the_second_of_exactly_two_when_an_integer(inputs, axis):
    assert history_axis(entry(inputs=inputs)) == axis


def test_the_output_width_is_the_last_axis():
    check_models([entry(outputs=(("batch", 1, 8),))], 8)
    check_models([entry(outputs=(("batch", "dim"),))], 8)  # not fixed: nothing to compare
    with pytest.raises(BundleError, match=r"^manifest.json: models\[0\] \(m.onnx\) outputs vectors 16 wide, the "
                                          r"manifest's dim is 8; the rule is one width for both, re-export$"):
        check_models([entry(outputs=(("batch", 1, 16),))], 8)


def test_a_model_of_another_role_listed_first_hides_no_encoder():
    ranker = entry(role="ranker", file="ranker.onnx", inputs=(("candidates", 28),), outputs=(("candidates",),))
    with pytest.raises(BundleError, match=r"^manifest.json: models\[1\] \(wide.onnx\) outputs vectors 16 wide"):
        check_models([ranker, entry(file="wide.onnx", outputs=(("batch", 16),))], 8)
    with pytest.raises(BundleError, match=r"^manifest.json: models\[2\] \(b.tflite\) has history_length 6 and an "
                                          r"input shape that fixes the history at 5; the two must agree, re-export$"):
        check_models([ranker, entry(), entry(fmt="tflite", file="b.tflite", inputs=((1, 5),), history_length=6)], 8)
    with pytest.raises(BundleError, match=r"^manifest.json: models\[2\] \(c.onnx\) is a second user_encoder for onnx; "
                                          r"a bundle holds one model per role and format, re-export it$"):
        check_models([ranker, entry(), entry(file="c.onnx")], 8)
    check_models([ranker, entry(), entry(fmt="tflite", file="b.tflite", inputs=((1, 5),), history_length=5)], 8)


def test_a_ranked_bundle_with_its_ranker_listed_first_is_still_checked(tmp_path, golden_bundle):
    import shutil

    root = tmp_path / "ranked"
    shutil.copytree(golden_bundle.parent / "ranked", root)
    rewrite(root, lambda d: d.update(models=d["models"][::-1]))
    Bundle.open(root)  # the order of models is free
    rewrite(root, lambda d: d["models"][1]["outputs"][0].update(shape=["batch", 16]))
    with pytest.raises(BundleError, match=r"^manifest.json: models\[1\] \(user_encoder.onnx\) outputs vectors 16 "):
        Bundle.open(root)
