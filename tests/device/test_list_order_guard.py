"""Guards of the list order (runtime/list_order.py) and the caps' reach (runtime/caps.py), spec §4-5: the
kept head, MMR with caps, the newcomer spread's passing over, and how far the caps reach down a short
list, on hand-made lists; plus the block walk of two caps on lists long enough to refilter."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.runtime.caps import capped_reach, within_caps, within_one_cap
from edgerec.runtime.list_order import best_first, kept_head, mmr, policy_order, spread_pick


class Columns:
    """The catalog's code and string columns by name, and which were read."""

    def __init__(self, **columns):
        self.columns, self.read = {k: np.asarray(v) for k, v in columns.items()}, []

    def code_column(self, name):
        self.read.append(name)
        return self.columns[name]

    def column(self, name, rows):
        self.read.append(name)
        return self.columns[name][rows]


def policy(**fields):
    return SimpleNamespace(**{"max_per_creator": None, "max_per_genre": None, "diversity": 0.0, "keep_top": 0,
                              **fields})


# ------------------------------------------------------------------ the caps' reach


def test_without_caps_or_rows_the_reach_is_the_first_k_rows():
    cat = Columns(creator=[0, 0, 0], genre=[1, 1, 1])
    assert capped_reach(cat, np.arange(3), policy(), 2) == (2, 2)
    assert capped_reach(cat, np.arange(3), policy(), 5) == (3, 3)
    assert capped_reach(cat, np.arange(0), policy(max_per_genre=1), 4) == (0, 0)
    assert cat.read == ["genre"]  # the empty list still reads its column; no cap reads none


def test_the_reach_counts_kept_rows_up_to_k_and_the_rows_it_walked():
    # rows best first: creators 0 0 1 0 1 2 (-1: none), genres all different
    cat = Columns(creator=[0, 0, 1, 0, 1, 2, -1], genre=[-1] * 7)
    one = policy(max_per_creator=1)
    assert capped_reach(cat, np.arange(7), one, 2) == (2, 3)  # kept rows 0 and 2: three rows walked
    assert capped_reach(cat, np.arange(7), one, 3) == (3, 6)
    assert capped_reach(cat, np.arange(7), one, 4) == (4, 7)  # the row without a creator is never dropped
    assert capped_reach(cat, np.arange(7), one, 5) == (4, 7)  # fewer than k: all there is, every row walked
    assert capped_reach(cat, np.array([3, 0, 1]), one, 2) == (1, 3)  # rows index the columns
    assert capped_reach(cat, np.arange(7), policy(max_per_creator=2), 3) == (3, 3)
    assert capped_reach(cat, np.arange(1), one, 1) == (1, 1)  # a one-row short list
    assert capped_reach(cat, np.array([6]), one, 3) == (1, 1)


def test_the_reach_under_both_caps_and_the_newcomer_spread():
    cat = Columns(creator=[0, 0, 1, 1, 2, 2], genre=[5, 6, 5, 6, 5, 6])
    both = policy(max_per_creator=1, max_per_genre=1)
    assert capped_reach(cat, np.arange(6), both, 2) == (2, 4)  # rows 0 (0, 5) and 3 (1, 6)
    assert capped_reach(cat, np.arange(6), both, 3) == (2, 6)
    # the spread passes rows over and never drops one, so only the genre cap shortens the reach
    assert capped_reach(cat, np.arange(6), both, 2, spread=True) == (2, 2)
    assert capped_reach(cat, np.arange(6), policy(max_per_creator=1), 4, spread=True) == (4, 4)
    assert capped_reach(cat, np.arange(6), both, 3, spread=True) == (2, 6)


def test_a_refilter_right_after_a_group_fills_keeps_the_next_open_row():
    # 200 rows; genre 0 fills at row 1 with 198 rows left in the block: the refilter must start at row 2
    genres = np.array([0, 0] + [1, 2] * 99, np.int64)
    creators = np.arange(200, dtype=np.int64)
    kept = within_caps([(creators, 1), (genres, 2)], 5)
    assert np.flatnonzero(kept).tolist() == [0, 1, 2, 3, 4]
    kept = within_caps([(creators, 1), (genres, 1)], 3)
    assert np.flatnonzero(kept).tolist() == [0, 2, 3]


def test_one_cap_of_an_empty_list_and_groups_in_list_order():
    assert within_one_cap(np.zeros(0, np.int64), 1).tolist() == []
    assert within_one_cap(np.array([3, 1, 3, 3, 1, -1, -1]), 2).tolist() == [True, True, True, False, True,
                                                                              True, True]


# ------------------------------------------------------------------ the order


def test_best_first_skips_non_finite_scores_and_keeps_ties_in_order():
    assert best_first(np.array([1.0, -np.inf, 3.0, 1.0, np.nan, 3.0])).tolist() == [2, 5, 0, 3]


def test_the_kept_head_is_the_keep_top_best_at_most_k():
    relevance = np.array([0.1, 0.9, 0.5, 0.9])
    assert kept_head(relevance, policy(keep_top=0), 5) is None
    assert kept_head(relevance, policy(keep_top=1), 5).tolist() == [1]
    assert kept_head(relevance, policy(keep_top=3), 2).tolist() == [1, 3]
    assert kept_head(relevance, policy(keep_top=9), 9).tolist() == [1, 3, 2, 0]


def test_without_re_ranking_the_kept_rows_come_first_then_the_rest_best_first():
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
    assert mmr(scores, np.eye(5), 3, 0.0).tolist() == [1, 3, 2]
    assert mmr(scores, np.eye(5), 3, 0.0, keep=np.array([4, 0])).tolist() == [4, 0, 1]
    assert mmr(scores, np.eye(5), 2, 0.0, keep=[4, 0, 2]).tolist() == [4, 0]  # keep is cut to k
    assert mmr(scores, np.eye(5), 5, 0.0, keep=[2]).tolist() == [2, 1, 3, 4, 0]


def test_kept_rows_count_for_the_caps_and_diversity_and_are_never_chosen_twice():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    creators = np.array(["a", "a", "b", "b", "c"], dtype=object)
    # row 3 kept: creator b has its one place, so row 2 is dropped; row 3 is not picked again
    assert mmr(scores, np.eye(5), 4, 0.0, creators, max_per_creator=1, keep=[3]).tolist() == [3, 0, 4]
    vectors = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0.7, 0.7]], np.float32)
    diverse = mmr(scores, vectors, 5, 0.5, keep=[0])
    assert diverse.tolist()[0] == 0 and sorted(diverse.tolist()) == [0, 1, 2, 3, 4]
    assert diverse.tolist()[1] == 2  # the best of the other direction beats row 1, a copy of the kept row


def test_the_spread_passes_a_full_creator_over_instead_of_dropping_it():
    scores = np.array([5.0, 4.0, 3.0, 2.0])
    creators = np.array(["a", "a", "b", "b"], dtype=object)
    assert mmr(scores, np.eye(4), 4, 0.0, creators, max_per_creator=1).tolist() == [0, 2]
    tiers = np.zeros(4, np.int64)
    assert mmr(scores, np.eye(4), 4, 0.0, creators, max_per_creator=1, tiers=tiers).tolist() == [0, 2, 1, 3]
    # two per creator: a's second item comes before b's
    assert mmr(scores, np.eye(4), 4, 0.0, creators, max_per_creator=2, tiers=tiers).tolist() == [0, 1, 2, 3]
    # an item without a creator is never passed over
    none = np.array(["a", "a", "", ""], dtype=object)
    assert mmr(scores, np.eye(4), 3, 0.0, none, max_per_creator=1, tiers=tiers).tolist() == [0, 2, 3]
    # a higher tier's passed-over row comes before the free rows of a lower tier
    assert mmr(scores, np.eye(4), 4, 0.0, creators, max_per_creator=1,
               tiers=np.array([1, 1, 0, 0])).tolist() == [0, 1, 2, 3]


def test_spread_pick_by_hand():
    value, inf = np.array([3.0, 2.0, 1.0]), np.inf
    assert spread_pick(value, np.array([True, False, False]), np.array([0, 0, 0])) == 1
    assert spread_pick(value, np.array([True, False, False]), np.array([1, 0, 0])) == 0  # a higher tier
    assert spread_pick(value, np.array([True, False, False]), np.array([1, 1, 1])) == 1  # an equal tier is not
    assert spread_pick(np.array([1.0, 3.0]), np.array([True, True]), np.array([0, 0])) == 1  # all passed over
    assert spread_pick(np.array([-inf, 1.0]), np.array([True, False]), np.array([5, 0])) == 1  # not available
    assert spread_pick(np.array([1.0, 2.0, 5.0]), np.array([True, True, False]), np.array([1, 2, 0])) == 1
    assert spread_pick(np.array([4.0, 2.0, 1.0, 3.0]), np.array([False, False, True, True]),
                       np.array([0, 0, 0, 1])) == 3  # the best of the higher-tier rows passed over


def test_policy_order_reads_only_the_columns_its_caps_need_and_passes_keep_and_tiers():
    scores = np.array([5.0, 4.0, 3.0, 2.0])
    cat = Columns(creator=np.array(["a", "a", "b", "b"], dtype=object),
                  genre=np.array(["x", "y", "x", "y"], dtype=object))
    pool = np.arange(4)
    assert policy_order(scores, np.eye(4), 3, policy(), cat, pool).tolist() == [0, 1, 2]
    assert cat.read == []
    assert policy_order(scores, np.eye(4), 4, policy(max_per_creator=1), cat, pool).tolist() == [0, 2]
    assert cat.read == ["creator"]
    assert policy_order(scores, np.eye(4), 4, policy(max_per_genre=1), cat, pool).tolist() == [0, 1]
    assert cat.read == ["creator", "genre"]
    assert policy_order(scores, np.eye(4), 2, policy(), cat, pool, keep=np.array([3])).tolist() == [3, 0]
    assert policy_order(scores, np.eye(4), 4, policy(max_per_creator=1), cat, pool,
                        tiers=np.zeros(4, np.int64)).tolist() == [0, 2, 1, 3]


@pytest.mark.parametrize("weight", [0.3, 1.0])
def test_mmr_with_diversity_returns_each_row_once(weight):
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(30, 4)).astype(np.float32)
    order = mmr(rng.normal(size=30), vectors, 30, weight, keep=[5, 7])
    assert order[:2].tolist() == [5, 7] and sorted(order.tolist()) == list(range(30))
