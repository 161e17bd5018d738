"""Ranker examples on catalogs no larger than the short list (a user's own small import): the short list is
then the whole unseen catalog, and a candidate group never contrasts the chosen item with itself or with
items the user has already consumed. `edgerec train --arch ranker` on a 4-item data set ended in a numpy
traceback (argpartition out of bounds)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgerec.data.schema import Catalog, Dataset, Interactions
from edgerec.data.split import leave_last_out
from edgerec.errors import DataError
from edgerec.models.ranker import RankerConfig, RerankScorer, build_training_set


class FixedScorer:
    """Retrieval stand-in: fixed item vectors, every user the same vector."""

    def __init__(self, n_items: int, seed: int):
        self.items = np.random.default_rng(seed).normal(size=(n_items, 4))

    def user_vectors(self, rows, _prefix):
        return np.ones((len(rows), 4))

    def item_matrix(self):
        return self.items


def dataset(histories: list[list[int]], n_items: int) -> Dataset:
    users = np.array([u for u, h in enumerate(histories) for _ in h], np.int32)
    items = np.array([i for h in histories for i in h], np.int32)
    n = len(items)
    log = Interactions(users, items, np.arange(n, dtype=np.int64), np.zeros(n, np.int8), np.ones(n, np.float32))
    return Dataset(Catalog.bare([f"i{i}" for i in range(n_items)]), log, [f"u{u}" for u in range(len(histories))])


def checked_groups(data: Dataset, cfg: RankerConfig, seed: int = 0):
    groups = []

    def featurize(_user, _vectors, candidates, history, *_context):
        chosen, negatives = int(candidates[0]), candidates[1:]
        assert chosen not in negatives and not set(negatives) & set(history.tolist())
        assert len(set(negatives.tolist())) == len(negatives) == cfg.negatives_per_event
        groups.append(candidates)
        return candidates[:, None].astype(np.float32)

    build_training_set(data, leave_last_out(data), FixedScorer(data.n_items, seed), None, cfg, featurize)
    return groups


@settings(max_examples=60, deadline=None)
@given(n_items=st.integers(4, 24), retrieve=st.integers(2, 40), negatives=st.integers(1, 4),
       seed=st.integers(0, 1_000), data=st.data())
def test_groups_hold_unseen_items_only_whatever_the_catalog_and_short_list(n_items, retrieve, negatives, seed, data):
    rng = np.random.default_rng(seed)
    lengths = data.draw(st.lists(st.integers(4, n_items), min_size=1, max_size=4))
    histories = [rng.permutation(n_items)[:k].tolist() for k in lengths]
    cfg = RankerConfig(retrieve=retrieve, negatives_per_event=min(negatives, retrieve), seed=seed)
    try:
        checked_groups(dataset(histories, n_items), cfg, seed)
    except DataError as exc:
        assert "no examples to train a ranker or scorer on" in str(exc)


def test_a_catalog_smaller_than_the_short_list_gives_groups():
    histories = [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [1, 3, 5, 0, 2, 4]]
    groups = checked_groups(dataset(histories, 12), RankerConfig(retrieve=100, negatives_per_event=3))
    assert groups


def test_too_few_unseen_items_for_a_group_says_what_a_ranker_needs():
    with pytest.raises(DataError, match="no examples to train a ranker or scorer on.*more items"):
        checked_groups(dataset([[0, 1, 2, 3], [3, 2, 1, 0]], 4), RankerConfig(negatives_per_event=9))


@pytest.mark.parametrize("n_items", [8, 12, 103, 150])
def test_the_reranked_evaluation_never_lifts_seen_items_onto_the_short_list(n_items):
    """With fewer unseen items than the short list, seen items (score -inf) were taken into it and lifted to
    the top; with fewer items than the list, numpy stopped the run."""
    histories = [[(u + k) % n_items for k in range(6)] for u in range(4)]
    data = dataset(histories, n_items)
    split = leave_last_out(data)
    tops = []

    class Recorded(RerankScorer):
        def rerank(self, user, vector, items, top, hist, t, device):
            tops.append((top.copy(), hist.copy()))
            return np.zeros(len(top), np.float32)

    users = split.targets("val")[0]
    scores = Recorded(FixedScorer(n_items, 0), None, None, data, split, "val").score(users, split.train)
    assert tops and all(not set(top.tolist()) & set(hist.tolist()) for top, hist in tops)
    for row, user in enumerate(users):
        seen = split.train.of(user)
        assert np.all(scores[row, seen] < 1e3)
        assert (scores[row] >= 1e3).sum() == min(100, n_items - len(set(seen.tolist())))


def test_a_large_log_builds_its_examples_from_a_seeded_sample_of_max_events():
    """Each event costs a user vector and a catalog scan: a 300k-user log's recent events took hours."""
    histories = [[(u * 3 + k) % 40 for k in range(8)] for u in range(30)]
    data = dataset(histories, 40)
    everything = checked_groups(data, RankerConfig(retrieve=40, negatives_per_event=2, max_events=10_000))
    capped = checked_groups(data, RankerConfig(retrieve=40, negatives_per_event=2, max_events=12))
    again = checked_groups(data, RankerConfig(retrieve=40, negatives_per_event=2, max_events=12))
    assert len(everything) > 12 >= len(capped) > 0
    assert [g.tolist() for g in capped] == [g.tolist() for g in again]  # seeded: the same sample each run
    chosen = {int(g[0]) for g in capped}
    assert chosen <= {int(g[0]) for g in everything}


@pytest.mark.parametrize("cap", [0, -5])
def test_a_cap_below_one_event_is_refused_by_name(cap):
    from edgerec.errors import ConfigError

    with pytest.raises(ConfigError, match=f"at least one event \\(max_events {cap}\\)"):
        checked_groups(dataset([[0, 1, 2, 3, 4]], 12), RankerConfig(negatives_per_event=2, max_events=cap))


def test_an_item_consumed_again_is_never_a_groups_chosen_item():
    """A finish after a play of the same item: its score was -inf (seen), every unseen item counted above it,
    and under `retrieve` unseen items the group formed anyway, teaching the ranker an item the device never
    ranks (59% of a small catalog's groups)."""
    chosen_seen = []

    def featurize(_user, _vectors, candidates, history, *_context):
        chosen_seen.append(int(candidates[0]) in set(history.tolist()))
        return candidates[:, None].astype(np.float32)

    histories = [[i, i, (i + 3) % 12, (i + 3) % 12, (i + 5) % 12, (i + 7) % 12] for i in range(6)]  # each twice
    data = dataset(histories, 12)
    build_training_set(data, leave_last_out(data), FixedScorer(12, 0), None,
                       RankerConfig(retrieve=100, negatives_per_event=2), featurize)
    assert chosen_seen and not any(chosen_seen)


def test_training_holds_out_a_group_whatever_the_seed():
    """With 20 groups, rng.random < 0.1 held none out 12% of the time, and validation reshaped an empty tensor."""
    import torch

    from edgerec.models.ranker import train_ranker
    from edgerec.runtime.features import feature_count

    for seed in range(12):
        width = feature_count(8)
        examples = SimpleNamespace(groups=np.random.default_rng(seed).normal(size=(20, 4, width)).astype(np.float32),
                                   weights=np.ones(20, np.float32), engaged=np.ones(20, np.float32),
                                   skipped=np.zeros((0, width), np.float32))
        torch.manual_seed(0)
        train_ranker(examples, RankerConfig(epochs=1, seed=seed))
