"""Crash safety and concurrency of the files the runtime writes on a device besides the history: the ANN
index cache, packed bundles' unpacked copies, the privacy ledger; two Recommenders on one folder."""

import threading

import numpy as np
import pytest

from edgerec.errors import PrivacyBudgetError
from edgerec.runtime import Recommender
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.privacy_ledger import Budget, PrivacyLedger


class Killed(BaseException):
    """A kill seen from inside: the writer stops where it is."""


@pytest.fixture
def usearch():
    pytest.importorskip("onnxruntime")  # before usearch: the other order crashes the process (the libraries' clash)
    return pytest.importorskip("usearch.index", reason="the index is the optional extra edgerec[ann]")


def open_ann(bundle, cache):
    return Recommender.open(bundle, backend="onnx", ann="usearch", cache_dir=cache)


def cache_file(cache):
    files = [p for p in cache.iterdir() if p.suffix == ".usearch"]
    assert len(files) == 1 and [p.name for p in cache.iterdir()] == [files[0].name]  # no temporary beside it
    return files[0]


def test_a_torn_ann_cache_is_built_again_and_replaced(golden_bundle, usearch, tmp_path):
    with open_ann(golden_bundle, tmp_path) as rec:
        rec.warm_up()
        whole = cache_file(tmp_path).read_bytes()
        expected = [r.item_id for r in rec.recommend("u", k=5)]
    for cut in (0, 64, len(whole) // 2, len(whole) - 1):  # what a kill during an in-place save left
        cache_file(tmp_path).write_bytes(whole[:cut])
        with open_ann(golden_bundle, tmp_path) as rec:
            rec.warm_up()  # was: ValueError / RuntimeError from the library, and the index never came back
            assert rec.models.ann.unsaved is None and len(rec.models.ann.index) == 56
            assert [r.item_id for r in rec.recommend("u", k=5)] == expected
            assert "ann_fallback" not in rec.stats()["counters"]
        restored = usearch.Index.restore(str(cache_file(tmp_path)), view=True)  # replaced by a whole file
        assert restored is not None and len(restored) == 56
        del restored  # its memory map: the next round writes over the file


def test_a_cache_save_killed_half_way_leaves_no_torn_file(golden_bundle, usearch, tmp_path, monkeypatch):
    real_save = usearch.Index.save

    def killed_save(self, path, *args, **kwargs):
        real_save(self, path, *args, **kwargs)
        with open(path, "r+b") as handle:  # half of it reached the disk
            handle.truncate(handle.seek(0, 2) // 2)
        raise Killed

    monkeypatch.setattr(usearch.Index, "save", killed_save)
    with open_ann(golden_bundle, tmp_path) as rec, pytest.raises(Killed):
        rec.warm_up()
    monkeypatch.setattr(usearch.Index, "save", real_save)
    assert not list(tmp_path.glob("ann-*"))  # no torn file under the cache's name (its temporary is hidden)
    with open_ann(golden_bundle, tmp_path) as rec:
        rec.warm_up()
        assert rec.models.ann.unsaved is None
    assert cache_file(tmp_path).stat().st_size > 0  # the killed save's temporary was cleared, the cache written


def test_two_recommenders_on_one_cache_folder_share_the_index_file(golden_bundle, usearch, tmp_path):
    with open_ann(golden_bundle, tmp_path) as first, open_ann(golden_bundle, tmp_path) as second:
        first.warm_up()
        saved = cache_file(tmp_path).stat()
        second.warm_up()  # restored from the first one's file, not built and written again
        assert cache_file(tmp_path).stat().st_mtime_ns == saved.st_mtime_ns
        assert len(second.models.ann.index) == 56
        assert [r.item_id for r in first.recommend("u", k=5)] == [r.item_id for r in second.recommend("u", k=5)]


def test_two_ledgers_on_one_history_never_spend_past_the_budget_together(tmp_path):
    path = tmp_path / "history.db"
    stores = [HistoryStore(path), HistoryStore(path)]  # two processes' connections to one file
    ledgers = [PrivacyLedger(store, Budget(per_day=1.0, per_30_days=10.0)) for store in stores]
    granted, start = [], threading.Barrier(2)

    def spend(ledger):
        start.wait()
        for _ in range(15):
            try:
                ledger.charge("items_consumed", 0.1, now=1_790_000_000.0)
                granted.append(1)
            except PrivacyBudgetError:
                pass

    threads = [threading.Thread(target=spend, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 10  # a charge reads what was spent and adds to it in one transaction
    entries = ledgers[0].entries()
    assert len(entries) == 10 and np.isclose(sum(e[2] for e in entries), 1.0)
    for store in stores:
        store.close()


def test_a_key_creation_killed_half_way_leaves_no_key_file(tmp_path, monkeypatch):
    import os

    from edgerec.runtime.keys import FileKey

    real_fdopen = os.fdopen

    class Torn:  # the first characters of the key reach the file, then the process is killed
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *_):
            self.handle.close()

        def write(self, text):
            self.handle.write(text[:10])
            self.handle.flush()
            raise Killed

    monkeypatch.setattr(os, "fdopen", lambda fd, *args, **kwargs: Torn(real_fdopen(fd, *args, **kwargs)))
    path = tmp_path / "history.key"
    with pytest.raises(Killed):
        FileKey.create(path)
    monkeypatch.undo()
    assert not path.exists()  # was: a 10-character key file that reads as no key and blocks a new one
    made = FileKey.create(path)
    assert len(made.key()) == 32 and [p.name for p in tmp_path.iterdir()] == ["history.key"]
