"""Edit a copy of a bundle so that only the edit can make it fail: the manifest's checksums and
embedding space are made consistent again after each change."""

from __future__ import annotations

import json

import numpy as np

from edgerec.errors import BundleError
from edgerec.runtime.bundle import Manifest, embedding_space_id, sha256_file


def rewrite(root, change) -> None:
    """Edit the manifest, then make checksums and the embedding space consistent again, so only the
    edit itself can fail."""
    path = root / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    for name, meta in data["files"].items():
        if (root / name).is_file():
            meta.update(bytes=(root / name).stat().st_size, sha256=sha256_file(root / name))
    try:
        m = Manifest.from_dict(data)
        data["embedding_space"] = embedding_space_id(m.files, m.models, m.items)
    except (BundleError, KeyError):
        pass  # the edit broke the schema itself: leave the rest as it is
    path.write_text(json.dumps(data))


def replace_array(root, name, array) -> None:
    np.save(root / name, array)
    rewrite(root, lambda data: None)


def flatten_columns(root, values: dict) -> None:
    """Make each named column of a bundle copy at `root` hold one value for every item (a code for a
    categorical column): what a catalog without that metadata, as MovieLens's, looks like."""
    for name, value in values.items():
        stored = np.load(root / f"items/{name}.npy")
        np.save(root / f"items/{name}.npy", np.full(len(stored), value, stored.dtype))
    rewrite(root, lambda data: None)
