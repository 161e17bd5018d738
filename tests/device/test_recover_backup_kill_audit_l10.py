"""Audit L10: `history recover` and `history backup` killed half-way, or racing another writer of one --out.

Before: a recover created --out at once and filled it in place, so a killed one left a valid but empty
history there (and a re-run was refused: "exists"), and two recovers into one --out both succeeded and mixed
their histories; a killed backup left a hidden partial copy of personal data (and its journal) beside --out
that no later backup removed. Now both build in a private, locked temporary folder beside --out and link
the finished file to its name: nothing at --out until complete, never over a file that appeared meanwhile,
and a killed writer's folder is removed by the next writer of --out.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest

from edgerec.errors import HistoryError
from edgerec.runtime import history_recover as hr
from edgerec.runtime.history import HistoryStore

# killed once the recovered history is filled, before it was closed and published
RECOVER_CHILD = """
import sys, time
from pathlib import Path
from edgerec.runtime import history_recover as hr
from edgerec.runtime.history import HistoryStore
source, out, marker = map(Path, sys.argv[1:])
close = HistoryStore.close
def filled(self):
    if self.path.name == out.name:
        marker.write_text("filled")
        time.sleep(600)
    close(self)
HistoryStore.close = filled
hr.recover(source, out)
"""

# the app's connection, copied one page at a time: killed after the first page
BACKUP_CHILD = """
import sqlite3, sys, time
from pathlib import Path
from edgerec.runtime import history_care as hc
history, out, marker = sys.argv[1:]
source = sqlite3.connect(history)
class OnePageAtATime:
    def backup(self, target):
        def copying(status, remaining, total):
            Path(marker).write_text("copying")
            time.sleep(600)
        source.backup(target, pages=1, progress=copying)
hc.backup(OnePageAtATime(), Path(out))
"""


def a_history(path: Path, user: str, n: int) -> Path:
    store = HistoryStore(path)
    with store.batch():
        for i in range(n):
            store.record(user, f"i{i}", "play", ts=time.time() - 1000 + i, context={"pad": "x" * 200})
    store.close()
    return path


def users(path: Path) -> dict:
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT profile, count(*) FROM events GROUP BY profile"))
    finally:
        db.close()


def hidden(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}"))


def killed_once(child: str, args: list, marker: Path) -> None:
    """Run `child`, wait until it wrote `marker` (the point it is killed at), then kill it."""
    proc = subprocess.Popen([sys.executable, "-c", child, *map(str, args), str(marker)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120  # a guard against a hung test, not a timing assumption
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the child ended before its kill point: {proc.stderr.read()[-2000:]}")
            assert time.monotonic() < deadline, "the child never reached its kill point"
            time.sleep(0.01)
    finally:
        with suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()


def test_a_killed_recover_leaves_nothing_at_out_and_the_next_recover_clears_its_folder(tmp_path):
    source = a_history(tmp_path / "alice.db", "alice", 300)
    out = tmp_path / "fresh.db"
    killed_once(RECOVER_CHILD, [source, out], tmp_path / "marker")
    assert not out.exists()  # before: a valid, empty history ("(nothing to show)"), and re-runs refused
    assert hidden(tmp_path, "fresh.db")  # the killed one's private folder
    report = hr.recover(source, out)
    assert report["events"] == 300 and users(out) == {"alice": 300}
    assert hidden(tmp_path, "fresh.db") == []  # the abandoned folder went with the next recover


def test_a_recover_into_a_file_another_recover_published_meanwhile_refuses_and_keeps_it(tmp_path, monkeypatch):
    alice = a_history(tmp_path / "alice.db", "alice", 40)
    bob = a_history(tmp_path / "bob.db", "bob", 30)
    out = tmp_path / "both.db"
    close = HistoryStore.close

    def bob_finishes_first(self):  # alice's recover is filled: bob's, started as well, publishes now
        if self.path.name == out.name:
            monkeypatch.setattr(HistoryStore, "close", close)
            with suppress(HistoryError):
                hr.recover(bob, out)
        close(self)

    monkeypatch.setattr(HistoryStore, "close", bob_finishes_first)
    with pytest.raises(HistoryError) as info:
        hr.recover(alice, out)
    assert str(info.value) == ("both.db exists (another recover finished first); choose a new file for the "
                               "recovered history")
    assert users(out) == {"bob": 30}  # before: both exited 0 into one file, alice's and bob's events mixed
    assert hidden(tmp_path, "both.db") == []


def test_a_killed_backup_leaves_no_copy_once_the_next_backup_ran(tmp_path):
    history = a_history(tmp_path / "h.db", "alice", 300)
    copies = tmp_path / "copies"
    copies.mkdir()
    out = copies / "copy.db"
    killed_once(BACKUP_CHILD, [history, out], tmp_path / "marker")
    assert not out.exists() and hidden(copies, "copy.db")  # the killed backup's partial copy, hidden
    store = HistoryStore(history)
    assert store.backup(out) == out
    store.close()
    assert sorted(p.name for p in copies.iterdir()) == ["copy.db"]  # before: the partial copy and its journal
    assert users(out) == {"alice": 300}


def test_a_partial_copy_an_earlier_version_left_goes_with_the_next_backup(tmp_path):
    """The temporary file and rollback journal a killed backup of an earlier version left beside --out."""
    history = a_history(tmp_path / "h.db", "alice", 5)
    copies = tmp_path / "copies"
    copies.mkdir()
    for name in (".copy.db.0123456789ab.tmp", ".copy.db.0123456789ab.tmp-journal"):
        (copies / name).write_bytes(b"alice " * 100)
    store = HistoryStore(history)
    store.backup(copies / "copy.db")
    store.close()
    assert sorted(p.name for p in copies.iterdir()) == ["copy.db"]
