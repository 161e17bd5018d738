"""The bundle: the one contract between host and device, read and written through its schema.

A bundle is a directory (or a single packed file, see `pack.py`) holding `manifest.json`, model
files, the item table and a model card. The manifest follows spec/manifest.schema.json (checked
by `schema.py` when a bundle is written and when it opens; `item_spec.py` types the item section).
`BundleWriter` writes; `Bundle.open` also checks every file's size and sha256 and that every
path stays inside the bundle. Bundles are data only: JSON, .npy arrays read with
`allow_pickle=False`, and model files; never pickle, never code.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from edgerec.errors import BundleError
from edgerec.runtime import checks, npy_checks
from edgerec.runtime.atomic import Temporary
from edgerec.runtime.item_spec import ItemTableSpec, space_members
from edgerec.runtime.manifest_read import named_files, parse_manifest
from edgerec.runtime.model_rules import check_models
from edgerec.runtime.schema import check_manifest

FORMAT = "edgerec-bundle"
FORMAT_VERSION = 6  # 2: per-dim int8 scales; 3: compact dtypes; 4: compressed text; 5: tag codes; 6: constant columns
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 64 << 20  # a million items' vocabularies fit in a few MB


@dataclass
class TensorSpec:
    name: str
    dtype: str
    shape: list  # ints, or strings for dynamic axes

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass
class ModelEntry:
    """One model file of the bundle."""

    role: str  # user_encoder | ranker | content_encoder | content_projection
    format: str  # onnx | tflite
    file: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    quantization: str = "none"  # none | int8-dynamic | int8-static | fp16
    history_length: int | None = None  # fixed L of a TFLite user encoder (ids are left-padded to it)
    batch: int | None = None  # fixed batch of a TFLite file
    parity: dict = field(default_factory=dict)  # max_abs_diff, top10_agreement, ...
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"role": self.role, "format": self.format, "file": self.file, "quantization": self.quantization,
               "inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs],
               "parity": self.parity, "extra": self.extra}
        fixed = {"history_length": self.history_length, "batch": self.batch}  # TFLite files only
        return out | {key: value for key, value in fixed.items() if value is not None}

    @classmethod
    def from_dict(cls, d: dict) -> ModelEntry:
        try:  # a manifest's entries passed the schema; a hand-made dict may not have
            return cls(
                role=d["role"], format=d["format"], file=d["file"],
                inputs=[TensorSpec(**t) for t in d["inputs"]], outputs=[TensorSpec(**t) for t in d["outputs"]],
                quantization=d.get("quantization", "none"), history_length=d.get("history_length"),
                batch=d.get("batch"), parity=d.get("parity", {}), extra=d.get("extra", {}),
            )
        except (KeyError, TypeError) as exc:
            raise BundleError(f"manifest model entry is malformed ({exc}); re-export the bundle") from None


@dataclass
class Manifest:
    name: str
    embedding_space: str  # id of the vector space of the item table and user encoder
    dim: int
    items: ItemTableSpec  # the item table: vectors and metadata columns
    models: list[ModelEntry]
    files: dict[str, dict]  # path -> {"sha256", "bytes"} for every file but the manifest
    defaults: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    budgets: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)  # conformance inputs/outputs (file names)
    data_version: dict = field(default_factory=dict)  # what data the models were trained on
    ranking: dict = field(default_factory=dict)  # interpretable scorer, context priors (see runtime/ranking.py)
    space: dict = field(default_factory=dict)  # the shared space and domains (see space.py); empty: none
    created: str = ""
    edgerec_version: str = ""
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "format_version": self.format_version, "name": self.name,
            "edgerec_version": self.edgerec_version, "created": self.created,
            "embedding_space": self.embedding_space, "dim": self.dim, "items": self.items.to_manifest(),
            "models": [m.to_dict() for m in self.models], "defaults": self.defaults, "metrics": self.metrics,
            "budgets": self.budgets, "reference": self.reference, "data_version": self.data_version,
            "files": self.files, **({"ranking": self.ranking} if self.ranking else {}), **({"space": self.space} if self.space else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Manifest:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise BundleError("manifest.json is not an edgerec bundle manifest (no 'format': 'edgerec-bundle')")
        version = d.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int):  # 5.0 or "5": not a version, not a newer one
            raise BundleError(f"manifest.json: format_version must be an integer (got {checks.shown(version)}); re-export")
        if version > FORMAT_VERSION or version < 1:
            raise BundleError(f"bundle format version {version!r} is not supported by this runtime "
                              f"(it reads version 1 to {FORMAT_VERSION}); update edgerec or re-export the bundle")
        for name in d["files"] if isinstance(d.get("files"), dict) else ():
            safe_relative(name)  # the gravest fault first: a path that leaves the bundle
        check_manifest(d)  # spec/manifest.schema.json: every field below has its type from here on
        return cls(
            name=d["name"], embedding_space=d["embedding_space"], dim=int(d["dim"]),
            items=ItemTableSpec.from_manifest(d["items"]), models=[ModelEntry.from_dict(m) for m in d["models"]],
            files=d["files"], defaults=d.get("defaults", {}), metrics=d.get("metrics", {}),
            budgets=d.get("budgets", {}), reference=d.get("reference", {}), data_version=d.get("data_version", {}),
            ranking=d.get("ranking", {}), space=d.get("space", {}), created=d.get("created", ""),
            edgerec_version=d.get("edgerec_version", ""), format_version=version,
        )

    def model(self, role: str, fmt: str | None = None) -> ModelEntry | None:
        return next((e for e in self.models if e.role == role and fmt in (None, e.format)), None)

    def formats(self, role: str) -> list[str]:
        return [m.format for m in self.models if m.role == role]


def embedding_space_id(files: dict[str, dict], models: list[ModelEntry], items: ItemTableSpec | dict) -> str:
    """Identity of the vector space: the item table and every user encoder that maps into it.

    Computed from the files' checksums, so a table or an encoder swapped in from
    another export (even with its checksum updated) no longer matches.
    """
    members = space_members(items)
    members += sorted(m.file for m in models if m.role == "user_encoder")
    digest = hashlib.sha256()
    for name in members:
        if name:
            digest.update(name.encode() + b"=" + files[name]["sha256"].encode() + b";")
    return digest.hexdigest()[:24]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def safe_relative(name: str) -> str:
    """A bundle-relative POSIX path, or BundleError for absolute paths, '..' and odd names."""
    if not isinstance(name, str) or not name or "\\" in name or min(name) < " ":  # no control character
        raise BundleError(f"bundle path {checks.shown(name)} is not a plain relative path")
    if name.startswith("/") or any(part in ("..", ".", "") for part in name.split("/")):  # spec rule 2
        raise BundleError(f"bundle path {checks.shown(name)} leaves the bundle directory or is not in its plain form "
                          "(no '.', '..' or empty part); the bundle is unsafe")
    return name


def resolve_inside(root: Path, name: str) -> Path:
    """The file `name` inside `root`, refusing links on the way and anything that resolves outside."""
    current = root
    for part in PurePosixPath(safe_relative(name)).parts:
        current = current / part
        if current.is_symlink():
            raise BundleError(f"bundle path {name} goes through a symbolic link; bundles hold plain files only")
    if root.resolve() not in current.resolve().parents:
        raise BundleError(f"bundle file {name} resolves outside the bundle")
    return current


# ------------------------------------------------------------------ reading


class Bundle:
    """An opened, verified bundle directory."""

    def __init__(self, root: Path, manifest: Manifest):
        self.root, self.manifest = root, manifest

    @classmethod
    def open(cls, path: str | os.PathLike, *, verify: bool = True, spare: str | os.PathLike | None = None) -> Bundle:
        """Open a bundle directory or packed file; with `verify`, check every file's size and sha256. A packed
        file is unpacked beside it, or in `spare` when its folder cannot be written (pack.unpacked)."""
        path = Path(path)
        if path.is_file():
            from edgerec.runtime.pack import unpacked
            path = unpacked(path, spare)
        if not path.is_dir():
            raise BundleError(f"{checks.file_name(path)} is not a bundle (no such directory or packed file); "
                              "create one with `edgerec export`")
        if not (manifest_path := path / MANIFEST).is_file():
            hint = ("it is a training checkpoint: make a bundle of it with `edgerec export --model ...`"
                    if (path / "config.json").is_file() else "it is not a bundle or it is incomplete")
            raise BundleError(f"{checks.file_name(path)} has no {MANIFEST}; {hint}")
        if manifest_path.is_symlink():  # spec rule 2 holds for the manifest too: it says what every other file is
            raise BundleError(f"{MANIFEST} is a symbolic link; a bundle's files are its own (copy the file in its place)")
        if (size := manifest_path.stat().st_size) > MAX_MANIFEST_BYTES:
            raise BundleError(f"{MANIFEST} is {size:,} bytes, above the {MAX_MANIFEST_BYTES:,} a manifest may have")
        try:
            raw = parse_manifest(manifest_path.read_text(encoding="utf-8"))  # spec rules 1 and 3
        except UnicodeDecodeError as exc:
            raise BundleError(f"{MANIFEST} is not UTF-8 text ({exc.reason}); the bundle is damaged") from None
        bundle = cls(path, Manifest.from_dict(raw))
        bundle.check_files(hashes=verify and not getattr(path, "verified", False))  # pack.unpacked checked a reused copy
        bundle.check_rules(named_files(raw))
        return bundle

    def check_files(self, hashes: bool = True) -> None:
        for name, meta in self.manifest.files.items():
            file = resolve_inside(self.root, name)
            if not file.is_file():
                raise BundleError(f"bundle file {name} is missing from {checks.file_name(self.root)}; copy the bundle again")
            size = file.stat().st_size
            if size != meta.get("bytes"):
                raise BundleError(f"bundle file {name} has {size} bytes, the manifest says {meta.get('bytes')}; "
                                  "it is truncated or replaced, copy the bundle again")
            if hashes and sha256_file(file) != meta.get("sha256"):
                raise BundleError(f"bundle file {name} fails its sha256 check; it is corrupt or was modified")

    def check_rules(self, named: list[str] | None = None) -> None:
        """The rules of spec/README.md the schema cannot state: one model per role and format, encoder outputs
        `dim` wide, every named file (`named`, else found) listed, one embedding space, the item table."""
        m = self.manifest  # in the spec's order: rules 5, 6, 7 and 8
        for name in named_files(m.to_dict()) if named is None else named:  # models, columns, space, scorer, ...
            if name not in m.files:
                raise BundleError(f"manifest.json: {name} is not listed with a checksum in files; re-export "
                                  "the bundle")
        if embedding_space_id(m.files, m.models, m.items) != m.embedding_space:
            raise BundleError("embedding-space mismatch: the item table and the user encoder(s) do not come from "
                              "the same export; re-export the bundle instead of mixing files")
        check_models(m.models, m.dim)
        m.items.check(self, m.dim)

    def path(self, name: str) -> Path:
        if name not in self.manifest.files:
            raise BundleError(f"{name} is not a file of this bundle")
        return resolve_inside(self.root, name)

    def array(self, name: str, mmap: bool = True) -> np.ndarray:
        """A numeric .npy array of the bundle (memory-mapped by default; never unpickles)."""
        return npy_checks.load(self.path(name), name, mmap)

    def json(self, name: str):
        try:
            return json.loads(self.path(name).read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, nesting too deep, huge integers
            raise BundleError(f"bundle file {name} is not valid JSON ({exc})") from None

    def size_bytes(self) -> int:
        return sum(m["bytes"] for m in self.manifest.files.values()) + (self.root / MANIFEST).stat().st_size


# ------------------------------------------------------------------ writing


class BundleWriter:
    """Writes files and, last, a manifest with their checksums into a staging folder (`root`) renamed to `out` when
    complete: a killed export leaves no half bundle, and of two exports into one folder the second is refused."""

    def __init__(self, root: str | os.PathLike, name: str, format_version: int = FORMAT_VERSION):
        if format_version not in range(2, FORMAT_VERSION + 1):  # older formats, for devices not updated yet
            raise BundleError(f"this edgerec writes bundle format 2 to {FORMAT_VERSION}, not {format_version!r}")
        self.out, self.name, self.format_version = Path(root), name, format_version
        self.compact = format_version >= 3  # columns in their narrowest lossless dtypes
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            raise BundleError(f"{checks.file_name(self.out)} exists and is not empty; choose a new --out folder")
        try:
            self.staging = Temporary(self.out, ".writing", folder=True)
        except OSError as exc:  # a read-only or full disk
            raise BundleError(f"cannot write into the folder of {checks.file_name(self.out)} ({exc.strerror or exc})") from None
        self.root, self.models, self.files = self.staging.path, [], {}

    def file_path(self, name: str) -> Path:
        path = self.root / safe_relative(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def add_file(self, name: str) -> str:
        """Register a file already written at `file_path(name)`."""
        path = self.file_path(name)
        self.files[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        return name

    def add_array(self, name: str, array: np.ndarray) -> str:
        array = np.ascontiguousarray(array)
        if array.dtype == object:
            raise BundleError(f"{name}: object arrays would need pickle; store strings with add_strings")
        with open(self.file_path(name), "wb") as handle:
            np.save(handle, array, allow_pickle=False)
        return self.add_file(name)

    def add_json(self, name: str, payload) -> str:
        self.file_path(name).write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")
        return self.add_file(name)

    def add_strings(self, stem: str, values: list[str]) -> dict:
        """Strings as one UTF-8 blob plus offsets, so the device reads them lazily from a memory map."""
        encoded = [v.encode("utf-8") for v in values]
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        offsets = offsets.astype(np.uint32) if self.compact and offsets[-1] < 2**32 else offsets  # format 3
        self.file_path(f"{stem}.bin").write_bytes(b"".join(encoded))
        return {"blob": self.add_file(f"{stem}.bin"), "offsets": self.add_array(f"{stem}.offsets.npy", offsets)}

    def add_model(self, entry: ModelEntry) -> None:
        self.add_file(entry.file)
        self.models.append(entry)

    def finish(self, *, dim: int, items: ItemTableSpec | dict, defaults: dict, metrics: dict,
               budgets: dict, reference: dict, data_version: dict, ranking: dict | None = None, space: dict | None = None) -> Manifest:
        """Write the manifest last, checked against the schema it must follow (`items` typed, or the
        section in its manifest form)."""
        from edgerec import __version__

        if not isinstance(items, ItemTableSpec):
            check_manifest(items, section="items")
            items = ItemTableSpec.from_manifest(items)
        space_id = embedding_space_id(self.files, self.models, items)
        when = time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", time.time())))  # fixed for reproducible builds
        manifest = Manifest(name=self.name, embedding_space=space_id, dim=dim, items=items, models=self.models,
                            files=dict(sorted(self.files.items())), defaults=defaults, metrics=metrics, budgets=budgets,
                            reference=reference, data_version=data_version, ranking=ranking or {}, space=space or {},
                            format_version=self.format_version, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", when),
                            edgerec_version=__version__)
        check_manifest(manifest.to_dict())  # a writer bug stops the export, not the device
        (self.root / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        if not self.staging.publish([*self.files, MANIFEST]):
            raise BundleError(f"{checks.file_name(self.out)} was filled by another writer while this export ran; "
                              "nothing of this export was kept there: export again into a new --out folder")
        self.root = self.out
        return manifest
