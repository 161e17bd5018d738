"""Audit G4: several processes and threads on one history and one Recommender.

Each test reproduces one confirmed defect with tiny data and fails without its fix: a plain-name
process writing into a history made pseudonymous, a forget() killed before its erasure, a
Recommender closed under its Background, a prune's lock failing a stored record, arguments the app
changed after the hand-over, a request putting a forgotten user back into memory, ledger reads on
a closed history, events dated when the worker reached them, a newer list refused for a full queue.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from edgerec.errors import HistoryError
from edgerec.runtime import Background, Recommender
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.privacy_ledger import PrivacyLedger
from edgerec.runtime.pseudonyms import open_history

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"
SECRET = b"0123456789abcdef0123456789abcdef"
WAIT = 30  # seconds a test waits for a Future at most (it fails rather than hangs)


@pytest.fixture
def rec(tmp_path):
    with Recommender.open(GOLDEN, history=tmp_path / "h.db", backend="onnx") as opened:
        yield opened


def item(rec, row: int) -> str:
    return rec.catalog.item_id(row)


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def held(bg: Background) -> threading.Event:
    """Holds the worker until the returned event is set: what is handed over meanwhile waits."""
    entered, release = threading.Event(), threading.Event()
    bg.submit(lambda: (entered.set(), release.wait(WAIT)))
    assert entered.wait(WAIT)
    return release


# ------------------------------------------------------------------ 1. plain and pseudonymous processes


def test_a_plain_store_refuses_to_write_once_another_process_made_the_file_pseudonymous(tmp_path):
    path = tmp_path / "h.db"
    plain = open_history(path)  # the app's older process, without the secret
    plain.record("carol", "i1", "play")
    keyed = open_history(path, profile_secret=SECRET)  # the updated app
    assert keyed.count("carol") == 1
    with pytest.raises(HistoryError, match="keyed hashes now .*open it again with its profile secret"):
        plain.record("carol", "i2", "play")
    with pytest.raises(HistoryError, match="keyed hashes now"):  # every later write too, not only the first
        plain.set_preferences("carol", "genre", ["drama"])
    plain.close()
    assert keyed.forget("carol") == 1
    keyed.close()
    assert b"carol" not in file_bytes(path)


def test_a_pseudonymous_open_converts_plain_names_an_older_process_wrote_since(tmp_path):
    path = tmp_path / "h.db"
    first = open_history(path, profile_secret=SECRET)
    first.record("carol", "i1", "play")
    first.set_preferences("carol", "genre", ["drama"])
    first.close()
    older = sqlite3.connect(path)  # an app version from before the check writes plain names
    with older:
        older.execute("INSERT INTO events (profile, item, event, value, ts, context) "
                      "VALUES ('carol', 'i2', 'play', NULL, strftime('%s','now') - 60, '{}')")
        older.execute("INSERT INTO preferences VALUES ('carol', 'genre', 'drama', 0)")  # the same choice
    older.close()
    again = open_history(path, profile_secret=SECRET)
    assert again.count("carol") == 2 and again.preferences("carol") == {"genre": ["drama"]}
    assert again.forget("carol") == 2
    again.close()
    assert b"carol" not in file_bytes(path)


# ------------------------------------------------------------------ 2. a forget() killed before its erasure


def test_the_next_open_completes_an_erasure_a_killed_forget_left(tmp_path):
    path = tmp_path / "h.db"
    store = HistoryStore(path)
    for i in range(10):
        store.record("alice", f"i{i}", "play", context={"q": "alice-private-query"})
    store.record("bob", "i1", "play")
    store.erase_pending()  # everything in h.db itself, the WAL empty
    keeper = sqlite3.connect(path)  # another connection (no read open): closing the store checkpoints nothing
    keeper.execute("SELECT count(*) FROM meta").fetchall()

    def killed():
        raise KeyboardInterrupt  # stands for the process dying after the DELETE committed

    store.erase_pending = killed
    with pytest.raises(KeyboardInterrupt):
        store.forget("alice")
    store.close()
    assert b"alice-private-query" in file_bytes(path)  # the kill left the bytes
    again = HistoryStore(path)
    assert b"alice-private-query" not in file_bytes(path)
    assert again.erasure_pending is False and again.count("bob") == 1
    again.close()
    keeper.close()


# ------------------------------------------------------------------ 3. Recommender closed under its Background


def test_closing_the_recommender_runs_what_waits_in_its_background_first(tmp_path):
    rec = Recommender.open(GOLDEN, history=tmp_path / "h.db", backend="onnx")
    bg = Background(rec)
    release = held(bg)
    closing = bg.close

    def close():  # the worker is held until the Recommender closes its runner
        release.set()
        closing()

    bg.close = close
    futures = [bg.record("ana", item(rec, row), "play") for row in range(5)]
    rec.close()  # without closing bg first, as a `with Recommender.open(...)` block ends
    release.set()  # (already set when close() ran the runner's)
    assert [f.exception(WAIT) for f in futures] == [None] * 5
    with Recommender.open(GOLDEN, history=tmp_path / "h.db", backend="onnx") as again:
        assert again.history.count("ana") == 5


# ------------------------------------------------------------------ 4. a prune's lock and a stored record


def test_a_prune_that_meets_another_writers_lock_does_not_fail_the_stored_record(tmp_path):
    path = tmp_path / "h.db"
    store = HistoryStore(path, timeout=0.05)
    for i in range(99):
        store.record("ana", f"i{i}", "play")
    other = sqlite3.connect(path, isolation_level=None)
    pruning = store._delete_old

    def locked(now):  # another process starts a write just as the 100th record prunes
        other.execute("BEGIN IMMEDIATE")
        try:
            return pruning(now)
        finally:
            other.execute("ROLLBACK")

    store._delete_old = locked
    assert store.record("ana", "i100", "finish") > 0  # stored, and said so: a retry would store it twice
    assert store.count("ana") == 100
    del store._delete_old
    store.record("ana", "i101", "play")  # the prune left for next time runs now
    assert store._since_prune == 0
    store.close()
    other.close()


# ------------------------------------------------------------------ 5. and 8. what is handed over, and when


def test_a_handed_over_event_keeps_its_context_and_time_of_the_hand_over(rec):
    handed = rec.history.clock() + 600  # ahead of the mark: the clock dates it (behind, the mark would)
    rec.history.clock = lambda: handed
    context = {"screen": "home"}
    with Background(rec) as bg:
        release = held(bg)
        done = bg.record("ana", item(rec, 1), "play", context=context)
        context["screen"], context["query"] = "search", "private words"  # the app reuses its dict
        rec.history.clock = lambda: handed + 300  # the worker reaches the event later
        release.set()
        done.result(WAIT)
    event = rec.history.events("ana")[-1]
    assert event.context == {"screen": "home"} and event.ts == handed


def test_a_handed_over_list_keeps_its_context_filters_and_policy(rec, monkeypatch):
    from edgerec.runtime import Filters, Policy

    seen = []
    monkeypatch.setattr(rec, "recommend", lambda *args: seen.append(repr(args)))
    context, filters, policy = {"device": "tv"}, Filters(max_duration_s=600.0), Policy(diversity=0.3)
    handed = repr(("ana", 3, context, filters, policy))
    with Background(rec) as bg:
        release = held(bg)
        done = bg.recommend("ana", 3, context, filters, policy)
        context["device"], filters.max_duration_s, policy.diversity = "phone", 60.0, 0.9
        release.set()
        done.result(WAIT)
    assert seen == [handed]


# ------------------------------------------------------------------ 6. forget() during a request


def test_a_request_running_while_the_user_is_forgotten_keeps_nothing_of_them(rec, monkeypatch):
    for row in range(5):
        rec.record("ana", item(rec, row), "finish")
    reading = rec.history.preferences

    def forgotten_meanwhile(user):  # the request has read the events; forget() runs before it goes on
        monkeypatch.setattr(rec.history, "preferences", reading)
        assert rec.forget("ana") == 5
        return reading(user)

    monkeypatch.setattr(rec.history, "preferences", forgotten_meanwhile)
    rec.recommend("ana", k=3)
    assert rec.users.get("ana") is None and rec.users.window("ana") is None
    rec.recommend("ana", k=3)  # a request after the forget keeps its (empty) state as before
    assert rec.users.get("ana") is not None and rec.users.get("ana").state.consumed == []


# ------------------------------------------------------------------ 7. the ledger on a closed history


def test_ledger_reads_on_a_closed_history_say_it_was_closed(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    ledger = PrivacyLedger(store)
    ledger.charge("weekly genres", 0.5, key="k")
    assert ledger.taken("k") and ledger.entries()[0][1:] == ("weekly genres", 0.5)
    store.close()
    for read in (ledger.spent, lambda: ledger.taken("k"), ledger.entries):
        with pytest.raises(HistoryError, match="was closed"):
            read()


# ------------------------------------------------------------------ 9. a newer list with the queue full


def test_a_newer_list_for_a_screen_replaces_the_waiting_one_even_with_the_queue_full(rec):
    with Background(rec, max_pending=1) as bg:
        release = held(bg)
        try:
            older = bg.recommend("ana", k=3, latest="home")  # waits: the queue is full
            newer = bg.recommend("ana", k=3, latest="home")  # replaces it rather than being refused
            assert older.cancelled() and bg.pending == 1
        finally:
            release.set()
        assert len(newer.result(WAIT)) == 3
