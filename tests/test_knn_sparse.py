"""Item- and user-kNN build their neighbours from sparse co-occurrences: the work follows the overlap in
the log, not items x items (a million-item catalog took hours in dense blocks, now seconds)."""

import types

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from edgerec.data.split import Sequences
from edgerec.errors import DataError
from edgerec.models.baselines import ItemKNN, UserKNN, co_occurrence_bound, row_blocks, top_per_row


def reference_top(dense: np.ndarray, k: int, skip=None) -> np.ndarray:
    """Each row's k largest positive entries, ties to the lower column, written the slow way."""
    out = np.zeros_like(dense)
    for r, row in enumerate(dense):
        ranked = sorted((-v, c) for c, v in enumerate(row) if v > 0 and (skip is None or c != skip[r]))
        for v, c in ranked[:k]:
            out[r, c] = -v
    return out


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 6), st.integers(1, 7), st.integers(0, 8), st.data())
def test_top_per_row_keeps_each_rows_best_with_ties_to_the_lower_column(rows, cols, k, data):
    values = data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.0]), min_size=rows * cols,
                                max_size=rows * cols))  # few distinct values: ties everywhere
    dense = np.array(values, np.float32).reshape(rows, cols)
    skip = np.array(data.draw(st.lists(st.integers(0, cols - 1), min_size=rows, max_size=rows)))
    for s in (None, skip):
        kept = top_per_row(sp.csr_matrix(dense), k, skip=s)
        assert np.array_equal(kept.toarray(), reference_top(dense, k, s))


def test_row_blocks_cover_every_row_once_within_the_bound():
    work = np.array([3, 0, 4, 9, 1, 1, 2, 0, 5])
    blocks = row_blocks(work, 5)
    assert blocks[0][0] == 0 and blocks[-1][1] == len(work)
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))  # consecutive, no gap, no overlap
    for start, stop in blocks:
        assert work[start:stop].sum() <= 5 or stop - start == 1  # a row past the bound stands alone
    assert blocks == [(0, 2), (2, 3), (3, 4), (4, 8), (8, 9)]  # as many rows as fit: not one a block
    assert row_blocks(np.zeros(0, np.int64), 5) == []
    assert row_blocks(np.array([2, 3, 1]), 5) == [(0, 2), (2, 3)]  # a block may reach the bound exactly


def test_top_per_row_leaves_out_stored_zeros():
    m = sp.csr_matrix((np.array([0.0, 0.5, 0.0], np.float32), np.array([0, 1, 2]), np.array([0, 3])), shape=(1, 3))
    assert m.nnz == 3 and top_per_row(m, 3).nnz == 1


def test_the_co_occurrence_bound_holds_every_row():
    split = log(seed=4, users=50, items=40)
    cosine, x = dense_cosine(split)
    lengths = x.sum(1)
    bound = co_occurrence_bound(sp.csr_matrix(x))
    assert np.array_equal(bound, x.T @ lengths)  # each item: its users' history lengths, summed
    assert ((x.T @ x > 0).sum(1) <= bound).all()


def test_item_knn_names_itself_when_no_user_consumed_two_items():
    one_each = types.SimpleNamespace(n_items=3, train=Sequences(np.array([0, 1, 2]), np.array([0, 1], np.int32),
                                                               np.zeros(2, np.int64)))
    with pytest.raises(DataError, match="so itemknn finds no similar"):
        ItemKNN(one_each)


def log(seed=0, users=40, items=30, per=6):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, per + 1, users)
    seq = np.concatenate([rng.choice(items, n, replace=False) for n in lengths]).astype(np.int32)
    train = Sequences(np.r_[0, np.cumsum(lengths)].astype(np.int64), seq, np.zeros(len(seq), np.int64))
    return types.SimpleNamespace(n_items=items, train=train)


def dense_cosine(split) -> np.ndarray:
    x = np.zeros((split.train.n_users, split.n_items), np.float32)
    for u in range(split.train.n_users):
        x[u, split.train.of(u)] = 1.0
    norms = np.sqrt(x.sum(0))
    return (x.T @ x) / np.maximum(norms[:, None] * norms[None, :], 1e-9), x


@pytest.mark.parametrize("neighbors", [3, 100])
def test_item_knn_is_the_cosine_top_k_without_the_item_itself(neighbors):
    split = log()
    cosine, _ = dense_cosine(split)
    built = ItemKNN(split, neighbors=neighbors).similarity.toarray()
    expected = reference_top(cosine, neighbors, skip=np.arange(split.n_items))
    assert np.allclose(built, expected, atol=1e-6) and ((built > 0) == (expected > 0)).all()


def test_item_knn_in_small_blocks_equals_one_block():
    split = log(seed=1, users=60, items=50)
    whole = ItemKNN(split, neighbors=5).similarity
    small = ItemKNN(split, neighbors=5, cells=7).similarity  # a block of a row or two
    assert (abs(small - whole)).max() == 0 and small.nnz == whole.nnz


def test_item_knn_never_builds_a_dense_block(monkeypatch):
    """A dense (rows x catalog) block per step is what cost hours at a million items."""
    def refuse(*_a, **_k):
        raise AssertionError("a dense block was built")

    for name in ("toarray", "todense"):
        monkeypatch.setattr(sp.csr_matrix, name, refuse)
        monkeypatch.setattr(sp.csr_array, name, refuse)
    ItemKNN(log(seed=2, items=200_000), neighbors=10)  # a wide catalog: a dense block would be 200k wide


def test_user_knn_scores_from_the_nearest_other_users():
    split = log(seed=3, users=30, items=25)
    knn = UserKNN(split, neighbors=4)
    _, x = dense_cosine(split)
    users = np.arange(split.train.n_users)
    got = knn.score(users, split.train)
    sim = x @ x.T / np.maximum(np.sqrt(x.sum(1))[:, None] * np.sqrt(x.sum(1))[None, :], 1e-9)
    expected = reference_top(sim.astype(np.float32), 4, skip=users) @ x
    assert np.allclose(got, expected, atol=1e-5)

