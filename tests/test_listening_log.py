"""A music listening log shaped like Last.fm 1K (tab-separated, no header line, ISO times, empty track ids,
names with quotes, a few malformed lines, heavy replays) imports as docs/data.md says, with the options it needs."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data import ColumnMap, ReadOptions, import_dataset, load_dataset, save_dataset
from edgerec.data.split import leave_last_out
from edgerec.data.stats import dataset_stats
from edgerec.errors import ConfigError, DataError
from edgerec.models.baselines import make_baseline
from edgerec.models.evaluation import Evaluator
from edgerec.studies.tune import TuneConfig, run_tune

NAMES = ("user", "time", "artist_id", "artist", "track_id", "track")
ROWS = [  # newest first, as the public file
    ("u1", "2009-05-04T23:08:57Z", "a1", "Björk", "t1", "Jóga"),
    ("u1", "2009-05-04T23:04:00Z", "a2", '"Weird Al" Yankovic', "", "Eat It"),
    ("u1", "2009-05-04T23:04:00Z", "a3", "Сплин", "", "Романс"),  # same second as the row above
    ("u1", "2009-05-04T22:59:00Z", "a1", "Björk", "t1", "Jóga"),  # a replay
    ("u2", "2009-05-03T10:00:00Z", "", "坂本龍一", "", "戦場のメリークリスマス"),
    ("u2", "2009-05-03T09:55:00Z", "a1", "Björk", "t1", "Jóga"),
    ("u2", "2009-05-03T09:50:00Z", "a4", "Bowie", "t9", '"Heroes'),  # a quote never closed
    ("u2", "2009-05-03T09:45:00Z", "a1", "Björk", "t2", "Army of Me"),
]


def write(path, rows, extra=()):
    lines = ["\t".join(r) for r in rows] + list(extra)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def options(**kw):
    return ReadOptions(delimiter="\t", header=NAMES, quoted=False, **kw)


def columns(item):
    return ColumnMap(user="user", item=item, time="time")


def test_a_log_without_a_header_line_reads_every_line_as_data_with_columns_named(tmp_path):
    path = write(tmp_path / "plays.tsv", ROWS)
    data = import_dataset("csv", path, columns=columns("artist+track"), options=options())
    assert len(data.interactions) == len(ROWS)  # the first line is a play, not a header
    assert sorted(data.user_ids) == ["u1", "u2"]
    # without --columns the importer says how to name them
    with pytest.raises(DataError, match="--columns"):
        import_dataset("csv", path, columns=columns("track_id"), options=ReadOptions(delimiter="\t"))


def test_tracks_without_an_id_are_keyed_by_artist_and_track_name(tmp_path):
    path = write(tmp_path / "plays.tsv", ROWS)
    data = import_dataset("csv", path, columns=columns("artist+track"), options=options())
    ids = data.catalog.item_ids
    assert "Björk - Jóga" in ids and "Сплин - Романс" in ids and "坂本龍一 - 戦場のメリークリスマス" in ids
    assert '"Weird Al" Yankovic - Eat It' in ids and 'Bowie - "Heroes' in ids  # quotes kept as written
    assert len(ids) == 6  # Jóga played three times (by two users) is one item
    jóga = ids.index("Björk - Jóga")
    assert int((data.interactions.item == jóga).sum()) == 3
    # the id column alone refuses an empty cell and names both ways out
    with pytest.raises(DataError, match=r"artist\+track.*--skip-bad-rows"):
        import_dataset("csv", path, columns=columns("track_id"), options=options())
    # or those rows are left out and counted
    data = import_dataset("csv", path, columns=columns("track_id"), options=options(skip_bad_rows=True))
    assert sorted(data.catalog.item_ids) == ["t1", "t2", "t9"]
    assert data.meta["skipped_rows"] == {"no user or item id": {"rows": 3, "first_lines": [2, 3, 5]}}


def test_bad_lines_are_skipped_on_request_and_later_errors_still_name_their_line(tmp_path):
    bad = ["u3\t2009-05-03T09:45:00Z\ta1\tBjörk\tt2",  # 5 fields (line 9)
           "u3\t2009-05-03T09:45:00Z\ta1\tBjörk\tt2\tArmy of Me\textra",  # 7 fields (line 10)
           "u3\t2009-05-03 09:4?:00\ta1\tBjörk\tt2\tArmy of Me",  # no time (line 11)
           "u3\t2009-05-03T09:40:00Z\ta1\tBjörk\tt2\tArmy of Me"]  # fine (line 12)
    path = write(tmp_path / "plays.tsv", ROWS, bad)
    with pytest.raises(DataError, match=r":9: expected 6 fields"):
        import_dataset("csv", path, columns=columns("artist+track"), options=options())
    data = import_dataset("csv", path, columns=columns("artist+track"),
                          options=options(skip_bad_rows=True, chunk_rows=3))
    assert len(data.interactions) == len(ROWS) + 1
    assert data.meta["skipped_rows"] == {"not 6 fields": {"rows": 2, "first_lines": [9, 10]},
                                         "time not readable": {"rows": 1, "first_lines": [11]}}
    # a problem skipping does not cover, after skipped rows in the same chunk, names its true line
    long_id = "u4\t2009-05-03T09:40:00Z\ta1\tBjörk\tt2\t" + "x" * 300
    path = write(tmp_path / "plays2.tsv", ROWS, bad + [long_id])
    with pytest.raises(DataError, match=r":13: column 'artist\+track' holds an id of"):
        import_dataset("csv", path, columns=columns("artist+track"),
                       options=options(skip_bad_rows=True, chunk_rows=100))


def test_quoting_off_keeps_an_open_quote_from_swallowing_lines(tmp_path):
    path = write(tmp_path / "plays.tsv", ROWS)
    quoted = ReadOptions(delimiter="\t", header=NAMES)  # the default: RFC 4180 quotes
    with pytest.raises(DataError, match=r":2: a field starts with a quote and goes on after the closing one .*"
                                        r"pass --no-quoting"):  # '"Weird Al" Yankovic' (it was read as Weird Al ...)
        import_dataset("csv", path, columns=columns("artist+track"), options=quoted)
    with pytest.raises(DataError, match=r"later.tsv:5: a quoted field .* quote left open .*--no-quoting"):
        import_dataset("csv", write(tmp_path / "later.tsv", ROWS[2:]), columns=columns("artist+track"),
                       options=quoted)
    data = import_dataset("csv", path, columns=columns("artist+track"), options=options())
    assert len(data.interactions) == len(ROWS)


def test_the_cli_imports_the_log_and_stats_report_replays(tmp_path):
    path = write(tmp_path / "plays.tsv", ROWS, ["u3\tnot a time\ta1\tBjörk\tt2\tArmy of Me"])
    out = tmp_path / "music"
    result = CliRunner().invoke(cli, [
        "data", "import", "csv", str(path), "--out", str(out), "--delimiter", "tab", "--no-quoting",
        "--skip-bad-rows", "--columns", ",".join(NAMES), "--user-col", "user", "--time-col", "time",
        "--item-col", "artist+track"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "skipped 1 row (time not readable); first at line(s) 9" in result.output
    data = load_dataset(out)
    assert len(data.interactions) == len(ROWS)
    stats = dataset_stats(data)
    assert stats["repeat_share"] == pytest.approx(1 / 8)  # u1's second Jóga; u2's Jóga is u2's first
    assert stats["events_per_user_max"] == 4
    # ties (two plays in one second) keep the file's order: the Сплин play was written after Weird Al's
    u1 = data.user_ids.index("u1")
    seq = [data.catalog.item_ids[i] for i in data.interactions.item[data.interactions.user == u1]]
    assert seq[1:3] == ['"Weird Al" Yankovic - Eat It', "Сплин - Романс"]
    assert np.all(np.diff(data.interactions.timestamp[data.interactions.user == u1]) >= 0)


def bare_log(tmp_path):
    """Three users' plays of untagged tracks (a log imported without an item table)."""
    rows = []
    for u in range(12):
        for n, item in enumerate([u % 5, (u + 1) % 5, (u + 2) % 5, 5 + u % 3, u % 5]):  # one replay each
            rows.append((f"u{u}", f"2009-05-0{1 + n}T10:00:00Z", "", "Artist", "", f"Track {item}"))
    return write(tmp_path / "plays.tsv", rows)


def test_diversity_is_not_measured_on_items_without_tags(tmp_path):
    """Every list of untagged items scored diversity 1.0 (two untagged items count as different): the
    figure said nothing, for every model alike. It is now n/a, and tuning for it is refused."""

    data = import_dataset("csv", bare_log(tmp_path), columns=columns("artist+track"), options=options())
    split = leave_last_out(data)
    out = Evaluator(split, data.catalog, k=3).evaluate(make_baseline("popular", data, split))
    assert out["diversity@3"] is None and out["HR@3"] >= 0
    genres = data.catalog.text["genre"]
    genres[0] = "rock"  # one tagged item forms no pair: still not measured
    assert Evaluator(split, data.catalog, k=3).evaluate(make_baseline("popular", data, split))["diversity@3"] is None
    genres[:] = [f"genre {i}" for i in range(len(genres))]  # every item its own genre: every pair different
    out = Evaluator(split, data.catalog, k=3).evaluate(make_baseline("popular", data, split))
    assert out["diversity@3"] == pytest.approx(1.0)
    genres[:] = [""] * len(genres)
    with pytest.raises(ConfigError, match="tags and genres"):
        run_tune(data, split, TuneConfig(target="policy", objective="diversity@10"), tmp_path / "t", model=tmp_path)
    folder = tmp_path / "music"
    save_dataset(data, folder)
    result = CliRunner().invoke(cli, ["evaluate", "--data", str(folder), "--model", "popular", "--k", "3"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "│ popular" in line)
    assert "n/a" in row


def test_the_repeat_share_counts_consumed_plays_only(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp,event\nu1,a,1,play\nu1,a,2,skip\nu1,a,3,play\nu1,b,4,skip\n"
                    "u1,b,5,play\nu1,c,6,skip\n")
    stats = dataset_stats(import_dataset("csv", path))
    assert stats["repeat_share"] == pytest.approx(1 / 3)  # plays a, a, b: one replay; skips are no plays


def test_item_knn_holds_a_bounded_block_of_co_occurrences(tmp_path, monkeypatch):
    """The similarity was built 1,024 catalog-wide dense rows at a time: 2.7 GB at 93k tracks, 12 GB at
    a million. A block now holds at most about `cells` co-occurrences (a row past it alone); the result
    is the same as in one block."""
    from edgerec.models import baselines

    data = import_dataset("csv", bare_log(tmp_path), columns=columns("artist+track"), options=options())
    split = leave_last_out(data)
    whole = baselines.ItemKNN(split).similarity
    sizes = []
    real_top = baselines.top_per_row
    monkeypatch.setattr(baselines, "top_per_row", lambda co, k, skip: sizes.append((co.shape[0], co.nnz))
                        or real_top(co, k, skip))
    small = baselines.ItemKNN(split, cells=3 * 4).similarity
    assert len(sizes) > 1 and sum(rows for rows, _ in sizes) == split.n_items
    assert all(nnz <= 3 * 4 or rows == 1 for rows, nnz in sizes)
    assert (abs(small - whole)).max() == 0


def test_a_reason_never_says_a_song_was_watched():
    """A bare log knows no modality: the reason says "played" (it said "because you watched" a song)."""
    from edgerec.runtime.explain import Explainer

    class Bare:  # the parts of a device catalog an explainer reads, without a modality column
        categorical: dict = {}

        def vectors(self, rows):
            return np.eye(3, dtype=np.float32)[np.asarray(rows, np.int64)]

        def item_id(self, row):
            return f"Artist - Track {row}"

        def title(self, row):
            return ""

        def label(self, row):
            return self.item_id(row), self.title(row)

    [reason] = Explainer(Bare(), [0], [], {}, cold_start=False).explain_all([{"tags": []}], np.eye(3)[[1]])
    assert reason.kind == "history" and reason.text == 'because you played "Artist - Track 0"'


def test_the_evaluation_scores_fewer_users_at_once_as_the_catalog_grows(tmp_path):
    """1,024 users x the catalog's scores (and their temporaries) at once peaked at 2.7 GB on 93k tracks;
    a batch now holds about `cells` scores, with the same ranks and lists."""
    data = import_dataset("csv", bare_log(tmp_path), columns=columns("artist+track"), options=options())
    split = leave_last_out(data)
    scorer = make_baseline("popular", data, split)
    seen = []

    class Counting:
        name = "counting"

        def score(self, users, history):
            seen.append(len(users))
            return scorer.score(users, history)

    whole = Evaluator(split, data.catalog, k=3).ranks_and_lists(Counting())
    assert seen == [len(split.test_users)]
    seen.clear()
    small = Evaluator(split, data.catalog, k=3, cells=2 * split.n_items).ranks_and_lists(Counting())
    assert max(seen) == 2 and sum(seen) == len(split.test_users)
    for a, b in zip(whole, small):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("rows_at_once", [1, 3, 10_000])
def test_the_log_is_written_a_slice_at_a_time_into_the_same_file(tmp_path, rows_at_once):
    """interactions.csv was built from the whole log as Python lists (0.25 GB at 2M plays); written in
    slices it holds the same bytes as the one-piece write, including the last short slice."""
    from edgerec.data import store
    from edgerec.data.tables import write_csv

    data = import_dataset("csv", write(tmp_path / "plays.tsv", ROWS), columns=columns("artist+track"),
                          options=options())
    write_csv(tmp_path / "whole.csv", store.interaction_columns(data))
    store.write_interactions_csv(data, tmp_path / "sliced.csv", rows_at_once=rows_at_once)
    assert (tmp_path / "sliced.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    save_dataset(data, tmp_path / "folder")
    assert (tmp_path / "folder" / "interactions.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    again = load_dataset(tmp_path / "folder")
    assert np.array_equal(again.interactions.item, data.interactions.item)
