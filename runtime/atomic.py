"""Files and folders that appear whole or not at all.

Each is written under a private temporary name beside its place, flushed to the
disk, then renamed into place in one atomic step: a process killed half-way
leaves a temporary, never a part under the real name, and two writers never
share a temporary, so the last rename wins whole and nothing is interleaved. A
writer holds its temporary locked (POSIX); the next writer of the same place
removes the temporaries no live process holds (a killed writer's, or a failed
one's once collected).
"""

from __future__ import annotations

import errno
import glob
import os
import weakref
from contextlib import suppress
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; abandoned temporaries stay until removed by hand
    fcntl = None


def temporary(path: Path, suffix: str) -> Path:
    """A name beside `path` no other writer uses (hidden, so listings and globs of real files skip it)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}{suffix}")


def sync_folder(folder: Path) -> None:
    """Make a rename or a new entry in `folder` durable (not possible, nor needed, on Windows)."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _lock(fd: int) -> bool:
    """Hold `fd`'s file locked; False when a live writer holds it already."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _held(fd: int, path: Path) -> bool:
    """Locked `fd`, and `path` still names its file: between a new temporary's creation and its lock another
    writer's clear_abandoned may lock it as abandoned and remove it (3 processes writing one file lost 34 of
    9,000 writes so)."""
    if not _lock(fd):
        return False
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def clear_abandoned(target: Path, suffix: str) -> None:
    """Remove the temporaries of `target` (files or folders ending in `suffix`) whose writer is gone."""
    if fcntl is None:
        return
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*{suffix}"):
        try:
            fd = os.open(leftover, os.O_RDONLY)
        except OSError:
            continue
        try:
            free = _lock(fd)
        finally:
            os.close(fd)
        if free:  # an SQLite file's journal, log and index go with it (named after it, so the glob skips them)
            for part in ("", "-journal", "-wal", "-shm"):
                _remove(leftover.with_name(leftover.name + part))


def private_folders(path: Path) -> None:
    """The missing folders above `path`, owner-only (mkdir(parents=True) gives all but the last mode 0777)."""
    for folder in reversed([path.parent, *path.parent.parents]):
        if not folder.is_dir():
            folder.mkdir(mode=0o700, exist_ok=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        import shutil  # here: a device that never finds a leftover folder need not load it

        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(OSError):
            path.unlink(missing_ok=True)


class Temporary:
    """A private, locked temporary beside `target`: a new empty file, or a folder with `folder=True`.
    `publish()` flushes it and renames it to `target`; `discard()` removes it. `parents=False`: a missing folder
    of `target` is an error (FileNotFoundError), not made."""

    def __init__(self, target: Path, suffix: str, *, folder: bool = False, mode: int = 0o666, parents: bool = True):
        self.target = target
        self.error: OSError | None = None  # why publish() failed
        if parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        clear_abandoned(target, suffix)
        while True:
            self.path = temporary(target, suffix)
            if folder:
                self.path.mkdir()
                fd = os.open(self.path, os.O_RDONLY) if fcntl is not None else None  # Windows opens no folders
            else:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # 0o666: what the umask leaves
            if fd is None or _held(fd, self.path):
                break
            os.close(fd)  # another writer's clear_abandoned took it between its creation and the lock: anew
            _remove(self.path)
        self._close = weakref.finalize(self, os.close, fd) if fd is not None else (lambda: None)
        self.fd = fd  # the lock goes with it: released when published, discarded, collected or killed

    def publish(self, files=()) -> bool:
        """Flush the file (or a folder's `files`, names inside it) and rename it to the target; False, and the
        temporary removed, when that failed (a folder's target filled by another writer meanwhile, a file's
        target a folder, a mount point); `error` then holds the OSError, for a message naming the real cause."""
        for name in files:
            fd = os.open(self.path / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for folder in {(self.path / name).parent for name in files} - {self.path}:
            sync_folder(folder)  # the entries of subfolders (items/...)
        if self.fd is not None:
            os.fsync(self.fd)
        if fcntl is None:
            self._close()  # Windows renames no open file (and has no lock to keep)
        try:
            if self.path.is_dir() and self.target.is_dir() and not any(self.target.iterdir()):
                self.target.rmdir()  # an empty folder made for it: Windows renames onto nothing only
            os.replace(self.path, self.target)  # a folder's target: none, or an empty folder
        except OSError as exc:
            self.error = exc
            self.discard()
            return False
        sync_folder(self.target.parent)
        self._close()
        return True

    def __enter__(self) -> Temporary:
        return self

    def __exit__(self, failed, *_) -> None:
        if failed is not None:  # the writer failed half-way: nothing of it stays
            self.discard()

    def discard(self) -> None:
        _remove(self.path)
        self._close()


def write_file(path: Path, data: bytes | str, mode: int = 0o666) -> None:
    """`data` (text as UTF-8) as the file at `path`, whole or not at all; mode 0o600: readable by its owner only."""
    try:
        with Temporary(path, ".tmp", mode=mode) as tmp:
            tmp.path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
            if not tmp.publish():
                raise IsADirectoryError(errno.EISDIR, "a folder has the file's name")
    except OSError as exc:  # the error names the file asked for, never its hidden temporary (".a.json.85.b4.tmp")
        if exc.filename is None or exc.errno is None or Path(exc.filename).name == Path(path).name:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from None


class Claim:
    """A folder held by one writer: let go by `release()`, when collected (a failed writer) or when the
    process ends (a killed one)."""

    def __init__(self, fd: int):
        self.release = weakref.finalize(self, os.close, fd)


def claim(folder: Path, name: str = ".edgerec-writing") -> Claim | None:
    """Hold `folder` for one writer at a time (POSIX: a lock on a hidden file in it); None while another live
    writer holds it."""
    fd = os.open(folder / name, os.O_RDWR | os.O_CREAT, 0o666)
    if not _lock(fd):
        os.close(fd)
        return None
    return Claim(fd)


def in_use(folder: Path, name: str = ".edgerec-writing") -> bool:
    """Whether a live writer holds `folder` (by `claim`) right now; the folder is never written to."""
    if fcntl is None:
        return False
    try:
        fd = os.open(folder / name, os.O_RDONLY)
    except OSError:  # no lock file: no writer ever claimed it
        return False
    try:
        return not _lock(fd)
    finally:
        os.close(fd)  # the lock taken to look goes with it
