"""Guards of the keyed-hash profile names and the key providers (what mutation testing found untested).

The stored forms are a compatibility promise: a history written today must open
with the next release, so the pseudonym and the secret's check value are pinned
to known answers here, not recomputed with the same formula.
"""

import errno
import os
import sqlite3
import time

import pytest

from edgerec.errors import ConfigError, HistoryError
from edgerec.runtime import keys
from edgerec.runtime.history import HistoryStore, Retention
from edgerec.runtime.keys import EnvKey, FileKey, resolve_key
from edgerec.runtime.pseudonyms import PseudonymousHistory, open_history, pseudonym

SECRET = bytes(range(16))
T0 = float(int(time.time()) - 3_600)  # an hour ago: a time the history keeps (a future one is refused)


def test_pseudonyms_and_the_check_value_keep_their_stored_form(tmp_path):
    assert pseudonym(SECRET, "alice") == "p:6457555a292cb5d30ca0da97b781a26f22a780091895c0519bc69c55609bb3b6"
    assert pseudonym(SECRET, "zoë") == "p:5d308939f84ba5113561cfb536613175dee077842742a1625331a451a82fddfe"  # UTF-8
    store = PseudonymousHistory(tmp_path / "h.db", SECRET)
    stored = store.db.execute("SELECT value FROM meta WHERE key='profile_ids'").fetchone()[0]
    store.close()
    assert stored == "hmac-sha256:aa34e4a4ab52f6a2"


@pytest.mark.parametrize("secret", [SECRET[:15], "a string of twenty chars", None])
def test_a_short_or_wrong_typed_secret_is_refused(tmp_path, secret):
    with pytest.raises(ConfigError, match=r"^a profile secret is at least 16 random bytes, kept on the device "
                                          r"\(OS keystore\)$"):
        PseudonymousHistory(tmp_path / "h.db", secret)
    assert not (tmp_path / "h.db").exists()


def test_sixteen_bytes_are_enough(tmp_path):
    store = PseudonymousHistory(tmp_path / "h.db", SECRET)
    assert store.timeout == 5.0  # the plain store's default wait for a lock
    store.close()


@pytest.mark.parametrize("profile", ["", 7, None, "bad\udc80"])
def test_wrong_profile_names_get_a_clear_error_on_every_call(tmp_path, profile):
    store = PseudonymousHistory(tmp_path / "h.db", SECRET)
    calls = [lambda: store.record(profile, "i1", "play", ts=T0), lambda: store.events(profile),
             lambda: store.forget(profile), lambda: store.preferences(profile)]
    if profile is not None:  # count(None) counts every profile
        calls.append(lambda: store.count(profile))
    for call in calls:
        with pytest.raises(ConfigError, match="^user "):
            call()
    store.close()


def test_every_argument_reaches_the_store_under_the_pseudonym(tmp_path):
    store = PseudonymousHistory(tmp_path / "h.db", SECRET)
    before = store.generation("alice"), store.generation("bob")
    for i in range(5):
        store.record("alice", f"i{i}", "play", value=0.25 * i, ts=T0 + i, context={"hour": i})
    store.record("bob", "i9", "like", ts=T0)
    events = store.events("alice", limit=2)
    assert [(e.item, e.value, e.ts, e.context, e.profile) for e in events] == [
        ("i3", 0.75, T0 + 3, {"hour": 3}, "alice"), ("i4", 1.0, T0 + 4, {"hour": 4}, "alice")]
    assert store.count("alice") == 5 and store.count("bob") == 1 and store.count() == 6
    assert [row[1] for row in store.events_after("alice", 0, 1)] == ["i4"]
    assert store.generation("alice")[-1] == before[0][-1] + 5 and store.generation("bob")[-1] == before[1][-1] + 1
    store.close()


def test_a_plain_name_that_starts_like_a_pseudonym_is_converted_too(tmp_path):
    plain = HistoryStore(tmp_path / "h.db")
    plain.record("p:bob", "i1", "play", ts=T0)
    plain.record("alice", "i2", "play", ts=T0)
    plain.set_preferences("alice", "genres", ["drama"])
    plain.close()
    store = PseudonymousHistory(tmp_path / "h.db", SECRET)
    assert [e.item for e in store.events("p:bob")] == ["i1"] and store.preferences("alice")
    stored = {r[0] for r in store.db.execute("SELECT profile FROM events UNION SELECT profile FROM preferences")}
    assert stored == {pseudonym(SECRET, "p:bob"), pseudonym(SECRET, "alice")}
    store.close()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("h.db"))
    assert b"alice" not in data and b"p:bob" not in data  # no readable copy left in free pages or the WAL


def test_open_history_passes_a_secret_provider_retention_and_timeout(tmp_path):
    class Keystore:
        def key(self):
            return SECRET

    retention = Retention(max_events=3)
    store = open_history(tmp_path / "h.db", profile_secret=Keystore(), retention=retention, timeout=0.5)
    assert isinstance(store, PseudonymousHistory) and store.retention == retention and store.timeout == 0.5
    store.close()
    plain = open_history(tmp_path / "p.db", retention=retention, timeout=0.25)
    assert plain.retention == retention and plain.timeout == 0.25
    plain.close()
    default = open_history(tmp_path / "p.db")
    assert default.timeout == 5.0  # the store's own default wait for a lock
    default.close()
    with pytest.raises(HistoryError, match="keyed hashes; open it with its profile secret"):
        open_history(tmp_path / "h.db")
    with pytest.raises(HistoryError, match="another secret; open it with the profile secret it was created with"):
        open_history(tmp_path / "h.db", profile_secret=bytes(16))


def test_open_history_with_a_key_and_a_secret_encrypts_the_file(tmp_path):
    pytest.importorskip("sqlcipher3", reason="the crypto extra (sqlcipher3) is part of the full install")
    store = open_history(tmp_path / "h.db", key=bytes(32), profile_secret=SECRET)
    store.record("alice", "i1", "play", ts=T0)
    assert store.encrypted
    store.close()
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(tmp_path / "h.db").execute("SELECT * FROM events").fetchall()


def test_resolve_key_returns_the_bytes_and_refuses_anything_else():
    assert resolve_key(bytes(range(32))) == bytes(range(32)) and resolve_key(None) is None
    for wrong in ("0" * 64, 32, bytes(31)):
        with pytest.raises(ConfigError, match="32 raw bytes"):
            resolve_key(wrong)


def test_environment_key_messages(monkeypatch):
    monkeypatch.delenv("EDGEREC_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="EDGEREC_TEST_KEY is not set; set it to the history key as 64 hex"):
        EnvKey("EDGEREC_TEST_KEY").key()
    monkeypatch.setenv("EDGEREC_TEST_KEY", "zz" * 32)
    with pytest.raises(ConfigError, match="environment variable EDGEREC_TEST_KEY holds no valid key: it must be "
                                          "32 raw bytes or 64 hex characters .make one with `edgerec history keygen`"):
        EnvKey("EDGEREC_TEST_KEY").key()
    monkeypatch.setenv("EDGEREC_TEST_KEY", "ab" * 32)
    assert EnvKey("EDGEREC_TEST_KEY").key() == b"\xab" * 32


def test_file_keys_are_made_private_in_new_folders_and_never_overwritten(tmp_path):
    path = tmp_path / "deep" / "er" / "history.key"
    made = FileKey.create(path)
    text = path.read_text()
    assert len(text) == 65 and text.endswith("\n") and made.key() == bytes.fromhex(text.strip())
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(ConfigError, match="^key file history.key already exists; a new key would orphan the "
                                          "history encrypted with it$"):
        FileKey.create(path)
    (tmp_path / "plainfile").write_text("x")
    with pytest.raises(ConfigError, match=r"cannot create the key file k.key \(a file stands where its folder should "
                                          r"be\); write it in a folder this app can"):
        FileKey.create(tmp_path / "plainfile" / "k.key")
    with pytest.raises(ConfigError, match=r"cannot create the key file k{300}.key \(File name too long\)"):
        FileKey.create(tmp_path / ("k" * 300 + ".key"))  # the file itself cannot be made
    with pytest.raises(ConfigError, match=r"cannot create the key file k.key \(File name too long\)"):
        FileKey.create(tmp_path / ("d" * 300) / "k.key")  # nor its folder
    raw = tmp_path / "raw.key"
    raw.write_bytes(b"\n" * 32)  # 32 raw bytes are a key, whatever they look like
    raw.chmod(0o600)
    assert FileKey(raw).key() == b"\n" * 32


def test_file_key_errors_name_the_file_only(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"^key file gone.key does not exist; .*`edgerec history keygen` for a "
                                          r"new history\)$"):
        FileKey(tmp_path / "gone.key").key()
    (tmp_path / "short.key").write_text("abcd")
    (tmp_path / "short.key").chmod(0o600)
    with pytest.raises(ConfigError, match=r"^key file short.key holds no valid key"):
        FileKey(tmp_path / "short.key").key()
    monkeypatch.setattr(type(tmp_path), "read_bytes", lambda self: (_ for _ in ()).throw(PermissionError(
        errno.EACCES, "Permission denied")))
    with pytest.raises(ConfigError, match=r"^key file short.key cannot be read \(Permission denied\); give the app's "
                                          "user read access"):
        FileKey(tmp_path / "short.key").key()


def test_destroy_refuses_a_read_only_key_or_folder_and_reports_a_failed_shred(tmp_path, monkeypatch):
    key = FileKey.create(tmp_path / "k.key")
    real_access = os.access
    # the folder is not writable (root passes every os.access check, so the answers are made up)
    monkeypatch.setattr(keys.os, "access", lambda p, mode: False if os.fspath(p) == os.fspath(tmp_path)
                        and mode & os.W_OK else real_access(p, mode))
    with pytest.raises(ConfigError, match="key file k.key or its folder is read-only for this app: nothing was "
                                          "destroyed, the key still reads what it encrypted; make both writable"):
        key.destroy()
    assert key.key()  # untouched
    monkeypatch.setattr(keys.os, "access", real_access)

    def full_disk(path):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(keys, "_shred_file", full_disk)
    with pytest.raises(ConfigError, match=r"^could not finish destroying key file k.key \(No space left on device\); "
                                          r"destroy it again \(its bytes may already be overwritten\)"):
        key.destroy()


def test_a_recovered_pseudonymous_history_stays_pseudonymous(tmp_path):
    """Recovery left out the meta row that marks keyed-hash profiles: the copy took plain user names and any secret,
    and split a user's history in two."""
    import secrets

    secret = secrets.token_bytes(32)
    store = PseudonymousHistory(tmp_path / "h.db", secret)
    store.record("alice", "i1", "play")
    store.close()
    HistoryStore.recover(tmp_path / "h.db", tmp_path / "r.db")
    with pytest.raises(HistoryError, match="stores profiles as keyed hashes"):
        open_history(tmp_path / "r.db")  # without its secret, as an app or a CLI command would
    with pytest.raises(HistoryError):
        PseudonymousHistory(tmp_path / "r.db", secrets.token_bytes(32))  # nor with another one
    again = PseudonymousHistory(tmp_path / "r.db", secret)
    assert [e.item for e in again.events("alice")] == ["i1"]


def test_recovering_a_plain_history_with_a_key_says_it_is_not_encrypted(tmp_path):
    import secrets

    pytest.importorskip("sqlcipher3")
    store = HistoryStore(tmp_path / "h.db")
    store.record("u", "i1", "play")
    store.close()
    with pytest.raises(HistoryError, match=r"^history database h.db is not encrypted; recover it without a key$"):
        HistoryStore.recover(tmp_path / "h.db", tmp_path / "r.db", secrets.token_bytes(32))


def test_a_pseudonymous_open_reads_while_another_process_holds_a_write_transaction(tmp_path):
    """Every open with a profile secret took the write lock to check for plain names, so it waited for (and
    failed behind) another process's write although there was nothing to convert."""
    path = tmp_path / "h.db"
    first = PseudonymousHistory(path, SECRET)
    first.record("alice", "i01", "play")
    first.close()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO meta VALUES ('x', 'y')")
        reader = PseudonymousHistory(path, SECRET, timeout=0.2)
        assert [e.item for e in reader.events("alice")] == ["i01"]
        reader.close()
    finally:
        other.close()
