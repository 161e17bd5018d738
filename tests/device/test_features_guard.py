"""Guards of the ranker features (runtime/features.py), from its mutation run (note 20): every column
of a row computed by hand from spec §4, and the counted, sorted and empty edges of the history part."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgerec.runtime import features
from edgerec.runtime.features import (
    DEVICES,
    MODALITIES,
    HistorySide,
    ItemTable,
    Shares,
    feature_count,
    history_side,
    item_features,
    ranker_features,
)

DAY = 86_400
NOW = 1_700_000_000


def table(**columns) -> ItemTable:
    n = len(next(iter(columns.values())))
    base = dict(modality=np.full(n, -1), duration=np.zeros(n), popularity=np.zeros(n), release_ts=np.zeros(n, np.int64),
                language=np.full(n, -1), creator=np.full(n, -1), series=np.full(n, -1), episode=np.zeros(n, np.int64))
    return ItemTable(**{**base, **{k: np.asarray(v) for k, v in columns.items()}})


def test_the_width_is_the_vector_then_twenty_columns():
    assert feature_count(8) == 28 and feature_count(1) == 21
    assert features.EXTRA == 19 and features.VERSION == 1


def test_every_column_of_one_row_by_hand():
    # rows: 0 the candidate, 1..5 the history (oldest first)
    t = table(modality=[3, 3, 0, 1, 1, 1], duration=[600.0, 60, 60, 60, 60, 60],
              popularity=[9.0, 99, 0, 0, 0, 0], release_ts=[NOW - 10 * DAY, 0, 0, 0, 0, 0],
              language=[2, 2, 2, 5, -1, 2], creator=[7, 7, 1, -1, 7, 3],
              series=[4, -1, 4, 4, 9, 4], episode=[3, 0, 2, 1, 8, 1])
    user = np.array([0.5, -1.0, 2.0], np.float32)
    item = np.array([[2.0, 0.25, -0.5]], np.float32)
    history = np.array([1, 2, 3, 4, 5])
    row = ranker_features(user, item, np.array([0]), t, history, 18.5 + 24, 2, NOW)
    assert row.shape == (1, 23) and row.dtype == np.float32
    angle = 2 * math.pi * 18.5 / 24
    want = [1.0, -0.25, -1.0,  # q * v
            -0.25,  # v . q
            math.sin(angle), math.cos(angle),  # the hour, mod 24
            0, 0, 1, 0,  # tablet
            0, 0, 0, 1, 0,  # music_track
            math.log1p(10) / 5,  # length: ln(1 + 600 / 60) / 5
            math.log1p(9) / math.log1p(99),  # popularity over the largest
            math.log1p(10) / 7,  # age in days
            3 / 4,  # language 2 among the 4 known languages of the history
            2 / 4,  # creator 7 among the 4 known creators
            1,  # series 4 is watched
            0,  # its highest watched episode is 2 (not the latest, 1): the next is 3 ... which this is
            1]  # bias
    want[-2] = 1  # episode 3 == 2 + 1
    np.testing.assert_allclose(row[0], np.array(want, np.float32), rtol=1e-6, atol=1e-7)


def test_a_device_or_modality_out_of_range_sets_no_one_hot_column():
    t = table(modality=[-1, 4, 0])
    user, items = np.ones(2, np.float32), np.ones((3, 2), np.float32)
    d = 2 + 1 + 2
    m = d + len(DEVICES)
    for device in (-1, len(DEVICES), 99):
        out = ranker_features(user, items, np.arange(3), t, np.zeros(0, np.int64), 0.0, device, NOW)
        assert not out[:, d:d + len(DEVICES)].any()
        assert out[:, m:m + len(MODALITIES)].tolist() == [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [1, 0, 0, 0, 0]]
    out = ranker_features(user, items, np.arange(3), t, np.zeros(0, np.int64), 6.0, 0, NOW)
    assert out[:, d].tolist() == [1, 1, 1] and not out[:, d + 1:d + len(DEVICES)].any()
    m = d + len(DEVICES)
    assert out[:, m:m + len(MODALITIES)].tolist() == [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [1, 0, 0, 0, 0]]
    np.testing.assert_allclose(out[:, 3:5], [[1, 0]] * 3, atol=1e-7)  # hour 6: sin 1, cos 0
    assert out[:, -1].tolist() == [1, 1, 1] and not out[:, m + len(MODALITIES):-1][:, 3:].any()  # no history


def test_the_popularity_scale_of_an_empty_or_unpopular_table():
    assert table(popularity=np.zeros(0)).log_pop_max == 1.0
    flat = table(popularity=[0.0, 0.0])
    assert flat.log_pop_max == 0.0
    assert item_features(flat, np.arange(2), np.zeros(0, np.int64), NOW)[:, 1].tolist() == [0.0, 0.0]
    for top in (3.0, 1.0, 0.5):  # a largest popularity below e - 1 still scales to 1
        out = item_features(table(popularity=[top, 0.0]), np.arange(2), np.zeros(0, np.int64), NOW)
        assert out[:, 1].tolist() == [1.0, 0.0]


def test_a_release_in_the_future_has_age_zero_and_an_unknown_one_too():
    t = table(release_ts=[NOW + 5 * DAY, 0, NOW - DAY])
    age = item_features(t, np.arange(3), np.zeros(0, np.int64), NOW)[:, 2]
    assert age[0] == 0.0 and age[1] == 0.0 and age[2] == np.float32(math.log1p(1) / 7)


@pytest.mark.parametrize("limit", [1 << 30, 0])  # counted codes, sorted codes
def test_shares_leave_unknown_and_absent_codes_at_zero(limit, monkeypatch):
    monkeypatch.setattr(features, "COUNT_LIMIT", limit)
    shares = Shares.of(np.array([3, 3, -1, 5, 3, -1]))
    assert shares.size == 4
    got = shares.share(np.array([3, 5, -1, 4, 6, 1000, 0]))
    assert got.dtype == np.float32
    assert got.tolist() == [0.75, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0]
    empty = Shares.of(np.array([-1, -1]))
    assert empty.size == 0 and empty.share(np.array([-1, 3])).tolist() == [0.0, 0.0]
    assert empty.share(np.array([3])).dtype == np.float32


def test_the_counted_path_is_taken_below_the_limit_and_the_sorted_one_at_it():
    small = Shares.of(np.array([0, features.COUNT_LIMIT - 1]))
    assert small.counts is not None and len(small.counts) == features.COUNT_LIMIT + 1
    large = Shares.of(np.array([0, features.COUNT_LIMIT]))
    assert large.counts is None and large.codes.tolist() == [0, features.COUNT_LIMIT]
    assert large.code_counts.tolist() == [1, 1]


def test_the_history_part_reads_languages_of_all_creators_of_the_newest_20_and_highest_episodes():
    n = 30
    t = table(language=np.r_[np.zeros(25, int), np.ones(5, int)], creator=np.r_[np.full(10, 8), 7, np.full(19, 9)],
              series=np.r_[np.full(27, -1), 2, 2, 1], episode=np.r_[np.zeros(27, int), 5, 4, 1])
    history = np.arange(n)
    side = history_side(t, history)
    assert side.language.share(np.array([0, 1])).tolist() == pytest.approx([25 / 30, 5 / 30])
    assert side.creator.share(np.array([8, 7, 9])).tolist() == pytest.approx([0.0, 1 / 20, 19 / 20])  # rows 10..29
    assert side.shows.tolist() == [1, 2, 2] and side.episodes.tolist() == [1, 4, 5]
    cand = table(series=[2, 2, 1, 1, 3, -1], episode=[6, 5, 2, 3, 1, 0])
    joined = table(**{k: np.r_[getattr(t, k), getattr(cand, k)] for k in
                      ("modality", "duration", "popularity", "release_ts", "language", "creator", "series", "episode")})
    out = item_features(joined, np.arange(30, 36), history, NOW)
    assert out[:, 5].tolist() == [1, 1, 1, 1, 0, 0]
    assert out[:, 6].tolist() == [1, 0, 1, 0, 0, 0]  # next after the highest (5 -> 6), not the latest (4)
    assert item_features(joined, np.arange(30, 36), history, NOW, side).tolist() == out.tolist()


def test_an_empty_history_and_a_given_side_are_read_as_they_are():
    t = table(language=[1, 1], creator=[2, 2], series=[3, 3], episode=[1, 2])
    empty = history_side(t, np.zeros(0, np.int64))
    assert empty.language.size == 0 and empty.creator.size == 0
    assert empty.shows.dtype == np.int64 and len(empty.shows) == 0 and len(empty.episodes) == 0
    assert not item_features(t, np.arange(2), np.zeros(0, np.int64), NOW)[:, 3:].any()
    # a side kept from an earlier history is what the features read, not the history passed beside it
    kept = HistorySide(Shares.of(np.array([1, 1, 0])), Shares.of(np.array([2])), np.array([3]), np.array([1]))
    out = item_features(t, np.arange(2), np.array([0]), NOW, kept)
    np.testing.assert_allclose(out[:, 3:], [[2 / 3, 1, 1, 0], [2 / 3, 1, 1, 1]], rtol=1e-6)


def test_series_before_every_watched_one_or_without_one_continue_nothing():
    t = table(series=[5, 5, 0, -1], episode=[1, 2, 1, 0])
    out = item_features(t, np.array([2, 3]), np.array([0]), NOW)  # series 0 sorts before the watched 5
    assert out[:, 5:].tolist() == [[0, 0], [0, 0]]
    none = table(series=[-1, -1], episode=[0, 0])
    assert not item_features(none, np.array([1]), np.array([0]), NOW)[:, 5:].any()
    zero = table(series=[0, 0, 0], episode=[1, 2, 3])  # series code 0 is a series like any other
    assert item_features(zero, np.array([1, 2]), np.array([0]), NOW)[:, 5:].tolist() == [[1, 1], [1, 0]]
    in_series = item_features(t, np.array([1]), np.array([3]), NOW)  # the history watched no series
    assert in_series[:, 5:].tolist() == [[0, 0]]
