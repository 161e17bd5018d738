"""Where a device key comes from: a small provider interface, with a key file and an environment variable.

On a phone or a TV the app takes the key from the OS keystore and passes the
raw bytes (any object with `key() -> bytes` is a provider). The file and
environment providers serve the CLI, tests and headless boxes. A key is 32 raw
bytes; files hold them raw or as 64 hex characters, the environment as hex.
Destroying a key (`destroy()`) makes everything encrypted with it unreadable.
"""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from edgerec.errors import ConfigError
from edgerec.runtime import checks
from edgerec.runtime.atomic import sync_folder
from edgerec.runtime.secure_db import KEY_BYTES, _shred_file, check_key

KEY_ENV = "EDGEREC_HISTORY_KEY"


@runtime_checkable
class KeyProvider(Protocol):
    def key(self) -> bytes: ...


def _parse(raw: bytes, where: str) -> bytes:
    if len(raw) == KEY_BYTES:
        return raw
    text = raw.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where} holds no valid key: it must be {KEY_BYTES} raw bytes or {2 * KEY_BYTES} hex "
                          "characters (make one with `edgerec history keygen`)")
    return key


@dataclass
class FileKey:
    """A key kept in a file (readable by the owner only)."""

    path: Path

    def __post_init__(self):
        self.path = Path(self.path)

    def key(self) -> bytes:
        if not self.path.is_file():
            raise ConfigError(f"key file {checks.file_name(self.path)} does not exist; without its key an encrypted history cannot "
                              "be read (make a new key with `edgerec history keygen` for a new history)")
        try:
            mode, raw = self.path.stat().st_mode, self.path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"key file {checks.file_name(self.path)} cannot be read ({exc.strerror}); give the app's "
                              "user read access to it (it is meant to be readable by its owner only)") from None
        if os.name == "posix" and mode & 0o077:  # another user could read it (and decrypt) or replace it
            raise ConfigError(f"key file {checks.file_name(self.path)} is open to other users (mode {mode & 0o777:o}); "
                              f"make it readable by its owner only (chmod 600) and use it again")
        return _parse(raw, f"key file {checks.file_name(self.path)}")

    @classmethod
    def create(cls, path: str | Path) -> FileKey:
        """Write a new random key (hex) that only the owner can read; never overwrites an existing key. The key
        is written and flushed under a private name, then linked to `path` (atomic, and refused if a key is
        there): a kill leaves no empty key file, a power cut no key file emptier than what it encrypted."""
        path = Path(path)

        def refused(why: str) -> ConfigError:
            return ConfigError(f"cannot create the key file {checks.file_name(path)} ({why}); write it in a "
                               "folder this app can write (and keep it private)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a file stands where a folder of the path should be
            raise refused("a file stands where its folder should be") from None
        except OSError as exc:  # a read-only folder
            raise refused(exc.strerror) from None
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            _write_new(tmp, secrets.token_bytes(KEY_BYTES).hex() + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links (FAT): written in place
                _write_new(path, tmp.read_text())
        except FileExistsError:
            raise ConfigError(f"key file {checks.file_name(path)} already exists; a new key would orphan the history encrypted "
                              "with it") from None
        except OSError as exc:  # a read-only folder, a full disk, a name too long
            raise refused(exc.strerror) from None
        finally:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)
        sync_folder(path.parent)
        return cls(path)

    def destroy(self) -> None:
        """Crypto-shredding: overwrite and remove the key; what it encrypted can no longer be read."""
        name = checks.file_name(self.path)
        if self.path.is_file() and not (os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK | os.X_OK)):
            raise ConfigError(f"key file {name} or its folder is read-only for this app: nothing was destroyed, the key "
                              "still reads what it encrypted; make both writable and destroy it again")
        try:
            _shred_file(self.path)
        except OSError as exc:  # a full disk, an I/O error
            raise ConfigError(f"could not finish destroying key file {name} ({exc.strerror}); destroy it again "
                              "(its bytes may already be overwritten)") from None


def _write_new(path: Path, text: str) -> None:
    """A new file only the owner can read, flushed to the disk."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


@dataclass
class EnvKey:
    """A key in an environment variable, as hex."""

    name: str = KEY_ENV

    def key(self) -> bytes:
        value = os.environ.get(self.name)
        if not value:
            raise ConfigError(f"environment variable {self.name} is not set; set it to the history key as "
                              f"{2 * KEY_BYTES} hex characters")
        return _parse(value.encode(), f"environment variable {self.name}")


def resolve_key(key: bytes | KeyProvider | None) -> bytes | None:
    """Raw bytes from a key or a provider (None stays None: a plain history)."""
    if key is None:
        return None
    if isinstance(key, KeyProvider) and not isinstance(key, (bytes, bytearray)):
        return check_key(key.key())
    return check_key(key)
