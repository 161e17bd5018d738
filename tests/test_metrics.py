import math

import numpy as np
import pytest

from edgerec.models import metrics
from edgerec.models.evaluation import rank_of, top_k


def test_accuracy_metrics_by_hand():
    ranks = np.array([0, 2, 9, 10, 50])
    assert metrics.hit_rate(ranks, 10) == pytest.approx(3 / 5)
    assert metrics.ndcg(ranks, 10) == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(11)) / 5)
    assert metrics.mrr(ranks, 10) == pytest.approx((1 + 1 / 3 + 1 / 10) / 5)
    assert metrics.hit_rate(ranks, 1) == pytest.approx(1 / 5)


def test_beyond_accuracy_metrics_by_hand():
    lists = np.array([[0, 1], [0, 2]])
    assert metrics.coverage(lists, 4) == 0.75  # items 0, 1, 2 of 4
    popularity = np.array([8, 4, 2, 0])
    # p = [1, 0.5, 0.25, 1/8] for 8 users -> self-information [0, 1, 2, 3]
    assert metrics.novelty(lists, popularity, 8) == pytest.approx((0 + 1 + 0 + 2) / 4)
    assert metrics.popularity_percentile(np.array([5, 1, 3])).tolist() == [1.0, 0.0, 0.5]
    assert metrics.popularity_percentile(np.array([1, 1, 2])).tolist() == [0.25, 0.25, 1.0]
    assert metrics.gini(np.array([1, 1, 1, 1])) == pytest.approx(0.0)
    assert metrics.gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)


def test_intra_list_diversity_by_hand():
    tags = np.array([[0, 1], [0, 2], [3, -1]])
    # pairs in [0,1,2]: (0,1) jaccard 1/3, (0,2) 0, (1,2) 0 -> mean dissimilarity (2/3 + 1 + 1) / 3
    assert metrics.intra_list_diversity(np.array([[0, 1, 2]]), tags) == pytest.approx((2 / 3 + 2) / 3)
    assert metrics.intra_list_diversity(np.array([[0, 0]]), tags) == pytest.approx(0.0)


def test_rank_and_top_k_agree_on_ties():
    scores = np.array([[0.5, 0.9, 0.5, -np.inf, 0.1]])
    assert rank_of(scores, np.array([2])).tolist() == [2]  # item 0 ties and comes first
    assert rank_of(scores, np.array([0])).tolist() == [1]
    assert top_k(scores, 3).tolist() == [[1, 0, 2]]
    assert top_k(scores, 6).tolist() == [[1, 0, 2, 4, -1, -1]]  # excluded and missing items pad with -1
