"""A clean-room reader of the edgerec bundle spec, written from spec/README.md alone.

It opens a bundle (section 1), keeps histories in memory (2), builds the user vector with the
ONNX user encoder (3), scores (4), applies the policies (5), explains (6) and takes catalog
updates and forget (7), with an ONNX ranker and the interpretable scorer (§4, their features),
embeds metadata-only items and names zero-shot labels with an ONNX content encoder (7b), and
transfers within a bundle's shared space (8): what the golden cases exercise, and what
test_against_runtime.py's random scripts reach. It uses only the standard library, numpy, onnxruntime,
jsonschema and (for 7b, as the spec names it) the `tokenizers` library, never edgerec: a second team
could have written it. Left out: TFLite (the ONNX engine plays every case, and the ranked bundle is
ONNX only; a bundle whose only content encoder is TFLite is refused when 7b is first needed).
Section numbers below are the spec's.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

SPEC = Path(__file__).resolve().parents[2] / "spec"
CONSUMED = {"play", "finish", "like"}
EVENTS = CONSUMED | {"skip", "not_interested", "more_like_this"}
KIDS_SAFE = set("family animation kids pets cooking diy science travel documentary classical ambient "
                "pop folk dance sports".split())  # §5
MIB = 1 << 20
WIDE = {"duration": np.dtype(np.float32), "popularity": np.dtype(np.float32), "hubness": np.dtype(np.float32),
        "release_ts": np.dtype(np.int64), "episode": np.dtype(np.int32)}  # rule 8
RANGES = {"duration": (0, np.inf), "release_ts": (-1e11, 1e11), "episode": (0, np.inf),
          "popularity": (0, np.inf), "hubness": (-1, 1)}  # rule 8


MODALITIES = ("film", "series_episode", "short_video", "music_track", "podcast_episode")  # §4 features
DEVICES = ("phone", "tv", "tablet", "web")
PARTS = ("night", "morning", "afternoon", "evening")


def scorer_names(dim: int) -> list[str]:
    """§4: the version-2 scorer's feature names, in order."""
    return (["retrieval score", "popularity", "age", "length", "language match", "creator match",
             "series you watch", "next episode", "tag match", "genre match", "like similarity"]
            + [f"{d} x {m}" for d in DEVICES for m in MODALITIES]
            + [f"{p} x {m}" for p in PARTS for m in MODALITIES]
            + [f"taste match {i}" for i in range(dim)])


class SpecError(Exception):
    """The bundle or a request breaks a rule of the spec."""


# ---------------------------------------------------------------- §1 opening a bundle

def _file_names(m: dict) -> list[str]:
    """Every file the manifest names, outside `files` (rule 5)."""
    items, names = m["items"], [m["items"]["embeddings"]["file"]]
    names += [items["embeddings"][k] for k in ("scales",) if k in items["embeddings"]]
    names += [items["encoder_inputs"]] if "encoder_inputs" in items else []
    for col in items["strings"].values():
        names += [col[k] for k in ("blob", "offsets", "blocks", "dictionary") if k in col]
    names += [c["codes"] for c in items["categorical"].values() if "codes" in c]
    names += [c for c in items["numeric"].values() if isinstance(c, str)]  # format 6: {"constant": v} has no file
    names += [items["tags"][k] for k in ("offsets", "codes")] if "tags" in items else []
    for model in m["models"]:
        names.append(model["file"])
        extra = model.get("extra", {})
        names += [extra[k] for k in ("tokenizer", "projection") if k in extra]
        names += [extra["labels"]["vectors"]] if "labels" in extra else []
    ref = m.get("reference", {})
    names += [ref[k] for k in ("histories", "user_vectors", "top_k") if k in ref]
    space = m.get("space", {})
    names += [space["content"]["file"]] if "content" in space else []
    for bridge in space.get("bridges", []):
        names += [bridge[k] for k in ("weights", "bias", "prior") if k in bridge]
    scorer = m.get("ranking", {}).get("scorer")
    names += list(scorer["arrays"].values()) if scorer else []
    return names


def _check_path(root: Path, name: str) -> Path:
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts) or any(
            ord(c) < 0x20 for c in name):
        raise SpecError(f"files: {name!r} is not a bundle-relative POSIX path (rule 2)")
    path = root
    for part in PurePosixPath(name).parts:
        path = path / part
        if path.is_symlink():
            raise SpecError(f"files: {name!r} is reached through a symbolic link (rule 2)")
    return path


def _not_json(word: str):
    raise SpecError(f"manifest.json: {word} is not a JSON number (rule 1)")


def _finite(text: str) -> float:
    if not math.isfinite(value := float(text)):
        _not_json(text)
    return value


def _int64(text: str) -> int:
    if not -2**63 <= (value := int(text)) < 2**63:
        raise SpecError(f"manifest.json: {text} does not fit 64 bits (rule 1)")
    return value


def _members(pairs: list) -> dict:
    if len({k for k, _ in pairs}) != len(pairs):
        raise SpecError("manifest.json: an object names a member twice (rule 1)")
    return dict(pairs)


def _read_manifest(raw: bytes) -> dict:
    """Rule 1: strict JSON (the readers' differences refused); rule 3's integers are integer literals."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise SpecError("manifest.json: a byte-order mark (rule 1)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("manifest.json: not UTF-8 (rule 1)") from None
    m = json.loads(text, parse_constant=_not_json, parse_float=_finite, parse_int=_int64,
                   object_pairs_hook=_members)
    try:
        json.dumps(m, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise SpecError("manifest.json: an unpaired surrogate escape (rule 1)") from None
    return m


def _ecma_pattern(validator, pattern, value, schema):
    """Rule 3: a pattern's `$` ends the string (ECMA-262); the schema has no `$` escaped or in a class."""
    import jsonschema

    if isinstance(value, str) and not re.search(pattern.replace("$", r"\Z"), value):
        yield jsonschema.ValidationError(f"{value!r} does not match {pattern!r}")


def _npy(path: Path) -> np.ndarray:
    array = np.load(path, allow_pickle=False)
    if array.dtype.byteorder == ">" or not array.flags.c_contiguous:
        raise SpecError(f"{path.name}: not little-endian in C order (§1 arrays)")
    return array


def _stored_as(dtype: np.dtype, name: str, version: int) -> bool:
    """Rule 8's dtypes: a column's own, or (format 3 on) a narrower one of its kind (floats: float16, or
    int8/int16 for whole numbers); an extra numeric column any number type."""
    wanted = WIDE.get(name)
    if wanted is None:
        return dtype.kind in "iuf"
    if dtype == wanted or version < 3:
        return dtype == wanted
    if wanted.kind == "f":
        return dtype in (np.dtype(np.float16), np.dtype(np.int8), np.dtype(np.int16))
    return dtype.kind in "iu" and dtype.itemsize < wanted.itemsize


def _strings(root: Path, col: dict, count: int, version: int) -> list[str]:
    """A string column: offsets into a blob, or (format 4) zlib blocks (rule 8)."""
    blob = (root / col["blob"]).read_bytes()
    if "offsets" in col:
        off = _npy(root / col["offsets"])
        if off.dtype not in ((np.int64, np.uint32) if version >= 3 else (np.int64,)):
            raise SpecError(f"{col['offsets']}: offsets are int64 (format 3: or uint32) (rule 8)")
        off = off.astype(np.int64)
        if off.shape != (count + 1,) or off[0] != 0 or off[-1] != len(blob) or np.any(
                np.diff(off) < 0):
            raise SpecError(f"{col['offsets']}: offsets must rise from 0 to the blob's size (rule 8)")
        return [blob[off[i]:off[i + 1]].decode("utf-8") for i in range(count)]
    starts, rows = _npy(root / col["blocks"]).astype(np.int64), col["block_rows"]
    if starts.shape != (-(-count // rows) + 1,) or starts[0] != 0 or starts[-1] != len(blob) or np.any(
            np.diff(starts) < 0):
        raise SpecError(f"{col['blocks']}: block starts must rise from 0 to the blob's size (rule 8)")
    zdict = (root / col["dictionary"]).read_bytes() if "dictionary" in col else b""
    if len(zdict) > 32 * 1024:
        raise SpecError(f"{col['dictionary']}: a zlib dictionary holds at most 32 KB (rule 8)")
    out: list[str] = []
    for b in range(len(starts) - 1):
        n = min(rows, count - b * rows)
        inflate = zlib.decompressobj(zdict=zdict) if zdict else zlib.decompressobj()
        raw = inflate.decompress(blob[starts[b]:starts[b + 1]]) + inflate.flush()
        lengths, at = np.frombuffer(raw[:4 * n], "<u4"), 4 * n
        if len(lengths) != n or 4 * n + int(lengths.sum()) != len(raw):
            raise SpecError(f"{col['blob']}: block {b} does not hold its {n} rows")
        for size in lengths:
            out.append(raw[at:at + size].decode("utf-8"))
            at += int(size)
    return out


def _tag_codes(root: Path, col: dict, count: int) -> list[str]:
    """Format 5 tags: item r's tags are vocab[codes[offsets[r]:offsets[r + 1]]] (rule 8)."""
    vocab, codes = col["vocab"], _npy(root / col["codes"])
    if any("|" in tag or not tag for tag in vocab):
        raise SpecError("items.tags.vocab: tags are non-empty and hold no '|' (rule 8)")
    off = _npy(root / col["offsets"])
    if off.dtype not in (np.dtype(np.uint32), np.dtype(np.int64)):
        raise SpecError(f"{col['offsets']}: offsets are uint32 or int64 (rule 8)")
    off = off.astype(np.int64)
    if off.shape != (count + 1,) or off[0] != 0 or off[-1] != len(codes) or np.any(np.diff(off) < 0):
        raise SpecError(f"{col['offsets']}: offsets must rise from 0 to the number of codes (rule 8)")
    if codes.dtype.kind != "u" or (len(codes) and int(codes.max()) >= len(vocab)) or len(set(vocab)) != len(vocab):
        raise SpecError(f"{col['codes']}: codes must be unsigned and inside a vocabulary of distinct tags (rule 8)")
    return ["|".join(vocab[c] for c in codes[off[r]:off[r + 1]]) for r in range(count)]


def _space_id(m: dict) -> str:
    """Rule 6: the first 24 hex digits of sha256 over `name=sha256;` in the rule's order."""
    emb, files = m["items"]["embeddings"], m["files"]
    names = [emb["file"]] + [n for n in (emb.get("scales"), m["items"].get("encoder_inputs")) if n]
    names += sorted(x["file"] for x in m["models"] if x["role"] == "user_encoder")
    text = "".join(f"{n}={files[n]['sha256']};" for n in names)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Bundle:
    """An opened bundle: the manifest, the item table as arrays, the ONNX user encoder."""

    def __init__(self, root: str | Path):
        import jsonschema
        import onnxruntime as ort

        root = Path(root)
        if (root / "manifest.json").is_symlink():
            raise SpecError("manifest.json is reached through a symbolic link (rule 2)")
        raw = (root / "manifest.json").read_bytes()
        if len(raw) > 64 * MIB:
            raise SpecError("manifest.json: larger than 64 MiB (rule 1)")
        m = _read_manifest(raw)
        version = m.get("format_version")
        if m.get("format") != "edgerec-bundle" or type(version) is not int or version not in (1, 2, 3, 4, 5, 6):
            raise SpecError("manifest.json: not an edgerec bundle of format 1 to 6 (rule 1)")
        paths = {name: _check_path(root, name) for name in m.get("files", {})}  # rule 2
        schema = json.loads((SPEC / "manifest.schema.json").read_text())
        base = jsonschema.Draft202012Validator  # rule 3: an integer is an integer literal (5, not 5.0)
        types = base.TYPE_CHECKER.redefine("integer", lambda _, v: type(v) is int)
        try:
            jsonschema.validators.extend(base, {"pattern": _ecma_pattern}, type_checker=types)(schema).validate(m)
        except jsonschema.ValidationError as e:
            raise SpecError(f"manifest.json: {e.message} (rule 3)") from None
        prior = m.get("ranking", {}).get("context_prior")  # rule 3's ties no schema states
        if prior and any(len(row) != len(prior["modalities"]) for part in ("device", "day_part")
                         for row in prior[part].values()):
            raise SpecError("ranking.context_prior: a lift list without one value per modality name (rule 3)")
        if any(x["role"] == "user_encoder" and x["inputs"][0]["dtype"] not in ("int64", "int32") for x in m["models"]):
            raise SpecError("models: a user encoder's input is declared int64 or int32 (rule 3)")
        for name, entry in m["files"].items():  # rule 4
            if not paths[name].is_file():
                raise SpecError(f"{name}: listed in files but missing (rule 4)")
            data = paths[name].read_bytes()
            if len(data) != entry["bytes"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise SpecError(f"{name}: size or sha256 differs from files (rule 4)")
        missing = [n for n in _file_names(m) if n not in m["files"]]
        if missing:
            raise SpecError(f"{missing[0]}: named but not listed in files (rule 5)")
        if _space_id(m) != m["embedding_space"]:
            raise SpecError("embedding_space: does not match the files' checksums (rule 6)")
        self.manifest, self.dim, self.count = m, m["dim"], m["items"]["count"]
        self._read_items(root, m["items"], m["format_version"])
        if len({(x["role"], x["format"]) for x in m["models"]}) != len(m["models"]):
            raise SpecError("models: two models of one role and format (rule 7)")
        for x in m["models"]:
            shape = x["inputs"][0]["shape"]
            if x["role"] == "user_encoder" and len(shape) == 2 and type(shape[1]) is int and \
                    x.get("history_length", shape[1]) != shape[1]:
                raise SpecError(f"{x['file']}: history_length is not the fixed history axis (rule 7)")
        model = next(x for x in m["models"] if x["role"] == "user_encoder" and x["format"] == "onnx")
        width = model["outputs"][0]["shape"][-1]
        if isinstance(width, int) and width != self.dim:
            raise SpecError(f"{model['file']}: output width {width} is not dim (rule 7)")
        options = ort.SessionOptions()
        for key, value in model.get("extra", {}).get("session_config", {}).items():
            options.add_session_config_entry(key, value)
        self.session = ort.InferenceSession(str(root / model["file"]), options,
                                            providers=["CPUExecutionProvider"])
        self.input_name = model["inputs"][0]["name"]
        self.defaults = m.get("defaults", {})
        self.ranking = m.get("ranking", {})
        self._read_ranking(root, m, ort)
        self._read_space(root, m.get("space", {}))
        self.root, self._content = root, None  # §7b: the content encoder is opened when first needed

    def _read_space(self, root: Path, space: dict) -> None:
        """§8: the content rows and the bridges (their shapes checked when a transfer reads them)."""
        self.space = space
        self.content = _npy(root / space["content"]["file"]).astype(np.float32) if "content" in space else None
        self.bridges = []
        for entry in space.get("bridges", []):
            self.bridges.append({"source_space": entry["source_space"], "input": entry.get("input", "items"),
                                 "weights": _npy(root / entry["weights"]).astype(np.float32),
                                 "bias": _npy(root / entry["bias"]).astype(np.float32),
                                 "prior": _npy(root / entry["prior"]).astype(np.float32) if "prior" in entry else None})

    def _read_ranking(self, root: Path, m: dict, ort) -> None:
        """§4 Ranker and Scorer: the checks on open, the ONNX ranker's session, the scorer's arrays."""
        for model in (x for x in m["models"] if x["role"] == "ranker"):
            version = model.get("extra", {}).get("features_version", 1)
            axis = model["inputs"][0]["shape"][-1]
            if version != 1 or (isinstance(axis, int) and axis != self.dim + 20):
                raise SpecError(f"{model['file']}: ranker features version {version} / width {axis} (§4 Ranker)")
        ranker = next((x for x in m["models"] if x["role"] == "ranker" and x["format"] == "onnx"), None)
        self.ranker = None
        if ranker is not None:
            session = ort.InferenceSession(str(root / ranker["file"]), providers=["CPUExecutionProvider"])
            self.ranker = (session, session.get_inputs()[0].name)
        self.scorer = None
        spec = self.ranking.get("scorer")
        if spec:
            names = scorer_names(self.dim)
            if spec.get("version", 1) != 2 or spec["features"] != names:
                raise SpecError("ranking.scorer: not version 2, or not the version-2 feature names (§4 Scorer)")
            arrays = {k: _npy(root / f).astype(np.float64).reshape(-1) for k, f in spec["arrays"].items()}
            for key in ("weights", "mean", "scale"):
                if arrays[key].shape != (len(names),) or not np.all(np.isfinite(arrays[key])):
                    raise SpecError(f"ranking.scorer.arrays.{key}: one finite value per feature (§4 Scorer)")
            if not np.all(arrays["scale"] > 0) or len(arrays["intercept"]) != 1 or not np.isfinite(
                    arrays["intercept"][0]):
                raise SpecError("ranking.scorer: scales must be > 0 and the intercept one finite value (§4 Scorer)")
            if max(np.abs(arrays["weights"]).max(), abs(arrays["intercept"][0])) > 1e6:
                raise SpecError("ranking.scorer: |weights| and |intercept| must be at most 1e6 (§4 Scorer)")
            with np.errstate(over="ignore", invalid="ignore"):
                folded = arrays["weights"] / arrays["scale"]
                offset = arrays["intercept"][0] - float(folded @ arrays["mean"])
            if not (np.all(np.isfinite(folded)) and np.isfinite(offset)):
                raise SpecError("ranking.scorer: weights / scale and the folded intercept must be finite (§4 Scorer)")
            if np.abs(folded).max() > 1e12:
                raise SpecError("ranking.scorer: |weights / scale| must be at most 1e12 (§4 Scorer)")
            self.scorer = arrays
        prior = self.ranking.get("context_prior")
        if prior:
            lifts = [v for part in ("device", "day_part") for row in prior[part].values() for v in row]
            if not 0 <= prior.get("weight", 0) <= 100 or any(abs(v) > 100 for v in lifts):
                raise SpecError("ranking.context_prior: weight in [0, 100], every lift in [-100, 100] (§4 Context)")

    def _read_items(self, root: Path, items: dict, version: int) -> None:
        n, emb = self.count, items["embeddings"]
        table = _npy(root / emb["file"])
        if table.shape != (n, self.dim) or table.dtype != np.dtype(emb["dtype"]):
            raise SpecError(f"{emb['file']}: not ({n}, {self.dim}) {emb['dtype']} (rule 8)")
        self.table, self.axis = table, emb.get("scale_axis", "row")
        if emb["dtype"] == "int8":
            scales = _npy(root / emb["scales"])
            shape = (self.dim,) if self.axis == "dim" else (n,)
            if scales.dtype != np.float32 or scales.shape != shape or not np.all(
                    np.isfinite(scales) & (scales > 0) & (scales <= 1000)):
                raise SpecError(f"{emb['scales']}: scales must be finite float32 in (0, 1000] (rule 8)")
            self.scales = scales
            per = scales[None, :] if self.axis == "dim" else scales[:, None]
            self.vectors = table.astype(np.float32) * per  # §4 dequantization
        else:
            if "scales" in emb or not np.all(np.isfinite(table)):
                raise SpecError(f"{emb['file']}: an fp16/fp32 table has no scales and finite values (rule 8)")
            self.scales, self.vectors = None, table.astype(np.float32)
        self.strings = {k: _strings(root, c, n, version) for k, c in items["strings"].items()}
        if (version >= 5) != ("tags" in items) or ("tags" in items) == ("tags" in self.strings):
            raise SpecError("items: tags as codes in format 5, as text before, never both (rule 8)")
        if "tags" in items:  # format 5: rebuilt as the |-joined text of the older formats
            self.strings["tags"] = _tag_codes(root, items["tags"], n)
        ids = self.strings["ids"]
        if len(set(ids)) != n or "" in ids:
            raise SpecError("items.strings.ids: ids must be unique and non-empty (rule 8)")
        if any(len(i) > 256 or "\x00" in i for i in ids):
            raise SpecError("items.strings.ids: ids are at most 256 characters, without NUL (rule 8)")
        self.cat = {}
        for name, col in items["categorical"].items():
            if ("codes" in col) == ("constant" in col) or ("constant" in col and version < 6):
                raise SpecError(f"items.categorical.{name}: codes, or (format 6) a constant, one of them (rule 8)")
            codes = np.full(n, col["constant"], np.int32) if "constant" in col else _npy(root / col["codes"])
            if codes.dtype not in ((np.int8, np.int16, np.int32) if version >= 3 else (np.int32,)):
                raise SpecError(f"items.categorical.{name}: codes are int32 (format 3: or int8, int16) (rule 8)")
            codes = codes.astype(np.int32)
            if codes.shape != (n,) or np.any((codes < -1) | (codes >= len(col["vocab"]))):
                raise SpecError(f"items.categorical.{name}: codes outside [-1, len(vocab)) (rule 8)")
            self.cat[name] = [col["vocab"][c] if c >= 0 else None for c in codes]
        kinds = {"release_ts": np.int64, "episode": np.int32}
        self.num = {}
        for name, file in items["numeric"].items():
            if isinstance(file, dict) and version < 6:
                raise SpecError(f"items.numeric.{name}: a constant needs format 6 (rule 8)")
            kind = kinds.get(name, np.float32 if name in RANGES else np.float64)
            if isinstance(file, dict) and np.asarray(file["constant"], kind).item() != file["constant"]:
                raise SpecError(f"items.numeric.{name}: a constant its dtype does not hold (rule 8)")
            col = np.full(n, file["constant"], kind) if isinstance(file, dict) else _npy(root / file)
            if not _stored_as(col.dtype, name, version):
                raise SpecError(f"{file}: dtype {col.dtype} is not the column's (rule 8)")
            col = col.astype(kind)
            low, high = RANGES.get(name, (-np.inf, np.inf))
            if col.shape != (n,) or not np.all(np.isfinite(col) & (col >= low) & (col <= high)):
                raise SpecError(f"{file}: {n} finite values in [{low}, {high}] expected (rule 8)")
            self.num[name] = col
        inputs = _npy(root / items["encoder_inputs"]) if "encoder_inputs" in items else np.arange(1, n + 1)
        if inputs.shape != (n,) or inputs.dtype.kind not in "iu" or inputs.min(initial=1) < 1 or \
                inputs.max(initial=1) > 2**31 - 1:
            raise SpecError("items.encoder_inputs: one integer from 1 to 2**31 - 1 per item (rule 8)")
        self.enc_inputs = inputs.astype(np.int64)

    def encode(self, inputs: list[int]) -> np.ndarray:
        ids = np.asarray([inputs], dtype=np.int64)
        return self.session.run(None, {self.input_name: ids})[0][0].astype(np.float32)

    def content_encoder(self) -> ContentEncoder | None:
        """§7b: the content encoder of this runtime's engine (ONNX), else the first listed; None without one."""
        if self._content is None:
            listed = [x for x in self.manifest["models"] if x["role"] == "content_encoder"]
            if not listed:
                return None
            model = next((x for x in listed if x["format"] == "onnx"), listed[0])
            if model["format"] != "onnx":
                raise SpecError("content encoder: this reader plays ONNX only (§7b: none for its engine)")
            self._content = ContentEncoder(self.root, model, self.dim)
        return self._content


# ---------------------------------------------------------------- §7b the content encoder

PADS = ("[PAD]", "<pad>", "<PAD>")  # §7b: the padding token, the first of these the vocabulary holds


class ContentEncoder:
    """§7b: an item's text -> tokens -> the content vector, its item vector and its labels (ONNX)."""

    def __init__(self, root: Path, model: dict, dim: int):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        extra = model.get("extra", {})
        if not all(k in extra for k in ("tokenizer", "projection", "labels")):
            raise SpecError("content encoder: extra needs tokenizer, projection and labels (§7b)")
        self.tokenizer = Tokenizer.from_file(str(root / extra["tokenizer"]))
        self.tokenizer.no_padding()  # §7b: the file's own padding and truncation are not the contract's
        length = extra.get("max_tokens", 48)  # §7b: ONNX, 48 when absent
        if type(length) is not int or length <= self.tokenizer.num_special_tokens_to_add(False):
            raise SpecError("content encoder: max_tokens is a whole number above the special tokens (§7b)")
        self.tokenizer.enable_truncation(max_length=length)  # the text cut, its specials kept
        vocab = self.tokenizer.get_vocab()
        pad = next((t for t in PADS if t in vocab), None)
        if pad is None:
            raise SpecError("content encoder: the tokenizer has no padding token (§7b)")
        self.pad = vocab[pad]
        model_json = json.loads((root / extra["tokenizer"]).read_text(encoding="utf-8")).get("model", {})
        if model_json.get("type") == "Unigram":  # §7b: the model's unknown token reads no word: unk_id ...
            self.unk = model_json.get("unk_id")
        else:  # ... or the token unk_token
            self.unk = vocab.get(model_json["unk_token"]) if model_json.get("unk_token") else None
        try:  # §7b: a tokenizer that cannot encode symbols its vocabulary lacks is refused
            self.tokenizer.encode("a probe text \u2603 \U0001f9ea \u2fff")
        except Exception as exc:  # noqa: BLE001 - the tokenizers library raises bare Exceptions
            raise SpecError(f"content encoder: the tokenizer cannot encode text (§7b): {exc}") from None
        options = ort.SessionOptions()  # §3: an ONNX model's session_config, whatever its role
        for key, value in extra.get("session_config", {}).items():
            options.add_session_config_entry(key, value)
        self.session = ort.InferenceSession(str(root / model["file"]), options, providers=["CPUExecutionProvider"])
        self.projection = _npy(root / extra["projection"])
        labels = extra["labels"]
        self.names, self.sets = labels["names"], labels["sets"]
        self.label_vectors = _npy(root / labels["vectors"])
        c = self.projection.shape[0] - 1
        if self.projection.dtype != np.float32 or self.projection.shape != (c + 1, dim) or c < 1:
            raise SpecError("content encoder: the projection is float32 (C + 1, dim) (§7b)")
        if self.label_vectors.dtype != np.float32 or self.label_vectors.shape != (len(self.names), c):
            raise SpecError("content encoder: the label vectors are float32 (len(names), C) (§7b)")
        if any(not members or not set(members) <= set(self.names) for members in self.sets.values()):
            raise SpecError("content encoder: each label set holds at least one name, only names of names (§7b)")

    @staticmethod
    def text(meta: dict) -> str:
        """§7b: title, description, then "Tags: a, b." when tags is a non-empty list; joined by spaces."""
        parts = [str(meta[k]) for k in ("title", "description") if meta.get(k) is not None]
        tags = meta.get("tags")
        if isinstance(tags, list) and tags:
            parts.append("Tags: " + ", ".join(tags) + ".")
        return " ".join(p for p in parts if p)

    def reads_word(self, text: str) -> bool:
        """§7b A word: a token that is neither a special token the post-processor added, nor the unknown one,
        nor one of the word-boundary mark and white space alone."""
        enc = self.tokenizer.encode(text)
        return any(not special and i != self.unk and token.replace("\u2581", "").strip() != ""
                   for i, token, special in zip(enc.ids, enc.tokens, enc.special_tokens_mask))

    def tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """§7b: the whole pipeline, the text's tokens cut so that with the special tokens around them they
        are at most max_tokens, padded on the right to the batch's longest: int64 input_ids and attention_mask."""
        ids = [self.tokenizer.encode(t).ids for t in texts]
        width = max(len(x) for x in ids)
        input_ids = np.full((len(ids), width), self.pad, np.int64)
        mask = np.zeros((len(ids), width), np.int64)
        for i, x in enumerate(ids):
            input_ids[i, :len(x)], mask[i, :len(x)] = x, 1
        return input_ids, mask

    def content(self, texts: list[str]) -> np.ndarray:
        """§7b: the model's first output, each row divided by max(||row||, 1e-12)."""
        input_ids, mask = self.tokens(texts)
        rows = np.asarray(self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0], np.float64)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    def item_vectors(self, texts: list[str]) -> np.ndarray:
        """§7b: v = c . P[:-1] + P[-1], divided by max(||v||, 1e-12)."""
        p = self.projection.astype(np.float64)
        v = self.content(texts) @ p[:-1] + p[-1]
        return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def labels(self, text: str, k: int) -> dict:
        """§7b Labels: per set its best name (ties: earlier in the set), and the k best names overall
        (ties: earlier in names), with s = V . c."""
        s = self.label_vectors.astype(np.float64) @ self.content([text])[0]
        score = dict(zip(self.names, s.tolist()))
        labels = {}
        for name, members in self.sets.items():  # every member is a name (checked at open)
            labels[name] = max(members, key=lambda x: (score[x], -members.index(x)))
        best = stable_best(s, k)
        return {"labels": labels, "tags": [{"tag": self.names[i], "score": float(s[i])} for i in best]}


# ---------------------------------------------------------------- helpers of §4

def z(x: np.ndarray) -> np.ndarray:
    """Standardise over the finite values (population std, floor 1e-9); -inf stays -inf."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    if ok.sum() < 2:
        return np.where(ok, 0.0, x)
    mean, std = x[ok].mean(), x[ok].std()
    return np.where(ok, (x - mean) / max(std, 1e-9), x)


def stable_best(values, n: int) -> list[int]:
    """Indices of the n largest values, ties to the lowest index."""
    return sorted(range(len(values)), key=lambda i: (-values[i], i))[:n]


POLICY = {"diversity": None, "max_per_creator": None, "max_per_genre": None, "freshness": 0.0,
          "freshness_days": 30.0, "language_boost": 0.05, "popularity": 0.0, "hub_penalty": 0.0,
          "fairness": 0.0, "fairness_method": "exposure", "feedback_weight": 1.0, "keep_top": 0,
          "short_list": None, "engagement": None, "context_weight": None, "cold_start_items": 3,
          "use_ranker": True, "use_scorer": None, "cold_max_per_creator": None,
          "replay": None, "replay_min_plays": 2, "replay_gap": 10, "replay_minutes": 60.0}
VIDEO = {"film", "series_episode", "short_video"}  # §5 Replays: never brought back
DAY_PARTS = ((6, "night"), (12, "morning"), (18, "afternoon"), (24, "evening"))


# ---------------------------------------------------------------- §2 to §7 the request

class Runtime:
    """Histories in memory (§2), catalog updates (§7), recommend (§3 to §6)."""

    META = ("genre", "language", "modality", "creator", "provider", "series_id")

    def __init__(self, bundle: Bundle):
        self.b = bundle
        self.events: dict[str, list[tuple[str, str, float]]] = {}  # (item, event, time recorded)
        self.onboarding: dict[str, dict[str, list[str]]] = {}
        self.added: list[dict] = []  # §7: rows after the bundle's, in order
        self.removed: set[str] = set()

    # ---- §2 and §7: state
    def _known(self, items) -> None:
        """§7: an id the catalog does not have, or has removed, is refused (nothing is stored)."""
        cat = self._catalog()
        if any(i not in cat["row"] or not cat["live"][cat["row"][i]] for i in items):
            raise SpecError("unknown or removed item")

    def record(self, user: str, item: str, event: str, timestamp: float | None = None) -> None:
        if event not in EVENTS:
            raise SpecError(f"unknown event {event!r}")
        self._known([item])
        when = time.time() if timestamp is None else float(timestamp)  # §2: the given time, else the device clock
        self.events.setdefault(user, []).append((item, event, when))

    def onboard(self, user, genres=None, languages=None, tags=None, items=None) -> None:
        rows = self._catalog()
        for kind, values in (("genre", genres), ("language", languages)):  # §2: values an active item holds
            held = {v for v, live in zip(rows[kind], rows["live"]) if live}
            if values and any(v not in held for v in values):
                raise SpecError(f"onboarding {kind}s must be values an active item of the catalog holds")
        if any(not isinstance(t, str) or not t for t in tags or []):
            raise SpecError("onboarding tags are non-empty strings (§2)")
        self._known(items or [])
        choice = self.onboarding.setdefault(user, {})
        for kind, values in (("genres", genres), ("languages", languages), ("tags", tags)):
            if values:  # a kind onboarded again replaces that kind's choices; §2: each value once, in code-point order
                choice[kind] = sorted(set(values))
        for item in items or []:
            self.record(user, item, "more_like_this")

    def forget(self, user: str) -> None:
        self.events.pop(user, None)
        self.onboarding.pop(user, None)

    # ---- §8: a transfer from this runtime's bundle (the source) to itself (the target)
    def transfer(self, user: str, method: str, k: int = 10) -> list[dict]:
        b, cat = self.b, self._catalog()
        if not b.space or method not in ("content", "mapping", "direct"):
            raise SpecError("transfer: no shared space, or an unknown method")
        prof = self._profile(user, cat)
        h = [r for r in prof["seq"] if r < b.count][-50:]  # the sequence's bundle rows, the newest 50
        if not h:
            raise SpecError("transfer: no source history")

        def norm(x):
            return x / max(float(np.linalg.norm(x)), 1e-12)
        if method == "content":
            score = b.content @ norm(b.content[h].mean(axis=0))
        else:
            bridge = next((x for x in b.bridges if x["source_space"] == b.manifest["embedding_space"]
                           and (x["prior"] is not None) == (method == "direct")), None)
            if bridge is None:
                raise SpecError("transfer: no bridge of that kind from this source")
            p = norm(b.vectors[h].mean(axis=0))
            if bridge["input"] == "items+content":
                p = np.concatenate([p, norm(b.content[h].mean(axis=0))])
            q = p @ bridge["weights"] + bridge["bias"]
            q = q if method == "direct" else norm(q)
            score = self.scan(q.astype(np.float32), cat)[:b.count]
            score = score + bridge["prior"] if method == "direct" else score
        score = np.asarray(score, np.float64)
        blocked = [r for r in prof["seen"] if r < b.count] + [r for r in range(b.count) if not cat["live"][r]]
        score[blocked] = -np.inf
        newest = cat["ids"][h[-1]]
        return [{"item_id": cat["ids"][r], "score": float(score[r]), "reason": "transfer", "reason_item": newest,
                 "tags": []} for r in stable_best(score, k) if np.isfinite(score[r])]

    def remove_items(self, ids) -> None:
        self._known(ids)
        self.removed.update(ids)
        for a in self.added:  # §7: an added item, once removed, keeps no vector (it reads as zeros)
            if a["item_id"] in ids:
                a["vector"] = np.zeros(self.b.dim, np.float32)

    def add_items(self, items: list[dict]) -> None:
        for item in items:  # §7: rule 8's integer columns take whole numbers (nothing of the call is stored)
            for key in ("episode", "release_ts"):
                if item.get(key) is not None and not float(item[key]).is_integer():
                    raise SpecError(f"add_items: {key} must be a whole number")
        cat, encoder = self._catalog(), self.b.content_encoder()
        bare = [item for item in items if "vector" not in item]  # §7b: their texts, one batch
        bare = [x for x in bare if encoder and encoder.reads_word(encoder.text(self.kept(x)))]  # §7b: a word
        texts = [encoder.text(self.kept(x)) for x in bare] if encoder and bare else []
        content = dict(zip((id(x) for x in bare), encoder.item_vectors(texts))) if texts else {}
        for item in items:
            if "vector" in item:
                v = np.asarray(item["vector"], dtype=np.float32)
                if v.shape != (self.b.dim,) or not np.all(np.isfinite(v)) or not v.any():
                    raise SpecError("add_items: a vector holds dim finite values, not all 0")
                v = v / np.linalg.norm(v)
            else:
                v = self._placed(item, cat, content.get(id(item)))
            same = [j for j, a in enumerate(self.added) if a["item_id"] == item["item_id"]]
            if same:  # an item added earlier is updated in its row
                self.added[same[0]] = {**item, "vector": v}
            else:
                self.added.append({**item, "vector": v})
            self.removed.discard(item["item_id"])
            cat = self._catalog()

    def _placed(self, item: dict, cat: dict, content: np.ndarray | None) -> np.ndarray:
        """§7: the content encoder's vector (§7b) when the bundle has one, blended with the mean below
        for a series or creator match; else the unit mean vector of the up to 200 most popular
        bundle items (removed ones too) sharing the series, else creator, else genre (best tag overlap)."""
        for key in ("series_id", "creator") + (("genre",) if content is None else ()):
            rows = [r for r in range(self.b.count) if item.get(key) and cat[key][r] == item[key]]
            overlap = [len(set(item.get("tags", [])) & set(cat["tags"][r])) for r in rows]
            if key == "genre" and rows and max(overlap) > 0:
                rows = [r for r, o in zip(rows, overlap) if o == max(overlap)]
            if rows:
                rows = [rows[i] for i in stable_best([cat["popularity"][r] for r in rows], 200)]
                v = cat["vectors"][rows].mean(axis=0)
                if content is not None:  # 0.7 of the unit mean, 0.3 of the content vector
                    v = 0.3 * content.astype(np.float64) + 0.7 * v / np.linalg.norm(v)
                return (v / np.linalg.norm(v)).astype(np.float32)
        if content is not None:
            return content
        raise SpecError("add_items: an item without a vector needs a series, creator or genre")

    def tag(self, text: str | None = None, item_id: str | None = None, k: int = 5) -> dict:
        """§7b Labels of a text, or of a catalog item's text (its metadata)."""
        encoder = self.b.content_encoder()
        if encoder is None:
            raise SpecError("tag: the bundle has no content encoder")
        if (text is None) == (item_id is None) or type(k) is not int or not 1 <= k <= 10_000:
            raise SpecError("tag: a text or an item id (one of them), and k from 1 to 10,000")
        if item_id is not None:
            text = encoder.text(self._meta(item_id))
        if not encoder.reads_word(text):
            raise SpecError("tag: the text reads no word (§7b)")
        return encoder.labels(text, k)

    def _meta(self, item_id: str) -> dict:
        """§7b: the metadata kept for a catalog item: an added item's own (untitled: its id as title); a
        bundle item's title and tags (the item table keeps no description). A removed or unknown id is refused, as record refuses it."""
        self._known([item_id])
        cat = self._catalog()
        r = cat["row"][item_id]
        if r >= self.b.count:
            return self.kept(self.added[r - self.b.count])
        return {"title": self.b.strings["titles"][r], "tags": cat["tags"][r]}

    @staticmethod
    def kept(item: dict) -> dict:
        """§7b: an added item's metadata as kept: a title absent, null or '' is the item's id."""
        return {**item, "title": item.get("title") or item["item_id"]}

    def _catalog(self) -> dict:
        """Bundle rows then added rows; an added id hides the bundle item of that id."""
        b, added = self.b, self.added
        cat = {"ids": list(b.strings["ids"]) + [a["item_id"] for a in added]}
        cat["tags"] = [t.split("|") if t else [] for t in b.strings["tags"]] + [
            list(a.get("tags", [])) for a in added]
        for key in self.META:
            cat[key] = list(b.cat.get(key, [None] * b.count)) + [a.get(key) for a in added]
        zero = np.zeros(len(added))
        for key in ("popularity", "release_ts", "duration", "episode", "hubness"):
            col = b.num.get(key)
            cat[key] = np.concatenate([col, zero]) if col is not None else None
        if cat["hubness"] is not None:
            cat["hubness"][b.count:] = np.median(b.num["hubness"])
        for j, a in enumerate(added):
            for key in ("duration", "episode"):
                cat[key][b.count + j] = a.get(key, 0)
        typical = float(np.float32(np.median(b.num["popularity"].astype(np.float64))))  # §7: unknown popularity
        for key, unknown in (("popularity", typical), ("release_ts", 0.0)):  # §4 features: given values (prior: 0)
            cat["f_" + key] = np.concatenate([b.num[key].astype(np.float64),
                                              np.array([float(a.get(key) or unknown) for a in added])])
        cat["g_popularity"] = np.concatenate([b.num["popularity"].astype(np.float64),  # §5's term: given, else 0
                                              np.array([float(a.get("popularity") or 0) for a in added])])
        cat["vectors"] = np.concatenate([b.vectors] + [a["vector"][None] for a in added])
        cat["n"] = len(cat["ids"])
        replaced = {a["item_id"] for a in added}
        cat["live"] = np.array([(r >= b.count or i not in replaced) and i not in self.removed
                                for r, i in enumerate(cat["ids"])])
        cat["row"] = {i: r for r, i in enumerate(cat["ids"]) if r >= b.count or i not in replaced}
        return cat

    def scan(self, q: np.ndarray, cat: dict) -> np.ndarray:
        """§4: the bundle's int8 rows scored with an int8 query; added rows in float32."""
        b = self.b
        if b.scales is None:
            bundle = b.vectors @ q.astype(np.float32)
        else:
            x = q * b.scales if b.axis == "dim" else q
            step = float(np.abs(x).max()) / 127 or 1.0
            qq = np.clip(np.rint(x / step), -127, 127).astype(np.int64)
            bundle = np.float32(step) * (b.table.astype(np.int64) @ qq).astype(np.float32)
            if b.axis == "row":
                bundle = bundle * b.scales
        extra = cat["vectors"][b.count:].astype(np.float32) @ q.astype(np.float32)
        return np.concatenate([bundle, extra]).astype(np.float32)  # scores are float32

    # ---- §2: what a request reads of the history
    def _profile(self, user: str, cat: dict) -> dict:
        timed = [(cat["row"][i], e, t) for i, e, t in self.events.get(user, [])[-2000:] if i in cat["row"]]
        events = [(r, e) for r, e, _ in timed]
        seq: list[int] = []
        for r, e in events:
            if e in CONSUMED and r not in seq:
                seq.append(r)

        said: dict[int, str] = {}  # §2 newest feedback wins: each row's newest like / more_like_this / not_interested
        for r, e in events:
            if e in ("like", "more_like_this", "not_interested"):
                said[r] = e

        def newest(kind: str, n: int) -> list[int]:  # rows of the newest n such events left, oldest first
            return [r for r, e in events if e == kind
                    and (said.get(r) == "not_interested") == (kind == "not_interested")][-n:]

        choice = self.onboarding.get(user, {})
        tags: dict[str, int] = {}
        langs: dict[str, int] = {}
        for r in seq[-50:]:
            for t in cat["tags"][r]:
                tags[t] = tags.get(t, 0) + 1
            if cat["language"][r] is not None:
                langs[cat["language"][r]] = langs.get(cat["language"][r], 0) + 1
        for t in dict.fromkeys(choice.get("tags", []) + choice.get("genres", [])):  # a tag that is also a genre: once
            tags[t] = tags.get(t, 0) + 3
        for lang in choice.get("languages", []):
            langs[lang] = langs.get(lang, 0) + 3
        return {"events": events, "timed": timed, "seq": seq, "seen": {r for r, _ in events}, "tags": tags, "langs": langs,
                "liked": newest("more_like_this", 5), "disliked": newest("not_interested", 20),
                "loved": newest("like", 5), "finished": newest("finish", 5),
                "onboard_tags": set(choice.get("tags", [])), "choice": choice}

    # ---- §3: the user vector and the query
    def _query(self, prof: dict, cat: dict, pol: dict) -> tuple[np.ndarray | None, bool]:
        """The query, and whether the encoder failed (a NaN or infinite vector: the popularity fallback)."""
        b, vec = self.b, cat["vectors"]
        bundle_row = {item_id: r for r, item_id in enumerate(cat["ids"][:b.count])}
        rows = [r if r < b.count else bundle_row.get(cat["ids"][r], -1) for r in prof["seq"]]  # §3: a taken-over id
        inputs = [int(b.enc_inputs[r]) for r in rows if r >= 0]
        u = None
        if inputs:
            length = max(1, min(b.defaults.get("history_length", 50), len(inputs)))  # §3: else 50
            u = b.encode(inputs[-length:]).astype(np.float64)
            if u.shape != (b.dim,) or not np.all(np.isfinite(u)) or not u.any():
                return None, True  # §3 (another width, NaN, infinity or all zero): no pull of any kind, the request is cold
        e = pol["engagement"] if pol["engagement"] is not None else b.ranking.get("engagement", 0)
        if u is not None and e > 0:
            liked, done = prof["loved"], prof["finished"]
            p = np.zeros(b.dim)
            p += e * vec[liked].mean(axis=0) if liked else 0
            p += 0.5 * e * vec[done].mean(axis=0) if done else 0
            norm = np.linalg.norm(u)
            pulled = u + norm * p
            u = pulled * norm / np.linalg.norm(pulled)
        if prof["liked"]:
            q = (u if u is not None else 0) + pol["feedback_weight"] * vec[
                prof["liked"][-3:]].mean(axis=0)
            norm = np.linalg.norm(q)
            if np.all(np.isfinite(q)) and norm >= 1e-12:  # §3: a pull without direction is left out
                u = q / norm
        return u, False

    # ---- §5 filters
    def _passes(self, filters: dict | None, cat: dict) -> np.ndarray:
        ok = np.ones(cat["n"], dtype=bool)
        f = filters or {}
        for key, column in (("languages", "language"), ("genres", "genre"),
                            ("exclude_genres", "genre")):
            if f.get(key):
                values = {v for v in cat[column] if v is not None}
                folded = {v.casefold() for v in values}
                if not values or any(v not in values and v.casefold() in folded for v in f[key]):
                    raise SpecError(f"filter {key}: a value differs from the catalog's only by case")
        if any(m not in MODALITIES for m in f.get("modalities") or []):
            raise SpecError("filter modalities: one of §4's five modality names")
        tests = {
            "languages": lambda r, v: cat["language"][r] in v,
            "modalities": lambda r, v: cat["modality"][r] in v,
            "genres": lambda r, v: cat["genre"][r] in v,
            "exclude_genres": lambda r, v: cat["genre"][r] not in v,
            "exclude_items": lambda r, v: cat["ids"][r] not in v,
            "kids_safe": lambda r, v: not v or cat["genre"][r] in KIDS_SAFE,
            "max_duration_s": lambda r, v: 0 < cat["duration"][r] <= v,
        }
        for key, value in f.items():
            if value is not None and value != []:
                ok &= np.array([tests[key](r, value) for r in range(cat["n"])], dtype=bool)
        return ok

    # ---- §3 to §6: one request
    def recommend(self, user, k=None, context=None, filters=None, policy=None) -> list[dict]:
        b, cat = self.b, self._catalog()
        pol = {**POLICY, **(policy or {})}
        k = k or b.defaults.get("k", 10)
        ctx = context or {}
        prof = self._profile(user, cat)
        q, failed = self._query(prof, cat, pol)
        cold, n, vec = q is None, len(prof["seq"]), cat["vectors"].astype(np.float64)

        # §4 scores over every row
        now = ctx.get("now", time.time())
        hour = ctx.get("hour", time.localtime(now).tm_hour + time.localtime(now).tm_min / 60)
        ts = cat["f_release_ts"]  # added items: the given release and popularity, else 0
        t = 3600 * math.floor(now / 3600)  # the prior's time: the request's hour
        age = (t - ts) / 86400
        out_now = (ts > 0) & (ts <= t)
        prior = np.log1p(cat["g_popularity"]) * (1 + np.where(out_now, np.exp(-age / 30), 0))
        short, c3 = not cold and n < pol["cold_start_items"], pol["cold_start_items"]
        prior = z(prior).astype(np.float32)  # standardised in float64, kept as float32
        w = np.float32(1) + (prior.max() - prior.min())  # one matched term outweighs the prior's range

        matching = np.zeros(cat["n"], bool)  # §5 newcomer spread: the score holds a w term

        def steered(genres, tags, langs):  # float32 sums of w per matched term, in this order
            terms = ([g in genres for g in cat["genre"]],
                     [any(t in tags for t in item_tags) for item_tags in cat["tags"]],
                     [lang in langs for lang in cat["language"]])
            out = prior
            for where in terms:
                out = out + np.where(where, w, np.float32(0))
                matching[np.asarray(where, bool)] = True
            return out

        if cold:
            score = steered(prof["tags"], prof["onboard_tags"], prof["langs"])
        else:
            score = self.scan(q, cat)
            if short:  # "chosen": the onboarding choices alone steer the prior
                ch = prof["choice"]
                chosen = steered(set(ch.get("genres", []) + ch.get("tags", [])), set(ch.get("tags", [])),
                                 set(ch.get("languages", [])))
                score = ((n / c3) * z(score) + (1 - n / c3) * chosen).astype(np.float32)
        # §5 newcomer spread: a cold or short-history list gets the creator cap cold_max_per_creator
        spread_cap = pol["cold_max_per_creator"]
        spread_cap = b.defaults.get("cold_max_per_creator", 3) if spread_cap is None else spread_cap
        spread = (cold or short) and spread_cap > 0 and (pol["max_per_creator"] is None
                                                          or pol["max_per_creator"] > spread_cap)
        if spread:
            pol = {**pol, "max_per_creator": spread_cap}
        blocked = ~cat["live"] | np.isin(np.arange(cat["n"]), list(prof["seen"]))
        score = np.where(blocked, -np.inf, score)

        # §4 short list
        want = max(pol["short_list"] or b.defaults.get("short_list", 100), k)
        passes = self._passes(filters, cat)
        ranked = [r for r in stable_best(score, cat["n"]) if np.isfinite(score[r])]
        used, near = [like for like in prof["liked"][-3:] if vec[like].any()], set()  # §4: zeros bring no neighbours
        for like in used:  # neighbours of the newest 3 liked items are candidates too
            s = np.where(blocked, -np.inf, self.scan(vec[like], cat))
            near.update(r for r in stable_best(s, 20) if np.isfinite(s[r]))
        groups = len(used)
        if pol["freshness"] > 0:  # the new releases are one more group of 20 candidates
            released = cat["f_release_ts"]  # added items: the release their metadata gives, 0 when absent
            since = now - released
            new = [r for r in ranked if released[r] > 0 and 0 <= since[r] <= 3 * pol["freshness_days"] * 86400]
            near.update(new[:20])
            groups += 1
        size = 4 * want
        while True:  # the best 4 want rows, widened x4 until want of these rows pass (the groups do not count)
            sl = sorted((r for r in set(ranked[:size]) | near if passes[r]),
                        key=lambda r: (-score[r], r))
            kept, end = self._capped(sl, pol, k, cat)  # and the caps keep k of them, in score order
            if spread:  # the spread drops no row: it cuts the short list but widens nothing
                kept = self._capped(sl, {**pol, "max_per_creator": None}, k, cat)[0]
            if (sum(bool(passes[r]) for r in ranked[:size]) >= want and kept >= k) or size >= len(ranked):
                break
            size *= 4
        cut = max(want + 20 * groups, end)
        sl = sl[:cut] + [r for r in sl[cut:] if r in near]  # the groups' rows below the cut stay
        if not sl:
            return []
        sl = np.array(sl)
        w_replay = pol["replay"] if pol["replay"] is not None else b.defaults.get("replay", 0)
        back: dict[int, float] = {}
        if w_replay > 0 and not cold and not short:  # §5 Replays: favourites appended to the short list
            back = self._favourites_back(prof, cat, pol, passes, set(sl.tolist()), now)
            sl = np.array(sl.tolist() + list(back), dtype=np.int64)

        # §4 relevance, ranker, scorer, context
        rel, scored = z(score[sl]) if cold or short else z(vec[sl] @ q), None
        if not cold:
            rel, scored = self._rank(sl, rel, q, prof, cat, now, hour, ctx.get("device"), pol)
        prior_ctx = b.ranking.get("context_prior")
        if prior_ctx and not failed and scored is None:  # §4 Context: not on the popularity fallback nor after the scorer
            c = pol["context_weight"] if pol["context_weight"] is not None else prior_ctx.get(
                "weight", 0)
            part = next(name for end, name in DAY_PARTS if hour % 24 < end)
            names = prior_ctx["modalities"]
            rows = [prior_ctx["day_part"].get(part), prior_ctx["device"].get(ctx.get("device"))]
            for j, r in enumerate(sl):
                mod = cat["modality"][r]
                if c > 0 and mod in MODALITIES:  # a lift: the sum over the positions holding its name
                    rel[j] += c * sum(row[i] for row in rows if row for i, name in enumerate(names) if name == mod)

        # §5 policies
        head = rel.copy()
        for group, sign in ((prof["liked"], 1.0), (prof["disliked"], -2.0)):
            if group:
                sim = (vec[sl] @ vec[group].T).max(axis=1)
                head += sign * pol["feedback_weight"] * np.clip(z(sim) - 1, 0, 3)
        if back:  # §5 the replay term: w * strength / max strength, on the appended rows
            top = max(back.values())
            head += np.array([w_replay * back[r] / top if r in back else 0.0 for r in sl.tolist()])
        top_langs = sorted(prof["langs"], key=lambda x: -prof["langs"][x])[:2]
        head += pol["language_boost"] * np.array([cat["language"][r] in top_langs for r in sl])
        total = head.copy()
        if pol["freshness"]:  # §5: an added item's given release (the prior's is 0)
            ts_given = cat["f_release_ts"][sl]
            days = (now - ts_given) / 86400
            total += np.where((ts_given > 0) & (ts_given <= now), pol["freshness"] * np.exp(
                -days / pol["freshness_days"]), 0)
        if pol["popularity"]:
            total += pol["popularity"] * z(np.log1p(cat["g_popularity"][sl]))
        if pol["hub_penalty"] and cat["hubness"] is None:  # §5: for every request, cold ones too
            raise SpecError("hub_penalty: the bundle has no hubness column")
        if pol["hub_penalty"] and not cold:
            sd = (vec[sl] @ q).std()
            if sd > 1e-9:
                total -= pol["hub_penalty"] * cat["hubness"][sl] / sd

        order = self._order(sl, head, total, k, pol, cat, matching[sl] if spread else None)
        # §5 a list the caps leave short: computed again on a wider short list (the fairness order aside)
        plain = order if not pol["fairness"] else self._order(sl, head, total, k, {**pol, "fairness": 0}, cat,
                                                                   matching[sl] if spread else None)
        left_out = sum(1 for r in ranked if passes[r]) > len(sl) - len(back)
        asked = pol["short_list"] or b.defaults.get("short_list", 100)
        if len(plain) < k and left_out and asked < 100_000:
            return self.recommend(user, k, context, filters, {**(policy or {}),
                                                              "short_list": min(2 * len(sl), 100_000)})
        shown = [self._explain(sl[j], total[j], prof, cat, cold, back) for j in order]
        if failed:  # §6: on the popularity fallback every reason is `fallback`, with no item and no tags
            shown = [{**item, "reason": "fallback", "reason_item": None, "tags": []} for item in shown]
        if scored is not None:  # §4 Scorer: the reason's kind becomes scorer; the sum of the terms is shown
            for j, item in zip(order, shown):
                item.update(reason="scorer", scorer_score=float(scored[j]))
        return shown

    # ---- §4 ranker and scorer
    def _rank(self, sl, rel, q, prof, cat, now, hour, device, pol):
        """Relevance after the ranker and the scorer (each only when it runs), and the scorer's sums."""
        b, scored = self.b, None
        use_ranker = pol.get("use_ranker", True)
        vec, qf = cat["vectors"][sl].astype(np.float32), np.asarray(q, np.float32)
        block = self._item_block(sl, prof["seq"], cat, int(now))
        h, dev = hour % 24, DEVICES.index(device) if device in DEVICES else None
        mods = [MODALITIES.index(cat["modality"][r]) if cat["modality"][r] in MODALITIES else None for r in sl]
        if b.ranker is not None and use_ranker:
            d = b.dim
            x = np.zeros((len(sl), d + 20), np.float32)
            x[:, :d], x[:, d] = vec * qf, vec @ qf
            x[:, d + 1], x[:, d + 2] = math.sin(2 * math.pi * h / 24), math.cos(2 * math.pi * h / 24)
            if dev is not None:
                x[:, d + 3 + dev] = 1
            for j, m in enumerate(mods):
                if m is not None:
                    x[j, d + 7 + m] = 1
            x[:, d + 12:d + 19], x[:, d + 19] = block, 1
            session, name = b.ranker
            try:
                logits = np.asarray(session.run(None, {name: x})[0], np.float64).reshape(-1)
                if len(logits) == len(sl) and np.all(np.isfinite(logits)):
                    rel = z(logits)
            except Exception:  # a failing ranker keeps the relevance
                pass
        want = pol.get("use_scorer")
        if b.scorer is not None and (want or (want is None and (b.ranker is None or not use_ranker))):
            x = self._scorer_features(sl, vec, qf, block, prof, cat, h, dev, mods)
            a = b.scorer
            scored = ((x - a["mean"]) * a["weights"] / a["scale"]).sum(axis=1) + a["intercept"][0]
            if np.all(np.isfinite(scored)):  # a non-finite score leaves the relevance as it was (§4 Scorer)
                rel = z(scored)
            else:
                scored = None
        return rel, scored

    def _item_block(self, sl, hist, cat, now) -> np.ndarray:
        """§4 Item block: length, popularity, age, language, creator, series, next episode (float32)."""
        top = float(np.max(cat["f_popularity"].astype(np.float32))) if cat["n"] else 0.0
        big_p = math.log1p(top)
        out = np.zeros((len(sl), 7))
        for j, r in enumerate(sl):
            out[j, 0] = math.log1p(cat["duration"][r] / 60) / 5
            out[j, 1] = math.log1p(cat["f_popularity"][r]) / max(big_p, 1e-6)
            release = cat["f_release_ts"][r]
            out[j, 2] = 0.0 if release == 0 else math.log1p(max(now - release, 0) / 86400) / 7
            if hist:
                out[j, 3] = _share(cat["language"], hist, cat["language"][r])
                out[j, 4] = _share(cat["creator"], hist[-20:], cat["creator"][r])
                series = cat["series_id"][r] or None
                watched = [cat["episode"][x] for x in hist if series and cat["series_id"][x] == series]
                out[j, 5] = 1.0 if watched else 0.0
                out[j, 6] = 1.0 if watched and cat["episode"][r] == max(watched) + 1 else 0.0
        return out.astype(np.float32)

    def _scorer_features(self, sl, vec, qf, block, prof, cat, h, dev, mods) -> np.ndarray:
        """§4 Scorer features, version 2 (float64), in the order of scorer_names."""
        d, recent = self.b.dim, prof["seq"][-50:]
        v64, q64 = vec.astype(np.float64), qf.astype(np.float64)
        x = np.zeros((len(sl), 51 + d))
        x[:, 0] = v64 @ q64
        x[:, 1:8] = block[:, [1, 2, 0, 3, 4, 5, 6]]  # popularity, age, length, language ... next episode
        counts: dict[str, int] = {}
        for r in recent:
            for t in cat["tags"][r]:
                counts[t] = counts.get(t, 0) + 1
        likes = cat["vectors"][prof["loved"]].astype(np.float64)
        part = PARTS.index(next(name for end, name in DAY_PARTS if h < end))
        for j, r in enumerate(sl):
            tags = [t for t in cat["tags"][r] if t]
            if recent:
                x[j, 8] = sum(counts.get(t, 0) for t in tags) / (len(recent) * max(len(tags), 1))
                x[j, 9] = _share(cat["genre"], recent, cat["genre"][r])
            if len(likes):
                x[j, 10] = float((likes @ v64[j]).max())
            if mods[j] is not None:
                if dev is not None:
                    x[j, 11 + 5 * dev + mods[j]] = 1
                x[j, 31 + 5 * part + mods[j]] = 1
        x[:, 51:] = v64 * q64
        return x

    # ---- §4 the caps' part of the short list
    @staticmethod
    def _capped(rows, pol, k, cat) -> tuple[int, int]:
        caps = [(col, pol[f"max_per_{col}"]) for col in ("creator", "genre") if pol[f"max_per_{col}"]]
        if not caps:
            return min(k, len(rows)), min(k, len(rows))
        kept = []
        for i, r in enumerate(rows):
            if any(cat[col][r] is not None and sum(cat[col][c] == cat[col][r] for c in kept) >= cap
                   for col, cap in caps):
                continue
            kept.append(r)
            if len(kept) == k:
                return k, i + 1
        return len(kept), len(rows)

    # ---- §5 kept head, diversity and caps, fairness
    def _order(self, sl, head, total, k, pol, cat, matching=None) -> list[int]:
        chosen = stable_best(head, min(pol["keep_top"], k))
        w = pol["diversity"] if pol["diversity"] is not None else self.b.defaults.get(
            "diversity", 0.0)
        caps = {"creator": pol["max_per_creator"], "genre": pol["max_per_genre"]}
        key = total
        if pol["fairness"] > 0 and "provider" in self.b.cat:
            if pol["fairness_method"] == "cap":  # the provider cap in the creator cap's place
                per = max(1, math.ceil(round(k * (1 - min(pol["fairness"], 1)), 9)))
                caps = {"provider": per, "genre": pol["max_per_genre"]}
                return self._greedy(sl, total, k, w, caps, cat, chosen)
            key = z(total) - 0.15 * pol["fairness"] * self._lift(cat)[sl]
        if not w and not any(caps.values()):
            rest = [j for j in stable_best(key, len(sl)) if j not in chosen]
            return (chosen + rest)[:k]
        return self._greedy(sl, key, k, w, caps, cat, chosen, matching)

    def _greedy(self, sl, key, k, w, caps, cat, chosen, matching=None) -> list[int]:
        """MMR with caps; with `matching` (the newcomer spread) the creator cap passes items over."""
        vec, rel = cat["vectors"][sl].astype(np.float64), z(key)
        chosen = list(chosen)
        cand = [j for j in range(len(sl)) if j not in chosen]

        def full(col, j, cap):
            return bool(cap) and cat[col][sl[j]] is not None and sum(
                cat[col][sl[c]] == cat[col][sl[j]] for c in chosen) >= cap

        while len(chosen) < k and cand:
            sim = [max((vec[j] @ vec[c] for c in chosen), default=0.0) for j in cand]
            spread = z([max(s, 0.0) for s in sim])  # over the items neither chosen nor dropped
            value = [(1 - w) * rel[j] - (w * spread[i] if w else 0.0) for i, j in enumerate(cand)]
            if matching is None:
                pick = int(np.argmax(value))
            else:  # b: the best uncapped; a capped chosen-matching item goes first when b matches nothing
                capped = [full("creator", j, caps["creator"]) for j in cand]
                free = [i for i in range(len(cand)) if not capped[i]]
                ahead = [i for i in range(len(cand)) if capped[i] and matching[cand[i]]]
                if not free:
                    pick = _first_best(value, range(len(cand)))
                else:
                    b = _first_best(value, free)
                    pick = _first_best(value, ahead) if ahead and not matching[cand[b]] else b
            j = cand.pop(pick)
            if any(full(col, j, cap) for col, cap in caps.items() if matching is None or col != "creator"):
                continue
            chosen.append(j)
        return chosen

    def _lift(self, cat) -> np.ndarray:
        prov = cat["provider"]
        pop = {}
        for r in range(cat["n"]):
            if prov[r] is not None:
                pop[prov[r]] = pop.get(prov[r], 0.0) + float(cat["popularity"][r])
        total = sum(pop.values())
        lift = np.zeros(cat["n"])
        for r in range(cat["n"]):
            if prov[r] is not None and total > 0:
                share = pop[prov[r]] / total
                lift[r] = np.clip(np.log(share * len(pop)), -2, 2) if share > 0 else -2
        return lift

    # ---- §6 reasons
    def _favourites_back(self, prof, cat, pol, passes, in_list, now) -> dict[int, float]:
        """§5 Replays: row -> strength of the (at most 50) favourites that come back, strongest first."""
        plays = [(r, t) for r, e, t in prof["timed"] if e == "play"]  # oldest first
        never = {r for r, e, _ in prof["timed"] if e in ("skip", "not_interested", "more_like_this")}
        info: dict[int, dict] = {}
        for position, (r, t) in enumerate(plays):
            age = len(plays) - 1 - position
            got = info.setdefault(r, {"plays": 0, "strength": 0.0, "young": False, "recent": False})
            got["plays"] += 1
            got["strength"] += 0.5 ** (age / 100)
            got["young"] |= age < pol["replay_gap"]
            # within replay_minutes of now, either side (a play further ahead: the clock went back since)
            got["recent"] |= now - 60 * pol["replay_minutes"] < t <= now + 60 * pol["replay_minutes"]
        back = [(r, g["strength"]) for r, g in info.items()
                if g["plays"] >= pol["replay_min_plays"] and r not in never and not g["young"] and not g["recent"]
                and cat["modality"][r] not in VIDEO and cat["live"][r] and passes[r] and r not in in_list]
        return dict(sorted(back, key=lambda x: (-x[1], x[0]))[:50])

    def _explain(self, r, score, prof, cat, cold, back=()) -> dict:
        vec = cat["vectors"].astype(np.float64)
        refused = set(prof["disliked"])  # §6: a reason never names a disliked item, nor counts its tags
        recent = [h for h in prof["seq"][-50:] if h not in refused]
        counts = dict(prof["tags"])
        for h in refused & set(prof["seq"][-50:]):
            for t in cat["tags"][h]:
                counts[t] = counts.get(t, 0) - 1
        counts = {t: c for t, c in counts.items() if c > 0}
        matched = [t for t in cat["tags"][r] if t in counts]
        matched = sorted(matched, key=lambda t: -counts[t])[:3]
        reason, item = ("tags", None) if matched else ("popular", None)
        ch = prof["choice"]  # §6 choice: an onboarding choice the item matches
        if not matched and (cat["genre"][r] in ch.get("genres", []) + ch.get("tags", [])
                            or any(t in ch.get("tags", []) for t in cat["tags"][r])
                            or cat["language"][r] in ch.get("languages", [])):
            reason = "choice"
        series = [h for h in recent if cat["series_id"][h] is not None
                  and cat["series_id"][h] == cat["series_id"][r]]
        liked_sim = [float(vec[r] @ vec[x]) for x in prof["liked"]]
        # the series' highest episode among them, the newest on a tie
        top = max(reversed(series), key=lambda h: cat["episode"][h]) if series else None
        if series and cat["episode"][r] > 0 and cat["episode"][r] == cat["episode"][top] + 1:
            reason, item = "series", top
        elif liked_sim and max(liked_sim) > 0.6:
            reason, item = "feedback", prof["liked"][int(np.argmax(liked_sim))]
        elif not cold and recent:
            reason, item = "history", recent[int(np.argmax([vec[r] @ vec[h] for h in recent]))]
        if r in back:  # §6: a favourite the replay brought back names itself
            reason, item = "replay", r
        return {"item_id": cat["ids"][r], "score": float(score), "reason": reason,
                "reason_item": cat["ids"][item] if item is not None else None, "tags": matched}


def _first_best(value, among) -> int:
    """The first maximum of `value` over the positions `among`."""
    return max(among, key=lambda i: (value[i], -i))


def _share(column, rows, value) -> float:
    """§4 share(X, a): of the rows with a value, the fraction equal to `value` (0 for none)."""
    values = [column[r] for r in rows if column[r]]
    return values.count(value) / len(values) if value and values else 0.0


# ---------------------------------------------------------------- §9 playing a golden case

def play(runtime: Runtime, case: dict):
    """Yield (step number, returned, expected) for every recommend, transfer and tag step of a case (a tag
    step returns and expects {"labels", "tags"}, the others a list)."""
    for number, step in enumerate(case["steps"]):
        args = {k: v for k, v in step.items() if k not in ("op", "expected", "expected_by_engine")}
        op = step["op"]
        if op in ("recommend", "transfer", "tag"):
            expected = step.get("expected_by_engine", {}).get("onnx", step["expected"])
            yield number, getattr(runtime, op)(**args), expected
        elif op == "record":
            runtime.record(args["user"], args["item"], args["event"], args.get("timestamp"))
        elif op in ("add_items", "remove_items"):
            getattr(runtime, op)(args["items"])
        else:
            getattr(runtime, op)(**args)
