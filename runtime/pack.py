"""One-file bundles: `edgerec pack` tars a bundle directory; the runtime unpacks it safely.

Unpacking accepts only regular files and directories with plain relative
names: absolute paths, '..', links, device files, duplicate names (two
spellings of one path, "a//b" and "a/b", are one name), negative sizes and
more than MAX_MEMBERS members are refused before anything is written; a
truncated or unreadable tar is a BundleError. The unpacked copy sits next to
the packed file (or, when the app cannot write that folder, in the spare folder it names: the history's or its
cache_dir), named by the packed file's sha256, so a file replaced by other
content (even of the same size and time) is unpacked again. A copy is reused only while it still holds what the
packed file holds (its manifest, and every file with its size and sha256, checked at each open whatever `verify`
says); a damaged one is moved off and unpacked again, or refused while a running app still holds it. Each process unpacks into a private
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
import weakref
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; copies are removed by age alone
    fcntl = None

from edgerec.errors import BundleError
from edgerec.runtime.atomic import Temporary
from edgerec.runtime.bundle import MANIFEST, safe_relative, sha256_file
from edgerec.runtime.checks import file_name, shown
from edgerec.runtime.outputs import output_refusal

SUFFIX = ".edgerec"
MAX_MEMBERS = 4096  # a bundle holds tens of files; more members only make opening slow (one file each)
MANIFEST_SHA256 = "EDGEREC.manifest.sha256"  # a PAX record of the manifest member; other tar readers skip it
STALE_AFTER_S = 600  # unpacked copies of older contents are removed after this (a process may still read one)
DISCARD_WAIT_S = 5.0  # another opener checks the same copy under a shared lock for about one hashing of it


def pack(bundle_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the bundle directory as one uncompressed tar file (models are already compact)."""
    from edgerec.runtime.bundle import Bundle

    bundle = Bundle.open(bundle_dir)  # never pack a broken bundle
    root = bundle.root
    out = Path(out) if out else root.with_suffix(SUFFIX)
    if root.resolve() in out.resolve().parents:  # into the bundle itself: over its manifest, or a file it lists
        raise BundleError(f"cannot pack the bundle into {file_name(out)}, inside the bundle's own folder; pack it "
                          "into a file beside it (the default) or elsewhere")
    if (why := output_refusal(out)) is not None:  # a history, a data folder's or a checkpoint's file: as --json
        raise BundleError(f"cannot pack the bundle: {why}")
    try:
        with Temporary(out, ".packing") as tmp:  # this pack's own: two packs into one file never share one
            with tarfile.open(tmp.path, "w", format=tarfile.PAX_FORMAT) as tar:
                for name in [MANIFEST, *bundle.manifest.files]:
                    info = tar.gettarinfo(str(root / name), arcname=name)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    if name == MANIFEST:  # the one file no checksum in files covers: a flipped "k": 5 -> 4 opened
                        info.pax_headers = {MANIFEST_SHA256: sha256_file(root / name)}
                    with open(root / name, "rb") as handle:
                        tar.addfile(info, handle)
            if not tmp.publish():  # flushed first: a power cut leaves the old file or the whole new one
                raise BundleError(f"cannot write the packed bundle {file_name(out)}: a folder has that name; pack "
                                  "it into another file")
    except OSError as exc:  # a folder the app cannot write, a full disk
        raise BundleError(f"cannot write the packed bundle {file_name(out)} ({exc.strerror or exc}); pack it into "
                          "a folder this app can write, with room for it") from None
    return out


def _read_members(tar: tarfile.TarFile, path: Path) -> list[tarfile.TarInfo]:
    """The members one at a time: a negative size (a PAX "size" or a base-256 size field) makes tarfile
    step back to a header it already read, and (CPython 3.11.7, measured) read that member again forever."""
    members: list[tarfile.TarInfo] = []
    try:
        while (member := tar.next()) is not None:
            if member.size < 0 or (members and member.offset <= members[-1].offset):
                raise BundleError(f"{file_name(path)} has a member of negative size or one that goes back in the "
                                  "file; it is damaged or crafted, pack the bundle again with `edgerec pack`")
            members.append(member)
            if len(members) > MAX_MEMBERS:
                raise BundleError(f"{file_name(path)} holds more than {MAX_MEMBERS} files and folders, where a bundle "
                                  "has tens; it is not a packed bundle: pack one with `edgerec pack`")
    except (tarfile.TarError, OSError) as exc:  # a header or member cut short
        raise BundleError(f"{file_name(path)} cannot be unpacked ({exc}); it is truncated or damaged") from None
    return members


def _check_members(tar: tarfile.TarFile, path: Path) -> list[tarfile.TarInfo]:
    members = _read_members(tar, path)
    if not any(m.name == MANIFEST for m in members):
        raise BundleError(f"{file_name(path)} holds no {MANIFEST}; it is not a packed edgerec bundle")
    names = []
    for member in members:
        try:
            names.append(safe_relative(member.name))  # plain form (spec rule 2): "a//b" or "a/./b" is refused
        except BundleError as exc:
            raise BundleError(f"{file_name(path)}: {exc}") from None
        if not (member.isfile() or member.isdir()):
            raise BundleError(f"{file_name(path)}: member {shown(member.name)} is a link or special file; refusing to unpack")
    if len(set(names)) != len(names):
        raise BundleError(f"{file_name(path)} holds a file name twice; it is not a packed edgerec bundle, pack it again")
    return members


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def unpacked(path: str | os.PathLike, spare: str | os.PathLike | None = None) -> Path:
    """The directory of a packed bundle, unpacking it (safely) when needed: next to the file, or in
    `spare` when the app cannot write the file's folder (a read-only app or system partition)."""
    path = Path(path)
    name = file_name(path)
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise BundleError(f"packed bundle {name} cannot be read ({exc.strerror or exc}); check that the app may "
                          "read it") from None
    homes = [path.parent] + ([Path(spare)] if spare is not None else [])
    for home in homes:  # a copy unpacked earlier is used even where nothing can be written now
        if (held := Held.copy(home / f".{path.name}.{digest[:24]}.unpacked")) is None:
            continue
        if _intact(held, path):  # checked whatever `verify` says: the copy is outside the packed file's digest
            held.verified = True
            _remove_stale(path, held)  # copies of earlier contents, once no running app holds them
            return held
        held.release()
        if not _discard(held, held.identity):
            raise BundleError(f"the unpacked copy of {name} is damaged (a file of it is missing or changed) and "
                              "another app still uses it or it cannot be removed: close that app and open the bundle "
                              f"again, or delete the hidden folder {held.name}")
    home = next((h for h in homes if h.is_dir() and _writable(h)), None)
    if home is None:
        raise BundleError(f"packed bundle {name} is in a folder this app cannot write, and a packed bundle is "
                          "unpacked beside it: open it with a history file or cache_dir= in a writable folder (it "
                          "is unpacked there), or unpack it once (tar -xf) and open the folder")
    target = home / f".{path.name}.{digest[:24]}.unpacked"
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=home))
    except OSError as exc:
        raise BundleError(f"cannot unpack {name} ({exc.strerror or exc}); free some space or open it with "
                          "cache_dir= in another folder") from None
    try:
        _extract(path, staging)
        (staging / ".packed-from").write_text(json.dumps({"sha256": digest}))
        try:
            os.rename(staging, target)  # atomic; fails if another process published first
        except OSError:
            if not (target / ".packed-from").is_file():
                raise BundleError(f"could not publish the unpacked copy of {name}; check that its folder is "
                                  "writable") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    held = Held.copy(target)
    _remove_stale(path, target)
    if held is None:  # removed between its publication and the lock: by a process that saw it 10 minutes old
        raise BundleError(f"the unpacked copy of {name} was removed as it was opened; open it again")
    return held


class Held(type(Path())):
    """An unpacked copy's folder, held by a shared lock while this object lives (its Bundle's life): a process
    opening the file's next contents removed the copy a running app still loaded its models from, and that app
    served fallback lists until it restarted."""

    verified = False  # unpacked() checked every file's sha256 on this open: Bundle.open need not again

    @classmethod
    def copy(cls, folder: Path) -> Held | None:
        """`folder` held, or None when it is not (or no longer) a published copy."""
        try:
            fd = os.open(folder / ".packed-from", os.O_RDONLY)
        except OSError:
            return None
        held = cls(folder)
        held.release = weakref.finalize(held, os.close, fd)  # release(): let go of the lock before its time
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a remover deletes it, then finds it gone
        held.identity = os.fstat(fd)
        try:  # the same file still: not a copy removed meanwhile, with a new one published under its name
            return held if os.path.samestat(held.identity, os.stat(folder / ".packed-from")) else None
        except OSError:
            return None


def _intact(folder: Path, path: Path) -> bool:
    """Whether an unpacked copy still holds what the packed file `path` holds: its manifest, and every file that
    lists with its size and sha256. A cleaner removed a file or a bit flipped: the damaged copy was reused
    forever, every open failed its checksums, and with verify=False it was served as it was."""
    try:
        manifest = (folder / MANIFEST).read_bytes()
        if manifest != _packed_manifest(path):
            return False
        for name, meta in json.loads(manifest)["files"].items():
            file = folder / safe_relative(name)
            if file.is_symlink() or file.stat().st_size != meta["bytes"] or sha256_file(file) != meta["sha256"]:
                return False
        return True
    except (OSError, ValueError, TypeError, KeyError, AttributeError, BundleError):
        return False


def _packed_manifest(path: Path) -> bytes | None:
    """The manifest's bytes in the packed file (its first member as `pack` writes it; this file's contents were
    unpacked once already, so its members passed _check_members)."""
    try:
        with tarfile.open(path, "r:") as tar:
            for count, member in enumerate(tar):
                if member.name == MANIFEST and member.isfile():
                    return tar.extractfile(member).read()
                if count > MAX_MEMBERS:
                    return None
    except (tarfile.TarError, OSError, EOFError):
        pass
    return None


def _discard(folder: Path, seen: os.stat_result) -> bool:
    """Move a damaged copy off its name (to a staging name _remove_stale deletes) and delete it, unless a running
    app holds it: it still reads models from there. True when the name is free, or holds another copy than the one
    checked (a process that found the damage too unpacked again meanwhile)."""
    try:
        fd = os.open(folder / ".packed-from", os.O_RDONLY)
    except OSError:
        return not folder.exists()
    aside = folder.with_name(f"{folder.name.removesuffix('.unpacked')}.damaged-{os.getpid()}.tmp")
    try:
        if fcntl is not None and not _lock_exclusive(fd):
            return False  # a running app holds it
        if not os.path.samestat(os.fstat(fd), seen):
            return True
        try:  # the name may hold a new copy by now: a sibling opener discarded this one and unpacked again
            if not os.path.samestat(os.stat(folder / ".packed-from"), seen):
                return True
        except FileNotFoundError:
            return True
        os.rename(folder, aside)  # one step: an opener finds the copy whole or not at all
    except OSError:
        return False
    finally:
        os.close(fd)
    shutil.rmtree(aside, ignore_errors=True)
    return True


def _lock_exclusive(fd: int) -> bool:
    """An exclusive lock within DISCARD_WAIT_S: another process opening the same file holds a shared lock while it
    checks the copy, and refusing at once told it to close an app that did not exist (4 of 12 racing opens)."""
    deadline = time.monotonic() + DISCARD_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def _extract(path: Path, staging: Path) -> None:
    try:
        with tarfile.open(path, "r:") as tar:
            members = _check_members(tar, path)
            if sum(m.size for m in members) > path.stat().st_size:
                raise BundleError(f"{file_name(path)} is truncated (its members need more bytes than the file has); "
                                  "copy or pack it again")
            tar.extractall(staging, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"{file_name(path)} cannot be unpacked ({_inside(exc, staging)}); it is truncated or damaged, "
                          "or not a packed bundle: pack one with `edgerec pack`") from None
    _check_whole(path, staging, next(m for m in members if m.name == MANIFEST))


def _check_whole(path: Path, staging: Path, manifest: tarfile.TarInfo) -> None:
    """The unpacked copy is the packed bundle whole: its manifest has the digest `pack` recorded, and every file
    it lists came out (tarfile stops without a word at a header cut short, and the bundle then said a file was
    missing from a hidden folder the user never made)."""
    recorded = manifest.pax_headers.get(MANIFEST_SHA256)
    if recorded is not None and sha256_file(staging / MANIFEST) != recorded:
        raise BundleError(f"{file_name(path)}: its {MANIFEST} fails the sha256 check recorded when it was packed; "
                          "the file is damaged, copy or pack it again")
    try:
        listed = json.loads((staging / MANIFEST).read_bytes()).get("files", {})
        missing = [name for name in listed if not (staging / name).is_file()] if isinstance(listed, dict) else []
    except (ValueError, AttributeError, TypeError, OSError):
        return  # not a manifest at all: opening the bundle says what is wrong with it
    if missing:
        raise BundleError(f"{file_name(path)} holds {len(listed) - len(missing)} of the {len(listed)} files its "
                          f"manifest lists ({shown(missing[0])} is not in it); it is truncated or damaged, copy or "
                          "pack it again")


def _inside(exc: BaseException, staging: Path) -> str:
    """The error without the unpack folder's full path (an app folder can name the user): members by their names."""
    text = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.strerror and exc.filename else str(exc)
    for folder in {str(staging), os.path.realpath(staging)}:
        text = text.replace(folder + os.sep, "").replace(folder, ".")
    return text


def _remove_stale(path: Path, keep: Path) -> None:
    """Unpacked copies of earlier contents of this file, and staging folders a killed unpack left,
    once no process can still be starting on them."""
    home = keep.parent
    for other in [*home.glob(f".{path.name}.*.unpacked"), *home.glob(f".{path.name}.*.tmp")]:
        try:
            if other != keep and time.time() - other.stat().st_mtime > STALE_AFTER_S:
                _remove_unheld(other)
        except OSError:
            pass


def _remove_unheld(folder: Path) -> None:
    """Remove `folder` unless a live Bundle holds it (a staging folder has no lock file: it is removed)."""
    try:
        fd = os.open(folder / ".packed-from", os.O_RDONLY)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        return
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError: held by a running app, kept
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        os.close(fd)
