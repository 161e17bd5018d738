"""History encrypted at rest (SQLCipher), key providers, migration, crypto-shredding, and keyed-hash profile ids."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import pytest
from handmade import foreign_database

from edgerec.errors import ConfigError, HistoryError
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.keys import EnvKey, FileKey, resolve_key
from edgerec.runtime.pseudonyms import open_history
from edgerec.runtime.secure_db import encrypt_database, is_plain, verify_pages

pytest.importorskip("sqlcipher3", reason="the crypto extra (sqlcipher3) is part of the full install")

USER, ITEM = "zebra-user-7731", "i-quokka-42"


def file_bytes(path: Path) -> bytes:
    """Every byte the database leaves on disk: the file, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


def fill(store: HistoryStore, n: int = 30) -> None:
    for i in range(n):
        store.record(USER, ITEM if i == 0 else f"i{i:05d}", "play")
    store.set_preferences(USER, "genre", ["jazz"])


def test_encrypted_file_holds_no_plaintext_and_reads_back(tmp_path):
    key = secrets.token_bytes(32)
    plain, secret = tmp_path / "plain.db", tmp_path / "secret.db"
    for path, k in ((plain, None), (secret, key)):
        store = HistoryStore(path, key=k)
        fill(store)
        store.close()
    # the scan finds the ids where they are stored in the clear: it would catch a plaintext write
    assert USER.encode() in file_bytes(plain) and ITEM.encode() in file_bytes(plain)
    data = file_bytes(secret)
    assert USER.encode() not in data and ITEM.encode() not in data and b"SQLite format 3" not in data
    store = HistoryStore(secret, key=key)
    assert store.encrypted and [e.item for e in store.events(USER)][0] == ITEM and store.count() == 30
    assert verify_pages(store.db) == []
    store.close()


def test_wrong_key_is_refused_and_loses_nothing(tmp_path):
    key, path = secrets.token_bytes(32), tmp_path / "h.db"
    store = HistoryStore(path, key=key)
    fill(store)
    store.close()
    before = path.read_bytes()
    with pytest.raises(HistoryError, match="wrong key"):
        HistoryStore(path, key=secrets.token_bytes(32))
    with pytest.raises(HistoryError, match="encrypted"):
        HistoryStore(path)  # no key: refused, not read as garbage or overwritten
    assert path.read_bytes() == before
    assert HistoryStore(path, key=key).count(USER) == 30


def test_tampered_page_is_detected_and_the_original_still_reads(tmp_path):
    key, path = secrets.token_bytes(32), tmp_path / "h.db"
    store = HistoryStore(path, key=key)
    fill(store, 400)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    original = path.read_bytes()
    assert len(original) > 3 * 4096
    damaged = bytearray(original)
    damaged[2 * 4096 + 100] ^= 0xFF  # one byte inside the third page
    path.write_bytes(bytes(damaged))
    with pytest.raises(HistoryError, match="altered|could not read|is damaged"):
        store = HistoryStore(path, key=key)  # open reads the schema pages; the rest fail when read
        store.events(USER)
    assert path.read_bytes() == bytes(damaged)  # nothing was "repaired" away
    path.write_bytes(original)
    assert HistoryStore(path, key=key).count(USER) == 400


def test_an_encrypted_history_with_a_damaged_page_is_recovered_into_an_encrypted_file(tmp_path):
    """recover() read plain files only, and `history recover --key-file` asked for the key it was given."""
    from click.testing import CliRunner

    from edgerec.cli.main import cli

    key, path = secrets.token_bytes(32), tmp_path / "h.db"
    store = HistoryStore(path, key=key)
    fill(store, 2000)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    damaged = bytearray(path.read_bytes())
    pages = len(damaged) // 4096
    for page in (pages // 2, pages // 2 + 1):  # pages of events in the middle of the table
        damaged[page * 4096 + 100] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(HistoryError, match="cannot be decrypted: wrong key"):
        HistoryStore.recover(path, tmp_path / "wrong.db", secrets.token_bytes(32))
    report = HistoryStore.recover(path, tmp_path / "fresh.db", key)
    assert 1500 < report["events"] < 2000 and report["unreadable"] > 0 and report["preferences"] == 1  # past the
    # first damaged page too: SQLCipher fails every later read of a connection after one, so it reopens
    assert not is_plain(tmp_path / "fresh.db") and USER.encode() not in file_bytes(tmp_path / "fresh.db")
    assert HistoryStore(tmp_path / "fresh.db", key=key).count(USER) == report["events"]
    key_file = tmp_path / "h.key"
    key_file.write_bytes(key)
    key_file.chmod(0o600)
    result = CliRunner().invoke(cli, ["history", "recover", "--history", str(path), "--key-file", str(key_file),
                                      "--out", str(tmp_path / "cli.db")])
    assert result.exit_code == 0, result.output
    assert f"recovered {report['events']} events" in result.output


def test_destroying_the_key_makes_the_history_unrecoverable(tmp_path):
    provider = FileKey.create(tmp_path / "history.key")
    path = tmp_path / "h.db"
    store = open_history(path, key=provider)
    fill(store)
    store.close()
    provider.destroy()
    assert not provider.path.exists()
    with pytest.raises(ConfigError, match="does not exist"):
        open_history(path, key=provider)
    data = file_bytes(path)
    assert USER.encode() not in data and ITEM.encode() not in data
    with pytest.raises(HistoryError):
        HistoryStore(path, key=secrets.token_bytes(32))


def test_migrating_a_plain_history_to_encrypted(tmp_path):
    path, key = tmp_path / "h.db", secrets.token_bytes(32)
    store = HistoryStore(path)
    fill(store)
    store.close()
    assert is_plain(path)
    path.chmod(0o640)  # the app's choice of mode outlives the rewrite
    encrypt_database(path, key)
    assert not is_plain(path) and USER.encode() not in file_bytes(path)
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    store = HistoryStore(path, key=key)
    assert store.count(USER) == 30 and store.preferences(USER) == {"genre": ["jazz"]}
    with pytest.raises(HistoryError, match="not a plain"):
        encrypt_database(path, key)


def test_another_applications_database_is_not_encrypted(tmp_path):
    """Encrypting it would lock that application out of its own file."""
    path = tmp_path / "photos.db"
    before = foreign_database(path, "albums")
    with pytest.raises(HistoryError, match="another application"):
        encrypt_database(path, secrets.token_bytes(32))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["photos.db"]


def test_asking_for_encryption_without_sqlcipher_fails_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sqlcipher3", None)  # as if the crypto extra were not installed
    path = tmp_path / "h.db"
    with pytest.raises(HistoryError, match="edgerec\\[crypto\\]"):
        HistoryStore(path, key=secrets.token_bytes(32))
    assert not path.exists()


def test_key_providers(tmp_path, monkeypatch):
    key = secrets.token_bytes(32)
    monkeypatch.setenv("EDGEREC_HISTORY_KEY", key.hex())
    assert resolve_key(EnvKey()) == key
    (tmp_path / "raw.key").write_bytes(key)
    with pytest.raises(ConfigError, match=r"raw.key is open to other users \(mode 6\d\d\); make it readable by its "
                                          r"owner only \(chmod 600\)"):
        resolve_key(FileKey(tmp_path / "raw.key"))  # written with the umask's mode: others may read it
    (tmp_path / "raw.key").chmod(0o600)
    assert resolve_key(FileKey(tmp_path / "raw.key")) == key
    (tmp_path / "bad.key").write_text("not a key")
    (tmp_path / "bad.key").chmod(0o600)
    with pytest.raises(ConfigError, match="no valid key"):
        resolve_key(FileKey(tmp_path / "bad.key"))
    with pytest.raises(ConfigError, match="32 raw bytes"):
        resolve_key(b"short")
    made = FileKey.create(tmp_path / "new.key")
    assert len(made.key()) == 32 and (made.path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(ConfigError, match="already exists"):
        FileKey.create(tmp_path / "new.key")


def test_profile_names_are_stored_only_as_keyed_hashes(tmp_path):
    secret, path = secrets.token_bytes(32), tmp_path / "h.db"
    store = open_history(path, profile_secret=secret)
    fill(store)
    assert store.count(USER) == 30 and store.events(USER)[0].profile == USER
    assert store.export(USER)["profile"] == USER and store.preferences(USER) == {"genre": ["jazz"]}
    assert USER not in store.profiles()
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert USER.encode() not in file_bytes(path)
    assert store.forget(USER) == 30 and store.count(USER) == 0
    store.close()
    with pytest.raises(HistoryError, match="another secret"):
        open_history(path, profile_secret=secrets.token_bytes(32))
    with pytest.raises(HistoryError, match="keyed hashes"):
        open_history(path)


def test_a_pseudonymous_history_refused_names_the_file_not_the_folders_above_it(tmp_path):
    """As every history error: an app may log the text, and .../alice/h.db names the user."""
    path = tmp_path / "alice" / "h.db"
    open_history(path, profile_secret=secrets.token_bytes(32)).close()
    for kwargs in ({"profile_secret": secrets.token_bytes(32)}, {}):
        with pytest.raises(HistoryError) as err:
            open_history(path, **kwargs)
        assert "h.db" in str(err.value) and "alice" not in str(err.value)  # was the full path


def test_a_plain_history_opened_with_a_profile_secret_is_converted(tmp_path):
    path, secret = tmp_path / "h.db", secrets.token_bytes(32)
    store = HistoryStore(path)
    fill(store)
    store.close()
    store = open_history(path, profile_secret=secret)
    assert store.count(USER) == 30
    store.close()
    assert USER.encode() not in file_bytes(path)


def test_converting_names_while_another_connection_reads_is_refused_then_completed(tmp_path):
    """A reader's snapshot kept the plain names in the WAL while the conversion reported success."""
    import sqlite3

    path, secret = tmp_path / "h.db", secrets.token_bytes(32)
    store = HistoryStore(path)
    fill(store)
    store.db.execute("PRAGMA wal_autocheckpoint=0")  # leave the events in the WAL, as an app's last writes
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchone()  # holds a snapshot
    with pytest.raises(HistoryError, match="plain names are still in its write-ahead log; close the other connection"):
        open_history(path, profile_secret=secret)  # waits erase_wait (2 s) for the reader
    reader.close()
    store.close()
    again = open_history(path, profile_secret=secret)
    assert again.count(USER) == 30
    again.close()
    assert USER.encode() not in file_bytes(path)


def test_recommender_and_cli_open_an_encrypted_history(tiny_bundle, tmp_path):
    from click.testing import CliRunner

    from edgerec.cli.main import cli
    from edgerec.runtime import Recommender

    key_file = FileKey.create(tmp_path / "k.key")
    history = tmp_path / "h.db"
    with Recommender.open(tiny_bundle, history=history, key=key_file) as rec:
        item = rec.catalog.item_id(3)
        rec.record("ann", item, "finish")
        assert rec.history.encrypted and rec.recommend("ann", k=5)
    assert item.encode() not in file_bytes(history)
    runner = CliRunner()
    shown = runner.invoke(cli, ["history", "show", "ann", "--history", str(history), "--key-file",
                                str(key_file.path)])
    assert shown.exit_code == 0, shown.output
    assert item in shown.output
    refused = runner.invoke(cli, ["history", "show", "ann", "--history", str(history)])
    assert refused.exit_code != 0 and "encrypted" in refused.output


def test_cli_keygen_encrypt_and_environment_key(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from edgerec.cli.main import cli

    path = tmp_path / "h.db"
    store = HistoryStore(path)
    fill(store)
    store.close()
    runner = CliRunner()
    assert runner.invoke(cli, ["history", "keygen", "--out", str(tmp_path / "k")]).exit_code == 0
    done = runner.invoke(cli, ["history", "encrypt", "--history", str(path), "--key-file", str(tmp_path / "k")])
    assert done.exit_code == 0, done.output
    assert not is_plain(path) and USER.encode() not in file_bytes(path)
    monkeypatch.setenv("EDGEREC_HISTORY_KEY", FileKey(tmp_path / "k").key().hex())
    out = tmp_path / "export.json"
    exported = runner.invoke(cli, ["history", "export", USER, "--history", str(path), "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert ITEM in out.read_text()


def test_an_encrypted_history_named_like_a_uri_stays_at_its_literal_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    key = secrets.token_bytes(32)
    store = HistoryStore("file:e.db", key=key)
    fill(store)
    store.close()
    plain = HistoryStore("file:p.db")
    fill(plain)
    plain.close()
    encrypt_database("file:p.db", key)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file:e.db", "file:p.db"]
    for name in ("file:e.db", "file:p.db"):
        assert not is_plain(name) and USER.encode() not in file_bytes(tmp_path / name)
        assert HistoryStore(name, key=key).count(USER) == 30
