"""Profile names stored as keyed hashes (HMAC-SHA256 with a per-device secret), and opening a history store.

With a profile secret the database never holds the names an app uses ("alice",
an account id): every call maps the name to HMAC(secret, name) before it
touches SQL, so export_history/forget keep working by name, while the file
(even decrypted) only shows pseudonyms that cannot be reversed or guessed
without the secret. The database records that it is pseudonymous and a check
value of the secret, so a wrong or missing secret is refused instead of
splitting one person's history in two. A plain history opened with a secret
is converted in place, and so, at every open with the secret, are plain names an
older process wrote since (a plain HistoryStore refuses to write to a file marked
meanwhile: history.py's _check_others).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from edgerec.errors import ConfigError, HistoryError
from edgerec.runtime import checks, history_care
from edgerec.runtime.history import HistoryStore, Retention
from edgerec.runtime.keys import KeyProvider, resolve_key

MARKER = history_care.PROFILE_IDS
SCHEME = "hmac-sha256"


_PSEUDONYM = re.compile("p:[0-9a-f]{64}")


def pseudonym(secret: bytes, profile: str) -> str:
    return "p:" + hmac.new(secret, profile.encode("utf-8"), hashlib.sha256).hexdigest()


def _check_value(secret: bytes) -> str:
    return f"{SCHEME}:{hmac.new(secret, b'edgerec profile secret check', hashlib.sha256).hexdigest()[:16]}"


def stored_scheme(store: HistoryStore) -> str | None:
    rows = store._read("SELECT value FROM meta WHERE key=?", (MARKER,))
    return rows[0][0] if rows else None


class PseudonymousHistory(HistoryStore):
    """A HistoryStore whose profile column holds keyed hashes of the names it is called with."""

    plain_names = False

    def __init__(self, path: str | Path, secret: bytes, retention: Retention | None = None, timeout: float = 5.0,
                 key: bytes | None = None):
        if not isinstance(secret, (bytes, bytearray)) or len(secret) < 16:
            raise ConfigError("a profile secret is at least 16 random bytes, kept on the device (OS keystore)")
        self._secret = bytes(secret)
        super().__init__(path, retention, timeout, key=key)
        try:
            self._convert_names(_check_value(self._secret))
        except HistoryError:
            self.close()
            raise

    def _pid(self, profile: str) -> str:
        return pseudonym(self._secret, checks.text(profile, "user"))  # a wrong type or empty name: ConfigError

    def _plain_names(self) -> tuple[set[str], set[str]]:
        """Every stored profile name, and those that are not pseudonyms (an app's own name may start with "p:")."""
        stored = {r[0] for r in self._read("SELECT DISTINCT profile FROM events UNION "
                                           "SELECT DISTINCT profile FROM preferences")}
        return stored, {n for n in stored if not _PSEUDONYM.fullmatch(n)}

    def _convert_names(self, check: str) -> None:
        """Mark the file pseudonymous and replace plain names in it (all of a plain history; those an older
        plain-name process wrote since) by their pseudonyms, leaving no readable copy behind."""
        if stored_scheme(self) == check and not self._plain_names()[1]:
            return  # nothing to convert: no write lock taken (an open must not wait for another process's write)
        with self._transaction():  # one transaction: no plain name is written between the read and the marker
            scheme = stored_scheme(self)
            if scheme not in (None, check):
                raise HistoryError(f"history database {self.file} stores profiles under another secret; open it "
                                   "with the profile secret it was created with (nothing was changed)")
            stored, names = self._plain_names()
            for name in names:
                for table in ("events", "preferences"):
                    self.db.execute(f"UPDATE OR REPLACE {table} SET profile=? WHERE profile=?",  # a choice made
                                    (self._pid(name), name))  # under both names is kept once
            if scheme is None:
                self.db.execute("INSERT INTO meta VALUES (?, ?)", (MARKER, check))
            # unmarked with rows: converted before, maybe by a version whose erasure a reader blocked
            erase = bool(names) or (scheme is None and bool(stored))
            if erase:
                history_care.mark_erasure(self.db)  # a kill or a reader before the erasure: the next open erases
        if not erase:
            return
        try:  # as forget(): old page images must not survive in the WAL or free pages
            self.erase_pending()
        except HistoryError:
            raise HistoryError(f"the user names in {self.file} are stored as keyed hashes now, but another connection "
                               "holds a read snapshot of it, so the plain names are still in its write-ahead log; "
                               "close the other connection (an app, `edgerec history show`) and open the history "
                               "again to erase them (nothing is lost)") from None

    def generation(self, profile):
        return super().generation(self._pid(profile))

    def record(self, profile, item, event, value=None, ts=None, context=None):
        return super().record(self._pid(profile), item, event, value, ts, context)

    def events(self, profile, limit=None):
        out = super().events(self._pid(profile), limit)
        for e in out:
            e.profile = profile  # the caller's name, never stored
        return out

    def events_after(self, profile, after, limit):
        return super().events_after(self._pid(profile), after, limit)

    def count(self, profile=None):
        return super().count(None if profile is None else self._pid(profile))

    def set_preferences(self, profile, kind, values):
        super().set_preferences(self._pid(profile), kind, values)

    def preferences(self, profile):
        return super().preferences(self._pid(profile))

    def forget(self, profile):
        return super().forget(self._pid(profile))


def open_history(path: str | Path, *, key: bytes | KeyProvider | None = None,
                 profile_secret: bytes | KeyProvider | None = None,
                 retention: Retention | None = None, timeout: float = 5.0) -> HistoryStore:
    """The history store an app asked for: encrypted when given a key, pseudonymous when given a secret.
    retention: None applies the one the file stores (the last one it was opened with), else the default."""
    raw_key = resolve_key(key)
    if profile_secret is not None:
        secret = profile_secret.key() if isinstance(profile_secret, KeyProvider) else profile_secret
        return PseudonymousHistory(path, secret, retention, timeout, raw_key)
    store = HistoryStore(path, retention, timeout, key=raw_key)
    try:
        if stored_scheme(store) is not None:
            raise HistoryError(f"history database {store.file} stores profiles as keyed hashes; open it with its "
                               "profile secret (profile_secret=... or --profile-key-file)")
    except BaseException:
        store.close()
        raise
    return store


def stored_count(store: HistoryStore, profile: str) -> int:
    """How many events of `profile` the file holds, whether retention keeps them or not (count() gives the
    kept ones): `edgerec history show` says how many it hides."""
    name = store._pid(profile) if isinstance(store, PseudonymousHistory) else checks.text(profile, "user")
    return int(store._read("SELECT COUNT(*) FROM events WHERE profile=?", (name,))[0][0])
