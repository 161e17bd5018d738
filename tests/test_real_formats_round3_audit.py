"""Audit H3 on real formats: tied times in item-id order, and `data import --out` over a user's own files.

Ties: ml-latest's ratings.csv (sorted by user, then movie) and an Amazon 2018 ratings CSV (grouped by item,
one time a day) made the held-out test item of every user with a tied last time their highest item id. Such
ties are now in a fixed hash order, said in dataset.json (`ties`); ML-100K/ML-1M and logs whose ties are not
in item order keep the file's order (ARCHITECTURE.md: a stable sort).

--out: a folder holding an interactions.* or items.* that edgerec did not write (no edgerec dataset.json)
was overwritten silently; it is refused now, and a folder edgerec wrote can be imported into again."""

import hashlib
import json

import numpy as np
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data.loaders import ColumnMap, ReadOptions, import_dataset
from edgerec.data.releases import load_movielens
from edgerec.data.store import load_dataset, save_dataset

USERS = 30


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _last_items(dataset) -> list[str]:
    """Each user's last event's item id (the leave-last-out test item)."""
    log = dataset.interactions
    last = np.flatnonzero(np.r_[log.user[1:] != log.user[:-1], True])
    return [dataset.catalog.item_ids[i] for i in log.item[last]]


def _rated(n_users=USERS):
    """Each user rates 5 films, the last 3 in one second: (user, item, time), sorted by user then item."""
    rows = []
    for u in range(1, n_users + 1):
        items = [(u * 7 + k * 13) % 60 + 1 for k in range(5)]
        times = [1_500_000_000 + u * 100, 1_500_000_010 + u * 100] + [1_500_000_050 + u * 100] * 3
        rows += [(u, i, t) for i, t in zip(items, times)]
    return sorted(rows)


def _tied_last(rows) -> dict[int, list[int]]:
    by_user: dict[int, list] = {}
    for u, i, t in rows:
        by_user.setdefault(u, []).append((t, i))
    return {u: [i for t, i in events if t == max(events)[0]] for u, events in by_user.items()}


def _movies(folder, fmt):
    if fmt == "ml-latest":
        (folder / "movies.csv").write_text("movieId,title,genres\n" + "".join(
            f"{i},Film {i} (1999),Drama\n" for i in range(1, 61)))
    else:
        (folder / "movies.dat").write_text("".join(f"{i}::Film {i} (1999)::Drama\n" for i in range(1, 61)))


def _ml_latest(folder, rows):
    folder.mkdir()
    _movies(folder, "ml-latest")
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{i},4.0,{t}\n" for u, i, t in rows))
    return folder


def test_ml_latest_same_second_ratings_are_not_in_item_order(tmp_path):
    rows = _rated()
    dataset = load_movielens("ml-latest", _ml_latest(tmp_path / "latest", rows))
    tied = _tied_last(rows)
    highest = sum(int(last) == max(tied[u]) for u, last in zip(range(1, USERS + 1), _last_items(dataset)))
    assert highest < 0.6 * USERS  # by chance a third; the file's order made it every user
    assert "hash" in dataset.meta["ties"]
    # every user's events, times and the tied sets are unchanged: only the order within a second moved
    log = dataset.interactions
    assert len(log) == len(rows) and (np.diff(log.timestamp)[log.user[1:] == log.user[:-1]] >= 0).all()


def test_ml_latest_hash_order_survives_save_and_load(tmp_path):
    dataset = load_movielens("ml-latest", _ml_latest(tmp_path / "latest", _rated()))
    again = load_dataset(save_dataset(dataset, tmp_path / "out"))
    assert _last_items(again) == _last_items(dataset)
    assert again.meta["ties"] == dataset.meta["ties"]


def test_ml_1m_keeps_the_file_order_of_ties(tmp_path):
    """ML-1M's file order of a second's ratings is kept (it holds information there), even in item order."""
    rows = _rated()
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    _movies(folder, "ml-1m")
    (folder / "ratings.dat").write_text("".join(f"{u}::{i}::4::{t}\n" for u, i, t in rows))
    dataset = load_movielens("ml-1m", folder)
    tied = _tied_last(rows)
    assert [int(i) for i in _last_items(dataset)] == [max(tied[u]) for u in range(1, USERS + 1)]
    assert "ties" not in dataset.meta


def _amazon_csv(path, rows):
    """Amazon 2018's ratings-only layout: item,user,rating,time without a header, grouped by item."""
    path.write_text("".join(f"B{i:09d},A{u:05d},4.0,{t}\n" for u, i, t in sorted(rows, key=lambda r: (r[1], r[2]))))
    return path


AMAZON = dict(columns=ColumnMap(user="user", item="item", time="ts", value="rating", default_event="rate"),
              options=ReadOptions(header=("item", "user", "rating", "ts")))


def test_a_log_sorted_by_item_has_its_ties_hashed_and_says_so(tmp_path):
    rows = _rated()
    dataset = import_dataset("csv", _amazon_csv(tmp_path / "Digital_Music.csv", rows), **AMAZON)
    tied = _tied_last(rows)
    highest = sum(last == f"B{max(tied[int(u[1:])]):09d}" for u, last in zip(dataset.user_ids, _last_items(dataset)))
    assert highest < 0.6 * USERS
    assert "hash" in dataset.meta["ties"]
    assert any("order of their item ids" in w and "ties" in w for w in dataset.meta["warnings"])


def test_a_log_whose_ties_are_not_in_item_order_keeps_the_file_order(tmp_path):
    """Ties written highest id first: the file's order is not item order, so the stable sort keeps it."""
    rows = _rated()
    tied = _tied_last(rows)
    lines = []
    for u, i, t in sorted(rows, key=lambda r: (r[0], r[2], -r[1])):
        lines.append(f"u{u},i{i:03d},{t}\n")
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(lines))
    dataset = import_dataset("csv", tmp_path / "log.csv")
    assert _last_items(dataset) == [f"i{min(tied[u]):03d}" for u in range(1, USERS + 1)]
    assert "ties" not in dataset.meta


def test_events_apart_within_a_second_are_not_ties(tmp_path):
    """Milliseconds apart in item order is a true order, not a tie: kept as written."""
    lines = [f"u{u},i{k:03d},{1_600_000_000_000 + u * 10_000 + k}\n" for u in range(USERS) for k in range(4)]
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(lines))
    dataset = import_dataset("csv", tmp_path / "log.csv", options=ReadOptions(time_unit="ms"))
    assert _last_items(dataset) == ["i003"] * USERS
    assert "ties" not in dataset.meta


def _time_ordered_log(path, repeated: int, two_items: int, higher_first: bool = True):
    """A log in time order: `repeated` users play and finish one item in one second, `two_items` users play two
    items in one second (in their true order, the higher id first unless told). Returns the two-item users."""
    rows = []
    for u in range(repeated + two_items):
        t = 1_700_000_000 + u * 10_000
        rows += [(f"u{u:03d}", f"i{(u * 7 + k) % 50 + 100}", t + 60 * k, "play") for k in range(4)]
        if u < repeated:
            item = f"i{u % 50 + 100}"
            rows += [(f"u{u:03d}", item, t + 600, "play"), (f"u{u:03d}", item, t + 600, "finish")]
        else:
            pair = ("i190", "i110") if higher_first else ("i110", "i190")
            rows += [(f"u{u:03d}", item, t + 600, "play") for item in pair]
    path.write_text("user_id,item_id,timestamp,event\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return [f"u{u:03d}" for u in range(repeated, repeated + two_items)]


def test_ties_of_one_repeated_item_do_not_vote_for_item_order(tmp_path):
    """A play and its finish of one item in one second neither rise nor fall: counted as rising, 90 of them outvoted
    the 10 true two-item ties (written higher id first) and those were hash-ordered, moving the true last item."""
    two = _time_ordered_log(tmp_path / "log.csv", repeated=90, two_items=10)
    dataset = import_dataset("csv", tmp_path / "log.csv")
    last = dict(zip(dataset.user_ids, _last_items(dataset)))
    assert [last[u] for u in two] == ["i110"] * 10
    assert "ties" not in dataset.meta
    assert not any("order of their item ids" in w for w in dataset.meta.get("warnings", []))


def test_ties_of_distinct_items_in_item_order_are_still_hashed_among_repeated_ones(tmp_path):
    """Ten or more ties of two items, all rising, still read as a file sorted by item whatever the repeated ones."""
    _time_ordered_log(tmp_path / "log.csv", repeated=90, two_items=12, higher_first=False)
    dataset = import_dataset("csv", tmp_path / "log.csv")
    assert "hash" in dataset.meta["ties"]


def test_fewer_than_ten_ties_of_distinct_items_are_not_judged(tmp_path):
    _time_ordered_log(tmp_path / "log.csv", repeated=90, two_items=9, higher_first=False)
    assert "ties" not in import_dataset("csv", tmp_path / "log.csv").meta


# ---- data import --out over files edgerec did not write ------------------------------------------------

def _ml1m_folder(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    _movies(folder, "ml-1m")
    (folder / "ratings.dat").write_text("".join(f"{u}::{i}::4::{t}\n" for u, i, t in _rated(3)))
    return folder


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_import_refuses_an_out_holding_the_users_own_interactions(tmp_path):
    mine = tmp_path / "mylogs"
    mine.mkdir()
    (mine / "interactions.csv").write_text("user_id,item_id,timestamp\nalice,keep-me,1600000000\n")
    before = _md5(mine / "interactions.csv")
    result = run("data", "import", "ml-1m", _ml1m_folder(tmp_path), "--out", mine)
    assert result.exit_code != 0
    assert "interactions.csv" in result.output and "new folder" in result.output
    assert str(tmp_path) not in result.output  # the file's name only, never the host path
    assert _md5(mine / "interactions.csv") == before and not (mine / "dataset.json").exists()


def test_import_refuses_an_out_holding_a_foreign_items_file_or_dataset_json(tmp_path):
    source = _ml1m_folder(tmp_path)
    for name, text in (("items.parquet", "not ours"), ("dataset.json", '{"name": "my own"}')):
        mine = tmp_path / f"mine-{name}"
        mine.mkdir()
        (mine / name).write_text(text)
        result = run("data", "import", "ml-1m", source, "--out", mine)
        assert result.exit_code != 0 and name in result.output
        assert (mine / name).read_text() == text


def test_synth_refuses_an_out_holding_the_users_own_items(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "items.csv").write_text("item_id,title\nx,my item\n")
    result = run("data", "synth", "--out", mine, "--users", 5, "--items", 50, "--events", 50)
    assert result.exit_code != 0 and "items.csv" in result.output
    assert (mine / "items.csv").read_text() == "item_id,title\nx,my item\n"


def test_import_again_into_a_folder_edgerec_wrote_works(tmp_path):
    source, out = _ml1m_folder(tmp_path), tmp_path / "data"
    assert run("data", "import", "ml-1m", source, "--out", out).exit_code == 0
    assert run("data", "import", "ml-1m", source, "--out", out).exit_code == 0
    # an interrupted write's mark is edgerec's too: importing again repairs the folder
    (out / "dataset.json").write_text(json.dumps({"format_version": 1, "incomplete": True}))
    assert run("data", "import", "ml-1m", source, "--out", out).exit_code == 0
    assert len(load_dataset(out).interactions) == 15


def test_import_into_a_folder_of_other_files_works(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "README.txt").write_text("my notes")
    assert run("data", "import", "ml-1m", _ml1m_folder(tmp_path), "--out", out).exit_code == 0
    assert (out / "README.txt").read_text() == "my notes" and (out / "dataset.json").exists()


def test_a_listed_sequence_keeps_its_written_order(tmp_path):
    """--item-list-sep: a row's ids share its time in the order written (MicroLens' sequences), a true order
    even when the ids rise."""
    lines = [f"u{u},{' '.join(str(10 * u + k) for k in range(4))},{1_600_000_000 + u}\n" for u in range(USERS)]
    (tmp_path / "seq.csv").write_text("user_id,item_id,timestamp\n" + "".join(lines))
    dataset = import_dataset("csv", tmp_path / "seq.csv", columns=ColumnMap(item_list_sep=" "))
    assert _last_items(dataset) == [str(10 * u + 3) for u in range(USERS)]
    assert "ties" not in dataset.meta
