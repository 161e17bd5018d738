"""Properties that must hold for any input (hypothesis): ranking, metrics, sequences, quantization."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgerec.compress.quantize import symmetric_int8
from edgerec.data.split import Sequences
from edgerec.models import metrics
from edgerec.models.evaluation import rank_of, top_k
from edgerec.runtime.item_table import StoredTable

scores = arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(2, 40)),
                elements=st.floats(-5, 5, width=32, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(scores, st.integers(1, 10), st.data())
def test_rank_and_top_k_agree(s, k, data):
    targets = np.array([data.draw(st.integers(0, s.shape[1] - 1)) for _ in range(len(s))])
    ranks = rank_of(s, targets)
    lists = top_k(s, k)
    for row, (rank, target) in enumerate(zip(ranks, targets)):
        if rank < k:
            assert lists[row, rank] == target
        else:
            assert target not in lists[row]
    assert metrics.ndcg(ranks, k) <= metrics.hit_rate(ranks, k) + 1e-9
    assert metrics.mrr(ranks, k) <= metrics.ndcg(ranks, k) + 1e-9


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 50), max_size=12), min_size=1, max_size=8), st.integers(1, 10))
def test_last_n_left_pads_and_keeps_the_newest(histories, n):
    lengths = [len(h) for h in histories]
    seq = Sequences(np.r_[0, np.cumsum(lengths)].astype(np.int64),
                    np.array([x for h in histories for x in h], np.int32), np.zeros(sum(lengths), np.int64))
    out = seq.last(n, pad=-1)
    for row, h in enumerate(histories):
        tail = h[-n:]
        assert out[row, n - len(tail):].tolist() == tail
        assert (out[row, : n - len(tail)] == -1).all()


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 20), st.integers(1, 16)), elements=st.floats(-3, 3, width=32)))
def test_int8_tables_round_trip_within_half_a_step(values):
    per_dim, per_row = StoredTable.quantize(values, "int8"), StoredTable.quantize(values, "int8-row")
    assert per_dim.scales.shape == (values.shape[1],) and per_row.scales.shape == (values.shape[0],)
    assert np.all(np.abs(per_dim.dequantize() - values) <= per_dim.scales[None, :] * 0.5 + 1e-6)
    back = per_row.dequantize()
    assert np.all(np.abs(back - values) <= per_row.scales[:, None] * 0.5 + 1e-6)
    rows = np.arange(len(values))[::-1]
    np.testing.assert_array_equal(per_dim.dequantize(rows), per_dim.dequantize()[rows])
    q2, s2 = symmetric_int8(back, 0)  # values already on the grid re-quantize without loss
    assert np.array_equal(q2.astype(np.float32) * s2[:, None], back) or np.allclose(q2 * s2[:, None], back, atol=1e-7)


@settings(max_examples=40, deadline=None)
@given(arrays(np.int64, st.integers(1, 60), elements=st.integers(0, 1000)))
def test_gini_is_between_zero_and_one(counts):
    assert 0.0 <= metrics.gini(counts) <= 1.0


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 5_000), k=st.integers(1, 300), masked=st.floats(0, 1), seed=st.integers(0, 10**6),
       levels=st.sampled_from([None, 7]))
def test_top_rows_matches_a_full_sort(n, k, masked, seed, levels):
    """The sampled-threshold shortcut of top_rows never loses a winner (ties and -inf included)."""
    from edgerec.runtime.retrieval import top_rows

    rng = np.random.default_rng(seed)
    scores = rng.normal(size=n).astype(np.float32)
    if levels:  # many ties
        scores = np.round(scores * levels) / levels
    scores[rng.random(n) < masked] = -np.inf
    rows = top_rows(scores, k)
    finite = np.sort(scores[np.isfinite(scores)])[::-1]
    assert len(rows) == min(k, len(finite)) and len(set(rows.tolist())) == len(rows)
    np.testing.assert_array_equal(scores[rows], finite[: len(rows)])


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 40), elements=st.sampled_from([-np.inf, 0.0, 0.5, 1.0, 2.0, 3.5])),
       st.integers(1, 12))
def test_mmr_without_diversity_is_the_best_first_order(scores, k):
    from edgerec.runtime.list_order import mmr

    vectors = np.eye(len(scores), 4)
    plain = mmr(scores, vectors, k, 0.0)
    finite = [i for i in range(len(scores)) if np.isfinite(scores[i])]
    assert plain.tolist() == sorted(finite, key=lambda i: (-scores[i], i))[:k]
    if finite:  # any weight keeps the single best item first
        assert mmr(scores, vectors, k, 0.5)[0] == plain[0]


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 60), elements=st.floats(-1e3, 1e3)), st.data())
def test_standardize_centres_and_scales_the_finite_scores(values, data):
    from edgerec.runtime.policies import standardize

    masked = data.draw(st.lists(st.integers(0, len(values) - 1), max_size=len(values)))
    values[masked] = -np.inf
    out = standardize(values)
    finite = np.isfinite(values)
    assert np.array_equal(np.isfinite(out), finite) and np.all(out[~finite] == -np.inf)
    if finite.sum() < 2:
        assert np.all(out[finite] == 0)
        return
    # the definition, written the plain numpy way
    expected = (values[finite] - values[finite].mean()) / max(values[finite].std(), 1e-9)
    assert np.allclose(out[finite], expected, rtol=1e-9, atol=1e-9)
    if values[finite].std() > 1e-6:
        assert abs(out[finite].mean()) < 1e-6 and abs(out[finite].std() - 1.0) < 1e-6
