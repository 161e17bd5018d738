"""`edgerec history show/export` on a replayed history (KEEP_EVERYTHING, 1998 events): the file's own
retention applies, so neither hides nor erases anything; where retention does hide a user's stored
events, `history show` says how many (it printed "1 events" for 61 stored, without a word)."""

import json
import math
import sqlite3

from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.runtime.history import KEEP_EVERYTHING, Retention
from edgerec.runtime.pseudonyms import open_history

OLD = 888_451_200.0  # 1998-02-26


def replayed(path, retention=KEEP_EVERYTHING):
    store = open_history(path, retention=retention)
    for user in ("600", "209"):
        for i in range(5):
            store.record(user, f"i{i}", "play", ts=OLD + i)
    store.close()


def rows(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def test_show_and_export_of_a_replayed_history_keep_every_event(tmp_path):
    db = tmp_path / "r1.db"
    replayed(db)
    result = CliRunner().invoke(cli, ["history", "show", "600", "--history", str(db), "--last", "3"])
    assert result.exit_code == 0, result.output
    assert "600: 5 events (last 3)" in result.output and "retention" not in result.output
    out = tmp_path / "x.json"
    result = CliRunner().invoke(cli, ["history", "export", "600", "--history", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["events"]) == 5
    assert rows(db) == 10  # the other user's events too


def test_show_says_how_many_stored_events_retention_hides(tmp_path):
    db = tmp_path / "h.db"
    replayed(db)
    open_history(db, retention=Retention(max_events=2, max_age_days=math.inf)).close()
    result = CliRunner().invoke(cli, ["history", "show", "600", "--history", str(db)], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "600: 2 events" in result.output
    assert "5 events of this user are stored, 3 of them past what this history's retention keeps" in result.output
    assert "at most 2 events per user" in result.output and rows(db) == 10  # said, not erased
