"""Catalog updates across a bundle swap (runtime/catalog_carry.py), stats()'s item counts (runtime/catalog_counts.py)
and the ANN index files of old spaces (runtime/models.py).

Was: a bundle of a new embedding space opened on the app's history served the items the app had removed under
the old bundle (a licence ended) and dropped the items it had added, and stats() said 0 added / 0 removed, with
nothing logged; one corrected title counted as 1 added and 1 removed item, and adding then removing an item grew
`items`; and every bundle update left the old space's `ann-<space>-<count>.usearch` in the cache folder for good.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import UnknownIdError
from edgerec.runtime import Recommender
from edgerec.runtime import models as models_module
from edgerec.runtime.bundle import Bundle, Manifest, embedding_space_id, sha256_file
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.models import INDEX_KEPT_S, Models

pytest.importorskip("onnxruntime")
GOLDEN = Path(__file__).resolve().parents[2] / "spec" / "golden"
A, B = GOLDEN / "bundle", GOLDEN / "ranked"  # two spaces over the same 56 ids (i00..i55)
GONE = ["i10", "i20"]  # removed by the app under A (a licence ended)


def third_space(dst: Path) -> Path:
    """A copy of A in a third space: the item table's vectors negated (its checksum and space id made again)."""
    shutil.copytree(A, dst)
    table = dst / "items" / "embeddings.npy"
    np.save(table, np.ascontiguousarray(-np.clip(np.load(table), -127, 127)))
    m = json.loads((dst / "manifest.json").read_text())
    m["files"]["items/embeddings.npy"] = {"sha256": sha256_file(table), "bytes": table.stat().st_size}
    parsed = Manifest.from_dict(m)
    m["embedding_space"] = embedding_space_id(m["files"], parsed.models, parsed.items)
    (dst / "manifest.json").write_text(json.dumps(m, indent=2))
    return dst


def served(rec, user="nobody") -> list[str]:
    return [r.item_id for r in rec.recommend(user, k=len(rec.catalog))]


def changes_under_a(history: Path) -> None:
    with Recommender.open(A, history=history) as rec:
        rec.record("u", "i11", "finish")
        rec.remove_items(GONE)
        rec.add_items([{"item_id": "live-1", "title": "Tonight's show", "vector": [0.1] * 8}])
        rec.add_items([{"item_id": "n1", "title": "Dropped", "vector": [0.2] * 8}])
        rec.remove_items(["n1"])  # an added item removed: no id of B's, nothing to carry


def carry_logs(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "edgerec.runtime" and "catalog changes" in r.getMessage()]


# ------------------------------------------------------------------ 1. a swap keeps the app's removals


def test_a_new_bundles_space_keeps_the_removals_made_under_the_old_one_and_says_what_it_did_not_carry(tmp_path,
                                                                                                    caplog):
    history = tmp_path / "h.db"
    changes_under_a(history)
    caplog.set_level(logging.INFO, logger="edgerec.runtime")
    with Recommender.open(B, history=history) as rec:
        for item in GONE:
            with pytest.raises(UnknownIdError):
                rec.record("u", item, "play")
        list_b = served(rec)
        assert len(list_b) == 54 and not set(GONE) & set(list_b)  # was: both served again
        with pytest.raises(UnknownIdError):
            rec.catalog.row("live-1")  # its vector is A's: not carried, reported
        stats = rec.stats()
        assert stats["catalog_carried"] == {"removed": 2, "added_not_carried": 1}  # was: no such field
        assert (stats["items"], stats["added_items"], stats["removed_items"]) == (54, 0, 2)
    logged = carry_logs(caplog)
    assert len(logged) == 1 and logged[0].levelno == logging.WARNING
    text = logged[0].getMessage()
    assert "2 removed items" in text and "1 items added" in text
    assert not any(word in text for word in ("i10", "i20", "i11", "live-1", "Tonight", "Dropped"))
    caplog.clear()
    with Recommender.open(B, history=history) as rec:  # durable, and done once: no second carry, no second line
        assert not set(GONE) & set(served(rec))
        assert rec.stats()["catalog_carried"] == {"removed": 2, "added_not_carried": 1}
    assert carry_logs(caplog) == []
    with sqlite3.connect(history) as db:
        rows = db.execute("SELECT item, removed FROM added_items WHERE space = ? ORDER BY item",
                          (Bundle.open(B).manifest.embedding_space,)).fetchall()
    assert rows == [("i10", 1), ("i20", 1)]


def test_removals_alone_are_carried_with_an_info_line_and_the_record_is_read_key_by_key(tmp_path, caplog):
    """Nothing left behind is a plain INFO line (WARNING only when added items were not carried); a record that
    lost a key keeps the other, and one altered into something else reads as nothing carried."""
    history = tmp_path / "h.db"
    with Recommender.open(A, history=history) as rec:
        rec.remove_items(GONE)
    caplog.set_level(logging.INFO, logger="edgerec.runtime")
    with Recommender.open(B, history=history) as rec:
        assert rec.stats()["catalog_carried"] == {"removed": 2, "added_not_carried": 0}
    assert [r.levelno for r in carry_logs(caplog)] == [logging.INFO]
    key = "catalog_carried:" + Bundle.open(B).manifest.embedding_space
    for value, carried in [('{"removed": 2}', {"removed": 2, "added_not_carried": 0}),
                           ("not a record", {"removed": 0, "added_not_carried": 0})]:
        with sqlite3.connect(history) as db:
            db.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
        db.close()
        with Recommender.open(B, history=history) as rec:
            assert rec.stats()["catalog_carried"] == carried
            assert not set(GONE) & set(served(rec))  # the carried rows stay whatever the record says


def test_the_app_brings_a_carried_removal_back_and_adds_its_items_again_as_the_docs_say(tmp_path):
    history = tmp_path / "h.db"
    changes_under_a(history)
    with Recommender.open(B, history=history) as rec:
        row = rec.catalog.index.bundle_row("i10")  # the new bundle's own row and vector of the id
        vector = rec.catalog.vectors(np.array([row]))[0]
        rec.update_items([{"item_id": "i10", "title": rec.catalog.title(row), "vector": vector.tolist()}])
        rec.add_items([{"item_id": "live-1", "title": "Tonight's show", "genre": "jazz"}])  # a vector of B's space
        rec.record("u", "i10", "play")
        rec.record("u", "live-1", "play")
        assert {"i10", "live-1"} <= set(served(rec, "v")) and "i20" not in served(rec, "v")
    with Recommender.open(B, history=history) as rec:  # as saved: no carry again over the app's own decision
        assert {"i10", "live-1"} <= set(served(rec, "v")) and "i20" not in served(rec, "v")
        stats = rec.stats()
        assert (stats["items"], stats["added_items"], stats["updated_items"], stats["removed_items"]) == (56, 1, 1, 1)


def test_the_newest_other_space_is_carried_and_a_space_with_changes_of_its_own_takes_none(tmp_path):
    history, c = tmp_path / "h.db", third_space(tmp_path / "c")
    changes_under_a(history)
    with Recommender.open(B, history=history) as rec:  # carries i10, i20 from A
        rec.remove_items(["i30"])
        rec.update_items([{"item_id": "i10", "vector": [0.3] * 8}])  # B's own decision: back
    with Recommender.open(c, history=history) as rec:  # B wrote last: B's removals, not A's
        gone = set(rec.catalog.ids.all()) - set(served(rec))
        assert gone == {"i20", "i30"} and rec.stats()["catalog_carried"] == {"removed": 2, "added_not_carried": 1}
    with Recommender.open(A, history=history) as rec:  # A has its own changes: nothing carried back into it
        assert set(rec.catalog.ids.all()) - set(served(rec)) == set(GONE)
        assert "live-1" in served(rec) and rec.stats()["catalog_carried"] == {"removed": 0, "added_not_carried": 0}


def test_a_history_without_changes_under_another_space_takes_no_write_lock_and_carries_nothing(tmp_path):
    history = tmp_path / "h.db"
    with Recommender.open(A, history=history) as rec:
        rec.record("u", "i11", "finish")
    with sqlite3.connect(history) as other:
        other.execute("BEGIN IMMEDIATE")  # another process writing: an open that needed the lock would wait
        try:
            with Recommender.open(B, history=history) as rec:
                assert rec.stats()["catalog_carried"] == {"removed": 0, "added_not_carried": 0}
        finally:
            other.rollback()
    with sqlite3.connect(history) as db:
        assert db.execute("SELECT count(*) FROM meta WHERE key LIKE 'catalog_carried:%'").fetchone() == (0,)


OPENER = """
import json, logging, sys, time
from pathlib import Path
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logging.getLogger("edgerec.runtime").addHandler(Keep())
logging.getLogger("edgerec.runtime").setLevel(logging.INFO)
from edgerec.runtime import Recommender
start = Path(sys.argv[3])
while not start.exists():
    time.sleep(0.005)
with Recommender.open(sys.argv[1], history=sys.argv[2]) as rec:
    print(json.dumps({"carried": rec.stats()["catalog_carried"], "logged": len(records),
                      "served": [r.item_id for r in rec.recommend("u", k=56)]}))
"""


def test_processes_opening_the_new_bundle_at_once_carry_once(tmp_path):
    history, start = tmp_path / "h.db", tmp_path / "go"
    changes_under_a(history)
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(B), str(history), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    time.sleep(1.0)  # each imports the runtime and waits for the start
    start.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["logged"] for r in results) == 1  # one carry, by one of them
    for r in results:
        assert r["carried"] == {"removed": 2, "added_not_carried": 1} and not set(GONE) & set(r["served"])
    with sqlite3.connect(history) as db:
        assert db.execute("SELECT count(*) FROM meta WHERE key LIKE 'catalog_carried:%'").fetchone() == (1,)


# ------------------------------------------------------------------ 2. stats() counts items, not rows


def test_stats_count_live_items_and_tell_updates_from_additions_and_removals():
    with Recommender.open(A) as rec:
        def counts():
            s = rec.stats()
            return s["items"], s["added_items"], s["updated_items"], s["removed_items"]

        assert counts() == (56, 0, 0, 0)
        row = rec.catalog.row("i02")
        rec.update_items([{"item_id": "i02", "title": "Corrected title",
                           "vector": rec.catalog.vectors(np.array([row]))[0].tolist()}])
        assert counts() == (56, 0, 1, 0)  # was (57, 1, 1): one corrected title, "a new item and a removed one"
        rec.add_items([{"item_id": "n1", "title": "x", "vector": [1.0] * 8}])
        assert counts() == (57, 1, 1, 0)
        rec.remove_items(["n1"])
        assert counts() == (56, 0, 1, 1)  # was (58, 1, 2): adding then removing an item grew `items`
        rec.remove_items(["i03"])
        assert counts() == (55, 0, 1, 2)
        rec.remove_items(["i02"])  # the updated bundle item removed: one removed id, no longer an update
        assert counts() == (54, 0, 0, 3)
        assert len(served(rec)) == 54 == rec.stats()["items"]
        rec.add_items([{"item_id": f"m{n}", "title": "x", "vector": [0.5 + n] * 8} for n in range(3)])
        assert counts() == (57, 3, 0, 3)  # each added item counted, not only whether there was one
        rec.remove_items(["m0", "m1"])
        assert counts() == (55, 1, 0, 5)


# ------------------------------------------------------------------ 3. other spaces' index files go


SPACE, OLD = "9da4727dc5a3be405bc65bf2", "0123456789abcdef01234567"


def aged(path: Path, seconds: float = INDEX_KEPT_S + 60) -> Path:
    when = time.time() - seconds
    os.utime(path, (when, when))
    return path


def index_files(folder: Path, space: str, count: int = 56) -> Path:
    index = folder / f"ann-{space}-{count}.usearch"
    index.write_bytes(b"index")
    (folder / f"{index.name}.sha256").write_text("digest")
    return index


def test_stale_index_files_of_other_spaces_go_and_young_own_and_foreign_files_stay(tmp_path):
    own = aged(index_files(tmp_path, SPACE))
    old = aged(index_files(tmp_path, OLD))
    aged(old.with_name(old.name + ".sha256"))
    young = index_files(tmp_path, "aaaabbbbccccddddeeeeffff")  # just saved: a process may be starting on it
    orphan = tmp_path / f"ann-{OLD}-9.usearch.sha256"  # its index file went (a process killed in between)
    others = [tmp_path / name for name in ("ann-notes.txt", f"x-ann-{OLD}-5.usearch", f"ann-{OLD}.usearch",
                                           f"ann-{OLD}-56.usearch.saving")]
    for path in (orphan, *others):
        path.write_text("x")
        aged(path)
    removed = models_module.remove_other_spaces(tmp_path, SPACE)
    assert sorted(removed) == sorted([old.name, old.name + ".sha256", orphan.name])
    assert own.exists() and young.exists() and all(p.exists() for p in others)


class FakeIndex:
    """An AnnIndex stand-in (usearch is an optional extra): saves its cache file as the real one does."""

    def __init__(self, vectors, count, dim, cache):
        self.count, self.unsaved = count, None
        if cache is not None:
            cache.write_bytes(b"index")
            (cache.parent / f"{cache.name}.sha256").write_text("digest")


def test_building_or_opening_an_index_removes_the_old_spaces_files(tmp_path, monkeypatch):
    monkeypatch.setattr(models_module, "AnnIndex", FakeIndex)
    bundle = Bundle.open(A)
    cache = tmp_path / "cache"
    cache.mkdir()
    old = aged(index_files(cache, OLD))
    aged(old.with_name(old.name + ".sha256"))
    Models(bundle, ItemCatalog(bundle), "onnx", 1, "numpy", "usearch", cache).ann_index()
    assert sorted(p.name for p in cache.iterdir()) == [f"ann-{SPACE}-56.usearch", f"ann-{SPACE}-56.usearch.sha256"]


@pytest.mark.skipif(importlib.util.find_spec("usearch") is None, reason="the index is the optional extra edgerec[ann]")
def test_interleaved_bundles_keep_both_indexes_and_one_left_for_a_week_goes_even_while_mapped(tmp_path):
    history = tmp_path / "h.db"
    with Recommender.open(A, history=history, ann="usearch") as rec:
        rec.warm_up()
    space_a = Bundle.open(A).manifest.embedding_space
    for path in tmp_path.glob(f"ann-{space_a}-*"):
        aged(path)  # last opened over a week ago
    with Recommender.open(A, history=history, ann="usearch") as still:  # another app still serving A
        still.warm_up()  # opened now: its files' time stamps are set, so B's open below keeps them
        with Recommender.open(B, history=history, ann="usearch") as rec:
            rec.warm_up()
            space_b = rec.manifest.embedding_space
        assert len(list(tmp_path.glob(f"ann-{space_a}-*"))) == 2  # interleaved: neither deletes the other's
        before = [r.item_id for r in still.recommend("u", k=10)]
        for path in tmp_path.glob(f"ann-{space_a}-*"):
            aged(path)  # as if A had not been opened for a week
        with Recommender.open(B, history=history, ann="usearch") as rec:
            rec.warm_up()
        assert sorted(p.name for p in tmp_path.glob("ann-*")) == [f"ann-{space_b}-56.usearch",
                                                                   f"ann-{space_b}-56.usearch.sha256"]
        assert [r.item_id for r in still.recommend("u", k=10)] == before  # its mapped view outlives the file
        assert not still.stats()["failures"]  # served by the index, no fallback to the scan


def test_a_recovered_history_keeps_the_record_of_the_carry_and_does_not_carry_again(tmp_path, caplog):
    """recover() copies the meta rows a history needs; without the carry's record the copy carried and logged again
    (and a copy whose carry moved nothing would carry at every first open)."""
    from edgerec.runtime.history import HistoryStore

    history = tmp_path / "h.db"
    changes_under_a(history)
    with Recommender.open(B, history=history):
        pass
    HistoryStore.recover(history, tmp_path / "copy.db")
    caplog.set_level(logging.INFO, logger="edgerec.runtime")
    caplog.clear()  # the first open's line
    with Recommender.open(B, history=tmp_path / "copy.db") as rec:
        assert rec.stats()["catalog_carried"] == {"removed": 2, "added_not_carried": 1}
        assert not set(GONE) & set(served(rec))
    assert carry_logs(caplog) == []
