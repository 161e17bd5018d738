"""One-file bundles: `edgerec pack` tars a bundle directory; the runtime unpacks it safely.

Unpacking accepts only regular files and directories with plain relative
names: absolute paths, '..', links and device files are refused before
anything is written. The unpacked copy sits next to the packed file and is
reused while the packed file is unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

from edgerec.errors import BundleError
from edgerec.runtime.bundle import MANIFEST, safe_relative

SUFFIX = ".edgerec"


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
    stat = path.stat()
    stamp = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    target = path.with_name(f".{path.name}.unpacked")
    marker = target / ".packed-from"
    if marker.exists():
        try:
            if json.loads(marker.read_text()) == stamp:
                return target
        except json.JSONDecodeError:
            pass
    try:
        tar = tarfile.open(path, "r:")
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"{path} is not a packed bundle ({exc}); pack one with `edgerec pack`") from None
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    with tar:
        members = _check_members(tar, path)
        try:
            tar.extractall(staging, members=members, filter="data")
        except (tarfile.TarError, OSError) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise BundleError(f"{path} cannot be unpacked ({exc}); it is truncated or damaged") from None
    (staging / ".packed-from").write_text(json.dumps(stamp))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target
