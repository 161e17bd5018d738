"""The golden bundle `golden/content`: the golden items and ONNX user encoder with a space whose bridges read
content (spec §8, bridge input "items+content"): the source's pooled item vectors followed by its pooled
content vectors, so each bridge's weights have dim + d_content rows. Its case plays the golden transfer
script through those bridges.

The content rows and anchor are the golden bundle's own; the bridges are fit on the golden world's audio
users (export/golden.py's seeded synthetic data, made again in a scratch folder), source and target being
this bundle itself, as the golden bundle's are.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

CONTENT = "content"  # the folder in spec/golden
DROPPED_FILES = ("user_encoder.tflite",)  # ONNX only: the cases of this bundle play on onnx


def _onnx_only(golden: Path, out: Path) -> Path:
    """A copy of the golden bundle without its TFLite encoder (its embedding space computed again)."""
    shutil.copytree(golden, out)
    manifest = json.loads((out / "manifest.json").read_text())
    for name in DROPPED_FILES:
        (out / name).unlink()
        manifest["files"].pop(name)
    manifest["models"] = [m for m in manifest["models"] if m["file"] not in DROPPED_FILES]
    emb = manifest["items"]["embeddings"]
    members = [emb["file"], emb["scales"], *sorted(m["file"] for m in manifest["models"] if m["role"] == "user_encoder")]
    text = "".join(f"{name}={manifest['files'][name]['sha256']};" for name in members)  # spec rule 6
    manifest["embedding_space"] = hashlib.sha256(text.encode()).hexdigest()[:24]
    manifest["name"] = "golden-content"
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return out


def build_content_bundle(golden: Path, out: Path) -> Path:
    """`out` (replaced): the ONNX-only golden bundle whose two bridges (mapping, direct) take "items+content"."""
    from edgerec.data import write_synth
    from edgerec.export.golden import WORLD
    from edgerec.export.space import declare_space, fit_bundle_bridge
    from edgerec.runtime.bundle import Bundle

    golden, out = Path(golden), Path(out)
    space = json.loads((golden / "manifest.json").read_text())["space"]
    content = np.load(golden / space["content"]["file"])
    if out.exists():
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory(prefix="edgerec-golden-content-") as scratch:
        plain, data = _onnx_only(golden, Path(scratch) / "plain"), Path(scratch) / "data"
        write_synth(WORLD, str(data))
        opened = Bundle.open(plain)
        bridges = [fit_bundle_bridge(opened, opened, data, by="modality", source_domain="audio",
                                     target_domain="video", method=method, source_input="items+content")
                   for method in ("mapping", "direct")]
        declare_space(plain, out, space_id=space["id"], domains=space["domains"], anchor=space["anchor"],
                      content=content, bridges=bridges)
    return out


def content_case(transfer):
    """The golden transfer script (a golden.Case) on this bundle: its mapping and direct steps go through the
    "items+content" bridges."""
    from edgerec.runtime.golden import Case

    return Case("transfer_with_content", "the transfer script on the content bundle, whose mapping and direct "
                "bridges read the listener's pooled item vectors followed by the pooled content vectors (spec "
                "section 8, input items+content); an item added on the device has neither and joins no pool",
                json.loads(json.dumps(transfer.steps)), bundle=CONTENT, engines=("onnx",))
