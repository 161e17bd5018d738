"""Golden cases for rules the first cases left without one (an audit of the spec from spec/ alone), and the
third golden bundle, `golden/rows`: the golden items with the item table quantized per row.

- `rows`: int8 with one scale per row (`scale_axis` "row", the only kind of format 1): the scan, the
  short history's blend of it, the dequantized vectors of relevance, neighbours and diversity.
- `ties_and_repeats`: equal scores keep the lower row (two items added with one vector, named so that
  id order and row order differ); a repeated more_like_this or like counts once per event.
- `onboarding_repeats`: a kind's choices are counted once each, in code-point order (the language
  boost's two most common languages on a tie; matched tags on a tie).
- `more_levers`: Policy fields no case set: popularity, keep_top, context_weight, cold_start_items.
- `transfer`: spec §8 (the golden bundle's space and its bridges, fit on itself from audio to video).
- `format1` and `format_1`: the rows bundle as format 1 stored it (the oldest format a runtime reads, spec
  rule 1), played with the steps of `per_row_scales`: the lists must be that case's.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgerec.export.golden_files import checksum, copy_files, start_from, write_manifest
from edgerec.runtime.golden import Case, run_case
from edgerec.runtime.item_table import StoredTable
from edgerec.runtime.vocab import MODALITIES, VIDEO_MODALITIES

ROWS = "rows"  # the third bundle: per-row scales
FORMAT1 = "format1"  # the fourth: the rows bundle in format 1
NAN = "nan"  # the fifth: the golden bundle with an encoder that returns NaN for one item's input
NAN_ROW = 0  # the catalog row whose input (row + 1) the encoder's embedding turns to NaN


def build_rows_bundle(golden: Path, out: Path) -> Path:
    """`out`: the golden bundle's item files and ONNX user encoder, its table quantized again per row from
    the golden table's dequantized vectors (replaced)."""
    golden, out = Path(golden), Path(out)
    source, encoder = start_from(golden, out)
    emb = source["items"]["embeddings"]
    kept = [name for name in source["files"] if name.startswith("items/") and name not in (emb["file"], emb["scales"])]
    copy_files(golden, out, [*kept, encoder["file"]])
    vectors = np.load(golden / emb["file"]).astype(np.float32) * np.load(golden / emb["scales"])[None, :]
    table = StoredTable.quantize(vectors, "int8-row")
    np.save(out / emb["file"], table.values, allow_pickle=False)
    np.save(out / emb["scales"], table.scales, allow_pickle=False)
    files = {name: checksum(out / name) for name in sorted([*kept, emb["file"], emb["scales"], encoder["file"]])}
    manifest = {k: v for k, v in source.items() if k not in ("space", "reference", "metrics", "files")}
    manifest.update(name="golden-rows", models=[encoder], files=files)
    manifest["items"] = {**source["items"], "embeddings": {**emb, "scale_axis": "row"}}
    write_manifest(out, manifest, encoder)
    return out


def build_format1_bundle(rows: Path, out: Path) -> Path:
    """`out`: the rows bundle as format 1 stored it (replaced): wide column dtypes (int64 offsets, int32 codes),
    every text column a plain blob with offsets (tags too, joined by '|'), no scale_axis (a format 1 table is
    int8 with one scale per row); the table, scales and ONNX encoder are the rows bundle's own files."""
    from edgerec.export.convert import convert_bundle

    rows, out = Path(rows), Path(out)
    if out.exists():
        shutil.rmtree(out)
    source = json.loads((rows / "manifest.json").read_text())
    with tempfile.TemporaryDirectory(prefix="edgerec-format1-") as scratch:
        wide = convert_bundle(rows, Path(scratch) / "wide", format_version=2)  # format 1 columns were format 2's
        converted = json.loads((wide / "manifest.json").read_text())
        shutil.copytree(wide, out)
    items = converted["items"]
    items["embeddings"].pop("scale_axis")
    manifest = {**source, "name": "golden-format1", "format_version": 1, "items": items, "files": converted["files"]}
    write_manifest(out, manifest, next(m for m in manifest["models"] if m["role"] == "user_encoder"))
    return out


def build_nan_bundle(golden: Path, out: Path) -> Path:
    """`out`: the golden bundle's items and ONNX user encoder (replaced), the encoder's int8 embedding made to
    return NaN for item row NAN_ROW: its row's scale is NaN, found as bytes in the file (no re-serialisation),
    so any history holding that item within the newest L gives a NaN user vector (spec §3)."""
    import onnx
    from onnx import numpy_helper

    golden, out = Path(golden), Path(out)
    source, encoder = start_from(golden, out)
    kept = sorted(name for name in source["files"] if name.startswith("items/"))
    copy_files(golden, out, kept)
    data = (golden / encoder["file"]).read_bytes()
    model = onnx.load_from_string(data)
    scales = next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == "table.weight_scale")
    stored = scales.astype("<f4").tobytes()
    if data.count(stored) != 1:
        raise SystemExit("the golden encoder's embedding scales are not stored once as raw bytes; rebuild build_nan_bundle")
    at = data.index(stored) + 4 * (NAN_ROW + 1)  # input r + 1: row 0 of the embedding is padding
    (out / encoder["file"]).write_bytes(data[:at] + np.float32(np.nan).tobytes() + data[at + 4:])
    files = {name: checksum(out / name) for name in sorted([*kept, encoder["file"]])}
    manifest = {k: v for k, v in source.items() if k not in ("space", "reference", "metrics", "files")}
    manifest.update(name="golden-nan", models=[{**encoder, "parity": {}}], files=files)
    write_manifest(out, manifest, encoder)
    return out


def more_cases(world, history: list[str], far: str) -> list[Case]:
    """The cases above and the content and text bundles' ones; `world` is export.golden.World (its catalog,
    context and listed())."""
    rows = rows_case(world, history, far)
    from edgerec.export.golden_content import content_case
    from edgerec.export.golden_text import text_case

    transfer = transfer_case(world)
    return [rows, format1_case(rows), nan_case(world, history, far), ties_case(world, history, far),
            onboarding_case(world), levers_case(world, history), feedback_rules_case(world, history, far), transfer,
            content_case(transfer), text_case(world)]


def _steps(world):
    def rec(user, k=8, **extra):
        return {"op": "recommend", "user": user, "k": k, "context": extra.pop("context", world.context()), **extra}

    def watch(user, items, event="finish"):
        return [{"op": "record", "user": user, "item": item, "event": event} for item in items]
    return rec, watch


def rows_case(world, history: list[str], far: str) -> Case:
    rec, watch = _steps(world)
    return Case("per_row_scales", "the rows bundle (int8, one scale per row): one item, a short history that "
                "blends the per-row scan into its score; four items, relevance from the per-row dequantized "
                "vectors; a more_like_this item whose neighbours come from the scan of its dequantized vector; "
                "diversity over those vectors", [
                    *watch("s", history[:1]), rec("s"), *watch("s", history[1:4]), rec("s"),
                    {"op": "record", "user": "s", "item": far, "event": "more_like_this"}, rec("s"),
                    rec("s", policy={"diversity": 0.5})],
                bundle=ROWS, engines=("onnx",))


def format1_case(rows: Case) -> Case:
    return Case("format_1", "the rows bundle stored as format 1 (no scale_axis, wide columns, tags as text): the "
                "steps of per_row_scales give its lists, item for item and score for score",
                json.loads(json.dumps(rows.steps)), bundle=FORMAT1, engines=("onnx",))


def nan_case(world, history: list[str], far: str) -> Case:
    rec, watch = _steps(world)
    broken = world.ids[NAN_ROW]
    return Case("nan_user_vector", "the nan bundle's encoder returns NaN for one item: a history without it is "
                "personal; with it among the newest L inputs the vector is NaN and the request is the popularity "
                "fallback (kind fallback: cold-start scores, no more_like_this pull, no context prior); five newer "
                "items push it out of the window and the list is personal again", [
                    *watch("w", history[:3]), rec("w"),
                    *watch("n", [broken, *history[:3]]), rec("n"),
                    {"op": "record", "user": "n", "item": far, "event": "more_like_this"}, rec("n"),
                    rec("n", context=world.context(hour=7.0, device="tv")),
                    *watch("n", history[3:6] + world.ids[50:52]), rec("n")],
                bundle=NAN, engines=("onnx",))


def ties_case(world, history: list[str], far: str) -> Case:
    rec, watch = _steps(world)
    best = world.listed(watch("t", history[:4]), k=1)[0]
    other = world.listed(watch("t", history[:4]), k=3)[2]
    vector = [round(float(v), 6) for v in world.catalog.vectors(np.array([world.ids.index(best)]))[0]]
    return Case("ties_and_repeats", "two items added with one vector tie: the lower row (added first, 'tie-z') "
                "comes before 'tie-a'; a more_like_this item asked for twice counts twice in the mean of the "
                "newest 3 (user r2 against r1), and a like given twice counts twice in the engagement pull (r4 "
                "against r3)", [
                    *watch("t", history[:4]), rec("t"),
                    {"op": "add_items", "items": [{"item_id": "tie-z", "title": "Tie, added first", "vector": vector},
                                                  {"item_id": "tie-a", "title": "Tie, added second",
                                                   "vector": vector}]},
                    rec("t"),
                    *watch("r1", history[:4]), *watch("r1", [far, other], "more_like_this"), rec("r1"),
                    *watch("r2", history[:4]), *watch("r2", [far, far, other], "more_like_this"), rec("r2"),
                    *watch("r3", history[:4]), *watch("r3", history[4:6], "like"),
                    rec("r3", policy={"engagement": 1.0}),
                    *watch("r4", history[:4]), *watch("r4", [history[4], *history[4:6]], "like"),
                    rec("r4", policy={"engagement": 1.0})])


def onboarding_case(world) -> Case:
    rec, _ = _steps(world)
    languages = sorted({m["language"] for m in world.metas if m.get("language")})
    given = languages[::-1][:3]  # three languages, not in code-point order
    return Case("onboarding_repeats", "onboarding choices count once each, in code-point order, whatever the "
                "order and repeats given: of three chosen languages (each counted 3) the language boost takes "
                "the first two in that order; a language given twice is not counted twice; a tag given twice "
                "neither (the matched tags of a tie keep the item's order)", [
                    {"op": "onboard", "user": "a", "languages": given}, rec("a", policy={"language_boost": 5.0}),
                    {"op": "onboard", "user": "b", "languages": [given[0], given[0], *given[1:]]},
                    rec("b", policy={"language_boost": 5.0}),
                    {"op": "onboard", "user": "c", "tags": ["jazz", "bebop", "bebop"]}, rec("c")])


def levers_case(world, history: list[str]) -> Case:
    rec, watch = _steps(world)
    morning = world.context(hour=7.0, device="tv")
    return Case("more_levers", "policy fields no other case sets: popularity (a lift, then the long tail), "
                "keep_top under strong diversity, context_weight off and strong, and cold_start_items: 5 makes "
                "four items a short history, 1 makes one item a full one", [
                    *watch("v", history[:4]), rec("v"), rec("v", policy={"popularity": 1.5}),
                    rec("v", policy={"popularity": -1.5}), rec("v", policy={"keep_top": 3, "diversity": 0.8}),
                    rec("v", context=morning, policy={"context_weight": 0.0}),
                    rec("v", context=morning, policy={"context_weight": 4.0}),
                    rec("v", policy={"cold_start_items": 5}),
                    *watch("w", history[:1]), rec("w"), rec("w", policy={"cold_start_items": 1})])


def feedback_rules_case(world, history: list[str], far: str) -> Case:
    rec, watch = _steps(world)
    return Case("feedback_rules", "spec section 2's newest feedback wins: a like, then not_interested, refuses "
                "the item (its like no longer pulls and no reason names it, section 6); a newer more_like_this "
                "takes it back and pulls its neighbours", [
                    *watch("n", history[:4]), {"op": "record", "user": "n", "item": far, "event": "like"},
                    rec("n", policy={"engagement": 1.0}),
                    {"op": "record", "user": "n", "item": far, "event": "not_interested"},
                    rec("n", policy={"engagement": 1.0}),
                    {"op": "record", "user": "n", "item": far, "event": "more_like_this"},
                    rec("n", policy={"engagement": 1.0})])


def transfer_case(world) -> Case:
    _, watch = _steps(world)
    audio = [i for m in MODALITIES if m not in VIDEO_MODALITIES for i in world.where(modality=m)][:5]
    vector = [round(float(v), 6) for v in world.catalog.vectors(np.array([world.ids.index(audio[0])]))[0]]

    def transfer(method, k=6):
        return {"op": "transfer", "user": "x", "method": method, "k": k}
    shown = [r["item_id"] for r in run_case(world.bundle, Case("probe", "", [*watch("x", audio[:4]), transfer("mapping")]),
                                            "onnx")[-1]]
    return Case("transfer", "spec section 8 on the golden bundle, its own source and target (its bridges map its "
                "audio users into its item space): a listener's history through the content space, the mapping "
                "bridge and the direct one; an item added on the device and played joins neither the pooled "
                "history nor the ranked rows; a removed item and the user's seen items are left out", [
                    *watch("x", audio[:4]), transfer("content"), transfer("mapping"), transfer("direct"),
                    {"op": "add_items", "items": [{"item_id": "new-track", "title": "A new track", "vector": vector}]},
                    *watch("x", ["new-track"]), transfer("mapping"),
                    {"op": "remove_items", "items": shown[:1]},
                    {"op": "record", "user": "x", "item": shown[1], "event": "not_interested"},
                    *watch("x", audio[4:5], "play"), transfer("mapping", k=10), transfer("direct", k=10)])
