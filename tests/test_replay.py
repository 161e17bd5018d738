"""Replays (runtime/replay.py, spec §5 Replays): played favourites that come back, the cool-downs,
what never comes back, the bundle default decided at export, and the next-play study."""

import numpy as np
import pytest
from handmade import NOW, ids

from edgerec.errors import BundleError, ConfigError
from edgerec.runtime import Filters, Policy, Recommender
from edgerec.runtime.replay import HALF_LIFE, favourite_table
from edgerec.runtime.vocab import DEVICE_EVENTS

N = 14  # items 0-11 music tracks, 12-13 films
MODALITY = ["music_track"] * 12 + ["film"] * 2
PLAY, SKIP = DEVICE_EVENTS.index("play"), DEVICE_EVENTS.index("skip")


def vectors():
    rng = np.random.default_rng(4)
    v = rng.normal(size=(N, 6)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def music(handmade_bundle):
    return handmade_bundle(vectors(), modality=MODALITY)


def listen(rec, user, rows, start=NOW["now"] - 86_400, step=200.0):
    """`user` played the items at `rows` in order, `step` seconds apart from `start` (a day before NOW)."""
    for i, row in enumerate(rows):
        rec.record(user, rec.catalog.item_id(int(row)), "play", timestamp=start + i * step)


# item 0 played three times, item 1 twice, film 12 twice, then ten newer plays of items 2-6
STORY = [0, 1, 12, 0, 1, 12, 0, *([2, 3, 4, 5, 6] * 2)]
ON = Policy(replay=1.0)


def listed(rec, policy=None, filters=None, k=10, context=NOW):
    return rec.recommend("u", k=k, context=context, policy=policy, filters=filters)


def test_the_favourite_table_counts_plays_weighs_them_by_recency_and_drops_skipped_items():
    rows = np.array([0, 1, 0, 2, 0, 1, 3, 3, -1, 1], np.int64)
    codes = np.array([PLAY] * 10, np.int8)
    codes[1] = DEVICE_EVENTS.index("finish")  # not a play: the same listen as a play
    codes[7] = SKIP  # item 3: skipped once, never a favourite
    times = np.arange(10, dtype=np.float64)
    items, strength, plays, newest_age, newest_time = favourite_table(rows, codes, times, 2)
    assert items.tolist() == [0, 1]
    assert plays.tolist() == [3, 2]  # item 1's finish is no play
    play_rows = [0, 0, 2, 0, 1, 3, 1]
    ages = list(range(len(play_rows)))[::-1]
    for item, s in zip(items, strength):
        assert s == pytest.approx(sum(0.5 ** (a / HALF_LIFE) for r, a in zip(play_rows, ages) if r == item))
    assert newest_age.tolist() == [3, 0] and newest_time.tolist() == [4.0, 9.0]
    assert favourite_table(rows, codes, times, 3)[0].tolist() == [0]


def test_without_a_replay_weight_every_played_item_stays_out(music):
    with Recommender.open(music) as rec:
        listen(rec, "u", STORY)
        plain = ids(listed(rec))
        assert not set(plain) & {rec.catalog.item_id(r) for r in STORY}
        assert ids(listed(rec, Policy(replay=0.0))) == plain == ids(listed(rec, Policy(freshness=0.0)))


def test_favourites_come_back_films_never(music):
    with Recommender.open(music) as rec:
        listen(rec, "u", STORY)
        out = listed(rec, ON, k=12)
        back = {r.item_id: r for r in out if r.reason.kind == "replay"}
        assert set(back) == {"i0", "i1"}  # played 3 and 2 times, out of the cool-down; the film played twice: not
        assert all(r.reason.item_id == r.item_id for r in back.values())
        assert "3 times" in back["i0"].reason.text
        assert not {"i2", "i3", "i4", "i5", "i6", "i12"} & set(ids(out))  # cooling down, or a film
        plain = [i for i in ids(out) if i not in back]
        assert plain == ids(listed(rec, k=12))[:len(plain)]  # the unseen items keep their order
        assert rec.monitor.snapshot()["counters"]["replay_candidates"] == 2  # the app's health shows them


def test_the_replay_term_is_the_weight_times_the_relative_strength(music):
    with Recommender.open(music) as rec:
        listen(rec, "u", STORY)
        low = {r.item_id: r.score for r in listed(rec, Policy(replay=1.0), k=14)}
        high = {r.item_id: r.score for r in listed(rec, Policy(replay=3.0), k=14)}
        assert high["i0"] - low["i0"] == pytest.approx(2.0)  # the strongest: strength / max = 1
        _, strength, *_ = favourite_table(*_window(STORY), 2)
        assert high["i1"] - low["i1"] == pytest.approx(2.0 * strength[1] / strength[0])
        assert high["i7"] == pytest.approx(low["i7"])  # an unseen item: no term


def _window(rows):
    return np.array(rows, np.int64), np.full(len(rows), PLAY, np.int8), np.arange(len(rows), dtype=np.float64)


def test_a_favourite_cools_down_for_replay_gap_plays_and_replay_minutes(music):
    with Recommender.open(music) as rec:
        listen(rec, "u", STORY)  # item 0's newest play has 10 newer plays, item 1's 12
        assert {"i0", "i1"} <= set(ids(listed(rec, Policy(replay=1.0, replay_gap=10), k=12)))
        gap = ids(listed(rec, Policy(replay=1.0, replay_gap=11), k=12))
        assert "i0" not in gap and "i1" in gap
        assert not {"i0", "i1"} & set(ids(listed(rec, Policy(replay=1.0, replay_gap=13), k=12)))
        last = NOW["now"] - 86_400 + 6 * 200.0  # item 0's newest play; item 1's was 400 s before
        minutes = (NOW["now"] - last) / 60
        at_edge = ids(listed(rec, Policy(replay=1.0, replay_minutes=minutes), k=12))
        assert "i0" in at_edge and "i1" in at_edge  # played exactly replay_minutes ago: back
        later = ids(listed(rec, Policy(replay=1.0, replay_minutes=minutes + 1 / 60), k=12))
        assert "i0" not in later and "i1" in later
        past = ids(listed(rec, ON, k=12, context={"now": last - 1}))
        assert "i0" not in past  # a play after the request's time counts as recent


def test_skipped_refused_and_asked_for_more_never_come_back(music):
    with Recommender.open(music) as rec:
        listen(rec, "u", STORY)
        assert {"i0", "i1"} <= set(ids(listed(rec, ON, k=12)))
        rec.record("u", "i0", "skip", timestamp=NOW["now"] - 50_000)
        assert "i0" not in ids(listed(rec, ON, k=12)) and "i1" in ids(listed(rec, ON, k=12))
        rec.record("u", "i1", "not_interested", timestamp=NOW["now"] - 50_000)
        assert not {"i0", "i1"} & set(ids(listed(rec, ON, k=12)))
    with Recommender.open(music) as rec:
        listen(rec, "u", STORY)
        rec.record("u", "i1", "more_like_this", timestamp=NOW["now"] - 50_000)
        assert "i1" not in ids(listed(rec, ON, k=12))


def test_filters_and_removals_hold_for_replays(music):
    with Recommender.open(music) as rec:
        listen(rec, "u", STORY)
        assert "i0" not in ids(listed(rec, ON, Filters(exclude_items=["i0"]), k=12))
        assert not {"i0", "i1"} & set(ids(listed(rec, ON, Filters(modalities=["podcast_episode"]), k=12)))
        rec.remove_items(["i1"])
        assert "i1" not in ids(listed(rec, ON, k=12)) and "i0" in ids(listed(rec, ON, k=12))


def test_the_bundle_default_turns_replays_on_and_a_request_turns_them_off(handmade_bundle):
    bundle = handmade_bundle(vectors(), modality=MODALITY, defaults={"replay": 1.0})
    with Recommender.open(bundle) as rec:
        listen(rec, "u", STORY)
        assert {"i0", "i1"} <= set(ids(listed(rec, k=12)))
        assert {"i0", "i1"} <= set(ids(listed(rec, Policy(diversity=0.0), k=12)))  # unset: the bundle's
        assert not {"i0", "i1"} & set(ids(listed(rec, Policy(replay=0.0), k=12)))
        rec.policy = Policy()  # an app's own default policy, unset: the bundle's too
        assert {"i0", "i1"} <= set(ids(listed(rec, k=12)))


def test_a_bad_replay_setting_is_refused(handmade_bundle, tmp_path):
    for bad in ({"replay": -1.0}, {"replay": float("nan")}, {"replay_gap": -1}, {"replay_min_plays": 0},
                {"replay_minutes": -5.0}):
        with pytest.raises(ConfigError, match="Policy.replay"):
            Policy(**bad)
    with pytest.raises(BundleError, match="replay"):
        handmade_bundle(vectors(), defaults={"replay": -1.0})


def test_a_short_history_gets_no_replays(music):
    with Recommender.open(music) as rec:
        listen(rec, "u", [0, 0, 1, 1, 0])  # two distinct items: below cold_start_items
        assert "i0" not in ids(listed(rec, Policy(replay=1.0, replay_gap=0, replay_minutes=0.0), k=12))
        assert "i0" in ids(listed(rec, Policy(replay=1.0, replay_gap=0, replay_minutes=0.0,
                                              cold_start_items=2), k=12))


def _log(tmp_path, rows, name="log.csv"):
    from edgerec.data import import_dataset

    path = tmp_path / name
    path.write_text("user_id,item_id,timestamp,event\n" + "".join(
        f"{u},{i},{t},play\n" for t, (u, i) in enumerate(rows)))
    return import_dataset("csv", path)


def test_export_turns_replays_on_for_a_log_of_replays_and_off_for_films(tmp_path):
    from edgerec.export.replay_default import REPLAY_WEIGHT, replay_defaults

    replays = [(u, i) for u in ("a", "b") for i in "xyzxyzxyzw"]  # 6 of 10 plays of each user are replays
    assert replay_defaults(_log(tmp_path, replays)) == {"replay": REPLAY_WEIGHT}
    few = [(u, i) for u in ("a", "b") for i in "xyzwvuxy"]  # 2 of 8: off
    assert replay_defaults(_log(tmp_path, few, "few.csv")) == {}
    films = _log(tmp_path, replays, "films.csv")
    films.catalog.text["modality"] = ["film"] * films.n_items
    assert replay_defaults(films) == {}


def test_the_next_play_study_puts_both_protocols_side_by_side(tmp_path, tiny_bundle):
    from edgerec.studies.next_play import PROTOCOLS, NextPlayStudy

    result = NextPlayStudy(tiny_bundle, tiny_bundle.parent / "data", users=8, events=40, weights=(1.0, 2.0),
                           history=tmp_path / "h.db").run()
    record, hr = result.record, result.record["HR@10"]
    assert list(hr) == list(PROTOCOLS) and record["bundle_default_replay"] == 0
    assert list(hr[PROTOCOLS[0]]) == ["seen filter", "replay 1", "replay 2", "bundle default", "most played recently"]
    by_kind = record["next_play_hits_by_target"]
    assert by_kind["seen filter"]["replay"] == 0  # the seen filter can never list a replay target
    assert by_kind["most played recently"]["new"] == 0  # nor a list of played items a new one
    assert hr[PROTOCOLS[0]]["most played recently"] == 0  # leave-last-out's target is always new
    assert sum(record["next_play_targets"].values()) == record["users"] == 8
    for protocol in PROTOCOLS:  # no default in this bundle: the seen filter's list
        assert hr[protocol]["bundle default"] == hr[protocol]["seen filter"]
    assert [row["protocol"] for row in result.tables[0].rows] == list(PROTOCOLS)


def test_at_most_fifty_favourites_join_the_strongest(handmade_bundle):
    from edgerec.runtime.replay import CANDIDATES

    rng = np.random.default_rng(9)
    v = rng.normal(size=(80, 6)).astype(np.float32)
    bundle = handmade_bundle(v / np.linalg.norm(v, axis=1, keepdims=True), modality=["music_track"] * 80)
    with Recommender.open(bundle) as rec:
        listen(rec, "u", [*range(60), *range(60), 70, 71, 72], step=10.0)  # 60 favourites, newer ones stronger
        out = listed(rec, Policy(replay=1.0, replay_gap=3, replay_minutes=0.0), k=80)
        back = {int(r.item_id[1:]) for r in out if r.reason.kind == "replay"}
        assert CANDIDATES == 50 and back == set(range(10, 60))


def test_the_next_play_is_each_users_last_play_and_often_a_replay(tmp_path, tiny_bundle):
    """Every test user: the count of next plays that are replays is the log's own (the last consumption
    of each user, played before), so the protocol cannot fall back to leave-last-out's new item."""
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.studies.next_play import NextPlayStudy

    data = load_dataset(tiny_bundle.parent / "data")
    log, split = data.interactions, leave_last_out(data)
    expected = 0
    for user in split.test_users.tolist():
        played = log.item[(log.user == user) & log.consumed_mask()]
        expected += int(played[-1] in set(played[:-1].tolist()))
    assert expected > 0
    record = NextPlayStudy(tiny_bundle, tiny_bundle.parent / "data", users=10_000, events=3, weights=(1.0,)).run().record
    assert record["users"] == len(split.test_users) and record["next_play_targets"]["replay"] == expected


def test_both_exports_write_the_replay_default_they_decide(tmp_path, tiny_bundle, monkeypatch):
    """The export paths (a trained model, a user's own encoder) put replay_defaults' answer in the manifest:
    none for the tiny (video) world; what it decides for a log of replays."""
    import json

    import torch

    from edgerec.data import save_dataset
    from edgerec.export import bundle_builder
    from edgerec.export.bundle_builder import ExportConfig, export_bundle
    from edgerec.export.own_encoder import EncoderSpec
    from edgerec.export.own_torch import bundle_torch_module

    assert "replay" not in json.loads((tiny_bundle / "manifest.json").read_text())["defaults"]
    monkeypatch.setattr(bundle_builder, "replay_defaults", lambda dataset: {"replay": 3.0})
    export_bundle(tiny_bundle.parent / "ckpt", tiny_bundle.parent / "data", tmp_path / "b",
                  ExportConfig(formats=("onnx",), parity_users=50, evaluate=False, priors=False, hubness=False,
                               min_top10_agreement=0.5))
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["defaults"]["replay"] == 3.0

    replays = [(u, i) for u, seq in (("a", "xyzxyzxyzwxyzv"), ("b", "vwvwvwxvwxvwzv"), ("c", "zywzywzywxzyv"))
               for i in seq]
    folder = tmp_path / "music"
    save_dataset(_log(tmp_path, replays), folder)
    table = np.vstack([np.zeros((1, 16), np.float32), np.random.default_rng(1).normal(size=(5, 16)).astype(np.float32)])

    class Mean(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Embedding.from_pretrained(torch.as_tensor(table), padding_idx=0)

        def forward(self, ids):
            return self.table(ids).mean(1)

    spec = EncoderSpec.load({"input": {"name": "ids", "dtype": "int64", "history_length": 4},
                             "output": {"name": "user_vector"}, "dim": 16})
    bundle_torch_module(Mean().eval(), spec, table[1:], folder, tmp_path / "own")
    assert json.loads((tmp_path / "own" / "manifest.json").read_text())["defaults"]["replay"] == 1.0
