"""The newcomer study (`edgerec study newcomers`): onboarding choices through the device's own code."""

import itertools
import json

import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data.split import consumed_sequences
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError
from edgerec.runtime import Recommender
from edgerec.runtime.history import KEEP_EVERYTHING
from edgerec.studies.newcomers import VARIANTS, NewcomerStudy, creator_spread, first_list_precision


@pytest.fixture(scope="module")
def record(tiny_bundle):
    return NewcomerStudy(tiny_bundle, tiny_bundle.parent / "data", users=20).run().record


def test_every_choice_is_measured_and_shows(record, tiny_bundle):
    with Recommender.open(tiny_bundle) as rec:
        for column, shown in record["visibility"].items():
            values = {str(v) for v in rec.catalog.column(column, range(rec.catalog.base_count)) if v}
            assert set(shown) == values
            for value, count in shown.items():
                assert 10 >= count >= min(5, int(rec.catalog.matches(column, None, [value]).sum())), (column, value)


def test_first_lists_cover_every_variant_and_choices_change_them(record):
    assert record["users"] == 20 and set(record["first_lists"]) == set(VARIANTS)
    assert all(0 <= value <= 1 for value in record["first_lists"].values())
    assert record["first_lists"]["choices"] != record["first_lists"]["popular"]  # the choices were applied
    assert record["first_lists"]["2 items"] != record["first_lists"]["popular"]  # so were the items


def test_the_cli_prints_the_tables_and_writes_the_record(tiny_bundle, tmp_path):
    out = tmp_path / "new.json"
    result = CliRunner().invoke(cli, ["study", "newcomers", str(tiny_bundle), "--data",
                                      str(tiny_bundle.parent / "data"), "--users", "5", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "choices with none shown" in result.output and "2 plays + choices" in result.output
    assert json.loads(out.read_text())["users"] == 5


def test_data_the_bundle_does_not_know_is_refused(tiny_bundle, tmp_path):
    from edgerec.data.store import load_dataset, save_dataset

    dataset = load_dataset(tiny_bundle.parent / "data")
    dataset.catalog.item_ids = [f"other-{item}" for item in dataset.catalog.item_ids]
    save_dataset(dataset, tmp_path / "other")
    with pytest.raises(ConfigError, match="does not match the bundle"):
        NewcomerStudy(tiny_bundle, tmp_path / "other", users=5).run()


def test_the_tables_summarise_the_record(record):
    tables = NewcomerStudy.tables(record)
    visibility, firsts = tables[0], next(t for t in tables if t.title.startswith("first lists"))
    shown = record["visibility"]["genre"]
    assert visibility.rows == [{"choices": len(shown), "shown (mean)": sum(shown.values()) / len(shown),
                                "choices with none shown": sum(v == 0 for v in shown.values())}]
    assert [(r["newcomer"], r["precision@10"]) for r in firsts.rows] == list(record["first_lists"].items())
    # a log where no user has 12 items: one row that says why, not a table of n/a (audit)
    none = dict(record, users=0, first_lists={name: None for name in record["first_lists"]})
    (firsts,) = [t for t in NewcomerStudy.tables(none) if t.title.startswith("first lists")]
    assert firsts.title == "first lists of replayed users: none (the replay needs a user's first 2 items and the next 10)"
    assert firsts.rows == [{"users with that many items": 0, "items needed": 12}]


PROBES = itertools.count()


@pytest.fixture
def device(tiny_bundle):
    with Recommender.open(tiny_bundle, retention=KEEP_EVERYTHING) as rec:
        yield rec


def probe(rec, actions, at, k=10):
    """The list a fresh profile gets after `actions` (callables of the profile), asked at `at`."""
    profile = f"probe {next(PROBES)}"
    for act in actions:
        act(profile)
    return [r.item_id for r in rec.recommend(profile, k=k, context={"now": at})]


def test_a_first_list_is_judged_on_the_next_ten_items_after_the_plays(device):
    ids = [device.catalog.item_id(r) for r in range(device.catalog.base_count)]
    times = [1_700_000_000.0 + 3_600 * i for i in range(12)]
    longer = probe(device, [lambda p: device.record(p, ids[0], "play", timestamp=times[0])], times[1], k=30)
    others = [i for i in ids[1:] if i not in longer][:6]
    items = [ids[0], *longer[:3], longer[10], *others]  # 3 of the next 10 are in the top 10, one is 11th
    assert first_list_precision(device, "one play", items, times, ["drama"], 1, 0, False) == 0.3
    assert [(e.item, e.event, e.ts) for e in device.history.events("one play")] == [(ids[0], "play", times[0])]
    assert device.history.preferences("one play") == {}  # choices not taken: not stored
    first_list_precision(device, "items only", items, times, ["drama"], 0, 2, False)
    assert [e.event for e in device.history.events("items only")] == ["more_like_this"] * 2
    assert device.history.preferences("items only") == {}


def test_items_and_choices_are_onboarded_and_the_list_is_asked_after_them(device):
    ids = [device.catalog.item_id(r) for r in range(device.catalog.base_count)]
    genre = str(device.catalog.column("genre", [0])[0])
    times = [1_700_000_000.0 + 3_600 * i for i in range(12)]
    listed = probe(device, [lambda p: device.onboard(p, genres=[genre], items=ids[:2])], times[2])
    others = [i for i in ids[2:] if i not in listed][:9]
    items = [*ids[:2], listed[0], *others]
    assert first_list_precision(device, "chooser", items, times, [genre], 0, 2, True) == 0.1
    assert device.history.preferences("chooser") == {"genre": [genre]}
    assert [e.event for e in device.history.events("chooser")] == ["more_like_this"] * 2


def test_every_long_enough_user_is_replayed_and_the_popular_row_is_theirs(tiny_bundle):
    """Asked for more users than the log has, the study replays each user with 12 or more items once; the
    popular row is then the popular list at each one's first item against their first 10 items."""
    data = tiny_bundle.parent / "data"
    record = NewcomerStudy(tiny_bundle, data, users=100_000).run().record
    dataset = load_dataset(data)
    seq, _ = consumed_sequences(dataset.interactions, dataset.n_users)
    users = [u for u in range(dataset.n_users) if seq.indptr[u + 1] - seq.indptr[u] >= 12]
    assert record["users"] == len(users)
    expected = []
    with Recommender.open(tiny_bundle) as rec:
        for u in users:
            items = [dataset.catalog.item_ids[r] for r in seq.items[seq.indptr[u]:seq.indptr[u] + 10]]
            listed = rec.recommend("nobody", k=10, context={"now": float(seq.times[seq.indptr[u]])})
            expected.append(len({r.item_id for r in listed} & set(items)) / 10)
    assert record["first_lists"]["popular"] == pytest.approx(sum(expected) / len(expected))


@pytest.mark.parametrize("users", [0, -1, 2.5, True, "10"])
def test_a_count_of_users_that_is_not_one_is_refused(tiny_bundle, users):
    with pytest.raises(ConfigError, match="users must be a whole number"):
        NewcomerStudy(tiny_bundle, tiny_bundle.parent / "data", users=users).run()


def test_the_creator_spread_counts_distinct_creators_and_crowded_lists():
    lists = [["a"] * 5 + ["b"] * 5, ["a", "b", "c", None, ""] + ["d"] * 5, [None] * 10]
    assert creator_spread(lists) == {"lists": 3, "distinct_creators": (2 + 4 + 0) / 3, "crowded_share": 2 / 3}
    assert creator_spread([["a"] * 4 + list("bcdefg")]) == {"lists": 1, "distinct_creators": 7.0, "crowded_share": 0.0}
    assert creator_spread([[None] * 10, [""] * 10]) is None  # a catalog without creators reports none


def test_every_list_of_the_study_is_read_for_its_creator_spread(record):
    spread = record["creator_spread"]
    assert set(spread) == {f"choosing one {c}" for c in record["visibility"]} | {f"replayed: {v}" for v in VARIANTS}
    assert spread["replayed: popular"]["lists"] == record["users"]
    assert spread["choosing one genre"]["lists"] == len(record["visibility"]["genre"])
    table = next(t for t in NewcomerStudy.tables(record) if t.title.startswith("creator spread"))
    assert [r["lists"] for r in table.rows] == list(spread)
