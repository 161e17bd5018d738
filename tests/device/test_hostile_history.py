"""A history file whose rows were altered outside edgerec (another tool, a bad sync, a hand edit): open,
recommend and export either work on what is readable or raise a HistoryError that says what to do,
never a raw ValueError/TypeError/JSONDecodeError, and never a request path that fails on every call."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest

from edgerec.errors import HistoryError, UnknownIdError
from edgerec.runtime import Recommender


def history(bundle, path, alter: str):
    """A history with three events, onboarding choices and two added items, then `alter` run on it."""
    with Recommender.open(bundle, history=path) as rec:
        for row in range(3):
            rec.record("u", rec.catalog.item_id(row), "finish")
        rec.add_items([{"item_id": "added-good", "genre": "jazz"}, {"item_id": "added-bad", "genre": "jazz"}])
        rec.onboard("u", genres=["jazz"])
    db = sqlite3.connect(path)
    db.executescript(alter)
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize("value", ["abc", "-1", "0", "2.5"])
def test_an_altered_schema_version_is_a_history_error(golden_bundle, tmp_path, value):
    path = history(golden_bundle, tmp_path / "h.db", f"UPDATE meta SET value='{value}' WHERE key='schema_version'")
    with pytest.raises(HistoryError, match="damaged schema version.*edgerec history recover"):
        Recommender.open(golden_bundle, history=path)  # was a raw ValueError ('abc') or KeyError ('-1')


def test_an_unreadable_context_is_exported_as_stored(golden_bundle, tmp_path):
    path = history(golden_bundle, tmp_path / "h.db", "UPDATE events SET context='{not json' WHERE id=1")
    with Recommender.open(golden_bundle, history=path) as rec:
        events = rec.export_history("u")["events"]  # was a raw JSONDecodeError
        assert events[0]["context"] == {"unreadable": "{not json"} and len(events) == 3
        assert rec.recommend("u", k=3)


def test_a_timestamp_altered_into_text_does_not_fail_every_request(golden_bundle, tmp_path):
    path = history(golden_bundle, tmp_path / "h.db", "UPDATE events SET ts='yesterday' WHERE id=2")
    with Recommender.open(golden_bundle, history=path) as rec:
        out = rec.recommend("u", k=5)  # was a StageError at every request of this user
        assert len(out) == 5 and all(math.isfinite(r.score) for r in out)


@pytest.mark.parametrize("alter", [
    "UPDATE added_items SET meta='{bad' WHERE item='added-bad'",  # was a JSONDecodeError at open
    "UPDATE added_items SET meta='[]' WHERE item='added-bad'",
    "UPDATE added_items SET vector=NULL WHERE item='added-bad'",  # was a TypeError at open
    "UPDATE added_items SET vector='text' WHERE item='added-bad'",
    "UPDATE added_items SET vector=x'0000803f' WHERE item='added-bad'",  # 1 value: every request failed
    "UPDATE added_items SET vector=x'" + "0000c07f" * 8 + "' WHERE item='added-bad'",  # NaN
    "UPDATE added_items SET vector=x'" + "00000000" * 8 + "' WHERE item='added-bad'",
    "UPDATE added_items SET item=7 WHERE item='added-bad'",
])
def test_an_altered_added_item_is_left_out_and_the_others_still_served(golden_bundle, tmp_path, alter):
    path = history(golden_bundle, tmp_path / "h.db", alter)
    with Recommender.open(golden_bundle, history=path) as rec:
        assert "added-good" in rec.catalog.index and "added-bad" not in rec.catalog.index
        vectors = rec.catalog.vectors(np.arange(len(rec.catalog)))
        assert vectors.shape == (len(rec.catalog), rec.manifest.dim) and np.all(np.isfinite(vectors))
        out = rec.recommend("u", k=5)
        assert len(out) == 5 and all(math.isfinite(r.score) for r in out)


@pytest.mark.parametrize("meta", ["{bad", "[]", "7"])
def test_a_removal_with_altered_metadata_still_keeps_the_item_out(golden_bundle, tmp_path, meta):
    path = history(golden_bundle, tmp_path / "h.db", "")
    with Recommender.open(golden_bundle, history=path) as rec:
        gone = rec.catalog.item_id(7)
        rec.remove_items([gone])
    db = sqlite3.connect(path)
    db.execute("UPDATE added_items SET meta=? WHERE item=? AND removed=1", (meta, gone))
    db.commit()
    db.close()
    with Recommender.open(golden_bundle, history=path) as rec:  # the removal needs only the id
        assert gone not in [r.item_id for r in rec.recommend("u", k=len(rec.catalog))]
        assert "added-good" in rec.catalog.index


def test_onboarding_choices_given_twice_are_stored_once(golden_bundle):
    with Recommender.open(golden_bundle) as rec:
        rec.onboard("v", genres=["jazz", "jazz"], tags=["a", "a", "b"])  # was "could not write" (UNIQUE)
        assert rec.history.preferences("v") == {"genre": ["jazz"], "tag": ["a", "b"]}


def test_a_history_an_app_has_open_is_not_encrypted_under_it(golden_bundle, tmp_path):
    pytest.importorskip("sqlcipher3")
    from edgerec.runtime.secure_db import encrypt_database, is_plain

    path = history(golden_bundle, tmp_path / "h.db", "")
    with Recommender.open(golden_bundle, history=path) as rec:
        with pytest.raises(HistoryError, match="^h.db is open in another connection"):
            encrypt_database(path, bytes(range(32)))  # another tool (`edgerec history encrypt`) meanwhile
        before = rec.history.count("u")
        rec.record("u", rec.catalog.item_id(4), "play")  # was encrypted, then shredded under the app
        assert rec.history.count("u") == before + 1
    assert is_plain(path)


def test_a_history_overwritten_under_an_open_app_is_a_history_error(golden_bundle, tmp_path):
    path = history(golden_bundle, tmp_path / "h.db", "")
    with Recommender.open(golden_bundle, history=path) as rec:
        for part in (path, path.with_name("h.db-wal"), path.with_name("h.db-shm")):  # shredded in place by another tool
            size = part.stat().st_size
            with part.open("r+b") as f:
                f.write(bytes(range(256)) * (size // 256 + 1))
        with pytest.raises(HistoryError, match="nothing was stored: open the history anew"):
            rec.record("u", rec.catalog.item_id(4), "play")  # was a raw sqlite3.DatabaseError


class FailingCommit:
    """A connection whose COMMIT fails, as on an I/O error or a full disk at commit time."""

    def __init__(self, db):
        self.db = db

    def execute(self, sql, *args):
        if sql == "COMMIT":
            raise sqlite3.OperationalError("disk I/O error")
        return self.db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.db, name)


def test_a_failing_commit_is_rolled_back_and_the_store_stays_usable(golden_bundle, tmp_path):
    path = history(golden_bundle, tmp_path / "h.db", "")
    with Recommender.open(golden_bundle, history=path) as rec:
        before, real = rec.history.count("u"), rec.history.db
        rec.history.db = FailingCommit(real)
        with pytest.raises(HistoryError, match="nothing of this change was stored"):
            rec.record("u", rec.catalog.item_id(4), "play")  # was a raw OperationalError, transaction left open
        rec.history.db = real
        assert rec.history.count("u") == before
        rec.record("u", rec.catalog.item_id(5), "play")  # was "cannot start a transaction within a transaction"
        assert rec.history.count("u") == before + 1


def test_a_history_path_that_is_a_dangling_link_is_refused(golden_bundle, tmp_path):
    link = tmp_path / "h.db"
    link.symlink_to(tmp_path / "elsewhere.db")
    with pytest.raises(HistoryError, match="symbolic link to a file that does not exist"):
        Recommender.open(golden_bundle, history=link)  # was a history created through it, with the umask's mode
    assert not (tmp_path / "elsewhere.db").exists()


def test_catalog_updates_through_another_connection_reach_an_open_recommender(golden_bundle, tmp_path):
    """Two Recommenders (two processes of one app) on one history: what one adds or removes is what the
    other serves at its next call, not after it is reopened (a removed item was served until then)."""
    path = tmp_path / "h.db"
    with Recommender.open(golden_bundle, history=path) as a, Recommender.open(golden_bundle, history=path) as b:
        gone, everything = a.catalog.item_id(10), len(a.catalog) + 5
        assert gone in [r.item_id for r in b.recommend("u", k=everything)]
        a.remove_items([gone])
        assert gone not in [r.item_id for r in b.recommend("u", k=everything)]
        a.add_items([{"item_id": "added-by-a", "genre": "jazz"}])  # b applies the saved items again
        b.record("u", "added-by-a", "play")  # was UnknownIdError: b did not know the item
        a.add_items([{"item_id": gone, "genre": "jazz"}])  # back, as an added item
        a.remove_items(["added-by-a"])
        served = [r.item_id for r in b.recommend("v", k=everything)]
        assert gone in served and "added-by-a" not in served
        assert b.catalog.meta(b.catalog.row(gone))["genre"] == "jazz"


def test_two_bundles_of_other_spaces_on_one_history_keep_each_ones_catalog_updates(golden_bundle, tmp_path):
    # an app interleaving two bundles, or rolling an update back, opens both on one history: opening one
    # deleted the items added and removed under the other (one row per item, other spaces dropped)
    ranked, path = golden_bundle.parent / "ranked", tmp_path / "h.db"
    with Recommender.open(golden_bundle, history=path) as rec:
        rec.add_items([{"item_id": "added-a", "genre": "jazz"}])
        removed = rec.catalog.item_id(10)
        rec.remove_items([removed])
        space = rec.manifest.embedding_space
    with Recommender.open(ranked, history=path) as other:
        assert other.manifest.embedding_space != space
        with pytest.raises(UnknownIdError):  # the app's removal stands across a bundle swap
            other.catalog.row(removed)
        assert other.stats()["catalog_carried"] == {"removed": 1, "added_not_carried": 1}
        other.add_items([{"item_id": "added-b", "genre": "jazz"}])
    with Recommender.open(golden_bundle, history=path) as rec:
        assert rec.catalog.row("added-a") >= rec.catalog.base_count
        with pytest.raises(UnknownIdError):
            rec.catalog.row(removed)
        with pytest.raises(UnknownIdError):
            rec.catalog.row("added-b")
    with Recommender.open(ranked, history=path) as other:
        assert other.catalog.row("added-b") >= other.catalog.base_count
