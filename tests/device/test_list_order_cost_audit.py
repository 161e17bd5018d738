"""The list order's cost (runtime/list_order.py, spec §5): caps without diversity and the newcomer spread walk
the best-first order once, and MMR diversity reads only the rows still available, yet every list is the one
the plain loop of picks gives (kept below as the reference, as it was before). The cost is checked as a work
count that does not depend on the machine: how many passes over the whole pool the picks make."""

from __future__ import annotations

import numpy as np
import pytest

from edgerec.runtime import list_order
from edgerec.runtime.list_order import mmr
from edgerec.runtime.policies import standardize

# ------------------------------------------------------------------ the reference: one pass per pick


def reference_mmr(scores, vectors, k, weight, creators=None, genres=None, max_per_creator=None,
                  max_per_genre=None, keep=None, tiers=None):
    n = len(scores)
    keep = np.zeros(0, np.int64) if keep is None else np.asarray(keep, np.int64)[:k]
    if weight <= 0 and not max_per_creator and not max_per_genre:
        best = list_order.best_first(scores)
        if len(keep):
            best = np.r_[keep, best[~np.isin(best, keep)]]
        return best[:k]
    relevance = standardize(scores.astype(np.float64))
    chosen, max_sim, per_creator, per_genre = [], np.full(n, 0.0), {}, {}
    over, available = np.zeros(n, bool), np.isfinite(relevance)

    def take(best):
        nonlocal max_sim
        chosen.append(best)
        if creators is not None:
            creator = creators[best]
            per_creator[creator] = per_creator.get(creator, 0) + 1
            if tiers is not None and creator and per_creator[creator] >= max_per_creator:
                over[creators == creator] = True
        if genres is not None:
            per_genre[genres[best]] = per_genre.get(genres[best], 0) + 1
        if weight > 0:
            max_sim = np.maximum(max_sim, vectors @ vectors[best])

    def genre_full(best):
        return bool(max_per_genre and genres is not None and genres[best]
                    and per_genre.get(genres[best], 0) >= max_per_genre)

    for best in keep.tolist():
        available[best] = False
        take(best)
    while len(chosen) < k and available.any():
        value = (1 - weight) * relevance
        if weight > 0:
            spread = np.zeros(n)
            spread[available] = standardize(max_sim[available])
            value = value - weight * spread
        value = np.where(available, value, -np.inf)
        best = int(np.argmax(value)) if tiers is None else reference_spread_pick(value, over, tiers)
        available[best] = False
        if (tiers is None and max_per_creator and creators is not None and creators[best]
                and per_creator.get(creators[best], 0) >= max_per_creator):
            continue
        if not genre_full(best):
            take(best)
    return np.asarray(chosen, np.int64)


def reference_spread_pick(value, over, tiers):
    free = np.where(over, -np.inf, value)
    best = int(np.argmax(free))
    higher = over & np.isfinite(value)
    if np.isfinite(free[best]):
        higher &= tiers > tiers[best]
    return int(np.argmax(np.where(higher, value, -np.inf))) if higher.any() else best


# ------------------------------------------------------------------ random pools


def pool(rng, n, groups_as):
    """Scores with ties and -inf rows, unit vectors with duplicates, creators/genres with rows without one."""
    scores = rng.integers(0, 6, n).astype(np.float64) if rng.random() < 0.5 else rng.normal(size=n)
    scores[rng.random(n) < 0.1] = -np.inf
    vectors = rng.normal(size=(max(n // 2, 1), 4))[rng.integers(0, max(n // 2, 1), n)]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    creators = rng.integers(0, max(2, n // 6), n)
    genres = rng.integers(0, 5, n)
    if groups_as == "int":  # 0 is no creator / genre
        return scores, vectors, creators, genres
    names = {"str": lambda g: np.array([f"g{x}" if x else "" for x in g]),
             "object": lambda g: np.array([f"g{x}" if x else "" for x in g], dtype=object)}[groups_as]
    return scores, vectors, names(creators), names(genres)


def cases(seed, count, n_max):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(0, n_max))
        scores, vectors, creators, genres = pool(rng, n, str(rng.choice(["int", "str", "object"])))
        k = int(rng.integers(0, n + 3))
        finite = np.flatnonzero(np.isfinite(scores))
        keep = None
        if rng.random() < 0.4 and len(finite):  # the kept head: best first, or any rows
            head = list_order.best_first(scores) if rng.random() < 0.5 else rng.permutation(finite)
            keep = head[:int(rng.integers(1, 4))]
        caps = dict(max_per_creator=[None, 1, 2, 3][rng.integers(0, 4)],
                    max_per_genre=[None, 1, 2][rng.integers(0, 3)])
        if not caps["max_per_creator"] and not caps["max_per_genre"]:
            caps["max_per_genre"] = 1
        tiers = rng.integers(0, int(rng.integers(1, 4)), n).astype(np.int8) if rng.random() < 0.5 else None
        if tiers is not None and not caps["max_per_creator"]:
            caps["max_per_creator"] = 1
        yield scores, vectors, k, creators, genres, caps, keep, tiers


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.7, 1.0])
def test_the_list_is_the_plain_loops_on_random_pools(weight):
    for scores, vectors, k, creators, genres, caps, keep, tiers in cases(int(weight * 10), 300, 40):
        args = (scores, vectors, k, weight, creators, genres, caps["max_per_creator"], caps["max_per_genre"],
                keep, tiers)
        got, want = mmr(*args), reference_mmr(*args)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want, err_msg=f"{args}")


def test_the_list_is_the_plain_loops_on_longer_lists():
    # long enough that caps fill, the two-cap walk refilters and the spread's heaps hold many rows
    rng = np.random.default_rng(7)
    for n, tiers, caps in ((3000, None, (1, None)), (3000, None, (2, 1)), (2000, None, (None, 1)),
                           (3000, 2, (2, None)), (2000, 3, (1, 2))):
        scores, vectors, creators, genres = pool(rng, n, "object")
        creators = np.array([f"c{x}" if x else "" for x in rng.integers(0, 40, n)], dtype=object)
        tier = None if tiers is None else rng.integers(0, tiers, n).astype(np.int8)
        keep = list_order.best_first(scores)[:3]
        for k in (10, 300, n):
            args = (scores, vectors, k, 0.0, creators, genres, caps[0], caps[1], keep, tier)
            np.testing.assert_array_equal(mmr(*args), reference_mmr(*args))


def test_diversity_with_caps_and_spread_on_a_longer_list_is_the_plain_loops():
    rng = np.random.default_rng(3)
    scores, vectors, creators, genres = pool(rng, 1500, "str")
    tiers = rng.integers(0, 2, 1500).astype(np.int8)
    for args in ((scores, vectors, 120, 0.5, creators, genres, 2, 3, [4, 9]),
                 (scores, vectors, 120, 0.5, creators, None, 1, None, None, tiers)):
        np.testing.assert_array_equal(mmr(*args), reference_mmr(*args))


# ------------------------------------------------------------------ the work: passes over the whole pool


class CountingNumpy:
    """numpy, counting the argmax calls that read a whole pool of `rows` rows (one per pick before)."""

    def __init__(self, rows):
        self.rows, self.passes = rows, 0

    def argmax(self, values, *args, **kwargs):
        self.passes += np.size(values) >= self.rows
        return np.argmax(values, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(np, name)


@pytest.mark.parametrize("caps", [dict(max_per_genre=1), dict(max_per_creator=1), dict(max_per_creator=2),
                                  dict(max_per_creator=1, max_per_genre=1)])
def test_caps_that_cannot_fill_k_walk_the_pool_once(monkeypatch, caps):
    # 3 genres and 10 creators over 3000 rows, k beyond what the caps keep: every row is passed in the end,
    # which took one pass over the pool per row (3000 passes)
    rng = np.random.default_rng(1)
    n = 3000
    scores, genres, creators = rng.normal(size=n), rng.integers(1, 4, n), rng.integers(1, 11, n)
    counting = CountingNumpy(n)
    monkeypatch.setattr(list_order, "np", counting)
    got = mmr(scores, np.eye(n, 4), 40, 0.0, creators, genres, keep=np.array([5]), **caps)
    monkeypatch.undo()
    assert counting.passes == 0
    np.testing.assert_array_equal(got, reference_mmr(scores, np.eye(n, 4), 40, 0.0, creators, genres,
                                                     keep=np.array([5]), **caps))


def test_the_newcomer_spread_of_a_long_list_does_not_pass_over_the_pool_per_pick(monkeypatch):
    # a newcomer's spread (cap 2 per creator, two tiers), k = the whole pool: one spread_pick per pick before
    rng = np.random.default_rng(2)
    n = 2000
    scores, creators = rng.normal(size=n), np.array([f"c{x}" for x in rng.integers(0, 30, n)], dtype=object)
    tiers = rng.integers(0, 2, n).astype(np.int8)
    counting, picks = CountingNumpy(n), []
    monkeypatch.setattr(list_order, "np", counting)
    monkeypatch.setattr(list_order, "spread_pick", lambda *a: picks.append(1) or list_order.spread_pick(*a))
    got = mmr(scores, np.eye(n, 4), n, 0.0, creators, max_per_creator=2, tiers=tiers)
    monkeypatch.undo()
    assert counting.passes == 0 and not picks
    np.testing.assert_array_equal(got, reference_mmr(scores, np.eye(n, 4), n, 0.0, creators, max_per_creator=2,
                                                     tiers=tiers))


def test_diversity_scores_only_the_rows_still_available(monkeypatch):
    # each pick standardises over the available rows (spec) and scored the whole pool around them; now the
    # arrays it scores shrink by one a pick (the standardisation reads the same values in the same order)
    rng = np.random.default_rng(4)
    scores, vectors, _, _ = pool(rng, 50, "int")
    counting, sizes = CountingNumpy(0), []
    counting.argmax = lambda values: sizes.append(len(values)) or np.argmax(values)
    monkeypatch.setattr(list_order, "np", counting)
    got = mmr(scores, vectors, 10, 0.5, keep=[int(np.argmax(scores))])
    monkeypatch.undo()
    finite = int(np.isfinite(scores).sum()) - 1
    assert sizes == list(range(finite, finite - 9, -1))
    np.testing.assert_array_equal(got, reference_mmr(scores, vectors, 10, 0.5, keep=[int(np.argmax(scores))]))
