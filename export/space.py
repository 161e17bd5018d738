"""Declaring a bundle's shared space: a copy of the bundle with a `space` section (id, anchor,
domains), its items' vectors in the shared content space, and bridges from other bundles.

The section and its files are added to the manifest as it is (every other section kept), the copy
is checked against the schema and opened with full verification before this returns.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.data.domains import split_domains
from edgerec.data.schema import Dataset
from edgerec.data.split import consumed_sequences
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError, ExportError
from edgerec.models.content import item_texts
from edgerec.models.multilingual import PACKAGED, MultilingualTeacher
from edgerec.models.transfer import (
    HASHED_DIM,
    LinearBridge,
    consumed_matrix,
    fit_bridge,
    fit_direct_bridge,
    hashed_text_vectors,
)
from edgerec.runtime.atomic import Temporary
from edgerec.runtime.bundle import MANIFEST, Bundle, sha256_file
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.checks import shown
from edgerec.runtime.schema import check_manifest
from edgerec.runtime.space import BRIDGE_INPUTS, SharedSpace
from edgerec.runtime.transfer import pooled


@dataclass
class BridgeFile:
    source_domain: str
    source_space: str  # the source bundle's embedding_space id
    bridge: LinearBridge
    input: str = "items"  # or "items+content": the source's pooled content vectors follow its item vectors


def content_anchor(catalog, encoder: str | Path | None = None) -> tuple[np.ndarray, str]:
    """Items' vectors in the shared content space, and the anchor's name: "use-multilingual" (the
    packaged multilingual encoder), a sentence-encoder folder (named by its files' checksum), or,
    without either, hashed words."""
    texts = item_texts(catalog)
    if encoder is None:
        return hashed_text_vectors(texts), f"hashed-words-{HASHED_DIM}"
    if str(encoder) == PACKAGED:
        teacher = MultilingualTeacher()
        return teacher.encode(texts), teacher.anchor
    from edgerec.models.content import ContentTeacher

    digest = hashlib.sha256()
    for path in sorted(Path(encoder).rglob("*")):
        if path.is_file() and path.suffix in (".json", ".safetensors", ".bin", ".txt", ".model"):
            digest.update(path.name.encode() + sha256_file(path).encode())
    return ContentTeacher(encoder).encode(texts), f"encoder-{digest.hexdigest()[:16]}"


SPACE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # spec: manifest.schema.json space.id


def declare_space(bundle: str | Path, out: str | Path, *, space_id: str, domains: list[str], anchor: str = "",
                  content: np.ndarray | None = None, bridges: list[BridgeFile] = ()) -> Bundle:
    """Copy `bundle` to `out` with the space section; `content` has one row per item of the bundle."""
    if not isinstance(space_id, str) or not SPACE_ID.fullmatch(space_id):  # the schema's pattern, said as a rule
        raise ConfigError(f"space id {shown(space_id)} must be 1 to 64 letters, digits, '.', '_' or '-', starting with a "
                          "letter or digit (e.g. media-v1)")
    source, target = Bundle.open(bundle), Path(out)
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target.name} exists and is not empty; choose a new --out folder")
    raw = json.loads((source.root / MANIFEST).read_text(encoding="utf-8"))
    staging = Temporary(target, ".writing", folder=True)  # the copy appears at `target` whole, with its new manifest, or not at all
    try:
        _declare(source, staging.path, raw, space_id, domains, anchor, content, bridges)
    except BaseException:
        staging.discard()
        raise
    if not staging.publish([MANIFEST, *raw["files"]]):
        raise ConfigError(f"{target.name} was filled by another writer meanwhile; declare the space again into a "
                          "new --out folder")
    return Bundle.open(target)


def _declare(source: Bundle, out: Path, raw: dict, space_id: str, domains: list[str], anchor: str,
             content: np.ndarray | None, bridges: list[BridgeFile]) -> None:
    """The copy of `source` in `out` with the space section in its manifest (`raw`)."""
    manifest = source.manifest
    for name in [MANIFEST, *manifest.files]:  # the bundle's own files only: its folder may hold a device's
        (out / name).parent.mkdir(parents=True, exist_ok=True)  # history (history.db), an index cache, notes
        shutil.copyfile(source.root / name, out / name)
    old = raw.get("space", {})  # a bundle declared before: its space files give way to the new ones
    old_bridges = [b.get(key) for b in old.get("bridges", []) for key in ("weights", "bias", "prior")]
    for name in [old.get("content", {}).get("file"), *old_bridges]:
        if name:
            raw["files"].pop(name, None)
            (out / name).unlink(missing_ok=True)

    def add(name: str, array: np.ndarray) -> str:
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
        raw["files"][name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        return name

    section: dict = {"id": space_id, "anchor": anchor, "domains": list(domains)}
    if content is not None:
        if content.shape[0] != manifest.items.count:
            raise ExportError(f"content vectors have {content.shape[0]} rows, the bundle has {manifest.items.count} "
                              "items; encode the bundle's own catalog")
        section["content"] = {"file": add("space/content.npy", content.astype(np.float16)), "dtype": "float16"}
    entries = []
    for i, b in enumerate(bridges):
        parts = (b.bridge.weights, b.bridge.bias, b.bridge.prior)
        if not all(np.isfinite(part).all() for part in parts if part is not None):
            raise ExportError(f"bridge {i} holds NaN or infinite values (a degenerate fit); fit it again")
        if b.bridge.weights.shape[1] != manifest.dim:
            raise ExportError(f"bridge {i} maps into {b.bridge.weights.shape[1]} dimensions, the bundle has {manifest.dim}")
        entry = {"source_domain": b.source_domain, "source_space": b.source_space,
                 "weights": add(f"space/bridge{i}.weights.npy", b.bridge.weights.astype(np.float32)),
                 "bias": add(f"space/bridge{i}.bias.npy", b.bridge.bias.astype(np.float32)),
                 "users": int(b.bridge.users)}
        if b.input != "items":
            entry["input"] = b.input
        if b.bridge.prior is not None:
            if b.bridge.prior.shape != (manifest.items.count,):
                raise ExportError(f"bridge {i} has a prior for {b.bridge.prior.shape[0]} items, the bundle has "
                                  f"{manifest.items.count}; fit it on this bundle's item table")
            entry["prior"] = add(f"space/bridge{i}.prior.npy", b.bridge.prior.astype(np.float32))
        entries.append(entry)
    if entries:
        section["bridges"] = entries
    raw["space"] = section
    raw["files"] = dict(sorted(raw["files"].items()))
    check_manifest(raw)
    (out / MANIFEST).write_text(json.dumps(raw, indent=2, ensure_ascii=False))


def bundle_rows(bundle: Bundle, part: Dataset) -> tuple[list[np.ndarray], np.ndarray]:
    """Each user's consumed items of `part` as rows of the bundle's item table (items the bundle does
    not know left out), oldest first, and the bundle's item vectors (dequantised)."""
    seq, _ = consumed_sequences(part.interactions, part.n_users)
    catalog = ItemCatalog(bundle)
    index = catalog.index
    row_of = np.array([index.get(item, -1) for item in part.catalog.item_ids], np.int64)
    rows = [row_of[seq.of(user)] for user in range(part.n_users)]
    return [r[r >= 0] for r in rows], catalog.vectors(np.arange(catalog.base_count))


def pooled_in_bundle(bundle: Bundle, part: Dataset, recent: int = 50, content: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Each user's pooled vector over the bundle's item table (the device's `pooled` over the newest
    `recent` consumed items of `part` the bundle knows), and which users have any (a mask); with
    `content`, over the bundle's space.content rows instead."""
    rows, vectors = bundle_rows(bundle, part)
    if content:
        vectors = SharedSpace.of(bundle).content
        if vectors is None:
            raise ConfigError(f"bundle {bundle.manifest.name!r} carries no space.content vectors; declare its space "
                              "with `edgerec domains space` first, or fit the bridge with --input items")
        vectors = np.asarray(vectors, np.float32)
    out = np.zeros((part.n_users, vectors.shape[1]), np.float32)
    has = np.zeros(part.n_users, bool)
    for user, mine in enumerate(rows):
        if len(mine):
            out[user], has[user] = pooled(vectors[mine[-recent:]]), True
    return out, has


def fit_bundle_bridge(source: Bundle, target: Bundle, data_dir: str | Path, *, by: str, source_domain: str,
                      target_domain: str, ridge: float = 1.0, method: str = "mapping",
                      source_input: str = "items") -> BridgeFile:
    """The bridge from `source`'s item space (with `source_input` "items+content", followed by its content space)
    to `target`'s, fit on the users of `data_dir` with history in both domains (user ids are matched
    across domains by the data set, never written to the bundle): to their pooled target vectors
    (`mapping`) or to their target consumption itself (`direct`)."""
    if method not in ("mapping", "direct"):
        raise ConfigError(f"unknown bridge method {method!r}; use mapping or direct")
    if source_input not in BRIDGE_INPUTS:
        raise ConfigError(f"unknown bridge input {source_input!r}; use {' or '.join(BRIDGE_INPUTS)}")
    if source_domain == target_domain:  # the users' source history would be the target history it is fit to
        raise ConfigError(f"SOURCE and TARGET are both the {source_domain!r} domain: a bridge maps one domain into "
                          "another; give bundles of two domains (`edgerec domains split`)")
    parts = split_domains(load_dataset(data_dir), by, allow_empty=True)  # only the two named domains are used
    for name in (source_domain, target_domain):
        if name not in parts:
            raise ConfigError(f"no domain {name!r} in the data by {by!r} (it has {', '.join(sorted(parts))})")
    src, has_src = pooled_in_bundle(source, parts[source_domain])
    if source_input == "items+content":
        src = np.concatenate([src, pooled_in_bundle(source, parts[source_domain], content=True)[0]], axis=1)
    tgt, has_tgt = pooled_in_bundle(target, parts[target_domain])
    both = has_src & has_tgt
    if method == "mapping":
        return BridgeFile(source_domain, source.manifest.embedding_space, fit_bridge(src[both], tgt[both], ridge),
                          source_input)
    rows, vectors = bundle_rows(target, parts[target_domain])
    users = np.flatnonzero(both)
    consumed = consumed_matrix([rows[u] for u in users], len(vectors))
    return BridgeFile(source_domain, source.manifest.embedding_space,
                      fit_direct_bridge(src[both], consumed, vectors, ridge), source_input)
