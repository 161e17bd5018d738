"""One-file bundles: `edgerec pack` tars a bundle directory; the runtime unpacks it safely.

Unpacking accepts only regular files and directories with plain relative
names: absolute paths, '..', links, device files and duplicate names are
refused before anything is written; a truncated or unreadable tar is a
BundleError. The unpacked copy sits next to the packed file, named by the
packed file's sha256, so a file replaced by other content (even of the same
size and time) is unpacked again. Each process unpacks into a private
temporary folder and publishes it with one atomic rename: processes racing
to open one fresh file never see a half-written copy.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from edgerec.errors import BundleError
from edgerec.runtime.bundle import MANIFEST, safe_relative, sha256_file

SUFFIX = ".edgerec"
STALE_AFTER_S = 600  # unpacked copies of older contents are removed after this (a process may still read one)


def pack(bundle_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the bundle directory as one uncompressed tar file (models are already compact)."""
    from edgerec.runtime.bundle import Bundle

    bundle = Bundle.open(bundle_dir)  # never pack a broken bundle
    root = bundle.root
    out = Path(out) if out else root.with_suffix(SUFFIX)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in [MANIFEST, *bundle.manifest.files]:
            info = tar.gettarinfo(str(root / name), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(root / name, "rb") as handle:
                tar.addfile(info, handle)
    os.replace(tmp, out)
    return out


def _check_members(tar: tarfile.TarFile, path: Path) -> list[tarfile.TarInfo]:
    try:
        members = tar.getmembers()
    except (tarfile.TarError, OSError) as exc:  # a header or member cut short
        raise BundleError(f"{path} cannot be unpacked ({exc}); it is truncated or damaged") from None
    if not any(m.name == MANIFEST for m in members):
        raise BundleError(f"{path} holds no {MANIFEST}; it is not a packed edgerec bundle")
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise BundleError(f"{path} holds a file name twice; it is not a packed edgerec bundle, pack it again")
    for member in members:
        try:
            safe_relative(member.name)
        except BundleError as exc:
            raise BundleError(f"{path}: {exc}") from None
        if not (member.isfile() or member.isdir()):
            raise BundleError(f"{path}: member {member.name} is a link or special file; refusing to unpack")
    return members


def unpacked(path: str | os.PathLike) -> Path:
    """The directory of a packed bundle, unpacking it (safely) when needed."""
    path = Path(path)
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise BundleError(f"{path} cannot be read ({exc})") from None
    target = path.with_name(f".{path.name}.{digest[:24]}.unpacked")
    if (target / ".packed-from").is_file():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        _extract(path, staging)
        (staging / ".packed-from").write_text(json.dumps({"sha256": digest}))
        try:
            os.rename(staging, target)  # atomic; fails if another process published first
        except OSError:
            if not (target / ".packed-from").is_file():
                raise BundleError(f"could not publish the unpacked copy of {path} at {target}; check that "
                                  "its folder is writable") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _remove_stale(path, target)
    return target


def _extract(path: Path, staging: Path) -> None:
    try:
        with tarfile.open(path, "r:") as tar:
            members = _check_members(tar, path)
            if sum(m.size for m in members) > path.stat().st_size:
                raise BundleError(f"{path} is truncated (its members need more bytes than the file has); "
                                  "copy or pack it again")
            tar.extractall(staging, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"{path} cannot be unpacked ({exc}); it is truncated or damaged, or not a packed "
                          "bundle: pack one with `edgerec pack`") from None


def _remove_stale(path: Path, keep: Path) -> None:
    """Unpacked copies of earlier contents of this file, and staging folders a killed unpack left,
    once no process can still be starting on them."""
    for other in [*path.parent.glob(f".{path.name}.*.unpacked"), *path.parent.glob(f".{path.name}.*.tmp")]:
        try:
            if other != keep and time.time() - other.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(other, ignore_errors=True)
        except OSError:
            pass
