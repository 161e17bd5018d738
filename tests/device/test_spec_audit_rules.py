"""An audit of spec/ as a second runtime's engineer reads it: where the reference runtime and the text
parted, each pinned here (numpy and the ONNX engine only).

- Opening (spec §1 rules 1 to 5): manifests JSON readers read differently (a member named twice, NaN,
  an integer beyond 64 bits, an unpaired surrogate), integers written as 5.0, paths outside their
  plain form, and files the space section or the scorer names without listing them: each a
  BundleError at open, naming what was wrong. Before the audit several opened, and some then failed
  later with a raw exception or, for a TFLite history length of 5.0, silently served popularity.
- Scoring: a float16 table scores the same whichever scan kernel is installed (§4: float32 query).
- History: onboarding choices count once each, in code-point order (§2); events on items a bundle
  update took away are ignored (§2).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime import Bundle, Recommender
from edgerec.runtime.bundle import safe_relative
from edgerec.runtime.manifest_read import named_files
from edgerec.runtime.policies import Policy
from edgerec.runtime.retrieval import available_kernels
from edgerec.runtime.schema import _pattern, manifest_schema, validate

from .test_bundle_rules import replace_array, rewrite

GOLDEN = Path(__file__).resolve().parents[2] / "spec" / "golden"
NOW = {"now": 1763598915.0, "hour": 20.5}
ZERO = {"sha256": "0" * 64, "bytes": 0}


def text_edit(old: str, new: str):
    """Replace `old` (once) in manifest.json's text: what no JSON writer would produce."""
    def apply(root: Path) -> None:
        path = root / "manifest.json"
        text = path.read_text(encoding="utf-8")
        assert old in text, old
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return apply


def doc_edit(change):
    """Edit the parsed manifest and write it back, checksums left as they were (rewrite() would refill
    a missing sha256 or a wrong size)."""
    def apply(root: Path) -> None:
        path = root / "manifest.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return apply


def consistent(change):
    """Edit the manifest, then make every checksum and the embedding space match again (rewrite)."""
    return lambda root: rewrite(root, change)


def tflite(data: dict) -> dict:
    return next(m for m in data["models"] if m["format"] == "tflite")


JSON = "manifest.json is not valid JSON"
HOSTILE = {  # name: (damage, the start of the refusal)
    "NaN in an open section": (text_edit('"metrics": {', '"metrics": {"study": NaN, '), f"{JSON} (NaN is not a JSON number)"),
    "an overflowing number": (text_edit('"data_version": {', '"data_version": {"x": 1e400, '),
                              f"{JSON} ('1e400' is beyond the range of a number)"),
    "an integer beyond 64 bits": (text_edit('"data_version": {', '"data_version": {"x": 18446744073709551616, '),
                                  f"{JSON} (integer '18446744073709551616' is outside the signed 64-bit range)"),
    "an integer of 5000 digits": (text_edit('"data_version": {', '"data_version": {"x": 1' + "0" * 5000 + ", "),
                                  f"{JSON} (integer '1000000000"),
    "a file listed twice": (text_edit('"files": {', '"files": {"items/popularity.npy": {"sha256": "' + "0" * 64
                                      + '", "bytes": 1}, '),
                            f"{JSON} (an object names the member 'items/popularity.npy' twice)"),
    "format_version given twice": (text_edit('"format": ', '"format_version": 99, "format": '),
                                   f"{JSON} (an object names the member 'format_version' twice)"),
    "an unpaired surrogate in a path": (text_edit('"files": {', '"files": {"items/a\\ud800.npy": {"sha256": "'
                                                  + "0" * 64 + '", "bytes": 0}, '),
                                        "manifest.json holds a string with an unpaired surrogate escape"),
    "an unpaired surrogate in the name": (text_edit('"name": "', '"name": "\\udc00'),
                                          "manifest.json holds a string with an unpaired surrogate escape"),
    "a byte-order mark": (lambda root: (root / "manifest.json").write_bytes(
        b"\xef\xbb\xbf" + (root / "manifest.json").read_bytes()), f"{JSON} (Unexpected UTF-8 BOM"),
    "bytes that are no UTF-8": (lambda root: (root / "manifest.json").write_bytes(
        (root / "manifest.json").read_bytes().replace(b'"golden"', b'"gold\xff"', 1)), "manifest.json is not UTF-8 text"),
    "a count of 56.0": (consistent(lambda d: d["items"].update(count=56.0)),
                        "manifest.json: items.count must be an integer >= 0 (got 56.0)"),
    "a dim of 8.0": (consistent(lambda d: d.update(dim=8.0)), "manifest.json: dim must be an integer between 1 and 65536"),
    "a TFLite history length of 5.0": (consistent(lambda d: tflite(d).update(history_length=5.0)),
                                       "manifest.json: models[1].history_length must be an integer between 1 and "
                                       "100000 (got 5.0)"),
    "a fixed axis of 5.0": (consistent(lambda d: tflite(d)["inputs"][0].update(shape=[1, 5.0])),
                            "manifest.json: models[1].inputs[0].shape[1] must be an integer or a string"),
    "format_version 5.0": (consistent(lambda d: d.update(format_version=5.0)),
                           "manifest.json: format_version must be an integer (got 5.0)"),
    "format_version 7": (consistent(lambda d: d.update(format_version=7)), "bundle format version 7 is not supported"),
    "format_version 0": (consistent(lambda d: d.update(format_version=0)), "bundle format version 0 is not supported"),
    "a '.' segment": (consistent(lambda d: d["files"].update({"items/./popularity.npy": d["files"]["items/popularity.npy"]})),
                      "bundle path 'items/./popularity.npy' leaves the bundle directory or is not in its plain form"),
    "a trailing slash": (consistent(lambda d: d["files"].update({"items/": ZERO})),
                         "bundle path 'items/' leaves the bundle directory or is not in its plain form"),
    "the bundle itself": (consistent(lambda d: d["files"].update({".": ZERO})), "bundle path '.' leaves the bundle"),
    "'..'": (consistent(lambda d: d["files"].update({"items/../../x": ZERO})), "bundle path 'items/../../x' leaves"),
    "an absolute path": (consistent(lambda d: d["files"].update({"/etc/hosts": ZERO})), "bundle path '/etc/hosts' leaves"),
    "a backslash": (consistent(lambda d: d["files"].update({"items\\x.npy": ZERO})), "bundle path 'items\\\\x.npy' is not"),
    "a control character": (consistent(lambda d: d["files"].update({"items/x\n.npy": ZERO})),
                            "bundle path 'items/x\\n.npy' is not a plain relative path"),
    "a missing sha256": (doc_edit(lambda d: d["files"]["items/popularity.npy"].pop("sha256")),
                         'manifest.json: files["items/popularity.npy"].sha256 is required'),
    "a negative size": (doc_edit(lambda d: d["files"]["items/popularity.npy"].update(bytes=-1)),
                        'manifest.json: files["items/popularity.npy"].bytes must be an integer >= 0 (got -1)'),
    "a negative count": (consistent(lambda d: d["items"].update(count=-1)), "manifest.json: items.count must be an integer >= 0"),
    "a second ONNX user encoder": (consistent(lambda d: d["models"].append({**d["models"][0], "file": "user_encoder.tflite"})),
                                   "manifest.json: models[2] (user_encoder.tflite) is a second user_encoder for onnx; a bundle holds one"),
    "a history_length against the fixed axis": (consistent(lambda d: tflite(d).update(history_length=6)),
                                                "manifest.json: models[1] (user_encoder.tflite) has history_length 6 "
                                                "and an input shape that fixes the history at 5"),
    "space content not listed": (consistent(lambda d: d["files"].pop("space/content.npy")),
                                 "manifest.json: space/content.npy is not listed with a checksum in files"),
    "a bridge prior not listed": (consistent(lambda d: d["files"].pop("space/bridge1.prior.npy")),
                                  "manifest.json: space/bridge1.prior.npy is not listed with a checksum in files"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_manifest_is_a_bundle_error_at_open(bundle_copy, name):
    damage, message = HOSTILE[name]
    damage(bundle_copy)
    with pytest.raises(BundleError) as caught:
        Bundle.open(bundle_copy)
    assert str(caught.value).startswith(message), str(caught.value)
    assert str(bundle_copy) not in str(caught.value)  # never a host path


@pytest.mark.parametrize("change, message", [
    (lambda d: d["files"].pop("ranking/scorer_mean.npy"), "manifest.json: ranking/scorer_mean.npy is not listed"),
    (lambda d: d["ranking"]["scorer"]["arrays"].update(scale="ranking/other.npy"),
     "manifest.json: ranking/other.npy is not listed"),
])
def test_a_scorer_array_not_listed_is_refused_at_open(tmp_path, change, message):
    """Spec rule 5: the scorer's arrays are files the manifest names (they failed only at the first
    request that read them, or never, with use_scorer false)."""
    root = Path(shutil.copytree(GOLDEN / "ranked", tmp_path / "ranked"))
    rewrite(root, change)
    with pytest.raises(BundleError, match=f"^{message}"):
        Bundle.open(root)


def test_a_golden_manifest_names_every_file_it_lists_and_no_other():
    """named_files finds the files through the schema's path type: every golden bundle's named files are
    listed, and only the documents (README.md, model_card.json) are listed without being named."""
    for name in ("bundle", "ranked", "rows"):
        manifest = json.loads((GOLDEN / name / "manifest.json").read_text())
        named = named_files(manifest)
        assert len(named) == len(set(named)) and set(named) <= set(manifest["files"])
        assert set(manifest["files"]) - set(named) <= {"README.md", "model_card.json"}
    manifest = json.loads((GOLDEN / "ranked" / "manifest.json").read_text())
    assert {"ranking/scorer_weights.npy", "ranker.onnx", "items/tags.codes.npy"} <= set(named_files(manifest))
    golden = json.loads((GOLDEN / "bundle" / "manifest.json").read_text())
    assert {"space/content.npy", "space/bridge0.weights.npy", "reference/top_k.npy"} <= set(named_files(golden))


NAMES = ["items/a.npy", "a", ".hidden", "items/.b", "a..b", "..a", "a/..b/c", "é/ü.npy", "a b/c",
         "/a", "./a", "a/./b", "a/.", ".", "..", "a/../b", "a/..", "a//b", "a/", "a\\b", "a\x00", "a\nb",
         "x\n//y", "a\x1f", "a\u2028//b", "a\u2028/../b", ""]


@pytest.mark.parametrize("name", NAMES, ids=[repr(n) for n in NAMES])
def test_the_schema_path_and_the_runtime_agree_on_every_name(name):
    """Rule 2 twice: the schema's path pattern (as ECMA-262 reads it) and the runtime's own check give
    one verdict; a '.' segment, a trailing slash and a control character passed both before."""
    schema = manifest_schema()["$defs"]["path_form"]
    by_schema = bool(name) and len(name) <= schema["maxLength"] and bool(_pattern(schema["pattern"]).search(name))
    try:
        safe_relative(name)
        by_runtime = True
    except BundleError:
        by_runtime = False
    assert by_schema == by_runtime
    assert by_runtime == (name in {"items/a.npy", "a", ".hidden", "items/.b", "a..b", "..a", "a/..b/c", "é/ü.npy",
                                   "a b/c"})


@pytest.mark.parametrize("value, ok", [(5, True), (5.0, False), (5e0, False), (True, False), ("5", False)])
def test_an_integer_is_an_integer_literal(value, ok):
    assert (validate(value, {"type": "integer"}) == []) == ok


def _float16_copy(tmp_path: Path) -> Path:
    root = Path(shutil.copytree(GOLDEN / "bundle", tmp_path / "fp16"))
    table = np.load(root / "items/embeddings.npy").astype(np.float32) * np.load(root / "items/scales.npy")[None, :]
    np.save(root / "items/embeddings.npy", table.astype(np.float16))
    (root / "items/scales.npy").unlink()

    def no_scales(d):
        d["files"].pop("items/scales.npy")
        d["items"]["embeddings"] = {"file": "items/embeddings.npy", "dtype": "float16"}
    rewrite(root, no_scales)
    return root


@pytest.mark.skipif("numkong" not in available_kernels(), reason="the other kernel (numkong) is not installed")
def test_a_float16_table_scores_alike_with_every_kernel(tmp_path):
    """§4: a float16 table is scored with the float32 query. numkong narrowed the query to float16, so
    the same bundle's scores moved by up to 8e-4 (8 golden tolerances) with the package installed."""
    root = _float16_copy(tmp_path)
    lists = {}
    for kernel in ("numpy", "numkong", "numkong-packed", "auto"):
        with Recommender.open(root, backend="onnx", kernel=kernel) as rec:
            rec.record("u", "i15", "play")
            rec.record("u", "i03", "like")
            short = rec.recommend("u", k=8, context=NOW)  # a short history: the scan's scores are the score
            rec.record("u", "i27", "finish")
            lists[kernel] = [(r.item_id, r.score) for r in short + rec.recommend("u", k=8, context=NOW)]
    assert lists["numkong"] == lists["numpy"] == lists["numkong-packed"] == lists["auto"]


def test_onboarding_choices_count_once_each_in_code_point_order(golden_bundle):
    """§2: of chosen languages ko, ja, hi (3 each), the language boost's two most common are hi and ja,
    whatever the order or repeats given; ko's items get no boost."""
    with Recommender.open(golden_bundle, backend="onnx") as rec:
        rec.onboard("a", languages=["ko", "ja", "hi"])
        rec.onboard("b", languages=["ko", "ko", "ko", "hi", "ja"])
        plain = {r.item_id: r.score for r in rec.recommend("a", k=56, context=NOW, policy=Policy(language_boost=0.0))}
        for user in ("a", "b"):
            boosted = rec.recommend(user, k=56, context=NOW, policy=Policy(language_boost=5.0))
            lift = {r.item_id: round(r.score - plain[r.item_id], 6) for r in boosted}
            languages = {r.item_id: rec.catalog.meta(rec.catalog.row(r.item_id))["language"] for r in boosted}
            assert {languages[i] for i, v in lift.items() if v == 5.0} == {"hi", "ja"}
            assert {languages[i] for i, v in lift.items() if v == 0.0} >= {"ko", "en"}


def _renamed_copy(tmp_path: Path, old: str, new: str) -> Path:
    """The golden bundle with one item's id changed (ids are no member of the embedding space): to a
    history recorded before, an update that removed `old` and added `new`."""
    root = Path(shutil.copytree(GOLDEN / "bundle", tmp_path / "renamed"))
    blob, offsets = (root / "items/ids.bin").read_bytes(), np.load(root / "items/ids.offsets.npy")
    ids = [blob[a:b].decode() for a, b in zip(offsets[:-1], offsets[1:])]
    ids[ids.index(old)] = new
    encoded = [i.encode() for i in ids]
    (root / "items/ids.bin").write_bytes(b"".join(encoded))
    replace_array(root, "items/ids.offsets.npy", np.r_[0, np.cumsum([len(e) for e in encoded])].astype(offsets.dtype))
    return root


def test_events_on_items_an_update_took_away_are_ignored(tmp_path, golden_bundle):
    """§2: a history recorded on one bundle, read through an update without one of its items: that
    item's events count for nothing (the list equals that of a user who never had them)."""
    history = tmp_path / "history.db"
    with Recommender.open(golden_bundle, history=history, backend="onnx") as rec:
        for item, event in (("i03", "finish"), ("i11", "finish"), ("i19", "finish"), ("i27", "like"),
                            ("i03", "more_like_this"), ("i03", "play")):
            rec.record("old", item, event)
    update = _renamed_copy(tmp_path, "i03", "i03-v2")
    with Recommender.open(update, history=history, backend="onnx") as rec:
        for item, event in (("i11", "finish"), ("i19", "finish"), ("i27", "like")):
            rec.record("fresh", item, event)
        old, fresh = (rec.recommend(user, k=10, context=NOW) for user in ("old", "fresh"))
        everything = [r.item_id for r in rec.recommend("old", k=56, context=NOW)]
    assert [(r.item_id, round(r.score, 6), r.reason.kind) for r in old] == \
        [(r.item_id, round(r.score, 6), r.reason.kind) for r in fresh]
    assert "i03-v2" in everything  # the item under its new id is no seen one


def test_an_onnx_encoder_with_a_fixed_history_axis_is_padded_to_it(bundle_copy):
    """§3: an ONNX input whose manifest shape fixes the history axis at L is left-padded to L, not to
    defaults.history_length (a user's own encoder fixed at 20 in a bundle whose default is 50 was fed 50
    ids: the engine refused every call and every warm list fell back to popularity). The golden encoder
    takes any length up to its 5 positions: declared fixed at 4, it must see the newest 4 ids."""
    rewrite(bundle_copy, lambda d: d["models"][0]["inputs"][0].update(shape=["batch", 4]))
    steps = ("i03", "i11", "i19", "i27", "i35")
    with Recommender.open(bundle_copy, backend="onnx") as rec:
        assert rec.models.encoder.max_len == 4
        for item in steps:
            rec.record("u", item, "finish")
        got = [(r.item_id, round(r.score, 6)) for r in rec.recommend("u", k=8, context=NOW)]
        assert rec.stats()["counters"].get("encode_fallback", 0) == 0
    with Recommender.open(GOLDEN / "bundle", backend="onnx") as rec:  # the plain bundle, told 4 by its default
        for item in steps:
            rec.record("u", item, "finish")
        rec.models.encoder.max_len = 4
        assert got == [(r.item_id, round(r.score, 6)) for r in rec.recommend("u", k=8, context=NOW)]


DOMAINS = {  # spec §5, the domains of the Policy fields: (values taken, values refused)
    "diversity": ([0, 1, 0.5], [-0.01, 1.01]), "freshness": ([0, 100], [-1, 100.5]),
    "freshness_days": ([0.001, 36500], [0, 36501]), "popularity": ([-100, 100], [-101, 101]),
    "language_boost": ([-100, 100], [-101, 101]), "hub_penalty": ([0, 10], [-0.1, 10.1]), "engagement": ([0, 10], [-1, 11]),
    "feedback_weight": ([0, 100], [-1, 101]), "context_weight": ([0, 100], [-1, 101]), "fairness": ([0, 100], [-1, 101]),
    "replay": ([0, 100], [-1, 101]), "replay_minutes": ([0, 525600], [-1, 525601]),
    "max_per_creator": ([1, 5], [0, 1.0]), "max_per_genre": ([1], [0]), "cold_max_per_creator": ([0, 3], [-1, 2.0]),
    "cold_start_items": ([0, 10000], [-1, 10001]), "short_list": ([1, 100000], [0, 100001, 5.0]),
    "keep_top": ([0, 10000], [-1, 10001]), "replay_min_plays": ([1, 10000], [0, 10001]),
    "replay_gap": ([0, 10000], [-1, 10001]), "fairness_method": (["exposure", "cap"], ["other"]),
}


@pytest.mark.parametrize("field", sorted(DOMAINS))
def test_the_policy_domains_the_spec_lists(golden_bundle, field):
    """No golden case can show a refusal: §5 lists each field's domain, and the runtime keeps to it."""
    from edgerec.errors import ConfigError

    taken, refused = DOMAINS[field]
    with Recommender.open(golden_bundle, backend="onnx") as rec:
        for value in taken:
            rec.recommend("u", k=3, context=NOW, policy=Policy(**{field: value}))
        for value in refused:
            with pytest.raises(ConfigError, match=f"Policy.{field}"):
                rec.recommend("u", k=3, context=NOW, policy=Policy(**{field: value}))
        for k in (0, 10001, 5.0):
            with pytest.raises(ConfigError, match="^k must be"):
                rec.recommend("u", k=k, context=NOW)


def test_a_case_made_in_code_is_checked_before_it_plays(golden_bundle):
    """An unknown Policy field in a Case built without load() was a TypeError midway through play."""
    from edgerec.errors import ConfigError
    from edgerec.runtime.golden import Case, run_case

    case = Case("made", "", [{"op": "recommend", "user": "u", "k": 3, "context": NOW, "policy": {"colour": 1},
                              "expected": []}])
    with pytest.raises(ConfigError, match=r"^made: step 0: unknown Policy fields \['colour'\]; update edgerec$"):
        run_case(golden_bundle, case, "onnx")


@pytest.mark.parametrize("name, change, message", [
    ("items/embeddings.npy", np.asfortranarray, "bundle array items/embeddings.npy is stored big-endian or in Fortran "
                                                "order; a bundle's arrays are little-endian and in C order"),
    ("items/popularity.npy", lambda a: a.astype(">f4"), "bundle array popularity.npy is stored big-endian"),
    ("items/release_ts.npy", lambda a: a.astype(">i8"), "bundle array release_ts.npy is stored big-endian"),
    ("items/scales.npy", lambda a: a.astype(">f4"), "bundle array items/scales.npy is stored big-endian"),
])
def test_an_array_in_another_layout_is_refused(bundle_copy, name, change, message):
    """Rule 8: one .npy layout for every reader. A Fortran-ordered table opened (and was copied to C order
    for the scan); big-endian columns were refused, each by its own dtype rule."""
    replace_array(bundle_copy, name, change(np.load(bundle_copy / name)))
    with pytest.raises(BundleError) as caught:
        Bundle.open(bundle_copy)
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_format_1_table_with_a_scale_axis_is_refused(tmp_path):
    """Format 1 has no scale_axis (rule 8), and the newer formats' other features were refused in it already."""
    root = Path(shutil.copytree(Path(__file__).resolve().parents[2] / "spec" / "golden" / "format1", tmp_path / "f1"))
    Bundle.open(root)
    consistent(lambda m: m["items"]["embeddings"].update(scale_axis="row"))(root)
    with pytest.raises(BundleError, match=r"scale_axis, which format 1 does not have"):
        Bundle.open(root)


def test_rules_are_checked_in_the_spec_order(bundle_copy):
    """Two user encoders (rule 7) and a wrong embedding_space (rule 6): rule 6 is named first, as §1 orders."""
    def both(m):
        m["models"].append(dict(m["models"][0]))
    consistent(both)(bundle_copy)
    doc_edit(lambda m: m.update(embedding_space="0" * 24))(bundle_copy)
    with pytest.raises(BundleError, match="^embedding-space mismatch"):
        Bundle.open(bundle_copy)
