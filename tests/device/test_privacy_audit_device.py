"""The privacy audit of the device side (audP, 2026-12-04): what leaves the runtime (messages, stats, log
records, private reports, federated uploads) names no user, no host folder and no consumed item in the clear,
and every report is charged to a ledger that outlives the app. Each found leak is pinned here."""

from __future__ import annotations

import io
import json
import logging
import shutil
import tarfile
import time

import numpy as np
import pytest

from edgerec.errors import BundleError, ConfigError, EdgerecError
from edgerec.runtime import Recommender
from edgerec.runtime.federated import Consent, RoundTask, take_part
from edgerec.runtime.privacy_ledger import Budget
from edgerec.runtime.reporter import PrivateReporter

USER = "CANARY_USER_7f3a"
FOLDER = "CANARY_DIR"


@pytest.fixture
def private(tmp_path):
    """A folder whose path names a person, as an app's data folder can (/data/user/0/<app>/...)."""
    where = tmp_path / FOLDER / "app"
    where.mkdir(parents=True)
    return where


def _clean(text: str, *extra: str) -> None:
    for needle in (USER, FOLDER, "/tmp", *extra):
        assert needle not in text, f"{needle!r} in {text[:300]!r}"


def _packed(path, members) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("members, named", [
    ([("manifest.json", b"{}"), ("a", b"x"), ("a/b", b"y")], "Not a directory: a/b"),  # a file where a folder goes
    ([("manifest.json", b"{}"), ("x" * 300, b"x")], "File name too long: xxx"),  # longer than the file system takes
])
def test_a_packed_bundle_that_fails_to_unpack_is_named_without_the_folder_it_unpacks_in(private, members, named):
    """Its members pass the checks but cannot be written: the system's error named the full path of the
    unpack folder beside the file (the app's folder); now the member's name inside the bundle."""
    packed = private / "update.edgerec"
    _packed(packed, members)
    with pytest.raises(BundleError) as err:
        Recommender.open(packed)
    text = str(err.value)
    assert text.startswith("update.edgerec cannot be unpacked (") and named in text, text
    _clean(text, str(private), ".tmp/")


def test_a_rejected_packed_update_keeps_the_folder_out_of_stats_and_the_log(golden_bundle, private, caplog):
    packed = private / "update.edgerec"
    _packed(packed, [("manifest.json", b"{}"), ("a", b"x"), ("a/b", b"y")])
    with caplog.at_level(logging.DEBUG), Recommender.open(packed, history=private / "h.db", fallback=golden_bundle,
                                                          backend="onnx") as rec:
        stats = json.dumps(rec.stats())
    assert rec.update.accepted is False and "Not a directory: a/b" in rec.update.reason
    _clean(stats + " ".join(r.getMessage() for r in caplog.records), str(private))


def test_private_reports_refuse_a_history_kept_in_memory(golden_bundle, private):
    """With history=None the ledger lived in memory: every app start had a fresh budget, so a device could
    report past its daily cap by restarting. Reports now need the history (and so the ledger) in a file."""
    for _start in range(2):
        with Recommender.open(golden_bundle, backend="onnx") as rec:
            with pytest.raises(ConfigError, match="^private reports need the history in a file"):
                PrivateReporter(rec, Budget(per_day=1.0, per_30_days=10.0))
    for start in range(2):  # with a file, the second start finds the first one's spending
        with Recommender.open(golden_bundle, history=private / "h.db", backend="onnx") as rec:
            reporter = PrivateReporter(rec, Budget(per_day=1.0, per_30_days=10.0))
            if start == 0:
                assert reporter.category_shares(1.0)["epsilon"] == 1.0
            else:
                with pytest.raises(EdgerecError, match="refused"):
                    reporter.category_shares(1.0)
                assert [e[2] for e in reporter.ledger.entries()] == [1.0]


def _played(rec, rows) -> list[str]:
    items = [rec.catalog.item_id(int(r)) for r in rows]
    recent = time.time() - 3_600
    for i, item in enumerate(items):
        rec.record(USER, item, "play", timestamp=recent + i)
    return items


def test_what_leaves_the_device_names_no_user_folder_or_played_item(golden_bundle, private, caplog):
    """A user with a marked id plays items with a history under a marked folder; stats, log records, every
    private report and a DP federated upload are scanned for the id, the folder and the played item ids."""
    with caplog.at_level(logging.DEBUG), Recommender.open(golden_bundle, history=private / "history.db",
                                                          backend="onnx") as rec:
        items = _played(rec, [3, 17, 8, 40, 22, 5])
        assert rec.recommend(USER, k=5)
        reporter = PrivateReporter(rec, Budget(per_day=10.0, per_30_days=100.0))
        reports = [reporter.items_consumed(0.5), reporter.category_shares(0.5), *reporter.health(0.5),
                   reporter.experiment("ranker-v2", "control", {"plays": 6}, {"plays": 20}, epsilon=0.5)]
        task = RoundTask(round=1, space=rec.manifest.embedding_space, epsilon=0.5, negatives=8)
        result = take_part(rec, USER, task, ledger=reporter.ledger, consent=Consent(opted_in=True))
        upload = result.payload
        text = json.dumps(reports) + json.dumps(rec.stats()) + " ".join(r.getMessage() for r in caplog.records)
        ledger = " ".join(e[1] for e in reporter.ledger.entries())
    assert len(reports) == 5 and result.refused is None and upload
    _clean(text + ledger, str(private), *items)
    blob = upload + text.encode()
    for needle in [USER, FOLDER, str(private), *items]:
        assert needle.encode() not in blob and needle.encode("utf-16-le") not in blob


@pytest.mark.parametrize("call, message", [
    (lambda rec: rec.record(USER, "no-such-item"), "^unknown item 'no-such-item'"),
    (lambda rec: rec.record(USER * 20, rec.catalog.item_id(0)), "^user is 320 characters long"),
    (lambda rec: rec.recommend(USER, k=0), "^k must be a positive integer"),
    (lambda rec: rec.recommend(USER, context={"device": "toaster"}), "^unknown device 'toaster'"),
    (lambda rec: rec.onboard(USER, genres=["no-such-genre"]), "^unknown genres"),
    (lambda rec: rec.history.backup(rec.history.path), "^history.db exists"),
])
def test_device_api_refusals_name_no_user_and_no_folder(golden_bundle, private, call, message):
    with Recommender.open(golden_bundle, history=private / "history.db", backend="onnx") as rec:
        with pytest.raises(EdgerecError, match=message) as err:
            call(rec)
    _clean(str(err.value), str(private))


@pytest.mark.parametrize("damage, message", [
    (lambda path: path.write_bytes(b"SQLite format 3\x00" + b"garbage" * 500), "^history database history.db"),
    (lambda path: path.write_bytes(b"not a database " * 100), "^history file history.db cannot be used"),
    (lambda path: path.write_bytes(b""), "^history file history.db is empty"),
    (lambda path: path.mkdir(), "^history path history.db is not a regular file"),
])
def test_a_bad_history_file_is_named_by_its_base_name(golden_bundle, private, damage, message):
    damage(private / "history.db")
    with pytest.raises(EdgerecError, match=message) as err:
        Recommender.open(golden_bundle, history=private / "history.db", backend="onnx")
    _clean(str(err.value), str(private))


@pytest.mark.parametrize("kind, message", [("missing", "^missing is not a bundle"),
                                           ("file", "^bundle.txt cannot be unpacked"),
                                           ("empty", "^empty has no manifest.json")])
def test_a_bad_bundle_path_is_named_by_its_base_name(private, kind, message):
    where = private / {"file": "bundle.txt"}.get(kind, kind)
    if kind == "file":
        where.write_text("not a tar")
    elif kind == "empty":
        where.mkdir()
    with pytest.raises(BundleError, match=message) as err:
        Recommender.open(where)
    _clean(str(err.value), str(private))


def test_a_bundle_copy_missing_a_file_is_named_by_its_files(golden_bundle, private):
    bundle = shutil.copytree(golden_bundle, private / "bundle")
    name = next(n for n in json.loads((bundle / "manifest.json").read_text())["files"] if n.endswith(".npy"))
    (bundle / name).unlink()
    with pytest.raises(BundleError, match=f"^bundle file {name} is missing from bundle") as err:
        Recommender.open(bundle)
    _clean(str(err.value), str(private))
    assert np.load(golden_bundle / name, allow_pickle=False) is not None  # the golden copy is untouched


def _spend(bundle, history, epsilon: float = 1.0) -> None:
    with Recommender.open(bundle, history=history, backend="onnx") as rec:
        PrivateReporter(rec, Budget(per_day=1.0, per_30_days=10.0)).category_shares(epsilon)


def _may_report(bundle, history) -> bool:
    with Recommender.open(bundle, history=history, backend="onnx") as rec:
        try:
            PrivateReporter(rec, Budget(per_day=1.0, per_30_days=10.0)).category_shares(0.5)
        except EdgerecError:
            return False
    return True


def test_a_recovered_history_keeps_the_privacy_ledger(golden_bundle, private):
    """`history recover` (what a damaged history's messages advise) copied events, preferences and added items
    but not the ledger: the recovered device could report its day's budget again at once."""
    from edgerec.runtime.history import HistoryStore
    from edgerec.runtime.privacy_ledger import PrivacyLedger

    _spend(golden_bundle, private / "history.db")
    report = HistoryStore.recover(private / "history.db", private / "recovered.db")
    assert report["privacy_ledger"] == 1 and report["unreadable"] == 0
    assert not _may_report(golden_bundle, private / "recovered.db")
    store = HistoryStore(private / "recovered.db")
    assert [e[1:] for e in PrivacyLedger(store).entries()] == [("category_shares:genre", 1.0)]
    store.close()
    plain = HistoryStore.recover(private / "recovered.db", private / "again.db")  # the copy recovers alike
    assert plain["privacy_ledger"] == 1


def test_a_recovered_ledger_keeps_the_device_clock_of_each_entry(private):
    """An entry dated back keeps the real day it was spent on (its clock): recovery copies it, or a report
    dated back and then recovered could spend that real day's budget again."""
    from edgerec.runtime.history import HistoryStore
    from edgerec.runtime.privacy_ledger import Budget, PrivacyLedger

    store = HistoryStore(private / "history.db")
    store.record(USER, "i1", "play")
    PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0)).charge("health", 1.0, time.time() - 5 * 86_400.0)
    store.close()
    HistoryStore.recover(private / "history.db", private / "recovered.db")
    store = HistoryStore(private / "recovered.db")
    try:
        (ts, clock), = store.db.execute("SELECT ts, clock FROM privacy_ledger").fetchall()
        assert abs(clock - time.time()) < 60 and abs(ts - (time.time() - 5 * 86_400.0)) < 60
        with pytest.raises(EdgerecError, match="device clock"):
            PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0)).charge("health", 0.5, time.time() - 86_400.0)
    finally:
        store.close()


def test_a_history_without_a_ledger_recovers_without_one(private):
    from edgerec.runtime.history import HistoryStore

    store = HistoryStore(private / "history.db")
    store.record(USER, "i1", "play")
    store.close()
    assert HistoryStore.recover(private / "history.db", private / "out.db") == {
        "events": 1, "preferences": 0, "added_items": 0, "unreadable": 0}
    store = HistoryStore(private / "out.db")
    assert "privacy_ledger" not in {r[0] for r in store.db.execute("SELECT name FROM sqlite_master")}
    store.close()


def test_unreadable_ledger_entries_count_as_the_whole_budget(golden_bundle, private):
    """What a damaged ledger page held is unknown: the recovered file refuses reports for the 30-day window
    rather than forget what was spent."""
    import sqlite3

    from edgerec.runtime.history import HistoryStore
    from edgerec.runtime.privacy_ledger import PrivacyLedger

    _spend(golden_bundle, private / "history.db", 0.25)
    with sqlite3.connect(private / "history.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name='privacy_ledger'").fetchone()[0]
    db.close()
    with open(private / "history.db", "r+b") as handle:  # the ledger's one page: not a b-tree page any more
        handle.seek((root - 1) * page)
        handle.write(b"\xff" * 16)
    report = HistoryStore.recover(private / "history.db", private / "recovered.db")
    assert report["privacy_ledger"] == 0 and report["unreadable"] >= 1 and report["events"] == 0
    store = HistoryStore(private / "recovered.db")
    entries = PrivacyLedger(store).entries()
    store.close()
    assert len(entries) == 1 and entries[0][2] == 1e6
    assert entries[0][1] == f"history recovered: {report['unreadable']} ledger reads failed"  # only the ledger's
    assert abs(entries[0][0] - time.time()) < 60 and not _may_report(golden_bundle, private / "recovered.db")


def test_why_an_ann_index_was_not_cached_names_the_cache_folder_only(golden_bundle, private):
    """`rec.models.ann.unsaved` (docs/runtime.md: apps read and log it) held the system's error with the cache
    folder's full path."""
    import importlib.util

    if importlib.util.find_spec("usearch") is None:  # not importorskip: usearch before onnxruntime crashes
        pytest.skip("usearch is not installed here")
    (private / "afile").write_text("x")
    with Recommender.open(golden_bundle, backend="onnx", ann="usearch", cache_dir=private / "afile" / "ann") as rec:
        index = rec.models.ann_index()
    assert index.unsaved == "Not a directory" and str(private) not in index.unsaved  # the reason, no folder


class _Truthful:
    """Randomness under which randomized response keeps the true value (ldp.Randomness): reports then say
    what they drew from."""

    def below(self, n: int) -> int:
        return 0

    def bernoulli(self, p: float) -> bool:
        return True


def test_a_report_dated_back_reports_that_days_plays_not_todays(golden_bundle, private):
    """The ledger dates an entry at the report's `now` when nothing newer is in it, but the report drew from
    every play after now - 1 day, today's included: reports dated back one day apart each fit the daily cap
    and each reported today's plays (k reports of one day at epsilon 1 each). A report's plays are now those
    of the day that ends at its ledger entry."""
    day = 86_400.0
    with Recommender.open(golden_bundle, history=private / "history.db", backend="onnx") as rec:
        today = time.time()
        rec.record(USER, rec.catalog.item_id(5), "play", timestamp=today - 60)
        rec.record(USER, rec.catalog.item_id(5), "play", timestamp=today - 4 * day)
        genre = rec.catalog.categorical["genre"][1][int(rec.catalog.categorical["genre"][0][5])]
        # a simulation's reporter: the days walked here are simulated (a real one counts them all today too)
        reporter = PrivateReporter(rec, Budget(per_day=1.5, per_30_days=10.0), rng=_Truthful(), simulation=True)
        back = [reporter.category_shares(1.0, now=today - k * day) for k in (3, 2, 1)]
        assert [r["domain"]["labels"][r["value"]] for r in back] == ["(none)"] * 3  # no play in those days
        # (the play at today - 4 days is the first one's edge: its day is (entry - 1 day, entry], as the ledger's)
        assert [round((today - e[0]) / day) for e in reporter.ledger.entries()] == [3, 2, 1]  # each day fits
        report = reporter.category_shares(1.0, now=today)  # today's own report: the one that holds the play
        assert report["domain"]["labels"][report["value"]] == genre
        late = reporter.category_shares(0.5, now=today - 5 * day)  # dated before the newest entry: dated and
        assert late["domain"]["labels"][late["value"]] == "(none)"  # drawn on its own day, which had no play
        assert reporter.ledger.entries()[-1][0] == today - 5 * day
        with pytest.raises(EdgerecError, match="refused"):
            reporter.category_shares(1.0, now=today)  # today's budget: 1 of 1.5 spent
