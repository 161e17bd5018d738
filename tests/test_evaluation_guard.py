"""Offline metrics and the full-ranking protocol on small cases checked by hand (exact values)."""

import math
import time

import numpy as np
import pytest

from edgerec.data.schema import EVENT_CODE, Catalog, Dataset, Interactions
from edgerec.data.split import leave_last_out
from edgerec.errors import ModelError
from edgerec.models import metrics
from edgerec.models.evaluation import (
    Evaluator,
    rank_of,
    tag_matrix,
    tie_keys,
    top_k,
    train_popularity,
)

# ------------------------------------------------------------------ metrics at their edges


def test_accuracy_metrics_count_rank_k_minus_one_and_not_rank_k():
    ranks = np.array([9, 10])
    assert metrics.hit_rate(ranks, 10) == 0.5
    assert metrics.ndcg(ranks, 10) == pytest.approx(1 / math.log2(11) / 2)
    assert metrics.mrr(ranks, 10) == pytest.approx(0.1 / 2)
    assert metrics.ndcg(np.array([0]), 1) == 1.0 and metrics.mrr(np.array([0]), 1) == 1.0
    assert metrics.ndcg(np.array([1]), 5) == pytest.approx(1 / math.log2(3))


def test_accuracy_metrics_of_no_users_are_zero():
    empty = np.array([], np.int64)
    assert metrics.hit_rate(empty, 10) == 0.0 and metrics.ndcg(empty, 10) == 0.0 and metrics.mrr(empty, 10) == 0.0


def test_coverage_ignores_padding_and_counts_item_zero():
    assert metrics.coverage(np.array([[0, -1], [3, -1]]), 4) == 0.5
    assert metrics.coverage(np.array([[1, 2]]), 0) == 0.0


def test_novelty_ignores_padding_and_floors_unconsumed_items_at_one_user():
    # p = [4/4, max(0, 1)/4] -> self-information [0, 2]; the -1 place is padding
    assert metrics.novelty(np.array([[0, 1, -1]]), np.array([4, 0]), 4) == pytest.approx(1.0)
    assert metrics.novelty(np.array([[1, 1]]), np.array([4, 1]), 8) == pytest.approx(3.0)
    assert metrics.novelty(np.array([[0]]), np.array([1]), 0) == 0.0  # no users: p = 1 / 1
    assert metrics.novelty(np.array([[-1, -1]]), np.array([1]), 3) == 0.0


def test_popularity_percentile_of_one_and_two_items():
    assert metrics.popularity_percentile(np.array([7])).tolist() == [0.0]
    assert metrics.popularity_percentile(np.array([9, 2])).tolist() == [1.0, 0.0]
    assert metrics.popularity_percentile(np.array([3, 3, 3, 0, 5])).tolist() == [0.5, 0.5, 0.5, 0.0, 1.0]


def test_intra_list_diversity_edges():
    tags = np.array([[0, 1], [2, -1], [-1, -1], [-1, -1]])
    assert metrics.intra_list_diversity(np.array([[0], [1]]), tags) is None  # one item: no pair
    assert metrics.intra_list_diversity(np.array([[0, 1]]), tags) == 1.0  # no shared tag
    # a pair with an untagged item says nothing (two untagged items read 1.0, "as different"): left out
    assert metrics.intra_list_diversity(np.array([[2, 3]]), tags) is None
    assert metrics.intra_list_diversity(np.array([[0, 2]]), tags) is None
    assert metrics.intra_list_diversity(np.array([[0, 2, 1, 3]]), tags) == 1.0  # the one tagged pair
    assert metrics.intra_list_diversity(np.array([[0, 2, 0, 3]]), tags) == 0.0
    # two lists: (0, 0) identical, (0, 1) disjoint -> mean of 0 and 1
    assert metrics.intra_list_diversity(np.array([[0, 0], [0, 1]]), tags) == 0.5
    # a padded place (-1, fewer items than k) is no item: only the real pair counts
    assert metrics.intra_list_diversity(np.array([[0, 1, -1]]), tags) == 1.0
    assert metrics.intra_list_diversity(np.array([[0, -1, -1]]), tags) is None
    # padding anywhere, not only at the end, forms no pair
    assert metrics.intra_list_diversity(np.array([[-1, 0, 1]]), tags) == 1.0
    assert metrics.intra_list_diversity(np.array([[0, -1, 0]]), tags) == 0.0
    # one shared tag each: the same tag set, no diversity
    assert metrics.intra_list_diversity(np.array([[0, 1]]), np.array([[5, -1], [5, -1]])) == 0.0
    assert metrics.intra_list_diversity(np.zeros((0, 3), int), tags) is None


# ------------------------------------------------------------------ rank_of and top_k


def test_rank_of_counts_better_items_and_lower_index_ties():
    scores = np.array([[0.3, 0.7, 0.7, 0.1, 0.7], [1.0, 0.0, 0.5, 0.5, -np.inf]])
    assert rank_of(scores, np.array([2, 3])).tolist() == [1, 2]
    assert rank_of(scores, np.array([4, 0])).tolist() == [2, 0]
    assert rank_of(scores, np.array([3, 1])).tolist() == [4, 3]


def test_top_k_exact_lists_with_ties_exclusions_and_short_catalogs():
    scores = np.array([[0.3, 0.7, 0.7, 0.1, 0.7], [-np.inf, 0.2, -np.inf, 0.9, 0.2]])
    assert top_k(scores, 2).tolist() == [[1, 2], [3, 1]]
    assert top_k(scores, 4).tolist() == [[1, 2, 4, 0], [3, 1, 4, -1]]
    assert top_k(scores, 7).tolist() == [[1, 2, 4, 0, 3, -1, -1], [3, 1, 4, -1, -1, -1, -1]]
    assert top_k(np.array([[2.0, 1.0]]), 1).tolist() == [[0]]


@pytest.mark.parametrize("k", [1, 7, 50])
def test_top_k_and_rank_of_match_a_full_sort_on_large_rows(k):
    """Rows far longer than any small-array shortcut, with ties and exclusions."""
    rng = np.random.default_rng(k)
    scores = np.round(rng.normal(size=(4, 3_000)) * 4) / 4  # coarse values: many ties
    scores[rng.random(scores.shape) < 0.1] = -np.inf
    for row in range(len(scores)):
        order = np.lexsort((np.arange(scores.shape[1]), -scores[row]))  # best first, lower index on ties
        assert top_k(scores[row:row + 1], k)[0].tolist() == order[:k].tolist()
        targets = rng.integers(0, scores.shape[1], 5)
        ranks = rank_of(np.repeat(scores[row:row + 1], 5, 0), targets)
        assert ranks.tolist() == [scores.shape[1] if np.isneginf(scores[row, t])  # excluded: never a hit
                                  else int(np.flatnonzero(order == t)[0]) for t in targets]


@pytest.mark.parametrize("k", [1, 3, 10])
def test_top_k_breaks_ties_row_by_row_when_many_rows_come_together(k):
    """Rows with more ties at the k-th score than places (coarse values) beside rows without (fine
    values), in one call: only the former are counted through, and each row keeps its own lowest indices."""
    rng = np.random.default_rng(k)
    scores = rng.normal(size=(12, 400))
    scores[::2] = np.round(scores[::2])  # even rows: a handful of values, ties everywhere
    scores[1::3, ::7] = -np.inf
    scores[5] = -np.inf  # a row with nothing left to recommend
    got = top_k(scores, k)
    for row in range(len(scores)):
        order = np.lexsort((np.arange(scores.shape[1]), -scores[row]))[:k]
        expected = np.where(np.isneginf(scores[row, order]), -1, order)
        assert got[row].tolist() == expected.tolist()


@pytest.mark.parametrize("k", [1, 3, 10, 400])
def test_given_users_ties_follow_each_users_tie_key_in_ranks_and_lists_alike(k):
    """The order is a full sort by (score, the user's tie key); the same rows under other users differ."""
    rng = np.random.default_rng(k)
    scores = np.round(rng.normal(size=(6, 300)))  # a handful of values: ties everywhere
    scores[1, ::5] = -np.inf
    users = np.array([3, 17, 4, 99, 0, 1 << 20])
    targets = rng.integers(0, 300, 6)
    targets[1] = 1
    got, ranks = top_k(scores, k, users), rank_of(scores, targets, users)
    for row, user in enumerate(users):
        order = np.lexsort((tie_keys(np.full(300, user), np.arange(300)), -scores[row]))
        want = np.r_[np.where(np.isneginf(scores[row, order]), -1, order), np.full(max(k - 300, 0), -1)]
        assert got[row].tolist() == want[:k].tolist()  # k past the catalog: padding
        assert ranks[row] == (300 if np.isneginf(scores[row, targets[row]]) else np.flatnonzero(order == targets[row])[0])
    assert not np.array_equal(top_k(scores, k, users + 1), got) or k == 400


# ------------------------------------------------------------------ the protocol on a hand-built split


def _dataset(extra_items=0):
    """user 0 consumes 0, 1, 2, 3; user 1 consumes 4, 5, 0, 1; user 2 only 2 (training only)."""
    events = [(0, 0, 1), (0, 1, 2), (0, 2, 3), (0, 3, 4), (1, 4, 1), (1, 5, 2), (1, 0, 3), (1, 1, 4), (2, 2, 1)]
    user, item, t = (np.array(c) for c in zip(*events))
    log = Interactions(user.astype(np.int32), item.astype(np.int32), t.astype(np.int64),
                       np.full(len(user), EVENT_CODE["play"], np.int8), np.ones(len(user), np.float32))
    catalog = Catalog([f"i{i}" for i in range(6 + extra_items)],
                      text={"genre": ["a", "a", "b", "", "b", "c"] + [""] * extra_items},
                      tags=[("x",), ("x", "y"), (), ("y",), ("a",), ("x", "y", "z")] + [()] * extra_items)
    return Dataset(catalog, log.sorted_by_time(), ["u0", "u1", "u2"])


ROWS = {0: [0.1, 0.2, 0.3, 0.9, 0.5, 0.4], 1: [0.9, 0.1, 0.8, 0.7, 0.95, 0.99], 2: [0.0] * 6}


class FixedScorer:
    name = "fixed"

    def __init__(self, rows=ROWS):
        self.rows = rows
        self.calls = []

    def score(self, users, history):
        self.calls.append(list(users))
        return np.array([self.rows[int(u)] for u in users])


def test_tag_matrix_puts_genre_first_dedupes_and_caps():
    tags = tag_matrix(_dataset().catalog, max_tags=2)
    assert tags.dtype == np.int32
    # codes in order of first use among the kept names: a, x, b, y, c (item 1's y falls past the cap)
    assert tags.tolist() == [[0, 1], [0, 1], [2, -1], [3, -1], [2, 0], [4, 1]]
    full = tag_matrix(Catalog(["p", "q"], text={"genre": ["g", "g"]}, tags=[("g", "h"), ()]))
    assert full.tolist() == [[0, 1], [0, -1]]  # as wide as the longest item
    many = [tuple(f"t{j}" for j in range(15)) + (f"own{i}a", f"own{i}b", f"own{i}c", f"own{i}d") for i in range(2)]
    wide = tag_matrix(Catalog(["p", "q"], text={"genre": ["drama", "drama"]}, tags=many))
    assert wide.shape == (2, 20)  # a cut at 16 kept only the 16 shared tags: the two read as identical
    assert metrics.intra_list_diversity(np.array([[0, 1]]), wide) == pytest.approx(1 - 16 / 24)


def test_ranks_and_lists_exclude_consumed_items_per_phase():
    split = leave_last_out(_dataset())
    assert split.test_users.tolist() == [0, 1] and train_popularity(split).tolist() == [1, 1, 1, 0, 1, 1]
    ev = Evaluator(split, _dataset().catalog, k=2)
    ranks, lists = ev.ranks_and_lists(FixedScorer(), "test")
    # user 0 saw 0, 1, 2 -> 3 (0.9), 4, 5: target 3 first; user 1 saw 4, 5, 0 -> 2, 3, 1: target 1 third
    assert ranks.tolist() == [0, 2] and lists.tolist() == [[3, 4], [2, 3]]
    assert ranks.dtype == np.int64 and lists.dtype == np.int64
    ranks, lists = ev.ranks_and_lists(FixedScorer(), "val")
    # validation histories hold only the training items: user 0 saw 0, 1; user 1 saw 4, 5
    assert ranks.tolist() == [3, 0] and lists.tolist() == [[3, 4], [0, 2]]


def test_chunks_rows_and_progress_do_not_change_the_answer():
    split = leave_last_out(_dataset())
    whole = Evaluator(split, _dataset().catalog, k=3)
    one_by_one = Evaluator(split, _dataset().catalog, k=3, chunk_users=1)
    seen = []
    scorer = FixedScorer()
    a = whole.ranks_and_lists(FixedScorer(), "test")
    b = one_by_one.ranks_and_lists(scorer, "test", progress=lambda done, total: seen.append((done, total)))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert scorer.calls == [[0], [1]] and seen == [(1, 2), (2, 2)]
    ranks, lists = whole.ranks_and_lists(FixedScorer(), "test", rows=np.array([1]))
    assert ranks.tolist() == [2] and lists.tolist() == [[2, 3, 1]]


def test_evaluate_reports_every_metric_of_the_lists():
    split = leave_last_out(_dataset())
    ev = Evaluator(split, _dataset().catalog, k=2)
    out = ev.evaluate(FixedScorer(), "test")
    assert out["model"] == "fixed" and out["phase"] == "test" and out["users"] == 2
    assert out["HR@2"] == 0.5 and out["NDCG@2"] == 0.5 and out["MRR@2"] == 0.5
    assert out["coverage@2"] == 0.5  # items 2, 3, 4 of 6
    # training popularity [1, 1, 1, 0, 1, 1] over 3 training users: p = 1/3 for every item
    assert out["novelty@2"] == pytest.approx(math.log2(3))
    # percentiles: item 3 (the only 0) -> 0.0, the five 1s share rank 3 of 0..5 -> 0.6
    assert out["pop_percentile@2"] == pytest.approx((0.6 + 0.6 + 0.0 + 0.0) / 4)
    assert out["gini@2"] == pytest.approx(metrics.gini(np.array([0, 0, 1, 2, 1, 0])))
    tags = tag_matrix(_dataset().catalog)
    assert out["diversity@2"] == pytest.approx(metrics.intra_list_diversity(np.array([[3, 4], [2, 3]]), tags))
    assert out["diversity@2"] == 1.0  # (3, 4): y vs b, a; (2, 3): b vs y


def test_scorer_mistakes_are_refused():
    split = leave_last_out(_dataset())
    ev = Evaluator(split, _dataset().catalog, k=2)
    with pytest.raises(ModelError, match=r"shape \(2, 5\), expected \(2, 6\)"):
        ev.ranks_and_lists(FixedScorer({u: r[:5] for u, r in ROWS.items()}), "test")
    nan = {u: list(r) for u, r in ROWS.items()}
    nan[1][3] = float("nan")
    with pytest.raises(ModelError, match="NaN"):
        ev.ranks_and_lists(FixedScorer(nan), "test")


def test_places_past_the_unconsumed_items_are_padding():
    split = leave_last_out(_dataset())
    _, lists = Evaluator(split, _dataset().catalog, k=5).ranks_and_lists(FixedScorer(), "test")
    assert lists.tolist() == [[3, 4, 5, -1, -1], [2, 3, 1, -1, -1]]


def test_popularity_covers_items_nobody_trained_on():
    split = leave_last_out(_dataset(extra_items=2))
    assert train_popularity(split).tolist() == [1, 1, 1, 0, 1, 1, 0, 0]
    rows = {u: r + [0.95, 0.0] for u, r in ROWS.items()}  # item 6, unseen in training, scores high
    out = Evaluator(split, _dataset(extra_items=2).catalog, k=2).evaluate(FixedScorer(rows), "test")
    assert out["coverage@2"] == 3 / 8 and out["novelty@2"] == pytest.approx(math.log2(3))


def test_a_target_scored_minus_infinity_is_never_a_hit():
    """-inf is "never recommend": top_k leaves such an item out, and its rank as a target was still counted
    among its -inf ties by tie key, so HR could count a hit the list does not hold."""
    split = leave_last_out(_dataset())
    nothing = {u: [-np.inf] * 6 for u in ROWS}
    ranks, lists = Evaluator(split, _dataset().catalog, k=6).ranks_and_lists(FixedScorer(nothing), "test")
    assert ranks.tolist() == [6, 6] and (lists == -1).all()
    assert rank_of(np.array([[-np.inf, 0.5, -np.inf]]), np.array([0])).tolist() == [3]


def test_scores_are_compared_in_float32():
    """A scorer's float64 differences below float32 precision are ties, broken as exact ties are."""
    split = leave_last_out(_dataset())
    ev = Evaluator(split, _dataset().catalog, k=3)
    rows = {u: [0.5, 0.5, 0.5, 0.5, 0.5 + 1e-12, 0.5 + 2e-12] for u in ROWS}
    ranks, lists = ev.ranks_and_lists(FixedScorer(rows), "test")
    flat_ranks, flat_lists = ev.ranks_and_lists(FixedScorer({u: [0.5] * 6 for u in ROWS}), "test")
    assert lists.tolist() == flat_lists.tolist() and ranks.tolist() == flat_ranks.tolist()
    assert sorted(lists[0].tolist()) == [3, 4, 5] and sorted(lists[1].tolist()) == [1, 2, 3]  # the unseen items


def test_evaluate_passes_rows_and_progress_and_counts_item_zero():
    split = leave_last_out(_dataset())
    ev = Evaluator(split, _dataset().catalog, k=2, chunk_users=1)
    seen = []
    began = time.perf_counter()
    out = ev.evaluate(FixedScorer(), "val", progress=lambda done, total: seen.append(done))
    took = time.perf_counter() - began
    assert seen == [1, 2] and out["users"] == 2 and out["phase"] == "val"
    # val lists: user 0 [3, 4] (target 2 at rank 3), user 1 [0, 2] (target 0 first)
    assert out["HR@2"] == 0.5 and out["coverage@2"] == 4 / 6
    assert out["pop_percentile@2"] == pytest.approx((0.0 + 0.6 + 0.6 + 0.6) / 4)  # item 0 counts
    assert out["gini@2"] == pytest.approx(metrics.gini(np.array([1, 0, 1, 1, 1, 0])))
    assert isinstance(out["eval_seconds"], float) and out["eval_seconds"] == round(out["eval_seconds"], 2)
    assert 0.0 <= out["eval_seconds"] <= round(took, 2) + 0.01
    one = ev.evaluate(FixedScorer(), "test", rows=np.array([1]))
    assert one["users"] == 1 and one["HR@2"] == 0.0 and one["coverage@2"] == 2 / 6


def test_evaluate_with_nothing_to_recommend():
    split = leave_last_out(_dataset())
    nothing = {u: [-np.inf] * 6 for u in ROWS}
    out = Evaluator(split, _dataset().catalog, k=2).evaluate(FixedScorer(nothing), "test")
    assert out["coverage@2"] == 0.0 and out["novelty@2"] == 0.0 and out["pop_percentile@2"] == 0.0
    assert out["diversity@2"] is None and out["gini@2"] == metrics.gini(np.zeros(6, np.int64))


def test_a_search_reads_unmeasurable_diversity_as_none_at_all():
    from edgerec.studies.policy_bound import objective_reading, policy_value

    assert objective_reading({"diversity@10": None}, "diversity@10") == 0.0
    assert objective_reading({"diversity@10": 0.25}, "diversity@10") == 0.25
    assert policy_value({"diversity@10": None, "NDCG@10": 0.1}, "diversity@10", 0.1, 0.05) == 0.0
