"""Files an output must not replace: a history (any SQLite database) and the files of a bundle, a data folder
or a checkpoint, at any depth inside a bundle (items/embeddings.npy). `--json bundle/manifest.json` said "wrote"
and left a bundle that no longer opened; the CLI, `pack` and the device tools (which may not import click) ask
the same question here. A new file beside a bundle's files is the user's choice and is written."""

from __future__ import annotations

from pathlib import Path

from edgerec.runtime.history_care import SQLITE_HEADER


def _our_folder(folder: Path) -> str | None:
    """What edgerec folder `folder` is (a bundle, a data folder, a checkpoint), or None."""
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            with open(manifest, "rb") as handle:
                if b"edgerec-bundle" in handle.read(4096):
                    return "a bundle"
        except OSError:  # a folder above the output we may not read (the walk up): not a bundle of ours
            pass
    if (folder / "dataset.json").is_file() and any((folder / f"interactions.{x}").is_file() for x in ("csv", "parquet")):
        return "a data folder"
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return "a checkpoint"
    return None


def output_refusal(path: str | Path) -> str | None:
    """Why writing `path` would destroy something of ours, or None when it may be written."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, "rb") as existing:
        if existing.read(len(SQLITE_HEADER)) == SQLITE_HEADER:  # a history (or any database) mistyped as the output
            return f"{path.name} is an SQLite database; writing over it would destroy it: choose another file " \
                   "for the output"
    kind, folder = _our_folder(path.parent), path.parent
    if kind is None:  # deeper in a bundle (items/embeddings.npy): a folder above it is the bundle
        folder = next((f for f in path.resolve().parents if _our_folder(f) == "a bundle"), None)
        kind = None if folder is None else "a bundle"
    if kind is not None:
        return f"{path.name} is a file of {kind} ({folder.name}); writing over it would break it: choose " \
               "another file for the output"
    return None
