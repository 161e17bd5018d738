"""File plumbing the derived golden bundles (`golden/ranked`, `golden/rows`) share: a fresh folder holding some
of the golden bundle's files, the files' checksums, and the manifest's embedding space by spec rule 6.

The space is computed here from the spec's words, not by the runtime's reader: the golden cases check that
reader, so they do not lean on it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path


def start_from(golden: Path, out: Path) -> tuple[dict, dict]:
    """The golden manifest and its ONNX user encoder's entry; `out` emptied (made anew)."""
    source = json.loads((Path(golden) / "manifest.json").read_text())
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    encoder = next(m for m in source["models"] if m["role"] == "user_encoder" and m["format"] == "onnx")
    return source, encoder


def copy_files(golden: Path, out: Path, names: list[str]) -> None:
    for name in names:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(golden / name, out / name)


def checksum(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def write_manifest(out: Path, manifest: dict, encoder: dict) -> None:
    """Sets the embedding space (spec rule 6: the table's files and the encoder, in that order) and writes
    manifest.json."""
    items, files = manifest["items"], manifest["files"]
    emb = items["embeddings"]
    members = [emb["file"], *[n for n in (emb.get("scales"), items.get("encoder_inputs")) if n], encoder["file"]]
    text = "".join(f"{name}={files[name]['sha256']};" for name in members)
    manifest["embedding_space"] = hashlib.sha256(text.encode()).hexdigest()[:24]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
