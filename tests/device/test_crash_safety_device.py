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


def open_ann(bundle, cache):
    return Recommender.open(bundle, backend="onnx", ann="usearch", cache_dir=cache)


def cache_file(cache):
    files = [p for p in cache.iterdir() if p.suffix == ".usearch"]
    # no temporary beside it, only its digest
    assert len(files) == 1 and sorted(p.name for p in cache.iterdir()) == [files[0].name, files[0].name + ".sha256"]
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


# ------------------------------------------------------------------ the helpers every writer uses


def test_write_file_replaces_a_file_whole_with_its_mode_and_leaves_no_temporary(tmp_path):
    import errno
    import os
    import stat

    from edgerec.runtime.atomic import write_file

    path = tmp_path / "new" / "er" / "a.json"  # folders made on the way
    write_file(path, "ünï")
    assert path.read_bytes() == "ünï".encode()
    write_file(path, b"\x00\x01", 0o600)
    assert path.read_bytes() == b"\x00\x01" and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    write_file(path, "x")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~current_umask()  # what any new file gets
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(IsADirectoryError) as info:
        write_file(tmp_path / "folder.json", "x")
    assert (info.value.errno, info.value.strerror) == (errno.EISDIR, "a folder has the file's name")  # messages show it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.json", "new"]


def current_umask() -> int:
    import os

    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def test_a_temporary_is_hidden_beside_its_target_and_named_for_this_process(tmp_path):
    import os
    import stat

    from edgerec.runtime.atomic import Temporary

    with Temporary(tmp_path / "out.bin", ".saving") as tmp:
        assert tmp.path.parent == tmp_path and tmp.path.name.startswith(f".out.bin.{os.getpid()}.")
        assert tmp.path.name.endswith(".saving") and tmp.path.is_file()
        assert stat.S_IMODE(os.stat(tmp.path).st_mode) == 0o666 & ~current_umask()  # published with this mode
        other = Temporary(tmp_path / "out.bin", ".saving")
        assert other.path != tmp.path  # two writers of one place never share one
        other.discard()
        tmp.path.write_bytes(b"whole")
        assert tmp.publish() and not tmp.path.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with pytest.raises(Killed), Temporary(tmp_path / "out.bin", ".saving") as failed:
        raise Killed  # a writer that fails inside the block leaves nothing
    assert not failed.path.exists() and (tmp_path / "out.bin").read_bytes() == b"whole"


def test_a_folder_goes_onto_nothing_or_an_empty_folder_and_never_into_a_full_one(tmp_path):
    from edgerec.runtime.atomic import Temporary

    out = tmp_path / "bundle"
    out.mkdir()  # made empty for it
    first = Temporary(out, ".writing", folder=True)
    (first.path / "items").mkdir()
    (first.path / "items" / "a.npy").write_text("1")
    assert first.publish(["items/a.npy"]) and (out / "items" / "a.npy").read_text() == "1"
    late = Temporary(out, ".writing", folder=True)
    (late.path / "b").write_text("2")
    assert late.publish(["b"]) is False and not late.path.exists()
    assert [p.name for p in out.iterdir()] == ["items"]  # nothing of the late one mixed in
    file_target = tmp_path / "file"
    file_target.write_text("a file")
    into_file = Temporary(file_target, ".writing", folder=True)
    assert into_file.publish() is False and file_target.read_text() == "a file"


def test_abandoned_temporaries_go_and_a_live_writers_stay(tmp_path):
    from edgerec.runtime.atomic import Temporary

    target = tmp_path / "cache.bin"
    (tmp_path / ".cache.bin.999.0a0b0c0d.tmp").write_text("killed")  # a writer that died
    abandoned_folder = tmp_path / ".cache.bin.999.1a1b1c1d.tmp"
    abandoned_folder.mkdir()
    (abandoned_folder / "part").write_text("killed")
    (tmp_path / ".cache.bin.999.2a2b2c2d.other").write_text("another kind")  # another suffix: not ours
    (tmp_path / ".other.bin.999.3a3b3c3d.tmp").write_text("another target")
    live = Temporary(target, ".tmp")
    mine = Temporary(target, ".tmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.path.name, mine.path.name, ".cache.bin.999.2a2b2c2d.other", ".other.bin.999.3a3b3c3d.tmp"])
    live.discard()
    mine.discard()


def test_a_leftover_that_cannot_be_opened_does_not_stop_the_clearing(tmp_path):
    from edgerec.runtime.atomic import clear_abandoned

    target = tmp_path / "cache.bin"
    for i in range(10):  # dangling links under temporaries' names, among abandoned temporaries
        (tmp_path / f".cache.bin.1.link{i}.tmp").symlink_to(tmp_path / "gone")
        (tmp_path / f".cache.bin.1.file{i}.tmp").write_text("killed")
    clear_abandoned(target, ".tmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f".cache.bin.1.link{i}.tmp" for i in range(10))


def test_a_claim_holds_a_folder_for_one_writer_until_released(tmp_path):
    import os
    import stat

    from edgerec.runtime.atomic import claim

    held = claim(tmp_path)
    assert held is not None and claim(tmp_path) is None
    held.release()
    again = claim(tmp_path)
    assert again is not None
    del again  # a writer collected: its claim goes with it
    assert claim(tmp_path) is not None
    assert [p.name for p in tmp_path.iterdir()] == [".edgerec-writing"]
    assert stat.S_IMODE(os.stat(tmp_path / ".edgerec-writing").st_mode) == 0o666 & ~current_umask()


def test_a_temporary_stays_locked_until_it_is_renamed(tmp_path, monkeypatch):
    import os
    from pathlib import Path

    from edgerec.runtime.atomic import clear_abandoned, write_file

    real_replace = os.replace

    def another_writer_clears_first(source, target):  # another process starts writing the same file right then
        clear_abandoned(Path(target), ".tmp")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", another_writer_clears_first)
    write_file(tmp_path / "report.json", "whole")
    assert (tmp_path / "report.json").read_text() == "whole"  # not removed as abandoned before its rename


def test_a_leftover_that_cannot_be_removed_now_is_no_error(tmp_path, monkeypatch):
    import os

    from edgerec.runtime.atomic import clear_abandoned

    folder = tmp_path / ".cache.bin.1.0a0b0c0d.tmp"  # an abandoned staging folder and an abandoned file
    folder.mkdir()
    (folder / "part").write_text("killed")
    (tmp_path / ".cache.bin.1.1a1b1c1d.tmp").write_text("killed")
    real_unlink = os.unlink

    def busy(path, *args, **kwargs):  # another writer clearing the same leftovers got there first, or holds them
        name = os.fspath(path)
        if name == "part":
            raise FileNotFoundError(2, "removed meanwhile")
        if name.endswith("1a1b1c1d.tmp"):
            raise PermissionError(13, "not removable now")
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", busy)
    clear_abandoned(tmp_path / "cache.bin", ".tmp")  # the writer starts all the same
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cache.bin.1.0a0b0c0d.tmp", ".cache.bin.1.1a1b1c1d.tmp"]


def test_a_temporary_removed_between_its_creation_and_its_lock_is_made_anew(tmp_path, monkeypatch):
    """Another writer's clear_abandoned could lock a new temporary before its writer did and remove it: the write
    went to a file nobody held, was removed again, and write_file said "a folder has the file's name"."""
    from edgerec.runtime import atomic

    target = tmp_path / "out.json"
    real, probes = atomic._lock, []

    def another_writer_first(fd):
        if not probes:  # once: the other writer's probe lands in the gap
            probes.append(1)
            atomic.clear_abandoned(target, ".tmp")
        return real(fd)

    monkeypatch.setattr(atomic, "_lock", another_writer_first)
    tmp = atomic.Temporary(target, ".tmp")
    assert probes and tmp.path.exists()
    atomic.clear_abandoned(target, ".tmp")  # the next writer's probe: this one is held, it stays
    tmp.path.write_bytes(b'{"a": 1}')
    assert tmp.publish() and target.read_text() == '{"a": 1}'
    assert not list(tmp_path.glob(".out.json.*"))
