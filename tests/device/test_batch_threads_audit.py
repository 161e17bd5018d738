"""history.batch() beside the rest of the Recommender (audit L1): catalog changes cannot join a batch (the
open catalog changes at once and a rollback could not undo it), a record() inside a batch and another
thread's request take the two locks in one order, and another thread's forget() waits for the batch rather
than being told it runs inside it. Device suite: the standard library and the runtime."""

from __future__ import annotations

import threading
import time

import pytest

from edgerec.errors import ConfigError, HistoryError
from edgerec.runtime import Recommender


@pytest.fixture
def rec(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx") as rec:
        yield rec


def test_catalog_changes_inside_a_batch_are_refused_and_change_nothing(rec, golden_bundle, tmp_path):
    removed = rec.catalog.item_id(1)
    with pytest.raises(RuntimeError, match="the app gave up"):
        with rec.history.batch():
            rec.record("u", rec.catalog.item_id(0), "play")
            with pytest.raises(ConfigError, match=r"^add_items\(\) and remove_items\(\) cannot run inside "
                                                  r"history.batch\(\)"):
                rec.add_items([{"item_id": "NEW1", "title": "New one", "vector": [0.1] * rec.manifest.dim}])
            with pytest.raises(ConfigError, match="cannot run inside history.batch"):
                rec.remove_items([removed])
            raise RuntimeError("the app gave up")  # the batch rolls back
    assert rec.catalog.index.get("NEW1") is None and rec.catalog.is_active(rec.catalog.row(removed))
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx") as fresh:
        assert listed(rec) == listed(fresh)


def listed(rec) -> list[tuple[str, float]]:
    return [(r.item_id, r.score) for r in rec.recommend("u", k=10)]


def _run(*targets, timeout: float = 20.0) -> list[threading.Thread]:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return [t for t in threads if t.is_alive()]


def test_a_record_inside_a_batch_and_another_threads_request_do_not_deadlock(golden_bundle, tmp_path):
    """The request took the catalog sync's lock, then waited for the history's; the batch's record() held
    the history's and waited for the sync's: both threads hung for ever."""
    rec = Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx")  # closed only when not hung
    items = [rec.catalog.item_id(row) for row in range(3)]
    in_batch, lists = threading.Event(), []

    def batch():
        with rec.history.batch():
            rec.record("u", items[0], "play")
            in_batch.set()
            time.sleep(0.3)  # the other thread's request is waiting on a lock by now
            rec.record("u", items[1], "play")

    def request():
        in_batch.wait(10)
        lists.append(rec.recommend("v", k=5))

    assert _run(batch, request) == [] and len(lists) == 1
    assert rec.history.count("u") == 2
    rec.close()


def test_another_threads_forget_waits_for_the_batch(rec):
    items = [rec.catalog.item_id(row) for row in range(2)]
    rec.record("w", items[0], "play")
    in_batch, errors = threading.Event(), []

    def batch():
        with rec.history.batch():
            rec.record("u", items[0], "play")
            in_batch.set()
            time.sleep(0.3)
            rec.record("u", items[1], "play")

    def forget():
        in_batch.wait(10)
        try:
            rec.forget("w")
        except Exception as exc:  # "cannot run inside history.batch()": it did not
            errors.append(exc)

    assert _run(batch, forget) == [] and errors == []
    assert rec.history.count("w") == 0 and rec.history.count("u") == 2


def test_a_request_inside_a_batch_reads_the_batchs_own_records(rec, golden_bundle, tmp_path):
    """The batch's writes were counted at its commit, so a request inside it served the state cached before."""
    items = [rec.catalog.item_id(row) for row in range(4)]
    rec.record("u", items[0], "finish")
    before = listed(rec)
    with rec.history.batch():
        for item in items[1:]:
            rec.record("u", item, "finish")
        inside = listed(rec)
    assert inside != before and inside == listed(rec)
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx") as fresh:
        assert listed(fresh) == inside


def test_a_rolled_back_batch_leaves_no_state_built_inside_it(rec, golden_bundle, tmp_path):
    items = [rec.catalog.item_id(row) for row in range(4)]
    rec.record("u", items[0], "finish")
    before = listed(rec)
    with pytest.raises(RuntimeError):
        with rec.history.batch():
            for item in items[1:]:
                rec.record("u", item, "finish")
            assert listed(rec) != before
            raise RuntimeError("the app gave up")
    assert listed(rec) == before


def test_a_batch_whose_failed_write_the_app_caught_says_so_at_its_end(rec):
    rec.history.db.execute("CREATE TEMP TRIGGER second BEFORE INSERT ON main.events "
                           "WHEN (SELECT COUNT(*) FROM main.events) >= 1 BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    items = [rec.catalog.item_id(row) for row in range(2)]
    with pytest.raises(HistoryError, match=r"^an earlier write of this history.batch\(\) failed, so nothing of "
                                           r"the batch is stored; run the whole batch again$"):
        with rec.history.batch():
            rec.record("u", items[0], "play")
            with pytest.raises(HistoryError, match="disk full"):
                rec.record("u", items[1], "play")
    assert rec.history.count("u") == 0


def test_a_write_failure_the_app_caught_leaves_no_state_built_in_the_batch(rec):
    """The failed write rolls the batch back at once; a request after it, still inside the batch, served the
    state built from the rolled-back records (audit L6)."""
    items = [rec.catalog.item_id(row) for row in range(6)]
    cold = listed(rec)
    with pytest.raises(HistoryError, match="an earlier write of this history.batch"):
        with rec.history.batch():
            for item in items:
                rec.record("u", item, "finish")
            assert listed(rec) != cold
            rec.history.db.execute("CREATE TEMP TRIGGER full BEFORE INSERT ON main.events "
                                   "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
            with pytest.raises(HistoryError, match="disk full"):
                rec.record("u", items[0], "play")
            assert rec.history.count("u") == 0 and listed(rec) == cold
    assert listed(rec) == cold


def test_a_privacy_charge_inside_a_batch_is_refused(rec):
    """A rolled-back batch would undo the epsilon of a report already sent."""
    from edgerec.runtime.privacy_ledger import PrivacyLedger

    ledger = PrivacyLedger(rec.history)
    with rec.history.batch():
        with pytest.raises(ConfigError, match=r"^a privacy ledger charge cannot run inside history.batch\(\)"):
            ledger.charge("popularity", 0.5)
        with pytest.raises(ConfigError, match=r"^a privacy ledger note cannot run inside history.batch\(\)"):
            ledger.note("weekly round (no DP)", key="round-7")  # the key that counts a round once
        with pytest.raises(ConfigError, match=r"^a privacy ledger cannot run inside history.batch\(\)"):
            PrivacyLedger(rec.history)  # its table would go with a rolled-back batch
    assert ledger.charge("popularity", 0.5) > 0 and ledger.note("weekly round (no DP)", key="round-7") > 0
