"""Offline ranking metrics, as plain functions over ranks and recommendation lists.

Accuracy metrics take the 0-based rank of each user's held-out item in the
full ranking (rank >= k means a miss). Beyond-accuracy metrics take the top-k
lists of all users. Each function is small enough to check by hand.
"""

from __future__ import annotations

import numpy as np

from edgerec.data.stats import gini  # the same Gini measures popularity skew and exposure

__all__ = ["coverage", "gini", "hit_rate", "intra_list_diversity", "mrr", "ndcg", "ndcg_per_user", "novelty",
           "paired_change", "describe_change", "popularity_percentile"]


def hit_rate(ranks: np.ndarray, k: int) -> float:
    """HR@k; with one held-out item per user it equals Recall@k."""
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


def ndcg(ranks: np.ndarray, k: int) -> float:
    """NDCG@k with one relevant item: 1 / log2(rank + 2) when it is in the top k."""
    return float(ndcg_per_user(ranks, k).mean()) if len(ranks) else 0.0


def ndcg_per_user(ranks: np.ndarray, k: int) -> np.ndarray:
    """Each user's NDCG@k term (for paired comparisons of two rankers on the same users)."""
    ranks = np.asarray(ranks)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def paired_change(gains: np.ndarray, base: np.ndarray) -> dict:
    """The change of per-user gains (e.g. `ndcg_per_user`) from `base` on the same users, with its paired
    standard error: how much of a change is noise at this many users. `difference` and
    `difference_error` are absolute; `change` and `standard_error` are shares of base's mean, and None
    when base scores 0 everywhere (a relative change from nothing means nothing)."""
    gains, base = np.asarray(gains, np.float64), np.asarray(base, np.float64)
    diff = gains - base
    error = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    mean = float(base.mean()) if len(base) else 0.0
    relative = mean > 0
    return {"change": float(diff.mean()) / mean if relative else None,
            "standard_error": error / mean if relative else None,
            "difference": float(diff.mean()) if len(diff) else 0.0, "difference_error": error}


def describe_change(change: dict) -> str:
    """`paired_change` in words for a table: "+4.2% (s.e. 1.1%)", or the absolute difference when the base
    scored 0."""
    if change["change"] is None:
        return f"n/a, base scores 0: {change['difference']:+.4f} (s.e. {change['difference_error']:.4f})"
    return f"{change['change']:+.1%} (s.e. {change['standard_error']:.1%})"


def mrr(ranks: np.ndarray, k: int) -> float:
    """MRR@k: 1 / (rank + 1) when the item is in the top k, else 0."""
    if not len(ranks):
        return 0.0
    return float(np.where(ranks < k, 1.0 / (ranks + 1.0), 0.0).mean())


def coverage(lists: np.ndarray, n_items: int) -> float:
    """Share of the catalog that appears in at least one list."""
    return float(np.unique(lists[lists >= 0]).size / n_items) if n_items else 0.0


def novelty(lists: np.ndarray, popularity: np.ndarray, n_users: int) -> float:
    """Mean self-information -log2 p(i) of recommended items, p(i) = users who consumed i / users.

    Items nobody consumed count as consumed by one user, so the value stays finite.
    """
    p = np.maximum(popularity, 1) / max(n_users, 1)
    items = lists[lists >= 0]
    return float(np.mean(-np.log2(p[items]))) if items.size else 0.0


def popularity_percentile(popularity: np.ndarray) -> np.ndarray:
    """Each item's popularity percentile in [0, 1] (ties share their mean rank)."""
    order = np.argsort(popularity, kind="stable")
    ranks = np.empty(len(popularity), np.float64)
    ranks[order] = np.arange(len(popularity))
    # average the ranks of tied values
    values, inverse = np.unique(popularity, return_inverse=True)
    mean_rank = np.bincount(inverse, weights=ranks) / np.bincount(inverse)
    return mean_rank[inverse] / max(len(popularity) - 1, 1)


def intra_list_diversity(lists: np.ndarray, item_tags: np.ndarray, budget: int = 1 << 24) -> float | None:
    """Mean pairwise 1 - Jaccard(tags) within each list; None when no list holds two items (no pair to measure:
    0.0 would read as "every list is one genre").

    `item_tags` is (n_items, T) integer tag codes padded with -1 (genre counts as a tag).
    A pair with an untagged item is left out (its Jaccard says nothing: two untagged items counted as
    different read 1.0 on a catalog with one tagged item); None when no pair is left. Padded places (-1: fewer than k items to
    recommend) are no item and form no pair. Lists are taken a few at a time so that about
    `budget` numbers are held at once (comparing every tag slot with every other, as this did,
    asked for 899 GiB at k = 2000 on MovieLens-100K): the intersection is a product of tag counts.
    """
    n, k = lists.shape
    if n == 0 or k < 2:
        return None
    width = item_tags.shape[1] if item_tags.ndim == 2 else 0
    codes_seen = int(item_tags.max()) + 1 if item_tags.size else 0
    vocab = max(1, min(codes_seen, k * width))  # at most this many codes in one list
    chunk = max(1, budget // (k * vocab + 4 * k * k))
    upper = np.triu_indices(k, 1)
    total, pairs = 0.0, 0
    for start in range(0, n, chunk):
        part = lists[start:start + chunk]
        tags = item_tags[np.maximum(part, 0)]  # (b, k, T); padded places are masked out below
        valid = tags >= 0
        codes, inverse = np.unique(tags[valid], return_inverse=True)
        counts = np.zeros((len(part), k, max(len(codes), 1)), np.float32)  # how often each code is a tag
        rows, places, _ = np.nonzero(valid)
        np.add.at(counts, (rows, places, inverse.ravel()), 1.0)
        # inter[a, c]: a's tags that c also has (a tag held twice by a counts twice, as slots did)
        inter = np.rint(counts @ (counts > 0).astype(np.float32).transpose(0, 2, 1)).astype(np.int64)
        size = valid.sum(-1)
        union = size[:, :, None] + size[:, None, :] - inter
        jaccard = inter / np.maximum(union, 1)
        present = (part >= 0) & (size > 0)  # an item with no tag forms no pair
        real = (present[:, :, None] & present[:, None, :])[:, upper[0], upper[1]]
        dissimilarity = (1.0 - jaccard[:, upper[0], upper[1]])[real]
        total, pairs = total + float(dissimilarity.sum()), pairs + dissimilarity.size
    return total / pairs if pairs else None
