"""The ranker's and scorer's item features: counted and sorted codes, and a history part kept
between requests, agree, and match the features' definitions computed one candidate at a time."""

from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgerec.runtime import features
from edgerec.runtime.features import ItemTable, ranker_features


def table_of(rng: np.random.Generator, n: int) -> ItemTable:
    series = rng.integers(-1, 4, n)
    return ItemTable(modality=rng.integers(-1, 5, n), duration=rng.uniform(0, 7200, n),
                     popularity=rng.integers(0, 100, n).astype(float), release_ts=rng.integers(0, 10**9, n),
                     language=rng.integers(-1, 3, n), creator=rng.integers(-1, 6, n),
                     series=series, episode=np.where(series >= 0, rng.integers(1, 6, n), 0))


def by_definition(table: ItemTable, candidates: np.ndarray, history: np.ndarray) -> np.ndarray:
    """Language share, creator share (newest 20), in a watched series, is its next episode."""
    langs = table.language[history][table.language[history] >= 0]
    recent = table.creator[history[-20:]][table.creator[history[-20:]] >= 0]
    rows = []
    for c in candidates.tolist():
        lang = np.mean(langs == table.language[c]) if len(langs) and table.language[c] >= 0 else 0.0
        creator = np.mean(recent == table.creator[c]) if len(recent) and table.creator[c] >= 0 else 0.0
        s = table.series[c]
        seen = [table.episode[h] for h in history.tolist() if s >= 0 and table.series[h] == s]
        rows.append([lang, creator, bool(seen), bool(seen) and table.episode[c] == max(seen) + 1])
    return np.array(rows, np.float32).reshape(len(candidates), 4)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), n_cand=st.integers(0, 40), n_hist=st.integers(1, 60))
def test_every_path_agrees_with_the_definition(seed, n_cand, n_hist):
    rng = np.random.default_rng(seed)
    table = table_of(rng, 80)
    candidates, history = rng.integers(0, 80, n_cand), rng.integers(0, 80, n_hist)
    user, items = rng.normal(size=4).astype(np.float32), rng.normal(size=(n_cand, 4)).astype(np.float32)
    col = 4 + 1 + 2 + len(features.DEVICES) + len(features.MODALITIES) + 3
    paths = []
    for count_limit in (1 << 30, 0):  # codes counted in one array, codes sorted
        with mock.patch.object(features, "COUNT_LIMIT", count_limit):
            paths.append(ranker_features(user, items, candidates, table, history, 9.0, 1, 10**9))
    counted, general = paths
    np.testing.assert_array_equal(counted, general)
    kept = features.history_side(table, history)  # what a device keeps between a user's requests
    np.testing.assert_array_equal(ranker_features(user, items, candidates, table, history, 9.0, 1, 10**9, kept), general)
    np.testing.assert_allclose(general[:, col:col + 4], by_definition(table, candidates, history), atol=1e-6)


def test_a_release_before_1970_has_its_age_and_only_an_unknown_one_reads_as_new():
    # MovieLens-100K holds 179 films released before 1970 (negative epoch seconds): they used to read
    # age 0, the age of an unknown release and of a film out today
    day, now = 86_400, 1_000_000_000  # 2001
    release = np.array([0, now - day, 30 * 365 * day, -40 * 365 * day])  # unknown, yesterday, 2000, 1930
    n = len(release)
    table = ItemTable(modality=np.zeros(n, int), duration=np.zeros(n), popularity=np.ones(n), release_ts=release,
                      language=np.full(n, -1), creator=np.full(n, -1), series=np.full(n, -1), episode=np.zeros(n, int))
    age = features.item_features(table, np.arange(n), np.zeros(0, np.int64), now)[:, 2]
    assert age[0] == 0.0 and 0 < age[1] < age[2] < age[3]
    assert age[3] == np.float32(np.log1p((now - release[3]) / day) / 7)
