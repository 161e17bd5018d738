"""The catalog sync reads only the added-item rows written since it last looked (runtime/catalog_sync.py,
history schema v4: each row written takes the items counter's next number). Was: one item added by another
connection made every other connection read and check every saved row of the space again (1,000 large
items: seconds and 155 MiB per process). Two Recommenders on one history file, as two processes of an app."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from edgerec.errors import UnknownIdError
from edgerec.runtime import Recommender
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.history_schema import MIGRATIONS, SCHEMA_VERSION

RNG = np.random.default_rng(7)


def item(item_id: str, **meta) -> dict:
    return {"item_id": item_id, "genre": "jazz", "title": item_id.upper(), "description": "a long text " * 40,
            "vector": RNG.normal(size=8).tolist(), **meta}


@pytest.fixture
def pair(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as a, \
            Recommender.open(golden_bundle, history=tmp_path / "h.db") as b:
        yield a, b


def reads(rec) -> list[int]:
    """The rows each read of rec's saved items returned, from now on."""
    counts, real = [], rec.history.saved_items

    def counting(*args, **kw):
        rows = real(*args, **kw)
        counts.append(len(rows))
        return rows

    rec.history.saved_items = counting
    return counts


def state(rec) -> tuple:
    """What the catalog serves of the added items and removals: (id, vector, metadata) per added row, in
    row order, and the retired bundle rows. (A removed added item's metadata read back from the file holds
    its id too, the session that removed it does not: that is so with every read, whole or not.)"""
    rec.catalog_sync.refresh()
    cat = rec.catalog
    added = [(a.item_id, None if a.vector is None else np.round(a.vector, 6).tolist(),
              {k: v for k, v in a.meta.items() if k != "item_id"}) for a in cat.added]
    return added, sorted(int(r) for r in cat.inactive_rows() if r < cat.base_count)


# ------------------------------------------------------------------ (a) only the new rows are read


def test_one_item_another_connection_adds_is_the_only_row_read(pair):
    a, b = pair
    a.add_items([item(f"x{i}") for i in range(200)])
    b.catalog_sync.refresh()
    assert len(b.catalog.added) == 200
    a.add_items([item("one")])
    counts, steps = reads(b), []
    b.history.db.set_progress_handler(lambda: steps.append(1), 10)  # SQLite's work, not only the rows returned
    assert b.recommend("u", k=3)
    b.history.db.set_progress_handler(None, 10)
    assert counts == [1] and b.catalog.row("one") == b.catalog.base_count + 200
    incremental = len(steps)
    steps.clear()
    b.history.db.set_progress_handler(lambda: steps.append(1), 10)
    b.history.saved_items(b.manifest.embedding_space, b.manifest.dim)  # what a full read costs
    b.history.db.set_progress_handler(None, 10)
    assert incremental * 10 < len(steps)  # through the index: no row's vector and metadata read on the way


def test_no_commit_of_another_connection_reads_nothing_and_another_spaces_rows_are_not_read(pair):
    a, b = pair
    a.add_items([item("x0")])
    b.catalog_sync.refresh()
    counts = reads(b)
    b.recommend("u", k=3)
    a.record("u", "i01", "play")  # a commit that saves no item
    b.recommend("u", k=3)
    a.history.save_items([(f"o{i}", "another-space", RNG.normal(size=8).astype(np.float32).tobytes(),
                           {"title": "O"}, False) for i in range(20)])
    b.recommend("u", k=3)
    assert counts == [0]  # the counter moved for the other space: its rows are not read, nor served
    with pytest.raises(UnknownIdError):
        b.catalog.row("o0")


# ------------------------------------------------------------------ (b) what a full read did, still done


def test_another_connections_adds_updates_and_removals_reach_the_catalog_as_a_new_open_reads_them(pair, golden_bundle,
                                                                                                    tmp_path):
    a, b = pair
    a.add_items([item(f"x{i}") for i in range(5)])
    b.catalog_sync.refresh()
    counts = reads(b)
    a.add_items([item("x1", title="Renamed")])  # metadata updated
    a.add_items([item("x2")])  # a new vector
    a.remove_items(["x3", "i05"])  # an added item and a bundle item
    a.add_items([item("x0", genre="Folk")])
    a.add_items([item("gone")])
    a.remove_items(["gone"])  # added, then removed, before b looked: a row of its own without a vector (§7)
    a.add_items([item("i07", title="Replaced")])  # a bundle id taken over by an added item
    seen = state(b)
    assert sum(counts) == 7  # the seven rows written since b last read, each once (gone's written twice)
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as c:
        assert seen == state(c)
    assert b.catalog.added[b.catalog.index.get("gone") - b.catalog.base_count].vector is None
    served = {r.item_id for r in b.recommend("u", k=100)}
    assert not {"x3", "i05", "gone"} & served and {"x0", "x1", "x2", "i07"} <= served
    stats = b.stats()
    assert (stats["added_items"], stats["updated_items"], stats["removed_items"]) == (4, 1, 3)  # x0-2, x4; i07; i05, x3, gone


def test_a_row_altered_outside_edgerec_is_left_out_and_an_edit_that_reads_is_taken(pair, tmp_path):
    a, b = pair
    a.add_items([item("x0"), item("x1")])
    b.catalog_sync.refresh()
    with sqlite3.connect(tmp_path / "h.db") as other:  # another program: numbered by the file's triggers too
        other.execute("UPDATE added_items SET meta = '{bad' WHERE item = 'x0'")
        other.execute("UPDATE added_items SET meta = ? WHERE item = 'x1'",
                      (json.dumps({"title": "Edited", "genre": "jazz", "tags": []}),))
    counts = reads(b)
    assert b.recommend("u", k=3)  # the damaged row stops nothing
    assert counts == [1]  # x1's row; x0's left out (history_care.readable_items), its last good version kept
    assert b.catalog.title(b.catalog.row("x1")) == "Edited" and b.catalog.title(b.catalog.row("x0")) == "X0"


def test_rows_written_by_a_writer_that_numbers_nothing_are_read(pair, tmp_path):
    """A process of the previous version still running, or recovery's copy, writes rows as schema v3 did:
    the database numbers them, so they are read as any other."""
    a, b = pair
    a.add_items([item("x0")])
    b.catalog_sync.refresh()
    vector = np.ones(8, np.float32).tobytes()
    with sqlite3.connect(tmp_path / "h.db") as old:
        old.execute("INSERT INTO added_items (vector, meta, removed, item, space) VALUES (?, ?, 0, 'old-1', ?)",
                    (vector, json.dumps({"title": "Old", "tags": []}), b.manifest.embedding_space))
        old.execute("UPDATE added_items SET removed = 1, vector = NULL WHERE item = 'x0'")
        old.execute("INSERT OR REPLACE INTO meta VALUES ('items_version', "  # v3's own bump
                    "COALESCE((SELECT value FROM meta WHERE key='items_version'), 0) + 1)")
    counts = reads(b)
    b.catalog_sync.refresh()
    assert b.catalog.row("old-1") >= b.catalog.base_count and counts == [2]
    assert "x0" not in {r.item_id for r in b.recommend("u", k=100)}


def test_every_row_is_read_again_when_the_counter_went_back_or_is_no_number(pair, tmp_path):
    a, b = pair
    a.add_items([item(f"x{i}") for i in range(4)])
    copy = a.history.backup(tmp_path / "copy.db")  # four items
    a.remove_items(["x0"])
    a.add_items([item("x9")])
    b.catalog_sync.refresh()
    counts = reads(b)
    with sqlite3.connect(copy) as source, sqlite3.connect(tmp_path / "h.db") as live:
        source.backup(live)  # the copy written back into the file both have open: the counter is back at 4
    assert b.recommend("u", k=3) and counts == [4]  # every row of the restored file
    assert b.catalog.is_active(b.catalog.row("x0"))  # as the file has it again
    with sqlite3.connect(tmp_path / "h.db") as other:
        other.execute("UPDATE meta SET value = 'garbled' WHERE key = 'items_version'")
    b.recommend("u", k=3)
    assert counts == [4, 4]
    with sqlite3.connect(tmp_path / "h.db") as other:
        other.execute("DELETE FROM meta WHERE key = 'items_version'")
    b.recommend("u", k=3)
    assert counts == [4, 4, 4]
    a.add_items([item("after")])  # numbered above every row of the file, though the counter was gone
    assert a.history._read("SELECT max(change), count(*) FROM added_items") == [(5, 5)]
    b.recommend("u", k=3)  # the last read went by no number: all once more
    a.add_items([item("later")])
    b.recommend("u", k=3)
    assert counts == [4, 4, 4, 5, 1] and "after" in b.catalog.index and "later" in b.catalog.index


def test_forget_and_its_erasure_keep_the_numbers(pair):
    a, b = pair
    a.add_items([item(f"x{i}") for i in range(3)])
    a.record("u", "x1", "play")
    b.catalog_sync.refresh()
    before = state(b)
    counts = reads(b)
    assert a.forget("u") == 1  # deletes, checkpoints, vacuums: the rows are copied, with their numbers
    a.history._try_erase(vacuum=True)
    b.recommend("v", k=3)
    a.add_items([item("x3")])
    b.recommend("v", k=3)
    assert counts == [1] and state(b)[0][:3] == before[0]


def test_a_recovered_history_holds_the_items_and_numbers_its_rows(pair, golden_bundle, tmp_path):
    a, b = pair
    a.add_items([item(f"x{i}") for i in range(3)])
    a.remove_items(["x1", "i02"])
    report = HistoryStore.recover(tmp_path / "h.db", tmp_path / "out.db")
    assert report["added_items"] == 4
    with Recommender.open(golden_bundle, history=tmp_path / "out.db") as c, \
            Recommender.open(golden_bundle, history=tmp_path / "out.db") as d:
        assert state(c) == state(b)
        counts = reads(d)
        c.add_items([item("x5")])
        d.recommend("u", k=3)
        assert counts == [1] and "x5" in d.catalog.index


# ------------------------------------------------------------------ (c) older files upgrade


def old_file(path, version: int, rows: list[tuple], counter: str | None) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        for step in range(1, version + 1):
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(version),))
        if counter is not None:
            conn.execute("INSERT INTO meta VALUES ('items_version', ?)", (counter,))
        conn.executemany("INSERT INTO added_items (item, space, vector, meta, removed) VALUES (?, ?, ?, ?, ?)", rows)


@pytest.mark.parametrize("version", [2, 3])
def test_an_older_file_upgrades_with_its_added_items_intact_and_in_order(tmp_path, version):
    v = [np.full(8, k, np.float32).tobytes() for k in (1, 2, 3)]
    rows = [("z", "s", v[0], '{"title": "Z"}', 0), ("a", "s", None, '{"title": "A"}', 1),
            ("m", "s", v[1], "{}", 0)] + ([("m", "t", v[2], "{}", 0)] if version == 3 else [("k", "t", v[2], "{}", 0)])
    old_file(tmp_path / "old.db", version, rows, "7" if version == 3 else None)
    store = HistoryStore(tmp_path / "old.db")
    assert store.version() == SCHEMA_VERSION == 4
    assert store.saved_items("s") == [("z", v[0], {"title": "Z"}, False), ("a", None, {"title": "A"}, True),
                                      ("m", v[1], {}, False)]
    assert [r[0] for r in store.saved_items("t")] == [rows[3][0]]
    assert store.saved_items("s", since=0) == []  # rows of before carry no number: read whole at open
    store.save_item("n", "s", v[2], {"title": "N"})
    counter = int(store._read("SELECT value FROM meta WHERE key='items_version'")[0][0])
    assert counter == (8 if version == 3 else 1)  # above the old counter
    assert store.saved_items("s", since=counter - 1) == [("n", v[2], {"title": "N"}, False)]
    store.close()


def test_an_old_file_with_items_opens_in_a_recommender_as_before(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as a:
        a.add_items([item("x0"), item("x1")])
        a.remove_items(["x1", "i03"])
        space = a.manifest.embedding_space
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as a:
        before = state(a)
    rows = sqlite3.connect(tmp_path / "h.db").execute(
        "SELECT item, space, vector, meta, removed FROM added_items ORDER BY rowid").fetchall()
    old_file(tmp_path / "v3.db", 3, rows, "4")
    with Recommender.open(golden_bundle, history=tmp_path / "v3.db") as b:
        assert b.history.version() == 4 and state(b) == before and {r[1] for r in rows} == {space}
