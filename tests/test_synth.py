import numpy as np

from edgerec.data import SynthConfig, load_dataset, synth_dataset
from edgerec.data.schema import EVENT_CODE, MODALITIES
from edgerec.data.store import catalog_columns

TINY = SynthConfig(users=120, items=600, events=6_000, seed=3)


def test_same_seed_same_world_other_seed_other_world():
    a, b = synth_dataset(TINY), synth_dataset(TINY)
    c = synth_dataset(SynthConfig(users=120, items=600, events=6_000, seed=4))
    assert catalog_columns(a.catalog) == catalog_columns(b.catalog)
    for field in ("user", "item", "timestamp", "event", "value", "device"):
        assert np.array_equal(getattr(a.interactions, field), getattr(b.interactions, field))
    assert a.catalog.text["title"] != c.catalog.text["title"]


def test_items_carry_readable_metadata(small_dataset):
    cat = small_dataset.catalog
    assert set(cat.text["modality"]) == set(MODALITIES)
    assert len(set(cat.text["language"])) >= 5
    for i in range(0, len(cat), 97):
        genre, mood = cat.text["genre"][i], cat.text["mood"][i]
        assert genre in cat.text["description"][i] and mood in cat.text["description"][i]
        assert cat.tags[i][:2] == (genre, mood)
        assert cat.duration[i] > 0
    episodes = np.flatnonzero(np.asarray(cat.text["modality"]) == "series_episode")
    assert all(cat.text["series_id"][i] and cat.episode[i] >= 1 for i in episodes)


def test_events_respect_release_and_power_law_popularity(small_dataset):
    log, cat = small_dataset.interactions, small_dataset.catalog
    assert np.all(log.timestamp >= cat.release_ts[log.item])
    counts = np.sort(np.bincount(log.item, minlength=len(cat)))[::-1]
    assert counts[: len(cat) // 10].sum() > 0.35 * counts.sum()  # head-heavy
    assert set(np.unique(log.event)) == {EVENT_CODE[e] for e in ("play", "finish", "skip", "like")}


def test_new_items_arrive_and_get_consumed(small_dataset):
    cat, log = small_dataset.catalog, small_dataset.interactions
    start = log.timestamp.min()
    new = cat.release_ts > start
    assert 0.1 < new.mean() < 0.6
    assert np.isin(log.item, np.flatnonzero(new)).mean() > 0.05


def test_series_are_watched_in_episode_order(small_dataset):
    log, cat = small_dataset.interactions, small_dataset.catalog
    series = np.asarray(cat.text["series_id"])
    is_show = np.asarray(cat.text["modality"]) == "series_episode"
    checked = 0
    for u in range(small_dataset.n_users):
        items = log.item[log.user == u]
        _, first = np.unique(items, return_index=True)
        items = items[np.sort(first)]  # every item a user started, in time order
        for s in set(series[items[is_show[items]]]):
            eps = cat.episode[items[series[items] == s]]
            assert eps[0] == 1 and np.all(np.diff(eps) > 0), (u, s, eps)
            checked += 1
    assert checked > 50


def test_users_prefer_their_languages(small_dataset):
    log, cat = small_dataset.interactions, small_dataset.catalog
    lang = np.asarray(cat.text["language"])[log.item]
    top_share = []
    for u in range(small_dataset.n_users):
        mine = lang[log.user == u]
        if len(mine) >= 20:
            top_share.append(np.unique(mine, return_counts=True)[1].max() / len(mine))
    assert np.mean(top_share) > 0.6


def test_written_files_round_trip(small_data_dir, small_dataset):
    loaded = load_dataset(small_data_dir)
    assert loaded.n_users == small_dataset.n_users and loaded.n_items == small_dataset.n_items
    assert len(loaded.interactions) == len(small_dataset.interactions)
    assert loaded.meta["events"] == len(small_dataset.interactions)
    assert loaded.catalog.tags[:50] == small_dataset.catalog.tags[:50]
    assert np.array_equal(np.sort(loaded.interactions.timestamp), np.sort(small_dataset.interactions.timestamp))


def test_streaming_chunks_give_the_same_events_as_one_chunk():
    one = synth_dataset(TINY)
    many = synth_dataset(SynthConfig(users=120, items=600, events=6_000, seed=3, chunk_users=50))
    # chunks use their own random streams; the world and the totals stay the same shape
    assert catalog_columns(one.catalog) == catalog_columns(many.catalog)
    assert abs(len(one.interactions) - len(many.interactions)) < 0.1 * len(one.interactions)
    assert many.n_users == 120
