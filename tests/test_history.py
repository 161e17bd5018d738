"""The on-device history store, exactly: durability settings read back from the connection, what
forget() removes and keeps, retention at its boundaries, and the generation token caches rely on."""

import re
import sqlite3
import threading
import time

import pytest
from handmade import recorded_back_then, write_v1_history

from edgerec.errors import ConfigError, HistoryError
from edgerec.runtime.history import EVENTS, SCHEMA_VERSION, HistoryStore, Retention

DAY = 86_400


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "h.db")
    yield s
    s.close()


def pragma(store, name):
    return store.db.execute(f"PRAGMA {name}").fetchone()[0]


def test_durability_settings_as_the_connection_reports_them(store):
    assert pragma(store, "journal_mode") == "wal"
    assert pragma(store, "synchronous") == 2  # FULL: every commit is on disk before record() returns
    assert pragma(store, "secure_delete") == 1
    assert store.db.isolation_level is None  # autocommit: each record() is its own explicit transaction
    assert store.version() == SCHEMA_VERSION == 4


def test_record_stores_every_field_and_returns_increasing_ids(store):
    given = float(int(time.time()) - DAY)  # an explicit time retention keeps (reads drop what it would remove)
    first = store.record("p", "a", "play", 0.5, ts=given, context={"device": "tv", "hour": 20})
    second = store.record("p", "b", "like")
    assert second == first + 1
    before = time.time()
    third = store.record("p", "c", "skip")
    events = store.events("p")
    assert [(e.id, e.profile, e.item, e.event, e.value, e.ts, e.context) for e in events[:1]] == [
        (first, "p", "a", "play", 0.5, given, {"device": "tv", "hour": 20})]
    assert events[1].value is None and events[1].context == {}
    assert events[2].id == third and before <= events[2].ts <= time.time()  # stamped now when no ts is given


@pytest.mark.parametrize("event", EVENTS)
def test_every_known_event_is_accepted(store, event):
    store.record("p", "a", event)
    assert [e.event for e in store.events("p")] == [event]


def test_bad_records_are_refused_and_nothing_is_written(store):
    with pytest.raises(ConfigError, match="^unknown event 'watched'; use one of play, finish, skip, like, "
                                          "not_interested, more_like_this$"):
        store.record("p", "a", "watched")
    with pytest.raises(ConfigError, match=r"^user must not be empty"):
        store.record("", "a", "play")
    with pytest.raises(ConfigError, match=r"^item must not be empty"):
        store.record("p", "", "play")
    assert store.count() == 0


def test_events_events_after_profiles_and_counts(store):
    for i in range(5):
        store.record("p", f"a{i}", EVENTS[i])
    store.record("q", "b", "play")
    assert [e.item for e in store.events("p")] == ["a0", "a1", "a2", "a3", "a4"]
    assert [e.item for e in store.events("p", limit=2)] == ["a3", "a4"]  # the newest two, oldest first
    assert [(item, event) for _, item, event, _ in store.events_after("p", 0, 3)] == [
        ("a2", EVENTS[2]), ("a3", EVENTS[3]), ("a4", EVENTS[4])]
    assert [item for _, item, _, _ in store.events_after("p", 2, 10)] == ["a2", "a3", "a4"]  # ids above 2
    assert [ts for *_, ts in store.events_after("p", 4, 1)] == [store.events("p")[-1].ts]  # with its time
    assert store.events_after("nobody", 0, 3) == []
    assert store.profiles() == ["p", "q"]
    assert (store.count(), store.count("p"), store.count("q"), store.count("nobody")) == (6, 5, 1, 0)


def test_preferences_replace_per_kind(store):
    store.set_preferences("p", "genre", ["jazz", "blues"])
    store.set_preferences("p", "language", ["en"])
    store.set_preferences("q", "genre", ["rock"])
    assert store.preferences("p") == {"genre": ["blues", "jazz"], "language": ["en"]}
    store.set_preferences("p", "genre", ["folk"])  # a new choice replaces that kind only
    assert store.preferences("p") == {"genre": ["folk"], "language": ["en"]}
    assert store.preferences("q") == {"genre": ["rock"]}
    assert store.preferences("nobody") == {}


def test_forget_removes_events_and_preferences_of_one_profile_only(store):
    for i in range(3):
        store.record("gone", f"a{i}", "play")
    store.record("kept", "b", "play")
    store.set_preferences("gone", "genre", ["jazz"])
    store.set_preferences("gone", "tag", ["x"])
    store.set_preferences("kept", "genre", ["rock"])
    store.save_item("added", "space", b"\x00\x01", {"title": "A"})
    assert store.forget("gone") == 3
    assert store.events("gone") == [] and store.preferences("gone") == {}
    assert store.db.execute("SELECT COUNT(*) FROM preferences WHERE profile='gone'").fetchone()[0] == 0
    assert [e.item for e in store.events("kept")] == ["b"] and store.preferences("kept") == {"genre": ["rock"]}
    assert store.saved_items("space") == [("added", b"\x00\x01", {"title": "A"}, False)]
    assert store.profiles() == ["kept"]
    assert store.forget("nobody") == 0


def test_export_holds_everything_about_the_profile(store):
    given = float(int(time.time()) - DAY)  # an explicit time retention keeps
    store.record("me", "a", "play", 0.5, ts=given, context={"device": "tv"})
    store.record("other", "z", "play")
    store.set_preferences("me", "genre", ["jazz"])
    before = time.time()
    data = store.export("me")
    assert set(data) == {"profile", "events", "preferences", "exported_at"}
    assert data["profile"] == "me" and data["preferences"] == {"genre": ["jazz"]}
    assert [(e["item"], e["event"], e["value"], e["ts"], e["context"]) for e in data["events"]] == [
        ("a", "play", 0.5, given, {"device": "tv"})]
    assert before <= data["exported_at"] <= time.time()


# ------------------------------------------------------------------ retention


def test_retention_by_count_keeps_exactly_the_newest_per_profile(tmp_path):
    store = HistoryStore(tmp_path / "h.db", Retention(max_events=5, max_age_days=10))
    now = time.time()
    for i in range(5):
        store.record("five", f"f{i}", "play", ts=now)
    for i in range(6):
        store.record("six", f"s{i}", "play", ts=now)
    assert store.prune(now) == 1  # exactly at the limit nothing goes; one over, the oldest goes
    assert [e.item for e in store.events("five")] == [f"f{i}" for i in range(5)]
    assert [e.item for e in store.events("six")] == [f"s{i}" for i in range(1, 6)]
    assert store.prune(now) == 0


def test_retention_by_age_at_the_cutoff(tmp_path):
    store = HistoryStore(tmp_path / "h.db", Retention(max_events=100, max_age_days=10))
    now = 1_000_000_000.0
    store.clock = lambda: now  # the store's clock: reads and prune() use the same cutoff
    cutoff = now - 10 * DAY
    recorded_back_then(store, "p", "older", "play", cutoff - 0.001)
    store.record("p", "at-cutoff", "play", ts=cutoff)
    store.record("p", "newer", "play", ts=cutoff + 1)
    assert [e.item for e in store.events("p")] == ["at-cutoff", "newer"]  # reads apply it before any prune
    assert store.prune(now) == 1
    assert [e.item for e in store.events("p")] == ["at-cutoff", "newer"]


def test_age_and_count_retention_add_up(tmp_path):
    store = HistoryStore(tmp_path / "h.db", Retention(max_events=2, max_age_days=1))
    now = 1_000_000_000.0
    store.clock = lambda: now
    recorded_back_then(store, "p", "old", "play", now - 2 * DAY)
    for i in range(4):
        store.record("p", f"n{i}", "play", ts=now)
    assert store.prune(now) == 3  # one by age, then two over the count
    assert [e.item for e in store.events("p")] == ["n2", "n3"]


def test_retention_runs_by_itself_every_hundred_records(tmp_path):
    store = HistoryStore(tmp_path / "h.db", Retention(max_events=10))
    def stored():  # the rows in the file (reads apply retention before any prune: count("p") is 10 throughout)
        return store.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    for i in range(99):
        store.record("p", f"a{i}", "play")
    assert stored() == 99 and store.count("p") == 10  # not yet pruned
    store.record("p", "a99", "play")
    assert stored() == 10 and store.events("p")[0].item == "a90"
    for i in range(99):
        store.record("p", f"b{i}", "play")
    assert stored() == 109  # the counter restarted at the last prune
    store.record("p", "b99", "play")
    assert stored() == 10 == store.count("p")


def test_default_retention():
    assert (Retention().max_events, Retention().max_age_days) == (10_000, 730.0)


def test_an_event_older_than_the_history_keeps_is_refused_and_nothing_is_stored(tmp_path):
    """Stored, it would be invisible at once: a replayed 1997 log left a device without history."""
    store = HistoryStore(tmp_path / "h.db")
    now = 1_000_000_000.0
    store.clock = lambda: now
    with pytest.raises(ConfigError, match=r"\(1999-09-09\) is older than this history keeps \(the last 730 days"):
        store.record("p", "late", "play", ts=now - 731 * DAY)
    store.record("p", "edge", "play", ts=now - 730 * DAY)  # exactly at the cutoff: kept
    assert [e.item for e in store.events("p")] == ["edge"]
    assert store.db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1


def test_default_retention_keeps_two_years(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    now = 1_000_000_000.0
    store.clock = lambda: now
    store.record("p", "keep", "play", ts=now - 729 * DAY)
    recorded_back_then(store, "p", "drop", "play", now - 731 * DAY)
    assert store.prune(now) == 1 and [e.item for e in store.events("p")] == ["keep"]


# ------------------------------------------------------------------ generation


def test_generation_changes_for_the_profile_written_and_no_other(store):
    a0, b0 = store.generation("a"), store.generation("b")
    assert store.generation("a") == a0  # reading changes nothing
    store.record("a", "x", "play")
    a1 = store.generation("a")
    assert a1 != a0 and store.generation("b") == b0
    store.set_preferences("b", "genre", ["jazz"])
    b1 = store.generation("b")
    assert b1 != b0 and store.generation("a") == a1
    store.forget("a")
    assert store.generation("a") != a1 and store.generation("b") == b1


def test_generation_changes_for_every_profile_on_shared_writes(store):
    a0 = store.generation("a")
    store.save_item("x", "space", None, {})
    a1 = store.generation("a")
    assert a1 != a0
    store.prune()  # nothing old: what was derived from the history still holds
    assert store.generation("a") == a1
    recorded_back_then(store, "b", "y", "play", 1.0)  # older than any retention keeps now
    b1 = store.generation("b")
    assert store.prune() == 1 and store.generation("a") != a1 and store.generation("b") != b1


def test_automatic_retention_that_removes_nothing_keeps_every_kept_window(store):
    """record() runs retention every 100 events; when it finds nothing to remove, the users'
    kept windows stay valid (their next request reads only their new events)."""
    store.record("a", "x", "play")
    a0 = store.generation("a")
    for i in range(150):
        store.record("b", f"i{i}", "play")
    assert store.generation("a") == a0 and store.count() == 151


def test_generation_sees_writes_of_another_connection(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    before = store.generation("a")
    other = HistoryStore(tmp_path / "h.db")
    other.record("a", "x", "play")
    other.close()
    assert store.generation("a") != before
    assert [e.item for e in store.events("a")] == ["x"]


def test_a_failed_transaction_writes_nothing_and_keeps_the_generation(store):
    before = store.generation("a")
    with pytest.raises(RuntimeError):
        with store._transaction("a"):
            store.db.execute("INSERT INTO events (profile, item, event, ts) VALUES ('a', 'x', 'play', 1)")
            raise RuntimeError("boom")
    assert store.count() == 0 and store.generation("a") == before


# ------------------------------------------------------------------ added items, schema, errors


def test_saved_items_keep_their_order_per_space(store):
    store.save_item("b", "space-1", b"\x01", {"title": "B"})
    store.save_item("a", "space-1", None, {"title": "A"}, removed=True)
    store.save_item("c", "space-2", b"\x02", {})
    store.save_item("a", "space-2", b"\x04", {"title": "A in 2"})  # the same item under another space
    assert store.saved_items("space-1") == [("b", b"\x01", {"title": "B"}, False), ("a", None, {"title": "A"}, True)]
    assert store.saved_items("space-2") == [("c", b"\x02", {}, False), ("a", b"\x04", {"title": "A in 2"}, False)]
    assert store.saved_items("space-1")  # reading one space never deletes another's rows
    store.save_item("b", "space-1", b"\x03", {"title": "B2"})  # saving again updates the row where it is
    assert store.saved_items("space-1") == [("b", b"\x03", {"title": "B2"}, False), ("a", None, {"title": "A"}, True)]


def test_a_version_2_file_keeps_its_added_items_in_order_when_it_moves_to_version_3(tmp_path):
    from edgerec.runtime.history_schema import MIGRATIONS

    db = tmp_path / "v2.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        for statement in MIGRATIONS[1] + MIGRATIONS[2]:
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        conn.executemany("INSERT INTO added_items VALUES (?, ?, ?, ?, ?)",
                         [("z", "s", b"\x01", "{}", 0), ("a", "s", None, '{"title": "A"}', 1)])
    store = HistoryStore(db)
    assert store.version() == SCHEMA_VERSION
    assert store.saved_items("s") == [("z", b"\x01", {}, False), ("a", None, {"title": "A"}, True)]


def test_a_newer_schema_is_refused(tmp_path):
    db = tmp_path / "new.db"
    HistoryStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(HistoryError, match=f"schema version {SCHEMA_VERSION + 1}, newer than this runtime"):
        HistoryStore(db)


def test_reopening_keeps_events_and_schema(tmp_path):
    db = tmp_path / "h.db"
    store = HistoryStore(db)
    store.record("p", "a", "play")
    store.set_preferences("p", "genre", ["jazz"])
    store.close()
    again = HistoryStore(db)
    assert [e.item for e in again.events("p")] == ["a"] and again.preferences("p") == {"genre": ["jazz"]}
    assert again.version() == SCHEMA_VERSION


def test_a_database_locked_by_another_process(tmp_path):
    db = tmp_path / "locked.db"
    HistoryStore(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        store = HistoryStore(db, timeout=0.1)  # opening and reading do not wait for another's write (WAL)
        assert store.count() == 0
        with pytest.raises(HistoryError, match="locked by another process"):
            store.record("p", "a", "play")
        holder.execute("ROLLBACK")
        assert store.count() == 0
        store.record("p", "a", "play")  # the lock is gone: writes work again
        assert store.count() == 1
    finally:
        holder.close()


def test_reads_of_a_broken_database_raise_history_errors(store):
    store.db.execute("DROP TABLE events")
    with pytest.raises(HistoryError, match="could not read"):
        store.events("p")
    with pytest.raises(HistoryError, match="could not read"):
        store.events("p", limit=3)
    with pytest.raises(HistoryError, match="could not read"):
        store.events_after("p", 0, 3)
    with pytest.raises(HistoryError, match="could not write to .*; nothing of this change was stored$"):
        store.record("p", "a", "play")


def test_context_and_item_metadata_are_stored_as_canonical_json(store):
    store.record("p", "a", "play", context={"b": 2, "a": 1})
    store.save_item("x", "space", None, {"z": 1, "title": "X"})
    assert store.db.execute("SELECT context FROM events").fetchone()[0] == '{"a": 1, "b": 2}'
    assert store.db.execute("SELECT meta FROM added_items").fetchone()[0] == '{"title": "X", "z": 1}'


def test_a_store_in_a_new_nested_folder(tmp_path):
    store = HistoryStore(tmp_path / "a" / "b" / "h.db")
    store.record("p", "x", "play")
    assert (tmp_path / "a" / "b" / "h.db").exists() and store.count() == 1


def test_the_store_is_shared_by_threads(store):
    done = []
    worker = threading.Thread(target=lambda: done.append(store.record("p", "from-thread", "play")))
    worker.start()
    worker.join()
    assert done and [e.item for e in store.events("p")] == ["from-thread"]


def test_the_lock_timeout_is_the_one_given(tmp_path):
    """A store waits up to its timeout for another writer: a short one gives up, a long one gets in."""
    db = tmp_path / "h.db"
    HistoryStore(db).close()
    patient = HistoryStore(db, timeout=10)
    hasty = HistoryStore(db, timeout=0.05)
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)  # released by a timer thread
    try:
        holder.execute("BEGIN IMMEDIATE")
        release = threading.Timer(1.0, lambda: holder.execute("ROLLBACK"))
        release.start()
        with pytest.raises(HistoryError, match="locked by another process"):
            hasty.record("p", "a", "play")  # gives up long before the holder lets go
        patient.record("p", "b", "play")  # waits for the release, then writes
        release.join()
        assert [e.item for e in patient.events("p")] == ["b"]
    finally:
        holder.close()


def test_v1_events_without_context_read_as_empty(tmp_path):
    db = tmp_path / "v1.db"
    write_v1_history(db)
    store = HistoryStore(db)
    store.clock = lambda: 1_000.0  # the v1 file's event is at t=5: retention keeps it by this clock
    assert store.version() == SCHEMA_VERSION
    [event] = store.events("p")
    assert (event.item, event.value, event.ts, event.context) == ("a", 1.0, 5.0, {})
    assert store.events("p", limit=1)[0].context == {}
    store.set_preferences("p", "tag", ["x"])  # the v2 tables exist
    store.save_item("i", "s", None, {})
    assert store.preferences("p") == {"tag": ["x"]} and len(store.saved_items("s")) == 1


def test_a_corrupt_file_and_a_closed_store_give_history_errors(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError, match=r"bad.db cannot be used \(it is not a plain SQLite database; .*\); "
                                           r"otherwise move it away and a new one will be created"):
        HistoryStore(bad)
    store = HistoryStore(tmp_path / "h.db")
    store.close()
    with pytest.raises(HistoryError, match=r"^the history h\.db was closed \(close\(\) or the end of a `with` block\); open it again to use it$"):
        store.generation("p")


# ------------------------------------------------------------------ what each entry point refuses, by name


@pytest.mark.parametrize("call", [
    lambda s: s.events(""), lambda s: s.events_after("", 0, 3), lambda s: s.count(""), lambda s: s.preferences(""),
    lambda s: s.set_preferences("", "genre", ["jazz"]), lambda s: s.export(""), lambda s: s.forget(""),
])
def test_an_empty_profile_is_refused_by_name_everywhere(store, call):
    with pytest.raises(ConfigError, match="^user must not be empty$"):
        call(store)


def test_limits_and_preference_kinds_are_refused_by_name(store):
    with pytest.raises(ConfigError, match=r"^limit must be an integer from 0 to \d+ \(got -1\)$"):
        store.events("p", limit=-1)
    with pytest.raises(ConfigError, match=r"^limit must be an integer from 0 to \d+ \(got -1\)$"):
        store.events_after("p", 0, -1)
    with pytest.raises(ConfigError, match="^preference kind must not be empty$"):
        store.set_preferences("p", "", ["jazz"])
    assert store.preferences("p") == {}


def test_items_since_takes_the_given_events_of_every_profile_from_the_cutoff_on(store):
    store.clock = lambda: 1_000.0  # times near 0 that retention keeps by this clock
    store.record("p", "old", "play", ts=99.0)
    store.record("p", "at-cutoff", "finish", ts=100.0)  # at the cutoff: included
    store.record("q", "other-profile", "play", ts=150.0)
    store.record("p", "skipped", "skip", ts=160.0)  # an event not asked for
    store.record("q", "liked", "like", ts=170.0)
    store.record("p", "earlier-id-later-ts", "play", ts=300.0)
    store.record("q", "later-id-earlier-ts", "play", ts=200.0)  # listed in the order recorded, not by time
    assert store.items_since(100.0, ("play", "finish")) == [
        "at-cutoff", "other-profile", "earlier-id-later-ts", "later-id-earlier-ts"]
    assert store.items_since(100.0, ("like",)) == ["liked"]
    assert store.items_since(301.0, ("play", "finish")) == []


def test_pruning_erases_without_rebuilding_the_file_and_forget_rebuilds_it(tmp_path):
    # prune() runs on every retention pass, so it only overwrites (secure_delete) and checkpoints;
    # forget() is rare and rebuilds the file (VACUUM) so not even a free page keeps a trace
    store = HistoryStore(tmp_path / "h.db", Retention(max_events=5))
    for i in range(60):
        store.record("p", "item-" + "x" * 200 + str(i), "play")
    assert store.prune() == 55
    assert pragma(store, "freelist_count") > 0
    store.forget("p")
    assert pragma(store, "freelist_count") == 0
    store.close()


def test_an_encrypted_store_refuses_an_online_backup_and_writes_nothing(store, tmp_path):
    store.encrypted = True  # the guard reads only this flag; test_encrypted_history.py opens a real one
    with pytest.raises(HistoryError, match=r"^online backup of an encrypted history is not supported yet; copy the "
                                           r"file \(it stays encrypted\) while no app has it open$"):
        store.backup(tmp_path / "copy.db")
    assert not (tmp_path / "copy.db").exists() and not (tmp_path / "copy.db.tmp").exists()


def test_saving_items_into_a_closed_store_says_nothing_was_added(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    store.close()
    with pytest.raises(HistoryError, match=r"^the history h\.db was closed \(close\(\) or the end of a `with` block\); open it again to use it$"):  # it said "could not write", as if damaged
        store.save_items([("a", "space", None, {}, False)])


def test_event_values_contexts_and_reads_of_a_closed_store_are_refused_by_name(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    assert store.erasure_pending is False  # a new store has no erasure left to finish
    with pytest.raises(ConfigError, match="^event value must be a finite number"):
        store.record("p", "a", "play", value=float("nan"))
    with pytest.raises(ConfigError, match="^context must be"):
        store.record("p", "a", "play", context=["not", "a", "mapping"])
    assert store.count() == 0
    store.close()
    with pytest.raises(HistoryError, match=r"^the history h\.db was closed \(close\(\) or the end of a `with` block\); open it again to use it$"):  # it advised `edgerec history recover`
        store.events("p")


def test_a_limit_of_zero_asks_for_nothing(store):
    store.record("p", "a", "play")
    assert store.events("p", limit=0) == [] and store.events_after("p", 0, 0) == []


@pytest.mark.parametrize("values", ["jazz", None, ["jazz", ""]])
def test_preference_values_are_refused_by_their_kind(store, values):
    with pytest.raises(ConfigError, match="^(each of )?genre preferences "):
        store.set_preferences("p", "genre", values)
    assert store.preferences("p") == {}


def test_a_file_with_a_sqlite_header_and_garbage_after_it_is_refused_with_the_way_out(tmp_path):
    bad = tmp_path / "h.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xa5" * 4000)
    with pytest.raises(HistoryError, match=r"^history database .*h\.db cannot be used \(.*\); if it is damaged, "
                                           r"recover its readable events into a new file with `edgerec history "
                                           r"recover`$"):
        HistoryStore(bad)


@pytest.mark.parametrize("name", ["file:c.db", "file:c.db?mode=ro", "a#b.db", "50%.db", "file:"])
def test_a_history_lives_at_the_literal_path_whatever_its_name(tmp_path, monkeypatch, name):
    """SQLite read a name starting with "file:" as a URI: the events went to c.db, made by the umask
    (readable by others), while the owner-only checks ran on "file:c.db"."""
    monkeypatch.chdir(tmp_path)
    store = HistoryStore(name)
    store.record("ann", "i1", "play")
    store.close()
    made = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm")))
    assert made == [name]
    assert oct((tmp_path / name).stat().st_mode & 0o777) == "0o600"
    assert [e.item for e in HistoryStore(name).events("ann")] == ["i1"]


@pytest.mark.parametrize("path, error, message", [
    (None, ConfigError, "got NoneType"), (5, ConfigError, "got int"), (b"h.db", ConfigError, "got bytes"),
    ("a\0b.db", ConfigError, "a NUL byte"), ("", ConfigError, "an empty path"),
    ("folder/" + "x" * 300, HistoryError, "cannot be used (File name too long); pass a shorter path"),
    ("plain-file/h.db", HistoryError, "lies under a file, not a folder"),
])
def test_a_history_path_that_cannot_be_one_is_an_edgerec_error_naming_no_folder(tmp_path, monkeypatch, path, error,
                                                                                message):
    """OSError, TypeError and ValueError escaped; the OSError showed every folder above the file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "plain-file").write_text("x")
    with pytest.raises(error, match=re.escape(message)) as err:
        HistoryStore(path)
    assert str(tmp_path) not in str(err.value)


def test_a_history_held_exclusively_by_another_connection_is_locked_not_damaged(tmp_path):
    """An exclusive holder (`history encrypt` runs so) was reported as 'if it is damaged, recover it'."""
    path = tmp_path / "h.db"
    HistoryStore(path).close()
    holder = sqlite3.connect(path)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryError, match="is locked by another process .*close the other app") as err:
            HistoryStore(path, timeout=0.1)
        assert "recover" not in str(err.value)
    finally:
        holder.rollback()
        holder.close()
    HistoryStore(path).close()


def test_the_check_for_misdated_rows_at_open_searches_an_index_not_the_whole_table(store):
    """Every open asks whether a row is dated past the clock's mark (retention.py); without an index on the
    time it read every event: 9 to 20 ms at 200,000 events, and more on a device's CPU."""
    plan = store.db.execute("EXPLAIN QUERY PLAN SELECT EXISTS (SELECT 1 FROM events WHERE ts > 0)").fetchall()
    assert any("INDEX events_by_ts" in row[-1] for row in plan), plan
