"""Plackett-Luce position marginals of the exploration stage (runtime/plackett_luce.py): exact, rare cells too."""

import itertools

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import plackett_luce
from edgerec.runtime.experiment import ExplorationStage, ExposureLog


def _enumerated_marginals(logits, k):
    """P(candidate j at position r) summed over every ordered draw of k candidates (small cases only)."""
    w, out = np.exp(logits), np.zeros((len(logits), k))
    for seq in itertools.permutations(range(len(w)), k):
        # the weight left summed afresh each draw: subtracting drawn weights loses digits
        p = np.prod([w[j] / np.delete(w, seq[:r]).sum() for r, j in enumerate(seq)])
        out[list(seq), np.arange(k)] += p
    return out


def test_exploration_marginals_are_exact_even_for_rare_positions():
    # the logged marginals are what IPS, SNIPS and DR divide by: sampled ones (100,000 draws) were off by a
    # factor 0.6 to 30 below 1e-4, so the check is exact to float precision, rare cells included
    rng = np.random.default_rng(0)
    for n, k in ((6, 3), (8, 8)):
        logits = rng.normal(0.0, 3.0, n)
        want = _enumerated_marginals(logits, k)
        got = plackett_luce.marginals(logits, k)
        assert np.abs(got - want).max() < 1e-12
        assert np.abs(got / want - 1)[want > 1e-300].max() < 1e-9  # relative, in the cells of 1e-10 too
    logits = -np.arange(30) / 2.0  # the runtime's default short list and temperature
    assert np.array_equal(ExplorationStage(ExposureLog(), 2.0, 30, seed=0).table(logits, 10),
                          plackett_luce.marginals(logits, 10))
    assert plackett_luce.marginals(logits, 10)[:, 0] == pytest.approx(np.exp(logits) / np.exp(logits).sum(),
                                                                      rel=1e-12)
    # a steep sampler over a long list: the grid reaches the k-th heaviest candidate, not just the heaviest
    steep = plackett_luce.marginals(-np.arange(300) / 0.1, 10)
    assert steep.sum(0) == pytest.approx(1.0, abs=1e-12)
    assert np.diag(steep[:10]) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ConfigError, match="1 <= k <= candidates"):
        plackett_luce.marginals(logits, 31)
    # so steep that the 10th candidate's weight underflows: refused, not NaN (the sampler's weights are 0 too)
    with pytest.raises(ConfigError, match="raise the exploration temperature"):
        plackett_luce.marginals(-np.arange(30) / 0.01, 10)
    edge = plackett_luce.marginals(-np.arange(30) / 0.0151, 10)  # the steepest allowed: finite, sums to 1
    assert np.isfinite(edge).all() and edge.max() <= 1.0 and edge.sum(0) == pytest.approx(1.0, abs=1e-12)


def test_marginals_of_one_position_any_shift_and_any_input_dtype():
    """Guards from the mutation run (note 24): k = 1 is the softmax; a common shift of the logits changes
    nothing (they are taken relative to their maximum); float32 and integer logits are read in float64."""
    logits = np.array([2.0, 0.5, -1.0, 0.0])
    one = plackett_luce.marginals(logits, 1)
    assert one.shape == (4, 1) and one[:, 0] == pytest.approx(np.exp(logits) / np.exp(logits).sum(), rel=1e-12)
    shifted = plackett_luce.marginals(logits + 400.0, 3)  # exp(400) is finite; exp(800) would not be
    assert np.abs(shifted - _enumerated_marginals(logits, 3)).max() < 1e-12
    assert np.array_equal(plackett_luce.marginals(logits.astype(np.float32) + 0.1, 3),
                          plackett_luce.marginals((logits.astype(np.float32) + 0.1).astype(np.float64), 3))
    assert np.array_equal(plackett_luce.marginals(np.array([3, 1, 0]), 2), plackett_luce.marginals([3.0, 1.0, 0.0], 2))


@pytest.mark.parametrize("logits", [[0.0, np.nan, 1.0], [0.0, np.inf], [[0.0, 1.0], [1.0, 0.0]], []])
def test_marginals_refuse_logits_that_are_not_one_finite_value_per_candidate(logits):
    with pytest.raises(ConfigError, match=r"^Plackett-Luce marginals need finite logits, one per candidate"):
        plackett_luce.marginals(np.array(logits, np.float64), 1)
