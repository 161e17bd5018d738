"""The spec's refusal fixtures (spec/golden/refusals): bundles a runtime MUST refuse to open, each the
small valid bundle `base` with one edit, and an index naming for each the rule of spec/README.md §1 it
breaks, the error class and the start of the reference runtime's message.

    python -m edgerec.export.golden_refusals --out spec/golden/refusals

`base` is the golden bundle's item files and ONNX user encoder under a manifest without its optional
sections (no TFLite file, space, reference, metrics, ranking, provider or hubness column): it opens.
A fixture's folder holds only what its edit changed: its manifest.json and any file it rewrote; the
bundle it stands for is base with those files put over base's and the index's `removed` files taken
away. So every fixture is a whole bundle in which only the broken rule can refuse it, and base's
files are stored once (bytes in the repository matter). Derived from the committed golden bundle by
numpy and the standard library alone: the same bytes each run (tests/test_golden_generator.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from edgerec.runtime.item_spec import space_members
from edgerec.runtime.schema import SCHEMA_FILE, SCHEMA_PACKAGE
from edgerec.runtime.vocab import MODALITIES

BASE = "base"
REFUSALS_FOLDER = "refusals"  # in spec/golden
MANIFEST = "manifest.json"
DROPPED = ("space", "reference", "metrics", "ranking", "budgets", "data_version")  # optional: not needed to open
OPTIONAL_COLUMNS = ("provider", "hubness")  # item columns a bundle may leave out (bytes matter here)


@dataclass(frozen=True)
class Refusal:
    name: str
    rule: str  # the rule of spec/README.md §1: "1" to "8", or "arrays" (the .npy layout paragraph)
    breaks: str  # the rule's words that the edit breaks
    edit: str  # what differs from `base`
    change: Callable[[Path], None]  # applies the edit to a copy of base
    message: str  # the start of the reference runtime's message
    error: str = "BundleError"  # its class in edgerec/errors.py

    def to_dict(self, files: list[str], removed: list[str]) -> dict:
        return {"name": self.name, "rule": self.rule, "breaks": self.breaks, "edit": self.edit, "files": files,
                "removed": removed, "refuse": "open", "error": self.error, "message": self.message}


# ------------------------------------------------------------------ the base bundle


def _sha(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def space_id(manifest: dict) -> str:
    """Spec rule 6 over the manifest as it stands."""
    members = [n for n in space_members(manifest["items"]) if n]
    members += sorted(m["file"] for m in manifest["models"] if m["role"] == "user_encoder")
    text = "".join(f"{name}={manifest['files'][name]['sha256']};" for name in members)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def write_manifest(root: Path, manifest: dict) -> None:
    """One top-level member a line: a fixture's edit shows in a diff with base, in a third fewer bytes than indented."""
    lines = [f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}" for key, value in manifest.items()]
    (root / MANIFEST).write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")


def read_manifest(root: Path) -> dict:
    return json.loads((root / MANIFEST).read_text(encoding="utf-8"))


def build_base(golden: Path, out: Path) -> Path:
    """`out`: the golden bundle's item files and ONNX user encoder, its manifest less the optional sections."""
    source = read_manifest(golden)
    out.mkdir(parents=True)
    encoder = next(m for m in source["models"] if m["role"] == "user_encoder" and m["format"] == "onnx")
    items = {key: value for key, value in source["items"].items() if key not in OPTIONAL_COLUMNS}
    for group in ("strings", "categorical", "numeric"):
        items[group] = {k: v for k, v in items[group].items() if k not in OPTIONAL_COLUMNS}
    kept = sorted([name for name in source["files"] if name.split("/")[-1].split(".")[0] not in OPTIONAL_COLUMNS
                   and name.startswith("items/")] + [encoder["file"]])
    for name in kept:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(golden / name, out / name)
    manifest = {k: v for k, v in source.items() if k not in DROPPED}
    manifest.update(name="golden-refusals-base", items=items, models=[{**encoder, "parity": {}}],
                    files={name: _sha(out / name) for name in kept})
    manifest["embedding_space"] = space_id(manifest)
    write_manifest(out, manifest)
    return out


# ------------------------------------------------------------------ edits


def text(old: str, new: str) -> Callable[[Path], None]:
    """Replace `old` (once) in manifest.json's text: what no JSON writer would produce."""
    def apply(root: Path) -> None:
        data = (root / MANIFEST).read_text(encoding="utf-8")
        if old not in data:
            raise ValueError(f"{old!r} is not in the base manifest")
        (root / MANIFEST).write_text(data.replace(old, new, 1), encoding="utf-8")
    return apply


def raw(change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        (root / MANIFEST).write_bytes(change((root / MANIFEST).read_bytes()))
    return apply


def doc(change: Callable[[dict], None], refill: bool = True) -> Callable[[Path], None]:
    """Edit the parsed manifest; with `refill`, the checksums of the files present and the embedding space
    are made to match again, so only the edit can fail."""
    def apply(root: Path) -> None:
        manifest = read_manifest(root)
        change(manifest)
        if refill:
            for name, meta in manifest["files"].items():
                if (root / name).is_file():
                    meta.update(_sha(root / name))
            manifest["embedding_space"] = space_id(manifest)
        write_manifest(root, manifest)
    return apply


def array(name: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    """Replace one .npy file of the bundle (the manifest refilled to match it)."""
    def apply(root: Path) -> None:
        np.save(root / name, change(np.load(root / name)), allow_pickle=False)
        doc(lambda m: None)(root)
    return apply


def file_bytes(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    """Change a file's bytes and nothing else (its `files` entry stays the base's)."""
    def apply(root: Path) -> None:
        (root / name).write_bytes(change((root / name).read_bytes()))
    return apply


def both(*changes: Callable[[Path], None]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        for change in changes:
            change(root)
    return apply


def _flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


def _second_encoder(m: dict) -> None:
    m["models"].append({**m["models"][0]})


def _unlisted(m: dict) -> None:
    del m["files"]["items/creator.npy"]


def _duplicate_id(root: Path) -> None:
    """The second item takes the first one's id (blob and offsets stay consistent with each other)."""
    blob, offsets = (root / "items/ids.bin").read_bytes(), np.load(root / "items/ids.offsets.npy")
    ids = [blob[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    ids[1] = ids[0]
    (root / "items/ids.bin").write_bytes(b"".join(ids))
    ends = np.cumsum([len(v) for v in ids])
    np.save(root / "items/ids.offsets.npy", np.r_[0, ends].astype(offsets.dtype), allow_pickle=False)
    doc(lambda m: None)(root)


def _wider_output(m: dict) -> None:
    m["models"][0]["outputs"][0]["shape"] = ["batch", 16]


def _fixed_history(m: dict) -> None:
    m["models"][0]["inputs"][0]["shape"] = ["batch", 5]
    m["models"][0]["history_length"] = 6


def _swap(values: np.ndarray, a: int, b: int) -> np.ndarray:
    out = values.copy()
    out[[a, b]] = out[[b, a]]
    return out


def _tag_code_past_vocab(root: Path) -> None:
    size = len(read_manifest(root)["items"]["tags"]["vocab"])
    array("items/tags.codes.npy", lambda a: np.r_[size, a[1:]].astype(a.dtype))(root)


def _encoder_inputs(root: Path) -> None:
    """An encoder_inputs file whose first item's input is 0 (padding), the others r + 1 as without one."""
    np.save(root / "items/encoder_inputs.npy", np.arange(56, dtype=np.int32) + np.r_[0, np.ones(55, np.int32)],
            allow_pickle=False)
    doc(lambda m: (m["items"].update(encoder_inputs="items/encoder_inputs.npy"),
                   m["files"].update({"items/encoder_inputs.npy": {}})))(root)


def _repeat_creator(m: dict) -> None:
    vocab = m["items"]["categorical"]["creator"]["vocab"]
    vocab[1] = vocab[0]


def _float_input(m: dict) -> None:
    m["models"][0]["inputs"][0]["dtype"] = "float32"


def _constant(m: dict) -> None:
    m["items"]["numeric"]["duration"] = {"constant": -60.0}


# ------------------------------------------------------------------ the fixtures


JSON = "manifest.json is not valid JSON"
REFUSALS = (
    Refusal("foreign_format", "1", "format = \"edgerec-bundle\"", "format is \"other-bundle\"",
            doc(lambda m: m.update(format="other-bundle"), refill=False),
            "manifest.json is not an edgerec bundle manifest"),
    Refusal("newer_format_version", "1", "a format_version it reads (the integer 1 to 6)", "format_version 7",
            doc(lambda m: m.update(format_version=7), refill=False), "bundle format version 7 is not supported"),
    Refusal("not_utf8", "1", "manifest.json is UTF-8", "a byte 0xff in the bundle's name",
            raw(lambda b: b.replace(b'"golden-refusals-base"', b'"golden-refusals-\xff"', 1)),
            "manifest.json is not UTF-8 text"),
    Refusal("byte_order_mark", "1", "no byte-order mark", "the UTF-8 byte-order mark before the text",
            raw(lambda b: b"\xef\xbb\xbf" + b), f"{JSON} (Unexpected UTF-8 BOM"),
    Refusal("member_twice", "1", "no object names a member twice", "\"dim\": 16 before \"dim\": 8 "
            "(a reader keeping the last member reads a valid manifest)", text('"dim": 8', '"dim": 16,\n"dim": 8'),
            f"{JSON} (an object names the member 'dim' twice)"),
    Refusal("nan_number", "1", "every number is finite (NaN is not a number, in any section, the open ones "
            "included)", "NaN in the model's open extra section", text('"extra": {', '"extra": {"study": NaN, '),
            f"{JSON} (NaN is not a JSON number)"),
    Refusal("number_overflows", "1", "a literal that overflows a double is not a number",
            "1e400 in the model's open extra section", text('"extra": {', '"extra": {"study": 1e400, '),
            f"{JSON} ('1e400' is beyond the range of a number)"),
    Refusal("integer_beyond_64_bits", "1", "every integer literal fits a signed 64-bit integer",
            "2**64 in the model's open extra section", text('"extra": {', '"extra": {"study": 18446744073709551616, '),
            f"{JSON} (integer '18446744073709551616' is outside the signed 64-bit range)"),
    Refusal("unpaired_surrogate", "1", "no string holds an unpaired surrogate escape", "the name starts with "
            "\\udc00", text('"name": "', '"name": "\\udc00'), "manifest.json holds a string with an unpaired "
            "surrogate escape"),
    Refusal("path_leaves_bundle", "2", "no '..' segment", "files lists items/../../outside.npy",
            doc(lambda m: m["files"].update({"items/../../outside.npy": {"sha256": "0" * 64, "bytes": 0}}), refill=False),
            "bundle path 'items/../../outside.npy' leaves the bundle directory"),
    Refusal("path_absolute", "2", "a key of files is not absolute", "files lists /etc/hosts",
            doc(lambda m: m["files"].update({"/etc/hosts": {"sha256": "0" * 64, "bytes": 0}}), refill=False),
            "bundle path '/etc/hosts' leaves the bundle directory"),
    Refusal("path_backslash", "2", "no backslash", "files lists items\\genre.npy",
            doc(lambda m: m["files"].update({"items\\genre.npy": {"sha256": "0" * 64, "bytes": 0}}), refill=False),
            "bundle path 'items\\\\genre.npy' is not a plain relative path"),
    Refusal("integer_written_as_float", "3", "an integer is written as an integer literal (8, never 8.0)",
            "dim is 8.0", doc(lambda m: m.update(dim=8.0), refill=False),
            "manifest.json: dim must be an integer between 1 and 65536 (got 8.0)"),
    Refusal("context_lift_out_of_range", "3", "every number within its schema range (a context prior's lifts "
            "within [-100, 100])", "a context prior whose phone lift is 1e308",
            doc(lambda m: m.update(ranking={"context_prior": {"modalities": ["film"], "device": {"phone": [1e308]},
                                                              "day_part": {}}})),
            "manifest.json: ranking.context_prior.device.phone[0] must be a number between -100 and 100 (got 1e+308)"),
    Refusal("categorical_vocab_repeats", "3", "the manifest validates against manifest.schema.json (a categorical "
            "column's vocab names each value once)", "the creator vocabulary's second value is its first one's",
            doc(_repeat_creator), "manifest.json: items.categorical.creator.vocab must hold distinct values"),
    Refusal("context_lifts_not_one_per_modality", "3", "each lift list of ranking.context_prior holds one value per "
            "name of its modalities", "a context prior of two modalities whose phone list holds one lift",
            doc(lambda m: m.update(ranking={"context_prior": {"modalities": list(MODALITIES[:2]),
                                                              "device": {"phone": [0.5]}, "day_part": {}}})),
            "manifest.json: ranking.context_prior.device.phone holds 1 lift(s); it must hold one per name of "
            "ranking.context_prior.modalities (2)"),
    Refusal("user_encoder_input_float", "3", "a user encoder's item input is declared int64 or int32",
            "the ONNX user encoder's input declared float32", doc(_float_input),
            "manifest.json: models[0].inputs[0].dtype must be 'int64' or 'int32' for a user encoder"),
    Refusal("unknown_member", "3", "everywhere but the open sections an unknown member is an error",
            "a top-level member colour", doc(lambda m: m.update(colour="blue"), refill=False),
            "manifest.json: colour is not a known field here"),
    Refusal("pattern_final_newline", "3", "a pattern's $ matches only at the end of the string (never before a "
            "final newline)", "the embedding_space ends in a newline",
            doc(lambda m: m.update(embedding_space=m["embedding_space"] + "\n"), refill=False),
            "manifest.json: embedding_space must be a string matching ^[0-9a-f]{24}$"),
    Refusal("required_member_missing", "3", "the manifest validates against manifest.schema.json (dim is "
            "required)", "no dim", doc(lambda m: m.pop("dim"), refill=False), "manifest.json: dim is required"),
    Refusal("file_missing", "4", "every file in files exists", "user_encoder.onnx is absent",
            lambda root: (root / "user_encoder.onnx").unlink(), "bundle file user_encoder.onnx is missing"),
    Refusal("file_truncated", "4", "every file in files has its bytes", "user_encoder.onnx cut to its first 1000 bytes",
            file_bytes("user_encoder.onnx", lambda b: b[:1000]), "bundle file user_encoder.onnx has 1000 bytes, "
            "the manifest says 16572"),
    Refusal("file_changed", "4", "every file in files has its sha256", "one bit of items/popularity.npy's last "
            "byte flipped (same size)", file_bytes("items/popularity.npy", _flip_last),
            "bundle file items/popularity.npy fails its sha256 check"),
    Refusal("file_not_listed", "5", "every file the manifest names is listed in files",
            "items/creator.npy (the creator column) is not in files, nor in the folder", both(
                lambda root: (root / "items/creator.npy").unlink(), doc(_unlisted)),
            "manifest.json: items/creator.npy is not listed with a checksum in files"),
    Refusal("embedding_space_mismatch", "6", "embedding_space equals the first 24 hex digits of sha256 over "
            "name=sha256; of its files", "embedding_space is 24 zeros",
            doc(lambda m: m.update(embedding_space="0" * 24), refill=False), "embedding-space mismatch"),
    Refusal("two_user_encoders", "7", "at most one model per role and format", "the ONNX user encoder listed "
            "twice", doc(_second_encoder), "manifest.json: models[1] (user_encoder.onnx) is a second user_encoder "
            "for onnx"),
    Refusal("output_width_not_dim", "7", "a user encoder's output width, where fixed, equals dim", "the ONNX "
            "encoder's output shape is [batch, 16], dim is 8", doc(_wider_output),
            "manifest.json: models[0] (user_encoder.onnx) outputs vectors 16 wide, the manifest's dim is 8"),
    Refusal("history_length_disagrees", "7", "a user encoder's history_length equals the history axis its input "
            "shape fixes", "input shape [batch, 5] and history_length 6", doc(_fixed_history),
            "manifest.json: models[0] (user_encoder.onnx) has history_length 6 and an input shape that fixes the "
            "history at 5"),
    Refusal("table_shape_disagrees", "8", "items/embeddings is (items.count, dim)", "the table holds 55 rows, "
            "items.count is 56", array("items/embeddings.npy", lambda a: a[:-1]),
            "items/embeddings.npy has shape (55, 8); it must be (items.count, dim) = (56, 8)"),
    Refusal("scale_not_positive", "8", "int8 tables have float32 scales, all finite and > 0", "the first scale "
            "is 0", array("items/scales.npy", lambda a: np.r_[np.float32(0), a[1:]].astype(np.float32)),
            "items/scales.npy must hold finite, positive float32 scales"),
    Refusal("scale_too_large", "8", "int8 scales are at most 1000", "the first scale is 2000",
            array("items/scales.npy", lambda a: np.r_[np.float32(2000), a[1:]].astype(np.float32)),
            "items/scales.npy must hold finite, positive float32 scales of at most 1000"),
    Refusal("scales_on_float_table", "8", "only int8 tables have scales", "items.embeddings.dtype float32, "
            "its scales kept", doc(lambda m: m["items"]["embeddings"].update(dtype="float32")),
            "manifest.json (items.embeddings) gives scales for a float32 table; only int8 tables have scales"),
    Refusal("duplicate_ids", "8", "string ids are unique and non-empty", "the second item has the first one's id",
            _duplicate_id, "items/ids.bin (column ids) must hold unique, non-empty item ids"),
    Refusal("code_outside_vocab", "8", "categorical columns hold codes in [-1, len(vocab))", "the first item's "
            "genre code is 10, the vocabulary has 10 values", array("items/genre.npy", lambda a: np.r_[10, a[1:]].astype(a.dtype)),
            "items/genre.npy (column genre) must hold int8/int16/int32 codes from -1 to 9"),
    Refusal("ids_offsets_not_rising", "8", "string columns: count + 1 offsets rising from 0 to the blob's size",
            "the ids' second and third offsets swapped", array("items/ids.offsets.npy", lambda a: _swap(a, 1, 2)),
            "items/ids.offsets.npy (column ids) must hold int64/uint32 offsets rising from 0"),
    Refusal("title_blocks_not_rising", "8", "format 4: blocks holds ceil(count / block_rows) + 1 integers rising "
            "from 0 to the blob's size", "the titles' second and third block starts swapped",
            array("items/titles.blocks.npy", lambda a: _swap(a, 1, 2)),
            "items/titles.blocks.npy (column titles) must hold 5 block starts rising from 0"),
    Refusal("tag_code_outside_vocab", "8", "format 5: every tag code is < len(vocab)", "the first tag code is "
            "len(vocab)", _tag_code_past_vocab, "items/tags.codes.npy (tag codes) holds a code outside the vocabulary"),
    Refusal("tag_vocab_with_pipe", "8", "format 5: vocab lists distinct non-empty tags without |", "the first tag "
            "of the vocabulary is \"a|b\"", doc(lambda m: m["items"]["tags"]["vocab"].__setitem__(0, "a|b")),
            "manifest.json (items.tags.vocab) must hold distinct tags without '|'"),
    Refusal("tag_offsets_int32", "8", "format 5: offsets holds count + 1 uint32 (or int64) positions",
            "items/tags.offsets.npy stored as int32", array("items/tags.offsets.npy", lambda a: a.astype(np.int32)),
            "items/tags.offsets.npy (tag offsets) must hold 57 uint32/int64 offsets"),
    Refusal("codes_not_integers", "8", "categorical columns: int32 codes (format 3: int8 or int16 too)",
            "items/genre.npy stored as float32", array("items/genre.npy", lambda a: a.astype(np.float32)),
            "items/genre.npy (column genre) must hold int8/int16/int32 codes"),
    Refusal("popularity_float64", "8", "popularity float32 (format 3: a narrower dtype of its kind)",
            "items/popularity.npy stored as float64", array("items/popularity.npy", lambda a: a.astype(np.float64)),
            "items/popularity.npy (column popularity) has dtype float64; it must be float32 or a narrower one"),
    Refusal("popularity_negative", "8", "popularity float32 (>= 0)", "the first item's popularity is -1",
            array("items/popularity.npy", lambda a: np.r_[-1, a[1:]].astype(a.dtype)),
            "items/popularity.npy (column popularity) must hold values from 0"),
    Refusal("encoder_input_zero", "8", "encoder_inputs holds one integer from 1 to 2**31 - 1 per item",
            "an items/encoder_inputs.npy whose first input is 0", _encoder_inputs,
            "items/encoder_inputs.npy (encoder_inputs) must hold one integer input from 1 to 2147483647"),
    Refusal("constant_before_format_6", "8", "a column stored as a constant: format 6 (an older format never "
            "does)", "format_version 5 with the duration column {\"constant\": 60.0}",
            doc(lambda m: (m.update(format_version=5), m["items"]["numeric"].update(duration={"constant": 60.0}))),
            "manifest.json (items column duration's constant) is only allowed in format 6"),
    Refusal("tag_codes_before_format_5", "8", "an older format than 5 has no items.tags", "format_version 4 "
            "(the tags stay codes in items.tags)", doc(lambda m: m.update(format_version=4)),
            "manifest.json (items) must hold the tags as text (items.strings.tags) in a format 4 bundle"),
    Refusal("constant_out_of_range", "8", "a constant column holds a value within the column's range "
            "(duration >= 0)", "the duration column is {\"constant\": -60.0}", doc(_constant),
            "manifest.json (items column duration's constant) must be a finite number from 0"),
    Refusal("big_endian_array", "arrays", "arrays are little-endian (or one byte wide) and in C order",
            "items/scales.npy stored big-endian", array("items/scales.npy", lambda a: a.astype(">f4")),
            "bundle array items/scales.npy is stored big-endian or in Fortran order"),
    Refusal("big_endian_column", "arrays", "arrays are little-endian (or one byte wide), checked on open",
            "items/duration.npy (int16) stored big-endian", array("items/duration.npy",
                                                                  lambda a: a.astype(a.dtype.newbyteorder(">"))),
            "bundle array duration.npy is stored big-endian or in Fortran order"),
    Refusal("fortran_order_table", "arrays", "arrays are in C order (fortran_order false)", "items/embeddings.npy "
            "stored in Fortran order", array("items/embeddings.npy", np.asfortranarray),
            "bundle array items/embeddings.npy is stored big-endian or in Fortran order"),
)


# ------------------------------------------------------------------ writing


def overlay(base: Path, refusal: Refusal, out: Path, scratch: Path) -> dict:
    """Make the fixture whole in `scratch` (base with the edit), then keep in `out` only what differs from base
    (manifest.json always); the index entry names those files and the ones the edit removed."""
    shutil.copytree(base, scratch)
    refusal.change(scratch)
    made = {p.relative_to(scratch).as_posix() for p in scratch.rglob("*") if p.is_file()}
    stored = {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()}
    changed = sorted(name for name in made if name == MANIFEST or name not in stored
                     or (scratch / name).read_bytes() != (base / name).read_bytes())
    for name in changed:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(scratch / name, out / name)
    return refusal.to_dict(changed, sorted(stored - made))


def generate(golden: Path, out: Path) -> dict:
    """The base, every fixture and index.json in `out` (replaced)."""
    golden, out = Path(golden), Path(out)
    if out.exists():
        shutil.rmtree(out)
    base = build_base(golden, out / BASE)
    with tempfile.TemporaryDirectory(prefix="edgerec-refusals-") as scratch:
        entries = [overlay(base, r, out / r.name, Path(scratch) / r.name) for r in REFUSALS]
    schema = resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE).read_bytes()
    index = {"about": "bundles a runtime MUST refuse to open (spec/README.md section 9): each is base with one "
                      "edit; its folder holds the files the edit changed, to be put over a copy of base, and "
                      "`removed` names the files of base the edit took away",
             "schema_sha256": hashlib.sha256(schema).hexdigest(), "base": BASE, "refusals": entries,
             "regenerate": "python -m edgerec.export.golden_refusals --out spec/golden/refusals"}
    (out / "index.json").write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    files = [p for p in out.rglob("*") if p.is_file()]
    return {"fixtures": len(REFUSALS), "rules": sorted({r.rule for r in REFUSALS}), "files": len(files),
            "bytes": sum(p.stat().st_size for p in files)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edgerec.export.golden_refusals",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--golden", default="spec/golden/bundle", help="the golden bundle the fixtures derive from")
    parser.add_argument("--out", default="spec/golden/refusals", help="folder for base/, the fixtures and index.json "
                        "(replaced)")
    args = parser.parse_args(argv)
    print(json.dumps(generate(Path(args.golden), Path(args.out)), indent=1))


if __name__ == "__main__":
    main()
